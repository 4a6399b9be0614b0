/* SPDX-License-Identifier: MIT */
/*
 * sqlite_identity.c - users, sessions, virtual keys and the audit log in
 * SQLite (store/identity.h, migration 3).
 *
 * Same connection and helpers as sqlite.c (sqlite_int.h). The SQL stays in
 * the subset PostgreSQL also speaks (RETURNING, COALESCE, LIMIT/OFFSET);
 * only the ?N placeholders differ, and the PostgreSQL backend writes its
 * own strings. Hashes are opaque text here: this file never sees a
 * password, a key or a cookie. Lists come back in the caller's arena.
 *
 * Chapters: helpers · users · sessions · virtual keys · audit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "store/identity.h"
#include "store/sqlite_int.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

/* ---- helpers ---- */

/* Steps a statement that returns no row; SB_E_CONFLICT on a UNIQUE violation. */
static sb_err step_done(sqlite3 *db, sqlite3_stmt *st, const char *field, const char *what,
                        struct sb_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return SB_OK;
    if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
        return sb_fail_field(err, SB_E_CONFLICT, field, "%s already exists", what);
    return sb__sq_fail(db, err, what);
}

/* Runs a prepared one-shot write and reports NOT_FOUND when it touched no row. */
static sb_err exec_one(sqlite3 *db, sqlite3_stmt *st, const char *what, struct sb_error *err)
{
    sb_err rc = step_done(db, st, "", what, err);
    if (rc == SB_OK && sqlite3_changes(db) == 0)
        rc = sb_fail(err, SB_E_NOT_FOUND, "%s: not found", what);
    sqlite3_finalize(st);
    return rc;
}

static void page_bounds(const struct sb_store_paging *pg, int64_t *limit, int64_t *offset)
{
    *limit = pg && pg->limit > 0 ? (pg->limit > PAGE_MAX ? PAGE_MAX : pg->limit) : PAGE_DEFAULT;
    *offset = pg && pg->offset > 0 ? pg->offset : 0;
}

typedef void (*row_fn)(struct sb_arena *a, sqlite3_stmt *st, void *elem);

/* Steps st (bound by the caller), reading each row into a new element of v. */
static sb_err collect(sqlite3 *db, sqlite3_stmt *st, struct sb_arena *a, row_fn fn,
                      struct sb__vec *v, struct sb_error *err)
{
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            return SB_OK;
        if (step != SQLITE_ROW)
            return sb__sq_fail(db, err, "query");
        fn(a, st, sb__vec_push(v));
    }
}

/*
 * Steps st (bound by the caller), which selects at most one row, reading it into out with
 * fn; no row fails SB_E_NOT_FOUND with the message nf_fmt formats. Finalizes st.
 */
static sb_err get_one(sqlite3 *db, sqlite3_stmt *st, struct sb_arena *a, row_fn fn, void *out,
                      const char *what, struct sb_error *err, const char *nf_fmt, ...)
    __attribute__((format(printf, 8, 9)));
static sb_err get_one(sqlite3 *db, sqlite3_stmt *st, struct sb_arena *a, row_fn fn, void *out,
                      const char *what, struct sb_error *err, const char *nf_fmt, ...)
{
    sb_err rc = SB_OK;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        fn(a, st, out);
    } else if (step == SQLITE_DONE) {
        va_list ap;
        va_start(ap, nf_fmt);
        rc = sb_vfail(err, SB_E_NOT_FOUND, nf_fmt, ap);
        va_end(ap);
    } else {
        rc = sb__sq_fail(db, err, what);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The single integer a COUNT(*) statement returns. */
static sb_err count_rows(sqlite3 *db, sqlite3_stmt *st, int64_t *n, struct sb_error *err)
{
    if (sqlite3_step(st) != SQLITE_ROW)
        return sb__sq_fail(db, err, "count");
    *n = sqlite3_column_int64(st, 0);
    return SB_OK;
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static void bind_opt_i64(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* ---- validation (shared with the API) ---- */

sb_err sb_store_check_username(const char *u, struct sb_error *err)
{
    size_t n = u ? strlen(u) : 0;
    if (n == 0 || n > 64)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "username",
                             "username must be 1 to 64 characters");
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return sb_fail_field(err, SB_E_BAD_REQUEST, "username",
                                 "username may hold only a-z, 0-9, '.', '_' and '-'");
    }
    return SB_OK;
}

static const char *const roles[] = {"admin", "developer", "user"};
static const char *const statuses[] = {"active", "disabled"};

static bool one_of(const char *v, const char *const *set, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v, set[i]) == 0)
            return true;
    return false;
}

