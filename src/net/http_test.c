/* SPDX-License-Identifier: MIT */
/*
 * http_test.c - the HTTP server over real loopback sockets.
 *
 * The server runs its worker threads; the test talks to it with plain
 * blocking sockets (with receive timeouts, so a server bug fails the test
 * instead of hanging it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fd_testlib.h"

#include "net/http.h"

static struct sb_server *srv;
static int port;

/* ---- the handler under test ---- */

struct later {
    uv_timer_t t;
    struct sb_http_req *req;
    int left;
    bool aborted;
};

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_abort(void *ud)
{
    struct later *l = ud;
    l->aborted = true;
    uv_timer_stop(&l->t);
    uv_close((uv_handle_t *)&l->t, later_closed);
}

static void tick(uv_timer_t *t)
{
    struct later *l = t->data;
    if (l->left-- > 0) {
        sb_http_stream_write(l->req, "tick\n", 5);
        return;
    }
    sb_http_stream_end(l->req);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, later_closed);
}

static void *worker_start(uv_loop_t *loop, int index, void *ud)
{
    return loop;
}

/* The body /big and /biglen send: small pieces (corked) around pieces of
 * BIG_PIECE bytes (written through, the rest copied when the client is slow). */
#define BIG_PIECE (1 << 20)

static void big_piece(char *p, int seed)
{
    for (size_t i = 0; i < BIG_PIECE; i++)
        p[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
}

static void big_answer(struct sb_http_req *req, bool known_length)
{
    static const struct sb_http_header h[] = {{SB_SLICE("content-type"), SB_SLICE("text/plain")}};
    if (known_length)
        sb_http_stream_start_len(req, 200, h, 1, 2 * BIG_PIECE + 5);
    else
        sb_http_stream_start(req, 200, h, 1);
    char *p = malloc(BIG_PIECE);
    sb_http_stream_write(req, "<", 1);
    big_piece(p, 0);
    sb_http_stream_write(req, p, BIG_PIECE); /* the caller's buffer is free after the call */
    sb_http_stream_write(req, "mid", 3);
    big_piece(p, 1);
    sb_http_stream_write(req, p, BIG_PIECE); /* behind a queued write: copied whole */
    free(p);
    sb_http_stream_write(req, ">", 1);
    sb_http_stream_end(req);
}

/* Set by the test once it has read /now's first piece. */
static atomic_bool saw_first;

/* /now: the first piece goes out with sb_http_stream_write_now, then the
 * handler waits (up to 2 s) for the client to have read it. Corked, it would
 * leave only after this callback: the client would read "late". */
static void now_answer(struct sb_http_req *req)
{
    static const struct sb_http_header h[] = {{SB_SLICE("content-type"), SB_SLICE("text/plain")}};
    sb_http_stream_start(req, 200, h, 1);
    sb_http_stream_write_now(req, "first\n", 6);
    for (int i = 0; i < 2000 && !atomic_load(&saw_first); i++)
        usleep(1000);
    if (atomic_load(&saw_first))
        sb_http_stream_write(req, "second\n", 7);
    else
        sb_http_stream_write(req, "late\n", 5);
    sb_http_stream_end(req);
}

static void handler(struct sb_http_req *req, void *ctx)
{
    static const struct sb_http_header h[] = {{SB_SLICE("content-type"), SB_SLICE("text/plain")}};
    if (sb_slice_eq_cstr(req->path, "/big") || sb_slice_eq_cstr(req->path, "/biglen")) {
        big_answer(req, sb_slice_eq_cstr(req->path, "/biglen"));
        return;
    }
    if (sb_slice_eq_cstr(req->path, "/now")) {
        now_answer(req);
        return;
    }
    if (sb_slice_eq_cstr(req->path, "/stream")) {
        struct later *l = calloc(1, sizeof(*l));
        l->req = req;
        l->left = 3;
        uv_timer_init(ctx, &l->t);
        l->t.data = l;
        sb_http_stream_start(req, 200, h, 1);
        sb_http_on_abort(req, on_abort, l);
        uv_timer_start(&l->t, tick, 20, 20);
        return;
    }
    uint32_t sum = 2166136261u; /* FNV-1a of the body as the handler sees it */
    for (size_t i = 0; i < req->body.len; i++)
        sum = (sum ^ (unsigned char)req->body.p[i]) * 16777619u;
    bool nul = req->body.p == NULL || req->body.p[req->body.len] == '\0';
    char *out = sb_arena_printf(req->arena, "%.*s %.*s body=%zu spool=%d sum=%08x nul=%d",
                                SB_FMT(req->method), SB_FMT(req->path), req->body.len,
                                req->spool != NULL, sum, nul);
    sb_http_respond(req, 200, h, 1, sb_slice_cstr(out));
}

/* ---- a blocking client ---- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until `until` appears (or EOF/timeout); returns malloc'd text. */
static char *recv_until(int fd, const char *until)
{
    size_t cap = 1 << 16, len = 0;
    char *b = calloc(1, cap + 1);
    while (len < cap) {
        ssize_t r = recv(fd, b + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        b[len] = '\0';
        if (until && strstr(b, until))
            break;
    }
    return b;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- tests ---- */

static void keep_alive_two_requests(void **state)
{
    int fd = dial();
    const char *r = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, r, strlen(r));
    char *a = recv_until(fd, "body=0");
    assert_non_null(strstr(a, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(a, "x-request-id: req_"));
    send_all(fd, r, strlen(r));
    char *b = recv_until(fd, "body=0");
    assert_non_null(strstr(b, "GET /a body=0"));
    free(a);
    free(b);
    close(fd);
}

static void pipelined_in_order(void **state)
{
    int fd = dial();
    const char *r = "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /two HTTP/1.1\r\n\r\n"
                    "GET /three HTTP/1.1\r\nConnection: close\r\n\r\n";
    send_all(fd, r, strlen(r));
    char *a = recv_until(fd, NULL);
    char *one = strstr(a, "POST /one body=3"), *two = strstr(a, "GET /two"),
         *three = strstr(a, "GET /three");
    assert_non_null(one);
    assert_non_null(two);
    assert_non_null(three);
    assert_true(one < two && two < three);
    free(a);
    close(fd);
}

static void chunked_body_and_continue(void **state)
{
    int fd = dial();
    const char *h =
        "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    send_all(fd, h, strlen(h));
    char *c = recv_until(fd, "\r\n\r\n");
    assert_non_null(strstr(c, "HTTP/1.1 100 Continue"));
    const char *b = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    send_all(fd, b, strlen(b));
    char *r = recv_until(fd, "body=11");
    assert_non_null(strstr(r, "POST /c body=11"));
    free(c);
    free(r);
    close(fd);
}

static void expect_status(const char *req, size_t len, const char *status)
{
    int fd = dial();
    send(fd, req, len, MSG_NOSIGNAL);
    char *r = recv_until(fd, NULL);
    assert_non_null(strstr(r, status));
    assert_non_null(strstr(r, "\"error\":{\"message\""));
    free(r);
    close(fd);
}

static void limits(void **state)
{
    expect_status("BLAH\x01 / HTTP/1.1\r\n\r\n", 19, "HTTP/1.1 400");
    char big[20000];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 18000);
    memcpy(big + n + 18000, "\r\n\r\n", 4);
    expect_status(big, (size_t)n + 18004, "HTTP/1.1 431");
    const char *tl = "POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
    expect_status(tl, strlen(tl), "HTTP/1.1 413");
}

static void header_timeout(void **state)
{
    int fd = dial();
    send_all(fd, "GET / HTTP/1.1\r\nHost:", 21);
    char *r = recv_until(fd, NULL); /* server times out after 300 ms */
    assert_non_null(strstr(r, "HTTP/1.1 408"));
    free(r);
    close(fd);
}

static void streaming_chunked(void **state)
{
    int fd = dial();
    const char *r = "GET /stream HTTP/1.1\r\n\r\n";
    send_all(fd, r, strlen(r));
    char *a = recv_until(fd, "0\r\n\r\n");
    assert_non_null(strstr(a, "transfer-encoding: chunked"));
    assert_int_equal(count(a, "tick\n"), 3);
    free(a);
    close(fd);
}

/* sb_http_stream_write_now: the head and the piece reach the socket before
 * the handler returns (a stream's first event, issue 9's time to first byte). */
static void stream_write_now(void **state)
{
    int fd = dial();
    const char *r = "GET /now HTTP/1.1\r\n\r\n";
    atomic_store(&saw_first, false);
    send_all(fd, r, strlen(r));
    char *a = recv_until(fd, "first\n");
    assert_non_null(strstr(a, "first\n"));
    atomic_store(&saw_first, true);
    char *b = recv_until(fd, "0\r\n\r\n");
    assert_non_null(strstr(b, "second\n"));
    assert_null(strstr(b, "late"));
    free(a);
    free(b);
    close(fd);
}

static void client_abort_mid_stream(void **state)
{
    int fd = dial();
    const char *r = "GET /stream HTTP/1.1\r\n\r\n";
    send_all(fd, r, strlen(r));
    char *a = recv_until(fd, "tick");
    free(a);
    close(fd); /* the handler's abort hook must run; ASan catches a use after free */
    usleep(100 * 1000);
    keep_alive_two_requests(state);
}

/* Reads one response to fd whose body ends with '>' (and "0\r\n\r\n" when
 * chunked); returns its body, de-chunked, malloc'd, and its length in *n. */
static char *read_big(int fd, bool chunked, size_t *n)
{
    size_t cap = 3 * BIG_PIECE, len = 0;
    char *raw = malloc(cap);
    const char *end = chunked ? ">\r\n0\r\n\r\n" : ">";
    while (len < cap) {
        ssize_t r = recv(fd, raw + len, cap - len, 0);
        assert_true(r > 0);
        len += (size_t)r;
        if (len >= strlen(end) && memcmp(raw + len - strlen(end), end, strlen(end)) == 0)
            break;
    }
    char *hend = memmem(raw, len, "\r\n\r\n", 4);
    assert_non_null(hend);
    const char *p = hend + 4, *e = raw + len;
    char *body = malloc(cap);
    *n = 0;
    if (!chunked) {
        *n = (size_t)(e - p);
        memcpy(body, p, *n);
        free(raw);
        return body;
    }
    for (;;) {
        char *q;
        unsigned long k = strtoul(p, &q, 16);
        assert_true(q + 2 <= e && q[0] == '\r' && q[1] == '\n');
        p = q + 2;
        if (k == 0)
            break;
        assert_true(p + k + 2 <= e);
        memcpy(body + *n, p, k);
        *n += k;
        p += k + 2;
    }
    free(raw);
    return body;
}

/* A stream's large pieces are written through (not corked) and, when the
 * client reads slowly, what the socket did not take is queued: the client
 * gets every byte in order, framed right, with or without chunking, and the
 * connection serves the next request. */
static void large_pieces_slow_client(void **state)
{
    char *want = malloc(2 * BIG_PIECE + 5);
    want[0] = '<';
    big_piece(want + 1, 0);
    memcpy(want + 1 + BIG_PIECE, "mid", 3);
    big_piece(want + 4 + BIG_PIECE, 1);
    want[2 * BIG_PIECE + 4] = '>';
    for (int chunked = 0; chunked < 2; chunked++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int small = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)); /* before connect */
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        struct timeval tv = {.tv_sec = 3};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        const char *r = chunked ? "GET /big HTTP/1.1\r\n\r\n" : "GET /biglen HTTP/1.1\r\n\r\n";
        send_all(fd, r, strlen(r));
        usleep(100 * 1000); /* the server's first write fills the socket */
        size_t n = 0;
        char *body = read_big(fd, chunked, &n);
        assert_int_equal(n, 2 * BIG_PIECE + 5);
        assert_true(memcmp(body, want, n) == 0);
        free(body);
        const char *next = "GET /a HTTP/1.1\r\n\r\n";
        send_all(fd, next, strlen(next));
        char *b = recv_until(fd, "body=0");
        assert_non_null(strstr(b, "GET /a body=0"));
        free(b);
        close(fd);
    }
    free(want);
}

