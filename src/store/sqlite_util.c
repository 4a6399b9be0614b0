/* SPDX-License-Identifier: MIT */
/*
 * sqlite_util.c - small helpers every SQLite backend file uses (sqlite_int.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "store/sqlite_int.h"

sqlite3 *sb__sq_db(struct sb_store *s)
{
    return ((struct sb__sqlite_store *)s)->db;
}

sb_err sb__sq_fail(sqlite3 *db, struct sb_error *err, const char *what)
{
    return sb_fail(err, SB_E_STORE, "sqlite: %s: %s", what, sqlite3_errmsg(db));
}

sb_err sb__sq_exec(sqlite3 *db, const char *sql, struct sb_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return SB_OK;
    sb_err rc = sb_fail(err, SB_E_STORE, "sqlite: %.60s: %s", sql, msg ? msg : "failed");
    sqlite3_free(msg);
    return rc;
}

sb_err sb__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct sb_error *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return SB_OK;
    *st = NULL;
    return sb__sq_fail(db, err, "prepare");
}

void sb__sq_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs sql, calling fn(ud, row) for each row until fn fails. */
sb_err sb__sq_query(sqlite3 *db, const char *sql, sb__sq_row_fn fn, void *ud, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step == SQLITE_ROW)
            rc = fn(ud, st, err);
        else
            rc = sb__sq_fail(db, err, "query");
    }
    sqlite3_finalize(st);
    return rc;
}

int64_t sb__sq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Binds a C string or NULL. SQLITE_TRANSIENT: the statement copies it. */
void sb__sq_bind_str(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

void *sb__vec_push(struct sb__vec *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->p = sb_xrealloc(v->p, v->cap * v->size);
    }
    void *e = (char *)v->p + v->n++ * v->size;
    memset(e, 0, v->size);
    return e;
}

void *sb__vec_to_arena(struct sb__vec *v, struct sb_arena *a)
{
    void *p = sb_arena_alloc(a, (v->n ? v->n : 1) * v->size);
    if (v->n)
        memcpy(p, v->p, v->n * v->size);
    free(v->p);
    v->p = NULL;
    return p;
}

/* Column i as an arena string, or NULL for SQL NULL. */
const char *sb__sq_col_str(struct sb_arena *a, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    return sb_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

static int64_t usage_ts(int64_t ms)
{
    return ms < 0 ? 0 : ms > SB__USAGE_TS_MAX ? SB__USAGE_TS_MAX : ms;
}

int64_t sb__sq_usage_id(int64_t ts_ms, uint32_t seq)
{
    uint64_t low = seq & ((UINT32_C(1) << SB__USAGE_SEQ_BITS) - 1);
    return (int64_t)((uint64_t)usage_ts(ts_ms) << SB__USAGE_SEQ_BITS | low);
}

void sb__sq_usage_ids(int64_t from_ms, int64_t to_ms, int64_t *lo, int64_t *hi)
{
    *lo = sb__sq_usage_id(from_ms, 0);
    /* The last millisecond's ids end where the next one's begin; to_ms - 1 cannot
     * overflow once to_ms > from_ms, nor can the sum past SB__USAGE_TS_MAX + 1. */
    *hi =
        to_ms > from_ms ? sb__sq_usage_id(to_ms - 1, 0) + ((int64_t)1 << SB__USAGE_SEQ_BITS) : *lo;
}
