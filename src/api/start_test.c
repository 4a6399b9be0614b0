/* SPDX-License-Identifier: MIT */
/*
 * start_test.c - what sb_api_create does before the first request: fills
 * the data plane's session mirror from the store (live sessions of active
 * users only), and finishes a master key rotation that a crash interrupted
 * after step 1 (next key written, rows untouched) or after step 2 (rows
 * re-encrypted, key file not yet renamed), so every credential decrypts
 * and the first snapshot builds. Real SQLite file and key files in a
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/internal.h"
#include "crypto/keys.h"
#include "crypto/session.h"
#include "crypto/vkey.h"
#include "gateway/sessions.h"
#include "registry/registry.h"

static char dir[64], db_path[96], url[112], key_path[96], new_path[112];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sb-api-start-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db_path, sizeof(db_path), "%s/t.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", db_path);
    snprintf(key_path, sizeof(key_path), "%s/switchboard.key", dir);
    snprintf(new_path, sizeof(new_path), "%s.new", key_path);
    unsetenv(SB_KEYS_MASTER_ENV);
    unsetenv(SB_KEYS_NEW_MASTER_ENV);
    return 0;
}

static int teardown(void **state)
{
    char p[128];
    (void)state;
    for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", NULL}; *sfx; sfx++) {
        snprintf(p, sizeof(p), "%s%s", db_path, *sfx);
        unlink(p);
    }
    unlink(key_path);
    unlink(new_path);
    rmdir(dir);
    sb_registry_shutdown();
    return 0;
}

static struct sb_store *open_migrated(void)
{
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    assert_int_equal(sb_store_migrate(s, &err), SB_OK);
    return s;
}

static void add_session(struct sb_store *s, const char *user, const char *role, int64_t expires,
                        char token[SB_TOKEN_LEN + 1])
{
    struct sb_error err = {0};
    char th[SB_HASH_TEXT_LEN + 1];
    struct sb_store_user u = {.username = user, .password_hash = "$argon2id$x", .role = role};
    struct sb_store_user existing;
    struct sb_arena *a = sb_arena_create(1024);
    if (sb_store_user_get(s, user, a, &existing, &err) != SB_OK)
        assert_int_equal(sb_store_user_create(s, &u, NULL, &err), SB_OK);
    sb_arena_free(a);
    assert_int_equal(sb_session_token_new(token, &err), SB_OK);
    sb_session_token_hash(sb_slice_cstr(token), th);
    struct sb_store_session ss = {.token_hash = th, .username = user, .expires_at = expires};
    assert_int_equal(sb_store_session_create(s, &ss, &err), SB_OK);
}

static struct sb_api *start(struct sb_keyring *kr, struct sb_sessions *sessions)
{
    struct sb_api *api = NULL;
    struct sb_error err = {0};
    struct sb_api_opts o = {.db_url = url, .keyring = kr, .sessions = sessions, .poll_ms = 50};
    if (sb_api_create(&o, &api, &err) != SB_OK)
        fail_msg("sb_api_create: %s", err.msg);
    return api;
}

static bool mirrored(struct sb_sessions *m, const char *token, struct sb_session_info *info)
{
    struct sb_vkey_hash h;
    sb_vkey_hash(sb_slice_cstr(token), &h);
    return sb_sessions_get(m, h.digest, sb__api_now_ms(), info);
}

static void test_sessions_loaded(void **state)
{
    char live[SB_TOKEN_LEN + 1], expired[SB_TOKEN_LEN + 1], off[SB_TOKEN_LEN + 1];
    struct sb_error err = {0};
    struct sb_keyring *kr = NULL;
    struct sb_session_info info;
    int64_t now = sb__api_now_ms();
    (void)state;
    struct sb_store *s = open_migrated();
    add_session(s, "ann", "developer", now + 3600000, live);
    add_session(s, "ann", "developer", now - 1, expired);
    add_session(s, "bob", "user", now + 3600000, off);
    struct sb_store_user_update disable = {.status = "disabled"};
    assert_int_equal(sb_store_user_update(s, "bob", &disable, &err), SB_OK);
    sb_store_close(s);

    assert_int_equal(sb_keys_keyring_load(key_path, &kr, &err), SB_OK);
    struct sb_sessions *m = sb_sessions_create();
    struct sb_api *api = start(kr, m);
    assert_true(mirrored(m, live, &info));
    assert_string_equal(info.username, "ann");
    assert_string_equal(info.role, "developer");
    assert_false(mirrored(m, expired, &info));
    assert_false(mirrored(m, off, &info));
    sb_api_free(api);
    sb_sessions_free(m);
    sb_keys_keyring_free(kr);
}

/* A provider with a stored (encrypted) system credential, under kr's active key. */
static void add_provider_with_key(struct sb_store *s, struct sb_keyring *kr)
{
    struct sb_error err = {0};
    char aad[SB_KEYS_AAD_MAX], kid[17];
    char *ct = NULL;
    struct sb_store_provider p = {.id = "p1",
                                  .type = "openai",
                                  .name = "p1",
                                  .base_url = "http://127.0.0.1:9/v1",
                                  .auth_method = "bearer",
                                  .enabled = true};
    assert_int_equal(sb_store_provider_create(s, &p, NULL, 0, &err), SB_OK);
    sb_keys_credential_aad("p1", NULL, NULL, aad);
    assert_int_equal(sb_keys_keyring_encrypt(kr, SB_SLICE("sk-test-secret-1234"),
                                             sb_slice_cstr(aad), &ct, kid, &err),
                     SB_OK);
    struct sb_store_credential c = {
        .provider = "p1", .key_ciphertext = ct, .key_id = kid, .masked = "sk-...1234"};
    assert_int_equal(sb_store_credential_put(s, &c, &err), SB_OK);
    free(ct);
}

