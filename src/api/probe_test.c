/* SPDX-License-Identifier: MIT */
/*
 * probe_test.c - the connection test's pure parts: curl and HTTP failures
 * to stage and sentence, key redaction, listings, and the rate limiter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "api/internal.h"
#include "api/probe.h"

static struct sb_probe_result fresh(void)
{
    return (struct sb_probe_result){.stage = SB_PROBE_DNS};
}

static void curl_failures(void **state)
{
    struct sb_probe_times none = {0}, sent = {.connect_us = 900, .pretransfer_us = 1000};
    struct sb_probe_result r = fresh();
    sb__probe_curl_failure(CURLE_COULDNT_CONNECT, ECONNREFUSED, "", false, &none, 15000, "h:9",
                           SB_PROBE_AUTH, &r);
    assert_int_equal(r.stage, SB_PROBE_CONNECT);
    assert_string_equal(r.diagnosis, "connection refused by h:9");
    sb__probe_curl_failure(CURLE_OPERATION_TIMEDOUT, 0, "", true, &none, 15000, "h:443",
                           SB_PROBE_MODEL, &r);
    assert_int_equal(r.stage, SB_PROBE_CONNECT);
    sb__probe_curl_failure(CURLE_OPERATION_TIMEDOUT, 0, "", true, &sent, 15000, "h:443",
                           SB_PROBE_MODEL, &r);
    assert_int_equal(r.stage, SB_PROBE_MODEL);
    assert_string_equal(r.diagnosis, "timed out after 15 s waiting for the answer");
    sb__probe_curl_failure(CURLE_PEER_FAILED_VERIFICATION, 0, "self-signed certificate", true,
                           &none, 15000, "h:443", SB_PROBE_AUTH, &r);
    assert_int_equal(r.stage, SB_PROBE_TLS);
    assert_non_null(strstr(r.diagnosis, "TLS: certificate verify failed"));
    sb__probe_curl_failure(CURLE_GOT_NOTHING, 0, "", false, &sent, 15000, "h:80", SB_PROBE_AUTH,
                           &r);
    assert_int_equal(r.stage, SB_PROBE_AUTH);
    assert_false(r.ok);
}

static void http_failures(void **state)
{
    struct sb_probe_result r = fresh();
    sb__probe_http_failure(401, false, "m", "Incorrect key sk-abc", &r);
    assert_int_equal(r.stage, SB_PROBE_AUTH);
    assert_string_equal(r.diagnosis, "401: the key was rejected"); /* never the upstream's words */
    sb__probe_http_failure(404, false, "gpt-x", "no such model", &r);
    assert_int_equal(r.stage, SB_PROBE_MODEL);
    assert_string_equal(r.diagnosis, "404: model gpt-x not found: no such model");
    sb__probe_http_failure(404, true, "", "", &r);
    assert_int_equal(r.stage, SB_PROBE_AUTH);
    sb__probe_http_failure(503, false, "m", "", &r);
    assert_string_equal(r.diagnosis, "503: the upstream failed");
    assert_int_equal(r.http_status, 503);
}

static void redaction(void **state)
{
    struct sb_slice key = SB_SLICE("sk-live-0123456789abcdefWXYZ");
    char msg[128] = "Incorrect API key provided: sk-liv*****WXYZ. See docs";
    sb__probe_redact(msg, sizeof(msg), key);
    /* "sk-liv" is a 6-byte window of the key */
    assert_string_equal(msg, "Incorrect API key provided: [redacted] See docs");
    char whole[128] = "key 'sk-live-0123456789abcdefWXYZ' is bad";
    sb__probe_redact(whole, sizeof(whole), key);
    assert_null(strstr(whole, "0123456789"));
    char clean[64] = "model not found";
    sb__probe_redact(clean, sizeof(clean), key);
    assert_string_equal(clean, "model not found");
    char tiny[16] = "abc";
    sb__probe_redact(tiny, sizeof(tiny), SB_SLICE("ab")); /* too short to judge: unchanged */
    assert_string_equal(tiny, "abc");
}

static void listings(void **state)
{
    struct sb_arena *a = sb_arena_create(4096);
    const char *ids[2];
    size_t n = 0, count = 0;
    assert_true(sb__probe_parse_listing(
        a,
        SB_SLICE("{\"object\":\"list\",\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}"),
        ids, 2, &n, &count));
    assert_int_equal(n, 2);
    assert_int_equal(count, 3);
    assert_string_equal(ids[1], "b");
    assert_true(sb__probe_parse_listing(
        a, SB_SLICE("{\"models\":[{\"name\":\"models/gemini-x\"},{\"nope\":1}]}"), ids, 2, &n,
        &count));
    assert_int_equal(count, 1);
    assert_string_equal(ids[0], "models/gemini-x");
    assert_false(sb__probe_parse_listing(a, SB_SLICE("[1,2]"), ids, 2, &n, &count));
    assert_false(sb__probe_parse_listing(a, SB_SLICE("{\"data\":{}}"), ids, 2, &n, &count));
    assert_false(sb__probe_parse_listing(a, SB_SLICE("not json"), ids, 2, &n, &count));
    sb_arena_free(a);
}

static void rate_limit(void **state)
{
    struct sb__api_rate r;
    int64_t retry = 0;
    sb__api_rate_init(&r, 3, 60000, 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sb__api_rate_take(&r, "ann", 1000 + i, &retry), SB_OK);
        sb__api_rate_done(&r);
    }
    assert_int_equal(sb__api_rate_take(&r, "ann", 2000, &retry), SB_E_RATE_LIMITED);
    assert_int_equal(retry, 59); /* the window started at 1000 */
    assert_int_equal(sb__api_rate_take(&r, "bob", 2000, &retry), SB_OK); /* per actor */
    assert_int_equal(sb__api_rate_take(&r, "cat", 2000, &retry), SB_OK);
    assert_int_equal(sb__api_rate_take(&r, "dan", 2000, &retry), SB_E_RATE_LIMITED); /* 2 run */
    sb__api_rate_done(&r);
    sb__api_rate_done(&r);
    assert_int_equal(sb__api_rate_take(&r, "ann", 61000, &retry), SB_OK); /* a new window */
    sb__api_rate_done(&r);
    /* More actors than slots: old windows are reused, nobody is wrongly refused. */
    for (int i = 0; i < 3 * SB_API_RATE_SLOTS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "u%d", i);
        assert_int_equal(sb__api_rate_take(&r, name, 70000 + i, &retry), SB_OK);
        sb__api_rate_done(&r);
    }
    sb__api_rate_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(curl_failures), cmocka_unit_test(http_failures),
        cmocka_unit_test(redaction),     cmocka_unit_test(listings),
        cmocka_unit_test(rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
