/* SPDX-License-Identifier: MIT */
/*
 * limits_mem.c - the in-process limiter state (limits_int.h): one record
 * per scope in an open-addressing table under one mutex. Records are never
 * removed; there is one per provider, key and user ever limited.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/slice.h"
#include "router/limits_int.h"

#define W ((int64_t)SB_LIMITS_WINDOW_MS)

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
    struct period p[3];    /* [SB_BUDGET_DAY], [SB_BUDGET_MONTH]; [0] unused */
    int64_t reserved_nusd; /* in flight */
};

struct scope {
    char id[SB_LIMITS_ID_MAX]; /* "" = empty slot */
    struct gcra rpm, tpm;
    struct budget b;
};

struct mem {
    struct sb_limits base; /* first: the plug point */
    pthread_mutex_t lock;
    struct scope *s; /* mask + 1 slots */
    size_t mask, n;
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

/* ---- the scope table (under lock) ---- */

static size_t hash_id(const char *s)
{
    size_t h = 14695981039346656037ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static struct scope *slot(struct scope *t, size_t mask, const char *id)
{
    size_t i = hash_id(id) & mask;
    while (t[i].id[0] && strcmp(t[i].id, id) != 0)
        i = (i + 1) & mask;
    return &t[i];
}

static void grow(struct mem *m)
{
    size_t mask = m->mask * 2 + 1;
    struct scope *t = sb_xcalloc(mask + 1, sizeof(*t));
    for (size_t i = 0; i <= m->mask; i++)
        if (m->s[i].id[0])
            *slot(t, mask, m->s[i].id) = m->s[i];
    free(m->s);
    m->s = t;
    m->mask = mask;
}

/* The record of id, created when absent (empty buckets, no spend). */
static struct scope *get(struct mem *m, const char *id)
{
    struct scope *s = slot(m->s, m->mask, id);
    if (s->id[0])
        return s;
    if ((m->n + 1) * 2 > m->mask + 1) {
        grow(m);
        s = slot(m->s, m->mask, id);
    }
    memset(s, 0, sizeof(*s));
    sb_str_copy(s->id, sizeof(s->id), id);
    m->n++;
    return s;
}

/* Period p of a budget, moved on to the period holding now when it started. */
static struct period *b_at(struct budget *b, enum sb_budget_period p, int64_t now)
{
    struct period *x = &b->p[p == SB_BUDGET_DAY ? SB_BUDGET_DAY : SB_BUDGET_MONTH];
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
    struct scope *s[8];
    bool ok = true;
    if (n > 8)
        return false; /* never: limits.c asks at most 3 */
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n; i++)
        s[i] = get(m, c[i].id); /* all first: a grow moves records */
    for (size_t i = 0; i < n; i++)
        s[i] = slot(m->s, m->mask, c[i].id);
    for (size_t i = 0; i < n && ok; i++)
        if (!fits(s[i], &c[i], now, v)) {
            v->index = i;
            ok = false;
        }
    for (size_t i = 0; i < n && ok; i++)
        apply(s[i], &c[i], now);
    pthread_mutex_unlock(&m->lock);
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
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n; i++)
        give_one(get(m, g[i].id), &g[i], now);
    pthread_mutex_unlock(&m->lock);
}

static void mem_seed(struct sb_limits *l, const char *id, enum sb_budget_period p, int64_t start,
                     int64_t spent)
{
    struct mem *m = (struct mem *)l;
    pthread_mutex_lock(&m->lock);
    struct period *x = b_at(&get(m, id)->b, p, start);
    if (x->start_ms == start)
        x->spent_nusd = spent;
    pthread_mutex_unlock(&m->lock);
}

static int64_t mem_spent(struct sb_limits *l, const char *id, enum sb_budget_period p,
                         int64_t start)
{
    struct mem *m = (struct mem *)l;
    pthread_mutex_lock(&m->lock);
    struct scope *s = slot(m->s, m->mask, id);
    struct period *x = &s->b.p[p == SB_BUDGET_DAY ? SB_BUDGET_DAY : SB_BUDGET_MONTH];
    int64_t v = s->id[0] && x->start_ms == start ? x->spent_nusd : 0;
    pthread_mutex_unlock(&m->lock);
    return v;
}

static void mem_destroy(struct sb_limits *l)
{
    struct mem *m = (struct mem *)l;
    pthread_mutex_destroy(&m->lock);
    free(m->s);
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
    pthread_mutex_init(&m->lock, NULL);
    m->mask = 63;
    m->s = sb_xcalloc(m->mask + 1, sizeof(*m->s));
    return &m->base;
}
