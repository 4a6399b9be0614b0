/* SPDX-License-Identifier: MIT */
/*
 * gemini_int.h - what the two halves of the `gemini` adapter share.
 *
 * gemini.c builds requests (OpenAI chat or embeddings in, Gemini
 * generateContent / batchEmbedContents out) and holds the ops row;
 * gemini_resp.c translates answers back (whole bodies, SSE streams, error
 * bodies). Only those two files include this header.
 */
#ifndef SB_PROVIDER_GEMINI_INT_H
#define SB_PROVIDER_GEMINI_INT_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/slice.h"
#include "provider/provider.h"

#define SB_GEMINI_MAX_DEPTH 64 /* JSON nesting we accept from upstream */

/* NULL-tolerant tree walking: a missing step yields NULL, never a crash. */
static inline const struct sb_json *sb__gm_get(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static inline const struct sb_json *sb__gm_at(const struct sb_json *a, size_t i)
{
    return a && a->type == SB_JSON_ARRAY ? sb_json_at(a, i) : NULL;
}

static inline bool sb__gm_is_str(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

/* The provider's id for messages ("gemini" when unnamed); borrows c. */
static inline const char *sb__gm_name(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "gemini";
}

/* The model name as Gemini's URL wants it, without a leading "models/". */
const char *sb__gm_model(const struct sb_call *c);

/*
 * Writes v to w compactly (no insignificant whitespace), strings re-escaped
 * and numbers as their source text, so a value reads the same whether
 * Gemini pretty-printed it (whole bodies) or not (streams).
 */
void sb__gm_write_compact(struct sb_jw *w, const struct sb_json *v);

/* Parsed OpenAI-side answers (gemini_resp.c). */
sb_err sb__gm_parse_response(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                             struct sb_error *err);
void *sb__gm_stream_open(const struct sb_call *c);
sb_err sb__gm_stream_feed(void *st, const char *p, size_t n, sb_event_fn fn, void *ud,
                          struct sb_error *err);
sb_err sb__gm_stream_finish(void *st, sb_event_fn fn, void *ud, struct sb_error *err);
void sb__gm_map_error(const struct sb_call *c, int status, struct sb_slice body,
                      struct sb_error *err);

#endif
