/* SPDX-License-Identifier: MIT */
/*
 * usage_report_test.c - usage analytics (sb_store_usage_report) over a real
 * SQLite file with hand-made usage rows: every grouping, every filter, the
 * window's edges, exact nearest-rank percentiles, TTFT over streamed rows
 * only, empty windows, the group bound and the row bound, and the index
 * migration 4 adds.
 */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "core/arena.h"
#include "store/store.h"
#include "store/usage.h"

static char path[64];
static struct sb_store *S; /* the store under test, open and migrated */
static struct sb_arena *A; /* results of the test */
static struct sb_error E;  /* the last error */

#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define T0 (20000 * DAY) /* a day boundary (2024-10-04T00:00Z) */

static int setup(void **state)
{
    char url[80];
    (void)state;
    sbt_db_new("usage", path, url);
    memset(&E, 0, sizeof(E));
    S = sbt_store_open(url, &E);
    A = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_store_close(S);
    sb_arena_free(A);
    sbt_db_remove(path);
    return 0;
}

/* One usage row: the columns a report reads; text fields "" = NULL. */
struct row {
    int64_t ts;
    const char *provider, *model, *user, *key, *route, *variant, *status;
    double latency, ttft; /* ttft < 0: not streamed */
    int64_t tokens;       /* prompt; completion is twice it; -1 unknown */
    double cost;
};

static void insert(const struct row *r, size_t n)
{
    struct sb_usage *u = calloc(n, sizeof(*u));
    for (size_t i = 0; i < n; i++) {
        snprintf(u[i].request_id, sizeof(u[i].request_id), "r-%zu-%lld", i, (long long)r[i].ts);
        u[i].ts_ms = r[i].ts;
        snprintf(u[i].provider, sizeof(u[i].provider), "%s", r[i].provider);
        snprintf(u[i].model, sizeof(u[i].model), "%s", r[i].model);
        snprintf(u[i].user_id, sizeof(u[i].user_id), "%s", r[i].user);
        snprintf(u[i].key_id, sizeof(u[i].key_id), "%s", r[i].key);
        snprintf(u[i].route, sizeof(u[i].route), "%s", r[i].route);
        snprintf(u[i].variant, sizeof(u[i].variant), "%s", r[i].variant);
        snprintf(u[i].status, sizeof(u[i].status), "%s", r[i].status);
        u[i].http_status = strcmp(r[i].status, "ok") == 0 ? 200 : 502;
        u[i].latency_ms = r[i].latency;
        u[i].ttft_ms = r[i].ttft;
        u[i].streamed = r[i].ttft >= 0;
        u[i].prompt_tokens = r[i].tokens;
        u[i].completion_tokens = r[i].tokens < 0 ? -1 : 2 * r[i].tokens;
        u[i].cost_usd = r[i].cost;
    }
    OK(sb_store_insert_usage(S, u, n, &E));
    free(u);
}

/* Eight rows over two days, two providers, three users (one the admin token). */
static const struct row fixture[] = {
    {T0 + 1000, "p", "m1", "alice", "1", "chat", "a", "ok", 100, -1, 10, 0.5},
    {T0 + 2000, "p", "m1", "alice", "1", "chat", "b", "error", 300, -1, -1, 0},
    {T0 + HOUR, "p", "m2", "bob", "2", "", "a", "ok", 200, 50, 20, 1.0},
    {T0 + HOUR + 5, "q", "m3", "bob", "2", "", "", "cancelled", 50, 40, 5, 0.25},
    {T0 + 3 * HOUR, "q", "m3", "", "", "", "", "ok", 400, 30, 1, 0.125},
    {T0 + DAY, "q", "m3", "alice", "3", "chat", "b", "ok", 600, 20, 2, 2.0},
    {T0 + DAY + HOUR, "p", "m1", "", "", "", "", "error", 700, -1, 0, 0},
    {T0 + 2 * DAY, "p", "m1", "alice", "1", "", "", "ok", 1, -1, 1, 1}, /* past the window */
};
#define NFIX (sizeof(fixture) / sizeof(fixture[0]))

