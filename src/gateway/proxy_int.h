/* SPDX-License-Identifier: MIT */
/*
 * proxy_int.h - one /v1 request's state, shared by the proxy's files
 * (src/gateway/ only): proxy.c runs the request, proxy_cache.c serves and
 * fills the response cache around it.
 */
#ifndef SB_GATEWAY_PROXY_INT_H
#define SB_GATEWAY_PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "gateway/front_door.h"
#include "gateway/gateway.h"
#include "provider/provider.h"
#include "registry/registry.h"
#include "router/cache.h"
#include "router/experiment.h"
#include "router/limits.h"
#include "router/router.h"
#include "upstream/client.h"

struct proxy_wait; /* proxy.c: a backoff timer, freed when libuv has closed it */

struct proxy {
    struct sb_http_req *req; /* the client request (owns this struct's arena) */
    struct sb_gw_worker *w;
    struct sb_registry *reg;      /* snapshot reference, released by the arena hook */
    struct sb_call call;          /* what the adapter sees */
    struct sb_client client;      /* who is calling (client_auth.c) */
    struct sb_ureq *ureq;         /* in flight, or NULL */
    int status;                   /* upstream HTTP status */
    struct sb_slice retry_after;  /* from the upstream, copied */
    bool streaming;               /* relaying SSE to the client */
    bool done;                    /* accounted: nothing more may happen */
    void *st;                     /* adapter stream state */
    struct sb_buf body;           /* non-streamed upstream body */
    struct sb_buf out;            /* SSE bytes of the current upstream read */
    struct sb_usage_counts usage; /* from the upstream, -1 when unknown */
    int64_t delta_chunks;         /* chunks relayed with a delta (cancel estimate) */
    bool saw_done;                /* [DONE] or a finish_reason arrived */
    bool sent_error;              /* an SSE error event was written */
    const char *err_code;         /* OpenAI error "code" when more precise than the table's */
    const char *adjusted;         /* the adapter's x-switchboard-adjusted value, or NULL */
    uint64_t ttft_ns;             /* first relayed byte, 0 if none */
    /* The client's wire format (front_door.h) */
    const struct sb_front_door *front; /* NULL: the OpenAI API */
    void *front_st;                    /* the front door's stream state */
    const char *client_model;          /* the model name the client sent (NUL-terminated) */
    const char *local_header;          /* set when the front door answered locally */
    /* Failover (router.h): the deployments to try, in order */
    struct sb_plan plan;                          /* targets; the current one is plan.t[attempt] */
    size_t attempt;                               /* index of the current target */
    int fallbacks;                                /* attempts that failed before the current one */
    const struct sb_route_entry *route;           /* when the client named a route */
    const struct sb_experiment_entry *experiment; /* when the client named an experiment */
    const char *variant;                          /* its variant, counted in results; or NULL */
    uint64_t attempt_ns;                          /* the current attempt's start */
    struct sb_error last;        /* the last failed attempt's error, for the client */
    const struct sb_route_entry *planned; /* what plan came from (a route, a model's
                                             fallbacks), re-planned for a retry round */
    int round;                            /* retry rounds begun (gateway.h sb_retry_opts) */
    struct proxy_wait *wait;              /* the backoff before the next round, or NULL */
    const struct sb_provider_key *key;    /* the pool key of this attempt, or NULL */
    int64_t prompt_est;                   /* prompt_tokens(): -1 until walked */
    bool limited;                         /* answered with our own limiter's 429 */
    bool lazy;                            /* call.json's strings keep escapes (parse_body) */
    struct sb_limits_ticket lim; /* rate-limit and budget reservations (limits.h) */
    /* The response cache (proxy_cache.c) */
    struct sb_cache_key ckey; /* the request's key, when its route caches */
    bool cache_on;            /* the route caches: answers say hit or miss */
    bool cache_hit;           /* answered from the cache: no upstream, no cost */
    struct sb_cache_acc *acc; /* a streamed miss being rebuilt for the cache */
    /* A large whole answer relayed as it arrives (proxy_relay.c) */
    enum { RELAY_NO, RELAY_MAYBE, RELAY_ON } relay; /* MAYBE: held so far; ON: relaying */
    long long relay_len;                            /* the upstream's Content-Length, or -1 */
};

/* The response headers (content type, x-switchboard-*, retry-after, cache); arena. */
const struct sb_http_header *sb__proxy_headers(struct proxy *x, const char *ctype, size_t *n);
/* Accounts the request once: usage row, log line, metrics, limits settled. */
void sb__proxy_account(struct proxy *x, int http_status, const char *status, sb_err code,
                       const char *why);
/* Wall-clock Unix ms. */
int64_t sb__wall_ms(void);

/* The conversation's hash (x-switchboard-conversation, else the body's
 * user), 0 when the request names none. */
uint64_t sb__proxy_conversation(const struct proxy *x);
/* The upstream's Retry-After in ms (whole seconds under a day), else 0. */
int64_t sb__proxy_retry_after_ms(const struct proxy *x);

/* ---- proxy_keys.c: provider key pools ---- */

/* Puts one of the provider's pool keys on x->call.provider (sticky per
 * conversation, by weight, among keys neither dead nor held); a provider
 * with one key or none is left as it is. SB_E_UNAVAILABLE when every key is
 * dead or held. */
sb_err sb__proxy_pick_key(struct proxy *x, struct sb_error *err);
/* The attempt with x->key ended with status: a 429 holds the key (its
 * Retry-After, else a minute), a 401/402/403 marks it dead. Returns true
 * when another key of the same provider can be tried now. */
bool sb__proxy_key_failed(struct proxy *x, int status, const struct sb_error *e);

/* SB_UREQ_PAUSE when the client's backlog is over the high-water mark (the
 * upstream transfer resumes once it drains), else 0: streams and relayed
 * answers alike. */
int sb__proxy_backpressure(struct proxy *x);
/* The current attempt ended (router.h sb_router_end); a no-op once reported. */
void sb__proxy_end_attempt(struct proxy *x, bool ok);

/* ---- proxy_relay.c: a large non-streamed answer relayed as it arrives ---- */

#define SB_RELAY_AFTER (64 * 1024) /* bytes of a 2xx answer held before relaying */

/* A 2xx whole answer is coming (length: its Content-Length, or -1): whether
 * it may be relayed is decided here (x->relay). */
void sb__proxy_relay_head(struct proxy *x, long long length);
/* Upstream bytes while x->relay is not RELAY_NO: 0, SB_UREQ_PAUSE, or -1 when
 * the held bytes would pass x->body's bound (the caller fails the request). */
int sb__proxy_relay_data(struct proxy *x, const char *p, size_t n);
/* The transfer of a relayed answer (x->relay == RELAY_ON) ended. */
void sb__proxy_relay_done(struct proxy *x, sb_err result, const struct sb_error *err);

/* ---- proxy_cache.c ---- */

/* A hit answered the client (true); else the key is kept for storing the answer. */
bool sb__proxy_cache_serve(struct proxy *x);
/* The whole answer (OpenAI chat.completion body) of a miss, to store. */
void sb__proxy_cache_whole(struct proxy *x, struct sb_slice body);
/* A stream of a miss begins / passes an event's data / ended cleanly. */
void sb__proxy_cache_stream_begin(struct proxy *x);
void sb__proxy_cache_event(struct proxy *x, struct sb_slice data);
void sb__proxy_cache_stream_end(struct proxy *x);

#endif
