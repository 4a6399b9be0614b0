/* SPDX-License-Identifier: MIT */
/*
 * sqlite_credentials.c - provider credentials stored through the API, and
 * rekey (master key rotation).
 *
 * The store never holds a plaintext key: the caller encrypts (AES-256-GCM,
 * with the provider identifier and user as associated data) and masks
 * before calling, and rekey hands each row's ciphertext to a callback that
 * returns the new one. Ciphertext, key id and masked form are the only key
 * material written here. One row per (provider, user, label); user NULL is
 * a system credential, label '' the primary key (the unique index of
 * migration 11 enforces it); a provider's other system credentials are its
 * key pool. Dead keys (dead_keys) live here too.
 * Every write bumps registry_version: credentials are part of the snapshot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/sqlite_int.h"
#include "store/store.h"

static const char cred_cols[] =
    "SELECT p.identifier, c.user_id, c.key_ciphertext, c.key_id, c.masked, c.created_at,"
    " c.updated_at, c.id, c.label, c.weight FROM provider_credentials c"
    " JOIN providers p ON p.id = c.provider_id";

void sb__sq_read_credential(struct sb_arena *a, sqlite3_stmt *st, struct sb_store_credential *c)
{
    c->provider = sb__sq_col_str(a, st, 0);
    c->user = sb__sq_col_str(a, st, 1);
    c->key_ciphertext = sb__sq_col_str(a, st, 2);
    c->key_id = sb__sq_col_str(a, st, 3);
    c->masked = sb__sq_col_str(a, st, 4);
    c->created_at = sqlite3_column_int64(st, 5);
    c->updated_at = sqlite3_column_int64(st, 6);
    c->label = sb__sq_col_str(a, st, 8);
    c->weight = sqlite3_column_int64(st, 9);
}

/* Runs a credential SELECT with up to three string parameters (NULL binds
 * NULL); rows into *out (array in a), row ids into *rowids when not NULL. */
static sb_err query3(sqlite3 *db, const char *where, const char *p1, const char *p2,
                     const char *p3, struct sb_arena *a, struct sb_store_credential **out,
                     size_t *n, int64_t **rowids, struct sb_error *err)
{
    struct sb__vec v = {.size = sizeof(**out)}, ids = {.size = sizeof(int64_t)};
    sqlite3_stmt *st = NULL;
    char sql[512];
    snprintf(sql, sizeof(sql), "%s %s", cred_cols, where);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc == SB_OK && sqlite3_bind_parameter_count(st) >= 1)
        sb__sq_bind_str(st, 1, p1);
    if (rc == SB_OK && sqlite3_bind_parameter_count(st) >= 2)
        sb__sq_bind_str(st, 2, p2);
    if (rc == SB_OK && sqlite3_bind_parameter_count(st) >= 3)
        sb__sq_bind_str(st, 3, p3 ? p3 : "");
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "credentials");
            break;
        }
        sb__sq_read_credential(a, st, sb__vec_push(&v));
        *(int64_t *)sb__vec_push(&ids) = sqlite3_column_int64(st, 7);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    int64_t *idp = sb__vec_to_arena(&ids, a);
    if (rowids)
        *rowids = idp;
    return rc;
}

static sb_err query(sqlite3 *db, const char *where, const char *p1, const char *p2,
                    struct sb_arena *a, struct sb_store_credential **out, size_t *n,
                    int64_t **rowids, struct sb_error *err)
{
    return query3(db, where, p1, p2, NULL, a, out, n, rowids, err);
}

sb_err sb__sq_pool_credentials(sqlite3 *db, struct sb_arena *a, struct sb_store_credential **out,
                               size_t *n, struct sb_error *err)
{
    return query(db, "WHERE c.user_id IS NULL AND c.label <> '' ORDER BY p.identifier, c.label",
                 NULL, NULL, a, out, n, NULL, err);
}

sb_err sb__sq_personal_credentials(sqlite3 *db, struct sb_arena *a,
                                   struct sb_store_credential **out, size_t *n,
                                   struct sb_error *err)
{
    return query(db, "WHERE c.user_id IS NOT NULL ORDER BY p.identifier, c.user_id", NULL, NULL, a,
                 out, n, NULL, err);
}

