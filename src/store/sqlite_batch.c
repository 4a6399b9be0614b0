/* SPDX-License-Identifier: MIT */
/*
 * sqlite_batch.c - batch jobs in SQLite (store/batch.h, migration 10).
 *
 * Two tables: batches (one row per job: owner, options, status, counters,
 * the runner's lease) and batch_lines (one row per input line: what to send
 * and, once answered, the output line). Every write that moves a job along
 * is one transaction that also checks the lease (runner = ?), so a runner
 * whose lease another process took over cannot write after it: the lines it
 * had in flight are sent again by the new holder, never recorded twice.
 */
#include <string.h>

#include "store/batch.h"
#include "store/sqlite_int.h"

#define COLS                                                                                       \
    "identifier, created_by, run_as, user_id, key_id, endpoint, model, concurrency, status, "     \
    "total, completed, failed, in_flight, error, metadata, created_at, started_at, finished_at, " \
    "cancelled_at"

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static void read_batch(struct sb_arena *a, sqlite3_stmt *st, struct sb_store_batch *b)
{
    memset(b, 0, sizeof(*b));
    b->id = sb__sq_col_str(a, st, 0);
    b->created_by = sb__sq_col_str(a, st, 1);
    b->run_as = sb__sq_col_str(a, st, 2);
    b->user_id = sb__sq_col_str(a, st, 3);
    b->key_id = col_i64(st, 4);
    b->endpoint = sb__sq_col_str(a, st, 5);
    b->model = sb__sq_col_str(a, st, 6);
    b->concurrency = col_i64(st, 7);
    b->status = sb__sq_col_str(a, st, 8);
    b->total = col_i64(st, 9);
    b->completed = col_i64(st, 10);
    b->failed = col_i64(st, 11);
    b->in_flight = col_i64(st, 12);
    b->error = sb__sq_col_str(a, st, 13);
    b->metadata = sb__sq_col_str(a, st, 14);
    b->created_at = col_i64(st, 15);
    b->started_at = col_i64(st, 16);
    b->finished_at = col_i64(st, 17);
    b->cancelled_at = col_i64(st, 18);
}

