/* SPDX-License-Identifier: MIT */
/*
 * openai_test.c - the openai adapter on strings only: the body splice
 * (model anywhere, escapes, whitespace, unicode, stream_options in every
 * shape), URL and headers, whole responses, stream chunks under every feed
 * split, usage-only chunks, in-stream errors, early ends, and map_error.
 */
#include "provider/adapter_testlib.h"

/* ---- fixture ---- */

static int setup(void **state)
{
    *state = fx_open((struct sb_provider){.id = "openai",
                                          .type = "openai",
                                          .base_url = "https://api.openai.com/v1",
                                          .auth = SB_AUTH_BEARER},
                     "sk-test-secret-1234",
                     (struct sb_model){.id = "gpt", .upstream_model = "gpt-4o-mini"});
    return 0;
}

/* ---- request ---- */

static void test_model_positions(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f, "{\"model\":\"gpt\",\"messages\":[]}", SB_OP_CHAT,
                   "{\"model\":\"gpt-4o-mini\",\"messages\":[]}");
    fx_expect_body(
        f, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gpt\"}", SB_OP_CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gpt-4o-mini\"}");
    fx_expect_body(f, "{ \"a\" : 1 ,\n \"model\" :\t\"gpt\" , \"b\":[1, 2] }", SB_OP_CHAT,
                   "{ \"a\" : 1 ,\n \"model\" :\t\"gpt-4o-mini\" , \"b\":[1, 2] }");
    /* A nested "model" is not ours to touch. */
    fx_expect_body(f, "{\"tools\":[{\"model\":\"keep\"}],\"model\":\"gpt\"}", SB_OP_CHAT,
                   "{\"tools\":[{\"model\":\"keep\"}],\"model\":\"gpt-4o-mini\"}");
    /* Duplicates: every top-level one is rewritten. */
    fx_expect_body(f, "{\"model\":\"a\",\"model\":\"b\"}", SB_OP_CHAT,
                   "{\"model\":\"gpt-4o-mini\",\"model\":\"gpt-4o-mini\"}");
    /* Missing: inserted first. */
    fx_expect_body(f, "{\"messages\":[]}", SB_OP_CHAT,
                   "{\"model\":\"gpt-4o-mini\",\"messages\":[]}");
}

static void test_model_escapes_and_unicode(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f, "{\"model\":\"gp\\u0074\\\"x\",\"n\":1}", SB_OP_CHAT,
                   "{\"model\":\"gpt-4o-mini\",\"n\":1}");
    f->m.upstream_model = "org/m\"odel\\\xc3\xa9";
    fx_expect_body(f, "{\"model\":\"gpt\"}", SB_OP_CHAT,
                   "{\"model\":\"org/m\\\"odel\\\\\xc3\xa9\"}");
    f->m.upstream_model = "gpt-4o-mini";
    /* Everything else byte-identical, escapes and raw UTF-8 included. */
    const char *u =
        "{\"messages\":[{\"content\":\"h\\u00e9llo \xf0\x9f\x8c\x8d \\ud83c\\udf0d\\n\"}],"
        "\"model\":\"gpt\",\"temperature\":1.50e0}";
    const char *w =
        "{\"messages\":[{\"content\":\"h\\u00e9llo \xf0\x9f\x8c\x8d \\ud83c\\udf0d\\n\"}],"
        "\"model\":\"gpt-4o-mini\",\"temperature\":1.50e0}";
    fx_expect_body(f, u, SB_OP_CHAT, w);
}

static void test_zero_copy_when_unchanged(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"model\":\"gpt-4o-mini\",\"stream\":false}";
    struct sb_upstream_req r = fx_expect_body(f, body, SB_OP_CHAT, body);
    assert_ptr_equal(r.body.p, body);
}

/* What the proxy asks for: the body in pieces, the client's own bytes
 * around the new model value (no copy), joining to the rewritten body. */
