/* SPDX-License-Identifier: MIT */
/*
 * idindex.h - records found by a string id, read by many threads without a
 * lock: the router's health records (router.c) and the limiter's scopes
 * (limits_mem.c).
 *
 * The index owns fixed-size records, each created zeroed on its id's first
 * sight and kept, at the same address, until sb_idindex_free: a caller that
 * found a record may keep the pointer. The key is a char array inside the
 * record; ids are compared and hashed (FNV-1a) over at most key_size - 1
 * chars, so longer ids are cut there and share their prefix's record.
 *
 * Publication. The slots are an open-addressing table (linear probing) that
 * readers probe with acquire loads and no lock. Inserts take the index's
 * own mutex, and each slot goes from NULL to a record once and never changes
 * again: the record (zeroed, key copied, init run) is written first, then
 * stored into its slot with a release store, so a reader whose acquire load
 * sees the pointer sees the record as init left it. When an insert would
 * fill the table past half, a table of twice the size is built, every
 * record copied into it, and the new table published with a release store;
 * inserts then go only to the new one. The old table is not freed (a reader
 * may still be probing it, and an iterator walking it) but kept, frozen,
 * until sb_idindex_free. So a reader that loaded any table, old or new,
 * always probes memory that is alive and finds every record inserted before
 * that table was published; a record inserted after it may be missing.
 *
 * Costs: nothing is ever removed, so the index suits ids that are few and
 * long-lived (deployments, providers, keys, users), not per-request ones.
 */
#ifndef SB_CORE_IDINDEX_H
#define SB_CORE_IDINDEX_H

#include <stddef.h>

struct sb_idindex;
struct sb__idindex_table;

/* An empty index of records of rec_size bytes aligned to rec_align (a type's
 * sizeof and _Alignof), whose key is the char array of key_size bytes at
 * key_off (offsetof, sizeof). Returns owned (free with sb_idindex_free). */
struct sb_idindex *sb_idindex_create(size_t rec_size, size_t rec_align, size_t key_off,
                                     size_t key_size);
/* Frees every record and the index; no other call may be running. NULL is
 * a no-op. */
void sb_idindex_free(struct sb_idindex *x);

/* The record of id, or NULL when it has none yet. No lock; any thread. The
 * record is valid until sb_idindex_free. */
void *sb_idindex_find(struct sb_idindex *x, const char *id);
/* The record of id, created when it has none: zeroed, its key set to id
 * (cut to key_size - 1 chars), then init(rec, ud) when init is not NULL,
 * all before another thread can find it. Lock-free once the record exists;
 * a first sight takes the index's mutex, under which init runs, so init
 * must not call into this index. init is called at most once per record
 * (once per id, when two threads race to create it). Any thread; the
 * record is valid until sb_idindex_free. */
void *sb_idindex_get(struct sb_idindex *x, const char *id, void (*init)(void *rec, void *ud),
                     void *ud);

/* A walk over the records, without a lock, of the table current when it
 * began: it visits every record inserted before sb_idindex_iter_init
 * exactly once (in no useful order). A record inserted during the walk may
 * be visited or not. Memory-safe while other threads insert, since no table
 * or record is freed before the index. Fields are private. Copying an
 * iterator copies its place: the copy walks the same table from there. */
struct sb_idindex_iter {
    struct sb__idindex_table *t; /* the table walked */
    size_t i;                    /* the next slot */
};

void sb_idindex_iter_init(struct sb_idindex_iter *it, struct sb_idindex *x);
/* The next record, or NULL when the walk is over. */
void *sb_idindex_next(struct sb_idindex_iter *it);

#endif
