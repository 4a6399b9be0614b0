/* SPDX-License-Identifier: MIT */
/*
 * ollama.c - the `ollama` adapter: Ollama's native POST /api/chat (NDJSON streams) and
 * POST /api/embed, translated from and to OpenAI's formats.
 *
 * Requests: `stream` is always written, because Ollama streams unless told
 * not to. Message content is a plain string in Ollama, so text parts are
 * joined with "\n"; images go in the message's `images` array as bare
 * base64 (the data: URL prefix stripped); a web URL is refused with a 400,
 * since Ollama takes only base64. Assistant tool calls carry their
 * arguments as a JSON object (OpenAI sends a string: it is parsed and must
 * be an object); tool results carry tool_call_id and the tool_name found
 * on the matching earlier call. Sampling goes in `options` (temperature,
 * top_p, num_predict, stop, seed, penalties); response_format becomes
 * `format` ("json" or the schema); reasoning_effort becomes `think`.
 *
 * Responses: message.thinking is OpenAI's reasoning_content; tool calls
 * arrive whole in one line with object arguments, which are passed on as
 * the JSON text Ollama wrote, with Ollama's id or a generated call_ id.
 * done_reason "length" is length, any other is stop, or tool_calls when
 * the answer called tools. Usage is prompt_eval_count / eval_count of the
 * final line (Ollama omits a zero count).
 */
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/ndjson.h"
#include "provider/oai_emit.h"
#include "provider/provider.h"

#define TYPE "ollama"
#define STREAM_MAX_LINE (4u * 1024u * 1024u)
#define SCRATCH_BLOCK (16u * 1024u)

/* ==================================================================
 * Request: messages
 * ================================================================== */

struct req {
    const struct sb_call *c;
    struct sb_jw w;
    struct sb_error *err;
    const struct sb_json *msgs; /* the client's messages, for tool-name lookups */
};

static sb_err bad(struct req *r, size_t i, const char *what)
{
    return sb_fail(r->err, SB_E_BAD_REQUEST, "messages[%zu]: %s", i, what);
}

/* "content" as one string: text parts joined with "\n"; images counted in *nimages. */
static sb_err write_text(struct req *r, const struct sb_json *content, bool images, size_t i,
                         size_t *nimages)
{
    struct sb_buf b;
    sb_err rc = SB_OK;
    *nimages = 0;
    sb_jw_key(&r->w, "content");
    if (!content || content->type == SB_JSON_NULL || sb_oai_is_str(content)) {
        sb_jw_str(&r->w, content && content->type != SB_JSON_NULL ? content->str : SB_SLICE(""));
        return SB_OK;
    }
    if (content->type != SB_JSON_ARRAY)
        return bad(r, i, "content must be a string or an array of parts");
    sb_buf_init(&b, 0);
    for (const struct sb_json *p = content->child; p && rc == SB_OK; p = p->next) {
        const struct sb_json *type = sb_oai_get(p, "type"), *text = sb_oai_get(p, "text");
        bool is_text = sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "text");
        bool is_image = sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "image_url");
        if (is_text && sb_oai_is_str(text)) {
            if (b.len)
                sb_buf_append_char(&b, '\n');
            sb_buf_append_slice(&b, text->str);
        } else if (is_image && images)
            (*nimages)++;
        else
            rc = bad(r, i,
                     images ? "content parts must be text or image_url for ollama"
                            : "content parts must be text for this role on ollama");
    }
    sb_jw_str(&r->w, b.len ? sb_buf_slice(&b) : SB_SLICE(""));
    sb_buf_free(&b);
    return rc;
}

