/* SPDX-License-Identifier: MIT */
/*
 * limits_mem.c - the in-process limiter state (limits_int.h): one record
 * per scope, each with its own lock, found through an index that readers
 * probe without a lock (core/idindex.h, as the router's health records).
 * Records are never removed (there is one per provider, key and user ever
 * limited) and never move, so only creating one (the first sight of a
 * scope) takes the index's mutex.
 *
 * A take locks its records (up to three) in address order, checks all,
 * applies all and unlocks: all-or-nothing as under one mutex, and two
 * requests sharing records take them in the same order, so neither waits
 * on the other forever. A give locks its records the same way, so a take
 * never sees a settle half done. Requests with disjoint scopes share no
 * written line; requests to one provider share its record, which a global
 * rpm/tpm needs by nature (DESIGN.md §7, "Many cores").
 *
 * GCRA, exactly. A limit of L per window W (60 s) has the emission interval
 * I = W/L ms, which is rarely a whole number; rounding it would admit L-1 or
 * L+1 a window. So each record keeps its theoretical arrival time as
 * tat_ms + frac/L (0 <= frac < L): time scaled by L is an integer. In those
 * "scaled units" one token costs exactly W, and the capacity is W*L. At now,
 *     used  = max(0, (tat_ms - now) * L + frac)
 *     admit iff used + cost*W <= W*L, then used += cost*W
 *     else  retry after ceil((used + cost*W - W*L) / L) ms
 * used drains by exactly L per ms, so the retry time is exact to the ms.
 * `used` does not depend on L, so an admin changing L keeps what was used.
 * Refunds never push used below 0: credit cannot outlive an empty bucket.
 *
 * Budgets: spent + reserved + cost <= budget in nano-dollars, per period;
 * a new period starts with spent 0 (reservations still in flight stay
 * reserved until they settle, into the period they were made in, as
 * usage_logs.ts is the request's start).
 *
 * The Redis seam. A Redis implementation of `take` would run one script,
 * with KEYS = one hash per scope and ARGV = now, then per scope rpm, tpm,
 * requests, tokens, budget, period start, cost (W = 60000):
 *
 *   -- pass 1: check every scope, change nothing
 *   for i, key in ipairs(KEYS) do
 *     local s = redis.call('HMGET', key, 'rt', 'rf', 'rl', 'tt', 'tf', 'tl',
 *                          'ps', 'sp', 'rs')
 *     for each of (rpm: rt rf rl, cost requests) and (tpm: tt tf tl, cost tokens):
 *       used = max(0, (tat - now) * L + frac)   -- rescaled as above if L changed
 *       if used + cost*W > W*L then return {i, kind, ceil((used + cost*W - W*L) / L)} end
 *     if budget > 0: spent = (ps == period) and sp or 0
 *       if spent + rs + c > budget then return {i, 'budget', period_end - now} end
 *   end
 *   -- pass 2: apply every scope (HSET the new tat/frac/limit, rs += cost,
 *   -- ps/sp rolled), PEXPIRE each key to its bucket's drain time + a day
 *   return 0
 *
 * Redis runs a script atomically, so all-or-nothing holds across instances;
 * numbers stay integers below 2^53 (Lua doubles) for L up to SB_LIMITS_MAX
 * over a minute's window. `give` is a second, simpler script (HINCRBY).
 */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/idindex.h"
#include "router/limits_int.h"

#define W ((int64_t)SB_LIMITS_WINDOW_MS)
#define TAKE_MAX 8 /* scopes in one take or give; limits.c asks at most 3 */

struct gcra {
    int64_t tat_ms; /* theoretical arrival time, whole ms ... */
    int64_t frac;   /* ... plus frac/limit ms */
    int64_t limit;  /* the L that frac is scaled by; 0 = never used */
};

/* Spend is kept for the day and the month at once, whatever the budget's
 * period: an admin may set or change a budget mid-period, and the spend
 * before that counts. */
struct period {
    int64_t start_ms;   /* the period spent belongs to */
    int64_t spent_nusd; /* settled */
};

struct budget {
    struct period p[2];    /* the day, the month: see period_of */
    int64_t reserved_nusd; /* in flight */
};

struct scope {
    /* Written by the requests of this scope, under lock: 96 bytes, two
     * cache lines. */
    atomic_int lock; /* see rec_lock; 0 (free) as the index zeroes a new record */
    struct gcra rpm, tpm;
    struct budget b;
    /* Read-only once published, on lines of its own: a probe for another
     * scope that passes this slot compares it without pulling the lines
     * above away from the cores writing them. */
    alignas(64) char id[SB_LIMITS_ID_MAX];
};

struct mem {
    struct sb_limits base; /* first: the plug point */
    struct sb_idindex *ix; /* the scopes by id; a new one is zeroed: empty buckets, no spend */
};

/* ---- GCRA in scaled units (see the file comment) ---- */

