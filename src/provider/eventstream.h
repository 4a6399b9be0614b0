/* SPDX-License-Identifier: MIT */
/*
 * eventstream.h - AWS binary event-stream decoder (application/vnd.amazon.eventstream).
 *
 * Bedrock's ConverseStream frames its reply as binary messages:
 *
 *   total length u32 | headers length u32 | prelude CRC32 u32 |
 *   headers | payload | message CRC32 u32          (all big-endian)
 *
 * where each header is name length u8, name, type u8 and a typed value.
 * The decoder takes bytes as they arrive and calls back once per complete,
 * CRC-checked message with its headers decoded and its payload as a slice.
 * It validates the prelude (lengths and prelude CRC) before buffering a
 * single payload byte, so a corrupt length cannot make it allocate. Bounded
 * by max_message (16 MiB by default); failures are sticky. Zero-copy when a
 * whole message lies inside the buffer being fed.
 *
 * Also here: the CRC-32 (IEEE, the gzip one) and a small encoder used by
 * tests and mock upstreams. Nothing here knows what the payload means.
 */
#ifndef SB_PROVIDER_EVENTSTREAM_H
#define SB_PROVIDER_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

#define SB_EVENTSTREAM_MAX_MESSAGE (16u * 1024u * 1024u) /* default and ceiling of max_message */
#define SB_EVENTSTREAM_MAX_HEADERS (128u * 1024u)        /* headers section limit, as AWS sets it */

/* Header value types; the numbers are the wire's type byte. */
enum sb_eventstream_type {
    SB_EVENTSTREAM_BOOL_TRUE = 0,  /* no value bytes; num = 1 */
    SB_EVENTSTREAM_BOOL_FALSE = 1, /* no value bytes; num = 0 */
    SB_EVENTSTREAM_BYTE = 2,       /* int8 in num */
    SB_EVENTSTREAM_SHORT = 3,      /* int16 in num */
    SB_EVENTSTREAM_INT = 4,        /* int32 in num */
    SB_EVENTSTREAM_LONG = 5,       /* int64 in num */
    SB_EVENTSTREAM_BYTES = 6,      /* u16 length + bytes in value */
    SB_EVENTSTREAM_STRING = 7,     /* u16 length + UTF-8 in value */
    SB_EVENTSTREAM_TIMESTAMP = 8,  /* int64 milliseconds since the epoch in num */
    SB_EVENTSTREAM_UUID = 9,       /* 16 raw bytes in value */
};

struct sb_eventstream_header {
    struct sb_slice name; /* 1..255 bytes */
    enum sb_eventstream_type type;
    struct sb_slice value; /* BYTES, STRING, UUID: the raw bytes; else empty */
    int64_t num;           /* BOOL (0/1), BYTE, SHORT, INT, LONG, TIMESTAMP */
};

/* One decoded message; everything is valid only during the callback. */
struct sb_eventstream_msg {
    const struct sb_eventstream_header *headers; /* in wire order */
    size_t nheaders;
    struct sb_slice payload;
    struct sb_slice event_type;     /* ":event-type" string header, or empty */
    struct sb_slice message_type;   /* ":message-type" ("event", "exception", "error"), or empty */
    struct sb_slice exception_type; /* ":exception-type", or empty */
};

/* Called once per message; a non-zero return stops the feed, which returns it. */
typedef int (*sb_eventstream_fn)(void *ud, const struct sb_eventstream_msg *m);

/* The decoder: a value type for embedding in adapter state; only eventstream.c touches it. */
struct sb_eventstream {
    struct sb_buf msg;                  /* a message split across feeds, up to max_message */
    struct sb_eventstream_header *hdrs; /* heap scratch for decoded headers */
    size_t hcap;                        /* entries allocated in hdrs */
    size_t max_message;                 /* largest accepted total length */
    sb_err failed;                      /* sticky error, SB_OK while healthy */
};

/* Prepares d; max_message 0 (or above the ceiling) means SB_EVENTSTREAM_MAX_MESSAGE. */
void sb_eventstream_init(struct sb_eventstream *d, size_t max_message);
/* Releases d's heap memory; accepts a zeroed struct. */
void sb_eventstream_free(struct sb_eventstream *d);

/*
 * Decodes buf[0..n) (borrowed for the call), calling fn per complete message.
 * Returns SB_OK (a partial message is kept), the callback's non-zero value,
 * SB_E_TOO_LARGE (message over max_message), or SB_E_UPSTREAM (bad length,
 * CRC mismatch, malformed header) with err filled. Non-OK makes d failed.
 */
sb_err sb_eventstream_feed(struct sb_eventstream *d, const char *buf, size_t n,
                           sb_eventstream_fn fn, void *ud, struct sb_error *err);
/* End of stream: SB_OK on a message boundary, SB_E_UPSTREAM inside a message, or the sticky error.
 */
sb_err sb_eventstream_finish(struct sb_eventstream *d, struct sb_error *err);

/* The first header called name (exact match), or NULL. Borrows m. */
const struct sb_eventstream_header *sb_eventstream_header(const struct sb_eventstream_msg *m,
                                                          const char *name);

/* CRC-32/IEEE: pass 0 to start, the previous result to continue. */
uint32_t sb_eventstream_crc32(uint32_t crc, const void *p, size_t n);

/*
 * Appends one encoded message to out (for tests and mock upstreams).
 * Borrows h[0..n) and payload. Returns SB_OK, SB_E_TOO_LARGE (out's bound,
 * or the message over the format's limits), or SB_E_BAD_REQUEST (a header
 * with an empty or long name, an unknown type, or a value over 65535 bytes).
 */
sb_err sb_eventstream_encode(struct sb_buf *out, const struct sb_eventstream_header *h, size_t n,
                             struct sb_slice payload);

#endif
