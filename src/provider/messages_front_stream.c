/* SPDX-License-Identifier: MIT */
/*
 * messages_front_stream.c - OpenAI chat.completion.chunk JSON in, Anthropic
 * Messages SSE events out, one chunk at a time.
 *
 * Anthropic streams content as numbered blocks, each opened, filled by
 * deltas and closed; OpenAI streams one delta object per chunk whose
 * members may switch kind at any time. The state below maps one onto the
 * other: the kind of the block(s) now open, the next block index, and for
 * tool calls which OpenAI tool index owns which block. Parallel tool calls
 * stay open together (OpenAI may interleave their argument fragments;
 * input_json_delta names its block by index, so that is representable) and
 * close when anything else starts or the message ends. A thinking block
 * learns its signature from delta.thinking_blocks in the chunk where the
 * upstream block ended (DESIGN.md §6).
 *
 * The usage chunk arrives after the finish_reason chunk, so message_delta
 * (stop_reason and usage) and message_stop are written by finish, not when
 * the finish_reason is seen. No I/O here; events are appended to the
 * caller's buffer.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "provider/messages_front.h"
#include "provider/messages_front_int.h"

#define SCRATCH_BLOCK (16u * 1024u)

enum open_kind { OPEN_NONE, OPEN_TEXT, OPEN_THINKING, OPEN_TOOLS };

struct tool {
    int64_t oai;   /* OpenAI tool_calls[].index */
    int64_t block; /* our content block index */
};

struct sb_messages_front_stream {
    struct sb_arena *a;       /* the caller's: this state and the tool table */
    struct sb_arena *scratch; /* one chunk's JSON tree */
    const char *model;        /* reported model, or NULL for the upstream's */
    bool started;             /* message_start written */
    bool finished;            /* a finish_reason arrived */
    const char *stop_reason;  /* Anthropic's, once finished */
    int64_t next;             /* index of the next content block */
    enum open_kind open;      /* what is open now */
    int64_t open_block;       /* the open text or thinking block */
    struct tool *tools;       /* every tool block so far */
    size_t ntools, cap;
    size_t first_open_tool; /* tools[first_open_tool..ntools) are open when open == OPEN_TOOLS */
    bool has_usage, has_cached, has_created;
    int64_t prompt, completion, cached, created; /* created: cache writes (Anthropic) */
};

static const struct sb_json_limits chunk_limits = {.max_depth = 64, .max_bytes = 0};

static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static bool jstr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

static void scratch_free(void *ud)
{
    sb_arena_free(ud);
}

struct sb_messages_front_stream *sb_messages_front_stream_open(struct sb_arena *a,
                                                               const char *model)
{
    struct sb_messages_front_stream *st = sb_arena_calloc(a, sizeof(*st));
    st->a = a;
    st->model = model;
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_arena_on_free(a, scratch_free, st->scratch);
    return st;
}

/* ---- event writing ---- */

static void ev_begin(struct sb_buf *out, struct sb_jw *w, const char *name)
{
    sb_buf_printf(out, "event: %s\ndata: ", name);
    sb_jw_init(w, out);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, name);
}

static void ev_end(struct sb_buf *out, struct sb_jw *w)
{
    sb_jw_obj_end(w);
    sb_buf_append_cstr(out, "\n\n");
}

static void ev_index(struct sb_buf *out, const char *name, int64_t index)
{
    struct sb_jw w;
    ev_begin(out, &w, name);
    sb_jw_key(&w, "index");
    sb_jw_int(&w, index);
    ev_end(out, &w);
}

