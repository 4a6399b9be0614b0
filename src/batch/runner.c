/* SPDX-License-Identifier: MIT */
/*
 * runner.c - batch jobs run in the background (batch/runner.h).
 *
 * One thread with its own store connection and one libcurl multi handle.
 * Why HTTP to our own listener rather than a call into the proxy: the proxy
 * serves a struct sb_http_req on a worker loop, and everything a line must
 * get (auth and scope, routes, failover, limits, budgets, the usage row)
 * hangs off that request. Sending the line as a request over loopback makes
 * a batch line a client request by construction, at ~100 us per line, with
 * no second path through the proxy to keep in step. The listener is a
 * private one on 127.0.0.1 (main.c), not the public address: a `--takeover`
 * hands the public sockets to the new process, whose token differs.
 *
 * The loop, every turn: lease jobs (every second, or when woken), send
 * lines while a job has room (its window) and the process has room
 * (SB_BATCH_MAX_IN_FLIGHT), collect answers, store them (one transaction
 * per job per turn), end jobs with nothing left. Waiting on the network is
 * curl_multi_poll, which wake and stop interrupt. The multi handle is made
 * when the first line is sent, not at start: it is what loads libcurl
 * (upstream/curl_load.c), and most processes never run a job. Until then the
 * thread waits on a condition variable that wake and stop signal.
 *
 * What a line's answer does:
 *   - any HTTP answer is its result (status_code and body), except:
 *   - 429 with Retry-After, not a budget's insufficient_quota: the line
 *     waits and is sent again (the job holds all its lines until then and
 *     drops its window to 1, growing by one per success: a key's rpm slows
 *     a job down instead of failing its lines);
 *   - 401: the owner may just have been revoked: the owner is checked again
 *     and the line sent again (3 times at most);
 *   - no answer (our own listener unreachable, a timeout): sent again after
 *     a second, 5 times at most, then the line's error is internal_error.
 *
 * Chapters: jobs · lines · answers · ends · the loop · lifetime.
 */
#include "batch/runner.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch/jsonl.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/secret.h"
#include "crypto/vkey.h"
#include "store/batch.h"
#include "store/identity.h"
#include "store/store.h"

#define CLAIM_EVERY_MS 1000
#define FLUSH_EVERY_MS 50             /* answers wait at most this long to be stored */
#define LOAD_CHUNK 64                 /* pending lines read at once per job */
#define MAX_ANSWER_BYTES (16u << 20)  /* a line's answer kept whole */
#define MAX_WAITS 1000                /* 429s one line may wait out */
#define MAX_AUTH_RETRIES 3            /* 401s before the answer stands */
#define MAX_TRANSPORT_RETRIES 5       /* no answer from our own listener */
#define LINE_TIMEOUT_MS (15 * 60000L) /* well past the proxy's own failover budget */

struct line {
    struct line *next;   /* the job's queue, in line order */
    int64_t n;           /* line number */
    char *custom_id;     /* owned, may be NULL */
    char *endpoint;      /* owned */
    char *body;          /* owned */
    size_t body_len;     /* bytes of body */
    int waits, auth_retries, transport_retries;
    int64_t not_before;  /* Unix ms: not sent before */
};

struct job {
    struct job *next;
    struct sb_arena *arena;     /* row's strings; replaced at each lease */
    struct sb_store_batch row;  /* as last leased */
    char owner[96];             /* x-switchboard-batch-owner: admin | user:NAME | key:HASH */
    const char *owner_problem;  /* why the owner may no longer send (arena); NULL = fine */
    bool owner_known;           /* owner was read from the store at least once */
    struct line *queue;         /* loaded pending lines not in flight */
    int64_t cursor;             /* highest line number loaded so far */
    bool exhausted;             /* no pending line above cursor in the store */
    int in_flight;              /* lines sent, not answered */
    int window;                 /* lines allowed in flight now: 1..concurrency */
    int64_t hold_until;         /* a 429's Retry-After: nothing is sent before (Unix ms) */
    struct sb_store_batch_line *done; /* answers not yet stored (owned, with their result) */
    size_t ndone, capdone;
    bool dirty;                 /* in_flight changed since the store last heard */
    bool seen;                  /* in the last lease: false = lost, dropped */
};

