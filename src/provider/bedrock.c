/* SPDX-License-Identifier: MIT */
/*
 * bedrock.c - the `bedrock` adapter: AWS Bedrock Converse / ConverseStream, requests.
 *
 * Translates the client's OpenAI Chat Completions body into a Converse body
 * (system blocks, messages of content blocks, inferenceConfig, toolConfig)
 * and an Embeddings body into an InvokeModel body (Titan or Cohere embed).
 * The model id rides the URL path: it is percent-encoded here once, every
 * byte outside RFC 3986's unreserved set, so an ARN's ':' and '/' become
 * %3A and %2F; sigv4.c then signs the double-encoded form, as the AWS SDKs
 * do, and the path we sign is the path we send. Auth is SigV4 (service
 * "bedrock") over the final body, applied last by upstream_auth.c.
 *
 * OpenAI fields Bedrock cannot honour (n > 1, logprobs, penalties, JSON
 * mode, http image URLs...) are refused with a 400 naming the field, never
 * dropped. Answers are translated back in bedrock_reply.c. Pure bytes: no
 * sockets, no timers, no logging; all memory from the call's arena.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/bedrock_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"

#define DEFAULT_MAX_TOKENS 4096 /* output room added to a thinking budget when none was asked */

#define jget sb__bedrock_get
#define jis sb__bedrock_is

/* One translation in progress: the writer and the first error. */
struct tr {
    const struct sb_call *c;
    struct sb_jw w;
    struct sb_error *err;
    sb_err rc; /* first failure, sticky: later writes are harmless, the body is dropped */
};

static bool failed(struct tr *t)
{
    return t->rc != SB_OK;
}

static void bad(struct tr *t, const char *fmt, const char *a, const char *b)
{
    if (!failed(t))
        t->rc = sb_fail(t->err, SB_E_BAD_REQUEST, fmt, a, b);
}

const char *sb__bedrock_model(const struct sb_call *c)
{
    return c->model->upstream_model ? c->model->upstream_model : c->model->id;
}

/* ==================================================================
 * Parameters: what Bedrock can honour, refused by name otherwise
 * ================================================================== */

typedef bool (*param_ok)(const struct sb_json *v);

static bool any(const struct sb_json *v)
{
    (void)v;
    return true;
}

static bool is_one(const struct sb_json *v)
{
    int64_t n;
    return sb_json_int64(v, &n) && n == 1;
}

static bool is_false(const struct sb_json *v)
{
    return v->type == SB_JSON_FALSE;
}

static bool is_true(const struct sb_json *v)
{
    return v->type == SB_JSON_TRUE;
}

static bool is_zero(const struct sb_json *v)
{
    double d;
    return sb_json_double(v, &d) && d == 0.0;
}

/* response_format: only {"type":"text"}; Converse has no JSON mode. */
static bool is_text_format(const struct sb_json *v)
{
    const struct sb_json *t = jget(v, "type");
    return jis(t, SB_JSON_STRING) && sb_slice_eq_cstr(t->str, "text");
}

struct param {
    const char *name;
    param_ok ok; /* false: the value asks for something Bedrock cannot do */
};

static const struct param chat_params[] = {
    {"model", any},
    {"messages", any},
    {"stream", any},
    {"stream_options", any},
    {"user", any},
    {"max_tokens", any},
    {"max_completion_tokens", any},
    {"temperature", any},
    {"top_p", any},
    {"stop", any},
    {"tools", any},
    {"tool_choice", any},
    {"reasoning_effort", any},
    {"n", is_one},
    {"logprobs", is_false},
    {"presence_penalty", is_zero},
    {"frequency_penalty", is_zero},
    {"parallel_tool_calls", is_true},
    {"response_format", is_text_format},
};

static const struct param embed_params[] = {
    {"model", any}, {"input", any}, {"encoding_format", any}, {"dimensions", any}, {"user", any},
};

