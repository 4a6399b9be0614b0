/* SPDX-License-Identifier: MIT */
/*
 * session.c - console sessions: login, logout, the cookie and the CSRF token.
 *
 * A login checks the password (argon2id; a dummy verification of the same
 * cost for an unknown or disabled user, so timing does not tell which names
 * exist), then stores only the hash of a fresh 256-bit token and sends the
 * token as the cookie:
 *   sb_session=<token>; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200
 * There is no `Secure` attribute: switchboard serves plain HTTP (loopback
 * by default); a TLS-terminating proxy in front should add it. The CSRF
 * token is derived from the session token (crypto/session.h), returned by
 * login and GET /api/me, and required as x-csrf-token on every
 * cookie-authenticated write.
 *
 * Sessions end at an absolute age (SESSION_TTL_MS) or after SESSION_IDLE_MS
 * without an /api call; the store is the truth, and every change is mirrored
 * into the data plane's session table (gateway/sessions.h) when there is one.
 * Failed logins count per username and per client address (limiter.c).
 */
#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "core/log.h"
#include "crypto/password.h"
#include "crypto/secret.h"
#include "crypto/session.h"
#include "crypto/vkey.h"
#include "gateway/sessions.h"

#define SESSION_TTL_MS (12 * 3600 * 1000LL) /* a working day; then log in again */
#define SESSION_IDLE_MS (2 * 3600 * 1000LL) /* a console left open and unused */
#define TOUCH_EVERY_MS (60 * 1000LL)        /* last_seen_at is written at most once a minute */

unsigned sb__api_role_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } roles[] = {
        {"admin", SB_ROLE_ADMIN},
        {"developer", SB_ROLE_DEVELOPER},
        {"user", SB_ROLE_USER},
    };
    for (size_t i = 0; name && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(name, roles[i].name) == 0)
            return roles[i].bit;
    return 0;
}

/* The value of the sb_session cookie, or an empty slice. */
static struct sb_slice cookie_value(struct sb_slice h)
{
    static const char name[] = SB_SESSION_COOKIE "=";
    size_t n = sizeof(name) - 1;
    while (h.len) {
        while (h.len && (*h.p == ' ' || *h.p == ';'))
            h.p++, h.len--;
        const char *semi = memchr(h.p, ';', h.len);
        size_t len = semi ? (size_t)(semi - h.p) : h.len;
        if (len >= n && memcmp(h.p, name, n) == 0)
            return (struct sb_slice){h.p + n, len - n};
        h.p += len;
        h.len -= len;
    }
    return SB_SLICE_NULL;
}

/* ---- the data plane's mirror ---- */

static void mirror_put(struct sb_api *a, struct sb_slice token, const char *user, const char *role,
                       int64_t expires_at)
{
    struct sb_session_info info = {.expires_at_ms = expires_at};
    struct sb_vkey_hash h, csrf_h;
    char csrf[SB_CSRF_LEN + 1];
    if (!a->sessions)
        return;
    snprintf(info.username, sizeof(info.username), "%s", user);
    snprintf(info.role, sizeof(info.role), "%s", role);
    sb_session_csrf(token, csrf);
    sb_vkey_hash(sb_slice_cstr(csrf), &csrf_h);
    memcpy(info.csrf, csrf_h.digest, sizeof(info.csrf));
    sb_vkey_hash(token, &h);
    sb_sessions_put(a->sessions, h.digest, &info);
}

static void mirror_del(struct sb_api *a, const char *token_hash)
{
    struct sb_vkey_hash h;
    if (a->sessions && sb_vkey_hash_parse(token_hash, &h))
        sb_sessions_del(a->sessions, h.digest);
}

/* At start the store has only token hashes, so the CSRF digest is unknown
 * (all zero) until the session's next /api call puts it again. */
sb_err sb__api_sessions_load(struct sb_api *a, struct sb_error *err)
{
    struct sb_store_session *ss = NULL;
    size_t n = 0;
    if (!a->sessions)
        return SB_OK;
    struct sb_arena *arena = sb_arena_create(4096);
    sb_err rc = sb_store_session_list_live(a->store, sb__api_now_ms(), arena, &ss, &n, err);
    for (size_t i = 0; rc == SB_OK && i < n; i++) {
        struct sb_session_info info = {.expires_at_ms = ss[i].expires_at};
        struct sb_vkey_hash h;
        if (!sb_vkey_hash_parse(ss[i].token_hash, &h))
            continue;
        snprintf(info.username, sizeof(info.username), "%s", ss[i].username);
        snprintf(info.role, sizeof(info.role), "%s", ss[i].role);
        sb_sessions_put(a->sessions, h.digest, &info);
    }
    sb_arena_free(arena);
    return rc;
}

