/* SPDX-License-Identifier: MIT */
/*
 * client.c - libcurl multi-socket on a libuv loop.
 *
 * curl tells us which sockets to watch (socket callback -> uv_poll) and
 * when to wake it (timer callback -> uv_timer); we tell curl what happened
 * with curl_multi_socket_action() and collect finished transfers with
 * curl_multi_info_read(). curl forbids removing an easy handle from inside
 * its own callbacks, so a cancel issued there is recorded and carried out
 * right after curl returns (`deferred`). Idle timeouts (silence within a
 * stream) use one ticking timer per upstream that scans the running
 * transfers, so a request owns no libuv handle and can be freed at once.
 */
#include "upstream/client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

#define IDLE_TICK_MS 100
#define EASY_POOL 64 /* finished easy handles kept for reuse */
#define MAX_RESPONSE_HEADERS (64 * 1024)

struct sock {
    uv_poll_t poll; /* watches fd for curl */
    curl_socket_t fd;
    struct sb_upstream *u;
    struct sock *prev, *next; /* in u->socks, for shutdown */
};

struct sb_ureq {
    struct sb_upstream *u;
    CURL *easy;               /* NULL while queued */
    struct curl_slist *hdrs;  /* request headers */
    char *url;                /* owned copy */
    struct sb_ureq_spec spec; /* copy; url/headers point to our copies */
    struct sb_ureq_cbs cbs;
    void *ud;
    struct sb_buf head; /* response header lines of the final block */
    struct sb_kv *kv;   /* parsed from head for on_head */
    size_t nkv, capkv;
    int status;                  /* of the final header block */
    bool head_done;              /* on_head delivered */
    bool paused;                 /* the consumer asked for a pause */
    bool cancelled;              /* no more callbacks; remove when curl allows */
    bool running;                /* in the multi handle */
    uint64_t last_rx;            /* uv_now of the last received byte */
    struct sb_ureq *prev, *next; /* in u->running or u->waiting */
    char errbuf[CURL_ERROR_SIZE];
};

struct sb_upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    uv_timer_t idle;  /* idle-timeout scanner */
    struct sock *socks;
    struct sb_ureq *running;                /* transfers in the multi */
    struct sb_ureq *waiting, *waiting_tail; /* FIFO beyond max_transfers */
    size_t nrunning, nwaiting;
    long max_transfers;
    bool http2;
    int in_curl;           /* depth of calls into curl that may call us back */
    bool has_deferred;     /* some running request is cancelled */
    CURL *pool[EASY_POOL]; /* idle easy handles */
    bool env_proxy;        /* a *_proxy variable is set: curl applies it */
    char *ca_file;         /* SWITCHBOARD_CA_FILE: extra trust anchors, NULL = system store */
    int npool;
    bool closing;
    int open_handles; /* timer + idle + socks being closed */
    void (*closed)(void *ud);
    void *closed_ud;
};

static void check_done(struct sb_upstream *u);
static void start_waiting(struct sb_upstream *u);

/* ======================================================================
 * Lists
 * ==================================================================== */

static void running_add(struct sb_upstream *u, struct sb_ureq *r)
{
    r->prev = NULL;
    r->next = u->running;
    if (u->running)
        u->running->prev = r;
    u->running = r;
    u->nrunning++;
}

static void running_del(struct sb_upstream *u, struct sb_ureq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        u->running = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    u->nrunning--;
}

static void waiting_push(struct sb_upstream *u, struct sb_ureq *r)
{
    r->next = NULL;
    r->prev = u->waiting_tail;
    if (u->waiting_tail)
        u->waiting_tail->next = r;
    else
        u->waiting = r;
    u->waiting_tail = r;
    u->nwaiting++;
}

static void waiting_del(struct sb_upstream *u, struct sb_ureq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        u->waiting = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        u->waiting_tail = r->prev;
    r->prev = r->next = NULL;
    u->nwaiting--;
}

/* ======================================================================
 * Request memory
 * ==================================================================== */

