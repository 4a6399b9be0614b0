/* SPDX-License-Identifier: MIT */
/*
 * client.c - libcurl multi-socket on a libuv loop.
 *
 * curl tells us which sockets to watch (socket callback -> one uv_poll per
 * socket) and when to wake it (timer callback -> one uv_timer); we tell curl
 * what happened with curl_multi_socket_action() and reap finished transfers
 * with curl_multi_info_read() right after. Connections (and HTTP/2 sessions)
 * live in the multi handle's cache; finished easy handles are recycled.
 *
 * curl forbids adding or removing easy handles inside its callbacks, and our
 * consumers' callbacks run inside curl's. So `in_curl` counts how deep we are
 * in curl, and what a consumer asks for there is done as soon as curl returns
 * (after_curl): a cancelled transfer waits in `doomed`, a new one in the FIFO,
 * a resume on the request's timer, a close in `close_pending`. Invariant: no
 * request is freed while curl is on the stack.
 *
 * Each request owns one uv_timer for the deadlines curl does not know: the
 * total timeout while queued, then the idle timeout (silence) while
 * receiving. The idle timer is lazy: a chunk only stores the time, and a
 * timer that fires early re-arms itself for the rest, so a stream costs no
 * timer operation per chunk. Because of that handle, a request's memory is
 * freed in its close callback (libuv's rule); consumers never notice.
 *
 * Plain http:// requests go to the native HTTP/1.1 pool (h1.c) unless their
 * provider or SWITCHBOARD_UPSTREAM says curl: sb_ureq_start picks, and
 * resume/cancel follow the kind each request begins with (internal.h).
 */
#include "upstream/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "crypto/secret.h"
#include "upstream/internal.h"

#define EASY_POOL 64 /* finished easy handles kept for reuse */
#define MAX_RESPONSE_HEAD SB__MAX_RESPONSE_HEAD
#define DEFAULT_CONNECT_MS SB__DEFAULT_CONNECT_MS
#define DEFAULT_MAX_TRANSFERS 1024L
#define DEFAULT_KEEPALIVE_S 60L

struct sock {
    uv_poll_t poll; /* watches fd for curl */
    curl_socket_t fd;
    struct sb_upstream *u;
    struct sock *prev, *next; /* in u->socks, for shutdown */
};

enum ureq_state {
    UREQ_NEW,     /* being built, in no list */
    UREQ_QUEUED,  /* in u->waiting; no easy handle */
    UREQ_RUNNING, /* in u->running and in the multi */
    UREQ_DOOMED,  /* cancelled inside curl: in u->doomed until curl returns */
    UREQ_GONE,    /* in no list; freed by the timer's close callback */
};

/* A body with pieces in a spool file (a long prompt): curl pulls it through
 * read_body, memory pieces copied and file ranges read with pread, so it is
 * never joined in the heap. */
struct file_body {
    const struct sb_spool *spool;
    struct sb_slice parts[SB_UREQ_MAX_PARTS];
    int64_t foff[SB_UREQ_MAX_PARTS]; /* parts[i]'s offset in the file, or -1: memory */
    size_t nparts;
    uint64_t total; /* bytes in all parts */
    uint64_t pos;   /* bytes handed to curl so far (seek_body moves it back) */
};

struct ureq_list {
    struct sb_ureq *head, *tail;
    size_t n;
};

struct sb_ureq {
    enum sb__ureq_kind kind; /* SB__UREQ_CURL; first, see internal.h (h1.c has the other) */
    uv_timer_t timer;        /* queued: total deadline; receiving: idle; or a deferred resume */
    struct sb_upstream *u;
    CURL *easy;              /* set while RUNNING or DOOMED */
    struct curl_slist *hdrs; /* request headers */
    char *url;               /* owned copy */
    char method[16];         /* copied, validated token */
    const char *body;        /* borrowed until the end */
    size_t body_len;
    char *joined;            /* a body given in pieces, joined for curl (owned) */
    struct file_body *fb;    /* a body with pieces in a spool file: read_body's (owned) */
    long connect_ms, total_ms, idle_ms;
    struct sb_ureq_cbs cbs;
    void *ud;
    uint64_t t_start;   /* uv_now at sb_ureq_start */
    uint64_t last_rx;   /* uv_now when bytes last arrived */
    struct sb_buf head; /* header lines of the current block, freed after on_head */
    int status;         /* of the current header block */
    enum ureq_state state;
    bool head_done;               /* on_head delivered */
    bool head_too_big;            /* we aborted: header block over MAX_RESPONSE_HEAD */
    bool paused;                  /* on_data returned SB_UREQ_PAUSE, not resumed yet */
    bool resume_pending;          /* resumed inside curl: the timer unpauses */
    bool idle_armed;              /* the idle clock runs (first byte seen, idle_ms > 0) */
    bool cancelled;               /* the consumer hears nothing more */
    struct sb_ureq *prev, *next;  /* in the list of its state */
    char errbuf[CURL_ERROR_SIZE]; /* curl's words for a failure */
};

