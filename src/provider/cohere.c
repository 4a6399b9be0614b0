/* SPDX-License-Identifier: MIT */
/*
 * cohere.c - the `cohere` adapter: Cohere Chat v2 (POST /v2/chat, SSE events) and
 * Embed v2 (POST /v2/embed), translated from and to OpenAI's formats.
 *
 * Requests: OpenAI messages become Cohere v2 messages (system, user with
 * text and image_url parts, assistant with tool_calls, tool results with
 * tool_call_id); tools keep OpenAI's function shape, which Cohere v2 shares;
 * top_p is Cohere's `p`, stop its `stop_sequences`, a json_schema
 * response_format becomes {"type":"json_object","json_schema":...}, a named
 * tool_choice sends only that tool with tool_choice REQUIRED, and
 * reasoning_effort turns `thinking` on with DESIGN.md §6's budgets.
 * Anything else the client sets is refused with a 400 naming it.
 *
 * Reasoning: Cohere's `thinking` content and its `tool_plan` (documented as
 * "a chain-of-thought style reflection and plan that the model generates
 * when working with tools") both arrive as OpenAI `reasoning_content`,
 * before the content, as DESIGN.md §6 says. On the way back an assistant
 * message's reasoning_content becomes `tool_plan` when the message has
 * tool_calls (the form Cohere's tool-use docs send back) and a `thinking`
 * content item otherwise.
 *
 * Usage: prompt/completion tokens are Cohere's billed_units (what the
 * account pays), falling back to usage.tokens when billed units are absent;
 * usage.cached_tokens becomes prompt_tokens_details.cached_tokens.
 */
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/oai_emit.h"
#include "provider/provider.h"
#include "provider/sse.h"

#define TYPE "cohere"
#define STREAM_MAX_LINE (1024u * 1024u)
#define STREAM_MAX_EVENT (4u * 1024u * 1024u)
#define SCRATCH_BLOCK (16u * 1024u)

/* ==================================================================
 * Request: messages
 * ================================================================== */

struct req {
    const struct sb_call *c;
    struct sb_jw w;
    struct sb_error *err;
    struct sb_slice only_tool; /* a named tool_choice: send only this tool */
};

static sb_err bad(struct req *r, size_t i, const char *what)
{
    return sb_fail(r->err, SB_E_BAD_REQUEST, "messages[%zu]: %s", i, what);
}

static sb_err write_image(struct req *r, const struct sb_json *part, size_t i)
{
    const struct sb_json *iu = sb_oai_get(part, "image_url");
    const struct sb_json *url = sb_oai_is_str(iu) ? iu : sb_oai_get(iu, "url");
    const struct sb_json *detail = sb_oai_get(iu, "detail");
    if (!sb_oai_is_str(url))
        return bad(r, i, "image_url part needs image_url.url");
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "type");
    sb_jw_cstr(&r->w, "image_url");
    sb_jw_key(&r->w, "image_url");
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "url");
    sb_jw_str(&r->w, url->str); /* Cohere takes a web URL or a base64 data URI */
    if (sb_oai_is_str(detail)) {
        sb_jw_key(&r->w, "detail");
        sb_jw_str(&r->w, detail->str);
    }
    sb_jw_obj_end(&r->w);
    sb_jw_obj_end(&r->w);
    return SB_OK;
}

static void write_text_item(struct req *r, const char *type, struct sb_slice text)
{
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "type");
    sb_jw_cstr(&r->w, type);
    sb_jw_key(&r->w, type);
    sb_jw_str(&r->w, text);
    sb_jw_obj_end(&r->w);
}

/* The items of an OpenAI content array; images only where the role takes them. */
static sb_err write_part_items(struct req *r, const struct sb_json *content, bool images, size_t i)
{
    for (const struct sb_json *p = content->child; p; p = p->next) {
        const struct sb_json *type = sb_oai_get(p, "type"), *text = sb_oai_get(p, "text");
        if (sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "text") && sb_oai_is_str(text))
            write_text_item(r, "text", text->str);
        else if (images && sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "image_url")) {
            if (write_image(r, p, i) != SB_OK)
                return r->err->code;
        } else
            return bad(r, i,
                       images ? "content parts must be text or image_url for cohere"
                              : "content parts must be text for this role on cohere");
    }
    return SB_OK;
}