/* The base64 payload of a data: URL; a web URL is a 400 (Ollama takes only base64). */
static sb_err image_base64(struct req *r, const struct sb_json *part, size_t i,
                           struct sb_slice *out)
{
    const struct sb_json *iu = sb_oai_get(part, "image_url");
    const struct sb_json *url = sb_oai_is_str(iu) ? iu : sb_oai_get(iu, "url");
    if (!sb_oai_is_str(url))
        return bad(r, i, "image_url part needs image_url.url");
    struct sb_slice u = url->str;
    const char *comma = memchr(u.p, ',', u.len);
    if (!sb_slice_starts_with(u, SB_SLICE("data:")) || !comma)
        return bad(r, i, "ollama takes images only as base64 data: URLs, not web URLs");
    struct sb_slice meta = {u.p, (size_t)(comma - u.p)};
    if (meta.len < 7 || memcmp(meta.p + meta.len - 7, ";base64", 7) != 0)
        return bad(r, i, "image data: URL must be base64-encoded for ollama");
    *out = (struct sb_slice){comma + 1, u.len - meta.len - 1};
    return SB_OK;
}

static sb_err write_images(struct req *r, const struct sb_json *content, size_t i)
{
    sb_jw_key(&r->w, "images");
    sb_jw_arr_begin(&r->w);
    for (const struct sb_json *p = content->child; p; p = p->next) {
        const struct sb_json *type = sb_oai_get(p, "type");
        struct sb_slice b64;
        if (!sb_oai_is_str(type) || !sb_slice_eq_cstr(type->str, "image_url"))
            continue;
        if (image_base64(r, p, i, &b64) != SB_OK)
            return r->err->code;
        sb_jw_str(&r->w, b64);
    }
    sb_jw_arr_end(&r->w);
    return SB_OK;
}

static sb_err msg_system(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    size_t nimg;
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "system");
    return write_text(r, sb_oai_get(m, "content"), false, i, &nimg);
}

static sb_err msg_user(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    size_t nimg;
    const struct sb_json *content = sb_oai_get(m, "content");
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "user");
    if (write_text(r, content, true, i, &nimg) != SB_OK)
        return r->err->code;
    return nimg ? write_images(r, content, i) : SB_OK;
}

/* An OpenAI arguments string as Ollama's object. */
static sb_err write_arguments(struct req *r, const struct sb_json *args, size_t i)
{
    struct sb_json_limits lim = {.max_depth = SB_OAI_MAX_DEPTH, .max_bytes = 0};
    struct sb_json *obj = NULL;
    struct sb_error jerr;
    sb_jw_key(&r->w, "arguments");
    if (!args || (sb_oai_is_str(args) && args->str.len == 0)) {
        sb_jw_raw(&r->w, SB_SLICE("{}"));
        return SB_OK;
    }
    if (!sb_oai_is_str(args) ||
        sb_json_parse(r->c->arena, args->str.p, args->str.len, &lim, &obj, &jerr) != SB_OK ||
        obj->type != SB_JSON_OBJECT)
        return bad(r, i, "tool_calls[].function.arguments must be a JSON object string for ollama");
    sb_jw_raw(&r->w, obj->raw);
    return SB_OK;
}

static sb_err write_tool_calls(struct req *r, const struct sb_json *calls, size_t i)
{
    sb_jw_key(&r->w, "tool_calls");
    sb_jw_arr_begin(&r->w);
    for (const struct sb_json *tc = calls->child; tc; tc = tc->next) {
        const struct sb_json *id = sb_oai_get(tc, "id"), *fn = sb_oai_get(tc, "function");
        const struct sb_json *name = sb_oai_get(fn, "name");
        if (!sb_oai_is_str(name))
            return bad(r, i, "tool_calls need function.name");
        sb_jw_obj_begin(&r->w);
        if (sb_oai_is_str(id)) {
            sb_jw_key(&r->w, "id");
            sb_jw_str(&r->w, id->str);
        }
        sb_jw_key(&r->w, "function");
        sb_jw_obj_begin(&r->w);
        sb_jw_key(&r->w, "name");
        sb_jw_str(&r->w, name->str);
        if (write_arguments(r, sb_oai_get(fn, "arguments"), i) != SB_OK)
            return r->err->code;
        sb_jw_obj_end(&r->w);
        sb_jw_obj_end(&r->w);
    }
    sb_jw_arr_end(&r->w);
    return SB_OK;
}