struct sb_upstream {
    uv_loop_t *loop;
    CURLM *multi;       /* made by the first curl transfer (multi_of); NULL once torn down */
    long max_conns, max_host_conns; /* for multi_of */
    uv_timer_t timer;   /* curl's timeout */
    struct sock *socks; /* sockets curl asked us to watch */
    struct ureq_list waiting, running, doomed;
    long max_transfers;
    CURL *pool[EASY_POOL]; /* idle easy handles */
    int npool;
    bool http2, verbose;
    long keepalive_s;   /* < 0 = off */
    bool env_proxy;     /* a *_proxy variable is set: let curl apply it */
    char *ca_file;      /* SWITCHBOARD_CA_FILE, NULL = system store */
    int in_curl;        /* depth of calls into curl that may call us back */
    bool closing;       /* sb_upstream_close was called */
    bool close_pending; /* ... from inside curl: tear down once it returns */
    bool torn_down;     /* curl is gone; waiting for close callbacks */
    size_t nclosing;    /* uv handles whose close callback has not run */
    void (*closed)(void *ud);
    void *closed_ud;
    struct sb_h1 *h1;                     /* the native pool for plain http:// (h1.c) */
    enum sb_ureq_transport env_transport; /* SWITCHBOARD_UPSTREAM, AUTO = unset */
};

static void on_timer(uv_timer_t *t);
static void start_waiting(struct sb_upstream *u);
static void teardown(struct sb_upstream *u);

/* ======================================================================
 * Lists: every request is in the list of its state (or none)
 * ==================================================================== */

static struct ureq_list *list_of(struct sb_upstream *u, enum ureq_state s)
{
    switch (s) {
    case UREQ_QUEUED:
        return &u->waiting;
    case UREQ_RUNNING:
        return &u->running;
    case UREQ_DOOMED:
        return &u->doomed;
    default:
        return NULL;
    }
}

