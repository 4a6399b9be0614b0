/* SPDX-License-Identifier: MIT */
/*
 * messages_front.h - the Anthropic `/v1/messages` front door as pure translations.
 *
 * The gateway's adapters all speak OpenAI Chat Completions towards the
 * proxy, so the Anthropic front door is a translation at the edge (DESIGN.md
 * §4, §6): an Anthropic Messages request becomes an OpenAI request body, and
 * the OpenAI answer (a whole chat.completion, a stream of
 * chat.completion.chunk JSON, or an error) becomes Anthropic's. Nothing here
 * does I/O, logs, or knows which provider answers; the HTTP path calls these
 * functions with bytes and writes what they return.
 *
 * Reasoning (DESIGN.md §6): signed thinking / redacted_thinking blocks travel
 * as OpenAI `thinking_blocks` unchanged; an unsigned thinking block
 * (signature "", which is how a non-Anthropic model's reasoning reaches an
 * Anthropic client) goes back as `reasoning_content`, never as a block. In
 * the other direction `thinking_blocks` come first, else reasoning_content
 * becomes a thinking block with "signature": "".
 *
 * Usage: OpenAI's prompt_tokens includes cached tokens; Anthropic's
 * input_tokens does not, so input_tokens = prompt_tokens - cached_tokens and
 * cache_read_input_tokens = cached_tokens.
 */
#ifndef SB_PROVIDER_MESSAGES_FRONT_H
#define SB_PROVIDER_MESSAGES_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/slice.h"

/*
 * (a) An Anthropic Messages request (parsed) to an OpenAI Chat Completions
 * body. *out is arena memory from a. A field or block we cannot carry
 * (document blocks, server tools, an unknown member) is SB_E_BAD_REQUEST
 * naming it, with err->field set. A streamed request also asks for
 * stream_options.include_usage, so the final message_delta has usage.
 * Borrows req.
 */
sb_err sb_messages_front_request(struct sb_arena *a, const struct sb_json *req,
                                 struct sb_slice *out, struct sb_error *err);

/*
 * (b) An OpenAI chat.completion body to an Anthropic Message body (arena
 * memory from a). model, when not NULL, is the model name to report (the
 * one the client asked for); else the response's own. SB_E_UPSTREAM when the
 * body is not a chat.completion or a tool call's arguments are not a JSON
 * object. Borrows body.
 */
sb_err sb_messages_front_response(struct sb_arena *a, struct sb_slice body, const char *model,
                                  struct sb_slice *out, struct sb_error *err);

/*
 * (c) Streams: OpenAI chunk JSON in (one chunk per call, the sb_event.chunk
 * bytes, no "data: " framing), Anthropic SSE events out, appended to out:
 * message_start and a ping with the first chunk, then content_block_start /
 * content_block_delta (text_delta, thinking_delta, signature_delta,
 * input_json_delta) / content_block_stop, and from finish a message_delta
 * with stop_reason and usage, then message_stop. State comes from a and
 * lives as long as it; model as in (b), borrowed for as long.
 */
struct sb_messages_front_stream;

struct sb_messages_front_stream *sb_messages_front_stream_open(struct sb_arena *a,
                                                               const char *model);
/* SB_OK, or SB_E_UPSTREAM for a chunk that is not JSON or carries an error (nothing appended). */
sb_err sb_messages_front_stream_feed(struct sb_messages_front_stream *st, struct sb_slice chunk,
                                     struct sb_buf *out, struct sb_error *err);
/* At the end of the upstream stream: SB_OK after message_delta and message_stop, or
 * SB_E_UPSTREAM (nothing appended) when no chunk ever carried a finish_reason: the
 * caller then writes an error event. */
sb_err sb_messages_front_stream_finish(struct sb_messages_front_stream *st, struct sb_buf *out,
                                       struct sb_error *err);

/*
 * (d) Errors in Anthropic's shape:
 * {"type":"error","error":{"type":T,"message":M},"request_id":R|null}, T
 * chosen by the HTTP status (400 invalid_request_error, 401
 * authentication_error, 402 billing_error, 403 permission_error, 404
 * not_found_error, 413 request_too_large, 429 rate_limit_error, 503 and 529
 * overloaded_error, 504 timeout_error, other 5xx api_error). request_id may
 * be NULL.
 */
const char *sb_messages_front_error_type(int http_status);
void sb_messages_front_error(struct sb_buf *out, int http_status, struct sb_slice message,
                             const char *request_id);
/* The same from an OpenAI error body ({"error":{"message",...}}; other bodies are quoted). */
void sb_messages_front_error_from_openai(struct sb_buf *out, int http_status,
                                         struct sb_slice openai_body, const char *request_id);
/* The streamed form: "event: error\ndata: {...}\n\n". */
void sb_messages_front_error_event(struct sb_buf *out, int http_status, struct sb_slice message);

#endif
