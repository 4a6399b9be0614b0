/* SPDX-License-Identifier: MIT */
/*
 * sse.c - incremental Server-Sent Events parser.
 *
 * The feed loop finds line ends; each complete line is either a slice into
 * the caller's buffer (the common case) or, when it arrived in pieces, the
 * contents of the line buffer. Field values that must survive the end of the
 * feed are copied into bounded buffers before sb_sse_feed returns, so the
 * parser never keeps a pointer into a buffer it does not own.
 *
 * Invariant that keeps the output independent of how the input is split
 * (the fuzzer checks it): every limit is checked against logical lengths
 * (line length, assembled data length), never against where bytes happen
 * to lie.
 */
#include "provider/sse.h"

#include <string.h>

static const char bom_bytes[3] = {'\xEF', '\xBB', '\xBF'};

void sb_sse_init(struct sb_sse *p, size_t max_line, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line ? max_line : SB_SSE_DEFAULT_MAX_LINE;
    p->max_event = max_event ? max_event : SB_SSE_DEFAULT_MAX_EVENT;
    sb_buf_init(&p->line, p->max_line);
    sb_buf_init(&p->data, p->max_event);
    sb_buf_init(&p->type, p->max_line);
    sb_buf_init(&p->id, p->max_line);
    p->retry_ms = -1;
}

void sb_sse_free(struct sb_sse *p)
{
    sb_buf_free(&p->line);
    sb_buf_free(&p->data);
    sb_buf_free(&p->type);
    sb_buf_free(&p->id);
}

int64_t sb_sse_retry_ms(const struct sb_sse *p)
{
    return p->retry_ms;
}

/*
 * Appends s to b. Empty slices are skipped: on a buffer that never grew,
 * sb_buf_append with n == 0 computes NULL + 0 and reports TOO_LARGE.
 * Callers have already checked the bound, so the result is not needed.
 */
static void put(struct sb_buf *b, struct sb_slice s)
{
    if (s.len)
        sb_buf_append_slice(b, s);
}

static sb_err fail(struct sb_sse *p, struct sb_error *err, sb_err code, const char *why)
{
    p->failed = code;
    return sb_fail(err, code, "sse: %s", why);
}

/* ---- fields ---- */

static sb_err add_data(struct sb_sse *p, struct sb_slice v, bool in_feed, struct sb_error *err)
{
    size_t have = p->dref_on ? p->dref.len : p->data.len;
    size_t need = (p->ndata ? 1 : 0) + v.len;
    if (need > p->max_event || have > p->max_event - need)
        return fail(p, err, SB_E_TOO_LARGE, "event data exceeds the limit");
    if (p->ndata == 0 && in_feed) {
        p->dref = v; /* zero-copy: the only data line so far lies in the feed */
        p->dref_on = true;
        p->ndata = 1;
        return SB_OK;
    }
    if (p->dref_on) {
        put(&p->data, p->dref); /* fits: checked above */
        p->dref_on = false;
    }
    if (p->ndata)
        sb_buf_append_char(&p->data, '\n');
    put(&p->data, v);
    p->ndata++;
    return SB_OK;
}

static void set_type(struct sb_sse *p, struct sb_slice v, bool in_feed)
{
    sb_buf_reset(&p->type);
    p->tref_on = in_feed;
    if (in_feed)
        p->tref = v;
    else
        put(&p->type, v); /* v came from a line of at most max_line */
}

static void set_id(struct sb_sse *p, struct sb_slice v)
{
    if (v.len && memchr(v.p, '\0', v.len))
        return; /* the spec ignores an id containing NUL */
    sb_buf_reset(&p->id);
    put(&p->id, v);
}

static void set_retry(struct sb_sse *p, struct sb_slice v)
{
    unsigned long long ms;
    if (sb_slice_to_u64(v, &ms) && ms <= INT64_MAX)
        p->retry_ms = (int64_t)ms;
}

static sb_err field(struct sb_sse *p, struct sb_slice line, bool in_feed, struct sb_error *err)
{
    const char *colon = memchr(line.p, ':', line.len);
    struct sb_slice name = line, value = SB_SLICE_NULL;
    if (colon) {
        name.len = (size_t)(colon - line.p);
        value.p = colon + 1;
        value.len = line.len - name.len - 1;
        if (value.len && value.p[0] == ' ') {
            value.p++;
            value.len--;
        }
    }
    p->open = true;
    if (sb_slice_eq_cstr(name, "data"))
        return add_data(p, value, in_feed, err);
    if (sb_slice_eq_cstr(name, "event"))
        set_type(p, value, in_feed);
    else if (sb_slice_eq_cstr(name, "id"))
        set_id(p, value);
    else if (sb_slice_eq_cstr(name, "retry"))
        set_retry(p, value);
    return SB_OK; /* unknown fields are ignored */
}

/* ---- dispatch ---- */

static void reset_event(struct sb_sse *p)
{
    sb_buf_reset(&p->data);
    sb_buf_reset(&p->type);
    p->dref_on = p->tref_on = false;
    p->ndata = 0;
    p->open = false;
}

