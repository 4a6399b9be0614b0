/* SPDX-License-Identifier: MIT */
/*
 * client_test.c - the upstream client against a small HTTP/1.1 server on
 * 127.0.0.1. The server runs one blocking thread per connection, so scripted
 * behaviour (send, sleep, send) stays trivial and the client's loop is the
 * only event loop here. Both sides read the same monotonic clock (uv_hrtime),
 * so the tests can compare "server sent" with "client saw" directly.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/buf.h"
#include "upstream/client.h"

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ======================================================================
 * The test server
 * ==================================================================== */

static int srv_port;
static atomic_int srv_conns;         /* connections accepted */
static atomic_int srv_closes;        /* /forever or /hold saw its client go away */
static atomic_ullong srv_closed_at;  /* now_ms() of the last such close */
static atomic_ullong srv_sent_at[8]; /* /stream: when chunk i was sent */
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static int srv_inflight, srv_max_inflight; /* /order requests being answered (under srv_mu) */
static int srv_order[64], srv_norder;      /* /order ids in arrival order (under srv_mu) */

struct hreq {
    char method[16];
    char path[512];
    char auth[128], custom[128];
    bool empty_seen; /* an "X-Empty:" header with an empty value */
    size_t clen;
    char *body; /* malloc'd, clen bytes */
};

struct conn {
    int fd, id;
    char buf[16384];
    size_t len;
};

static int send_all(int fd, const void *p, size_t n)
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

static int say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int say(int fd, const char *fmt, ...)
{
    char b[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    return send_all(fd, b, (size_t)n);
}

static int chunk(int fd, const char *s)
{
    return say(fd, "%zx\r\n%s\r\n", strlen(s), s);
}

static long qparam(const char *path, const char *key, long def)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *q = strchr(path, '?');
    const char *p = q ? strstr(q, pat) : NULL;
    return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

static void header_line(struct hreq *q, char *line)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ')
        v++;
    if (strcasecmp(line, "content-length") == 0)
        q->clen = strtoul(v, NULL, 10);
    else if (strcasecmp(line, "authorization") == 0)
        snprintf(q->auth, sizeof(q->auth), "%s", v);
    else if (strcasecmp(line, "x-custom") == 0)
        snprintf(q->custom, sizeof(q->custom), "%s", v);
    else if (strcasecmp(line, "x-empty") == 0)
        q->empty_seen = *v == '\0';
}

/* Reads one request (head and Content-Length body); -1 on EOF or junk. */
static int read_req(struct conn *c, struct hreq *q)
{
    char *end = NULL;
    memset(q, 0, sizeof(*q));
    while (!end) {
        c->buf[c->len] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (end)
            break;
        if (c->len == sizeof(c->buf) - 1)
            return -1; /* a head this big is junk */
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
    size_t hlen = (size_t)(end + 4 - c->buf);
    end[2] = '\0';
    char *line = c->buf, *eol = strstr(line, "\r\n");
    *eol = '\0';
    if (sscanf(line, "%15s %511s", q->method, q->path) != 2)
        return -1;
    for (line = eol + 2; *line; line = eol + 2) {
        eol = strstr(line, "\r\n");
        *eol = '\0';
        header_line(q, line);
    }
    q->body = malloc(q->clen + 1);
    size_t have = c->len - hlen < q->clen ? c->len - hlen : q->clen;
    memcpy(q->body, c->buf + hlen, have);
    memmove(c->buf, c->buf + hlen + have, c->len - hlen - have);
    c->len -= hlen + have;
    while (have < q->clen) {
        ssize_t n = recv(c->fd, q->body + have, q->clen - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return 0;
}

static void note_closed(void)
{
    atomic_store(&srv_closed_at, now_ms());
    atomic_fetch_add(&srv_closes, 1);
}

static void serve_echo(struct conn *c, const struct hreq *q)
{
    say(c->fd,
        "HTTP/1.1 200 OK\r\nX-Method: %s\r\nX-Conn: %d\r\nX-Auth: %s\r\nX-Custom: %s\r\n"
        "X-Empty-Seen: %s\r\nContent-Length: %zu\r\n\r\n",
        q->method, c->id, q->auth, q->custom, q->empty_seen ? "yes" : "no", q->clen);
    send_all(c->fd, q->body, q->clen);
}

static void serve_stream(struct conn *c, const struct hreq *q)
{
    long n = qparam(q->path, "n", 3), gap = qparam(q->path, "gap", 50);
    say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (long i = 0; i < n && i < 8; i++) {
        char part[16];
        snprintf(part, sizeof(part), "c%ld|", i);
        atomic_store(&srv_sent_at[i], now_ms());
        chunk(c->fd, part);
        usleep((useconds_t)gap * 1000);
    }
    say(c->fd, "0\r\n\r\n");
}

/* Byte i of /big's body: no short period, so a repeat or a gap shows. */
static char big_byte(size_t i)
{
    return (char)((i * 2654435761u) >> 24);
}

static void serve_big(struct conn *c, const struct hreq *q)
{
    size_t n = (size_t)qparam(q->path, "n", 100000);
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = big_byte(i);
    say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    send_all(c->fd, b, n);
    free(b);
}

/* Streams until the client goes away, watching for its FIN/RST between
 * chunks; returns -1 (the connection is done). */
static int serve_forever(struct conn *c)
{
    say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 1000; i++) {
        if (chunk(c->fd, "tok") < 0)
            break;
        struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 10) > 0)
            break;
    }
    note_closed();
    return -1;
}

