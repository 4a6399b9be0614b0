/* SPDX-License-Identifier: MIT */
/*
 * claim.c - one address, one gateway: claiming host:port, and handing it over.
 *
 * Each worker owns an SO_REUSEPORT listener (http.h), and the kernel lets any
 * socket of the same user join that group: a second `switchboard serve` on our
 * address used to start silently and take half of the traffic. Options weighed
 * (the kernel facts below were checked here, Linux 6.x, with throw-away sockets):
 *  - One listening socket shared by all workers (no SO_REUSEPORT): the kernel
 *    would refuse every second bind, but the workers would share one accept
 *    queue and libuv's level-triggered epoll would wake all of them for each
 *    connection (no EPOLLEXCLUSIVE), with uneven spreading. It gives up the fast
 *    path for all traffic to catch a start-up mistake. Rejected.
 *  - SO_REUSEPORT with a cBPF steering program: a newcomer still binds without
 *    error and gets traffic again once the group's indices shift; eBPF socket
 *    arrays need CAP_BPF. Not a refusal. Rejected.
 *  - A probe bind before ours: right answer, but alone it races (two starts both
 *    probe, then both bind). A lock file: stale files and other users' files in
 *    /tmp (fs.protected_regular), and $XDG_RUNTIME_DIR differs between sessions
 *    of one user, so two of them may not see the same file.
 * Chosen: a lock and a probe, then per-worker listeners exactly as before, so
 * nothing changes on the hot path (one extra descriptor per process). Measured
 * here: a whole claim (lock, probe, listeners) takes 66 us with one worker and
 * 185 us with eight, against a start-up of about 15 ms.
 *  1. The lock is an abstract unix socket "switchboard/listen/HOST:PORT", bound
 *     and listening for the process's life. The kernel frees it when the process
 *     dies (a SIGKILL leaves nothing stale); it lives in the network namespace,
 *     as the TCP port does; it needs no directory. A second bind: EADDRINUSE.
 *  2. The probe: a plain bind (SO_REUSEADDR, no SO_REUSEPORT, never listening),
 *     closed at once. It fails against any listener on the address: another
 *     program, one with SO_REUSEPORT under our own user, or a switchboard on an
 *     overlapping address (0.0.0.0 against 127.0.0.1); TIME_WAIT left by our
 *     predecessor does not stop it. Only a foreign program binding in the
 *     microseconds between probe and bind slips past; another user can never
 *     join our group (the kernel compares UIDs).
 *
 * Handover (`serve --takeover`): the lock is also the control channel. The new
 * process connects (each side checks SO_PEERCRED: same user or root); the old
 * one sends the lock and its listening sockets (SCM_RIGHTS); the new one builds
 * its workers on those same sockets and says "ready"; the old one closes its
 * copies and drains. The accept queues never close, so no connection is refused
 * or reset: both processes accept from them until the old one has stopped.
 * Binding fresh sockets into the group and closing the old ones instead would
 * reset what is queued on the old ones (unless net.ipv4.tcp_migrate_req=1).
 *
 * Chapters: addresses · listeners and the lock · claim · takeover (the new
 * process) · control thread (the old process).
 */
#include "net/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/slice.h"

/* The handover protocol: one SOCK_SEQPACKET message each way, then "ready". */
#define MSG_TAKEOVER "switchboard takeover 1"
#define MSG_LISTEN "switchboard listeners 1 " /* + count; SCM_RIGHTS: lock, listeners */
#define MSG_REFUSE "switchboard refuse 1 "    /* + reason */
#define MSG_READY "switchboard ready 1"
#define HANDOVER_MAX 250 /* listeners per message: SCM_RIGHTS carries at most 253 */
#define REPLY_TIMEOUT_MS 5000

/* ---- addresses ---- */

static sb_err resolve(const char *host, int port, struct sockaddr_storage *ss, struct sb_error *err)
{
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return SB_OK;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return SB_OK;
    return sb_fail(err, SB_E_CONFIG, "listen: '%s' is not an IP address", host);
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

void sb__addr_format(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[64] = "?";
    if (ss->ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%d", ip, addr_port(ss));
    } else {
        uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
        snprintf(out, cap, "%s:%d", ip, addr_port(ss));
    }
}

/* fd is bound to exactly ss (family, address, port). */
static bool bound_to(int fd, const struct sockaddr_storage *ss)
{
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &len) != 0 || got.ss_family != ss->ss_family)
        return false;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)&got, *b = (const void *)ss;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    const struct sockaddr_in *a = (const void *)&got, *b = (const void *)ss;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static sb_err in_use(const struct sb_listen_claim *c, struct sb_error *err)
{
    return sb_fail(err, SB_E_CONFLICT,
                   "listen %s: address in use (another switchboard or another program holds it)",
                   c->addr);
}

