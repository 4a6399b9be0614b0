/* SPDX-License-Identifier: MIT */
/*
 * sse_fuzz.c - libFuzzer target for the SSE parser.
 *
 * The first two bytes choose how the rest is cut into feeds; the rest is the
 * stream. The parser must not crash, leak or read out of bounds, and it must
 * be split-invariant: the events, their order and the final result are the
 * same whether the stream arrives whole, byte by byte, or in random pieces.
 * Small limits keep the SB_E_TOO_LARGE paths in play.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "provider/sse.h"

static int record(void *ud, const struct sb_sse_event *ev)
{
    struct sb_buf *b = ud;
    /* Length-prefixed so distinct event lists never serialise alike. */
    sb_buf_printf(b, "%zu:%.*s|%zu:%.*s|%zu:%.*s\n", ev->event.len, SB_FMT(ev->event), ev->data.len,
                  SB_FMT(ev->data), ev->id.len, SB_FMT(ev->id));
    return 0;
}

/* Feeds p in pieces: whole (mode 0), bytes (1), or sizes from seed (2). */
static void run(const uint8_t *p, size_t n, int mode, unsigned seed, struct sb_buf *out)
{
    struct sb_sse s;
    struct sb_error err;
    sb_err rc = SB_OK;
    size_t i = 0;
    sb_sse_init(&s, 256, 1024);
    while (i < n && rc == SB_OK) {
        size_t k = n - i;
        if (mode == 1)
            k = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 64;
            k = k > n - i ? n - i : k;
        }
        rc = sb_sse_feed(&s, (const char *)p + i, k, record, out, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = sb_sse_finish(&s, &err);
    sb_buf_printf(out, "rc=%d retry=%lld\n", rc, (long long)sb_sse_retry_ms(&s));
    sb_sse_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_buf a, b, c;
    if (size < 2)
        return 0;
    unsigned seed = (unsigned)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    sb_buf_init(&a, 0);
    sb_buf_init(&b, 0);
    sb_buf_init(&c, 0);
    run(data, size, 0, seed, &a);
    run(data, size, 1, seed, &b);
    run(data, size, 2, seed, &c);
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0 || a.len != c.len ||
        memcmp(a.p, c.p, a.len) != 0)
        abort(); /* split invariance broken */
    sb_buf_free(&a);
    sb_buf_free(&b);
    sb_buf_free(&c);
    return 0;
}
