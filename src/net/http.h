/* SPDX-License-Identifier: MIT */
/*
 * http.h - the HTTP/1.1 server: workers, connections, requests, responses.
 *
 * N worker threads each run one libuv loop with its own SO_REUSEPORT
 * listener, so the kernel spreads connections and no lock sits between
 * workers. One address has one gateway: a process claims it (lock, probe,
 * listeners; see claim.c) before anything else starts, and a second claim
 * fails with "address in use" unless it asks to take over. A connection carries one request at a
 * time: pipelined requests wait in the connection's input buffer and are parsed only after the
 * previous response is fully written, which answers them in order.
 *
 * Lifetime of a request (the rule handlers must follow): the server calls
 * the handler once the whole body has arrived. The handler answers with
 * sb_http_respond(), or with sb_http_stream_start() + sb_http_stream_write()
 * + sb_http_stream_end(), possibly later from loop callbacks. If the client
 * goes away first, the server calls the abort hook once; after it returns,
 * the request is gone and the handler must not touch it again. The request's
 * arena lives until the response has been written (or the abort hook ran).
 *
 * This layer knows nothing about LLMs: errors it produces itself (400, 408,
 * 413, 431, 503) use the OpenAI error shape (sb_http_error_body) unless the
 * server's error_body hook picks another one for the request's path.
 */
#ifndef SB_NET_HTTP_H
#define SB_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"
#include "core/spool.h"

struct sb_server;
struct sb_http_req;

struct sb_http_header {
    struct sb_slice name;  /* as sent */
    struct sb_slice value; /* leading/trailing whitespace removed */
};

typedef void (*sb_http_handler_fn)(struct sb_http_req *req, void *worker_ctx);
/* Called on the worker's thread, before it accepts; returns the worker's context. */
typedef void *(*sb_worker_start_fn)(uv_loop_t *loop, int index, void *ud);
/* Called on the worker's thread during shutdown, after the last connection
 * closed; must start closing every handle it created (the loop ends when none is left). */
typedef void (*sb_worker_stop_fn)(void *worker_ctx);
/* Writes the body of an error the server raises itself (400, 408, 413, 417, 431, 503) for a
 * request whose path starts with `path` (possibly a prefix, or empty: the request line may not
 * have arrived whole). Lets the layer above pick the error shape per path. */
typedef void (*sb_http_error_fn)(struct sb_buf *out, struct sb_slice path, const char *type,
                                 const char *code, const char *msg);
/* Called once, on the server's control thread, when a process that took the address over
 * (sb_listen_claim with takeover) serves it: the caller should now stop this server
 * (sb_server_stop drains in-flight requests). Must not call sb_server_stop itself. */
typedef void (*sb_handed_over_fn)(void *ud);

/* ---- one address, one gateway (claim.c) ---- */

struct sb_listen_claim;

/* Claims host:port for this process: takes the address's lock (an abstract unix socket,
 * released by the kernel when the process dies), checks that nothing else listens there,
 * and binds `workers` SO_REUSEPORT listeners. When another switchboard holds the address:
 * SB_E_CONFLICT "listen HOST:PORT: address in use (...)", unless takeover is true; then the
 * running process hands over its listening sockets and lock, and stops (drains) once the
 * server built on this claim runs. A takeover with nobody to take over from is a fresh start.
 * Port 0 picks a free port. Returns owned (give to sb_server_opts.claim or free with
 * sb_listen_claim_free). */
sb_err sb_listen_claim(const char *host, int port, int workers, bool takeover,
                       struct sb_listen_claim **out, struct sb_error *err);
/* The bound port. */
int sb_listen_claim_port(const struct sb_listen_claim *c);
/* Listeners held: `workers`, or more after a takeover from a process with more workers (its
 * sockets and their queued connections are all kept). The server runs one worker each. */
int sb_listen_claim_workers(const struct sb_listen_claim *c);
/* The pid taken over from, or 0 for a fresh start. */
int sb_listen_claim_previous(const struct sb_listen_claim *c);
/* Closes everything the claim holds (a pending takeover is abandoned: the old process goes
 * on serving). Accepts NULL. */
void sb_listen_claim_free(struct sb_listen_claim *c);

struct sb_server_opts {
    const char *host;             /* "127.0.0.1" */
    int port;                     /* 0 = pick one (see sb_server_port) */
    int workers;                  /* >= 1 */
    size_t max_header_bytes;      /* request line + headers; over it: 431 */
    size_t max_body_bytes;        /* over it: 413 */
    unsigned header_timeout_ms;   /* from first byte to end of headers (and body): 408 */
    unsigned idle_timeout_ms;     /* keep-alive connection with no request: closed */
    unsigned max_connections;     /* across all workers; over it: 503 and close */
    unsigned shutdown_timeout_ms; /* how long in-flight requests may finish */
    sb_http_handler_fn handler;
    sb_worker_start_fn worker_start; /* may be NULL */
    sb_worker_stop_fn worker_stop;   /* may be NULL */
    sb_http_error_fn error_body;     /* may be NULL: sb_http_error_body (the OpenAI shape) */
    void *ud;                        /* passed to worker_start */
    /* Appended for one address, one gateway (issue 7 part 7): */
    struct sb_listen_claim *claim; /* taken (even on failure); NULL: claim host:port here */
    sb_handed_over_fn handed_over; /* may be NULL: takeover requests are then refused */
    /* Appended for long prompts (issue 9 item 6): a body over body_buffer_bytes
     * (a Content-Length over it once the worker holds body_heap_bytes of
     * such bodies in the heap, or a chunked body once it grows past it) is
     * written as it arrives to an unlinked file in body_temp_dir instead of
     * the heap (core/spool.h). 0 or a NULL dir: every body stays in memory. */
    size_t body_buffer_bytes;
    const char *body_temp_dir; /* borrowed for the server's life */
    /* Bodies over body_buffer_bytes a worker keeps in its heap at once;
     * 0: 1 MiB, or 8 x body_buffer_bytes where that is more. */
    size_t body_heap_bytes;
    /* Files for such bodies are kept for the next one (core/spool.h) and
     * closed once a worker took none for this long; 0: 2000 ms. */
    unsigned body_files_idle_ms;
};

