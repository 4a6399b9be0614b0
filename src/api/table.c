/* SPDX-License-Identifier: MIT */
/*
 * table.c - every /api endpoint in one table: method, path pattern, the
 * roles allowed, and the handler (DESIGN.md §4).
 *
 * The roles column is the access policy: a role missing from a row gets 403
 * before any handler runs. Finer rules (a developer edits only their own
 * models) live in the handlers, which know the row. Patterns are literal
 * segments and {name} parameters; the first row whose pattern and method
 * match wins, so a literal row (/api/models/reorder) comes before the
 * parameter row it would otherwise match (/api/models/{id}).
 */
#include <string.h>

#include "api/internal.h"

#define ALL SB_ROLES_ALL
#define STAFF SB_ROLES_STAFF
#define ADMIN SB_ROLE_ADMIN
#define PUBLIC SB_ROLE_PUBLIC
#define UNLOCKED SB_API_UNLOCKED
#define RAW SB_API_RAW_BODY

const struct sb_api_route sb__api_routes[] = {
    /* sessions and the caller */
    {"POST", "/api/auth/login", PUBLIC, sb__api_login},
    {"POST", "/api/auth/logout", ALL, sb__api_logout},
    {"GET", "/api/me", ALL, sb__api_me},
    {"GET", "/api/me/credentials", ALL, sb__api_me_credentials_list},
    {"PUT", "/api/me/credentials/{provider}", ALL, sb__api_me_credential_put},
    {"DELETE", "/api/me/credentials/{provider}", ALL, sb__api_me_credential_delete},
    /* users */
    {"GET", "/api/users", ADMIN, sb__api_users_list},
    {"POST", "/api/users", ADMIN, sb__api_user_create},
    {"GET", "/api/users/{id}", ADMIN, sb__api_user_get},
    {"PUT", "/api/users/{id}", ADMIN, sb__api_user_update},
    {"DELETE", "/api/users/{id}", ADMIN, sb__api_user_delete},
    /* virtual keys: non-admins see only their own (keys.c) */
    {"GET", "/api/keys", ALL, sb__api_keys_list},
    {"POST", "/api/keys", ALL, sb__api_key_create},
    {"GET", "/api/keys/{id}", ALL, sb__api_key_get},
    {"PUT", "/api/keys/{id}", ADMIN, sb__api_key_update}, /* limits (issue 7) */
    {"DELETE", "/api/keys/{id}", ALL, sb__api_key_delete},
    {"POST", "/api/keys/{id}/revoke", ALL, sb__api_key_revoke},
    /* audit and administration */
    {"GET", "/api/audit", ADMIN, sb__api_audit_list},
    {"POST", "/api/admin/rotate-key", ADMIN, sb__api_rotate_key},
    /* providers */
    {"GET", "/api/providers", STAFF, sb__api_providers_list},
    {"POST", "/api/providers", ADMIN, sb__api_provider_create},
    {"GET", "/api/providers/stats", STAFF, sb__api_providers_stats},
    /* connection tests wait on the network: UNLOCKED (internal.h) */
    {"POST", "/api/providers/test", STAFF | UNLOCKED, sb__api_provider_test_unsaved},
    {"POST", "/api/providers/{id}/test", ADMIN | UNLOCKED, sb__api_provider_test},
    {"GET", "/api/providers/{id}", STAFF, sb__api_provider_get},
    {"PUT", "/api/providers/{id}", ADMIN, sb__api_provider_update},
    {"DELETE", "/api/providers/{id}", ADMIN, sb__api_provider_delete},
    {"POST", "/api/providers/{id}/toggle", ADMIN, sb__api_provider_toggle},
    {"PUT", "/api/providers/{id}/credentials", ADMIN, sb__api_provider_credentials},
    {"GET", "/api/providers/{id}/credentials", ADMIN, sb__api_key_pool_list},
    {"POST", "/api/providers/{id}/credentials", ADMIN, sb__api_key_pool_add},
    {"PATCH", "/api/providers/{id}/credentials/{label}", ADMIN, sb__api_key_pool_update},
    {"DELETE", "/api/providers/{id}/credentials/{label}", ADMIN, sb__api_key_pool_delete},
    {"POST", "/api/providers/{id}/credentials/{label}/revive", ADMIN, sb__api_key_pool_revive},
    {"GET", "/api/providers/{id}/models", ALL, sb__api_provider_models},
    {"POST", "/api/providers/{id}/models", ALL, sb__api_provider_model_create},
    {"GET", "/api/providers/{id}/capabilities", STAFF, sb__api_provider_capabilities},
    /* models */
    {"GET", "/api/models", ALL, sb__api_models_list},
    {"POST", "/api/models", ALL, sb__api_model_create},
    {"POST", "/api/models/reorder", ALL, sb__api_models_reorder},
    {"GET", "/api/models/{id}", ALL, sb__api_model_get},
    {"PUT", "/api/models/{id}", ALL, sb__api_model_update},
    {"DELETE", "/api/models/{id}", ALL, sb__api_model_delete},
    {"POST", "/api/models/{id}/toggle", ALL, sb__api_model_toggle},
    {"PUT", "/api/models/{id}/priority", ALL, sb__api_model_priority},
    {"POST", "/api/models/{id}/test", ALL | UNLOCKED, sb__api_model_test},
    {"POST", "/api/models/{id}/champion", ADMIN, sb__api_model_champion},
    {"POST", "/api/models/{id}/default", ADMIN, sb__api_model_default},
    /* templates */
    {"GET", "/api/templates", STAFF, sb__api_templates_list},
    {"POST", "/api/templates", STAFF, sb__api_template_create},
    {"GET", "/api/templates/{id}", STAFF, sb__api_template_get},
    {"PUT", "/api/templates/{id}", STAFF, sb__api_template_update},
    {"DELETE", "/api/templates/{id}", STAFF, sb__api_template_delete},
    {"POST", "/api/templates/{id}/apply", ADMIN, sb__api_template_apply},
    /* routes */
    {"GET", "/api/routes", STAFF, sb__api_routes_list},
    {"POST", "/api/routes", ADMIN, sb__api_route_create},
    {"GET", "/api/routes/{id}", STAFF, sb__api_route_get},
    {"PUT", "/api/routes/{id}", ADMIN, sb__api_route_update},
    {"DELETE", "/api/routes/{id}", ADMIN, sb__api_route_delete},
    /* A/B experiments (experiments.c, experiment_results.c); feedback: any caller rates
     * their own requests, an admin any (feedback.c) */
    {"GET", "/api/experiments", STAFF, sb__api_experiments_list},
    {"POST", "/api/experiments", ADMIN, sb__api_experiment_create},
    {"GET", "/api/experiments/{id}", STAFF, sb__api_experiment_get},
    {"PUT", "/api/experiments/{id}", ADMIN, sb__api_experiment_update},
    {"DELETE", "/api/experiments/{id}", ADMIN, sb__api_experiment_delete},
    {"GET", "/api/experiments/{id}/results", STAFF, sb__api_experiment_results},
    {"POST", "/api/feedback", ALL, sb__api_feedback},
    /* batch jobs (batches.c): every role; non-admins see only their own jobs */
    {"GET", "/api/batches", ALL, sb__api_batches_list},
    {"POST", "/api/batches", ALL | RAW, sb__api_batch_create},
    {"GET", "/api/batches/{id}", ALL, sb__api_batch_get},
    {"DELETE", "/api/batches/{id}", ALL, sb__api_batch_delete},
    {"GET", "/api/batches/{id}/results", ALL, sb__api_batch_results},
    {"POST", "/api/batches/{id}/cancel", ALL, sb__api_batch_cancel},
    /* usage analytics: every role; non-admins see only their own rows (usage_query.c) */
    {"GET", "/api/usage", ALL, sb__api_usage},
    /* registry */
    {"GET", "/api/registry/status", STAFF, sb__api_registry_status},
    {"POST", "/api/registry/refresh", ADMIN, sb__api_registry_refresh},
};

