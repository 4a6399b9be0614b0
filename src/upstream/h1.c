/* SPDX-License-Identifier: MIT */
/*
 * h1.c - the native upstream path: HTTP/1.1 over plain TCP on the worker's
 * libuv loop, with a keep-alive pool per loop and host:port. It serves
 * http:// requests whose provider asks for it (client.c dispatches); curl
 * keeps https://, HTTP/2, proxies and anything else. It exists because
 * curl's per-transfer machinery (easy-handle state, two poll(2) liveness
 * checks per reuse, its header parser, malloc under all of it) cost about
 * as much CPU as the rest of a 1 KB request (DESIGN §1.6, §7).
 *
 * A request owns one uv_timer (connect, total and idle deadlines, lazily
 * re-armed: a chunk only stores its time) and, while it runs, one
 * connection. Connections are TCP handles; an idle one keeps reading, so a
 * server's close (or stray bytes) is noticed at no cost and the connection
 * dropped, instead of a liveness poll per reuse.
 *
 * Lifetime: memory is freed only in close callbacks (libuv's rule), so a
 * consumer may cancel, resume, start or close everything from inside its
 * callbacks; code on the stack checks `dead` after each callback and stops.
 * Response framing is h1_parse.c, which knows nothing of sockets.
 *
 * A body with pieces in a spool file (a long prompt, core/spool.h) is sent
 * by pump(): memory pieces with uv_try_write, file ranges with sendfile(2)
 * straight to the socket, and when the socket is full one chunk read from
 * the file goes through libuv's write queue, whose callback pumps on. Its
 * bytes never pass through the heap whole.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>

#include "core/alloc.h"
#include "crypto/secret.h"
#include "upstream/internal.h"

/* An idle connection is closed after IDLE_MAX_MS: long enough to carry
 * bursts, short enough not to pin a server's worker slots, and shorter than
 * nginx's default keep-alive (75 s). A server that closes sooner (uvicorn,
 * behind vLLM, after 5 s) is seen closing (the idle connection reads EOF)
 * and dropped; the one race left, a close in flight as we reuse, is the
 * retry-on-stale rule below. */
#define IDLE_MAX_MS 30000
#define SWEEP_MS 5000
#define IDLE_PER_HOST 256    /* idle connections kept per host:port */
#define READ_BUF (64 * 1024) /* the loop's one read buffer */
#define MAX_HEAD_OUT (256 * 1024)
#define FILE_CHUNK (64 * 1024) /* a file range queued when the socket is full */

struct host {
    struct host *next;        /* in h->hosts */
    struct conn *idle, *tail; /* idle connections, most recently used first */
    size_t nidle;
    char key[]; /* "host:port" */
};

struct conn {
    uv_tcp_t tcp; /* data = this */
    uv_connect_t connect;
    uv_write_t write;
    struct sb_h1 *h;
    struct host *host;
    struct h1req *req;        /* the request on it; NULL when idle */
    struct conn *prev, *next; /* in host->idle */
    uint64_t idle_since;      /* uv_now when it went idle */
    bool idle;                /* in host->idle */
    bool reused;              /* it carried a request before this one */
    bool writing;             /* a uv_write is pending */
    bool closing;             /* uv_close was called */
    char *fbuf; /* pump: a file chunk being written (FILE_CHUNK), until the body is sent */
};

struct lookup {
    uv_getaddrinfo_t gai;
    struct h1req *r; /* NULL once r gave up waiting */
};

