/* SPDX-License-Identifier: MIT */
/*
 * huggingface_test.c - the huggingface (TGI) adapter on strings: the
 * ChatML prompt and every parameter rule of /generate (exact upstream
 * bodies), refusals by field name, whole responses, /generate_stream fed in
 * every split with special tokens, details, errors and truncation, the
 * Messages API pass-through under /v1, embeddings, and error mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

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
    f->ops = sb_provider_ops_find(SB_SLICE("huggingface"));
    assert_non_null(f->ops);
    f->p = (struct sb_provider){.id = "hf",
                                .type = "huggingface",
                                .ops = f->ops,
                                .base_url = "https://ep.endpoints.huggingface.cloud",
                                .auth = SB_AUTH_BEARER};
    f->p.api_key = sb_secret_new("hf_secret_token_42", 18);
    f->m = (struct sb_model){.id = "qwen", .provider = &f->p, .upstream_model = "Qwen/Qwen2.5-7B"};
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

static void same(struct sb_slice got, const char *want)
{
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("got\n%.*s\nwant\n%s", SB_FMT(got), want);
}

static struct sb_upstream_req build_ok(struct fx *f, const char *body, const char *want)
{
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, body, SB_OP_CHAT);
    if (f->ops->build_request(&f->c, &r, &err) != SB_OK)
        fail_msg("build failed: %s", err.msg);
    same(r.body, want);
    json_error_t jerr;
    json_t *j = json_loadb(r.body.p, r.body.len, 0, &jerr);
    assert_non_null(j);
    json_decref(j);
    return r;
}

static void build_bad(struct fx *f, const char *body, const char *msg_part)
{
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, body, SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_BAD_REQUEST);
    if (!strstr(err.msg, msg_part))
        fail_msg("message [%s] lacks [%s]", err.msg, msg_part);
}

#define PROMPT_HI "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n"

/* ---- requests ---- */

static void test_request_prompt_and_url(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = build_ok(
        f,
        "{\"model\":\"qwen\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Short.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\","
        "\"text\":\"there\"}]},{\"role\":\"assistant\",\"content\":\"Hello!\"},"
        "{\"role\":\"user\",\"content\":\"Q\\\"?\"}]}",
        "{\"inputs\":\"<|im_start|>system\\nBe kind.<|im_end|>\\n<|im_start|>system\\nShort."
        "<|im_end|>\\n<|im_start|>user\\nHi there<|im_end|>\\n<|im_start|>assistant\\nHello!"
        "<|im_end|>\\n<|im_start|>user\\nQ\\\"?<|im_end|>\\n<|im_start|>assistant\\n\","
        "\"parameters\":{\"details\":true,\"return_full_text\":false}}");
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/generate");
    same(header(&r, "Authorization"), "Bearer hf_secret_token_42");
    same(header(&r, "Content-Type"), "application/json");
    r = build_ok(f,
                 "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"Hi\"}]}",
                 "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"details\":true,"
                 "\"return_full_text\":false}}");
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/generate_stream");
    same(header(&r, "Accept"), "text/event-stream");
}

static void test_request_parameters(void **state)
{
    struct fx *f = *state;
    build_ok(f,
             "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"max_tokens\":64,\"temperature\":0.7,\"top_p\":0.9,\"stop\":\"\\n\\n\","
             "\"seed\":7,\"frequency_penalty\":0.5,\"n\":1,\"user\":\"u\",\"logprobs\":false}",
             "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"max_new_tokens\":64,"
             "\"do_sample\":true,\"temperature\":0.7,\"top_p\":0.9,\"stop\":[\"\\n\\n\"],"
             "\"seed\":7,\"frequency_penalty\":0.5,\"details\":true,\"return_full_text\":false}}");
    /* temperature 0 is greedy (TGI refuses 0); top_p 1 is no nucleus (TGI refuses 1);
     * max_completion_tokens wins over max_tokens. */
    build_ok(f,
             "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"temperature\":0,\"top_p\":1,\"max_tokens\":5,\"max_completion_tokens\":9,"
             "\"stop\":[\"a\",\"b\"]}",
             "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"do_sample\":false,"
             "\"max_new_tokens\":9,\"stop\":[\"a\",\"b\"],\"details\":true,"
             "\"return_full_text\":false}}");
    build_ok(f,
             "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
             "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}}",
             "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"grammar\":{\"type\":\"json\","
             "\"value\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}},"
             "\"details\":true,\"return_full_text\":false}}");
    build_ok(f,
             "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"response_format\":{\"type\":\"json_object\"}}",
             "{\"inputs\":\"" PROMPT_HI "\",\"parameters\":{\"grammar\":{\"type\":\"json\","
             "\"value\":{\"type\":\"object\"}},\"details\":true,\"return_full_text\":false}}");
}

