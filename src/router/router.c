/* SPDX-License-Identifier: MIT */
/*
 * router.c - plans (router.h) and the health state behind them.
 *
 * Health is one small record per model id in an open-addressing table
 * under a mutex; it only grows (one record per deployment ever seen).
 * Moving averages use alpha = 0.2: about the last ten requests dominate,
 * so a slow spell shows within a handful of requests and fades as fast.
 *
 * Circuit breaker per deployment: `failures` consecutive failures open it
 * for the cooldown (no traffic); then one request may probe it (half-open):
 * success closes it, failure opens it for another cooldown. Only the
 * failures the caller says count (connect errors, timeouts, 429, 5xx): a
 * client's bad request says nothing about the deployment.
 */
#include "router/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/slice.h"
#include "router/router_int.h"

#define EWMA_ALPHA 0.2


struct sb_router *sb_router_create(const struct sb_router_opts *o)
{
    struct sb_router *rt = sb_xcalloc(1, sizeof(*rt));
    pthread_mutex_init(&rt->lock, NULL);
    rt->mask = 63;
    rt->h = sb_xcalloc(rt->mask + 1, sizeof(*rt->h));
    rt->breaker_failures = o && o->breaker_failures > 0 ? o->breaker_failures : 5;
    rt->cooldown_ms = o && o->breaker_cooldown_ms > 0 ? o->breaker_cooldown_ms : 30000;
    return rt;
}

void sb_router_free(struct sb_router *rt)
{
    if (!rt)
        return;
    free(rt->dead);
    pthread_mutex_destroy(&rt->lock);
    free(rt->h);
    free(rt);
}

/* ---- the health table (under lock) ---- */

static size_t hash_id(const char *s)
{
    size_t h = 14695981039346656037ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static struct health *slot(struct health *t, size_t mask, const char *id)
{
    size_t i = hash_id(id) & mask;
    while (t[i].id[0] && strcmp(t[i].id, id) != 0)
        i = (i + 1) & mask;
    return &t[i];
}

static void grow(struct sb_router *rt)
{
    struct health *old = rt->h;
    size_t nold = rt->mask + 1;
    rt->mask = 2 * nold - 1;
    rt->h = sb_xcalloc(rt->mask + 1, sizeof(*rt->h));
    for (size_t i = 0; i < nold; i++)
        if (old[i].id[0])
            *slot(rt->h, rt->mask, old[i].id) = old[i];
    free(old);
}

/* The record of id, created on first sight (ids longer than 128 share a prefix record). */
struct health *sb__router_get(struct sb_router *rt, const char *id)
{
    struct health *h = slot(rt->h, rt->mask, id);
    if (h->id[0])
        return h;
    if (2 * (rt->n + 1) > rt->mask + 1) {
        grow(rt);
        h = slot(rt->h, rt->mask, id);
    }
    sb_str_copy(h->id, sizeof(h->id), id);
    rt->n++;
    return h;
}

static enum sb_breaker state(const struct health *h, int64_t now)
{
    if (!h->open_until)
        return SB_BREAKER_CLOSED;
    return now < h->open_until ? SB_BREAKER_OPEN : SB_BREAKER_HALF_OPEN;
}

/* Whether a new attempt may go to h now. */
static bool admits(const struct health *h, int64_t now)
{
    enum sb_breaker b = state(h, now);
    return b == SB_BREAKER_CLOSED || (b == SB_BREAKER_HALF_OPEN && !h->probing);
}

/* ---- plans ---- */

/* Whether m can serve q at all: global or the caller's own (a route never
 * sends anyone into another user's personal model, not even the admin
 * token), with the capabilities and the room. */
static bool fits(const struct sb_model *m, const struct sb_plan_req *q)
{
    int64_t need = q->prompt_tokens + q->max_tokens;
    if (m->owner && (!q->user || strcmp(m->owner, q->user) != 0))
        return false;
    if ((m->caps & q->caps) != q->caps)
        return false;
    return m->context_length <= 0 || q->prompt_tokens <= 0 || need <= m->context_length;
}

static double price(const struct sb_model *m, const struct sb_plan_req *q)
{
    double in = q->prompt_tokens > 0 ? (double)q->prompt_tokens : 1000;
    double out = q->max_tokens > 0 ? (double)q->max_tokens : 500;
    return (in * m->input_per_mtok + out * m->output_per_mtok) / 1e6;
}

void sb_router_plan(struct sb_router *rt, const struct sb_registry *reg,
                    const struct sb_route_entry *re, const struct sb_plan_req *q,
                    struct sb_plan *out)
{
    struct sb__cand c[SB_PLAN_MAX];
    size_t n = 0;
    const struct sb__strategy *s = sb__strategy_find(re->strategy);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < re->ntargets && n < SB_PLAN_MAX; i++) {
        const struct sb_model *m = sb_registry_find_model(reg, sb_slice_cstr(re->targets[i]));
        if (!m || !fits(m, q)) {
            out->unfit++;
            continue;
        }
        struct health *h = sb__router_get(rt, m->id);
        if (!admits(h, q->now_ms)) {
            out->open++;
            continue;
        }
        c[n++] = (struct sb__cand){.m = m,
                                   .pos = i,
                                   .weight = re->weights ? re->weights[i] : 1,
                                   .latency_ms = h->latency_ms,
                                   .inflight = h->inflight,
                                   .cost = price(m, q)};
    }
    pthread_mutex_unlock(&rt->lock);
    (s ? s : sb__strategy_find("priority"))->order(c, n, q);
    for (size_t i = 0; i < n; i++)
        out->t[out->n++] = c[i].m;
}

