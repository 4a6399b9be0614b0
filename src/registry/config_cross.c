/* SPDX-License-Identifier: MIT */
/*
 * config_cross.c - what the config file's entries say about each other,
 * checked once the walk has filled every list: ids are unique per list, a
 * model's provider exists, fallbacks and route targets resolve to a model or
 * to provider/upstream_model of a known provider, and no route takes a
 * model's name. A message names the later of two duplicates, with its line.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/config_int.h"

/* An id and the index of its entry, sorted by id for duplicate checks and lookups. */
struct idx {
    const char *id;
    size_t i;
};

static int idx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct idx *)a)->id, ((const struct idx *)b)->id);
}

/* Every entity struct starts with `const char *id`. */
static struct idx *sorted_ids(struct walk *w, const void *base, size_t n, size_t stride)
{
    struct idx *v = sb_arena_alloc(w->cfg->arena, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].id = *(const char *const *)((const char *)base + i * stride);
        v[i].i = i;
    }
    qsort(v, n, sizeof(*v), idx_cmp);
    return v;
}

static bool has_id(const struct idx *v, size_t n, const char *id)
{
    struct idx key = {id, 0};
    return bsearch(&key, v, n, sizeof(*v), idx_cmp) != NULL;
}

/* The i-th entry node of the top-level list `list`. */
static const struct sb__ynode *entry_node(const struct walk *w, const char *list, size_t i)
{
    const struct sb__ynode *it = sb__config_member(w->root, list)->child;
    while (i-- && it)
        it = it->next;
    return it;
}

static sb_err check_unique(struct walk *w, const char *list, const struct idx *v, size_t n)
{
    for (size_t k = 1; k < n; k++) {
        if (strcmp(v[k - 1].id, v[k].id) != 0)
            continue;
        size_t later = v[k].i > v[k - 1].i ? v[k].i : v[k - 1].i;
        size_t mark = sb__config_path_push(w, "%s[%zu]", list, later);
        sb_err rc =
            sb__config_fail_at(w, entry_node(w, list, later), "id", "duplicate id '%s'", v[k].id);
        sb__config_path_pop(w, mark);
        return rc;
    }
    return SB_OK;
}

/* A route target: a model id, or provider/upstream_model of a known provider. */
static bool target_ok(struct walk *w, const char *t, const struct idx *pv, const struct idx *mv)
{
    const struct sb_store_entities *e = &w->cfg->system;
    const char *slash = strchr(t, '/');
    if (!slash)
        return has_id(mv, e->nmodels, t);
    char prov[65];
    size_t plen = (size_t)(slash - t);
    if (plen == 0 || plen >= sizeof(prov) || slash[1] == '\0')
        return false;
    memcpy(prov, t, plen);
    prov[plen] = '\0';
    return has_id(pv, e->nproviders, prov);
}

#define UNKNOWN_TARGET "'%.100s' is neither a model id nor provider/upstream_model of a known provider"

static sb_err check_references(struct walk *w, const struct idx *pv, const struct idx *mv)
{
    const struct sb_store_entities *e = &w->cfg->system;
    sb_err rc = SB_OK;
    for (size_t i = 0; rc == SB_OK && i < e->nmodels; i++) {
        const struct sb_store_model *m = &e->models[i];
        size_t mark = sb__config_path_push(w, "models[%zu]", i);
        if (!has_id(pv, e->nproviders, m->provider))
            rc = sb__config_fail_at(w, entry_node(w, "models", i), "provider",
                                    "unknown provider '%.64s'", m->provider);
        for (size_t t = 0; rc == SB_OK && t < m->nfallbacks; t++)
            if (!target_ok(w, m->fallbacks[t], pv, mv))
                rc = sb__config_fail_at(w, entry_node(w, "models", i), "fallbacks", UNKNOWN_TARGET,
                                        m->fallbacks[t]);
        sb__config_path_pop(w, mark);
    }
    for (size_t i = 0; rc == SB_OK && i < e->nroutes; i++) {
        const struct sb_store_route *r = &e->routes[i];
        size_t mark = sb__config_path_push(w, "routes[%zu]", i);
        if (has_id(mv, e->nmodels, r->id))
            rc = sb__config_fail_at(w, entry_node(w, "routes", i), "id",
                                    "'%s' is already a model id", r->id);
        for (size_t t = 0; rc == SB_OK && t < r->ntargets; t++)
            if (!target_ok(w, r->targets[t], pv, mv))
                rc = sb__config_fail_at(w, entry_node(w, "routes", i), "targets", UNKNOWN_TARGET,
                                        r->targets[t]);
        sb__config_path_pop(w, mark);
    }
    return rc;
}

sb_err sb__config_check_cross(struct walk *w)
{
    const struct sb_store_entities *e = &w->cfg->system;
    struct idx *pv = sorted_ids(w, e->providers, e->nproviders, sizeof(*e->providers));
    struct idx *mv = sorted_ids(w, e->models, e->nmodels, sizeof(*e->models));
    struct idx *rv = sorted_ids(w, e->routes, e->nroutes, sizeof(*e->routes));
    sb_err rc = check_unique(w, "providers", pv, e->nproviders);
    if (rc == SB_OK)
        rc = check_unique(w, "models", mv, e->nmodels);
    if (rc == SB_OK)
        rc = check_unique(w, "routes", rv, e->nroutes);
    if (rc == SB_OK)
        rc = check_references(w, pv, mv);
    return rc;
}
