/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - request counters and histograms, one shard per recording thread.
 *
 * Every thread that records (a worker loop, the batch runner's loop) owns a
 * shard: a fixed-capacity label table with histograms and its share of the
 * in-flight gauge. Only the owner writes a shard, so an update is a relaxed
 * load and store (plain moves on x86, no lock prefix) to a cache line no
 * other core writes; /metrics and sb_metrics_inflight_now sum the shards
 * when they read. Before, one mutex and one atomic gauge were written by
 * every request: two cache-line transfers per request at best, more under
 * contention, for work a reader needs a few times a minute (DESIGN.md §7,
 * "Many cores").
 *
 * A shard's table is bounded (1024 series): past that, samples land in one
 * overflow series labelled "other" rather than growing without limit,
 * because model names come from the registry and a runaway registry must
 * not eat memory. Shards are never freed: a thread that exits hands its
 * shard to the next thread that records, so counters never go back.
 */
#include "gateway/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"

#define MAX_SERIES 1024
#define NBUCKETS 12

static const double bucket_le[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  30};

/* Written by the owner thread only; read by any. */
struct hist {
    _Atomic uint64_t buckets[NBUCKETS + 1]; /* the last: above 30 s; the count is the sum */
    _Atomic double sum;
};

struct series {
    atomic_bool used; /* set (release) after the labels, which never change again */
    char provider[64];
    char model[128];
    int status;
    _Atomic uint64_t requests;
    _Atomic uint64_t upstream_errors;
    struct hist latency;
    struct hist ttft;
};

struct shard {
    struct series table[MAX_SERIES];
    atomic_long inflight; /* this thread's +1s and -1s; may be < 0 if a request ends elsewhere */
    atomic_bool owned;    /* a live thread records here */
    struct shard *next;   /* the list of every shard; set before publication, never changed */
};

static _Atomic(struct shard *) shards; /* newest first; only grows */
static _Thread_local struct shard *mine;
static pthread_key_t exit_key; /* its destructor hands a dead thread's shard on */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* ---- shards ---- */

static void disown(void *p)
{
    atomic_store_explicit(&((struct shard *)p)->owned, false, memory_order_release);
}

static void die(const char *why)
{
    fprintf(stderr, "switchboard: metrics: %s\n", why);
    abort(); /* as sb_xmalloc does: STYLE.md practice 10 */
}

static void make_key(void)
{
    if (pthread_key_create(&exit_key, disown) != 0)
        die("pthread_key_create failed");
}

/* A shard some exited thread left, or a new one (mmap: its 450 KB of zeroes
 * cost memory only where series are used). */
static struct shard *adopt_or_map(void)
{
    for (struct shard *s = atomic_load(&shards); s; s = s->next) {
        bool was = false;
        if (atomic_compare_exchange_strong(&s->owned, &was, true))
            return s;
    }
    struct shard *s =
        mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        die("out of memory for a shard");
    atomic_init(&s->owned, true);
    s->next = atomic_load(&shards);
    while (!atomic_compare_exchange_weak(&shards, &s->next, s))
        ;
    return s;
}

/* This thread's shard, claimed at its first sample. */
static struct shard *my_shard(void)
{
    if (!mine) {
        pthread_once(&key_once, make_key);
        mine = adopt_or_map();
        pthread_setspecific(exit_key, mine);
    }
    return mine;
}

/* Single-writer updates: no read-modify-write instruction is needed. */
static void add_u64(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static uint64_t get_u64(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void sb_metrics_inflight(int delta)
{
    atomic_long *g = &my_shard()->inflight;
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

long sb_metrics_inflight_now(void)
{
    long n = 0;
    for (struct shard *s = atomic_load(&shards); s; s = s->next)
        n += atomic_load_explicit(&s->inflight, memory_order_relaxed);
    return n;
}

/* ---- one shard's label table ---- */

static uint64_t hash(const char *p, const char *m, int status)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)status;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (; *m; m++)
        h = (h ^ (unsigned char)*m) * 1099511628211ULL;
    return h;
}

static bool same(const struct series *s, const char *p, const char *m, int status)
{
    return s->status == status && strcmp(s->provider, p) == 0 && strcmp(s->model, m) == 0;
}

/* The series of (p, m, status) in t, created if there is room (owner only). */
static struct series *find(struct series *t, const char *p, const char *m, int status)
{
    uint64_t h = hash(p, m, status);
    for (size_t i = 0; i < MAX_SERIES; i++) {
        struct series *s = &t[(h + i) % MAX_SERIES];
        if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
            snprintf(s->provider, sizeof(s->provider), "%s", p);
            snprintf(s->model, sizeof(s->model), "%s", m);
            s->status = status;
            atomic_store_explicit(&s->used, true, memory_order_release);
            return s;
        }
        if (same(s, p, m, status))
            return s;
    }
    return NULL;
}

static void observe(struct hist *h, double v)
{
    int i = 0;
    while (i < NBUCKETS && v > bucket_le[i])
        i++;
    add_u64(&h->buckets[i], 1);
    atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void sb_metrics_record(const struct sb_metrics_sample *x)
{
    struct series *t = my_shard()->table;
    struct series *s = find(t, x->provider ? x->provider : "", x->model ? x->model : "", x->status);
    if (!s)
        s = find(t, "other", "other", 0);
    if (!s)
        return;
    add_u64(&s->requests, 1);
    add_u64(&s->upstream_errors, x->upstream_error);
    observe(&s->latency, x->latency_s);
    if (x->ttft_s >= 0)
        observe(&s->ttft, x->ttft_s);
}

/* ---- reading: the sum over shards ---- */

/* A series summed over every shard; plain numbers, the reader's own. */
struct total {
    const struct series *first; /* its labels */
    uint64_t requests, upstream_errors;
    uint64_t lat[NBUCKETS + 1], ttft[NBUCKETS + 1];
    double lat_sum, ttft_sum;
};

static uint64_t hist_count(const uint64_t *b)
{
    uint64_t n = 0;
    for (int i = 0; i <= NBUCKETS; i++)
        n += b[i];
    return n;
}

static void add_hist(uint64_t *b, double *sum, struct hist *h)
{
    for (int i = 0; i <= NBUCKETS; i++)
        b[i] += get_u64(&h->buckets[i]);
    *sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
}

static void add_series(struct total *t, struct series *s)
{
    t->requests += get_u64(&s->requests);
    t->upstream_errors += get_u64(&s->upstream_errors);
    add_hist(t->lat, &t->lat_sum, &s->latency);
    add_hist(t->ttft, &t->ttft_sum, &s->ttft);
}

/* The totals of one scrape: an open-addressing table keyed by labels, so
 * that summing W shards of S series costs W x S probes, not W x W x S. */
struct totals {
    struct total *t; /* cap slots; first == NULL: empty */
    size_t cap, n;
};

static struct total *slot_of(struct totals *m, const struct series *s)
{
    size_t i = hash(s->provider, s->model, s->status) & (m->cap - 1);
    while (m->t[i].first && !same(m->t[i].first, s->provider, s->model, s->status))
        i = (i + 1) & (m->cap - 1);
    return &m->t[i];
}

static void totals_grow(struct totals *m)
{
    struct totals g = {sb_xcalloc(2 * m->cap, sizeof(*g.t)), 2 * m->cap, m->n};
    for (size_t i = 0; i < m->cap; i++)
        if (m->t[i].first)
            *slot_of(&g, m->t[i].first) = m->t[i];
    free(m->t);
    *m = g;
}

static void totals_add(struct totals *m, struct series *s)
{
    if (2 * (m->n + 1) > m->cap)
        totals_grow(m);
    struct total *t = slot_of(m, s);
    if (!t->first) {
        t->first = s;
        m->n++;
    }
    add_series(t, s);
}

/* Sums every used series of every shard into m (free m->t after). */
static void totals_collect(struct totals *m)
{
    *m = (struct totals){sb_xcalloc(64, sizeof(*m->t)), 64, 0};
    for (struct shard *sh = atomic_load(&shards); sh; sh = sh->next)
        for (size_t i = 0; i < MAX_SERIES; i++)
            if (atomic_load_explicit(&sh->table[i].used, memory_order_acquire))
                totals_add(m, &sh->table[i]);
}

/* Label values come from our registry ids ([A-Za-z0-9._:/-]); escape anyway. */
static void put_label(struct sb_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            sb_buf_append_char(out, '\\');
        if (*v == '\n') {
            sb_buf_append_cstr(out, "\\n");
            continue;
        }
        sb_buf_append_char(out, *v);
    }
}

static void put_labels(struct sb_buf *out, const struct series *s, bool with_status)
{
    sb_buf_append_cstr(out, "{provider=\"");
    put_label(out, s->provider);
    sb_buf_append_cstr(out, "\",model=\"");
    put_label(out, s->model);
    if (with_status)
        sb_buf_printf(out, "\",status=\"%d", s->status);
    sb_buf_append_cstr(out, "\"");
}

static void put_hist(struct sb_buf *out, const char *name, const struct series *s,
                     const uint64_t *b, double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        cum += b[i];
        sb_buf_printf(out, "%s_bucket", name);
        put_labels(out, s, true);
        sb_buf_printf(out, ",le=\"%g\"} %llu\n", bucket_le[i], (unsigned long long)cum);
    }
    cum += b[NBUCKETS];
    sb_buf_printf(out, "%s_bucket", name);
    put_labels(out, s, true);
    sb_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    sb_buf_printf(out, "%s_sum", name);
    put_labels(out, s, true);
    sb_buf_printf(out, "} %.6f\n%s_count", sum, name);
    put_labels(out, s, true);
    sb_buf_printf(out, "} %llu\n", (unsigned long long)cum);
}

