/* SPDX-License-Identifier: MIT */
/*
 * columns.c - the JSON columns of providers, models and routes.
 *
 * One encoding shared by every backend, so a database written by SQLite
 * reads the same when moved to PostgreSQL. Member names are the config
 * file's keys (DESIGN.md §3), so the admin API can mirror them too.
 * auth_config holds credential *references* (env:NAME, file:PATH) only; an
 * encrypted credential lives in provider_credentials, never here.
 * Decoding is lenient about absent members (defaults apply) and strict about
 * types: a column that is not what we wrote fails with SB_E_STORE.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "store/store.h"

/* The capability flags, in the order the config file documents them. */
static const struct {
    const char *key;
    size_t off; /* of the bool in struct sb_store_caps */
} caps[] = {
    {"streaming", offsetof(struct sb_store_caps, streaming)},
    {"tools", offsetof(struct sb_store_caps, tools)},
    {"vision", offsetof(struct sb_store_caps, vision)},
    {"json_mode", offsetof(struct sb_store_caps, json_mode)},
    {"embeddings", offsetof(struct sb_store_caps, embeddings)},
};

/* ---- capabilities by name ---- */

int sb__cap_value(const struct sb_store_caps *c, const char *name)
{
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (strcmp(caps[i].key, name) == 0)
            return *(const bool *)((const char *)c + caps[i].off) ? 1 : 0;
    return -1;
}

/* ---- encoding ---- */

static void put_str(struct sb_jw *w, const char *key, const char *v)
{
    if (!v)
        return;
    sb_jw_key(w, key);
    sb_jw_cstr(w, v);
}

static void put_int(struct sb_jw *w, const char *key, int64_t v)
{
    if (v == 0)
        return;
    sb_jw_key(w, key);
    sb_jw_int(w, v);
}

static void begin(struct sb_jw *w, struct sb_buf *out)
{
    sb_buf_reset(out);
    sb_jw_init(w, out);
    sb_jw_obj_begin(w);
}

void sb__enc_auth(const struct sb_store_provider *p, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    put_str(&w, "api_key", p->api_key);
    put_str(&w, "aws_access_key_id", p->aws_access_key_id);
    put_str(&w, "aws_secret_access_key", p->aws_secret_access_key);
    put_str(&w, "aws_session_token", p->aws_session_token);
    if (p->napi_keys > 0) {
        sb_jw_key(&w, "api_keys");
        sb_jw_arr_begin(&w);
        for (size_t i = 0; i < p->napi_keys; i++) {
            sb_jw_obj_begin(&w);
            put_str(&w, "label", p->api_keys[i].label);
            put_str(&w, "key", p->api_keys[i].key);
            sb_jw_key(&w, "weight");
            sb_jw_int(&w, p->api_keys[i].weight > 0 ? p->api_keys[i].weight : 1);
            sb_jw_obj_end(&w);
        }
        sb_jw_arr_end(&w);
    }
    sb_jw_obj_end(&w);
}

void sb__enc_options(const struct sb_store_provider *p, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    put_int(&w, "timeout_ms", p->timeout_ms);
    put_int(&w, "connect_timeout_ms", p->connect_timeout_ms);
    put_int(&w, "idle_timeout_ms", p->idle_timeout_ms);
    put_int(&w, "max_concurrency", p->max_concurrency);
    put_str(&w, "transport", p->transport);
    put_str(&w, "api_version", p->api_version);
    put_str(&w, "region", p->region);
    if (p->personal_keys_required) {
        sb_jw_key(&w, "personal_keys_required");
        sb_jw_bool(&w, true);
    }
    if (p->nheaders) {
        sb_jw_key(&w, "headers");
        sb_jw_obj_begin(&w);
        for (size_t i = 0; i < p->nheaders; i++) {
            sb_jw_key(&w, p->headers[i].name);
            sb_jw_cstr(&w, p->headers[i].value);
        }
        sb_jw_obj_end(&w);
    }
    sb_jw_obj_end(&w);
}

void sb__enc_rate_limits(const struct sb_store_provider *p, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    put_int(&w, "rpm", p->rpm);
    put_int(&w, "tpm", p->tpm);
    sb_jw_obj_end(&w);
}

/* Capabilities never declared (still the default: streaming only) are stored as "{}",
 * so a reload keeps "unknown" apart from "declared: none" (sb_store_caps.declared). */
