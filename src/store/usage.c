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
 *
 * Audit records ride along in a second pair of arrays under the same mutex
 * and are written in the same loop, before the usage rows of each round
 * (they are few; a control-plane change should be on disk first). Each
 * record is copied into one heap block holding its strings, freed after
 * its batch. After each usage batch, the keys it used get last_used_at
 * raised (sb_store_key_touch), one entry per distinct key.
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
#include "store/identity.h"
#include "store/store.h"

#define BATCH 64       /* rows per transaction: short enough to yield the core between them */
#define ATTEMPTS 3     /* tries per batch before it is counted as failed */
#define FLUSH_MS 100   /* longest a row waits in the queue under light load */
#define WAKE_ROWS 1024 /* queued rows that wake the writer before FLUSH_MS */
#define KEEP_ROWS 4096 /* capacity kept between rounds; a burst's larger array is freed */
#define AUDIT_FIELD_MAX (64 * 1024) /* longer before/after JSON is replaced (usage.h) */

struct rows {
    struct sb_usage *p;
    size_t n, cap;
};

struct audits {
    struct sb_audit *p; /* each element's strings live in one malloc block at p[i].actor */
    size_t n, cap;
};

struct sb_usage_writer {
    struct sb_store *store; /* owned; used only by the writer thread */
    pthread_t thread;
    pthread_mutex_t mu;   /* guards queue and stopping */
    pthread_cond_t wake;  /* signalled when queue becomes non-empty or on stop */
    struct rows queue;    /* filled by submit */
    struct rows spare;    /* the writer's; empty between rounds */
    struct audits aqueue; /* audit records filled by submit_audit */
    struct audits aspare; /* the writer's */
    bool stopping;        /* stop() called: drain, then exit */
    _Atomic uint64_t written;
    _Atomic uint64_t failed;
    _Atomic uint64_t audit_written;
    _Atomic uint64_t audit_failed;
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

/* Raises last_used_at of the keys rows[0..n) used: usage key_id is the
 * key's row id in decimal (empty for the admin token). */
static void touch_keys(struct sb_usage_writer *w, const struct sb_usage *rows, size_t n)
{
    struct sb_store_key_use uses[BATCH];
    size_t nu = 0;
    struct sb_error err = {0};
    if (!w->store->ops->identity)
        return; /* a store without identity tables (test doubles) */
    for (size_t i = 0; i < n && nu < BATCH; i++) {
        unsigned long long id = 0;
        struct sb_slice k = {rows[i].key_id, strnlen(rows[i].key_id, sizeof(rows[i].key_id))};
        if (!sb_slice_to_u64(k, &id) || id > INT64_MAX)
            continue;
        size_t j = 0;
        while (j < nu && uses[j].key_id != (int64_t)id)
            j++;
        if (j == nu)
            uses[nu++] = (struct sb_store_key_use){(int64_t)id, rows[i].ts_ms};
        else if (rows[i].ts_ms > uses[j].ts_ms)
            uses[j].ts_ms = rows[i].ts_ms;
    }
    if (nu && sb_store_key_touch(w->store, uses, nu, &err) != SB_OK)
        sb_warn("msg=\"key last_used_at not updated\" keys=%zu err=\"%s\"", nu, err.msg);
}

static void write_audit_batch(struct sb_usage_writer *w, const struct sb_audit *rows, size_t n)
{
    struct sb_error err = {0};
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        if (sb_store_audit_insert(w->store, rows, n, &err) == SB_OK) {
            atomic_fetch_add(&w->audit_written, n);
            return;
        }
        if (err.code == SB_E_BAD_REQUEST)
            break; /* a record the schema refuses: retrying cannot help */
        if (attempt < ATTEMPTS)
            sleep_ms(50L * attempt);
    }
    atomic_fetch_add(&w->audit_failed, n);
    sb_error("msg=\"audit records lost\" rows=%zu err=\"%s\"", n, err.msg);
}

static void write_audits(struct sb_usage_writer *w, struct audits *r)
{
    for (size_t off = 0; off < r->n; off += BATCH) {
        size_t n = r->n - off < BATCH ? r->n - off : BATCH;
        write_audit_batch(w, r->p + off, n);
    }
    for (size_t i = 0; i < r->n; i++)
        free((void *)r->p[i].actor); /* the block holding all its strings */
    r->n = 0;
}

