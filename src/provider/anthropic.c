/* SPDX-License-Identifier: MIT */
/*
 * anthropic.c - the `anthropic` adapter: Chat Completions in, Messages API out.
 *
 * This file builds POST {base_url}/v1/messages (x-api-key, anthropic-version
 * 2023-06-01) from the client's OpenAI body and holds the adapter's table
 * row; anthropic_resp.c and anthropic_stream.c translate the answers back.
 * The body is written fresh with our JSON writer in a fixed member order
 * (model, max_tokens, system, messages, tools, ...), so the upstream bytes
 * are predictable and golden-testable.
 *
 * Every client member is either translated, or refused with a 400 naming
 * it: a top-level table says which. Reasoning follows DESIGN.md section 6:
 * reasoning_effort becomes a thinking budget, the settings thinking forbids
 * are changed and listed in sb_upstream_req.adjusted, and thinking_blocks
 * sent back go first in the assistant turn exactly as they came, while
 * reasoning_content alone is never made into an unsigned block.
 *
 * Pure transformation of bytes: no sockets, no timers, no logging.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/anthropic_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"

#define API_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096 /* when neither the client nor the registry gives one */

/* One translation in progress. */
struct xl {
    const struct sb_call *c;
    const struct sb_json *root; /* the client's body */
    struct sb_jw *w;            /* the upstream body being written */
    struct sb_error *err;
    int64_t max_tokens;     /* what we send */
    int64_t budget;         /* thinking budget_tokens; 0 = thinking off */
    struct sb_buf adjusted; /* "name=value,..." of what thinking made us change */
};

/* A member of o that is present and not null (OpenAI SDKs treat null as absent). */
static const struct sb_json *field(const struct sb_json *o, const char *key)
{
    const struct sb_json *v = sb__anth_get(o, key);
    return v && v->type != SB_JSON_NULL ? v : NULL;
}

static sb_err bad(struct xl *x, const char *path, const char *why)
{
    return sb_fail_field(x->err, SB_E_BAD_REQUEST, path, "'%s' %s", path, why);
}

static void note_adjusted(struct xl *x, const char *what)
{
    if (x->adjusted.len)
        sb_buf_append_char(&x->adjusted, ',');
    sb_buf_append_cstr(&x->adjusted, what);
}

/* ==================================================================
 * Top-level members: translated, or refused
 * ================================================================== */

typedef bool (*is_default_fn)(const struct sb_json *v);

static bool is_one(const struct sb_json *v)
{
    int64_t n;
    return sb_json_int64(v, &n) && n == 1;
}

static bool is_false(const struct sb_json *v)
{
    return v->type == SB_JSON_FALSE;
}

static bool is_zero(const struct sb_json *v)
{
    double d;
    return sb_json_double(v, &d) && d == 0;
}

static bool is_empty(const struct sb_json *v)
{
    return (v->type == SB_JSON_OBJECT || v->type == SB_JSON_ARRAY) && v->count == 0;
}

static bool never(const struct sb_json *v)
{
    (void)v;
    return false;
}

/*
 * Every member a client may send. `fine` NULL: translated below. Otherwise
 * the member is accepted only while it asks for OpenAI's default, because
 * Anthropic has no equivalent and dropping it silently would lie.
 */
static const struct key_rule {
    const char *key;
    is_default_fn fine;
} key_rules[] = {
    {"model", NULL},
    {"messages", NULL},
    {"stream", NULL},
    {"stream_options", NULL},
    {"max_tokens", NULL},
    {"max_completion_tokens", NULL},
    {"temperature", NULL},
    {"top_p", NULL},
    {"stop", NULL},
    {"tools", NULL},
    {"tool_choice", NULL},
    {"parallel_tool_calls", NULL},
    {"user", NULL},
    {"reasoning_effort", NULL},
    {"response_format", NULL},
    {"n", is_one},
    {"logprobs", is_false},
    {"top_logprobs", never},
    {"store", is_false},
    {"presence_penalty", is_zero},
    {"frequency_penalty", is_zero},
    {"logit_bias", is_empty},
    {"seed", never},
    {"audio", never},
    {"modalities", never},
    {"functions", never},
    {"function_call", never},
    {"prediction", never},
    {"metadata", never},
    {"service_tier", never},
    {"web_search_options", never},
};

