/* SPDX-License-Identifier: MIT */
/*
 * openai.c - the `openai` adapter: Chat Completions and Embeddings, SSE streams.
 *
 * Covers OpenAI and every OpenAI-compatible upstream. Requests pass through
 * byte for byte except the "model" value (and, for streams, one
 * stream_options.include_usage splice so that we always get a usage chunk
 * to account with); the edits are spliced into the client's bytes using the
 * parsed tree's raw spans, never by re-serialising. Responses and stream
 * chunks pass through untouched; we only read usage, the first choice's
 * content delta and finish reason out of them.
 *
 * Like every adapter this file is a pure transformation of bytes: no
 * sockets, no timers, no logging, and no credential ever reaches a message.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "crypto/secret.h"
#include "provider/oai_emit.h"
#include "provider/openai_int.h"
#include "provider/provider.h"
#include "provider/upstream_auth.h"
#include "provider/sse.h"

#define STREAM_MAX_LINE (1024u * 1024u)       /* one SSE line of a chunk */
#define STREAM_MAX_EVENT (4u * 1024u * 1024u) /* one chunk's data */
#define SCRATCH_BLOCK (4u * 1024u)            /* per-chunk JSON arena, made on first use */
#define MAX_EXCERPT 200                       /* bytes of an upstream message we quote */
#define MAX_DEPTH 64                          /* JSON nesting we accept from upstream */

/* json.h leaves a NULL limits pointer unspecified, so we always pass one. */
static const struct sb_json_limits upstream_json = {.max_depth = MAX_DEPTH, .max_bytes = 0};

static const char *pname(const struct sb_call *c)
{
    return c->provider && c->provider->id ? c->provider->id : "openai";
}

/* NULL-tolerant tree walking: a missing step yields NULL, never a crash. */
static const struct sb_json *jget(const struct sb_json *o, const char *key)
{
    return o && o->type == SB_JSON_OBJECT ? sb_json_get(o, key) : NULL;
}

static bool jstr(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

/* ==================================================================
 * Request: URL, headers, and the body splice
 * ================================================================== */

struct edit {
    size_t at;            /* offset into the client body */
    size_t len;           /* bytes replaced there (0 = insertion) */
    struct sb_slice with; /* replacement bytes */
};

struct edits {
    struct edit e[8]; /* model values (one per duplicate key) + one usage edit */
    size_t n;
};

static bool within(struct sb_slice body, struct sb_slice raw)
{
    return raw.p >= body.p && raw.len <= body.len && (size_t)(raw.p - body.p) <= body.len - raw.len;
}

static sb_err add_edit(struct edits *ed, const struct sb_call *c, const char *at, size_t len,
                       struct sb_slice with, struct sb_error *err)
{
    if (ed->n == sizeof(ed->e) / sizeof(ed->e[0]))
        return sb_fail(err, SB_E_BAD_REQUEST, "request body has too many 'model' members");
    if (!within(c->body, (struct sb_slice){at, len}))
        return sb_fail(err, SB_E_INTERNAL, "parsed request does not point into its body");
    ed->e[ed->n++] = (struct edit){(size_t)(at - c->body.p), len, with};
    return SB_OK;
}

/* "s" as a JSON string literal, from the arena. */
static struct sb_slice json_quote(struct sb_arena *a, const char *s)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_char(&b, '"');
    sb_json_escape(&b, sb_slice_cstr(s));
    sb_buf_append_char(&b, '"');
    struct sb_slice out = sb_arena_slice(a, sb_buf_slice(&b));
    sb_buf_free(&b);
    return out;
}

/* Replaces every top-level "model" value (upstreams take the last duplicate; we leave none). */
static sb_err model_edits(const struct sb_call *c, struct edits *ed, struct sb_error *err)
{
    const struct sb_json *root = c->json;
    const char *up = c->model->upstream_model ? c->model->upstream_model : c->model->id;
    struct sb_slice quoted = json_quote(c->arena, up);
    bool found = false;
    sb_err rc = SB_OK;
    for (const struct sb_json *m = root->child; m && rc == SB_OK; m = m->next) {
        if (!sb_slice_eq_cstr(m->key, "model"))
            continue;
        found = true;
        if (!sb_slice_eq(m->raw, quoted)) /* already right: no edit, maybe no copy at all */
            rc = add_edit(ed, c, m->raw.p, m->raw.len, quoted, err);
    }
    if (!found && rc == SB_OK) {
        char *ins =
            sb_arena_printf(c->arena, "\"model\":%.*s%s", SB_FMT(quoted), root->count ? "," : "");
        rc = add_edit(ed, c, root->raw.p + 1, 0, sb_slice_cstr(ins), err);
    }
    return rc;
}

