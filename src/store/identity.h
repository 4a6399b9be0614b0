/* SPDX-License-Identifier: MIT */
/*
 * identity.h - users, sessions, virtual keys and the audit log in the store.
 *
 * The control plane's identity tables (migration 3) behind the same plug
 * point as the rest of the store: every backend supplies a
 * `const struct sb_store_identity_ops` (store.h's ops->identity), and the
 * sb_store_* wrappers below forward to it (identity.c). Only hashes reach
 * the store: password_hash is an argon2id string, token and key hashes are
 * "sha256:<hex>"; the plaintext never does.
 *
 * Users are named by username everywhere else: api_keys.user_id,
 * usage_logs.user_id, models.owner_user_id and provider_credentials.user_id
 * hold the username (DESIGN.md §5: the identifier is what the API calls
 * id). Usernames are [a-z0-9._-]{1,64}, so they cannot be renamed.
 *
 * Results are allocated in the caller's arena (strings and arrays), valid
 * until that arena is freed. Errors: SB_E_NOT_FOUND for an unknown id,
 * SB_E_CONFLICT (with sb_fail_field) for a duplicate, SB_E_BAD_REQUEST
 * (field set) for a value the schema refuses, SB_E_STORE for the database.
 */
#ifndef SB_STORE_IDENTITY_H
#define SB_STORE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct sb_store;

/* ---- entities ---- */

struct sb_store_user {
    int64_t id;                /* row id (read only) */
    const char *username;      /* [a-z0-9._-]{1,64} */
    const char *password_hash; /* argon2id encoded string */
    const char *role;          /* admin | developer | user */
    const char *status;        /* active | disabled */
    int64_t created_at;        /* Unix ms (read only) */
    int64_t updated_at;
    int64_t last_login_at; /* 0 = never */
};

/* What user_update changes: NULL / false fields are left alone. */
struct sb_store_user_update {
    const char *role;          /* NULL = keep */
    const char *password_hash; /* NULL = keep */
    const char *status;        /* NULL = keep */
    int64_t last_login_at;     /* 0 = keep */
};

struct sb_store_session {
    int64_t id;             /* row id (read only) */
    const char *token_hash; /* "sha256:<hex>" of the cookie value */
    const char *username;
    int64_t created_at;   /* Unix ms */
    int64_t expires_at;   /* absolute expiry */
    int64_t last_seen_at; /* for idle expiry, updated by touch */
    const char *ip;       /* client address at login, may be NULL */
    const char *role;     /* filled by session_get from users (read only) */
    const char *status;   /* the user's status, filled by session_get (read only) */
};

struct sb_store_api_key {
    int64_t id;             /* row id; its decimal text is usage_logs.key_id */
    const char *name;       /* free text, 1..128 bytes */
    const char *key_hash;   /* "sha256:<hex>" */
    const char *key_prefix; /* "sk-sb-AbCd" */
    const char *user_id;    /* owner's username; NULL = created with the admin token */
    const char **models;    /* allowed model or route ids; nmodels == 0 means all visible */
    size_t nmodels;
    bool revoked;         /* status = revoked */
    int64_t created_at;   /* Unix ms (read only on create: the store sets it) */
    int64_t last_used_at; /* 0 = never */
    int64_t expires_at;   /* 0 = never */
    int64_t revoked_at;   /* 0 = not revoked */
    bool owner_disabled;  /* key_load_all only: the owner is disabled or deleted */
};

/* One use of a key, for last_used_at (sb_store_write_usage raises it). */
struct sb_store_key_use {
    int64_t key_id;
    int64_t ts_ms;
};

/*
 * One audit record. before/after are JSON documents with secrets already
 * removed by the caller (NULL = none); the store checks only that they are
 * JSON objects or arrays by their first byte, not their content.
 */
struct sb_audit {
    int64_t id;              /* row id (read only) */
    int64_t ts_ms;           /* when, Unix ms; 0 = now */
    const char *actor;       /* username, "admin-token", or the name a failed login tried */
    const char *actor_role;  /* admin | developer | user | NULL */
    const char *action;      /* "user.create", "key.revoke", "auth.login", ... */
    const char *target_type; /* "user", "key", "provider", ... or NULL */
    const char *target_id;   /* the target's identifier, or NULL */
    const char *before;      /* JSON or NULL */
    const char *after;       /* JSON or NULL */
    const char *ip;          /* client address or NULL */
    const char *request_id;  /* x-request-id or NULL */
    const char *outcome;     /* ok | denied | failed */
};

/* Audit query filters: NULL / 0 = no filter; from/to are inclusive Unix ms. */
struct sb_audit_filter {
    const char *actor;
    const char *action;
    const char *target_type;
    const char *target_id;
    int64_t from_ms, to_ms;
};

