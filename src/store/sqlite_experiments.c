/* SPDX-License-Identifier: MIT */
/*
 * sqlite_experiments.c - A/B experiments and feedback in SQLite (store.h).
 *
 * Experiment writes go through sb__sq_write like every registry write: one
 * transaction that also bumps registry_version, because the snapshot carries
 * the experiments and a second process notices changes by that counter.
 * Feedback is not registry data and bumps nothing.
 *
 * Ratings per variant are summed in SQL (count, sum, sum of squares): the
 * mean and its confidence interval need nothing more, so unlike latency
 * percentiles (sqlite_usage_report.c) no row is held in memory.
 *
 * Chapters: experiments · feedback · ratings.
 */
#include <string.h>

#include "core/buf.h"
#include "store/sqlite_int.h"
#include "store/store.h"

/* ======================================================================
 * experiments
 * ==================================================================== */

static const char cols[] = "SELECT identifier, name, description, status, variants, created_at,"
                           " updated_at FROM experiments";

static sb_err read_row(struct sb_arena *a, sqlite3_stmt *st, struct sb_store_experiment *x,
                       struct sb_error *err)
{
    memset(x, 0, sizeof(*x));
    x->id = sb__sq_col_str(a, st, 0);
    x->name = sb__sq_col_str(a, st, 1);
    x->description = sb__sq_col_str(a, st, 2);
    x->status = sb__sq_col_str(a, st, 3);
    x->created_at = sqlite3_column_int64(st, 5);
    x->updated_at = sqlite3_column_int64(st, 6);
    return sb__dec_variants(a, sb__sq_col_str(a, st, 4), x, err);
}

struct write_op {
    const char *id;
    const struct sb_store_experiment *x;
};

static const char insert_sql[] =
    "INSERT INTO experiments(identifier, name, description, status, variants, is_system,"
    " created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)";
static const char update_sql[] = "UPDATE experiments SET name = ?2, description = ?3, status = ?4,"
                                 " variants = ?5, updated_at = ?6 WHERE identifier = ?1";

static sb_err write_row(sqlite3 *db, const char *sql, const char *id,
                        const struct sb_store_experiment *x, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf variants;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb_buf_init(&variants, 0);
    sb__enc_variants(x, &variants);
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, x->name ? x->name : id);
    sb__sq_bind_str(st, 3, x->description);
    sb__sq_bind_str(st, 4, x->status ? x->status : "active");
    sb__sq_bind_str(st, 5, variants.p);
    sqlite3_bind_int64(st, 6, sb__sq_now_ms());
    rc = sb__sq_step_write(db, st, "experiment", id, err);
    sqlite3_finalize(st);
    sb_buf_free(&variants);
    return rc;
}

static sb_err do_create(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct write_op *op = ud;
    return write_row(db, insert_sql, op->x->id, op->x, err);
}

static sb_err do_update(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct write_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = sb__sq_find(db, "experiments", "experiment", op->id, &rowid, NULL, err);
    if (rc == SB_OK)
        rc = write_row(db, update_sql, op->id, op->x, err);
    return rc;
}

static sb_err do_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct write_op *op = ud;
    int64_t rowid = 0;
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_find(db, "experiments", "experiment", op->id, &rowid, NULL, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db, "DELETE FROM experiments WHERE id = ?1", &st, err);
    if (rc == SB_OK) {
        sqlite3_bind_int64(st, 1, rowid);
        rc = sb__sq_step_write(db, st, "experiment", op->id, err);
    }
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_experiment_create(struct sb_store *s, const struct sb_store_experiment *x,
                                struct sb_error *err)
{
    struct write_op op = {x->id, x};
    sb_err rc = sb_store_experiment_check(x, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_create, &op, err);
    return rc;
}

