/* SPDX-License-Identifier: MIT */
/*
 * router.h - which deployments a request tries, and in what order.
 *
 * A route names several models (deployments: one provider + one upstream
 * model each) and a strategy; a plan is the route's targets that can serve
 * this request, ordered by the strategy, with the deployments whose circuit
 * breaker is open left out. The proxy tries them in order until one
 * answers (failover), reporting each attempt back so latency, load and the
 * breakers stay current.
 *
 * Health state lives here, outside the immutable snapshot: it changes with
 * every request, survives registry reloads (keyed by model id), and is
 * shared by all workers without a lock on the request path: a request
 * writes only the record of the deployment it tries (router.c).
 */
#ifndef SB_ROUTER_ROUTER_H
#define SB_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/registry.h"

struct sb_router;

struct sb_router_opts {
    int breaker_failures;        /* consecutive failures that open a breaker; 0 = 5 */
    int64_t breaker_cooldown_ms; /* how long it stays open before one probe; 0 = 30000 */
};

/* Returns owned (free with sb_router_free). Thread-safe from then on. */
struct sb_router *sb_router_create(const struct sb_router_opts *o);
/* Accepts NULL. */
void sb_router_free(struct sb_router *rt);

#define SB_PLAN_MAX 16

/* What the request needs, for strategies that choose by fit and price. */
struct sb_plan_req {
    int64_t prompt_tokens; /* estimate; 0 = unknown */
    int64_t max_tokens;    /* requested output; 0 = unknown */
    unsigned caps;         /* SB_CAP_* bits the request needs */
    uint64_t sticky;       /* weighted: the same value picks the same first target; 0 = random */
    const char *user;      /* targets must be visible to this user (NULL: all) */
    int64_t now_ms;        /* clock for the breakers */
};

struct sb_plan {
    const struct sb_model *t[SB_PLAN_MAX]; /* in the order to try */
    size_t n;
    size_t open;  /* targets left out because their breaker is open */
    size_t unfit; /* targets left out: unknown, invisible, lacking a capability or context */
};

/* Fills out for route re in snapshot reg (held by the caller). */
void sb_router_plan(struct sb_router *rt, const struct sb_registry *reg,
                    const struct sb_route_entry *re, const struct sb_plan_req *q,
                    struct sb_plan *out);

/* An attempt on m begins (in-flight count; claims a half-open breaker's probe).
 * false, and nothing counted, when m's provider already has its
 * max_concurrency requests in flight (checked and counted by one
 * compare-and-swap). End it with sb_router_end and the same model pointer
 * (the same snapshot: whether the provider is capped must not change). */
bool sb_router_begin(struct sb_router *rt, const struct sb_model *m, int64_t now_ms);
/* It ended: ok or a failure that counts against the deployment (connect
 * error, timeout, 429, 5xx), with its latency and time to first token (< 0 =
 * none: a pool key's refusal is no sample of the deployment). hold_ms > 0 (an upstream's
 * Retry-After) keeps traffic away from the deployment that long, as an open breaker does. */
void sb_router_end(struct sb_router *rt, const struct sb_model *m, bool ok, double latency_ms,
                   double ttft_ms, int64_t hold_ms, int64_t now_ms);

/* A deployment's state, for /metrics and tests. */
enum sb_breaker { SB_BREAKER_CLOSED, SB_BREAKER_OPEN, SB_BREAKER_HALF_OPEN };
struct sb_router_health {
    double latency_ms, ttft_ms; /* moving averages; 0 = no sample yet */
    int inflight;
    int failures; /* consecutive */
    enum sb_breaker breaker;
};
/* false when the router has never seen model_id. */
bool sb_router_health(struct sb_router *rt, const char *model_id, int64_t now_ms,
                      struct sb_router_health *out);

/* ---- key pools (router_keys.c) ----
 * A pool key that answered 429 is held (no traffic) until its Retry-After;
 * one refused for good (401/402/403) is held a while and queued for the
 * control plane, which stores it in dead_keys: from the next snapshot on
 * it is dead (struct sb_provider_key.dead) in every process. */

/* ok[i] = whether p->keys[i] may be used now (alive in the snapshot, not held). */
void sb_router_keys_usable(struct sb_router *rt, const struct sb_provider *p, int64_t now_ms,
                           bool *ok);
/* Holds key k of p until until_ms (a 429's Retry-After). */
void sb_router_key_hold(struct sb_router *rt, const struct sb_provider *p,
                        const struct sb_provider_key *k, int64_t until_ms);

struct sb_router_dead_key {
    char provider[65];
    char label[33];
    char fingerprint[17];
    char reason[96]; /* "401 invalid_api_key": status and the upstream's code, never its text */
    int64_t at;      /* Unix ms */
};
/* Key k of p was refused: held for hold_ms (until the snapshot says dead) and queued. */
void sb_router_key_dead(struct sb_router *rt, const struct sb_provider *p,
                        const struct sb_provider_key *k, const char *reason, int64_t hold_ms,
                        int64_t now_ms);
/* An admin revived key label ("" = primary) of provider: its hold ends now. */
void sb_router_key_release(struct sb_router *rt, const char *provider, const char *label);
/* Moves up to max queued dead keys into out (oldest first); returns how many. */
size_t sb_router_take_dead(struct sb_router *rt, struct sb_router_dead_key *out, size_t max);

/* Appends Prometheus lines for every deployment seen: breaker state (0 closed,
 * 1 open, 2 half-open), requests in flight, moving-average latency and TTFT. */
struct sb_buf;
void sb_router_render_metrics(struct sb_router *rt, struct sb_buf *out, int64_t now_ms);

#endif
