/* SPDX-License-Identifier: MIT */
/*
 * spool.c - request bodies in unlinked temporary files (see spool.h).
 *
 * Owns one file descriptor and, once mapped, one read-only shared mapping;
 * sb_spool_free releases both, sb_spool_give keeps both for the next body
 * (see the pool below). Why a shared map and not a private one: a
 * private map's pages become anonymous memory once written, and
 * MADV_DONTNEED would then throw bytes away; a shared read-only map can only
 * ever show the file, so dropping its pages is always safe.
 */
#include "core/spool.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"

#define SPOOL_MIN_MAP (256u * 1024)

struct sb_spool {
    int fd;                     /* the unlinked file */
    size_t len;                 /* body bytes written */
    size_t fsize;               /* the file's size: a pooled file keeps an older body's bytes */
    bool mapped;                /* writing ended: map holds this body */
    const char *map;            /* PROT_READ, MAP_SHARED, maplen bytes; NULL until first mapped */
    size_t maplen;              /* at least len + 1 (the NUL); kept across uses of a pooled file */
    struct sb_spool_pool *pool; /* the pool it came from, or NULL */
    int slot;                   /* its map's place in pool->region, or -1 */
    struct sb_spool *next;      /* in a pool's free list */
};

#define SLOT_BYTES ((size_t)SB_SPOOL_POOL_FILE_BYTES)
#define REGION_BYTES (SLOT_BYTES * SB_SPOOL_POOL_FILES)

/* O_TMPFILE where the file system has it; otherwise a named file removed at
 * once (the name lives for a few microseconds, mode 0600). */
static int open_unlinked(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
#endif
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/.sb-body-XXXXXX", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int tfd = mkostemp(path, O_CLOEXEC);
    if (tfd >= 0)
        unlink(path);
    return tfd;
}

sb_err sb_spool_create(const char *dir, struct sb_spool **out, struct sb_error *err)
{
    *out = NULL;
    int fd = open_unlinked(dir && *dir ? dir : ".");
    if (fd < 0)
        return sb_fail(err, SB_E_IO, "cannot create a body file in %s: %s", dir && *dir ? dir : ".",
                       strerror(errno));
    struct sb_spool *s = sb_xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->slot = -1;
    *out = s;
    return SB_OK;
}

