/* SPDX-License-Identifier: MIT */
/*
 * bedrock_reply.c - the `bedrock` adapter, answers: Converse JSON, ConverseStream, errors.
 *
 * A Converse answer (output.message.content blocks, stopReason, usage)
 * becomes one chat.completion; a ConverseStream (AWS binary event-stream
 * frames, decoded and CRC-checked by eventstream.c) becomes
 * chat.completion.chunk events as each frame completes: messageStart → the
 * role chunk, contentBlockStart(toolUse) → a tool call's id and name,
 * contentBlockDelta → text, argument fragments or reasoning text,
 * contentBlockStop of a reasoning block → its thinking_blocks entry with
 * the signature (DESIGN.md §6), messageStop → the finish chunk, metadata →
 * the usage-only chunk. Exception frames end the stream with the upstream's
 * message. The only thing held across frames is the current reasoning
 * block (its text and signature, bounded), because a thinking block is
 * handed on whole, when it ends.
 *
 * InvokeModel embedding answers (Titan, Cohere) become OpenAI embedding
 * lists. Pure bytes: no sockets, no timers, no logging.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/bedrock_int.h"
#include "provider/provider.h"

#define jget sb__bedrock_get
#define jis sb__bedrock_is

static const struct sb_json_limits upstream_json = {.max_depth = SB__BEDROCK_MAX_DEPTH,
                                                    .max_bytes = 0};

static const char *pname(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "bedrock";
}

/* "chatcmpl-" and 24 random hex digits: Converse answers carry no id of their own. */
void sb__bedrock_new_id(char out[40])
{
    unsigned char r[12] = {0};
    static const char hex[] = "0123456789abcdef";
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memset(r, 0, sizeof(r)); /* an id, not a secret: a fixed one is still valid */
    memcpy(out, "chatcmpl-", 9);
    for (size_t i = 0; i < sizeof(r); i++) {
        out[9 + 2 * i] = hex[r[i] >> 4];
        out[10 + 2 * i] = hex[r[i] & 15];
    }
    out[33] = '\0';
}

/* ==================================================================
 * Shared: finish reasons, usage
 * ================================================================== */

static const struct {
    const char *bedrock;
    const char *openai;
} stop_reasons[] = {
    {"end_turn", "stop"},
    {"stop_sequence", "stop"},
    {"max_tokens", "length"},
    {"model_context_window_exceeded", "length"},
    {"tool_use", "tool_calls"},
    {"content_filtered", "content_filter"},
    {"guardrail_intervened", "content_filter"},
};

/* Unknown or malformed stop reasons (malformed_model_output...) end as "stop". */
const char *sb__bedrock_finish_reason(const struct sb_json *stop)
{
    for (size_t i = 0;
         jis(stop, SB_JSON_STRING) && i < sizeof(stop_reasons) / sizeof(*stop_reasons); i++)
        if (sb_slice_eq_cstr(stop->str, stop_reasons[i].bedrock))
            return stop_reasons[i].openai;
    return "stop";
}

static int64_t count(const struct sb_json *usage, const char *name)
{
    int64_t v;
    const struct sb_json *n = jget(usage, name);
    return n && sb_json_int64(n, &v) && v >= 0 ? v : -1;
}

static int64_t nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

/*
 * Bedrock's inputTokens leaves out cache reads and writes (as Anthropic's
 * input_tokens does); OpenAI's prompt_tokens includes cached tokens, so
 * they are added in and the reads reported as cached_tokens.
 */
struct sb_usage_counts sb__bedrock_usage_counts(const struct sb_json *usage)
{
    struct sb_usage_counts u = {count(usage, "inputTokens"), count(usage, "outputTokens")};
    if (u.prompt_tokens >= 0)
        u.prompt_tokens += nonneg(count(usage, "cacheReadInputTokens")) +
                           nonneg(count(usage, "cacheWriteInputTokens"));
    return u;
}

