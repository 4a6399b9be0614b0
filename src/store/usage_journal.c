/* SPDX-License-Identifier: MIT */
/*
 * usage_journal.c - the journal's record format: framing, CRC-32, and the
 * field-by-field encoding of usage rows and audit records (see
 * usage_journal.h for the layout).
 *
 * Pure functions of bytes, no I/O: the file half is usage_journal_file.c,
 * and fuzz/usage_journal_fuzz.c drives sb_uj_parse with arbitrary input.
 * Fields are written one by one, never as a memcpy of the struct: padding
 * bytes and the struct's layout are not a file format. Usage strings are
 * the struct's fixed arrays (u8 length, shorter than the array); audit
 * strings are u32 length or 0xffffffff for NULL. Numbers are 64-bit
 * little-endian; doubles travel as their IEEE-754 bits.
 */
#include "store/usage_journal.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define NULL_LEN 0xffffffffu /* an absent (NULL) audit string */

/* ---- CRC-32 ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t sb_uj_crc32(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- little-endian writing and reading ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void out_u8(struct sb_buf *b, uint8_t v)
{
    sb_buf_append(b, &v, 1);
}

static void out_u32(struct sb_buf *b, uint32_t v)
{
    uint8_t x[4];
    put_u32(x, v);
    sb_buf_append(b, x, 4);
}

static void out_u64(struct sb_buf *b, uint64_t v)
{
    out_u32(b, (uint32_t)v);
    out_u32(b, (uint32_t)(v >> 32));
}

static void out_f64(struct sb_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    out_u64(b, v);
}

/* A cursor over a payload; any short or bad read sets bad and yields zeros. */
struct cur {
    const uint8_t *p;
    size_t n;
    bool bad;
};

