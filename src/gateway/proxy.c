/* SPDX-License-Identifier: MIT */
/*
 * proxy.c - one /v1 request through a provider adapter to its upstream.
 *
 * The flow: parse the client's JSON (bounded), resolve `model` in the
 * registry snapshot (holding a reference for the whole request), let the
 * adapter build the upstream request, start it on this loop's upstream
 * client, and relay the answer. A stream is relayed event by event as the
 * bytes arrive: all events of one upstream read go out in one write, and
 * when the client's socket backs up we pause the upstream transfer until it
 * drains (STYLE.md practice 16). If the client goes away, the upstream
 * request is cancelled at once, and the request is still accounted with the
 * tokens it had received.
 *
 * A front door (front_door.h) other than OpenAI's changes only what the
 * client sees: its body is translated before it is parsed, and answers,
 * stream events and errors are written in its format. The capability
 * checks (caps.h) run after the model is resolved, before any upstream call.
 *
 * All request state lives in the request's arena; heap buffers and the
 * snapshot reference are released by an arena hook, which runs after the
 * upstream request is finished or cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/slice.h"
#include "gateway/caps.h"
#include "gateway/front_door.h"
#include "gateway/gateway.h"
#include "gateway/metrics.h"
#include "gateway/proxy_int.h"
#include "registry/registry.h"
#include "router/experiment.h"
#include "router/limits.h"
#include "router/router.h"
#include "store/usage.h"
#include "upstream/client.h"

#define STREAM_HIGH_WATER (256 * 1024) /* client backlog that pauses the upstream */

static bool retry(struct proxy *x, int status, const struct sb_error *e);
static void stop_wait(struct proxy *x);

/* ======================================================================
 * Small helpers
 * ==================================================================== */

/* OpenAI's rate-limit headers for a refusal by our own limiter: the limit
 * that said no, nothing left of it, and when it would pass (retry-after-ms
 * is what OpenAI's SDKs read first). A budget has no such header. */
static size_t ratelimit_headers(struct proxy *x, struct sb_http_header *h)
{
    const struct sb_limits_ticket *t = &x->lim;
    struct sb_arena *a = x->req->arena;
    size_t k = 0;
    if (t->refused_kind == SB_LIMITS_BUDGET)
        return 0;
    bool req = t->refused_kind == SB_LIMITS_REQUESTS;
    h[k++] = (struct sb_http_header){
        sb_slice_cstr(req ? "x-ratelimit-limit-requests" : "x-ratelimit-limit-tokens"),
        sb_slice_cstr(sb_arena_printf(a, "%lld", (long long)t->refused_limit))};
    h[k++] = (struct sb_http_header){
        sb_slice_cstr(req ? "x-ratelimit-remaining-requests" : "x-ratelimit-remaining-tokens"),
        SB_SLICE("0")};
    if (t->retry_after_ms > 0) {
        h[k++] = (struct sb_http_header){
            sb_slice_cstr(req ? "x-ratelimit-reset-requests" : "x-ratelimit-reset-tokens"),
            sb_slice_cstr(t->retry_after_ms < 1000
                              ? sb_arena_printf(a, "%lldms", (long long)t->retry_after_ms)
                              : sb_arena_printf(a, "%lld.%03llds",
                                                (long long)t->retry_after_ms / 1000,
                                                (long long)t->retry_after_ms % 1000))};
        h[k++] = (struct sb_http_header){
            SB_SLICE("retry-after-ms"),
            sb_slice_cstr(sb_arena_printf(a, "%lld", (long long)t->retry_after_ms))};
    }
    return k;
}

const struct sb_http_header *sb__proxy_headers(struct proxy *x, const char *ctype, size_t *n)
{
    struct sb_http_header *h = sb_arena_alloc(x->req->arena, 13 * sizeof(*h));
    size_t k = 0;
    h[k++] = (struct sb_http_header){SB_SLICE("content-type"), sb_slice_cstr(ctype)};
    if (x->call.provider) {
        h[k++] = (struct sb_http_header){SB_SLICE("x-switchboard-provider"),
                                         sb_slice_cstr(x->call.provider->id)};
        h[k++] = (struct sb_http_header){SB_SLICE("x-switchboard-model"),
                                         sb_slice_cstr(x->call.model->id)};
        h[k++] = (struct sb_http_header){
            SB_SLICE("x-switchboard-fallbacks"),
            sb_slice_cstr(sb_arena_printf(x->req->arena, "%d", x->fallbacks))};
    }
    if (x->retry_after.len)
        h[k++] = (struct sb_http_header){SB_SLICE("retry-after"), x->retry_after};
    if (x->limited)
        k += ratelimit_headers(x, h + k);
    if (x->adjusted)
        h[k++] =
            (struct sb_http_header){SB_SLICE("x-switchboard-adjusted"), sb_slice_cstr(x->adjusted)};
    if (x->local_header)
        h[k++] = (struct sb_http_header){sb_slice_cstr(x->local_header), SB_SLICE("true")};
    if (x->cache_on)
        h[k++] = (struct sb_http_header){SB_SLICE(SB_CACHE_HEADER),
                                         x->cache_hit ? SB_SLICE("hit") : SB_SLICE("miss")};
    if (x->variant)
        h[k++] =
            (struct sb_http_header){SB_SLICE("x-switchboard-variant"), sb_slice_cstr(x->variant)};
    *n = k;
    return h;
}

static double ms_since(uint64_t start_ns, uint64_t now_ns)
{
    return (double)(now_ns - start_ns) / 1e6;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    sb_str_copy(dst, cap, src);
}

int64_t sb__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reports the current attempt to the router (once): ok, or a failure that
 * counts against the deployment; hold_ms from the upstream's Retry-After. */
static void end_attempt(struct proxy *x, bool ok, int64_t hold_ms)
{
    if (!x->attempt_ns || !x->w->gw->router)
        return;
    uint64_t now = uv_hrtime();
    double ttft = x->ttft_ns > x->attempt_ns ? ms_since(x->attempt_ns, x->ttft_ns) : -1;
    sb_router_end(x->w->gw->router, x->call.model, ok, ms_since(x->attempt_ns, now), ttft, hold_ms,
                  sb__wall_ms());
    x->attempt_ns = 0;
}

void sb__proxy_end_attempt(struct proxy *x, bool ok)
{
    end_attempt(x, ok, 0);
}

/* The reservations become the real tokens and cost (or come back whole when
 * nothing was sent upstream). */
