/* SPDX-License-Identifier: MIT */
/*
 * streamload.c - streaming load tool for `make bench` (wrk cannot see chunks).
 *
 * Three modes, all against one HTTP/1.1 endpoint on 127.0.0.1, all bounded in
 * time, each ending with one parseable `RESULT key=value ...` line on stdout:
 *
 *   ttfb  One keep-alive connection, N streaming requests one after another
 *         (after W warm-ups). For each: time from send() to the first body
 *         byte (TTFB), to the end of the response, and the gaps between reads
 *         that carried SSE events. A request counts as "unbuffered" when its
 *         first read did not hold the whole stream and, given --pace-ms, its
 *         first byte came before the upstream could have sent the second
 *         chunk (the mock sends chunk 2 at least pace ms after the request).
 *         Blocking sockets: nothing between the clock and the kernel.
 *
 *   ready Polls GET --path until it answers 200 and prints how long that
 *         took: started just before a server, its start-up time.
 *
 *   hold  Opens C connections (at most --ramp connecting at once), each with
 *         one streaming request, and waits until every one has received its
 *         first body byte. Then it prints ALL_OPEN, reads VmRSS/VmHWM of
 *         --watch-pid (the proxy), holds the streams --hold-s seconds while
 *         sampling again, closes them all and exits. libuv, one thread.
 *
 * Percentiles are nearest-rank over all samples; times are CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

#include "core/alloc.h"

/* ---- options and shared helpers --------------------------------------- */

static struct {
    const char *mode;   /* "ttfb", "hold" or "ready" */
    int port;           /* target port on 127.0.0.1 */
    const char *path;   /* request path */
    const char *model;  /* "model" of the request body */
    const char *token;  /* bearer token, or NULL for none */
    int n;              /* ttfb: measured requests */
    int warmup;         /* ttfb: requests before measuring */
    int pace_ms;        /* ttfb: the upstream's chunk pacing, 0 = unknown */
    int conns;          /* hold: streams to open */
    int ramp;           /* hold: connections in progress at most */
    int hold_s;         /* hold: seconds to keep them open once all are */
    int timeout_s;      /* every mode: hard limit on the whole run */
    int watch_pid;      /* hold: process whose memory to report, 0 = none */
    int stall_s;        /* hold: give up after this long without a new stream opening */
} opt = {"ttfb", 0, "/v1/chat/completions", "s-fast", NULL, 1000, 50, 0,
         10000, 256, 3, 60, 0, 10};

