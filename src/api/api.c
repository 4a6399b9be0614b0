/* SPDX-License-Identifier: MIT */
/*
 * api.c - the control plane's dispatcher: jobs off the worker loop, auth,
 * roles, the registry reload, and the version poller.
 *
 * A worker copies what a handler may read (method, path, query, body, the
 * auth headers) into a job with its own arena, because the client may go
 * away while the job runs and take the request's arena with it. The job
 * runs on libuv's thread pool; its after-callback runs on the worker's loop
 * and answers, unless the client left (the abort hook cleared job->req).
 *
 * Chapters: lifetime · reload and poller · auth · one job.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "batch/runner.h"
#include "core/alloc.h"
#include "core/log.h"
#include "registry/registry.h"
#include "registry/registry_build.h"
#include "crypto/keys.h"
#include "router/router.h"

#define MAX_API_BODY (1u << 20) /* an /api body is a config entry, not a prompt */

/* ======================================================================
 * Reload and poller
 * ==================================================================== */

sb_err sb__api_reload(struct sb_api *a, struct sb_error *err)
{
    struct sb_registry *reg = NULL;
    int64_t v = 0;
    /* The registry decrypts with one key: the keyring's active one. Outside a
     * rotation every row is under it; a rotation runs under a->lock and ends
     * (or is resumed at create) before the next reload. */
    if (sb_store_registry_version(a->store, &v, err) != SB_OK ||
        sb_registry_load(a->store, &(struct sb_registry_keys){.kr = a->keyring}, &reg, err) !=
            SB_OK)
        return err->code;
    sb_registry_publish(reg);
    a->version = v;
    a->loaded_at_ms = sb__api_now_ms();
    return SB_OK;
}

/* Pool keys the data plane saw refused (router.h): stored in dead_keys,
 * which bumps registry_version, so the reload below (and every other
 * process's) publishes them dead. Called under a->lock. */
static void store_dead_keys(struct sb_api *a)
{
    struct sb_router_dead_key d[16];
    size_t n = a->router ? sb_router_take_dead(a->router, d, 16) : 0;
    for (size_t i = 0; i < n; i++) {
        struct sb_error err = {0};
        struct sb_store_dead_key dk = {d[i].provider, d[i].label, d[i].fingerprint, d[i].reason,
                                       d[i].at};
        if (sb_store_dead_key_put(a->store, &dk, &err) == SB_OK)
            sb_warn("msg=\"pool key marked dead\" provider=%s key=%s reason=\"%s\"",
                    d[i].provider, d[i].label[0] ? d[i].label : "primary", d[i].reason);
        else
            sb_warn("msg=\"could not store a dead pool key\" provider=%s err=\"%s\"",
                    d[i].provider, err.msg);
    }
}

/* Another process (a second instance on the same database) changed the
 * registry: its version row moved. The seam for PostgreSQL LISTEN/NOTIFY. */
static void poll_once(struct sb_api *a)
{
    struct sb_error err = {0};
    int64_t v = 0;
    pthread_mutex_lock(&a->lock);
    store_dead_keys(a);
    bool ok = sb_store_registry_version(a->store, &v, &err) == SB_OK;
    atomic_store(&a->store_ok_ms, ok ? sb__api_now_ms() : 0);
    if (ok && v != a->version) {
        if (sb__api_reload(a, &err) == SB_OK)
            sb_info("msg=\"registry reloaded\" reason=version version=%lld", (long long)v);
        else
            sb_warn("msg=\"registry reload failed; the old snapshot keeps serving\" err=\"%s\"",
                    err.msg);
    }
    pthread_mutex_unlock(&a->lock);
}

static void *poller(void *ud)
{
    struct sb_api *a = ud;
    pthread_mutex_lock(&a->stop_lock);
    while (!a->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += a->poll_ms / 1000;
        until.tv_nsec += (long)(a->poll_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->stop_cond, &a->stop_lock, &until);
        if (a->stop)
            break;
        pthread_mutex_unlock(&a->stop_lock);
        poll_once(a);
        pthread_mutex_lock(&a->stop_lock);
    }
    pthread_mutex_unlock(&a->stop_lock);
    return NULL;
}