const size_t sb__api_nroutes = sizeof(sb__api_routes) / sizeof(sb__api_routes[0]);

/* The next '/'-separated segment of s after *pos, or false at the end. */
static bool next_segment(struct sb_slice s, size_t *pos, struct sb_slice *seg)
{
    if (*pos >= s.len)
        return false;
    if (s.p[*pos] == '/')
        (*pos)++;
    const char *slash = memchr(s.p + *pos, '/', s.len - *pos);
    size_t end = slash ? (size_t)(slash - s.p) : s.len;
    *seg = (struct sb_slice){s.p + *pos, end - *pos};
    *pos = end;
    return true;
}

bool sb__api_match(const char *pattern, struct sb_slice path, struct sb_slice *param,
                   size_t *nparam)
{
    struct sb_slice pat = sb_slice_cstr(pattern), ps, ss;
    size_t pp = 0, sp = 0;
    *nparam = 0;
    if (path.len > 1 && path.p[path.len - 1] == '/')
        path.len--; /* a trailing slash names the same resource */
    for (;;) {
        bool more_p = next_segment(pat, &pp, &ps), more_s = next_segment(path, &sp, &ss);
        if (!more_p || !more_s)
            return more_p == more_s;
        if (ps.len > 2 && ps.p[0] == '{') {
            if (ss.len == 0 || *nparam == SB_API_MAX_PARAMS)
                return false;
            param[(*nparam)++] = ss;
        } else if (!sb_slice_eq(ps, ss)) {
            return false;
        }
    }
}
