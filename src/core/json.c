/* SPDX-License-Identifier: MIT */
/*
 * json.c - the strict in-situ JSON reader and the streaming writer.
 *
 * The reader is one pass over the bytes with an explicit stack of open
 * containers (no recursion, so a caller's max_depth can never blow the C
 * stack). It validates as it goes: the exact RFC 8259 grammar, UTF-8 (Unicode
 * Table 3-7, the same rules as jansson), escapes and surrogate pairs. Every
 * node keeps `raw`, its exact source span; strings without escapes point into
 * the source and only strings with escapes are decoded into the arena. The
 * source is never written to.
 *
 * Speed comes from scanning string bodies eight bytes at a time (SWAR: one
 * 64-bit test tells whether a word holds a quote, a backslash, a control or
 * a non-ASCII byte) and from decoding escapes only in a second pass over the
 * few strings that have them.
 *
 * The writer appends to an sb_buf; it tracks commas with one bit per depth
 * and keeps the first error (sticky), so callers check once at the end.
 * It always emits valid JSON: invalid UTF-8 handed to it becomes U+FFFD.
 *
 * Both assume the "C" numeric locale (strtod/snprintf use '.'), which is the
 * locale of a program that never calls setlocale().
 */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ------------------------------------------------------------------------ */
/* Byte-level helpers shared by reader and writer                           */
/* ------------------------------------------------------------------------ */

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
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
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

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* The four hex digits at s as a code unit, or -1. s must have 4 bytes. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static char *utf8_put(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* ------------------------------------------------------------------------ */
/* Reader: state, errors, nodes                                             */
/* ------------------------------------------------------------------------ */

#define DEFAULT_DEPTH 64

struct frame {
    struct sb_json *node; /* an open ARRAY or OBJECT */
    struct sb_json *last; /* its newest child, NULL while it has none */
};

struct parser {
    const char *start;    /* first byte of the document (offsets in errors) */
    const char *cur;      /* next byte to read */
    const char *end;      /* one past the last byte */
    struct sb_arena *a;   /* nodes and decoded strings */
    struct sb_error *err; /* caller's error, may be NULL */
    struct frame *stack;  /* open containers, innermost at depth - 1 */
    size_t depth;         /* open containers */
    size_t cap;           /* frames available in stack */
    size_t max_depth;     /* limit on depth */
    struct sb_slice key;  /* member name parsed, waiting for its value */
    struct sb_json *root; /* the first node made */
    sb_err rc;            /* set by fail() */
    bool lazy;            /* string values keep their escapes (sb_json_limits) */
};

/* Records "invalid JSON at byte N: why" for the byte at `at`; returns NULL. */
static const char *fail_at(struct parser *ps, const char *at, const char *why)
{
    ps->rc = sb_fail(ps->err, SB_E_BAD_JSON, "invalid JSON at byte %zu: %s",
                     (size_t)(at - ps->start), why);
    return NULL;
}

static int fail(struct parser *ps, const char *why)
{
    fail_at(ps, ps->cur, why);
    return -1;
}

static inline const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++;
    return s;
}

