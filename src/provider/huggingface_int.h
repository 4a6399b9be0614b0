/* SPDX-License-Identifier: MIT */
/*
 * huggingface_int.h - what huggingface.c and huggingface_stream.c share.
 */
#ifndef SB_PROVIDER_HUGGINGFACE_INT_H
#define SB_PROVIDER_HUGGINGFACE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/json.h"
#include "provider/provider.h"

/* The provider's id for messages. */
const char *sb__hf_name(const struct sb_call *c);
/* True when base_url ends in "/v1": TGI's OpenAI-compatible Messages API. */
bool sb__hf_messages_api(const struct sb_call *c);
/* OpenAI finish_reason for TGI's (length; eos_token and stop_sequence are stop). */
const char *sb__hf_finish_reason(struct sb_slice tgi);
/* Writes id, object, created and model members of an OpenAI envelope. */
void sb__hf_envelope(const struct sb_call *c, struct sb_jw *w, const char *object, int64_t created);
/* Writes "usage": {...}; prompt < 0 leaves prompt_tokens and total_tokens out. */
void sb__hf_usage(struct sb_jw *w, int64_t prompt, int64_t completion);
/* Seconds since the epoch, for "created". */
int64_t sb__hf_now(void);

void *sb__hf_stream_open(const struct sb_call *c);
sb_err sb__hf_stream_feed(void *st, const char *p, size_t n, sb_event_fn fn, void *ud,
                          struct sb_error *err);
sb_err sb__hf_stream_finish(void *st, sb_event_fn fn, void *ud, struct sb_error *err);

#endif