static void ureq_free(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    if (r->easy) {
        /* Reusing an easy handle saves its allocation; connections live in
         * the multi handle's pool either way. */
        if (u->npool < EASY_POOL && !u->closing) {
            u->pool[u->npool++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    sb_buf_free(&r->head);
    free(r->kv);
    free(r->url);
    free(r);
}

/* Takes r out of curl (closing its connection if unfinished) and frees it. */
static void ureq_remove(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    if (r->running) {
        curl_multi_remove_handle(u->multi, r->easy);
        running_del(u, r);
        r->running = false;
    }
    ureq_free(r);
}

/* Removes cancelled transfers once curl is no longer on the stack. */
static void run_deferred(struct sb_upstream *u)
{
    if (!u->has_deferred || u->in_curl)
        return;
    u->has_deferred = false;
    struct sb_ureq *r = u->running;
    while (r) {
        struct sb_ureq *next = r->next;
        if (r->cancelled)
            ureq_remove(r);
        r = next;
    }
    start_waiting(u);
}

/* ======================================================================
 * curl's callbacks for one transfer
 * ==================================================================== */

static void parse_head(struct sb_ureq *r)
{
    /* head holds "Name: value\r\n" lines; build name/value slices into it. */
    const char *p = r->head.p, *end = r->head.p + r->head.len;
    r->nkv = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon) {
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (r->nkv == r->capkv) {
                r->capkv = r->capkv ? r->capkv * 2 : 16;
                r->kv = sb_xrealloc(r->kv, r->capkv * sizeof(*r->kv));
            }
            r->kv[r->nkv++] = (struct sb_kv){{p, (size_t)(colon - p)}, {v, (size_t)(ve - v)}};
        }
        p = line_end + 1;
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct sb_ureq *r = ud;
    size_t len = size * n;
    int status;
    if (r->cancelled)
        return 0;
    r->last_rx = uv_now(r->u->loop);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new header block (after a 1xx, or a redirect we do not follow). */
        sb_buf_reset(&r->head);
        const char *sp = memchr(p, ' ', len);
        status = 0;
        for (const char *q = sp ? sp + 1 : p + len; q < p + len && *q >= '0' && *q <= '9'; q++)
            status = status * 10 + (*q - '0');
        r->status = status;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (r->status >= 200 && !r->head_done) {
            r->head_done = true;
            parse_head(r);
            if (r->cbs.on_head)
                r->cbs.on_head(r->ud, r->status, r->kv, r->nkv);
        }
        return r->cancelled ? 0 : len;
    }
    if (sb_buf_append(&r->head, p, len) != SB_OK)
        return 0; /* absurd header block: abort the transfer */
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct sb_ureq *r = ud;
    size_t len = size * n;
    if (r->cancelled)
        return 0;
    r->last_rx = uv_now(r->u->loop);
    if (len == 0)
        return 0;
    if (r->cbs.on_data(r->ud, p, len) == SB_UREQ_PAUSE) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    /* A consumer that cancelled us from inside on_data: stop curl here. */
    return r->cancelled ? 0 : len;
}

/* ======================================================================
 * curl <-> libuv plumbing
 * ==================================================================== */

static void socket_action(struct sb_upstream *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    check_done(u);
    run_deferred(u);
    start_waiting(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->u, s->fd, flags);
}

static void on_curl_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *m, long timeout_ms, void *ud)
{
    struct sb_upstream *u = ud;
    if (u->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void release(struct sb_upstream *u);

static void sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct sb_upstream *u = s->u;
    free(s);
    release(u);
}

static void sock_drop(struct sb_upstream *u, struct sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        u->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    u->open_handles++;
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    struct sb_upstream *u = ud;
    struct sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(u->multi, fd, NULL);
            sock_drop(u, s);
        }
        return 0;
    }
    if (!s) {
        s = sb_xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->u = u;
        uv_poll_init_socket(u->loop, &s->poll, fd);
        s->poll.data = s;
        s->next = u->socks;
        if (u->socks)
            u->socks->prev = s;
        u->socks = s;
        curl_multi_assign(u->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* ======================================================================
 * Finished transfers
 * ==================================================================== */

static sb_err map_result(struct sb_ureq *r, CURLcode rc, struct sb_error *err)
{
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    double connect_s = 0;
    switch (rc) {
    case CURLE_OK:
        return SB_OK;
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME, &connect_s);
        return sb_fail(err, SB_E_UPSTREAM_TIMEOUT, "upstream %s timeout: %s",
                       connect_s > 0 ? "request" : "connect", why);
    case CURLE_COULDNT_CONNECT:
        return sb_fail(err, SB_E_UPSTREAM, "upstream connection refused: %s", why);
    case CURLE_COULDNT_RESOLVE_HOST:
        return sb_fail(err, SB_E_UPSTREAM, "upstream host not found: %s", why);
    default:
        return sb_fail(err, SB_E_UPSTREAM, "upstream failed: %s", why);
    }
}

static void finish(struct sb_ureq *r, sb_err rc, const struct sb_error *err)
{
    struct sb_upstream *u = r->u;
    sb_ureq_done_fn done = r->cbs.on_done;
    void *ud = r->ud;
    /* Deliver an empty header block's on_head before on_done, so the
     * consumer always sees the status of a completed response. */
    if (rc == SB_OK && !r->head_done && r->status >= 200 && r->cbs.on_head) {
        r->head_done = true;
        parse_head(r);
        r->cbs.on_head(ud, r->status, r->kv, r->nkv);
    }
    bool cancelled = r->cancelled;
    ureq_remove(r);
    if (!cancelled)
        done(ud, rc, err);
    start_waiting(u);
}

static void check_done(struct sb_upstream *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct sb_ureq *r;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        struct sb_error err = {0};
        sb_err rc = map_result(r, m->data.result, &err);
        finish(r, rc, &err);
    }
}