sb_err sb_store_check_role(const char *role, struct sb_error *err)
{
    if (one_of(role, roles, 3))
        return SB_OK;
    return sb_fail_field(err, SB_E_BAD_REQUEST, "role",
                         "role must be one of admin, developer, user");
}

static sb_err check_status(const char *status, struct sb_error *err)
{
    if (one_of(status, statuses, 2))
        return SB_OK;
    return sb_fail_field(err, SB_E_BAD_REQUEST, "status", "status must be active or disabled");
}

/* ---- users ---- */

#define USER_COLS "id, username, password_hash, role, status, created_at, updated_at, last_login_at"

static void read_user(struct sb_arena *a, sqlite3_stmt *st, void *elem)
{
    struct sb_store_user *u = elem;
    u->id = sqlite3_column_int64(st, 0);
    u->username = sb__sq_col_str(a, st, 1);
    u->password_hash = sb__sq_col_str(a, st, 2);
    u->role = sb__sq_col_str(a, st, 3);
    u->status = sb__sq_col_str(a, st, 4);
    u->created_at = col_i64(st, 5);
    u->updated_at = col_i64(st, 6);
    u->last_login_at = col_i64(st, 7);
}

static sb_err user_create(struct sb_store *s, const struct sb_store_user *u, int64_t *id,
                          struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    int64_t now = sb__sq_now_ms();
    sb_err rc = sb_store_check_username(u->username, err);
    if (rc == SB_OK)
        rc = sb_store_check_role(u->role, err);
    if (rc == SB_OK && u->status)
        rc = check_status(u->status, err);
    if (rc == SB_OK && (!u->password_hash || !*u->password_hash))
        rc = sb_fail_field(err, SB_E_BAD_REQUEST, "password", "a password is required");
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "INSERT INTO users(username, password_hash, role, status, created_at,"
                            " updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
                            &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, u->username);
    sb__sq_bind_str(st, 2, u->password_hash);
    sb__sq_bind_str(st, 3, u->role);
    sb__sq_bind_str(st, 4, u->status ? u->status : "active");
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (id)
            *id = sqlite3_column_int64(st, 0);
    } else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) {
        rc = sb_fail_field(err, SB_E_CONFLICT, "username", "user '%s' already exists", u->username);
    } else {
        rc = sb__sq_fail(db, err, "create user");
    }
    sqlite3_finalize(st);
    return rc;
}

static sb_err user_get(struct sb_store *s, const char *username, struct sb_arena *a,
                       struct sb_store_user *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    sb_err rc = sb__sq_prepare(db, "SELECT " USER_COLS " FROM users WHERE username = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, username);
    return get_one(db, st, a, read_user, out, "get user", err, "user '%s' not found",
                   username ? username : "");
}

static sb_err user_list(struct sb_store *s, const struct sb_store_paging *pg, struct sb_arena *a,
                        struct sb_store_user **out, size_t *n, int64_t *total, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL, *cnt = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_user)};
    int64_t limit, offset;
    page_bounds(pg, &limit, &offset);
    sb_err rc = sb__sq_prepare(db, "SELECT " USER_COLS " FROM users ORDER BY id LIMIT ?1 OFFSET ?2",
                               &st, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db, "SELECT COUNT(*) FROM users", &cnt, err);
    if (rc == SB_OK) {
        sqlite3_bind_int64(st, 1, limit);
        sqlite3_bind_int64(st, 2, offset);
        rc = collect(db, st, a, read_user, &v, err);
    }
    if (rc == SB_OK && total)
        rc = count_rows(db, cnt, total, err);
    sqlite3_finalize(st);
    sqlite3_finalize(cnt);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

