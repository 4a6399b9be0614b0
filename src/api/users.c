/* SPDX-License-Identifier: MIT */
/*
 * users.c - /api/users (admin only): console accounts and their roles.
 *
 * A user is named by username everywhere (the API's id); it never changes.
 * Password hashes never leave the store: answers and audit documents carry
 * username, role, status and times only. Rules beyond the store's:
 *   - the last active admin cannot be deleted, demoted or disabled (409):
 *     the admin token still works, but a console nobody can administer is
 *     a support call;
 *   - disabling, deleting, changing the role or the password of a user ends
 *     their sessions (store and the data plane's mirror): whoever held the
 *     old password or rights must log in again.
 * Unknown body members are refused (400 with the member as field), never
 * silently ignored. PUT also takes the user's limits (issue 7: rpm, tpm,
 * budget_usd, budget_period; api/quota.c), and GET shows them with the
 * user's spend in the current period.
 */
#include <string.h>

#include "api/internal.h"
#include "crypto/password.h"
#include "store/quota.h"

sb_err sb__api_body_only(struct sb_api_call *c, const char *const *keys)
{
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "the body must be a JSON object");
    for (const struct sb_json *m = c->json->child; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; keys[i] && !known; i++)
            known = sb_slice_eq_cstr(m->key, keys[i]);
        if (!known) {
            const char *k = sb_arena_strndup(c->arena, m->key.p, m->key.len);
            return sb__api_fail(c, SB_E_BAD_REQUEST, k, "%s: unknown member", k);
        }
    }
    return SB_OK;
}

sb_err sb_api_user_add(struct sb_store *s, const char *username, const char *password,
                       const char *role, struct sb_error *err)
{
    char hash[SB_PASSWORD_HASH_MAX];
    if (sb_store_check_username(username, err) != SB_OK ||
        sb_store_check_role(role, err) != SB_OK ||
        sb_password_hash(sb_slice_cstr(password), hash, err) != SB_OK)
        return err->code;
    struct sb_store_user u = {.username = username, .password_hash = hash, .role = role};
    return sb_store_user_create(s, &u, NULL, err);
}

static void write_user(struct sb_jw *j, const struct sb_store_user *u)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_cstr(j, u->username);
    sb_jw_key(j, "username");
    sb_jw_cstr(j, u->username);
    sb_jw_key(j, "role");
    sb_jw_cstr(j, u->role);
    sb_jw_key(j, "status");
    sb_jw_cstr(j, u->status);
    sb__api_time(j, "created_at", u->created_at);
    sb__api_time(j, "updated_at", u->updated_at);
    sb__api_time(j, "last_login_at", u->last_login_at);
    sb_jw_obj_end(j);
}

