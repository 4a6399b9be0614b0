/* SPDX-License-Identifier: MIT */
/*
 * metrics_test.c - per-thread shards summed on read: samples recorded by
 * several threads at once come out as one series per label set, histograms
 * stay cumulative with +Inf equal to _count, the in-flight gauge is the
 * sum over threads, and a thread that exits leaves its counts behind (the
 * next thread takes its shard over). Run under TSan in CI (make test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "gateway/metrics.h"

#define THREADS 4
#define PER_THREAD 1000

static void *record_some(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        sb_metrics_inflight(1);
        struct sb_metrics_sample s = {.provider = "p",
                                      .model = "m",
                                      .status = 200,
                                      .latency_s = i % 2 ? 0.002 : 40,
                                      .ttft_s = -1};
        sb_metrics_record(&s);
        s.status = 502;
        s.upstream_error = true;
        s.ttft_s = 0.001;
        if (i % 10 == 0)
            sb_metrics_record(&s);
        sb_metrics_inflight(-1);
    }
    sb_metrics_inflight(1); /* one left in flight per thread */
    return NULL;
}

static void run_threads(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, record_some, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static char *render(struct sb_buf *b)
{
    sb_buf_init(b, 0);
    sb_metrics_render(b, 0, 0, 0);
    sb_buf_append_char(b, '\0');
    return (char *)sb_buf_slice(b).p;
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix))
        n += p == text || p[-1] == '\n';
    return n;
}

static void test_threads_sum(void **state)
{
    (void)state;
    struct sb_buf b;
    run_threads();
    char *t = render(&b);
    assert_non_null(
        strstr(t, "switchboard_requests_total{provider=\"p\",model=\"m\",status=\"200\"} 4000\n"));
    assert_non_null(strstr(
        t, "switchboard_upstream_errors_total{provider=\"p\",model=\"m\",status=\"502\"} 400\n"));
    /* one line per label set, however many shards hold it */
    assert_int_equal(count_lines(t, "switchboard_requests_total{"), 2);
    /* half the 200s took 2 ms, half 40 s: over the last bound, in +Inf only */
    assert_non_null(strstr(t, "switchboard_request_duration_seconds_bucket{provider=\"p\",model="
                              "\"m\",status=\"200\",le=\"0.005\"} 2000\n"));
    assert_non_null(strstr(t, "switchboard_request_duration_seconds_bucket{provider=\"p\",model="
                              "\"m\",status=\"200\",le=\"30\"} 2000\n"));
    assert_non_null(strstr(t, "switchboard_request_duration_seconds_bucket{provider=\"p\",model="
                              "\"m\",status=\"200\",le=\"+Inf\"} 4000\n"));
    assert_non_null(strstr(t, "switchboard_request_duration_seconds_count{provider=\"p\",model="
                              "\"m\",status=\"200\"} 4000\n"));
    /* ttft only for the series that had one */
    assert_int_equal(count_lines(t, "switchboard_ttft_seconds_count{"), 1);
    assert_non_null(strstr(t, "switchboard_requests_in_flight 4\n"));
    assert_int_equal(sb_metrics_inflight_now(), 4);
    sb_buf_free(&b);

    /* the threads are gone: new ones take their shards over, nothing is lost */
    run_threads();
    t = render(&b);
    assert_non_null(
        strstr(t, "switchboard_requests_total{provider=\"p\",model=\"m\",status=\"200\"} 8000\n"));
    assert_int_equal(count_lines(t, "switchboard_requests_total{"), 2);
    assert_int_equal(sb_metrics_inflight_now(), 8);
    sb_buf_free(&b);
}

/* Rendering while workers record: TSan checks the single-writer updates. */
static void *render_loop(void *arg)
{
    for (int i = 0; i < 50; i++) {
        struct sb_buf b;
        render(&b);
        sb_buf_free(&b);
        (void)sb_metrics_inflight_now();
    }
    return arg;
}

static void test_render_while_recording(void **state)
{
    (void)state;
    pthread_t r;
    assert_int_equal(pthread_create(&r, NULL, render_loop, NULL), 0);
    run_threads();
    pthread_join(r, NULL);
    assert_int_equal(sb_metrics_inflight_now(), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_sum),
        cmocka_unit_test(test_render_while_recording),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
