/* SPDX-License-Identifier: MIT */
/*
 * ollama_test.c - the ollama adapter on strings only: OpenAI requests to exact /api/chat and
 * /api/embed bodies (explicit stream flag, options, images as bare base64, web image URLs
 * refused, tool calls with object arguments, tool results with tool_name, thinking sent
 * back, format, think), whole responses, NDJSON streams under every feed split (text,
 * thinking, whole tool calls with generated ids, error lines, early ends), the streamed
 * answer against the whole one, keyless and keyed auth, and map_error.
 */
#include "provider/adapter_testlib.h"

#define BASE "http://127.0.0.1:11434"

static int setup(void **state)
{
    *state = fx_new("ollama", BASE, NULL, "llama3.2:3b");
    return 0;
}

/* ---- requests ---- */

static void test_basic_request(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{\"model\":\"client-model\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"}],\"temperature\":0.2,\"top_p\":0.9,"
        "\"max_tokens\":100,\"stop\":\"END\",\"seed\":7}",
        SB_OP_CHAT,
        "{\"model\":\"llama3.2:3b\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"}],\"options\":{\"temperature\":0.2,\"top_p\":0.9,"
        "\"seed\":7,\"num_predict\":100,\"stop\":[\"END\"]},\"stream\":false}");
    assert_string_equal(r.url, BASE "/api/chat");
    assert_null(fx_header(&r, "Authorization").p); /* no key: no auth */
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Content-Type"), "application/json"));
}

static void test_keyed_stream_request(void **state)
{
    struct fx *f = *state;
    f->p.auth = SB_AUTH_BEARER;
    f->p.api_key = sb_secret_new("ol-key-5678", 11);
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]}]}",
        SB_OP_CHAT,
        "{\"model\":\"llama3.2:3b\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\nb\"}],"
        "\"stream\":true}");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Authorization"), "Bearer ol-key-5678"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Accept"), "application/x-ndjson"));
}

static void test_images(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                   "{\"type\":\"text\",\"text\":\"What is this?\"},"
                   "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR"
                   "w0K\"}},{\"type\":\"image_url\",\"image_url\":\"data:image/jpeg;base64,/9j/\"}"
                   "]}]}",
                   SB_OP_CHAT,
                   "{\"model\":\"llama3.2:3b\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"What is this?\",\"images\":[\"iVBORw0K\",\"/9j/\"]}],\"stream\":false}");
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"https://x.test/cat.png\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "only as base64");
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"data:image/svg+xml,<svg/>\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "base64-encoded");
}

static void test_tool_round_trip_request(void **state)
{
    fx_expect_body(
        *state,
        "{\"model\":\"m\",\"tool_choice\":\"auto\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"Need a tool.\","
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]}",
        SB_OP_CHAT,
        "{\"model\":\"llama3.2:3b\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Need a tool.\",\"tool_calls\":"
        "[{\"id\":\"call_1\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\": "
        "\"Paris\"}}}]},"
        "{\"role\":\"tool\",\"content\":\"18C\",\"tool_call_id\":\"call_1\",\"tool_name\":"
        "\"get_weather\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"stream\":false}");
}

static void test_format_think_tool_none(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\","
        "\"schema\":{\"type\":\"object\"}}},\"reasoning_effort\":\"medium\"}",
        SB_OP_CHAT,
        "{\"model\":\"llama3.2:3b\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"x\"}],\"format\":{\"type\":\"object\"},\"think\":\"medium\",\"stream\":false}");
    fx_expect_body(f,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"response_format\":{\"type\":\"json_object\"},\"reasoning_effort\":\"none\","
                   "\"tool_choice\":\"none\",\"tools\":[{\"type\":\"function\",\"function\":{"
                   "\"name\":\"f\"}}]}",
                   SB_OP_CHAT,
                   "{\"model\":\"llama3.2:3b\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"x\"}],\"format\":\"json\",\"think\":false,\"stream\":false}");
}

