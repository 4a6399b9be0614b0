/* SPDX-License-Identifier: MIT */
/*
 * messages_front_int.h - helpers shared by messages_front.c and messages_front_stream.c.
 */
#ifndef SB_PROVIDER_MESSAGES_FRONT_INT_H
#define SB_PROVIDER_MESSAGES_FRONT_INT_H

#include "core/json.h"
#include "core/slice.h"

/* Anthropic's stop_reason for an OpenAI finish_reason ("end_turn" when unknown or empty). */
const char *sb__messages_front_stop_reason(struct sb_slice finish);
/* Writes "id": "msg_..." from an OpenAI completion id (its "chatcmpl-" prefix dropped). */
void sb__messages_front_id(struct sb_jw *w, struct sb_slice id);
/* Copies from's `extra_content` object (a provider's per-call state) as the same member. */
void sb__mf_put_extra(struct sb_jw *w, const struct sb_json *from);
/* The reasoning text of a message or delta (reasoning_content, else reasoning), or NULL. */
const struct sb_json *sb__messages_front_reasoning(const struct sb_json *msg);

#endif