static sb_err check_keys(struct xl *x)
{
    for (const struct sb_json *m = x->root->child; m; m = m->next) {
        const struct key_rule *r = NULL;
        for (size_t i = 0; i < sizeof(key_rules) / sizeof(key_rules[0]) && !r; i++)
            if (sb_slice_eq_cstr(m->key, key_rules[i].key))
                r = &key_rules[i];
        if (!r)
            return sb_fail_field(x->err, SB_E_BAD_REQUEST, "",
                                 "parameter '%.*s' is not supported by anthropic upstreams",
                                 (int)(m->key.len > 60 ? 60 : m->key.len), m->key.p);
        if (r->fine && m->type != SB_JSON_NULL && !r->fine(m))
            return bad(x, r->key, "has no Anthropic equivalent; leave it out or at its default");
    }
    return SB_OK;
}

/* A positive integer member, or 0 when absent. */
static sb_err count_member(struct xl *x, const char *key, int64_t *out)
{
    const struct sb_json *v = field(x->root, key);
    *out = 0;
    if (v && (!sb_json_int64(v, out) || *out < 1))
        return bad(x, key, "must be a positive integer");
    return SB_OK;
}

/* ==================================================================
 * Thinking: reasoning_effort, max_tokens, and what thinking forbids
 * ================================================================== */

static const struct {
    const char *effort;
    int64_t budget; /* 0 = thinking off */
} efforts[] = {{"none", 0}, {"low", 1024}, {"medium", 4096}, {"high", 16384}};

static sb_err plan_tokens(struct xl *x)
{
    int64_t mt, mct;
    const struct sb_json *e = field(x->root, "reasoning_effort");
    if (count_member(x, "max_tokens", &mt) || count_member(x, "max_completion_tokens", &mct))
        return x->err->code;
    bool found = !e;
    for (size_t i = 0; e && i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (sb__anth_is_str(e) && sb_slice_eq_cstr(e->str, efforts[i].effort)) {
            x->budget = efforts[i].budget;
            found = true;
        }
    }
    if (!found)
        return bad(x, "reasoning_effort", "must be one of none, low, medium, high");
    int64_t want = mct ? mct : mt;
    if (!want)
        want = x->c->model && x->c->model->max_output_tokens > 0 ? x->c->model->max_output_tokens
                                                                 : DEFAULT_MAX_TOKENS;
    x->max_tokens = want;
    /* Anthropic requires budget_tokens < max_tokens: keep the requested output on top. */
    if (x->budget && want <= x->budget) {
        x->max_tokens = x->budget + want;
        char note[48];
        snprintf(note, sizeof(note), "max_tokens=%lld", (long long)x->max_tokens);
        note_adjusted(x, note);
    }
    return SB_OK;
}

static void write_thinking(struct xl *x)
{
    if (!x->budget)
        return;
    sb_jw_key(x->w, "thinking");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "type");
    sb_jw_cstr(x->w, "enabled");
    sb_jw_key(x->w, "budget_tokens");
    sb_jw_int(x->w, x->budget);
    sb_jw_obj_end(x->w);
}

/* temperature, top_p: numbers passed through exactly; thinking allows only temperature 1
 * and top_p from 0.95 to 1. */
static sb_err write_sampling(struct xl *x)
{
    static const struct {
        const char *key;
        double min_thinking; /* lowest value allowed with thinking */
        const char *forced;  /* what thinking turns a lower (or other) value into */
    } s[] = {{"temperature", 1, "1"}, {"top_p", 0.95, "0.95"}};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        const struct sb_json *v = field(x->root, s[i].key);
        double d;
        if (!v)
            continue;
        if (!sb_json_double(v, &d) || d < 0)
            return bad(x, s[i].key, "must be a non-negative number");
        sb_jw_key(x->w, s[i].key);
        bool off = i == 0 ? d != 1 : d < s[i].min_thinking;
        if (x->budget && off) {
            sb_jw_raw(x->w, sb_slice_cstr(s[i].forced));
            char note[48];
            snprintf(note, sizeof(note), "%s=%s", s[i].key, s[i].forced);
            note_adjusted(x, note);
        } else {
            sb_jw_raw(x->w, v->raw);
        }
    }
    return SB_OK;
}

