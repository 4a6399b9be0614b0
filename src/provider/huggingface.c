/* SPDX-License-Identifier: MIT */
/*
 * huggingface.c - the `huggingface` adapter: Text Generation Inference (TGI).
 *
 * Two wire formats, chosen by base_url:
 *  - base_url ending in "/v1" selects TGI's OpenAI-compatible Messages API
 *    ({base_url}/chat/completions, as the HF router and TGI >= 1.4 serve
 *    it): the OpenAI body passes through and everything is the openai
 *    adapter's (openai_int.h), tools included;
 *  - otherwise the native API, {base_url}/generate and /generate_stream,
 *    which takes raw text. The chat is rendered with the ChatML template
 *    (documented below); models trained on another template should use
 *    the Messages API, where TGI applies the model's own template.
 * Bearer auth either way. Embeddings go to {base_url}/v1/embeddings (or
 * {base_url}/embeddings under /v1), the OpenAI-compatible route of Text
 * Embeddings Inference, with the OpenAI body.
 *
 * Native request members: max_tokens / max_completion_tokens ->
 * max_new_tokens, temperature (TGI requires > 0: 0 means greedy, so it is
 * left out and do_sample is false), top_p (TGI requires 0 < p < 1; 1 is the
 * same as none), stop, seed, frequency_penalty, response_format -> grammar.
 * Anything else, tools above all (DESIGN.md §6: native TGI has none), is a
 * 400 naming the field, never a silent drop. We always ask for details, so
 * finish_reason and generated_tokens come back; the prompt's token count
 * comes only in stream details (input_length) or with decoder_input_details,
 * which we do not request (it returns every prompt token), so a whole
 * response has prompt_tokens -1.
 *
 * The stream half is huggingface_stream.c. Pure transformation of bytes.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/huggingface_int.h"
#include "provider/oai_emit.h"
#include "provider/openai_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"

#define MAX_DEPTH 64
#define MAX_EXCERPT 200

static const struct sb_json_limits upstream_json = {.max_depth = MAX_DEPTH, .max_bytes = 0};

const char *sb__hf_name(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "huggingface";
}

bool sb__hf_messages_api(const struct sb_call *c)
{
    struct sb_slice u = sb_slice_cstr(c->provider->base_url);
    return u.len >= 3 && memcmp(u.p + u.len - 3, "/v1", 3) == 0;
}

static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static bool jstr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

/* ==================================================================
 * Native request: the prompt (ChatML)
 * ================================================================== */

/*
 * ChatML, as published with OpenAI's chat markup and used by Qwen, Hermes,
 * SmolLM and many fine-tunes: each message is
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n
 * (ROLE system, user or assistant; OpenAI's "developer" is a system
 * message) and the prompt ends with "<|im_start|>assistant\n" so the model
 * answers as the assistant.
 */
static sb_err message_text(const struct sb_call *c, const struct sb_json *content, size_t i,
                           struct sb_buf *b, struct sb_error *err)
{
    if (jstr(content)) {
        sb_buf_append_slice(b, content->str);
        return SB_OK;
    }
    if (content && content->type == SB_JSON_NULL)
        return SB_OK;
    if (!content || content->type != SB_JSON_ARRAY)
        return sb_fail(err, SB_E_BAD_REQUEST, "messages[%zu].content must be a string or parts", i);
    for (const struct sb_json *p = content->child; p; p = p->next) {
        const struct sb_json *type = jget(p, "type"), *text = jget(p, "text");
        if (!jstr(type) || !sb_slice_eq_cstr(type->str, "text") || !jstr(text))
            return sb_fail(err, SB_E_BAD_REQUEST,
                           "messages[%zu].content: provider %s (TGI /generate) takes text "
                           "parts only",
                           i, sb__hf_name(c));
        sb_buf_append_slice(b, text->str);
    }
    return SB_OK;
}

static const char *chatml_role(struct sb_slice role)
{
    static const struct {
        const char *openai, *chatml;
    } roles[] = {{"system", "system"},
                 {"developer", "system"},
                 {"user", "user"},
                 {"assistant", "assistant"}};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (sb_slice_eq_cstr(role, roles[i].openai))
            return roles[i].chatml;
    return NULL;
}

