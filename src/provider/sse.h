/* SPDX-License-Identifier: MIT */
/*
 * sse.h - incremental Server-Sent Events parser (WHATWG HTML "event streams").
 *
 * Takes the upstream body in whatever pieces the network delivers and calls
 * back once per complete event. Lines end in LF, CRLF or CR (a CR ending one
 * feed and an LF starting the next are one line end); a UTF-8 BOM at the
 * very start is skipped; ':' lines are comments; "data" lines are joined with
 * LF; a blank line dispatches; an event without data lines is dropped, as the
 * spec says. Bounded: a line longer than max_line or an event whose data is
 * longer than max_event fails with SB_E_TOO_LARGE, and the failure is sticky.
 *
 * Zero-copy where possible: when an event's only data line lies inside the
 * buffer being fed, the callback sees a slice into that buffer; otherwise the
 * data is assembled in a bounded sb_buf owned by the parser. This module
 * knows nothing about what the data means (see openai.c).
 */
#ifndef SB_PROVIDER_SSE_H
#define SB_PROVIDER_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

#define SB_SSE_DEFAULT_MAX_LINE (1024u * 1024u)       /* used when init gets 0 */
#define SB_SSE_DEFAULT_MAX_EVENT (4u * 1024u * 1024u) /* used when init gets 0 */

/* One dispatched event. Every slice is valid only during the callback. */
struct sb_sse_event {
    struct sb_slice event; /* event type; "message" when the stream named none */
    struct sb_slice data;  /* data lines joined with LF, no trailing LF; may be empty */
    struct sb_slice id;    /* last event ID seen so far in the stream; may be empty */
};

/* Called once per event; a non-zero return stops the feed, which returns it. */
typedef int (*sb_sse_fn)(void *ud, const struct sb_sse_event *ev);

/*
 * The parser. A value type so it can live inside an arena-allocated adapter
 * state, but only sse.c touches its fields. Holds heap buffers: pair every
 * sb_sse_init with sb_sse_free.
 */
struct sb_sse {
    struct sb_buf line;   /* a line split across feeds, up to max_line */
    struct sb_buf data;   /* assembled data of the current event, up to max_event */
    struct sb_buf type;   /* event type when it had to be copied */
    struct sb_buf id;     /* last event ID buffer (persists across events) */
    struct sb_slice dref; /* data when it is a single line inside the current feed */
    struct sb_slice tref; /* event type when it lies inside the current feed */
    size_t max_line;      /* longest accepted line, terminator excluded */
    size_t max_event;     /* longest accepted data of one event */
    size_t ndata;         /* data lines in the current event */
    int64_t retry_ms;     /* last valid "retry" field, -1 if none */
    unsigned bom;         /* BOM bytes matched so far at stream start (3 = done) */
    bool dref_on;         /* data is dref, not the data buffer */
    bool tref_on;         /* event type is tref, not the type buffer */
    bool open;            /* a field line was seen since the last blank line */
    bool skip_lf;         /* the previous feed ended in CR: drop one leading LF */
    sb_err failed;        /* sticky error, SB_OK while healthy */
};

/* Prepares p; 0 for either bound takes the default. Allocates nothing yet. */
void sb_sse_init(struct sb_sse *p, size_t max_line, size_t max_event);
/* Releases p's buffers; p may be initialised again. Accepts a zeroed struct. */
void sb_sse_free(struct sb_sse *p);

/*
 * Parses buf[0..n) (borrowed for the call) and calls fn for each complete
 * event. Returns SB_OK when all bytes were consumed (a partial line or event
 * is kept for the next feed), the callback's non-zero value if it stopped
 * the feed, or SB_E_TOO_LARGE with err filled. After any non-OK return the
 * parser is failed and keeps returning that code.
 */
sb_err sb_sse_feed(struct sb_sse *p, const char *buf, size_t n, sb_sse_fn fn, void *ud,
                   struct sb_error *err);

/*
 * End of stream. Never dispatches: per the spec an event without its closing
 * blank line is discarded. Returns SB_OK when the stream ended on an event
 * boundary (only comments or nothing pending), or SB_E_UPSTREAM with err
 * filled when a partial line or an undispatched event was pending.
 */
sb_err sb_sse_finish(struct sb_sse *p, struct sb_error *err);

/* The last valid "retry" value in milliseconds, or -1 if the stream sent none. */
int64_t sb_sse_retry_ms(const struct sb_sse *p);

#endif