static sb_err user_update(struct sb_store *s, const char *username,
                          const struct sb_store_user_update *u, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = SB_OK;
    if (u->role)
        rc = sb_store_check_role(u->role, err);
    if (rc == SB_OK && u->status)
        rc = check_status(u->status, err);
    if (rc == SB_OK && u->password_hash && !*u->password_hash)
        rc = sb_fail_field(err, SB_E_BAD_REQUEST, "password", "the password hash is empty");
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "UPDATE users SET role = COALESCE(?1, role),"
                            " password_hash = COALESCE(?2, password_hash),"
                            " status = COALESCE(?3, status),"
                            " last_login_at = COALESCE(?4, last_login_at), updated_at = ?5"
                            " WHERE username = ?6",
                            &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, u->role);
    sb__sq_bind_str(st, 2, u->password_hash);
    sb__sq_bind_str(st, 3, u->status);
    bind_opt_i64(st, 4, u->last_login_at);
    sqlite3_bind_int64(st, 5, sb__sq_now_ms());
    sb__sq_bind_str(st, 6, username);
    return exec_one(db, st, "user", err);
}

/* Runs sql with ?1 = username inside the caller's transaction. */
static sb_err delete_by_user(sqlite3 *db, const char *sql, const char *username, bool must_hit,
                             struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, username);
    if (must_hit)
        return exec_one(db, st, "user", err);
    rc = step_done(db, st, "", "delete", err);
    sqlite3_finalize(st);
    return rc;
}