/* "content": a string stays a string; an array becomes Cohere content items. */
static sb_err write_content(struct req *r, const struct sb_json *content, bool images, size_t i)
{
    sb_jw_key(&r->w, "content");
    if (sb_oai_is_str(content)) {
        sb_jw_str(&r->w, content->str);
        return SB_OK;
    }
    if (!content || content->type != SB_JSON_ARRAY)
        return bad(r, i, "content must be a string or an array of parts");
    sb_jw_arr_begin(&r->w);
    sb_err rc = write_part_items(r, content, images, i);
    sb_jw_arr_end(&r->w);
    return rc;
}

static sb_err msg_system(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "system");
    return write_content(r, sb_oai_get(m, "content"), false, i);
}

static sb_err msg_user(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "user");
    return write_content(r, sb_oai_get(m, "content"), true, i);
}

static sb_err write_tool_calls(struct req *r, const struct sb_json *calls, size_t i)
{
    sb_jw_key(&r->w, "tool_calls");
    sb_jw_arr_begin(&r->w);
    for (const struct sb_json *tc = calls->child; tc; tc = tc->next) {
        const struct sb_json *id = sb_oai_get(tc, "id"), *fn = sb_oai_get(tc, "function");
        const struct sb_json *name = sb_oai_get(fn, "name"), *args = sb_oai_get(fn, "arguments");
        if (!sb_oai_is_str(id) || !sb_oai_is_str(name))
            return bad(r, i, "tool_calls need an id and function.name");
        sb_oai_tool_call_write(&r->w, id->str, name->str,
                               sb_oai_is_str(args) ? args->str : SB_SLICE("{}"));
    }
    sb_jw_arr_end(&r->w);
    return SB_OK;
}

/* Assistant content with its reasoning as a leading `thinking` item. */
static sb_err write_thinking_content(struct req *r, const struct sb_json *content,
                                     struct sb_slice reasoning, size_t i)
{
    sb_jw_key(&r->w, "content");
    sb_jw_arr_begin(&r->w);
    write_text_item(r, "thinking", reasoning);
    sb_err rc = SB_OK;
    if (sb_oai_is_str(content) && content->str.len)
        write_text_item(r, "text", content->str);
    else if (content && content->type == SB_JSON_ARRAY)
        rc = write_part_items(r, content, false, i);
    else if (content && content->type != SB_JSON_NULL && !sb_oai_is_str(content))
        rc = bad(r, i, "content must be a string or an array of parts");
    sb_jw_arr_end(&r->w);
    return rc;
}

static sb_err msg_assistant(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    const struct sb_json *content = sb_oai_get(m, "content"), *calls = sb_oai_get(m, "tool_calls");
    const struct sb_json *rc_ = sb_oai_get(m, "reasoning_content");
    bool has_calls = calls && calls->type == SB_JSON_ARRAY && calls->count > 0;
    bool has_reasoning = sb_oai_is_str(rc_) && rc_->str.len > 0;
    bool has_content = content && content->type != SB_JSON_NULL;
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "assistant");
    if (has_calls) {
        if (has_reasoning) {
            sb_jw_key(&r->w, "tool_plan");
            sb_jw_str(&r->w, rc_->str);
        }
        if (write_tool_calls(r, calls, i) != SB_OK)
            return r->err->code;
        if (has_content && !(sb_oai_is_str(content) && content->str.len == 0))
            return write_content(r, content, false, i);
        return SB_OK;
    }
    if (has_reasoning)
        return write_thinking_content(r, content, rc_->str, i);
    if (!has_content) {
        sb_jw_key(&r->w, "content");
        sb_jw_cstr(&r->w, ""); /* Cohere wants content or tool_calls on an assistant turn */
        return SB_OK;
    }
    return write_content(r, content, false, i);
}

static sb_err msg_tool(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    const struct sb_json *id = sb_oai_get(m, "tool_call_id");
    if (!sb_oai_is_str(id))
        return bad(r, i, "a tool message needs tool_call_id");
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "tool");
    sb_jw_key(&r->w, "tool_call_id");
    sb_jw_str(&r->w, id->str);
    return write_content(r, sb_oai_get(m, "content"), false, i);
}