struct h1req {
    enum sb__ureq_kind kind; /* SB__UREQ_H1; first, see internal.h */
    uv_timer_t timer;        /* the earliest of the three deadlines */
    struct sb_h1 *h;
    struct host *host;
    struct conn *c;                /* while connecting or exchanging */
    struct lookup *lk;             /* while resolving */
    struct addrinfo *ai, *ai_next; /* resolved addresses, the next to try */
    char *name;                    /* host name or literal (no brackets) */
    int port;
    char tgt[280];         /* "host:port" for Host and messages (never the URL) */
    struct sb_error *late; /* a failure while starting, told from the timer */
    struct sb_buf out;     /* the request head (credentials: wiped) */
    /* The head, then the body's pieces (borrowed until on_done or cancel): one writev. */
    uv_buf_t bufs[1 + SB_UREQ_MAX_PARTS];
    unsigned nbufs;
    /* A body with pieces in the spec's spool file goes out through pump(). */
    const struct sb_spool *spool;
    int64_t foff[1 + SB_UREQ_MAX_PARTS]; /* bufs[i]'s offset in the file, or -1: memory */
    bool from_file;                      /* some piece is in the file */
    unsigned wi;                         /* pump: the piece being sent */
    size_t wdone;                        /* pump: its bytes already sent */
    size_t wqueued;                      /* pump: bytes in the queued uv_write */
    struct sb_ureq_cbs cbs;
    void *ud;
    long connect_ms, total_ms, idle_ms;
    uint64_t t_start, t_connect, last_rx;
    struct sb__h1_resp resp;
    struct sb_buf stash; /* paused: held body bytes, then unparsed bytes */
    size_t stash_held;   /* the first stash_held bytes go to on_data again */
    size_t stash_parse;  /* parsing resumes at this offset */
    bool connecting;     /* connect deadline applies */
    bool rx;             /* a response byte arrived on this attempt */
    bool idle_armed, paused, retried, head_req;
    bool starting;             /* inside sb__h1_start: failures wait for the timer */
    bool dead;                 /* finished or cancelled: no callback runs */
    struct h1req *prev, *next; /* in h->reqs */
};

struct sb_h1 {
    uv_loop_t *loop;
    uv_timer_t sweep; /* drops connections idle too long */
    struct host *hosts;
    struct h1req *reqs; /* every live request */
    size_t nreqs, nconns, nidle;
    long keepalive_s;
    size_t nhandles; /* open uv handles; the last close frees h when closing */
    bool closing;
    void (*closed)(void *ud);
    void *closed_ud;
    char rbuf[READ_BUF]; /* every read lands here; a paused request copies what it keeps */
};

static void dispatch(struct h1req *r);
static void parse(struct h1req *r, const char *p, size_t n);
static int r_on_head(void *ud, int status, const struct sb_kv *kv, size_t n);
static int r_on_data(void *ud, const char *p, size_t n);
static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ======================================================================
 * Handles and their close callbacks
 * ==================================================================== */

static void h_release(struct sb_h1 *h)
{
    if (--h->nhandles > 0 || !h->closing)
        return;
    while (h->hosts) {
        struct host *next = h->hosts->next;
        free(h->hosts);
        h->hosts = next;
    }
    void (*done)(void *) = h->closed;
    void *ud = h->closed_ud;
    free(h);
    if (done)
        done(ud);
}

static void conn_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    struct sb_h1 *h = c->h;
    free(c->fbuf);
    free(c);
    h_release(h);
}

static void idle_del(struct conn *c)
{
    struct host *ho = c->host;
    if (c->prev)
        c->prev->next = c->next;
    else
        ho->idle = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        ho->tail = c->prev;
    c->prev = c->next = NULL;
    c->idle = false;
    ho->nidle--;
    c->h->nidle--;
}

/* Closing a connection that carries a request stops the upstream's work. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    if (c->idle)
        idle_del(c);
    c->closing = true;
    c->h->nconns--;
    if (c->req)
        c->req->c = NULL;
    c->req = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void req_closed(uv_handle_t *hd)
{
    struct h1req *r = hd->data;
    struct sb_h1 *h = r->h;
    free(r);
    h_release(h);
}

/* Takes r out of everything (closing an unfinished connection); its memory
 * goes with its timer's close callback. No callback for r runs after this. */
static void destroy(struct h1req *r)
{
    struct sb_h1 *h = r->h;
    r->dead = true;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->nreqs--;
    if (r->c)
        conn_close(r->c);
    if (r->lk) {
        r->lk->r = NULL; /* its callback frees it */
        uv_cancel((uv_req_t *)&r->lk->gai);
        r->lk = NULL;
    }
    if (r->ai)
        uv_freeaddrinfo(r->ai);
    if (r->out.p)
        sb_secret_wipe(r->out.p, r->out.len); /* Authorization, api-key */
    sb_buf_free(&r->out);
    sb_buf_free(&r->stash);
    sb__h1_resp_free(&r->resp);
    free(r->name);
    free(r->late);
    r->late = NULL;
    uv_close((uv_handle_t *)&r->timer, req_closed);
}

/* Ends r and tells the consumer, unless it cancelled or the pool closes. */
static void on_timer(uv_timer_t *t);

static void finish(struct h1req *r, sb_err rc, const struct sb_error *err)
{
    if (r->starting) { /* sb_ureq_start returns first; no callback inside it */
        r->late = sb_xcalloc(1, sizeof(*r->late));
        if (err)
            *r->late = *err;
        r->late->code = rc;
        r->connecting = false;
        uv_timer_start(&r->timer, on_timer, 0, 0);
        return;
    }
    bool tell = !r->dead && !r->h->closing;
    sb_ureq_done_fn done = r->cbs.on_done;
    void *ud = r->ud;
    destroy(r);
    if (tell)
        done(ud, rc, err);
}