/* One chunk, then silence until the client goes away; returns -1. */
static int serve_hold(struct conn *c)
{
    say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    chunk(c->fd, "held");
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    poll(&p, 1, 20000);
    note_closed();
    return -1;
}

/* Logs arrival order and how many /order requests overlap. */
static void serve_order(struct conn *c, const struct hreq *q)
{
    pthread_mutex_lock(&srv_mu);
    if (srv_norder < 64)
        srv_order[srv_norder++] = (int)qparam(q->path, "id", -1);
    if (++srv_inflight > srv_max_inflight)
        srv_max_inflight = srv_inflight;
    pthread_mutex_unlock(&srv_mu);
    usleep((useconds_t)qparam(q->path, "ms", 20) * 1000);
    pthread_mutex_lock(&srv_mu);
    srv_inflight--;
    pthread_mutex_unlock(&srv_mu);
    say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

static int serve_one(struct conn *c, const struct hreq *q)
{
    const char *p = q->path;
    if (strncmp(p, "/echo", 5) == 0) {
        serve_echo(c, q);
    } else if (strncmp(p, "/status", 7) == 0) {
        say(c->fd, "HTTP/1.1 %ld Nope\r\nContent-Length: 4\r\n\r\nnope", qparam(p, "code", 404));
    } else if (strncmp(p, "/stream", 7) == 0) {
        serve_stream(c, q);
    } else if (strncmp(p, "/big", 4) == 0) {
        serve_big(c, q);
    } else if (strncmp(p, "/slow", 5) == 0) {
        usleep((useconds_t)qparam(p, "ms", 1000) * 1000);
        say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strncmp(p, "/silent", 7) == 0) {
        say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        chunk(c->fd, "first");
        usleep((useconds_t)qparam(p, "ms", 1000) * 1000);
        say(c->fd, "0\r\n\r\n");
    } else if (strncmp(p, "/order", 6) == 0) {
        serve_order(c, q);
    } else if (strncmp(p, "/forever", 8) == 0) {
        return serve_forever(c);
    } else if (strncmp(p, "/hold", 5) == 0) {
        return serve_hold(c);
    } else {
        say(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    return 0;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct hreq q;
    for (;;) {
        if (read_req(c, &q) < 0)
            break;
        int rc = serve_one(c, &q);
        free(q.body);
        q.body = NULL;
        if (rc < 0)
            break;
    }
    free(q.body);
    close(c->fd);
    munmap(c, sizeof(*c));
    return NULL;
}

static void *accept_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        /* mmap, not malloc: the memory test counts only the client's heap */
        struct conn *c =
            mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int one = 1; /* small writes leave at once, as a real upstream's would */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->id = atomic_fetch_add(&srv_conns, 1) + 1;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &at, conn_main, c);
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* A loopback socket bound to a free port; listening with backlog, or not (< 0). */
static int loopback_socket(int backlog, int *port)
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

static void server_start(void)
{
    int lfd = loopback_socket(1024, &srv_port);
    pthread_t t;
    pthread_create(&t, NULL, accept_main, (void *)(intptr_t)lfd);
    pthread_detach(t);
}

/* ======================================================================
 * The client side: one sb_upstream per test on one loop
 * ==================================================================== */

static uv_loop_t loop;
static struct sb_upstream *up;
static int pending; /* requests whose end (on_done or our cancel) has not come */

struct res {
    struct sb_ureq *r;
    int port; /* 0 = the test server */
    long connect_ms, total_ms, idle_ms;
    int status, nhead;
    char method[16], conn[16], auth[64], custom[64], empty[8];
    struct sb_buf body;
    int chunks; /* on_data calls that consumed bytes */
    uint64_t t0, t_first, t_done, t_cancel;
    uint64_t t_chunk[8]; /* when each of the first chunks arrived */
    sb_err rc;
    char msg[256];
    int ndone;
    /* pausing */
    int pause_every, max_pauses, npause, fresh;
    long resume_ms;
    bool paused, redeliver;
    char *held;
    size_t held_len;
    int calls_while_paused, redelivery_bad;
    /* cancelling */
    int cancel_at; /* cancel inside the n-th on_data (1-based) */
    bool cancel_in_head, cancelled;
    /* extra behaviour for the re-entrancy tests */
    void (*hook_data)(struct res *x);
    void (*hook_done)(struct res *x);
    void *arg;
    uv_timer_t tm; /* resume or cancel later */
};

static void copy_hdr(char *dst, size_t cap, const struct sb_kv *h, size_t n, const char *name)
{
    struct sb_slice v = sb_ureq_header(h, n, name);
    snprintf(dst, cap, "%.*s", (int)v.len, v.p ? v.p : "");
}

static void cancel_now(struct res *x)
{
    x->t_cancel = now_ms();
    sb_ureq_cancel(x->r);
    x->cancelled = true;
    pending--;
}

static void on_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct res *x = ud;
    x->status = status;
    x->nhead++;
    /* Lower-case lookups of mixed-case names: the helper ignores case. */
    copy_hdr(x->method, sizeof(x->method), h, n, "x-method");
    copy_hdr(x->conn, sizeof(x->conn), h, n, "x-conn");
    copy_hdr(x->auth, sizeof(x->auth), h, n, "x-auth");
    copy_hdr(x->custom, sizeof(x->custom), h, n, "X-CUSTOM");
    copy_hdr(x->empty, sizeof(x->empty), h, n, "x-empty-seen");
    if (x->cancel_in_head)
        cancel_now(x);
}

static void do_resume(uv_timer_t *t)
{
    struct res *x = t->data;
    x->paused = false;
    x->redeliver = true; /* set first: resume may hand the bytes back right here */
    sb_ureq_resume(x->r);
}

/* PAUSE on every pause_every-th fresh offer, keeping a copy to compare. */
static bool maybe_pause(struct res *x, const char *p, size_t n)
{
    if (x->redeliver) {
        size_t k = n < x->held_len ? n : x->held_len;
        x->redelivery_bad += memcmp(p, x->held, k) != 0;
        x->redeliver = false;
        free(x->held);
        x->held = NULL;
        return false;
    }
    if (!x->pause_every || ++x->fresh % x->pause_every || x->npause >= x->max_pauses)
        return false;
    x->npause++;
    x->paused = true;
    x->held = malloc(n);
    memcpy(x->held, p, n);
    x->held_len = n;
    uv_timer_start(&x->tm, do_resume, (uint64_t)x->resume_ms, 0);
    return true;
}

static int on_data(void *ud, const char *p, size_t n)
{
    struct res *x = ud;
    if (x->paused)
        x->calls_while_paused++;
    if (maybe_pause(x, p, n))
        return SB_UREQ_PAUSE;
    if (x->chunks < 8)
        x->t_chunk[x->chunks] = now_ms();
    if (!x->chunks++)
        x->t_first = now_ms();
    sb_buf_append(&x->body, p, n);
    if (x->hook_data)
        x->hook_data(x);
    if (x->cancel_at && x->chunks == x->cancel_at && !x->cancelled)
        cancel_now(x);
    return 0;
}

static void on_done(void *ud, sb_err rc, const struct sb_error *err)
{
    struct res *x = ud;
    x->rc = rc;
    snprintf(x->msg, sizeof(x->msg), "%s", rc == SB_OK ? "" : err->msg);
    x->t_done = now_ms();
    x->ndone++;
    pending--;
    if (x->hook_done)
        x->hook_done(x);
}

static const struct sb_ureq_cbs cbs = {on_head, on_data, on_done};

static void res_init(struct res *x)
{
    memset(x, 0, sizeof(*x));
    sb_buf_init(&x->body, 0);
    uv_timer_init(&loop, &x->tm);
    x->tm.data = x;
}

static void begin(struct res *x, const char *method, const char *path, const char *body,
                  size_t blen)
{
    static const struct sb_kv hdr[] = {
        {SB_SLICE("Authorization"), SB_SLICE("Bearer k")},
        {SB_SLICE("X-Custom"), SB_SLICE("hello")},
        {SB_SLICE("X-Empty"), SB_SLICE("")},
    };
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", x->port ? x->port : srv_port, path);
    struct sb_ureq_spec s = {
        .method = method,
        .url = url,
        .headers = hdr,
        .nheaders = 3,
        .body = body,
        .body_len = blen,
        .connect_timeout_ms = x->connect_ms,
        .total_timeout_ms = x->total_ms,
        .idle_timeout_ms = x->idle_ms,
    };
    struct sb_error err = {0};
    x->t0 = now_ms();
    x->r = sb_ureq_start(up, &s, &cbs, x, &err);
    assert_non_null(x->r);
    pending++;
}

static void tick(uv_timer_t *t)
{
}

/* Runs the loop until pred() holds (NULL: no request pending) or limit_ms. */
static void run_until(bool (*pred)(void), uint64_t limit_ms)
{
    uv_timer_t guard; /* wakes the loop so the limit is checked */
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, tick, 5, 5);
    uint64_t end = now_ms() + limit_ms;
    while ((pred ? !pred() : pending > 0) && now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!pred)
        assert_int_equal(pending, 0);
}

