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
#include <sys/socket.h>
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
    bool draining;               /* shutdown started: no accepts, no keep-alive */
    bool stopped;                /* worker_stop was called */
    bool read_busy;              /* readbuf handed to libuv and not yet returned */
    size_t body_held;            /* bytes of bodies over body_buffer_bytes kept in the heap */
    struct sb_spool_pool spools; /* body files kept for the next long body (core/spool.h) */
    uv_timer_t spool_idle;       /* closes them after body_files_idle_ms with none taken */
    uint64_t spools_swept;       /* loop time of the last sb_spool_pool_sweep */
    uint64_t rid_seed;           /* request id generator state */
    char readbuf[SB__READ_BUF];  /* shared by all reads of this loop */
};

/* Starts the idle timer of the worker's body-file pool if it holds any (server.c). */
void sb__worker_spool_given(struct sb__worker *w);

/* A claim on one address (claim.c): the lock, and one listening socket per worker. */
struct sb_listen_claim {
    char addr[80];              /* "127.0.0.1:8080", "[::1]:8080": messages, lock name */
    struct sockaddr_storage ss; /* the resolved address, port included once bound */
    int port;                   /* the bound port */
    int ctl;                    /* the lock: a listening abstract unix socket (or -1) */
    int peer;                   /* takeover: our line to the old process until "ready"; -1 */
    int previous;               /* takeover: the old process's pid; 0 = fresh start */
    int *fds;                   /* listening TCP sockets, one per worker */
    int nfds;                   /* entries in fds */
    int given;                  /* fds[0..given) now belong to the workers' uv handles */
};

struct sb_server {
    struct sb_server_opts o; /* copy of the caller's options */
    struct sb__worker *workers;
    int nworkers;
    int port;                      /* bound port */
    atomic_uint conns;             /* open connections across workers */
    bool started;                  /* threads are running */
    struct sb_listen_claim *claim; /* owned: the address, its lock and listeners */
    atomic_int listening;          /* workers whose listener is still open */
    pthread_t ctl_thread;          /* answers takeover requests (claim.c) */
    int ctl_wake[2];               /* pipe: the main thread stops ctl_thread; -1 when none */
    bool ctl_running;              /* ctl_thread was started and not joined yet */
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

/* claim.c: formats addr:port as "127.0.0.1:8080" or "[::1]:8080" into out (cap >= 64). */
void sb__addr_format(const struct sockaddr_storage *ss, char *out, size_t cap);
/* claim.c: a takeover claim tells the old process that we serve now; no-op otherwise. */
void sb__claim_ready(struct sb_listen_claim *c);
/* claim.c: closes the lock (a new instance may claim the address); idempotent. */
void sb__claim_release(struct sb_listen_claim *c);
/* claim.c: starts/stops the thread that answers takeover requests on s->claim->ctl. */
void sb__ctl_start(struct sb_server *s);
void sb__ctl_stop(struct sb_server *s);

#endif
