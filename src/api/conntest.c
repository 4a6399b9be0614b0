/* SPDX-License-Identifier: MIT */
/*
 * conntest.c - "test connection": POST /api/providers/{id}/test,
 * POST /api/models/{id}/test and POST /api/providers/test (a configuration
 * not yet saved), each answering with probe.c's diagnosis.
 *
 * These routes are marked unlocked in table.c: a test waits on the network
 * for up to 15 s per request, and holding the api mutex that long would
 * stall every other /api call and the version poller. So a handler here
 * reads the store under the lock, lets go, tests, and takes the lock again
 * only to store the result.
 *
 * The credentials come from a private snapshot built by the registry's own
 * builder (registry_build.h) from the provider's row, so the test sends what
 * the data plane would send, decrypted the same way. Private, not the
 * published one: the published snapshot holds only enabled providers, and an
 * admin tests a provider before enabling it. The snapshot wipes its secrets
 * when released; an unsaved configuration's literal key lives in one
 * sb_secret, and its copies in the parsed body are wiped by hand.
 *
 * A non-admin's unsaved configuration is refused (403) when its host
 * resolves to a loopback, private or link-local address, and the probe then
 * connects only to the addresses it checked. Tests are rate-limited per
 * actor (ratelimit.c). Model tests are answered but not stored: models have
 * no last_tested column.
 */
#include <string.h>

#include "api/internal.h"
#include "api/probe.h"
#include "core/log.h"
#include "crypto/secret.h"
#include "registry/config.h"
#include "registry/registry.h"
#include "registry/registry_build.h"

#define MODEL_TEST_TOKENS 5 /* default max_tokens of a model test (1..16) */

/* What one test runs against. */
struct target {
    struct sb_registry *snap; /* private snapshot; owns the decrypted credentials */
    struct sb_provider prov;  /* a copy, so an unsaved test can hold the body's key */
    struct sb_model model;    /* a copy whose provider is &prov */
    bool has_model;
    struct sb_secret *key; /* an unsaved configuration's key, NULL otherwise */
};

static void target_free(struct target *t)
{
    sb_secret_free(t->key);
    if (t->snap)
        sb_registry_release(t->snap); /* wipes the decrypted credentials */
}

/* ======================================================================
 * Turns: the rate limit
 * ==================================================================== */

static sb_err take_turn(struct sb_api_call *c)
{
    int64_t retry = 0;
    if (sb__api_rate_take(&c->api->tests, c->actor.name, sb__api_now_ms(), &retry) == SB_OK)
        return SB_OK;
    char *v = sb_arena_printf(c->arena, "%lld", (long long)retry);
    if (c->nextra < SB_API_MAX_EXTRA)
        c->extra[c->nextra++] = (struct sb_http_header){SB_SLICE("retry-after"), sb_slice_cstr(v)};
    c->suggest[c->nsuggest++] = "connection tests send real upstream requests: at most 10 a "
                                "minute per user, and 2 at a time";
    return sb__api_fail(c, SB_E_RATE_LIMITED, NULL, "too many connection tests; retry in %lld s",
                        (long long)retry);
}

/* ======================================================================
 * Targets: a private snapshot of one provider and at most one model
 * ==================================================================== */

static sb_err build_one(struct sb_api_call *c, const struct sb_store_provider *sp,
                        const struct sb_store_model *sm, struct target *t)
{
    struct sb_store_provider p = *sp;
    struct sb_store_model m = sm ? *sm : (struct sb_store_model){0};
    p.enabled = true; /* disabled ones are tested before they serve */
    m.enabled = true;
    m.status = NULL;
    struct sb_store_entities one = {
        .providers = &p, .nproviders = 1, .models = &m, .nmodels = sm ? 1 : 0};
    struct sb_registry_source src = {.e = &one};
    struct sb_registry_keys keys = {.kr = c->api->keyring};
    if (sb_registry_build_source(&src, &keys, &t->snap, &c->err) != SB_OK)
        return c->err.code;
    const struct sb_provider *rp = sb_registry_find_provider(t->snap, sb_slice_cstr(p.id));
    if (!rp)
        return sb__api_fail(c, SB_E_UNPROCESSABLE, "type",
                            "provider %s: type %s has no adapter yet, so it cannot be tested", p.id,
                            p.type);
    t->prov = *rp;
    const struct sb_model *rm = sm ? sb_registry_find_model(t->snap, sb_slice_cstr(m.id)) : NULL;
    if (rm) {
        t->model = *rm;
        t->model.provider = &t->prov;
        t->has_model = true;
    }
    return SB_OK;
}

/* Better is the model a provider test should try: default, champion, enabled, priority. */
static bool better(const struct sb_store_model *m, const struct sb_store_model *best)
{
    if (!best)
        return true;
    if (m->is_default != best->is_default)
        return m->is_default;
    if (m->is_champion != best->is_champion)
        return m->is_champion;
    if (m->enabled != best->enabled)
        return m->enabled;
    return m->fallback_priority < best->fallback_priority;
}

