/* SPDX-License-Identifier: MIT */
/*
 * netaddr_test.c - the SSRF guard's pure half: a table of addresses with
 * the class each must get (IPv4 ranges and their edges, IPv6 ranges, and
 * IPv4 hidden inside IPv6 forms), strict IP literal parsing, the odd IPv4
 * spellings resolvers accept, and a table of base URLs with the host, port
 * or refusal each must give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/netaddr.h"

#define PUB SB_NETADDR_PUBLIC
#define LOOP SB_NETADDR_LOOPBACK
#define PRIV SB_NETADDR_PRIVATE
#define LINK SB_NETADDR_LINK_LOCAL
#define CGN SB_NETADDR_CGNAT
#define UNSP SB_NETADDR_UNSPECIFIED
#define MCAST SB_NETADDR_MULTICAST
#define RES SB_NETADDR_RESERVED

static const struct {
    const char *ip;
    enum sb_netaddr_class cls;
} addrs[] = {
    {"8.8.8.8", PUB},
    {"1.1.1.1", PUB},
    {"104.18.6.192", PUB},
    {"127.0.0.1", LOOP},
    {"127.255.255.254", LOOP},
    {"126.255.255.255", PUB},
    {"128.0.0.0", PUB},
    {"10.0.0.1", PRIV},
    {"10.255.255.255", PRIV},
    {"11.0.0.0", PUB},
    {"9.255.255.255", PUB},
    {"172.16.0.1", PRIV},
    {"172.31.255.255", PRIV},
    {"172.15.255.255", PUB},
    {"172.32.0.0", PUB},
    {"192.168.1.1", PRIV},
    {"192.169.0.1", PUB},
    {"169.254.169.254", LINK},
    {"169.254.0.1", LINK},
    {"169.253.255.255", PUB},
    {"100.64.0.1", CGN},
    {"100.127.255.255", CGN},
    {"100.63.255.255", PUB},
    {"100.128.0.0", PUB},
    {"0.0.0.0", UNSP},
    {"0.1.2.3", UNSP},
    {"224.0.0.1", MCAST},
    {"239.255.255.250", MCAST},
    {"255.255.255.255", MCAST},
    {"240.0.0.1", RES},
    {"192.0.2.10", RES},
    {"198.18.0.1", RES},
    {"198.51.100.7", RES},
    {"203.0.113.9", RES},
    {"192.0.0.8", RES},
    {"::1", LOOP},
    {"::", UNSP},
    {"fe80::1", LINK},
    {"febf:ffff::1", LINK},
    {"fc00::1", PRIV},
    {"fd12:3456:789a::1", PRIV},
    {"fec0::1", PRIV},
    {"ff02::1", MCAST},
    {"2001:4860:4860::8888", PUB},
    {"2606:4700:4700::1111", PUB},
    {"2001:db8::1", RES},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", RES},
    {"::ffff:127.0.0.1", LOOP},
    {"::ffff:169.254.169.254", LINK},
    {"::ffff:10.1.2.3", PRIV},
    {"::ffff:8.8.8.8", PUB},
    {"::ffff:7f00:1", LOOP},
    {"::127.0.0.1", LOOP},
    {"::10.0.0.1", PRIV},
    {"64:ff9b::7f00:1", LOOP},
    {"64:ff9b::a9fe:a9fe", LINK},
    {"64:ff9b::808:808", PUB},
    {"2002:7f00:0001::1", LOOP},
    {"2002:c0a8:0101::1", PRIV},
    {"2002:0808:0808::1", PUB},
    {"100::1", RES},
    {"4000::1", RES},
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct sb_netaddr a;
        const char *why = NULL;
        if (!sb_netaddr_parse_ip(sb_slice_cstr(addrs[i].ip), &a))
            fail_msg("did not parse: %s", addrs[i].ip);
        enum sb_netaddr_class c = sb_netaddr_classify(&a, &why);
        if (c != addrs[i].cls)
            fail_msg("%s: class %d, want %d (%s)", addrs[i].ip, c, addrs[i].cls, why);
        assert_non_null(why);
    }
    struct sb_netaddr a;
    const char *why = NULL;
    assert_true(sb_netaddr_parse_ip(SB_SLICE("169.254.169.254"), &a));
    sb_netaddr_classify(&a, &why);
    assert_non_null(strstr(why, "metadata"));
}

static void test_parse_ip(void **state)
{
    static const char *const bad[] = {
        "",         "1.2.3",      "1.2.3.4.5",    "256.1.1.1", "01.2.3.4",
        "1.2.3.04", "0x7f.0.0.1", "2130706433",   "1.2.3.4 ",  " 1.2.3.4",
        "1..2.3",   "1.2.3.",     "fe80::1%eth0", "[::1]",     "::1::2",
        "12345::",  "1.2.3.-4",   "localhost",
    };
    struct sb_netaddr a;
    char text[48];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sb_netaddr_parse_ip(sb_slice_cstr(bad[i]), &a))
            fail_msg("parsed: %s", bad[i]);
    assert_true(sb_netaddr_parse_ip(SB_SLICE("0.0.0.0"), &a));
    assert_int_equal(a.family, 4);
    assert_true(sb_netaddr_parse_ip(SB_SLICE("255.255.255.255"), &a));
    assert_true(sb_netaddr_parse_ip(SB_SLICE("::FFFF:1.2.3.4"), &a));
    assert_int_equal(a.family, 6);
    sb_netaddr_format(&a, text);
    assert_string_equal(text, "::ffff:1.2.3.4");
}

static void test_odd_ipv4(void **state)
{
    static const char *const odd[] = {
        "2130706433", "0x7f000001",  "0x7f.1",    "0177.0.0.1",   "127.1",
        "127.0.1",    "0x7f.0.0.1",  "1.2.3.4.5", "017700000001", "0x",
        "1.2.3.0x4",  "example.123", "00.0.0.0",
    };
    static const char *const fine[] = {
        "127.0.0.1", "8.8.8.8",  "example.com", "api.openai.com", "0x7f.example",
        "a1",        "1.2.3.4.", "127.0.0.1.",  "host-0x1f.net",  "123.example",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        if (!sb_netaddr_is_odd_ipv4(sb_slice_cstr(odd[i])) && strcmp(odd[i], "127.0.0.1.") != 0)
            fail_msg("not odd: %s", odd[i]);
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
        if (sb_netaddr_is_odd_ipv4(sb_slice_cstr(fine[i])))
            fail_msg("odd: %s", fine[i]);
}

static const struct {
    const char *url;
    const char *host; /* NULL = refused */
    int port;
    bool is_ip;
    const char *why; /* fragment of the refusal */
} urls[] = {
    {"https://api.openai.com/v1", "api.openai.com", 443, false, NULL},
    {"http://Example.COM", "example.com", 80, false, NULL},
    {"HTTPS://example.com:8443/x?y#z", "example.com", 8443, false, NULL},
    {"http://example.com.:80/", "example.com", 80, false, NULL},
    {"http://8.8.8.8/", "8.8.8.8", 80, true, NULL},
    {"http://[2001:db8::1]:8080/", "2001:db8::1", 8080, true, NULL},
    {"http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", 80, true, NULL},
    {"http://localhost:11434", "localhost", 11434, false, NULL},
    {"http://2130706433/", NULL, 0, false, "non-standard"},
    {"http://0x7f.1/", NULL, 0, false, "non-standard"},
    {"http://0177.0.0.1/", NULL, 0, false, "non-standard"},
    {"http://127.1/", NULL, 0, false, "non-standard"},
    {"ftp://example.com/", NULL, 0, false, "http:// or https://"},
    {"file:///etc/passwd", NULL, 0, false, "http:// or https://"},
    {"gopher://127.0.0.1/", NULL, 0, false, "http:// or https://"},
    {"//example.com", NULL, 0, false, "http:// or https://"},
    {"http://user:pw@example.com/", NULL, 0, false, "user:password@"},
    {"http://example.com@127.0.0.1/", NULL, 0, false, "user:password@"},
    {"http://example.com\\@127.0.0.1/", NULL, 0, false, "backslash"},
    {"http://exa mple.com/", NULL, 0, false, "space"},
    {"http://example.com\t/", NULL, 0, false, "control"},
    {"http:///path", NULL, 0, false, "no host"},
    {"http://", NULL, 0, false, "no host"},
    {"http://:80/", NULL, 0, false, "no host"},
    {"http://exa%6dple.com/", NULL, 0, false, "percent"},
    {"http://[fe80::1%25eth0]/", NULL, 0, false, "zone"},
    {"http://[::1/", NULL, 0, false, "unclosed"},
    {"http://[1.2.3.4]/", NULL, 0, false, "invalid IPv6"},
    {"http://[::1]x/", NULL, 0, false, "junk"},
    {"http://example.com:0/", NULL, 0, false, "port"},
    {"http://example.com:65536/", NULL, 0, false, "port"},
    {"http://example.com:/", NULL, 0, false, "port"},
    {"http://example.com:8o/", NULL, 0, false, "port"},
    {"http://exa..mple.com/", NULL, 0, false, "empty label"},
    {"http://.example.com/", NULL, 0, false, "empty label"},
    {"http://ex\xc3\xa4mple.com/", NULL, 0, false, "punycode"},
};

