/* SPDX-License-Identifier: MIT */
/*
 * provider.h - the provider adapter contract.
 *
 * One wire format = one file in src/provider/ exporting one
 * `const struct sb_provider_ops`, listed in the table of adapters.c. The
 * core never names a provider. Adapters are pure transformations of bytes:
 * they build the upstream request (URL, headers including auth, body), parse
 * a whole response, parse a stream incrementally into sb_events, and map
 * upstream errors. They never touch sockets, timers or the database.
 *
 * The event model is OpenAI-shaped because our main front door is the
 * OpenAI API: an event carries the chunk as OpenAI chat.completion.chunk JSON
 * (passed through untouched for openai-type upstreams, translated by other
 * adapters) plus the facts parsed out of it (text, tool-call delta, usage,
 * finish reason) so other front doors (Anthropic) and accounting need not
 * re-parse.
 */
#ifndef SB_PROVIDER_PROVIDER_H
#define SB_PROVIDER_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/slice.h"
#include "crypto/secret.h"

struct sb_provider_ops;

/* ---- registry entities (immutable once in a snapshot) ---- */

enum sb_auth_method {
    SB_AUTH_BEARER,  /* Authorization: Bearer KEY (openai and most) */
    SB_AUTH_API_KEY, /* a named header carries the key (azure api-key, anthropic x-api-key) */
    SB_AUTH_QUERY,   /* ?key=KEY (gemini) */
    SB_AUTH_SIGV4,   /* AWS Signature V4 over the final body (bedrock) */
    SB_AUTH_NONE,
};

struct sb_provider {
    const char *id;                    /* identifier, [a-z0-9-]+ */
    const char *type;                  /* wire format name, "openai" */
    const struct sb_provider_ops *ops; /* never NULL in a snapshot */
    const char *base_url;              /* no trailing slash */
    enum sb_auth_method auth;
    struct sb_secret *api_key; /* NULL when the provider needs none */
    struct sb_kv *headers;     /* extra headers sent upstream */
    size_t nheaders;
    long timeout_ms;         /* total request time; 0 = none */
    long connect_timeout_ms; /* 0 = 10 s */
    long idle_timeout_ms;    /* max upstream silence within a response; 0 = none */
    const char *api_version; /* azure */
    const char *region;      /* bedrock */
    struct sb_secret *aws_access_key_id, *aws_secret_access_key, *aws_session_token;
    long rpm, tpm; /* rate limits, 0 = none (enforced later) */
    bool enabled;
    bool is_system; /* came from the config file */
    /* Appended for the control plane (issue 5): users must bring their own key
     * (no fallback to api_key); the personal keys live in the registry. */
    bool personal_keys_required;
    enum sb_auth_method keyed_auth; /* how a key is sent when there is one (auth is NONE
                                       without a system key; a user's own key uses this) */
    long max_concurrency; /* appended (issue 7): requests in flight at once, 0 = no cap */
    int transport; /* appended (issue 9): enum sb_ureq_transport, 0 auto, 1 native, 2 curl */
    /* Appended (issue 7): the key pool, the primary key (label "") first when
     * there is one; api_key is that primary key (or the first key). */
    const struct sb_provider_key *keys;
    size_t nkeys;
};

/* One member of a provider's key pool (the snapshot's; state that changes
 * per request, a 429's cool-down, lives in the router). */
struct sb_provider_key {
    const char *label; /* "" = the primary key */
    struct sb_secret *secret;
    long weight;          /* >= 1: its share of the provider's traffic */
    char fingerprint[17]; /* sb_secret_fingerprint: names the key in dead_keys */
    const char *dead;     /* why an upstream refused it (401/402/403), or NULL = alive */
};

enum sb_capability {
    SB_CAP_STREAMING = 1u << 0,
    SB_CAP_TOOLS = 1u << 1,
    SB_CAP_VISION = 1u << 2,
    SB_CAP_JSON_MODE = 1u << 3,
    SB_CAP_EMBEDDINGS = 1u << 4,
    /* Appended (issue 6): the model declared its capabilities. Without this bit the
     * others are unknown and the proxy's capability checks refuse nothing. */
    SB_CAP_DECLARED = 1u << 5,
};

struct sb_route_entry; /* registry/registry.h */

struct sb_model {
    const char *id;                     /* what clients send */
    const struct sb_provider *provider; /* owner */
    const char *upstream_model;         /* what the upstream calls it */
    long context_length;
    long max_output_tokens;
    unsigned caps;                          /* enum sb_capability bits */
    double input_per_mtok, output_per_mtok; /* USD per million tokens */
    int fallback_priority;
    bool enabled;
    bool is_system;
    const char *owner; /* appended (issue 5): a personal model's user; NULL = global */
    /* Appended (issue 7): when the model has fallbacks, a route over [this
     * model, its fallbacks...] tried in that order; NULL = none. */
    const struct sb_route_entry *fallbacks;
};

/* ---- one call through an adapter ---- */

enum sb_op { SB_OP_CHAT, SB_OP_EMBEDDINGS };

struct sb_call {
    struct sb_arena *arena; /* the request's arena: all outputs come from it */
    enum sb_op op;
    const struct sb_provider *provider;
    const struct sb_model *model;
    struct sb_slice body;       /* the client's body, OpenAI format, borrowed */
    const struct sb_json *json; /* body parsed */
    bool stream;                /* client asked for a stream */
    bool client_wants_usage;    /* client set stream_options.include_usage */
    /* Appended (DESIGN.md §6): reasoning signatures in the body were issued by
     * another provider (this is a fallback to a different one): adapters leave
     * thinking blocks and thought signatures out instead of forwarding them. */
    bool foreign_signatures;
    /* Appended (issue 9): the caller takes the upstream body in pieces
     * (sb_upstream_req.parts), so a pass-through body whose model is rewritten
     * goes out as the client's own bytes around the new value, not a copy. */
    bool want_parts;
};

