/* SPDX-License-Identifier: MIT */
/*
 * client_test.c - the upstream client against a small HTTP/1.1 server on
 * 127.0.0.1 that runs on its own threads with blocking sockets, so the
 * client's loop is the only event loop in the test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/buf.h"
#include "upstream/client.h"

/* ======================================================================
 * The test server
 * ==================================================================== */

static int srv_port;
static atomic_int srv_conns;      /* connections accepted */
static atomic_int forever_closed; /* /forever saw its client go away */

static void say(int fd, const char *s)
{
    send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static int chunk(int fd, const char *s)
{
    char b[256];
    int n = snprintf(b, sizeof(b), "%zx\r\n%s\r\n", strlen(s), s);
    return send(fd, b, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Reads one request; returns its path in path[] and body length, -1 on EOF. */
static int read_request(int fd, char *path, size_t cap, char *body, size_t bcap)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    sscanf(buf, "%*s %255s", path);
    (void)cap;
    size_t cl = 0;
    char *h = strcasestr(buf, "content-length:");
    if (h)
        cl = strtoul(h + 15, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    memcpy(body, end + 4, have < bcap ? have : bcap);
    while (have < cl) {
        ssize_t r = recv(fd, body + have, bcap - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    body[have] = '\0';
    return (int)have;
}

static void serve_one(int fd, const char *path, const char *body, int blen)
{
    char head[256];
    if (strcmp(path, "/echo") == 0) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nX-Test: yes\r\nContent-Length: %d\r\n\r\n",
                 blen);
        say(fd, head);
        send(fd, body, (size_t)blen, MSG_NOSIGNAL);
    } else if (strcmp(path, "/stream") == 0) {
        say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        const char *parts[] = {"one", "two", "three"};
        for (int i = 0; i < 3; i++) {
            chunk(fd, parts[i]);
            usleep(100 * 1000);
        }
        say(fd, "0\r\n\r\n");
    } else if (strcmp(path, "/slow") == 0) {
        usleep(1500 * 1000);
        say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/silent") == 0) {
        say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        chunk(fd, "first");
        usleep(1500 * 1000);
        say(fd, "0\r\n\r\n");
    } else if (strcmp(path, "/forever") == 0) {
        say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 500 && chunk(fd, "tok") == 0; i++)
            usleep(10 * 1000);
        atomic_store(&forever_closed, 1);
    } else {
        say(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char path[256], *body = malloc(1 << 20);
    int n;
    while ((n = read_request(fd, path, sizeof(path), body, (1 << 20) - 1)) >= 0)
        serve_one(fd, path, body, n);
    free(body);
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        atomic_fetch_add(&srv_conns, 1);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static void server_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bind(lfd, (struct sockaddr *)&a, sizeof(a));
    listen(lfd, 512);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    srv_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, accept_main, (void *)(intptr_t)lfd);
    pthread_detach(t);
}

/* ======================================================================
 * The client side
 * ==================================================================== */

static uv_loop_t loop;
static struct sb_upstream *up;
static int pending; /* requests not finished yet */

struct res {
    struct sb_ureq *r;
    int status;
    bool saw_test_header;
    struct sb_buf body;
    int chunks;
    uint64_t t0, t_first, t_done;
    sb_err rc;
    char msg[256];
    bool done;
    bool pause_first;  /* return PAUSE once on the first chunk */
    bool cancel_first; /* cancel from inside on_data */
    uv_timer_t resume;
};

static void on_head(void *ud, int status, const struct sb_kv *h, size_t n)
{
    struct res *x = ud;
    x->status = status;
    for (size_t i = 0; i < n; i++)
        if (sb_slice_caseeq(h[i].name, SB_SLICE("x-test")))
            x->saw_test_header = sb_slice_eq_cstr(h[i].value, "yes");
}

static void do_resume(uv_timer_t *t)
{
    struct res *x = t->data;
    sb_ureq_resume(x->r);
}

static int on_data(void *ud, const char *p, size_t n)
{
    struct res *x = ud;
    if (x->cancel_first) {
        x->chunks++;
        sb_ureq_cancel(x->r);
        x->done = true;
        pending--;
        return 0;
    }
    if (x->pause_first) {
        x->pause_first = false;
        uv_timer_start(&x->resume, do_resume, 150, 0);
        return SB_UREQ_PAUSE;
    }
    if (!x->chunks++)
        x->t_first = uv_now(&loop);
    sb_buf_append(&x->body, p, n);
    return 0;
}

static void on_done(void *ud, sb_err rc, const struct sb_error *err)
{
    struct res *x = ud;
    x->rc = rc;
    if (rc != SB_OK)
        snprintf(x->msg, sizeof(x->msg), "%s", err->msg);
    x->t_done = uv_now(&loop);
    x->done = true;
    pending--;
}

static const struct sb_ureq_cbs cbs = {on_head, on_data, on_done};

static void begin(struct res *x, const char *path, const char *body, long total_ms, long idle_ms)
{
    char url[128];
    static const struct sb_kv hdr[] = {{SB_SLICE("Authorization"), SB_SLICE("Bearer k")}};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv_port, path);
    memset(x, 0, sizeof(*x));
    sb_buf_init(&x->body, 0);
    uv_timer_init(&loop, &x->resume);
    x->resume.data = x;
    struct sb_ureq_spec s = {
        .method = body ? "POST" : "GET",
        .url = url,
        .headers = hdr,
        .nheaders = 1,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .total_timeout_ms = total_ms,
        .idle_timeout_ms = idle_ms,
    };
    struct sb_error err;
    x->t0 = uv_now(&loop);
    x->r = sb_ureq_start(up, &s, &cbs, x, &err);
    assert_non_null(x->r);
    pending++;
}

static void run_until_done(void)
{
    while (pending > 0)
        uv_run(&loop, UV_RUN_ONCE);
}

static void end(struct res *x)
{
    uv_close((uv_handle_t *)&x->resume, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    sb_buf_free(&x->body);
}

/* ======================================================================
 * Tests
 * ==================================================================== */

static void post_echo_and_reuse(void **state)
{
    struct res a, b;
    int before = atomic_load(&srv_conns);
    begin(&a, "/echo", "{\"hello\":1}", 0, 0);
    run_until_done();
    assert_int_equal(a.rc, SB_OK);
    assert_int_equal(a.status, 200);
    assert_true(a.saw_test_header);
    assert_string_equal(a.body.p, "{\"hello\":1}");
    begin(&b, "/echo", "second", 0, 0);
    run_until_done();
    assert_string_equal(b.body.p, "second");
    /* keep-alive: the second request used the first one's connection */
    assert_int_equal(atomic_load(&srv_conns) - before, 1);
    end(&a);
    end(&b);
}

static void streams_as_it_arrives(void **state)
{
    struct res x;
    begin(&x, "/stream", NULL, 0, 0);
    run_until_done();
    assert_int_equal(x.rc, SB_OK);
    assert_string_equal(x.body.p, "onetwothree");
    assert_true(x.chunks >= 3);
    /* the first chunk arrived long before the last one was sent (~200 ms later) */
    assert_true(x.t_done - x.t_first >= 150);
    end(&x);
}

static void pause_and_resume_delivers_once(void **state)
{
    struct res x;
    begin(&x, "/stream", NULL, 0, 0);
    x.pause_first = true;
    run_until_done();
    assert_int_equal(x.rc, SB_OK);
    assert_string_equal(x.body.p, "onetwothree");
    end(&x);
}

static void cancel_closes_upstream(void **state)
{
    struct res x;
    atomic_store(&forever_closed, 0);
    begin(&x, "/forever", NULL, 0, 0);
    x.cancel_first = true;
    run_until_done();
    assert_int_equal(x.chunks, 1);
    /* The server's writes fail once our side closed the connection. */
    for (int i = 0; i < 100 && !atomic_load(&forever_closed); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
    assert_true(atomic_load(&forever_closed));
    end(&x);
}

static void refused_and_timeouts(void **state)
{
    struct res a, b, c;
    int real = srv_port;
    srv_port = 9; /* discard port: nothing listens on loopback */
    begin(&a, "/echo", "x", 0, 0);
    srv_port = real;
    begin(&b, "/slow", NULL, 300, 0);
    begin(&c, "/silent", NULL, 0, 300);
    run_until_done();
    assert_int_equal(a.rc, SB_E_UPSTREAM);
    assert_non_null(strstr(a.msg, "refused"));
    assert_int_equal(b.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_int_equal(c.rc, SB_E_UPSTREAM_TIMEOUT);
    assert_non_null(strstr(c.msg, "idle"));
    assert_string_equal(c.body.p, "first");
    end(&a);
    end(&b);
    end(&c);
}

static void many_concurrent_with_queue(void **state)
{
    enum { N = 200 };
    struct res *x = calloc(N, sizeof(*x));
    char body[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(body[i], sizeof(body[i]), "req-%d", i);
        begin(&x[i], "/echo", body[i], 5000, 0);
    }
    assert_true(sb_upstream_queued(up) > 0); /* max_transfers is 64 */
    run_until_done();
    for (int i = 0; i < N; i++) {
        assert_int_equal(x[i].rc, SB_OK);
        assert_string_equal(x[i].body.p, body[i]);
        end(&x[i]);
    }
    free(x);
}

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static void close_with_inflight(void **state)
{
    struct res x;
    bool done = false;
    begin(&x, "/forever", NULL, 0, 0);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_ONCE);
    sb_upstream_close(up, closed, &done);
    end(&x);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(done);
    assert_false(x.done); /* no callback after close */
    up = NULL;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server_start();
    uv_loop_init(&loop);
    struct sb_upstream_opts o = {.max_transfers = 64};
    up = sb_upstream_create(&loop, &o);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(post_echo_and_reuse),
        cmocka_unit_test(streams_as_it_arrives),
        cmocka_unit_test(pause_and_resume_delivers_once),
        cmocka_unit_test(cancel_closes_upstream),
        cmocka_unit_test(refused_and_timeouts),
        cmocka_unit_test(many_concurrent_with_queue),
        cmocka_unit_test(close_with_inflight),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_loop_close(&loop);
    curl_global_cleanup();
    return rc;
}
