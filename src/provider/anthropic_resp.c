/* SPDX-License-Identifier: MIT */
/*
 * anthropic_resp.c - a whole Messages API answer, or its error, in OpenAI's shapes.
 *
 * parse_response walks the response's content blocks once: text blocks are
 * joined into message.content, thinking blocks give reasoning_content and
 * thinking_blocks (signatures untouched, so the client can send them back),
 * tool_use blocks become tool_calls whose arguments are the exact bytes of
 * `input`. map_error turns {"type":"error","error":{"type","message"}} into
 * the OpenAI type, code and HTTP status of the same meaning; the table below
 * is the whole mapping. Also here: the usage and stop_reason tables that the
 * stream translation shares.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/anthropic_int.h"
#include "provider/provider.h"

static const struct sb_json_limits upstream_json = {.max_depth = SB_ANTH_MAX_DEPTH, .max_bytes = 0};

const char *sb__anth_pname(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "anthropic";
}

/* ==================================================================
 * Shared with the stream: usage and finish reasons
 * ================================================================== */

void sb__anth_usage_init(struct sb__anth_usage *u)
{
    u->input = u->cache_read = u->cache_create = u->output = u->thinking = -1;
}

static void read_count(const struct sb_json *o, const char *key, int64_t *dst)
{
    const struct sb_json *n = sb__anth_get(o, key);
    int64_t v;
    if (n && sb_json_int64(n, &v) && v >= 0)
        *dst = v;
}

void sb__anth_usage_read(struct sb__anth_usage *u, const struct sb_json *j)
{
    read_count(j, "input_tokens", &u->input);
    read_count(j, "cache_read_input_tokens", &u->cache_read);
    read_count(j, "cache_creation_input_tokens", &u->cache_create);
    read_count(j, "output_tokens", &u->output);
    read_count(sb__anth_get(j, "output_tokens_details"), "thinking_tokens", &u->thinking);
}

static int64_t known(int64_t v)
{
    return v > 0 ? v : 0;
}

struct sb_usage_counts sb__anth_usage_counts(const struct sb__anth_usage *u)
{
    struct sb_usage_counts c;
    /* Anthropic's input_tokens excludes cached tokens: OpenAI's prompt_tokens includes them. */
    c.prompt_tokens = u->input < 0 ? -1 : u->input + known(u->cache_read) + known(u->cache_create);
    c.completion_tokens = u->output;
    return c;
}

void sb__anth_usage_write(struct sb_jw *w, const struct sb__anth_usage *u)
{
    struct sb_usage_counts c = sb__anth_usage_counts(u);
    int64_t prompt = known(c.prompt_tokens), completion = known(c.completion_tokens);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "prompt_tokens");
    sb_jw_int(w, prompt);
    sb_jw_key(w, "completion_tokens");
    sb_jw_int(w, completion);
    sb_jw_key(w, "total_tokens");
    sb_jw_int(w, prompt + completion);
    sb_jw_key(w, "prompt_tokens_details");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "cached_tokens");
    sb_jw_int(w, known(u->cache_read));
    if (u->cache_create >= 0) {
        /* Not OpenAI's: cache writes are billed apart, and /v1/messages gives them
         * back as cache_creation_input_tokens (messages_front.c reads this). */
        sb_jw_key(w, "cache_creation_tokens");
        sb_jw_int(w, u->cache_create);
    }
    sb_jw_obj_end(w);
    if (u->thinking >= 0) {
        sb_jw_key(w, "completion_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "reasoning_tokens");
        sb_jw_int(w, u->thinking);
        sb_jw_obj_end(w);
    }
    sb_jw_obj_end(w);
}

static const struct {
    const char *stop_reason, *finish_reason;
} finish_map[] = {
    {"end_turn", "stop"},
    {"stop_sequence", "stop"},
    {"pause_turn", "stop"},
    {"max_tokens", "length"},
    {"tool_use", "tool_calls"},
    {"refusal", "content_filter"},
    {"model_context_window_exceeded", "length"},
};

