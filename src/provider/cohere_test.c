/* SPDX-License-Identifier: MIT */
/*
 * cohere_test.c - the cohere adapter on strings only: OpenAI requests to exact Chat v2 and
 * Embed v2 bodies (messages of every role, images, tools and tool results, reasoning sent
 * back, parameters, refusals), whole responses, SSE event streams under every feed split
 * (text, thinking, tool plans and parallel tool calls in pieces, in-stream errors, early
 * ends), the streamed answer against the whole one, and map_error.
 */
#include "provider/adapter_testlib.h"

#define BASE "https://api.cohere.com"
#define KEY "co-test-secret-1234"

static int setup(void **state)
{
    *state = fx_new("cohere", BASE, KEY, "command-a-03-2025");
    return 0;
}

/* ---- requests ---- */

static void test_basic_request(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{\"model\":\"client-model\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi \\u00e9\"}],\"temperature\":0.2,\"top_p\":0.9,"
        "\"max_tokens\":100,\"stop\":\"END\",\"seed\":7,\"user\":\"u1\"}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":\"Hi \xc3\xa9\"}],\"max_tokens\":100,"
        "\"stop_sequences\":[\"END\"],\"temperature\":0.2,\"p\":0.9,\"seed\":7,\"stream\":false}");
    assert_string_equal(r.url, BASE "/v2/chat");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Authorization"), "Bearer " KEY));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Content-Type"), "application/json"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Accept"), "application/json"));
}

static void test_stream_request(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"max_completion_tokens\":5,\"max_tokens\":9,\"stop\":[\"a\",\"b\"],"
        "\"messages\":[{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"S\"}]},"
        "{\"role\":\"user\",\"content\":\"x\"}]}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"system\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"S\"}]},{\"role\":\"user\",\"content\":\"x\"}],"
        "\"max_tokens\":5,\"stop_sequences\":[\"a\",\"b\"],\"stream\":true}");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Accept"), "text/event-stream"));
}

static void test_images(void **state)
{
    fx_expect_body(
        *state,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"What is this?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\",\"detail\":"
        "\"low\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}"
        "]}]}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"What is this?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\",\"detail\":"
        "\"low\"}},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}"
        "]}],\"stream\":false}");
}

static void test_tool_round_trip_request(void **state)
{
    fx_expect_body(
        *state,
        "{\"model\":\"m\",\"tool_choice\":\"required\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"I will look it up.\","
        "\"tool_calls\":[{\"id\":\"get_weather_1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"get_weather_1\",\"content\":\"18C\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
        "\"Weather\",\"strict\":true,\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
        "{\"type\":\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"noop\"}}]}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"tool_plan\":\"I will look it up.\",\"tool_calls\":[{\"id\":"
        "\"get_weather_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"get_weather_1\",\"content\":\"18C\"}],"
        "\"tool_choice\":\"REQUIRED\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}}}}},{\"type\":\"function\",\"function\":"
        "{\"name\":\"noop\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
        "\"strict_tools\":true,\"stream\":false}");
}

static void test_named_tool_choice(void **state)
{
    fx_expect_body(*state,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"b\"}},"
                   "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":"
                   "{}}},{\"type\":\"function\",\"function\":{\"name\":\"b\",\"parameters\":{}}}]}",
                   SB_OP_CHAT,
                   "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"x\"}],\"tool_choice\":\"REQUIRED\",\"tools\":[{\"type\":\"function\","
                   "\"function\":{\"name\":\"b\",\"parameters\":{}}}],\"stream\":false}");
    fx_expect_body(*state,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"tool_choice\":\"none\"}",
                   SB_OP_CHAT,
                   "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"x\"}],\"tool_choice\":\"NONE\",\"stream\":false}");
}

