/* SPDX-License-Identifier: MIT */
/*
 * openai_fuzz.c - libFuzzer target for the openai adapter, and for azure, which
 * reuses its body splice, stream parser, response parser and error mapping.
 *
 * Byte 0 picks the adapter (bit 0: openai or azure; bit 1: azure's api-version
 * before or after stream usage) and what the rest is (byte 0 >> 2):
 *   0  an upstream SSE stream, fed whole, byte by byte and in pieces cut from
 *      the seed in byte 1: the events and the result must be the same for every
 *      split; every chunk is a JSON object whose choice-0 content, finish reason
 *      and usage are exactly what the event reports; nothing follows DONE;
 *   1  a whole chat response, 2 a whole embeddings response: on success the body
 *      passes through byte for byte and is a JSON object;
 *   3  an error body, with HTTP status 300 + byte 1: a status of the right kind
 *      comes back, and the key appears in no part of the error;
 *   4  a client chat body, 5 a client embeddings body: the upstream body is JSON,
 *      every top-level "model" is the upstream model, a stream asks for usage,
 *      every other member keeps its exact bytes and order, and the key is only
 *      in the auth header.
 * Nothing may crash, leak or read out of bounds. Seeds: fuzz/corpus/openai/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/provider.h"
#include "upstream/client.h"

#define KEY "sk-fuzz-0123456789" /* code_word()-shaped, so it could slip into api_code */

static const struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};

struct world {
    struct sb_arena *a;
    struct sb_provider p;
    struct sb_model m;
    struct sb_call c;
};

static void world_init(struct world *w, unsigned sel, enum sb_op op)
{
    bool azure = sel & 1;
    w->a = sb_arena_create(4096);
    w->p = (struct sb_provider){.id = "fz",
                                .type = azure ? "azure" : "openai",
                                .base_url = "http://u",
                                .auth = azure ? SB_AUTH_API_KEY : SB_AUTH_BEARER,
                                .api_version = (sel & 2) ? "2024-06-01" : "2024-10-21"};
    w->p.ops = sb_provider_ops_find(sb_slice_cstr(w->p.type));
    w->p.api_key = sb_secret_new(KEY, strlen(KEY));
    w->m = (struct sb_model){.id = "m", .provider = &w->p, .upstream_model = "up"};
    w->c = (struct sb_call){.arena = w->a, .op = op, .provider = &w->p, .model = &w->m};
}

static void world_free(struct world *w)
{
    sb_secret_free(w->p.api_key);
    sb_arena_free(w->a);
}

static bool has_key(const char *p, size_t n)
{
    return p && memmem(p, n, KEY, strlen(KEY)) != NULL;
}

static void check_error(const struct sb_error *e)
{
    if (has_key(e->msg, strlen(e->msg)) || has_key(e->api_code, strlen(e->api_code)) ||
        has_key(e->api_type, strlen(e->api_type)) || has_key(e->api_param, strlen(e->api_param)))
        abort(); /* the key in an error the client sees */
}

static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static struct sb_slice jstr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING ? j->str : SB_SLICE_NULL;
}

static int64_t jcount(const struct sb_json *usage, const char *key)
{
    int64_t v;
    const struct sb_json *n = jget(usage, key);
    return n && sb_json_int64(n, &v) && v >= 0 ? v : -1;
}

/* ==================================================================
 * Streams
 * ================================================================== */

struct rec {
    struct sb_buf *log;
    struct sb_arena *a; /* to parse each chunk */
    bool done;          /* a DONE event was seen */
};

/* A chunk says what the event says: choice 0's content and finish reason, and its usage. */
static void check_chunk(struct rec *r, const struct sb_event *ev)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    if (sb_json_parse(r->a, ev->chunk.p, ev->chunk.len, &lim, &j, &err) != SB_OK ||
        j->type != SB_JSON_OBJECT)
        abort(); /* a chunk the client gets must be a JSON object */
    const struct sb_json *choices = jget(j, "choices");
    const struct sb_json *c0 =
        choices && choices->type == SB_JSON_ARRAY ? sb_json_at(choices, 0) : NULL;
    if (!sb_slice_eq(jstr(jget(jget(c0, "delta"), "content")), ev->text) ||
        !sb_slice_eq(jstr(jget(c0, "finish_reason")), ev->finish_reason))
        abort(); /* the event's facts are not the chunk's */
    const struct sb_json *u = jget(j, "usage");
    if (ev->has_usage != (u && u->type == SB_JSON_OBJECT))
        abort();
    if (ev->has_usage && (ev->usage.prompt_tokens != jcount(u, "prompt_tokens") ||
                          ev->usage.completion_tokens != jcount(u, "completion_tokens")))
        abort();
    sb_arena_reset(r->a);
}