/*
 * A streamed chat call always asks upstream for the usage chunk; the
 * relay hides that chunk again from a client that did not ask for it.
 */
static sb_err usage_edit(const struct sb_call *c, bool want, struct edits *ed, struct sb_error *err)
{
    const struct sb_json *so = jget(c->json, "stream_options");
    const struct sb_json *iu = jget(so, "include_usage");
    if (!want || !c->stream || c->client_wants_usage || (iu && iu->type == SB_JSON_TRUE))
        return SB_OK;
    if (!so) {
        const char *ins = c->json->count ? "\"stream_options\":{\"include_usage\":true},"
                                         : "\"stream_options\":{\"include_usage\":true}";
        return add_edit(ed, c, c->json->raw.p + 1, 0, sb_slice_cstr(ins), err);
    }
    if (so->type != SB_JSON_OBJECT)
        return add_edit(ed, c, so->raw.p, so->raw.len, SB_SLICE("{\"include_usage\":true}"), err);
    if (iu)
        return add_edit(ed, c, iu->raw.p, iu->raw.len, SB_SLICE("true"), err);
    return add_edit(
        ed, c, so->raw.p + 1, 0,
        so->count ? SB_SLICE("\"include_usage\":true,") : SB_SLICE("\"include_usage\":true"), err);
}

/* Sorts the edits by offset (stable: insertions at one place keep their order). */
static void sort_edits(struct edits *ed)
{
    for (size_t i = 1; i < ed->n; i++) {
        struct edit x = ed->e[i];
        size_t j = i;
        for (; j > 0 && ed->e[j - 1].at > x.at; j--)
            ed->e[j] = ed->e[j - 1];
        ed->e[j] = x;
    }
}

/* Applies the sorted edits into one new arena body. */
static struct sb_slice apply_edits(const struct sb_call *c, const struct edits *ed)
{
    size_t total = c->body.len;
    for (size_t i = 0; i < ed->n; i++)
        total = total - ed->e[i].len + ed->e[i].with.len;
    char *out = sb_arena_alloc(c->arena, total + 1), *o = out;
    size_t pos = 0;
    for (size_t i = 0; i < ed->n; i++) {
        memcpy(o, c->body.p + pos, ed->e[i].at - pos);
        o += ed->e[i].at - pos;
        memcpy(o, ed->e[i].with.p, ed->e[i].with.len);
        o += ed->e[i].with.len;
        pos = ed->e[i].at + ed->e[i].len;
    }
    memcpy(o, c->body.p + pos, c->body.len - pos);
    out[total] = '\0';
    return (struct sb_slice){out, total};
}

/* The same edits as pieces: the client's bytes between them and the new
 * values, no copy of the body (at most 2 * 8 + 1 = SB_UREQ_MAX_PARTS). */
static const struct sb_slice *edit_parts(const struct sb_call *c, const struct edits *ed,
                                         size_t *n)
{
    struct sb_slice *parts = sb_arena_alloc(c->arena, (2 * ed->n + 1) * sizeof(*parts));
    size_t k = 0, pos = 0;
    for (size_t i = 0; i < ed->n; i++) {
        parts[k++] = (struct sb_slice){c->body.p + pos, ed->e[i].at - pos};
        parts[k++] = ed->e[i].with;
        pos = ed->e[i].at + ed->e[i].len;
    }
    parts[k++] = (struct sb_slice){c->body.p + pos, c->body.len - pos};
    *n = k;
    return parts;
}

/* The body's edits, sorted: every top-level "model" value, the usage option.
 * Edits never overlap: they touch distinct members, or insert right after a '{'. */