static void test_urls(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct sb_netaddr_url u;
        struct sb_error err = {0};
        sb_err rc = sb_netaddr_parse_url(sb_slice_cstr(urls[i].url), &u, &err);
        if (urls[i].host) {
            if (rc != SB_OK)
                fail_msg("%s: refused: %s", urls[i].url, err.msg);
            assert_string_equal(u.host, urls[i].host);
            assert_int_equal(u.port, urls[i].port);
            assert_int_equal(u.is_ip, urls[i].is_ip);
            continue;
        }
        if (rc != SB_E_BAD_REQUEST)
            fail_msg("%s: accepted as host %s", urls[i].url, u.host);
        assert_string_equal(err.field, "base_url");
        if (!strstr(err.msg, urls[i].why))
            fail_msg("%s: message '%s' lacks '%s'", urls[i].url, err.msg, urls[i].why);
    }
    char big[2100];
    struct sb_netaddr_url u;
    memset(big, 'a', sizeof(big));
    memcpy(big, "http://", 7);
    assert_int_equal(sb_netaddr_parse_url((struct sb_slice){big, sizeof(big)}, &u, NULL),
                     SB_E_BAD_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_parse_ip),
        cmocka_unit_test(test_odd_ipv4),
        cmocka_unit_test(test_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
