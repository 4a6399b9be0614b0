/* SPDX-License-Identifier: MIT */
/*
 * quota_test.c - migration 5's limit columns through store/quota.h: set,
 * read back, clear, refuse bad values with the field at fault, 404 for an
 * unknown key or user, load every row with a limit, and spend summed from
 * usage_logs by key or user since a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/identity.h"
#include "store/quota.h"
#include "store/store.h"
#include "store/usage.h"

static struct sb_store *s;
static struct sb_arena *a;
static int64_t key_id;

static int setup(void **state)
{
    struct sb_error err = {0};
    if (sb_store_open("sqlite::memory:", &s, &err) != SB_OK || sb_store_migrate(s, &err) != SB_OK)
        fail_msg("%s", err.msg);
    a = sb_arena_create(4096);
    struct sb_store_user u = {.username = "bob", .password_hash = "$argon2id$x", .role = "user"};
    struct sb_store_api_key k = {
        .name = "k",
        .key_hash = "sha256:0000000000000000000000000000000000000000000000000000000000000001",
        .key_prefix = "sk-sb-AbCd",
        .user_id = "bob"};
    if (sb_store_user_create(s, &u, NULL, &err) != SB_OK ||
        sb_store_key_create(s, &k, &key_id, &err) != SB_OK)
        fail_msg("%s", err.msg);
    return 0;
}

static int teardown(void **state)
{
    sb_store_close(s);
    sb_arena_free(a);
    return 0;
}

static void test_key_limits_round_trip(void **state)
{
    struct sb_error err = {0};
    struct sb_store_limits l = {
        .rpm = 60, .tpm = 100000, .budget_usd = 5.25, .budget_period = "day"};
    struct sb_store_limits out;
    assert_int_equal(sb_store_key_limits_set(s, key_id, &l, &err), SB_OK);
    assert_int_equal(sb_store_key_limits_get(s, key_id, a, &out, &err), SB_OK);
    assert_int_equal(out.rpm, 60);
    assert_int_equal(out.tpm, 100000);
    assert_true(out.budget_usd == 5.25);
    assert_string_equal(out.budget_period, "day");
    struct sb_store_limits none = {0};
    assert_int_equal(sb_store_key_limits_set(s, key_id, &none, &err), SB_OK);
    assert_int_equal(sb_store_key_limits_get(s, key_id, a, &out, &err), SB_OK);
    assert_int_equal(out.rpm, 0);
    assert_null(out.budget_period);
    assert_int_equal(sb_store_key_limits_set(s, 999, &l, &err), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_key_limits_get(s, 999, a, &out, &err), SB_E_NOT_FOUND);
}

static void expect_refused(struct sb_store_limits l, const char *field)
{
    struct sb_error err = {0};
    assert_int_equal(sb_store_key_limits_set(s, key_id, &l, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, field);
}

static void test_bad_limits_refused_with_field(void **state)
{
    expect_refused((struct sb_store_limits){.rpm = -1}, "rpm");
    expect_refused((struct sb_store_limits){.tpm = SB_STORE_LIMIT_MAX + 1}, "tpm");
    expect_refused((struct sb_store_limits){.budget_usd = -0.01}, "budget_usd");
    expect_refused((struct sb_store_limits){.budget_usd = 1}, "budget_period");
    expect_refused((struct sb_store_limits){.budget_usd = 1, .budget_period = "week"},
                   "budget_period");
}

static void test_user_limits_and_load_all(void **state)
{
    struct sb_error err = {0};
    struct sb_store_limits ul = {.rpm = 5, .budget_usd = 20, .budget_period = "month"};
    struct sb_store_limits kl = {.tpm = 777};
    struct sb_store_limits out;
    assert_int_equal(sb_store_user_limits_set(s, "bob", &ul, &err), SB_OK);
    assert_int_equal(sb_store_user_limits_set(s, "nobody", &ul, &err), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_user_limits_get(s, "bob", a, &out, &err), SB_OK);
    assert_int_equal(out.rpm, 5);
    assert_string_equal(out.budget_period, "month");
    assert_int_equal(sb_store_key_limits_set(s, key_id, &kl, &err), SB_OK);
    struct sb_store_limits_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(sb_store_limits_load_all(s, a, &rows, &n, &err), SB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].key_id, key_id);
    assert_null(rows[0].user);
    assert_int_equal(rows[0].l.tpm, 777);
    assert_string_equal(rows[1].user, "bob");
    assert_true(rows[1].l.budget_usd == 20);
    /* Deleting the user deletes their limits with the row (and their keys). */
    assert_int_equal(sb_store_user_delete(s, "bob", &err), SB_OK);
    assert_int_equal(sb_store_limits_load_all(s, a, &rows, &n, &err), SB_OK);
    assert_int_equal(n, 0);
}

static void row(struct sb_usage *u, const char *id, int64_t ts, const char *key, const char *user,
                double cost)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", id);
    snprintf(u->key_id, sizeof(u->key_id), "%s", key);
    snprintf(u->user_id, sizeof(u->user_id), "%s", user);
    snprintf(u->status, sizeof(u->status), "ok");
    u->ts_ms = ts;
    u->http_status = 200;
    u->cost_usd = cost;
}

static void test_spend_by_key_and_user(void **state)
{
    struct sb_error err = {0};
    struct sb_usage u[4];
    row(&u[0], "a", 1000, "7", "amy", 0.25);
    row(&u[1], "b", 2000, "7", "amy", 0.50);
    row(&u[2], "c", 500, "7", "amy", 9.00); /* before since */
    row(&u[3], "d", 3000, "", "zed", 1.00); /* no key */
    assert_int_equal(sb_store_insert_usage(s, u, 4, &err), SB_OK);
    struct sb_store_spend *sp = NULL;
    size_t n = 0;
    assert_int_equal(sb_store_spend(s, SB_SPEND_BY_KEY, NULL, 1000, a, &sp, &n, &err), SB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(sp[0].id, "7");
    assert_true(sp[0].cost_usd == 0.75);
    assert_int_equal(sp[0].requests, 2);
    assert_int_equal(sb_store_spend(s, SB_SPEND_BY_USER, NULL, 0, a, &sp, &n, &err), SB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(sp[0].id, "amy");
    assert_true(sp[0].cost_usd == 9.75);
    assert_string_equal(sp[1].id, "zed");
    assert_int_equal(sb_store_spend(s, SB_SPEND_BY_USER, "zed", 0, a, &sp, &n, &err), SB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sb_store_spend(s, SB_SPEND_BY_KEY, "8", 0, a, &sp, &n, &err), SB_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_limits_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_limits_refused_with_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_limits_and_load_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spend_by_key_and_user, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