/* finish() with "upstream <what> <host:port>[: detail]". */
static void fail(struct h1req *r, const char *what, const char *detail)
{
    struct sb_error err = {0};
    if (detail)
        sb_fail(&err, SB_E_UPSTREAM, "upstream %s %s: %s", what, r->tgt, detail);
    else
        sb_fail(&err, SB_E_UPSTREAM, "upstream %s %s", what, r->tgt);
    finish(r, SB_E_UPSTREAM, &err);
}

/* ======================================================================
 * Deadlines: one timer, armed for the earliest that applies
 * ==================================================================== */

/* Which deadline is earliest ('c'onnect, 't'otal, 'i'dle, 0 = none) and when. */
static char next_deadline(const struct h1req *r, uint64_t *due)
{
    char which = 0;
    *due = UINT64_MAX;
    if (r->connecting && r->t_connect + (uint64_t)r->connect_ms < *due) {
        *due = r->t_connect + (uint64_t)r->connect_ms;
        which = 'c';
    }
    if (r->total_ms > 0 && r->t_start + (uint64_t)r->total_ms < *due) {
        *due = r->t_start + (uint64_t)r->total_ms;
        which = 't';
    }
    if (r->idle_armed && !r->paused && r->last_rx + (uint64_t)r->idle_ms < *due) {
        *due = r->last_rx + (uint64_t)r->idle_ms;
        which = 'i';
    }
    return which;
}

