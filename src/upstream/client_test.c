/* SPDX-License-Identifier: MIT */
/*
 * client_test.c - the upstream client (its libcurl path) against a small
 * scripted HTTP/1.1 server on 127.0.0.1 (upstream_testlib.h: one blocking
 * thread per connection, so a script reads top to bottom, and the client's
 * loop is the only event loop here). Timing claims are bounded by what they
 * tell apart (a deadline against the server's answer seconds later), or made
 * causal (the server waits for what the client saw), so a loaded machine's
 * scheduler cannot fail them.
 */
#include <malloc.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "upstream/upstream_testlib.h"

/* ======================================================================
 * The test server's script
 * ==================================================================== */

static atomic_int srv_closes;       /* /forever or /hold saw its client go away */
static atomic_ullong srv_closed_at; /* sbt_now_ms() of the last such close */
static atomic_int srv_gave_up;      /* /stream?lockstep=1 stopped waiting for the client */
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static int srv_inflight, srv_max_inflight; /* /order requests being answered (under srv_mu) */
static int srv_order[64], srv_norder;      /* /order ids in arrival order (under srv_mu) */

static void note_closed(void)
{
    atomic_store(&srv_closed_at, sbt_now_ms());
    atomic_fetch_add(&srv_closes, 1);
}

static void serve_echo(struct sbt_conn *c, const struct sbt_req *q)
{
    char auth[128] = "", custom[128] = "", empty[8] = "-";
    sbt_header(q, "authorization", auth, sizeof(auth));
    sbt_header(q, "x-custom", custom, sizeof(custom));
    sbt_header(q, "x-empty", empty, sizeof(empty));
    sbt_say(c->fd,
            "HTTP/1.1 200 OK\r\nX-Method: %s\r\nX-Conn: %d\r\nX-Auth: %s\r\nX-Custom: %s\r\n"
            "X-Empty-Seen: %s\r\nContent-Length: %zu\r\n\r\n",
            q->method, c->id, auth, custom, empty[0] ? "no" : "yes", q->clen);
    sbt_send_all(c->fd, q->body, q->clen);
}

/* Waits (at most 5 s) until the consumer has taken n chunks: a client that
 * held chunks back would keep the script waiting, whatever the load. */
static void await_consumed(int n)
{
    uint64_t end = sbt_now_ms() + 5000;
    while (atomic_load(&sbt_consumed) < n && sbt_now_ms() < end)
        usleep(1000);
    if (atomic_load(&sbt_consumed) < n)
        atomic_fetch_add(&srv_gave_up, 1);
}

/* n chunks "c<i>|", gap ms apart; with lockstep=1 each one only once the
 * consumer has the one before (the test resets sbt_consumed first). */
static void serve_stream(struct sbt_conn *c, const struct sbt_req *q)
{
    long n = sbt_qparam(q->path, "n", 3), gap = sbt_qparam(q->path, "gap", 50);
    bool lockstep = sbt_qparam(q->path, "lockstep", 0) == 1;
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (long i = 0; i < n && i < 8; i++) {
        char part[16];
        snprintf(part, sizeof(part), "c%ld|", i);
        if (lockstep && i > 0)
            await_consumed((int)i);
        sbt_chunk(c->fd, part);
        usleep((useconds_t)gap * 1000);
    }
    sbt_say(c->fd, "0\r\n\r\n");
}

/* Byte i of /big's body: no short period, so a repeat or a gap shows. */
static char big_byte(size_t i)
{
    return (char)((i * 2654435761u) >> 24);
}

static void serve_big(struct sbt_conn *c, const struct sbt_req *q)
{
    size_t n = (size_t)sbt_qparam(q->path, "n", 100000);
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = big_byte(i);
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    sbt_send_all(c->fd, b, n);
    free(b);
}

/* Streams (for 10 s at least) until the client goes away, watching for its
 * FIN/RST between chunks; returns -1 (the connection is done). */
