/* SPDX-License-Identifier: MIT */
/*
 * batch_store_test.c - batch jobs in a real SQLite file (store/batch.h):
 * a job created whole with its lines and counters, leases (one runner at a
 * time, taken over only once a lease runs out, given back on release),
 * results recorded once under the lease and never counted twice, pending
 * lines in order, cancel and delete by status, results paging, and lists
 * per creator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "core/arena.h"
#include "store/batch.h"
#include "store/store.h"

static char path[64];
static struct sb_store *S;
static struct sb_arena *A;
static struct sb_error E;

static int setup(void **state)
{
    char url[80];
    (void)state;
    sbt_db_new("batch", path, url);
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

/* Job id with 5 lines; line 3 refused at creation. */
static void make_job(const char *id, const char *by)
{
    struct sb_store_batch b = {.id = id,
                               .created_by = by,
                               .run_as = "admin",
                               .endpoint = "/v1/chat/completions",
                               .concurrency = 2,
                               .created_at = 1000};
    struct sb_store_batch_line l[5];
    for (int i = 0; i < 5; i++)
        l[i] = (struct sb_store_batch_line){.line = i + 1,
                                            .custom_id = i == 0 ? "first" : NULL,
                                            .endpoint = "/v1/chat/completions",
                                            .body = "{\"model\":\"m\"}"};
    l[2].body = NULL;
    l[2].result = "{\"error\":\"refused\"}";
    l[2].failed = true;
    OK(sb_store_batch_create(S, &b, l, 5, &E));
}

static struct sb_store_batch get(const char *id)
{
    struct sb_store_batch b;
    OK(sb_store_batch_get(S, id, A, &b, &E));
    return b;
}

static void test_create_and_read(void **state)
{
    (void)state;
    make_job("batch_a", "ann");
    struct sb_store_batch b = get("batch_a");
    assert_string_equal(b.status, "queued");
    assert_int_equal(b.total, 5);
    assert_int_equal(b.failed, 1);
    assert_int_equal(b.completed, 0);
    assert_int_equal(b.created_at, 1000);
    assert_null(b.model);
    assert_int_equal(sb_store_batch_create(S, &b, NULL, 0, &E), SB_E_CONFLICT); /* same id */
    assert_int_equal(sb_store_batch_get(S, "batch_none", A, &b, &E), SB_E_NOT_FOUND);
    struct sb_store_batch_line *ls = NULL;
    size_t n = 0;
    OK(sb_store_batch_pending(S, "batch_a", 0, 10, A, &ls, &n, &E));
    assert_int_equal(n, 4);
    assert_int_equal(ls[0].line, 1);
    assert_string_equal(ls[0].custom_id, "first");
    assert_string_equal(ls[0].body, "{\"model\":\"m\"}");
    assert_int_equal(ls[2].line, 4); /* line 3 already has its result */
    OK(sb_store_batch_pending(S, "batch_a", 2, 1, A, &ls, &n, &E));
    assert_int_equal(n, 1);
    assert_int_equal(ls[0].line, 4);
    OK(sb_store_batch_results(S, "batch_a", 0, 10, A, &ls, &n, &E));
    assert_int_equal(n, 1);
    assert_string_equal(ls[0].result, "{\"error\":\"refused\"}");
}

