/* SPDX-License-Identifier: MIT */
/*
 * limits.c - what a request asks of each scope (limits.h), the 429s that
 * refuse it, and the UTC periods of budgets. The state and its arithmetic
 * live behind the ops table (limits_int.h, limits_mem.c); this file only
 * turns a request into checks and a ticket into gives.
 *
 * A key or user scope is held for every request that has one, limits or
 * not, so that its spend is tracked from the first request: a budget set
 * mid-period then counts what was spent before it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/slice.h"
#include "router/limits_int.h"
#include "store/quota.h"

#define DAY_MS 86400000LL

struct sb_limits *sb_limits_create(void)
{
    return sb__limits_mem_create();
}

void sb_limits_free(struct sb_limits *l)
{
    if (l)
        l->ops->destroy(l);
}

/* ======================================================================
 * Periods (UTC, proleptic Gregorian; days_from_civil after H. Hinnant)
 * ==================================================================== */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t sb_limits_period_start(enum sb_budget_period p, int64_t now_ms)
{
    int64_t day = floor_div(now_ms, DAY_MS), y, m;
    if (p == SB_BUDGET_DAY)
        return day * DAY_MS;
    civil_from_days(day, &y, &m);
    return days_from_civil(y, m, 1) * DAY_MS;
}

int64_t sb_limits_period_end(enum sb_budget_period p, int64_t now_ms)
{
    int64_t day = floor_div(now_ms, DAY_MS), y, m;
    if (p == SB_BUDGET_DAY)
        return (day + 1) * DAY_MS;
    civil_from_days(day, &y, &m);
    return days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * DAY_MS;
}

static const char *const period_names[] = {"", "day", "month"};

const char *sb_limits_period_name(enum sb_budget_period p)
{
    return p <= SB_BUDGET_MONTH ? period_names[p] : "";
}

bool sb_limits_period_parse(const char *s, enum sb_budget_period *out)
{
    for (int p = SB_BUDGET_DAY; s && p <= SB_BUDGET_MONTH; p++)
        if (strcmp(s, period_names[p]) == 0) {
            *out = (enum sb_budget_period)p;
            return true;
        }
    return false;
}

/* ======================================================================
 * Requests into checks
 * ==================================================================== */

static int64_t nusd(double usd)
{
    return usd > 0 && isfinite(usd) ? llround(usd * 1e9) : 0;
}

/* The tokens a request reserves and their maximum cost at model's prices. */
struct demand {
    int64_t tokens;
    int64_t cost_nusd;
};

static struct demand demand_of(const struct sb_limits_req *q)
{
    const struct sb_model *m = q->model;
    int64_t in = q->prompt_tokens > 0 ? q->prompt_tokens : 0;
    int64_t out = q->max_tokens > 0 ? q->max_tokens : SB_LIMITS_DEFAULT_OUTPUT;
    if (q->max_tokens <= 0 && m->max_output_tokens > 0 && m->max_output_tokens < out)
        out = m->max_output_tokens;
    if (q->no_output)
        out = 0;
    /* USD per Mtok * 1e9 / 1e6 = nano-USD per token * 1000 */
    double c = ((double)in * m->input_per_mtok + (double)out * m->output_per_mtok) * 1000.0;
    return (struct demand){in + out, c > 0 && isfinite(c) ? llround(c) : 0};
}

static void hold_id(struct sb_limits_hold *h, char kind, const char *id)
{
    char prefix[3] = {kind, ':', '\0'};
    sb_str_join(h->id, sizeof(h->id), prefix, id);
}

/* The provider's check (rpm/tpm from the snapshot); false when it has none. */
static bool provider_check(const struct sb_limits_req *q, int64_t tokens, struct sb_limits_hold *h,
                           struct sb__lim_check *c)
{
    const struct sb_provider *p = q->model->provider;
    memset(h, 0, sizeof(*h));
    if (!p || (p->rpm <= 0 && p->tpm <= 0))
        return false;
    hold_id(h, 'p', p->id);
    h->tpm = p->tpm > 0;
    *c = (struct sb__lim_check){.id = h->id,
                                .rpm = p->rpm > 0 ? p->rpm : 0,
                                .tpm = p->tpm > 0 ? p->tpm : 0,
                                .requests = 1,
                                .tokens = tokens};
    return true;
}

