/* SPDX-License-Identifier: MIT */
/*
 * oai_emit.c - OpenAI-shaped output for the translating adapters (see oai_emit.h).
 *
 * Chunks are written with the JSON writer into one reusable buffer per
 * stream; the event handed to the proxy points into it and is valid only
 * during the callback, as provider.h says. Ids are random (getrandom), so
 * two streams never share a chatcmpl- or call_ id.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "crypto/secret.h"
#include "provider/oai_emit.h"
#include "provider/upstream_auth.h"

static const struct sb_json_limits upstream_json = {.max_depth = SB_OAI_MAX_DEPTH, .max_bytes = 0};

const char *sb_oai_pname(const struct sb_call *c, const char *type)
{
    return c->provider && c->provider->id ? c->provider->id : type;
}

const struct sb_json *sb_oai_parse_object(struct sb_arena *a, struct sb_slice body)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(a, body.p, body.len, &upstream_json, &root, &jerr) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        return NULL;
    return root;
}

/* ==================================================================
 * Ids and usage
 * ================================================================== */

static void random_hex(char *dst, size_t ndigits)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    static unsigned long fallback;
    size_t n = (ndigits + 1) / 2;
    if (getrandom(raw, n, 0) != (ssize_t)n) /* never in practice; ids need only be distinct */
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(++fallback * 2654435761u >> (i % 4 * 8));
    for (size_t i = 0; i < ndigits; i++)
        dst[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 0xF];
    dst[ndigits] = '\0';
}

const char *sb_oai_new_call_id(struct sb_arena *a)
{
    char hex[25];
    random_hex(hex, 24);
    return sb_arena_printf(a, "call_%s", hex);
}

const char *sb_oai_completion_id(struct sb_arena *a, struct sb_slice upstream_id)
{
    char hex[25];
    if (upstream_id.len && upstream_id.len <= 128)
        return sb_arena_printf(a, "chatcmpl-%.*s", SB_FMT(upstream_id));
    random_hex(hex, 24);
    return sb_arena_printf(a, "chatcmpl-%s", hex);
}

int64_t sb_oai_count(const struct sb_json *n)
{
    int64_t v;
    double d;
    if (n && sb_json_int64(n, &v))
        return v >= 0 ? v : -1;
    if (n && sb_json_double(n, &d) && d >= 0 && d < 9e15 && d == floor(d))
        return (int64_t)d;
    return -1;
}

void sb_oai_usage_write(struct sb_jw *w, const struct sb_oai_usage *u)
{
    int64_t p = u->prompt > 0 ? u->prompt : 0, c = u->completion > 0 ? u->completion : 0;
    sb_jw_obj_begin(w);
    sb_jw_key(w, "prompt_tokens");
    sb_jw_int(w, p);
    sb_jw_key(w, "completion_tokens");
    sb_jw_int(w, c);
    sb_jw_key(w, "total_tokens");
    sb_jw_int(w, p + c);
    if (u->cached >= 0) {
        sb_jw_key(w, "prompt_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "cached_tokens");
        sb_jw_int(w, u->cached);
        sb_jw_obj_end(w);
    }
    if (u->reasoning >= 0) {
        sb_jw_key(w, "completion_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "reasoning_tokens");
        sb_jw_int(w, u->reasoning);
        sb_jw_obj_end(w);
    }
    sb_jw_obj_end(w);
}

/* ==================================================================
 * Streams
 * ================================================================== */

static void stream_buf_free(void *ud)
{
    sb_buf_free(ud);
}

void sb_oai_stream_init(struct sb_oai_stream *s, const struct sb_call *c)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->id = sb_oai_completion_id(c->arena, SB_SLICE_NULL);
    s->created = (int64_t)time(NULL);
    s->model = c->model->upstream_model ? c->model->upstream_model : c->model->id;
    sb_buf_init(&s->buf, 0);
    sb_arena_on_free(c->arena, stream_buf_free, &s->buf);
}

void sb_oai_stream_set_id(struct sb_oai_stream *s, struct sb_slice upstream_id)
{
    if (upstream_id.len)
        s->id = sb_oai_completion_id(s->c->arena, upstream_id);
}

void sb_oai_chunk_open(struct sb_jw *w, struct sb_buf *buf, struct sb_slice id, int64_t created,
                       struct sb_slice model, bool with_choice)
{
    sb_buf_reset(buf);
    sb_jw_init(w, buf);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_str(w, id);
    sb_jw_key(w, "object");
    sb_jw_cstr(w, "chat.completion.chunk");
    sb_jw_key(w, "created");
    sb_jw_int(w, created);
    sb_jw_key(w, "model");
    sb_jw_str(w, model);
    sb_jw_key(w, "choices");
    sb_jw_arr_begin(w);
    if (!with_choice)
        return;
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, 0);
    sb_jw_key(w, "delta");
    sb_jw_obj_begin(w);
}

