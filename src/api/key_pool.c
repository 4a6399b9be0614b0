/* SPDX-License-Identifier: MIT */
/*
 * key_pool.c - a provider's key pool over the API (issue 7).
 *
 *   GET    /api/providers/{id}/credentials                 the pool, masked
 *   POST   /api/providers/{id}/credentials                 {label, api_key, weight}
 *   PATCH  /api/providers/{id}/credentials/{label}         {api_key?, weight?}
 *   DELETE /api/providers/{id}/credentials/{label}
 *   POST   /api/providers/{id}/credentials/{label}/revive  a dead key may serve again
 *
 * "primary" names the provider's own key (api_key, or PUT .../credentials).
 * Keys from the config file (api_key, api_keys) are listed and revivable
 * but changed only in the file. A key is shown masked, never whole; whether
 * it is dead comes from the current snapshot (struct sb_provider_key.dead).
 */
#include <string.h>

#include "api/internal.h"
#include "registry/registry.h"
#include "router/router.h"

#define PRIMARY "primary"

/* "" for "primary": the store's name of the primary key. */
static const char *store_label(const char *label)
{
    return strcmp(label, PRIMARY) == 0 ? "" : label;
}

static bool label_ok(const char *l)
{
    size_t n = strlen(l);
    return n > 0 && n <= 32 && strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Why the snapshot holds key label of provider dead, or NULL. */
static const char *dead_in_snapshot(struct sb_api_call *c, const char *provider, const char *label)
{
    struct sb_registry *reg = sb_registry_acquire();
    const struct sb_provider *p = reg ? sb_registry_find_provider(reg, sb_slice_cstr(provider)) : NULL;
    const char *why = NULL;
    for (size_t i = 0; p && i < p->nkeys; i++)
        if (strcmp(p->keys[i].label, label) == 0 && p->keys[i].dead)
            why = sb_arena_strndup(c->arena, p->keys[i].dead, strlen(p->keys[i].dead));
    if (reg)
        sb_registry_release(reg);
    return why;
}

/* One pool key as JSON; warning (may be NULL) says the key looks like another service's. */
static void entry(struct sb_api_call *c, const char *provider, const char *label,
                  const char *source, const char *masked, const char *reference, int64_t weight,
                  const char *warning)
{
    struct sb_jw *j = &c->jw;
    const char *dead = dead_in_snapshot(c, provider, label);
    sb_jw_obj_begin(j);
    sb_jw_key(j, "label");
    sb_jw_cstr(j, *label ? label : PRIMARY);
    sb_jw_key(j, "source");
    sb_jw_cstr(j, source);
    sb_jw_key(j, "masked");
    masked ? sb_jw_cstr(j, masked) : sb_jw_null(j);
    sb_jw_key(j, "reference");
    reference ? sb_jw_cstr(j, reference) : sb_jw_null(j);
    sb_jw_key(j, "weight");
    sb_jw_int(j, weight > 0 ? weight : 1);
    sb_jw_key(j, "status");
    sb_jw_cstr(j, dead ? "dead" : "active");
    sb_jw_key(j, "dead_reason");
    dead ? sb_jw_cstr(j, dead) : sb_jw_null(j);
    if (warning) {
        sb_jw_key(j, "warning");
        sb_jw_cstr(j, warning);
    }
    sb_jw_obj_end(j);
}

/* The stored system credential of provider called label, or SB_E_NOT_FOUND. */
static sb_err stored(struct sb_api_call *c, const char *provider, const char *label,
                     struct sb_store_credential *out)
{
    return sb_store_credential_get(c->api->store, provider, NULL, label, c->arena, out, &c->err);
}

/* Whether the config file defines key label (store form) of p. */
static bool from_config(const struct sb_store_provider *p, const char *label)
{
    if (!*label)
        return p->api_key != NULL;
    for (size_t i = 0; i < p->napi_keys; i++)
        if (p->api_keys[i].label && strcmp(p->api_keys[i].label, label) == 0)
            return true;
    return false;
}

sb_err sb__api_key_pool_list(struct sb_api_call *c)
{
    struct sb_store_provider p;
    struct sb_store_credential *cs = NULL;
    size_t n = 0;
    if (sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, &p, &c->err) !=
            SB_OK ||
        sb_store_credential_list(c->api->store, NULL, c->arena, &cs, &n, &c->err) != SB_OK)
        return c->err.code;
    size_t total = 0;
    sb__api_list_begin(c);
    if (p.api_key || p.key_masked) {
        entry(c, p.id, "", p.api_key ? "config" : "stored", p.key_masked, p.api_key, 1, NULL);
        total++;
    }
    for (size_t i = 0; i < p.napi_keys; i++, total++)
        entry(c, p.id, p.api_keys[i].label, "config", NULL, p.api_keys[i].key,
              p.api_keys[i].weight, NULL);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cs[i].provider, p.id) != 0 || !cs[i].label || !*cs[i].label ||
            from_config(&p, cs[i].label))
            continue;
        entry(c, p.id, cs[i].label, "stored", cs[i].masked, NULL, cs[i].weight, NULL);
        total++;
    }
    sb__api_list_end(c, (int64_t)total, (int64_t)total, 0);
    return SB_OK;
}

