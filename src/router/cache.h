/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the response cache (issue 7 part 9): exact match on the
 * normalised request, per tenant, with a TTL, in a size-bounded LRU.
 *
 * A route opts in (`cache: {ttl_s, shared, sampled}`, struct sb_route_cache).
 * The key is a SHA-256 over the route (id and targets), the tenant (unless an
 * admin marked the route's cache shared) and the canonical form of the
 * request body; the value is the whole non-streamed chat.completion body and
 * its usage. A streamed answer is stored after the fact from its chunks
 * (struct sb_cache_acc) and any entry can be replayed as a stream
 * (sb_cache_render_sse), so one entry serves both kinds of request.
 *
 * What is in the key, and why (sb_cache_key):
 *  - members sorted by name, insignificant whitespace removed, strings and
 *    numbers re-written in one form ("\u0041" is "A", 1.0 is 1), the last
 *    of duplicated members kept (what the upstream's parser keeps);
 *  - left out: `stream` and `stream_options` (transport: one entry serves
 *    both forms), `user` (the end user's id for the provider's abuse
 *    tracking; it does not change the answer, and isolation is the tenant's
 *    job, not this field's);
 *  - everything else stays, `model` included: a different max_tokens, tool
 *    list or temperature is a different request.
 * What is never cached: `n` > 1 (the entry holds one choice, and the client
 * asked for variety); requests that sample (temperature absent, which is 1
 * at every provider we serve, or > 0) unless the route sets `sampled: true`;
 * answers other than 2xx chat.completions whose every choice finished with
 * stop, length, tool_calls, function_call or content_filter.
 *
 * Threads: one cache serves every worker; its operations are thread-safe.
 * The in-memory backend holds one mutex per call, for a hash probe and a
 * copy of the entry into the caller's arena.
 */
#ifndef SB_ROUTER_CACHE_H
#define SB_ROUTER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/slice.h"
#include "registry/registry.h"

#define SB_CACHE_HEADER "x-switchboard-cache" /* value "hit" or "miss" */

/* ---- the key ---- */

struct sb_cache_key {
    bool cacheable;     /* false: neither look up nor store (why says which rule) */
    const char *why;    /* static text when !cacheable: "route has no cache", "n > 1", ... */
    uint8_t digest[32]; /* SHA-256 of route, tenant and canonical body */
    int64_t ttl_ms;     /* the route's TTL */
    bool stream;        /* the request asked for a stream (answer with sb_cache_render_sse) */
    bool include_usage; /* stream_options.include_usage was true */
};

/*
 * The tenant of a /v1 caller, into out[0..n): "key:<id>" for a virtual key,
 * "user:<name>" for a user without a key (a console session, a batch job
 * run as that user), "admin" for the admin token (both NULL; a tenant of
 * its own). Borrows k and user.
 */
void sb_cache_tenant(const struct sb_client_key *k, const char *user, char *out, size_t n);

/*
 * Builds the key of a chat-completions request body (borrowed) sent to route
 * (NULL: a model named directly, which has no cache) by tenant. Returns SB_OK
 * with out->cacheable saying whether to use the cache, or SB_E_BAD_JSON /
 * SB_E_TOO_LARGE (body deeper than 64 levels) with err filled; the proxy has
 * usually refused such a body before.
 */
sb_err sb_cache_key(const struct sb_route_entry *route, const char *tenant, struct sb_slice body,
                    struct sb_cache_key *out, struct sb_error *err);

/*
 * The canonical form of a JSON document (see above; stream, stream_options
 * and user are dropped from the top-level object only), appended to out.
 * Borrows json. Returns SB_OK, SB_E_BAD_JSON or SB_E_TOO_LARGE (out's bound,
 * or nesting beyond 64). Exposed for tests and the fuzz target.
 */
sb_err sb_cache_normalize(struct sb_slice json, struct sb_buf *out, struct sb_error *err);

/* ---- the plug point ---- */

/* What an entry holds besides the body. */
struct sb_cache_usage {
    int64_t prompt_tokens;     /* -1 when the answer had none */
    int64_t completion_tokens; /* -1 when the answer had none */
};

/* A hit, copied out of the cache: valid as long as the arena it was copied into. */
struct sb_cache_hit {
    struct sb_slice body; /* the stored chat.completion JSON */
    struct sb_cache_usage usage;
    int64_t age_ms; /* since it was stored */
};

struct sb_cache_stats {
    uint64_t hits, misses, stores, evictions, expired;
    size_t entries, bytes; /* now */
};

struct sb_cache;

/* A backend (STYLE.md practice 3). Every op must be thread-safe. A shared
 * backend (Redis) needs an asynchronous lookup on the event loop; it would add
 * that op here, and sb_cache_lookup keeps serving the in-memory one. */
struct sb_cache_ops {
    const char *name;
    /* true and *out (copied into a) when key is present and not expired at now_ms. */
    bool (*lookup)(struct sb_cache *c, const uint8_t key[32], int64_t now_ms, struct sb_arena *a,
                   struct sb_cache_hit *out);
    /* Stores a copy of body under key until now_ms + ttl_ms, replacing any entry;
     * false when the backend refuses it (larger than its max_entry_bytes). */
    bool (*store)(struct sb_cache *c, const uint8_t key[32], struct sb_slice body,
                  const struct sb_cache_usage *u, int64_t ttl_ms, int64_t now_ms);
    void (*stats)(struct sb_cache *c, struct sb_cache_stats *out);
    void (*destroy)(struct sb_cache *c);
};

/* The base every backend starts with. */
struct sb_cache {
    const struct sb_cache_ops *ops;
};

struct sb_cache_opts {
    size_t max_bytes;       /* bodies plus per-entry overhead; 0 = 64 MiB */
    size_t max_entries;     /* 0 = 65536 */
    size_t max_entry_bytes; /* a larger answer is not stored; 0 = max_bytes / 8 */
};

/* The in-memory LRU backend. Returns owned (free with sb_cache_free). */
struct sb_cache *sb_cache_memory_create(const struct sb_cache_opts *o);
/* Accepts NULL. */
void sb_cache_free(struct sb_cache *c);
/* The largest body the cache stores (the accumulator's bound). */
size_t sb_cache_max_entry(const struct sb_cache_opts *o);

/* ---- what the proxy calls ---- */

/*
 * A hit for key at now_ms (Unix ms) copied into a, or false (a miss; also
 * when !key->cacheable or c is NULL). Counts the hit or miss.
 */
bool sb_cache_lookup(struct sb_cache *c, const struct sb_cache_key *key, int64_t now_ms,
                     struct sb_arena *a, struct sb_cache_hit *out);

/*
 * Whether a finished answer may be stored: status 2xx, body a
 * chat.completion whose every choice finished normally (list above).
 * Fills *u from its usage when true. Borrows body.
 */
bool sb_cache_storable(int status, struct sb_slice body, struct sb_cache_usage *u);

/*
 * Stores body (borrowed; copied) under key when key->cacheable and
 * sb_cache_storable(status, body); returns whether it did.
 */
bool sb_cache_store(struct sb_cache *c, const struct sb_cache_key *key, int status,
                    struct sb_slice body, int64_t now_ms);

/* ---- streams (cache_stream.c) ---- */

/*
 * Renders a stored chat.completion (borrowed) as the chat.completion.chunk
 * SSE events OpenAI sends for it, appended to out: a role chunk, reasoning
 * and content in pieces of at most piece bytes (0 = 64; cut at UTF-8
 * boundaries), each tool call (id and name, then its arguments in pieces),
 * any other message members in one chunk, the finish chunk, a usage chunk
 * when include_usage (other chunks then carry "usage":null), and
 * "data: [DONE]". SB_E_BAD_JSON when body is not a chat.completion.
 */
sb_err sb_cache_render_sse(struct sb_slice body, bool include_usage, size_t piece,
                           struct sb_buf *out, struct sb_error *err);

/*
 * The accumulator: rebuilds a chat.completion from the SSE bytes of a
 * chat.completion.chunk stream as they pass to the client (any split), in
 * at most max_bytes (body and state; beyond that it gives up quietly).
 * Only choice 0 is kept; a stream with another choice, an error event or
 * no finish_reason gives nothing.
 */
struct sb_cache_acc;

/* Returns owned (free with sb_cache_acc_free). */
struct sb_cache_acc *sb_cache_acc_create(size_t max_bytes);
/* Accepts NULL. */
void sb_cache_acc_free(struct sb_cache_acc *acc);
/* Feeds bytes (borrowed) of the stream. Never fails: a bad stream only makes finish fail. */
void sb_cache_acc_feed(struct sb_cache_acc *acc, const char *p, size_t n);
/* Feeds one event's data (borrowed): a chunk's JSON, or "[DONE]". For a caller
 * that holds events rather than bytes (the proxy's sb_event.chunk). */
void sb_cache_acc_event(struct sb_cache_acc *acc, struct sb_slice data);
/*
 * The rebuilt chat.completion, appended to out (unbounded; at most about
 * max_bytes), or SB_E_UNPROCESSABLE with err saying why the stream cannot
 * be stored (the caller only skips the store).
 */
sb_err sb_cache_acc_finish(struct sb_cache_acc *acc, struct sb_buf *out, struct sb_error *err);

#endif