static void chunk_head(struct sb_oai_stream *s, struct sb_jw *w, bool with_choice)
{
    sb_oai_chunk_open(w, &s->buf, sb_slice_cstr(s->id), s->created, sb_slice_cstr(s->model),
                      with_choice);
}

static void tool_delta_write(struct sb_jw *w, const struct sb_oai_tool_delta *t)
{
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, t->index);
    if (t->id.p) {
        sb_jw_key(w, "id");
        sb_jw_str(w, t->id);
        sb_jw_key(w, "type");
        sb_jw_cstr(w, "function");
    }
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    if (t->name.p) {
        sb_jw_key(w, "name");
        sb_jw_str(w, t->name);
    }
    if (t->args.p) {
        sb_jw_key(w, "arguments");
        sb_jw_str(w, t->args);
    }
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
}

static int deliver(struct sb_oai_stream *s, struct sb_event *ev)
{
    ev->kind = SB_EV_CHUNK;
    ev->chunk = sb_buf_slice(&s->buf);
    return s->fn(s->ud, ev);
}

int sb_oai_emit_delta(struct sb_oai_stream *s, const struct sb_oai_delta *d)
{
    struct sb_jw w;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_head(s, &w, true);
    if (!s->role_sent) {
        sb_jw_key(&w, "role");
        sb_jw_cstr(&w, "assistant");
        s->role_sent = true;
    }
    if (d->reasoning.p) {
        sb_jw_key(&w, "reasoning_content");
        sb_jw_str(&w, d->reasoning);
    }
    if (d->content.p) {
        sb_jw_key(&w, "content");
        sb_jw_str(&w, d->content);
    }
    if (d->tool)
        tool_delta_write(&w, d->tool);
    sb_jw_obj_end(&w);
    sb_jw_key(&w, "finish_reason");
    sb_jw_cstr(&w, d->finish_reason);
    sb_jw_obj_end(&w);
    sb_jw_arr_end(&w);
    sb_jw_obj_end(&w);
    ev.text = d->content.p ? d->content : SB_SLICE_NULL;
    ev.finish_reason = d->finish_reason ? sb_slice_cstr(d->finish_reason) : SB_SLICE_NULL;
    return deliver(s, &ev);
}

int sb_oai_emit_usage(struct sb_oai_stream *s, const struct sb_oai_usage *u)
{
    struct sb_jw w;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_head(s, &w, false);
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "usage");
    sb_oai_usage_write(&w, u);
    sb_jw_obj_end(&w);
    ev.usage_only = true;
    ev.has_usage = true;
    ev.usage.prompt_tokens = u->prompt;
    ev.usage.completion_tokens = u->completion;
    return deliver(s, &ev);
}

int sb_oai_emit_done(struct sb_oai_stream *s)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_DONE;
    return s->fn(s->ud, &ev);
}