/* The error for errno e at the failure site; EADDRINUSE always reads "address in use". */
static sb_err sys_fail(const struct sb_listen_claim *c, const char *what, int e,
                       struct sb_error *err)
{
    if (e == EADDRINUSE)
        return in_use(c, err);
    return sb_fail(err, SB_E_IO, "listen %s: %s%s", c->addr, what, strerror(e));
}

/* ---- listeners and the lock ---- */

/* A bound, listening SO_REUSEPORT socket, or -1 with errno set. */
static int open_listener(const struct sockaddr_storage *ss)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Binds listeners until c holds `want` (c->fds has room for them). */
static sb_err bind_more(struct sb_listen_claim *c, int want, struct sb_error *err)
{
    while (c->nfds < want) {
        int fd = open_listener(&c->ss);
        if (fd < 0)
            return sys_fail(c, "", errno, err);
        c->fds[c->nfds++] = fd;
    }
    return SB_OK;
}

/* Fails when anything listens on, or overlaps, the address (see the opening comment). */
static sb_err probe(const struct sb_listen_claim *c, struct sb_error *err)
{
    int one = 1;
    int fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sys_fail(c, "socket: ", errno, err);
    int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (rc == 0)
        rc = bind(fd, (const struct sockaddr *)&c->ss, addr_len(&c->ss));
    int e = errno;
    close(fd);
    return rc == 0 ? SB_OK : sys_fail(c, "", e, err);
}

