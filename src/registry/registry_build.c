/* SPDX-License-Identifier: MIT */
/*
 * registry_build.c - turning store rows into a snapshot (registry_build.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "registry/config.h"
#include "registry/registry_int.h"

/* ---- building ---- */

static const char *dup(struct sb_arena *a, const char *s)
{
    return s ? sb_arena_strndup(a, s, strlen(s)) : NULL;
}

static void free_secret_hook(void *ud)
{
    sb_secret_free(ud);
}

/* Takes ownership of s: it is wiped and freed with the snapshot. */
static struct sb_secret *keep_secret(struct builder *b, struct sb_secret *s)
{
    if (s)
        sb_arena_on_free(b->a, free_secret_hook, s);
    return s;
}

sb_err sb__registry_resolve_ref(struct builder *b, const char *pid, const char *what,
                                const char *ref, struct sb_secret **out, struct sb_error *err)
{
    struct sb_error why = {0};
    struct sb_secret *s = NULL;
    if (sb_config_resolve_secret(ref, &s, &why) != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "provider %s: %s: %s", pid, what, why.msg);
    *out = keep_secret(b, s);
    return SB_OK;
}

/* Decrypts one stored credential with the keyring (by the row's key id) or
 * the single master key; *out NULL and why set on failure. */
static sb_err decrypt(const struct sb_registry_keys *k, const char *provider, const char *user,
                      const char *label, const char *key_id, const char *ct,
                      struct sb_secret **out, struct sb_error *why)
{
    char aad[SB_KEYS_AAD_MAX], kid[17];
    *out = NULL;
    sb_keys_credential_aad(provider, user, label, aad);
    if (k && k->kr)
        return sb_keys_keyring_decrypt(k->kr, key_id ? key_id : "", sb_slice_cstr(ct),
                                       sb_slice_cstr(aad), out, why);
    if (!k || !k->mk)
        return sb_fail(why, SB_E_CONFIG, "no master key was given");
    sb_keys_master_id(k->mk, kid);
    if (key_id && strcmp(key_id, kid) != 0)
        return sb_fail(why, SB_E_CONFIG,
                       "encrypted with master key %.16s, the current key is %s (run rotate-key "
                       "with the old key)",
                       key_id, kid);
    return sb_keys_decrypt(k->mk, sb_slice_cstr(ct), sb_slice_cstr(aad), out, why);
}

void sb__registry_decrypt(struct builder *b, const char *provider, const char *user,
                          const char *label, const char *key_id, const char *ct,
                          struct sb_secret **out)
{
    struct sb_error why = {0};
    struct sb_secret *s = NULL;
    if (decrypt(b->keys, provider, user, label, key_id, ct, &s, &why) != SB_OK)
        sb_warn("msg=\"stored credential skipped\" provider=%s user=%s why=\"%s\"", provider,
                user ? user : "-", why.msg);
    *out = keep_secret(b, s);
}

/* The system credential: a failure fails the build (the old snapshot keeps serving). */
static sb_err decrypt_credential(struct builder *b, const struct sb_store_provider *sp,
                                 struct sb_secret **out, struct sb_error *err)
{
    struct sb_error why = {0};
    struct sb_secret *s = NULL;
    if (!b->keys || (!b->keys->kr && !b->keys->mk)) {
        sb_warn("msg=\"provider has an encrypted credential but no master key was given\" "
                "provider=%s",
                sp->id);
        return SB_OK;
    }
    if (decrypt(b->keys, sp->id, NULL, NULL, sp->key_id, sp->key_ciphertext, &s, &why) != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "provider %s: credential %s", sp->id, why.msg);
    *out = keep_secret(b, s);
    return SB_OK;
}

static sb_err provider_credentials(struct builder *b, const struct sb_store_provider *sp,
                                   struct sb_provider *p, struct sb_error *err)
{
    sb_err rc = sb__registry_resolve_ref(b, sp->id, "api_key", sp->api_key, &p->api_key, err);
    if (rc == SB_OK && !sp->api_key && sp->key_ciphertext)
        rc = decrypt_credential(b, sp, &p->api_key, err);
    if (rc == SB_OK)
        rc = sb__registry_resolve_ref(b, sp->id, "aws_access_key_id", sp->aws_access_key_id,
                         &p->aws_access_key_id, err);
    if (rc == SB_OK)
        rc = sb__registry_resolve_ref(b, sp->id, "aws_secret_access_key", sp->aws_secret_access_key,
                         &p->aws_secret_access_key, err);
    if (rc == SB_OK)
        rc = sb__registry_resolve_ref(b, sp->id, "aws_session_token", sp->aws_session_token,
                         &p->aws_session_token, err);
    return rc;
}

