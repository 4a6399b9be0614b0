/* SPDX-License-Identifier: MIT */
/*
 * sqlite.c - the SQLite store backend.
 *
 * One sqlite3 connection per struct sb_store, used by one thread at a time
 * (the usage writer opens its own; WAL lets it write while others read).
 * Every connection runs with WAL, a busy timeout and foreign keys on. The
 * schema comes from migrations.c; this file only expands its two
 * placeholders. Secrets never reach this file: providers carry credential
 * references, and encrypted credentials are opaque base64 text.
 *
 * Chapters: connection · migrations · settings · system entries · usage.
 * Loading and the API's registry operations are in sqlite_registry*.c and
 * sqlite_credentials.c.
 */
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "store/identity.h"
#include "store/batch.h"
#include "store/quota.h"
#include "store/sqlite_int.h"
#include "store/store.h"
#include "store/usage.h"

#define BUSY_TIMEOUT_MS 5000

static const struct sb_store_ops sqlite_ops;

/* ---- connection ---- */

/* Creates the file with mode 0600 before SQLite does (it would use 0644):
 * the database holds hashed tokens and encrypted credentials. SQLite gives
 * the -wal and -shm files the same mode. O_EXCL matters: closing any fd of
 * a file drops every POSIX lock this process holds on it, so reopening an
 * existing database here would silently release the locks of our other
 * connection (another process could then checkpoint and delete the WAL
 * under it, losing committed rows). */
