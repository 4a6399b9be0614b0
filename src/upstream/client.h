/* SPDX-License-Identifier: MIT */
/*
 * client.h - the upstream HTTP client: libcurl's multi-socket API driven by
 * a libuv loop, one sb_upstream per worker loop.
 *
 * curl keeps the keep-alive connection pool (and HTTP/2 sessions) in the
 * multi handle, so every request of a worker shares it. We cap concurrent
 * transfers and queue the rest in our own FIFO: handing thousands of easy
 * handles to one multi at once makes curl's bookkeeping slow (DESIGN §8).
 *
 * Rules for callers:
 * - Everything runs on the loop's thread; nothing here is thread-safe.
 * - Callbacks may call sb_ureq_cancel() (on any request) or start new ones.
 * - on_done runs exactly once unless the request was cancelled; after
 *   on_done or sb_ureq_cancel() the sb_ureq is gone.
 * - If sb_ureq_start() fails it returns NULL and no callback ever runs.
 */
#ifndef SB_UPSTREAM_CLIENT_H
#define SB_UPSTREAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/err.h"
#include "core/slice.h"

struct sb_upstream;
struct sb_ureq;

struct sb_upstream_opts {
    long max_connections;      /* total open upstream connections, 0 = no cap */
    long max_host_connections; /* per host, 0 = no cap */
    long max_transfers;        /* running at once; the rest wait in a FIFO; 0 = 1024 */
    bool http2;                /* use h2 over TLS when the server offers it */
};

/* The upstream answered with headers; h is valid during the call only. */
typedef void (*sb_ureq_head_fn)(void *ud, int status, const struct sb_kv *h, size_t n);
/* A body chunk as it arrives; return 0, or SB_UREQ_PAUSE to get the same
 * bytes again after sb_ureq_resume(). */
typedef int (*sb_ureq_data_fn)(void *ud, const char *p, size_t n);
/* The end: SB_OK, SB_E_UPSTREAM (refused, reset, DNS, TLS, protocol) or
 * SB_E_UPSTREAM_TIMEOUT (connect, total or idle); err describes it. */
typedef void (*sb_ureq_done_fn)(void *ud, sb_err result, const struct sb_error *err);

#define SB_UREQ_PAUSE 1

struct sb_ureq_cbs {
    sb_ureq_head_fn on_head;
    sb_ureq_data_fn on_data;
    sb_ureq_done_fn on_done;
};

struct sb_ureq_spec {
    const char *method;          /* "POST", "GET" */
    const char *url;             /* copied */
    const struct sb_kv *headers; /* copied */
    size_t nheaders;
    const char *body; /* borrowed until on_done or cancel */
    size_t body_len;
    long connect_timeout_ms; /* 0 = 10 s */
    long total_timeout_ms;   /* 0 = none */
    long idle_timeout_ms;    /* longest silence while receiving, 0 = none */
};

/* Returns owned (close with sb_upstream_close). */
struct sb_upstream *sb_upstream_create(uv_loop_t *loop, const struct sb_upstream_opts *o);
/* Cancels everything (no callbacks), closes every handle, then calls
 * done(ud) from a close callback and frees u. */
void sb_upstream_close(struct sb_upstream *u, void (*done)(void *ud), void *ud);

/* Starts (or queues) a request. Returns NULL with err set on bad input. */
struct sb_ureq *sb_ureq_start(struct sb_upstream *u, const struct sb_ureq_spec *spec,
                              const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err);
/* Lets a paused transfer deliver again. */
void sb_ureq_resume(struct sb_ureq *r);
/* Aborts at once: the upstream connection is closed (an LLM stops
 * generating), no callback runs after this returns. */
void sb_ureq_cancel(struct sb_ureq *r);

/* Transfers running and waiting (for tests and metrics). */
size_t sb_upstream_active(const struct sb_upstream *u);
size_t sb_upstream_queued(const struct sb_upstream *u);

#endif
