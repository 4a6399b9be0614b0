/* SPDX-License-Identifier: MIT */
/*
 * registry.c - immutable registry snapshots: build, publish, look up.
 *
 * A snapshot is one arena: arrays of providers, models and routes plus
 * three open-addressing hash indexes over them. Nothing in it changes after
 * the build, so any number of threads read it without locks; its secrets
 * are sb_secret objects whose wipe-and-free is an arena hook.
 *
 * Publication (why it is safe without a lock): the current pointer is an
 * atomic; a reader announces itself in `acquiring` before loading it and
 * leaves after taking its reference; a publisher swaps the pointer, then
 * waits until `acquiring` is 0 before dropping the old snapshot's
 * reference. All operations are seq_cst. If a reader loaded the old
 * pointer, its load came before the swap, so its announcement did too; the
 * publisher's reads of the counter come after the swap, so they see the
 * announcement until the reader's "leave", which follows (and, being a
 * release that the publisher's acquire-load reads from, happens before the
 * publisher's drop) its reference increment. So the old snapshot's count is
 * never 0 while a reader is between load and increment. Readers never wait;
 * a publisher spins (yielding) only while some reader is inside those three
 * instructions. A mutex would cost the same atomics on the hot path and
 * could put readers to sleep behind each other; per-thread caches (DESIGN
 * §8) can come later behind the same API if profiles ask for them.
 *
 * Chapters: snapshot · publication · hash index · building · lookups.
 */
#include "registry/registry.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "registry/config.h"
#include "registry/registry_build.h"

/* ---- snapshot ---- */

struct slot {
    const char *key; /* NULL = empty slot */
    size_t len;
    uint64_t hash;
    const void *val;
};

struct index {
    struct slot *slots; /* capacity mask + 1, a power of two */
    size_t mask;
};

struct sb_registry {
    atomic_long refs;              /* references held; freed at 0 */
    unsigned long generation;      /* set by publish */
    struct sb_arena *arena;        /* owns everything below */
    struct sb_provider *providers; /* enabled, with an adapter */
    size_t nproviders;
    struct sb_model *models; /* enabled models of those providers */
    size_t nmodels;
    struct sb_route_entry *routes;
    size_t nroutes;
    struct index by_model; /* model id and provider/upstream_model */
    struct index by_provider;
    struct index by_route;
};

static void free_snapshot(struct sb_registry *r)
{
    sb_arena_free(r->arena); /* runs the hooks that wipe the secrets */
}

/* ---- publication ---- */

static _Atomic(struct sb_registry *) current;
static atomic_long acquiring; /* readers between load and reference */
static atomic_ulong generations;

void sb_registry_release(struct sb_registry *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        free_snapshot(r);
}

/* Swaps in r (may be NULL) and drops the old snapshot once no reader can be
 * between loading it and referencing it (see the top of the file). */
static void swap_in(struct sb_registry *r)
{
    struct sb_registry *old = atomic_exchange(&current, r);
    while (atomic_load(&acquiring) != 0)
        sched_yield();
    sb_registry_release(old);
}

void sb_registry_publish(struct sb_registry *r)
{
    r->generation = atomic_fetch_add(&generations, 1) + 1;
    swap_in(r);
}

struct sb_registry *sb_registry_acquire(void)
{
    atomic_fetch_add(&acquiring, 1);
    struct sb_registry *r = atomic_load(&current);
    if (r)
        atomic_fetch_add(&r->refs, 1);
    atomic_fetch_sub(&acquiring, 1);
    return r;
}

void sb_registry_shutdown(void)
{
    swap_in(NULL);
}

unsigned long sb_registry_generation(const struct sb_registry *r)
{
    return r->generation;
}

/* ---- hash index ---- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Room for n keys at load factor <= 1/2. */
static void ix_init(struct sb_arena *a, struct index *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = sb_arena_calloc(a, cap * sizeof(*ix->slots));
    ix->mask = cap - 1;
}