static char request[4096]; /* the one request every connection sends */
static size_t request_len;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void build_request(void)
{
    char body[512];
    int bl = snprintf(body, sizeof body,
                      "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}],"
                      "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                      opt.model);
    char auth[512] = "";
    if (opt.token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", opt.token);
    int n = snprintf(request, sizeof request,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Type: application/json\r\n"
                     "Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
                     opt.path, opt.port, auth, bl, body);
    if (n <= 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "streamload: request too long\n");
        exit(2);
    }
    request_len = (size_t)n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile in microseconds; sorts v. */
static long pct_us(int64_t *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp_i64);
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (long)(v[k - 1] / 1000);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- ttfb mode -------------------------------------------------------- */

struct rx {
    int64_t t_read;      /* when the current read returned */
    int64_t t_first;     /* first body byte, 0 until then */
    int64_t t_last_ev;   /* last read that completed an SSE event */
    int status;          /* HTTP status */
    int done;            /* message complete */
    int events;          /* SSE events completed so far */
    int ev_in_read;      /* events completed by the current read */
    int first_read_ev;   /* events completed by the first read that had any; -1 = none yet */
    char last;           /* previous body byte, to find "\n\n" across reads */
};

static int rx_on_headers(http_parser *p)
{
    struct rx *r = p->data;
    r->status = (int)p->status_code;
    return 0;
}

static int rx_on_body(http_parser *p, const char *at, size_t len)
{
    struct rx *r = p->data;
    if (!r->t_first)
        r->t_first = r->t_read;
    for (size_t i = 0; i < len; i++) {
        if (at[i] == '\n' && r->last == '\n') {
            r->ev_in_read++;
            r->events++;
        }
        r->last = at[i];
    }
    return 0;
}

static int rx_on_done(http_parser *p)
{
    struct rx *r = p->data;
    r->done = 1;
    http_parser_pause(p, 1); /* one response per request: stop at its end */
    return 0;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0}; /* no single read waits longer than this */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct ttfb_stats {
    int64_t *ttfb, *end, *gaps; /* samples in ns */
    size_t n, ngaps, cap_gaps;
    int unbuffered, errors, keepalive_breaks;
};

/* Runs one request on *fd (reconnecting when needed); returns 0 and fills r, or -1. */
static int one_request(int *fd, struct rx *r, int64_t *t0, struct ttfb_stats *st, int measure)
{
    static http_parser_settings s = {.on_headers_complete = rx_on_headers,
                                     .on_body = rx_on_body,
                                     .on_message_complete = rx_on_done};
    static char buf[65536];
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    memset(r, 0, sizeof *r);
    r->first_read_ev = -1;
    p.data = r;
    if (*fd < 0 && (*fd = dial()) < 0)
        return -1;
    *t0 = now_ns();
    if (send(*fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len)
        return -1;
    while (!r->done) {
        ssize_t n = recv(*fd, buf, sizeof buf, 0);
        r->t_read = now_ns();
        if (n <= 0)
            return -1;
        r->ev_in_read = 0;
        http_parser_execute(&p, &s, buf, (size_t)n);
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED)
            return -1;
        if (r->ev_in_read > 0) {
            if (r->first_read_ev < 0)
                r->first_read_ev = r->ev_in_read;
            else if (measure && st->ngaps < st->cap_gaps)
                st->gaps[st->ngaps++] = r->t_read - r->t_last_ev;
            r->t_last_ev = r->t_read;
        }
    }
    if (!http_should_keep_alive(&p)) {
        close(*fd);
        *fd = -1;
        st->keepalive_breaks++;
    }
    return 0;
}

static int run_ttfb(void)
{
    struct ttfb_stats st = {0};
    st.ttfb = sb_xcalloc((size_t)opt.n, sizeof *st.ttfb);
    st.end = sb_xcalloc((size_t)opt.n, sizeof *st.end);
    st.cap_gaps = (size_t)opt.n * 64;
    st.gaps = sb_xcalloc(st.cap_gaps, sizeof *st.gaps);
    int64_t deadline = now_ns() + (int64_t)opt.timeout_s * 1000000000;
    int fd = -1, events = 0;
    for (int i = 0; i < opt.warmup + opt.n && now_ns() < deadline; i++) {
        struct rx r;
        int64_t t0;
        int measure = i >= opt.warmup;
        if (one_request(&fd, &r, &t0, &st, measure) < 0 || r.status != 200) {
            fprintf(stderr, "streamload: request %d failed (status %d)\n", i, r.status);
            if (fd >= 0)
                close(fd);
            fd = -1;
            if (++st.errors > 10)
                break;
            continue;
        }
        if (!measure)
            continue;
        st.ttfb[st.n] = r.t_first - t0;
        st.end[st.n] = r.t_read - t0;
        st.n++;
        events = r.events;
        int not_whole = r.first_read_ev >= 0 && r.first_read_ev < r.events;
        int before_second = opt.pace_ms == 0 || r.t_first - t0 < (int64_t)opt.pace_ms * 1000000;
        st.unbuffered += not_whole && before_second;
    }
    if (fd >= 0)
        close(fd);
    size_t n = st.n;
    long tp50 = pct_us(st.ttfb, n, 50), tp99 = pct_us(st.ttfb, n, 99);
    long ep50 = pct_us(st.end, n, 50), ep99 = pct_us(st.end, n, 99);
    long gp50 = pct_us(st.gaps, st.ngaps, 50), gp99 = pct_us(st.gaps, st.ngaps, 99);
    printf("RESULT mode=ttfb model=%s n=%zu ttfb_p50_us=%ld ttfb_p99_us=%ld end_p50_us=%ld "
           "end_p99_us=%ld gap_p50_us=%ld gap_p99_us=%ld events=%d unbuffered=%d errors=%d "
           "reconnects=%d\n",
           opt.model, n, tp50, tp99, ep50, ep99, gp50, gp99, events, st.unbuffered, st.errors,
           st.keepalive_breaks);
    fflush(stdout);
    free(st.ttfb);
    free(st.end);
    free(st.gaps);
    return n == (size_t)opt.n && st.errors == 0 ? 0 : 1;
}

/* ---- hold mode -------------------------------------------------------- */

enum hstate { H_CONNECTING, H_WAITING, H_OPEN, H_DEAD };

struct hconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    http_parser parser;
    enum hstate state;
};

static struct {
    uv_loop_t *loop;
    struct hconn *c;     /* opt.conns of them */
    int started, open, failed, dropped, ended;
    int all_settled;     /* open + failed == conns */
    int64_t t_start, t_settled;
    long rss_base_kb, rss_open_kb, rss_max_kb, hwm_kb;
    uv_timer_t deadline, hold, sample;
    int last_progress;   /* open + failed at the last sample */
    int stalled_s;       /* seconds without progress */
    int exit_code;
} H;

static char hbuf[65536]; /* reads on one thread: shared */
static http_parser_settings hsettings;

/* Reads VmRSS and VmHWM (kB) of pid; returns 0 on success. */
static int read_rss(int pid, long *rss, long *hwm)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    *rss = *hwm = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return *rss >= 0 ? 0 : -1;
}

