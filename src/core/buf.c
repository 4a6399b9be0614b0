/* SPDX-License-Identifier: MIT */
/*
 * buf.c - bounded growable buffer.
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void sb_buf_init(struct sb_buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void sb_buf_free(struct sb_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

char *sb_buf_reserve(struct sb_buf *b, size_t n)
{
    if (b->max && (n > b->max || b->len > b->max - n))
        return NULL;
    if (!b->p || b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n)
            cap *= 2;
        if (b->max && cap > b->max)
            cap = b->max;
        b->p = sb_xrealloc(b->p, cap + 1);
        b->cap = cap;
    }
    return b->p + b->len;
}

sb_err sb_buf_append(struct sb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return SB_OK;
    char *dst = sb_buf_reserve(b, n);
    if (!dst)
        return SB_E_TOO_LARGE;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return SB_OK;
}

sb_err sb_buf_append_slice(struct sb_buf *b, struct sb_slice s)
{
    return sb_buf_append(b, s.p, s.len);
}

sb_err sb_buf_append_cstr(struct sb_buf *b, const char *s)
{
    return sb_buf_append(b, s, strlen(s));
}

sb_err sb_buf_append_char(struct sb_buf *b, char c)
{
    return sb_buf_append(b, &c, 1);
}

sb_err sb_buf_printf(struct sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SB_E_INTERNAL;
    /* The allocation always has one byte past cap for the NUL. */
    char *dst = sb_buf_reserve(b, (size_t)n);
    if (!dst)
        return SB_E_TOO_LARGE;
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SB_OK;
}

void sb_buf_consume(struct sb_buf *b, size_t n)
{
    if (n >= b->len) {
        sb_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}
