/* SPDX-License-Identifier: MIT */
/*
 * router_int.h - what router.c and strategies.c share: a candidate and the
 * strategy ops table (STYLE.md practice 3: a const table per plug point).
 */
#ifndef SB_ROUTER_ROUTER_INT_H
#define SB_ROUTER_ROUTER_INT_H

#include "router/router.h"

#include <pthread.h>

struct sb_buf;

/* One deployment's health, a provider's in-flight count ("provider <id>")
 * or a pool key's hold ("key <provider>#<label>"): ids with a space are
 * never model ids. */
struct health {
    char id[129]; /* "" = empty slot */
    double latency_ms, ttft_ms;
    int inflight;
    int failures;
    int64_t open_until; /* breaker open (a key: held) until this time (ms); 0 = closed */
    bool probing;       /* half-open: the one probe is out */
};

struct sb_router {
    pthread_mutex_t lock;
    struct health *h; /* capacity mask + 1 slots */
    size_t mask, n;
    int breaker_failures;
    int64_t cooldown_ms;
    /* Dead keys not yet stored (router_keys.c): a small ring, oldest dropped
     * when full (the key is refused again and queued again). */
    struct sb_router_dead_key *dead;
    size_t ndead;
};

/* The record of id, created on first sight; call under rt->lock. */
struct health *sb__router_get(struct sb_router *rt, const char *id);
/* Appends the key pool gauges; call under rt->lock (router_keys.c). */
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