/* The lock's name in the abstract namespace (sun_path[0] == 0). */
static socklen_t lock_name(const struct sb_listen_claim *c, struct sockaddr_un *un)
{
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    int n = snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "switchboard/listen/%s", c->addr);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* 0: c holds the lock now; EADDRINUSE: another process does; else an errno. */
static int take_lock(struct sb_listen_claim *c)
{
    struct sockaddr_un un;
    socklen_t len = lock_name(c, &un);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    if (bind(fd, (struct sockaddr *)&un, len) != 0 || listen(fd, 8) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    c->ctl = fd;
    return 0;
}

static bool sockopt_is(int fd, int opt, int want)
{
    int v = -1;
    socklen_t len = sizeof(v);
    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 && v == want;
}

/* fd is a listening abstract socket with c's lock name. */
static bool is_lock(const struct sb_listen_claim *c, int fd)
{
    struct sockaddr_un want, got;
    socklen_t wlen = lock_name(c, &want), glen = sizeof(got);
    return sockopt_is(fd, SO_DOMAIN, AF_UNIX) && sockopt_is(fd, SO_TYPE, SOCK_SEQPACKET) &&
           sockopt_is(fd, SO_ACCEPTCONN, 1) &&
           getsockname(fd, (struct sockaddr *)&got, &glen) == 0 && glen == wlen &&
           memcmp(&got, &want, wlen) == 0;
}

static bool is_listener(const struct sb_listen_claim *c, int fd)
{
    return sockopt_is(fd, SO_TYPE, SOCK_STREAM) && sockopt_is(fd, SO_ACCEPTCONN, 1) &&
           bound_to(fd, &c->ss);
}

/* The peer's pid when it runs as our user or as root; -1 otherwise. */
static int peer_pid(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return -1;
    return cr.uid == geteuid() || cr.uid == 0 ? cr.pid : -1;
}

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- claim ---- */

static sb_err takeover(struct sb_listen_claim *c, int workers, struct sb_error *err);

/* Port 0: the kernel picks a port no listener holds; lock it before the others join. */
static sb_err claim_any_port(struct sb_listen_claim *c, int workers, struct sb_error *err)
{
    c->fds = sb_xcalloc((size_t)workers, sizeof(int));
    if (bind_more(c, 1, err) != SB_OK)
        return err->code;
    struct sockaddr_storage got;
    socklen_t len = sizeof(got);
    if (getsockname(c->fds[0], (struct sockaddr *)&got, &len) != 0)
        return sys_fail(c, "getsockname: ", errno, err);
    c->ss = got;
    c->port = addr_port(&got);
    sb__addr_format(&c->ss, c->addr, sizeof(c->addr));
    int e = take_lock(c);
    if (e != 0)
        return sys_fail(c, "lock: ", e, err);
    return bind_more(c, workers, err);
}

static sb_err claim_port(struct sb_listen_claim *c, int workers, bool take, struct sb_error *err)
{
    /* A holder can vanish between our bind and our connect: then claim again. */
    for (int tries = 0; tries < 3; tries++) {
        int e = take_lock(c);
        if (e == 0) {
            if (take)
                sb_info("msg=\"nothing to take over, starting fresh\" addr=%s", c->addr);
            c->fds = sb_xcalloc((size_t)workers, sizeof(int));
            if (probe(c, err) != SB_OK)
                return err->code;
            return bind_more(c, workers, err);
        }
        if (e != EADDRINUSE)
            return sys_fail(c, "lock: ", e, err);
        if (!take) {
            sb_info("msg=\"a switchboard serves this address; `serve --takeover` replaces it "
                    "without dropping connections\" addr=%s",
                    c->addr);
            return in_use(c, err);
        }
        sb_err rc = takeover(c, workers, err);
        if (rc != SB_AGAIN)
            return rc;
    }
    return in_use(c, err);
}

sb_err sb_listen_claim(const char *host, int port, int workers, bool take,
                       struct sb_listen_claim **out, struct sb_error *err)
{
    struct sb_listen_claim *c = sb_xcalloc(1, sizeof(*c));
    c->ctl = c->peer = -1;
    sb_err rc = SB_OK;
    if (port < 0 || port > 65535) {
        rc = sb_fail(err, SB_E_CONFIG, "listen: port %d is out of range", port);
        goto out;
    }
    if (resolve(host, port, &c->ss, err) != SB_OK) {
        rc = err->code;
        goto out;
    }
    c->port = port;
    sb__addr_format(&c->ss, c->addr, sizeof(c->addr));
    workers = workers > 0 ? workers : 1;
    rc = port == 0 ? claim_any_port(c, workers, err) : claim_port(c, workers, take, err);
out:
    if (rc != SB_OK) {
        sb_listen_claim_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

int sb_listen_claim_port(const struct sb_listen_claim *c)
{
    return c->port;
}

int sb_listen_claim_workers(const struct sb_listen_claim *c)
{
    return c->nfds;
}

int sb_listen_claim_previous(const struct sb_listen_claim *c)
{
    return c->previous;
}

void sb__claim_release(struct sb_listen_claim *c)
{
    if (c && c->ctl >= 0) {
        close(c->ctl);
        c->ctl = -1;
    }
}

void sb_listen_claim_free(struct sb_listen_claim *c)
{
    if (!c)
        return;
    sb__claim_release(c);
    if (c->peer >= 0)
        close(c->peer);
    for (int i = c->given; i < c->nfds; i++)
        close(c->fds[i]);
    free(c->fds);
    free(c);
}

/* ---- takeover: the new process ---- */

/* recvmsg with room for the lock and HANDOVER_MAX listeners; *n gets how many came. A message
 * or descriptor list that did not fit is an error (EMSGSIZE); fds[0..*n) are ours either way. */
static ssize_t recv_fds(int fd, char *buf, size_t cap, int *fds, int *n)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * (HANDOVER_MAX + 1))];
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    *n = 0;
    ssize_t got = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *h = got >= 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        size_t room = (size_t)(HANDOVER_MAX + 1 - *n);
        memcpy(fds + *n, CMSG_DATA(h), (k < room ? k : room) * sizeof(int));
        *n += (int)(k < room ? k : room);
    }
    if (got >= 0 && (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
        errno = EMSGSIZE;
        return -1;
    }
    return got;
}

