/* SPDX-License-Identifier: MIT */
/*
 * cache_acc.c - the accumulator (cache.h): rebuilds a chat.completion from
 * the chat.completion.chunk events of a stream, so a streamed answer can be
 * stored and later served to both kinds of request.
 *
 * Fed the SSE bytes the client receives (any split; the SSE parser joins
 * them). Text and arguments are concatenated; the envelope (every top-level
 * member but object, choices and usage) is the first chunk's; delta members
 * it does not know (thinking_blocks, annotations, ...) are kept, arrays
 * concatenated and anything else the last value; usage is the last non-null
 * one. Everything it holds counts against max_bytes, and it gives up
 * (quietly: the client's stream is not its business) on anything it could
 * not rebuild exactly: a second choice, an error event, more than 16 tool
 * calls or 8 unknown members, and at finish a stream without a
 * finish_reason or [DONE].
 *
 * Chapters: state · accumulating · rebuilding.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "provider/sse.h"
#include "router/cache.h"

#define MAX_TOOLS 16
#define MAX_OTHERS 8

/* ---- state ---- */

struct tool {
    struct sb_buf id, type, name, args;
    struct sb_buf first; /* raw text of the call's first delta: its other members */
};

struct other {
    struct sb_buf key;
    struct sb_buf val; /* raw; for arrays the elements joined by commas */
    bool array;
};

struct sb_cache_acc {
    struct sb_sse sse;
    struct sb_arena *scratch; /* one chunk's tree at a time */
    size_t max, used;
    const char *why;        /* set once it gave up */
    bool done;              /* [DONE] seen */
    struct sb_buf envelope; /* raw text of the first chunk */
    struct sb_buf role, content, reasoning, refusal, finish, usage;
    bool has_content, has_reasoning, has_refusal;
    struct tool tools[MAX_TOOLS];
    size_t ntools;
    struct other others[MAX_OTHERS];
    size_t nothers;
};

struct sb_cache_acc *sb_cache_acc_create(size_t max_bytes)
{
    struct sb_cache_acc *acc = sb_xcalloc(1, sizeof(*acc));
    acc->max = max_bytes;
    acc->scratch = sb_arena_create(8192);
    sb_sse_init(&acc->sse, max_bytes < 64 ? 64 : max_bytes, max_bytes < 64 ? 64 : max_bytes);
    return acc;
}

static void free_bufs(struct sb_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_buf_free(&b[i]);
}

void sb_cache_acc_free(struct sb_cache_acc *acc)
{
    if (!acc)
        return;
    sb_sse_free(&acc->sse);
    sb_arena_free(acc->scratch);
    struct sb_buf *own[] = {&acc->envelope, &acc->role,   &acc->content, &acc->reasoning,
                            &acc->refusal,  &acc->finish, &acc->usage};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        sb_buf_free(own[i]);
    for (size_t i = 0; i < acc->ntools; i++) {
        struct tool *t = &acc->tools[i];
        struct sb_buf b[] = {t->id, t->type, t->name, t->args, t->first};
        free_bufs(b, 5);
    }
    for (size_t i = 0; i < acc->nothers; i++) {
        sb_buf_free(&acc->others[i].key);
        sb_buf_free(&acc->others[i].val);
    }
    free(acc);
}

/* ---- accumulating ---- */

/* b's bytes; "" (not a NULL pointer) for a buffer never written. */
static struct sb_slice text(const struct sb_buf *b)
{
    return b->p ? sb_buf_slice(b) : SB_SLICE("");
}

static void give_up(struct sb_cache_acc *acc, const char *why)
{
    if (!acc->why)
        acc->why = why;
}

/* Appends s to b within the accumulator's bound. */
static void put(struct sb_cache_acc *acc, struct sb_buf *b, struct sb_slice s)
{
    if (acc->why)
        return;
    if (s.len > acc->max - acc->used) {
        give_up(acc, "the answer is larger than the cache's largest entry");
        return;
    }
    acc->used += s.len;
    sb_buf_append_slice(b, s);
}