static void test_body_in_pieces(void **state)
{
    struct fx *f = *state;
    const char *body = "{\"messages\":[],\"model\":\"gpt\",\"stream\":true}";
    fx_call(f, body, SB_OP_CHAT);
    f->c.want_parts = true;
    struct sb_upstream_req r;
    struct sb_error err;
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(r.nparts, 5); /* usage option inserted after '{', model replaced */
    assert_ptr_equal(r.parts[0].p, f->c.body.p);
    assert_ptr_equal(r.parts[4].p, strstr(f->c.body.p, ",\"stream\""));
    char joined[256] = "";
    for (size_t i = 0; i < r.nparts; i++)
        strncat(joined, r.parts[i].p, r.parts[i].len);
    assert_string_equal(joined, "{\"stream_options\":{\"include_usage\":true},\"messages\":[],"
                                "\"model\":\"gpt-4o-mini\",\"stream\":true}");
    /* Nothing to change: the client's body itself, in one piece. */
    fx_call(f, "{\"model\":\"gpt-4o-mini\"}", SB_OP_CHAT);
    f->c.want_parts = true;
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_int_equal(r.nparts, 0);
    assert_ptr_equal(r.body.p, f->c.body.p);
}

static void test_stream_options(void **state)
{
    struct fx *f = *state;
    /* Absent: inserted right after the opening brace. */
    fx_expect_body(
        f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT,
        "{\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o-mini\",\"stream\":true}");
    fx_expect_body(f, "\n\t{  \"stream\" :true , \"model\":\"gpt-4o-mini\"}  ", SB_OP_CHAT,
                   "\n\t{\"stream_options\":{\"include_usage\":true},  \"stream\" :true , "
                   "\"model\":\"gpt-4o-mini\"}  ");
    /* Present without include_usage: inserted into it. */
    fx_expect_body(f, "{\"stream\":true,\"stream_options\":{ \"x\":1 },\"model\":\"gpt\"}",
                   SB_OP_CHAT,
                   "{\"stream\":true,\"stream_options\":{\"include_usage\":true, \"x\":1 },"
                   "\"model\":\"gpt-4o-mini\"}");
    fx_expect_body(
        f, "{\"stream\":true,\"stream_options\":{ },\"model\":\"gpt\"}", SB_OP_CHAT,
        "{\"stream\":true,\"stream_options\":{\"include_usage\":true },\"model\":\"gpt-4o-mini\"}");
    /* include_usage false: replaced. */
    fx_expect_body(
        f, "{\"model\":\"gpt\",\"stream\":true,\"stream_options\":{\"include_usage\" : false}}",
        SB_OP_CHAT,
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\" : "
        "true}}");
    /* null stream_options: replaced by an object. */
    fx_expect_body(
        f, "{\"model\":\"gpt\",\"stream\":true,\"stream_options\":null}", SB_OP_CHAT,
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    /* The client asked already: untouched. */
    fx_expect_body(
        f, "{\"model\":\"gpt\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
        SB_OP_CHAT,
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    /* Nested look-alikes are not stream_options. */
    fx_expect_body(f,
                   "{\"metadata\":{\"stream_options\":{\"include_usage\":false}},\"stream\":true,"
                   "\"model\":\"gpt\"}",
                   SB_OP_CHAT,
                   "{\"stream_options\":{\"include_usage\":true},\"metadata\":{\"stream_options\":"
                   "{\"include_usage\":false}},\"stream\":true,\"model\":\"gpt-4o-mini\"}");
    /* Not streaming: stream_options left alone. */
    fx_expect_body(f, "{\"model\":\"gpt\",\"stream_options\":{\"include_usage\":false}}",
                   SB_OP_CHAT,
                   "{\"model\":\"gpt-4o-mini\",\"stream_options\":{\"include_usage\":false}}");
}

static void test_url_and_headers(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r = fx_expect_body(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT,
                                              "{\"stream_options\":{\"include_usage\":true},"
                                              "\"model\":\"gpt-4o-mini\",\"stream\":true}");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "https://api.openai.com/v1/chat/completions");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "content-type"), "application/json"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "accept"), "text/event-stream"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "authorization"), "Bearer sk-test-secret-1234"));

    struct sb_error err;
    fx_call(f, "{\"model\":\"emb\",\"input\":\"hello\"}", SB_OP_EMBEDDINGS);
    f->m.upstream_model = "text-embedding-3-small";
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    f->m.upstream_model = "gpt-4o-mini";
    assert_string_equal(r.url, "https://api.openai.com/v1/embeddings");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "accept"), "application/json"));
    assert_true(
        sb_slice_eq_cstr(r.body, "{\"model\":\"text-embedding-3-small\",\"input\":\"hello\"}"));

    struct sb_secret *key = f->p.api_key;
    f->p.api_key = NULL; /* a bearer provider without a key is a config error */
    fx_call(f, "{\"model\":\"gpt\"}", SB_OP_CHAT);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_CONFIG);
    f->p.api_key = key;
}