static void sample_rss(void)
{
    long rss, hwm;
    if (opt.watch_pid && read_rss(opt.watch_pid, &rss, &hwm) == 0) {
        if (rss > H.rss_max_kb)
            H.rss_max_kb = rss;
        H.hwm_kb = hwm;
    }
}

static void start_more(void);

static void on_hold_done(uv_timer_t *t)
{
    uv_stop(H.loop);
}

static void settle_check(void)
{
    if (H.all_settled || H.open + H.failed < opt.conns)
        return;
    H.all_settled = 1;
    H.t_settled = now_ns();
    long hwm;
    if (opt.watch_pid && read_rss(opt.watch_pid, &H.rss_open_kb, &hwm) == 0)
        sample_rss();
    printf("ALL_OPEN open=%d failed=%d t_ms=%ld rss_kb=%ld\n", H.open, H.failed,
           (long)((H.t_settled - H.t_start) / 1000000), H.rss_open_kb);
    fflush(stdout);
    uv_timer_start(&H.hold, on_hold_done, (uint64_t)opt.hold_s * 1000, 0);
}

/* Ends c; why (a libuv error name or a phrase) is printed for the first few failures. */
static void hconn_fail(struct hconn *c, const char *why)
{
    if (c->state == H_DEAD)
        return;
    if (H.failed + H.dropped < 5)
        fprintf(stderr, "streamload: stream %s: %s\n", c->state == H_OPEN ? "dropped" : "failed", why);
    if (c->state == H_OPEN)
        H.dropped++;
    else
        H.failed++;
    c->state = H_DEAD;
    uv_close((uv_handle_t *)&c->tcp, NULL);
    start_more();
    settle_check();
}

static int h_on_headers(http_parser *p)
{
    if (p->status_code != 200) {
        fprintf(stderr, "streamload: stream got HTTP %u\n", p->status_code);
        return 1; /* parse error -> the read callback fails the connection */
    }
    return 0;
}

static int h_on_body(http_parser *p, const char *at, size_t len)
{
    struct hconn *c = p->data;
    if (c->state == H_WAITING) {
        c->state = H_OPEN;
        H.open++;
        start_more();
        settle_check();
    }
    return 0;
}

static int h_on_done(http_parser *p)
{
    H.ended++; /* the upstream finished a stream we meant to hold: count, keep the socket */
    return 0;
}

static void h_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(hbuf, sizeof hbuf);
}