/* Replaces b's bytes with s (the "last value wins" members). */
static void set(struct sb_cache_acc *acc, struct sb_buf *b, struct sb_slice s)
{
    acc->used -= b->len;
    sb_buf_reset(b);
    put(acc, b, s);
}

static void add_text(struct sb_cache_acc *acc, struct sb_buf *b, bool *has, const struct sb_json *j)
{
    if (!sb_json_is_string(j))
        return;
    *has = true;
    put(acc, b, j->str);
}

static void add_tool(struct sb_cache_acc *acc, const struct sb_json *call)
{
    const struct sb_json *ix = sb_json_get(call, "index"), *fn = sb_json_get(call, "function");
    int64_t k = -1;
    if (!ix || !sb_json_int64(ix, &k) || k < 0 || k >= MAX_TOOLS || (size_t)k > acc->ntools) {
        give_up(acc, "a tool call index out of order or beyond 16");
        return;
    }
    struct tool *t = &acc->tools[k];
    if ((size_t)k == acc->ntools) {
        acc->ntools++;
        put(acc, &t->first, call->raw);
    }
    const struct sb_json *id = sb_json_get(call, "id"), *type = sb_json_get(call, "type");
    const struct sb_json *name = fn ? sb_json_get(fn, "name") : NULL;
    const struct sb_json *args = fn ? sb_json_get(fn, "arguments") : NULL;
    if (sb_json_is_string(id)) /* id and name come whole, once (some servers repeat them) */
        set(acc, &t->id, id->str);
    if (sb_json_is_string(type))
        set(acc, &t->type, type->str);
    if (sb_json_is_string(name))
        set(acc, &t->name, name->str);
    if (sb_json_is_string(args))
        put(acc, &t->args, args->str);
}

static struct other *other_slot(struct sb_cache_acc *acc, struct sb_slice key)
{
    for (size_t i = 0; i < acc->nothers; i++)
        if (sb_slice_eq(text(&acc->others[i].key), key))
            return &acc->others[i];
    if (acc->nothers == MAX_OTHERS) {
        give_up(acc, "more than 8 unknown delta members");
        return NULL;
    }
    struct other *o = &acc->others[acc->nothers++];
    put(acc, &o->key, key);
    return o;
}

static void add_other(struct sb_cache_acc *acc, const struct sb_json *m)
{
    struct other *o = m->type == SB_JSON_NULL ? NULL : other_slot(acc, m->key);
    if (!o)
        return;
    if (m->type != SB_JSON_ARRAY) {
        o->array = false;
        set(acc, &o->val, m->raw);
        return;
    }
    o->array = true;
    for (const struct sb_json *e = m->child; e; e = e->next) {
        if (o->val.len)
            put(acc, &o->val, SB_SLICE(","));
        put(acc, &o->val, e->raw);
    }
}

static void add_delta(struct sb_cache_acc *acc, const struct sb_json *delta)
{
    for (const struct sb_json *m = delta->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "role") && sb_json_is_string(m))
            set(acc, &acc->role, m->str);
        else if (sb_slice_eq_cstr(m->key, "content"))
            add_text(acc, &acc->content, &acc->has_content, m);
        else if (sb_slice_eq_cstr(m->key, "reasoning_content"))
            add_text(acc, &acc->reasoning, &acc->has_reasoning, m);
        else if (sb_slice_eq_cstr(m->key, "refusal"))
            add_text(acc, &acc->refusal, &acc->has_refusal, m);
        else if (sb_slice_eq_cstr(m->key, "tool_calls") && m->type == SB_JSON_ARRAY)
            for (const struct sb_json *c = m->child; c; c = c->next)
                add_tool(acc, c);
        else
            add_other(acc, m);
    }
}

