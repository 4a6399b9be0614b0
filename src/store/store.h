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
 * carry credential *references* (env:NAME, file:PATH), never secrets.
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

/* ---- entities ---- */

struct sb_store_kv {
    const char *name;
    const char *value;
};

struct sb_store_caps {
    bool streaming, tools, vision, json_mode, embeddings;
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
};

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
    bool enabled;
    bool is_system;
};

struct sb_store_route {
    const char *id;       /* alias clients send */
    const char *strategy; /* priority | weighted | least-latency | cost */
    const char **targets; /* model id or provider/upstream_model */
    size_t ntargets;
    bool is_system;
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
};

/* Frees a set returned by sb_store_load (its arena). Accepts NULL. */
void sb_store_entities_free(struct sb_store_entities *e);

/* ---- the plug point ---- */

struct sb_store;
struct sb_store_identity_ops; /* store/identity.h: users, sessions, keys, audit */

struct sb_store_ops {
    const char *name; /* "sqlite" */
    sb_err (*migrate)(struct sb_store *s, struct sb_error *err);
    sb_err (*sync_system)(struct sb_store *s, const struct sb_store_entities *e,
                          struct sb_error *err);
    sb_err (*load)(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err);
    sb_err (*insert_usage)(struct sb_store *s, const struct sb_usage *rows, size_t n,
                           struct sb_error *err);
    sb_err (*setting_get)(struct sb_store *s, const char *key, char **value, struct sb_error *err);
    sb_err (*setting_set)(struct sb_store *s, const char *key, const char *value,
                          struct sb_error *err);
    sb_err (*ping)(struct sb_store *s, struct sb_error *err);
    void (*close)(struct sb_store *s);
    /* Appended for the control plane's identity tables (store/identity.h): a
     * sub-table, so identity.c's wrappers and sqlite_identity.c stay apart
     * from the registry's ops. */
    const struct sb_store_identity_ops *identity;
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
 * Borrows e.
 */
sb_err sb_store_sync_system(struct sb_store *s, const struct sb_store_entities *e,
                            struct sb_error *err);
/* Loads every provider, model and route. Returns owned *out (free with sb_store_entities_free). */
sb_err sb_store_load(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err);
/* Inserts rows[0..n) in one transaction with one prepared statement. Borrows rows. */
sb_err sb_store_insert_usage(struct sb_store *s, const struct sb_usage *rows, size_t n,
                             struct sb_error *err);
/* *value: owned (free with free()), or NULL when the key is absent (still SB_OK). */
sb_err sb_store_setting_get(struct sb_store *s, const char *key, char **value,
                            struct sb_error *err);
/* Inserts or replaces key. Borrows both strings. */
sb_err sb_store_setting_set(struct sb_store *s, const char *key, const char *value,
                            struct sb_error *err);
/* A cheap round trip (for /ready). */
sb_err sb_store_ping(struct sb_store *s, struct sb_error *err);

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
void sb__enc_auth(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_options(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_rate_limits(const struct sb_store_provider *p, struct sb_buf *out);
void sb__enc_caps(const struct sb_store_model *m, struct sb_buf *out);
void sb__enc_pricing(const struct sb_store_model *m, struct sb_buf *out);
void sb__enc_targets(const struct sb_store_route *r, struct sb_buf *out);
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

#endif
