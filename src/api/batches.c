/* SPDX-License-Identifier: MIT */
/*
 * batches.c - /api/batches: batch jobs (issue 7 part 10).
 *
 * POST /api/batches takes the requests as JSONL, either as the body itself
 * (content-type application/jsonl or application/x-ndjson, options in the
 * query string) or inside a JSON object ({"input": "<JSONL>"} or
 * {"requests": [...]}, options as members). Everything is judged here,
 * before the job exists: options are a 400 with the field at fault; a line
 * that cannot be sent becomes that line's result (batch/jsonl.h), so the
 * job still answers every line, in order. The job and all its lines are
 * stored in one transaction, then the runner (batch/runner.h) is woken; it
 * runs them off this thread, as the caller: the admin token's jobs as the
 * admin token, a console user's as that user, or as one of the caller's
 * virtual keys (key_id). A non-admin sees only their own jobs; another's
 * reads as 404.
 *
 * Chapters: the job as JSON · creating · reading and changing.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "batch/jsonl.h"
#include "batch/runner.h"
#include "core/alloc.h"
#include "registry/registry.h"
#include "store/batch.h"

#define MAX_METADATA_BYTES 16384
#define RESULTS_MAX_LINES 50000
#define RESULTS_MAX_BYTES (32u << 20) /* one answer; more pages follow (after=) */

static bool is_admin(const struct sb_api_call *c)
{
    return c->actor.role == SB_ROLE_ADMIN;
}

/* ======================================================================
 * The job as JSON
 * ==================================================================== */

static void write_counts(struct sb_jw *j, const struct sb_store_batch *b)
{
    sb_jw_key(j, "request_counts");
    sb_jw_obj_begin(j);
    sb_jw_key(j, "total");
    sb_jw_int(j, b->total);
    sb_jw_key(j, "completed");
    sb_jw_int(j, b->completed);
    sb_jw_key(j, "failed");
    sb_jw_int(j, b->failed);
    sb_jw_key(j, "in_flight");
    sb_jw_int(j, b->in_flight);
    sb_jw_key(j, "pending");
    sb_jw_int(j, b->total - b->completed - b->failed);
    sb_jw_obj_end(j);
}

static void write_batch(struct sb_api_call *c, const struct sb_store_batch *b)
{
    struct sb_jw *j = &c->jw;
    sb_jw_obj_begin(j);
    sb_jw_key(j, "id");
    sb_jw_cstr(j, b->id);
    sb_jw_key(j, "object");
    sb_jw_cstr(j, "batch");
    sb_jw_key(j, "endpoint");
    sb_jw_cstr(j, b->endpoint);
    sb_jw_key(j, "model");
    sb_jw_cstr(j, b->model);
    sb_jw_key(j, "status");
    sb_jw_cstr(j, b->status);
    sb_jw_key(j, "concurrency");
    sb_jw_int(j, b->concurrency);
    sb_jw_key(j, "created_by");
    sb_jw_cstr(j, b->created_by);
    sb_jw_key(j, "run_as");
    sb_jw_cstr(j, b->run_as);
    sb_jw_key(j, "user");
    sb_jw_cstr(j, b->user_id);
    sb_jw_key(j, "key_id"); /* a string, as /api/keys names keys */
    if (b->key_id > 0)
        sb_jw_cstr(j, sb_arena_printf(c->arena, "%lld", (long long)b->key_id));
    else
        sb_jw_null(j);
    write_counts(j, b);
    sb__api_time(j, "created_at", b->created_at);
    sb__api_time(j, "started_at", b->started_at);
    sb__api_time(j, "finished_at", b->finished_at);
    sb__api_time(j, "cancelled_at", b->cancelled_at);
    sb_jw_key(j, "error");
    sb_jw_cstr(j, b->error);
    sb_jw_key(j, "metadata");
    if (b->metadata)
        sb_jw_raw(j, sb_slice_cstr(b->metadata));
    else
        sb_jw_null(j);
    sb_jw_key(j, "results_url");
    sb_jw_cstr(j, sb_arena_printf(c->arena, "/api/batches/%s/results", b->id));
    sb_jw_obj_end(j);
}