static void test_registry(void **state)
{
    (void)state;
    assert_non_null(sb_provider_ops_find(SB_SLICE("openai")));
    assert_null(sb_provider_ops_find(SB_SLICE("openai2")));
    assert_null(sb_provider_ops_find(SB_SLICE_NULL));
    assert_string_equal(sb_provider_ops_all[0]->type, "openai");
    assert_string_equal(sb_provider_ops_all[0]->chat_path, "/chat/completions");
    assert_int_equal(sb_provider_ops_all[0]->stream_format, SB_STREAM_SSE);
}

/* ---- whole responses ---- */

/* The relay's reading: the usage and finish reason from an answer's last
 * bytes, cut anywhere before them (even inside a string). */
static void test_parse_tail(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    const char *tail = "xxxx long content\\\"}, \"logprobs\":null,\"finish_reason\":\"length\"}],"
                       "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":40000},"
                       "\"system_fingerprint\":\"fp\"}\n";
    fx_call(f, "{\"model\":\"gpt\"}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_tail(&f->c, sb_slice_cstr(tail), &res, &err), SB_OK);
    assert_int_equal(res.body.len, 0);
    assert_int_equal(res.usage.prompt_tokens, 12);
    assert_int_equal(res.usage.completion_tokens, 40000);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "length"));
    /* A tail without the usage: unknown counts. One that ends no object: an error. */
    assert_int_equal(f->ops->parse_tail(&f->c, SB_SLICE("\"}]}"), &res, &err), SB_OK);
    assert_int_equal(res.usage.prompt_tokens, -1);
    assert_int_equal(f->ops->parse_tail(&f->c, SB_SLICE("\"data\":[0.5,0.25]\n"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_tail(&f->c, SB_SLICE(""), &res, &err), SB_E_UPSTREAM);
}

static void test_parse_response(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    const char *body =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini-2024-07-"
        "18\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
        "\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}";
    fx_call(f, "{\"model\":\"gpt\"}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(body), &res, &err), SB_OK);
    assert_ptr_equal(res.body.p, body);
    assert_int_equal(res.body.len, strlen(body));
    assert_int_equal(res.usage.prompt_tokens, 9);
    assert_int_equal(res.usage.completion_tokens, 2);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "stop"));

    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"choices\":[]}"), &res, &err),
                     SB_OK);
    assert_int_equal(res.usage.prompt_tokens, -1);
    assert_int_equal(res.usage.completion_tokens, -1);
    assert_int_equal(res.finish_reason.len, 0);

    /* The answer passes through as it is: only its shape is checked, and usage read from
     * its end (a nonsense count is unknown). A body cut short fails in HTTP framing. */
    assert_int_equal(
        f->ops->parse_response(&f->c, SB_SLICE("{\"usage\":{\"prompt_tokens\":-3}"), &res, &err),
        SB_OK);
    assert_int_equal(res.usage.prompt_tokens, -1);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("[1]"), &res, &err), SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE(" {\"a\":1 "), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("<html>502</html>"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, (struct sb_slice){"\0{}", 3}, &res, &err),
                     SB_E_UPSTREAM); /* a NUL is no blank */
    /* "usage" quoted inside the content is text, not the member; the last member wins. */
    const char *tricky = "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":"
                         "\"length\"}],\"usage\" : {\"prompt_tokens\": 5, \"completion_tokens\": 7},"
                         "\"system_fingerprint\":\"say \\\"usage\\\": {\\\"prompt_tokens\\\": 99}\"}";
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(tricky), &res, &err), SB_OK);
    assert_int_equal(res.usage.prompt_tokens, 5);
    assert_int_equal(res.usage.completion_tokens, 7);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "length"));
    /* A "usage" member of a nested object after the top-level one is passed over. */
    const char *nested = "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},"
                         "\"x\":{\"usage\":{\"prompt_tokens\":99}},\"y\":[{\"usage\":{}}]}";
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(nested), &res, &err), SB_OK);
    assert_int_equal(res.usage.prompt_tokens, 3);
    assert_int_equal(res.usage.completion_tokens, 4);

    fx_call(f, "{\"model\":\"emb\",\"input\":\"x\"}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->parse_response(&f->c,
                                            SB_SLICE("{\"object\":\"list\",\"data\":[],\"usage\":"
                                                     "{\"prompt_tokens\":8,\"total_tokens\":8}}"),
                                            &res, &err),
                     SB_OK);
    assert_int_equal(res.usage.prompt_tokens, 8);
    assert_int_equal(res.usage.completion_tokens, 0);
}

