/* SPDX-License-Identifier: MIT */
/*
 * huggingface_test.c - the huggingface (TGI) adapter on strings: the
 * ChatML prompt and every parameter rule of /generate (exact upstream
 * bodies), refusals by field name, whole responses, /generate_stream fed in
 * every split with special tokens, details, errors and truncation, the
 * Messages API pass-through under /v1, embeddings, and error mapping.
 */
#include "provider/adapter_testlib.h"

static int setup(void **state)
{
    *state = fx_open((struct sb_provider){.id = "hf",
                                          .type = "huggingface",
                                          .base_url = "https://ep.endpoints.huggingface.cloud",
                                          .auth = SB_AUTH_BEARER},
                     "hf_secret_token_42",
                     (struct sb_model){.id = "qwen", .upstream_model = "Qwen/Qwen2.5-7B"});
    return 0;
}

#define PROMPT_HI "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n"

/* ---- requests ---- */

static void test_request_prompt_and_url(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{\"model\":\"qwen\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Short.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\","
        "\"text\":\"there\"}]},{\"role\":\"assistant\",\"content\":\"Hello!\"},"
        "{\"role\":\"user\",\"content\":\"Q\\\"?\"}]}",
        SB_OP_CHAT,
        "{\"inputs\":\"<|im_start|>system\\nBe kind.<|im_end|>\\n<|im_start|>system\\nShort."
        "<|im_end|>\\n<|im_start|>user\\nHi there<|im_end|>\\n<|im_start|>assistant\\nHello!"
        "<|im_end|>\\n<|im_start|>user\\nQ\\\"?<|im_end|>\\n<|im_start|>assistant\\n\","
        "\"parameters\":{\"details\":true,\"return_full_text\":false}}");
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/generate");
    fx_expect_slice(fx_header(&r, "Authorization"), "Bearer hf_secret_token_42");
    fx_expect_slice(fx_header(&r, "Content-Type"), "application/json");
    r = fx_expect_body(f,
                       "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}",
                       SB_OP_CHAT,
                       "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"details\":true,"
                       "\"return_full_text\":false}}");
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/generate_stream");
    fx_expect_slice(fx_header(&r, "Accept"), "text/event-stream");
}

static void test_request_parameters(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"max_tokens\":64,\"temperature\":0.7,\"top_p\":0.9,\"stop\":\"\\n\\n\","
        "\"seed\":7,\"frequency_penalty\":0.5,\"n\":1,\"user\":\"u\",\"logprobs\":false}",
        SB_OP_CHAT,
        "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"max_new_tokens\":64,"
        "\"do_sample\":true,\"temperature\":0.7,\"top_p\":0.9,\"stop\":[\"\\n\\n\"],"
        "\"seed\":7,\"frequency_penalty\":0.5,\"details\":true,\"return_full_text\":false}}");
    /* temperature 0 is greedy (TGI refuses 0); top_p 1 is no nucleus (TGI refuses 1);
     * max_completion_tokens wins over max_tokens. */
    fx_expect_body(f,
                   "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                   "\"temperature\":0,\"top_p\":1,\"max_tokens\":5,\"max_completion_tokens\":9,"
                   "\"stop\":[\"a\",\"b\"]}",
                   SB_OP_CHAT,
                   "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"do_sample\":false,"
                   "\"max_new_tokens\":9,\"stop\":[\"a\",\"b\"],\"details\":true,"
                   "\"return_full_text\":false}}");
    fx_expect_body(
        f,
        "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
        "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}}",
        SB_OP_CHAT,
        "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"grammar\":{\"type\":\"json\","
        "\"value\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}},"
        "\"details\":true,\"return_full_text\":false}}");
    fx_expect_body(
        f,
        "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"response_format\":{\"type\":\"json_object\"}}",
        SB_OP_CHAT,
        "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"grammar\":{\"type\":\"json\","
        "\"value\":{\"type\":\"object\"}},\"details\":true,\"return_full_text\":false}}");
}