/* ==================================================================
 * Content: text parts and images
 * ================================================================== */

static void text_block(struct sb_jw *w, struct sb_slice text)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "text");
    sb_jw_key(w, "text");
    sb_jw_str(w, text);
    sb_jw_obj_end(w);
}

static const char *const image_types[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};

/* "data:<media type>;base64,<data>" into its media type and data; false if not that shape. */
static bool split_data_url(struct sb_slice url, struct sb_slice *media, struct sb_slice *data)
{
    static const char marker[] = ";base64,";
    if (!sb_slice_starts_with(url, SB_SLICE("data:")))
        return false;
    const char *m = memmem(url.p, url.len, marker, sizeof(marker) - 1);
    if (!m)
        return false;
    *media = (struct sb_slice){url.p + 5, (size_t)(m - url.p) - 5};
    data->p = m + sizeof(marker) - 1;
    data->len = url.len - (size_t)(data->p - url.p);
    return data->len > 0;
}

static void image_source(struct sb_jw *w, const char *type, const char *k1, struct sb_slice v1,
                         const char *k2, struct sb_slice v2)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "image");
    sb_jw_key(w, "source");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, type);
    sb_jw_key(w, k1);
    sb_jw_str(w, v1);
    if (k2) {
        sb_jw_key(w, k2);
        sb_jw_str(w, v2);
    }
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
}

static sb_err image_block(struct xl *x, const struct sb_json *part, const char *path)
{
    struct sb_slice url = sb__anth_str(field(part, "image_url"), "url"), media, data;
    if (split_data_url(url, &media, &data)) {
        for (size_t i = 0; i < sizeof(image_types) / sizeof(image_types[0]); i++) {
            if (sb_slice_eq_cstr(media, image_types[i])) {
                image_source(x->w, "base64", "media_type", media, "data", data);
                return SB_OK;
            }
        }
        return bad(x, path, "is an image type Anthropic does not take (jpeg, png, gif, webp)");
    }
    if (sb_slice_starts_with(url, SB_SLICE("https://")) ||
        sb_slice_starts_with(url, SB_SLICE("http://"))) {
        image_source(x->w, "url", "url", url, NULL, SB_SLICE_NULL);
        return SB_OK;
    }
    return bad(x, path, "must hold image_url.url, an http(s) URL or a base64 data URL");
}

/* The parts of an OpenAI content array as blocks, inside an open array. */
static sb_err part_blocks(struct xl *x, const struct sb_json *parts, const char *path, bool images)
{
    size_t k = 0;
    for (const struct sb_json *p = parts->child; p; p = p->next, k++) {
        char at[96];
        snprintf(at, sizeof(at), "%s[%zu]", path, k);
        struct sb_slice type = sb__anth_str(p, "type");
        const struct sb_json *text = field(p, "text");
        if (sb_slice_eq_cstr(type, "text") && sb__anth_is_str(text))
            text_block(x->w, text->str);
        else if (images && sb_slice_eq_cstr(type, "image_url")) {
            if (image_block(x, p, at) != SB_OK)
                return x->err->code;
        } else
            return bad(x, at, images ? "must be a text or image_url part" : "must be a text part");
    }
    return SB_OK;
}

/* Content as blocks inside an open array: a string is one text block (none if empty). */
static sb_err content_blocks(struct xl *x, const struct sb_json *content, const char *path,
                             bool images)
{
    if (!content)
        return SB_OK;
    if (sb__anth_is_str(content)) {
        if (content->str.len)
            text_block(x->w, content->str);
        return SB_OK;
    }
    if (content->type == SB_JSON_ARRAY)
        return part_blocks(x, content, path, images);
    return bad(x, path, "must be a string or an array of content parts");
}

/* Content as a whole value: a string stays a string, an array becomes blocks. */
static sb_err content_value(struct xl *x, const struct sb_json *content, const char *path,
                            bool images)
{
    if (sb__anth_is_str(content)) {
        sb_jw_str(x->w, content->str);
        return SB_OK;
    }
    if (!content) {
        sb_jw_str(x->w, SB_SLICE(""));
        return SB_OK;
    }
    sb_jw_arr_begin(x->w);
    sb_err rc = content_blocks(x, content, path, images);
    sb_jw_arr_end(x->w);
    return rc;
}

