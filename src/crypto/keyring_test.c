/* SPDX-License-Identifier: MIT */
/*
 * keyring_test.c - master key rotation, crashed at every step.
 *
 * A small table of credentials (ciphertext, key id, row identity as AAD)
 * stands in for provider_credentials; "the transaction" re-encrypts a copy
 * of the table and swaps it in only on commit, as the store's one
 * transaction does. A crash is simulated by dropping the keyring without
 * running the later steps and loading a new one from the files, the way a
 * restarted process would. After each crash point every credential must
 * still decrypt to its original plaintext, and completing the rotation
 * must leave only the new key needed. Env mode is tested the same way.
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

#include "crypto/keys.h"

#define NROWS 4
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

static const char *const plain[NROWS] = {"sk-openai-aaaa", "sk-ant-bbbb", "gsk_cccc",
                                         "a-much-longer-credential-dddd"};
static const char *const aad[NROWS] = {"provider:1", "provider:2", "provider:3:user:ann",
                                       "provider:4"};

struct row {
    char *ct;
    char key_id[17];
};

static char dir[64], path[96], new_path[112], tmp_path[112];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sb-keyring-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/switchboard.key", dir);
    snprintf(new_path, sizeof(new_path), "%s.new", path);
    snprintf(tmp_path, sizeof(tmp_path), "%s.new.tmp", path);
    unsetenv(SB_KEYS_MASTER_ENV);
    unsetenv(SB_KEYS_NEW_MASTER_ENV);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    unlink(new_path);
    unlink(tmp_path);
    rmdir(dir);
    unsetenv(SB_KEYS_MASTER_ENV);
    unsetenv(SB_KEYS_NEW_MASTER_ENV);
    return 0;
}

static struct sb_keyring *load(void)
{
    struct sb_keyring *kr = NULL;
    struct sb_error err = {0};
    if (sb_keys_keyring_load(path, &kr, &err) != SB_OK)
        fail_msg("keyring load: %s", err.msg);
    return kr;
}

static void seed(struct sb_keyring *kr, struct row *t)
{
    for (int i = 0; i < NROWS; i++)
        assert_int_equal(sb_keys_keyring_encrypt(kr, sb_slice_cstr(plain[i]), sb_slice_cstr(aad[i]),
                                                 &t[i].ct, t[i].key_id, NULL),
                         SB_OK);
}

/* Every row decrypts to its plaintext with kr. */
static void all_decrypt(const struct sb_keyring *kr, const struct row *t)
{
    for (int i = 0; i < NROWS; i++) {
        struct sb_secret *s = NULL;
        struct sb_error err = {0};
        if (sb_keys_keyring_decrypt(kr, t[i].key_id, sb_slice_cstr(t[i].ct), sb_slice_cstr(aad[i]),
                                    &s, &err) != SB_OK)
            fail_msg("row %d (key %s): %s", i, t[i].key_id, err.msg);
        assert_true(sb_slice_eq_cstr(sb_secret_reveal(s), plain[i]));
        sb_secret_free(s);
    }
}

/* The store's transaction: re-encrypt a copy, swap it in only when commit. */
static void reencrypt(const struct sb_keyring *kr, struct row *t, bool commit)
{
    struct row copy[NROWS];
    for (int i = 0; i < NROWS; i++) {
        char *out = NULL;
        struct sb_error err = {0};
        if (sb_keys_keyring_reencrypt(kr, t[i].key_id, sb_slice_cstr(t[i].ct),
                                      sb_slice_cstr(aad[i]), &out, copy[i].key_id, &err) != SB_OK)
            fail_msg("reencrypt row %d: %s", i, err.msg);
        copy[i].ct = out ? out : strdup(t[i].ct);
        /* no plaintext in the new ciphertext */
        assert_null(strstr(copy[i].ct, plain[i]));
    }
    for (int i = 0; i < NROWS; i++) {
        if (commit) {
            free(t[i].ct);
            t[i] = copy[i];
        } else {
            free(copy[i].ct);
        }
    }
}

