/* SPDX-License-Identifier: MIT */
/*
 * store.h - the database plug point (SQLite now, PostgreSQL later).
 *
 * Same shape as every plug point (STYLE.md practice 3): a backend file
 * (store/sqlite.c) holds a `static const struct sb_store_ops` and an open
 * function returning `struct sb_store *` whose first member is the base.
 * sb_store_open() picks the backend from the URL scheme.
 *
 * The entity structs below are the plain data the config file produces and
 * the store loads back; the router turns them into a registry snapshot. They
 * carry credential *references* (env:NAME, file:PATH), never secrets; an
 * API-stored credential reaches the store only as ciphertext plus its masked
 * display form (struct sb_store_credential).
 *
 * The registry operations (the control plane's CRUD, backed by
 * sqlite_registry.c):
 *   - create / update / delete / get / list for providers, models, routes and
 *     templates; lists filter (struct sb_store_filter) and page, and report
 *     the total number of matches;
 *   - toggle (provider, model), model priority, bulk reorder, per-provider
 *     champion and default model;
 *   - credentials: put (upsert by provider + user), delete, get, list;
 *   - the provider test result, provider stats from usage_logs;
 *   - rekey: re-encrypt every credential in one transaction through a
 *     callback, so the store never sees a plaintext key;
 *   - registry_version: a counter in settings that every registry mutation
 *     (sync_system included) bumps in the same transaction; a second process
 *     polls it to notice changes.
 * Rules every backend keeps:
 *   - identifiers: providers and templates [a-z0-9][a-z0-9._-]* (at most 64
 *     characters); models and routes [A-Za-z0-9._:-]+ (at most 128), as the
 *     config file allows. A bad one is SB_E_BAD_REQUEST with field "id";
 *   - a duplicate identifier is SB_E_CONFLICT with field "id"; an unknown one
 *     is SB_E_NOT_FOUND; a model naming an unknown provider is
 *     SB_E_BAD_REQUEST with field "provider";
 *   - system entries (is_system, from the config file) refuse update and
 *     delete with SB_E_CONFLICT ("comes from the config file"), but accept
 *     toggle, priority, reorder, champion and default; those choices are
 *     recorded as API overrides and survive the next sync_system;
 *   - API writes never create system entries: is_system in the input is
 *     ignored and stored as 0;
 *   - deleting a provider that still has models fails with SB_E_CONFLICT
 *     unless the caller asks for cascade; cascade removes its models and
 *     credentials, but never a system model (still SB_E_CONFLICT). Routes
 *     name targets by string and are left alone (a dangling target is skipped
 *     when the registry is built);
 *   - visibility: `visible_to` = a user id shows global rows (owner NULL)
 *     plus that user's own; NULL shows everything (admins). A row hidden by
 *     visibility reads as SB_E_NOT_FOUND.
 * Unless a prototype says otherwise, results are allocated from the arena
 * the caller passes (valid until it is freed) and inputs are borrowed.
 *
 * A store handle is not thread-safe: one thread uses it at a time (the
 * usage writer opens its own). The data plane never calls it.
 */
#ifndef SB_STORE_STORE_H
#define SB_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct sb_usage;
struct sb_audit; /* store/identity.h */

/* ---- entities ---- */

struct sb_store_kv {
    const char *name;
    const char *value;
};

struct sb_store_caps {
    bool streaming, tools, vision, json_mode, embeddings;
    /* Appended (issue 6): the entry had a capabilities block. false = unknown, and the
     * proxy refuses nothing for want of a capability; stored as "{}". */
    bool declared;
};

struct sb_store_provider {
    const char *id;                /* identifier, [a-z0-9-]+ */
    const char *type;              /* wire format: openai | anthropic | ... */
    const char *name;              /* display name */
    const char *base_url;          /* http(s)://..., no trailing slash */
    const char *auth_method;       /* bearer | api_key | none | aws_sigv4 (informative) */
    const char *api_key;           /* reference env:NAME | file:PATH, NULL = none */
    const char *aws_access_key_id; /* references, NULL = none */
    const char *aws_secret_access_key;
    const char *aws_session_token;
    struct sb_store_kv *headers; /* extra upstream headers */
    size_t nheaders;
    int64_t rpm, tpm;           /* rate limits, 0 = none */
    int64_t timeout_ms;         /* 0 = none */
    int64_t connect_timeout_ms; /* 0 = default */
    int64_t idle_timeout_ms;    /* longest upstream silence within a response, 0 = none */
    const char *api_version;    /* azure, NULL = none */
    const char *region;         /* bedrock, NULL = none */
    bool enabled;               /* status = active */
    bool is_system;             /* from the config file */
    /* Filled by load only: the system credential stored encrypted (API-created providers). */
    const char *key_ciphertext; /* base64 nonce||ct||tag, NULL = none */
    const char *key_id;         /* which master key encrypted it */
    /* Added for the control plane (issue 5); zero/NULL from the config file. */
    const char *description; /* NULL = none */
    const char *created_by;  /* user id that created it over the API, NULL = config/admin token */
    int64_t created_at;      /* Unix ms; read-only (the store sets it) */
    int64_t updated_at;      /* Unix ms; read-only */
    int64_t last_tested;     /* Unix ms of the last connection test, 0 = never; read-only */
    const char *test_result; /* JSON text the tester wrote, NULL = never; read-only */
    const char *key_masked;  /* the system credential's display form (sk-...abcd), NULL =
                                none; read-only (written by credential_put) */
    bool personal_keys_required; /* no system-key fallback for users (stored in options) */
    const char *template_id;     /* config file only: the built-in template it starts from */
    int64_t max_concurrency;     /* requests in flight at once, 0 = no cap (stored in options) */
    const char *transport;       /* http:// through auto | native | curl, NULL = auto (options) */
    /* Appended for key pools (issue 7): more keys, by reference (the config
     * file's api_keys; stored in auth_config). API-sent pool keys are rows
     * of provider_credentials instead (struct sb_store_credential.label). */
    struct sb_store_key_ref *api_keys;
    size_t napi_keys;
};