static void render_total(struct sb_buf *out, const char *name, int which, const struct total *t)
{
    if (which == 0 || (which == 1 && t->upstream_errors)) {
        sb_buf_append_cstr(out, name);
        put_labels(out, t->first, true);
        sb_buf_printf(out, "} %llu\n",
                      (unsigned long long)(which == 0 ? t->requests : t->upstream_errors));
    } else if (which == 2) {
        put_hist(out, name, t->first, t->lat, t->lat_sum);
    } else if (which == 3 && hist_count(t->ttft)) {
        put_hist(out, name, t->first, t->ttft, t->ttft_sum);
    }
}

/* One line group per distinct label set. */
static void render_family(struct sb_buf *out, const struct totals *m, const char *name,
                          const char *type, const char *help, int which)
{
    sb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < m->cap; i++)
        if (m->t[i].first)
            render_total(out, name, which, &m->t[i]);
}

void sb_metrics_render(struct sb_buf *out, unsigned connections, unsigned long long usage_written,
                       unsigned long long usage_failed)
{
    struct totals m;
    totals_collect(&m);
    render_family(out, &m, "switchboard_requests_total", "counter",
                  "Requests by provider, model and HTTP status.", 0);
    render_family(out, &m, "switchboard_upstream_errors_total", "counter",
                  "Requests whose upstream failed.", 1);
    render_family(out, &m, "switchboard_request_duration_seconds", "histogram",
                  "Whole-request latency.", 2);
    render_family(out, &m, "switchboard_ttft_seconds", "histogram", "Time to first streamed token.",
                  3);
    free(m.t);
    sb_buf_printf(out,
                  "# HELP switchboard_requests_in_flight Requests being handled.\n"
                  "# TYPE switchboard_requests_in_flight gauge\n"
                  "switchboard_requests_in_flight %ld\n"
                  "# HELP switchboard_connections Open client connections.\n"
                  "# TYPE switchboard_connections gauge\n"
                  "switchboard_connections %u\n"
                  "# HELP switchboard_usage_rows_written_total Usage rows stored.\n"
                  "# TYPE switchboard_usage_rows_written_total counter\n"
                  "switchboard_usage_rows_written_total %llu\n"
                  "# HELP switchboard_usage_rows_failed_total Usage rows that failed to store.\n"
                  "# TYPE switchboard_usage_rows_failed_total counter\n"
                  "switchboard_usage_rows_failed_total %llu\n",
                  sb_metrics_inflight_now(), connections, usage_written, usage_failed);
}