sb_err sb__sq_credential_list(struct sb_store *s, const char *user, struct sb_arena *a,
                              struct sb_store_credential **out, size_t *n, struct sb_error *err)
{
    return query(sb__sq_db(s),
                 "WHERE COALESCE(c.user_id, '') = COALESCE(?1, '')"
                 " ORDER BY p.identifier, c.label",
                 user, NULL, a, out, n, NULL, err);
}

sb_err sb__sq_credential_get(struct sb_store *s, const char *provider, const char *user,
                             const char *label, struct sb_arena *a,
                             struct sb_store_credential *out, struct sb_error *err)
{
    struct sb_store_credential *rows = NULL;
    size_t n = 0;
    memset(out, 0, sizeof(*out));
    sb_err rc = query3(sb__sq_db(s),
                       "WHERE p.identifier = ?1 AND COALESCE(c.user_id, '') = COALESCE(?2, '')"
                       " AND c.label = ?3",
                       provider, user, label, a, &rows, &n, NULL, err);
    if (rc == SB_OK && n == 0)
        rc = sb_fail(err, SB_E_NOT_FOUND, "no credential%s%s for provider '%.128s'",
                     label && *label ? " " : "", label ? label : "", provider ? provider : "");
    if (rc == SB_OK)
        *out = rows[0];
    return rc;
}

/* ---- writes ---- */

struct cred_op {
    const struct sb_store_credential *c; /* put */
    const char *provider, *user, *label; /* delete */
};

/* The provider of a credential; unknown is SB_E_NOT_FOUND naming field provider. */
static sb_err cred_provider(sqlite3 *db, const char *provider, int64_t *pid, struct sb_error *err)
{
    sb_err rc = sb__sq_find(db, "providers", "provider", provider, pid, NULL, err);
    if (rc == SB_E_NOT_FOUND)
        rc =
            sb_fail_field(err, SB_E_NOT_FOUND, "provider", "provider '%.128s' not found", provider);
    return rc;
}

/* ?1 ciphertext ?2 key id ?3 masked ?4 now ?5 provider row ?6 user ?7 label ?8 weight. */
static const char cred_update[] =
    "UPDATE provider_credentials SET key_ciphertext = ?1, key_id = ?2, masked = ?3,"
    " updated_at = ?4, weight = ?8 WHERE provider_id = ?5"
    " AND COALESCE(user_id, '') = COALESCE(?6, '') AND label = ?7";
static const char cred_insert[] =
    "INSERT INTO provider_credentials(provider_id, user_id, key_ciphertext, key_id, masked,"
    " created_at, updated_at, label, weight) VALUES(?5, ?6, ?1, ?2, ?3, ?4, ?4, ?7, ?8)";

static sb_err cred_write(sqlite3 *db, const char *sql, int64_t pid,
                         const struct sb_store_credential *c, int *changed, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, c->key_ciphertext);
    sb__sq_bind_str(st, 2, c->key_id);
    sb__sq_bind_str(st, 3, c->masked);
    sqlite3_bind_int64(st, 4, sb__sq_now_ms());
    sqlite3_bind_int64(st, 5, pid);
    sb__sq_bind_str(st, 6, c->user);
    sb__sq_bind_str(st, 7, c->label ? c->label : "");
    sqlite3_bind_int64(st, 8, c->weight > 0 ? c->weight : 1);
    rc = sb__sq_step_write(db, st, "credential", c->provider, err);
    *changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

/* Update, then insert when there was nothing to update: portable, unlike an
 * upsert on the COALESCE expression index. */
static sb_err do_put(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct cred_op *op = ud;
    int64_t pid = 0;
    int changed = 0;
    sb_err rc = cred_provider(db, op->c->provider, &pid, err);
    if (rc == SB_OK)
        rc = cred_write(db, cred_update, pid, op->c, &changed, err);
    if (rc == SB_OK && changed == 0)
        rc = cred_write(db, cred_insert, pid, op->c, &changed, err);
    return rc;
}

