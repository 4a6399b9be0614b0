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
 *
 * A pool (one per worker) keeps files and their maps for the next body:
 * making an inode, mapping, unmapping and closing cost far more than the
 * bytes when bodies are ~100 KB (perf at 100 KB prompts, c64: the inode's
 * creation 15 % of the worker, unmap and close another 6 %), and a reused
 * file's page-cache pages are overwritten rather than allocated. A pooled
 * file still holds an older body's bytes past the current one; nothing
 * reads past a body's NUL (sb_spool_holds, sb_spool_read).
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
 * sb_spool_free or sb_spool_give, followed by a NUL that len does not count (what sb_buf
 * gives its readers). An empty file maps as an empty string. */
sb_err sb_spool_map(struct sb_spool *s, struct sb_slice *out, struct sb_error *err);
/* Drops the body's pages from this process (MADV_DONTNEED on a shared
 * read-only map: the bytes stay in the file and reads fault them back); a
 * pooled file's at its pool's next sweep. Accepts NULL or an unmapped
 * spool. Why it matters even when little was read: the kernel maps up to
 * 64 KiB of cached pages around each page a read faults in. */
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

/* Files a pool keeps: at most this many, each at most this large, and at
 * most this many bytes together (what they hold on disk and in the page
 * cache; the pages are clean once written back, so the kernel can drop
 * them). A larger file is closed when its body ends. */
#define SB_SPOOL_POOL_FILES 64
#define SB_SPOOL_POOL_FILE_BYTES (1u << 20)
#define SB_SPOOL_POOL_BYTES (16u << 20)

struct sb_spool_pool {
    struct sb_spool *free; /* files ready for a body */
    size_t n, bytes;       /* their count and sizes */
    size_t taken;          /* sb_spool_take calls: the owner's idle check resets it */
    char *region;          /* reserved addresses: a slot of SB_SPOOL_POOL_FILE_BYTES per file */
    uint64_t slots;        /* bit k: slot k holds a file's map */
    bool dirty;            /* an sb_spool_release waits for the next sweep */
};

/* An empty spool: a pooled file when there is one, else sb_spool_create. */
sb_err sb_spool_take(struct sb_spool_pool *p, const char *dir, struct sb_spool **out,
                     struct sb_error *err);
/* Ends s's body: back to the pool within its bounds, else freed. Accepts NULL. */
void sb_spool_give(struct sb_spool_pool *p, struct sb_spool *s);
/* Drops the pages of every map in the pool's region when an
 * sb_spool_release asked for it since the last sweep: one madvise (one TLB
 * flush) for all the bodies released meanwhile, where one per body cost
 * 13 % of the worker at 100 KB prompts, c64 (a page-table flush is dear on
 * a VM). Dropping pages of a body still in use is safe: they are the
 * file's, and a later read faults them back. The owner calls it at most
 * every few milliseconds. */
void sb_spool_pool_sweep(struct sb_spool_pool *p);
/* Frees every pooled file (and the region, once no spool in use maps into it). */
void sb_spool_pool_free(struct sb_spool_pool *p);

#endif
