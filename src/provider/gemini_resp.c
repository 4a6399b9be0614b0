/* SPDX-License-Identifier: MIT */
/*
 * gemini_resp.c - the `gemini` adapter: answers back to OpenAI shapes.
 *
 * A GenerateContentResponse (whole, or one per SSE `data:` line of
 * streamGenerateContent?alt=sse) becomes a chat.completion or a run of
 * chat.completion.chunk events:
 *   parts[].text              → content (delta.content)
 *   parts[] with thought:true → reasoning_content (DeepSeek's convention)
 *   parts[].functionCall      → tool_calls; a call arrives whole, so a stream
 *                               gives id, name and all arguments in one delta.
 *                               Gemini names no call ids: we make a stable one
 *                               (its own functionCall.id when it sends one)
 *   thoughtSignature          → extra_content.google.thought_signature on
 *                               the tool call it came on, or on the message
 *                               (delta) for a text part
 *   finishReason              → stop | tool_calls | length | content_filter
 *   usageMetadata             → usage; thoughts count as completion tokens
 *                               and as completion_tokens_details.reasoning_tokens
 * A stream has no end marker: it is complete when a finishReason came and
 * the body ended; then the usage chunk and DONE follow. An error object in
 * the stream, or a body that ends first, is SB_E_UPSTREAM.
 * Error bodies {"error":{code,message,status}} map by status to OpenAI
 * types; API-key errors get a fixed message, and no message ever carries
 * the key or the request URL.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/gemini_int.h"
#include "provider/oai_emit.h"
#include "provider/provider.h"
#include "provider/sse.h"

#define GET sb__gm_get
#define AT sb__gm_at
#define ISSTR sb__gm_is_str

#define STREAM_MAX_LINE (1024u * 1024u)       /* one SSE line */
#define STREAM_MAX_EVENT (8u * 1024u * 1024u) /* one response (inline images can be large) */
#define SCRATCH_BLOCK (16u * 1024u)           /* per-event JSON arena */
#define MAX_EXCERPT 200                       /* bytes of an upstream message we quote */

static const struct sb_json_limits upstream_json = {.max_depth = SB_GEMINI_MAX_DEPTH,
                                                    .max_bytes = 0};

/* ==================================================================
 * Facts shared by whole answers and streams
 * ================================================================== */

struct usage {
    bool known;
    int64_t prompt, candidates, thoughts, cached;
    bool has_thoughts, has_cached;
};

static int64_t count(const struct sb_json *meta, const char *name, bool *has)
{
    int64_t v;
    bool ok = sb_json_int64(GET(meta, name), &v) && v >= 0;
    if (has)
        *has = ok;
    return ok ? v : 0;
}

static void read_usage(const struct sb_json *root, struct usage *u)
{
    const struct sb_json *meta = GET(root, "usageMetadata");
    if (!meta || meta->type != SB_JSON_OBJECT)
        return;
    u->known = true;
    u->prompt = count(meta, "promptTokenCount", NULL);
    u->candidates = count(meta, "candidatesTokenCount", NULL);
    u->thoughts = count(meta, "thoughtsTokenCount", &u->has_thoughts);
    u->cached = count(meta, "cachedContentTokenCount", &u->has_cached);
}

static struct sb_usage_counts usage_counts(const struct usage *u)
{
    struct sb_usage_counts n = {-1, -1};
    if (u->known) {
        n.prompt_tokens = u->prompt;
        n.completion_tokens = u->candidates + u->thoughts;
    }
    return n;
}

