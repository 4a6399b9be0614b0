/* SPDX-License-Identifier: MIT */
/*
 * limits_bench.c - the limiter's cost per request: reserve + settle over
 * three scopes (a provider with rpm/tpm, a virtual key and a user, each
 * with rpm, tpm and a daily budget), as a /v1 request pays it. Limits are
 * the largest allowed and the clock stands still (threads with clocks of
 * their own would drift apart and refuse each other on a shared provider),
 * so every request passes; the arithmetic is the same as with a moving one.
 *
 * With threads > 1 each thread has its own key and user; "disjoint" gives
 * each its own provider too (requests share no scope), "shared" one
 * provider for all (its record is written by every request). Prints ns per
 * reserve + settle per thread, the median of five runs. Not a test: it
 * asserts nothing about speed; `make build/bench/limits_bench` builds it.
 *
 *   build/bench/limits_bench [iterations-per-run [threads [disjoint|shared]]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/limits.h"

#define T0 1718452800000LL /* 2024-06-15T12:00:00Z */
#define MAX_THREADS 16

struct worker {
    struct sb_limits *l;
    long n;
    char pid[16], kid[16], user[16];
    struct sb_provider prov;
    struct sb_model model;
    struct sb_client_key key;
    struct sb_client_limits user_limits;
    pthread_barrier_t *go;
    double ns;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(struct worker *w, int i, bool shared)
{
    snprintf(w->pid, sizeof(w->pid), "p%d", shared ? 0 : i);
    snprintf(w->kid, sizeof(w->kid), "%d", i);
    snprintf(w->user, sizeof(w->user), "u%d", i);
    w->prov = (struct sb_provider){.id = w->pid, .rpm = SB_LIMITS_MAX, .tpm = SB_LIMITS_MAX};
    w->model = (struct sb_model){
        .id = "m", .provider = &w->prov, .input_per_mtok = 1, .output_per_mtok = 2};
    w->key = (struct sb_client_key){
        .id = w->kid, .name = "k", .limits = {SB_LIMITS_MAX, SB_LIMITS_MAX, 1e9, SB_BUDGET_DAY}};
    w->user_limits = (struct sb_client_limits){SB_LIMITS_MAX, SB_LIMITS_MAX, 1e9, SB_BUDGET_DAY};
}

/* w->n requests; w->ns gets ns per reserve + settle. */
static void *run(void *ud)
{
    struct worker *w = ud;
    pthread_barrier_wait(w->go);
    double t = now_s();
    for (long i = 0; i < w->n; i++) {
        struct sb_limits_req q = {.model = &w->model,
                                  .key = &w->key,
                                  .user = w->user,
                                  .user_limits = &w->user_limits,
                                  .prompt_tokens = 100,
                                  .max_tokens = 200,
                                  .now_ms = T0};
        struct sb_limits_ticket tk;
        struct sb_error e = {0};
        if (sb_limits_reserve(w->l, &q, &tk, &e) != SB_OK) {
            fprintf(stderr, "limits_bench: refused: %s\n", e.msg);
            exit(1);
        }
        sb_limits_settle(w->l, &tk, 250, 0.0005, T0);
    }
    w->ns = (now_s() - t) * 1e9 / (double)w->n;
    return NULL;
}

/* One run of every thread at once; returns the mean ns per request per thread. */
static double round_of(struct worker *w, int threads, long n)
{
    pthread_barrier_t go;
    pthread_t th[MAX_THREADS];
    double sum = 0;
    pthread_barrier_init(&go, NULL, threads);
    for (int i = 0; i < threads; i++) {
        w[i].n = n;
        w[i].go = &go;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum += w[i].ns;
    }
    pthread_barrier_destroy(&go);
    return sum / threads;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    bool shared = argc > 3 && strcmp(argv[3], "shared") == 0;
    if (threads < 1 || threads > MAX_THREADS)
        threads = 1;
    struct sb_limits *l = sb_limits_create();
    static struct worker w[MAX_THREADS];
    double ns[5];
    for (int i = 0; i < threads; i++) {
        w[i].l = l;
        setup(&w[i], i, shared);
    }
    round_of(w, threads, n / 10); /* warm up: records created, caches filled */
    for (int i = 0; i < 5; i++)
        ns[i] = round_of(w, threads, n);
    qsort(ns, 5, sizeof(ns[0]), cmp);
    printf("limits reserve+settle (3 scopes, %d thread(s)%s): %.1f ns median (%.1f-%.1f)\n",
           threads, threads > 1 ? (shared ? ", one provider" : ", disjoint") : "", ns[2], ns[0],
           ns[4]);
    sb_limits_free(l);
    return 0;
}