static const void *ix_get(const struct index *ix, struct sb_slice key)
{
    uint64_t h = hash_bytes(key.p, key.len);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        const struct slot *s = &ix->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && s->len == key.len && memcmp(s->key, key.p, key.len) == 0)
            return s->val;
    }
}

/* Adds key -> val unless key is present (the first entry wins). key must
 * outlive the index. The caller sized the index for every key it adds. */
static void ix_put(struct index *ix, const char *key, const void *val)
{
    size_t len = strlen(key);
    uint64_t h = hash_bytes(key, len);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        struct slot *s = &ix->slots[i];
        if (s->key && s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return;
        if (!s->key) {
            *s = (struct slot){key, len, h, val};
            return;
        }
    }
}

/* ---- building ---- */

#define MAX_SKIPPED_TYPES 16

struct builder {
    struct sb_registry *r;
    struct sb_arena *a;
    const struct sb_master_key *mk;
    const char *skipped[MAX_SKIPPED_TYPES]; /* types without an adapter, for one warning each */
    size_t nskipped_by_type[MAX_SKIPPED_TYPES];
    size_t nskipped;
};

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

static sb_err resolve_ref(struct builder *b, const char *pid, const char *what, const char *ref,
                          struct sb_secret **out, struct sb_error *err)
{
    struct sb_error why = {0};
    struct sb_secret *s = NULL;
    if (sb_config_resolve_secret(ref, &s, &why) != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "provider %s: %s: %s", pid, what, why.msg);
    *out = keep_secret(b, s);
    return SB_OK;
}

static sb_err decrypt_credential(struct builder *b, const struct sb_store_provider *sp,
                                 struct sb_secret **out, struct sb_error *err)
{
    struct sb_error why = {0};
    struct sb_secret *s = NULL;
    char kid[17];
    if (!b->mk) {
        sb_warn("msg=\"provider has an encrypted credential but no master key was given\" "
                "provider=%s",
                sp->id);
        return SB_OK;
    }
    sb_keys_master_id(b->mk, kid);
    if (sp->key_id && strcmp(sp->key_id, kid) != 0)
        return sb_fail(err, SB_E_CONFIG,
                       "provider %s: credential was encrypted with master key %.16s, the current "
                       "key is %s (run rotate-key with the old key)",
                       sp->id, sp->key_id, kid);
    if (sb_keys_decrypt(b->mk, sb_slice_cstr(sp->key_ciphertext), sb_slice_cstr(sp->id), &s,
                        &why) != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "provider %s: %s", sp->id, why.msg);
    *out = keep_secret(b, s);
    return SB_OK;
}

