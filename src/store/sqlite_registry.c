/* SPDX-License-Identifier: MIT */
/*
 * sqlite_registry.c - reading the registry: get, list, load, and the helpers
 * every registry write shares (one transaction that bumps registry_version,
 * conflict and not-found errors).
 *
 * One table of entity kinds drives get and list: the SELECT of each kind,
 * its row reader and its filter. Lists filter and page in C, not in SQL:
 * registry tables hold hundreds of rows, the capability filter would need
 * JSON operators that SQLite and PostgreSQL spell differently, and one code
 * path serves both backends' semantics. Writes live in
 * sqlite_registry_edit.c, credentials in sqlite_credentials.c.
 *
 * Chapters: shared write helpers · row readers · kinds · get and list · load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "store/sqlite_int.h"
#include "store/store.h"

/* ---- shared write helpers ---- */

sb_err sb__sq_bump_version(sqlite3 *db, struct sb_error *err)
{
    sqlite3_stmt *st = NULL;
    /* The row exists from migration 2; the upsert also heals a deleted one. */
    sb_err rc = sb__sq_prepare(
        db,
        "INSERT INTO settings(key, value, updated_at) VALUES('registry_version', '1', ?1)"
        " ON CONFLICT(key) DO UPDATE SET"
        " value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT), updated_at = ?1",
        &st, err);
    if (rc != SB_OK)
        return rc;
    sqlite3_bind_int64(st, 1, sb__sq_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sb__sq_fail(db, err, "bump registry_version");
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_write(sqlite3 *db, sb__sq_write_fn fn, void *ud, struct sb_error *err)
{
    sb_err rc = sb__sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == SB_OK)
        rc = fn(db, ud, err);
    if (rc == SB_OK)
        rc = sb__sq_bump_version(db, err);
    if (rc == SB_OK)
        rc = sb__sq_exec(db, "COMMIT", err);
    if (rc != SB_OK)
        sb__sq_rollback(db);
    return rc;
}

sb_err sb__sq_step_write(sqlite3 *db, sqlite3_stmt *st, const char *noun, const char *id,
                         struct sb_error *err)
{
    if (sqlite3_step(st) == SQLITE_DONE)
        return SB_OK;
    if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
        return sb_fail_field(err, SB_E_CONFLICT, "id", "%s '%.128s' already exists", noun, id);
    return sb_fail(err, SB_E_STORE, "sqlite: %s '%.128s': %s", noun, id, sqlite3_errmsg(db));
}

sb_err sb__sq_find(sqlite3 *db, const char *table, const char *noun, const char *id, int64_t *rowid,
                   bool *is_system, struct sb_error *err)
{
    char sql[96];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "SELECT id, is_system FROM %s WHERE identifier = ?", table);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *rowid = sqlite3_column_int64(st, 0);
        if (is_system)
            *is_system = sqlite3_column_int(st, 1) != 0;
    } else if (step == SQLITE_DONE) {
        rc = sb_fail(err, SB_E_NOT_FOUND, "%s '%.128s' not found", noun, id ? id : "");
    } else {
        rc = sb__sq_fail(db, err, noun);
    }
    sqlite3_finalize(st);
    return rc;
}

sb_err sb__sq_registry_version(struct sb_store *s, int64_t *out, struct sb_error *err)
{
    char *v = NULL;
    *out = 0;
    sb_err rc = s->ops->setting_get(s, "registry_version", &v, err);
    if (rc == SB_OK && v) {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (end == v || *end)
            rc = sb_fail(err, SB_E_STORE, "settings: registry_version is not an integer");
        else
            *out = n;
    }
    free(v);
    return rc;
}

/* ---- row readers ---- */

typedef sb_err (*read_fn)(struct sb_arena *a, sqlite3_stmt *st, void *out, struct sb_error *err);

static const char provider_cols[] =
    "SELECT p.id, p.identifier, p.name, p.type, p.base_url, p.auth_method, p.auth_config,"
    " p.options, p.rate_limits, p.status, p.is_system, p.description, p.created_by,"
    " p.created_at, p.updated_at, p.last_tested, p.test_result, c.key_ciphertext, c.key_id,"
    " c.masked FROM providers p LEFT JOIN provider_credentials c"
    " ON c.provider_id = p.id AND c.user_id IS NULL AND c.label = ''";

