/* SPDX-License-Identifier: MIT */
/*
 * experiment_store_test.c - A/B experiments and feedback in a real SQLite
 * file: create/get/list/update/delete, every validation rule, conflicts,
 * the registry_version bump and sb_store_load, feedback insert and replace,
 * the request lookup, and ratings per variant joined on request_id within a
 * window (one experiment's rows only).
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
#include "store/store.h"
#include "store/usage.h"

static char path[64];
static struct sb_store *S; /* open and migrated */
static struct sb_arena *A;
static struct sb_error E;

static int setup(void **state)
{
    char url[80];
    sbt_db_new("exp", path, url);
    memset(&E, 0, sizeof(E));
    S = sbt_store_open(url, &E);
    A = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    sb_store_close(S);
    sb_arena_free(A);
    sbt_db_remove(path);
    return 0;
}

static struct sb_store_variant two[] = {{"control", "m1", 70}, {"treat", "r1", 30}};

static int64_t version(void)
{
    int64_t v = 0;
    OK(sb_store_registry_version(S, &v, &E));
    return v;
}

static void test_crud(void **state)
{
    struct sb_store_experiment x = {
        .id = "exp1", .description = "d", .variants = two, .nvariants = 2};
    struct sb_store_experiment got, *list = NULL;
    struct sb_store_page page;
    int64_t v0 = version();
    OK(sb_store_experiment_create(S, &x, &E));
    assert_true(version() > v0); /* the snapshot carries experiments */
    OK(sb_store_experiment_get(S, "exp1", A, &got, &E));
    assert_string_equal(got.name, "exp1"); /* name defaults to the id */
    assert_string_equal(got.status, "active");
    assert_string_equal(got.description, "d");
    assert_int_equal(got.nvariants, 2);
    assert_string_equal(got.variants[1].name, "treat");
    assert_string_equal(got.variants[1].target, "r1");
    assert_int_equal(got.variants[0].weight, 70);
    assert_true(got.created_at > 0 && got.updated_at == got.created_at);
    assert_int_equal(sb_store_experiment_create(S, &x, &E), SB_E_CONFLICT);
    assert_string_equal(E.field, "id");
    x.id = "exp0";
    OK(sb_store_experiment_create(S, &x, &E));
    struct sb_store_filter f = {.limit = 1, .offset = 1};
    OK(sb_store_experiment_list(S, &f, A, &list, &page, &E));
    assert_int_equal(page.total, 2);
    assert_int_equal(page.n, 1);
    assert_string_equal(list[0].id, "exp1"); /* by identifier: exp0, exp1 */
    struct sb_store_filter bad = {.provider = "p"};
    assert_int_equal(sb_store_experiment_list(S, &bad, A, &list, &page, &E), SB_E_BAD_REQUEST);
    /* update: everything but the id and created_at */
    struct sb_store_variant one[] = {{"solo", "m2", 1}};
    struct sb_store_experiment u = {
        .name = "N", .status = "paused", .variants = one, .nvariants = 1};
    OK(sb_store_experiment_update(S, "exp1", &u, &E));
    OK(sb_store_experiment_get(S, "exp1", A, &got, &E));
    assert_string_equal(got.status, "paused");
    assert_string_equal(got.name, "N");
    assert_null(got.description);
    assert_int_equal(got.nvariants, 1);
    u.id = "other";
    assert_int_equal(sb_store_experiment_update(S, "exp1", &u, &E), SB_E_BAD_REQUEST);
    u.id = NULL;
    assert_int_equal(sb_store_experiment_update(S, "nope", &u, &E), SB_E_NOT_FOUND);
    /* load carries them, for the snapshot */
    struct sb_store_entities *e = NULL;
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->nexperiments, 2);
    assert_string_equal(e->experiments[1].variants[0].name, "solo");
    sb_store_entities_free(e);
    OK(sb_store_experiment_delete(S, "exp0", &E));
    OK(sb_store_experiment_delete(S, "exp1", &E));
    assert_int_equal(sb_store_experiment_delete(S, "exp1", &E), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_experiment_get(S, "exp1", A, &got, &E), SB_E_NOT_FOUND);
}

