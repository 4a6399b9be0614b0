/* SPDX-License-Identifier: MIT */
/*
 * sqlite_usage_report.c - usage analytics from usage_logs (GET /api/usage).
 *
 * Percentiles are exact nearest-rank values, computed here rather than in
 * SQL: neither SQLite nor portable SQL has percentile_cont. The query returns
 * the matching rows ordered by group; we hold one group's latencies and
 * first-token times at a time (16 bytes a row, 32 MB at the row bound), sort
 * them when the group ends, and keep only the sums. The cost is one read of
 * every matching row, SQLite's sort by group and ours by latency. Measured on
 * the shared 2-core development machine over one million rows in one window:
 * 0.67 s for the total, 1.0-1.4 s grouped (5 to 50 groups); one user's 20,000
 * rows by day through an index on (user_id, ts), 0.08 s — an index migration 8
 * dropped again for the writer's sake, so a user's report now scans its time
 * window, a range of row ids (migration 12). So a report first counts
 * its rows and refuses, with a clear 400, to read more than max_rows (2
 * million by default: about 3 s, during which the control plane's other
 * calls wait on its mutex), and stops after max_groups groups, saying so.
 *
 * The SQL is built from fixed tables only (the columns of each dimension);
 * every value from the caller is a bound parameter. It is the common subset
 * of SQLite and PostgreSQL: integer division for the time buckets, COALESCE
 * so a NULL column groups as one value, ORDER BY a column position.
 * Ordering is byte order on SQLite; a PostgreSQL backend must ask for the
 * "C" collation to order the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "store/sqlite_int.h"
#include "store/store.h"

/* What each grouping reads as the group's key: a column (NULL = '' so it is
 * one group), a time bucket, or a constant for the single total row. */
static const struct {
    const char *column; /* the usage_logs column it filters on, NULL = not a filter */
    const char *expr;   /* the group key expression */
    bool bucket;        /* the key is an integer time bucket */
} dims[SB_STORE_USAGE_NBY] = {
    [SB_STORE_USAGE_BY_NONE] = {NULL, "0", true},
    [SB_STORE_USAGE_BY_PROVIDER] = {"provider", "COALESCE(provider, '')", false},
    [SB_STORE_USAGE_BY_MODEL] = {"model", "COALESCE(model, '')", false},
    [SB_STORE_USAGE_BY_USER] = {"user_id", "COALESCE(user_id, '')", false},
    [SB_STORE_USAGE_BY_KEY] = {"key_id", "COALESCE(key_id, '')", false},
    [SB_STORE_USAGE_BY_ROUTE] = {"route", "COALESCE(route, '')", false},
    [SB_STORE_USAGE_BY_VARIANT] = {"variant", "COALESCE(variant, '')", false},
    [SB_STORE_USAGE_BY_HOUR] = {NULL, "(ts / 3600000) * 3600000", true},
    [SB_STORE_USAGE_BY_DAY] = {NULL, "(ts / 86400000) * 86400000", true},
};

/* The columns the scan reads, after the group key (column 0). */
enum { C_KEY, C_STATUS, C_LATENCY, C_TTFT, C_STREAMED, C_PROMPT, C_COMPLETION, C_COST, C_TS };

/* ======================================================================
 * SQL: one WHERE clause for the count and the scan
 * ==================================================================== */

/* " WHERE id >= ?1 AND id < ?2 AND ts >= ?3 AND ts < ?4 AND col = ?5 ..." in the
 * order bind_where binds: the id range is the window (sqlite_int.h), ts keeps
 * it exact for rows whose start the id clamps. */
static void where_clause(const struct sb_store_usage_query *q, struct sb_buf *sql)
{
    int n = 4;
    sb_buf_append_cstr(sql, " FROM usage_logs WHERE id >= ?1 AND id < ?2 AND ts >= ?3 AND ts < ?4");
    for (int d = 1; d < SB_STORE_USAGE_NEQ; d++)
        if (q->eq[d])
            sb_buf_printf(sql, " AND %s = ?%d", dims[d].column, ++n);
    if (q->status)
        sb_buf_printf(sql, " AND status = ?%d", ++n);
}