static sb_err msg_assistant(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    size_t nimg;
    const struct sb_json *calls = sb_oai_get(m, "tool_calls");
    const struct sb_json *reasoning = sb_oai_get(m, "reasoning_content");
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "assistant");
    if (write_text(r, sb_oai_get(m, "content"), false, i, &nimg) != SB_OK)
        return r->err->code;
    if (sb_oai_is_str(reasoning) && reasoning->str.len) {
        sb_jw_key(&r->w, "thinking");
        sb_jw_str(&r->w, reasoning->str);
    }
    if (calls && calls->type == SB_JSON_ARRAY && calls->count)
        return write_tool_calls(r, calls, i);
    return SB_OK;
}

/* The function name of the earlier assistant tool call with this id, or an empty slice. */
static struct sb_slice tool_name_for(const struct req *r, struct sb_slice id)
{
    for (const struct sb_json *m = r->msgs->child; m; m = m->next) {
        const struct sb_json *calls = sb_oai_get(m, "tool_calls");
        for (const struct sb_json *tc = calls && calls->type == SB_JSON_ARRAY ? calls->child : NULL;
             tc; tc = tc->next) {
            const struct sb_json *tid = sb_oai_get(tc, "id");
            const struct sb_json *name = sb_oai_get(sb_oai_get(tc, "function"), "name");
            if (sb_oai_is_str(tid) && sb_slice_eq(tid->str, id) && sb_oai_is_str(name))
                return name->str;
        }
    }
    return SB_SLICE_NULL;
}

static sb_err msg_tool(void *ud, const struct sb_json *m, size_t i)
{
    struct req *r = ud;
    size_t nimg;
    const struct sb_json *id = sb_oai_get(m, "tool_call_id");
    sb_jw_key(&r->w, "role");
    sb_jw_cstr(&r->w, "tool");
    if (write_text(r, sb_oai_get(m, "content"), false, i, &nimg) != SB_OK)
        return r->err->code;
    if (!sb_oai_is_str(id))
        return bad(r, i, "a tool message needs tool_call_id");
    sb_jw_key(&r->w, "tool_call_id");
    sb_jw_str(&r->w, id->str);
    struct sb_slice name = tool_name_for(r, id->str);
    if (name.len) {
        sb_jw_key(&r->w, "tool_name");
        sb_jw_str(&r->w, name);
    }
    return SB_OK;
}

static const struct sb_oai_role roles[] = {
    {"system", msg_system},       {"developer", msg_system}, {"user", msg_user},
    {"assistant", msg_assistant}, {"tool", msg_tool},        {NULL, NULL},
};

static sb_err write_messages(struct req *r)
{
    r->msgs = sb_oai_get(r->c->json, "messages"); /* before msg_tool's lookups */
    return sb_oai_write_messages(&r->w, r->msgs, roles, r, TYPE, r->err);
}

/* ==================================================================
 * Request: tools, options, format, think
 * ================================================================== */

/* Tools keep OpenAI's function shape, which Ollama shares: each is copied as sent. */
static sb_err write_tools(struct req *r)
{
    const struct sb_json *tools = sb_oai_get(r->c->json, "tools");
    const struct sb_json *tc = sb_oai_get(r->c->json, "tool_choice");
    const struct sb_json *ptc = sb_oai_get(r->c->json, "parallel_tool_calls");
    bool none = sb_oai_is_str(tc) && sb_slice_eq_cstr(tc->str, "none");
    if (tc && tc->type != SB_JSON_NULL && !none &&
        !(sb_oai_is_str(tc) && sb_slice_eq_cstr(tc->str, "auto")))
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'tool_choice' must be auto or none for ollama (it cannot force a tool)");
    if (ptc && ptc->type == SB_JSON_FALSE)
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'parallel_tool_calls': false is not supported by ollama");
    if (!tools || tools->type == SB_JSON_NULL || none) /* none: the model may call no tool */
        return SB_OK;
    if (tools->type != SB_JSON_ARRAY)
        return sb_fail(r->err, SB_E_BAD_REQUEST, "'tools' must be an array");
    if (!tools->count)
        return SB_OK;
    sb_jw_key(&r->w, "tools");
    sb_jw_arr_begin(&r->w);
    for (const struct sb_json *t = tools->child; t; t = t->next) {
        const struct sb_json *type = sb_oai_get(t, "type");
        const struct sb_json *name = sb_oai_get(sb_oai_get(t, "function"), "name");
        if (!sb_oai_is_str(type) || !sb_slice_eq_cstr(type->str, "function") ||
            !sb_oai_is_str(name))
            return sb_fail(
                r->err, SB_E_BAD_REQUEST,
                "'tools' entries must be {\"type\":\"function\",\"function\":{\"name\"...}}");
        sb_jw_raw(&r->w, t->raw);
    }
    sb_jw_arr_end(&r->w);
    return SB_OK;
}