static int64_t g_used(const struct gcra *g, int64_t now)
{
    if (!g->limit || g->tat_ms < now)
        return 0;
    return (g->tat_ms - now) * g->limit + g->frac;
}

static void g_set(struct gcra *g, int64_t now, int64_t used, int64_t limit)
{
    g->limit = limit;
    if (used <= 0) {
        g->tat_ms = now;
        g->frac = 0;
        return;
    }
    g->tat_ms = now + used / limit;
    g->frac = used % limit;
}

/* ms until cost fits under limit (0 when it fits now); -1 when it never does. */
static int64_t g_wait(const struct gcra *g, int64_t limit, int64_t cost, int64_t now)
{
    if (cost > limit)
        return -1;
    int64_t over = g_used(g, now) + cost * W - W * limit;
    return over <= 0 ? 0 : (over + limit - 1) / limit;
}

static void g_take(struct gcra *g, int64_t limit, int64_t cost, int64_t now)
{
    g_set(g, now, g_used(g, now) + cost * W, limit);
}

/* Refund (tokens > 0) or charge (< 0) under the limit g was last used with. */
static void g_give(struct gcra *g, int64_t tokens, int64_t now)
{
    if (g->limit)
        g_set(g, now, g_used(g, now) - tokens * W, g->limit);
}

/* The record of id, made on first sight; no lock once it exists. */
static struct scope *get(struct mem *m, const char *id)
{
    return sb_idindex_get(m->ix, id, NULL, NULL);
}

/*
 * A record's lock spins rather than being a pthread mutex: a section is a
 * few dozen ns of arithmetic that never blocks, and glibc's mutex puts a
 * waiter to sleep in the kernel, which costs far more than the wait. Two
 * threads on one provider: 850-940 ns a request with mutexes, 490-540
 * spinning; 280-290 either way with nothing shared (bench/limits_bench.c).
 * A waiter yields while it spins, so a holder that was preempted gets a
 * core back.
 */
static void rec_lock(atomic_int *l)
{
    while (atomic_exchange_explicit(l, 1, memory_order_acquire))
        while (atomic_load_explicit(l, memory_order_relaxed))
            sched_yield();
}

