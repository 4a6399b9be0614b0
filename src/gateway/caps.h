/* SPDX-License-Identifier: MIT */
/*
 * caps.h - what a model can do, checked before any upstream call, and the
 * prompt-token estimate both the check and /v1/messages/count_tokens use.
 *
 * Capabilities (DESIGN.md §5, struct sb_model.caps) are trusted only when the
 * model declared them (SB_CAP_DECLARED: its entry had a capabilities block,
 * even an empty one). A model that says nothing is "unknown" and nothing is
 * refused for want of a capability; the upstream answers for itself. The
 * context_length check does not depend on that: a known length is a fact.
 */
#ifndef SB_GATEWAY_CAPS_H
#define SB_GATEWAY_CAPS_H

#include <stdint.h>

#include "core/err.h"
#include "core/json.h"
#include "provider/provider.h"

/* Tokens counted for one image, whatever its size (OpenAI's low-detail cost). */
#define SB_ESTIMATE_IMAGE_TOKENS 85
/* Tokens counted for each message's framing (role, separators). */
#define SB_ESTIMATE_MESSAGE_TOKENS 4

/*
 * A documented heuristic, not a tokenizer: ceil(bytes / 4) of the text a
 * chat body sends (system, the strings inside messages, and the JSON text of
 * tools / functions definitions), plus SB_ESTIMATE_MESSAGE_TOKENS per message
 * and SB_ESTIMATE_IMAGE_TOKENS per image block (an image's URL or base64 data
 * is not text). Thinking signatures and redacted thinking data are opaque and
 * not counted. Works on an OpenAI Chat Completions body and on an Anthropic
 * Messages body alike. English prose runs about 4 bytes per token; code and
 * non-Latin scripts run fewer bytes per token, so this tends to
 * underestimate, which is the safe side for a check that refuses. Borrows body.
 */
int64_t sb_token_estimate(const struct sb_json *body);

/*
 * Checks an OpenAI-format body (parsed) for operation op against model m:
 * tools / tool_choice / functions without the tools capability, image
 * content parts without vision, response_format json_object / json_schema
 * without json_mode, embeddings without the embeddings capability (each only
 * when m declared its capabilities), and a chat prompt whose estimate is
 * longer than m->context_length when that is > 0. SB_OK, or
 * SB_E_BAD_REQUEST with a message naming the model and the capability,
 * err->field the request member, and err->api_code "unsupported_capability"
 * or "context_length_exceeded". prompt_tokens is the estimate when the
 * caller has it (sb_token_estimate), < 0 to have it computed here. Borrows
 * everything.
 */
sb_err sb_caps_check(const struct sb_model *m, enum sb_op op, const struct sb_json *body,
                     int64_t prompt_tokens, struct sb_error *err);

#endif
