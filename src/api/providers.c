/* SPDX-License-Identifier: MIT */
/*
 * providers.c - /api/providers: the registry's upstream services.
 *
 * Bodies are config-file provider entries (checked by the same key tables,
 * registry/config_providers.c) plus `api_key`, the credential itself, which is
 * encrypted before it is stored (creds.c). Entries from the config file are
 * system entries: they can be toggled but not edited or deleted here (the
 * store refuses with 409), since the next start would undo it.
 */
#include <string.h>

#include "api/internal.h"
#include "registry/config.h"

/* Loads provider {id} (param 0) into *p, or fails with 404. */
static sb_err load(struct sb_api_call *c, struct sb_store_provider *p)
{
    return sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, p, &c->err);
}

static void answer(struct sb_api_call *c, const struct sb_store_provider *p, const char *warning)
{
    struct sb_jw *j = &c->jw;
    sb__api_write_provider(j, p);
    if (warning) {
        /* Re-open the object to add warnings: drop the closing brace. */
        c->out.len--;
        sb_jw_key(j, "warnings");
        sb_jw_arr_begin(j);
        sb_jw_cstr(j, warning);
        sb_jw_arr_end(j);
        sb_buf_append_char(&c->out, '}');
    }
}

sb_err sb__api_providers_list(struct sb_api_call *c)
{
    struct sb_store_filter f = {0};
    struct sb_store_provider *ps = NULL;
    struct sb_store_page page = {0};
    if (sb__api_paging(c, &f.limit, &f.offset) != SB_OK ||
        sb__api_query_tri(c, "enabled", &f.enabled) != SB_OK)
        return c->err.code;
    if (sb_store_provider_list(c->api->store, &f, c->arena, &ps, &page, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < page.n; i++)
        sb__api_write_provider(&c->jw, &ps[i]);
    sb__api_list_end(c, page.total, f.limit, f.offset);
    return SB_OK;
}

sb_err sb__api_provider_get(struct sb_api_call *c)
{
    struct sb_store_provider p;
    if (load(c, &p) != SB_OK)
        return c->err.code;
    answer(c, &p, NULL);
    return SB_OK;
}

/* Checks the body as a config entry; the credential comes out separately. */
static sb_err parse(struct sb_api_call *c, struct sb_store_provider *p,
                    struct sb_config_creds *creds)
{
    if (sb_config_entry_from_json(c->arena, SB_CONFIG_PROVIDER, c->json, p, creds, &c->err) !=
        SB_OK)
        return c->err.code;
    if (creds->aws_access_key_id || creds->aws_secret_access_key || creds->aws_session_token)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "aws_access_key_id",
                            "AWS credentials are set in the config file for now "
                            "(aws_access_key_id: env:NAME); over the API only api_key is stored");
    p->created_by = c->actor.name;
    if (creds->api_key) /* the walker saw no key reference: the type's own method */
        p->auth_method = sb_config_type_find(sb_slice_cstr(p->type))->auth_method;
    return SB_OK;
}

/* Stores the body's api_key for provider p, if any; *warning set when it looks wrong. */
static sb_err store_key(struct sb_api_call *c, const struct sb_store_provider *p, const char *key,
                        const char **warning)
{
    char masked[32];
    *warning = NULL;
    if (!key)
        return SB_OK;
    *warning = sb__api_key_format_warning(c, p->type, p->base_url, key);
    return sb__api_put_credential(c, p->id, NULL, key, masked);
}