void sb__bedrock_put_usage(struct sb_jw *w, const struct sb_json *usage)
{
    struct sb_usage_counts u = sb__bedrock_usage_counts(usage);
    int64_t cached = count(usage, "cacheReadInputTokens");
    sb_jw_key(w, "usage");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "prompt_tokens");
    sb_jw_int(w, nonneg(u.prompt_tokens));
    sb_jw_key(w, "completion_tokens");
    sb_jw_int(w, nonneg(u.completion_tokens));
    sb_jw_key(w, "total_tokens");
    sb_jw_int(w, nonneg(u.prompt_tokens) + nonneg(u.completion_tokens));
    if (cached >= 0) {
        sb_jw_key(w, "prompt_tokens_details");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "cached_tokens");
        sb_jw_int(w, cached);
        sb_jw_obj_end(w);
    }
    sb_jw_obj_end(w);
}

static void put_head(struct sb_jw *w, const char *id, int64_t created, const char *object,
                     const struct sb_call *c)
{
    sb_jw_key(w, "id");
    sb_jw_cstr(w, id);
    sb_jw_key(w, "object");
    sb_jw_cstr(w, object);
    sb_jw_key(w, "created");
    sb_jw_int(w, created);
    sb_jw_key(w, "model");
    sb_jw_cstr(w, sb__bedrock_model(c));
}

/* ==================================================================
 * Whole chat answers
 * ================================================================== */

static void put_reasoning(struct sb_jw *w, const struct sb_json *content)
{
    bool any_text = false, any_block = false;
    for (const struct sb_json *b = content->child; b; b = b->next) {
        const struct sb_json *rc = jget(b, "reasoningContent");
        any_block |= rc != NULL;
        any_text |= jis(jget(jget(rc, "reasoningText"), "text"), SB_JSON_STRING);
    }
    if (any_text) {
        sb_jw_key(w, "reasoning_content");
        struct sb_buf all;
        sb_buf_init(&all, 0);
        for (const struct sb_json *b = content->child; b; b = b->next) {
            const struct sb_json *t =
                jget(jget(jget(b, "reasoningContent"), "reasoningText"), "text");
            if (jis(t, SB_JSON_STRING))
                sb_buf_append_slice(&all, t->str);
        }
        sb_jw_str(w, sb__bedrock_bytes(&all));
        sb_buf_free(&all);
    }
    if (!any_block)
        return;
    sb_jw_key(w, "thinking_blocks");
    sb_jw_arr_begin(w);
    for (const struct sb_json *b = content->child; b; b = b->next) {
        const struct sb_json *rc = jget(b, "reasoningContent");
        const struct sb_json *rt = jget(rc, "reasoningText"), *red = jget(rc, "redactedContent");
        const struct sb_json *t = jget(rt, "text"), *sig = jget(rt, "signature");
        if (!rc)
            continue;
        sb_jw_obj_begin(w);
        sb_jw_key(w, "type");
        sb_jw_cstr(w, jis(red, SB_JSON_STRING) ? "redacted_thinking" : "thinking");
        if (jis(red, SB_JSON_STRING)) {
            sb_jw_key(w, "data");
            sb_jw_str(w, red->str);
        } else {
            sb_jw_key(w, "thinking");
            sb_jw_str(w, jis(t, SB_JSON_STRING) ? t->str : SB_SLICE(""));
            sb_jw_key(w, "signature");
            sb_jw_str(w, jis(sig, SB_JSON_STRING) ? sig->str : SB_SLICE(""));
        }
        sb_jw_obj_end(w);
    }
    sb_jw_arr_end(w);
}

