/* SPDX-License-Identifier: MIT */
/*
 * anthropic_stream.c - Messages API SSE events, translated into chat.completion.chunk events.
 *
 * Each upstream event is translated the moment its bytes are complete; the
 * only thing kept across events is small: the message id and model (from
 * message_start), what kind each content block is and which tool call it
 * is, the usage counts, and the text and signature of the thinking block
 * that is open, because DESIGN.md 6 gives the client the whole signed block
 * on the chunk where it ends (bounded by MAX_THINKING).
 *
 *   message_start        -> first chunk, delta {role: assistant, content: ""}
 *   content_block_start  -> tool_use: tool_calls[{index, id, type, function{name, arguments ""}}]
 *   content_block_delta  -> text_delta: content; input_json_delta: arguments fragment;
 *                           thinking_delta: reasoning_content; signature_delta: kept
 *   content_block_stop   -> thinking / redacted_thinking: delta.thinking_blocks [block]
 *   message_delta        -> the chunk with finish_reason; usage counts updated
 *   message_stop         -> the usage-only chunk (choices: []), then DONE
 *   ping                 -> nothing;  error -> an error event and SB_E_UPSTREAM
 *
 * Unknown event and block types are skipped, as Anthropic's versioning
 * policy asks of clients.
 */
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/anthropic_int.h"
#include "provider/oai_emit.h"
#include "provider/provider.h"
#include "provider/sse.h"

#define STREAM_MAX_LINE (1024u * 1024u)       /* one SSE line */
#define STREAM_MAX_EVENT (4u * 1024u * 1024u) /* one event's data */
#define MAX_THINKING (8u * 1024u * 1024u)     /* one thinking block, held until it ends */
#define MAX_BLOCKS 4096                       /* content blocks in one message */
#define SCRATCH_BLOCK (16u * 1024u)           /* per-event JSON arena */

static const struct sb_json_limits upstream_json = {.max_depth = SB_ANTH_MAX_DEPTH, .max_bytes = 0};

enum block_kind { BLOCK_OTHER, BLOCK_TEXT, BLOCK_THINKING, BLOCK_REDACTED, BLOCK_TOOL };

struct block {
    enum block_kind kind;
    int tool; /* BLOCK_TOOL: the OpenAI tool_calls index */
};

struct stream {
    const struct sb_call *c;
    struct sb_sse sse;        /* framing */
    struct sb_arena *scratch; /* one event's JSON tree, reset after each event */
    struct sb_buf chunk;      /* the chunk being written */
    struct sb_jw w;           /* writes into chunk */
    struct sb_buf think;      /* open thinking block's text (redacted: its data) */
    struct sb_buf sig;        /* open thinking block's signature */
    struct block *blocks;     /* by Anthropic block index, from the call's arena */
    size_t nblocks, cap;
    int ntools;                  /* tool_use blocks seen */
    struct sb_slice id, model;   /* from message_start, in the call's arena */
    int64_t created;             /* chunk "created", fixed for the stream */
    struct sb__anth_usage usage; /* cumulative */
    bool started;                /* message_start seen */
    bool finished;               /* message_delta with a stop_reason seen */
    bool done;                   /* message_stop seen: nothing more counts */
    sb_event_fn fn;              /* of the current feed */
    void *ud;
    struct sb_error *err;
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_sse_free(&st->sse);
    sb_arena_free(st->scratch);
    sb_buf_free(&st->chunk);
    sb_buf_free(&st->think);
    sb_buf_free(&st->sig);
}

void *sb__anth_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->c = c;
    sb_sse_init(&st->sse, STREAM_MAX_LINE, STREAM_MAX_EVENT);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_buf_init(&st->chunk, 0); /* bounded by one event, which the SSE parser bounds */
    sb_buf_init(&st->think, MAX_THINKING);
    sb_buf_init(&st->sig, MAX_THINKING);
    st->created = (int64_t)time(NULL);
    sb__anth_usage_init(&st->usage);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

static int fail(struct stream *st, const char *why)
{
    return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: %s", sb__anth_pname(st->c), why);
}

/* ==================================================================
 * Writing chunks
 * ================================================================== */