static void test_refusals(void **state)
{
    struct fx *f = *state;
    const char *u = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
    static const struct {
        const char *extra, *frag;
    } cases[] = {
        {",\"n\":3", "'n' must be 1"},
        {",\"logprobs\":true", "'logprobs'"},
        {",\"top_logprobs\":2", "'top_logprobs' is not supported"},
        {",\"tool_choice\":\"required\"", "cannot force a tool"},
        {",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "tool_choice"},
        {",\"parallel_tool_calls\":false", "parallel_tool_calls"},
        {",\"reasoning_effort\":7", "reasoning_effort"},
        {",\"top_p\":\"x\"", "'top_p' must be a number"},
        {",\"response_format\":{\"type\":\"xml\"}", "response_format"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(b, sizeof(b), "{\"model\":\"m\",%s%s}", u, cases[i].extra);
        fx_expect_refused(f, b, SB_OP_CHAT, SB_E_BAD_REQUEST, cases[i].frag);
    }
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{"
                      "\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "JSON object string");
    fx_expect_refused(f, "{\"model\":\"m\",\"messages\":{}}", SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "non-empty array");
    /* The list of roles is made from the adapter's table (sb_oai_write_messages). */
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                      "{\"role\":\"function\",\"content\":\"x\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "messages[1]: role must be system, developer, user, assistant or tool for "
                      "ollama");
}

static void test_embed_request(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f, "{\"model\":\"e\",\"input\":[\"a\", \"b\"],\"dimensions\":64}", SB_OP_EMBEDDINGS,
        "{\"model\":\"llama3.2:3b\",\"input\":[\"a\", \"b\"],\"dimensions\":64}");
    assert_string_equal(r.url, BASE "/api/embed");
    fx_expect_body(f, "{\"model\":\"e\",\"input\":\"one\"}", SB_OP_EMBEDDINGS,
                   "{\"model\":\"llama3.2:3b\",\"input\":\"one\"}");
    fx_expect_refused(f, "{\"model\":\"e\",\"input\":[]}", SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST,
                      "'input'");
}

/* ---- whole responses ---- */

#define TEXT_RESPONSE                                                                              \
    "{\"model\":\"llama3.2:3b\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":"    \
    "\"assistant\",\"content\":\"Hello \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80!\"},\"done_reason\":"    \
    "\"stop\",\"done\":true,\"total_duration\":5191566416,\"prompt_eval_count\":26,"               \
    "\"eval_count\":298}"

static void test_text_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f, TEXT_RESPONSE, &res);
    assert_true(!strncmp(json_string_value(json_object_get(j, "id")), "chatcmpl-", 9));
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    fx_expect_json(choice, "message",
                   "{\"role\":\"assistant\",\"content\":\"Hello \xc3\xa9t\xc3\xa9 "
                   "\xf0\x9f\x98\x80!\"}");
    fx_expect_json(choice, "finish_reason", "\"stop\"");
    fx_expect_json(j, "usage",
                   "{\"prompt_tokens\":26,\"completion_tokens\":298,\"total_tokens\":324}");
    assert_int_equal(res.usage.prompt_tokens, 26);
    assert_int_equal(res.usage.completion_tokens, 298);
    json_decref(j);
}

#define TOOL_RESPONSE                                                                              \
    "{\"model\":\"llama3.2:3b\",\"message\":{\"role\":\"assistant\",\"content\":\"\","             \
    "\"thinking\":\"Both cities.\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\","       \
    "\"arguments\":{\"city\":\"Paris\"}}},{\"id\":\"call_x9\",\"function\":{\"index\":1,"          \
    "\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"days\":[1,2]}}}]},"               \
    "\"done_reason\":\"stop\",\"done\":true,\"eval_count\":20}"

static void test_tool_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f, TOOL_RESPONSE, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    fx_expect_json(msg, "content", "null");
    fx_expect_json(msg, "reasoning_content", "\"Both cities.\"");
    json_t *calls = json_object_get(msg, "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    const char *id0 = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
    assert_true(!strncmp(id0, "call_", 5) && strlen(id0) == 29); /* generated */
    fx_expect_json(json_array_get(calls, 0), "function",
                   "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}");
    fx_expect_json(json_array_get(calls, 1), "id", "\"call_x9\""); /* Ollama's own */
    fx_expect_json(json_array_get(calls, 1), "function",
                   "{\"name\":\"get_weather\",\"arguments\":"
                   "\"{\\\"city\\\":\\\"Oslo\\\",\\\"days\\\":[1,2]}\"}");
    fx_expect_json(json_array_get(json_object_get(j, "choices"), 0), "finish_reason",
                   "\"tool_calls\"");
    fx_expect_json(j, "usage",
                   "{\"prompt_tokens\":0,\"completion_tokens\":20,\"total_tokens\":20}");
    json_decref(j);
}

