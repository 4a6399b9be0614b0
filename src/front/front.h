/* SPDX-License-Identifier: MIT */
/*
 * front.h - the HTTP front door: one table maps method + path to a handler.
 *
 * This is the handler the server calls for every request. /health, /ready
 * and /metrics are public; /v1 and /api need a credential. The control
 * plane (/api) grows here, off the data plane's hot path.
 */
#ifndef SB_FRONT_FRONT_H
#define SB_FRONT_FRONT_H

#include "net/http.h"
#include "gateway/gateway.h"

struct sb_server;
struct sb_usage_writer;

/* What the operational endpoints read; set once before the server starts. */
struct sb_ops_state {
    struct sb_server *server;      /* for the connection gauge; may be NULL */
    struct sb_usage_writer *usage; /* for usage counters; may be NULL */
    bool (*store_ping)(void *ud);  /* /ready: is the store reachable? NULL = yes */
    void *store_ud;
};

void sb_front_set_ops(const struct sb_ops_state *s);
/* The server's request handler; worker_ctx is a struct sb_gw_worker. */
void sb_front_handle(struct sb_http_req *req, void *worker_ctx);

#endif
