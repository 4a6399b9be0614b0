/* SPDX-License-Identifier: MIT */
/*
 * store.c - picks a store backend from the URL scheme and forwards calls.
 *
 * The scheme table is the only place that knows which backends exist; the
 * wrappers exist so callers never reach into the ops table themselves. No
 * SQL here.
 */
#include "store/store.h"

#include <string.h>

#include "core/slice.h"

typedef sb_err (*sb_store_open_fn)(const char *rest, struct sb_store **out, struct sb_error *err);

static sb_err open_postgres(const char *rest, struct sb_store **out, struct sb_error *err)
{
    (void)rest;
    (void)out;
    return sb_fail(err, SB_E_CONFIG,
                   "database: the PostgreSQL store is not built yet; use sqlite:PATH");
}

static const struct {
    const char *prefix; /* matched at the start of the URL */
    bool keep_prefix;   /* pass the whole URL (postgres) or the rest (sqlite) */
    sb_store_open_fn open;
} schemes[] = {
    {"sqlite:", false, sb__sqlite_open},
    {"postgres://", true, open_postgres},
    {"postgresql://", true, open_postgres},
};

sb_err sb_store_open(const char *url, struct sb_store **out, struct sb_error *err)
{
    *out = NULL;
    struct sb_slice u = sb_slice_cstr(url);
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        struct sb_slice pre = sb_slice_cstr(schemes[i].prefix);
        if (!sb_slice_starts_with(u, pre))
            continue;
        return schemes[i].open(schemes[i].keep_prefix ? url : url + pre.len, out, err);
    }
    return sb_fail(err, SB_E_CONFIG,
                   "database: unknown URL scheme (use sqlite:PATH or postgres://...)");
}

void sb_store_close(struct sb_store *s)
{
    if (s)
        s->ops->close(s);
}

void sb_store_entities_free(struct sb_store_entities *e)
{
    /* The struct itself is allocated from its own arena. */
    if (e)
        sb_arena_free(e->arena);
}

sb_err sb_store_migrate(struct sb_store *s, struct sb_error *err)
{
    return s->ops->migrate(s, err);
}

sb_err sb_store_sync_system(struct sb_store *s, const struct sb_store_entities *e,
                            struct sb_error *err)
{
    return s->ops->sync_system(s, e, err);
}

sb_err sb_store_load(struct sb_store *s, struct sb_store_entities **out, struct sb_error *err)
{
    return s->ops->load(s, out, err);
}

sb_err sb_store_insert_usage(struct sb_store *s, const struct sb_usage *rows, size_t n,
                             struct sb_error *err)
{
    return s->ops->insert_usage(s, rows, n, err);
}

void sb_store_usage_pace(struct sb_store *s, unsigned every)
{
    if (s->ops->usage_pace)
        s->ops->usage_pace(s, every);
}

sb_err sb_store_write_usage(struct sb_store *s, const struct sb_store_usage_tx *tx,
                            struct sb_error *err)
{
    if (!s->ops->write_usage)
        return sb_fail(err, SB_E_INTERNAL, "store %s: no usage transaction", s->ops->name);
    return s->ops->write_usage(s, tx, err);
}

sb_err sb_store_setting_get(struct sb_store *s, const char *key, char **value, struct sb_error *err)
{
    return s->ops->setting_get(s, key, value, err);
}

sb_err sb_store_setting_set(struct sb_store *s, const char *key, const char *value,
                            struct sb_error *err)
{
    return s->ops->setting_set(s, key, value, err);
}

sb_err sb_store_ping(struct sb_store *s, struct sb_error *err)
{
    return s->ops->ping(s, err);
}

/* ---- the registry ---- */

/* A backend that has not implemented an operation yet fails clearly instead
 * of calling through a NULL pointer. */