sb_err sb_spool_write(struct sb_spool *s, const void *p, size_t n, struct sb_error *err)
{
    const char *at = p;
    while (n > 0) {
        ssize_t k = pwrite(s->fd, at, n, (off_t)s->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return sb_fail(err, SB_E_IO, "cannot write the request body to its file: %s",
                           k < 0 ? strerror(errno) : "no progress");
        at += k;
        n -= (size_t)k;
        s->len += (size_t)k;
    }
    if (s->len > s->fsize)
        s->fsize = s->len;
    return SB_OK;
}

/* The reserved address range of a pool's maps (see sb_spool_pool_sweep). */
static char *region_of(struct sb_spool_pool *p)
{
    if (!p->region) {
        void *r =
            mmap(NULL, REGION_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        p->region = r == MAP_FAILED ? NULL : r;
    }
    return p->region;
}

/* Maps the reservation back over a slot. Never a hole in the region:
 * another map could land there, and the sweep's madvise would drop its
 * pages. */
static void reserve(char *at)
{
    if (mmap(at, SLOT_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
             0) == MAP_FAILED)
        abort(); /* out of memory for a page table: STYLE.md practice 10 */
}

/* Maps a pool's file into a free slot of the pool's region (SLOT_BYTES,
 * reaching past the file's end, which nothing reads). False when there is
 * no pool, no region or no free slot: the caller maps it on its own. */
static bool map_in_slot(struct sb_spool *s)
{
    struct sb_spool_pool *p = s->pool;
    if (!p || s->slot >= 0 || ~p->slots == 0 || !region_of(p))
        return false;
    int k = __builtin_ctzll(~p->slots);
    char *at = p->region + (size_t)k * SLOT_BYTES;
    if (mmap(at, SLOT_BYTES, PROT_READ, MAP_SHARED | MAP_FIXED, s->fd, 0) == MAP_FAILED) {
        reserve(at); /* a failed MAP_FIXED may have unmapped the range */
        return false;
    }
    if (s->map)
        munmap((void *)s->map, s->maplen);
    p->slots |= 1ull << k;
    s->slot = k;
    s->map = at;
    s->maplen = SLOT_BYTES;
    return true;
}

/* Gives s's map back: its slot to the region's reservation, or unmapped. */
static void unmap(struct sb_spool *s)
{
    if (s->slot >= 0) {
        reserve((char *)s->map);
        s->pool->slots &= ~(1ull << s->slot);
    } else if (s->map) {
        munmap((void *)s->map, s->maplen);
    }
    s->map = NULL;
    s->slot = -1;
}

/* A map of at least n bytes: the one the file already has when it is large
 * enough (a pooled file), else a new one (at least 256 KiB, so that a pooled
 * file is mapped again only for a larger body than it has seen). */
static sb_err map_at_least(struct sb_spool *s, size_t n, struct sb_error *err)
{
    if (s->map && s->maplen >= n)
        return SB_OK;
    if (n <= SLOT_BYTES && map_in_slot(s))
        return SB_OK;
    size_t want = n < SPOOL_MIN_MAP ? SPOOL_MIN_MAP : n;
    void *m = mmap(NULL, want, PROT_READ, MAP_SHARED, s->fd, 0);
    if (m == MAP_FAILED)
        return sb_fail(err, SB_E_IO, "cannot map the request body's file: %s", strerror(errno));
    unmap(s);
    s->map = m;
    s->maplen = want;
    return SB_OK;
}

sb_err sb_spool_map(struct sb_spool *s, struct sb_slice *out, struct sb_error *err)
{
    /* One NUL after the body, in the file, so the mapping ends like an
     * sb_buf; it is never part of a piece sent upstream (len excludes it).
     * The map may reach past the file's end (a map made for a larger body):
     * nothing reads past the NUL. */
    size_t len = s->len;
    if (!s->mapped) {
        if (sb_spool_write(s, "", 1, err) != SB_OK)
            return err->code;
        s->len = len;
        if (map_at_least(s, len + 1, err) != SB_OK)
            return err->code;
        s->mapped = true;
    }
    *out = (struct sb_slice){s->map, s->len};
    return SB_OK;
}

void sb_spool_release(const struct sb_spool *s)
{
    if (s && s->mapped && s->slot >= 0)
        s->pool->dirty = true; /* the pool's next sweep drops it with the others */
    else if (s && s->mapped)
        madvise((void *)s->map, s->len + 1, MADV_DONTNEED);
}

bool sb_spool_holds(const struct sb_spool *s, const char *p, size_t n, uint64_t *off)
{
    if (!s || !s->mapped || !p || p < s->map || (size_t)(p - s->map) > s->len ||
        n > s->len - (size_t)(p - s->map))
        return false;
    *off = (uint64_t)(p - s->map);
    return true;
}

int sb_spool_fd(const struct sb_spool *s)
{
    return s->fd;
}

size_t sb_spool_len(const struct sb_spool *s)
{
    return s->len;
}

ssize_t sb_spool_read(const struct sb_spool *s, void *buf, size_t n, uint64_t off)
{
    if (off >= s->len)
        return 0; /* the NUL that sb_spool_map added is not the body's */
    if (n > s->len - off)
        n = (size_t)(s->len - off);
    for (;;) {
        ssize_t k = pread(s->fd, buf, n, (off_t)off);
        if (k >= 0)
            return k;
        if (errno != EINTR)
            return -errno;
    }
}

void sb_spool_free(struct sb_spool *s)
{
    if (!s)
        return;
    unmap(s);
    close(s->fd);
    free(s);
}

/* ---- the pool ---- */

sb_err sb_spool_take(struct sb_spool_pool *p, const char *dir, struct sb_spool **out,
                     struct sb_error *err)
{
    struct sb_spool *s = p->free;
    p->taken++;
    if (!s) {
        sb_err rc = sb_spool_create(dir, out, err);
        if (rc == SB_OK)
            (*out)->pool = p;
        return rc;
    }
    p->free = s->next;
    p->n--;
    p->bytes -= s->fsize;
    s->next = NULL;
    s->len = 0;
    s->mapped = false;
    *out = s;
    return SB_OK;
}

void sb_spool_give(struct sb_spool_pool *p, struct sb_spool *s)
{
    if (!s)
        return;
    if (p->n >= SB_SPOOL_POOL_FILES || s->fsize > SB_SPOOL_POOL_FILE_BYTES ||
        p->bytes + s->fsize > SB_SPOOL_POOL_BYTES) {
        sb_spool_free(s);
        return;
    }
    s->next = p->free;
    p->free = s;
    p->n++;
    p->bytes += s->fsize;
}

void sb_spool_pool_sweep(struct sb_spool_pool *p)
{
    if (p->dirty && p->region)
        madvise(p->region, REGION_BYTES, MADV_DONTNEED);
    p->dirty = false;
}

void sb_spool_pool_free(struct sb_spool_pool *p)
{
    while (p->free) {
        struct sb_spool *s = p->free;
        p->free = s->next;
        sb_spool_free(s);
    }
    p->n = 0;
    p->bytes = 0;
    if (p->region && p->slots == 0) { /* no spool in use maps into it */
        munmap(p->region, REGION_BYTES);
        p->region = NULL;
    }
    p->dirty = false;
}