static void precreate(const char *path)
{
    if (strcmp(path, ":memory:") == 0)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

sb_err sb__sqlite_open(const char *path, struct sb_store **out, struct sb_error *err)
{
    static const char pragmas[] = "PRAGMA journal_mode=WAL;"
                                  "PRAGMA synchronous=NORMAL;"
                                  "PRAGMA foreign_keys=ON;"
                                  /* 512 KiB page cache, not 2 MiB: the usage
                                   * writer only appends, the registry is read
                                   * once per reload. */
                                  "PRAGMA cache_size=-512;";
    sqlite3 *db = NULL;
    sb_err rc = SB_OK;
    *out = NULL;
    if (strncmp(path, "//", 2) == 0)
        path += 2; /* sqlite:///abs/path */
    if (!*path)
        return sb_fail(err, SB_E_CONFIG, "database: sqlite: needs a file path (sqlite:PATH)");
    precreate(path);
    /* NOMUTEX: a store handle is used by one thread at a time (store.h), so
     * SQLite's own per-call locking is pure cost (~13% of the usage writer). */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        rc = sb_fail(err, SB_E_STORE, "sqlite: open %s: %s", path,
                     db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    rc = sb__sq_exec(db, pragmas, err);
    if (rc != SB_OK)
        goto out;
    struct sb__sqlite_store *s = sb_xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    sqlite3_randomness(sizeof(s->usage_seq), &s->usage_seq);
    s->db = db;
    db = NULL;
    *out = &s->base;
out:
    sqlite3_close(db);
    return rc;
}

static void sqlite_close(struct sb_store *base)
{
    struct sb__sqlite_store *s = (struct sb__sqlite_store *)base;
    sqlite3_finalize(s->usage_insert);
    sqlite3_finalize(s->usage_insert_many);
    sqlite3_finalize(s->usage_insert_paced);
    sqlite3_finalize(s->key_touch);
    sqlite3_finalize(s->model_touch);
    sqlite3_close(s->db);
    free(s->usage_order);
    free(s);
}

static sb_err sqlite_ping(struct sb_store *s, struct sb_error *err)
{
    return sb__sq_exec(sb__sq_db(s), "SELECT 1", err);
}

/* ---- migrations ---- */

/* Expands {id} and {json} for SQLite into out. */
static void expand(const char *sql, struct sb_buf *out)
{
    static const struct {
        const char *from, *to;
    } subs[] = {
        {"{id}", "INTEGER PRIMARY KEY"}, /* rowid; AUTOINCREMENT costs a write per insert */
        {"{json}", "TEXT"},
    };
    sb_buf_reset(out);
    while (*sql) {
        size_t i = 0;
        for (; i < sizeof(subs) / sizeof(subs[0]); i++)
            if (strncmp(sql, subs[i].from, strlen(subs[i].from)) == 0)
                break;
        if (i < sizeof(subs) / sizeof(subs[0])) {
            sb_buf_append_cstr(out, subs[i].to);
            sql += strlen(subs[i].from);
        } else {
            sb_buf_append_char(out, *sql++);
        }
    }
}

static sb_err schema_version(sqlite3 *db, int *version, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc =
        sb__sq_prepare(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &st, err);
    if (rc != SB_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        rc = sb__sq_fail(db, err, "schema version");
    sqlite3_finalize(st);
    return rc;
}

static sb_err record_migration(sqlite3 *db, const struct sb__migration *m, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)", &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int(st, 1, m->version);
    sb__sq_bind_str(st, 2, m->name);
    sqlite3_bind_int64(st, 3, sb__sq_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "record migration");
    sqlite3_finalize(st);
    return rc;
}

/* Applies m unless it already is; the version check runs inside the write
 * transaction so two processes starting at once cannot both apply it. */
static sb_err apply_one(sqlite3 *db, const struct sb__migration *m, struct sb_buf *sql,
                        struct sb_error *err)
{
    int have = 0;
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = schema_version(db, &have, err);
    if (rc == SB_OK && have < m->version) {
        expand(m->sql, sql);
        rc = sb__sq_exec(db, sql->p, err);
        if (rc == SB_OK)
            rc = record_migration(db, m, err);
        if (rc == SB_OK)
            sb_info("msg=\"applied migration\" version=%d name=\"%s\"", m->version, m->name);
    }
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

static sb_err sqlite_migrate(struct sb_store *s, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    struct sb_buf sql;
    int have = 0;
    sb_buf_init(&sql, 0);
    sb_err rc =
        sb__sq_exec(db,
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                    err);
    if (rc == SB_OK)
        rc = schema_version(db, &have, err);
    if (rc == SB_OK && have > sb__migrations[sb__nmigrations - 1].version)
        rc = sb_fail(err, SB_E_STORE,
                     "database schema version %d is newer than this build knows (%d); "
                     "upgrade switchboard",
                     have, sb__migrations[sb__nmigrations - 1].version);
    for (size_t i = 0; rc == SB_OK && i < sb__nmigrations; i++)
        rc = apply_one(db, &sb__migrations[i], &sql, err);
    sb_buf_free(&sql);
    return rc;
}

/* ---- settings ---- */

static sb_err sqlite_setting_get(struct sb_store *s, const char *key, char **value,
                                 struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    *value = NULL;
    sb_err rc = sb__sq_prepare(db, "SELECT value FROM settings WHERE key = ?", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *value = sb_xstrndup((const char *)sqlite3_column_text(st, 0),
                             (size_t)sqlite3_column_bytes(st, 0));
    else if (step != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "setting get");
    sqlite3_finalize(st);
    return rc;
}

static sb_err sqlite_setting_set(struct sb_store *s, const char *key, const char *value,
                                 struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "INSERT INTO settings(key, value, updated_at) VALUES(?, ?, ?)"
                               " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                               " updated_at = excluded.updated_at",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, key);
    sb__sq_bind_str(st, 2, value);
    sqlite3_bind_int64(st, 3, sb__sq_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "setting set");
    sqlite3_finalize(st);
    return rc;
}

/* ---- system entries ---- */

/*
 * Each upsert updates only rows with is_system = 1: a row the API created
 * under the same identifier keeps winning, and sqlite3_changes() == 0 tells
 * us so (we warn). The config file is authoritative for system entries,
 * except for the fields the API has set on them (api_set bits, sqlite_int.h):
 * an administrator who disabled a system model or moved it in the fallback
 * order through the API keeps that choice across restarts. is_champion and
 * is_default are not in the file, so the upserts never touch them.
 */
static const char provider_upsert[] =
    "INSERT INTO providers(identifier, name, type, base_url, auth_method, auth_config, options,"
    " rate_limits, status, is_system, created_at, updated_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?10)"
    " ON CONFLICT(identifier) DO UPDATE SET name = excluded.name, type = excluded.type,"
    " base_url = excluded.base_url, auth_method = excluded.auth_method,"
    " auth_config = excluded.auth_config, options = excluded.options,"
    " rate_limits = excluded.rate_limits,"
    " status = CASE WHEN (providers.api_set & 1) <> 0 THEN providers.status"
    " ELSE excluded.status END,"
    " updated_at = excluded.updated_at WHERE providers.is_system = 1";

static const char model_upsert[] =
    "INSERT INTO models(provider_id, identifier, upstream_model, name, context_length,"
    " max_output_tokens, capabilities, pricing, status, fallback_priority, is_system,"
    " created_at, updated_at, options)"
    " VALUES((SELECT id FROM providers WHERE identifier = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, 1, ?11, ?11, ?12)"
    " ON CONFLICT(identifier) DO UPDATE SET provider_id = excluded.provider_id,"
    " upstream_model = excluded.upstream_model, name = excluded.name,"
    " context_length = excluded.context_length, max_output_tokens = excluded.max_output_tokens,"
    " capabilities = excluded.capabilities, pricing = excluded.pricing,"
    " options = excluded.options,"
    " status = CASE WHEN (models.api_set & 1) <> 0 THEN models.status ELSE excluded.status END,"
    " fallback_priority = CASE WHEN (models.api_set & 2) <> 0 THEN models.fallback_priority"
    " ELSE excluded.fallback_priority END,"
    " updated_at = excluded.updated_at WHERE models.is_system = 1";

static const char route_upsert[] =
    "INSERT INTO routes(identifier, strategy, targets, weights, is_system, created_at, updated_at,"
    " options) VALUES(?1, ?2, ?3, ?5, 1, ?4, ?4, ?6)"
    " ON CONFLICT(identifier) DO UPDATE SET strategy = excluded.strategy,"
    " targets = excluded.targets, weights = excluded.weights, updated_at = excluded.updated_at,"
    " options = excluded.options WHERE routes.is_system = 1";

/* Steps a bound upsert; warns when an API-created row kept the identifier. */
static sb_err step_upsert(sqlite3 *db, sqlite3_stmt *st, const char *table, const char *id,
                          struct sb_error *err)
{
    sb_err rc = SB_OK;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb_fail(err, SB_E_STORE, "sqlite: %s '%s': %s", table, id, sqlite3_errmsg(db));
    else if (sqlite3_changes(db) == 0)
        sb_warn("msg=\"config entry ignored: an API-created entry has this id\" table=%s id=%s",
                table, id);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static sb_err upsert_providers(sqlite3 *db, const struct sb_store_entities *e, int64_t now,
                               struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf auth, opts, limits;
    sb_buf_init(&auth, 0);
    sb_buf_init(&opts, 0);
    sb_buf_init(&limits, 0);
    sb_err rc = sb__sq_prepare(db, provider_upsert, &st, err);
    for (size_t i = 0; rc == SB_OK && i < e->nproviders; i++) {
        const struct sb_store_provider *p = &e->providers[i];
        sb__enc_auth(p, &auth);
        sb__enc_options(p, &opts);
        sb__enc_rate_limits(p, &limits);
        sb__sq_bind_str(st, 1, p->id);
        sb__sq_bind_str(st, 2, p->name ? p->name : p->id);
        sb__sq_bind_str(st, 3, p->type);
        sb__sq_bind_str(st, 4, p->base_url);
        sb__sq_bind_str(st, 5, p->auth_method ? p->auth_method : "bearer");
        sb__sq_bind_str(st, 6, auth.p);
        sb__sq_bind_str(st, 7, opts.p);
        sb__sq_bind_str(st, 8, limits.p);
        sb__sq_bind_str(st, 9, p->enabled ? "active" : "inactive");
        sqlite3_bind_int64(st, 10, now);
        rc = step_upsert(db, st, "providers", p->id, err);
    }
    sqlite3_finalize(st);
    sb_buf_free(&auth);
    sb_buf_free(&opts);
    sb_buf_free(&limits);
    return rc;
}

static sb_err upsert_models(sqlite3 *db, const struct sb_store_entities *e, int64_t now,
                            struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf caps, pricing, options;
    sb_buf_init(&caps, 0);
    sb_buf_init(&pricing, 0);
    sb_buf_init(&options, 0);
    sb_err rc = sb__sq_prepare(db, model_upsert, &st, err);
    for (size_t i = 0; rc == SB_OK && i < e->nmodels; i++) {
        const struct sb_store_model *m = &e->models[i];
        sb__enc_caps(m, &caps);
        sb__enc_pricing(m, &pricing);
        sb__sq_bind_str(st, 1, m->provider);
        sb__sq_bind_str(st, 2, m->id);
        sb__sq_bind_str(st, 3, m->upstream_model ? m->upstream_model : m->id);
        sb__sq_bind_str(st, 4, m->name ? m->name : m->id);
        sqlite3_bind_int64(st, 5, m->context_length);
        sqlite3_bind_int64(st, 6, m->max_output_tokens);
        sb__sq_bind_str(st, 7, caps.p);
        sb__sq_bind_str(st, 8, pricing.p);
        sb__sq_bind_str(st, 9, m->enabled ? "active" : "inactive");
        sqlite3_bind_int64(st, 10, m->fallback_priority);
        sqlite3_bind_int64(st, 11, now);
        sb__enc_model_options(m, &options);
        sb__sq_bind_str(st, 12, options.p);
        rc = step_upsert(db, st, "models", m->id, err);
    }
    sqlite3_finalize(st);
    sb_buf_free(&caps);
    sb_buf_free(&pricing);
    sb_buf_free(&options);
    return rc;
}

static sb_err upsert_routes(sqlite3 *db, const struct sb_store_entities *e, int64_t now,
                            struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf targets, weights, options;
    sb_buf_init(&targets, 0);
    sb_buf_init(&weights, 0);
    sb_buf_init(&options, 0);
    sb_err rc = sb__sq_prepare(db, route_upsert, &st, err);
    for (size_t i = 0; rc == SB_OK && i < e->nroutes; i++) {
        const struct sb_store_route *r = &e->routes[i];
        sb__enc_targets(r, &targets);
        sb__enc_weights(r, &weights);
        sb__sq_bind_str(st, 1, r->id);
        sb__sq_bind_str(st, 2, r->strategy ? r->strategy : "priority");
        sb__sq_bind_str(st, 3, targets.p);
        sqlite3_bind_int64(st, 4, now);
        sb__sq_bind_str(st, 5, r->weights ? weights.p : NULL);
        sb__enc_route_options(r, &options);
        sb__sq_bind_str(st, 6, options.p);
        rc = step_upsert(db, st, "routes", r->id, err);
    }
    sqlite3_finalize(st);
    sb_buf_free(&targets);
    sb_buf_free(&weights);
    sb_buf_free(&options);
    return rc;
}

/* The identifiers of one kind of entity. Every entity struct starts with
 * `const char *id`, so one deletion routine serves all three. */
struct id_list {
    const void *base; /* first element */
    size_t n, stride; /* count and element size */
};

static bool id_listed(const struct id_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *have = *(const char *const *)((const char *)l->base + i * l->stride);
        if (strcmp(have, id) == 0)
            return true;
    }
    return false;
}

struct stale {
    const struct id_list *keep; /* ids the config still has */
    char **ids;                 /* owned copies of the ids to delete */
    size_t n, cap;
};

static sb_err collect_stale(void *ud, sqlite3_stmt *st, struct sb_error *err)
{
    struct stale *s = ud;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    (void)err;
    if (!id || id_listed(s->keep, id))
        return SB_OK;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->ids = sb_xrealloc(s->ids, s->cap * sizeof(*s->ids));
    }
    s->ids[s->n++] = sb_xstrdup(id);
    return SB_OK;
}

/* Deletes the system rows of table whose identifier is not in keep. The ids
 * are collected first: deleting from a table while a SELECT on it is still
 * stepping gives undefined results in SQLite. table is ours, never input. */
static sb_err delete_stale(sqlite3 *db, const char *table, const struct id_list *keep,
                           struct sb_error *err)
{
    char sql[160];
    sqlite3_stmt *del = NULL;
    struct stale s = {.keep = keep};
    snprintf(sql, sizeof(sql), "SELECT identifier FROM %s WHERE is_system = 1", table);
    sb_err rc = sb__sq_query(db, sql, collect_stale, &s, err);
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE identifier = ? AND is_system = 1", table);
    if (rc == SB_OK && s.n)
        rc = sb__sq_prepare(db, sql, &del, err);
    for (size_t i = 0; rc == SB_OK && i < s.n; i++) {
        sb_info("msg=\"removed system entry no longer in the config\" table=%s id=%s", table,
                s.ids[i]);
        sb__sq_bind_str(del, 1, s.ids[i]);
        if (sqlite3_step(del) != SQLITE_DONE)
            rc = sb__sq_fail(db, err, "delete stale entry");
        sqlite3_reset(del);
    }
    sqlite3_finalize(del);
    for (size_t i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
    return rc;
}

static sb_err sqlite_sync_system(struct sb_store *s, const struct sb_store_entities *e,
                                 struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    int64_t now = sb__sq_now_ms();
    struct id_list providers = {e->providers, e->nproviders, sizeof(*e->providers)};
    struct id_list models = {e->models, e->nmodels, sizeof(*e->models)};
    struct id_list routes = {e->routes, e->nroutes, sizeof(*e->routes)};
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = upsert_providers(db, e, now, err);
    if (rc == SB_OK)
        rc = upsert_models(db, e, now, err);
    if (rc == SB_OK)
        rc = upsert_routes(db, e, now, err);
    /* Children first; a removed provider's remaining models go by cascade. */
    if (rc == SB_OK)
        rc = delete_stale(db, "routes", &routes, err);
    if (rc == SB_OK)
        rc = delete_stale(db, "models", &models, err);
    if (rc == SB_OK)
        rc = delete_stale(db, "providers", &providers, err);
    if (rc == SB_OK)
        rc = sb__sq_bump_version(db, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

/* ---- usage ---- */

/* Rows per multi-row INSERT. A statement per row pays the step's start,
 * the cursor's open and close, the reset and the statement's end for every
 * row; several rows per step share them: the writer's CPU per row 2.59-3.21
 * us with one row per statement, 2.15-2.39 with 8 (bench/usage_bench, four
 * alternating pairs on a loaded machine; DESIGN.md 1.7), and 32 rows take
 * 4 % of the writer's instructions off 8 (callgrind). While pacing, the statement holds
 * USAGE_ROWS_PACED rows, the pacing's step (usage.c PACE_ROWS), so a paced
 * insert yields between statements, never inside a long one. */
#define USAGE_ROWS 32
#define USAGE_ROWS_PACED 8
#define USAGE_COLS 19
/* Tries at one row before the writer gives up on it: a conflict needs
 * another row of the same millisecond that drew the same seq (usage_id). */
#define USAGE_ID_TRIES 16

static const char usage_insert_head[] =
    "INSERT INTO usage_logs(id, request_id, ts, user_id, key_id, route, provider, model, variant,"
    " status, http_status, prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms,"
    " streamed, fallbacks, error_code) VALUES";

/* Prepares the INSERT of rows rows (1, USAGE_ROWS_PACED or USAGE_ROWS) into *st. */
static sb_err prepare_usage_insert(sqlite3 *db, size_t rows, sqlite3_stmt **st,
                                   struct sb_error *err)
{
    struct sb_buf sql;
    sb_buf_init(&sql, 0);
    sb_buf_append_cstr(&sql, usage_insert_head);
    for (size_t r = 0; r < rows; r++) {
        sb_buf_append_cstr(&sql, r ? ",(?" : "(?");
        for (int c = 1; c < USAGE_COLS; c++)
            sb_buf_append_cstr(&sql, ",?");
        sb_buf_append_char(&sql, ')');
    }
    sb_buf_append_char(&sql, '\0');
    sb_err rc = sb__sq_prepare(db, (const char *)sql.p, st, err);
    sb_buf_free(&sql);
    return rc;
}

/* A fixed-size field of struct sb_usage: NULL when empty, never read past its size. */
static void bind_field(sqlite3_stmt *st, int i, const char *f, size_t size, bool empty_is_null)
{
    size_t n = strnlen(f, size);
    if (n == 0 && empty_is_null)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, f, (int)n, SQLITE_STATIC); /* row outlives the step */
}

#define BIND_FIELD(st, i, u, f, null) bind_field(st, i, (u)->f, sizeof((u)->f), null)

/* Binds u, with the next id of its millisecond, as the row whose first
 * parameter is o + 1. Within one writer, a seq comes back to a millisecond
 * only after 2^20 rows; another process's writer (a --takeover overlap)
 * starts at its own random seq. */
static void bind_usage(struct sb__sqlite_store *s, sqlite3_stmt *st, int o,
                       const struct sb_usage *u)
{
    sqlite3_bind_int64(st, o + 1, sb__sq_usage_id(u->ts_ms, s->usage_seq++));
    BIND_FIELD(st, o + 2, u, request_id, false);
    sqlite3_bind_int64(st, o + 3, u->ts_ms);
    BIND_FIELD(st, o + 4, u, user_id, true);
    BIND_FIELD(st, o + 5, u, key_id, true);
    BIND_FIELD(st, o + 6, u, route, true);
    BIND_FIELD(st, o + 7, u, provider, true);
    BIND_FIELD(st, o + 8, u, model, true);
    BIND_FIELD(st, o + 9, u, variant, true);
    BIND_FIELD(st, o + 10, u, status, false);
    sqlite3_bind_int(st, o + 11, u->http_status);
    sqlite3_bind_int64(st, o + 12, u->prompt_tokens);
    sqlite3_bind_int64(st, o + 13, u->completion_tokens);
    sqlite3_bind_double(st, o + 14, u->cost_usd);
    sqlite3_bind_double(st, o + 15, u->latency_ms);
    sqlite3_bind_double(st, o + 16, u->ttft_ms);
    sqlite3_bind_int(st, o + 17, u->streamed ? 1 : 0);
    sqlite3_bind_int(st, o + 18, u->fallbacks);
    BIND_FIELD(st, o + 19, u, error_code, true);
}

/* Inserts rows[0..k) with one step of st. SQLITE_CONSTRAINT_PRIMARYKEY when
 * a row's id was taken: the statement's rows are all backed out (SQLite's
 * default ABORT), the transaction goes on. */
static int usage_step(struct sb__sqlite_store *s, sqlite3_stmt *st,
                      const struct sb_usage *const *rows, size_t k)
{
    for (size_t j = 0; j < k; j++)
        bind_usage(s, st, (int)j * USAGE_COLS, rows[j]);
    int rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(s->db);
    sqlite3_reset(st);
    return rc;
}

/* Inserts rows[0..k) one by one, each row taking the next seq until its id is free. */
static sb_err usage_rows_single(struct sb__sqlite_store *s, const struct sb_usage *const *rows,
                                size_t k, struct sb_error *err)
{
    for (size_t j = 0; j < k; j++) {
        int rc = SQLITE_CONSTRAINT_PRIMARYKEY;
        for (int t = 0; rc == SQLITE_CONSTRAINT_PRIMARYKEY && t < USAGE_ID_TRIES; t++)
            rc = usage_step(s, s->usage_insert, rows + j, 1);
        if (rc != SQLITE_OK)
            return sb__sq_fail(s->db, err, "insert usage");
    }
    return SB_OK;
}

static int by_start(const void *a, const void *b)
{
    int64_t x = (*(const struct sb_usage *const *)a)->ts_ms;
    int64_t y = (*(const struct sb_usage *const *)b)->ts_ms;
    return (x > y) - (x < y);
}

/* Inserts rows[0..n) inside the caller's transaction with the kept
 * statements: USAGE_ROWS at a time (USAGE_ROWS_PACED while pacing), then
 * USAGE_ROWS_PACED, the rest (and a group with a taken id) one by one. In order of start, so ids
 * rise through the transaction: rows come in order of their end, and an insert below the table's
 * last id costs a descent of the b-tree where one above it appends. */
static sb_err usage_rows(struct sb__sqlite_store *s, const struct sb_usage *rows, size_t n,
                         struct sb_error *err)
{
    sb_err rc = SB_OK;
    if (n == 0)
        return SB_OK; /* a round of audit records or raises only */
    if (!s->usage_insert)
        rc = prepare_usage_insert(s->db, 1, &s->usage_insert, err);
    if (rc == SB_OK && !s->usage_insert_paced)
        rc = prepare_usage_insert(s->db, USAGE_ROWS_PACED, &s->usage_insert_paced, err);
    if (rc == SB_OK && !s->usage_pace && !s->usage_insert_many)
        rc = prepare_usage_insert(s->db, USAGE_ROWS, &s->usage_insert_many, err);
    if (n > s->usage_order_cap) {
        s->usage_order_cap = n;
        s->usage_order = sb_xrealloc(s->usage_order, n * sizeof(*s->usage_order));
    }
    const struct sb_usage **order = s->usage_order;
    for (size_t i = 0; i < n; i++)
        order[i] = &rows[i];
    qsort(order, n, sizeof(*order), by_start);
    for (size_t i = 0; rc == SB_OK && i < n;) {
        size_t k = !s->usage_pace && n - i >= USAGE_ROWS ? USAGE_ROWS
                   : n - i >= USAGE_ROWS_PACED           ? USAGE_ROWS_PACED
                                                         : 1;
        sqlite3_stmt *st = k == USAGE_ROWS ? s->usage_insert_many : s->usage_insert_paced;
        int step = k > 1 ? usage_step(s, st, order + i, k) : SQLITE_OK;
        if (k == 1 || step == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = usage_rows_single(s, order + i, k, err);
        else if (step != SQLITE_OK)
            rc = sb__sq_fail(s->db, err, "insert usage");
        i += k;
        if (s->usage_pace && i % s->usage_pace < k && i < n)
            sched_yield(); /* inside the transaction: readers go on (WAL) */
    }
    return rc;
}

static void sqlite_usage_pace(struct sb_store *base, unsigned every)
{
    ((struct sb__sqlite_store *)base)->usage_pace = every;
}

static sb_err sqlite_insert_usage(struct sb_store *base, const struct sb_usage *rows, size_t n,
                                  struct sb_error *err)
{
    struct sb__sqlite_store *s = (struct sb__sqlite_store *)base;
    sb_err rc = sb__sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = usage_rows(s, rows, n, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(s->db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(s->db);
    return rc;
}

typedef void (*bind_fn)(sqlite3_stmt *st, size_t i, const void *items);

/* Runs *st (prepared from sql on first use and kept) once per item i in
 * [0, n), bind(st, i, items) binding it. */
static sb_err step_each(struct sb__sqlite_store *s, sqlite3_stmt **st, const char *sql, size_t n,
                        bind_fn bind, const void *items, struct sb_error *err)
{
    sb_err rc = SB_OK;
    if (n && !*st)
        rc = sb__sq_prepare(s->db, sql, st, err);
    for (size_t i = 0; rc == SB_OK && i < n; i++) {
        bind(*st, i, items);
        if (sqlite3_step(*st) != SQLITE_DONE)
            rc = sb__sq_fail(s->db, err, "usage transaction");
        sqlite3_reset(*st);
    }
    return rc;
}

static void bind_key_use(sqlite3_stmt *st, size_t i, const void *items)
{
    const struct sb_store_key_use *u = (const struct sb_store_key_use *)items + i;
    sqlite3_bind_int64(st, 1, u->ts_ms);
    sqlite3_bind_int64(st, 2, u->key_id);
}

static void bind_model_use(sqlite3_stmt *st, size_t i, const void *items)
{
    const struct sb_store_model_use *u = (const struct sb_store_model_use *)items + i;
    sqlite3_bind_int64(st, 1, u->ts_ms);
    sqlite3_bind_text(st, 2, u->model, -1, SQLITE_STATIC); /* outlives the step */
}

/* last_used_at only rises; models' raise is usage, not configuration, so
 * registry_version stays (a bump would make every process rebuild its
 * snapshot per usage batch). */
static sb_err touch_uses(struct sb__sqlite_store *s, const struct sb_store_usage_tx *tx,
                         struct sb_error *err)
{
    sb_err rc = step_each(s, &s->key_touch,
                          "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2"
                          " AND (last_used_at IS NULL OR last_used_at < ?1)",
                          tx->nkeys, bind_key_use, tx->keys, err);
    if (rc == SB_OK)
        rc = step_each(s, &s->model_touch,
                       "UPDATE models SET last_used_at = ?1 WHERE identifier = ?2"
                       " AND (last_used_at IS NULL OR last_used_at < ?1)",
                       tx->nmodels, bind_model_use, tx->models, err);
    return rc;
}

/* Rows, audit records, last-use raises and the journal's replay mark in one
 * transaction: the mark commits if and only if the rows do (usage.c relies
 * on it), and the raises cost no commit of their own (they had been two
 * more per round: most of the writer's CPU per row, DESIGN.md 1.7). */
static sb_err sqlite_write_usage(struct sb_store *base, const struct sb_store_usage_tx *tx,
                                 struct sb_error *err)
{
    struct sb__sqlite_store *s = (struct sb__sqlite_store *)base;
    sb_err rc = sb__sq_exec(s->db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = usage_rows(s, tx->rows, tx->n, err);
    if (rc == SB_OK)
        rc = sb__sq_audit_rows(s->db, tx->audits, tx->na, err);
    if (rc == SB_OK)
        rc = touch_uses(s, tx, err);
    if (rc == SB_OK && tx->mark_key)
        rc = sqlite_setting_set(base, tx->mark_key, tx->mark_value, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(s->db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(s->db);
    return rc;
}

static const struct sb_store_ops sqlite_ops = {
    .name = "sqlite",
    .migrate = sqlite_migrate,
    .sync_system = sqlite_sync_system,
    .load = sb__sq_load,
    .insert_usage = sqlite_insert_usage,
    .usage_pace = sqlite_usage_pace,
    .write_usage = sqlite_write_usage,
    .setting_get = sqlite_setting_get,
    .setting_set = sqlite_setting_set,
    .ping = sqlite_ping,
    .close = sqlite_close,
    .provider_create = sb__sq_provider_create,
    .provider_update = sb__sq_provider_update,
    .provider_delete = sb__sq_provider_delete,
    .provider_get = sb__sq_provider_get,
    .provider_list = sb__sq_provider_list,
    .provider_set_enabled = sb__sq_provider_set_enabled,
    .provider_set_test = sb__sq_provider_set_test,
    .provider_stats = sb__sq_provider_stats,
    .model_create = sb__sq_model_create,
    .model_update = sb__sq_model_update,
    .model_delete = sb__sq_model_delete,
    .model_get = sb__sq_model_get,
    .model_list = sb__sq_model_list,
    .model_set_enabled = sb__sq_model_set_enabled,
    .model_set_priority = sb__sq_model_set_priority,
    .model_reorder = sb__sq_model_reorder,
    .model_set_champion = sb__sq_model_set_champion,
    .model_set_default = sb__sq_model_set_default,
    .route_create = sb__sq_route_create,
    .route_update = sb__sq_route_update,
    .route_delete = sb__sq_route_delete,
    .route_get = sb__sq_route_get,
    .route_list = sb__sq_route_list,
    .template_create = sb__sq_template_create,
    .template_update = sb__sq_template_update,
    .template_delete = sb__sq_template_delete,
    .template_get = sb__sq_template_get,
    .template_list = sb__sq_template_list,
    .credential_put = sb__sq_credential_put,
    .credential_delete = sb__sq_credential_delete,
    .credential_get = sb__sq_credential_get,
    .credential_list = sb__sq_credential_list,
    .dead_key_put = sb__sq_dead_key_put,
    .dead_key_delete = sb__sq_dead_key_delete,
    .rekey = sb__sq_rekey,
    .registry_version = sb__sq_registry_version,
    .identity = &sb__sqlite_identity_ops, /* sqlite_identity.c */
    .usage_report = sb__sq_usage_report,  /* sqlite_usage_report.c */
    /* sqlite_experiments.c */
    .experiment_create = sb__sq_experiment_create,
    .experiment_update = sb__sq_experiment_update,
    .experiment_delete = sb__sq_experiment_delete,
    .experiment_get = sb__sq_experiment_get,
    .experiment_list = sb__sq_experiment_list,
    .feedback_put = sb__sq_feedback_put,
    .request_ref = sb__sq_request_ref,
    .experiment_ratings = sb__sq_experiment_ratings,
    .quota = &sb__sqlite_quota_ops, /* sqlite_quota.c */
    .batch = &sb__sqlite_batch_ops, /* sqlite_batch.c */
};
