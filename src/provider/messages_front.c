/* SPDX-License-Identifier: MIT */
/*
 * messages_front.c - Anthropic Messages requests to OpenAI bodies, whole
 * OpenAI answers back to Anthropic Messages, and errors in Anthropic's shape.
 *
 * The request side walks a table of the Anthropic members we understand;
 * any other member is refused by name rather than dropped (STYLE.md:
 * "accepted and ignored"). The one exception is cache_control on blocks:
 * a caching hint that OpenAI-format upstreams cannot take and whose absence
 * changes no answer. The stream half lives in messages_front_stream.c.
 *
 * Pure functions of bytes: no I/O, no logging, all output from the arena
 * the caller passes.
 */
#include "provider/messages_front.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/messages_front_int.h"

#define MAX_DEPTH 64

static const struct sb_json_limits body_limits = {.max_depth = MAX_DEPTH, .max_bytes = 0};

static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static bool jstr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

static bool jarr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_ARRAY;
}

static struct sb_slice block_type(const struct sb_json *blk)
{
    const struct sb_json *t = jget(blk, "type");
    return jstr(t) ? t->str : SB_SLICE_NULL;
}

/* A buffer's bytes as a slice that is never NULL (sb_jw_str needs a pointer even for ""). */
static struct sb_slice bytes(const struct sb_buf *b)
{
    return b->p ? sb_buf_slice(b) : SB_SLICE("");
}

static struct sb_slice copy_out(struct sb_arena *a, struct sb_buf *b)
{
    struct sb_slice s = sb_arena_slice(a, sb_buf_slice(b));
    sb_buf_free(b);
    return s;
}

/* ==================================================================
 * (a) Request: Anthropic Messages -> OpenAI Chat Completions
 * ================================================================== */

struct rq {
    struct sb_jw *w;
    struct sb_error *err;
    const struct sb_json *req;
};

static sb_err bad(struct rq *r, const char *field, const char *why)
{
    return sb_fail_field(r->err, SB_E_BAD_REQUEST, field, "/v1/messages: '%s' %s", field, why);
}

/* field names for messages[i].content[j], built on the stack */
static const char *at(char *buf, size_t n, const char *what, size_t i, size_t j)
{
    snprintf(buf, n, "messages[%zu].%s[%zu]", i, what, j);
    return buf;
}

/* system: a string or text blocks, joined with newlines into one system message. */
static sb_err put_system(struct rq *r, const struct sb_json *sys)
{
    if (!sys || sys->type == SB_JSON_NULL)
        return SB_OK;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_err rc = SB_OK;
    if (jstr(sys)) {
        sb_buf_append_slice(&b, sys->str);
    } else if (jarr(sys)) {
        for (const struct sb_json *blk = sys->child; blk && rc == SB_OK; blk = blk->next) {
            const struct sb_json *t = jget(blk, "text");
            if (!sb_slice_eq_cstr(block_type(blk), "text") || !jstr(t))
                rc = bad(r, "system", "blocks must be text blocks");
            else {
                if (blk != sys->child)
                    sb_buf_append_char(&b, '\n');
                sb_buf_append_slice(&b, t->str);
            }
        }
    } else {
        rc = bad(r, "system", "must be a string or an array of text blocks");
    }
    if (rc == SB_OK) {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "role");
        sb_jw_cstr(r->w, "system");
        sb_jw_key(r->w, "content");
        sb_jw_str(r->w, bytes(&b));
        sb_jw_obj_end(r->w);
    }
    sb_buf_free(&b);
    return rc;
}

/* An image block as an OpenAI image_url part: base64 becomes a data: URL. */
static sb_err put_image(struct rq *r, const struct sb_json *blk, const char *field)
{
    const struct sb_json *src = jget(blk, "source");
    struct sb_slice kind = block_type(src);
    const struct sb_json *data = jget(src, "data"), *mt = jget(src, "media_type");
    const struct sb_json *url = jget(src, "url");
    struct sb_buf b;
    sb_buf_init(&b, 0);
    if (sb_slice_eq_cstr(kind, "base64") && jstr(data) && jstr(mt))
        sb_buf_printf(&b, "data:%.*s;base64,%.*s", SB_FMT(mt->str), SB_FMT(data->str));
    else if (sb_slice_eq_cstr(kind, "url") && jstr(url))
        sb_buf_append_slice(&b, url->str);
    else {
        sb_buf_free(&b);
        return bad(r, field, "image source must be base64 (media_type, data) or url");
    }
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "type");
    sb_jw_cstr(r->w, "image_url");
    sb_jw_key(r->w, "image_url");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "url");
    sb_jw_str(r->w, bytes(&b));
    sb_jw_obj_end(r->w);
    sb_jw_obj_end(r->w);
    sb_buf_free(&b);
    return SB_OK;
}

