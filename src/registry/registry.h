/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the immutable registry snapshot the data plane reads.
 *
 * A snapshot holds every provider, model and route, built once (from the
 * store, which the config file seeds with system entries) and never changed
 * afterwards. A reload builds a new snapshot and publishes it atomically; a
 * request holds a reference from start to end, so a swap never frees what
 * a request is reading. Reading the current snapshot costs an atomic load
 * and a reference increment, or through a worker's lease book (below) an
 * atomic load and a count in the worker's own memory; no locks on the hot
 * path.
 */
#ifndef SB_REGISTRY_REGISTRY_H
#define SB_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "provider/provider.h"

struct sb_registry;

/* A route's response cache (issue 7 part 9, router/cache.h); ttl_s == 0: off. */
struct sb_route_cache {
    int64_t ttl_s; /* how long an answer is served from the cache */
    bool shared;   /* one entry for every tenant: an admin's explicit choice */
    bool sampled;  /* also cache requests that sample (temperature absent or > 0) */
};

struct sb_route_entry {
    const char *id;       /* alias clients send */
    const char *strategy; /* priority | weighted | least-latency | least-busy | cost */
    const char **targets; /* model id or provider/upstream_model, as written */
    size_t ntargets;
    const int64_t *weights;      /* ntargets weights for strategy weighted; NULL = all 1 */
    struct sb_route_cache cache; /* appended for the response cache */
};

/* Appended (issue 7 parts 4-5): what an admin allows one virtual key or one
 * user (router/limits.h enforces it). Every field 0 = no limit of that kind. */
enum sb_budget_period { SB_BUDGET_NONE, SB_BUDGET_DAY, SB_BUDGET_MONTH }; /* UTC periods */
struct sb_client_limits {
    int64_t rpm;       /* requests per minute */
    int64_t tpm;       /* tokens (prompt + completion) per minute */
    double budget_usd; /* spend per period */
    enum sb_budget_period period;
};

/* A live virtual key (revoked keys and keys of disabled users are not in a snapshot). */
struct sb_client_key {
    const char *id;      /* the row id in decimal: usage_logs.key_id */
    const char *name;    /* free text */
    const char *user;    /* owner's username; NULL = created with the admin token, no user */
    const char **models; /* allowed model or route ids; nmodels == 0: all the owner sees */
    size_t nmodels;
    int64_t expires_at_ms;          /* Unix ms, 0 = never; checked per request */
    struct sb_client_limits limits; /* appended (issue 7): all 0 = none */
};

/* Publishes r as the current snapshot, taking ownership; the previous one is
 * released (freed when its last reader lets go). */
void sb_registry_publish(struct sb_registry *r);
/* Returns a reference to the current snapshot (release with sb_registry_release), or NULL before
 * the first publish. */
struct sb_registry *sb_registry_acquire(void);
void sb_registry_release(struct sb_registry *r);
/* Drops the published snapshot (shutdown). */
void sb_registry_shutdown(void);

/* A lease book for one thread (a worker loop): requests lease the current
 * snapshot through it, and while one of its leases is out it holds a single
 * reference for all of them, so a lease on a busy worker writes only the
 * thread's own memory instead of the snapshot's shared counters (DESIGN.md
 * §7, "Many cores"). When a book's last lease of a snapshot comes back the
 * reference goes too: an idle worker pins no old snapshot, whose secrets
 * are wiped when it is freed. Not thread-safe: lease and return on the
 * thread that owns the book. */
struct sb_registry_book;
/* Returns owned (free with sb_registry_book_free, once every lease is back). */
struct sb_registry_book *sb_registry_book_create(void);
/* Accepts NULL. */
void sb_registry_book_free(struct sb_registry_book *b);
/* The current snapshot, valid until sb_registry_book_return(b, r); NULL
 * before the first publish. b NULL: a plain sb_registry_acquire. */
struct sb_registry *sb_registry_book_lease(struct sb_registry_book *b);
/* Gives back a lease from sb_registry_book_lease(b); r may be NULL. */
void sb_registry_book_return(struct sb_registry_book *b, struct sb_registry *r);

/* Lookups; results valid while the reference is held. */
/* By model id, or by "provider/upstream_model"; NULL if unknown. Disabled models and models of
 * disabled providers are not found. */
const struct sb_model *sb_registry_find_model(const struct sb_registry *r, struct sb_slice name);
const struct sb_provider *sb_registry_find_provider(const struct sb_registry *r,
                                                    struct sb_slice id);
const struct sb_route_entry *sb_registry_find_route(const struct sb_registry *r,
                                                    struct sb_slice id);
size_t sb_registry_model_count(const struct sb_registry *r);
const struct sb_model *sb_registry_model_at(const struct sb_registry *r, size_t i);
/* Up to max model and route ids closest to name (edit distance / common prefix), best first,
 * among those user may see (NULL: all). */
size_t sb_registry_suggest(const struct sb_registry *r, struct sb_slice name, const char *user,
                           const char **out, size_t max);
/* The live key whose stored hash is hash_text ("sha256:<hex>", sb_vkey_hash_format), or NULL. */
const struct sb_client_key *sb_registry_find_key(const struct sb_registry *r,
                                                 struct sb_slice hash_text);
/* Whether key k may call name (a model or route id as the client sent it). */
bool sb_registry_key_allows(const struct sb_client_key *k, struct sb_slice name);
/* user's own credential for provider, or NULL. */
const struct sb_secret *sb_registry_personal_key(const struct sb_registry *r, const char *provider,
                                                 const char *user);
/* A personal model is visible to its owner only; user NULL (the admin token) sees all. */
bool sb_registry_model_visible(const struct sb_model *m, const char *user);

/* Appended (issue 7): the limits an admin set on user, or NULL when none (or user NULL). */
const struct sb_client_limits *sb_registry_user_limits(const struct sb_registry *r,
                                                       const char *user);

/* A counter that grows with every publish (for /api/registry/status and tests). */
unsigned long sb_registry_generation(const struct sb_registry *r);

/* ---- A/B experiments (issue 7 part 3; registry_experiments.c) ---- */

enum sb_experiment_status {
    SB_EXPERIMENT_ACTIVE, /* traffic is split between the variants */
    SB_EXPERIMENT_PAUSED, /* every request gets the first variant, uncounted */
    SB_EXPERIMENT_ENDED,  /* as paused */
};

struct sb_experiment_variant {
    const char *name;   /* usage_logs.variant and x-switchboard-variant */
    const char *target; /* a model id, provider/upstream_model or route id, as written */
    int64_t weight;     /* >= 0 */
};

struct sb_experiment_entry {
    const char *id; /* what clients send as model; usage_logs.route of its requests */
    enum sb_experiment_status status;
    const struct sb_experiment_variant *variants; /* nvariants >= 1; [0] is the control */
    size_t nvariants;
    int64_t total_weight; /* sum of the weights, > 0 */
};

/* The experiment called name, or NULL. An experiment whose id is also a
 * model or route id is left out of the snapshot (with a warning when it is
 * built): a model or route of that name wins. */
const struct sb_experiment_entry *sb_registry_find_experiment(const struct sb_registry *r,
                                                              struct sb_slice name);
size_t sb_registry_experiment_count(const struct sb_registry *r);

#endif
