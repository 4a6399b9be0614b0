/* SPDX-License-Identifier: MIT */
/*
 * keys_test.c - master key sources and checks, AES-256-GCM round trips and
 * tampering, admin token set-up and verification.
 *
 * Key files are created in a fresh temporary directory per test; the
 * environment variables are set and cleared around each test.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "crypto/keys.h"

/* base64 of the 32 bytes 0x00..0x1f */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sb-keys-XXXXXX");
    assert_non_null(mkdtemp(dir));
    unsetenv(SB_KEYS_MASTER_ENV);
    unsetenv(SB_KEYS_ADMIN_ENV);
    return 0;
}

static int teardown(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof(path), "%s/k", dir);
    unlink(path);
    rmdir(dir);
    unsetenv(SB_KEYS_MASTER_ENV);
    unsetenv(SB_KEYS_ADMIN_ENV);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_env_key(void **state)
{
    struct sb_master_key *k = NULL;
    struct sb_error err = {0};
    (void)state;
    setenv(SB_KEYS_MASTER_ENV, KEY_B64, 1);
    assert_int_equal(sb_keys_master_load("/nonexistent/never-read", &k, &err), SB_OK);
    char id[17];
    sb_keys_master_id(k, id);
    assert_int_equal(strlen(id), 16);
    sb_keys_master_free(k);
}

static void test_env_key_bad(void **state)
{
    static const char *const bad[] = {
        "not base64!!",                                     /* junk */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",     /* 31 bytes */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", /* 34 bytes */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",     /* non-zero trailing bits */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",    /* wrong padding */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sb_master_key *k = NULL;
        struct sb_error err = {0};
        setenv(SB_KEYS_MASTER_ENV, bad[i], 1);
        assert_int_equal(sb_keys_master_load(NULL, &k, &err), SB_E_CONFIG);
        assert_null(k);
        assert_non_null(strstr(err.msg, SB_KEYS_MASTER_ENV));
        assert_non_null(strstr(err.msg, "32 bytes"));
        assert_null(strstr(err.msg, bad[i])); /* never echoed */
    }
    struct sb_master_key *k = NULL;
    struct sb_error err = {0};
    setenv(SB_KEYS_MASTER_ENV, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 1);
    sb_keys_master_load(NULL, &k, &err);
    assert_non_null(strstr(err.msg, "decodes to 31 bytes"));
}

static void test_key_file_created(void **state)
{
    char path[128];
    struct stat st;
    struct sb_master_key *k1 = NULL, *k2 = NULL;
    struct sb_error err = {0};
    char id1[17], id2[17];
    (void)state;
    snprintf(path, sizeof(path), "%s/k", dir);
    assert_int_equal(sb_keys_master_load(path, &k1, &err), SB_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(st.st_size >= 44); /* 44 chars of base64 + newline */
    /* The second start reads the same key back. */
    assert_int_equal(sb_keys_master_load(path, &k2, &err), SB_OK);
    sb_keys_master_id(k1, id1);
    sb_keys_master_id(k2, id2);
    assert_string_equal(id1, id2);
    sb_keys_master_free(k1);
    sb_keys_master_free(k2);
}

static void test_key_file_permissions(void **state)
{
    char path[128];
    struct sb_master_key *k = NULL;
    struct sb_error err = {0};
    (void)state;
    snprintf(path, sizeof(path), "%s/k", dir);
    write_file(path, KEY_B64 "\n", 0644);
    assert_int_equal(sb_keys_master_load(path, &k, &err), SB_E_CONFIG);
    assert_null(k);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(sb_keys_master_load(path, &k, &err), SB_E_CONFIG);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(sb_keys_master_load(path, &k, &err), SB_OK);
    sb_keys_master_free(k);
}

static void test_key_file_bad(void **state)
{
    char path[128];
    struct sb_master_key *k = NULL;
    struct sb_error err = {0};
    (void)state;
    snprintf(path, sizeof(path), "%s/k", dir);
    write_file(path, "c2hvcnQ=\n", 0600); /* "short" */
    assert_int_equal(sb_keys_master_load(path, &k, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "decodes to 5 bytes"));
    assert_non_null(strstr(err.msg, path));
}

static struct sb_master_key *test_key(void)
{
    struct sb_master_key *k = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_keys_master_from_base64(SB_SLICE(KEY_B64), "test", &k, &err), SB_OK);
    return k;
}

static void test_round_trip(void **state)
{
    struct sb_master_key *k = test_key();
    struct sb_error err = {0};
    static const char *const texts[] = {"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "", "x"};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char *ct = NULL, *ct2 = NULL;
        struct sb_secret *pt = NULL;
        assert_int_equal(sb_keys_encrypt(k, sb_slice_cstr(texts[i]), SB_SLICE("openai"), &ct, &err),
                         SB_OK);
        if (strlen(texts[i]) > 8)
            assert_null(strstr(ct, texts[i]));
        /* A fresh nonce each time: the same plaintext encrypts differently. */
        assert_int_equal(
            sb_keys_encrypt(k, sb_slice_cstr(texts[i]), SB_SLICE("openai"), &ct2, &err), SB_OK);
        assert_string_not_equal(ct, ct2);
        assert_int_equal(sb_keys_decrypt(k, sb_slice_cstr(ct), SB_SLICE("openai"), &pt, &err),
                         SB_OK);
        assert_true(sb_slice_eq_cstr(sb_secret_reveal(pt), texts[i]));
        sb_secret_free(pt);
        free(ct);
        free(ct2);
    }
    sb_keys_master_free(k);
}

