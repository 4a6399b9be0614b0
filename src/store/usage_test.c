/* SPDX-License-Identifier: MIT */
/*
 * usage_test.c - the usage writer against a real SQLite file: concurrent
 * submitters lose nothing, stop() flushes what is still queued, and a
 * failing store (a test double behind the same ops table) is counted,
 * not spun on. Audit records go through the same writer: stop() flushes
 * every one, interleaved with usage rows, with their strings intact (the
 * caller's buffers are reused right after submit), oversized JSON replaced,
 * and invalid fields repaired rather than losing their batch; usage rows
 * raise their keys' last_used_at.
 *
 * The spill journal (issue 7 part 6), against a flaky store double that
 * wraps a real SQLite store and fails (fast, or slowly like a locked
 * database) until a deadline: no row is lost, the order is kept, the
 * queue stays within its cap (the overflow goes to the journal), every
 * field survives, the journal is replayed and removed; a torn tail is cut;
 * a commit reported as failed, and a crash between the last commit and
 * the journal's removal, insert nothing twice.
 *
 * Packed rows (issue 9): every field survives the queue's packing at its
 * longest and its emptiest, through the multi-row INSERT and the single
 * rows after it; the byte cap counts packed bytes; last_used_at of keys
 * and models is raised with the rows, past BATCH distinct keys a round.
 */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "core/alloc.h"
#include "store/identity.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "store/usage.h"

static char path[64];
static char url[80];

static int setup(void **state)
{
    (void)state;
    sbt_db_new("usage", path, url);
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    if (sb_store_open(url, &s, &err) != SB_OK || sb_store_migrate(s, &err) != SB_OK)
        fail_msg("%s", err.msg);
    sb_store_close(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbt_db_remove(path);
    return 0;
}

static long long count_rows(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "SELECT COUNT(DISTINCT request_id) FROM usage_logs", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static struct sb_usage_writer *start(void)
{
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    struct sb_usage_writer *w = sb_usage_writer_start(s, &err);
    assert_non_null(w);
    return w;
}

static void fill(struct sb_usage *u, int thread, int i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "t%d-%d", thread, i);
    snprintf(u->status, sizeof(u->status), "ok");
    u->http_status = 200;
    u->ts_ms = 1700000000000LL + i;
    u->prompt_tokens = -1;
    u->completion_tokens = -1;
    u->ttft_ms = -1;
}

struct producer {
    struct sb_usage_writer *w;
    int id, n;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct sb_usage u;
    for (int i = 0; i < p->n; i++) {
        fill(&u, p->id, i);
        sb_usage_submit(p->w, &u);
    }
    return NULL;
}

static void test_four_threads(void **state)
{
    enum { THREADS = 4, EACH = 2500 };
    pthread_t t[THREADS];
    struct producer p[THREADS];
    (void)state;
    struct sb_usage_writer *w = start();
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct producer){w, i, EACH};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sb_usage_failed(w), 0);
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows(), THREADS * EACH);
}

static void test_stop_flushes_queue(void **state)
{
    enum { N = 30000 };
    struct sb_usage u;
    (void)state;
    struct sb_usage_writer *w = start();
    for (int i = 0; i < N; i++) {
        fill(&u, 9, i);
        sb_usage_submit(w, &u);
    }
    /* Most rows are certainly still queued here; stop must write them all. */
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows(), N);
    sb_usage_writer_stop(NULL);
}