static void list_push(struct ureq_list *l, struct sb_ureq *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_del(struct ureq_list *l, struct sb_ureq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

static void set_state(struct sb_ureq *r, enum ureq_state s)
{
    struct ureq_list *from = list_of(r->u, r->state), *to = list_of(r->u, s);
    if (from)
        list_del(from, r);
    if (to)
        list_push(to, r);
    r->state = s;
}

/* ======================================================================
 * Request lifetime
 * ==================================================================== */

/* A close callback ran; the last one after teardown frees u. */
static void release(struct sb_upstream *u)
{
    u->nclosing--;
    if (!u->torn_down || u->nclosing > 0)
        return;
    void (*done)(void *) = u->closed;
    void *ud = u->closed_ud;
    free(u->ca_file);
    free(u);
    if (done)
        done(ud);
}

static void ureq_closed(uv_handle_t *h)
{
    struct sb_ureq *r = h->data;
    struct sb_upstream *u = r->u;
    free(r);
    release(u);
}

/* Keeps a finished handle for the next request: saves its allocations. */
static void easy_recycle(struct sb_upstream *u, CURL *e)
{
    if (u->npool == EASY_POOL || u->closing) {
        curl_easy_cleanup(e);
        return;
    }
    /* Forget pointers into the request that is about to be freed. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    u->pool[u->npool++] = e;
}

/* Header lines hold credentials (Authorization, api-key): wiped before they
 * are freed. (curl's own copy in its send buffer is beyond our reach.) */
static void free_headers(struct curl_slist *l)
{
    for (struct curl_slist *it = l; it; it = it->next)
        sb_secret_wipe(it->data, strlen(it->data));
    curl_slist_free_all(l);
}

/* Takes r out of curl (closing an unfinished HTTP/1.1 connection) and out of
 * its list, and frees it once its timer is closed. No callback for r runs
 * after this. Never called inside curl for a request in the multi. */
static void ureq_destroy(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    if (r->easy) {
        curl_multi_remove_handle(u->multi, r->easy);
        if (r->fb) { /* a pooled handle must not call back into freed memory */
            curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, NULL);
            curl_easy_setopt(r->easy, CURLOPT_READDATA, NULL);
            curl_easy_setopt(r->easy, CURLOPT_SEEKFUNCTION, NULL);
            curl_easy_setopt(r->easy, CURLOPT_SEEKDATA, NULL);
        }
        easy_recycle(u, r->easy);
        r->easy = NULL;
    }
    set_state(r, UREQ_GONE);
    free_headers(r->hdrs);
    r->hdrs = NULL;
    sb_buf_free(&r->head);
    if (r->url)
        sb_secret_wipe(r->url, strlen(r->url)); /* may carry ?key= (query auth) */
    free(r->url);
    r->url = NULL;
    free(r->joined);
    r->joined = NULL;
    free(r->fb);
    r->fb = NULL;
    u->nclosing++;
    uv_close((uv_handle_t *)&r->timer, ureq_closed);
}

/* Ends r and tells the consumer, unless it cancelled or the client closes. */
static void finish(struct sb_ureq *r, sb_err rc, const struct sb_error *err)
{
    bool tell = !r->cancelled && !r->u->closing;
    sb_ureq_done_fn done = r->cbs.on_done;
    void *ud = r->ud;
    ureq_destroy(r);
    if (tell)
        done(ud, rc, err);
}

/* ======================================================================
 * Error messages: said once, at the failure, naming host:port (never the
 * URL: its query may carry a key)
 * ==================================================================== */

static void target_of(const struct sb_ureq *r, char *out, size_t cap)
{
    CURLU *h = curl_url();
    char *host = NULL, *port = NULL;
    if (h && curl_url_set(h, CURLUPART_URL, r->url, 0) == CURLUE_OK) {
        curl_url_get(h, CURLUPART_HOST, &host, 0);
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    }
    if (host && port)
        snprintf(out, cap, "%s:%s", host, port);
    else
        snprintf(out, cap, "the upstream");
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
}

/* curl says OPERATION_TIMEDOUT for both of its deadlines: the total one is
 * due when at least total_ms passed since the start (a few ms of clock
 * skew allowed), otherwise it was the connect (TCP + TLS) deadline. */
static sb_err timeout_error(const struct sb_ureq *r, const char *target, struct sb_error *err)
{
    uint64_t waited = uv_now(r->u->loop) - r->t_start;
    if (r->total_ms > 0 && waited + 5 >= (uint64_t)r->total_ms)
        return sb__ureq_timeout(err, 't', target, r->total_ms);
    return sb__ureq_timeout(err, 'c', target, r->connect_ms);
}

sb_err sb__ureq_timeout(struct sb_error *err, char which, const char *target, long ms)
{
    if (which == 't')
        return sb_fail(err, SB_E_UPSTREAM_TIMEOUT,
                       "upstream total timeout: no complete response from %s in %ld ms", target,
                       ms);
    if (which == 'i')
        return sb_fail(err, SB_E_UPSTREAM_TIMEOUT,
                       "upstream idle timeout: %s sent nothing for %ld ms", target, ms);
    return sb_fail(err, SB_E_UPSTREAM_TIMEOUT, "upstream connect to %s timed out after %ld ms",
                   target, ms);
}

static const struct {
    CURLcode cc;
    const char *what; /* "upstream <what> <host:port>: <curl's detail>" */
} curl_errs[] = {
    {CURLE_COULDNT_RESOLVE_HOST, "host not found (DNS) for"},
    {CURLE_SSL_CONNECT_ERROR, "TLS handshake failed with"},
    {CURLE_PEER_FAILED_VERIFICATION, "TLS certificate rejected for"},
    {CURLE_SEND_ERROR, "connection broke while sending to"},
    {CURLE_RECV_ERROR, "connection broke while receiving from"},
    {CURLE_GOT_NOTHING, "connection closed without a response by"},
    {CURLE_PARTIAL_FILE, "response cut short by"},
    {CURLE_WEIRD_SERVER_REPLY, "malformed HTTP response from"},
    {CURLE_HTTP2, "HTTP/2 error with"},
    {CURLE_HTTP2_STREAM, "HTTP/2 stream reset by"},
    {CURLE_UNSUPPORTED_PROTOCOL, "URL scheme (http/https only) refused for"},
    {CURLE_URL_MALFORMAT, "malformed URL for"},
};

/* Maps how curl ended r to our code and words. */
static sb_err result_of(const struct sb_ureq *r, CURLcode cc, struct sb_error *err)
{
    char target[300];
    long os_errno = 0;
    if (cc == CURLE_OK && r->head_done)
        return SB_OK;
    target_of(r, target, sizeof(target));
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_OK)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s ended without a response head", target);
    if (r->head_too_big)
        return sb_fail(err, SB_E_UPSTREAM, "upstream %s sent a response head over %d bytes", target,
                       MAX_RESPONSE_HEAD);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return timeout_error(r, target, err);
    if (cc == CURLE_COULDNT_CONNECT) {
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == ECONNREFUSED)
            return sb_fail(err, SB_E_UPSTREAM, "upstream connect to %s refused", target);
        return sb_fail(err, SB_E_UPSTREAM, "upstream connect to %s failed: %s", target, detail);
    }
    for (size_t i = 0; i < sizeof(curl_errs) / sizeof(curl_errs[0]); i++)
        if (curl_errs[i].cc == cc)
            return sb_fail(err, SB_E_UPSTREAM, "upstream %s %s: %s", curl_errs[i].what, target,
                           detail);
    return sb_fail(err, SB_E_UPSTREAM, "upstream request to %s failed: %s", target, detail);
}

