/* SPDX-License-Identifier: MIT */
/*
 * usage.h - the usage queue, its writer thread and its spill journal.
 *
 * Workers submit one record per request; the call packs the record (only
 * the bytes its strings use) into a bounded queue under a short mutex and
 * never waits on the database. A writer thread drains the queue in batches
 * (one transaction per batch).
 *
 * Nothing is dropped, and memory stays bounded: when the database fails or
 * is slow, records spill to an append-only journal file next to it
 * (store/usage_journal.h) and are replayed, in order and exactly once, when
 * it takes writes again; then the file is removed. The queue holds at most
 * max_rows records and max_bytes bytes (of packed rows, and of audit
 * records with their strings); a submit that finds it full appends
 * its record to the journal itself (one write() to the page cache, no
 * fsync; see usage.c for the measured cost). The only loss left is a
 * journal that cannot be written either (disk full, no journal configured):
 * logged as an error and counted (sb_usage_stats.lost).
 *
 * What is guaranteed: a record is durable once the writer committed it to
 * the database or appended it to the journal and synced (fdatasync once per
 * writer round, at most FLUSH_MS after submit while spilling). A record
 * still in memory when the process is killed (SIGKILL, crash, power loss)
 * is lost; stop() (SIGTERM) first writes every queued record to the
 * database or the journal. A crash mid-append tears at most the records of
 * that unsynced append, which are cut off at the next start.
 *
 * The same writer carries the audit log (sb_usage_submit_audit): control
 * plane changes are rare, so they share the thread, its batches and its
 * journal. The writer also raises api_keys.last_used_at for the keys the
 * rows used (usage key_id is the key's row id in decimal) and
 * models.last_used_at for the models that answered (status "ok"), in the
 * last transaction of each round.
 */
#ifndef SB_STORE_USAGE_H
#define SB_STORE_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct sb_store;
struct sb_usage_writer;
struct sb_audit;

struct sb_usage {
    char request_id[40];
    int64_t ts_ms;    /* request start, Unix ms */
    char user_id[40]; /* empty = admin/none */
    char key_id[40];  /* virtual key id, empty = admin token */
    char route[64];
    char provider[64];
    char model[128];
    char variant[32];
    char status[16]; /* "ok" | "error" | "cancelled" */
    int http_status;
    int64_t prompt_tokens; /* -1 unknown */
    int64_t completion_tokens;
    double cost_usd;
    double latency_ms;
    double ttft_ms; /* -1 when not streamed or no byte came */
    bool streamed;
    int fallbacks;
    char error_code[32]; /* sb_err_name, empty when ok */
};

/* Writer options; zero fields take the defaults. */
struct sb_usage_opts {
    const char *journal_path; /* spill file (borrowed), NULL = none: what the database
                                 refuses is lost (counted); for :memory: and tests */
    size_t max_rows;          /* queue cap in records, 0 = 65536 */
    size_t max_bytes;         /* queue cap in bytes, 0 = 16 MiB */
    long (*inflight)(void);   /* requests in flight now; at 4 or fewer the writer
                                 yields the core every 8 rows (usage.c). NULL = never */
};

/* Counters and gauges for /metrics and tests. */
struct sb_usage_stats {
    uint64_t written;       /* usage rows stored in the database */
    uint64_t lost;          /* usage rows neither stored nor journaled */
    uint64_t audit_written; /* audit records stored */
    uint64_t audit_lost;    /* audit records lost (journal failed, or the schema refused) */
    uint64_t queue_rows;    /* records in memory now: the queue and the writer's batch */
    uint64_t queue_peak;    /* the most records the queue ever held at once */
    uint64_t journal_rows;  /* records in the journal, not yet in the database */
    uint64_t journal_bytes; /* their bytes */
    uint64_t spilled;       /* records ever appended to the journal */
};

/*
 * Starts the writer over store (takes ownership of store; stop closes it).
 * An existing journal at o->journal_path is checked and replayed in the
 * background, before any newer record reaches the database. o may be NULL.
 * Returns NULL with err set when the journal cannot be opened.
 */
struct sb_usage_writer *sb_usage_writer_open(struct sb_store *store, const struct sb_usage_opts *o,
                                             struct sb_error *err);
/* sb_usage_writer_open with no journal and the default caps. */
struct sb_usage_writer *sb_usage_writer_start(struct sb_store *store, struct sb_error *err);
/*
 * The default journal path for database URL db_url: "sqlite:PATH" gives
 * PATH.usage-journal. False (out untouched) for an in-memory database or
 * another scheme, or when out (size bytes) is too small.
 */
bool sb_usage_journal_path(const char *db_url, char *out, size_t size);
/* Packs u into the queue, or appends it to the journal when the queue is full.
 * Thread-safe; never waits on the database. Borrows u. */
void sb_usage_submit(struct sb_usage_writer *w, const struct sb_usage *u);
/*
 * Copies audit record a (its strings too) into the same queue; the writer
 * inserts it in the same batch loop as usage rows, and stop() flushes it.
 * Thread-safe, never blocks on I/O. Borrows a. Strings longer than 64 KiB
 * (before/after JSON) are replaced by {"truncated":true}.
 */
void sb_usage_submit_audit(struct sb_usage_writer *w, const struct sb_audit *a);
/* Writes everything queued to the database or the journal, tries the
 * journal's replay once more, joins the thread, closes the store. Accepts NULL. */
void sb_usage_writer_stop(struct sb_usage_writer *w);
/* Fills *out (a consistent-enough snapshot; each field is read atomically). */
void sb_usage_stats(struct sb_usage_writer *w, struct sb_usage_stats *out);
/* Rows written so far and rows lost (for /metrics and tests). */
uint64_t sb_usage_written(const struct sb_usage_writer *w);
uint64_t sb_usage_failed(const struct sb_usage_writer *w);
/* Audit records written and lost so far. */
uint64_t sb_usage_audit_written(const struct sb_usage_writer *w);
uint64_t sb_usage_audit_failed(const struct sb_usage_writer *w);

#endif