static sb_err read_provider(struct sb_arena *a, sqlite3_stmt *st, void *out, struct sb_error *err)
{
    struct sb_store_provider *p = out;
    p->id = sb__sq_col_str(a, st, 1);
    p->name = sb__sq_col_str(a, st, 2);
    p->type = sb__sq_col_str(a, st, 3);
    p->base_url = sb__sq_col_str(a, st, 4);
    p->auth_method = sb__sq_col_str(a, st, 5);
    const char *status = (const char *)sqlite3_column_text(st, 9);
    p->enabled = status && strcmp(status, "active") == 0;
    p->is_system = sqlite3_column_int(st, 10) != 0;
    p->description = sb__sq_col_str(a, st, 11);
    p->created_by = sb__sq_col_str(a, st, 12);
    p->created_at = sqlite3_column_int64(st, 13);
    p->updated_at = sqlite3_column_int64(st, 14);
    p->last_tested = sqlite3_column_int64(st, 15);
    p->test_result = sb__sq_col_str(a, st, 16);
    p->key_ciphertext = sb__sq_col_str(a, st, 17);
    p->key_id = sb__sq_col_str(a, st, 18);
    p->key_masked = sb__sq_col_str(a, st, 19);
    sb_err rc = sb__dec_auth(a, sb__sq_col_str(a, st, 6), p, err);
    if (rc == SB_OK)
        rc = sb__dec_options(a, sb__sq_col_str(a, st, 7), p, err);
    if (rc == SB_OK)
        rc = sb__dec_rate_limits(a, sb__sq_col_str(a, st, 8), p, err);
    return rc;
}

static const char model_cols[] =
    "SELECT p.identifier, m.identifier, m.upstream_model, m.name, m.context_length,"
    " m.max_output_tokens, m.capabilities, m.pricing, m.status, m.fallback_priority,"
    " m.is_system, m.description, m.is_default, m.is_champion, m.owner_user_id, m.created_at,"
    " m.updated_at, m.options, m.last_used_at FROM models m JOIN providers p ON p.id = m.provider_id";

static sb_err read_model(struct sb_arena *a, sqlite3_stmt *st, void *out, struct sb_error *err)
{
    struct sb_store_model *m = out;
    m->provider = sb__sq_col_str(a, st, 0);
    m->id = sb__sq_col_str(a, st, 1);
    m->upstream_model = sb__sq_col_str(a, st, 2);
    m->name = sb__sq_col_str(a, st, 3);
    m->context_length = sqlite3_column_int64(st, 4);
    m->max_output_tokens = sqlite3_column_int64(st, 5);
    m->status = sb__sq_col_str(a, st, 8);
    /* deprecated models still serve; only inactive ones are switched off. */
    m->enabled = m->status && strcmp(m->status, "inactive") != 0;
    m->fallback_priority = sqlite3_column_int64(st, 9);
    m->is_system = sqlite3_column_int(st, 10) != 0;
    m->description = sb__sq_col_str(a, st, 11);
    m->is_default = sqlite3_column_int(st, 12) != 0;
    m->is_champion = sqlite3_column_int(st, 13) != 0;
    m->owner = sb__sq_col_str(a, st, 14);
    m->created_at = sqlite3_column_int64(st, 15);
    m->updated_at = sqlite3_column_int64(st, 16);
    m->last_used_at = sqlite3_column_int64(st, 18); /* NULL reads as 0: never */
    m->caps.streaming = true;
    sb_err rc = sb__dec_caps(a, sb__sq_col_str(a, st, 6), m, err);
    if (rc == SB_OK)
        rc = sb__dec_pricing(a, sb__sq_col_str(a, st, 7), m, err);
    if (rc == SB_OK)
        rc = sb__dec_model_options(a, sb__sq_col_str(a, st, 17), m, err);
    return rc;
}

static const char route_cols[] =
    "SELECT identifier, strategy, targets, is_system, weights, created_at, updated_at, options"
    " FROM routes";

