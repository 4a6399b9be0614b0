/* SPDX-License-Identifier: MIT */
/*
 * json.c - the strict in-situ JSON reader (the writer is json_write.c).
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
 * a non-ASCII byte; json_bytes.h) and from decoding escapes only in a second
 * pass over the few strings that have them.
 *
 * Numbers are converted in the "C" numeric locale (strtod uses '.'), the
 * locale of a program that never calls setlocale().
 */
#include "core/json.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json_bytes.h"

/* ------------------------------------------------------------------------ */
/* Reader: escapes and code points                                          */
/* ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------ */
/* Reader without a tree: sb_json_find                                     */
/* ------------------------------------------------------------------------ */

/*
 * The same grammar walk as above, with a frame per open container instead
 * of nodes. Each frame knows which paths reach it (mask: their first
 * `depth` steps name it) and which end at it (full); a child's mask is the
 * frame's paths whose next step names the child. Entering a child that
 * matches restarts those paths' answers: a later duplicate member replaces
 * an earlier one, as sb_json_get takes the last.
 */
struct find_frame {
    uint32_t mask;     /* paths that reach this container's children */
    uint32_t full;     /* paths whose value is this container */
    uint64_t firsts;   /* bit (c & 63) for the first byte c of each next step */
    size_t index;      /* the current child's position (arrays) */
    const char *start; /* the opening bracket */
    bool obj;
};

struct finder {
    struct parser ps; /* cursor, limits, errors; no arena, no nodes */
    const char *const *const *paths;
    struct sb_slice *out;
    uint32_t next;            /* paths that reach the value about to be read */
    struct find_frame *stack; /* open containers; heap beyond the first 64 */
    struct find_frame small[DEFAULT_DEPTH];
    size_t depth, cap;
};

/* Whether a decimal step ("0", "12") names array position i. */
static bool step_is_index(const char *step, size_t i)
{
    size_t v = 0;
    if (!*step || (step[0] == '0' && step[1]))
        return false;
    for (; *step; step++) {
        if (*step < '0' || *step > '9' || v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*step - '0');
    }
    return v == i;
}

/* Whether the member name whose body is [s, e) (validated; esc: it has
 * escapes) is step, compared decoded. */
static bool step_is_key(const char *step, const char *s, const char *e, bool esc)
{
    if (!esc) { /* most names differ in their first byte: no strlen, no memcmp call */
        while (s < e && *step == *s)
            step++, s++;
        return s == e && !*step;
    }
    size_t n = strlen(step);
    char buf[256], *o = buf; /* decoding never lengthens: a longer body cannot match */
    if ((size_t)(e - s) > sizeof(buf))
        return false;
    while (s < e) {
        if (*s == '\\')
            s = decode_escape(s, &o);
        else
            *o++ = *s++;
    }
    return (size_t)(o - buf) == n && memcmp(buf, step, n) == 0;
}

/* Sets f->next for the child of the innermost container named by key
 * [ks, ke) (objects) or by its position (arrays). */
static void find_child(struct finder *f, const char *ks, const char *ke, bool esc)
{
    struct find_frame *fr = &f->stack[f->depth - 1];
    uint32_t m = 0;
    f->next = 0;
    /* Most members are on no path: one test on the name's first byte. */
    if (fr->obj && ks < ke && !esc && !(fr->firsts & (1ull << (*ks & 63))))
        return;
    for (uint32_t todo = fr->mask; todo; todo &= todo - 1) {
        unsigned p = (unsigned)__builtin_ctz(todo);
        const char *step = f->paths[p][f->depth - 1];
        bool pos = *step >= '0' && *step <= '9'; /* a position: it names no member */
        if (fr->obj && (pos || (!esc && ks < ke && *step != *ks)))
            continue;
        if (fr->obj ? step_is_key(step, ks, ke, esc) : step_is_index(step, fr->index))
            m |= 1u << p;
    }
    for (uint32_t todo = m; todo; todo &= todo - 1)
        f->out[__builtin_ctz(todo)] = SB_SLICE_NULL; /* a later duplicate replaces it */
    f->next = m;
}

