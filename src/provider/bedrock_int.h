/* SPDX-License-Identifier: MIT */
/*
 * bedrock_int.h - what the two halves of the `bedrock` adapter share.
 *
 * bedrock.c builds requests (Converse, ConverseStream, InvokeModel for
 * embeddings) and holds the ops table; bedrock_reply.c turns Bedrock's
 * answers (whole JSON, the binary event stream, errors) back into OpenAI
 * shapes. Nothing outside these two files includes this header.
 */
#ifndef SB_PROVIDER_BEDROCK_INT_H
#define SB_PROVIDER_BEDROCK_INT_H

#include "core/buf.h"
#include "core/json.h"
#include "provider/provider.h"

#define SB__BEDROCK_MAX_DEPTH 64 /* JSON nesting we accept from upstream */

/* NULL-tolerant tree walking: a missing step yields NULL, never a crash. */
static inline const struct sb_json *sb__bedrock_get(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static inline bool sb__bedrock_is(const struct sb_json *j, enum sb_json_type t)
{
    return j && j->type == t;
}

/* A buffer's bytes as a slice that is never NULL (an empty buffer has no memory yet). */
static inline struct sb_slice sb__bedrock_bytes(const struct sb_buf *b)
{
    return b->len ? sb_buf_slice(b) : SB_SLICE("");
}

/* Embedding model families on InvokeModel: their request and response bodies differ. */
enum sb__bedrock_embed { SB__BEDROCK_TITAN, SB__BEDROCK_COHERE };

/* The family of an upstream model id (Cohere ids contain "cohere.embed", the rest is Titan). */
enum sb__bedrock_embed sb__bedrock_embed_family(const struct sb_call *c);

/* The upstream model id (upstream_model, else the client-facing id). Borrows c. */
const char *sb__bedrock_model(const struct sb_call *c);

/* Shared by whole answers and streams (bedrock_reply.c). */
/* Writes "chatcmpl-" and 24 random hex digits (Converse answers carry no id) into out. */
void sb__bedrock_new_id(char out[40]);
/* OpenAI's finish_reason for a Bedrock stopReason (a static string; unknown ones are "stop"). */
const char *sb__bedrock_finish_reason(const struct sb_json *stop);
/* prompt/completion counts of a Bedrock usage object (-1 unknown); cache tokens join the prompt. */
struct sb_usage_counts sb__bedrock_usage_counts(const struct sb_json *usage);
/* Writes "usage": {...} in OpenAI's shape from a Bedrock usage object. Borrows both. */
void sb__bedrock_put_usage(struct sb_jw *w, const struct sb_json *usage);

/* Response half (bedrock_reply.c), wired into the ops table by bedrock.c. */
sb_err sb__bedrock_parse_response(const struct sb_call *c, struct sb_slice body,
                                  struct sb_result *out, struct sb_error *err);
void *sb__bedrock_stream_open(const struct sb_call *c);
sb_err sb__bedrock_stream_feed(void *st, const char *p, size_t n, sb_event_fn fn, void *ud,
                               struct sb_error *err);
sb_err sb__bedrock_stream_finish(void *st, sb_event_fn fn, void *ud, struct sb_error *err);
void sb__bedrock_map_error(const struct sb_call *c, int status, struct sb_slice body,
                           struct sb_error *err);

#endif