static sb_err render_prompt(const struct sb_call *c, const struct sb_json *msgs, struct sb_buf *b,
                            struct sb_error *err)
{
    size_t i = 0;
    if (!msgs || msgs->type != SB_JSON_ARRAY || !msgs->count)
        return sb_fail(err, SB_E_BAD_REQUEST, "'messages' must be a non-empty array");
    for (const struct sb_json *m = msgs->child; m; m = m->next, i++) {
        const struct sb_json *role = jget(m, "role");
        const char *r = jstr(role) ? chatml_role(role->str) : NULL;
        if (!r)
            return sb_fail(err, SB_E_BAD_REQUEST,
                           "messages[%zu].role: provider %s (TGI /generate) has no tools; "
                           "roles are system, developer, user and assistant",
                           i, sb__hf_name(c));
        if (jget(m, "tool_calls") || jget(m, "function_call"))
            return sb_fail(err, SB_E_BAD_REQUEST,
                           "messages[%zu].tool_calls: provider %s (TGI /generate) has no tools", i,
                           sb__hf_name(c));
        sb_buf_printf(b, "<|im_start|>%s\n", r);
        sb_err rc = message_text(c, jget(m, "content"), i, b, err);
        if (rc != SB_OK)
            return rc;
        sb_buf_append_cstr(b, "<|im_end|>\n");
    }
    sb_buf_append_cstr(b, "<|im_start|>assistant\n");
    return SB_OK;
}

/* ==================================================================
 * Native request: parameters, one handler per OpenAI member
 * ================================================================== */

struct params {
    const struct sb_call *c;
    struct sb_jw *w; /* inside the "parameters" object */
    struct sb_error *err;
};

typedef sb_err (*param_fn)(struct params *p, const struct sb_json *v, const char *name);

static sb_err p_bad(struct params *p, const char *name, const char *why)
{
    return sb_fail_field(p->err, SB_E_BAD_REQUEST, name, "'%s' %s (provider %s, TGI /generate)",
                         name, why, sb__hf_name(p->c));
}

static sb_err p_ignore(struct params *p, const struct sb_json *v, const char *name)
{
    (void)p, (void)v, (void)name;
    return SB_OK;
}

static sb_err p_unsupported(struct params *p, const struct sb_json *v, const char *name)
{
    (void)v;
    return p_bad(p, name, "is not supported");
}

static sb_err p_no_tools(struct params *p, const struct sb_json *v, const char *name)
{
    (void)v;
    return p_bad(p, name,
                 "is not supported: TGI's /generate has no tool calling (a base_url ending in "
                 "/v1 selects TGI's Messages API, which has)");
}

static sb_err p_max_tokens(struct params *p, const struct sb_json *v, const char *name)
{
    int64_t n;
    if (v->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_int64(v, &n) || n < 1)
        return p_bad(p, name, "must be a positive integer");
    /* max_completion_tokens wins over the deprecated max_tokens when both come. */
    if (sb_slice_eq_cstr(sb_slice_cstr(name), "max_tokens") &&
        jget(p->c->json, "max_completion_tokens"))
        return SB_OK;
    sb_jw_key(p->w, "max_new_tokens");
    sb_jw_int(p->w, n);
    return SB_OK;
}

static sb_err p_temperature(struct params *p, const struct sb_json *v, const char *name)
{
    double t;
    if (v->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_double(v, &t) || t < 0)
        return p_bad(p, name, "must be a number >= 0");
    sb_jw_key(p->w, "do_sample");
    sb_jw_bool(p->w, t > 0);
    if (t > 0) { /* TGI refuses 0: greedy decoding is do_sample false */
        sb_jw_key(p->w, "temperature");
        sb_jw_raw(p->w, v->raw);
    }
    return SB_OK;
}

static sb_err p_top_p(struct params *p, const struct sb_json *v, const char *name)
{
    double t;
    if (v->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_double(v, &t) || t <= 0 || t > 1)
        return p_bad(p, name, "must be a number in (0, 1]");
    if (t < 1) { /* TGI wants 0 < top_p < 1; 1 keeps every token, as none does */
        sb_jw_key(p->w, "top_p");
        sb_jw_raw(p->w, v->raw);
    }
    return SB_OK;
}

static sb_err p_stop(struct params *p, const struct sb_json *v, const char *name)
{
    if (v->type == SB_JSON_NULL)
        return SB_OK;
    bool ok = jstr(v) || v->type == SB_JSON_ARRAY;
    for (const struct sb_json *s = v->type == SB_JSON_ARRAY ? v->child : NULL; s && ok; s = s->next)
        ok = jstr(s);
    if (!ok)
        return p_bad(p, name, "must be a string or an array of strings");
    sb_jw_key(p->w, "stop");
    if (jstr(v)) {
        sb_jw_arr_begin(p->w);
        sb_jw_raw(p->w, v->raw);
        sb_jw_arr_end(p->w);
    } else {
        sb_jw_raw(p->w, v->raw);
    }
    return SB_OK;
}