/* A new node linked as the next child of the innermost open container. */
static struct sb_json *node_new(struct parser *ps, enum sb_json_type type, const char *raw)
{
    struct sb_json *n = sb_arena_alloc(ps->a, sizeof(*n));
    *n = (struct sb_json){.type = type, .raw = {raw, 0}, .key = ps->key};
    ps->key = SB_SLICE_NULL;
    if (ps->depth == 0) {
        ps->root = n;
        return n;
    }
    struct frame *f = &ps->stack[ps->depth - 1];
    if (f->last)
        f->last->next = n;
    else
        f->node->child = n;
    f->last = n;
    f->node->count++;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Reader: strings                                                          */
/* ------------------------------------------------------------------------ */

/* The letters of the one-letter escapes \" \\ \/ \b \f \n \r \t. */
static inline bool is_simple_escape(char c)
{
    return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
           c == 't';
}

/* Validates the escape at s (s[0] == '\\'); returns the byte after it. */
static const char *scan_escape(struct parser *ps, const char *s)
{
    if (ps->end - s < 2)
        return fail_at(ps, s, "unterminated string");
    if (s[1] != 'u') {
        if (!is_simple_escape(s[1]))
            return fail_at(ps, s, "invalid escape");
        return s + 2;
    }
    long u = ps->end - s >= 6 ? hex4(s + 2) : -1;
    if (u < 0)
        return fail_at(ps, s, "invalid \\u escape");
    if (u >= 0xDC00 && u <= 0xDFFF)
        return fail_at(ps, s, "lone low surrogate");
    if (u < 0xD800 || u > 0xDBFF)
        return s + 6;
    /* A high surrogate must be followed at once by an escaped low one. */
    long lo = (ps->end - s >= 12 && s[6] == '\\' && s[7] == 'u') ? hex4(s + 8) : -1;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail_at(ps, s, "lone high surrogate");
    return s + 12;
}

/* Handles one non-plain byte at s inside a string; returns the next position. */
static const char *scan_special(struct parser *ps, const char *s, bool *esc)
{
    unsigned char c = (unsigned char)*s;
    if (c == '\\') {
        *esc = true;
        return scan_escape(ps, s);
    }
    if (c < 0x20)
        return fail_at(ps, s, "control character in string");
    size_t n = utf8_len((const unsigned char *)s, (const unsigned char *)ps->end);
    if (n == 0)
        return fail_at(ps, s, "invalid UTF-8");
    return s + n;
}

/*
 * Validates a string body from s (just after the opening quote); returns
 * the position of the closing quote and sets *esc when escapes were seen.
 */
static const char *scan_string(struct parser *ps, const char *s, bool *esc)
{
    for (;;) {
        s = skip_plain(s, ps->end);
        if (s == ps->end)
            return fail_at(ps, s, "unterminated string");
        if (*s == '"')
            return s;
        s = scan_special(ps, s, esc);
        if (!s)
            return NULL;
    }
}

/* The byte a one-letter escape stands for (\" \\ \/ \b \f \n \r \t). */
static char unescape(char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return c; /* '"', '\\' and '/' stand for themselves */
    }
}

/* Decodes the (already validated) escape at s into *o; returns the byte after it. */
static const char *decode_escape(const char *s, char **o)
{
    if (s[1] != 'u') {
        *(*o)++ = unescape(s[1]);
        return s + 2;
    }
    unsigned long cp = (unsigned long)hex4(s + 2);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)hex4(s + 8) - 0xDC00);
        s += 6;
    }
    *o = utf8_put(*o, cp);
    return s + 6;
}

/* Decodes the validated body [s, e) into the arena; never longer than the source. */
static struct sb_slice decode_string(struct sb_arena *a, const char *s, const char *e)
{
    char *out = sb_arena_alloc(a, (size_t)(e - s));
    char *o = out;
    while (s < e) {
        const char *bs = memchr(s, '\\', (size_t)(e - s));
        size_t run = (size_t)((bs ? bs : e) - s);
        memcpy(o, s, run);
        o += run;
        s += run;
        if (s < e)
            s = decode_escape(s, &o);
    }
    return (struct sb_slice){out, (size_t)(o - out)};
}

/* Parses the string at ps->cur (a '"'); *out is its decoded value. */
/* Reads the string at ps->cur into *out, decoded unless lazy (then *escaped
 * says whether out still holds escapes). */
