/* SPDX-License-Identifier: MIT */
/*
 * bedrock_stream.c - the `bedrock` adapter: ConverseStream frames → chunks, and errors.
 *
 * Frames arrive as AWS binary event-stream messages (eventstream.c checks
 * lengths and CRCs and hands us whole messages, however the bytes were
 * split). Each :event-type maps to at most one chat.completion.chunk:
 *
 *   messageStart                 delta {"role":"assistant","content":""}
 *   contentBlockStart (toolUse)  delta.tool_calls[{index,id,type,function{name,arguments:""}}]
 *   contentBlockDelta text       delta.content
 *   contentBlockDelta toolUse    delta.tool_calls[{index,function{arguments: fragment}}]
 *   contentBlockDelta reasoning  delta.reasoning_content (text); signature/redacted are kept
 *   contentBlockStop (reasoning) delta.thinking_blocks[one block, signature included]
 *   messageStop                  delta {} and finish_reason
 *   metadata                     usage-only chunk (choices: [])
 *
 * Exception frames (:message-type exception or error) end the stream with
 * the upstream's words. A stream that ends before messageStop, or inside a
 * frame, is an error; after messageStop, the end of the body is DONE.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/bedrock_int.h"
#include "provider/eventstream.h"
#include "provider/oai_emit.h"
#include "provider/provider.h"

#define MAX_FRAME (4u * 1024u * 1024u)     /* one event-stream message */
#define MAX_REASONING (4u * 1024u * 1024u) /* one reasoning block's text, signature or data */
#define MAX_TOOL_BLOCKS 256                /* tool calls in one answer */
#define SCRATCH_BLOCK (16u * 1024u)        /* per-frame JSON arena */
#define MAX_EXCERPT 200                    /* bytes of an upstream message we quote */

#define jget sb__bedrock_get
#define jis sb__bedrock_is

static const struct sb_json_limits upstream_json = {.max_depth = SB__BEDROCK_MAX_DEPTH,
                                                    .max_bytes = 0};

static const char *pname(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "bedrock";
}

/* ==================================================================
 * Upstream words, made safe to quote
 * ================================================================== */

/* Copies s into dst (size n) as printable text: control bytes become spaces; cut at UTF-8. */
static void printable(char *dst, size_t n, struct sb_slice s)
{
    size_t len = s.len < n - 1 ? s.len : n - 1;
    while (len > 0 && len < s.len && ((unsigned char)s.p[len] & 0xC0) == 0x80)
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        dst[i] = (ch < 0x20 || ch == 0x7F) ? ' ' : (char)ch;
    }
    dst[len] = '\0';
}

/* Blanks out the AWS credentials wherever an upstream echoed one back. */
static void scrub(const struct sb_call *c, char *msg)
{
    const struct sb_secret *keys[] = {c->provider ? c->provider->aws_access_key_id : NULL,
                                      c->provider ? c->provider->aws_secret_access_key : NULL,
                                      c->provider ? c->provider->api_key : NULL};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!keys[i])
            continue;
        struct sb_slice key = sb_secret_reveal(keys[i]);
        if (key.len < 4)
            continue;
        for (char *hit = memmem(msg, strlen(msg), key.p, key.len); hit;
             hit = memmem(msg, strlen(msg), key.p, key.len))
            memset(hit, '*', key.len);
    }
}

/* The "message" (or "Message") of a Bedrock error body, or the whole body when unparseable. */
static struct sb_slice error_message(struct sb_arena *a, struct sb_slice body)
{
    struct sb_json_limits lim = {.max_depth = SB__BEDROCK_MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(a, body.p, body.len, &lim, &root, &jerr) != SB_OK)
        return body;
    const struct sb_json *m = jget(root, "message");
    if (!jis(m, SB_JSON_STRING))
        m = jget(root, "Message");
    return jis(m, SB_JSON_STRING) ? m->str : body;
}

/* ==================================================================
 * Stream state and chunk writing
 * ================================================================== */