static void h_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct hconn *c = s->data;
    if (n < 0) {
        hconn_fail(c, uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    http_parser_execute(&c->parser, &hsettings, b->base, (size_t)n);
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        hconn_fail(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
}

static void h_written(uv_write_t *w, int status)
{
    if (status < 0)
        hconn_fail(w->data, uv_strerror(status));
}

static void h_connected(uv_connect_t *req, int status)
{
    struct hconn *c = req->data;
    if (status < 0) {
        hconn_fail(c, uv_strerror(status));
        return;
    }
    c->state = H_WAITING;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_buf_t b = uv_buf_init(request, (unsigned)request_len); /* borrowed, static */
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, h_written) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, h_alloc, h_read) < 0)
        hconn_fail(c, "write or read start failed");
}

/* Starts connections until --ramp are in progress or all were started. */
static void start_more(void)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", opt.port, &a);
    while (H.started < opt.conns && H.started - H.open - H.failed < opt.ramp) {
        struct hconn *c = &H.c[H.started++];
        uv_tcp_init(H.loop, &c->tcp);
        c->tcp.data = c->creq.data = c->parser.data = c;
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        c->state = H_CONNECTING;
        if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, h_connected) < 0) {
            c->state = H_DEAD;
            H.failed++;
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
    }
}

/* Once a second: memory, progress, and giving up when opening has stalled. */
static void on_sample(uv_timer_t *t)
{
    sample_rss();
    if (H.all_settled)
        return;
    int progress = H.open + H.failed;
    if (progress != H.last_progress) {
        H.last_progress = progress;
        H.stalled_s = 0;
        fprintf(stderr, "streamload: started=%d open=%d failed=%d\n", H.started, H.open, H.failed);
    } else if (++H.stalled_s >= opt.stall_s) {
        fprintf(stderr, "streamload: no new stream opened for %d s: %d of %d open\n", opt.stall_s,
                H.open, opt.conns);
        H.exit_code = 3;
        uv_stop(H.loop);
    }
}

static void on_deadline(uv_timer_t *t)
{
    fprintf(stderr, "streamload: deadline: %d of %d streams open\n", H.open, opt.conns);
    H.exit_code = 3;
    uv_stop(H.loop);
}

static void close_all(void)
{
    for (int i = 0; i < H.started; i++)
        if (H.c[i].state != H_DEAD) {
            H.c[i].state = H_DEAD;
            uv_close((uv_handle_t *)&H.c[i].tcp, NULL);
        }
    uv_close((uv_handle_t *)&H.deadline, NULL);
    uv_close((uv_handle_t *)&H.hold, NULL);
    uv_close((uv_handle_t *)&H.sample, NULL);
    uv_run(H.loop, UV_RUN_DEFAULT); /* runs only the close callbacks */
}

static int run_hold(void)
{
    H.loop = uv_default_loop();
    H.c = sb_xcalloc((size_t)opt.conns, sizeof *H.c);
    hsettings.on_headers_complete = h_on_headers;
    hsettings.on_body = h_on_body;
    hsettings.on_message_complete = h_on_done;
    long hwm;
    if (opt.watch_pid && read_rss(opt.watch_pid, &H.rss_base_kb, &hwm) < 0) {
        fprintf(stderr, "streamload: cannot read /proc/%d/status\n", opt.watch_pid);
        return 2;
    }
    uv_timer_init(H.loop, &H.deadline);
    uv_timer_init(H.loop, &H.hold);
    uv_timer_init(H.loop, &H.sample);
    uv_timer_start(&H.deadline, on_deadline, (uint64_t)opt.timeout_s * 1000, 0);
    uv_timer_start(&H.sample, on_sample, 1000, 1000);
    H.t_start = now_ns();
    start_more();
    uv_run(H.loop, UV_RUN_DEFAULT);
    sample_rss();
    if (!H.all_settled && opt.watch_pid) /* gave up: report what the open ones cost */
        read_rss(opt.watch_pid, &H.rss_open_kb, &hwm);
    int still_open = 0;
    for (int i = 0; i < H.started; i++)
        still_open += H.c[i].state == H_OPEN;
    long ramp_ms = H.all_settled ? (long)((H.t_settled - H.t_start) / 1000000) : -1;
    long per_stream = H.open > 0 && H.rss_open_kb > 0
                          ? (H.rss_open_kb - H.rss_base_kb) * 1024 / H.open : -1;
    printf("RESULT mode=hold want=%d open=%d failed=%d dropped=%d ended=%d still_open=%d "
           "settled=%d ramp_ms=%ld rss_base_kb=%ld rss_open_kb=%ld rss_max_kb=%ld hwm_kb=%ld "
           "bytes_per_stream=%ld\n",
           opt.conns, H.open, H.failed, H.dropped, H.ended, still_open, H.all_settled, ramp_ms,
           H.rss_base_kb,
           H.rss_open_kb, H.rss_max_kb, H.hwm_kb, per_stream);
    fflush(stdout);
    close_all();
    free(H.c);
    if (H.exit_code)
        return H.exit_code;
    return H.open == opt.conns && still_open == opt.conns ? 0 : 1;
}

