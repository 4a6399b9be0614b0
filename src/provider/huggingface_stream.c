/* SPDX-License-Identifier: MIT */
/*
 * huggingface_stream.c - TGI's /generate_stream SSE into chat.completion.chunk events.
 *
 * TGI sends one SSE event per generated token:
 *   data:{"index":N,"token":{"id","text","logprob","special"},
 *         "generated_text":null,"details":null}
 * and on the last one generated_text (the whole answer) and details
 * {finish_reason, generated_tokens, input_length, seed}. An error is an
 * event {"error":"...","error_type":"..."}, after which the stream ends.
 * There is no [DONE].
 *
 * We emit, as the openai adapter's upstreams do: a role chunk first, one
 * content chunk per non-special token (special tokens such as </s> are not
 * part of generated_text, so the streamed text equals the whole answer),
 * then a finish chunk and a usage-only chunk when details arrive, then
 * DONE. Under the Messages API (base_url ending in /v1) the stream is
 * OpenAI's and goes to the openai adapter untouched. No I/O here.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/huggingface_int.h"
#include "provider/oai_emit.h"
#include "provider/openai_int.h"
#include "provider/sse.h"

#define STREAM_MAX_LINE (1024u * 1024u)
#define STREAM_MAX_EVENT (4u * 1024u * 1024u)
#define SCRATCH_BLOCK (16u * 1024u)
#define MAX_EXCERPT 200

static const struct sb_json_limits event_json = {.max_depth = 64, .max_bytes = 0};

struct stream {
    const struct sb_call *c;
    void *openai;             /* Messages API: the openai adapter's state; else NULL */
    struct sb_sse sse;        /* framing */
    struct sb_arena *scratch; /* one event's JSON tree */
    struct sb_buf chunk;      /* the chunk being emitted */
    int64_t created;          /* the same in every chunk */
    sb_event_fn fn;           /* of the current feed */
    void *ud;
    struct sb_error *err;
    bool started; /* role chunk sent */
    bool done;    /* details seen, DONE sent */
    bool failed;  /* an error event arrived */
};

int64_t sb__hf_now(void)
{
    return (int64_t)time(NULL);
}

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_sse_free(&st->sse);
    sb_buf_free(&st->chunk);
    sb_arena_free(st->scratch);
}

void *sb__hf_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->c = c;
    if (sb__hf_messages_api(c)) {
        st->openai = sb_openai_ops.stream_open(c);
        return st;
    }
    sb_sse_init(&st->sse, STREAM_MAX_LINE, STREAM_MAX_EVENT);
    sb_buf_init(&st->chunk, 0);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    st->created = sb__hf_now();
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* ---- chunks ---- */

static void chunk_head(struct stream *st, struct sb_jw *w)
{
    sb_buf_reset(&st->chunk);
    sb_jw_init(w, &st->chunk);
    sb_jw_obj_begin(w);
    sb__hf_envelope(st->c, w, "chat.completion.chunk", st->created);
    sb_jw_key(w, "choices");
}

/* One choice with delta {role?, content?} and finish_reason (NULL = null). */
static int emit_delta(struct stream *st, bool role, struct sb_slice text, const char *finish)
{
    struct sb_jw w;
    struct sb_event ev;
    chunk_head(st, &w);
    sb_jw_arr_begin(&w);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "index");
    sb_jw_int(&w, 0);
    sb_jw_key(&w, "delta");
    sb_jw_obj_begin(&w);
    if (role) {
        sb_jw_key(&w, "role");
        sb_jw_cstr(&w, "assistant");
    }
    if (role || text.len) {
        sb_jw_key(&w, "content");
        sb_jw_str(&w, text);
    }
    sb_jw_obj_end(&w);
    sb_jw_key(&w, "finish_reason");
    sb_jw_cstr(&w, finish);
    sb_jw_obj_end(&w);
    sb_jw_arr_end(&w);
    sb_jw_obj_end(&w);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_CHUNK;
    ev.chunk = sb_buf_slice(&st->chunk);
    ev.text = text;
    ev.finish_reason = finish ? sb_slice_cstr(finish) : SB_SLICE_NULL;
    ev.usage.prompt_tokens = ev.usage.completion_tokens = -1;
    return st->fn(st->ud, &ev);
}

