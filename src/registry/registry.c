/* SPDX-License-Identifier: MIT */
/*
 * registry.c - immutable registry snapshots: build, publish, look up.
 *
 * A snapshot is one arena: arrays of providers, models and routes plus
 * three open-addressing hash indexes over them. Nothing in it changes after
 * the build, so any number of threads read it without locks; its secrets
 * are sb_secret objects whose wipe-and-free is an arena hook.
 *
 * Publication (why it is safe without a lock): the current pointer is an
 * atomic; a reader announces itself in `acquiring` before loading it and
 * leaves after taking its reference; a publisher swaps the pointer, then
 * waits until `acquiring` is 0 before dropping the old snapshot's
 * reference. All operations are seq_cst. If a reader loaded the old
 * pointer, its load came before the swap, so its announcement did too; the
 * publisher's reads of the counter come after the swap, so they see the
 * announcement until the reader's "leave", which follows (and, being a
 * release that the publisher's acquire-load reads from, happens before the
 * publisher's drop) its reference increment. So the old snapshot's count is
 * never 0 while a reader is between load and increment. Readers never wait;
 * a publisher spins (yielding) only while some reader is inside those three
 * instructions. A mutex would cost the same atomics on the hot path and
 * could put readers to sleep behind each other.
 *
 * Those atomics are written by every request on every worker: two lines
 * that move between cores with each request. A worker's lease book
 * (sb_registry_book_*) takes one reference per snapshot while any of its
 * requests holds it and counts its leases in the worker's own memory; a
 * lease then reads `current` (a line that stays shared until a publish)
 * and writes nothing shared. Comparing the loaded pointer with the book's
 * is safe from reuse: the book holds a reference to its snapshot, so that
 * address cannot be freed and handed to a new one meanwhile.
 *
 * Chapters: publication · lease books · hash index · lookups (building:
 * registry_build.c).
 */
#include "registry/registry.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "registry/config.h"
#include "registry/registry_int.h"

static void free_snapshot(struct sb_registry *r)
{
    sb_arena_free(r->arena); /* runs the hooks that wipe the secrets */
}

/* ---- publication ---- */

static _Atomic(struct sb_registry *) current;
static atomic_long acquiring; /* readers between load and reference */
static atomic_ulong generations;

void sb_registry_release(struct sb_registry *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        free_snapshot(r);
}

/* Swaps in r (may be NULL) and drops the old snapshot once no reader can be
 * between loading it and referencing it (see the top of the file). */
static void swap_in(struct sb_registry *r)
{
    struct sb_registry *old = atomic_exchange(&current, r);
    while (atomic_load(&acquiring) != 0)
        sched_yield();
    sb_registry_release(old);
}

void sb_registry_publish(struct sb_registry *r)
{
    r->generation = atomic_fetch_add(&generations, 1) + 1;
    swap_in(r);
}

struct sb_registry *sb_registry_acquire(void)
{
    atomic_fetch_add(&acquiring, 1);
    struct sb_registry *r = atomic_load(&current);
    if (r)
        atomic_fetch_add(&r->refs, 1);
    atomic_fetch_sub(&acquiring, 1);
    return r;
}

void sb_registry_shutdown(void)
{
    swap_in(NULL);
}

/* ---- lease books ---- */

struct lease {
    struct sb_registry *r; /* one reference held by the book */
    long n;                /* leases out; the entry goes when it reaches 0 */
};

struct sb_registry_book {
    struct lease *e; /* oldest first; the last is the newest snapshot leased */
    size_t n, cap;
};

struct sb_registry_book *sb_registry_book_create(void)
{
    return sb_xcalloc(1, sizeof(struct sb_registry_book));
}

void sb_registry_book_free(struct sb_registry_book *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) /* never in the proxy: every request ended first */
        sb_registry_release(b->e[i].r);
    free(b->e);
    free(b);
}

/* A new entry for r, whose reference the caller took. */
static void book_add(struct sb_registry_book *b, struct sb_registry *r)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 4;
        b->e = sb_xrealloc(b->e, b->cap * sizeof(*b->e));
    }
    b->e[b->n++] = (struct lease){r, 1};
}

struct sb_registry *sb_registry_book_lease(struct sb_registry_book *b)
{
    if (!b)
        return sb_registry_acquire();
    struct lease *last = b->n ? &b->e[b->n - 1] : NULL;
    if (last && last->r == atomic_load_explicit(&current, memory_order_acquire)) {
        last->n++;
        return last->r;
    }
    struct sb_registry *r = sb_registry_acquire(); /* a new snapshot, or the first lease */
    if (r)
        book_add(b, r);
    return r;
}

void sb_registry_book_return(struct sb_registry_book *b, struct sb_registry *r)
{
    if (!b || !r) {
        sb_registry_release(r);
        return;
    }
    for (size_t i = b->n; i-- > 0;) {
        if (b->e[i].r != r)
            continue;
        if (--b->e[i].n == 0) {
            sb_registry_release(r);
            memmove(&b->e[i], &b->e[i + 1], (b->n - i - 1) * sizeof(*b->e));
            b->n--;
        }
        return;
    }
    sb_registry_release(r); /* not this book's: a plain reference */
}

unsigned long sb_registry_generation(const struct sb_registry *r)
{
    return r->generation;
}

