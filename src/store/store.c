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