/* Each bad experiment and the field its error names. */
static void test_rules(void **state)
{
    struct sb_store_variant dup[] = {{"a", "m", 1}, {"a", "m", 1}};
    struct sb_store_variant neg[] = {{"a", "m", -1}, {"b", "m", 2}};
    struct sb_store_variant zero[] = {{"a", "m", 0}, {"b", "m", 0}};
    struct sb_store_variant space[] = {{"a b", "m", 1}};
    struct sb_store_variant long_name[] = {{"abcdefghijklmnopqrstuvwxyz012345", "m", 1}};
    struct sb_store_variant no_target[] = {{"a", "", 1}};
    struct sb_store_variant no_name[] = {{NULL, "m", 1}};
    struct sb_store_variant huge[] = {{"a", "m", INT64_MAX}, {"b", "m", INT64_MAX}};
    struct sb_store_variant many[17];
    for (size_t i = 0; i < 17; i++)
        many[i] = (struct sb_store_variant){"v", "m", 1};
    const struct {
        struct sb_store_experiment x;
        const char *field;
    } cases[] = {
        {{.id = "e", .variants = dup, .nvariants = 2}, "variants"},
        {{.id = "e", .variants = neg, .nvariants = 2}, "variants"},
        {{.id = "e", .variants = zero, .nvariants = 2}, "variants"},
        {{.id = "e", .variants = space, .nvariants = 1}, "variants"},
        {{.id = "e", .variants = long_name, .nvariants = 1}, "variants"},
        {{.id = "e", .variants = no_target, .nvariants = 1}, "variants"},
        {{.id = "e", .variants = no_name, .nvariants = 1}, "variants"},
        {{.id = "e", .variants = huge, .nvariants = 2}, "variants"},
        {{.id = "e", .variants = many, .nvariants = 17}, "variants"},
        {{.id = "e", .variants = two, .nvariants = 0}, "variants"},
        {{.id = "e", .status = "running", .variants = two, .nvariants = 2}, "status"},
        {{.id = "bad id", .variants = two, .nvariants = 2}, "id"},
        {{.id = "", .variants = two, .nvariants = 2}, "id"},
        {{.id = NULL, .variants = two, .nvariants = 2}, "id"},
        {{.id = "0123456789012345678901234567890123456789012345678901234567890123",
          .variants = two,
          .nvariants = 2},
         "id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&E, 0, sizeof(E));
        if (sb_store_experiment_create(S, &cases[i].x, &E) != SB_E_BAD_REQUEST)
            fail_msg("case %zu: expected a 400, got %d", i, (int)E.code);
        if (strcmp(E.field, cases[i].field) != 0)
            fail_msg("case %zu: field %s, want %s (%s)", i, E.field, cases[i].field, E.msg);
    }
    struct sb_store_experiment max_id = {
        .id = "012345678901234567890123456789012345678901234567890123456789012",
        .variants = two,
        .nvariants = 2}; /* 63: the longest id usage_logs.route holds */
    OK(sb_store_experiment_create(S, &max_id, &E));
    OK(sb_store_experiment_delete(S, max_id.id, &E));
}

/* Usage rows: request id, route, variant, user, ts. */
static void usage(const char *id, const char *route, const char *variant, const char *user,
                  int64_t ts)
{
    struct sb_usage u = {.ts_ms = ts, .http_status = 200, .latency_ms = 1, .ttft_ms = -1};
    snprintf(u.request_id, sizeof(u.request_id), "%s", id);
    snprintf(u.route, sizeof(u.route), "%s", route);
    snprintf(u.variant, sizeof(u.variant), "%s", variant);
    snprintf(u.user_id, sizeof(u.user_id), "%s", user);
    snprintf(u.status, sizeof(u.status), "ok");
    OK(sb_store_insert_usage(S, &u, 1, &E));
}

static void rate(const char *id, int64_t rating, bool want_created)
{
    struct sb_store_feedback f = {.request_id = id, .rating = rating, .user = "u"};
    bool created = !want_created;
    OK(sb_store_feedback_put(S, &f, &created, &E));
    assert_int_equal(created, want_created);
}

static void test_feedback_and_ratings(void **state)
{
    struct sb_store_request_ref ref;
    usage("q1", "ex", "a", "ann", 1000);
    usage("q2", "ex", "a", "", 2000);
    usage("q3", "ex", "b", "bob", 3000);
    usage("q4", "ex", "b", "bob", 9000); /* outside the window below */
    usage("q5", "other", "a", "ann", 1500);
    usage("q6", "ex", "", "", 1600); /* no variant (paused) */
    OK(sb_store_request_ref(S, "q1", A, &ref, &E));
    assert_string_equal(ref.user, "ann");
    assert_string_equal(ref.route, "ex");
    assert_string_equal(ref.variant, "a");
    OK(sb_store_request_ref(S, "q2", A, &ref, &E));
    assert_null(ref.user); /* the admin token's request */
    assert_int_equal(sb_store_request_ref(S, "nope", A, &ref, &E), SB_E_NOT_FOUND);
    assert_string_equal(E.field, "request_id");

    rate("q1", -1, true);
    rate("q1", 1, false); /* replaced */
    rate("q2", 0, true);
    rate("q3", -1, true);
    rate("q4", 1, true);
    rate("q5", -1, true);
    rate("q6", 1, true);
    struct sb_store_feedback bad = {.request_id = "q1", .rating = 2};
    bool created;
    assert_int_equal(sb_store_feedback_put(S, &bad, &created, &E), SB_E_BAD_REQUEST);
    assert_string_equal(E.field, "rating");
    bad = (struct sb_store_feedback){.request_id = "", .rating = 0};
    assert_int_equal(sb_store_feedback_put(S, &bad, &created, &E), SB_E_BAD_REQUEST);

    struct sb_store_rating_stats *r = NULL;
    size_t n = 0;
    OK(sb_store_experiment_ratings(S, "ex", 0, 5000, A, &r, &n, &E));
    assert_int_equal(n, 3); /* NULL (q6), a, b */
    assert_null(r[0].variant);
    assert_int_equal(r[0].n, 1);
    assert_string_equal(r[1].variant, "a");
    assert_int_equal(r[1].n, 2); /* q1 (1, its latest) and q2 (0) */
    assert_true(r[1].sum == 1 && r[1].sumsq == 1);
    assert_string_equal(r[2].variant, "b");
    assert_int_equal(r[2].n, 1); /* q3; q4 is outside [0, 5000) */
    assert_true(r[2].sum == -1 && r[2].sumsq == 1);
    OK(sb_store_experiment_ratings(S, "none", 0, 5000, A, &r, &n, &E));
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_feedback_and_ratings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