static void settle_limits(struct proxy *x, const struct sb_usage *u)
{
    struct sb_limits *l = x->w->gw->limits;
    if (!l || !x->lim.held)
        return;
    if (x->local_header) {
        sb_limits_cancel(l, &x->lim, sb__wall_ms());
        return;
    }
    int64_t prompt = u->prompt_tokens >= 0 ? u->prompt_tokens : 0;
    int64_t done = u->completion_tokens > 0 ? u->completion_tokens : 0;
    sb_limits_settle(l, &x->lim, prompt + done, u->cost_usd, sb__wall_ms());
}

/* ======================================================================
 * Accounting: one usage row and one metrics sample per request
 * ==================================================================== */

/* One structured line per request: errors at warn, client mistakes at info,
 * successes at debug (SWITCHBOARD_LOG_LEVEL=debug), so the fast path does
 * not pay a write(2) per request by default. why never holds a secret:
 * adapters mask credentials in upstream error text. */
static void log_request(const struct sb_usage *u, const char *why)
{
    char clean[200];
    if (why) {
        /* Upstream text is untrusted: no quotes or control bytes in a log line. */
        size_t i = 0;
        for (; why[i] && i < sizeof(clean) - 1; i++)
            clean[i] = (why[i] == '"' || (unsigned char)why[i] < 0x20) ? '\'' : why[i];
        clean[i] = '\0';
        why = clean;
    }
    enum sb_log_level lvl = u->http_status >= 500   ? SB_LOG_WARN
                            : u->http_status >= 400 ? SB_LOG_INFO
                                                    : SB_LOG_DEBUG;
    sb_log(lvl, u->request_id,
           "msg=request provider=%s model=%s status=%s http_status=%d latency_ms=%.1f "
           "ttft_ms=%.1f prompt_tokens=%lld completion_tokens=%lld streamed=%d error=%s%s%s%s",
           u->provider[0] ? u->provider : "-", u->model[0] ? u->model : "-", u->status,
           u->http_status, u->latency_ms, u->ttft_ms, (long long)u->prompt_tokens,
           (long long)u->completion_tokens, u->streamed, u->error_code[0] ? u->error_code : "-",
           why ? " why=\"" : "", why ? why : "", why ? "\"" : "");
}

void sb__proxy_account(struct proxy *x, int http_status, const char *status, sb_err code,
                       const char *why)
{
    if (x->done)
        return;
    x->done = true;
    /* The attempt that ends the request: a 5xx or 429 counts against it. */
    end_attempt(x, http_status < 500 && http_status != 429, 0);
    uint64_t now = uv_hrtime();
    const struct sb_model *m = x->call.model;
    struct sb_usage u;
    memset(&u, 0, sizeof(u));
    copy_field(u.request_id, sizeof(u.request_id), x->req->id);
    double latency_ms = ms_since(x->req->start_ns, now);
    u.ts_ms = (int64_t)time(NULL) * 1000 - (int64_t)latency_ms;
    copy_field(u.user_id, sizeof(u.user_id), x->client.user);
    copy_field(u.key_id, sizeof(u.key_id), x->client.key ? x->client.key->id : NULL);
    copy_field(u.provider, sizeof(u.provider), m ? m->provider->id : "");
    copy_field(u.model, sizeof(u.model), m ? m->id : "");
    copy_field(u.route, sizeof(u.route),
               x->experiment ? x->experiment->id
               : x->route    ? x->route->id
                             : NULL);
    copy_field(u.variant, sizeof(u.variant), x->variant);
    u.fallbacks = x->fallbacks;
    copy_field(u.status, sizeof(u.status), status);
    u.http_status = http_status;
    u.prompt_tokens = x->usage.prompt_tokens;
    u.completion_tokens = x->usage.completion_tokens;
    if (u.completion_tokens < 0 && x->delta_chunks > 0)
        u.completion_tokens = x->delta_chunks; /* cancelled stream: one token per delta chunk */
    if (m) {
        double in = u.prompt_tokens > 0 ? (double)u.prompt_tokens : 0;
        double outt = u.completion_tokens > 0 ? (double)u.completion_tokens : 0;
        u.cost_usd = (in * m->input_per_mtok + outt * m->output_per_mtok) / 1e6;
    }
    if (x->cache_hit)
        u.cost_usd = 0; /* served from the cache: no provider was paid */
    settle_limits(x, &u);
    u.latency_ms = latency_ms;
    u.ttft_ms = x->ttft_ns ? ms_since(x->req->start_ns, x->ttft_ns) : -1;
    u.streamed = x->call.stream;
    if (code != SB_OK)
        copy_field(u.error_code, sizeof(u.error_code), sb_err_name(code));
    if (x->w->gw->usage && !(x->front && x->front->no_usage_row))
        sb_usage_submit(x->w->gw->usage, &u);
    log_request(&u, why);
    struct sb_metrics_sample s = {
        .provider = u.provider,
        .model = u.model,
        .status = http_status,
        .latency_s = latency_ms / 1e3,
        .ttft_s = x->ttft_ns ? u.ttft_ms / 1e3 : -1,
        .upstream_error =
            code == SB_E_UPSTREAM || code == SB_E_UPSTREAM_TIMEOUT || http_status >= 500,
        .error_code = sb_err_name(code),
    };
    sb_metrics_record(&s);
}

