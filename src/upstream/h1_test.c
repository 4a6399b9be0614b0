/* SPDX-License-Identifier: MIT */
/*
 * h1_test.c - the native HTTP/1.1 path: its response framing driven with
 * bytes alone (every split point), then the pool against a tiny scripted
 * server on 127.0.0.1 (upstream_testlib.h, shared with client_test.c: one
 * blocking thread per connection, so each script reads top to bottom; the
 * client's loop is the only event loop here).
 */
#include <curl/curl.h>

#include "upstream/internal.h"
#include "upstream/upstream_testlib.h"

/* ======================================================================
 * Framing alone: the same response in every split gives the same result
 * ==================================================================== */

struct seen {
    int nhead, status;
    char hdrs[512];
    struct sb_buf body;
    int pause_left; /* refuse this many offers */
    size_t refused; /* bytes refused in the last offer */
};

static int p_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct seen *s = ud;
    s->nhead++;
    s->status = status;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s->hdrs + len, sizeof(s->hdrs) - len, "%.*s=%.*s;",
                                (int)h[i].name.len, h[i].name.p, (int)h[i].value.len, h[i].value.p);
    return 0;
}

static int p_data(void *ud, const char *p, size_t n)
{
    struct seen *s = ud;
    if (s->pause_left > 0) {
        s->pause_left--;
        s->refused = n;
        return SB_UREQ_PAUSE;
    }
    sb_buf_append(&s->body, p, n);
    return 0;
}

/* Feeds r[0..len) in pieces cut at `cut` (0 = whole), resuming pauses the
 * way h1.c does; returns the last rc. */
static enum sb__h1_rc drive(struct seen *s, const char *r, size_t len, size_t cut, bool eof)
{
    struct sb__h1_resp rp;
    enum sb__h1_rc rc = SB__H1_MORE;
    memset(s, 0, sizeof(*s));
    sb_buf_init(&s->body, 0);
    s->pause_left = 2;
    sb__h1_resp_init(&rp, false);
    rp.on_head = p_head;
    rp.on_data = p_data;
    rp.ud = s;
    size_t off = 0;
    while (off < len && (rc == SB__H1_MORE || rc == SB__H1_PAUSED)) {
        size_t n = cut && len - off > cut ? cut : len - off, used = 0;
        rc = sb__h1_resp_feed(&rp, r + off, n, &used);
        if (rc == SB__H1_PAUSED) {
            assert_true(rp.held_p >= r + off && rp.held_p <= r + off + used + 1);
            assert_int_equal(rp.held, s->refused);
            sb_buf_append(&s->body, rp.held_p, rp.held); /* the consumer takes them now */
            rc = SB__H1_MORE;
        }
        off += used;
    }
    if (eof && rc == SB__H1_MORE)
        rc = sb__h1_resp_eof(&rp);
    sb__h1_resp_free(&rp);
    return rc;
}

static void check_every_split(const char *r, bool eof, const char *want_body, int want_status,
                              const char *want_hdrs)
{
    size_t len = strlen(r);
    for (size_t cut = 0; cut <= len; cut++) {
        struct seen s;
        enum sb__h1_rc rc = drive(&s, r, len, cut, eof);
        assert_int_equal(rc, SB__H1_DONE);
        assert_int_equal(s.nhead, 1);
        assert_int_equal(s.status, want_status);
        assert_string_equal(s.hdrs, want_hdrs);
        assert_int_equal(s.body.len, strlen(want_body));
        assert_memory_equal(s.body.p ? s.body.p : "", want_body, s.body.len);
        sb_buf_free(&s.body);
    }
}

static void framing_in_every_split(void **state)
{
    check_every_split("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world", false,
                      "hello world", 200, "Content-Length=11;X-A=1;");
    check_every_split("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
                      false, "hello world", 201, "Transfer-Encoding=chunked;");
    check_every_split("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true,
                      "until the end", 200, "Content-Type=text/plain;");
    check_every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                      "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
                      false, "no", 404, "Content-Length=2;");
    check_every_split("HTTP/1.1 204 No Content\r\nX-B: \r\n\r\n", false, "", 204, "X-B=;");
}

