/* SPDX-License-Identifier: MIT */
/*
 * ssrf_test.c - the SSRF guard end to end, with the resolver: loopback
 * names and literals are refused with the address and its class in the
 * message, allow_private lets an admin through (but never a malformed
 * URL), a name that does not resolve says so, and a mixed answer (one
 * public, one private address) is refused. Uses only names that resolve
 * without a network: localhost (/etc/hosts) and the reserved .invalid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "net/ssrf.h"

static void refused(const char *url, sb_err code, const char *fragment)
{
    struct sb_error err = {0};
    sb_err rc = sb_ssrf_check_url(url, false, &err);
    if (rc != code)
        fail_msg("%s: got %d (%s), want %d", url, rc, err.msg, code);
    assert_string_equal(err.field, "base_url");
    if (!strstr(err.msg, fragment))
        fail_msg("%s: message '%s' lacks '%s'", url, err.msg, fragment);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("http://127.0.0.1:8080/v1", SB_E_FORBIDDEN, "127.0.0.1, a loopback");
    refused("http://169.254.169.254/latest/meta-data", SB_E_FORBIDDEN, "metadata");
    refused("http://10.0.0.5/", SB_E_FORBIDDEN, "private (10.0.0.0/8)");
    refused("http://[::1]:11434/", SB_E_FORBIDDEN, "loopback (::1)");
    refused("http://[::ffff:192.168.0.1]/", SB_E_FORBIDDEN, "private (192.168.0.0/16)");
    refused("http://[fe80::1]/", SB_E_FORBIDDEN, "link-local");
    refused("http://100.100.100.200/", SB_E_FORBIDDEN, "carrier-grade NAT");
    refused("http://0.0.0.0:8080/", SB_E_FORBIDDEN, "unspecified");
    refused("http://localhost:11434/", SB_E_FORBIDDEN, "loopback name");
    refused("http://api.localhost/", SB_E_FORBIDDEN, "loopback name");
    refused("http://2130706433/", SB_E_BAD_REQUEST, "non-standard");
    refused("http://0x7f.1/", SB_E_BAD_REQUEST, "non-standard");
    refused("http://nothing-here.invalid/", SB_E_UNPROCESSABLE, "does not resolve");
}

static void test_public_and_admin(void **state)
{
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_ssrf_check_url("https://8.8.8.8/v1", false, &err), SB_OK);
    assert_int_equal(sb_ssrf_check_url("http://[2606:4700:4700::1111]/", false, &err), SB_OK);
    /* an admin may allow internal addresses ... */
    assert_int_equal(sb_ssrf_check_url("http://127.0.0.1:11434", true, &err), SB_OK);
    assert_int_equal(sb_ssrf_check_url("http://localhost:11434", true, &err), SB_OK);
    /* ... but never malformed or ambiguous URLs */
    assert_int_equal(sb_ssrf_check_url("http://0x7f.1/", true, &err), SB_E_BAD_REQUEST);
    assert_int_equal(sb_ssrf_check_url("http://a@b/", true, &err), SB_E_BAD_REQUEST);
}

static void test_every_answer_checked(void **state)
{
    struct sb_netaddr two[2];
    struct sb_error err = {0};
    (void)state;
    assert_true(sb_netaddr_parse_ip(SB_SLICE("93.184.216.34"), &two[0]));
    assert_true(sb_netaddr_parse_ip(SB_SLICE("192.168.1.20"), &two[1]));
    assert_int_equal(sb_ssrf_check_addrs("rebind.example", two, 1, &err), SB_OK);
    assert_int_equal(sb_ssrf_check_addrs("rebind.example", two, 2, &err), SB_E_FORBIDDEN);
    assert_non_null(strstr(err.msg, "rebind.example resolves to 192.168.1.20"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_public_and_admin),
        cmocka_unit_test(test_every_answer_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
