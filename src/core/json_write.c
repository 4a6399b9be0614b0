/* SPDX-License-Identifier: MIT */
/*
 * json_write.c - the streaming JSON writer (json.h): appends to an sb_buf,
 * tracks commas with one bit per depth and keeps the first error (sticky),
 * so callers check once at the end. It always emits valid JSON: invalid
 * UTF-8 handed to it becomes U+FFFD. Numbers use the "C" locale's '.'.
 */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_bytes.h"

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
