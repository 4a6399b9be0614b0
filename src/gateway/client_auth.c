/* SPDX-License-Identifier: MIT */
/*
 * client_auth.c - who may call /v1 and /api.
 *
 * For now the only credential is the admin token (virtual keys arrive with
 * their own issue). We keep only its SHA-256: tokens are long and random,
 * so a slow hash buys nothing, and the comparison is constant-time.
 */
#include "crypto/keys.h"
#include "gateway/gateway.h"

static struct sb_slice bearer(const struct sb_http_req *req)
{
    struct sb_slice a = sb_http_header(req, "authorization");
    if (a.len > 7 && sb_slice_caseeq((struct sb_slice){a.p, 7}, SB_SLICE("Bearer "))) {
        struct sb_slice t = {a.p + 7, a.len - 7};
        while (t.len && *t.p == ' ')
            t.p++, t.len--;
        return t;
    }
    return sb_http_header(req, "x-api-key");
}

bool sb_gateway_authenticate(const struct sb_gateway *gw, const struct sb_http_req *req)
{
    struct sb_slice t = bearer(req);
    return gw->has_admin && t.len > 0 && sb_keys_check_admin(&gw->admin, t);
}