struct xfer {
    struct xfer *next, *prev;    /* every transfer of the runner (curl 7.88 lists none) */
    CURL *easy;
    struct job *job;
    struct line *line;           /* owned while in flight */
    struct curl_slist *headers;
    struct sb_buf answer;        /* bounded by MAX_ANSWER_BYTES */
    char request_id[80];         /* what we sent as x-request-id */
    char answer_id[80];          /* what came back */
    long retry_after_s;          /* -1 = none */
};

struct sb_batch_runner {
    struct sb_store *store;     /* opened by the thread's first lease, off the start-up path */
    char *db_url;               /* owned */
    char token[80];             /* "sb-batch-" + 64 hex; wiped at free */
    unsigned char digest[32];
    char runner_id[96];         /* this process's name on leases */
    char url[64];               /* http://127.0.0.1:PORT */
    unsigned shutdown_ms;
    CURLM *multi;               /* made by the first line sent (multi_of), under lock */
    pthread_mutex_t lock;       /* multi's creation against wake and stop; the idle wait */
    pthread_cond_t cond;        /* wake and stop signal the idle wait */
    pthread_t thread;
    bool started;
    _Atomic bool stop, woken;
    struct job *jobs;
    struct xfer *xfers;         /* in flight */
    int64_t next_flush;         /* Unix ms: when answers are stored next */
    int in_flight;              /* all jobs */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ======================================================================
 * Jobs: leases and owners
 * ==================================================================== */

static void free_line(struct line *l)
{
    if (!l)
        return;
    free(l->custom_id);
    free(l->endpoint);
    free(l->body);
    free(l);
}

static void clear_done(struct job *j)
{
    for (size_t i = 0; i < j->ndone; i++) {
        free((char *)j->done[i].result);
        free((char *)j->done[i].custom_id);
    }
    j->ndone = 0;
}

static void free_job(struct job *j)
{
    while (j->queue) {
        struct line *l = j->queue;
        j->queue = l->next;
        free_line(l);
    }
    clear_done(j);
    free(j->done);
    sb_arena_free(j->arena);
    free(j);
}

/* Who the lines of j are sent as, checked in the store now: the user must be
 * active, the key live (not revoked, not expired, its owner active). */
static void check_owner(struct sb_batch_runner *r, struct job *j)
{
    struct sb_error err = {0};
    struct sb_store_user u;
    struct sb_store_api_key k;
    const struct sb_store_batch *b = &j->row;
    char was[sizeof(j->owner)];
    memcpy(was, j->owner, sizeof(was));
    j->owner_problem = NULL;
    if (strcmp(b->run_as, "admin") == 0) {
        snprintf(j->owner, sizeof(j->owner), "admin");
    } else if (strcmp(b->run_as, "user") == 0) {
        if (!b->user_id || sb_store_user_get(r->store, b->user_id, j->arena, &u, &err) != SB_OK ||
            strcmp(u.status, "active") != 0)
            j->owner_problem = "the job's user is disabled or deleted";
        snprintf(j->owner, sizeof(j->owner), "user:%s", b->user_id ? b->user_id : "");
    } else {
        if (sb_store_key_get(r->store, b->key_id, j->arena, &k, &err) != SB_OK || k.revoked)
            j->owner_problem = "the job's virtual key is revoked or deleted";
        else if (k.expires_at && k.expires_at <= now_ms())
            j->owner_problem = "the job's virtual key has expired";
        else if (k.user_id && (sb_store_user_get(r->store, k.user_id, j->arena, &u, &err) != SB_OK ||
                               strcmp(u.status, "active") != 0))
            j->owner_problem = "the owner of the job's virtual key is disabled or deleted";
        else
            snprintf(j->owner, sizeof(j->owner), "key:%s", k.key_hash);
    }
    if (err.code == SB_E_STORE) { /* not the owner's fault: keep what we knew, look again */
        j->owner_problem = NULL;
        memcpy(j->owner, was, sizeof(was));
    } else
        j->owner_known = true;
}

static struct job *find_job(struct sb_batch_runner *r, const char *id)
{
    for (struct job *j = r->jobs; j; j = j->next)
        if (strcmp(j->row.id, id) == 0)
            return j;
    return NULL;
}

static void drop_lost(struct sb_batch_runner *r);

/* Renews our leases and takes free jobs; refreshes each job's row and owner. */
static void lease(struct sb_batch_runner *r)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_batch *rows = NULL;
    size_t n = 0;
    struct sb_error err = {0};
    if (!r->store && sb_store_open(r->db_url, &r->store, &err) != SB_OK) {
        sb_warn("msg=\"batch: cannot open the store; retrying\" err=\"%s\"", err.msg);
        sb_arena_free(a);
        return;
    }
    if (sb_store_batch_claim(r->store, r->runner_id, now_ms(), SB_BATCH_LEASE_MS,
                             SB_BATCH_MAX_JOBS, a, &rows, &n, &err) != SB_OK) {
        sb_warn("msg=\"batch: lease failed; retrying\" err=\"%s\"", err.msg);
        sb_arena_free(a);
        return;
    }
    for (struct job *j = r->jobs; j; j = j->next)
        j->seen = false;
    for (size_t i = 0; i < n; i++) {
        struct job *j = find_job(r, rows[i].id);
        if (!j) {
            j = sb_xcalloc(1, sizeof(*j));
            j->next = r->jobs;
            r->jobs = j;
            sb_info("msg=\"batch: running\" batch=%s total=%lld done=%lld", rows[i].id,
                    (long long)rows[i].total, (long long)(rows[i].completed + rows[i].failed));
        }
        struct sb_arena *old = j->arena;
        j->arena = sb_arena_create(1024);
        j->row = rows[i];
        j->row.id = sb_arena_strndup(j->arena, rows[i].id, strlen(rows[i].id));
        j->row.run_as = sb_arena_strndup(j->arena, rows[i].run_as, strlen(rows[i].run_as));
        j->row.status = sb_arena_strndup(j->arena, rows[i].status, strlen(rows[i].status));
        j->row.user_id = rows[i].user_id ? sb_arena_strndup(j->arena, rows[i].user_id,
                                                            strlen(rows[i].user_id))
                                         : NULL;
        j->row.created_by = j->row.endpoint = j->row.model = j->row.error = NULL;
        j->row.metadata = NULL;
        if (j->window == 0)
            j->window = (int)j->row.concurrency;
        j->seen = true;
        check_owner(r, j);
        sb_arena_free(old);
    }
    sb_arena_free(a);
    drop_lost(r);
}

