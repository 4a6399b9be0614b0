/* SPDX-License-Identifier: MIT */
/*
 * entity_json.c - registry rows as /api JSON.
 *
 * A response mirrors the config file's entry (DESIGN.md §4: same keys, so a
 * GET can be edited and PUT back) plus the read-only fields of §5. Secrets
 * never appear: a stored credential shows only its masked form, a config
 * reference only its name (env:NAME is not a secret).
 */
#include <string.h>

#include "api/internal.h"

static void str_or_null(struct sb_jw *j, const char *key, const char *v)
{
    sb_jw_key(j, key);
    sb_jw_cstr(j, v);
}

static void int_or_null(struct sb_jw *j, const char *key, int64_t v)
{
    sb_jw_key(j, key);
    if (v)
        sb_jw_int(j, v);
    else
        sb_jw_null(j);
}

static void credential(struct sb_jw *j, const struct sb_store_provider *p)
{
    sb_jw_key(j, "credential");
    if (!p->key_masked && !p->api_key) {
        sb_jw_null(j);
        return;
    }
    sb_jw_obj_begin(j);
    sb_jw_key(j, "source");
    sb_jw_cstr(j, p->key_masked ? "stored" : "config");
    str_or_null(j, "masked", p->key_masked);
    str_or_null(j, "reference", p->key_masked ? NULL : p->api_key);
    sb_jw_obj_end(j);
}

void sb__api_write_provider(struct sb_jw *j, const struct sb_store_provider *p)
{
    sb_jw_obj_begin(j);
    str_or_null(j, "id", p->id);
    str_or_null(j, "type", p->type);
    str_or_null(j, "name", p->name);
    str_or_null(j, "description", p->description);
    str_or_null(j, "base_url", p->base_url);
    str_or_null(j, "auth_method", p->auth_method);
    sb_jw_key(j, "headers");
    sb_jw_obj_begin(j);
    for (size_t i = 0; i < p->nheaders; i++) {
        sb_jw_key(j, p->headers[i].name);
        sb_jw_cstr(j, p->headers[i].value);
    }
    sb_jw_obj_end(j);
    sb_jw_key(j, "rate_limits");
    sb_jw_obj_begin(j);
    int_or_null(j, "rpm", p->rpm);
    int_or_null(j, "tpm", p->tpm);
    sb_jw_obj_end(j);
    int_or_null(j, "timeout_ms", p->timeout_ms);
    int_or_null(j, "connect_timeout_ms", p->connect_timeout_ms);
    int_or_null(j, "idle_timeout_ms", p->idle_timeout_ms);
    int_or_null(j, "max_concurrency", p->max_concurrency);
    str_or_null(j, "transport", p->transport ? p->transport : "auto");
    str_or_null(j, "api_version", p->api_version);
    str_or_null(j, "region", p->region);
    sb_jw_key(j, "enabled");
    sb_jw_bool(j, p->enabled);
    sb_jw_key(j, "status");
    sb_jw_cstr(j, p->enabled ? "active" : "inactive");
    sb_jw_key(j, "personal_keys_required");
    sb_jw_bool(j, p->personal_keys_required);
    sb_jw_key(j, "is_system");
    sb_jw_bool(j, p->is_system);
    credential(j, p);
    sb__api_time(j, "last_tested", p->last_tested);
    sb_jw_key(j, "test_result");
    if (p->test_result && *p->test_result)
        sb_jw_raw(j, sb_slice_cstr(p->test_result));
    else
        sb_jw_null(j);
    str_or_null(j, "created_by", p->created_by);
    sb__api_time(j, "created_at", p->created_at);
    sb__api_time(j, "updated_at", p->updated_at);
    sb_jw_obj_end(j);
}

static void caps(struct sb_jw *j, const struct sb_store_caps *c)
{
    sb_jw_key(j, "capabilities");
    sb_jw_obj_begin(j);
    sb_jw_key(j, "streaming");
    sb_jw_bool(j, c->streaming);
    sb_jw_key(j, "tools");
    sb_jw_bool(j, c->tools);
    sb_jw_key(j, "vision");
    sb_jw_bool(j, c->vision);
    sb_jw_key(j, "json_mode");
    sb_jw_bool(j, c->json_mode);
    sb_jw_key(j, "embeddings");
    sb_jw_bool(j, c->embeddings);
    sb_jw_obj_end(j);
}

void sb__api_write_caps(struct sb_jw *j, const struct sb_store_caps *c)
{
    caps(j, c);
}

