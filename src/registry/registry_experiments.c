/* SPDX-License-Identifier: MIT */
/*
 * registry_experiments.c - A/B experiments in the snapshot (registry.h).
 *
 * An experiment reaches the data plane as an entry with its variants, copied
 * into the snapshot's arena like routes. Its id shares the name space of
 * model and route ids (a client sends it as `model`), so an experiment whose
 * id a model or route already holds is left out with a warning: the API
 * refuses such an id, and this keeps the lookup unambiguous should a model
 * or route of that name be created afterwards. Targets are kept as written;
 * the proxy resolves the chosen variant's target as it resolves any model
 * name, so a target that stopped resolving fails that request with the
 * proxy's ordinary "model not found", not the whole build.
 */
#include <string.h>

#include "core/log.h"
#include "registry/registry_int.h"

static const struct {
    const char *name;
    enum sb_experiment_status status;
} statuses[] = {
    {"active", SB_EXPERIMENT_ACTIVE},
    {"paused", SB_EXPERIMENT_PAUSED},
    {"ended", SB_EXPERIMENT_ENDED},
};

/* An unknown status (the store refuses one) serves as paused: no split. */
static enum sb_experiment_status status_of(const char *s)
{
    for (size_t i = 0; s && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(s, statuses[i].name) == 0)
            return statuses[i].status;
    return SB_EXPERIMENT_PAUSED;
}

static bool name_taken(const struct sb_registry *r, const char *id)
{
    struct sb_slice s = sb_slice_cstr(id);
    return sb__ix_get(&r->by_model, s) || sb__ix_get(&r->by_route, s);
}

/* Copies sx into xe; false (with a warning) when it cannot serve. */
static bool copy_experiment(struct builder *b, const struct sb_store_experiment *sx,
                            struct sb_experiment_entry *xe)
{
    struct sb_experiment_variant *v = sb_arena_calloc(b->a, (sx->nvariants + 1) * sizeof(*v));
    int64_t total = 0;
    for (size_t i = 0; i < sx->nvariants; i++) {
        const struct sb_store_variant *sv = &sx->variants[i];
        if (!sv->name || !sv->target || sv->weight < 0)
            return false;
        v[i].name = sb_arena_strndup(b->a, sv->name, strlen(sv->name));
        v[i].target = sb_arena_strndup(b->a, sv->target, strlen(sv->target));
        v[i].weight = sv->weight;
        total += sv->weight;
    }
    if (sx->nvariants == 0 || total <= 0)
        return false;
    xe->id = sb_arena_strndup(b->a, sx->id, strlen(sx->id));
    xe->status = status_of(sx->status);
    xe->variants = v;
    xe->nvariants = sx->nvariants;
    xe->total_weight = total;
    return true;
}

void sb__registry_build_experiments(struct builder *b, const struct sb_store_entities *e)
{
    struct sb_registry *r = b->r;
    r->experiments = sb_arena_calloc(b->a, (e->nexperiments + 1) * sizeof(*r->experiments));
    sb__ix_init(b->a, &r->by_experiment, e->nexperiments);
    for (size_t i = 0; i < e->nexperiments; i++) {
        const struct sb_store_experiment *sx = &e->experiments[i];
        struct sb_experiment_entry *xe = &r->experiments[r->nexperiments];
        if (!sx->id)
            continue;
        if (name_taken(r, sx->id)) {
            sb_warn("msg=\"experiment skipped: a model or route has its id\" experiment=%s",
                    sx->id);
            continue;
        }
        if (!copy_experiment(b, sx, xe)) {
            sb_warn("msg=\"experiment skipped: no variant with a positive weight\" experiment=%s",
                    sx->id);
            continue;
        }
        sb__ix_put(&r->by_experiment, xe->id, xe);
        r->nexperiments++;
    }
}

const struct sb_experiment_entry *sb_registry_find_experiment(const struct sb_registry *r,
                                                              struct sb_slice name)
{
    return r->by_experiment.slots ? sb__ix_get(&r->by_experiment, name) : NULL;
}

size_t sb_registry_experiment_count(const struct sb_registry *r)
{
    return r->nexperiments;
}
