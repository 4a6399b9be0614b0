/* SPDX-License-Identifier: MIT */
/*
 * claim_test.c - one address, one gateway, over real loopback sockets.
 *
 * Claims and servers in this one process stand in for separate processes:
 * the lock is an abstract socket and the probe a bind, and the kernel treats
 * two sockets of one process exactly as it treats two processes of one user
 * (what matters here; another user is refused by the kernel's UID check).
 * A handover is driven end to end: server A answers "A", server B takes the
 * address over and answers "B"; A's hook fires, A stops, B serves alone.
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/http.h"
#include "net/internal.h"

/* ---- helpers ---- */

static void *worker_start(uv_loop_t *loop, int index, void *ud)
{
    return ud; /* the server's name: "A" or "B" */
}

static void handler(struct sb_http_req *req, void *ctx)
{
    sb_http_respond(req, 200, NULL, 0, sb_slice_cstr(ctx));
}

static atomic_int handed; /* times server A's handed_over hook ran */

static void on_handed_over(void *ud)
{
    atomic_fetch_add(&handed, 1);
}

static struct sb_server *start(const char *name, struct sb_listen_claim *c, int port, bool hook)
{
    struct sb_server_opts o = {
        .host = "127.0.0.1",
        .port = port,
        .workers = 2,
        .max_header_bytes = 8192,
        .max_body_bytes = 8192,
        .header_timeout_ms = 1000,
        .idle_timeout_ms = 1000,
        .max_connections = 100,
        .shutdown_timeout_ms = 1000,
        .handler = handler,
        .worker_start = worker_start,
        .ud = (void *)name,
        .claim = c,
        .handed_over = hook ? on_handed_over : NULL,
    };
    struct sb_server *s = NULL;
    struct sb_error err = {0};
    if (sb_server_start(&o, &s, &err) != SB_OK)
        fail_msg("server %s: %s", name, err.msg);
    return s;
}

/* One request on a fresh connection; returns the body's first letter, or 0 on any failure. */
static char ask(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 3};
    char buf[512];
    size_t n = 0;
    const char *r = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, r, strlen(r), MSG_NOSIGNAL) != (ssize_t)strlen(r)) {
        close(fd);
        return 0;
    }
    for (ssize_t got = 1; got > 0 && n < sizeof(buf) - 1; n += (size_t)(got > 0 ? got : 0))
        got = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
    close(fd);
    buf[n] = 0;
    const char *body = strstr(buf, "\r\n\r\n");
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && body ? body[4] : 0;
}

/* A socket of "another program" on host:port (SO_REUSEPORT when asked), listening. */
static int foreign_listener(const char *host, int port, bool reuseport)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static void expect_in_use(const char *host, int port)
{
    struct sb_listen_claim *c = NULL;
    struct sb_error err = {0};
    char want[160];
    snprintf(want, sizeof(want),
             "listen %s:%d: address in use (another switchboard or another program holds it)", host,
             port);
    assert_int_equal(sb_listen_claim(host, port, 2, false, &c, &err), SB_E_CONFLICT);
    assert_null(c);
    assert_string_equal(err.msg, want);
}

/* ---- tests ---- */

static void formats_addresses(void **state)
{
    struct sockaddr_storage ss = {0};
    char out[80];
    uv_ip4_addr("10.1.2.3", 8080, (struct sockaddr_in *)&ss);
    sb__addr_format(&ss, out, sizeof(out));
    assert_string_equal(out, "10.1.2.3:8080");
    uv_ip6_addr("::1", 443, (struct sockaddr_in6 *)&ss);
    sb__addr_format(&ss, out, sizeof(out));
    assert_string_equal(out, "[::1]:443");
}

static void second_claim_refused_until_freed(void **state)
{
    struct sb_listen_claim *a = NULL, *b = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_listen_claim("127.0.0.1", 0, 3, false, &a, &err), SB_OK);
    int port = sb_listen_claim_port(a);
    assert_true(port > 0);
    assert_int_equal(sb_listen_claim_workers(a), 3);
    assert_int_equal(sb_listen_claim_previous(a), 0);
    expect_in_use("127.0.0.1", port);
    expect_in_use("0.0.0.0", port); /* overlapping: the probe sees A's listeners */
    sb_listen_claim_free(a);
    /* Nothing stale: the kernel dropped the lock with its socket. */
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 1, false, &b, &err), SB_OK);
    sb_listen_claim_free(b);
}