/* toolUse blocks → tool_calls; returns how many. */
static size_t put_tool_calls(struct sb_jw *w, const struct sb_json *content)
{
    size_t n = 0;
    for (const struct sb_json *b = content->child; b; b = b->next) {
        const struct sb_json *tu = jget(b, "toolUse");
        const struct sb_json *id = jget(tu, "toolUseId"), *name = jget(tu, "name");
        const struct sb_json *input = jget(tu, "input");
        if (!jis(id, SB_JSON_STRING) || !jis(name, SB_JSON_STRING))
            continue;
        if (n++ == 0) {
            sb_jw_key(w, "tool_calls");
            sb_jw_arr_begin(w);
        }
        sb_jw_obj_begin(w);
        sb_jw_key(w, "id");
        sb_jw_str(w, id->str);
        sb_jw_key(w, "type");
        sb_jw_cstr(w, "function");
        sb_jw_key(w, "function");
        sb_jw_obj_begin(w);
        sb_jw_key(w, "name");
        sb_jw_str(w, name->str);
        sb_jw_key(w, "arguments");
        sb_jw_str(w, input ? input->raw : SB_SLICE("{}"));
        sb_jw_obj_end(w);
        sb_jw_obj_end(w);
    }
    if (n)
        sb_jw_arr_end(w);
    return n;
}

static void put_message(struct sb_jw *w, const struct sb_json *content)
{
    struct sb_buf text;
    bool any_text = false, any_tool = false;
    sb_buf_init(&text, 0);
    for (const struct sb_json *b = content->child; b; b = b->next) {
        const struct sb_json *t = jget(b, "text");
        any_tool |= jget(b, "toolUse") != NULL;
        if (jis(t, SB_JSON_STRING)) {
            any_text = true;
            sb_buf_append_slice(&text, t->str);
        }
    }
    sb_jw_key(w, "message");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, "assistant");
    sb_jw_key(w, "content");
    if (any_text || !any_tool)
        sb_jw_str(w, sb__bedrock_bytes(&text));
    else
        sb_jw_null(w);
    put_reasoning(w, content);
    put_tool_calls(w, content);
    sb_jw_obj_end(w);
    sb_buf_free(&text);
}

static sb_err chat_response(const struct sb_call *c, const struct sb_json *root,
                            struct sb_result *out, struct sb_error *err)
{
    const struct sb_json *content = jget(jget(jget(root, "output"), "message"), "content");
    const struct sb_json *usage = jget(root, "usage");
    if (!jis(content, SB_JSON_ARRAY))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: answer has no output.message.content",
                       pname(c));
    char id[40];
    const char *fr = sb__bedrock_finish_reason(jget(root, "stopReason"));
    struct sb_buf b;
    struct sb_jw w;
    sb__bedrock_new_id(id);
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    put_head(&w, id, (int64_t)time(NULL), "chat.completion", c);
    sb_jw_key(&w, "choices");
    sb_jw_arr_begin(&w);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "index");
    sb_jw_int(&w, 0);
    put_message(&w, content);
    sb_jw_key(&w, "finish_reason");
    sb_jw_cstr(&w, fr);
    sb_jw_obj_end(&w);
    sb_jw_arr_end(&w);
    sb__bedrock_put_usage(&w, usage);
    sb_jw_obj_end(&w);
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    out->usage = sb__bedrock_usage_counts(usage);
    out->finish_reason = sb_slice_cstr(fr);
    sb_buf_free(&b);
    return SB_OK;
}

/* ==================================================================
 * Embedding answers (InvokeModel)
 * ================================================================== */

static void base64_floats(struct sb_buf *out, const struct sb_json *vec)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct sb_buf raw;
    sb_buf_init(&raw, 0);
    for (const struct sb_json *x = vec->child; x; x = x->next) {
        double d = 0;
        sb_json_double(x, &d);
        float f = (float)d;
        unsigned char le[4];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int i = 0; i < 4; i++)
            le[i] = (unsigned char)(u >> (8 * i)); /* OpenAI's base64 is little-endian float32 */
        sb_buf_append(&raw, le, 4);
    }
    const unsigned char *p = (const unsigned char *)raw.p;
    for (size_t i = 0; i < raw.len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < raw.len ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < raw.len ? p[i + 2] : 0);
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < raw.len ? tab[(v >> 6) & 63] : '=',
                     i + 2 < raw.len ? tab[v & 63] : '='};
        sb_buf_append(out, q, 4);
    }
    sb_buf_free(&raw);
}