static int parse_string(struct parser *ps, struct sb_slice *out, bool lazy, bool *escaped)
{
    const char *body = ps->cur + 1;
    bool esc = false;
    const char *q = scan_string(ps, body, &esc);
    if (!q)
        return -1;
    if (esc && !lazy)
        *out = decode_string(ps->a, body, q);
    else
        *out = (struct sb_slice){body, (size_t)(q - body)};
    *escaped = esc && lazy;
    ps->cur = q + 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader: numbers and literals                                             */
/* ------------------------------------------------------------------------ */

static inline bool is_digit(const char *s, const char *end)
{
    return s < end && *s >= '0' && *s <= '9';
}

static const char *digits(const char *s, const char *end)
{
    while (is_digit(s, end))
        s++;
    return s;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? starting at s; returns its end. */
static const char *scan_number(struct parser *ps, const char *s)
{
    const char *end = ps->end;
    if (*s == '-')
        s++;
    if (!is_digit(s, end))
        return fail_at(ps, s, "expected a digit");
    if (*s == '0') {
        s++;
        if (is_digit(s, end))
            return fail_at(ps, s - 1, "leading zero in number");
    } else {
        s = digits(s, end);
    }
    if (s < end && *s == '.') {
        s++;
        if (!is_digit(s, end))
            return fail_at(ps, s, "expected a digit after '.'");
        s = digits(s, end);
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        if (!is_digit(s, end))
            return fail_at(ps, s, "expected a digit in exponent");
        s = digits(s, end);
    }
    return s;
}

static int parse_literal(struct parser *ps, const char *word, size_t n, enum sb_json_type t)
{
    if ((size_t)(ps->end - ps->cur) < n || memcmp(ps->cur, word, n) != 0)
        return fail(ps, "invalid literal");
    struct sb_json *j = node_new(ps, t, ps->cur);
    j->raw.len = n;
    ps->cur += n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader: containers and the main loop                                     */
/* ------------------------------------------------------------------------ */

/* Pushes node as the innermost open container. */
static int push(struct parser *ps, struct sb_json *node)
{
    if (ps->depth >= ps->max_depth) {
        ps->rc = sb_fail(ps->err, SB_E_TOO_LARGE, "JSON nested deeper than %zu at byte %zu",
                         ps->max_depth, (size_t)(ps->cur - ps->start));
        return -1;
    }
    if (ps->depth == ps->cap) {
        /* Deeper than the stack frames we started with: double, in the arena. */
        struct frame *bigger = sb_arena_alloc(ps->a, 2 * ps->cap * sizeof(*bigger));
        memcpy(bigger, ps->stack, ps->cap * sizeof(*bigger));
        ps->stack = bigger;
        ps->cap *= 2;
    }
    ps->stack[ps->depth++] = (struct frame){node, NULL};
    return 0;
}

/* Closes the innermost container at ps->cur (its closing bracket). */
static void pop(struct parser *ps)
{
    struct sb_json *n = ps->stack[--ps->depth].node;
    ps->cur++;
    n->raw.len = (size_t)(ps->cur - n->raw.p);
}

/* Parses `"name" :` into ps->key, skipping whitespace around it. */
static int parse_key(struct parser *ps)
{
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur == ps->end || *ps->cur != '"')
        return fail(ps, "expected a string key");
    struct sb_slice k;
    bool esc;
    if (parse_string(ps, &k, false, &esc) != 0)
        return -1;
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur == ps->end || *ps->cur != ':')
        return fail(ps, "expected ':'");
    ps->cur++;
    ps->key = k;
    return 0;
}

/* Opens '[' or '{'. Returns 1 when a first element must follow, 0 when empty. */
static int open_container(struct parser *ps, enum sb_json_type t, char close)
{
    struct sb_json *n = node_new(ps, t, ps->cur);
    if (push(ps, n) != 0)
        return -1;
    ps->cur = skip_ws(ps->cur + 1, ps->end);
    if (ps->cur < ps->end && *ps->cur == close) {
        pop(ps);
        return 0;
    }
    if (t == SB_JSON_OBJECT && parse_key(ps) != 0)
        return -1;
    return 1;
}

static int parse_scalar_string(struct parser *ps)
{
    const char *q = ps->cur;
    struct sb_slice s;
    bool esc;
    if (parse_string(ps, &s, ps->lazy, &esc) != 0)
        return -1;
    struct sb_json *j = node_new(ps, SB_JSON_STRING, q);
    j->raw.len = (size_t)(ps->cur - q);
    j->str = s;
    j->escaped = esc;
    return 0;
}

static int parse_number(struct parser *ps)
{
    const char *e = scan_number(ps, ps->cur);
    if (!e)
        return -1;
    struct sb_json *j = node_new(ps, SB_JSON_NUMBER, ps->cur);
    j->raw.len = (size_t)(e - ps->cur);
    ps->cur = e;
    return 0;
}

/*
 * Parses the value at ps->cur (after whitespace). Returns 0 when the value
 * is complete, 1 when it opened a container whose first item comes next,
 * -1 on error.
 */
static int parse_value(struct parser *ps)
{
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur == ps->end)
        return fail(ps, "unexpected end of input, expected a value");
    switch (*ps->cur) {
    case '{':
        return open_container(ps, SB_JSON_OBJECT, '}');
    case '[':
        return open_container(ps, SB_JSON_ARRAY, ']');
    case '"':
        return parse_scalar_string(ps);
    case 't':
        return parse_literal(ps, "true", 4, SB_JSON_TRUE);
    case 'f':
        return parse_literal(ps, "false", 5, SB_JSON_FALSE);
    case 'n':
        return parse_literal(ps, "null", 4, SB_JSON_NULL);
    default:
        if (*ps->cur == '-' || (*ps->cur >= '0' && *ps->cur <= '9'))
            return parse_number(ps);
        return fail(ps, "expected a value");
    }
}