/* tool_result content: a string, or text blocks joined (images cannot go in an OpenAI tool
 * message). */
static sb_err put_tool_result(struct rq *r, const struct sb_json *blk, const char *field)
{
    const struct sb_json *id = jget(blk, "tool_use_id"), *c = jget(blk, "content");
    if (!jstr(id))
        return bad(r, field, "needs a tool_use_id string");
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_err rc = SB_OK;
    if (jstr(c))
        sb_buf_append_slice(&b, c->str);
    for (const struct sb_json *p = jarr(c) ? c->child : NULL; p && rc == SB_OK; p = p->next) {
        if (!sb_slice_eq_cstr(block_type(p), "text") || !jstr(jget(p, "text")))
            rc = bad(r, field, "content may hold text blocks only (OpenAI tool messages are text)");
        else
            sb_buf_append_slice(&b, jget(p, "text")->str);
    }
    if (rc == SB_OK && c && !jstr(c) && !jarr(c))
        rc = bad(r, field, "content must be a string or an array of text blocks");
    if (rc == SB_OK) {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "role");
        sb_jw_cstr(r->w, "tool");
        sb_jw_key(r->w, "tool_call_id");
        sb_jw_str(r->w, id->str);
        sb_jw_key(r->w, "content");
        sb_jw_str(r->w, bytes(&b));
        sb_jw_obj_end(r->w);
    }
    sb_buf_free(&b);
    return rc;
}

/* The user blocks other than tool results, as OpenAI content parts. */
static sb_err put_user_parts(struct rq *r, const struct sb_json *content, size_t i)
{
    char field[64];
    sb_err rc = SB_OK;
    size_t j = 0;
    sb_jw_arr_begin(r->w);
    for (const struct sb_json *blk = content->child; blk && rc == SB_OK; blk = blk->next, j++) {
        struct sb_slice t = block_type(blk);
        at(field, sizeof(field), "content", i, j);
        if (sb_slice_eq_cstr(t, "tool_result"))
            continue;
        if (sb_slice_eq_cstr(t, "text") && jstr(jget(blk, "text"))) {
            sb_jw_obj_begin(r->w);
            sb_jw_key(r->w, "type");
            sb_jw_cstr(r->w, "text");
            sb_jw_key(r->w, "text");
            sb_jw_str(r->w, jget(blk, "text")->str);
            sb_jw_obj_end(r->w);
        } else if (sb_slice_eq_cstr(t, "image")) {
            rc = put_image(r, blk, field);
        } else {
            rc = bad(r, field, "is a block type this gateway cannot carry in a user turn");
        }
    }
    sb_jw_arr_end(r->w);
    return rc;
}

static sb_err put_user(struct rq *r, const struct sb_json *content, size_t i)
{
    char field[64];
    size_t j = 0, others = 0;
    sb_err rc = SB_OK;
    /* Tool results first: OpenAI wants tool messages right after the assistant's tool calls. */
    for (const struct sb_json *blk = content->child; blk && rc == SB_OK; blk = blk->next, j++) {
        if (sb_slice_eq_cstr(block_type(blk), "tool_result"))
            rc = put_tool_result(r, blk, at(field, sizeof(field), "content", i, j));
        else
            others++;
    }
    if (rc != SB_OK || others == 0)
        return rc;
    const struct sb_json *only = content->child;
    while (only && sb_slice_eq_cstr(block_type(only), "tool_result"))
        only = only->next;
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "role");
    sb_jw_cstr(r->w, "user");
    sb_jw_key(r->w, "content");
    if (others == 1 && sb_slice_eq_cstr(block_type(only), "text") && jstr(jget(only, "text")))
        sb_jw_str(r->w, jget(only, "text")->str);
    else
        rc = put_user_parts(r, content, i);
    sb_jw_obj_end(r->w);
    return rc;
}

/* ---- assistant turns ---- */

static bool is_signed(const struct sb_json *blk)
{
    const struct sb_json *s = jget(blk, "signature");
    return jstr(s) && s->str.len > 0;
}