int sb_oai_emit_error(struct sb_oai_stream *s, struct sb_slice msg, struct sb_error *err)
{
    struct sb_event ev;
    char text[SB_OAI_EXCERPT + 1];
    memset(&ev, 0, sizeof(ev));
    sb_oai_excerpt(s->c, text, sizeof(text), msg);
    ev.kind = SB_EV_ERROR;
    sb_fail(&ev.error, SB_E_UPSTREAM, "upstream %s: %s", sb_oai_pname(s->c, "upstream"),
            text[0] ? text : "error in stream");
    if (err)
        *err = ev.error;
    return s->fn(s->ud, &ev);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

void sb_oai_completion_begin(struct sb_jw *w, const char *id, const char *model)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_cstr(w, id);
    sb_jw_key(w, "object");
    sb_jw_cstr(w, "chat.completion");
    sb_jw_key(w, "created");
    sb_jw_int(w, (int64_t)time(NULL));
    sb_jw_key(w, "model");
    sb_jw_cstr(w, model);
    sb_jw_key(w, "choices");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, 0);
    sb_jw_key(w, "message");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, "assistant");
}

void sb_oai_completion_end(struct sb_jw *w, const char *finish_reason, const struct sb_oai_usage *u)
{
    sb_jw_obj_end(w); /* message */
    sb_jw_key(w, "finish_reason");
    sb_jw_cstr(w, finish_reason);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    if (u) {
        sb_jw_key(w, "usage");
        sb_oai_usage_write(w, u);
    }
    sb_jw_obj_end(w);
}

void sb_oai_tool_call_write(struct sb_jw *w, struct sb_slice id, struct sb_slice name,
                            struct sb_slice args)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_str(w, id);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "function");
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "name");
    sb_jw_str(w, name);
    sb_jw_key(w, "arguments");
    sb_jw_str(w, args);
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
}

struct sb_slice sb_oai_finish_body(const struct sb_call *c, struct sb_buf *b)
{
    struct sb_slice out = sb_arena_slice(c->arena, sb_buf_slice(b));
    sb_buf_free(b);
    return out;
}

sb_err sb_oai_post_json(const struct sb_call *c, struct sb_buf *b, const char *path,
                        const char *stream_type, struct sb_upstream_req *out, struct sb_error *err)
{
    out->body = sb_oai_finish_body(c, b);
    out->method = "POST";
    out->url = sb_arena_printf(c->arena, "%s%s", c->provider->base_url, path);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                sb_slice_cstr(c->stream ? stream_type : "application/json"));
    return sb_upstream_auth_apply(c->provider, NULL, c->arena, out, err);
}

/* ==================================================================
 * Embeddings
 * ================================================================== */

static void base64_append(struct sb_buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        v |= i + 1 < n ? (unsigned)p[i + 1] << 8 : 0;
        v |= i + 2 < n ? p[i + 2] : 0;
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        sb_buf_append(b, q, 4);
    }
}

/* One vector as base64 of float32 little-endian (OpenAI's encoding_format "base64"). */
static bool vector_base64(struct sb_jw *w, const struct sb_json *v)
{
    struct sb_buf raw, b64;
    bool ok = true;
    sb_buf_init(&raw, 0);
    sb_buf_init(&b64, 0);
    for (const struct sb_json *x = v->child; x && ok; x = x->next) {
        double d;
        ok = sb_json_double(x, &d);
        float f = (float)d;
        uint32_t u;
        memcpy(&u, &f, 4);
        unsigned char le[4] = {u & 0xFF, u >> 8 & 0xFF, u >> 16 & 0xFF, u >> 24 & 0xFF};
        sb_buf_append(&raw, le, 4);
    }
    base64_append(&b64, (const unsigned char *)raw.p, raw.len);
    if (ok)
        sb_jw_str(w, b64.len ? sb_buf_slice(&b64) : SB_SLICE(""));
    sb_buf_free(&raw);
    sb_buf_free(&b64);
    return ok;
}

static bool vector_float(struct sb_jw *w, const struct sb_json *v)
{
    sb_jw_arr_begin(w);
    for (const struct sb_json *x = v->child; x; x = x->next) {
        if (x->type != SB_JSON_NUMBER)
            return false;
        sb_jw_raw(w, x->raw); /* the upstream's digits, exactly */
    }
    sb_jw_arr_end(w);
    return true;
}

