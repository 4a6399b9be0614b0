/* SPDX-License-Identifier: MIT */
/*
 * feedback.c - POST /api/feedback {"request_id", "rating", "comment"}: a
 * rating of one answered request, for experiment results.
 *
 * The scale is -1 (bad), 0 (neutral), 1 (good): what a chat interface's
 * thumbs collect, and a mean that reads directly as net satisfaction. The
 * request must be in the usage log (its x-request-id), and a caller other
 * than an admin may rate only their own requests: usage_logs.user_id must
 * be their username (403 otherwise). Rating a request again replaces the
 * earlier rating (200; the first is 201): people change their minds, and
 * results then count the request once with its latest rating.
 */
#include <string.h>

#include "api/internal.h"

#define MAX_COMMENT 2000 /* bytes */

static sb_err parse(struct sb_api_call *c, struct sb_store_feedback *f)
{
    static const char *const keys[] = {"request_id", "rating", "comment", NULL};
    const struct sb_json *rating = NULL;
    memset(f, 0, sizeof(*f));
    if (sb__api_body_only(c, keys) != SB_OK ||
        sb__api_body_str(c, "request_id", true, &f->request_id) != SB_OK ||
        sb__api_body_str(c, "comment", false, &f->comment) != SB_OK)
        return c->err.code;
    if (strlen(f->request_id) == 0 || strlen(f->request_id) > 64)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "request_id",
                            "request_id must be a request's x-request-id (1 to 64 characters)");
    rating = sb_json_get(c->json, "rating");
    if (!rating || !sb_json_int64(rating, &f->rating) || f->rating < -1 || f->rating > 1)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "rating",
                            "rating is required: -1 (bad), 0 (neutral) or 1 (good)");
    if (f->comment && strlen(f->comment) > MAX_COMMENT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "comment", "comment: at most %d bytes",
                            MAX_COMMENT);
    f->user = c->actor.name;
    return SB_OK;
}

/* The request exists and the caller may rate it. */
static sb_err check_owner(struct sb_api_call *c, const char *request_id,
                          struct sb_store_request_ref *ref)
{
    if (sb_store_request_ref(c->api->store, request_id, c->arena, ref, &c->err) != SB_OK)
        return c->err.code;
    if (c->actor.role == SB_ROLE_ADMIN || (ref->user && strcmp(ref->user, c->actor.name) == 0))
        return SB_OK;
    return sb__api_fail(c, SB_E_FORBIDDEN, "request_id",
                        "you may rate only your own requests; '%s' is not one of them", request_id);
}

sb_err sb__api_feedback(struct sb_api_call *c)
{
    struct sb_store_feedback f;
    struct sb_store_request_ref ref = {0};
    bool created = false;
    if (parse(c, &f) != SB_OK || check_owner(c, f.request_id, &ref) != SB_OK ||
        sb_store_feedback_put(c->api->store, &f, &created, &c->err) != SB_OK)
        return c->err.code;
    c->status = created ? 201 : 200;
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "request_id");
    sb_jw_cstr(j, f.request_id);
    sb_jw_key(j, "rating");
    sb_jw_int(j, f.rating);
    sb_jw_key(j, "comment");
    sb_jw_cstr(j, f.comment);
    sb_jw_key(j, "route");
    sb_jw_cstr(j, ref.route);
    sb_jw_key(j, "variant");
    sb_jw_cstr(j, ref.variant);
    sb_jw_key(j, "created");
    sb_jw_bool(j, created);
    sb_jw_obj_end(j);
    return SB_OK;
}
