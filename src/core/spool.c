/* SPDX-License-Identifier: MIT */
/*
 * spool.c - request bodies in unlinked temporary files (see spool.h).
 *
 * Owns one file descriptor and, once mapped, one read-only shared mapping;
 * sb_spool_free releases both. Why a shared map and not a private one: a
 * private map's pages become anonymous memory once written, and
 * MADV_DONTNEED would then throw bytes away; a shared read-only map can only
 * ever show the file, so dropping its pages is always safe.
 */
#include "core/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"

struct sb_spool {
    int fd;          /* the unlinked file */
    size_t len;      /* body bytes written */
    const char *map; /* PROT_READ, MAP_SHARED, len + 1 bytes; NULL until mapped */
    size_t maplen;   /* bytes mapped (len + 1: the NUL) */
};

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
    *out = s;
    return SB_OK;
}

sb_err sb_spool_write(struct sb_spool *s, const void *p, size_t n, struct sb_error *err)
{
    const char *at = p;
    while (n > 0) {
        ssize_t k = write(s->fd, at, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return sb_fail(err, SB_E_IO, "cannot write the request body to its file: %s",
                           k < 0 ? strerror(errno) : "no progress");
        at += k;
        n -= (size_t)k;
        s->len += (size_t)k;
    }
    return SB_OK;
}

sb_err sb_spool_map(struct sb_spool *s, struct sb_slice *out, struct sb_error *err)
{
    /* One NUL after the body, in the file, so the mapping ends like an
     * sb_buf; it is never part of a piece sent upstream (len excludes it). */
    size_t len = s->len;
    if (!s->map) {
        if (sb_spool_write(s, "", 1, err) != SB_OK)
            return err->code;
        s->len = len;
        void *m = mmap(NULL, len + 1, PROT_READ, MAP_SHARED, s->fd, 0);
        if (m == MAP_FAILED)
            return sb_fail(err, SB_E_IO, "cannot map the request body's file: %s", strerror(errno));
        s->map = m;
        s->maplen = len + 1;
    }
    *out = (struct sb_slice){s->map, s->len};
    return SB_OK;
}

void sb_spool_release(const struct sb_spool *s)
{
    if (s && s->map)
        madvise((void *)s->map, s->maplen, MADV_DONTNEED);
}

bool sb_spool_holds(const struct sb_spool *s, const char *p, size_t n, uint64_t *off)
{
    if (!s || !s->map || !p || p < s->map || (size_t)(p - s->map) > s->len ||
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
    if (s->map)
        munmap((void *)s->map, s->maplen);
    close(s->fd);
    free(s);
}