static const struct sb_oai_role roles[] = {
    {"system", msg_system},       {"developer", msg_system}, {"user", msg_user},
    {"assistant", msg_assistant}, {"tool", msg_tool},        {NULL, NULL},
};

static sb_err write_messages(struct req *r)
{
    return sb_oai_write_messages(&r->w, sb_oai_get(r->c->json, "messages"), roles, r, TYPE, r->err);
}

/* ==================================================================
 * Request: tools and parameters
 * ================================================================== */

static sb_err write_tool_choice(struct req *r)
{
    const struct sb_json *tc = sb_oai_get(r->c->json, "tool_choice");
    const struct sb_json *name = sb_oai_get(sb_oai_get(tc, "function"), "name");
    if (!tc || tc->type == SB_JSON_NULL || (sb_oai_is_str(tc) && sb_slice_eq_cstr(tc->str, "auto")))
        return SB_OK;
    sb_jw_key(&r->w, "tool_choice");
    if (sb_oai_is_str(tc) && sb_slice_eq_cstr(tc->str, "none"))
        sb_jw_cstr(&r->w, "NONE");
    else if (sb_oai_is_str(tc) && sb_slice_eq_cstr(tc->str, "required"))
        sb_jw_cstr(&r->w, "REQUIRED");
    else if (sb_oai_is_str(name) && name->str.len) {
        r->only_tool = name->str; /* Cohere has no named choice: that tool alone, required */
        sb_jw_cstr(&r->w, "REQUIRED");
    } else
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'tool_choice' must be auto, none, required or a function for cohere");
    return SB_OK;
}

static sb_err write_one_tool(struct req *r, const struct sb_json *t, bool *strict)
{
    const struct sb_json *type = sb_oai_get(t, "type"), *fn = sb_oai_get(t, "function");
    const struct sb_json *name = sb_oai_get(fn, "name"), *desc = sb_oai_get(fn, "description");
    const struct sb_json *params = sb_oai_get(fn, "parameters");
    if (!sb_oai_is_str(type) || !sb_slice_eq_cstr(type->str, "function") || !sb_oai_is_str(name))
        return sb_fail(
            r->err, SB_E_BAD_REQUEST,
            "'tools' entries must be {\"type\":\"function\",\"function\":{\"name\"...}}");
    if (r->only_tool.p && !sb_slice_eq(r->only_tool, name->str))
        return SB_OK;
    *strict = *strict || sb_json_bool(sb_oai_get(fn, "strict"));
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "type");
    sb_jw_cstr(&r->w, "function");
    sb_jw_key(&r->w, "function");
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "name");
    sb_jw_str(&r->w, name->str);
    if (sb_oai_is_str(desc)) {
        sb_jw_key(&r->w, "description");
        sb_jw_str(&r->w, desc->str);
    }
    sb_jw_key(&r->w, "parameters"); /* required by Cohere */
    if (params && params->type == SB_JSON_OBJECT)
        sb_jw_raw(&r->w, params->raw);
    else
        sb_jw_raw(&r->w, SB_SLICE("{\"type\":\"object\",\"properties\":{}}"));
    sb_jw_obj_end(&r->w);
    sb_jw_obj_end(&r->w);
    return SB_OK;
}

static sb_err write_tools(struct req *r)
{
    const struct sb_json *tools = sb_oai_get(r->c->json, "tools");
    const struct sb_json *ptc = sb_oai_get(r->c->json, "parallel_tool_calls");
    bool strict = false;
    if (ptc && ptc->type == SB_JSON_FALSE)
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'parallel_tool_calls': false is not supported by cohere");
    if (!tools || tools->type == SB_JSON_NULL)
        return SB_OK;
    if (tools->type != SB_JSON_ARRAY)
        return sb_fail(r->err, SB_E_BAD_REQUEST, "'tools' must be an array");
    if (!tools->count)
        return SB_OK;
    sb_jw_key(&r->w, "tools");
    sb_jw_arr_begin(&r->w);
    for (const struct sb_json *t = tools->child; t; t = t->next)
        if (write_one_tool(r, t, &strict) != SB_OK)
            return r->err->code;
    sb_jw_arr_end(&r->w);
    if (strict) {
        sb_jw_key(&r->w, "strict_tools");
        sb_jw_bool(&r->w, true);
    }
    return SB_OK;
}