static void test_reasoning_sent_back(void **state)
{
    fx_expect_body(
        *state,
        "{\"model\":\"m\",\"reasoning_effort\":\"high\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"2+2?\"},"
        "{\"role\":\"assistant\",\"content\":\"4\",\"reasoning_content\":\"Add them.\"},"
        "{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":\"ok\"}]}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Add them.\"},"
        "{\"type\":\"text\",\"text\":\"4\"}]},{\"role\":\"assistant\",\"content\":\"\"},"
        "{\"role\":\"user\",\"content\":\"ok\"}],\"thinking\":{\"type\":\"enabled\","
        "\"token_budget\":16384},\"stream\":false}");
    fx_expect_body(*state,
                   "{\"model\":\"m\",\"reasoning_effort\":\"none\",\"messages\":[{\"role\":"
                   "\"user\",\"content\":\"x\"}]}",
                   SB_OP_CHAT,
                   "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"x\"}],\"thinking\":{\"type\":\"disabled\"},\"stream\":false}");
}

static void test_response_format(void **state)
{
    fx_expect_body(
        *state,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":"
        "{\"type\":\"object\",\"required\":[\"a\"]}}}}",
        SB_OP_CHAT,
        "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"response_format\":{\"type\":\"json_object\",\"json_schema\":{\"type\":\"object\","
        "\"required\":[\"a\"]}},\"stream\":false}");
    fx_expect_body(*state,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"response_format\":{\"type\":\"json_object\"}}",
                   SB_OP_CHAT,
                   "{\"model\":\"command-a-03-2025\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"x\"}],\"response_format\":{\"type\":\"json_object\"},\"stream\":false}");
}

static void test_refusals(void **state)
{
    struct fx *f = *state;
    const char *u = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char b[512];
    static const struct {
        const char *extra, *frag;
    } cases[] = {
        {",\"n\":2", "'n' must be 1"},
        {",\"logprobs\":true", "'logprobs'"},
        {",\"logit_bias\":{\"1\":2}", "'logit_bias' is not supported"},
        {",\"parallel_tool_calls\":false", "parallel_tool_calls"},
        {",\"tool_choice\":\"sometimes\"", "tool_choice"},
        {",\"reasoning_effort\":\"max\"", "reasoning_effort"},
        {",\"temperature\":\"hot\"", "'temperature' must be a number"},
        {",\"max_tokens\":0", "max_tokens"},
        {",\"stop\":[1]", "'stop'"},
        {",\"response_format\":{\"type\":\"json_schema\"}", "response_format"},
        {",\"tools\":[{\"type\":\"code_interpreter\"}]", "tools"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(b, sizeof(b), "{\"model\":\"m\",%s%s}", u, cases[i].extra);
        fx_expect_refused(f, b, SB_OP_CHAT, SB_E_BAD_REQUEST, cases[i].frag);
    }
    fx_expect_refused(f, "{\"model\":\"m\",\"messages\":[]}", SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "non-empty");
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"https://x\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "messages[0]");
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "role");
    /* The list of roles is made from the adapter's table (sb_oai_write_messages). */
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                      "{\"content\":\"x\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "messages[1]: role must be system, developer, user, assistant or tool for "
                      "cohere");
    fx_expect_refused(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "tool_call_id");
    fx_expect_refused(f,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"input_audio\",\"input_audio\":{}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "text or image_url");
}

static void test_embed_request(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f, "{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"dimensions\":256}", SB_OP_EMBEDDINGS,
        "{\"model\":\"command-a-03-2025\",\"texts\":[\"a\",\"b\"],\"input_type\":"
        "\"search_document\",\"embedding_types\":[\"float\"],\"output_dimension\":256}");
    assert_string_equal(r.url, BASE "/v2/embed");
    fx_expect_body(f, "{\"model\":\"e\",\"input\":\"one\",\"encoding_format\":\"base64\"}",
                   SB_OP_EMBEDDINGS,
                   "{\"model\":\"command-a-03-2025\",\"texts\":[\"one\"],\"input_type\":"
                   "\"search_document\",\"embedding_types\":[\"float\"]}");
    fx_expect_refused(f, "{\"model\":\"e\",\"input\":[[1,2]]}", SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST,
                      "token arrays");
    fx_expect_refused(f, "{\"model\":\"e\",\"input\":\"a\",\"encoding_format\":\"int8\"}",
                      SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST, "encoding_format");
}

