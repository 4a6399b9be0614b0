/* SPDX-License-Identifier: MIT */
/*
 * password_test.c - argon2id hashing: the encoded form and its parameters,
 * verification of right and wrong passwords, the rules' messages, stored
 * strings with hostile parameters, and the dummy path costing a real
 * verification (min of three runs each, loose bound: it must do the work,
 * not a precise time).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "crypto/password.h"

static const struct sb_password_params cheap = {.m_kib = 64, .t = 1, .p = 1};

static void test_default_params(void **state)
{
    char h[SB_PASSWORD_HASH_MAX];
    struct sb_password_params p;
    struct sb_error err = {0};
    struct timespec a, b;
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(sb_password_hash(SB_SLICE("correct horse battery"), h, &err), SB_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "argon2id m=19456 t=2 p=1: %.1f ms per hash on this machine\n",
            (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    assert_memory_equal(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
    assert_true(sb_password_params_of(h, &p));
    assert_int_equal(p.m_kib, 19456);
    assert_int_equal(p.t, 2);
    assert_int_equal(p.p, 1);
    assert_false(sb_password_needs_rehash(h));
    assert_true(sb_password_verify(h, SB_SLICE("correct horse battery")));
    assert_false(sb_password_verify(h, SB_SLICE("correct horse batterY")));
}

static void test_verify(void **state)
{
    char h1[SB_PASSWORD_HASH_MAX], h2[SB_PASSWORD_HASH_MAX];
    (void)state;
    assert_int_equal(sb_password_hash_with(&cheap, SB_SLICE("hunter2hunter2"), h1, NULL), SB_OK);
    assert_int_equal(sb_password_hash_with(&cheap, SB_SLICE("hunter2hunter2"), h2, NULL), SB_OK);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_true(sb_password_verify(h1, SB_SLICE("hunter2hunter2")));
    assert_true(sb_password_verify(h2, SB_SLICE("hunter2hunter2")));
    assert_false(sb_password_verify(h1, SB_SLICE("hunter2hunter")));
    assert_false(sb_password_verify(h1, SB_SLICE("")));
    assert_true(sb_password_needs_rehash(h1));
    /* A binary-safe slice: the byte after the password does not count. */
    assert_false(sb_password_verify(h1, (struct sb_slice){"hunter2hunter2X", 15}));
}

static void test_rules(void **state)
{
    static const struct {
        const char *pw;
        size_t len;
        const char *msg; /* a fragment of the message; NULL = accepted */
    } cases[] = {
        {"", 0, "too short"},           {"1234567", 7, "too short"}, {"12345678", 8, NULL},
        {"        ", 8, "only spaces"}, {"abc\0defgh", 9, "NUL"},    {"pässwörd", 10, NULL},
    };
    char big[SB_PASSWORD_MAX + 2];
    struct sb_error err = {0};
    char h[SB_PASSWORD_HASH_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        sb_err rc = sb_password_check_rules((struct sb_slice){cases[i].pw, cases[i].len}, &err);
        if (!cases[i].msg) {
            assert_int_equal(rc, SB_OK);
            continue;
        }
        assert_int_equal(rc, SB_E_BAD_REQUEST);
        assert_string_equal(err.field, "password");
        assert_non_null(strstr(err.msg, cases[i].msg));
    }
    memset(big, 'a', sizeof(big));
    assert_int_equal(sb_password_check_rules((struct sb_slice){big, SB_PASSWORD_MAX}, NULL), SB_OK);
    assert_int_equal(sb_password_check_rules((struct sb_slice){big, SB_PASSWORD_MAX + 1}, &err),
                     SB_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "too long"));
    /* hash applies the rules too, and writes nothing usable on failure */
    assert_int_equal(sb_password_hash_with(&cheap, SB_SLICE("short"), h, &err), SB_E_BAD_REQUEST);
    assert_string_equal(h, "");
    /* the message never contains the password */
    assert_null(strstr(err.msg, "short\""));
}

static void test_hostile_stored(void **state)
{
    char h[SB_PASSWORD_HASH_MAX], evil[SB_PASSWORD_HASH_MAX + 16];
    static const char *const bad[] = {
        NULL,
        "",
        "plain",
        "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=100,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=1,p=64$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1",
        "$argon2id$v=19$m=64,t=1,p=1$!!!!$aGFzaGhhc2hoYXNoaGFzaA",
    };
    struct sb_password_params p;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(sb_password_verify(bad[i], SB_SLICE("whatever1")));
    assert_false(sb_password_params_of("$argon2id$v=19$m=1,t=1", &p));
    /* a truncated real hash fails */
    assert_int_equal(sb_password_hash_with(&cheap, SB_SLICE("hunter2hunter2"), h, NULL), SB_OK);
    h[strlen(h) - 3] = '\0';
    assert_false(sb_password_verify(h, SB_SLICE("hunter2hunter2")));
    /* an over-long stored string is refused before argon2 sees it */
    memset(evil, 'A', sizeof(evil) - 1);
    evil[sizeof(evil) - 1] = '\0';
    memcpy(evil, "$argon2id$v=19$m=64,t=1,p=1$", 28);
    assert_false(sb_password_verify(evil, SB_SLICE("whatever1")));
}

static double ms_of(void (*fn)(const char *), const char *arg)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        fn(arg);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        best = ms < best ? ms : best;
    }
    return best;
}

static void run_dummy(const char *pw)
{
    sb_password_verify_dummy(sb_slice_cstr(pw));
}

static char real_hash[SB_PASSWORD_HASH_MAX];

static void run_real(const char *pw)
{
    assert_false(sb_password_verify(real_hash, sb_slice_cstr(pw)));
}

static void test_dummy_costs_a_verify(void **state)
{
    (void)state;
    assert_int_equal(sb_password_hash(SB_SLICE("the real password"), real_hash, NULL), SB_OK);
    sb_password_verify_dummy(SB_SLICE("warm up")); /* the first call makes the dummy hash */
    double dummy = ms_of(run_dummy, "guess-guess"), real = ms_of(run_real, "guess-guess");
    fprintf(stderr, "verify: real %.1f ms, dummy %.1f ms\n", real, dummy);
    assert_true(dummy > real / 3 && dummy < real * 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_params),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_hostile_stored),
        cmocka_unit_test(test_dummy_costs_a_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