void sb_metrics_render_usage(struct sb_buf *out, const struct sb_usage_stats *s)
{
    static const char *const fmt =
        "# HELP switchboard_usage_lost_total Usage rows and audit records neither stored nor"
        " journaled (journal unwritable).\n"
        "# TYPE switchboard_usage_lost_total counter\n"
        "switchboard_usage_lost_total %llu\n"
        "# HELP switchboard_usage_queue_rows Usage and audit records held in memory.\n"
        "# TYPE switchboard_usage_queue_rows gauge\n"
        "switchboard_usage_queue_rows %llu\n"
        "# HELP switchboard_usage_journal_rows Records in the spill journal, not yet stored.\n"
        "# TYPE switchboard_usage_journal_rows gauge\n"
        "switchboard_usage_journal_rows %llu\n"
        "# HELP switchboard_usage_journal_bytes Bytes of those records.\n"
        "# TYPE switchboard_usage_journal_bytes gauge\n"
        "switchboard_usage_journal_bytes %llu\n"
        "# HELP switchboard_usage_spilled_total Records ever written to the spill journal.\n"
        "# TYPE switchboard_usage_spilled_total counter\n"
        "switchboard_usage_spilled_total %llu\n";
    sb_buf_printf(out, fmt, (unsigned long long)(s->lost + s->audit_lost),
                  (unsigned long long)s->queue_rows, (unsigned long long)s->journal_rows,
                  (unsigned long long)s->journal_bytes, (unsigned long long)s->spilled);
}

/* ---- limiter rejections and the response cache ---- */

static _Atomic unsigned long long refused[4][2]; /* [scope][budget] */

void sb_metrics_limit_refused(int scope, bool budget)
{
    if (scope >= 1 && scope <= 3)
        atomic_fetch_add(&refused[scope][budget ? 1 : 0], 1);
}

void sb_metrics_render_limits_cache(struct sb_buf *out, const unsigned long long cache[7])
{
    static const char *const scopes[] = {"", "provider", "key", "user"};
    static const char *const names[] = {"hits",    "misses",  "stores", "evictions",
                                        "expired", "entries", "bytes"};
    sb_buf_printf(out,
                  "# HELP switchboard_limit_rejections_total Requests refused by our own "
                  "rate limits and budgets.\n# TYPE switchboard_limit_rejections_total counter\n");
    for (int sc = 1; sc <= 3; sc++)
        for (int b = 0; b < 2; b++)
            sb_buf_printf(out,
                          "switchboard_limit_rejections_total{scope=\"%s\",kind=\"%s\"} %llu\n",
                          scopes[sc], b ? "budget" : "rate", atomic_load(&refused[sc][b]));
    for (int i = 0; i < 7; i++) {
        bool gauge = i >= 5;
        sb_buf_printf(out, "# TYPE switchboard_cache_%s%s %s\nswitchboard_cache_%s%s %llu\n",
                      names[i], gauge ? "" : "_total", gauge ? "gauge" : "counter", names[i],
                      gauge ? "" : "_total", cache[i]);
    }
}