/* ==================================================================
 * System
 * ================================================================== */

static bool is_system(const struct sb_json *m)
{
    struct sb_slice role = sb__anth_str(m, "role");
    return sb_slice_eq_cstr(role, "system") || sb_slice_eq_cstr(role, "developer");
}

/* Every system (or developer) message, in order, into the top-level `system`. */
static sb_err write_system(struct xl *x, const struct sb_json *msgs)
{
    size_t n = 0, i = 0;
    const struct sb_json *only = NULL;
    for (const struct sb_json *m = msgs->child; m; m = m->next)
        if (is_system(m) && ++n == 1)
            only = m;
    if (!n)
        return SB_OK;
    sb_jw_key(x->w, "system");
    const struct sb_json *content = field(only, "content");
    if (n == 1 && sb__anth_is_str(content)) {
        sb_jw_str(x->w, content->str);
        return SB_OK;
    }
    sb_jw_arr_begin(x->w);
    for (const struct sb_json *m = msgs->child; m; m = m->next, i++) {
        char path[64];
        snprintf(path, sizeof(path), "messages[%zu].content", i);
        if (is_system(m) && content_blocks(x, field(m, "content"), path, false) != SB_OK)
            return x->err->code;
    }
    sb_jw_arr_end(x->w);
    return SB_OK;
}

/* ==================================================================
 * Messages: user, assistant (thinking, text, tool_use), tool results
 * ================================================================== */

static void role_open(struct sb_jw *w, const char *role)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, role);
    sb_jw_key(w, "content");
}

static sb_err write_user(struct xl *x, const struct sb_json *m, size_t i)
{
    char path[64];
    snprintf(path, sizeof(path), "messages[%zu].content", i);
    role_open(x->w, "user");
    sb_err rc = content_value(x, field(m, "content"), path, true);
    sb_jw_obj_end(x->w);
    return rc;
}

/* thinking_blocks sent back: signed thinking and redacted_thinking, untouched and first. */
static sb_err thinking_blocks(struct xl *x, const struct sb_json *blocks, size_t i)
{
    size_t k = 0;
    char path[80];
    if (blocks && blocks->type != SB_JSON_ARRAY) {
        snprintf(path, sizeof(path), "messages[%zu].thinking_blocks", i);
        return bad(x, path, "must be an array");
    }
    for (const struct sb_json *b = blocks ? blocks->child : NULL; b; b = b->next, k++) {
        struct sb_slice type = sb__anth_str(b, "type");
        const struct sb_json *sig = field(b, "signature"), *text = field(b, "thinking");
        const struct sb_json *data = field(b, "data");
        snprintf(path, sizeof(path), "messages[%zu].thinking_blocks[%zu]", i, k);
        if (sb_slice_eq_cstr(type, "thinking") && sb__anth_is_str(text) &&
            (!sig || sb__anth_is_str(sig))) {
            if (!sig || !sig->str.len)
                continue; /* unsigned: Anthropic would reject it; DESIGN.md 6 says leave it out */
            sb_jw_obj_begin(x->w);
            sb_jw_key(x->w, "type");
            sb_jw_cstr(x->w, "thinking");
            sb_jw_key(x->w, "thinking");
            sb_jw_str(x->w, text->str);
            sb_jw_key(x->w, "signature");
            sb_jw_str(x->w, sig->str);
            sb_jw_obj_end(x->w);
        } else if (sb_slice_eq_cstr(type, "redacted_thinking") && sb__anth_is_str(data)) {
            sb_jw_obj_begin(x->w);
            sb_jw_key(x->w, "type");
            sb_jw_cstr(x->w, "redacted_thinking");
            sb_jw_key(x->w, "data");
            sb_jw_str(x->w, data->str);
            sb_jw_obj_end(x->w);
        } else {
            return bad(x, path,
                       "must be {type: thinking, thinking, signature} or "
                       "{type: redacted_thinking, data}");
        }
    }
    return SB_OK;
}