static long long scalar(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_audit_flushed_on_stop(void **state)
{
    enum { N = 3000 };
    struct sb_usage u;
    char actor[32], target[32], before[64];
    char *huge = sb_xmalloc(70 * 1024);
    (void)state;
    memset(huge, 'x', 70 * 1024 - 1);
    huge[70 * 1024 - 1] = '\0';
    struct sb_usage_writer *w = start();
    for (int i = 0; i < N; i++) {
        snprintf(actor, sizeof(actor), "user%d", i);
        snprintf(target, sizeof(target), "key-%d", i);
        snprintf(before, sizeof(before), "{\"n\":%d}", i);
        struct sb_audit a = {.actor = actor,
                             .actor_role = "user",
                             .action = "key.create",
                             .target_type = "key",
                             .target_id = target,
                             .before = before,
                             .after = i == 7 ? huge : NULL,
                             .outcome = i % 2 ? "ok" : "denied"};
        sb_usage_submit_audit(w, &a);
        memset(actor, '?', sizeof(actor) - 1); /* the writer must have copied */
        fill(&u, 3, i);
        sb_usage_submit(w, &u);
    }
    /* repaired, not refused: no actor, no action, an unknown outcome */
    struct sb_audit odd = {.outcome = "perhaps"};
    sb_usage_submit_audit(w, &odd);
    sb_usage_writer_stop(w);
    free(huge);
    assert_int_equal(count_rows(), N);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log"), N + 1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'user1234' AND"
                            " target_id = 'key-1234' AND before_json = '{\"n\":1234}'"
                            " AND outcome = 'denied'"),
                     1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'user7' AND"
                            " after_json = '{\"truncated\":true}'"),
                     1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'unknown' AND"
                            " action = 'unknown' AND outcome = 'failed'"),
                     1);
}

static void test_usage_touches_keys(void **state)
{
    struct sb_usage u;
    struct sb_error err = {0};
    struct sb_store *s = NULL;
    int64_t id = 0;
    (void)state;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    struct sb_store_api_key k = {.name = "k",
                                 .key_hash = "sha256:00000000000000000000000000000000000000000000"
                                             "00000000000000000000",
                                 .key_prefix = "sk-sb-AAAA"};
    assert_int_equal(sb_store_key_create(s, &k, &id, &err), SB_OK);
    sb_store_close(s);
    struct sb_usage_writer *w = start();
    for (int i = 0; i < 5; i++) {
        fill(&u, 4, i);
        snprintf(u.key_id, sizeof(u.key_id), "%lld", (long long)id);
        u.ts_ms = 1700000000000LL + 100 * i;
        sb_usage_submit(w, &u);
    }
    fill(&u, 4, 99);
    snprintf(u.key_id, sizeof(u.key_id), "not-a-number");
    sb_usage_submit(w, &u);
    sb_usage_writer_stop(w);
    assert_int_equal(scalar("SELECT last_used_at FROM api_keys"), 1700000000400LL);
}

/* ---- a store that always fails ---- */

struct failing {
    struct sb_store base;
    int *calls; /* insert attempts, checked by the test */
};

static sb_err fail_write(struct sb_store *s, const struct sb_store_usage_tx *tx,
                         struct sb_error *err)
{
    (void)tx;
    (*((struct failing *)s)->calls)++;
    return sb_fail(err, SB_E_STORE, "disk on fire");
}

static void fail_close(struct sb_store *s)
{
    free(s);
}

static const struct sb_store_ops failing_ops = {
    .name = "failing", .write_usage = fail_write, .close = fail_close};

/* Without a journal, what the database refuses is lost, and counted. */
static void test_failing_store(void **state)
{
    int calls = 0;
    struct sb_error err = {0};
    struct sb_usage u;
    (void)state;
    struct failing *f = sb_xcalloc(1, sizeof(*f));
    f->base.ops = &failing_ops;
    f->calls = &calls;
    struct sb_usage_writer *w = sb_usage_writer_start(&f->base, &err);
    for (int i = 0; i < 10; i++) {
        fill(&u, 1, i);
        sb_usage_submit(w, &u);
    }
    while (sb_usage_failed(w) + sb_usage_written(w) < 10)
        usleep(1000);
    assert_int_equal(sb_usage_failed(w), 10);
    assert_int_equal(sb_usage_written(w), 0);
    sb_usage_writer_stop(w);
    assert_true(calls >= 1);
}

/* ---- a store that fails until a deadline, then works (wraps SQLite) ---- */