/* ---- hash index ---- */

uint64_t sb__hash_bytes(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

void sb__ix_init(struct sb_arena *a, struct index *ix, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = sb_arena_calloc(a, cap * sizeof(*ix->slots));
    ix->mask = cap - 1;
}

const void *sb__ix_get(const struct index *ix, struct sb_slice key)
{
    uint64_t h = sb__hash_bytes(key.p, key.len);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        const struct slot *s = &ix->slots[i];
        if (!s->key)
            return NULL;
        if (s->hash == h && s->len == key.len && memcmp(s->key, key.p, key.len) == 0)
            return s->val;
    }
}

void sb__ix_put(struct index *ix, const char *key, const void *val)
{
    size_t len = strlen(key);
    uint64_t h = sb__hash_bytes(key, len);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        struct slot *s = &ix->slots[i];
        if (s->key && s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return;
        if (!s->key) {
            *s = (struct slot){key, len, h, val};
            return;
        }
    }
}

/* ---- lookups ---- */

const struct sb_model *sb_registry_find_model(const struct sb_registry *r, struct sb_slice name)
{
    /* Model ids never contain '/', and provider ids never do either, so the
     * key "provider/upstream" is the split at the first '/' by construction
     * (the upstream part may hold more slashes). */
    return sb__ix_get(&r->by_model, name);
}

const struct sb_provider *sb_registry_find_provider(const struct sb_registry *r, struct sb_slice id)
{
    return sb__ix_get(&r->by_provider, id);
}

const struct sb_route_entry *sb_registry_find_route(const struct sb_registry *r, struct sb_slice id)
{
    return sb__ix_get(&r->by_route, id);
}

size_t sb_registry_model_count(const struct sb_registry *r)
{
    return r->nmodels;
}

const struct sb_model *sb_registry_model_at(const struct sb_registry *r, size_t i)
{
    return i < r->nmodels ? &r->models[i] : NULL;
}

size_t sb_registry_provider_count(const struct sb_registry *r)
{
    return r->nproviders;
}

const struct sb_provider *sb_registry_provider_at(const struct sb_registry *r, size_t i)
{
    return i < r->nproviders ? &r->providers[i] : NULL;
}

size_t sb_registry_route_count(const struct sb_registry *r)
{
    return r->nroutes;
}

const struct sb_route_entry *sb_registry_route_at(const struct sb_registry *r, size_t i)
{
    return i < r->nroutes ? &r->routes[i] : NULL;
}

/* ---- suggestions ---- */

#define SUGGEST_LEN 64 /* characters compared; keeps the cost bounded per candidate */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Case-insensitive Levenshtein distance over the first SUGGEST_LEN bytes. */
static size_t distance(struct sb_slice a, const char *b)
{
    size_t n = a.len < SUGGEST_LEN ? a.len : SUGGEST_LEN;
    size_t m = strnlen(b, SUGGEST_LEN);
    size_t prev[SUGGEST_LEN + 1], cur[SUGGEST_LEN + 1];
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t sub = prev[j - 1] + (lower(a.p[i - 1]) != lower(b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (m + 1) * sizeof(size_t));
    }
    return prev[m];
}

static size_t common_prefix(struct sb_slice a, const char *b)
{
    size_t i = 0;
    while (i < a.len && b[i] && lower(a.p[i]) == lower(b[i]))
        i++;
    return i;
}

struct candidate {
    const char *id;
    size_t score; /* lower is closer */
};

/* Scores id against name; false when it is not close enough to suggest. */
static bool score(struct sb_slice name, const char *id, size_t *out)
{
    size_t d = distance(name, id);
    size_t pre = common_prefix(name, id);
    size_t limit = name.len / 3 > 2 ? name.len / 3 : 2;
    bool prefix = pre >= 3 && (pre == name.len || id[pre] == '\0');
    if (d > limit && !prefix)
        return false;
    *out = 4 * d + (pre >= 3 ? 0 : 2);
    return true;
}

/* Keeps the best max candidates in c (sorted), by insertion. */
static void consider(struct candidate *c, size_t *n, size_t max, const char *id, size_t s)
{
    size_t i = *n;
    while (i > 0 && (c[i - 1].score > s || (c[i - 1].score == s && strcmp(c[i - 1].id, id) > 0)))
        i--;
    if (i >= max)
        return;
    size_t last = *n < max ? *n : max - 1;
    memmove(&c[i + 1], &c[i], (last - i) * sizeof(*c));
    c[i] = (struct candidate){id, s};
    if (*n < max)
        (*n)++;
}

size_t sb_registry_suggest(const struct sb_registry *r, struct sb_slice name, const char *user,
                           const char **out, size_t max)
{
    struct candidate best[16];
    size_t n = 0, s = 0;
    if (max > 16)
        max = 16;
    if (max == 0 || name.len == 0)
        return 0;
    for (size_t i = 0; i < r->nmodels; i++)
        if (sb_registry_model_visible(&r->models[i], user) && score(name, r->models[i].id, &s))
            consider(best, &n, max, r->models[i].id, s);
    for (size_t i = 0; i < r->nroutes; i++)
        if (score(name, r->routes[i].id, &s))
            consider(best, &n, max, r->routes[i].id, s);
    for (size_t i = 0; i < n; i++)
        out[i] = best[i].id;
    return n;
}
