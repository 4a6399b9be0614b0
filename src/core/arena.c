/* SPDX-License-Identifier: MIT */
/*
 * arena.c - a chain of blocks with a bump pointer.
 *
 * Large requests (bigger than a quarter block) get a block of their own so
 * a 100 KB body does not waste the tail of the current block. Hooks live in
 * the arena itself, so registering one allocates nothing extra.
 */
#include "core/arena.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct block {
    struct block *next; /* older block */
    size_t cap;         /* usable bytes in data */
    size_t used;        /* bytes handed out */
    alignas(max_align_t) char data[];
};

struct hook {
    struct hook *next; /* older hook */
    sb_arena_hook fn;
    void *ud;
};

struct sb_arena {
    struct block *head;  /* current block; chain holds every block */
    struct block *first; /* kept by sb_arena_reset */
    struct hook *hooks;  /* newest first */
    size_t block;        /* default block size */
    size_t total;        /* bytes handed out */
};

#define ALIGN (alignof(max_align_t))

static struct block *block_new(size_t cap)
{
    struct block *b = sb_xmalloc(sizeof(*b) + cap);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

struct sb_arena *sb_arena_create(size_t block)
{
    struct sb_arena *a = sb_xcalloc(1, sizeof(*a));
    a->block = block < 1024 ? 1024 : block;
    a->first = a->head = block_new(a->block);
    return a;
}

static void run_hooks(struct sb_arena *a)
{
    while (a->hooks) {
        struct hook *h = a->hooks;
        a->hooks = h->next;
        h->fn(h->ud);
    }
}

static void free_blocks_after_first(struct sb_arena *a)
{
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        if (b != a->first)
            free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->first->next = NULL;
}

void sb_arena_reset(struct sb_arena *a)
{
    run_hooks(a);
    free_blocks_after_first(a);
    a->total = 0;
}

void sb_arena_free(struct sb_arena *a)
{
    if (!a)
        return;
    sb_arena_reset(a);
    free(a->first);
    free(a);
}

void *sb_arena_alloc(struct sb_arena *a, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(ALIGN - 1);
    struct block *b = a->head;
    if (need == 0)
        need = ALIGN;
    a->total += need;
    if (b->cap - b->used >= need) {
        void *p = b->data + b->used;
        b->used += need;
        return p;
    }
    if (need > a->block / 4) {
        /* A big allocation gets its own block, linked behind the head so
         * the head's free tail stays usable for small ones. */
        struct block *big = block_new(need);
        big->used = need;
        big->next = b->next;
        b->next = big;
        return big->data;
    }
    struct block *nb = block_new(a->block);
    nb->next = b;
    a->head = nb;
    nb->used = need;
    return nb->data;
}

void *sb_arena_calloc(struct sb_arena *a, size_t n)
{
    void *p = sb_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *sb_arena_strndup(struct sb_arena *a, const char *s, size_t n)
{
    char *p = sb_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct sb_slice sb_arena_slice(struct sb_arena *a, struct sb_slice s)
{
    return (struct sb_slice){sb_arena_strndup(a, s.p, s.len), s.len};
}

char *sb_arena_printf(struct sb_arena *a, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = sb_arena_alloc(a, (size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

void sb_arena_on_free(struct sb_arena *a, sb_arena_hook fn, void *ud)
{
    struct hook *h = sb_arena_alloc(a, sizeof(*h));
    h->fn = fn;
    h->ud = ud;
    h->next = a->hooks;
    a->hooks = h;
}

size_t sb_arena_used(const struct sb_arena *a)
{
    return a->total;
}
