/* SPDX-License-Identifier: MIT */
/*
 * sqlite_int.h - what the SQLite backend's files share (store layer only).
 *
 * The backend is split by subject (sqlite.c: connection, migrations,
 * settings, system entries, loading, usage; more files add the control
 * plane's tables); they share one connection struct and the small helpers
 * below (sqlite_util.c). Nothing outside src/store/ includes this.
 */
#ifndef SB_STORE_SQLITE_INT_H
#define SB_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/store.h"

struct sb__sqlite_store {
    struct sb_store base; /* must be first */
    sqlite3 *db;          /* the connection */
    /* The usage writer's statements: prepared on first use, kept until close
     * (preparing costs more than a batch's few UPDATEs). */
    sqlite3_stmt *usage_insert;       /* one row */
    sqlite3_stmt *usage_insert_many;  /* USAGE_ROWS rows (sqlite.c) */
    sqlite3_stmt *usage_insert_paced; /* USAGE_ROWS_PACED rows, while pacing */
    sqlite3_stmt *key_touch;
    sqlite3_stmt *model_touch;
    unsigned usage_pace; /* sched_yield every this many usage rows, 0 = never */
    uint32_t usage_seq;  /* the low bits of the next usage row's id (random start) */
    const struct sb_usage **usage_order; /* a batch's rows by start (sqlite.c usage_rows) */
    size_t usage_order_cap;
};

/*
 * A usage row's id is its start time: (ts << SB__USAGE_SEQ_BITS) | seq, ts
 * clamped to [0, SB__USAGE_TS_MAX] (year 2248). A time window is then a
 * range of the table's own b-tree, and the rows need no index on ts: one
 * b-tree insert per row instead of two (migration 12, DESIGN.md 1.7). The
 * writer picks seq (sqlite.c); two rows of one millisecond that draw the
 * same seq conflict, and the later one takes the next seq.
 */
#define SB__USAGE_SEQ_BITS 20
#define SB__USAGE_TS_MAX (((int64_t)1 << (63 - SB__USAGE_SEQ_BITS)) - 2)
/* The id of a row that started at ts_ms, with seq's low SB__USAGE_SEQ_BITS bits. */
int64_t sb__sq_usage_id(int64_t ts_ms, uint32_t seq);
/* The ids of the rows with from_ms <= ts < to_ms lie in [*lo, *hi) (empty when
 * to_ms <= from_ms). Exact for ts inside the clamp; queries filter ts as well,
 * so rows clamped at either end are never miscounted. */
void sb__sq_usage_ids(int64_t from_ms, int64_t to_ms, int64_t *lo, int64_t *hi);

/* The connection of a SQLite store. */
sqlite3 *sb__sq_db(struct sb_store *s);
/* SB_E_STORE "sqlite: what: <sqlite's message>". */
sb_err sb__sq_fail(sqlite3 *db, struct sb_error *err, const char *what);
/* Runs one or more statements with no results. */
sb_err sb__sq_exec(sqlite3 *db, const char *sql, struct sb_error *err);
/* Prepares sql; *st is NULL on failure. Finalize with sqlite3_finalize. */
sb_err sb__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct sb_error *err);
/* Rolls back the open transaction, if any. */
void sb__sq_rollback(sqlite3 *db);

typedef sb_err (*sb__sq_row_fn)(void *ud, sqlite3_stmt *st, struct sb_error *err);
/* Runs sql (no parameters), calling fn(ud, row) for each row until fn fails. */
sb_err sb__sq_query(sqlite3 *db, const char *sql, sb__sq_row_fn fn, void *ud, struct sb_error *err);
/* Wall-clock Unix milliseconds. */
int64_t sb__sq_now_ms(void);
/* Binds a C string (copied by SQLite) or NULL. */
void sb__sq_bind_str(sqlite3_stmt *st, int i, const char *v);
/* Column i as an arena string, or NULL for SQL NULL. */
const char *sb__sq_col_str(struct sb_arena *a, sqlite3_stmt *st, int i);

/* A growable array on the heap, copied into the result arena at the end. */
struct sb__vec {
    void *p;
    size_t n, cap, size; /* elements used, allocated, element size */
};
/* Appends a zeroed element and returns it. */
void *sb__vec_push(struct sb__vec *v);
/* Moves the elements into a (at least one element's room) and frees the heap copy. */
void *sb__vec_to_arena(struct sb__vec *v, struct sb_arena *a);

/* ---- the registry (sqlite_registry*.c, sqlite_credentials.c) ---- */