static void test_tamper(void **state)
{
    struct sb_master_key *k = test_key(), *other = NULL;
    struct sb_error err = {0};
    struct sb_secret *pt = NULL;
    char *ct = NULL;
    (void)state;
    assert_int_equal(sb_keys_encrypt(k, SB_SLICE("sk-secret-value"), SB_SLICE("openai"), &ct, &err),
                     SB_OK);
    /* Wrong associated data (another provider's row). */
    assert_int_equal(sb_keys_decrypt(k, sb_slice_cstr(ct), SB_SLICE("groq"), &pt, &err),
                     SB_E_CONFIG);
    assert_null(pt);
    assert_non_null(strstr(err.msg, "failed authentication"));
    /* Every single-character change of the text is caught. */
    size_t n = strlen(ct);
    for (size_t i = 0; i < n; i++) {
        char saved = ct[i];
        ct[i] = saved == 'A' ? 'B' : 'A';
        assert_int_not_equal(sb_keys_decrypt(k, sb_slice_cstr(ct), SB_SLICE("openai"), &pt, &err),
                             SB_OK);
        assert_null(pt);
        ct[i] = saved;
    }
    /* Truncated, and garbage. */
    assert_int_equal(sb_keys_decrypt(k, (struct sb_slice){ct, 16}, SB_SLICE("openai"), &pt, &err),
                     SB_E_CONFIG);
    assert_int_equal(sb_keys_decrypt(k, SB_SLICE("%%%"), SB_SLICE("openai"), &pt, &err),
                     SB_E_CONFIG);
    /* Another master key. */
    assert_int_equal(
        sb_keys_master_from_base64(SB_SLICE("HxwdGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAAA="), "t",
                                   &other, &err),
        SB_OK);
    assert_int_equal(sb_keys_decrypt(other, sb_slice_cstr(ct), SB_SLICE("openai"), &pt, &err),
                     SB_E_CONFIG);
    free(ct);
    sb_keys_master_free(k);
    sb_keys_master_free(other);
}

static void test_admin_generated(void **state)
{
    struct sb_admin_setup a, b;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_keys_admin_setup(NULL, &a, &err), SB_OK);
    assert_true(a.changed);
    assert_non_null(a.generated);
    struct sb_slice tok = sb_secret_reveal(a.generated);
    assert_int_equal(tok.len, 9 + 32);
    assert_memory_equal(tok.p, "sb-admin-", 9);
    for (size_t i = 9; i < tok.len; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok.p[i]));
    assert_memory_equal(a.stored, "sha256:", 7);
    assert_int_equal(strlen(a.stored), 7 + 64);
    assert_true(sb_keys_check_admin(&a.hash, tok));
    /* Later starts: nothing printed, nothing written, same hash. */
    assert_int_equal(sb_keys_admin_setup(a.stored, &b, &err), SB_OK);
    assert_false(b.changed);
    assert_null(b.generated);
    assert_true(sb_keys_check_admin(&b.hash, tok));
    assert_string_equal(a.stored, b.stored);
    sb_secret_free(a.generated);
}

static void test_admin_env(void **state)
{
    struct sb_admin_setup a, b, c;
    struct sb_error err = {0};
    (void)state;
    setenv(SB_KEYS_ADMIN_ENV, "first-token-0123456789", 1);
    assert_int_equal(sb_keys_admin_setup(NULL, &a, &err), SB_OK);
    assert_true(a.changed);
    assert_null(a.generated);
    assert_true(sb_keys_check_admin(&a.hash, SB_SLICE("first-token-0123456789")));
    assert_false(sb_keys_check_admin(&a.hash, SB_SLICE("first-token-012345678")));
    assert_false(sb_keys_check_admin(&a.hash, SB_SLICE("")));
    /* Same token again: no write. */
    assert_int_equal(sb_keys_admin_setup(a.stored, &b, &err), SB_OK);
    assert_false(b.changed);
    /* A new token replaces the old hash. */
    setenv(SB_KEYS_ADMIN_ENV, "second-token-0123456789", 1);
    assert_int_equal(sb_keys_admin_setup(a.stored, &c, &err), SB_OK);
    assert_true(c.changed);
    assert_false(sb_keys_check_admin(&c.hash, SB_SLICE("first-token-0123456789")));
    assert_true(sb_keys_check_admin(&c.hash, SB_SLICE("second-token-0123456789")));
}

static void test_admin_malformed(void **state)
{
    struct sb_admin_setup a;
    struct sb_admin_hash h;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_keys_admin_setup("sha256:zz", &a, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, SB_KEYS_ADMIN_ENV));
    assert_false(sb_keys_admin_parse("md5:00", &h));
    assert_false(sb_keys_admin_parse(NULL, &h));
    assert_true(sb_keys_admin_parse(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &h));
    assert_true(sb_keys_check_admin(&h, SB_SLICE(""))); /* SHA-256 of "" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_key_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_generated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