/* Runs fn inside BEGIN IMMEDIATE .. COMMIT (rolled back on failure). */
static sb_err in_tx(sqlite3 *db, sb_err (*fn)(sqlite3 *db, void *ud, struct sb_error *err),
                    void *ud, struct sb_error *err)
{
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc != SB_OK)
        return rc;
    rc = fn(db, ud, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

/* ======================================================================
 * Create
 * ==================================================================== */

struct create_args {
    const struct sb_store_batch *b;
    const struct sb_store_batch_line *lines;
    size_t n;
};

static sb_err insert_lines(sqlite3 *db, int64_t rowid, const struct create_args *c,
                           struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "INSERT INTO batch_lines (batch_id, line, custom_id, endpoint, body, "
                               "result, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               &st, err);
    for (size_t i = 0; rc == SB_OK && i < c->n; i++) {
        const struct sb_store_batch_line *l = &c->lines[i];
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_int64(st, 2, l->line);
        sb__sq_bind_str(st, 3, l->custom_id);
        sb__sq_bind_str(st, 4, l->endpoint);
        sb__sq_bind_str(st, 5, l->body);
        sb__sq_bind_str(st, 6, l->result);
        sqlite3_bind_int(st, 7, l->failed ? 1 : 0);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sb__sq_fail(db, err, "insert batch line");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static sb_err create_tx(sqlite3 *db, void *ud, struct sb_error *err)
{
    const struct create_args *c = ud;
    const struct sb_store_batch *b = c->b;
    int64_t completed = 0, failed = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->lines[i].result)
            c->lines[i].failed ? failed++ : completed++;
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db,
        "INSERT INTO batches (identifier, created_by, run_as, user_id, key_id, endpoint, model, "
        "concurrency, status, total, completed, failed, metadata, created_at) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, ?11, ?12, ?13)",
        &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, b->id);
    sb__sq_bind_str(st, 2, b->created_by);
    sb__sq_bind_str(st, 3, b->run_as);
    sb__sq_bind_str(st, 4, b->user_id);
    if (b->key_id > 0)
        sqlite3_bind_int64(st, 5, b->key_id);
    sb__sq_bind_str(st, 6, b->endpoint);
    sb__sq_bind_str(st, 7, b->model);
    sqlite3_bind_int64(st, 8, b->concurrency);
    sqlite3_bind_int64(st, 9, (int64_t)c->n);
    sqlite3_bind_int64(st, 10, completed);
    sqlite3_bind_int64(st, 11, failed);
    sb__sq_bind_str(st, 12, b->metadata);
    sqlite3_bind_int64(st, 13, b->created_at ? b->created_at : sb__sq_now_ms());
    rc = sb__sq_step_write(db, st, "batch", b->id, err);
    sqlite3_finalize(st);
    if (rc != SB_OK)
        return rc;
    return insert_lines(db, sqlite3_last_insert_rowid(db), c, err);
}

static sb_err create(struct sb_store *s, const struct sb_store_batch *b,
                     const struct sb_store_batch_line *lines, size_t n, struct sb_error *err)
{
    struct create_args c = {b, lines, n};
    return in_tx(sb__sq_db(s), create_tx, &c, err);
}

/* ======================================================================
 * Reading
 * ==================================================================== */

static sb_err get(struct sb_store *s, const char *id, struct sb_arena *a,
                  struct sb_store_batch *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, "SELECT " COLS " FROM batches WHERE identifier = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_batch(a, st, out);
    else if (step == SQLITE_DONE)
        rc = sb_fail(err, SB_E_NOT_FOUND, "batch '%s' not found", id);
    else
        rc = sb__sq_fail(db, err, "get batch");
    sqlite3_finalize(st);
    return rc;
}

/* Every row of st (bound by the caller) as jobs in a. */
static sb_err read_batches(sqlite3 *db, sqlite3_stmt *st, struct sb_arena *a,
                           struct sb_store_batch **out, size_t *n, struct sb_error *err)
{
    struct sb__vec v = {.size = sizeof(struct sb_store_batch)};
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        read_batch(a, st, sb__vec_push(&v));
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return step == SQLITE_DONE ? SB_OK : sb__sq_fail(db, err, "list batches");
}

static sb_err count(sqlite3 *db, const char *created_by, int64_t *total, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "SELECT count(*) FROM batches WHERE ?1 IS NULL OR created_by = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, created_by);
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    else
        rc = sb__sq_fail(db, err, "count batches");
    sqlite3_finalize(st);
    return rc;
}

static sb_err list(struct sb_store *s, const char *created_by, int64_t limit, int64_t offset,
                   struct sb_arena *a, struct sb_store_batch **out, size_t *n, int64_t *total,
                   struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_exec(db, "BEGIN", err); /* the count and the page agree */
    if (rc == SB_OK)
        rc = count(db, created_by, total, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "SELECT " COLS " FROM batches WHERE ?1 IS NULL OR created_by = ?1 "
                            "ORDER BY id DESC LIMIT ?2 OFFSET ?3",
                            &st, err);
    if (rc == SB_OK) {
        sb__sq_bind_str(st, 1, created_by);
        sqlite3_bind_int64(st, 2, limit);
        sqlite3_bind_int64(st, 3, offset);
        rc = read_batches(db, st, a, out, n, err);
    }
    sqlite3_finalize(st);
    sb__sq_rollback(db);
    return rc;
}

/* Lines of job id with line > after, in order: done ones (results) or pending ones. */
static sb_err read_lines(struct sb_store *s, const char *sql, const char *id, int64_t after,
                         int64_t limit, struct sb_arena *a, struct sb_store_batch_line **out,
                         size_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, limit);
    struct sb__vec v = {.size = sizeof(struct sb_store_batch_line)};
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct sb_store_batch_line *l = sb__vec_push(&v);
        l->line = sqlite3_column_int64(st, 0);
        l->custom_id = sb__sq_col_str(a, st, 1);
        l->endpoint = sb__sq_col_str(a, st, 2);
        l->body = sb__sq_col_str(a, st, 3);
        l->result = sb__sq_col_str(a, st, 4);
        l->failed = sqlite3_column_int(st, 5) != 0;
    }
    if (step != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "read batch lines");
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

static sb_err results(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                      struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                      struct sb_error *err)
{
    return read_lines(s,
                      "SELECT l.line, l.custom_id, l.endpoint, NULL, l.result, l.failed "
                      "FROM batch_lines l JOIN batches b ON b.id = l.batch_id "
                      "WHERE b.identifier = ?1 AND l.line > ?2 AND l.result IS NOT NULL "
                      "ORDER BY l.line LIMIT ?3",
                      id, after, limit, a, out, n, err);
}

static sb_err pending(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                      struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                      struct sb_error *err)
{
    return read_lines(s,
                      "SELECT l.line, l.custom_id, l.endpoint, l.body, NULL, 0 "
                      "FROM batch_lines l JOIN batches b ON b.id = l.batch_id "
                      "WHERE b.identifier = ?1 AND l.line > ?2 AND l.result IS NULL "
                      "ORDER BY l.line LIMIT ?3",
                      id, after, limit, a, out, n, err);
}