/* Fields the API set on a system row, kept by sync_system (column api_set). */
#define SB__API_SET_STATUS 1
#define SB__API_SET_PRIORITY 2

/* Adds one to settings.registry_version; call inside the write transaction. */
sb_err sb__sq_bump_version(sqlite3 *db, struct sb_error *err);
typedef sb_err (*sb__sq_write_fn)(sqlite3 *db, void *ud, struct sb_error *err);
/* Runs fn in one BEGIN IMMEDIATE transaction that also bumps
 * registry_version; commits if both succeed, rolls back otherwise. */
sb_err sb__sq_write(sqlite3 *db, sb__sq_write_fn fn, void *ud, struct sb_error *err);
/* Steps an INSERT/UPDATE/DELETE to the end. A UNIQUE violation is
 * SB_E_CONFLICT naming field "id" and the noun ("provider 'x' already
 * exists"); anything else SB_E_STORE. Does not reset st. */
sb_err sb__sq_step_write(sqlite3 *db, sqlite3_stmt *st, const char *noun, const char *id,
                         struct sb_error *err);
/* The row id and is_system of identifier id in table (one of ours, never
 * input); SB_E_NOT_FOUND "<noun> 'id' not found" when absent. */
sb_err sb__sq_find(sqlite3 *db, const char *table, const char *noun, const char *id, int64_t *rowid,
                   bool *is_system, struct sb_error *err);
/* The whole registry for sb_store_load (sqlite_registry.c). */
sb_err sb__sq_load(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err);
/* Reads credential columns (sqlite_credentials.c's SELECT list) into c. */
void sb__sq_read_credential(struct sb_arena *a, sqlite3_stmt *st, struct sb_store_credential *c);
/* The personal credentials of every user, for sb_store_load. */
sb_err sb__sq_personal_credentials(sqlite3 *db, struct sb_arena *a,
                                   struct sb_store_credential **out, size_t *n,
                                   struct sb_error *err);

/* The backend's registry ops (same contracts as the sb_store_* wrappers). */
sb_err sb__sq_provider_create(struct sb_store *s, const struct sb_store_provider *p,
                              const struct sb_store_model *models, size_t nmodels,
                              struct sb_error *err);
sb_err sb__sq_provider_update(struct sb_store *s, const char *id, const struct sb_store_provider *p,
                              struct sb_error *err);
sb_err sb__sq_provider_delete(struct sb_store *s, const char *id, bool cascade,
                              struct sb_error *err);
sb_err sb__sq_provider_get(struct sb_store *s, const char *id, struct sb_arena *a,
                           struct sb_store_provider *out, struct sb_error *err);
sb_err sb__sq_provider_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_provider **out, struct sb_store_page *page,
                            struct sb_error *err);
sb_err sb__sq_provider_set_enabled(struct sb_store *s, const char *id, bool on,
                                   struct sb_error *err);
sb_err sb__sq_provider_set_test(struct sb_store *s, const char *id, int64_t when_ms,
                                const char *result, struct sb_error *err);
sb_err sb__sq_provider_stats(struct sb_store *s, const char *provider, int64_t from_ms,
                             int64_t to_ms, struct sb_arena *a,
                             struct sb_store_provider_stats **out, size_t *n, struct sb_error *err);
sb_err sb__sq_model_create(struct sb_store *s, const struct sb_store_model *m,
                           struct sb_error *err);
sb_err sb__sq_model_update(struct sb_store *s, const char *id, const struct sb_store_model *m,
                           struct sb_error *err);
sb_err sb__sq_model_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_model_get(struct sb_store *s, const char *id, const char *visible_to,
                        struct sb_arena *a, struct sb_store_model *out, struct sb_error *err);
sb_err sb__sq_model_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_model **out, struct sb_store_page *page,
                         struct sb_error *err);
sb_err sb__sq_model_set_enabled(struct sb_store *s, const char *id, bool on, struct sb_error *err);
sb_err sb__sq_model_set_priority(struct sb_store *s, const char *id, int64_t priority,
                                 struct sb_error *err);
sb_err sb__sq_model_reorder(struct sb_store *s, const char *const *ids, size_t n,
                            struct sb_error *err);
