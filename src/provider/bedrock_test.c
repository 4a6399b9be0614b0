/* SPDX-License-Identifier: MIT */
/*
 * bedrock_test.c - the bedrock adapter on strings only: Converse request
 * bodies asserted byte for byte (system, multi-part content, images, tools
 * and their results, reasoning round trips, inferenceConfig), refused
 * parameters, the model id's path encoding against what SigV4 signs,
 * InvokeModel embedding bodies, whole answers, ConverseStream frames fed
 * whole, byte by byte, at every split point and in random pieces (the
 * streamed content must equal the whole answer's), exception frames,
 * truncated and corrupt streams, and map_error.
 */
#include "provider/adapter_testlib.h"
#include "crypto/sigv4.h"
#include "provider/eventstream.h"

#define BASE "https://bedrock-runtime.us-east-1.amazonaws.com"
#define HAIKU "anthropic.claude-3-haiku-20240307-v1:0"

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *f = fx_open((struct sb_provider){.id = "aws",
                                                .type = "bedrock",
                                                .base_url = BASE,
                                                .auth = SB_AUTH_SIGV4,
                                                .region = "us-east-1"},
                           NULL, (struct sb_model){.id = "claude", .upstream_model = HAIKU});
    f->p.aws_access_key_id = sb_secret_new("AKIDEXAMPLE", 11);
    f->p.aws_secret_access_key = sb_secret_new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 40);
    *state = f;
    return 0;
}

/* ==================================================================
 * Requests
 * ================================================================== */

static void test_request_text_and_system(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No emoji.\"}]},"
        "{\"role\":\"user\",\"content\":\"Hi \\\"you\\\" \\u00e9\"}]}",
        SB_OP_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi \\\"you\\\" \xc3\xa9\"}]}],"
        "\"system\":[{\"text\":\"Be brief.\"},{\"text\":\"No emoji.\"}]}");
}

static void test_request_url_headers_and_signed_path(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r =
        fx_build(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", SB_OP_CHAT);
    assert_string_equal(r.url, BASE "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    assert_string_equal(r.method, "POST");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Content-Type"), "application/json"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Accept"), "application/json"));
    struct sb_slice auth = fx_header(&r, "Authorization");
    assert_true(sb_slice_starts_with(auth, SB_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")));
    assert_non_null(memmem(auth.p, auth.len, "/us-east-1/bedrock/aws4_request", 31));
    assert_true(fx_header(&r, "X-Amz-Date").len == 16);
    /* The canonical request SigV4 hashes names the path we send, encoded once more. */
    struct sb_sigv4_request sr = {
        .method = SB_SLICE("POST"), .url = sb_slice_cstr(r.url), .body = r.body};
    struct sb_sigv4_params sp = {.region = SB_SLICE("us-east-1"),
                                 .service = SB_SLICE("bedrock"),
                                 .access_key_id = SB_SLICE("AKIDEXAMPLE"),
                                 .secret_key = SB_SLICE("x"),
                                 .time = 1};
    struct sb_buf canon;
    struct sb_error err;
    sb_buf_init(&canon, 0);
    assert_int_equal(sb_sigv4_canonical_request(&sr, &sp, "19700101T000001Z", &canon, &err), SB_OK);
    assert_true(sb_slice_starts_with(
        sb_buf_slice(&canon),
        SB_SLICE("POST\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n")));
    sb_buf_free(&canon);
}

static void test_request_arn_and_stream_url(void **state)
{
    struct fx *f = *state;
    f->m.upstream_model = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                          "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
    struct sb_upstream_req r = fx_build(
        f, "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", SB_OP_CHAT);
    assert_string_equal(r.url, BASE "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A"
                                    "inference-profile%2Fus.anthropic.claude-3-7-sonnet-20250219-"
                                    "v1%3A0/converse-stream");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "Accept"), "application/vnd.amazon.eventstream"));
}

static void test_request_inference_config(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":50,"
                   "\"max_completion_tokens\":100,\"temperature\":0.25,\"top_p\":1e-1,"
                   "\"stop\":\"END\",\"n\":1,\"user\":\"u1\",\"stream_options\":null}",
                   SB_OP_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}],"
                   "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.25,\"topP\":1e-1,"
                   "\"stopSequences\":[\"END\"]}}");
    fx_expect_body(f,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\"]}",
                   SB_OP_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}],"
                   "\"inferenceConfig\":{\"stopSequences\":[\"a\",\"b\"]}}");
}

