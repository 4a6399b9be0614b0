/* SPDX-License-Identifier: MIT */
/*
 * keys.c - /api/keys: virtual keys (sk-sb-...), the normal credential on /v1.
 *
 * Every role may manage keys; non-admins see and touch only their own, and
 * another user's key reads as 404 (not 403: we do not confirm it exists).
 * The key text is generated here, returned once in the create answer
 * ("key"), and never stored: the store keeps its SHA-256 and a display
 * prefix (crypto/vkey.h). Revoked and expired keys stay listed, marked, so
 * their owners can tell why a client fails.
 *
 * Owner: a session caller's keys are theirs; an admin may name another
 * user ("user"); keys made with the admin token belong to nobody unless
 * "user" is given. "models" names model or route ids that must exist and
 * be visible to the owner (global models plus their own); none means every
 * model the owner can see.
 *
 * Limits (issue 7): an admin may give rpm, tpm, budget_usd and
 * budget_period on create or with PUT /api/keys/{id} (api/quota.c); a key's
 * GET shows them with its spend in the current period.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "crypto/secret.h"
#include "crypto/vkey.h"
#include "registry/registry.h"
#include "store/quota.h"

#define KEY_NAME_MAX 128
#define KEY_MODELS_MAX 64

/* ---- shared with the command line ---- */

/* The view of owner: NULL (everything) for nobody and for admins. */
static sb_err owner_view(struct sb_store *s, const char *owner, struct sb_arena *a,
                         const char **view, struct sb_error *err)
{
    struct sb_store_user u;
    *view = NULL;
    if (!owner)
        return SB_OK;
    if (sb_store_user_get(s, owner, a, &u, err) != SB_OK || strcmp(u.status, "active") != 0) {
        sb_fail(err, SB_E_BAD_REQUEST, "user: no active user named '%s'", owner);
        snprintf(err->field, sizeof(err->field), "user");
        return err->code;
    }
    *view = strcmp(u.role, "admin") == 0 ? NULL : u.username;
    return SB_OK;
}

/* SB_OK when id is a model visible in view or a route. */
static bool usable(struct sb_store *s, const char *id, const char *view, struct sb_arena *a)
{
    struct sb_store_model m;
    struct sb_store_route r;
    struct sb_error ignore;
    return sb_store_model_get(s, id, view, a, &m, &ignore) == SB_OK ||
           sb_store_route_get(s, id, a, &r, &ignore) == SB_OK;
}

/* The index of the first model not usable by view, or n. */
static size_t first_unusable(struct sb_store *s, const char *const *models, size_t n,
                             const char *view, struct sb_arena *a)
{
    for (size_t i = 0; i < n; i++)
        if (!usable(s, models[i], view, a))
            return i;
    return n;
}

static sb_err check_new(const struct sb_api_key_new *k, struct sb_error *err)
{
    size_t len = k->name ? strlen(k->name) : 0;
    if (len == 0 || len > KEY_NAME_MAX) {
        sb_fail(err, SB_E_BAD_REQUEST, "name: 1 to %d bytes", KEY_NAME_MAX);
        snprintf(err->field, sizeof(err->field), "name");
        return err->code;
    }
    if (k->expires_at && k->expires_at <= sb__api_now_ms()) {
        sb_fail(err, SB_E_BAD_REQUEST, "expires_at: the time is in the past");
        snprintf(err->field, sizeof(err->field), "expires_at");
        return err->code;
    }
    return SB_OK;
}

