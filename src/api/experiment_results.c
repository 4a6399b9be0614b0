/* SPDX-License-Identifier: MIT */
/*
 * experiment_results.c - GET /api/experiments/{id}/results: the variants
 * side by side.
 *
 * An experiment's traffic is the usage rows whose route is its id; each
 * row's variant says which variant served it (the proxy records both).
 * Requests, errors, latency and TTFT percentiles, tokens and cost come from
 * the usage report (sqlite_usage_report.c: exact nearest-rank percentiles)
 * grouped by variant; ratings come from feedback joined on request_id. The
 * error rate and mean rating carry 95% intervals, and every variant after
 * the first (the control) is compared with it: its value minus the
 * control's, with an interval for the error rate and the rating
 * (experiment_stats.c says which intervals and why). A difference whose
 * interval excludes 0 is significant at 5%.
 *
 * Rows of the experiment without a variant (served while it was paused or
 * ended) are counted as "unassigned" and compared with nothing. A variant
 * that was removed but has rows keeps its results, marked "removed".
 *
 * Window: from and to (Unix ms or ISO-8601) over the rows' ts; default the
 * whole history ([0, now]). The usage report's row bound applies (400).
 */
#include <math.h>
#include <string.h>

#include "api/internal.h"

/* One variant's numbers. */
struct row {
    const char *name;
    const char *target; /* NULL for a removed variant */
    int64_t weight;
    const struct sb_store_usage_group *g;  /* NULL = no requests */
    const struct sb_store_rating_stats *r; /* NULL = no ratings */
};

struct results {
    struct row *rows;
    size_t n;
    int64_t unassigned; /* rows without a variant */
};

static const struct sb_store_usage_group zero_group;
static const struct sb_store_rating_stats zero_ratings;

/* ======================================================================
 * Gathering
 * ==================================================================== */

static sb_err window(struct sb_api_call *c, int64_t *from, int64_t *to)
{
    const char *names[2] = {"from", "to"},
               *v[2] = {sb__api_query(c, "from"), sb__api_query(c, "to")};
    int64_t *dst[2] = {from, to};
    struct sb_error e = {0};
    for (struct sb_slice q = c->query; q.len;) { /* only from and to: nothing is ignored */
        const char *amp = memchr(q.p, '&', q.len);
        struct sb_slice p = {q.p, amp ? (size_t)(amp - q.p) : q.len};
        if (!sb_slice_starts_with(p, SB_SLICE("from=")) &&
            !sb_slice_starts_with(p, SB_SLICE("to=")))
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                                "unknown parameter '%.*s': results take from and to",
                                (int)(p.len > 40 ? 40 : p.len), p.p);
        q.p += p.len + (amp ? 1 : 0), q.len -= p.len + (amp ? 1 : 0);
    }
    *from = 0;
    *to = sb__api_now_ms() + 1;
    for (int i = 0; i < 2; i++)
        if (v[i] && sb__api_parse_time(sb_slice_cstr(v[i]), dst[i], &e) != SB_OK)
            return sb__api_fail(c, SB_E_BAD_REQUEST, names[i], "%s: %s", names[i], e.msg);
    if (*from >= *to)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "from", "from must be before to");
    return SB_OK;
}

static const struct sb_store_usage_group *group_of(const struct sb_store_usage_report *u,
                                                   const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (u->groups[i].key && strcmp(u->groups[i].key, name) == 0)
            return &u->groups[i];
    return NULL;
}

static const struct sb_store_rating_stats *ratings_of(const struct sb_store_rating_stats *r,
                                                      size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].variant && strcmp(r[i].variant, name) == 0)
            return &r[i];
    return NULL;
}