/* Paths among mask that end at a value `depth` steps from the root. */
static uint32_t ending(const struct finder *f, uint32_t mask, size_t depth)
{
    uint32_t e = 0;
    for (uint32_t todo = mask; todo; todo &= todo - 1) {
        unsigned p = (unsigned)__builtin_ctz(todo);
        if (!f->paths[p][depth])
            e |= 1u << p;
    }
    return e;
}

static void found(struct finder *f, uint32_t which, const char *p, size_t n)
{
    for (; which; which &= which - 1)
        f->out[__builtin_ctz(which)] = (struct sb_slice){p, n};
}

/* Reads `"name" :` (as parse_key) and picks the paths that go on through it. */
static int find_key(struct finder *f)
{
    struct parser *ps = &f->ps;
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur == ps->end || *ps->cur != '"')
        return fail(ps, "expected a string key");
    bool esc = false;
    const char *body = ps->cur + 1, *q = scan_string(ps, body, &esc);
    if (!q)
        return -1;
    ps->cur = skip_ws(q + 1, ps->end);
    if (ps->cur == ps->end || *ps->cur != ':')
        return fail(ps, "expected ':'");
    ps->cur++;
    f->next = 0;
    if (f->stack[f->depth - 1].mask)
        find_child(f, body, q, esc);
    return 0;
}

static int find_push(struct finder *f, bool obj)
{
    struct parser *ps = &f->ps;
    if (f->depth >= ps->max_depth) {
        ps->rc = sb_fail(ps->err, SB_E_TOO_LARGE, "JSON nested deeper than %zu at byte %zu",
                         ps->max_depth, (size_t)(ps->cur - ps->start));
        return -1;
    }
    if (f->depth == f->cap) {
        f->cap *= 2;
        struct find_frame *bigger = sb_xmalloc(f->cap * sizeof(*bigger));
        memcpy(bigger, f->stack, f->depth * sizeof(*bigger));
        if (f->stack != f->small)
            free(f->stack);
        f->stack = bigger;
    }
    uint32_t full = f->next ? ending(f, f->next, f->depth) : 0, mask = f->next & ~full;
    uint64_t firsts = 0;
    for (uint32_t todo = mask; todo; todo &= todo - 1)
        firsts |= 1ull << (f->paths[__builtin_ctz(todo)][f->depth][0] & 63);
    f->stack[f->depth++] = (struct find_frame){mask, full, firsts, 0, ps->cur, obj};
    return 0;
}

static void find_pop(struct finder *f)
{
    struct find_frame *fr = &f->stack[--f->depth];
    f->ps.cur++;
    found(f, fr->full, fr->start, (size_t)(f->ps.cur - fr->start));
}

/* As open_container: 1 when a first item follows, 0 when empty. */
static int find_open(struct finder *f, bool obj)
{
    struct parser *ps = &f->ps;
    if (find_push(f, obj) != 0)
        return -1;
    ps->cur = skip_ws(ps->cur + 1, ps->end);
    if (ps->cur < ps->end && *ps->cur == (obj ? '}' : ']')) {
        find_pop(f);
        return 0;
    }
    if (obj)
        return find_key(f) != 0 ? -1 : 1;
    f->next = 0;
    if (f->stack[f->depth - 1].mask)
        find_child(f, NULL, NULL, false);
    return 1;
}

/* A scalar value from ps->cur to e: recorded for the paths ending at it. */
static int find_scalar(struct finder *f, const char *e)
{
    if (!e)
        return -1;
    if (f->next)
        found(f, ending(f, f->next, f->depth), f->ps.cur, (size_t)(e - f->ps.cur));
    f->ps.cur = e;
    return 0;
}

static const char *find_literal(struct parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->cur) < n || memcmp(ps->cur, word, n) != 0)
        return fail_at(ps, ps->cur, "invalid literal");
    return ps->cur + n;
}

