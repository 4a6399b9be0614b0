/* SPDX-License-Identifier: MIT */
/*
 * usage_journal_file.c - the journal file: create, append, sync, read back,
 * and remove once the database holds every record (usage_journal.h).
 *
 * Appends come from the usage writer and, when its queue is full, from
 * submitting workers, so append holds the mutex for one write() of whole
 * records; `end` moves only after the write completed, and the reader never
 * reads past `end`, so it never sees half a record from a live writer. A
 * failed or short write is cut back with ftruncate: the file always ends on
 * a record boundary while we run. A crash can still tear the last record;
 * sb_uj_open cuts such a tail off. fdatasync runs outside the mutex so a
 * worker's append never waits for the disk's flush.
 *
 * The file is created with O_EXCL and mode 0600 (usage rows name users
 * and keys), its header synced and then its directory synced, before any
 * record goes in: a file shorter than its header holds nothing.
 */
#include "store/usage_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define READ_AHEAD (64 * 1024) /* bytes read at a time: ~100 usage records */

/* A read window over the file: buf holds bytes [base, base + buf.len). */
struct window {
    struct sb_buf buf;
    uint64_t base;
    int read_errno; /* a read failed or came up short of limit: the scan stops */
};

struct sb_uj {
    pthread_mutex_t mu; /* guards fd, end, done, recs, dirty */
    char *path;         /* owned */
    int fd;             /* -1: no file now; the next append creates one */
    uint8_t id[16];     /* the current file's id */
    uint64_t end;       /* bytes of whole records: appends start here, reads stop here */
    uint64_t done;      /* replay offset: the bytes before it are in the database */
    uint64_t recs;      /* records in [done, end) */
    bool dirty;         /* appended since the last sync */
    struct window win;  /* the reader's (one thread) */
};

/* ---- small file helpers ---- */

static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Makes the window hold [off, off + want) or as much of it as lies before
 * limit; returns a pointer to off and sets *have to the bytes there. */
static const uint8_t *window_get(int fd, struct window *w, uint64_t off, size_t want,
                                 uint64_t limit, size_t *have)
{
    if (want > limit - off)
        want = (size_t)(limit - off);
    if (off < w->base || off + want > w->base + w->buf.len) {
        size_t size = want > READ_AHEAD ? want : READ_AHEAD;
        if (size > limit - off)
            size = (size_t)(limit - off);
        sb_buf_reset(&w->buf);
        char *p = sb_buf_reserve(&w->buf, size);
        ssize_t got = 0;
        while ((size_t)got < size) {
            ssize_t r = pread(fd, p + got, size - (size_t)got, (off_t)off + got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                w->read_errno = r < 0 ? errno : EIO; /* bytes before limit must exist */
                break;
            }
            got += r;
        }
        w->buf.len = (size_t)got;
        w->base = off;
    }
    *have = (size_t)(w->base + w->buf.len - off);
    return (const uint8_t *)w->buf.p + (off - w->base);
}

/* ---- scanning ---- */

/* Parses the record at off (which lies before limit). SB_AGAIN: it would end past limit. */
static sb_err parse_at(int fd, struct window *w, uint64_t off, uint64_t limit,
                       struct sb_uj_rec *rec, size_t *used)
{
    struct sb_error err = {0};
    size_t have = 0;
    const uint8_t *p = window_get(fd, w, off, SB_UJ_REC_HEAD, limit, &have);
    sb_err rc = sb_uj_parse(p, have, rec, used, &err);
    if (rc == SB_AGAIN && have >= SB_UJ_REC_HEAD) {
        uint32_t plen =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        p = window_get(fd, w, off, SB_UJ_REC_HEAD + (size_t)plen, limit, &have);
        rc = sb_uj_parse(p, have, rec, used, &err);
    }
    return rc;
}

/* The first offset after off where a whole record starts, or limit. */
static uint64_t resync(int fd, struct window *w, uint64_t off, uint64_t limit)
{
    uint64_t q = off + 1;
    while (q + SB_UJ_REC_HEAD <= limit) {
        size_t have = 0, used = 0;
        const uint8_t *p = window_get(fd, w, q, READ_AHEAD, limit, &have);
        const uint8_t *m = memmem(p, have, SB_UJ_MAGIC, 4);
        if (!m) {
            q += have > 3 ? have - 3 : 1;
            continue;
        }
        q += (uint64_t)(m - p);
        struct sb_uj_rec rec;
        if (parse_at(fd, w, q, limit, &rec, &used) == SB_OK) {
            free(rec.block);
            return q;
        }
        q++;
    }
    return limit;
}

/*
 * Reads up to max records from off (< limit). A damaged region is passed
 * over to the next whole record (*skipped counts regions); one that runs
 * to limit with no whole record after it stops the scan there (*tail: the
 * offset where good bytes end). recs may be NULL (counting only).
 */
