/* SPDX-License-Identifier: MIT */
/*
 * client_auth.c - who is calling /v1: the admin token, a virtual key, or a
 * console session; and what that caller may use.
 *
 * Credentials, in order: `Authorization: Bearer X` (or `x-api-key: X`,
 * Anthropic's header) holding the admin token (master key) or a virtual
 * key (sk-sb-...); else the console's session cookie, for which a write
 * also needs the session's CSRF token (x-csrf-token), since a browser sends
 * cookies by itself. Only hashes are compared: SHA-256 of a presented key
 * is looked up in the snapshot, which holds only live keys; the admin
 * token's hash is compared in constant time. Nothing here touches the store.
 * The private listener of batch jobs accepts only the batch runner's token
 * (by_batch), and serves each line as the job's owner.
 */
#include <string.h>
#include <time.h>

#include "crypto/keys.h"
#include "crypto/session.h"
#include "crypto/vkey.h"
#include "gateway/gateway.h"
#include "gateway/sessions.h"

static struct sb_slice presented(const struct sb_http_req *req)
{
    struct sb_slice a = sb_http_header(req, "authorization");
    if (a.len > 7 && sb_slice_caseeq((struct sb_slice){a.p, 7}, SB_SLICE("Bearer "))) {
        struct sb_slice t = {a.p + 7, a.len - 7};
        while (t.len && *t.p == ' ')
            t.p++, t.len--;
        return t;
    }
    return sb_http_header(req, "x-api-key");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sb_err by_key(const struct sb_registry *reg, struct sb_slice t, struct sb_client *out,
                     struct sb_error *err)
{
    struct sb_vkey_hash h;
    char text[SB_HASH_TEXT_LEN + 1];
    const struct sb_client_key *k = NULL;
    if (reg && sb_vkey_looks_valid(t)) {
        sb_vkey_hash(t, &h);
        sb_vkey_hash_format(&h, text);
        k = sb_registry_find_key(reg, (struct sb_slice){text, SB_HASH_TEXT_LEN});
    }
    if (!k)
        return sb_fail(err, SB_E_UNAUTHORIZED,
                       "invalid API key: send 'Authorization: Bearer <virtual key>'");
    if (k->expires_at_ms && k->expires_at_ms <= now_ms())
        return sb_fail(err, SB_E_UNAUTHORIZED, "this API key has expired");
    out->kind = SB_CLIENT_KEY;
    out->key = k;
    out->user = k->user;
    return SB_OK;
}

static sb_err by_session(const struct sb_gateway *gw, const struct sb_http_req *req,
                         struct sb_client *out, struct sb_error *err)
{
    struct sb_slice tok = sb_http_cookie(sb_http_header(req, "cookie"), SB_SESSION_COOKIE);
    struct sb_session_info info;
    struct sb_vkey_hash d;
    if (!gw->sessions || !sb_session_token_looks_valid(tok))
        return sb_fail(err, SB_E_UNAUTHORIZED,
                       "missing or invalid API key: send 'Authorization: Bearer <key>'");
    sb_vkey_hash(tok, &d); /* the table is keyed by SHA-256 of the cookie, as the store */
    if (!sb_sessions_get(gw->sessions, d.digest, now_ms(), &info))
        return sb_fail(err, SB_E_UNAUTHORIZED, "the session has expired: log in again");
    if (!sb_slice_eq_cstr(req->method, "GET") &&
        !sb_session_csrf_check(tok, sb_http_header(req, SB_CSRF_HEADER)))
        return sb_fail(err, SB_E_FORBIDDEN,
                       "a session-authenticated request needs its x-csrf-token header");
    out->kind = SB_CLIENT_SESSION;
    memcpy(out->user_buf, info.username, sizeof(out->user_buf));
    out->user = out->user_buf;
    return SB_OK;
}

/* The batch runner's line (gateway.h batch_only): its token, then the owner it
 * names: "admin", "user:NAME" (served as that user's console session would be:
 * the runner checked the user is active) or "key:sha256:HEX" (that virtual
 * key, looked up in the snapshot like any presented key: a revoked or expired
 * key fails here). */
static sb_err by_batch(const struct sb_gateway *gw, const struct sb_registry *reg,
                       const struct sb_http_req *req, struct sb_slice t, struct sb_client *out,
                       struct sb_error *err)
{
    struct sb_slice who = sb_http_header(req, "x-switchboard-batch-owner");
    const struct sb_client_key *k = NULL;
    if (!t.len || !sb_keys_check_admin(&gw->batch_token, t))
        return sb_fail(err, SB_E_UNAUTHORIZED, "this listener serves batch jobs only");
    if (sb_slice_eq_cstr(who, "admin")) {
        out->kind = SB_CLIENT_ADMIN;
        return SB_OK;
    }
    if (who.len > 5 && who.len - 5 < sizeof(out->user_buf) &&
        sb_slice_starts_with(who, SB_SLICE("user:"))) {
        out->kind = SB_CLIENT_SESSION;
        memcpy(out->user_buf, who.p + 5, who.len - 5);
        out->user = out->user_buf;
        return SB_OK;
    }
    if (reg && who.len == 4 + SB_HASH_TEXT_LEN && sb_slice_starts_with(who, SB_SLICE("key:")))
        k = sb_registry_find_key(reg, (struct sb_slice){who.p + 4, SB_HASH_TEXT_LEN});
    if (!k)
        return sb_fail(err, SB_E_UNAUTHORIZED, "the batch's virtual key is no longer valid");
    if (k->expires_at_ms && k->expires_at_ms <= now_ms())
        return sb_fail(err, SB_E_UNAUTHORIZED, "the batch's virtual key has expired");
    out->kind = SB_CLIENT_KEY;
    out->key = k;
    out->user = k->user;
    return SB_OK;
}

sb_err sb_gateway_authenticate(const struct sb_gateway *gw, const struct sb_registry *reg,
                               const struct sb_http_req *req, struct sb_client *out,
                               struct sb_error *err)
{
    struct sb_slice t = presented(req);
    memset(out, 0, sizeof(*out));
    if (gw->batch_only)
        return by_batch(gw, reg, req, t, out, err);
    if (t.len && gw->has_admin && sb_keys_check_admin(&gw->admin, t)) {
        out->kind = SB_CLIENT_ADMIN;
        return SB_OK;
    }
    if (t.len)
        return by_key(reg, t, out, err);
    return by_session(gw, req, out, err);
}