static bool wants_base64(const struct sb_call *c)
{
    const struct sb_json *f = jget(c->json, "encoding_format");
    return jis(f, SB_JSON_STRING) && sb_slice_eq_cstr(f->str, "base64");
}

static sb_err put_vector(struct sb_jw *w, const struct sb_call *c, const struct sb_json *vec,
                         size_t index, struct sb_error *err)
{
    if (!jis(vec, SB_JSON_ARRAY))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: embedding is not an array", pname(c));
    for (const struct sb_json *x = vec->child; x; x = x->next)
        if (x->type != SB_JSON_NUMBER)
            return sb_fail(err, SB_E_UPSTREAM, "upstream %s: embedding holds a non-number",
                           pname(c));
    sb_jw_obj_begin(w);
    sb_jw_key(w, "object");
    sb_jw_cstr(w, "embedding");
    sb_jw_key(w, "index");
    sb_jw_int(w, (int64_t)index);
    sb_jw_key(w, "embedding");
    if (wants_base64(c)) {
        struct sb_buf b64;
        sb_buf_init(&b64, 0);
        base64_floats(&b64, vec);
        sb_jw_str(w, sb__bedrock_bytes(&b64));
        sb_buf_free(&b64);
    } else {
        sb_jw_raw(w, vec->raw);
    }
    sb_jw_obj_end(w);
    return SB_OK;
}

/* Titan: {"embedding":[...],"inputTextTokenCount":n}; Cohere: {"embeddings":[[...],...]}. */
static sb_err embed_response(const struct sb_call *c, const struct sb_json *root,
                             struct sb_result *out, struct sb_error *err)
{
    bool cohere = sb__bedrock_embed_family(c) == SB__BEDROCK_COHERE;
    const struct sb_json *vecs = jget(root, cohere ? "embeddings" : "embedding");
    int64_t tokens = count(root, "inputTextTokenCount"); /* Cohere's body has no count: -1 */
    struct sb_buf b;
    struct sb_jw w;
    sb_err rc = SB_OK;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "object");
    sb_jw_cstr(&w, "list");
    sb_jw_key(&w, "data");
    sb_jw_arr_begin(&w);
    if (cohere && !jis(vecs, SB_JSON_ARRAY))
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: answer has no embeddings", pname(c));
    size_t i = 0;
    for (const struct sb_json *v = cohere && rc == SB_OK ? vecs->child : NULL; v && rc == SB_OK;
         v = v->next)
        rc = put_vector(&w, c, v, i++, err);
    if (!cohere)
        rc = put_vector(&w, c, vecs, 0, err);
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "model");
    sb_jw_cstr(&w, sb__bedrock_model(c));
    sb_jw_key(&w, "usage");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "prompt_tokens");
    sb_jw_int(&w, nonneg(tokens));
    sb_jw_key(&w, "total_tokens");
    sb_jw_int(&w, nonneg(tokens));
    sb_jw_obj_end(&w);
    sb_jw_obj_end(&w);
    if (rc == SB_OK) {
        out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
        out->usage = (struct sb_usage_counts){tokens, 0};
    }
    sb_buf_free(&b);
    return rc;
}

sb_err sb__bedrock_parse_response(const struct sb_call *c, struct sb_slice body,
                                  struct sb_result *out, struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    memset(out, 0, sizeof(*out));
    if (sb_json_parse(c->arena, body.p, body.len, &upstream_json, &root, &jerr) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object", pname(c));
    return c->op == SB_OP_EMBEDDINGS ? embed_response(c, root, out, err)
                                     : chat_response(c, root, out, err);
}