/* ======================================================================
 * State changes asked through /api
 * ==================================================================== */

/* One UPDATE of job id; 0 rows changed: not found, or its status did not allow it. */
static sb_err update_one(struct sb_store *s, const char *sql, const char *id, int64_t now,
                         const char *what, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, what);
    else if (sqlite3_changes(db) == 0)
        rc = SB_AGAIN;
    sqlite3_finalize(st);
    return rc;
}

/* After an UPDATE that changed nothing: 404 or 409 with the job's status. */
static sb_err refused(struct sb_store *s, const char *id, const char *what, struct sb_error *err)
{
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_store_batch b;
    sb_err rc = get(s, id, a, &b, err);
    if (rc == SB_OK)
        rc = sb_fail(err, SB_E_CONFLICT, "batch '%s' is %s: it cannot be %s", id, b.status, what);
    sb_arena_free(a);
    return rc;
}

static sb_err cancel(struct sb_store *s, const char *id, int64_t now, struct sb_error *err)
{
    sb_err rc = update_one(s,
                           "UPDATE batches SET status = 'cancelling', cancelled_at = ?2 "
                           "WHERE identifier = ?1 AND status IN ('queued', 'in_progress')",
                           id, now, "cancel batch", err);
    if (rc != SB_AGAIN)
        return rc;
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_store_batch b;
    rc = get(s, id, a, &b, err);
    bool done = rc == SB_OK && (strcmp(b.status, "cancelling") == 0 ||
                                strcmp(b.status, "cancelled") == 0);
    sb_arena_free(a);
    if (rc != SB_OK || done)
        return rc;
    return refused(s, id, "cancelled", err);
}

static sb_err remove_tx(sqlite3 *db, void *ud, struct sb_error *err)
{
    const char *id = ud;
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "DELETE FROM batch_lines WHERE batch_id = (SELECT id FROM batches "
                               "WHERE identifier = ?1 AND status IN ('completed', 'failed', "
                               "'cancelled'))",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "delete batch lines");
    sqlite3_finalize(st);
    if (rc != SB_OK)
        return rc;
    if (sb__sq_prepare(db,
                       "DELETE FROM batches WHERE identifier = ?1 AND status IN ('completed', "
                       "'failed', 'cancelled')",
                       &st, err) != SB_OK)
        return err->code;
    sb__sq_bind_str(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "delete batch");
    else if (sqlite3_changes(db) == 0)
        rc = SB_AGAIN;
    sqlite3_finalize(st);
    return rc;
}

static sb_err remove_batch(struct sb_store *s, const char *id, struct sb_error *err)
{
    sb_err rc = in_tx(sb__sq_db(s), remove_tx, (void *)id, err);
    return rc == SB_AGAIN ? refused(s, id, "deleted before it ends (cancel it first)", err) : rc;
}

/* ======================================================================
 * The runner's side
 * ==================================================================== */

struct claim_args {
    const char *runner;
    int64_t now, lease_ms;
    size_t max;
};

static sb_err claim_tx(sqlite3 *db, void *ud, struct sb_error *err)
{
    const struct claim_args *c = ud;
    sqlite3_stmt *st = NULL;
    /* Renew what we hold, then take free jobs, oldest first, up to max held. */
    sb_err rc = sb__sq_prepare(
        db,
        "UPDATE batches SET runner = ?1, lease_until = ?2 + ?3, "
        " status = CASE status WHEN 'queued' THEN 'in_progress' ELSE status END, "
        " started_at = COALESCE(started_at, ?2) "
        "WHERE id IN (SELECT id FROM batches WHERE status IN ('queued', 'in_progress', "
        " 'cancelling') AND (runner IS NULL OR runner = ?1 OR lease_until < ?2) "
        " ORDER BY (runner IS NOT ?1), id LIMIT ?4)",
        &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, c->runner);
    sqlite3_bind_int64(st, 2, c->now);
    sqlite3_bind_int64(st, 3, c->lease_ms);
    sqlite3_bind_int64(st, 4, (int64_t)c->max);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "claim batches");
    sqlite3_finalize(st);
    return rc;
}

/* Whether any job may be leased or renewed by runner: a read, so that an idle
 * gateway does not take SQLite's write lock every second for nothing. */
static sb_err any_to_claim(sqlite3 *db, const struct claim_args *c, bool *any,
                           struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "SELECT 1 FROM batches WHERE status IN ('queued', 'in_progress', "
                               "'cancelling') AND (runner IS NULL OR runner = ?1 OR "
                               "lease_until < ?2) LIMIT 1",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, c->runner);
    sqlite3_bind_int64(st, 2, c->now);
    int step = sqlite3_step(st);
    *any = step == SQLITE_ROW;
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "look for batches");
    sqlite3_finalize(st);
    return rc;
}

