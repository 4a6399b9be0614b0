/* SPDX-License-Identifier: MIT */
/*
 * experiment.c - variant assignment (experiment.h): a hash, not a table.
 *
 * Why a hash: a stored conversation -> variant map would need shared state
 * across workers and processes, eviction, and a write on the hot path; a
 * hash of (experiment id, conversation key) gives the same answer
 * everywhere for free. FNV-1a spreads the bytes and a splitmix64 finaliser
 * fixes FNV's weak low bits before the point is taken modulo the total
 * weight (bias below total / 2^64: nothing at these weights).
 */
#include "router/experiment.h"

#include <time.h>

static uint64_t fnv(uint64_t h, struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The variant whose interval of [0, total) holds point; weight 0 has none. */
static const struct sb_experiment_variant *pick(const struct sb_experiment_entry *x, uint64_t point)
{
    int64_t at = (int64_t)(point % (uint64_t)x->total_weight);
    for (size_t i = 0; i < x->nvariants; i++) {
        if (at < x->variants[i].weight)
            return &x->variants[i];
        at -= x->variants[i].weight;
    }
    return &x->variants[0]; /* unreachable while total_weight is the sum */
}

void sb_experiment_assign(const struct sb_experiment_entry *x, struct sb_slice conversation,
                          struct sb_slice user, uint64_t rnd, struct sb_experiment_choice *out)
{
    struct sb_slice key = conversation.len ? conversation : user;
    out->variant = &x->variants[0];
    out->counted = false;
    out->sticky = false;
    if (x->status != SB_EXPERIMENT_ACTIVE || x->total_weight <= 0)
        return;
    uint64_t point = rnd;
    if (key.len) {
        /* The id, a 0 byte no id contains, then the key: ("a", "bc") != ("ab", "c"). */
        uint64_t h = fnv(14695981039346656037ull, sb_slice_cstr(x->id));
        h = fnv(h, (struct sb_slice){"", 1});
        point = fnv(h, key);
        out->sticky = true;
    }
    out->variant = pick(x, mix(point));
    out->counted = true;
}

uint64_t sb_experiment_random(void)
{
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&state;
    }
    state += 0x9e3779b97f4a7c15ull;
    return mix(state);
}