static sb_err check_credential(const struct sb_store_credential *c, struct sb_error *err)
{
    const struct {
        const char *v, *field;
    } required[] = {{c->provider, "provider"},
                    {c->key_ciphertext, "key_ciphertext"},
                    {c->key_id, "key_id"},
                    {c->masked, "masked"}};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!required[i].v || !*required[i].v)
            return sb_fail_field(err, SB_E_BAD_REQUEST, required[i].field, "%s is required",
                                 required[i].field);
    if (c->user && !*c->user)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "user", "an empty user id is not a user");
    if (strlen(c->key_id) >= SB_STORE_KEY_ID_MAX)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "key_id", "key id too long");
    if (c->label && *c->label) {
        if (c->user)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "label",
                                 "a user's own key has no label (one per provider)");
        size_t n = strlen(c->label);
        if (n > 32 || strspn(c->label, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "label",
                                 "label: expected [a-z0-9_-], 1 to 32 characters");
    }
    if (c->weight < 0 || c->weight > 1000000)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "weight", "weight: expected 1 .. 1000000");
    return SB_OK;
}

sb_err sb__sq_credential_put(struct sb_store *s, const struct sb_store_credential *c,
                             struct sb_error *err)
{
    struct cred_op op = {.c = c};
    sb_err rc = check_credential(c, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_put, &op, err);
    return rc;
}

static sb_err do_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct cred_op *op = ud;
    sqlite3_stmt *st = NULL;
    int64_t pid = 0;
    sb_err rc = cred_provider(db, op->provider, &pid, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "DELETE FROM provider_credentials WHERE provider_id = ?1"
                            " AND COALESCE(user_id, '') = COALESCE(?2, '') AND label = ?3",
                            &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, pid);
    sb__sq_bind_str(st, 2, op->user);
    sb__sq_bind_str(st, 3, op->label ? op->label : "");
    rc = sb__sq_step_write(db, st, "credential", op->provider, err);
    sqlite3_finalize(st);
    if (rc == SB_OK && sqlite3_changes(db) == 0)
        rc = sb_fail(err, SB_E_NOT_FOUND, "no credential for provider '%.128s'", op->provider);
    return rc;
}

sb_err sb__sq_credential_delete(struct sb_store *s, const char *provider, const char *user,
                                const char *label, struct sb_error *err)
{
    struct cred_op op = {.provider = provider, .user = user, .label = label};
    return sb__sq_write(sb__sq_db(s), do_delete, &op, err);
}

/* ---- dead keys ---- */

sb_err sb__sq_dead_keys(sqlite3 *db, struct sb_arena *a, struct sb_store_dead_key **out,
                        size_t *n, struct sb_error *err)
{
    struct sb__vec v = {.size = sizeof(**out)};
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "SELECT provider, label, fingerprint, reason, at FROM dead_keys ORDER BY provider, label",
        &st, err);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, "dead keys");
            break;
        }
        struct sb_store_dead_key *d = sb__vec_push(&v);
        d->provider = sb__sq_col_str(a, st, 0);
        d->label = sb__sq_col_str(a, st, 1);
        d->fingerprint = sb__sq_col_str(a, st, 2);
        d->reason = sb__sq_col_str(a, st, 3);
        d->at = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    *n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

struct dead_op {
    const struct sb_store_dead_key *d; /* put */
    const char *provider, *label;      /* delete */
};

static sb_err do_dead_put(sqlite3 *db, void *ud, struct sb_error *err)
{
    const struct sb_store_dead_key *d = ((struct dead_op *)ud)->d;
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db,
                               "INSERT INTO dead_keys(provider, label, fingerprint, reason, at)"
                               " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(provider, label) DO UPDATE"
                               " SET fingerprint = excluded.fingerprint,"
                               " reason = excluded.reason, at = excluded.at",
                               &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, d->provider);
    sb__sq_bind_str(st, 2, d->label ? d->label : "");
    sb__sq_bind_str(st, 3, d->fingerprint);
    sb__sq_bind_str(st, 4, d->reason ? d->reason : "");
    sqlite3_bind_int64(st, 5, d->at);
    rc = sb__sq_step_write(db, st, "dead key", d->provider, err);
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_dead_key_put(struct sb_store *s, const struct sb_store_dead_key *d,
                           struct sb_error *err)
{
    struct dead_op op = {.d = d};
    if (!d->provider || !d->fingerprint)
        return sb_fail(err, SB_E_BAD_REQUEST, "a dead key needs a provider and a fingerprint");
    return sb__sq_write(sb__sq_db(s), do_dead_put, &op, err);
}