struct reasoning {
    int64_t block; /* contentBlockIndex being accumulated, -1 when none */
    struct sb_buf text, signature, redacted;
};

struct stream {
    const struct sb_call *c;
    struct sb_eventstream es; /* framing */
    struct sb_arena *scratch; /* one frame's JSON tree, reset after each frame */
    struct sb_buf chunk;      /* the chunk being written */
    struct sb_jw w;
    char id[40];
    int64_t created;
    int64_t tool_block[MAX_TOOL_BLOCKS]; /* contentBlockIndex of tool call i */
    size_t ntools;
    struct reasoning r;
    sb_event_fn fn; /* of the current feed */
    void *ud;
    struct sb_error *err;
    bool stopped;  /* messageStop seen */
    bool done;     /* DONE emitted */
    sb_err failed; /* sticky: an exception frame or a broken frame ended the stream */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_eventstream_free(&st->es);
    sb_arena_free(st->scratch);
    sb_buf_free(&st->chunk);
    sb_buf_free(&st->r.text);
    sb_buf_free(&st->r.signature);
    sb_buf_free(&st->r.redacted);
}

void *sb__bedrock_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->c = c;
    sb_eventstream_init(&st->es, MAX_FRAME);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_buf_init(&st->chunk, 0);
    sb_buf_init(&st->r.text, MAX_REASONING);
    sb_buf_init(&st->r.signature, MAX_REASONING);
    sb_buf_init(&st->r.redacted, MAX_REASONING);
    st->r.block = -1;
    st->created = (int64_t)time(NULL);
    sb__bedrock_new_id(st->id);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* Opens a chunk: head, then choices[0].delta opened (or choices: [] for usage). */
static void chunk_begin(struct stream *st, bool usage_only)
{
    sb_oai_chunk_open(&st->w, &st->chunk, sb_slice_cstr(st->id), st->created,
                      sb_slice_cstr(sb__bedrock_model(st->c)), !usage_only);
}

/* Closes the delta and the chunk, then hands it on; ev carries the parsed facts. */
static int chunk_end(struct stream *st, struct sb_event *ev, const char *finish)
{
    struct sb_jw *w = &st->w;
    sb_jw_obj_end(w);
    sb_jw_key(w, "finish_reason");
    sb_jw_cstr(w, finish);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    sb_jw_obj_end(w);
    ev->kind = SB_EV_CHUNK;
    ev->chunk = sb_buf_slice(&st->chunk);
    ev->finish_reason = finish ? sb_slice_cstr(finish) : SB_SLICE_NULL;
    return st->fn(st->ud, ev);
}

static int emit_delta_str(struct stream *st, const char *key, struct sb_slice s)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_begin(st, false);
    sb_jw_key(&st->w, key);
    sb_jw_str(&st->w, s);
    if (!strcmp(key, "content"))
        ev.text = s;
    return chunk_end(st, &ev, NULL);
}

/* ==================================================================
 * Events
 * ================================================================== */

static int on_message_start(struct stream *st, const struct sb_json *p)
{
    (void)p;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_begin(st, false);
    sb_jw_key(&st->w, "role");
    sb_jw_cstr(&st->w, "assistant");
    sb_jw_key(&st->w, "content");
    sb_jw_cstr(&st->w, "");
    return chunk_end(st, &ev, NULL);
}

/* The OpenAI index of the tool call in content block `block`, or -1. */
static int64_t tool_index(const struct stream *st, int64_t block)
{
    for (size_t i = 0; i < st->ntools; i++)
        if (st->tool_block[i] == block)
            return (int64_t)i;
    return -1;
}