/* A pool key by reference (config file): label [a-z0-9_-]{1,32}, key
 * env:NAME | file:PATH, weight 1..1000000. */
struct sb_store_key_ref {
    const char *label;
    const char *key;
    int64_t weight;
};

#define SB_STORE_FALLBACKS_MAX 15

struct sb_store_model {
    const char *id;             /* identifier clients send */
    const char *provider;       /* provider identifier */
    const char *upstream_model; /* what the upstream calls it */
    const char *name;           /* display name */
    int64_t context_length;     /* 0 = unknown */
    int64_t max_output_tokens;  /* 0 = unknown */
    struct sb_store_caps caps;
    double input_per_mtok, output_per_mtok; /* USD per million tokens */
    int64_t fallback_priority;              /* lower is tried first */
    bool enabled; /* = status != "inactive" on read; on write used only when status is NULL */
    bool is_system;
    /* Added for the control plane (issue 5); zero/NULL from the config file. */
    const char *description; /* NULL = none */
    const char *status;      /* active | inactive | deprecated; NULL on write = from enabled */
    bool is_default;         /* the provider's default model (at most one per provider) */
    bool is_champion;        /* the provider's champion model (at most one per provider) */
    const char *owner;       /* user id of a personal model, NULL = global */
    int64_t created_at;      /* Unix ms; read-only */
    int64_t updated_at;      /* Unix ms; read-only */
    /* Added for routing (issue 7): what a request naming this model tries
     * after it, in order (model ids or provider/upstream_model); at most
     * SB_STORE_FALLBACKS_MAX (a plan holds the model and its fallbacks). */
    const char **fallbacks;
    size_t nfallbacks;
    int64_t last_used_at; /* Unix ms of the newest usage row, 0 = never; read-only */
};

/* A model's newest use in a batch of usage rows (sb_store_write_usage). */
struct sb_store_model_use {
    const char *model; /* identifier */
    int64_t ts_ms;
};

struct sb_store_key_use; /* store/identity.h */

/* One usage transaction (sb_store_write_usage): the usage writer's batch,
 * or a batch replayed from its journal with the replay mark. */
struct sb_store_usage_tx {
    const struct sb_usage *rows; /* usage_logs rows [0..n) */
    size_t n;
    const struct sb_audit *audits; /* audit_log records [0..na) */
    size_t na;
    const struct sb_store_key_use *keys; /* api_keys.last_used_at raised [0..nkeys) */
    size_t nkeys;
    const struct sb_store_model_use *models; /* models.last_used_at raised [0..nmodels) */
    size_t nmodels;
    const char *mark_key; /* settings[mark_key] = mark_value; NULL = no mark */
    const char *mark_value;
};

struct sb_store_route {
    const char *id;       /* alias clients send */
    const char *strategy; /* priority | weighted | least-latency | cost */
    const char **targets; /* model id or provider/upstream_model */
    size_t ntargets;
    bool is_system;
    /* Added for the control plane (issue 5). */
    const int64_t *weights; /* ntargets weights (>= 0) for strategy weighted, NULL = all 1 */
    size_t nweights;        /* as the config walker read them (checked == ntargets) */
    int64_t created_at;     /* Unix ms; read-only */
    int64_t updated_at;     /* Unix ms; read-only */
    /* Added for the response cache (issue 7 part 9): the `cache` block, kept in routes.options. */
    int64_t cache_ttl_s; /* 0 = no cache */
    bool cache_shared;   /* one entry for every tenant */
    bool cache_sampled;  /* also cache requests that sample */
};

/* A provider blueprint: applying it creates a provider and its models. */
struct sb_store_template {
    const char *id;          /* identifier */
    const char *name;        /* display name, NULL on write = id */
    const char *description; /* NULL = none */
    const char *type;        /* wire format of the provider it creates */
    const char *base_url;    /* NULL = the user supplies it on apply */
    const char *auth_method; /* NULL on write = bearer */
    const char *options;     /* JSON object text (provider options), NULL = {} */
    const char *models;      /* JSON array text of model entries to create, NULL = [] */
    bool is_system;          /* shipped with switchboard; read-only */
    const char *owner;       /* user id, NULL = global */
    int64_t created_at;      /* Unix ms; read-only */
    int64_t updated_at;      /* Unix ms; read-only */
};

/* An API-stored provider key. Only ever ciphertext: the caller encrypts with
 * the master key (AAD built from provider identifier + user) and masks. */
#define SB_STORE_KEY_ID_MAX 64 /* room for a key id, NUL included */
struct sb_store_credential {
    const char *provider;       /* provider identifier */
    const char *user;           /* user id, NULL = the system credential */
    const char *key_ciphertext; /* base64 nonce||ct||tag */
    const char *key_id;         /* master key id, shorter than SB_STORE_KEY_ID_MAX */
    const char *masked;         /* display form, sk-...abcd */
    int64_t created_at;         /* Unix ms; read-only */
    int64_t updated_at;         /* Unix ms; read-only */
    /* Appended for key pools (issue 7): a system credential's name in its
     * provider's pool, [a-z0-9_-]{1,32}; NULL or "" = the primary key (the
     * only kind a user has). weight >= 1 shares traffic (0 on write = 1). */
    const char *label;
    int64_t weight;
};

/* A pool key an upstream refused (401/402/403): dead until an admin
 * replaces the key (its fingerprint changes) or revives it. */
