/* SPDX-License-Identifier: MIT */
/*
 * upstream_testlib.h - what client_test.c and h1_test.c share: a scripted
 * HTTP/1.1 server on 127.0.0.1 and the client side's harness (one loop, a
 * request record with its callbacks, runs of the loop bounded in time).
 * Test code only: each test file includes it once and supplies its own
 * script (sbt_server_start) and its own way to start a request (sbt_start).
 *
 * The server runs one blocking thread per connection, so a script reads top
 * to bottom and the client's loop is the only event loop. Both sides read
 * the same monotonic clock (uv_hrtime), and a script may wait for what the
 * client saw (sbt_consumed) instead of guessing how long that takes.
 *
 * Containment: a failed assertion leaves a test at once (cmocka's longjmp)
 * with its requests in flight and their timers on the loop. So records live
 * in static storage or on the heap, never on a test's stack, and each test
 * runs with sbt_loop_clean after it (through the test file's teardown): a
 * timer of a dead stack frame left in the loop's queue corrupted the next
 * test, which died in uv_close (seen in CI as two_hundred_concurrent).
 */
#ifndef SB_UPSTREAM_TESTLIB_H
#define SB_UPSTREAM_TESTLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/buf.h"
#include "upstream/client.h"

static inline uint64_t sbt_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ======================================================================
 * The server: plumbing here, the script (sbt_serve_fn) in each test
 * ==================================================================== */

struct sbt_conn {
    int fd, id;      /* id: 1 for the first connection accepted, and so on */
    int mark;        /* the script's own state across requests on this connection */
    char buf[16384]; /* bytes read and not yet consumed (the head stays here) */
    size_t len;
};

struct sbt_req {
    char method[16], path[512];
    const char *head; /* the request head as received, in the connection's buffer */
    size_t hlen;
    char *body; /* clen bytes and a NUL, owned by the connection's thread */
    size_t clen;
    size_t used; /* bytes of the connection's buffer this request took */
};

/* Answers one request; < 0 closes the connection. */
typedef int (*sbt_serve_fn)(struct sbt_conn *c, const struct sbt_req *q);

static int sbt_port;            /* the server's port */
static atomic_int sbt_conns;    /* connections accepted */
static sbt_serve_fn sbt_serve;  /* the script */
static atomic_int sbt_consumed; /* on_data calls that took bytes, for scripts in lockstep */

static inline int sbt_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int sbt_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int sbt_say(int fd, const char *fmt, ...)
{
    char b[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    return sbt_send_all(fd, b, (size_t)n);
}

/* One chunk of a chunked body. */
static inline int sbt_chunk(int fd, const char *s)
{
    return sbt_say(fd, "%zx\r\n%s\r\n", strlen(s), s);
}

/* The number after "key=" in the query, or def. */
static inline long sbt_qparam(const char *path, const char *key, long def)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *q = strchr(path, '?');
    const char *p = q ? strstr(q, pat) : NULL;
    return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

/* Whether the request has header name (any case); its value into out. */
static inline bool sbt_header(const struct sbt_req *q, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *end = q->head + q->hlen, *eol;
    for (const char *line = strstr(q->head, "\r\n") + 2; line < end; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol || eol == line)
            break;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
            strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(eol - v), v);
            return true;
        }
    }
    return false;
}

/* Whether the client closed the connection, waiting up to wait_ms. */
static inline bool sbt_client_gone(int fd, int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, wait_ms) <= 0)
        return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Reads one request: its head stays in c->buf, its Content-Length body is
 * copied out. -1 at EOF, on junk or on a head over the buffer. */