static void test_request_images(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/4AA=\"}}]}]}",
        SB_OP_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"What?\"},{\"image\":"
        "{\"format\":\"jpeg\",\"source\":{\"bytes\":\"/9j/4AA=\"}}}]}]}");
    fx_expect_refused(f,
                      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "not http(s) URLs");
    fx_expect_refused(f,
                      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"data:image/png;base64,a b\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "not valid base64");
    fx_expect_refused(f,
                      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
                      "\"input_audio\":{}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "input_audio");
}

static void test_request_tools_round_trip(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"tooluse_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
        "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"id\":\"tooluse_2\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
        "\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"tooluse_1\",\"content\":\"18C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"tooluse_2\",\"content\":[{\"type\":\"text\","
        "\"text\":\"21C\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"description\":"
        "\"Get weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
        "{\"type\":\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"noop\"}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":true}",
        SB_OP_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Weather in Paris and "
        "Rome?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"tooluse_1\",\"name\":"
        "\"weather\",\"input\":{\"city\": \"Paris\"}}},{\"toolUse\":{\"toolUseId\":\"tooluse_2\","
        "\"name\":\"weather\",\"input\":{}}}]},"
        "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"tooluse_1\",\"content\":"
        "[{\"text\":\"18C\"}]}},{\"toolResult\":{\"toolUseId\":\"tooluse_2\",\"content\":"
        "[{\"text\":\"21C\"}]}},{\"text\":\"Thanks\"}]}],"
        "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"weather\",\"description\":"
        "\"Get weather\",\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":"
        "{\"type\":\"string\"}}}}}},{\"toolSpec\":{\"name\":\"noop\",\"inputSchema\":{\"json\":"
        "{\"type\":\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"any\":{}}}}");
}

static void test_request_tool_choice(void **state)
{
    struct fx *f = *state;
    static const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
    char body[512];
    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":"
             "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
             tools);
    struct sb_upstream_req r = fx_build(f, body, SB_OP_CHAT);
    assert_non_null(memmem(r.body.p, r.body.len, "\"toolChoice\":{\"tool\":{\"name\":\"f\"}}", 34));
    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"auto\"}",
             tools);
    r = fx_build(f, body, SB_OP_CHAT);
    assert_non_null(memmem(r.body.p, r.body.len, "\"toolChoice\":{\"auto\":{}}", 24));
    /* none without tool history: no tools at all */
    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"none\"}",
             tools);
    fx_expect_body(f, body, SB_OP_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}");
    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
             "\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"1\"}],%s,"
             "\"tool_choice\":\"none\"}",
             tools);
    fx_expect_refused(f, body, SB_OP_CHAT, SB_E_BAD_REQUEST, "tool_choice 'none'");
    fx_expect_refused(f,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                      "\"retrieval\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "type function");
    fx_expect_refused(f,
                      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
                      "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "arguments must be a JSON object");
}

static void test_request_reasoning_round_trip(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"},{\"role\":\"assistant\","
        "\"content\":\"4\",\"reasoning_content\":\"Adding.\",\"thinking_blocks\":["
        "{\"type\":\"thinking\",\"thinking\":\"Adding.\",\"signature\":\"EqQBCkYIARgC+/=\"},"
        "{\"type\":\"redacted_thinking\",\"data\":\"RVJBU0VE\"}]},"
        "{\"role\":\"user\",\"content\":\"And 3+3?\"}],\"reasoning_effort\":\"low\","
        "\"max_tokens\":500}",
        SB_OP_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"2+2?\"}]},{\"role\":"
        "\"assistant\",\"content\":[{\"reasoningContent\":{\"reasoningText\":{\"text\":"
        "\"Adding.\",\"signature\":\"EqQBCkYIARgC+/=\"}}},{\"reasoningContent\":"
        "{\"redactedContent\":\"RVJBU0VE\"}},{\"text\":\"4\"}]},{\"role\":\"user\",\"content\":"
        "[{\"text\":\"And 3+3?\"}]}],\"inferenceConfig\":{\"maxTokens\":1524},"
        "\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\","
        "\"budget_tokens\":1024}}}");
    /* a max that already fits the budget is kept; none asked: budget + 4096 */
    struct sb_upstream_req r =
        fx_build(f,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":"
                 "\"high\",\"max_tokens\":20000}",
                 SB_OP_CHAT);
    assert_non_null(memmem(r.body.p, r.body.len, "\"maxTokens\":20000", 17));
    r = fx_build(f,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":"
                 "\"medium\"}",
                 SB_OP_CHAT);
    assert_non_null(memmem(r.body.p, r.body.len, "\"maxTokens\":8192", 16));
    fx_expect_refused(
        f,
        "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\",\"thinking_blocks\":"
        "[{\"type\":\"thinking\",\"thinking\":\"t\"}]}]}",
        SB_OP_CHAT, SB_E_BAD_REQUEST, "thinking_blocks");
}