/* ---- whole responses ---- */

#define TEXT_RESPONSE                                                                              \
    "{\"id\":\"c14c80c3-18eb-4519-9460-6c92edd8cfb4\",\"finish_reason\":\"COMPLETE\","             \
    "\"message\":{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello "        \
    "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80!\"}]},\"usage\":{\"billed_units\":{\"input_tokens\":5,"    \
    "\"output_tokens\":418},\"tokens\":{\"input_tokens\":71,\"output_tokens\":420},"               \
    "\"cached_tokens\":3}}"

static void test_text_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f, TEXT_RESPONSE, &res);
    assert_string_equal(json_string_value(json_object_get(j, "id")),
                        "chatcmpl-c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "command-a-03-2025");
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    fx_expect_json(choice, "message",
                   "{\"role\":\"assistant\",\"content\":\"Hello \xc3\xa9t\xc3\xa9 "
                   "\xf0\x9f\x98\x80!\"}");
    fx_expect_json(choice, "finish_reason", "\"stop\"");
    fx_expect_json(j, "usage",
                   "{\"prompt_tokens\":5,\"completion_tokens\":418,\"total_tokens\":423,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":3}}");
    assert_int_equal(res.usage.prompt_tokens, 5);
    assert_int_equal(res.usage.completion_tokens, 418);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "stop"));
    json_decref(j);
}

#define TOOL_RESPONSE                                                                              \
    "{\"id\":\"t1\",\"finish_reason\":\"TOOL_CALL\",\"message\":{\"role\":\"assistant\","          \
    "\"tool_plan\":\"I will check both.\",\"tool_calls\":[{\"id\":\"get_weather_a\",\"type\":"     \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"           \
    "\\\"Paris\\\"}\"}},{\"id\":\"get_weather_b\",\"type\":\"function\",\"function\":{\"name\":"   \
    "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},\"usage\":{"                \
    "\"tokens\":{\"input_tokens\":30,\"output_tokens\":12.0}}}"

static void test_tool_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f, TOOL_RESPONSE, &res);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    fx_expect_json(
        choice, "message",
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"I will check both.\","
        "\"tool_calls\":[{\"id\":\"get_weather_a\",\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":"
        "\"get_weather_b\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]}");
    fx_expect_json(choice, "finish_reason", "\"tool_calls\"");
    fx_expect_json(j, "usage",
                   "{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42}");
    json_decref(j);
}

static void test_thinking_and_finishes(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err = {0};
    fx_call(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            SB_OP_CHAT);
    json_t *j = fx_parse(f,
                         "{\"id\":\"r\",\"finish_reason\":\"MAX_TOKENS\",\"message\":{\"role\":"
                         "\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Hmm.\"},"
                         "{\"type\":\"text\",\"text\":\"4\"}]}}",
                         &res);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    fx_expect_json(choice, "message",
                   "{\"role\":\"assistant\",\"content\":\"4\",\"reasoning_content\":\"Hmm.\"}");
    fx_expect_json(choice, "finish_reason", "\"length\"");
    fx_expect_json(j, "usage", "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}");
    assert_int_equal(res.usage.prompt_tokens, -1);
    json_decref(j);
    assert_int_equal(f->ops->parse_response(
                         &f->c,
                         SB_SLICE("{\"id\":\"r\",\"finish_reason\":\"ERROR\",\"message\":{}}"),
                         &res, &err),
                     SB_E_UPSTREAM);
    assert_non_null(strstr(err.msg, "ERROR"));
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("<html>"), &res, &err), SB_E_UPSTREAM);
}