/* The user as an audit document (never the hash). */
static struct sb_slice doc(struct sb_api_call *c, const struct sb_store_user *u)
{
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    write_user(&j, u);
    struct sb_slice s = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

static sb_err load(struct sb_api_call *c, struct sb_store_user *u)
{
    return sb_store_user_get(c->api->store, sb__api_param(c, 0), c->arena, u, &c->err);
}

sb_err sb__api_users_list(struct sb_api_call *c)
{
    struct sb_store_paging pg;
    struct sb_store_user *us = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (sb__api_paging(c, &pg.limit, &pg.offset) != SB_OK ||
        sb_store_user_list(c->api->store, &pg, c->arena, &us, &n, &total, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < n; i++)
        write_user(&c->jw, &us[i]);
    sb__api_list_end(c, total, pg.limit, pg.offset);
    return SB_OK;
}

/* Writes u with its limits and spend (GET and PUT of one user). */
static sb_err write_user_limits(struct sb_api_call *c, const struct sb_store_user *u)
{
    struct sb_store_limits l;
    if (sb_store_user_limits_get(c->api->store, u->username, c->arena, &l, &c->err) != SB_OK)
        return c->err.code;
    write_user(&c->jw, u);
    return sb__api_limits_append(c, SB_SPEND_BY_USER, u->username, &l);
}

sb_err sb__api_user_get(struct sb_api_call *c)
{
    struct sb_store_user u;
    if (load(c, &u) != SB_OK)
        return c->err.code;
    return write_user_limits(c, &u);
}

sb_err sb__api_user_create(struct sb_api_call *c)
{
    static const char *const keys[] = {"username", "password", "role", NULL};
    const char *username = NULL, *password = NULL, *role = NULL;
    struct sb_store_user u;
    if (sb__api_body_only(c, keys) != SB_OK ||
        sb__api_body_str(c, "username", true, &username) != SB_OK ||
        sb__api_body_str(c, "password", true, &password) != SB_OK ||
        sb__api_body_str(c, "role", false, &role) != SB_OK ||
        sb_api_user_add(c->api->store, username, password, role ? role : "user", &c->err) !=
            SB_OK ||
        sb_store_user_get(c->api->store, username, c->arena, &u, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    write_user(&c->jw, &u);
    sb__api_audit(c, "user.create", "user", u.username, SB_SLICE_NULL, doc(c, &u), "ok");
    return SB_OK;
}

/* 409 when u is the last active admin and the change would leave none. */
static sb_err keep_an_admin(struct sb_api_call *c, const struct sb_store_user *u, bool leaving)
{
    int64_t admins = 0;
    if (!leaving || strcmp(u->role, "admin") != 0 || strcmp(u->status, "active") != 0)
        return SB_OK;
    if (sb_store_user_count_admins(c->api->store, &admins, &c->err) != SB_OK)
        return c->err.code;
    if (admins <= 1)
        return sb__api_fail(c, SB_E_CONFLICT, NULL,
                            "%s is the last active admin: make another admin first", u->username);
    return SB_OK;
}

/* Reads and checks PUT's members into up. */
static sb_err parse_update(struct sb_api_call *c, struct sb_store_user_update *up, char *hash)
{
    static const char *const keys[] = {"role", "password", "status",     "username",      "id",
                                       "rpm",  "tpm",      "budget_usd", "budget_period", NULL};
    const char *pw = NULL, *name = NULL;
    if (sb__api_body_only(c, keys) != SB_OK || sb__api_body_str(c, "role", false, &up->role) ||
        sb__api_body_str(c, "status", false, &up->status) ||
        sb__api_body_str(c, "password", false, &pw) ||
        sb__api_body_str(c, "username", false, &name))
        return c->err.code;
    if (name && strcmp(name, sb__api_param(c, 0)) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "username", "usernames never change");
    if (up->role && sb_store_check_role(up->role, &c->err) != SB_OK)
        return c->err.code;
    if (up->status && strcmp(up->status, "active") != 0 && strcmp(up->status, "disabled") != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "status", "status: expected active or disabled");
    if (pw && sb_password_hash(sb_slice_cstr(pw), hash, &c->err) != SB_OK)
        return c->err.code;
    up->password_hash = pw ? hash : NULL;
    return SB_OK;
}

/* The limits part of PUT (issue 7): parsed before anything changes, set after. */
static sb_err set_limits(struct sb_api_call *c, const char *username, bool parse_only,
                         struct sb_store_limits *before, struct sb_store_limits *after)
{
    bool any = false;
    if (parse_only) {
        if (sb_store_user_limits_get(c->api->store, username, c->arena, before, &c->err) != SB_OK)
            return c->err.code;
        *after = *before;
        return sb__api_limits_parse(c, after, &any);
    }
    if (memcmp(before, after, sizeof(*after)) == 0)
        return SB_OK;
    if (sb_store_user_limits_set(c->api->store, username, after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true; /* the snapshot holds users' limits */
    sb__api_audit(c, "user.limits", "user", username, sb__api_limits_doc(c, before),
                  sb__api_limits_doc(c, after), "ok");
    return SB_OK;
}

sb_err sb__api_user_update(struct sb_api_call *c)
{
    struct sb_store_user before, after;
    struct sb_store_user_update up = {0};
    struct sb_store_limits lim_before, lim_after;
    char hash[SB_PASSWORD_HASH_MAX];
    if (load(c, &before) != SB_OK || parse_update(c, &up, hash) != SB_OK ||
        set_limits(c, before.username, true, &lim_before, &lim_after) != SB_OK)
        return c->err.code;
    bool demote = up.role && strcmp(up.role, "admin") != 0;
    bool disable = up.status && strcmp(up.status, "disabled") == 0;
    if (keep_an_admin(c, &before, demote || disable) != SB_OK ||
        sb_store_user_update(c->api->store, before.username, &up, &c->err) != SB_OK ||
        set_limits(c, before.username, false, &lim_before, &lim_after) != SB_OK)
        return c->err.code;
    bool role_changed = up.role && strcmp(up.role, before.role) != 0;
    if ((disable || role_changed || up.password_hash) &&
        sb__api_kill_sessions(c, before.username) != SB_OK)
        return c->err.code;
    if (sb_store_user_get(c->api->store, before.username, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    /* The snapshot's keys know their owners' status: any change of it republishes. */
    c->changed = c->changed || role_changed || (up.status && strcmp(up.status, before.status) != 0);
    struct sb_slice a = doc(c, &after);
    if (up.password_hash) /* say that it changed, never what to */
        a = sb_slice_cstr(
            sb_arena_printf(c->arena, "%.*s,\"password_changed\":true}", (int)a.len - 1, a.p));
    sb__api_audit(c, "user.update", "user", before.username, doc(c, &before), a, "ok");
    return write_user_limits(c, &after);
}

sb_err sb__api_user_delete(struct sb_api_call *c)
{
    struct sb_store_user before;
    if (load(c, &before) != SB_OK || keep_an_admin(c, &before, true) != SB_OK ||
        sb_store_user_delete(c->api->store, before.username, &c->err) != SB_OK ||
        sb__api_kill_sessions(c, before.username) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true; /* their keys and personal credentials are gone */
    sb__api_audit(c, "user.delete", "user", before.username, doc(c, &before), SB_SLICE_NULL, "ok");
    return SB_OK;
}
