/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - a small fixed-capacity label table with histograms.
 *
 * Series are found by linear probing over a hash of the label values. The
 * table is bounded (1024 series): past that, samples land in one overflow
 * series labelled "other" rather than growing without limit, because model
 * names come from the registry and a runaway registry must not eat memory.
 */
#include "gateway/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 1024
#define NBUCKETS 12

static const double bucket_le[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  30};

struct hist {
    uint64_t buckets[NBUCKETS]; /* cumulative counts are computed when rendering */
    uint64_t count;
    double sum;
};

struct series {
    bool used;
    char provider[64];
    char model[128];
    int status;
    uint64_t requests;
    uint64_t upstream_errors;
    struct hist latency;
    struct hist ttft;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[MAX_SERIES];
static atomic_long inflight;

void sb_metrics_inflight(int delta)
{
    atomic_fetch_add(&inflight, delta);
}

long sb_metrics_inflight_now(void)
{
    return atomic_load_explicit(&inflight, memory_order_relaxed);
}

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

static struct series *find(const char *p, const char *m, int status)
{
    uint64_t h = hash(p, m, status);
    for (size_t i = 0; i < MAX_SERIES; i++) {
        struct series *s = &table[(h + i) % MAX_SERIES];
        if (!s->used) {
            s->used = true;
            snprintf(s->provider, sizeof(s->provider), "%s", p);
            snprintf(s->model, sizeof(s->model), "%s", m);
            s->status = status;
            return s;
        }
        if (s->status == status && strcmp(s->provider, p) == 0 && strcmp(s->model, m) == 0)
            return s;
    }
    return NULL;
}

static void observe(struct hist *h, double v)
{
    for (int i = 0; i < NBUCKETS; i++) {
        if (v <= bucket_le[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum += v;
}

void sb_metrics_record(const struct sb_metrics_sample *x)
{
    pthread_mutex_lock(&lock);
    struct series *s = find(x->provider ? x->provider : "", x->model ? x->model : "", x->status);
    if (!s)
        s = find("other", "other", 0);
    if (s) {
        s->requests++;
        s->upstream_errors += x->upstream_error;
        observe(&s->latency, x->latency_s);
        if (x->ttft_s >= 0)
            observe(&s->ttft, x->ttft_s);
    }
    pthread_mutex_unlock(&lock);
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
                     const struct hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        cum += h->buckets[i];
        sb_buf_printf(out, "%s_bucket", name);
        put_labels(out, s, true);
        sb_buf_printf(out, ",le=\"%g\"} %llu\n", bucket_le[i], (unsigned long long)cum);
    }
    sb_buf_printf(out, "%s_bucket", name);
    put_labels(out, s, true);
    sb_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
    sb_buf_printf(out, "%s_sum", name);
    put_labels(out, s, true);
    sb_buf_printf(out, "} %.6f\n%s_count", h->sum, name);
    put_labels(out, s, true);
    sb_buf_printf(out, "} %llu\n", (unsigned long long)h->count);
}

static void render_family(struct sb_buf *out, const char *name, const char *type, const char *help,
                          int which)
{
    sb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < MAX_SERIES; i++) {
        const struct series *s = &table[i];
        if (!s->used)
            continue;
        if (which == 0 || (which == 1 && s->upstream_errors)) {
            sb_buf_append_cstr(out, name);
            put_labels(out, s, true);
            sb_buf_printf(out, "} %llu\n",
                          (unsigned long long)(which == 0 ? s->requests : s->upstream_errors));
        } else if (which == 2) {
            put_hist(out, name, s, &s->latency);
        } else if (which == 3 && s->ttft.count) {
            put_hist(out, name, s, &s->ttft);
        }
    }
}

void sb_metrics_render(struct sb_buf *out, unsigned connections, unsigned long long usage_written,
                       unsigned long long usage_failed)
{
    pthread_mutex_lock(&lock);
    render_family(out, "switchboard_requests_total", "counter",
                  "Requests by provider, model and HTTP status.", 0);
    render_family(out, "switchboard_upstream_errors_total", "counter",
                  "Requests whose upstream failed.", 1);
    render_family(out, "switchboard_request_duration_seconds", "histogram",
                  "Whole-request latency.", 2);
    render_family(out, "switchboard_ttft_seconds", "histogram", "Time to first streamed token.", 3);
    pthread_mutex_unlock(&lock);
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
                  atomic_load(&inflight), connections, usage_written, usage_failed);
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