static int on_block_start(struct stream *st, const struct sb_json *p)
{
    const struct sb_json *tu = jget(jget(p, "start"), "toolUse");
    const struct sb_json *id = jget(tu, "toolUseId"), *name = jget(tu, "name");
    int64_t block;
    if (!tu)
        return 0; /* other block kinds start implicitly with their first delta */
    if (!sb_json_int64(jget(p, "contentBlockIndex"), &block) || !jis(id, SB_JSON_STRING) ||
        !jis(name, SB_JSON_STRING))
        return sb_fail(st->err, SB_E_UPSTREAM,
                       "upstream %s: toolUse start lacks its index, id "
                       "or name",
                       pname(st->c));
    if (st->ntools == MAX_TOOL_BLOCKS)
        return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: more than %d tool calls", pname(st->c),
                       MAX_TOOL_BLOCKS);
    st->tool_block[st->ntools++] = block;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_begin(st, false);
    struct sb_jw *w = &st->w;
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, (int64_t)st->ntools - 1);
    sb_jw_key(w, "id");
    sb_jw_str(w, id->str);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "function");
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "name");
    sb_jw_str(w, name->str);
    sb_jw_key(w, "arguments");
    sb_jw_cstr(w, "");
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    return chunk_end(st, &ev, NULL);
}

static int on_tool_fragment(struct stream *st, int64_t block, const struct sb_json *input)
{
    int64_t k = tool_index(st, block);
    if (k < 0 || !jis(input, SB_JSON_STRING))
        return sb_fail(st->err, SB_E_UPSTREAM,
                       "upstream %s: toolUse delta for block %lld, "
                       "which started no tool call",
                       pname(st->c), (long long)block);
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_begin(st, false);
    struct sb_jw *w = &st->w;
    sb_jw_key(w, "tool_calls");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, k);
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "arguments");
    sb_jw_str(w, input->str);
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    return chunk_end(st, &ev, NULL);
}

/* A reasoningContent delta: text goes out now; all three parts are kept for the block's end. */
static int on_reasoning(struct stream *st, int64_t block, const struct sb_json *rc)
{
    const struct sb_json *text = jget(rc, "text"), *sig = jget(rc, "signature");
    const struct sb_json *red = jget(rc, "redactedContent");
    if (st->r.block != block) {
        sb_buf_reset(&st->r.text);
        sb_buf_reset(&st->r.signature);
        sb_buf_reset(&st->r.redacted);
        st->r.block = block;
    }
    sb_err rc2 = SB_OK;
    if (jis(sig, SB_JSON_STRING))
        rc2 = sb_buf_append_slice(&st->r.signature, sig->str);
    if (rc2 == SB_OK && jis(red, SB_JSON_STRING))
        rc2 = sb_buf_append_slice(&st->r.redacted, red->str);
    if (rc2 == SB_OK && jis(text, SB_JSON_STRING))
        rc2 = sb_buf_append_slice(&st->r.text, text->str);
    if (rc2 != SB_OK)
        return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: reasoning block exceeds %u bytes",
                       pname(st->c), MAX_REASONING);
    if (jis(text, SB_JSON_STRING) && text->str.len)
        return emit_delta_str(st, "reasoning_content", text->str);
    return 0;
}

static int on_block_delta(struct stream *st, const struct sb_json *p)
{
    const struct sb_json *d = jget(p, "delta");
    const struct sb_json *text = jget(d, "text"), *tu = jget(d, "toolUse");
    const struct sb_json *rc = jget(d, "reasoningContent");
    int64_t block = -1;
    sb_json_int64(jget(p, "contentBlockIndex"), &block);
    if (jis(text, SB_JSON_STRING))
        return text->str.len ? emit_delta_str(st, "content", text->str) : 0;
    if (tu)
        return on_tool_fragment(st, block, jget(tu, "input"));
    if (rc)
        return on_reasoning(st, block, rc);
    return 0; /* citations and future delta kinds have no OpenAI form yet */
}