/*
 * After a complete value: closes finished containers and consumes the ','
 * (and the next key) before another item. Returns 1 when another value
 * follows, 0 at the end of the document, -1 on error.
 */
static int after_value(struct parser *ps)
{
    while (ps->depth > 0) {
        struct sb_json *n = ps->stack[ps->depth - 1].node;
        bool obj = n->type == SB_JSON_OBJECT;
        ps->cur = skip_ws(ps->cur, ps->end);
        if (ps->cur == ps->end)
            return fail(ps, "unexpected end of input");
        if (*ps->cur == ',') {
            ps->cur++;
            return (obj && parse_key(ps) != 0) ? -1 : 1;
        }
        if (*ps->cur != (obj ? '}' : ']'))
            return fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        pop(ps);
    }
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur != ps->end)
        return fail(ps, "unexpected data after the value");
    return 0;
}

sb_err sb_json_parse(struct sb_arena *a, const char *p, size_t len,
                     const struct sb_json_limits *lim, struct sb_json **out, struct sb_error *err)
{
    *out = NULL;
    if (lim && lim->max_bytes && len > lim->max_bytes)
        return sb_fail(err, SB_E_TOO_LARGE, "JSON body of %zu bytes exceeds the limit of %zu", len,
                       lim->max_bytes);
    if (len == 0) /* also keeps p (maybe NULL) out of pointer arithmetic */
        return sb_fail(err, SB_E_BAD_JSON, "invalid JSON at byte 0: empty input");
    struct frame frames[DEFAULT_DEPTH];
    struct parser ps = {.start = p,
                        .cur = p,
                        .end = p + len,
                        .a = a,
                        .err = err,
                        .stack = frames,
                        .cap = DEFAULT_DEPTH,
                        .max_depth = DEFAULT_DEPTH};
    if (lim && lim->max_depth)
        ps.max_depth = lim->max_depth;
    ps.lazy = lim && lim->lazy_strings;
    int r;
    do {
        r = parse_value(&ps);
        if (r == 0)
            r = after_value(&ps);
    } while (r == 1);
    if (r < 0)
        return ps.rc;
    *out = ps.root;
    return SB_OK;
}

/* A slice into [from, from + len) moves to the same offset from to; others
 * (decoded strings in the arena, NULL) stay. Compared as integers: the
 * ranges are different objects. */
static void rebase_slice(struct sb_slice *s, uintptr_t from, size_t len, const char *to)
{
    uintptr_t at = (uintptr_t)s->p;
    if (s->p && at >= from && at - from <= len)
        s->p = to + (at - from);
}

void sb_json_rebase(struct sb_json *root, const char *from, size_t len, const char *to)
{
    /* Iterative (no recursion, as the reader): a stack of nodes still to visit. */
    struct sb_json *small[64], **stack = small;
    size_t n = 0, cap = sizeof(small) / sizeof(small[0]);
    if (root)
        stack[n++] = root;
    while (n > 0) {
        struct sb_json *j = stack[--n];
        rebase_slice(&j->raw, (uintptr_t)from, len, to);
        rebase_slice(&j->key, (uintptr_t)from, len, to);
        rebase_slice(&j->str, (uintptr_t)from, len, to);
        for (struct sb_json *c = j->child; c; c = c->next) {
            if (n == cap) {
                cap *= 2;
                if (stack == small) {
                    stack = sb_xmalloc(cap * sizeof(*stack));
                    memcpy(stack, small, sizeof(small));
                } else {
                    stack = sb_xrealloc(stack, cap * sizeof(*stack));
                }
            }
            stack[n++] = c;
        }
    }
    if (stack != small)
        free(stack);
}