struct flaky {
    struct sb_store base;
    struct sb_store *real;
    struct sb_store_ops ops;
    struct sb_store_identity_ops iops;
    int64_t fail_until_ms; /* monotonic; set before the writer starts, changed by no one */
    int slow_ms;           /* a failing call first waits this long (a locked database) */
    int lies;              /* marked inserts that commit, then report failure */
    int calls_failed;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True (and err set) while the outage lasts. */
static bool down(struct sb_store *s, struct sb_error *err)
{
    struct flaky *f = (struct flaky *)s;
    if (mono_ms() >= f->fail_until_ms)
        return false;
    if (f->slow_ms)
        usleep((useconds_t)f->slow_ms * 1000);
    f->calls_failed++;
    sb_fail(err, SB_E_STORE, "sqlite: database is locked");
    return true;
}

static sb_err flaky_write(struct sb_store *s, const struct sb_store_usage_tx *tx,
                          struct sb_error *err)
{
    struct flaky *f = (struct flaky *)s;
    if (down(s, err))
        return err->code;
    sb_err rc = sb_store_write_usage(f->real, tx, err);
    if (rc == SB_OK && tx->mark_key && f->lies > 0) {
        f->lies--;
        return sb_fail(err, SB_E_STORE, "sqlite: disk I/O error (after the commit)");
    }
    return rc;
}

static sb_err flaky_get(struct sb_store *s, const char *key, char **value, struct sb_error *err)
{
    *value = NULL;
    return down(s, err) ? err->code
                        : sb_store_setting_get(((struct flaky *)s)->real, key, value, err);
}

static sb_err flaky_audit(struct sb_store *s, const struct sb_audit *rows, size_t n,
                          struct sb_error *err)
{
    return down(s, err) ? err->code
                        : sb_store_audit_insert(((struct flaky *)s)->real, rows, n, err);
}

static void flaky_close(struct sb_store *s)
{
    sb_store_close(((struct flaky *)s)->real);
    free(s);
}

/* A store over the test database that fails for fail_ms from now. */
static struct flaky *flaky_open(int fail_ms, int slow_ms)
{
    struct sb_error err = {0};
    struct flaky *f = sb_xcalloc(1, sizeof(*f));
    assert_int_equal(sb_store_open(url, &f->real, &err), SB_OK);
    f->ops = (struct sb_store_ops){.name = "flaky",
                                   .write_usage = flaky_write,
                                   .setting_get = flaky_get,
                                   .close = flaky_close,
                                   .identity = &f->iops};
    f->iops.audit_insert = flaky_audit;
    f->base.ops = &f->ops;
    f->fail_until_ms = mono_ms() + fail_ms;
    f->slow_ms = slow_ms;
    return f;
}

/* ---- pacing: the writer yields while few requests are in flight ---- */

static long fake_inflight;
static long now_inflight(void)
{
    return fake_inflight;
}

static unsigned paces[4]; /* what the writer asked before each batch: 8 or 0 */
static size_t npaces;

static void record_pace(struct sb_store *s, unsigned every)
{
    if (npaces < sizeof(paces) / sizeof(paces[0]))
        paces[npaces++] = every;
    sb_store_usage_pace(((struct flaky *)s)->real, every); /* SQLite inserts paced for real */
}

/* 600 rows (three batches) through the writer with `inflight` requests in
 * flight; returns the pacing it asked for before the first batch. */
static unsigned pace_with(long inflight)
{
    enum { N = 600 };
    struct sb_error err = {0};
    struct sb_usage u;
    struct flaky *f = flaky_open(0, 0);
    f->ops.usage_pace = record_pace;
    fake_inflight = inflight;
    npaces = 0;
    long long before = count_rows();
    struct sb_usage_opts o = {.inflight = now_inflight};
    struct sb_usage_writer *w = sb_usage_writer_open(&f->base, &o, &err);
    assert_non_null(w);
    for (int i = 0; i < N; i++) {
        fill(&u, (int)inflight, i);
        sb_usage_submit(w, &u);
    }
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows() - before, N); /* pacing loses nothing */
    assert_true(npaces >= 1);
    return paces[0];
}

static void test_paces_when_few_in_flight(void **state)
{
    (void)state;
    assert_int_equal(pace_with(1), 8);
    assert_int_equal(pace_with(0), 8);
    assert_int_equal(pace_with(64), 0); /* under load: no yields */
}

static char jpath[96];

static struct sb_usage_writer *start_journaled(struct flaky *f, size_t max_rows)
{
    struct sb_error err = {0};
    snprintf(jpath, sizeof(jpath), "%s.usage-journal", path);
    struct sb_usage_opts o = {.journal_path = jpath, .max_rows = max_rows};
    struct sb_usage_writer *w = sb_usage_writer_open(&f->base, &o, &err);
    assert_non_null(w);
    return w;
}