/* The end of a reasoning block hands the whole block on, signature untouched (DESIGN.md §6). */
static int on_block_stop(struct stream *st, const struct sb_json *p)
{
    int64_t block = -1;
    sb_json_int64(jget(p, "contentBlockIndex"), &block);
    if (block < 0 || block != st->r.block)
        return 0;
    st->r.block = -1;
    bool redacted = st->r.redacted.len > 0;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    chunk_begin(st, false);
    struct sb_jw *w = &st->w;
    sb_jw_key(w, "thinking_blocks");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "type");
    sb_jw_cstr(w, redacted ? "redacted_thinking" : "thinking");
    if (redacted) {
        sb_jw_key(w, "data");
        sb_jw_str(w, sb__bedrock_bytes(&st->r.redacted));
    } else {
        sb_jw_key(w, "thinking");
        sb_jw_str(w, sb__bedrock_bytes(&st->r.text));
        sb_jw_key(w, "signature");
        sb_jw_str(w, sb__bedrock_bytes(&st->r.signature));
    }
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    return chunk_end(st, &ev, NULL);
}

static int on_message_stop(struct stream *st, const struct sb_json *p)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    st->stopped = true;
    chunk_begin(st, false);
    return chunk_end(st, &ev, sb__bedrock_finish_reason(jget(p, "stopReason")));
}

/* The usage-only chunk (choices: []); the proxy shows it to clients that asked. */
static int on_metadata(struct stream *st, const struct sb_json *p)
{
    const struct sb_json *usage = jget(p, "usage");
    if (!jis(usage, SB_JSON_OBJECT))
        return 0;
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.has_usage = true;
    ev.usage_only = true;
    ev.usage = sb__bedrock_usage_counts(usage);
    chunk_begin(st, true);
    sb_jw_arr_end(&st->w);
    sb__bedrock_put_usage(&st->w, usage);
    sb_jw_obj_end(&st->w);
    ev.kind = SB_EV_CHUNK;
    ev.chunk = sb_buf_slice(&st->chunk);
    return st->fn(st->ud, &ev);
}

typedef int (*frame_fn)(struct stream *st, const struct sb_json *payload);

static const struct {
    const char *event_type;
    frame_fn fn;
} frames[] = {
    {"messageStart", on_message_start},    {"contentBlockStart", on_block_start},
    {"contentBlockDelta", on_block_delta}, {"contentBlockStop", on_block_stop},
    {"messageStop", on_message_stop},      {"metadata", on_metadata},
};

/* ==================================================================
 * Exceptions and the feed
 * ================================================================== */

/* An exception or error frame: one SB_EV_ERROR, then the feed fails with the same words. */
static int on_exception(struct stream *st, const struct sb_eventstream_msg *m)
{
    const struct sb_eventstream_header *code = sb_eventstream_header(m, ":error-code");
    const struct sb_eventstream_header *emsg = sb_eventstream_header(m, ":error-message");
    struct sb_slice type = m->exception_type.len ? m->exception_type
                           : code                ? code->value
                                                 : SB_SLICE("error");
    struct sb_slice words = emsg ? emsg->value : error_message(st->scratch, m->payload);
    char t[64], msg[MAX_EXCERPT + 1];
    printable(t, sizeof(t), type);
    printable(msg, sizeof(msg), words);
    scrub(st->c, msg);
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_ERROR;
    sb_fail(&ev.error, SB_E_UPSTREAM, "upstream %s: %s: %s", pname(st->c), t, msg);
    int rc = st->fn(st->ud, &ev);
    *st->err = ev.error;
    return rc ? rc : SB_E_UPSTREAM;
}

static int on_frame(void *ud, const struct sb_eventstream_msg *m)
{
    struct stream *st = ud;
    struct sb_json *root = NULL;
    struct sb_error jerr;
    int rc = 0;
    if (sb_slice_eq_cstr(m->message_type, "exception") ||
        sb_slice_eq_cstr(m->message_type, "error"))
        return on_exception(st, m);
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        if (!sb_slice_eq_cstr(m->event_type, frames[i].event_type))
            continue;
        if (sb_json_parse(st->scratch, m->payload.p, m->payload.len, &upstream_json, &root,
                          &jerr) != SB_OK ||
            root->type != SB_JSON_OBJECT)
            rc = sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: %s frame is not a JSON object",
                         pname(st->c), frames[i].event_type);
        else
            rc = frames[i].fn(st, root);
        break;
    }
    sb_arena_reset(st->scratch);
    return rc; /* unknown event types are skipped: Bedrock may add kinds */
}

