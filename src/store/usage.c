/* SPDX-License-Identifier: MIT */
/*
 * usage.c - the usage queue and its writer thread (see usage.h).
 *
 * Two arrays take turns: producers append to `queue` under the mutex; the
 * writer swaps it with its own emptied `spare` under the same mutex and
 * writes the rows with the lock released, so a worker's submit costs one
 * memcpy and an uncontended lock however slow the database is. Arrays keep
 * their capacity between rounds, so a steady load allocates nothing.
 * The writer wakes every FLUSH_MS, or early when WAKE_ROWS are waiting:
 * waking it per request would cost two context switches and a one-row
 * transaction each (measured: a quarter of the gateway's CPU at c1).
 * The writer inserts at most BATCH rows per transaction; a failed batch is
 * retried a few times, then counted as failed and logged (we never spin on
 * a dead database and never silently drop: sb_usage_failed() reports it).
 */
#include "store/usage.h"

#include <pthread.h>
#include <sched.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "store/store.h"

#define BATCH 64       /* rows per transaction: short enough to yield the core between them */
#define ATTEMPTS 3     /* tries per batch before it is counted as failed */
#define FLUSH_MS 100   /* longest a row waits in the queue under light load */
#define WAKE_ROWS 1024 /* queued rows that wake the writer before FLUSH_MS */
#define KEEP_ROWS 4096 /* capacity kept between rounds; a burst's larger array is freed */

struct rows {
    struct sb_usage *p;
    size_t n, cap;
};

struct sb_usage_writer {
    struct sb_store *store; /* owned; used only by the writer thread */
    pthread_t thread;
    pthread_mutex_t mu;  /* guards queue and stopping */
    pthread_cond_t wake; /* signalled when queue becomes non-empty or on stop */
    struct rows queue;   /* filled by submit */
    struct rows spare;   /* the writer's; empty between rounds */
    bool stopping;       /* stop() called: drain, then exit */
    _Atomic uint64_t written;
    _Atomic uint64_t failed;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_batch(struct sb_usage_writer *w, const struct sb_usage *rows, size_t n)
{
    struct sb_error err = {0};
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        if (sb_store_insert_usage(w->store, rows, n, &err) == SB_OK) {
            atomic_fetch_add(&w->written, n);
            return;
        }
        if (attempt < ATTEMPTS)
            sleep_ms(50L * attempt);
    }
    atomic_fetch_add(&w->failed, n);
    sb_error("msg=\"usage rows lost\" rows=%zu err=\"%s\"", n, err.msg);
}

static void write_all(struct sb_usage_writer *w, struct rows *r)
{
    for (size_t off = 0; off < r->n; off += BATCH) {
        size_t n = r->n - off < BATCH ? r->n - off : BATCH;
        write_batch(w, r->p + off, n);
        sched_yield(); /* a worker waiting for this core gets it now, not after the backlog */
    }
    r->n = 0;
    if (r->cap > KEEP_ROWS) {
        free(r->p);
        r->p = NULL;
        r->cap = 0;
    }
}

static void flush_deadline(struct timespec *at)
{
    clock_gettime(CLOCK_MONOTONIC, at);
    at->tv_nsec += FLUSH_MS * 1000000L;
    at->tv_sec += at->tv_nsec / 1000000000L;
    at->tv_nsec %= 1000000000L;
}

/* Sleeps until a full batch waits, FLUSH_MS passed with rows queued, or stop. */
static void wait_for_rows(struct sb_usage_writer *w)
{
    struct timespec at;
    flush_deadline(&at);
    while (!w->stopping && w->queue.n < WAKE_ROWS) {
        if (pthread_cond_timedwait(&w->wake, &w->mu, &at) != 0 && w->queue.n > 0)
            return; /* timed out with rows to write */
        if (w->queue.n == 0)
            flush_deadline(&at); /* idle: restart the period */
    }
}

static void *writer_main(void *arg)
{
    struct sb_usage_writer *w = arg;
    /* No lower priority (nice): on a saturated core a niced writer falls
     * behind for good and the queue grows without end (measured: 380 MB in a
     * one-minute bench). Short transactions with a yield between them keep
     * the workers' latency low instead. */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wait_for_rows(w);
        if (w->queue.n == 0)
            break; /* stopping and drained */
        struct rows t = w->queue;
        w->queue = w->spare;
        w->spare = t;
        pthread_mutex_unlock(&w->mu);
        write_all(w, &w->spare);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct sb_usage_writer *sb_usage_writer_start(struct sb_store *store, struct sb_error *err)
{
    struct sb_usage_writer *w = sb_xcalloc(1, sizeof(*w));
    w->store = store;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->written, 0);
    atomic_init(&w->failed, 0);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        sb_fail(err, SB_E_INTERNAL, "usage writer: cannot start thread");
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        sb_store_close(store);
        free(w);
        return NULL;
    }
    return w;
}

void sb_usage_submit(struct sb_usage_writer *w, const struct sb_usage *u)
{
    pthread_mutex_lock(&w->mu);
    struct rows *q = &w->queue;
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 256;
        q->p = sb_xrealloc(q->p, q->cap * sizeof(*q->p));
    }
    q->p[q->n++] = *u;
    /* Wake the writer early only for a full batch; otherwise its timer does. */
    if (q->n == WAKE_ROWS)
        pthread_cond_signal(&w->wake);
    /* Never dropped, but never silent either: a store slower than the traffic. */
    if (q->n % 100000 == 0)
        sb_warn("msg=\"usage queue backing up\" rows=%zu", q->n);
    pthread_mutex_unlock(&w->mu);
}

void sb_usage_writer_stop(struct sb_usage_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    sb_store_close(w->store);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w->queue.p);
    free(w->spare.p);
    free(w);
}

/* C11 atomic_load takes a non-const pointer (fixed only in C17 by DR 459),
 * so the const is cast away for the read; nothing is written. */
uint64_t sb_usage_written(const struct sb_usage_writer *w)
{
    return atomic_load(&((struct sb_usage_writer *)w)->written);
}

uint64_t sb_usage_failed(const struct sb_usage_writer *w)
{
    return atomic_load(&((struct sb_usage_writer *)w)->failed);
}