static sb_err check_params(const struct sb_json *root, const struct param *tab, size_t n,
                           struct sb_error *err)
{
    for (const struct sb_json *m = root->child; m; m = m->next) {
        size_t i = 0;
        while (i < n && !sb_slice_eq_cstr(m->key, tab[i].name))
            i++;
        if (m->type == SB_JSON_NULL)
            continue; /* null means "not set" to the OpenAI SDKs */
        if (i == n)
            return sb_fail_field(err, SB_E_BAD_REQUEST, "",
                                 "parameter '%.*s' is not supported by "
                                 "bedrock upstreams",
                                 (int)(m->key.len > 60 ? 60 : m->key.len), m->key.p);
        if (!tab[i].ok(m))
            return sb_fail_field(err, SB_E_BAD_REQUEST, tab[i].name,
                                 "parameter '%s' has a value bedrock upstreams cannot honour",
                                 tab[i].name);
    }
    return SB_OK;
}

/* ==================================================================
 * Content blocks
 * ================================================================== */

static void text_block(struct tr *t, struct sb_slice text)
{
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "text");
    sb_jw_str(&t->w, text);
    sb_jw_obj_end(&t->w);
}

static const struct {
    const char *mime;   /* after "data:" */
    const char *format; /* Bedrock's ImageFormat */
} image_formats[] = {
    {"image/png", "png"}, {"image/jpeg", "jpeg"}, {"image/jpg", "jpeg"},
    {"image/gif", "gif"}, {"image/webp", "webp"},
};

static bool base64_chars(struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '=';
        if (!ok)
            return false;
    }
    return s.len > 0;
}

/* data:image/png;base64,XXXX → {"image":{"format":"png","source":{"bytes":"XXXX"}}} */
static void image_block(struct tr *t, struct sb_slice url)
{
    const char *fmt = NULL;
    size_t skip = 0;
    for (size_t i = 0; !fmt && i < sizeof(image_formats) / sizeof(image_formats[0]); i++) {
        char prefix[48];
        int n = snprintf(prefix, sizeof(prefix), "data:%s;base64,", image_formats[i].mime);
        if (sb_slice_starts_with(url, (struct sb_slice){prefix, (size_t)n})) {
            fmt = image_formats[i].format;
            skip = (size_t)n;
        }
    }
    if (!fmt) {
        bad(t, "%s%s",
            "image_url: bedrock accepts only base64 data URLs of png, jpeg, gif or webp ",
            "images (data:image/png;base64,...), not http(s) URLs");
        return;
    }
    struct sb_slice data = {url.p + skip, url.len - skip};
    if (!base64_chars(data)) {
        bad(t, "%s%s", "image_url: the data URL is not valid base64", "");
        return;
    }
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "image");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "format");
    sb_jw_cstr(&t->w, fmt);
    sb_jw_key(&t->w, "source");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "bytes");
    sb_jw_str(&t->w, data);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
}

/* One element of an OpenAI content array; images only where allowed. */
static void content_part(struct tr *t, const struct sb_json *part, bool images)
{
    const struct sb_json *type = jget(part, "type");
    const struct sb_json *text = jget(part, "text");
    const struct sb_json *url = jget(jget(part, "image_url"), "url");
    if (jis(type, SB_JSON_STRING) && sb_slice_eq_cstr(type->str, "text") &&
        jis(text, SB_JSON_STRING))
        text_block(t, text->str);
    else if (images && jis(type, SB_JSON_STRING) && sb_slice_eq_cstr(type->str, "image_url") &&
             jis(url, SB_JSON_STRING))
        image_block(t, url->str);
    else
        bad(t, "content part of type '%s' is not supported by bedrock here%s",
            jis(type, SB_JSON_STRING) ? sb_arena_strndup(t->c->arena, type->str.p,
                                                         type->str.len > 40 ? 40 : type->str.len)
                                      : "?",
            images ? "" : " (text only)");
}