static bool journal_exists(void)
{
    struct stat st;
    return stat(jpath, &st) == 0;
}

/* Until n rows are written, the journal is empty and nothing is left in
 * memory (up to 30 s): the writer counts a batch written before it lets go
 * of it, so the three settle in turn. */
static void wait_replayed(struct sb_usage_writer *w, uint64_t n)
{
    struct sb_usage_stats st;
    for (int i = 0; i < 3000; i++) {
        sb_usage_stats(w, &st);
        if (st.written >= n && st.journal_rows == 0 && st.queue_rows == 0)
            return;
        usleep(10000);
    }
    fail_msg("not replayed: written %llu of %llu, journal %llu, in memory %llu",
             (unsigned long long)st.written, (unsigned long long)n,
             (unsigned long long)st.journal_rows, (unsigned long long)st.queue_rows);
}

/* Row i with every field set from i, so the database can check them all. */
static void fill_full(struct sb_usage *u, int i)
{
    fill(u, 0, i);
    snprintf(u->route, sizeof(u->route), "route-%d", i % 7);
    snprintf(u->variant, sizeof(u->variant), "v%d", i % 2);
    snprintf(u->key_id, sizeof(u->key_id), "k%d", i % 5);
    snprintf(u->user_id, sizeof(u->user_id), "u%d", i % 3);
    snprintf(u->error_code, sizeof(u->error_code), "e%d", i % 4);
    u->fallbacks = i % 3;
}

/* Rows whose fields all match fill_full of their ts. */
static long long rows_intact(void)
{
    return scalar("SELECT COUNT(*) FROM usage_logs WHERE"
                  " route = 'route-' || ((ts - 1700000000000) % 7) AND"
                  " variant = 'v' || ((ts - 1700000000000) % 2) AND"
                  " key_id = 'k' || ((ts - 1700000000000) % 5) AND"
                  " user_id = 'u' || ((ts - 1700000000000) % 3) AND"
                  " error_code = 'e' || ((ts - 1700000000000) % 4) AND"
                  " fallbacks = (ts - 1700000000000) % 3");
}

/* A database down for 1.5 s mid-run (failing fast): nothing lost, order kept. */
static void test_outage_order_kept(void **state)
{
    enum { N = 6000 };
    struct sb_usage u;
    struct sb_usage_stats st;
    (void)state;
    struct flaky *f = flaky_open(1500, 0);
    struct sb_usage_writer *w = start_journaled(f, 0);
    for (int i = 0; i < N; i++) {
        fill_full(&u, i);
        sb_usage_submit(w, &u);
        if (i % 100 == 0)
            usleep(50 * 1000); /* ~3 s of traffic, half of it during the outage */
        if (i == N / 3) {
            sb_usage_stats(w, &st);
            assert_true(st.spilled > 0 || st.journal_rows > 0); /* spilling by now */
        }
    }
    wait_replayed(w, N);
    sb_usage_stats(w, &st);
    assert_int_equal(st.lost, 0);
    assert_true(st.spilled > 1000);
    assert_int_equal(st.queue_rows, 0);
    assert_true(f->calls_failed > 0);
    sb_usage_writer_stop(w);
    assert_false(journal_exists());
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), N);
    assert_int_equal(count_rows(), N);
    assert_int_equal(rows_intact(), N);
    /* stored in submission order: ts rises with the row id */
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs a JOIN usage_logs b"
                            " ON b.id = a.id + 1 WHERE b.ts <= a.ts"),
                     0);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct timed {
    struct sb_usage_writer *w;
    int id, n;
    double worst_us; /* slowest single submit */
    double total_us; /* time inside submit */
};

static void *produce_timed(void *arg)
{
    struct timed *p = arg;
    struct sb_usage u;
    for (int i = 0; i < p->n; i++) {
        fill(&u, p->id, i);
        double t0 = now_us();
        sb_usage_submit(p->w, &u);
        double dt = now_us() - t0;
        p->worst_us = dt > p->worst_us ? dt : p->worst_us;
        p->total_us += dt;
        if (i % 500 == 0)
            usleep(10 * 1000);
    }
    return NULL;
}