static sb_err p_number(struct params *p, const struct sb_json *v, const char *name)
{
    double d;
    if (v->type == SB_JSON_NULL)
        return SB_OK;
    if (!sb_json_double(v, &d))
        return p_bad(p, name, "must be a number");
    sb_jw_key(p->w, name);
    sb_jw_raw(p->w, v->raw);
    return SB_OK;
}

static sb_err p_n(struct params *p, const struct sb_json *v, const char *name)
{
    int64_t n;
    if (v->type == SB_JSON_NULL || (sb_json_int64(v, &n) && n == 1))
        return SB_OK;
    return p_bad(p, name, "must be 1: TGI returns one choice");
}

/* response_format: json_object and json_schema become TGI's JSON grammar. */
static sb_err p_response_format(struct params *p, const struct sb_json *v, const char *name)
{
    const struct sb_json *type = jget(v, "type");
    const struct sb_json *schema = jget(jget(v, "json_schema"), "schema");
    if (v->type == SB_JSON_NULL || (jstr(type) && sb_slice_eq_cstr(type->str, "text")))
        return SB_OK;
    struct sb_slice value;
    if (jstr(type) && sb_slice_eq_cstr(type->str, "json_object"))
        value = SB_SLICE("{\"type\":\"object\"}");
    else if (jstr(type) && sb_slice_eq_cstr(type->str, "json_schema") && schema &&
             schema->type == SB_JSON_OBJECT)
        value = schema->raw;
    else
        return p_bad(p, name, "must be text, json_object, or json_schema with a schema");
    sb_jw_key(p->w, "grammar");
    sb_jw_obj_begin(p->w);
    sb_jw_key(p->w, "type");
    sb_jw_cstr(p->w, "json");
    sb_jw_key(p->w, "value");
    sb_jw_raw(p->w, value);
    sb_jw_obj_end(p->w);
    return SB_OK;
}

static sb_err p_bool_false_only(struct params *p, const struct sb_json *v, const char *name)
{
    if (v->type == SB_JSON_NULL || v->type == SB_JSON_FALSE)
        return SB_OK;
    return p_bad(p, name, "is not supported");
}

/* Every member the native path knows; the rest are refused by name. "user" is an end-user id
 * for the provider's abuse monitoring, which TGI has no field for; we account it ourselves. */
static const struct {
    const char *name;
    param_fn fn;
} members[] = {
    {"model", p_ignore},
    {"messages", p_ignore},
    {"stream", p_ignore},
    {"stream_options", p_ignore},
    {"user", p_ignore},
    {"max_tokens", p_max_tokens},
    {"max_completion_tokens", p_max_tokens},
    {"temperature", p_temperature},
    {"top_p", p_top_p},
    {"stop", p_stop},
    {"seed", p_number},
    {"frequency_penalty", p_number},
    {"n", p_n},
    {"response_format", p_response_format},
    {"logprobs", p_bool_false_only},
    {"tools", p_no_tools},
    {"tool_choice", p_no_tools},
    {"functions", p_no_tools},
    {"function_call", p_no_tools},
    {"parallel_tool_calls", p_no_tools},
    {"presence_penalty", p_unsupported},
    {"logit_bias", p_unsupported},
    {"top_logprobs", p_unsupported},
    {"reasoning_effort", p_unsupported},
};

static sb_err put_params(const struct sb_call *c, struct sb_jw *w, struct sb_error *err)
{
    struct params p = {c, w, err};
    sb_err rc = SB_OK;
    for (const struct sb_json *m = c->json->child; m && rc == SB_OK; m = m->next) {
        size_t k = 0, n = sizeof(members) / sizeof(members[0]);
        while (k < n && !sb_slice_eq_cstr(m->key, members[k].name))
            k++;
        if (k == n)
            rc = sb_fail(err, SB_E_BAD_REQUEST,
                         "unsupported field '%.*s' for provider %s (TGI /generate)",
                         (int)(m->key.len > 40 ? 40 : m->key.len), m->key.p, sb__hf_name(c));
        else
            rc = members[k].fn(&p, m, members[k].name);
    }
    sb_jw_key(w, "details");
    sb_jw_bool(w, true);
    sb_jw_key(w, "return_full_text");
    sb_jw_bool(w, false);
    return rc;
}