static void strs(struct sb_jw *j, const char *key, const char *const *v, size_t n)
{
    sb_jw_key(j, key);
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        sb_jw_cstr(j, v[i]);
    sb_jw_arr_end(j);
}

void sb__api_write_model(struct sb_jw *j, const struct sb_store_model *m)
{
    sb_jw_obj_begin(j);
    str_or_null(j, "id", m->id);
    str_or_null(j, "provider", m->provider);
    str_or_null(j, "upstream_model", m->upstream_model);
    str_or_null(j, "name", m->name);
    str_or_null(j, "description", m->description);
    int_or_null(j, "context_length", m->context_length);
    int_or_null(j, "max_output_tokens", m->max_output_tokens);
    caps(j, &m->caps);
    sb_jw_key(j, "pricing");
    sb_jw_obj_begin(j);
    sb_jw_key(j, "input_per_mtok");
    sb_jw_double(j, m->input_per_mtok);
    sb_jw_key(j, "output_per_mtok");
    sb_jw_double(j, m->output_per_mtok);
    sb_jw_obj_end(j);
    sb_jw_key(j, "fallback_priority");
    sb_jw_int(j, m->fallback_priority);
    strs(j, "fallbacks", m->fallbacks, m->nfallbacks);
    sb_jw_key(j, "enabled");
    sb_jw_bool(j, m->enabled);
    str_or_null(j, "status", m->status ? m->status : m->enabled ? "active" : "inactive");
    sb_jw_key(j, "is_default");
    sb_jw_bool(j, m->is_default);
    sb_jw_key(j, "is_champion");
    sb_jw_bool(j, m->is_champion);
    str_or_null(j, "owner", m->owner);
    sb_jw_key(j, "is_global");
    sb_jw_bool(j, m->owner == NULL);
    sb_jw_key(j, "is_system");
    sb_jw_bool(j, m->is_system);
    sb__api_time(j, "created_at", m->created_at);
    sb__api_time(j, "updated_at", m->updated_at);
    sb__api_time(j, "last_used_at", m->last_used_at);
    sb_jw_obj_end(j);
}

void sb__api_write_route(struct sb_jw *j, const struct sb_store_route *r)
{
    sb_jw_obj_begin(j);
    str_or_null(j, "id", r->id);
    str_or_null(j, "strategy", r->strategy);
    strs(j, "targets", r->targets, r->ntargets);
    sb_jw_key(j, "weights");
    if (r->weights) {
        sb_jw_arr_begin(j);
        for (size_t i = 0; i < r->ntargets; i++)
            sb_jw_int(j, r->weights[i]);
        sb_jw_arr_end(j);
    } else {
        sb_jw_null(j);
    }
    sb_jw_key(j, "cache"); /* the config file's block, null without one */
    if (r->cache_ttl_s > 0) {
        sb_jw_obj_begin(j);
        sb_jw_key(j, "ttl_s");
        sb_jw_int(j, r->cache_ttl_s);
        sb_jw_key(j, "shared");
        sb_jw_bool(j, r->cache_shared);
        sb_jw_key(j, "sampled");
        sb_jw_bool(j, r->cache_sampled);
        sb_jw_obj_end(j);
    } else {
        sb_jw_null(j);
    }
    sb_jw_key(j, "is_system");
    sb_jw_bool(j, r->is_system);
    sb__api_time(j, "created_at", r->created_at);
    sb__api_time(j, "updated_at", r->updated_at);
    sb_jw_obj_end(j);
}

/* ---- documents for the audit log ---- */

typedef void (*write_fn)(struct sb_jw *j, const void *e);

static struct sb_slice doc(struct sb_api_call *c, write_fn fn, const void *e)
{
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    fn(&j, e);
    struct sb_slice s = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

static void w_provider(struct sb_jw *j, const void *e)
{
    sb__api_write_provider(j, e);
}

static void w_model(struct sb_jw *j, const void *e)
{
    sb__api_write_model(j, e);
}

static void w_route(struct sb_jw *j, const void *e)
{
    sb__api_write_route(j, e);
}

struct sb_slice sb__api_doc_provider(struct sb_api_call *c, const struct sb_store_provider *p)
{
    return p ? doc(c, w_provider, p) : SB_SLICE_NULL;
}

struct sb_slice sb__api_doc_model(struct sb_api_call *c, const struct sb_store_model *m)
{
    return m ? doc(c, w_model, m) : SB_SLICE_NULL;
}

struct sb_slice sb__api_doc_route(struct sb_api_call *c, const struct sb_store_route *r)
{
    return r ? doc(c, w_route, r) : SB_SLICE_NULL;
}
