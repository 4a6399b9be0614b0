/* SPDX-License-Identifier: MIT */
/*
 * sqlite_registry_edit.c - the API's writes to the registry: create, update
 * and delete of providers, models, routes and templates, and the edits the
 * API may make to system entries too (toggle, priority, reorder, champion,
 * default).
 *
 * Every write runs through sb__sq_write: one BEGIN IMMEDIATE transaction that
 * also bumps registry_version, so a reader that sees the new version sees the
 * whole change. Checks that need the database (unknown id, system entry,
 * duplicate identifier) fail inside that transaction, so nothing is half
 * done. Validation of the values themselves (URL shapes, strategy names,
 * ranges) belongs to the caller, which shares the config file's key tables;
 * the store checks only what it must to keep the tables consistent.
 *
 * Chapters: checks · providers · models · model ordering · routes · templates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "store/sqlite_int.h"
#include "store/store.h"

/* ---- checks ---- */

enum id_rule {
    ID_SLUG,  /* providers, templates: [a-z0-9][a-z0-9._-]*, at most 64 */
    ID_MODEL, /* models, routes: [A-Za-z0-9._:-]+, at most 128 (the config file's rule) */
};

static const struct {
    const char *first, *rest, *shown;
    size_t max;
} id_rules[] = {
    [ID_SLUG] = {"abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789._-",
                 "[a-z0-9][a-z0-9._-]*", 64},
    [ID_MODEL] = {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-",
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-",
                  "[A-Za-z0-9._:-]+", 128},
};

static sb_err check_id(const char *id, enum id_rule rule, const char *noun, struct sb_error *err)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = n > 0 && n <= id_rules[rule].max && strchr(id_rules[rule].first, id[0]) &&
              strspn(id, id_rules[rule].rest) == n;
    if (!ok)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "id",
                             "%s id must match %s (at most %zu "
                             "characters)",
                             noun, id_rules[rule].shown, id_rules[rule].max);
    return SB_OK;
}

/* update(id, x): x->id may repeat id but never change it. */
static sb_err check_same_id(const char *id, const char *new_id, struct sb_error *err)
{
    if (new_id && (!id || strcmp(id, new_id) != 0))
        return sb_fail_field(err, SB_E_BAD_REQUEST, "id", "an id cannot be changed");
    return SB_OK;
}

static sb_err need(const void *v, const char *field, struct sb_error *err)
{
    if (!v)
        return sb_fail_field(err, SB_E_BAD_REQUEST, field, "%s is required", field);
    return SB_OK;
}

/* The row id of an entry the API may update or delete (not a system entry). */
static sb_err find_editable(sqlite3 *db, const char *table, const char *noun, const char *id,
                            int64_t *rowid, struct sb_error *err)
{
    bool sys = false;
    sb_err rc = sb__sq_find(db, table, noun, id, rowid, &sys, err);
    if (rc == SB_OK && sys)
        rc = sb_fail(err, SB_E_CONFLICT,
                     "%s '%.128s' comes from the config file: change it there (the API can only "
                     "toggle it and set its priority, champion and default)",
                     noun, id);
    return rc;
}

/* Steps a prepared single-row write, then finalizes it. */
static sb_err run(sqlite3 *db, sqlite3_stmt *st, const char *noun, const char *id,
                  struct sb_error *err)
{
    sb_err rc = sb__sq_step_write(db, st, noun, id, err);
    sqlite3_finalize(st);
    return rc;
}

static sb_err delete_row(sqlite3 *db, const char *table, int64_t rowid, struct sb_error *err)
{
    char sql[64];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", table);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, rowid);
    return run(db, st, table, "", err);
}

/* ---- providers ---- */

struct provider_op {
    const char *id; /* the row an update or delete names */
    const struct sb_store_provider *p;
    const struct sb_store_model *models; /* created with the provider */
    size_t nmodels;
    bool cascade;
};