/* Binds every worker's listener (or takes them from o->claim) and starts the threads; runs
 * o->workers workers, or sb_listen_claim_workers(o->claim). Returns owned (free with
 * sb_server_free after sb_server_stop). */
sb_err sb_server_start(const struct sb_server_opts *o, struct sb_server **out,
                       struct sb_error *err);
/* The bound port (useful with port 0). */
int sb_server_port(const struct sb_server *s);
/* Graceful: stop answering takeovers, stop accepting (the address's lock is released once
 * every listener is closed), let in-flight requests finish within the bound, then join the
 * workers. Blocks. */
void sb_server_stop(struct sb_server *s);
void sb_server_free(struct sb_server *s);
/* Connections open now, across workers (for /metrics). */
unsigned sb_server_connections(const struct sb_server *s);

/* ---- the request, as the handler sees it ---- */

struct sb_http_req {
    struct sb_arena *arena;         /* request-scoped memory */
    struct sb_slice method;         /* "POST" */
    struct sb_slice path;           /* "/v1/chat/completions", no query */
    struct sb_slice query;          /* after '?', may be empty */
    struct sb_http_header *headers; /* arena */
    size_t nheaders;
    struct sb_slice body; /* whole body (dechunked), valid until the request ends; read-only,
                             NUL after it; when spool is set, a shared map of its file */
    const char *id;       /* request id: the client's x-request-id if sane, else generated */
    uint64_t start_ns;    /* uv_hrtime() when the first byte arrived */
    void *conn;           /* server-private */
    /* Appended (issue 9 item 6): the file holding a body over body_buffer_bytes,
     * or NULL (the body is in the heap). Owned by the server, closed when the
     * request ends. The handler may drop body's pages (sb_spool_release) once
     * it has read them, and send body ranges from the file (sb_spool_holds). */
    struct sb_spool *spool;
};

/* Header value by case-insensitive name, or an empty slice with p == NULL. */
struct sb_slice sb_http_header(const struct sb_http_req *req, const char *name);

/* The value of cookie name in a Cookie header value (RFC 6265 "a=b; c=d"), or a NULL slice. */
struct sb_slice sb_http_cookie(struct sb_slice header, const char *name);

/* Whole response with Content-Length. Copies headers; borrows body until the write completes (arena
 * memory is fine). */
void sb_http_respond(struct sb_http_req *req, int status, const struct sb_http_header *hdrs,
                     size_t n, struct sb_slice body);
/* An error response in the OpenAI shape. */
void sb_http_respond_error(struct sb_http_req *req, int status, const char *type, const char *code,
                           const char *msg);
/* Appends {"error":{"message","type","param":null,"code"}} to out. */
void sb_http_error_body(struct sb_buf *out, const char *type, const char *code, const char *msg);
/* The same with "param" (NULL or "" writes null). */
void sb_http_error_body_param(struct sb_buf *out, const char *type, const char *code,
                              const char *param, const char *msg);

/* Streaming: chunked transfer encoding. */
void sb_http_stream_start(struct sb_http_req *req, int status, const struct sb_http_header *hdrs,
                          size_t n);
/* Copies p[0..n). Returns bytes queued but not yet written to the socket,
 * so the caller can stop reading its source above a high-water mark. */
size_t sb_http_stream_write(struct sb_http_req *req, const char *p, size_t n);
/* The same, but what is corked and p[0..n) go to the socket now instead of at
 * the end of the loop turn: for a stream's first event, which should not wait
 * for the rest of an upstream read to be handled (time to first byte). */
size_t sb_http_stream_write_now(struct sb_http_req *req, const char *p, size_t n);
void sb_http_stream_end(struct sb_http_req *req);
/* The same with a known body length (length >= 0): Content-Length instead of
 * chunks, and the writes are the body's bytes as they are; length < 0 is
 * sb_http_stream_start. */
void sb_http_stream_start_len(struct sb_http_req *req, int status,
                              const struct sb_http_header *hdrs, size_t n, long long length);
/* Ends a started stream that cannot be completed (its source broke): what is
 * queued is written, then the connection closes without the last chunk, so
 * the client sees a cut body, never a complete-looking one. */
void sb_http_stream_abort(struct sb_http_req *req);

/* Called when queued output drops to zero after sb_http_stream_write reported a backlog. */
typedef void (*sb_http_drain_fn)(void *ud);
/* Called once if the client disconnects (or shutdown expires) before the response ended. */
typedef void (*sb_http_abort_fn)(void *ud);
void sb_http_on_drain(struct sb_http_req *req, sb_http_drain_fn fn, void *ud);
void sb_http_on_abort(struct sb_http_req *req, sb_http_abort_fn fn, void *ud);

/* The reason phrase for a status code. */
const char *sb_http_reason(int status);

/* Appended for the control plane (login attempt limit per client, audit):
 * the peer address of req's connection as text ("127.0.0.1", "::1") into
 * out, "" when unknown. Call on req's loop. */
void sb_http_peer(const struct sb_http_req *req, char out[64]);

#endif