/* A database that hangs 300 ms per call (a held lock) for 2 s, a queue cap
 * of 500: the queue never holds more, the rest overflows to the journal,
 * and every row is stored exactly once afterwards. */
static void test_outage_memory_bounded(void **state)
{
    enum { THREADS = 4, EACH = 10000, CAP = 500 };
    pthread_t t[THREADS];
    struct timed p[THREADS];
    struct sb_usage_stats st;
    (void)state;
    struct flaky *f = flaky_open(2000, 300);
    struct sb_usage_writer *w = start_journaled(f, CAP);
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct timed){w, i, EACH, 0, 0};
        pthread_create(&t[i], NULL, produce_timed, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    double in_submit = 0, worst = 0;
    for (int i = 0; i < THREADS; i++) {
        in_submit += p[i].total_us;
        worst = p[i].worst_us > worst ? p[i].worst_us : worst;
    }
    wait_replayed(w, THREADS * EACH);
    sb_usage_stats(w, &st);
    print_message("overflow: %llu of %d rows journaled, %.2f us per submit on average,"
                  " worst %.0f us\n",
                  (unsigned long long)st.spilled, THREADS * EACH, in_submit / (THREADS * EACH),
                  worst);
    assert_true(st.queue_peak <= CAP);
    assert_true(st.queue_peak >= CAP / 2); /* the cap was reached, not just respected */
    assert_int_equal(st.lost, 0);
    assert_true(st.spilled > 0);
    sb_usage_writer_stop(w);
    assert_false(journal_exists());
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), THREADS * EACH);
    assert_int_equal(count_rows(), THREADS * EACH);
}

/* Stop during an outage keeps the journal; a crash tore its tail; the next
 * start cuts the tail and replays the rest before newer rows. */
static void test_journal_survives_restart(void **state)
{
    enum { N = 300 };
    struct sb_usage u;
    (void)state;
    struct flaky *f = flaky_open(60 * 1000, 0);
    struct sb_usage_writer *w = start_journaled(f, 0);
    sb_usage_submit_audit(
        w, &(struct sb_audit){
               .actor = "alice", .action = "key.create", .target_id = "7", .outcome = "ok"});
    for (int i = 0; i < N; i++) {
        fill_full(&u, i);
        sb_usage_submit(w, &u);
    }
    sb_usage_writer_stop(w); /* the database is still down */
    assert_true(journal_exists());
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), 0);
    FILE *jf = fopen(jpath, "ab");
    fwrite("SBUR\x40\x00\x00\x00garbage", 1, 15, jf); /* half a record */
    fclose(jf);
    w = start_journaled(flaky_open(0, 0), 0);
    fill_full(&u, N); /* newer than everything in the journal */
    sb_usage_submit(w, &u);
    wait_replayed(w, N + 1);
    sb_usage_writer_stop(w);
    assert_false(journal_exists());
    assert_int_equal(count_rows(), N + 1);
    assert_int_equal(rows_intact(), N + 1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs a JOIN usage_logs b"
                            " ON b.id = a.id + 1 WHERE b.ts <= a.ts"),
                     0);
    assert_int_equal(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'alice'"
                            " AND target_id = '7'"),
                     1);
}

/* Reads the whole file at p into *out (malloc); returns its size. */
static size_t slurp(const char *p, char **out)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = sb_xmalloc(n);
    assert_int_equal(fread(*out, 1, n, f), n);
    fclose(f);
    return n;
}

/* Exactly once: commits reported as failed are not repeated, and a journal
 * that reappears after its replay committed (a crash before unlink)
 * inserts nothing. */