static sb_err native_body(const struct sb_call *c, struct sb_slice *out, struct sb_error *err)
{
    struct sb_buf b, prompt;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_buf_init(&prompt, 0);
    sb_err rc = render_prompt(c, jget(c->json, "messages"), &prompt, err);
    sb_jw_init(&w, &b);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "inputs");
    sb_jw_str(&w, prompt.p ? sb_buf_slice(&prompt) : SB_SLICE("")); /* empty after an error */
    sb_jw_key(&w, "parameters");
    sb_jw_obj_begin(&w);
    if (rc == SB_OK)
        rc = put_params(c, &w, err);
    sb_jw_obj_end(&w);
    sb_jw_obj_end(&w);
    if (rc == SB_OK)
        *out = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    sb_buf_free(&prompt);
    return rc;
}

static sb_err native_request(const struct sb_call *c, struct sb_upstream_req *out,
                             struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    sb_err rc = native_body(c, &out->body, err);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = sb_arena_printf(c->arena, "%s%s", c->provider->base_url,
                               c->stream ? "/generate_stream" : "/generate");
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                c->stream ? SB_SLICE("text/event-stream")
                                          : SB_SLICE("application/json"));
    return sb_upstream_auth_apply(c->provider, NULL, c->arena, out, err);
}

static sb_err hf_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                               struct sb_error *err)
{
    if (c->op == SB_OP_CHAT && !sb__hf_messages_api(c))
        return native_request(c, out, err);
    sb_err rc = sb_openai_ops.build_request(c, out, err);
    if (rc == SB_OK && c->op == SB_OP_EMBEDDINGS && !sb__hf_messages_api(c))
        out->url = sb_arena_printf(c->arena, "%s/v1/embeddings", c->provider->base_url);
    return rc;
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

static const struct {
    const char *tgi, *openai;
} finish_reasons[] = {
    {"length", "length"},
    {"eos_token", "stop"},
    {"stop_sequence", "stop"},
};

const char *sb__hf_finish_reason(struct sb_slice tgi)
{
    for (size_t i = 0; i < sizeof(finish_reasons) / sizeof(finish_reasons[0]); i++)
        if (sb_slice_eq_cstr(tgi, finish_reasons[i].tgi))
            return finish_reasons[i].openai;
    return "stop";
}

/* The OpenAI envelope's head: id, object, created, model. */
void sb__hf_envelope(const struct sb_call *c, struct sb_jw *w, const char *object, int64_t created)
{
    sb_jw_key(w, "id");
    sb_jw_str(w, sb_slice_cstr(sb_arena_printf(c->arena, "chatcmpl-hf-%llx-%llx",
                                               (unsigned long long)created,
                                               (unsigned long long)(uintptr_t)c % 0xfffff)));
    sb_jw_key(w, "object");
    sb_jw_cstr(w, object);
    sb_jw_key(w, "created");
    sb_jw_int(w, created);
    sb_jw_key(w, "model");
    sb_jw_cstr(w, c->model->upstream_model ? c->model->upstream_model : c->model->id);
}

void sb__hf_usage(struct sb_jw *w, int64_t prompt, int64_t completion)
{
    sb_jw_key(w, "usage");
    sb_jw_obj_begin(w);
    if (prompt >= 0) {
        sb_jw_key(w, "prompt_tokens");
        sb_jw_int(w, prompt);
    }
    sb_jw_key(w, "completion_tokens");
    sb_jw_int(w, completion);
    if (prompt >= 0) {
        sb_jw_key(w, "total_tokens");
        sb_jw_int(w, prompt + completion);
    }
    sb_jw_obj_end(w);
}

static void write_completion(const struct sb_call *c, struct sb_jw *w, struct sb_slice text,
                             const char *finish, int64_t prompt, int64_t completion)
{
    sb_jw_obj_begin(w);
    sb__hf_envelope(c, w, "chat.completion", sb__hf_now());
    sb_jw_key(w, "choices");
    sb_jw_arr_begin(w);
    sb_jw_obj_begin(w);
    sb_jw_key(w, "index");
    sb_jw_int(w, 0);
    sb_jw_key(w, "message");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_cstr(w, "assistant");
    sb_jw_key(w, "content");
    sb_jw_str(w, text);
    sb_jw_obj_end(w);
    sb_jw_key(w, "finish_reason");
    sb_jw_cstr(w, finish);
    sb_jw_obj_end(w);
    sb_jw_arr_end(w);
    sb__hf_usage(w, prompt, completion);
    sb_jw_obj_end(w);
}

static sb_err native_response(const struct sb_call *c, struct sb_slice body, struct sb_result *out,
                              struct sb_error *err)
{
    struct sb_json *root = NULL;
    struct sb_error jerr;
    memset(out, 0, sizeof(*out));
    if (sb_json_parse(c->arena, body.p, body.len, &upstream_json, &root, &jerr) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not JSON", sb__hf_name(c));
    const struct sb_json *r = root->type == SB_JSON_ARRAY ? sb_json_at(root, 0) : root;
    const struct sb_json *text = jget(r, "generated_text"), *details = jget(r, "details");
    const struct sb_json *fr = jget(details, "finish_reason"), *prefill = jget(details, "prefill");
    if (!jstr(text))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response has no generated_text",
                       sb__hf_name(c));
    int64_t completion = -1;
    if (!sb_json_int64(jget(details, "generated_tokens"), &completion) || completion < 0)
        completion = -1;
    out->usage.prompt_tokens =
        prefill && prefill->type == SB_JSON_ARRAY ? (int64_t)prefill->count : -1;
    out->usage.completion_tokens = completion;
    const char *finish = sb__hf_finish_reason(jstr(fr) ? fr->str : SB_SLICE_NULL);
    out->finish_reason = sb_slice_cstr(finish);
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    write_completion(c, &w, text->str, finish, out->usage.prompt_tokens,
                     completion < 0 ? 0 : completion);
    out->body = sb_arena_slice(c->arena, sb_buf_slice(&b));
    sb_buf_free(&b);
    return SB_OK;
}

static sb_err hf_parse_response(const struct sb_call *c, struct sb_slice body,
                                struct sb_result *out, struct sb_error *err)
{
    if (c->op == SB_OP_CHAT && !sb__hf_messages_api(c))
        return native_response(c, body, out, err);
    return sb_openai_ops.parse_response(c, body, out, err);
}

/* ==================================================================
 * Errors: {"error": "...", "error_type": "..."} (or OpenAI's shape under /v1)
 * ================================================================== */

/* Validation messages that mean the prompt does not fit the model's context. */
static const char *const context_markers[] = {
    "`inputs` tokens + `max_new_tokens` must be <=",
    "`inputs` must have less than",
};

static struct sb_slice error_text(const struct sb_call *c, struct sb_slice body,
                                  struct sb_slice *type)
{
    struct sb_json_limits lim = {.max_depth = MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    *type = SB_SLICE_NULL;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) != SB_OK)
        return body;
    const struct sb_json *e = jget(root, "error"), *t = jget(root, "error_type");
    const struct sb_json *m = jget(e, "message");
    if (jstr(t))
        *type = t->str;
    return jstr(e) ? e->str : jstr(m) ? m->str : body;
}

