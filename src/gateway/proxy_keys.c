/* SPDX-License-Identifier: MIT */
/*
 * proxy_keys.c - which of a provider's pool keys a request uses (issue 7).
 *
 * The choice is rendezvous hashing by weight: every usable key gets a
 * score from a hash of (conversation, label), scaled by its weight, and the
 * best score wins. The same conversation lands on the same key (the
 * providers' prompt caches are per key), weights share traffic, and a key
 * that leaves the pool moves only its own conversations. A request without
 * a conversation draws at random.
 *
 * A 429 holds the key (its Retry-After, else a minute) and a 401/402/403
 * marks it dead (router.h); either way the request moves to another key
 * of the same deployment at once, before it fails over to another target.
 */
#include <math.h>
#include <string.h>

#include "core/log.h"
#include "gateway/proxy_int.h"

#define HOLD_429_MS 60000  /* a 429 without Retry-After: rate windows are per minute */
#define HOLD_DEAD_MS 30000 /* until the control plane has stored it (1 s poll) */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t label_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* The usable key with the best weighted rendezvous score, or -1. */
static int choose(const struct sb_provider *p, const bool *ok, uint64_t conv)
{
    int best = -1;
    double best_score = 0;
    for (size_t i = 0; i < p->nkeys; i++) {
        if (!ok[i])
            continue;
        /* u in (0, 1]; -ln(u) / w is exponential with rate w: the smallest wins. */
        double u = (double)((mix(conv ^ label_hash(p->keys[i].label)) >> 11) + 1) / 9007199254740992.0;
        double score = -log(u) / (double)p->keys[i].weight;
        if (best < 0 || score < best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best;
}

sb_err sb__proxy_pick_key(struct proxy *x, struct sb_error *err)
{
    const struct sb_provider *p = x->call.provider;
    if (p->nkeys < 2 || !x->w->gw->router)
        return SB_OK; /* one key: nothing to choose, and a dead one is the upstream's to say */
    bool ok[p->nkeys];
    sb_router_keys_usable(x->w->gw->router, p, sb__wall_ms(), ok);
    uint64_t conv = sb__proxy_conversation(x);
    if (!conv)
        conv = sb_experiment_random();
    int i = choose(p, ok, conv);
    if (i < 0) {
        x->err_code = "no_usable_key";
        return sb_fail(err, SB_E_UNAVAILABLE,
                       "provider '%s': every API key of its pool is held after a 429 or was "
                       "refused (dead until an admin replaces or revives it)",
                       p->id);
    }
    struct sb_provider *mine = sb_arena_alloc(x->req->arena, sizeof(*mine));
    *mine = *p;
    mine->api_key = p->keys[i].secret; /* the snapshot's, held as long as x->reg */
    x->call.provider = mine;
    x->key = &p->keys[i];
    return SB_OK;
}

bool sb__proxy_key_failed(struct proxy *x, int status, const struct sb_error *e)
{
    const struct sb_provider_key *k = x->key;
    struct sb_router *rt = x->w->gw->router;
    if (!k || !rt || (status != 429 && status != 401 && status != 402 && status != 403))
        return false;
    const struct sb_provider *p = x->call.model->provider; /* the snapshot's, not the copy */
    int64_t now = sb__wall_ms();
    if (status == 429) {
        int64_t ra = sb__proxy_retry_after_ms(x);
        sb_router_key_hold(rt, p, k, now + (ra > 0 ? ra : HOLD_429_MS));
    } else {
        char reason[96];
        snprintf(reason, sizeof(reason), "%d %.60s", status,
                 e->api_code[0] ? e->api_code : sb_err_name(e->code));
        sb_router_key_dead(rt, p, k, reason, HOLD_DEAD_MS, now);
    }
    bool ok[p->nkeys], other = false;
    sb_router_keys_usable(rt, p, now, ok);
    for (size_t i = 0; i < p->nkeys; i++)
        other |= ok[i];
    sb_log(SB_LOG_WARN, x->req->id,
           "msg=\"pool key refused\" provider=%s key=%s status=%d next=%s", p->id,
           k->label[0] ? k->label : "primary", status, other ? "another-key" : "failover");
    return other;
}
