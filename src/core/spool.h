/* SPDX-License-Identifier: MIT */
/*
 * spool.h - a request body kept in an unlinked temporary file instead of
 * the heap (nginx's client_body_temp), for bodies over the server's
 * body_buffer_bytes.
 *
 * The file is written as the body arrives, then mapped read-only and shared
 * (MAP_SHARED, PROT_READ): readers that need contiguous bytes (the JSON
 * parse, a translation) read the mapping, whose pages come from the page
 * cache and can be dropped from the process at any time with
 * sb_spool_release() without losing a byte (a later read faults them in
 * again from the file). Senders that only move bytes (the upstream client)
 * ask sb_spool_holds() whether a piece lies in the mapping and then send it
 * from the file (sendfile, pread) without touching the mapping.
 *
 * The file has no name from the start (O_TMPFILE, else mkstemp + unlink),
 * so nothing is left on disk when the process dies. Runs on one thread.
 */
#ifndef SB_CORE_SPOOL_H
#define SB_CORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/slice.h"

struct sb_spool;

/* Opens an empty unlinked file in dir (a directory the gateway owns).
 * Returns owned (free with sb_spool_free), or SB_E_IO with err saying why. */
sb_err sb_spool_create(const char *dir, struct sb_spool **out, struct sb_error *err);
/* Appends p[0..n) to the file (write(2), short writes and EINTR retried).
 * SB_E_IO on a write error (ENOSPC, EFBIG, EIO): err names it. Not after
 * sb_spool_map. */
sb_err sb_spool_write(struct sb_spool *s, const void *p, size_t n, struct sb_error *err);
/* Ends writing and maps the file read-only: *out is its bytes, valid until
 * sb_spool_free, followed by a NUL that len does not count (what sb_buf
 * gives its readers). An empty file maps as an empty string. */
sb_err sb_spool_map(struct sb_spool *s, struct sb_slice *out, struct sb_error *err);
/* Drops the mapping's pages from this process (MADV_DONTNEED on a shared
 * read-only map: the bytes stay in the file and reads fault them back).
 * Accepts NULL or an unmapped spool. */
void sb_spool_release(const struct sb_spool *s);
/* Whether p[0..n) lies inside the mapping; its offset in the file in *off. */
bool sb_spool_holds(const struct sb_spool *s, const char *p, size_t n, uint64_t *off);
/* The file, for sendfile(2) and pread(2), and its length in bytes. */
int sb_spool_fd(const struct sb_spool *s);
size_t sb_spool_len(const struct sb_spool *s);
/* pread of up to n bytes at off: the count (0 at the end), or -errno. */
ssize_t sb_spool_read(const struct sb_spool *s, void *buf, size_t n, uint64_t off);
/* Unmaps and closes. Accepts NULL. */
void sb_spool_free(struct sb_spool *s);

#endif