/* Checks every block of an assistant turn before anything is written. */
static sb_err check_assistant(struct rq *r, const struct sb_json *content, size_t i)
{
    char field[64];
    size_t j = 0;
    for (const struct sb_json *blk = content->child; blk; blk = blk->next, j++) {
        struct sb_slice t = block_type(blk);
        bool ok =
            (sb_slice_eq_cstr(t, "text") && jstr(jget(blk, "text"))) ||
            (sb_slice_eq_cstr(t, "thinking") && jstr(jget(blk, "thinking"))) ||
            (sb_slice_eq_cstr(t, "redacted_thinking") && jstr(jget(blk, "data"))) ||
            (sb_slice_eq_cstr(t, "tool_use") && jstr(jget(blk, "id")) && jstr(jget(blk, "name")) &&
             jget(blk, "input") && jget(blk, "input")->type == SB_JSON_OBJECT);
        if (!ok)
            return bad(r, at(field, sizeof(field), "content", i, j),
                       "is not a text, thinking, redacted_thinking or tool_use block this "
                       "gateway can carry in an assistant turn");
    }
    return SB_OK;
}

/* Joins the text of the blocks of type `type` (member `member`), optionally unsigned only. */
static bool join_blocks(const struct sb_json *content, const char *type, const char *member,
                        bool unsigned_only, struct sb_buf *b)
{
    bool any = false;
    for (const struct sb_json *blk = content->child; blk; blk = blk->next) {
        if (!sb_slice_eq_cstr(block_type(blk), type) || (unsigned_only && is_signed(blk)))
            continue;
        sb_buf_append_slice(b, jget(blk, member)->str);
        any = true;
    }
    return any;
}

static void put_thinking_blocks(struct rq *r, const struct sb_json *content)
{
    bool open = false;
    for (const struct sb_json *blk = content->child; blk; blk = blk->next) {
        struct sb_slice t = block_type(blk);
        bool thinking = sb_slice_eq_cstr(t, "thinking") && is_signed(blk);
        if (!thinking && !sb_slice_eq_cstr(t, "redacted_thinking"))
            continue;
        if (!open) {
            sb_jw_key(r->w, "thinking_blocks");
            sb_jw_arr_begin(r->w);
            open = true;
        }
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "type");
        sb_jw_str(r->w, t);
        sb_jw_key(r->w, thinking ? "thinking" : "data");
        sb_jw_str(r->w, jget(blk, thinking ? "thinking" : "data")->str);
        if (thinking) {
            sb_jw_key(r->w, "signature");
            sb_jw_str(r->w, jget(blk, "signature")->str);
        }
        sb_jw_obj_end(r->w);
    }
    if (open)
        sb_jw_arr_end(r->w);
}

static void put_tool_calls(struct rq *r, const struct sb_json *content)
{
    bool open = false;
    for (const struct sb_json *blk = content->child; blk; blk = blk->next) {
        if (!sb_slice_eq_cstr(block_type(blk), "tool_use"))
            continue;
        if (!open) {
            sb_jw_key(r->w, "tool_calls");
            sb_jw_arr_begin(r->w);
            open = true;
        }
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "id");
        sb_jw_str(r->w, jget(blk, "id")->str);
        sb_jw_key(r->w, "type");
        sb_jw_cstr(r->w, "function");
        sb_jw_key(r->w, "function");
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "name");
        sb_jw_str(r->w, jget(blk, "name")->str);
        sb_jw_key(r->w, "arguments");
        sb_jw_str(r->w, jget(blk, "input")->raw); /* the input object's JSON text */
        sb_jw_obj_end(r->w);
        sb__mf_put_extra(r->w, blk); /* Gemini's thought signature goes back on its call */
        sb_jw_obj_end(r->w);
    }
    if (open)
        sb_jw_arr_end(r->w);
}

static sb_err put_assistant(struct rq *r, const struct sb_json *content, size_t i)
{
    sb_err rc = check_assistant(r, content, i);
    if (rc != SB_OK)
        return rc;
    struct sb_buf text, reasoning;
    sb_buf_init(&text, 0);
    sb_buf_init(&reasoning, 0);
    bool has_text = join_blocks(content, "text", "text", false, &text);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "role");
    sb_jw_cstr(r->w, "assistant");
    sb_jw_key(r->w, "content");
    if (has_text)
        sb_jw_str(r->w, bytes(&text));
    else
        sb_jw_null(r->w);
    if (join_blocks(content, "thinking", "thinking", true, &reasoning)) {
        sb_jw_key(r->w, "reasoning_content"); /* unsigned: a non-Anthropic model's reasoning */
        sb_jw_str(r->w, bytes(&reasoning));
    }
    put_thinking_blocks(r, content);
    put_tool_calls(r, content);
    sb_jw_obj_end(r->w);
    sb_buf_free(&text);
    sb_buf_free(&reasoning);
    return SB_OK;
}