/* The experiment's variants in order, then removed ones that have rows. */
static void gather(struct sb_api_call *c, const struct sb_store_experiment *x,
                   const struct sb_store_usage_report *u, const struct sb_store_rating_stats *r,
                   size_t nr, struct results *out)
{
    out->rows = sb_arena_calloc(c->arena, (x->nvariants + u->n + 1) * sizeof(*out->rows));
    for (size_t i = 0; i < x->nvariants; i++) {
        const struct sb_store_variant *v = &x->variants[i];
        out->rows[out->n++] = (struct row){v->name, v->target, v->weight, group_of(u, v->name),
                                           ratings_of(r, nr, v->name)};
    }
    for (size_t i = 0; i < u->n; i++) {
        const struct sb_store_usage_group *g = &u->groups[i];
        bool known = false;
        for (size_t k = 0; k < x->nvariants && !known; k++)
            known = g->key && strcmp(g->key, x->variants[k].name) == 0;
        if (!g->key)
            out->unassigned += g->requests;
        else if (!known)
            out->rows[out->n++] = (struct row){g->key, NULL, 0, g, ratings_of(r, nr, g->key)};
    }
}

/* ======================================================================
 * JSON
 * ==================================================================== */

static void num_or_null(struct sb_jw *j, const char *key, double v, bool have)
{
    sb_jw_key(j, key);
    if (have && isfinite(v))
        sb_jw_double(j, v);
    else
        sb_jw_null(j);
}

/* "key": [lo, hi], or null when there is no interval. */
static void interval(struct sb_jw *j, const char *key, struct sb__ci ci)
{
    sb_jw_key(j, key);
    if (!ci.ok) {
        sb_jw_null(j);
        return;
    }
    sb_jw_arr_begin(j);
    sb_jw_double(j, ci.lo);
    sb_jw_double(j, ci.hi);
    sb_jw_arr_end(j);
}

static void write_counts(struct sb_jw *j, const struct sb_store_usage_group *g)
{
    static const struct {
        const char *name;
        size_t off;
    } ints[] = {
        {"requests", offsetof(struct sb_store_usage_group, requests)},
        {"errors", offsetof(struct sb_store_usage_group, errors)},
        {"cancelled", offsetof(struct sb_store_usage_group, cancelled)},
        {"streamed", offsetof(struct sb_store_usage_group, streamed)},
        {"prompt_tokens", offsetof(struct sb_store_usage_group, prompt_tokens)},
        {"completion_tokens", offsetof(struct sb_store_usage_group, completion_tokens)},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        int64_t v;
        memcpy(&v, (const char *)g + ints[i].off, sizeof(v));
        sb_jw_key(j, ints[i].name);
        sb_jw_int(j, v);
    }
}

static void write_row(struct sb_jw *j, const struct row *w)
{
    const struct sb_store_usage_group *g = w->g ? w->g : &zero_group;
    const struct sb_store_rating_stats *r = w->r ? w->r : &zero_ratings;
    struct sb__ci err = sb__stats_wilson(g->errors, g->requests);
    struct sb__ci rating = sb__stats_mean(r->n, r->sum, r->sumsq);
    sb_jw_obj_begin(j);
    sb_jw_key(j, "name");
    sb_jw_cstr(j, w->name);
    sb_jw_key(j, "target");
    sb_jw_cstr(j, w->target);
    sb_jw_key(j, "weight");
    if (w->target)
        sb_jw_int(j, w->weight);
    else
        sb_jw_null(j);
    sb_jw_key(j, "removed");
    sb_jw_bool(j, !w->target);
    write_counts(j, g);
    num_or_null(j, "error_rate", err.value, err.ok);
    interval(j, "error_rate_ci", err);
    num_or_null(j, "latency_p50_ms", g->latency_p50_ms, g->requests > 0);
    num_or_null(j, "latency_p95_ms", g->latency_p95_ms, g->requests > 0);
    num_or_null(j, "ttft_p50_ms", g->ttft_p50_ms, g->streamed > 0);
    sb_jw_key(j, "cost_usd");
    sb_jw_double(j, g->cost_usd);
    num_or_null(j, "cost_per_request_usd", g->cost_usd / (double)g->requests, g->requests > 0);
    sb_jw_key(j, "ratings");
    sb_jw_int(j, r->n);
    num_or_null(j, "rating_mean", rating.value, r->n > 0);
    interval(j, "rating_ci", rating);
    sb_jw_obj_end(j);
}

/* "key": b - a, or null when either side has no value. */
static void delta(struct sb_jw *j, const char *key, double a, bool have_a, double b, bool have_b)
{
    num_or_null(j, key, b - a, have_a && have_b);
}

