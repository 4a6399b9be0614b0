/* SPDX-License-Identifier: MIT */
/*
 * eventstream.c - AWS event-stream framing: CRC-32, decoder, encoder.
 *
 * The decoder has two paths. When the current feed holds a whole message it
 * is decoded in place (zero-copy). Otherwise bytes go into the message
 * buffer: first the 12-byte prelude, which is validated at once, then
 * exactly the rest of that message, never more. Messages are decoded only
 * after both CRCs match, so a callback never sees corrupt bytes.
 */
#include "provider/eventstream.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define PRELUDE 12u            /* total length, headers length, prelude CRC */
#define OVERHEAD 16u           /* prelude + message CRC */
#define KEEP_CAP (64u * 1024u) /* a message buffer bigger than this is released after use */

/* ==== CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) ==== */

static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t sb_eventstream_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ s[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/* ==== big-endian helpers ==== */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be_n(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Sign-extends the low `bytes` bytes of v. */
static int64_t sign_extend(uint64_t v, size_t bytes)
{
    if (bytes == 8)
        return (int64_t)v;
    uint64_t m = 1ull << (bytes * 8 - 1);
    return (int64_t)((v ^ m) - m);
}

/* ==== decoder ==== */

void sb_eventstream_init(struct sb_eventstream *d, size_t max_message)
{
    memset(d, 0, sizeof(*d));
    if (max_message == 0 || max_message > SB_EVENTSTREAM_MAX_MESSAGE)
        max_message = SB_EVENTSTREAM_MAX_MESSAGE;
    d->max_message = max_message;
    sb_buf_init(&d->msg, max_message);
}

void sb_eventstream_free(struct sb_eventstream *d)
{
    sb_buf_free(&d->msg);
    free(d->hdrs);
    d->hdrs = NULL;
    d->hcap = 0;
}

static sb_err fail(struct sb_eventstream *d, struct sb_error *err, sb_err code, const char *why)
{
    d->failed = code;
    return sb_fail(err, code, "eventstream: %s", why);
}

/* Checks the 12 prelude bytes at p; on success *total is the message length. */
static sb_err check_prelude(struct sb_eventstream *d, const unsigned char *p, uint32_t *total,
                            struct sb_error *err)
{
    uint32_t len = be32(p), hlen = be32(p + 4);
    if (sb_eventstream_crc32(0, p, 8) != be32(p + 8))
        return fail(d, err, SB_E_UPSTREAM, "prelude CRC mismatch");
    if (len < OVERHEAD)
        return fail(d, err, SB_E_UPSTREAM, "message shorter than its prelude");
    if (len > d->max_message)
        return fail(d, err, SB_E_TOO_LARGE, "message exceeds the size limit");
    if (hlen > len - OVERHEAD || hlen > SB_EVENTSTREAM_MAX_HEADERS)
        return fail(d, err, SB_E_UPSTREAM, "headers length out of range");
    *total = len;
    return SB_OK;
}

/* Size of a fixed-width value by type, or -1 for length-prefixed/unknown types. */
static int fixed_size(unsigned type)
{
    static const signed char sizes[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    return type < sizeof(sizes) ? sizes[type] : -2;
}

/* Decodes one header at p[*off..end) into h. */
static sb_err one_header(const unsigned char *p, size_t *off, size_t end,
                         struct sb_eventstream_header *h)
{
    size_t o = *off, nlen = p[o++];
    if (nlen == 0 || end - o < nlen + 1)
        return SB_E_UPSTREAM;
    h->name = (struct sb_slice){(const char *)p + o, nlen};
    o += nlen;
    unsigned type = p[o++];
    int fixed = fixed_size(type);
    h->type = (enum sb_eventstream_type)type;
    h->value = SB_SLICE_NULL;
    h->num = type == SB_EVENTSTREAM_BOOL_TRUE;
    if (fixed == -2)
        return SB_E_UPSTREAM;
    if (fixed >= 0) {
        if (end - o < (size_t)fixed)
            return SB_E_UPSTREAM;
        if (type == SB_EVENTSTREAM_UUID)
            h->value = (struct sb_slice){(const char *)p + o, 16};
        else if (fixed > 0)
            h->num = sign_extend(be_n(p + o, (size_t)fixed), (size_t)fixed);
        *off = o + (size_t)fixed;
        return SB_OK;
    }
    if (end - o < 2 || end - o - 2 < be_n(p + o, 2))
        return SB_E_UPSTREAM;
    h->value = (struct sb_slice){(const char *)p + o + 2, (size_t)be_n(p + o, 2)};
    *off = o + 2 + h->value.len;
    return SB_OK;
}

static struct sb_slice string_header(const struct sb_eventstream_msg *m, const char *name)
{
    const struct sb_eventstream_header *h = sb_eventstream_header(m, name);
    return (h && h->type == SB_EVENTSTREAM_STRING) ? h->value : SB_SLICE_NULL;
}

static sb_err parse_headers(struct sb_eventstream *d, const unsigned char *p, size_t hlen,
                            struct sb_eventstream_msg *m, struct sb_error *err)
{
    size_t off = 0, n = 0;
    while (off < hlen) {
        if (n == d->hcap) {
            d->hcap = d->hcap ? d->hcap * 2 : 8;
            d->hdrs = sb_xrealloc(d->hdrs, d->hcap * sizeof(*d->hdrs));
        }
        if (one_header(p, &off, hlen, &d->hdrs[n]) != SB_OK)
            return fail(d, err, SB_E_UPSTREAM, "malformed header");
        n++;
    }
    m->headers = d->hdrs;
    m->nheaders = n;
    return SB_OK;
}

/* Decodes the complete message p[0..total) whose prelude is already checked. */
static int decode(struct sb_eventstream *d, const unsigned char *p, uint32_t total,
                  sb_eventstream_fn fn, void *ud, struct sb_error *err)
{
    struct sb_eventstream_msg m;
    uint32_t hlen = be32(p + 4);
    if (sb_eventstream_crc32(0, p, total - 4) != be32(p + total - 4))
        return fail(d, err, SB_E_UPSTREAM, "message CRC mismatch");
    if (parse_headers(d, p + PRELUDE, hlen, &m, err) != SB_OK)
        return d->failed;
    m.payload = (struct sb_slice){(const char *)p + PRELUDE + hlen, total - OVERHEAD - hlen};
    m.event_type = string_header(&m, ":event-type");
    m.message_type = string_header(&m, ":message-type");
    m.exception_type = string_header(&m, ":exception-type");
    return fn(ud, &m);
}

const struct sb_eventstream_header *sb_eventstream_header(const struct sb_eventstream_msg *m,
                                                          const char *name)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (sb_slice_eq_cstr(m->headers[i].name, name))
            return &m->headers[i];
    return NULL;
}

/* ==== feed loop ==== */

/* Moves up to `want` bytes of the input into the message buffer. */
static size_t take(struct sb_eventstream *d, const char *buf, size_t avail, size_t want)
{
    size_t n = avail < want ? avail : want;
    if (n)
        sb_buf_append(&d->msg, buf, n); /* within max_message: lengths were checked */
    return n;
}

/* Continues a buffered message with buf[0..n); returns bytes used or sets d->failed. */
static size_t buffered(struct sb_eventstream *d, const char *buf, size_t n, sb_eventstream_fn fn,
                       void *ud, struct sb_error *err)
{
    uint32_t total = 0;
    size_t used = 0;
    if (d->msg.len < PRELUDE) {
        used = take(d, buf, n, PRELUDE - d->msg.len);
        if (d->msg.len < PRELUDE)
            return used;
        if (check_prelude(d, (const unsigned char *)d->msg.p, &total, err) != SB_OK)
            return used;
    }
    total = be32((const unsigned char *)d->msg.p);
    used += take(d, buf + used, n - used, total - d->msg.len);
    if (d->msg.len == total) {
        int rc = decode(d, (const unsigned char *)d->msg.p, total, fn, ud, err);
        if (rc != SB_OK)
            d->failed = rc;
        sb_buf_reset(&d->msg);
        if (d->msg.cap > KEEP_CAP) {
            sb_buf_free(&d->msg);
            sb_buf_init(&d->msg, d->max_message);
        }
    }
    return used;
}

sb_err sb_eventstream_feed(struct sb_eventstream *d, const char *buf, size_t n,
                           sb_eventstream_fn fn, void *ud, struct sb_error *err)
{
    size_t i = 0;
    if (d->failed)
        return sb_fail(err, d->failed, "eventstream: decoder already failed");
    while (i < n && !d->failed) {
        const unsigned char *p = (const unsigned char *)buf + i;
        uint32_t total = 0;
        if (d->msg.len == 0 && n - i >= PRELUDE && n - i >= be32(p)) {
            /* Zero-copy: the whole message is in this feed (if the prelude is sound). */
            if (check_prelude(d, p, &total, err) != SB_OK)
                break;
            int rc = decode(d, p, total, fn, ud, err);
            if (rc != SB_OK)
                d->failed = rc;
            i += total;
            continue;
        }
        i += buffered(d, buf + i, n - i, fn, ud, err);
    }
    return d->failed;
}

sb_err sb_eventstream_finish(struct sb_eventstream *d, struct sb_error *err)
{
    if (d->failed)
        return sb_fail(err, d->failed, "eventstream: decoder already failed");
    if (d->msg.len)
        return sb_fail(err, SB_E_UPSTREAM, "eventstream: stream ended inside a message");
    return SB_OK;
}

/* ==== encoder (tests, mocks) ==== */

static void put_be(char *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(v >> (8 * (n - 1 - i)));
}

/* Bytes header h takes on the wire, or 0 if it cannot be encoded. */
static size_t header_size(const struct sb_eventstream_header *h)
{
    int fixed = fixed_size((unsigned)h->type);
    if (h->name.len == 0 || h->name.len > 255 || fixed == -2)
        return 0;
    if (fixed == -1 && h->value.len > 0xFFFF)
        return 0;
    if (h->type == SB_EVENTSTREAM_UUID && h->value.len != 16)
        return 0;
    return 2 + h->name.len + (fixed >= 0 ? (size_t)fixed : 2 + h->value.len);
}

static char *put_header(char *o, const struct sb_eventstream_header *h)
{
    int fixed = fixed_size((unsigned)h->type);
    *o++ = (char)h->name.len;
    memcpy(o, h->name.p, h->name.len);
    o += h->name.len;
    *o++ = (char)h->type;
    if (h->type == SB_EVENTSTREAM_UUID || fixed == -1) {
        if (fixed == -1) {
            put_be(o, h->value.len, 2);
            o += 2;
        }
        if (h->value.len)
            memcpy(o, h->value.p, h->value.len);
        return o + h->value.len;
    }
    put_be(o, (uint64_t)h->num, (size_t)fixed);
    return o + fixed;
}

sb_err sb_eventstream_encode(struct sb_buf *out, const struct sb_eventstream_header *h, size_t n,
                             struct sb_slice payload)
{
    size_t hlen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = header_size(&h[i]);
        if (sz == 0)
            return SB_E_BAD_REQUEST;
        hlen += sz;
    }
    if (hlen > SB_EVENTSTREAM_MAX_HEADERS ||
        payload.len > SB_EVENTSTREAM_MAX_MESSAGE - OVERHEAD - hlen)
        return SB_E_TOO_LARGE;
    size_t total = OVERHEAD + hlen + payload.len;
    char *start = sb_buf_reserve(out, total);
    if (!start)
        return SB_E_TOO_LARGE;
    char *o = start;
    put_be(o, total, 4);
    put_be(o + 4, hlen, 4);
    put_be(o + 8, sb_eventstream_crc32(0, o, 8), 4);
    o += PRELUDE;
    for (size_t i = 0; i < n; i++)
        o = put_header(o, &h[i]);
    if (payload.len)
        memcpy(o, payload.p, payload.len);
    o += payload.len;
    put_be(o, sb_eventstream_crc32(0, start, total - 4), 4);
    out->len += total;
    out->p[out->len] = '\0';
    return SB_OK;
}