static void test_request_refusals(void **state)
{
    struct fx *f = *state;
    const char *tools = "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    build_bad(f, tools, "'tools' is not supported: TGI's /generate has no tool calling");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\","
              "\"content\":\"x\"}]}",
              "messages[0].role");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
              "\"tool_calls\":[]}]}",
              "messages[0].tool_calls");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
              "\"image_url\",\"image_url\":{\"url\":\"http://x\"}}]}]}",
              "text parts only");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
              "'n' must be 1");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"temperature\":-1}",
              "'temperature'");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"top_p\":0}",
              "'top_p'");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"logprobs\":true}",
              "'logprobs'");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"presence_penalty\":1}",
              "'presence_penalty'");
    build_bad(f,
              "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"wat\":1}",
              "unsupported field 'wat'");
    build_bad(f, "{\"model\":\"qwen\",\"messages\":[]}", "non-empty");
    /* Under the Messages API the same tools request passes through untouched. */
    f->p.base_url = "https://router.huggingface.co/v1";
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, tools, SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://router.huggingface.co/v1/chat/completions");
    same(r.body, "{\"model\":\"Qwen/Qwen2.5-7B\",\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    same(header(&r, "Authorization"), "Bearer hf_secret_token_42");
}

static void test_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err;
    call(f, "{\"model\":\"qwen\",\"input\":[\"a\"]}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://ep.endpoints.huggingface.cloud/v1/embeddings");
    same(r.body, "{\"model\":\"Qwen/Qwen2.5-7B\",\"input\":[\"a\"]}");
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
    call(f, "{\"model\":\"qwen\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
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
    same(res.finish_reason, "stop");
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
    same(res.finish_reason, "length");
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{}"), &res, &err), SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("<html>"), &res, &err), SB_E_UPSTREAM);
}

/* ---- streams ---- */

struct log {
    struct sb_buf out;
    struct sb_buf text; /* content deltas concatenated */
};

