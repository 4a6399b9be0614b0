/* SPDX-License-Identifier: MIT */
/*
 * router.c - plans (router.h) and the health state behind them.
 *
 * Health is one small record per model id, found through an index that
 * readers probe without a lock (core/idindex.h); only creating a record (the
 * first sight of a deployment) takes the index's mutex. A request reads its
 * targets' records to plan, and writes only the record of the deployment it
 * tries: in-flight +1 and -1 and the moving averages, all on that record's
 * first cache line. So requests to different deployments share no written
 * line, and requests to one deployment share one line, which least-busy
 * (global in-flight counts) needs anyway. A provider's own in-flight record
 * is written only when it has a max_concurrency, a global limit by nature;
 * its gauge is otherwise the sum of its deployments' counts, taken when
 * /metrics reads (which walks the index without a lock too). The trade-off
 * is in DESIGN.md §7, "Many cores".
 *
 * Moving averages use alpha = 0.2: about the last ten requests dominate,
 * so a slow spell shows within a handful of requests and fades as fast.
 * Two attempts ending at once may each update from the same old average
 * and one sample is lost: an average of recent latency does not mind.
 *
 * Circuit breaker per deployment: `failures` consecutive failures open it
 * for the cooldown (no traffic); then one request may probe it (half-open):
 * success closes it, failure opens it for another cooldown. Only the
 * failures the caller says count (connect errors, timeouts, 429, 5xx): a
 * client's bad request says nothing about the deployment. A success writes
 * the breaker's fields only when they are not already closed, so the
 * common case reads them and leaves their line shared.
 */
#include "router/router.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/idindex.h"
#include "core/slice.h"
#include "router/router_int.h"

#define EWMA_ALPHA 0.2

struct sb_router *sb_router_create(const struct sb_router_opts *o)
{
    struct sb_router *rt = sb_xcalloc(1, sizeof(*rt));
    pthread_mutex_init(&rt->lock, NULL);
    rt->ix = sb_idindex_create(sizeof(struct health), _Alignof(struct health),
                               offsetof(struct health, id), sizeof(((struct health *)0)->id));
    rt->breaker_failures = o && o->breaker_failures > 0 ? o->breaker_failures : 5;
    rt->cooldown_ms = o && o->breaker_cooldown_ms > 0 ? o->breaker_cooldown_ms : 30000;
    return rt;
}

