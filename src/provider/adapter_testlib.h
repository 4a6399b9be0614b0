/* SPDX-License-Identifier: MIT */
/*
 * adapter_testlib.h - the test helpers every provider adapter's cmocka file shares
 * (anthropic, azure, bedrock, cohere, gemini, huggingface, ollama, openai). Included by
 * test files only; every function is static inline (a file need not use them all), so each
 * test binary still links with libsb.a alone.
 *
 * A fixture holds a provider, model and call as the proxy builds them; requests are built
 * from a client body and compared with the exact upstream body; a stream is fed whole, in
 * fixed steps or in pseudo-random pieces to the test's own event callback; and, for the
 * translating adapters, its events are folded into one JSON summary (content, reasoning,
 * tool calls by index, finish reason, usage, errors) so that every split can be compared
 * with the others and with the non-streamed answer.
 */
#ifndef SB_PROVIDER_ADAPTER_TESTLIB_H
#define SB_PROVIDER_ADAPTER_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
    bool squote;  /* client bodies and expected bodies are written with ' for " (see fx_q) */
    bool foreign; /* the next calls carry another provider's signatures (a fallback) */
};

/* ---- fixture ---- */

/*
 * Returns owned (free with fx_free): provider p and model m as the test writes them, with
 * the ops found by p.type and the model pointed at the provider; key (NULL for none)
 * becomes p.api_key.
 */
static inline struct fx *fx_open(struct sb_provider p, const char *key, struct sb_model m)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->a = sb_arena_create(8192);
    f->ops = sb_provider_ops_find(sb_slice_cstr(p.type));
    assert_non_null(f->ops);
    f->p = p;
    f->p.ops = f->ops;
    if (key)
        f->p.api_key = sb_secret_new(key, strlen(key));
    f->m = m;
    f->m.provider = &f->p;
    return f;
}

/* fx_open for a provider named after its type, bearer auth when key is given. */
static inline struct fx *fx_new(const char *type, const char *base, const char *key, const char *up)
{
    struct sb_provider p = {
        .id = type, .type = type, .base_url = base, .auth = key ? SB_AUTH_BEARER : SB_AUTH_NONE};
    return fx_open(p, key, (struct sb_model){.id = "client-model", .upstream_model = up});
}

static inline void fx_free(struct fx *f)
{
    sb_secret_free(f->p.api_key);
    sb_secret_free(f->p.aws_access_key_id);
    sb_secret_free(f->p.aws_secret_access_key);
    sb_arena_free(f->a);
    free(f);
}

/* A cmocka teardown for a fixture in *state. */
static inline int fx_teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/*
 * Returns s itself, or, when the fixture writes JSON with ' for ", a copy from the arena
 * with every ' turned into ". Borrows s: the call keeps pointing into it, so a test can
 * check that an adapter sends the client's bytes without a copy.
 */
static inline const char *fx_q(struct fx *f, const char *s)
{
    if (!f->squote)
        return s;
    char *o = sb_arena_strndup(f->a, s, strlen(s));
    for (char *p = o; *p; p++)
        if (*p == '\'')
            *p = '"';
    return o;
}

/* Parses body into f->c as the proxy does. */
static inline void fx_call(struct fx *f, const char *body, enum sb_op op)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    const char *copy = fx_q(f, body);
    assert_int_equal(sb_json_parse(f->a, copy, strlen(copy), &lim, &j, &err), SB_OK);
    const struct sb_json *so = sb_json_get(j, "stream_options");
    f->c = (struct sb_call){.arena = f->a,
                            .op = op,
                            .provider = &f->p,
                            .model = &f->m,
                            .body = sb_slice_cstr(copy),
                            .json = j};
    f->c.stream = op == SB_OP_CHAT && sb_json_bool(sb_json_get(j, "stream"));
    f->c.client_wants_usage = so && sb_json_bool(sb_json_get(so, "include_usage"));
    f->c.foreign_signatures = f->foreign;
}

static inline struct sb_slice fx_header(const struct sb_upstream_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (sb_slice_caseeq(r->headers[i].name, sb_slice_cstr(name)))
            return r->headers[i].value;
    return SB_SLICE_NULL;
}