static const char provider_insert[] =
    "INSERT INTO providers(identifier, name, description, type, base_url, auth_method,"
    " auth_config, options, rate_limits, status, is_system, created_by, created_at, updated_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12, ?12)";

static const char provider_update[] =
    "UPDATE providers SET name = ?2, description = ?3, type = ?4, base_url = ?5,"
    " auth_method = ?6, auth_config = ?7, options = ?8, rate_limits = ?9, status = ?10,"
    " updated_at = ?12 WHERE identifier = ?1";

static sb_err check_provider(const struct sb_store_provider *p, struct sb_error *err)
{
    sb_err rc = need(p->type, "type", err);
    if (rc == SB_OK)
        rc = need(p->base_url, "base_url", err);
    return rc;
}

/* Binds ?1..?12 of provider_insert / provider_update and steps it. */
static sb_err write_provider(sqlite3 *db, const char *sql, const char *id,
                             const struct sb_store_provider *p, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf auth, opts, limits;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb_buf_init(&auth, 0);
    sb_buf_init(&opts, 0);
    sb_buf_init(&limits, 0);
    sb__enc_auth(p, &auth);
    sb__enc_options(p, &opts);
    sb__enc_rate_limits(p, &limits);
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, p->name ? p->name : id);
    sb__sq_bind_str(st, 3, p->description);
    sb__sq_bind_str(st, 4, p->type);
    sb__sq_bind_str(st, 5, p->base_url);
    sb__sq_bind_str(st, 6, p->auth_method ? p->auth_method : "bearer");
    sb__sq_bind_str(st, 7, auth.p);
    sb__sq_bind_str(st, 8, opts.p);
    sb__sq_bind_str(st, 9, limits.p);
    sb__sq_bind_str(st, 10, p->enabled ? "active" : "inactive");
    sb__sq_bind_str(st, 11, p->created_by);
    sqlite3_bind_int64(st, 12, sb__sq_now_ms());
    rc = run(db, st, "provider", id, err);
    sb_buf_free(&auth);
    sb_buf_free(&opts);
    sb_buf_free(&limits);
    return rc;
}

static sb_err insert_model(sqlite3 *db, int64_t pid, const struct sb_store_model *m,
                           struct sb_error *err);

static sb_err do_provider_create(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct provider_op *op = ud;
    sb_err rc = write_provider(db, provider_insert, op->p->id, op->p, err);
    int64_t pid = sqlite3_last_insert_rowid(db);
    for (size_t i = 0; rc == SB_OK && i < op->nmodels; i++)
        rc = insert_model(db, pid, &op->models[i], err);
    return rc;
}

sb_err sb__sq_provider_create(struct sb_store *s, const struct sb_store_provider *p,
                              const struct sb_store_model *models, size_t nmodels,
                              struct sb_error *err)
{
    struct provider_op op = {.p = p, .models = models, .nmodels = nmodels};
    sb_err rc = check_id(p->id, ID_SLUG, "provider", err);
    if (rc == SB_OK)
        rc = check_provider(p, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_provider_create, &op, err);
    return rc;
}

