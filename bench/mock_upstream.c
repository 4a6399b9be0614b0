/* SPDX-License-Identifier: MIT */
/*
 * mock_upstream.c - a fast OpenAI- and Anthropic-format upstream for `make bench`.
 *
 * One thread, one libuv loop, http-parser, keep-alive. It must never be the
 * bottleneck: every response is built once and cached (keyed by wire format,
 * model, stream and include_usage), then written straight from the cache with
 * no copy. POST /v1/chat/completions answers in OpenAI's format, POST
 * /v1/messages in Anthropic's Messages format (the translated path: it wants
 * x-api-key and anthropic-version like the real API, and answers 401 / 400 in
 * Anthropic's error shape without them). What a request gets is chosen by the
 * request itself:
 *   - non-streaming: model "m<N>k" returns a chat.completion (or a Message) of
 *     exactly N KiB (any other model: 1 KiB), with usage;
 *   - streaming ("stream":true): SSE chat.completion.chunk events, then a usage
 *     chunk when stream_options.include_usage is true, then `data: [DONE]`; or
 *     Anthropic's events: message_start, content_block_start, ping, one
 *     content_block_delta (text_delta) per chunk, content_block_stop,
 *     message_delta (stop_reason, usage), message_stop. Both carry the same
 *     text in the same number of pieces.
 *     Model "s-paced" sends one chunk every --pace-ms, "s-hold" one every
 *     --hold-ms (streams that stay open), anything else all chunks at once.
 * Paced streams write the first chunk together with the headers, so a proxy
 * that relays without buffering delivers it before the second is sent.
 * The request parse is a byte search for "model", "stream" and
 * "include_usage", not a JSON parser: this is a load target, not an oracle.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <http_parser.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"

#define MAX_BODY (4u << 20)   /* request body cap (1 MB prompts fit): larger get 413 */
#define MAX_MODEL 64          /* model names longer than this are refused */
#define MAX_CACHED 64         /* distinct (format, model, stream, usage) responses */
#define MAX_KIB 16384         /* largest "m<N>k" body: 16 MiB */

/* ---- options ---------------------------------------------------------- */

static struct {
    int port;          /* listen port on 127.0.0.1 */
    int fast_chunks;   /* content chunks of a non-paced stream */
    int paced_chunks;  /* content chunks of "s-paced" */
    int pace_ms;       /* gap between "s-paced" chunks */
    int hold_chunks;   /* content chunks of "s-hold" */
    int hold_ms;       /* gap between "s-hold" chunks */
} opt = {18080, 20, 20, 10, 100000, 5000};

/* ---- cached responses ------------------------------------------------- */

/* The wire formats the mock speaks; indexes formats[] below. */
enum fmt { FMT_OPENAI, FMT_ANTHROPIC };

/* One immutable response, built on first use and kept for the process life. */
struct resp {
    enum fmt fmt;              /* cache key */
    char model[MAX_MODEL + 1]; /* cache key */
    int stream;                /* cache key */
    int usage;                 /* cache key: stream_options.include_usage */
    int chunks;                /* content chunks (streams) */
    int pace_ms;               /* 0 = everything in one write */
    struct sb_buf full;        /* whole response when pace_ms == 0 */
    struct sb_buf head;        /* paced: status line, headers and the first chunk */
    struct sb_buf mid;         /* paced: one content chunk */
    struct sb_buf tail;        /* paced: finish chunk, usage chunk, [DONE], last-chunk */
};

static struct resp cache[MAX_CACHED];
static int ncached;

static const char filler[] = "lorem ipsum dolor sit amet ";
static const char sse_hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                              "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

/* Appends one HTTP chunk holding the SSE event `[event: <name>\n]data: <json>\n\n`. */
static void put_event_named(struct sb_buf *b, const char *name, const char *json)
{
    size_t n = strlen(json) + 8; /* "data: " + "\n\n" */
    if (name) {
        n += strlen(name) + 8; /* "event: " + "\n" */
        sb_buf_printf(b, "%zx\r\nevent: %s\ndata: %s\n\n\r\n", n, name, json);
    } else {
        sb_buf_printf(b, "%zx\r\ndata: %s\n\n\r\n", n, json);
    }
}

static void put_event(struct sb_buf *b, const char *json)
{
    put_event_named(b, NULL, json);
}

static void put_chunk_event(struct sb_buf *b, const char *model, const char *delta,
                            const char *finish)
{
    char ev[512];
    snprintf(ev, sizeof ev,
             "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
             "\"model\":\"%s\",\"system_fingerprint\":\"fp_mock\",\"choices\":[{\"index\":0,"
             "\"delta\":%s,\"logprobs\":null,\"finish_reason\":%s}]}",
             model, delta, finish);
    put_event(b, ev);
}