/* ---- bodies over body_buffer_bytes (1 KiB here) go to a file ---- */

static char spool_dir[] = "/tmp/sb-http-test-XXXXXX";

static uint32_t fnv(const char *p, size_t n)
{
    uint32_t sum = 2166136261u;
    for (size_t i = 0; i < n; i++)
        sum = (sum ^ (unsigned char)p[i]) * 16777619u;
    return sum;
}

/* Sends body (n bytes) with a Content-Length or chunked in pieces of 1000, and
 * returns the answer (malloc'd). */
static char *post_body(const char *body, size_t n, bool chunked)
{
    int fd = dial();
    char head[160];
    int k =
        chunked
            ? snprintf(
                  head, sizeof(head),
                  "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            : snprintf(head, sizeof(head),
                       "POST /b HTTP/1.1\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    send_all(fd, head, (size_t)k);
    for (size_t at = 0; at < n;) {
        size_t take = chunked ? (n - at < 1000 ? n - at : 1000) : n - at;
        if (chunked) {
            k = snprintf(head, sizeof(head), "%zx\r\n", take);
            send_all(fd, head, (size_t)k);
        }
        send_all(fd, body + at, take);
        if (chunked)
            send_all(fd, "\r\n", 2);
        at += take;
    }
    if (chunked)
        send_all(fd, "0\r\n\r\n", 5);
    char *r = recv_until(fd, NULL);
    close(fd);
    return r;
}

/* Waits (up to 3 s) until the process has n descriptors open: the workers'
 * pools of body files close theirs 50-100 ms after the last body. */
static int fds_settle(int n)
{
    for (int i = 0; i < 300 && sbt_open_fds() != n; i++)
        usleep(10 * 1000);
    return sbt_open_fds();
}

static void spooled_bodies(void **state)
{
    char *body = malloc(60000);
    for (size_t i = 0; i < 60000; i++)
        body[i] = (char)('a' + (i * 7) % 26);
    usleep(50 * 1000);
    int before = sbt_open_fds();
    char want[80];
    /* Under the threshold: the heap, as before. */
    char *r = post_body(body, 1000, false);
    snprintf(want, sizeof(want), "body=1000 spool=0 sum=%08x nul=1", fnv(body, 1000));
    assert_non_null(strstr(r, want));
    free(r);
    /* Over it, by Content-Length: the file, every byte, NUL after it. */
    r = post_body(body, 60000, false);
    snprintf(want, sizeof(want), "body=60000 spool=1 sum=%08x nul=1", fnv(body, 60000));
    assert_non_null(strstr(r, want));
    free(r);
    /* Chunked, growing past it: moved to the file on the way. */
    r = post_body(body, 5000, true);
    snprintf(want, sizeof(want), "body=5000 spool=1 sum=%08x nul=1", fnv(body, 5000));
    assert_non_null(strstr(r, want));
    free(r);
    r = post_body(body, 1024, true); /* exactly the threshold stays in memory */
    assert_non_null(strstr(r, "body=1024 spool=0"));
    free(r);
    /* Over it by Content-Length, but within the worker's budget (body_heap_bytes, 8 KiB):
     * the heap; and the budget comes back when the request ends. */
    for (int i = 0; i < 3; i++) {
        r = post_body(body, 5000, false);
        snprintf(want, sizeof(want), "body=5000 spool=0 sum=%08x nul=1", fnv(body, 5000));
        assert_non_null(strstr(r, want));
        free(r);
    }
    /* A body file is kept for the next long body, and closed once none came
     * for body_files_idle_ms. */
    assert_int_equal(fds_settle(before), before);
    /* Four bodies of 5000 arriving at once: a worker keeps one in its heap
     * (two would pass its 8 KiB), so on two workers two or three of them are
     * files, whichever worker each connection reached. */
    int held[4];
    const char *hh = "POST /b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    for (int i = 0; i < 4; i++) {
        held[i] = dial();
        send_all(held[i], hh, strlen(hh));
        send_all(held[i], body, 100);
    }
    usleep(100 * 1000);
    int files = sbt_open_fds() - before - 8; /* both ends of four connections */
    assert_true(files >= 2 && files <= 3);
    for (int i = 0; i < 4; i++)
        close(held[i]);
    assert_int_equal(fds_settle(before), before);
    /* Over max_body_bytes (64 KiB) while chunked into the file: 413. */
    char *big = calloc(1, 70000);
    memset(big, 'z', 70000);
    r = post_body(big, 70000, true);
    assert_non_null(strstr(r, "HTTP/1.1 413"));
    free(r);
    free(big);
    /* A client that leaves mid-body (no pooled file left by then). */
    assert_int_equal(fds_settle(before), before);
    int fd = dial();
    const char *h = "POST /b HTTP/1.1\r\nContent-Length: 50000\r\n\r\n";
    send_all(fd, h, strlen(h));
    send_all(fd, body, 20000);
    usleep(50 * 1000);
    /* both ends of the connection (the server is in this process) and the file */
    assert_int_equal(sbt_open_fds(), before + 3);
    close(fd);
    assert_int_equal(fds_settle(before), before); /* every body file closed */
    free(body);
}

