/* SPDX-License-Identifier: MIT */
/*
 * limiter_test.c - the login attempt limit: blocks at max failures inside
 * the window, says how long to wait, forgets at the window's end and on
 * reset, keeps keys apart, and stays bounded under a flood of keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "api/internal.h"

#define T0 1700000000000LL

static void test_blocks_at_max(void **state)
{
    struct sb__api_limiter *l = sb__api_limiter_create();
    int64_t retry = -1;
    (void)state;
    for (int i = 0; i < 4; i++) {
        sb__api_limiter_fail(l, "u:alice", T0 + i * 1000);
        assert_false(sb__api_limiter_blocked(l, "u:alice", 5, T0 + i * 1000, &retry));
        assert_int_equal(retry, 0);
    }
    sb__api_limiter_fail(l, "u:alice", T0 + 4000);
    assert_true(sb__api_limiter_blocked(l, "u:alice", 5, T0 + 4000, &retry));
    /* the window began at the first failure: 15 min minus 4 s */
    assert_int_equal(retry, SB_LOGIN_WINDOW_MS / 1000 - 4);
    /* another key is unaffected */
    assert_false(sb__api_limiter_blocked(l, "u:bob", 5, T0 + 4000, &retry));
    /* a prefix of the key is another key */
    assert_false(sb__api_limiter_blocked(l, "u:alic", 5, T0 + 4000, &retry));
    sb__api_limiter_free(l);
}

static void test_window_ends(void **state)
{
    struct sb__api_limiter *l = sb__api_limiter_create();
    int64_t retry = 0;
    (void)state;
    for (int i = 0; i < 5; i++)
        sb__api_limiter_fail(l, "c:10.0.0.1", T0);
    assert_true(sb__api_limiter_blocked(l, "c:10.0.0.1", 5, T0 + SB_LOGIN_WINDOW_MS - 1, &retry));
    assert_int_equal(retry, 1);
    assert_false(sb__api_limiter_blocked(l, "c:10.0.0.1", 5, T0 + SB_LOGIN_WINDOW_MS, &retry));
    /* a failure after the window starts a new count at 1 */
    sb__api_limiter_fail(l, "c:10.0.0.1", T0 + SB_LOGIN_WINDOW_MS);
    assert_false(sb__api_limiter_blocked(l, "c:10.0.0.1", 2, T0 + SB_LOGIN_WINDOW_MS, &retry));
    sb__api_limiter_free(l);
}

static void test_reset(void **state)
{
    struct sb__api_limiter *l = sb__api_limiter_create();
    int64_t retry = 0;
    (void)state;
    for (int i = 0; i < 5; i++)
        sb__api_limiter_fail(l, "u:carol", T0);
    assert_true(sb__api_limiter_blocked(l, "u:carol", 5, T0, &retry));
    sb__api_limiter_reset(l, "u:carol");
    assert_false(sb__api_limiter_blocked(l, "u:carol", 5, T0, &retry));
    sb__api_limiter_free(l);
}

/* More keys than slots: the table stays bounded and the newest keys count. */
static void test_flood_evicts_oldest(void **state)
{
    struct sb__api_limiter *l = sb__api_limiter_create();
    char key[32];
    int64_t retry = 0;
    (void)state;
    for (int i = 0; i < 3; i++)
        sb__api_limiter_fail(l, "u:victim", T0);
    for (int i = 0; i < SB_LIMITER_SLOTS; i++) {
        snprintf(key, sizeof(key), "u:flood%d", i);
        sb__api_limiter_fail(l, key, T0 + 1 + i);
    }
    /* the oldest window (the victim's) was evicted to make room */
    sb__api_limiter_fail(l, "u:victim", T0 + SB_LIMITER_SLOTS + 1);
    assert_false(sb__api_limiter_blocked(l, "u:victim", 2, T0 + SB_LIMITER_SLOTS + 1, &retry));
    /* the newest flood keys are still counted */
    snprintf(key, sizeof(key), "u:flood%d", SB_LIMITER_SLOTS - 1);
    assert_true(sb__api_limiter_blocked(l, key, 1, T0 + SB_LIMITER_SLOTS + 1, &retry));
    sb__api_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_at_max),
        cmocka_unit_test(test_window_ends),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_flood_evicts_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