/* One assistant tool call as a tool_use block; arguments (a JSON string) become `input`. */
static sb_err tool_use_block(struct xl *x, const struct sb_json *call, const char *path)
{
    const struct sb_json *fn = field(call, "function"), *id = field(call, "id");
    const struct sb_json *name = field(fn, "name"), *args = field(fn, "arguments");
    struct sb_json *input = NULL;
    struct sb_error jerr;
    struct sb_json_limits lim = {.max_depth = SB_ANTH_MAX_DEPTH, .max_bytes = 0};
    if (!sb__anth_is_str(id) || !sb__anth_is_str(name))
        return bad(x, path, "needs an id and function.name");
    if (args && !sb__anth_is_str(args))
        return bad(x, path, "function.arguments must be a string of JSON");
    struct sb_slice text = args && args->str.len ? args->str : SB_SLICE("{}");
    if (sb_json_parse(x->c->arena, text.p, text.len, &lim, &input, &jerr) != SB_OK ||
        input->type != SB_JSON_OBJECT)
        return bad(x, path, "function.arguments is not a JSON object");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "type");
    sb_jw_cstr(x->w, "tool_use");
    sb_jw_key(x->w, "id");
    sb_jw_str(x->w, id->str);
    sb_jw_key(x->w, "name");
    sb_jw_str(x->w, name->str);
    sb_jw_key(x->w, "input");
    sb_jw_raw(x->w, input->raw);
    sb_jw_obj_end(x->w);
    return SB_OK;
}

static sb_err write_assistant(struct xl *x, const struct sb_json *m, size_t i)
{
    const struct sb_json *calls = field(m, "tool_calls"), *blocks = field(m, "thinking_blocks");
    const struct sb_json *content = field(m, "content");
    char path[80];
    if (x->c->foreign_signatures)
        blocks = NULL; /* another provider signed them: left out, not forwarded */
    snprintf(path, sizeof(path), "messages[%zu].content", i);
    role_open(x->w, "assistant");
    if (!calls && !blocks && sb__anth_is_str(content)) {
        sb_jw_str(x->w, content->str);
        sb_jw_obj_end(x->w);
        return SB_OK;
    }
    sb_jw_arr_begin(x->w);
    sb_err rc = thinking_blocks(x, blocks, i);
    if (rc == SB_OK)
        rc = content_blocks(x, content, path, false);
    if (rc == SB_OK && calls && calls->type != SB_JSON_ARRAY) {
        snprintf(path, sizeof(path), "messages[%zu].tool_calls", i);
        rc = bad(x, path, "must be an array");
    }
    size_t k = 0;
    for (const struct sb_json *t = calls ? calls->child : NULL; t && rc == SB_OK; t = t->next) {
        snprintf(path, sizeof(path), "messages[%zu].tool_calls[%zu]", i, k++);
        rc = tool_use_block(x, t, path);
    }
    sb_jw_arr_end(x->w);
    sb_jw_obj_end(x->w);
    return rc;
}

static bool is_tool(const struct sb_json *m)
{
    return m && sb_slice_eq_cstr(sb__anth_str(m, "role"), "tool");
}

/* A run of consecutive tool messages: one user turn of tool_result blocks. Advances *m, *i. */
static sb_err write_tool_results(struct xl *x, const struct sb_json **m, size_t *i)
{
    sb_err rc = SB_OK;
    role_open(x->w, "user");
    sb_jw_arr_begin(x->w);
    for (; is_tool(*m) && rc == SB_OK; *m = (*m)->next, (*i)++) {
        const struct sb_json *id = field(*m, "tool_call_id");
        char path[64];
        snprintf(path, sizeof(path), "messages[%zu].tool_call_id", *i);
        if (!sb__anth_is_str(id))
            return bad(x, path, "is required on a tool message");
        sb_jw_obj_begin(x->w);
        sb_jw_key(x->w, "type");
        sb_jw_cstr(x->w, "tool_result");
        sb_jw_key(x->w, "tool_use_id");
        sb_jw_str(x->w, id->str);
        sb_jw_key(x->w, "content");
        snprintf(path, sizeof(path), "messages[%zu].content", *i);
        rc = content_value(x, field(*m, "content"), path, false);
        sb_jw_obj_end(x->w);
    }
    sb_jw_arr_end(x->w);
    sb_jw_obj_end(x->w);
    return rc;
}