static int record(void *ud, const struct sb_event *ev)
{
    struct rec *r = ud;
    if (r->done)
        abort(); /* nothing may follow DONE */
    if (ev->kind == SB_EV_CHUNK)
        check_chunk(r, ev);
    if (ev->kind == SB_EV_ERROR)
        check_error(&ev->error);
    r->done = ev->kind == SB_EV_DONE;
    sb_buf_printf(r->log, "%d|%d%d|%lld/%lld|%zu:%.*s|%.*s|%s|%zu:%.*s\n", ev->kind, ev->has_usage,
                  ev->usage_only, (long long)ev->usage.prompt_tokens,
                  (long long)ev->usage.completion_tokens, ev->text.len, SB_FMT(ev->text),
                  SB_FMT(ev->finish_reason), ev->kind == SB_EV_ERROR ? ev->error.msg : "",
                  ev->chunk.len, SB_FMT(ev->chunk));
    return 0;
}

/* mode 0: whole; 1: byte by byte; 2: pieces of 1..64 bytes from the seed. */
static void run_stream(unsigned sel, const uint8_t *p, size_t n, int mode, unsigned seed,
                       struct sb_buf *log)
{
    struct world w;
    struct sb_error err = {.code = SB_OK};
    world_init(&w, sel, SB_OP_CHAT);
    w.c.stream = true;
    struct rec r = {log, sb_arena_create(4096), false};
    void *st = w.p.ops->stream_open(&w.c);
    sb_err rc = SB_OK;
    for (size_t i = 0; i < n && rc == SB_OK;) {
        size_t k = mode == 0 ? n - i : 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 64;
        }
        k = k > n - i ? n - i : k;
        rc = w.p.ops->stream_feed(st, (const char *)p + i, k, record, &r, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = w.p.ops->stream_finish(st, record, &r, &err);
    if (rc != SB_OK)
        check_error(&err);
    sb_buf_printf(log, "rc=%d %s\n", rc, rc != SB_OK ? err.msg : "");
    sb_arena_free(r.a);
    world_free(&w);
}

static void fuzz_stream(unsigned sel, const uint8_t *p, size_t n, unsigned seed)
{
    struct sb_buf log[3];
    for (int mode = 0; mode < 3; mode++) {
        sb_buf_init(&log[mode], 0);
        run_stream(sel, p, n, mode, seed, &log[mode]);
    }
    for (int mode = 1; mode < 3; mode++)
        if (log[0].len != log[mode].len || memcmp(log[0].p, log[mode].p, log[0].len) != 0)
            abort(); /* the events depend on how the bytes were cut */
    for (int mode = 0; mode < 3; mode++)
        sb_buf_free(&log[mode]);
}

/* ==================================================================
 * Whole responses and errors
 * ================================================================== */

static bool brace_shaped(const uint8_t *p, size_t n)
{
    size_t i = 0, j = n;
    while (i < j && strchr(" \t\r\n", p[i]) && p[i])
        i++;
    while (j > i && strchr(" \t\r\n", p[j - 1]) && p[j - 1])
        j--;
    return j - i >= 2 && p[i] == '{' && p[j - 1] == '}';
}

/* How many times "usage" (quoted) appears: the reader looks at a few only. */
static size_t count_usage_keys(const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i + 7 <= n; i++)
        k += memcmp(p + i, "\"usage\"", 7) == 0;
    return k;
}

static int64_t count_of(const struct sb_json *u, const char *name)
{
    const struct sb_json *v = sb_json_get(u, name);
    int64_t x;
    return v && sb_json_int64(v, &x) && x >= 0 ? x : -1;
}