struct sb_store_dead_key {
    const char *provider;    /* provider identifier */
    const char *label;       /* "" = the primary key */
    const char *fingerprint; /* 16 hex digits of SHA-256 of the key (crypto/secret.h) */
    const char *reason;      /* "401 invalid_api_key", for the admin */
    int64_t at;              /* Unix ms */
};

/* Usage of one provider over a time window (from usage_logs). */
struct sb_store_provider_stats {
    const char *provider;  /* identifier */
    int64_t requests;      /* rows in the window */
    int64_t errors;        /* rows whose status is not "ok" */
    double latency_p50_ms; /* nearest-rank percentiles, 0 when no rows */
    double latency_p95_ms;
    int64_t prompt_tokens; /* sums over rows that know them (-1 = unknown is skipped) */
    int64_t completion_tokens;
    double cost_usd;
};

/*
 * Usage analytics (GET /api/usage): what a report groups by. The string
 * dimensions are usage_logs columns and double as filters (struct
 * sb_store_usage_query.eq); HOUR and DAY are UTC time buckets of ts.
 */
enum sb_store_usage_by {
    SB_STORE_USAGE_BY_NONE = 0, /* one total row */
    SB_STORE_USAGE_BY_PROVIDER,
    SB_STORE_USAGE_BY_MODEL,
    SB_STORE_USAGE_BY_USER, /* user_id: the username, NULL for the admin token */
    SB_STORE_USAGE_BY_KEY,  /* key_id: the virtual key's row id, NULL for none */
    SB_STORE_USAGE_BY_ROUTE,
    SB_STORE_USAGE_BY_VARIANT,
    SB_STORE_USAGE_BY_HOUR,
    SB_STORE_USAGE_BY_DAY,
    SB_STORE_USAGE_NBY
};
/* The string dimensions are PROVIDER..VARIANT: eq[] has a slot for each (0 unused). */
#define SB_STORE_USAGE_NEQ (SB_STORE_USAGE_BY_VARIANT + 1)
#define SB_STORE_USAGE_MAX_GROUPS 1000    /* default bound on the groups returned */
#define SB_STORE_USAGE_MAX_ROWS 2000000LL /* default bound on the rows one report reads */

struct sb_store_usage_query {
    int64_t from_ms, to_ms;             /* the window [from, to) over usage_logs.ts, Unix ms */
    const char *eq[SB_STORE_USAGE_NEQ]; /* eq[BY_MODEL] = "x": rows of model x only; NULL = any */
    const char *status;                 /* ok | error | cancelled; NULL = any */
    enum sb_store_usage_by group_by;
    size_t max_groups; /* 0 = SB_STORE_USAGE_MAX_GROUPS */
    int64_t max_rows;  /* 0 = SB_STORE_USAGE_MAX_ROWS */
};

/* One group of a usage report. */
struct sb_store_usage_group {
    const char *key;   /* the group's value; NULL for BY_NONE, a time bucket, or rows
                          where the column is NULL (no user: the admin token) */
    int64_t bucket_ms; /* BY_HOUR / BY_DAY: the bucket's start (UTC); else 0 */
    int64_t requests;  /* rows */
    int64_t errors;    /* status "error" */
    int64_t cancelled; /* status "cancelled" (the client left): not an error */
    double latency_p50_ms, latency_p95_ms, latency_p99_ms; /* nearest rank, all rows */
    int64_t streamed;                /* streamed rows that have a first-token time (ttft_ms >= 0) */
    double ttft_p50_ms, ttft_p95_ms; /* nearest rank over those; 0 when streamed = 0 */
    int64_t prompt_tokens;           /* sums over rows that know them (-1 = unknown skipped) */
    int64_t completion_tokens;
    double cost_usd;
    int64_t first_ts, last_ts; /* earliest and latest row ts; 0 when no rows */
};

struct sb_store_usage_report {
    struct sb_store_usage_group *groups; /* in the arena, ordered by key (buckets ascending) */
    size_t n;
    int64_t rows;   /* usage rows matching the query (all read unless truncated) */
    bool truncated; /* there were more than max_groups groups: the first ones by key are here */
};

/*
 * A/B experiments (issue 7 part 3). A client sends an experiment's id as its
 * model; the proxy picks a variant (router/experiment.h) and serves the
 * variant's target. On the usage row, route = the experiment id and variant =
 * the variant name, which is how results find an experiment's traffic.
 */
#define SB_STORE_VARIANT_NAME_MAX 31  /* usage_logs.variant holds 31 bytes (store/usage.h) */
#define SB_STORE_EXPERIMENT_ID_MAX 63 /* usage_logs.route holds 63 bytes */
#define SB_STORE_EXPERIMENT_MAX_VARIANTS 16

struct sb_store_variant {
    const char *name;   /* [A-Za-z0-9._-]+, at most SB_STORE_VARIANT_NAME_MAX, unique */
    const char *target; /* a model id, provider/upstream_model, or a route id */
    int64_t weight;     /* >= 0; the experiment's weights have a positive sum */
};

struct sb_store_experiment {
    const char *id;                    /* [A-Za-z0-9._:-]+, at most SB_STORE_EXPERIMENT_ID_MAX */
    const char *name;                  /* display name; NULL on write = id */
    const char *description;           /* NULL = none */
    const char *status;                /* active | paused | ended; NULL on write = active */
    struct sb_store_variant *variants; /* 1..SB_STORE_EXPERIMENT_MAX_VARIANTS, first = control */
    size_t nvariants;
    int64_t created_at; /* Unix ms; read-only */
    int64_t updated_at; /* Unix ms; read-only */
};

