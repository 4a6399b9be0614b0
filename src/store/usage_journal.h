/* SPDX-License-Identifier: MIT */
/*
 * usage_journal.h - the usage writer's spill file: an append-only journal of
 * usage rows and audit records that the database could not take yet.
 *
 * File layout (all integers little-endian):
 *   header, 32 bytes: "SBUSAGE1", a random 16-byte journal id, CRC-32 of
 *   the 24 bytes before it, 4 zero bytes. The id names this file in the
 *   replay mark the database keeps (usage.c), so a new journal never
 *   inherits an old file's offset.
 *   records, each: magic "SBUR", u32 payload length (1..SB_UJ_MAX_PAYLOAD),
 *   u32 CRC-32 of the length field and the payload, then the payload:
 *   one type byte (1 usage, 2 audit) and the fields in a fixed order
 *   (usage_journal.c). A payload has exactly one encoding: a decoder refuses
 *   trailing bytes, embedded NULs and out-of-range values, so decode then
 *   encode gives back the same bytes (the fuzz target checks it).
 * Self-delimiting and checksummed: a reader finds where every record ends,
 * knows a torn one from a whole one, and after a damaged region finds the
 * next whole record by its magic (resync).
 *
 * The format half is pure (no I/O). The file half (usage_journal_file.c)
 * is thread-safe for append and pending(); reading, marking done and
 * removing belong to one thread (the usage writer).
 */
#ifndef SB_STORE_USAGE_JOURNAL_H
#define SB_STORE_USAGE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/identity.h"
#include "store/usage.h"

#define SB_UJ_HEADER 32                /* file header bytes */
#define SB_UJ_REC_HEAD 12              /* magic, length, CRC */
#define SB_UJ_MAX_PAYLOAD (1u << 20)   /* an audit record is at most ~10 x 64 KiB */
#define SB_UJ_MAGIC "SBUR"             /* 4 bytes at the start of every record */
#define SB_UJ_MARK_KEY "usage_journal" /* settings key of the replay mark */

enum sb_uj_type { SB_UJ_USAGE = 1, SB_UJ_AUDIT = 2 };

/* One decoded record. */
struct sb_uj_rec {
    enum sb_uj_type type;
    struct sb_usage usage; /* type SB_UJ_USAGE */
    struct sb_audit audit; /* type SB_UJ_AUDIT: its strings point into block */
    char *block;           /* owned (free with free()); NULL for usage rows */
};

/* ---- the format (pure; usage_journal.c) ---- */

/* CRC-32 (IEEE 802.3, reflected, as zlib and PNG use) of p[0..n), continuing crc (0 to start). */
uint32_t sb_uj_crc32(uint32_t crc, const void *p, size_t n);
/* The 32-byte file header for id. */
void sb_uj_encode_header(uint8_t out[SB_UJ_HEADER], const uint8_t id[16]);
/* True when p[0..n) starts with a valid header; copies its id. */
bool sb_uj_parse_header(const uint8_t *p, size_t n, uint8_t id[16]);
/* Append one framed record (head and payload) to out. Borrow u / a. */
void sb_uj_encode_usage(struct sb_buf *out, const struct sb_usage *u);
void sb_uj_encode_audit(struct sb_buf *out, const struct sb_audit *a);
/*
 * Parses the record that starts at p[0..n).
 *   SB_OK: *rec filled (free rec->block), *used = the record's framed size;
 *   SB_AGAIN: p may be the start of a record longer than n bytes;
 *   SB_E_BAD_REQUEST: no valid record starts at p (err says why).
 */
sb_err sb_uj_parse(const uint8_t *p, size_t n, struct sb_uj_rec *rec, size_t *used,
                   struct sb_error *err);

/* ---- the file (usage_journal_file.c) ---- */

struct sb_uj;

/*
 * Opens the journal at path (borrowed; copied). An existing file is
 * checked: a torn tail (bytes after the last whole record that hold no
 * whole record) is cut off; a file shorter than its header is removed
 * (nothing was appended to it yet); a damaged header moves the file aside
 * to PATH.corrupt-<unix s> with an error logged. No file: one is created at
 * the first append (mode 0600, O_EXCL). Returns owned *out (free with
 * sb_uj_close).
 */
sb_err sb_uj_open(const char *path, struct sb_uj **out, struct sb_error *err);
/* Closes (the file stays). Accepts NULL. */
void sb_uj_close(struct sb_uj *j);
/* Appends whole encoded records bytes[0..n) (nrecs of them) with one write.
 * On failure (disk full) the file is cut back: none of them is in it.
 * Thread-safe. Not synced: see sb_uj_sync. */
sb_err sb_uj_append(struct sb_uj *j, const void *bytes, size_t n, size_t nrecs,
                    struct sb_error *err);
/* fdatasync when something was appended since the last sync. Thread-safe
 * with append (the sync itself runs outside the lock). */
sb_err sb_uj_sync(struct sb_uj *j, struct sb_error *err);
/* Records and bytes appended and not yet marked done. Thread-safe. */
void sb_uj_pending(struct sb_uj *j, uint64_t *recs, uint64_t *bytes);
/* "<32 hex id>:<offset>": the mark that says bytes before offset are in the
 * database. out must hold 64 bytes. */
void sb_uj_mark(struct sb_uj *j, uint64_t offset, char out[64]);
/* The offset a mark names when it is this journal's, else 0. */
uint64_t sb_uj_mark_offset(struct sb_uj *j, const char *mark);
/*
 * Reader (one thread). Decodes up to max records from the replay offset
 * on: recs[0..*n) with ends[i] the offset just past record i; *next is
 * where the next read starts and *skipped counts damaged regions passed
 * over (their records are lost; the caller counts and logs them). *n = 0
 * and *next = the offset means nothing is left.
 */
sb_err sb_uj_read(struct sb_uj *j, struct sb_uj_rec *recs, size_t max, size_t *n, uint64_t *ends,
                  uint64_t *next, uint64_t *skipped, struct sb_error *err);
/* Marks everything before offset as in the database (nrecs records). */
void sb_uj_done(struct sb_uj *j, uint64_t offset, uint64_t nrecs);
/* Removes the file when every record is done; true when no file is left. */
bool sb_uj_remove_if_done(struct sb_uj *j);

#endif
