/* SPDX-License-Identifier: MIT */
/*
 * front.c - the front door: method + path dispatch, the operational endpoints, and the
 * error answers for unknown paths and methods.
 */
#include "front/front.h"

#include <string.h>

#include "gateway/metrics.h"
#include "registry/registry.h"
#include "store/usage.h"

enum auth_need { PUBLIC, AUTHED };

typedef void (*route_fn)(struct sb_http_req *req, struct sb_gw_worker *w);

struct route {
    const char *method;
    const char *path;
    enum auth_need auth;
    route_fn fn;
};

static struct sb_ops_state ops;

void sb_front_set_ops(const struct sb_ops_state *s)
{
    ops = *s;
}

static const struct sb_http_header json_h[] = {
    {SB_SLICE("content-type"), SB_SLICE("application/json")}};

static void health(struct sb_http_req *req, struct sb_gw_worker *w)
{
    sb_http_respond(req, 200, json_h, 1, SB_SLICE("{\"status\":\"ok\"}"));
}

static void ready(struct sb_http_req *req, struct sb_gw_worker *w)
{
    struct sb_registry *r = sb_registry_acquire();
    bool store_ok = !ops.store_ping || ops.store_ping(ops.store_ud);
    if (r)
        sb_registry_release(r);
    if (r && store_ok)
        sb_http_respond(req, 200, json_h, 1, SB_SLICE("{\"status\":\"ready\"}"));
    else
        sb_http_respond_error(req, 503, "service_unavailable", "not_ready",
                              r ? "store unreachable" : "registry not loaded");
}

static void metrics(struct sb_http_req *req, struct sb_gw_worker *w)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_metrics_render(&b, ops.server ? sb_server_connections(ops.server) : 0,
                      ops.usage ? sb_usage_written(ops.usage) : 0,
                      ops.usage ? sb_usage_failed(ops.usage) : 0);
    static const struct sb_http_header h[] = {
        {SB_SLICE("content-type"), SB_SLICE("text/plain; version=0.0.4")}};
    sb_http_respond(req, 200, h, 1, sb_arena_slice(req->arena, sb_buf_slice(&b)));
    sb_buf_free(&b);
}

static const struct route table[] = {
    {"GET", "/health", PUBLIC, health},
    {"GET", "/ready", PUBLIC, ready},
    {"GET", "/metrics", PUBLIC, metrics},
    {"POST", "/v1/chat/completions", AUTHED, sb_gateway_chat},
    {"POST", "/v1/embeddings", AUTHED, sb_gateway_embeddings},
    {"GET", "/v1/models", AUTHED, sb_gateway_models},
};

static bool needs_auth(struct sb_slice path)
{
    return sb_slice_starts_with(path, SB_SLICE("/v1/")) ||
           sb_slice_starts_with(path, SB_SLICE("/api/"));
}

void sb_front_handle(struct sb_http_req *req, void *worker_ctx)
{
    struct sb_gw_worker *w = worker_ctx;
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
    /* Authenticate before saying anything about what exists under /v1 and /api. */
    if ((hit ? hit->auth == AUTHED : needs_auth(req->path)) && !sb_gateway_authorized(w->gw, req)) {
        sb_http_respond_error(req, 401, "authentication_error", "invalid_api_key",
                              "missing or invalid API key: send 'Authorization: Bearer <key>'");
        return;
    }
    if (hit) {
        hit->fn(req, w);
    } else if (path_known) {
        sb_http_respond_error(req, 405, "invalid_request_error", "method_not_allowed",
                              "method not allowed for this path");
    } else {
        sb_http_respond_error(req, 404, "invalid_request_error", "unknown_url", "unknown path");
    }
}