static void foreign_listeners_refused(void **state)
{
    /* A plain listener, a same-user SO_REUSEPORT one (the kernel alone would let us join
     * its group), and a wildcard one overlapping our address. */
    static const struct {
        const char *where;
        bool reuseport;
    } cases[] = {{"127.0.0.1", false}, {"127.0.0.1", true}, {"0.0.0.0", true}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = foreign_listener(cases[i].where, 0, cases[i].reuseport);
        expect_in_use("127.0.0.1", port_of(fd));
        close(fd);
    }
}

static void bad_input(void **state)
{
    struct sb_listen_claim *c = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_listen_claim("localhost", 8080, 1, false, &c, &err), SB_E_CONFIG);
    assert_string_equal(err.msg, "listen: 'localhost' is not an IP address");
    assert_int_equal(sb_listen_claim("127.0.0.1", 70000, 1, true, &c, &err), SB_E_CONFIG);
    assert_null(c);
}

static void takeover_of_nobody_is_a_fresh_start(void **state)
{
    struct sb_listen_claim *a = NULL, *b = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_listen_claim("127.0.0.1", 0, 1, false, &a, &err), SB_OK);
    int port = sb_listen_claim_port(a);
    sb_listen_claim_free(a);
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 2, true, &b, &err), SB_OK);
    assert_int_equal(sb_listen_claim_previous(b), 0);
    assert_int_equal(sb_listen_claim_workers(b), 2);
    sb_listen_claim_free(b);
}

static void takeover_refused_without_hook(void **state)
{
    struct sb_server *a = start("A", NULL, 0, false);
    int port = sb_server_port(a);
    struct sb_listen_claim *b = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 1, true, &b, &err), SB_E_CONFLICT);
    assert_non_null(strstr(err.msg, "takeover refused by pid"));
    assert_non_null(strstr(err.msg, "cannot hand over"));
    assert_int_equal(ask(port), 'A'); /* A goes on serving */
    sb_server_free(a);
}

static void takeover_hands_over_every_connection(void **state)
{
    atomic_store(&handed, 0);
    struct sb_server *a = start("A", NULL, 0, true);
    int port = sb_server_port(a);
    assert_int_equal(ask(port), 'A');
    struct sb_listen_claim *c = NULL;
    struct sb_error err = {0};
    /* One worker asked, two held by A: B keeps both of A's sockets. */
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 1, true, &c, &err), SB_OK);
    assert_int_equal(sb_listen_claim_previous(c), getpid());
    assert_int_equal(sb_listen_claim_workers(c), 2);
    assert_int_equal(atomic_load(&handed), 0); /* not before B serves */
    assert_int_equal(ask(port), 'A');          /* B holds the sockets but does not serve yet */
    struct sb_server *b = start("B", c, port, true);
    for (int i = 0; i < 200 && atomic_load(&handed) == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(atomic_load(&handed), 1);
    for (int i = 0; i < 20; i++) {
        char who = ask(port);
        assert_true(who == 'A' || who == 'B'); /* both accept until A has stopped */
    }
    sb_server_free(a); /* A drains; its copies close, the sockets stay B's */
    for (int i = 0; i < 40; i++)
        assert_int_equal(ask(port), 'B');
    expect_in_use("127.0.0.1", port); /* B holds the lock A handed over */
    sb_server_free(b);
    /* B's last listener closed: the address is free again. */
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 1, false, &c, &err), SB_OK);
    sb_listen_claim_free(c);
}

static void abandoned_takeover_leaves_old_serving(void **state)
{
    atomic_store(&handed, 0);
    struct sb_server *a = start("A", NULL, 0, true);
    int port = sb_server_port(a);
    struct sb_listen_claim *c = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 2, true, &c, &err), SB_OK);
    sb_listen_claim_free(c); /* the new process failed before serving */
    usleep(50 * 1000);
    assert_int_equal(atomic_load(&handed), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ask(port), 'A');
    expect_in_use("127.0.0.1", port);
    /* A answers the next takeover too. */
    assert_int_equal(sb_listen_claim("127.0.0.1", port, 2, true, &c, &err), SB_OK);
    sb_listen_claim_free(c);
    sb_server_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_addresses),
        cmocka_unit_test(second_claim_refused_until_freed),
        cmocka_unit_test(foreign_listeners_refused),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(takeover_of_nobody_is_a_fresh_start),
        cmocka_unit_test(takeover_refused_without_hook),
        cmocka_unit_test(takeover_hands_over_every_connection),
        cmocka_unit_test(abandoned_takeover_leaves_old_serving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
