/* SPDX-License-Identifier: MIT */
/*
 * gemini.c - the `gemini` adapter (Google AI Studio, v1beta): requests.
 *
 * Clients speak OpenAI Chat Completions and Embeddings; this half writes the
 * Gemini request for them: POST {base_url}/models/{model}:generateContent,
 * :streamGenerateContent?alt=sse, or :batchEmbedContents. The mapping, field
 * by field (OpenAI → Gemini):
 *   system/developer messages   → systemInstruction.parts[].text
 *   user / assistant messages   → contents[] with role "user" / "model"
 *   text, image_url, input_audio, file parts → text, inlineData (base64 data
 *                                 URLs) or fileData.fileUri (http(s) URLs)
 *   assistant tool_calls        → functionCall {name, args} parts
 *   role "tool" messages        → one role "user" content of functionResponse
 *                                 {name, response} parts per run of tool
 *                                 messages; the name comes from the earlier
 *                                 assistant tool call with that tool_call_id
 *                                 (Gemini has no call ids, so ids stay ours)
 *   extra_content.google.thought_signature (on a tool call, or on the message
 *                                 for its text) → thoughtSignature on that part
 *   tools / tool_choice         → functionDeclarations (parametersJsonSchema,
 *                                 since OpenAI parameters are JSON Schema) /
 *                                 toolConfig.functionCallingConfig
 *   temperature, top_p, max_(completion_)tokens, stop, seed, penalties,
 *   response_format, reasoning_effort → generationConfig
 * A field Gemini cannot honour (n > 1, logprobs, logit_bias, audio output...)
 * is refused with a 400 naming it, never dropped. The key goes in the
 * x-goog-api-key header (auth api_key) or in ?key= (auth query).
 */
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/gemini_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"

#define GET sb__gm_get
#define AT sb__gm_at
#define ISSTR sb__gm_is_str

/* One request being written. */
struct req {
    const struct sb_call *c;
    struct sb_jw *w;
    struct sb_error *err;
    const struct sb_json *msgs; /* the client's messages array */
    bool tool_open;             /* a role "user" content of functionResponse parts is open */
};

/* ==================================================================
 * Shared helpers
 * ================================================================== */

const char *sb__gm_model(const struct sb_call *c)
{
    const char *m = c->model->upstream_model ? c->model->upstream_model : c->model->id;
    return strncmp(m, "models/", 7) == 0 ? m + 7 : m;
}

void sb__gm_write_compact(struct sb_jw *w, const struct sb_json *v)
{
    switch (v->type) {
    case SB_JSON_OBJECT:
        sb_jw_obj_begin(w);
        for (const struct sb_json *m = v->child; m; m = m->next) {
            sb_jw_key_slice(w, m->key);
            sb__gm_write_compact(w, m);
        }
        sb_jw_obj_end(w);
        break;
    case SB_JSON_ARRAY:
        sb_jw_arr_begin(w);
        for (const struct sb_json *e = v->child; e; e = e->next)
            sb__gm_write_compact(w, e);
        sb_jw_arr_end(w);
        break;
    case SB_JSON_STRING:
        sb_jw_str(w, v->str);
        break;
    default: /* numbers, true, false, null: their source text has no whitespace */
        sb_jw_raw(w, v->raw);
        break;
    }
}

static sb_err bad(struct req *r, const char *field, const char *fmt, const char *arg)
{
    return sb_fail_field(r->err, SB_E_BAD_REQUEST, field, fmt, arg ? arg : "");
}

static bool present(const struct sb_json *v)
{
    return v && v->type != SB_JSON_NULL;
}

/* ==================================================================
 * Message content
 * ================================================================== */

/* The text of a string content, or of an array of text parts (concatenated), from the arena. */
static sb_err content_text(struct req *r, const struct sb_json *content, const char *role,
                           struct sb_slice *out)
{
    *out = SB_SLICE("");
    if (!present(content))
        return SB_OK;
    if (content->type == SB_JSON_STRING) {
        *out = content->str;
        return SB_OK;
    }
    if (content->type != SB_JSON_ARRAY)
        return bad(r, "messages", "'content' of a %s message must be a string or an array", role);
    struct sb_buf b;
    sb_buf_init(&b, 0);
    for (const struct sb_json *p = content->child; p; p = p->next) {
        const struct sb_json *t = GET(p, "text");
        if (!sb_slice_eq_cstr(GET(p, "type") ? GET(p, "type")->str : SB_SLICE_NULL, "text") ||
            !ISSTR(t)) {
            sb_buf_free(&b);
            return bad(r, "messages", "a %s message takes only text parts", role);
        }
        sb_buf_append_slice(&b, t->str);
    }
    *out = b.len ? sb_arena_slice(r->c->arena, sb_buf_slice(&b)) : SB_SLICE("");
    sb_buf_free(&b);
    return SB_OK;
}

