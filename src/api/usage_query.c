/* SPDX-License-Identifier: MIT */
/*
 * usage_query.c - the query string of GET /api/usage, turned into a store
 * usage query (DESIGN.md §4): the window, the filters, the grouping, the
 * output format, and the rule that a user or developer reads only their own
 * usage.
 *
 * Everything here is outside input, so it is strict: an unknown or repeated
 * parameter, a value that is not percent-encoded correctly, an impossible
 * date, all get a 400 naming the parameter, never a silently wider report.
 * The caller's identity, not the query, decides whose rows a non-admin sees:
 * a `user` naming someone else is refused (403) rather than replaced, so a
 * console bug cannot show a user numbers that look like someone else's.
 */
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

#define MAX_VALUE 256 /* longest filter value: identifiers are at most 128 */
#define DAY_MS (24 * 3600 * 1000LL)
#define MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z: the last time ISO-8601 can say */

/* group_by's words, indexed by the store's enum. */
static const char *const by_names[SB_STORE_USAGE_NBY] = {
    [SB_STORE_USAGE_BY_NONE] = "none",       [SB_STORE_USAGE_BY_PROVIDER] = "provider",
    [SB_STORE_USAGE_BY_MODEL] = "model",     [SB_STORE_USAGE_BY_USER] = "user",
    [SB_STORE_USAGE_BY_KEY] = "key",         [SB_STORE_USAGE_BY_ROUTE] = "route",
    [SB_STORE_USAGE_BY_VARIANT] = "variant", [SB_STORE_USAGE_BY_HOUR] = "hour",
    [SB_STORE_USAGE_BY_DAY] = "day",
};

static const char *const statuses[] = {"ok", "error", "cancelled"};

/* Every parameter the endpoint takes; anything else is refused. */
static const char *const params[] = {"from",  "to",      "provider", "model",    "user",   "key",
                                     "route", "variant", "status",   "group_by", "format", "limit"};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

const char *sb__api_usage_by_name(enum sb_store_usage_by by)
{
    return (unsigned)by < SB_STORE_USAGE_NBY ? by_names[by] : "none";
}

/* ======================================================================
 * The query string
 * ==================================================================== */

/* Every parameter is known, present once, and decodes. */
static sb_err check_params(struct sb_api_call *c)
{
    unsigned seen = 0;
    struct sb_slice q = c->query;
    while (q.len) {
        const char *amp = memchr(q.p, '&', q.len);
        size_t plen = amp ? (size_t)(amp - q.p) : q.len;
        const char *eq = memchr(q.p, '=', plen);
        struct sb_slice name = {q.p, eq ? (size_t)(eq - q.p) : plen};
        size_t i = 0;
        while (i < NPARAMS && !sb_slice_eq_cstr(name, params[i]))
            i++;
        if (plen && i == NPARAMS)
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                                "unknown parameter '%.*s': GET /api/usage takes from, to, "
                                "provider, model, user, key, route, variant, status, group_by, "
                                "format and limit",
                                (int)(name.len > 64 ? 64 : name.len), name.p);
        if (plen && (seen & (1u << i)))
            return sb__api_fail(c, SB_E_BAD_REQUEST, params[i], "%s: given more than once",
                                params[i]);
        if (plen && !sb__api_query(c, params[i]))
            return sb__api_fail(c, SB_E_BAD_REQUEST, params[i], "%s: bad percent-encoding",
                                params[i]);
        seen |= plen ? 1u << i : 0;
        q.p += plen + (amp ? 1 : 0);
        q.len -= plen + (amp ? 1 : 0);
    }
    return SB_OK;
}

/* from/to: Unix ms or ISO-8601 (when.c). Default: to = now, from = 24 hours
 * before to. Times past 9999 are refused: they have no ISO-8601 form to answer. */
