/* SPDX-License-Identifier: MIT */
/*
 * cache_key.c - the cache key (cache.h): the canonical form of a request,
 * the rules that keep a request out of the cache, and the test that keeps
 * an answer out of it.
 *
 * The canonical form is a re-serialisation of the parsed body: members
 * sorted by their decoded names (bytewise, then by length), the last of
 * duplicated names kept, strings re-escaped by one writer, integers that fit
 * int64 written as integers and other numbers in the shortest form that
 * reads back to the same double when that is not longer than the text (so
 * 1.0 and 1 are one temperature, 0.50 and 0.5 too; two decimal texts that
 * are the same double are one request, as they are to every upstream's
 * parser). Arrays keep their order: the order of messages is the
 * conversation.
 *
 * The digest binds the route (id and targets, so re-pointing a route does
 * not serve the old model's answers), the tenant and the canonical body.
 * Only the digest is kept: SHA-256 collisions are not a practical concern,
 * and a 1 MiB prompt should not cost 1 MiB of cache per entry.
 */
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/cache.h"

#define MAX_DEPTH 64

/* Top-level members left out of the key (cache.h says why). */
static const char *const dropped[] = {"stream", "stream_options", "user"};

/* Finish reasons of an answer worth keeping ("error" and null are not). */
static const char *const finished[] = {"stop", "length", "tool_calls", "function_call",
                                       "content_filter"};

static bool in_list(struct sb_slice s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sb_slice_eq_cstr(s, list[i]))
            return true;
    return false;
}

/* ---- canonical form ---- */

struct member {
    const struct sb_json *j;
    size_t pos; /* in the source: the tie-break that keeps duplicates in order */
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->j->key.len < y->j->key.len ? x->j->key.len : y->j->key.len;
    int c = n ? memcmp(x->j->key.p, y->j->key.p, n) : 0;
    if (c == 0 && x->j->key.len != y->j->key.len)
        c = x->j->key.len < y->j->key.len ? -1 : 1;
    if (c == 0)
        c = x->pos < y->pos ? -1 : 1;
    return c;
}

static void write_value(struct sb_jw *w, struct sb_arena *a, const struct sb_json *j, bool top);

static void write_object(struct sb_jw *w, struct sb_arena *a, const struct sb_json *j, bool top)
{
    struct member *m = sb_arena_alloc(a, (j->count + 1) * sizeof(*m));
    size_t n = 0;
    for (const struct sb_json *c = j->child; c; c = c->next) {
        if (top && in_list(c->key, dropped, sizeof(dropped) / sizeof(dropped[0])))
            continue;
        m[n].j = c;
        m[n].pos = n;
        n++;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    sb_jw_obj_begin(w);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && sb_slice_eq(m[i].j->key, m[i + 1].j->key))
            continue; /* a later duplicate follows: it wins */
        sb_jw_key_slice(w, m[i].j->key);
        write_value(w, a, m[i].j, false);
    }
    sb_jw_obj_end(w);
}

/* An integer as an integer; another number in its shortest round-trip form
 * when that is no longer than the text (1.0 is 1, 0.50 is 0.5), else as
 * written (1e9 stays 1e9: a miss at worst, never a wrong hit). So the
 * canonical form is never longer than its input, and its bound is simple. */
static void write_number(struct sb_jw *w, const struct sb_json *j)
{
    int64_t i = 0;
    double d = 0;
    char buf[40];
    struct sb_buf tmp = {.p = NULL};
    struct sb_jw t;
    if (sb_json_int64(j, &i)) {
        sb_jw_int(w, i);
        return;
    }
    if (sb_json_double(j, &d) && d == 0) {
        sb_jw_int(w, 0); /* -0.0, 0e5, 1e-400: as "-0" would read back, an integer 0 */
        return;
    }
    if (!sb_json_double(j, &d) || !isfinite(d)) {
        sb_jw_raw(w, j->raw); /* beyond double range: the text is all there is */
        return;
    }
    sb_buf_init(&tmp, sizeof(buf));
    sb_jw_init(&t, &tmp);
    sb_jw_double(&t, d);
    if (t.err == SB_OK && tmp.len <= j->raw.len)
        sb_jw_raw(w, sb_buf_slice(&tmp));
    else
        sb_jw_raw(w, j->raw);
    sb_buf_free(&tmp);
}