/* ======================================================================
 * Starting
 * ==================================================================== */

/* Options every request shares: set once per easy handle, kept across reuse. */
static CURL *new_easy(struct sb_upstream *u)
{
    CURL *e = curl_easy_init();
    if (!e)
        abort(); /* out of memory, as sb_xmalloc would */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     u->http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    /* Without proxy variables in the environment (checked once at start),
     * tell curl so: otherwise it calls getenv() several times per request. */
    if (!u->env_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (u->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
    return e;
}

/* Options of this request; each is set on every use so none leaks from the
 * handle's previous request. */
static void setup_easy(struct sb_ureq *r)
{
    CURL *e = r->easy;
    const struct sb_ureq_spec *s = &r->spec;
    bool post = strcmp(s->method, "POST") == 0;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     s->connect_timeout_ms ? s->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->total_timeout_ms);
    if (post) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body ? s->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                     post || strcmp(s->method, "GET") == 0 ? NULL : s->method);
}

static void launch(struct sb_upstream *u, struct sb_ureq *r)
{
    r->easy = u->npool ? u->pool[--u->npool] : new_easy(u);
    setup_easy(r);
    r->last_rx = uv_now(u->loop);
    r->running = true;
    running_add(u, r);
    curl_multi_add_handle(u->multi, r->easy);
}

static void start_waiting(struct sb_upstream *u)
{
    while (!u->in_curl && u->waiting && (long)u->nrunning < u->max_transfers && !u->closing) {
        struct sb_ureq *r = u->waiting;
        waiting_del(u, r);
        launch(u, r);
    }
}

static struct curl_slist *build_headers(const struct sb_ureq_spec *s)
{
    /* "Expect:" stops curl from waiting for 100-continue on big bodies. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    struct sb_buf line;
    sb_buf_init(&line, 0);
    for (size_t i = 0; i < s->nheaders; i++) {
        sb_buf_reset(&line);
        sb_buf_append_slice(&line, s->headers[i].name);
        sb_buf_append(&line, ": ", 2);
        sb_buf_append_slice(&line, s->headers[i].value);
        l = curl_slist_append(l, line.p);
    }
    sb_buf_free(&line);
    return l;
}

struct sb_ureq *sb_ureq_start(struct sb_upstream *u, const struct sb_ureq_spec *spec,
                              const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err)
{
    if (u->closing) {
        sb_fail(err, SB_E_UNAVAILABLE, "upstream client is shutting down");
        return NULL;
    }
    if (!spec->url || !spec->method || !cbs->on_data || !cbs->on_done) {
        sb_fail(err, SB_E_INTERNAL, "upstream request without url, method or callbacks");
        return NULL;
    }
    struct sb_ureq *r = sb_xcalloc(1, sizeof(*r));
    r->u = u;
    r->url = sb_xstrdup(spec->url);
    r->spec = *spec;
    r->spec.url = r->url;
    r->spec.headers = NULL;
    r->cbs = *cbs;
    r->ud = ud;
    r->hdrs = build_headers(spec);
    sb_buf_init(&r->head, MAX_RESPONSE_HEADERS);
    /* curl refuses new handles from inside its callbacks: queue those. */
    if (!u->in_curl && (long)u->nrunning < u->max_transfers)
        launch(u, r);
    else
        waiting_push(u, r);
    return r;
}

