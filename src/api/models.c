/* SPDX-License-Identifier: MIT */
/*
 * models.c - /api/models and /api/providers/{id}/models.
 *
 * Visibility (DESIGN.md §5): admins see every model; everyone else sees the
 * global models plus their own personal ones, and another user's model
 * reads as 404. Anyone may register a personal model (owner = themselves,
 * visible only to them); only admins create global ones, edit others' or
 * touch the order of fallbacks of global models.
 */
#include <string.h>

#include "api/internal.h"
#include "registry/config.h"

static bool is_admin(const struct sb_api_call *c)
{
    return c->actor.role == SB_ROLE_ADMIN;
}

/* The user whose view the caller has: NULL (everything) for admins. */
static const char *viewer(const struct sb_api_call *c)
{
    return is_admin(c) ? NULL : c->actor.name;
}

static sb_err load(struct sb_api_call *c, const char *id, struct sb_store_model *m)
{
    return sb_store_model_get(c->api->store, id, viewer(c), c->arena, m, &c->err);
}

/* Loads model {id} for a change: admins change any, others only their own. */
static sb_err load_own(struct sb_api_call *c, struct sb_store_model *m)
{
    if (load(c, sb__api_param(c, 0), m) != SB_OK)
        return c->err.code;
    if (!is_admin(c) && (!m->owner || strcmp(m->owner, c->actor.name) != 0))
        return sb__api_fail(c, SB_E_FORBIDDEN, NULL,
                            "model %s is global: only an admin may change it", m->id);
    return SB_OK;
}

static sb_err list(struct sb_api_call *c, const char *provider)
{
    struct sb_store_filter f = {.provider = provider, .visible_to = viewer(c)};
    struct sb_store_model *ms = NULL;
    struct sb_store_page page = {0};
    if (!provider)
        f.provider = sb__api_query(c, "provider");
    f.capability = sb__api_query(c, "capability");
    if (sb__api_paging(c, &f.limit, &f.offset) != SB_OK ||
        sb__api_query_tri(c, "enabled", &f.enabled) != SB_OK ||
        sb_store_model_list(c->api->store, &f, c->arena, &ms, &page, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < page.n; i++)
        sb__api_write_model(&c->jw, &ms[i]);
    sb__api_list_end(c, page.total, f.limit, f.offset);
    return SB_OK;
}

sb_err sb__api_models_list(struct sb_api_call *c)
{
    return list(c, NULL);
}

sb_err sb__api_provider_models(struct sb_api_call *c)
{
    struct sb_store_provider p;
    if (sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, &p, &c->err) != SB_OK)
        return c->err.code;
    return list(c, p.id);
}

sb_err sb__api_model_get(struct sb_api_call *c)
{
    struct sb_store_model m;
    if (load(c, sb__api_param(c, 0), &m) != SB_OK)
        return c->err.code;
    sb__api_write_model(&c->jw, &m);
    return SB_OK;
}

/* The body with "provider" set from the path (provider ids are [a-z0-9-],
 * safe to splice), so the config walker checks it like any other entry. */
static sb_err with_provider(struct sb_api_call *c, const char *provider, const struct sb_json **out)
{
    if (c->json && c->json->type == SB_JSON_OBJECT && sb_json_get(c->json, "provider"))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "provider",
                            "provider: comes from the path here (/api/providers/%s/models)",
                            provider);
    return sb__api_json_with(c, c->json, sb_arena_printf(c->arena, "\"provider\":\"%s\"", provider),
                             out);
}

/* The body as a config model entry (provider from the path when given). */
static sb_err parse(struct sb_api_call *c, const char *provider, struct sb_store_model *m)
{
    const struct sb_json *body = c->json;
    if (provider && with_provider(c, provider, &body) != SB_OK)
        return c->err.code;
    if (sb_config_entry_from_json(c->arena, SB_CONFIG_MODEL, body, m, NULL, &c->err) != SB_OK)
        return c->err.code;
    m->owner = is_admin(c) ? NULL : c->actor.name;
    return sb__api_check_targets(c, "fallbacks", m->fallbacks, m->nfallbacks);
}

