/* SPDX-License-Identifier: MIT */
/*
 * azure_test.c - the azure adapter on strings only: deployment URL and
 * api-version, the api-key header, the body splice (and when include_usage
 * may be added), embeddings, streams with Azure's annotation-only chunks
 * and content filtering under every feed split, and error codes kept.
 */
#include "provider/adapter_testlib.h"

static int setup(void **state)
{
    *state = fx_open((struct sb_provider){.id = "azure-east",
                                          .type = "azure",
                                          .base_url = "https://my-res.openai.azure.com",
                                          .auth = SB_AUTH_API_KEY,
                                          .api_version = "2024-10-21"},
                     "azure-secret-key-0001",
                     (struct sb_model){.id = "gpt4o", .upstream_model = "prod-gpt4o"});
    return 0;
}

/* ---- request ---- */

static void test_chat_url_headers_body(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    fx_call(f, "{\"model\":\"gpt4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "https://my-res.openai.azure.com/openai/deployments/prod-gpt4o/"
                               "chat/completions?api-version=2024-10-21");
    fx_expect_slice(fx_header(&r, "api-key"), "azure-secret-key-0001");
    assert_null(fx_header(&r, "Authorization").p);
    fx_expect_slice(fx_header(&r, "Content-Type"), "application/json");
    fx_expect_slice(fx_header(&r, "Accept"), "application/json");
    fx_expect_slice(
        r.body, "{\"model\":\"prod-gpt4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_stream_usage_by_version(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    fx_call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    fx_expect_slice(r.body, "{\"stream_options\":{\"include_usage\":true},\"model\":\"prod-gpt4o\","
                            "\"stream\":true,\"messages\":[]}");
    fx_expect_slice(fx_header(&r, "Accept"), "text/event-stream");
    /* An api-version before stream_options existed would reject the member. */
    f->p.api_version = "2024-02-01";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    fx_expect_slice(r.body, "{\"model\":\"prod-gpt4o\",\"stream\":true,\"messages\":[]}");
    f->p.api_version = "2025-04-01-preview";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_true(strstr(r.body.p, "include_usage") != NULL);
}

static void test_escaping_and_config(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    f->m.upstream_model = "my dep/x?";
    f->p.api_version = "2024-10-21&evil=1";
    fx_call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://my-res.openai.azure.com/openai/deployments/my%20dep%2Fx%3F/"
                               "chat/completions?api-version=2024-10-21%26evil%3D1");
    f->p.api_version = NULL;
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "api_version"));
    assert_string_equal(err.field, "api_version");
    f->p.api_version = "";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_CONFIG);
    f->p.api_version = "2024-10-21";
    struct sb_secret *k = f->p.api_key;
    f->p.api_key = NULL;
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_CONFIG);
    f->p.api_key = k;
}

static void test_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_result res;
    struct sb_error err;
    f->m.upstream_model = "emb-small";
    fx_call(f, "{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
            SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://my-res.openai.azure.com/openai/deployments/emb-small/"
                               "embeddings?api-version=2024-10-21");
    fx_expect_slice(
        r.body, "{\"model\":\"emb-small\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}");
    const char *resp = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                       "\"embedding\":\"AAAA\"}],\"model\":\"text-embedding-3-small\","
                       "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}";
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(resp), &res, &err), SB_OK);
    fx_expect_slice(res.body, resp);
    assert_int_equal(res.usage.prompt_tokens, 2);
    assert_int_equal(res.usage.completion_tokens, 0);
}

static void test_parse_response_content_filter(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    const char *resp =
        "{\"choices\":[{\"content_filter_results\":{},\"finish_reason\":\"content_filter\","
        "\"index\":0,\"message\":{\"content\":null,\"role\":\"assistant\"}}],\"created\":1,"
        "\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o-2024-08-06\",\"object\":\"chat.completion\","
        "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}],"
        "\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":9,\"total_tokens\":12}}";
    fx_call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(resp), &res, &err), SB_OK);
    fx_expect_slice(res.finish_reason, "content_filter");
    assert_int_equal(res.usage.prompt_tokens, 9);
    assert_int_equal(res.usage.completion_tokens, 3);
    fx_expect_slice(res.body, resp);
}

#define HEAD                                                                                       \
    "{\"id\":\"chatcmpl-A\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","

