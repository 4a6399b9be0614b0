/* SPDX-License-Identifier: MIT */
/* slice_test.c - the bounded string copies against snprintf, their model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/slice.h"

/* Every cut of every pair of short strings, against snprintf "%s%s". */
static void test_join_matches_snprintf(void **state)
{
    static const char *const s[] = {NULL, "", "a", "key:", "provider ", "gpt-4o-mini-2024"};
    (void)state;
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++)
            for (size_t cap = 1; cap <= 24; cap++) {
                char want[32], got[32];
                memset(got, 'x', sizeof(got));
                int full = snprintf(want, cap, "%s%s", s[i] ? s[i] : "", s[j] ? s[j] : "");
                size_t n = sb_str_join(got, cap, s[i], s[j]);
                assert_string_equal(got, want);
                assert_int_equal(n, strlen(want));
                assert_true(n <= (size_t)full);
                assert_int_equal(got[cap], 'x'); /* nothing written past cap */
            }
}

static void test_u64_matches_snprintf(void **state)
{
    (void)state;
    static const uint64_t v[] = {0, 1, 9, 10, 15, 16, 255, 4096, 65535, 1000000007ull,
                                 UINT32_MAX, (uint64_t)INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[SB_U64_DIGITS + 1], want[32];
        size_t n = sb_u64_dec(got, v[i]);
        got[n] = '\0';
        snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
        assert_string_equal(got, want);
        n = sb_u64_hex(got, v[i]);
        got[n] = '\0';
        snprintf(want, sizeof(want), "%llx", (unsigned long long)v[i]);
        assert_string_equal(got, want);
    }
}

static void test_copy(void **state)
{
    char b[4];
    (void)state;
    assert_int_equal(sb_str_copy(b, sizeof(b), "abcdef"), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(sb_str_copy(b, sizeof(b), NULL), 0);
    assert_string_equal(b, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_matches_snprintf),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_u64_matches_snprintf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