/* ======================================================================
 * Lines: the queue and sending
 * ==================================================================== */

static void enqueue(struct job *j, struct line *l)
{
    struct line **p = &j->queue;
    while (*p && (*p)->n < l->n)
        p = &(*p)->next;
    l->next = *p;
    *p = l;
}

static char *dup_or_null(const char *s)
{
    return s ? sb_xstrdup(s) : NULL;
}

/* Reads more pending lines of j when its queue runs short. */
static void load(struct sb_batch_runner *r, struct job *j)
{
    size_t queued = 0;
    for (struct line *l = j->queue; l; l = l->next)
        queued++;
    if (j->exhausted || queued >= (size_t)j->window + 8)
        return;
    struct sb_arena *a = sb_arena_create(16384);
    struct sb_store_batch_line *ls = NULL;
    size_t n = 0;
    struct sb_error err = {0};
    if (sb_store_batch_pending(r->store, j->row.id, j->cursor, LOAD_CHUNK, a, &ls, &n, &err) !=
        SB_OK) {
        sb_warn("msg=\"batch: reading lines failed; retrying\" batch=%s err=\"%s\"", j->row.id,
                err.msg);
        sb_arena_free(a);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct line *l = sb_xcalloc(1, sizeof(*l));
        l->n = ls[i].line;
        l->custom_id = dup_or_null(ls[i].custom_id);
        l->endpoint = sb_xstrdup(ls[i].endpoint ? ls[i].endpoint : "/v1/chat/completions");
        l->body = sb_xstrdup(ls[i].body ? ls[i].body : "{}");
        l->body_len = strlen(l->body);
        enqueue(j, l);
        j->cursor = l->n;
    }
    j->exhausted = n < LOAD_CHUNK;
    sb_arena_free(a);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    return sb_buf_append(&x->answer, p, size * n) == SB_OK ? size * n : 0;
}