static sb_err put_message(struct rq *r, const struct sb_json *m, size_t i)
{
    char field[64];
    const struct sb_json *role = jget(m, "role"), *content = jget(m, "content");
    bool user = jstr(role) && sb_slice_eq_cstr(role->str, "user");
    bool assistant = jstr(role) && sb_slice_eq_cstr(role->str, "assistant");
    snprintf(field, sizeof(field), "messages[%zu].role", i);
    if (!user && !assistant)
        return bad(r, field, "must be \"user\" or \"assistant\"");
    snprintf(field, sizeof(field), "messages[%zu].content", i);
    if (jstr(content)) {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "role");
        sb_jw_str(r->w, role->str);
        sb_jw_key(r->w, "content");
        sb_jw_str(r->w, content->str);
        sb_jw_obj_end(r->w);
        return SB_OK;
    }
    if (!jarr(content))
        return bad(r, field, "must be a string or an array of content blocks");
    return user ? put_user(r, content, i) : put_assistant(r, content, i);
}

/* ---- top-level members, one handler each ---- */

static sb_err m_model(struct rq *r, const struct sb_json *v)
{
    if (!jstr(v))
        return bad(r, "model", "is required and must be a string");
    sb_jw_key(r->w, "model");
    sb_jw_str(r->w, v->str);
    return SB_OK;
}

static sb_err m_messages(struct rq *r, const struct sb_json *v)
{
    if (!jarr(v) || v->count == 0)
        return bad(r, "messages", "is required and must be a non-empty array");
    sb_jw_key(r->w, "messages");
    sb_jw_arr_begin(r->w);
    sb_err rc = put_system(r, jget(r->req, "system"));
    size_t i = 0;
    for (const struct sb_json *m = v->child; m && rc == SB_OK; m = m->next, i++)
        rc = put_message(r, m, i);
    sb_jw_arr_end(r->w);
    return rc;
}

static sb_err m_max_tokens(struct rq *r, const struct sb_json *v)
{
    int64_t n;
    if (!sb_json_int64(v, &n) || n < 1)
        return bad(r, "max_tokens", "is required and must be a positive integer");
    sb_jw_key(r->w, "max_tokens");
    sb_jw_int(r->w, n);
    return SB_OK;
}

static sb_err m_number(struct rq *r, const struct sb_json *v, const char *name)
{
    double d;
    if (!sb_json_double(v, &d))
        return bad(r, name, "must be a number");
    sb_jw_key(r->w, name);
    sb_jw_raw(r->w, v->raw);
    return SB_OK;
}

static sb_err m_temperature(struct rq *r, const struct sb_json *v)
{
    return m_number(r, v, "temperature");
}

static sb_err m_top_p(struct rq *r, const struct sb_json *v)
{
    return m_number(r, v, "top_p");
}

/* top_k has no OpenAI name; it goes as "top_k", which vLLM-style servers and our anthropic
 * adapter read and the others refuse by name. */
static sb_err m_top_k(struct rq *r, const struct sb_json *v)
{
    return m_number(r, v, "top_k");
}

static sb_err m_stop_sequences(struct rq *r, const struct sb_json *v)
{
    if (!jarr(v))
        return bad(r, "stop_sequences", "must be an array of strings");
    for (const struct sb_json *s = v->child; s; s = s->next)
        if (!jstr(s))
            return bad(r, "stop_sequences", "must be an array of strings");
    if (v->count == 0)
        return SB_OK;
    sb_jw_key(r->w, "stop");
    sb_jw_raw(r->w, v->raw);
    return SB_OK;
}

static sb_err m_stream(struct rq *r, const struct sb_json *v)
{
    if (v->type != SB_JSON_TRUE && v->type != SB_JSON_FALSE)
        return bad(r, "stream", "must be a boolean");
    sb_jw_key(r->w, "stream");
    sb_jw_bool(r->w, v->type == SB_JSON_TRUE);
    if (v->type == SB_JSON_TRUE) {
        sb_jw_key(r->w, "stream_options"); /* usage for the final message_delta */
        sb_jw_raw(r->w, SB_SLICE("{\"include_usage\":true}"));
    }
    return SB_OK;
}