void sb__enc_caps(const struct sb_store_model *m, struct sb_buf *out)
{
    const struct sb_store_caps *c = &m->caps;
    bool unknown =
        !c->declared && c->streaming && !c->tools && !c->vision && !c->json_mode && !c->embeddings;
    struct sb_jw w;
    begin(&w, out);
    for (size_t i = 0; !unknown && i < sizeof(caps) / sizeof(caps[0]); i++) {
        sb_jw_key(&w, caps[i].key);
        sb_jw_bool(&w, *(const bool *)((const char *)&m->caps + caps[i].off));
    }
    sb_jw_obj_end(&w);
}

void sb__enc_pricing(const struct sb_store_model *m, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    sb_jw_key(&w, "input_per_mtok");
    sb_jw_double(&w, m->input_per_mtok);
    sb_jw_key(&w, "output_per_mtok");
    sb_jw_double(&w, m->output_per_mtok);
    sb_jw_obj_end(&w);
}

static void put_strs(struct sb_jw *w, const char *const *v, size_t n)
{
    sb_jw_arr_begin(w);
    for (size_t i = 0; i < n; i++)
        sb_jw_cstr(w, v[i]);
    sb_jw_arr_end(w);
}

void sb__enc_targets(const struct sb_store_route *r, struct sb_buf *out)
{
    struct sb_jw w;
    sb_buf_reset(out);
    sb_jw_init(&w, out);
    put_strs(&w, r->targets, r->ntargets);
}

/* A model's fallbacks; a model without any stores "{}". */
void sb__enc_model_options(const struct sb_store_model *m, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    if (m->nfallbacks > 0) {
        sb_jw_key(&w, "fallbacks");
        put_strs(&w, m->fallbacks, m->nfallbacks);
    }
    sb_jw_obj_end(&w);
}

/* NULL weights are stored as SQL NULL (every target weighs 1): out stays empty. */
void sb__enc_weights(const struct sb_store_route *r, struct sb_buf *out)
{
    struct sb_jw w;
    sb_buf_reset(out);
    if (!r->weights)
        return;
    sb_jw_init(&w, out);
    sb_jw_arr_begin(&w);
    for (size_t i = 0; i < r->ntargets; i++)
        sb_jw_int(&w, r->weights[i]);
    sb_jw_arr_end(&w);
}

/* The route's cache block; a route without a cache (ttl 0) stores "{}". */
void sb__enc_route_options(const struct sb_store_route *r, struct sb_buf *out)
{
    struct sb_jw w;
    begin(&w, out);
    if (r->cache_ttl_s > 0) {
        sb_jw_key(&w, "cache");
        sb_jw_obj_begin(&w);
        sb_jw_key(&w, "ttl_s");
        sb_jw_int(&w, r->cache_ttl_s);
        sb_jw_key(&w, "shared");
        sb_jw_bool(&w, r->cache_shared);
        sb_jw_key(&w, "sampled");
        sb_jw_bool(&w, r->cache_sampled);
        sb_jw_obj_end(&w);
    }
    sb_jw_obj_end(&w);
}

/* ---- decoding ---- */

static sb_err parse(struct sb_arena *a, const char *text, const char *column, bool array,
                    struct sb_json **out, struct sb_error *err)
{
    static const struct sb_json_limits lim = {.max_depth = 8, .max_bytes = 1 << 20};
    struct sb_error perr = {0};
    if (!text || !*text)
        text = array ? "[]" : "{}";
    if (sb_json_parse(a, text, strlen(text), &lim, out, &perr) != SB_OK)
        return sb_fail(err, SB_E_STORE, "column %s: %s", column, perr.msg);
    if ((*out)->type != (array ? SB_JSON_ARRAY : SB_JSON_OBJECT))
        return sb_fail(err, SB_E_STORE, "column %s: expected a JSON %s", column,
                       array ? "array" : "object");
    return SB_OK;
}

/* Optional string member: absent or null leaves *dst alone. */
static sb_err get_str(struct sb_arena *a, const struct sb_json *obj, const char *key,
                      const char **dst, const char *column, struct sb_error *err)
{
    const struct sb_json *j = sb_json_get(obj, key);
    if (!j || j->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_is_string(j) || memchr(j->str.p, '\0', j->str.len))
        return sb_fail(err, SB_E_STORE, "column %s: %s is not a string", column, key);
    *dst = sb_arena_strndup(a, j->str.p, j->str.len);
    return SB_OK;
}

static sb_err get_int(const struct sb_json *obj, const char *key, int64_t *dst, const char *column,
                      struct sb_error *err)
{
    const struct sb_json *j = sb_json_get(obj, key);
    if (!j || j->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_int64(j, dst))
        return sb_fail(err, SB_E_STORE, "column %s: %s is not an integer", column, key);
    return SB_OK;
}