/* A header line: keeps retry-after and x-request-id. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    struct sb_slice h = {p, len};
    while (h.len && (h.p[h.len - 1] == '\n' || h.p[h.len - 1] == '\r'))
        h.len--;
    if (sb_slice_starts_with(h, SB_SLICE("HTTP/")))
        x->retry_after_s = -1; /* a new response (after a 100 Continue) */
    if (h.len > 12 && sb_slice_caseeq((struct sb_slice){h.p, 12}, SB_SLICE("retry-after:"))) {
        unsigned long long v = 0;
        struct sb_slice t = {h.p + 12, h.len - 12};
        while (t.len && *t.p == ' ')
            t.p++, t.len--;
        if (sb_slice_to_u64(t, &v) && v < 86400)
            x->retry_after_s = (long)v;
    }
    if (h.len > 13 && h.len - 13 < sizeof(x->answer_id) &&
        sb_slice_caseeq((struct sb_slice){h.p, 13}, SB_SLICE("x-request-id:"))) {
        struct sb_slice t = {h.p + 13, h.len - 13};
        while (t.len && *t.p == ' ')
            t.p++, t.len--;
        snprintf(x->answer_id, sizeof(x->answer_id), "%.*s", SB_FMT(t));
    }
    return len;
}

static struct curl_slist *headers_for(struct sb_batch_runner *r, struct job *j, struct xfer *x)
{
    char h[256];
    struct curl_slist *s = curl_slist_append(NULL, "Content-Type: application/json");
    s = curl_slist_append(s, "Expect:");
    snprintf(h, sizeof(h), "Authorization: Bearer %s", r->token);
    s = curl_slist_append(s, h);
    sb_secret_wipe(h, sizeof(h));
    snprintf(h, sizeof(h), "x-switchboard-batch-owner: %s", j->owner);
    s = curl_slist_append(s, h);
    snprintf(h, sizeof(h), "x-request-id: %s", x->request_id);
    return curl_slist_append(s, h);
}

static CURLM *multi_of(struct sb_batch_runner *r)
{
    if (!r->multi) {
        CURLM *m = curl_multi_init();
        pthread_mutex_lock(&r->lock);
        r->multi = m;
        pthread_mutex_unlock(&r->lock);
    }
    return r->multi;
}

static void send_line(struct sb_batch_runner *r, struct job *j, struct line *l)
{
    struct xfer *x = sb_xcalloc(1, sizeof(*x));
    char url[128];
    x->job = j;
    x->line = l;
    x->retry_after_s = -1;
    sb_buf_init(&x->answer, MAX_ANSWER_BYTES);
    snprintf(x->request_id, sizeof(x->request_id), "%s-%lld", j->row.id, (long long)l->n);
    snprintf(url, sizeof(url), "%s%s", r->url, l->endpoint);
    x->headers = headers_for(r, j, x);
    x->easy = curl_easy_init();
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, l->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)l->body_len);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, LINE_TIMEOUT_MS);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_multi_add_handle(multi_of(r), x->easy);
    x->next = r->xfers;
    if (r->xfers)
        r->xfers->prev = x;
    r->xfers = x;
    j->in_flight++;
    j->dirty = true;
    r->in_flight++;
}

/* Sends what the windows allow, jobs taken in turn so one job cannot starve the others. */
static void dispatch(struct sb_batch_runner *r, int64_t now)
{
    bool sent = true;
    for (struct job *j = r->jobs; j; j = j->next)
        if (strcmp(j->row.status, "in_progress") == 0 && !j->owner_problem)
            load(r, j);
    while (sent && r->in_flight < SB_BATCH_MAX_IN_FLIGHT) {
        sent = false;
        for (struct job *j = r->jobs; j && r->in_flight < SB_BATCH_MAX_IN_FLIGHT; j = j->next) {
            struct line *l = j->queue;
            if (strcmp(j->row.status, "in_progress") != 0 || j->owner_problem ||
                !j->owner_known || j->hold_until > now || j->in_flight >= j->window || !l ||
                l->not_before > now)
                continue;
            j->queue = l->next;
            send_line(r, j, l);
            sent = true;
        }
    }
}