/* {"inlineData":{mimeType,data}} for a base64 data URL, {"fileData":{fileUri}} for http(s). */
static sb_err write_media(struct req *r, struct sb_slice url, const char *what)
{
    struct sb_jw *w = r->w;
    if (sb_slice_starts_with(url, SB_SLICE("data:"))) {
        const char *marker = memmem(url.p, url.len, ";base64,", 8);
        if (!marker || marker == url.p + 5)
            return bad(r, "messages", "%s: a data URL must be data:<media type>;base64,<data>",
                       what);
        size_t mlen = (size_t)(marker - url.p) - 5, off = (size_t)(marker - url.p) + 8;
        sb_jw_obj_begin(w);
        sb_jw_key(w, "inlineData");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "mimeType");
        sb_jw_str(w, (struct sb_slice){url.p + 5, mlen});
        sb_jw_key(w, "data");
        sb_jw_str(w, (struct sb_slice){url.p + off, url.len - off});
        sb_jw_obj_end(w);
        sb_jw_obj_end(w);
        return SB_OK;
    }
    if (!sb_slice_starts_with(url, SB_SLICE("https://")) &&
        !sb_slice_starts_with(url, SB_SLICE("http://")))
        return bad(r, "messages", "%s: expected an http(s) URL or a base64 data URL", what);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "fileData");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "fileUri");
    sb_jw_str(w, url);
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
    return SB_OK;
}

static sb_err part_text(struct req *r, const struct sb_json *p)
{
    const struct sb_json *t = GET(p, "text");
    if (!ISSTR(t))
        return bad(r, "messages", "a text part needs a string 'text'%s", NULL);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "text");
    sb_jw_str(r->w, t->str);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static sb_err part_image(struct req *r, const struct sb_json *p)
{
    const struct sb_json *iu = GET(p, "image_url");
    const struct sb_json *url = ISSTR(iu) ? iu : GET(iu, "url");
    if (!ISSTR(url))
        return bad(r, "messages", "an image_url part needs image_url.url%s", NULL);
    return write_media(r, url->str, "image_url");
}

static sb_err part_audio(struct req *r, const struct sb_json *p)
{
    const struct sb_json *a = GET(p, "input_audio");
    const struct sb_json *data = GET(a, "data"), *fmt = GET(a, "format");
    if (!ISSTR(data) || !ISSTR(fmt))
        return bad(r, "messages", "an input_audio part needs input_audio.data and .format%s", NULL);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "inlineData");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "mimeType");
    sb_jw_cstr(r->w, sb_arena_printf(r->c->arena, "audio/%.*s", SB_FMT(fmt->str)));
    sb_jw_key(r->w, "data");
    sb_jw_str(r->w, data->str);
    sb_jw_obj_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static sb_err part_file(struct req *r, const struct sb_json *p)
{
    const struct sb_json *data = GET(GET(p, "file"), "file_data");
    if (!ISSTR(data))
        return bad(r, "messages",
                   "file parts need file.file_data (file_id is not supported by "
                   "gemini)%s",
                   NULL);
    return write_media(r, data->str, "file");
}

static const struct {
    const char *type;
    sb_err (*write)(struct req *r, const struct sb_json *part);
} user_parts[] = {
    {"text", part_text},
    {"image_url", part_image},
    {"input_audio", part_audio},
    {"file", part_file},
};

static sb_err user_part(struct req *r, const struct sb_json *p)
{
    const struct sb_json *t = GET(p, "type");
    for (size_t i = 0; ISSTR(t) && i < sizeof(user_parts) / sizeof(user_parts[0]); i++)
        if (sb_slice_eq_cstr(t->str, user_parts[i].type))
            return user_parts[i].write(r, p);
    return bad(r, "messages", "content part type '%s' is not supported by gemini",
               ISSTR(t) ? sb_arena_strndup(r->c->arena, t->str.p, t->str.len) : "?");
}

/* ==================================================================
 * Messages
 * ================================================================== */

