/* SPDX-License-Identifier: MIT */
/*
 * sqlite_quota.c - limits of keys and users, and spend from usage_logs, in
 * SQLite (store/quota.h, migration 5).
 *
 * Keys and users differ only in their table and how a row is named (row id
 * or username), so one table of the two drives every statement. Spend is a
 * GROUP BY over usage_logs from a period's start, a range of usage row ids
 * (migration 12): one id's reload and the start-up's of all ids scan it.
 */
#include <stdio.h>
#include <string.h>

#include "store/quota.h"
#include "store/sqlite_int.h"

enum who { KEY, USER };

static const struct {
    const char *table, *match; /* match: how one row is named */
} whos[] = {
    [KEY] = {"api_keys", "id = ?5"},
    [USER] = {"users", "username = ?5"},
};

static sb_err set(struct sb_store *s, enum who w, int64_t key_id, const char *user,
                  const struct sb_store_limits *l, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    char sql[192];
    snprintf(sql, sizeof(sql),
             "UPDATE %s SET rpm = ?1, tpm = ?2, budget_usd = ?3, budget_period = ?4 WHERE %s",
             whos[w].table, whos[w].match);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    if (l->rpm > 0)
        sqlite3_bind_int64(st, 1, l->rpm);
    if (l->tpm > 0)
        sqlite3_bind_int64(st, 2, l->tpm);
    if (l->budget_usd > 0) {
        sqlite3_bind_double(st, 3, l->budget_usd);
        sb__sq_bind_str(st, 4, l->budget_period);
    }
    if (w == KEY)
        sqlite3_bind_int64(st, 5, key_id);
    else
        sb__sq_bind_str(st, 5, user);
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "set limits");
    else if (sqlite3_changes(db) == 0)
        rc = w == KEY ? sb_fail(err, SB_E_NOT_FOUND, "key %lld not found", (long long)key_id)
                      : sb_fail(err, SB_E_NOT_FOUND, "user '%s' not found", user);
    sqlite3_finalize(st);
    return rc;
}

/* Columns first..first+3 (rpm, tpm, budget_usd, budget_period) into l. */
static void read_limits(struct sb_arena *a, sqlite3_stmt *st, int first, struct sb_store_limits *l)
{
    l->rpm = sqlite3_column_int64(st, first);
    l->tpm = sqlite3_column_int64(st, first + 1);
    l->budget_usd = sqlite3_column_double(st, first + 2);
    l->budget_period = l->budget_usd > 0 ? sb__sq_col_str(a, st, first + 3) : NULL;
}

static sb_err get(struct sb_store *s, enum who w, int64_t key_id, const char *user,
                  struct sb_arena *a, struct sb_store_limits *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    char sql[160];
    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql), "SELECT rpm, tpm, budget_usd, budget_period FROM %s WHERE %s",
             whos[w].table, whos[w].match);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    if (w == KEY)
        sqlite3_bind_int64(st, 5, key_id);
    else
        sb__sq_bind_str(st, 5, user);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_limits(a, st, 0, out);
    else if (step == SQLITE_DONE)
        rc = w == KEY ? sb_fail(err, SB_E_NOT_FOUND, "key %lld not found", (long long)key_id)
                      : sb_fail(err, SB_E_NOT_FOUND, "user '%s' not found", user);
    else
        rc = sb__sq_fail(db, err, "get limits");
    sqlite3_finalize(st);
    return rc;
}

static sb_err key_limits_set(struct sb_store *s, int64_t key_id, const struct sb_store_limits *l,
                             struct sb_error *err)
{
    return set(s, KEY, key_id, NULL, l, err);
}

static sb_err key_limits_get(struct sb_store *s, int64_t key_id, struct sb_arena *a,
                             struct sb_store_limits *out, struct sb_error *err)
{
    return get(s, KEY, key_id, NULL, a, out, err);
}

static sb_err user_limits_set(struct sb_store *s, const char *user, const struct sb_store_limits *l,
                              struct sb_error *err)
{
    return set(s, USER, 0, user, l, err);
}

static sb_err user_limits_get(struct sb_store *s, const char *user, struct sb_arena *a,
                              struct sb_store_limits *out, struct sb_error *err)
{
    return get(s, USER, 0, user, a, out, err);
}

#define ANY_LIMIT " WHERE rpm > 0 OR tpm > 0 OR budget_usd > 0"

static sb_err limits_load_all(struct sb_store *s, struct sb_arena *a,
                              struct sb_store_limits_row **out, size_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_limits_row)};
    sb_err rc = sb__sq_prepare(db,
                               "SELECT 0, id, NULL, rpm, tpm, budget_usd, budget_period"
                               " FROM api_keys" ANY_LIMIT
                               " UNION ALL SELECT 1, 0, username, rpm, tpm, budget_usd,"
                               " budget_period FROM users" ANY_LIMIT " ORDER BY 1, 2, 3",
                               &st, err);
    for (int step = SQLITE_ROW; rc == SB_OK;) {
        step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "load limits");
            break;
        }
        struct sb_store_limits_row *r = sb__vec_push(&v);
        r->key_id = sqlite3_column_int64(st, 1);
        r->user = sb__sq_col_str(a, st, 2);
        read_limits(a, st, 3, &r->l);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

static const char *const spend_cols[] = {
    [SB_SPEND_BY_KEY] = "key_id", [SB_SPEND_BY_USER] = "user_id"};

static sb_err spend(struct sb_store *s, enum sb_store_spend_by by, const char *id, int64_t since_ms,
                    struct sb_arena *a, struct sb_store_spend **out, size_t *n,
                    struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_spend)};
    const char *c = spend_cols[by == SB_SPEND_BY_USER ? SB_SPEND_BY_USER : SB_SPEND_BY_KEY];
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT %s, SUM(cost_usd), COUNT(*) FROM usage_logs WHERE id >= ?3 AND ts >= ?1"
             " AND %s <> ''"
             " AND (?2 IS NULL OR %s = ?2) GROUP BY %s ORDER BY %s",
             c, c, c, c, c);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc == SB_OK) {
        sqlite3_bind_int64(st, 1, since_ms);
        sb__sq_bind_str(st, 2, id);
        sqlite3_bind_int64(st, 3, sb__sq_usage_id(since_ms, 0));
    }
    for (int step = SQLITE_ROW; rc == SB_OK;) {
        step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "spend");
            break;
        }
        struct sb_store_spend *r = sb__vec_push(&v);
        r->id = sb__sq_col_str(a, st, 0);
        r->cost_usd = sqlite3_column_double(st, 1);
        r->requests = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

const struct sb_store_quota_ops sb__sqlite_quota_ops = {
    .key_limits_set = key_limits_set,
    .key_limits_get = key_limits_get,
    .user_limits_set = user_limits_set,
    .user_limits_get = user_limits_get,
    .limits_load_all = limits_load_all,
    .spend = spend,
};