static bool wants_base64(const struct sb_call *c)
{
    const struct sb_json *f = sb_oai_get(c->json, "encoding_format");
    return sb_oai_is_str(f) && sb_slice_eq_cstr(f->str, "base64");
}

sb_err sb_oai_embeddings(const struct sb_call *c, const char *type, const struct sb_json *vectors,
                         int64_t prompt_tokens, struct sb_slice *out, struct sb_error *err)
{
    struct sb_buf b;
    struct sb_jw w;
    bool b64 = wants_base64(c), ok = vectors && vectors->type == SB_JSON_ARRAY;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "object");
    sb_jw_cstr(&w, "list");
    sb_jw_key(&w, "data");
    sb_jw_arr_begin(&w);
    int64_t i = 0;
    for (const struct sb_json *v = ok ? vectors->child : NULL; v && ok; v = v->next, i++) {
        ok = v->type == SB_JSON_ARRAY;
        sb_jw_obj_begin(&w);
        sb_jw_key(&w, "object");
        sb_jw_cstr(&w, "embedding");
        sb_jw_key(&w, "index");
        sb_jw_int(&w, i);
        sb_jw_key(&w, "embedding");
        ok = ok && (b64 ? vector_base64(&w, v) : vector_float(&w, v));
        sb_jw_obj_end(&w);
    }
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, c->model->upstream_model ? c->model->upstream_model : c->model->id);
    sb_jw_key(&w, "usage");
    struct sb_oai_usage u = {prompt_tokens, 0, -1, -1};
    sb_oai_usage_write(&w, &u);
    sb_jw_obj_end(&w);
    if (!ok) {
        sb_buf_free(&b);
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: embeddings are not arrays of numbers",
                       sb_oai_pname(c, type));
    }
    *out = sb_oai_finish_body(c, &b);
    return SB_OK;
}

sb_err sb_oai_embed_input(const struct sb_call *c, const char *type, const struct sb_json **input,
                          struct sb_error *err)
{
    const struct sb_json *in = sb_oai_get(c->json, "input");
    const struct sb_json *fmt = sb_oai_get(c->json, "encoding_format");
    if (fmt && !(sb_oai_is_str(fmt) &&
                 (sb_slice_eq_cstr(fmt->str, "float") || sb_slice_eq_cstr(fmt->str, "base64"))))
        return sb_fail(err, SB_E_BAD_REQUEST, "'encoding_format' must be \"float\" or \"base64\"");
    if (!in)
        return sb_fail(err, SB_E_BAD_REQUEST, "missing required parameter: 'input'");
    bool ok = sb_oai_is_str(in) || (in->type == SB_JSON_ARRAY && in->count > 0);
    for (const struct sb_json *x = in->type == SB_JSON_ARRAY ? in->child : NULL; x && ok;
         x = x->next)
        ok = sb_oai_is_str(x);
    if (!ok)
        return sb_fail(err, SB_E_BAD_REQUEST,
                       "'input' must be a string or a non-empty array of strings for %s "
                       "(token arrays are not supported)",
                       type);
    *input = in;
    return SB_OK;
}

/* ==================================================================
 * Requests
 * ================================================================== */

/* clang-format off */
const char *const sb_oai_chat_fields[] = {
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "stop", "seed", "frequency_penalty", "presence_penalty", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "n", "user", "reasoning_effort",
    "logprobs", "store", "metadata", NULL,
};
/* clang-format on */

const char *const sb_oai_embed_fields[] = {
    "model", "input", "encoding_format", "dimensions", "user", NULL,
};

