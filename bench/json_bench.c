/* SPDX-License-Identifier: MIT */
/*
 * json_bench.c - throughput of the JSON reader and writer on a body shaped
 * like a real chat-completions request (~200 KB: a long conversation, tools
 * and sampling parameters), in two flavours: "mixed" message text with an
 * escape or non-ASCII character every few dozen bytes (code, quotes, CJK,
 * emoji), and "plain" English prose with a newline escape now and then.
 *
 * Prints MB/s (10^6 bytes per second of input) for parsing, for parsing plus
 * two lookups, and for re-serialising the tree with the writer. Not a test:
 * it asserts nothing about speed; `make build/bench/json_bench` builds it.
 *
 *   build/bench/json_bench [seconds-per-measurement]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

/* "mixed": an escape or a non-ASCII character every few dozen bytes (code, quotes, CJK, emoji). */
static const char *const mixed[] = {
    "Sure! Here is a summary of the document you shared.\\n\\n",
    "The quarterly report shows revenue growth of 12% year over year, ",
    "driven mainly by the \\\"enterprise\\\" segment. ",
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 ",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83"
    "\x88 ",
    "```python\\ndef f(x):\\n    return {\\\"a\\\": x * 2}\\n```\\n",
    "Emoji \xf0\x9f\x98\x80 and an escaped one \\ud83d\\ude00. ",
    "Tabs\\tand a path C:\\\\Users\\\\me and a URL https://example.com/a/b?c=d. ",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. ",
    NULL,
};

/* "plain": English prose, one escape (a newline) every few hundred bytes. */
static const char *const plain[] = {
    "The quarterly report shows revenue growth of 12% year over year, driven mainly by the "
    "enterprise segment. ",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore. ",
    "Please summarise the following meeting notes and list the action items for each "
    "participant.\\n",
    NULL,
};

static void add_message(struct sb_buf *b, const char *const *prose, int i)
{
    static const char *const roles[] = {"user", "assistant"};
    size_t n = 0;
    while (prose[n])
        n++;
    sb_buf_printf(b, ",{\"role\":\"%s\",\"content\":\"", roles[i % 2]);
    for (int k = 0; k < 12; k++)
        sb_buf_append_cstr(b, prose[(size_t)(i + k * 7) % n]);
    sb_buf_append_cstr(b, "\"}");
}

/* A chat-completions body of about `target` bytes. */
static void make_body(struct sb_buf *b, const char *const *prose, size_t target)
{
    sb_buf_append_cstr(b, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\","
                          "\"content\":\"You are a helpful assistant.\"}");
    for (int i = 0; b->len < target - 1024; i++)
        add_message(b, prose, i + 1);
    sb_buf_append_cstr(
        b, "],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
           "\"description\":\"Current weather\",\"parameters\":{\"type\":\"object\","
           "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\","
           "\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}}}],\"temperature\":0.7,"
           "\"top_p\":1,\"max_tokens\":1024,\"stream\":true,\"stream_options\":"
           "{\"include_usage\":true},\"seed\":9007199254740993,\"user\":\"u-123\"}");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Re-serialises j (numbers verbatim) with the writer. */
static void write_tree(struct sb_jw *w, const struct sb_json *j)
{
    switch (j->type) {
    case SB_JSON_OBJECT:
    case SB_JSON_ARRAY:
        if (j->type == SB_JSON_OBJECT)
            sb_jw_obj_begin(w);
        else
            sb_jw_arr_begin(w);
        for (const struct sb_json *c = j->child; c; c = c->next) {
            if (j->type == SB_JSON_OBJECT)
                sb_jw_key_slice(w, c->key);
            write_tree(w, c);
        }
        if (j->type == SB_JSON_OBJECT)
            sb_jw_obj_end(w);
        else
            sb_jw_arr_end(w);
        break;
    case SB_JSON_STRING:
        sb_jw_str(w, j->str);
        break;
    case SB_JSON_NUMBER:
        sb_jw_raw(w, j->raw);
        break;
    case SB_JSON_TRUE:
        sb_jw_bool(w, true);
        break;
    case SB_JSON_FALSE:
        sb_jw_bool(w, false);
        break;
    case SB_JSON_NULL:
        sb_jw_null(w);
        break;
    }
}

enum mode { PARSE, PARSE_GET, WRITE };

/* One iteration of `mode`; returns something derived from the work so it is not optimised out. */
static size_t once(enum mode mode, struct sb_arena *a, struct sb_slice body, struct sb_json *tree,
                   struct sb_buf *out)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    if (mode == WRITE) {
        struct sb_jw w;
        sb_buf_reset(out);
        sb_jw_init(&w, out);
        write_tree(&w, tree);
        return out->len;
    }
    sb_arena_reset(a);
    if (sb_json_parse(a, body.p, body.len, NULL, &j, &err) != SB_OK) {
        fprintf(stderr, "json_bench: %s\n", err.msg);
        exit(1);
    }
    if (mode == PARSE_GET)
        return sb_json_get(j, "stream") != NULL && sb_json_get(j, "model") != NULL;
    return j->count;
}

static void measure(const char *name, enum mode mode, struct sb_slice body, double secs)
{
    /* One block big enough for the whole tree, kept across sb_arena_reset:
     * this measures the parser, not malloc returning memory to the kernel. */
    struct sb_arena *a = sb_arena_create(1024 * 1024);
    struct sb_arena *ta = sb_arena_create(64 * 1024);
    struct sb_json *tree = NULL;
    struct sb_buf out;
    struct sb_error err;
    size_t sink = 0, iters = 0;
    sb_buf_init(&out, 0);
    sb_json_parse(ta, body.p, body.len, NULL, &tree, &err);
    double t0 = now(), t = t0;
    while (now() - t0 < secs / 4) /* warm up caches, malloc, the arena and the buffer */
        sink += once(mode, a, body, tree, &out);
    t0 = t = now();
    while (t - t0 < secs) {
        for (int k = 0; k < 16; k++)
            sink += once(mode, a, body, tree, &out);
        iters += 16;
        t = now();
    }
    double mbs = (double)body.len * (double)iters / (t - t0) / 1e6;
    printf("%-12s %8.0f MB/s  (%zu iterations of %zu bytes, %.1f us each; sink %zu)\n", name, mbs,
           iters, body.len, (t - t0) / (double)iters * 1e6, sink % 10);
    sb_buf_free(&out);
    sb_arena_free(a);
    sb_arena_free(ta);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    static const struct {
        const char *name;
        const char *const *prose;
    } bodies[] = {{"mixed", mixed}, {"plain", plain}};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct sb_buf body;
        sb_buf_init(&body, 0);
        make_body(&body, bodies[i].prose, 200 * 1024);
        struct sb_slice s = sb_buf_slice(&body);
        printf("%s body:\n", bodies[i].name);
        measure("  parse", PARSE, s, secs);
        measure("  parse+get", PARSE_GET, s, secs);
        measure("  write", WRITE, s, secs);
        sb_buf_free(&body);
    }
    return 0;
}