static void write_usage(struct sb_jw *w, const struct usage *u)
{
    struct sb_usage_counts n = usage_counts(u);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "prompt_tokens");
    sb_jw_int(w, n.prompt_tokens);
    sb_jw_key(w, "completion_tokens");
    sb_jw_int(w, n.completion_tokens);
    sb_jw_key(w, "total_tokens");
    sb_jw_int(w, n.prompt_tokens + n.completion_tokens);
    if (u->has_cached) {
        sb_jw_key(w, "prompt_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "cached_tokens");
        sb_jw_int(w, u->cached);
        sb_jw_obj_end(w);
    }
    if (u->has_thoughts) {
        sb_jw_key(w, "completion_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "reasoning_tokens");
        sb_jw_int(w, u->thoughts);
        sb_jw_obj_end(w);
    }
    sb_jw_obj_end(w);
}

static const struct {
    const char *gemini, *openai;
} finishes[] = {
    {"STOP", "stop"},
    {"MAX_TOKENS", "length"},
    {"SAFETY", "content_filter"},
    {"RECITATION", "content_filter"},
    {"BLOCKLIST", "content_filter"},
    {"PROHIBITED_CONTENT", "content_filter"},
    {"SPII", "content_filter"},
    {"IMAGE_SAFETY", "content_filter"},
};

/* The OpenAI finish_reason for a candidate (or a blocked prompt), or NULL while unfinished. */
static const char *finish_reason(const struct sb_json *root, bool called)
{
    const struct sb_json *fr = GET(AT(GET(root, "candidates"), 0), "finishReason");
    if (!ISSTR(fr) || !fr->str.len || sb_slice_eq_cstr(fr->str, "FINISH_REASON_UNSPECIFIED")) {
        const struct sb_json *block = GET(GET(root, "promptFeedback"), "blockReason");
        return ISSTR(block) ? "content_filter" : NULL;
    }
    const char *out = "stop"; /* OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL...: the turn ended */
    for (size_t i = 0; i < sizeof(finishes) / sizeof(finishes[0]); i++)
        if (sb_slice_eq_cstr(fr->str, finishes[i].gemini))
            out = finishes[i].openai;
    return called && strcmp(out, "stop") == 0 ? "tool_calls" : out;
}

static uint64_t fnv(uint64_t h, struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.p[i]) * 0x100000001b3ull;
    return h;
}

/* Gemini's own call id, or a stable one from the response id, the call's position and name. */
static struct sb_slice call_id(struct sb_arena *a, const struct sb_json *call, struct sb_slice rid,
                               size_t index)
{
    const struct sb_json *id = GET(call, "id");
    if (ISSTR(id) && id->str.len)
        return id->str;
    char pos[24];
    snprintf(pos, sizeof(pos), "#%zu#", index);
    const struct sb_json *name = GET(call, "name");
    uint64_t h = fnv(fnv(fnv(0xcbf29ce484222325ull, rid), sb_slice_cstr(pos)),
                     ISSTR(name) ? name->str : SB_SLICE_NULL);
    return sb_slice_cstr(sb_arena_printf(a, "call_%016llx", (unsigned long long)h));
}

static void write_signature(struct sb_jw *w, struct sb_slice sig)
{
    sb_jw_key(w, "extra_content");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "google");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "thought_signature");
    sb_jw_str(w, sig);
    sb_jw_obj_end(w);
    sb_jw_obj_end(w);
}

/* One OpenAI tool call: {index?, id, type, function:{name, arguments}, extra_content?}. */
static void write_call(struct sb_jw *w, struct sb_arena *a, const struct sb_json *part,
                       struct sb_slice rid, size_t index, bool with_index)
{
    const struct sb_json *fc = GET(part, "functionCall"), *name = GET(fc, "name");
    const struct sb_json *args = GET(fc, "args"), *sig = GET(part, "thoughtSignature");
    struct sb_buf b;
    struct sb_jw aw;
    sb_buf_init(&b, 0);
    sb_jw_init(&aw, &b);
    if (args && args->type == SB_JSON_OBJECT)
        sb__gm_write_compact(&aw, args);
    else
        sb_buf_append_cstr(&b, "{}");
    sb_jw_obj_begin(w);
    if (with_index) {
        sb_jw_key(w, "index");
        sb_jw_int(w, (int64_t)index);
    }
    sb_jw_key(w, "id");
    sb_jw_str(w, call_id(a, fc, rid, index));
    sb_jw_key(w, "type");
    sb_jw_cstr(w, "function");
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "name");
    sb_jw_str(w, ISSTR(name) ? name->str : SB_SLICE(""));
    sb_jw_key(w, "arguments");
    sb_jw_str(w, sb_buf_slice(&b));
    sb_jw_obj_end(w);
    if (ISSTR(sig))
        write_signature(w, sig->str);
    sb_jw_obj_end(w);
    sb_buf_free(&b);
}