static void test_request_refusals(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *extra, *words;
    } cases[] = {
        {"\"n\":2", "'n'"},
        {"\"logprobs\":true", "'logprobs'"},
        {"\"presence_penalty\":0.5", "'presence_penalty'"},
        {"\"response_format\":{\"type\":\"json_object\"}", "'response_format'"},
        {"\"parallel_tool_calls\":false", "'parallel_tool_calls'"},
        {"\"seed\":7", "'seed'"},
        {"\"functions\":[]", "'functions'"},
        {"\"reasoning_effort\":\"max\"", "low, medium or high"},
        {"\"max_tokens\":0", "positive integer"},
        {"\"temperature\":\"hot\"", "'temperature' must be a number"},
        {"\"stop\":[1]", "stop must be"},
        {"\"tool_choice\":\"auto\"", "tool_choice needs tools"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}",
                 cases[i].extra);
        fx_expect_refused(f, body, SB_OP_CHAT, SB_E_BAD_REQUEST, cases[i].words);
    }
    fx_expect_refused(f, "{\"messages\":[]}", SB_OP_CHAT, SB_E_BAD_REQUEST, "non-empty array");
    fx_expect_refused(f, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", SB_OP_CHAT,
                      SB_E_BAD_REQUEST, "needs a role");
    fx_expect_refused(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", SB_OP_CHAT,
                      SB_E_BAD_REQUEST, "no content");
    fx_expect_refused(f, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", SB_OP_CHAT,
                      SB_E_BAD_REQUEST, "tool_call_id");
    /* accepted neutral values */
    fx_build(f,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":false,"
             "\"frequency_penalty\":0,\"response_format\":{\"type\":\"text\"},\"seed\":null}",
             SB_OP_CHAT);
}

static void test_request_embeddings(void **state)
{
    struct fx *f = *state;
    f->m.upstream_model = "amazon.titan-embed-text-v2:0";
    struct sb_upstream_req r =
        fx_build(f, "{\"model\":\"e\",\"input\":[\"hello\"],\"dimensions\":256}", SB_OP_EMBEDDINGS);
    assert_string_equal(r.url, BASE "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_true(sb_slice_eq_cstr(r.body, "{\"inputText\":\"hello\",\"dimensions\":256}"));
    fx_expect_refused(f, "{\"input\":[\"a\",\"b\"]}", SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST,
                      "one string per request");
    fx_expect_refused(f, "{\"input\":[1,2]}", SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST,
                      "one string per request");
    fx_expect_refused(f, "{\"input\":\"a\",\"encoding_format\":\"int8\"}", SB_OP_EMBEDDINGS,
                      SB_E_BAD_REQUEST, "encoding_format");
    f->m.upstream_model = "cohere.embed-english-v3";
    r = fx_build(f, "{\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}", SB_OP_EMBEDDINGS);
    assert_true(
        sb_slice_eq_cstr(r.body, "{\"texts\":[\"a\",\"b\"],\"input_type\":\"search_document\"}"));
    fx_expect_refused(f, "{\"input\":[\"a\",[1]]}", SB_OP_EMBEDDINGS, SB_E_BAD_REQUEST,
                      "token arrays");
}

static void test_request_needs_credentials(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err = {0};
    struct sb_secret *keep = f->p.aws_secret_access_key;
    f->p.aws_secret_access_key = NULL;
    fx_call(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_CONFIG);
    assert_null(strstr(err.msg, "AKIDEXAMPLE"));
    f->p.aws_secret_access_key = keep;
}

