/* SPDX-License-Identifier: MIT */
/*
 * slice.c - the few slice helpers that are not one-liners.
 */
#include "core/slice.h"

#include <limits.h>

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool sb_slice_caseeq(struct sb_slice a, struct sb_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    return true;
}

bool sb_slice_starts_with(struct sb_slice s, struct sb_slice prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

static size_t put(char *dst, size_t room, const char *s)
{
    size_t n = s ? strnlen(s, room) : 0;
    if (n) /* memcpy with a NULL source is undefined even for 0 bytes */
        memcpy(dst, s, n);
    return n;
}

size_t sb_str_join(char *dst, size_t cap, const char *prefix, const char *src)
{
    size_t n = put(dst, cap - 1, prefix);
    n += put(dst + n, cap - 1 - n, src);
    dst[n] = '\0';
    return n;
}

bool sb_slice_to_u64(struct sb_slice s, unsigned long long *out)
{
    unsigned long long v = 0;
    if (s.len == 0 || s.len > 20)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9 || v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Writes the digits of v in base b (<= 16) into out, most significant first. */
static size_t u64_digits(char *out, uint64_t v, unsigned b)
{
    char tmp[SB_U64_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % b];
        v /= b;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t sb_u64_dec(char *out, uint64_t v)
{
    return u64_digits(out, v, 10);
}

size_t sb_u64_hex(char *out, uint64_t v)
{
    return u64_digits(out, v, 16);
}