static const struct sb_store_provider *find_provider(const struct sb_store_entities *e,
                                                     const char *id)
{
    for (size_t i = 0; i < e->nproviders; i++)
        if (strcmp(e->providers[i].id, id) == 0)
            return &e->providers[i];
    return NULL;
}

/* Provider id with its best global model (or the model given). Holding the lock. */
static sb_err load_target(struct sb_api_call *c, const char *id, const struct sb_store_model *given,
                          struct target *t)
{
    struct sb_store_entities *e = NULL;
    const struct sb_store_model *pick = given;
    if (sb_store_load(c->api->store, &e, &c->err) != SB_OK)
        return c->err.code;
    const struct sb_store_provider *sp = find_provider(e, id);
    for (size_t i = 0; sp && !given && i < e->nmodels; i++) {
        const struct sb_store_model *m = &e->models[i];
        if (strcmp(m->provider, id) == 0 && !m->owner && better(m, pick))
            pick = m;
    }
    sb_err rc = sp ? build_one(c, sp, pick, t)
                   : sb__api_fail(c, SB_E_NOT_FOUND, NULL, "no provider '%s'", id);
    sb_store_entities_free(e);
    return rc;
}

/* ======================================================================
 * Running and answering
 * ==================================================================== */

/* Runs the probe; the result goes to c->out. A refusal (SSRF) is c's error. */
static sb_err run_probe(struct sb_api_call *c, struct target *t, bool list, bool refuse_private,
                        int max_tokens, bool with_answer, struct sb_probe_result *r)
{
    struct sb_arena *a = sb_arena_create(16384); /* holds auth lines: wiped on free */
    struct sb_probe_target pt = {.provider = &t->prov,
                                 .model = t->has_model ? &t->model : NULL,
                                 .list_models = list,
                                 .refuse_private = refuse_private,
                                 .max_tokens = max_tokens};
    sb_err rc = sb__probe_run(a, &pt, r, &c->err);
    if (rc == SB_OK)
        sb__probe_write(&c->jw, r, with_answer);
    sb_arena_free(a);
    if (rc == SB_OK)
        sb_info("msg=\"connection test\" actor=%s provider=%s ok=%d stage=%s total_ms=%lld",
                c->actor.name, t->prov.id, r->ok, sb__probe_stage_name(r->stage),
                (long long)r->total_ms);
    return rc;
}

static sb_err store_result(struct sb_api_call *c, const char *id, const struct sb_probe_result *r)
{
    struct sb_error err = {0};
    pthread_mutex_lock(&c->api->lock);
    sb_err rc = sb_store_provider_set_test(c->api->store, id, sb__api_now_ms(), c->out.p, &err);
    pthread_mutex_unlock(&c->api->lock);
    if (rc != SB_OK) /* the test itself is answered; storing it is secondary */
        sb_warn("msg=\"connection test not stored\" provider=%s err=\"%s\"", id, err.msg);
    sb__api_audit(c, "provider.test", "provider", id, SB_SLICE_NULL, sb_buf_slice(&c->out),
                  r->ok ? "ok" : "failed");
    return SB_OK;
}

sb_err sb__api_provider_test(struct sb_api_call *c)
{
    struct target t = {0};
    struct sb_probe_result r;
    const char *id = sb__api_param(c, 0);
    if (c->json && (c->json->type != SB_JSON_OBJECT || c->json->count))
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "this endpoint takes no body (or {})");
    if (take_turn(c) != SB_OK)
        return c->err.code;
    pthread_mutex_lock(&c->api->lock);
    sb_err rc = load_target(c, id, NULL, &t);
    pthread_mutex_unlock(&c->api->lock);
    if (rc == SB_OK)
        rc = run_probe(c, &t, true, false, 1, false, &r);
    if (rc == SB_OK)
        rc = store_result(c, id, &r);
    target_free(&t);
    sb__api_rate_done(&c->api->tests);
    return rc;
}

/* ======================================================================
 * Model tests
 * ==================================================================== */

/* {"max_tokens": 1..16} or no body. */
static sb_err model_test_body(struct sb_api_call *c, int *max_tokens)
{
    int64_t v = MODEL_TEST_TOKENS;
    const struct sb_json *j = c->json;
    *max_tokens = MODEL_TEST_TOKENS;
    if (!j)
        return SB_OK;
    if (j->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "expected {\"max_tokens\": 1..16}");
    for (const struct sb_json *m = j->child; m; m = m->next)
        if (!sb_slice_eq_cstr(m->key, "max_tokens"))
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "unknown key '%.*s' (only max_tokens)",
                                SB_FMT(m->key));
    const struct sb_json *mt = sb_json_get(j, "max_tokens");
    if (mt && (!sb_json_int64(mt, &v) || v < 1 || v > 16))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "max_tokens",
                            "max_tokens: expected an integer from 1 to 16");
    *max_tokens = (int)v;
    return SB_OK;
}