/* ---- streams ---- */

struct log {
    struct sb_buf out;
    int stop_after; /* return 99 after this many events, 0 = never */
    int n;
};

static int on_event(void *ud, const struct sb_event *ev)
{
    struct log *l = ud;
    l->n++;
    switch (ev->kind) {
    case SB_EV_CHUNK:
        sb_buf_printf(&l->out, "CHUNK text=[%.*s] fr=[%.*s] usage=%d:%lld/%lld only=%d len=%zu\n",
                      SB_FMT(ev->text), SB_FMT(ev->finish_reason), ev->has_usage,
                      (long long)ev->usage.prompt_tokens, (long long)ev->usage.completion_tokens,
                      ev->usage_only, ev->chunk.len);
        break;
    case SB_EV_DONE:
        sb_buf_append_cstr(&l->out, "DONE\n");
        break;
    case SB_EV_ERROR:
        sb_buf_printf(&l->out, "ERROR %s %s\n", sb_err_name(ev->error.code), ev->error.msg);
        break;
    }
    return (l->stop_after && l->n == l->stop_after) ? 99 : 0;
}

/* Streams s through a fresh state in pieces of `step` (0 = whole); returns finish's code. */
static sb_err run_stream(struct fx *f, const char *s, size_t step, struct log *l, sb_err *feed_rc)
{
    struct sb_error err;
    void *st = f->ops->stream_open(&f->c);
    sb_buf_init(&l->out, 0);
    sb_buf_append_char(&l->out, 'x');
    sb_buf_reset(&l->out);
    l->n = 0;
    *feed_rc = fx_feed_pieces(f, st, s, strlen(s), step, 0, on_event, l, &err);
    if (*feed_rc != SB_OK)
        return *feed_rc;
    return f->ops->stream_finish(st, on_event, l, &err);
}

#define CHUNK_HEAD                                                                                 \
    "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1721000000,"          \
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_1\","

static const char openai_stream[] =
    "data: " CHUNK_HEAD
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
    "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\\n\"},"
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,"
    "\"total_tokens\":12}}\n\n"
    "data: [DONE]\n\n";

static void test_stream_events(void **state)
{
    struct fx *f = *state;
    struct log l;
    sb_err feed_rc;
    fx_call(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT);
    assert_int_equal(run_stream(f, openai_stream, 0, &l, &feed_rc), SB_OK);
    const char *want_prefix = "CHUNK text=[] fr=[] usage=0:-1/-1 only=0 len=";
    assert_memory_equal(l.out.p, want_prefix, strlen(want_prefix));
    assert_non_null(strstr(l.out.p, "CHUNK text=[Hel] fr=[] usage=0:-1/-1 only=0"));
    assert_non_null(strstr(l.out.p, "CHUNK text=[lo \xc3\xa9\n] fr=[] usage=0:-1/-1 only=0"));
    assert_non_null(strstr(l.out.p, "CHUNK text=[] fr=[stop] usage=0:-1/-1 only=0"));
    assert_non_null(strstr(l.out.p, "CHUNK text=[] fr=[] usage=1:9/3 only=1"));
    assert_int_equal(l.n, 6);
    assert_memory_equal(l.out.p + l.out.len - 5, "DONE\n", 5);
    sb_buf_free(&l.out);
}

/* Byte-by-byte, every small step, and whole: the same events. */
static void test_stream_split_invariance(void **state)
{
    struct fx *f = *state;
    struct log whole, part;
    sb_err feed_rc;
    fx_call(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT);
    assert_int_equal(run_stream(f, openai_stream, 0, &whole, &feed_rc), SB_OK);
    for (size_t step = 1; step < 64; step++) {
        assert_int_equal(run_stream(f, openai_stream, step, &part, &feed_rc), SB_OK);
        assert_string_equal(part.out.p, whole.out.p);
        sb_buf_free(&part.out);
    }
    sb_buf_free(&whole.out);
}