static sb_err write_response_format(struct req *r)
{
    const struct sb_json *rf = sb_oai_get(r->c->json, "response_format");
    const struct sb_json *type = sb_oai_get(rf, "type");
    const struct sb_json *schema = sb_oai_get(sb_oai_get(rf, "json_schema"), "schema");
    if (!rf || rf->type == SB_JSON_NULL ||
        (sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "text")))
        return SB_OK;
    bool object = sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "json_object");
    bool with_schema = sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "json_schema");
    if (!object && !(with_schema && schema && schema->type == SB_JSON_OBJECT))
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'response_format' must be text, json_object, or json_schema with "
                       "json_schema.schema");
    sb_jw_key(&r->w, "response_format");
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "type");
    sb_jw_cstr(&r->w, "json_object");
    if (with_schema) {
        sb_jw_key(&r->w, "json_schema");
        sb_jw_raw(&r->w, schema->raw);
    }
    sb_jw_obj_end(&r->w);
    return SB_OK;
}

/* reasoning_effort → thinking, with DESIGN.md §6's budgets. */
static sb_err write_thinking(struct req *r)
{
    static const struct {
        const char *effort;
        long budget; /* 0 = disabled */
    } efforts[] = {{"none", 0}, {"minimal", 0}, {"low", 1024}, {"medium", 4096}, {"high", 16384}};
    const struct sb_json *e = sb_oai_get(r->c->json, "reasoning_effort");
    if (!e || e->type == SB_JSON_NULL)
        return SB_OK;
    for (size_t i = 0; sb_oai_is_str(e) && i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (!sb_slice_eq_cstr(e->str, efforts[i].effort))
            continue;
        sb_jw_key(&r->w, "thinking");
        sb_jw_obj_begin(&r->w);
        sb_jw_key(&r->w, "type");
        sb_jw_cstr(&r->w, efforts[i].budget ? "enabled" : "disabled");
        if (efforts[i].budget) {
            sb_jw_key(&r->w, "token_budget");
            sb_jw_int(&r->w, efforts[i].budget);
        }
        sb_jw_obj_end(&r->w);
        return SB_OK;
    }
    return sb_fail(r->err, SB_E_BAD_REQUEST,
                   "'reasoning_effort' must be none, minimal, low, medium or high");
}

static sb_err write_sampling(struct req *r)
{
    const struct sb_json *j = r->c->json, *max = NULL, *stop = sb_oai_get(j, "stop");
    const struct sb_json *lp = sb_oai_get(j, "logprobs");
    if (lp && lp->type != SB_JSON_NULL && lp->type != SB_JSON_FALSE)
        return sb_fail(r->err, SB_E_BAD_REQUEST, "'logprobs' is not supported by cohere");
    if (sb_oai_max_tokens(r->c, TYPE, &max, r->err) != SB_OK)
        return r->err->code;
    if (max) {
        sb_jw_key(&r->w, "max_tokens");
        sb_jw_raw(&r->w, max->raw);
    }
    if (stop && stop->type != SB_JSON_NULL) {
        sb_jw_key(&r->w, "stop_sequences");
        if (sb_oai_write_stop(&r->w, stop, TYPE, r->err) != SB_OK)
            return r->err->code;
    }
    static const struct {
        const char *from, *to;
    } nums[] = {{"temperature", "temperature"},
                {"top_p", "p"},
                {"seed", "seed"},
                {"frequency_penalty", "frequency_penalty"},
                {"presence_penalty", "presence_penalty"}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (sb_oai_copy_number(&r->w, nums[i].to, sb_oai_get(j, nums[i].from), TYPE, nums[i].from,
                               r->err) != SB_OK)
            return r->err->code;
    return SB_OK;
}

static sb_err chat_body(struct req *r)
{
    const struct sb_model *m = r->c->model;
    if (sb_oai_check_fields(r->c, TYPE, sb_oai_chat_fields, r->err) != SB_OK)
        return r->err->code;
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "model");
    sb_jw_cstr(&r->w, m->upstream_model ? m->upstream_model : m->id);
    sb_err rc = write_messages(r);
    if (rc == SB_OK)
        rc = write_tool_choice(r); /* before tools: a named choice filters them */
    if (rc == SB_OK)
        rc = write_tools(r);
    if (rc == SB_OK)
        rc = write_sampling(r);
    if (rc == SB_OK)
        rc = write_response_format(r);
    if (rc == SB_OK)
        rc = write_thinking(r);
    sb_jw_key(&r->w, "stream");
    sb_jw_bool(&r->w, r->c->stream);
    sb_jw_obj_end(&r->w);
    return rc;
}