sb_err sb__sq_experiment_update(struct sb_store *s, const char *id,
                                const struct sb_store_experiment *x, struct sb_error *err)
{
    struct write_op op = {id, x};
    struct sb_store_experiment same = *x;
    if (x->id && (!id || strcmp(id, x->id) != 0))
        return sb_fail_field(err, SB_E_BAD_REQUEST, "id", "an id cannot be changed");
    same.id = id; /* the check wants an id; it is the row's */
    sb_err rc = sb_store_experiment_check(&same, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_update, &op, err);
    return rc;
}

sb_err sb__sq_experiment_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct write_op op = {id, NULL};
    return sb__sq_write(sb__sq_db(s), do_delete, &op, err);
}

sb_err sb__sq_experiment_get(struct sb_store *s, const char *id, struct sb_arena *a,
                             struct sb_store_experiment *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb_buf sql;
    sb_buf_init(&sql, 0);
    sb_buf_printf(&sql, "%s WHERE identifier = ?1", cols);
    sb_err rc = sb__sq_prepare(db, sql.p, &st, err);
    sb_buf_free(&sql);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = read_row(a, st, out, err);
    else if (step == SQLITE_DONE)
        rc = sb_fail(err, SB_E_NOT_FOUND, "experiment '%.128s' not found", id ? id : "");
    else
        rc = sb__sq_fail(db, err, "experiment");
    sqlite3_finalize(st);
    return rc;
}

/* Reads "cols ORDER BY identifier LIMIT ?1 OFFSET ?2" into a vector. */
static sb_err read_all(sqlite3 *db, int64_t limit, int64_t offset, struct sb_arena *a,
                       struct sb__vec *v, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf sql;
    sb_buf_init(&sql, 0);
    sb_buf_printf(&sql, "%s ORDER BY identifier LIMIT ?1 OFFSET ?2", cols);
    sb_err rc = sb__sq_prepare(db, sql.p, &st, err);
    sb_buf_free(&sql);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1);
    sqlite3_bind_int64(st, 2, offset > 0 ? offset : 0);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step == SQLITE_ROW)
            rc = read_row(a, st, sb__vec_push(v), err);
        else
            rc = sb__sq_fail(db, err, "experiments");
    }
    sqlite3_finalize(st);
    return rc;
}