/* A message's "content": a string or an array of parts; null writes nothing. Returns blocks. */
static size_t content_blocks(struct tr *t, const struct sb_json *content, bool images)
{
    if (!content || content->type == SB_JSON_NULL)
        return 0;
    if (content->type == SB_JSON_STRING) {
        if (content->str.len == 0)
            return 0; /* Converse refuses blank text blocks */
        text_block(t, content->str);
        return 1;
    }
    if (content->type != SB_JSON_ARRAY) {
        bad(t, "%s%s", "message content must be a string or an array of parts", "");
        return 0;
    }
    for (const struct sb_json *p = content->child; p; p = p->next)
        content_part(t, p, images);
    return content->count;
}

/* thinking_blocks → reasoningContent blocks, signature and text untouched (DESIGN.md §6). */
static size_t thinking_blocks(struct tr *t, const struct sb_json *blocks)
{
    size_t n = 0;
    for (const struct sb_json *b = blocks && blocks->type == SB_JSON_ARRAY ? blocks->child : NULL;
         b; b = b->next, n++) {
        const struct sb_json *type = jget(b, "type");
        const struct sb_json *text = jget(b, "thinking"), *sig = jget(b, "signature");
        const struct sb_json *data = jget(b, "data");
        bool redacted =
            jis(type, SB_JSON_STRING) && sb_slice_eq_cstr(type->str, "redacted_thinking");
        if (redacted ? !jis(data, SB_JSON_STRING)
                     : !jis(text, SB_JSON_STRING) || !jis(sig, SB_JSON_STRING)) {
            bad(t, "%s%s", "thinking_blocks: each block needs type thinking with thinking and ",
                "signature strings, or type redacted_thinking with data");
            return n;
        }
        sb_jw_obj_begin(&t->w);
        sb_jw_key(&t->w, "reasoningContent");
        sb_jw_obj_begin(&t->w);
        if (redacted) {
            sb_jw_key(&t->w, "redactedContent");
            sb_jw_str(&t->w, data->str);
        } else {
            sb_jw_key(&t->w, "reasoningText");
            sb_jw_obj_begin(&t->w);
            sb_jw_key(&t->w, "text");
            sb_jw_str(&t->w, text->str);
            sb_jw_key(&t->w, "signature");
            sb_jw_str(&t->w, sig->str);
            sb_jw_obj_end(&t->w);
        }
        sb_jw_obj_end(&t->w);
        sb_jw_obj_end(&t->w);
    }
    return n;
}

/* One assistant tool call → {"toolUse":{"toolUseId","name","input":{...}}}. */
static void tool_use_block(struct tr *t, const struct sb_json *call)
{
    const struct sb_json *id = jget(call, "id"), *fn = jget(call, "function");
    const struct sb_json *name = jget(fn, "name"), *args = jget(fn, "arguments");
    struct sb_json_limits lim = {.max_depth = SB__BEDROCK_MAX_DEPTH, .max_bytes = 0};
    struct sb_json *input = NULL;
    struct sb_error jerr;
    if (!jis(id, SB_JSON_STRING) || !jis(name, SB_JSON_STRING)) {
        bad(t, "%s%s", "tool_calls: each call needs an id and a function name", "");
        return;
    }
    bool empty =
        !args || args->type == SB_JSON_NULL || (args->type == SB_JSON_STRING && args->str.len == 0);
    if (!empty &&
        (!jis(args, SB_JSON_STRING) ||
         sb_json_parse(t->c->arena, args->str.p, args->str.len, &lim, &input, &jerr) != SB_OK ||
         input->type != SB_JSON_OBJECT)) {
        bad(t, "%s%s", "tool_calls: function.arguments must be a JSON object in a string", "");
        return;
    }
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "toolUse");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "toolUseId");
    sb_jw_str(&t->w, id->str);
    sb_jw_key(&t->w, "name");
    sb_jw_str(&t->w, name->str);
    sb_jw_key(&t->w, "input");
    sb_jw_raw(&t->w, empty ? SB_SLICE("{}") : input->raw);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
}

