/* SPDX-License-Identifier: MIT */
/*
 * netaddr.h - URL host parsing and IP address classification (pure).
 *
 * The SSRF guard's decisions live here, with no I/O: parsing the host of
 * a base URL, strict IP literal parsing, and classifying an address as
 * public or as loopback, private, link-local (the cloud metadata address
 * 169.254.169.254 included), CGNAT, unspecified, multicast or reserved,
 * looking through IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms
 * to the IPv4 address inside. It sits in core so that every layer can use
 * it: net/ssrf.c resolves names and classifies each answer, and the
 * upstream client may later pin the checked address.
 *
 * Odd IPv4 spellings that resolvers accept (http://2130706433/,
 * http://0x7f.1/, http://0177.0.0.1/) are refused outright, whatever they
 * point to: only canonical dotted quads are IPv4 literals here.
 */
#ifndef SB_CORE_NETADDR_H
#define SB_CORE_NETADDR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

enum sb_netaddr_class {
    SB_NETADDR_PUBLIC = 0,
    SB_NETADDR_LOOPBACK,    /* 127/8, ::1 */
    SB_NETADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
    SB_NETADDR_LINK_LOCAL,  /* 169.254/16 (metadata), fe80::/10 */
    SB_NETADDR_CGNAT,       /* 100.64/10 */
    SB_NETADDR_UNSPECIFIED, /* 0/8, :: */
    SB_NETADDR_MULTICAST,   /* 224/4, ff00::/8, 255.255.255.255 */
    SB_NETADDR_RESERVED,    /* 240/4, benchmark, protocol assignments, documentation, ... */
};

struct sb_netaddr {
    int family;          /* 4 or 6 */
    unsigned char b[16]; /* network order; IPv4 uses b[0..4) */
};

struct sb_netaddr_url {
    bool https;     /* scheme https (else http) */
    char host[256]; /* lowercase, no brackets, no trailing dot */
    bool is_ip;     /* host is an IP literal (then ip is set) */
    struct sb_netaddr ip;
    uint16_t port; /* explicit port, or 80/443 */
};

/*
 * Classifies a; *why (may be NULL) gets a static phrase such as
 * "loopback (127.0.0.0/8)". IPv6 forms that embed an IPv4 address are
 * classified by that address.
 */
enum sb_netaddr_class sb_netaddr_classify(const struct sb_netaddr *a, const char **why);
/* Parses a canonical dotted quad or an IPv6 literal (no brackets, no zone).
 * false for anything else, odd IPv4 forms included. Borrows s. */
bool sb_netaddr_parse_ip(struct sb_slice s, struct sb_netaddr *out);
/* true when s would be read as an IPv4 number by a WHATWG URL parser or
 * inet_aton (its last label is decimal or 0x-hex) without being a
 * canonical dotted quad. */
bool sb_netaddr_is_odd_ipv4(struct sb_slice s);
/*
 * Parses an http(s) URL's authority into out. Refuses (SB_E_BAD_REQUEST,
 * field "base_url", with a reason) other schemes, user:password@, empty
 * hosts, percent-encoding or backslashes in the host, IPv6 zone ids, odd
 * IPv4 forms, bad ports, control characters and URLs over 2048 bytes.
 * Borrows url.
 */
sb_err sb_netaddr_parse_url(struct sb_slice url, struct sb_netaddr_url *out, struct sb_error *err);
/* The address as text (inet_ntop form) into out. */
void sb_netaddr_format(const struct sb_netaddr *a, char out[48]);

#endif