static struct sb_slice response_id(const struct sb_json *root)
{
    const struct sb_json *rid = GET(root, "responseId");
    return ISSTR(rid) ? rid->str : SB_SLICE_NULL;
}

static const struct sb_json *parts_of(const struct sb_json *root)
{
    return GET(GET(AT(GET(root, "candidates"), 0), "content"), "parts");
}

static bool is_thought(const struct sb_json *part)
{
    return sb_json_bool(GET(part, "thought"));
}

static bool malformed(const struct sb_json *root)
{
    const struct sb_json *c = GET(root, "candidates"), *parts = parts_of(root);
    return (c && c->type != SB_JSON_ARRAY) || (parts && parts->type != SB_JSON_ARRAY);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

/* What the parts of a whole answer add up to. */
struct whole {
    struct sb_buf text, reasoning, calls; /* calls: the tool_calls array, written by cw */
    struct sb_jw cw;
    struct sb_slice sig; /* a text part's signature (the last one) */
    size_t ncalls;
};

static void gather(struct whole *h, const struct sb_call *c, const struct sb_json *root)
{
    const struct sb_json *parts = parts_of(root);
    for (size_t i = 0; parts && i < parts->count; i++) {
        const struct sb_json *p = AT(parts, i), *t = GET(p, "text");
        const struct sb_json *sig = GET(p, "thoughtSignature");
        if (GET(p, "functionCall")) {
            write_call(&h->cw, c->arena, p, response_id(root), h->ncalls++, false);
            continue;
        }
        if (ISSTR(sig))
            h->sig = sig->str;
        if (ISSTR(t))
            sb_buf_append_slice(is_thought(p) ? &h->reasoning : &h->text, t->str);
    }
}

/* A buffer's bytes; never a NULL pointer (an empty sb_buf has none, and the writer adds to it). */
static struct sb_slice bytes(const struct sb_buf *b)
{
    return b->len ? sb_buf_slice(b) : SB_SLICE("");
}

static void write_message(struct sb_jw *w, struct whole *h)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, "assistant");
    sb_jw_key(w, "content");
    if (h->text.len || !h->ncalls)
        sb_jw_str(w, bytes(&h->text));
    else
        sb_jw_null(w);
    if (h->reasoning.len) {
        sb_jw_key(w, "reasoning_content");
        sb_jw_str(w, bytes(&h->reasoning));
    }
    if (h->ncalls) {
        sb_jw_key(w, "tool_calls");
        sb_jw_arr_end(&h->cw);
        sb_jw_raw(w, sb_buf_slice(&h->calls));
    }
    if (h->sig.len)
        write_signature(w, h->sig);
    sb_jw_obj_end(w);
}

/* "chatcmpl-" + Gemini's responseId, or + a hash of the body when it sent none. */
static const char *completion_id(struct sb_arena *a, const struct sb_json *root)
{
    struct sb_slice rid = response_id(root);
    if (rid.len)
        return sb_arena_printf(a, "chatcmpl-%.*s", SB_FMT(rid));
    return sb_arena_printf(a, "chatcmpl-%016llx",
                           (unsigned long long)fnv(0xcbf29ce484222325ull, root->raw));
}

static void write_completion(struct sb_jw *w, const struct sb_call *c, const struct sb_json *root,
                             struct whole *h, const struct usage *u)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_cstr(w, completion_id(c->arena, root));
    sb_jw_key(w, "object");
    sb_jw_cstr(w, "chat.completion");
    sb_jw_key(w, "created");
    sb_jw_int(w, (int64_t)time(NULL));
    sb_jw_key(w, "model");
    sb_jw_cstr(w, sb__gm_model(c));
    sb_jw_key(w, "choices");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, 0);
    sb_jw_key(w, "message");
    write_message(w, h);
    sb_jw_key(w, "finish_reason");
    const char *fr = finish_reason(root, h->ncalls > 0);
    sb_jw_cstr(w, fr ? fr : "stop");
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    if (u->known) {
        sb_jw_key(w, "usage");
        write_usage(w, u);
    }
    sb_jw_obj_end(w);
}

