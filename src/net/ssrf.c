/* SPDX-License-Identifier: MIT */
/*
 * ssrf.c - resolve a base URL's host and refuse internal addresses (ssrf.h).
 *
 * The decisions are core/netaddr.c's; this file adds getaddrinfo and the
 * messages. Every answer is checked, not the first: a name that resolves
 * to one public and one private address is refused.
 */
#include "net/ssrf.h"

#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ANSWERS 32

sb_err sb_ssrf_check_addrs(const char *host, const struct sb_netaddr *addrs, size_t n,
                           struct sb_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        char text[48];
        if (sb_netaddr_classify(&addrs[i], &why) == SB_NETADDR_PUBLIC)
            continue;
        sb_netaddr_format(&addrs[i], text);
        return sb_fail_field(err, SB_E_FORBIDDEN, "base_url",
                             "base_url host %s resolves to %s, a %s address; only an admin "
                             "may allow internal addresses",
                             host, text, why);
    }
    return SB_OK;
}

/* "localhost" and "*.localhost" are loopback by definition (RFC 6761). */
static bool is_localhost(const char *host)
{
    size_t n = strlen(host);
    return strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0);
}

static sb_err resolve(const char *host, struct sb_netaddr *out, size_t *n, struct sb_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    *n = 0;
    if (rc != 0)
        return sb_fail_field(err, SB_E_UNPROCESSABLE, "base_url",
                             "base_url host %s does not resolve: %s", host, gai_strerror(rc));
    for (struct addrinfo *ai = res; ai && *n < MAX_ANSWERS; ai = ai->ai_next) {
        struct sb_netaddr *a = &out[*n];
        memset(a, 0, sizeof(*a));
        if (ai->ai_family == AF_INET) {
            a->family = 4;
            memcpy(a->b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6) {
            a->family = 6;
            memcpy(a->b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        (*n)++;
    }
    freeaddrinfo(res);
    if (*n == 0)
        return sb_fail_field(err, SB_E_UNPROCESSABLE, "base_url",
                             "base_url host %s has no IPv4 or IPv6 address", host);
    return SB_OK;
}

sb_err sb_ssrf_check_url(const char *url, bool allow_private, struct sb_error *err)
{
    struct sb_netaddr_url u;
    struct sb_netaddr addrs[MAX_ANSWERS];
    size_t n = 0;
    sb_err rc = sb_netaddr_parse_url(sb_slice_cstr(url), &u, err);
    if (rc != SB_OK || allow_private)
        return rc;
    if (u.is_ip)
        return sb_ssrf_check_addrs(u.host, &u.ip, 1, err);
    if (is_localhost(u.host))
        return sb_fail_field(err, SB_E_FORBIDDEN, "base_url",
                             "base_url host %s is a loopback name; only an admin may allow "
                             "internal addresses",
                             u.host);
    rc = resolve(u.host, addrs, &n, err);
    if (rc == SB_OK)
        rc = sb_ssrf_check_addrs(u.host, addrs, n, err);
    return rc;
}
