/* SPDX-License-Identifier: MIT */
/*
 * adapter_fuzz.h - one libFuzzer body for a translating adapter (cohere_fuzz.c,
 * ollama_fuzz.c define ADAPTER and include this).
 *
 * The first byte picks what the rest is: a stream (fed whole, byte by byte
 * and in pieces from the second byte; the facts of the events and the
 * result must be the same for every split, and every chunk must be JSON),
 * a whole response for parse_response (chat and embeddings), an error body
 * for map_error, or a client body for build_request. Nothing may crash,
 * leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/provider.h"

static const struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};

struct rec {
    struct sb_buf *out;
    struct sb_arena *a;
};

static int record(void *ud, const struct sb_event *ev)
{
    struct rec *r = ud;
    struct sb_json *j;
    struct sb_error err;
    if (ev->kind == SB_EV_CHUNK &&
        sb_json_parse(r->a, ev->chunk.p, ev->chunk.len, &lim, &j, &err) != SB_OK)
        abort(); /* a chunk we wrote must be JSON */
    sb_buf_printf(r->out, "%d|%zu:%.*s|%zu:%.*s|%d|%lld|%lld\n", ev->kind, ev->text.len,
                  SB_FMT(ev->text), ev->finish_reason.len, SB_FMT(ev->finish_reason),
                  ev->usage_only, (long long)ev->usage.prompt_tokens,
                  (long long)ev->usage.completion_tokens);
    return 0;
}

struct world {
    struct sb_arena *a;
    struct sb_provider p;
    struct sb_model m;
    struct sb_call c;
};

static void world_init(struct world *w, const char *client_body, enum sb_op op)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    w->a = sb_arena_create(4096);
    w->p = (struct sb_provider){
        .id = ADAPTER, .type = ADAPTER, .base_url = "http://u", .auth = SB_AUTH_BEARER};
    w->p.ops = sb_provider_ops_find(sb_slice_cstr(ADAPTER));
    w->p.api_key = sb_secret_new("fuzz-key-1234", 13);
    w->m = (struct sb_model){.id = "m", .provider = &w->p, .upstream_model = "up"};
    sb_json_parse(w->a, client_body, strlen(client_body), &lim, &j, &err);
    w->c = (struct sb_call){.arena = w->a,
                            .op = op,
                            .provider = &w->p,
                            .model = &w->m,
                            .body = sb_slice_cstr(client_body),
                            .json = j,
                            .stream = true};
}

static void world_free(struct world *w)
{
    sb_secret_free(w->p.api_key);
    sb_arena_free(w->a);
}

static void run_stream(const uint8_t *p, size_t n, int mode, unsigned seed, struct sb_buf *out)
{
    struct world w;
    struct sb_error err;
    world_init(&w, "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    struct rec r = {out, w.a};
    void *st = w.p.ops->stream_open(&w.c);
    sb_err rc = SB_OK;
    for (size_t i = 0; i < n && rc == SB_OK;) {
        size_t k = n - i;
        if (mode == 1)
            k = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 64;
            k = k > n - i ? n - i : k;
        }
        rc = w.p.ops->stream_feed(st, (const char *)p + i, k, record, &r, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = w.p.ops->stream_finish(st, record, &r, &err);
    sb_buf_printf(out, "rc=%d\n", rc);
    world_free(&w);
}

static void fuzz_stream(const uint8_t *p, size_t n, unsigned seed)
{
    struct sb_buf a, b, c;
    sb_buf_init(&a, 0);
    sb_buf_init(&b, 0);
    sb_buf_init(&c, 0);
    run_stream(p, n, 0, seed, &a);
    run_stream(p, n, 1, seed, &b);
    run_stream(p, n, 2, seed, &c);
    if (a.len != b.len || a.len != c.len || memcmp(a.p, b.p, a.len) || memcmp(a.p, c.p, a.len))
        abort(); /* split-dependent */
    sb_buf_free(&a);
    sb_buf_free(&b);
    sb_buf_free(&c);
}

static void fuzz_whole(const uint8_t *p, size_t n, enum sb_op op, int status)
{
    struct world w;
    struct sb_result res;
    struct sb_error err;
    world_init(&w,
               op == SB_OP_CHAT ? "{\"model\":\"m\",\"messages\":[]}"
                                : "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":"
                                  "\"base64\"}",
               op);
    struct sb_slice body = {(const char *)p, n};
    if (status)
        w.p.ops->map_error(&w.c, status, body, &err);
    else if (w.p.ops->parse_response(&w.c, body, &res, &err) == SB_OK &&
             sb_json_parse(w.a, res.body.p, res.body.len, &lim, &(struct sb_json *){0}, &err) !=
                 SB_OK)
        abort();
    world_free(&w);
}

static void fuzz_request(const uint8_t *p, size_t n, enum sb_op op)
{
    struct world w;
    struct sb_upstream_req r;
    struct sb_error err;
    char *body = malloc(n + 1);
    memcpy(body, p, n);
    body[n] = '\0';
    world_init(&w, body, op);
    if (w.c.json && w.c.json->type == SB_JSON_OBJECT) {
        w.c.stream = sb_json_bool(sb_json_get(w.c.json, "stream"));
        if (w.p.ops->build_request(&w.c, &r, &err) == SB_OK &&
            sb_json_parse(w.a, r.body.p, r.body.len, &lim, &(struct sb_json *){0}, &err) != SB_OK)
            abort(); /* an upstream body we wrote must be JSON */
    }
    world_free(&w);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned what = data[0] % 6, seed = data[1];
    data += 2;
    size -= 2;
    if (what == 0)
        fuzz_stream(data, size, seed);
    else if (what == 1)
        fuzz_whole(data, size, SB_OP_CHAT, 0);
    else if (what == 2)
        fuzz_whole(data, size, SB_OP_EMBEDDINGS, 0);
    else if (what == 3)
        fuzz_whole(data, size, SB_OP_CHAT, 400 + (int)seed);
    else
        fuzz_request(data, size, what == 4 ? SB_OP_CHAT : SB_OP_EMBEDDINGS);
    return 0;
}
