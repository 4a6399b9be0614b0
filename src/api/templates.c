/* SPDX-License-Identifier: MIT */
/*
 * templates.c - /api/templates: provider blueprints, and applying one.
 *
 * The built-in templates (builtin_templates.c) are listed first, read-only;
 * the database's follow, global ones plus the caller's own. A template body
 * is {id, name, description, type, base_url, auth_method, options: {provider
 * keys}, models: [model entries]}; every part is checked by the config
 * file's key tables at write time, so applying cannot fail on shape.
 * Applying creates the provider and all its models in one transaction, then
 * stores the key (or removes everything again if that fails).
 */
#include <string.h>

#include "api/internal.h"
#include "net/ssrf.h"
#include "registry/config.h"
#include "registry/templates.h"

static const char *viewer(const struct sb_api_call *c)
{
    return c->actor.role == SB_ROLE_ADMIN ? NULL : c->actor.name;
}

static void write_template(struct sb_jw *j, const struct sb_store_template *t, bool system)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_cstr(j, t->id);
    sb_jw_key(j, "name");
    sb_jw_cstr(j, t->name ? t->name : t->id);
    sb_jw_key(j, "description");
    sb_jw_cstr(j, t->description);
    sb_jw_key(j, "type");
    sb_jw_cstr(j, t->type);
    sb_jw_key(j, "base_url");
    sb_jw_cstr(j, t->base_url);
    sb_jw_key(j, "options");
    sb_jw_raw(j, sb_slice_cstr(t->options && *t->options ? t->options : "{}"));
    sb_jw_key(j, "models");
    sb_jw_raw(j, sb_slice_cstr(t->models && *t->models ? t->models : "[]"));
    sb_jw_key(j, "is_system");
    sb_jw_bool(j, system || t->is_system);
    sb_jw_key(j, "owner");
    sb_jw_cstr(j, t->owner);
    sb__api_time(j, "created_at", t->created_at);
    sb__api_time(j, "updated_at", t->updated_at);
    sb_jw_obj_end(j);
}

/* Template {id} (param 0): built-in, or the database's as the caller may see it. */
static sb_err load(struct sb_api_call *c, struct sb_store_template *t, bool *system)
{
    const struct sb_store_template *b = sb_templates_find(sb__api_param(c, 0));
    *system = b != NULL;
    if (b) {
        *t = *b;
        return SB_OK;
    }
    return sb_store_template_get(c->api->store, sb__api_param(c, 0), viewer(c), c->arena, t,
                                 &c->err);
}

sb_err sb__api_templates_list(struct sb_api_call *c)
{
    struct sb_store_filter f = {.visible_to = viewer(c)};
    struct sb_store_template *ts = NULL;
    struct sb_store_page page = {0};
    int64_t limit, offset;
    if (sb__api_paging(c, &limit, &offset) != SB_OK ||
        sb_store_template_list(c->api->store, &f, c->arena, &ts, &page, &c->err) != SB_OK)
        return c->err.code;
    int64_t total = (int64_t)sb_templates_nbuiltin + page.total;
    sb__api_list_begin(c);
    for (int64_t i = offset; i < total && i < offset + limit; i++) {
        bool sys = i < (int64_t)sb_templates_nbuiltin;
        const struct sb_store_template *t =
            sys ? &sb_templates_builtin[i] : &ts[i - (int64_t)sb_templates_nbuiltin];
        write_template(&c->jw, t, sys);
    }
    sb__api_list_end(c, total, limit, offset);
    return SB_OK;
}

sb_err sb__api_template_get(struct sb_api_call *c)
{
    struct sb_store_template t;
    bool sys;
    if (load(c, &t, &sys) != SB_OK)
        return c->err.code;
    write_template(&c->jw, &t, sys);
    return SB_OK;
}

/* ---- writing templates ---- */

#define CHECK_ID "template-check" /* a provider id for checking a template's parts */