/* ======================================================================
 * curl's callbacks for one transfer (curl is on the stack)
 * ==================================================================== */

static bool gone(const struct sb_ureq *r)
{
    return r->cancelled || r->u->closing;
}

/* Bytes arrived: the idle clock starts at the first and restarts at each. */
static void received(struct sb_ureq *r)
{
    r->last_rx = uv_now(r->u->loop);
    if (!r->idle_armed && r->idle_ms > 0) {
        r->idle_armed = true;
        uv_timer_start(&r->timer, on_timer, (uint64_t)r->idle_ms, 0);
    }
}

/* "HTTP/1.1 200 OK": a header block starts (again after a 1xx). */
static void head_begin(struct sb_ureq *r, const char *p, size_t len)
{
    const char *end = p + len, *q = memchr(p, ' ', len);
    int status = 0, digits = 0;
    for (q = q ? q + 1 : end; q < end && digits < 3 && *q >= '0' && *q <= '9'; q++, digits++)
        status = status * 10 + (*q - '0');
    r->status = status;
    sb_buf_reset(&r->head);
}

size_t sb__ureq_split_head(const char *p, size_t len, struct sb_kv *kv, size_t cap)
{
    const char *end = p + len;
    size_t n = 0;
    while (p < end && n < cap) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon) {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            kv[n++] = (struct sb_kv){{p, (size_t)(colon - p)}, {v, (size_t)(ve - v)}};
        }
        p = le + 1;
    }
    return n;
}

/* The blank line: a final (>= 200) head goes to the consumer, and its bytes
 * are freed at once (a stream may last minutes). */
static void head_end(struct sb_ureq *r)
{
    if (r->status < 200)
        return;
    r->head_done = true;
    size_t cap = 1;
    for (size_t i = 0; i < r->head.len; i++)
        cap += r->head.p[i] == '\n';
    struct sb_kv *kv = sb_xmalloc(cap * sizeof(*kv));
    size_t n = sb__ureq_split_head(r->head.p, r->head.len, kv, cap);
    if (r->cbs.on_head)
        r->cbs.on_head(r->ud, r->status, kv, n);
    free(kv);
    sb_buf_free(&r->head);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct sb_ureq *r = ud;
    size_t len = size * n;
    if (gone(r) || len == 0)
        return 0;
    received(r);
    if (r->head_done)
        return len; /* trailers after a chunked body: not delivered */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        head_begin(r, p, len);
    } else if (p[0] == '\r' || p[0] == '\n') {
        head_end(r);
    } else if (sb_buf_append(&r->head, p, len) != SB_OK) {
        r->head_too_big = true;
        return 0; /* curl aborts the transfer */
    }
    return gone(r) ? 0 : len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct sb_ureq *r = ud;
    size_t len = size * n;
    if (gone(r) || len == 0)
        return 0;
    received(r);
    int rc = r->cbs.on_data(r->ud, p, len);
    if (gone(r))
        return 0; /* cancelled from inside on_data: curl aborts (and closes) */
    if (rc == SB_UREQ_PAUSE) {
        r->paused = true; /* curl keeps these bytes and hands them again */
        return CURL_WRITEFUNC_PAUSE;
    }
    return len;
}

/* ======================================================================
 * curl <-> libuv plumbing
 * ==================================================================== */

/* Finished transfers: curl's verdict to the consumer. */
static void reap(struct sb_upstream *u)
{
    int left;
    while (!u->torn_down && u->multi) {
        CURLMsg *m = curl_multi_info_read(u->multi, &left);
        if (!m)
            break;
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode cc = m->data.result; /* m dies with curl_multi_remove_handle */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct sb_ureq *r = (struct sb_ureq *)(void *)priv;
        /* curl drops a removed handle's message; a recycled one has no owner. */
        if (!r || r->easy != m->easy_handle)
            continue;
        struct sb_error err = {0};
        sb_err rc = result_of(r, cc, &err);
        finish(r, rc, &err);
    }
}

