/* SPDX-License-Identifier: MIT */
/*
 * ndjson.c - newline-delimited JSON framing.
 *
 * The only state between feeds is an unfinished line. Length limits are
 * checked on the logical line, so where the input is split never changes
 * the outcome.
 */
#include "provider/ndjson.h"

#include <string.h>

void sb_ndjson_init(struct sb_ndjson *f, size_t max_line)
{
    f->max_line = max_line ? max_line : SB_NDJSON_DEFAULT_MAX_LINE;
    f->failed = SB_OK;
    sb_buf_init(&f->line, f->max_line);
}

void sb_ndjson_free(struct sb_ndjson *f)
{
    sb_buf_free(&f->line);
}

static bool blank(struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] != ' ' && s.p[i] != '\t' && s.p[i] != '\r')
            return false;
    return true;
}

static int emit(struct sb_slice line, sb_ndjson_fn fn, void *ud)
{
    if (line.len && line.p[line.len - 1] == '\r')
        line.len--;
    return blank(line) ? SB_OK : fn(ud, line);
}

static sb_err too_large(struct sb_ndjson *f, struct sb_error *err)
{
    f->failed = SB_E_TOO_LARGE;
    return sb_fail(err, SB_E_TOO_LARGE, "ndjson: line exceeds %zu bytes", f->max_line);
}

/* Appends s[0..n) to the pending line; n == 0 is a no-op (see sse.c). */
static sb_err keep(struct sb_ndjson *f, const char *s, size_t n, struct sb_error *err)
{
    if (n && sb_buf_append(&f->line, s, n) != SB_OK)
        return too_large(f, err);
    return SB_OK;
}

/* Handles the complete line buf[i..j). */
static int one_line(struct sb_ndjson *f, const char *buf, size_t i, size_t j, sb_ndjson_fn fn,
                    void *ud, struct sb_error *err)
{
    int rc;
    if (f->line.len == 0) {
        if (j - i > f->max_line)
            return too_large(f, err);
        return emit((struct sb_slice){buf + i, j - i}, fn, ud);
    }
    rc = keep(f, buf + i, j - i, err);
    if (rc == SB_OK)
        rc = emit(sb_buf_slice(&f->line), fn, ud);
    sb_buf_reset(&f->line);
    return rc;
}

sb_err sb_ndjson_feed(struct sb_ndjson *f, const char *buf, size_t n, sb_ndjson_fn fn, void *ud,
                      struct sb_error *err)
{
    size_t i = 0;
    int rc = SB_OK;
    if (f->failed)
        return sb_fail(err, f->failed, "ndjson: framer already failed");
    while (rc == SB_OK && i < n) {
        const char *nl = memchr(buf + i, '\n', n - i);
        if (!nl) {
            rc = keep(f, buf + i, n - i, err);
            break;
        }
        size_t j = (size_t)(nl - buf);
        rc = one_line(f, buf, i, j, fn, ud, err);
        i = j + 1;
    }
    if (rc != SB_OK)
        f->failed = rc;
    return rc;
}

sb_err sb_ndjson_finish(struct sb_ndjson *f, sb_ndjson_fn fn, void *ud, struct sb_error *err)
{
    int rc;
    if (f->failed)
        return sb_fail(err, f->failed, "ndjson: framer already failed");
    rc = emit(sb_buf_slice(&f->line), fn, ud);
    sb_buf_reset(&f->line);
    if (rc != SB_OK)
        f->failed = rc;
    return rc;
}