static sb_err get_num(const struct sb_json *obj, const char *key, double *dst, const char *column,
                      struct sb_error *err)
{
    const struct sb_json *j = sb_json_get(obj, key);
    if (!j || j->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_double(j, dst) || !isfinite(*dst))
        return sb_fail(err, SB_E_STORE, "column %s: %s is not a number", column, key);
    return SB_OK;
}

/* auth_config.api_keys: [{"label", "key", "weight"}], the config file's pool references. */
static sb_err dec_key_refs(struct sb_arena *a, const struct sb_json *arr,
                           struct sb_store_provider *p, struct sb_error *err)
{
    p->api_keys = NULL;
    p->napi_keys = 0;
    if (!arr || arr->type == SB_JSON_NULL)
        return SB_OK;
    if (arr->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_STORE, "column auth_config: api_keys is not an array");
    p->api_keys = sb_arena_calloc(a, (arr->count ? arr->count : 1) * sizeof(*p->api_keys));
    for (const struct sb_json *k = arr->child; k; k = k->next) {
        struct sb_store_key_ref *r = &p->api_keys[p->napi_keys++];
        sb_err rc = k->type == SB_JSON_OBJECT
                        ? get_str(a, k, "label", &r->label, "auth_config", err)
                        : sb_fail(err, SB_E_STORE, "column auth_config: an api_keys entry is "
                                                   "not an object");
        if (rc == SB_OK)
            rc = get_str(a, k, "key", &r->key, "auth_config", err);
        if (rc == SB_OK)
            rc = get_int(k, "weight", &r->weight, "auth_config", err);
        if (rc != SB_OK)
            return rc;
    }
    return SB_OK;
}

sb_err sb__dec_auth(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                    struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "auth_config", false, &o, err);
    if (rc == SB_OK)
        rc = get_str(a, o, "api_key", &p->api_key, "auth_config", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "aws_access_key_id", &p->aws_access_key_id, "auth_config", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "aws_secret_access_key", &p->aws_secret_access_key, "auth_config", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "aws_session_token", &p->aws_session_token, "auth_config", err);
    if (rc == SB_OK)
        rc = dec_key_refs(a, sb_json_get(o, "api_keys"), p, err);
    return rc;
}

static sb_err dec_headers(struct sb_arena *a, const struct sb_json *o, struct sb_store_provider *p,
                          struct sb_error *err)
{
    const struct sb_json *h = sb_json_get(o, "headers");
    if (!h || h->type == SB_JSON_NULL)
        return SB_OK;
    if (h->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_STORE, "column options: headers is not an object");
    p->headers = sb_arena_calloc(a, (h->count ? h->count : 1) * sizeof(*p->headers));
    p->nheaders = 0;
    for (const struct sb_json *kv = h->child; kv; kv = kv->next) {
        if (!sb_json_is_string(kv) || memchr(kv->str.p, '\0', kv->str.len) ||
            memchr(kv->key.p, '\0', kv->key.len))
            return sb_fail(err, SB_E_STORE, "column options: a header value is not a string");
        p->headers[p->nheaders].name = sb_arena_strndup(a, kv->key.p, kv->key.len);
        p->headers[p->nheaders].value = sb_arena_strndup(a, kv->str.p, kv->str.len);
        p->nheaders++;
    }
    return SB_OK;
}

sb_err sb__dec_options(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                       struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "options", false, &o, err);
    if (rc == SB_OK)
        rc = get_int(o, "timeout_ms", &p->timeout_ms, "options", err);
    if (rc == SB_OK)
        rc = get_int(o, "connect_timeout_ms", &p->connect_timeout_ms, "options", err);
    if (rc == SB_OK)
        rc = get_int(o, "idle_timeout_ms", &p->idle_timeout_ms, "options", err);
    if (rc == SB_OK)
        rc = get_int(o, "max_concurrency", &p->max_concurrency, "options", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "transport", &p->transport, "options", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "api_version", &p->api_version, "options", err);
    if (rc == SB_OK)
        rc = get_str(a, o, "region", &p->region, "options", err);
    if (rc == SB_OK)
        rc = dec_headers(a, o, p, err);
    if (rc == SB_OK)
        p->personal_keys_required = sb_json_bool(sb_json_get(o, "personal_keys_required"));
    return rc;
}