static sb_err embed_body(struct req *r)
{
    const struct sb_model *m = r->c->model;
    const struct sb_json *in = NULL, *dims = sb_oai_get(r->c->json, "dimensions");
    if (sb_oai_check_fields(r->c, TYPE, sb_oai_embed_fields, r->err) != SB_OK ||
        sb_oai_embed_input(r->c, TYPE, &in, r->err) != SB_OK)
        return r->err->code;
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "model");
    sb_jw_cstr(&r->w, m->upstream_model ? m->upstream_model : m->id);
    sb_jw_key(&r->w, "texts");
    sb_jw_arr_begin(&r->w);
    if (sb_oai_is_str(in))
        sb_jw_str(&r->w, in->str);
    for (const struct sb_json *x = in->type == SB_JSON_ARRAY ? in->child : NULL; x; x = x->next)
        sb_jw_str(&r->w, x->str);
    sb_jw_arr_end(&r->w);
    sb_jw_key(&r->w, "input_type");
    sb_jw_cstr(&r->w, "search_document");
    sb_jw_key(&r->w, "embedding_types");
    sb_jw_raw(&r->w, SB_SLICE("[\"float\"]")); /* base64 is encoded here from the floats */
    sb_err rc = sb_oai_copy_number(&r->w, "output_dimension", dims, TYPE, "dimensions", r->err);
    sb_jw_obj_end(&r->w);
    return rc;
}

