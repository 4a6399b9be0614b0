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
#include "store/store.h"

/*
 * Builds a snapshot from e (borrowed; everything is copied). mk may be NULL:
 * a provider whose only credential is encrypted then gets none (warned).
 * Returns owned *out holding one reference: hand it to sb_registry_publish
 * (which takes it) or drop it with sb_registry_release. Fails only on a
 * credential that cannot be read (file: missing, undecryptable ciphertext).
 */
sb_err sb_registry_build(const struct sb_store_entities *e, const struct sb_master_key *mk,
                         struct sb_registry **out, struct sb_error *err);
/* Loads every row of s (sb_store_load), then sb_registry_build(rows, NULL, ...). */
sb_err sb_registry_build_from_store(struct sb_store *s, struct sb_registry **out,
                                    struct sb_error *err);
/* The same with the master key, for providers whose credential is stored encrypted. */
sb_err sb_registry_build_from_store_key(struct sb_store *s, const struct sb_master_key *mk,
                                        struct sb_registry **out, struct sb_error *err);

/* Enumeration (for /api/registry/status and listings); valid while the reference is held. */
size_t sb_registry_provider_count(const struct sb_registry *r);
const struct sb_provider *sb_registry_provider_at(const struct sb_registry *r, size_t i);
size_t sb_registry_route_count(const struct sb_registry *r);
const struct sb_route_entry *sb_registry_route_at(const struct sb_registry *r, size_t i);

#endif
