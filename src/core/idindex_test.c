/* SPDX-License-Identifier: MIT */
/*
 * idindex_test.c - the lock-free-read id index: creation once per id, ids
 * cut at the key's size, growth, the snapshot walk, and four threads
 * creating and finding while a fifth walks (run under TSan in CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "core/idindex.h"

/* A record shaped like the real ones: hot fields first, the key on lines
 * of its own. */
struct rec {
    _Alignas(64) atomic_int hits;
    int serial; /* set by init: the order of creation */
    _Alignas(64) char id[16];
};

static struct sb_idindex *rec_index(void)
{
    return sb_idindex_create(sizeof(struct rec), _Alignof(struct rec), offsetof(struct rec, id),
                             sizeof(((struct rec *)0)->id));
}

/* Counts creations (ud: an atomic_int) and numbers the records. */
static void init_rec(void *rec, void *ud)
{
    struct rec *r = rec;
    r->serial = atomic_fetch_add((atomic_int *)ud, 1);
}

static void test_empty(void **state)
{
    struct sb_idindex *x = rec_index();
    struct sb_idindex_iter it;
    assert_null(sb_idindex_find(x, "a"));
    assert_null(sb_idindex_find(x, ""));
    sb_idindex_iter_init(&it, x);
    assert_null(sb_idindex_next(&it));
    sb_idindex_free(x);
    sb_idindex_free(NULL);
}

static void test_get_once(void **state)
{
    struct sb_idindex *x = rec_index();
    atomic_int made = 0;
    struct rec *a = sb_idindex_get(x, "a", init_rec, &made);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_string_equal(a->id, "a");
    assert_int_equal(atomic_load(&a->hits), 0); /* zeroed */
    assert_ptr_equal(sb_idindex_get(x, "a", init_rec, &made), a);
    assert_ptr_equal(sb_idindex_find(x, "a"), a);
    assert_int_equal(atomic_load(&made), 1);
    assert_null(sb_idindex_find(x, "b"));
    struct rec *b = sb_idindex_get(x, "b", NULL, NULL); /* no init */
    assert_ptr_not_equal(b, a);
    assert_int_equal(b->serial, 0);
    assert_ptr_equal(sb_idindex_find(x, "b"), b);
    sb_idindex_free(x);
}

static void test_long_ids_share_prefix(void **state)
{
    struct sb_idindex *x = rec_index();
    atomic_int made = 0;
    /* key_size 16: 15 chars compared */
    struct rec *r = sb_idindex_get(x, "0123456789abcdeXYZ", init_rec, &made);
    assert_string_equal(r->id, "0123456789abcde");
    assert_ptr_equal(sb_idindex_get(x, "0123456789abcdeQQQQQQQQQQ", init_rec, &made), r);
    assert_ptr_equal(sb_idindex_find(x, "0123456789abcde"), r);
    assert_int_equal(atomic_load(&made), 1);
    struct rec *shorter = sb_idindex_get(x, "0123456789abcd", init_rec, &made);
    assert_ptr_not_equal(shorter, r);
    assert_int_equal(atomic_load(&made), 2);
    sb_idindex_free(x);
}

#define MANY 10000

/* Every record exactly once, by serial; returns how many were walked. */
static int walk_once_each(struct sb_idindex *x, int n)
{
    char *seen = calloc((size_t)n, 1);
    struct sb_idindex_iter it;
    int walked = 0;
    sb_idindex_iter_init(&it, x);
    for (struct rec *r = sb_idindex_next(&it); r; r = sb_idindex_next(&it)) {
        assert_in_range(r->serial, 0, n - 1);
        assert_int_equal(seen[r->serial], 0);
        seen[r->serial] = 1;
        walked++;
    }
    free(seen);
    return walked;
}

static void test_growth_and_walk(void **state)
{
    struct sb_idindex *x = rec_index();
    static struct rec *got[MANY];
    atomic_int made = 0;
    char id[16];
    for (int i = 0; i < MANY; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        got[i] = sb_idindex_get(x, id, init_rec, &made);
        assert_int_equal(got[i]->serial, i);
        if (i % 1000 == 0) /* walks of smaller tables too */
            assert_int_equal(walk_once_each(x, i + 1), i + 1);
    }
    assert_int_equal(atomic_load(&made), MANY); /* 64 slots to 32768: nine doublings */
    for (int i = 0; i < MANY; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        assert_ptr_equal(sb_idindex_find(x, id), got[i]);
        assert_ptr_equal(sb_idindex_get(x, id, init_rec, &made), got[i]);
    }
    assert_int_equal(atomic_load(&made), MANY);
    assert_int_equal(walk_once_each(x, MANY), MANY);
    sb_idindex_free(x);
}

/* ---- many threads at once (run under TSan in CI) ---- */

#define WRITERS 4
#define IDS 3000

struct shared {
    struct sb_idindex *x;
    pthread_barrier_t go;
    atomic_int made;
    atomic_bool done;
};

struct writer {
    struct shared *s;
    int t;
};

/* Writer t gets half of the ids, from its own offset, so every id is wanted
 * by two writers and most creations race; each find then sees its record. */
static void *writer(void *arg)
{
    struct writer *w = arg;
    char id[16];
    pthread_barrier_wait(&w->s->go);
    for (int k = 0; k < IDS / 2; k++) {
        int i = (w->t * IDS / WRITERS + k) % IDS;
        snprintf(id, sizeof(id), "id-%d", i);
        struct rec *r = sb_idindex_get(w->s->x, id, init_rec, &w->s->made);
        assert_string_equal(r->id, id);
        atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
        assert_ptr_equal(sb_idindex_find(w->s->x, id), r);
    }
    return NULL;
}

/* Walks while the writers insert and grow: every record it meets is whole. */
static void *reader(void *arg)
{
    struct shared *s = arg;
    pthread_barrier_wait(&s->go);
    while (!atomic_load(&s->done)) {
        struct sb_idindex_iter it;
        sb_idindex_iter_init(&it, s->x);
        for (struct rec *r = sb_idindex_next(&it); r; r = sb_idindex_next(&it)) {
            assert_in_range(r->serial, 0, IDS - 1);
            assert_memory_equal(r->id, "id-", 3);
        }
        sched_yield();
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct shared s = {.x = rec_index()};
    struct writer w[WRITERS];
    pthread_t t[WRITERS], rt;
    pthread_barrier_init(&s.go, NULL, WRITERS + 1);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.s = &s, .t = i};
        assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    assert_int_equal(pthread_create(&rt, NULL, reader, &s), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&s.done, true);
    pthread_join(rt, NULL);
    assert_int_equal(atomic_load(&s.made), IDS); /* init once per id */
    assert_int_equal(walk_once_each(s.x, IDS), IDS);
    char id[16];
    for (int i = 0; i < IDS; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        struct rec *r = sb_idindex_find(s.x, id);
        assert_non_null(r);
        assert_int_equal(atomic_load(&r->hits), 2); /* two writers each */
    }
    pthread_barrier_destroy(&s.go);
    sb_idindex_free(s.x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_get_once),
        cmocka_unit_test(test_long_ids_share_prefix),
        cmocka_unit_test(test_growth_and_walk),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