/* ==================================================================
 * Whole answers
 * ================================================================== */

static json_t *parse_result(struct fx *f, const char *client, const char *upstream, enum sb_op op,
                            struct sb_result *res)
{
    fx_call(f, client, op);
    return fx_parse(f, upstream, res);
}

static const char *WHOLE =
    "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":["
    "{\"reasoningContent\":{\"reasoningText\":{\"text\":\"Think.\",\"signature\":\"sig==\"}}},"
    "{\"text\":\"Hello \"},{\"text\":\"w\xc3\xb6rld\"},"
    "{\"toolUse\":{\"toolUseId\":\"tooluse_a\",\"name\":\"weather\",\"input\":{\"city\":\"Paris\"}}"
    "}]}},"
    "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":10,\"outputTokens\":5,"
    "\"totalTokens\":15,\"cacheReadInputTokens\":3},\"metrics\":{\"latencyMs\":100}}";

static void test_response_whole(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    json_t *j = parse_result(f, "{\"messages\":[]}", WHOLE, SB_OP_CHAT, &res);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_int_equal(strncmp(json_string_value(json_object_get(j, "id")), "chatcmpl-", 9), 0);
    assert_string_equal(json_string_value(json_object_get(j, "model")), HAIKU);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello w\xc3\xb6rld");
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning_content")), "Think.");
    json_t *tb = json_array_get(json_object_get(msg, "thinking_blocks"), 0);
    assert_string_equal(json_string_value(json_object_get(tb, "signature")), "sig==");
    assert_string_equal(json_string_value(json_object_get(tb, "type")), "thinking");
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(tc, "id")), "tooluse_a");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")),
        "{\"city\":\"Paris\"}");
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 13);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 18);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"),
                                                        "cached_tokens")),
                     3);
    assert_int_equal(res.usage.prompt_tokens, 13);
    assert_int_equal(res.usage.completion_tokens, 5);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "tool_calls"));
    json_decref(j);
}

static void test_response_finish_reasons(void **state)
{
    struct fx *f = *state;
    static const char *pairs[][2] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"tool_use", "tool_calls"},
        {"content_filtered", "content_filter"},
        {"guardrail_intervened", "content_filter"},
        {"malformed_model_output", "stop"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        char up[256];
        struct sb_result res;
        snprintf(up, sizeof(up),
                 "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[]}},"
                 "\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":1,\"outputTokens\":0}}",
                 pairs[i][0]);
        json_t *j = parse_result(f, "{}", up, SB_OP_CHAT, &res);
        assert_true(sb_slice_eq_cstr(res.finish_reason, pairs[i][1]));
        json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
        assert_string_equal(json_string_value(json_object_get(msg, "content")), "");
        assert_null(json_object_get(msg, "tool_calls"));
        json_decref(j);
    }
    struct sb_error err = {0};
    fx_call(f, "{}", SB_OP_CHAT);
    struct sb_result res;
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"output\":{}}"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("[1"), &res, &err), SB_E_UPSTREAM);
}

static void test_response_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    f->m.upstream_model = "amazon.titan-embed-text-v2:0";
    json_t *j = parse_result(f, "{\"input\":\"hi\"}",
                             "{\"embedding\":[0.5,-1.25,3],\"inputTextTokenCount\":2}",
                             SB_OP_EMBEDDINGS, &res);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *d = json_array_get(json_object_get(j, "data"), 0);
    assert_int_equal(json_array_size(json_object_get(d, "embedding")), 3);
    assert_true(json_real_value(json_array_get(json_object_get(d, "embedding"), 1)) == -1.25);
    assert_int_equal(res.usage.prompt_tokens, 2);
    json_decref(j);
    /* base64: little-endian float32 0.5, -1.25, 3.0 */
    j = parse_result(f, "{\"input\":\"hi\",\"encoding_format\":\"base64\"}",
                     "{\"embedding\":[0.5,-1.25,3],\"inputTextTokenCount\":2}", SB_OP_EMBEDDINGS,
                     &res);
    d = json_array_get(json_object_get(j, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "embedding")), "AAAAPwAAoL8AAEBA");
    json_decref(j);
    f->m.upstream_model = "cohere.embed-english-v3";
    j = parse_result(f, "{\"input\":[\"a\",\"b\"]}",
                     "{\"embeddings\":[[1,2],[3,4]],\"id\":\"x\",\"response_type\":"
                     "\"embeddings_floats\",\"texts\":[\"a\",\"b\"]}",
                     SB_OP_EMBEDDINGS, &res);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
    assert_int_equal(res.usage.prompt_tokens, -1);
    json_decref(j);
}

