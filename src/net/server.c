/* SPDX-License-Identifier: MIT */
/*
 * server.c - worker threads, SO_REUSEPORT listeners and graceful shutdown.
 *
 * The listeners come from a claim on the address (claim.c: the lock, the
 * probe, one SO_REUSEPORT socket per worker, or the sockets a previous
 * process handed over), made on the calling thread, so a conflict is
 * reported before anything runs; each worker then owns its loop exclusively.
 * Shutdown first stops the claim's control thread (no handover once
 * shutdown begins), then sends a uv_async message to each worker: it closes
 * its listener (the last one to do so frees the address's lock), lets
 * in-flight requests finish (bounded by shutdown_timeout_ms), then asks its
 * context to close its own handles; the loop ends when nothing is left.
 */
#include "net/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

/* ---- worker loop ---- */

static void on_connection(uv_stream_t *l, int status)
{
    struct sb__worker *w = l->data;
    if (status < 0 || w->draining)
        return;
    sb__conn_accept(w);
}

static void maybe_finish(struct sb__worker *w)
{
    if (!w->draining || w->nconns > 0 || w->stopped)
        return;
    w->stopped = true;
    uv_timer_stop(&w->deadline);
    uv_close((uv_handle_t *)&w->deadline, NULL);
    uv_close((uv_handle_t *)&w->spool_idle, NULL);
    uv_close((uv_handle_t *)&w->flush, NULL);
    uv_close((uv_handle_t *)&w->flush_early, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    if (w->srv->o.worker_stop)
        w->srv->o.worker_stop(w->ctx);
}

void sb__worker_conn_gone(struct sb__worker *w)
{
    w->nconns--;
    atomic_fetch_sub(&w->srv->conns, 1);
    maybe_finish(w);
}

/* Body pages released since the last sweep are dropped together, at most
 * every SPOOL_SWEEP_MS (core/spool.h, sb_spool_pool_sweep): one page-table
 * flush for all of them. What waits meanwhile is a few requests' pages. */
#define SPOOL_SWEEP_MS 2
static void sweep_spools(struct sb__worker *w)
{
    if (w->spools.dirty && uv_now(&w->loop) - w->spools_swept >= SPOOL_SWEEP_MS) {
        sb_spool_pool_sweep(&w->spools);
        w->spools_swept = uv_now(&w->loop);
    }
}

/* Corked output is written after the poll phase (what I/O callbacks wrote)
 * and before the loop blocks in the next poll (what timer callbacks wrote,
 * e.g. a transfer curl finished from its timer): never left waiting. The
 * check phase also sweeps the body files' pages. */
static void on_flush(uv_check_t *h)
{
    sb__conn_flush_corked(h->data);
    sweep_spools(h->data);
}

static void on_flush_early(uv_prepare_t *h)
{
    sb__conn_flush_corked(h->data);
}

/* Pooled body files are closed once the worker took none for a whole
 * period: a gateway without long prompts holds no file. */
static void on_spool_idle(uv_timer_t *t)
{
    struct sb__worker *w = t->data;
    sb_spool_pool_sweep(&w->spools);
    if (w->spools.taken == 0) {
        sb_spool_pool_free(&w->spools);
        uv_timer_stop(t);
    }
    w->spools.taken = 0;
}

void sb__worker_spool_given(struct sb__worker *w)
{
    if (w->spools.n > 0 && !uv_is_active((uv_handle_t *)&w->spool_idle) &&
        !uv_is_closing((uv_handle_t *)&w->spool_idle))
        uv_timer_start(&w->spool_idle, on_spool_idle, w->srv->o.body_files_idle_ms,
                       w->srv->o.body_files_idle_ms);
}

static void on_deadline(uv_timer_t *t)
{
    struct sb__worker *w = t->data;
    sb_warn("msg=\"shutdown bound reached, aborting\" worker=%d connections=%u", w->index,
            w->nconns);
    sb__conn_abort_all(w);
}

static void on_wake(uv_async_t *a)
{
    struct sb__worker *w = a->data;
    if (w->draining)
        return;
    w->draining = true;
    uv_close((uv_handle_t *)&w->listener, NULL); /* closes the fd now; the callback comes later */
    if (atomic_fetch_sub(&w->srv->listening, 1) == 1)
        sb__claim_release(w->srv->claim); /* no listener left: a new instance may claim */
    uv_timer_start(&w->deadline, on_deadline, w->srv->o.shutdown_timeout_ms, 0);
    sb__conn_drain_all(w);
    maybe_finish(w);
}

static void *worker_main(void *arg)
{
    struct sb__worker *w = arg;
    if (w->srv->o.worker_start)
        w->ctx = w->srv->o.worker_start(&w->loop, w->index, w->srv->o.ud);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sb_spool_pool_free(&w->spools); /* every connection is gone */
    return NULL;
}

static sb_err worker_init(struct sb_server *s, struct sb__worker *w, int fd, struct sb_error *err)
{
    w->srv = s;
    uv_loop_init(&w->loop);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, fd) != 0) {
        close(fd);
        return sb_fail(err, SB_E_IO, "uv_tcp_open failed");
    }
    int rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
    if (rc != 0)
        return sb_fail(err, SB_E_IO, "listen: %s", uv_strerror(rc));
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->deadline);
    w->deadline.data = w;
    uv_timer_init(&w->loop, &w->spool_idle);
    w->spool_idle.data = w;
    uv_unref((uv_handle_t *)&w->spool_idle);
    uv_check_init(&w->loop, &w->flush);
    w->flush.data = w;
    uv_check_start(&w->flush, on_flush);
    uv_unref((uv_handle_t *)&w->flush);
    uv_prepare_init(&w->loop, &w->flush_early);
    w->flush_early.data = w;
    uv_prepare_start(&w->flush_early, on_flush_early);
    uv_unref((uv_handle_t *)&w->flush_early);
    if (RAND_bytes((unsigned char *)&w->rid_seed, sizeof(w->rid_seed)) != 1)
        w->rid_seed = uv_hrtime() ^ (uint64_t)(uintptr_t)w;
    w->rid_seed |= 1;
    return SB_OK;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The default of body_heap_bytes (conn.c's keep_in_heap says what it buys)
 * is 8 x body_buffer_bytes with this floor. Why a floor, not only a
 * multiple: the 64 KiB default threshold times 8 would send a lone 1 MB
 * prompt to a file. */
#define BODY_HEAP_FLOOR (1u << 20)

/* The options left 0 for "the default" get it here, once, in the server's
 * copy, so that the workers read one value. */
static void resolve_defaults(struct sb_server_opts *o)
{
    if (!o->body_heap_bytes)
        o->body_heap_bytes =
            o->body_buffer_bytes * 8 > BODY_HEAP_FLOOR ? o->body_buffer_bytes * 8 : BODY_HEAP_FLOOR;
    if (!o->body_files_idle_ms)
        o->body_files_idle_ms = 2000;
}

/* ---- public API ---- */

sb_err sb_server_start(const struct sb_server_opts *o, struct sb_server **out, struct sb_error *err)
{
    struct sb_listen_claim *c = o->claim;
    if (!c && sb_listen_claim(o->host, o->port, o->workers, false, &c, err) != SB_OK)
        return err->code;
    struct sb_server *s = sb_xcalloc(1, sizeof(*s));
    s->o = *o;
    s->o.claim = NULL;
    resolve_defaults(&s->o);
    s->claim = c;
    s->ctl_wake[0] = s->ctl_wake[1] = -1;
    s->nworkers = sb_listen_claim_workers(c);
    s->workers = sb_xcalloc((size_t)s->nworkers, sizeof(*s->workers));
    s->port = sb_listen_claim_port(c);
    for (int i = 0; i < s->nworkers; i++) {
        struct sb__worker *w = &s->workers[i];
        w->index = i;
        c->given = i + 1; /* worker_init hands it to the loop, or closes it */
        if (worker_init(s, w, c->fds[i], err) != SB_OK)
            goto fail;
    }
    atomic_store(&s->listening, s->nworkers);
    for (int i = 0; i < s->nworkers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    s->started = true;
    sb__claim_ready(c); /* after a takeover: the old process may stop accepting now */
    sb__ctl_start(s);
    *out = s;
    return SB_OK;
fail:
    /* Loops that never ran: close what they opened and run them to completion. */
    for (int i = 0; i < s->nworkers; i++) {
        struct sb__worker *w = &s->workers[i];
        if (!w->srv)
            continue;
        uv_walk(&w->loop, close_walk, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    sb_listen_claim_free(c);
    free(s->workers);
    free(s);
    return err->code;
}

int sb_server_port(const struct sb_server *s)
{
    return s->port;
}

unsigned sb_server_connections(const struct sb_server *s)
{
    return atomic_load(&((struct sb_server *)s)->conns);
}

void sb_server_stop(struct sb_server *s)
{
    if (!s || !s->started)
        return;
    sb__ctl_stop(s);
    for (int i = 0; i < s->nworkers; i++)
        uv_async_send(&s->workers[i].wake);
    for (int i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i].thread, NULL);
        uv_loop_close(&s->workers[i].loop);
    }
    s->started = false;
}

void sb_server_free(struct sb_server *s)
{
    if (!s)
        return;
    sb_server_stop(s);
    sb_listen_claim_free(s->claim);
    free(s->workers);
    free(s);
}