static size_t assistant_blocks(struct tr *t, const struct sb_json *m)
{
    /* Blocks another provider signed are left out, not forwarded. */
    size_t n = t->c->foreign_signatures ? 0 : thinking_blocks(t, jget(m, "thinking_blocks"));
    n += content_blocks(t, jget(m, "content"), false);
    const struct sb_json *calls = jget(m, "tool_calls");
    if (calls && calls->type != SB_JSON_NULL && calls->type != SB_JSON_ARRAY)
        bad(t, "%s%s", "tool_calls must be an array", "");
    for (const struct sb_json *k = jis(calls, SB_JSON_ARRAY) ? calls->child : NULL; k; k = k->next)
        tool_use_block(t, k);
    return n + (jis(calls, SB_JSON_ARRAY) ? calls->count : 0);
}

/* role "tool" → {"toolResult":{"toolUseId","content":[{"text"}...]}} inside a user message. */
static size_t tool_result_block(struct tr *t, const struct sb_json *m)
{
    const struct sb_json *id = jget(m, "tool_call_id"), *content = jget(m, "content");
    if (!jis(id, SB_JSON_STRING)) {
        bad(t, "%s%s", "a tool message needs a tool_call_id", "");
        return 0;
    }
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "toolResult");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "toolUseId");
    sb_jw_str(&t->w, id->str);
    sb_jw_key(&t->w, "content");
    sb_jw_arr_begin(&t->w);
    if (jis(content, SB_JSON_STRING))
        text_block(t, content->str); /* kept even when empty: the result is the empty string */
    else
        content_blocks(t, content, false);
    sb_jw_arr_end(&t->w);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
    return 1;
}

/* ==================================================================
 * Messages and system
 * ================================================================== */

enum role { R_SYSTEM, R_USER, R_ASSISTANT, R_TOOL, R_BAD };

