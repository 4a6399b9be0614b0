/* SPDX-License-Identifier: MIT */
/*
 * front.c - the front door: method + path dispatch, the operational
 * endpoints, and the per-loop worker context.
 *
 * /api/... goes whole to the control plane, which authenticates and answers
 * unknown paths in its own error shape. /ui/... is the web console's files
 * (ui.c), public like any login page. /v1 needs a client credential
 * (gateway/client_auth.c) before anything is said about what exists.
 */
#include "front/front.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "crypto/keys.h"
#include "front/ui.h"
#include "gateway/metrics.h"
#include "registry/registry.h"
#include "router/cache.h"
#include "router/router.h"
#include "store/usage.h"
#include "upstream/client.h"

struct worker {
    struct sb_gw_worker gw; /* must be first: the data plane's view */
    struct sb_front *front;
};

typedef void (*route_fn)(struct sb_http_req *req, struct worker *w);

struct route {
    const char *method;
    const char *path;
    route_fn fn;
};

static const struct sb_http_header json_h[] = {
    {SB_SLICE("content-type"), SB_SLICE("application/json")}};

/* ======================================================================
 * Operational endpoints
 * ==================================================================== */

static void health(struct sb_http_req *req, struct worker *w)
{
    sb_http_respond(req, 200, json_h, 1, SB_SLICE("{\"status\":\"ok\"}"));
}

/* Never touches the store from the loop: the control plane's poller checks
 * it every second and we read its verdict. */
static void ready(struct sb_http_req *req, struct worker *w)
{
    struct sb_registry *r = sb_registry_acquire();
    bool store_ok = !w->front->api || sb_api_store_ok(w->front->api);
    if (r)
        sb_registry_release(r);
    if (r && store_ok)
        sb_http_respond(req, 200, json_h, 1, SB_SLICE("{\"status\":\"ready\"}"));
    else
        sb_http_respond_error(req, 503, "service_unavailable", "not_ready",
                              r ? "store unreachable" : "registry not loaded");
}

static bool metrics_allowed(struct sb_http_req *req, const struct sb_secret *token)
{
    struct sb_slice a = sb_http_header(req, "authorization");
    if (!token)
        return true;
    return a.len > 7 && sb_slice_caseeq((struct sb_slice){a.p, 7}, SB_SLICE("Bearer ")) &&
           sb_keys_equal((struct sb_slice){a.p + 7, a.len - 7}, sb_secret_reveal(token));
}

