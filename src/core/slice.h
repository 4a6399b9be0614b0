/* SPDX-License-Identifier: MIT */
/*
 * slice.h - borrowed byte ranges.
 *
 * A slice never owns its bytes and is never assumed to be NUL-terminated.
 * Whoever hands out a slice states how long it stays valid (see STYLE.md
 * practice 12). Copy into an arena only when the bytes must outlive their
 * buffer.
 */
#ifndef SB_CORE_SLICE_H
#define SB_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sb_slice {
    const char *p; /* first byte; may be NULL when len == 0 */
    size_t len;    /* number of bytes */
};

/* A name/value pair of slices (HTTP headers, config maps). */
struct sb_kv {
    struct sb_slice name;
    struct sb_slice value;
};

#define SB_SLICE(lit) ((struct sb_slice){(lit), sizeof(lit) - 1})
#define SB_SLICE_NULL ((struct sb_slice){NULL, 0})
/* For printf: printf("%.*s", SB_FMT(s)). */
#define SB_FMT(s) (int)(s).len, (s).p

static inline struct sb_slice sb_slice_cstr(const char *s)
{
    return (struct sb_slice){s, s ? strlen(s) : 0};
}

static inline bool sb_slice_eq(struct sb_slice a, struct sb_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool sb_slice_eq_cstr(struct sb_slice a, const char *b)
{
    return sb_slice_eq(a, sb_slice_cstr(b));
}

/* The value of one hex digit, or -1. */
static inline int sb_hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ASCII case-insensitive equality, for HTTP header names. */
bool sb_slice_caseeq(struct sb_slice a, struct sb_slice b);

bool sb_slice_starts_with(struct sb_slice s, struct sb_slice prefix);

/* Parses a non-negative decimal that fits in uint64; false on anything else. */
bool sb_slice_to_u64(struct sb_slice s, unsigned long long *out);

/*
 * prefix then src (each NULL = "") into dst of cap >= 1 bytes, cut to fit
 * and always terminated: what snprintf(dst, cap, "%s%s", prefix, src) does,
 * for the per-request path, where snprintf's format machinery cost more
 * than the copy (one request made about twenty of them). Returns the length
 * written.
 */
size_t sb_str_join(char *dst, size_t cap, const char *prefix, const char *src);
/* sb_str_join with no prefix. */
static inline size_t sb_str_copy(char *dst, size_t cap, const char *src)
{
    return sb_str_join(dst, cap, NULL, src);
}

/* v in decimal (at most 20 digits) or lower-case hex (at most 16) into out,
 * not terminated; returns the length. For the per-request path: a chunk's
 * size line, a Content-Length, without snprintf's format machinery. */
#define SB_U64_DIGITS 20
size_t sb_u64_dec(char *out, uint64_t v);
size_t sb_u64_hex(char *out, uint64_t v);

#endif
