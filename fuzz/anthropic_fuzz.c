/* SPDX-License-Identifier: MIT */
/*
 * anthropic_fuzz.c - libFuzzer target for the anthropic adapter's parsers.
 *
 * The first two bytes seed how the rest is cut into feeds; the rest is an
 * upstream Messages API stream, also tried as a whole response body and as
 * an error body. Nothing may crash, leak or read out of bounds, every chunk
 * the stream emits must be valid JSON, and the stream translation must be
 * split-invariant: the same events and result whether the bytes arrive
 * whole, byte by byte or in random pieces. Seeds: fuzz/corpus/anthropic/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/provider.h"

/* Appends the chunk with the "created" digits masked (a second may pass between runs). */
static void append_chunk(struct sb_buf *b, struct sb_slice s)
{
    static const char key[] = "\"created\":";
    if (!s.len)
        return;
    const char *at = memmem(s.p, s.len, key, sizeof(key) - 1);
    size_t cut = at ? (size_t)(at - s.p) + sizeof(key) - 1 : s.len, end = cut;
    while (end < s.len && s.p[end] >= '0' && s.p[end] <= '9')
        end++;
    sb_buf_append(b, s.p, cut);
    sb_buf_append(b, s.p + end, s.len - end);
}

static int record(void *ud, const struct sb_event *ev)
{
    struct sb_buf *b = ud;
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_json *j;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    if (ev->kind == SB_EV_CHUNK &&
        sb_json_parse(a, ev->chunk.p, ev->chunk.len, &lim, &j, &err) != SB_OK)
        abort(); /* the adapter wrote invalid JSON */
    sb_arena_free(a);
    sb_buf_printf(b, "%d|%.*s|%.*s|%d|%lld/%lld|%s|", ev->kind, SB_FMT(ev->text),
                  SB_FMT(ev->finish_reason), ev->usage_only, (long long)ev->usage.prompt_tokens,
                  (long long)ev->usage.completion_tokens, ev->error.msg);
    append_chunk(b, ev->chunk);
    sb_buf_append_char(b, '\n');
    return 0;
}

static void run(const struct sb_call *c, const uint8_t *p, size_t n, int mode, unsigned seed,
                struct sb_buf *out)
{
    struct sb_error err = {.code = 0};
    void *st = c->provider->ops->stream_open(c);
    sb_err rc = SB_OK;
    size_t i = 0;
    while (i < n && rc == SB_OK) {
        size_t k = mode == 0 ? n - i : 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 64;
        }
        k = k > n - i ? n - i : k;
        rc = c->provider->ops->stream_feed(st, (const char *)p + i, k, record, out, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = c->provider->ops->stream_finish(st, record, out, &err);
    sb_buf_printf(out, "rc=%d %s\n", rc, rc ? err.msg : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_buf x[3];
    if (size < 2)
        return 0;
    unsigned seed = (unsigned)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_provider p = {.id = "f", .type = "anthropic", .base_url = "http://x"};
    p.ops = sb_provider_ops_find(SB_SLICE("anthropic"));
    p.api_key = sb_secret_new("sk-fuzz-key", 11);
    struct sb_model m = {.id = "m", .provider = &p, .upstream_model = "claude"};
    struct sb_call c = {.arena = a, .provider = &p, .model = &m, .stream = true};
    for (int mode = 0; mode < 3; mode++) {
        sb_buf_init(&x[mode], 0);
        run(&c, data, size, mode, seed, &x[mode]);
    }
    for (int mode = 1; mode < 3; mode++)
        if (x[0].len != x[mode].len || memcmp(x[0].p, x[mode].p, x[0].len) != 0)
            abort(); /* split invariance broken */
    struct sb_result r;
    struct sb_error err;
    /* The answer may quote whatever the upstream wrote (its text is the client's);
     * the adapter itself must never add the key. */
    bool upstream_said_it = memmem(data, size, "sk-fuzz-key", 11) != NULL;
    if (p.ops->parse_response(&c, (struct sb_slice){(const char *)data, size}, &r, &err) == SB_OK)
        if (!upstream_said_it && memmem(r.body.p, r.body.len, "sk-fuzz-key", 11))
            abort();
    p.ops->map_error(&c, 400 + seed % 200, (struct sb_slice){(const char *)data, size}, &err);
    if (strstr(err.msg, "sk-fuzz-key"))
        abort(); /* a key in an error message */
    for (int mode = 0; mode < 3; mode++)
        sb_buf_free(&x[mode]);
    sb_secret_free(p.api_key);
    sb_arena_free(a);
    return 0;
}
