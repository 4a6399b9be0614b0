/* SPDX-License-Identifier: MIT */
/*
 * sse_test.c - unit tests for the SSE parser: the spec's examples, line
 * endings, BOM, limits, end of stream, zero-copy, and split invariance
 * (every way of cutting the input into feeds gives the same events).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "provider/sse.h"

/* Records every event as "type|data|id\n" (data bytes as-is). */
struct rec {
    struct sb_buf out;
    int count;
    int stop_at; /* return 77 on this event number (1-based), 0 = never */
    const char *input;
    size_t input_len;
    int zero_copy; /* events whose data pointed into the fed input */
};

static int on_event(void *ud, const struct sb_sse_event *ev)
{
    struct rec *r = ud;
    r->count++;
    sb_buf_printf(&r->out, "%.*s|%.*s|%.*s\n", SB_FMT(ev->event), SB_FMT(ev->data), SB_FMT(ev->id));
    if (r->input && ev->data.len && ev->data.p >= r->input && ev->data.p < r->input + r->input_len)
        r->zero_copy++;
    return (r->stop_at && r->count == r->stop_at) ? 77 : 0;
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    sb_buf_init(&r->out, 0);
    sb_buf_append_char(&r->out, 'x'); /* allocate, so out.p is a C string */
    sb_buf_reset(&r->out);
}

/* Feeds s in pieces of `step` bytes (0 = all at once); returns the finish code. */
static sb_err run(const char *s, size_t len, size_t step, struct rec *r)
{
    struct sb_sse p;
    struct sb_error err;
    sb_err rc = SB_OK;
    sb_sse_init(&p, 64, 256);
    if (step == 0)
        step = len ? len : 1;
    for (size_t i = 0; i < len && rc == SB_OK; i += step) {
        size_t n = len - i < step ? len - i : step;
        rc = sb_sse_feed(&p, s + i, n, on_event, r, &err);
    }
    if (rc == SB_OK)
        rc = sb_sse_finish(&p, &err);
    sb_sse_free(&p);
    return rc;
}

static void expect_events_n(const char *in, size_t len, const char *want, sb_err want_rc)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        struct rec r;
        rec_init(&r);
        sb_err rc = run(in, len, steps[k], &r);
        assert_int_equal(rc, want_rc);
        assert_string_equal(r.out.p, want);
        sb_buf_free(&r.out);
    }
}

static void expect_events(const char *in, const char *want, sb_err want_rc)
{
    expect_events_n(in, strlen(in), want, want_rc);
}

static void test_spec_examples(void **state)
{
    (void)state;
    expect_events("data: YHOO\ndata: +2\ndata: 10\n\n", "message|YHOO\n+2\n10|\n", SB_OK);
    expect_events(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
                  "data:  third event\n\n",
                  "message|first event|1\nmessage|second event|\nmessage| third event|\n", SB_OK);
    /* The last "data:" has no blank line: discarded, and finish says so. */
    expect_events("data\n\ndata\ndata\n\ndata:", "message||\nmessage|\n|\n", SB_E_UPSTREAM);
    expect_events("data:test\n\ndata: test\n\n", "message|test|\nmessage|test|\n", SB_OK);
}

static void test_line_endings(void **state)
{
    (void)state;
    expect_events("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "message|a|\nmessage|b|\nmessage|c|\n",
                  SB_OK);
    expect_events("data: a\rdata: b\r\n\n", "message|a\nb|\n", SB_OK);
    /* CR at the end of one feed and LF at the start of the next: one line end. */
    struct sb_sse p;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    sb_sse_init(&p, 0, 0);
    assert_int_equal(sb_sse_feed(&p, "data: x\r", 8, on_event, &r, &err), SB_OK);
    assert_int_equal(sb_sse_feed(&p, "\ndata: y\r", 9, on_event, &r, &err), SB_OK);
    assert_int_equal(sb_sse_feed(&p, "\n\r", 2, on_event, &r, &err), SB_OK);
    assert_int_equal(sb_sse_feed(&p, "\n", 1, on_event, &r, &err), SB_OK);
    assert_string_equal(r.out.p, "message|x\ny|\n");
    assert_int_equal(sb_sse_finish(&p, &err), SB_OK);
    sb_sse_free(&p);
    sb_buf_free(&r.out);
}

