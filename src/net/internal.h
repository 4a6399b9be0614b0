/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what server.c (workers, listeners, shutdown) and conn.c
 * (one client connection: parsing, timers, responses) share. Nothing
 * outside src/net/ includes this.
 */
#ifndef SB_NET_INTERNAL_H
#define SB_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "net/http.h"

#define SB__READ_BUF 65536

struct sb__conn;

struct sb__worker {
    struct sb_server *srv;    /* owner */
    int index;                /* 0..workers-1 */
    uv_loop_t loop;           /* this worker's loop, run on its own thread */
    uv_tcp_t listener;        /* SO_REUSEPORT socket of this worker */
    uv_async_t wake;          /* shutdown signal from the main thread */
    uv_timer_t deadline;      /* shutdown bound: aborts what is left */
    uv_check_t flush;         /* after each poll phase: writes corked stream output */
    uv_prepare_t flush_early; /* before each poll: output corked by timer callbacks */
    struct sb__conn *corked;  /* connections with corked output, linked by cork_next */
    pthread_t thread;
    void *ctx;              /* from opts.worker_start */
    struct sb__conn *conns; /* every open connection (for shutdown) */
    unsigned nconns;
    bool draining;              /* shutdown started: no accepts, no keep-alive */
    bool stopped;               /* worker_stop was called */
    bool read_busy;             /* readbuf handed to libuv and not yet returned */
    uint64_t rid_seed;          /* request id generator state */
    char readbuf[SB__READ_BUF]; /* shared by all reads of this loop */
};

struct sb_server {
    struct sb_server_opts o; /* copy of the caller's options */
    struct sb__worker *workers;
    int nworkers;
    int port;          /* bound port */
    atomic_uint conns; /* open connections across workers */
    bool started;      /* threads are running */
};

/* conn.c: accepts one connection from w's listener. */
void sb__conn_accept(struct sb__worker *w);
/* conn.c: shutdown began: close idle connections, finish the rest. */
void sb__conn_drain_all(struct sb__worker *w);
/* conn.c: shutdown bound reached: abort and close everything left. */
void sb__conn_abort_all(struct sb__worker *w);
/* conn.c: writes every connection's corked stream output (one write each). */
void sb__conn_flush_corked(struct sb__worker *w);
/* server.c: called by conn.c when a connection has been freed. */
void sb__worker_conn_gone(struct sb__worker *w);

#endif
