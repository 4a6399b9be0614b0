/* SPDX-License-Identifier: MIT */
/*
 * quota.c - limits and spend of virtual keys and users as /api reads and
 * writes them (issue 7 parts 4 and 5): the body members rpm, tpm,
 * budget_usd and budget_period on POST/PUT /api/keys and PUT /api/users/{id},
 * and the "limits" and "spend" members of GET /api/keys/{id},
 * GET /api/users/{id} and GET /api/me.
 *
 * Only admins set limits: they are the admin's control over a key or user,
 * and an owner who could raise their own would defeat it. A member absent
 * keeps its value, null or 0 removes that limit. Spend is read from
 * usage_logs (sum of cost_usd since the period's start), so it is what the
 * usage rows say, a batch of the usage writer behind the data plane (well
 * under a second); the data plane's own reservation state is what enforces.
 */
#include <string.h>

#include "api/internal.h"
#include "router/limits.h"
#include "store/quota.h"

/* A non-negative integer member, null = 0; absent leaves *v. */
static sb_err body_count(struct sb_api_call *c, const char *key, int64_t *v, bool *any)
{
    const struct sb_json *j = sb_json_get(c->json, key);
    if (!j)
        return SB_OK;
    *any = true;
    if (j->type == SB_JSON_NULL) {
        *v = 0;
        return SB_OK;
    }
    if (!sb_json_int64(j, v) || *v < 0 || *v > SB_STORE_LIMIT_MAX)
        return sb__api_fail(c, SB_E_BAD_REQUEST, key,
                            "%s: expected a whole number from 0 (no limit) to %lld, or null", key,
                            (long long)SB_STORE_LIMIT_MAX);
    return SB_OK;
}

static sb_err body_budget(struct sb_api_call *c, struct sb_store_limits *l, bool *any)
{
    const struct sb_json *b = sb_json_get(c->json, "budget_usd");
    const struct sb_json *p = sb_json_get(c->json, "budget_period");
    *any = *any || b || p;
    if (b && b->type != SB_JSON_NULL && !sb_json_double(b, &l->budget_usd))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "budget_usd",
                            "budget_usd: expected a number of USD, or null");
    if (b && b->type == SB_JSON_NULL)
        l->budget_usd = 0;
    if (p && p->type == SB_JSON_NULL)
        l->budget_period = NULL;
    else if (p && sb__api_body_str(c, "budget_period", false, &l->budget_period) != SB_OK)
        return c->err.code;
    if (l->budget_usd == 0 && (!p || p->type == SB_JSON_NULL))
        l->budget_period = NULL; /* no budget, no period */
    return SB_OK;
}

sb_err sb__api_limits_parse(struct sb_api_call *c, struct sb_store_limits *l, bool *any)
{
    *any = false;
    if (body_count(c, "rpm", &l->rpm, any) != SB_OK ||
        body_count(c, "tpm", &l->tpm, any) != SB_OK || body_budget(c, l, any) != SB_OK)
        return c->err.code;
    if (*any && c->actor.role != SB_ROLE_ADMIN)
        return sb__api_fail(c, SB_E_FORBIDDEN, "rpm",
                            "limits (rpm, tpm, budget_usd, budget_period) are set by an admin");
    if (*any && sb_store_limits_check(l, &c->err) != SB_OK)
        return c->err.code;
    return SB_OK;
}

/* ---- answers ---- */

static void count_or_null(struct sb_jw *j, const char *key, int64_t v)
{
    sb_jw_key(j, key);
    if (v > 0)
        sb_jw_int(j, v);
    else
        sb_jw_null(j);
}

static void write_limits(struct sb_jw *j, const struct sb_store_limits *l)
{
    sb_jw_obj_begin(j);
    count_or_null(j, "rpm", l->rpm);
    count_or_null(j, "tpm", l->tpm);
    sb_jw_key(j, "budget_usd");
    if (l->budget_usd > 0)
        sb_jw_double(j, l->budget_usd);
    else
        sb_jw_null(j);
    sb_jw_key(j, "budget_period");
    sb_jw_cstr(j, l->budget_usd > 0 ? l->budget_period : NULL);
    sb_jw_obj_end(j);
}

struct sb_slice sb__api_limits_doc(struct sb_api_call *c, const struct sb_store_limits *l)
{
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    write_limits(&j, l);
    struct sb_slice s = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

/* "spend": the budget's period (the month when there is no budget). */
static sb_err write_spend(struct sb_api_call *c, enum sb_store_spend_by by, const char *id,
                          const struct sb_store_limits *l)
{
    enum sb_budget_period p = SB_BUDGET_MONTH;
    if (l->budget_usd > 0)
        sb_limits_period_parse(l->budget_period, &p);
    int64_t now = sb__api_now_ms(), since = sb_limits_period_start(p, now);
    struct sb_store_spend *rows = NULL;
    size_t n = 0;
    if (sb_store_spend(c->api->store, by, id, since, c->arena, &rows, &n, &c->err) != SB_OK)
        return c->err.code;
    double spent = n ? rows[0].cost_usd : 0;
    struct sb_jw *j = &c->jw;
    sb_jw_key(j, "spend");
    sb_jw_obj_begin(j);
    sb_jw_key(j, "period");
    sb_jw_cstr(j, sb_limits_period_name(p));
    sb__api_time(j, "since", since);
    sb__api_time(j, "until", sb_limits_period_end(p, now));
    sb_jw_key(j, "spent_usd");
    sb_jw_double(j, spent);
    sb_jw_key(j, "requests");
    sb_jw_int(j, n ? rows[0].requests : 0);
    sb_jw_key(j, "remaining_usd");
    if (l->budget_usd > 0)
        sb_jw_double(j, spent < l->budget_usd ? l->budget_usd - spent : 0);
    else
        sb_jw_null(j);
    sb_jw_obj_end(j);
    return SB_OK;
}

sb_err sb__api_limits_members(struct sb_api_call *c, enum sb_store_spend_by by, const char *id,
                              const struct sb_store_limits *l)
{
    sb_jw_key(&c->jw, "limits");
    write_limits(&c->jw, l);
    return write_spend(c, by, id, l);
}

sb_err sb__api_limits_append(struct sb_api_call *c, enum sb_store_spend_by by, const char *id,
                             const struct sb_store_limits *l)
{
    c->out.len--; /* re-open the object just written */
    if (sb__api_limits_members(c, by, id, l) != SB_OK)
        return c->err.code;
    sb_buf_append_char(&c->out, '}');
    return SB_OK;
}