static bool present(const struct sb_json *j)
{
    return j && j->type != SB_JSON_NULL;
}

static sb_err write_options(struct req *r)
{
    static const struct {
        const char *from, *to;
    } nums[] = {{"temperature", "temperature"},
                {"top_p", "top_p"},
                {"seed", "seed"},
                {"frequency_penalty", "frequency_penalty"},
                {"presence_penalty", "presence_penalty"}};
    const struct sb_json *j = r->c->json, *max = NULL, *stop = sb_oai_get(j, "stop");
    bool any = present(stop);
    if (sb_oai_max_tokens(r->c, TYPE, &max, r->err) != SB_OK)
        return r->err->code;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        any = any || present(sb_oai_get(j, nums[i].from));
    if (!any && !max)
        return SB_OK;
    sb_jw_key(&r->w, "options");
    sb_jw_obj_begin(&r->w);
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (sb_oai_copy_number(&r->w, nums[i].to, sb_oai_get(j, nums[i].from), TYPE, nums[i].from,
                               r->err) != SB_OK)
            return r->err->code;
    if (max) {
        sb_jw_key(&r->w, "num_predict");
        sb_jw_raw(&r->w, max->raw);
    }
    if (present(stop)) {
        sb_jw_key(&r->w, "stop");
        if (sb_oai_write_stop(&r->w, stop, TYPE, r->err) != SB_OK)
            return r->err->code;
    }
    sb_jw_obj_end(&r->w);
    return SB_OK;
}

static sb_err write_format(struct req *r)
{
    const struct sb_json *rf = sb_oai_get(r->c->json, "response_format");
    const struct sb_json *type = sb_oai_get(rf, "type");
    const struct sb_json *schema = sb_oai_get(sb_oai_get(rf, "json_schema"), "schema");
    if (!present(rf) || (sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "text")))
        return SB_OK;
    if (sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "json_object")) {
        sb_jw_key(&r->w, "format");
        sb_jw_cstr(&r->w, "json");
        return SB_OK;
    }
    if (!(sb_oai_is_str(type) && sb_slice_eq_cstr(type->str, "json_schema") && schema &&
          schema->type == SB_JSON_OBJECT))
        return sb_fail(r->err, SB_E_BAD_REQUEST,
                       "'response_format' must be text, json_object, or json_schema with "
                       "json_schema.schema");
    sb_jw_key(&r->w, "format");
    sb_jw_raw(&r->w, schema->raw);
    return SB_OK;
}

/* reasoning_effort → think: false, or the effort level (Ollama takes "low"/"medium"/"high"). */
static sb_err write_think(struct req *r)
{
    static const struct {
        const char *effort, *think; /* think NULL = false */
    } efforts[] = {
        {"none", NULL}, {"minimal", "low"}, {"low", "low"}, {"medium", "medium"}, {"high", "high"}};
    const struct sb_json *e = sb_oai_get(r->c->json, "reasoning_effort");
    if (!present(e))
        return SB_OK;
    for (size_t i = 0; sb_oai_is_str(e) && i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (!sb_slice_eq_cstr(e->str, efforts[i].effort))
            continue;
        sb_jw_key(&r->w, "think");
        if (efforts[i].think)
            sb_jw_cstr(&r->w, efforts[i].think);
        else
            sb_jw_bool(&r->w, false);
        return SB_OK;
    }
    return sb_fail(r->err, SB_E_BAD_REQUEST,
                   "'reasoning_effort' must be none, minimal, low, medium or high");
}