static void free_rows(struct row *t)
{
    for (int i = 0; i < NROWS; i++)
        free(t[i].ct);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* After a restart: finish whatever is pending, then only one key is needed. */
static void complete_and_check(struct row *t, const char *want_id)
{
    struct sb_keyring *kr = load();
    char id[17];
    all_decrypt(kr, t);
    if (sb_keys_keyring_pending(kr)) {
        assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK); /* resumes */
        reencrypt(kr, t, true);
        assert_int_equal(sb_keys_keyring_finish_rotation(kr, NULL), SB_OK);
    }
    assert_false(sb_keys_keyring_pending(kr));
    sb_keys_keyring_active_id(kr, id);
    if (want_id)
        assert_string_equal(id, want_id);
    for (int i = 0; i < NROWS; i++)
        assert_string_equal(t[i].key_id, id);
    sb_keys_keyring_free(kr);
    assert_false(exists(new_path));
    assert_false(exists(tmp_path));
    /* a fresh load holds the single key and decrypts everything */
    kr = load();
    assert_false(sb_keys_keyring_pending(kr));
    all_decrypt(kr, t);
    sb_keys_keyring_free(kr);
}

/* Starts a key file and a table of credentials under it. */
static void start(struct row *t, char old_id[17])
{
    struct sb_keyring *kr = load();
    assert_false(sb_keys_keyring_pending(kr));
    sb_keys_keyring_active_id(kr, old_id);
    seed(kr, t);
    sb_keys_keyring_free(kr);
}

static void test_crash_inside_begin(void **state)
{
    struct row t[NROWS];
    char old_id[17];
    struct sb_master_key *k = NULL;
    (void)state;
    start(t, old_id);
    /* the .tmp was written, the rename to .new never happened */
    assert_int_equal(sb_keys_master_generate(&k, NULL), SB_OK);
    assert_int_equal(sb_keys_master_write_file(k, tmp_path, NULL), SB_OK);
    sb_keys_master_free(k);
    struct sb_keyring *kr = load();
    assert_false(exists(tmp_path)); /* removed: nothing used it */
    assert_false(sb_keys_keyring_pending(kr));
    all_decrypt(kr, t);
    sb_keys_keyring_free(kr);
    complete_and_check(t, old_id);
    free_rows(t);
}

static void test_crash_after_begin(void **state)
{
    struct row t[NROWS], extra[NROWS];
    char old_id[17], new_id[17];
    struct stat st;
    (void)state;
    start(t, old_id);
    struct sb_keyring *kr = load();
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    assert_true(sb_keys_keyring_pending(kr));
    sb_keys_keyring_active_id(kr, new_id);
    assert_string_not_equal(old_id, new_id);
    assert_int_equal(stat(new_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* credentials saved during the rotation use the new key */
    seed(kr, extra);
    assert_string_equal(extra[0].key_id, new_id);
    sb_keys_keyring_free(kr); /* crash */
    kr = load();
    assert_true(sb_keys_keyring_pending(kr));
    all_decrypt(kr, t);
    all_decrypt(kr, extra);
    sb_keys_keyring_free(kr);
    complete_and_check(t, new_id);
    complete_and_check(extra, new_id);
    free_rows(t);
    free_rows(extra);
}

static void test_crash_inside_transaction(void **state)
{
    struct row t[NROWS];
    char old_id[17], new_id[17];
    (void)state;
    start(t, old_id);
    struct sb_keyring *kr = load();
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    sb_keys_keyring_active_id(kr, new_id);
    reencrypt(kr, t, false); /* rolled back by the crash */
    sb_keys_keyring_free(kr);
    assert_string_equal(t[0].key_id, old_id);
    complete_and_check(t, new_id);
    free_rows(t);
}

static void test_crash_after_commit(void **state)
{
    struct row t[NROWS];
    char old_id[17], new_id[17];
    (void)state;
    start(t, old_id);
    struct sb_keyring *kr = load();
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    sb_keys_keyring_active_id(kr, new_id);
    reencrypt(kr, t, true);
    for (int i = 0; i < NROWS; i++)
        assert_string_equal(t[i].key_id, new_id);
    sb_keys_keyring_free(kr); /* crash before the rename */
    assert_true(exists(new_path));
    kr = load();
    assert_true(sb_keys_keyring_pending(kr));
    all_decrypt(kr, t);
    sb_keys_keyring_free(kr);
    complete_and_check(t, new_id);
    free_rows(t);
}

static void test_full_rotation(void **state)
{
    struct row t[NROWS];
    char old_id[17], new_id[17];
    (void)state;
    start(t, old_id);
    struct sb_keyring *kr = load();
    assert_int_equal(sb_keys_keyring_finish_rotation(kr, NULL), SB_E_INTERNAL); /* none begun */
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    sb_keys_keyring_active_id(kr, new_id);
    reencrypt(kr, t, true);
    assert_int_equal(sb_keys_keyring_finish_rotation(kr, NULL), SB_OK);
    assert_false(sb_keys_keyring_pending(kr));
    all_decrypt(kr, t);
    sb_keys_keyring_free(kr);
    /* the old key is gone: a row still under it would name a key not loaded */
    kr = load();
    struct sb_secret *s = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_keys_keyring_decrypt(kr, old_id, sb_slice_cstr(t[0].ct),
                                             sb_slice_cstr(aad[0]), &s, &err),
                     SB_E_CONFIG);
    assert_non_null(strstr(err.msg, old_id));
    /* and AAD still binds a row: another row's identity does not decrypt it */
    assert_int_equal(sb_keys_keyring_decrypt(kr, new_id, sb_slice_cstr(t[0].ct),
                                             sb_slice_cstr(aad[1]), &s, &err),
                     SB_E_CONFIG);
    sb_keys_keyring_free(kr);
    complete_and_check(t, new_id);
    free_rows(t);
}

static void test_new_key_from_env_file_mode(void **state)
{
    struct row t[NROWS];
    char old_id[17];
    struct sb_master_key *b = NULL;
    char b_id[17];
    (void)state;
    start(t, old_id);
    struct sb_keyring *kr = load();
    struct sb_master_key *cur = NULL;
    assert_int_equal(sb_keys_master_read_file(path, &cur, NULL), SB_OK); /* an existing file */
    sb_keys_master_free(cur);
    assert_int_equal(sb_keys_master_read_file(new_path, &cur, NULL), SB_E_NOT_FOUND);
    setenv(SB_KEYS_NEW_MASTER_ENV, KEY_B, 1);
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    assert_int_equal(sb_keys_master_from_base64(SB_SLICE(KEY_B), "t", &b, NULL), SB_OK);
    sb_keys_master_id(b, b_id);
    sb_keys_master_free(b);
    reencrypt(kr, t, true);
    assert_int_equal(sb_keys_keyring_finish_rotation(kr, NULL), SB_OK);
    sb_keys_keyring_free(kr);
    unsetenv(SB_KEYS_NEW_MASTER_ENV);
    complete_and_check(t, b_id); /* the key file now holds KEY_B */
    free_rows(t);
}

static void test_same_key_refused(void **state)
{
    struct sb_master_key *a = NULL;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_keys_master_from_base64(SB_SLICE(KEY_A), "t", &a, NULL), SB_OK);
    assert_int_equal(sb_keys_master_write_file(a, path, NULL), SB_OK);
    assert_int_equal(sb_keys_master_write_file(a, path, &err), SB_E_CONFLICT);
    sb_keys_master_free(a);
    setenv(SB_KEYS_NEW_MASTER_ENV, KEY_A, 1);
    struct sb_keyring *kr = load();
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, &err), SB_E_CONFLICT);
    assert_false(sb_keys_keyring_pending(kr));
    assert_false(exists(new_path));
    sb_keys_keyring_free(kr);
}