static void bind_where(sqlite3_stmt *st, const struct sb_store_usage_query *q)
{
    int n = 4;
    int64_t lo, hi;
    sb__sq_usage_ids(q->from_ms, q->to_ms, &lo, &hi);
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    sqlite3_bind_int64(st, 3, q->from_ms);
    sqlite3_bind_int64(st, 4, q->to_ms);
    for (int d = 1; d < SB_STORE_USAGE_NEQ; d++)
        if (q->eq[d])
            sb__sq_bind_str(st, ++n, q->eq[d]);
    if (q->status)
        sb__sq_bind_str(st, ++n, q->status);
}

/* Prepares "SELECT <head> FROM usage_logs WHERE ... <tail>" with q bound. */
static sb_err prepare(sqlite3 *db, const struct sb_store_usage_query *q, const char *head,
                      const char *tail, sqlite3_stmt **st, struct sb_error *err)
{
    struct sb_buf sql;
    sb_buf_init(&sql, 0);
    sb_buf_printf(&sql, "SELECT %s", head);
    where_clause(q, &sql);
    sb_buf_append_cstr(&sql, tail);
    sb_err rc = sb__sq_prepare(db, sql.p, st, err);
    sb_buf_free(&sql);
    if (rc == SB_OK)
        bind_where(*st, q);
    return rc;
}

/* Refuses a report that would read more than max rows. */
static sb_err count_rows(sqlite3 *db, const struct sb_store_usage_query *q, int64_t max,
                         int64_t *rows, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = prepare(db, q, "COUNT(*)", "", &st, err);
    if (rc != SB_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *rows = sqlite3_column_int64(st, 0);
    else
        rc = sb__sq_fail(db, err, "usage report: count");
    sqlite3_finalize(st);
    if (rc == SB_OK && *rows > max)
        rc = sb_fail_field(err, SB_E_BAD_REQUEST, "from",
                           "this report would read %lld usage rows, more than the %lld one report "
                           "may read: narrow the window (from, to) or add a filter",
                           (long long)*rows, (long long)max);
    return rc;
}

/* ======================================================================
 * The scan: one group at a time
 * ==================================================================== */

struct acc {
    struct sb_arena *a;
    const struct sb_store_usage_query *q;
    size_t max_groups;
    struct sb__vec groups;          /* struct sb_store_usage_group */
    struct sb_store_usage_group *g; /* the open group (index n-1), NULL before the first */
    double *lat, *ttft;             /* heap: the open group's values */
    size_t nlat, nttft, cap_lat, cap_ttft;
    bool truncated; /* a group past max_groups was seen: stop */
};

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Nearest rank: the smallest value with at least pct% of the n values at or
 * below it, in integers so 95% of 20 is exactly the 19th. */
static double rank(const double *v, size_t n, unsigned pct)
{
    if (n == 0)
        return 0;
    size_t r = (pct * n + 99) / 100;
    return v[r ? r - 1 : 0];
}

/* Sorts v[0..n); v may be NULL when n is 0 (qsort's arguments must not be). */
static void sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_double);
}

static void close_group(struct acc *s)
{
    struct sb_store_usage_group *g = s->g;
    if (!g)
        return;
    sort(s->lat, s->nlat);
    sort(s->ttft, s->nttft);
    g->latency_p50_ms = rank(s->lat, s->nlat, 50);
    g->latency_p95_ms = rank(s->lat, s->nlat, 95);
    g->latency_p99_ms = rank(s->lat, s->nlat, 99);
    g->ttft_p50_ms = rank(s->ttft, s->nttft, 50);
    g->ttft_p95_ms = rank(s->ttft, s->nttft, 95);
    s->nlat = s->nttft = 0;
    s->g = NULL;
}

/* Is row st's key the open group's? */
static bool same_group(const struct acc *s, sqlite3_stmt *st)
{
    const struct sb_store_usage_group *g = s->g;
    if (dims[s->q->group_by].bucket)
        return sqlite3_column_int64(st, C_KEY) == g->bucket_ms;
    const char *k = (const char *)sqlite3_column_text(st, C_KEY);
    return strcmp(k ? k : "", g->key ? g->key : "") == 0;
}

/* Opens the group of row st; false when that would pass max_groups. */
static bool open_group(struct acc *s, sqlite3_stmt *st)
{
    close_group(s);
    if (s->groups.n == s->max_groups) {
        s->truncated = true;
        return false;
    }
    struct sb_store_usage_group *g = sb__vec_push(&s->groups);
    if (dims[s->q->group_by].bucket) {
        g->bucket_ms = sqlite3_column_int64(st, C_KEY); /* 0 for the total row */
    } else {
        const char *k = (const char *)sqlite3_column_text(st, C_KEY);
        g->key = k && *k ? sb_arena_strndup(s->a, k, strlen(k)) : NULL;
    }
    s->g = g;
    return true;
}

