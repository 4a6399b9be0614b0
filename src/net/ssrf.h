/* SPDX-License-Identifier: MIT */
/*
 * ssrf.h - refuse base URLs that reach inside the network.
 *
 * A non-admin may give a provider base URL; without this guard the gateway
 * would fetch http://169.254.169.254/ or an internal admin page for them.
 * sb_ssrf_check_url parses the URL (core/netaddr.h), resolves the host with
 * getaddrinfo and refuses when ANY answer is not public: an attacker's DNS
 * may return a public and a private address at once.
 *
 * getaddrinfo blocks for as long as DNS takes: call this on the control
 * thread (or libuv's work queue), never on a data-plane loop.
 *
 * What this does not stop: DNS rebinding between this check and the
 * upstream connection (the name may resolve differently later). Closing
 * that needs the upstream client to connect to the checked address
 * (CURLOPT_RESOLVE); see the report that added this file.
 */
#ifndef SB_NET_SSRF_H
#define SB_NET_SSRF_H

#include <stdbool.h>

#include "core/err.h"
#include "core/netaddr.h"

/*
 * SB_OK when url is http(s) and every address its host resolves to is
 * public, or allow_private is set (an admin allowed it; odd forms and
 * malformed URLs are still refused). Otherwise SB_E_FORBIDDEN (field
 * "base_url") naming the address and its class, SB_E_BAD_REQUEST for a
 * malformed URL, SB_E_UNPROCESSABLE when the name does not resolve.
 * Blocking. Borrows url.
 */
sb_err sb_ssrf_check_url(const char *url, bool allow_private, struct sb_error *err);
/* The same decision for addresses already known (no I/O): SB_OK when all of
 * addrs[0..n) are public. host names the URL host in messages. */
sb_err sb_ssrf_check_addrs(const char *host, const struct sb_netaddr *addrs, size_t n,
                           struct sb_error *err);

#endif