/* A rating of one request: -1 (bad), 0 (neutral), 1 (good). */
struct sb_store_feedback {
    const char *request_id; /* usage_logs.request_id of the rated request */
    int64_t rating;         /* -1 | 0 | 1 */
    const char *comment;    /* NULL = none */
    const char *user;       /* who rated: the /api actor (a username, or admin-token) */
    int64_t ts;             /* Unix ms; read-only (the store sets it) */
};

/* Who made a request and what served it, from its usage row. */
struct sb_store_request_ref {
    const char *request_id;
    const char *user;    /* usage_logs.user_id: NULL for the admin token */
    const char *route;   /* NULL = none */
    const char *variant; /* NULL = none */
};

/* The ratings of one variant's requests. */
struct sb_store_rating_stats {
    const char *variant; /* NULL for rows without a variant */
    int64_t n;           /* rated requests */
    double sum, sumsq;   /* of the ratings, and of their squares */
};

/* A tri-state list filter; zero means "any". */
enum sb_store_tri { SB_STORE_ANY = 0, SB_STORE_YES, SB_STORE_NO };

/*
 * List filters. Each list honours only some members (see its prototype);
 * setting one it does not honour fails with SB_E_BAD_REQUEST rather than
 * being silently ignored.
 */
struct sb_store_filter {
    const char *provider;      /* models: this provider identifier only */
    enum sb_store_tri enabled; /* providers, models */
    const char *capability;    /* models: streaming | tools | vision | json_mode | embeddings */
    const char *visible_to;    /* models, templates: global rows + this user's; NULL = all */
    int64_t limit;             /* rows to return, 0 = all */
    int64_t offset;            /* rows to skip first */
};

/* What a list returns besides its rows. */
struct sb_store_page {
    size_t n;      /* rows returned */
    int64_t total; /* rows matching the filter before limit/offset */
};

/* A set of entities. When returned by sb_store_load everything lives in arena. */
struct sb_store_entities {
    struct sb_store_provider *providers;
    size_t nproviders;
    struct sb_store_model *models;
    size_t nmodels;
    struct sb_store_route *routes;
    size_t nroutes;
    struct sb_arena *arena; /* owner of all of the above, or NULL if borrowed */
    /* Added for the control plane; filled by sb_store_load, ignored by sync_system. */
    struct sb_store_template *templates;
    size_t ntemplates;
    struct sb_store_credential *credentials; /* personal ones (user != NULL), every user's */
    size_t ncredentials;
    /* Appended for A/B experiments (issue 7 part 3): filled by sb_store_load, ignored by
     * sync_system (experiments live only in the database). */
    struct sb_store_experiment *experiments;
    size_t nexperiments;
    /* Appended for key pools (issue 7): the system credentials with a label
     * (the primary key rides on its provider), and the dead keys. */
    struct sb_store_credential *pool;
    size_t npool;
    struct sb_store_dead_key *dead_keys;
    size_t ndead_keys;
};

/* Frees a set returned by sb_store_load (its arena). Accepts NULL. */
void sb_store_entities_free(struct sb_store_entities *e);

/* ---- the plug point ---- */

struct sb_store;
struct sb_store_identity_ops; /* store/identity.h: users, sessions, keys, audit */
struct sb_store_quota_ops;    /* store/quota.h: limits of keys and users, spend */
struct sb_store_batch_ops;    /* store/batch.h: batch jobs */

/*
 * The rekey callback: re-encrypts one credential. c is borrowed for the call
 * (its strings die after it returns). On success *new_ciphertext is owned by
 * the store (allocated with malloc; it frees it) and new_key_id_out holds a
 * NUL-terminated key id (room: SB_STORE_KEY_ID_MAX). Any failure aborts the
 * whole rekey, and every row keeps its old ciphertext.
 */
typedef sb_err (*sb_store_rekey_fn)(void *ud, const struct sb_store_credential *c,
                                    char **new_ciphertext, char *new_key_id_out,
                                    struct sb_error *err);