static void run_for(uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, tick, 5, 5);
    while (now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void end(struct res *x)
{
    uv_close((uv_handle_t *)&x->tm, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    sb_buf_free(&x->body);
    free(x->held);
}

static void up_open(long max_transfers)
{
    struct sb_upstream_opts o = {.max_transfers = max_transfers};
    up = sb_upstream_create(&loop, &o);
    pending = 0;
}

static bool closed_flag;
static void on_closed(void *ud)
{
    *(bool *)ud = true;
}
static bool is_closed(void)
{
    return closed_flag;
}

/* Closes up (whatever is in flight) and waits for its last close callback. */
static void up_close(void)
{
    closed_flag = false;
    if (up)
        sb_upstream_close(up, on_closed, &closed_flag);
    run_until(is_closed, 2000);
    assert_true(closed_flag);
    up = NULL;
}

static int srv_closes_seen;
static bool server_saw_close(void)
{
    return atomic_load(&srv_closes) > srv_closes_seen;
}

/* ======================================================================
 * Requests and responses
 * ==================================================================== */

static void request_headers_status_and_methods(void **state)
{
    struct res a, b, c, d;
    up_open(0);
    res_init(&a);
    res_init(&b);
    res_init(&c);
    res_init(&d);
    begin(&a, "GET", "/echo", NULL, 0);
    begin(&b, "GET", "/status?code=404", NULL, 0);
    begin(&c, "PUT", "/echo", "put-body", 8);
    begin(&d, "DELETE", "/echo", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.nhead, 1);
    assert_string_equal(a.method, "GET");
    assert_string_equal(a.auth, "Bearer k");
    assert_string_equal(a.custom, "hello");
    assert_string_equal(a.empty, "yes"); /* an empty header value is sent, not dropped */
    assert_int_equal(a.body.len, 0);
    assert_int_equal(b.rc, SB_OK); /* a 404 is a response, not a transport failure */
    assert_int_equal(b.status, 404);
    assert_string_equal(b.body.p, "nope");
    assert_string_equal(c.method, "PUT");
    assert_string_equal(c.body.p, "put-body");
    assert_string_equal(d.method, "DELETE");
    end(&a);
    end(&b);
    end(&c);
    end(&d);
    up_close();
}

static void post_bodies_reuse_one_connection(void **state)
{
    enum { BIG = 1 << 20 };
    struct res a, b, c;
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = big_byte(i);
    up_open(0);
    int before = atomic_load(&srv_conns);
    res_init(&a);
    begin(&a, "POST", "/echo", "{\"hello\":1}", 11);
    run_until(NULL, 3000);
    res_init(&b);
    begin(&b, "POST", "/echo", big, BIG);
    run_until(NULL, 3000);
    res_init(&c);
    begin(&c, "GET", "/echo", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.body.p, "{\"hello\":1}");
    assert_int_equal(b.rc, SB_OK);
    assert_int_equal(b.body.len, BIG);
    assert_memory_equal(b.body.p, big, BIG);
    /* keep-alive: all three went over the first one's connection */
    assert_int_equal(atomic_load(&srv_conns) - before, 1);
    assert_string_equal(a.conn, b.conn);
    assert_string_equal(a.conn, c.conn);
    end(&a);
    end(&b);
    end(&c);
    free(big);
    up_close();
}

static void bad_input_is_refused_without_callbacks(void **state)
{
    struct sb_kv crlf[] = {{SB_SLICE("X-Evil"), SB_SLICE("a\r\nInjected: 1")}};
    struct sb_kv colon[] = {{SB_SLICE("X:Bad"), SB_SLICE("v")}};
    struct sb_ureq_spec s = {.method = "GET", .url = "http://127.0.0.1:1/"};
    struct sb_error err = {0};
    up_open(0);
    s.headers = crlf;
    s.nheaders = 1;
    assert_null(sb_ureq_start(up, &s, &cbs, NULL, &err));
    assert_int_equal(err.code, SB_E_BAD_REQUEST);
    s.headers = colon;
    assert_null(sb_ureq_start(up, &s, &cbs, NULL, &err));
    s.nheaders = 0;
    s.method = "GET /x HTTP/1.1\r\n";
    assert_null(sb_ureq_start(up, &s, &cbs, NULL, &err));
    s.method = "GET";
    s.url = NULL;
    assert_null(sb_ureq_start(up, &s, &cbs, NULL, &err));
    up_close();
}

static void only_http_and_https(void **state)
{
    struct res a;
    struct sb_ureq_spec s = {.method = "GET", .url = "file:///etc/passwd"};
    struct sb_error err = {0};
    up_open(0);
    res_init(&a);
    a.r = sb_ureq_start(up, &s, &cbs, &a, &err);
    assert_non_null(a.r);
    pending++;
    run_until(NULL, 2000);
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_int_equal(a.body.len, 0);
    end(&a);
    up_close();
}

/* ======================================================================
 * Streaming, pause and resume
 * ==================================================================== */

static void streams_chunk_by_chunk(void **state)
{
    struct res x;
    up_open(0);
    res_init(&x);
    begin(&x, "GET", "/stream?n=4&gap=50", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(x.rc, SB_OK);
    assert_string_equal(x.body.p, "c0|c1|c2|c3|");
    assert_int_equal(x.chunks, 4);
    /* Each chunk reached the consumer before the server sent the next one. */
    for (int i = 0; i < 3; i++)
        assert_true(x.t_chunk[i] <= atomic_load(&srv_sent_at[i + 1]));
    end(&x);
    up_close();
}

static void pause_resume_delivers_each_byte_once(void **state)
{
    struct res s, b;
    up_open(0);
    res_init(&s);
    res_init(&b);
    /* Paused for 120 ms at a time with a 60 ms idle timeout: time paused by
     * the consumer is not upstream silence. */
    s.pause_every = 1;
    s.max_pauses = 2;
    s.resume_ms = 120;
    s.idle_ms = 60;
    begin(&s, "GET", "/stream?n=4&gap=30", NULL, 0);
    /* A 600 KB body that stalls every third delivery. */
    b.pause_every = 3;
    b.max_pauses = 1000;
    b.resume_ms = 2;
    begin(&b, "GET", "/big?n=600000", NULL, 0);
    run_until(NULL, 5000);
    assert_int_equal(s.rc, SB_OK);
    assert_int_equal(s.npause, 2);
    assert_string_equal(s.body.p, "c0|c1|c2|c3|");
    assert_int_equal(s.calls_while_paused, 0);
    assert_int_equal(s.redelivery_bad, 0);
    assert_int_equal(b.rc, SB_OK);
    assert_true(b.npause >= 3);
    assert_int_equal(b.calls_while_paused, 0);
    assert_int_equal(b.redelivery_bad, 0);
    assert_int_equal(b.body.len, 600000);
    for (size_t i = 0; i < 600000; i++)
        if (b.body.p[i] != big_byte(i))
            fail_msg("byte %zu differs", i);
    end(&s);
    end(&b);
    up_close();
}

/* ======================================================================
 * Cancel: the upstream connection really closes
 * ==================================================================== */

static void later_cancel(uv_timer_t *t)
{
    cancel_now(t->data);
}

static void expect_server_close(const struct res *x)
{
    run_until(server_saw_close, 2000);
    assert_true(server_saw_close());
    uint64_t at = atomic_load(&srv_closed_at);
    /* EOF reached the server within ~100 ms of the cancel */
    assert_true(at >= x->t_cancel && at - x->t_cancel < 100);
    srv_closes_seen = atomic_load(&srv_closes);
}

static void cancel_closes_the_upstream_connection(void **state)
{
    struct res a, b, c;
    up_open(0);
    srv_closes_seen = atomic_load(&srv_closes);
    res_init(&a); /* inside on_data */
    a.cancel_at = 3;
    begin(&a, "GET", "/forever", NULL, 0);
    run_until(NULL, 3000);
    expect_server_close(&a);
    assert_int_equal(a.chunks, 3);
    res_init(&b); /* from the loop, outside any callback */
    begin(&b, "GET", "/forever", NULL, 0);
    uv_timer_start(&b.tm, later_cancel, 60, 0);
    run_until(NULL, 3000);
    expect_server_close(&b);
    res_init(&c); /* inside on_head */
    c.cancel_in_head = true;
    begin(&c, "GET", "/hold", NULL, 0);
    run_until(NULL, 3000);
    expect_server_close(&c);
    run_for(30); /* nothing may arrive after a cancel */
    assert_int_equal(a.ndone + b.ndone + c.ndone, 0);
    assert_int_equal(a.chunks, 3);
    assert_int_equal(c.chunks, 0);
    assert_int_equal(sb_upstream_active(up), 0);
    end(&a);
    end(&b);
    end(&c);
    up_close();
}

/* ======================================================================
 * Failures: refused, timeouts
 * ==================================================================== */

static void connect_refused(void **state)
{
    struct res a, b;
    int port;
    int fd = loopback_socket(-1, &port); /* bound, not listening: refuses */
    up_open(0);
    res_init(&a);
    a.port = port;
    begin(&a, "POST", "/echo", "x", 1);
    run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_int_equal(a.nhead, 0);
    char want[64];
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%d refused", port);
    assert_non_null(strstr(a.msg, want));
    /* the client stays usable (the failed handle is recycled) */
    res_init(&b);
    begin(&b, "GET", "/echo", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(b.rc, SB_OK);
    close(fd);
    end(&a);
    end(&b);
    up_close();
}

static void connect_timeout(void **state)
{
    int port;
    /* Backlog 0 and one connection parked in the accept queue: the kernel
     * drops further SYNs, so a connect hangs like one to a dead host. */
    int lfd = loopback_socket(0, &port);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);
    struct res x;
    up_open(0);
    res_init(&x);
    x.port = port;
    x.connect_ms = 150;
    x.total_ms = 3000;
    begin(&x, "GET", "/", NULL, 0);
    run_until(NULL, 4000);
    assert_int_equal(x.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(x.msg, "connect"));
    assert_true(x.t_done - x.t0 >= 140 && x.t_done - x.t0 < 1000);
    end(&x);
    up_close();
    close(filler);
    close(lfd);
}

static void total_and_idle_timeouts(void **state)
{
    struct res tot, idle, ttfb, paced;
    up_open(0);
    res_init(&tot);
    tot.total_ms = 200;
    begin(&tot, "GET", "/slow?ms=1500", NULL, 0);
    res_init(&idle);
    idle.idle_ms = 150;
    begin(&idle, "GET", "/silent?ms=1500", NULL, 0);
    res_init(&ttfb); /* the idle clock starts at the first byte, not before */
    ttfb.idle_ms = 100;
    begin(&ttfb, "GET", "/slow?ms=300", NULL, 0);
    res_init(&paced); /* each chunk restarts the idle clock */
    paced.idle_ms = 120;
    begin(&paced, "GET", "/stream?n=5&gap=60", NULL, 0);
    run_until(NULL, 4000);
    assert_int_equal(tot.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(tot.msg, "total"));
    assert_true(tot.t_done - tot.t0 >= 195 && tot.t_done - tot.t0 < 700);
    assert_int_equal(idle.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(idle.msg, "idle"));
    assert_string_equal(idle.body.p, "first");
    assert_true(idle.t_done - idle.t_first >= 145 && idle.t_done - idle.t_first < 700);
    assert_int_equal(ttfb.rc, SB_OK);
    assert_int_equal(paced.rc, SB_OK);
    assert_string_equal(paced.body.p, "c0|c1|c2|c3|c4|");
    end(&tot);
    end(&idle);
    end(&ttfb);
    end(&paced);
    up_close();
}

/* ======================================================================
 * Concurrency and the FIFO
 * ==================================================================== */

static void two_hundred_concurrent(void **state)
{
    enum { N = 200 };
    struct res *x = calloc(N, sizeof(*x));
    char(*body)[16] = calloc(N, sizeof(*body));
    up_open(0);
    for (int i = 0; i < N; i++) {
        snprintf(body[i], sizeof(body[i]), "req-%d", i);
        res_init(&x[i]);
        x[i].total_ms = 8000;
        begin(&x[i], "POST", "/echo", body[i], strlen(body[i]));
    }
    assert_int_equal(sb_upstream_active(up), N);
    run_until(NULL, 8000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].rc, SB_OK);
        assert_string_equal(x[i].body.p, body[i]);
        end(&x[i]);
    }
    free(x);
    free(body);
    up_close();
}

static void fifo_caps_running_transfers(void **state)
{
    enum { N = 24 };
    struct res x[N];
    char path[64];
    up_open(4);
    pthread_mutex_lock(&srv_mu);
    srv_max_inflight = 0;
    pthread_mutex_unlock(&srv_mu);
    for (int i = 0; i < N; i++) {
        res_init(&x[i]);
        snprintf(path, sizeof(path), "/order?id=%d&ms=20", 100 + i);
        begin(&x[i], "GET", path, NULL, 0);
    }
    assert_int_equal(sb_upstream_active(up), 4);
    assert_int_equal(sb_upstream_queued(up), N - 4);
    run_until(NULL, 5000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].rc, SB_OK);
        end(&x[i]);
    }
    pthread_mutex_lock(&srv_mu);
    int peak = srv_max_inflight;
    pthread_mutex_unlock(&srv_mu);
    assert_true(peak >= 1 && peak <= 4);
    up_close();
}