static sb_err claim(struct sb_store *s, const char *runner, int64_t now, int64_t lease_ms,
                    size_t max, struct sb_arena *a, struct sb_store_batch **out, size_t *n,
                    struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    struct claim_args c = {runner, now, lease_ms, max};
    sqlite3_stmt *st = NULL;
    bool any = false;
    *n = 0;
    *out = NULL;
    sb_err rc = any_to_claim(db, &c, &any, err);
    if (rc != SB_OK || !any)
        return rc;
    rc = in_tx(db, claim_tx, &c, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "SELECT " COLS " FROM batches WHERE runner = ?1 AND status IN "
                            "('in_progress', 'cancelling') ORDER BY id",
                            &st, err);
    if (rc == SB_OK) {
        sb__sq_bind_str(st, 1, runner);
        rc = read_batches(db, st, a, out, n, err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* SB_OK when runner holds job id, SB_E_CONFLICT otherwise; *rowid its row. */
static sb_err held(sqlite3 *db, const char *id, const char *runner, int64_t *rowid,
                   struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, "SELECT id FROM batches WHERE identifier = ?1 AND runner = ?2",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, runner);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *rowid = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        rc = sb_fail(err, SB_E_CONFLICT, "batch '%s': this process no longer holds its lease", id);
    else
        rc = sb__sq_fail(db, err, "batch lease");
    sqlite3_finalize(st);
    return rc;
}

struct record_args {
    const char *id, *runner;
    const struct sb_store_batch_line *lines;
    size_t n;
    int64_t in_flight;
};

static sb_err record_tx(sqlite3 *db, void *ud, struct sb_error *err)
{
    const struct record_args *r = ud;
    int64_t rowid = 0, ok = 0, bad = 0;
    sqlite3_stmt *st = NULL;
    sb_err rc = held(db, r->id, r->runner, &rowid, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "UPDATE batch_lines SET result = ?3, failed = ?4 WHERE batch_id = ?1 "
                            "AND line = ?2 AND result IS NULL",
                            &st, err);
    for (size_t i = 0; rc == SB_OK && i < r->n; i++) {
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_int64(st, 2, r->lines[i].line);
        sb__sq_bind_str(st, 3, r->lines[i].result);
        sqlite3_bind_int(st, 4, r->lines[i].failed ? 1 : 0);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sb__sq_fail(db, err, "record batch line");
        else if (sqlite3_changes(db) == 1)
            r->lines[i].failed ? bad++ : ok++;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "UPDATE batches SET completed = completed + ?2, failed = failed + ?3, "
                            "in_flight = ?4 WHERE id = ?1",
                            &st, err);
    if (rc == SB_OK) {
        sqlite3_bind_int64(st, 1, rowid);
        sqlite3_bind_int64(st, 2, ok);
        sqlite3_bind_int64(st, 3, bad);
        sqlite3_bind_int64(st, 4, r->in_flight);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sb__sq_fail(db, err, "batch counters");
    }
    sqlite3_finalize(st);
    return rc;
}

static sb_err record(struct sb_store *s, const char *id, const char *runner,
                     const struct sb_store_batch_line *lines, size_t n, int64_t in_flight,
                     struct sb_error *err)
{
    struct record_args r = {id, runner, lines, n, in_flight};
    return in_tx(sb__sq_db(s), record_tx, &r, err);
}

static sb_err finish(struct sb_store *s, const char *id, const char *runner, const char *status,
                     const char *error, int64_t now, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "UPDATE batches SET status = ?3, error = ?4, finished_at = ?5, "
                               "in_flight = 0, runner = NULL, lease_until = 0 "
                               "WHERE identifier = ?1 AND runner = ?2",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, runner);
    sb__sq_bind_str(st, 3, status);
    sb__sq_bind_str(st, 4, error);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "finish batch");
    else if (sqlite3_changes(db) == 0)
        rc = sb_fail(err, SB_E_CONFLICT, "batch '%s': this process no longer holds its lease", id);
    sqlite3_finalize(st);
    return rc;
}

static sb_err release(struct sb_store *s, const char *runner, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "UPDATE batches SET runner = NULL, lease_until = 0, in_flight = 0 WHERE runner = ?1",
        &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, runner);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "release batches");
    sqlite3_finalize(st);
    return rc;
}

const struct sb_store_batch_ops sb__sqlite_batch_ops = {
    .create = create,
    .get = get,
    .list = list,
    .cancel = cancel,
    .remove = remove_batch,
    .results = results,
    .claim = claim,
    .pending = pending,
    .record = record,
    .finish = finish,
    .release = release,
};
