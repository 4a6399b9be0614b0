/* SPDX-License-Identifier: MIT */
/*
 * batch_fuzz.c - libFuzzer target for a batch job's input (batch/jsonl.h).
 *
 * The first byte picks the options (bit 0: a job model replaces each line's;
 * bit 1: plain bodies go to /v1/embeddings; bit 2: lines are bounded at 64
 * bytes); the rest is the JSONL upload. Splitting and judging must not crash
 * or read out of bounds, and what they produce must hold together: an
 * accepted line is a JSON object (checked by jansson) with a non-empty string
 * model (the job's, when given), no stream, and a known endpoint; a refused
 * line has a code, a message naming its line, and no body; every output line
 * written from them is valid JSON (numbers beyond jansson's range aside).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "batch/jsonl.h"

/* jansson, or NULL for what only jansson's number range refuses (json_fuzz.c's rule). */
static json_t *load(const char *p, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &e);
    if (!j && strstr(e.text, "too big"))
        j = json_loadb(p, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!j)
        assert(strstr(e.text, "real number overflow"));
    return j;
}

static void check_accepted(const struct sb_batch_line *l, const struct sb_batch_opts *o)
{
    json_t *j = load(l->body.p, l->body.len);
    if (!j)
        return;
    assert(json_is_object(j));
    json_t *m = json_object_get(j, "model");
    assert(json_is_string(m) && json_string_length(m) > 0);
    if (o->model)
        assert(strcmp(json_string_value(m), o->model) == 0);
    json_t *s = json_object_get(j, "stream");
    assert(!json_is_true(s));
    assert(l->endpoint == SB_BATCH_CHAT || l->endpoint == SB_BATCH_EMBEDDINGS);
    assert(!l->custom_id || (strlen(l->custom_id) > 0 && strlen(l->custom_id) <= 256));
    json_decref(j);
}

static void check_output(const struct sb_batch_line *l)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    if (l->error_code)
        sb_batch_result_error(&b, "batch_f-1", l->custom_id, l->error_code, l->error_msg);
    else
        sb_batch_result_response(&b, "batch_f-1", l->custom_id, 200, "r", l->body);
    json_t *j = load(b.p, b.len);
    assert(!j || json_is_object(j));
    json_decref(j);
    sb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct sb_batch_opts o = {
        .endpoint = data[0] & 2 ? SB_BATCH_EMBEDDINGS : SB_BATCH_CHAT,
        .model = data[0] & 1 ? "job-model" : NULL,
        .max_line_bytes = data[0] & 4 ? 64 : 0,
    };
    struct sb_slice rest = {(const char *)data + 1, size - 1}, text;
    size_t lineno = 0, n = 0;
    struct sb_arena *a = sb_arena_create(4096);
    while (sb_batch_next_line(&rest, &lineno, &text) && n++ < 1000) {
        struct sb_batch_line l;
        char prefix[32];
        assert(!memchr(text.p, '\n', text.len));
        sb_batch_parse_line(a, text, lineno, &o, &l);
        if (l.error_code) {
            snprintf(prefix, sizeof(prefix), "line %zu: ", lineno);
            assert(l.error_msg && strncmp(l.error_msg, prefix, strlen(prefix)) == 0);
            assert(l.body.len == 0);
        } else {
            check_accepted(&l, &o);
        }
        check_output(&l);
    }
    sb_arena_free(a);
    return 0;
}
