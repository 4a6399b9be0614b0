/* SPDX-License-Identifier: MIT */
/*
 * oai_emit.h - OpenAI-shaped output for adapters that translate a native wire format.
 *
 * The cohere and ollama adapters read their provider's JSON and must hand
 * the client OpenAI Chat Completions (whole and as chat.completion.chunk
 * events) and OpenAI Embeddings. What that output looks like is the same
 * for every translating adapter, so it lives here once: the chunk writer
 * with its sb_event facts, the whole-response envelope, the embeddings
 * list (float or base64), request pieces shared by the translators (the
 * table of accepted top-level fields, n, stop, max tokens, the loop that
 * hands each message to the adapter's writer for its role) and the mapping
 * of an upstream error to an OpenAI error with a scrubbed excerpt.
 *
 * Like the adapters, nothing here does I/O or logs; memory comes from the
 * call's arena, except one reusable chunk buffer freed by an arena hook.
 */
#ifndef SB_PROVIDER_OAI_EMIT_H
#define SB_PROVIDER_OAI_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/provider.h"

#define SB_OAI_MAX_DEPTH 64 /* JSON nesting accepted from an upstream */
#define SB_OAI_EXCERPT 200  /* bytes of an upstream message quoted to the client */

/* NULL-tolerant tree walking: a missing step yields NULL, never a crash. */
static inline const struct sb_json *sb_oai_get(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static inline const struct sb_json *sb_oai_at(const struct sb_json *a, size_t i)
{
    return a && a->type == SB_JSON_ARRAY ? sb_json_at(a, i) : NULL;
}

static inline bool sb_oai_is_str(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

/* The provider's id for messages ("cohere" when the call names none). */
const char *sb_oai_pname(const struct sb_call *c, const char *type);

/* Parses an upstream body into a tree from a; NULL unless it is a JSON object. */
const struct sb_json *sb_oai_parse_object(struct sb_arena *a, struct sb_slice body);

/* ---- usage ---- */

struct sb_oai_usage {
    int64_t prompt;     /* -1 when unknown */
    int64_t completion; /* -1 when unknown */
    int64_t cached;     /* prompt_tokens_details.cached_tokens, -1 when not reported */
    int64_t reasoning;  /* completion_tokens_details.reasoning_tokens, -1 when not reported */
};

#define SB_OAI_USAGE_UNKNOWN ((struct sb_oai_usage){-1, -1, -1, -1})

/* A non-negative count from a JSON number (integral floats too: 12.0), else -1. */
int64_t sb_oai_count(const struct sb_json *n);
/* Writes the "usage" object (the key must already be written). */
void sb_oai_usage_write(struct sb_jw *w, const struct sb_oai_usage *u);

/* ---- streams ---- */

/* One tool call's delta: id and name on its first delta, argument fragments after. */
struct sb_oai_tool_delta {
    int index;            /* OpenAI tool_calls[].index */
    struct sb_slice id;   /* p == NULL: not sent */
    struct sb_slice name; /* p == NULL: not sent */
    struct sb_slice args; /* p == NULL: not sent */
};

/* What one chunk carries; a slice with p == NULL is left out. */
struct sb_oai_delta {
    struct sb_slice content;
    struct sb_slice reasoning;            /* delta.reasoning_content */
    const struct sb_oai_tool_delta *tool; /* NULL: none */
    const char *finish_reason;            /* NULL: null */
};

/* Starts a chat.completion.chunk in buf (reset): {"id","object","created","model",
 * "choices":[ and, when with_choice, {"index":0,"delta":{ -- the caller writes the
 * rest (the delta's members, or "]" and usage for a usage-only chunk). */
void sb_oai_chunk_open(struct sb_jw *w, struct sb_buf *buf, struct sb_slice id, int64_t created,
                       struct sb_slice model, bool with_choice);

/* The chunk writer of one stream; a value inside the adapter's arena-allocated state. */
struct sb_oai_stream {
    const struct sb_call *c;
    const char *id;    /* "chatcmpl-..." (arena) */
    int64_t created;   /* unix seconds */
    const char *model; /* the upstream model, as the chunk's "model" */
    struct sb_buf buf; /* the chunk being written, reused; freed by an arena hook */
    sb_event_fn fn;    /* of the current feed */
    void *ud;
    bool role_sent; /* the first chunk carried delta.role */
};

/* Prepares s for c (borrowed for the stream's life); id gets a random suffix. */
void sb_oai_stream_init(struct sb_oai_stream *s, const struct sb_call *c);
/* Replaces the random id by "chatcmpl-<upstream id>" (copied) when the upstream gave one. */
void sb_oai_stream_set_id(struct sb_oai_stream *s, struct sb_slice upstream_id);
/* Emits one chunk (the first also carries role "assistant"); returns the callback's value. */
int sb_oai_emit_delta(struct sb_oai_stream *s, const struct sb_oai_delta *d);
/* Emits the usage-only chunk (choices: []). */
int sb_oai_emit_usage(struct sb_oai_stream *s, const struct sb_oai_usage *u);
int sb_oai_emit_done(struct sb_oai_stream *s);
/* Emits SB_EV_ERROR with "upstream <id>: <msg>" (printable, key scrubbed); also fills err. */
int sb_oai_emit_error(struct sb_oai_stream *s, struct sb_slice msg, struct sb_error *err);

/* ---- whole responses ---- */

/* Writes {"id","object":"chat.completion","created","model","choices":[{"index":0,"message":
 * {"role":"assistant" and leaves w inside the message object. */
void sb_oai_completion_begin(struct sb_jw *w, const char *id, const char *model);
/* Closes the message, writes finish_reason and usage (u may be NULL), closes the body. */
void sb_oai_completion_end(struct sb_jw *w, const char *finish_reason,
                           const struct sb_oai_usage *u);
/* One element of message.tool_calls; args is JSON text already (a string's content). */
void sb_oai_tool_call_write(struct sb_jw *w, struct sb_slice id, struct sb_slice name,
                            struct sb_slice args);
/* "call_" + 24 random hex digits, from a. */
const char *sb_oai_new_call_id(struct sb_arena *a);
/* "chatcmpl-" + upstream id, or a random one when id is empty; from a. */
const char *sb_oai_completion_id(struct sb_arena *a, struct sb_slice upstream_id);
/* Copies w's buffer into c's arena as the result body and frees it. */
struct sb_slice sb_oai_finish_body(const struct sb_call *c, struct sb_buf *b);
/*
 * Fills out as a JSON POST to the provider's base_url + path: the body from b (copied into
 * c's arena; b is freed), Content-Type JSON, Accept stream_type when c streams and JSON
 * otherwise, then the provider's auth. Returns the auth's result.
 */
sb_err sb_oai_post_json(const struct sb_call *c, struct sb_buf *b, const char *path,
                        const char *stream_type, struct sb_upstream_req *out, struct sb_error *err);

/* ---- embeddings ---- */

/*
 * Writes OpenAI's embeddings list for vectors (an array of arrays of numbers,
 * borrowed): floats copied as the upstream wrote them, or base64 of float32
 * little-endian when the client asked encoding_format "base64". Returns
 * SB_OK and *out (arena), or SB_E_UPSTREAM naming what was malformed.
 */
sb_err sb_oai_embeddings(const struct sb_call *c, const char *type, const struct sb_json *vectors,
                         int64_t prompt_tokens, struct sb_slice *out, struct sb_error *err);
/* The client's embeddings input as a list of strings: fails with SB_E_BAD_REQUEST otherwise. */
sb_err sb_oai_embed_input(const struct sb_call *c, const char *type, const struct sb_json **input,
                          struct sb_error *err);

/* ---- requests ---- */

/* The OpenAI chat and embeddings members the translating adapters (Cohere, Ollama) carry over
 * or safely drop (user, store, metadata, stream_options); NULL-terminated, for
 * sb_oai_check_fields. */
extern const char *const sb_oai_chat_fields[];
extern const char *const sb_oai_embed_fields[];

/* Fails with SB_E_BAD_REQUEST naming the first top-level member of the client body that is
 * not in known (a NULL-terminated list), and when n is not 1. */
sb_err sb_oai_check_fields(const struct sb_call *c, const char *type, const char *const known[],
                           struct sb_error *err);
/* max_completion_tokens, else max_tokens: *out, or NULL when neither; 400 when not an integer. */
sb_err sb_oai_max_tokens(const struct sb_call *c, const char *type, const struct sb_json **out,
                         struct sb_error *err);
/* Writes "stop" (a string or an array of strings) as an array of strings; 400 otherwise. */
sb_err sb_oai_write_stop(struct sb_jw *w, const struct sb_json *stop, const char *type,
                         struct sb_error *err);
/* A number member copied as is, or 400 when present and not a number. */
sb_err sb_oai_copy_number(struct sb_jw *w, const char *to, const struct sb_json *from,
                          const char *type, const char *name, struct sb_error *err);

/* One row of an adapter's table of OpenAI message roles: the role's name and what fills one
 * such message's object (its members; the braces are written around it). write borrows ud (the
 * adapter's request state) and m, and fails through the err given to sb_oai_write_messages. */
struct sb_oai_role {
    const char *role; /* NULL ends the table */
    sb_err (*write)(void *ud, const struct sb_json *m, size_t i);
};

/* Writes "messages": an array with one object per client message (msgs), each filled by the
 * row of roles whose role it names. 400 when msgs is not a non-empty array, or for a message
 * whose role has no row (the message lists the table's roles and names type); a row's failure
 * is returned as it is. Either way w is left mid-array: the caller drops the body. */
sb_err sb_oai_write_messages(struct sb_jw *w, const struct sb_json *msgs,
                             const struct sb_oai_role roles[], void *ud, const char *type,
                             struct sb_error *err);

/* ---- errors ---- */

/* A message hint: when the upstream's message contains `contains` (ASCII case-insensitive) and
 * status matches (0 = any), the error gets code, http and api_code. */
struct sb_oai_hint {
    int status;
    const char *contains;
    sb_err code;
    int http;
    const char *api_code;
};

/*
 * Fills err for an upstream HTTP error: the code from the status (401, 403,
 * 404, 413, 422, 429, other 4xx as bad request, 5xx as the upstream's), then
 * the first matching hint; the message is "upstream <id>: <msg>", printable,
 * at most SB_OAI_EXCERPT bytes, with the provider's key blanked out.
 */
void sb_oai_map_status(const struct sb_call *c, const char *type, int status, struct sb_slice msg,
                       const struct sb_oai_hint *hints, struct sb_error *err);
/* Returns the top-level string member `member` of the JSON error body, or body itself when it
 * is not JSON or has no such string; valid as long as body (parsed in c's arena). */
struct sb_slice sb_oai_error_text(const struct sb_call *c, struct sb_slice body,
                                  const char *member);
/* Copies s into dst (size n) as printable text with c's key blanked out. */
void sb_oai_excerpt(const struct sb_call *c, char *dst, size_t n, struct sb_slice s);

#endif