/* curl has returned: do what the consumer asked for meanwhile. */
static void after_curl(struct sb_upstream *u)
{
    if (u->in_curl || u->torn_down)
        return;
    if (u->close_pending) {
        teardown(u);
        return;
    }
    reap(u);
    while (!u->torn_down && u->doomed.head)
        ureq_destroy(u->doomed.head);
    start_waiting(u);
}

static void socket_action(struct sb_upstream *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    after_curl(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
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
    /* Stopping now (not at close) lets a new socket reuse the fd at once. */
    uv_poll_stop(&s->poll);
    u->nclosing++;
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
 * Starting: the FIFO and curl's easy handles
 * ==================================================================== */

/* Options every request shares: set once per easy handle, kept across reuse. */
static CURL *easy_new(struct sb_upstream *u)
{
    CURL *e = curl_easy_init();
    if (!e) {
        fputs("fatal: out of memory (curl_easy_init)\n", stderr);
        abort();
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_VERBOSE, u->verbose ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (u->keepalive_s >= 0) {
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, u->keepalive_s);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, u->keepalive_s);
    }
    /* Without proxy variables in the environment (checked once at start),
     * say so: otherwise curl calls getenv() several times per request. */
    if (!u->env_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (u->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
    return e;
}

/* The method and body. A body is sent when there is one or the method is
 * POST; GET and HEAD without a body use curl's own verbs, anything else is
 * a custom request line over one of those. */
static size_t read_body(char *buf, size_t size, size_t nitems, void *ud)
{
    struct file_body *fb = ((struct sb_ureq *)ud)->fb;
    size_t want = size * nitems, got = 0;
    uint64_t at = 0; /* where parts[i] starts in the body */
    for (size_t i = 0; i < fb->nparts && got < want; at += fb->parts[i].len, i++) {
        uint64_t end = at + fb->parts[i].len;
        if (fb->pos >= end)
            continue;
        size_t in = (size_t)(fb->pos - at), take = (size_t)(end - fb->pos);
        take = take < want - got ? take : want - got;
        if (fb->foff[i] < 0) {
            memcpy(buf + got, fb->parts[i].p + in, take);
        } else {
            ssize_t k = sb_spool_read(fb->spool, buf + got, take, (uint64_t)fb->foff[i] + in);
            if (k <= 0)
                return CURL_READFUNC_ABORT; /* curl fails the transfer: "aborted by callback" */
            take = (size_t)k;
        }
        got += take;
        fb->pos += take;
        if (fb->pos < end)
            break; /* a short read: the rest on curl's next call */
    }
    return got;
}

/* curl rewinds a body it must send again (a reused connection that died). */
static int seek_body(void *ud, curl_off_t offset, int origin)
{
    struct file_body *fb = ((struct sb_ureq *)ud)->fb;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > fb->total)
        return CURL_SEEKFUNC_CANTSEEK;
    fb->pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static void easy_method(CURL *e, const struct sb_ureq *r)
{
    const char *m = r->method;
    bool with_body = r->body || r->fb || strcmp(m, "POST") == 0;
    bool head = !with_body && strcmp(m, "HEAD") == 0;
    if (r->fb) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->fb->total);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_body);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
    } else if (with_body) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L); /* after HTTPGET, which resets it */
    }
    bool native = head || strcmp(m, with_body ? "POST" : "GET") == 0;
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, native ? NULL : m);
}

/* HTTP/2 only where it can be had: over TLS, offered by ALPN. There a new
 * transfer waits (PIPEWAIT) for a connection being set up rather than open
 * one more, since it will most likely multiplex on it; it waits for the
 * TLS handshake, which settles the protocol, not for a response. Plain HTTP
 * is HTTP/1.1 and never waits: curl would otherwise park every other
 * transfer of a cold burst until the first response head arrived (measured:
 * 8 requests to an upstream answering in 400 ms took 850 ms from a fresh
 * gateway, against one upstream time; tests/integration/cold_burst.test.js). */
static void easy_protocol(CURL *e, const struct sb_ureq *r)
{
    bool h2 = r->u->http2 && strncasecmp(r->url, "https://", 8) == 0;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, h2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, h2 ? 1L : 0L);
}

/* Options of this request; each is set on every use so none leaks from the
 * handle's previous request. */
static void easy_setup(struct sb_ureq *r, long total_ms)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
    easy_protocol(e, r);
    easy_method(e, r);
}

/* The multi handle, made by the first transfer: creating it loads libcurl
 * (curl_load.c), which plain-HTTP upstreams never need. */
static CURLM *multi_of(struct sb_upstream *u)
{
    if (u->multi)
        return u->multi;
    u->multi = curl_multi_init();
    if (!u->multi) {
        fputs("fatal: out of memory (curl_multi_init)\n", stderr);
        abort();
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, u->max_conns);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, u->max_host_conns);
    /* Idle keep-alive connections kept for reuse. */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, u->max_conns > 0 ? u->max_conns : 1024L);
    return u->multi;
}