#define CALL(s, op, err, ...)                                                                      \
    ((s)->ops->op                                                                                  \
         ? (s)->ops->op(s, __VA_ARGS__, err)                                                       \
         : sb_fail(err, SB_E_INTERNAL, "store %s: %s is not implemented", (s)->ops->name, #op))

sb_err sb_store_provider_create(struct sb_store *s, const struct sb_store_provider *p,
                                const struct sb_store_model *models, size_t nmodels,
                                struct sb_error *err)
{
    return CALL(s, provider_create, err, p, models, nmodels);
}

sb_err sb_store_provider_update(struct sb_store *s, const char *id,
                                const struct sb_store_provider *p, struct sb_error *err)
{
    return CALL(s, provider_update, err, id, p);
}

sb_err sb_store_provider_delete(struct sb_store *s, const char *id, bool cascade,
                                struct sb_error *err)
{
    return CALL(s, provider_delete, err, id, cascade);
}

sb_err sb_store_provider_get(struct sb_store *s, const char *id, struct sb_arena *a,
                             struct sb_store_provider *out, struct sb_error *err)
{
    return CALL(s, provider_get, err, id, a, out);
}

sb_err sb_store_provider_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_provider **out,
                              struct sb_store_page *page, struct sb_error *err)
{
    return CALL(s, provider_list, err, f, a, out, page);
}

sb_err sb_store_provider_set_enabled(struct sb_store *s, const char *id, bool on,
                                     struct sb_error *err)
{
    return CALL(s, provider_set_enabled, err, id, on);
}

sb_err sb_store_provider_set_test(struct sb_store *s, const char *id, int64_t when_ms,
                                  const char *result, struct sb_error *err)
{
    return CALL(s, provider_set_test, err, id, when_ms, result);
}

sb_err sb_store_provider_stats(struct sb_store *s, const char *provider, int64_t from_ms,
                               int64_t to_ms, struct sb_arena *a,
                               struct sb_store_provider_stats **out, size_t *n,
                               struct sb_error *err)
{
    return CALL(s, provider_stats, err, provider, from_ms, to_ms, a, out, n);
}

sb_err sb_store_usage_report(struct sb_store *s, const struct sb_store_usage_query *q,
                             struct sb_arena *a, struct sb_store_usage_report *out,
                             struct sb_error *err)
{
    return CALL(s, usage_report, err, q, a, out);
}

sb_err sb_store_model_create(struct sb_store *s, const struct sb_store_model *m,
                             struct sb_error *err)
{
    return CALL(s, model_create, err, m);
}

sb_err sb_store_model_update(struct sb_store *s, const char *id, const struct sb_store_model *m,
                             struct sb_error *err)
{
    return CALL(s, model_update, err, id, m);
}

sb_err sb_store_model_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, model_delete, err, id);
}

sb_err sb_store_model_get(struct sb_store *s, const char *id, const char *visible_to,
                          struct sb_arena *a, struct sb_store_model *out, struct sb_error *err)
{
    return CALL(s, model_get, err, id, visible_to, a, out);
}

sb_err sb_store_model_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                           struct sb_store_model **out, struct sb_store_page *page,
                           struct sb_error *err)
{
    return CALL(s, model_list, err, f, a, out, page);
}

sb_err sb_store_model_set_enabled(struct sb_store *s, const char *id, bool on, struct sb_error *err)
{
    return CALL(s, model_set_enabled, err, id, on);
}

sb_err sb_store_model_set_priority(struct sb_store *s, const char *id, int64_t priority,
                                   struct sb_error *err)
{
    return CALL(s, model_set_priority, err, id, priority);
}

sb_err sb_store_model_reorder(struct sb_store *s, const char *const *ids, size_t n,
                              struct sb_error *err)
{
    return CALL(s, model_reorder, err, ids, n);
}

sb_err sb_store_model_set_champion(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, model_set_champion, err, id);
}

sb_err sb_store_model_set_default(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, model_set_default, err, id);
}

sb_err sb_store_route_create(struct sb_store *s, const struct sb_store_route *r,
                             struct sb_error *err)
{
    return CALL(s, route_create, err, r);
}

sb_err sb_store_route_update(struct sb_store *s, const char *id, const struct sb_store_route *r,
                             struct sb_error *err)
{
    return CALL(s, route_update, err, id, r);
}

sb_err sb_store_route_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, route_delete, err, id);
}

sb_err sb_store_route_get(struct sb_store *s, const char *id, struct sb_arena *a,
                          struct sb_store_route *out, struct sb_error *err)
{
    return CALL(s, route_get, err, id, a, out);
}

sb_err sb_store_route_list(struct sb_store *s, const struct sb_store_filter *f, struct sb_arena *a,
                           struct sb_store_route **out, struct sb_store_page *page,
                           struct sb_error *err)
{
    return CALL(s, route_list, err, f, a, out, page);
}

sb_err sb_store_template_create(struct sb_store *s, const struct sb_store_template *t,
                                struct sb_error *err)
{
    return CALL(s, template_create, err, t);
}