static sb_err cohere_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                   struct sb_error *err)
{
    struct sb_buf b;
    struct req r = {.c = c, .err = err};
    memset(out, 0, sizeof(*out));
    sb_buf_init(&b, 0);
    sb_jw_init(&r.w, &b);
    sb_err rc = c->op == SB_OP_EMBEDDINGS ? embed_body(&r) : chat_body(&r);
    if (rc != SB_OK) {
        sb_buf_free(&b);
        return rc;
    }
    return sb_oai_post_json(c, &b, c->op == SB_OP_EMBEDDINGS ? "/v2/embed" : "/v2/chat",
                            "text/event-stream", out, err);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

/* Cohere finish_reason → OpenAI; NULL: the generation failed (an error for the client). */
static const struct {
    const char *cohere, *openai;
} finishes[] = {
    {"COMPLETE", "stop"},
    {"STOP_SEQUENCE", "stop"},
    {"MAX_TOKENS", "length"},
    {"TOOL_CALL", "tool_calls"},
    {"ERROR_TOXIC", "content_filter"},
    {"ERROR_LIMIT", "length"},
    {"ERROR", NULL},
    {"TIMEOUT", NULL},
    {"USER_CANCEL", NULL},
};

/* *fail is set for the failing reasons; an absent or unknown reason is "stop". */
static const char *map_finish(const struct sb_json *fr, bool *fail)
{
    *fail = false;
    for (size_t i = 0; sb_oai_is_str(fr) && i < sizeof(finishes) / sizeof(finishes[0]); i++)
        if (sb_slice_eq_cstr(fr->str, finishes[i].cohere)) {
            *fail = !finishes[i].openai;
            return finishes[i].openai;
        }
    return "stop";
}

static struct sb_oai_usage read_usage(const struct sb_json *usage)
{
    struct sb_oai_usage u = SB_OAI_USAGE_UNKNOWN;
    const struct sb_json *billed = sb_oai_get(usage, "billed_units");
    const struct sb_json *tokens = sb_oai_get(usage, "tokens");
    u.prompt = sb_oai_count(sb_oai_get(billed, "input_tokens"));
    u.completion = sb_oai_count(sb_oai_get(billed, "output_tokens"));
    if (u.prompt < 0)
        u.prompt = sb_oai_count(sb_oai_get(tokens, "input_tokens"));
    if (u.completion < 0)
        u.completion = sb_oai_count(sb_oai_get(tokens, "output_tokens"));
    u.cached = sb_oai_count(sb_oai_get(usage, "cached_tokens"));
    return u;
}

static void write_message_body(struct sb_jw *w, const struct sb_json *msg)
{
    struct sb_buf text, reasoning;
    const struct sb_json *plan = sb_oai_get(msg, "tool_plan"),
                         *calls = sb_oai_get(msg, "tool_calls");
    sb_buf_init(&text, 0);
    sb_buf_init(&reasoning, 0);
    const struct sb_json *content = sb_oai_get(msg, "content");
    for (const struct sb_json *it = content && content->type == SB_JSON_ARRAY ? content->child
                                                                              : NULL;
         it; it = it->next) {
        const struct sb_json *t = sb_oai_get(it, "text"), *th = sb_oai_get(it, "thinking");
        if (sb_oai_is_str(t))
            sb_buf_append_slice(&text, t->str);
        else if (sb_oai_is_str(th))
            sb_buf_append_slice(&reasoning, th->str);
    }
    if (sb_oai_is_str(plan))
        sb_buf_append_slice(&reasoning, plan->str);
    bool has_calls = calls && calls->type == SB_JSON_ARRAY && calls->count > 0;
    sb_jw_key(w, "content");
    if (!text.len && has_calls)
        sb_jw_null(w);
    else
        sb_jw_str(w, text.len ? sb_buf_slice(&text) : SB_SLICE(""));
    if (reasoning.len) {
        sb_jw_key(w, "reasoning_content");
        sb_jw_str(w, sb_buf_slice(&reasoning));
    }
    if (has_calls) {
        sb_jw_key(w, "tool_calls");
        sb_jw_arr_begin(w);
        for (const struct sb_json *tc = calls->child; tc; tc = tc->next) {
            const struct sb_json *id = sb_oai_get(tc, "id"), *fn = sb_oai_get(tc, "function");
            const struct sb_json *name = sb_oai_get(fn, "name"),
                                 *args = sb_oai_get(fn, "arguments");
            sb_oai_tool_call_write(w, sb_oai_is_str(id) ? id->str : SB_SLICE(""),
                                   sb_oai_is_str(name) ? name->str : SB_SLICE(""),
                                   sb_oai_is_str(args) ? args->str : SB_SLICE("{}"));
        }
        sb_jw_arr_end(w);
    }
    sb_buf_free(&text);
    sb_buf_free(&reasoning);
}

static sb_err parse_chat(const struct sb_call *c, const struct sb_json *root, struct sb_result *out,
                         struct sb_error *err)
{
    struct sb_buf b;
    struct sb_jw w;
    bool failed;
    const struct sb_json *id = sb_oai_get(root, "id"), *msg = sb_oai_get(root, "message");
    const char *finish = map_finish(sb_oai_get(root, "finish_reason"), &failed);
    if (failed || !msg || msg->type != SB_JSON_OBJECT) {
        const struct sb_json *fr = sb_oai_get(root, "finish_reason");
        struct sb_slice why = sb_oai_is_str(fr) ? fr->str : SB_SLICE("no message");
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: generation failed (%.*s)",
                       sb_oai_pname(c, TYPE), (int)(why.len > 20 ? 20 : why.len), why.p);
    }
    struct sb_oai_usage u = read_usage(sb_oai_get(root, "usage"));
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_oai_completion_begin(
        &w, sb_oai_completion_id(c->arena, sb_oai_is_str(id) ? id->str : SB_SLICE_NULL),
        c->model->upstream_model ? c->model->upstream_model : c->model->id);
    write_message_body(&w, msg);
    sb_oai_completion_end(&w, finish, &u);
    out->body = sb_oai_finish_body(c, &b);
    out->usage.prompt_tokens = u.prompt;
    out->usage.completion_tokens = u.completion;
    out->finish_reason = sb_slice_cstr(finish);
    return SB_OK;
}

static sb_err cohere_parse_response(const struct sb_call *c, struct sb_slice body,
                                    struct sb_result *out, struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    const struct sb_json *root = sb_oai_parse_object(c->arena, body);
    if (!root)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object",
                       sb_oai_pname(c, TYPE));
    if (c->op == SB_OP_CHAT)
        return parse_chat(c, root, out, err);
    const struct sb_json *meta = sb_oai_get(root, "meta");
    struct sb_oai_usage u = read_usage(meta); /* meta has billed_units and tokens too */
    out->usage.prompt_tokens = u.prompt;
    out->usage.completion_tokens = 0;
    return sb_oai_embeddings(c, TYPE, sb_oai_get(sb_oai_get(root, "embeddings"), "float"),
                             u.prompt < 0 ? 0 : u.prompt, &out->body, err);
}