static sb_err put_tool(struct rq *r, const struct sb_json *t, size_t i)
{
    char field[48];
    struct sb_slice type = block_type(t);
    const struct sb_json *name = jget(t, "name"), *desc = jget(t, "description");
    const struct sb_json *schema = jget(t, "input_schema");
    snprintf(field, sizeof(field), "tools[%zu]", i);
    if (type.len && !sb_slice_eq_cstr(type, "custom"))
        return bad(r, field, "is an Anthropic server tool; only custom tools can be translated");
    if (!jstr(name) || !schema || schema->type != SB_JSON_OBJECT)
        return bad(r, field, "needs a name and an input_schema object");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "type");
    sb_jw_cstr(r->w, "function");
    sb_jw_key(r->w, "function");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "name");
    sb_jw_str(r->w, name->str);
    if (jstr(desc)) {
        sb_jw_key(r->w, "description");
        sb_jw_str(r->w, desc->str);
    }
    sb_jw_key(r->w, "parameters");
    sb_jw_raw(r->w, schema->raw);
    sb_jw_obj_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static sb_err m_tools(struct rq *r, const struct sb_json *v)
{
    if (!jarr(v))
        return bad(r, "tools", "must be an array");
    if (v->count == 0)
        return SB_OK;
    sb_err rc = SB_OK;
    size_t i = 0;
    sb_jw_key(r->w, "tools");
    sb_jw_arr_begin(r->w);
    for (const struct sb_json *t = v->child; t && rc == SB_OK; t = t->next, i++)
        rc = put_tool(r, t, i);
    sb_jw_arr_end(r->w);
    return rc;
}

static sb_err m_tool_choice(struct rq *r, const struct sb_json *v)
{
    static const struct {
        const char *anthropic, *openai;
    } simple[] = {{"auto", "auto"}, {"any", "required"}, {"none", "none"}};
    struct sb_slice type = block_type(v);
    const struct sb_json *name = jget(v, "name");
    sb_jw_key(r->w, "tool_choice");
    if (sb_slice_eq_cstr(type, "tool") && jstr(name)) {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "type");
        sb_jw_cstr(r->w, "function");
        sb_jw_key(r->w, "function");
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "name");
        sb_jw_str(r->w, name->str);
        sb_jw_obj_end(r->w);
        sb_jw_obj_end(r->w);
    } else {
        size_t k = 0, n = sizeof(simple) / sizeof(simple[0]);
        while (k < n && !sb_slice_eq_cstr(type, simple[k].anthropic))
            k++;
        if (k == n)
            return bad(r, "tool_choice", "type must be auto, any, none, or tool with a name");
        sb_jw_cstr(r->w, simple[k].openai);
    }
    if (sb_json_bool(jget(v, "disable_parallel_tool_use"))) {
        sb_jw_key(r->w, "parallel_tool_calls");
        sb_jw_bool(r->w, false);
    }
    return SB_OK;
}

/* thinking.budget_tokens -> reasoning_effort, the inverse of DESIGN.md §6's 1024/4096/16384. */
static sb_err m_thinking(struct rq *r, const struct sb_json *v)
{
    struct sb_slice type = block_type(v);
    int64_t budget;
    if (sb_slice_eq_cstr(type, "disabled"))
        return SB_OK;
    if (!sb_slice_eq_cstr(type, "enabled") || !sb_json_int64(jget(v, "budget_tokens"), &budget) ||
        budget < 1)
        return bad(r, "thinking",
                   "must be {\"type\":\"enabled\",\"budget_tokens\":N} or {\"type\":\"disabled\"}");
    sb_jw_key(r->w, "reasoning_effort");
    sb_jw_cstr(r->w, budget >= 16384 ? "high" : budget >= 4096 ? "medium" : "low");
    return SB_OK;
}

static sb_err m_metadata(struct rq *r, const struct sb_json *v)
{
    if (!v || v->type != SB_JSON_OBJECT)
        return bad(r, "metadata", "must be an object");
    for (const struct sb_json *m = v->child; m; m = m->next) {
        if (!sb_slice_eq_cstr(m->key, "user_id"))
            return bad(r, "metadata", "may only hold user_id");
        if (jstr(m)) {
            sb_jw_key(r->w, "user");
            sb_jw_str(r->w, m->str);
        } else if (m->type != SB_JSON_NULL) {
            return bad(r, "metadata", "user_id must be a string");
        }
    }
    return SB_OK;
}

typedef sb_err (*member_fn)(struct rq *r, const struct sb_json *v);

/* Output order is this table's; "system" is written by m_messages. */
static const struct {
    const char *name;
    member_fn fn;
    bool required;
} members[] = {
    {"model", m_model, true},
    {"messages", m_messages, true},
    {"system", NULL, false},
    {"max_tokens", m_max_tokens, true},
    {"stop_sequences", m_stop_sequences, false},
    {"temperature", m_temperature, false},
    {"top_p", m_top_p, false},
    {"top_k", m_top_k, false},
    {"stream", m_stream, false},
    {"tools", m_tools, false},
    {"tool_choice", m_tool_choice, false},
    {"thinking", m_thinking, false},
    {"metadata", m_metadata, false},
};
#define NMEMBERS (sizeof(members) / sizeof(members[0]))