static sb_err do_provider_update(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct provider_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = find_editable(db, "providers", "provider", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = write_provider(db, provider_update, op->id, op->p, err);
    return rc;
}

sb_err sb__sq_provider_update(struct sb_store *s, const char *id, const struct sb_store_provider *p,
                              struct sb_error *err)
{
    struct provider_op op = {.id = id, .p = p};
    sb_err rc = check_same_id(id, p->id, err);
    if (rc == SB_OK)
        rc = check_provider(p, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_provider_update, &op, err);
    return rc;
}

/* How many models a provider has, and how many of them are system models. */
static sb_err count_models(sqlite3 *db, int64_t pid, int64_t *all, int64_t *sys,
                           struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(
        db, "SELECT COUNT(*), COALESCE(SUM(is_system), 0) FROM models WHERE provider_id = ?", &st,
        err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, pid);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *all = sqlite3_column_int64(st, 0);
        *sys = sqlite3_column_int64(st, 1);
    } else {
        rc = sb__sq_fail(db, err, "count models");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Models and credentials go with the provider by ON DELETE CASCADE. */
static sb_err do_provider_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct provider_op *op = ud;
    int64_t rowid = 0, all = 0, sys = 0;
    sb_err rc = find_editable(db, "providers", "provider", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = count_models(db, rowid, &all, &sys, err);
    if (rc == SB_OK && sys > 0)
        rc = sb_fail(err, SB_E_CONFLICT,
                     "provider '%.128s' has %lld models from the config file; remove them there "
                     "first",
                     op->id, (long long)sys);
    else if (rc == SB_OK && all > 0 && !op->cascade)
        rc = sb_fail(err, SB_E_CONFLICT,
                     "provider '%.128s' still has %lld models; delete them first or delete the "
                     "provider with its models",
                     op->id, (long long)all);
    if (rc == SB_OK)
        rc = delete_row(db, "providers", rowid, err);
    return rc;
}

sb_err sb__sq_provider_delete(struct sb_store *s, const char *id, bool cascade,
                              struct sb_error *err)
{
    struct provider_op op = {.id = id, .cascade = cascade};
    return sb__sq_write(sb__sq_db(s), do_provider_delete, &op, err);
}

/* Runs one UPDATE ... WHERE identifier = ?1 with ?2 = an integer, ?3 = now;
 * no row is SB_E_NOT_FOUND. */
struct set_op {
    const char *sql;
    const char *noun;
    const char *id;
    int64_t value;
    const char *text; /* ?4 when not NULL */
};

static sb_err do_set(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct set_op *op = ud;
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, op->sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, op->id);
    sqlite3_bind_int64(st, 2, op->value);
    sqlite3_bind_int64(st, 3, sb__sq_now_ms());
    if (op->text)
        sb__sq_bind_str(st, 4, op->text);
    rc = run(db, st, op->noun, op->id, err);
    if (rc == SB_OK && sqlite3_changes(db) == 0)
        rc = sb_fail(err, SB_E_NOT_FOUND, "%s '%.128s' not found", op->noun, op->id ? op->id : "");
    return rc;
}

sb_err sb__sq_provider_set_enabled(struct sb_store *s, const char *id, bool on,
                                   struct sb_error *err)
{
    struct set_op op = {"UPDATE providers SET status = CASE WHEN ?2 = 1 THEN 'active'"
                        " ELSE 'inactive' END, api_set = api_set | 1, updated_at = ?3"
                        " WHERE identifier = ?1",
                        "provider", id, on ? 1 : 0, NULL};
    return sb__sq_write(sb__sq_db(s), do_set, &op, err);
}

/* Not a registry change (routing does not read it): no version bump, so a
 * test does not rebuild every worker's snapshot. */
sb_err sb__sq_provider_set_test(struct sb_store *s, const char *id, int64_t when_ms,
                                const char *result, struct sb_error *err)
{
    struct set_op op = {"UPDATE providers SET last_tested = ?2, test_result = ?4"
                        " WHERE identifier = ?1",
                        "provider", id, when_ms, result};
    sb_err rc = need(result, "test_result", err);
    if (rc == SB_OK)
        rc = do_set(sb__sq_db(s), &op, err);
    return rc;
}

/* ---- models ---- */

struct model_op {
    const char *id; /* the row an update or delete names */
    const struct sb_store_model *m;
};

static const char model_insert[] =
    "INSERT INTO models(provider_id, identifier, upstream_model, name, description,"
    " context_length, max_output_tokens, capabilities, pricing, status, fallback_priority,"
    " owner_user_id, is_global, is_system, created_at, updated_at, options)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, ?14, ?14, ?15)";

static const char model_update[] =
    "UPDATE models SET provider_id = ?1, upstream_model = ?3, name = ?4, description = ?5,"
    " context_length = ?6, max_output_tokens = ?7, capabilities = ?8, pricing = ?9,"
    " status = ?10, fallback_priority = ?11, updated_at = ?14, options = ?15"
    " WHERE identifier = ?2";

static const char *const model_statuses[] = {"active", "inactive", "deprecated"};

static sb_err check_model(const struct sb_store_model *m, struct sb_error *err)
{
    sb_err rc = need(m->provider, "provider", err);
    if (rc != SB_OK || !m->status)
        return rc;
    for (size_t i = 0; i < sizeof(model_statuses) / sizeof(model_statuses[0]); i++)
        if (strcmp(m->status, model_statuses[i]) == 0)
            return SB_OK;
    return sb_fail_field(err, SB_E_BAD_REQUEST, "status",
                         "unknown status '%.40s' (active, inactive or deprecated)", m->status);
}

/* Binds ?1..?15 of model_insert / model_update and steps it. */
static sb_err write_model(sqlite3 *db, const char *sql, int64_t pid, const char *id,
                          const struct sb_store_model *m, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf caps, pricing, options;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb_buf_init(&caps, 0);
    sb_buf_init(&pricing, 0);
    sb_buf_init(&options, 0);
    sb__enc_caps(m, &caps);
    sb__enc_pricing(m, &pricing);
    sb__enc_model_options(m, &options);
    sqlite3_bind_int64(st, 1, pid);
    sb__sq_bind_str(st, 2, id);
    sb__sq_bind_str(st, 3, m->upstream_model ? m->upstream_model : id);
    sb__sq_bind_str(st, 4, m->name ? m->name : id);
    sb__sq_bind_str(st, 5, m->description);
    sqlite3_bind_int64(st, 6, m->context_length);
    sqlite3_bind_int64(st, 7, m->max_output_tokens);
    sb__sq_bind_str(st, 8, caps.p);
    sb__sq_bind_str(st, 9, pricing.p);
    sb__sq_bind_str(st, 10, m->status ? m->status : m->enabled ? "active" : "inactive");
    sqlite3_bind_int64(st, 11, m->fallback_priority);
    sb__sq_bind_str(st, 12, m->owner);
    sqlite3_bind_int(st, 13, m->owner ? 0 : 1);
    sqlite3_bind_int64(st, 14, sb__sq_now_ms());
    sb__sq_bind_str(st, 15, options.p);
    rc = run(db, st, "model", id, err);
    sb_buf_free(&caps);
    sb_buf_free(&pricing);
    sb_buf_free(&options);
    return rc;
}

/* The row id of the provider a model names; unknown is the caller's mistake. */
static sb_err model_provider(sqlite3 *db, const char *provider, int64_t *pid, struct sb_error *err)
{
    sb_err rc = sb__sq_find(db, "providers", "provider", provider, pid, NULL, err);
    if (rc == SB_E_NOT_FOUND)
        rc =
            sb_fail_field(err, SB_E_BAD_REQUEST, "provider", "unknown provider '%.128s'", provider);
    return rc;
}

static sb_err insert_model(sqlite3 *db, int64_t pid, const struct sb_store_model *m,
                           struct sb_error *err)
{
    sb_err rc = check_id(m->id, ID_MODEL, "model", err);
    if (rc == SB_OK)
        rc = write_model(db, model_insert, pid, m->id, m, err);
    return rc;
}

static sb_err do_model_create(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct model_op *op = ud;
    int64_t pid = 0;
    sb_err rc = model_provider(db, op->m->provider, &pid, err);
    if (rc == SB_OK)
        rc = insert_model(db, pid, op->m, err);
    return rc;
}

sb_err sb__sq_model_create(struct sb_store *s, const struct sb_store_model *m, struct sb_error *err)
{
    struct model_op op = {.m = m};
    sb_err rc = check_id(m->id, ID_MODEL, "model", err);
    if (rc == SB_OK)
        rc = check_model(m, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_model_create, &op, err);
    return rc;
}

static sb_err do_model_update(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct model_op *op = ud;
    int64_t rowid = 0, pid = 0;
    sb_err rc = find_editable(db, "models", "model", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = model_provider(db, op->m->provider, &pid, err);
    if (rc == SB_OK)
        rc = write_model(db, model_update, pid, op->id, op->m, err);
    return rc;
}

sb_err sb__sq_model_update(struct sb_store *s, const char *id, const struct sb_store_model *m,
                           struct sb_error *err)
{
    struct model_op op = {.id = id, .m = m};
    sb_err rc = check_same_id(id, m->id, err);
    if (rc == SB_OK)
        rc = check_model(m, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_model_update, &op, err);
    return rc;
}

static sb_err do_model_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct model_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = find_editable(db, "models", "model", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = delete_row(db, "models", rowid, err);
    return rc;
}

sb_err sb__sq_model_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct model_op op = {.id = id};
    return sb__sq_write(sb__sq_db(s), do_model_delete, &op, err);
}

/* ---- model ordering ---- */

/* api_set bit 1 (status) and 2 (priority): see SB__API_SET_* and sync_system. */
sb_err sb__sq_model_set_enabled(struct sb_store *s, const char *id, bool on, struct sb_error *err)
{
    /* On: an inactive model becomes active, a deprecated one stays deprecated. */
    struct set_op op = {"UPDATE models SET status = CASE WHEN ?2 = 0 THEN 'inactive'"
                        " WHEN status = 'inactive' THEN 'active' ELSE status END,"
                        " api_set = api_set | 1, updated_at = ?3 WHERE identifier = ?1",
                        "model", id, on ? 1 : 0, NULL};
    return sb__sq_write(sb__sq_db(s), do_set, &op, err);
}

static const char set_priority_sql[] = "UPDATE models SET fallback_priority = ?2,"
                                       " api_set = api_set | 2, updated_at = ?3"
                                       " WHERE identifier = ?1";

sb_err sb__sq_model_set_priority(struct sb_store *s, const char *id, int64_t priority,
                                 struct sb_error *err)
{
    struct set_op op = {set_priority_sql, "model", id, priority, NULL};
    return sb__sq_write(sb__sq_db(s), do_set, &op, err);
}

struct reorder_op {
    const char *const *ids;
    size_t n;
};

static sb_err do_reorder(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct reorder_op *op = ud;
    sb_err rc = SB_OK;
    for (size_t i = 0; rc == SB_OK && i < op->n; i++) {
        struct set_op set = {set_priority_sql, "model", op->ids[i], (int64_t)i + 1, NULL};
        rc = do_set(db, &set, err);
        if (rc == SB_E_NOT_FOUND) {
            char field[32];
            snprintf(field, sizeof(field), "ids[%zu]", i);
            rc = sb_fail_field(err, SB_E_NOT_FOUND, field, "model '%.128s' not found", op->ids[i]);
        }
    }
    return rc;
}

sb_err sb__sq_model_reorder(struct sb_store *s, const char *const *ids, size_t n,
                            struct sb_error *err)
{
    struct reorder_op op = {ids, n};
    if (n == 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "ids", "ids must list at least one model");
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "ids[%zu]", i);
        if (!ids[i])
            return sb_fail_field(err, SB_E_BAD_REQUEST, field, "a model id is required");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ids[i], ids[j]) == 0)
                return sb_fail_field(err, SB_E_BAD_REQUEST, field, "model '%.128s' is listed twice",
                                     ids[i]);
    }
    return sb__sq_write(sb__sq_db(s), do_reorder, &op, err);
}