sb_err sb__api_kill_sessions(struct sb_api_call *c, const char *username)
{
    if (sb_store_session_delete_user(c->api->store, username, NULL, &c->err) != SB_OK)
        return c->err.code;
    if (c->api->sessions)
        sb_sessions_del_user(c->api->sessions, username);
    return SB_OK;
}

/* ---- who is calling ---- */

bool sb__api_session_auth(struct sb_api_call *c)
{
    struct sb_slice token = cookie_value(c->cookie);
    struct sb_store_session ss;
    struct sb_error err = {0};
    char th[SB_HASH_TEXT_LEN + 1];
    int64_t now = sb__api_now_ms();
    if (!sb_session_token_looks_valid(token))
        return false;
    sb_session_token_hash(token, th);
    if (sb_store_session_get(c->api->store, th, now, c->arena, &ss, &err) != SB_OK)
        return false;
    unsigned role = sb__api_role_bit(ss.role);
    if (!role || !ss.status || strcmp(ss.status, "active") != 0)
        return false;
    if (now - ss.last_seen_at > SESSION_IDLE_MS) {
        sb_store_session_delete(c->api->store, th, &err);
        mirror_del(c->api, th);
        return false;
    }
    if (now - ss.last_seen_at > TOUCH_EVERY_MS)
        sb_store_session_touch(c->api->store, th, now, &err);
    mirror_put(c->api, token, ss.username, ss.role, ss.expires_at);
    snprintf(c->actor.name, sizeof(c->actor.name), "%s", ss.username);
    c->actor.role = role;
    c->actor.via_session = true;
    c->session = token;
    return true;
}

bool sb__api_csrf_ok(const struct sb_api_call *c)
{
    return c->session.len && c->csrf.len && sb_session_csrf_check(c->session, c->csrf);
}

/* ---- login ---- */

static void audit_login(struct sb_api_call *c, const char *username, const char *outcome,
                        const char *reason)
{
    if (!c->actor.name[0])
        snprintf(c->actor.name, sizeof(c->actor.name), "%s", username);
    char *doc = reason ? sb_arena_printf(c->arena, "{\"reason\":\"%s\"}", reason) : NULL;
    sb__api_audit(c, "auth.login", "user", username, SB_SLICE_NULL,
                  doc ? sb_slice_cstr(doc) : SB_SLICE_NULL, outcome);
}

/* 429 with Retry-After when the user or the client has failed too often. */
static sb_err check_limit(struct sb_api_call *c, const char *ukey, const char *ckey,
                          const char *username)
{
    int64_t now = sb__api_now_ms(), ru = 0, rc = 0;
    bool bu = sb__api_limiter_blocked(c->api->login_limit, ukey, SB_LOGIN_MAX_PER_USER, now, &ru);
    bool bc = sb__api_limiter_blocked(c->api->login_limit, ckey, SB_LOGIN_MAX_PER_CLIENT, now, &rc);
    if (!bu && !bc)
        return SB_OK;
    int64_t retry = ru > rc ? ru : rc;
    c->extra[c->nextra++] =
        (struct sb_http_header){SB_SLICE("retry-after"),
                                sb_slice_cstr(sb_arena_printf(c->arena, "%lld", (long long)retry))};
    audit_login(c, username, "denied", "too many failed logins");
    return sb__api_fail(c, SB_E_RATE_LIMITED, NULL,
                        "too many failed logins; try again in %lld seconds", (long long)retry);
}

/* true when username/password name an active user; the cost is the same either way. */
static bool verify(struct sb_api_call *c, const char *username, const char *password,
                   struct sb_store_user *u)
{
    struct sb_error err = {0};
    struct sb_slice pw = sb_slice_cstr(password);
    if (sb_store_check_username(username, &err) != SB_OK ||
        sb_store_user_get(c->api->store, username, c->arena, u, &err) != SB_OK ||
        strcmp(u->status, "active") != 0 || !sb__api_role_bit(u->role)) {
        sb_password_verify_dummy(pw);
        return false;
    }
    return sb_password_verify(u->password_hash, pw);
}