/* ------------------------------------------------------------------------ */
/* Reader: accessors                                                        */
/* ------------------------------------------------------------------------ */

struct sb_slice sb_json_text(struct sb_arena *a, const struct sb_json *j)
{
    if (!j || j->type != SB_JSON_STRING)
        return SB_SLICE_NULL;
    if (!j->escaped)
        return j->str;
    return decode_string(a, j->str.p, j->str.p + j->str.len); /* validated by the parse */
}

struct sb_json *sb_json_get_slice(const struct sb_json *obj, struct sb_slice key)
{
    struct sb_json *found = NULL;
    if (!obj || obj->type != SB_JSON_OBJECT)
        return NULL;
    for (struct sb_json *m = obj->child; m; m = m->next)
        if (m->key.len == key.len && (key.len == 0 || memcmp(m->key.p, key.p, key.len) == 0))
            found = m; /* keep going: the last duplicate wins */
    return found;
}

struct sb_json *sb_json_get(const struct sb_json *obj, const char *key)
{
    return sb_json_get_slice(obj, sb_slice_cstr(key));
}

struct sb_json *sb_json_at(const struct sb_json *arr, size_t i)
{
    if (!arr || arr->type != SB_JSON_ARRAY || i >= arr->count)
        return NULL;
    struct sb_json *e = arr->child;
    while (i--)
        e = e->next;
    return e;
}

bool sb_json_is_string(const struct sb_json *j)
{
    return j && j->type == SB_JSON_STRING;
}

bool sb_json_bool(const struct sb_json *j)
{
    return j && j->type == SB_JSON_TRUE;
}