/* ======================================================================
 * Answers
 * ==================================================================== */

/* Keeps the output line for j's next store write; takes ownership of result. */
static void add_done(struct job *j, int64_t n, const char *custom_id, char *result, bool failed)
{
    if (j->ndone == j->capdone) {
        j->capdone = j->capdone ? j->capdone * 2 : 16;
        j->done = sb_xrealloc(j->done, j->capdone * sizeof(*j->done));
    }
    j->done[j->ndone++] = (struct sb_store_batch_line){
        .line = n, .custom_id = dup_or_null(custom_id), .result = result, .failed = failed};
}

static char *buf_take(struct sb_buf *b)
{
    char *s = sb_xmalloc(b->len + 1);
    memcpy(s, b->p ? b->p : "", b->len);
    s[b->len] = '\0';
    return s;
}

static void line_error(struct job *j, struct line *l, const char *id, const char *code,
                       const char *msg)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_batch_result_error(&b, id, l->custom_id, code, msg);
    add_done(j, l->n, l->custom_id, buf_take(&b), true);
    sb_buf_free(&b);
}

/* The answer's error.code, when it has one ("insufficient_quota", ...). */
static bool answer_code_is(const struct sb_json *body, const char *code)
{
    const struct sb_json *e = sb_json_get(body, "error");
    const struct sb_json *c = e ? sb_json_get(e, "code") : NULL;
    return c && sb_json_is_string(c) && sb_slice_eq_cstr(c->str, code);
}

/* Whether the line goes back to the queue instead of keeping this answer. */
static bool try_again(struct sb_batch_runner *r, struct job *j, struct xfer *x, long status,
                      const struct sb_json *body, int64_t now)
{
    struct line *l = x->line;
    if (status == 429 && x->retry_after_s >= 0 && l->waits < MAX_WAITS &&
        !answer_code_is(body, "insufficient_quota")) {
        l->waits++;
        int64_t until = now + (x->retry_after_s > 0 ? x->retry_after_s * 1000 : 1000);
        if (until > j->hold_until)
            j->hold_until = until;
        j->window = 1;
        return true;
    }
    if (status == 401 && l->auth_retries < MAX_AUTH_RETRIES) {
        l->auth_retries++;
        l->not_before = now + 1000;
        atomic_store(&r->woken, true); /* look at the owner again now */
        return true;
    }
    return false;
}

static void answered(struct sb_batch_runner *r, struct xfer *x, CURLcode cc, int64_t now)
{
    struct job *j = x->job;
    struct line *l = x->line;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status < 100) {
        if (cc != CURLE_WRITE_ERROR && ++l->transport_retries <= MAX_TRANSPORT_RETRIES) {
            l->not_before = now + 1000;
            enqueue(j, l);
            x->line = NULL;
            return;
        }
        line_error(j, l, x->request_id,
                   cc == CURLE_WRITE_ERROR ? "response_too_large" : "internal_error",
                   cc == CURLE_WRITE_ERROR ? "the answer was larger than 16 MiB"
                                           : "the gateway did not answer the line");
        return;
    }
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *body = NULL;
    struct sb_json_limits lim = {.max_depth = 512, .max_bytes = MAX_ANSWER_BYTES};
    if (sb_json_parse(a, x->answer.p ? x->answer.p : "", x->answer.len, &lim, &body, NULL) !=
        SB_OK) {
        line_error(j, l, x->request_id, "invalid_response", "the answer was not JSON");
    } else if (try_again(r, j, x, status, body, now)) {
        enqueue(j, l);
        x->line = NULL;
    } else {
        struct sb_buf b;
        sb_buf_init(&b, 0);
        sb_batch_result_response(&b, x->request_id, l->custom_id, (int)status,
                                 x->answer_id[0] ? x->answer_id : x->request_id,
                                 sb_buf_slice(&x->answer));
        add_done(j, l->n, l->custom_id, buf_take(&b), status < 200 || status > 299);
        sb_buf_free(&b);
        if (status >= 200 && status <= 299 && j->window < j->row.concurrency)
            j->window++;
    }
    sb_arena_free(a);
}