static sb_err parse_chat(const struct sb_call *c, const struct sb_json *root, struct sb_result *out)
{
    struct whole h = {.ncalls = 0};
    struct usage u = {.known = false};
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&h.text, 0);
    sb_buf_init(&h.reasoning, 0);
    sb_buf_init(&h.calls, 0);
    sb_jw_init(&h.cw, &h.calls);
    sb_jw_arr_begin(&h.cw);
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    read_usage(root, &u);
    gather(&h, c, root);
    write_completion(&w, c, root, &h, &u);
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    out->usage = usage_counts(&u);
    const char *fr = finish_reason(root, h.ncalls > 0);
    out->finish_reason = sb_slice_cstr(fr ? fr : "stop");
    sb_buf_free(&b);
    sb_buf_free(&h.text);
    sb_buf_free(&h.reasoning);
    sb_buf_free(&h.calls);
    return SB_OK;
}

/* One embedding: float array, or base64 of little-endian float32s when the client asked. */
static sb_err write_vector(struct sb_jw *w, const struct sb_json *values, bool b64,
                           struct sb_arena *a)
{
    if (!b64) {
        sb__gm_write_compact(w, values);
        return SB_OK;
    }
    size_t n = values->count;
    unsigned char *raw = sb_arena_alloc(a, n * 4 + 1);
    char *enc = sb_arena_alloc(a, (n * 4 + 2) / 3 * 4 + 1);
    size_t i = 0;
    for (const struct sb_json *v = values->child; v; v = v->next, i++) {
        double d = 0;
        sb_json_double(v, &d);
        float f = (float)d;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        for (int k = 0; k < 4; k++)
            raw[i * 4 + (size_t)k] = (unsigned char)(bits >> (8 * k));
    }
    int len = EVP_EncodeBlock((unsigned char *)enc, raw, (int)(n * 4));
    sb_jw_str(w, (struct sb_slice){enc, (size_t)len});
    return SB_OK;
}

static sb_err parse_embeddings(const struct sb_call *c, const struct sb_json *root,
                               struct sb_result *out, struct sb_error *err)
{
    const struct sb_json *embs = GET(root, "embeddings");
    const struct sb_json *fmt = GET(c->json, "encoding_format");
    bool b64 = ISSTR(fmt) && sb_slice_eq_cstr(fmt->str, "base64");
    if (!embs || embs->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response has no embeddings array",
                       sb__gm_name(c));
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "object");
    sb_jw_cstr(&w, "list");
    sb_jw_key(&w, "data");
    sb_jw_arr_begin(&w);
    size_t i = 0;
    for (const struct sb_json *e = embs->child; e; e = e->next, i++) {
        const struct sb_json *values = GET(e, "values");
        for (size_t k = 0; values && k < values->count; k++)
            if (AT(values, k)->type != SB_JSON_NUMBER)
                values = NULL;
        if (!values || values->type != SB_JSON_ARRAY) {
            sb_buf_free(&b);
            return sb_fail(err, SB_E_UPSTREAM, "upstream %s: embedding %zu has no values array",
                           sb__gm_name(c), i);
        }
        sb_jw_obj_begin(&w);
        sb_jw_key(&w, "object");
        sb_jw_cstr(&w, "embedding");
        sb_jw_key(&w, "index");
        sb_jw_int(&w, (int64_t)i);
        sb_jw_key(&w, "embedding");
        write_vector(&w, values, b64, c->arena);
        sb_jw_obj_end(&w);
    }
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, sb__gm_model(c));
    /* Gemini reports no token counts for embeddings: zero for the client, unknown for us. */
    sb_jw_key(&w, "usage");
    sb_jw_raw(&w, SB_SLICE("{\"prompt_tokens\":0,\"total_tokens\":0}"));
    sb_jw_obj_end(&w);
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    out->usage = (struct sb_usage_counts){-1, 0};
    sb_buf_free(&b);
    return SB_OK;
}