/* Ends the open run of functionResponse parts, if any. */
static void close_tool(struct req *r)
{
    if (!r->tool_open)
        return;
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    r->tool_open = false;
}

static void begin_content(struct req *r, const char *role)
{
    close_tool(r);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "role");
    sb_jw_cstr(r->w, role);
    sb_jw_key(r->w, "parts");
    sb_jw_arr_begin(r->w);
}

static sb_err msg_user(struct req *r, size_t idx, const struct sb_json *m)
{
    const struct sb_json *content = GET(m, "content");
    (void)idx;
    if (content && content->type == SB_JSON_ARRAY) {
        if (!content->count)
            return bad(r, "messages", "a user message has no content parts%s", NULL);
        begin_content(r, "user");
        for (const struct sb_json *p = content->child; p; p = p->next)
            if (user_part(r, p) != SB_OK)
                return r->err->code;
    } else {
        struct sb_slice text;
        if (content_text(r, content, "user", &text) != SB_OK)
            return r->err->code;
        begin_content(r, "user");
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "text");
        sb_jw_str(r->w, text);
        sb_jw_obj_end(r->w);
    }
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

/* holder's thought signature, unless another provider issued the body's (a fallback). */
static const struct sb_json *thought_signature(const struct req *r, const struct sb_json *holder)
{
    const struct sb_json *s = GET(GET(GET(holder, "extra_content"), "google"), "thought_signature");
    return ISSTR(s) && !r->c->foreign_signatures ? s : NULL;
}

/* {"functionCall":{"name","args"},"thoughtSignature"?} for one assistant tool call. */
static sb_err write_call(struct req *r, const struct sb_json *call)
{
    const struct sb_json *fn = GET(call, "function");
    const struct sb_json *name = GET(fn, "name"), *args = GET(fn, "arguments");
    const struct sb_json *sig = thought_signature(r, call), *parsed = NULL;
    struct sb_json_limits lim = {.max_depth = SB_GEMINI_MAX_DEPTH, .max_bytes = 0};
    struct sb_error jerr;
    if (!ISSTR(name) || (present(args) && !ISSTR(args)))
        return bad(r, "messages",
                   "an assistant tool call needs function.name and string "
                   "function.arguments%s",
                   NULL);
    struct sb_slice text = present(args) ? args->str : SB_SLICE("");
    if (text.len && (sb_json_parse(r->c->arena, text.p, text.len, &lim, (struct sb_json **)&parsed,
                                   &jerr) != SB_OK ||
                     parsed->type != SB_JSON_OBJECT))
        return bad(r, "messages", "tool call arguments must be a JSON object (call '%s')",
                   sb_arena_strndup(r->c->arena, name->str.p, name->str.len));
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "functionCall");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "name");
    sb_jw_str(r->w, name->str);
    sb_jw_key(r->w, "args");
    if (parsed)
        sb__gm_write_compact(r->w, parsed);
    else
        sb_jw_raw(r->w, SB_SLICE("{}"));
    sb_jw_obj_end(r->w);
    if (sig) {
        sb_jw_key(r->w, "thoughtSignature");
        sb_jw_str(r->w, sig->str);
    }
    sb_jw_obj_end(r->w);
    return SB_OK;
}

/* Reasoning text (reasoning_content) is not sent back: Gemini keeps its state in signatures. */
static sb_err msg_assistant(struct req *r, size_t idx, const struct sb_json *m)
{
    const struct sb_json *calls = GET(m, "tool_calls"), *sig = thought_signature(r, m);
    struct sb_slice text;
    (void)idx;
    if (content_text(r, GET(m, "content"), "assistant", &text) != SB_OK)
        return r->err->code;
    if (present(calls) && calls->type != SB_JSON_ARRAY)
        return bad(r, "messages", "'tool_calls' must be an array%s", NULL);
    size_t ncalls = present(calls) ? calls->count : 0;
    if (!text.len && !sig && !ncalls)
        return SB_OK; /* an empty turn: Gemini refuses contents without parts */
    begin_content(r, "model");
    if (text.len || sig) {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "text");
        sb_jw_str(r->w, text);
        if (sig) {
            sb_jw_key(r->w, "thoughtSignature");
            sb_jw_str(r->w, sig->str);
        }
        sb_jw_obj_end(r->w);
    }
    for (size_t i = 0; i < ncalls; i++)
        if (write_call(r, AT(calls, i)) != SB_OK)
            return r->err->code;
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