static sb_err chat_body(struct req *r)
{
    const struct sb_model *m = r->c->model;
    const struct sb_json *lp = sb_oai_get(r->c->json, "logprobs");
    if (sb_oai_check_fields(r->c, TYPE, sb_oai_chat_fields, r->err) != SB_OK)
        return r->err->code;
    if (present(lp) && lp->type != SB_JSON_FALSE)
        return sb_fail(r->err, SB_E_BAD_REQUEST, "'logprobs' is not supported by ollama");
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "model");
    sb_jw_cstr(&r->w, m->upstream_model ? m->upstream_model : m->id);
    sb_err rc = write_messages(r);
    if (rc == SB_OK)
        rc = write_tools(r);
    if (rc == SB_OK)
        rc = write_options(r);
    if (rc == SB_OK)
        rc = write_format(r);
    if (rc == SB_OK)
        rc = write_think(r);
    sb_jw_key(&r->w, "stream");
    sb_jw_bool(&r->w, r->c->stream); /* explicit: Ollama streams by default */
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
    sb_jw_key(&r->w, "input");
    sb_jw_raw(&r->w, in->raw); /* a string or an array of strings, as Ollama takes them */
    sb_err rc = sb_oai_copy_number(&r->w, "dimensions", dims, TYPE, "dimensions", r->err);
    sb_jw_obj_end(&r->w);
    return rc;
}