static const uint8_t *take(struct cur *c, size_t n)
{
    if (c->bad || c->n < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->n -= n;
    return p;
}

static uint8_t in_u8(struct cur *c)
{
    const uint8_t *p = take(c, 1);
    return p ? p[0] : 0;
}

static uint32_t in_u32(struct cur *c)
{
    const uint8_t *p = take(c, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t in_u64(struct cur *c)
{
    uint64_t lo = in_u32(c);
    return lo | (uint64_t)in_u32(c) << 32;
}

static double in_f64(struct cur *c)
{
    uint64_t v = in_u64(c);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* An int field: refused unless it fits. */
static int in_int(struct cur *c)
{
    int64_t v = (int64_t)in_u64(c);
    if (v < INT32_MIN || v > INT32_MAX)
        c->bad = true;
    return (int)v;
}

/* ---- usage rows ---- */

#define STR(f)                                                                                     \
    {                                                                                              \
        offsetof(struct sb_usage, f), sizeof(((struct sb_usage *)0)->f)                            \
    }

/* The string fields of a usage row, in file order. */
static const struct {
    size_t off, size;
} usage_strs[] = {STR(request_id), STR(user_id), STR(key_id), STR(route),     STR(provider),
                  STR(model),      STR(variant), STR(status), STR(error_code)};

#define NSTRS (sizeof(usage_strs) / sizeof(usage_strs[0]))

static void usage_payload(struct sb_buf *b, const struct sb_usage *u)
{
    out_u8(b, SB_UJ_USAGE);
    for (size_t i = 0; i < NSTRS; i++) {
        const char *s = (const char *)u + usage_strs[i].off;
        size_t n = strnlen(s, usage_strs[i].size - 1); /* arrays < 256 bytes */
        out_u8(b, (uint8_t)n);
        sb_buf_append(b, s, n);
    }
    out_u64(b, (uint64_t)u->ts_ms);
    out_u64(b, (uint64_t)(int64_t)u->http_status);
    out_u64(b, (uint64_t)u->prompt_tokens);
    out_u64(b, (uint64_t)u->completion_tokens);
    out_f64(b, u->cost_usd);
    out_f64(b, u->latency_ms);
    out_f64(b, u->ttft_ms);
    out_u8(b, u->streamed ? 1 : 0);
    out_u64(b, (uint64_t)(int64_t)u->fallbacks);
}

/* A string of n bytes with no NUL (the writer never stores one). */
static const uint8_t *in_str(struct cur *c, size_t n)
{
    const uint8_t *p = take(c, n);
    if (p && memchr(p, 0, n))
        c->bad = true;
    return c->bad ? NULL : p;
}

static void usage_decode(struct cur *c, struct sb_usage *u)
{
    memset(u, 0, sizeof(*u));
    for (size_t i = 0; i < NSTRS && !c->bad; i++) {
        size_t n = in_u8(c);
        if (n >= usage_strs[i].size)
            c->bad = true;
        const uint8_t *s = in_str(c, n);
        if (s)
            memcpy((char *)u + usage_strs[i].off, s, n);
    }
    u->ts_ms = (int64_t)in_u64(c);
    u->http_status = in_int(c);
    u->prompt_tokens = (int64_t)in_u64(c);
    u->completion_tokens = (int64_t)in_u64(c);
    u->cost_usd = in_f64(c);
    u->latency_ms = in_f64(c);
    u->ttft_ms = in_f64(c);
    uint8_t streamed = in_u8(c);
    if (streamed > 1)
        c->bad = true;
    u->streamed = streamed == 1;
    u->fallbacks = in_int(c);
}

/* ---- audit records ---- */

/* The string fields of an audit record, in file order. */
static const size_t audit_strs[] = {
    offsetof(struct sb_audit, actor),      offsetof(struct sb_audit, actor_role),
    offsetof(struct sb_audit, action),     offsetof(struct sb_audit, target_type),
    offsetof(struct sb_audit, target_id),  offsetof(struct sb_audit, before),
    offsetof(struct sb_audit, after),      offsetof(struct sb_audit, ip),
    offsetof(struct sb_audit, request_id), offsetof(struct sb_audit, outcome),
};

#define NASTRS (sizeof(audit_strs) / sizeof(audit_strs[0]))

static const char **audit_field(struct sb_audit *a, size_t i)
{
    return (const char **)((char *)a + audit_strs[i]);
}

static void audit_payload(struct sb_buf *b, const struct sb_audit *a)
{
    out_u8(b, SB_UJ_AUDIT);
    out_u64(b, (uint64_t)a->ts_ms);
    for (size_t i = 0; i < NASTRS; i++) {
        const char *s = *audit_field((struct sb_audit *)a, i);
        size_t n = s ? strlen(s) : 0;
        out_u32(b, s ? (uint32_t)n : NULL_LEN);
        sb_buf_append(b, s, n);
    }
}

/* Two passes: check the lengths and size the block, then copy the strings. */
static void audit_decode(struct cur *c, struct sb_uj_rec *r)
{
    memset(&r->audit, 0, sizeof(r->audit));
    r->audit.ts_ms = (int64_t)in_u64(c);
    struct cur first = *c;
    size_t total = 1;
    for (size_t i = 0; i < NASTRS && !c->bad; i++) {
        uint32_t n = in_u32(c);
        if (n != NULL_LEN) {
            in_str(c, n);
            total += (size_t)n + 1;
        }
    }
    if (c->bad)
        return;
    char *at = r->block = sb_xmalloc(total);
    for (size_t i = 0; i < NASTRS; i++) {
        uint32_t n = in_u32(&first);
        if (n == NULL_LEN)
            continue;
        memcpy(at, take(&first, n), n);
        at[n] = '\0';
        *audit_field(&r->audit, i) = at;
        at += (size_t)n + 1;
    }
}

/* ---- framing ---- */

static const char header_magic[8] = {'S', 'B', 'U', 'S', 'A', 'G', 'E', '1'};

void sb_uj_encode_header(uint8_t out[SB_UJ_HEADER], const uint8_t id[16])
{
    memcpy(out, header_magic, 8);
    memcpy(out + 8, id, 16);
    put_u32(out + 24, sb_uj_crc32(0, out, 24));
    put_u32(out + 28, 0);
}

bool sb_uj_parse_header(const uint8_t *p, size_t n, uint8_t id[16])
{
    if (n < SB_UJ_HEADER || memcmp(p, header_magic, 8) != 0 ||
        get_u32(p + 24) != sb_uj_crc32(0, p, 24) || get_u32(p + 28) != 0)
        return false;
    memcpy(id, p + 8, 16);
    return true;
}

/* Frames the payload that starts at out->len - plen: fills in the head reserved before it. */
static void frame(struct sb_buf *out, size_t head_at)
{
    uint8_t *h = (uint8_t *)out->p + head_at;
    uint32_t plen = (uint32_t)(out->len - head_at - SB_UJ_REC_HEAD);
    memcpy(h, SB_UJ_MAGIC, 4);
    put_u32(h + 4, plen);
    put_u32(h + 8, sb_uj_crc32(sb_uj_crc32(0, h + 4, 4), h + SB_UJ_REC_HEAD, plen));
}

void sb_uj_encode_usage(struct sb_buf *out, const struct sb_usage *u)
{
    size_t at = out->len;
    sb_buf_append(out, "\0\0\0\0\0\0\0\0\0\0\0\0", SB_UJ_REC_HEAD);
    usage_payload(out, u);
    frame(out, at);
}

void sb_uj_encode_audit(struct sb_buf *out, const struct sb_audit *a)
{
    size_t at = out->len;
    sb_buf_append(out, "\0\0\0\0\0\0\0\0\0\0\0\0", SB_UJ_REC_HEAD);
    audit_payload(out, a);
    frame(out, at);
}

static sb_err decode(const uint8_t *p, size_t n, struct sb_uj_rec *rec, struct sb_error *err)
{
    struct cur c = {p, n, false};
    memset(rec, 0, sizeof(*rec));
    rec->type = (enum sb_uj_type)in_u8(&c);
    if (rec->type == SB_UJ_USAGE)
        usage_decode(&c, &rec->usage);
    else if (rec->type == SB_UJ_AUDIT)
        audit_decode(&c, rec);
    else
        return sb_fail(err, SB_E_BAD_REQUEST, "usage journal: unknown record type %d",
                       (int)rec->type);
    if (!c.bad && c.n == 0)
        return SB_OK;
    free(rec->block);
    rec->block = NULL;
    return sb_fail(err, SB_E_BAD_REQUEST, "usage journal: malformed %s record",
                   rec->type == SB_UJ_USAGE ? "usage" : "audit");
}

sb_err sb_uj_parse(const uint8_t *p, size_t n, struct sb_uj_rec *rec, size_t *used,
                   struct sb_error *err)
{
    *used = 0;
    if (memcmp(p, SB_UJ_MAGIC, n < 4 ? n : 4) != 0)
        return sb_fail(err, SB_E_BAD_REQUEST, "usage journal: no record magic");
    if (n < SB_UJ_REC_HEAD)
        return SB_AGAIN;
    uint32_t plen = get_u32(p + 4);
    if (plen == 0 || plen > SB_UJ_MAX_PAYLOAD)
        return sb_fail(err, SB_E_BAD_REQUEST, "usage journal: record length %u", plen);
    if (n - SB_UJ_REC_HEAD < plen)
        return SB_AGAIN;
    const uint8_t *payload = p + SB_UJ_REC_HEAD;
    if (get_u32(p + 8) != sb_uj_crc32(sb_uj_crc32(0, p + 4, 4), payload, plen))
        return sb_fail(err, SB_E_BAD_REQUEST, "usage journal: record checksum mismatch");
    sb_err rc = decode(payload, plen, rec, err);
    if (rc == SB_OK)
        *used = SB_UJ_REC_HEAD + plen;
    return rc;
}
