/* SPDX-License-Identifier: MIT */
/*
 * golden_test.c - runs the adapters' recorded cases in tests/golden/.
 *
 * Each case is a folder tests/golden/<type>/<case>/ holding:
 *   request.json   the client's body, byte for byte
 *   upstream.sse   the upstream's stream as recorded (the provider's real format)
 *   expect.json    what the adapter must make of them:
 *     {"upstream_model": "...", "op": "chat"|"embeddings" (default chat),
 *      "base_url": "..." (default https://api.openai.com/v1; key "sk-golden-key", bearer),
 *      "request": {"url": "...", "body": "<exact upstream body>",
 *                  "headers": {"Name": "value", ...}},        (headers: a subset)
 *      "events": [{"kind": "chunk", "text": "...", "finish_reason": "...",
 *                  "usage_only": false, "usage": null | {"prompt_tokens": n,
 *                  "completion_tokens": n}},
 *                 {"kind": "error", "message": "..."}, {"kind": "done"}],
 *      "result": "ok" | "feed_error" | "finish_error",
 *      "error_contains": "..." (optional, for the two error results)}
 * The stream is fed whole, byte by byte and in pseudo-random pieces; all
 * three must give exactly the expected events, and every chunk must be a
 * verbatim slice of upstream.sse. Tests run from the repository root.
 */
#include <dirent.h>
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

#define GOLDEN_ROOT "tests/golden"

static struct sb_slice read_file(struct sb_arena *a, const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    struct sb_buf b;
    sb_buf_init(&b, 0);
    char tmp[4096];
    size_t n = fread(tmp, 1, sizeof(tmp), f);
    while (n > 0) {
        sb_buf_append(&b, tmp, n);
        n = fread(tmp, 1, sizeof(tmp), f);
    }
    fclose(f);
    struct sb_slice s = b.len ? sb_arena_slice(a, sb_buf_slice(&b)) : SB_SLICE("");
    sb_buf_free(&b);
    return s;
}

/* ---- events as JSON, so they compare with expect.json directly ---- */

struct run {
    json_t *events;     /* array being built */
    struct sb_slice up; /* upstream.sse, to check chunks are verbatim */
};

static json_t *slice_json(struct sb_slice s)
{
    return json_stringn(s.p ? s.p : "", s.len);
}

static int on_event(void *ud, const struct sb_event *ev)
{
    struct run *r = ud;
    json_t *e = json_object();
    if (ev->kind == SB_EV_CHUNK) {
        json_object_set_new(e, "kind", json_string("chunk"));
        json_object_set_new(e, "text", slice_json(ev->text));
        json_object_set_new(e, "finish_reason", slice_json(ev->finish_reason));
        json_object_set_new(e, "usage_only", json_boolean(ev->usage_only));
        json_object_set_new(
            e, "usage",
            ev->has_usage
                ? json_pack("{sIsI}", "prompt_tokens", (json_int_t)ev->usage.prompt_tokens,
                            "completion_tokens", (json_int_t)ev->usage.completion_tokens)
                : json_null());
        assert_non_null(memmem(r->up.p, r->up.len, ev->chunk.p, ev->chunk.len));
    } else if (ev->kind == SB_EV_DONE) {
        json_object_set_new(e, "kind", json_string("done"));
    } else {
        json_object_set_new(e, "kind", json_string("error"));
        json_object_set_new(e, "message", json_string(ev->error.msg));
    }
    json_array_append_new(r->events, e);
    return 0;
}

/* ---- one case ---- */

struct golden {
    const char *dir;
    struct sb_arena *a;
    json_t *expect;
    struct sb_provider p;
    struct sb_model m;
    struct sb_call c;
};

static void check_request(struct golden *g)
{
    struct sb_upstream_req r;
    struct sb_error err;
    json_t *want = json_object_get(g->expect, "request");
    assert_int_equal(g->p.ops->build_request(&g->c, &r, &err), SB_OK);
    assert_string_equal(r.url, json_string_value(json_object_get(want, "url")));
    json_t *body = json_object_get(want, "body");
    assert_int_equal(r.body.len, json_string_length(body));
    assert_memory_equal(r.body.p, json_string_value(body), r.body.len);
    const char *name;
    json_t *value;
    json_object_foreach(json_object_get(want, "headers"), name, value)
    {
        bool found = false;
        for (size_t i = 0; i < r.nheaders; i++)
            if (sb_slice_caseeq(r.headers[i].name, sb_slice_cstr(name)))
                found = sb_slice_eq_cstr(r.headers[i].value, json_string_value(value));
        if (!found)
            fail_msg("%s: header %s is not %s", g->dir, name, json_string_value(value));
    }
}