void sb_router_free(struct sb_router *rt)
{
    if (!rt)
        return;
    sb_idindex_free(rt->ix);
    free(rt->dead);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

/* ---- the health index ---- */

struct health *sb__router_find(struct sb_router *rt, const char *id)
{
    return sb_idindex_find(rt->ix, id);
}

/* A new record's provider (ud: the provider's id, or NULL), before any
 * other thread can see the record. */
static void init_health(void *rec, void *ud)
{
    struct health *h = rec;
    sb_str_copy(h->provider, sizeof(h->provider), ud ? ud : "");
}

struct health *sb__router_get(struct sb_router *rt, const char *id, const char *provider)
{
    return sb_idindex_get(rt->ix, id, init_health, (void *)provider);
}

static struct health *deployment(struct sb_router *rt, const struct sb_model *m)
{
    return sb__router_get(rt, m->id, m->provider->id);
}

static int64_t open_until(struct health *h)
{
    return atomic_load_explicit(&h->open_until, memory_order_relaxed);
}

static enum sb_breaker state(struct health *h, int64_t now)
{
    int64_t until = open_until(h);
    if (!until)
        return SB_BREAKER_CLOSED;
    return now < until ? SB_BREAKER_OPEN : SB_BREAKER_HALF_OPEN;
}

/* Whether a new attempt may go to h now. */
static bool admits(struct health *h, int64_t now)
{
    enum sb_breaker b = state(h, now);
    return b == SB_BREAKER_CLOSED ||
           (b == SB_BREAKER_HALF_OPEN && !atomic_load_explicit(&h->probing, memory_order_relaxed));
}

static double load_d(_Atomic double *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static int load_i(atomic_int *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
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
    for (size_t i = 0; i < re->ntargets && n < SB_PLAN_MAX; i++) {
        const struct sb_model *m = sb_registry_find_model(reg, sb_slice_cstr(re->targets[i]));
        if (!m || !fits(m, q)) {
            out->unfit++;
            continue;
        }
        struct health *h = deployment(rt, m);
        if (!admits(h, q->now_ms)) {
            out->open++;
            continue;
        }
        c[n++] = (struct sb__cand){.m = m,
                                   .pos = i,
                                   .weight = re->weights ? re->weights[i] : 1,
                                   .latency_ms = load_d(&h->latency_ms),
                                   .inflight = load_i(&h->inflight),
                                   .cost = price(m, q)};
    }
    (s ? s : sb__strategy_find("priority"))->order(c, n, q);
    for (size_t i = 0; i < n; i++)
        out->t[out->n++] = c[i].m;
}

/* ---- attempts ---- */

#define PROVIDER_PREFIX "provider " /* a space: no model id holds one */

/* A capped provider's own record ("provider <id>") counts its requests in flight. */
static struct health *provider_of(struct sb_router *rt, const struct sb_model *m)
{
    char key[sizeof(((struct health *)0)->id)];
    sb_str_join(key, sizeof(key), PROVIDER_PREFIX, m->provider->id);
    return sb__router_get(rt, key, NULL);
}

/* One more in flight to p unless it has max already (a CAS loop, so a
 * refused attempt never counts, even for an instant). */
static bool claim(struct health *p, long max)
{
    int n = load_i(&p->inflight);
    while (n < max)
        if (atomic_compare_exchange_weak_explicit(&p->inflight, &n, n + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

bool sb_router_begin(struct sb_router *rt, const struct sb_model *m, int64_t now_ms)
{
    long max = m->provider->max_concurrency;
    if (max > 0 && !claim(provider_of(rt, m), max))
        return false;
    struct health *h = deployment(rt, m);
    atomic_fetch_add_explicit(&h->inflight, 1, memory_order_relaxed);
    if (state(h, now_ms) == SB_BREAKER_HALF_OPEN)
        atomic_store_explicit(&h->probing, true, memory_order_relaxed);
    return true;
}

static void ewma(_Atomic double *avg, double x)
{
    double a = load_d(avg);
    atomic_store_explicit(avg, a == 0 ? x : a + EWMA_ALPHA * (x - a), memory_order_relaxed);
}

/* Stores v unless the field holds it already: a read leaves the line shared. */
static void set_i64(_Atomic int64_t *f, int64_t v)
{
    if (atomic_load_explicit(f, memory_order_relaxed) != v)
        atomic_store_explicit(f, v, memory_order_relaxed);
}

/* The later of the field and until: an upstream's hold never shortens one. */
static void hold_until(_Atomic int64_t *f, int64_t until)
{
    int64_t cur = atomic_load_explicit(f, memory_order_relaxed);
    while (until > cur && !atomic_compare_exchange_weak_explicit(
                              f, &cur, until, memory_order_relaxed, memory_order_relaxed))
        ;
}

static void succeeded(struct health *h, double latency_ms, double ttft_ms)
{
    if (load_i(&h->failures))
        atomic_store_explicit(&h->failures, 0, memory_order_relaxed);
    set_i64(&h->open_until, 0);
    if (latency_ms >= 0) /* < 0: the attempt says nothing of the deployment's speed */
        ewma(&h->latency_ms, latency_ms);
    if (ttft_ms >= 0)
        ewma(&h->ttft_ms, ttft_ms);
}

static void failed(struct sb_router *rt, struct health *h, bool probe, int64_t now_ms)
{
    if (probe || atomic_fetch_add_explicit(&h->failures, 1, memory_order_relaxed) + 1 >=
                     rt->breaker_failures) {
        atomic_store_explicit(&h->open_until, now_ms + rt->cooldown_ms, memory_order_relaxed);
        atomic_store_explicit(&h->failures, 0, memory_order_relaxed);
    }
}

void sb_router_end(struct sb_router *rt, const struct sb_model *m, bool ok, double latency_ms,
                   double ttft_ms, int64_t hold_ms, int64_t now_ms)
{
    if (m->provider->max_concurrency > 0) /* the same snapshot's model as at begin */
        atomic_fetch_sub_explicit(&provider_of(rt, m)->inflight, 1, memory_order_relaxed);
    struct health *h = deployment(rt, m);
    atomic_fetch_sub_explicit(&h->inflight, 1, memory_order_relaxed);
    bool probe = atomic_load_explicit(&h->probing, memory_order_relaxed) &&
                 atomic_exchange_explicit(&h->probing, false, memory_order_relaxed);
    if (ok)
        succeeded(h, latency_ms, ttft_ms);
    else
        failed(rt, h, probe, now_ms);
    if (!ok && hold_ms > 0)
        hold_until(&h->open_until, now_ms + hold_ms); /* the upstream said when to come back */
}

/* In-flight counts for gauges: an end without its begin (never in the
 * proxy) must not show as a negative number. */
static int inflight_of(struct health *h)
{
    int n = load_i(&h->inflight);
    return n > 0 ? n : 0;
}

bool sb_router_health(struct sb_router *rt, const char *model_id, int64_t now_ms,
                      struct sb_router_health *out)
{
    struct health *h = sb__router_find(rt, model_id);
    if (h)
        *out = (struct sb_router_health){load_d(&h->latency_ms), load_d(&h->ttft_ms),
                                         inflight_of(h), load_i(&h->failures), state(h, now_ms)};
    return h != NULL;
}

static void family(struct sb_buf *out, const char *name, const char *help)
{
    sb_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* The records now, for one scrape: every family and the provider sums
 * describe the same set (a record created meanwhile shows in the next
 * scrape). Returns owned (free with free()), *n records. */
static struct health **records(struct sb_router *rt, size_t *n)
{
    struct sb_idindex_iter it;
    struct health **v = NULL;
    size_t cap = 0;
    *n = 0;
    sb_idindex_iter_init(&it, rt->ix);
    for (struct health *h = sb_idindex_next(&it); h; h = sb_idindex_next(&it)) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            v = sb_xrealloc(v, cap * sizeof(*v));
        }
        v[(*n)++] = h;
    }
    return v;
}

/* Requests in flight to provider: the sum over its deployments' records. */
static int provider_inflight(struct health *const *v, size_t n, const char *provider)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i]->provider, provider) == 0)
            sum += inflight_of(v[i]);
    return sum;
}

