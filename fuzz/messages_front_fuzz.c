/* SPDX-License-Identifier: MIT */
/*
 * messages_front_fuzz.c - libFuzzer target for the Anthropic front-door translations.
 *
 * The first byte picks the translation: 0 an Anthropic request, 1 a whole
 * OpenAI response, 2 an OpenAI chunk stream (one chunk per line). None may
 * crash or leak, and whatever they produce must be valid JSON (the request
 * and response bodies, and every SSE event's data line), since it goes
 * straight to an upstream or a client.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/messages_front.h"

static void must_be_json(struct sb_arena *a, struct sb_slice s)
{
    struct sb_json *j;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 128, .max_bytes = 0};
    if (sb_json_parse(a, s.p, s.len, &lim, &j, &err) != SB_OK)
        abort();
}

static void stream(struct sb_arena *a, const char *p, size_t n)
{
    struct sb_messages_front_stream *st = sb_messages_front_stream_open(a, NULL);
    struct sb_buf out;
    struct sb_error err;
    sb_err rc = SB_OK;
    sb_buf_init(&out, 0);
    for (size_t i = 0; i < n && rc == SB_OK;) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
        rc = sb_messages_front_stream_feed(st, (struct sb_slice){p + i, len}, &out, &err);
        i += len + 1;
    }
    if (rc == SB_OK)
        sb_messages_front_stream_finish(st, &out, &err);
    /* Data lines start after a newline; JSON escapes newlines, so none starts inside one. */
    for (char *d = out.p ? strstr(out.p, "\ndata: ") : NULL; d; d = strstr(d + 1, "\ndata: ")) {
        char *end = strstr(d + 1, "\n\n");
        if (!end)
            abort();
        must_be_json(a, (struct sb_slice){d + 7, (size_t)(end - d - 7)});
    }
    sb_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct sb_arena *a = sb_arena_create(4096);
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct sb_slice out;
    struct sb_error err;
    struct sb_json *j;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    switch (data[0] % 3) {
    case 0:
        if (sb_json_parse(a, p, n, &lim, &j, &err) == SB_OK &&
            sb_messages_front_request(a, j, &out, &err) == SB_OK)
            must_be_json(a, out);
        break;
    case 1:
        if (sb_messages_front_response(a, (struct sb_slice){p, n}, NULL, &out, &err) == SB_OK)
            must_be_json(a, out);
        break;
    default:
        stream(a, p, n);
        break;
    }
    sb_arena_free(a);
    return 0;
}
