/* SPDX-License-Identifier: MIT */
/*
 * openai_int.h - the parts of the openai adapter that other OpenAI-bodied adapters reuse.
 *
 * Azure OpenAI and TGI's Messages API take OpenAI's Chat Completions body
 * unchanged; they differ only in URL, auth and a few stream quirks. Rather
 * than copy the body splice, they call it here and reach the rest of the
 * openai adapter (whole responses, streams, errors) through sb_openai_ops.
 * Internal to src/provider/ (the sb__ prefix).
 */
#ifndef SB_PROVIDER_OPENAI_INT_H
#define SB_PROVIDER_OPENAI_INT_H

#include "provider/provider.h"

extern const struct sb_provider_ops sb_openai_ops;

/*
 * The client's body with every top-level "model" set to the upstream model
 * and, for a stream, stream_options.include_usage forced on. *out is
 * c->body itself when nothing changed, else arena bytes from c->arena.
 */
sb_err sb__openai_rewrite_body(const struct sb_call *c, bool usage, struct sb_slice *out,
                               struct sb_error *err);
/* The same into out: as pieces (out->parts: the client's bytes around the new
 * values) when c->want_parts and the provider does not sign the body, else as
 * out->body. */
sb_err sb__openai_set_body(const struct sb_call *c, bool usage, struct sb_upstream_req *out,
                           struct sb_error *err);

/*
 * After sb_fail: sets err->api_code to the upstream's error.code when it is
 * a word (context_length_exceeded, content_filter; Azure's names renamed to
 * OpenAI's), else invalid_api_key for 401 and model_not_found for 404.
 * Borrows body; parses it into c->arena.
 */
void sb__openai_keep_code(const struct sb_call *c, int status, struct sb_slice body,
                          struct sb_error *err);

#endif