static enum role role_of(const struct sb_json *m)
{
    static const struct {
        const char *name;
        enum role r;
    } roles[] = {{"system", R_SYSTEM},
                 {"developer", R_SYSTEM},
                 {"user", R_USER},
                 {"assistant", R_ASSISTANT},
                 {"tool", R_TOOL}};
    const struct sb_json *r = jget(m, "role");
    for (size_t i = 0; jis(r, SB_JSON_STRING) && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (sb_slice_eq_cstr(r->str, roles[i].name))
            return roles[i].r;
    return R_BAD;
}

static void put_system(struct tr *t, const struct sb_json *msgs)
{
    bool any_system = false;
    for (const struct sb_json *m = msgs->child; m && !any_system; m = m->next)
        any_system = role_of(m) == R_SYSTEM;
    if (!any_system)
        return;
    sb_jw_key(&t->w, "system");
    sb_jw_arr_begin(&t->w);
    for (const struct sb_json *m = msgs->child; m; m = m->next)
        if (role_of(m) == R_SYSTEM)
            content_blocks(t, jget(m, "content"), false);
    sb_jw_arr_end(&t->w);
}

/*
 * Converse wants strict user/assistant alternation, and tool results in a
 * user message: consecutive messages that map to the same Bedrock role are
 * merged into one message, their blocks in order (the N tool results of a
 * parallel call become one user message with N toolResult blocks).
 */
static void put_messages(struct tr *t, const struct sb_json *msgs)
{
    enum role open = R_BAD; /* the Bedrock role of the message being written */
    size_t blocks = 0;
    sb_jw_key(&t->w, "messages");
    sb_jw_arr_begin(&t->w);
    for (const struct sb_json *m = msgs->child; m && !failed(t); m = m->next) {
        enum role r = role_of(m);
        if (r == R_SYSTEM)
            continue;
        if (r == R_BAD) {
            bad(t, "%s%s", "each message needs a role: system, developer, user, assistant or tool",
                "");
            break;
        }
        enum role br = r == R_TOOL ? R_USER : r;
        if (br != open) {
            if (open != R_BAD) {
                sb_jw_arr_end(&t->w);
                sb_jw_obj_end(&t->w);
                if (blocks == 0)
                    bad(t, "%s%s", "a message has no content bedrock can send", "");
            }
            sb_jw_obj_begin(&t->w);
            sb_jw_key(&t->w, "role");
            sb_jw_cstr(&t->w, br == R_USER ? "user" : "assistant");
            sb_jw_key(&t->w, "content");
            sb_jw_arr_begin(&t->w);
            open = br;
            blocks = 0;
        }
        blocks += r == R_TOOL        ? tool_result_block(t, m)
                  : r == R_ASSISTANT ? assistant_blocks(t, m)
                                     : content_blocks(t, jget(m, "content"), true);
    }
    if (open != R_BAD) {
        sb_jw_arr_end(&t->w);
        sb_jw_obj_end(&t->w);
        if (blocks == 0)
            bad(t, "%s%s", "a message has no content bedrock can send", "");
    }
    sb_jw_arr_end(&t->w);
}

/* ==================================================================
 * inferenceConfig, toolConfig, thinking
 * ================================================================== */

static const struct {
    const char *effort;
    int64_t budget; /* DESIGN.md §6 */
} efforts[] = {{"low", 1024}, {"medium", 4096}, {"high", 16384}};

static int64_t thinking_budget(struct tr *t)
{
    const struct sb_json *e = jget(t->c->json, "reasoning_effort");
    if (!e || e->type == SB_JSON_NULL)
        return 0;
    for (size_t i = 0; jis(e, SB_JSON_STRING) && i < sizeof(efforts) / sizeof(efforts[0]); i++)
        if (sb_slice_eq_cstr(e->str, efforts[i].effort))
            return efforts[i].budget;
    bad(t, "%s%s", "reasoning_effort must be low, medium or high", "");
    return 0;
}

/* max_completion_tokens wins over max_tokens; 0 when neither is set. */
static int64_t max_tokens(struct tr *t)
{
    const struct sb_json *m = jget(t->c->json, "max_completion_tokens");
    int64_t v = 0;
    if (!m || m->type == SB_JSON_NULL)
        m = jget(t->c->json, "max_tokens");
    if (!m || m->type == SB_JSON_NULL)
        return 0;
    if (!sb_json_int64(m, &v) || v < 1)
        bad(t, "%s%s", "max_tokens must be a positive integer", "");
    return v;
}

static void put_number(struct tr *t, const char *from, const char *to)
{
    const struct sb_json *v = jget(t->c->json, from);
    if (!v || v->type == SB_JSON_NULL)
        return;
    if (v->type != SB_JSON_NUMBER) {
        bad(t, "parameter '%s' must be a number%s", from, "");
        return;
    }
    sb_jw_key(&t->w, to);
    sb_jw_raw(&t->w, v->raw);
}

static void put_stop(struct tr *t, const struct sb_json *stop)
{
    sb_jw_key(&t->w, "stopSequences");
    sb_jw_arr_begin(&t->w);
    if (jis(stop, SB_JSON_STRING))
        sb_jw_str(&t->w, stop->str);
    for (const struct sb_json *s = jis(stop, SB_JSON_ARRAY) ? stop->child : NULL; s; s = s->next)
        if (jis(s, SB_JSON_STRING))
            sb_jw_str(&t->w, s->str);
        else
            bad(t, "%s%s", "stop must be a string or an array of strings", "");
    if (!jis(stop, SB_JSON_STRING) && !jis(stop, SB_JSON_ARRAY))
        bad(t, "%s%s", "stop must be a string or an array of strings", "");
    sb_jw_arr_end(&t->w);
}

/*
 * With thinking, the output budget must leave room beyond the thinking
 * budget (DESIGN.md §6): a max that would not fit is raised to budget + max.
 */
static void put_inference(struct tr *t, int64_t budget)
{
    int64_t max = max_tokens(t);
    const struct sb_json *stop = jget(t->c->json, "stop");
    bool has_stop = stop && stop->type != SB_JSON_NULL;
    if (budget && max <= budget)
        max = budget + (max ? max : DEFAULT_MAX_TOKENS);
    bool has_temp =
        jget(t->c->json, "temperature") && jget(t->c->json, "temperature")->type != SB_JSON_NULL;
    bool has_top = jget(t->c->json, "top_p") && jget(t->c->json, "top_p")->type != SB_JSON_NULL;
    if (!max && !has_stop && !has_temp && !has_top)
        return;
    sb_jw_key(&t->w, "inferenceConfig");
    sb_jw_obj_begin(&t->w);
    if (max) {
        sb_jw_key(&t->w, "maxTokens");
        sb_jw_int(&t->w, max);
    }
    put_number(t, "temperature", "temperature");
    put_number(t, "top_p", "topP");
    if (has_stop)
        put_stop(t, stop);
    sb_jw_obj_end(&t->w);
}

static void tool_spec(struct tr *t, const struct sb_json *tool)
{
    const struct sb_json *type = jget(tool, "type"), *fn = jget(tool, "function");
    const struct sb_json *name = jget(fn, "name"), *desc = jget(fn, "description");
    const struct sb_json *params = jget(fn, "parameters");
    if (!jis(type, SB_JSON_STRING) || !sb_slice_eq_cstr(type->str, "function") ||
        !jis(name, SB_JSON_STRING)) {
        bad(t, "%s%s", "tools: bedrock takes tools of type function with a name", "");
        return;
    }
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "toolSpec");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "name");
    sb_jw_str(&t->w, name->str);
    if (jis(desc, SB_JSON_STRING)) {
        sb_jw_key(&t->w, "description");
        sb_jw_str(&t->w, desc->str);
    }
    sb_jw_key(&t->w, "inputSchema");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "json");
    sb_jw_raw(&t->w, jis(params, SB_JSON_OBJECT)
                         ? params->raw
                         : SB_SLICE("{\"type\":\"object\",\"properties\":{}}"));
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
}