sb_err sb__api_model_test(struct sb_api_call *c)
{
    struct target t = {0};
    struct sb_probe_result r;
    struct sb_store_model m;
    int max_tokens;
    const char *viewer = c->actor.role == SB_ROLE_ADMIN ? NULL : c->actor.name;
    if (model_test_body(c, &max_tokens) != SB_OK || take_turn(c) != SB_OK)
        return c->err.code;
    pthread_mutex_lock(&c->api->lock);
    sb_err rc =
        sb_store_model_get(c->api->store, sb__api_param(c, 0), viewer, c->arena, &m, &c->err);
    if (rc == SB_OK)
        rc = load_target(c, m.provider, &m, &t);
    pthread_mutex_unlock(&c->api->lock);
    if (rc == SB_OK && !t.has_model)
        rc = sb__api_fail(c, SB_E_INTERNAL, NULL, "model %s could not be prepared", m.id);
    if (rc == SB_OK)
        rc = run_probe(c, &t, false, false, max_tokens, true, &r);
    target_free(&t);
    sb__api_rate_done(&c->api->tests);
    return rc;
}

/* ======================================================================
 * An unsaved configuration
 * ==================================================================== */

/* Takes "model" (optional, a string) out of the body, which is the call's own tree. */
static sb_err take_model(struct sb_api_call *c, const char **model)
{
    struct sb_json *obj = (struct sb_json *)c->json;
    *model = NULL;
    if (!obj || obj->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                            "expected a provider object (the body of POST /api/providers) "
                            "with an optional \"model\" to try");
    for (struct sb_json **link = &obj->child; *link; link = &(*link)->next) {
        struct sb_json *m = *link;
        if (!sb_slice_eq_cstr(m->key, "model"))
            continue;
        if (m->type != SB_JSON_STRING || m->str.len == 0 || m->str.len > 256)
            return sb__api_fail(c, SB_E_BAD_REQUEST, "model",
                                "model: expected the upstream model name to try");
        *model = sb_arena_strndup(c->arena, m->str.p, m->str.len);
        *link = m->next;
        obj->count--;
        break;
    }
    return SB_OK;
}

/* Wipes the parsed body's copies of the literal key (the raw body is wiped by api.c). */
static void wipe_body_key(struct sb_api_call *c, const struct sb_config_creds *creds)
{
    const struct sb_json *k = c->json ? sb_json_get(c->json, "api_key") : NULL;
    if (k && k->type == SB_JSON_STRING)
        sb_secret_wipe((void *)k->str.p, k->str.len);
    if (creds->api_key)
        sb_secret_wipe((void *)creds->api_key, strlen(creds->api_key));
}

static sb_err unsaved_target(struct sb_api_call *c, const char *model, struct target *t)
{
    struct sb_store_provider p;
    struct sb_config_creds creds = {0};
    struct sb_store_model m = {0};
    sb_err rc =
        sb_config_entry_from_json(c->arena, SB_CONFIG_PROVIDER, c->json, &p, &creds, &c->err);
    if (rc == SB_OK && (creds.aws_access_key_id || creds.aws_secret_access_key))
        rc = sb__api_fail(c, SB_E_BAD_REQUEST, "aws_access_key_id",
                          "AWS credentials cannot be tested before they are saved");
    if (rc == SB_OK && model) {
        m = (struct sb_store_model){
            .id = "connection-test", .provider = p.id, .upstream_model = model};
    }
    if (rc == SB_OK)
        rc = build_one(c, &p, model ? &m : NULL, t);
    if (rc == SB_OK && creds.api_key) {
        t->key = sb_secret_new(creds.api_key, strlen(creds.api_key));
        t->prov.api_key = t->key;
        /* Built keyless, the provider got SB_AUTH_NONE: give it its type's method back. */
        t->prov.auth = sb_config_type_find(sb_slice_cstr(p.type))->auth;
    }
    wipe_body_key(c, &creds);
    return rc;
}

sb_err sb__api_provider_test_unsaved(struct sb_api_call *c)
{
    struct target t = {0};
    struct sb_probe_result r;
    const char *model = NULL;
    struct sb_config_creds none = {0};
    if (take_model(c, &model) != SB_OK || unsaved_target(c, model, &t) != SB_OK) {
        wipe_body_key(c, &none);
        target_free(&t);
        return c->err.code;
    }
    if (take_turn(c) != SB_OK) {
        target_free(&t);
        return c->err.code;
    }
    bool refuse_private = sb__api_refuse_private(c);
    sb_err rc = run_probe(c, &t, true, refuse_private, 1, t.has_model, &r);
    target_free(&t);
    sb__api_rate_done(&c->api->tests);
    return rc;
}
