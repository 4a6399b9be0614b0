/* SPDX-License-Identifier: MIT */
/*
 * registry_identity.c - who may call, in the snapshot: virtual keys and
 * users' own provider credentials.
 *
 * Keys are indexed by their stored hash text ("sha256:<hex>"): the data
 * plane hashes what a client presents and looks it up, so a lookup's timing
 * depends on the hash, never on how much of a key matched. Revoked keys and
 * keys of disabled or deleted users are left out, so revoking takes effect
 * with the publish that follows (within a second, the control plane's
 * promise); expiry is checked per request because time passes without a
 * publish. Personal credentials are indexed by "provider/user".
 *
 * Limits (issue 7) an admin set on a key or user are indexed by "k:<id>" and
 * "u:<username>"; a key carries its own copy, a user's are looked up.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "registry/registry_int.h"

static void build_personal(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    sb__ix_init(b->a, &r->by_personal, e->ncredentials);
    for (size_t i = 0; i < e->ncredentials; i++) {
        const struct sb_store_credential *c = &e->credentials[i];
        struct sb_secret *s = NULL;
        if (!c->user || !c->provider || !sb__ix_get(&r->by_provider, sb_slice_cstr(c->provider)))
            continue;
        sb__registry_decrypt(b, c->provider, c->user, NULL, c->key_id, c->key_ciphertext, &s);
        if (s)
            sb__ix_put(&r->by_personal, sb_arena_printf(b->a, "%s/%s", c->provider, c->user), s);
    }
}

static const char *dup(struct sb_arena *a, const char *s)
{
    return s ? sb_arena_strndup(a, s, strlen(s)) : NULL;
}

/* Turns a stored limits row into the snapshot's form (an unknown period: no budget). */
static struct sb_client_limits *client_limits(struct sb_arena *a, const struct sb_store_limits *l)
{
    struct sb_client_limits *c = sb_arena_calloc(a, sizeof(*c));
    c->rpm = l->rpm > 0 ? l->rpm : 0;
    c->tpm = l->tpm > 0 ? l->tpm : 0;
    const char *p = l->budget_period ? l->budget_period : "";
    c->period = strcmp(p, "day") == 0     ? SB_BUDGET_DAY
                : strcmp(p, "month") == 0 ? SB_BUDGET_MONTH
                                          : SB_BUDGET_NONE;
    c->budget_usd = c->period != SB_BUDGET_NONE && l->budget_usd > 0 ? l->budget_usd : 0;
    return c;
}

static void build_limits(struct builder *b, const struct sb_registry_source *src)
{
    struct sb_registry *r = b->r;
    sb__ix_init(b->a, &r->by_limits, src->nlimits);
    for (size_t i = 0; i < src->nlimits; i++) {
        const struct sb_store_limits_row *row = &src->limits[i];
        const char *id = row->user ? sb_arena_printf(b->a, "u:%s", row->user)
                                   : sb_arena_printf(b->a, "k:%lld", (long long)row->key_id);
        sb__ix_put(&r->by_limits, id, client_limits(b->a, &row->l));
    }
}

static void build_keys(struct builder *b, const struct sb_registry_source *src)
{
    struct sb_registry *r = b->r;
    r->keys = sb_arena_calloc(b->a, (src->nkeys + 1) * sizeof(*r->keys));
    sb__ix_init(b->a, &r->by_key, src->nkeys);
    for (size_t i = 0; i < src->nkeys; i++) {
        const struct sb_store_api_key *sk = &src->keys[i];
        if (sk->revoked || sk->owner_disabled || !sk->key_hash)
            continue;
        struct sb_client_key *k = &r->keys[r->nkeys++];
        k->id = sb_arena_printf(b->a, "%lld", (long long)sk->id);
        k->name = dup(b->a, sk->name);
        k->user = dup(b->a, sk->user_id);
        k->expires_at_ms = sk->expires_at;
        char lid[32];
        int ln = snprintf(lid, sizeof(lid), "k:%lld", (long long)sk->id);
        const struct sb_client_limits *lim =
            sb__ix_get(&r->by_limits, (struct sb_slice){lid, (size_t)ln});
        if (lim)
            k->limits = *lim;
        k->nmodels = sk->nmodels;
        k->models = sb_arena_calloc(b->a, (sk->nmodels + 1) * sizeof(*k->models));
        for (size_t m = 0; m < sk->nmodels; m++)
            k->models[m] = dup(b->a, sk->models[m]);
        sb__ix_put(&r->by_key, dup(b->a, sk->key_hash), k);
    }
}

void sb__registry_build_identity(struct builder *b, const struct sb_registry_source *src)
{
    build_personal(b, src->e);
    build_limits(b, src);
    build_keys(b, src);
}

const struct sb_client_key *sb_registry_find_key(const struct sb_registry *r,
                                                 struct sb_slice hash_text)
{
    return sb__ix_get(&r->by_key, hash_text);
}

bool sb_registry_key_allows(const struct sb_client_key *k, struct sb_slice name)
{
    if (k->nmodels == 0)
        return true;
    for (size_t i = 0; i < k->nmodels; i++)
        if (sb_slice_eq_cstr(name, k->models[i]))
            return true;
    return false;
}

const struct sb_secret *sb_registry_personal_key(const struct sb_registry *r, const char *provider,
                                                 const char *user)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%s/%s", provider, user ? user : "");
    if (!user || n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return sb__ix_get(&r->by_personal, (struct sb_slice){key, (size_t)n});
}

const struct sb_client_limits *sb_registry_user_limits(const struct sb_registry *r,
                                                       const char *user)
{
    char key[80];
    int n = snprintf(key, sizeof(key), "u:%s", user ? user : "");
    if (!user || n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return sb__ix_get(&r->by_limits, (struct sb_slice){key, (size_t)n});
}

bool sb_registry_model_visible(const struct sb_model *m, const char *user)
{
    return !m->owner || !user || strcmp(m->owner, user) == 0;
}
