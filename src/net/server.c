/* SPDX-License-Identifier: MIT */
/*
 * server.c - worker threads, SO_REUSEPORT listeners and graceful shutdown.
 *
 * Every listener socket is created and bound on the calling thread by
 * sb_server_start(), so a port conflict is reported before anything runs;
 * each worker then owns its loop exclusively. Shutdown is a uv_async
 * message to each worker: it closes its listener, lets in-flight requests
 * finish (bounded by shutdown_timeout_ms), then asks its context to close
 * its own handles; the loop ends when nothing is left.
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

/* ---- listeners ---- */

static sb_err resolve(const char *host, int port, struct sockaddr_storage *ss, struct sb_error *err)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return SB_OK;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return SB_OK;
    return sb_fail(err, SB_E_CONFIG, "listen: '%s' is not an IP address", host);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Returns a bound, listening socket or -1 with err set. */
static int open_listener(const char *host, int port, struct sb_error *err)
{
    struct sockaddr_storage ss;
    int one = 1;
    int fd = -1;
    if (resolve(host, port, &ss, err) != SB_OK)
        return -1;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:
    sb_fail(err, SB_E_IO, "listen on %s:%d: %s", host, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

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

/* Corked output is written after the poll phase (what I/O callbacks wrote)
 * and before the loop blocks in the next poll (what timer callbacks wrote,
 * e.g. a transfer curl finished from its timer): never left waiting. */
static void on_flush(uv_check_t *h)
{
    sb__conn_flush_corked(h->data);
}

static void on_flush_early(uv_prepare_t *h)
{
    sb__conn_flush_corked(h->data);
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
    uv_close((uv_handle_t *)&w->listener, NULL);
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
    return NULL;
}

static sb_err worker_init(struct sb_server *s, struct sb__worker *w, int fd, struct sb_error *err)
{
    w->srv = s;
    uv_loop_init(&w->loop);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, fd) != 0)
        return sb_fail(err, SB_E_IO, "uv_tcp_open failed");
    int rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
    if (rc != 0)
        return sb_fail(err, SB_E_IO, "listen: %s", uv_strerror(rc));
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->deadline);
    w->deadline.data = w;
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

/* ---- public API ---- */

sb_err sb_server_start(const struct sb_server_opts *o, struct sb_server **out, struct sb_error *err)
{
    struct sb_server *s = sb_xcalloc(1, sizeof(*s));
    s->o = *o;
    s->nworkers = o->workers > 0 ? o->workers : 1;
    s->workers = sb_xcalloc((size_t)s->nworkers, sizeof(*s->workers));
    s->port = o->port;
    for (int i = 0; i < s->nworkers; i++) {
        struct sb__worker *w = &s->workers[i];
        w->index = i;
        int fd = open_listener(o->host, s->port, err);
        if (fd < 0)
            goto fail;
        if (s->port == 0)
            s->port = bound_port(fd);
        if (worker_init(s, w, fd, err) != SB_OK)
            goto fail;
    }
    for (int i = 0; i < s->nworkers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    s->started = true;
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
    free(s->workers);
    free(s);
}