static void rec_unlock(atomic_int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* Adds s to the set o[0..k), kept in address order, unless it is there
 * (the same record twice is locked once); returns the new k. */
static size_t add(struct scope **o, size_t k, struct scope *s)
{
    size_t j = k;
    while (j && (uintptr_t)o[j - 1] > (uintptr_t)s)
        j--;
    if (j && o[j - 1] == s)
        return k;
    memmove(&o[j + 1], &o[j], (k - j) * sizeof(*o));
    o[j] = s;
    return k + 1;
}

/* Every take and give locks its records in address order, so two of them
 * never wait on each other in a cycle. */
static void lock_all(struct scope *const *o, size_t k)
{
    for (size_t i = 0; i < k; i++)
        rec_lock(&o[i]->lock);
}

static void unlock_all(struct scope *const *o, size_t k)
{
    while (k)
        rec_unlock(&o[--k]->lock);
}

/* ---- budgets (under the record's lock) ---- */

/* The day's spend or the month's (SB_BUDGET_NONE: the month). */
static struct period *period_of(struct budget *b, enum sb_budget_period p)
{
    return &b->p[p == SB_BUDGET_DAY ? 0 : 1];
}

/* Period p of a budget, moved on to the period holding now when it started. */
static struct period *b_at(struct budget *b, enum sb_budget_period p, int64_t now)
{
    struct period *x = period_of(b, p);
    int64_t start = sb_limits_period_start(p, now);
    if (x->start_ms < start) {
        x->start_ms = start;
        x->spent_nusd = 0;
    }
    return x;
}

/* Adds spend to period p if it is still the one starting at start. */
static void b_spend(struct budget *b, enum sb_budget_period p, int64_t start, int64_t nusd)
{
    struct period *x = b_at(b, p, start);
    if (x->start_ms == start)
        x->spent_nusd += nusd;
}

/* ---- the ops ---- */

/* Whether kind's cost fits g under limit; v says why not. */
static bool g_fits(const struct gcra *g, int64_t limit, int64_t cost, int64_t now,
                   enum sb__lim_kind kind, struct sb__lim_verdict *v)
{
    if (!limit || !cost)
        return true;
    int64_t w = g_wait(g, limit, cost, now);
    if (w == 0)
        return true;
    *v = (struct sb__lim_verdict){0, kind, w < 0 ? 0 : w};
    return false;
}

/* Whether c fits s at now; v says why not. Changes nothing but the roll. */
static bool fits(struct scope *s, const struct sb__lim_check *c, int64_t now,
                 struct sb__lim_verdict *v)
{
    if (!g_fits(&s->rpm, c->rpm, c->requests, now, SB__LIM_RPM, v) ||
        !g_fits(&s->tpm, c->tpm, c->tokens, now, SB__LIM_TPM, v))
        return false;
    if (!c->budget_nusd || !c->cost_nusd)
        return true;
    if (b_at(&s->b, c->period, now)->spent_nusd + s->b.reserved_nusd + c->cost_nusd <=
        c->budget_nusd)
        return true;
    bool never = c->cost_nusd > c->budget_nusd;
    int64_t end = sb_limits_period_end(c->period, now);
    *v = (struct sb__lim_verdict){0, SB__LIM_BUDGET, never ? 0 : end - now};
    return false;
}

static void apply(struct scope *s, const struct sb__lim_check *c, int64_t now)
{
    if (c->rpm && c->requests)
        g_take(&s->rpm, c->rpm, c->requests, now);
    else if (c->rpm && s->rpm.limit != c->rpm)
        g_set(&s->rpm, now, g_used(&s->rpm, now), c->rpm); /* keep what was used */
    if (c->tpm && c->tokens)
        g_take(&s->tpm, c->tpm, c->tokens, now);
    else if (c->tpm && s->tpm.limit != c->tpm)
        g_set(&s->tpm, now, g_used(&s->tpm, now), c->tpm);
    if (c->budget_nusd && c->cost_nusd)
        s->b.reserved_nusd += c->cost_nusd;
}

static bool mem_take(struct sb_limits *l, const struct sb__lim_check *c, size_t n, int64_t now,
                     struct sb__lim_verdict *v)
{
    struct mem *m = (struct mem *)l;
    struct scope *s[TAKE_MAX], *o[TAKE_MAX];
    bool ok = true;
    if (n > TAKE_MAX)
        return false; /* never: limits.c asks at most 3 */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k = add(o, k, s[i] = get(m, c[i].id));
    lock_all(o, k);
    for (size_t i = 0; i < n && ok; i++)
        if (!fits(s[i], &c[i], now, v)) {
            v->index = i;
            ok = false;
        }
    for (size_t i = 0; i < n && ok; i++)
        apply(s[i], &c[i], now);
    unlock_all(o, k);
    return ok;
}

static void give_one(struct scope *s, const struct sb__lim_give *g, int64_t now)
{
    if (g->requests)
        g_give(&s->rpm, g->requests, now);
    if (g->tokens)
        g_give(&s->tpm, g->tokens, now);
    s->b.reserved_nusd -= g->release_nusd;
    if (s->b.reserved_nusd < 0)
        s->b.reserved_nusd = 0;
    if (g->spend_nusd && g->day_start_ms)
        b_spend(&s->b, SB_BUDGET_DAY, g->day_start_ms, g->spend_nusd);
    if (g->spend_nusd && g->month_start_ms)
        b_spend(&s->b, SB_BUDGET_MONTH, g->month_start_ms, g->spend_nusd);
}

static void mem_give(struct sb_limits *l, const struct sb__lim_give *g, size_t n, int64_t now)
{
    struct mem *m = (struct mem *)l;
    struct scope *s[TAKE_MAX], *o[TAKE_MAX];
    if (n > TAKE_MAX) {
        mem_give(l, g + TAKE_MAX, n - TAKE_MAX, now); /* never: limits.c gives at most 3 */
        n = TAKE_MAX;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k = add(o, k, s[i] = get(m, g[i].id));
    lock_all(o, k);
    for (size_t i = 0; i < n; i++)
        give_one(s[i], &g[i], now);
    unlock_all(o, k);
}

static void mem_seed(struct sb_limits *l, const char *id, enum sb_budget_period p, int64_t start,
                     int64_t spent)
{
    struct scope *s = get((struct mem *)l, id);
    rec_lock(&s->lock);
    struct period *x = b_at(&s->b, p, start);
    if (x->start_ms == start)
        x->spent_nusd = spent;
    rec_unlock(&s->lock);
}

static int64_t mem_spent(struct sb_limits *l, const char *id, enum sb_budget_period p,
                         int64_t start)
{
    struct scope *s = sb_idindex_find(((struct mem *)l)->ix, id);
    if (!s)
        return 0;
    rec_lock(&s->lock);
    struct period *x = period_of(&s->b, p);
    int64_t v = x->start_ms == start ? x->spent_nusd : 0;
    rec_unlock(&s->lock);
    return v;
}

static void mem_destroy(struct sb_limits *l)
{
    struct mem *m = (struct mem *)l;
    sb_idindex_free(m->ix);
    free(m);
}

static const struct sb_limits_ops mem_ops = {
    .name = "memory",
    .take = mem_take,
    .give = mem_give,
    .seed = mem_seed,
    .spent = mem_spent,
    .destroy = mem_destroy,
};

struct sb_limits *sb__limits_mem_create(void)
{
    struct mem *m = sb_xcalloc(1, sizeof(*m));
    m->base.ops = &mem_ops;
    m->ix = sb_idindex_create(sizeof(struct scope), alignof(struct scope),
                              offsetof(struct scope, id), sizeof(((struct scope *)0)->id));
    return &m->base;
}