static sb_err read_route(struct sb_arena *a, sqlite3_stmt *st, void *out, struct sb_error *err)
{
    struct sb_store_route *r = out;
    r->id = sb__sq_col_str(a, st, 0);
    r->strategy = sb__sq_col_str(a, st, 1);
    r->is_system = sqlite3_column_int(st, 3) != 0;
    r->created_at = sqlite3_column_int64(st, 5);
    r->updated_at = sqlite3_column_int64(st, 6);
    sb_err rc = sb__dec_targets(a, sb__sq_col_str(a, st, 2), r, err);
    if (rc == SB_OK)
        rc = sb__dec_weights(a, sb__sq_col_str(a, st, 4), r, err);
    if (rc == SB_OK)
        rc = sb__dec_route_options(a, sb__sq_col_str(a, st, 7), r, err);
    return rc;
}

static const char template_cols[] =
    "SELECT identifier, name, description, type, base_url, auth_method, options, models,"
    " is_system, owner_user_id, created_at, updated_at FROM templates";

static sb_err read_template(struct sb_arena *a, sqlite3_stmt *st, void *out, struct sb_error *err)
{
    struct sb_store_template *t = out;
    (void)err;
    t->id = sb__sq_col_str(a, st, 0);
    t->name = sb__sq_col_str(a, st, 1);
    t->description = sb__sq_col_str(a, st, 2);
    t->type = sb__sq_col_str(a, st, 3);
    t->base_url = sb__sq_col_str(a, st, 4);
    t->auth_method = sb__sq_col_str(a, st, 5);
    t->options = sb__sq_col_str(a, st, 6);
    t->models = sb__sq_col_str(a, st, 7);
    t->is_system = sqlite3_column_int(st, 8) != 0;
    t->owner = sb__sq_col_str(a, st, 9);
    t->created_at = sqlite3_column_int64(st, 10);
    t->updated_at = sqlite3_column_int64(st, 11);
    return SB_OK;
}

/* ---- kinds ---- */

/* Which filter members a list honours. */
enum { F_PROVIDER = 1, F_ENABLED = 2, F_CAPABILITY = 4, F_VISIBLE = 8 };

/* visible_to: global rows (owner NULL) plus the user's own. */
static bool visible(const char *owner, const char *visible_to)
{
    return !visible_to || !owner || strcmp(owner, visible_to) == 0;
}

static bool tri_ok(enum sb_store_tri t, bool v)
{
    return t == SB_STORE_ANY || (t == SB_STORE_YES) == v;
}

static bool match_provider(const void *row, const struct sb_store_filter *f)
{
    return tri_ok(f->enabled, ((const struct sb_store_provider *)row)->enabled);
}

static bool match_model(const void *row, const struct sb_store_filter *f)
{
    const struct sb_store_model *m = row;
    return tri_ok(f->enabled, m->enabled) && visible(m->owner, f->visible_to) &&
           (!f->provider || strcmp(m->provider, f->provider) == 0) &&
           (!f->capability || sb__cap_value(&m->caps, f->capability) == 1);
}

static bool match_route(const void *row, const struct sb_store_filter *f)
{
    (void)row;
    (void)f;
    return true;
}

static bool match_template(const void *row, const struct sb_store_filter *f)
{
    return visible(((const struct sb_store_template *)row)->owner, f->visible_to);
}

struct kind {
    const char *noun;  /* for messages */
    const char *cols;  /* SELECT ... FROM ... */
    const char *key;   /* the identifier column, for get */
    const char *order; /* list order */
    size_t size;       /* of the entity struct */
    read_fn read;
    bool (*match)(const void *row, const struct sb_store_filter *f);
    unsigned honours; /* F_* */
};

static const struct kind providers = {
    "provider",    provider_cols,  "p.identifier", "p.identifier", sizeof(struct sb_store_provider),
    read_provider, match_provider, F_ENABLED};
static const struct kind models = {"model",
                                   model_cols,
                                   "m.identifier",
                                   "m.fallback_priority, m.identifier",
                                   sizeof(struct sb_store_model),
                                   read_model,
                                   match_model,
                                   F_PROVIDER | F_ENABLED | F_CAPABILITY | F_VISIBLE};
