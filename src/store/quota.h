/* SPDX-License-Identifier: MIT */
/*
 * quota.h - what an admin allows a virtual key or a user (rpm, tpm, budget)
 * and what each has spent, in the store (issue 7 parts 4 and 5).
 *
 * The limits are columns of api_keys and users (migration 5), read and set
 * here rather than through identity.h's rows so that the identity code keeps
 * its shape; the registry build loads them all (quota_load_all) into the
 * snapshot, where router/limits.h enforces them. Spend is not stored apart:
 * it is the sum of usage_logs.cost_usd since a period's start (`spend`), so
 * it can never disagree with the usage rows.
 *
 * Same plug point as the rest of the store: store.h's ops->quota, with the
 * sb_store_* wrappers below forwarding to it (quota.c). Results in the
 * caller's arena. Errors: SB_E_NOT_FOUND for an unknown key or user,
 * SB_E_BAD_REQUEST (field set) for a value refused, SB_E_STORE otherwise.
 */
#ifndef SB_STORE_QUOTA_H
#define SB_STORE_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct sb_store;

/* 0 = no limit of that kind. */
struct sb_store_limits {
    int64_t rpm;               /* requests per minute, 0..SB_STORE_LIMIT_MAX */
    int64_t tpm;               /* tokens per minute, 0..SB_STORE_LIMIT_MAX */
    double budget_usd;         /* spend per period, >= 0, finite */
    const char *budget_period; /* "day" | "month" (UTC); NULL when budget_usd is 0 */
};

#define SB_STORE_LIMIT_MAX 1000000000000LL /* rpm/tpm ceiling (router/limits.h SB_LIMITS_MAX) */
#define SB_STORE_BUDGET_MAX 1e9            /* USD per period */

/* One key's or one user's limits, for the registry build (only rows with a limit). */
struct sb_store_limits_row {
    int64_t key_id;   /* a key's row id; 0 for a user's row */
    const char *user; /* a user's username; NULL for a key's row */
    struct sb_store_limits l;
};

/* Summed usage of one key or user. */
struct sb_store_spend {
    const char *id;   /* usage_logs.key_id or user_id */
    double cost_usd;  /* sum of cost_usd */
    int64_t requests; /* rows */
};

enum sb_store_spend_by { SB_SPEND_BY_KEY, SB_SPEND_BY_USER };

struct sb_store_quota_ops {
    sb_err (*key_limits_set)(struct sb_store *s, int64_t key_id, const struct sb_store_limits *l,
                             struct sb_error *err);
    sb_err (*key_limits_get)(struct sb_store *s, int64_t key_id, struct sb_arena *a,
                             struct sb_store_limits *out, struct sb_error *err);
    sb_err (*user_limits_set)(struct sb_store *s, const char *user, const struct sb_store_limits *l,
                              struct sb_error *err);
    sb_err (*user_limits_get)(struct sb_store *s, const char *user, struct sb_arena *a,
                              struct sb_store_limits *out, struct sb_error *err);
    sb_err (*limits_load_all)(struct sb_store *s, struct sb_arena *a,
                              struct sb_store_limits_row **out, size_t *n, struct sb_error *err);
    sb_err (*spend)(struct sb_store *s, enum sb_store_spend_by by, const char *id, int64_t since_ms,
                    struct sb_arena *a, struct sb_store_spend **out, size_t *n,
                    struct sb_error *err);
};

/* SB_E_BAD_REQUEST with the field at fault ("rpm", "tpm", "budget_usd",
 * "budget_period") when l is out of range or a budget has no period. */
sb_err sb_store_limits_check(const struct sb_store_limits *l, struct sb_error *err);

/* Replaces key key_id's limits with l (all of them). SB_E_NOT_FOUND when absent. Borrows l. */
sb_err sb_store_key_limits_set(struct sb_store *s, int64_t key_id, const struct sb_store_limits *l,
                               struct sb_error *err);
/* SB_E_NOT_FOUND when absent. budget_period in a. */
sb_err sb_store_key_limits_get(struct sb_store *s, int64_t key_id, struct sb_arena *a,
                               struct sb_store_limits *out, struct sb_error *err);
/* The same for a user (by username). */
sb_err sb_store_user_limits_set(struct sb_store *s, const char *user,
                                const struct sb_store_limits *l, struct sb_error *err);
sb_err sb_store_user_limits_get(struct sb_store *s, const char *user, struct sb_arena *a,
                                struct sb_store_limits *out, struct sb_error *err);
/* Every key and user with at least one limit, keys first, each by id. Array and strings in a. */
sb_err sb_store_limits_load_all(struct sb_store *s, struct sb_arena *a,
                                struct sb_store_limits_row **out, size_t *n, struct sb_error *err);
/* usage_logs summed by key_id or user_id over rows with ts >= since_ms, for
 * id only (NULL = every key or user with rows; none for empty ids). Array in a. */
sb_err sb_store_spend(struct sb_store *s, enum sb_store_spend_by by, const char *id,
                      int64_t since_ms, struct sb_arena *a, struct sb_store_spend **out, size_t *n,
                      struct sb_error *err);

extern const struct sb_store_quota_ops sb__sqlite_quota_ops;

#endif
