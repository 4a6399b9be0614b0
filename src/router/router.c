/* SPDX-License-Identifier: MIT */
/*
 * router.c - plans (router.h) and the health state behind them.
 *
 * Health is one small record per model id, found through an open-addressing
 * index that readers probe without a lock; only creating a record (the
 * first sight of a deployment) takes the mutex. A request reads its
 * targets' records to plan, and writes only the record of the deployment it
 * tries: in-flight +1 and -1 and the moving averages, all on that record's
 * first cache line. So requests to different deployments share no written
 * line, and requests to one deployment share one line, which least-busy
 * (global in-flight counts) needs anyway. A provider's own in-flight record
 * is written only when it has a max_concurrency, a global limit by nature;
 * its gauge is otherwise the sum of its deployments' counts, taken when
 * /metrics reads. The trade-off is in DESIGN.md §7, "Many cores".
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/slice.h"
#include "router/router_int.h"

#define EWMA_ALPHA 0.2
#define ID_MAX (sizeof(((struct health *)0)->id) - 1)

static struct sb__router_index *index_new(size_t cap)
{
    struct sb__router_index *ix = sb_xcalloc(1, sizeof(*ix) + cap * sizeof(ix->slot[0]));
    ix->mask = cap - 1;
    return ix;
}

struct sb_router *sb_router_create(const struct sb_router_opts *o)
{
    struct sb_router *rt = sb_xcalloc(1, sizeof(*rt));
    pthread_mutex_init(&rt->lock, NULL);
    atomic_init(&rt->index, index_new(64));
    rt->breaker_failures = o && o->breaker_failures > 0 ? o->breaker_failures : 5;
    rt->cooldown_ms = o && o->breaker_cooldown_ms > 0 ? o->breaker_cooldown_ms : 30000;
    return rt;
}

void sb_router_free(struct sb_router *rt)
{
    if (!rt)
        return;
    struct sb__router_index *ix = atomic_load(&rt->index);
    for (size_t i = 0; i <= ix->mask; i++)
        free(atomic_load(&ix->slot[i]));
    while (ix) {
        struct sb__router_index *older = ix->older;
        free(ix);
        ix = older;
    }
    free(rt->dead);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

/* ---- the health index ---- */

/* Ids longer than ID_MAX are cut there, so they share a prefix record. */
static size_t hash_id(const char *s)
{
    size_t h = 14695981039346656037ull;
    for (size_t i = 0; i < ID_MAX && s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool id_is(const struct health *h, const char *id)
{
    return strncmp(h->id, id, ID_MAX) == 0;
}

/* The slot holding id, or the empty slot where it would go. */
static _Atomic(struct health *) *probe(struct sb__router_index *ix, const char *id)
{
    size_t i = hash_id(id) & ix->mask;
    for (;;) {
        struct health *h = atomic_load_explicit(&ix->slot[i], memory_order_acquire);
        if (!h || id_is(h, id))
            return &ix->slot[i];
        i = (i + 1) & ix->mask;
    }
}

struct health *sb__router_find(struct sb_router *rt, const char *id)
{
    struct sb__router_index *ix = atomic_load_explicit(&rt->index, memory_order_acquire);
    return atomic_load_explicit(probe(ix, id), memory_order_acquire);
}

/* Doubles the index (under lock); the old one stays for readers still in it. */
static struct sb__router_index *grow(struct sb_router *rt, struct sb__router_index *old)
{
    struct sb__router_index *ix = index_new(2 * (old->mask + 1));
    for (size_t i = 0; i <= old->mask; i++) {
        struct health *h = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        if (h)
            atomic_store_explicit(probe(ix, h->id), h, memory_order_relaxed);
    }
    ix->older = old;
    atomic_store_explicit(&rt->index, ix, memory_order_release);
    return ix;
}

static struct health *create(struct sb_router *rt, const char *id, const char *provider)
{
    struct sb__router_index *ix = atomic_load_explicit(&rt->index, memory_order_relaxed);
    struct health *h = atomic_load_explicit(probe(ix, id), memory_order_relaxed);
    if (h)
        return h; /* another thread made it between our probe and the lock */
    if (2 * (rt->n + 1) > ix->mask + 1)
        ix = grow(rt, ix);
    h = aligned_alloc(_Alignof(struct health), sizeof(*h));
    if (!h)
        abort(); /* out of memory: STYLE.md practice 10 */
    memset(h, 0, sizeof(*h));
    sb_str_copy(h->id, sizeof(h->id), id);
    sb_str_copy(h->provider, sizeof(h->provider), provider ? provider : "");
    atomic_store_explicit(probe(ix, id), h, memory_order_release);
    rt->n++;
    return h;
}

struct health *sb__router_get(struct sb_router *rt, const char *id, const char *provider)
{
    struct health *h = sb__router_find(rt, id);
    if (h)
        return h;
    pthread_mutex_lock(&rt->lock);
    h = create(rt, id, provider);
    pthread_mutex_unlock(&rt->lock);
    return h;
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

/* Requests in flight to provider: the sum over its deployments' records. */
static int provider_inflight(struct sb__router_index *ix, const char *provider)
{
    int n = 0;
    for (size_t i = 0; i <= ix->mask; i++) {
        struct health *h = atomic_load(&ix->slot[i]);
        if (h && strcmp(h->provider, provider) == 0)
            n += inflight_of(h);
    }
    return n;
}

/* Whether a record before slot `upto` already named provider. */
static bool provider_seen(struct sb__router_index *ix, size_t upto, const char *provider)
{
    for (size_t i = 0; i < upto; i++) {
        struct health *h = atomic_load(&ix->slot[i]);
        if (h && strcmp(h->provider, provider) == 0)
            return true;
    }
    return false;
}

static void render_providers(struct sb__router_index *ix, struct sb_buf *out)
{
    family(out, "switchboard_provider_inflight", "Requests in flight to the provider.");
    for (size_t i = 0; i <= ix->mask; i++) {
        struct health *h = atomic_load(&ix->slot[i]);
        if (!h || !h->provider[0] || provider_seen(ix, i, h->provider))
            continue;
        sb_buf_printf(out, "switchboard_provider_inflight{provider=\"%s\"} %d\n", h->provider,
                      provider_inflight(ix, h->provider));
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
    pthread_mutex_lock(&rt->lock); /* no insert moves the index while we walk it */
    struct sb__router_index *ix = atomic_load(&rt->index);
    for (size_t k = 0; k < 4; k++) {
        family(out, f[k].name, f[k].help);
        for (size_t i = 0; i <= ix->mask; i++) {
            struct health *h = atomic_load(&ix->slot[i]);
            if (!h || strchr(h->id, ' ')) /* a provider's or a key's record */
                continue;
            double v = k == 0   ? (double)state(h, now_ms)
                       : k == 1 ? (double)inflight_of(h)
                       : k == 2 ? load_d(&h->latency_ms)
                                : load_d(&h->ttft_ms);
            sb_buf_printf(out, "%s{model=\"%s\"} %g\n", f[k].name, h->id, v);
        }
    }
    render_providers(ix, out);
    sb__router_render_keys(rt, out, now_ms); /* router_keys.c */
    pthread_mutex_unlock(&rt->lock);
}