/* ---- attempts ---- */

#define PROVIDER_PREFIX "provider " /* a space: no model id holds one */

/* A provider's own record ("provider <id>") counts its requests in flight. */
static struct health *provider_of(struct sb_router *rt, const struct sb_model *m)
{
    char key[sizeof(((struct health *)0)->id)];
    sb_str_join(key, sizeof(key), PROVIDER_PREFIX, m->provider->id);
    return sb__router_get(rt, key);
}

bool sb_router_begin(struct sb_router *rt, const struct sb_model *m, int64_t now_ms)
{
    pthread_mutex_lock(&rt->lock);
    struct health *p = provider_of(rt, m);
    if (m->provider->max_concurrency > 0 && p->inflight >= m->provider->max_concurrency) {
        pthread_mutex_unlock(&rt->lock);
        return false;
    }
    p->inflight++;
    struct health *h = sb__router_get(rt, m->id);
    h->inflight++;
    if (state(h, now_ms) == SB_BREAKER_HALF_OPEN)
        h->probing = true;
    pthread_mutex_unlock(&rt->lock);
    return true;
}

static double ewma(double avg, double x)
{
    return avg == 0 ? x : avg + EWMA_ALPHA * (x - avg);
}

void sb_router_end(struct sb_router *rt, const struct sb_model *m, bool ok, double latency_ms,
                   double ttft_ms, int64_t hold_ms, int64_t now_ms)
{
    pthread_mutex_lock(&rt->lock);
    struct health *pv = provider_of(rt, m);
    if (pv->inflight > 0)
        pv->inflight--;
    struct health *h = sb__router_get(rt, m->id);
    bool probe = h->probing;
    if (h->inflight > 0)
        h->inflight--;
    h->probing = false;
    if (ok) {
        h->failures = 0;
        h->open_until = 0;
        if (latency_ms >= 0) /* < 0: the attempt says nothing of the deployment's speed */
            h->latency_ms = ewma(h->latency_ms, latency_ms);
        if (ttft_ms >= 0)
            h->ttft_ms = ewma(h->ttft_ms, ttft_ms);
    } else if (probe || ++h->failures >= rt->breaker_failures) {
        h->open_until = now_ms + rt->cooldown_ms; /* (re)open: no traffic for a cooldown */
        h->failures = 0;
    }
    if (!ok && hold_ms > 0 && now_ms + hold_ms > h->open_until)
        h->open_until = now_ms + hold_ms; /* the upstream said when to come back */
    pthread_mutex_unlock(&rt->lock);
}

bool sb_router_health(struct sb_router *rt, const char *model_id, int64_t now_ms,
                      struct sb_router_health *out)
{
    pthread_mutex_lock(&rt->lock);
    struct health *h = slot(rt->h, rt->mask, model_id);
    bool found = h->id[0] != '\0';
    if (found)
        *out = (struct sb_router_health){h->latency_ms, h->ttft_ms, h->inflight, h->failures,
                                         state(h, now_ms)};
    pthread_mutex_unlock(&rt->lock);
    return found;
}

static void family(struct sb_buf *out, const char *name, const char *help)
{
    sb_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

void sb_router_render_metrics(struct sb_router *rt, struct sb_buf *out, int64_t now_ms)
{
    static const struct {
        const char *name, *help;
    } f[] = {
        {"switchboard_deployment_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open."},
        {"switchboard_deployment_inflight", "Requests in flight to the deployment."},
        {"switchboard_deployment_latency_ms", "Moving average of the deployment's latency."},
        {"switchboard_deployment_ttft_ms",
         "Moving average of the deployment's time to first token."},
    };
    pthread_mutex_lock(&rt->lock);
    for (size_t k = 0; k < 4; k++) {
        family(out, f[k].name, f[k].help);
        for (size_t i = 0; i <= rt->mask; i++) {
            const struct health *h = &rt->h[i];
            if (!h->id[0] || strchr(h->id, ' ')) /* a provider's or a key's record */
                continue;
            double v = k == 0   ? (double)state(h, now_ms)
                       : k == 1 ? (double)h->inflight
                       : k == 2 ? h->latency_ms
                                : h->ttft_ms;
            sb_buf_printf(out, "%s{model=\"%s\"} %g\n", f[k].name, h->id, v);
        }
    }
    family(out, "switchboard_provider_inflight", "Requests in flight to the provider.");
    for (size_t i = 0; i <= rt->mask; i++)
        if (strncmp(rt->h[i].id, PROVIDER_PREFIX, strlen(PROVIDER_PREFIX)) == 0)
            sb_buf_printf(out, "switchboard_provider_inflight{provider=\"%s\"} %d\n",
                          rt->h[i].id + strlen(PROVIDER_PREFIX), rt->h[i].inflight);
    sb__router_render_keys(rt, out, now_ms); /* router_keys.c */
    pthread_mutex_unlock(&rt->lock);
}