static struct sb_store_usage_report report(struct sb_store_usage_query q)
{
    struct sb_store_usage_report r;
    if (q.to_ms == 0) {
        q.from_ms = T0;
        q.to_ms = T0 + 2 * DAY;
    }
    OK(sb_store_usage_report(S, &q, A, &r, &E));
    return r;
}

#define BY(g) ((struct sb_store_usage_query){.group_by = SB_STORE_USAGE_BY_##g})

static void test_total(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    struct sb_store_usage_report r = report(BY(NONE));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.rows, 7);
    assert_false(r.truncated);
    const struct sb_store_usage_group *g = &r.groups[0];
    assert_null(g->key);
    assert_int_equal(g->requests, 7);
    assert_int_equal(g->errors, 2);
    assert_int_equal(g->cancelled, 1);
    /* latencies 50 100 200 300 400 600 700: ranks ceil(3.5)=4, ceil(6.65)=7, 7 */
    assert_true(g->latency_p50_ms == 300);
    assert_true(g->latency_p95_ms == 700);
    assert_true(g->latency_p99_ms == 700);
    /* streamed with a first byte: 50 40 30 20 -> p50 = 2nd = 30, p95 = 4th = 50 */
    assert_int_equal(g->streamed, 4);
    assert_true(g->ttft_p50_ms == 30);
    assert_true(g->ttft_p95_ms == 50);
    assert_int_equal(g->prompt_tokens, 10 + 20 + 5 + 1 + 2 + 0);
    assert_int_equal(g->completion_tokens, 2 * 38);
    assert_true(g->cost_usd == 3.875);
    assert_int_equal(g->first_ts, T0 + 1000);
    assert_int_equal(g->last_ts, T0 + DAY + HOUR);
}

static void test_empty(void **state)
{
    (void)state;
    struct sb_store_usage_report r = report(BY(NONE));
    assert_int_equal(r.n, 1); /* the total of nothing is one row of zeros */
    assert_int_equal(r.rows, 0);
    assert_int_equal(r.groups[0].requests, 0);
    assert_true(r.groups[0].latency_p99_ms == 0);
    assert_int_equal(r.groups[0].first_ts, 0);
    r = report(BY(MODEL));
    assert_int_equal(r.n, 0);
    insert(fixture, NFIX);
    struct sb_store_usage_query q = BY(HOUR);
    q.from_ms = T0 + 5 * DAY;
    q.to_ms = T0 + 6 * DAY;
    r = report(q);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.rows, 0);
}

/* The keys of r, joined with ',' ("-" for a NULL key). */
static const char *keys(const struct sb_store_usage_report *r)
{
    static char out[256];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n && n < sizeof(out); i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "",
                              r->groups[i].key ? r->groups[i].key : "-");
    return out;
}

/* Requests per group, joined with ','. */
static const char *counts(const struct sb_store_usage_report *r)
{
    static char out[256];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n && n < sizeof(out); i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%lld", i ? "," : "",
                              (long long)r->groups[i].requests);
    return out;
}

