/* SPDX-License-Identifier: MIT */
/*
 * router_int.h - what router.c and strategies.c share: a candidate and the
 * strategy ops table (STYLE.md practice 3: a const table per plug point).
 */
#ifndef SB_ROUTER_ROUTER_INT_H
#define SB_ROUTER_ROUTER_INT_H

#include "router/router.h"

#include <pthread.h>
#include <stdatomic.h>

struct sb_buf;
struct sb_idindex;

/* One deployment's health, a provider's in-flight count ("provider <id>",
 * kept only for providers with a max_concurrency) or a pool key's hold
 * ("key <provider>#<label>"): ids with a space are never model ids.
 *
 * A record never moves and is never freed before the router: a reader that
 * found it may keep the pointer. Each field is atomic on its own (relaxed:
 * no reader needs one field ordered against another), and the hot ones
 * share the record's first cache line, which no other record shares, so
 * requests to different deployments never write the same line. */
struct health {
    _Alignas(64) atomic_int inflight; /* attempts in flight; a provider's: only if capped */
    atomic_int failures;              /* consecutive */
    _Atomic int64_t open_until;       /* breaker open (a key: held) until then (ms); 0 = closed */
    _Atomic double latency_ms;        /* moving averages; 0 = no sample */
    _Atomic double ttft_ms;
    atomic_bool probing;       /* half-open: the one probe is out */
    _Alignas(64) char id[129]; /* own lines: lookups never read the hot one; never changed */
    char provider[65];         /* a deployment's provider when first seen ("" for other records) */
};

struct sb_router {
    struct sb_idindex *ix; /* the records by id: probed without a lock (core/idindex.h) */
    pthread_mutex_t lock;  /* the dead-key ring; nothing else */
    int breaker_failures;
    int64_t cooldown_ms;
    /* Dead keys not yet stored (router_keys.c): a small ring, oldest dropped
     * when full (the key is refused again and queued again). */
    struct sb_router_dead_key *dead;
    size_t ndead;
};

/* The record of id, created on first sight (provider: a deployment's, else
 * NULL). Lock-free once the record exists; any thread. */
struct health *sb__router_get(struct sb_router *rt, const char *id, const char *provider);
/* The record of id, or NULL (never creates; any thread). */
struct health *sb__router_find(struct sb_router *rt, const char *id);
/* Appends the key pool gauges; any thread, no lock (router_keys.c). */
void sb__router_render_keys(struct sb_router *rt, struct sb_buf *out, int64_t now_ms);

struct sb__cand {
    const struct sb_model *m;
    size_t pos;        /* position in the route's target list */
    int64_t weight;    /* weighted: the route's weight (>= 0) */
    double latency_ms; /* least-latency: moving average, 0 = unknown (tried first, to learn) */
    int inflight;      /* least-busy */
    double cost;       /* cost: estimated USD for this request */
};

struct sb__strategy {
    const char *name;
    /* Orders c[0..n) in place, best first. */
    void (*order)(struct sb__cand *c, size_t n, const struct sb_plan_req *q);
};

/* The strategy called name, or NULL (strategies.c). */
const struct sb__strategy *sb__strategy_find(const char *name);

#endif