sb_err sb__api_provider_create(struct sb_api_call *c)
{
    struct sb_store_provider p, saved;
    struct sb_config_creds creds;
    const char *warning = NULL;
    struct sb_store *s = c->api->store;
    if (parse(c, &p, &creds) != SB_OK || sb_store_provider_create(s, &p, NULL, 0, &c->err) != SB_OK)
        return c->err.code;
    if (store_key(c, &p, creds.api_key, &warning) != SB_OK) {
        struct sb_error ignore;
        sb_store_provider_delete(s, p.id, true, &ignore); /* all or nothing */
        return c->err.code;
    }
    if (sb_store_provider_get(s, p.id, c->arena, &saved, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    c->changed = true;
    answer(c, &saved, warning);
    sb__api_audit(c, "provider.create", "provider", p.id, SB_SLICE_NULL,
                  sb__api_doc_provider(c, &saved), "ok");
    return SB_OK;
}

sb_err sb__api_provider_update(struct sb_api_call *c)
{
    struct sb_store_provider before, p, after;
    struct sb_config_creds creds;
    const char *warning = NULL;
    const char *id = sb__api_param(c, 0);
    struct sb_store *s = c->api->store;
    if (load(c, &before) != SB_OK || parse(c, &p, &creds) != SB_OK)
        return c->err.code;
    if (strcmp(p.id, id) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id: identifiers never change (%s)", id);
    if (sb_store_provider_update(s, id, &p, &c->err) != SB_OK ||
        store_key(c, &p, creds.api_key, &warning) != SB_OK ||
        sb_store_provider_get(s, id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    answer(c, &after, warning);
    sb__api_audit(c, "provider.update", "provider", id, sb__api_doc_provider(c, &before),
                  sb__api_doc_provider(c, &after), "ok");
    return SB_OK;
}

sb_err sb__api_provider_delete(struct sb_api_call *c)
{
    struct sb_store_provider before;
    const char *cascade = sb__api_query(c, "cascade");
    bool all = cascade && (strcmp(cascade, "true") == 0 || strcmp(cascade, "1") == 0);
    if (load(c, &before) != SB_OK ||
        sb_store_provider_delete(c->api->store, before.id, all, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "provider.delete", "provider", before.id, sb__api_doc_provider(c, &before),
                  SB_SLICE_NULL, "ok");
    return SB_OK;
}

/* {"enabled": bool} sets; no body flips. */
sb_err sb__api_toggle_value(struct sb_api_call *c, bool current, bool *on)
{
    const struct sb_json *v = c->json ? sb_json_get(c->json, "enabled") : NULL;
    if (c->json && (c->json->type != SB_JSON_OBJECT || (c->json->count && !v)))
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                            "expected {\"enabled\": true|false}, or no body to flip");
    if (v && v->type != SB_JSON_TRUE && v->type != SB_JSON_FALSE)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "enabled", "enabled: expected true or false");
    *on = v ? v->type == SB_JSON_TRUE : !current;
    return SB_OK;
}

sb_err sb__api_provider_toggle(struct sb_api_call *c)
{
    struct sb_store_provider before, after;
    bool on;
    struct sb_store *s = c->api->store;
    if (load(c, &before) != SB_OK || sb__api_toggle_value(c, before.enabled, &on) != SB_OK ||
        sb_store_provider_set_enabled(s, before.id, on, &c->err) != SB_OK ||
        sb_store_provider_get(s, before.id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    answer(c, &after, NULL);
    sb__api_audit(c, on ? "provider.enable" : "provider.disable", "provider", before.id,
                  sb__api_doc_provider(c, &before), sb__api_doc_provider(c, &after), "ok");
    return SB_OK;
}

sb_err sb__api_provider_credentials(struct sb_api_call *c)
{
    struct sb_store_provider p, after;
    const char *key = NULL, *warning = NULL;
    if (load(c, &p) != SB_OK || sb__api_body_str(c, "api_key", true, &key) != SB_OK)
        return c->err.code;
    if (!*key)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "api_key", "api_key: must not be empty");
    if (p.is_system && p.api_key)
        return sb__api_fail(c, SB_E_CONFLICT, "api_key",
                            "provider %s takes its key from the config file (%s)", p.id, p.api_key);
    if (store_key(c, &p, key, &warning) != SB_OK ||
        sb_store_provider_get(c->api->store, p.id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    answer(c, &after, warning);
    sb__api_audit(c, "provider.credentials", "provider", p.id, sb__api_doc_provider(c, &p),
                  sb__api_doc_provider(c, &after), "ok");
    return SB_OK;
}
