/* SPDX-License-Identifier: MIT */
/*
 * me_credentials.c - /api/me/credentials: a user's own provider keys.
 *
 * A user's key for a provider is used for that user's requests; the system
 * key is the fallback unless the provider requires personal keys. The list
 * shows every enabled provider with what applies to the caller: their own
 * key (masked), whether the provider requires one, whether a system key
 * exists. A key is encrypted at once under the keyring with the row
 * identity "<provider>/<user>" as associated data (creds.c), so it cannot be
 * moved to another user's row; only the masked form is ever returned or
 * audited. The admin token is not a user and has no personal keys.
 */
#include <string.h>

#include "api/internal.h"

/* 400 for the admin token: personal keys belong to users. */
static sb_err need_user(struct sb_api_call *c)
{
    if (c->actor.via_session)
        return SB_OK;
    return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                        "personal provider keys belong to users: log in as a user (POST "
                        "/api/auth/login); the admin token sets system keys with PUT "
                        "/api/providers/{id}/credentials");
}

static const struct sb_store_credential *mine(const struct sb_store_credential *cs, size_t n,
                                              const char *provider)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cs[i].provider, provider) == 0)
            return &cs[i];
    return NULL;
}

static void write_entry(struct sb_jw *j, const struct sb_store_provider *p,
                        const struct sb_store_credential *own)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "provider");
    sb_jw_cstr(j, p->id);
    sb_jw_key(j, "name");
    sb_jw_cstr(j, p->name);
    sb_jw_key(j, "type");
    sb_jw_cstr(j, p->type);
    sb_jw_key(j, "personal_key");
    if (own) {
        sb_jw_obj_begin(j);
        sb_jw_key(j, "masked");
        sb_jw_cstr(j, own->masked);
        sb__api_time(j, "updated_at", own->updated_at);
        sb_jw_obj_end(j);
    } else {
        sb_jw_null(j);
    }
    sb_jw_key(j, "personal_keys_required");
    sb_jw_bool(j, p->personal_keys_required);
    sb_jw_key(j, "system_key");
    sb_jw_bool(j, p->key_masked || p->api_key || p->aws_access_key_id);
    sb_jw_obj_end(j);
}

sb_err sb__api_me_credentials_list(struct sb_api_call *c)
{
    struct sb_store_filter f = {.enabled = SB_STORE_YES};
    struct sb_store_provider *ps = NULL;
    struct sb_store_page page = {0};
    struct sb_store_credential *cs = NULL;
    size_t ncs = 0;
    struct sb_store *s = c->api->store;
    if (need_user(c) != SB_OK ||
        sb_store_provider_list(s, &f, c->arena, &ps, &page, &c->err) != SB_OK ||
        sb_store_credential_list(s, c->actor.name, c->arena, &cs, &ncs, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < page.n; i++)
        write_entry(&c->jw, &ps[i], mine(cs, ncs, ps[i].id));
    sb__api_list_end(c, (int64_t)page.n, (int64_t)page.n, 0);
    return SB_OK;
}

/* The audit document of a personal credential: who, which provider, masked. */
static struct sb_slice doc(struct sb_api_call *c, const char *provider, const char *masked)
{
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "provider");
    sb_jw_cstr(&j, provider);
    sb_jw_key(&j, "user");
    sb_jw_cstr(&j, c->actor.name);
    sb_jw_key(&j, "masked");
    sb_jw_cstr(&j, masked);
    sb_jw_obj_end(&j);
    struct sb_slice s = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

sb_err sb__api_me_credential_put(struct sb_api_call *c)
{
    static const char *const keys[] = {"api_key", NULL};
    struct sb_store_provider p;
    struct sb_store_credential before = {0};
    struct sb_error none;
    const char *key = NULL, *warning = NULL;
    char masked[32];
    if (need_user(c) != SB_OK || sb__api_body_only(c, keys) != SB_OK ||
        sb__api_body_str(c, "api_key", true, &key) != SB_OK ||
        sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, &p, &c->err) != SB_OK)
        return c->err.code;
    if (!*key)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "api_key", "api_key: must not be empty");
    bool had = sb_store_credential_get(c->api->store, p.id, c->actor.name, NULL, c->arena, &before,
                                       &none) == SB_OK;
    warning = sb__api_key_format_warning(c, p.type, p.base_url, key);
    if (sb__api_put_credential(c, p.id, c->actor.name, key, masked) != SB_OK)
        return c->err.code;
    c->changed = true;
    struct sb_slice after = doc(c, p.id, masked);
    sb_jw_raw(&c->jw, after);
    if (warning) {
        c->out.len--;
        sb_jw_key(&c->jw, "warnings");
        sb_jw_arr_begin(&c->jw);
        sb_jw_cstr(&c->jw, warning);
        sb_jw_arr_end(&c->jw);
        sb_buf_append_char(&c->out, '}');
    }
    sb__api_audit(c, "credential.put", "credential",
                  sb_arena_printf(c->arena, "%s/%s", p.id, c->actor.name),
                  had ? doc(c, p.id, before.masked) : SB_SLICE_NULL, after, "ok");
    return SB_OK;
}

sb_err sb__api_me_credential_delete(struct sb_api_call *c)
{
    struct sb_store_credential before;
    const char *provider = sb__api_param(c, 0);
    struct sb_store *s = c->api->store;
    if (need_user(c) != SB_OK ||
        sb_store_credential_get(s, provider, c->actor.name, NULL, c->arena, &before, &c->err) !=
            SB_OK ||
        sb_store_credential_delete(s, provider, c->actor.name, NULL, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "credential.delete", "credential",
                  sb_arena_printf(c->arena, "%s/%s", provider, c->actor.name),
                  doc(c, provider, before.masked), SB_SLICE_NULL, "ok");
    return SB_OK;
}