/* Feeds up in pieces chosen by `mode` (0 whole, 1 bytes, 2 pseudo-random); returns the result name.
 */
static const char *stream(struct golden *g, struct sb_slice up, int mode, struct run *r,
                          struct sb_error *err)
{
    void *st = g->p.ops->stream_open(&g->c);
    unsigned seed = 12345;
    size_t i = 0;
    while (i < up.len) {
        size_t n = up.len - i;
        if (mode == 1)
            n = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 97;
            n = n > up.len - i ? up.len - i : n;
        }
        if (g->p.ops->stream_feed(st, up.p + i, n, on_event, r, err) != SB_OK)
            return "feed_error";
        i += n;
    }
    return g->p.ops->stream_finish(st, on_event, r, err) == SB_OK ? "ok" : "finish_error";
}

static void check_stream(struct golden *g)
{
    struct sb_slice up = read_file(g->a, g->dir, "upstream.sse");
    const char *want = json_string_value(json_object_get(g->expect, "result"));
    const char *contains = json_string_value(json_object_get(g->expect, "error_contains"));
    for (int mode = 0; mode < 3; mode++) {
        struct run r = {json_array(), up};
        struct sb_error err = {.code = 0};
        const char *got = stream(g, up, mode, &r, &err);
        if (strcmp(got, want) != 0)
            fail_msg("%s (mode %d): result %s, want %s (%s)", g->dir, mode, got, want, err.msg);
        if (contains && !strstr(err.msg, contains))
            fail_msg("%s: error \"%s\" lacks \"%s\"", g->dir, err.msg, contains);
        if (!json_equal(r.events, json_object_get(g->expect, "events"))) {
            char *s = json_dumps(r.events, JSON_INDENT(1));
            fail_msg("%s (mode %d): events differ; got:\n%s", g->dir, mode, s);
        }
        json_decref(r.events);
    }
}

static void run_case(const char *type, const char *dir)
{
    struct golden g = {.dir = dir, .a = sb_arena_create(16384)};
    json_error_t jerr;
    struct sb_json *j = NULL;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    char path[1024];
    snprintf(path, sizeof(path), "%s/expect.json", dir);
    g.expect = json_load_file(path, 0, &jerr);
    if (!g.expect)
        fail_msg("%s: %s", path, jerr.text);
    const char *op = json_string_value(json_object_get(g.expect, "op"));
    const char *base = json_string_value(json_object_get(g.expect, "base_url"));
    g.p = (struct sb_provider){.id = type,
                               .type = type,
                               .auth = SB_AUTH_BEARER,
                               .base_url = base ? base : "https://api.openai.com/v1"};
    g.p.ops = sb_provider_ops_find(sb_slice_cstr(type));
    assert_non_null(g.p.ops);
    g.p.api_key = sb_secret_new("sk-golden-key", 13);
    g.m = (struct sb_model){.id = "client-model",
                            .provider = &g.p,
                            .upstream_model =
                                json_string_value(json_object_get(g.expect, "upstream_model"))};
    struct sb_slice body = read_file(g.a, dir, "request.json");
    assert_int_equal(sb_json_parse(g.a, body.p, body.len, &lim, &j, &err), SB_OK);
    const struct sb_json *so = sb_json_get(j, "stream_options");
    g.c = (struct sb_call){.arena = g.a, .provider = &g.p, .model = &g.m, .body = body, .json = j};
    g.c.op = op && !strcmp(op, "embeddings") ? SB_OP_EMBEDDINGS : SB_OP_CHAT;
    g.c.stream = g.c.op == SB_OP_CHAT && sb_json_bool(sb_json_get(j, "stream"));
    g.c.client_wants_usage = so && sb_json_bool(sb_json_get(so, "include_usage"));
    check_request(&g);
    check_stream(&g);
    json_decref(g.expect);
    sb_secret_free(g.p.api_key);
    sb_arena_free(g.a);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every case folder under tests/golden/<type>/, in name order. */
static void run_type(const char *type, size_t min_cases)
{
    char root[256], *names[256];
    size_t n = 0;
    snprintf(root, sizeof(root), GOLDEN_ROOT "/%s", type);
    DIR *d = opendir(root);
    if (!d)
        fail_msg("cannot open %s (run the tests from the repository root)", root);
    for (struct dirent *e = readdir(d); e && n < 256; e = readdir(d))
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    assert_true(n >= min_cases);
    for (size_t i = 0; i < n; i++) {
        char dir[768];
        snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
        print_message("golden %s\n", dir);
        run_case(type, dir);
        free(names[i]);
    }
}

static void test_openai(void **state)
{
    (void)state;
    run_type("openai", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