static void test_length_and_bad_responses(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f,
                         "{\"message\":{\"role\":\"assistant\",\"content\":\"abc\"},\"done\":true,"
                         "\"done_reason\":\"length\"}",
                         &res);
    fx_expect_json(json_array_get(json_object_get(j, "choices"), 0), "finish_reason", "\"length\"");
    json_decref(j);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"error\":\"boom\"}"), &res, &err),
                     SB_E_UPSTREAM);
    assert_non_null(strstr(err.msg, "boom"));
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("[1]"), &res, &err), SB_E_UPSTREAM);
}

static void test_embed_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{\"model\":\"e\",\"input\":[\"a\",\"b\"]}", SB_OP_EMBEDDINGS);
    assert_int_equal(
        f->ops->parse_response(&f->c,
                               SB_SLICE("{\"model\":\"all-minilm\",\"embeddings\":[[0.010071029,"
                                        "-0.0017594862],[1,2]],\"total_duration\":14143917,"
                                        "\"prompt_eval_count\":8}"),
                               &res, NULL),
        SB_OK);
    assert_true(sb_slice_eq_cstr(
        res.body, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                  "\"embedding\":[0.010071029,-0.0017594862]},{\"object\":\"embedding\","
                  "\"index\":1,\"embedding\":[1,2]}],\"model\":\"llama3.2:3b\",\"usage\":{"
                  "\"prompt_tokens\":8,\"completion_tokens\":0,\"total_tokens\":8}}"));
    fx_call(f, "{\"model\":\"e\",\"input\":\"a\",\"encoding_format\":\"base64\"}",
            SB_OP_EMBEDDINGS);
    assert_int_equal(
        f->ops->parse_response(&f->c, SB_SLICE("{\"embeddings\":[[0.5]]}"), &res, NULL), SB_OK);
    assert_non_null(memmem(res.body.p, res.body.len, "\"embedding\":\"AAAAPw==\"", 22));
}

/* ---- streams ---- */

#define LINE(msg, rest)                                                                            \
    "{\"model\":\"llama3.2:3b\",\"created_at\":\"2025-01-01T00:00:00Z\","                          \
    "\"message\":" msg "," rest "}\n"

static const char text_stream[] = LINE("{\"role\":\"assistant\",\"content\":\"Hello \xc3\xa9t\"}",
                                       "\"done\":false")
    LINE("{\"role\":\"assistant\",\"content\":\"\xc3\xa9 \xf0\x9f\x98\x80!\"}", "\"done\":false")
        LINE("{\"role\":\"assistant\",\"content\":\"\"}",
             "\"done_reason\":\"stop\",\"done\":true,\"total_duration\":5191566416,"
             "\"prompt_eval_count\":26,\"eval_count\":298");