static void provider_fields(struct builder *b, const struct sb_store_provider *sp,
                            const struct sb_provider_ops *ops, struct sb_provider *p)
{
    const struct sb_config_type *t = sb_config_type_find(sb_slice_cstr(sp->type));
    p->id = dup(b->a, sp->id);
    p->type = dup(b->a, sp->type);
    p->ops = ops;
    p->base_url = dup(b->a, sp->base_url);
    p->auth = t ? t->auth : SB_AUTH_BEARER;
    p->keyed_auth = p->auth;
    p->headers = sb_arena_calloc(b->a, (sp->nheaders + 1) * sizeof(*p->headers));
    p->nheaders = sp->nheaders;
    for (size_t i = 0; i < sp->nheaders; i++) {
        p->headers[i].name = sb_arena_slice(b->a, sb_slice_cstr(sp->headers[i].name));
        p->headers[i].value = sb_arena_slice(b->a, sb_slice_cstr(sp->headers[i].value));
    }
    p->timeout_ms = (long)sp->timeout_ms;
    p->connect_timeout_ms = (long)sp->connect_timeout_ms;
    p->idle_timeout_ms = (long)sp->idle_timeout_ms;
    p->api_version = dup(b->a, sp->api_version);
    p->region = dup(b->a, sp->region);
    p->rpm = (long)sp->rpm;
    p->tpm = (long)sp->tpm;
    p->enabled = sp->enabled;
    p->is_system = sp->is_system;
    p->personal_keys_required = sp->personal_keys_required;
    p->max_concurrency = (long)sp->max_concurrency;
    /* enum sb_ureq_transport's values (upstream/client.h); config_providers.c checked the word */
    p->transport = !sp->transport                         ? 0
                   : strcmp(sp->transport, "native") == 0 ? 1
                   : strcmp(sp->transport, "curl") == 0   ? 2
                                                          : 0;
}

static void note_skipped_type(struct builder *b, const char *type)
{
    size_t i = 0;
    while (i < b->nskipped && strcmp(b->skipped[i], type) != 0)
        i++;
    if (i == b->nskipped && b->nskipped < MAX_SKIPPED_TYPES)
        b->skipped[b->nskipped++] = type;
    if (i < b->nskipped)
        b->nskipped_by_type[i]++;
}

static sb_err build_providers(struct builder *b, const struct sb_store_entities *e,
                              struct sb_error *err)
{
    struct sb_registry *r = b->r;
    r->providers = sb_arena_calloc(b->a, (e->nproviders + 1) * sizeof(*r->providers));
    sb__ix_init(b->a, &r->by_provider, e->nproviders);
    for (size_t i = 0; i < e->nproviders; i++) {
        const struct sb_store_provider *sp = &e->providers[i];
        if (!sp->enabled || !sp->id || !sp->type || !sp->base_url)
            continue;
        const struct sb_provider_ops *ops = sb_provider_ops_find(sb_slice_cstr(sp->type));
        if (!ops) {
            note_skipped_type(b, sp->type);
            continue;
        }
        struct sb_provider *p = &r->providers[r->nproviders];
        provider_fields(b, sp, ops, p);
        sb_err rc = provider_credentials(b, sp, p, err);
        if (rc == SB_OK && p->auth != SB_AUTH_SIGV4)
            rc = sb__registry_build_pool(b, e, sp, p, err);
        if (rc != SB_OK)
            return rc;
        if (!p->api_key && p->auth != SB_AUTH_SIGV4)
            p->auth = SB_AUTH_NONE;
        sb__ix_put(&r->by_provider, p->id, p);
        r->nproviders++;
    }
    for (size_t i = 0; i < b->nskipped; i++)
        sb_warn("msg=\"no adapter for this provider type yet; its providers are skipped\" "
                "type=%s providers=%zu",
                b->skipped[i], b->nskipped_by_type[i]);
    return SB_OK;
}