/* Where a stream's pieces go: `full` when unpaced, else head / mid / tail. */
static struct sb_buf *part(struct resp *r, struct sb_buf *paced)
{
    return r->pace_ms ? paced : &r->full;
}

/* Appends `mid` chunks-1 times to an unpaced stream (the first is in the head). */
static void repeat_mid(struct resp *r)
{
    if (!r->pace_ms)
        for (int i = 1; i < r->chunks; i++)
            sb_buf_append_slice(&r->full, sb_buf_slice(&r->mid));
}

static void build_stream_openai(struct resp *r)
{
    struct sb_buf *head = part(r, &r->head), *tail = part(r, &r->tail);
    sb_buf_append_cstr(head, sse_hdr);
    put_chunk_event(head, r->model, "{\"role\":\"assistant\",\"content\":\"tok \"}", "null");
    put_chunk_event(&r->mid, r->model, "{\"content\":\"tok \"}", "null");
    repeat_mid(r);
    put_chunk_event(tail, r->model, "{}", "\"stop\"");
    if (r->usage) {
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                 "\"model\":\"%s\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                 "\"completion_tokens\":%d,\"total_tokens\":%d}}",
                 r->model, r->chunks, 12 + r->chunks);
        put_event(tail, ev);
    }
    put_event(tail, "[DONE]");
    sb_buf_append_cstr(tail, "0\r\n\r\n");
}

