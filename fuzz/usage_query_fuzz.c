/* SPDX-License-Identifier: MIT */
/*
 * usage_query_fuzz.c - libFuzzer target for the query string of
 * GET /api/usage (api/usage_query.c).
 *
 * The first byte picks the caller (odd: an admin, even: the user "bob"); the
 * rest is the raw query string. Parsing must not crash or read out of
 * bounds, and what it accepts must hold together: a window with from before
 * to, a known grouping, a group bound in [1, 10000], and, for a user, a
 * report limited to bob's own rows. A refusal is a 400 or a 403. (The time
 * parser itself has its own target, when_fuzz.c.)
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_api_call c;
    struct sb_store_usage_query q;
    bool csv;
    if (size == 0)
        return 0;
    memset(&c, 0, sizeof(c));
    c.arena = sb_arena_create(4096);
    c.query = (struct sb_slice){(const char *)data + 1, size - 1};
    c.actor.role = data[0] & 1 ? SB_ROLE_ADMIN : SB_ROLE_USER;
    snprintf(c.actor.name, sizeof(c.actor.name), "%s", data[0] & 1 ? "admin-token" : "bob");
    if (sb__api_usage_query(&c, &q, &csv) == SB_OK) {
        assert(q.from_ms < q.to_ms && q.from_ms >= 0 && q.to_ms <= 253402300799999LL + 1);
        assert((unsigned)q.group_by < SB_STORE_USAGE_NBY);
        assert(q.max_groups >= 1 && q.max_groups <= 10000);
        if (c.actor.role != SB_ROLE_ADMIN)
            assert(q.eq[SB_STORE_USAGE_BY_USER] &&
                   strcmp(q.eq[SB_STORE_USAGE_BY_USER], "bob") == 0);
    } else {
        assert(c.err.code == SB_E_BAD_REQUEST || c.err.code == SB_E_FORBIDDEN);
    }
    sb_arena_free(c.arena);
    return 0;
}