sb_err sb__gm_parse_response(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                             struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    memset(out, 0, sizeof(*out));
    if (sb_json_parse(c->arena, body.p, body.len, &upstream_json, &root, &jerr) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object",
                       sb__gm_name(c));
    if (c->op == SB_OP_EMBEDDINGS)
        return parse_embeddings(c, root, out, err);
    if (malformed(root))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response has malformed candidates",
                       sb__gm_name(c));
    return parse_chat(c, root, out);
}

/* ==================================================================
 * Error messages (shared by streams and error bodies)
 * ================================================================== */

/* Google's ErrorInfo reason API_KEY_INVALID (or the message naming the key). */
static bool key_error(const struct sb_json *e)
{
    const struct sb_json *details = GET(e, "details"), *m = GET(e, "message");
    for (size_t i = 0; details && i < details->count; i++) {
        const struct sb_json *reason = GET(AT(details, i), "reason");
        if (ISSTR(reason) && (sb_slice_eq_cstr(reason->str, "API_KEY_INVALID") ||
                              sb_slice_eq_cstr(reason->str, "API_KEY_EXPIRED")))
            return true;
    }
    return ISSTR(m) && memmem(m->str.p, m->str.len, "API key", 7);
}

/* "upstream <id>: <message>" into err with code, never quoting the key. */
static void describe(const struct sb_call *c, const struct sb_json *e, struct sb_slice fallback,
                     sb_err code, struct sb_error *err)
{
    char msg[MAX_EXCERPT + 1];
    const struct sb_json *m = GET(e, "message");
    if (key_error(e)) {
        sb_fail(err, SB_E_UNAUTHORIZED, "upstream %s: the API key was not accepted",
                sb__gm_name(c));
        return;
    }
    sb_oai_excerpt(c, msg, sizeof(msg), ISSTR(m) && m->str.len ? m->str : fallback);
    if (msg[0])
        sb_fail(err, code, "upstream %s: %s", sb__gm_name(c), msg);
    else
        sb_fail(err, code, "upstream %s: request failed", sb__gm_name(c));
}

/* ==================================================================
 * Streams
 * ================================================================== */

struct stream {
    const struct sb_call *c;
    struct sb_sse sse;        /* framing */
    struct sb_arena *scratch; /* one event's JSON tree, reset after each event */
    struct sb_buf out;        /* the chunk being written */
    sb_event_fn fn;           /* of the current feed */
    void *ud;
    struct sb_error *err;
    const char *id;      /* chatcmpl-..., fixed at the first event */
    struct sb_slice rid; /* the first event's responseId (call ids derive from it) */
    int64_t created;
    size_t ncalls; /* tool calls emitted so far: the next one's index */
    struct usage usage;
    bool started;  /* the role chunk went out */
    bool finished; /* a finishReason came and its chunk went out */
    bool done;     /* DONE went out */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_sse_free(&st->sse);
    sb_buf_free(&st->out);
    sb_arena_free(st->scratch);
}