static void test_fields(void **state)
{
    (void)state;
    expect_events("event: add\ndata: 1\n\ndata: 2\n\n", "add|1|\nmessage|2|\n", SB_OK);
    expect_events("event:\ndata: 1\n\n", "message|1|\n", SB_OK);
    expect_events("event: only\n\ndata: x\n\n", "message|x|\n", SB_OK); /* no data: dropped */
    expect_events("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
                  "message|a|7\nmessage|b|7\nmessage|c|\n", SB_OK);
    expect_events("foo: bar\ndata:x\nDATA: y\n\n", "message|x|\n", SB_OK); /* case-sensitive */
    expect_events("data:   spaced\n\n", "message|  spaced|\n", SB_OK);
    expect_events("data\n\n", "message||\n", SB_OK);
    expect_events("data:\n\n", "message||\n", SB_OK);
    expect_events("data: a:b:c\n\n", "message|a:b:c|\n", SB_OK);
    expect_events("\n\n\n:comment only\n\n", "", SB_OK);
    static const char nul_id[] = "id: 1\n\nid: a\0b\ndata: x\n\n";
    expect_events_n(nul_id, sizeof(nul_id) - 1, "message|x|1\n", SB_OK); /* NUL: id ignored */
}

static void test_retry(void **state)
{
    (void)state;
    struct sb_sse p;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    sb_sse_init(&p, 0, 0);
    assert_int_equal(sb_sse_retry_ms(&p), -1);
    const char *s = "retry: 1500\nretry: 12x\ndata: a\n\n";
    assert_int_equal(sb_sse_feed(&p, s, strlen(s), on_event, &r, &err), SB_OK);
    assert_int_equal(sb_sse_retry_ms(&p), 1500);
    sb_sse_free(&p);
    sb_buf_free(&r.out);
}

static void test_bom(void **state)
{
    (void)state;
    expect_events("\xEF\xBB\xBF"
                  "data: a\n\n",
                  "message|a|\n", SB_OK);
    /* A second BOM is not skipped: it becomes part of an unknown field name. */
    expect_events("\xEF\xBB\xBF\xEF\xBB\xBF"
                  "data: a\n\ndata: b\n\n",
                  "message|b|\n", SB_OK);
    /* Something that starts like a BOM but is not one is kept as text. */
    expect_events("\xEF\xBB"
                  "data: a\n\ndata: b\n\n",
                  "message|b|\n", SB_OK);
    expect_events("\xEF", "", SB_E_UPSTREAM);
}

static void test_limits(void **state)
{
    (void)state;
    char line[80];
    memset(line, 'x', sizeof(line));
    memcpy(line, "data:", 5);
    line[sizeof(line) - 1] = '\n';
    struct rec r;
    rec_init(&r);
    /* 79-byte line against max_line 64, fed whole and in pieces. */
    assert_int_equal(run(line, sizeof(line), 0, &r), SB_E_TOO_LARGE);
    assert_int_equal(run(line, sizeof(line), 1, &r), SB_E_TOO_LARGE);
    assert_int_equal(r.count, 0);
    /* Exactly 64 bytes is fine. */
    char ok[66];
    memset(ok, 'y', sizeof(ok));
    memcpy(ok, "data:", 5);
    ok[64] = '\n';
    ok[65] = '\n';
    assert_int_equal(run(ok, sizeof(ok), 0, &r), SB_OK);
    assert_int_equal(r.count, 1);
    /* Event data over 256 bytes: five lines of 59 data bytes. */
    struct sb_buf big;
    sb_buf_init(&big, 0);
    for (int i = 0; i < 5; i++)
        sb_buf_printf(&big, "data:%059d\n", i);
    sb_buf_append_cstr(&big, "\n");
    for (size_t step = 0; step < 4; step++)
        assert_int_equal(run(big.p, big.len, step, &r), SB_E_TOO_LARGE);
    assert_int_equal(r.count, 1);
    sb_buf_free(&big);
    sb_buf_free(&r.out);
}

