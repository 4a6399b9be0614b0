/* SPDX-License-Identifier: MIT */
/*
 * sessions.c - a mutex-guarded hash table of live sessions (sessions.h).
 *
 * Keys are SHA-256 digests, already uniform, so the first 8 bytes pick the
 * bucket. Chains stay short: the table doubles past 1 entry per bucket.
 * Expired entries are dropped when a lookup meets them.
 */
#include "gateway/sessions.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct entry {
    unsigned char digest[32];
    struct sb_session_info info;
    struct entry *next;
};

struct sb_sessions {
    pthread_mutex_t lock;
    struct entry **b; /* buckets */
    size_t nb, n;     /* bucket count (power of 2), entries */
};

static size_t slot(const struct sb_sessions *s, const unsigned char d[32])
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return (size_t)h & (s->nb - 1);
}

struct sb_sessions *sb_sessions_create(void)
{
    struct sb_sessions *s = sb_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->nb = 64;
    s->b = sb_xcalloc(s->nb, sizeof(*s->b));
    return s;
}

void sb_sessions_free(struct sb_sessions *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nb; i++)
        for (struct entry *e = s->b[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(s->b);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void grow(struct sb_sessions *s)
{
    struct entry **old = s->b;
    size_t nold = s->nb;
    s->nb *= 2;
    s->b = sb_xcalloc(s->nb, sizeof(*s->b));
    for (size_t i = 0; i < nold; i++)
        for (struct entry *e = old[i], *next; e; e = next) {
            next = e->next;
            size_t k = slot(s, e->digest);
            e->next = s->b[k];
            s->b[k] = e;
        }
    free(old);
}

/* The link pointing at digest's entry (or at the chain's end). Under lock. */
static struct entry **find(struct sb_sessions *s, const unsigned char d[32])
{
    struct entry **p = &s->b[slot(s, d)];
    while (*p && memcmp((*p)->digest, d, 32) != 0)
        p = &(*p)->next;
    return p;
}

static void unlink_entry(struct sb_sessions *s, struct entry **p)
{
    struct entry *e = *p;
    *p = e->next;
    free(e);
    s->n--;
}

void sb_sessions_put(struct sb_sessions *s, const unsigned char digest[32],
                     const struct sb_session_info *info)
{
    pthread_mutex_lock(&s->lock);
    struct entry **p = find(s, digest);
    if (!*p) {
        if (s->n >= s->nb) {
            grow(s);
            p = find(s, digest);
        }
        *p = sb_xcalloc(1, sizeof(**p));
        memcpy((*p)->digest, digest, 32);
        s->n++;
    }
    (*p)->info = *info;
    pthread_mutex_unlock(&s->lock);
}

bool sb_sessions_get(struct sb_sessions *s, const unsigned char digest[32], int64_t now_ms,
                     struct sb_session_info *out)
{
    bool ok = false;
    pthread_mutex_lock(&s->lock);
    struct entry **p = find(s, digest);
    if (*p && (*p)->info.expires_at_ms > now_ms) {
        *out = (*p)->info;
        ok = true;
    } else if (*p) {
        unlink_entry(s, p);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void sb_sessions_del(struct sb_sessions *s, const unsigned char digest[32])
{
    pthread_mutex_lock(&s->lock);
    struct entry **p = find(s, digest);
    if (*p)
        unlink_entry(s, p);
    pthread_mutex_unlock(&s->lock);
}

void sb_sessions_del_user(struct sb_sessions *s, const char *username)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nb; i++) {
        struct entry **p = &s->b[i];
        while (*p) {
            if (strcmp((*p)->info.username, username) == 0)
                unlink_entry(s, p);
            else
                p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
}
