/* SPDX-License-Identifier: MIT */
/*
 * quota.c - the sb_store_* wrappers for limits and spend (store/quota.h),
 * and the validation every backend shares. A backend without a quota table
 * fails clearly instead of crashing. No SQL here.
 */
#include "store/quota.h"

#include <math.h>
#include <string.h>

#include "store/store.h"

#define QUOTA(s, err)                                                                              \
    do {                                                                                           \
        if (!(s)->ops->quota)                                                                      \
            return sb_fail(err, SB_E_INTERNAL, "store %s has no limits", (s)->ops->name);          \
    } while (0)

sb_err sb_store_limits_check(const struct sb_store_limits *l, struct sb_error *err)
{
    if (l->rpm < 0 || l->rpm > SB_STORE_LIMIT_MAX)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "rpm",
                             "rpm: expected 0 (no limit) to %lld requests per minute",
                             (long long)SB_STORE_LIMIT_MAX);
    if (l->tpm < 0 || l->tpm > SB_STORE_LIMIT_MAX)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "tpm",
                             "tpm: expected 0 (no limit) to %lld tokens per minute",
                             (long long)SB_STORE_LIMIT_MAX);
    if (!isfinite(l->budget_usd) || l->budget_usd < 0 || l->budget_usd > SB_STORE_BUDGET_MAX)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "budget_usd",
                             "budget_usd: expected 0 (no budget) to %.0f USD", SB_STORE_BUDGET_MAX);
    const char *p = l->budget_period;
    if (p && strcmp(p, "day") != 0 && strcmp(p, "month") != 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "budget_period",
                             "budget_period: expected day or month");
    if (l->budget_usd > 0 && !p)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "budget_period",
                             "budget_period: a budget needs a period (day or month)");
    return SB_OK;
}

sb_err sb_store_key_limits_set(struct sb_store *s, int64_t key_id, const struct sb_store_limits *l,
                               struct sb_error *err)
{
    QUOTA(s, err);
    if (sb_store_limits_check(l, err) != SB_OK)
        return err->code;
    return s->ops->quota->key_limits_set(s, key_id, l, err);
}

sb_err sb_store_key_limits_get(struct sb_store *s, int64_t key_id, struct sb_arena *a,
                               struct sb_store_limits *out, struct sb_error *err)
{
    QUOTA(s, err);
    return s->ops->quota->key_limits_get(s, key_id, a, out, err);
}

sb_err sb_store_user_limits_set(struct sb_store *s, const char *user,
                                const struct sb_store_limits *l, struct sb_error *err)
{
    QUOTA(s, err);
    if (sb_store_limits_check(l, err) != SB_OK)
        return err->code;
    return s->ops->quota->user_limits_set(s, user, l, err);
}

sb_err sb_store_user_limits_get(struct sb_store *s, const char *user, struct sb_arena *a,
                                struct sb_store_limits *out, struct sb_error *err)
{
    QUOTA(s, err);
    return s->ops->quota->user_limits_get(s, user, a, out, err);
}

sb_err sb_store_limits_load_all(struct sb_store *s, struct sb_arena *a,
                                struct sb_store_limits_row **out, size_t *n, struct sb_error *err)
{
    *out = NULL;
    *n = 0;
    QUOTA(s, err);
    return s->ops->quota->limits_load_all(s, a, out, n, err);
}

sb_err sb_store_spend(struct sb_store *s, enum sb_store_spend_by by, const char *id,
                      int64_t since_ms, struct sb_arena *a, struct sb_store_spend **out, size_t *n,
                      struct sb_error *err)
{
    *out = NULL;
    *n = 0;
    QUOTA(s, err);
    return s->ops->quota->spend(s, by, id, since_ms, a, out, n, err);
}