static void metrics(struct sb_http_req *req, struct worker *w)
{
    struct sb_front *f = w->front;
    if (!metrics_allowed(req, f->metrics_token)) {
        sb_http_respond_error(req, 401, "authentication_error", "invalid_api_key",
                              "/metrics needs 'Authorization: Bearer <metrics_token>'");
        return;
    }
    struct sb_buf b;
    sb_buf_init(&b, 0);
    struct sb_server *srv = atomic_load(&f->server);
    sb_metrics_render(&b, srv ? sb_server_connections(srv) : 0,
                      f->usage ? sb_usage_written(f->usage) : 0,
                      f->usage ? sb_usage_failed(f->usage) : 0);
    struct sb_usage_stats us = {0};
    if (f->usage)
        sb_usage_stats(f->usage, &us);
    sb_metrics_render_usage(&b, &us);
    struct sb_cache_stats cs = {0};
    if (f->gw->cache)
        f->gw->cache->ops->stats(f->gw->cache, &cs);
    const unsigned long long cache[7] = {cs.hits,    cs.misses,  cs.stores, cs.evictions,
                                         cs.expired, cs.entries, cs.bytes};
    sb_metrics_render_limits_cache(&b, cache);
    if (f->gw->router) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sb_router_render_metrics(f->gw->router, &b,
                                 (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    static const struct sb_http_header h[] = {
        {SB_SLICE("content-type"), SB_SLICE("text/plain; version=0.0.4")}};
    sb_http_respond(req, 200, h, 1, sb_arena_slice(req->arena, sb_buf_slice(&b)));
    sb_buf_free(&b);
}

static void chat(struct sb_http_req *req, struct worker *w)
{
    sb_gateway_chat(req, &w->gw);
}

static void embeddings(struct sb_http_req *req, struct worker *w)
{
    sb_gateway_embeddings(req, &w->gw);
}

static void models(struct sb_http_req *req, struct worker *w)
{
    sb_gateway_models(req, &w->gw);
}

static void messages(struct sb_http_req *req, struct worker *w)
{
    sb_gateway_messages(req, &w->gw);
}

static void count_tokens(struct sb_http_req *req, struct worker *w)
{
    sb_gateway_count_tokens(req, &w->gw);
}

static const struct route table[] = {
    {"GET", "/health", health},
    {"GET", "/ready", ready},
    {"GET", "/metrics", metrics},
    {"POST", "/v1/chat/completions", chat},
    {"POST", "/v1/embeddings", embeddings},
    {"GET", "/v1/models", models},
    {"POST", "/v1/messages", messages},
    {"POST", "/v1/messages/count_tokens", count_tokens},
};

/* ======================================================================
 * Dispatch
 * ==================================================================== */

static void api_unavailable(struct sb_http_req *req)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_api_error_body(&b, "unavailable", "the control plane is not running", req->id);
    sb_http_respond(req, 503, json_h, 1, sb_arena_slice(req->arena, sb_buf_slice(&b)));
    sb_buf_free(&b);
}

/* Answers 401/403 and returns false when req carries no valid /v1 credential. */
static bool client_ok(struct worker *w, struct sb_http_req *req)
{
    struct sb_registry *reg = sb_registry_acquire();
    struct sb_client who;
    struct sb_error err = {0};
    sb_err rc = sb_gateway_authenticate(w->gw.gw, reg, req, &who, &err);
    if (reg)
        sb_registry_release(reg);
    if (rc == SB_OK)
        return true;
    sb_http_respond_error(req, sb_err_status(&err), sb_err_type(rc),
                          rc == SB_E_UNAUTHORIZED ? "invalid_api_key" : "forbidden", err.msg);
    return false;
}

static bool is_api(struct sb_slice path)
{
    return sb_slice_starts_with(path, SB_SLICE("/api/")) || sb_slice_eq_cstr(path, "/api");
}

/* The batch runner's private listener (gateway.h batch_only) serves the two
 * endpoints a batch line may name and nothing else. */
static bool batch_refused(struct sb_http_req *req)
{
    if (sb_slice_eq_cstr(req->method, "POST") &&
        (sb_slice_eq_cstr(req->path, "/v1/chat/completions") ||
         sb_slice_eq_cstr(req->path, "/v1/embeddings")))
        return false;
    sb_http_respond_error(req, 404, "invalid_request_error", "unknown_url",
                          "this listener serves batch jobs only");
    return true;
}

void sb_front_handle(struct sb_http_req *req, void *worker_ctx)
{
    struct worker *w = worker_ctx;
    if (w->front->gw->batch_only && batch_refused(req))
        return;
    if (is_api(req->path)) {
        if (w->front->api)
            sb_api_handle(w->front->api, req, w->gw.loop);
        else
            api_unavailable(req);
        return;
    }
    if (sb_ui_owns(req->path)) { /* the console's files, public: its data comes from /api */
        sb_ui_serve(req);
        return;
    }
    const struct route *hit = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (!sb_slice_eq_cstr(req->path, table[i].path))
            continue;
        path_known = true;
        if (sb_slice_eq_cstr(req->method, table[i].method) ||
            (sb_slice_eq_cstr(req->method, "HEAD") && strcmp(table[i].method, "GET") == 0))
            hit = &table[i];
    }
    /* The /v1 handlers authenticate against the snapshot they hold; an
     * unknown /v1 path is answered only to a caller with a credential. */
    if (!hit && sb_slice_starts_with(req->path, SB_SLICE("/v1/")) && !client_ok(w, req))
        return;
    if (hit)
        hit->fn(req, w);
    else if (path_known)
        sb_http_respond_error(req, 405, "invalid_request_error", "method_not_allowed",
                              "method not allowed for this path");
    else
        sb_http_respond_error(req, 404, "invalid_request_error", "unknown_url", "unknown path");
}

void sb_front_error_body(struct sb_buf *out, struct sb_slice path, const char *type,
                         const char *code, const char *msg)
{
    if (is_api(path))
        sb_api_error_body(out, code, msg, NULL);
    else
        sb_http_error_body(out, type, code, msg);
}

/* ======================================================================
 * Worker context: one per loop
 * ==================================================================== */

void *sb_front_worker_start(uv_loop_t *loop, int index, void *ud)
{
    struct worker *w = sb_xcalloc(1, sizeof(*w));
    struct sb_upstream_opts o = {
        /* Client connections already bound what runs; the FIFO behind this
         * cap only matters if a loop ever holds more streams than this. */
        .max_transfers = 65536,
        .http2 = true,
    };
    w->front = ud;
    w->gw.gw = w->front->gw;
    w->gw.loop = loop;
    w->gw.up = sb_upstream_create(loop, &o);
    w->gw.book = sb_registry_book_create();
    return w;
}

/* The last of the worker: its connections, and with them every request and
 * lease, are gone (worker_stop runs after the last one). */
static void upstream_closed(void *ud)
{
    struct worker *w = ud;
    sb_registry_book_free(w->gw.book);
    free(w);
}

void sb_front_worker_stop(void *ctx)
{
    struct worker *w = ctx;
    sb_upstream_close(w->gw.up, upstream_closed, w);
}