/* Makes id the only model of its provider with flag set (a column of ours). */
struct flag_op {
    const char *column; /* is_champion | is_default */
    const char *id;
};

/* One statement: the subquery finds the provider; no row changed means the
 * model does not exist. */
static sb_err do_flag(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct flag_op *op = ud;
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE models SET %s = CASE WHEN identifier = ?1 THEN 1 ELSE 0 END,"
             " updated_at = ?3 WHERE provider_id ="
             " (SELECT provider_id FROM models WHERE identifier = ?1)",
             op->column);
    struct set_op set = {sql, "model", op->id, 0, NULL};
    return do_set(db, &set, err);
}

sb_err sb__sq_model_set_champion(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct flag_op op = {"is_champion", id};
    return sb__sq_write(sb__sq_db(s), do_flag, &op, err);
}

sb_err sb__sq_model_set_default(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct flag_op op = {"is_default", id};
    return sb__sq_write(sb__sq_db(s), do_flag, &op, err);
}

/* ---- routes ---- */

struct route_op {
    const char *id;
    const struct sb_store_route *r;
};

static const char route_insert[] =
    "INSERT INTO routes(identifier, strategy, targets, weights, is_system, created_at,"
    " updated_at, options) VALUES(?1, ?2, ?3, ?4, 0, ?5, ?5, ?6)";

