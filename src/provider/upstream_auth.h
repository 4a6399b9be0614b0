/* SPDX-License-Identifier: MIT */
/*
 * upstream_auth.h - upstream authentication and extra headers, shared by every adapter.
 *
 * One call adds a provider's configured extra headers and then its auth
 * (enum sb_auth_method in provider.h) to an upstream request that is
 * otherwise complete. Credentials are read only through sb_secret_reveal();
 * every arena copy that holds one (the "Bearer ..." value, an api-key value,
 * a URL carrying ?key=, a session token) is wiped when the arena is freed.
 * Nothing here logs, and error messages name the provider, never a secret.
 */
#ifndef SB_PROVIDER_UPSTREAM_AUTH_H
#define SB_PROVIDER_UPSTREAM_AUTH_H

#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/slice.h"
#include "provider/provider.h"

struct sb_upstream_auth_opts {
    const char
        *key_name; /* API_KEY: header name (default "api-key"); QUERY: parameter (default "key") */
    const char *service; /* SIGV4: signing service name (default "bedrock") */
    int64_t now;         /* SIGV4: signing time in seconds since the epoch; 0 = now */
};

/*
 * Adds p's extra headers, then p's auth, to req. Call it last: SigV4 signs
 * req->method, req->url, req->body and the content-type and x-amz-* headers
 * as they are now. req->headers must be NULL or arena memory (entries may be
 * replaced in place and the array regrown from a); an extra header replaces
 * an adapter header of the same name, and the auth header replaces both.
 * o may be NULL (all defaults). SB_AUTH_QUERY rewrites req->url, which then
 * holds the key: never log that URL. Returns SB_OK, or SB_E_CONFIG when a
 * credential the method needs is missing.
 */
sb_err sb_upstream_auth_apply(const struct sb_provider *p, const struct sb_upstream_auth_opts *o,
                              struct sb_arena *a, struct sb_upstream_req *req,
                              struct sb_error *err);

/*
 * Sets header name: value in req, replacing the first header of that name
 * (ASCII case-insensitive) or appending. Borrows name and value (keep them
 * alive as long as req); the array comes from a.
 */
void sb_upstream_auth_set_header(struct sb_arena *a, struct sb_upstream_req *req,
                                 struct sb_slice name, struct sb_slice value);

#endif