static int serve_forever(struct sbt_conn *c)
{
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 1000; i++)
        if (sbt_chunk(c->fd, "tok") < 0 || sbt_client_gone(c->fd, 10))
            break;
    note_closed();
    return -1;
}

/* One chunk, then silence until the client goes away (20 s at most); returns -1. */
static int serve_hold(struct sbt_conn *c)
{
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    sbt_chunk(c->fd, "held");
    sbt_client_gone(c->fd, 20000);
    note_closed();
    return -1;
}

/* Logs arrival order and how many /order requests overlap. */
static void serve_order(struct sbt_conn *c, const struct sbt_req *q)
{
    pthread_mutex_lock(&srv_mu);
    if (srv_norder < 64)
        srv_order[srv_norder++] = (int)sbt_qparam(q->path, "id", -1);
    if (++srv_inflight > srv_max_inflight)
        srv_max_inflight = srv_inflight;
    pthread_mutex_unlock(&srv_mu);
    usleep((useconds_t)sbt_qparam(q->path, "ms", 20) * 1000);
    pthread_mutex_lock(&srv_mu);
    srv_inflight--;
    pthread_mutex_unlock(&srv_mu);
    sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

static int serve_one(struct sbt_conn *c, const struct sbt_req *q)
{
    const char *p = q->path;
    if (strncmp(p, "/echo", 5) == 0) {
        serve_echo(c, q);
    } else if (strncmp(p, "/status", 7) == 0) {
        sbt_say(c->fd, "HTTP/1.1 %ld Nope\r\nContent-Length: 4\r\n\r\nnope",
                sbt_qparam(p, "code", 404));
    } else if (strncmp(p, "/stream", 7) == 0) {
        serve_stream(c, q);
    } else if (strncmp(p, "/big", 4) == 0) {
        serve_big(c, q);
    } else if (strncmp(p, "/slow", 5) == 0) {
        usleep((useconds_t)sbt_qparam(p, "ms", 1000) * 1000);
        sbt_say(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strncmp(p, "/silent", 7) == 0) {
        sbt_say(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        sbt_chunk(c->fd, "first");
        usleep((useconds_t)sbt_qparam(p, "ms", 1000) * 1000);
        sbt_say(c->fd, "0\r\n\r\n");
    } else if (strncmp(p, "/order", 6) == 0) {
        serve_order(c, q);
    } else if (strncmp(p, "/forever", 8) == 0) {
        return serve_forever(c);
    } else if (strncmp(p, "/hold", 5) == 0) {
        return serve_hold(c);
    } else {
        sbt_say(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    return 0;
}

/* ======================================================================
 * The client side: one sb_upstream per test on one loop
 * ==================================================================== */

static struct sb_upstream *up;

/* After every test: a failed one leaves up open, requests in flight and
 * their timers on the loop; none of that may reach the next test. */
static struct sb_ureq *start_on_up(const struct sb_ureq_spec *s, const struct sb_ureq_cbs *cbs,
                                   void *ud, struct sb_error *err)
{
    return sb_ureq_start(up, s, cbs, ud, err);
}

static int after_test(void **state)
{
    if (up)
        sb_upstream_close(up, NULL, NULL); /* no callback runs after this */
    up = NULL;
    return sbt_loop_clean();
}

static void up_open(long max_transfers)
{
    struct sb_upstream_opts o = {.max_transfers = max_transfers};
    up = sb_upstream_create(&sbt_loop, &o);
    sbt_pending = 0;
}

/* Closes up (whatever is in flight) and waits for its last close callback. */
static void up_close(void)
{
    sbt_closed_flag = false;
    if (up)
        sb_upstream_close(up, sbt_on_closed, &sbt_closed_flag);
    sbt_run_until(sbt_is_closed, 2000);
    assert_true(sbt_closed_flag);
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
    static struct sbt_res a, b, c, d;
    up_open(0);
    sbt_res_init(&a);
    sbt_res_init(&b);
    sbt_res_init(&c);
    sbt_res_init(&d);
    sbt_begin(&a, "GET", "/echo", NULL, 0);
    sbt_begin(&b, "GET", "/status?code=404", NULL, 0);
    sbt_begin(&c, "PUT", "/echo", "put-body", 8);
    sbt_begin(&d, "DELETE", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
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
    sbt_end(&a);
    sbt_end(&b);
    sbt_end(&c);
    sbt_end(&d);
    up_close();
}

static void post_bodies_reuse_one_connection(void **state)
{
    enum { BIG = 1 << 20 };
    static struct sbt_res a, b, c;
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = big_byte(i);
    up_open(0);
    int before = atomic_load(&sbt_conns);
    sbt_res_init(&a);
    sbt_begin(&a, "POST", "/echo", "{\"hello\":1}", 11);
    sbt_run_until(NULL, 3000);
    sbt_res_init(&b);
    sbt_begin(&b, "POST", "/echo", big, BIG);
    sbt_run_until(NULL, 3000);
    sbt_res_init(&c);
    sbt_begin(&c, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.body.p, "{\"hello\":1}");
    assert_int_equal(b.rc, SB_OK);
    assert_int_equal(b.body.len, BIG);
    assert_memory_equal(b.body.p, big, BIG);
    /* keep-alive: all three went over the first one's connection */
    assert_int_equal(atomic_load(&sbt_conns) - before, 1);
    assert_string_equal(a.conn, b.conn);
    assert_string_equal(a.conn, c.conn);
    sbt_end(&a);
    sbt_end(&b);
    sbt_end(&c);
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
    assert_null(sb_ureq_start(up, &s, &sbt_cbs, NULL, &err));
    assert_int_equal(err.code, SB_E_BAD_REQUEST);
    s.headers = colon;
    assert_null(sb_ureq_start(up, &s, &sbt_cbs, NULL, &err));
    s.nheaders = 0;
    s.method = "GET /x HTTP/1.1\r\n";
    assert_null(sb_ureq_start(up, &s, &sbt_cbs, NULL, &err));
    s.method = "GET";
    s.url = NULL;
    assert_null(sb_ureq_start(up, &s, &sbt_cbs, NULL, &err));
    up_close();
}

static void only_http_and_https(void **state)
{
    static struct sbt_res a;
    struct sb_ureq_spec s = {.method = "GET", .url = "file:///etc/passwd"};
    struct sb_error err = {0};
    up_open(0);
    sbt_res_init(&a);
    a.r = sb_ureq_start(up, &s, &sbt_cbs, &a, &err);
    assert_non_null(a.r);
    sbt_pending++;
    sbt_run_until(NULL, 2000);
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_int_equal(a.body.len, 0);
    sbt_end(&a);
    up_close();
}

/* ======================================================================
 * Streaming, pause and resume
 * ==================================================================== */

static void streams_chunk_by_chunk(void **state)
{
    static struct sbt_res x;
    up_open(0);
    sbt_res_init(&x);
    /* The server sends each chunk only once the consumer has the one
     * before (lockstep): a client that held bytes back would stall it. A
     * gap-and-clock version of this failed on a loaded machine. */
    atomic_store(&sbt_consumed, 0);
    int gave_up = atomic_load(&srv_gave_up);
    sbt_begin(&x, "GET", "/stream?n=4&gap=0&lockstep=1", NULL, 0);
    sbt_run_until(NULL, 30000);
    assert_int_equal(x.rc, SB_OK);
    assert_string_equal(x.body.p, "c0|c1|c2|c3|");
    assert_int_equal(x.chunks, 4);
    /* Each chunk reached the consumer before the server sent the next one. */
    assert_int_equal(atomic_load(&srv_gave_up), gave_up);
    sbt_end(&x);
    up_close();
}

static void pause_resume_delivers_each_byte_once(void **state)
{
    static struct sbt_res s, b;
    up_open(0);
    sbt_res_init(&s);
    sbt_res_init(&b);
    /* Paused for 600 ms at a time with a 300 ms idle timeout: time paused by
     * the consumer is not upstream silence. (The chunks' 30 ms gaps leave
     * 270 ms for a loaded scheduler; 60 ms against 120 ms left 30.) */
    s.pause_every = 1;
    s.max_pauses = 2;
    s.resume_ms = 600;
    s.idle_ms = 300;
    sbt_begin(&s, "GET", "/stream?n=4&gap=30", NULL, 0);
    /* A 600 KB body that stalls every third delivery. */
    b.pause_every = 3;
    b.max_pauses = 1000;
    b.resume_ms = 2;
    sbt_begin(&b, "GET", "/big?n=600000", NULL, 0);
    sbt_run_until(NULL, 10000);
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
    sbt_end(&s);
    sbt_end(&b);
    up_close();
}

/* ======================================================================
 * Cancel: the upstream connection really closes
 * ==================================================================== */

static void later_cancel(uv_timer_t *t)
{
    sbt_cancel_now(t->data);
}

/* The server saw the connection close after the cancel. Nothing else
 * closes it: /forever streams for 10 s and /hold waits 20 s, and the wait
 * here ends sooner, so a close it sees is the cancel's doing. (A bound of
 * 100 ms after the cancel failed on a loaded machine.) */
static void expect_server_close(const struct sbt_res *x)
{
    sbt_run_until(server_saw_close, 5000);
    assert_true(server_saw_close());
    uint64_t at = atomic_load(&srv_closed_at);
    assert_true(at >= x->t_cancel && at - x->t_cancel < 5000);
    srv_closes_seen = atomic_load(&srv_closes);
}

static void cancel_closes_the_upstream_connection(void **state)
{
    static struct sbt_res a, b, c;
    up_open(0);
    srv_closes_seen = atomic_load(&srv_closes);
    sbt_res_init(&a); /* inside on_data */
    a.cancel_at = 3;
    sbt_begin(&a, "GET", "/forever", NULL, 0);
    sbt_run_until(NULL, 3000);
    expect_server_close(&a);
    assert_int_equal(a.chunks, 3);
    sbt_res_init(&b); /* from the loop, outside any callback */
    sbt_begin(&b, "GET", "/forever", NULL, 0);
    uv_timer_start(&b.tm, later_cancel, 60, 0);
    sbt_run_until(NULL, 3000);
    expect_server_close(&b);
    sbt_res_init(&c); /* inside on_head */
    c.cancel_in_head = true;
    sbt_begin(&c, "GET", "/hold", NULL, 0);
    sbt_run_until(NULL, 3000);
    expect_server_close(&c);
    sbt_run_for(30); /* nothing may arrive after a cancel */
    assert_int_equal(a.ndone + b.ndone + c.ndone, 0);
    assert_int_equal(a.chunks, 3);
    assert_int_equal(c.chunks, 0);
    assert_int_equal(sb_upstream_active(up), 0);
    sbt_end(&a);
    sbt_end(&b);
    sbt_end(&c);
    up_close();
}

/* ======================================================================
 * Failures: refused, timeouts
 * ==================================================================== */

static void connect_refused(void **state)
{
    static struct sbt_res a, b;
    int port;
    int fd = sbt_loopback_socket(-1, &port); /* bound, not listening: refuses */
    up_open(0);
    sbt_res_init(&a);
    a.port = port;
    sbt_begin(&a, "POST", "/echo", "x", 1);
    sbt_run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_int_equal(a.nhead, 0);
    char want[64];
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%d refused", port);
    assert_non_null(strstr(a.msg, want));
    /* the client stays usable (the failed handle is recycled) */
    sbt_res_init(&b);
    sbt_begin(&b, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(b.rc, SB_OK);
    close(fd);
    sbt_end(&a);
    sbt_end(&b);
    up_close();
}

static void connect_timeout(void **state)
{
    int port;
    /* Backlog 0 and one connection parked in the accept queue: the kernel
     * drops further SYNs, so a connect hangs like one to a dead host. */
    int lfd = sbt_loopback_socket(0, &port);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);
    static struct sbt_res x;
    up_open(0);
    sbt_res_init(&x);
    x.port = port;
    x.connect_ms = 150;
    x.total_ms = 5000;
    sbt_begin(&x, "GET", "/", NULL, 0);
    sbt_run_until(NULL, 8000);
    /* The connect deadline (its words), not before it and well before the
     * total one; the upper bounds in this file leave a loaded machine's
     * loop seconds of lag, since 1 s did not always do. */
    assert_int_equal(x.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(x.msg, "connect"));
    assert_true(x.t_done - x.t0 >= 140 && x.t_done - x.t0 < 2500);
    sbt_end(&x);
    up_close();
    close(filler);
    close(lfd);
}

static void total_and_idle_timeouts(void **state)
{
    static struct sbt_res tot, idle, ttfb, paced;
    up_open(0);
    sbt_res_init(&tot);
    tot.total_ms = 200;
    sbt_begin(&tot, "GET", "/slow?ms=4000", NULL, 0);
    sbt_res_init(&idle);
    idle.idle_ms = 150;
    sbt_begin(&idle, "GET", "/silent?ms=4000", NULL, 0);
    sbt_res_init(&ttfb); /* the idle clock starts at the first byte, not before */
    ttfb.idle_ms = 100;
    sbt_begin(&ttfb, "GET", "/slow?ms=300", NULL, 0);
    /* each chunk restarts the idle clock: the stream lasts twice the idle
     * timeout, and each 100 ms gap leaves 300 ms for a slow scheduler */
    sbt_res_init(&paced);
    paced.idle_ms = 400;
    sbt_begin(&paced, "GET", "/stream?n=8&gap=100", NULL, 0);
    sbt_run_until(NULL, 10000);
    /* Both deadlines fire, not early, and long before the server's answer
     * at 4 s would have ended the requests. */
    assert_int_equal(tot.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(tot.msg, "total"));
    assert_true(tot.t_done - tot.t0 >= 195 && tot.t_done - tot.t0 < 2000);
    assert_int_equal(idle.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(idle.msg, "idle"));
    assert_string_equal(idle.body.p, "first");
    assert_true(idle.t_done - idle.t_first >= 145 && idle.t_done - idle.t_first < 2000);
    assert_int_equal(ttfb.rc, SB_OK);
    assert_int_equal(paced.rc, SB_OK);
    assert_string_equal(paced.body.p, "c0|c1|c2|c3|c4|c5|c6|c7|");
    sbt_end(&tot);
    sbt_end(&idle);
    sbt_end(&ttfb);
    sbt_end(&paced);
    up_close();
}

/* ======================================================================
 * Concurrency and the FIFO
 * ==================================================================== */

static void two_hundred_concurrent(void **state)
{
    enum { N = 200 };
    struct sbt_res *x = calloc(N, sizeof(*x));
    char(*body)[16] = calloc(N, sizeof(*body));
    up_open(0);
    for (int i = 0; i < N; i++) {
        snprintf(body[i], sizeof(body[i]), "req-%d", i);
        sbt_res_init(&x[i]);
        x[i].total_ms = 20000; /* a safety net: 200 server threads on a loaded sanitizer build */
        sbt_begin(&x[i], "POST", "/echo", body[i], strlen(body[i]));
    }
    assert_int_equal(sb_upstream_active(up), N);
    sbt_run_until(NULL, 25000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].rc, SB_OK);
        assert_string_equal(x[i].body.p, body[i]);
        sbt_end(&x[i]);
    }
    free(x);
    free(body);
    up_close();
}

static void fifo_caps_running_transfers(void **state)
{
    enum { N = 24 };
    static struct sbt_res x[N];
    char path[64];
    up_open(4);
    pthread_mutex_lock(&srv_mu);
    srv_max_inflight = 0;
    pthread_mutex_unlock(&srv_mu);
    for (int i = 0; i < N; i++) {
        sbt_res_init(&x[i]);
        snprintf(path, sizeof(path), "/order?id=%d&ms=20", 100 + i);
        sbt_begin(&x[i], "GET", path, NULL, 0);
    }
    assert_int_equal(sb_upstream_active(up), 4);
    assert_int_equal(sb_upstream_queued(up), N - 4);
    sbt_run_until(NULL, 10000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].rc, SB_OK);
        sbt_end(&x[i]);
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
    static struct sbt_res x[N], slow, late, dropped;
    char path[64];
    up_open(1);
    pthread_mutex_lock(&srv_mu);
    srv_norder = 0;
    pthread_mutex_unlock(&srv_mu);
    for (int i = 0; i < N; i++) {
        sbt_res_init(&x[i]);
        snprintf(path, sizeof(path), "/order?id=%d&ms=5", i);
        sbt_begin(&x[i], "GET", path, NULL, 0);
    }
    sbt_res_init(&dropped); /* cancelled while queued: never reaches the server */
    sbt_begin(&dropped, "GET", "/order?id=99&ms=5", NULL, 0);
    sbt_cancel_now(&dropped);
    sbt_run_until(NULL, 5000);
    int order[N], norder; /* copied out: a failed assertion must not leave srv_mu held */
    pthread_mutex_lock(&srv_mu);
    norder = srv_norder;
    memcpy(order, srv_order, sizeof(order));
    pthread_mutex_unlock(&srv_mu);
    assert_int_equal(norder, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(order[i], i);
    /* The total timeout counts time spent in our queue: "queued" says it
     * ended there, before the slow one (1.5 s) left the only slot. */
    sbt_res_init(&slow);
    sbt_begin(&slow, "GET", "/slow?ms=1500", NULL, 0);
    sbt_res_init(&late);
    late.total_ms = 100;
    sbt_begin(&late, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 6000);
    assert_int_equal(slow.rc, SB_OK);
    assert_int_equal(late.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(late.msg, "queued"));
    assert_true(late.t_done - late.t0 >= 95 && late.t_done - late.t0 < 1000);
    assert_int_equal(dropped.ndone, 0);
    for (int i = 0; i < N; i++)
        sbt_end(&x[i]);
    sbt_end(&slow);
    sbt_end(&late);
    sbt_end(&dropped);
    up_close();
}

/* ======================================================================
 * Re-entrancy: what callbacks may do
 * ==================================================================== */

static struct sbt_res chain[5];
static int chain_len;

static void chain_next(struct sbt_res *x)
{
    if (chain_len == 5)
        return;
    struct sbt_res *n = &chain[chain_len++];
    sbt_res_init(n);
    n->hook_done = chain_next;
    sbt_begin(n, "GET", "/echo", NULL, 0);
}

static void start_from_data(struct sbt_res *x)
{
    struct sbt_res *n = x->arg;
    if (x->chunks == 1)
        sbt_begin(n, "POST", "/echo", "from-data", 9); /* inside curl: queued, then started */
}

static void callbacks_start_requests(void **state)
{
    static struct sbt_res a, b;
    up_open(0);
    chain_len = 0;
    chain_next(NULL); /* each on_done starts the next */
    sbt_run_until(NULL, 3000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(chain[i].rc, SB_OK);
        sbt_end(&chain[i]);
    }
    sbt_res_init(&a);
    sbt_res_init(&b);
    a.hook_data = start_from_data;
    a.arg = &b;
    sbt_begin(&a, "GET", "/stream?n=3&gap=20", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(b.rc, SB_OK);
    assert_string_equal(b.body.p, "from-data");
    sbt_end(&a);
    sbt_end(&b);
    up_close();
}

static void cancel_other(struct sbt_res *x)
{
    struct sbt_res *victim = x->arg;
    if (x->chunks == 2 && !victim->cancelled)
        sbt_cancel_now(victim);
}

static void cancel_other_when_done(struct sbt_res *x)
{
    sbt_cancel_now(x->arg); /* outside curl: removed at once */
}

static void resume_other(struct sbt_res *x)
{
    struct sbt_res *sleeper = x->arg;
    if (sleeper->paused) {
        uv_timer_stop(&sleeper->tm);
        sbt_do_resume(&sleeper->tm); /* inside curl: deferred to the loop */
    }
}

static void callbacks_cancel_and_resume_others(void **state)
{
    static struct sbt_res a, victim, b, sleeper, c, victim2;
    up_open(0);
    srv_closes_seen = atomic_load(&srv_closes);
    sbt_res_init(&victim);
    sbt_begin(&victim, "GET", "/hold", NULL, 0);
    while (victim.chunks == 0)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    sbt_res_init(&a);
    a.hook_data = cancel_other;
    a.arg = &victim;
    sbt_begin(&a, "GET", "/stream?n=3&gap=20", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(victim.ndone, 0);
    sbt_run_until(server_saw_close, 5000);
    assert_true(server_saw_close());
    srv_closes_seen = atomic_load(&srv_closes);
    sbt_res_init(&victim2); /* cancelled from another request's on_done */
    sbt_begin(&victim2, "GET", "/hold", NULL, 0);
    while (victim2.chunks == 0)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    sbt_res_init(&c);
    c.hook_done = cancel_other_when_done;
    c.arg = &victim2;
    sbt_begin(&c, "GET", "/echo", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(c.rc, SB_OK);
    sbt_run_until(server_saw_close, 5000);
    assert_true(server_saw_close());
    srv_closes_seen = atomic_load(&srv_closes);
    sbt_res_init(&sleeper); /* paused "forever", resumed from b's on_data */
    sleeper.pause_every = 1;
    sleeper.max_pauses = 1;
    sleeper.resume_ms = 60000;
    sbt_begin(&sleeper, "GET", "/stream?n=2&gap=5", NULL, 0);
    while (!sleeper.paused) /* else b might end before there is anything to resume */
        uv_run(&sbt_loop, UV_RUN_ONCE);
    sbt_res_init(&b);
    b.hook_data = resume_other;
    b.arg = &sleeper;
    sbt_begin(&b, "GET", "/stream?n=6&gap=30", NULL, 0);
    sbt_run_until(NULL, 3000);
    assert_int_equal(sleeper.rc, SB_OK);
    assert_string_equal(sleeper.body.p, "c0|c1|");
    assert_int_equal(sleeper.redelivery_bad, 0);
    sbt_end(&a);
    sbt_end(&victim);
    sbt_end(&b);
    sbt_end(&sleeper);
    sbt_end(&c);
    sbt_end(&victim2);
    assert_int_equal(victim2.ndone, 0);
    up_close();
}

static bool hook_closed;
static void close_from_callback(struct sbt_res *x)
{
    if (!hook_closed) {
        sb_upstream_close(up, sbt_on_closed, &hook_closed); /* not up_close: we are inside */
        up = NULL;
        sbt_pending = 0; /* nobody hears another word */
    }
}

static bool hook_is_closed(void)
{
    return hook_closed;
}

static void close_inside_callbacks(void **state)
{
    static struct sbt_res a, b, c, d;
    /* from on_done (outside curl), with another stream in flight */
    up_open(0);
    hook_closed = false;
    sbt_res_init(&a);
    sbt_res_init(&b);
    sbt_begin(&b, "GET", "/forever", NULL, 0);
    a.hook_done = close_from_callback;
    sbt_begin(&a, "GET", "/echo", NULL, 0);
    sbt_run_until(hook_is_closed, 3000);
    assert_true(hook_closed);
    assert_int_equal(b.ndone, 0);
    /* from on_data (inside curl): torn down once curl returns */
    up_open(0);
    hook_closed = false;
    sbt_res_init(&c);
    sbt_res_init(&d);
    sbt_begin(&d, "GET", "/forever", NULL, 0);
    c.hook_data = close_from_callback;
    sbt_begin(&c, "GET", "/stream?n=3&gap=20", NULL, 0);
    sbt_run_until(hook_is_closed, 3000);
    assert_true(hook_closed);
    sbt_run_for(50);
    assert_int_equal(c.ndone + d.ndone, 0);
    assert_int_equal(c.chunks, 1);
    sbt_end(&a);
    sbt_end(&b);
    sbt_end(&c);
    sbt_end(&d);
}

/* ======================================================================
 * Close with requests in flight; memory per request
 * ==================================================================== */

static void close_frees_inflight_and_queued(void **state)
{
    static struct sbt_res x[5];
    up_open(2);
    srv_closes_seen = atomic_load(&srv_closes);
    for (int i = 0; i < 5; i++) {
        sbt_res_init(&x[i]);
        x[i].idle_ms = 5000;
        x[i].total_ms = 5000;
        sbt_begin(&x[i], "GET", "/forever", NULL, 0);
    }
    while (x[0].chunks == 0 || x[1].chunks == 0)
        uv_run(&sbt_loop, UV_RUN_ONCE);
    assert_int_equal(sb_upstream_queued(up), 3);
    up_close();
    for (int i = 0; i < 5; i++)
        assert_int_equal(x[i].ndone, 0);
    /* both running streams' connections were closed */
    for (int i = 0; i < 1000 && atomic_load(&srv_closes) < srv_closes_seen + 2; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&srv_closes), srv_closes_seen + 2);
    for (int i = 0; i < 5; i++)
        sbt_end(&x[i]);
}

static struct sbt_res *held;
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
        sbt_res_init(&held[i]);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++)
        sbt_begin(&held[i], "POST", "/hold", "{\"stream\":true}", 15);
    sbt_run_until(all_holding, 30000);
    assert_true(all_holding());
    struct mallinfo2 after = mallinfo2();
    if (before.uordblks && after.uordblks > before.uordblks) {
        size_t per = (after.uordblks - before.uordblks) / N;
        print_message("heap per open upstream stream: %zu bytes\n", per);
        assert_true(per < 64 * 1024);
    }
    up_close();
    sbt_pending = 0;
    for (int i = 0; i < N; i++)
        sbt_end(&held[i]);
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
    sbt_server_start(serve_one);
    static const struct sb_kv hdr[] = {
        {SB_SLICE("Authorization"), SB_SLICE("Bearer k")},
        {SB_SLICE("X-Custom"), SB_SLICE("hello")},
        {SB_SLICE("X-Empty"), SB_SLICE("")},
    };
    sbt_client = (struct sbt_client){start_on_up, hdr, 3};
    uv_loop_init(&sbt_loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(request_headers_status_and_methods, after_test),
        cmocka_unit_test_teardown(post_bodies_reuse_one_connection, after_test),
        cmocka_unit_test_teardown(bad_input_is_refused_without_callbacks, after_test),
        cmocka_unit_test_teardown(only_http_and_https, after_test),
        cmocka_unit_test_teardown(streams_chunk_by_chunk, after_test),
        cmocka_unit_test_teardown(pause_resume_delivers_each_byte_once, after_test),
        cmocka_unit_test_teardown(cancel_closes_the_upstream_connection, after_test),
        cmocka_unit_test_teardown(connect_refused, after_test),
        cmocka_unit_test_teardown(connect_timeout, after_test),
        cmocka_unit_test_teardown(total_and_idle_timeouts, after_test),
        cmocka_unit_test_teardown(two_hundred_concurrent, after_test),
        cmocka_unit_test_teardown(fifo_caps_running_transfers, after_test),
        cmocka_unit_test_teardown(fifo_order_queued_timeout_and_cancel, after_test),
        cmocka_unit_test_teardown(callbacks_start_requests, after_test),
        cmocka_unit_test_teardown(callbacks_cancel_and_resume_others, after_test),
        cmocka_unit_test_teardown(close_inside_callbacks, after_test),
        cmocka_unit_test_teardown(close_frees_inflight_and_queued, after_test),
        cmocka_unit_test_teardown(memory_per_open_stream, after_test),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    /* Every handle of the client was closed: the loop closes cleanly. */
    uv_run(&sbt_loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&sbt_loop) != 0) {
        fprintf(stderr, "uv_loop_close: handles left open\n");
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