static void scan(int fd, struct window *w, uint64_t off, uint64_t limit, struct sb_uj_rec *recs,
                 size_t max, size_t *n, uint64_t *ends, uint64_t *next, uint64_t *skipped)
{
    *n = 0;
    while (off < limit && *n < max) {
        struct sb_uj_rec tmp;
        struct sb_uj_rec *r = recs ? &recs[*n] : &tmp;
        size_t used = 0;
        if (parse_at(fd, w, off, limit, r, &used) == SB_OK) {
            if (!recs)
                free(tmp.block);
            off += used;
            if (ends)
                ends[*n] = off;
            (*n)++;
            continue;
        }
        if (w->read_errno)
            break; /* not damage: the caller retries later */
        uint64_t q = resync(fd, w, off, limit);
        if (w->read_errno)
            break;
        if (q == limit) {
            *next = off; /* nothing whole after off: a tail, not a region */
            return;
        }
        (*skipped)++;
        off = q;
    }
    *next = off;
}

/* ---- open, close ---- */

/* Checks the header and cuts a torn tail; sets end and recs. */
static sb_err check_file(struct sb_uj *j, uint64_t size, struct sb_error *err)
{
    uint8_t h[SB_UJ_HEADER];
    size_t have = 0;
    const uint8_t *p = window_get(j->fd, &j->win, 0, SB_UJ_HEADER, size, &have);
    have = have < sizeof(h) ? have : sizeof(h); /* the window may hold more */
    memcpy(h, p, have);
    if (!sb_uj_parse_header(h, have, j->id)) {
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.corrupt-%lld", j->path, (long long)time(NULL));
        sb_error("msg=\"usage journal header damaged: moved aside, its rows are not replayed\" "
                 "path=\"%s\" aside=\"%s\"",
                 j->path, aside);
        close(j->fd);
        j->fd = -1;
        if (rename(j->path, aside) != 0)
            return sb_fail(err, SB_E_IO, "usage journal %s: rename: %s", j->path, strerror(errno));
        return SB_OK;
    }
    uint64_t end = SB_UJ_HEADER, skipped = 0;
    size_t count = 0;
    scan(j->fd, &j->win, end, size, NULL, SIZE_MAX, &count, NULL, &end, &skipped);
    if (j->win.read_errno)
        return sb_fail(err, SB_E_IO, "usage journal %s: read: %s", j->path,
                       strerror(j->win.read_errno));
    if (end < size) {
        sb_warn("msg=\"usage journal: torn tail cut off\" path=\"%s\" bytes=%" PRIu64, j->path,
                size - end);
        if (ftruncate(j->fd, (off_t)end) != 0 || fsync(j->fd) != 0)
            return sb_fail(err, SB_E_IO, "usage journal %s: truncate: %s", j->path,
                           strerror(errno));
    }
    j->end = end;
    j->done = SB_UJ_HEADER;
    j->recs = count;
    return SB_OK;
}

static sb_err open_existing(struct sb_uj *j, struct sb_error *err)
{
    struct stat st;
    j->fd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (j->fd < 0 && errno == ENOENT)
        return SB_OK;
    if (j->fd < 0 || fstat(j->fd, &st) != 0)
        return sb_fail(err, SB_E_IO, "usage journal %s: open: %s", j->path, strerror(errno));
    if (st.st_size < SB_UJ_HEADER) {
        /* Torn at creation: no record is ever appended before the header is synced. */
        close(j->fd);
        j->fd = -1;
        unlink(j->path);
        return SB_OK;
    }
    sb_err rc = check_file(j, (uint64_t)st.st_size, err);
    if (rc == SB_OK && j->fd >= 0 && j->recs)
        sb_info("msg=\"usage journal found: replaying it\" path=\"%s\" rows=%" PRIu64, j->path,
                j->recs);
    return rc;
}

sb_err sb_uj_open(const char *path, struct sb_uj **out, struct sb_error *err)
{
    struct sb_uj *j = sb_xcalloc(1, sizeof(*j));
    pthread_mutex_init(&j->mu, NULL);
    j->path = sb_xstrdup(path);
    j->fd = -1;
    sb_buf_init(&j->win.buf, 0);
    *out = NULL;
    sb_err rc = open_existing(j, err);
    if (rc != SB_OK) {
        sb_uj_close(j);
        return rc;
    }
    *out = j;
    return SB_OK;
}

void sb_uj_close(struct sb_uj *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    sb_buf_free(&j->win.buf);
    pthread_mutex_destroy(&j->mu);
    free(j->path);
    free(j);
}

/* ---- append, sync ---- */

/* Called with mu held. */
static sb_err create_file(struct sb_uj *j, struct sb_error *err)
{
    uint8_t h[SB_UJ_HEADER];
    if (getrandom(j->id, sizeof(j->id), 0) != (ssize_t)sizeof(j->id))
        return sb_fail(err, SB_E_IO, "usage journal: no random id: %s", strerror(errno));
    int fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return sb_fail(err, SB_E_IO, "usage journal %s: create: %s", j->path, strerror(errno));
    sb_uj_encode_header(h, j->id);
    if (fchmod(fd, 0600) != 0 || !write_all(fd, h, sizeof(h)) || fdatasync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(j->path);
        return sb_fail(err, SB_E_IO, "usage journal %s: header: %s", j->path, strerror(e));
    }
    sync_dir(j->path);
    j->fd = fd;
    j->end = j->done = SB_UJ_HEADER;
    j->recs = 0;
    return SB_OK;
}