static void message_start(struct sb_messages_front_stream *st, const struct sb_json *root,
                          struct sb_buf *out)
{
    const struct sb_json *id = jget(root, "id"), *m = jget(root, "model");
    struct sb_jw w;
    ev_begin(out, &w, "message_start");
    sb_jw_key(&w, "message");
    sb_jw_obj_begin(&w);
    sb__messages_front_id(&w, jstr(id) ? id->str : SB_SLICE(""));
    sb_jw_key(&w, "type");
    sb_jw_cstr(&w, "message");
    sb_jw_key(&w, "role");
    sb_jw_cstr(&w, "assistant");
    sb_jw_key(&w, "model");
    sb_jw_str(&w, st->model ? sb_slice_cstr(st->model) : jstr(m) ? m->str : SB_SLICE(""));
    sb_jw_key(&w, "content");
    sb_jw_raw(&w, SB_SLICE("[]"));
    sb_jw_key(&w, "stop_reason");
    sb_jw_null(&w);
    sb_jw_key(&w, "stop_sequence");
    sb_jw_null(&w);
    sb_jw_key(&w, "usage"); /* OpenAI reports usage at the end: message_delta carries it */
    sb_jw_raw(&w, SB_SLICE("{\"input_tokens\":0,\"output_tokens\":0}"));
    sb_jw_obj_end(&w);
    ev_end(out, &w);
    sb_buf_append_cstr(out, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    st->started = true;
}

/* ---- blocks ---- */

static void close_open(struct sb_messages_front_stream *st, struct sb_buf *out)
{
    if (st->open == OPEN_TEXT || st->open == OPEN_THINKING)
        ev_index(out, "content_block_stop", st->open_block);
    for (size_t i = st->first_open_tool; st->open == OPEN_TOOLS && i < st->ntools; i++)
        ev_index(out, "content_block_stop", st->tools[i].block);
    st->open = OPEN_NONE;
}

/* content_block_start for a text or thinking block; the caller adds the block's members. */
static int64_t block_start(struct sb_messages_front_stream *st, struct sb_buf *out, struct sb_jw *w,
                           const char *type)
{
    int64_t index = st->next++;
    ev_begin(out, w, "content_block_start");
    sb_jw_key(w, "index");
    sb_jw_int(w, index);
    sb_jw_key(w, "content_block");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, type);
    return index;
}

static void block_start_end(struct sb_buf *out, struct sb_jw *w)
{
    sb_jw_obj_end(w);
    ev_end(out, w);
}

static void open_kind(struct sb_messages_front_stream *st, struct sb_buf *out, enum open_kind k)
{
    struct sb_jw w;
    if (st->open == k)
        return;
    close_open(st, out);
    bool text = k == OPEN_TEXT;
    st->open_block = block_start(st, out, &w, text ? "text" : "thinking");
    sb_jw_key(&w, text ? "text" : "thinking");
    sb_jw_cstr(&w, "");
    if (!text) {
        sb_jw_key(&w, "signature");
        sb_jw_cstr(&w, "");
    }
    block_start_end(out, &w);
    st->open = k;
}

/* content_block_delta of the given delta type, one string member. */
static void delta(struct sb_buf *out, int64_t index, const char *type, const char *member,
                  struct sb_slice s)
{
    struct sb_jw w;
    ev_begin(out, &w, "content_block_delta");
    sb_jw_key(&w, "index");
    sb_jw_int(&w, index);
    sb_jw_key(&w, "delta");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "type");
    sb_jw_cstr(&w, type);
    sb_jw_key(&w, member);
    sb_jw_str(&w, s);
    sb_jw_obj_end(&w);
    ev_end(out, &w);
}

static void on_text(struct sb_messages_front_stream *st, struct sb_buf *out, struct sb_slice t)
{
    open_kind(st, out, OPEN_TEXT);
    delta(out, st->open_block, "text_delta", "text", t);
}

static void on_reasoning(struct sb_messages_front_stream *st, struct sb_buf *out, struct sb_slice t)
{
    open_kind(st, out, OPEN_THINKING);
    delta(out, st->open_block, "thinking_delta", "thinking", t);
}

