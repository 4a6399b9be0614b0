/* SPDX-License-Identifier: MIT */
/*
 * gemini_fuzz.c - libFuzzer target for the gemini adapter's parsers.
 *
 * The first byte picks what the rest is: a client body for build_request
 * (chat or embeddings), a whole upstream response for parse_response, an
 * upstream SSE stream, or an error body for map_error. Nothing may crash,
 * leak or read out of bounds; every body and chunk the adapter writes must
 * be valid JSON; and a stream must translate to the same chunks and result
 * whether it arrives whole or one byte at a time.
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

static void must_be_json(struct sb_slice s)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *j;
    struct sb_error err;
    if (sb_json_parse(a, s.p, s.len, &lim, &j, &err) != SB_OK)
        abort();
    sb_arena_free(a);
}

/* Records an event; the chunk's "created" digits are left out (the clock may tick between runs). */
static int record(void *ud, const struct sb_event *ev)
{
    struct sb_buf *b = ud;
    struct sb_slice ch = ev->chunk.p ? ev->chunk : SB_SLICE("");
    const char *at = ch.len ? memmem(ch.p, ch.len, "\"created\":", 10) : NULL;
    size_t head = at ? (size_t)(at - ch.p) + 10 : ch.len, tail = head;
    if (ev->kind == SB_EV_CHUNK)
        must_be_json(ch);
    while (tail < ch.len && ch.p[tail] >= '0' && ch.p[tail] <= '9')
        tail++;
    sb_buf_printf(b, "%d:%.*s%.*s|%.*s|%.*s|%d\n", (int)ev->kind, (int)head, ch.p,
                  (int)(ch.len - tail), ch.p + tail, SB_FMT(ev->text), SB_FMT(ev->finish_reason),
                  ev->usage_only);
    return 0;
}

static void stream(const struct sb_call *c, const uint8_t *p, size_t n, bool bytes,
                   struct sb_buf *out)
{
    const struct sb_provider_ops *ops = c->provider->ops;
    void *st = ops->stream_open(c);
    struct sb_error err;
    sb_err rc = SB_OK;
    for (size_t i = 0; i < n && rc == SB_OK; i += bytes ? 1 : n)
        rc = ops->stream_feed(st, (const char *)p + i, bytes ? 1 : n, record, out, &err);
    if (rc == SB_OK)
        rc = ops->stream_finish(st, record, out, &err);
    sb_buf_printf(out, "rc=%d\n", rc);
}

static void run(struct sb_call *c, int what, const uint8_t *p, size_t n)
{
    struct sb_error err;
    struct sb_json *j = NULL;
    if (what == 0 || what == 1) {
        struct sb_upstream_req r;
        c->op = what ? SB_OP_EMBEDDINGS : SB_OP_CHAT;
        if (sb_json_parse(c->arena, (const char *)p, n, &lim, &j, &err) != SB_OK)
            return;
        c->json = j;
        c->body = (struct sb_slice){(const char *)p, n};
        c->stream = sb_json_bool(sb_json_get(j, "stream"));
        if (c->provider->ops->build_request(c, &r, &err) == SB_OK)
            must_be_json(r.body);
    } else if (what == 2 || what == 3) {
        struct sb_result res;
        c->op = what == 3 ? SB_OP_EMBEDDINGS : SB_OP_CHAT;
        if (c->provider->ops->parse_response(c, (struct sb_slice){(const char *)p, n}, &res,
                                             &err) == SB_OK)
            must_be_json(res.body);
    } else if (what == 4) {
        struct sb_buf a, b;
        sb_buf_init(&a, 0);
        sb_buf_init(&b, 0);
        stream(c, p, n, false, &a);
        stream(c, p, n, true, &b);
        if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
            abort();
        sb_buf_free(&a);
        sb_buf_free(&b);
    } else {
        c->provider->ops->map_error(c, 400 + (int)(n % 200), (struct sb_slice){(const char *)p, n},
                                    &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct sb_provider p = {.id = "gemini",
                            .type = "gemini",
                            .base_url = "https://generativelanguage.googleapis.com/v1beta",
                            .auth = SB_AUTH_API_KEY};
    p.ops = sb_provider_ops_find(SB_SLICE("gemini"));
    p.api_key = sb_secret_new("AIzaFuzzKey", 11);
    struct sb_model m = {.id = "m", .provider = &p, .upstream_model = "gemini-2.5-flash"};
    struct sb_call c = {.arena = sb_arena_create(8192), .provider = &p, .model = &m};
    run(&c, data[0] % 6, data + 1, size - 1);
    sb_arena_free(c.arena);
    sb_secret_free(p.api_key);
    return 0;
}