void *sb__gm_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->c = c;
    sb_sse_init(&st->sse, STREAM_MAX_LINE, STREAM_MAX_EVENT);
    sb_buf_init(&st->out, 0);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    st->created = (int64_t)time(NULL);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* {"id",...,"choices":[{"index":0,"delta":{  — the caller writes the delta's members. */
static void chunk_open(struct stream *st, struct sb_jw *w, bool with_choice)
{
    sb_oai_chunk_open(w, &st->out, sb_slice_cstr(st->id), st->created,
                      sb_slice_cstr(sb__gm_model(st->c)), with_choice);
}

static int chunk_close(struct stream *st, struct sb_jw *w, const char *finish, struct sb_slice text)
{
    struct sb_event ev;
    sb_jw_obj_end(w);
    sb_jw_key(w, "finish_reason");
    sb_jw_cstr(w, finish);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    sb_jw_obj_end(w);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_CHUNK;
    ev.chunk = sb_buf_slice(&st->out);
    ev.text = text;
    ev.finish_reason = finish ? sb_slice_cstr(finish) : SB_SLICE_NULL;
    return st->fn(st->ud, &ev);
}

static int emit_role(struct stream *st)
{
    struct sb_jw w;
    chunk_open(st, &w, true);
    sb_jw_key(&w, "role");
    sb_jw_cstr(&w, "assistant");
    sb_jw_key(&w, "content");
    sb_jw_cstr(&w, "");
    return chunk_close(st, &w, NULL, SB_SLICE_NULL);
}

/* One part → one chunk: content, reasoning_content, or a whole tool call. */
static int emit_part(struct stream *st, const struct sb_json *p)
{
    struct sb_jw w;
    const struct sb_json *t = GET(p, "text"), *sig = GET(p, "thoughtSignature");
    struct sb_slice text = SB_SLICE_NULL;
    if (GET(p, "functionCall")) {
        chunk_open(st, &w, true);
        sb_jw_key(&w, "tool_calls");
        sb_jw_arr_begin(&w);
        write_call(&w, st->scratch, p, st->rid, st->ncalls++, true);
        sb_jw_arr_end(&w);
        return chunk_close(st, &w, NULL, text);
    }
    if (!ISSTR(t) && !ISSTR(sig))
        return 0; /* parts with no OpenAI form (inline output data, executable code) */
    chunk_open(st, &w, true);
    if (ISSTR(t)) {
        sb_jw_key(&w, is_thought(p) ? "reasoning_content" : "content");
        sb_jw_str(&w, t->str);
        text = is_thought(p) ? SB_SLICE_NULL : t->str;
    }
    if (ISSTR(sig))
        write_signature(&w, sig->str);
    return chunk_close(st, &w, NULL, text);
}

static int emit_finish(struct stream *st, const char *fr)
{
    struct sb_jw w;
    st->finished = true;
    chunk_open(st, &w, true);
    return chunk_close(st, &w, fr, SB_SLICE_NULL);
}

static void start(struct stream *st, const struct sb_json *root)
{
    struct sb_slice rid = response_id(root);
    st->rid = rid.len ? sb_arena_slice(st->c->arena, rid) : SB_SLICE_NULL;
    st->id = completion_id(st->c->arena, root);
    st->started = true;
}

static int on_response(struct stream *st, const struct sb_json *root)
{
    const struct sb_json *parts = parts_of(root);
    int rc = 0;
    read_usage(root, &st->usage); /* cumulative: the last report wins */
    if (st->finished)
        return 0;
    if (!st->started) {
        start(st, root);
        rc = emit_role(st);
    }
    for (size_t i = 0; rc == 0 && parts && i < parts->count; i++)
        rc = emit_part(st, AT(parts, i));
    const char *fr = rc == 0 ? finish_reason(root, st->ncalls > 0) : NULL;
    return fr ? emit_finish(st, fr) : rc;
}

/* One SSE event = one whole GenerateContentResponse, or an error object. */
static int on_sse(void *ud, const struct sb_sse_event *sev)
{
    struct stream *st = ud;
    struct sb_json *root = NULL;
    struct sb_error jerr;
    int rc;
    if (st->done || !sev->data.len)
        return 0;
    if (sb_json_parse(st->scratch, sev->data.p, sev->data.len, &upstream_json, &root, &jerr) !=
            SB_OK ||
        root->type != SB_JSON_OBJECT)
        return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream event is not a JSON object",
                       sb__gm_name(st->c));
    const struct sb_json *e = GET(root, "error");
    if (e && e->type != SB_JSON_NULL) {
        describe(st->c, e, sev->data, SB_E_UPSTREAM, st->err);
        rc = st->err->code;
    } else if (malformed(root)) {
        rc = sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream event has malformed candidates",
                     sb__gm_name(st->c));
    } else {
        rc = on_response(st, root);
    }
    sb_arena_reset(st->scratch);
    return rc;
}

sb_err sb__gm_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                          struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    sb_err rc = sb_sse_feed(&st->sse, p, n, on_sse, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream event exceeds %u bytes",
                     sb__gm_name(st->c), STREAM_MAX_EVENT);
    return rc;
}

static int emit_usage(struct stream *st)
{
    struct sb_jw w;
    struct sb_event ev;
    chunk_open(st, &w, false);
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "usage");
    write_usage(&w, &st->usage);
    sb_jw_obj_end(&w);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_CHUNK;
    ev.chunk = sb_buf_slice(&st->out);
    ev.usage_only = ev.has_usage = true;
    ev.usage = usage_counts(&st->usage);
    return st->fn(st->ud, &ev);
}