/* A key's or user's check from an admin's limits (lim NULL: none, spend only). */
static void client_check(const struct sb_client_limits *lim, const struct demand *d,
                         struct sb_limits_hold *h, struct sb__lim_check *c)
{
    int64_t budget = lim && lim->period != SB_BUDGET_NONE ? nusd(lim->budget_usd) : 0;
    h->tpm = lim && lim->tpm > 0;
    h->budget = budget > 0;
    *c = (struct sb__lim_check){.id = h->id,
                                .rpm = lim && lim->rpm > 0 ? lim->rpm : 0,
                                .tpm = h->tpm ? lim->tpm : 0,
                                .requests = 1,
                                .tokens = d->tokens,
                                .budget_nusd = budget,
                                .period = budget ? lim->period : SB_BUDGET_NONE,
                                .cost_nusd = d->cost_nusd};
}

/* Fills c[] and t's holds from q; returns how many checks (<= 3). c[i]
 * corresponds to scope[i]. */
static size_t build_checks(const struct sb_limits_req *q, const struct demand *d,
                           struct sb_limits_ticket *t, struct sb__lim_check *c,
                           enum sb_limits_scope *scope)
{
    size_t n = 0;
    if (provider_check(q, d->tokens, &t->hold[0], &c[n]))
        scope[n++] = SB_LIMITS_PROVIDER;
    memset(&t->hold[1], 0, 2 * sizeof(t->hold[1]));
    if (q->key) {
        hold_id(&t->hold[1], 'k', q->key->id);
        client_check(&q->key->limits, d, &t->hold[1], &c[n]);
        scope[n++] = SB_LIMITS_KEY;
    }
    if (q->user) {
        hold_id(&t->hold[2], 'u', q->user);
        client_check(q->user_limits, d, &t->hold[2], &c[n]);
        scope[n++] = SB_LIMITS_USER;
    }
    return n;
}

/* ======================================================================
 * Refusals: OpenAI's 429 shape, a message that names the scope
 * ==================================================================== */

static const char *const scope_names[] = {"", "provider", "virtual key", "user"};

static sb_err refuse(const struct sb__lim_check *c, enum sb_limits_scope scope,
                     const struct sb__lim_verdict *v, struct sb_limits_ticket *t,
                     struct sb_error *err)
{
    const char *who = scope_names[scope], *name = c->id + 2;
    t->refused = scope;
    t->retry_after_ms = v->retry_ms;
    t->refused_kind = v->kind == SB__LIM_BUDGET ? SB_LIMITS_BUDGET
                      : v->kind == SB__LIM_RPM  ? SB_LIMITS_REQUESTS
                                                : SB_LIMITS_TOKENS;
    t->refused_limit = v->kind == SB__LIM_RPM ? c->rpm : v->kind == SB__LIM_TPM ? c->tpm : 0;
    if (v->kind == SB__LIM_BUDGET) {
        sb_fail(err, SB_E_RATE_LIMITED,
                "%s %s: budget of $%.2f per %s reached (budget exceeded); it renews at the "
                "start of the next UTC %s",
                who, name, (double)c->budget_nusd / 1e9, sb_limits_period_name(c->period),
                sb_limits_period_name(c->period));
        snprintf(err->api_code, sizeof(err->api_code), "insufficient_quota");
    } else if (v->retry_ms == 0) {
        sb_fail(err, SB_E_RATE_LIMITED,
                "%s %s: request too large: it needs %lld tokens, the limit is %lld tokens per "
                "minute",
                who, name, (long long)c->tokens, (long long)c->tpm);
        snprintf(err->api_code, sizeof(err->api_code), "rate_limit_exceeded");
    } else {
        bool rpm = v->kind == SB__LIM_RPM;
        sb_fail(err, SB_E_RATE_LIMITED, "%s %s: %lld %s per minute; retry in %.3f s", who, name,
                (long long)(rpm ? c->rpm : c->tpm), rpm ? "requests" : "tokens",
                (double)v->retry_ms / 1e3);
        snprintf(err->api_code, sizeof(err->api_code), "rate_limit_exceeded");
    }
    err->http_status = 429;
    return err->code;
}