/* options: provider keys, checked as a provider entry with the template's type and URL. */
static sb_err check_provider_part(struct sb_api_call *c, const char *type, const char *base_url,
                                  const struct sb_json *options)
{
    static const char *const owned[] = {"id", "type", "base_url", "api_key", "name"};
    const struct sb_json *doc = NULL;
    struct sb_store_provider p;
    struct sb_config_creds creds;
    struct sb_json empty = {.type = SB_JSON_OBJECT, .raw = SB_SLICE("{}")};
    if (!options)
        options = &empty;
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (sb_json_get(options, owned[i]))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "options",
                                "options: %s is not an option (it belongs to the template or "
                                "to apply)",
                                owned[i]);
    const char *head =
        sb_arena_printf(c->arena, "\"id\":\"" CHECK_ID "\",\"type\":\"%s\",\"base_url\":\"%s\"",
                        type, base_url ? base_url : "https://example.invalid");
    if (sb__api_json_with(c, options, head, &doc) != SB_OK ||
        sb_config_entry_from_json(c->arena, SB_CONFIG_PROVIDER, doc, &p, &creds, &c->err) != SB_OK)
        return c->err.code;
    return SB_OK;
}

/* models: each a model entry (provider supplied at apply). */
static sb_err check_models_part(struct sb_api_call *c, const struct sb_json *models)
{
    size_t i = 0;
    if (models && models->type != SB_JSON_ARRAY)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "models", "models: expected a list of models");
    for (const struct sb_json *m = models ? models->child : NULL; m; m = m->next, i++) {
        const struct sb_json *doc = NULL;
        struct sb_store_model sm;
        if (m->type == SB_JSON_OBJECT && sb_json_get(m, "provider"))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "models",
                                "models[%zu]: provider is set when the template is applied", i);
        if (sb__api_json_with(c, m, "\"provider\":\"" CHECK_ID "\"", &doc) != SB_OK ||
            sb_config_entry_from_json(c->arena, SB_CONFIG_MODEL, doc, &sm, NULL, &c->err) != SB_OK)
            return sb__api_fail(c, c->err.code, "models", "models[%zu]: %s", i, c->err.msg);
    }
    return SB_OK;
}

static sb_err parse(struct sb_api_call *c, struct sb_store_template *t)
{
    static const char *const keys[] = {"id",       "name",    "description", "type",
                                       "base_url", "options", "models"};
    memset(t, 0, sizeof(*t));
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "the body must be a JSON object");
    for (const struct sb_json *m = c->json->child; m; m = m->next) {
        size_t i = 0;
        while (i < sizeof(keys) / sizeof(keys[0]) && !sb_slice_eq_cstr(m->key, keys[i]))
            i++;
        if (i == sizeof(keys) / sizeof(keys[0]))
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "unknown key '%.*s'",
                                (int)(m->key.len > 40 ? 40 : m->key.len), m->key.p);
    }
    if (sb__api_body_str(c, "id", true, &t->id) != SB_OK ||
        sb__api_body_str(c, "name", false, &t->name) != SB_OK ||
        sb__api_body_str(c, "description", false, &t->description) != SB_OK ||
        sb__api_body_str(c, "type", true, &t->type) != SB_OK ||
        sb__api_body_str(c, "base_url", false, &t->base_url) != SB_OK)
        return c->err.code;
    if (sb_templates_find(t->id))
        return sb__api_fail(c, SB_E_CONFLICT, "id", "'%s' is a built-in template", t->id);
    const struct sb_json *opts = sb_json_get(c->json, "options"),
                         *models = sb_json_get(c->json, "models");
    if (check_provider_part(c, t->type, t->base_url, opts) != SB_OK ||
        check_models_part(c, models) != SB_OK)
        return c->err.code;
    /* A non-admin's URL must not point into our own network (SSRF). */
    if (t->base_url && sb__api_refuse_private(c) &&
        sb_ssrf_check_url(t->base_url, false, &c->err) != SB_OK)
        return c->err.code;
    t->options = opts ? sb_arena_strndup(c->arena, opts->raw.p, opts->raw.len) : NULL;
    t->models = models ? sb_arena_strndup(c->arena, models->raw.p, models->raw.len) : NULL;
    t->owner = c->actor.role == SB_ROLE_ADMIN ? NULL : c->actor.name;
    return SB_OK;
}

static sb_err load_own(struct sb_api_call *c, struct sb_store_template *t)
{
    bool sys;
    if (load(c, t, &sys) != SB_OK)
        return c->err.code;
    if (sys)
        return sb__api_fail(c, SB_E_CONFLICT, NULL, "'%s' is a built-in template (read-only)",
                            t->id);
    if (c->actor.role != SB_ROLE_ADMIN && (!t->owner || strcmp(t->owner, c->actor.name) != 0))
        return sb__api_fail(c, SB_E_FORBIDDEN, NULL, "template %s is not yours", t->id);
    return SB_OK;
}