static void spool_write_error(void **state)
{
    /* A file size limit makes write(2) fail with EFBIG, as a full disk fails
     * with ENOSPC: the client gets a 500 in the error shape, nothing leaks. */
    struct rlimit old, small = {.rlim_cur = 30000};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    int before = sbt_open_fds();
    char *body = calloc(1, 50000);
    memset(body, 'q', 50000);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char *r = post_body(body, 50000, false);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_non_null(strstr(r, "HTTP/1.1 500"));
    assert_non_null(strstr(r, "\"code\":\"request_body_not_stored\""));
    free(r);
    free(body);
    assert_int_equal(fds_settle(before), before);
}

/* The options every server here starts with: bodies over 1 KiB to a file,
 * 8 KiB of them kept in a worker's heap. */
static struct sb_server_opts test_opts(void)
{
    struct sb_server_opts o = {
        .host = "127.0.0.1",
        .workers = 2,
        .max_header_bytes = 16384,
        .max_body_bytes = 65536,
        .header_timeout_ms = 300,
        .idle_timeout_ms = 1000,
        .max_connections = 100,
        .shutdown_timeout_ms = 1000,
        .handler = handler,
        .worker_start = worker_start,
        .body_buffer_bytes = 1024,
        .body_heap_bytes = 8 * 1024,
        .body_files_idle_ms = 50,
        .body_temp_dir = spool_dir,
    };
    return o;
}