sb_err sb_api_key_new(struct sb_store *s, const struct sb_api_key_new *k, char key[50], int64_t *id,
                      struct sb_error *err)
{
    const char *view = NULL;
    char hash[SB_HASH_TEXT_LEN + 1], prefix[SB_VKEY_PREFIX_LEN + 1];
    struct sb_vkey_hash h;
    struct sb_arena *a = sb_arena_create(4096);
    sb_err rc = check_new(k, err);
    if (rc == SB_OK)
        rc = owner_view(s, k->owner, a, &view, err);
    size_t bad = rc == SB_OK ? first_unusable(s, k->models, k->nmodels, view, a) : 0;
    if (rc == SB_OK && bad < k->nmodels) {
        rc = sb_fail(err, SB_E_BAD_REQUEST, "models[%zu]: '%s' is not a model or route %s can use",
                     bad, k->models[bad], k->owner ? k->owner : "the key");
        snprintf(err->field, sizeof(err->field), "models");
    }
    if (rc == SB_OK)
        rc = sb_vkey_generate(key, err);
    if (rc == SB_OK) {
        struct sb_slice t = {key, SB_VKEY_LEN};
        sb_vkey_hash(t, &h);
        sb_vkey_hash_format(&h, hash);
        sb_vkey_prefix(t, prefix);
        struct sb_store_api_key row = {
            .name = k->name,
            .key_hash = hash,
            .key_prefix = prefix,
            .user_id = k->owner,
            .models = (const char **)k->models,
            .nmodels = k->nmodels,
            .expires_at = k->expires_at,
        };
        rc = sb_store_key_create(s, &row, id, err);
    }
    if (rc != SB_OK)
        sb_secret_wipe(key, 50);
    sb_arena_free(a);
    return rc;
}

/* ---- answers ---- */

static void write_key(struct sb_jw *j, const struct sb_store_api_key *k)
{
    char masked[32], id[24];
    snprintf(id, sizeof(id), "%lld", (long long)k->id);
    sb_vkey_mask(k->key_prefix ? k->key_prefix : "", masked);
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_cstr(j, id);
    sb_jw_key(j, "name");
    sb_jw_cstr(j, k->name);
    sb_jw_key(j, "prefix");
    sb_jw_cstr(j, k->key_prefix);
    sb_jw_key(j, "masked");
    sb_jw_cstr(j, masked);
    sb_jw_key(j, "user");
    sb_jw_cstr(j, k->user_id);
    sb_jw_key(j, "models");
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < k->nmodels; i++)
        sb_jw_cstr(j, k->models[i]);
    sb_jw_arr_end(j);
    sb_jw_key(j, "revoked");
    sb_jw_bool(j, k->revoked);
    sb_jw_key(j, "expired");
    sb_jw_bool(j, k->expires_at > 0 && k->expires_at <= sb__api_now_ms());
    sb__api_time(j, "expires_at", k->expires_at);
    sb__api_time(j, "revoked_at", k->revoked_at);
    sb__api_time(j, "last_used_at", k->last_used_at);
    sb__api_time(j, "created_at", k->created_at);
    sb_jw_obj_end(j);
}

static struct sb_slice doc(struct sb_api_call *c, const struct sb_store_api_key *k)
{
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    write_key(&j, k);
    struct sb_slice s = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

static bool is_admin(const struct sb_api_call *c)
{
    return c->actor.role == SB_ROLE_ADMIN;
}

/* Loads key {id}; another user's key reads as 404 for non-admins. */
static sb_err load(struct sb_api_call *c, struct sb_store_api_key *k)
{
    const char *p = sb__api_param(c, 0);
    unsigned long long id = 0;
    if (!sb_slice_to_u64(sb_slice_cstr(p), &id) || id == 0 || id > INT64_MAX ||
        sb_store_key_get(c->api->store, (int64_t)id, c->arena, k, &c->err) != SB_OK ||
        (!is_admin(c) && (!k->user_id || strcmp(k->user_id, c->actor.name) != 0)))
        return sb__api_fail(c, SB_E_NOT_FOUND, NULL, "no key with id '%s'", p);
    return SB_OK;
}

sb_err sb__api_keys_list(struct sb_api_call *c)
{
    struct sb_store_paging pg;
    struct sb_store_api_key *ks = NULL;
    size_t n = 0;
    int64_t total = 0;
    const char *user = is_admin(c) ? sb__api_query(c, "user") : c->actor.name;
    if (sb__api_paging(c, &pg.limit, &pg.offset) != SB_OK ||
        sb_store_key_list(c->api->store, user, &pg, c->arena, &ks, &n, &total, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < n; i++)
        write_key(&c->jw, &ks[i]);
    sb__api_list_end(c, total, pg.limit, pg.offset);
    return SB_OK;
}

/* Writes k with its limits and spend (GET and PUT of one key). */
static sb_err write_key_limits(struct sb_api_call *c, const struct sb_store_api_key *k)
{
    struct sb_store_limits l;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)k->id);
    if (sb_store_key_limits_get(c->api->store, k->id, c->arena, &l, &c->err) != SB_OK)
        return c->err.code;
    write_key(&c->jw, k);
    return sb__api_limits_append(c, SB_SPEND_BY_KEY, id, &l);
}