/* Paging for lists: limit 1..1000 (0 = 100), offset ≥ 0. Lists are ordered
 * by id (users, keys) or newest first (audit). */
struct sb_store_paging {
    int64_t limit;
    int64_t offset;
};

/* ---- the backend's table ---- */

struct sb_store_identity_ops {
    sb_err (*user_create)(struct sb_store *s, const struct sb_store_user *u, int64_t *id,
                          struct sb_error *err);
    sb_err (*user_get)(struct sb_store *s, const char *username, struct sb_arena *a,
                       struct sb_store_user *out, struct sb_error *err);
    sb_err (*user_list)(struct sb_store *s, const struct sb_store_paging *pg, struct sb_arena *a,
                        struct sb_store_user **out, size_t *n, int64_t *total,
                        struct sb_error *err);
    sb_err (*user_update)(struct sb_store *s, const char *username,
                          const struct sb_store_user_update *u, struct sb_error *err);
    sb_err (*user_delete)(struct sb_store *s, const char *username, struct sb_error *err);
    sb_err (*user_count_admins)(struct sb_store *s, int64_t *n, struct sb_error *err);

    sb_err (*session_create)(struct sb_store *s, const struct sb_store_session *ss,
                             struct sb_error *err);
    sb_err (*session_get)(struct sb_store *s, const char *token_hash, int64_t now,
                          struct sb_arena *a, struct sb_store_session *out, struct sb_error *err);
    sb_err (*session_touch)(struct sb_store *s, const char *token_hash, int64_t now,
                            struct sb_error *err);
    sb_err (*session_delete)(struct sb_store *s, const char *token_hash, struct sb_error *err);
    sb_err (*session_delete_user)(struct sb_store *s, const char *username, int64_t *n,
                                  struct sb_error *err);
    sb_err (*session_purge)(struct sb_store *s, int64_t now, int64_t *n, struct sb_error *err);

    sb_err (*key_create)(struct sb_store *s, const struct sb_store_api_key *k, int64_t *id,
                         struct sb_error *err);
    sb_err (*key_get)(struct sb_store *s, int64_t id, struct sb_arena *a,
                      struct sb_store_api_key *out, struct sb_error *err);
    sb_err (*key_list)(struct sb_store *s, const char *user, const struct sb_store_paging *pg,
                       struct sb_arena *a, struct sb_store_api_key **out, size_t *n, int64_t *total,
                       struct sb_error *err);
    sb_err (*key_revoke)(struct sb_store *s, int64_t id, int64_t now, struct sb_error *err);
    sb_err (*key_delete)(struct sb_store *s, int64_t id, struct sb_error *err);
    sb_err (*key_load_all)(struct sb_store *s, struct sb_arena *a, struct sb_store_api_key **out,
                           size_t *n, struct sb_error *err);

    sb_err (*audit_insert)(struct sb_store *s, const struct sb_audit *rows, size_t n,
                           struct sb_error *err);
    sb_err (*audit_query)(struct sb_store *s, const struct sb_audit_filter *f,
                          const struct sb_store_paging *pg, struct sb_arena *a,
                          struct sb_audit **out, size_t *n, int64_t *total, struct sb_error *err);
    /* Appended for the control plane's start-up (see sb_store_session_list_live). */
    sb_err (*session_list_live)(struct sb_store *s, int64_t now, struct sb_arena *a,
                                struct sb_store_session **out, size_t *n, struct sb_error *err);
};

/* ---- validation shared with the API ---- */

/* [a-z0-9._-]{1,64}; SB_E_BAD_REQUEST field "username" otherwise. */
sb_err sb_store_check_username(const char *username, struct sb_error *err);
/* admin | developer | user; SB_E_BAD_REQUEST field "role" otherwise. */
sb_err sb_store_check_role(const char *role, struct sb_error *err);

/* ---- users ---- */

/* Creates u (username, password_hash, role; status NULL = active). *id gets
 * the row id (id may be NULL). SB_E_CONFLICT field "username" when taken. Borrows u. */
sb_err sb_store_user_create(struct sb_store *s, const struct sb_store_user *u, int64_t *id,
                            struct sb_error *err);
/* SB_E_NOT_FOUND when absent. Strings in a. */
sb_err sb_store_user_get(struct sb_store *s, const char *username, struct sb_arena *a,
                         struct sb_store_user *out, struct sb_error *err);
/* A page of users ordered by id; *total counts all. Array and strings in a. */
sb_err sb_store_user_list(struct sb_store *s, const struct sb_store_paging *pg, struct sb_arena *a,
                          struct sb_store_user **out, size_t *n, int64_t *total,
                          struct sb_error *err);