sb_err sb__bedrock_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                               struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->failed)
        return sb_fail(err, st->failed, "upstream %s: stream already failed", pname(st->c));
    sb_err rc = sb_eventstream_feed(&st->es, p, n, on_frame, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream frame exceeds %u bytes", pname(st->c),
                     MAX_FRAME);
    if (rc != SB_OK && err->code == SB_OK)
        sb_fail(err, rc, "upstream %s: stream stopped", pname(st->c));
    st->failed = rc;
    return rc;
}

sb_err sb__bedrock_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->failed)
        return sb_fail(err, st->failed, "upstream %s: stream already failed", pname(st->c));
    if (st->done)
        return SB_OK;
    if (sb_eventstream_finish(&st->es, err) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended inside a frame",
                       pname(st->c));
    if (!st->stopped)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended before messageStop",
                       pname(st->c));
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_DONE;
    st->done = true;
    return st->fn(st->ud, &ev) ? SB_E_UPSTREAM : SB_OK;
}

/* ==================================================================
 * Errors (non-2xx answers)
 * ================================================================== */

static const struct {
    int status;
    sb_err code;
    int client_status; /* what the client sees */
} statuses[] = {
    {400, SB_E_BAD_REQUEST, 400},  /* ValidationException */
    {401, SB_E_UNAUTHORIZED, 401}, /* */
    {403, SB_E_FORBIDDEN, 403},    /* AccessDeniedException, UnrecognizedClient, bad signature */
    {404, SB_E_NOT_FOUND, 404},    /* ResourceNotFoundException */
    {408, SB_E_UPSTREAM_TIMEOUT, 504}, /* ModelTimeoutException */
    {413, SB_E_TOO_LARGE, 413},        /* */
    {424, SB_E_UPSTREAM, 502},         /* ModelErrorException */
    {429, SB_E_RATE_LIMITED, 429},     /* ThrottlingException */
    {500, SB_E_UPSTREAM, 500},         /* InternalServerException */
    {503, SB_E_UNAVAILABLE, 503},      /* ServiceUnavailableException */
};

/* Bedrock words for a prompt over the model's context window (ValidationException). */
static const char *const too_long[] = {
    "too long",       "Input is too long",      "input length",
    "context window", "maximum context length", "too many input tokens"};

static bool says_too_long(const char *msg)
{
    for (size_t i = 0; i < sizeof(too_long) / sizeof(too_long[0]); i++)
        if (strcasestr(msg, too_long[i]))
            return true;
    return false;
}

void sb__bedrock_map_error(const struct sb_call *c, int status, struct sb_slice body,
                           struct sb_error *err)
{
    char msg[MAX_EXCERPT + 1];
    sb_err code = status >= 400 && status < 500 ? SB_E_BAD_REQUEST : SB_E_UPSTREAM;
    int client = status >= 400 && status < 600 ? status : 502;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (statuses[i].status == status) {
            code = statuses[i].code;
            client = statuses[i].client_status;
        }
    printable(msg, sizeof(msg), error_message(c->arena, body));
    scrub(c, msg);
    if (!msg[0])
        sb_fail(err, code, "upstream %s: HTTP %d", pname(c), status);
    else
        sb_fail(err, code, "upstream %s: %s", pname(c), msg);
    err->http_status = client;
    if (status == 404)
        snprintf(err->api_code, sizeof(err->api_code), "model_not_found");
    if (status == 400 && says_too_long(msg))
        snprintf(err->api_code, sizeof(err->api_code), "context_length_exceeded");
}