static void check_tail_usage(const struct sb_json *j, const struct sb_result *res, enum sb_op op)
{
    const struct sb_json *u = sb_json_get(j, "usage");
    if (u && u->type != SB_JSON_OBJECT)
        u = NULL; /* not an object: unknown, as the reader says */
    if (res->usage.prompt_tokens != count_of(u, "prompt_tokens"))
        abort();
    if (op == SB_OP_CHAT && res->usage.completion_tokens != count_of(u, "completion_tokens"))
        abort();
}

/* The relay reads only an answer's end (parse_tail): from the whole body it
 * must find what parse_response found, and any cut of it must be safe. */
static void check_relay_tail(struct world *w, unsigned sel, struct sb_slice body,
                             const struct sb_result *whole)
{
    struct sb_result t;
    struct sb_error err;
    if (w->p.ops->parse_tail(&w->c, body, &t, &err) != SB_OK ||
        t.usage.prompt_tokens != whole->usage.prompt_tokens ||
        t.usage.completion_tokens != whole->usage.completion_tokens ||
        !sb_slice_eq(t.finish_reason, whole->finish_reason) || t.body.len != 0)
        abort();
    size_t cut = sel % (body.len + 1);
    if (w->p.ops->parse_tail(&w->c, (struct sb_slice){body.p + cut, body.len - cut}, &t, &err) !=
        SB_OK)
        check_error(&err);
}

static void fuzz_whole(unsigned sel, const uint8_t *p, size_t n, enum sb_op op)
{
    struct world w;
    struct sb_result res;
    struct sb_error err;
    struct sb_json *j = NULL;
    struct sb_slice body = {(const char *)p, n};
    world_init(&w, sel, op);
    if (w.p.ops->parse_response(&w.c, body, &res, &err) == SB_OK) {
        if (res.body.len != n || memcmp(res.body.p, p, n) != 0)
            abort(); /* a whole answer passes through untouched */
        if (!brace_shaped(p, n))
            abort(); /* only a {...} body is taken (it is not parsed whole) */
        if (op == SB_OP_EMBEDDINGS && res.usage.completion_tokens != 0)
            abort();
        /* A well-formed answer: the usage read from its end is the tree's. */
        if (sb_json_parse(w.a, res.body.p, res.body.len, &lim, &j, &err) == SB_OK &&
            j->type == SB_JSON_OBJECT && count_usage_keys(p, n) <= 8)
            check_tail_usage(j, &res, op);
        check_relay_tail(&w, sel, body, &res);
    } else {
        check_error(&err);
    }
    world_free(&w);
}

static void fuzz_error(unsigned sel, const uint8_t *p, size_t n, int status)
{
    struct world w;
    struct sb_error err;
    world_init(&w, sel, SB_OP_CHAT);
    memset(&err, 0, sizeof(err));
    w.p.ops->map_error(&w.c, status, (struct sb_slice){(const char *)p, n}, &err);
    check_error(&err);
    if (err.code == SB_OK || err.http_status != (status >= 400 && status < 600 ? status : 502))
        abort(); /* an error must stay an error, with the upstream's status or 502 */
    world_free(&w);
}

/* ==================================================================
 * Client bodies
 * ================================================================== */

static bool spliced(struct sb_slice key)
{
    return sb_slice_eq_cstr(key, "model") || sb_slice_eq_cstr(key, "stream_options");
}

/* Every member but model and stream_options: the same key and bytes, in the same order. */
static void check_kept(const struct sb_json *in, const struct sb_json *out)
{
    const struct sb_json *a = in->child, *b = out->child;
    for (;;) {
        while (a && spliced(a->key))
            a = a->next;
        while (b && spliced(b->key))
            b = b->next;
        if (!a || !b)
            break;
        if (!sb_slice_eq(a->key, b->key) || !sb_slice_eq(a->raw, b->raw))
            abort();
        a = a->next;
        b = b->next;
    }
    if (a || b)
        abort(); /* a member was lost or made up */
}