static void test_replay_exactly_once(void **state)
{
    enum { N = 1000 };
    struct sb_usage u;
    char *copy = NULL;
    (void)state;
    struct sb_usage_writer *w = start_journaled(flaky_open(60 * 1000, 0), 0);
    for (int i = 0; i < N; i++) {
        fill_full(&u, i);
        sb_usage_submit(w, &u);
    }
    sb_usage_writer_stop(w);
    size_t n = slurp(jpath, &copy);
    struct flaky *f = flaky_open(0, 0);
    f->lies = 3; /* the first three batches commit but report an I/O error */
    w = start_journaled(f, 0);
    wait_replayed(w, N - 3 * 64);
    assert_int_equal(f->lies, 0); /* f is freed by stop */
    sb_usage_writer_stop(w);
    assert_false(journal_exists());
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), N);
    /* the crash came after the last commit but before the unlink */
    FILE *jf = fopen(jpath, "wb");
    fwrite(copy, 1, n, jf);
    fclose(jf);
    w = start_journaled(flaky_open(0, 0), 0);
    for (int i = 0; i < 500 && journal_exists(); i++)
        usleep(10000);
    sb_usage_writer_stop(w);
    assert_false(journal_exists());
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), N);
    assert_int_equal(count_rows(), N);
    free(copy);
}

static void test_journal_path(void **state)
{
    char out[64];
    (void)state;
    assert_true(sb_usage_journal_path("sqlite:./sb.db", out, sizeof(out)));
    assert_string_equal(out, "./sb.db.usage-journal");
    assert_true(sb_usage_journal_path("sqlite:///var/lib/sb.db", out, sizeof(out)));
    assert_string_equal(out, "/var/lib/sb.db.usage-journal");
    assert_false(sb_usage_journal_path("sqlite::memory:", out, sizeof(out)));
    assert_false(sb_usage_journal_path("postgres://x/y", out, sizeof(out)));
    assert_false(sb_usage_journal_path("sqlite:/a/very/long/path/that/does/not/fit/in/64/bytes.db",
                                       out, sizeof(out)));
}

static int teardown_journal(void **state)
{
    unlink(jpath);
    return teardown(state);
}

/* ---- packed rows and last-use raises (issue 9) ---- */

static void exec_sql(const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    sqlite3_open(path, &db);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* A string array filled to its last byte with c, its first bytes i's digits. */
static void full(char *f, size_t size, char c, int i)
{
    char head[16];
    int n = snprintf(head, sizeof(head), "%d", i);
    memset(f, c, size - 1);
    memcpy(f, head, (size_t)n);
    f[size - 1] = '\0';
}

/* Row i: odd rows with every string at its longest, even ones with only
 * what the schema requires; numbers at their edges. */
static void fill_edge(struct sb_usage *u, int i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "edge-%d", i);
    snprintf(u->status, sizeof(u->status), "error");
    if (i % 2) {
        full(u->request_id, sizeof(u->request_id), 'r', i);
        full(u->user_id, sizeof(u->user_id), 'u', i);
        full(u->key_id, sizeof(u->key_id), 'k', i);
        full(u->route, sizeof(u->route), 'o', i);
        full(u->provider, sizeof(u->provider), 'p', i);
        full(u->model, sizeof(u->model), 'm', i);
        full(u->variant, sizeof(u->variant), 'v', i);
        full(u->status, sizeof(u->status), 's', i);
        full(u->error_code, sizeof(u->error_code), 'e', i);
    }
    u->ts_ms = i % 3 ? INT64_MAX - i : INT64_MIN + i;
    u->http_status = i % 2 ? 599 : 0;
    u->prompt_tokens = i % 2 ? INT64_MAX : -1;
    u->completion_tokens = i;
    u->cost_usd = 1.0 / (i + 3);
    u->latency_ms = 1e-3 * i;
    u->ttft_ms = i % 2 ? -1 : 12.5;
    u->streamed = i % 2;
    u->fallbacks = i % 4;
}

static void assert_row(sqlite3_stmt *st, const struct sb_usage *u)
{
    const char *want[] = {u->request_id, u->user_id, u->key_id, u->route,     u->provider,
                          u->model,      u->variant, u->status, u->error_code};
    for (int c = 0; c < 9; c++)
        assert_string_equal((const char *)sqlite3_column_text(st, c), want[c]);
    assert_true(sqlite3_column_int64(st, 9) == u->ts_ms);
    assert_int_equal(sqlite3_column_int(st, 10), u->http_status);
    assert_true(sqlite3_column_int64(st, 11) == u->prompt_tokens);
    assert_true(sqlite3_column_int64(st, 12) == u->completion_tokens);
    assert_true(sqlite3_column_double(st, 13) == u->cost_usd);
    assert_true(sqlite3_column_double(st, 14) == u->latency_ms);
    assert_true(sqlite3_column_double(st, 15) == u->ttft_ms);
    assert_int_equal(sqlite3_column_int(st, 16), u->streamed);
    assert_int_equal(sqlite3_column_int(st, 17), u->fallbacks);
}

