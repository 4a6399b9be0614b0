/* SPDX-License-Identifier: MIT */
/*
 * config_models.c - the `models:` and `routes:` entries of the config file
 * and of /api bodies (DESIGN.md §3.3): their key tables and the checks of
 * one entry. Both are names a request's "model" may carry, so they share
 * one id alphabet; config_cross.c keeps the two sets of names apart and
 * checks that fallbacks and targets resolve.
 *
 * Chapters: models · routes.
 */
#include <string.h>

#include "registry/config_int.h"

#define MODEL_ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"

/* A model's or a route's id: required, and in the alphabet of names a
 * request's "model" may carry. */
static sb_err check_name_id(struct walk *w, const char *id, const struct sb__ynode *n)
{
    if (!id)
        return sb__config_missing(w, n->line, "id", "");
    if (!sb__config_chars_ok(id, MODEL_ID_CHARS, 128))
        return sb__config_fail_at(w, n, "id",
                                  "must match [A-Za-z0-9._:-]+ (at most 128 characters)");
    return SB_OK;
}

/* Short names for the row macros (macros, not typedefs: STYLE.md practice 17). */
#define MODEL struct sb_store_model
#define ROUTE struct sb_store_route

/* ---- models ---- */

static sb_err check_model(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_model *m = elem;
    sb_err rc = check_name_id(w, m->id, n);
    if (rc != SB_OK)
        return rc;
    if (!m->provider)
        return sb__config_missing(w, n->line, "provider", "");
    if (!m->upstream_model)
        m->upstream_model = m->id;
    if (!sb__config_printable(m->upstream_model, 256))
        return sb__config_fail_at(w, n, "upstream_model", "expected a model name without spaces");
    if (!m->name || !*m->name)
        m->name = m->id;
    if (m->status && strcmp(m->status, "active") && strcmp(m->status, "inactive") &&
        strcmp(m->status, "deprecated"))
        return sb__config_fail_at(w, n, "status", "expected active, inactive or deprecated");
    if (m->status)
        m->enabled = strcmp(m->status, "inactive") != 0;
    if (m->nfallbacks > SB_STORE_FALLBACKS_MAX)
        return sb__config_fail_at(w, n, "fallbacks", "at most %d fallbacks",
                                  SB_STORE_FALLBACKS_MAX);
    for (size_t t = 0; t < m->nfallbacks; t++) {
        if (!sb__config_printable(m->fallbacks[t], 512))
            return sb__config_fail_at(w, n, "fallbacks",
                                      "a fallback contains spaces or control characters");
        if (strcmp(m->fallbacks[t], m->id) == 0)
            return sb__config_fail_at(w, n, "fallbacks", "'%s' cannot fall back to itself", m->id);
    }
    return SB_OK;
}

static const struct field caps_fields[] = {
    BOOL("streaming", MODEL, caps.streaming),   BOOL("tools", MODEL, caps.tools),
    BOOL("vision", MODEL, caps.vision),         BOOL("json_mode", MODEL, caps.json_mode),
    BOOL("embeddings", MODEL, caps.embeddings),
};
/* A capabilities block, even an empty one, is a declaration: what it does not
 * say true is false (the proxy refuses it). Without one, nothing is known and
 * nothing is refused (gateway/caps.c). */
static sb_err caps_declared(struct walk *w, void *elem, const struct sb__ynode *n)
{
    ((struct sb_store_model *)elem)->caps.declared = true;
    return SB_OK;
}

static const struct table caps_table = TABLE(caps_fields, MODEL, NULL, caps_declared);

static const struct field pricing_fields[] = {
    NUM("input_per_mtok", MODEL, input_per_mtok),
    NUM("output_per_mtok", MODEL, output_per_mtok),
};
static const struct table pricing_table = TABLE(pricing_fields, MODEL, NULL, NULL);

