/* SPDX-License-Identifier: MIT */
/*
 * sqlite_stats.c - provider statistics from usage_logs (GET /api/providers/stats).
 *
 * Percentiles are computed here, not in SQL: neither SQLite nor portable SQL
 * has percentile_cont, so the query returns each provider's latencies in
 * order and we take the nearest rank. The window bounds the rows read
 * (usage_logs is indexed on ts); one provider's latencies are held at a time.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/sqlite_int.h"
#include "store/store.h"

/* The running group: one provider's rows, latencies ascending. */
struct stats_acc {
    struct sb_store_provider_stats *out; /* one per provider, zeroed */
    size_t n;
    struct sb_store_provider_stats *cur; /* the group being summed, NULL = skip its rows */
    char *cur_name;                      /* owned */
    double *lat;                         /* heap, this group's latencies */
    size_t nlat, cap;
};

/* Nearest rank: the smallest value with at least p of the rows at or below it. */
static double rank(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p * (double)n);
    return v[r ? r - 1 : 0];
}

static void close_group(struct stats_acc *s)
{
    if (s->cur) {
        s->cur->latency_p50_ms = rank(s->lat, s->nlat, 0.50);
        s->cur->latency_p95_ms = rank(s->lat, s->nlat, 0.95);
    }
    free(s->cur_name);
    s->cur_name = NULL;
    s->cur = NULL;
    s->nlat = 0;
}

/* Starts the group of provider name (rows of a deleted provider are skipped). */
static void open_group(struct stats_acc *s, const char *name)
{
    close_group(s);
    s->cur_name = sb_xstrdup(name);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->out[i].provider, name) == 0)
            s->cur = &s->out[i];
}

static sb_err stats_row(void *ud, sqlite3_stmt *st, struct sb_error *err)
{
    struct stats_acc *s = ud;
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 1);
    (void)err;
    if (!s->cur_name || strcmp(s->cur_name, name) != 0)
        open_group(s, name);
    if (!s->cur)
        return SB_OK;
    struct sb_store_provider_stats *o = s->cur;
    int64_t pt = sqlite3_column_int64(st, 3), ct = sqlite3_column_int64(st, 4);
    o->requests++;
    o->errors += !status || strcmp(status, "ok") != 0;
    o->prompt_tokens += pt > 0 ? pt : 0;
    o->completion_tokens += ct > 0 ? ct : 0;
    o->cost_usd += sqlite3_column_double(st, 5);
    if (s->nlat == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->lat = sb_xrealloc(s->lat, s->cap * sizeof(*s->lat));
    }
    s->lat[s->nlat++] = sqlite3_column_double(st, 2);
    return SB_OK;
}

/* One zeroed row per provider (or only `provider`), ordered by identifier. */
static sb_err stats_rows(struct sb_store *s, const char *provider, struct sb_arena *a,
                         struct stats_acc *acc, struct sb_error *err)
{
    struct sb_store_provider *ps = NULL, one;
    struct sb_store_page page = {0};
    sb_err rc = SB_OK;
    if (provider) {
        rc = sb__sq_provider_get(s, provider, a, &one, err);
        ps = &one;
        page.n = 1;
    } else {
        rc = sb__sq_provider_list(s, NULL, a, &ps, &page, err);
    }
    if (rc != SB_OK)
        return rc;
    acc->n = page.n;
    acc->out = sb_arena_calloc(a, (page.n ? page.n : 1) * sizeof(*acc->out));
    for (size_t i = 0; i < page.n; i++)
        acc->out[i].provider = ps[i].id;
    return SB_OK;
}

static sb_err stats_query(sqlite3 *db, const char *provider, int64_t from_ms, int64_t to_ms,
                          struct stats_acc *acc, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db,
        "SELECT provider, status, latency_ms, prompt_tokens, completion_tokens, cost_usd"
        " FROM usage_logs WHERE id >= ?4 AND id < ?5 AND ts >= ?1 AND ts < ?2"
        " AND provider IS NOT NULL AND (?3 IS NULL OR provider = ?3) ORDER BY provider, latency_ms",
        &st, err);
    if (rc != SB_OK)
        return rc;
    int64_t lo, hi;
    sb__sq_usage_ids(from_ms, to_ms, &lo, &hi);
    sqlite3_bind_int64(st, 1, from_ms);
    sqlite3_bind_int64(st, 2, to_ms);
    sb__sq_bind_str(st, 3, provider);
    sqlite3_bind_int64(st, 4, lo);
    sqlite3_bind_int64(st, 5, hi);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step == SQLITE_ROW)
            rc = stats_row(acc, st, err);
        else
            rc = sb__sq_fail(db, err, "provider stats");
    }
    sqlite3_finalize(st);
    close_group(acc);
    return rc;
}

sb_err sb__sq_provider_stats(struct sb_store *s, const char *provider, int64_t from_ms,
                             int64_t to_ms, struct sb_arena *a,
                             struct sb_store_provider_stats **out, size_t *n, struct sb_error *err)
{
    struct stats_acc acc = {0};
    sqlite3 *db = sb__sq_db(s);
    *out = NULL;
    *n = 0;
    if (from_ms > to_ms)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "from", "the window starts after it ends");
    /* One read transaction: the provider list and the usage rows agree. */
    sb_err rc = sb__sq_exec(db, "BEGIN", err);
    if (rc == SB_OK)
        rc = stats_rows(s, provider, a, &acc, err);
    if (rc == SB_OK)
        rc = stats_query(db, provider, from_ms, to_ms, &acc, err);
    sb__sq_rollback(db);
    free(acc.lat);
    if (rc == SB_OK) {
        *out = acc.out;
        *n = acc.n;
    }
    return rc;
}