enum sb_stream_format {
    SB_STREAM_SSE,
    SB_STREAM_NDJSON,
    SB_STREAM_AWS_EVENTSTREAM,
};

struct sb_upstream_req {
    const char *method;    /* "POST" */
    const char *url;       /* full URL, arena */
    struct sb_kv *headers; /* arena; includes auth and content-type */
    size_t nheaders;
    struct sb_slice body; /* arena or borrowed from the call */
    /* Appended (issue 9): with c->want_parts, the body may come as these pieces
     * instead, written in order (nparts > 0, body empty; arena or borrowed from
     * the call). At most SB_UREQ_MAX_PARTS (upstream/client.h). */
    const struct sb_slice *parts;
    size_t nparts;
    /* Appended: request settings the adapter had to change (Anthropic thinking needs
     * temperature 1 and room in max_tokens), as "name=value,..." for the client's
     * x-switchboard-adjusted header; NULL when nothing was changed. Arena memory. */
    const char *adjusted;
};

struct sb_usage_counts {
    int64_t prompt_tokens;     /* -1 when unknown */
    int64_t completion_tokens; /* -1 when unknown */
};

/* Outcome of a whole (non-streamed) upstream response. */
struct sb_result {
    struct sb_slice body; /* response body for the client, OpenAI format */
    struct sb_usage_counts usage;
    struct sb_slice finish_reason; /* of the first choice, may be empty */
};

enum sb_event_kind {
    SB_EV_CHUNK, /* one chat.completion.chunk */
    SB_EV_DONE,  /* the upstream said the stream is complete */
    SB_EV_ERROR, /* the upstream sent an error inside the stream */
};

struct sb_event {
    enum sb_event_kind kind;
    struct sb_slice
        chunk;       /* CHUNK: OpenAI chunk JSON (no "data: " framing); valid during the callback */
    bool usage_only; /* CHUNK carries usage and no choices (the include_usage chunk) */
    bool has_usage;
    struct sb_usage_counts usage;
    struct sb_slice text;          /* content delta of choice 0, decoded; may be empty */
    struct sb_slice finish_reason; /* of choice 0, empty if none */
    struct sb_error error;         /* ERROR: what went wrong */
};

/* Called once per event; returning non-zero stops the feed (it returns that value). */
typedef int (*sb_event_fn)(void *ud, const struct sb_event *ev);

struct sb_provider_ops {
    const char *type;                    /* "openai" */
    enum sb_stream_format stream_format; /* how the upstream frames a stream */
    /* Path suffix appended to base_url for chat; informative, used by tests. */
    const char *chat_path;

    /* Builds the upstream request for c. All memory from c->arena. */
    sb_err (*build_request)(const struct sb_call *c, struct sb_upstream_req *out,
                            struct sb_error *err);
    /* A 2xx non-streamed body: produce the client's body and the usage. */
    sb_err (*parse_response)(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                             struct sb_error *err);
    /* Streaming: state from c->arena; feed any bytes as they arrive; finish at end of body. */
    void *(*stream_open)(const struct sb_call *c);
    sb_err (*stream_feed)(void *st, const char *p, size_t n, sb_event_fn fn, void *ud,
                          struct sb_error *err);
    /* SB_OK, or SB_E_UPSTREAM when the stream ended mid-event or without DONE/finish. */
    sb_err (*stream_finish)(void *st, sb_event_fn fn, void *ud, struct sb_error *err);
    /* A non-2xx response: fill err with the upstream's message and the status to give the client.
     */
    void (*map_error)(const struct sb_call *c, int status, struct sb_slice body,
                      struct sb_error *err);
    /* Appended for the connection test (api/probe.c): the path, relative to base_url, of
     * the upstream's documented model listing, fetched with GET and the headers (auth
     * included) of a chat request; NULL when the upstream has none beside base_url. Data,
     * not a function: the listing's answer shapes ({"data":[{"id"}]} or {"models":[{"name"}]})
     * are few and generic, so the tester reads them without knowing the type. */
    const char *models_path;
    /* Appended (issue 6, POST /v1/messages/count_tokens): the upstream's own token count for
     * an Anthropic Messages body (c->json, not translated; its model is the client's), whose
     * 2xx answer is {"input_tokens": N}. NULL when the upstream has no such endpoint: the
     * gateway then estimates. All memory from c->arena. */
    sb_err (*build_count_tokens)(const struct sb_call *c, struct sb_upstream_req *out,
                                 struct sb_error *err);
    /* Appended (issue 9): for an adapter whose 2xx answer goes to the client untouched
     * (parse_response hands back the body itself), the usage and finish reason from the
     * answer's last bytes (tail: its end, cut anywhere), so that a large answer is relayed
     * as it arrives instead of held whole. out->body stays empty. SB_E_UPSTREAM when the
     * tail does not end a JSON object. NULL: the adapter needs the whole body. */
    sb_err (*parse_tail)(const struct sb_call *c, struct sb_slice tail, struct sb_result *out,
                         struct sb_error *err);
};

/* The adapter for a wire format name, or NULL (adapters.c). */
const struct sb_provider_ops *sb_provider_ops_find(struct sb_slice type);
/* NULL-terminated list of every adapter, for docs and validation. */
extern const struct sb_provider_ops *const sb_provider_ops_all[];

#endif
