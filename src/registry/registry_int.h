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
};

/* ---- hash index (registry.c) ---- */

uint64_t sb__hash_bytes(const char *p, size_t n);
/* Room for n keys at load factor <= 1/2. */
void sb__ix_init(struct sb_arena *a, struct index *ix, size_t n);
const void *sb__ix_get(const struct index *ix, struct sb_slice key);
/* Adds key -> val unless key is present (the first entry wins). key must
 * outlive the index. The caller sized the index for every key it adds. */
void sb__ix_put(struct index *ix, const char *key, const void *val);

#endif