const char *sb__anth_finish_reason(struct sb_slice stop_reason)
{
    for (size_t i = 0; i < sizeof(finish_map) / sizeof(finish_map[0]); i++)
        if (sb_slice_eq_cstr(stop_reason, finish_map[i].stop_reason))
            return finish_map[i].finish_reason;
    return "stop";
}

/* ==================================================================
 * Errors
 * ================================================================== */

void sb__anth_excerpt(const struct sb_call *c, char *dst, size_t n, struct sb_slice s)
{
    size_t len = s.len < n - 1 ? s.len : n - 1;
    while (len > 0 && len < s.len && ((unsigned char)s.p[len] & 0xC0) == 0x80)
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        dst[i] = (ch < 0x20 || ch == 0x7F) ? ' ' : (char)ch;
    }
    dst[len] = '\0';
    struct sb_slice key = c->provider && c->provider->api_key
                              ? sb_secret_reveal(c->provider->api_key)
                              : SB_SLICE_NULL;
    if (key.len < 4)
        return;
    for (char *hit = memmem(dst, len, key.p, key.len); hit; hit = memmem(dst, len, key.p, key.len))
        memset(hit, '*', key.len);
}

/*
 * Anthropic's error types with their HTTP status, and the OpenAI meaning we
 * give them. billing_error is OpenAI's insufficient_quota, which OpenAI
 * sends as a 429; overloaded (529) is a 503 to OpenAI clients.
 */
static const struct {
    const char *type;
    int upstream_status;  /* what Anthropic sends it with */
    sb_err code;          /* our meaning */
    int status;           /* what the client gets */
    const char *api_code; /* OpenAI "code", or NULL for the code's name */
} error_map[] = {
    {"invalid_request_error", 400, SB_E_BAD_REQUEST, 400, NULL},
    {"authentication_error", 401, SB_E_UNAUTHORIZED, 401, "invalid_api_key"},
    {"billing_error", 402, SB_E_RATE_LIMITED, 429, "insufficient_quota"},
    {"permission_error", 403, SB_E_FORBIDDEN, 403, NULL},
    {"not_found_error", 404, SB_E_NOT_FOUND, 404, NULL},
    {"request_too_large", 413, SB_E_TOO_LARGE, 413, NULL},
    {"rate_limit_error", 429, SB_E_RATE_LIMITED, 429, NULL},
    {"api_error", 500, SB_E_UPSTREAM, 500, NULL},
    {"timeout_error", 504, SB_E_UPSTREAM_TIMEOUT, 504, NULL},
    {"overloaded_error", 529, SB_E_UNAVAILABLE, 503, NULL},
};
#define NERRORS (sizeof(error_map) / sizeof(error_map[0]))

/* The row for the error's type, else for the status alone, else NERRORS. */
static size_t error_row(struct sb_slice type, int status)
{
    size_t by_status = NERRORS;
    for (size_t i = 0; i < NERRORS; i++) {
        if (sb_slice_eq_cstr(type, error_map[i].type))
            return i;
        if (error_map[i].upstream_status == status)
            by_status = i;
    }
    return by_status;
}

static bool says(struct sb_slice msg, const char *what)
{
    return msg.len && memmem(msg.p, msg.len, what, strlen(what));
}

/* The OpenAI code of what the message says, when more precise than the row's. */
static const char *api_code(size_t row, struct sb_slice msg)
{
    if (error_map[row].code == SB_E_BAD_REQUEST && says(msg, "prompt is too long"))
        return "context_length_exceeded";
    if (error_map[row].code == SB_E_NOT_FOUND && says(msg, "model"))
        return "model_not_found";
    return error_map[row].api_code;
}