sb_err sb__dec_rate_limits(struct sb_arena *a, const char *text, struct sb_store_provider *p,
                           struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "rate_limits", false, &o, err);
    if (rc == SB_OK)
        rc = get_int(o, "rpm", &p->rpm, "rate_limits", err);
    if (rc == SB_OK)
        rc = get_int(o, "tpm", &p->tpm, "rate_limits", err);
    return rc;
}

sb_err sb__dec_caps(struct sb_arena *a, const char *text, struct sb_store_model *m,
                    struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "capabilities", false, &o, err);
    if (rc != SB_OK)
        return rc;
    /* Absent members keep the caller's defaults; any member makes the block declared. */
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        const struct sb_json *j = sb_json_get(o, caps[i].key);
        if (j)
            *(bool *)((char *)&m->caps + caps[i].off) = sb_json_bool(j);
        m->caps.declared |= j != NULL;
    }
    return SB_OK;
}

sb_err sb__dec_pricing(struct sb_arena *a, const char *text, struct sb_store_model *m,
                       struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "pricing", false, &o, err);
    if (rc == SB_OK)
        rc = get_num(o, "input_per_mtok", &m->input_per_mtok, "pricing", err);
    if (rc == SB_OK)
        rc = get_num(o, "output_per_mtok", &m->output_per_mtok, "pricing", err);
    return rc;
}

/* A JSON array of strings into an arena array. */
static sb_err get_strs(struct sb_arena *a, const struct sb_json *arr, const char *column,
                       const char ***out, size_t *n, struct sb_error *err)
{
    const char **v = sb_arena_calloc(a, (arr->count ? arr->count : 1) * sizeof(*v));
    *n = 0;
    for (const struct sb_json *t = arr->child; t; t = t->next) {
        if (!sb_json_is_string(t) || memchr(t->str.p, '\0', t->str.len))
            return sb_fail(err, SB_E_STORE, "column %s: an element is not a string", column);
        v[(*n)++] = sb_arena_strndup(a, t->str.p, t->str.len);
    }
    *out = v;
    return SB_OK;
}

sb_err sb__dec_targets(struct sb_arena *a, const char *text, struct sb_store_route *r,
                       struct sb_error *err)
{
    struct sb_json *arr = NULL;
    sb_err rc = parse(a, text, "targets", true, &arr, err);
    return rc != SB_OK ? rc : get_strs(a, arr, "targets", &r->targets, &r->ntargets, err);
}

sb_err sb__dec_model_options(struct sb_arena *a, const char *text, struct sb_store_model *m,
                             struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "options", false, &o, err);
    const struct sb_json *f = rc == SB_OK ? sb_json_get(o, "fallbacks") : NULL;
    m->fallbacks = NULL;
    m->nfallbacks = 0;
    if (!f || f->type == SB_JSON_NULL)
        return rc;
    if (f->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_STORE, "column options: fallbacks is not an array");
    return get_strs(a, f, "options", &m->fallbacks, &m->nfallbacks, err);
}

sb_err sb__dec_weights(struct sb_arena *a, const char *text, struct sb_store_route *r,
                       struct sb_error *err)
{
    struct sb_json *arr = NULL;
    r->weights = NULL;
    if (!text || !*text)
        return SB_OK;
    sb_err rc = parse(a, text, "weights", true, &arr, err);
    if (rc != SB_OK)
        return rc;
    if (arr->count != r->ntargets)
        return sb_fail(err, SB_E_STORE, "column weights: %zu weights for %zu targets", arr->count,
                       r->ntargets);
    int64_t *w = sb_arena_calloc(a, (arr->count ? arr->count : 1) * sizeof(*w));
    size_t i = 0;
    for (const struct sb_json *t = arr->child; t; t = t->next)
        if (!sb_json_int64(t, &w[i++]))
            return sb_fail(err, SB_E_STORE, "column weights: an element is not an integer");
    r->weights = w;
    r->nweights = i;
    return SB_OK;
}

sb_err sb__dec_route_options(struct sb_arena *a, const char *text, struct sb_store_route *r,
                             struct sb_error *err)
{
    struct sb_json *o = NULL;
    sb_err rc = parse(a, text, "options", false, &o, err);
    const struct sb_json *c = rc == SB_OK ? sb_json_get(o, "cache") : NULL;
    if (!c || c->type == SB_JSON_NULL)
        return rc;
    if (c->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_STORE, "column options: cache is not an object");
    rc = get_int(c, "ttl_s", &r->cache_ttl_s, "options", err);
    r->cache_shared = sb_json_bool(sb_json_get(c, "shared"));
    r->cache_sampled = sb_json_bool(sb_json_get(c, "sampled"));
    return rc;
}