static void write_all(struct sb_usage_writer *w, struct rows *r)
{
    for (size_t off = 0; off < r->n; off += BATCH) {
        size_t n = r->n - off < BATCH ? r->n - off : BATCH;
        write_batch(w, r->p + off, n);
        touch_keys(w, r->p + off, n);
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
        if (pthread_cond_timedwait(&w->wake, &w->mu, &at) != 0 && w->queue.n + w->aqueue.n > 0)
            return; /* timed out with rows to write */
        if (w->queue.n + w->aqueue.n == 0)
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
        if (w->queue.n == 0 && w->aqueue.n == 0)
            break; /* stopping and drained */
        struct rows t = w->queue;
        w->queue = w->spare;
        w->spare = t;
        struct audits at = w->aqueue;
        w->aqueue = w->aspare;
        w->aspare = at;
        pthread_mutex_unlock(&w->mu);
        write_audits(w, &w->aspare);
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
    free(w->aqueue.p);
    free(w->aspare.p);
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

/* ---- audit ---- */

/* Copies one string field into the block at *at; NULL stays NULL. Strings
 * over AUDIT_FIELD_MAX become repl (the JSON fields) so one huge record
 * cannot stall the writer. */
static const char *copy_field(const char *src, char **at, const char *repl)
{
    if (!src)
        return NULL;
    size_t n = strlen(src);
    if (n > AUDIT_FIELD_MAX) {
        src = repl;
        n = strlen(repl);
    }
    char *dst = *at;
    memcpy(dst, src, n + 1);
    *at += n + 1;
    return dst;
}

static size_t field_size(const char *s, const char *repl)
{
    size_t n = s ? strlen(s) : 0;
    return s ? (n > AUDIT_FIELD_MAX ? strlen(repl) : n) + 1 : 0;
}

/* The store refuses a record without actor or action, or with another
 * outcome, and would lose its whole batch with it: repair here instead. */
static const char *nonempty(const char *s)
{
    return s && *s ? s : "unknown";
}

static const char *outcome(const char *s)
{
    return s && (strcmp(s, "ok") == 0 || strcmp(s, "denied") == 0) ? s : "failed";
}

/* The record with every string in one block, whose start is the actor field. */
static struct sb_audit copy_audit(const struct sb_audit *a)
{
    static const char trunc[] = "{\"truncated\":true}", dots[] = "...";
    const char *const *f[] = {&a->actor,      &a->actor_role, &a->action, &a->target_type,
                              &a->target_id,  &a->before,     &a->after,  &a->ip,
                              &a->request_id, &a->outcome};
    size_t total = 16; /* room for the "unknown" / "failed" repairs */
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        total += field_size(*f[i], i == 5 || i == 6 ? trunc : dots);
    struct sb_audit c = {.ts_ms = a->ts_ms ? a->ts_ms : (int64_t)time(NULL) * 1000};
    char *block = sb_xmalloc(total), *at = block;
    /* actor first: it is the block's start, which write_audits frees. */
    c.actor = copy_field(nonempty(a->actor), &at, dots);
    c.actor_role = copy_field(a->actor_role, &at, dots);
    c.action = copy_field(nonempty(a->action), &at, dots);
    c.target_type = copy_field(a->target_type, &at, dots);
    c.target_id = copy_field(a->target_id, &at, dots);
    c.before = copy_field(a->before, &at, trunc);
    c.after = copy_field(a->after, &at, trunc);
    c.ip = copy_field(a->ip, &at, dots);
    c.request_id = copy_field(a->request_id, &at, dots);
    c.outcome = copy_field(outcome(a->outcome), &at, dots);
    return c;
}

void sb_usage_submit_audit(struct sb_usage_writer *w, const struct sb_audit *a)
{
    struct sb_audit c = copy_audit(a); /* outside the lock: it may be a large copy */
    pthread_mutex_lock(&w->mu);
    struct audits *q = &w->aqueue;
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->p = sb_xrealloc(q->p, q->cap * sizeof(*q->p));
    }
    q->p[q->n++] = c;
    pthread_mutex_unlock(&w->mu);
}

uint64_t sb_usage_audit_written(const struct sb_usage_writer *w)
{
    return atomic_load(&((struct sb_usage_writer *)w)->audit_written);
}

uint64_t sb_usage_audit_failed(const struct sb_usage_writer *w)
{
    return atomic_load(&((struct sb_usage_writer *)w)->audit_failed);
}
