/* SPDX-License-Identifier: MIT */
/*
 * jsonl_test.c - a batch job's input lines (batch/jsonl.h): splitting,
 * both line shapes, the job's model replacing the line's, each refusal as
 * the line's own error, and the output lines' shape (checked with jansson,
 * the oracle the JSON tests use).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "batch/jsonl.h"

static struct sb_arena *A;

static int setup(void **state)
{
    (void)state;
    A = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_arena_free(A);
    return 0;
}

static struct sb_batch_line parse(const char *text, const char *model)
{
    struct sb_batch_opts o = {.endpoint = SB_BATCH_CHAT, .model = model, .max_line_bytes = 4096};
    struct sb_batch_line l;
    sb_batch_parse_line(A, sb_slice_cstr(text), 7, &o, &l);
    return l;
}

static json_t *load(struct sb_slice s)
{
    json_error_t e;
    json_t *j = json_loadb(s.p, s.len, 0, &e);
    if (!j)
        fail_msg("not JSON: %.*s (%s)", (int)s.len, s.p, e.text);
    return j;
}

static void test_split(void **state)
{
    (void)state;
    struct sb_slice rest = sb_slice_cstr("{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}");
    struct sb_slice line;
    size_t n = 0;
    assert_true(sb_batch_next_line(&rest, &n, &line));
    assert_true(sb_slice_eq_cstr(line, "{\"a\":1}"));
    assert_int_equal(n, 1);
    assert_true(sb_batch_next_line(&rest, &n, &line));
    assert_true(sb_slice_eq_cstr(line, "{\"b\":2}"));
    assert_int_equal(n, 4); /* blank lines count as lines, for messages */
    assert_true(sb_batch_next_line(&rest, &n, &line));
    assert_true(sb_slice_eq_cstr(line, "{\"c\":3}")); /* no final newline */
    assert_false(sb_batch_next_line(&rest, &n, &line));
}

static void test_envelope_and_plain(void **state)
{
    (void)state;
    struct sb_batch_line l = parse("{\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/"
                                   "embeddings\",\"body\":{\"model\":\"e\",\"input\":\"hi\"}}",
                                   NULL);
    assert_null(l.error_code);
    assert_string_equal(l.custom_id, "r1");
    assert_int_equal(l.endpoint, SB_BATCH_EMBEDDINGS);
    assert_true(sb_slice_eq_cstr(l.body, "{\"model\":\"e\",\"input\":\"hi\"}")); /* untouched */
    l = parse("{\"model\":\"m\", \"messages\":[], \"stream\": false}", NULL);
    assert_null(l.error_code);
    assert_null(l.custom_id);
    assert_int_equal(l.endpoint, SB_BATCH_CHAT);
    assert_true(sb_slice_eq_cstr(l.body, "{\"model\":\"m\", \"messages\":[], \"stream\": false}"));
}

static void test_job_model_replaces(void **state)
{
    (void)state;
    struct sb_batch_line l =
        parse("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\\u00e9\"}],"
              "\"model\":\"b\",\"temperature\":0.50}",
              "route-1");
    assert_null(l.error_code);
    json_t *j = load(l.body);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "route-1");
    assert_int_equal(json_object_size(j), 3); /* both models gone, one written */
    json_decref(j);
    /* members are copied as written, not re-encoded */
    assert_non_null(memmem(l.body.p, l.body.len, "\"x\\u00e9\"", 9));
    assert_non_null(memmem(l.body.p, l.body.len, "0.50", 4));
    l = parse("{\"messages\":[]}", "route-1"); /* the job's model fills a missing one */
    assert_null(l.error_code);
}

static void expect_refused(const char *text, const char *code)
{
    struct sb_batch_line l = parse(text, NULL);
    if (!l.error_code || strcmp(l.error_code, code) != 0)
        fail_msg("%s: expected %s, got %s", text, code, l.error_code ? l.error_code : "ok");
    assert_non_null(strstr(l.error_msg, "line 7: "));
    assert_int_equal(l.body.len, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"model\":", "invalid_json");
    expect_refused("[1,2]", "invalid_request");
    expect_refused("{\"custom_id\":\"a\"}", "invalid_request"); /* no body */
    expect_refused("{\"custom_id\":5,\"body\":{\"model\":\"m\"}}", "invalid_request");
    expect_refused("{\"custom_id\":\"\",\"body\":{\"model\":\"m\"}}", "invalid_request");
    expect_refused("{\"body\":{\"model\":\"m\"},\"extra\":1}", "invalid_request");
    expect_refused("{\"method\":\"GET\",\"body\":{\"model\":\"m\"}}", "invalid_method");
    expect_refused("{\"url\":\"/v1/models\",\"body\":{\"model\":\"m\"}}", "invalid_url");
    expect_refused("{\"body\":{\"model\":\"m\",\"stream\":true}}", "stream_not_supported");
    expect_refused("{\"messages\":[]}", "missing_model");
    expect_refused("{\"model\":\"\"}", "missing_model");
    /* the custom_id of a refused envelope is kept for its error line */
    struct sb_batch_line l = parse("{\"custom_id\":\"k\",\"url\":\"/x\",\"body\":{}}", NULL);
    assert_string_equal(l.custom_id, "k");
    char big[5000];
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    expect_refused(big, "line_too_large");
}

static void test_output_lines(void **state)
{
    (void)state;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_batch_result_response(&b, "batch_x-1", "c\"1", 200, "req-1",
                             sb_slice_cstr("{\"object\":\"chat.completion\"}"));
    json_t *j = load(sb_buf_slice(&b));
    assert_string_equal(json_string_value(json_object_get(j, "custom_id")), "c\"1");
    json_t *r = json_object_get(j, "response");
    assert_int_equal(json_integer_value(json_object_get(r, "status_code")), 200);
    assert_string_equal(json_string_value(json_object_get(r, "request_id")), "req-1");
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    sb_buf_reset(&b);
    sb_batch_result_error(&b, "batch_x-2", NULL, "invalid_json", "line 2: not JSON");
    j = load(sb_buf_slice(&b));
    assert_true(json_is_null(json_object_get(j, "custom_id")));
    assert_true(json_is_null(json_object_get(j, "response")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "invalid_json");
    json_decref(j);
    sb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_envelope_and_plain),
        cmocka_unit_test(test_job_model_replaces),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_output_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