static sb_err body_edits(const struct sb_call *c, bool usage, struct edits *ed,
                         struct sb_error *err)
{
    ed->n = 0;
    if (!c->json || c->json->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "request body must be a JSON object");
    if (!within(c->body, c->json->raw))
        return sb_fail(err, SB_E_INTERNAL, "parsed request does not point into its body");
    sb_err rc = model_edits(c, ed, err);
    if (rc == SB_OK)
        rc = usage_edit(c, usage, ed, err);
    sort_edits(ed);
    return rc;
}

sb_err sb__openai_rewrite_body(const struct sb_call *c, bool usage, struct sb_slice *out,
                               struct sb_error *err)
{
    struct edits ed;
    sb_err rc = body_edits(c, usage, &ed, err);
    if (rc == SB_OK)
        *out = ed.n ? apply_edits(c, &ed) : c->body;
    return rc;
}

sb_err sb__openai_set_body(const struct sb_call *c, bool usage, struct sb_upstream_req *out,
                           struct sb_error *err)
{
    /* SigV4 hashes one whole body; a caller without pieces gets one too. */
    if (!c->want_parts || c->provider->auth == SB_AUTH_SIGV4)
        return sb__openai_rewrite_body(c, usage, &out->body, err);
    struct edits ed;
    sb_err rc = body_edits(c, usage, &ed, err);
    if (rc != SB_OK)
        return rc;
    if (ed.n)
        out->parts = edit_parts(c, &ed, &out->nparts);
    else
        out->body = c->body;
    return SB_OK;
}

static sb_err openai_build_request(const struct sb_call *c, struct sb_upstream_req *out,
                                   struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    sb_err rc = sb__openai_set_body(c, true, out, err);
    if (rc != SB_OK)
        return rc;
    out->method = "POST";
    out->url = sb_arena_printf(c->arena, "%s%s", c->provider->base_url,
                               c->op == SB_OP_EMBEDDINGS ? "/embeddings" : "/chat/completions");
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Content-Type"),
                                SB_SLICE("application/json"));
    sb_upstream_auth_set_header(c->arena, out, SB_SLICE("Accept"),
                                c->stream ? SB_SLICE("text/event-stream")
                                          : SB_SLICE("application/json"));
    return sb_upstream_auth_apply(c->provider, NULL, c->arena, out, err);
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

static int64_t count_or_unknown(const struct sb_json *usage, const char *name)
{
    const struct sb_json *n = jget(usage, name);
    int64_t v;
    return n && sb_json_int64(n, &v) && v >= 0 ? v : -1;
}

/* The end of the JSON string whose opening quote is at p (the byte after
 * its closing quote), or NULL when it does not close before end. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The object that starts at p ('{'), up to its matching '}', or a NULL slice. */
static struct sb_slice object_at(const char *p, const char *end)
{
    int depth = 0;
    for (const char *s = p; s < end;) {
        if (*s == '"') {
            s = string_end(s, end);
            if (!s)
                break;
            continue;
        }
        depth += *s == '{' ? 1 : *s == '}' ? -1 : 0;
        if (depth == 0)
            return (struct sb_slice){p, (size_t)(s + 1 - p)};
        s++;
    }
    return SB_SLICE_NULL;
}

static const char *skip_blank(const char *v, const char *end)
{
    while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
        v++;
    return v;
}

/*
 * Where the value of the last member called key (quoted, "\"usage\"")
 * starts, searching from the end of a whole answer, or NULL. A quote inside
 * a string value is escaped, so an unescaped key followed by ':' is a key.
 */
static const char *member_before(struct sb_slice body, const char *key, const char **from)
{
    size_t n = strlen(key);
    const char *end = body.p + body.len;
    for (const char *p = *from - n; p >= body.p; p--) {
        if (*p != '"' || memcmp(p, key, n) != 0 || (p > body.p && p[-1] == '\\'))
            continue;
        const char *v = skip_blank(p + n, end);
        if (v < end && *v == ':') {
            *from = p; /* the next search looks before this one */
            return skip_blank(v + 1, end);
        }
    }
    return NULL;
}

static const char *last_member(struct sb_slice body, const char *key)
{
    const char *from = body.p + body.len;
    return member_before(body, key, &from);
}

/* Whether the text from a value's start p to end closes exactly one object
 * (the value's own brackets balance): the value is a member of the
 * top-level object, not of a nested one. */
