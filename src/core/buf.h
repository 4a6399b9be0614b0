/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a growable byte buffer with a hard maximum.
 *
 * Every buffer that takes outside input is given its maximum when it is
 * initialised (STYLE.md practice 11); growing past it fails with
 * SB_E_TOO_LARGE instead of a silent realloc. The bytes are kept
 * NUL-terminated for the convenience of C APIs, but len is the truth.
 */
#ifndef SB_CORE_BUF_H
#define SB_CORE_BUF_H

#include <stddef.h>

#include "core/err.h"
#include "core/slice.h"

struct sb_buf {
    char *p;    /* heap bytes, NUL-terminated at p[len]; NULL until first write */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated (excluding the NUL) */
    size_t max; /* hard limit on len; 0 = unbounded (internal buffers only) */
};

void sb_buf_init(struct sb_buf *b, size_t max);
/* Frees the bytes; the buffer may be reused after sb_buf_init. */
void sb_buf_free(struct sb_buf *b);
/* Keeps the allocation, forgets the bytes. */
static inline void sb_buf_reset(struct sb_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

/* Each returns SB_OK, or SB_E_TOO_LARGE leaving b unchanged. */
sb_err sb_buf_append(struct sb_buf *b, const void *p, size_t n);
sb_err sb_buf_append_slice(struct sb_buf *b, struct sb_slice s);
sb_err sb_buf_append_cstr(struct sb_buf *b, const char *s);
sb_err sb_buf_append_char(struct sb_buf *b, char c);
sb_err sb_buf_printf(struct sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes; returns a pointer to write them or NULL past max. */
char *sb_buf_reserve(struct sb_buf *b, size_t n);
/* Drops the first n bytes (consumed input). */
void sb_buf_consume(struct sb_buf *b, size_t n);

static inline struct sb_slice sb_buf_slice(const struct sb_buf *b)
{
    return (struct sb_slice){b->p, b->len};
}

#endif