static const char route_update[] = "UPDATE routes SET strategy = ?2, targets = ?3, weights = ?4,"
                                   " updated_at = ?5, options = ?6 WHERE identifier = ?1";

static sb_err check_route(const struct sb_store_route *r, struct sb_error *err)
{
    if (r->ntargets == 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "targets", "at least one target is required");
    for (size_t i = 0; i < r->ntargets; i++) {
        if (!r->targets[i] || !*r->targets[i])
            return sb_fail_field(err, SB_E_BAD_REQUEST, "targets", "a target is empty");
        if (r->weights && r->weights[i] < 0)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "weights", "weights must not be negative");
    }
    return SB_OK;
}

static sb_err write_route(sqlite3 *db, const char *sql, const char *id,
                          const struct sb_store_route *r, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    struct sb_buf targets, weights, options;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb_buf_init(&targets, 0);
    sb_buf_init(&weights, 0);
    sb_buf_init(&options, 0);
    sb__enc_targets(r, &targets);
    sb__enc_weights(r, &weights);
    sb__enc_route_options(r, &options);
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, r->strategy ? r->strategy : "priority");
    sb__sq_bind_str(st, 3, targets.p);
    sb__sq_bind_str(st, 4, weights.len ? weights.p : NULL);
    sqlite3_bind_int64(st, 5, sb__sq_now_ms());
    sb__sq_bind_str(st, 6, options.p);
    rc = run(db, st, "route", id, err);
    sb_buf_free(&targets);
    sb_buf_free(&weights);
    sb_buf_free(&options);
    return rc;
}

