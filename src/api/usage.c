/* SPDX-License-Identifier: MIT */
/*
 * usage.c - GET /api/usage: cost and latency per provider, model, user, key,
 * route, variant, hour or day, as JSON or as CSV (the console's export).
 *
 * The numbers come from the store (sb_store_usage_report), which reads the
 * usage rows of the window and computes exact percentiles; this file only
 * writes them. One column table drives both formats, so the CSV header and
 * the JSON keys cannot drift apart. A value that does not exist (the
 * latency of an empty window, the TTFT of a group with no streamed request)
 * is null in JSON and an empty cell in CSV, never a misleading 0.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* How a column's value is read from a group and when it is absent. */
enum kind { K_INT, K_NUM, K_RATE, K_TIME };
enum absent { NEVER, NO_ROWS, NO_STREAMED };

#define OFF(f) offsetof(struct sb_store_usage_group, f)

static const struct {
    const char *name;
    enum kind kind;
    size_t off; /* into struct sb_store_usage_group */
    enum absent absent;
} cols[] = {
    {"requests", K_INT, OFF(requests), NEVER},
    {"errors", K_INT, OFF(errors), NEVER},
    {"cancelled", K_INT, OFF(cancelled), NEVER},
    {"error_rate", K_RATE, OFF(errors), NEVER},
    {"latency_p50_ms", K_NUM, OFF(latency_p50_ms), NO_ROWS},
    {"latency_p95_ms", K_NUM, OFF(latency_p95_ms), NO_ROWS},
    {"latency_p99_ms", K_NUM, OFF(latency_p99_ms), NO_ROWS},
    {"streamed", K_INT, OFF(streamed), NEVER},
    {"ttft_p50_ms", K_NUM, OFF(ttft_p50_ms), NO_STREAMED},
    {"ttft_p95_ms", K_NUM, OFF(ttft_p95_ms), NO_STREAMED},
    {"prompt_tokens", K_INT, OFF(prompt_tokens), NEVER},
    {"completion_tokens", K_INT, OFF(completion_tokens), NEVER},
    {"cost_usd", K_NUM, OFF(cost_usd), NEVER},
    {"first_ts", K_TIME, OFF(first_ts), NO_ROWS},
    {"last_ts", K_TIME, OFF(last_ts), NO_ROWS},
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

/* One cell: absent, an integer, a number, or a time (ms, written as ISO-8601). */
struct cell {
    enum { V_NULL, V_INT, V_NUM, V_TIME } t;
    int64_t i;
    double d;
};

static struct cell cell(const struct sb_store_usage_group *g, size_t col)
{
    const char *base = (const char *)g + cols[col].off;
    int64_t i = 0;
    double d = 0;
    if ((cols[col].absent == NO_ROWS && g->requests == 0) ||
        (cols[col].absent == NO_STREAMED && g->streamed == 0))
        return (struct cell){V_NULL, 0, 0};
    switch (cols[col].kind) {
    case K_INT:
        memcpy(&i, base, sizeof(i));
        return (struct cell){V_INT, i, 0};
    case K_TIME:
        memcpy(&i, base, sizeof(i));
        return (struct cell){V_TIME, i, 0};
    case K_NUM:
        memcpy(&d, base, sizeof(d));
        return (struct cell){V_NUM, 0, d};
    case K_RATE:
        return (struct cell){V_NUM, 0, g->requests ? (double)g->errors / (double)g->requests : 0};
    }
    return (struct cell){V_NULL, 0, 0};
}

static const char *iso_of(int64_t ms, char iso[32])
{
    sb__api_iso(ms, iso);
    return iso;
}

/* The group's key as text: the value, the bucket's ISO time, or NULL. */
static const char *group_key(const struct sb_store_usage_query *q,
                             const struct sb_store_usage_group *g, char iso[32])
{
    if (q->group_by != SB_STORE_USAGE_BY_HOUR && q->group_by != SB_STORE_USAGE_BY_DAY)
        return g->key;
    return iso_of(g->bucket_ms, iso);
}

/* ======================================================================
 * JSON
 * ==================================================================== */

static void json_group(struct sb_api_call *c, const struct sb_store_usage_query *q,
                       const struct sb_store_usage_group *g)
{
    struct sb_jw *j = &c->jw;
    char iso[32];
    sb_jw_obj_begin(j);
    sb_jw_key(j, "group");
    sb_jw_cstr(j, group_key(q, g, iso));
    for (size_t k = 0; k < NCOLS; k++) {
        struct cell v = cell(g, k);
        sb_jw_key(j, cols[k].name);
        if (v.t == V_INT)
            sb_jw_int(j, v.i);
        else if (v.t == V_NUM)
            sb_jw_double(j, v.d);
        else if (v.t == V_TIME)
            sb_jw_cstr(j, iso_of(v.i, iso));
        else
            sb_jw_null(j);
    }
    sb_jw_obj_end(j);
}

/* The query as it was applied (the own-rows rule included). */
static void json_filters(struct sb_jw *j, const struct sb_store_usage_query *q)
{
    sb_jw_key(j, "filters");
    sb_jw_obj_begin(j);
    for (int d = 1; d < SB_STORE_USAGE_NEQ; d++)
        if (q->eq[d]) {
            sb_jw_key(j, sb__api_usage_by_name((enum sb_store_usage_by)d));
            sb_jw_cstr(j, q->eq[d]);
        }
    if (q->status) {
        sb_jw_key(j, "status");
        sb_jw_cstr(j, q->status);
    }
    sb_jw_obj_end(j);
}

static void json_report(struct sb_api_call *c, const struct sb_store_usage_query *q,
                        const struct sb_store_usage_report *r)
{
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb__api_time(j, "from", q->from_ms);
    sb__api_time(j, "to", q->to_ms);
    sb_jw_key(j, "group_by");
    sb_jw_cstr(j, q->group_by ? sb__api_usage_by_name(q->group_by) : NULL);
    json_filters(j, q);
    sb_jw_key(j, "rows");
    sb_jw_int(j, r->rows);
    sb_jw_key(j, "truncated");
    sb_jw_bool(j, r->truncated);
    if (r->truncated) {
        sb_jw_key(j, "note");
        sb_jw_cstr(j, sb_arena_printf(c->arena,
                                      "more than %zu groups: only the first %zu by key are "
                                      "listed; narrow the window or the filters, or raise limit",
                                      q->max_groups, q->max_groups));
    }
    sb_jw_key(j, "data");
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < r->n; i++)
        json_group(c, q, &r->groups[i]);
    sb_jw_arr_end(j);
    sb_jw_obj_end(j);
}