/* Job {id} of path parameter 0; another user's job reads as 404 for non-admins. */
static sb_err load(struct sb_api_call *c, struct sb_store_batch *b)
{
    const char *id = sb__api_param(c, 0);
    if (strlen(id) > SB_STORE_BATCH_ID_MAX ||
        sb_store_batch_get(c->api->store, id, c->arena, b, &c->err) != SB_OK) {
        if (c->err.code != SB_OK && c->err.code != SB_E_NOT_FOUND)
            return c->err.code;
        return sb__api_fail(c, SB_E_NOT_FOUND, NULL, "no batch with id '%s'", id);
    }
    if (!is_admin(c) && strcmp(b->created_by, c->actor.name) != 0)
        return sb__api_fail(c, SB_E_NOT_FOUND, NULL, "no batch with id '%s'", id);
    return SB_OK;
}

static struct sb_slice doc(struct sb_api_call *c, const struct sb_store_batch *b)
{
    return sb_slice_cstr(sb_arena_printf(c->arena,
                                         "{\"id\":\"%s\",\"status\":\"%s\",\"total\":%lld}", b->id,
                                         b->status, (long long)b->total));
}

/* ======================================================================
 * Creating: options, owner, lines
 * ==================================================================== */

struct spec {
    const char *model;                /* NULL = each line's own */
    enum sb_batch_endpoint endpoint;  /* for plain bodies */
    int64_t concurrency;              /* 1..SB_BATCH_MAX_CONCURRENCY */
    int64_t key_id;                   /* 0 = none */
    const char *metadata;             /* JSON object text, or NULL */
    struct sb_slice input;            /* JSONL text, or */
    const struct sb_json *requests;   /* an array of requests */
};

static bool jsonl_body(const struct sb_api_call *c)
{
    static const char *const types[] = {"application/jsonl", "application/x-ndjson",
                                        "application/jsonlines", "application/x-jsonlines",
                                        "text/jsonl"};
    struct sb_slice t = c->body_type;
    const char *semi = t.len ? memchr(t.p, ';', t.len) : NULL;
    if (semi)
        t.len = (size_t)(semi - t.p);
    while (t.len && t.p[t.len - 1] == ' ')
        t.len--;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (sb_slice_caseeq(t, sb_slice_cstr(types[i])))
            return true;
    return false;
}

static sb_err set_endpoint(struct sb_api_call *c, struct sb_slice v, struct spec *s)
{
    if (!sb_batch_endpoint_parse(v, &s->endpoint))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "endpoint",
                            "endpoint must be /v1/chat/completions or /v1/embeddings");
    return SB_OK;
}

static sb_err set_model(struct sb_api_call *c, struct sb_slice v, struct spec *s)
{
    if (v.len == 0 || v.len > 256 || memchr(v.p, 0, v.len))
        return sb__api_fail(c, SB_E_BAD_REQUEST, "model",
                            "model must be a model or route id (1 to 256 bytes)");
    s->model = sb_arena_strndup(c->arena, v.p, v.len);
    return SB_OK;
}

static sb_err set_int(struct sb_api_call *c, const char *name, struct sb_slice v, int64_t lo,
                      int64_t hi, int64_t *out)
{
    unsigned long long u = 0;
    if (!sb_slice_to_u64(v, &u) || (int64_t)u < lo || (int64_t)u > hi)
        return sb__api_fail(c, SB_E_BAD_REQUEST, name, "%s: expected an integer in [%lld, %lld]",
                            name, (long long)lo, (long long)hi);
    *out = (int64_t)u;
    return SB_OK;
}