sb_err sb__api_key_get(struct sb_api_call *c)
{
    struct sb_store_api_key k;
    if (load(c, &k) != SB_OK)
        return c->err.code;
    return write_key_limits(c, &k);
}

sb_err sb__api_key_update(struct sb_api_call *c)
{
    static const char *const keys[] = {"rpm", "tpm", "budget_usd", "budget_period", NULL};
    struct sb_store_api_key k;
    struct sb_store_limits before, after;
    bool any = false;
    if (load(c, &k) != SB_OK || sb__api_body_only(c, keys) != SB_OK ||
        sb_store_key_limits_get(c->api->store, k.id, c->arena, &before, &c->err) != SB_OK)
        return c->err.code;
    after = before;
    if (sb__api_limits_parse(c, &after, &any) != SB_OK ||
        sb_store_key_limits_set(c->api->store, k.id, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true; /* the snapshot's key carries its limits */
    sb__api_audit(c, "key.limits", "key", sb__api_param(c, 0), sb__api_limits_doc(c, &before),
                  sb__api_limits_doc(c, &after), "ok");
    return write_key_limits(c, &k);
}

/* ---- create ---- */

/* "models": an array of non-empty strings. */
static sb_err parse_models(struct sb_api_call *c, struct sb_api_key_new *k)
{
    const struct sb_json *v = sb_json_get(c->json, "models");
    if (!v || v->type == SB_JSON_NULL)
        return SB_OK;
    if (v->type != SB_JSON_ARRAY || v->count > KEY_MODELS_MAX)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "models",
                            "models: expected an array of at most %d model or route ids",
                            KEY_MODELS_MAX);
    const char **ids = sb_arena_alloc(c->arena, (v->count + 1) * sizeof(*ids));
    size_t n = 0;
    for (const struct sb_json *e = v->child; e; e = e->next) {
        if (e->type != SB_JSON_STRING || !e->str.len || memchr(e->str.p, '\0', e->str.len))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "models",
                                "models[%zu]: expected a model or route id", n);
        ids[n++] = sb_arena_strndup(c->arena, e->str.p, e->str.len);
    }
    k->models = ids;
    k->nmodels = n;
    return SB_OK;
}

/* Who will own the key (see the file comment). */
static sb_err parse_owner(struct sb_api_call *c, struct sb_api_key_new *k)
{
    const char *user = NULL;
    if (sb__api_body_str(c, "user", false, &user) != SB_OK)
        return c->err.code;
    if (user && !is_admin(c) && strcmp(user, c->actor.name) != 0)
        return sb__api_fail(c, SB_E_FORBIDDEN, "user",
                            "user: only an admin creates keys for someone else");
    k->owner = user ? user : c->actor.via_session ? c->actor.name : NULL;
    return SB_OK;
}