sb_err sb_oai_check_fields(const struct sb_call *c, const char *type, const char *const known[],
                           struct sb_error *err)
{
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    for (const struct sb_json *m = c->json->child; m; m = m->next) {
        size_t i = 0;
        while (known[i] && !sb_slice_eq_cstr(m->key, known[i]))
            i++;
        if (known[i])
            continue;
        char name[61];
        sb_oai_excerpt(c, name, sizeof(name), m->key);
        return sb_fail_field(err, SB_E_BAD_REQUEST, name,
                             "parameter '%s' is not supported by %s providers", name, type);
    }
    const struct sb_json *n = sb_oai_get(c->json, "n");
    int64_t v;
    if (n && n->type != SB_JSON_NULL && !(sb_json_int64(n, &v) && v == 1))
        return sb_fail(err, SB_E_BAD_REQUEST, "'n' must be 1 for %s providers", type);
    return SB_OK;
}

sb_err sb_oai_max_tokens(const struct sb_call *c, const char *type, const struct sb_json **out,
                         struct sb_error *err)
{
    const struct sb_json *m = sb_oai_get(c->json, "max_completion_tokens");
    if (!m || m->type == SB_JSON_NULL)
        m = sb_oai_get(c->json, "max_tokens");
    int64_t v;
    *out = NULL;
    if (!m || m->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_int64(m, &v) || v < 1)
        return sb_fail(err, SB_E_BAD_REQUEST, "'max_tokens' must be a positive integer (%s)", type);
    *out = m;
    return SB_OK;
}

sb_err sb_oai_write_stop(struct sb_jw *w, const struct sb_json *stop, const char *type,
                         struct sb_error *err)
{
    bool ok = sb_oai_is_str(stop) || stop->type == SB_JSON_ARRAY;
    for (const struct sb_json *x = stop->type == SB_JSON_ARRAY ? stop->child : NULL; x && ok;
         x = x->next)
        ok = sb_oai_is_str(x);
    if (!ok)
        return sb_fail(err, SB_E_BAD_REQUEST, "'stop' must be a string or an array of strings (%s)",
                       type);
    sb_jw_arr_begin(w);
    if (sb_oai_is_str(stop))
        sb_jw_str(w, stop->str);
    for (const struct sb_json *x = stop->type == SB_JSON_ARRAY ? stop->child : NULL; x; x = x->next)
        sb_jw_str(w, x->str);
    sb_jw_arr_end(w);
    return SB_OK;
}

sb_err sb_oai_copy_number(struct sb_jw *w, const char *to, const struct sb_json *from,
                          const char *type, const char *name, struct sb_error *err)
{
    if (!from || from->type == SB_JSON_NULL)
        return SB_OK;
    if (from->type != SB_JSON_NUMBER)
        return sb_fail(err, SB_E_BAD_REQUEST, "'%s' must be a number (%s)", name, type);
    sb_jw_key(w, to);
    sb_jw_raw(w, from->raw);
    return SB_OK;
}

/* "system, developer, user, assistant or tool": the roles of the rows, for
 * the 400 of a role with none (cut short at cap, which OpenAI's five roles
 * never reach). */
static void role_list(const struct sb_oai_role roles[], char *dst, size_t cap)
{
    size_t at = 0;
    dst[0] = '\0';
    for (size_t k = 0; roles[k].role && at < cap; k++) {
        const char *sep = k == 0 ? "" : roles[k + 1].role ? ", " : " or ";
        int n = snprintf(dst + at, cap - at, "%s%s", sep, roles[k].role);
        at += n < 0 ? cap : (size_t)n;
    }
}

static const struct sb_oai_role *role_row(const struct sb_oai_role roles[], const struct sb_json *m)
{
    const struct sb_json *role = sb_oai_get(m, "role");
    for (size_t k = 0; sb_oai_is_str(role) && roles[k].role; k++)
        if (sb_slice_eq_cstr(role->str, roles[k].role))
            return &roles[k];
    return NULL;
}