struct sb_store_ops {
    const char *name; /* "sqlite" */
    sb_err (*migrate)(struct sb_store *s, struct sb_error *err);
    sb_err (*sync_system)(struct sb_store *s, const struct sb_store_entities *e,
                          struct sb_error *err);
    sb_err (*load)(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err);
    sb_err (*insert_usage)(struct sb_store *s, const struct sb_usage *rows, size_t n,
                           struct sb_error *err);
    void (*usage_pace)(struct sb_store *s, unsigned every); /* NULL: never paces */
    sb_err (*setting_get)(struct sb_store *s, const char *key, char **value, struct sb_error *err);
    sb_err (*setting_set)(struct sb_store *s, const char *key, const char *value,
                          struct sb_error *err);
    sb_err (*ping)(struct sb_store *s, struct sb_error *err);
    void (*close)(struct sb_store *s);
    /* The registry (issue 5); the sb_store_* wrappers below document each. */
    sb_err (*provider_create)(struct sb_store *s, const struct sb_store_provider *p,
                              const struct sb_store_model *models, size_t nmodels,
                              struct sb_error *err);
    sb_err (*provider_update)(struct sb_store *s, const char *id, const struct sb_store_provider *p,
                              struct sb_error *err);
    sb_err (*provider_delete)(struct sb_store *s, const char *id, bool cascade,
                              struct sb_error *err);
    sb_err (*provider_get)(struct sb_store *s, const char *id, struct sb_arena *a,
                           struct sb_store_provider *out, struct sb_error *err);
    sb_err (*provider_list)(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_provider **out, struct sb_store_page *page,
                            struct sb_error *err);
    sb_err (*provider_set_enabled)(struct sb_store *s, const char *id, bool on,
                                   struct sb_error *err);
    sb_err (*provider_set_test)(struct sb_store *s, const char *id, int64_t when_ms,
                                const char *result, struct sb_error *err);
    sb_err (*provider_stats)(struct sb_store *s, const char *provider, int64_t from_ms,
                             int64_t to_ms, struct sb_arena *a,
                             struct sb_store_provider_stats **out, size_t *n, struct sb_error *err);
    sb_err (*model_create)(struct sb_store *s, const struct sb_store_model *m,
                           struct sb_error *err);
    sb_err (*model_update)(struct sb_store *s, const char *id, const struct sb_store_model *m,
                           struct sb_error *err);
    sb_err (*model_delete)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*model_get)(struct sb_store *s, const char *id, const char *visible_to,
                        struct sb_arena *a, struct sb_store_model *out, struct sb_error *err);
    sb_err (*model_list)(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_model **out, struct sb_store_page *page,
                         struct sb_error *err);
    sb_err (*model_set_enabled)(struct sb_store *s, const char *id, bool on, struct sb_error *err);
    sb_err (*model_set_priority)(struct sb_store *s, const char *id, int64_t priority,
                                 struct sb_error *err);
    sb_err (*model_reorder)(struct sb_store *s, const char *const *ids, size_t n,
                            struct sb_error *err);
    sb_err (*model_set_champion)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*model_set_default)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*route_create)(struct sb_store *s, const struct sb_store_route *r,
                           struct sb_error *err);
    sb_err (*route_update)(struct sb_store *s, const char *id, const struct sb_store_route *r,
                           struct sb_error *err);
    sb_err (*route_delete)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*route_get)(struct sb_store *s, const char *id, struct sb_arena *a,
                        struct sb_store_route *out, struct sb_error *err);
    sb_err (*route_list)(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_route **out, struct sb_store_page *page,
                         struct sb_error *err);
    sb_err (*template_create)(struct sb_store *s, const struct sb_store_template *t,
                              struct sb_error *err);
    sb_err (*template_update)(struct sb_store *s, const char *id, const struct sb_store_template *t,
                              struct sb_error *err);
    sb_err (*template_delete)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*template_get)(struct sb_store *s, const char *id, const char *visible_to,
                           struct sb_arena *a, struct sb_store_template *out, struct sb_error *err);
    sb_err (*template_list)(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_template **out, struct sb_store_page *page,
                            struct sb_error *err);
    sb_err (*credential_put)(struct sb_store *s, const struct sb_store_credential *c,
                             struct sb_error *err);
    sb_err (*credential_delete)(struct sb_store *s, const char *provider, const char *user,
                                const char *label, struct sb_error *err);
    sb_err (*credential_get)(struct sb_store *s, const char *provider, const char *user,
                             const char *label, struct sb_arena *a,
                             struct sb_store_credential *out, struct sb_error *err);
    sb_err (*credential_list)(struct sb_store *s, const char *user, struct sb_arena *a,
                              struct sb_store_credential **out, size_t *n, struct sb_error *err);
    sb_err (*rekey)(struct sb_store *s, sb_store_rekey_fn fn, void *ud, size_t *n,
                    struct sb_error *err);
    sb_err (*registry_version)(struct sb_store *s, int64_t *out, struct sb_error *err);
    /* Appended for key pools (issue 7). */
    sb_err (*dead_key_put)(struct sb_store *s, const struct sb_store_dead_key *d,
                           struct sb_error *err);
    sb_err (*dead_key_delete)(struct sb_store *s, const char *provider, const char *label,
                              struct sb_error *err);
    /* Appended for the control plane's identity tables (store/identity.h): a
     * sub-table, so identity.c's wrappers and sqlite_identity.c stay apart
     * from the registry's ops. */
    const struct sb_store_identity_ops *identity;
    /* Appended for the usage journal (issue 7 part 6), widened for issue 9:
     * one usage transaction (struct sb_store_usage_tx), so a replayed
     * journal batch and its replay offset commit together (usage.c: exactly
     * once), and a batch's last-use raises cost no commit of their own. */
    sb_err (*write_usage)(struct sb_store *s, const struct sb_store_usage_tx *tx,
                          struct sb_error *err);
    /* Appended for usage analytics (issue 7 part 8). */
    sb_err (*usage_report)(struct sb_store *s, const struct sb_store_usage_query *q,
                           struct sb_arena *a, struct sb_store_usage_report *out,
                           struct sb_error *err);
    /* Appended for A/B experiments (issue 7 part 3); the wrappers document each. */
    sb_err (*experiment_create)(struct sb_store *s, const struct sb_store_experiment *x,
                                struct sb_error *err);
    sb_err (*experiment_update)(struct sb_store *s, const char *id,
                                const struct sb_store_experiment *x, struct sb_error *err);
    sb_err (*experiment_delete)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*experiment_get)(struct sb_store *s, const char *id, struct sb_arena *a,
                             struct sb_store_experiment *out, struct sb_error *err);
    sb_err (*experiment_list)(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_experiment **out,
                              struct sb_store_page *page, struct sb_error *err);
    sb_err (*feedback_put)(struct sb_store *s, const struct sb_store_feedback *f, bool *created,
                           struct sb_error *err);
    sb_err (*request_ref)(struct sb_store *s, const char *request_id, struct sb_arena *a,
                          struct sb_store_request_ref *out, struct sb_error *err);
    sb_err (*experiment_ratings)(struct sb_store *s, const char *id, int64_t from_ms, int64_t to_ms,
                                 struct sb_arena *a, struct sb_store_rating_stats **out, size_t *n,
                                 struct sb_error *err);
    /* Appended for limits and budgets (issue 7 parts 4-5, store/quota.h): a sub-table. */
    const struct sb_store_quota_ops *quota;
    /* Appended for batch jobs (issue 7 part 10, store/batch.h): a sub-table. */
    const struct sb_store_batch_ops *batch;
};

/* The base every backend embeds as its first member. */
struct sb_store {
    const struct sb_store_ops *ops;
};