/* ======================================================================
 * Lifetime
 * ==================================================================== */

/* A rotation that a crash (or a failed rekey) left half done: finish it
 * before the first snapshot, which decrypts with the next key only. */
static sb_err resume_rotation(struct sb_api *a, struct sb_error *err)
{
    size_t n = 0;
    char kid[17];
    if (!sb_keys_keyring_pending(a->keyring))
        return SB_OK;
    sb_warn("msg=\"a master key rotation did not finish; finishing it now\"");
    if (sb_api_rotate(a->store, a->keyring, &n, kid, err) != SB_OK)
        return err->code;
    sb_info("msg=\"master key rotation finished\" rows=%zu key_id=%s", n, kid);
    return SB_OK;
}

sb_err sb_api_create(const struct sb_api_opts *o, struct sb_api **out, struct sb_error *err)
{
    struct sb_api *a = sb_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->stop_lock, NULL);
    pthread_cond_init(&a->stop_cond, NULL);
    a->keyring = o->keyring;
    a->login_limit = sb__api_limiter_create();
    a->writer = o->writer;
    a->sessions = o->sessions;
    a->poll_ms = o->poll_ms ? o->poll_ms : 1000;
    a->allow_private = o->allow_private_base_urls;
    a->batches = o->batches;
    a->router = o->router;
    sb__api_rate_init(&a->tests, 10, 60000, 2);
    if (o->admin) {
        a->admin = *o->admin;
        a->has_admin = true;
    }
    *out = NULL;
    a->store = o->store;
    if ((!a->store && sb_store_open(o->db_url, &a->store, err) != SB_OK) ||
        resume_rotation(a, err) != SB_OK ||
        sb__api_reload(a, err) != SB_OK || sb__api_sessions_load(a, err) != SB_OK) {
        sb_api_free(a);
        return err->code;
    }
    atomic_store(&a->store_ok_ms, sb__api_now_ms());
    if (pthread_create(&a->poller, NULL, poller, a) == 0)
        a->poller_started = true;
    *out = a;
    return SB_OK;
}

void sb_api_free(struct sb_api *a)
{
    if (!a)
        return;
    if (a->poller_started) {
        pthread_mutex_lock(&a->stop_lock);
        a->stop = true;
        pthread_cond_signal(&a->stop_cond);
        pthread_mutex_unlock(&a->stop_lock);
        pthread_join(a->poller, NULL);
    }
    sb_store_close(a->store);
    sb__api_limiter_free(a->login_limit);
    pthread_cond_destroy(&a->stop_cond);
    pthread_mutex_destroy(&a->stop_lock);
    pthread_mutex_destroy(&a->lock);
    sb__api_rate_destroy(&a->tests);
    free(a);
}

/* ======================================================================
 * Auth: who is calling, and may they
 * ==================================================================== */

static struct sb_slice bearer(struct sb_slice a)
{
    if (a.len > 7 && sb_slice_caseeq((struct sb_slice){a.p, 7}, SB_SLICE("Bearer "))) {
        a.p += 7;
        a.len -= 7;
        while (a.len && *a.p == ' ')
            a.p++, a.len--;
        return a;
    }
    return SB_SLICE_NULL;
}

/* Fills c->actor from the admin token or the session cookie; false = nobody. */
static bool authenticate(struct sb_api_call *c)
{
    struct sb_api *a = c->api;
    struct sb_slice t = bearer(c->auth);
    if (t.len && a->has_admin && sb_keys_check_admin(&a->admin, t)) {
        snprintf(c->actor.name, sizeof(c->actor.name), "admin-token");
        c->actor.role = SB_ROLE_ADMIN;
        return true;
    }
    return sb__api_session_auth(c);
}

/* The route for method + path, or NULL with the 404/405 error set. */
static const struct sb_api_route *find_route(struct sb_api_call *c)
{
    bool path_known = false;
    bool head = sb_slice_eq_cstr(c->method, "HEAD");
    for (size_t i = 0; i < sb__api_nroutes; i++) {
        const struct sb_api_route *r = &sb__api_routes[i];
        c->nparam = 0;
        if (!sb__api_match(r->pattern, c->path, c->param, &c->nparam))
            continue;
        path_known = true;
        if (sb_slice_eq_cstr(c->method, r->method) || (head && strcmp(r->method, "GET") == 0))
            return r;
    }
    c->nparam = 0;
    if (path_known)
        sb__api_fail(c, SB_E_METHOD, NULL, "method %.*s is not allowed on %.*s", SB_FMT(c->method),
                     SB_FMT(c->path));
    else
        sb__api_fail(c, SB_E_NOT_FOUND, NULL, "no such endpoint: %.*s", SB_FMT(c->path));
    return NULL;
}