/* As parse_value. */
static int find_value(struct finder *f)
{
    struct parser *ps = &f->ps;
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur == ps->end)
        return fail(ps, "unexpected end of input, expected a value");
    bool esc = false;
    const char *q;
    switch (*ps->cur) {
    case '{':
    case '[':
        return find_open(f, *ps->cur == '{');
    case '"':
        q = scan_string(ps, ps->cur + 1, &esc);
        return find_scalar(f, q ? q + 1 : NULL);
    case 't':
        return find_scalar(f, find_literal(ps, "true", 4));
    case 'f':
        return find_scalar(f, find_literal(ps, "false", 5));
    case 'n':
        return find_scalar(f, find_literal(ps, "null", 4));
    default:
        if (*ps->cur == '-' || (*ps->cur >= '0' && *ps->cur <= '9'))
            return find_scalar(f, scan_number(ps, ps->cur));
        return fail(ps, "expected a value");
    }
}

/* As after_value. */
static int find_after(struct finder *f)
{
    struct parser *ps = &f->ps;
    while (f->depth > 0) {
        struct find_frame *fr = &f->stack[f->depth - 1];
        ps->cur = skip_ws(ps->cur, ps->end);
        if (ps->cur == ps->end)
            return fail(ps, "unexpected end of input");
        if (*ps->cur == ',') {
            ps->cur++;
            fr->index++;
            if (fr->obj)
                return find_key(f) != 0 ? -1 : 1;
            f->next = 0;
            if (fr->mask)
                find_child(f, NULL, NULL, false);
            return 1;
        }
        if (*ps->cur != (fr->obj ? '}' : ']'))
            return fail(ps, fr->obj ? "expected ',' or '}'" : "expected ',' or ']'");
        find_pop(f);
    }
    ps->cur = skip_ws(ps->cur, ps->end);
    if (ps->cur != ps->end)
        return fail(ps, "unexpected data after the value");
    return 0;
}

sb_err sb_json_find(const char *p, size_t len, const struct sb_json_limits *lim,
                    const char *const *const *paths, size_t n, struct sb_slice *out,
                    struct sb_error *err)
{
    for (size_t i = 0; i < n; i++)
        out[i] = SB_SLICE_NULL;
    if (n > SB_JSON_FIND_MAX)
        return sb_fail(err, SB_E_INTERNAL, "sb_json_find: more than %d paths", SB_JSON_FIND_MAX);
    if (lim && lim->max_bytes && len > lim->max_bytes)
        return sb_fail(err, SB_E_TOO_LARGE, "JSON body of %zu bytes exceeds the limit of %zu", len,
                       lim->max_bytes);
    if (len == 0)
        return sb_fail(err, SB_E_BAD_JSON, "invalid JSON at byte 0: empty input");
    /* Not an initializer: that would clear the 64 frames too, on every call. */
    struct finder f;
    memset(&f.ps, 0, sizeof(f.ps));
    f.ps.start = f.ps.cur = p;
    f.ps.end = p + len;
    f.ps.err = err;
    f.ps.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_DEPTH;
    f.paths = paths;
    f.out = out;
    f.stack = f.small;
    f.depth = 0;
    f.cap = DEFAULT_DEPTH;
    f.next = n ? (uint32_t)(((uint64_t)1 << n) - 1) : 0; /* the root is on every path */
    int r;
    do {
        r = find_value(&f);
        if (r == 0)
            r = find_after(&f);
    } while (r == 1);
    if (f.stack != f.small)
        free(f.stack);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            out[i] = SB_SLICE_NULL;
        return f.ps.rc;
    }
    return SB_OK;
}

struct sb_slice sb_json_unquote(struct sb_arena *a, struct sb_slice raw)
{
    if (raw.len < 2 || raw.p[0] != '"')
        return SB_SLICE_NULL;
    const char *s = raw.p + 1, *e = raw.p + raw.len - 1;
    if (!memchr(s, '\\', (size_t)(e - s)))
        return (struct sb_slice){s, (size_t)(e - s)};
    return decode_string(a, s, e);
}

/* sb_json_rebase's state. With keep, the tree is walked twice: once to
 * count the bytes of the slices it keeps, then to move every slice, the
 * kept ones into one arena block. Why not an allocation each: a body of
 * thousands of short names paid a call and up to 15 bytes of alignment for
 * every one of them (json_test's test_rebase_many_short). */