static void framing_refuses_junk(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 2OO OK\r\n\r\n",
        "SMTP ready\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct seen s;
        assert_int_equal(drive(&s, bad[i], strlen(bad[i]), 0, false), SB__H1_ERROR);
        sb_buf_free(&s.body);
    }
    /* cut short: a Content-Length body, a chunked one, a head */
    static const char *const cut[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        "HTTP/1.1 200 OK\r\nX-A",
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        struct seen s;
        assert_int_equal(drive(&s, cut[i], strlen(cut[i]), 0, true), SB__H1_ERROR);
        sb_buf_free(&s.body);
    }
    /* a head over 64 KiB */
    struct sb_buf big;
    sb_buf_init(&big, 0);
    sb_buf_append_cstr(&big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 2000; i++)
        sb_buf_printf(&big, "X-Filler-%d: %040d\r\n", i, i);
    struct seen s;
    struct sb__h1_resp rp;
    sb__h1_resp_init(&rp, false);
    rp.on_head = p_head;
    rp.on_data = p_data;
    rp.ud = &s;
    memset(&s, 0, sizeof(s));
    size_t used;
    assert_int_equal(sb__h1_resp_feed(&rp, big.p, big.len, &used), SB__H1_ERROR);
    assert_string_equal(rp.why, SB__HEAD_TOO_BIG);
    sb__h1_resp_free(&rp);
    sb_buf_free(&big);
}

/* ======================================================================
 * The scripted server
 * ==================================================================== */

static atomic_int srv_closes; /* a /forever or /stall saw its client go away */
static atomic_int srv_drops;  /* /drop-next connections closed without an answer */

#define DROP_NEXT 1 /* sbt_conn.mark: close instead of answering the next request */

/* The request head as received, then its body, as the body of a 200 (in
 * one write: the pause test counts the offers it gets). */
static int serve_echo(struct sbt_conn *c, const struct sbt_req *q)
{
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nX-Conn: %d\r\nX-Method: %s\r\nContent-Length: %zu\r\n\r\n",
            c->id, q->method, q->hlen + q->clen);
    if (strcmp(q->method, "HEAD") == 0)
        return 0;
    char *all = malloc(q->hlen + q->clen);
    memcpy(all, q->head, q->hlen);
    memcpy(all + q->hlen, q->body, q->clen);
    int rc = sbt_send_all(c->fd, all, q->hlen + q->clen);
    free(all);
    return rc;
}

/* 1 MiB in uneven writes. */
static int serve_big(struct sbt_conn *c)
{
    size_t total = 1 << 20;
    char *b = malloc(total);
    for (size_t i = 0; i < total; i++)
        b[i] = (char)((i * 2654435761u) >> 24);
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", total);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < total; off += 7001)
        rc = sbt_send_all(c->fd, b + off, total - off < 7001 ? total - off : 7001);
    free(b);
    return rc;
}

/* A chunk, then a chunk each 10 ms (/forever) or nothing (/stall), until
 * the client goes away; returns -1. */
static int serve_forever(struct sbt_conn *c, bool stall)
{
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ntick\r\n");
    while (!sbt_client_gone(c->fd, 10))
        if (!stall && sbt_chunk(c->fd, "tick") < 0)
            break;
    atomic_fetch_add(&srv_closes, 1);
    return -1;
}