static sb_err write_messages(struct xl *x, const struct sb_json *msgs)
{
    size_t i = 0;
    sb_err rc = SB_OK;
    sb_jw_key(x->w, "messages");
    sb_jw_arr_begin(x->w);
    const struct sb_json *m = msgs->child;
    while (m && rc == SB_OK) {
        struct sb_slice role = sb__anth_str(m, "role");
        char path[48];
        snprintf(path, sizeof(path), "messages[%zu].role", i);
        if (is_tool(m)) {
            rc = write_tool_results(x, &m, &i);
            continue;
        }
        if (is_system(m))
            rc = SB_OK;
        else if (sb_slice_eq_cstr(role, "user"))
            rc = write_user(x, m, i);
        else if (sb_slice_eq_cstr(role, "assistant"))
            rc = write_assistant(x, m, i);
        else
            rc = bad(x, path, "must be system, developer, user, assistant or tool");
        m = m->next;
        i++;
    }
    sb_jw_arr_end(x->w);
    return rc;
}

/* ==================================================================
 * Tools, tool_choice, stop, response_format, user
 * ================================================================== */

static sb_err write_tools(struct xl *x)
{
    const struct sb_json *tools = field(x->root, "tools");
    size_t k = 0;
    if (!tools)
        return SB_OK;
    if (tools->type != SB_JSON_ARRAY)
        return bad(x, "tools", "must be an array");
    sb_jw_key(x->w, "tools");
    sb_jw_arr_begin(x->w);
    for (const struct sb_json *t = tools->child; t; t = t->next, k++) {
        const struct sb_json *fn = field(t, "function");
        const struct sb_json *name = field(fn, "name"), *desc = field(fn, "description");
        const struct sb_json *params = field(fn, "parameters");
        char path[48];
        snprintf(path, sizeof(path), "tools[%zu]", k);
        if (!sb_slice_eq_cstr(sb__anth_str(t, "type"), "function") || !sb__anth_is_str(name))
            return bad(x, path, "must be {type: function, function: {name, ...}}");
        if (params && params->type != SB_JSON_OBJECT)
            return bad(x, path, "function.parameters must be a JSON Schema object");
        sb_jw_obj_begin(x->w);
        sb_jw_key(x->w, "name");
        sb_jw_str(x->w, name->str);
        if (sb__anth_is_str(desc)) {
            sb_jw_key(x->w, "description");
            sb_jw_str(x->w, desc->str);
        }
        sb_jw_key(x->w, "input_schema");
        sb_jw_raw(x->w, params ? params->raw : SB_SLICE("{\"type\":\"object\",\"properties\":{}}"));
        sb_jw_obj_end(x->w);
    }
    sb_jw_arr_end(x->w);
    return SB_OK;
}

/* OpenAI tool_choice as Anthropic's type (and tool name); NULL type when invalid. */
static const char *choice_type(const struct sb_json *tc, struct sb_slice *name)
{
    static const struct {
        const char *openai, *anthropic;
    } map[] = {{"auto", "auto"}, {"none", "none"}, {"required", "any"}};
    *name = SB_SLICE_NULL;
    for (size_t i = 0; sb__anth_is_str(tc) && i < sizeof(map) / sizeof(map[0]); i++)
        if (sb_slice_eq_cstr(tc->str, map[i].openai))
            return map[i].anthropic;
    *name = sb__anth_str(field(tc, "function"), "name");
    if (sb_slice_eq_cstr(sb__anth_str(tc, "type"), "function") && name->len)
        return "tool";
    return NULL;
}

