/* SPDX-License-Identifier: MIT */
/*
 * arena_test.c - arena, bounded buffer and slice helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

static void arena_alignment_and_big_blocks(void **state)
{
    struct sb_arena *a = sb_arena_create(1024);
    for (int i = 0; i < 1000; i++) {
        void *p = sb_arena_alloc(a, (size_t)(i % 37) + 1);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        memset(p, 0xab, (size_t)(i % 37) + 1);
    }
    char *big = sb_arena_alloc(a, 100000); /* its own block */
    memset(big, 1, 100000);
    char *small = sb_arena_strndup(a, "hello", 5);
    assert_string_equal(small, "hello");
    assert_true(sb_arena_used(a) >= 100000);
    sb_arena_free(a);
}

static int hooks_run;
static void hook(void *ud)
{
    hooks_run = hooks_run * 10 + (int)(intptr_t)ud;
}

static void arena_hooks_newest_first(void **state)
{
    struct sb_arena *a = sb_arena_create(0);
    hooks_run = 0;
    sb_arena_on_free(a, hook, (void *)1);
    sb_arena_on_free(a, hook, (void *)2);
    sb_arena_reset(a);
    assert_int_equal(hooks_run, 21);
    char *p = sb_arena_printf(a, "%s-%d", "x", 42);
    assert_string_equal(p, "x-42");
    sb_arena_free(a);
    assert_int_equal(hooks_run, 21); /* reset forgot them */
}

static void buf_bounded(void **state)
{
    struct sb_buf b;
    sb_buf_init(&b, 10);
    assert_int_equal(sb_buf_append(&b, "", 0), SB_OK);
    assert_int_equal(sb_buf_append_cstr(&b, "0123456789"), SB_OK);
    assert_int_equal(sb_buf_append_char(&b, 'x'), SB_E_TOO_LARGE);
    assert_int_equal(b.len, 10);
    sb_buf_consume(&b, 4);
    assert_string_equal(b.p, "456789");
    assert_int_equal(sb_buf_printf(&b, "%d", 1234), SB_OK);
    assert_int_equal(sb_buf_printf(&b, "%d", 5), SB_E_TOO_LARGE);
    assert_string_equal(b.p, "4567891234");
    sb_buf_free(&b);
}

static void slices(void **state)
{
    unsigned long long v;
    assert_true(sb_slice_caseeq(SB_SLICE("Content-Type"), SB_SLICE("content-type")));
    assert_false(sb_slice_caseeq(SB_SLICE("a"), SB_SLICE("ab")));
    assert_true(sb_slice_to_u64(SB_SLICE("18446744073709551615"), &v));
    assert_false(sb_slice_to_u64(SB_SLICE("18446744073709551616"), &v));
    assert_false(sb_slice_to_u64(SB_SLICE("12a"), &v));
    assert_false(sb_slice_to_u64(SB_SLICE(""), &v));
}

static void error_table(void **state)
{
    struct sb_error e;
    assert_int_equal(sb_fail(&e, SB_E_UPSTREAM_TIMEOUT, "slow %d", 1), SB_E_UPSTREAM_TIMEOUT);
    assert_int_equal(sb_err_status(&e), 504);
    assert_string_equal(e.msg, "slow 1");
    assert_string_equal(sb_err_name(SB_E_NOT_FOUND), "NOT_FOUND");
    e.http_status = 429;
    assert_int_equal(sb_err_status(&e), 429);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_alignment_and_big_blocks),
        cmocka_unit_test(arena_hooks_newest_first),
        cmocka_unit_test(buf_bounded),
        cmocka_unit_test(slices),
        cmocka_unit_test(error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