static int emit_usage(struct stream *st, int64_t prompt, int64_t completion)
{
    struct sb_jw w;
    struct sb_event ev;
    chunk_head(st, &w);
    sb_jw_raw(&w, SB_SLICE("[]"));
    sb__hf_usage(&w, prompt, completion);
    sb_jw_obj_end(&w);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_CHUNK;
    ev.chunk = sb_buf_slice(&st->chunk);
    ev.usage_only = ev.has_usage = true;
    ev.usage.prompt_tokens = prompt;
    ev.usage.completion_tokens = completion;
    return st->fn(st->ud, &ev);
}

static int emit_simple(struct stream *st, enum sb_event_kind kind, struct sb_slice msg)
{
    struct sb_event ev;
    char text[MAX_EXCERPT + 1];
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    if (kind == SB_EV_ERROR) {
        sb_oai_excerpt(st->c, text, sizeof(text), msg);
        sb_fail(&ev.error, SB_E_UPSTREAM, "upstream %s: %s", sb__hf_name(st->c), text);
    }
    return st->fn(st->ud, &ev);
}

/* ---- events ---- */

static int on_details(struct stream *st, const struct sb_json *details)
{
    const struct sb_json *fr = sb_json_get(details, "finish_reason");
    int64_t prompt = -1, completion = 0;
    if (!sb_json_int64(sb_json_get(details, "input_length"), &prompt) || prompt < 0)
        prompt = -1;
    if (!sb_json_int64(sb_json_get(details, "generated_tokens"), &completion) || completion < 0)
        completion = 0;
    int rc = emit_delta(
        st, false, SB_SLICE_NULL,
        sb__hf_finish_reason(fr && fr->type == SB_JSON_STRING ? fr->str : SB_SLICE_NULL));
    if (rc == 0)
        rc = emit_usage(st, prompt, completion);
    st->done = true;
    return rc ? rc : emit_simple(st, SB_EV_DONE, SB_SLICE_NULL);
}

static int on_event(struct stream *st, const struct sb_json *root)
{
    const struct sb_json *e = sb_json_get(root, "error");
    if (e && e->type != SB_JSON_NULL) {
        st->failed = true;
        return emit_simple(st, SB_EV_ERROR, e->type == SB_JSON_STRING ? e->str : e->raw);
    }
    const struct sb_json *tok = sb_json_get(root, "token");
    const struct sb_json *text =
        tok && tok->type == SB_JSON_OBJECT ? sb_json_get(tok, "text") : NULL;
    const struct sb_json *details = sb_json_get(root, "details");
    int rc = 0;
    if (!st->started) {
        st->started = true;
        rc = emit_delta(st, true, SB_SLICE(""), NULL);
    }
    bool special = tok && sb_json_bool(sb_json_get(tok, "special"));
    if (rc == 0 && !special && text && text->type == SB_JSON_STRING && text->str.len)
        rc = emit_delta(st, false, text->str, NULL);
    if (rc == 0 && details && details->type == SB_JSON_OBJECT)
        rc = on_details(st, details);
    return rc;
}

static int on_sse(void *ud, const struct sb_sse_event *sev)
{
    struct stream *st = ud;
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (st->done || st->failed)
        return SB_OK; /* nothing counts after the last token or an error */
    if (sb_json_parse(st->scratch, sev->data.p, sev->data.len, &event_json, &root, &jerr) !=
            SB_OK ||
        root->type != SB_JSON_OBJECT)
        return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream event is not a JSON object",
                       sb__hf_name(st->c));
    int rc = on_event(st, root);
    sb_arena_reset(st->scratch);
    return rc;
}

sb_err sb__hf_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                          struct sb_error *err)
{
    struct stream *st = vst;
    if (st->openai)
        return sb_openai_ops.stream_feed(st->openai, p, n, fn, ud, err);
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    sb_err rc = sb_sse_feed(&st->sse, p, n, on_sse, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream event exceeds %u bytes",
                     sb__hf_name(st->c), STREAM_MAX_EVENT);
    return rc;
}

sb_err sb__hf_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    if (st->openai)
        return sb_openai_ops.stream_finish(st->openai, fn, ud, err);
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->done)
        return SB_OK;
    if (st->failed)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended with an error",
                       sb__hf_name(st->c));
    if (sb_sse_finish(&st->sse, err) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended inside an event",
                       sb__hf_name(st->c));
    return sb_fail(err, SB_E_UPSTREAM, "upstream %s: upstream stream ended early",
                   sb__hf_name(st->c));
}