static void arm(struct h1req *r)
{
    uint64_t due, now = uv_now(r->h->loop);
    if (!next_deadline(r, &due)) {
        uv_timer_stop(&r->timer);
        return;
    }
    uv_timer_start(&r->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct h1req *r = t->data;
    uint64_t due;
    if (r->late) {
        struct sb_error *late = r->late;
        r->late = NULL;
        finish(r, late->code, late);
        free(late);
        return;
    }
    char which = next_deadline(r, &due);
    if (!which || due > uv_now(r->h->loop)) {
        arm(r); /* the idle clock moved on since the timer was set */
        return;
    }
    struct sb_error err = {0};
    long ms = which == 'c' ? r->connect_ms : which == 't' ? r->total_ms : r->idle_ms;
    sb__ureq_timeout(&err, which, r->tgt, ms);
    finish(r, SB_E_UPSTREAM_TIMEOUT, &err);
}

/* ======================================================================
 * The pool: LIFO per host:port, bounded in count and in idle time
 * ==================================================================== */

static void on_sweep(uv_timer_t *t)
{
    struct sb_h1 *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (struct host *ho = h->hosts; ho; ho = ho->next)
        while (ho->tail && now - ho->tail->idle_since >= IDLE_MAX_MS)
            conn_close(ho->tail);
    if (h->nidle == 0)
        uv_timer_stop(&h->sweep);
}

static void pool_put(struct conn *c)
{
    struct host *ho = c->host;
    struct sb_h1 *h = c->h;
    c->req = NULL;
    c->reused = true;
    c->idle = true;
    c->idle_since = uv_now(h->loop);
    c->prev = NULL;
    c->next = ho->idle;
    if (ho->idle)
        ho->idle->prev = c;
    else
        ho->tail = c;
    ho->idle = c;
    ho->nidle++;
    h->nidle++;
    /* Reading, to see a server's close: a request that paused and finished
     * on resume left it stopped. */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (ho->nidle > IDLE_PER_HOST)
        conn_close(ho->tail);
    if (!uv_is_active((uv_handle_t *)&h->sweep))
        uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

static struct host *host_get(struct sb_h1 *h, const char *key)
{
    for (struct host *ho = h->hosts; ho; ho = ho->next)
        if (strcmp(ho->key, key) == 0)
            return ho;
    size_t len = strlen(key) + 1;
    struct host *ho = sb_xcalloc(1, sizeof(*ho) + len);
    memcpy(ho->key, key, len);
    ho->next = h->hosts;
    h->hosts = ho;
    return ho;
}

/* ======================================================================
 * Receiving
 * ==================================================================== */

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    buf->base = c->h->rbuf;
    buf->len = READ_BUF;
}

/* The final response is complete: the connection goes back to the pool
 * (before on_done, so a request started there reuses it) or is closed. */
static void complete(struct h1req *r, bool reusable)
{
    struct conn *c = r->c;
    r->c = NULL;
    if (c) {
        if (reusable && !c->writing && !r->h->closing && sb__h1_resp_keep_alive(&r->resp))
            pool_put(c);
        else
            conn_close(c);
    }
    finish(r, SB_OK, NULL);
}

/* A reused connection failed before any response byte: the server closed it
 * as we reused it (its keep-alive close crossed our request). Once, on a
 * fresh connection; see DESIGN §1.6 for why that is safe. */
static bool retry(struct h1req *r)
{
    if (r->rx || r->retried || !r->c || !r->c->reused)
        return false;
    r->retried = true;
    conn_close(r->c);
    sb__h1_resp_free(&r->resp);
    sb__h1_resp_init(&r->resp, r->head_req);
    r->resp.on_head = r_on_head;
    r->resp.on_data = r_on_data;
    r->resp.ud = r;
    dispatch(r);
    return true;
}

static void stash(struct h1req *r, const char *p, size_t n, size_t used)
{
    const char *from = r->resp.held_p;
    sb_buf_reset(&r->stash);
    if (sb_buf_append(&r->stash, from, (size_t)(p + n - from)) != SB_OK)
        abort(); /* unbounded buffer: fails only past SIZE_MAX */
    r->stash_held = r->resp.held;
    r->stash_parse = (size_t)(p + used - from);
    r->paused = true;
    if (r->c)
        uv_read_stop((uv_stream_t *)&r->c->tcp);
    arm(r); /* time paused is not silence */
}

static void parse(struct h1req *r, const char *p, size_t n)
{
    size_t used = 0;
    switch (sb__h1_resp_feed(&r->resp, p, n, &used)) {
    case SB__H1_MORE:
    case SB__H1_STOP:
        break;
    case SB__H1_PAUSED:
        stash(r, p, n, used);
        break;
    case SB__H1_DONE:
        complete(r, used == n);
        break;
    case SB__H1_ERROR:
        if (r->resp.why && strcmp(r->resp.why, SB__HEAD_TOO_BIG) == 0)
            fail(r, "response head over 64 KiB from", NULL);
        else
            fail(r, "malformed HTTP response from", r->resp.why);
        break;
    }
}

/* EOF or a read error on the request's connection. */
static void ended(struct h1req *r, ssize_t nread)
{
    if (retry(r))
        return;
    if (nread != UV_EOF) {
        fail(r, "connection broke while receiving from", uv_strerror((int)nread));
        return;
    }
    enum sb__h1_rc rc = sb__h1_resp_eof(&r->resp);
    if (rc == SB__H1_DONE)
        complete(r, false);
    else if (rc == SB__H1_STOP)
        return;
    else if (!r->resp.got_bytes)
        fail(r, "connection closed without a response by", NULL);
    else if (!r->resp.head_done)
        fail(r, "malformed HTTP response from", "closed inside the head");
    else
        fail(r, "response cut short by", NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct h1req *r = c->req;
    if (nread == 0 || c->closing)
        return;
    if (!r) { /* idle: the server closed it, or sent what nobody asked for */
        conn_close(c);
        return;
    }
    if (nread < 0) {
        ended(r, nread);
        return;
    }
    r->rx = true;
    r->last_rx = uv_now(r->h->loop);
    if (!r->idle_armed && r->idle_ms > 0) {
        r->idle_armed = true;
        arm(r);
    }
    parse(r, buf->base, (size_t)nread);
}

/* ======================================================================
 * Sending and connecting
 * ==================================================================== */

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = false;
    if (c->closing || !c->req || status >= 0)
        return;
    struct h1req *r = c->req;
    if (!retry(r))
        fail(r, "connection broke while sending to", uv_strerror(status));
}

static void broke_sending(struct h1req *r, int rc)
{
    if (!retry(r))
        fail(r, "connection broke while sending to", uv_strerror(rc));
}

static void pump(struct h1req *r);

static void pump_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = false;
    if (c->closing || !c->req)
        return;
    struct h1req *r = c->req;
    if (status < 0) {
        broke_sending(r, status);
        return;
    }
    r->wdone += r->wqueued;
    if (r->wdone == r->bufs[r->wi].len) {
        r->wi++;
        r->wdone = 0;
    }
    pump(r);
}