static sb_err count_all(sqlite3 *db, int64_t *total, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, "SELECT COUNT(*) FROM experiments", &st, err);
    if (rc != SB_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    else
        rc = sb__sq_fail(db, err, "experiments: count");
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_experiment_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_experiment **out,
                              struct sb_store_page *page, struct sb_error *err)
{
    struct sb__vec v = {.size = sizeof(struct sb_store_experiment)};
    sqlite3 *db = sb__sq_db(s);
    memset(page, 0, sizeof(*page));
    if (f && (f->provider || f->enabled || f->capability || f->visible_to))
        return sb_fail(err, SB_E_BAD_REQUEST, "experiments: only paging filters apply");
    sb_err rc = sb__sq_exec(db, "BEGIN", err); /* the count and the page agree */
    if (rc == SB_OK)
        rc = count_all(db, &page->total, err);
    if (rc == SB_OK)
        rc = read_all(db, f ? f->limit : 0, f ? f->offset : 0, a, &v, err);
    sb__sq_rollback(db);
    page->n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

sb_err sb__sq_experiments_all(sqlite3 *db, struct sb_arena *a, struct sb_store_experiment **out,
                              size_t *n, struct sb_error *err)
{
    struct sb__vec v = {.size = sizeof(struct sb_store_experiment)};
    sb_err rc = read_all(db, 0, 0, a, &v, err);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

/* ======================================================================
 * feedback
 * ==================================================================== */

/* Whether request_id is rated already: asked inside the upsert's transaction,
 * so the answer (201 or 200) is that of the write. */
static sb_err feedback_exists(sqlite3 *db, const char *request_id, bool *exists,
                              struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, "SELECT 1 FROM feedback WHERE request_id = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, request_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW || step == SQLITE_DONE)
        *exists = step == SQLITE_ROW;
    else
        rc = sb__sq_fail(db, err, "feedback");
    sqlite3_finalize(st);
    return rc;
}

static sb_err feedback_write(sqlite3 *db, const struct sb_store_feedback *f, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "INSERT INTO feedback(request_id, rating, comment, user_id, ts)"
                               " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(request_id) DO UPDATE SET"
                               " rating = ?2, comment = ?3, user_id = ?4, ts = ?5",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, f->request_id);
    sqlite3_bind_int64(st, 2, f->rating);
    sb__sq_bind_str(st, 3, f->comment);
    sb__sq_bind_str(st, 4, f->user);
    sqlite3_bind_int64(st, 5, sb__sq_now_ms());
    rc = sb__sq_step_write(db, st, "feedback", f->request_id, err);
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_feedback_put(struct sb_store *s, const struct sb_store_feedback *f, bool *created,
                           struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    bool exists = false;
    if (!f->request_id || !*f->request_id)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "request_id", "request_id is required");
    if (f->rating < -1 || f->rating > 1)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "rating",
                             "rating must be -1 (bad), 0 (neutral) or 1 (good)");
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = feedback_exists(db, f->request_id, &exists, err);
    if (rc == SB_OK)
        rc = feedback_write(db, f, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    else
        *created = !exists;
    return rc;
}

sb_err sb__sq_request_ref(struct sb_store *s, const char *request_id, struct sb_arena *a,
                          struct sb_store_request_ref *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "SELECT request_id, user_id, route, variant FROM usage_logs"
                               " WHERE request_id = ?1 ORDER BY id LIMIT 1",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, request_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->request_id = sb__sq_col_str(a, st, 0);
        out->user = sb__sq_col_str(a, st, 1);
        out->route = sb__sq_col_str(a, st, 2);
        out->variant = sb__sq_col_str(a, st, 3);
    } else if (step == SQLITE_DONE) {
        rc = sb_fail_field(err, SB_E_NOT_FOUND, "request_id",
                           "no request '%.64s' in the usage log (rows are written in batches "
                           "within about a second of the response: retry)",
                           request_id ? request_id : "");
    } else {
        rc = sb__sq_fail(db, err, "usage_logs");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ======================================================================
 * ratings
 * ==================================================================== */

sb_err sb__sq_experiment_ratings(struct sb_store *s, const char *id, int64_t from_ms, int64_t to_ms,
                                 struct sb_arena *a, struct sb_store_rating_stats **out, size_t *n,
                                 struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_rating_stats)};
    /* A request rated once; should a request have two usage rows, its rating counts once. */
    sb_err rc = sb__sq_prepare(
        db,
        "SELECT u.variant, COUNT(*), SUM(f.rating), SUM(f.rating * f.rating) FROM feedback f"
        " JOIN (SELECT request_id, MIN(variant) AS variant FROM usage_logs"
        " WHERE id >= ?4 AND id < ?5 AND route = ?1 AND ts >= ?2 AND ts < ?3"
        " GROUP BY request_id) u"
        " ON u.request_id = f.request_id GROUP BY u.variant ORDER BY u.variant",
        &st, err);
    if (rc == SB_OK) {
        sb__sq_bind_str(st, 1, id);
        sqlite3_bind_int64(st, 2, from_ms);
        sqlite3_bind_int64(st, 3, to_ms);
        int64_t lo, hi;
        sb__sq_usage_ids(from_ms, to_ms, &lo, &hi);
        sqlite3_bind_int64(st, 4, lo);
        sqlite3_bind_int64(st, 5, hi);
    }
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "experiment ratings");
            break;
        }
        struct sb_store_rating_stats *r = sb__vec_push(&v);
        r->variant = sb__sq_col_str(a, st, 0);
        r->n = sqlite3_column_int64(st, 1);
        r->sum = sqlite3_column_double(st, 2);
        r->sumsq = sqlite3_column_double(st, 3);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}