static int dispatch(struct sb_sse *p, sb_sse_fn fn, void *ud)
{
    struct sb_sse_event ev;
    int rc = SB_OK;
    if (p->ndata) {
        ev.data = p->dref_on ? p->dref : sb_buf_slice(&p->data);
        ev.event = p->tref_on ? p->tref : sb_buf_slice(&p->type);
        if (ev.event.len == 0)
            ev.event = SB_SLICE("message");
        ev.id = sb_buf_slice(&p->id);
        rc = fn(ud, &ev);
    }
    reset_event(p);
    return rc;
}

static int line_done(struct sb_sse *p, struct sb_slice line, bool in_feed, sb_sse_fn fn, void *ud,
                     struct sb_error *err)
{
    if (line.len == 0)
        return dispatch(p, fn, ud);
    if (line.p[0] == ':')
        return SB_OK; /* comment */
    return field(p, line, in_feed, err);
}

/* ---- the feed loop ---- */

static sb_err append_partial(struct sb_sse *p, const char *s, size_t n, struct sb_error *err)
{
    if (n && sb_buf_append(&p->line, s, n) != SB_OK) /* n == 0: see put() */
        return fail(p, err, SB_E_TOO_LARGE, "line exceeds the limit");
    return SB_OK;
}

/*
 * At stream start, swallows a UTF-8 BOM, possibly split over feeds. Bytes
 * that began like a BOM but were not one go back into the line buffer.
 * Returns how many bytes of buf it consumed.
 */
static size_t skip_bom(struct sb_sse *p, const char *buf, size_t n, struct sb_error *err)
{
    size_t i = 0;
    while (p->bom < 3 && i < n && buf[i] == bom_bytes[p->bom]) {
        p->bom++;
        i++;
    }
    if (p->bom == 3 || i == n)
        return i;
    /* Mismatch: the matched prefix was ordinary text (it holds no line end). */
    append_partial(p, bom_bytes, p->bom, err);
    p->bom = 3;
    return i;
}

/* The first '\n' or '\r' in buf[i..n), or n. Two memchr calls (vectorised in
 * libc) beat one byte loop over a 200-byte event several times over. */
static size_t find_eol(const char *buf, size_t i, size_t n)
{
    const char *lf = memchr(buf + i, '\n', n - i);
    size_t j = lf ? (size_t)(lf - buf) : n;
    const char *cr = memchr(buf + i, '\r', j - i);
    return cr ? (size_t)(cr - buf) : j;
}

/* Handles buf[i..j) as a complete line (j < n is its terminator). */
static int one_line(struct sb_sse *p, const char *buf, size_t i, size_t j, sb_sse_fn fn, void *ud,
                    struct sb_error *err)
{
    int rc;
    if (p->line.len == 0) {
        if (j - i > p->max_line)
            return fail(p, err, SB_E_TOO_LARGE, "line exceeds the limit");
        return line_done(p, (struct sb_slice){buf + i, j - i}, true, fn, ud, err);
    }
    rc = append_partial(p, buf + i, j - i, err);
    if (rc == SB_OK)
        rc = line_done(p, sb_buf_slice(&p->line), false, fn, ud, err);
    sb_buf_reset(&p->line);
    return rc;
}

/* Copies whatever still points into the caller's buffer before it goes away. */
static void detach(struct sb_sse *p)
{
    if (p->dref_on) {
        put(&p->data, p->dref);
        p->dref_on = false;
    }
    if (p->tref_on) {
        put(&p->type, p->tref);
        p->tref_on = false;
    }
}

sb_err sb_sse_feed(struct sb_sse *p, const char *buf, size_t n, sb_sse_fn fn, void *ud,
                   struct sb_error *err)
{
    size_t i = 0;
    int rc = SB_OK;
    if (p->failed)
        return sb_fail(err, p->failed, "sse: parser already failed");
    if (p->bom < 3) {
        i = skip_bom(p, buf, n, err);
        if (p->failed)
            return p->failed;
    }
    if (p->skip_lf && i < n) {
        p->skip_lf = false;
        if (buf[i] == '\n')
            i++;
    }
    while (rc == SB_OK && i < n) {
        size_t j = find_eol(buf, i, n);
        if (j == n) {
            rc = append_partial(p, buf + i, n - i, err);
            break;
        }
        rc = one_line(p, buf, i, j, fn, ud, err);
        if (buf[j] == '\r') {
            if (j + 1 == n)
                p->skip_lf = true;
            else if (buf[j + 1] == '\n')
                j++;
        }
        i = j + 1;
    }
    if (rc != SB_OK) {
        p->failed = rc;
        return rc;
    }
    detach(p);
    return SB_OK;
}

sb_err sb_sse_finish(struct sb_sse *p, struct sb_error *err)
{
    if (p->failed)
        return sb_fail(err, p->failed, "sse: parser already failed");
    if (p->line.len || p->open || (p->bom > 0 && p->bom < 3))
        return sb_fail(err, SB_E_UPSTREAM, "sse: stream ended inside an event");
    return SB_OK;
}