static sb_err check_members(struct rq *r)
{
    for (const struct sb_json *m = r->req->child; m; m = m->next) {
        size_t k = 0;
        while (k < NMEMBERS && !sb_slice_eq_cstr(m->key, members[k].name))
            k++;
        if (k == NMEMBERS)
            return sb_fail_field(r->err, SB_E_BAD_REQUEST, "",
                                 "/v1/messages: unsupported field "
                                 "'%.*s'",
                                 (int)(m->key.len > 40 ? 40 : m->key.len), m->key.p);
    }
    return SB_OK;
}

sb_err sb_messages_front_request(struct sb_arena *a, const struct sb_json *req,
                                 struct sb_slice *out, struct sb_error *err)
{
    struct sb_buf b;
    struct sb_jw w;
    struct rq r = {&w, err, req};
    if (!req || req->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "/v1/messages: body must be a JSON object");
    sb_err rc = check_members(&r);
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    for (size_t k = 0; k < NMEMBERS && rc == SB_OK; k++) {
        const struct sb_json *v = sb_json_get(req, members[k].name);
        if (!members[k].fn || (!v && !members[k].required) ||
            (v && v->type == SB_JSON_NULL && !members[k].required))
            continue;
        rc = members[k].fn(&r, v);
    }
    sb_jw_obj_end(&w);
    if (rc == SB_OK && w.err != SB_OK)
        rc = sb_fail(err, SB_E_INTERNAL, "/v1/messages: translated body could not be written");
    if (rc == SB_OK)
        *out = copy_out(a, &b);
    else
        sb_buf_free(&b);
    return rc;
}

/* ==================================================================
 * (b) Whole responses: chat.completion -> Message
 * ================================================================== */

static const struct {
    const char *openai, *anthropic;
} stop_reasons[] = {
    {"stop", "end_turn"},          {"length", "max_tokens"},      {"tool_calls", "tool_use"},
    {"function_call", "tool_use"}, {"content_filter", "refusal"},
};

/* Anthropic's stop_reason for an OpenAI finish_reason (end_turn when unknown or absent). */
const char *sb__messages_front_stop_reason(struct sb_slice finish)
{
    for (size_t i = 0; i < sizeof(stop_reasons) / sizeof(stop_reasons[0]); i++)
        if (sb_slice_eq_cstr(finish, stop_reasons[i].openai))
            return stop_reasons[i].anthropic;
    return "end_turn";
}

/* Writes Anthropic usage members from an OpenAI usage object (input excludes cached). */
static void put_usage(struct sb_jw *w, const struct sb_json *usage)
{
    int64_t prompt = 0, completion = 0, cached = 0, created = 0;
    const struct sb_json *details = jget(usage, "prompt_tokens_details");
    sb_json_int64(jget(usage, "prompt_tokens"), &prompt);
    sb_json_int64(jget(usage, "completion_tokens"), &completion);
    bool has_cached = sb_json_int64(jget(details, "cached_tokens"), &cached);
    bool has_created = sb_json_int64(jget(details, "cache_creation_tokens"), &created);
    sb_jw_key(w, "input_tokens");
    sb_jw_int(w, prompt > cached + created ? prompt - cached - created : 0);
    sb_jw_key(w, "output_tokens");
    sb_jw_int(w, completion);
    sb_jw_key(w, "cache_creation_input_tokens");
    if (has_created)
        sb_jw_int(w, created);
    else
        sb_jw_null(w);
    sb_jw_key(w, "cache_read_input_tokens");
    if (has_cached)
        sb_jw_int(w, cached);
    else
        sb_jw_null(w);
}

static void put_thinking_block(struct sb_jw *w, struct sb_slice text, struct sb_slice sig)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "thinking");
    sb_jw_key(w, "thinking");
    sb_jw_str(w, text);
    sb_jw_key(w, "signature");
    sb_jw_str(w, sig);
    sb_jw_obj_end(w);
}

/* The reasoning text of a message or delta: DeepSeek's reasoning_content, or "reasoning". */
const struct sb_json *sb__messages_front_reasoning(const struct sb_json *msg)
{
    const struct sb_json *r = jget(msg, "reasoning_content");
    if (!jstr(r) || !r->str.len)
        r = jget(msg, "reasoning");
    return jstr(r) && r->str.len ? r : NULL;
}