sb_err sb_uj_append(struct sb_uj *j, const void *bytes, size_t n, size_t nrecs,
                    struct sb_error *err)
{
    sb_err rc = SB_OK;
    pthread_mutex_lock(&j->mu);
    if (j->fd < 0)
        rc = create_file(j, err);
    if (rc == SB_OK && !write_all(j->fd, bytes, n)) {
        rc = sb_fail(err, SB_E_IO, "usage journal %s: write: %s", j->path, strerror(errno));
        if (ftruncate(j->fd, (off_t)j->end) != 0)
            sb_error("msg=\"usage journal: cannot cut a failed append back\" path=\"%s\"", j->path);
    }
    if (rc == SB_OK) {
        j->end += n;
        j->recs += nrecs;
        j->dirty = true;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

sb_err sb_uj_sync(struct sb_uj *j, struct sb_error *err)
{
    pthread_mutex_lock(&j->mu);
    bool dirty = j->dirty && j->fd >= 0;
    int fd = j->fd; /* only this thread closes it (remove_if_done) */
    j->dirty = false;
    pthread_mutex_unlock(&j->mu);
    if (dirty && fdatasync(fd) != 0) {
        pthread_mutex_lock(&j->mu);
        j->dirty = true;
        pthread_mutex_unlock(&j->mu);
        return sb_fail(err, SB_E_IO, "usage journal %s: fdatasync: %s", j->path, strerror(errno));
    }
    return SB_OK;
}

void sb_uj_pending(struct sb_uj *j, uint64_t *recs, uint64_t *bytes)
{
    pthread_mutex_lock(&j->mu);
    *recs = j->fd >= 0 ? j->recs : 0;
    *bytes = j->fd >= 0 ? j->end - j->done : 0;
    pthread_mutex_unlock(&j->mu);
}

/* ---- the replay side ---- */

void sb_uj_mark(struct sb_uj *j, uint64_t offset, char out[64])
{
    char *at = out;
    for (size_t i = 0; i < sizeof(j->id); i++, at += 2)
        snprintf(at, 3, "%02x", j->id[i]);
    snprintf(at, 64 - 32, ":%" PRIu64, offset);
}

uint64_t sb_uj_mark_offset(struct sb_uj *j, const char *mark)
{
    char mine[64];
    sb_uj_mark(j, 0, mine);
    if (!mark || strncmp(mark, mine, 33) != 0) /* the id and the colon */
        return 0;
    char *endp = NULL;
    errno = 0;
    unsigned long long off = strtoull(mark + 33, &endp, 10);
    return errno == 0 && endp != mark + 33 && *endp == '\0' ? (uint64_t)off : 0;
}

sb_err sb_uj_read(struct sb_uj *j, struct sb_uj_rec *recs, size_t max, size_t *n, uint64_t *ends,
                  uint64_t *next, uint64_t *skipped, struct sb_error *err)
{
    pthread_mutex_lock(&j->mu);
    uint64_t from = j->done, limit = j->end;
    int fd = j->fd;
    pthread_mutex_unlock(&j->mu);
    *n = 0;
    *next = from;
    if (fd < 0)
        return SB_OK;
    j->win.read_errno = 0;
    scan(fd, &j->win, from, limit, recs, max, n, ends, next, skipped);
    if (j->win.read_errno) {
        for (size_t i = 0; i < *n && recs; i++)
            free(recs[i].block);
        *n = 0;
        *next = from;
        sb_buf_reset(&j->win.buf); /* read it again next time */
        return sb_fail(err, SB_E_IO, "usage journal %s: read: %s", j->path,
                       strerror(j->win.read_errno));
    }
    if (*n == 0 && *next < limit) {
        *next = limit; /* damage up to limit with no record after it: pass it */
        (*skipped)++;
    }
    return SB_OK;
}

void sb_uj_done(struct sb_uj *j, uint64_t offset, uint64_t nrecs)
{
    pthread_mutex_lock(&j->mu);
    j->done = offset;
    j->recs = j->recs > nrecs ? j->recs - nrecs : 0;
    pthread_mutex_unlock(&j->mu);
}

bool sb_uj_remove_if_done(struct sb_uj *j)
{
    bool gone = false;
    pthread_mutex_lock(&j->mu);
    if (j->fd >= 0 && j->done == j->end) {
        close(j->fd);
        j->fd = -1;
        if (unlink(j->path) != 0)
            sb_error("msg=\"usage journal: cannot remove\" path=\"%s\" err=\"%s\"", j->path,
                     strerror(errno));
        sync_dir(j->path);
        j->end = j->done = 0;
        j->recs = 0;
        j->dirty = false;
        sb_buf_reset(&j->win.buf); /* its bytes were the old file's */
        j->win.base = 0;
    }
    gone = j->fd < 0;
    pthread_mutex_unlock(&j->mu);
    return gone;
}