static void test_group_by_columns(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    static const struct {
        enum sb_store_usage_by by;
        const char *keys, *counts;
    } cases[] = {
        {SB_STORE_USAGE_BY_PROVIDER, "p,q", "4,3"},
        {SB_STORE_USAGE_BY_MODEL, "m1,m2,m3", "3,1,3"},
        {SB_STORE_USAGE_BY_USER, "-,alice,bob", "2,3,2"}, /* NULL (admin token) first */
        {SB_STORE_USAGE_BY_KEY, "-,1,2,3", "2,2,2,1"},
        {SB_STORE_USAGE_BY_ROUTE, "-,chat", "4,3"},
        {SB_STORE_USAGE_BY_VARIANT, "-,a,b", "3,2,2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sb_store_usage_query q = {.group_by = cases[i].by};
        struct sb_store_usage_report r = report(q);
        assert_string_equal(keys(&r), cases[i].keys);
        assert_string_equal(counts(&r), cases[i].counts);
        assert_int_equal(r.rows, 7);
    }
    /* Per-group sums and percentiles: provider q has latencies 50 400 600. */
    struct sb_store_usage_report r = report(BY(PROVIDER));
    const struct sb_store_usage_group *q = &r.groups[1];
    assert_true(q->latency_p50_ms == 400 && q->latency_p95_ms == 600);
    assert_int_equal(q->cancelled, 1);
    assert_int_equal(q->errors, 0);
    assert_int_equal(q->streamed, 3);
    assert_true(q->ttft_p50_ms == 30 && q->ttft_p95_ms == 40);
    assert_int_equal(q->first_ts, T0 + HOUR + 5);
    assert_int_equal(q->last_ts, T0 + DAY);
    assert_int_equal(r.groups[0].streamed, 1);
    assert_true(r.groups[0].ttft_p95_ms == 50);
}

static void test_group_by_time(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    struct sb_store_usage_report r = report(BY(HOUR));
    assert_int_equal(r.n, 5);
    int64_t want[] = {T0, T0 + HOUR, T0 + 3 * HOUR, T0 + DAY, T0 + DAY + HOUR};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(r.groups[i].bucket_ms, want[i]);
        assert_null(r.groups[i].key);
    }
    assert_string_equal(counts(&r), "2,2,1,1,1");
    r = report(BY(DAY));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.groups[0].bucket_ms, T0);
    assert_int_equal(r.groups[1].bucket_ms, T0 + DAY);
    assert_string_equal(counts(&r), "5,2");
    assert_true(r.groups[1].latency_p50_ms == 600); /* 600, 700: the 1st of 2 */
    assert_true(r.groups[1].cost_usd == 2.0);
}