/* Anthropic's stream: the same text pieces as OpenAI's, framed as Messages API events. */
static void build_stream_anthropic(struct resp *r)
{
    static const char delta[] = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                "{\"type\":\"text_delta\",\"text\":\"tok \"}}";
    struct sb_buf *head = part(r, &r->head), *tail = part(r, &r->tail);
    char ev[512];
    sb_buf_append_cstr(head, sse_hdr);
    snprintf(ev, sizeof ev,
             "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock\",\"type\":\"message\","
             "\"role\":\"assistant\",\"content\":[],\"model\":\"%s\",\"stop_reason\":null,"
             "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}",
             r->model);
    put_event_named(head, "message_start", ev);
    put_event_named(head, "content_block_start",
                    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                    "{\"type\":\"text\",\"text\":\"\"}}");
    put_event_named(head, "ping", "{\"type\":\"ping\"}");
    put_event_named(head, "content_block_delta", delta);
    put_event_named(&r->mid, "content_block_delta", delta);
    repeat_mid(r);
    put_event_named(tail, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
    snprintf(ev, sizeof ev,
             "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
             "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}",
             r->chunks);
    put_event_named(tail, "message_delta", ev);
    put_event_named(tail, "message_stop", "{\"type\":\"message_stop\"}");
    sb_buf_append_cstr(tail, "0\r\n\r\n");
}

/* What differs between the two wire formats: everything else is shared. */
static const struct format {
    const char *name;
    void (*build_stream)(struct resp *r);
    const char *body_open;  /* whole answer up to its text; %s = model */
    const char *body_close; /* after the text; %zu = output tokens, %zu = total tokens */
    const char *bad_model;  /* 400 body for a missing model or a full cache */
} formats[] = {
    [FMT_OPENAI] = {"openai", build_stream_openai,
                    "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1700000000,"
                    "\"model\":\"%s\",\"system_fingerprint\":\"fp_mock\",\"choices\":[{\"index\":0,"
                    "\"message\":{\"role\":\"assistant\",\"content\":\"",
                    "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
                    "\"completion_tokens\":%zu,\"total_tokens\":%zu}}",
                    "{\"error\":{\"message\":\"mock: bad model\",\"type\":"
                    "\"invalid_request_error\",\"param\":\"model\",\"code\":null}}"},
    [FMT_ANTHROPIC] = {"anthropic", build_stream_anthropic,
                       "{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\","
                       "\"model\":\"%s\",\"content\":[{\"type\":\"text\",\"text\":\"",
                       "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":"
                       "{\"input_tokens\":12,\"output_tokens\":%zu}}",
                       "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                       "\"message\":\"mock: bad model\"}}"},
};

/* Writes the whole answer body with `fill` bytes of text; returns its length. */
static size_t completion_body(struct sb_buf *b, const struct resp *r, size_t fill)
{
    const struct format *f = &formats[r->fmt];
    size_t start = b->len;
    sb_buf_printf(b, f->body_open, r->model);
    for (size_t i = 0; i < fill; i++)
        sb_buf_append_char(b, filler[i % (sizeof filler - 1)]);
    size_t toks = fill / 4 + 1;
    sb_buf_printf(b, f->body_close, toks, toks + 12);
    return b->len - start;
}

static void build_completion(struct resp *r)
{
    size_t kib = 1;
    if (r->model[0] == 'm') {
        char *end;
        unsigned long v = strtoul(r->model + 1, &end, 10);
        if (end != r->model + 1 && strcmp(end, "k") == 0 && v >= 1 && v <= MAX_KIB)
            kib = v;
    }
    size_t want = kib * 1024;
    struct sb_buf probe;
    sb_buf_init(&probe, 0);
    /* The usage numbers depend on the fill, so settle the length in a few passes. */
    size_t fill = 0;
    for (int pass = 0; pass < 4; pass++) {
        sb_buf_reset(&probe);
        size_t len = completion_body(&probe, r, fill);
        if (len == want)
            break;
        fill = len < want ? fill + (want - len) : (fill > len - want ? fill - (len - want) : 0);
    }
    sb_buf_free(&probe);
    sb_buf_printf(&r->full, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n",
                  want);
    size_t got = completion_body(&r->full, r, fill);
    if (got != want)
        fprintf(stderr, "mock: %s body for %s is %zu bytes, wanted %zu\n", formats[r->fmt].name,
                r->model, got, want);
}

/* Returns the cached response for this request shape, building it once; NULL when full. */
static const struct resp *lookup(enum fmt fmt, const char *model, int stream, int usage)
{
    if (!stream || fmt != FMT_OPENAI)
        usage = 0; /* Anthropic streams always carry usage */
    for (int i = 0; i < ncached; i++)
        if (cache[i].fmt == fmt && cache[i].stream == stream && cache[i].usage == usage &&
            strcmp(cache[i].model, model) == 0)
            return &cache[i];
    if (ncached == MAX_CACHED)
        return NULL;
    struct resp *r = &cache[ncached++];
    r->fmt = fmt;
    snprintf(r->model, sizeof r->model, "%s", model);
    r->stream = stream;
    r->usage = usage;
    sb_buf_init(&r->full, 0);
    sb_buf_init(&r->head, 0);
    sb_buf_init(&r->mid, 0);
    sb_buf_init(&r->tail, 0);
    if (!stream) {
        build_completion(r);
        return r;
    }
    r->chunks = opt.fast_chunks;
    if (strcmp(model, "s-paced") == 0) {
        r->chunks = opt.paced_chunks;
        r->pace_ms = opt.pace_ms;
    } else if (strcmp(model, "s-hold") == 0) {
        r->chunks = opt.hold_chunks;
        r->pace_ms = opt.hold_ms;
    }
    if (r->chunks < 1)
        r->chunks = 1;
    formats[fmt].build_stream(r);
    return r;
}

/* ---- connections ------------------------------------------------------ */

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;          /* paces the current stream */
    http_parser parser;
    struct sb_buf body;        /* request body, at most MAX_BODY */
    char url[256];             /* request path; longer paths are truncated (and 404) */
    size_t url_len;
    int too_large;             /* the body went past MAX_BODY */
    char hname[32];            /* the header name being read, lower case, truncated */
    size_t hname_len;
    int in_value;              /* the parser is in a header value (a new name resets hname) */
    unsigned seen;             /* HDR_* bits of the request's headers */
    int keep_alive;            /* from the request that is being answered */
    const struct resp *stream; /* paced stream in progress, or NULL */
    int step;                  /* chunks of it already written */
    int open_handles;          /* tcp + timer; freed when both close callbacks ran */
    int closing;
};

/* Request headers the Anthropic route checks, as the real API does. */
enum { HDR_API_KEY = 1, HDR_VERSION = 2 };
static const struct {
    const char *name; /* lower case */
    unsigned bit;
} checked_headers[] = {{"x-api-key", HDR_API_KEY}, {"anthropic-version", HDR_VERSION}};

static uv_loop_t *loop;
static http_parser_settings settings;
static char readbuf[65536]; /* one read at a time on a single thread: shared */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles == 0) {
        sb_buf_free(&c->body);
        free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

struct wreq {
    uv_write_t req;
    int close_after; /* the response is complete and the client asked for close */
};

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->handle->data;
    if ((status < 0 || w->close_after) && !c->closing)
        conn_close(c);
    free(w);
}

/* Writes bufs (borrowed: cache memory or string literals that outlive the write). */
static void send_bufs(struct conn *c, uv_buf_t *bufs, unsigned n, int last)
{
    struct wreq *w = sb_xmalloc(sizeof *w);
    w->close_after = last && !c->keep_alive;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_written) < 0) {
        free(w);
        conn_close(c);
    }
}