static void fail(struct proxy *x, const struct sb_error *e)
{
    int status = sb_err_status(e);
    char code[48]; /* sized for sb_error.api_code */
    copy_field(code, sizeof(code),
               x->err_code      ? x->err_code
               : e->api_code[0] ? e->api_code /* the upstream's own code, kept (issue 6) */
                                : sb_err_name(e->code));
    for (char *p = code; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    sb__proxy_account(x, status, "error", e->code, e->msg);
    struct sb_buf b;
    sb_buf_init(&b, 0);
    /* An OpenAI-format upstream's own type and param are kept (SDKs branch on them). */
    const char *type = e->api_type[0] ? e->api_type : sb_err_type(e->code);
    if (x->front)
        x->front->error_body(&b, status, type, code, e->msg, x->req->id);
    else
        sb_http_error_body_param(&b, type, code, e->api_param, e->msg);
    size_t n;
    const struct sb_http_header *h = sb__proxy_headers(x, "application/json", &n);
    struct sb_slice body = sb_arena_slice(x->req->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    sb_http_respond(x->req, status, h, n, body);
}

static void cleanup(void *ud)
{
    struct proxy *x = ud;
    if (x->ureq)
        sb_ureq_cancel(x->ureq);
    stop_wait(x);
    sb_buf_free(&x->body);
    sb_buf_free(&x->out);
    sb_registry_book_return(x->w->book, x->reg); /* on the loop that leased it */
    sb_metrics_inflight(-1);
}

/* ======================================================================
 * Streaming relay
 * ==================================================================== */

static void sse_append(struct proxy *x, struct sb_slice data)
{
    sb_buf_append(&x->out, "data: ", 6);
    sb_buf_append_slice(&x->out, data);
    sb_buf_append(&x->out, "\n\n", 2);
}

static void sse_error(struct proxy *x, const struct sb_error *e)
{
    if (x->sent_error)
        return;
    x->sent_error = true;
    if (x->front) {
        x->front->stream_error(&x->out, sb_err_status(e), sb_slice_cstr(e->msg));
        return;
    }
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_http_error_body(&b, sb_err_type(e->code), "upstream_stream_error", e->msg);
    sse_append(x, sb_buf_slice(&b));
    sb_buf_free(&b);
}

/* A front door sees every chunk (usage-only ones too); after an error it sees no more. */
static void front_chunk(struct proxy *x, struct sb_slice chunk)
{
    struct sb_error e;
    if (x->sent_error)
        return;
    if (x->front->stream_chunk(x->front_st, chunk, &x->out, &e) != SB_OK)
        sse_error(x, &e);
}

/* The stream's first bytes go to the socket at once; later ones are corked
 * until the end of the loop turn (net/conn.c), one write per upstream read. */
static void flush(struct proxy *x)
{
    if (x->out.len == 0)
        return;
    if (!x->ttft_ns) {
        x->ttft_ns = uv_hrtime();
        sb_http_stream_write_now(x->req, x->out.p, x->out.len);
    } else {
        sb_http_stream_write(x->req, x->out.p, x->out.len);
    }
    sb_buf_reset(&x->out);
}

static int on_event(void *ud, const struct sb_event *ev)
{
    struct proxy *x = ud;
    switch (ev->kind) {
    case SB_EV_CHUNK:
        sb__proxy_cache_event(x, ev->chunk); /* usage chunks too: the entry keeps usage */
        if (ev->has_usage)
            x->usage = ev->usage;
        if (ev->finish_reason.len)
            x->saw_done = true;
        if (ev->text.len)
            x->delta_chunks++;
        /* The client sees the usage chunk only if it asked for it. */
        if (x->front)
            front_chunk(x, ev->chunk);
        else if (!ev->usage_only || x->call.client_wants_usage)
            sse_append(x, ev->chunk);
        /* An upstream read often holds many events (a fast model, a cached
         * answer): the first one leaves before the rest are handled. */
        if (!x->ttft_ns)
            flush(x);
        break;
    case SB_EV_DONE:
        sb__proxy_cache_event(x, SB_SLICE("[DONE]"));
        x->saw_done = true;
        if (!x->front)
            sse_append(x, SB_SLICE("[DONE]"));
        break;
    case SB_EV_ERROR:
        sse_error(x, &ev->error);
        break;
    }
    return 0;
}

static void on_client_drain(void *ud)
{
    struct proxy *x = ud;
    if (x->ureq)
        sb_ureq_resume(x->ureq);
}

int sb__proxy_backpressure(struct proxy *x)
{
    if (sb_http_stream_write(x->req, NULL, 0) <= STREAM_HIGH_WATER)
        return 0;
    sb_http_on_drain(x->req, on_client_drain, x);
    return SB_UREQ_PAUSE;
}

static void stream_begin(struct proxy *x)
{
    x->streaming = true;
    x->st = x->call.provider->ops->stream_open(&x->call);
    if (x->front)
        x->front_st = x->front->stream_open(x->req->arena, x->client_model);
    sb_buf_init(&x->out, 0);
    sb__proxy_cache_stream_begin(x);
    size_t n;
    const struct sb_http_header *h = sb__proxy_headers(x, "text/event-stream", &n);
    struct sb_http_header *all = sb_arena_alloc(x->req->arena, (n + 1) * sizeof(*all));
    memcpy(all, h, n * sizeof(*h));
    all[n++] = (struct sb_http_header){SB_SLICE("cache-control"), SB_SLICE("no-cache")};
    sb_http_stream_start(x->req, 200, all, n);
}

/* Ends the stream; err is NULL on a clean end. */
static void stream_end(struct proxy *x, const struct sb_error *err)
{
    end_attempt(x, !err, 0); /* a stream that breaks counts against its deployment */
    struct sb_error fe = {.code = SB_E_UPSTREAM, .msg = "the stream ended with an error"};
    if (!err && x->front &&
        (x->sent_error || x->front->stream_finish(x->front_st, &x->out, &fe) != SB_OK))
        err = &fe; /* an error event was sent, or the upstream never finished the message */
    if (err)
        sse_error(x, err);
    flush(x);
    sb_http_stream_end(x->req);
    if (err) {
        sb__proxy_account(x, 200, "error", err->code, err->msg);
    } else {
        sb__proxy_cache_stream_end(x);
        sb__proxy_account(x, 200, "ok", SB_OK, NULL);
    }
}

/* ======================================================================
 * Upstream callbacks
 * ==================================================================== */

static struct sb_slice find_kv(const struct sb_kv *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (sb_slice_caseeq(h[i].name, sb_slice_cstr(name)))
            return h[i].value;
    return SB_SLICE_NULL;
}

static void on_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct proxy *x = ud;
    x->status = status;
    x->relay = RELAY_NO; /* an earlier attempt's choice never carries over */
    struct sb_slice ra = find_kv(h, n, "retry-after");
    if (ra.len)
        x->retry_after = sb_arena_slice(x->req->arena, ra);
    if (status >= 200 && status < 300 && x->call.stream) {
        stream_begin(x);
        return;
    }
    unsigned long long len;
    bool known = sb_slice_to_u64(find_kv(h, n, "content-length"), &len) && len <= x->body.max;
    if (status >= 200 && status < 300)
        sb__proxy_relay_head(x, known ? (long long)len : -1);
    /* One allocation for a whole body of known size, instead of doublings
     * (a relayed one holds its first part only). */
    if (known)
        sb_buf_reserve(&x->body, x->relay == RELAY_NO
                                     ? (size_t)len
                                     : (size_t)(len < SB_RELAY_AFTER ? len : SB_RELAY_AFTER));
}

static int on_data(void *ud, const char *p, size_t n)
{
    struct proxy *x = ud;
    if (!x->streaming) {
        int rc = x->relay != RELAY_NO                     ? sb__proxy_relay_data(x, p, n)
                 : sb_buf_append(&x->body, p, n) == SB_OK ? 0
                                                          : -1;
        if (rc < 0) {
            struct sb_error e;
            sb_fail(&e, SB_E_UPSTREAM, "upstream response exceeds %zu bytes", x->body.max);
            sb_ureq_cancel(x->ureq);
            x->ureq = NULL;
            fail(x, &e);
            return 0;
        }
        return rc;
    }
    /* Pause before consuming: a paused transfer hands us the same bytes again. */
    if (sb__proxy_backpressure(x))
        return SB_UREQ_PAUSE;
    struct sb_error e;
    sb_err rc = x->call.provider->ops->stream_feed(x->st, p, n, on_event, x, &e);
    if (rc != SB_OK && rc != SB_AGAIN) {
        sb_ureq_cancel(x->ureq);
        x->ureq = NULL;
        stream_end(x, &e);
        return 0;
    }
    flush(x);
    return 0;
}

static void finish_stream(struct proxy *x, sb_err result, const struct sb_error *err)
{
    struct sb_error e;
    if (result != SB_OK) {
        sb_fail(&e, result, "upstream stream broke: %s", err ? err->msg : sb_err_name(result));
        stream_end(x, &e);
        return;
    }
    sb_err rc = x->call.provider->ops->stream_finish(x->st, on_event, x, &e);
    stream_end(x, rc == SB_OK || x->saw_done ? NULL : &e);
}

static void finish_whole(struct proxy *x)
{
    struct sb_error e;
    const struct sb_provider_ops *ops = x->call.provider->ops;
    struct sb_slice body = sb_buf_slice(&x->body);
    if (x->status < 200 || x->status >= 300) {
        ops->map_error(&x->call, x->status, body, &e);
        if (!retry(x, x->status, &e))
            fail(x, &e);
        return;
    }
    struct sb_result r = {.usage = x->usage};
    sb_err rc = x->front ? x->front->whole(&x->call, body, x->client_model, &r.body, &r.usage, &e)
                         : ops->parse_response(&x->call, body, &r, &e);
    if (rc != SB_OK) {
        fail(x, &e);
        return;
    }
    x->usage = r.usage;
    if (!x->front)
        sb__proxy_cache_whole(x, r.body);
    sb__proxy_account(x, 200, "ok", SB_OK, NULL);
    size_t n;
    const struct sb_http_header *h = sb__proxy_headers(x, "application/json", &n);
    sb_http_respond(x->req, 200, h, n, r.body);
}

static void on_done(void *ud, sb_err result, const struct sb_error *err)
{
    struct proxy *x = ud;
    x->ureq = NULL;
    if (x->done)
        return;
    if (x->streaming) {
        finish_stream(x, result, err);
    } else if (x->relay == RELAY_ON) {
        sb__proxy_relay_done(x, result, err);
    } else if (result != SB_OK) {
        if (!retry(x, 0, err))
            fail(x, err);
    } else {
        finish_whole(x);
    }
}

static void on_client_abort(void *ud)
{
    struct proxy *x = ud;
    if (x->ureq) {
        sb_ureq_cancel(x->ureq);
        x->ureq = NULL;
    }
    sb__proxy_account(x, 499, "cancelled", SB_OK, "client disconnected");
}

/* ======================================================================
 * Entry: parse, resolve, start
 * ==================================================================== */

static struct proxy *proxy_new(struct sb_http_req *req, struct sb_gw_worker *w)
{
    struct proxy *x = sb_arena_calloc(req->arena, sizeof(*x));
    x->req = req;
    x->w = w;
    x->call.arena = req->arena;
    x->call.want_parts = true; /* the upstream client writes a body's pieces as they are */
    x->usage.prompt_tokens = x->usage.completion_tokens = -1;
    x->prompt_est = -1;
    sb_buf_init(&x->body, w->gw->max_upstream_bytes);
    sb_buf_init(&x->out, 0);
    x->reg = sb_registry_book_lease(w->book);
    sb_metrics_inflight(1);
    sb_arena_on_free(req->arena, cleanup, x);
    return x;
}

/* Names, string values and numbers this short are copied into the arena rather than
 * pointed into the map: lookups compare every name of an object, and each
 * read of a page of the map brings in the 64 KiB the kernel maps around it,
 * so a pass-through that reads only names, the model and a few small values
 * never touches the map (its long strings go upstream from the file). */
#define SPOOL_KEEP_SHORT 256

/* A body in a file (server.body_buffer_bytes, §1.2) is parsed from a copy
 * read out of the file, and the tree is then pointed at the file's map
 * (sb_json_rebase) and the copy freed: the map's pages are never faulted in
 * by the parse. Measured on the development VM: faulting a 1 MB map in cost
 * 245-317 us, a pread into a heap block 49 us. One copy per worker exists at
 * a time (the parse is synchronous), and the allocator reuses its block. */
static sb_err parse_spooled(struct proxy *x, const struct sb_json_limits *lim, struct sb_json **j,
                            struct sb_error *err)
{
    const struct sb_slice body = x->req->body;
    char *copy = sb_xmalloc(body.len + 1);
    size_t got = 0;
    while (got < body.len) {
        ssize_t k = sb_spool_read(x->req->spool, copy + got, body.len - got, got);
        if (k <= 0) {
            free(copy);
            sb_log(SB_LOG_ERROR, x->req->id, "msg=\"request body unreadable\" error=\"%s\"",
                   k < 0 ? strerror((int)-k) : "file shorter than the body");
            return sb_fail(err, SB_E_IO, "the gateway could not read the request body back");
        }
        got += (size_t)k;
    }
    copy[body.len] = '\0';
    sb_err rc = sb_json_parse(x->req->arena, copy, body.len, lim, j, err);
    if (rc == SB_OK)
        sb_json_rebase(*j, copy, body.len, body.p, x->req->arena, SPOOL_KEEP_SHORT);
    free(copy);
    return rc;
}

static sb_err parse_body(struct proxy *x, struct sb_error *err)
{
    /* OpenAI's own format is parsed lazily: string values keep their escapes
     * (a long prompt is not unescaped into a second copy) until a target
     * that translates the body needs them decoded (decode_body). */
    struct sb_json_limits lim = {
        .max_depth = 64, .max_bytes = x->w->gw->max_body_bytes, .lazy_strings = !x->front};
    struct sb_json *j;
    x->call.body = x->req->body;
    const struct sb_slice b = x->req->body;
    sb_err rc = x->req->spool ? parse_spooled(x, &lim, &j, err)
                              : sb_json_parse(x->req->arena, b.p, b.len, &lim, &j, err);
    if (rc == SB_E_IO)
        return rc;
    if (rc != SB_OK) {
        err->code = SB_E_BAD_JSON;
        return SB_E_BAD_JSON;
    }
    if (j->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_JSON, "request body must be a JSON object");
    x->lazy = lim.lazy_strings;
    if (x->front && x->front->translate) {
        /* The adapters see the OpenAI body; the translation came from a bounded input. */
        lim.max_bytes = 0;
        if (x->front->translate(x->req->arena, j, &x->call.body, err) != SB_OK ||
            sb_json_parse(x->req->arena, x->call.body.p, x->call.body.len, &lim, &j, err) != SB_OK)
            return err->code;
    }
    x->call.json = j;
    const struct sb_json *stream = sb_json_get(j, "stream");
    if (stream && stream->type != SB_JSON_TRUE && stream->type != SB_JSON_FALSE &&
        stream->type != SB_JSON_NULL)
        return sb_fail(err, SB_E_BAD_REQUEST, "'stream' must be a boolean");
    x->call.stream = x->call.op == SB_OP_CHAT && sb_json_bool(stream);
    const struct sb_json *so = sb_json_get(j, "stream_options");
    x->call.client_wants_usage = sb_json_bool(sb_json_get(so, "include_usage"));
    return SB_OK;
}

/* The key may call name (a model or route id as sent), or 403. */
static sb_err key_allows(struct proxy *x, struct sb_slice name, struct sb_error *err)
{
    if (!x->client.key || sb_registry_key_allows(x->client.key, name))
        return SB_OK;
    x->err_code = "model_not_allowed";
    return sb_fail(err, SB_E_FORBIDDEN, "this API key may not use the model '%.*s'",
                   (int)(name.len > 100 ? 100 : name.len), name.p);
}

static sb_err not_found(struct proxy *x, struct sb_slice name, struct sb_error *err)
{
    const char *near[3];
    size_t n = x->reg ? sb_registry_suggest(x->reg, name, x->client.user, near, 3) : 0;
    char hint[160] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(hint);
        snprintf(hint + len, sizeof(hint) - len, "%s%s", i ? ", " : " Did you mean: ", near[i]);
    }
    x->err_code = "model_not_found";
    return sb_fail(err, SB_E_NOT_FOUND, "The model '%.*s' does not exist or is not enabled.%s%s",
                   (int)(name.len > 100 ? 100 : name.len), name.p, hint, n ? "?" : "");
}

