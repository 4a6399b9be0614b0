/* SPDX-License-Identifier: MIT */
/*
 * messages.c - the Anthropic front doors: POST /v1/messages and
 * POST /v1/messages/count_tokens (DESIGN.md §4).
 *
 * /v1/messages is the ordinary proxy (proxy.c) with a front door that
 * translates at the edges with the pure functions of
 * provider/messages_front.h: the Anthropic request becomes an OpenAI body
 * before anything else reads it, so model resolution, capability checks,
 * credentials, adapters and accounting are the same as on
 * /v1/chat/completions, for any provider. An Anthropic upstream is reached
 * through the anthropic adapter, so its answer is translated twice
 * (Anthropic -> OpenAI -> Anthropic); thinking blocks travel as
 * thinking_blocks in between, signatures untouched (DESIGN.md §6).
 *
 * count_tokens is forwarded to the upstream's own endpoint where the
 * adapter has one (sb_provider_ops.build_count_tokens), and otherwise
 * answered here with the estimate of gateway/caps.h, marked by the response
 * header x-switchboard-estimated: true. It is logged and counted in the
 * metrics, but writes no usage row: nothing was generated and nothing is
 * billed. Every error on both doors, 401 included, has Anthropic's shape.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/caps.h"
#include "gateway/front_door.h"
#include "provider/messages_front.h"

/* ==================================================================
 * /v1/messages
 * ================================================================== */

static void error_body(struct sb_buf *out, int status, const char *type, const char *code,
                       const char *msg, const char *request_id)
{
    sb_messages_front_error(out, status, sb_slice_cstr(msg), request_id);
}

/* The adapter's OpenAI chat.completion, then Anthropic's Message. */
static sb_err whole(const struct sb_call *c, struct sb_slice body, const char *model,
                    struct sb_slice *out, struct sb_usage_counts *usage, struct sb_error *err)
{
    struct sb_result r;
    if (c->provider->ops->parse_response(c, body, &r, err) != SB_OK)
        return err->code;
    *usage = r.usage;
    return sb_messages_front_response(c->arena, r.body, model, out, err);
}

static void *stream_open(struct sb_arena *a, const char *model)
{
    return sb_messages_front_stream_open(a, model);
}

static sb_err stream_chunk(void *st, struct sb_slice chunk, struct sb_buf *out,
                           struct sb_error *err)
{
    return sb_messages_front_stream_feed(st, chunk, out, err);
}

static sb_err stream_finish(void *st, struct sb_buf *out, struct sb_error *err)
{
    return sb_messages_front_stream_finish(st, out, err);
}

static const struct sb_front_door messages_door = {
    .translate = sb_messages_front_request,
    .error_body = error_body,
    .whole = whole,
    .stream_open = stream_open,
    .stream_chunk = stream_chunk,
    .stream_finish = stream_finish,
    .stream_error = sb_messages_front_error_event,
    .check_caps = true,
};

void sb_gateway_messages(struct sb_http_req *req, struct sb_gw_worker *w)
{
    sb__proxy_run(req, w, SB_OP_CHAT, &messages_door);
}

/* ==================================================================
 * /v1/messages/count_tokens
 * ================================================================== */

/* The upstream's own count where it has one, else the estimate, answered locally. */
static sb_err count_build(const struct sb_call *c, struct sb_upstream_req *out,
                          struct sb_slice *local, struct sb_error *err)
{
    const struct sb_json *msgs = sb_json_get(c->json, "messages");
    if (!msgs || msgs->type != SB_JSON_ARRAY || msgs->count == 0)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "messages",
                             "/v1/messages/count_tokens: 'messages' is required and must be a "
                             "non-empty array");
    if (sb_json_get(c->json, "stream"))
        return sb_fail_field(err, SB_E_BAD_REQUEST, "stream",
                             "/v1/messages/count_tokens: 'stream' is not a parameter of this "
                             "endpoint");
    if (c->provider->ops->build_count_tokens)
        return c->provider->ops->build_count_tokens(c, out, err);
    const char *body =
        sb_arena_printf(c->arena, "{\"input_tokens\":%lld}", (long long)sb_token_estimate(c->json));
    *local = sb_slice_cstr(body);
    return SB_OK;
}

/* The upstream's {"input_tokens": N}, passed on as exactly that. */
static sb_err count_whole(const struct sb_call *c, struct sb_slice body, const char *model,
                          struct sb_slice *out, struct sb_usage_counts *usage, struct sb_error *err)
{
    static const struct sb_json_limits lim = {.max_depth = 16, .max_bytes = 0};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    int64_t n;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) != SB_OK ||
        !sb_json_int64(sb_json_get(root, "input_tokens"), &n) || n < 0)
        return sb_fail(err, SB_E_UPSTREAM,
                       "the upstream's count_tokens answer has no input_tokens count");
    *out = sb_slice_cstr(sb_arena_printf(c->arena, "{\"input_tokens\":%lld}", (long long)n));
    return SB_OK;
}

static const struct sb_front_door count_door = {
    .error_body = error_body,
    .whole = count_whole,
    .stream_open = stream_open,
    .stream_chunk = stream_chunk,
    .stream_finish = stream_finish,
    .stream_error = sb_messages_front_error_event,
    .build = count_build,
    .local_header = "x-switchboard-estimated",
    .no_usage_row = true,
};

void sb_gateway_count_tokens(struct sb_http_req *req, struct sb_gw_worker *w)
{
    sb__proxy_run(req, w, SB_OP_CHAT, &count_door);
}