/* Sends bufs[wi..] from wdone on, for a body with pieces in the spool file:
 * straight to the socket (uv_try_write, sendfile) until it is full, then one
 * chunk through libuv's queue (a file range read into c->fbuf: at most
 * FILE_CHUNK bytes in memory per connection), and pump_written goes on.
 * c->writing stays set until the last byte left: an answer that ends first
 * closes the connection instead of pooling it, as in send_on. */
static void pump(struct h1req *r)
{
    struct conn *c = r->c;
    uv_os_fd_t sock = -1;
    uv_fileno((uv_handle_t *)&c->tcp, &sock);
    c->writing = true;
    while (r->wi < r->nbufs) {
        uv_buf_t b = r->bufs[r->wi];
        size_t left = b.len - r->wdone;
        ssize_t k;
        if (r->foff[r->wi] < 0) {
            uv_buf_t one = uv_buf_init(b.base + r->wdone, (unsigned)left);
            k = uv_try_write((uv_stream_t *)&c->tcp, &one, 1);
        } else {
            off_t off = (off_t)r->foff[r->wi] + (off_t)r->wdone;
            k = sendfile(sock, sb_spool_fd(r->spool), &off, left);
            if (k < 0)
                k = errno == EAGAIN ? UV_EAGAIN : -errno;
            if (k == 0) {
                fail(r, "request body's file ended early for", NULL);
                return;
            }
        }
        if (k > 0) {
            r->wdone += (size_t)k;
            if (r->wdone == b.len) {
                r->wi++;
                r->wdone = 0;
            }
            continue;
        }
        if (k != UV_EAGAIN) {
            c->writing = false;
            broke_sending(r, (int)k);
            return;
        }
        uv_buf_t q = uv_buf_init(b.base + r->wdone, (unsigned)left);
        if (r->foff[r->wi] >= 0) {
            if (!c->fbuf)
                c->fbuf = sb_xmalloc(FILE_CHUNK);
            ssize_t got = sb_spool_read(r->spool, c->fbuf, left < FILE_CHUNK ? left : FILE_CHUNK,
                                        (uint64_t)r->foff[r->wi] + r->wdone);
            if (got <= 0) {
                fail(r, "request body's file unreadable for", got < 0 ? strerror((int)-got) : NULL);
                return;
            }
            q = uv_buf_init(c->fbuf, (unsigned)got);
        }
        r->wqueued = q.len;
        c->write.data = c;
        int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &q, 1, pump_written);
        if (rc < 0) {
            c->writing = false;
            broke_sending(r, rc);
        }
        return;
    }
    c->writing = false;
    free(c->fbuf); /* nothing queued now; a pooled connection keeps no 64 KiB */
    c->fbuf = NULL;
}

static void send_on(struct h1req *r, struct conn *c)
{
    r->bufs[0] = uv_buf_init(r->out.p, (unsigned)r->out.len);
    r->c = c;
    c->req = r;
    c->write.data = c;
    if (r->from_file) {
        r->wi = 0;
        r->wdone = 0;
        pump(r);
        return;
    }
    /* Most requests fit the socket's buffer: written here, without libuv's
     * write queue, whose drain costs an epoll_ctl on every request. */
    int rc = uv_try_write((uv_stream_t *)&c->tcp, r->bufs, r->nbufs);
    size_t done = rc > 0 ? (size_t)rc : 0;
    unsigned i = 0;
    while (i < r->nbufs && done >= r->bufs[i].len)
        done -= r->bufs[i++].len;
    if (i == r->nbufs)
        return;
    if (rc < 0 && rc != UV_EAGAIN) {
        if (!retry(r))
            fail(r, "connection broke while sending to", uv_strerror(rc));
        return;
    }
    /* The rest, queued (libuv copies the array; the bytes stay ours). */
    uv_buf_t rest[1 + SB_UREQ_MAX_PARTS];
    unsigned n = 0;
    for (; i < r->nbufs; i++, done = 0)
        rest[n++] = uv_buf_init(r->bufs[i].base + done, r->bufs[i].len - (unsigned)done);
    c->writing = true;
    rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, rest, n, on_write);
    if (rc < 0) {
        c->writing = false;
        if (!retry(r))
            fail(r, "connection broke while sending to", uv_strerror(rc));
    }
}

static void try_next(struct h1req *r, int last);

static void on_connect(uv_connect_t *cr, int status)
{
    struct conn *c = cr->data;
    struct h1req *r = c->req;
    if (c->closing || !r)
        return;
    if (status < 0) {
        conn_close(c);
        try_next(r, status);
        return;
    }
    r->connecting = false;
    arm(r);
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->h->keepalive_s > 0)
        uv_tcp_keepalive(&c->tcp, 1, (unsigned)c->h->keepalive_s);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_on(r, c);
}