static void put_thinking(struct sb_jw *w, const struct sb_json *msg)
{
    const struct sb_json *tb = jget(msg, "thinking_blocks");
    bool any = false;
    for (const struct sb_json *b = jarr(tb) ? tb->child : NULL; b; b = b->next) {
        struct sb_slice t = block_type(b);
        const struct sb_json *th = jget(b, "thinking"), *sig = jget(b, "signature");
        const struct sb_json *data = jget(b, "data");
        if (sb_slice_eq_cstr(t, "thinking") && jstr(th)) {
            put_thinking_block(w, th->str, jstr(sig) ? sig->str : SB_SLICE(""));
            any = true;
        } else if (sb_slice_eq_cstr(t, "redacted_thinking") && jstr(data)) {
            sb_jw_obj_begin(w);
            sb_jw_key(w, "type");
            sb_jw_cstr(w, "redacted_thinking");
            sb_jw_key(w, "data");
            sb_jw_str(w, data->str);
            sb_jw_obj_end(w);
            any = true;
        }
    }
    const struct sb_json *rc = sb__messages_front_reasoning(msg);
    if (!any && rc)
        put_thinking_block(w, rc->str, SB_SLICE(""));
}

/* content as one text: a string, or the text parts of an array; else the refusal. */
static void message_text(const struct sb_json *msg, struct sb_buf *b)
{
    const struct sb_json *c = jget(msg, "content"), *refusal = jget(msg, "refusal");
    if (jstr(c))
        sb_buf_append_slice(b, c->str);
    for (const struct sb_json *p = jarr(c) ? c->child : NULL; p; p = p->next)
        if (jstr(jget(p, "text")))
            sb_buf_append_slice(b, jget(p, "text")->str);
    if (!b->len && jstr(refusal))
        sb_buf_append_slice(b, refusal->str);
}

static sb_err put_tool_use(struct sb_arena *a, struct sb_jw *w, const struct sb_json *call,
                           struct sb_error *err)
{
    const struct sb_json *fn = jget(call, "function"), *id = jget(call, "id");
    const struct sb_json *name = jget(fn, "name"), *args = jget(fn, "arguments");
    struct sb_json *input = NULL;
    struct sb_error jerr;
    if (!jstr(name))
        return sb_fail(err, SB_E_UPSTREAM, "upstream tool call has no function name");
    struct sb_slice text = jstr(args) ? args->str : SB_SLICE("");
    if (text.len && (sb_json_parse(a, text.p, text.len, &body_limits, &input, &jerr) != SB_OK ||
                     input->type != SB_JSON_OBJECT))
        return sb_fail(err, SB_E_UPSTREAM,
                       "upstream tool call '%.*s' has arguments that are not a JSON object",
                       (int)(name->str.len > 64 ? 64 : name->str.len), name->str.p);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "tool_use");
    sb_jw_key(w, "id");
    sb_jw_str(w, jstr(id) ? id->str : SB_SLICE(""));
    sb_jw_key(w, "name");
    sb_jw_str(w, name->str);
    sb_jw_key(w, "input");
    sb_jw_raw(w, input ? input->raw : SB_SLICE("{}"));
    sb__mf_put_extra(w, call);
    sb_jw_obj_end(w);
    return SB_OK;
}

/*
 * A provider's opaque per-call state (Gemini's thought signature, DESIGN.md
 * §6: extra_content.google.thought_signature) rides on the Anthropic
 * tool_use block as the same `extra_content` member: clients send assistant
 * blocks back as they came, so the next turn carries it to the provider.
 */
void sb__mf_put_extra(struct sb_jw *w, const struct sb_json *from)
{
    const struct sb_json *x = jget(from, "extra_content");
    if (!x || x->type != SB_JSON_OBJECT)
        return;
    sb_jw_key(w, "extra_content");
    sb_jw_raw(w, x->raw);
}

static sb_err put_content(struct sb_arena *a, struct sb_jw *w, const struct sb_json *msg,
                          struct sb_error *err)
{
    struct sb_buf text;
    sb_err rc = SB_OK;
    sb_buf_init(&text, 0);
    sb_jw_key(w, "content");
    sb_jw_arr_begin(w);
    put_thinking(w, msg);
    message_text(msg, &text);
    if (text.len) {
        sb_jw_obj_begin(w);
        sb_jw_key(w, "type");
        sb_jw_cstr(w, "text");
        sb_jw_key(w, "text");
        sb_jw_str(w, sb_buf_slice(&text));
        sb_jw_obj_end(w);
    }
    const struct sb_json *calls = jget(msg, "tool_calls");
    for (const struct sb_json *c = jarr(calls) ? calls->child : NULL; c && rc == SB_OK; c = c->next)
        rc = put_tool_use(a, w, c, err);
    sb_jw_arr_end(w);
    sb_buf_free(&text);
    return rc;
}

