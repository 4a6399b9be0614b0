/* SPDX-License-Identifier: MIT */
/*
 * upstream_auth.c - the auth methods of provider.h, applied to an upstream request.
 *
 * Secrets are copied into the request's arena only where the wire needs a
 * transformed form (the "Bearer " prefix, a URL-encoded query key) or a
 * stable copy; each copy gets an arena hook that wipes it when the request
 * ends, so no plaintext credential outlives the request in our memory.
 */
#include "provider/upstream_auth.h"

#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "crypto/secret.h"
#include "crypto/sigv4.h"

struct wipe {
    char *p;  /* arena bytes holding a credential */
    size_t n; /* how many */
};

static void wipe_hook(void *ud)
{
    struct wipe *w = ud;
    sb_secret_wipe(w->p, w->n);
}

/* Copies s into a, to be wiped when a is freed or reset. */
static struct sb_slice secret_copy(struct sb_arena *a, struct sb_slice s)
{
    struct wipe *w = sb_arena_alloc(a, sizeof(*w));
    w->p = sb_arena_strndup(a, s.p, s.len);
    w->n = s.len;
    sb_arena_on_free(a, wipe_hook, w);
    return (struct sb_slice){w->p, s.len};
}

/* Joins two slices into one wiped arena copy. */
static struct sb_slice secret_join(struct sb_arena *a, struct sb_slice x, struct sb_slice y)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_slice(&b, x);
    sb_buf_append_slice(&b, y);
    struct sb_slice s = secret_copy(a, sb_buf_slice(&b));
    sb_secret_wipe(b.p, b.len);
    sb_buf_free(&b);
    return s;
}

void sb_upstream_auth_set_header(struct sb_arena *a, struct sb_upstream_req *req,
                                 struct sb_slice name, struct sb_slice value)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (sb_slice_caseeq(req->headers[i].name, name)) {
            req->headers[i].value = value;
            return;
        }
    }
    struct sb_kv *h = sb_arena_alloc(a, (req->nheaders + 1) * sizeof(*h));
    if (req->nheaders)
        memcpy(h, req->headers, req->nheaders * sizeof(*h));
    h[req->nheaders++] = (struct sb_kv){name, value};
    req->headers = h;
}

static const char *pid(const struct sb_provider *p)
{
    return p->id ? p->id : "?";
}

static sb_err need(const struct sb_provider *p, const struct sb_secret *s, const char *what,
                   struct sb_error *err)
{
    if (s && sb_secret_reveal(s).len)
        return SB_OK;
    return sb_fail(err, SB_E_CONFIG, "provider %s has no %s configured", pid(p), what);
}

/* ---- query key ---- */

static void put_query_escaped(struct sb_buf *b, struct sb_slice s)
{
    static const char up[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            sb_buf_append_char(b, (char)c);
        } else {
            char e[3] = {'%', up[c >> 4], up[c & 15]};
            sb_buf_append(b, e, 3);
        }
    }
}

static void add_query_key(const struct sb_provider *p, const char *name, struct sb_arena *a,
                          struct sb_upstream_req *req)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_cstr(&b, req->url);
    sb_buf_append_char(&b, strchr(req->url, '?') ? '&' : '?');
    put_query_escaped(&b, sb_slice_cstr(name));
    sb_buf_append_char(&b, '=');
    put_query_escaped(&b, sb_secret_reveal(p->api_key));
    req->url = secret_copy(a, sb_buf_slice(&b)).p;
    sb_secret_wipe(b.p, b.len);
    sb_buf_free(&b);
}

/* ---- SigV4 ---- */

/* The headers SigV4 covers besides host and its own: content-type and any x-amz-*. */
static size_t sigv4_signed(const struct sb_upstream_req *req, struct sb_sigv4_header *out)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct sb_slice name = req->headers[i].name;
        bool amz =
            name.len > 6 && sb_slice_caseeq((struct sb_slice){name.p, 6}, SB_SLICE("x-amz-"));
        if (amz || sb_slice_caseeq(name, SB_SLICE("content-type")))
            out[n++] = (struct sb_sigv4_header){name, req->headers[i].value};
    }
    return n;
}