/* ======================================================================
 * The hook: reserve, retarget, settle, cancel
 * ==================================================================== */

sb_err sb_limits_reserve(struct sb_limits *l, const struct sb_limits_req *q,
                         struct sb_limits_ticket *t, struct sb_error *err)
{
    struct sb__lim_check c[3];
    enum sb_limits_scope scope[3];
    struct sb__lim_verdict v;
    struct demand d = demand_of(q);
    memset(t, 0, sizeof(*t));
    size_t n = build_checks(q, &d, t, c, scope);
    if (n && !l->ops->take(l, c, n, q->now_ms, &v)) {
        struct sb_limits_ticket why;
        sb_err rc = refuse(&c[v.index], scope[v.index], &v, &why, err);
        memset(t, 0, sizeof(*t));
        t->refused = why.refused;
        t->retry_after_ms = why.retry_after_ms;
        t->refused_kind = why.refused_kind;
        t->refused_limit = why.refused_limit;
        return rc;
    }
    t->held = n > 0;
    t->tokens = d.tokens;
    t->cost_nusd = d.cost_nusd;
    t->day_start_ms = sb_limits_period_start(SB_BUDGET_DAY, q->now_ms);
    t->month_start_ms = sb_limits_period_start(SB_BUDGET_MONTH, q->now_ms);
    return SB_OK;
}

/* Gives t's provider its tokens back (its request stays counted) and drops the hold. */
static void release_provider(struct sb_limits *l, struct sb_limits_ticket *t, int64_t now)
{
    if (t->hold[0].id[0] && t->hold[0].tpm) {
        struct sb__lim_give g = {.id = t->hold[0].id, .tokens = t->tokens};
        l->ops->give(l, &g, 1, now);
    }
    memset(&t->hold[0], 0, sizeof(t->hold[0]));
}

/* Key and user ask only for the budget difference of the new model (>= 0). */
static void retarget_checks(const struct sb_limits_req *q, struct sb_limits_ticket *t, int64_t more,
                            struct sb__lim_check *c, enum sb_limits_scope *scope, size_t *n)
{
    const struct sb_client_limits *lim[3] = {NULL, q->key ? &q->key->limits : NULL, q->user_limits};
    for (size_t i = 1; i < 3; i++) {
        if (!t->hold[i].id[0] || !t->hold[i].budget || !lim[i])
            continue;
        c[*n] = (struct sb__lim_check){.id = t->hold[i].id,
                                       .budget_nusd = nusd(lim[i]->budget_usd),
                                       .period = lim[i]->period,
                                       .cost_nusd = more};
        scope[(*n)++] = i == 1 ? SB_LIMITS_KEY : SB_LIMITS_USER;
    }
}

sb_err sb_limits_retarget(struct sb_limits *l, const struct sb_limits_req *q,
                          struct sb_limits_ticket *t, struct sb_error *err)
{
    struct sb__lim_check c[3];
    enum sb_limits_scope scope[3];
    struct sb__lim_verdict v;
    size_t n = 0;
    release_provider(l, t, q->now_ms);
    int64_t cost = demand_of(q).cost_nusd, more = cost - t->cost_nusd;
    struct sb_limits_hold ph;
    if (provider_check(q, t->tokens, &ph, &c[n]))
        scope[n++] = SB_LIMITS_PROVIDER;
    retarget_checks(q, t, more > 0 ? more : 0, c, scope, &n);
    t->refused = SB_LIMITS_NONE;
    if (n && !l->ops->take(l, c, n, q->now_ms, &v))
        return refuse(&c[v.index], scope[v.index], &v, t, err);
    for (size_t i = 1; more < 0 && i < 3; i++)
        if (t->hold[i].id[0] && t->hold[i].budget) {
            struct sb__lim_give g = {.id = t->hold[i].id, .release_nusd = -more};
            l->ops->give(l, &g, 1, q->now_ms);
        }
    t->hold[0] = ph;
    t->cost_nusd = cost;
    t->held = true;
    return SB_OK;
}