static sb_err user_delete(struct sb_store *s, const char *username, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = delete_by_user(db, "DELETE FROM users WHERE username = ?1", username, true, err);
    if (rc == SB_OK)
        rc = delete_by_user(db, "DELETE FROM sessions WHERE username = ?1", username, false, err);
    if (rc == SB_OK)
        rc = delete_by_user(db, "DELETE FROM api_keys WHERE user_id = ?1", username, false, err);
    if (rc == SB_OK)
        rc = delete_by_user(db, "DELETE FROM provider_credentials WHERE user_id = ?1", username,
                            false, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

static sb_err user_count_admins(struct sb_store *s, int64_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active'", &st, err);
    if (rc == SB_OK)
        rc = count_rows(db, st, n, err);
    sqlite3_finalize(st);
    return rc;
}

/* ---- sessions ---- */

static sb_err session_create(struct sb_store *s, const struct sb_store_session *ss,
                             struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    int64_t now = sb__sq_now_ms();
    if (!ss->token_hash || !*ss->token_hash || ss->expires_at <= 0)
        return sb_fail(err, SB_E_BAD_REQUEST, "session: token hash and expiry are required");
    sb_err rc = sb_store_check_username(ss->username, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "INSERT INTO sessions(token_hash, username, ip, created_at,"
                            " expires_at, last_seen_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                            &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, ss->token_hash);
    sb__sq_bind_str(st, 2, ss->username);
    sb__sq_bind_str(st, 3, ss->ip);
    sqlite3_bind_int64(st, 4, ss->created_at ? ss->created_at : now);
    sqlite3_bind_int64(st, 5, ss->expires_at);
    sqlite3_bind_int64(st, 6, ss->last_seen_at ? ss->last_seen_at : now);
    rc = step_done(db, st, "session", "session", err);
    sqlite3_finalize(st);
    return rc;
}

/* The session columns with the user's role and status; the join drops sessions whose user was
 * deleted. */
#define SESSION_JOIN                                                                               \
    "s.id, s.token_hash, s.username, s.created_at, s.expires_at, s.last_seen_at, s.ip, u.role,"    \
    " u.status FROM sessions s JOIN users u ON u.username = s.username"

static void read_session(struct sb_arena *a, sqlite3_stmt *st, void *elem)
{
    struct sb_store_session *out = elem;
    out->id = sqlite3_column_int64(st, 0);
    out->token_hash = sb__sq_col_str(a, st, 1);
    out->username = sb__sq_col_str(a, st, 2);
    out->created_at = col_i64(st, 3);
    out->expires_at = col_i64(st, 4);
    out->last_seen_at = col_i64(st, 5);
    out->ip = sb__sq_col_str(a, st, 6);
    out->role = sb__sq_col_str(a, st, 7);
    out->status = sb__sq_col_str(a, st, 8);
}

static sb_err session_get(struct sb_store *s, const char *token_hash, int64_t now,
                          struct sb_arena *a, struct sb_store_session *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    sb_err rc = sb__sq_prepare(
        db, "SELECT " SESSION_JOIN " WHERE s.token_hash = ?1 AND s.expires_at > ?2", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, token_hash);
    sqlite3_bind_int64(st, 2, now);
    return get_one(db, st, a, read_session, out, "get session", err,
                   "session not found or expired");
}

static sb_err session_list_live(struct sb_store *s, int64_t now, struct sb_arena *a,
                                struct sb_store_session **out, size_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_session)};
    sb_err rc = sb__sq_prepare(
        db, "SELECT " SESSION_JOIN " WHERE s.expires_at > ?1 AND u.status = 'active' ORDER BY s.id",
        &st, err);
    if (rc == SB_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = collect(db, st, a, read_session, &v, err);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

static sb_err session_touch(struct sb_store *s, const char *token_hash, int64_t now,
                            struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc =
        sb__sq_prepare(db, "UPDATE sessions SET last_seen_at = ?1 WHERE token_hash = ?2", &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sb__sq_bind_str(st, 2, token_hash);
    return exec_one(db, st, "session", err);
}

/* Runs a DELETE with one text or integer parameter; *n gets the rows removed. */
static sb_err delete_count(struct sb_store *s, const char *sql, const char *text, int64_t num,
                           int64_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    if (text)
        sb__sq_bind_str(st, 1, text);
    else
        sqlite3_bind_int64(st, 1, num);
    rc = step_done(db, st, "", "delete", err);
    if (rc == SB_OK && n)
        *n = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

static sb_err session_delete(struct sb_store *s, const char *token_hash, struct sb_error *err)
{
    return delete_count(s, "DELETE FROM sessions WHERE token_hash = ?1",
                        token_hash ? token_hash : "", 0, NULL, err);
}

static sb_err session_delete_user(struct sb_store *s, const char *username, int64_t *n,
                                  struct sb_error *err)
{
    return delete_count(s, "DELETE FROM sessions WHERE username = ?1", username ? username : "", 0,
                        n, err);
}

static sb_err session_purge(struct sb_store *s, int64_t now, int64_t *n, struct sb_error *err)
{
    return delete_count(s, "DELETE FROM sessions WHERE expires_at <= ?1", NULL, now, n, err);
}

/* ---- virtual keys ---- */

#define KEY_COLS                                                                                   \
    "id, name, key_hash, key_prefix, user_id, status, models, created_at, last_used_at,"           \
    " expires_at, revoked_at"

static void encode_models(const struct sb_store_api_key *k, struct sb_buf *out)
{
    struct sb_jw w;
    sb_jw_init(&w, out);
    sb_jw_arr_begin(&w);
    for (size_t i = 0; i < k->nmodels; i++)
        sb_jw_cstr(&w, k->models[i]);
    sb_jw_arr_end(&w);
}

/* models JSON → arena array; a malformed column reads as no restriction
 * would be wrong (it would widen the key), so it reads as one impossible id. */
static void decode_models(struct sb_arena *a, const char *text, struct sb_store_api_key *k)
{
    struct sb_json *arr = NULL;
    k->models = NULL;
    k->nmodels = 0;
    if (!text || sb_json_parse(a, text, strlen(text), NULL, &arr, NULL) != SB_OK ||
        arr->type != SB_JSON_ARRAY) {
        k->models = sb_arena_calloc(a, sizeof(*k->models));
        k->models[k->nmodels++] = "\x01invalid-models-column";
        return;
    }
    k->models = sb_arena_calloc(a, (arr->count ? arr->count : 1) * sizeof(*k->models));
    for (const struct sb_json *m = arr->child; m; m = m->next)
        if (sb_json_is_string(m))
            k->models[k->nmodels++] = sb_arena_strndup(a, m->str.p, m->str.len);
}

static void read_key(struct sb_arena *a, sqlite3_stmt *st, void *elem)
{
    struct sb_store_api_key *k = elem;
    k->id = sqlite3_column_int64(st, 0);
    k->name = sb__sq_col_str(a, st, 1);
    k->key_hash = sb__sq_col_str(a, st, 2);
    k->key_prefix = sb__sq_col_str(a, st, 3);
    k->user_id = sb__sq_col_str(a, st, 4);
    const char *status = (const char *)sqlite3_column_text(st, 5);
    k->revoked = !status || strcmp(status, "active") != 0;
    decode_models(a, (const char *)sqlite3_column_text(st, 6), k);
    k->created_at = col_i64(st, 7);
    k->last_used_at = col_i64(st, 8);
    k->expires_at = col_i64(st, 9);
    k->revoked_at = col_i64(st, 10);
}

static void read_key_owner(struct sb_arena *a, sqlite3_stmt *st, void *elem)
{
    read_key(a, st, elem);
    ((struct sb_store_api_key *)elem)->owner_disabled = sqlite3_column_int(st, 11) != 0;
}

static sb_err check_key(const struct sb_store_api_key *k, struct sb_error *err)
{
    size_t n = k->name ? strlen(k->name) : 0;
    if (n == 0 || n > 128)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "name", "name must be 1 to 128 bytes");
    if (!k->key_hash || strncmp(k->key_hash, "sha256:", 7) != 0 || strlen(k->key_hash) != 71)
        return sb_fail(err, SB_E_INTERNAL, "key: the stored hash must be sha256:<64 hex>");
    if (!k->key_prefix || !*k->key_prefix)
        return sb_fail(err, SB_E_INTERNAL, "key: a display prefix is required");
    if (k->user_id && *k->user_id)
        return sb_store_check_username(k->user_id, err);
    return SB_OK;
}

static sb_err key_create(struct sb_store *s, const struct sb_store_api_key *k, int64_t *id,
                         struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb_buf models;
    sb_buf_init(&models, 0);
    sb_err rc = check_key(k, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "INSERT INTO api_keys(name, key_hash, key_prefix, user_id, status,"
                            " models, created_at, expires_at)"
                            " VALUES(?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7) RETURNING id",
                            &st, err);
    if (rc == SB_OK) {
        encode_models(k, &models);
        sb__sq_bind_str(st, 1, k->name);
        sb__sq_bind_str(st, 2, k->key_hash);
        sb__sq_bind_str(st, 3, k->key_prefix);
        sb__sq_bind_str(st, 4, k->user_id && *k->user_id ? k->user_id : NULL);
        sb__sq_bind_str(st, 5, models.p);
        sqlite3_bind_int64(st, 6, sb__sq_now_ms());
        bind_opt_i64(st, 7, k->expires_at);
        if (sqlite3_step(st) == SQLITE_ROW) {
            if (id)
                *id = sqlite3_column_int64(st, 0);
        } else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) {
            rc = sb_fail_field(err, SB_E_CONFLICT, "key", "this key already exists");
        } else {
            rc = sb__sq_fail(db, err, "create key");
        }
    }
    sqlite3_finalize(st);
    sb_buf_free(&models);
    return rc;
}

static sb_err key_get(struct sb_store *s, int64_t id, struct sb_arena *a,
                      struct sb_store_api_key *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    sb_err rc = sb__sq_prepare(db, "SELECT " KEY_COLS " FROM api_keys WHERE id = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return get_one(db, st, a, read_key, out, "get key", err, "key %lld not found", (long long)id);
}

static sb_err key_list(struct sb_store *s, const char *user, const struct sb_store_paging *pg,
                       struct sb_arena *a, struct sb_store_api_key **out, size_t *n, int64_t *total,
                       struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL, *cnt = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_api_key)};
    int64_t limit, offset;
    page_bounds(pg, &limit, &offset);
    sb_err rc =
        sb__sq_prepare(db,
                       "SELECT " KEY_COLS " FROM api_keys WHERE (?1 IS NULL OR user_id = ?1)"
                       " ORDER BY id LIMIT ?2 OFFSET ?3",
                       &st, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db, "SELECT COUNT(*) FROM api_keys WHERE (?1 IS NULL OR user_id = ?1)",
                            &cnt, err);
    if (rc == SB_OK) {
        sb__sq_bind_str(st, 1, user);
        sqlite3_bind_int64(st, 2, limit);
        sqlite3_bind_int64(st, 3, offset);
        sb__sq_bind_str(cnt, 1, user);
        rc = collect(db, st, a, read_key, &v, err);
    }
    if (rc == SB_OK && total)
        rc = count_rows(db, cnt, total, err);
    sqlite3_finalize(st);
    sqlite3_finalize(cnt);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

static sb_err key_revoke(struct sb_store *s, int64_t id, int64_t now, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "UPDATE api_keys SET status = 'revoked',"
                               " revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, id);
    return exec_one(db, st, "key", err);
}

static sb_err key_delete(struct sb_store *s, int64_t id, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, "DELETE FROM api_keys WHERE id = ?1", &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    return exec_one(db, st, "key", err);
}

static sb_err key_load_all(struct sb_store *s, struct sb_arena *a, struct sb_store_api_key **out,
                           size_t *n, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_store_api_key)};
    /* Column 11: 1 when the key has an owner who is not an active user. */
    sb_err rc =
        sb__sq_prepare(db,
                       "SELECT k.id, k.name, k.key_hash, k.key_prefix, k.user_id, k.status,"
                       " k.models, k.created_at, k.last_used_at, k.expires_at, k.revoked_at,"
                       " CASE WHEN k.user_id IS NOT NULL AND (u.status IS NULL OR"
                       " u.status <> 'active') THEN 1 ELSE 0 END"
                       " FROM api_keys k LEFT JOIN users u ON u.username = k.user_id"
                       " ORDER BY k.id",
                       &st, err);
    if (rc == SB_OK)
        rc = collect(db, st, a, read_key_owner, &v, err);
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

/* ---- audit ---- */

static const char *const outcomes[] = {"ok", "denied", "failed"};

static sb_err check_audit(const struct sb_audit *r, struct sb_error *err)
{
    if (!r->actor || !*r->actor || !r->action || !*r->action)
        return sb_fail(err, SB_E_BAD_REQUEST, "audit: actor and action are required");
    if (!one_of(r->outcome, outcomes, 3))
        return sb_fail(err, SB_E_BAD_REQUEST, "audit: outcome must be ok, denied or failed");
    return SB_OK;
}

static void bind_audit(sqlite3_stmt *st, const struct sb_audit *r, int64_t now)
{
    sqlite3_bind_int64(st, 1, r->ts_ms ? r->ts_ms : now);
    sb__sq_bind_str(st, 2, r->actor);
    sb__sq_bind_str(st, 3, r->actor_role);
    sb__sq_bind_str(st, 4, r->action);
    sb__sq_bind_str(st, 5, r->target_type);
    sb__sq_bind_str(st, 6, r->target_id);
    sb__sq_bind_str(st, 7, r->before);
    sb__sq_bind_str(st, 8, r->after);
    sb__sq_bind_str(st, 9, r->ip);
    sb__sq_bind_str(st, 10, r->request_id);
    sb__sq_bind_str(st, 11, r->outcome);
}

/* Inserts rows[0..n) inside the caller's transaction (sqlite_int.h). */
sb_err sb__sq_audit_rows(sqlite3 *db, const struct sb_audit *rows, size_t n, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    int64_t now = sb__sq_now_ms();
    sb_err rc = SB_OK;
    if (n == 0)
        return SB_OK;
    for (size_t i = 0; rc == SB_OK && i < n; i++)
        rc = check_audit(&rows[i], err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "INSERT INTO audit_log(ts, actor, actor_role, action, target_type,"
                            " target_id, before_json, after_json, ip, request_id, outcome)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                            &st, err);
    for (size_t i = 0; rc == SB_OK && i < n; i++) {
        bind_audit(st, &rows[i], now);
        rc = step_done(db, st, "", "insert audit", err);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static sb_err audit_insert(struct sb_store *s, const struct sb_audit *rows, size_t n,
                           struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sb_err rc = SB_OK;
    for (size_t i = 0; rc == SB_OK && i < n; i++)
        rc = check_audit(&rows[i], err); /* refused before the transaction opens */
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = sb__sq_audit_rows(db, rows, n, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

#define AUDIT_WHERE                                                                                \
    " WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)"                            \
    " AND (?3 IS NULL OR target_type = ?3) AND (?4 IS NULL OR target_id = ?4)"                     \
    " AND (?5 = 0 OR ts >= ?5) AND (?6 = 0 OR ts <= ?6)"

static void read_audit(struct sb_arena *a, sqlite3_stmt *st, void *elem)
{
    struct sb_audit *r = elem;
    r->id = sqlite3_column_int64(st, 0);
    r->ts_ms = col_i64(st, 1);
    r->actor = sb__sq_col_str(a, st, 2);
    r->actor_role = sb__sq_col_str(a, st, 3);
    r->action = sb__sq_col_str(a, st, 4);
    r->target_type = sb__sq_col_str(a, st, 5);
    r->target_id = sb__sq_col_str(a, st, 6);
    r->before = sb__sq_col_str(a, st, 7);
    r->after = sb__sq_col_str(a, st, 8);
    r->ip = sb__sq_col_str(a, st, 9);
    r->request_id = sb__sq_col_str(a, st, 10);
    r->outcome = sb__sq_col_str(a, st, 11);
}

static void bind_filter(sqlite3_stmt *st, const struct sb_audit_filter *f)
{
    static const struct sb_audit_filter none = {0};
    if (!f)
        f = &none;
    sb__sq_bind_str(st, 1, f->actor);
    sb__sq_bind_str(st, 2, f->action);
    sb__sq_bind_str(st, 3, f->target_type);
    sb__sq_bind_str(st, 4, f->target_id);
    sqlite3_bind_int64(st, 5, f->from_ms);
    sqlite3_bind_int64(st, 6, f->to_ms);
}

static sb_err audit_query(struct sb_store *s, const struct sb_audit_filter *f,
                          const struct sb_store_paging *pg, struct sb_arena *a,
                          struct sb_audit **out, size_t *n, int64_t *total, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL, *cnt = NULL;
    struct sb__vec v = {.size = sizeof(struct sb_audit)};
    int64_t limit, offset;
    page_bounds(pg, &limit, &offset);
    sb_err rc = sb__sq_prepare(db,
                               "SELECT id, ts, actor, actor_role, action, target_type, target_id,"
                               " before_json, after_json, ip, request_id, outcome"
                               " FROM audit_log" AUDIT_WHERE
                               " ORDER BY ts DESC, id DESC LIMIT ?7 OFFSET ?8",
                               &st, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db, "SELECT COUNT(*) FROM audit_log" AUDIT_WHERE, &cnt, err);
    if (rc == SB_OK) {
        bind_filter(st, f);
        sqlite3_bind_int64(st, 7, limit);
        sqlite3_bind_int64(st, 8, offset);
        bind_filter(cnt, f);
        rc = collect(db, st, a, read_audit, &v, err);
    }
    if (rc == SB_OK && total)
        rc = count_rows(db, cnt, total, err);
    sqlite3_finalize(st);
    sqlite3_finalize(cnt);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

const struct sb_store_identity_ops sb__sqlite_identity_ops = {
    .user_create = user_create,
    .user_get = user_get,
    .user_list = user_list,
    .user_update = user_update,
    .user_delete = user_delete,
    .user_count_admins = user_count_admins,
    .session_create = session_create,
    .session_get = session_get,
    .session_touch = session_touch,
    .session_delete = session_delete,
    .session_delete_user = session_delete_user,
    .session_purge = session_purge,
    .key_create = key_create,
    .key_get = key_get,
    .key_list = key_list,
    .key_revoke = key_revoke,
    .key_delete = key_delete,
    .key_load_all = key_load_all,
    .audit_insert = audit_insert,
    .audit_query = audit_query,
    .session_list_live = session_list_live,
};