void sb__anth_error(const struct sb_call *c, int status, const struct sb_json *error,
                    struct sb_slice raw, struct sb_error *err)
{
    struct sb_slice type = sb__anth_str(error, "type"), msg = sb__anth_str(error, "message");
    size_t row = error_row(type, status);
    char text[SB_ANTH_MAX_EXCERPT + 1];
    sb_err code = row < NERRORS                   ? error_map[row].code
                  : status >= 400 && status < 500 ? SB_E_BAD_REQUEST
                                                  : SB_E_UPSTREAM;
    sb__anth_excerpt(c, text, sizeof(text), msg.len ? msg : raw);
    if (text[0])
        sb_fail(err, code, "upstream %s: %s", sb__anth_pname(c), text);
    else
        sb_fail(err, code, "upstream %s: HTTP %d", sb__anth_pname(c), status);
    if (row == NERRORS) {
        err->http_status = status >= 400 && status < 600 ? status : 502;
        return;
    }
    err->http_status = error_map[row].status;
    const char *ac = api_code(row, msg);
    if (ac)
        snprintf(err->api_code, sizeof(err->api_code), "%s", ac);
}

void sb__anth_map_error(const struct sb_call *c, int status, struct sb_slice body,
                        struct sb_error *err)
{
    struct sb_json_limits lim = {.max_depth = SB_ANTH_MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) != SB_OK)
        root = NULL;
    sb__anth_error(c, status, sb__anth_get(root, "error"), body, err);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

/* What the content blocks of one response add up to. */
struct answer {
    struct sb_buf text;      /* text blocks joined */
    struct sb_buf reasoning; /* thinking text joined */
    size_t nthinking;        /* thinking + redacted_thinking blocks */
    size_t ntools;           /* tool_use blocks */
};

static void scan_blocks(const struct sb_json *content, struct answer *a)
{
    for (const struct sb_json *b = content ? content->child : NULL; b; b = b->next) {
        struct sb_slice type = sb__anth_str(b, "type");
        if (sb_slice_eq_cstr(type, "text"))
            sb_buf_append_slice(&a->text, sb__anth_str(b, "text"));
        else if (sb_slice_eq_cstr(type, "thinking"))
            sb_buf_append_slice(&a->reasoning, sb__anth_str(b, "thinking"));
        if (sb_slice_eq_cstr(type, "thinking") || sb_slice_eq_cstr(type, "redacted_thinking"))
            a->nthinking++;
        if (sb_slice_eq_cstr(type, "tool_use"))
            a->ntools++;
    }
}

struct sb_slice sb__anth_chat_id(const struct sb_call *c, struct sb_slice msg_id)
{
    char *id =
        sb_arena_printf(c->arena, "chatcmpl-%.*s", (int)msg_id.len, msg_id.p ? msg_id.p : "");
    return sb_slice_cstr(id);
}

void sb__anth_thinking_block(struct sb_jw *w, bool redacted, struct sb_slice text,
                             struct sb_slice signature)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, redacted ? "redacted_thinking" : "thinking");
    sb_jw_key(w, redacted ? "data" : "thinking");
    sb_jw_str(w, sb__anth_nz(text));
    if (!redacted) {
        sb_jw_key(w, "signature");
        sb_jw_str(w, sb__anth_nz(signature));
    }
    sb_jw_obj_end(w);
}

static void write_thinking_blocks(struct sb_jw *w, const struct sb_json *content)
{
    sb_jw_key(w, "thinking_blocks");
    sb_jw_arr_begin(w);
    for (const struct sb_json *b = content->child; b; b = b->next) {
        struct sb_slice type = sb__anth_str(b, "type");
        if (sb_slice_eq_cstr(type, "thinking"))
            sb__anth_thinking_block(w, false, sb__anth_str(b, "thinking"),
                                    sb__anth_str(b, "signature"));
        else if (sb_slice_eq_cstr(type, "redacted_thinking"))
            sb__anth_thinking_block(w, true, sb__anth_str(b, "data"), SB_SLICE_NULL);
    }
    sb_jw_arr_end(w);
}