static bool is_write(struct sb_slice method)
{
    return !sb_slice_eq_cstr(method, "GET") && !sb_slice_eq_cstr(method, "HEAD");
}

/* A refused request is audited (outcome denied): who tried what, and why. */
static void denied(struct sb_api_call *c, const struct sb_api_route *r, const char *why)
{
    char *after = sb_arena_printf(c->arena, "{\"reason\":\"%s\",\"path\":", why);
    struct sb_buf b;
    struct sb_jw j;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb_jw_str(&j, c->path);
    char *doc = sb_arena_printf(c->arena, "%s%.*s}", after, (int)b.len, b.p ? b.p : "");
    sb_buf_free(&b);
    sb__api_audit(c, sb_arena_printf(c->arena, "%s %s", r->method, r->pattern), "endpoint",
                  r->pattern, SB_SLICE_NULL, sb_slice_cstr(doc), "denied");
}

/* Authenticates, finds the route and checks the role and the CSRF token. */
static const struct sb_api_route *admit(struct sb_api_call *c)
{
    const struct sb_api_route *r = find_route(c);
    if (r && r->roles == SB_ROLE_PUBLIC)
        return r;
    /* Say nothing about what exists to a caller without a credential. */
    if (!authenticate(c)) {
        sb__api_fail(c, SB_E_UNAUTHORIZED, NULL,
                     "missing or invalid credential: send 'Authorization: Bearer <admin token>' "
                     "or log in (POST /api/auth/login)");
        return NULL;
    }
    if (!r)
        return NULL;
    if (!(r->roles & c->actor.role)) {
        sb__api_fail(c, SB_E_FORBIDDEN, NULL, "role '%s' may not %s %s",
                     sb__api_role_name(c->actor.role), r->method, r->pattern);
        denied(c, r, "role");
        return NULL;
    }
    if (c->actor.via_session && is_write(c->method) && !sb__api_csrf_ok(c)) {
        sb__api_fail(c, SB_E_FORBIDDEN, NULL,
                     "missing or wrong x-csrf-token (returned by POST /api/auth/login)");
        denied(c, r, "csrf");
        return NULL;
    }
    return r;
}

static sb_err parse_body(struct sb_api_call *c)
{
    struct sb_json_limits lim = {.max_depth = 32, .max_bytes = MAX_API_BODY};
    struct sb_json *j = NULL;
    if (c->body.len == 0)
        return SB_OK;
    if (sb_json_parse(c->arena, c->body.p, c->body.len, &lim, &j, &c->err) != SB_OK) {
        c->err.code = SB_E_BAD_JSON;
        return SB_E_BAD_JSON;
    }
    c->json = j;
    return SB_OK;
}

/* ======================================================================
 * One job: copied off the loop, run on the pool, answered on the loop
 * ==================================================================== */

struct job {
    uv_work_t work;
    struct sb_http_req *req; /* NULL once the client went away */
    struct sb_api_call call;
};

static struct sb_slice keep(struct sb_arena *a, struct sb_slice s)
{
    return s.len ? sb_arena_slice(a, s) : SB_SLICE_NULL;
}

static struct job *job_new(struct sb_api *a, struct sb_http_req *req)
{
    struct sb_arena *arena = sb_arena_create(8192);
    struct job *j = sb_arena_calloc(arena, sizeof(*j));
    struct sb_api_call *c = &j->call;
    j->req = req;
    j->work.data = j;
    c->api = a;
    c->arena = arena;
    c->method = keep(arena, req->method);
    c->path = keep(arena, req->path);
    c->query = keep(arena, req->query);
    c->body = keep(arena, req->body);
    c->auth = keep(arena, sb_http_header(req, "authorization"));
    c->cookie = keep(arena, sb_http_header(req, "cookie"));
    c->csrf = keep(arena, sb_http_header(req, "x-csrf-token"));
    c->body_type = keep(arena, sb_http_header(req, "content-type"));
    c->request_id = sb_arena_strndup(arena, req->id, strlen(req->id));
    char ip[64];
    sb_http_peer(req, ip);
    c->ip = sb_arena_strndup(arena, ip, strlen(ip));
    sb_buf_init(&c->out, 0);
    sb_jw_init(&c->jw, &c->out);
    return j;
}