/* Hands a queued request to curl, with what is left of its total time. */
static void launch(struct sb_upstream *u, struct sb_ureq *r)
{
    long total = r->total_ms;
    uint64_t waited = uv_now(u->loop) - r->t_start;
    if (total > 0)
        total = waited >= (uint64_t)total ? 1 : total - (long)waited;
    uv_timer_stop(&r->timer); /* the queued deadline is curl's now */
    r->easy = u->npool ? u->pool[--u->npool] : easy_new(u);
    easy_setup(r, total);
    set_state(r, UREQ_RUNNING);
    /* It fails only out of memory or for a handle added twice or from inside
     * curl, which in_curl and the pool rule out: abort as for OOM. */
    CURLMcode mc = curl_multi_add_handle(multi_of(u), r->easy);
    if (mc != CURLM_OK) {
        fprintf(stderr, "fatal: curl_multi_add_handle: %s\n", curl_multi_strerror(mc));
        abort();
    }
}

static void start_waiting(struct sb_upstream *u)
{
    while (!u->in_curl && !u->closing && u->waiting.head &&
           (long)(u->running.n + u->doomed.n) < u->max_transfers)
        launch(u, u->waiting.head);
}

sb_err sb__ureq_check_spec(const struct sb_ureq_spec *s, const struct sb_ureq_cbs *cbs,
                           struct sb_error *err)
{
    if (!s->url || !*s->url || !s->method || !cbs->on_data || !cbs->on_done)
        return sb_fail(err, SB_E_INTERNAL, "upstream request without url, method or callbacks");
    if (s->nparts > SB_UREQ_MAX_PARTS || (s->nparts && s->body))
        return sb_fail(err, SB_E_INTERNAL, "upstream body in %zu pieces (and a whole one: %d)",
                       s->nparts, s->body != NULL);
    size_t mlen = strlen(s->method);
    bool ok = mlen > 0 && mlen < sizeof(((struct sb_ureq *)0)->method);
    for (size_t i = 0; ok && i < mlen; i++)
        ok = (s->method[i] >= 'A' && s->method[i] <= 'Z') || s->method[i] == '-';
    if (!ok)
        return sb_fail(err, SB_E_BAD_REQUEST, "upstream method '%.20s' is not a valid token",
                       s->method);
    for (size_t i = 0; i < s->nheaders; i++) {
        struct sb_slice nm = s->headers[i].name, v = s->headers[i].value;
        bool bad = nm.len == 0 || memchr(nm.p, ':', nm.len) || memchr(nm.p, ' ', nm.len);
        for (size_t j = 0; !bad && j < nm.len + v.len; j++) {
            char c = j < nm.len ? nm.p[j] : v.p[j - nm.len];
            bad = c == '\r' || c == '\n' || c == '\0';
        }
        if (bad)
            return sb_fail(err, SB_E_BAD_REQUEST, "upstream header '%.*s' is malformed",
                           (int)(nm.len > 40 ? 40 : nm.len), nm.p ? nm.p : "");
    }
    return SB_OK;
}

static struct curl_slist *build_headers(const struct sb_kv *h, size_t n)
{
    /* "Expect:" stops curl from waiting for 100-continue before big bodies. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    struct sb_buf line;
    sb_buf_init(&line, 0);
    for (size_t i = 0; l && i < n; i++) {
        sb_buf_reset(&line);
        sb_buf_append_slice(&line, h[i].name);
        /* "Name;" is curl's spelling of a header with an empty value. */
        if (h[i].value.len)
            sb_buf_append(&line, ": ", 2);
        else
            sb_buf_append_char(&line, ';');
        sb_buf_append_slice(&line, h[i].value);
        l = curl_slist_append(l, line.p);
    }
    if (line.p)
        sb_secret_wipe(line.p, line.cap);
    sb_buf_free(&line);
    if (!l) {
        fputs("fatal: out of memory (curl_slist_append)\n", stderr);
        abort();
    }
    return l;
}

/* The native pool takes plain http:// unless the provider or the
 * environment says curl; curl keeps https://, proxies, and URLs h1.c does
 * not send (userinfo). */
/* The pieces of a body as one heap buffer (owned); its length in *len. */
static char *join_parts(const struct sb_slice *parts, size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].len;
    char *out = sb_xmalloc(total ? total : 1);
    for (size_t i = 0, at = 0; i < n; at += parts[i].len, i++)
        if (parts[i].len)
            memcpy(out + at, parts[i].p, parts[i].len);
    *len = total;
    return out;
}