/* ==================================================================
 * Streams
 * ================================================================== */

/* Appends one event frame (:event-type, :content-type, :message-type event). */
static void frame(struct sb_buf *out, const char *type, const char *payload)
{
    struct sb_eventstream_header h[3] = {
        {SB_SLICE(":event-type"), SB_EVENTSTREAM_STRING, sb_slice_cstr(type), 0},
        {SB_SLICE(":content-type"), SB_EVENTSTREAM_STRING, SB_SLICE("application/json"), 0},
        {SB_SLICE(":message-type"), SB_EVENTSTREAM_STRING, SB_SLICE("event"), 0},
    };
    assert_int_equal(sb_eventstream_encode(out, h, 3, sb_slice_cstr(payload)), SB_OK);
}

static void exception(struct sb_buf *out, const char *type, const char *payload)
{
    struct sb_eventstream_header h[3] = {
        {SB_SLICE(":exception-type"), SB_EVENTSTREAM_STRING, sb_slice_cstr(type), 0},
        {SB_SLICE(":content-type"), SB_EVENTSTREAM_STRING, SB_SLICE("application/json"), 0},
        {SB_SLICE(":message-type"), SB_EVENTSTREAM_STRING, SB_SLICE("exception"), 0},
    };
    assert_int_equal(sb_eventstream_encode(out, h, 3, sb_slice_cstr(payload)), SB_OK);
}

/* The same answer as WHOLE, streamed, with a second (parallel) tool call. */
static void full_stream(struct sb_buf *b)
{
    frame(b, "messageStart", "{\"p\":\"abcd\",\"role\":\"assistant\"}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"Thi\"}},\"p\":"
          "\"a\"}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"nk.\"}}}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"sig==\"}}}");
    frame(b, "contentBlockStop", "{\"contentBlockIndex\":0}");
    frame(b, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hello \"}}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"w\xc3\xb6rld\"}}");
    frame(b, "contentBlockStop", "{\"contentBlockIndex\":1}");
    frame(b, "contentBlockStart",
          "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":"
          "\"tooluse_a\",\"name\":\"weather\"}}}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{\\\"city\\\":\"}}}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"\\\"Paris\\\"}\"}}}");
    frame(b, "contentBlockStop", "{\"contentBlockIndex\":2}");
    frame(b, "contentBlockStart",
          "{\"contentBlockIndex\":3,\"start\":{\"toolUse\":{\"toolUseId\":"
          "\"tooluse_b\",\"name\":\"time\"}}}");
    frame(b, "contentBlockDelta",
          "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}");
    frame(b, "contentBlockStop", "{\"contentBlockIndex\":3}");
    frame(b, "messageStop", "{\"stopReason\":\"tool_use\"}");
    frame(b, "metadata",
          "{\"usage\":{\"inputTokens\":10,\"outputTokens\":5,\"totalTokens\":15,"
          "\"cacheReadInputTokens\":3},\"metrics\":{\"latencyMs\":100}}");
}

/* The chunks we expect, with id and created left out. */
static const char *const FULL_CHUNKS[] = {
    "{\"role\":\"assistant\",\"content\":\"\"}|",
    "{\"reasoning_content\":\"Thi\"}|",
    "{\"reasoning_content\":\"nk.\"}|",
    "{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"Think.\",\"signature\":"
    "\"sig==\"}]}|",
    "{\"content\":\"Hello \"}|",
    "{\"content\":\"w\xc3\xb6rld\"}|",
    "{\"tool_calls\":[{\"index\":0,\"id\":\"tooluse_a\",\"type\":\"function\",\"function\":"
    "{\"name\":\"weather\",\"arguments\":\"\"}}]}|",
    "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}|",
    "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}|",
    "{\"tool_calls\":[{\"index\":1,\"id\":\"tooluse_b\",\"type\":\"function\",\"function\":"
    "{\"name\":\"time\",\"arguments\":\"\"}}]}|",
    "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]}|",
    "{}|tool_calls",
    "usage {\"prompt_tokens\":13,\"completion_tokens\":5,\"total_tokens\":18,"
    "\"prompt_tokens_details\":{\"cached_tokens\":3}}",
    "done",
};