static uv_buf_t bufof(const struct sb_buf *b)
{
    return uv_buf_init(b->p, (unsigned)b->len);
}

static void send_text(struct conn *c, const char *status, const char *body)
{
    /* Rare paths (errors, /health): a per-call copy is fine here. */
    static char out[1024];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     status, strlen(body), body);
    struct wreq *w = sb_xmalloc(sizeof *w + (size_t)n);
    memcpy(w + 1, out, (size_t)n);
    w->close_after = !c->keep_alive;
    uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(w);
        conn_close(c);
    }
}

/* Writes the next paced step: the head first, then one content chunk per tick. */
static void stream_step(struct conn *c)
{
    const struct resp *r = c->stream;
    uv_buf_t b[2];
    unsigned n = 0;
    b[n++] = c->step == 0 ? bufof(&r->head) : bufof(&r->mid);
    c->step++;
    int last = c->step >= r->chunks;
    if (last)
        b[n++] = bufof(&r->tail);
    send_bufs(c, b, n, last);
    if (last)
        c->stream = NULL;
}

static void on_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->closing || !c->stream)
        return;
    stream_step(c);
    if (!c->stream)
        uv_timer_stop(t);
}

/* ---- request handling ------------------------------------------------- */

/* Finds `"key"` followed by `:` and returns a pointer to the value, or NULL. */
static const char *find_value(const char *p, size_t len, const char *key)
{
    size_t kl = strlen(key);
    const char *end = p + len;
    for (const char *s = p; (s = memmem(s, (size_t)(end - s), key, kl)) != NULL; s += kl) {
        const char *v = s + kl;
        while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
            v++;
        if (v < end && *v == ':') {
            v++;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
                v++;
            return v < end ? v : NULL;
        }
    }
    return NULL;
}

static int value_is_true(const char *v, const char *end)
{
    return v && end - v >= 4 && memcmp(v, "true", 4) == 0;
}