static sb_err add_sigv4(const struct sb_provider *p, const struct sb_upstream_auth_opts *o,
                        struct sb_arena *a, struct sb_upstream_req *req, struct sb_error *err)
{
    sb_err rc = need(p, p->aws_access_key_id, "aws_access_key_id", err);
    if (rc == SB_OK)
        rc = need(p, p->aws_secret_access_key, "aws_secret_access_key", err);
    if (rc != SB_OK)
        return rc;
    if (!p->region || !*p->region)
        return sb_fail(err, SB_E_CONFIG, "provider %s has no region configured", pid(p));
    struct sb_sigv4_header *h = sb_arena_alloc(a, (req->nheaders + 1) * sizeof(*h));
    struct sb_sigv4_request r = {
        .method = sb_slice_cstr(req->method),
        .url = sb_slice_cstr(req->url),
        .headers = h,
        .nheaders = sigv4_signed(req, h),
        .body = req->body,
    };
    struct sb_sigv4_params sp = {
        .region = sb_slice_cstr(p->region),
        .service = sb_slice_cstr(o && o->service ? o->service : "bedrock"),
        .access_key_id = sb_secret_reveal(p->aws_access_key_id),
        .secret_key = sb_secret_reveal(p->aws_secret_access_key),
        .session_token =
            p->aws_session_token ? sb_secret_reveal(p->aws_session_token) : SB_SLICE_NULL,
        .time = o && o->now ? o->now : (int64_t)time(NULL),
        .content_sha256 = true,
    };
    struct sb_sigv4_result out;
    rc = sb_sigv4_sign(&r, &sp, a, &out, err);
    for (size_t i = 0; rc == SB_OK && i < out.nheaders; i++) {
        struct sb_slice v = out.headers[i].value;
        if (sb_slice_eq_cstr(out.headers[i].name, "X-Amz-Security-Token"))
            v = secret_copy(a, v); /* the result borrows the secret; keep our own wiped copy */
        sb_upstream_auth_set_header(a, req, out.headers[i].name, v);
    }
    return rc;
}

/* ---- entry ---- */

sb_err sb_upstream_auth_apply(const struct sb_provider *p, const struct sb_upstream_auth_opts *o,
                              struct sb_arena *a, struct sb_upstream_req *req, struct sb_error *err)
{
    sb_err rc = SB_OK;
    for (size_t i = 0; i < p->nheaders; i++)
        sb_upstream_auth_set_header(a, req, p->headers[i].name, p->headers[i].value);
    switch (p->auth) {
    case SB_AUTH_BEARER:
        rc = need(p, p->api_key, "api_key", err);
        if (rc == SB_OK)
            sb_upstream_auth_set_header(
                a, req, SB_SLICE("Authorization"),
                secret_join(a, SB_SLICE("Bearer "), sb_secret_reveal(p->api_key)));
        break;
    case SB_AUTH_API_KEY:
        rc = need(p, p->api_key, "api_key", err);
        if (rc == SB_OK)
            sb_upstream_auth_set_header(a, req,
                                        sb_slice_cstr(o && o->key_name ? o->key_name : "api-key"),
                                        secret_copy(a, sb_secret_reveal(p->api_key)));
        break;
    case SB_AUTH_QUERY:
        rc = need(p, p->api_key, "api_key", err);
        if (rc == SB_OK)
            add_query_key(p, o && o->key_name ? o->key_name : "key", a, req);
        break;
    case SB_AUTH_SIGV4:
        rc = add_sigv4(p, o, a, req, err);
        break;
    case SB_AUTH_NONE:
        break;
    }
    return rc;
}