static void push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        *v = sb_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = x;
}

/* Adds row st to the open group. */
static void add_row(struct acc *s, sqlite3_stmt *st)
{
    struct sb_store_usage_group *g = s->g;
    const char *status = (const char *)sqlite3_column_text(st, C_STATUS);
    int64_t pt = sqlite3_column_int64(st, C_PROMPT), ct = sqlite3_column_int64(st, C_COMPLETION);
    int64_t ts = sqlite3_column_int64(st, C_TS);
    double ttft = sqlite3_column_double(st, C_TTFT);
    g->requests++;
    g->errors += status && strcmp(status, "error") == 0;
    g->cancelled += status && strcmp(status, "cancelled") == 0;
    g->prompt_tokens += pt > 0 ? pt : 0;
    g->completion_tokens += ct > 0 ? ct : 0;
    g->cost_usd += sqlite3_column_double(st, C_COST);
    if (g->requests == 1 || ts < g->first_ts)
        g->first_ts = ts;
    if (ts > g->last_ts)
        g->last_ts = ts;
    push(&s->lat, &s->nlat, &s->cap_lat, sqlite3_column_double(st, C_LATENCY));
    if (sqlite3_column_int(st, C_STREAMED) && ttft >= 0) {
        g->streamed++;
        push(&s->ttft, &s->nttft, &s->cap_ttft, ttft);
    }
}

static sb_err scan(sqlite3 *db, struct acc *s, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf head;
    sb_buf_init(&head, 0);
    sb_buf_printf(&head,
                  "%s, status, latency_ms, ttft_ms, streamed, prompt_tokens, completion_tokens,"
                  " cost_usd, ts",
                  dims[s->q->group_by].expr);
    bool ordered = s->q->group_by != SB_STORE_USAGE_BY_NONE;
    sb_err rc = prepare(db, s->q, head.p, ordered ? " ORDER BY 1" : "", &st, err);
    sb_buf_free(&head);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "usage report");
        } else if (s->g && same_group(s, st)) {
            add_row(s, st);
        } else if (open_group(s, st)) {
            add_row(s, st);
        } else {
            break; /* truncated: the first max_groups groups are complete */
        }
    }
    sqlite3_finalize(st);
    close_group(s);
    return rc;
}

/* Refuses a query no backend could answer. */
static sb_err check(const struct sb_store_usage_query *q, struct sb_error *err)
{
    if ((unsigned)q->group_by >= SB_STORE_USAGE_NBY)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "group_by", "unknown usage grouping %d",
                             (int)q->group_by);
    if (q->from_ms >= q->to_ms)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "from", "the window starts after it ends");
    return SB_OK;
}

sb_err sb__sq_usage_report(struct sb_store *s, const struct sb_store_usage_query *q,
                           struct sb_arena *a, struct sb_store_usage_report *out,
                           struct sb_error *err)
{
    struct acc acc = {.a = a, .q = q, .groups = {.size = sizeof(struct sb_store_usage_group)}};
    sqlite3 *db = sb__sq_db(s);
    int64_t rows = 0;
    memset(out, 0, sizeof(*out));
    acc.max_groups = q->max_groups ? q->max_groups : SB_STORE_USAGE_MAX_GROUPS;
    sb_err rc = check(q, err);
    /* One read transaction: the count and the scan see the same rows. */
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "BEGIN", err);
    if (rc == SB_OK)
        rc = count_rows(db, q, q->max_rows > 0 ? q->max_rows : SB_STORE_USAGE_MAX_ROWS, &rows, err);
    if (rc == SB_OK)
        rc = scan(db, &acc, err);
    sb__sq_rollback(db);
    if (rc == SB_OK && q->group_by == SB_STORE_USAGE_BY_NONE && acc.groups.n == 0)
        sb__vec_push(&acc.groups); /* the total of nothing: one row of zeros */
    free(acc.lat);
    free(acc.ttft);
    size_t n = acc.groups.n;
    struct sb_store_usage_group *g = sb__vec_to_arena(&acc.groups, a);
    if (rc == SB_OK)
        *out = (struct sb_store_usage_report){g, n, rows, acc.truncated};
    return rc;
}
