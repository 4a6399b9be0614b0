/* SPDX-License-Identifier: MIT */
/*
 * provider_info.c - what a provider can do and how it has been doing:
 * /api/providers/{id}/capabilities (the union over its enabled models) and
 * /api/providers/stats (from the usage rows).
 */
#include <string.h>

#include "api/internal.h"

sb_err sb__api_provider_capabilities(struct sb_api_call *c)
{
    struct sb_store_provider p;
    struct sb_store_filter f = {0};
    struct sb_store_model *ms = NULL;
    struct sb_store_page page = {0};
    struct sb_store_caps u = {0};
    struct sb_store *s = c->api->store;
    if (sb_store_provider_get(s, sb__api_param(c, 0), c->arena, &p, &c->err) != SB_OK)
        return c->err.code;
    f.provider = p.id;
    f.enabled = SB_STORE_YES;
    if (sb_store_model_list(s, &f, c->arena, &ms, &page, &c->err) != SB_OK)
        return c->err.code;
    for (size_t i = 0; i < page.n; i++) {
        u.streaming |= ms[i].caps.streaming;
        u.tools |= ms[i].caps.tools;
        u.vision |= ms[i].caps.vision;
        u.json_mode |= ms[i].caps.json_mode;
        u.embeddings |= ms[i].caps.embeddings;
    }
    sb_jw_obj_begin(&c->jw);
    sb_jw_key(&c->jw, "provider");
    sb_jw_cstr(&c->jw, p.id);
    sb_jw_key(&c->jw, "type");
    sb_jw_cstr(&c->jw, p.type);
    sb__api_write_caps(&c->jw, &u);
    sb_jw_key(&c->jw, "models");
    sb_jw_int(&c->jw, (int64_t)page.n);
    sb_jw_obj_end(&c->jw);
    return SB_OK;
}

/* from/to: Unix ms; default: the last 24 hours. */
static sb_err window(struct sb_api_call *c, int64_t *from, int64_t *to)
{
    const char *names[2] = {"from", "to"};
    int64_t *dst[2] = {from, to};
    *to = sb__api_now_ms() + 1;
    *from = *to - 24 * 3600 * 1000LL;
    for (int i = 0; i < 2; i++) {
        const char *v = sb__api_query(c, names[i]);
        unsigned long long u;
        if (!v)
            continue;
        if (!sb_slice_to_u64(sb_slice_cstr(v), &u) || u > (unsigned long long)INT64_MAX)
            return sb__api_fail(c, SB_E_BAD_REQUEST, names[i],
                                "%s: expected a time in Unix milliseconds", names[i]);
        *dst[i] = (int64_t)u;
    }
    if (*from >= *to)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "from", "from must be before to");
    return SB_OK;
}

sb_err sb__api_providers_stats(struct sb_api_call *c)
{
    int64_t from, to;
    struct sb_store_provider_stats *st = NULL;
    size_t n = 0;
    if (window(c, &from, &to) != SB_OK ||
        sb_store_provider_stats(c->api->store, sb__api_query(c, "provider"), from, to, c->arena,
                                &st, &n, &c->err) != SB_OK)
        return c->err.code;
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb__api_time(j, "from", from);
    sb__api_time(j, "to", to);
    sb_jw_key(j, "data");
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        sb_jw_obj_begin(j);
        sb_jw_key(j, "provider");
        sb_jw_cstr(j, st[i].provider);
        sb_jw_key(j, "requests");
        sb_jw_int(j, st[i].requests);
        sb_jw_key(j, "errors");
        sb_jw_int(j, st[i].errors);
        sb_jw_key(j, "error_rate");
        sb_jw_double(j, st[i].requests ? (double)st[i].errors / (double)st[i].requests : 0);
        sb_jw_key(j, "latency_p50_ms");
        sb_jw_double(j, st[i].latency_p50_ms);
        sb_jw_key(j, "latency_p95_ms");
        sb_jw_double(j, st[i].latency_p95_ms);
        sb_jw_key(j, "prompt_tokens");
        sb_jw_int(j, st[i].prompt_tokens);
        sb_jw_key(j, "completion_tokens");
        sb_jw_int(j, st[i].completion_tokens);
        sb_jw_key(j, "cost_usd");
        sb_jw_double(j, st[i].cost_usd);
        sb_jw_obj_end(j);
    }
    sb_jw_arr_end(j);
    sb_jw_obj_end(j);
    return SB_OK;
}