/* The body's pieces with their places in the spool file, or NULL when none
 * lies there (then curl gets one buffer, as before). */
static struct file_body *file_body(const struct sb_ureq_spec *s)
{
    if (!s->spool)
        return NULL; /* the common case: no long prompt */
    struct file_body fb = {.spool = s->spool};
    bool any = false;
    size_t n = s->body ? 1 : s->nparts;
    for (size_t i = 0; i < n; i++) {
        struct sb_slice p = s->body ? (struct sb_slice){s->body, s->body_len} : s->parts[i];
        uint64_t off;
        fb.parts[i] = p;
        fb.foff[i] = p.len && sb_spool_holds(s->spool, p.p, p.len, &off) ? (int64_t)off : -1;
        any |= fb.foff[i] >= 0;
        fb.total += p.len;
        fb.nparts++;
    }
    if (!any)
        return NULL;
    struct file_body *out = sb_xmalloc(sizeof(*out));
    *out = fb;
    return out;
}

static bool native(const struct sb_upstream *u, const struct sb_ureq_spec *spec)
{
    enum sb_ureq_transport t = u->env_transport ? u->env_transport : spec->transport;
    return t != SB_UREQ_CURL && !u->env_proxy && sb__h1_takes(spec->url);
}

struct sb_ureq *sb_ureq_start(struct sb_upstream *u, const struct sb_ureq_spec *spec,
                              const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err)
{
    if (u->closing) {
        sb_fail(err, SB_E_UNAVAILABLE, "upstream client is shutting down");
        return NULL;
    }
    if (native(u, spec))
        return sb__h1_start(u->h1, spec, cbs, ud, err);
    if (sb__ureq_check_spec(spec, cbs, err) != SB_OK)
        return NULL;
    struct sb_ureq *r = sb_xcalloc(1, sizeof(*r));
    r->kind = SB__UREQ_CURL;
    r->u = u;
    memcpy(r->method, spec->method, strlen(spec->method) + 1);
    r->url = sb_xstrdup(spec->url);
    r->hdrs = build_headers(spec->headers, spec->nheaders);
    r->body = spec->body;
    r->body_len = spec->body ? spec->body_len : 0;
    r->fb = file_body(spec);
    if (r->fb) /* a long prompt's file: read_body, never joined */
        r->body = NULL;
    else if (spec->nparts) /* curl takes one buffer */
        r->body = r->joined = join_parts(spec->parts, spec->nparts, &r->body_len);
    r->connect_ms = spec->connect_timeout_ms > 0 ? spec->connect_timeout_ms : DEFAULT_CONNECT_MS;
    r->total_ms = spec->total_timeout_ms > 0 ? spec->total_timeout_ms : 0;
    r->idle_ms = spec->idle_timeout_ms > 0 ? spec->idle_timeout_ms : 0;
    r->cbs = *cbs;
    r->ud = ud;
    r->t_start = uv_now(u->loop);
    sb_buf_init(&r->head, MAX_RESPONSE_HEAD);
    uv_timer_init(u->loop, &r->timer);
    r->timer.data = r;
    set_state(r, UREQ_QUEUED);
    start_waiting(u); /* launches r unless others wait first, or curl is on the stack */
    if (r->state == UREQ_QUEUED && r->total_ms > 0)
        uv_timer_start(&r->timer, on_timer, (uint64_t)r->total_ms, 0);
    return r;
}

/* ======================================================================
 * Pause, cancel, the request's timer
 * ==================================================================== */

static void unpause(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    r->paused = false;
    r->last_rx = uv_now(u->loop); /* time paused by the consumer is not silence */
    if (r->idle_armed)
        uv_timer_start(&r->timer, on_timer, (uint64_t)r->idle_ms, 0);
    u->in_curl++;
    curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may hand the held bytes to on_data here */
    u->in_curl--;
    after_curl(u);
}

void sb_ureq_resume(struct sb_ureq *r)
{
    if (r->kind == SB__UREQ_H1) {
        sb__h1_resume(r);
        return;
    }
    if (r->state != UREQ_RUNNING || !r->paused || r->resume_pending)
        return;
    if (r->u->in_curl) {
        /* curl_easy_pause would run another transfer's callbacks inside this
         * one's: do it from the loop instead. */
        r->resume_pending = true;
        uv_timer_start(&r->timer, on_timer, 0, 0);
        return;
    }
    unpause(r);
}

void sb_ureq_cancel(struct sb_ureq *r)
{
    if (r->kind == SB__UREQ_H1) {
        sb__h1_cancel(r);
        return;
    }
    struct sb_upstream *u = r->u;
    if (r->cancelled || r->state == UREQ_GONE)
        return;
    r->cancelled = true;
    if (r->state == UREQ_RUNNING && u->in_curl) {
        set_state(r, UREQ_DOOMED); /* curl_multi_remove_handle once curl returns */
        return;
    }
    ureq_destroy(r);
    start_waiting(u);
}

