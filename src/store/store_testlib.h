/* SPDX-License-Identifier: MIT */
/*
 * store_testlib.h - a fresh SQLite file per test, for the unit tests that
 * need a real database: a new name from mkstemp (the file itself removed,
 * so the store creates it and runs every migration), and afterwards the
 * file with its -wal and -shm companions removed. Also the store tests'
 * shared checks: open-and-migrate, OK/FAILS, and a raw scalar query on a
 * connection of its own. Test code only (cmocka).
 */
#ifndef SB_STORE_TESTLIB_H
#define SB_STORE_TESTLIB_H

#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "store/store.h"

#define SBT_PATH_MAX 64
#define SBT_URL_MAX 80

/* A new unused path /tmp/sb-<tag>-XXXXXX and its store URL "sqlite:<path>". */
static inline void sbt_db_new(const char *tag, char path[SBT_PATH_MAX], char url[SBT_URL_MAX])
{
    snprintf(path, SBT_PATH_MAX, "/tmp/sb-%s-XXXXXX", tag);
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    unlink(path);
    snprintf(url, SBT_URL_MAX, "sqlite:%s", path);
}

/* Removes the database at path and its WAL files. */
static inline void sbt_db_remove(const char *path)
{
    char p[SBT_PATH_MAX + 8];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* Opens the store at url and runs every migration, failing the test with
 * err's message otherwise. Returns owned (free with sb_store_close). */
static inline struct sb_store *sbt_store_open(const char *url, struct sb_error *err)
{
    struct sb_store *s = NULL;
    if (sb_store_open(url, &s, err) != SB_OK || sb_store_migrate(s, err) != SB_OK)
        fail_msg("%s", err->msg);
    return s;
}

/* First column of the first row of sql, as an integer (-1 when no row), read
 * on a connection of its own to the database at path: what is on disk. */
static inline long long sbt_scalar(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/*
 * The calls under test report into the test file's own `static struct
 * sb_error E` (the last error); these two read it. OK fails the test with
 * E's message unless call returns SB_OK. FAILS clears E, then expects call
 * to fail with code and, when fld is not NULL, E.field == fld.
 */
#define OK(call)                                                                                   \
    do {                                                                                           \
        if ((call) != SB_OK)                                                                       \
            fail_msg("%s: %s", #call, E.msg);                                                      \
    } while (0)

#define FAILS(call, code, fld)                                                                     \
    do {                                                                                           \
        memset(&E, 0, sizeof(E));                                                                  \
        sb_err rc_ = (call);                                                                       \
        if (rc_ != (code))                                                                         \
            fail_msg("%s: got %s (%s), want %s", #call, sb_err_name(rc_), E.msg,                   \
                     sb_err_name(code));                                                           \
        if ((fld) != NULL)                                                                         \
            assert_string_equal(E.field, (const char *)(fld));                                     \
    } while (0)

#endif