/* The prompt's estimated tokens (chat; 0 otherwise), walked once per request:
 * the plan, every attempt's limits and capability check ask for it. */
static int64_t prompt_tokens(struct proxy *x)
{
    if (x->prompt_est < 0)
        x->prompt_est = x->call.op == SB_OP_CHAT ? sb_token_estimate(x->call.json) : 0;
    return x->prompt_est;
}

/* The output the client asked for at most (max_completion_tokens, else max_tokens), 0 = not said.
 */
static int64_t requested_max(const struct proxy *x)
{
    int64_t max = 0;
    if (!sb_json_int64(sb_json_get(x->call.json, "max_completion_tokens"), &max))
        sb_json_int64(sb_json_get(x->call.json, "max_tokens"), &max);
    return max > 0 ? max : 0;
}

/* What a route's strategy needs to know of the request. */
uint64_t sb__proxy_conversation(const struct proxy *x)
{
    struct sb_slice conv = sb_http_header(x->req, "x-switchboard-conversation");
    const struct sb_json *user = sb_json_get(x->call.json, "user");
    uint64_t h = 0;
    if (!conv.len && sb_json_is_string(user))
        conv = user->str;
    for (size_t i = 0; i < conv.len; i++) /* FNV-1a: the same conversation, the same target */
        h = (h ^ (unsigned char)conv.p[i]) * 1099511628211ull;
    return h;
}