/* ======================================================================
 * Pause, cancel, idle timeouts
 * ==================================================================== */

void sb_ureq_resume(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    if (!r->paused || r->cancelled || !r->easy)
        return;
    r->paused = false;
    r->last_rx = uv_now(u->loop);
    /* Unpausing may deliver the held bytes right here, through on_write. */
    u->in_curl++;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
    u->in_curl--;
    check_done(u);
    run_deferred(u);
    start_waiting(u);
}

void sb_ureq_cancel(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    if (r->cancelled)
        return;
    r->cancelled = true;
    if (!r->running) {
        waiting_del(u, r);
        ureq_free(r);
        return;
    }
    if (u->in_curl) {
        u->has_deferred = true; /* removed as soon as curl returns */
        return;
    }
    ureq_remove(r);
    start_waiting(u);
}

static void on_idle_tick(uv_timer_t *t)
{
    struct sb_upstream *u = t->data;
    uint64_t now = uv_now(u->loop);
    struct sb_ureq *r = u->running;
    while (r) {
        struct sb_ureq *next = r->next;
        long idle = r->spec.idle_timeout_ms;
        if (idle > 0 && !r->paused && !r->cancelled && now - r->last_rx >= (uint64_t)idle) {
            struct sb_error err;
            sb_fail(&err, SB_E_UPSTREAM_TIMEOUT, "upstream sent nothing for %ld ms (idle timeout)",
                    idle);
            finish(r, SB_E_UPSTREAM_TIMEOUT, &err);
        }
        r = next;
    }
}

/* ======================================================================
 * Create and close
 * ==================================================================== */

struct sb_upstream *sb_upstream_create(uv_loop_t *loop, const struct sb_upstream_opts *o)
{
    struct sb_upstream *u = sb_xcalloc(1, sizeof(*u));
    u->loop = loop;
    u->max_transfers = o->max_transfers > 0 ? o->max_transfers : 1024;
    u->http2 = o->http2;
    static const char *const proxy_env[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                                            "HTTP_PROXY",  "all_proxy",   "ALL_PROXY"};
    /* A private CA (an internal vLLM behind TLS, a test server). */
    const char *ca = getenv("SWITCHBOARD_CA_FILE");
    if (ca && *ca)
        u->ca_file = sb_xstrdup(ca);
    for (size_t i = 0; i < sizeof(proxy_env) / sizeof(proxy_env[0]); i++) {
        const char *v = getenv(proxy_env[i]);
        u->env_proxy |= v && *v;
    }
    u->multi = curl_multi_init();
    if (!u->multi)
        abort();
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o->max_connections);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_host_connections);
    /* Idle keep-alive connections kept for reuse. */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 1024L);
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    uv_timer_init(loop, &u->idle);
    u->idle.data = u;
    uv_timer_start(&u->idle, on_idle_tick, IDLE_TICK_MS, IDLE_TICK_MS);
    uv_unref((uv_handle_t *)&u->idle); /* the scanner alone must not keep a loop alive */
    return u;
}

static void release(struct sb_upstream *u)
{
    if (--u->open_handles > 0 || !u->closing)
        return;
    void (*done)(void *) = u->closed;
    void *ud = u->closed_ud;
    free(u->ca_file);
    free(u);
    if (done)
        done(ud);
}

static void timer_closed(uv_handle_t *h)
{
    release(h->data);
}

void sb_upstream_close(struct sb_upstream *u, void (*done)(void *ud), void *ud)
{
    u->closing = true;
    u->closed = done;
    u->closed_ud = ud;
    while (u->waiting) {
        struct sb_ureq *r = u->waiting;
        waiting_del(u, r);
        ureq_free(r);
    }
    while (u->running)
        ureq_remove(u->running);
    while (u->npool)
        curl_easy_cleanup(u->pool[--u->npool]);
    u->open_handles += 2;         /* the two timers, plus one per socket closed below */
    curl_multi_cleanup(u->multi); /* may report sockets to remove */
    while (u->socks)
        sock_drop(u, u->socks);
    uv_close((uv_handle_t *)&u->timer, timer_closed);
    uv_close((uv_handle_t *)&u->idle, timer_closed);
}

size_t sb_upstream_active(const struct sb_upstream *u)
{
    return u->nrunning;
}

size_t sb_upstream_queued(const struct sb_upstream *u)
{
    return u->nwaiting;
}