struct rebase {
    uintptr_t from; /* the source the tree was parsed from, as an integer: */
    size_t len;     /* slices in [from, from + len] move */
    const char *to; /* the same bytes elsewhere */
    size_t keep_max;
    size_t need; /* first walk: bytes of the kept slices, a NUL after each */
    char *at;    /* second walk: the next kept slice's place; NULL: keep none */
    char *end;   /* the block's end */
};

/* Whether s lies in the source. Compared as integers: the ranges are
 * different objects. */
static bool in_source(const struct rebase *rb, struct sb_slice s)
{
    uintptr_t at = (uintptr_t)s.p;
    return s.p && at >= rb->from && at - rb->from <= rb->len;
}

/* First walk (with keep only): a number's text becomes its str, to be kept
 * (raw still gives the offset); the kept bytes are counted. */
static void count_kept(struct rebase *rb, struct sb_json *j)
{
    if (j->type == SB_JSON_NUMBER && !j->str.p && j->raw.len <= rb->keep_max)
        j->str = j->raw;
    if (in_source(rb, j->key) && j->key.len <= rb->keep_max)
        rb->need += j->key.len + 1;
    if (in_source(rb, j->str) && j->str.len <= rb->keep_max)
        rb->need += j->str.len + 1;
}

/* A slice in the source moves to the same offset from to, or, when it may
 * be kept and is at most keep_max bytes, to the next place in the block;
 * others (decoded strings in the arena, NULL) stay. */
static void move_slice(struct rebase *rb, struct sb_slice *s, bool may_keep)
{
    if (!in_source(rb, *s))
        return;
    if (may_keep && rb->at && s->len <= rb->keep_max) {
        assert(s->len < (size_t)(rb->end - rb->at)); /* counted by count_kept */
        memcpy(rb->at, s->p, s->len);
        rb->at[s->len] = '\0'; /* as sb_arena_strndup left it */
        s->p = rb->at;
        rb->at += s->len + 1;
    } else {
        s->p = rb->to + ((uintptr_t)s->p - rb->from);
    }
}

static void move_slices(struct rebase *rb, struct sb_json *j)
{
    move_slice(rb, &j->raw, false); /* offsets: always in to */
    move_slice(rb, &j->key, true);
    move_slice(rb, &j->str, true);
}

/* Calls visit on every node. Iterative (no recursion, as the reader): a
 * stack of nodes still to visit. */
static void rebase_walk(struct sb_json *root, void (*visit)(struct rebase *, struct sb_json *),
                        struct rebase *rb)
{
    struct sb_json *small[64], **stack = small;
    size_t n = 0, cap = sizeof(small) / sizeof(small[0]);
    if (root)
        stack[n++] = root;
    while (n > 0) {
        struct sb_json *j = stack[--n];
        visit(rb, j);
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

void sb_json_rebase(struct sb_json *root, const char *from, size_t len, const char *to,
                    struct sb_arena *keep, size_t keep_max)
{
    struct rebase rb = {.from = (uintptr_t)from, .len = len, .to = to, .keep_max = keep_max};
    if (keep) {
        rebase_walk(root, count_kept, &rb);
        if (rb.need) {
            rb.at = sb_arena_alloc(keep, rb.need);
            rb.end = rb.at + rb.need;
        }
    }
    rebase_walk(root, move_slices, &rb);
    assert(rb.at == rb.end); /* both walks chose the same slices */
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

/* A number's text: raw, or the copy sb_json_rebase kept of it. */
static struct sb_slice number_text(const struct sb_json *j)
{
    return j->str.p ? j->str : j->raw;
}

bool sb_json_int64(const struct sb_json *j, int64_t *out)
{
    if (!j || j->type != SB_JSON_NUMBER)
        return false;
    struct sb_slice t = number_text(j);
    const char *s = t.p, *end = s + t.len;
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
    struct sb_slice t = number_text(j);
    char *s = t.len < sizeof(small) ? small : sb_xmalloc(t.len + 1);
    memcpy(s, t.p, t.len);
    s[t.len] = '\0';
    *out = strtod(s, NULL); /* out of range: +-HUGE_VAL or 0, as strtod */
    if (s != small)
        free(s);
    return true;
}