static void plan_request(struct proxy *x, struct sb_plan_req *q)
{
    memset(q, 0, sizeof(*q));
    q->sticky = sb__proxy_conversation(x);
    q->max_tokens = requested_max(x);
    q->prompt_tokens = prompt_tokens(x);
    q->user = x->client.user;
    q->now_ms = sb__wall_ms();
}

/* The plan of a route, or of a model with fallbacks (re = model->fallbacks). */
static sb_err plan_route(struct proxy *x, const struct sb_route_entry *re, struct sb_error *err)
{
    struct sb_plan_req q;
    bool model = strcmp(re->strategy, "fallbacks") == 0;
    plan_request(x, &q);
    if (!model)
        x->route = re; /* usage rows name a route; a model keeps its own name */
    x->planned = re;
    if (x->w->gw->router)
        sb_router_plan(x->w->gw->router, x->reg, re, &q, &x->plan);
    if (x->plan.n > 0)
        return SB_OK;
    const char *what = model ? "model" : "route", *and = model ? " and its fallbacks" : "";
    if (x->plan.open > 0) {
        x->err_code = "no_healthy_target";
        return sb_fail(err, SB_E_UNAVAILABLE,
                       "%s '%s'%s: every target that fits is unavailable right now (circuit "
                       "open after failures); retry later",
                       what, re->id, and);
    }
    x->err_code = "no_target_fits";
    return sb_fail(err, SB_E_BAD_REQUEST,
                   "%s '%s'%s: no target can serve this request (visibility, capabilities or "
                   "context length)",
                   what, re->id, and);
}

/* An experiment's variant for this conversation (sticky: header, else the
 * body's user, else a random draw); returns the variant's target name. */
static struct sb_slice choose_variant(struct proxy *x, const struct sb_experiment_entry *xe)
{
    const struct sb_json *u = sb_json_get(x->call.json, "user");
    struct sb_experiment_choice ch;
    sb_experiment_assign(xe, sb_http_header(x->req, "x-switchboard-conversation"),
                         sb_json_is_string(u) ? u->str : SB_SLICE_NULL, sb_experiment_random(),
                         &ch);
    x->experiment = xe;
    x->variant = ch.counted ? ch.variant->name : NULL;
    return sb_slice_cstr(ch.variant->target);
}