static void test_embed_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    const char *up = "{\"id\":\"e1\",\"embeddings\":{\"float\":[[0.5,-1.25e-2],[1,0]]},"
                     "\"texts\":[\"a\",\"b\"],\"meta\":{\"billed_units\":{\"input_tokens\":4}},"
                     "\"response_type\":\"embeddings_by_type\"}";
    fx_call(f, "{\"model\":\"e\",\"input\":[\"a\",\"b\"]}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(up), &res, NULL), SB_OK);
    assert_true(sb_slice_eq_cstr(
        res.body, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                  "\"embedding\":[0.5,-1.25e-2]},{\"object\":\"embedding\",\"index\":1,"
                  "\"embedding\":[1,0]}],\"model\":\"command-a-03-2025\",\"usage\":{"
                  "\"prompt_tokens\":4,\"completion_tokens\":0,\"total_tokens\":4}}"));
    assert_int_equal(res.usage.prompt_tokens, 4);
    fx_call(f, "{\"model\":\"e\",\"input\":\"a\",\"encoding_format\":\"base64\"}",
            SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->parse_response(
                         &f->c, SB_SLICE("{\"embeddings\":{\"float\":[[1.0,-2.0]]}}"), &res, NULL),
                     SB_OK);
    /* 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (little-endian) */
    assert_non_null(memmem(res.body.p, res.body.len, "\"embedding\":\"AACAPwAAAMA=\"", 26));
    struct sb_error err;
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"embeddings\":{}}"), &res, &err),
                     SB_E_UPSTREAM);
}

/* ---- streams ---- */

#define EV(name, json) "event: " name "\ndata: " json "\n\n"

static const char text_stream[] =
    EV("message-start", "{\"id\":\"29f14a5a\",\"type\":\"message-start\",\"delta\":{\"message\":"
                        "{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":"
                        "[],\"citations\":[]}}}")
        EV("content-start", "{\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":"
                            "{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}")
            EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":"
                                "{\"content\":{\"text\":\"Hello \xc3\xa9t\xc3\xa9\"}}},"
                                "\"logprobs\":null}")
                EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{"
                                    "\"message\":{\"content\":{\"text\":\" \xf0\x9f\x98\x80!\"}}}}")
                    EV("content-end", "{\"type\":\"content-end\",\"index\":0}")
                        EV("message-end",
                           "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\","
                           "\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":418},"
                           "\"tokens\":{\"input_tokens\":71,\"output_tokens\":420},"
                           "\"cached_tokens\":3}}}") "data: [DONE]\n\n";

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
    fx_expect_json(s, "usage",
                   "{\"prompt_tokens\":5,\"completion_tokens\":418,\"total_tokens\":423,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":3}}");
    /* The streamed answer equals the whole one. */
    json_t *j = fx_parse(f, TEXT_RESPONSE, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_true(json_equal(json_object_get(msg, "content"), json_object_get(s, "content")));
    assert_true(json_equal(json_object_get(j, "usage"), json_object_get(s, "usage")));
    json_decref(j);
    json_decref(s);
}

static const char tool_stream[] =
    EV("message-start", "{\"id\":\"t1\",\"type\":\"message-start\",\"delta\":{\"message\":"
                        "{\"role\":\"assistant\"}}}")
        EV("tool-plan-delta", "{\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{"
                              "\"tool_plan\":\"I will \"}}}")
            EV("tool-plan-delta", "{\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{"
                                  "\"tool_plan\":\"check both.\"}}}")
                EV("tool-call-start",
                   "{\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{"
                   "\"tool_calls\":{\"id\":\"get_weather_a\",\"type\":\"function\",\"function\":"
                   "{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}")
                    EV("tool-call-delta",
                       "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{"
                       "\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}}")
                        EV("tool-call-delta",
                           "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{"
                           "\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}}}}")
                            EV("tool-call-end", "{\"type\":\"tool-call-end\",\"index\":0}") EV(
                                "tool-call-start",
                                "{\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":"
                                "{\"tool_calls\":{\"id\":\"get_weather_b\",\"type\":\"function\","
                                "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}")
                                EV("tool-call-delta",
                                   "{\"type\":\"tool-call-delta\",\"index\":1,\"delta\":{"
                                   "\"message\":{\"tool_calls\":{\"function\":{\"arguments\":"
                                   "\"{\\\"city\\\":\\\"Oslo\\\"}\"}}}}}")
                                    EV("tool-call-end", "{\"type\":\"tool-call-end\",\"index\":1}")
                                        EV("message-end",
                                           "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":"
                                           "\"TOOL_CALL\",\"usage\":{\"tokens\":{\"input_tokens\":"
                                           "30,\"output_tokens\":12}}}}");