static bool closes_top(const char *p, const char *end)
{
    int net = 0;
    while (p < end) {
        if (*p == '"') {
            p = string_end(p, end);
            if (!p)
                return false;
            continue;
        }
        net += (*p == '}' || *p == ']') - (*p == '{' || *p == '[');
        p++;
    }
    return net == 1;
}

/*
 * The "usage" object of a whole answer, found from the end: OpenAI-format
 * servers write it last or nearly (only short members such as
 * system_fingerprint follow), so a long answer (a 100 KB completion,
 * thousands of embedding floats) is not parsed whole just to count its
 * tokens. The last "usage" member whose object is followed by exactly one
 * closing brace (its suffix is short) is the top-level one: one of a nested
 * object is passed over. NULL when there is none.
 */
static const struct sb_json *tail_usage(const struct sb_call *c, struct sb_slice body)
{
    const char *end = body.p + body.len, *from = end, *v;
    /* A few candidates at most: an answer stuffed with nested "usage" keys
     * must not cost a scan of its tail per key (then: unknown usage). */
    for (int tries = 0; tries < 8 && (v = member_before(body, "\"usage\"", &from)) != NULL;
         tries++) {
        if (!closes_top(v, end))
            continue; /* another object's member: the top-level one is further back */
        struct sb_slice obj = v < end && *v == '{' ? object_at(v, end) : SB_SLICE_NULL;
        if (!obj.p)
            return NULL; /* the top-level usage is not an object: unknown */
        struct sb_json *u = NULL;
        struct sb_error jerr;
        if (sb_json_parse(c->arena, obj.p, obj.len, &upstream_json, &u, &jerr) == SB_OK)
            return u;
        return NULL;
    }
    return NULL;
}

/* The last choice's finish_reason (the only one with n = 1), found the same way. */
static struct sb_slice tail_finish_reason(struct sb_slice body)
{
    const char *v = last_member(body, "\"finish_reason\"");
    const char *end = body.p + body.len, *q = v && v < end && *v == '"' ? string_end(v, end) : NULL;
    return q ? (struct sb_slice){v + 1, (size_t)(q - v - 2)} : SB_SLICE_NULL;
}

/* e moved back over trailing blanks, never before p. */
static const char *trim_blank_end(const char *p, const char *e)
{
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    return e;
}

/* Whether body looks like one JSON object: '{' first and '}' last, blanks aside. */
static bool object_shaped(struct sb_slice body)
{
    const char *p = skip_blank(body.p, body.p + body.len);
    const char *e = trim_blank_end(p, body.p + body.len);
    return e - p >= 2 && *p == '{' && e[-1] == '}';
}

/* Whether the last byte of s, blanks aside, is '}'. */
static bool ends_object(struct sb_slice s)
{
    const char *e = trim_blank_end(s.p, s.p + s.len);
    return e > s.p && e[-1] == '}';
}

/* The counts of an answer from its end: body is the whole answer or its tail. */
static void tail_counts(const struct sb_call *c, struct sb_slice body, struct sb_result *out)
{
    const struct sb_json *usage = tail_usage(c, body);
    out->usage.prompt_tokens = count_or_unknown(usage, "prompt_tokens");
    out->usage.completion_tokens =
        c->op == SB_OP_EMBEDDINGS ? 0 : count_or_unknown(usage, "completion_tokens");
    out->finish_reason = tail_finish_reason(body);
}

static sb_err openai_parse_response(const struct sb_call *c, struct sb_slice body,
                                    struct sb_result *out, struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!object_shaped(body))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response is not a JSON object", pname(c));
    out->body = body; /* passed through untouched, upstream "model" included */
    tail_counts(c, body, out);
    return SB_OK;
}

static sb_err openai_parse_tail(const struct sb_call *c, struct sb_slice tail,
                                struct sb_result *out, struct sb_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!ends_object(tail))
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: response does not end a JSON object",
                       pname(c));
    tail_counts(c, tail, out);
    return SB_OK;
}

/* ==================================================================
 * Streams
 * ================================================================== */

struct stream {
    const struct sb_call *c;
    struct sb_sse sse;        /* framing */
    struct sb_arena *scratch; /* a chunk's usage or error tree and decoded strings; reset
                                 after each event; NULL until a chunk needs it (most
                                 never do: 10,000 held streams do not hold 10,000) */
    sb_event_fn fn;           /* of the current feed */
    void *ud;
    struct sb_error *err;
    bool done;     /* upstream sent data: [DONE] */
    bool finished; /* some chunk carried a finish_reason */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    sb_sse_free(&st->sse);
    sb_arena_free(st->scratch);
}