/* The function name of the earlier assistant tool call whose id is id, or NULL. */
static const struct sb_json *call_name(struct req *r, size_t before, struct sb_slice id)
{
    for (size_t i = 0; i < before; i++) {
        const struct sb_json *m = AT(r->msgs, i), *calls = GET(m, "tool_calls");
        for (size_t k = 0; calls && k < calls->count; k++) {
            const struct sb_json *call = AT(calls, k), *cid = GET(call, "id");
            const struct sb_json *name = GET(GET(call, "function"), "name");
            if (ISSTR(cid) && sb_slice_eq(cid->str, id) && ISSTR(name))
                return name;
        }
    }
    return NULL;
}

static sb_err msg_tool(struct req *r, size_t idx, const struct sb_json *m)
{
    const struct sb_json *id = GET(m, "tool_call_id"), *name, *obj = NULL;
    struct sb_json_limits lim = {.max_depth = SB_GEMINI_MAX_DEPTH, .max_bytes = 0};
    struct sb_error jerr;
    struct sb_slice text;
    if (!ISSTR(id))
        return bad(r, "messages", "a tool message needs a string 'tool_call_id'%s", NULL);
    name = call_name(r, idx, id->str);
    if (!name)
        return bad(r, "messages", "tool_call_id '%s' matches no earlier assistant tool call",
                   sb_arena_strndup(r->c->arena, id->str.p, id->str.len > 64 ? 64 : id->str.len));
    if (content_text(r, GET(m, "content"), "tool", &text) != SB_OK)
        return r->err->code;
    if (sb_json_parse(r->c->arena, text.p, text.len, &lim, (struct sb_json **)&obj, &jerr) !=
            SB_OK ||
        obj->type != SB_JSON_OBJECT)
        obj = NULL;
    if (!r->tool_open) {
        begin_content(r, "user");
        r->tool_open = true;
    }
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "functionResponse");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "name");
    sb_jw_str(r->w, name->str);
    sb_jw_key(r->w, "response");
    if (obj) {
        sb__gm_write_compact(r->w, obj); /* an object is the whole output (Gemini's rule) */
    } else {
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "output");
        sb_jw_str(r->w, text);
        sb_jw_obj_end(r->w);
    }
    sb_jw_obj_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static sb_err msg_system(struct req *r, size_t idx, const struct sb_json *m)
{
    (void)r, (void)idx, (void)m;
    return SB_OK; /* written as systemInstruction */
}

static const struct {
    const char *role;
    sb_err (*write)(struct req *r, size_t idx, const struct sb_json *m);
} roles[] = {
    {"user", msg_user},     {"assistant", msg_assistant}, {"tool", msg_tool},
    {"system", msg_system}, {"developer", msg_system},
};

