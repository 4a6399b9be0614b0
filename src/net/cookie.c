/* SPDX-License-Identifier: MIT */
/*
 * cookie.c - reading one cookie out of a Cookie header (RFC 6265 §5.4:
 * "name=value" pairs separated by "; "). Names compare exactly; a quoted
 * value keeps its quotes (we never set one).
 */
#include <string.h>

#include "net/http.h"

struct sb_slice sb_http_cookie(struct sb_slice h, const char *name)
{
    size_t nlen = strlen(name);
    while (h.len) {
        while (h.len && (*h.p == ' ' || *h.p == ';'))
            h.p++, h.len--;
        const char *semi = memchr(h.p, ';', h.len);
        size_t plen = semi ? (size_t)(semi - h.p) : h.len;
        if (plen > nlen && h.p[nlen] == '=' && memcmp(h.p, name, nlen) == 0) {
            struct sb_slice v = {h.p + nlen + 1, plen - nlen - 1};
            while (v.len && v.p[v.len - 1] == ' ')
                v.len--;
            return v;
        }
        h.p += plen;
        h.len -= plen;
    }
    return SB_SLICE_NULL;
}
