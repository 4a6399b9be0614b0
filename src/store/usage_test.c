/* SPDX-License-Identifier: MIT */
/*
 * usage_test.c - the usage writer against a real SQLite file: concurrent
 * submitters lose nothing, stop() flushes what is still queued, and a
 * failing store (a test double behind the same ops table) is counted,
 * not spun on. Audit records go through the same writer: stop() flushes
 * every one, interleaved with usage rows, with their strings intact (the
 * caller's buffers are reused right after submit), oversized JSON replaced,
 * and invalid fields repaired rather than losing their batch; usage rows
 * raise their keys' last_used_at.
 */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "store/identity.h"
#include "store/store.h"
#include "store/usage.h"

static char path[64];
static char url[80];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/sb-usage-XXXXXX");
    close(mkstemp(path));
    unlink(path);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    if (sb_store_open(url, &s, &err) != SB_OK || sb_store_migrate(s, &err) != SB_OK)
        fail_msg("%s", err.msg);
    sb_store_close(s);
    return 0;
}

static int teardown(void **state)
{
    char p[96];
    (void)state;
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    return 0;
}

static long long count_rows(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "SELECT COUNT(DISTINCT request_id) FROM usage_logs", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static struct sb_usage_writer *start(void)
{
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    struct sb_usage_writer *w = sb_usage_writer_start(s, &err);
    assert_non_null(w);
    return w;
}

static void fill(struct sb_usage *u, int thread, int i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "t%d-%d", thread, i);
    snprintf(u->status, sizeof(u->status), "ok");
    u->http_status = 200;
    u->ts_ms = 1700000000000LL + i;
    u->prompt_tokens = -1;
    u->completion_tokens = -1;
    u->ttft_ms = -1;
}

struct producer {
    struct sb_usage_writer *w;
    int id, n;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct sb_usage u;
    for (int i = 0; i < p->n; i++) {
        fill(&u, p->id, i);
        sb_usage_submit(p->w, &u);
    }
    return NULL;
}

static void test_four_threads(void **state)
{
    enum { THREADS = 4, EACH = 2500 };
    pthread_t t[THREADS];
    struct producer p[THREADS];
    (void)state;
    struct sb_usage_writer *w = start();
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct producer){w, i, EACH};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sb_usage_failed(w), 0);
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows(), THREADS * EACH);
}

static void test_stop_flushes_queue(void **state)
{
    enum { N = 30000 };
    struct sb_usage u;
    (void)state;
    struct sb_usage_writer *w = start();
    for (int i = 0; i < N; i++) {
        fill(&u, 9, i);
        sb_usage_submit(w, &u);
    }
    /* Most rows are certainly still queued here; stop must write them all. */
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows(), N);
    sb_usage_writer_stop(NULL);
}

static long long scalar(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_audit_flushed_on_stop(void **state)
{
    enum { N = 3000 };
    struct sb_usage u;
    char actor[32], target[32], before[64];
    char *huge = sb_xmalloc(70 * 1024);
    (void)state;
    memset(huge, 'x', 70 * 1024 - 1);
    huge[70 * 1024 - 1] = '\0';
    struct sb_usage_writer *w = start();
    for (int i = 0; i < N; i++) {
        snprintf(actor, sizeof(actor), "user%d", i);
        snprintf(target, sizeof(target), "key-%d", i);
        snprintf(before, sizeof(before), "{\"n\":%d}", i);
        struct sb_audit a = {.actor = actor,
                             .actor_role = "user",
                             .action = "key.create",
                             .target_type = "key",
                             .target_id = target,
                             .before = before,
                             .after = i == 7 ? huge : NULL,
                             .outcome = i % 2 ? "ok" : "denied"};
        sb_usage_submit_audit(w, &a);
        memset(actor, '?', sizeof(actor) - 1); /* the writer must have copied */
        fill(&u, 3, i);
        sb_usage_submit(w, &u);
    }
    /* repaired, not refused: no actor, no action, an unknown outcome */
    struct sb_audit odd = {.outcome = "perhaps"};
    sb_usage_submit_audit(w, &odd);
    sb_usage_writer_stop(w);
    free(huge);
    assert_int_equal(count_rows(), N);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log"), N + 1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'user1234' AND"
                            " target_id = 'key-1234' AND before_json = '{\"n\":1234}'"
                            " AND outcome = 'denied'"),
                     1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'user7' AND"
                            " after_json = '{\"truncated\":true}'"),
                     1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'unknown' AND"
                            " action = 'unknown' AND outcome = 'failed'"),
                     1);
}

static void test_usage_touches_keys(void **state)
{
    struct sb_usage u;
    struct sb_error err = {0};
    struct sb_store *s = NULL;
    int64_t id = 0;
    (void)state;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    struct sb_store_api_key k = {.name = "k",
                                 .key_hash = "sha256:00000000000000000000000000000000000000000000"
                                             "00000000000000000000",
                                 .key_prefix = "sk-sb-AAAA"};
    assert_int_equal(sb_store_key_create(s, &k, &id, &err), SB_OK);
    sb_store_close(s);
    struct sb_usage_writer *w = start();
    for (int i = 0; i < 5; i++) {
        fill(&u, 4, i);
        snprintf(u.key_id, sizeof(u.key_id), "%lld", (long long)id);
        u.ts_ms = 1700000000000LL + 100 * i;
        sb_usage_submit(w, &u);
    }
    fill(&u, 4, 99);
    snprintf(u.key_id, sizeof(u.key_id), "not-a-number");
    sb_usage_submit(w, &u);
    sb_usage_writer_stop(w);
    assert_int_equal(scalar("SELECT last_used_at FROM api_keys"), 1700000000400LL);
}

/* ---- a store that always fails ---- */

struct failing {
    struct sb_store base;
    int *calls; /* insert attempts, checked by the test */
};

static sb_err fail_insert(struct sb_store *s, const struct sb_usage *rows, size_t n,
                          struct sb_error *err)
{
    (void)rows;
    (void)n;
    (*((struct failing *)s)->calls)++;
    return sb_fail(err, SB_E_STORE, "disk on fire");
}

static void fail_close(struct sb_store *s)
{
    free(s);
}

static const struct sb_store_ops failing_ops = {
    .name = "failing", .insert_usage = fail_insert, .close = fail_close};

static void test_failing_store(void **state)
{
    int calls = 0;
    struct sb_error err = {0};
    struct sb_usage u;
    (void)state;
    struct failing *f = sb_xcalloc(1, sizeof(*f));
    f->base.ops = &failing_ops;
    f->calls = &calls;
    struct sb_usage_writer *w = sb_usage_writer_start(&f->base, &err);
    for (int i = 0; i < 10; i++) {
        fill(&u, 1, i);
        sb_usage_submit(w, &u);
    }
    while (sb_usage_failed(w) + sb_usage_written(w) < 10)
        usleep(1000);
    assert_int_equal(sb_usage_failed(w), 10);
    assert_int_equal(sb_usage_written(w), 0);
    sb_usage_writer_stop(w);
    assert_true(calls >= 3); /* retried, then given up */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_flushes_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_flushed_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_touches_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