/* tool_choice → toolChoice: auto → auto, required → any, a named function → tool. */
static void tool_choice(struct tr *t, const struct sb_json *tc)
{
    const struct sb_json *name = jget(jget(tc, "function"), "name");
    if (!tc || tc->type == SB_JSON_NULL)
        return;
    sb_jw_key(&t->w, "toolChoice");
    sb_jw_obj_begin(&t->w);
    if (jis(tc, SB_JSON_STRING) && sb_slice_eq_cstr(tc->str, "auto")) {
        sb_jw_key(&t->w, "auto");
        sb_jw_raw(&t->w, SB_SLICE("{}"));
    } else if (jis(tc, SB_JSON_STRING) && sb_slice_eq_cstr(tc->str, "required")) {
        sb_jw_key(&t->w, "any");
        sb_jw_raw(&t->w, SB_SLICE("{}"));
    } else if (jis(name, SB_JSON_STRING)) {
        sb_jw_key(&t->w, "tool");
        sb_jw_obj_begin(&t->w);
        sb_jw_key(&t->w, "name");
        sb_jw_str(&t->w, name->str);
        sb_jw_obj_end(&t->w);
    } else {
        bad(t, "%s%s", "tool_choice must be auto, required, none or a named function", "");
    }
    sb_jw_obj_end(&t->w);
}

static bool history_has_tools(const struct sb_json *msgs)
{
    for (const struct sb_json *m = msgs->child; m; m = m->next) {
        const struct sb_json *calls = jget(m, "tool_calls");
        if (role_of(m) == R_TOOL || (jis(calls, SB_JSON_ARRAY) && calls->count))
            return true;
    }
    return false;
}

/*
 * Converse has no "none" choice. With no tool blocks in the conversation we
 * honour it by sending no tools at all; with them Bedrock needs the tool
 * list, and could then call one, so we refuse instead of pretending.
 */