/* Answers one request; < 0 closes the connection. */
static int serve(struct sbt_conn *c, const struct sbt_req *q)
{
    const char *path = q->path;
    if (c->mark == DROP_NEXT) {
        atomic_fetch_add(&srv_drops, 1);
        return -1;
    }
    if (strcmp(path, "/echo") == 0 || strcmp(path, "/drop-next") == 0 ||
        strncmp(path, "/echo?", 6) == 0) {
        c->mark = strcmp(path, "/drop-next") == 0 ? DROP_NEXT : 0;
        return serve_echo(c, q);
    }
    if (strcmp(path, "/hangup") == 0)
        return -1;
    if (strcmp(path, "/chunked") == 0)
        return sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "6\r\nhello \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n");
    if (strcmp(path, "/info") == 0)
        return sbt_say(c->fd,
                       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok");
    if (strcmp(path, "/eof") == 0) {
        sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ");
        usleep(20000);
        sbt_say(c->fd, "the end");
        return -1;
    }
    if (strcmp(path, "/conn-close") == 0)
        return sbt_say(c->fd,
                       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye");
    if (strcmp(path, "/idle-close") == 0) {
        sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        usleep(30000);
        return -1; /* the server's keep-alive timeout, while the client holds it idle */
    }
    if (strncmp(path, "/big", 4) == 0)
        return serve_big(c);
    if (strcmp(path, "/forever") == 0 || strcmp(path, "/stall") == 0)
        return serve_forever(c, path[1] == 's');
    if (strcmp(path, "/silent") == 0) {
        while (!sbt_client_gone(c->fd, 1000))
            ;
        return -1;
    }
    return sbt_say(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

/* ======================================================================
 * The client side: one sb_h1 pool per test on one loop
 * ==================================================================== */

static struct sb_h1 *pool;

static struct sb_ureq *start_on_pool(const struct sb_ureq_spec *s, const struct sb_ureq_cbs *cbs,
                                     void *ud, struct sb_error *err)
{
    return sb__h1_start(pool, s, cbs, ud, err);
}

/* After every test: a failed one leaves the pool open, requests in flight
 * and their timers on the loop; none of that may reach the next test. */
static int after_test(void **state)
{
    if (pool)
        sb__h1_close(pool, NULL, NULL); /* no callback runs after this */
    pool = NULL;
    return sbt_loop_clean();
}

static void pool_open(void)
{
    pool = sb__h1_create(&sbt_loop, 60);
    sbt_pending = 0;
}

static void pool_close(void)
{
    sbt_closed_flag = false;
    sb__h1_close(pool, sbt_on_closed, &sbt_closed_flag);
    assert_false(sbt_closed_flag); /* never from inside */
    sbt_run_until(sbt_is_closed, 2000);
    assert_true(sbt_closed_flag);
    pool = NULL;
}

static bool has(const struct sbt_res *x, const char *s)
{
    return x->body.p && strstr(x->body.p, s);
}

/* ======================================================================
 * Requests over the pool
 * ==================================================================== */

static void request_head_and_framings(void **state)
{
    static struct sbt_res a, b, c, d, e;
    pool_open();
    sbt_res_init(&a);
    sbt_res_init(&b);
    sbt_res_init(&c);
    sbt_res_init(&d);
    sbt_res_init(&e);
    sbt_begin(&a, "POST", "/echo", "{\"x\":1}", 7);
    sbt_begin(&b, "GET", "/chunked", NULL, 0);
    sbt_begin(&c, "GET", "/eof", NULL, 0);
    sbt_begin(&d, "GET", "/info", NULL, 0);
    sbt_begin(&e, "HEAD", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(a.status, 200);
    assert_true(has(&a, "POST /echo HTTP/1.1\r\n"));
    assert_true(has(&a, "\r\nHost: 127.0.0.1:"));
    assert_true(has(&a, "\r\nAuthorization: Bearer k\r\n"));
    assert_true(has(&a, "\r\nX-Empty: \r\n"));
    assert_true(has(&a, "\r\nContent-Length: 7\r\n\r\n{\"x\":1}"));
    assert_false(has(&a, "999"));
    assert_int_equal(b.rc, SB_OK);
    assert_int_equal(b.body.len, 11);
    assert_memory_equal(b.body.p, "hello world", 11);
    assert_int_equal(c.rc, SB_OK);
    assert_string_equal(c.body.p, "until the end");
    assert_int_equal(d.rc, SB_OK);
    assert_int_equal(d.nhead, 1);
    assert_int_equal(d.status, 200);
    assert_string_equal(d.final, "yes");
    assert_string_equal(d.body.p, "ok");
    assert_int_equal(e.rc, SB_OK); /* HEAD: a Content-Length, no body */
    assert_int_equal(e.body.len, 0);
    /* five at once: five connections; /eof's was closed, the rest kept */
    assert_int_equal(sb__h1_idle(pool), 4);
    sbt_end(&a);
    sbt_end(&b);
    sbt_end(&c);
    sbt_end(&d);
    sbt_end(&e);
    pool_close();
}

static void keep_alive_reuses_one_connection(void **state)
{
    pool_open();
    int before = atomic_load(&sbt_conns);
    char first[16] = "";
    for (int i = 0; i < 20; i++) {
        static struct sbt_res x;
        sbt_res_init(&x);
        sbt_begin(&x, i % 2 ? "POST" : "GET", "/echo", i % 2 ? "body" : NULL, i % 2 ? 4 : 0);
        sbt_run_until(NULL, 2000);
        assert_int_equal(x.rc, SB_OK);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", x.conn);
        assert_string_equal(x.conn, first);
        sbt_end(&x);
    }
    assert_int_equal(atomic_load(&sbt_conns) - before, 1);
    assert_int_equal(sb__h1_conns(pool), 1);
    assert_int_equal(sb__h1_idle(pool), 1);
    /* Connection: close is respected: that connection is not kept */
    static struct sbt_res y;
    sbt_res_init(&y);
    sbt_begin(&y, "GET", "/conn-close", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(y.rc, SB_OK);
    assert_string_equal(y.body.p, "bye");
    assert_int_equal(sb__h1_conns(pool), 0);
    sbt_end(&y);
    /* a name, through the resolver */
    static struct sbt_res z;
    sbt_res_init(&z);
    z.host = "localhost";
    sbt_begin(&z, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
    if (z.rc != SB_OK) /* localhost may resolve to ::1 first; then 127.0.0.1 is tried */
        fail_msg("localhost: %s", z.msg);
    assert_true(has(&z, "\r\nHost: localhost:"));
    sbt_end(&z);
    pool_close();
}

static bool pool_empty(void)
{
    return sb__h1_conns(pool) == 0;
}

static void stale_connections_are_dropped_or_retried(void **state)
{
    pool_open();
    /* The server closes an idle connection (30 ms after its answer): it
     * leaves the pool as soon as the EOF is read, long before the sweep
     * could have dropped it (idle 30 s). A fixed 150 ms wait was not
     * always enough for the server's thread on a loaded machine. */
    static struct sbt_res a;
    sbt_res_init(&a);
    sbt_begin(&a, "GET", "/idle-close", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(a.rc, SB_OK);
    sbt_run_until(pool_empty, 5000);
    assert_int_equal(sb__h1_idle(pool), 0);
    assert_int_equal(sb__h1_conns(pool), 0);
    sbt_end(&a);
    /* The close crosses our reuse: nothing came back, so once more on a
     * fresh connection, which the caller never notices. */
    int drops = atomic_load(&srv_drops), conns = atomic_load(&sbt_conns);
    static struct sbt_res b, c;
    sbt_res_init(&b);
    sbt_begin(&b, "GET", "/drop-next", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(b.rc, SB_OK);
    sbt_res_init(&c);
    sbt_begin(&c, "POST", "/echo", "again", 5);
    sbt_run_until(NULL, 2000);
    assert_int_equal(c.rc, SB_OK);
    assert_true(has(&c, "again"));
    assert_int_equal(atomic_load(&srv_drops), drops + 1);
    assert_int_equal(atomic_load(&sbt_conns), conns + 2);
    assert_string_not_equal(b.conn, c.conn);
    sbt_end(&b);
    sbt_end(&c);
    /* A fresh connection that fails is not retried. */
    conns = atomic_load(&sbt_conns);
    static struct sbt_res d;
    sbt_res_init(&d);
    sbt_begin(&d, "GET", "/hangup", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(d.rc, SB_E_UPSTREAM);
    assert_non_null(strstr(d.msg, "closed without a response by 127.0.0.1:"));
    assert_int_equal(atomic_load(&sbt_conns), conns + 1);
    sbt_end(&d);
    pool_close();
}

static void pause_resume_delivers_the_same_bytes(void **state)
{
    pool_open();
    static struct sbt_res x;
    sbt_res_init(&x);
    x.pause_every = 3;
    x.resume_ms = 5;
    sbt_begin(&x, "GET", "/big", NULL, 0);
    sbt_run_until(NULL, 10000);
    assert_int_equal(x.rc, SB_OK);
    assert_int_equal(x.body.len, 1 << 20);
    for (size_t i = 0; i < x.body.len; i++)
        if (x.body.p[i] != (char)((i * 2654435761u) >> 24))
            fail_msg("byte %zu differs", i);
    assert_true(x.redelivered_ok > 3);
    assert_int_equal(x.redelivery_bad, 0);
    assert_int_equal(sb__h1_idle(pool), 1); /* paused and resumed, still reusable */
    sbt_end(&x);
    /* The whole answer refused once, so it completes on resume; the
     * connection is then reused, and still notices the server's answers. */
    for (int i = 0; i < 3; i++) {
        static struct sbt_res y;
        sbt_res_init(&y);
        y.pause_every = 1;
        y.resume_ms = 5;
        sbt_begin(&y, "POST", "/echo", "twice", 5);
        sbt_run_until(NULL, 2000);
        assert_int_equal(y.rc, SB_OK);
        assert_true(has(&y, "twice"));
        assert_int_equal(y.redelivered_ok, 1);
        assert_int_equal(sb__h1_conns(pool), 1);
        sbt_end(&y);
    }
    pool_close();
}

static bool server_saw_close_since(int seen)
{
    for (int i = 0; i < 1000 && atomic_load(&srv_closes) <= seen; i++)
        usleep(5000);
    return atomic_load(&srv_closes) > seen;
}

static void cancel_mid_body_closes_the_connection(void **state)
{
    pool_open();
    int seen = atomic_load(&srv_closes);
    static struct sbt_res x;
    sbt_res_init(&x);
    x.cancel_at = 3;
    sbt_begin(&x, "GET", "/forever", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_true(x.cancelled);
    assert_int_equal(x.ndone, 0);
    assert_int_equal(sb__h1_conns(pool), 0);
    assert_true(server_saw_close_since(seen));
    sbt_end(&x);
    pool_close();
}

static void connect_refused_and_timeouts(void **state)
{
    pool_open();
    int closed_port, filled_port;
    close(sbt_loopback_socket(-1, &closed_port));
    static struct sbt_res a;
    sbt_res_init(&a);
    a.port = closed_port;
    sbt_begin(&a, "GET", "/", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_non_null(strstr(a.msg, "refused"));
    sbt_end(&a);
    /* Backlog 0 with one connection parked: further SYNs are dropped. */
    int lfd = sbt_loopback_socket(0, &filled_port);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)filled_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static struct sbt_res b, c, d;
    sbt_res_init(&b);
    b.port = filled_port;
    b.connect_ms = 150;
    b.total_ms = 5000;
    sbt_begin(&b, "GET", "/", NULL, 0);
    sbt_res_init(&c);
    c.total_ms = 200;
    sbt_begin(&c, "GET", "/silent", NULL, 0);
    sbt_res_init(&d);
    d.idle_ms = 150;
    d.total_ms = 5000;
    sbt_begin(&d, "GET", "/stall", NULL, 0);
    sbt_run_until(NULL, 8000);
    /* Each deadline by its words, not early, and well before the 5 s total
     * ones; the upper bounds leave a loaded machine's loop seconds of lag. */
    assert_int_equal(b.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(b.msg, "connect to 127.0.0.1:"));
    assert_true(b.t_done - b.t0 >= 140 && b.t_done - b.t0 < 2500);
    assert_int_equal(c.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(c.msg, "total timeout"));
    assert_true(c.t_done - c.t0 >= 190 && c.t_done - c.t0 < 2500);
    assert_int_equal(d.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(d.msg, "idle timeout"));
    assert_true(d.t_done - d.t0 >= 140 && d.t_done - d.t0 < 2500);
    sbt_end(&b);
    sbt_end(&c);
    sbt_end(&d);
    close(filler);
    close(lfd);
    pool_close();
}

/* ======================================================================
 * Callbacks that start, cancel and close
 * ==================================================================== */

static struct sbt_res chained;
static void start_another(struct sbt_res *x)
{
    sbt_res_init(&chained);
    sbt_begin(&chained, "GET", "/echo", NULL, 0); /* reuses the connection just freed */
}

static bool closed_inside;
static void close_inside(struct sbt_res *x)
{
    sb__h1_close(pool, sbt_on_closed, &closed_inside);
}

static void callbacks_start_cancel_and_close(void **state)
{
    pool_open();
    static struct sbt_res a;
    sbt_res_init(&a);
    a.hook_done = start_another;
    sbt_begin(&a, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 2000);
    assert_int_equal(chained.rc, SB_OK);
    assert_string_equal(a.conn, chained.conn);
    sbt_end(&a);
    sbt_end(&chained);
    /* closing the pool from on_done with another request streaming */
    static struct sbt_res b, c;
    sbt_res_init(&b);
    sbt_res_init(&c);
    sbt_begin(&c, "GET", "/forever", NULL, 0);
    b.hook_done = close_inside;
    sbt_begin(&b, "GET", "/echo", NULL, 0);
    closed_inside = false;
    uint64_t t_end = sbt_now_ms() + 2000;
    while (!closed_inside && sbt_now_ms() < t_end)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    assert_true(closed_inside);
    assert_int_equal(b.ndone, 1);
    assert_int_equal(c.ndone, 0); /* dropped without a word */
    sbt_end(&b);
    sbt_end(&c);
    pool = NULL;
}

/* Through sb_upstream: http:// goes native unless the spec or the
 * environment says curl; the counts see both. */
static void dispatch_by_transport(void **state)
{
    struct sb_upstream_opts o = {0};
    struct sb_upstream *u = sb_upstream_create(&sbt_loop, &o);
    struct sb_ureq_spec s = {.method = "GET", .url = "http://127.0.0.1:1/x"};
    struct sb_error err = {0};
    static struct sbt_res x;
    sbt_res_init(&x);
    struct sb_ureq *r = sb_ureq_start(u, &s, &sbt_cbs, &x, &err);
    assert_non_null(r);
    assert_int_equal(*(enum sb__ureq_kind *)(void *)r, SB__UREQ_H1);
    assert_int_equal(sb_upstream_active(u), 1);
    sb_ureq_cancel(r);
    s.transport = SB_UREQ_CURL;
    r = sb_ureq_start(u, &s, &sbt_cbs, &x, &err);
    assert_int_equal(*(enum sb__ureq_kind *)(void *)r, SB__UREQ_CURL);
    sb_ureq_cancel(r);
    s.transport = SB_UREQ_AUTO;
    s.url = "http://user:pw@127.0.0.1:1/x"; /* userinfo: curl's */
    r = sb_ureq_start(u, &s, &sbt_cbs, &x, &err);
    assert_int_equal(*(enum sb__ureq_kind *)(void *)r, SB__UREQ_CURL);
    sb_ureq_cancel(r);
    sbt_closed_flag = false;
    sb_upstream_close(u, sbt_on_closed, &sbt_closed_flag);
    sbt_run_until(sbt_is_closed, 2000);
    assert_true(sbt_closed_flag);
    sbt_end(&x);
}

static void small_sndbuf(uv_handle_t *h, void *arg)
{
    uv_os_fd_t fd;
    int size = 16384;
    if (h->type == UV_TCP && uv_fileno(h, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* A body whose pieces lie partly in a spool file (a long prompt, issue 9
 * item 6) reaches the server byte for byte on both paths: the native one
 * (sendfile, then chunks through libuv's queue once the socket is full: 3 MB
 * is far over a loopback socket's buffer) and curl's read callback; twice
 * each, as a failover resends the same pieces. */
static void spooled_pieces_on_both_paths(void **state)
{
    char dir[] = "/tmp/sb-h1-spool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sb_spool *sp;
    struct sb_error err = {0};
    assert_int_equal(sb_spool_create(dir, &sp, &err), SB_OK);
    size_t n = 3 * 1024 * 1024 + 5;
    char *src = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (char)('a' + (i * 31) % 26);
    assert_int_equal(sb_spool_write(sp, src, n, &err), SB_OK);
    struct sb_slice map;
    assert_int_equal(sb_spool_map(sp, &map, &err), SB_OK);
    sb_spool_release(sp);
    /* memory, file, memory, file (the rest): as openai.c splices a model */
    const struct sb_slice parts[] = {SB_SLICE("{\"model\":\"x\""),
                                     {map.p + 10, 1000000},
                                     SB_SLICE("MID"),
                                     {map.p + 1000010, n - 1000010}};
    size_t total = 0;
    for (size_t i = 0; i < 4; i++)
        total += parts[i].len;
    char *want = malloc(total);
    for (size_t i = 0, at = 0; i < 4; at += parts[i].len, i++)
        memcpy(want + at, parts[i].p, parts[i].len);

    struct sb_upstream_opts o = {0};
    struct sb_upstream *u = sb_upstream_create(&sbt_loop, &o);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo?late_ms=200", sbt_port);
    /* A small request leaves an idle connection whose send buffer is then
     * made small (no autotuning): the big body fills it while the server
     * sleeps before reading (late_ms), so sendfile stops short and the rest
     * goes as chunks through libuv's queue (pump_written). */
    static struct sbt_res w;
    sbt_res_init(&w);
    struct sb_ureq_spec ws = {.method = "GET", .url = url, .transport = SB_UREQ_NATIVE};
    w.r = sb_ureq_start(u, &ws, &sbt_cbs, &w, &err);
    sbt_pending++;
    sbt_run_until(NULL, 3000);
    assert_int_equal(w.rc, SB_OK);
    sbt_end(&w);
    uv_walk(&sbt_loop, small_sndbuf, NULL);
    for (int i = 0; i < 4; i++) {
        struct sb_ureq_spec s = {.method = "POST",
                                 .url = url,
                                 .parts = parts,
                                 .nparts = 4,
                                 .spool = sp,
                                 .transport = i < 2 ? SB_UREQ_NATIVE : SB_UREQ_CURL};
        static struct sbt_res x;
        sbt_res_init(&x);
        x.r = sb_ureq_start(u, &s, &sbt_cbs, &x, &err);
        assert_non_null(x.r);
        sbt_pending++;
        sbt_run_until(NULL, 10000);
        assert_int_equal(x.rc, SB_OK);
        assert_int_equal(x.status, 200);
        const char *body = memmem(x.body.p, x.body.len, "\r\n\r\n", 4);
        assert_non_null(body);
        body += 4;
        assert_int_equal(x.body.len - (size_t)(body - x.body.p), total);
        assert_memory_equal(body, want, total);
        char cl[64];
        int k = snprintf(cl, sizeof(cl), "ontent-Length: %zu\r\n", total);
        assert_non_null(memmem(x.body.p, (size_t)(body - x.body.p), cl, (size_t)k));
        sbt_end(&x);
    }
    sbt_closed_flag = false;
    sb_upstream_close(u, sbt_on_closed, &sbt_closed_flag);
    sbt_run_until(sbt_is_closed, 2000);
    sb_spool_free(sp);
    rmdir(dir);
    free(src);
    free(want);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    unsetenv("SWITCHBOARD_UPSTREAM");
    sbt_server_start(serve);
    static const struct sb_kv hdr[] = {
        {SB_SLICE("Authorization"), SB_SLICE("Bearer k")},
        {SB_SLICE("X-Empty"), SB_SLICE("")},
        {SB_SLICE("Content-Length"), SB_SLICE("999")}, /* ignored: ours is the truth */
    };
    sbt_client = (struct sbt_client){start_on_pool, hdr, 3};
    uv_loop_init(&sbt_loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_in_every_split),
        cmocka_unit_test(framing_refuses_junk),
        cmocka_unit_test_teardown(request_head_and_framings, after_test),
        cmocka_unit_test_teardown(keep_alive_reuses_one_connection, after_test),
        cmocka_unit_test_teardown(stale_connections_are_dropped_or_retried, after_test),
        cmocka_unit_test_teardown(pause_resume_delivers_the_same_bytes, after_test),
        cmocka_unit_test_teardown(cancel_mid_body_closes_the_connection, after_test),
        cmocka_unit_test_teardown(connect_refused_and_timeouts, after_test),
        cmocka_unit_test_teardown(callbacks_start_cancel_and_close, after_test),
        cmocka_unit_test_teardown(dispatch_by_transport, after_test),
        cmocka_unit_test_teardown(spooled_pieces_on_both_paths, after_test),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_run(&sbt_loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&sbt_loop) != 0) {
        fprintf(stderr, "uv_loop_close: handles left open\n");
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
