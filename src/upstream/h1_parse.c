/* SPDX-License-Identifier: MIT */
/*
 * h1_parse.c - HTTP/1.1 response framing for the native upstream path:
 * bytes in, one head and the body out. No sockets, no timers, no
 * allocation beyond the bounded header block, so the fuzzer drives it with
 * arbitrary bytes in arbitrary splits (fuzz/h1_fuzz.c).
 *
 * http-parser (Debian's, as src/net uses for requests) does the framing:
 * Content-Length, chunked (trailers dropped) and close-delimited bodies;
 * 1xx heads are parsed and skipped. Two facts about it shape this file:
 * - Pausing (http_parser_pause) inside on_body stops execute() after the
 *   callback saw the chunk, but the count execute() returns may stop one
 *   byte short of the chunk's end (a Content-Length body's last byte, which
 *   its state machine eats again on resume). So the bytes a paused consumer
 *   refused are reported as a pointer and length taken in on_body itself,
 *   and parsing resumes exactly where execute() said.
 * - The final message pauses the parser too, so execute() tells where the
 *   response ended: bytes after it mean the connection cannot be reused.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "upstream/internal.h"

enum { STOP_NONE, STOP_PAUSED, STOP_STOP };

static int on_message_begin(http_parser *p)
{
    struct sb__h1_resp *rp = p->data;
    sb_buf_reset(&rp->head);
    rp->in_value = false;
    return 0;
}

/* A header name or value, possibly in pieces: kept as "Name:value\n" lines. */
static int header_bytes(struct sb__h1_resp *rp, bool value, const char *at, size_t len)
{
    sb_err rc = SB_OK;
    if (value != rp->in_value)
        rc = sb_buf_append_char(&rp->head, value ? ':' : '\n');
    rp->in_value = value;
    if (rc == SB_OK)
        rc = sb_buf_append(&rp->head, at, len);
    if (rc != SB_OK) {
        rp->why = SB__HEAD_TOO_BIG;
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    return header_bytes(p->data, false, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    return header_bytes(p->data, true, at, len);
}

/* A final head goes to the consumer; 1xx heads are dropped. Returning 1
 * tells http-parser a HEAD response has no body. */
static int on_headers_complete(http_parser *p)
{
    struct sb__h1_resp *rp = p->data;
    int status = (int)p->status_code;
    if (status < 200)
        return 0;
    size_t cap = 1;
    for (size_t i = 0; i < rp->head.len; i++)
        cap += rp->head.p[i] == '\n';
    struct sb_kv kv_small[32], *kv = kv_small;
    if (cap > sizeof(kv_small) / sizeof(kv_small[0]))
        kv = sb_xmalloc(cap * sizeof(*kv));
    size_t n = sb__ureq_split_head(rp->head.p ? rp->head.p : "", rp->head.len, kv, cap);
    rp->head_done = true;
    int rc = rp->on_head ? rp->on_head(rp->ud, status, kv, n) : 0;
    if (kv != kv_small)
        free(kv);
    sb_buf_free(&rp->head); /* a stream may last minutes */
    if (rc < 0) {
        rp->stop = STOP_STOP;
        return -1;
    }
    return rp->no_body ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sb__h1_resp *rp = p->data;
    int rc = rp->on_data(rp->ud, at, len);
    if (rc < 0) {
        rp->stop = STOP_STOP;
        return -1;
    }
    if (rc == SB_UREQ_PAUSE) {
        rp->stop = STOP_PAUSED;
        rp->held_p = at;
        rp->held = len;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct sb__h1_resp *rp = p->data;
    if (p->status_code < 200)
        return 0; /* a 1xx: the real response follows */
    rp->done = true;
    http_parser_pause(p, 1); /* anything after it is not ours */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void sb__h1_resp_init(struct sb__h1_resp *rp, bool head_request)
{
    memset(rp, 0, sizeof(*rp));
    http_parser_init(&rp->parser, HTTP_RESPONSE);
    rp->parser.data = rp;
    rp->no_body = head_request;
    sb_buf_init(&rp->head, SB__MAX_RESPONSE_HEAD);
}

void sb__h1_resp_free(struct sb__h1_resp *rp)
{
    sb_buf_free(&rp->head);
}

enum sb__h1_rc sb__h1_resp_feed(struct sb__h1_resp *rp, const char *p, size_t n, size_t *used)
{
    *used = 0;
    if (rp->done)
        return SB__H1_DONE;
    if (n == 0)
        return SB__H1_MORE; /* execute() would take it for EOF */
    rp->got_bytes = true;
    rp->stop = STOP_NONE;
    size_t got = http_parser_execute(&rp->parser, &settings, p, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->parser);
    *used = got;
    if (rp->stop == STOP_STOP)
        return SB__H1_STOP;
    if (e == HPE_PAUSED) {
        http_parser_pause(&rp->parser, 0);
        return rp->done ? SB__H1_DONE : SB__H1_PAUSED;
    }
    if (e != HPE_OK) {
        if (!rp->why)
            rp->why = http_errno_description(e);
        return SB__H1_ERROR;
    }
    if (rp->parser.upgrade) {
        rp->why = "protocol upgrade is not supported";
        return SB__H1_ERROR;
    }
    return SB__H1_MORE;
}

enum sb__h1_rc sb__h1_resp_eof(struct sb__h1_resp *rp)
{
    if (rp->done)
        return SB__H1_DONE;
    rp->stop = STOP_NONE;
    http_parser_execute(&rp->parser, &settings, NULL, 0);
    if (rp->stop == STOP_STOP)
        return SB__H1_STOP;
    if (HTTP_PARSER_ERRNO(&rp->parser) == HPE_PAUSED)
        http_parser_pause(&rp->parser, 0);
    if (rp->done)
        return SB__H1_DONE;
    if (!rp->why)
        rp->why = rp->head_done ? "response cut short" : "closed without a response";
    return SB__H1_ERROR;
}

bool sb__h1_resp_keep_alive(const struct sb__h1_resp *rp)
{
    return rp->done && http_should_keep_alive(&rp->parser);
}