static sb_err answer_saved(struct sb_api_call *c, const char *action, const char *id)
{
    struct sb_store_template t;
    if (sb_store_template_get(c->api->store, id, NULL, c->arena, &t, &c->err) != SB_OK)
        return c->err.code;
    write_template(&c->jw, &t, false);
    sb__api_audit(c, action, "template", id, SB_SLICE_NULL, sb_buf_slice(&c->out), "ok");
    return SB_OK;
}

sb_err sb__api_template_create(struct sb_api_call *c)
{
    struct sb_store_template t;
    if (parse(c, &t) != SB_OK || sb_store_template_create(c->api->store, &t, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    return answer_saved(c, "template.create", t.id);
}

sb_err sb__api_template_update(struct sb_api_call *c)
{
    struct sb_store_template before, t;
    if (load_own(c, &before) != SB_OK || parse(c, &t) != SB_OK)
        return c->err.code;
    if (strcmp(t.id, before.id) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id: identifiers never change (%s)",
                            before.id);
    if (sb_store_template_update(c->api->store, before.id, &t, &c->err) != SB_OK)
        return c->err.code;
    return answer_saved(c, "template.update", before.id);
}

sb_err sb__api_template_delete(struct sb_api_call *c)
{
    struct sb_store_template t;
    if (load_own(c, &t) != SB_OK || sb_store_template_delete(c->api->store, t.id, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    sb__api_audit(c, "template.delete", "template", t.id, SB_SLICE_NULL, SB_SLICE_NULL, "ok");
    return SB_OK;
}

/* ---- applying a template ---- */

/* The provider document: the template's type, URL and options, with the
 * body's overrides (id, name, description, base_url, api_version, region). */
static sb_err apply_doc(struct sb_api_call *c, const struct sb_store_template *t, const char **text)
{
    static const char *const allowed[] = {"id",          "name",   "description", "base_url",
                                          "api_version", "region", "api_key",     "model_prefix"};
    struct sb_buf b;
    struct sb_jw j;
    const struct sb_json *body = c->json, *opts = NULL;
    struct sb_json_limits lim = {.max_depth = 32};
    struct sb_json *parsed = NULL;
    if (body && body->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "the body must be a JSON object");
    for (const struct sb_json *m = body ? body->child : NULL; m; m = m->next) {
        size_t i = 0;
        while (i < sizeof(allowed) / sizeof(allowed[0]) && !sb_slice_eq_cstr(m->key, allowed[i]))
            i++;
        if (i == sizeof(allowed) / sizeof(allowed[0]))
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "unknown key '%.*s'",
                                (int)(m->key.len > 40 ? 40 : m->key.len), m->key.p);
    }
    if (t->options &&
        sb_json_parse(c->arena, t->options, strlen(t->options), &lim, &parsed, &c->err) != SB_OK)
        return c->err.code;
    opts = parsed;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "type");
    sb_jw_cstr(&j, t->type);
    /* Body members first: the walker refuses duplicates, so an option the
     * body overrides is skipped below. */
    for (const struct sb_json *m = body ? body->child : NULL; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "model_prefix"))
            continue;
        sb_jw_key_slice(&j, m->key);
        sb_jw_raw(&j, m->raw);
    }
    if (!sb_json_get(body, "id")) {
        sb_jw_key(&j, "id");
        sb_jw_cstr(&j, t->id);
    }
    if (!sb_json_get(body, "name") && t->name) {
        sb_jw_key(&j, "name");
        sb_jw_cstr(&j, t->name);
    }
    if (!sb_json_get(body, "base_url") && t->base_url) {
        sb_jw_key(&j, "base_url");
        sb_jw_cstr(&j, t->base_url);
    }
    for (const struct sb_json *m = opts ? opts->child : NULL; m; m = m->next) {
        if (sb_json_get_slice(body, m->key))
            continue;
        sb_jw_key_slice(&j, m->key);
        sb_jw_raw(&j, m->raw);
    }
    sb_jw_obj_end(&j);
    *text = sb_arena_strndup(c->arena, b.p, b.len);
    sb_buf_free(&b);
    return SB_OK;
}