static void chunk_head(struct stream *st)
{
    sb_oai_chunk_open(&st->w, &st->chunk, st->id, st->created, st->model, false);
}

/* Starts a chunk and opens its delta object; the caller writes the delta's members. */
static void delta_open(struct stream *st)
{
    sb_oai_chunk_open(&st->w, &st->chunk, st->id, st->created, st->model, true);
}

static int emit(struct stream *st, struct sb_event *ev)
{
    if (st->w.err != SB_OK)
        return fail(st, "a translated chunk could not be written");
    ev->kind = SB_EV_CHUNK;
    ev->chunk = sb_buf_slice(&st->chunk);
    return st->fn(st->ud, ev);
}

/* Closes the delta, writes finish_reason (NULL: null) and emits; text is the content delta. */
static int delta_emit(struct stream *st, struct sb_slice text, const char *finish)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    sb_jw_obj_end(&st->w);
    sb_jw_key(&st->w, "finish_reason");
    sb_jw_cstr(&st->w, finish);
    sb_jw_obj_end(&st->w);
    sb_jw_arr_end(&st->w);
    sb_jw_obj_end(&st->w);
    ev.text = text;
    ev.finish_reason = finish ? sb_slice_cstr(finish) : SB_SLICE_NULL;
    ev.usage.prompt_tokens = ev.usage.completion_tokens = -1;
    return emit(st, &ev);
}

static int usage_emit(struct stream *st)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_head(st);
    sb_jw_arr_end(&st->w);
    sb_jw_key(&st->w, "usage");
    sb__anth_usage_write(&st->w, &st->usage);
    sb_jw_obj_end(&st->w);
    ev.has_usage = ev.usage_only = true;
    ev.usage = sb__anth_usage_counts(&st->usage);
    return emit(st, &ev);
}

static int text_emit(struct stream *st, const char *key, struct sb_slice text)
{
    delta_open(st);
    sb_jw_key(&st->w, key);
    sb_jw_str(&st->w, text);
    return delta_emit(st, strcmp(key, "content") ? SB_SLICE_NULL : text, NULL);
}

/* delta.tool_calls[{index, ...}] for block b; id and name on the first delta only. */
static int tool_emit(struct stream *st, const struct block *b, const struct sb_json *start,
                     struct sb_slice args)
{
    struct sb_jw *w = &st->w;
    delta_open(st);
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, b->tool);
    if (start) {
        sb_jw_key(w, "id");
        sb_jw_str(w, sb__anth_str(start, "id"));
        sb_jw_key(w, "type");
        sb_jw_cstr(w, "function");
    }
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    if (start) {
        sb_jw_key(w, "name");
        sb_jw_str(w, sb__anth_str(start, "name"));
    }
    sb_jw_key(w, "arguments");
    sb_jw_str(w, args);
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    return delta_emit(st, SB_SLICE_NULL, NULL);
}

/* ==================================================================
 * Content blocks
 * ================================================================== */

/* The block at the event's index, which must have started. */
static struct block *block_at(struct stream *st, const struct sb_json *ev)
{
    int64_t i;
    const struct sb_json *idx = sb__anth_get(ev, "index");
    if (!idx || !sb_json_int64(idx, &i) || i < 0 || (size_t)i >= st->nblocks)
        return NULL;
    return &st->blocks[i];
}

static struct block *block_new(struct stream *st, const struct sb_json *ev)
{
    int64_t i;
    const struct sb_json *idx = sb__anth_get(ev, "index");
    if (!idx || !sb_json_int64(idx, &i) || (size_t)i != st->nblocks || i >= MAX_BLOCKS)
        return NULL; /* blocks arrive in order 0, 1, 2... */
    if (st->nblocks == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        struct block *b = sb_arena_alloc(st->c->arena, cap * sizeof(*b));
        if (st->nblocks)
            memcpy(b, st->blocks, st->nblocks * sizeof(*b));
        st->blocks = b;
        st->cap = cap;
    }
    st->blocks[st->nblocks] = (struct block){BLOCK_OTHER, -1};
    return &st->blocks[st->nblocks++];
}

