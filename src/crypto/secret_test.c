/* SPDX-License-Identifier: MIT */
/*
 * secret_test.c - the masked display form of a credential: the vendor's
 * public prefix and the last four characters, never more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/secret.h"

static void check(const char *key, const char *want)
{
    char out[32];
    struct sb_secret *s = sb_secret_new(key, strlen(key));
    sb_secret_mask(s, out);
    assert_string_equal(out, want);
    sb_secret_free(s);
}

static void test_mask(void **state)
{
    (void)state;
    check("sk-proj-abcdefghijklmnop1234", "sk-\xe2\x80\xa6"
                                          "1234");
    check("gsk_abcdefghijklmnop5555", "gsk_\xe2\x80\xa6"
                                      "5555");
    check("nvapi-abcdefghijklmnop9999", "nvapi-\xe2\x80\xa6"
                                        "9999");
    check("AIzaSyABCDEFGHIJKLMN7777", "\xe2\x80\xa6"
                                      "7777"); /* no delimiter: no prefix */
    check("abcdefghijklm-xyz0", "\xe2\x80\xa6"
                                "xyz0"); /* prefix too long */
    check("ab-cdef", "****");            /* too short to show anything */
    check("sk-12345678", "****");        /* under 12: nothing */
    check("sk-1234567890", "\xe2\x80\xa6"
                           "7890"); /* no room for the prefix */
    check("hf_1234", "****");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_mask)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
