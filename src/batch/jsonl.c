/* SPDX-License-Identifier: MIT */
/*
 * jsonl.c - a batch job's input lines judged one by one, and its output
 * lines written (batch/jsonl.h).
 *
 * A line's body is sent to the data plane as it came, byte for byte, unless
 * the job names a model: then the body is written again with that model
 * first and every other member copied from its raw source span, so nothing
 * the client wrote is re-encoded. `stream: true` is refused per line: a batch
 * stores whole answers. Nothing else in a body is checked here; the data
 * plane judges it as it judges any client's request, and its 4xx becomes the
 * line's answer.
 */
#include "batch/jsonl.h"

#include <string.h>

#include "core/json.h"

static const char *const paths[] = {
    [SB_BATCH_CHAT] = "/v1/chat/completions",
    [SB_BATCH_EMBEDDINGS] = "/v1/embeddings",
};

const char *sb_batch_endpoint_path(enum sb_batch_endpoint e)
{
    return paths[e];
}

bool sb_batch_endpoint_parse(struct sb_slice s, enum sb_batch_endpoint *out)
{
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (sb_slice_eq_cstr(s, paths[i])) {
            *out = (enum sb_batch_endpoint)i;
            return true;
        }
    return false;
}

static bool blank(struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] != ' ' && s.p[i] != '\t' && s.p[i] != '\r')
            return false;
    return true;
}

bool sb_batch_next_line(struct sb_slice *rest, size_t *lineno, struct sb_slice *line)
{
    while (rest->len) {
        const char *nl = memchr(rest->p, '\n', rest->len);
        size_t n = nl ? (size_t)(nl - rest->p) : rest->len;
        struct sb_slice l = {rest->p, n};
        rest->p += nl ? n + 1 : n;
        rest->len -= nl ? n + 1 : n;
        ++*lineno;
        if (l.len && l.p[l.len - 1] == '\r')
            l.len--;
        if (!blank(l)) {
            *line = l;
            return true;
        }
    }
    return false;
}

/* ======================================================================
 * One input line
 * ==================================================================== */

static void refuse(struct sb_arena *a, struct sb_batch_line *out, size_t lineno, const char *code,
                   const char *msg)
{
    out->error_code = code;
    out->error_msg = sb_arena_printf(a, "line %zu: %s", lineno, msg);
    out->body = SB_SLICE_NULL;
}

/* OpenAI's envelope: custom_id, method, url, body; anything else is refused by name. */
static const char *envelope(struct sb_arena *a, const struct sb_json *j, struct sb_batch_line *out,
                            const struct sb_json **body, const char **code)
{
    *code = "invalid_request";
    for (const struct sb_json *m = j->child; m; m = m->next)
        if (!sb_slice_eq_cstr(m->key, "custom_id") && !sb_slice_eq_cstr(m->key, "method") &&
            !sb_slice_eq_cstr(m->key, "url") && !sb_slice_eq_cstr(m->key, "body"))
            return sb_arena_printf(a, "unknown member '%.*s' (a line is {custom_id, method, url, "
                                      "body} or a plain request body)",
                                   (int)(m->key.len > 64 ? 64 : m->key.len), m->key.p);
    const struct sb_json *id = sb_json_get(j, "custom_id"), *method = sb_json_get(j, "method");
    const struct sb_json *url = sb_json_get(j, "url");
    if (id && (!sb_json_is_string(id) || id->str.len == 0 ||
               id->str.len > SB_BATCH_CUSTOM_ID_MAX || memchr(id->str.p, 0, id->str.len)))
        return "custom_id must be a non-empty string of at most 256 bytes";
    if (id)
        out->custom_id = sb_arena_strndup(a, id->str.p, id->str.len);
    if (method && (!sb_json_is_string(method) || !sb_slice_eq_cstr(method->str, "POST"))) {
        *code = "invalid_method";
        return "method must be \"POST\"";
    }
    if (url && (!sb_json_is_string(url) || !sb_batch_endpoint_parse(url->str, &out->endpoint))) {
        *code = "invalid_url";
        return "url must be \"/v1/chat/completions\" or \"/v1/embeddings\"";
    }
    *body = sb_json_get(j, "body");
    if (!*body || (*body)->type != SB_JSON_OBJECT)
        return "body must be a JSON object (the request)";
    return NULL;
}