bool sb_json_int64(const struct sb_json *j, int64_t *out)
{
    if (!j || j->type != SB_JSON_NUMBER)
        return false;
    const char *s = j->raw.p, *end = s + j->raw.len;
    bool neg = *s == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (s += neg; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false; /* '.', 'e' or 'E': not integer syntax */
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* -(v - 1) - 1 stays in range even for v == 2^63. */
    *out = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
    return true;
}

bool sb_json_double(const struct sb_json *j, double *out)
{
    if (!j || j->type != SB_JSON_NUMBER)
        return false;
    /* strtod needs a terminator; raw is followed by the rest of the source. */
    char small[128];
    char *s = j->raw.len < sizeof(small) ? small : sb_xmalloc(j->raw.len + 1);
    memcpy(s, j->raw.p, j->raw.len);
    s[j->raw.len] = '\0';
    *out = strtod(s, NULL); /* out of range: +-HUGE_VAL or 0, as strtod */
    if (s != small)
        free(s);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

#define JW_MAX_DEPTH 63

/* Bytes that need an escape: 0 = none, 'u' = \u00XX, else the letter after '\\'. */
static char escape_of(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return c < 0x20 ? 'u' : 0;
    }
}

/* Writes the escape for byte c (< 0x80, escape_of(c) != 0). */
static sb_err put_escape(struct sb_buf *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e = escape_of(c);
    char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (e != 'u') {
        char two[2] = {'\\', e};
        return sb_buf_append(out, two, 2);
    }
    return sb_buf_append(out, u, 6);
}

/* Length of the run at s that can be copied verbatim (ASCII needing no escape, valid UTF-8). */
static size_t plain_run(const char *s, const char *end)
{
    const char *p = s;
    for (;;) {
        p = skip_plain(p, end);
        if (p == end)
            return (size_t)(p - s);
        unsigned char c = (unsigned char)*p;
        size_t n = c < 0x80 ? 0 : utf8_len((const unsigned char *)p, (const unsigned char *)end);
        if (n == 0)
            return (size_t)(p - s);
        p += n;
    }
}

sb_err sb_json_escape(struct sb_buf *out, struct sb_slice s)
{
    const char *p = s.p, *end = s.p + s.len;
    sb_err rc = SB_OK;
    while (p < end && rc == SB_OK) {
        size_t run = plain_run(p, end);
        if (run) /* sb_buf_append of 0 bytes to an empty buffer trips UBSan (NULL + 0) */
            rc = sb_buf_append(out, p, run);
        p += run;
        if (p == end || rc != SB_OK)
            break;
        if ((unsigned char)*p < 0x80)
            rc = put_escape(out, (unsigned char)*p);
        else
            rc = sb_buf_append(out, "\xEF\xBF\xBD", 3); /* invalid UTF-8 byte: U+FFFD */
        p++;
    }
    return rc;
}

void sb_jw_init(struct sb_jw *w, struct sb_buf *out)
{
    *w = (struct sb_jw){.out = out};
}

static void jw_put(struct sb_jw *w, const char *p, size_t n)
{
    if (w->err == SB_OK && n > 0 && sb_buf_append(w->out, p, n) != SB_OK)
        w->err = SB_E_TOO_LARGE;
}

/*
 * Before any value: a comma when the container already has an item. A key
 * clears its container's bit, so the value right after it writes none.
 */
static void jw_sep(struct sb_jw *w)
{
    uint64_t bit = (uint64_t)1 << w->depth;
    if (w->depth > 0 && (w->comma & bit))
        jw_put(w, ",", 1);
    w->comma |= bit;
}

static void jw_begin(struct sb_jw *w, char c)
{
    jw_sep(w);
    if (w->depth >= JW_MAX_DEPTH) {
        if (w->err == SB_OK)
            w->err = SB_E_INTERNAL; /* a programming error: our output is never that deep */
        return;
    }
    jw_put(w, &c, 1);
    w->depth++;
    w->comma &= ~((uint64_t)1 << w->depth);
}

static void jw_end(struct sb_jw *w, char c)
{
    if (w->depth == 0) {
        if (w->err == SB_OK)
            w->err = SB_E_INTERNAL;
        return;
    }
    jw_put(w, &c, 1);
    w->depth--;
}

void sb_jw_obj_begin(struct sb_jw *w)
{
    jw_begin(w, '{');
}
void sb_jw_obj_end(struct sb_jw *w)
{
    jw_end(w, '}');
}
void sb_jw_arr_begin(struct sb_jw *w)
{
    jw_begin(w, '[');
}
void sb_jw_arr_end(struct sb_jw *w)
{
    jw_end(w, ']');
}

/* "s" with escapes, no separator. */
static void jw_string(struct sb_jw *w, struct sb_slice s)
{
    jw_put(w, "\"", 1);
    if (w->err == SB_OK && sb_json_escape(w->out, s) != SB_OK)
        w->err = SB_E_TOO_LARGE;
    jw_put(w, "\"", 1);
}

void sb_jw_key_slice(struct sb_jw *w, struct sb_slice key)
{
    uint64_t bit = (uint64_t)1 << w->depth;
    if (w->comma & bit)
        jw_put(w, ",", 1);
    jw_string(w, key);
    jw_put(w, ":", 1);
    w->comma &= ~bit;
}

void sb_jw_key(struct sb_jw *w, const char *key)
{
    sb_jw_key_slice(w, sb_slice_cstr(key));
}

void sb_jw_str(struct sb_jw *w, struct sb_slice s)
{
    jw_sep(w);
    jw_string(w, s);
}

void sb_jw_cstr(struct sb_jw *w, const char *s)
{
    if (s)
        sb_jw_str(w, sb_slice_cstr(s));
    else
        sb_jw_null(w);
}

void sb_jw_int(struct sb_jw *w, int64_t v)
{
    char buf[24], *e = buf + sizeof(buf), *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* exact for INT64_MIN too */
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jw_sep(w);
    jw_put(w, p, (size_t)(e - p));
}

void sb_jw_double(struct sb_jw *w, double v)
{
    char buf[32];
    int n = 0;
    if (!isfinite(v)) {
        sb_jw_null(w);
        return;
    }
    /* The shortest of %.15g/%.16g/%.17g that reads back as the same double;
     * %.17g always does. */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    jw_sep(w);
    jw_put(w, buf, (size_t)n);
}

void sb_jw_bool(struct sb_jw *w, bool v)
{
    jw_sep(w);
    jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void sb_jw_null(struct sb_jw *w)
{
    jw_sep(w);
    jw_put(w, "null", 4);
}

void sb_jw_raw(struct sb_jw *w, struct sb_slice json)
{
    jw_sep(w);
    jw_put(w, json.p, json.len);
}