sb_err sb__sq_model_set_champion(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_model_set_default(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_route_create(struct sb_store *s, const struct sb_store_route *r,
                           struct sb_error *err);
sb_err sb__sq_route_update(struct sb_store *s, const char *id, const struct sb_store_route *r,
                           struct sb_error *err);
sb_err sb__sq_route_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_route_get(struct sb_store *s, const char *id, struct sb_arena *a,
                        struct sb_store_route *out, struct sb_error *err);
sb_err sb__sq_route_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_route **out, struct sb_store_page *page,
                         struct sb_error *err);
sb_err sb__sq_template_create(struct sb_store *s, const struct sb_store_template *t,
                              struct sb_error *err);
sb_err sb__sq_template_update(struct sb_store *s, const char *id, const struct sb_store_template *t,
                              struct sb_error *err);
sb_err sb__sq_template_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_template_get(struct sb_store *s, const char *id, const char *visible_to,
                           struct sb_arena *a, struct sb_store_template *out, struct sb_error *err);
sb_err sb__sq_template_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_template **out, struct sb_store_page *page,
                            struct sb_error *err);
sb_err sb__sq_credential_put(struct sb_store *s, const struct sb_store_credential *c,
                             struct sb_error *err);
sb_err sb__sq_credential_delete(struct sb_store *s, const char *provider, const char *user,
                                const char *label, struct sb_error *err);
sb_err sb__sq_credential_get(struct sb_store *s, const char *provider, const char *user,
                             const char *label, struct sb_arena *a, struct sb_store_credential *out,
                             struct sb_error *err);
sb_err sb__sq_dead_key_put(struct sb_store *s, const struct sb_store_dead_key *d,
                           struct sb_error *err);
sb_err sb__sq_dead_key_delete(struct sb_store *s, const char *provider, const char *label,
                              struct sb_error *err);
/* Loading (sb__sq_load): the system credentials with a label, and the dead keys. */
sb_err sb__sq_pool_credentials(sqlite3 *db, struct sb_arena *a, struct sb_store_credential **out,
                               size_t *n, struct sb_error *err);
sb_err sb__sq_dead_keys(sqlite3 *db, struct sb_arena *a, struct sb_store_dead_key **out, size_t *n,
                        struct sb_error *err);
sb_err sb__sq_credential_list(struct sb_store *s, const char *user, struct sb_arena *a,
                              struct sb_store_credential **out, size_t *n, struct sb_error *err);
sb_err sb__sq_rekey(struct sb_store *s, sb_store_rekey_fn fn, void *ud, size_t *n,
                    struct sb_error *err);
sb_err sb__sq_registry_version(struct sb_store *s, int64_t *out, struct sb_error *err);
/* Usage analytics (sqlite_usage_report.c). */
sb_err sb__sq_usage_report(struct sb_store *s, const struct sb_store_usage_query *q,
                           struct sb_arena *a, struct sb_store_usage_report *out,
                           struct sb_error *err);

/* A/B experiments and feedback (sqlite_experiments.c). */
sb_err sb__sq_experiment_create(struct sb_store *s, const struct sb_store_experiment *x,
                                struct sb_error *err);
sb_err sb__sq_experiment_update(struct sb_store *s, const char *id,
                                const struct sb_store_experiment *x, struct sb_error *err);
sb_err sb__sq_experiment_delete(struct sb_store *s, const char *id, struct sb_error *err);
sb_err sb__sq_experiment_get(struct sb_store *s, const char *id, struct sb_arena *a,
                             struct sb_store_experiment *out, struct sb_error *err);
sb_err sb__sq_experiment_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_experiment **out,
                              struct sb_store_page *page, struct sb_error *err);
/* Every experiment, for sb_store_load (inside its read transaction). */
sb_err sb__sq_experiments_all(sqlite3 *db, struct sb_arena *a, struct sb_store_experiment **out,
                              size_t *n, struct sb_error *err);
sb_err sb__sq_feedback_put(struct sb_store *s, const struct sb_store_feedback *f, bool *created,
                           struct sb_error *err);
sb_err sb__sq_request_ref(struct sb_store *s, const char *request_id, struct sb_arena *a,
                          struct sb_store_request_ref *out, struct sb_error *err);
sb_err sb__sq_experiment_ratings(struct sb_store *s, const char *id, int64_t from_ms, int64_t to_ms,
                                 struct sb_arena *a, struct sb_store_rating_stats **out, size_t *n,
                                 struct sb_error *err);

/* ---- the usage journal's replay (sqlite.c, sqlite_identity.c) ---- */

struct sb_audit;
/* Inserts audit rows[0..n) inside the caller's open transaction; a record
 * the schema refuses is SB_E_BAD_REQUEST (sqlite_identity.c). */
sb_err sb__sq_audit_rows(sqlite3 *db, const struct sb_audit *rows, size_t n, struct sb_error *err);

#endif
