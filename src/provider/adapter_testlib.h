/* SPDX-License-Identifier: MIT */
/*
 * adapter_testlib.h - test helpers shared by the translating adapters' cmocka files
 * (cohere_test.c, ollama_test.c). Included by test files only; every function is static.
 *
 * A fixture holds a provider, model and call as the proxy builds them; a
 * stream is fed whole, one byte at a time or in pseudo-random pieces, and
 * its events are folded into one JSON summary (content, reasoning, tool
 * calls by index, finish reason, usage, errors) so that every split can be
 * compared with the others and with the non-streamed answer.
 */
#ifndef SB_PROVIDER_ADAPTER_TESTLIB_H
#define SB_PROVIDER_ADAPTER_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/arena.h"
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

static struct fx *fx_new(const char *type, const char *base, const char *key, const char *up)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->a = sb_arena_create(8192);
    f->ops = sb_provider_ops_find(sb_slice_cstr(type));
    assert_non_null(f->ops);
    f->p = (struct sb_provider){.id = type,
                                .type = type,
                                .ops = f->ops,
                                .base_url = base,
                                .auth = key ? SB_AUTH_BEARER : SB_AUTH_NONE};
    if (key)
        f->p.api_key = sb_secret_new(key, strlen(key));
    f->m = (struct sb_model){.id = "client-model", .provider = &f->p, .upstream_model = up};
    return f;
}

static void fx_free(struct fx *f)
{
    sb_secret_free(f->p.api_key);
    sb_arena_free(f->a);
    free(f);
}

/* Parses body into f->c as the proxy does. */
static void fx_call(struct fx *f, const char *body, enum sb_op op)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    char *copy = sb_arena_strndup(f->a, body, strlen(body));
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
}

static struct sb_slice fx_header(const struct sb_upstream_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (sb_slice_caseeq(r->headers[i].name, sb_slice_cstr(name)))
            return r->headers[i].value;
    return SB_SLICE_NULL;
}

/* Builds the request for body and checks the upstream body is exactly want. */
static struct sb_upstream_req fx_expect_body(struct fx *f, const char *body, enum sb_op op,
                                             const char *want)
{
    struct sb_upstream_req r;
    struct sb_error err = {0};
    fx_call(f, body, op);
    if (f->ops->build_request(&f->c, &r, &err) != SB_OK)
        fail_msg("build_request failed: %s", err.msg);
    if (r.body.len != strlen(want) || memcmp(r.body.p, want, r.body.len) != 0)
        fail_msg("body:\n got %.*s\nwant %s", (int)r.body.len, r.body.p, want);
    return r;
}

/* Builds the request for body and checks it fails with code and a message containing frag. */
static void fx_expect_refused(struct fx *f, const char *body, enum sb_op op, sb_err code,
                              const char *frag)
{
    struct sb_upstream_req r;
    struct sb_error err = {0};
    fx_call(f, body, op);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), code);
    if (!strstr(err.msg, frag))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
}

/* ---- streams folded into a summary ---- */

struct fold {
    json_t *sum; /* {"content","reasoning","tools":{idx:{id,name,arguments}},"finish",...} */
    json_t *id;  /* the first chunk's id: every chunk must carry it */
    int nchunks;
    struct fx *f;
};

static void append_str(json_t *obj, const char *key, const char *add)
{
    json_t *cur = json_object_get(obj, key);
    size_t n = cur ? json_string_length(cur) : 0, m = strlen(add);
    char *s = malloc(n + m + 1);
    memcpy(s, cur ? json_string_value(cur) : "", n);
    memcpy(s + n, add, m + 1);
    json_object_set_new(obj, key, json_string(s));
    free(s);
}

static void fold_tool(struct fold *fo, json_t *tc)
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

static void fold_chunk(struct fold *fo, const struct sb_event *ev)
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

static int fold_event(void *ud, const struct sb_event *ev)
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
static json_t *fx_stream(struct fx *f, const char *up, size_t len, unsigned mode)
{
    struct fold fo = {.sum = json_object(), .f = f};
    struct sb_error err = {0};
    const char *result = "ok";
    json_object_set_new(fo.sum, "tools", json_object());
    void *st = f->ops->stream_open(&f->c);
    unsigned seed = mode;
    for (size_t i = 0; i < len;) {
        size_t n = len - i;
        if (mode == 1)
            n = 1;
        if (mode >= 2) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 61;
            n = n > len - i ? len - i : n;
        }
        if (f->ops->stream_feed(st, up + i, n, fold_event, &fo, &err) != SB_OK) {
            result = "feed_error";
            break;
        }
        i += n;
    }
    if (!strcmp(result, "ok") && f->ops->stream_finish(st, fold_event, &fo, &err) != SB_OK)
        result = "finish_error";
    json_object_set_new(fo.sum, "result", json_string(result));
    if (strcmp(result, "ok"))
        json_object_set_new(fo.sum, "message", json_string(err.msg));
    json_decref(fo.id);
    return fo.sum;
}

/* Runs every split mode and checks they agree; returns the summary (caller decrefs). */
static json_t *fx_stream_all(struct fx *f, const char *up)
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
static void fx_expect_json(json_t *obj, const char *key, const char *want)
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

/* Parses a whole response into a jansson tree (caller decrefs). */
static json_t *fx_parse(struct fx *f, const char *body, struct sb_result *res)
{
    struct sb_error err = {0};
    json_error_t je;
    if (f->ops->parse_response(&f->c, sb_slice_cstr(body), res, &err) != SB_OK)
        fail_msg("parse_response failed: %s", err.msg);
    json_t *j = json_loadb(res->body.p, res->body.len, 0, &je);
    if (!j)
        fail_msg("response is not JSON: %.*s", (int)res->body.len, res->body.p);
    return j;
}

/* map_error for (status, body): checks code, HTTP status, api_code, and a message fragment. */
static void fx_expect_error(struct fx *f, int status, const char *body, sb_err code, int http,
                            const char *api_code, const char *frag)
{
    struct sb_error err = {0};
    f->ops->map_error(&f->c, status, sb_slice_cstr(body), &err);
    assert_int_equal(err.code, code);
    assert_int_equal(sb_err_status(&err), http);
    assert_string_equal(err.api_code, api_code);
    if (!strstr(err.msg, frag))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
}

#endif