/* The deployments to try: an experiment's variant, a route's plan, or the one model named. */
static sb_err resolve_targets(struct proxy *x, struct sb_error *err)
{
    const struct sb_json *m = sb_json_get(x->call.json, "model");
    if (!m)
        return sb_fail(err, SB_E_BAD_REQUEST, "missing required parameter: 'model'");
    if (m->type != SB_JSON_STRING || m->str.len == 0)
        return sb_fail(err, SB_E_BAD_REQUEST, "'model' must be a non-empty string");
    struct sb_slice sent = sb_json_text(x->req->arena, m); /* a lazy parse kept escapes */
    x->client_model = sb_arena_strndup(x->req->arena, sent.p, sent.len);
    /* The key's scope is checked on the name the client sent (an experiment's
     * id covers all its variants' targets). */
    if (key_allows(x, sent, err) != SB_OK)
        return err->code;
    struct sb_slice name = sent;
    const struct sb_experiment_entry *xe =
        x->reg ? sb_registry_find_experiment(x->reg, sent) : NULL;
    if (xe)
        name = choose_variant(x, xe);
    const struct sb_route_entry *re = x->reg ? sb_registry_find_route(x->reg, name) : NULL;
    if (re)
        return plan_route(x, re, err);
    const struct sb_model *model = x->reg ? sb_registry_find_model(x->reg, name) : NULL;
    if (model && !sb_registry_model_visible(model, x->client.user))
        model = NULL; /* another user's personal model does not exist for this caller */
    if (!model)
        return not_found(x, name, err);
    if (model->fallbacks && x->w->gw->router)
        return plan_route(x, model->fallbacks, err);
    x->plan.t[0] = model;
    x->plan.n = 1;
    x->call.model = model;
    x->call.provider = model->provider;
    return SB_OK;
}

/* A user's own key for the provider replaces the system key; a provider
 * that requires one refuses users without it (the admin token, which has no
 * user, keeps the system key). */
static sb_err choose_credential(struct proxy *x, struct sb_error *err)
{
    const struct sb_provider *p = x->call.provider;
    const struct sb_secret *own =
        x->client.user ? sb_registry_personal_key(x->reg, p->id, x->client.user) : NULL;
    if (own) {
        struct sb_provider *mine = sb_arena_alloc(x->req->arena, sizeof(*mine));
        *mine = *p;
        mine->api_key = (struct sb_secret *)own; /* the snapshot's, held as long as x->reg */
        mine->auth = p->keyed_auth;
        x->call.provider = mine;
        return SB_OK;
    }
    if (p->personal_keys_required && x->client.kind != SB_CLIENT_ADMIN) {
        x->err_code = "personal_key_required";
        return sb_fail(err, SB_E_FORBIDDEN,
                       "provider '%s' needs your own API key: PUT /api/me/credentials/%s", p->id,
                       p->id);
    }
    return sb__proxy_pick_key(x, err);
}

static sb_err authenticate(struct proxy *x, struct sb_error *err)
{
    sb_err rc = sb_gateway_authenticate(x->w->gw, x->reg, x->req, &x->client, err);
    if (rc == SB_E_UNAUTHORIZED)
        x->err_code = "invalid_api_key";
    return rc;
}

/* What the model cannot do is refused here, before any upstream call (caps.h). */
static sb_err check_caps(struct proxy *x, struct sb_error *err)
{
    if (x->front && !x->front->check_caps)
        return SB_OK;
    return sb_caps_check(x->call.model, x->call.op, x->call.json, prompt_tokens(x), err);
}

/* A front door's answer that needs no upstream (an estimate), with its marker header. */
static void respond_local(struct proxy *x, struct sb_slice body)
{
    size_t n;
    x->local_header = x->front->local_header;
    sb__proxy_account(x, 200, "ok", SB_OK, NULL);
    const struct sb_http_header *h = sb__proxy_headers(x, "application/json", &n);
    sb_http_respond(x->req, 200, h, n, body);
}

static sb_err start_upstream(struct proxy *x, struct sb_error *err)
{
    const struct sb_provider *p = x->call.provider;
    struct sb_upstream_req ur;
    struct sb_slice local = SB_SLICE_NULL;
    memset(&ur, 0, sizeof(ur));
    if ((x->front && x->front->build ? x->front->build(&x->call, &ur, &local, err)
                                     : p->ops->build_request(&x->call, &ur, err)) != SB_OK)
        return err->code;
    if (local.p) {
        respond_local(x, local);
        return SB_OK;
    }
    x->adjusted = ur.adjusted;
    struct sb_ureq_spec spec = {
        .method = ur.method,
        .url = ur.url,
        .headers = ur.headers,
        .nheaders = ur.nheaders,
        .body = ur.nparts ? NULL : ur.body.p,
        .body_len = ur.body.len,
        .parts = ur.parts,
        .nparts = ur.nparts,
        .connect_timeout_ms = p->connect_timeout_ms ? p->connect_timeout_ms : 10000,
        .total_timeout_ms = p->timeout_ms,
        .idle_timeout_ms = p->idle_timeout_ms,
        .transport = (enum sb_ureq_transport)p->transport,
        .spool = x->req->spool,
    };
    /* A spooled body's pages read by the parse, a translation or a cache key
     * (and the 64 KiB the kernel maps around each page a read faults in) are
     * dropped, since the upstream client sends the pieces that lie in the
     * file from the file: at once, or with the other bodies of the worker's
     * pool at its next sweep (core/spool.h). Every attempt does it again: a
     * failover's adapter may have read them back. */
    sb_spool_release(x->req->spool);
    static const struct sb_ureq_cbs cbs = {on_head, on_data, on_done};
    x->ureq = sb_ureq_start(x->w->up, &spec, &cbs, x, err);
    if (!x->ureq)
        return err->code ? err->code : SB_E_UPSTREAM;
    sb_http_on_abort(x->req, on_client_abort, x);
    return SB_OK;
}

/* ======================================================================
 * Attempts: try the plan's targets in order until one answers
 * ==================================================================== */

#define DEFAULT_DEADLINE_MS 120000 /* no new attempt after this (gateway.h) */

/* Every scope's limit admits this attempt (provider rpm/tpm, the key's and
 * the user's limits and budgets), reserved all at once; a later attempt moves
 * the provider's share to the new target. A refusal leaves x->err_code unset:
 * the limiter's own code (rate_limit_exceeded, insufficient_quota) is used. */
