/* SPDX-License-Identifier: MIT */
/*
 * sqlite_int.h - what the SQLite backend's files share (store layer only).
 *
 * The backend is split by subject (sqlite.c: connection, migrations,
 * settings, system entries, loading, usage; more files add the control
 * plane's tables); they share one connection struct and the small helpers
 * below (sqlite_util.c). Nothing outside src/store/ includes this.
 */
#ifndef SB_STORE_SQLITE_INT_H
#define SB_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/store.h"

struct sb__sqlite_store {
    struct sb_store base;       /* must be first */
    sqlite3 *db;                /* the connection */
    sqlite3_stmt *usage_insert; /* prepared on first use, kept until close */
};

/* The connection of a SQLite store. */
sqlite3 *sb__sq_db(struct sb_store *s);
/* SB_E_STORE "sqlite: what: <sqlite's message>". */
sb_err sb__sq_fail(sqlite3 *db, struct sb_error *err, const char *what);
/* Runs one or more statements with no results. */
sb_err sb__sq_exec(sqlite3 *db, const char *sql, struct sb_error *err);
/* Prepares sql; *st is NULL on failure. Finalize with sqlite3_finalize. */
sb_err sb__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct sb_error *err);
/* Rolls back the open transaction, if any. */
void sb__sq_rollback(sqlite3 *db);

typedef sb_err (*sb__sq_row_fn)(void *ud, sqlite3_stmt *st, struct sb_error *err);
/* Runs sql (no parameters), calling fn(ud, row) for each row until fn fails. */
sb_err sb__sq_query(sqlite3 *db, const char *sql, sb__sq_row_fn fn, void *ud, struct sb_error *err);
/* Wall-clock Unix milliseconds. */
int64_t sb__sq_now_ms(void);
/* Binds a C string (copied by SQLite) or NULL. */
void sb__sq_bind_str(sqlite3_stmt *st, int i, const char *v);
/* Column i as an arena string, or NULL for SQL NULL. */
const char *sb__sq_col_str(struct sb_arena *a, sqlite3_stmt *st, int i);

/* A growable array on the heap, copied into the result arena at the end. */
struct sb__vec {
    void *p;
    size_t n, cap, size; /* elements used, allocated, element size */
};
/* Appends a zeroed element and returns it. */
void *sb__vec_push(struct sb__vec *v);
/* Moves the elements into a (at least one element's room) and frees the heap copy. */
void *sb__vec_to_arena(struct sb__vec *v, struct sb_arena *a);

#endif