/*
 * Opens the store named by url: "sqlite:PATH" (also "sqlite:///abs/path",
 * "sqlite::memory:"); "postgres://..." is not built yet and fails clearly.
 * Returns owned *out (free with sb_store_close).
 */
sb_err sb_store_open(const char *url, struct sb_store **out, struct sb_error *err);
/* Closes and frees; accepts NULL. */
void sb_store_close(struct sb_store *s);

/* Applies every pending migration, each in its own transaction (schema_migrations). */
sb_err sb_store_migrate(struct sb_store *s, struct sb_error *err);
/*
 * Makes the system entries (is_system = 1) equal to e, in one transaction:
 * inserts or updates each entry of e, deletes system entries that e no longer
 * has. Entries created through the API (is_system = 0) are never touched; a
 * config entry whose id an API entry already holds is skipped with a warning.
 * What the API changed on a system entry (status by toggle, fallback_priority
 * by priority/reorder; champion and default are never in the file) is kept:
 * the file's value applies only until the API first sets it. Bumps
 * registry_version. Borrows e.
 */
sb_err sb_store_sync_system(struct sb_store *s, const struct sb_store_entities *e,
                            struct sb_error *err);
/* Loads every provider (with its system credential), model, route, template
 * and personal credential. Returns owned *out (free with sb_store_entities_free). */
sb_err sb_store_load(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err);
/* Inserts rows[0..n) in one transaction with one prepared statement. Borrows rows. */
sb_err sb_store_insert_usage(struct sb_store *s, const struct sb_usage *rows, size_t n,
                             struct sb_error *err);
/*
 * From now on, usage inserts (both kinds) give up the core (sched_yield)
 * after every `every` rows inside their transaction; 0 = never. The usage
 * writer asks for it while few requests are in flight (usage.c).
 */
void sb_store_usage_pace(struct sb_store *s, unsigned every);
/*
 * Writes tx in ONE transaction: all of it commits or none does. An audit
 * record the schema refuses is SB_E_BAD_REQUEST. A store without the
 * operation (a test double) fails with SB_E_INTERNAL. Borrows tx and all
 * it points to.
 */
sb_err sb_store_write_usage(struct sb_store *s, const struct sb_store_usage_tx *tx,
                            struct sb_error *err);
/* *value: owned (free with free()), or NULL when the key is absent (still SB_OK). */
sb_err sb_store_setting_get(struct sb_store *s, const char *key, char **value,
                            struct sb_error *err);
/* Inserts or replaces key. Borrows both strings. */
sb_err sb_store_setting_set(struct sb_store *s, const char *key, const char *value,
                            struct sb_error *err);
/* A cheap round trip (for /ready). */
sb_err sb_store_ping(struct sb_store *s, struct sb_error *err);

/* ---- the registry (control plane) ---- */

/*
 * Providers. create inserts p (is_system forced to 0; key_* and test fields
 * ignored: use credential_put and provider_set_test) together with
 * models[0..n) attached to it (their provider member is ignored), all in one
 * transaction: a template apply either creates everything or nothing.
 * update replaces every editable field of provider id (p->id must be NULL or
 * equal to id: identifiers never change; created_*, is_system, credentials
 * and test fields are kept). delete: see "Rules" above for cascade. All
 * borrow their inputs.
 */
sb_err sb_store_provider_create(struct sb_store *s, const struct sb_store_provider *p,
                                const struct sb_store_model *models, size_t nmodels,
                                struct sb_error *err);
sb_err sb_store_provider_update(struct sb_store *s, const char *id,
                                const struct sb_store_provider *p, struct sb_error *err);
sb_err sb_store_provider_delete(struct sb_store *s, const char *id, bool cascade,
                                struct sb_error *err);
/* *out filled with strings in a (valid until a is freed), key_masked included. */
sb_err sb_store_provider_get(struct sb_store *s, const char *id, struct sb_arena *a,
                             struct sb_store_provider *out, struct sb_error *err);
/* Honours f->enabled and paging (f may be NULL: everything). *out: array in a,
 * ordered by identifier. */
sb_err sb_store_provider_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_provider **out,
                              struct sb_store_page *page, struct sb_error *err);
/* Toggle: status active/inactive. Allowed on system entries (an API override). */
sb_err sb_store_provider_set_enabled(struct sb_store *s, const char *id, bool on,
                                     struct sb_error *err);
/* Records a connection test: last_tested = when_ms, test_result = result
 * (JSON text, borrowed; must never contain a secret). */
sb_err sb_store_provider_set_test(struct sb_store *s, const char *id, int64_t when_ms,
                                  const char *result, struct sb_error *err);
/*
 * Usage per provider over [from_ms, to_ms) from usage_logs: one row for each
 * provider in the providers table (zeros when it has no usage), or only for
 * `provider` when not NULL (SB_E_NOT_FOUND if unknown). *out: array in a,
 * ordered by identifier, *n rows.
 */
sb_err sb_store_provider_stats(struct sb_store *s, const char *provider, int64_t from_ms,
                               int64_t to_ms, struct sb_arena *a,
                               struct sb_store_provider_stats **out, size_t *n,
                               struct sb_error *err);

/*
 * Models. create/update borrow m; m->provider must name an existing provider
 * (else SB_E_BAD_REQUEST, field "provider"); m->status, when set, must be
 * active | inactive | deprecated (field "status"); is_default/is_champion are
 * not written here (use set_default / set_champion). update keeps id, owner,
 * created_*, is_system, is_default and is_champion.
 */
sb_err sb_store_model_create(struct sb_store *s, const struct sb_store_model *m,
                             struct sb_error *err);
sb_err sb_store_model_update(struct sb_store *s, const char *id, const struct sb_store_model *m,
                             struct sb_error *err);
