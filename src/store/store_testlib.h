/* SPDX-License-Identifier: MIT */
/*
 * store_testlib.h - a fresh SQLite file per test, for the unit tests that
 * need a real database: a new name from mkstemp (the file itself removed,
 * so the store creates it and runs every migration), and afterwards the
 * file with its -wal and -shm companions removed. Test code only.
 */
#ifndef SB_STORE_TESTLIB_H
#define SB_STORE_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

#endif
