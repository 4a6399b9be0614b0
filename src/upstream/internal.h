/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the two upstream paths share, inside src/upstream only.
 *
 * sb_upstream (client.c) runs every request; a plain-http:// request whose
 * spec asks for it goes to the native HTTP/1.1 pool (h1.c) instead of curl.
 * Both kinds of request are a `struct sb_ureq` to callers: each begins with
 * an enum sb__ureq_kind, which is how resume/cancel find their path. The
 * response framing (h1_parse.c) is a pure state machine over bytes, so the
 * fuzzer and the unit tests drive it without sockets.
 */
#ifndef SB_UPSTREAM_INTERNAL_H
#define SB_UPSTREAM_INTERNAL_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"
#include "upstream/client.h"

#define SB__MAX_RESPONSE_HEAD (64 * 1024) /* bytes of one response header block */
#define SB__HEAD_TOO_BIG "response head over 64 KiB"
#define SB__DEFAULT_CONNECT_MS 10000L

/* The first member of every struct sb_ureq, whichever path runs it. */
enum sb__ureq_kind { SB__UREQ_CURL = 1, SB__UREQ_H1 = 2 };

/* ---- shared by client.c and h1.c (defined in client.c) ---- */

/* Checks what would corrupt a request line or header block. */
sb_err sb__ureq_check_spec(const struct sb_ureq_spec *s, const struct sb_ureq_cbs *cbs,
                           struct sb_error *err);
/* Splits "Name: value\r\n" lines of p[0..len) into kv (at most cap);
 * returns how many. The slices borrow p. */
size_t sb__ureq_split_head(const char *p, size_t len, struct sb_kv *kv, size_t cap);
/* The error for a timeout: which = 'c' connect, 't' total, 'i' idle. */
sb_err sb__ureq_timeout(struct sb_error *err, char which, const char *target, long ms);

/* ---- the native pool (h1.c) ---- */

struct sb_h1;

/* Returns owned (close with sb__h1_close); keepalive_s < 0 = no TCP keep-alive. */
struct sb_h1 *sb__h1_create(uv_loop_t *loop, long keepalive_s);
/* Cancels every request (no callbacks), closes every connection, then calls
 * done(ud) from a close callback (always later, never inside) and frees h. */
void sb__h1_close(struct sb_h1 *h, void (*done)(void *ud), void *ud);
/* Whether url is one the native path can send: http://, no userinfo, no
 * bytes a request line cannot carry. */
bool sb__h1_takes(const char *url);
/* As sb_ureq_start, for a URL sb__h1_takes. */
struct sb_ureq *sb__h1_start(struct sb_h1 *h, const struct sb_ureq_spec *spec,
                             const struct sb_ureq_cbs *cbs, void *ud, struct sb_error *err);
void sb__h1_resume(struct sb_ureq *r);
void sb__h1_cancel(struct sb_ureq *r);
size_t sb__h1_active(const struct sb_h1 *h);
/* Connections open (busy and idle) and idle, for tests. */
size_t sb__h1_conns(const struct sb_h1 *h);
size_t sb__h1_idle(const struct sb_h1 *h);

/* ---- response framing (h1_parse.c): bytes in, head and body out ---- */

enum sb__h1_rc {
    SB__H1_MORE,   /* all bytes consumed; the response goes on */
    SB__H1_PAUSED, /* on_data returned SB_UREQ_PAUSE: see held */
    SB__H1_DONE,   /* the final response is complete; *used says where it ended */
    SB__H1_STOP,   /* a callback returned < 0 (the request is gone) */
    SB__H1_ERROR,  /* malformed, or a head over SB__MAX_RESPONSE_HEAD: see why */
};

struct sb__h1_resp {
    http_parser parser;
    struct sb_buf head; /* "Name:value\n" lines of the current block */
    int (*on_head)(void *ud, int status, const struct sb_kv *h, size_t n); /* < 0 stops */
    int (*on_data)(void *ud, const char *p, size_t n); /* 0, SB_UREQ_PAUSE, or < 0 stops */
    void *ud;
    const char *held_p; /* PAUSED: the body bytes on_data refused (in the fed input), */
    size_t held;        /* to hand over again before parsing on from *used */
    const char *why;    /* ERROR: what was wrong */
    bool in_value;      /* the last header callback was a value */
    bool head_done;     /* the final (>= 200) head was delivered */
    bool done;          /* the final message is complete */
    bool no_body;       /* a response to HEAD */
    bool got_bytes;     /* any byte was fed */
    int stop;           /* set by a callback's verdict: PAUSED or STOP */
};

/* resp->on_head, on_data and ud must be set after this. */
void sb__h1_resp_init(struct sb__h1_resp *rp, bool head_request);
void sb__h1_resp_free(struct sb__h1_resp *rp);
/* Parses p[0..n); *used = where parsing stopped (with PAUSED, held_p lies
 * in p[0..n) at or before p + *used; DONE with *used < n: bytes follow the
 * response). */
enum sb__h1_rc sb__h1_resp_feed(struct sb__h1_resp *rp, const char *p, size_t n, size_t *used);
/* The connection ended (EOF): DONE for a close-delimited body, else ERROR. */
enum sb__h1_rc sb__h1_resp_eof(struct sb__h1_resp *rp);
/* After DONE: may the connection carry another request? */
bool sb__h1_resp_keep_alive(const struct sb__h1_resp *rp);

#endif