static unsigned caps_bits(const struct sb_store_caps *c)
{
    return (c->streaming ? SB_CAP_STREAMING : 0) | (c->tools ? SB_CAP_TOOLS : 0) |
           (c->vision ? SB_CAP_VISION : 0) | (c->json_mode ? SB_CAP_JSON_MODE : 0) |
           (c->embeddings ? SB_CAP_EMBEDDINGS : 0) | (c->declared ? SB_CAP_DECLARED : 0);
}

/* Indexes m under its id and under provider/upstream_model. */
static void index_model(struct builder *b, const struct sb_model *m)
{
    sb__ix_put(&b->r->by_model, m->id, m);
    sb__ix_put(&b->r->by_model, sb_arena_printf(b->a, "%s/%s", m->provider->id, m->upstream_model),
               m);
}

static void build_models(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    size_t ntargets = 0;
    for (size_t i = 0; i < e->nroutes; i++)
        ntargets += e->routes[i].ntargets;
    for (size_t i = 0; i < e->nmodels; i++)
        ntargets += e->models[i].nfallbacks; /* implicit models, as route targets make */
    r->models = sb_arena_calloc(b->a, (e->nmodels + 1) * sizeof(*r->models));
    sb__ix_init(b->a, &r->by_model, 2 * e->nmodels + ntargets);
    for (size_t i = 0; i < e->nmodels; i++) {
        const struct sb_store_model *sm = &e->models[i];
        const struct sb_provider *p =
            sm->provider ? sb__ix_get(&r->by_provider, sb_slice_cstr(sm->provider)) : NULL;
        if (!p || !sm->enabled || !sm->id)
            continue;
        struct sb_model *m = &r->models[r->nmodels++];
        m->id = dup(b->a, sm->id);
        m->provider = p;
        m->upstream_model = dup(b->a, sm->upstream_model ? sm->upstream_model : sm->id);
        m->context_length = (long)sm->context_length;
        m->max_output_tokens = (long)sm->max_output_tokens;
        m->caps = caps_bits(&sm->caps);
        m->input_per_mtok = sm->input_per_mtok;
        m->output_per_mtok = sm->output_per_mtok;
        m->fallback_priority = (int)sm->fallback_priority;
        m->enabled = true;
        m->is_system = sm->is_system;
        m->owner = dup(b->a, sm->owner);
        index_model(b, m);
    }
}

/* A route target provider/upstream_model that names no model: make one,
 * so the router can resolve every target of a route the same way. */
static void implicit_model(struct builder *b, const char *target)
{
    const char *slash = strchr(target, '/');
    if (!slash || slash[1] == '\0' || sb__ix_get(&b->r->by_model, sb_slice_cstr(target)))
        return;
    struct sb_slice pid = {target, (size_t)(slash - target)};
    const struct sb_provider *p = sb__ix_get(&b->r->by_provider, pid);
    if (!p)
        return;
    struct sb_model *m = sb_arena_calloc(b->a, sizeof(*m));
    m->id = target;
    m->provider = p;
    m->upstream_model = slash + 1;
    m->caps = SB_CAP_STREAMING;
    m->enabled = true;
    sb__ix_put(&b->r->by_model, m->id, m);
}

/* A model with fallbacks plans like a route over [itself, fallbacks...] in
 * that order (strategy "fallbacks", router/strategies.c), so breakers,
 * visibility and fit apply to its fallbacks as to a route's targets. */
static void build_fallbacks(struct builder *b, struct sb_model *m, const struct sb_store_model *sm)
{
    struct sb_route_entry *re = sb_arena_calloc(b->a, sizeof(*re));
    re->id = m->id;
    re->strategy = "fallbacks";
    re->targets = sb_arena_calloc(b->a, (sm->nfallbacks + 1) * sizeof(*re->targets));
    re->targets[re->ntargets++] = m->id;
    for (size_t t = 0; t < sm->nfallbacks; t++) {
        re->targets[re->ntargets] = dup(b->a, sm->fallbacks[t]);
        implicit_model(b, re->targets[re->ntargets++]);
    }
    m->fallbacks = re;
}