static inline int sbt_read_req(struct sbt_conn *c, struct sbt_req *q)
{
    char *end;
    memset(q, 0, sizeof(*q));
    for (;;) {
        c->buf[c->len] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (end)
            break;
        if (c->len == sizeof(c->buf) - 1)
            return -1;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
    q->head = c->buf;
    q->hlen = (size_t)(end + 4 - c->buf);
    const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    q->clen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    if (sscanf(c->buf, "%15s %511s", q->method, q->path) != 2)
        return -1;
    /* ?late_ms=N: a server slow to read the body, so the client's socket fills */
    long late = sbt_qparam(q->path, "late_ms", 0);
    if (late > 0)
        usleep((useconds_t)late * 1000);
    size_t have = c->len - q->hlen < q->clen ? c->len - q->hlen : q->clen;
    q->body = malloc(q->clen + 1);
    memcpy(q->body, c->buf + q->hlen, have);
    q->used = q->hlen + have;
    while (have < q->clen) {
        ssize_t n = recv(c->fd, q->body + have, q->clen - have, 0);
        if (n <= 0) {
            free(q->body);
            return -1;
        }
        have += (size_t)n;
    }
    q->body[q->clen] = '\0';
    return 0;
}

static inline void *sbt_conn_main(void *arg)
{
    struct sbt_conn *c = arg;
    struct sbt_req q;
    while (sbt_read_req(c, &q) == 0) {
        int rc = sbt_serve(c, &q);
        free(q.body);
        memmove(c->buf, c->buf + q.used, c->len - q.used);
        c->len -= q.used;
        if (rc < 0)
            break;
    }
    close(c->fd);
    munmap(c, sizeof(*c));
    return NULL;
}

static inline void *sbt_accept_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL), one = 1;
        if (fd < 0)
            continue;
        /* small writes leave at once, as a real upstream's would */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* mmap, not malloc: client_test's memory test counts only the client's heap */
        struct sbt_conn *c =
            mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        c->fd = fd;
        c->id = atomic_fetch_add(&sbt_conns, 1) + 1;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024); /* hundreds of connections at once */
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &at, sbt_conn_main, c);
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* A loopback socket bound to a free port; listening with backlog, or not (< 0). */
static inline int sbt_loopback_socket(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Serves script on sbt_port until the process ends. */
static inline void sbt_server_start(sbt_serve_fn script)
{
    sbt_serve = script;
    int lfd = sbt_loopback_socket(1024, &sbt_port);
    pthread_t t;
    pthread_create(&t, NULL, sbt_accept_main, (void *)(intptr_t)lfd);
    pthread_detach(t);
}

/* ======================================================================
 * The client side: one loop, one record per request
 * ==================================================================== */

static uv_loop_t sbt_loop;
static int sbt_pending;      /* requests whose end (on_done or our cancel) has not come */
static uv_timer_t sbt_guard; /* wakes the loop so a limit is checked; static: see above */

/* How a test starts a request (sb_ureq_start on its client, or the pool's
 * own), and the headers every request carries. */
struct sbt_client {
    struct sb_ureq *(*start)(const struct sb_ureq_spec *s, const struct sb_ureq_cbs *cbs, void *ud,
                             struct sb_error *err);
    const struct sb_kv *headers;
    size_t nheaders;
};
static struct sbt_client sbt_client;

struct sbt_res {
    struct sb_ureq *r;
    const char *host; /* NULL = 127.0.0.1 */
    int port;         /* 0 = the test server */
    long connect_ms, total_ms, idle_ms;
    int status, nhead, ndone;
    /* response headers X-Method, X-Conn, X-Auth, X-Custom, X-Empty-Seen, X-Final */
    char method[16], conn[16], auth[64], custom[64], empty[8], final[8];
    struct sb_buf body;
    int chunks; /* on_data calls that consumed bytes */
    uint64_t t0, t_first, t_done, t_cancel;
    uint64_t t_chunk[8]; /* when each of the first chunks arrived */
    sb_err rc;
    char msg[256];
    /* pausing: every pause_every-th fresh offer is refused (at most
     * max_pauses times, 0 = no limit) and resumed resume_ms later */
    int pause_every, max_pauses, npause, fresh;
    long resume_ms;
    bool paused, redeliver;
    char *held; /* a copy of the refused bytes */
    size_t held_len;
    int calls_while_paused, redelivered_ok, redelivery_bad;
    /* cancelling */
    int cancel_at; /* cancel inside the n-th on_data (1-based) */
    bool cancel_in_head, cancelled;
    /* extra behaviour for the re-entrancy tests */
    void (*hook_data)(struct sbt_res *x);
    void (*hook_done)(struct sbt_res *x);
    void *arg;
    uv_timer_t tm; /* resume or cancel later */
};

static inline void sbt_copy_hdr(char *dst, size_t cap, const struct sb_kv *h, size_t n,
                                const char *name)
{
    struct sb_slice v = sb_ureq_header(h, n, name);
    snprintf(dst, cap, "%.*s", (int)v.len, v.p ? v.p : "");
}

static inline void sbt_cancel_now(struct sbt_res *x)
{
    x->t_cancel = sbt_now_ms();
    sb_ureq_cancel(x->r);
    x->cancelled = true;
    sbt_pending--;
}

static inline void sbt_on_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct sbt_res *x = ud;
    x->status = status;
    x->nhead++;
    /* Lower-case lookups of mixed-case names: the helper ignores case. */
    sbt_copy_hdr(x->method, sizeof(x->method), h, n, "x-method");
    sbt_copy_hdr(x->conn, sizeof(x->conn), h, n, "x-conn");
    sbt_copy_hdr(x->auth, sizeof(x->auth), h, n, "x-auth");
    sbt_copy_hdr(x->custom, sizeof(x->custom), h, n, "X-CUSTOM");
    sbt_copy_hdr(x->empty, sizeof(x->empty), h, n, "x-empty-seen");
    sbt_copy_hdr(x->final, sizeof(x->final), h, n, "x-final");
    if (x->cancel_in_head)
        sbt_cancel_now(x);
}