/* Stores the new session and answers with its cookie. */
static sb_err open_session(struct sb_api_call *c, const struct sb_store_user *u)
{
    char token[SB_TOKEN_LEN + 1], th[SB_HASH_TEXT_LEN + 1], csrf[SB_CSRF_LEN + 1];
    int64_t now = sb__api_now_ms();
    if (sb_session_token_new(token, &c->err) != SB_OK)
        return c->err.code;
    struct sb_slice t = sb_slice_cstr(token);
    sb_session_token_hash(t, th);
    struct sb_store_session ss = {
        .token_hash = th,
        .username = u->username,
        .created_at = now,
        .expires_at = now + SESSION_TTL_MS,
        .last_seen_at = now,
        .ip = c->ip && *c->ip ? c->ip : NULL,
    };
    struct sb_error ignore;
    sb_store_session_purge(c->api->store, now, NULL, &ignore); /* expired rows, now and then */
    sb_err rc = sb_store_session_create(c->api->store, &ss, &c->err);
    if (rc == SB_OK) {
        mirror_put(c->api, t, u->username, u->role, ss.expires_at);
        sb_session_csrf(t, csrf);
        c->extra[c->nextra++] = (struct sb_http_header){
            SB_SLICE("set-cookie"),
            sb_slice_cstr(sb_arena_printf(c->arena,
                                          SB_SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; "
                                                            "Path=/; Max-Age=%lld",
                                          token, SESSION_TTL_MS / 1000))};
        sb_jw_obj_begin(&c->jw);
        sb_jw_key(&c->jw, "user");
        sb_jw_cstr(&c->jw, u->username);
        sb_jw_key(&c->jw, "role");
        sb_jw_cstr(&c->jw, u->role);
        sb_jw_key(&c->jw, "csrf_token");
        sb_jw_cstr(&c->jw, csrf);
        sb_jw_obj_end(&c->jw);
    }
    sb_secret_wipe(token, sizeof(token));
    return rc;
}

/* A successful login: re-hash a password made with old parameters, note the time. */
static void note_login(struct sb_api_call *c, const struct sb_store_user *u, const char *password)
{
    struct sb_store_user_update up = {.last_login_at = sb__api_now_ms()};
    struct sb_error err = {0};
    char hash[SB_PASSWORD_HASH_MAX];
    if (sb_password_needs_rehash(u->password_hash) &&
        sb_password_hash(sb_slice_cstr(password), hash, &err) == SB_OK)
        up.password_hash = hash;
    if (sb_store_user_update(c->api->store, u->username, &up, &err) != SB_OK)
        sb_warn("msg=\"could not record the login time\" user=%s err=\"%s\"", u->username, err.msg);
}

sb_err sb__api_login(struct sb_api_call *c)
{
    const char *username = NULL, *password = NULL;
    struct sb_store_user u;
    if (sb__api_body_str(c, "username", true, &username) != SB_OK ||
        sb__api_body_str(c, "password", true, &password) != SB_OK)
        return c->err.code;
    const char *ukey = sb_arena_printf(c->arena, "u:%.64s", username);
    const char *ckey = sb_arena_printf(c->arena, "c:%s", c->ip ? c->ip : "");
    if (check_limit(c, ukey, ckey, username) != SB_OK)
        return c->err.code;
    if (!verify(c, username, password, &u)) {
        int64_t now = sb__api_now_ms();
        sb__api_limiter_fail(c->api->login_limit, ukey, now);
        sb__api_limiter_fail(c->api->login_limit, ckey, now);
        audit_login(c, username, "failed", "wrong username or password");
        return sb__api_fail(c, SB_E_UNAUTHORIZED, NULL, "wrong username or password");
    }
    sb__api_limiter_reset(c->api->login_limit, ukey);
    snprintf(c->actor.name, sizeof(c->actor.name), "%s", u.username);
    c->actor.role = sb__api_role_bit(u.role);
    if (open_session(c, &u) != SB_OK)
        return c->err.code;
    note_login(c, &u, password);
    audit_login(c, u.username, "ok", NULL);
    return SB_OK;
}

sb_err sb__api_logout(struct sb_api_call *c)
{
    char th[SB_HASH_TEXT_LEN + 1];
    c->extra[c->nextra++] = (struct sb_http_header){
        SB_SLICE("set-cookie"),
        SB_SLICE(SB_SESSION_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")};
    c->status = 204;
    if (!c->actor.via_session)
        return SB_OK; /* the admin token has no session to end */
    sb_session_token_hash(c->session, th);
    if (sb_store_session_delete(c->api->store, th, &c->err) != SB_OK)
        return c->err.code;
    mirror_del(c->api, th);
    sb__api_audit(c, "auth.logout", "user", c->actor.name, SB_SLICE_NULL, SB_SLICE_NULL, "ok");
    return SB_OK;
}
