/* SPDX-License-Identifier: MIT */
/*
 * eventstream_fuzz.c - libFuzzer target for the AWS event-stream decoder.
 *
 * Byte 0: bit 0 set means "repair the CRCs" - the input is walked as a
 * sequence of messages and each prelude and message CRC is recomputed, so
 * the fuzzer reaches header and payload parsing instead of stopping at the
 * checksums. Byte 1 seeds the feed sizes. The decoder must not crash or
 * over-read, and must give the same messages and result for every split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "provider/eventstream.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void repair(uint8_t *p, size_t n)
{
    size_t i = 0;
    while (n - i >= 16) {
        uint32_t total =
            (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
        if (total < 16 || total > n - i)
            return;
        put32(p + i + 8, sb_eventstream_crc32(0, p + i, 8));
        put32(p + i + total - 4, sb_eventstream_crc32(0, p + i, total - 4));
        i += total;
    }
}

static int record(void *ud, const struct sb_eventstream_msg *m)
{
    struct sb_buf *b = ud;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct sb_eventstream_header *h = &m->headers[i];
        sb_buf_printf(b, "%zu:%.*s=%d/%lld/%zu:", h->name.len, SB_FMT(h->name), (int)h->type,
                      (long long)h->num, h->value.len);
        sb_buf_append_slice(b, h->value);
    }
    sb_buf_printf(b, "|%zu:", m->payload.len);
    sb_buf_append_slice(b, m->payload);
    sb_buf_printf(b, "|%zu|%zu|%zu\n", m->event_type.len, m->message_type.len,
                  m->exception_type.len);
    return 0;
}

static void run(const uint8_t *p, size_t n, int mode, unsigned seed, struct sb_buf *out)
{
    struct sb_eventstream d;
    struct sb_error err;
    sb_err rc = SB_OK;
    size_t i = 0;
    sb_eventstream_init(&d, 4096);
    while (i < n && rc == SB_OK) {
        size_t k = n - i;
        if (mode == 1)
            k = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 40;
            k = k > n - i ? n - i : k;
        }
        rc = sb_eventstream_feed(&d, (const char *)p + i, k, record, out, &err);
        i += k;
    }
    if (rc == SB_OK)
        rc = sb_eventstream_finish(&d, &err);
    sb_buf_printf(out, "rc=%d\n", rc);
    sb_eventstream_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_buf a, b, c;
    if (size < 2)
        return 0;
    int fix = data[0] & 1;
    unsigned seed = data[1];
    size -= 2;
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data + 2, size);
    if (fix)
        repair(p, size);
    sb_buf_init(&a, 0);
    sb_buf_init(&b, 0);
    sb_buf_init(&c, 0);
    run(p, size, 0, seed, &a);
    run(p, size, 1, seed, &b);
    run(p, size, 2, seed, &c);
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0 || a.len != c.len ||
        memcmp(a.p, c.p, a.len) != 0)
        abort(); /* split invariance broken */
    sb_buf_free(&a);
    sb_buf_free(&b);
    sb_buf_free(&c);
    free(p);
    return 0;
}