/* Starts a server of one worker with body_heap_bytes left 0 (the default) and
 * holds `bodies` of `each` bytes (by Content-Length) on it at once: returns
 * how many of them went to a file. */
static int files_for_default(size_t buffer, int bodies, size_t each)
{
    struct sb_server_opts o = test_opts();
    o.workers = 1;
    o.max_body_bytes = 4u << 20;
    o.body_buffer_bytes = buffer;
    o.body_heap_bytes = 0;
    struct sb_server *s;
    struct sb_error err;
    assert_int_equal(sb_server_start(&o, &s, &err), SB_OK);
    int main_port = port, held[8];
    port = sb_server_port(s);
    usleep(50 * 1000);
    int before = sbt_open_fds();
    char head[96];
    int k = snprintf(head, sizeof(head), "POST /b HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", each);
    assert_true(bodies <= 8);
    for (int i = 0; i < bodies; i++) {
        held[i] = dial();
        send_all(held[i], head, (size_t)k);
        send_all(held[i], "xxxx", 4);
    }
    usleep(100 * 1000);
    int files = sbt_open_fds() - before - 2 * bodies; /* both ends of each connection */
    for (int i = 0; i < bodies; i++)
        close(held[i]);
    assert_int_equal(fds_settle(before), before);
    sb_server_stop(s);
    sb_server_free(s);
    port = main_port;
    return files;
}