static sb_err write_message(struct req *r, size_t idx, const struct sb_json *m)
{
    const struct sb_json *role = GET(m, "role");
    for (size_t i = 0; ISSTR(role) && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (sb_slice_eq_cstr(role->str, roles[i].role)) {
            if (roles[i].write != msg_tool)
                close_tool(r);
            return roles[i].write(r, idx, m);
        }
    return bad(r, "messages", "message role '%s' is not supported by gemini",
               ISSTR(role) ? sb_arena_strndup(r->c->arena, role->str.p, role->str.len) : "?");
}

static sb_err write_contents(struct req *r)
{
    sb_jw_key(r->w, "contents");
    sb_jw_arr_begin(r->w);
    for (size_t i = 0; i < r->msgs->count; i++)
        if (write_message(r, i, AT(r->msgs, i)) != SB_OK)
            return r->err->code;
    close_tool(r);
    sb_jw_arr_end(r->w);
    return SB_OK;
}

static bool is_system(const struct sb_json *m)
{
    const struct sb_json *role = GET(m, "role");
    return ISSTR(role) &&
           (sb_slice_eq_cstr(role->str, "system") || sb_slice_eq_cstr(role->str, "developer"));
}

static sb_err write_system(struct req *r)
{
    bool any = false;
    for (const struct sb_json *m = r->msgs->child; m; m = m->next) {
        struct sb_slice text;
        if (!is_system(m))
            continue;
        if (content_text(r, GET(m, "content"), "system", &text) != SB_OK)
            return r->err->code;
        if (!any) {
            sb_jw_key(r->w, "systemInstruction");
            sb_jw_obj_begin(r->w);
            sb_jw_key(r->w, "parts");
            sb_jw_arr_begin(r->w);
            any = true;
        }
        sb_jw_obj_begin(r->w);
        sb_jw_key(r->w, "text");
        sb_jw_str(r->w, text);
        sb_jw_obj_end(r->w);
    }
    if (any) {
        sb_jw_arr_end(r->w);
        sb_jw_obj_end(r->w);
    }
    return SB_OK;
}

/* ==================================================================
 * Tools
 * ================================================================== */

static sb_err write_declaration(struct req *r, const struct sb_json *tool)
{
    const struct sb_json *type = GET(tool, "type"), *fn = GET(tool, "function");
    const struct sb_json *name = GET(fn, "name"), *desc = GET(fn, "description");
    const struct sb_json *params = GET(fn, "parameters");
    if (!ISSTR(type) || !sb_slice_eq_cstr(type->str, "function"))
        return bad(r, "tools", "only tools of type 'function' are supported by gemini%s", NULL);
    if (!ISSTR(name))
        return bad(r, "tools", "a function tool needs function.name%s", NULL);
    if (present(params) && params->type != SB_JSON_OBJECT)
        return bad(r, "tools", "function.parameters must be a JSON Schema object%s", NULL);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "name");
    sb_jw_str(r->w, name->str);
    if (ISSTR(desc)) {
        sb_jw_key(r->w, "description");
        sb_jw_str(r->w, desc->str);
    }
    if (present(params)) {
        sb_jw_key(r->w, "parametersJsonSchema");
        sb__gm_write_compact(r->w, params);
    }
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static sb_err write_tools(struct req *r)
{
    const struct sb_json *tools = GET(r->c->json, "tools");
    if (!present(tools))
        return SB_OK;
    if (tools->type != SB_JSON_ARRAY)
        return bad(r, "tools", "'tools' must be an array%s", NULL);
    if (!tools->count)
        return SB_OK;
    sb_jw_key(r->w, "tools");
    sb_jw_arr_begin(r->w);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "functionDeclarations");
    sb_jw_arr_begin(r->w);
    for (const struct sb_json *t = tools->child; t; t = t->next)
        if (write_declaration(r, t) != SB_OK)
            return r->err->code;
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    sb_jw_arr_end(r->w);
    return SB_OK;
}

static const struct {
    const char *openai, *gemini;
} tool_modes[] = {{"auto", "AUTO"}, {"none", "NONE"}, {"required", "ANY"}};

/* tool_choice → toolConfig.functionCallingConfig {mode, allowedFunctionNames}. */
static sb_err write_tool_choice(struct req *r)
{
    const struct sb_json *tc = GET(r->c->json, "tool_choice"), *only = NULL;
    const char *mode = NULL;
    if (!present(tc))
        return SB_OK;
    for (size_t i = 0; ISSTR(tc) && i < sizeof(tool_modes) / sizeof(tool_modes[0]); i++)
        if (sb_slice_eq_cstr(tc->str, tool_modes[i].openai))
            mode = tool_modes[i].gemini;
    if (tc->type == SB_JSON_OBJECT) {
        const struct sb_json *type = GET(tc, "type");
        only = GET(GET(tc, "function"), "name");
        mode = ISSTR(type) && sb_slice_eq_cstr(type->str, "function") && ISSTR(only) ? "ANY" : NULL;
    }
    if (!mode)
        return bad(r, "tool_choice",
                   "tool_choice must be auto, none, required or {\"type\":\"function\","
                   "\"function\":{\"name\":...}} for gemini%s",
                   NULL);
    sb_jw_key(r->w, "toolConfig");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "functionCallingConfig");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "mode");
    sb_jw_cstr(r->w, mode);
    if (only) {
        sb_jw_key(r->w, "allowedFunctionNames");
        sb_jw_arr_begin(r->w);
        sb_jw_str(r->w, only->str);
        sb_jw_arr_end(r->w);
    }
    sb_jw_obj_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

/* ==================================================================
 * generationConfig
 * ================================================================== */

/* DESIGN.md §6: low | medium | high → a thinking budget; summaries come back as reasoning. */
static const struct {
    const char *effort;
    int budget;
} efforts[] = {{"low", 1024}, {"medium", 4096}, {"high", 16384}};

static const struct {
    const char *openai, *gemini;
    bool integer;
} numbers[] = {
    {"temperature", "temperature", false},
    {"top_p", "topP", false},
    {"presence_penalty", "presencePenalty", false},
    {"frequency_penalty", "frequencyPenalty", false},
    {"seed", "seed", true},
};