struct run {
    char *lines[64];
    size_t n;
    struct sb_buf content; /* the text facts, joined */
    char id[64];
    char errmsg[256];
};

/* Reduces an event to one comparable line; checks the chunk's head on the way. */
static int on_event(void *ud, const struct sb_event *ev)
{
    struct run *r = ud;
    char line[1024];
    assert_true(r->n < 64);
    if (ev->kind == SB_EV_DONE) {
        snprintf(line, sizeof(line), "done");
    } else if (ev->kind == SB_EV_ERROR) {
        snprintf(line, sizeof(line), "error %s", ev->error.msg);
    } else {
        json_error_t jerr;
        json_t *j = json_loadb(ev->chunk.p, ev->chunk.len, 0, &jerr);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "object")),
                            "chat.completion.chunk");
        assert_string_equal(json_string_value(json_object_get(j, "model")), HAIKU);
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!r->id[0])
            snprintf(r->id, sizeof(r->id), "%s", id);
        assert_string_equal(id, r->id); /* one id for the whole stream */
        json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
        if (ev->usage_only) {
            assert_int_equal(json_array_size(json_object_get(j, "choices")), 0);
            char *u = json_dumps(json_object_get(j, "usage"), JSON_COMPACT | JSON_PRESERVE_ORDER);
            snprintf(line, sizeof(line), "usage %s", u);
            free(u);
            assert_true(ev->has_usage);
        } else {
            char *d =
                json_dumps(json_object_get(choice, "delta"), JSON_COMPACT | JSON_PRESERVE_ORDER);
            const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
            snprintf(line, sizeof(line), "%s|%s", d, fr ? fr : "");
            free(d);
            assert_true(sb_slice_eq_cstr(ev->finish_reason, fr ? fr : ""));
        }
        sb_buf_append_slice(&r->content, ev->text);
        json_decref(j);
    }
    r->lines[r->n++] = strdup(line);
    return 0;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    sb_buf_free(&r->content);
}

/* Feeds up[0..len) cut at the given offsets; returns "ok", "feed_error" or "finish_error". */
static const char *feed(struct fx *f, struct sb_slice up, const size_t *cuts, size_t ncuts,
                        struct run *r)
{
    struct sb_error err = {0};
    void *st = f->ops->stream_open(&f->c);
    size_t at = 0;
    memset(r, 0, sizeof(*r));
    sb_buf_init(&r->content, 0);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : up.len;
        if (f->ops->stream_feed(st, up.p + at, end - at, on_event, r, &err) != SB_OK) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", err.msg);
            return "feed_error";
        }
        at = end;
    }
    if (f->ops->stream_finish(st, on_event, r, &err) != SB_OK) {
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", err.msg);
        return "finish_error";
    }
    return "ok";
}

static void expect_full(struct run *r)
{
    size_t want = sizeof(FULL_CHUNKS) / sizeof(FULL_CHUNKS[0]);
    if (r->n != want)
        fail_msg("%zu events, want %zu", r->n, want);
    for (size_t i = 0; i < want; i++)
        if (strcmp(r->lines[i], FULL_CHUNKS[i]) != 0)
            fail_msg("event %zu:\n got %s\nwant %s", i, r->lines[i], FULL_CHUNKS[i]);
    assert_true(sb_slice_eq_cstr(sb_buf_slice(&r->content), "Hello w\xc3\xb6rld"));
}

