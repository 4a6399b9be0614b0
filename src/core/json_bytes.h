/* SPDX-License-Identifier: MIT */
/*
 * json_bytes.h - byte-level helpers shared by the JSON reader (json.c) and
 * writer (json_write.c): the eight-bytes-at-a-time scan for bytes a string
 * cannot hold as they are, and the UTF-8 well-formedness check. Internal to
 * src/core; static inline so each scan loop keeps them inlined.
 */
#ifndef SB_CORE_JSON_BYTES_H
#define SB_CORE_JSON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/*
 * Nonzero when any byte of the word x is '"', '\\', < 0x20 or >= 0x80.
 * Classic "has zero byte" / "has byte less than n" tricks; false positives
 * can only occur above a true one, so "nonzero" is exact.
 */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"');
    uint64_t b = x ^ (ONES * '\\');
    uint64_t t = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | x;
    return t & HIGHS;
}

/* Index of the first (lowest-addressed) byte flagged in a swar_special() mask. */
static inline size_t first_flagged(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)__builtin_clzll(m) >> 3;
#else
    return (size_t)__builtin_ctzll(m) >> 3;
#endif
}

static inline bool is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The first byte at or after s that is not plain ASCII (see swar_special), or end. */
static inline const char *skip_plain(const char *s, const char *end)
{
    while (end - s >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        uint64_t m = swar_special(w);
        if (m)
            return s + first_flagged(m);
        s += 8;
    }
    while (s < end && is_plain((unsigned char)*s))
        s++;
    return s;
}

/*
 * Length of the well-formed UTF-8 sequence at s (s[0] >= 0x80), or 0 when it
 * is overlong, a surrogate, above U+10FFFF, truncated or a stray continuation.
 */
static inline size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo; /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : hi; /* ED A0..BF would be D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo; /* F0 80..8F would be overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* F4 90.. would be above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

#endif
