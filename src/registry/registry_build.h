/* SPDX-License-Identifier: MIT */
/*
 * registry_build.h - making registry snapshots (registry.h is reading them).
 *
 * A build turns store rows into a snapshot the data plane can use as is:
 * each provider gets its adapter (sb_provider_ops_find) and its resolved
 * credentials (env:/file: references via sb_config_resolve_secret, or the
 * encrypted system credential via the master key, associated data = the
 * provider id). Everything lives in one arena owned by the snapshot; the
 * credentials are wiped when it is freed.
 *
 * What a snapshot holds is what the data plane may use: enabled providers
 * whose type has an adapter, and the enabled models of those. A provider
 * whose type has no adapter yet is skipped with one warning per type, not
 * an error. Routes are kept as written; a target "provider/upstream_model"
 * that names no model gets an implicit model (no pricing, streaming only)
 * so that sb_registry_find_model() resolves every route target it can.
 */
#ifndef SB_REGISTRY_REGISTRY_BUILD_H
#define SB_REGISTRY_REGISTRY_BUILD_H

#include "crypto/keys.h"
#include "registry/registry.h"
#include "store/identity.h"
#include "store/quota.h"
#include "store/store.h"

/* How stored credentials are decrypted: with a keyring (each row names the
 * key that encrypted it; both keys of a rotation are loaded), or a single
 * master key (tests, tools). Neither: stored credentials are skipped. */
struct sb_registry_keys {
    const struct sb_keyring *kr;
    const struct sb_master_key *mk;
};

/* What a snapshot is built from; borrowed, everything is copied. */
struct sb_registry_source {
    const struct sb_store_entities *e;   /* providers, models, routes, personal credentials */
    const struct sb_store_api_key *keys; /* virtual keys; revoked, expired-owner ones skipped */
    size_t nkeys;
    /* Appended (issue 7): limits of keys and users (store/quota.h); may be NULL. */
    const struct sb_store_limits_row *limits;
    size_t nlimits;
};

/*
 * Builds a snapshot. Returns owned *out holding one reference: hand it to
 * sb_registry_publish (which takes it) or drop it with sb_registry_release.
 * Fails only on a system credential that cannot be read (file: missing,
 * undecryptable ciphertext); a user's undecryptable credential is skipped
 * with a warning, so one bad row cannot stop every other change.
 */
sb_err sb_registry_build_source(const struct sb_registry_source *src,
                                const struct sb_registry_keys *keys, struct sb_registry **out,
                                struct sb_error *err);
/* The same from entities alone, with one master key (may be NULL). */
sb_err sb_registry_build(const struct sb_store_entities *e, const struct sb_master_key *mk,
                         struct sb_registry **out, struct sb_error *err);
/* Loads every row of s (registry and virtual keys) and builds from them. */
sb_err sb_registry_load(struct sb_store *s, const struct sb_registry_keys *keys,
                        struct sb_registry **out, struct sb_error *err);
/* sb_registry_load without keys. */
sb_err sb_registry_build_from_store(struct sb_store *s, struct sb_registry **out,
                                    struct sb_error *err);

/* Enumeration (for /api/registry/status and listings); valid while the reference is held. */
size_t sb_registry_provider_count(const struct sb_registry *r);
const struct sb_provider *sb_registry_provider_at(const struct sb_registry *r, size_t i);
size_t sb_registry_route_count(const struct sb_registry *r);
const struct sb_route_entry *sb_registry_route_at(const struct sb_registry *r, size_t i);

#endif
