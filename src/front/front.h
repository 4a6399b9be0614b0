/* SPDX-License-Identifier: MIT */
/*
 * front.h - the HTTP front door: every request enters here.
 *
 * One table maps method + path to a handler: the operational endpoints
 * (/health, /ready, /metrics) are answered here, /v1 goes to the data plane
 * (gateway), /api to the control plane (api), which runs its handlers off
 * the loop. The server's worker hooks live here too, so each loop gets a
 * context holding its data-plane worker and the shared front.
 */
#ifndef SB_FRONT_FRONT_H
#define SB_FRONT_FRONT_H

#include "api/api.h"
#include "crypto/secret.h"
#include "gateway/gateway.h"
#include "net/http.h"

struct sb_server;
struct sb_usage_writer;

/* What every worker shares; set up before the server starts and read-only
 * after, except server, which is only known once the server runs. */
struct sb_front {
    struct sb_gateway *gw;                 /* the data plane's shared state */
    struct sb_api *api;                    /* the control plane; NULL: /api answers 503 */
    _Atomic(struct sb_server *) server;    /* for the connection gauge; may be NULL */
    struct sb_usage_writer *usage;         /* for usage counters; may be NULL */
    const struct sb_secret *metrics_token; /* /metrics needs 'Bearer <token>' when set */
};

/* Server hooks (struct sb_server_opts): ud/worker_ctx as the server passes them. */
void *sb_front_worker_start(uv_loop_t *loop, int index, void *front);
void sb_front_worker_stop(void *worker_ctx);
void sb_front_handle(struct sb_http_req *req, void *worker_ctx);
/* Errors the HTTP layer raises: the /api shape under /api/, else OpenAI's. */
void sb_front_error_body(struct sb_buf *out, struct sb_slice path, const char *type,
                         const char *code, const char *msg);

#endif
