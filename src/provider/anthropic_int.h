/* SPDX-License-Identifier: MIT */
/*
 * anthropic_int.h - what the three files of the `anthropic` adapter share.
 *
 * The adapter is split by direction: anthropic.c builds the Messages API
 * request from the client's Chat Completions body (and holds the ops table
 * row), anthropic_resp.c turns a whole Messages response or an error body
 * into OpenAI's shapes, anthropic_stream.c translates the SSE event stream
 * into chat.completion.chunk events as the bytes arrive. Nothing here is
 * visible outside src/provider/anthropic*.c.
 */
#ifndef SB_PROVIDER_ANTHROPIC_INT_H
#define SB_PROVIDER_ANTHROPIC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/provider.h"

#define SB_ANTH_MAX_DEPTH 64    /* JSON nesting we accept from upstream */
#define SB_ANTH_MAX_EXCERPT 200 /* bytes of an upstream message we quote */

/* NULL-tolerant tree walking: a missing step yields NULL, never a crash. */
static inline const struct sb_json *sb__anth_get(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static inline bool sb__anth_is_str(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

/* s, or "" when it has no bytes at all: the JSON writer must never see a NULL pointer. */
static inline struct sb_slice sb__anth_nz(struct sb_slice s)
{
    return s.p ? s : SB_SLICE("");
}

/* The decoded string at o[key], or "" (never a NULL pointer). */
static inline struct sb_slice sb__anth_str(const struct sb_json *o, const char *key)
{
    const struct sb_json *s = sb__anth_get(o, key);
    return sb__anth_is_str(s) ? sb__anth_nz(s->str) : SB_SLICE("");
}

/* Token counts of a Messages API `usage` object; -1 = not reported. */
struct sb__anth_usage {
    int64_t input;        /* input_tokens (uncached part of the prompt) */
    int64_t cache_read;   /* cache_read_input_tokens */
    int64_t cache_create; /* cache_creation_input_tokens */
    int64_t output;       /* output_tokens (includes thinking) */
    int64_t thinking;     /* output_tokens_details.thinking_tokens */
};

/* Sets every count to -1 (unknown). */
void sb__anth_usage_init(struct sb__anth_usage *u);
/* Overwrites the counts that u_json reports (message_delta carries cumulative values). */
void sb__anth_usage_read(struct sb__anth_usage *u, const struct sb_json *u_json);
/* The accounting view: prompt = input + cache read + cache creation; completion = output. */
struct sb_usage_counts sb__anth_usage_counts(const struct sb__anth_usage *u);
/* Writes OpenAI's usage object (the value only; the caller wrote the key). */
void sb__anth_usage_write(struct sb_jw *w, const struct sb__anth_usage *u);

/* OpenAI finish_reason for an Anthropic stop_reason ("stop" for unknown values). */
const char *sb__anth_finish_reason(struct sb_slice stop_reason);

/* The provider's id for messages. */
const char *sb__anth_pname(const struct sb_call *c);

/*
 * Copies s into dst (size n) as printable text for an error message: control
 * bytes become spaces, the cut falls on a UTF-8 boundary, and the provider's
 * API key is blanked wherever the upstream echoed it.
 */
void sb__anth_excerpt(const struct sb_call *c, char *dst, size_t n, struct sb_slice s);

/* Fills err from an Anthropic error object {"type","message"} (status 0 = inside a stream). */
void sb__anth_error(const struct sb_call *c, int status, const struct sb_json *error,
                    struct sb_slice raw, struct sb_error *err);

/* One thinking or redacted_thinking block in the thinking_blocks convention of DESIGN.md 6;
 * signature is unused for a redacted block, whose opaque data goes in text. */
void sb__anth_thinking_block(struct sb_jw *w, bool redacted, struct sb_slice text,
                             struct sb_slice signature);
/* "chatcmpl-" + the Anthropic message id, from the call's arena. */
struct sb_slice sb__anth_chat_id(const struct sb_call *c, struct sb_slice msg_id);

/* anthropic_resp.c */
sb_err sb__anth_parse_response(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                               struct sb_error *err);
void sb__anth_map_error(const struct sb_call *c, int status, struct sb_slice body,
                        struct sb_error *err);

/* anthropic_stream.c */
void *sb__anth_stream_open(const struct sb_call *c);
sb_err sb__anth_stream_feed(void *st, const char *p, size_t n, sb_event_fn fn, void *ud,
                            struct sb_error *err);
sb_err sb__anth_stream_finish(void *st, sb_event_fn fn, void *ud, struct sb_error *err);

#endif
