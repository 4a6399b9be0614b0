/* SPDX-License-Identifier: MIT */
/*
 * proxy_relay.c - a large non-streamed answer relayed as it arrives.
 *
 * An answer that passes to the client untouched (an adapter with
 * parse_tail: OpenAI's format) needs no whole copy in memory: its usage and
 * finish reason are read from its last bytes. The first SB_RELAY_AFTER bytes
 * are still held, so a short answer (nearly all of them) keeps everything a
 * whole one has: failover when the upstream breaks before its end, and a 502
 * for a body that is not a JSON object. Past that, the client's response
 * starts (the upstream's Content-Length, else chunked), the held bytes and
 * every later read are written through, and the upstream is paused while the
 * client's socket backs up, as for streams. A transfer that breaks after that
 * closes the client's connection before the body's end, so no client takes
 * a cut answer for a whole one; it is accounted as an error. Memory per
 * request: SB_RELAY_AFTER, then the TAIL_KEEP bytes kept for the usage, instead
 * of the whole answer (up to max_upstream_bytes).
 */
#include <string.h>

#include "gateway/proxy_int.h"
#include "upstream/client.h"

#define TAIL_KEEP (16 * 1024) /* the answer's end kept for its usage */

void sb__proxy_relay_head(struct proxy *x, long long length)
{
    bool cached = x->cache_on && x->ckey.cacheable; /* the cache stores whole bodies */
    x->relay = x->call.provider->ops->parse_tail && !x->front && !cached ? RELAY_MAYBE
                                                                          : RELAY_NO;
    x->relay_len = length;
}

/* Keeps the last TAIL_KEEP bytes of what passed through in x->body. */
static void keep_tail(struct proxy *x, const char *p, size_t n)
{
    if (n >= TAIL_KEEP) {
        sb_buf_reset(&x->body);
        sb_buf_append(&x->body, p + n - TAIL_KEEP, TAIL_KEEP);
        return;
    }
    if (x->body.len + n > 2 * TAIL_KEEP) {
        size_t drop = x->body.len + n - TAIL_KEEP;
        memmove(x->body.p, x->body.p + drop, x->body.len - drop);
        x->body.len -= drop;
    }
    sb_buf_append(&x->body, p, n);
}

/* Whether the held bytes begin like a JSON object; else the whole body is
 * read and refused as before (a 502 the client can act on). */
static bool starts_object(const struct sb_buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->p[i] != ' ' && b->p[i] != '\t' && b->p[i] != '\n' && b->p[i] != '\r')
            return b->p[i] == '{';
    return false;
}

static void commit(struct proxy *x)
{
    x->relay = RELAY_ON;
    size_t n;
    const struct sb_http_header *h = sb__proxy_headers(x, "application/json", &n);
    sb_http_stream_start_len(x->req, 200, h, n, x->relay_len);
    sb_http_stream_write(x->req, x->body.p, x->body.len);
    struct sb_buf held = x->body;
    sb_buf_init(&x->body, 0);
    keep_tail(x, held.p, held.len);
    sb_buf_free(&held);
}

int sb__proxy_relay_data(struct proxy *x, const char *p, size_t n)
{
    if (x->relay == RELAY_MAYBE) {
        if (sb_buf_append(&x->body, p, n) != SB_OK)
            return -1;
        if (x->body.len >= SB_RELAY_AFTER) {
            if (!starts_object(&x->body))
                x->relay = RELAY_NO;
            else
                commit(x);
        }
        return 0;
    }
    /* Pause before consuming: a paused transfer hands us the same bytes again. */
    if (sb__proxy_backpressure(x))
        return SB_UREQ_PAUSE;
    sb_http_stream_write(x->req, p, n);
    keep_tail(x, p, n);
    return 0;
}

void sb__proxy_relay_done(struct proxy *x, sb_err result, const struct sb_error *err)
{
    if (result != SB_OK) {
        /* As a stream that breaks: the client has its 200, the deployment
         * gets the failure. */
        struct sb_error e;
        sb_fail(&e, result, "upstream answer broke after part of it went to the client: %s",
                err ? err->msg : sb_err_name(result));
        sb__proxy_end_attempt(x, false);
        sb_http_stream_abort(x->req);
        sb__proxy_account(x, 200, "error", e.code, e.msg);
        return;
    }
    struct sb_result r = {.usage = x->usage};
    struct sb_error e;
    sb_err rc = x->call.provider->ops->parse_tail(&x->call, sb_buf_slice(&x->body), &r, &e);
    x->usage = r.usage;
    sb_http_stream_end(x->req);
    if (rc != SB_OK)
        sb__proxy_account(x, 200, "error", rc, e.msg);
    else
        sb__proxy_account(x, 200, "ok", SB_OK, NULL);
}
