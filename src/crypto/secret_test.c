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

#define ELL "\xe2\x80\xa6" /* the ellipsis of the masked form */

static void test_mask(void **state)
{
    static const char *const cases[][2] = {
        {"sk-proj-abcdefghijklmnop1234", "sk-" ELL "1234"},
        {"gsk_abcdefghijklmnop5555", "gsk_" ELL "5555"},
        {"nvapi-abcdefghijklmnop9999", "nvapi-" ELL "9999"},
        {"AIzaSyABCDEFGHIJKLMN7777", ELL "7777"}, /* no delimiter: no prefix */
        {"abcdefghijklm-xyz0", ELL "xyz0"},       /* prefix too long */
        {"sk-1234567890", "sk-" ELL "7890"},      /* 6 of 13 hidden */
        {"nvapi-12345678", ELL "5678"},           /* no room for the prefix */
        {"sk-12345678", "****"},                  /* under 12: nothing */
        {"ab-cdef", "****"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(cases[i][0], cases[i][1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_mask)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