static const struct {
    const char *type;
    enum block_kind kind;
} block_kinds[] = {{"text", BLOCK_TEXT},
                   {"thinking", BLOCK_THINKING},
                   {"redacted_thinking", BLOCK_REDACTED},
                   {"tool_use", BLOCK_TOOL}};

static int on_block_start(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *cb = sb__anth_get(ev, "content_block");
    struct sb_slice type = sb__anth_str(cb, "type");
    struct block *b = block_new(st, ev);
    if (!b)
        return fail(st, "content_block_start out of order");
    for (size_t i = 0; i < sizeof(block_kinds) / sizeof(block_kinds[0]); i++)
        if (sb_slice_eq_cstr(type, block_kinds[i].type))
            b->kind = block_kinds[i].kind;
    sb_buf_reset(&st->think);
    sb_buf_reset(&st->sig);
    switch (b->kind) {
    case BLOCK_TEXT: {
        struct sb_slice text = sb__anth_str(cb, "text");
        return text.len ? text_emit(st, "content", text) : 0;
    }
    case BLOCK_THINKING:
        if (sb_buf_append_slice(&st->think, sb__anth_str(cb, "thinking")) != SB_OK ||
            sb_buf_append_slice(&st->sig, sb__anth_str(cb, "signature")) != SB_OK)
            return fail(st, "thinking block too large");
        return 0;
    case BLOCK_REDACTED:
        if (sb_buf_append_slice(&st->think, sb__anth_str(cb, "data")) != SB_OK)
            return fail(st, "redacted thinking block too large");
        return 0;
    case BLOCK_TOOL:
        b->tool = st->ntools++;
        return tool_emit(st, b, cb, SB_SLICE(""));
    default:
        return 0;
    }
}

static int on_thinking_delta(struct stream *st, const struct sb_json *d, bool signature)
{
    struct sb_slice s = sb__anth_str(d, signature ? "signature" : "thinking");
    if (sb_buf_append_slice(signature ? &st->sig : &st->think, s) != SB_OK)
        return fail(st, "thinking block too large");
    return signature || !s.len ? 0 : text_emit(st, "reasoning_content", s);
}

static int on_block_delta(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *d = sb__anth_get(ev, "delta");
    struct sb_slice type = sb__anth_str(d, "type");
    struct block *b = block_at(st, ev);
    if (!b)
        return fail(st, "content_block_delta for a block that never started");
    if (b->kind == BLOCK_TEXT && sb_slice_eq_cstr(type, "text_delta")) {
        struct sb_slice text = sb__anth_str(d, "text");
        return text.len ? text_emit(st, "content", text) : 0;
    }
    if (b->kind == BLOCK_TOOL && sb_slice_eq_cstr(type, "input_json_delta")) {
        struct sb_slice part = sb__anth_str(d, "partial_json");
        return part.len ? tool_emit(st, b, NULL, part) : 0;
    }
    if (b->kind == BLOCK_THINKING && sb_slice_eq_cstr(type, "thinking_delta"))
        return on_thinking_delta(st, d, false);
    if (b->kind == BLOCK_THINKING && sb_slice_eq_cstr(type, "signature_delta"))
        return on_thinking_delta(st, d, true);
    return 0; /* citations and later delta types carry nothing we translate */
}

static int on_block_stop(struct stream *st, const struct sb_json *ev)
{
    struct block *b = block_at(st, ev);
    if (!b)
        return fail(st, "content_block_stop for a block that never started");
    if (b->kind != BLOCK_THINKING && b->kind != BLOCK_REDACTED)
        return 0;
    delta_open(st);
    sb_jw_key(&st->w, "thinking_blocks");
    sb_jw_arr_begin(&st->w);
    sb__anth_thinking_block(&st->w, b->kind == BLOCK_REDACTED, sb_buf_slice(&st->think),
                            sb_buf_slice(&st->sig));
    sb_jw_arr_end(&st->w);
    return delta_emit(st, SB_SLICE_NULL, NULL);
}

/* ==================================================================
 * Message events
 * ================================================================== */

