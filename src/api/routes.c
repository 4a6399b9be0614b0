/* SPDX-License-Identifier: MIT */
/*
 * routes.c - /api/routes: aliases with a strategy over several models.
 *
 * Bodies are config-file route entries. A target must name something the
 * registry knows (a model id, or provider/upstream_model of a known
 * provider): a route that can never resolve is refused, with suggestions.
 */
#include <string.h>

#include "api/internal.h"
#include "registry/config.h"
#include "registry/registry.h"

static sb_err load(struct sb_api_call *c, struct sb_store_route *r)
{
    return sb_store_route_get(c->api->store, sb__api_param(c, 0), c->arena, r, &c->err);
}

/* Every target resolves in the store (models of disabled providers
 * included: disabling must not invalidate routes); field names the list. */
sb_err sb__api_check_targets(struct sb_api_call *c, const char *field, const char *const *ts,
                             size_t n)
{
    struct sb_store *s = c->api->store;
    for (size_t i = 0; i < n; i++) {
        struct sb_store_model m;
        struct sb_store_provider p;
        struct sb_error ignore;
        const char *t = ts[i], *slash = strchr(t, '/');
        if (sb_store_model_get(s, t, NULL, c->arena, &m, &ignore) == SB_OK)
            continue;
        if (slash && sb_store_provider_get(s, sb_arena_strndup(c->arena, t, (size_t)(slash - t)),
                                           c->arena, &p, &ignore) == SB_OK)
            continue;
        struct sb_registry *reg = sb_registry_acquire();
        c->nsuggest = reg ? sb_registry_suggest(reg, sb_slice_cstr(t), NULL, c->suggest, 3) : 0;
        for (size_t k = 0; k < c->nsuggest; k++) /* outlive the snapshot reference */
            c->suggest[k] = sb_arena_strndup(c->arena, c->suggest[k], strlen(c->suggest[k]));
        if (reg)
            sb_registry_release(reg);
        return sb__api_fail(c, SB_E_BAD_REQUEST, field,
                            "%s[%zu]: '%s' is neither a model id nor provider/model of a "
                            "known provider",
                            field, i, t);
    }
    return SB_OK;
}

static sb_err parse(struct sb_api_call *c, struct sb_store_route *r)
{
    if (sb_config_entry_from_json(c->arena, SB_CONFIG_ROUTE, c->json, r, NULL, &c->err) != SB_OK)
        return c->err.code;
    return sb__api_check_targets(c, "targets", r->targets, r->ntargets);
}

sb_err sb__api_routes_list(struct sb_api_call *c)
{
    struct sb_store_filter f = {0};
    struct sb_store_route *rs = NULL;
    struct sb_store_page page = {0};
    if (sb__api_paging(c, &f.limit, &f.offset) != SB_OK ||
        sb_store_route_list(c->api->store, &f, c->arena, &rs, &page, &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < page.n; i++)
        sb__api_write_route(&c->jw, &rs[i]);
    sb__api_list_end(c, page.total, f.limit, f.offset);
    return SB_OK;
}

sb_err sb__api_route_get(struct sb_api_call *c)
{
    struct sb_store_route r;
    if (load(c, &r) != SB_OK)
        return c->err.code;
    sb__api_write_route(&c->jw, &r);
    return SB_OK;
}

static sb_err saved(struct sb_api_call *c, const char *action, const char *id,
                    const struct sb_store_route *before)
{
    struct sb_store_route after;
    if (sb_store_route_get(c->api->store, id, c->arena, &after, &c->err) != SB_OK)
        return c->err.code;
    c->changed = true;
    sb__api_write_route(&c->jw, &after);
    sb__api_audit(c, action, "route", id, sb__api_doc_route(c, before),
                  sb__api_doc_route(c, &after), "ok");
    return SB_OK;
}

sb_err sb__api_route_create(struct sb_api_call *c)
{
    struct sb_store_route r;
    if (parse(c, &r) != SB_OK || sb_store_route_create(c->api->store, &r, &c->err) != SB_OK)
        return c->err.code;
    c->status = 201;
    return saved(c, "route.create", r.id, NULL);
}

sb_err sb__api_route_update(struct sb_api_call *c)
{
    struct sb_store_route before, r;
    if (load(c, &before) != SB_OK || parse(c, &r) != SB_OK)
        return c->err.code;
    if (strcmp(r.id, before.id) != 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "id", "id: identifiers never change (%s)",
                            before.id);
    if (sb_store_route_update(c->api->store, before.id, &r, &c->err) != SB_OK)
        return c->err.code;
    return saved(c, "route.update", before.id, &before);
}

sb_err sb__api_route_delete(struct sb_api_call *c)
{
    struct sb_store_route before;
    if (load(c, &before) != SB_OK ||
        sb_store_route_delete(c->api->store, before.id, &c->err) != SB_OK)
        return c->err.code;
    c->status = 204;
    c->changed = true;
    sb__api_audit(c, "route.delete", "route", before.id, sb__api_doc_route(c, &before),
                  SB_SLICE_NULL, "ok");
    return SB_OK;
}