static sb_err gen_numbers(struct req *r, struct sb_jw *g)
{
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        const struct sb_json *v = GET(r->c->json, numbers[i].openai);
        int64_t n;
        if (!present(v))
            continue;
        if (v->type != SB_JSON_NUMBER || (numbers[i].integer && !sb_json_int64(v, &n)))
            return bad(r, numbers[i].openai, "'%s' must be a number", numbers[i].openai);
        sb_jw_key(g, numbers[i].gemini);
        sb_jw_raw(g, v->raw);
    }
    return SB_OK;
}

/* The thinking budget reasoning_effort asks for, or 0 (none, or a value gen_thinking refuses). */
static int64_t thinking_budget(const struct sb_call *c)
{
    const struct sb_json *re = GET(c->json, "reasoning_effort");
    for (size_t i = 0; ISSTR(re) && i < sizeof(efforts) / sizeof(efforts[0]); i++)
        if (sb_slice_eq_cstr(re->str, efforts[i].effort))
            return efforts[i].budget;
    return 0;
}

/*
 * Gemini counts thinking tokens inside maxOutputTokens, so with a thinking
 * budget the budget is added to the asked-for output (DESIGN.md §6), capped
 * at the model's max_output_tokens when the registry knows it.
 */
static sb_err gen_max_tokens(struct req *r, struct sb_jw *g)
{
    const struct sb_json *mt = GET(r->c->json, "max_completion_tokens");
    const char *mt_name = "max_completion_tokens";
    int64_t max, budget = thinking_budget(r->c), cap = r->c->model->max_output_tokens;
    if (!present(mt)) {
        mt = GET(r->c->json, "max_tokens");
        mt_name = "max_tokens";
    }
    if (!present(mt))
        return SB_OK;
    if (!sb_json_int64(mt, &max) || max < 1)
        return bad(r, mt_name, "'%s' must be a positive integer", mt_name);
    max += budget;
    if (budget && cap > 0 && max > cap)
        max = cap;
    sb_jw_key(g, "maxOutputTokens");
    sb_jw_int(g, max);
    return SB_OK;
}

static sb_err gen_stop(struct req *r, struct sb_jw *g)
{
    const struct sb_json *stop = GET(r->c->json, "stop");
    if (!present(stop))
        return SB_OK;
    if (stop->type != SB_JSON_STRING && stop->type != SB_JSON_ARRAY)
        return bad(r, "stop", "'stop' must be a string or an array of strings%s", NULL);
    for (size_t i = 0; stop->type == SB_JSON_ARRAY && i < stop->count; i++)
        if (!ISSTR(AT(stop, i)))
            return bad(r, "stop", "'stop' must be a string or an array of strings%s", NULL);
    sb_jw_key(g, "stopSequences");
    sb_jw_arr_begin(g);
    if (stop->type == SB_JSON_STRING)
        sb_jw_str(g, stop->str);
    for (size_t i = 0; stop->type == SB_JSON_ARRAY && i < stop->count; i++)
        sb_jw_str(g, AT(stop, i)->str);
    sb_jw_arr_end(g);
    return SB_OK;
}

/* json_object → responseMimeType; json_schema → also responseJsonSchema (JSON Schema, as sent). */
static sb_err gen_format(struct req *r, struct sb_jw *g)
{
    const struct sb_json *rf = GET(r->c->json, "response_format");
    const struct sb_json *type = GET(rf, "type");
    const struct sb_json *schema = GET(GET(rf, "json_schema"), "schema");
    if (!present(rf))
        return SB_OK;
    if (!ISSTR(type))
        return bad(r, "response_format", "response_format needs a 'type'%s", NULL);
    if (sb_slice_eq_cstr(type->str, "text"))
        return SB_OK;
    bool is_schema = sb_slice_eq_cstr(type->str, "json_schema");
    if (!is_schema && !sb_slice_eq_cstr(type->str, "json_object"))
        return bad(r, "response_format",
                   "response_format type must be text, json_object or "
                   "json_schema%s",
                   NULL);
    if (is_schema && (!schema || schema->type != SB_JSON_OBJECT))
        return bad(r, "response_format", "json_schema needs a 'schema' object%s", NULL);
    sb_jw_key(g, "responseMimeType");
    sb_jw_cstr(g, "application/json");
    if (is_schema) {
        sb_jw_key(g, "responseJsonSchema");
        sb__gm_write_compact(g, schema);
    }
    return SB_OK;
}

