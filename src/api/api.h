/* SPDX-License-Identifier: MIT */
/*
 * api.h - the control plane: the /api REST endpoints (DESIGN.md §4).
 *
 * Handlers never run on a data-plane loop: a worker hands each /api request
 * to libuv's thread pool (uv_queue_work) with a copy of everything the
 * handler reads, and answers on its own loop when the work is done. The
 * control plane has its own store connection, used under one mutex (admin
 * traffic is light; one writer keeps SQLite simple), so data-plane workers
 * never wait on the database. A change builds a new registry snapshot from
 * the store and publishes it before the answer leaves, so the next request
 * sees it; a poller notices other processes' changes through the store's
 * registry_version.
 */
#ifndef SB_API_API_H
#define SB_API_API_H

#include <stdbool.h>
#include <uv.h>

#include "core/err.h"
#include "crypto/keys.h"
#include "net/http.h"

struct sb_api;
struct sb_usage_writer;
struct sb_sessions;

struct sb_api_opts {
    const char *db_url;                /* the control plane opens its own connection */
    const struct sb_master_key *mk;    /* borrowed, outlives the api */
    const struct sb_admin_hash *admin; /* the admin token's hash; NULL = none */
    struct sb_usage_writer *writer;    /* audit rows; borrowed, may be NULL in tests */
    unsigned poll_ms;                  /* registry_version poll period; 0 = 1000 */
    struct sb_sessions *sessions;      /* live console sessions the data plane reads; borrowed */
};

/* Opens the store, loads and publishes the first snapshot, starts the
 * poller. Returns owned *out (free with sb_api_free). */
sb_err sb_api_create(const struct sb_api_opts *o, struct sb_api **out, struct sb_error *err);
/* Stops the poller and closes the store; accepts NULL. No request may be in flight. */
void sb_api_free(struct sb_api *a);

/* Answers one /api request (now or later on loop, which must be req's loop). */
void sb_api_handle(struct sb_api *a, struct sb_http_req *req, uv_loop_t *loop);

/* The poller's last look at the store succeeded recently (for /ready; never blocks). */
bool sb_api_store_ok(struct sb_api *a);

/* The /api error shape for an error the HTTP layer raised (sb_http_error_fn). */
void sb_api_error_body(struct sb_buf *out, const char *code, const char *msg,
                       const char *request_id);

#endif