/* As Azure sends it: prompt annotations first, choices with content_filter_results, usage last. */
static const char azure_stream[] =
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":"
    "{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n"
    "data: " HEAD "\"choices\":[{\"content_filter_results\":{},\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null,\"index\":0}]}\n\n"
    "data: " HEAD "\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false}},"
    "\"delta\":{\"content\":\"Hé\"},\"finish_reason\":null,\"index\":0}]}\n\n"
    "data: " HEAD "\"choices\":[],\"content_filter_offsets\":{\"start_offset\":0}}\n\n"
    "data: " HEAD "\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"llo\"},"
    "\"finish_reason\":null,\"index\":0}]}\n\n"
    "data: " HEAD "\"choices\":[{\"content_filter_results\":{},\"delta\":{},"
    "\"finish_reason\":\"content_filter\",\"index\":0}]}\n\n"
    "data: " HEAD "\"choices\":[],\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":7,"
    "\"total_tokens\":9}}\n\n"
    "data: [DONE]\n\n";

static const char azure_expect[] = "CHUNK text=[] fr=[] usage=0:-1/-1 only=0\n"
                                   "CHUNK text=[Hé] fr=[] usage=0:-1/-1 only=0\n"
                                   "CHUNK text=[llo] fr=[] usage=0:-1/-1 only=0\n"
                                   "CHUNK text=[] fr=[content_filter] usage=0:-1/-1 only=0\n"
                                   "CHUNK text=[] fr=[] usage=1:7/2 only=1\n"
                                   "DONE\n";

static void test_stream_drops_annotations_every_split(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    for (size_t step = 1; step <= sizeof(azure_stream); step++) {
        struct fx_log l;
        assert_int_equal(fx_log_stream(f, azure_stream, step, &l), SB_OK);
        if (strcmp(l.out.p, azure_expect) != 0)
            fail_msg("step %zu:\n%s", step, l.out.p);
        fx_log_free(&l);
    }
}

static void test_stream_error_and_truncation(void **state)
{
    struct fx *f = *state;
    struct fx_log l;
    fx_call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(fx_log_stream(f,
                                   "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n"
                                   "data: {\"error\":{\"code\":\"content_filter\",\"message\":"
                                   "\"filtered azure-secret-key-0001\"}}\n\n",
                                   7, &l),
                     SB_E_UPSTREAM); /* no finish, no [DONE]: the stream broke */
    assert_non_null(strstr(l.out.p, "ERROR upstream azure-east: filtered ****"));
    assert_null(strstr(l.out.p, "azure-secret"));
    fx_log_free(&l);
    assert_int_equal(
        fx_log_stream(f, "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n", 3, &l),
        SB_E_UPSTREAM);
    assert_string_equal(l.out.p, "");
    fx_log_free(&l);
}

static void test_map_error(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
    fx_expect_error(
        f, 400,
        "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering "
        "Azure OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\","
        "\"code\":\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
        "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{}}}}",
        SB_E_BAD_REQUEST, 400, "content_filter", "filtered due to the prompt");
    fx_expect_error(
        f, 400,
        "{\"error\":{\"message\":\"This model's maximum context length is 128000 tokens.\","
        "\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":"
        "\"context_length_exceeded\"}}",
        SB_E_BAD_REQUEST, 400, "context_length_exceeded", "maximum context length");
    fx_expect_error(
        f, 404,
        "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API deployment for "
        "this resource does not exist.\"}}",
        SB_E_NOT_FOUND, 404, "model_not_found", "deployment for this resource");
    fx_expect_error(f, 401,
                    "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid "
                    "subscription key azure-secret-key-0001.\"}}",
                    SB_E_UNAUTHORIZED, 401, "invalid_api_key", "Access denied");
    fx_expect_error(
        f, 429,
        "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions_Create "
        "Operation have exceeded call rate limit.\"}}",
        SB_E_RATE_LIMITED, 429, "", "exceeded call rate limit");
    fx_expect_error(f, 500, "upstream exploded", SB_E_UPSTREAM, 500, "", "upstream exploded");
    fx_expect_error(f, 503, "", SB_E_UPSTREAM, 503, "", "HTTP 503");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_url_headers_body, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_usage_by_version, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_escaping_and_config, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_response_content_filter, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_drops_annotations_every_split, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_and_truncation, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