static sb_err write_tool_choice(struct xl *x)
{
    const struct sb_json *tc = field(x->root, "tool_choice");
    const struct sb_json *par = field(x->root, "parallel_tool_calls");
    struct sb_slice name;
    if (par && par->type != SB_JSON_TRUE && par->type != SB_JSON_FALSE)
        return bad(x, "parallel_tool_calls", "must be a boolean");
    bool serial = par && par->type == SB_JSON_FALSE;
    if (!tc && !serial)
        return SB_OK;
    const char *type = tc ? choice_type(tc, &name) : "auto";
    if (!type)
        return bad(x, "tool_choice",
                   "must be auto, none, required or {type: function, function: {name}}");
    /* Thinking allows only auto and none: a forced tool becomes auto, and we say so. */
    if (x->budget && (!strcmp(type, "any") || !strcmp(type, "tool"))) {
        type = "auto";
        note_adjusted(x, "tool_choice=auto");
    }
    sb_jw_key(x->w, "tool_choice");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "type");
    sb_jw_cstr(x->w, type);
    if (!strcmp(type, "tool")) {
        sb_jw_key(x->w, "name");
        sb_jw_str(x->w, name);
    }
    if (serial && strcmp(type, "none") != 0) {
        sb_jw_key(x->w, "disable_parallel_tool_use");
        sb_jw_bool(x->w, true);
    }
    sb_jw_obj_end(x->w);
    return SB_OK;
}

static sb_err write_stop(struct xl *x)
{
    const struct sb_json *stop = field(x->root, "stop");
    if (!stop)
        return SB_OK;
    if (stop->type == SB_JSON_ARRAY)
        for (const struct sb_json *s = stop->child; s; s = s->next)
            if (!sb__anth_is_str(s))
                return bad(x, "stop", "must be a string or an array of strings");
    if (!sb__anth_is_str(stop) && stop->type != SB_JSON_ARRAY)
        return bad(x, "stop", "must be a string or an array of strings");
    sb_jw_key(x->w, "stop_sequences");
    if (stop->type == SB_JSON_ARRAY) {
        sb_jw_raw(x->w, stop->raw);
        return SB_OK;
    }
    sb_jw_arr_begin(x->w);
    sb_jw_str(x->w, stop->str);
    sb_jw_arr_end(x->w);
    return SB_OK;
}

/* response_format: text is the default; json_schema is Anthropic's output_config.format;
 * json_object (JSON without a schema) has no Anthropic equivalent. */
static sb_err write_response_format(struct xl *x)
{
    const struct sb_json *rf = field(x->root, "response_format");
    struct sb_slice type = sb__anth_str(rf, "type");
    const struct sb_json *schema = field(field(rf, "json_schema"), "schema");
    if (!rf || sb_slice_eq_cstr(type, "text"))
        return SB_OK;
    if (!sb_slice_eq_cstr(type, "json_schema"))
        return bad(x, "response_format",
                   "must be text or json_schema (Anthropic has no schema-less JSON mode)");
    if (!schema || schema->type != SB_JSON_OBJECT)
        return bad(x, "response_format", "json_schema needs a schema object");
    sb_jw_key(x->w, "output_config");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "format");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "type");
    sb_jw_cstr(x->w, "json_schema");
    sb_jw_key(x->w, "schema");
    sb_jw_raw(x->w, schema->raw);
    sb_jw_obj_end(x->w);
    sb_jw_obj_end(x->w);
    return SB_OK;
}

static sb_err write_user_id(struct xl *x)
{
    const struct sb_json *user = field(x->root, "user");
    if (!user)
        return SB_OK;
    if (!sb__anth_is_str(user))
        return bad(x, "user", "must be a string");
    sb_jw_key(x->w, "metadata");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "user_id");
    sb_jw_str(x->w, user->str);
    sb_jw_obj_end(x->w);
    return SB_OK;
}

/* ==================================================================
 * The request
 * ================================================================== */