/* Whether a record before v[upto] already named provider. */
static bool provider_seen(struct health *const *v, size_t upto, const char *provider)
{
    for (size_t i = 0; i < upto; i++)
        if (strcmp(v[i]->provider, provider) == 0)
            return true;
    return false;
}

static void render_providers(struct health *const *v, size_t n, struct sb_buf *out)
{
    family(out, "switchboard_provider_inflight", "Requests in flight to the provider.");
    for (size_t i = 0; i < n; i++) {
        const char *p = v[i]->provider;
        if (p[0] && !provider_seen(v, i, p))
            sb_buf_printf(out, "switchboard_provider_inflight{provider=\"%s\"} %d\n", p,
                          provider_inflight(v, n, p));
    }
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
    size_t n;
    struct health **v = records(rt, &n); /* no lock: see records */
    for (size_t k = 0; k < 4; k++) {
        family(out, f[k].name, f[k].help);
        for (size_t i = 0; i < n; i++) {
            struct health *h = v[i];
            if (strchr(h->id, ' ')) /* a provider's or a key's record */
                continue;
            double x = k == 0   ? (double)state(h, now_ms)
                       : k == 1 ? (double)inflight_of(h)
                       : k == 2 ? load_d(&h->latency_ms)
                                : load_d(&h->ttft_ms);
            sb_buf_printf(out, "%s{model=\"%s\"} %g\n", f[k].name, h->id, x);
        }
    }
    render_providers(v, n, out);
    sb__router_render_keys(rt, out, now_ms); /* router_keys.c */
    free(v);
}