sb_err sb_store_model_delete(struct sb_store *s, const char *id, struct sb_error *err);
/* visible_to: see "Rules"; a hidden model is SB_E_NOT_FOUND. Strings in a. */
sb_err sb_store_model_get(struct sb_store *s, const char *id, const char *visible_to,
                          struct sb_arena *a, struct sb_store_model *out, struct sb_error *err);
/* Honours every filter member. *out: array in a, ordered by
 * (fallback_priority, identifier). */
sb_err sb_store_model_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                           struct sb_store_model **out, struct sb_store_page *page,
                           struct sb_error *err);
/* on: inactive -> active (a deprecated model stays deprecated); off: inactive. */
sb_err sb_store_model_set_enabled(struct sb_store *s, const char *id, bool on,
                                  struct sb_error *err);
sb_err sb_store_model_set_priority(struct sb_store *s, const char *id, int64_t priority,
                                   struct sb_error *err);
/* ids[i] gets fallback_priority i + 1, in one transaction; an unknown or
 * repeated id fails the whole call (field "ids[i]") and changes nothing.
 * Models not listed keep their priority. Borrows ids. */
sb_err sb_store_model_reorder(struct sb_store *s, const char *const *ids, size_t n,
                              struct sb_error *err);
/* Makes id the only champion (default) among its provider's models. */
sb_err sb_store_model_set_champion(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb_store_model_set_default(struct sb_store *s, const char *id, struct sb_error *err);

/* Routes: r->targets must be non-empty; r->weights, when set, has ntargets
 * entries >= 0 (field "weights"). Lists honour paging only; ordered by
 * identifier. Same conventions as providers. */
sb_err sb_store_route_create(struct sb_store *s, const struct sb_store_route *r,
                             struct sb_error *err);
sb_err sb_store_route_update(struct sb_store *s, const char *id, const struct sb_store_route *r,
                             struct sb_error *err);
sb_err sb_store_route_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb_store_route_get(struct sb_store *s, const char *id, struct sb_arena *a,
                          struct sb_store_route *out, struct sb_error *err);
sb_err sb_store_route_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                           struct sb_store_route **out, struct sb_store_page *page,
                           struct sb_error *err);

/* Templates: options/models are JSON text the caller validated; the store
 * checks only that they are a JSON object / array (field "options" /
 * "models"). Lists honour visible_to and paging; ordered by identifier.
 * update keeps id, owner, created_* and is_system. */
sb_err sb_store_template_create(struct sb_store *s, const struct sb_store_template *t,
                                struct sb_error *err);
sb_err sb_store_template_update(struct sb_store *s, const char *id,
                                const struct sb_store_template *t, struct sb_error *err);
sb_err sb_store_template_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb_store_template_get(struct sb_store *s, const char *id, const char *visible_to,
                             struct sb_arena *a, struct sb_store_template *out,
                             struct sb_error *err);
sb_err sb_store_template_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_template **out,
                              struct sb_store_page *page, struct sb_error *err);

/*
 * Credentials, keyed by (provider, user, label); user NULL is a system
 * credential, label NULL or "" the primary key (a user has only that one).
 * put inserts or replaces (provider must exist: else SB_E_NOT_FOUND, field
 * "provider"); the ciphertext, key id and masked form are the only key
 * material the store ever writes. delete and get fail with SB_E_NOT_FOUND
 * when there is none. list returns the credentials of user (NULL = the
 * system ones, every label), ordered by provider identifier and label;
 * *out is an array in a.
 */
sb_err sb_store_credential_put(struct sb_store *s, const struct sb_store_credential *c,
                               struct sb_error *err);
sb_err sb_store_credential_delete(struct sb_store *s, const char *provider, const char *user,
                                  const char *label, struct sb_error *err);
sb_err sb_store_credential_get(struct sb_store *s, const char *provider, const char *user,
                               const char *label, struct sb_arena *a,
                               struct sb_store_credential *out, struct sb_error *err);
/* Marks a pool key dead (upsert by provider + label) / revives it (no row is
 * not an error). Both bump registry_version: the snapshot carries the state. */
sb_err sb_store_dead_key_put(struct sb_store *s, const struct sb_store_dead_key *d,
                             struct sb_error *err);
sb_err sb_store_dead_key_delete(struct sb_store *s, const char *provider, const char *label,
                                struct sb_error *err);
sb_err sb_store_credential_list(struct sb_store *s, const char *user, struct sb_arena *a,
                                struct sb_store_credential **out, size_t *n, struct sb_error *err);
/*
 * Re-encrypts every credential (system and personal) in ONE transaction:
 * fn is called for each row, and the new ciphertext and key id are written
 * only if every call succeeds and the commit does; otherwise nothing
 * changes. *n (may be NULL) = rows re-encrypted. Bumps registry_version.
 */
sb_err sb_store_rekey(struct sb_store *s, sb_store_rekey_fn fn, void *ud, size_t *n,
                      struct sb_error *err);
/* The registry version counter (settings.registry_version); 0 on a fresh database. */
sb_err sb_store_registry_version(struct sb_store *s, int64_t *out, struct sb_error *err);

/*
 * A usage report over usage_logs (GET /api/usage): the rows of q's window
 * that match every filter, summed per group. Percentiles are exact (nearest
 * rank): each group's latencies are held and sorted, so the cost is one read
 * of the matching rows plus a sort; a query matching more than q->max_rows
 * rows fails with SB_E_BAD_REQUEST (field "from") before reading them. With
 * BY_NONE the report is one row even when nothing matched (requests 0).
 * Borrows q; *out's arrays and strings in a.
 */
sb_err sb_store_usage_report(struct sb_store *s, const struct sb_store_usage_query *q,
                             struct sb_arena *a, struct sb_store_usage_report *out,
                             struct sb_error *err);