/* Checks the old process's answer and moves the lock and listeners into c. */
static sb_err adopt(struct sb_listen_claim *c, const char *msg, const int *fds, int n, int workers,
                    struct sb_error *err)
{
    unsigned long long count = 0;
    size_t pl = strlen(MSG_REFUSE);
    if (strncmp(msg, MSG_REFUSE, pl) == 0)
        return sb_fail(err, SB_E_CONFLICT, "listen %s: takeover refused by pid %d: %.80s", c->addr,
                       c->previous, msg + pl);
    pl = strlen(MSG_LISTEN);
    if (strncmp(msg, MSG_LISTEN, pl) != 0 || !sb_slice_to_u64(sb_slice_cstr(msg + pl), &count) ||
        count < 1 || count + 1 != (unsigned long long)n)
        return sb_fail(err, SB_E_IO, "listen %s: takeover: unexpected answer from pid %d", c->addr,
                       c->previous);
    if (!is_lock(c, fds[0]))
        return sb_fail(err, SB_E_IO,
                       "listen %s: takeover: pid %d sent a socket that is not the lock", c->addr,
                       c->previous);
    for (int i = 1; i < n; i++)
        if (!is_listener(c, fds[i]))
            return sb_fail(err, SB_E_IO,
                           "listen %s: takeover: pid %d sent a socket not listening there", c->addr,
                           c->previous);
    c->ctl = fds[0];
    c->fds = sb_xcalloc((size_t)(workers > n - 1 ? workers : n - 1), sizeof(int));
    memcpy(c->fds, fds + 1, sizeof(int) * (size_t)(n - 1));
    c->nfds = n - 1;
    return SB_OK;
}

/* Asks the holder (connected on fd) for its sockets; on success they are in c. */
static sb_err converse(struct sb_listen_claim *c, int fd, int workers, struct sb_error *err)
{
    char msg[160];
    int fds[HANDOVER_MAX + 1], n = 0;
    c->previous = peer_pid(fd);
    if (c->previous < 0)
        return sb_fail(err, SB_E_CONFLICT,
                       "listen %s: address in use (held by a process of another user)", c->addr);
    if (send(fd, MSG_TAKEOVER, strlen(MSG_TAKEOVER), MSG_NOSIGNAL) < 0)
        return sys_fail(c, "takeover: ", errno, err);
    ssize_t got = recv_fds(fd, msg, sizeof(msg) - 1, fds, &n);
    sb_err rc = SB_OK;
    if (got <= 0)
        rc = sb_fail(err, SB_E_IO, "listen %s: takeover: pid %d did not answer (%s)", c->addr,
                     c->previous, got == 0 ? "closed" : strerror(errno));
    if (rc == SB_OK) {
        msg[got] = 0;
        rc = adopt(c, msg, fds, n, workers, err);
    }
    for (int i = 0; rc != SB_OK && i < n; i++)
        close(fds[i]);
    return rc;
}

/* SB_OK: c holds the old process's lock and listeners (plus new ones up to `workers`), and
 * c->peer waits for sb__claim_ready. SB_AGAIN: nobody answers on the lock any more. */
static sb_err takeover(struct sb_listen_claim *c, int workers, struct sb_error *err)
{
    struct sockaddr_un un;
    socklen_t len = lock_name(c, &un);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sys_fail(c, "takeover: socket: ", errno, err);
    set_timeouts(fd, REPLY_TIMEOUT_MS); /* connect waits on a full backlog with SO_SNDTIMEO */
    if (connect(fd, (struct sockaddr *)&un, len) != 0) {
        int e = errno;
        close(fd);
        return e == ECONNREFUSED ? SB_AGAIN : sys_fail(c, "takeover: connect: ", e, err);
    }
    sb_err rc = converse(c, fd, workers, err);
    if (rc != SB_OK) {
        close(fd);
        return rc;
    }
    c->peer = fd;
    sb_info("msg=\"taking over\" addr=%s from_pid=%d listeners=%d workers=%d", c->addr, c->previous,
            c->nfds, c->nfds > workers ? c->nfds : workers);
    return bind_more(c, workers, err);
}

void sb__claim_ready(struct sb_listen_claim *c)
{
    if (c->peer < 0)
        return;
    if (send(c->peer, MSG_READY, strlen(MSG_READY), MSG_NOSIGNAL) < 0)
        sb_warn("msg=\"takeover: could not tell the old process\" pid=%d error=\"%s\"", c->previous,
                strerror(errno));
    else
        sb_info("msg=\"took over: the old process drains\" pid=%d", c->previous);
    close(c->peer);
    c->peer = -1;
}

/* ---- control thread: the old process ---- */

enum ctl_end {
    CTL_NEXT,   /* this peer is done with; wait for the next */
    CTL_HANDED, /* the new process serves: stop answering, let the owner stop */
    CTL_STOP,   /* the server is stopping */
};

/* 1: fd readable (or hung up), 0: timed out, -1: the server is stopping. */
static int wait_in(int fd, int wake, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
    int r;
    do
        r = poll(p, 2, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0 || p[1].revents)
        return -1;
    return r > 0 ? 1 : 0;
}