static void test_leases(void **state)
{
    (void)state;
    struct sb_store_batch *held = NULL;
    size_t n = 0;
    make_job("batch_l", "ann");
    OK(sb_store_batch_claim(S, "r1", 10000, 20000, 16, A, &held, &n, &E));
    assert_int_equal(n, 1);
    assert_string_equal(held[0].status, "in_progress");
    assert_int_equal(held[0].started_at, 10000);
    OK(sb_store_batch_claim(S, "r2", 15000, 20000, 16, A, &held, &n, &E));
    assert_int_equal(n, 0); /* r1's lease runs until 30000 */
    /* r2 may not write r1's job */
    struct sb_store_batch_line done = {.line = 1, .result = "{\"ok\":1}"};
    assert_int_equal(sb_store_batch_record(S, "batch_l", "r2", &done, 1, 0, &E), SB_E_CONFLICT);
    OK(sb_store_batch_record(S, "batch_l", "r1", &done, 1, 1, &E));
    OK(sb_store_batch_record(S, "batch_l", "r1", &done, 1, 0, &E)); /* again: not counted twice */
    struct sb_store_batch b = get("batch_l");
    assert_int_equal(b.completed, 1);
    assert_int_equal(b.in_flight, 0);
    /* the lease ran out: r2 takes it, keeps started_at; r1 can no longer write */
    OK(sb_store_batch_claim(S, "r2", 31000, 20000, 16, A, &held, &n, &E));
    assert_int_equal(n, 1);
    assert_int_equal(held[0].started_at, 10000);
    struct sb_store_batch_line d2 = {.line = 2, .result = "{\"ok\":2}"};
    assert_int_equal(sb_store_batch_record(S, "batch_l", "r1", &d2, 1, 0, &E), SB_E_CONFLICT);
    /* released: anyone takes it at once */
    OK(sb_store_batch_release(S, "r2", &E));
    OK(sb_store_batch_claim(S, "r3", 31001, 20000, 16, A, &held, &n, &E));
    assert_int_equal(n, 1);
    assert_int_equal(sb_store_batch_finish(S, "batch_l", "r2", "completed", NULL, 32000, &E),
                     SB_E_CONFLICT);
    OK(sb_store_batch_finish(S, "batch_l", "r3", "completed", NULL, 32000, &E));
    b = get("batch_l");
    assert_string_equal(b.status, "completed");
    assert_int_equal(b.finished_at, 32000);
    OK(sb_store_batch_claim(S, "r3", 33000, 20000, 16, A, &held, &n, &E));
    assert_int_equal(n, 0); /* a finished job is never leased again */
}

static void test_cancel_delete_list(void **state)
{
    (void)state;
    make_job("batch_c", "bob");
    make_job("batch_d", "ann");
    assert_int_equal(sb_store_batch_delete(S, "batch_c", &E), SB_E_CONFLICT); /* may still run */
    OK(sb_store_batch_cancel(S, "batch_c", 5000, &E));
    OK(sb_store_batch_cancel(S, "batch_c", 6000, &E)); /* again: fine */
    struct sb_store_batch b = get("batch_c");
    assert_string_equal(b.status, "cancelling");
    assert_int_equal(b.cancelled_at, 5000);
    struct sb_store_batch *held = NULL, *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    OK(sb_store_batch_claim(S, "r1", 7000, 20000, 16, A, &held, &n, &E)); /* cancelling is leased */
    assert_int_equal(n, 2);
    OK(sb_store_batch_finish(S, "batch_c", "r1", "cancelled", NULL, 8000, &E));
    assert_int_equal(sb_store_batch_cancel(S, "batch_c", 9000, &E), SB_OK); /* already cancelled */
    OK(sb_store_batch_finish(S, "batch_d", "r1", "failed", "owner gone", 8000, &E));
    assert_int_equal(sb_store_batch_cancel(S, "batch_d", 9000, &E), SB_E_CONFLICT);
    OK(sb_store_batch_list(S, "bob", 10, 0, A, &list, &n, &total, &E));
    assert_int_equal(total, 1);
    assert_string_equal(list[0].id, "batch_c");
    OK(sb_store_batch_list(S, NULL, 1, 0, A, &list, &n, &total, &E));
    assert_int_equal(total, 2);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "batch_d"); /* newest first */
    OK(sb_store_batch_delete(S, "batch_c", &E));
    assert_int_equal(sb_store_batch_get(S, "batch_c", A, &b, &E), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_batch_delete(S, "batch_c", &E), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_batch_finish(S, "batch_d", "r1", "queued", NULL, 1, &E),
                     SB_E_INTERNAL); /* not a final status */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_delete_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