static sb_err gen_thinking(struct req *r, struct sb_jw *g)
{
    const struct sb_json *re = GET(r->c->json, "reasoning_effort");
    if (!present(re))
        return SB_OK;
    for (size_t i = 0; ISSTR(re) && i < sizeof(efforts) / sizeof(efforts[0]); i++)
        if (sb_slice_eq_cstr(re->str, efforts[i].effort)) {
            sb_jw_key(g, "thinkingConfig");
            sb_jw_obj_begin(g);
            sb_jw_key(g, "thinkingBudget");
            sb_jw_int(g, efforts[i].budget);
            sb_jw_key(g, "includeThoughts");
            sb_jw_bool(g, true);
            sb_jw_obj_end(g);
            return SB_OK;
        }
    return bad(r, "reasoning_effort", "reasoning_effort must be low, medium or high for gemini%s",
               NULL);
}

static sb_err write_generation(struct req *r)
{
    static sb_err (*const parts[])(struct req *, struct sb_jw *) = {
        gen_numbers, gen_max_tokens, gen_stop, gen_format, gen_thinking};
    struct sb_buf b;
    struct sb_jw g;
    sb_err rc = SB_OK;
    sb_buf_init(&b, 0);
    sb_jw_init(&g, &b);
    sb_jw_obj_begin(&g);
    for (size_t i = 0; rc == SB_OK && i < sizeof(parts) / sizeof(parts[0]); i++)
        rc = parts[i](r, &g);
    sb_jw_obj_end(&g);
    if (rc == SB_OK && b.len > 2) {
        sb_jw_key(r->w, "generationConfig");
        sb_jw_raw(r->w, sb_buf_slice(&b));
    }
    sb_buf_free(&b);
    return rc;
}

/* ==================================================================
 * Fields Gemini cannot honour: refused, never dropped
 * ================================================================== */

static bool is_true(const struct sb_json *v)
{
    return v && v->type == SB_JSON_TRUE;
}

static bool not_one(const struct sb_json *v)
{
    int64_t n;
    return present(v) && !(sb_json_int64(v, &n) && n == 1);
}

/* Any output modality other than text. */
static bool not_text(const struct sb_json *v)
{
    if (!present(v))
        return false;
    for (size_t i = 0; v->type == SB_JSON_ARRAY && i < v->count; i++)
        if (!ISSTR(AT(v, i)) || !sb_slice_eq_cstr(AT(v, i)->str, "text"))
            return true;
    return v->type != SB_JSON_ARRAY;
}

static const struct {
    const char *field;
    bool (*refused)(const struct sb_json *v);
    const char *why;
} refusals[] = {
    {"n", not_one, "gemini returns one choice per request ('n' must be 1)"},
    {"logprobs", is_true, "'logprobs' is not supported by the gemini adapter"},
    {"top_logprobs", present, "'top_logprobs' is not supported by the gemini adapter"},
    {"logit_bias", present, "'logit_bias' is not supported by gemini"},
    {"audio", present, "audio output ('audio') is not supported by the gemini adapter"},
    {"modalities", not_text, "only text output ('modalities') is supported by the gemini adapter"},
    {"prediction", present, "'prediction' is not supported by gemini"},
    {"web_search_options", present, "'web_search_options' is not supported by the gemini adapter"},
    {"functions", present, "'functions' is not supported by the gemini adapter: use 'tools'"},
    {"function_call", present,
     "'function_call' is not supported by the gemini adapter: use 'tool_choice'"},
};

static sb_err check_refusals(struct req *r)
{
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        if (refusals[i].refused(GET(r->c->json, refusals[i].field)))
            return sb_fail_field(r->err, SB_E_BAD_REQUEST, refusals[i].field, "%s",
                                 refusals[i].why);
    return SB_OK;
}

/* ==================================================================
 * Bodies and the request
 * ================================================================== */

static sb_err chat_body(struct req *r)
{
    static sb_err (*const steps[])(struct req *) = {check_refusals,    write_contents,
                                                    write_system,      write_tools,
                                                    write_tool_choice, write_generation};
    r->msgs = GET(r->c->json, "messages");
    if (!r->msgs || r->msgs->type != SB_JSON_ARRAY || !r->msgs->count)
        return bad(r, "messages", "'messages' must be a non-empty array%s", NULL);
    sb_jw_obj_begin(r->w);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i](r) != SB_OK)
            return r->err->code;
    sb_jw_obj_end(r->w);
    return SB_OK;
}