/* ==================================================================
 * Streams
 * ================================================================== */

struct stream {
    struct sb_oai_stream out;
    struct sb_sse sse;
    struct sb_arena *scratch; /* one event's JSON tree, reset after each event */
    struct sb_error *err;     /* of the current feed */
    int ntools;               /* tool calls started so far (the next OpenAI index) */
    bool ended;               /* message-end arrived */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_sse_free(&st->sse);
    sb_arena_free(st->scratch);
}

static void *cohere_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    sb_oai_stream_init(&st->out, c);
    sb_sse_init(&st->sse, STREAM_MAX_LINE, STREAM_MAX_EVENT);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

static const struct sb_json *delta_message(const struct sb_json *ev)
{
    return sb_oai_get(sb_oai_get(ev, "delta"), "message");
}

static int ev_start(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *id = sb_oai_get(ev, "id");
    if (sb_oai_is_str(id))
        sb_oai_stream_set_id(&st->out, id->str);
    struct sb_oai_delta d = {.content = SB_SLICE("")};
    return sb_oai_emit_delta(&st->out, &d); /* role "assistant", content "" */
}

/* content-start and content-delta: text, or a reasoning model's thinking. */
static int ev_content(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *content = sb_oai_get(delta_message(ev), "content");
    const struct sb_json *text = sb_oai_get(content, "text"), *th = sb_oai_get(content, "thinking");
    struct sb_oai_delta d = {.content = SB_SLICE_NULL};
    if (sb_oai_is_str(text) && text->str.len)
        d.content = text->str;
    else if (sb_oai_is_str(th) && th->str.len)
        d.reasoning = th->str;
    else
        return 0;
    return sb_oai_emit_delta(&st->out, &d);
}

static int ev_plan(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *plan = sb_oai_get(delta_message(ev), "tool_plan");
    if (!sb_oai_is_str(plan) || !plan->str.len)
        return 0;
    struct sb_oai_delta d = {.reasoning = plan->str};
    return sb_oai_emit_delta(&st->out, &d);
}

static int ev_tool_start(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *tc = sb_oai_get(delta_message(ev), "tool_calls");
    const struct sb_json *id = sb_oai_get(tc, "id"), *fn = sb_oai_get(tc, "function");
    const struct sb_json *name = sb_oai_get(fn, "name"), *args = sb_oai_get(fn, "arguments");
    struct sb_oai_tool_delta t = {
        .index = st->ntools++,
        .id = sb_oai_is_str(id) ? id->str : sb_slice_cstr(sb_oai_new_call_id(st->out.c->arena)),
        .name = sb_oai_is_str(name) ? name->str : SB_SLICE(""),
        .args = sb_oai_is_str(args) ? args->str : SB_SLICE(""),
    };
    struct sb_oai_delta d = {.tool = &t};
    return sb_oai_emit_delta(&st->out, &d);
}

static int ev_tool_delta(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *fn = sb_oai_get(sb_oai_get(delta_message(ev), "tool_calls"), "function");
    const struct sb_json *args = sb_oai_get(fn, "arguments");
    if (!sb_oai_is_str(args) || !args->str.len)
        return 0;
    if (st->ntools == 0)
        return sb_fail(st->err, SB_E_UPSTREAM,
                       "upstream %s: tool-call-delta before tool-call-start",
                       sb_oai_pname(st->out.c, TYPE));
    struct sb_oai_tool_delta t = {.index = st->ntools - 1, .args = args->str};
    struct sb_oai_delta d = {.tool = &t};
    return sb_oai_emit_delta(&st->out, &d);
}

