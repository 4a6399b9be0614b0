/* SPDX-License-Identifier: MIT */
/*
 * gateway.h - the data plane: /v1 endpoints over the registry snapshot.
 *
 * sb_gateway holds what every worker shares and nobody changes after start
 * (the usage writer, the admin token's hash, limits). Each worker loop has
 * an sb_gw_worker with its own upstream client. The proxy resolves the
 * model in the current snapshot, lets the provider adapter build the
 * upstream request, relays the answer (stream chunk by chunk) and submits
 * one usage record per request.
 */
#ifndef SB_GATEWAY_GATEWAY_H
#define SB_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <uv.h>

#include "crypto/keys.h"
#include "net/http.h"
#include "registry/registry.h"

struct sb_usage_writer;
struct sb_sessions;
struct sb_router;
struct sb_limits;
struct sb_cache;
struct sb_upstream;

/* Retries after every target of a plan failed (proxy.c; config `routing:`). */
struct sb_retry_opts {
    int rounds;                /* extra rounds over the plan; 0 = none */
    int64_t backoff_ms;        /* first wait; doubles each round, jittered to [b/2, b] */
    int64_t max_wait_ms;       /* a longer Retry-After is the client's to honour */
    int64_t deadline_ms;       /* no new attempt after this since the request arrived; 0 = 120 s */
};

struct sb_gateway {
    struct sb_usage_writer *usage; /* borrowed; may be NULL in tests */
    struct sb_sessions *sessions;  /* console sessions (sessions.h); borrowed, may be NULL */
    struct sb_router *router;      /* health state for routes and failover; may be NULL */
    struct sb_limits *limits;      /* rate limits and budgets (router/limits.h); may be NULL */
    struct sb_cache *cache;        /* the response cache (router/cache.h); may be NULL */
    size_t cache_max_entry;        /* the largest answer it stores (the stream rebuilder's bound) */
    struct sb_admin_hash admin;    /* the admin token's hash */
    bool has_admin;                /* false: every /v1 request is refused */
    size_t max_body_bytes;         /* client limit, reused for parsing */
    size_t max_upstream_bytes;     /* largest non-streamed upstream body we accept */
    struct sb_retry_opts retry;    /* appended (issue 7) */
    /* Appended for batch jobs (issue 7 part 10, batch/runner.h): set only on the gateway of
     * the private loopback listener the batch runner sends its lines to. That gateway
     * accepts the runner's token (its SHA-256 here) and nothing else, and serves each line
     * as the owner the runner names in x-switchboard-batch-owner (client_auth.c). */
    bool batch_only;
    struct sb_admin_hash batch_token;
};

struct sb_gw_worker {
    struct sb_gateway *gw;         /* shared, read-only */
    uv_loop_t *loop;               /* this worker's loop */
    struct sb_upstream *up;        /* this loop's upstream client */
    struct sb_registry_book *book; /* this loop's snapshot leases (registry.h); NULL: plain refs */
};

/* Who called /v1 (client_auth.c). */
enum sb_client_kind { SB_CLIENT_ADMIN, SB_CLIENT_KEY, SB_CLIENT_SESSION };

struct sb_client {
    enum sb_client_kind kind;
    const char *user;                /* username; NULL for the admin token or a user-less key */
    const struct sb_client_key *key; /* KEY: its scope; valid while the snapshot is held */
    char user_buf[72];               /* SESSION: the username, copied from the session table */
};

/*
 * Authenticates req against the snapshot reg (may be NULL: then only the
 * admin token passes). SB_OK and *out, or SB_E_UNAUTHORIZED (no, unknown or
 * expired credential) / SB_E_FORBIDDEN (a session write without its CSRF
 * token) with err's message fit for the client.
 */
sb_err sb_gateway_authenticate(const struct sb_gateway *gw, const struct sb_registry *reg,
                               const struct sb_http_req *req, struct sb_client *out,
                               struct sb_error *err);

/* Handlers for the /v1 endpoints; each answers req (now or later). */
void sb_gateway_chat(struct sb_http_req *req, struct sb_gw_worker *w);
void sb_gateway_embeddings(struct sb_http_req *req, struct sb_gw_worker *w);
void sb_gateway_models(struct sb_http_req *req, struct sb_gw_worker *w);
/* The Anthropic front doors (messages.c): POST /v1/messages and /v1/messages/count_tokens. */
void sb_gateway_messages(struct sb_http_req *req, struct sb_gw_worker *w);
void sb_gateway_count_tokens(struct sb_http_req *req, struct sb_gw_worker *w);

#endif