static void test_stream_every_split(void **state)
{
    struct fx *f = *state;
    struct sb_buf b;
    struct run r;
    sb_buf_init(&b, 0);
    full_stream(&b);
    fx_call(f, "{\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    struct sb_slice up = sb_buf_slice(&b);
    assert_string_equal(feed(f, up, NULL, 0, &r), "ok");
    expect_full(&r);
    run_free(&r);
    for (size_t cut = 1; cut < up.len; cut++) { /* one cut anywhere */
        assert_string_equal(feed(f, up, &cut, 1, &r), "ok");
        expect_full(&r);
        run_free(&r);
    }
    size_t *bytes = malloc(up.len * sizeof(*bytes)); /* one byte at a time */
    for (size_t i = 0; i + 1 < up.len; i++)
        bytes[i] = i + 1;
    assert_string_equal(feed(f, up, bytes, up.len - 1, &r), "ok");
    expect_full(&r);
    run_free(&r);
    unsigned seed = 7; /* random pieces */
    for (int round = 0; round < 50; round++) {
        size_t n = 0, at = 0;
        while (1) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 61;
            if (at >= up.len)
                break;
            bytes[n++] = at;
        }
        assert_string_equal(feed(f, up, bytes, n, &r), "ok");
        expect_full(&r);
        run_free(&r);
    }
    free(bytes);
    sb_buf_free(&b);
}

/* The streamed text and tool arguments equal the whole answer's for the same content. */
static void test_stream_equals_whole(void **state)
{
    struct fx *f = *state;
    struct sb_buf b;
    struct run r;
    struct sb_result res;
    sb_buf_init(&b, 0);
    full_stream(&b);
    fx_call(f, "{\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "ok");
    json_t *j = parse_result(f, "{\"messages\":[]}", WHOLE, SB_OP_CHAT, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_true(sb_slice_eq_cstr(sb_buf_slice(&r.content),
                                 json_string_value(json_object_get(msg, "content"))));
    json_decref(j);
    run_free(&r);
    sb_buf_free(&b);
}

static void test_stream_redacted_thinking(void **state)
{
    struct fx *f = *state;
    struct sb_buf b;
    struct run r;
    sb_buf_init(&b, 0);
    frame(&b, "messageStart", "{\"role\":\"assistant\"}");
    frame(&b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"redactedContent\":\"QUJD\"}}"
          "}");
    frame(&b, "contentBlockStop", "{\"contentBlockIndex\":0}");
    frame(&b, "messageStop", "{\"stopReason\":\"max_tokens\"}");
    fx_call(f, "{\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "ok");
    assert_int_equal(r.n, 4);
    assert_string_equal(
        r.lines[1], "{\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"QUJD\"}]}|");
    assert_string_equal(r.lines[2], "{}|length");
    assert_string_equal(r.lines[3], "done");
    run_free(&r);
    sb_buf_free(&b);
}

static void test_stream_exception(void **state)
{
    struct fx *f = *state;
    struct sb_buf b;
    struct run r;
    sb_buf_init(&b, 0);
    frame(&b, "messageStart", "{\"role\":\"assistant\"}");
    frame(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    exception(&b, "throttlingException", "{\"message\":\"Too many requests, AKIDEXAMPLE\"}");
    frame(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"never\"}}");
    fx_call(f, "{\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    static const char *kinds[] = {"modelStreamErrorException", "validationException",
                                  "internalServerException", "serviceUnavailableException"};
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "feed_error");
    assert_int_equal(r.n, 3);
    assert_string_equal(r.lines[2], "error upstream aws: throttlingException: Too many requests, "
                                    "***********");
    assert_non_null(strstr(r.errmsg, "throttlingException: Too many requests"));
    run_free(&r);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        sb_buf_reset(&b);
        exception(&b, kinds[i], "{\"message\":\"boom\"}");
        assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "feed_error");
        assert_non_null(strstr(r.errmsg, kinds[i]));
        run_free(&r);
    }
    sb_buf_free(&b);
}

static void test_stream_broken(void **state)
{
    struct fx *f = *state;
    struct sb_buf b;
    struct run r;
    sb_buf_init(&b, 0);
    full_stream(&b);
    fx_call(f, "{\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    /* cut inside the last frame */
    assert_string_equal(feed(f, (struct sb_slice){b.p, b.len - 5}, NULL, 0, &r), "finish_error");
    assert_non_null(strstr(r.errmsg, "inside a frame"));
    run_free(&r);
    /* whole frames, but no messageStop */
    sb_buf_reset(&b);
    frame(&b, "messageStart", "{\"role\":\"assistant\"}");
    frame(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "finish_error");
    assert_non_null(strstr(r.errmsg, "before messageStop"));
    run_free(&r);
    /* a flipped payload byte fails the message CRC */
    b.p[b.len - 10] ^= 1;
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "feed_error");
    run_free(&r);
    /* a frame whose payload is not JSON */
    sb_buf_reset(&b);
    frame(&b, "contentBlockDelta", "not json");
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "feed_error");
    assert_non_null(strstr(r.errmsg, "not a JSON object"));
    run_free(&r);
    /* a tool fragment for a block that never started */
    sb_buf_reset(&b);
    frame(&b, "contentBlockDelta",
          "{\"contentBlockIndex\":4,\"delta\":{\"toolUse\":{\"input\":\"{\"}}}");
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "feed_error");
    run_free(&r);
    /* an empty body */
    assert_string_equal(feed(f, SB_SLICE(""), NULL, 0, &r), "finish_error");
    run_free(&r);
    /* unknown event types are skipped */
    sb_buf_reset(&b);
    frame(&b, "messageStart", "{\"role\":\"assistant\"}");
    frame(&b, "somethingNew", "{}");
    frame(&b, "messageStop", "{\"stopReason\":\"end_turn\"}");
    assert_string_equal(feed(f, sb_buf_slice(&b), NULL, 0, &r), "ok");
    assert_int_equal(r.n, 3);
    run_free(&r);
    sb_buf_free(&b);
}