/* Up to 3 ids near models[bad] that the owner may use, as the error's suggestions. */
static void suggest(struct sb_api_call *c, const char *bad, const char *owner)
{
    const char *view = NULL, *near[8];
    struct sb_error ignore;
    struct sb_registry *reg = sb_registry_acquire();
    size_t n = reg ? sb_registry_suggest(reg, sb_slice_cstr(bad), owner, near, 8) : 0;
    if (owner && owner_view(c->api->store, owner, c->arena, &view, &ignore) != SB_OK)
        n = 0;
    for (size_t i = 0; i < n && c->nsuggest < 3; i++)
        if (usable(c->api->store, near[i], view, c->arena))
            c->suggest[c->nsuggest++] = sb_arena_strndup(c->arena, near[i], strlen(near[i]));
    if (reg)
        sb_registry_release(reg);
}

static sb_err answer_created(struct sb_api_call *c, int64_t id, const char *key)
{
    struct sb_store_api_key k;
    if (sb_store_key_get(c->api->store, id, c->arena, &k, &c->err) != SB_OK)
        return c->err.code;
    write_key(&c->jw, &k);
    c->out.len--; /* re-open the object: the key text, this once */
    sb_jw_key(&c->jw, "key");
    sb_jw_cstr(&c->jw, key);
    sb_buf_append_char(&c->out, '}');
    c->status = 201;
    c->changed = true;
    sb__api_audit(c, "key.create", "key", sb_arena_printf(c->arena, "%lld", (long long)id),
                  SB_SLICE_NULL, doc(c, &k), "ok");
    return SB_OK;
}

sb_err sb__api_key_create(struct sb_api_call *c)
{
    static const char *const keys[] = {"name", "models",     "expires_at",    "user", "rpm",
                                       "tpm",  "budget_usd", "budget_period", NULL};
    struct sb_api_key_new k = {0};
    struct sb_store_limits lim = {0};
    bool limited = false;
    char key[SB_VKEY_LEN + 1];
    int64_t id = 0;
    if (sb__api_body_only(c, keys) != SB_OK ||
        sb__api_body_str(c, "name", true, &k.name) != SB_OK || parse_models(c, &k) != SB_OK ||
        sb__api_body_time(c, "expires_at", &k.expires_at) != SB_OK || parse_owner(c, &k) != SB_OK ||
        sb__api_limits_parse(c, &lim, &limited) != SB_OK)
        return c->err.code;
    if (sb_api_key_new(c->api->store, &k, key, &id, &c->err) != SB_OK) {
        const char *view = NULL;
        struct sb_error ignore;
        if (strcmp(c->err.field, "models") == 0 &&
            owner_view(c->api->store, k.owner, c->arena, &view, &ignore) == SB_OK) {
            size_t bad = first_unusable(c->api->store, k.models, k.nmodels, view, c->arena);
            if (bad < k.nmodels)
                suggest(c, k.models[bad], k.owner);
        }
        return c->err.code;
    }
    if (limited && sb_store_key_limits_set(c->api->store, id, &lim, &c->err) != SB_OK) {
        struct sb_error ignore;
        sb_store_key_delete(c->api->store, id, &ignore); /* no key without its limits */
        sb_secret_wipe(key, sizeof(key));
        return c->err.code;
    }
    sb_err rc = answer_created(c, id, key);
    sb_secret_wipe(key, sizeof(key));
    return rc;
}

/* ---- revoke, delete ---- */

sb_err sb__api_key_revoke(struct sb_api_call *c)
{
    struct sb_store_api_key before, after;
    if (load(c, &before) != SB_OK ||
        sb_store_key_revoke(c->api->store, before.id, sb__api_now_ms(), &c->err) != SB_OK ||
        sb_store_key_get(c->api->store, before.id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    write_key(&c->jw, &after);
    sb__api_audit(c, "key.revoke", "key", sb__api_param(c, 0), doc(c, &before), doc(c, &after),
                  "ok");
    return SB_OK;
}

sb_err sb__api_key_delete(struct sb_api_call *c)
{
    struct sb_store_api_key before;
    if (load(c, &before) != SB_OK ||
        sb_store_key_delete(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "key.delete", "key", sb__api_param(c, 0), doc(c, &before), SB_SLICE_NULL,
                  "ok");
    return SB_OK;
}
