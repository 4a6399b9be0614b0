/* SPDX-License-Identifier: MIT */
/*
 * netaddr.c - URL host parsing and address classification (netaddr.h).
 *
 * Pure functions: no resolver, no sockets (inet_pton/inet_ntop only
 * convert text). The classification is one table of prefixes, first match
 * wins; rows that embed an IPv4 address say where it sits, and that
 * address is classified again by the IPv4 rows. Anything IPv6 outside
 * 2000::/3 (global unicast) is refused as reserved: no provider lives
 * there, and a table of every odd assignment would be longer than useful.
 */
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 2048

/* ---- classification ---- */

struct range {
    int family;          /* 4 or 6 */
    unsigned char p[16]; /* prefix bytes */
    int bits;            /* prefix length */
    int embed;           /* offset of an embedded IPv4 address, or -1 */
    enum sb_netaddr_class cls;
    const char *why;
};

static const struct range ranges[] = {
    {4, {255, 255, 255, 255}, 32, -1, SB_NETADDR_MULTICAST, "broadcast (255.255.255.255)"},
    {4, {0}, 8, -1, SB_NETADDR_UNSPECIFIED, "unspecified (0.0.0.0/8)"},
    {4, {10}, 8, -1, SB_NETADDR_PRIVATE, "private (10.0.0.0/8)"},
    {4, {100, 64}, 10, -1, SB_NETADDR_CGNAT, "carrier-grade NAT (100.64.0.0/10)"},
    {4, {127}, 8, -1, SB_NETADDR_LOOPBACK, "loopback (127.0.0.0/8)"},
    {4,
     {169, 254},
     16,
     -1,
     SB_NETADDR_LINK_LOCAL,
     "link-local (169.254.0.0/16, where cloud metadata lives)"},
    {4, {172, 16}, 12, -1, SB_NETADDR_PRIVATE, "private (172.16.0.0/12)"},
    {4, {192, 0, 0}, 24, -1, SB_NETADDR_RESERVED, "reserved (192.0.0.0/24)"},
    {4, {192, 0, 2}, 24, -1, SB_NETADDR_RESERVED, "documentation (192.0.2.0/24)"},
    {4, {192, 88, 99}, 24, -1, SB_NETADDR_RESERVED, "reserved (192.88.99.0/24)"},
    {4, {192, 168}, 16, -1, SB_NETADDR_PRIVATE, "private (192.168.0.0/16)"},
    {4, {198, 18}, 15, -1, SB_NETADDR_RESERVED, "benchmarking (198.18.0.0/15)"},
    {4, {198, 51, 100}, 24, -1, SB_NETADDR_RESERVED, "documentation (198.51.100.0/24)"},
    {4, {203, 0, 113}, 24, -1, SB_NETADDR_RESERVED, "documentation (203.0.113.0/24)"},
    {4, {224}, 4, -1, SB_NETADDR_MULTICAST, "multicast (224.0.0.0/4)"},
    {4, {240}, 4, -1, SB_NETADDR_RESERVED, "reserved (240.0.0.0/4)"},
    {6, {0}, 128, -1, SB_NETADDR_UNSPECIFIED, "unspecified (::)"},
    {6, {[15] = 1}, 128, -1, SB_NETADDR_LOOPBACK, "loopback (::1)"},
    {6, {[10] = 0xff, [11] = 0xff}, 96, 12, SB_NETADDR_PUBLIC, "IPv4-mapped"},
    {6, {0}, 96, 12, SB_NETADDR_PUBLIC, "IPv4-compatible"},
    {6, {0, 0x64, 0xff, 0x9b}, 96, 12, SB_NETADDR_PUBLIC, "NAT64"},
    {6, {0x20, 0x02}, 16, 2, SB_NETADDR_PUBLIC, "6to4"},
    {6, {0x20, 0x01, 0x0d, 0xb8}, 32, -1, SB_NETADDR_RESERVED, "documentation (2001:db8::/32)"},
    {6, {0x20, 0x01, 0, 0}, 32, -1, SB_NETADDR_RESERVED, "Teredo (2001::/32)"},
    {6, {0xfc}, 7, -1, SB_NETADDR_PRIVATE, "unique local (fc00::/7)"},
    {6, {0xfe, 0x80}, 10, -1, SB_NETADDR_LINK_LOCAL, "link-local (fe80::/10)"},
    {6, {0xfe, 0xc0}, 10, -1, SB_NETADDR_PRIVATE, "site-local (fec0::/10)"},
    {6, {0xff}, 8, -1, SB_NETADDR_MULTICAST, "multicast (ff00::/8)"},
};