static void add_choice(struct sb_cache_acc *acc, const struct sb_json *c)
{
    const struct sb_json *ix = sb_json_get(c, "index"), *delta = sb_json_get(c, "delta");
    const struct sb_json *finish = sb_json_get(c, "finish_reason");
    int64_t i = 0;
    if (ix && (!sb_json_int64(ix, &i) || i != 0)) {
        give_up(acc, "more than one choice");
        return;
    }
    if (delta && delta->type == SB_JSON_OBJECT)
        add_delta(acc, delta);
    if (sb_json_is_string(finish))
        set(acc, &acc->finish, finish->str);
}

static void add_chunk(struct sb_cache_acc *acc, struct sb_slice data)
{
    static const struct sb_json_limits lim = {.max_depth = 64};
    struct sb_json *root = NULL;
    if (sb_slice_eq_cstr(data, "[DONE]")) {
        acc->done = true;
        return;
    }
    sb_arena_reset(acc->scratch);
    if (sb_json_parse(acc->scratch, data.p, data.len, &lim, &root, NULL) != SB_OK ||
        root->type != SB_JSON_OBJECT || sb_json_get(root, "error")) {
        give_up(acc, "an error event or a chunk that is not a JSON object");
        return;
    }
    const struct sb_json *choices = sb_json_get(root, "choices"), *u = sb_json_get(root, "usage");
    if (!acc->envelope.len)
        put(acc, &acc->envelope, data);
    if (u && u->type == SB_JSON_OBJECT)
        set(acc, &acc->usage, u->raw);
    for (const struct sb_json *c = choices && choices->type == SB_JSON_ARRAY ? choices->child
                                                                             : NULL;
         c; c = c->next)
        add_choice(acc, c);
}

static int on_event(void *ud, const struct sb_sse_event *ev)
{
    struct sb_cache_acc *acc = ud;
    if (!sb_slice_eq_cstr(ev->event, "message"))
        give_up(acc, "a named event (an error?) in the stream");
    else if (acc->done)
        give_up(acc, "data after [DONE]");
    else
        add_chunk(acc, ev->data);
    return 0;
}

void sb_cache_acc_event(struct sb_cache_acc *acc, struct sb_slice data)
{
    if (!acc || acc->why)
        return;
    if (data.len > acc->max)
        give_up(acc, "an event beyond the bound");
    else if (acc->done)
        give_up(acc, "data after [DONE]");
    else
        add_chunk(acc, data);
}

void sb_cache_acc_feed(struct sb_cache_acc *acc, const char *p, size_t n)
{
    if (!acc || acc->why || n == 0)
        return;
    if (sb_sse_feed(&acc->sse, p, n, on_event, acc, NULL) != SB_OK)
        give_up(acc, "an SSE line or event beyond the bound");
}

/* ---- rebuilding ---- */

static void write_envelope(struct sb_cache_acc *acc, struct sb_jw *w, struct sb_arena *a)
{
    static const struct sb_json_limits lim = {.max_depth = 64};
    struct sb_json *root = NULL;
    struct sb_slice env = sb_buf_slice(&acc->envelope);
    if (sb_json_parse(a, env.p, env.len, &lim, &root, NULL) != SB_OK)
        return; /* parsed once already: cannot happen */
    for (const struct sb_json *m = root->child; m; m = m->next) {
        if (sb_slice_eq_cstr(m->key, "object") || sb_slice_eq_cstr(m->key, "choices") ||
            sb_slice_eq_cstr(m->key, "usage"))
            continue;
        sb_jw_key_slice(w, m->key);
        sb_jw_raw(w, m->raw);
    }
}

static void write_text(struct sb_jw *w, const char *key, bool has, const struct sb_buf *b)
{
    if (!has)
        return;
    sb_jw_key(w, key);
    sb_jw_str(w, text(b));
}

