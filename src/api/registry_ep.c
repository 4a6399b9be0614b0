/* SPDX-License-Identifier: MIT */
/*
 * registry_ep.c - /api/registry: what the data plane serves now, and a
 * forced reload from the store.
 */
#include "api/internal.h"
#include "registry/registry.h"
#include "registry/registry_build.h"

static void write_status(struct sb_api_call *c)
{
    struct sb_registry *r = sb_registry_acquire();
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "snapshot_version");
    sb_jw_int(j, r ? (int64_t)sb_registry_generation(r) : 0);
    sb_jw_key(j, "registry_version");
    sb_jw_int(j, c->api->version);
    sb__api_time(j, "loaded_at", c->api->loaded_at_ms);
    sb_jw_key(j, "counts");
    sb_jw_obj_begin(j);
    sb_jw_key(j, "providers");
    sb_jw_int(j, r ? (int64_t)sb_registry_provider_count(r) : 0);
    sb_jw_key(j, "models");
    sb_jw_int(j, r ? (int64_t)sb_registry_model_count(r) : 0);
    sb_jw_key(j, "routes");
    sb_jw_int(j, r ? (int64_t)sb_registry_route_count(r) : 0);
    sb_jw_obj_end(j);
    sb_jw_obj_end(j);
    if (r)
        sb_registry_release(r);
}

sb_err sb__api_registry_status(struct sb_api_call *c)
{
    write_status(c);
    return SB_OK;
}

sb_err sb__api_registry_refresh(struct sb_api_call *c)
{
    if (sb__api_reload(c->api, &c->err) != SB_OK)
        return c->err.code;
    sb__api_audit(c, "registry.refresh", "registry", "", SB_SLICE_NULL, SB_SLICE_NULL, "ok");
    write_status(c);
    return SB_OK;
}