static bool prefix_match(const unsigned char *a, const unsigned char *p, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, p, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (p[whole] & mask);
}

enum sb_netaddr_class sb_netaddr_classify(const struct sb_netaddr *a, const char **why)
{
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        const struct range *r = &ranges[i];
        if (r->family != a->family || !prefix_match(a->b, r->p, r->bits))
            continue;
        if (r->embed < 0) {
            if (why)
                *why = r->why;
            return r->cls;
        }
        struct sb_netaddr v4 = {.family = 4};
        memcpy(v4.b, a->b + r->embed, 4);
        return sb_netaddr_classify(&v4, why);
    }
    /* Global unicast is 2000::/3; anything else unmatched is not a provider. */
    if (a->family == 6 && (a->b[0] & 0xe0) != 0x20) {
        if (why)
            *why = "reserved (outside 2000::/3)";
        return SB_NETADDR_RESERVED;
    }
    if (why)
        *why = "public";
    return SB_NETADDR_PUBLIC;
}

/* ---- IP literals ---- */

/* Canonical dotted quad: four decimal parts 0..255, no leading zeros. */
static bool parse_quad(struct sb_slice s, unsigned char out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t start = i;
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && i - start < 4)
            v = v * 10 + (unsigned)(s.p[i++] - '0');
        size_t n = i - start;
        if (n == 0 || n > 3 || v > 255 || (n > 1 && s.p[start] == '0'))
            return false;
        out[part] = (unsigned char)v;
        if (part < 3 && (i >= s.len || s.p[i++] != '.'))
            return false;
    }
    return i == s.len;
}

bool sb_netaddr_parse_ip(struct sb_slice s, struct sb_netaddr *out)
{
    char buf[64];
    memset(out, 0, sizeof(*out));
    if (parse_quad(s, out->b)) {
        out->family = 4;
        return true;
    }
    if (s.len == 0 || s.len >= sizeof(buf) || memchr(s.p, ':', s.len) == NULL)
        return false;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    if (inet_pton(AF_INET6, buf, out->b) != 1)
        return false;
    out->family = 6;
    return true;
}

static bool all_digits(struct sb_slice s, int base)
{
    if (s.len == 0 && base == 10)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (base == 10 ? !(s.p[i] >= '0' && s.p[i] <= '9') : sb_hex_val(s.p[i]) < 0)
            return false;
    return true;
}

bool sb_netaddr_is_odd_ipv4(struct sb_slice s)
{
    unsigned char q[4];
    if (s.len && s.p[s.len - 1] == '.')
        s.len--;
    size_t dot = s.len;
    while (dot > 0 && s.p[dot - 1] != '.')
        dot--;
    struct sb_slice last = {s.p + dot, s.len - dot};
    bool numeric = all_digits(last, 10);
    if (!numeric && last.len >= 2 && last.p[0] == '0' && (last.p[1] == 'x' || last.p[1] == 'X'))
        numeric = all_digits((struct sb_slice){last.p + 2, last.len - 2}, 16);
    return numeric && !parse_quad(s, q);
}

void sb_netaddr_format(const struct sb_netaddr *a, char out[48])
{
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, out, 48))
        snprintf(out, 48, "?");
}

/* ---- URLs ---- */

#define URL_FAIL(err, ...) sb_fail_field(err, SB_E_BAD_REQUEST, "base_url", __VA_ARGS__)

static sb_err check_chars(struct sb_slice url, struct sb_error *err)
{
    if (url.len > URL_MAX)
        return URL_FAIL(err, "base_url is longer than %d bytes", URL_MAX);
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.p[i];
        if (c <= 0x20 || c == 0x7f)
            return URL_FAIL(err, "base_url contains a space or control character");
        if (c == '\\')
            return URL_FAIL(err, "base_url contains a backslash");
    }
    return SB_OK;
}

/* Strips "http://" or "https://" (any case) from *u. */
static sb_err parse_scheme(struct sb_slice *u, bool *https, struct sb_error *err)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (u->len >= n && strncasecmp(u->p, schemes[i], n) == 0) {
            *https = i == 1;
            u->p += n;
            u->len -= n;
            return SB_OK;
        }
    }
    return URL_FAIL(err, "base_url must start with http:// or https://");
}

static sb_err parse_port(struct sb_slice s, uint16_t *port, struct sb_error *err)
{
    unsigned long long v = 0;
    if (s.len == 0 || s.len > 5 || !sb_slice_to_u64(s, &v) || v == 0 || v > 65535)
        return URL_FAIL(err, "base_url has an invalid port (1-65535)");
    *port = (uint16_t)v;
    return SB_OK;
}