/* ---- ready mode --------------------------------------------------------- */

/*
 * Polls GET --path every millisecond until it answers 200 and prints the time
 * since this process started. Started just before the server it waits for,
 * that time is the server's start-up time, to about a millisecond.
 */
static int run_ready(void)
{
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)opt.timeout_s * 1000000000;
    char req[512], resp[64];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     opt.path, opt.port);
    while (now_ns() < deadline) {
        int fd = dial();
        if (fd >= 0) {
            ssize_t got = 0;
            if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n)
                got = recv(fd, resp, sizeof resp - 1, 0);
            close(fd);
            if (got >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 && memcmp(resp + 9, "200", 3) == 0) {
                printf("RESULT mode=ready ms=%.1f\n", (double)(now_ns() - t0) / 1e6);
                return 0;
            }
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    printf("RESULT mode=ready ms=-1\n");
    return 1;
}

/* ---- main ------------------------------------------------------------- */

static void usage_exit(void)
{
    fprintf(stderr,
            "usage: streamload --mode ttfb|hold --port N [--path P] [--model M] [--token T]\n"
            "  ttfb: [-n N] [--warmup W] [--pace-ms MS]       one connection, N streams in turn\n"
            "  hold: [-c C] [--ramp R] [--hold-s S] [--watch-pid PID] [--stall-s S]\n"
            "        C streams open at once; gives up after S s (10) without progress\n"
            "  ready: --path /health  polls every ms until 200, prints ms since its start\n"
            "  all: [--timeout-s S] (hard limit on the run, default 60)\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    struct { const char *name; int *i; const char **s; } flags[] = {
        {"--mode", NULL, &opt.mode},     {"--port", &opt.port, NULL},
        {"--path", NULL, &opt.path},     {"--model", NULL, &opt.model},
        {"--token", NULL, &opt.token},   {"-n", &opt.n, NULL},
        {"--warmup", &opt.warmup, NULL}, {"--pace-ms", &opt.pace_ms, NULL},
        {"-c", &opt.conns, NULL},        {"--ramp", &opt.ramp, NULL},
        {"--hold-s", &opt.hold_s, NULL}, {"--timeout-s", &opt.timeout_s, NULL},
        {"--watch-pid", &opt.watch_pid, NULL}, {"--stall-s", &opt.stall_s, NULL},
    };
    size_t nf = sizeof flags / sizeof flags[0];
    for (int i = 1; i < argc; i++) {
        size_t f = 0;
        while (f < nf && strcmp(argv[i], flags[f].name) != 0)
            f++;
        if (f == nf || i + 1 >= argc)
            usage_exit();
        const char *v = argv[++i];
        if (flags[f].s) {
            *flags[f].s = v;
            continue;
        }
        char *end;
        long x = strtol(v, &end, 10);
        if (*end || x < 0 || x > 10000000)
            usage_exit();
        *flags[f].i = (int)x;
    }
    if (opt.port <= 0 || opt.n < 1 || opt.conns < 1 || opt.ramp < 1 || opt.timeout_s < 1)
        usage_exit();
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    build_request();
    if (strcmp(opt.mode, "ttfb") == 0)
        return run_ttfb();
    if (strcmp(opt.mode, "hold") == 0)
        return run_hold();
    if (strcmp(opt.mode, "ready") == 0)
        return run_ready();
    usage_exit();
    return 2;
}
