/* SPDX-License-Identifier: MIT */
/*
 * bedrock_fuzz.c - libFuzzer target for the bedrock adapter's answer parsers.
 *
 * Byte 0 picks what the rest is: 0 a whole Converse answer, 1 an InvokeModel
 * embedding answer (Titan or Cohere by bit 4), 2 an error body for
 * map_error, 3 a ConverseStream: lines "eventType payload" that we frame
 * (valid CRCs, so the fuzzer reaches the JSON handlers), the sixth line
 * onwards as an exception when bit 5 is set. Byte 1 seeds the feed sizes.
 * The adapter must not crash or over-read, every chunk it emits must be
 * valid JSON, and a stream must give the same events however it is split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/eventstream.h"
#include "provider/provider.h"

static int record(void *ud, const struct sb_event *ev)
{
    struct sb_buf *b = ud;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *j = NULL;
    struct sb_error err;
    if (ev->kind == SB_EV_CHUNK && sb_json_parse(a, ev->chunk.p, ev->chunk.len,
                                                 &(struct sb_json_limits){0}, &j, &err) != SB_OK)
        abort(); /* we wrote invalid JSON */
    sb_arena_free(a);
    /* chunks differ only in nothing: id and created are per stream, so compare the tail */
    const char *tail =
        ev->kind == SB_EV_CHUNK ? memmem(ev->chunk.p, ev->chunk.len, "\"model\"", 7) : NULL;
    sb_buf_printf(b, "%d:", (int)ev->kind);
    if (tail)
        sb_buf_append(b, tail, ev->chunk.len - (size_t)(tail - ev->chunk.p));
    if (ev->kind == SB_EV_ERROR)
        sb_buf_append_cstr(b, ev->error.msg);
    sb_buf_append_char(b, '\n');
    return 0;
}

/* Frames each "type payload" line of p as an event (or an exception when asked). */
static void frames(const uint8_t *p, size_t n, bool exceptions, struct sb_buf *out)
{
    size_t at = 0, line = 0;
    while (at < n) {
        const uint8_t *nl = memchr(p + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (p + at)) : n - at;
        const uint8_t *sp = memchr(p + at, ' ', len);
        size_t tlen = sp ? (size_t)(sp - (p + at)) : len;
        struct sb_slice type = {(const char *)p + at, tlen ? tlen : 1};
        struct sb_slice payload = {sp ? (const char *)sp + 1 : "", sp ? len - tlen - 1 : 0};
        bool exc = exceptions && line >= 5;
        struct sb_eventstream_header h[2] = {
            {exc ? SB_SLICE(":exception-type") : SB_SLICE(":event-type"), SB_EVENTSTREAM_STRING,
             type.len > 200 ? (struct sb_slice){type.p, 200} : type, 0},
            {SB_SLICE(":message-type"), SB_EVENTSTREAM_STRING,
             exc ? SB_SLICE("exception") : SB_SLICE("event"), 0},
        };
        if (tlen)
            sb_eventstream_encode(out, h, 2, payload);
        at += len + 1;
        line++;
    }
}

static sb_err stream(const struct sb_call *c, struct sb_slice up, unsigned seed, struct sb_buf *ev)
{
    struct sb_error err;
    void *st = c->provider->ops->stream_open(c);
    size_t at = 0;
    while (at < up.len) {
        size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 37 : up.len - at;
        k = k > up.len - at ? up.len - at : k;
        sb_err rc = c->provider->ops->stream_feed(st, up.p + at, k, record, ev, &err);
        if (rc != SB_OK)
            return rc;
        at += k;
    }
    return c->provider->ops->stream_finish(st, record, ev, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct sb_arena *a = sb_arena_create(16384);
    struct sb_provider p = {.id = "aws", .type = "bedrock", .base_url = "https://x"};
    p.ops = sb_provider_ops_find(SB_SLICE("bedrock"));
    struct sb_model m = {.id = "m",
                         .provider = &p,
                         .upstream_model = data[0] & 16 ? "cohere.embed-v3" : "amazon.titan-v2"};
    struct sb_call c = {.arena = a, .provider = &p, .model = &m, .op = SB_OP_CHAT};
    struct sb_slice in = {(const char *)data + 2, size - 2};
    struct sb_result res;
    struct sb_error err;
    switch (data[0] & 3) {
    case 0:
        p.ops->parse_response(&c, in, &res, &err);
        break;
    case 1:
        c.op = SB_OP_EMBEDDINGS;
        p.ops->parse_response(&c, in, &res, &err);
        break;
    case 2:
        p.ops->map_error(&c, 400 + data[1] % 200, in, &err);
        break;
    default: {
        struct sb_buf up, e1, e2;
        sb_buf_init(&up, 0);
        sb_buf_init(&e1, 0);
        sb_buf_init(&e2, 0);
        frames(data + 2, size - 2, data[0] & 32, &up);
        sb_err r1 = stream(&c, sb_buf_slice(&up), 0, &e1);
        sb_err r2 = stream(&c, sb_buf_slice(&up), data[1] | 1u, &e2);
        if (r1 != r2 || !sb_slice_eq(sb_buf_slice(&e1), sb_buf_slice(&e2)))
            abort(); /* the split changed the outcome */
        sb_buf_free(&up);
        sb_buf_free(&e1);
        sb_buf_free(&e2);
    }
    }
    sb_arena_free(a);
    return 0;
}