static void *openai_stream_open(const struct sb_call *c)
{
    struct stream *st = sb_arena_calloc(c->arena, sizeof(*st));
    st->c = c;
    sb_sse_init(&st->sse, STREAM_MAX_LINE, STREAM_MAX_EVENT);
    sb_arena_on_free(c->arena, stream_free, st);
    return st;
}

/* The human message of an OpenAI-style error value (object, or a bare string). */
static struct sb_slice error_message(const struct sb_json *e)
{
    const struct sb_json *m = jget(e, "message");
    if (jstr(m))
        return m->str;
    if (jstr(e))
        return e->str;
    return SB_SLICE_NULL;
}

/* What a relayed chunk needs, found without a tree (sb_json_find). */
enum { F_ERROR, F_USAGE, F_CHOICES, F_CONTENT, F_FINISH, F_COUNT };
static const char *const p_error[] = {"error", NULL};
static const char *const p_usage[] = {"usage", NULL};
static const char *const p_choices[] = {"choices", NULL};
static const char *const p_content[] = {"choices", "0", "delta", "content", NULL};
static const char *const p_finish[] = {"choices", "0", "finish_reason", NULL};
static const char *const *const chunk_paths[F_COUNT] = {p_error, p_usage, p_choices, p_content,
                                                        p_finish};

static bool is_null(struct sb_slice raw)
{
    return raw.len == 4 && memcmp(raw.p, "null", 4) == 0;
}

/* Whether raw is an array with no elements ("[]", blanks inside allowed). */
static bool empty_array(struct sb_slice raw)
{
    return raw.len >= 2 && raw.p[0] == '[' && skip_blank(raw.p + 1, raw.p + raw.len) ==
                                                   raw.p + raw.len - 1;
}

static struct sb_arena *scratch(struct stream *st)
{
    if (!st->scratch)
        st->scratch = sb_arena_create(SCRATCH_BLOCK);
    return st->scratch;
}

static int emit_error(struct stream *st, struct sb_slice e, struct sb_slice data)
{
    struct sb_event ev;
    char msg[MAX_EXCERPT + 1];
    struct sb_json *j = NULL;
    struct sb_error jerr;
    struct sb_slice m = SB_SLICE_NULL;
    if (e.len && sb_json_parse(scratch(st), e.p, e.len, &upstream_json, &j, &jerr) == SB_OK)
        m = error_message(j);
    sb_oai_excerpt(st->c, msg, sizeof(msg), m.len ? m : data);
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_ERROR;
    sb_fail(&ev.error, SB_E_UPSTREAM, "upstream %s: %s", pname(st->c), msg);
    return st->fn(st->ud, &ev);
}

/* The counts of a chunk's "usage" object (its source span). */
static void chunk_usage(struct stream *st, struct sb_slice raw, struct sb_event *ev)
{
    struct sb_json *u = NULL;
    struct sb_error jerr;
    ev->has_usage = raw.len && raw.p[0] == '{';
    ev->usage.prompt_tokens = ev->usage.completion_tokens = -1;
    if (ev->has_usage &&
        sb_json_parse(scratch(st), raw.p, raw.len, &upstream_json, &u, &jerr) == SB_OK) {
        ev->usage.prompt_tokens = count_or_unknown(u, "prompt_tokens");
        ev->usage.completion_tokens = count_or_unknown(u, "completion_tokens");
    }
}

/* A found string's value; only one with escapes needs the scratch arena. */
static struct sb_slice unquote(struct stream *st, struct sb_slice raw)
{
    bool esc = raw.len > 2 && memchr(raw.p + 1, '\\', raw.len - 2);
    return sb_json_unquote(esc ? scratch(st) : NULL, raw);
}

static int emit_chunk(struct stream *st, const struct sb_slice *f, struct sb_slice data)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_CHUNK;
    ev.chunk = data;
    chunk_usage(st, f[F_USAGE], &ev);
    ev.usage_only = ev.has_usage && (!f[F_CHOICES].p || empty_array(f[F_CHOICES]));
    ev.text = unquote(st, f[F_CONTENT]);
    ev.finish_reason = unquote(st, f[F_FINISH]);
    if (ev.finish_reason.len)
        st->finished = true;
    return st->fn(st->ud, &ev);
}

