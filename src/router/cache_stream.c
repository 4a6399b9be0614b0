/* SPDX-License-Identifier: MIT */
/*
 * cache_stream.c - a cached answer replayed as a stream (cache.h); the
 * inverse, a stream rebuilt into an answer, is cache_acc.c.
 *
 * Rendering replays a stored chat.completion as the chat.completion.chunk
 * events OpenAI sends: every chunk repeats the envelope (id, created,
 * model, system_fingerprint: every top-level member but object, choices and
 * usage), the first delta carries the role, text comes in pieces cut at
 * UTF-8 boundaries, a tool call's first delta carries its index, id, type
 * and name (and any other member of the call, such as Gemini's
 * extra_content) and later ones its arguments. Message members the
 * renderer does not know (thinking_blocks, annotations, ...) go in one
 * delta, verbatim; null members and empty arrays are left out, as streams
 * leave them out. A choice's logprobs are not replayed.
 */
#include <string.h>

#include "router/cache.h"

#define DEFAULT_PIECE 64

static bool is_empty(const struct sb_json *j)
{
    return !j || j->type == SB_JSON_NULL || (j->type == SB_JSON_ARRAY && j->count == 0);
}

/* ---- rendering ---- */

struct render {
    struct sb_buf *out;
    const struct sb_json *root;
    struct sb_jw w;
    bool usage_null; /* include_usage: every chunk but the last says "usage":null */
    size_t piece;
};

/* Starts "data: {envelope, "choices":[{"index":i,"delta":" ; the caller writes the delta. */
static void chunk_begin(struct render *r, const struct sb_json *index)
{
    sb_buf_append_cstr(r->out, "data: ");
    sb_jw_init(&r->w, r->out);
    sb_jw_obj_begin(&r->w);
    for (const struct sb_json *m = r->root->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "object") || sb_slice_eq_cstr(m->key, "choices") ||
            sb_slice_eq_cstr(m->key, "usage"))
            continue;
        sb_jw_key_slice(&r->w, m->key);
        sb_jw_raw(&r->w, m->raw);
    }
    sb_jw_key(&r->w, "object");
    sb_jw_cstr(&r->w, "chat.completion.chunk");
    sb_jw_key(&r->w, "choices");
    sb_jw_arr_begin(&r->w);
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "index");
    sb_jw_raw(&r->w, index ? index->raw : SB_SLICE("0"));
    sb_jw_key(&r->w, "delta");
}

/* Closes the choice (with finish, or null) and the chunk. */
static void chunk_end(struct render *r, const struct sb_json *finish)
{
    sb_jw_key(&r->w, "finish_reason");
    if (finish)
        sb_jw_raw(&r->w, finish->raw);
    else
        sb_jw_null(&r->w);
    sb_jw_obj_end(&r->w);
    sb_jw_arr_end(&r->w);
    if (r->usage_null) {
        sb_jw_key(&r->w, "usage");
        sb_jw_null(&r->w);
    }
    sb_jw_obj_end(&r->w);
    sb_buf_append_cstr(r->out, "\n\n");
}

/* The length of the next piece of s: at most max bytes, never inside a UTF-8 sequence. */
static size_t piece_len(struct sb_slice s, size_t max)
{
    size_t n = s.len <= max ? s.len : max;
    while (n < s.len && n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    return n ? n : (s.len <= max ? s.len : max); /* max < one character: cut anyway */
}

/* One delta per piece of text: {"<key>": piece}. */
static void render_text(struct render *r, const struct sb_json *index, const char *key,
                        const struct sb_json *text)
{
    if (!text || !sb_json_is_string(text))
        return;
    for (struct sb_slice s = text->str; s.len;) {
        size_t n = piece_len(s, r->piece);
        chunk_begin(r, index);
        sb_jw_obj_begin(&r->w);
        sb_jw_key(&r->w, key);
        sb_jw_str(&r->w, (struct sb_slice){s.p, n});
        sb_jw_obj_end(&r->w);
        chunk_end(r, NULL);
        s.p += n;
        s.len -= n;
    }
}

/* Opens delta {"tool_calls":[{"index":k, ... ; the caller writes the rest of the call. */
static void tool_begin(struct render *r, const struct sb_json *index, size_t k)
{
    chunk_begin(r, index);
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "tool_calls");
    sb_jw_arr_begin(&r->w);
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "index");
    sb_jw_int(&r->w, (int64_t)k);
}

static void tool_end(struct render *r)
{
    sb_jw_obj_end(&r->w);
    sb_jw_arr_end(&r->w);
    sb_jw_obj_end(&r->w);
    chunk_end(r, NULL);
}

static void render_tool(struct render *r, const struct sb_json *index, size_t k,
                        const struct sb_json *call)
{
    const struct sb_json *fn = sb_json_get(call, "function");
    const struct sb_json *args = fn ? sb_json_get(fn, "arguments") : NULL;
    tool_begin(r, index, k);
    for (const struct sb_json *m = call->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "index") || is_empty(m))
            continue;
        sb_jw_key_slice(&r->w, m->key);
        if (!sb_slice_eq_cstr(m->key, "function") || m->type != SB_JSON_OBJECT) {
            sb_jw_raw(&r->w, m->raw);
            continue;
        }
        sb_jw_obj_begin(&r->w); /* the function, its arguments empty for now */
        for (const struct sb_json *f = m->child; f; f = f->next) {
            sb_jw_key_slice(&r->w, f->key);
            if (sb_slice_eq_cstr(f->key, "arguments"))
                sb_jw_cstr(&r->w, "");
            else
                sb_jw_raw(&r->w, f->raw);
        }
        sb_jw_obj_end(&r->w);
    }
    tool_end(r);
    for (struct sb_slice s = sb_json_is_string(args) ? args->str : SB_SLICE_NULL; s.len;) {
        size_t n = piece_len(s, r->piece);
        tool_begin(r, index, k);
        sb_jw_key(&r->w, "function");
        sb_jw_obj_begin(&r->w);
        sb_jw_key(&r->w, "arguments");
        sb_jw_str(&r->w, (struct sb_slice){s.p, n});
        sb_jw_obj_end(&r->w);
        tool_end(r);
        s.p += n;
        s.len -= n;
    }
}