/* weight from the body: absent = keep (*w untouched), else 1..1000000. */
static sb_err body_weight(struct sb_api_call *c, int64_t *w)
{
    const struct sb_json *v = sb_json_get(c->json, "weight");
    int64_t x = 0;
    if (!v)
        return SB_OK;
    if (!sb_json_int64(v, &x) || x < 1 || x > 1000000)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "weight", "weight: expected an integer 1 .. 1000000");
    *w = x;
    return SB_OK;
}

/* Encrypts and stores key as label of p; answers with the entry (201 when created). */
static sb_err put_key(struct sb_api_call *c, const struct sb_store_provider *p, const char *label,
                      const char *key, int64_t weight, bool created)
{
    char masked[32];
    const char *warning = sb__api_key_format_warning(c, p->type, p->base_url, key);
    if (sb__api_put_pool_key(c, p->id, NULL, label, weight, key, masked) != SB_OK)
        return c->err.code;
    /* A new key is a new fingerprint: whatever dead_keys says of the old one no longer applies. */
    if (sb_store_dead_key_delete(c->api->store, p->id, label, &c->err) != SB_OK)
        return c->err.code;
    c->status = created ? 201 : 200;
    c->changed = true;
    entry(c, p->id, label, "stored", masked, NULL, weight, warning);
    return SB_OK;
}

/* The provider of the path, refusing a type that signs instead of sending a key. */
static sb_err pool_provider(struct sb_api_call *c, struct sb_store_provider *p)
{
    if (sb_store_provider_get(c->api->store, sb__api_param(c, 0), c->arena, p, &c->err) != SB_OK)
        return c->err.code;
    if (strcmp(p->type, "bedrock") == 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "api_key",
                            "a bedrock provider signs with aws_* credentials: it has no key pool");
    return SB_OK;
}

sb_err sb__api_key_pool_add(struct sb_api_call *c)
{
    struct sb_store_provider p;
    struct sb_store_credential old;
    const char *label = NULL, *key = NULL;
    int64_t weight = 1;
    if (pool_provider(c, &p) != SB_OK || sb__api_body_str(c, "label", true, &label) != SB_OK ||
        sb__api_body_str(c, "api_key", true, &key) != SB_OK || body_weight(c, &weight) != SB_OK)
        return c->err.code;
    if (!label_ok(label) || strcmp(label, PRIMARY) == 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "label",
                            "label: expected [a-z0-9_-], 1 to 32 characters, not 'primary' (PUT "
                            "/api/providers/%s/credentials sets the primary key)",
                            p.id);
    if (!*key)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "api_key", "api_key: must not be empty");
    struct sb_error ignore;
    if (from_config(&p, label) ||
        sb_store_credential_get(c->api->store, p.id, NULL, label, c->arena, &old, &ignore) ==
            SB_OK)
        return sb__api_fail(c, SB_E_CONFLICT, "label", "provider %s already has a key '%s'", p.id,
                            label);
    if (put_key(c, &p, label, key, weight, true) != SB_OK)
        return c->err.code;
    sb__api_audit(c, "credential.pool_add", "provider", p.id, SB_SLICE_NULL,
                  sb_slice_cstr(sb_arena_printf(c->arena, "{\"label\":\"%s\",\"weight\":%lld}",
                                                label, (long long)weight)),
                  "ok");
    return SB_OK;
}