/* The idle deadline is due: silence, or time to re-arm for the rest. */
static void idle_check(struct sb_ureq *r)
{
    struct sb_upstream *u = r->u;
    uint64_t quiet = uv_now(u->loop) - r->last_rx;
    if (quiet < (uint64_t)r->idle_ms) {
        uv_timer_start(&r->timer, on_timer, (uint64_t)r->idle_ms - quiet, 0);
        return;
    }
    char target[300];
    struct sb_error err = {0};
    target_of(r, target, sizeof(target));
    sb__ureq_timeout(&err, 'i', target, r->idle_ms);
    finish(r, SB_E_UPSTREAM_TIMEOUT, &err);
}

static void on_timer(uv_timer_t *t)
{
    struct sb_ureq *r = t->data;
    struct sb_upstream *u = r->u;
    struct sb_error err = {0};
    if (r->resume_pending) {
        r->resume_pending = false;
        unpause(r);
    } else if (r->state == UREQ_QUEUED) {
        sb_fail(&err, SB_E_UPSTREAM_TIMEOUT,
                "upstream total timeout: %ld ms passed while queued behind %zu transfers",
                r->total_ms, u->running.n);
        finish(r, SB_E_UPSTREAM_TIMEOUT, &err);
    } else if (r->state == UREQ_RUNNING && r->idle_armed && !r->paused) {
        idle_check(r);
    }
    start_waiting(u);
}

/* ======================================================================
 * Create and close
 * ==================================================================== */

static void read_env(struct sb_upstream *u)
{
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
    /* Tests run the whole suite on each path (scripts/test.sh). */
    const char *t = getenv("SWITCHBOARD_UPSTREAM");
    if (t && strcmp(t, "curl") == 0)
        u->env_transport = SB_UREQ_CURL;
    else if (t && strcmp(t, "native") == 0)
        u->env_transport = SB_UREQ_NATIVE;
}

struct sb_upstream *sb_upstream_create(uv_loop_t *loop, const struct sb_upstream_opts *o)
{
    struct sb_upstream *u = sb_xcalloc(1, sizeof(*u));
    u->loop = loop;
    u->max_transfers = o->max_transfers > 0 ? o->max_transfers : DEFAULT_MAX_TRANSFERS;
    u->http2 = o->http2;
    u->verbose = o->verbose;
    u->keepalive_s = o->tcp_keepalive_s == 0 ? DEFAULT_KEEPALIVE_S : o->tcp_keepalive_s;
    read_env(u);
    u->max_conns = o->max_connections;
    u->max_host_conns = o->max_host_connections;
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->h1 = sb__h1_create(loop, u->keepalive_s);
    return u;
}

static void timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void h1_closed(void *ud)
{
    release(ud);
}

/* Drops every request without a word, then curl, then our handles. */
static void teardown(struct sb_upstream *u)
{
    struct ureq_list *lists[] = {&u->waiting, &u->running, &u->doomed};
    u->close_pending = false;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        while (lists[i]->head)
            ureq_destroy(lists[i]->head);
    while (u->npool)
        curl_easy_cleanup(u->pool[--u->npool]);
    if (u->multi)
        curl_multi_cleanup(u->multi); /* closes cached connections, reporting their sockets */
    u->multi = NULL;
    u->torn_down = true;
    while (u->socks)
        sock_drop(u, u->socks);
    u->nclosing += 2;
    uv_close((uv_handle_t *)&u->timer, timer_closed);
    sb__h1_close(u->h1, h1_closed, u);
}

void sb_upstream_close(struct sb_upstream *u, void (*done)(void *ud), void *ud)
{
    if (u->closing)
        return;
    u->closing = true; /* from now on no consumer callback runs */
    u->closed = done;
    u->closed_ud = ud;
    if (u->in_curl)
        u->close_pending = true; /* after_curl tears down */
    else
        teardown(u);
}

struct sb_slice sb_ureq_header(const struct sb_kv *h, size_t n, const char *name)
{
    struct sb_slice want = sb_slice_cstr(name);
    for (size_t i = 0; i < n; i++)
        if (sb_slice_caseeq(h[i].name, want))
            return h[i].value;
    return SB_SLICE_NULL;
}

size_t sb_upstream_active(const struct sb_upstream *u)
{
    return u->running.n + u->doomed.n + sb__h1_active(u->h1);
}

size_t sb_upstream_queued(const struct sb_upstream *u)
{
    return u->waiting.n;
}
