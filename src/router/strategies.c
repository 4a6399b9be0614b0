/* SPDX-License-Identifier: MIT */
/*
 * strategies.c - the routing strategies, one row each (DESIGN.md §1):
 *   priority       by fallback_priority, then the route's own order
 *   weighted       one target drawn by weight first (sticky per conversation),
 *                  then the rest by weight: the rest are the fallbacks
 *   least-latency  by the moving average of recent latency; unmeasured first
 *   least-busy     by requests in flight
 *   cost           by the request's estimated price (only fitting targets
 *                  reach a strategy at all)
 *   fallbacks      as listed: a model named directly, then its fallbacks
 *                  (the registry builds these; no route can name it)
 * Every order is stable on the route's target order, so ties are predictable.
 */
#include <stdint.h>
#include <string.h>

#include "router/router_int.h"

typedef int (*cmp_fn)(const struct sb__cand *a, const struct sb__cand *b);

/* Insertion sort: n <= SB_PLAN_MAX, and it is stable. */
static void sort(struct sb__cand *c, size_t n, cmp_fn cmp)
{
    for (size_t i = 1; i < n; i++) {
        struct sb__cand x = c[i];
        size_t j = i;
        while (j > 0 && cmp(&x, &c[j - 1]) < 0) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

static int by_pos(const struct sb__cand *a, const struct sb__cand *b)
{
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static int by_priority(const struct sb__cand *a, const struct sb__cand *b)
{
    int pa = a->m->fallback_priority, pb = b->m->fallback_priority;
    return pa != pb ? (pa > pb) - (pa < pb) : by_pos(a, b);
}

static int by_latency(const struct sb__cand *a, const struct sb__cand *b)
{
    if (a->latency_ms != b->latency_ms)
        return (a->latency_ms > b->latency_ms) - (a->latency_ms < b->latency_ms);
    return by_pos(a, b);
}

static int by_busy(const struct sb__cand *a, const struct sb__cand *b)
{
    return a->inflight != b->inflight ? (a->inflight > b->inflight) - (a->inflight < b->inflight)
                                      : by_pos(a, b);
}

static int by_cost(const struct sb__cand *a, const struct sb__cand *b)
{
    return a->cost != b->cost ? (a->cost > b->cost) - (a->cost < b->cost) : by_pos(a, b);
}

static int by_weight_desc(const struct sb__cand *a, const struct sb__cand *b)
{
    return a->weight != b->weight ? (a->weight < b->weight) - (a->weight > b->weight)
                                  : by_pos(a, b);
}

static void order_listed(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    sort(c, n, by_pos);
}

static void order_priority(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    sort(c, n, by_priority);
}

static void order_latency(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    sort(c, n, by_latency);
}

static void order_busy(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    sort(c, n, by_busy);
}

static void order_cost(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    sort(c, n, by_cost);
}

/* splitmix64: spreads a sticky value (a conversation hash) over [0, 2^64). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void order_weighted(struct sb__cand *c, size_t n, const struct sb_plan_req *q)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += c[i].weight;
    sort(c, n, by_weight_desc);
    if (total <= 0 || n < 2)
        return;
    static _Thread_local uint64_t draws; /* per thread: no shared state, no lock */
    uint64_t r = mix(q->sticky ? q->sticky : (uint64_t)(uintptr_t)&draws + ++draws * 0x2545f491ull);
    int64_t pick = (int64_t)(r % (uint64_t)total);
    size_t i = 0;
    while (pick >= c[i].weight) {
        pick -= c[i].weight;
        i++;
    }
    struct sb__cand first = c[i];
    for (; i > 0; i--)
        c[i] = c[i - 1];
    c[0] = first;
}

static const struct sb__strategy strategies[] = {
    {"priority", order_priority}, {"weighted", order_weighted}, {"least-latency", order_latency},
    {"least-busy", order_busy},   {"cost", order_cost},        {"fallbacks", order_listed},
};

const struct sb__strategy *sb__strategy_find(const char *name)
{
    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
        if (strcmp(strategies[i].name, name) == 0)
            return &strategies[i];
    return NULL;
}