/* One entry of delta.thinking_blocks: the end of a block, with its signature. */
static void on_thinking_block(struct sb_messages_front_stream *st, struct sb_buf *out,
                              const struct sb_json *b)
{
    const struct sb_json *type = jget(b, "type"), *th = jget(b, "thinking");
    const struct sb_json *sig = jget(b, "signature"), *data = jget(b, "data");
    struct sb_jw w;
    if (jstr(type) && sb_slice_eq_cstr(type->str, "redacted_thinking") && jstr(data)) {
        close_open(st, out);
        int64_t index = block_start(st, out, &w, "redacted_thinking");
        sb_jw_key(&w, "data");
        sb_jw_str(&w, data->str);
        block_start_end(out, &w);
        ev_index(out, "content_block_stop", index);
        return;
    }
    if (!jstr(type) || !sb_slice_eq_cstr(type->str, "thinking"))
        return;
    if (st->open != OPEN_THINKING) { /* a whole block at once: its text has not streamed */
        open_kind(st, out, OPEN_THINKING);
        if (jstr(th) && th->str.len)
            delta(out, st->open_block, "thinking_delta", "thinking", th->str);
    }
    if (jstr(sig) && sig->str.len)
        delta(out, st->open_block, "signature_delta", "signature", sig->str);
    close_open(st, out);
}

/* ---- tool calls ---- */

static struct tool *find_tool(struct sb_messages_front_stream *st, int64_t oai)
{
    for (size_t i = 0; i < st->ntools; i++)
        if (st->tools[i].oai == oai)
            return &st->tools[i];
    return NULL;
}

static struct tool *new_tool(struct sb_messages_front_stream *st, struct sb_buf *out, int64_t oai,
                             const struct sb_json *call)
{
    const struct sb_json *id = jget(call, "id"), *name = jget(jget(call, "function"), "name");
    if (st->open != OPEN_TOOLS) {
        close_open(st, out);
        st->first_open_tool = st->ntools;
        st->open = OPEN_TOOLS;
    }
    if (st->ntools == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4;
        struct tool *t = sb_arena_alloc(st->a, cap * sizeof(*t));
        if (st->ntools)
            memcpy(t, st->tools, st->ntools * sizeof(*t));
        st->tools = t;
        st->cap = cap;
    }
    struct tool *t = &st->tools[st->ntools++];
    struct sb_jw w;
    char fallback[40];
    snprintf(fallback, sizeof(fallback), "toolu_sb_%lld", (long long)oai);
    t->oai = oai;
    t->block = block_start(st, out, &w, "tool_use");
    sb_jw_key(&w, "id");
    sb_jw_str(&w, jstr(id) && id->str.len ? id->str : sb_slice_cstr(fallback));
    sb_jw_key(&w, "name");
    sb_jw_str(&w, jstr(name) ? name->str : SB_SLICE(""));
    sb_jw_key(&w, "input");
    sb_jw_raw(&w, SB_SLICE("{}"));
    sb__mf_put_extra(&w, call);
    block_start_end(out, &w);
    return t;
}

static sb_err on_tool_call(struct sb_messages_front_stream *st, struct sb_buf *out,
                           const struct sb_json *call, int64_t pos, struct sb_error *err)
{
    int64_t oai = pos;
    sb_json_int64(jget(call, "index"), &oai);
    struct tool *t = find_tool(st, oai);
    if (!t)
        t = new_tool(st, out, oai, call);
    else if (st->open != OPEN_TOOLS || (size_t)(t - st->tools) < st->first_open_tool)
        return sb_fail(err, SB_E_UPSTREAM,
                       "upstream sent arguments for tool call %lld after its block ended",
                       (long long)oai);
    const struct sb_json *args = jget(jget(call, "function"), "arguments");
    if (jstr(args) && args->str.len)
        delta(out, t->block, "input_json_delta", "partial_json", args->str);
    return SB_OK;
}

/* ---- one chunk ---- */

static void take_usage(struct sb_messages_front_stream *st, const struct sb_json *u)
{
    if (!u || u->type != SB_JSON_OBJECT)
        return;
    st->has_usage = true;
    st->prompt = st->completion = 0;
    sb_json_int64(jget(u, "prompt_tokens"), &st->prompt);
    sb_json_int64(jget(u, "completion_tokens"), &st->completion);
    st->has_cached =
        sb_json_int64(jget(jget(u, "prompt_tokens_details"), "cached_tokens"), &st->cached);
    st->has_created = sb_json_int64(jget(jget(u, "prompt_tokens_details"), "cache_creation_tokens"),
                                    &st->created);
}