static inline void sbt_do_resume(uv_timer_t *t)
{
    struct sbt_res *x = t->data;
    x->paused = false;
    x->redeliver = true; /* set first: resume may hand the bytes back right here */
    sb_ureq_resume(x->r);
}

/* The offer after a resume must begin with the refused bytes; a fresh offer
 * is refused on every pause_every-th, keeping a copy to compare. */
static inline bool sbt_maybe_pause(struct sbt_res *x, const char *p, size_t n)
{
    if (x->redeliver) {
        bool same = n >= x->held_len && memcmp(p, x->held, x->held_len) == 0;
        x->redelivered_ok += same;
        x->redelivery_bad += !same;
        x->redeliver = false;
        free(x->held);
        x->held = NULL;
        return false;
    }
    if (!x->pause_every || ++x->fresh % x->pause_every ||
        (x->max_pauses && x->npause >= x->max_pauses))
        return false;
    x->npause++;
    x->paused = true;
    x->held = malloc(n);
    memcpy(x->held, p, n);
    x->held_len = n;
    uv_timer_start(&x->tm, sbt_do_resume, (uint64_t)x->resume_ms, 0);
    return true;
}

static inline int sbt_on_data(void *ud, const char *p, size_t n)
{
    struct sbt_res *x = ud;
    if (x->paused)
        x->calls_while_paused++;
    if (sbt_maybe_pause(x, p, n))
        return SB_UREQ_PAUSE;
    if (x->chunks < 8)
        x->t_chunk[x->chunks] = sbt_now_ms();
    if (!x->chunks++)
        x->t_first = sbt_now_ms();
    sb_buf_append(&x->body, p, n);
    atomic_fetch_add(&sbt_consumed, 1);
    if (x->hook_data)
        x->hook_data(x);
    if (x->cancel_at && x->chunks == x->cancel_at && !x->cancelled)
        sbt_cancel_now(x);
    return 0;
}

static inline void sbt_on_done(void *ud, sb_err rc, const struct sb_error *err)
{
    struct sbt_res *x = ud;
    x->rc = rc;
    snprintf(x->msg, sizeof(x->msg), "%s", rc == SB_OK ? "" : err->msg);
    x->t_done = sbt_now_ms();
    x->ndone++;
    sbt_pending--;
    if (x->hook_done)
        x->hook_done(x);
}