static sb_err write_body(struct xl *x)
{
    const struct sb_json *msgs = field(x->root, "messages");
    const char *up = x->c->model->upstream_model ? x->c->model->upstream_model : x->c->model->id;
    if (!msgs || msgs->type != SB_JSON_ARRAY || !msgs->count)
        return bad(x, "messages", "must be a non-empty array");
    sb_jw_obj_begin(x->w);
    sb_jw_key(x->w, "model");
    sb_jw_cstr(x->w, up);
    sb_jw_key(x->w, "max_tokens");
    sb_jw_int(x->w, x->max_tokens);
    sb_err rc = write_system(x, msgs);
    if (rc == SB_OK)
        rc = write_messages(x, msgs);
    if (rc == SB_OK)
        rc = write_tools(x);
    if (rc == SB_OK)
        rc = write_tool_choice(x);
    if (rc == SB_OK)
        rc = write_stop(x);
    if (rc == SB_OK)
        rc = write_sampling(x);
    write_thinking(x);
    if (rc == SB_OK)
        rc = write_response_format(x);
    if (rc == SB_OK)
        rc = write_user_id(x);
    if (x->c->stream) {
        sb_jw_key(x->w, "stream");
        sb_jw_bool(x->w, true);
    }
    sb_jw_obj_end(x->w);
    return rc;
}

static sb_err translate(const struct sb_call *c, struct sb_upstream_req *out, struct sb_error *err)
{
    struct sb_buf body;
    struct sb_jw w;
    struct xl x = {.c = c, .root = c->json, .w = &w, .err = err};
    sb_buf_init(&body, 0);
    sb_buf_init(&x.adjusted, 0);
    sb_jw_init(&w, &body);
    sb_err rc = check_keys(&x);
    if (rc == SB_OK)
        rc = plan_tokens(&x);
    if (rc == SB_OK)
        rc = write_body(&x);
    if (rc == SB_OK && w.err != SB_OK)
        rc = sb_fail(err, SB_E_INTERNAL, "anthropic request body could not be written");
    if (rc == SB_OK) {
        out->body = sb_arena_slice(c->arena, sb_buf_slice(&body));
        out->adjusted =
            x.adjusted.len ? sb_arena_strndup(c->arena, x.adjusted.p, x.adjusted.len) : NULL;
    }
    sb_buf_free(&body);
    sb_buf_free(&x.adjusted);
    return rc;
}

static sb_err anthropic_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                      struct sb_error *err)
{
    static const struct sb_upstream_auth_opts auth = {.key_name = "x-api-key"};
    memset(out, 0, sizeof(*out));
    if (c->op == SB_OP_EMBEDDINGS)
        return sb_fail(err, SB_E_BAD_REQUEST,
                       "provider %s is an anthropic upstream, which has no embeddings endpoint",
                       sb__anth_pname(c));
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    sb_err rc = translate(c, out, err);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = sb_arena_printf(c->arena, "%s/v1/messages", c->provider->base_url);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                c->stream ? SB_SLICE("text/event-stream")
                                          : SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("anthropic-version"),
                                SB_SLICE(API_VERSION));
    return sb_upstream_auth_apply(c->provider, &auth, c->arena, out, err);
}

/* POST {base_url}/v1/messages/count_tokens: the client's Anthropic body as sent, its model
 * replaced by the upstream's name, with the same headers as a Messages request. */
static sb_err anthropic_build_count_tokens(const struct sb_call *c, struct sb_upstream_req *out,
                                           struct sb_error *err)
{
    static const struct sb_upstream_auth_opts auth = {.key_name = "x-api-key"};
    struct sb_buf body;
    struct sb_jw w;
    memset(out, 0, sizeof(*out));
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    sb_buf_init(&body, 0);
    sb_jw_init(&w, &body);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, c->model->upstream_model);
    for (const struct sb_json *m = c->json->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "model"))
            continue;
        sb_jw_key_slice(&w, m->key);
        sb_jw_raw(&w, m->raw);
    }
    sb_jw_obj_end(&w);
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&body));
    sb_buf_free(&body);
    out->method = "POST";
    out->url = sb_arena_printf(c->arena, "%s/v1/messages/count_tokens", c->provider->base_url);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"), SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("anthropic-version"),
                                SB_SLICE(API_VERSION));
    return sb_upstream_auth_apply(c->provider, &auth, c->arena, out, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_anthropic_ops = {
    .type = "anthropic",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/v1/messages",
    .models_path = "/v1/models",
    .build_request = anthropic_build_request,
    .parse_response = sb__anth_parse_response,
    .stream_open = sb__anth_stream_open,
    .stream_feed = sb__anth_stream_feed,
    .stream_finish = sb__anth_stream_finish,
    .map_error = sb__anth_map_error,
    .build_count_tokens = anthropic_build_count_tokens,
};