/* The call's members: id, type, function {name, arguments}, then the others of its first delta. */
static void write_tool(struct sb_jw *w, struct sb_arena *a, const struct tool *t)
{
    static const struct sb_json_limits lim = {.max_depth = 64};
    struct sb_json *first = NULL;
    sb_jw_obj_begin(w);
    sb_jw_key(w, "id");
    sb_jw_str(w, text(&t->id));
    sb_jw_key(w, "type");
    sb_jw_str(w, t->type.len ? sb_buf_slice(&t->type) : SB_SLICE("function"));
    sb_jw_key(w, "function");
    sb_jw_obj_begin(w);
    sb_jw_key(w, "name");
    sb_jw_str(w, text(&t->name));
    sb_jw_key(w, "arguments");
    sb_jw_str(w, text(&t->args));
    sb_jw_obj_end(w);
    if (sb_json_parse(a, t->first.p, t->first.len, &lim, &first, NULL) == SB_OK)
        for (const struct sb_json *m = first->child; m; m = m->next) {
            static const char *const skip[] = {"index", "id", "type", "function"};
            size_t i = 0;
            while (i < 4 && !sb_slice_eq_cstr(m->key, skip[i]))
                i++;
            if (i == 4 && m->type != SB_JSON_NULL) {
                sb_jw_key_slice(w, m->key);
                sb_jw_raw(w, m->raw);
            }
        }
    sb_jw_obj_end(w);
}

static void write_message(struct sb_cache_acc *acc, struct sb_jw *w, struct sb_arena *a)
{
    sb_jw_obj_begin(w);
    sb_jw_key(w, "role");
    sb_jw_str(w, acc->role.len ? sb_buf_slice(&acc->role) : SB_SLICE("assistant"));
    sb_jw_key(w, "content");
    if (acc->has_content)
        sb_jw_str(w, text(&acc->content));
    else
        sb_jw_null(w);
    write_text(w, "reasoning_content", acc->has_reasoning, &acc->reasoning);
    write_text(w, "refusal", acc->has_refusal, &acc->refusal);
    if (acc->ntools) {
        sb_jw_key(w, "tool_calls");
        sb_jw_arr_begin(w);
        for (size_t i = 0; i < acc->ntools; i++)
            write_tool(w, a, &acc->tools[i]);
        sb_jw_arr_end(w);
    }
    for (size_t i = 0; i < acc->nothers; i++) {
        const struct other *o = &acc->others[i];
        sb_jw_key_slice(w, text(&o->key));
        if (!o->array) {
            sb_jw_raw(w, sb_buf_slice(&o->val));
            continue;
        }
        sb_jw_arr_begin(w);
        if (o->val.len)
            sb_jw_raw(w, sb_buf_slice(&o->val)); /* elements with their commas */
        sb_jw_arr_end(w);
    }
    sb_jw_obj_end(w);
}

sb_err sb_cache_acc_finish(struct sb_cache_acc *acc, struct sb_buf *out, struct sb_error *err)
{
    if (!acc->why && !acc->finish.len)
        give_up(acc, "the stream has no finish_reason");
    if (!acc->why && !acc->done)
        give_up(acc, "the stream did not end with [DONE]");
    if (acc->why)
        return sb_fail(err, SB_E_UNPROCESSABLE, "not stored: %s", acc->why);
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_jw w;
    sb_jw_init(&w, out);
    sb_jw_obj_begin(&w);
    write_envelope(acc, &w, a);
    sb_jw_key(&w, "object");
    sb_jw_cstr(&w, "chat.completion");
    sb_jw_key(&w, "choices");
    sb_jw_arr_begin(&w);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "index");
    sb_jw_int(&w, 0);
    sb_jw_key(&w, "message");
    write_message(acc, &w, a);
    sb_jw_key(&w, "finish_reason");
    sb_jw_str(&w, text(&acc->finish));
    sb_jw_obj_end(&w);
    sb_jw_arr_end(&w);
    if (acc->usage.len) {
        sb_jw_key(&w, "usage");
        sb_jw_raw(&w, sb_buf_slice(&acc->usage));
    }
    sb_jw_obj_end(&w);
    sb_arena_free(a);
    if (w.err != SB_OK)
        return sb_fail(err, w.err, "not stored: the rebuilt answer does not fit");
    return SB_OK;
}