/* Sends the lock and every listener, or a refusal; true when the sockets went. */
static bool send_listeners(struct sb_server *s, int peer, int pid)
{
    char msg[128];
    const char *why = !s->o.handed_over            ? "this server cannot hand over"
                      : s->nworkers > HANDOVER_MAX ? "too many workers to hand over (at most 250)"
                                                   : NULL;
    if (why) {
        snprintf(msg, sizeof(msg), "%s%s", MSG_REFUSE, why);
        sb_warn("msg=\"takeover refused\" pid=%d reason=\"%s\"", pid, why);
        ssize_t sent = send(peer, msg, strlen(msg), MSG_NOSIGNAL); /* best effort */
        (void)sent;
        return false;
    }
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * (HANDOVER_MAX + 1))];
    } u;
    int n = s->nworkers + 1;
    snprintf(msg, sizeof(msg), "%s%d", MSG_LISTEN, s->nworkers);
    struct iovec iov = {.iov_base = msg, .iov_len = strlen(msg)};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.b,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(h), &s->claim->ctl, sizeof(int));
    memcpy(CMSG_DATA(h) + sizeof(int), s->claim->fds, sizeof(int) * (size_t)s->nworkers);
    if (sendmsg(peer, &m, MSG_NOSIGNAL) < 0) {
        sb_warn("msg=\"takeover: sending the listeners failed\" pid=%d error=\"%s\"", pid,
                strerror(errno));
        return false;
    }
    sb_info("msg=\"takeover requested, listeners sent\" pid=%d listeners=%d", pid, s->nworkers);
    return true;
}

static enum ctl_end serve_peer(struct sb_server *s, int peer)
{
    char msg[64];
    int wake = s->ctl_wake[0], pid = peer_pid(peer);
    if (pid < 0) {
        sb_warn("msg=\"takeover refused: the caller runs as another user\"");
        return CTL_NEXT;
    }
    set_timeouts(peer, REPLY_TIMEOUT_MS);
    int r = wait_in(peer, wake, REPLY_TIMEOUT_MS);
    if (r <= 0)
        return r < 0 ? CTL_STOP : CTL_NEXT;
    ssize_t got = recv(peer, msg, sizeof(msg) - 1, MSG_DONTWAIT);
    if (got <= 0)
        return CTL_NEXT;
    msg[got] = 0;
    if (strcmp(msg, MSG_TAKEOVER) != 0 || !send_listeners(s, peer, pid))
        return CTL_NEXT;
    /* The new process opens its store and starts its workers: no bound on how long. */
    r = wait_in(peer, wake, -1);
    if (r < 0)
        return CTL_STOP;
    got = recv(peer, msg, sizeof(msg) - 1, MSG_DONTWAIT);
    if (got != (ssize_t)strlen(MSG_READY) || memcmp(msg, MSG_READY, (size_t)got) != 0) {
        sb_warn("msg=\"takeover abandoned by the new process; still serving\" pid=%d", pid);
        return CTL_NEXT;
    }
    sb_info("msg=\"handed over, draining\" to_pid=%d", pid);
    return CTL_HANDED;
}

static void *ctl_main(void *arg)
{
    struct sb_server *s = arg;
    for (;;) {
        int r = wait_in(s->claim->ctl, s->ctl_wake[0], -1);
        if (r < 0)
            break;
        /* Non-blocking: after a handover the new process accepts from this queue too. */
        int peer = r > 0 ? accept4(s->claim->ctl, NULL, NULL, SOCK_CLOEXEC) : -1;
        if (peer < 0)
            continue;
        enum ctl_end end = serve_peer(s, peer);
        close(peer);
        if (end == CTL_HANDED)
            s->o.handed_over(s->o.ud);
        if (end != CTL_NEXT)
            break;
    }
    return NULL;
}

void sb__ctl_start(struct sb_server *s)
{
    if (s->claim->ctl < 0 || pipe2(s->ctl_wake, O_CLOEXEC) != 0)
        return;
    if (pthread_create(&s->ctl_thread, NULL, ctl_main, s) == 0)
        s->ctl_running = true;
}

void sb__ctl_stop(struct sb_server *s)
{
    if (s->ctl_running) {
        ssize_t n = write(s->ctl_wake[1], "x", 1); /* level-triggered: every wait sees it */
        (void)n;
        pthread_join(s->ctl_thread, NULL);
        s->ctl_running = false;
    }
    for (int i = 0; i < 2; i++) {
        if (s->ctl_wake[i] >= 0)
            close(s->ctl_wake[i]);
        s->ctl_wake[i] = -1;
    }
}