static sb_err on_delta(struct sb_messages_front_stream *st, const struct sb_json *d,
                       struct sb_buf *out, struct sb_error *err)
{
    const struct sb_json *r = sb__messages_front_reasoning(d);
    const struct sb_json *tb = jget(d, "thinking_blocks"), *c = jget(d, "content");
    const struct sb_json *refusal = jget(d, "refusal"), *calls = jget(d, "tool_calls");
    sb_err rc = SB_OK;
    if (r)
        on_reasoning(st, out, r->str);
    for (const struct sb_json *b = tb && tb->type == SB_JSON_ARRAY ? tb->child : NULL; b;
         b = b->next)
        on_thinking_block(st, out, b);
    if (jstr(c) && c->str.len)
        on_text(st, out, c->str);
    if (jstr(refusal) && refusal->str.len)
        on_text(st, out, refusal->str);
    int64_t pos = 0;
    for (const struct sb_json *call = calls && calls->type == SB_JSON_ARRAY ? calls->child : NULL;
         call && rc == SB_OK; call = call->next, pos++)
        rc = on_tool_call(st, out, call, pos, err);
    return rc;
}

static sb_err on_chunk(struct sb_messages_front_stream *st, const struct sb_json *root,
                       struct sb_buf *out, struct sb_error *err)
{
    const struct sb_json *e = jget(root, "error");
    if (e && e->type != SB_JSON_NULL) {
        const struct sb_json *m = jget(e, "message");
        struct sb_slice msg = jstr(m) ? m->str : jstr(e) ? e->str : SB_SLICE("stream error");
        return sb_fail(err, SB_E_UPSTREAM, "upstream: %.*s", (int)(msg.len > 200 ? 200 : msg.len),
                       msg.p);
    }
    if (!st->started)
        message_start(st, root, out);
    const struct sb_json *choice = sb_json_at(jget(root, "choices"), 0);
    const struct sb_json *fr = jget(choice, "finish_reason");
    sb_err rc = on_delta(st, jget(choice, "delta"), out, err);
    if (rc == SB_OK && jstr(fr) && fr->str.len) {
        close_open(st, out);
        st->finished = true;
        st->stop_reason = sb__messages_front_stop_reason(fr->str);
    }
    take_usage(st, jget(root, "usage"));
    return rc;
}

sb_err sb_messages_front_stream_feed(struct sb_messages_front_stream *st, struct sb_slice chunk,
                                     struct sb_buf *out, struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    sb_err rc;
    size_t mark = out->len;
    if (sb_json_parse(st->scratch, chunk.p, chunk.len, &chunk_limits, &root, &jerr) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream stream chunk is not a JSON object");
    else
        rc = on_chunk(st, root, out, err);
    if (rc != SB_OK)
        out->len = mark; /* nothing half-written reaches the client */
    sb_arena_reset(st->scratch);
    return rc;
}

sb_err sb_messages_front_stream_finish(struct sb_messages_front_stream *st, struct sb_buf *out,
                                       struct sb_error *err)
{
    struct sb_jw w;
    if (!st->finished)
        return sb_fail(err, SB_E_UPSTREAM, "upstream stream ended before it finished");
    close_open(st, out);
    ev_begin(out, &w, "message_delta");
    sb_jw_key(&w, "delta");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "stop_reason");
    sb_jw_cstr(&w, st->stop_reason);
    sb_jw_key(&w, "stop_sequence");
    sb_jw_null(&w);
    sb_jw_obj_end(&w);
    sb_jw_key(&w, "usage");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "output_tokens");
    sb_jw_int(&w, st->has_usage ? st->completion : 0);
    if (st->has_usage) {
        int64_t other = (st->has_cached ? st->cached : 0) + (st->has_created ? st->created : 0);
        sb_jw_key(&w, "input_tokens");
        sb_jw_int(&w, st->prompt > other ? st->prompt - other : 0);
        if (st->has_created) {
            sb_jw_key(&w, "cache_creation_input_tokens");
            sb_jw_int(&w, st->created);
        }
        sb_jw_key(&w, "cache_read_input_tokens");
        if (st->has_cached)
            sb_jw_int(&w, st->cached);
        else
            sb_jw_null(&w);
    }
    sb_jw_obj_end(&w);
    ev_end(out, &w);
    sb_buf_append_cstr(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    return SB_OK;
}