static const struct kind routes = {
    "route",     route_cols, "identifier", "identifier", sizeof(struct sb_store_route), read_route,
    match_route, 0};
static const struct kind templates = {
    "template",    template_cols,  "identifier", "identifier", sizeof(struct sb_store_template),
    read_template, match_template, F_VISIBLE};

/* ---- get and list ---- */

union any_row {
    struct sb_store_provider p;
    struct sb_store_model m;
    struct sb_store_route r;
    struct sb_store_template t;
};

static sb_err get(struct sb_store *s, const struct kind *k, const char *id, struct sb_arena *a,
                  void *out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    sqlite3_stmt *st = NULL;
    char sql[1024];
    memset(out, 0, k->size);
    snprintf(sql, sizeof(sql), "%s WHERE %s = ?", k->cols, k->key);
    sb_err rc = sb__sq_prepare(db, sql, &st, err);
    if (rc != SB_OK)
        return rc;
    sb__sq_bind_str(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = k->read(a, st, out, err);
    else if (step == SQLITE_DONE)
        rc = sb_fail(err, SB_E_NOT_FOUND, "%s '%.128s' not found", k->noun, id ? id : "");
    else
        rc = sb__sq_fail(db, err, k->noun);
    sqlite3_finalize(st);
    return rc;
}

/* Refuses filter members a kind does not honour, and bad values. */
static sb_err check_filter(const struct kind *k, const struct sb_store_filter *f,
                           struct sb_error *err)
{
    static const struct sb_store_caps none;
    const struct {
        unsigned bit;
        bool set;
        const char *name;
    } members[] = {
        {F_PROVIDER, f->provider != NULL, "provider"},
        {F_ENABLED, f->enabled != SB_STORE_ANY, "enabled"},
        {F_CAPABILITY, f->capability != NULL, "capability"},
        {F_VISIBLE, f->visible_to != NULL, "visible_to"},
    };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
        if (members[i].set && !(k->honours & members[i].bit))
            return sb_fail_field(err, SB_E_BAD_REQUEST, members[i].name,
                                 "%ss cannot be filtered by %s", k->noun, members[i].name);
    if (f->limit < 0 || f->offset < 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, f->limit < 0 ? "limit" : "offset",
                             "limit and offset must not be negative");
    if (f->capability && sb__cap_value(&none, f->capability) < 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "capability",
                             "unknown capability '%.40s' (streaming, tools, vision, json_mode, "
                             "embeddings)",
                             f->capability);
    return SB_OK;
}

/* Reads every row of kind k in list order, keeps those f matches within
 * [offset, offset + limit). Rows outside the page are decoded too (their
 * strings stay in a): the tables are small, see the opening comment. */
static sb_err list(sqlite3 *db, const struct kind *k, const struct sb_store_filter *f,
                   struct sb_arena *a, void **out, struct sb_store_page *page, struct sb_error *err)
{
    static const struct sb_store_filter all;
    struct sb__vec v = {.size = k->size};
    sqlite3_stmt *st = NULL;
    union any_row row;
    char sql[1024];
    f = f ? f : &all;
    *page = (struct sb_store_page){0};
    sb_err rc = check_filter(k, f, err);
    snprintf(sql, sizeof(sql), "%s ORDER BY %s", k->cols, k->order);
    if (rc == SB_OK)
        rc = sb__sq_prepare(db, sql, &st, err);
    while (rc == SB_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = sb__sq_fail(db, err, k->noun);
            break;
        }
        memset(&row, 0, sizeof(row));
        rc = k->read(a, st, &row, err);
        if (rc != SB_OK || !k->match(&row, f))
            continue;
        if (page->total >= f->offset && (f->limit == 0 || (int64_t)v.n < f->limit))
            memcpy(sb__vec_push(&v), &row, k->size);
        page->total++;
    }
    sqlite3_finalize(st);
    page->n = v.n;
    *out = sb__vec_to_arena(&v, a);
    return rc;
}

sb_err sb__sq_provider_get(struct sb_store *s, const char *id, struct sb_arena *a,
                           struct sb_store_provider *out, struct sb_error *err)
{
    return get(s, &providers, id, a, out, err);
}

