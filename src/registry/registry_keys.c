/* SPDX-License-Identifier: MIT */
/*
 * registry_keys.c - a provider's key pool in the snapshot (issue 7).
 *
 * A provider may hold several keys: the primary one (api_key, or the stored
 * credential without a label), the config file's api_keys references, and
 * keys added over the API (provider_credentials rows with a label). The
 * proxy spreads conversations over them by weight (gateway/proxy_keys.c);
 * a key an upstream refused for good (401/402/403) is in dead_keys under
 * its provider, label and fingerprint, and stays out of the pool until an
 * admin replaces it (a new fingerprint) or revives it (the row goes).
 */
#include <string.h>

#include "core/log.h"
#include "crypto/secret.h"
#include "registry/registry_int.h"

static bool has_label(const struct sb_provider_key *k, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].label, label) == 0)
            return true;
    return false;
}

static void add(struct builder *b, struct sb_provider_key *k, size_t *n, const char *label,
                struct sb_secret *s, int64_t weight)
{
    struct sb_provider_key *key = &k[(*n)++];
    key->label = sb_arena_strndup(b->a, label, strlen(label));
    key->secret = s;
    key->weight = weight > 0 ? (long)weight : 1;
    sb_secret_fingerprint(s, key->fingerprint);
}

/* The reason e->dead_keys gives for this very key, or NULL. */
static const char *dead_reason(struct builder *b, const struct sb_store_entities *e,
                               const char *provider, const struct sb_provider_key *k)
{
    for (size_t i = 0; i < e->ndead_keys; i++) {
        const struct sb_store_dead_key *d = &e->dead_keys[i];
        if (d->provider && d->label && d->fingerprint && strcmp(d->provider, provider) == 0 &&
            strcmp(d->label, k->label) == 0 && strcmp(d->fingerprint, k->fingerprint) == 0)
            return sb_arena_strndup(b->a, d->reason ? d->reason : "refused",
                                    strlen(d->reason ? d->reason : "refused"));
    }
    return NULL;
}

static size_t stored_count(const struct sb_store_entities *e, const char *provider)
{
    size_t n = 0;
    for (size_t i = 0; i < e->npool; i++)
        n += e->pool[i].provider && strcmp(e->pool[i].provider, provider) == 0;
    return n;
}

sb_err sb__registry_build_pool(struct builder *b, const struct sb_store_entities *e,
                               const struct sb_store_provider *sp, struct sb_provider *p,
                               struct sb_error *err)
{
    size_t max = (p->api_key ? 1 : 0) + sp->napi_keys + stored_count(e, sp->id), n = 0;
    if (max == 0)
        return SB_OK;
    struct sb_provider_key *k = sb_arena_calloc(b->a, max * sizeof(*k));
    if (p->api_key)
        add(b, k, &n, "", p->api_key, 1);
    for (size_t i = 0; i < sp->napi_keys; i++) {
        const struct sb_store_key_ref *r = &sp->api_keys[i];
        struct sb_secret *s = NULL;
        sb_err rc = sb__registry_resolve_ref(
            b, sp->id, sb_arena_printf(b->a, "api_keys %s", r->label ? r->label : "?"), r->key, &s,
            err);
        if (rc != SB_OK)
            return rc;
        if (s && r->label && !has_label(k, n, r->label))
            add(b, k, &n, r->label, s, r->weight);
    }
    for (size_t i = 0; i < e->npool; i++) {
        const struct sb_store_credential *c = &e->pool[i];
        struct sb_secret *s = NULL;
        if (!c->provider || strcmp(c->provider, sp->id) != 0 || !c->label || !*c->label)
            continue;
        if (has_label(k, n, c->label)) { /* the config file's key of that name wins */
            sb_warn("msg=\"stored pool key shadowed by the config file\" provider=%s label=%s",
                    sp->id, c->label);
            continue;
        }
        sb__registry_decrypt(b, c->provider, NULL, c->label, c->key_id, c->key_ciphertext, &s);
        if (s)
            add(b, k, &n, c->label, s, c->weight);
    }
    for (size_t i = 0; i < n; i++)
        k[i].dead = dead_reason(b, e, sp->id, &k[i]);
    if (!p->api_key && n > 0)
        p->api_key = k[0].secret; /* keyed: auth stays what the type says */
    p->keys = k;
    p->nkeys = n;
    return SB_OK;
}