/* ======================================================================
 * CSV (RFC 4180, with a header line)
 * ==================================================================== */

/* A text cell: quoted when it holds a comma, quote or line break; and, as
 * OWASP advises for CSV that opens in spreadsheets, a leading = + - @ or
 * control character is prefixed with ' so it is never read as a formula. */
static const char formula_start[] = "=+-@\t\r";

static void csv_text(struct sb_buf *b, const char *s)
{
    bool quote = s && strpbrk(s, ",\"\r\n") != NULL;
    if (!s)
        return;
    if (quote)
        sb_buf_append_char(b, '"');
    if (s[0] && strchr(formula_start, s[0]))
        sb_buf_append_char(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            sb_buf_append_char(b, '"');
        sb_buf_append_char(b, *p);
    }
    if (quote)
        sb_buf_append_char(b, '"');
}

/* The shortest form that reads back as the same double (as the JSON writer). */
static void csv_num(struct sb_buf *b, double v)
{
    char buf[32];
    if (!isfinite(v))
        return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sb_buf_append_cstr(b, buf);
}

static void csv_group(struct sb_buf *b, const struct sb_store_usage_query *q,
                      const struct sb_store_usage_group *g)
{
    char iso[32];
    csv_text(b, group_key(q, g, iso));
    for (size_t k = 0; k < NCOLS; k++) {
        struct cell v = cell(g, k);
        sb_buf_append_char(b, ',');
        if (v.t == V_INT)
            sb_buf_printf(b, "%lld", (long long)v.i);
        else if (v.t == V_NUM)
            csv_num(b, v.d);
        else if (v.t == V_TIME)
            sb_buf_append_cstr(b, iso_of(v.i, iso));
    }
    sb_buf_append_cstr(b, "\r\n");
}

/* The header names the group column after the grouping ("group" for none).
 * A truncated report says so in a header, since CSV has no place for a note. */
static void csv_report(struct sb_api_call *c, const struct sb_store_usage_query *q,
                       const struct sb_store_usage_report *r)
{
    struct sb_buf *b = &c->out;
    sb_buf_append_cstr(b, q->group_by ? sb__api_usage_by_name(q->group_by) : "group");
    for (size_t k = 0; k < NCOLS; k++)
        sb_buf_printf(b, ",%s", cols[k].name);
    sb_buf_append_cstr(b, "\r\n");
    for (size_t i = 0; i < r->n; i++)
        csv_group(b, q, &r->groups[i]);
    c->content_type = "text/csv; charset=utf-8";
    c->extra[c->nextra++] = (struct sb_http_header){SB_SLICE("content-disposition"),
                                                    SB_SLICE("attachment; filename=\"usage.csv\"")};
    if (r->truncated)
        c->extra[c->nextra++] =
            (struct sb_http_header){SB_SLICE("x-switchboard-truncated"), SB_SLICE("true")};
}

/* ======================================================================
 * The endpoint
 * ==================================================================== */

sb_err sb__api_usage(struct sb_api_call *c)
{
    struct sb_store_usage_query q;
    struct sb_store_usage_report r;
    bool csv;
    if (sb__api_usage_query(c, &q, &csv) != SB_OK ||
        sb_store_usage_report(c->api->store, &q, c->arena, &r, &c->err) != SB_OK)
        return c->err.code;
    if (csv)
        csv_report(c, &q, &r);
    else
        json_report(c, &q, &r);
    return SB_OK;
}