static int on_message_start(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *msg = sb__anth_get(ev, "message");
    if (st->started)
        return 0;
    st->started = true;
    st->id = sb__anth_chat_id(st->c, sb__anth_str(msg, "id"));
    st->model = sb__anth_nz(sb_arena_slice(st->c->arena, sb__anth_str(msg, "model")));
    sb__anth_usage_read(&st->usage, sb__anth_get(msg, "usage"));
    delta_open(st);
    sb_jw_key(&st->w, "role");
    sb_jw_cstr(&st->w, "assistant");
    sb_jw_key(&st->w, "content");
    sb_jw_cstr(&st->w, "");
    return delta_emit(st, SB_SLICE_NULL, NULL);
}

static int on_message_delta(struct stream *st, const struct sb_json *ev)
{
    const struct sb_json *reason = sb__anth_get(sb__anth_get(ev, "delta"), "stop_reason");
    sb__anth_usage_read(&st->usage, sb__anth_get(ev, "usage"));
    if (!sb__anth_is_str(reason) || st->finished)
        return 0;
    st->finished = true;
    delta_open(st);
    return delta_emit(st, SB_SLICE_NULL, sb__anth_finish_reason(reason->str));
}

static int on_message_stop(struct stream *st)
{
    struct sb_event ev;
    int rc = usage_emit(st);
    if (rc)
        return rc;
    st->done = true;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_DONE;
    return st->fn(st->ud, &ev);
}

/* An error event: the client gets it as an event, and the feed fails with the same words. */
static int on_error(struct stream *st, const struct sb_json *ev, struct sb_slice raw)
{
    struct sb_event e;
    memset(&e, 0, sizeof(e));
    e.kind = SB_EV_ERROR;
    sb__anth_error(st->c, 0, sb__anth_get(ev, "error"), raw, &e.error);
    st->fn(st->ud, &e);
    *st->err = e.error;
    st->err->code = SB_E_UPSTREAM;
    return SB_E_UPSTREAM;
}

typedef int (*event_fn)(struct stream *st, const struct sb_json *ev);

static int on_stop_event(struct stream *st, const struct sb_json *ev)
{
    (void)ev;
    return on_message_stop(st);
}

static const struct {
    const char *type;
    event_fn fn;
    bool needs_start; /* only valid after message_start */
} events[] = {
    {"message_start", on_message_start, false},    {"content_block_start", on_block_start, true},
    {"content_block_delta", on_block_delta, true}, {"content_block_stop", on_block_stop, true},
    {"message_delta", on_message_delta, true},     {"message_stop", on_stop_event, true},
};

static int dispatch(struct stream *st, const struct sb_json *root, struct sb_slice type,
                    struct sb_slice raw)
{
    if (sb_slice_eq_cstr(type, "error"))
        return on_error(st, root, raw);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (!sb_slice_eq_cstr(type, events[i].type))
            continue;
        if (events[i].needs_start && !st->started)
            return fail(st, "stream event before message_start");
        return events[i].fn(st, root);
    }
    return 0; /* ping, and event types newer than this adapter */
}

static int on_sse(void *ud, const struct sb_sse_event *sev)
{
    struct stream *st = ud;
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (st->done)
        return 0;
    if (sb_json_parse(st->scratch, sev->data.p, sev->data.len, &upstream_json, &root, &jerr) !=
            SB_OK ||
        root->type != SB_JSON_OBJECT)
        return fail(st, "stream event is not a JSON object");
    struct sb_slice type = sb__anth_str(root, "type");
    if (sb_slice_eq_cstr(sev->event, "error"))
        type = SB_SLICE("error");
    int rc = dispatch(st, root, type, sev->data);
    sb_arena_reset(st->scratch);
    return rc;
}

sb_err sb__anth_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                            struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    sb_err rc = sb_sse_feed(&st->sse, p, n, on_sse, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream event exceeds %u bytes",
                     sb__anth_pname(st->c), STREAM_MAX_EVENT);
    return rc;
}

sb_err sb__anth_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->done)
        return SB_OK;
    if (sb_sse_finish(&st->sse, err) != SB_OK)
        return fail(st, "stream ended inside an event");
    if (!st->finished)
        return fail(st, "stream ended before the message was complete");
    /* The stop_reason arrived, only message_stop is missing: close the stream for the client. */
    return (sb_err)on_message_stop(st);
}