/* Options from the query string (a JSONL body); unknown parameters are refused. */
static sb_err query_spec(struct sb_api_call *c, struct spec *s)
{
    static const char *const known[] = {"model", "endpoint", "concurrency", "key_id"};
    const char *v;
    struct sb_slice q = c->query, kv;
    while (q.len) {
        const char *amp = memchr(q.p, '&', q.len);
        kv = (struct sb_slice){q.p, amp ? (size_t)(amp - q.p) : q.len};
        q.p += kv.len + (amp ? 1 : 0);
        q.len -= kv.len + (amp ? 1 : 0);
        const char *eq = memchr(kv.p, '=', kv.len);
        struct sb_slice k = {kv.p, eq ? (size_t)(eq - kv.p) : kv.len};
        bool ok = k.len == 0;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
            ok = sb_slice_eq_cstr(k, known[i]);
        if (!ok)
            return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                                "unknown query parameter '%.*s' (model, endpoint, concurrency, "
                                "key_id)",
                                (int)(k.len > 64 ? 64 : k.len), k.p);
    }
    if ((v = sb__api_query(c, "model")) && set_model(c, sb_slice_cstr(v), s) != SB_OK)
        return c->err.code;
    if ((v = sb__api_query(c, "endpoint")) && set_endpoint(c, sb_slice_cstr(v), s) != SB_OK)
        return c->err.code;
    if ((v = sb__api_query(c, "concurrency")) &&
        set_int(c, "concurrency", sb_slice_cstr(v), 1, SB_BATCH_MAX_CONCURRENCY,
                &s->concurrency) != SB_OK)
        return c->err.code;
    if ((v = sb__api_query(c, "key_id")) &&
        set_int(c, "key_id", sb_slice_cstr(v), 1, INT64_MAX, &s->key_id) != SB_OK)
        return c->err.code;
    s->input = c->body;
    return SB_OK;
}

/* One member of a JSON options body. */
static sb_err member(struct sb_api_call *c, const struct sb_json *m, struct spec *s)
{
    struct sb_slice k = m->key;
    if (sb_slice_eq_cstr(k, "input") && sb_json_is_string(m))
        s->input = m->str;
    else if (sb_slice_eq_cstr(k, "requests") && m->type == SB_JSON_ARRAY)
        s->requests = m;
    else if (sb_slice_eq_cstr(k, "model") && sb_json_is_string(m))
        return set_model(c, m->str, s);
    else if (sb_slice_eq_cstr(k, "model") && m->type == SB_JSON_NULL)
        s->model = NULL;
    else if (sb_slice_eq_cstr(k, "endpoint") && sb_json_is_string(m))
        return set_endpoint(c, m->str, s);
    else if (sb_slice_eq_cstr(k, "concurrency") && m->type == SB_JSON_NUMBER)
        return set_int(c, "concurrency", m->raw, 1, SB_BATCH_MAX_CONCURRENCY, &s->concurrency);
    else if (sb_slice_eq_cstr(k, "key_id") && m->type == SB_JSON_NUMBER)
        return set_int(c, "key_id", m->raw, 1, INT64_MAX, &s->key_id);
    else if (sb_slice_eq_cstr(k, "key_id") && sb_json_is_string(m)) /* as GET /api/keys shows it */
        return set_int(c, "key_id", m->str, 1, INT64_MAX, &s->key_id);
    else if (sb_slice_eq_cstr(k, "metadata") && m->type == SB_JSON_OBJECT &&
             m->raw.len <= MAX_METADATA_BYTES)
        s->metadata = sb_arena_strndup(c->arena, m->raw.p, m->raw.len);
    else {
        const char *name = sb_arena_strndup(c->arena, k.p, k.len > 64 ? 64 : k.len);
        return sb__api_fail(c, SB_E_BAD_REQUEST, name,
                            "%s: unknown member or wrong type (input: JSONL string, requests: "
                            "array, model: string, endpoint: string, concurrency: integer, "
                            "key_id: a key's id, metadata: object of at most 16 KiB)",
                            name);
    }
    return SB_OK;
}

static sb_err read_spec(struct sb_api_call *c, struct spec *s)
{
    s->endpoint = SB_BATCH_CHAT;
    s->concurrency = SB_BATCH_DEFAULT_CONCURRENCY;
    if (jsonl_body(c))
        return query_spec(c, s);
    if (c->query.len)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                            "with a JSON body the options are its members, not query parameters "
                            "(send JSONL with content-type application/jsonl to use them)");
    struct sb_json_limits lim = {.max_depth = 80, .max_bytes = c->body.len};
    struct sb_json *j = NULL;
    if (sb_json_parse(c->arena, c->body.p, c->body.len, &lim, &j, &c->err) != SB_OK)
        return sb__api_fail(c, SB_E_BAD_JSON, NULL, "the body is not JSON (%s); send "
                                                    "{\"input\": \"<JSONL>\", ...} or JSONL "
                                                    "with content-type application/jsonl",
                            c->err.msg);
    if (j->type != SB_JSON_OBJECT)
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL, "the body must be a JSON object");
    for (const struct sb_json *m = j->child; m; m = m->next)
        if (member(c, m, s) != SB_OK)
            return c->err.code;
    if (!s->input.p == !s->requests)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "input",
                            "give the requests as \"input\" (JSONL text) or \"requests\" (an "
                            "array), one of the two");
    return SB_OK;
}