static bool known_member(struct sb_slice key)
{
    static const char *const known[] = {"role", "content", "reasoning_content", "refusal",
                                        "tool_calls"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (sb_slice_eq_cstr(key, known[i]))
            return true;
    return false;
}

/* The message's other members, verbatim, in one delta (none: no chunk).
 * A choice with no message object (a stored answer is whatever the upstream
 * sent) has none. */
static void render_others(struct render *r, const struct sb_json *index, const struct sb_json *msg)
{
    bool open = false;
    if (!msg || msg->type != SB_JSON_OBJECT)
        return;
    for (const struct sb_json *m = msg->child; m; m = m->next) {
        if (known_member(m->key) || is_empty(m))
            continue;
        if (!open) {
            chunk_begin(r, index);
            sb_jw_obj_begin(&r->w);
            open = true;
        }
        sb_jw_key_slice(&r->w, m->key);
        sb_jw_raw(&r->w, m->raw);
    }
    if (open) {
        sb_jw_obj_end(&r->w);
        chunk_end(r, NULL);
    }
}

static void render_choice(struct render *r, const struct sb_json *choice)
{
    const struct sb_json *index = sb_json_get(choice, "index");
    const struct sb_json *msg = sb_json_get(choice, "message");
    const struct sb_json *role = sb_json_get(msg, "role"), *tools = sb_json_get(msg, "tool_calls");
    const struct sb_json *content = sb_json_get(msg, "content");
    chunk_begin(r, index);
    sb_jw_obj_begin(&r->w);
    sb_jw_key(&r->w, "role");
    sb_jw_raw(&r->w, sb_json_is_string(role) ? role->raw : SB_SLICE("\"assistant\""));
    sb_jw_key(&r->w, "content");
    if (sb_json_is_string(content))
        sb_jw_cstr(&r->w, "");
    else
        sb_jw_null(&r->w);
    sb_jw_obj_end(&r->w);
    chunk_end(r, NULL);
    render_text(r, index, "reasoning_content", sb_json_get(msg, "reasoning_content"));
    render_text(r, index, "content", content);
    render_text(r, index, "refusal", sb_json_get(msg, "refusal"));
    size_t k = 0;
    for (const struct sb_json *t = tools && tools->type == SB_JSON_ARRAY ? tools->child : NULL; t;
         t = t->next)
        if (t->type == SB_JSON_OBJECT)
            render_tool(r, index, k++, t);
    render_others(r, index, msg);
    chunk_begin(r, index);
    sb_jw_obj_begin(&r->w);
    sb_jw_obj_end(&r->w);
    chunk_end(r, sb_json_get(choice, "finish_reason"));
}

static void render_usage(struct render *r)
{
    const struct sb_json *usage = sb_json_get(r->root, "usage");
    r->usage_null = false;
    sb_buf_append_cstr(r->out, "data: ");
    sb_jw_init(&r->w, r->out);
    sb_jw_obj_begin(&r->w);
    for (const struct sb_json *m = r->root->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "object") || sb_slice_eq_cstr(m->key, "choices") ||
            sb_slice_eq_cstr(m->key, "usage"))
            continue;
        sb_jw_key_slice(&r->w, m->key);
        sb_jw_raw(&r->w, m->raw);
    }
    sb_jw_key(&r->w, "object");
    sb_jw_cstr(&r->w, "chat.completion.chunk");
    sb_jw_key(&r->w, "choices");
    sb_jw_arr_begin(&r->w);
    sb_jw_arr_end(&r->w);
    sb_jw_key(&r->w, "usage");
    sb_jw_raw(&r->w, usage ? usage->raw : SB_SLICE("null"));
    sb_jw_obj_end(&r->w);
    sb_buf_append_cstr(r->out, "\n\n");
}

sb_err sb_cache_render_sse(struct sb_slice body, bool include_usage, size_t piece,
                           struct sb_buf *out, struct sb_error *err)
{
    static const struct sb_json_limits lim = {.max_depth = 64};
    struct sb_arena *a = sb_arena_create(8192);
    struct sb_json *root = NULL;
    struct render r = {.out = out, .usage_null = include_usage};
    sb_err rc = sb_json_parse(a, body.p, body.len, &lim, &root, err);
    const struct sb_json *choices = rc == SB_OK ? sb_json_get(root, "choices") : NULL;
    if (rc == SB_OK && (!choices || choices->type != SB_JSON_ARRAY))
        rc = sb_fail(err, SB_E_BAD_JSON, "a cached answer has no choices");
    if (rc != SB_OK)
        goto out;
    r.root = root;
    r.piece = piece ? piece : DEFAULT_PIECE;
    for (const struct sb_json *c = choices->child; c; c = c->next)
        if (c->type == SB_JSON_OBJECT)
            render_choice(&r, c);
    if (include_usage)
        render_usage(&r);
    sb_buf_append_cstr(out, "data: [DONE]\n\n");
out:
    sb_arena_free(a);
    return rc;
}