static const struct sb_ureq_cbs sbt_cbs = {sbt_on_head, sbt_on_data, sbt_on_done};

/* x must be static or on the heap (see the top of this file). */
static inline void sbt_res_init(struct sbt_res *x)
{
    memset(x, 0, sizeof(*x));
    sb_buf_init(&x->body, 0);
    uv_timer_init(&sbt_loop, &x->tm);
    x->tm.data = x;
}

static inline void sbt_begin(struct sbt_res *x, const char *method, const char *path,
                             const char *body, size_t blen)
{
    char url[256];
    snprintf(url, sizeof(url), "http://%s:%d%s", x->host ? x->host : "127.0.0.1",
             x->port ? x->port : sbt_port, path);
    struct sb_ureq_spec s = {
        .method = method,
        .url = url,
        .headers = sbt_client.headers,
        .nheaders = sbt_client.nheaders,
        .body = body,
        .body_len = blen,
        .connect_timeout_ms = x->connect_ms,
        .total_timeout_ms = x->total_ms,
        .idle_timeout_ms = x->idle_ms,
    };
    struct sb_error err = {0};
    x->t0 = sbt_now_ms();
    x->r = sbt_client.start(&s, &sbt_cbs, x, &err);
    assert_non_null(x->r);
    sbt_pending++;
}

static inline void sbt_end(struct sbt_res *x)
{
    uv_close((uv_handle_t *)&x->tm, NULL);
    uv_run(&sbt_loop, UV_RUN_NOWAIT);
    sb_buf_free(&x->body);
    free(x->held);
    x->held = NULL;
}

static inline void sbt_tick(uv_timer_t *t)
{
}

static inline void sbt_guard_start(void)
{
    uv_timer_init(&sbt_loop, &sbt_guard);
    uv_timer_start(&sbt_guard, sbt_tick, 5, 5);
}

static inline void sbt_guard_stop(void)
{
    uv_close((uv_handle_t *)&sbt_guard, NULL);
    uv_run(&sbt_loop, UV_RUN_NOWAIT); /* its close callback runs */
}

/* Runs the loop until pred() holds (NULL: no request pending) or limit_ms
 * passed; a limit is for a test that fails, never a wait that must pass. */
static inline void sbt_run_until(bool (*pred)(void), uint64_t limit_ms)
{
    sbt_guard_start();
    uint64_t end = sbt_now_ms() + limit_ms;
    while ((pred ? !pred() : sbt_pending > 0) && sbt_now_ms() < end)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    sbt_guard_stop();
    if (!pred)
        assert_int_equal(sbt_pending, 0);
}

static inline void sbt_run_for(uint64_t ms)
{
    uint64_t end = sbt_now_ms() + ms;
    sbt_guard_start();
    while (sbt_now_ms() < end)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    sbt_guard_stop();
}

static bool sbt_closed_flag; /* the client under test called its close callback */
static inline void sbt_on_closed(void *ud)
{
    *(bool *)ud = true;
}
static inline bool sbt_is_closed(void)
{
    return sbt_closed_flag;
}

static inline void sbt_close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        (*(int *)arg)++;
        uv_close(h, NULL);
    }
}

/* For a test's teardown, after it closed its client (no callback runs after
 * that): closes every handle left on the loop (a failed test's timers) and
 * runs their close callbacks. Returns 0 when there was none (a test that
 * passes leaves none), else -1, so the teardown fails too. */
static inline int sbt_loop_clean(void)
{
    int left = 0;
    uv_walk(&sbt_loop, sbt_close_handle, &left);
    uint64_t end = sbt_now_ms() + 2000;
    while (uv_loop_alive(&sbt_loop) && sbt_now_ms() < end)
        uv_run(&sbt_loop, UV_RUN_NOWAIT);
    sbt_pending = 0;
    if (left)
        fprintf(stderr, "sbt_loop_clean: %d handle(s) left open by the test\n", left);
    return left ? -1 : 0;
}

#endif