static sb_err ollama_build_request(const struct sb_call *c, struct sb_upstream_req *out,
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
    return sb_oai_post_json(c, &b, c->op == SB_OP_EMBEDDINGS ? "/api/embed" : "/api/chat",
                            "application/x-ndjson", out, err);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

static struct sb_oai_usage read_usage(const struct sb_json *root)
{
    struct sb_oai_usage u = SB_OAI_USAGE_UNKNOWN;
    u.prompt = sb_oai_count(sb_oai_get(root, "prompt_eval_count"));
    u.completion = sb_oai_count(sb_oai_get(root, "eval_count"));
    u.prompt = u.prompt < 0 ? 0 : u.prompt; /* omitted when zero (Go omitempty) */
    u.completion = u.completion < 0 ? 0 : u.completion;
    return u;
}

static const char *map_finish(const struct sb_json *done_reason, bool called_tools)
{
    if (sb_oai_is_str(done_reason) && sb_slice_eq_cstr(done_reason->str, "length"))
        return "length";
    return called_tools ? "tool_calls" : "stop";
}

/* One Ollama tool call's parts: Ollama's id or a new one, and the arguments as JSON text. */
static void tool_parts(struct sb_arena *a, const struct sb_json *tc, struct sb_slice *id,
                       struct sb_slice *name, struct sb_slice *args)
{
    const struct sb_json *tid = sb_oai_get(tc, "id"), *fn = sb_oai_get(tc, "function");
    const struct sb_json *n = sb_oai_get(fn, "name"), *ar = sb_oai_get(fn, "arguments");
    *id = sb_oai_is_str(tid) && tid->str.len ? tid->str : sb_slice_cstr(sb_oai_new_call_id(a));
    *name = sb_oai_is_str(n) ? n->str : SB_SLICE("");
    if (ar && ar->type == SB_JSON_OBJECT)
        *args = ar->raw;
    else
        *args = sb_oai_is_str(ar) ? ar->str : SB_SLICE("{}");
}

static const struct sb_json *tool_calls_of(const struct sb_json *msg)
{
    const struct sb_json *calls = sb_oai_get(msg, "tool_calls");
    return calls && calls->type == SB_JSON_ARRAY && calls->count ? calls : NULL;
}

static void write_message_body(const struct sb_call *c, struct sb_jw *w, const struct sb_json *msg)
{
    const struct sb_json *content = sb_oai_get(msg, "content");
    const struct sb_json *thinking = sb_oai_get(msg, "thinking"), *calls = tool_calls_of(msg);
    bool has_text = sb_oai_is_str(content) && content->str.len;
    sb_jw_key(w, "content");
    if (!has_text && calls)
        sb_jw_null(w);
    else
        sb_jw_str(w, has_text ? content->str : SB_SLICE(""));
    if (sb_oai_is_str(thinking) && thinking->str.len) {
        sb_jw_key(w, "reasoning_content");
        sb_jw_str(w, thinking->str);
    }
    if (!calls)
        return;
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    for (const struct sb_json *tc = calls->child; tc; tc = tc->next) {
        struct sb_slice id, name, args;
        tool_parts(c->arena, tc, &id, &name, &args);
        sb_oai_tool_call_write(w, id, name, args);
    }
    sb_jw_arr_end(w);
}

static sb_err parse_chat(const struct sb_call *c, const struct sb_json *root, struct sb_result *out,
                         struct sb_error *err)
{
    struct sb_buf b;
    struct sb_jw w;
    const struct sb_json *msg = sb_oai_get(root, "message"), *e = sb_oai_get(root, "error");
    if (sb_oai_is_str(e) || !msg || msg->type != SB_JSON_OBJECT) {
        char text[SB_OAI_EXCERPT + 1];
        sb_oai_excerpt(c, text, sizeof(text), sb_oai_is_str(e) ? e->str : SB_SLICE("no message"));
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: %s", sb_oai_pname(c, TYPE), text);
    }
    const char *finish = map_finish(sb_oai_get(root, "done_reason"), tool_calls_of(msg) != NULL);
    struct sb_oai_usage u = read_usage(root);
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_oai_completion_begin(&w, sb_oai_completion_id(c->arena, SB_SLICE_NULL),
                            c->model->upstream_model ? c->model->upstream_model : c->model->id);
    write_message_body(c, &w, msg);
    sb_oai_completion_end(&w, finish, &u);
    out->body = sb_oai_finish_body(c, &b);
    out->usage.prompt_tokens = u.prompt;
    out->usage.completion_tokens = u.completion;
    out->finish_reason = sb_slice_cstr(finish);
    return SB_OK;
}

static sb_err ollama_parse_response(const struct sb_call *c, struct sb_slice body,
                                    struct sb_result *out, struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    const struct sb_json *root = sb_oai_parse_object(c->arena, body);
    if (!root)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object",
                       sb_oai_pname(c, TYPE));
    if (c->op == SB_OP_CHAT)
        return parse_chat(c, root, out, err);
    int64_t prompt = sb_oai_count(sb_oai_get(root, "prompt_eval_count"));
    out->usage.prompt_tokens = prompt < 0 ? 0 : prompt;
    out->usage.completion_tokens = 0;
    return sb_oai_embeddings(c, TYPE, sb_oai_get(root, "embeddings"), out->usage.prompt_tokens,
                             &out->body, err);
}

/* ==================================================================
 * Streams: one JSON object per line, the last with "done": true
 * ================================================================== */

struct stream {
    struct sb_oai_stream out;
    struct sb_ndjson nd;
    struct sb_arena *scratch; /* one line's JSON tree, reset after each line */
    struct sb_error *err;     /* of the current feed */
    int ntools;               /* tool calls sent so far (the next OpenAI index) */
    bool ended;               /* the done line arrived */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_ndjson_free(&st->nd);
    sb_arena_free(st->scratch);
}

static void *ollama_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    sb_oai_stream_init(&st->out, c);
    sb_ndjson_init(&st->nd, STREAM_MAX_LINE);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* Tool calls arrive whole: one chunk per call with id, name and all its arguments. */
static int emit_tools(struct stream *st, const struct sb_json *calls)
{
    int rc = 0;
    for (const struct sb_json *tc = calls ? calls->child : NULL; tc && !rc; tc = tc->next) {
        struct sb_oai_tool_delta t = {.index = st->ntools++};
        tool_parts(st->out.c->arena, tc, &t.id, &t.name, &t.args);
        struct sb_oai_delta d = {.tool = &t};
        rc = sb_oai_emit_delta(&st->out, &d);
    }
    return rc;
}

