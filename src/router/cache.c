/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the in-memory cache backend (an LRU bounded in bytes and
 * entries) and the calls the proxy makes (cache.h).
 *
 * One record per entry: the 32-byte digest, links for a chained hash table
 * and for the LRU list (most recently used at the head), the times, and the
 * body inline after the record. An entry costs its body plus the record;
 * that sum is what max_bytes bounds. Expired entries are dropped when a
 * lookup meets them or when the LRU pushes them out: they hold memory only
 * within the same bound.
 *
 * One mutex guards the table. A lookup holds it for a probe and a memcpy of
 * the body into the caller's arena (a few microseconds for a 10 KB answer);
 * a store allocates and copies before taking it and frees evicted entries
 * after releasing it. Sharding would pay only under contention that one
 * upstream round trip per miss makes unlikely; the backend can shard
 * behind the same ops table if a profile ever says so.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/cache.h"

#define DEFAULT_MAX_BYTES ((size_t)64 * 1024 * 1024)
#define DEFAULT_MAX_ENTRIES ((size_t)65536)

struct entry {
    uint8_t key[32];
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list; head = most recently used */
    int64_t stored_ms, expires_ms;
    struct sb_cache_usage usage;
    size_t len;  /* body bytes */
    char body[]; /* len bytes, then a NUL */
};

struct mem {
    struct sb_cache base; /* first: the ops table */
    pthread_mutex_t lock;
    struct entry **buckets; /* mask + 1 chains */
    size_t mask;
    struct entry *head, *tail;
    size_t n, bytes;
    size_t max_bytes, max_entries, max_entry;
    struct sb_cache_stats st; /* counters; entries and bytes are filled on read */
};

static size_t cost(size_t len)
{
    return sizeof(struct entry) + len + 1;
}

size_t sb_cache_max_entry(const struct sb_cache_opts *o)
{
    size_t max = o && o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
    size_t e = o && o->max_entry_bytes ? o->max_entry_bytes : max / 8;
    return e > max ? max : e;
}

/* ---- the table (under lock) ---- */

static size_t bucket_of(const struct mem *m, const uint8_t key[32])
{
    size_t h = 0;
    memcpy(&h, key, sizeof(h)); /* a SHA-256 prefix is as good a hash as any */
    return h & m->mask;
}

static struct entry **find_link(struct mem *m, const uint8_t key[32])
{
    struct entry **link = &m->buckets[bucket_of(m, key)];
    while (*link && memcmp((*link)->key, key, 32) != 0)
        link = &(*link)->hnext;
    return link;
}

static void lru_unlink(struct mem *m, struct entry *e)
{
    *(e->prev ? &e->prev->next : &m->head) = e->next;
    *(e->next ? &e->next->prev : &m->tail) = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct mem *m, struct entry *e)
{
    e->prev = NULL;
    e->next = m->head;
    *(m->head ? &m->head->prev : &m->tail) = e;
    m->head = e;
}

/* Takes e out of the table and the list; the caller frees it. */
static void detach(struct mem *m, struct entry *e)
{
    struct entry **link = find_link(m, e->key);
    *link = e->hnext;
    lru_unlink(m, e);
    m->n--;
    m->bytes -= cost(e->len);
}