static void write_value(struct sb_jw *w, struct sb_arena *a, const struct sb_json *j, bool top)
{
    switch (j->type) {
    case SB_JSON_NULL:
        sb_jw_null(w);
        break;
    case SB_JSON_FALSE:
    case SB_JSON_TRUE:
        sb_jw_bool(w, j->type == SB_JSON_TRUE);
        break;
    case SB_JSON_NUMBER:
        write_number(w, j);
        break;
    case SB_JSON_STRING:
        sb_jw_str(w, j->str);
        break;
    case SB_JSON_ARRAY:
        sb_jw_arr_begin(w);
        for (const struct sb_json *c = j->child; c; c = c->next)
            write_value(w, a, c, false);
        sb_jw_arr_end(w);
        break;
    case SB_JSON_OBJECT:
        write_object(w, a, j, top);
        break;
    }
}

static sb_err parse(struct sb_arena *a, struct sb_slice json, struct sb_json **out,
                    struct sb_error *err)
{
    static const struct sb_json_limits lim = {.max_depth = MAX_DEPTH};
    return sb_json_parse(a, json.p, json.len, &lim, out, err);
}

static sb_err canonical(struct sb_arena *a, const struct sb_json *root, struct sb_buf *out,
                        struct sb_error *err)
{
    struct sb_jw w;
    sb_jw_init(&w, out);
    write_value(&w, a, root, true);
    if (w.err != SB_OK)
        return sb_fail(err, w.err, "the canonical request is larger than %zu bytes", out->max);
    return SB_OK;
}

sb_err sb_cache_normalize(struct sb_slice json, struct sb_buf *out, struct sb_error *err)
{
    struct sb_arena *a = sb_arena_create(8192);
    struct sb_json *root = NULL;
    sb_err rc = parse(a, json, &root, err);
    if (rc == SB_OK)
        rc = canonical(a, root, out, err);
    sb_arena_free(a);
    return rc;
}

/* ---- the rules ---- */

/* NULL when the request may be cached under route's settings, else why not. */
static const char *refusal(const struct sb_route_cache *rc, const struct sb_json *body)
{
    const struct sb_json *n = sb_json_get(body, "n"), *t = sb_json_get(body, "temperature");
    double count = 1, temp = 1;
    if (n && n->type != SB_JSON_NULL && (!sb_json_double(n, &count) || count != 1))
        return "n is not 1";
    if (rc->sampled)
        return NULL;
    if (!t || t->type == SB_JSON_NULL || !sb_json_double(t, &temp) || temp > 0)
        return "the request samples (temperature absent or above 0) and the route's cache "
               "does not set sampled";
    return NULL;
}

/* ---- the key ---- */

void sb_cache_tenant(const struct sb_client_key *k, const char *user, char *out, size_t n)
{
    if (k)
        snprintf(out, n, "key:%s", k->id);
    else if (user)
        snprintf(out, n, "user:%s", user); /* ':' appears in no key id: no collision */
    else
        snprintf(out, n, "admin");
}

static void hash_str(EVP_MD_CTX *h, const char *s)
{
    EVP_DigestUpdate(h, s, strlen(s) + 1); /* the NUL separates fields: ids never contain one */
}

