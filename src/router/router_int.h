/* SPDX-License-Identifier: MIT */
/*
 * router_int.h - what router.c and strategies.c share: a candidate and the
 * strategy ops table (STYLE.md practice 3: a const table per plug point).
 */
#ifndef SB_ROUTER_ROUTER_INT_H
#define SB_ROUTER_ROUTER_INT_H

#include "router/router.h"

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