/* ==================================================================
 * Errors
 * ================================================================== */

static void test_map_error(void **state)
{
    struct fx *f = *state;
    static const struct {
        int status;
        const char *body;
        sb_err code;
        int client;
        const char *api_code;
        const char *msg;
    } cases[] = {
        {400, "{\"message\":\"Input is too long for requested model.\"}", SB_E_BAD_REQUEST, 400,
         "context_length_exceeded", "upstream aws: Input is too long for requested model."},
        {400, "{\"message\":\"Malformed input request\"}", SB_E_BAD_REQUEST, 400, NULL,
         "upstream aws: Malformed input request"},
        {403,
         "{\"Message\":\"The security token included in the request is invalid: "
         "AKIDEXAMPLE\"}",
         SB_E_FORBIDDEN, 403, NULL,
         "upstream aws: The security token included in the request is invalid: ***********"},
        {404, "{\"message\":\"Could not resolve the foundation model\"}", SB_E_NOT_FOUND, 404,
         "model_not_found", "upstream aws: Could not resolve the foundation model"},
        {408, "{\"message\":\"Model has timed out\"}", SB_E_UPSTREAM_TIMEOUT, 504, NULL, NULL},
        {424, "{\"message\":\"model error\"}", SB_E_UPSTREAM, 502, NULL, NULL},
        {429, "{\"message\":\"Too many requests\"}", SB_E_RATE_LIMITED, 429, NULL, NULL},
        {500, "{\"message\":\"internal\"}", SB_E_UPSTREAM, 500, NULL, NULL},
        {503, "{\"message\":\"unavailable\"}", SB_E_UNAVAILABLE, 503, NULL, NULL},
        {502, "<html>bad gateway</html>", SB_E_UPSTREAM, 502, NULL,
         "upstream aws: <html>bad gateway</html>"},
        {400, "", SB_E_BAD_REQUEST, 400, NULL, "upstream aws: HTTP 400"},
    };
    fx_call(f, "{}", SB_OP_CHAT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sb_error err;
        memset(&err, 0x5a, sizeof(err));
        f->ops->map_error(&f->c, cases[i].status, sb_slice_cstr(cases[i].body), &err);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(sb_err_status(&err), cases[i].client);
        if (cases[i].api_code)
            assert_string_equal(err.api_code, cases[i].api_code);
        else
            assert_string_equal(err.api_code, "");
        if (cases[i].msg)
            assert_string_equal(err.msg, cases[i].msg);
        assert_null(strstr(err.msg, "AKIDEXAMPLE"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_text_and_system, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_url_headers_and_signed_path, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_arn_and_stream_url, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_inference_config, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_images, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_tools_round_trip, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_tool_choice, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_reasoning_round_trip, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_needs_credentials, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_whole, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_finish_reasons, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_every_split, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_equals_whole, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_redacted_thinking, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_exception, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_broken, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