static int ev_end(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *delta = sb_oai_get(ev, "delta");
    const struct sb_json *fr = sb_oai_get(delta, "finish_reason");
    const struct sb_json *emsg = sb_oai_get(delta, "error");
    bool failed;
    const char *finish = map_finish(fr, &failed);
    st->ended = true;
    if (failed) {
        sb_oai_emit_error(&st->out, sb_oai_is_str(emsg) ? emsg->str : fr->str, st->err);
        return SB_E_UPSTREAM;
    }
    struct sb_oai_delta d = {.finish_reason = finish};
    int rc = sb_oai_emit_delta(&st->out, &d);
    struct sb_oai_usage u = read_usage(sb_oai_get(delta, "usage"));
    if (rc == 0 && (u.prompt >= 0 || u.completion >= 0))
        rc = sb_oai_emit_usage(&st->out, &u);
    return rc ? rc : sb_oai_emit_done(&st->out);
}

static const struct {
    const char *type;
    int (*on)(struct stream *st, const struct sb_json *ev);
} events[] = {
    {"message-start", ev_start},
    {"content-start", ev_content},
    {"content-delta", ev_content},
    {"tool-plan-delta", ev_plan},
    {"tool-call-start", ev_tool_start},
    {"tool-call-delta", ev_tool_delta},
    {"message-end", ev_end},
};

/* An event that is not one of Cohere's typed events but carries a message is an error. */
static int dispatch(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *type = sb_oai_get(ev, "type"), *msg = sb_oai_get(ev, "message");
    if (!sb_oai_is_str(type)) {
        sb_oai_emit_error(&st->out, sb_oai_is_str(msg) ? msg->str : SB_SLICE("untyped event"),
                          st->err);
        return SB_E_UPSTREAM;
    }
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (sb_slice_eq_cstr(type->str, events[i].type))
            return events[i].on(st, ev);
    return 0; /* content-end, tool-call-end, citation-*, debug: nothing for an OpenAI client */
}

static int on_sse(void *ud, const struct sb_sse_event *sev)
{
    struct stream *st = ud;
    if (st->ended || sb_slice_eq_cstr(sev->data, "[DONE]"))
        return 0;
    const struct sb_json *ev = sb_oai_parse_object(st->scratch, sev->data);
    int rc;
    if (!ev)
        rc = sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream event is not a JSON object",
                     sb_oai_pname(st->out.c, TYPE));
    else
        rc = dispatch(st, ev);
    sb_arena_reset(st->scratch);
    return rc;
}

static sb_err cohere_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                                 struct sb_error *err)
{
    struct stream *st = vst;
    st->out.fn = fn;
    st->out.ud = ud;
    st->err = err;
    sb_err rc = sb_sse_feed(&st->sse, p, n, on_sse, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream event exceeds %u bytes",
                     sb_oai_pname(st->out.c, TYPE), STREAM_MAX_EVENT);
    return rc;
}

static sb_err cohere_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    st->out.fn = fn;
    st->out.ud = ud;
    st->err = err;
    if (st->ended)
        return SB_OK;
    return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended before message-end",
                   sb_oai_pname(st->out.c, TYPE));
}

/* ==================================================================
 * Errors: {"id": "...", "message": "..."} with the HTTP status (Cohere's error docs)
 * ================================================================== */

static const struct sb_oai_hint hints[] = {
    {404, "model", SB_E_NOT_FOUND, 404, "model_not_found"},
    {0, "too many tokens", SB_E_BAD_REQUEST, 400, "context_length_exceeded"},
    {0, "context length", SB_E_BAD_REQUEST, 400, "context_length_exceeded"},
    {0, "context window", SB_E_BAD_REQUEST, 400, "context_length_exceeded"},
    {498, "", SB_E_UNAUTHORIZED, 401, "invalid_api_key"}, /* Cohere's "invalid token" */
    {499, "", SB_E_UPSTREAM, 502, NULL},                  /* cancelled upstream */
    {0, NULL, 0, 0, NULL},
};

static void cohere_map_error(const struct sb_call *c, int status, struct sb_slice body,
                             struct sb_error *err)
{
    sb_oai_map_status(c, TYPE, status, sb_oai_error_text(c, body, "message"), hints, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_cohere_ops = {
    .type = "cohere",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/v2/chat",
    .build_request = cohere_build_request,
    .parse_response = cohere_parse_response,
    .stream_open = cohere_stream_open,
    .stream_feed = cohere_stream_feed,
    .stream_finish = cohere_stream_finish,
    .map_error = cohere_map_error,
};
