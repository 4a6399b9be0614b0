/* SPDX-License-Identifier: MIT */
/*
 * when_test.c - times clients send (expires_at, audit from/to): ISO-8601
 * forms with zones, dates, Unix ms, and clear refusals of everything else.
 * Expected values were computed independently (date -u -d ... +%s%3N).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "api/internal.h"

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;
    struct sb_error err = {0};
    if (sb__api_parse_time(sb_slice_cstr(s), &ms, &err) != SB_OK)
        fail_msg("'%s' refused: %s", s, err.msg);
    return ms;
}

static void test_accepted(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01"), 0);
    assert_int_equal(parse_ok("2030-01-31"), 1896048000000LL);
    assert_int_equal(parse_ok("2030-01-31T12:00:00Z"), 1896091200000LL);
    assert_int_equal(parse_ok("2030-01-31t12:00z"), 1896091200000LL);
    assert_int_equal(parse_ok("2030-01-31 12:00:00Z"), 1896091200000LL);
    assert_int_equal(parse_ok("2030-01-31T12:00:00.250Z"), 1896091200250LL);
    assert_int_equal(parse_ok("2030-01-31T12:00:00.2509999Z"), 1896091200250LL);
    assert_int_equal(parse_ok("2030-01-31T12:00:00.5Z"), 1896091200500LL);
    assert_int_equal(parse_ok("2030-01-31T14:00:00+02:00"), 1896091200000LL);
    assert_int_equal(parse_ok("2030-01-31T07:30:00-0430"), 1896091200000LL);
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800000LL); /* leap day */
    assert_int_equal(parse_ok("2000-02-29"), 951782400000LL);            /* 400-year leap */
    assert_int_equal(parse_ok("9999-12-31T23:59:59.999Z"), 253402300799999LL);
    assert_int_equal(parse_ok("1896091200000"), 1896091200000LL); /* Unix ms */
    assert_int_equal(parse_ok("0"), 0);
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "tomorrow",
        "2030-01-31T12:00:00", /* a time without a zone */
        "2030-13-01",
        "2030-00-10",
        "2030-02-30",
        "2023-02-29", /* not a leap year */
        "1900-02-29",
        "2030-01-31T24:00:00Z",
        "2030-01-31T12:60:00Z",
        "2030-01-31T12:00:60Z",
        "2030-01-31T12:00:00.Z",
        "2030-01-31T12:00:00+2:00",
        "2030-01-31T12:00:00+24:00",
        "2030-01-31T12:00:00Zjunk",
        "2030-1-31",
        "1969-12-31",
        "1970-01-01T00:00:00+01:00", /* before 1970 */
        "-5",
        "12345678901234567890", /* too many digits */
        "2030-01-31T",
        "2030-01-31X12:00Z",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        struct sb_error err = {0};
        if (sb__api_parse_time(sb_slice_cstr(bad[i]), &ms, &err) != SB_E_BAD_REQUEST)
            fail_msg("'%s' accepted as %lld", bad[i], (long long)ms);
        assert_int_equal(ms, 0);
        assert_non_null(strstr(err.msg, "ISO-8601"));
    }
}

/* Bytes after a NUL are not read as part of the time. */
static void test_embedded_nul(void **state)
{
    int64_t ms = 0;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb__api_parse_time((struct sb_slice){"2030-01-31\0Z", 12}, &ms, &err),
                     SB_E_BAD_REQUEST);
    assert_int_equal(sb__api_parse_time((struct sb_slice){"2030-01-31", 10}, &ms, &err), SB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_embedded_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