static int connect_to(struct h1req *r, const struct sockaddr *sa)
{
    struct sb_h1 *h = r->h;
    struct conn *c = sb_xcalloc(1, sizeof(*c));
    c->h = h;
    c->host = r->host;
    uv_tcp_init(h->loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    h->nhandles++;
    h->nconns++;
    c->req = r;
    r->c = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, sa, on_connect);
    if (rc < 0)
        conn_close(c);
    return rc;
}

/* The next resolved address, or the error of the last one. */
static void try_next(struct h1req *r, int last)
{
    while (r->ai_next) {
        struct addrinfo *a = r->ai_next;
        r->ai_next = a->ai_next;
        last = connect_to(r, a->ai_addr);
        if (last == 0)
            return;
    }
    if (last == UV_ECONNREFUSED) {
        struct sb_error err = {0};
        sb_fail(&err, SB_E_UPSTREAM, "upstream connect to %s refused", r->tgt);
        finish(r, SB_E_UPSTREAM, &err);
    } else {
        fail(r, "connect failed to", uv_strerror(last));
    }
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct lookup *lk = (struct lookup *)g;
    struct h1req *r = lk->r;
    free(lk);
    if (!r) {
        uv_freeaddrinfo(res);
        return;
    }
    r->lk = NULL;
    if (status < 0) {
        fail(r, "host not found (DNS) for", uv_strerror(status));
        return;
    }
    r->ai = r->ai_next = res;
    try_next(r, UV_EAI_NONAME);
}