static void build_all_fallbacks(struct builder *b, const struct sb_store_entities *e)
{
    for (size_t i = 0; i < e->nmodels; i++) {
        const struct sb_store_model *sm = &e->models[i];
        struct sb_model *m = sm->nfallbacks && sm->id
                                 ? (struct sb_model *)sb__ix_get(&b->r->by_model,
                                                                 sb_slice_cstr(sm->id))
                                 : NULL;
        if (m && !m->fallbacks)
            build_fallbacks(b, m, sm);
    }
}

static void build_routes(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    r->routes = sb_arena_calloc(b->a, (e->nroutes + 1) * sizeof(*r->routes));
    sb__ix_init(b->a, &r->by_route, e->nroutes);
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct sb_store_route *sr = &e->routes[i];
        if (!sr->id)
            continue;
        struct sb_route_entry *re = &r->routes[r->nroutes++];
        re->id = dup(b->a, sr->id);
        re->strategy = dup(b->a, sr->strategy ? sr->strategy : "priority");
        re->targets = sb_arena_calloc(b->a, (sr->ntargets + 1) * sizeof(*re->targets));
        re->ntargets = sr->ntargets;
        re->cache = (struct sb_route_cache){sr->cache_ttl_s, sr->cache_shared, sr->cache_sampled};
        if (sr->weights) {
            int64_t *w = sb_arena_alloc(b->a, (sr->ntargets + 1) * sizeof(*w));
            memcpy(w, sr->weights, sr->ntargets * sizeof(*w));
            re->weights = w;
        }
        for (size_t t = 0; t < sr->ntargets; t++) {
            re->targets[t] = dup(b->a, sr->targets[t]);
            implicit_model(b, re->targets[t]);
        }
        sb__ix_put(&r->by_route, re->id, re);
    }
}

sb_err sb_registry_build_source(const struct sb_registry_source *src,
                                const struct sb_registry_keys *keys, struct sb_registry **out,
                                struct sb_error *err)
{
    struct sb_arena *a = sb_arena_create(64 * 1024);
    struct sb_registry *r = sb_arena_calloc(a, sizeof(*r));
    struct builder b = {.r = r, .a = a, .keys = keys};
    *out = NULL;
    r->arena = a;
    atomic_init(&r->refs, 1);
    sb_err rc = build_providers(&b, src->e, err);
    if (rc != SB_OK) {
        sb_arena_free(a);
        return rc;
    }
    build_models(&b, src->e);
    build_routes(&b, src->e);
    build_all_fallbacks(&b, src->e); /* after routes: their implicit models are known */
    sb__registry_build_experiments(&b, src->e); /* after routes: registry_experiments.c */
    sb__registry_build_identity(&b, src);
    *out = r;
    return SB_OK;
}

sb_err sb_registry_build(const struct sb_store_entities *e, const struct sb_master_key *mk,
                         struct sb_registry **out, struct sb_error *err)
{
    struct sb_registry_source src = {.e = e};
    struct sb_registry_keys keys = {.mk = mk};
    return sb_registry_build_source(&src, &keys, out, err);
}

sb_err sb_registry_load(struct sb_store *s, const struct sb_registry_keys *keys,
                        struct sb_registry **out, struct sb_error *err)
{
    struct sb_store_entities *e = NULL;
    struct sb_registry_source src = {0};
    *out = NULL;
    sb_err rc = sb_store_load(s, &e, err);
    if (rc == SB_OK)
        rc = sb_store_key_load_all(s, e->arena, (struct sb_store_api_key **)&src.keys, &src.nkeys,
                                   err);
    if (rc == SB_OK) /* appended (issue 7): limits of keys and users */
        rc = sb_store_limits_load_all(s, e->arena, (struct sb_store_limits_row **)&src.limits,
                                      &src.nlimits, err);
    src.e = e;
    if (rc == SB_OK)
        rc = sb_registry_build_source(&src, keys, out, err);
    sb_store_entities_free(e);
    return rc;
}

sb_err sb_registry_build_from_store(struct sb_store *s, struct sb_registry **out,
                                    struct sb_error *err)
{
    return sb_registry_load(s, NULL, out, err);
}
