/* SPDX-License-Identifier: MIT */
/*
 * ndjson.h - incremental newline-delimited JSON framer (ollama streams).
 *
 * Splits the upstream body into lines and calls back once per non-blank
 * line; it does not parse JSON (the adapter does). A line ends at LF; a CR
 * before the LF is dropped; lines holding only spaces, tabs or CRs are
 * skipped. Bounded: a line longer than max_line fails with SB_E_TOO_LARGE,
 * and every failure is sticky. Zero-copy: a line that lies inside the
 * buffer being fed is handed over as a slice into it; only a line split
 * across feeds is assembled in the framer's bounded buffer.
 */
#ifndef SB_PROVIDER_NDJSON_H
#define SB_PROVIDER_NDJSON_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

#define SB_NDJSON_DEFAULT_MAX_LINE (4u * 1024u * 1024u) /* used when init gets 0 */

/* Called once per line (terminator removed), valid during the call; non-zero stops the feed. */
typedef int (*sb_ndjson_fn)(void *ud, struct sb_slice line);

/* A value type so it can live in an arena-allocated adapter state; only ndjson.c touches it. */
struct sb_ndjson {
    struct sb_buf line; /* a line split across feeds, up to max_line bytes */
    size_t max_line;    /* longest accepted line, terminator excluded */
    sb_err failed;      /* sticky error, SB_OK while healthy */
};

/* Prepares f; 0 takes the default bound. Allocates nothing yet. */
void sb_ndjson_init(struct sb_ndjson *f, size_t max_line);
/* Releases f's buffer; accepts a zeroed struct. */
void sb_ndjson_free(struct sb_ndjson *f);

/*
 * Frames buf[0..n) (borrowed for the call), calling fn per complete line.
 * Returns SB_OK (a partial line is kept), the callback's non-zero value, or
 * SB_E_TOO_LARGE with err filled. Any non-OK return makes f failed.
 */
sb_err sb_ndjson_feed(struct sb_ndjson *f, const char *buf, size_t n, sb_ndjson_fn fn, void *ud,
                      struct sb_error *err);

/*
 * End of stream: a last line without its LF is still a line (JSON Lines
 * allows it), so a non-blank one is passed to fn. Returns SB_OK, the
 * callback's value, or the sticky error.
 */
sb_err sb_ndjson_finish(struct sb_ndjson *f, sb_ndjson_fn fn, void *ud, struct sb_error *err);

#endif