static void digest(const struct sb_route_entry *route, const char *tenant, struct sb_slice canon,
                   uint8_t out[32])
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned len = 32;
    if (!h)
        abort(); /* out of memory (STYLE.md practice 10) */
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    hash_str(h, "switchboard-cache-v1");
    hash_str(h, route->id);
    for (size_t i = 0; i < route->ntargets; i++)
        hash_str(h, route->targets[i]);
    hash_str(h, route->cache.shared ? "*shared*" : tenant ? tenant : "admin");
    EVP_DigestUpdate(h, canon.p, canon.len);
    EVP_DigestFinal_ex(h, out, &len);
    EVP_MD_CTX_free(h);
}

static void stream_flags(const struct sb_json *body, struct sb_cache_key *out)
{
    const struct sb_json *so = sb_json_get(body, "stream_options");
    out->stream = sb_json_bool(sb_json_get(body, "stream"));
    out->include_usage =
        so && so->type == SB_JSON_OBJECT && sb_json_bool(sb_json_get(so, "include_usage"));
}

sb_err sb_cache_key(const struct sb_route_entry *route, const char *tenant, struct sb_slice body,
                    struct sb_cache_key *out, struct sb_error *err)
{
    struct sb_arena *a = NULL;
    struct sb_json *root = NULL;
    struct sb_buf canon;
    sb_err rc = SB_OK;
    memset(out, 0, sizeof(*out));
    out->why = "the route has no cache";
    if (!route || route->cache.ttl_s <= 0)
        return SB_OK;
    a = sb_arena_create(8192);
    sb_buf_init(&canon, body.len + 64); /* never longer than the input (write_number) */
    rc = parse(a, body, &root, err);
    if (rc == SB_OK && root->type != SB_JSON_OBJECT)
        rc = sb_fail(err, SB_E_BAD_JSON, "the body must be a JSON object");
    if (rc != SB_OK)
        goto out;
    stream_flags(root, out);
    out->why = refusal(&route->cache, root);
    if (out->why)
        goto out;
    rc = canonical(a, root, &canon, err);
    if (rc != SB_OK)
        goto out;
    digest(route, tenant, sb_buf_slice(&canon), out->digest);
    out->ttl_ms = route->cache.ttl_s * 1000;
    out->cacheable = true;
out:
    sb_buf_free(&canon);
    sb_arena_free(a);
    return rc;
}

/* ---- what may be stored ---- */

static int64_t count_of(const struct sb_json *usage, const char *key)
{
    int64_t v = -1;
    const struct sb_json *j = usage ? sb_json_get(usage, key) : NULL;
    return j && sb_json_int64(j, &v) && v >= 0 ? v : -1;
}

static bool choices_finished(const struct sb_json *choices)
{
    if (!choices || choices->type != SB_JSON_ARRAY || choices->count == 0)
        return false;
    for (const struct sb_json *c = choices->child; c; c = c->next) {
        const struct sb_json *f = sb_json_get(c, "finish_reason");
        if (!f || !sb_json_is_string(f) ||
            !in_list(f->str, finished, sizeof(finished) / sizeof(finished[0])))
            return false;
    }
    return true;
}

bool sb_cache_storable(int status, struct sb_slice body, struct sb_cache_usage *u)
{
    struct sb_arena *a = NULL;
    struct sb_json *root = NULL;
    bool ok = false;
    if (status < 200 || status > 299 || !body.p)
        return false;
    a = sb_arena_create(8192);
    if (parse(a, body, &root, NULL) == SB_OK && root->type == SB_JSON_OBJECT) {
        const struct sb_json *obj = sb_json_get(root, "object"),
                             *usage = sb_json_get(root, "usage");
        ok = obj && sb_json_is_string(obj) && sb_slice_eq_cstr(obj->str, "chat.completion") &&
             choices_finished(sb_json_get(root, "choices"));
        if (usage && usage->type != SB_JSON_OBJECT)
            usage = NULL;
        if (ok && u)
            *u = (struct sb_cache_usage){count_of(usage, "prompt_tokens"),
                                         count_of(usage, "completion_tokens")};
    }
    sb_arena_free(a);
    return ok;
}