static sb_err reserve_limits(struct proxy *x, const struct sb_model *m, struct sb_error *err)
{
    struct sb_limits *l = x->w->gw->limits;
    if (!l)
        return SB_OK;
    struct sb_limits_req r = {
        .model = m,
        .key = x->client.key,
        .user = x->client.user,
        .user_limits = sb_registry_user_limits(x->reg, x->client.user),
        .prompt_tokens = prompt_tokens(x),
        .max_tokens = requested_max(x),
        .no_output = x->call.op == SB_OP_EMBEDDINGS,
        .now_ms = sb__wall_ms(),
    };
    sb_err rc = x->lim.held ? sb_limits_retarget(l, &r, &x->lim, err)
                            : sb_limits_reserve(l, &r, &x->lim, err);
    if (rc == SB_E_RATE_LIMITED)
        sb_metrics_limit_refused((int)x->lim.refused,
                                 strcmp(err->api_code, "insufficient_quota") == 0);
    return rc;
}

/* Prepares target plan.t[attempt] and starts it. */
static sb_err try_target(struct proxy *x, struct sb_error *err)
{
    const struct sb_model *m = x->plan.t[x->attempt];
    x->call.model = m;
    x->call.provider = m->provider;
    x->key = NULL;
    /* A fallback to another kind of provider must not forward the first one's
     * reasoning signatures (DESIGN.md §6): its adapter leaves them out. */
    x->call.foreign_signatures =
        x->attempt > 0 && strcmp(m->provider->type, x->plan.t[0]->provider->type) != 0;
    if (check_caps(x, err) != SB_OK || choose_credential(x, err) != SB_OK ||
        reserve_limits(x, m, err) != SB_OK)
        return err->code;
    if (x->w->gw->router && !sb_router_begin(x->w->gw->router, m, sb__wall_ms())) {
        if (x->lim.held) /* this target is skipped: its provider share goes back */
            sb_limits_cancel(x->w->gw->limits, &x->lim, sb__wall_ms());
        sb_fail(err, SB_E_RATE_LIMITED,
                "provider '%s' has its max_concurrency (%ld) requests in flight; retry shortly",
                m->provider->id, m->provider->max_concurrency);
        snprintf(err->api_code, sizeof(err->api_code), "rate_limit_exceeded");
        return SB_E_RATE_LIMITED;
    }
    x->attempt_ns = uv_hrtime();
    sb_err rc = start_upstream(x, err);
    if (rc != SB_OK)
        end_attempt(x, true, 0); /* never reached the upstream: says nothing of it */
    return rc;
}

/* Starts the first target from the current one that can be tried; when none
 * can, the client gets the last reason. */
static void run_targets(struct proxy *x)
{
    while (x->attempt < x->plan.n) {
        struct sb_error err = {0};
        if (try_target(x, &err) == SB_OK)
            return;
        x->last = err;
        x->attempt++;
    }
    if (x->last.code == SB_E_RATE_LIMITED && x->lim.refused != SB_LIMITS_NONE)
        x->limited = true; /* our own limit said no: say which (x-ratelimit-*) */
    if (x->limited && x->lim.retry_after_ms > 0)
        x->retry_after = sb_slice_cstr(sb_arena_printf(
            x->req->arena, "%lld", (long long)(x->lim.retry_after_ms + 999) / 1000));
    fail(x, &x->last);
}

int64_t sb__proxy_retry_after_ms(const struct proxy *x)
{
    unsigned long long s = 0;
    return sb_slice_to_u64(x->retry_after, &s) && s < 86400 ? (int64_t)s * 1000 : 0;
}

/* Whether the request is past its deadline for new attempts. */
static bool past_deadline(const struct proxy *x)
{
    int64_t d = x->w->gw->retry.deadline_ms ? x->w->gw->retry.deadline_ms : DEFAULT_DEADLINE_MS;
    return uv_hrtime() - x->req->start_ns > (uint64_t)d * 1000000u;
}

/* Forgets the failed attempt's answer before the next one starts. */
static void forget_attempt(struct proxy *x, const struct sb_error *e)
{
    x->last = *e;
    x->fallbacks++;
    x->status = 0;
    x->retry_after = SB_SLICE_NULL;
    x->adjusted = NULL;
    x->usage.prompt_tokens = x->usage.completion_tokens = -1;
    sb_buf_reset(&x->body);
}

/* ---- retry rounds: when every target failed, wait and go over the plan again ---- */

struct proxy_wait {
    uv_timer_t timer;
    struct proxy *x; /* NULL once the request is gone */
};

static void wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void stop_wait(struct proxy *x)
{
    if (!x->wait)
        return;
    x->wait->x = NULL;
    uv_close((uv_handle_t *)&x->wait->timer, wait_closed);
    x->wait = NULL;
}

static void on_wait(uv_timer_t *t)
{
    struct proxy *x = ((struct proxy_wait *)t->data)->x;
    if (!x)
        return; /* cannot happen: a stopped wait is closed, and a closed timer never fires */
    stop_wait(x);
    if (x->done)
        return; /* the client left meanwhile: already accounted */
    if (x->planned && x->w->gw->router) {
        struct sb_plan_req q; /* breakers and holds changed while we waited */
        plan_request(x, &q);
        sb_router_plan(x->w->gw->router, x->reg, x->planned, &q, &x->plan);
    }
    x->attempt = 0;
    run_targets(x);
}

/* The wait before round r (0-based): backoff_ms * 2^r capped at max_wait_ms,
 * jittered to [b/2, b] so clients that failed together do not return together. */
static int64_t backoff_ms(const struct sb_retry_opts *o, int r)
{
    int64_t b = o->backoff_ms;
    for (int i = 0; i < r && b < o->max_wait_ms; i++)
        b *= 2;
    if (b > o->max_wait_ms)
        b = o->max_wait_ms;
    return b / 2 + (int64_t)(sb_experiment_random() % (uint64_t)(b / 2 + 1));
}

/* Starts the wait for another round over the plan, or false when none is
 * allowed: rounds used up, an upstream's Retry-After longer than we wait,
 * or the deadline would pass first (the client gets the last error, with
 * that Retry-After). */