static void test_filters(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    static const struct {
        enum sb_store_usage_by dim; /* the filter's column */
        const char *value, *status;
        int64_t requests;
    } cases[] = {
        {SB_STORE_USAGE_BY_PROVIDER, "q", NULL, 3},
        {SB_STORE_USAGE_BY_MODEL, "m1", NULL, 3},
        {SB_STORE_USAGE_BY_USER, "alice", NULL, 3},
        {SB_STORE_USAGE_BY_KEY, "2", NULL, 2},
        {SB_STORE_USAGE_BY_ROUTE, "chat", NULL, 3},
        {SB_STORE_USAGE_BY_VARIANT, "b", NULL, 2},
        {SB_STORE_USAGE_BY_USER, "nobody", NULL, 0},
        {0, NULL, "ok", 4},
        {0, NULL, "error", 2},
        {0, NULL, "cancelled", 1},
        {SB_STORE_USAGE_BY_USER, "alice", "ok", 2},
        {SB_STORE_USAGE_BY_PROVIDER, "p", "error", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sb_store_usage_query q = {.status = cases[i].status};
        if (cases[i].dim)
            q.eq[cases[i].dim] = cases[i].value;
        struct sb_store_usage_report r = report(q);
        assert_int_equal(r.n, 1);
        if (r.groups[0].requests != cases[i].requests)
            fail_msg("case %zu: %lld requests, expected %lld", i, (long long)r.groups[0].requests,
                     (long long)cases[i].requests);
        assert_int_equal(r.rows, cases[i].requests);
    }
    /* Two filters and a grouping together: alice's rows per model. */
    struct sb_store_usage_query q = BY(MODEL);
    q.eq[SB_STORE_USAGE_BY_USER] = "alice";
    q.eq[SB_STORE_USAGE_BY_ROUTE] = "chat";
    struct sb_store_usage_report r = report(q);
    assert_string_equal(keys(&r), "m1,m3");
    assert_string_equal(counts(&r), "2,1");
    /* A value with SQL in it is a value, not SQL. */
    q = BY(NONE);
    q.eq[SB_STORE_USAGE_BY_MODEL] = "m1' OR '1'='1";
    assert_int_equal(report(q).groups[0].requests, 0);
}

static void test_window_edges(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    /* [from, to): a row at from counts, a row at to does not. */
    struct sb_store_usage_query q = {.from_ms = T0 + HOUR, .to_ms = T0 + DAY};
    struct sb_store_usage_report r = report(q);
    assert_int_equal(r.groups[0].requests, 3);
    q.to_ms = T0 + DAY + 1;
    assert_int_equal(report(q).groups[0].requests, 4);
    q.from_ms = q.to_ms;
    assert_int_equal(sb_store_usage_report(S, &q, A, &r, &E), SB_E_BAD_REQUEST);
    assert_string_equal(E.field, "from");
    q = (struct sb_store_usage_query){.from_ms = 0, .to_ms = 1, .group_by = SB_STORE_USAGE_NBY};
    assert_int_equal(sb_store_usage_report(S, &q, A, &r, &E), SB_E_BAD_REQUEST);
    assert_string_equal(E.field, "group_by");
}

/* 101 rows of one model: latencies 1..101 in a scrambled order. */
static void test_percentiles_exact(void **state)
{
    struct row rows[101];
    (void)state;
    for (int i = 0; i < 101; i++) {
        int v = (i * 37) % 101 + 1; /* 37 is prime to 101: a permutation of 1..101 */
        rows[i] =
            (struct row){T0 + i, "p", "m", "", "", "", "", "ok", v, i < 10 ? 10 - i : -1, 1, 0};
    }
    insert(rows, 101);
    struct sb_store_usage_report r = report(BY(NONE));
    const struct sb_store_usage_group *g = &r.groups[0];
    /* nearest rank: ceil(0.5 * 101) = 51, ceil(0.95 * 101) = 96, ceil(0.99 * 101) = 100 */
    assert_true(g->latency_p50_ms == 51);
    assert_true(g->latency_p95_ms == 96);
    assert_true(g->latency_p99_ms == 100);
    /* ttft 10..1 over the ten streamed rows: p50 = 5th = 5, p95 = 10th = 10 */
    assert_int_equal(g->streamed, 10);
    assert_true(g->ttft_p50_ms == 5);
    assert_true(g->ttft_p95_ms == 10);
    /* One row: every percentile is that row. */
    struct sb_store_usage_query q = {.from_ms = T0 + 3, .to_ms = T0 + 4};
    r = report(q);
    assert_true(r.groups[0].latency_p50_ms == 11 && r.groups[0].latency_p99_ms == 11);
    assert_true(r.groups[0].ttft_p50_ms == 7);
}

static void test_bounds(void **state)
{
    (void)state;
    insert(fixture, NFIX);
    struct sb_store_usage_query q = BY(HOUR);
    q.max_groups = 2;
    struct sb_store_usage_report r = report(q);
    assert_int_equal(r.n, 2);
    assert_true(r.truncated);
    assert_int_equal(r.groups[0].bucket_ms, T0); /* the first ones by key, complete */
    assert_int_equal(r.groups[1].requests, 2);
    q.max_groups = 5;
    r = report(q);
    assert_int_equal(r.n, 5);
    assert_false(r.truncated);
    /* Seven rows match: a bound of 6 refuses before reading, 7 answers. */
    q = BY(NONE);
    q.max_rows = 6;
    q.from_ms = T0;
    q.to_ms = T0 + 2 * DAY;
    assert_int_equal(sb_store_usage_report(S, &q, A, &r, &E), SB_E_BAD_REQUEST);
    assert_string_equal(E.field, "from");
    assert_non_null(strstr(E.msg, "would read 7 usage rows"));
    q.max_rows = 7;
    OK(sb_store_usage_report(S, &q, A, &r, &E));
    assert_int_equal(r.groups[0].requests, 7);
}

/* Usage rows have no index (migration 12): a window, here with a user, is a
 * range of row ids, as the report's WHERE clause writes it. */
static void test_window_is_id_range(void **state)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char plan[512] = "";
    (void)state;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM usage_logs"
                                        " WHERE id >= 1 AND id < 2 AND ts >= 1 AND ts < 2"
                                        " AND user_id = 'x'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        snprintf(plan + strlen(plan), sizeof(plan) - strlen(plan), "%s;",
                 (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    assert_non_null(strstr(plan, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"));
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index'"
                                        " AND tbl_name = 'usage_logs'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_total),
        T(test_empty),
        T(test_group_by_columns),
        T(test_group_by_time),
        T(test_filters),
        T(test_window_edges),
        T(test_percentiles_exact),
        T(test_bounds),
        T(test_window_is_id_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