/* The template's models, attached to provider pid, ids prefixed when asked. */
static sb_err apply_models(struct sb_api_call *c, const struct sb_store_template *t,
                           const char *pid, const char *prefix, struct sb_store_model **out,
                           size_t *n)
{
    struct sb_json_limits lim = {.max_depth = 32};
    struct sb_json *models = NULL;
    const char *text = t->models && *t->models ? t->models : "[]";
    if (sb_json_parse(c->arena, text, strlen(text), &lim, &models, &c->err) != SB_OK)
        return c->err.code;
    *out = sb_arena_calloc(c->arena, (models->count + 1) * sizeof(**out));
    *n = 0;
    for (const struct sb_json *m = models->child; m; m = m->next) {
        const struct sb_json *doc = NULL;
        const char *head = sb_arena_printf(c->arena, "\"provider\":\"%s\"", pid);
        struct sb_store_model *sm = &(*out)[*n];
        if (sb__api_json_with(c, m, head, &doc) != SB_OK ||
            sb_config_entry_from_json(c->arena, SB_CONFIG_MODEL, doc, sm, NULL, &c->err) != SB_OK)
            return c->err.code;
        if (prefix)
            sm->id = sb_arena_printf(c->arena, "%s%s", prefix, sm->id);
        (*n)++;
    }
    return SB_OK;
}

sb_err sb__api_template_apply(struct sb_api_call *c)
{
    struct sb_store_template t;
    struct sb_store_provider p, saved;
    struct sb_config_creds creds;
    struct sb_store_model *models = NULL;
    const struct sb_json *doc = NULL;
    const char *text = NULL, *prefix = NULL, *warning = NULL;
    struct sb_json_limits lim = {.max_depth = 32};
    struct sb_json *parsed = NULL;
    size_t n = 0;
    bool sys;
    char masked[32];
    struct sb_store *s = c->api->store;
    if (load(c, &t, &sys) != SB_OK || apply_doc(c, &t, &text) != SB_OK ||
        (c->json && sb__api_body_str(c, "model_prefix", false, &prefix) != SB_OK))
        return c->err.code;
    if (sb_json_parse(c->arena, text, strlen(text), &lim, &parsed, &c->err) != SB_OK)
        return c->err.code;
    doc = parsed;
    if (sb_config_entry_from_json(c->arena, SB_CONFIG_PROVIDER, doc, &p, &creds, &c->err) !=
            SB_OK ||
        apply_models(c, &t, p.id, prefix, &models, &n) != SB_OK)
        return c->err.code;
    p.created_by = c->actor.name;
    if (creds.api_key)
        p.auth_method = sb_config_type_find(sb_slice_cstr(p.type))->auth_method;
    if (sb_store_provider_create(s, &p, models, n, &c->err) != SB_OK) {
        if (c->err.code == SB_E_CONFLICT && strstr(c->err.msg, "model"))
            c->suggest[c->nsuggest++] = "set \"model_prefix\" to give this provider's models "
                                        "ids of their own";
        return c->err.code;
    }
    if (creds.api_key) {
        warning = sb__api_key_format_warning(c, p.type, p.base_url, creds.api_key);
        if (sb__api_put_credential(c, p.id, NULL, creds.api_key, masked) != SB_OK) {
            struct sb_error ignore;
            sb_store_provider_delete(s, p.id, true, &ignore); /* all or nothing */
            return c->err.code;
        }
    }
    if (sb_store_provider_get(s, p.id, c->arena, &saved, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    c->changed = true;
    sb__api_write_provider(&c->jw, &saved);
    c->out.len--; /* add the models and warnings to the provider document */
    sb_jw_key(&c->jw, "models");
    sb_jw_arr_begin(&c->jw);
    for (size_t i = 0; i < n; i++)
        sb_jw_cstr(&c->jw, models[i].id);
    sb_jw_arr_end(&c->jw);
    sb_jw_key(&c->jw, "warnings");
    sb_jw_arr_begin(&c->jw);
    if (warning)
        sb_jw_cstr(&c->jw, warning);
    sb_jw_arr_end(&c->jw);
    sb_buf_append_char(&c->out, '}');
    sb__api_audit(c, "template.apply", "provider", p.id, SB_SLICE_NULL,
                  sb__api_doc_provider(c, &saved), "ok");
    return SB_OK;
}