static const struct field model_fields[] = {
    STR("id", MODEL, id),
    STR("provider", MODEL, provider),
    STR("upstream_model", MODEL, upstream_model),
    STR("name", MODEL, name),
    INT("context_length", MODEL, context_length, 0, 100000000),
    INT("max_output_tokens", MODEL, max_output_tokens, 0, 100000000),
    MAP("capabilities", caps_table),
    MAP("pricing", pricing_table),
    INT("fallback_priority", MODEL, fallback_priority, -1000000, 1000000),
    ARR("fallbacks", F_STRS, MODEL, fallbacks, nfallbacks, NULL),
    BOOL("enabled", MODEL, enabled),
    STR("description", MODEL, description),
    STR("status", MODEL, status),
};

/* A model that says nothing about capabilities can at least stream. */
static void init_model(void *elem)
{
    struct sb_store_model *m = elem;
    m->enabled = true;
    m->is_system = true;
    m->caps.streaming = true;
}

const struct table sb__config_model_table = TABLE(model_fields, MODEL, init_model, check_model);

/* ---- routes ---- */

static const char *const strategies[] = {"priority", "weighted", "least-latency", "least-busy",
                                         "cost"};

static sb_err check_route(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_route *r = elem;
    sb_err rc = check_name_id(w, r->id, n);
    if (rc != SB_OK)
        return rc;
    if (!r->strategy)
        r->strategy = strategies[0];
    size_t i = 0;
    while (i < sizeof(strategies) / sizeof(strategies[0]) && strcmp(r->strategy, strategies[i]))
        i++;
    if (i == sizeof(strategies) / sizeof(strategies[0]))
        return sb__config_fail_at(
            w, n, "strategy",
            "unknown strategy '%.40s' (one of priority, weighted, least-latency, "
            "least-busy, cost)",
            r->strategy);
    if (r->ntargets == 0)
        return sb__config_at_key(
            w, "targets", sb__config_fail(w, n->line, "targets: at least one target is required"));
    if (r->weights && r->nweights != r->ntargets)
        return sb__config_fail_at(w, n, "weights",
                                  "one weight per target (%zu targets, %zu weights)", r->ntargets,
                                  r->nweights);
    for (size_t t = 0; t < r->ntargets; t++)
        if (!sb__config_printable(r->targets[t], 512))
            return sb__config_fail_at(w, n, "targets",
                                      "a target contains spaces or control characters");
    return SB_OK;
}

#define ROUTE_TTL_MAX 2592000 /* 30 days, in seconds */

static const struct field route_cache_fields[] = {
    INT("ttl_s", ROUTE, cache_ttl_s, 1, ROUTE_TTL_MAX),
    BOOL("shared", ROUTE, cache_shared),
    BOOL("sampled", ROUTE, cache_sampled),
};

/* A cache block turns the cache on, so it must say for how long. */
static sb_err check_route_cache(struct walk *w, void *elem, const struct sb__ynode *n)
{
    if (((struct sb_store_route *)elem)->cache_ttl_s == 0)
        return sb__config_missing(w, n->line, "ttl_s", " (seconds, 1 .. 2592000)");
    return SB_OK;
}

static const struct table route_cache_table =
    TABLE(route_cache_fields, ROUTE, NULL, check_route_cache);

static const struct field route_fields[] = {
    STR("id", ROUTE, id),
    STR("strategy", ROUTE, strategy),
    ARR("targets", F_STRS, ROUTE, targets, ntargets, NULL),
    {.key = "weights",
     .kind = F_INTS,
     .off = offsetof(ROUTE, weights),
     .off_n = offsetof(ROUTE, nweights),
     .min = 0,
     .max = 1000000},
    MAP("cache", route_cache_table), /* issue 7 part 9 */
};

static void init_route(void *elem)
{
    ((struct sb_store_route *)elem)->is_system = true;
}

const struct table sb__config_route_table = TABLE(route_fields, ROUTE, init_route, check_route);
