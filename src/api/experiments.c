/* SPDX-License-Identifier: MIT */
/*
 * experiments.c - /api/experiments: A/B experiments over models and routes.
 *
 * A body has the shape of a route entry's neighbours in DESIGN.md §4:
 *   {"id", "name", "description", "status": "active|paused|ended",
 *    "variants": [{"name", "target", "weight"}]}
 * checked strictly: an unknown member anywhere is refused, weights are
 * integers (absent = 1), the store's rules (store.h) apply, and every
 * target must name something the registry knows now (a model id, a
 * provider/upstream_model that resolves, or a route id), with suggestions.
 * An experiment's id is what clients send as `model`, so it may not be the
 * id of a model or route (409). PUT replaces the whole experiment; a weight
 * change re-splits conversations (router/experiment.h).
 */
#include <string.h>

#include "api/internal.h"
#include "registry/registry.h"

static const char *const body_keys[] = {"id", "name", "description", "status", "variants", NULL};

/* ======================================================================
 * JSON out
 * ==================================================================== */

void sb__api_write_experiment(struct sb_jw *j, const struct sb_store_experiment *x)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_cstr(j, x->id);
    sb_jw_key(j, "name");
    sb_jw_cstr(j, x->name);
    sb_jw_key(j, "description");
    sb_jw_cstr(j, x->description);
    sb_jw_key(j, "status");
    sb_jw_cstr(j, x->status);
    sb_jw_key(j, "variants");
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < x->nvariants; i++) {
        sb_jw_obj_begin(j);
        sb_jw_key(j, "name");
        sb_jw_cstr(j, x->variants[i].name);
        sb_jw_key(j, "target");
        sb_jw_cstr(j, x->variants[i].target);
        sb_jw_key(j, "weight");
        sb_jw_int(j, x->variants[i].weight);
        sb_jw_obj_end(j);
    }
    sb_jw_arr_end(j);
    sb__api_time(j, "created_at", x->created_at);
    sb__api_time(j, "updated_at", x->updated_at);
    sb_jw_obj_end(j);
}

/* x as a document in c's arena, for the audit log; NULL gives an empty slice. */
static struct sb_slice doc(struct sb_api_call *c, const struct sb_store_experiment *x)
{
    struct sb_buf b;
    struct sb_jw j;
    if (!x)
        return SB_SLICE_NULL;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb__api_write_experiment(&j, x);
    struct sb_slice out = sb_arena_slice(c->arena, (struct sb_slice){b.p, b.len});
    sb_buf_free(&b);
    return out;
}

/* ======================================================================
 * JSON in
 * ==================================================================== */

/* An optional string member of o into *out (absent or null leaves NULL). */
static sb_err opt_str(struct sb_api_call *c, const struct sb_json *o, const char *key,
                      const char *field, const char **out)
{
    const struct sb_json *v = sb_json_get(o, key);
    *out = NULL;
    if (!v || v->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_is_string(v) || memchr(v->str.p, '\0', v->str.len) || v->str.len > 1000)
        return sb__api_fail(c, SB_E_BAD_REQUEST, field, "%s must be a string (at most 1000 bytes)",
                            field);
    *out = sb_arena_strndup(c->arena, v->str.p, v->str.len);
    return SB_OK;
}

static sb_err parse_variant(struct sb_api_call *c, size_t i, const struct sb_json *o,
                            struct sb_store_variant *v)
{
    static const char *const keys[] = {"name", "target", "weight"};
    const struct sb_json *w = sb_json_get(o, "weight");
    if (!o || o->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "variants",
                            "variants[%zu] must be an object {\"name\", \"target\", \"weight\"}",
                            i);
    for (const struct sb_json *m = o->child; m; m = m->next)
        if (!sb_slice_eq_cstr(m->key, keys[0]) && !sb_slice_eq_cstr(m->key, keys[1]) &&
            !sb_slice_eq_cstr(m->key, keys[2]))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "variants",
                                "variants[%zu].%.*s: unknown member", i,
                                (int)(m->key.len > 64 ? 64 : m->key.len), m->key.p);
    if (opt_str(c, o, "name", "variants", &v->name) != SB_OK ||
        opt_str(c, o, "target", "variants", &v->target) != SB_OK)
        return c->err.code;
    v->weight = 1;
    if (w && !sb_json_int64(w, &v->weight))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "variants",
                            "variants[%zu].weight must be an integer >= 0", i);
    return SB_OK;
}

static sb_err parse_variants(struct sb_api_call *c, struct sb_store_experiment *x)
{
    const struct sb_json *arr = sb_json_get(c->json, "variants");
    if (!arr || arr->type != SB_JSON_ARRAY)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "variants",
                            "variants is required: an array of {\"name\", \"target\", \"weight\"}");
    if (arr->count > SB_STORE_EXPERIMENT_MAX_VARIANTS)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "variants", "at most %d variants",
                            SB_STORE_EXPERIMENT_MAX_VARIANTS);
    x->variants = sb_arena_calloc(c->arena, (arr->count + 1) * sizeof(*x->variants));
    for (const struct sb_json *v = arr->child; v; v = v->next, x->nvariants++)
        if (parse_variant(c, x->nvariants, v, &x->variants[x->nvariants]) != SB_OK)
            return c->err.code;
    return SB_OK;
}

static sb_err parse_body(struct sb_api_call *c, struct sb_store_experiment *x)
{
    memset(x, 0, sizeof(*x));
    static const char *const strs[] = {"id", "name", "description", "status"};
    const char **dst[] = {&x->id, &x->name, &x->description, &x->status};
    if (sb__api_body_only(c, body_keys) != SB_OK)
        return c->err.code;
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (opt_str(c, c->json, strs[i], strs[i], dst[i]) != SB_OK)
            return c->err.code;
    return parse_variants(c, x);
}