/* The chunk slice is the data bytes verbatim. */
static int check_chunk(void *ud, const struct sb_event *ev)
{
    (void)ud;
    if (ev->kind == SB_EV_CHUNK)
        assert_true(sb_slice_eq_cstr(ev->chunk, "{\"choices\":[{\"delta\":{\"content\":\"a\"},"
                                                "\"finish_reason\":\"length\"}] , \"x\" : 1}"));
    return 0;
}

static void test_stream_chunk_verbatim(void **state)
{
    struct fx *f = *state;
    struct sb_error err;
    const char *s = "data:{\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":"
                    "\"length\"}] , \"x\" : 1}\r\n\r\n";
    fx_call(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT);
    void *st = f->ops->stream_open(&f->c);
    assert_int_equal(f->ops->stream_feed(st, s, strlen(s), check_chunk, NULL, &err), SB_OK);
    /* finish_reason seen but no [DONE]: finish closes the stream with DONE. */
    struct log l = {.n = 0};
    sb_buf_init(&l.out, 0);
    assert_int_equal(f->ops->stream_finish(st, on_event, &l, &err), SB_OK);
    assert_string_equal(l.out.p, "DONE\n");
    sb_buf_free(&l.out);
}

static void expect_stream(struct fx *f, const char *s, sb_err want_feed, sb_err want_finish,
                          const char *want_log)
{
    for (size_t step = 0; step < 8; step++) {
        struct log l = {.n = 0};
        sb_err feed_rc;
        sb_err rc = run_stream(f, s, step, &l, &feed_rc);
        assert_int_equal(feed_rc, want_feed);
        assert_int_equal(rc, want_feed != SB_OK ? want_feed : want_finish);
        assert_string_equal(l.out.p, want_log);
        sb_buf_free(&l.out);
    }
}

static void test_stream_errors(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT);
    /* An error object in the stream. */
    expect_stream(f,
                  "data: {\"error\":{\"message\":\"The server had an "
                  "error\\nretry\",\"type\":\"server_error\"}}\n\n",
                  SB_OK, SB_E_UPSTREAM,
                  "ERROR UPSTREAM upstream openai: The server had an error retry\n");
    /* An "error" event without a message. */
    expect_stream(f, "event: error\ndata: {\"code\":5}\n\n", SB_OK, SB_E_UPSTREAM,
                  "ERROR UPSTREAM upstream openai: {\"code\":5}\n");
    /* Ended early: no [DONE], no finish_reason. */
    expect_stream(f, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", SB_OK,
                  SB_E_UPSTREAM, "CHUNK text=[x] fr=[] usage=0:-1/-1 only=0 len=39\n");
    /* Incomplete trailing event. */
    expect_stream(f,
                  "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"cho",
                  SB_OK, SB_E_UPSTREAM, "CHUNK text=[] fr=[stop] usage=0:-1/-1 only=0 len=49\n");
    /* Malformed JSON in a data line fails the feed. */
    expect_stream(f, "data: {\"choices\":[}\n\n", SB_E_UPSTREAM, SB_E_UPSTREAM, "");
    expect_stream(f, "data: [1,2]\n\n", SB_E_UPSTREAM, SB_E_UPSTREAM, "");
    /* Comments, usage:null, and anything after [DONE] are ignored. */
    expect_stream(
        f,
        ": keep-alive\n\ndata: {\"choices\":[],\"usage\":null}\n\ndata: [DONE]\n\ndata: junk\n\n",
        SB_OK, SB_OK, "CHUNK text=[] fr=[] usage=0:-1/-1 only=0 len=27\nDONE\n");
    /* Empty stream. */
    expect_stream(f, "", SB_OK, SB_E_UPSTREAM, "");
}

static void test_stream_callback_stops(void **state)
{
    struct fx *f = *state;
    struct sb_error err;
    struct log l = {.stop_after = 2};
    fx_call(f, "{\"model\":\"gpt\",\"stream\":true}", SB_OP_CHAT);
    void *st = f->ops->stream_open(&f->c);
    sb_buf_init(&l.out, 0);
    assert_int_equal(
        f->ops->stream_feed(st, openai_stream, strlen(openai_stream), on_event, &l, &err), 99);
    assert_int_equal(l.n, 2);
    sb_buf_free(&l.out);
}

/* ---- errors ---- */

