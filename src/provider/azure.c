/* SPDX-License-Identifier: MIT */
/*
 * azure.c - the `azure` adapter: Azure OpenAI deployments.
 *
 * Azure OpenAI speaks OpenAI's Chat Completions and Embeddings bodies, so
 * this file owns only what differs: the URL
 *   {base_url}/openai/deployments/{deployment}/{chat/completions|embeddings}
 *   ?api-version={api_version}
 * (the deployment is the model's upstream_model; api_version is required),
 * the `api-key` header, and one stream quirk. The body splice, whole
 * responses, in-stream errors and error mapping are the openai adapter's
 * (openai_int.h). Azure routes on the deployment in the path and ignores
 * the body's "model"; we still set it to the deployment name so the body is
 * what an OpenAI upstream would get.
 *
 * The quirk: with content filtering on (Azure's default) a stream opens
 * with an annotation-only chunk, `"choices":[]` and `prompt_filter_results`
 * (id "" and created 0), and may carry more such chunks later. OpenAI
 * clients that read choices[0] of every chunk crash on them, so the relay
 * drops every chunk with an empty choices array that carries no usage; the
 * usage-only chunk at the end is kept. finish_reason "content_filter" and
 * the content_filter_results inside choices pass through untouched.
 *
 * Pure transformation of bytes, like every adapter: no I/O, no logging.
 */
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/openai_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"

#define SCRATCH_BLOCK 4096
/* stream_options.include_usage appeared in api-version 2024-09-01-preview (and the 2024-10-21
 * GA); older versions reject the unknown member, so we only add it from that date on. */
#define USAGE_SINCE "2024-09-01"

static const char *pname(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "azure";
}

/* Appends s percent-encoded for a path segment or query value (RFC 3986 unreserved kept). */
static void put_escaped(struct sb_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_buf_append_char(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_buf_append(b, e, 3);
        }
    }
}

static const char *azure_url(const struct sb_call *c)
{
    const char *dep = c->model->upstream_model ? c->model->upstream_model : c->model->id;
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_cstr(&b, c->provider->base_url);
    sb_buf_append_cstr(&b, "/openai/deployments/");
    put_escaped(&b, dep);
    sb_buf_append_cstr(&b, c->op == SB_OP_EMBEDDINGS ? "/embeddings" : "/chat/completions");
    sb_buf_append_cstr(&b, "?api-version=");
    put_escaped(&b, c->provider->api_version);
    const char *url = sb_arena_strndup(c->arena, b.p, b.len);
    sb_buf_free(&b);
    return url;
}

static sb_err azure_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                  struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    const char *v = c->provider->api_version;
    if (!v || !*v)
        return sb_fail_field(err, SB_E_CONFIG, "api_version",
                             "provider %s (type azure) has no api_version configured", pname(c));
    bool usage = strncmp(v, USAGE_SINCE, strlen(USAGE_SINCE)) >= 0;
    sb_err rc = sb__openai_set_body(c, usage, out, err);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = azure_url(c);
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                c->stream ? SB_SLICE("text/event-stream")
                                          : SB_SLICE("application/json"));
    static const struct sb_upstream_auth_opts opts = {.key_name = "api-key"};
    return sb_upstream_auth_apply(c->provider, &opts, c->arena, out, err);
}

static sb_err azure_parse_response(const struct sb_call *c, struct sb_slice body,
                                   struct sb_result *out, struct sb_error *err)
{
    return sb_openai_ops.parse_response(c, body, out, err);
}

/* Azure's answers are OpenAI's: a large one is relayed as it arrives. */
static sb_err azure_parse_tail(const struct sb_call *c, struct sb_slice tail,
                               struct sb_result *out, struct sb_error *err)
{
    return sb_openai_ops.parse_tail(c, tail, out, err);
}

/* ==================================================================
 * Streams: openai's, minus the annotation-only chunks
 * ================================================================== */

struct stream {
    void *inner;              /* the openai adapter's stream state */
    struct sb_arena *scratch; /* to look inside a chunk that carries nothing we read */
    sb_event_fn fn;           /* of the current feed */
    void *ud;
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_arena_free(st->scratch);
}

static void *azure_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->inner = sb_openai_ops.stream_open(c);
    st->scratch = sb_arena_create(SCRATCH_BLOCK);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* True for a chunk whose "choices" is an empty array (Azure's filter annotations). */
static bool no_choices(struct stream *st, struct sb_slice chunk)
{
    static const struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    bool empty = false;
    if (sb_json_parse(st->scratch, chunk.p, chunk.len, &lim, &root, &jerr) == SB_OK) {
        const struct sb_json *ch = sb_json_get(root, "choices");
        empty = ch && ch->type == SB_JSON_ARRAY && ch->count == 0;
    }
    sb_arena_reset(st->scratch);
    return empty;
}

static int filter_event(void *ud, const struct sb_event *ev)
{
    struct stream *st = ud;
    /* Only a chunk with no text, finish or usage can be an annotation; look inside those. */
    if (ev->kind == SB_EV_CHUNK && !ev->has_usage && !ev->text.len && !ev->finish_reason.len &&
        no_choices(st, ev->chunk))
        return 0;
    return st->fn(st->ud, ev);
}

static sb_err azure_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                                struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    return sb_openai_ops.stream_feed(st->inner, p, n, filter_event, st, err);
}

static sb_err azure_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    return sb_openai_ops.stream_finish(st->inner, filter_event, st, err);
}

/* Azure's errors are OpenAI-shaped: {"error":{"code","message","param","type"}}; content
 * filter refusals are 400 with code "content_filter", kept for the client. */
static void azure_map_error(const struct sb_call *c, int status, struct sb_slice body,
                            struct sb_error *err)
{
    sb_openai_ops.map_error(c, status, body, err);
}

const struct sb_provider_ops sb_azure_ops = {
    .type = "azure",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/chat/completions",
    .build_request = azure_build_request,
    .parse_response = azure_parse_response,
    .parse_tail = azure_parse_tail,
    .stream_open = azure_stream_open,
    .stream_feed = azure_stream_feed,
    .stream_finish = azure_stream_finish,
    .map_error = azure_map_error,
};
