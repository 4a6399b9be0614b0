/* SPDX-License-Identifier: MIT */
/*
 * netaddr_fuzz.c - libFuzzer target for the base URL host parser and the
 * address classifier (core/netaddr.h).
 *
 * The input is a URL. Parsing must not crash or read out of bounds, and
 * what it accepts must hold together: a refusal names the field; an
 * accepted host is non-empty, lowercase, NUL-terminated, without '@', '%'
 * or '\', and never an odd IPv4 spelling; an IP host parses back to the
 * same address, and classifying it gives a reason. The raw input is also
 * run through the IP literal parser and the odd-IPv4 detector.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/netaddr.h"

static void check_accepted(const struct sb_netaddr_url *u)
{
    size_t n = strnlen(u->host, sizeof(u->host));
    assert(n > 0 && n < sizeof(u->host));
    for (size_t i = 0; i < n; i++) {
        assert(!(u->host[i] >= 'A' && u->host[i] <= 'Z'));
        assert(u->host[i] != '@' && u->host[i] != '%' && u->host[i] != '\\');
    }
    assert(u->port > 0);
    if (u->is_ip) {
        struct sb_netaddr again;
        const char *why = NULL;
        assert(sb_netaddr_parse_ip(sb_slice_cstr(u->host), &again));
        assert(again.family == u->ip.family && memcmp(again.b, u->ip.b, 16) == 0);
        sb_netaddr_classify(&u->ip, &why);
        assert(why != NULL);
    } else {
        assert(!sb_netaddr_is_odd_ipv4(sb_slice_cstr(u->host)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_slice in = {(const char *)data, size};
    struct sb_netaddr_url u;
    struct sb_netaddr ip;
    struct sb_error err = {0};
    if (sb_netaddr_parse_url(in, &u, &err) == SB_OK)
        check_accepted(&u);
    else
        assert(strcmp(err.field, "base_url") == 0);
    if (sb_netaddr_parse_ip(in, &ip)) {
        const char *why = NULL;
        char text[48];
        sb_netaddr_classify(&ip, &why);
        sb_netaddr_format(&ip, text);
        assert(why != NULL);
    }
    (void)sb_netaddr_is_odd_ipv4(in);
    return 0;
}