sb_err sb__sq_model_get(struct sb_store *s, const char *id, const char *visible_to,
                        struct sb_arena *a, struct sb_store_model *out, struct sb_error *err)
{
    sb_err rc = get(s, &models, id, a, out, err);
    if (rc == SB_OK && !visible(out->owner, visible_to))
        rc = sb_fail(err, SB_E_NOT_FOUND, "model '%.128s' not found", id);
    return rc;
}

sb_err sb__sq_route_get(struct sb_store *s, const char *id, struct sb_arena *a,
                        struct sb_store_route *out, struct sb_error *err)
{
    return get(s, &routes, id, a, out, err);
}

sb_err sb__sq_template_get(struct sb_store *s, const char *id, const char *visible_to,
                           struct sb_arena *a, struct sb_store_template *out, struct sb_error *err)
{
    sb_err rc = get(s, &templates, id, a, out, err);
    if (rc == SB_OK && !visible(out->owner, visible_to))
        rc = sb_fail(err, SB_E_NOT_FOUND, "template '%.128s' not found", id);
    return rc;
}

sb_err sb__sq_provider_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_provider **out, struct sb_store_page *page,
                            struct sb_error *err)
{
    return list(sb__sq_db(s), &providers, f, a, (void **)out, page, err);
}

sb_err sb__sq_model_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_model **out, struct sb_store_page *page,
                         struct sb_error *err)
{
    return list(sb__sq_db(s), &models, f, a, (void **)out, page, err);
}

sb_err sb__sq_route_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                         struct sb_store_route **out, struct sb_store_page *page,
                         struct sb_error *err)
{
    return list(sb__sq_db(s), &routes, f, a, (void **)out, page, err);
}

sb_err sb__sq_template_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                            struct sb_store_template **out, struct sb_store_page *page,
                            struct sb_error *err)
{
    return list(sb__sq_db(s), &templates, f, a, (void **)out, page, err);
}

/* ---- load ---- */

static sb_err load_all(sqlite3 *db, struct sb_store_entities *e, struct sb_error *err)
{
    struct sb_store_page pg;
    sb_err rc = list(db, &providers, NULL, e->arena, (void **)&e->providers, &pg, err);
    e->nproviders = pg.n;
    if (rc == SB_OK)
        rc = list(db, &models, NULL, e->arena, (void **)&e->models, &pg, err);
    e->nmodels = pg.n;
    if (rc == SB_OK)
        rc = list(db, &routes, NULL, e->arena, (void **)&e->routes, &pg, err);
    e->nroutes = pg.n;
    if (rc == SB_OK)
        rc = list(db, &templates, NULL, e->arena, (void **)&e->templates, &pg, err);
    e->ntemplates = pg.n;
    if (rc == SB_OK)
        rc = sb__sq_personal_credentials(db, e->arena, &e->credentials, &e->ncredentials, err);
    if (rc == SB_OK) /* key pools (sqlite_credentials.c) */
        rc = sb__sq_pool_credentials(db, e->arena, &e->pool, &e->npool, err);
    if (rc == SB_OK)
        rc = sb__sq_dead_keys(db, e->arena, &e->dead_keys, &e->ndead_keys, err);
    if (rc == SB_OK) /* A/B experiments (sqlite_experiments.c) */
        rc = sb__sq_experiments_all(db, e->arena, &e->experiments, &e->nexperiments, err);
    return rc;
}

sb_err sb__sq_load(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err)
{
    sqlite3 *db = sb__sq_db(s);
    struct sb_arena *a = sb_arena_create(16384);
    struct sb_store_entities *e = sb_arena_calloc(a, sizeof(*e));
    e->arena = a;
    *out = NULL;
    /* One read transaction: every query sees the same state. */
    sb_err rc = sb__sq_exec(db, "BEGIN", err);
    if (rc == SB_OK)
        rc = load_all(db, e, err);
    sb__sq_rollback(db); /* read-only: ending it either way is the same */
    if (rc == SB_OK)
        *out = e;
    else
        sb_arena_free(a);
    return rc;
}