static void grow(struct mem *m)
{
    size_t nmask = m->mask * 2 + 1;
    struct entry **nb = sb_xcalloc(nmask + 1, sizeof(*nb));
    for (size_t i = 0; i <= m->mask; i++) {
        for (struct entry *e = m->buckets[i], *next; e; e = next) {
            size_t h = 0;
            next = e->hnext;
            memcpy(&h, e->key, sizeof(h));
            e->hnext = nb[h & nmask];
            nb[h & nmask] = e;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->mask = nmask;
}

/* ---- ops ---- */

static bool mem_lookup(struct sb_cache *c, const uint8_t key[32], int64_t now_ms,
                       struct sb_arena *a, struct sb_cache_hit *out)
{
    struct mem *m = (struct mem *)c;
    struct entry *gone = NULL;
    bool hit = false;
    pthread_mutex_lock(&m->lock);
    struct entry *e = *find_link(m, key);
    if (e && now_ms >= e->expires_ms) {
        detach(m, e);
        gone = e;
        m->st.expired++;
    } else if (e) {
        lru_unlink(m, e);
        lru_push(m, e);
        char *copy = sb_arena_alloc(a, e->len + 1);
        memcpy(copy, e->body, e->len + 1);
        *out = (struct sb_cache_hit){{copy, e->len}, e->usage, now_ms - e->stored_ms};
        hit = true;
    }
    m->st.hits += hit;
    m->st.misses += !hit;
    pthread_mutex_unlock(&m->lock);
    free(gone);
    return hit;
}

/* Unlinks least recently used entries until m fits its bounds; returns them chained by hnext. */
static struct entry *evict(struct mem *m)
{
    struct entry *out = NULL;
    while (m->tail && (m->bytes > m->max_bytes || m->n > m->max_entries)) {
        struct entry *e = m->tail;
        detach(m, e);
        e->hnext = out;
        out = e;
        m->st.evictions++;
    }
    return out;
}

static bool mem_store(struct sb_cache *c, const uint8_t key[32], struct sb_slice body,
                      const struct sb_cache_usage *u, int64_t ttl_ms, int64_t now_ms)
{
    struct mem *m = (struct mem *)c;
    if (body.len > m->max_entry || ttl_ms <= 0)
        return false;
    struct entry *e = sb_xmalloc(cost(body.len)), *old = NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, 32);
    memcpy(e->body, body.p, body.len);
    e->body[body.len] = '\0';
    e->len = body.len;
    e->usage = *u;
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + ttl_ms;
    pthread_mutex_lock(&m->lock);
    old = *find_link(m, key);
    if (old)
        detach(m, old);
    if (m->n >= m->mask + 1)
        grow(m);
    struct entry **head = &m->buckets[bucket_of(m, key)];
    e->hnext = *head;
    *head = e;
    lru_push(m, e);
    m->n++;
    m->bytes += cost(e->len);
    m->st.stores++;
    struct entry *gone = evict(m);
    pthread_mutex_unlock(&m->lock);
    free(old);
    for (struct entry *next; gone; gone = next) {
        next = gone->hnext;
        free(gone);
    }
    return true;
}

static void mem_stats(struct sb_cache *c, struct sb_cache_stats *out)
{
    struct mem *m = (struct mem *)c;
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    out->entries = m->n;
    out->bytes = m->bytes;
    pthread_mutex_unlock(&m->lock);
}

static void mem_destroy(struct sb_cache *c)
{
    struct mem *m = (struct mem *)c;
    for (struct entry *e = m->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const struct sb_cache_ops memory_ops = {
    .name = "memory",
    .lookup = mem_lookup,
    .store = mem_store,
    .stats = mem_stats,
    .destroy = mem_destroy,
};

struct sb_cache *sb_cache_memory_create(const struct sb_cache_opts *o)
{
    struct mem *m = sb_xcalloc(1, sizeof(*m));
    m->base.ops = &memory_ops;
    pthread_mutex_init(&m->lock, NULL);
    m->max_bytes = o && o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
    m->max_entries = o && o->max_entries ? o->max_entries : DEFAULT_MAX_ENTRIES;
    m->max_entry = sb_cache_max_entry(o);
    m->mask = 255;
    m->buckets = sb_xcalloc(m->mask + 1, sizeof(*m->buckets));
    return &m->base;
}

void sb_cache_free(struct sb_cache *c)
{
    if (c)
        c->ops->destroy(c);
}

/* ---- what the proxy calls ---- */

bool sb_cache_lookup(struct sb_cache *c, const struct sb_cache_key *key, int64_t now_ms,
                     struct sb_arena *a, struct sb_cache_hit *out)
{
    if (!c || !key->cacheable)
        return false;
    return c->ops->lookup(c, key->digest, now_ms, a, out);
}

bool sb_cache_store(struct sb_cache *c, const struct sb_cache_key *key, int status,
                    struct sb_slice body, int64_t now_ms)
{
    struct sb_cache_usage u;
    if (!c || !key->cacheable || !sb_cache_storable(status, body, &u))
        return false;
    return c->ops->store(c, key->digest, body, &u, key->ttl_ms, now_ms);
}