/* Checks got is exactly the bytes of want. */
static inline void fx_expect_slice(struct sb_slice got, const char *want)
{
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("got\n%.*s\nwant\n%s", SB_FMT(got), want);
}

/* ---- requests ---- */

/* Builds the request for body; it must succeed. */
static inline struct sb_upstream_req fx_build(struct fx *f, const char *body, enum sb_op op)
{
    struct sb_upstream_req r;
    struct sb_error err = {0};
    fx_call(f, body, op);
    if (f->ops->build_request(&f->c, &r, &err) != SB_OK)
        fail_msg("build_request failed: %s", err.msg);
    return r;
}

/* Builds the request for body and checks the upstream body is exactly want, and JSON. */
static inline struct sb_upstream_req fx_expect_body(struct fx *f, const char *body, enum sb_op op,
                                                    const char *want)
{
    struct sb_upstream_req r = fx_build(f, body, op);
    json_error_t je;
    want = fx_q(f, want);
    if (r.body.len != strlen(want) || memcmp(r.body.p, want, r.body.len) != 0)
        fail_msg("body:\n got %.*s\nwant %s", (int)r.body.len, r.body.p, want);
    json_t *j = json_loadb(r.body.p, r.body.len, 0, &je);
    if (!j)
        fail_msg("upstream body is not JSON: %s", je.text);
    json_decref(j);
    return r;
}

/* Builds the request for body; it must fail with code and a message containing frag.
 * Returns the error for further checks. */
static inline struct sb_error fx_expect_refused(struct fx *f, const char *body, enum sb_op op,
                                                sb_err code, const char *frag)
{
    struct sb_upstream_req r;
    struct sb_error err = {0};
    fx_call(f, body, op);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), code);
    if (!strstr(err.msg, frag))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
    return err;
}

/* ---- streams fed in pieces ---- */

/*
 * Feeds up[0..len) to st in pieces: of `step` bytes (0: whole), or, when seed is not 0,
 * of pseudo-random sizes from 1 to 61 drawn from seed. Returns the first feed's error,
 * or SB_OK when every piece went in.
 */
static inline sb_err fx_feed_pieces(struct fx *f, void *st, const char *up, size_t len, size_t step,
                                    unsigned seed, sb_event_fn cb, void *ud, struct sb_error *err)
{
    for (size_t i = 0; i < len;) {
        size_t n = step ? step : len - i;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 61;
        }
        n = n > len - i ? len - i : n;
        sb_err rc = f->ops->stream_feed(st, up + i, n, cb, ud, err);
        if (rc != SB_OK)
            return rc;
        i += n;
    }
    return SB_OK;
}

/* Opens a stream on f->c, feeds up as fx_feed_pieces does, then finishes it; returns the
 * first non-OK code of the feeds and the finish. */
static inline sb_err fx_feed(struct fx *f, const char *up, size_t len, size_t step, unsigned seed,
                             sb_event_fn cb, void *ud, struct sb_error *err)
{
    void *st = f->ops->stream_open(&f->c);
    sb_err rc = fx_feed_pieces(f, st, up, len, step, seed, cb, ud, err);
    return rc != SB_OK ? rc : f->ops->stream_finish(st, cb, ud, err);
}

/* ---- streams logged one line an event ---- */

struct fx_log {
    struct sb_buf out;  /* "CHUNK text=[..] fr=[..] usage=H:P/C only=U", "DONE" or "ERROR msg" */
    struct sb_buf text; /* the chunks' content deltas, joined */
};

