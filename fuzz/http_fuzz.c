/* SPDX-License-Identifier: MIT */
/*
 * http_fuzz.c - the whole HTTP request path, over a real loopback socket.
 *
 * One server (two workers) runs for the life of the fuzzer. Each input is
 * written to a fresh connection, the write side is shut, and the answer is
 * read until the server closes. Whatever the bytes (pipelined requests,
 * chunked bodies, broken framing, huge headers), the server must answer or
 * close, never crash, leak or hang; a response must begin with a status line.
 * Bodies over 256 bytes go to a file (body_buffer_bytes, issue 9 item 6), so
 * Content-Length and chunked bodies cross the heap-to-file switch; the echo
 * reads them back from the file's map.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net/http.h"

static int port;

static void handler(struct sb_http_req *req, void *ctx)
{
    static const struct sb_http_header h[] = {{SB_SLICE("content-type"), SB_SLICE("text/plain")}};
    if (sb_slice_eq_cstr(req->path, "/stream")) {
        sb_http_stream_start(req, 200, h, 1);
        sb_http_stream_write(req, req->body.p, req->body.len);
        sb_http_stream_end(req);
        return;
    }
    sb_http_respond(req, 200, h, 1, req->body);
}

static char spool_dir[] = "/tmp/sb-http-fuzz-XXXXXX";

static void remove_spool_dir(void)
{
    rmdir(spool_dir); /* empty: its files never had a name */
}

static void start(void)
{
    struct sb_server_opts o = {
        .host = "127.0.0.1",
        .workers = 2,
        .max_header_bytes = 4096,
        .max_body_bytes = 8192,
        .header_timeout_ms = 200,
        .idle_timeout_ms = 200,
        .max_connections = 64,
        .shutdown_timeout_ms = 100,
        .handler = handler,
        .body_buffer_bytes = 256,
        .body_temp_dir = mkdtemp(spool_dir),
    };
    struct sb_server *s;
    struct sb_error err;
    if (sb_server_start(&o, &s, &err) != SB_OK) {
        fprintf(stderr, "http_fuzz: %s\n", err.msg);
        abort();
    }
    port = sb_server_port(s); /* runs until the process exits */
    atexit(remove_spool_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!port)
        start();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early on bad input */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    size_t total = 0;
    char first[9] = {0};
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0) {
            fprintf(stderr, "http_fuzz: server neither answered nor closed within 5 s\n");
            abort();
        }
        if (r == 0)
            break;
        if (total < 8)
            memcpy(first + total, buf, (size_t)r < 8 - total ? (size_t)r : 8 - total);
        total += (size_t)r;
    }
    if (total > 0 && memcmp(first, "HTTP/1.1", total < 8 ? total : 8) != 0)
        abort(); /* bytes that are not a status line */
    close(fd);
    return 0;
}