static sb_err provider_credentials(struct builder *b, const struct sb_store_provider *sp,
                                   struct sb_provider *p, struct sb_error *err)
{
    sb_err rc = resolve_ref(b, sp->id, "api_key", sp->api_key, &p->api_key, err);
    if (rc == SB_OK && !sp->api_key && sp->key_ciphertext)
        rc = decrypt_credential(b, sp, &p->api_key, err);
    if (rc == SB_OK)
        rc = resolve_ref(b, sp->id, "aws_access_key_id", sp->aws_access_key_id,
                         &p->aws_access_key_id, err);
    if (rc == SB_OK)
        rc = resolve_ref(b, sp->id, "aws_secret_access_key", sp->aws_secret_access_key,
                         &p->aws_secret_access_key, err);
    if (rc == SB_OK)
        rc = resolve_ref(b, sp->id, "aws_session_token", sp->aws_session_token,
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
    ix_init(b->a, &r->by_provider, e->nproviders);
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
        if (rc != SB_OK)
            return rc;
        if (!p->api_key && p->auth != SB_AUTH_SIGV4)
            p->auth = SB_AUTH_NONE;
        ix_put(&r->by_provider, p->id, p);
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
           (c->embeddings ? SB_CAP_EMBEDDINGS : 0);
}

/* Indexes m under its id and under provider/upstream_model. */
static void index_model(struct builder *b, const struct sb_model *m)
{
    ix_put(&b->r->by_model, m->id, m);
    ix_put(&b->r->by_model, sb_arena_printf(b->a, "%s/%s", m->provider->id, m->upstream_model), m);
}

static void build_models(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    size_t ntargets = 0;
    for (size_t i = 0; i < e->nroutes; i++)
        ntargets += e->routes[i].ntargets;
    r->models = sb_arena_calloc(b->a, (e->nmodels + 1) * sizeof(*r->models));
    ix_init(b->a, &r->by_model, 2 * e->nmodels + ntargets);
    for (size_t i = 0; i < e->nmodels; i++) {
        const struct sb_store_model *sm = &e->models[i];
        const struct sb_provider *p =
            sm->provider ? ix_get(&r->by_provider, sb_slice_cstr(sm->provider)) : NULL;
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
        index_model(b, m);
    }
}

/* A route target provider/upstream_model that names no model: make one,
 * so the router can resolve every target of a route the same way. */
static void implicit_model(struct builder *b, const char *target)
{
    const char *slash = strchr(target, '/');
    if (!slash || slash[1] == '\0' || ix_get(&b->r->by_model, sb_slice_cstr(target)))
        return;
    struct sb_slice pid = {target, (size_t)(slash - target)};
    const struct sb_provider *p = ix_get(&b->r->by_provider, pid);
    if (!p)
        return;
    struct sb_model *m = sb_arena_calloc(b->a, sizeof(*m));
    m->id = target;
    m->provider = p;
    m->upstream_model = slash + 1;
    m->caps = SB_CAP_STREAMING;
    m->enabled = true;
    ix_put(&b->r->by_model, m->id, m);
}

static void build_routes(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    r->routes = sb_arena_calloc(b->a, (e->nroutes + 1) * sizeof(*r->routes));
    ix_init(b->a, &r->by_route, e->nroutes);
    for (size_t i = 0; i < e->nroutes; i++) {
        const struct sb_store_route *sr = &e->routes[i];
        if (!sr->id)
            continue;
        struct sb_route_entry *re = &r->routes[r->nroutes++];
        re->id = dup(b->a, sr->id);
        re->strategy = dup(b->a, sr->strategy ? sr->strategy : "priority");
        re->targets = sb_arena_calloc(b->a, (sr->ntargets + 1) * sizeof(*re->targets));
        re->ntargets = sr->ntargets;
        for (size_t t = 0; t < sr->ntargets; t++) {
            re->targets[t] = dup(b->a, sr->targets[t]);
            implicit_model(b, re->targets[t]);
        }
        ix_put(&r->by_route, re->id, re);
    }
}

sb_err sb_registry_build(const struct sb_store_entities *e, const struct sb_master_key *mk,
                         struct sb_registry **out, struct sb_error *err)
{
    struct sb_arena *a = sb_arena_create(64 * 1024);
    struct sb_registry *r = sb_arena_calloc(a, sizeof(*r));
    struct builder b = {.r = r, .a = a, .mk = mk};
    *out = NULL;
    r->arena = a;
    atomic_init(&r->refs, 1);
    sb_err rc = build_providers(&b, e, err);
    if (rc != SB_OK) {
        free_snapshot(r);
        return rc;
    }
    build_models(&b, e);
    build_routes(&b, e);
    *out = r;
    return SB_OK;
}

sb_err sb_registry_build_from_store_key(struct sb_store *s, const struct sb_master_key *mk,
                                        struct sb_registry **out, struct sb_error *err)
{
    struct sb_store_entities *e = NULL;
    *out = NULL;
    sb_err rc = sb_store_load(s, &e, err);
    if (rc == SB_OK)
        rc = sb_registry_build(e, mk, out, err);
    sb_store_entities_free(e);
    return rc;
}

sb_err sb_registry_build_from_store(struct sb_store *s, struct sb_registry **out,
                                    struct sb_error *err)
{
    return sb_registry_build_from_store_key(s, NULL, out, err);
}

/* ---- lookups ---- */

const struct sb_model *sb_registry_find_model(const struct sb_registry *r, struct sb_slice name)
{
    /* Model ids never contain '/', and provider ids never do either, so the
     * key "provider/upstream" is the split at the first '/' by construction
     * (the upstream part may hold more slashes). */
    return ix_get(&r->by_model, name);
}

const struct sb_provider *sb_registry_find_provider(const struct sb_registry *r, struct sb_slice id)
{
    return ix_get(&r->by_provider, id);
}

const struct sb_route_entry *sb_registry_find_route(const struct sb_registry *r, struct sb_slice id)
{
    return ix_get(&r->by_route, id);
}

size_t sb_registry_model_count(const struct sb_registry *r)
{
    return r->nmodels;
}

const struct sb_model *sb_registry_model_at(const struct sb_registry *r, size_t i)
{
    return i < r->nmodels ? &r->models[i] : NULL;
}

size_t sb_registry_provider_count(const struct sb_registry *r)
{
    return r->nproviders;
}

const struct sb_provider *sb_registry_provider_at(const struct sb_registry *r, size_t i)
{
    return i < r->nproviders ? &r->providers[i] : NULL;
}

size_t sb_registry_route_count(const struct sb_registry *r)
{
    return r->nroutes;
}

const struct sb_route_entry *sb_registry_route_at(const struct sb_registry *r, size_t i)
{
    return i < r->nroutes ? &r->routes[i] : NULL;
}

/* ---- suggestions ---- */

#define SUGGEST_LEN 64 /* characters compared; keeps the cost bounded per candidate */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Case-insensitive Levenshtein distance over the first SUGGEST_LEN bytes. */
static size_t distance(struct sb_slice a, const char *b)
{
    size_t n = a.len < SUGGEST_LEN ? a.len : SUGGEST_LEN;
    size_t m = strnlen(b, SUGGEST_LEN);
    size_t prev[SUGGEST_LEN + 1], cur[SUGGEST_LEN + 1];
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t sub = prev[j - 1] + (lower(a.p[i - 1]) != lower(b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (m + 1) * sizeof(size_t));
    }
    return prev[m];
}

static size_t common_prefix(struct sb_slice a, const char *b)
{
    size_t i = 0;
    while (i < a.len && b[i] && lower(a.p[i]) == lower(b[i]))
        i++;
    return i;
}

struct candidate {
    const char *id;
    size_t score; /* lower is closer */
};

/* Scores id against name; false when it is not close enough to suggest. */
static bool score(struct sb_slice name, const char *id, size_t *out)
{
    size_t d = distance(name, id);
    size_t pre = common_prefix(name, id);
    size_t limit = name.len / 3 > 2 ? name.len / 3 : 2;
    bool prefix = pre >= 3 && (pre == name.len || id[pre] == '\0');
    if (d > limit && !prefix)
        return false;
    *out = 4 * d + (pre >= 3 ? 0 : 2);
    return true;
}

/* Keeps the best max candidates in c (sorted), by insertion. */
static void consider(struct candidate *c, size_t *n, size_t max, const char *id, size_t s)
{
    size_t i = *n;
    while (i > 0 && (c[i - 1].score > s || (c[i - 1].score == s && strcmp(c[i - 1].id, id) > 0)))
        i--;
    if (i >= max)
        return;
    size_t last = *n < max ? *n : max - 1;
    memmove(&c[i + 1], &c[i], (last - i) * sizeof(*c));
    c[i] = (struct candidate){id, s};
    if (*n < max)
        (*n)++;
}

size_t sb_registry_suggest(const struct sb_registry *r, struct sb_slice name, const char **out,
                           size_t max)
{
    struct candidate best[16];
    size_t n = 0, s = 0;
    if (max > 16)
        max = 16;
    if (max == 0 || name.len == 0)
        return 0;
    for (size_t i = 0; i < r->nmodels; i++)
        if (score(name, r->models[i].id, &s))
            consider(best, &n, max, r->models[i].id, s);
    for (size_t i = 0; i < r->nroutes; i++)
        if (score(name, r->routes[i].id, &s))
            consider(best, &n, max, r->routes[i].id, s);
    for (size_t i = 0; i < n; i++)
        out[i] = best[i].id;
    return n;
}