static void put_tools(struct tr *t, const struct sb_json *msgs)
{
    const struct sb_json *tools = jget(t->c->json, "tools");
    const struct sb_json *tc = jget(t->c->json, "tool_choice");
    bool none = jis(tc, SB_JSON_STRING) && sb_slice_eq_cstr(tc->str, "none");
    if (!tools || tools->type == SB_JSON_NULL || (jis(tools, SB_JSON_ARRAY) && !tools->count)) {
        if (tc && tc->type != SB_JSON_NULL && !none)
            bad(t, "%s%s", "tool_choice needs tools", "");
        return;
    }
    if (!jis(tools, SB_JSON_ARRAY)) {
        bad(t, "%s%s", "tools must be an array", "");
        return;
    }
    if (none && history_has_tools(msgs))
        bad(t, "%s%s", "tool_choice 'none' cannot be honoured by bedrock once the conversation ",
            "holds tool calls; leave out tool_choice or the tools");
    if (none)
        return;
    sb_jw_key(&t->w, "toolConfig");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "tools");
    sb_jw_arr_begin(&t->w);
    for (const struct sb_json *k = tools->child; k; k = k->next)
        tool_spec(t, k);
    sb_jw_arr_end(&t->w);
    tool_choice(t, tc);
    sb_jw_obj_end(&t->w);
}

/* Claude on Bedrock takes extended thinking through additionalModelRequestFields. */
static void put_thinking(struct tr *t, int64_t budget)
{
    if (!budget)
        return;
    sb_jw_key(&t->w, "additionalModelRequestFields");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "thinking");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "type");
    sb_jw_cstr(&t->w, "enabled");
    sb_jw_key(&t->w, "budget_tokens");
    sb_jw_int(&t->w, budget);
    sb_jw_obj_end(&t->w);
    sb_jw_obj_end(&t->w);
}

static void chat_body(struct tr *t)
{
    const struct sb_json *msgs = jget(t->c->json, "messages");
    if (!jis(msgs, SB_JSON_ARRAY) || !msgs->count) {
        bad(t, "%s%s", "messages must be a non-empty array", "");
        return;
    }
    int64_t budget = thinking_budget(t);
    sb_jw_obj_begin(&t->w);
    put_messages(t, msgs);
    put_system(t, msgs);
    put_inference(t, budget);
    put_tools(t, msgs);
    put_thinking(t, budget);
    sb_jw_obj_end(&t->w);
}

/* ==================================================================
 * Embeddings: InvokeModel bodies
 * ================================================================== */

enum sb__bedrock_embed sb__bedrock_embed_family(const struct sb_call *c)
{
    const char *m = sb__bedrock_model(c);
    return strstr(m, "cohere.embed") ? SB__BEDROCK_COHERE : SB__BEDROCK_TITAN;
}

/* Titan: {"inputText": "...", "dimensions": n}; one input per call. */
static void titan_body(struct tr *t, const struct sb_json *input)
{
    const struct sb_json *one =
        jis(input, SB_JSON_ARRAY) && input->count == 1 ? input->child : input;
    if (!jis(one, SB_JSON_STRING)) {
        bad(t, "%s%s", "input: bedrock titan embeddings take one string per request ",
            "(use a cohere.embed model for batches)");
        return;
    }
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "inputText");
    sb_jw_str(&t->w, one->str);
    put_number(t, "dimensions", "dimensions");
    sb_jw_obj_end(&t->w);
}

/* Cohere embed on Bedrock: {"texts": [...], "input_type": "search_document"}. */
static void cohere_body(struct tr *t, const struct sb_json *input)
{
    if (jget(t->c->json, "dimensions") && jget(t->c->json, "dimensions")->type != SB_JSON_NULL)
        bad(t, "%s%s", "parameter 'dimensions' is not supported by cohere embed on bedrock", "");
    sb_jw_obj_begin(&t->w);
    sb_jw_key(&t->w, "texts");
    sb_jw_arr_begin(&t->w);
    if (jis(input, SB_JSON_STRING))
        sb_jw_str(&t->w, input->str);
    for (const struct sb_json *s = jis(input, SB_JSON_ARRAY) ? input->child : NULL; s; s = s->next)
        if (jis(s, SB_JSON_STRING))
            sb_jw_str(&t->w, s->str);
        else
            bad(t, "%s%s", "input: bedrock embeddings take strings, not token arrays", "");
    if (!jis(input, SB_JSON_STRING) && (!jis(input, SB_JSON_ARRAY) || !input->count))
        bad(t, "%s%s", "input must be a string or a non-empty array of strings", "");
    sb_jw_arr_end(&t->w);
    sb_jw_key(&t->w, "input_type");
    sb_jw_cstr(&t->w, "search_document");
    sb_jw_obj_end(&t->w);
}