static void expect_map(struct fx *f, int status, const char *body, sb_err code, int http,
                       const char *msg)
{
    struct sb_error err;
    memset(&err, 0, sizeof(err));
    f->ops->map_error(&f->c, status, sb_slice_cstr(body), &err);
    assert_int_equal(err.code, code);
    assert_int_equal(err.http_status, http);
    assert_string_equal(err.msg, msg);
}

static void test_map_error(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{\"model\":\"gpt\"}", SB_OP_CHAT);
    expect_map(f, 401,
               "{\"error\":{\"message\":\"Incorrect API key provided: sk-test-***1234.\","
               "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"}}",
               SB_E_UNAUTHORIZED, 401,
               "upstream openai: Incorrect API key provided: sk-test-***1234.");
    /* An upstream that echoes the full key never gets it into our message. */
    expect_map(f, 401, "{\"error\":{\"message\":\"bad key sk-test-secret-1234\"}}",
               SB_E_UNAUTHORIZED, 401, "upstream openai: bad key *******************");
    expect_map(f, 429, "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}",
               SB_E_RATE_LIMITED, 429, "upstream openai: Rate limit reached");
    expect_map(f, 400, "{\"error\":\"plain string\"}", SB_E_BAD_REQUEST, 400,
               "upstream openai: plain string");
    expect_map(f, 404, "{\"detail\":\"Not Found\"}", SB_E_NOT_FOUND, 404,
               "upstream openai: Not Found");
    expect_map(f, 422, "{\"message\":\"bad field\"}", SB_E_UNPROCESSABLE, 422,
               "upstream openai: bad field");
    expect_map(f, 418, "", SB_E_BAD_REQUEST, 418, "upstream openai: HTTP 418");
    expect_map(f, 500, "{\"error\":{\"message\":\"The server had an error\"}}", SB_E_UPSTREAM, 500,
               "upstream openai: The server had an error");
    expect_map(f, 503, "<html>\r\n<body>Service\tUnavailable</body>\r\n</html>", SB_E_UPSTREAM, 503,
               "upstream openai: <html>  <body>Service Unavailable</body>  </html>");
    expect_map(f, 302, "moved", SB_E_UPSTREAM, 502, "upstream openai: moved");
    /* Long bodies are cut, at a character boundary. */
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big + 199, "\xc3\xa9", 2); /* straddles the 200-byte cut */
    big[sizeof(big) - 1] = '\0';
    struct sb_error err;
    f->ops->map_error(&f->c, 502, sb_slice_cstr(big), &err);
    assert_int_equal(strlen(err.msg), strlen("upstream openai: ") + 199);
}

/* Found by fuzz/openai_fuzz.c: an upstream that puts the key in error.code, type or param. */
static void test_map_error_key_in_fields(void **state)
{
    struct fx *f = *state;
    struct sb_error err;
    fx_call(f, "{\"model\":\"gpt\"}", SB_OP_CHAT);
    memset(&err, 0, sizeof(err));
    f->ops->map_error(
        &f->c, 401,
        sb_slice_cstr("{\"error\":{\"message\":\"no\",\"code\":\"sk-test-secret-1234\","
                      "\"type\":\"sk-test-secret-1234\",\"param\":\"key=sk-test-secret-1234\"}}"),
        &err);
    assert_int_equal(err.code, SB_E_UNAUTHORIZED);
    assert_string_equal(err.api_code, "invalid_api_key"); /* the status's word, not the key */
    assert_string_equal(err.api_type, "");
    assert_string_equal(err.api_param, "");
    /* The same fields without the key still pass through. */
    memset(&err, 0, sizeof(err));
    f->ops->map_error(
        &f->c, 400,
        sb_slice_cstr("{\"error\":{\"message\":\"long\",\"code\":\"context_length_exceeded\","
                      "\"type\":\"invalid_request_error\",\"param\":\"messages\"}}"),
        &err);
    assert_string_equal(err.api_code, "context_length_exceeded");
    assert_string_equal(err.api_type, "invalid_request_error");
    assert_string_equal(err.api_param, "messages");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_positions, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_tail, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_body_in_pieces, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_model_escapes_and_unicode, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_copy_when_unchanged, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_options, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_url_and_headers, setup, fx_teardown),
        cmocka_unit_test(test_registry),
        cmocka_unit_test_setup_teardown(test_parse_response, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_events, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_split_invariance, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_chunk_verbatim, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_errors, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_callback_stops, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error_key_in_fields, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
