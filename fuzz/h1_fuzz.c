/* SPDX-License-Identifier: MIT */
/*
 * h1_fuzz.c - libFuzzer target for the native upstream path's response
 * framing (src/upstream/h1_parse.c): what an upstream may send back.
 *
 * Input: two bytes seed, one byte flags (bit 0: a response to HEAD, bit 1:
 * the connection ends after the bytes, bits 2-4: refuse every n-th body
 * offer, as a paused consumer does), then the response bytes. They are fed
 * whole, byte by byte, and in random pieces, with pauses resumed the way
 * h1.c resumes them (the refused bytes handed over again, parsing on from
 * where it stopped). Nothing may crash, leak or read out of bounds; the
 * verdict must not depend on the split; and a complete response gives the
 * same head, body and end position every way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "upstream/internal.h"

struct out {
    struct sb_buf log; /* heads and the body, length-prefixed */
    int every, offers;
};

static int on_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct out *o = ud;
    sb_buf_printf(&o->log, "H%d:%zu\n", status, n);
    for (size_t i = 0; i < n; i++)
        sb_buf_printf(&o->log, "%zu:%.*s=%zu:%.*s\n", h[i].name.len, SB_FMT(h[i].name),
                      h[i].value.len, SB_FMT(h[i].value));
    return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
    struct out *o = ud;
    if (o->every && ++o->offers % o->every == 0)
        return SB_UREQ_PAUSE;
    sb_buf_append(&o->log, p, n);
    return 0;
}

/* Feeds p[0..n): whole (mode 0), bytes (1), sizes from seed (2). */
static void run(const char *p, size_t n, int mode, unsigned seed, int flags, struct sb_buf *res,
                struct sb_buf *body)
{
    struct sb__h1_resp rp;
    struct out o = {.every = mode == 2 ? (flags >> 2 & 7) : 0};
    enum sb__h1_rc rc = SB__H1_MORE;
    size_t i = 0;
    sb_buf_init(&o.log, 0);
    sb__h1_resp_init(&rp, flags & 1);
    rp.on_head = on_head;
    rp.on_data = on_data;
    rp.ud = &o;
    while (i < n && (rc == SB__H1_MORE || rc == SB__H1_PAUSED)) {
        size_t k = n - i, used = 0;
        if (mode == 1)
            k = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 64;
            k = k > n - i ? n - i : k;
        }
        rc = sb__h1_resp_feed(&rp, p + i, k, &used);
        if (used > k ||
            (rc != SB__H1_PAUSED && rc != SB__H1_ERROR && rc != SB__H1_DONE && used != k))
            abort(); /* bytes lost or invented */
        if (rc == SB__H1_PAUSED) {
            if (rp.held_p < p + i || rp.held_p + rp.held > p + i + k)
                abort();                               /* the held bytes must lie in what was fed */
            sb_buf_append(&o.log, rp.held_p, rp.held); /* the resumed consumer takes them */
        }
        i += used;
    }
    if ((flags & 2) && (rc == SB__H1_MORE || rc == SB__H1_PAUSED))
        rc = sb__h1_resp_eof(&rp);
    else if (rc == SB__H1_PAUSED)
        rc = SB__H1_MORE;
    sb_buf_printf(res, "rc=%d", rc == SB__H1_ERROR ? -1 : (int)rc);
    if (rc == SB__H1_DONE)
        sb_buf_printf(res, " end=%zu keep=%d", i, sb__h1_resp_keep_alive(&rp));
    sb_buf_append(body, o.log.p ? o.log.p : "", o.log.len);
    sb_buf_free(&o.log);
    sb__h1_resp_free(&rp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_buf r[3], b[3];
    if (size < 3)
        return 0;
    unsigned seed = (unsigned)data[0] << 8 | data[1];
    int flags = data[2];
    for (int m = 0; m < 3; m++) {
        sb_buf_init(&r[m], 0);
        sb_buf_init(&b[m], 0);
        run((const char *)data + 3, size - 3, m, seed, flags, &r[m], &b[m]);
    }
    for (int m = 1; m < 3; m++) {
        if (r[m].len != r[0].len || memcmp(r[m].p, r[0].p, r[0].len) != 0)
            abort(); /* the verdict depends on the split */
        bool done = strncmp(r[0].p, "rc=2", 4) == 0;
        if (done && (b[m].len != b[0].len || memcmp(b[m].p, b[0].p, b[0].len) != 0))
            abort(); /* a complete response reads differently */
    }
    for (int m = 0; m < 3; m++) {
        sb_buf_free(&r[m]);
        sb_buf_free(&b[m]);
    }
    return 0;
}