static bool schedule_round(struct proxy *x)
{
    const struct sb_retry_opts *o = &x->w->gw->retry;
    if (x->round >= o->rounds)
        return false;
    int64_t wait = backoff_ms(o, x->round), ra = sb__proxy_retry_after_ms(x);
    if (ra > o->max_wait_ms)
        return false;
    if (ra > wait)
        wait = ra; /* never sooner than the upstream asked */
    int64_t d = o->deadline_ms ? o->deadline_ms : DEFAULT_DEADLINE_MS;
    if ((int64_t)((uv_hrtime() - x->req->start_ns) / 1000000u) + wait >= d)
        return false;
    struct proxy_wait *pw = sb_xcalloc(1, sizeof(*pw));
    uv_timer_init(x->w->loop, &pw->timer);
    pw->timer.data = pw;
    pw->x = x;
    x->wait = pw;
    x->round++;
    uv_timer_start(&pw->timer, on_wait, (uint64_t)wait, 0);
    return true;
}

/*
 * The current attempt failed before anything reached the client (status 0:
 * no answer at all). Connect errors, timeouts, 408, 429 and 5xx move on to
 * the next target; so does a context-length error, to a target with a larger
 * window. When no target is left, a retry round may start after a backoff
 * (routing.retries). Returns true when the request was taken over (another
 * attempt started or scheduled, or the client answered); false: the caller
 * answers with e.
 */
static bool retry(struct proxy *x, int status, const struct sb_error *e)
{
    if (sb__proxy_key_failed(x, status, e)) { /* the key's fault: another key, same target */
        if (x->attempt_ns && x->w->gw->router)
            sb_router_end(x->w->gw->router, x->call.model, true, -1, -1, 0, sb__wall_ms());
        x->attempt_ns = 0;
        forget_attempt(x, e);
        run_targets(x);
        return true;
    }
    bool ctx = strcmp(e->api_code, "context_length_exceeded") == 0;
    bool retryable = status == 0 || status == 408 || status == 429 || status >= 500 || ctx;
    const struct sb_model *cur = x->call.model;
    end_attempt(x, !retryable || ctx, status == 429 ? sb__proxy_retry_after_ms(x) : 0);
    if (!retryable || past_deadline(x))
        return false;
    size_t next = x->attempt + 1;
    while (ctx && next < x->plan.n && cur->context_length > 0 &&
           x->plan.t[next]->context_length > 0 &&
           x->plan.t[next]->context_length <= cur->context_length)
        next++; /* a window no larger fails the same way */
    bool round = next >= x->plan.n;
    if (round && (ctx || !schedule_round(x)))
        return false; /* a larger window does not appear by waiting */
    sb_log(SB_LOG_WARN, x->req->id,
           "msg=\"attempt failed; %s\" provider=%s model=%s status=%d error=%s",
           round ? "retrying after a backoff" : "trying the next target", cur->provider->id,
           cur->id, status, sb_err_name(e->code));
    forget_attempt(x, e);
    if (!round) {
        x->attempt = next;
        run_targets(x);
    }
    return true;
}

/* Whether every target of the plan sends the client's body upstream as it
 * came (OpenAI's format, only "model" and stream_options edited). */
static bool passthrough_plan(const struct proxy *x)
{
    for (size_t i = 0; i < x->plan.n; i++) {
        const char *t = x->plan.t[i]->provider->type;
        if (strcmp(t, "openai") != 0 && strcmp(t, "azure") != 0)
            return false;
    }
    return true;
}

/* A translating target reads every string of the body: parse it again, decoded. */
static sb_err decode_body(struct proxy *x, struct sb_error *err)
{
    struct sb_json_limits lim = {.max_depth = 64};
    struct sb_json *j;
    if (!x->lazy || passthrough_plan(x))
        return SB_OK;
    if (sb_json_parse(x->req->arena, x->call.body.p, x->call.body.len, &lim, &j, err) != SB_OK)
        return err->code; /* cannot happen: the lazy parse validated the same bytes */
    x->call.json = j;
    x->lazy = false;
    return SB_OK;
}

void sb__proxy_run(struct sb_http_req *req, struct sb_gw_worker *w, enum sb_op op,
                   const struct sb_front_door *fd)
{
    struct proxy *x = proxy_new(req, w);
    struct sb_error err = {0};
    x->call.op = op;
    x->front = fd;
    if (authenticate(x, &err) != SB_OK || parse_body(x, &err) != SB_OK ||
        resolve_targets(x, &err) != SB_OK || decode_body(x, &err) != SB_OK) {
        fail(x, &err);
        return;
    }
    x->last = err;
    if (!sb__proxy_cache_serve(x))
        run_targets(x);
}

void sb_gateway_chat(struct sb_http_req *req, struct sb_gw_worker *w)
{
    sb__proxy_run(req, w, SB_OP_CHAT, NULL);
}

void sb_gateway_embeddings(struct sb_http_req *req, struct sb_gw_worker *w)
{
    sb__proxy_run(req, w, SB_OP_EMBEDDINGS, NULL);
}

void sb_gateway_models(struct sb_http_req *req, struct sb_gw_worker *w)
{
    struct sb_registry *r = sb_registry_acquire();
    struct sb_client who;
    struct sb_error err = {0};
    struct sb_buf b;
    struct sb_jw j;
    if (sb_gateway_authenticate(w->gw, r, req, &who, &err) != SB_OK) {
        sb_http_respond_error(req, sb_err_status(&err), sb_err_type(err.code), "invalid_api_key",
                              err.msg);
        if (r)
            sb_registry_release(r);
        return;
    }
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "object");
    sb_jw_cstr(&j, "list");
    sb_jw_key(&j, "data");
    sb_jw_arr_begin(&j);
    size_t n = r ? sb_registry_model_count(r) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct sb_model *m = sb_registry_model_at(r, i);
        if (!m->enabled || !m->provider->enabled || !sb_registry_model_visible(m, who.user) ||
            (who.key && !sb_registry_key_allows(who.key, sb_slice_cstr(m->id))))
            continue;
        sb_jw_obj_begin(&j);
        sb_jw_key(&j, "id");
        sb_jw_cstr(&j, m->id);
        sb_jw_key(&j, "object");
        sb_jw_cstr(&j, "model");
        sb_jw_key(&j, "created");
        sb_jw_int(&j, 0);
        sb_jw_key(&j, "owned_by");
        sb_jw_cstr(&j, m->provider->id);
        sb_jw_obj_end(&j);
    }
    sb_jw_arr_end(&j);
    sb_jw_obj_end(&j);
    if (r)
        sb_registry_release(r);
    static const struct sb_http_header h[] = {
        {SB_SLICE("content-type"), SB_SLICE("application/json")}};
    sb_http_respond(req, 200, h, 1, sb_arena_slice(req->arena, sb_buf_slice(&b)));
    sb_buf_free(&b);
}