static void test_text_stream(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(
        f, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        SB_OP_CHAT);
    json_t *s = fx_stream_all(f, text_stream);
    fx_expect_json(s, "result", "\"ok\"");
    fx_expect_json(s, "content", "\"Hello \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80!\"");
    fx_expect_json(s, "finish", "\"stop\"");
    fx_expect_json(s, "done", "true");
    json_t *j = fx_parse(f, TEXT_RESPONSE, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_true(json_equal(json_object_get(msg, "content"), json_object_get(s, "content")));
    assert_true(json_equal(json_object_get(j, "usage"), json_object_get(s, "usage")));
    json_decref(j);
    json_decref(s);
}

static void test_tool_and_thinking_stream(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    json_t *s = fx_stream_all(
        f,
        LINE("{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Both \"}", "\"done\":false")
            LINE("{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"cities.\"}",
                 "\"done\":false")
                LINE("{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\","
                     "\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":"
                     "{\"city\":\"Paris\"}}},{\"id\":\"c2\",\"function\":{\"index\":1,\"name\":"
                     "\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}}]}",
                     "\"done\":false") "\r\n" LINE("{\"role\":\"assistant\",\"content\":\"\"}",
                                                   "\"done_reason\":\"stop\",\"done\":true,\"eval_"
                                                   "count\":20"));
    fx_expect_json(s, "result", "\"ok\"");
    fx_expect_json(s, "reasoning", "\"Both cities.\"");
    fx_expect_json(
        s, "tools",
        "{\"0\":{\"id\":\"c1\",\"name\":\"get_weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\"},\"1\":{\"id\":\"c2\",\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}");
    fx_expect_json(s, "finish", "\"tool_calls\"");
    fx_expect_json(s, "usage",
                   "{\"prompt_tokens\":0,\"completion_tokens\":20,\"total_tokens\":20}");
    json_decref(s);
}

static void test_stream_failures(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    json_t *s = fx_stream_all(f, LINE("{\"role\":\"assistant\",\"content\":\"par\"}",
                                      "\"done\":false") "{\"error\":\"model runner has "
                                                        "unexpectedly stopped\"}\n");
    fx_expect_json(s, "result", "\"feed_error\"");
    fx_expect_json(s, "error", "\"upstream ollama: model runner has unexpectedly stopped\"");
    fx_expect_json(s, "content", "\"par\"");
    json_decref(s);
    /* A last error line without its LF still counts (at finish). */
    s = fx_stream_all(f, "{\"error\":\"out of memory\"}");
    fx_expect_json(s, "error", "\"upstream ollama: out of memory\"");
    assert_string_not_equal(json_string_value(json_object_get(s, "result")), "ok");
    json_decref(s);
    s = fx_stream_all(f, LINE("{\"role\":\"assistant\",\"content\":\"par\"}", "\"done\":false"));
    fx_expect_json(s, "result", "\"finish_error\"");
    assert_non_null(strstr(json_string_value(json_object_get(s, "message")), "done line"));
    json_decref(s);
    s = fx_stream_all(f, "{\"model\":\"x\",\"mess");
    fx_expect_json(s, "result", "\"finish_error\"");
    json_decref(s);
    s = fx_stream_all(f, "not json\n");
    fx_expect_json(s, "result", "\"feed_error\"");
    json_decref(s);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"messages\":[]}", SB_OP_CHAT);
    fx_expect_error(f, 404, "{\"error\":\"model 'llama9' not found\"}", SB_E_NOT_FOUND, 404,
                    "model_not_found", "upstream ollama: model 'llama9' not found");
    fx_expect_error(f, 400, "{\"error\":\"invalid format\"}", SB_E_BAD_REQUEST, 400, "",
                    "invalid format");
    fx_expect_error(f, 500, "{\"error\":\"the input length exceeds the context length\"}",
                    SB_E_BAD_REQUEST, 400, "context_length_exceeded", "context length");
    fx_expect_error(f, 401, "{\"error\":\"unauthorized\",\"signin_url\":\"https://x\"}",
                    SB_E_UNAUTHORIZED, 401, "invalid_api_key", "unauthorized");
    fx_expect_error(f, 403, "{\"error\":\"remote inference disabled\"}", SB_E_FORBIDDEN, 403, "",
                    "disabled");
    fx_expect_error(f, 429, "{\"error\":\"too many requests\"}", SB_E_RATE_LIMITED, 429,
                    "rate_limit_exceeded", "too many");
    fx_expect_error(f, 500, "{\"error\":\"llama runner process has terminated\"}", SB_E_UPSTREAM,
                    500, "", "terminated");
    fx_expect_error(f, 502, "<html>bad gateway</html>", SB_E_UPSTREAM, 502, "",
                    "<html>bad gateway</html>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keyed_stream_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_images, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_round_trip_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_format_think_tool_none, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embed_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_length_and_bad_responses, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embed_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_stream, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_and_thinking_stream, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_failures, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