static bool mentions(struct sb_slice s, const char *what)
{
    return s.len && memmem(s.p, s.len, what, strlen(what)) != NULL;
}

static void hf_map_error(const struct sb_call *c, int status, struct sb_slice body,
                         struct sb_error *err)
{
    char msg[MAX_EXCERPT + 1];
    struct sb_slice type;
    struct sb_slice m = error_text(c, body, &type);
    sb_oai_excerpt(c, msg, sizeof(msg), m);
    bool overloaded = sb_slice_eq_cstr(type, "overloaded");
    /* TGI: 422 validation, 424 generation failed, 429 overloaded, 500 incomplete generation. */
    sb_err code = status == 401                   ? SB_E_UNAUTHORIZED
                  : status == 403                 ? SB_E_FORBIDDEN
                  : status == 404                 ? SB_E_NOT_FOUND
                  : status == 413                 ? SB_E_TOO_LARGE
                  : overloaded || status == 503   ? SB_E_UNAVAILABLE
                  : status == 429                 ? SB_E_RATE_LIMITED
                  : status >= 400 && status < 424 ? SB_E_BAD_REQUEST
                                                  : SB_E_UPSTREAM;
    if (!msg[0])
        sb_fail(err, code, "upstream %s: HTTP %d", sb__hf_name(c), status);
    else
        sb_fail(err, code, "upstream %s: %s", sb__hf_name(c), msg);
    err->http_status = code == SB_E_BAD_REQUEST ? 400 : 0;
    const char *api = code == SB_E_UNAUTHORIZED ? "invalid_api_key"
                      : code == SB_E_NOT_FOUND  ? "model_not_found"
                                                : "";
    for (size_t i = 0; i < sizeof(context_markers) / sizeof(context_markers[0]); i++)
        if (code == SB_E_BAD_REQUEST && mentions(m, context_markers[i]))
            api = "context_length_exceeded";
    snprintf(err->api_code, sizeof(err->api_code), "%s", api);
}

const struct sb_provider_ops sb_huggingface_ops = {
    .type = "huggingface",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/generate",
    .build_request = hf_build_request,
    .parse_response = hf_parse_response,
    .stream_open = sb__hf_stream_open,
    .stream_feed = sb__hf_stream_feed,
    .stream_finish = sb__hf_stream_finish,
    .map_error = hf_map_error,
};