static void test_request_refusals(void **state)
{
    struct fx *f = *state;
    const char *tools = "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    fx_expect_refused(f, tools, SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "'tools' is not supported: TGI's /generate has no tool calling");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\","
                      "\"content\":\"x\"}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "messages[0].role");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
                      "\"tool_calls\":[]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "messages[0].tool_calls");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"http://x\"}}]}]}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "text parts only");
    fx_expect_refused(
        f, "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
        SB_OP_CHAT, SB_E_BAD_REQUEST, "'n' must be 1");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"temperature\":-1}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "'temperature'");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"top_p\":0}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "'top_p'");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"logprobs\":true}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "'logprobs'");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"presence_penalty\":1}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "'presence_penalty'");
    fx_expect_refused(f,
                      "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"wat\":1}",
                      SB_OP_CHAT, SB_E_BAD_REQUEST, "unsupported field 'wat'");
    fx_expect_refused(f, "{\"model\":\"qwen\",\"messages\":[]}", SB_OP_CHAT, SB_E_BAD_REQUEST,
                      "non-empty");
    /* Under the Messages API the same tools request passes through untouched. */
    f->p.base_url = "https://router.huggingface.co/v1";
    struct sb_upstream_req r;
    struct sb_error err;
    fx_call(f, tools, SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://router.huggingface.co/v1/chat/completions");
    fx_expect_slice(r.body,
                    "{\"model\":\"Qwen/Qwen2.5-7B\",\"messages\":[{\"role\":\"user\",\"content\":"
                    "\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    fx_expect_slice(fx_header(&r, "Authorization"), "Bearer hf_secret_token_42");
}

static void test_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    fx_call(f, "{\"model\":\"qwen\",\"input\":[\"a\"]}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/v1/embeddings");
    fx_expect_slice(r.body, "{\"model\":\"Qwen/Qwen2.5-7B\",\"input\":[\"a\"]}");
    f->p.base_url = "http://tei:8080/v1";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "http://tei:8080/v1/embeddings");
}

/* ---- whole responses ---- */

static void test_parse_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    fx_call(f, "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
            SB_OP_CHAT);
    assert_int_equal(
        f->ops->parse_response(&f->c,
                               SB_SLICE("{\"generated_text\":\"Hello \\\"you\\\"\",\"details\":"
                                        "{\"finish_reason\":\"eos_token\",\"generated_tokens\":5,"
                                        "\"seed\":null,\"prefill\":[],\"tokens\":[]}}"),
                               &res, &err),
        SB_OK);
    json_error_t jerr;
    json_t *j = json_loadb(res.body.p, res.body.len, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "Qwen/Qwen2.5-7B");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ch, "message"), "content")),
        "Hello \"you\"");
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 0);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 5);
    json_decref(j);
    fx_expect_slice(res.finish_reason, "stop");
    assert_int_equal(res.usage.prompt_tokens, 0); /* prefill present but empty */
    assert_int_equal(res.usage.completion_tokens, 5);
    /* Inference API form (an array), no details: prompt unknown, stop by default. */
    assert_int_equal(
        f->ops->parse_response(&f->c, SB_SLICE("[{\"generated_text\":\"x\"}]"), &res, &err), SB_OK);
    assert_int_equal(res.usage.prompt_tokens, -1);
    assert_int_equal(res.usage.completion_tokens, -1);
    assert_null(strstr(res.body.p, "prompt_tokens"));
    assert_int_equal(f->ops->parse_response(&f->c,
                                            SB_SLICE("{\"generated_text\":\"x\",\"details\":"
                                                     "{\"finish_reason\":\"length\","
                                                     "\"generated_tokens\":1}}"),
                                            &res, &err),
                     SB_OK);
    fx_expect_slice(res.finish_reason, "length");
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{}"), &res, &err), SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("<html>"), &res, &err), SB_E_UPSTREAM);
}

/* As TGI sends it (no space after "data:"), with a split UTF-8 token and a special EOS. */
static const char tgi_stream[] =
    "data:{\"index\":1,\"token\":{\"id\":9707,\"text\":\"Hé\",\"logprob\":-0.1,\"special\":false},"
    "\"generated_text\":null,\"details\":null}\n\n"
    "data:{\"index\":2,\"token\":{\"id\":11,\"text\":\" world\",\"logprob\":-0.2,\"special\":"
    "false},\"generated_text\":null,\"details\":null}\n\n"
    "data:{\"index\":3,\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":-0.01,\"special\":true},"
    "\"generated_text\":\"Hé world\",\"details\":{\"finish_reason\":\"eos_token\","
    "\"generated_tokens\":3,\"seed\":null,\"input_length\":12}}\n\n";

static const char tgi_expect[] = "CHUNK text=[] fr=[] usage=0:-1/-1 only=0\n"
                                 "CHUNK text=[Hé] fr=[] usage=0:-1/-1 only=0\n"
                                 "CHUNK text=[ world] fr=[] usage=0:-1/-1 only=0\n"
                                 "CHUNK text=[] fr=[stop] usage=0:-1/-1 only=0\n"
                                 "CHUNK text=[] fr=[] usage=1:12/3 only=1\n"
                                 "DONE\n";

static void test_stream_every_split(void **state)
{
    struct fx *f = *state;
    fx_call(f,
            "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"Hi\"}]}",
            SB_OP_CHAT);
    for (size_t step = 1; step <= sizeof(tgi_stream); step++) {
        struct fx_log l;
        assert_int_equal(fx_log_stream(f, tgi_stream, step, &l), SB_OK);
        if (strcmp(l.out.p, tgi_expect) != 0)
            fail_msg("step %zu:\n%s", step, l.out.p);
        assert_string_equal(l.text.p, "Hé world"); /* equals generated_text */
        fx_log_free(&l);
    }
}