static int emit_done(struct stream *st)
{
    struct sb_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = SB_EV_DONE;
    st->done = true;
    return st->fn(st->ud, &ev);
}

/*
 * One SSE event = one chunk, an error, or the [DONE] marker. A chunk is
 * checked whole (strict JSON, as everywhere) but read without a tree: the
 * relay needs five of its values, and a fast upstream sends dozens of
 * chunks per read, each parsed before the first byte of the read can leave.
 */
static int on_sse(void *ud, const struct sb_sse_event *sev)
{
    struct stream *st = ud;
    struct sb_slice f[F_COUNT];
    struct sb_error jerr;
    int rc;
    if (st->done)
        return SB_OK; /* nothing counts after [DONE] */
    if (sb_slice_eq_cstr(sev->data, "[DONE]"))
        return emit_done(st);
    if (sb_json_find(sev->data.p, sev->data.len, &upstream_json, chunk_paths, F_COUNT, f, &jerr) !=
            SB_OK ||
        *skip_blank(sev->data.p, sev->data.p + sev->data.len) != '{') /* valid: not empty */
        return sb_fail(st->err, SB_E_UPSTREAM, "upstream %s: stream chunk is not a JSON object",
                       pname(st->c));
    if ((f[F_ERROR].p && !is_null(f[F_ERROR])) || sb_slice_eq_cstr(sev->event, "error"))
        rc = emit_error(st, f[F_ERROR], sev->data);
    else
        rc = emit_chunk(st, f, sev->data);
    if (st->scratch)
        sb_arena_reset(st->scratch);
    return rc;
}

static sb_err openai_stream_feed(void *vst, const char *p, size_t n, sb_event_fn fn, void *ud,
                                 struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    sb_err rc = sb_sse_feed(&st->sse, p, n, on_sse, st, err);
    if (rc == SB_E_TOO_LARGE)
        rc = sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream event exceeds %u bytes", pname(st->c),
                     STREAM_MAX_EVENT);
    return rc;
}

static sb_err openai_stream_finish(void *vst, sb_event_fn fn, void *ud, struct sb_error *err)
{
    struct stream *st = vst;
    st->fn = fn;
    st->ud = ud;
    st->err = err;
    if (st->done)
        return SB_OK;
    if (sb_sse_finish(&st->sse, err) != SB_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: stream ended inside an event",
                       pname(st->c));
    if (!st->finished)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s: upstream stream ended early",
                       pname(st->c));
    /* Finished but no [DONE] (some compatible servers omit it): close it for the client. */
    return emit_done(st);
}

/* ==================================================================
 * Errors
 * ================================================================== */

static const struct {
    int status;
    sb_err code;
} status_codes[] = {
    {400, SB_E_BAD_REQUEST}, {401, SB_E_UNAUTHORIZED},  {403, SB_E_FORBIDDEN},
    {404, SB_E_NOT_FOUND},   {405, SB_E_METHOD},        {408, SB_E_TIMEOUT},
    {413, SB_E_TOO_LARGE},   {422, SB_E_UNPROCESSABLE}, {429, SB_E_RATE_LIMITED},
};

static sb_err code_for_status(int status)
{
    for (size_t i = 0; i < sizeof(status_codes) / sizeof(status_codes[0]); i++)
        if (status_codes[i].status == status)
            return status_codes[i].code;
    return (status >= 400 && status < 500) ? SB_E_BAD_REQUEST : SB_E_UPSTREAM;
}

/* The upstream's own words: error.message, a bare error string, or message/detail. */
static struct sb_slice upstream_message(const struct sb_call *c, struct sb_slice body)
{
    struct sb_json_limits lim = {.max_depth = MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) != SB_OK)
        return body;
    const struct sb_json *detail = jget(root, "detail");
    struct sb_slice m = error_message(jget(root, "error"));
    if (!m.len)
        m = error_message(root);
    if (!m.len && jstr(detail))
        m = detail->str;
    return m.len ? m : body;
}