static void test_tool_stream(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(
        f, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        SB_OP_CHAT);
    json_t *s = fx_stream_all(f, tool_stream);
    fx_expect_json(s, "result", "\"ok\"");
    fx_expect_json(s, "reasoning", "\"I will check both.\"");
    fx_expect_json(s, "content", "\"\""); /* message-start's role chunk carries content "" */
    fx_expect_json(s, "tools",
                   "{\"0\":{\"id\":\"get_weather_a\",\"name\":\"get_weather\",\"arguments\":"
                   "\"{\\\"city\\\":\\\"Paris\\\"}\"},\"1\":{\"id\":\"get_weather_b\",\"name\":"
                   "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}");
    fx_expect_json(s, "finish", "\"tool_calls\"");
    /* Same calls as the whole response. */
    json_t *j = fx_parse(f, TOOL_RESPONSE, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 1);
    assert_true(json_equal(
        json_object_get(json_object_get(tc, "function"), "arguments"),
        json_object_get(json_object_get(json_object_get(s, "tools"), "1"), "arguments")));
    assert_true(
        json_equal(json_object_get(msg, "reasoning_content"), json_object_get(s, "reasoning")));
    json_decref(j);
    json_decref(s);
}

static void test_thinking_stream(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    json_t *s = fx_stream_all(
        f, EV("message-start", "{\"id\":\"r\",\"type\":\"message-start\"}") EV(
               "content-start", "{\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{"
                                "\"content\":{\"type\":\"thinking\",\"thinking\":\"\"}}}}")
               EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":"
                                   "{\"content\":{\"thinking\":\"Add.\"}}}}")
                   EV("content-delta", "{\"type\":\"content-delta\",\"index\":1,\"delta\":{"
                                       "\"message\":{\"content\":{\"text\":\"4\"}}}}")
                       EV("citation-start", "{\"type\":\"citation-start\",\"index\":0}")
                           EV("message-end", "{\"type\":\"message-end\",\"delta\":{"
                                             "\"finish_reason\":\"MAX_TOKENS\"}}"));
    fx_expect_json(s, "result", "\"ok\"");
    fx_expect_json(s, "reasoning", "\"Add.\"");
    fx_expect_json(s, "content", "\"4\"");
    fx_expect_json(s, "finish", "\"length\"");
    assert_null(json_object_get(s, "usage")); /* none reported: no usage chunk */
    json_decref(s);
}

