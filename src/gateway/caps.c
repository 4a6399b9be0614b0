/* SPDX-License-Identifier: MIT */
/*
 * caps.c - capability checks before any upstream call, and the prompt-token
 * estimate (caps.h says what each counts and why).
 *
 * The checks are a table: which request members ask for which capability.
 * Each row's test looks at the parsed OpenAI-format body only, so both
 * front doors share them (/v1/messages is checked after its translation).
 * Pure functions: no I/O, no allocation.
 */
#include "gateway/caps.h"

#include <stdio.h>
#include <string.h>

static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static bool type_is(const struct sb_json *o, const char *type)
{
    const struct sb_json *t = jget(o, "type");
    return t && t->type == SB_JSON_STRING && sb_slice_eq_cstr(t->str, type);
}

/* ==================================================================
 * The estimate
 * ================================================================== */

struct tally {
    uint64_t bytes;
    int64_t images;
};

static bool is_image(const struct sb_json *o)
{
    return type_is(o, "image_url") || type_is(o, "image") || type_is(o, "input_image");
}

/* Text bytes of a value; images counted apart, opaque reasoning members skipped. */
static void walk(const struct sb_json *j, struct tally *t, int depth)
{
    if (!j || depth > 64)
        return;
    if (j->type == SB_JSON_STRING) {
        t->bytes += j->str.len;
        return;
    }
    if (j->type == SB_JSON_OBJECT && is_image(j)) {
        t->images++;
        return;
    }
    if (j->type == SB_JSON_OBJECT && type_is(j, "redacted_thinking"))
        return;
    for (const struct sb_json *c = j->child; c; c = c->next) {
        if (j->type == SB_JSON_OBJECT &&
            (sb_slice_eq_cstr(c->key, "signature") || sb_slice_eq_cstr(c->key, "type") ||
             sb_slice_eq_cstr(c->key, "cache_control")))
            continue;
        walk(c, t, depth + 1);
    }
}

int64_t sb_token_estimate(const struct sb_json *body)
{
    static const char *const text[] = {"system", "messages"};
    static const char *const schema[] = {"tools", "functions"};
    struct tally t = {0, 0};
    int64_t messages = 0;
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        walk(jget(body, text[i]), &t, 0);
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
        const struct sb_json *s = jget(body, schema[i]);
        if (s && s->type == SB_JSON_ARRAY)
            t.bytes += s->raw.len;
    }
    const struct sb_json *m = jget(body, "messages");
    if (m && m->type == SB_JSON_ARRAY)
        messages = (int64_t)m->count;
    return (int64_t)((t.bytes + 3) / 4) + messages * SB_ESTIMATE_MESSAGE_TOKENS +
           t.images * SB_ESTIMATE_IMAGE_TOKENS;
}

/* ==================================================================
 * The checks
 * ================================================================== */

static bool non_empty(const struct sb_json *j)
{
    return j && j->type != SB_JSON_NULL && !(j->type == SB_JSON_ARRAY && j->count == 0);
}

/* The first member of tools, tool_choice, functions that asks for tool use, or NULL. */
static const char *wants_tools(enum sb_op op, const struct sb_json *body)
{
    static const char *const members[] = {"tools", "tool_choice", "functions", "function_call"};
    for (size_t i = 0; op == SB_OP_CHAT && i < sizeof(members) / sizeof(members[0]); i++)
        if (non_empty(jget(body, members[i])))
            return members[i];
    return NULL;
}

static const char *wants_vision(enum sb_op op, const struct sb_json *body)
{
    const struct sb_json *msgs = jget(body, "messages");
    for (const struct sb_json *m =
             op == SB_OP_CHAT && msgs && msgs->type == SB_JSON_ARRAY ? msgs->child : NULL;
         m; m = m->next) {
        const struct sb_json *c = jget(m, "content");
        for (const struct sb_json *p = c && c->type == SB_JSON_ARRAY ? c->child : NULL; p;
             p = p->next)
            if (is_image(p))
                return "messages";
    }
    return NULL;
}

static const char *wants_json(enum sb_op op, const struct sb_json *body)
{
    const struct sb_json *rf = jget(body, "response_format");
    return op == SB_OP_CHAT && (type_is(rf, "json_object") || type_is(rf, "json_schema"))
               ? "response_format"
               : NULL;
}

static const char *wants_embeddings(enum sb_op op, const struct sb_json *body)
{
    return op == SB_OP_EMBEDDINGS ? "model" : NULL;
}

static const struct {
    unsigned cap;
    const char *name; /* as the config file spells it */
    const char *what; /* what the request asked for */
    const char *(*asks)(enum sb_op op, const struct sb_json *body);
} rules[] = {
    {SB_CAP_TOOLS, "tools", "tools", wants_tools},
    {SB_CAP_VISION, "vision", "image input", wants_vision},
    {SB_CAP_JSON_MODE, "json_mode", "a JSON response_format", wants_json},
    {SB_CAP_EMBEDDINGS, "embeddings", "embeddings", wants_embeddings},
};

static sb_err refuse(struct sb_error *err, const char *field, const char *code)
{
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->api_code, sizeof(err->api_code), "%s", code);
    return SB_E_BAD_REQUEST;
}

sb_err sb_caps_check(const struct sb_model *m, enum sb_op op, const struct sb_json *body,
                     int64_t prompt_tokens, struct sb_error *err)
{
    for (size_t i = 0; (m->caps & SB_CAP_DECLARED) && i < sizeof(rules) / sizeof(rules[0]); i++) {
        const char *field = rules[i].asks(op, body);
        if (!field || (m->caps & rules[i].cap))
            continue;
        sb_fail(err, SB_E_BAD_REQUEST,
                "the model '%s' does not support %s (its capabilities do not include '%s')", m->id,
                rules[i].what, rules[i].name);
        return refuse(err, field, "unsupported_capability");
    }
    if (op != SB_OP_CHAT || m->context_length <= 0)
        return SB_OK;
    int64_t n = prompt_tokens >= 0 ? prompt_tokens : sb_token_estimate(body);
    if (n <= m->context_length)
        return SB_OK;
    sb_fail(err, SB_E_BAD_REQUEST,
            "the prompt is about %lld tokens (estimated), longer than the context length of "
            "the model '%s' (%ld tokens)",
            (long long)n, m->id, m->context_length);
    return refuse(err, "messages", "context_length_exceeded");
}