/* Upstream codes renamed to the OpenAI code of the same meaning (Azure's own names). */
static const struct {
    const char *upstream, *openai;
} code_names[] = {
    {"DeploymentNotFound", "model_not_found"},
    {"ResponsibleAIPolicyViolation", "content_filter"},
};

/* A code worth keeping: a short identifier, not a bare number such as Azure's "401". */
static bool code_word(struct sb_slice s)
{
    bool alpha = false;
    if (!s.len || s.len >= sizeof(((struct sb_error *)0)->api_code))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        bool a = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (!a && !(ch >= '0' && ch <= '9') && ch != '-' && ch != '.')
            return false;
        alpha = alpha || a;
    }
    return alpha;
}

/* A param names a request member ("messages[0].content"): printable, no quotes. */
static bool param_word(struct sb_slice s, size_t cap)
{
    if (!s.len || s.len >= cap)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] < 0x21 || s.p[i] > 0x7e || s.p[i] == '"' || s.p[i] == '\\')
            return false;
    return true;
}

/* An upstream that echoes our key in error.code, type or param must not reach the client. */
static bool holds_key(const struct sb_call *c, struct sb_slice s)
{
    if (!c->provider || !c->provider->api_key)
        return false;
    struct sb_slice key = sb_secret_reveal(c->provider->api_key);
    return key.len >= 4 && memmem(s.p, s.len, key.p, key.len) != NULL;
}

void sb__openai_keep_code(const struct sb_call *c, int status, struct sb_slice body,
                          struct sb_error *err)
{
    struct sb_json_limits lim = {.max_depth = MAX_DEPTH, .max_bytes = 1024 * 1024};
    struct sb_json *root = NULL;
    struct sb_error jerr;
    const struct sb_json *code = NULL, *type = NULL, *param = NULL;
    if (sb_json_parse(c->arena, body.p, body.len, &lim, &root, &jerr) == SB_OK) {
        code = jget(jget(root, "error"), "code");
        type = jget(jget(root, "error"), "type");
        param = jget(jget(root, "error"), "param");
    }
    /* The upstream's type and param pass through when they are plain words. */
    if (jstr(type) && code_word(type->str) && type->str.len < sizeof(err->api_type) &&
        !holds_key(c, type->str))
        snprintf(err->api_type, sizeof(err->api_type), "%.*s", SB_FMT(type->str));
    if (jstr(param) && param_word(param->str, sizeof(err->api_param)) && !holds_key(c, param->str))
        snprintf(err->api_param, sizeof(err->api_param), "%.*s", SB_FMT(param->str));
    const char *word = status == 401 ? "invalid_api_key" : status == 404 ? "model_not_found" : "";
    if (jstr(code) && code_word(code->str) && !holds_key(c, code->str)) {
        snprintf(err->api_code, sizeof(err->api_code), "%.*s", SB_FMT(code->str));
        word = err->api_code;
    }
    for (size_t i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++)
        if (strcmp(word, code_names[i].upstream) == 0)
            word = code_names[i].openai;
    if (word != err->api_code)
        snprintf(err->api_code, sizeof(err->api_code), "%s", word);
}

static void openai_map_error(const struct sb_call *c, int status, struct sb_slice body,
                             struct sb_error *err)
{
    char msg[MAX_EXCERPT + 1];
    struct sb_slice m = upstream_message(c, body);
    sb_oai_excerpt(c, msg, sizeof(msg), m);
    if (!msg[0])
        sb_fail(err, code_for_status(status), "upstream %s: HTTP %d", pname(c), status);
    else
        sb_fail(err, code_for_status(status), "upstream %s: %s", pname(c), msg);
    err->http_status = (status >= 400 && status < 600) ? status : 502;
    sb__openai_keep_code(c, status, body, err);
}

/* ==================================================================
 * The table row
 * ================================================================== */

const struct sb_provider_ops sb_openai_ops = {
    .type = "openai",
    .stream_format = SB_STREAM_SSE,
    .chat_path = "/chat/completions",
    .models_path = "/models", /* GET {base_url}/models (Ollama's /v1 too) */
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .parse_tail = openai_parse_tail,
    .stream_open = openai_stream_open,
    .stream_feed = openai_stream_feed,
    .stream_finish = openai_stream_finish,
    .map_error = openai_map_error,
};