/* ======================================================================
 * Checks that need the registry
 * ==================================================================== */

/* target is a model (any status), a route, or resolves in the snapshot. */
static bool target_known(struct sb_api_call *c, struct sb_registry *reg, const char *t)
{
    struct sb_store_model m;
    struct sb_store_route r;
    struct sb_error ignore;
    struct sb_store *s = c->api->store;
    return sb_store_model_get(s, t, NULL, c->arena, &m, &ignore) == SB_OK ||
           sb_store_route_get(s, t, c->arena, &r, &ignore) == SB_OK ||
           (reg && sb_registry_find_model(reg, sb_slice_cstr(t)));
}

static sb_err check_targets(struct sb_api_call *c, const struct sb_store_experiment *x)
{
    struct sb_registry *reg = sb_registry_acquire();
    sb_err rc = SB_OK;
    for (size_t i = 0; i < x->nvariants && rc == SB_OK; i++) {
        const char *t = x->variants[i].target;
        if (target_known(c, reg, t))
            continue;
        c->nsuggest = reg ? sb_registry_suggest(reg, sb_slice_cstr(t), NULL, c->suggest, 3) : 0;
        for (size_t k = 0; k < c->nsuggest; k++) /* outlive the snapshot reference */
            c->suggest[k] = sb_arena_strndup(c->arena, c->suggest[k], strlen(c->suggest[k]));
        rc = sb__api_fail(c, SB_E_BAD_REQUEST, "variants",
                          "variants[%zu].target: '%s' is neither a model, provider/model nor a "
                          "route",
                          i, t);
    }
    if (reg)
        sb_registry_release(reg);
    return rc;
}

/* Clients send an experiment's id as `model`: it must not name a model or route. */
static sb_err check_id_free(struct sb_api_call *c, const char *id)
{
    struct sb_store_model m;
    struct sb_store_route r;
    struct sb_error ignore;
    const char *what = NULL;
    if (sb_store_model_get(c->api->store, id, NULL, c->arena, &m, &ignore) == SB_OK)
        what = "model";
    else if (sb_store_route_get(c->api->store, id, c->arena, &r, &ignore) == SB_OK)
        what = "route";
    if (!what)
        return SB_OK;
    return sb__api_fail(c, SB_E_CONFLICT, "id",
                        "'%s' is already a %s id; clients name an experiment as they name a model, "
                        "so it needs an id no model or route has",
                        id, what);
}

/* The body, checked: the store's rules first (the clearest field errors), then the registry's. */
static sb_err parse(struct sb_api_call *c, const char *id, struct sb_store_experiment *x)
{
    if (parse_body(c, x) != SB_OK)
        return c->err.code;
    if (id && x->id && strcmp(id, x->id) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id: identifiers never change (%s)", id);
    struct sb_store_experiment probe = *x;
    probe.id = id ? id : x->id;
    if (!probe.id)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id is required");
    if (sb_store_experiment_check(&probe, &c->err) != SB_OK)
        return c->err.code;
    if (!id && check_id_free(c, x->id) != SB_OK)
        return c->err.code;
    return check_targets(c, x);
}

/* ======================================================================
 * Handlers
 * ==================================================================== */

static sb_err load(struct sb_api_call *c, struct sb_store_experiment *x)
{
    return sb_store_experiment_get(c->api->store, sb__api_param(c, 0), c->arena, x, &c->err);
}

sb_err sb__api_experiments_list(struct sb_api_call *c)
{
    struct sb_store_filter f = {0};
    struct sb_store_experiment *xs = NULL;
    struct sb_store_page page = {0};
    if (sb__api_paging(c, &f.limit, &f.offset) != SB_OK ||
        sb_store_experiment_list(c->api->store, &f, c->arena, &xs, &page, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < page.n; i++)
        sb__api_write_experiment(&c->jw, &xs[i]);
    sb__api_list_end(c, page.total, f.limit, f.offset);
    return SB_OK;
}

sb_err sb__api_experiment_get(struct sb_api_call *c)
{
    struct sb_store_experiment x;
    if (load(c, &x) != SB_OK)
        return c->err.code;
    sb__api_write_experiment(&c->jw, &x);
    return SB_OK;
}

static sb_err saved(struct sb_api_call *c, const char *action, const char *id,
                    const struct sb_store_experiment *before)
{
    struct sb_store_experiment after;
    if (sb_store_experiment_get(c->api->store, id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true; /* the snapshot carries experiments */
    sb__api_write_experiment(&c->jw, &after);
    sb__api_audit(c, action, "experiment", id, doc(c, before), doc(c, &after), "ok");
    return SB_OK;
}

sb_err sb__api_experiment_create(struct sb_api_call *c)
{
    struct sb_store_experiment x;
    if (parse(c, NULL, &x) != SB_OK ||
        sb_store_experiment_create(c->api->store, &x, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    return saved(c, "experiment.create", x.id, NULL);
}

sb_err sb__api_experiment_update(struct sb_api_call *c)
{
    struct sb_store_experiment before, x;
    if (load(c, &before) != SB_OK || parse(c, before.id, &x) != SB_OK ||
        sb_store_experiment_update(c->api->store, before.id, &x, &c->err) != SB_OK)
        return c->err.code;
    return saved(c, "experiment.update", before.id, &before);
}

sb_err sb__api_experiment_delete(struct sb_api_call *c)
{
    struct sb_store_experiment before;
    if (load(c, &before) != SB_OK ||
        sb_store_experiment_delete(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "experiment.delete", "experiment", before.id, doc(c, &before), SB_SLICE_NULL,
                  "ok");
    return SB_OK;
}