sb_err sb_oai_write_messages(struct sb_jw *w, const struct sb_json *msgs,
                             const struct sb_oai_role roles[], void *ud, const char *type,
                             struct sb_error *err)
{
    if (!msgs || msgs->type != SB_JSON_ARRAY || msgs->count == 0)
        return sb_fail(err, SB_E_BAD_REQUEST, "'messages' must be a non-empty array");
    sb_jw_key(w, "messages");
    sb_jw_arr_begin(w);
    size_t i = 0;
    for (const struct sb_json *m = msgs->child; m; m = m->next, i++) {
        const struct sb_oai_role *row = role_row(roles, m);
        if (!row) {
            char names[128];
            role_list(roles, names, sizeof(names));
            return sb_fail(err, SB_E_BAD_REQUEST, "messages[%zu]: role must be %s for %s", i, names,
                           type);
        }
        sb_jw_obj_begin(w);
        if (row->write(ud, m, i) != SB_OK)
            return err->code;
        sb_jw_obj_end(w);
    }
    sb_jw_arr_end(w);
    return SB_OK;
}

/* ==================================================================
 * Errors
 * ================================================================== */

void sb_oai_excerpt(const struct sb_call *c, char *dst, size_t n, struct sb_slice s)
{
    size_t len = s.len < n - 1 ? s.len : n - 1;
    while (len > 0 && len < s.len && ((unsigned char)s.p[len] & 0xC0) == 0x80)
        len--; /* cut at a UTF-8 boundary */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        dst[i] = (ch < 0x20 || ch == 0x7F) ? ' ' : (char)ch;
    }
    dst[len] = '\0';
    if (!c->provider || !c->provider->api_key)
        return;
    struct sb_slice key = sb_secret_reveal(c->provider->api_key);
    if (key.len < 4)
        return;
    for (char *hit = memmem(dst, len, key.p, key.len); hit; hit = memmem(dst, len, key.p, key.len))
        memset(hit, '*', key.len);
}

static const struct {
    int status;
    sb_err code;
    const char *api_code;
} statuses[] = {
    {400, SB_E_BAD_REQUEST, NULL},   {401, SB_E_UNAUTHORIZED, "invalid_api_key"},
    {403, SB_E_FORBIDDEN, NULL},     {404, SB_E_NOT_FOUND, NULL},
    {408, SB_E_TIMEOUT, NULL},       {413, SB_E_TOO_LARGE, NULL},
    {422, SB_E_UNPROCESSABLE, NULL}, {429, SB_E_RATE_LIMITED, "rate_limit_exceeded"},
};

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

void sb_oai_map_status(const struct sb_call *c, const char *type, int status, struct sb_slice msg,
                       const struct sb_oai_hint *hints, struct sb_error *err)
{
    char text[SB_OAI_EXCERPT + 1];
    sb_err code = status >= 400 && status < 500 ? SB_E_BAD_REQUEST : SB_E_UPSTREAM;
    const char *oai = NULL;
    int http = status >= 400 && status < 600 ? status : 502;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status) {
            code = statuses[i].code;
            oai = statuses[i].api_code;
        }
    sb_oai_excerpt(c, text, sizeof(text), msg);
    for (size_t i = 0; hints && hints[i].contains; i++)
        if ((!hints[i].status || hints[i].status == status) &&
            contains_ci(text, hints[i].contains)) {
            code = hints[i].code;
            http = hints[i].http ? hints[i].http : http;
            oai = hints[i].api_code;
            break;
        }
    if (text[0])
        sb_fail(err, code, "upstream %s: %s", sb_oai_pname(c, type), text);
    else
        sb_fail(err, code, "upstream %s: HTTP %d", sb_oai_pname(c, type), status);
    err->http_status = http;
    if (oai)
        snprintf(err->api_code, sizeof(err->api_code), "%s", oai);
}

struct sb_slice sb_oai_error_text(const struct sb_call *c, struct sb_slice body, const char *member)
{
    struct sb_json_limits lim = {.max_depth = SB_OAI_MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) == SB_OK) {
        const struct sb_json *m = sb_oai_get(root, member);
        if (sb_oai_is_str(m))
            return m->str;
    }
    return body;
}