sb_err sb__gm_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    struct sb_event ev;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->done)
        return SB_OK;
    if (sb_sse_finish(&st->sse, err) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended inside an event",
                       sb__gm_name(st->c));
    if (!st->finished)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended before a finishReason",
                       sb__gm_name(st->c));
    int rc = st->usage.known ? emit_usage(st) : 0;
    if (rc != 0)
        return rc;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_DONE;
    st->done = true;
    return fn(ud, &ev);
}

/* ==================================================================
 * Error bodies
 * ================================================================== */

static const struct {
    const char *status; /* google.rpc.Code name */
    sb_err code;
    int http;
} statuses[] = {
    {"INVALID_ARGUMENT", SB_E_BAD_REQUEST, 400},
    {"FAILED_PRECONDITION", SB_E_BAD_REQUEST, 400},
    {"OUT_OF_RANGE", SB_E_BAD_REQUEST, 400},
    {"UNAUTHENTICATED", SB_E_UNAUTHORIZED, 401},
    {"PERMISSION_DENIED", SB_E_FORBIDDEN, 403},
    {"NOT_FOUND", SB_E_NOT_FOUND, 404},
    {"RESOURCE_EXHAUSTED", SB_E_RATE_LIMITED, 429},
    {"INTERNAL", SB_E_UPSTREAM, 500},
    {"UNAVAILABLE", SB_E_UNAVAILABLE, 503},
    {"DEADLINE_EXCEEDED", SB_E_UPSTREAM_TIMEOUT, 504},
};

static const struct {
    int http;
    sb_err code;
} by_http[] = {
    {400, SB_E_BAD_REQUEST}, {401, SB_E_UNAUTHORIZED},     {403, SB_E_FORBIDDEN},
    {404, SB_E_NOT_FOUND},   {413, SB_E_TOO_LARGE},        {429, SB_E_RATE_LIMITED},
    {503, SB_E_UNAVAILABLE}, {504, SB_E_UPSTREAM_TIMEOUT},
};

static sb_err code_for(int status, const struct sb_json *e, int *http)
{
    const struct sb_json *s = GET(e, "status");
    *http = status >= 400 && status < 600 ? status : 502;
    for (size_t i = 0; ISSTR(s) && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (sb_slice_eq_cstr(s->str, statuses[i].status)) {
            *http = statuses[i].http;
            return statuses[i].code;
        }
    for (size_t i = 0; i < sizeof(by_http) / sizeof(by_http[0]); i++)
        if (by_http[i].http == status)
            return by_http[i].code;
    return status >= 400 && status < 500 ? SB_E_BAD_REQUEST : SB_E_UPSTREAM;
}

void sb__gm_map_error(const struct sb_call *c, int status, struct sb_slice body,
                      struct sb_error *err)
{
    struct sb_json_limits lim = {.max_depth = SB_GEMINI_MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    int http;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) != SB_OK)
        root = NULL;
    if (root && root->type == SB_JSON_ARRAY) /* streamGenerateContent without alt=sse */
        root = sb_json_at(root, 0);
    const struct sb_json *e = GET(root, "error");
    sb_err code = code_for(status, e, &http);
    describe(c, e, body, code, err);
    err->http_status = err->code == SB_E_UNAUTHORIZED ? 401 : http;
    /* Gemini has no error codes of its own beyond the status: name the two that
     * clients and failover branch on from the documented messages. */
    const struct sb_json *m = GET(e, "message");
    if (ISSTR(m) && code == SB_E_BAD_REQUEST &&
        m->str.len && (memmem(m->str.p, m->str.len, "exceeds the maximum number of tokens", 36) ||
                       memmem(m->str.p, m->str.len, "input token count", 17)))
        snprintf(err->api_code, sizeof(err->api_code), "context_length_exceeded");
    else if (code == SB_E_NOT_FOUND && ISSTR(m) && m->str.len &&
             memmem(m->str.p, m->str.len, "models/", 7))
        snprintf(err->api_code, sizeof(err->api_code), "model_not_found");
}