/* An sb_event_fn that logs into the struct fx_log ud; a chunk must be a JSON chunk object. */
static inline int fx_log_event(void *ud, const struct sb_event *ev)
{
    struct fx_log *l = ud;
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

/* Streams s through a fresh state in pieces of step bytes (0: whole) into l (free with
 * fx_log_free); returns the first non-OK code of the feeds and the finish. */
static inline sb_err fx_log_stream(struct fx *f, const char *s, size_t step, struct fx_log *l)
{
    struct sb_error err;
    sb_buf_init(&l->out, 0);
    sb_buf_init(&l->text, 0);
    sb_buf_append_char(&l->out, 'x'); /* allocated, so .p is a string even when empty */
    sb_buf_reset(&l->out);
    sb_buf_append_char(&l->text, 'x');
    sb_buf_reset(&l->text);
    return fx_feed(f, s, strlen(s), step, 0, fx_log_event, l, &err);
}

static inline void fx_log_free(struct fx_log *l)
{
    sb_buf_free(&l->out);
    sb_buf_free(&l->text);
}

/* ---- streams folded into a summary ---- */

struct fold {
    json_t *sum; /* {"content","reasoning","tools":{idx:{id,name,arguments}},"finish",...} */
    json_t *id;  /* the first chunk's id: every chunk must carry it */
    int nchunks;
    struct fx *f;
};

static inline void append_str(json_t *obj, const char *key, const char *add)
{
    json_t *cur = json_object_get(obj, key);
    size_t n = cur ? json_string_length(cur) : 0, m = strlen(add);
    char *s = malloc(n + m + 1);
    memcpy(s, cur ? json_string_value(cur) : "", n);
    memcpy(s + n, add, m + 1);
    json_object_set_new(obj, key, json_string(s));
    free(s);
}

static inline void fold_tool(struct fold *fo, json_t *tc)
{
    json_t *tools = json_object_get(fo->sum, "tools");
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", (int)json_integer_value(json_object_get(tc, "index")));
    json_t *t = json_object_get(tools, idx), *fn = json_object_get(tc, "function");
    if (!t) {
        assert_non_null(json_object_get(tc, "id")); /* id and name on a call's first delta */
        assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
        assert_non_null(json_object_get(fn, "name"));
        t = json_object();
        json_object_set(t, "id", json_object_get(tc, "id"));
        json_object_set(t, "name", json_object_get(fn, "name"));
        json_object_set_new(t, "arguments", json_string(""));
        json_object_set_new(tools, idx, t);
    } else {
        assert_null(json_object_get(tc, "id"));
    }
    json_t *args = json_object_get(fn, "arguments");
    if (args)
        append_str(t, "arguments", json_string_value(args));
}

static inline void fold_chunk(struct fold *fo, const struct sb_event *ev)
{
    json_error_t je;
    json_t *ch = json_loadb(ev->chunk.p, ev->chunk.len, 0, &je);
    if (!ch)
        fail_msg("chunk is not JSON: %.*s", (int)ev->chunk.len, ev->chunk.p);
    assert_string_equal(json_string_value(json_object_get(ch, "object")), "chat.completion.chunk");
    assert_string_equal(json_string_value(json_object_get(ch, "model")), fo->f->m.upstream_model);
    assert_true(json_is_integer(json_object_get(ch, "created")));
    if (!fo->id)
        fo->id = json_incref(json_object_get(ch, "id"));
    assert_true(json_equal(fo->id, json_object_get(ch, "id")));
    json_t *choice = json_array_get(json_object_get(ch, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    if (fo->nchunks++ == 0 && !ev->usage_only)
        assert_string_equal(json_string_value(json_object_get(delta, "role")), "assistant");
    if (ev->usage_only) {
        assert_int_equal(json_array_size(json_object_get(ch, "choices")), 0);
        json_object_set(fo->sum, "usage", json_object_get(ch, "usage"));
    }
    json_t *c = json_object_get(delta, "content"), *r = json_object_get(delta, "reasoning_content");
    if (json_is_string(c))
        append_str(fo->sum, "content", json_string_value(c));
    if (json_is_string(r))
        append_str(fo->sum, "reasoning", json_string_value(r));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc) fold_tool(fo, tc);
    json_t *fr = json_object_get(choice, "finish_reason");
    if (json_is_string(fr)) {
        json_object_set(fo->sum, "finish", fr);
        assert_int_equal(ev->finish_reason.len, json_string_length(fr));
    }
    /* The event's parsed text is exactly the chunk's content delta. */
    assert_int_equal(ev->text.len, json_is_string(c) ? json_string_length(c) : 0);
    json_decref(ch);
}

static inline int fold_event(void *ud, const struct sb_event *ev)
{
    struct fold *fo = ud;
    if (ev->kind == SB_EV_CHUNK)
        fold_chunk(fo, ev);
    else if (ev->kind == SB_EV_DONE)
        json_object_set_new(fo->sum, "done", json_true());
    else
        json_object_set_new(fo->sum, "error", json_string(ev->error.msg));
    return 0;
}

/*
 * Feeds up in pieces chosen by mode (0 whole, 1 bytes, 2+ pseudo-random with that seed) and
 * returns the summary, with "result" "ok" | "feed_error" | "finish_error" and "message".
 */
static inline json_t *fx_stream(struct fx *f, const char *up, size_t len, unsigned mode)
{
    struct fold fo = {.sum = json_object(), .f = f};
    struct sb_error err = {0};
    const char *result = "ok";
    json_object_set_new(fo.sum, "tools", json_object());
    void *st = f->ops->stream_open(&f->c);
    if (fx_feed_pieces(f, st, up, len, mode == 1, mode >= 2 ? mode : 0, fold_event, &fo, &err) !=
        SB_OK)
        result = "feed_error";
    else if (f->ops->stream_finish(st, fold_event, &fo, &err) != SB_OK)
        result = "finish_error";
    json_object_set_new(fo.sum, "result", json_string(result));
    if (strcmp(result, "ok"))
        json_object_set_new(fo.sum, "message", json_string(err.msg));
    json_decref(fo.id);
    return fo.sum;
}

/* Runs every split mode and checks they agree; returns the summary (caller decrefs). */
static inline json_t *fx_stream_all(struct fx *f, const char *up)
{
    json_t *first = fx_stream(f, up, strlen(up), 0);
    for (unsigned mode = 1; mode < 12; mode++) {
        json_t *s = fx_stream(f, up, strlen(up), mode);
        if (!json_equal(first, s)) {
            char *a = json_dumps(first, JSON_SORT_KEYS), *b = json_dumps(s, JSON_SORT_KEYS);
            fail_msg("split mode %u differs:\n%s\n%s", mode, a, b);
        }
        json_decref(s);
    }
    return first;
}

/* Checks summary member key equals the JSON text want. */
static inline void fx_expect_json(json_t *obj, const char *key, const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &je);
    if (!w)
        fail_msg("bad expected JSON %s: %s", want, je.text);
    if (!json_equal(json_object_get(obj, key), w)) {
        char *got = json_dumps(json_object_get(obj, key), JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fail_msg("%s: got %s, want %s", key, got ? got : "(absent)", want);
    }
    json_decref(w);
}

/* Parses a whole response body (see fx_q) into a jansson tree (caller decrefs). */
static inline json_t *fx_parse(struct fx *f, const char *body, struct sb_result *res)
{
    struct sb_error err = {0};
    json_error_t je;
    if (f->ops->parse_response(&f->c, sb_slice_cstr(fx_q(f, body)), res, &err) != SB_OK)
        fail_msg("parse_response failed: %s", err.msg);
    json_t *j = json_loadb(res->body.p, res->body.len, 0, &je);
    if (!j)
        fail_msg("response is not JSON: %.*s", (int)res->body.len, res->body.p);
    return j;
}

/*
 * map_error for (status, body): checks code, HTTP status, api_code, a message fragment, and
 * that the provider's key never reaches the message even when the upstream echoes it.
 */
static inline void fx_expect_error(struct fx *f, int status, const char *body, sb_err code,
                                   int http, const char *api_code, const char *frag)
{
    struct sb_error err = {0};
    f->ops->map_error(&f->c, status, sb_slice_cstr(body), &err);
    assert_int_equal(err.code, code);
    assert_int_equal(sb_err_status(&err), http);
    assert_string_equal(err.api_code, api_code);
    if (!strstr(err.msg, frag))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
    if (f->p.api_key) {
        struct sb_slice key = sb_secret_reveal(f->p.api_key);
        char *k = sb_arena_strndup(f->a, key.p, key.len);
        if (strstr(err.msg, k))
            fail_msg("error \"%s\" shows the key", err.msg);
    }
}

#endif
