/* SPDX-License-Identifier: MIT */
/*
 * usage_bench.c - what the usage writer costs per row, alone.
 *
 * Opens a fresh SQLite store (a file in a temp dir, WAL, as `serve` does),
 * starts the usage writer with its journal, and submits usage rows shaped
 * like the gateway's at a steady rate from one thread (as one worker at
 * saturation would), then stops the writer (which drains the queue) and
 * reports the writer thread's own CPU time per row (from its schedstat) and
 * the rows in the table. The number `make bench` reports for the writer
 * includes everything else on the core; this one isolates the writer, so a
 * change to batching can be compared in seconds. The rows name three keys
 * and a model that exist, as the gateway's do, so raising their
 * last_used_at writes as it does there.
 *
 *   usage_bench [--rows N (100000)] [--rate ROWS_PER_S (10000), 0 = as fast as possible]
 *               [--inflight N (none): requests in flight the writer is told; at 4
 *                or fewer it paces itself, as at concurrency 1 in `make bench`]
 *
 * Prints: RESULT rows=.. in_table=.. writer_us_per_row=.. submit_us_per_row=.. wall_s=..
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "store/usage.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU nanoseconds of the thread called "sb-usage" in this process. */
static uint64_t writer_ns(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    uint64_t ns = 0;
    char path[300], buf[64];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        bool is = f && fgets(buf, sizeof(buf), f) && strcmp(buf, "sb-usage\n") == 0;
        if (f)
            fclose(f);
        if (!is)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
        f = fopen(path, "r");
        if (f && fscanf(f, "%" SCNu64, &ns) != 1)
            ns = 0;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return ns;
}

static void fill_row(struct sb_usage *u, long i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "req_%016lx", (unsigned long)i * 2654435761u);
    /* The request's start: a few ms before now, as the gateway writes rows at
     * their end. In near order, as there (the ids are start times: sqlite_int.h). */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    u->ts_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000 - i % 7;
    snprintf(u->key_id, sizeof(u->key_id), "%d", 1 + (int)(i % 3));
    snprintf(u->route, sizeof(u->route), "m1k");
    snprintf(u->provider, sizeof(u->provider), "mock");
    snprintf(u->model, sizeof(u->model), "pa-m1k");
    snprintf(u->status, sizeof(u->status), "ok");
    u->http_status = 200;
    u->prompt_tokens = 12;
    u->completion_tokens = 256;
    u->cost_usd = 0.000123;
    u->latency_ms = 0.4 + (double)(i % 10) / 10;
    u->ttft_ms = -1;
}

/* The keys and the model the rows name (last_used_at is raised on them). */
static int seed(const char *db)
{
    static const char sql[] =
        "INSERT INTO providers(identifier, name, type, base_url, created_at, updated_at)"
        " VALUES('mock', 'mock', 'openai', 'http://127.0.0.1:1', 0, 0);"
        "INSERT INTO models(provider_id, identifier, upstream_model, name, created_at, updated_at)"
        " VALUES(1, 'pa-m1k', 'm1k', 'm1k', 0, 0);"
        "INSERT INTO api_keys(id, name, key_hash, key_prefix, created_at) VALUES"
        " (1, 'k1', 'h1', 'sk-1', 0), (2, 'k2', 'h2', 'sk-2', 0), (3, 'k3', 'h3', 'sk-3', 0);";
    sqlite3 *h = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(db, &h);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "usage_bench: seed: %s\n", msg ? msg : sqlite3_errmsg(h));
    sqlite3_free(msg);
    sqlite3_close(h);
    return rc == SQLITE_OK ? 0 : -1;
}

static long inflight_now = -1;
static long inflight(void)
{
    return inflight_now;
}

static long count_rows(const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM usage_logs", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

int main(int argc, char **argv)
{
    long rows = 100000, rate = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rows") == 0)
            rows = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight_now = strtol(argv[i + 1], NULL, 10);
    }
    char dir[] = "/tmp/sb-usage-bench.XXXXXX", db[300], url[320], journal[320];
    if (!mkdtemp(dir))
        return 1;
    snprintf(db, sizeof(db), "%s/u.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", db);
    snprintf(journal, sizeof(journal), "%s.usage-journal", db);
    struct sb_error err = {0};
    struct sb_store *s = NULL;
    if (sb_store_open(url, &s, &err) != SB_OK || sb_store_migrate(s, &err) != SB_OK) {
        fprintf(stderr, "usage_bench: %s\n", err.msg);
        return 1;
    }
    if (seed(db) != 0)
        return 1;
    struct sb_usage_opts o = {.journal_path = journal,
                              .inflight = inflight_now >= 0 ? inflight : NULL};
    struct sb_usage_writer *w = sb_usage_writer_open(s, &o, &err);
    if (!w) {
        fprintf(stderr, "usage_bench: %s\n", err.msg);
        return 1;
    }
    struct sb_usage u;
    double t0 = now_s(), submit = 0;
    uint64_t w0 = writer_ns();
    for (long i = 0; i < rows; i++) {
        fill_row(&u, i);
        double a = now_s();
        sb_usage_submit(w, &u);
        submit += now_s() - a;
        if (rate > 0 && i % 10 == 9) { /* ten rows, then sleep until they are due */
            double due = t0 + (double)(i + 1) / (double)rate, left = due - now_s();
            if (left > 0)
                usleep((useconds_t)(left * 1e6));
        }
    }
    uint64_t w1 = writer_ns(); /* before stop: the thread is gone after it */
    sb_usage_writer_stop(w);   /* drains; the drain's CPU is not in w1 - w0 */
    double wall = now_s() - t0;
    long in_table = count_rows(db);
    printf(
        "RESULT rows=%ld in_table=%ld writer_us_per_row=%.3f submit_us_per_row=%.3f wall_s=%.2f\n",
        rows, in_table, (double)(w1 - w0) / 1e3 / (double)rows, submit * 1e6 / (double)rows, wall);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "usage_bench: could not remove %s\n", dir);
    return in_table == rows ? 0 : 1;
}