/* The body with `model` replaced by model, every other member copied raw. */
static struct sb_slice with_model(struct sb_arena *a, const struct sb_json *body, const char *model)
{
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, model);
    for (const struct sb_json *m = body->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "model"))
            continue;
        sb_jw_key_slice(&w, m->key);
        sb_jw_raw(&w, m->raw);
    }
    sb_jw_obj_end(&w);
    struct sb_slice s = sb_arena_slice(a, sb_buf_slice(&b));
    sb_buf_free(&b);
    return s;
}

static const char *check_body(const struct sb_json *body, const struct sb_batch_opts *o,
                              const char **code)
{
    const struct sb_json *stream = sb_json_get(body, "stream");
    const struct sb_json *model = sb_json_get(body, "model");
    if (stream && stream->type != SB_JSON_FALSE && stream->type != SB_JSON_NULL) {
        *code = "stream_not_supported";
        return "stream must be false or absent: a batch stores whole answers";
    }
    if (!o->model && (!sb_json_is_string(model) || model->str.len == 0)) {
        *code = "missing_model";
        return "model is required (in the line, or as the job's model)";
    }
    return NULL;
}

void sb_batch_parse_line(struct sb_arena *a, struct sb_slice text, size_t lineno,
                         const struct sb_batch_opts *o, struct sb_batch_line *out)
{
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = o->max_line_bytes};
    struct sb_json *j = NULL;
    struct sb_error err = {0};
    const struct sb_json *body = NULL;
    const char *code = "invalid_request", *why = NULL;
    memset(out, 0, sizeof(*out));
    out->endpoint = o->endpoint;
    if (o->max_line_bytes && text.len > o->max_line_bytes) {
        refuse(a, out, lineno,
               "line_too_large", sb_arena_printf(a, "%zu bytes; a line may have at most %zu",
                                                 text.len, o->max_line_bytes));
        return;
    }
    if (sb_json_parse(a, text.p, text.len, &lim, &j, &err) != SB_OK) {
        refuse(a, out, lineno, "invalid_json", sb_arena_printf(a, "not JSON: %s", err.msg));
        return;
    }
    if (j->type != SB_JSON_OBJECT)
        why = "expected a JSON object";
    else if (sb_json_get(j, "body") || sb_json_get(j, "custom_id") || sb_json_get(j, "url") ||
             sb_json_get(j, "method"))
        why = envelope(a, j, out, &body, &code);
    else
        body = j;
    if (!why)
        why = check_body(body, o, &code);
    if (why) {
        refuse(a, out, lineno, code, why);
        return;
    }
    out->body = o->model ? with_model(a, body, o->model) : sb_arena_slice(a, body->raw);
}

/* ======================================================================
 * Output lines
 * ==================================================================== */

static void head(struct sb_jw *w, const char *id, const char *custom_id)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_cstr(w, id);
    sb_jw_key(w, "custom_id");
    sb_jw_cstr(w, custom_id);
}

void sb_batch_result_response(struct sb_buf *out, const char *id, const char *custom_id,
                              int status_code, const char *request_id, struct sb_slice body_json)
{
    struct sb_jw w;
    sb_jw_init(&w, out);
    head(&w, id, custom_id);
    sb_jw_key(&w, "response");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "status_code");
    sb_jw_int(&w, status_code);
    sb_jw_key(&w, "request_id");
    sb_jw_cstr(&w, request_id);
    sb_jw_key(&w, "body");
    sb_jw_raw(&w, body_json);
    sb_jw_obj_end(&w);
    sb_jw_key(&w, "error");
    sb_jw_null(&w);
    sb_jw_obj_end(&w);
}

void sb_batch_result_error(struct sb_buf *out, const char *id, const char *custom_id,
                           const char *code, const char *message)
{
    struct sb_jw w;
    sb_jw_init(&w, out);
    head(&w, id, custom_id);
    sb_jw_key(&w, "response");
    sb_jw_null(&w);
    sb_jw_key(&w, "error");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "code");
    sb_jw_cstr(&w, code);
    sb_jw_key(&w, "message");
    sb_jw_cstr(&w, message);
    sb_jw_obj_end(&w);
    sb_jw_obj_end(&w);
}
