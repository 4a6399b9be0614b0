/* SPDX-License-Identifier: MIT */
/*
 * registry_int.h - the snapshot's layout, shared by the registry's files
 * (src/registry/ only): registry.c publishes and looks up, registry_build.c
 * builds, registry_identity.c adds who may call (virtual keys, personal
 * credentials). Nothing here changes once a snapshot is built.
 */
#ifndef SB_REGISTRY_REGISTRY_INT_H
#define SB_REGISTRY_REGISTRY_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "registry/registry.h"
#include "registry/registry_build.h"

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
    struct sb_client_key *keys; /* live virtual keys (registry_identity.c) */
    size_t nkeys;
    struct index by_key;      /* "sha256:<hex>" of a key -> struct sb_client_key */
    struct index by_personal; /* "provider/user" -> struct sb_secret (a user's own key) */
    /* Appended for A/B experiments (registry_experiments.c). */
    struct sb_experiment_entry *experiments;
    size_t nexperiments;
    struct index by_experiment;
    /* Appended (issue 7): "k:<key id>" and "u:<username>" -> struct sb_client_limits */
    struct index by_limits;
};

/* The builder's state (registry_build.c, registry_identity.c). */
#define MAX_SKIPPED_TYPES 16
struct builder {
    struct sb_registry *r;
    struct sb_arena *a;
    const struct sb_registry_keys *keys;    /* how stored credentials are decrypted */
    const char *skipped[MAX_SKIPPED_TYPES]; /* types without an adapter, for one warning each */
    size_t nskipped_by_type[MAX_SKIPPED_TYPES];
    size_t nskipped;
};

/* Decrypts a stored credential of (provider, user NULL = system) into an
 * arena-owned secret (wiped with the snapshot), or *out NULL with a warning
 * when no key can (a bad row must not stop the rest of the registry). */
void sb__registry_decrypt(struct builder *b, const char *provider, const char *user,
                          const char *label, const char *key_id, const char *ciphertext,
                          struct sb_secret **out);
/* Resolves a reference (env:NAME, file:PATH; NULL = none) into an
 * arena-owned secret; a failure names provider pid and the key what. */
sb_err sb__registry_resolve_ref(struct builder *b, const char *pid, const char *what,
                                const char *ref, struct sb_secret **out, struct sb_error *err);
/* p's key pool (registry_keys.c): the primary key already in p->api_key,
 * then sp's config references, then e's stored pool rows of sp, each marked
 * dead when e->dead_keys names it with the same fingerprint. */
sb_err sb__registry_build_pool(struct builder *b, const struct sb_store_entities *e,
                               const struct sb_store_provider *sp, struct sb_provider *p,
                               struct sb_error *err);
/* Adds the personal credentials of e and the live virtual keys to b's snapshot. */
void sb__registry_build_identity(struct builder *b, const struct sb_registry_source *src);

/* Adds e's experiments to b's snapshot (after models and routes: an id they
 * hold is skipped). registry_experiments.c. */
void sb__registry_build_experiments(struct builder *b, const struct sb_store_entities *e);

/* ---- hash index (registry.c) ---- */

uint64_t sb__hash_bytes(const char *p, size_t n);
/* Room for n keys at load factor <= 1/2. */
void sb__ix_init(struct sb_arena *a, struct index *ix, size_t n);
const void *sb__ix_get(const struct index *ix, struct sb_slice key);
/* Adds key -> val unless key is present (the first entry wins). key must
 * outlive the index. The caller sized the index for every key it adds. */
void sb__ix_put(struct index *ix, const char *key, const void *val);

#endif