static void write_tool_calls(struct sb_jw *w, const struct sb_json *content)
{
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    for (const struct sb_json *b = content->child; b; b = b->next) {
        const struct sb_json *input = sb__anth_get(b, "input");
        if (!sb_slice_eq_cstr(sb__anth_str(b, "type"), "tool_use"))
            continue;
        sb_jw_obj_begin(w);
        sb_jw_key(w, "id");
        sb_jw_str(w, sb__anth_str(b, "id"));
        sb_jw_key(w, "type");
        sb_jw_cstr(w, "function");
        sb_jw_key(w, "function");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "name");
        sb_jw_str(w, sb__anth_str(b, "name"));
        sb_jw_key(w, "arguments");
        sb_jw_str(w, input ? input->raw : SB_SLICE("{}"));
        sb_jw_obj_end(w);
        sb_jw_obj_end(w);
    }
    sb_jw_arr_end(w);
}

static void write_message(struct sb_jw *w, const struct sb_json *content, struct answer *a)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, "assistant");
    sb_jw_key(w, "content");
    if (a->text.len || !a->ntools)
        sb_jw_str(w, sb__anth_nz(sb_buf_slice(&a->text)));
    else
        sb_jw_null(w);
    if (a->nthinking) {
        sb_jw_key(w, "reasoning_content");
        sb_jw_str(w, sb__anth_nz(sb_buf_slice(&a->reasoning)));
        write_thinking_blocks(w, content);
    }
    if (a->ntools)
        write_tool_calls(w, content);
    sb_jw_obj_end(w);
}

static void write_completion(struct sb_jw *w, const struct sb_json *root, struct answer *a,
                             const struct sb__anth_usage *u, const char *finish, struct sb_slice id)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_str(w, id);
    sb_jw_key(w, "object");
    sb_jw_cstr(w, "chat.completion");
    sb_jw_key(w, "created");
    sb_jw_int(w, (int64_t)time(NULL));
    sb_jw_key(w, "model");
    sb_jw_str(w, sb__anth_str(root, "model"));
    sb_jw_key(w, "choices");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, 0);
    sb_jw_key(w, "message");
    write_message(w, sb__anth_get(root, "content"), a);
    sb_jw_key(w, "finish_reason");
    sb_jw_cstr(w, finish);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    sb_jw_key(w, "usage");
    sb__anth_usage_write(w, u);
    sb_jw_obj_end(w);
}

sb_err sb__anth_parse_response(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                               struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    memset(out, 0, sizeof(*out));
    if (sb_json_parse(c->arena, body.p, body.len, &upstream_json, &root, &jerr) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object",
                       sb__anth_pname(c));
    if (sb_slice_eq_cstr(sb__anth_str(root, "type"), "error")) {
        sb__anth_error(c, 0, sb__anth_get(root, "error"), body, err);
        return err->code;
    }
    const struct sb_json *content = sb__anth_get(root, "content");
    if (!sb_slice_eq_cstr(sb__anth_str(root, "type"), "message") || !content ||
        content->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a message",
                       sb__anth_pname(c));
    struct answer a = {.nthinking = 0};
    struct sb__anth_usage u;
    struct sb_buf json;
    struct sb_jw w;
    sb_buf_init(&a.text, 0);
    sb_buf_init(&a.reasoning, 0);
    sb_buf_init(&json, 0);
    sb_jw_init(&w, &json);
    sb__anth_usage_init(&u);
    sb__anth_usage_read(&u, sb__anth_get(root, "usage"));
    scan_blocks(content, &a);
    const char *finish = sb__anth_finish_reason(sb__anth_str(root, "stop_reason"));
    write_completion(&w, root, &a, &u, finish, sb__anth_chat_id(c, sb__anth_str(root, "id")));
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&json));
    out->usage = sb__anth_usage_counts(&u);
    out->finish_reason = sb_slice_cstr(finish);
    sb_buf_free(&a.text);
    sb_buf_free(&a.reasoning);
    sb_buf_free(&json);
    return SB_OK;
}