static void embed_body(struct tr *t)
{
    const struct sb_json *input = jget(t->c->json, "input");
    const struct sb_json *fmt = jget(t->c->json, "encoding_format");
    if (fmt && fmt->type != SB_JSON_NULL &&
        !(jis(fmt, SB_JSON_STRING) &&
          (sb_slice_eq_cstr(fmt->str, "float") || sb_slice_eq_cstr(fmt->str, "base64"))))
        bad(t, "%s%s", "encoding_format must be float or base64", "");
    if (sb__bedrock_embed_family(t->c) == SB__BEDROCK_COHERE)
        cohere_body(t, input);
    else
        titan_body(t, input);
}

/* ==================================================================
 * The request
 * ================================================================== */

/* Every byte outside RFC 3986's unreserved set as %XX: the path segment of a model id or ARN. */
static void put_path_segment(struct sb_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (plain) {
            sb_buf_append_char(b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_buf_append(b, esc, 3);
        }
    }
}

static const char *request_url(const struct sb_call *c)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_cstr(&b, c->provider->base_url);
    sb_buf_append_cstr(&b, "/model/");
    put_path_segment(&b, sb__bedrock_model(c));
    sb_buf_append_cstr(&b, c->op == SB_OP_EMBEDDINGS ? "/invoke"
                           : c->stream               ? "/converse-stream"
                                                     : "/converse");
    const char *url = sb_arena_strndup(c->arena, b.p, b.len);
    sb_buf_free(&b);
    return url;
}

static sb_err translate(const struct sb_call *c, struct sb_slice *body, struct sb_error *err)
{
    struct tr t = {.c = c, .err = err, .rc = SB_OK};
    struct sb_buf b;
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    sb_err rc =
        c->op == SB_OP_EMBEDDINGS
            ? check_params(c->json, embed_params, sizeof(embed_params) / sizeof(*embed_params), err)
            : check_params(c->json, chat_params, sizeof(chat_params) / sizeof(*chat_params), err);
    if (rc != SB_OK)
        return rc;
    sb_buf_init(&b, 0);
    sb_jw_init(&t.w, &b);
    if (c->op == SB_OP_EMBEDDINGS)
        embed_body(&t);
    else
        chat_body(&t);
    if (t.rc == SB_OK && t.w.err != SB_OK)
        t.rc = sb_fail(err, SB_E_INTERNAL, "bedrock request body could not be written");
    if (t.rc == SB_OK)
        *body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return t.rc;
}

static sb_err bedrock_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                    struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    sb_err rc = translate(c, &out->body, err);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = request_url(c);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                c->stream && c->op == SB_OP_CHAT
                                    ? SB_SLICE("application/vnd.amazon.eventstream")
                                    : SB_SLICE("application/json"));
    struct sb_upstream_auth_opts o = {.service = "bedrock"};
    return sb_upstream_auth_apply(c->provider, &o, c->arena, out, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_bedrock_ops = {
    .type = "bedrock",
    .stream_format = SB_STREAM_AWS_EVENTSTREAM,
    .chat_path = "/model/{model}/converse",
    /* No models_path: ListFoundationModels lives on the bedrock control host, not runtime. */
    .build_request = bedrock_build_request,
    .parse_response = sb__bedrock_parse_response,
    .stream_open = sb__bedrock_stream_open,
    .stream_feed = sb__bedrock_stream_feed,
    .stream_finish = sb__bedrock_stream_finish,
    .map_error = sb__bedrock_map_error,
};