/* "msg_" + the upstream id without OpenAI's "chatcmpl-" prefix. */
void sb__messages_front_id(struct sb_jw *w, struct sb_slice id)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    if (sb_slice_starts_with(id, SB_SLICE("chatcmpl-"))) {
        id.p += 9;
        id.len -= 9;
    }
    sb_buf_append_cstr(&b, "msg_");
    sb_buf_append_slice(&b, id.len ? id : SB_SLICE("switchboard"));
    sb_jw_key(w, "id");
    sb_jw_str(w, sb_buf_slice(&b));
    sb_buf_free(&b);
}

sb_err sb_messages_front_response(struct sb_arena *a, struct sb_slice body, const char *model,
                                  struct sb_slice *out, struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(a, body.p, body.len, &body_limits, &root, &jerr) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream answer is not JSON");
    const struct sb_json *choice = sb_json_at(jget(root, "choices"), 0);
    const struct sb_json *msg = jget(choice, "message"), *id = jget(root, "id");
    const struct sb_json *fr = jget(choice, "finish_reason"), *m = jget(root, "model");
    if (!msg || msg->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_UPSTREAM, "upstream answer has no choices[0].message");
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb__messages_front_id(&w, jstr(id) ? id->str : SB_SLICE(""));
    sb_jw_key(&w, "type");
    sb_jw_cstr(&w, "message");
    sb_jw_key(&w, "role");
    sb_jw_cstr(&w, "assistant");
    sb_jw_key(&w, "model");
    sb_jw_str(&w, model ? sb_slice_cstr(model) : jstr(m) ? m->str : SB_SLICE(""));
    sb_err rc = put_content(a, &w, msg, err);
    sb_jw_key(&w, "stop_reason");
    sb_jw_cstr(&w, sb__messages_front_stop_reason(jstr(fr) ? fr->str : SB_SLICE_NULL));
    sb_jw_key(&w, "stop_sequence");
    sb_jw_null(&w);
    sb_jw_key(&w, "usage");
    sb_jw_obj_begin(&w);
    put_usage(&w, jget(root, "usage"));
    sb_jw_obj_end(&w);
    sb_jw_obj_end(&w);
    if (rc == SB_OK)
        *out = copy_out(a, &b);
    else
        sb_buf_free(&b);
    return rc;
}

/* ==================================================================
 * (d) Errors
 * ================================================================== */

static const struct {
    int status;
    const char *type;
} error_types[] = {
    {400, "invalid_request_error"}, {401, "authentication_error"}, {402, "billing_error"},
    {403, "permission_error"},      {404, "not_found_error"},      {413, "request_too_large"},
    {429, "rate_limit_error"},      {503, "overloaded_error"},     {529, "overloaded_error"},
    {504, "timeout_error"},
};

const char *sb_messages_front_error_type(int http_status)
{
    for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]); i++)
        if (error_types[i].status == http_status)
            return error_types[i].type;
    return http_status >= 400 && http_status < 500 ? "invalid_request_error" : "api_error";
}

static void error_json(struct sb_buf *out, int http_status, struct sb_slice message,
                       const char *request_id, bool with_id)
{
    struct sb_jw w;
    sb_jw_init(&w, out);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "type");
    sb_jw_cstr(&w, "error");
    sb_jw_key(&w, "error");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "type");
    sb_jw_cstr(&w, sb_messages_front_error_type(http_status));
    sb_jw_key(&w, "message");
    sb_jw_str(&w, message);
    sb_jw_obj_end(&w);
    if (with_id) {
        sb_jw_key(&w, "request_id");
        sb_jw_cstr(&w, request_id);
    }
    sb_jw_obj_end(&w);
}

void sb_messages_front_error(struct sb_buf *out, int http_status, struct sb_slice message,
                             const char *request_id)
{
    error_json(out, http_status, message, request_id, true);
}

void sb_messages_front_error_from_openai(struct sb_buf *out, int http_status,
                                         struct sb_slice openai_body, const char *request_id)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *root = NULL;
    struct sb_error jerr;
    struct sb_slice msg = openai_body;
    if (sb_json_parse(a, openai_body.p, openai_body.len, &body_limits, &root, &jerr) == SB_OK) {
        const struct sb_json *e = jget(root, "error"), *m = jget(e, "message");
        msg = jstr(m) ? m->str : jstr(e) ? e->str : openai_body;
    }
    error_json(out, http_status, msg, request_id, true);
    sb_arena_free(a);
}

void sb_messages_front_error_event(struct sb_buf *out, int http_status, struct sb_slice message)
{
    sb_buf_append_cstr(out, "event: error\ndata: ");
    error_json(out, http_status, message, NULL, false);
    sb_buf_append_cstr(out, "\n\n");
}
