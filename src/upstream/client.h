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
 *   curl_global_init() must have run before the first sb_upstream_create().
 * - Inside on_head/on_data/on_done a caller may cancel or resume any request,
 *   start new ones, and even close the whole sb_upstream; the client defers
 *   what curl forbids inside its callbacks until curl has returned.
 * - on_done runs exactly once unless the request was cancelled (or the
 *   sb_upstream closed); after on_done, sb_ureq_cancel() or
 *   sb_upstream_close() the sb_ureq is gone and must not be touched.
 * - If sb_ureq_start() fails it returns NULL and no callback ever runs.
 */
#ifndef SB_UPSTREAM_CLIENT_H
#define SB_UPSTREAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/err.h"
#include "core/slice.h"
#include "core/spool.h"

struct sb_upstream;
struct sb_ureq;

struct sb_upstream_opts {
    long max_connections;      /* total open upstream connections, 0 = no cap */
    long max_host_connections; /* per host, 0 = no cap (curl queues beyond it) */
    long max_transfers;        /* running at once; the rest wait in a FIFO; 0 = 1024 */
    bool http2;                /* h2 over TLS when the server offers it (ALPN), else HTTP/1.1 */
    long tcp_keepalive_s;      /* idle seconds before TCP keep-alive probes; 0 = 60, < 0 = off */
    bool verbose;              /* curl's own trace on stderr (debugging only) */
};

/* The final response head (1xx blocks are skipped); h is valid during the call only. */
typedef void (*sb_ureq_head_fn)(void *ud, int status, const struct sb_kv *h, size_t n);
/* A body chunk as it arrives; p is valid during the call only. Return 0 when
 * consumed, or SB_UREQ_PAUSE to consume nothing now: the client keeps the
 * bytes, stops reading, and hands the same bytes again after sb_ureq_resume(). */
typedef int (*sb_ureq_data_fn)(void *ud, const char *p, size_t n);
/* The end: SB_OK, SB_E_UPSTREAM (refused, reset, DNS, TLS, protocol) or
 * SB_E_UPSTREAM_TIMEOUT (connect, total or idle); err->msg says which. */
typedef void (*sb_ureq_done_fn)(void *ud, sb_err result, const struct sb_error *err);

#define SB_UREQ_PAUSE 1

/* Most pieces a request body may come in (sb_ureq_spec.parts): a body with
 * eight edits is at most seventeen. */
#define SB_UREQ_MAX_PARTS 17

struct sb_ureq_cbs {
    sb_ureq_head_fn on_head; /* may be NULL */
    sb_ureq_data_fn on_data; /* required */
    sb_ureq_done_fn on_done; /* required */
};

/* Which client sends an http:// request (https:// always goes through curl).
 * SWITCHBOARD_UPSTREAM=curl or =native in the environment overrides it for
 * every request (tests run the suite on both paths). */
enum sb_ureq_transport {
    SB_UREQ_AUTO = 0, /* the native HTTP/1.1 pool for http://, curl otherwise */
    SB_UREQ_NATIVE,   /* the same as AUTO: https:// is curl's anyway */
    SB_UREQ_CURL,     /* always curl */
};

struct sb_ureq_spec {
    const char *method;          /* "GET", "POST", any token; copied */
    const char *url;             /* http:// or https:// only; copied */
    const struct sb_kv *headers; /* copied */
    size_t nheaders;
    const char *body; /* borrowed until on_done or cancel; sent when non-NULL or POST */
    size_t body_len;
    /* Or the body as pieces sent in this order, borrowed the same way (body
     * NULL): the native path writes them with the head in one writev, curl
     * gets them joined. At most SB_UREQ_MAX_PARTS. */
    const struct sb_slice *parts;
    size_t nparts;
    long connect_timeout_ms; /* 0 = 10 s */
    long total_timeout_ms;   /* whole request, time queued included; 0 = none */
    long idle_timeout_ms;    /* longest silence after the first response byte
                                (time paused by the consumer excluded); 0 = none */
    /* The provider's choice of client for http://; 0 = auto. */
    enum sb_ureq_transport transport;
    /* Appended (issue 9 item 6): the file of a long request body, or NULL.
     * A piece (or body) lying inside its mapping (sb_spool_holds) is sent from
     * the file: the native path with sendfile(2), curl through a read
     * callback; the mapping's pages are never touched. Borrowed like body. */
    const struct sb_spool *spool;
};

/* Returns owned (close with sb_upstream_close). o is borrowed. Plain-HTTP
 * requests may run on a native HTTP/1.1 pool instead of curl (DESIGN §1.6);
 * the contract below is the same for both. */
struct sb_upstream *sb_upstream_create(uv_loop_t *loop, const struct sb_upstream_opts *o);
/* Cancels every request (no callbacks), closes every handle, then calls
 * done(ud) (may be NULL) from a close callback and frees u. */
void sb_upstream_close(struct sb_upstream *u, void (*done)(void *ud), void *ud);

/* Starts (or queues) a request; spec and cbs are borrowed (see spec for the
 * body). Returns the request, valid until on_done or cancel, or NULL with err
 * set on bad input or while closing (then no callback ever runs). */
struct sb_ureq *sb_ureq_start(struct sb_upstream *u, const struct sb_ureq_spec *spec,
                              const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err);
/* After on_data returned SB_UREQ_PAUSE: deliver again (the held bytes first).
 * A no-op when the request is not paused. */
void sb_ureq_resume(struct sb_ureq *r);
/* Aborts at once: an unfinished HTTP/1.1 connection is closed (an HTTP/2
 * stream reset), so the upstream stops generating; no callback for r runs
 * after this returns. Frees r. */
void sb_ureq_cancel(struct sb_ureq *r);

/* The value of the first header called name (ASCII case-insensitive) in
 * h[0..n), or a NULL slice; borrows h (for use inside on_head). */
struct sb_slice sb_ureq_header(const struct sb_kv *h, size_t n, const char *name);

/* Transfers running and waiting (for tests and metrics). */
size_t sb_upstream_active(const struct sb_upstream *u);
size_t sb_upstream_queued(const struct sb_upstream *u);

#endif