static void test_stream_failures(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    json_t *s = fx_stream_all(
        f, EV("message-start", "{\"id\":\"r\",\"type\":\"message-start\"}")
               EV("content-delta", "{\"type\":\"content-delta\",\"delta\":{\"message\":{"
                                   "\"content\":{\"text\":\"par\"}}}}")
                   EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":"
                                     "\"ERROR\",\"error\":\"model overloaded " KEY "\"}}"));
    fx_expect_json(s, "result", "\"feed_error\"");
    fx_expect_json(s, "error", "\"upstream cohere: model overloaded *******************\"");
    fx_expect_json(s, "message", "\"upstream cohere: model overloaded *******************\"");
    json_decref(s);
    /* Truncated: no message-end, or cut inside an event. */
    s = fx_stream_all(f,
                      EV("message-start",
                         "{\"id\":\"r\",\"type\":\"message-start\"}") "event: content-delta\ndata: "
                                                                      "{\"type\":\"content-de");
    fx_expect_json(s, "result", "\"finish_error\"");
    assert_non_null(strstr(json_string_value(json_object_get(s, "message")), "message-end"));
    json_decref(s);
    s = fx_stream_all(f, "data: <html>\n\n");
    fx_expect_json(s, "result", "\"feed_error\"");
    json_decref(s);
    s = fx_stream_all(f, "data: {\"message\":\"invalid request\"}\n\n");
    fx_expect_json(s, "error", "\"upstream cohere: invalid request\"");
    json_decref(s);
    s = fx_stream_all(f, EV("tool-call-delta", "{\"type\":\"tool-call-delta\",\"delta\":{"
                                               "\"message\":{\"tool_calls\":{\"function\":{"
                                               "\"arguments\":\"x\"}}}}}"));
    fx_expect_json(s, "result", "\"feed_error\"");
    json_decref(s);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"m\",\"messages\":[]}", SB_OP_CHAT);
    fx_expect_error(f, 401, "{\"id\":\"x\",\"message\":\"invalid api token " KEY "\"}",
                    SB_E_UNAUTHORIZED, 401, "invalid_api_key", "invalid api token ****");
    fx_expect_error(f, 404, "{\"id\":\"x\",\"message\":\"model 'nope' not found, make sure ...\"}",
                    SB_E_NOT_FOUND, 404, "model_not_found", "model 'nope' not found");
    fx_expect_error(f, 400,
                    "{\"message\":\"too many tokens: total number of tokens in the prompt cannot "
                    "exceed 128000\"}",
                    SB_E_BAD_REQUEST, 400, "context_length_exceeded", "too many tokens");
    fx_expect_error(f, 400, "{\"message\":\"invalid request: message must be at least 1 token\"}",
                    SB_E_BAD_REQUEST, 400, "", "at least 1 token");
    fx_expect_error(f, 422, "{\"message\":\"unprocessable\"}", SB_E_UNPROCESSABLE, 422, "",
                    "unprocessable");
    fx_expect_error(f, 429, "{\"message\":\"You are using a Trial key\"}", SB_E_RATE_LIMITED, 429,
                    "rate_limit_exceeded", "Trial key");
    fx_expect_error(f, 498, "{\"message\":\"invalid token\"}", SB_E_UNAUTHORIZED, 401,
                    "invalid_api_key", "invalid token");
    fx_expect_error(f, 499, "{\"message\":\"request cancelled\"}", SB_E_UPSTREAM, 502, "",
                    "cancelled");
    fx_expect_error(f, 500, "{\"message\":\"internal server error\"}", SB_E_UPSTREAM, 500, "",
                    "internal server error");
    fx_expect_error(f, 503, "Service\nUnavailable", SB_E_UPSTREAM, 503, "",
                    "upstream cohere: Service Unavailable");
    fx_expect_error(f, 502, "", SB_E_UPSTREAM, 502, "", "HTTP 502");
    /* A reused error loses the previous precise code (sb_fail clears api_code). */
    struct sb_error err = {0};
    f->ops->map_error(&f->c, 404, SB_SLICE("{\"message\":\"model x not found\"}"), &err);
    assert_string_equal(err.api_code, "model_not_found");
    f->ops->map_error(&f->c, 400, SB_SLICE("{\"message\":\"bad\"}"), &err);
    assert_string_equal(err.api_code, "");
    assert_int_equal(err.http_status, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_images, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_round_trip_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_named_tool_choice, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reasoning_sent_back, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_format, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embed_request, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_thinking_and_finishes, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embed_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_stream, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tool_stream, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_thinking_stream, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_failures, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