static void free_xfer(struct sb_batch_runner *r, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        r->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    curl_multi_remove_handle(r->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    sb_buf_free(&x->answer);
    free_line(x->line);
    x->job->in_flight--;
    x->job->dirty = true;
    r->in_flight--;
    free(x);
}

static void harvest(struct sb_batch_runner *r)
{
    CURLMsg *m;
    int left;
    int64_t now = now_ms();
    if (!r->multi)
        return;
    for (m = curl_multi_info_read(r->multi, &left); m; m = curl_multi_info_read(r->multi, &left)) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        answered(r, x, m->data.result, now);
        free_xfer(r, x);
    }
}

/* Aborts every transfer of j (NULL: all); their lines stay pending in the store, to be
 * sent again by whoever runs the job next. */
static void abort_xfers(struct sb_batch_runner *r, struct job *j)
{
    struct xfer *x = r->xfers, *next;
    for (; x; x = next) {
        next = x->next;
        if (!j || x->job == j)
            free_xfer(r, x);
    }
}

/* ======================================================================
 * Ends: storing answers, finishing jobs, letting go of lost ones
 * ==================================================================== */

/* Stores each job's answers (and its in-flight count) in one transaction per job, at most
 * every FLUSH_EVERY_MS unless forced: a fast job answers lines faster than one SQLite
 * commit each is worth, and the usage writer wants the write lock too. */
static void flush(struct sb_batch_runner *r, bool force)
{
    int64_t now = now_ms();
    if (!force && now < r->next_flush)
        return;
    r->next_flush = now + FLUSH_EVERY_MS;
    for (struct job *j = r->jobs; j; j = j->next) {
        struct sb_error err = {0};
        if (!j->ndone && !j->dirty)
            continue;
        sb_err rc = sb_store_batch_record(r->store, j->row.id, r->runner_id, j->done, j->ndone,
                                          j->in_flight, &err);
        if (rc == SB_OK) {
            clear_done(j);
            j->dirty = false;
        } else if (rc == SB_E_CONFLICT) {
            sb_warn("msg=\"batch: lease lost; another process runs it now\" batch=%s", j->row.id);
            clear_done(j);
            j->seen = false;
        } else {
            sb_warn("msg=\"batch: storing answers failed; retrying\" batch=%s err=\"%s\"",
                    j->row.id, err.msg);
        }
    }
}

static void unlink_job(struct sb_batch_runner *r, struct job *j)
{
    struct job **p = &r->jobs;
    while (*p != j)
        p = &(*p)->next;
    *p = j->next;
    free_job(j);
}

static void drop_lost(struct sb_batch_runner *r)
{
    struct job *j = r->jobs, *next;
    for (; j; j = next) {
        next = j->next;
        if (!j->seen) {
            abort_xfers(r, j);
            unlink_job(r, j);
        }
    }
}

/* Every line of j still without a result gets the error code: msg. */
static sb_err fill_rest(struct sb_batch_runner *r, struct job *j, const char *code, const char *msg)
{
    struct sb_error err = {0};
    for (;;) {
        struct sb_arena *a = sb_arena_create(16384);
        struct sb_store_batch_line *ls = NULL;
        size_t n = 0;
        sb_err rc = sb_store_batch_pending(r->store, j->row.id, 0, 500, a, &ls, &n, &err);
        for (size_t i = 0; rc == SB_OK && i < n; i++) {
            char id[80];
            struct line l = {.n = ls[i].line, .custom_id = (char *)ls[i].custom_id};
            snprintf(id, sizeof(id), "%s-%lld", j->row.id, (long long)l.n);
            line_error(j, &l, id, code, msg);
        }
        sb_arena_free(a);
        if (rc == SB_OK && n)
            rc = sb_store_batch_record(r->store, j->row.id, r->runner_id, j->done, j->ndone, 0,
                                       &err);
        clear_done(j);
        if (rc != SB_OK || n == 0)
            return rc;
    }
}

