/* SPDX-License-Identifier: MIT */
/*
 * router_keys.c - the per-request state of provider key pools (router.h).
 *
 * A key's hold is one more record in the router's health table, named
 * "key <provider>#<label>" (a space: never a model id), so it shares the
 * table's index and lifetime: found without a lock, its hold an atomic. Dead keys wait in a small
 * ring, under rt->lock (its one use), until the control plane's poller stores them (api.c); the
 * ring is bounded because losing an entry costs only one more refused request later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/idindex.h"
#include "router/router_int.h"

#define DEAD_RING 64

static struct health *record(struct sb_router *rt, const char *provider, const char *label)
{
    char id[sizeof(((struct health *)0)->id)];
    snprintf(id, sizeof(id), "key %s#%s", provider, label);
    return sb__router_get(rt, id, NULL);
}

static struct health *key_record(struct sb_router *rt, const struct sb_provider *p,
                                 const struct sb_provider_key *k)
{
    return record(rt, p->id, k->label);
}

void sb_router_key_release(struct sb_router *rt, const char *provider, const char *label)
{
    atomic_store(&record(rt, provider, label)->open_until, 0);
}

/* The later of h's hold and until. */
static void hold(struct health *h, int64_t until)
{
    int64_t cur = atomic_load(&h->open_until);
    while (until > cur && !atomic_compare_exchange_weak(&h->open_until, &cur, until))
        ;
}

void sb_router_keys_usable(struct sb_router *rt, const struct sb_provider *p, int64_t now_ms,
                           bool *ok)
{
    for (size_t i = 0; i < p->nkeys; i++)
        ok[i] =
            !p->keys[i].dead && atomic_load(&key_record(rt, p, &p->keys[i])->open_until) <= now_ms;
}

void sb_router_key_hold(struct sb_router *rt, const struct sb_provider *p,
                        const struct sb_provider_key *k, int64_t until_ms)
{
    hold(key_record(rt, p, k), until_ms);
}

void sb_router_key_dead(struct sb_router *rt, const struct sb_provider *p,
                        const struct sb_provider_key *k, const char *reason, int64_t hold_ms,
                        int64_t now_ms)
{
    hold(key_record(rt, p, k), now_ms + hold_ms);
    pthread_mutex_lock(&rt->lock);
    if (!rt->dead)
        rt->dead = sb_xcalloc(DEAD_RING, sizeof(*rt->dead));
    if (rt->ndead == DEAD_RING) { /* full: the oldest goes */
        memmove(rt->dead, rt->dead + 1, (DEAD_RING - 1) * sizeof(*rt->dead));
        rt->ndead--;
    }
    struct sb_router_dead_key *d = &rt->dead[rt->ndead++];
    snprintf(d->provider, sizeof(d->provider), "%s", p->id);
    snprintf(d->label, sizeof(d->label), "%s", k->label);
    memcpy(d->fingerprint, k->fingerprint, sizeof(d->fingerprint));
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
    d->at = now_ms;
    pthread_mutex_unlock(&rt->lock);
}

size_t sb_router_take_dead(struct sb_router *rt, struct sb_router_dead_key *out, size_t max)
{
    pthread_mutex_lock(&rt->lock);
    size_t n = rt->ndead < max ? rt->ndead : max;
    if (n > 0) {
        memcpy(out, rt->dead, n * sizeof(*out));
        memmove(rt->dead, rt->dead + n, (rt->ndead - n) * sizeof(*rt->dead));
        rt->ndead -= n;
    }
    pthread_mutex_unlock(&rt->lock);
    return n;
}

void sb__router_render_keys(struct sb_router *rt, struct sb_buf *out, int64_t now_ms)
{
    sb_buf_printf(out, "# HELP switchboard_provider_key_held A pool key held after a 429 or "
                       "a refusal (1), or in use (0).\n"
                       "# TYPE switchboard_provider_key_held gauge\n");
    struct sb_idindex_iter it;
    sb_idindex_iter_init(&it, rt->ix);
    for (struct health *h = sb_idindex_next(&it); h; h = sb_idindex_next(&it)) {
        if (strncmp(h->id, "key ", 4) != 0)
            continue;
        const char *hash = strrchr(h->id, '#');
        if (!hash)
            continue;
        sb_buf_printf(out, "switchboard_provider_key_held{provider=\"%.*s\",label=\"%s\"} %d\n",
                      (int)(hash - h->id - 4), h->id + 4, hash[1] ? hash + 1 : "primary",
                      atomic_load(&h->open_until) > now_ms);
    }
}
