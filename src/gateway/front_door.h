/* SPDX-License-Identifier: MIT */
/*
 * front_door.h - how the proxy speaks to a client that is not an OpenAI
 * client (gateway-internal).
 *
 * The proxy (proxy.c) always talks to adapters in OpenAI Chat Completions.
 * A front door is a const table of the few places where the client's wire
 * format shows: the body before it is parsed, the error body, the whole
 * answer, the stream's events, and optionally the upstream request itself
 * (count_tokens). A NULL front door is the OpenAI API, unchanged. The
 * Anthropic doors (/v1/messages, /v1/messages/count_tokens) live in
 * messages.c.
 */
#ifndef SB_GATEWAY_FRONT_DOOR_H
#define SB_GATEWAY_FRONT_DOOR_H

#include <stdbool.h>

#include "core/buf.h"
#include "gateway/gateway.h"
#include "provider/provider.h"

struct sb_front_door {
    /* The client's body (parsed) to an OpenAI body, arena memory from a; NULL: the body is
     * used as sent. Borrows body. */
    sb_err (*translate)(struct sb_arena *a, const struct sb_json *body, struct sb_slice *out,
                        struct sb_error *err);
    /* The client's error body for an HTTP status, the OpenAI type and code the proxy chose,
     * and a message (never a secret). request_id may be NULL. Appends to out. */
    void (*error_body)(struct sb_buf *out, int status, const char *type, const char *code,
                       const char *msg, const char *request_id);
    /* A whole 2xx upstream body to the client's body (arena memory from c->arena) and the
     * usage; model is the name the client asked for. Borrows body. */
    sb_err (*whole)(const struct sb_call *c, struct sb_slice body, const char *model,
                    struct sb_slice *out, struct sb_usage_counts *usage, struct sb_error *err);
    /* Streams: state from a (lives as long as it); every CHUNK event, usage-only ones too, goes
     * to chunk; finish at a clean end; each appends the client's bytes (framed) to out. */
    void *(*stream_open)(struct sb_arena *a, const char *model);
    sb_err (*stream_chunk)(void *st, struct sb_slice chunk, struct sb_buf *out,
                           struct sb_error *err);
    sb_err (*stream_finish)(void *st, struct sb_buf *out, struct sb_error *err);
    /* The streamed error event for an error after the 200 head. */
    void (*stream_error)(struct sb_buf *out, int status, struct sb_slice msg);
    /* Optional: builds the upstream request instead of the adapter's chat request, or answers
     * locally: SB_OK with *local set (a JSON body, arena memory) and no upstream call, sent
     * with the header local_header: "true". */
    sb_err (*build)(const struct sb_call *c, struct sb_upstream_req *out, struct sb_slice *local,
                    struct sb_error *err);
    const char *local_header;
    bool check_caps;   /* run the capability checks (gateway/caps.h) on the OpenAI body */
    bool no_usage_row; /* account in logs and metrics, but write no usage_logs row */
};

/* Runs one request through the proxy for operation op, spoken by front door fd (NULL: the
 * OpenAI API). Answers req now or later. fd must outlive the request (a static table). */
void sb__proxy_run(struct sb_http_req *req, struct sb_gw_worker *w, enum sb_op op,
                   const struct sb_front_door *fd);

#endif