static void check_upstream_body(const struct world *w, const struct sb_upstream_req *r)
{
    struct sb_json *out = NULL;
    struct sb_error err;
    if (has_key(r->body.p, r->body.len) && !has_key(w->c.body.p, w->c.body.len))
        abort(); /* the key belongs in a header only (a client may type it in its own text) */
    if (sb_json_parse(w->a, r->body.p, r->body.len, &lim, &out, &err) != SB_OK ||
        out->type != SB_JSON_OBJECT)
        abort(); /* an upstream body we wrote must be a JSON object */
    size_t models = 0;
    for (const struct sb_json *m = out->child; m; m = m->next) {
        if (!sb_slice_eq_cstr(m->key, "model"))
            continue;
        if (!sb_slice_eq_cstr(jstr(m), w->m.upstream_model))
            abort(); /* a client model name reached the upstream */
        models++;
    }
    /* Azure asks for usage from api-version 2024-09-01 on (azure.c's USAGE_SINCE). */
    bool azure = strcmp(w->p.type, "azure") == 0;
    bool usage = w->c.stream && (!azure || strcmp(w->p.api_version, "2024-09-01") >= 0);
    const struct sb_json *iu = jget(jget(out, "stream_options"), "include_usage");
    if (!models || (usage && !(iu && iu->type == SB_JSON_TRUE)))
        abort();
    check_kept(w->c.json, out);
}

/* The body in pieces (what the proxy asks for) joins to the whole one, and
 * every byte of the client's body in it is the client's own (not copied). */
static void check_parts(struct world *w, const struct sb_upstream_req *whole)
{
    struct sb_upstream_req r;
    struct sb_error err;
    w->c.want_parts = true;
    sb_err rc = w->p.ops->build_request(&w->c, &r, &err);
    w->c.want_parts = false;
    if (rc != SB_OK || r.nparts > SB_UREQ_MAX_PARTS || (r.nparts && r.body.len))
        abort();
    if (!r.nparts) {
        if (r.body.p != w->c.body.p || !sb_slice_eq(r.body, whole->body))
            abort(); /* nothing to change: the client's body itself */
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < r.nparts; i++) {
        if (at + r.parts[i].len > whole->body.len ||
            (r.parts[i].len && memcmp(whole->body.p + at, r.parts[i].p, r.parts[i].len) != 0))
            abort();
        at += r.parts[i].len;
    }
    if (at != whole->body.len || r.parts[0].p != w->c.body.p)
        abort();
}

static void fuzz_request(unsigned sel, const uint8_t *p, size_t n, enum sb_op op)
{
    struct world w;
    struct sb_upstream_req r;
    struct sb_error err;
    struct sb_json *j = NULL;
    char *body = malloc(n + 1);
    memcpy(body, p, n);
    body[n] = '\0';
    world_init(&w, sel, op);
    if (sb_json_parse(w.a, body, n, &lim, &j, &err) == SB_OK && j->type == SB_JSON_OBJECT) {
        const struct sb_json *iu = jget(jget(j, "stream_options"), "include_usage");
        w.c.body = (struct sb_slice){body, n};
        w.c.json = j;
        w.c.stream = op == SB_OP_CHAT && sb_json_bool(jget(j, "stream"));
        w.c.client_wants_usage = w.c.stream && iu && iu->type == SB_JSON_TRUE;
        if (w.p.ops->build_request(&w.c, &r, &err) == SB_OK) {
            if (strncmp(r.url, "http://u/", 9) != 0 || has_key(r.url, strlen(r.url)))
                abort();
            check_upstream_body(&w, &r);
            check_parts(&w, &r);
        } else
            check_error(&err);
    }
    world_free(&w);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned sel = data[0] & 3, what = (data[0] >> 2) % 6, seed = data[1];
    data += 2;
    size -= 2;
    if (what == 0)
        fuzz_stream(sel, data, size, seed);
    else if (what == 1 || what == 2)
        fuzz_whole(sel, data, size, what == 1 ? SB_OP_CHAT : SB_OP_EMBEDDINGS);
    else if (what == 3)
        fuzz_error(sel, data, size, 300 + (int)seed);
    else
        fuzz_request(sel, data, size, what == 4 ? SB_OP_CHAT : SB_OP_EMBEDDINGS);
    return 0;
}