static sb_err create(struct sb_api_call *c, const char *provider)
{
    struct sb_store_model m, saved;
    struct sb_store *s = c->api->store;
    if (parse(c, provider, &m) != SB_OK || sb_store_model_create(s, &m, &c->err) != SB_OK ||
        sb_store_model_get(s, m.id, NULL, c->arena, &saved, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    c->changed = true;
    sb__api_write_model(&c->jw, &saved);
    sb__api_audit(c, "model.create", "model", m.id, SB_SLICE_NULL, sb__api_doc_model(c, &saved),
                  "ok");
    return SB_OK;
}

sb_err sb__api_model_create(struct sb_api_call *c)
{
    return create(c, NULL);
}

sb_err sb__api_provider_model_create(struct sb_api_call *c)
{
    struct sb_store_provider p;
    if (sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, &p, &c->err) != SB_OK)
        return c->err.code;
    return create(c, p.id);
}

/* Answers with model id as it is now, and audits before -> now. */
static sb_err changed(struct sb_api_call *c, const char *action,
                      const struct sb_store_model *before)
{
    struct sb_store_model after;
    if (sb_store_model_get(c->api->store, before->id, NULL, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    sb__api_write_model(&c->jw, &after);
    sb__api_audit(c, action, "model", before->id, sb__api_doc_model(c, before),
                  sb__api_doc_model(c, &after), "ok");
    return SB_OK;
}

sb_err sb__api_model_update(struct sb_api_call *c)
{
    struct sb_store_model before, m;
    if (load_own(c, &before) != SB_OK || parse(c, NULL, &m) != SB_OK)
        return c->err.code;
    if (strcmp(m.id, before.id) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id: identifiers never change (%s)",
                            before.id);
    if (sb_store_model_update(c->api->store, before.id, &m, &c->err) != SB_OK)
        return c->err.code;
    return changed(c, "model.update", &before);
}

sb_err sb__api_model_delete(struct sb_api_call *c)
{
    struct sb_store_model before;
    if (load_own(c, &before) != SB_OK ||
        sb_store_model_delete(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "model.delete", "model", before.id, sb__api_doc_model(c, &before),
                  SB_SLICE_NULL, "ok");
    return SB_OK;
}

sb_err sb__api_model_toggle(struct sb_api_call *c)
{
    struct sb_store_model before;
    bool on;
    if (load_own(c, &before) != SB_OK || sb__api_toggle_value(c, before.enabled, &on) != SB_OK ||
        sb_store_model_set_enabled(c->api->store, before.id, on, &c->err) != SB_OK)
        return c->err.code;
    return changed(c, on ? "model.enable" : "model.disable", &before);
}

sb_err sb__api_model_priority(struct sb_api_call *c)
{
    struct sb_store_model before;
    const struct sb_json *v = sb_json_get(c->json, "fallback_priority");
    int64_t prio;
    if (load_own(c, &before) != SB_OK)
        return c->err.code;
    if (!sb_json_int64(v, &prio) || prio < -1000000 || prio > 1000000)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "fallback_priority",
                            "fallback_priority: expected an integer in [-1000000, 1000000]");
    if (sb_store_model_set_priority(c->api->store, before.id, prio, &c->err) != SB_OK)
        return c->err.code;
    return changed(c, "model.priority", &before);
}

/* {"ids": [model ids in the new order]}: priorities 1..n, in one transaction. */
sb_err sb__api_models_reorder(struct sb_api_call *c)
{
    const struct sb_json *ids = sb_json_get(c->json, "ids");
    if (!ids || ids->type != SB_JSON_ARRAY || ids->count == 0 || ids->count > 10000)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "ids",
                            "ids: expected a non-empty array of model ids, in the new order");
    const char **v = sb_arena_alloc(c->arena, ids->count * sizeof(*v));
    size_t n = 0;
    for (const struct sb_json *it = ids->child; it; it = it->next) {
        struct sb_store_model m;
        if (it->type != SB_JSON_STRING)
            return sb__api_fail(c, SB_E_BAD_REQUEST, "ids", "ids[%zu]: expected a string", n);
        v[n] = sb_arena_strndup(c->arena, it->str.p, it->str.len);
        /* Non-admins may only order their own models. */
        if (!is_admin(c) && (load(c, v[n], &m) != SB_OK || !m.owner))
            return sb__api_fail(c, SB_E_FORBIDDEN, "ids", "ids[%zu]: %s is not one of your models",
                                n, v[n]);
        n++;
    }
    if (sb_store_model_reorder(c->api->store, v, n, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    sb_jw_obj_begin(&c->jw);
    sb_jw_key(&c->jw, "reordered");
    sb_jw_int(&c->jw, (int64_t)n);
    sb_jw_obj_end(&c->jw);
    sb__api_audit(c, "model.reorder", "model", "", SB_SLICE_NULL,
                  sb_arena_slice(c->arena, ids->raw), "ok");
    return SB_OK;
}

/* POST /api/models/{id}/champion and /default: one per provider (admins). */
sb_err sb__api_model_champion(struct sb_api_call *c)
{
    struct sb_store_model before;
    if (load(c, sb__api_param(c, 0), &before) != SB_OK ||
        sb_store_model_set_champion(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    return changed(c, "model.champion", &before);
}

sb_err sb__api_model_default(struct sb_api_call *c)
{
    struct sb_store_model before;
    if (load(c, sb__api_param(c, 0), &before) != SB_OK ||
        sb_store_model_set_default(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    return changed(c, "model.default", &before);
}