/* 45 rows: one 32-row INSERT, one 8-row and five single ones, every field intact. */
static void test_packed_rows_intact(void **state)
{
    enum { N = 45 };
    struct sb_usage u;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    (void)state;
    struct sb_usage_writer *w = start();
    for (int i = 0; i < N; i++) {
        fill_edge(&u, i);
        sb_usage_submit(w, &u);
    }
    sb_usage_writer_stop(w);
    sqlite3_open(path, &db);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT request_id, COALESCE(user_id, ''), COALESCE(key_id, ''),"
                           " COALESCE(route, ''), COALESCE(provider, ''), COALESCE(model, ''),"
                           " COALESCE(variant, ''), status, COALESCE(error_code, ''), ts,"
                           " http_status, prompt_tokens, completion_tokens, cost_usd, latency_ms,"
                           " ttft_ms, streamed, fallbacks, id FROM usage_logs"
                           " ORDER BY completion_tokens",
                           -1, &st, NULL),
        SQLITE_OK);
    int i = 0;
    for (; sqlite3_step(st) == SQLITE_ROW; i++) {
        fill_edge(&u, i);
        assert_row(st, &u);
        /* The id is the start, clamped: INT64_MIN + i to 0, INT64_MAX - i to the top. */
        int64_t ms = sqlite3_column_int64(st, 18) >> SB__USAGE_SEQ_BITS;
        assert_true(ms == (u.ts_ms < 0 ? 0 : SB__USAGE_TS_MAX));
    }
    assert_int_equal(i, N);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Rows of one millisecond whose seq was taken: an 8-row INSERT hits a taken
 * id and is backed out, its rows go one by one, and each takes the next free
 * seq. Ids 5..20 of the millisecond are held by rows already in the table;
 * the writer is set to start at 5. */