static void test_sticky_failure_and_stop(void **state)
{
    (void)state;
    struct sb_sse p;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    r.stop_at = 1;
    sb_sse_init(&p, 0, 0);
    const char *s = "data: a\n\ndata: b\n\n";
    assert_int_equal(sb_sse_feed(&p, s, strlen(s), on_event, &r, &err), 77);
    assert_int_equal(r.count, 1);
    assert_int_equal(sb_sse_feed(&p, s, strlen(s), on_event, &r, &err), 77);
    assert_int_equal(r.count, 1);
    assert_int_equal(sb_sse_finish(&p, &err), 77);
    sb_sse_free(&p);
    sb_buf_free(&r.out);
}

static void test_finish(void **state)
{
    (void)state;
    expect_events("data: a\n\n: keep-alive\n", "message|a|\n", SB_OK);
    expect_events("data: a\n\ndata: b\n", "message|a|\n", SB_E_UPSTREAM);
    expect_events("data: a\n\nda", "message|a|\n", SB_E_UPSTREAM);
    expect_events("data: a\n\nevent: x\n", "message|a|\n", SB_E_UPSTREAM);
    expect_events("data: a\r", "", SB_E_UPSTREAM); /* CR ends the data line, no blank line */
    expect_events("data: a\r\n\r", "message|a|\n", SB_OK);
    expect_events("data: a\r\r", "message|a|\n", SB_OK);
    expect_events("", "", SB_OK);
}

static void test_zero_copy(void **state)
{
    (void)state;
    struct sb_sse p;
    struct sb_error err;
    struct rec r;
    rec_init(&r);
    const char *s = "data: one\n\ndata: two\ndata: lines\n\nevent: e\ndata: three\n\n";
    r.input = s;
    r.input_len = strlen(s);
    sb_sse_init(&p, 0, 0);
    assert_int_equal(sb_sse_feed(&p, s, strlen(s), on_event, &r, &err), SB_OK);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.zero_copy, 2); /* the two-line event had to be assembled */
    /* Split mid-event: the data is copied before the feed returns. */
    char a[16], b[16];
    memcpy(a, "data: sp", 8);
    memcpy(b, "lit\n\n", 5);
    assert_int_equal(sb_sse_feed(&p, a, 8, on_event, &r, &err), SB_OK);
    memset(a, '#', sizeof(a));
    r.input = NULL;
    assert_int_equal(sb_sse_feed(&p, b, 5, on_event, &r, &err), SB_OK);
    /* And a complete line whose event ends in a later feed. */
    memcpy(a, "data: whole\n", 12);
    assert_int_equal(sb_sse_feed(&p, a, 12, on_event, &r, &err), SB_OK);
    memset(a, '#', sizeof(a));
    assert_int_equal(sb_sse_feed(&p, "\n", 1, on_event, &r, &err), SB_OK);
    assert_string_equal(r.out.p, "message|one|\nmessage|two\nlines|\ne|three|\n"
                                 "message|split|\nmessage|whole|\n");
    sb_sse_free(&p);
    sb_buf_free(&r.out);
}

/* Every two-piece and three-piece split gives what the one-piece feed gives. */
static void test_split_invariance(void **state)
{
    (void)state;
    const char *s = "\xEF\xBB\xBF: hi\r\nevent: a\r\ndata: 1\r\ndata:2\r\n\r\nid: 9\rdata: x\r\r"
                    "data\n\nretry: 5\ndata: {\"k\": \"v\"}\n\n";
    size_t len = strlen(s);
    struct rec whole;
    rec_init(&whole);
    assert_int_equal(run(s, len, 0, &whole), SB_OK);
    assert_int_equal(whole.count, 4);
    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            struct sb_sse p;
            struct sb_error err;
            struct rec r;
            rec_init(&r);
            sb_sse_init(&p, 64, 256);
            assert_int_equal(sb_sse_feed(&p, s, a, on_event, &r, &err), SB_OK);
            assert_int_equal(sb_sse_feed(&p, s + a, b - a, on_event, &r, &err), SB_OK);
            assert_int_equal(sb_sse_feed(&p, s + b, len - b, on_event, &r, &err), SB_OK);
            assert_int_equal(sb_sse_finish(&p, &err), SB_OK);
            assert_string_equal(r.out.p, whole.out.p);
            sb_sse_free(&p);
            sb_buf_free(&r.out);
        }
    }
    sb_buf_free(&whole.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sticky_failure_and_stop),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_split_invariance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