/* Changes the set fields of u and updated_at. SB_E_NOT_FOUND when absent. */
sb_err sb_store_user_update(struct sb_store *s, const char *username,
                            const struct sb_store_user_update *u, struct sb_error *err);
/* Deletes the user with, in the same transaction, their sessions, virtual
 * keys and personal provider credentials. Their personal models are left to
 * the registry's owner. SB_E_NOT_FOUND when absent. */
sb_err sb_store_user_delete(struct sb_store *s, const char *username, struct sb_error *err);
/* Active admins (for "do not delete or demote the last admin"). */
sb_err sb_store_user_count_admins(struct sb_store *s, int64_t *n, struct sb_error *err);

/* ---- sessions ---- */

/* Stores a session (token_hash, username, expires_at, ip; created_at and
 * last_seen_at default to now when 0). Borrows ss. */
sb_err sb_store_session_create(struct sb_store *s, const struct sb_store_session *ss,
                               struct sb_error *err);
/* The session with token_hash that has not expired at now, with its user's
 * role and status. SB_E_NOT_FOUND when absent or expired. Strings in a. */
sb_err sb_store_session_get(struct sb_store *s, const char *token_hash, int64_t now,
                            struct sb_arena *a, struct sb_store_session *out, struct sb_error *err);
/* Sets last_seen_at = now. SB_E_NOT_FOUND when absent. */
sb_err sb_store_session_touch(struct sb_store *s, const char *token_hash, int64_t now,
                              struct sb_error *err);
/* Logout. SB_OK even when absent (idempotent). */
sb_err sb_store_session_delete(struct sb_store *s, const char *token_hash, struct sb_error *err);
/* Every session of username (password change, disable); *n (may be NULL) gets the count. */
sb_err sb_store_session_delete_user(struct sb_store *s, const char *username, int64_t *n,
                                    struct sb_error *err);
/* Deletes sessions with expires_at <= now; *n (may be NULL) gets the count. */
sb_err sb_store_session_purge(struct sb_store *s, int64_t now, int64_t *n, struct sb_error *err);

/* Appended for the control plane: every session unexpired at now whose
 * user exists and is active, with role and status filled, so the data
 * plane's session mirror can be filled at start. Array and strings in a. */
sb_err sb_store_session_list_live(struct sb_store *s, int64_t now, struct sb_arena *a,
                                  struct sb_store_session **out, size_t *n, struct sb_error *err);

/* ---- virtual keys ---- */

/* Creates k (name, key_hash, key_prefix, user_id, models, expires_at);
 * *id gets the row id. SB_E_CONFLICT field "key" on a duplicate hash. Borrows k. */
sb_err sb_store_key_create(struct sb_store *s, const struct sb_store_api_key *k, int64_t *id,
                           struct sb_error *err);
/* SB_E_NOT_FOUND when absent. Strings and models in a. */
sb_err sb_store_key_get(struct sb_store *s, int64_t id, struct sb_arena *a,
                        struct sb_store_api_key *out, struct sb_error *err);
/* A page of keys ordered by id, of user (NULL = everyone's). */
sb_err sb_store_key_list(struct sb_store *s, const char *user, const struct sb_store_paging *pg,
                         struct sb_arena *a, struct sb_store_api_key **out, size_t *n,
                         int64_t *total, struct sb_error *err);
/* Marks revoked (status, revoked_at = now); revoking twice is SB_OK. SB_E_NOT_FOUND when absent. */
sb_err sb_store_key_revoke(struct sb_store *s, int64_t id, int64_t now, struct sb_error *err);
/* SB_E_NOT_FOUND when absent. */
sb_err sb_store_key_delete(struct sb_store *s, int64_t id, struct sb_error *err);
/* Every key, revoked and expired ones included (the snapshot says why a key
 * fails), ordered by id, with owner_disabled set for keys whose owner is
 * disabled or no longer exists (such a key must not authenticate). */
sb_err sb_store_key_load_all(struct sb_store *s, struct sb_arena *a, struct sb_store_api_key **out,
                             size_t *n, struct sb_error *err);

/* ---- audit ---- */

/* Inserts rows[0..n) in one transaction (the usage writer calls this). Borrows rows. */
sb_err sb_store_audit_insert(struct sb_store *s, const struct sb_audit *rows, size_t n,
                             struct sb_error *err);
/* Newest first, filtered; *total counts all matches. Array and strings in a. */
sb_err sb_store_audit_query(struct sb_store *s, const struct sb_audit_filter *f,
                            const struct sb_store_paging *pg, struct sb_arena *a,
                            struct sb_audit **out, size_t *n, int64_t *total, struct sb_error *err);

/* ---- inside the store layer ---- */

extern const struct sb_store_identity_ops sb__sqlite_identity_ops;

#endif