/* Whose requests the lines are; a key must be the caller's own (an admin's: any), and live. */
static sb_err read_owner(struct sb_api_call *c, const struct spec *s, struct sb_store_batch *b,
                         struct sb_store_api_key *k)
{
    b->created_by = c->actor.name;
    if (s->key_id) {
        if (sb_store_key_get(c->api->store, s->key_id, c->arena, k, &c->err) != SB_OK ||
            (!is_admin(c) && (!k->user_id || strcmp(k->user_id, c->actor.name) != 0)))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "key_id", "no key with id %lld",
                                (long long)s->key_id);
        if (k->revoked || (k->expires_at && k->expires_at <= sb__api_now_ms()))
            return sb__api_fail(c, SB_E_BAD_REQUEST, "key_id",
                                "key %lld is revoked or has expired", (long long)s->key_id);
        b->run_as = "key";
        b->key_id = s->key_id;
        b->user_id = k->user_id;
    } else if (c->actor.via_session) {
        b->run_as = "user";
        b->user_id = c->actor.name;
    } else {
        b->run_as = "admin";
    }
    return SB_OK;
}

/* The job's model must exist for the caller now, and be in the key's scope. */
static sb_err check_model(struct sb_api_call *c, const struct spec *s,
                          const struct sb_store_batch *b, const struct sb_store_api_key *k)
{
    if (!s->model)
        return SB_OK;
    struct sb_slice m = sb_slice_cstr(s->model);
    struct sb_registry *reg = sb_registry_acquire();
    const struct sb_model *model = reg ? sb_registry_find_model(reg, m) : NULL;
    bool known = reg && (sb_registry_find_route(reg, m) || sb_registry_find_experiment(reg, m) ||
                         (model && sb_registry_model_visible(model, b->user_id)));
    sb_err rc = SB_OK;
    if (!known) {
        c->nsuggest = reg ? sb_registry_suggest(reg, m, b->user_id, c->suggest, 3) : 0;
        for (size_t i = 0; i < c->nsuggest; i++) /* outlive the snapshot reference */
            c->suggest[i] = sb_arena_strndup(c->arena, c->suggest[i], strlen(c->suggest[i]));
        rc = sb__api_fail(c, SB_E_BAD_REQUEST, "model", "model '%s' is not a model or route",
                          s->model);
    }
    if (reg)
        sb_registry_release(reg);
    bool allowed = !k || k->nmodels == 0;
    for (size_t i = 0; !allowed && k && i < k->nmodels; i++)
        allowed = strcmp(k->models[i], s->model) == 0;
    if (rc == SB_OK && !allowed)
        rc = sb__api_fail(c, SB_E_BAD_REQUEST, "model", "key %lld may not use '%s'",
                          (long long)k->id, s->model);
    return rc;
}

struct lines {
    struct sb_store_batch_line *v;
    size_t n, cap;
};

static void refused_line(struct sb_api_call *c, const char *batch, struct sb_store_batch_line *l,
                         const char *code, const char *msg)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_batch_result_error(&b, sb_arena_printf(c->arena, "%s-%lld", batch, (long long)l->line),
                          l->custom_id, code, msg);
    l->result = sb_arena_strndup(c->arena, b.p, b.len);
    l->failed = true;
    l->body = NULL;
    sb_buf_free(&b);
}

static sb_err add_line(struct sb_api_call *c, struct lines *ls, const struct spec *s,
                       const char *batch, struct sb_slice text, size_t lineno)
{
    struct sb_batch_opts o = {.endpoint = s->endpoint, .model = s->model};
    struct sb_batch_line bl;
    if (ls->n == SB_BATCH_MAX_LINES)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "input", "a batch has at most %d requests",
                            SB_BATCH_MAX_LINES);
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 64;
        ls->v = sb_xrealloc(ls->v, ls->cap * sizeof(*ls->v));
    }
    sb_batch_parse_line(c->arena, text, lineno, &o, &bl);
    struct sb_store_batch_line *l = &ls->v[ls->n++];
    *l = (struct sb_store_batch_line){.line = (int64_t)ls->n,
                                      .custom_id = bl.custom_id,
                                      .endpoint = sb_batch_endpoint_path(bl.endpoint)};
    if (bl.error_code)
        refused_line(c, batch, l, bl.error_code, bl.error_msg);
    else
        l->body = sb_arena_strndup(c->arena, bl.body.p, bl.body.len);
    return SB_OK;
}