/*
 * A/B experiments. create/update validate x: the id rule above (at most
 * SB_STORE_EXPERIMENT_ID_MAX), status, 1..SB_STORE_EXPERIMENT_MAX_VARIANTS
 * variants with valid unique names (field "variants"), non-empty targets,
 * weights >= 0 with a positive sum; that targets exist is the caller's check
 * (it holds the registry). Writes bump registry_version (the snapshot carries
 * experiments). update keeps id and created_at. Lists honour paging only,
 * ordered by identifier. Same conventions as routes.
 */
sb_err sb_store_experiment_create(struct sb_store *s, const struct sb_store_experiment *x,
                                  struct sb_error *err);
sb_err sb_store_experiment_update(struct sb_store *s, const char *id,
                                  const struct sb_store_experiment *x, struct sb_error *err);
sb_err sb_store_experiment_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb_store_experiment_get(struct sb_store *s, const char *id, struct sb_arena *a,
                               struct sb_store_experiment *out, struct sb_error *err);
sb_err sb_store_experiment_list(struct sb_store *s, const struct sb_store_filter *f,
                                struct sb_arena *a, struct sb_store_experiment **out,
                                struct sb_store_page *page, struct sb_error *err);
/* Checks x as create/update do, without the database (the API checks before its own
 * checks, so a bad body gets the store's field error first). Borrows x. */
sb_err sb_store_experiment_check(const struct sb_store_experiment *x, struct sb_error *err);
/*
 * Records f (rating -1..1, else SB_E_BAD_REQUEST field "rating"): inserts, or
 * replaces the earlier rating of the same request (*created false). Whether
 * the request exists and whose it is: sb_store_request_ref. Borrows f.
 */
sb_err sb_store_feedback_put(struct sb_store *s, const struct sb_store_feedback *f, bool *created,
                             struct sb_error *err);
/* The usage row of request_id (the first, should there be several);
 * SB_E_NOT_FOUND when there is none yet. Strings in a. */
sb_err sb_store_request_ref(struct sb_store *s, const char *request_id, struct sb_arena *a,
                            struct sb_store_request_ref *out, struct sb_error *err);
/* The ratings of the requests whose usage rows have route = id and ts in
 * [from_ms, to_ms), per variant, ordered by variant. *out: array in a. */
sb_err sb_store_experiment_ratings(struct sb_store *s, const char *id, int64_t from_ms,
                                   int64_t to_ms, struct sb_arena *a,
                                   struct sb_store_rating_stats **out, size_t *n,
                                   struct sb_error *err);

/* ---- inside the store layer only ---- */

/* One schema step; the SQL is written for both SQLite and PostgreSQL, with
 * {id} (auto-increment primary key) and {json} (JSON column type) expanded by
 * the backend. */
struct sb__migration {
    int version;
    const char *name;
    const char *sql; /* several statements */
};
extern const struct sb__migration sb__migrations[];
extern const size_t sb__nmigrations;

/* Backend openers, called by sb_store_open with the part after the scheme. */
sb_err sb__sqlite_open(const char *path, struct sb_store **out, struct sb_error *err);

/*
 * The JSON columns (columns.c), identical for every backend. Encoders reset
 * out and write one JSON document. Decoders borrow the text, which must live
 * in arena (strings in the result point into it or are copied there); NULL or
 * empty text means "{}" / "[]". They fail with SB_E_STORE naming the column.
 */
struct sb_buf;
/* The capability called name in c: 1 or 0, or -1 when no capability has that name. */
int sb__cap_value(const struct sb_store_caps *c, const char *name);
void sb__enc_auth(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_options(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_rate_limits(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_caps(const struct sb_store_model *m, struct sb_buf *out);
void sb__enc_pricing(const struct sb_store_model *m, struct sb_buf *out);
void sb__enc_targets(const struct sb_store_route *r, struct sb_buf *out);
void sb__enc_weights(const struct sb_store_route *r, struct sb_buf *out); /* empty = NULL */
sb_err sb__dec_auth(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                    struct sb_error *err);
sb_err sb__dec_options(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                       struct sb_error *err);
sb_err sb__dec_rate_limits(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                           struct sb_error *err);
sb_err sb__dec_caps(struct sb_arena *a, const char *text, struct sb_store_model *m,
                    struct sb_error *err);
sb_err sb__dec_pricing(struct sb_arena *a, const char *text, struct sb_store_model *m,
                       struct sb_error *err);
sb_err sb__dec_targets(struct sb_arena *a, const char *text, struct sb_store_route *r,
                       struct sb_error *err);
/* routes.options (migration 7): {"cache": {"ttl_s", "shared", "sampled"}}, "{}" without a cache. */
void sb__enc_route_options(const struct sb_store_route *r, struct sb_buf *out);
sb_err sb__dec_route_options(struct sb_arena *a, const char *text, struct sb_store_route *r,
                             struct sb_error *err);
/* models.options (migration 9): {"fallbacks": [...]}, "{}" without any. */
void sb__enc_model_options(const struct sb_store_model *m, struct sb_buf *out);
sb_err sb__dec_model_options(struct sb_arena *a, const char *text, struct sb_store_model *m,
                             struct sb_error *err);
/* After sb__dec_targets (needs ntargets); NULL text leaves weights NULL. */
sb_err sb__dec_weights(struct sb_arena *a, const char *text, struct sb_store_route *r,
                       struct sb_error *err);
/* experiments.variants (store/experiment.c): [{"name","target","weight"}]. */
void sb__enc_variants(const struct sb_store_experiment *x, struct sb_buf *out);
sb_err sb__dec_variants(struct sb_arena *a, const char *text, struct sb_store_experiment *x,
                        struct sb_error *err);

#endif
