/* SPDX-License-Identifier: MIT */
/*
 * identity.c - the sb_store_* wrappers for users, sessions, virtual keys
 * and audit (store/identity.h): each forwards to the backend's identity
 * table. A backend without one (a store built before migration 3) fails
 * clearly instead of crashing. No SQL here.
 */
#include "store/identity.h"

#include "store/store.h"

#define IDENTITY(s, err)                                                                           \
    do {                                                                                           \
        if (!(s)->ops->identity)                                                                   \
            return sb_fail(err, SB_E_INTERNAL, "store %s has no identity tables", (s)->ops->name); \
    } while (0)

sb_err sb_store_user_create(struct sb_store *s, const struct sb_store_user *u, int64_t *id,
                            struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_create(s, u, id, err);
}

sb_err sb_store_user_get(struct sb_store *s, const char *username, struct sb_arena *a,
                         struct sb_store_user *out, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_get(s, username, a, out, err);
}

sb_err sb_store_user_list(struct sb_store *s, const struct sb_store_paging *pg, struct sb_arena *a,
                          struct sb_store_user **out, size_t *n, int64_t *total,
                          struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_list(s, pg, a, out, n, total, err);
}

sb_err sb_store_user_update(struct sb_store *s, const char *username,
                            const struct sb_store_user_update *u, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_update(s, username, u, err);
}

sb_err sb_store_user_delete(struct sb_store *s, const char *username, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_delete(s, username, err);
}

sb_err sb_store_user_count_admins(struct sb_store *s, int64_t *n, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->user_count_admins(s, n, err);
}

sb_err sb_store_session_create(struct sb_store *s, const struct sb_store_session *ss,
                               struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_create(s, ss, err);
}

sb_err sb_store_session_get(struct sb_store *s, const char *token_hash, int64_t now,
                            struct sb_arena *a, struct sb_store_session *out, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_get(s, token_hash, now, a, out, err);
}

sb_err sb_store_session_list_live(struct sb_store *s, int64_t now, struct sb_arena *a,
                                  struct sb_store_session **out, size_t *n, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_list_live(s, now, a, out, n, err);
}

sb_err sb_store_session_touch(struct sb_store *s, const char *token_hash, int64_t now,
                              struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_touch(s, token_hash, now, err);
}

sb_err sb_store_session_delete(struct sb_store *s, const char *token_hash, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_delete(s, token_hash, err);
}

sb_err sb_store_session_delete_user(struct sb_store *s, const char *username, int64_t *n,
                                    struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_delete_user(s, username, n, err);
}

sb_err sb_store_session_purge(struct sb_store *s, int64_t now, int64_t *n, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->session_purge(s, now, n, err);
}

sb_err sb_store_key_create(struct sb_store *s, const struct sb_store_api_key *k, int64_t *id,
                           struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_create(s, k, id, err);
}

sb_err sb_store_key_get(struct sb_store *s, int64_t id, struct sb_arena *a,
                        struct sb_store_api_key *out, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_get(s, id, a, out, err);
}

sb_err sb_store_key_list(struct sb_store *s, const char *user, const struct sb_store_paging *pg,
                         struct sb_arena *a, struct sb_store_api_key **out, size_t *n,
                         int64_t *total, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_list(s, user, pg, a, out, n, total, err);
}

sb_err sb_store_key_revoke(struct sb_store *s, int64_t id, int64_t now, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_revoke(s, id, now, err);
}

sb_err sb_store_key_delete(struct sb_store *s, int64_t id, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_delete(s, id, err);
}

sb_err sb_store_key_load_all(struct sb_store *s, struct sb_arena *a, struct sb_store_api_key **out,
                             size_t *n, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->key_load_all(s, a, out, n, err);
}

sb_err sb_store_audit_insert(struct sb_store *s, const struct sb_audit *rows, size_t n,
                             struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->audit_insert(s, rows, n, err);
}

sb_err sb_store_audit_query(struct sb_store *s, const struct sb_audit_filter *f,
                            const struct sb_store_paging *pg, struct sb_arena *a,
                            struct sb_audit **out, size_t *n, int64_t *total, struct sb_error *err)
{
    IDENTITY(s, err);
    return s->ops->identity->audit_query(s, f, pg, a, out, n, total, err);
}