/* Gives every hold of t back: requests (cancel), the token difference, the
 * reserved cost, and the spend; then clears t. */
static void give_back(struct sb_limits *l, struct sb_limits_ticket *t, int64_t requests,
                      int64_t tokens, int64_t spend, int64_t now)
{
    struct sb__lim_give g[3];
    size_t n = 0;
    for (size_t i = 0; i < 3 && t->held; i++) {
        const struct sb_limits_hold *h = &t->hold[i];
        if (!h->id[0])
            continue;
        g[n++] = (struct sb__lim_give){.id = h->id,
                                       .requests = requests,
                                       .tokens = h->tpm ? t->tokens - tokens : 0,
                                       .release_nusd = h->budget ? t->cost_nusd : 0,
                                       .spend_nusd = i ? spend : 0,
                                       .day_start_ms = t->day_start_ms,
                                       .month_start_ms = t->month_start_ms};
    }
    if (n)
        l->ops->give(l, g, n, now);
    memset(t, 0, sizeof(*t));
}

void sb_limits_settle(struct sb_limits *l, struct sb_limits_ticket *t, int64_t real_tokens,
                      double real_cost_usd, int64_t now_ms)
{
    give_back(l, t, 0, real_tokens > 0 ? real_tokens : 0, nusd(real_cost_usd), now_ms);
}

void sb_limits_cancel(struct sb_limits *l, struct sb_limits_ticket *t, int64_t now_ms)
{
    give_back(l, t, 1, 0, 0, now_ms);
}

/* ======================================================================
 * Spend: read, seeded at start
 * ==================================================================== */

double sb_limits_spent(struct sb_limits *l, const char *scope, enum sb_budget_period p,
                       int64_t now_ms)
{
    return (double)l->ops->spent(l, scope, p, sb_limits_period_start(p, now_ms)) / 1e9;
}

void sb_limits_seed_spend(struct sb_limits *l, const char *scope, enum sb_budget_period p,
                          int64_t now_ms, double spent_usd)
{
    l->ops->seed(l, scope, p, sb_limits_period_start(p, now_ms), nusd(spent_usd));
}

/* Seeds period p's spend of every key or user (by) from s. */
static sb_err load_one(struct sb_limits *l, struct sb_store *s, enum sb_store_spend_by by,
                       enum sb_budget_period p, int64_t now, size_t *n, struct sb_error *err)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_spend *rows = NULL;
    size_t nrows = 0;
    char id[SB_LIMITS_ID_MAX];
    sb_err rc = sb_store_spend(s, by, NULL, sb_limits_period_start(p, now), a, &rows, &nrows, err);
    for (size_t i = 0; rc == SB_OK && i < nrows; i++) {
        snprintf(id, sizeof(id), "%c:%s", by == SB_SPEND_BY_KEY ? 'k' : 'u', rows[i].id);
        sb_limits_seed_spend(l, id, p, now, rows[i].cost_usd);
        (*n)++;
    }
    sb_arena_free(a);
    return rc;
}

sb_err sb_limits_load_spend(struct sb_limits *l, struct sb_store *s, int64_t now_ms, size_t *n,
                            struct sb_error *err)
{
    static const enum sb_store_spend_by bys[] = {SB_SPEND_BY_KEY, SB_SPEND_BY_USER};
    static const enum sb_budget_period ps[] = {SB_BUDGET_DAY, SB_BUDGET_MONTH};
    size_t seeded = 0;
    sb_err rc = SB_OK;
    for (size_t b = 0; b < 2 && rc == SB_OK; b++)
        for (size_t p = 0; p < 2 && rc == SB_OK; p++)
            rc = load_one(l, s, bys[b], ps[p], now_ms, &seeded, err);
    if (n)
        *n = seeded;
    return rc;
}