static sb_err do_route_create(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct route_op *op = ud;
    return write_route(db, route_insert, op->r->id, op->r, err);
}

sb_err sb__sq_route_create(struct sb_store *s, const struct sb_store_route *r, struct sb_error *err)
{
    struct route_op op = {.r = r};
    sb_err rc = check_id(r->id, ID_MODEL, "route", err);
    if (rc == SB_OK)
        rc = check_route(r, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_route_create, &op, err);
    return rc;
}

static sb_err do_route_update(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct route_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = find_editable(db, "routes", "route", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = write_route(db, route_update, op->id, op->r, err);
    return rc;
}

sb_err sb__sq_route_update(struct sb_store *s, const char *id, const struct sb_store_route *r,
                           struct sb_error *err)
{
    struct route_op op = {.id = id, .r = r};
    sb_err rc = check_same_id(id, r->id, err);
    if (rc == SB_OK)
        rc = check_route(r, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_route_update, &op, err);
    return rc;
}

/* A delete of table's row named id (no children to check). */
struct delete_op {
    const char *table, *noun, *id;
};

static sb_err do_delete(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct delete_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = find_editable(db, op->table, op->noun, op->id, &rowid, err);
    if (rc == SB_OK)
        rc = delete_row(db, op->table, rowid, err);
    return rc;
}

sb_err sb__sq_route_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct delete_op op = {"routes", "route", id};
    return sb__sq_write(sb__sq_db(s), do_delete, &op, err);
}

/* ---- templates ---- */

struct template_op {
    const char *id;
    const struct sb_store_template *t;
};