/* body_heap_bytes 0 is 1 MiB, or 8 x body_buffer_bytes where that is more
 * (resolved once when the server starts). */
static void default_heap_budget(void **state)
{
    /* 1 KiB threshold: the 1 MiB floor holds two bodies of 400,000, not three. */
    assert_int_equal(files_for_default(1024, 3, 400000), 1);
    /* 256 KiB threshold: 2 MiB holds six bodies of 300,000, not seven (the
     * floor alone would hold three). */
    assert_int_equal(files_for_default(256 * 1024, 7, 300000), 1);
}

int main(void)
{
    struct sb_server_opts o = test_opts();
    struct sb_error err;
    if (!mkdtemp(spool_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (sb_server_start(&o, &srv, &err) != SB_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return 1;
    }
    port = sb_server_port(srv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keep_alive_two_requests),
        cmocka_unit_test(pipelined_in_order),
        cmocka_unit_test(chunked_body_and_continue),
        cmocka_unit_test(limits),
        cmocka_unit_test(header_timeout),
        cmocka_unit_test(streaming_chunked),
        cmocka_unit_test(stream_write_now),
        cmocka_unit_test(client_abort_mid_stream),
        cmocka_unit_test(large_pieces_slow_client),
        cmocka_unit_test(spooled_bodies),
        cmocka_unit_test(spool_write_error),
        cmocka_unit_test(default_heap_budget),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sb_server_stop(srv);
    sb_server_free(srv);
    rmdir(spool_dir);
    return rc;
}
