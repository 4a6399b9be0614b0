/* SPDX-License-Identifier: MIT */
/*
 * ndjson_test.c - unit tests for the NDJSON framer: blank lines, CRLF, the
 * unterminated last line, limits, zero-copy and split invariance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "provider/ndjson.h"

struct rec {
    struct sb_buf out; /* lines joined with '|' */
    int count;
    int stop_at;
    const char *input; /* to count zero-copy lines */
    size_t input_len;
    int zero_copy;
};

static int on_line(void *ud, struct sb_slice line)
{
    struct rec *r = ud;
    r->count++;
    sb_buf_printf(&r->out, "%.*s|", SB_FMT(line));
    if (r->input && line.p >= r->input && line.p < r->input + r->input_len)
        r->zero_copy++;
    return (r->stop_at && r->count == r->stop_at) ? 55 : 0;
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    sb_buf_init(&r->out, 0);
    sb_buf_append_char(&r->out, 'x');
    sb_buf_reset(&r->out);
}

static sb_err run(const char *s, size_t len, size_t step, size_t max, struct rec *r)
{
    struct sb_ndjson f;
    struct sb_error err;
    sb_err rc = SB_OK;
    sb_ndjson_init(&f, max);
    if (step == 0)
        step = len ? len : 1;
    for (size_t i = 0; i < len && rc == SB_OK; i += step)
        rc = sb_ndjson_feed(&f, s + i, len - i < step ? len - i : step, on_line, r, &err);
    if (rc == SB_OK)
        rc = sb_ndjson_finish(&f, on_line, r, &err);
    sb_ndjson_free(&f);
    return rc;
}

static void expect_lines(const char *in, size_t max, const char *want, sb_err want_rc)
{
    for (size_t step = 0; step < 5; step++) {
        struct rec r;
        rec_init(&r);
        assert_int_equal(run(in, strlen(in), step, max, &r), want_rc);
        assert_string_equal(r.out.p, want);
        sb_buf_free(&r.out);
    }
}

static void test_lines(void **state)
{
    (void)state;
    expect_lines("{\"a\":1}\n{\"b\":2}\n", 0, "{\"a\":1}|{\"b\":2}|", SB_OK);
    expect_lines("{\"a\":1}\r\n\r\n  \n\t\n{\"b\":2}\r\n", 0, "{\"a\":1}|{\"b\":2}|", SB_OK);
    expect_lines("{\"a\":1}\n{\"b\":2}", 0, "{\"a\":1}|{\"b\":2}|", SB_OK); /* no final LF */
    expect_lines("", 0, "", SB_OK);
    expect_lines("\n\n", 0, "", SB_OK);
    expect_lines(" {\"a\" : 1} \n", 0, " {\"a\" : 1} |", SB_OK); /* content kept verbatim */
}

static void test_limits(void **state)
{
    (void)state;
    expect_lines("12345678\n123456789\n", 8, "12345678|", SB_E_TOO_LARGE);
    expect_lines("12345678\n123456789", 8, "12345678|", SB_E_TOO_LARGE);
    expect_lines("1234567\r\n", 8, "1234567|", SB_OK); /* the CR counts, still fits */
}

static void test_stop_and_sticky(void **state)
{
    (void)state;
    struct sb_ndjson f;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    r.stop_at = 1;
    sb_ndjson_init(&f, 0);
    assert_int_equal(sb_ndjson_feed(&f, "a\nb\n", 4, on_line, &r, &err), 55);
    assert_int_equal(sb_ndjson_feed(&f, "c\n", 2, on_line, &r, &err), 55);
    assert_int_equal(sb_ndjson_finish(&f, on_line, &r, &err), 55);
    assert_int_equal(r.count, 1);
    sb_ndjson_free(&f);
    sb_buf_free(&r.out);
}

static void test_zero_copy(void **state)
{
    (void)state;
    struct sb_ndjson f;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    const char *s = "{\"x\":1}\n{\"y\":2}\n{\"z\"";
    r.input = s;
    r.input_len = strlen(s);
    sb_ndjson_init(&f, 0);
    assert_int_equal(sb_ndjson_feed(&f, s, strlen(s), on_line, &r, &err), SB_OK);
    assert_int_equal(sb_ndjson_feed(&f, ":3}\n", 4, on_line, &r, &err), SB_OK);
    assert_int_equal(r.zero_copy, 2);
    assert_string_equal(r.out.p, "{\"x\":1}|{\"y\":2}|{\"z\":3}|");
    sb_ndjson_free(&f);
    sb_buf_free(&r.out);
}

static void test_split_invariance(void **state)
{
    (void)state;
    const char *s = "{\"a\":1}\r\n\n{\"b\":[1,2]}\n  \n{\"c\":\"x\\ny\"}";
    size_t len = strlen(s);
    struct rec whole;
    rec_init(&whole);
    assert_int_equal(run(s, len, 0, 64, &whole), SB_OK);
    for (size_t a = 0; a <= len; a++) {
        struct sb_ndjson f;
        struct sb_error err;
        struct rec r;
        rec_init(&r);
        sb_ndjson_init(&f, 64);
        assert_int_equal(sb_ndjson_feed(&f, s, a, on_line, &r, &err), SB_OK);
        assert_int_equal(sb_ndjson_feed(&f, s + a, len - a, on_line, &r, &err), SB_OK);
        assert_int_equal(sb_ndjson_finish(&f, on_line, &r, &err), SB_OK);
        assert_string_equal(r.out.p, whole.out.p);
        sb_ndjson_free(&f);
        sb_buf_free(&r.out);
    }
    sb_buf_free(&whole.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop_and_sticky),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_split_invariance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
