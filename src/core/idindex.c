/* SPDX-License-Identifier: MIT */
/*
 * idindex.c - the lock-free-read, append-only id index (idindex.h, which
 * states the publication protocol). Readers touch only `cur`, the slots and
 * the keys of the records they pass; the mutex and the count are written by
 * inserts alone, a record's first sight.
 */
#include "core/idindex.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/slice.h"

#define FIRST_CAP 64 /* slots: 32 records before the first doubling */

struct sb__idindex_table {
    size_t mask;                     /* capacity - 1 (a power of two) */
    struct sb__idindex_table *older; /* the table this one replaced; freed with the index */
    _Atomic(char *) slot[];          /* records; NULL = empty; each set once */
};

struct sb_idindex {
    _Atomic(struct sb__idindex_table *) cur;      /* inserts go here; readers start here */
    size_t rec_size, rec_align, key_off, key_max; /* key_max: chars compared */
    pthread_mutex_t lock;                         /* inserts and growth; never held by a reader */
    size_t n;                                     /* records (under lock) */
};

static struct sb__idindex_table *table_new(size_t cap)
{
    struct sb__idindex_table *t = sb_xcalloc(1, sizeof(*t) + cap * sizeof(t->slot[0]));
    t->mask = cap - 1;
    return t;
}

struct sb_idindex *sb_idindex_create(size_t rec_size, size_t rec_align, size_t key_off,
                                     size_t key_size)
{
    struct sb_idindex *x = sb_xcalloc(1, sizeof(*x));
    atomic_init(&x->cur, table_new(FIRST_CAP));
    x->rec_size = rec_size;
    x->rec_align = rec_align;
    x->key_off = key_off;
    x->key_max = key_size - 1;
    pthread_mutex_init(&x->lock, NULL);
    return x;
}

void sb_idindex_free(struct sb_idindex *x)
{
    if (!x)
        return;
    struct sb__idindex_table *t = atomic_load(&x->cur);
    for (size_t i = 0; i <= t->mask; i++) /* the newest table holds every record */
        free(atomic_load(&t->slot[i]));
    while (t) {
        struct sb__idindex_table *older = t->older;
        free(t);
        t = older;
    }
    pthread_mutex_destroy(&x->lock);
    free(x);
}

/* FNV-1a over at most key_max chars: ids cut there hash as their prefix. */
static size_t hash_id(const struct sb_idindex *x, const char *s)
{
    size_t h = 14695981039346656037ull;
    for (size_t i = 0; i < x->key_max && s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The slot of t holding id, or the empty slot where it would go. The
 * acquire load makes a found record's contents visible (idindex.h). */
static _Atomic(char *) *probe(const struct sb_idindex *x, struct sb__idindex_table *t,
                              const char *id)
{
    size_t i = hash_id(x, id) & t->mask;
    for (;;) {
        char *r = atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (!r || strncmp(r + x->key_off, id, x->key_max) == 0)
            return &t->slot[i];
        i = (i + 1) & t->mask;
    }
}

void *sb_idindex_find(struct sb_idindex *x, const char *id)
{
    struct sb__idindex_table *t = atomic_load_explicit(&x->cur, memory_order_acquire);
    return atomic_load_explicit(probe(x, t, id), memory_order_acquire);
}

/* Under lock: doubles the table and publishes the copy; the old one stays,
 * frozen, for readers still in it. Relaxed copies: the release store of
 * cur publishes them. */
static struct sb__idindex_table *grow(struct sb_idindex *x, struct sb__idindex_table *old)
{
    struct sb__idindex_table *t = table_new(2 * (old->mask + 1));
    for (size_t i = 0; i <= old->mask; i++) {
        char *r = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        if (r)
            atomic_store_explicit(probe(x, t, r + x->key_off), r, memory_order_relaxed);
    }
    t->older = old;
    atomic_store_explicit(&x->cur, t, memory_order_release);
    return t;
}

/* Under lock: the record of id, made and published when absent. Relaxed
 * loads: the lock orders us after every earlier insert. */
static void *create(struct sb_idindex *x, const char *id, void (*init)(void *, void *), void *ud)
{
    struct sb__idindex_table *t = atomic_load_explicit(&x->cur, memory_order_relaxed);
    char *r = atomic_load_explicit(probe(x, t, id), memory_order_relaxed);
    if (r)
        return r; /* another thread made it between our probe and the lock */
    if (2 * (x->n + 1) > t->mask + 1)
        t = grow(x, t);
    r = aligned_alloc(x->rec_align, x->rec_size);
    if (!r)
        abort(); /* out of memory: STYLE.md practice 10 */
    memset(r, 0, x->rec_size);
    sb_str_copy(r + x->key_off, x->key_max + 1, id);
    if (init)
        init(r, ud);
    atomic_store_explicit(probe(x, t, id), r, memory_order_release);
    x->n++;
    return r;
}

void *sb_idindex_get(struct sb_idindex *x, const char *id, void (*init)(void *rec, void *ud),
                     void *ud)
{
    void *r = sb_idindex_find(x, id);
    if (r)
        return r;
    pthread_mutex_lock(&x->lock);
    r = create(x, id, init, ud);
    pthread_mutex_unlock(&x->lock);
    return r;
}

void sb_idindex_iter_init(struct sb_idindex_iter *it, struct sb_idindex *x)
{
    it->t = atomic_load_explicit(&x->cur, memory_order_acquire);
    it->i = 0;
}

void *sb_idindex_next(struct sb_idindex_iter *it)
{
    while (it->i <= it->t->mask) {
        char *r = atomic_load_explicit(&it->t->slot[it->i++], memory_order_acquire);
        if (r)
            return r;
    }
    return NULL;
}