static int on_event(void *ud, const struct sb_event *ev)
{
    struct log *l = ud;
    json_error_t jerr;
    switch (ev->kind) {
    case SB_EV_CHUNK: {
        json_t *j = json_loadb(ev->chunk.p, ev->chunk.len, 0, &jerr);
        if (!j)
            fail_msg("chunk is not JSON: %.*s", SB_FMT(ev->chunk));
        assert_string_equal(json_string_value(json_object_get(j, "object")),
                            "chat.completion.chunk");
        json_decref(j);
        sb_buf_append_slice(&l->text, ev->text);
        sb_buf_printf(&l->out, "CHUNK text=[%.*s] fr=[%.*s] usage=%d:%lld/%lld only=%d\n",
                      SB_FMT(ev->text), SB_FMT(ev->finish_reason), ev->has_usage,
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      ev->usage_only);
        break;
    }
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
    sb_buf_init(&l->text, 0);
    sb_buf_append_char(&l->out, 'x');
    sb_buf_reset(&l->out);
    sb_buf_append_char(&l->text, 'x');
    sb_buf_reset(&l->text);
    for (size_t i = 0; i < len && rc == SB_OK; i += step)
        rc = f->ops->stream_feed(st, s + i, len - i < step ? len - i : step, on_event, l, &err);
    return rc == SB_OK ? f->ops->stream_finish(st, on_event, l, &err) : rc;
}

static void log_free(struct log *l)
{
    sb_buf_free(&l->out);
    sb_buf_free(&l->text);
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
    call(f,
         "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"Hi\"}]}",
         SB_OP_CHAT);
    for (size_t step = 1; step <= sizeof(tgi_stream); step++) {
        struct log l;
        assert_int_equal(run_stream(f, tgi_stream, step, &l), SB_OK);
        if (strcmp(l.out.p, tgi_expect) != 0)
            fail_msg("step %zu:\n%s", step, l.out.p);
        assert_string_equal(l.text.p, "Hé world"); /* equals generated_text */
        log_free(&l);
    }
}

static void test_stream_length_and_errors(void **state)
{
    struct fx *f = *state;
    struct log l;
    call(f,
         "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"Hi\"}]}",
         SB_OP_CHAT);
    assert_int_equal(run_stream(f,
                                "data: {\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                                "0,\"special\":false},\"generated_text\":\"a\",\"details\":"
                                "{\"finish_reason\":\"length\",\"generated_tokens\":1,"
                                "\"input_length\":4}}\r\n\r\n",
                                5, &l),
                     SB_OK);
    assert_non_null(strstr(l.out.p, "fr=[length]"));
    log_free(&l);
    /* An error event: reported, key masked, and the stream counts as failed. */
    assert_int_equal(run_stream(f,
                                "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                                "0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                                "data:{\"error\":\"Request failed during generation: CUDA OOM "
                                "hf_secret_token_42\",\"error_type\":\"generation\"}\n\n",
                                3, &l),
                     SB_E_UPSTREAM);
    assert_non_null(strstr(l.out.p, "ERROR upstream hf: Request failed during generation"));
    assert_null(strstr(l.out.p, "hf_secret"));
    log_free(&l);
    /* Truncated: no details ever came. */
    assert_int_equal(run_stream(f,
                                "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":"
                                "0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                                "data:{\"index\":2,\"tok",
                                4, &l),
                     SB_E_UPSTREAM);
    log_free(&l);
    assert_int_equal(run_stream(f, "data:[1,2]\n\n", 2, &l), SB_E_UPSTREAM);
    log_free(&l);
}

static void test_stream_messages_api(void **state)
{
    struct fx *f = *state;
    struct log l;
    f->p.base_url = "http://tgi:8080/v1";
    call(f,
         "{\"model\":\"qwen\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"Hi\"}]}",
         SB_OP_CHAT);
    assert_int_equal(
        run_stream(f,
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
    log_free(&l);
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
    assert_null(strstr(err.msg, "hf_secret_token_42"));
}

static void test_map_error(void **state)
{
    struct fx *f = *state;
    call(f, "{\"model\":\"qwen\",\"messages\":[]}", SB_OP_CHAT);
    expect_map(f, 422,
               "{\"error\":\"Input validation error: `inputs` tokens + `max_new_tokens` must be "
               "<= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`\",\"error_type\":"
               "\"validation\"}",
               SB_E_BAD_REQUEST, 400, "context_length_exceeded", "must be <= 4096");
    expect_map(f, 422,
               "{\"error\":\"Input validation error: `temperature` must be strictly positive\","
               "\"error_type\":\"validation\"}",
               SB_E_BAD_REQUEST, 400, "", "strictly positive");
    expect_map(f, 424,
               "{\"error\":\"Request failed during generation: boom\",\"error_type\":"
               "\"generation\"}",
               SB_E_UPSTREAM, 502, "", "failed during generation");
    expect_map(f, 429, "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
               SB_E_UNAVAILABLE, 503, "", "overloaded");
    expect_map(f, 429, "{\"error\":\"Rate limit reached. You reached free usage limit\"}",
               SB_E_RATE_LIMITED, 429, "", "Rate limit reached");
    expect_map(f, 401,
               "{\"error\":\"Invalid credentials in Authorization header hf_secret_token_42\"}",
               SB_E_UNAUTHORIZED, 401, "invalid_api_key", "Invalid credentials");
    expect_map(f, 404, "Not Found", SB_E_NOT_FOUND, 404, "model_not_found", "Not Found");
    expect_map(f, 500,
               "{\"error\":\"Incomplete generation\",\"error_type\":\"incomplete_generation\"}",
               SB_E_UPSTREAM, 502, "", "Incomplete generation");
    expect_map(f, 503, "{\"error\":\"Model is currently loading\",\"estimated_time\":20.0}",
               SB_E_UNAVAILABLE, 503, "", "currently loading");
    /* The Messages API answers in OpenAI's shape sometimes. */
    expect_map(f, 400, "{\"error\":{\"message\":\"bad thing\",\"type\":\"invalid_request_error\"}}",
               SB_E_BAD_REQUEST, 400, "", "bad thing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_prompt_and_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embeddings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_every_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_length_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_messages_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