/* Whether j has no line left anywhere: queue, flight, unstored answers, or the store. */
static bool all_done(struct sb_batch_runner *r, struct job *j)
{
    if (!j->exhausted || j->queue || j->in_flight || j->ndone)
        return false;
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_store_batch_line *ls = NULL;
    size_t n = 1;
    struct sb_error err = {0};
    sb_err rc = sb_store_batch_pending(r->store, j->row.id, 0, 1, a, &ls, &n, &err);
    sb_arena_free(a);
    if (rc == SB_OK && n) { /* a line we never loaded: read from the start again */
        j->cursor = 0;
        j->exhausted = false;
    }
    return rc == SB_OK && n == 0;
}

static void end_job(struct sb_batch_runner *r, struct job *j, const char *status,
                    const char *error)
{
    struct sb_error err = {0};
    if (sb_store_batch_finish(r->store, j->row.id, r->runner_id, status, error, now_ms(), &err) !=
        SB_OK) {
        sb_warn("msg=\"batch: ending failed; retrying\" batch=%s err=\"%s\"", j->row.id, err.msg);
        return;
    }
    sb_info("msg=\"batch: %s\" batch=%s", status, j->row.id);
    unlink_job(r, j);
}

/* Cancelled and failed jobs end once their lines in flight came back. */
static void finalize(struct sb_batch_runner *r)
{
    struct job *j = r->jobs, *next;
    for (; j; j = next) {
        next = j->next;
        bool cancelling = strcmp(j->row.status, "cancelling") == 0;
        if ((cancelling || j->owner_problem) && !j->in_flight && !j->ndone) {
            while (j->queue) {
                struct line *l = j->queue;
                j->queue = l->next;
                free_line(l);
            }
            const char *code = cancelling ? "batch_cancelled" : "batch_failed";
            const char *msg = cancelling ? "the batch was cancelled before this line was sent"
                                         : j->owner_problem;
            if (fill_rest(r, j, code, msg) == SB_OK)
                end_job(r, j, cancelling ? "cancelled" : "failed",
                        cancelling ? NULL : j->owner_problem);
        } else if (!cancelling && all_done(r, j)) {
            end_job(r, j, "completed", NULL);
        }
    }
}

/* ======================================================================
 * The loop
 * ==================================================================== */

static long poll_ms(struct sb_batch_runner *r, int64_t now, int64_t next_lease)
{
    int64_t due = next_lease;
    for (struct job *j = r->jobs; j; j = j->next)
        if ((j->ndone || j->dirty) && r->next_flush < due)
            due = r->next_flush; /* answers to store */
    for (struct job *j = r->jobs; j && r->in_flight < SB_BATCH_MAX_IN_FLIGHT; j = j->next) {
        /* only a job that could send now: otherwise an answer wakes the poll */
        if (!j->queue || j->in_flight >= j->window || j->owner_problem || !j->owner_known ||
            strcmp(j->row.status, "in_progress") != 0)
            continue;
        int64_t t = j->hold_until > j->queue->not_before ? j->hold_until : j->queue->not_before;
        if (t < due)
            due = t;
    }
    return due <= now ? 0 : due - now > CLAIM_EVERY_MS ? CLAIM_EVERY_MS : (long)(due - now);
}

/* Until ms pass, a wake or a stop: in curl once it has a multi handle (answers wake
 * it too), else on the condition variable. */
static void wait_for(struct sb_batch_runner *r, long ms)
{
    if (r->multi) {
        curl_multi_poll(r->multi, NULL, 0, (int)ms, NULL);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->woken) && !atomic_load(&r->stop) &&
           pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&r->lock);
}

