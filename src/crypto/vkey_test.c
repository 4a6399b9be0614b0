/* SPDX-License-Identifier: MIT */
/*
 * vkey_test.c - virtual keys (format, randomness, hash round trip, shape
 * checks, display forms) and session tokens with their derived CSRF
 * tokens (same session → same token, another session → another, tampered
 * or foreign tokens refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/session.h"
#include "crypto/vkey.h"

static void test_generate(void **state)
{
    char k1[SB_VKEY_LEN + 1], k2[SB_VKEY_LEN + 1];
    (void)state;
    assert_int_equal(sb_vkey_generate(k1, NULL), SB_OK);
    assert_int_equal(sb_vkey_generate(k2, NULL), SB_OK);
    assert_int_equal(strlen(k1), 49);
    assert_memory_equal(k1, "sk-sb-", 6);
    assert_string_not_equal(k1, k2);
    assert_true(sb_vkey_looks_valid(sb_slice_cstr(k1)));
    /* the last character carries 4 bits: its low 2 bits are zero, so it is
     * one of the 16 characters whose alphabet index is a multiple of 4 */
    assert_non_null(strchr("AEIMQUYcgkosw048", k1[48]));
}

static void test_looks_valid(void **state)
{
    static const char *const bad[] = {
        "",
        "sk-sb-",
        "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 */
        "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 */
        "sk-sc-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "SK-SB-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "sk-sb-AAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA",
        "sb-admin-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    (void)state;
    assert_true(sb_vkey_looks_valid(SB_SLICE("sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_a")));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(sb_vkey_looks_valid(sb_slice_cstr(bad[i])));
    /* a NUL inside is refused, not read as a shorter string */
    char withnul[SB_VKEY_LEN + 1] = "sk-sb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    withnul[20] = '\0';
    assert_false(sb_vkey_looks_valid((struct sb_slice){withnul, SB_VKEY_LEN}));
}

static void test_hash(void **state)
{
    char key[SB_VKEY_LEN + 1], text[SB_HASH_TEXT_LEN + 1], text2[SB_HASH_TEXT_LEN + 1];
    struct sb_vkey_hash h, back, other;
    (void)state;
    /* SHA-256("abc"), the FIPS 180-2 test vector */
    sb_vkey_hash(SB_SLICE("abc"), &h);
    sb_vkey_hash_format(&h, text);
    assert_string_equal(text,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(sb_vkey_generate(key, NULL), SB_OK);
    sb_vkey_hash(sb_slice_cstr(key), &h);
    sb_vkey_hash_format(&h, text);
    sb_vkey_hash_text(sb_slice_cstr(key), text2);
    assert_string_equal(text, text2);
    assert_true(sb_vkey_hash_parse(text, &back));
    assert_true(sb_vkey_hash_eq(&h, &back));
    key[10] ^= 1;
    sb_vkey_hash(sb_slice_cstr(key), &other);
    assert_false(sb_vkey_hash_eq(&h, &other));
    assert_false(sb_vkey_hash_parse("sha256:", &back));
    assert_false(sb_vkey_hash_parse(NULL, &back));
    assert_false(sb_vkey_hash_parse(
        "sha1:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &back));
    assert_false(sb_vkey_hash_parse(
        "sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &back));
    /* the stored form never contains the key */
    assert_null(strstr(text, key + 6));
}

static void test_display(void **state)
{
    char key[SB_VKEY_LEN + 1], prefix[SB_VKEY_PREFIX_LEN + 1], masked[32];
    (void)state;
    assert_int_equal(sb_vkey_generate(key, NULL), SB_OK);
    sb_vkey_prefix(sb_slice_cstr(key), prefix);
    assert_int_equal(strlen(prefix), 10);
    assert_memory_equal(prefix, key, 10);
    sb_vkey_mask(prefix, masked);
    assert_memory_equal(masked, key, 10);
    assert_string_equal(masked + 10, "\xe2\x80\xa6");
    sb_vkey_prefix(SB_SLICE("sk-"), prefix);
    assert_string_equal(prefix, "sk-");
}

static void test_session_and_csrf(void **state)
{
    char t1[SB_TOKEN_LEN + 1], t2[SB_TOKEN_LEN + 1], c1[SB_CSRF_LEN + 1], c1b[SB_CSRF_LEN + 1],
        c2[SB_CSRF_LEN + 1], h1[SB_HASH_TEXT_LEN + 1];
    (void)state;
    assert_int_equal(sb_session_token_new(t1, NULL), SB_OK);
    assert_int_equal(sb_session_token_new(t2, NULL), SB_OK);
    assert_int_equal(strlen(t1), 43);
    assert_string_not_equal(t1, t2);
    assert_true(sb_session_token_looks_valid(sb_slice_cstr(t1)));
    assert_false(sb_session_token_looks_valid(SB_SLICE("short")));
    assert_false(
        sb_session_token_looks_valid(SB_SLICE("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;")));
    sb_session_token_hash(sb_slice_cstr(t1), h1);
    assert_memory_equal(h1, "sha256:", 7);
    assert_null(strstr(h1, t1));

    sb_session_csrf(sb_slice_cstr(t1), c1);
    sb_session_csrf(sb_slice_cstr(t1), c1b);
    sb_session_csrf(sb_slice_cstr(t2), c2);
    assert_int_equal(strlen(c1), 43);
    assert_string_equal(c1, c1b); /* same session, same token (page reloads) */
    assert_string_not_equal(c1, c2);
    assert_string_not_equal(c1, t1); /* not the cookie itself */
    assert_true(sb_vkey_is_b64url(sb_slice_cstr(c1), 43));
    assert_true(sb_session_csrf_check(sb_slice_cstr(t1), sb_slice_cstr(c1)));
    assert_false(sb_session_csrf_check(sb_slice_cstr(t2), sb_slice_cstr(c1)));
    assert_false(sb_session_csrf_check(sb_slice_cstr(t1), SB_SLICE("")));
    assert_false(sb_session_csrf_check(sb_slice_cstr(t1), (struct sb_slice){c1, 42}));
    c1[5] = c1[5] == 'A' ? 'B' : 'A';
    assert_false(sb_session_csrf_check(sb_slice_cstr(t1), sb_slice_cstr(c1)));
    /* a malformed session token has no valid CSRF token */
    assert_false(sb_session_csrf_check(SB_SLICE("x"), sb_slice_cstr(c2)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_looks_valid),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_display),
        cmocka_unit_test(test_session_and_csrf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