static sb_err window(struct sb_api_call *c, struct sb_store_usage_query *q)
{
    const char *names[2] = {"from", "to"};
    const char *v[2] = {sb__api_query(c, "from"), sb__api_query(c, "to")};
    int64_t *dst[2] = {&q->from_ms, &q->to_ms};
    struct sb_error e = {0};
    for (int i = 0; i < 2; i++) {
        if (!v[i])
            continue;
        if (sb__api_parse_time(sb_slice_cstr(v[i]), dst[i], &e) != SB_OK)
            return sb__api_fail(c, SB_E_BAD_REQUEST, names[i], "%s: %s%s", names[i], e.msg,
                                strchr(v[i], ' ') ? " (a '+' in a query string is sent as %2B)"
                                                  : "");
        if (*dst[i] > MAX_MS)
            return sb__api_fail(c, SB_E_BAD_REQUEST, names[i], "%s: after the year 9999", names[i]);
    }
    if (!v[1])
        q->to_ms = sb__api_now_ms() + 1; /* the window is [from, to): now is in it */
    if (!v[0])
        q->from_ms = q->to_ms > DAY_MS ? q->to_ms - DAY_MS : 0;
    if (q->from_ms >= q->to_ms)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "from", "from must be before to");
    return SB_OK;
}

/* A filter value: non-empty and of sane length. */
static sb_err filter_value(struct sb_api_call *c, const char *name, const char **out)
{
    const char *v = sb__api_query(c, name);
    *out = NULL;
    if (!v)
        return SB_OK;
    if (!*v || strlen(v) > MAX_VALUE)
        return sb__api_fail(c, SB_E_BAD_REQUEST, name, "%s: expected 1 to %d characters", name,
                            MAX_VALUE);
    *out = v;
    return SB_OK;
}

static sb_err filters(struct sb_api_call *c, struct sb_store_usage_query *q)
{
    for (int d = 1; d < SB_STORE_USAGE_NEQ; d++)
        if (filter_value(c, by_names[d], &q->eq[d]) != SB_OK)
            return c->err.code;
    if (filter_value(c, "status", &q->status) != SB_OK)
        return c->err.code;
    for (size_t i = 0; q->status && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(q->status, statuses[i]) == 0)
            return SB_OK;
    if (q->status)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "status",
                            "status: expected ok, error or cancelled");
    return SB_OK;
}

/* A user or developer reads their own rows only (admins read everyone's). */
static sb_err own_rows(struct sb_api_call *c, struct sb_store_usage_query *q)
{
    const char *me = c->actor.name;
    const char **user = &q->eq[SB_STORE_USAGE_BY_USER];
    if (c->actor.role == SB_ROLE_ADMIN)
        return SB_OK;
    if (*user && strcmp(*user, me) != 0)
        return sb__api_fail(c, SB_E_FORBIDDEN, "user",
                            "role '%s' sees only its own usage: leave user out or set it to '%s'",
                            sb__api_role_name(c->actor.role), me);
    *user = me;
    return SB_OK;
}

static sb_err grouping(struct sb_api_call *c, struct sb_store_usage_query *q)
{
    const char *v = sb__api_query(c, "group_by");
    q->group_by = SB_STORE_USAGE_BY_NONE;
    if (!v)
        return SB_OK;
    for (int i = 0; i < SB_STORE_USAGE_NBY; i++)
        if (strcmp(v, by_names[i]) == 0) {
            q->group_by = (enum sb_store_usage_by)i;
            return SB_OK;
        }
    return sb__api_fail(c, SB_E_BAD_REQUEST, "group_by",
                        "group_by: expected provider, model, user, key, route, variant, hour, "
                        "day or none");
}

/* format (json | csv) and limit (groups, 1..10000, default 1000). */
static sb_err output(struct sb_api_call *c, struct sb_store_usage_query *q, bool *csv)
{
    const char *f = sb__api_query(c, "format"), *l = sb__api_query(c, "limit");
    unsigned long long u = SB_STORE_USAGE_MAX_GROUPS;
    *csv = f && strcmp(f, "csv") == 0;
    if (f && !*csv && strcmp(f, "json") != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "format", "format: expected json or csv");
    if (l && (!sb_slice_to_u64(sb_slice_cstr(l), &u) || u < 1 || u > 10000))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "limit",
                            "limit: expected a number of groups in [1, 10000]");
    q->max_groups = (size_t)u;
    return SB_OK;
}

sb_err sb__api_usage_query(struct sb_api_call *c, struct sb_store_usage_query *q, bool *csv)
{
    memset(q, 0, sizeof(*q));
    *csv = false;
    if (check_params(c) != SB_OK || window(c, q) != SB_OK || filters(c, q) != SB_OK ||
        own_rows(c, q) != SB_OK || grouping(c, q) != SB_OK || output(c, q, csv) != SB_OK)
        return c->err.code;
    return SB_OK;
}