static void job_free(struct job *j)
{
    /* The body may hold a secret (a credential, a password). */
    sb_secret_wipe((void *)j->call.body.p, j->call.body.len);
    /* So may the answer (a new virtual key, shown once). */
    if (j->call.out.p)
        sb_secret_wipe(j->call.out.p, j->call.out.len);
    sb_buf_free(&j->call.out);
    sb_arena_free(j->call.arena);
}

static void run(uv_work_t *w)
{
    struct job *j = w->data;
    struct sb_api_call *c = &j->call;
    struct sb_api *a = c->api;
    pthread_mutex_lock(&a->lock);
    const struct sb_api_route *r = admit(c);
    sb_err rc = !r ? c->err.code : (r->roles & SB_API_RAW_BODY) ? SB_OK : parse_body(c);
    if (rc == SB_OK && (r->roles & SB_API_UNLOCKED)) {
        /* It waits on the network: other /api calls and the poller go on meanwhile. */
        pthread_mutex_unlock(&a->lock);
        rc = r->fn(c);
        pthread_mutex_lock(&a->lock);
    } else if (rc == SB_OK) {
        rc = r->fn(c);
    }
    if (rc == SB_OK && c->changed) {
        struct sb_error err = {0};
        if (sb__api_reload(a, &err) != SB_OK)
            sb_warn("msg=\"registry reload failed; the old snapshot keeps serving\" err=\"%s\"",
                    err.msg);
        /* A user disabled or a key revoked: batch jobs check their owner now. */
        sb_batch_runner_wake(a->batches);
    }
    pthread_mutex_unlock(&a->lock);
    if (rc != SB_OK && c->err.code == SB_OK)
        c->err.code = rc;
}

static void respond(struct job *j)
{
    struct sb_api_call *c = &j->call;
    struct sb_http_req *req = j->req;
    struct sb_http_header h[1 + SB_API_MAX_EXTRA];
    size_t n = 0;
    int status = c->status ? c->status : 200;
    const char *type =
        c->content_type && c->err.code == SB_OK ? c->content_type : "application/json";
    h[n++] = (struct sb_http_header){SB_SLICE("content-type"), sb_slice_cstr(type)};
    for (size_t i = 0; i < c->nextra; i++)
        h[n++] = c->extra[i];
    if (c->err.code != SB_OK) {
        status = sb_err_status(&c->err);
        sb__api_error_json(c);
    }
    if (status == 204) /* no body, no content-type; set-cookie (logout) still goes */
        sb_http_respond(req, status, h + 1, n - 1, SB_SLICE_NULL);
    else
        sb_http_respond(req, status, h, n, sb_arena_slice(req->arena, sb_buf_slice(&c->out)));
}

static void done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    if (j->req) {
        sb_http_on_abort(j->req, NULL, NULL);
        respond(j);
    }
    job_free(j);
}

static void client_left(void *ud)
{
    ((struct job *)ud)->req = NULL;
}

void sb_api_handle(struct sb_api *a, struct sb_http_req *req, uv_loop_t *loop)
{
    struct job *j = job_new(a, req);
    sb_http_on_abort(req, client_left, j);
    if (uv_queue_work(loop, &j->work, run, done) != 0) {
        sb_http_on_abort(req, NULL, NULL);
        sb__api_fail(&j->call, SB_E_UNAVAILABLE, NULL, "the control plane is shutting down");
        respond(j);
        job_free(j);
    }
}

bool sb_api_store_ok(struct sb_api *a)
{
    int64_t t = atomic_load(&a->store_ok_ms);
    return t > 0 && sb__api_now_ms() - t < 3 * (int64_t)a->poll_ms + 1000;
}