sb_err sb_store_template_update(struct sb_store *s, const char *id,
                                const struct sb_store_template *t, struct sb_error *err)
{
    return CALL(s, template_update, err, id, t);
}

sb_err sb_store_template_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, template_delete, err, id);
}

sb_err sb_store_template_get(struct sb_store *s, const char *id, const char *visible_to,
                             struct sb_arena *a, struct sb_store_template *out,
                             struct sb_error *err)
{
    return CALL(s, template_get, err, id, visible_to, a, out);
}

sb_err sb_store_template_list(struct sb_store *s, const struct sb_store_filter *f,
                              struct sb_arena *a, struct sb_store_template **out,
                              struct sb_store_page *page, struct sb_error *err)
{
    return CALL(s, template_list, err, f, a, out, page);
}

sb_err sb_store_credential_put(struct sb_store *s, const struct sb_store_credential *c,
                               struct sb_error *err)
{
    return CALL(s, credential_put, err, c);
}

sb_err sb_store_credential_delete(struct sb_store *s, const char *provider, const char *user,
                                  const char *label, struct sb_error *err)
{
    return CALL(s, credential_delete, err, provider, user, label);
}

sb_err sb_store_credential_get(struct sb_store *s, const char *provider, const char *user,
                               const char *label, struct sb_arena *a,
                               struct sb_store_credential *out, struct sb_error *err)
{
    return CALL(s, credential_get, err, provider, user, label, a, out);
}

sb_err sb_store_dead_key_put(struct sb_store *s, const struct sb_store_dead_key *d,
                             struct sb_error *err)
{
    return CALL(s, dead_key_put, err, d);
}

sb_err sb_store_dead_key_delete(struct sb_store *s, const char *provider, const char *label,
                                struct sb_error *err)
{
    return CALL(s, dead_key_delete, err, provider, label);
}

sb_err sb_store_credential_list(struct sb_store *s, const char *user, struct sb_arena *a,
                                struct sb_store_credential **out, size_t *n, struct sb_error *err)
{
    return CALL(s, credential_list, err, user, a, out, n);
}

sb_err sb_store_rekey(struct sb_store *s, sb_store_rekey_fn fn, void *ud, size_t *n,
                      struct sb_error *err)
{
    return CALL(s, rekey, err, fn, ud, n);
}

sb_err sb_store_registry_version(struct sb_store *s, int64_t *out, struct sb_error *err)
{
    return CALL(s, registry_version, err, out);
}

/* ---- A/B experiments (issue 7 part 3) ---- */

sb_err sb_store_experiment_create(struct sb_store *s, const struct sb_store_experiment *x,
                                  struct sb_error *err)
{
    return CALL(s, experiment_create, err, x);
}

sb_err sb_store_experiment_update(struct sb_store *s, const char *id,
                                  const struct sb_store_experiment *x, struct sb_error *err)
{
    return CALL(s, experiment_update, err, id, x);
}

sb_err sb_store_experiment_delete(struct sb_store *s, const char *id, struct sb_error *err)
{
    return CALL(s, experiment_delete, err, id);
}

sb_err sb_store_experiment_get(struct sb_store *s, const char *id, struct sb_arena *a,
                               struct sb_store_experiment *out, struct sb_error *err)
{
    return CALL(s, experiment_get, err, id, a, out);
}

sb_err sb_store_experiment_list(struct sb_store *s, const struct sb_store_filter *f,
                                struct sb_arena *a, struct sb_store_experiment **out,
                                struct sb_store_page *page, struct sb_error *err)
{
    return CALL(s, experiment_list, err, f, a, out, page);
}

sb_err sb_store_feedback_put(struct sb_store *s, const struct sb_store_feedback *f, bool *created,
                             struct sb_error *err)
{
    return CALL(s, feedback_put, err, f, created);
}

sb_err sb_store_request_ref(struct sb_store *s, const char *request_id, struct sb_arena *a,
                            struct sb_store_request_ref *out, struct sb_error *err)
{
    return CALL(s, request_ref, err, request_id, a, out);
}

sb_err sb_store_experiment_ratings(struct sb_store *s, const char *id, int64_t from_ms,
                                   int64_t to_ms, struct sb_arena *a,
                                   struct sb_store_rating_stats **out, size_t *n,
                                   struct sb_error *err)
{
    return CALL(s, experiment_ratings, err, id, from_ms, to_ms, a, out, n);
}