/* Variant w against the control base. */
static void write_difference(struct sb_jw *j, const struct row *base, const struct row *w)
{
    const struct sb_store_usage_group *a = base->g ? base->g : &zero_group;
    const struct sb_store_usage_group *b = w->g ? w->g : &zero_group;
    const struct sb_store_rating_stats *ra = base->r ? base->r : &zero_ratings;
    const struct sb_store_rating_stats *rb = w->r ? w->r : &zero_ratings;
    struct sb__ci de = sb__stats_prop_diff(a->errors, a->requests, b->errors, b->requests);
    struct sb__ci dr = sb__stats_mean_diff(ra->n, ra->sum, ra->sumsq, rb->n, rb->sum, rb->sumsq);
    bool ha = a->requests > 0, hb = b->requests > 0;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "variant");
    sb_jw_cstr(j, w->name);
    sb_jw_key(j, "baseline");
    sb_jw_cstr(j, base->name);
    num_or_null(j, "error_rate", de.value, ha && hb);
    interval(j, "error_rate_ci", de);
    num_or_null(j, "rating_mean", dr.value, ra->n > 0 && rb->n > 0);
    interval(j, "rating_ci", dr);
    delta(j, "latency_p50_ms", a->latency_p50_ms, ha, b->latency_p50_ms, hb);
    delta(j, "latency_p95_ms", a->latency_p95_ms, ha, b->latency_p95_ms, hb);
    delta(j, "ttft_p50_ms", a->ttft_p50_ms, a->streamed > 0, b->ttft_p50_ms, b->streamed > 0);
    delta(j, "cost_per_request_usd", ha ? a->cost_usd / (double)a->requests : 0, ha,
          hb ? b->cost_usd / (double)b->requests : 0, hb);
    sb_jw_obj_end(j);
}

static void write_results(struct sb_api_call *c, const struct sb_store_experiment *x,
                          const struct results *res, int64_t from, int64_t to)
{
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "experiment");
    sb__api_write_experiment(j, x);
    sb__api_time(j, "from", from);
    sb__api_time(j, "to", to);
    sb_jw_key(j, "confidence");
    sb_jw_double(j, 0.95);
    sb_jw_key(j, "methods");
    sb_jw_raw(j, SB_SLICE("{\"error_rate\":\"wilson\",\"rating\":\"student-t\","
                          "\"error_rate_difference\":\"newcombe-hybrid-score\","
                          "\"rating_difference\":\"welch-t\",\"percentiles\":\"nearest-rank\"}"));
    sb_jw_key(j, "unassigned_requests");
    sb_jw_int(j, res->unassigned);
    sb_jw_key(j, "variants");
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < res->n; i++)
        write_row(j, &res->rows[i]);
    sb_jw_arr_end(j);
    sb_jw_key(j, "differences");
    sb_jw_arr_begin(j);
    for (size_t i = 1; i < res->n; i++)
        write_difference(j, &res->rows[0], &res->rows[i]);
    sb_jw_arr_end(j);
    sb_jw_obj_end(j);
}

sb_err sb__api_experiment_results(struct sb_api_call *c)
{
    struct sb_store_experiment x;
    struct sb_store_usage_query q = {.group_by = SB_STORE_USAGE_BY_VARIANT};
    struct sb_store_usage_report u;
    struct sb_store_rating_stats *r = NULL;
    struct results res = {0};
    size_t nr = 0;
    struct sb_store *s = c->api->store;
    if (sb_store_experiment_get(s, sb__api_param(c, 0), c->arena, &x, &c->err) != SB_OK ||
        window(c, &q.from_ms, &q.to_ms) != SB_OK)
        return c->err.code;
    q.eq[SB_STORE_USAGE_BY_ROUTE] = x.id;
    q.max_groups = SB_STORE_EXPERIMENT_MAX_VARIANTS * 4; /* removed variants too */
    if (sb_store_usage_report(s, &q, c->arena, &u, &c->err) != SB_OK ||
        sb_store_experiment_ratings(s, x.id, q.from_ms, q.to_ms, c->arena, &r, &nr, &c->err) !=
            SB_OK)
        return c->err.code;
    gather(c, &x, &u, r, nr, &res);
    write_results(c, &x, &res, q.from_ms, q.to_ms);
    return SB_OK;
}