/* A fresh connection: an IP literal directly, a name through the resolver. */
static void open_conn(struct h1req *r)
{
    struct sockaddr_storage ss;
    char port[8];
    r->connecting = true;
    r->t_connect = uv_now(r->h->loop);
    arm(r);
    if (uv_ip4_addr(r->name, r->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(r->name, r->port, (struct sockaddr_in6 *)&ss) == 0) {
        int rc = connect_to(r, (struct sockaddr *)&ss);
        if (rc < 0)
            try_next(r, rc);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct lookup *lk = sb_xcalloc(1, sizeof(*lk));
    lk->r = r;
    snprintf(port, sizeof(port), "%d", r->port);
    int rc = uv_getaddrinfo(r->h->loop, &lk->gai, on_resolved, r->name, port, &hints);
    if (rc < 0) {
        free(lk);
        fail(r, "host not found (DNS) for", uv_strerror(rc));
        return;
    }
    r->lk = lk;
}

/* An idle connection if there is one (the most recently used: the likeliest
 * to be alive, and it lets the oldest age out), else a new one. */
static void dispatch(struct h1req *r)
{
    struct conn *c = r->retried ? NULL : r->host->idle;
    if (!c) {
        open_conn(r);
        return;
    }
    idle_del(c);
    send_on(r, c);
}

/* ======================================================================
 * Starting: the URL, the request head
 * ==================================================================== */

/* http://host[:port][/path][?query] into name (owned; not when NULL), port
 * and the request target.
 * Userinfo, other schemes and bytes a request line cannot carry are
 * refused here; sb__h1_takes() sends those URLs to curl. */
static bool split_url(const char *url, char **name, int *port, const char **path)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7, *end = a + strcspn(a, "/?#");
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return false;
    if (memchr(a, '@', (size_t)(end - a)))
        return false;
    const char *hs = a, *he, *colon;
    if (*a == '[') {
        he = memchr(a, ']', (size_t)(end - a));
        if (!he)
            return false;
        hs = a + 1;
        colon = he + 1 < end && he[1] == ':' ? he + 1 : NULL;
        if (he + 1 < end && !colon)
            return false;
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
        he = colon ? colon : end;
    }
    long p = 80;
    if (colon) {
        char *stop = NULL;
        p = strtol(colon + 1, &stop, 10);
        if (stop != end || colon + 1 == end || p <= 0 || p > 65535)
            return false;
    }
    if (he == hs)
        return false;
    if (!name)
        return true;
    *name = sb_xstrndup(hs, (size_t)(he - hs));
    *port = (int)p;
    *path = end;
    return true;
}

bool sb__h1_takes(const char *url)
{
    int port;
    const char *path;
    return url && split_url(url, NULL, &port, &path);
}

static bool has_header(const struct sb_ureq_spec *s, const char *name)
{
    return sb_ureq_header(s->headers, s->nheaders, name).p != NULL;
}

static size_t body_len(const struct sb_ureq_spec *s)
{
    size_t n = s->body ? s->body_len : 0;
    for (size_t i = 0; i < s->nparts; i++)
        n += s->parts[i].len;
    return n;
}

/* The body's pieces after the head's place in r->bufs (empty ones left out),
 * each with its offset in the spool file when it lies there. */
static void set_body(struct h1req *r, const struct sb_ureq_spec *s)
{
    r->nbufs = 1;
    r->foff[0] = -1;
    r->spool = s->spool;
    size_t n = s->body ? 1 : s->nparts;
    for (size_t i = 0; i < n; i++) {
        struct sb_slice p = s->body ? (struct sb_slice){s->body, s->body_len} : s->parts[i];
        uint64_t off;
        if (!p.len)
            continue;
        r->foff[r->nbufs] = sb_spool_holds(s->spool, p.p, p.len, &off) ? (int64_t)off : -1;
        r->from_file |= r->foff[r->nbufs] >= 0;
        r->bufs[r->nbufs++] = uv_buf_init((char *)p.p, (unsigned)p.len);
    }
}

/* "METHOD /path HTTP/1.1", Host, Accept (as curl sends them unless given),
 * the spec's headers, Content-Length: one buffer, sent with the body. */
static void build_head(struct h1req *r, const struct sb_ureq_spec *s, const char *path)
{
    struct sb_buf *o = &r->out;
    size_t plen = strcspn(path, "#");
    bool with_body = s->body || s->nparts || strcmp(s->method, "POST") == 0;
    size_t want = 128 + strlen(path) + strlen(r->tgt);
    for (size_t i = 0; i < s->nheaders; i++)
        want += s->headers[i].name.len + s->headers[i].value.len + 4;
    sb_buf_init(o, MAX_HEAD_OUT);
    sb_buf_reserve(o, want < MAX_HEAD_OUT ? want : MAX_HEAD_OUT); /* one allocation */
    sb_buf_append_cstr(o, s->method);
    sb_buf_append(o, " /", plen && *path != '?' ? 1 : 2);
    sb_buf_append(o, path, plen);
    sb_buf_append(o, " HTTP/1.1\r\n", 11);
    if (!has_header(s, "Host")) {
        sb_buf_append(o, "Host: ", 6); /* host:port, without ":80" */
        sb_buf_append(o, r->tgt, strlen(r->tgt) - (r->port == 80 ? 3 : 0));
        sb_buf_append(o, "\r\n", 2);
    }
    if (!has_header(s, "Accept"))
        sb_buf_append_cstr(o, "Accept: */*\r\n");
    for (size_t i = 0; i < s->nheaders; i++) {
        const struct sb_kv *kv = &s->headers[i];
        if (sb_slice_caseeq(kv->name, sb_slice_cstr("Content-Length")) ||
            sb_slice_caseeq(kv->name, sb_slice_cstr("Transfer-Encoding")))
            continue; /* ours is the truth */
        sb_buf_append_slice(o, kv->name);
        sb_buf_append(o, ": ", 2);
        sb_buf_append_slice(o, kv->value);
        sb_buf_append(o, "\r\n", 2);
    }
    if (with_body) {
        char len[SB_U64_DIGITS];
        sb_buf_append(o, "Content-Length: ", 16);
        sb_buf_append(o, len, sb_u64_dec(len, body_len(s)));
        sb_buf_append(o, "\r\n", 2);
    }
    sb_buf_append(o, "\r\n", 2);
    r->head_req = !with_body && strcmp(s->method, "HEAD") == 0;
}

static int r_on_head(void *ud, int status, const struct sb_kv *kv, size_t n)
{
    struct h1req *r = ud;
    if (r->cbs.on_head)
        r->cbs.on_head(r->ud, status, kv, n);
    return r->dead ? -1 : 0;
}

static int r_on_data(void *ud, const char *p, size_t n)
{
    struct h1req *r = ud;
    int rc = r->cbs.on_data(r->ud, p, n);
    if (r->dead)
        return -1;
    return rc == SB_UREQ_PAUSE ? SB_UREQ_PAUSE : 0;
}

struct sb_ureq *sb__h1_start(struct sb_h1 *h, const struct sb_ureq_spec *spec,
                             const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err)
{
    const char *path = NULL;
    char *name = NULL;
    int port = 0;
    if (h->closing) {
        sb_fail(err, SB_E_UNAVAILABLE, "upstream client is shutting down");
        return NULL;
    }
    if (sb__ureq_check_spec(spec, cbs, err) != SB_OK)
        return NULL;
    if (!split_url(spec->url, &name, &port, &path)) {
        sb_fail(err, SB_E_UPSTREAM, "upstream URL is not a plain http:// URL");
        return NULL;
    }
    struct h1req *r = sb_xcalloc(1, sizeof(*r));
    r->kind = SB__UREQ_H1;
    r->h = h;
    r->name = name;
    r->port = port;
    snprintf(r->tgt, sizeof(r->tgt), "%s%s%s:%d", strchr(name, ':') ? "[" : "", name,
             strchr(name, ':') ? "]" : "", port);
    r->host = host_get(h, r->tgt);
    build_head(r, spec, path);
    if (r->out.len >= MAX_HEAD_OUT - 2) {
        sb_fail(err, SB_E_BAD_REQUEST, "upstream request head over %d bytes", MAX_HEAD_OUT);
        sb_secret_wipe(r->out.p, r->out.len);
        sb_buf_free(&r->out);
        free(name);
        free(r);
        return NULL;
    }
    set_body(r, spec);
    r->connect_ms =
        spec->connect_timeout_ms > 0 ? spec->connect_timeout_ms : SB__DEFAULT_CONNECT_MS;
    r->total_ms = spec->total_timeout_ms > 0 ? spec->total_timeout_ms : 0;
    r->idle_ms = spec->idle_timeout_ms > 0 ? spec->idle_timeout_ms : 0;
    r->cbs = *cbs;
    r->ud = ud;
    r->t_start = uv_now(h->loop);
    sb__h1_resp_init(&r->resp, r->head_req);
    r->resp.on_head = r_on_head;
    r->resp.on_data = r_on_data;
    r->resp.ud = r;
    sb_buf_init(&r->stash, 0);
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    h->nhandles++;
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->nreqs++;
    arm(r);
    r->starting = true;
    dispatch(r);
    r->starting = false;
    return (struct sb_ureq *)(void *)r;
}

/* ======================================================================
 * Pause, cancel
 * ==================================================================== */

void sb__h1_resume(struct sb_ureq *ur)
{
    struct h1req *r = (struct h1req *)(void *)ur;
    if (r->dead || !r->paused)
        return;
    r->paused = false;
    r->last_rx = uv_now(r->h->loop); /* time paused by the consumer is not silence */
    arm(r);
    struct sb_buf old = r->stash;
    size_t held = r->stash_held, at = r->stash_parse;
    sb_buf_init(&r->stash, 0);
    int rc = held ? r_on_data(r, old.p, held) : 0;
    if (rc == SB_UREQ_PAUSE) { /* still full: keep everything as it was */
        sb_buf_free(&r->stash);
        r->stash = old;
        r->paused = true;
        arm(r);
        return;
    }
    if (rc == 0)
        parse(r, old.p + at, old.len - at);
    sb_buf_free(&old);
    if (!r->dead && !r->paused && r->c)
        uv_read_start((uv_stream_t *)&r->c->tcp, on_alloc, on_read);
}

void sb__h1_cancel(struct sb_ureq *ur)
{
    struct h1req *r = (struct h1req *)(void *)ur;
    if (!r->dead)
        destroy(r);
}

/* ======================================================================
 * Create and close
 * ==================================================================== */

struct sb_h1 *sb__h1_create(uv_loop_t *loop, long keepalive_s)
{
    struct sb_h1 *h = sb_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->keepalive_s = keepalive_s;
    uv_timer_init(loop, &h->sweep);
    h->sweep.data = h;
    h->nhandles = 1;
    return h;
}

static void sweep_closed(uv_handle_t *hd)
{
    h_release(hd->data);
}

void sb__h1_close(struct sb_h1 *h, void (*done)(void *ud), void *ud)
{
    if (h->closing)
        return;
    h->closing = true;
    h->closed = done;
    h->closed_ud = ud;
    while (h->reqs)
        destroy(h->reqs);
    for (struct host *ho = h->hosts; ho; ho = ho->next)
        while (ho->idle)
            conn_close(ho->idle);
    uv_close((uv_handle_t *)&h->sweep, sweep_closed);
}

size_t sb__h1_active(const struct sb_h1 *h)
{
    return h->nreqs;
}

size_t sb__h1_conns(const struct sb_h1 *h)
{
    return h->nconns;
}

size_t sb__h1_idle(const struct sb_h1 *h)
{
    return h->nidle;
}