static void test_taken_ids(void **state)
{
    enum { T = 1700000000123LL, N = 11, HELD = 16 };
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    struct sb_usage rows[N];
    (void)state;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    for (int i = 0; i < N; i++) {
        fill(&rows[i], 9, i);
        rows[i].ts_ms = T;
    }
    char sql[512];
    for (int i = 0; i < HELD; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO usage_logs(id, request_id, ts, status, http_status, prompt_tokens,"
                 " completion_tokens, cost_usd, latency_ms, ttft_ms, streamed, fallbacks)"
                 " VALUES(%lld, 'held-%d', %lld, 'ok', 200, 0, 0, 0, 0, -1, 0, 0)",
                 (long long)sb__sq_usage_id(T, 5 + (uint32_t)i), i, (long long)T);
        assert_int_equal(sqlite3_exec(sb__sq_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
    }
    ((struct sb__sqlite_store *)s)->usage_seq = 5;
    assert_int_equal(sb_store_insert_usage(s, rows, N, &err), SB_OK);
    sb_store_close(s);
    assert_int_equal(count_rows(), N + HELD);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    sqlite3_open(path, &db);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id)"
                                        " FROM usage_logs WHERE request_id LIKE 't9-%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), N);
    assert_int_equal(sqlite3_column_int(st, 1), N);
    /* All in T's millisecond, none on a held id: the first free seq is 21. */
    assert_true(sqlite3_column_int64(st, 2) >= sb__sq_usage_id(T, 5 + HELD));
    assert_true(sqlite3_column_int64(st, 3) < sb__sq_usage_id(T + 1, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The id bounds of a window: exact inside the clamp, safe at its ends. */
static void test_usage_id_bounds(void **state)
{
    int64_t lo, hi;
    (void)state;
    sb__sq_usage_ids(1000, 2000, &lo, &hi);
    assert_true(lo == sb__sq_usage_id(1000, 0) && hi == sb__sq_usage_id(2000, 0));
    assert_true(sb__sq_usage_id(1999, 0xFFFFFFFF) == hi - 1);
    sb__sq_usage_ids(2000, 2000, &lo, &hi);
    assert_true(lo == hi);
    sb__sq_usage_ids(INT64_MIN, INT64_MAX, &lo, &hi);
    assert_true(lo == 0 && hi > sb__sq_usage_id(INT64_MAX, 0xFFFFFFFF));
    sb__sq_usage_ids(-5, 1, &lo, &hi);
    assert_true(lo == 0 && hi == sb__sq_usage_id(1, 0));
}

/* A 64 KiB cap holds far more short rows than 126 (64 KiB of 520-byte
 * structs): it counts the bytes packed. The rest overflow to the journal. */
static void test_cap_counts_packed_bytes(void **state)
{
    enum { N = 3000, CAP = 64 << 10 };
    struct sb_usage u;
    struct sb_usage_stats st;
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    snprintf(jpath, sizeof(jpath), "%s.usage-journal", path);
    struct sb_usage_opts o = {.journal_path = jpath, .max_bytes = CAP};
    struct sb_usage_writer *w = sb_usage_writer_open(s, &o, &err);
    assert_non_null(w);
    for (int i = 0; i < N; i++) { /* well within the writer's first 100 ms */
        fill(&u, 5, i);
        sb_usage_submit(w, &u);
    }
    wait_replayed(w, N);
    sb_usage_stats(w, &st);
    assert_true(st.queue_peak > 4 * (CAP / sizeof(struct sb_usage)));
    assert_true(st.queue_peak <= CAP / 64); /* no row packs under 64 bytes */
    assert_true(st.spilled > 0);
    assert_int_equal(st.lost, 0);
    sb_usage_writer_stop(w);
    assert_int_equal(count_rows(), N);
}

/* 300 keys, each used by three rows of one round (more distinct keys than a
 * batch holds), and a model: every key ends at its newest use, the model at
 * its newest ok row (an error row later does not count). */
static void test_raises_past_a_batch(void **state)
{
    enum { KEYS = 300 };
    struct sb_usage u;
    (void)state;
    exec_sql("INSERT INTO providers(identifier, name, type, base_url, created_at, updated_at)"
             " VALUES('p', 'p', 'openai', 'http://127.0.0.1:1', 0, 0);"
             "INSERT INTO models(provider_id, identifier, upstream_model, name, created_at,"
             " updated_at) VALUES(1, 'm1', 'm1', 'm1', 0, 0);"
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
             " INSERT INTO api_keys(id, name, key_hash, key_prefix, created_at)"
             " SELECT i, 'k' || i, 'h' || i, 'sk-' || i, 0 FROM n;");
    struct sb_usage_writer *w = start();
    for (int r = 0; r < 3; r++)
        for (int k = 1; k <= KEYS; k++) {
            fill(&u, r, k);
            snprintf(u.key_id, sizeof(u.key_id), "%d", k);
            snprintf(u.model, sizeof(u.model), "m1");
            u.ts_ms = 1000 * k + r;
            sb_usage_submit(w, &u);
        }
    fill(&u, 9, 0);
    snprintf(u.model, sizeof(u.model), "m1");
    snprintf(u.status, sizeof(u.status), "error");
    u.ts_ms = 1000 * KEYS + 500;
    sb_usage_submit(w, &u);
    sb_usage_writer_stop(w);
    assert_int_equal(scalar("SELECT COUNT(*) FROM api_keys WHERE last_used_at = 1000 * id + 2"),
                     KEYS);
    assert_int_equal(scalar("SELECT last_used_at FROM models WHERE identifier = 'm1'"),
                     1000 * KEYS + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_four_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_flushes_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_flushed_on_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_touches_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paces_when_few_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_order_kept, setup, teardown_journal),
        cmocka_unit_test_setup_teardown(test_outage_memory_bounded, setup, teardown_journal),
        cmocka_unit_test_setup_teardown(test_journal_survives_restart, setup, teardown_journal),
        cmocka_unit_test_setup_teardown(test_replay_exactly_once, setup, teardown_journal),
        cmocka_unit_test(test_journal_path),
        cmocka_unit_test_setup_teardown(test_packed_rows_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_counts_packed_bytes, setup, teardown_journal),
        cmocka_unit_test_setup_teardown(test_raises_past_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_ids, setup, teardown),
        cmocka_unit_test(test_usage_id_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