static int emit_end(struct stream *st, const struct sb_json *line)
{
    struct sb_oai_delta d = {.finish_reason =
                                 map_finish(sb_oai_get(line, "done_reason"), st->ntools > 0)};
    struct sb_oai_usage u = read_usage(line);
    st->ended = true;
    int rc = sb_oai_emit_delta(&st->out, &d);
    if (rc == 0)
        rc = sb_oai_emit_usage(&st->out, &u);
    return rc ? rc : sb_oai_emit_done(&st->out);
}

static int on_object(struct stream *st, const struct sb_json *line)
{
    const struct sb_json *e = sb_oai_get(line, "error"), *msg = sb_oai_get(line, "message");
    if (sb_oai_is_str(e)) {
        sb_oai_emit_error(&st->out, e->str, st->err);
        return SB_E_UPSTREAM;
    }
    const struct sb_json *content = sb_oai_get(msg, "content");
    const struct sb_json *thinking = sb_oai_get(msg, "thinking");
    struct sb_oai_delta d = {.content = SB_SLICE_NULL};
    if (sb_oai_is_str(thinking) && thinking->str.len)
        d.reasoning = thinking->str;
    if (sb_oai_is_str(content) && content->str.len)
        d.content = content->str;
    int rc = d.reasoning.p || d.content.p ? sb_oai_emit_delta(&st->out, &d) : 0;
    if (rc == 0)
        rc = emit_tools(st, tool_calls_of(msg));
    if (rc == 0 && sb_json_bool(sb_oai_get(line, "done")))
        rc = emit_end(st, line);
    return rc;
}

static int on_line(void *ud, struct sb_slice text)
{
    struct stream *st = ud;
    if (st->ended)
        return 0; /* nothing counts after the done line */
    const struct sb_json *line = sb_oai_parse_object(st->scratch, text);
    int rc;
    if (!line)
        rc = sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream line is not a JSON object",
                     sb_oai_pname(st->out.c, TYPE));
    else
        rc = on_object(st, line);
    sb_arena_reset(st->scratch);
    return rc;
}

static void bind(struct stream *st, sb_event_fn fn, void *ud, struct sb_error *err)
{
    st->out.fn = fn;
    st->out.ud = ud;
    st->err = err;
}

static sb_err ollama_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                                 struct sb_error *err)
{
    struct stream *st = vst;
    bind(st, fn, ud, err);
    sb_err rc = sb_ndjson_feed(&st->nd, p, n, on_line, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream line exceeds %u bytes",
                     sb_oai_pname(st->out.c, TYPE), STREAM_MAX_LINE);
    return rc;
}

static sb_err ollama_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    bind(st, fn, ud, err);
    sb_err rc = sb_ndjson_finish(&st->nd, on_line, st, err); /* a last line without its LF */
    if (rc != SB_OK)
        return rc == SB_E_TOO_LARGE
                   ? sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream line too long",
                             sb_oai_pname(st->out.c, TYPE))
                   : rc;
    if (!st->ended)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended before the done line",
                       sb_oai_pname(st->out.c, TYPE));
    return SB_OK;
}

/* ==================================================================
 * Errors: {"error": "..."} with the HTTP status
 * ================================================================== */

static const struct sb_oai_hint hints[] = {
    {404, "not found", SB_E_NOT_FOUND, 404, "model_not_found"},
    {0, "context length", SB_E_BAD_REQUEST, 400, "context_length_exceeded"},
    {0, NULL, 0, 0, NULL},
};

static void ollama_map_error(const struct sb_call *c, int status, struct sb_slice body,
                             struct sb_error *err)
{
    sb_oai_map_status(c, TYPE, status, sb_oai_error_text(c, body, "error"), hints, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_ollama_ops = {
    .type = "ollama",
    .stream_format = SB_STREAM_NDJSON,
    .chat_path = "/api/chat",
    .build_request = ollama_build_request,
    .parse_response = ollama_parse_response,
    .stream_open = ollama_stream_open,
    .stream_feed = ollama_stream_feed,
    .stream_finish = ollama_stream_finish,
    .map_error = ollama_map_error,
};