/* A DNS name: letters, digits, '-', '_' and non-empty labels of ≤ 63. */
static sb_err check_name(struct sb_slice h, struct sb_error *err)
{
    size_t label = 0;
    if (h.len == 0)
        return URL_FAIL(err, "base_url has no host");
    if (h.len > 253)
        return URL_FAIL(err, "base_url host is longer than 253 characters");
    for (size_t i = 0; i < h.len; i++) {
        char c = h.p[i];
        if (c == '.') {
            if (label == 0)
                return URL_FAIL(err, "base_url host has an empty label");
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return URL_FAIL(err, "base_url host may hold only ASCII letters, digits, '-' and "
                                 "'.' (write international names in punycode)");
        if (++label > 63)
            return URL_FAIL(err, "base_url host has a label longer than 63 characters");
    }
    return label ? SB_OK : URL_FAIL(err, "base_url host has an empty label");
}

static sb_err parse_bracketed(struct sb_slice auth, struct sb_netaddr_url *out,
                              struct sb_slice *rest, struct sb_error *err)
{
    const char *close = memchr(auth.p, ']', auth.len);
    if (!close)
        return URL_FAIL(err, "base_url has an unclosed '[' in the host");
    struct sb_slice inner = {auth.p + 1, (size_t)(close - auth.p - 1)};
    if (memchr(inner.p, '%', inner.len))
        return URL_FAIL(err, "base_url must not use an IPv6 zone id");
    if (!sb_netaddr_parse_ip(inner, &out->ip) || out->ip.family != 6)
        return URL_FAIL(err, "base_url has an invalid IPv6 address");
    out->is_ip = true;
    sb_netaddr_format(&out->ip, out->host);
    *rest = (struct sb_slice){close + 1, (size_t)(auth.p + auth.len - close - 1)};
    return SB_OK;
}

static sb_err parse_name(struct sb_slice auth, struct sb_netaddr_url *out, struct sb_slice *rest,
                         struct sb_error *err)
{
    const char *colon = memchr(auth.p, ':', auth.len);
    struct sb_slice h = {auth.p, colon ? (size_t)(colon - auth.p) : auth.len};
    *rest = (struct sb_slice){h.p + h.len, auth.len - h.len};
    if (memchr(h.p, '%', h.len))
        return URL_FAIL(err, "base_url host must not be percent-encoded");
    if (sb_netaddr_is_odd_ipv4(h))
        return URL_FAIL(err, "base_url host is a numeric address in a non-standard form; "
                             "write IPv4 addresses as four decimal numbers (a.b.c.d)");
    if (h.len && h.p[h.len - 1] == '.')
        h.len--;
    sb_err rc = check_name(h, err);
    if (rc != SB_OK)
        return rc;
    for (size_t i = 0; i < h.len; i++)
        out->host[i] = (char)((h.p[i] >= 'A' && h.p[i] <= 'Z') ? h.p[i] + 32 : h.p[i]);
    out->host[h.len] = '\0';
    out->is_ip = sb_netaddr_parse_ip(sb_slice_cstr(out->host), &out->ip);
    return SB_OK;
}

sb_err sb_netaddr_parse_url(struct sb_slice url, struct sb_netaddr_url *out, struct sb_error *err)
{
    struct sb_slice u = url, rest = SB_SLICE_NULL;
    memset(out, 0, sizeof(*out));
    sb_err rc = check_chars(url, err);
    if (rc == SB_OK)
        rc = parse_scheme(&u, &out->https, err);
    if (rc != SB_OK)
        return rc;
    size_t end = 0;
    while (end < u.len && u.p[end] != '/' && u.p[end] != '?' && u.p[end] != '#')
        end++;
    struct sb_slice auth = {u.p, end};
    if (memchr(auth.p, '@', auth.len))
        return URL_FAIL(err, "base_url must not contain user:password@");
    if (auth.len && auth.p[0] == '[')
        rc = parse_bracketed(auth, out, &rest, err);
    else
        rc = parse_name(auth, out, &rest, err);
    if (rc != SB_OK)
        return rc;
    out->port = out->https ? 443 : 80;
    if (rest.len == 0)
        return SB_OK;
    if (rest.p[0] != ':')
        return URL_FAIL(err, "base_url has junk after the host");
    return parse_port((struct sb_slice){rest.p + 1, rest.len - 1}, &out->port, err);
}
