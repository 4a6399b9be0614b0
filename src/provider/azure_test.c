/* SPDX-License-Identifier: MIT */
/*
 * azure_test.c - the azure adapter on strings only: deployment URL and
 * api-version, the api-key header, the body splice (and when include_usage
 * may be added), embeddings, streams with Azure's annotation-only chunks
 * and content filtering under every feed split, and error codes kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/provider.h"

struct fx {
    struct sb_arena *a;
    struct sb_provider p;
    struct sb_model m;
    struct sb_call c;
    const struct sb_provider_ops *ops;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->a = sb_arena_create(8192);
    f->ops = sb_provider_ops_find(SB_SLICE("azure"));
    assert_non_null(f->ops);
    f->p = (struct sb_provider){.id = "azure-east",
                                .type = "azure",
                                .ops = f->ops,
                                .base_url = "https://my-res.openai.azure.com",
                                .auth = SB_AUTH_API_KEY,
                                .api_version = "2024-10-21"};
    f->p.api_key = sb_secret_new("azure-secret-key-0001", 21);
    f->m = (struct sb_model){.id = "gpt4o", .provider = &f->p, .upstream_model = "prod-gpt4o"};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sb_secret_free(f->p.api_key);
    sb_arena_free(f->a);
    free(f);
    return 0;
}

static void call(struct fx *f, const char *body, enum sb_op op)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    assert_int_equal(sb_json_parse(f->a, body, strlen(body), &lim, &j, &err), SB_OK);
    const struct sb_json *so = sb_json_get(j, "stream_options");
    f->c = (struct sb_call){.arena = f->a,
                            .op = op,
                            .provider = &f->p,
                            .model = &f->m,
                            .body = sb_slice_cstr(body),
                            .json = j};
    f->c.stream = op == SB_OP_CHAT && sb_json_bool(sb_json_get(j, "stream"));
    f->c.client_wants_usage = so && sb_json_bool(sb_json_get(so, "include_usage"));
}

static struct sb_slice header(const struct sb_upstream_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (sb_slice_caseeq(r->headers[i].name, sb_slice_cstr(name)))
            return r->headers[i].value;
    return SB_SLICE_NULL;
}

static void assert_slice(struct sb_slice s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("got [%.*s], want [%s]", SB_FMT(s), want);
}

/* ---- request ---- */

static void test_chat_url_headers_body(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, "{\"model\":\"gpt4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "https://my-res.openai.azure.com/openai/deployments/prod-gpt4o/"
                               "chat/completions?api-version=2024-10-21");
    assert_slice(header(&r, "api-key"), "azure-secret-key-0001");
    assert_null(header(&r, "Authorization").p);
    assert_slice(header(&r, "Content-Type"), "application/json");
    assert_slice(header(&r, "Accept"), "application/json");
    assert_slice(
        r.body, "{\"model\":\"prod-gpt4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_stream_usage_by_version(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_slice(r.body, "{\"stream_options\":{\"include_usage\":true},\"model\":\"prod-gpt4o\","
                         "\"stream\":true,\"messages\":[]}");
    assert_slice(header(&r, "Accept"), "text/event-stream");
    /* An api-version before stream_options existed would reject the member. */
    f->p.api_version = "2024-02-01";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_slice(r.body, "{\"model\":\"prod-gpt4o\",\"stream\":true,\"messages\":[]}");
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
    call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
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
    call(f, "{\"model\":\"e\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
         SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://my-res.openai.azure.com/openai/deployments/emb-small/"
                               "embeddings?api-version=2024-10-21");
    assert_slice(
        r.body, "{\"model\":\"emb-small\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}");
    const char *resp = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                       "\"embedding\":\"AAAA\"}],\"model\":\"text-embedding-3-small\","
                       "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}";
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(resp), &res, &err), SB_OK);
    assert_slice(res.body, resp);
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
    call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(resp), &res, &err), SB_OK);
    assert_slice(res.finish_reason, "content_filter");
    assert_int_equal(res.usage.prompt_tokens, 9);
    assert_int_equal(res.usage.completion_tokens, 3);
    assert_slice(res.body, resp);
}

/* ---- streams ---- */

struct log {
    struct sb_buf out;
};

static int on_event(void *ud, const struct sb_event *ev)
{
    struct log *l = ud;
    switch (ev->kind) {
    case SB_EV_CHUNK:
        sb_buf_printf(&l->out, "CHUNK text=[%.*s] fr=[%.*s] usage=%d:%lld/%lld only=%d\n",
                      SB_FMT(ev->text), SB_FMT(ev->finish_reason), ev->has_usage,
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      ev->usage_only);
        break;
    case SB_EV_DONE:
        sb_buf_append_cstr(&l->out, "DONE\n");
        break;
    case SB_EV_ERROR:
        sb_buf_printf(&l->out, "ERROR %s\n", ev->error.msg);
        break;
    }
    return 0;
}