static void *run(void *ud)
{
    struct sb_batch_runner *r = ud;
    int64_t next_lease = 0, deadline = 0;
    bool stopping = false;
    for (;;) {
        int64_t now = now_ms();
        int running = 0;
        if (!stopping && atomic_load(&r->stop)) {
            stopping = true;
            deadline = now + r->shutdown_ms;
        }
        if (!stopping && (atomic_exchange(&r->woken, false) || now >= next_lease)) {
            lease(r);
            next_lease = now + CLAIM_EVERY_MS;
        }
        if (!stopping)
            dispatch(r, now);
        if (r->multi)
            curl_multi_perform(r->multi, &running);
        harvest(r);
        flush(r, stopping);
        drop_lost(r);
        finalize(r);
        if (stopping && (r->in_flight == 0 || now_ms() >= deadline))
            break;
        wait_for(r, stopping ? 50 : poll_ms(r, now, next_lease));
    }
    if (r->in_flight)
        sb_warn("msg=\"batch: lines still in flight at shutdown; they will be sent again\" "
                "lines=%d",
                r->in_flight);
    abort_xfers(r, NULL);
    flush(r, true);
    struct sb_error err = {0};
    if (r->store && sb_store_batch_release(r->store, r->runner_id, &err) != SB_OK)
        sb_warn("msg=\"batch: releasing leases failed; they run out by themselves\" err=\"%s\"",
                err.msg);
    while (r->jobs)
        unlink_job(r, r->jobs);
    return NULL;
}

/* ======================================================================
 * Lifetime
 * ==================================================================== */

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

sb_err sb_batch_runner_create(const struct sb_batch_runner_opts *o, struct sb_batch_runner **out,
                              struct sb_error *err)
{
    struct sb_batch_runner *r = sb_xcalloc(1, sizeof(*r));
    unsigned char rnd[32], id[6];
    char text[65];
    *out = NULL;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1 || RAND_bytes(id, sizeof(id)) != 1) {
        free(r);
        return sb_fail(err, SB_E_INTERNAL, "batch: no randomness for the runner's token");
    }
    hex(rnd, sizeof(rnd), text);
    snprintf(r->token, sizeof(r->token), "sb-batch-%s", text);
    sb_secret_wipe(rnd, sizeof(rnd));
    sb_secret_wipe(text, sizeof(text));
    struct sb_vkey_hash h;
    sb_vkey_hash(sb_slice_cstr(r->token), &h);
    memcpy(r->digest, h.digest, sizeof(r->digest));
    hex(id, sizeof(id), text);
    snprintf(r->runner_id, sizeof(r->runner_id), "pid%ld-%s", (long)getpid(), text);
    r->shutdown_ms = o->shutdown_ms;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->db_url = sb_xstrdup(o->db_url);
    *out = r;
    return SB_OK;
}

void sb_batch_runner_token_digest(const struct sb_batch_runner *r, unsigned char out[32])
{
    memcpy(out, r->digest, 32);
}

sb_err sb_batch_runner_start(struct sb_batch_runner *r, int port, struct sb_error *err)
{
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", port);
    if (pthread_create(&r->thread, NULL, run, r) != 0)
        return sb_fail(err, SB_E_INTERNAL, "batch: cannot start the runner thread");
    r->started = true;
    return SB_OK;
}

/* Sets flag, then interrupts the thread's wait, whichever it is in. */
static void poke(struct sb_batch_runner *r, _Atomic bool *flag)
{
    pthread_mutex_lock(&r->lock);
    atomic_store(flag, true);
    pthread_cond_signal(&r->cond);
    CURLM *m = r->multi; /* freed only after the thread is joined */
    pthread_mutex_unlock(&r->lock);
    if (m)
        curl_multi_wakeup(m);
}

void sb_batch_runner_wake(struct sb_batch_runner *r)
{
    if (r)
        poke(r, &r->woken);
}

void sb_batch_runner_stop(struct sb_batch_runner *r)
{
    if (r)
        poke(r, &r->stop);
}

void sb_batch_runner_free(struct sb_batch_runner *r)
{
    if (!r)
        return;
    sb_batch_runner_stop(r);
    if (r->started)
        pthread_join(r->thread, NULL);
    if (r->multi)
        curl_multi_cleanup(r->multi);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    sb_store_close(r->store);
    free(r->db_url);
    sb_secret_wipe(r->token, sizeof(r->token));
    free(r);
}