static void test_env_mode(void **state)
{
    struct row t[NROWS];
    char a_id[17], b_id[17];
    struct sb_error err = {0};
    (void)state;
    setenv(SB_KEYS_MASTER_ENV, KEY_A, 1);
    struct sb_keyring *kr = load();
    assert_true(sb_keys_keyring_from_env(kr));
    sb_keys_keyring_active_id(kr, a_id);
    seed(kr, t);
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, SB_KEYS_NEW_MASTER_ENV));
    sb_keys_keyring_free(kr);
    /* both set: both loaded, rotation runs, nothing is written */
    setenv(SB_KEYS_NEW_MASTER_ENV, KEY_B, 1);
    kr = load();
    assert_true(sb_keys_keyring_pending(kr));
    sb_keys_keyring_active_id(kr, b_id);
    all_decrypt(kr, t);
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, NULL), SB_OK);
    reencrypt(kr, t, true);
    sb_keys_keyring_free(kr); /* crash before finish: both still in the env */
    kr = load();
    all_decrypt(kr, t);
    assert_int_equal(sb_keys_keyring_finish_rotation(kr, NULL), SB_OK);
    sb_keys_keyring_free(kr);
    assert_false(exists(path));
    assert_false(exists(new_path));
    /* the operator moves the new key into SWITCHBOARD_MASTER_KEY */
    setenv(SB_KEYS_MASTER_ENV, KEY_B, 1);
    unsetenv(SB_KEYS_NEW_MASTER_ENV);
    kr = load();
    assert_false(sb_keys_keyring_pending(kr));
    for (int i = 0; i < NROWS; i++)
        assert_string_equal(t[i].key_id, b_id);
    all_decrypt(kr, t);
    sb_keys_keyring_free(kr);
    free_rows(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_inside_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_inside_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_key_from_env_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_mode, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