static sb_err do_dead_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct dead_op *op = ud;
    sqlite3_stmt *st = NULL;
    sb_err rc =
        sb__sq_prepare(db, "DELETE FROM dead_keys WHERE provider = ?1 AND label = ?2", &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, op->provider);
    sb__sq_bind_str(st, 2, op->label ? op->label : "");
    rc = sb__sq_step_write(db, st, "dead key", op->provider, err);
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_dead_key_delete(struct sb_store *s, const char *provider, const char *label,
                              struct sb_error *err)
{
    struct dead_op op = {.provider = provider, .label = label};
    return sb__sq_write(sb__sq_db(s), do_dead_delete, &op, err);
}

/* ---- rekey ---- */

struct rekey_op {
    sb_store_rekey_fn fn;
    void *ud;
    size_t n; /* rows re-encrypted */
};

static sb_err rekey_row(sqlite3 *db, sqlite3_stmt *upd, int64_t rowid, const char *ct,
                        const char *kid, struct sb_error *err)
{
    sb__sq_bind_str(upd, 1, ct);
    sb__sq_bind_str(upd, 2, kid);
    sqlite3_bind_int64(upd, 3, sb__sq_now_ms());
    sqlite3_bind_int64(upd, 4, rowid);
    sb_err rc = sb__sq_step_write(db, upd, "credential", "", err);
    sqlite3_reset(upd);
    return rc;
}

/* One credential: the callback's answer is checked before it is written. */
static sb_err rekey_one(sqlite3 *db, sqlite3_stmt *upd, struct rekey_op *op,
                        const struct sb_store_credential *c, int64_t rowid, struct sb_error *err)
{
    char kid[SB_STORE_KEY_ID_MAX] = {0};
    char *ct = NULL;
    sb_err rc = op->fn(op->ud, c, &ct, kid, err);
    if (rc == SB_OK && (!ct || !*ct || !kid[0] || !memchr(kid, '\0', sizeof(kid))))
        rc = sb_fail(err, SB_E_INTERNAL, "rekey: provider '%.128s': no new ciphertext or key id",
                     c->provider);
    if (rc == SB_OK)
        rc = rekey_row(db, upd, rowid, ct, kid, err);
    free(ct);
    return rc;
}

/* All rows are read before any is written: updating a table while a SELECT
 * on it is still stepping is undefined in SQLite. */
static sb_err do_rekey(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct rekey_op *op = ud;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_credential *rows = NULL;
    int64_t *ids = NULL;
    sqlite3_stmt *upd = NULL;
    size_t n = 0;
    sb_err rc = query(db, "ORDER BY c.id", NULL, NULL, a, &rows, &n, &ids, err);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db,
                            "UPDATE provider_credentials SET key_ciphertext = ?1, key_id = ?2,"
                            " updated_at = ?3 WHERE id = ?4",
                            &upd, err);
    for (size_t i = 0; rc == SB_OK && i < n; i++)
        rc = rekey_one(db, upd, op, &rows[i], ids[i], err);
    if (rc == SB_OK)
        op->n = n;
    sqlite3_finalize(upd);
    sb_arena_free(a);
    return rc;
}

sb_err sb__sq_rekey(struct sb_store *s, sb_store_rekey_fn fn, void *ud, size_t *n,
                    struct sb_error *err)
{
    struct rekey_op op = {fn, ud, 0};
    sb_err rc = sb__sq_write(sb__sq_db(s), do_rekey, &op, err);
    if (n)
        *n = rc == SB_OK ? op.n : 0;
    return rc;
}