static sb_err read_lines(struct sb_api_call *c, const struct spec *s, const char *batch,
                         struct lines *ls)
{
    struct sb_slice rest = s->input, text;
    size_t lineno = 0;
    if (s->requests) {
        for (const struct sb_json *r = s->requests->child; r; r = r->next)
            if (add_line(c, ls, s, batch, r->raw, ++lineno) != SB_OK)
                return c->err.code;
    } else {
        while (sb_batch_next_line(&rest, &lineno, &text))
            if (add_line(c, ls, s, batch, text, lineno) != SB_OK)
                return c->err.code;
    }
    if (ls->n == 0)
        return sb__api_fail(c, SB_E_BAD_REQUEST, "input", "the batch has no requests");
    return SB_OK;
}

static int by_custom_id(const void *a, const void *b)
{
    const struct sb_store_batch_line *x = *(const struct sb_store_batch_line *const *)a;
    const struct sb_store_batch_line *y = *(const struct sb_store_batch_line *const *)b;
    int d = strcmp(x->custom_id, y->custom_id);
    return d ? d : (x->line > y->line) - (x->line < y->line);
}

/* A custom_id used twice: the later lines get an error (their answers could not be told apart). */
static void refuse_duplicates(struct sb_api_call *c, struct lines *ls, const char *batch)
{
    struct sb_store_batch_line **with = sb_xmalloc((ls->n + 1) * sizeof(*with));
    size_t n = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].custom_id)
            with[n++] = &ls->v[i];
    qsort(with, n, sizeof(*with), by_custom_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(with[i]->custom_id, with[i - 1]->custom_id) == 0 && !with[i]->result)
            refused_line(c, batch, with[i], "duplicate_custom_id",
                         sb_arena_printf(c->arena, "request %lld: custom_id is also request "
                                                   "%lld's",
                                         (long long)with[i]->line,
                                         (long long)with[i - 1]->line));
    free(with);
}

static sb_err new_id(struct sb_api_call *c, char out[SB_STORE_BATCH_ID_MAX + 1])
{
    unsigned char r[12];
    static const char digits[] = "0123456789abcdef";
    if (RAND_bytes(r, sizeof(r)) != 1)
        return sb__api_fail(c, SB_E_INTERNAL, NULL, "no randomness for a batch id");
    memcpy(out, "batch_", 6);
    for (size_t i = 0; i < sizeof(r); i++) {
        out[6 + 2 * i] = digits[r[i] >> 4];
        out[7 + 2 * i] = digits[r[i] & 15];
    }
    out[6 + 2 * sizeof(r)] = '\0';
    return SB_OK;
}

sb_err sb__api_batch_create(struct sb_api_call *c)
{
    struct spec s = {0};
    struct sb_store_batch b = {0};
    struct sb_store_api_key k;
    struct lines ls = {0};
    char id[SB_STORE_BATCH_ID_MAX + 1];
    sb_err rc = SB_OK;
    if (read_spec(c, &s) != SB_OK || read_owner(c, &s, &b, &k) != SB_OK ||
        check_model(c, &s, &b, s.key_id ? &k : NULL) != SB_OK || new_id(c, id) != SB_OK ||
        read_lines(c, &s, id, &ls) != SB_OK) {
        rc = c->err.code;
        goto out;
    }
    refuse_duplicates(c, &ls, id);
    b.id = id;
    b.endpoint = sb_batch_endpoint_path(s.endpoint);
    b.model = s.model;
    b.concurrency = s.concurrency;
    b.metadata = s.metadata;
    b.created_at = sb__api_now_ms();
    if (sb_store_batch_create(c->api->store, &b, ls.v, ls.n, &c->err) != SB_OK ||
        sb_store_batch_get(c->api->store, id, c->arena, &b, &c->err) != SB_OK) {
        rc = c->err.code;
        goto out;
    }
    sb_batch_runner_wake(c->api->batches);
    sb__api_audit(c, "batch.create", "batch", b.id, SB_SLICE_NULL, doc(c, &b), "ok");
    c->status = 201;
    write_batch(c, &b);
out:
    free(ls.v);
    return rc;
}