static void test_stream_length_and_errors(void **state)
{
    struct fx *f = *state;
    struct fx_log l;
    fx_call(f,
            "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"Hi\"}]}",
            SB_OP_CHAT);
    assert_int_equal(
        fx_log_stream(f,
                      "data: {\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                      "0,\"special\":false},\"generated_text\":\"a\",\"details\":"
                      "{\"finish_reason\":\"length\",\"generated_tokens\":1,"
                      "\"input_length\":4}}\r\n\r\n",
                      5, &l),
        SB_OK);
    assert_non_null(strstr(l.out.p, "fr=[length]"));
    fx_log_free(&l);
    /* An error event: reported, key masked, and the stream counts as failed. */
    assert_int_equal(
        fx_log_stream(f,
                      "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                      "0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                      "data:{\"error\":\"Request failed during generation: CUDA OOM "
                      "hf_secret_token_42\",\"error_type\":\"generation\"}\n\n",
                      3, &l),
        SB_E_UPSTREAM);
    assert_non_null(strstr(l.out.p, "ERROR upstream hf: Request failed during generation"));
    assert_null(strstr(l.out.p, "hf_secret"));
    fx_log_free(&l);
    /* Truncated: no details ever came. */
    assert_int_equal(
        fx_log_stream(f,
                      "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                      "0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                      "data:{\"index\":2,\"tok",
                      4, &l),
        SB_E_UPSTREAM);
    fx_log_free(&l);
    assert_int_equal(fx_log_stream(f, "data:[1,2]\n\n", 2, &l), SB_E_UPSTREAM);
    fx_log_free(&l);
}

static void test_stream_messages_api(void **state)
{
    struct fx *f = *state;
    struct fx_log l;
    f->p.base_url = "http://tgi:8080/v1";
    fx_call(f,
            "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"Hi\"}]}",
            SB_OP_CHAT);
    assert_int_equal(
        fx_log_stream(
            f,
            "data: {\"object\":\"chat.completion.chunk\",\"id\":\"\",\"created\":1,"
            "\"model\":\"tgi\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
            "\"content\":\"ok\"},\"finish_reason\":null}]}\n\n"
            "data: {\"object\":\"chat.completion.chunk\",\"id\":\"\",\"created\":1,"
            "\"model\":\"tgi\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
            "\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n"
            "data: [DONE]\n\n",
            7, &l),
        SB_OK);
    assert_string_equal(l.out.p, "CHUNK text=[ok] fr=[] usage=0:-1/-1 only=0\n"
                                 "CHUNK text=[] fr=[stop] usage=1:3/1 only=0\n"
                                 "DONE\n");
    fx_log_free(&l);
}

static void test_map_error(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"qwen\",\"messages\":[]}", SB_OP_CHAT);
    fx_expect_error(
        f, 422,
        "{\"error\":\"Input validation error: `inputs` tokens + `max_new_tokens` must be "
        "<= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`\",\"error_type\":"
        "\"validation\"}",
        SB_E_BAD_REQUEST, 400, "context_length_exceeded", "must be <= 4096");
    fx_expect_error(
        f, 422,
        "{\"error\":\"Input validation error: `temperature` must be strictly positive\","
        "\"error_type\":\"validation\"}",
        SB_E_BAD_REQUEST, 400, "", "strictly positive");
    fx_expect_error(f, 424,
                    "{\"error\":\"Request failed during generation: boom\",\"error_type\":"
                    "\"generation\"}",
                    SB_E_UPSTREAM, 502, "", "failed during generation");
    fx_expect_error(f, 429, "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
                    SB_E_UNAVAILABLE, 503, "", "overloaded");
    fx_expect_error(f, 429, "{\"error\":\"Rate limit reached. You reached free usage limit\"}",
                    SB_E_RATE_LIMITED, 429, "", "Rate limit reached");
    fx_expect_error(
        f, 401, "{\"error\":\"Invalid credentials in Authorization header hf_secret_token_42\"}",
        SB_E_UNAUTHORIZED, 401, "invalid_api_key", "Invalid credentials");
    fx_expect_error(f, 404, "Not Found", SB_E_NOT_FOUND, 404, "model_not_found", "Not Found");
    fx_expect_error(
        f, 500, "{\"error\":\"Incomplete generation\",\"error_type\":\"incomplete_generation\"}",
        SB_E_UPSTREAM, 502, "", "Incomplete generation");
    fx_expect_error(f, 503, "{\"error\":\"Model is currently loading\",\"estimated_time\":20.0}",
                    SB_E_UNAVAILABLE, 503, "", "currently loading");
    /* The Messages API answers in OpenAI's shape sometimes. */
    fx_expect_error(f, 400,
                    "{\"error\":{\"message\":\"bad thing\",\"type\":\"invalid_request_error\"}}",
                    SB_E_BAD_REQUEST, 400, "", "bad thing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_prompt_and_url, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_parameters, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_every_split, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_length_and_errors, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_messages_api, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