static sb_err run_stream(struct fx *f, const char *s, size_t step, struct log *l)
{
    struct sb_error err;
    size_t len = strlen(s);
    void *st = f->ops->stream_open(&f->c);
    sb_err rc = SB_OK;
    sb_buf_init(&l->out, 0);
    sb_buf_append_char(&l->out, 'x'); /* allocated, so l->out.p is a string even if empty */
    sb_buf_reset(&l->out);
    for (size_t i = 0; i < len && rc == SB_OK; i += step)
        rc = f->ops->stream_feed(st, s + i, len - i < step ? len - i : step, on_event, l, &err);
    return rc == SB_OK ? f->ops->stream_finish(st, on_event, l, &err) : rc;
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
    call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    for (size_t step = 1; step <= sizeof(azure_stream); step++) {
        struct log l;
        assert_int_equal(run_stream(f, azure_stream, step, &l), SB_OK);
        if (strcmp(l.out.p, azure_expect) != 0)
            fail_msg("step %zu:\n%s", step, l.out.p);
        sb_buf_free(&l.out);
    }
}

static void test_stream_error_and_truncation(void **state)
{
    struct fx *f = *state;
    struct log l;
    call(f, "{\"model\":\"gpt4o\",\"stream\":true,\"messages\":[]}", SB_OP_CHAT);
    assert_int_equal(run_stream(f,
                                "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n"
                                "data: {\"error\":{\"code\":\"content_filter\",\"message\":"
                                "\"filtered azure-secret-key-0001\"}}\n\n",
                                7, &l),
                     SB_E_UPSTREAM); /* no finish, no [DONE]: the stream broke */
    assert_non_null(strstr(l.out.p, "ERROR upstream azure-east: filtered ****"));
    assert_null(strstr(l.out.p, "azure-secret"));
    sb_buf_free(&l.out);
    assert_int_equal(
        run_stream(f, "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n", 3, &l),
        SB_E_UPSTREAM);
    assert_string_equal(l.out.p, "");
    sb_buf_free(&l.out);
}

/* ---- errors ---- */

static void expect_map(struct fx *f, int status, const char *body, sb_err code, int http,
                       const char *api_code, const char *msg_part)
{
    struct sb_error err;
    f->ops->map_error(&f->c, status, sb_slice_cstr(body), &err);
    assert_int_equal(err.code, code);
    assert_int_equal(sb_err_status(&err), http);
    assert_string_equal(err.api_code, api_code);
    if (!strstr(err.msg, msg_part))
        fail_msg("message [%s] lacks [%s]", err.msg, msg_part);
    assert_null(strstr(err.msg, "azure-secret-key-0001"));
}

static void test_map_error(void **state)
{
    struct fx *f = *state;
    call(f, "{\"model\":\"gpt4o\",\"messages\":[]}", SB_OP_CHAT);
    expect_map(f, 400,
               "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering "
               "Azure OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\","
               "\"code\":\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
               "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{}}}}",
               SB_E_BAD_REQUEST, 400, "content_filter", "filtered due to the prompt");
    expect_map(f, 400,
               "{\"error\":{\"message\":\"This model's maximum context length is 128000 tokens.\","
               "\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":"
               "\"context_length_exceeded\"}}",
               SB_E_BAD_REQUEST, 400, "context_length_exceeded", "maximum context length");
    expect_map(f, 404,
               "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API deployment for "
               "this resource does not exist.\"}}",
               SB_E_NOT_FOUND, 404, "model_not_found", "deployment for this resource");
    expect_map(f, 401,
               "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid "
               "subscription key azure-secret-key-0001.\"}}",
               SB_E_UNAUTHORIZED, 401, "invalid_api_key", "Access denied");
    expect_map(f, 429,
               "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions_Create "
               "Operation have exceeded call rate limit.\"}}",
               SB_E_RATE_LIMITED, 429, "", "exceeded call rate limit");
    expect_map(f, 500, "upstream exploded", SB_E_UPSTREAM, 500, "", "upstream exploded");
    expect_map(f, 503, "", SB_E_UPSTREAM, 503, "", "HTTP 503");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_url_headers_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_usage_by_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embeddings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_response_content_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_drops_annotations_every_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_and_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
