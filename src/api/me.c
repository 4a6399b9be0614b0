/* SPDX-License-Identifier: MIT */
/*
 * me.c - /api/me: who the caller is, and for a console session its CSRF
 * token again (a reloaded page has lost it; the cookie is HttpOnly), and
 * for a user their limits and spend in the current period (issue 7; the
 * admin token is nobody and has none).
 */
#include "api/internal.h"
#include "crypto/session.h"
#include "store/quota.h"

sb_err sb__api_me(struct sb_api_call *c)
{
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "user");
    sb_jw_cstr(j, c->actor.name);
    sb_jw_key(j, "role");
    sb_jw_cstr(j, sb__api_role_name(c->actor.role));
    sb_jw_key(j, "via");
    sb_jw_cstr(j, c->actor.via_session ? "session" : "admin_token");
    if (c->actor.via_session) {
        char csrf[SB_CSRF_LEN + 1];
        sb_session_csrf(c->session, csrf);
        sb_jw_key(j, "csrf_token");
        sb_jw_cstr(j, csrf);
        struct sb_store_limits l;
        if (sb_store_user_limits_get(c->api->store, c->actor.name, c->arena, &l, &c->err) !=
                SB_OK ||
            sb__api_limits_members(c, SB_SPEND_BY_USER, c->actor.name, &l) != SB_OK)
            return c->err.code;
    }
    sb_jw_obj_end(j);
    return SB_OK;
}