/* ======================================================================
 * Reading and changing
 * ==================================================================== */

sb_err sb__api_batches_list(struct sb_api_call *c)
{
    int64_t limit, offset, total = 0;
    struct sb_store_batch *bs = NULL;
    size_t n = 0;
    const char *who = is_admin(c) ? NULL : c->actor.name;
    if (sb__api_paging(c, &limit, &offset) != SB_OK ||
        sb_store_batch_list(c->api->store, who, limit, offset, c->arena, &bs, &n, &total,
                            &c->err) != SB_OK)
        return c->err.code;
    sb__api_list_begin(c);
    for (size_t i = 0; i < n; i++)
        write_batch(c, &bs[i]);
    sb__api_list_end(c, total, limit, offset);
    return SB_OK;
}

sb_err sb__api_batch_get(struct sb_api_call *c)
{
    struct sb_store_batch b;
    if (load(c, &b) != SB_OK)
        return c->err.code;
    write_batch(c, &b);
    return SB_OK;
}

static sb_err results_query(struct sb_api_call *c, int64_t *after, int64_t *limit)
{
    const char *v;
    *after = 0;
    *limit = RESULTS_MAX_LINES;
    if ((v = sb__api_query(c, "after")) &&
        set_int(c, "after", sb_slice_cstr(v), 0, INT64_MAX, after) != SB_OK)
        return c->err.code;
    if ((v = sb__api_query(c, "limit")) &&
        set_int(c, "limit", sb_slice_cstr(v), 1, RESULTS_MAX_LINES, limit) != SB_OK)
        return c->err.code;
    return SB_OK;
}

/* The stored output lines in order; a page ends at limit lines or RESULTS_MAX_BYTES, and
 * says where the next one starts (x-switchboard-next-after). */
sb_err sb__api_batch_results(struct sb_api_call *c)
{
    struct sb_store_batch b;
    struct sb_store_batch_line *ls = NULL;
    size_t n = 0, i = 0;
    int64_t after, limit;
    if (load(c, &b) != SB_OK || results_query(c, &after, &limit) != SB_OK ||
        sb_store_batch_results(c->api->store, b.id, after, limit, c->arena, &ls, &n, &c->err) !=
            SB_OK)
        return c->err.code;
    for (; i < n && c->out.len < RESULTS_MAX_BYTES; i++) {
        sb_buf_append_cstr(&c->out, ls[i].result);
        sb_buf_append_char(&c->out, '\n');
    }
    c->content_type = "application/jsonl";
    c->extra[c->nextra++] = (struct sb_http_header){SB_SLICE("x-switchboard-batch-status"),
                                                    sb_slice_cstr(b.status)};
    if (i < n || (int64_t)n == limit)
        c->extra[c->nextra++] = (struct sb_http_header){
            SB_SLICE("x-switchboard-next-after"),
            sb_slice_cstr(sb_arena_printf(c->arena, "%lld", (long long)ls[i - 1].line))};
    return SB_OK;
}

sb_err sb__api_batch_cancel(struct sb_api_call *c)
{
    struct sb_store_batch b;
    if (load(c, &b) != SB_OK ||
        sb_store_batch_cancel(c->api->store, b.id, sb__api_now_ms(), &c->err) != SB_OK ||
        sb_store_batch_get(c->api->store, b.id, c->arena, &b, &c->err) != SB_OK)
        return c->err.code;
    sb_batch_runner_wake(c->api->batches);
    sb__api_audit(c, "batch.cancel", "batch", b.id, SB_SLICE_NULL, doc(c, &b), "ok");
    write_batch(c, &b);
    return SB_OK;
}

sb_err sb__api_batch_delete(struct sb_api_call *c)
{
    struct sb_store_batch b;
    if (load(c, &b) != SB_OK || sb_store_batch_delete(c->api->store, b.id, &c->err) != SB_OK)
        return c->err.code;
    sb__api_audit(c, "batch.delete", "batch", b.id, doc(c, &b), SB_SLICE_NULL, "ok");
    c->status = 204;
    return SB_OK;
}
