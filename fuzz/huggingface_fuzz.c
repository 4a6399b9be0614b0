/* SPDX-License-Identifier: MIT */
/*
 * huggingface_fuzz.c - libFuzzer target for the TGI adapter's stream and response parsers.
 *
 * The input is treated as a /generate_stream body (fed whole, byte by byte
 * and in pseudo-random pieces: the events and the result must be the same
 * each time, and every chunk must be valid JSON) and as a /generate body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/provider.h"

struct rec {
    struct sb_buf out;
    struct sb_arena *a;
};

static int record(void *ud, const struct sb_event *ev)
{
    struct rec *r = ud;
    struct sb_json *j;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    if (ev->kind == SB_EV_CHUNK && sb_json_parse(r->a, ev->chunk.p, ev->chunk.len, &lim, &j, &err))
        abort();
    sb_buf_printf(&r->out, "%d|%zu:%.*s|%.*s|%s\n", ev->kind, ev->text.len, SB_FMT(ev->text),
                  SB_FMT(ev->finish_reason), ev->kind == SB_EV_ERROR ? ev->error.msg : "");
    return 0;
}

static void run(const struct sb_call *c, const uint8_t *p, size_t n, int mode, unsigned seed,
                struct rec *r)
{
    const struct sb_provider_ops *ops = c->provider->ops;
    void *st = ops->stream_open(c);
    struct sb_error err;
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
        rc = ops->stream_feed(st, (const char *)p + i, k, record, r, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = ops->stream_finish(st, record, r, &err);
    sb_buf_printf(&r->out, "rc=%d\n", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_provider p = {.id = "hf",
                            .type = "huggingface",
                            .ops = sb_provider_ops_find(SB_SLICE("huggingface")),
                            .base_url = "http://tgi",
                            .auth = SB_AUTH_NONE};
    struct sb_model m = {.id = "m", .provider = &p, .upstream_model = "m"};
    struct sb_call c = {.arena = a, .op = SB_OP_CHAT, .provider = &p, .model = &m, .stream = true};
    struct rec r[3];
    for (int mode = 0; mode < 3; mode++) {
        r[mode].a = a;
        sb_buf_init(&r[mode].out, 0);
        run(&c, data, size, mode, size ? data[0] : 0, &r[mode]);
    }
    if (r[0].out.len != r[1].out.len || memcmp(r[0].out.p, r[1].out.p, r[0].out.len) != 0 ||
        r[0].out.len != r[2].out.len || memcmp(r[0].out.p, r[2].out.p, r[0].out.len) != 0)
        abort();
    for (int mode = 0; mode < 3; mode++)
        sb_buf_free(&r[mode].out);
    struct sb_result res;
    struct sb_error err;
    c.stream = false;
    p.ops->parse_response(&c, (struct sb_slice){(const char *)data, size}, &res, &err);
    sb_arena_free(a);
    return 0;
}