static const char template_insert[] =
    "INSERT INTO templates(identifier, name, description, type, base_url, auth_method, options,"
    " models, is_system, owner_user_id, created_at, updated_at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?10)";

static const char template_update[] =
    "UPDATE templates SET name = ?2, description = ?3, type = ?4, base_url = ?5,"
    " auth_method = ?6, options = ?7, models = ?8, updated_at = ?10 WHERE identifier = ?1";

/* text (NULL = empty) must be a JSON document of the given type. */
static sb_err check_json(const char *text, enum sb_json_type type, const char *field,
                         struct sb_error *err)
{
    static const struct sb_json_limits lim = {.max_depth = 16, .max_bytes = 1 << 20};
    struct sb_arena *a = NULL;
    struct sb_json *j = NULL;
    struct sb_error why = {0};
    if (!text)
        return SB_OK;
    a = sb_arena_create(4096);
    sb_err rc = sb_json_parse(a, text, strlen(text), &lim, &j, &why);
    if (rc != SB_OK)
        rc = sb_fail_field(err, SB_E_BAD_REQUEST, field, "%s: %s", field, why.msg);
    else if (j->type != type)
        rc = sb_fail_field(err, SB_E_BAD_REQUEST, field, "%s must be a JSON %s", field,
                           type == SB_JSON_ARRAY ? "array" : "object");
    sb_arena_free(a);
    return rc;
}

static sb_err check_template(const struct sb_store_template *t, struct sb_error *err)
{
    sb_err rc = need(t->type, "type", err);
    if (rc == SB_OK)
        rc = check_json(t->options, SB_JSON_OBJECT, "options", err);
    if (rc == SB_OK)
        rc = check_json(t->models, SB_JSON_ARRAY, "models", err);
    return rc;
}

static sb_err write_template(sqlite3 *db, const char *sql, const char *id,
                             const struct sb_store_template *t, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    sb__sq_bind_str(st, 2, t->name ? t->name : id);
    sb__sq_bind_str(st, 3, t->description);
    sb__sq_bind_str(st, 4, t->type);
    sb__sq_bind_str(st, 5, t->base_url);
    sb__sq_bind_str(st, 6, t->auth_method ? t->auth_method : "bearer");
    sb__sq_bind_str(st, 7, t->options ? t->options : "{}");
    sb__sq_bind_str(st, 8, t->models ? t->models : "[]");
    sb__sq_bind_str(st, 9, t->owner);
    sqlite3_bind_int64(st, 10, sb__sq_now_ms());
    return run(db, st, "template", id, err);
}

static sb_err do_template_create(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct template_op *op = ud;
    return write_template(db, template_insert, op->t->id, op->t, err);
}

sb_err sb__sq_template_create(struct sb_store *s, const struct sb_store_template *t,
                              struct sb_error *err)
{
    struct template_op op = {.t = t};
    sb_err rc = check_id(t->id, ID_SLUG, "template", err);
    if (rc == SB_OK)
        rc = check_template(t, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_template_create, &op, err);
    return rc;
}

static sb_err do_template_update(sqlite3 *db, void *ud, struct sb_error *err)
{
    struct template_op *op = ud;
    int64_t rowid = 0;
    sb_err rc = find_editable(db, "templates", "template", op->id, &rowid, err);
    if (rc == SB_OK)
        rc = write_template(db, template_update, op->id, op->t, err);
    return rc;
}

sb_err sb__sq_template_update(struct sb_store *s, const char *id, const struct sb_store_template *t,
                              struct sb_error *err)
{
    struct template_op op = {.id = id, .t = t};
    sb_err rc = check_same_id(id, t->id, err);
    if (rc == SB_OK)
        rc = check_template(t, err);
    if (rc == SB_OK)
        rc = sb__sq_write(sb__sq_db(s), do_template_update, &op, err);
    return rc;
}

sb_err sb__sq_template_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    struct delete_op op = {"templates", "template", id};
    return sb__sq_write(sb__sq_db(s), do_delete, &op, err);
}