/* One {"model","content":{"parts":[{"text"}]},"outputDimensionality"?} entry. */
static void embed_entry(struct req *r, struct sb_slice text, const struct sb_json *dims)
{
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "model");
    sb_jw_cstr(r->w, sb_arena_printf(r->c->arena, "models/%s", sb__gm_model(r->c)));
    sb_jw_key(r->w, "content");
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "parts");
    sb_jw_arr_begin(r->w);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "text");
    sb_jw_str(r->w, text);
    sb_jw_obj_end(r->w);
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    if (dims) {
        sb_jw_key(r->w, "outputDimensionality");
        sb_jw_raw(r->w, dims->raw);
    }
    sb_jw_obj_end(r->w);
}

/* OpenAI embeddings → batchEmbedContents {"requests":[...]}, one entry per input, in order. */
static sb_err embed_body(struct req *r)
{
    const struct sb_json *in = GET(r->c->json, "input"), *dims = GET(r->c->json, "dimensions");
    const struct sb_json *fmt = GET(r->c->json, "encoding_format");
    int64_t d;
    if (present(dims) && (!sb_json_int64(dims, &d) || d < 1))
        return bad(r, "dimensions", "'dimensions' must be a positive integer%s", NULL);
    if (present(fmt) && (!ISSTR(fmt) || (!sb_slice_eq_cstr(fmt->str, "float") &&
                                         !sb_slice_eq_cstr(fmt->str, "base64"))))
        return bad(r, "encoding_format", "encoding_format must be float or base64%s", NULL);
    if (!in || (!ISSTR(in) && (in->type != SB_JSON_ARRAY || !in->count)))
        return bad(r, "input", "'input' must be a string or a non-empty array of strings%s", NULL);
    for (size_t i = 0; in->type == SB_JSON_ARRAY && i < in->count; i++)
        if (!ISSTR(AT(in, i)))
            return bad(r, "input",
                       "gemini embeds text only: 'input' must hold strings, not "
                       "token arrays%s",
                       NULL);
    sb_jw_obj_begin(r->w);
    sb_jw_key(r->w, "requests");
    sb_jw_arr_begin(r->w);
    if (ISSTR(in))
        embed_entry(r, in->str, present(dims) ? dims : NULL);
    for (size_t i = 0; in->type == SB_JSON_ARRAY && i < in->count; i++)
        embed_entry(r, AT(in, i)->str, present(dims) ? dims : NULL);
    sb_jw_arr_end(r->w);
    sb_jw_obj_end(r->w);
    return SB_OK;
}

static const char *url_for(const struct sb_call *c)
{
    const char *verb = c->op == SB_OP_EMBEDDINGS ? "batchEmbedContents"
                       : c->stream               ? "streamGenerateContent?alt=sse"
                                                 : "generateContent";
    return sb_arena_printf(c->arena, "%s/models/%s:%s", c->provider->base_url, sb__gm_model(c),
                           verb);
}

static sb_err gemini_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                   struct sb_error *err)
{
    struct sb_buf b;
    struct sb_jw w;
    struct req r = {.c = c, .w = &w, .err = err};
    memset(out, 0, sizeof(*out));
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_err rc = c->op == SB_OP_EMBEDDINGS ? embed_body(&r) : chat_body(&r);
    if (rc == SB_OK && w.err != SB_OK)
        rc = sb_fail(err, SB_E_BAD_REQUEST, "request is nested too deeply for gemini");
    if (rc == SB_OK)
        out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = url_for(c);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    /* auth api_key: the x-goog-api-key header; auth query: ?key= (that URL is never logged). */
    struct sb_upstream_auth_opts o = {
        .key_name = c->provider->auth == SB_AUTH_QUERY ? "key" : "x-goog-api-key"};
    return sb_upstream_auth_apply(c->provider, &o, c->arena, out, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_gemini_ops = {
    .type = "gemini",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/models/{model}:generateContent",
    .models_path = "/models", /* models.list: {"models":[{"name":"models/..."}]} */
    .build_request = gemini_build_request,
    .parse_response = sb__gm_parse_response,
    .stream_open = sb__gm_stream_open,
    .stream_feed = sb__gm_stream_feed,
    .stream_finish = sb__gm_stream_finish,
    .map_error = sb__gm_map_error,
};