static void handle_chat(struct conn *c, enum fmt fmt)
{
    const char *p = c->body.p ? c->body.p : "";
    const char *end = p + c->body.len;
    const char *m = find_value(p, c->body.len, "\"model\"");
    char model[MAX_MODEL + 1];
    size_t ml = 0;
    if (m && *m == '"') {
        for (m++; m < end && *m != '"' && *m != '\\' && ml < MAX_MODEL; m++)
            model[ml++] = *m;
        if (m >= end || *m != '"')
            ml = 0;
    }
    model[ml] = '\0';
    int stream = value_is_true(find_value(p, c->body.len, "\"stream\""), end);
    int usage = value_is_true(find_value(p, c->body.len, "\"include_usage\""), end);
    const struct resp *r = ml ? lookup(fmt, model, stream, usage) : NULL;
    if (!r) { /* no model, or too many distinct ones */
        send_text(c, "400 Bad Request", formats[fmt].bad_model);
        return;
    }
    if (!r->pace_ms) {
        uv_buf_t b = bufof(&r->full);
        send_bufs(c, &b, 1, 1);
        return;
    }
    c->stream = r;
    c->step = 0;
    stream_step(c);
    if (c->stream)
        uv_timer_start(&c->timer, on_tick, (uint64_t)r->pace_ms, (uint64_t)r->pace_ms);
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->url_len = 0;
    c->too_large = 0;
    c->hname_len = 0;
    c->in_value = 0;
    c->seen = 0;
    sb_buf_reset(&c->body);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    size_t room = sizeof c->url - 1 - c->url_len;
    size_t n = len < room ? len : room;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->in_value)
        c->hname_len = 0;
    c->in_value = 0;
    for (size_t i = 0; i < len && c->hname_len < sizeof c->hname - 1; i++) {
        char ch = at[i];
        c->hname[c->hname_len++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    c->hname[c->hname_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (!c->in_value && len)
        for (size_t i = 0; i < sizeof checked_headers / sizeof checked_headers[0]; i++)
            if (strcmp(c->hname, checked_headers[i].name) == 0)
                c->seen |= checked_headers[i].bit;
    c->in_value = 1;
    return 0;
}

/* POST /v1/messages: the headers the real API insists on, then the answer. */
static void handle_messages(struct conn *c)
{
    if (!(c->seen & HDR_API_KEY))
        send_text(c, "401 Unauthorized",
                  "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                  "\"message\":\"mock: x-api-key header is required\"}}");
    else if (!(c->seen & HDR_VERSION))
        send_text(c, "400 Bad Request",
                  "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                  "\"message\":\"mock: anthropic-version header is required\"}}");
    else
        handle_chat(c, FMT_ANTHROPIC);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (!c->too_large && sb_buf_append(&c->body, at, len) != SB_OK)
        c->too_large = 1;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (c->stream) {
        /* A request while a stream is in flight: not an HTTP/1.1 client we support. */
        conn_close(c);
        return 1;
    }
    c->keep_alive = http_should_keep_alive(p);
    char *q = strchr(c->url, '?');
    if (q)
        *q = '\0';
    if (c->too_large)
        send_text(c, "413 Payload Too Large", "{\"error\":{\"message\":\"mock: body too large\"}}");
    else if (p->method == HTTP_POST && strcmp(c->url, "/v1/chat/completions") == 0)
        handle_chat(c, FMT_OPENAI);
    else if (p->method == HTTP_POST && strcmp(c->url, "/v1/messages") == 0)
        handle_messages(c);
    else if (p->method == HTTP_GET && strcmp(c->url, "/health") == 0)
        send_text(c, "200 OK", "{\"status\":\"ok\"}");
    else if (p->method == HTTP_GET && strcmp(c->url, "/v1/models") == 0)
        send_text(c, "200 OK",
                  "{\"object\":\"list\",\"data\":[{\"id\":\"m1k\",\"object\":\"model\","
                  "\"created\":1700000000,\"owned_by\":\"mock\"}]}");
    else
        send_text(c, "404 Not Found", "{\"error\":{\"message\":\"mock: no such route\"}}");
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    *buf = uv_buf_init(readbuf, sizeof readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->closing)
        return;
    size_t done = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    if (!c->closing && (c->parser.http_errno != HPE_OK || done != (size_t)n))
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = sb_xcalloc(1, sizeof *c);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c->parser.data = c;
    c->open_handles = 2;
    sb_buf_init(&c->body, MAX_BODY);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- main ------------------------------------------------------------- */

static void usage_exit(void)
{
    fprintf(stderr,
            "usage: mock_upstream [--port N] [--fast-chunks N] [--paced-chunks N] [--pace-ms MS]\n"
            "                     [--hold-chunks N] [--hold-ms MS]\n"
            "  POST /v1/chat/completions (OpenAI) or /v1/messages (Anthropic): model m<N>k ->\n"
            "  an N KiB answer; stream:true -> SSE, model s-paced / s-hold -> one chunk every\n"
            "  pace / hold ms, others all at once.\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    struct { const char *name; int *dst; int min; } flags[] = {
        {"--port", &opt.port, 1},           {"--fast-chunks", &opt.fast_chunks, 1},
        {"--paced-chunks", &opt.paced_chunks, 1}, {"--pace-ms", &opt.pace_ms, 1},
        {"--hold-chunks", &opt.hold_chunks, 1},   {"--hold-ms", &opt.hold_ms, 1},
    };
    for (int i = 1; i < argc; i++) {
        size_t f = 0;
        while (f < sizeof flags / sizeof flags[0] && strcmp(argv[i], flags[f].name) != 0)
            f++;
        if (f == sizeof flags / sizeof flags[0] || i + 1 >= argc)
            usage_exit();
        char *end;
        long v = strtol(argv[++i], &end, 10);
        if (*end || v < flags[f].min || v > 100000000)
            usage_exit();
        *flags[f].dst = (int)v;
    }
}

static void on_signal(uv_signal_t *s, int sig)
{
    uv_stop(loop);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 10,000 held streams need 10,000 sockets */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    loop = uv_default_loop();
    /* Precompute the bodies the benchmark uses, so no request pays for a build. */
    lookup(FMT_OPENAI, "m1k", 0, 0);
    lookup(FMT_OPENAI, "m100k", 0, 0);
    lookup(FMT_OPENAI, "s-fast", 1, 1);
    lookup(FMT_OPENAI, "s-paced", 1, 1);
    lookup(FMT_OPENAI, "s-hold", 1, 1);
    lookup(FMT_ANTHROPIC, "m1k", 0, 0);
    lookup(FMT_ANTHROPIC, "s-fast", 1, 0);
    lookup(FMT_ANTHROPIC, "s-paced", 1, 0);

    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", opt.port, &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 8192, on_connection);
    if (rc < 0) {
        fprintf(stderr, "mock: listen 127.0.0.1:%d: %s\n", opt.port, uv_strerror(rc));
        return 1;
    }
    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    fprintf(stderr, "mock: listening on 127.0.0.1:%d (nofile %llu)\n", opt.port,
            (unsigned long long)(getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 0));
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