/* The stored key of the path's label, refusing the config file's own. */
static sb_err stored_of_path(struct sb_api_call *c, struct sb_store_provider *p,
                             const char **label, struct sb_store_credential *cur)
{
    if (pool_provider(c, p) != SB_OK)
        return c->err.code;
    *label = store_label(sb__api_param(c, 1));
    if (from_config(p, *label))
        return sb__api_fail(c, SB_E_CONFLICT, "label",
                            "key '%s' of provider %s comes from the config file; change it there",
                            sb__api_param(c, 1), p->id);
    if (stored(c, p->id, *label, cur) != SB_OK)
        return c->err.code;
    return SB_OK;
}

sb_err sb__api_key_pool_update(struct sb_api_call *c)
{
    struct sb_store_provider p;
    struct sb_store_credential cur;
    const char *label = NULL, *key = NULL;
    if (stored_of_path(c, &p, &label, &cur) != SB_OK)
        return c->err.code;
    int64_t weight = cur.weight;
    if (sb__api_body_str(c, "api_key", false, &key) != SB_OK || body_weight(c, &weight) != SB_OK)
        return c->err.code;
    if (key && !*key)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "api_key", "api_key: must not be empty");
    if (key) {
        if (put_key(c, &p, label, key, weight, false) != SB_OK)
            return c->err.code;
    } else {
        cur.weight = weight; /* the same ciphertext, a new weight */
        if (sb_store_credential_put(c->api->store, &cur, &c->err) != SB_OK)
            return c->err.code;
        c->changed = true;
        entry(c, p.id, label, "stored", cur.masked, NULL, weight, NULL);
    }
    sb__api_audit(c, "credential.pool_update", "provider", p.id, SB_SLICE_NULL,
                  sb_slice_cstr(sb_arena_printf(c->arena,
                                                "{\"label\":\"%s\",\"weight\":%lld,\"key\":%s}",
                                                sb__api_param(c, 1), (long long)weight,
                                                key ? "\"replaced\"" : "\"kept\"")),
                  "ok");
    return SB_OK;
}

sb_err sb__api_key_pool_delete(struct sb_api_call *c)
{
    struct sb_store_provider p;
    struct sb_store_credential cur;
    const char *label = NULL;
    if (stored_of_path(c, &p, &label, &cur) != SB_OK ||
        sb_store_credential_delete(c->api->store, p.id, NULL, label, &c->err) != SB_OK ||
        sb_store_dead_key_delete(c->api->store, p.id, label, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "credential.pool_delete", "provider", p.id,
                  sb_slice_cstr(sb_arena_printf(c->arena, "{\"label\":\"%s\"}",
                                                sb__api_param(c, 1))),
                  SB_SLICE_NULL, "ok");
    return SB_OK;
}

sb_err sb__api_key_pool_revive(struct sb_api_call *c)
{
    struct sb_store_provider p;
    if (pool_provider(c, &p) != SB_OK)
        return c->err.code;
    const char *label = store_label(sb__api_param(c, 1));
    if (!*label ? !p.api_key && !p.key_masked : !label_ok(label))
        return sb__api_fail(c, SB_E_NOT_FOUND, "label", "provider %s has no key '%s'", p.id,
                            sb__api_param(c, 1));
    if (sb_store_dead_key_delete(c->api->store, p.id, label, &c->err) != SB_OK)
        return c->err.code;
    if (c->api->router) /* this process's hold on the key goes too */
        sb_router_key_release(c->api->router, p.id, label);
    c->changed = true;
    sb_jw_obj_begin(&c->jw);
    sb_jw_key(&c->jw, "label");
    sb_jw_cstr(&c->jw, sb__api_param(c, 1));
    sb_jw_key(&c->jw, "status");
    sb_jw_cstr(&c->jw, "active");
    sb_jw_obj_end(&c->jw);
    sb__api_audit(c, "credential.revive", "provider", p.id,
                  sb_slice_cstr(sb_arena_printf(c->arena, "{\"label\":\"%s\"}",
                                                sb__api_param(c, 1))),
                  SB_SLICE_NULL, "ok");
    return SB_OK;
}