static const char *stored_key_id(struct sb_store *s, struct sb_arena *a)
{
    struct sb_store_credential c;
    struct sb_error err = {0};
    assert_int_equal(sb_store_credential_get(s, "p1", NULL, NULL, a, &c, &err), SB_OK);
    return c.key_id;
}

/* The same re-encryption the api does, run here to stop between steps 2 and 3. */
static sb_err rekey(void *ud, const struct sb_store_credential *c, char **ct, char *kid,
                    struct sb_error *err)
{
    char aad[SB_KEYS_AAD_MAX];
    sb_keys_credential_aad(c->provider, c->user, c->label, aad);
    return sb_keys_keyring_reencrypt(ud, c->key_id, sb_slice_cstr(c->key_ciphertext),
                                     sb_slice_cstr(aad), ct, kid, err);
}

/* Crash after step `steps` (1: next key written; 2: rows re-encrypted too). */
static void crash_then_start(int steps)
{
    struct sb_error err = {0};
    struct sb_keyring *kr = NULL;
    struct sb_arena *a = sb_arena_create(1024);
    char old_id[17], next_id[17], now_id[17];
    assert_int_equal(sb_keys_keyring_load(key_path, &kr, &err), SB_OK);
    struct sb_store *s = open_migrated();
    add_provider_with_key(s, kr);
    sb_keys_keyring_active_id(kr, old_id);
    assert_int_equal(sb_keys_keyring_begin_rotation(kr, &err), SB_OK);
    sb_keys_keyring_active_id(kr, next_id);
    assert_string_not_equal(old_id, next_id);
    if (steps >= 2)
        assert_int_equal(sb_store_rekey(s, rekey, kr, NULL, &err), SB_OK);
    sb_keys_keyring_free(kr); /* the crash: finish never runs */
    assert_int_equal(access(new_path, F_OK), 0);

    assert_int_equal(sb_keys_keyring_load(key_path, &kr, &err), SB_OK);
    assert_true(sb_keys_keyring_pending(kr));
    struct sb_api *api = start(kr, NULL); /* builds the snapshot: the credential decrypts */
    assert_false(sb_keys_keyring_pending(kr));
    sb_keys_keyring_active_id(kr, now_id);
    assert_string_equal(now_id, next_id);
    assert_string_equal(stored_key_id(s, a), next_id);
    assert_int_not_equal(access(new_path, F_OK), 0);
    sb_api_free(api);
    sb_keys_keyring_free(kr);
    sb_store_close(s);
    sb_arena_free(a);
}

static void test_rotation_resumed_after_begin(void **state)
{
    (void)state;
    crash_then_start(1);
}

static void test_rotation_resumed_after_rekey(void **state)
{
    (void)state;
    crash_then_start(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sessions_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_resumed_after_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_resumed_after_rekey, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