static void fifo_order_queued_timeout_and_cancel(void **state)
{
    enum { N = 6 };
    struct res x[N], slow, late, dropped;
    char path[64];
    up_open(1);
    pthread_mutex_lock(&srv_mu);
    srv_norder = 0;
    pthread_mutex_unlock(&srv_mu);
    for (int i = 0; i < N; i++) {
        res_init(&x[i]);
        snprintf(path, sizeof(path), "/order?id=%d&ms=5", i);
        begin(&x[i], "GET", path, NULL, 0);
    }
    res_init(&dropped); /* cancelled while queued: never reaches the server */
    begin(&dropped, "GET", "/order?id=99&ms=5", NULL, 0);
    cancel_now(&dropped);
    run_until(NULL, 3000);
    pthread_mutex_lock(&srv_mu);
    assert_int_equal(srv_norder, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(srv_order[i], i);
    pthread_mutex_unlock(&srv_mu);
    /* The total timeout counts time spent in our queue. */
    res_init(&slow);
    begin(&slow, "GET", "/slow?ms=400", NULL, 0);
    res_init(&late);
    late.total_ms = 100;
    begin(&late, "GET", "/echo", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(slow.rc, SB_OK);
    assert_int_equal(late.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(late.msg, "queued"));
    assert_true(late.t_done - late.t0 >= 95 && late.t_done - late.t0 < 350);
    assert_int_equal(dropped.ndone, 0);
    for (int i = 0; i < N; i++)
        end(&x[i]);
    end(&slow);
    end(&late);
    end(&dropped);
    up_close();
}

/* ======================================================================
 * Re-entrancy: what callbacks may do
 * ==================================================================== */

static struct res chain[5];
static int chain_len;

static void chain_next(struct res *x)
{
    if (chain_len == 5)
        return;
    struct res *n = &chain[chain_len++];
    res_init(n);
    n->hook_done = chain_next;
    begin(n, "GET", "/echo", NULL, 0);
}

static void start_from_data(struct res *x)
{
    struct res *n = x->arg;
    if (x->chunks == 1)
        begin(n, "POST", "/echo", "from-data", 9); /* inside curl: queued, then started */
}

static void callbacks_start_requests(void **state)
{
    struct res a, b;
    up_open(0);
    chain_len = 0;
    chain_next(NULL); /* each on_done starts the next */
    run_until(NULL, 3000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(chain[i].rc, SB_OK);
        end(&chain[i]);
    }
    res_init(&a);
    res_init(&b);
    a.hook_data = start_from_data;
    a.arg = &b;
    begin(&a, "GET", "/stream?n=3&gap=20", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(b.rc, SB_OK);
    assert_string_equal(b.body.p, "from-data");
    end(&a);
    end(&b);
    up_close();
}

static void cancel_other(struct res *x)
{
    struct res *victim = x->arg;
    if (x->chunks == 2 && !victim->cancelled)
        cancel_now(victim);
}

static void cancel_other_when_done(struct res *x)
{
    cancel_now(x->arg); /* outside curl: removed at once */
}

static void resume_other(struct res *x)
{
    struct res *sleeper = x->arg;
    if (sleeper->paused) {
        uv_timer_stop(&sleeper->tm);
        do_resume(&sleeper->tm); /* inside curl: deferred to the loop */
    }
}

static void callbacks_cancel_and_resume_others(void **state)
{
    struct res a, victim, b, sleeper, c, victim2;
    up_open(0);
    srv_closes_seen = atomic_load(&srv_closes);
    res_init(&victim);
    begin(&victim, "GET", "/hold", NULL, 0);
    while (victim.chunks == 0)
        uv_run(&loop, UV_RUN_ONCE);
    res_init(&a);
    a.hook_data = cancel_other;
    a.arg = &victim;
    begin(&a, "GET", "/stream?n=3&gap=20", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(victim.ndone, 0);
    run_until(server_saw_close, 2000);
    assert_true(server_saw_close());
    srv_closes_seen = atomic_load(&srv_closes);
    res_init(&victim2); /* cancelled from another request's on_done */
    begin(&victim2, "GET", "/hold", NULL, 0);
    while (victim2.chunks == 0)
        uv_run(&loop, UV_RUN_ONCE);
    res_init(&c);
    c.hook_done = cancel_other_when_done;
    c.arg = &victim2;
    begin(&c, "GET", "/echo", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(c.rc, SB_OK);
    run_until(server_saw_close, 2000);
    assert_true(server_saw_close());
    srv_closes_seen = atomic_load(&srv_closes);
    res_init(&sleeper); /* paused "forever", resumed from b's on_data */
    sleeper.pause_every = 1;
    sleeper.max_pauses = 1;
    sleeper.resume_ms = 60000;
    begin(&sleeper, "GET", "/stream?n=2&gap=5", NULL, 0);
    res_init(&b);
    b.hook_data = resume_other;
    b.arg = &sleeper;
    begin(&b, "GET", "/stream?n=6&gap=30", NULL, 0);
    run_until(NULL, 3000);
    assert_int_equal(sleeper.rc, SB_OK);
    assert_string_equal(sleeper.body.p, "c0|c1|");
    assert_int_equal(sleeper.redelivery_bad, 0);
    end(&a);
    end(&victim);
    end(&b);
    end(&sleeper);
    end(&c);
    end(&victim2);
    assert_int_equal(victim2.ndone, 0);
    up_close();
}

static bool hook_closed;
static void close_from_callback(struct res *x)
{
    if (!hook_closed) {
        sb_upstream_close(up, on_closed, &hook_closed); /* not up_close: we are inside */
        up = NULL;
        pending = 0; /* nobody hears another word */
    }
}

static bool hook_is_closed(void)
{
    return hook_closed;
}

static void close_inside_callbacks(void **state)
{
    struct res a, b, c, d;
    /* from on_done (outside curl), with another stream in flight */
    up_open(0);
    hook_closed = false;
    res_init(&a);
    res_init(&b);
    begin(&b, "GET", "/forever", NULL, 0);
    a.hook_done = close_from_callback;
    begin(&a, "GET", "/echo", NULL, 0);
    run_until(hook_is_closed, 3000);
    assert_true(hook_closed);
    assert_int_equal(b.ndone, 0);
    /* from on_data (inside curl): torn down once curl returns */
    up_open(0);
    hook_closed = false;
    res_init(&c);
    res_init(&d);
    begin(&d, "GET", "/forever", NULL, 0);
    c.hook_data = close_from_callback;
    begin(&c, "GET", "/stream?n=3&gap=20", NULL, 0);
    run_until(hook_is_closed, 3000);
    assert_true(hook_closed);
    run_for(50);
    assert_int_equal(c.ndone + d.ndone, 0);
    assert_int_equal(c.chunks, 1);
    end(&a);
    end(&b);
    end(&c);
    end(&d);
}

/* ======================================================================
 * Close with requests in flight; memory per request
 * ==================================================================== */

static void close_frees_inflight_and_queued(void **state)
{
    struct res x[5];
    up_open(2);
    srv_closes_seen = atomic_load(&srv_closes);
    for (int i = 0; i < 5; i++) {
        res_init(&x[i]);
        x[i].idle_ms = 5000;
        x[i].total_ms = 5000;
        begin(&x[i], "GET", "/forever", NULL, 0);
    }
    while (x[0].chunks == 0 || x[1].chunks == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(sb_upstream_queued(up), 3);
    up_close();
    for (int i = 0; i < 5; i++)
        assert_int_equal(x[i].ndone, 0);
    /* both running streams' connections were closed */
    for (int i = 0; i < 200 && atomic_load(&srv_closes) < srv_closes_seen + 2; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&srv_closes), srv_closes_seen + 2);
    for (int i = 0; i < 5; i++)
        end(&x[i]);
}

static struct res *held;
static int nheld;
static bool all_holding(void)
{
    for (int i = 0; i < nheld; i++)
        if (held[i].chunks == 0)
            return false;
    return true;
}

/* Heap per open stream, all included (ours, curl's easy handle and
 * connection, its receive buffer); printed, and bounded loosely. */
static void memory_per_open_stream(void **state)
{
    enum { N = 300 };
    held = calloc(N, sizeof(*held));
    nheld = N;
    up_open(0);
    for (int i = 0; i < N; i++)
        res_init(&held[i]);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++)
        begin(&held[i], "POST", "/hold", "{\"stream\":true}", 15);
    run_until(all_holding, 8000);
    assert_true(all_holding());
    struct mallinfo2 after = mallinfo2();
    if (before.uordblks && after.uordblks > before.uordblks) {
        size_t per = (after.uordblks - before.uordblks) / N;
        print_message("heap per open upstream stream: %zu bytes\n", per);
        assert_true(per < 64 * 1024);
    }
    up_close();
    pending = 0;
    for (int i = 0; i < N; i++)
        end(&held[i]);
    free(held);
}

int main(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* These tests are curl's (its FIFO, its memory); h1_test.c has the native path's. */
    setenv("SWITCHBOARD_UPSTREAM", "curl", 1);
    server_start();
    uv_loop_init(&loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_headers_status_and_methods),
        cmocka_unit_test(post_bodies_reuse_one_connection),
        cmocka_unit_test(bad_input_is_refused_without_callbacks),
        cmocka_unit_test(only_http_and_https),
        cmocka_unit_test(streams_chunk_by_chunk),
        cmocka_unit_test(pause_resume_delivers_each_byte_once),
        cmocka_unit_test(cancel_closes_the_upstream_connection),
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(connect_timeout),
        cmocka_unit_test(total_and_idle_timeouts),
        cmocka_unit_test(two_hundred_concurrent),
        cmocka_unit_test(fifo_caps_running_transfers),
        cmocka_unit_test(fifo_order_queued_timeout_and_cancel),
        cmocka_unit_test(callbacks_start_requests),
        cmocka_unit_test(callbacks_cancel_and_resume_others),
        cmocka_unit_test(close_inside_callbacks),
        cmocka_unit_test(close_frees_inflight_and_queued),
        cmocka_unit_test(memory_per_open_stream),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    /* Every handle of the client was closed: the loop closes cleanly. */
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "uv_loop_close: handles left open\n");
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
