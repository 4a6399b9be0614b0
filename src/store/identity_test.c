/* SPDX-License-Identifier: MIT */
/*
 * identity_test.c - users, sessions, virtual keys and the audit log on a
 * real SQLite file: every store op, its 404 and 409 cases, paging, the
 * cascade of a user delete, session expiry, key scopes and revocation,
 * last_used_at only rising, audit filters; and that the file holds hashes
 * only (the test's plaintext key never appears in the database or WAL).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "crypto/vkey.h"
#include "store/identity.h"
#include "store/store.h"

static char path[64], url[80];
static struct sb_store *s;
static struct sb_arena *a;

static int setup(void **state)
{
    struct sb_error err = {0};
    (void)state;
    sbt_db_new("ident", path, url);
    s = sbt_store_open(url, &err);
    a = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_store_close(s);
    sb_arena_free(a);
    sbt_db_remove(path);
    return 0;
}

static void add_user(const char *name, const char *role)
{
    struct sb_error err = {0};
    struct sb_store_user u = {
        .username = name, .password_hash = "$argon2id$v=19$fake", .role = role};
    if (sb_store_user_create(s, &u, NULL, &err) != SB_OK)
        fail_msg("create %s: %s", name, err.msg);
}

static void test_users(void **state)
{
    struct sb_error err = {0};
    struct sb_store_user u, *list = NULL;
    int64_t id = 0, total = 0, n = 0;
    size_t cnt = 0;
    (void)state;
    struct sb_store_user nu = {
        .username = "ann", .password_hash = "$argon2id$v=19$x", .role = "admin"};
    assert_int_equal(sb_store_user_create(s, &nu, &id, &err), SB_OK);
    assert_true(id > 0);
    assert_int_equal(sb_store_user_create(s, &nu, NULL, &err), SB_E_CONFLICT);
    assert_string_equal(err.field, "username");
    assert_non_null(strstr(err.msg, "ann"));
    /* validation */
    static const char *const bad_names[] = {
        "",     "Ann", "a b",
        "ann!", "é",   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        struct sb_store_user b = {.username = bad_names[i], .password_hash = "h", .role = "user"};
        assert_int_equal(sb_store_user_create(s, &b, NULL, &err), SB_E_BAD_REQUEST);
        assert_string_equal(err.field, "username");
    }
    struct sb_store_user br = {.username = "bob", .password_hash = "h", .role = "root"};
    assert_int_equal(sb_store_user_create(s, &br, NULL, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "role");
    br.role = "user";
    br.password_hash = "";
    assert_int_equal(sb_store_user_create(s, &br, NULL, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "password");

    assert_int_equal(sb_store_user_get(s, "ann", a, &u, &err), SB_OK);
    assert_int_equal(u.id, id);
    assert_string_equal(u.role, "admin");
    assert_string_equal(u.status, "active");
    assert_string_equal(u.password_hash, "$argon2id$v=19$x");
    assert_true(u.created_at > 0);
    assert_int_equal(u.last_login_at, 0);
    assert_int_equal(sb_store_user_get(s, "nobody", a, &u, &err), SB_E_NOT_FOUND);

    struct sb_store_user_update up = {.role = "developer", .last_login_at = 1234};
    assert_int_equal(sb_store_user_update(s, "ann", &up, &err), SB_OK);
    assert_int_equal(sb_store_user_get(s, "ann", a, &u, &err), SB_OK);
    assert_string_equal(u.role, "developer");
    assert_string_equal(u.password_hash, "$argon2id$v=19$x"); /* kept */
    assert_int_equal(u.last_login_at, 1234);
    struct sb_store_user_update up2 = {.password_hash = "$argon2id$v=19$y", .status = "disabled"};
    assert_int_equal(sb_store_user_update(s, "ann", &up2, &err), SB_OK);
    assert_int_equal(sb_store_user_get(s, "ann", a, &u, &err), SB_OK);
    assert_string_equal(u.password_hash, "$argon2id$v=19$y");
    assert_string_equal(u.status, "disabled");
    assert_string_equal(u.role, "developer");
    struct sb_store_user_update bad = {.status = "gone"};
    assert_int_equal(sb_store_user_update(s, "ann", &bad, &err), SB_E_BAD_REQUEST);
    assert_int_equal(sb_store_user_update(s, "nobody", &up, &err), SB_E_NOT_FOUND);

    add_user("u1", "admin");
    add_user("u2", "user");
    add_user("u3", "admin");
    assert_int_equal(sb_store_user_count_admins(s, &n, &err), SB_OK);
    assert_int_equal(n, 2); /* ann is a disabled developer now */
    struct sb_store_paging pg = {.limit = 2, .offset = 1};
    assert_int_equal(sb_store_user_list(s, &pg, a, &list, &cnt, &total, &err), SB_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(total, 4);
    assert_string_equal(list[0].username, "u1");
    assert_string_equal(list[1].username, "u2");
    pg.offset = 4;
    assert_int_equal(sb_store_user_list(s, &pg, a, &list, &cnt, &total, &err), SB_OK);
    assert_int_equal(cnt, 0);
    assert_int_equal(sb_store_user_list(s, NULL, a, &list, &cnt, NULL, &err), SB_OK);
    assert_int_equal(cnt, 4);

    assert_int_equal(sb_store_user_delete(s, "u2", &err), SB_OK);
    assert_int_equal(sb_store_user_delete(s, "u2", &err), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_user_get(s, "u2", a, &u, &err), SB_E_NOT_FOUND);
}

static void test_sessions(void **state)
{
    struct sb_error err = {0};
    struct sb_store_session ss;
    int64_t n = 0;
    (void)state;
    add_user("ann", "admin");
    add_user("bob", "user");
    struct sb_store_session s1 = {.token_hash = "sha256:1",
                                  .username = "ann",
                                  .expires_at = 5000,
                                  .created_at = 1000,
                                  .last_seen_at = 1000,
                                  .ip = "192.0.2.1"};
    struct sb_store_session s2 = {.token_hash = "sha256:2", .username = "ann", .expires_at = 9000};
    struct sb_store_session s3 = {.token_hash = "sha256:3", .username = "bob", .expires_at = 9000};
    assert_int_equal(sb_store_session_create(s, &s1, &err), SB_OK);
    assert_int_equal(sb_store_session_create(s, &s2, &err), SB_OK);
    assert_int_equal(sb_store_session_create(s, &s3, &err), SB_OK);
    assert_int_equal(sb_store_session_create(s, &s1, &err), SB_E_CONFLICT);
    struct sb_store_session bad = {.token_hash = "sha256:4", .username = "ann"};
    assert_int_equal(sb_store_session_create(s, &bad, &err), SB_E_BAD_REQUEST); /* no expiry */

    assert_int_equal(sb_store_session_get(s, "sha256:1", 4999, a, &ss, &err), SB_OK);
    assert_string_equal(ss.username, "ann");
    assert_string_equal(ss.role, "admin");
    assert_string_equal(ss.status, "active");
    assert_string_equal(ss.ip, "192.0.2.1");
    assert_int_equal(ss.last_seen_at, 1000);
    /* expired at exactly expires_at */
    assert_int_equal(sb_store_session_get(s, "sha256:1", 5000, a, &ss, &err), SB_E_NOT_FOUND);
    assert_int_equal(sb_store_session_get(s, "sha256:nope", 1, a, &ss, &err), SB_E_NOT_FOUND);

    assert_int_equal(sb_store_session_touch(s, "sha256:1", 2000, &err), SB_OK);
    assert_int_equal(sb_store_session_get(s, "sha256:1", 2001, a, &ss, &err), SB_OK);
    assert_int_equal(ss.last_seen_at, 2000);
    assert_int_equal(sb_store_session_touch(s, "sha256:nope", 2000, &err), SB_E_NOT_FOUND);

    /* the role comes from the user row at lookup time */
    struct sb_store_user_update up = {.role = "user"};
    assert_int_equal(sb_store_user_update(s, "ann", &up, &err), SB_OK);
    assert_int_equal(sb_store_session_get(s, "sha256:2", 1, a, &ss, &err), SB_OK);
    assert_string_equal(ss.role, "user");

    assert_int_equal(sb_store_session_purge(s, 6000, &n, &err), SB_OK);
    assert_int_equal(n, 1); /* s1 */
    assert_int_equal(sb_store_session_delete_user(s, "ann", &n, &err), SB_OK);
    assert_int_equal(n, 1); /* s2 */
    assert_int_equal(sb_store_session_get(s, "sha256:3", 1, a, &ss, &err), SB_OK);
    assert_int_equal(sb_store_session_delete(s, "sha256:3", &err), SB_OK);
    assert_int_equal(sb_store_session_delete(s, "sha256:3", &err), SB_OK); /* idempotent */
    assert_int_equal(sb_store_session_get(s, "sha256:3", 1, a, &ss, &err), SB_E_NOT_FOUND);

    /* a deleted user's sessions are gone too */
    struct sb_store_session s4 = {.token_hash = "sha256:5", .username = "bob", .expires_at = 9000};
    assert_int_equal(sb_store_session_create(s, &s4, &err), SB_OK);
    assert_int_equal(sb_store_user_delete(s, "bob", &err), SB_OK);
    assert_int_equal(sb_store_session_get(s, "sha256:5", 1, a, &ss, &err), SB_E_NOT_FOUND);
}

/* Creates a key for user with the given models; returns its id. key gets the plaintext. */
/* Appended with session_list_live: the sessions the data plane's mirror is filled with. */
static void test_sessions_live(void **state)
{
    struct sb_error err = {0};
    struct sb_store_session *live = NULL;
    size_t n = 0;
    (void)state;
    add_user("ann", "developer");
    add_user("bob", "user");
    struct sb_store_session rows[] = {
        {.token_hash = "sha256:a1", .username = "ann", .expires_at = 5000},
        {.token_hash = "sha256:a2", .username = "ann", .expires_at = 9000},
        {.token_hash = "sha256:b1", .username = "bob", .expires_at = 9000},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sb_store_session_create(s, &rows[i], &err), SB_OK);
    struct sb_store_user_update off = {.status = "disabled"};
    assert_int_equal(sb_store_user_update(s, "bob", &off, &err), SB_OK);
    /* at 5000 ann's first session has expired, and bob is disabled */
    assert_int_equal(sb_store_session_list_live(s, 5000, a, &live, &n, &err), SB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(live[0].token_hash, "sha256:a2");
    assert_string_equal(live[0].username, "ann");
    assert_string_equal(live[0].role, "developer");
    assert_string_equal(live[0].status, "active");
    assert_int_equal(live[0].expires_at, 9000);
    assert_int_equal(sb_store_session_list_live(s, 4999, a, &live, &n, &err), SB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(sb_store_user_delete(s, "ann", &err), SB_OK);
    assert_int_equal(sb_store_session_list_live(s, 0, a, &live, &n, &err), SB_OK);
    assert_int_equal(n, 0);
}

static int64_t new_key(const char *user, const char **models, size_t nmodels, int64_t expires,
                       char key[SB_VKEY_LEN + 1])
{
    char hash[SB_HASH_TEXT_LEN + 1], prefix[SB_VKEY_PREFIX_LEN + 1];
    struct sb_error err = {0};
    int64_t id = 0;
    assert_int_equal(sb_vkey_generate(key, NULL), SB_OK);
    sb_vkey_hash_text(sb_slice_cstr(key), hash);
    sb_vkey_prefix(sb_slice_cstr(key), prefix);
    struct sb_store_api_key k = {.name = "ci",
                                 .key_hash = hash,
                                 .key_prefix = prefix,
                                 .user_id = user,
                                 .models = models,
                                 .nmodels = nmodels,
                                 .expires_at = expires};
    if (sb_store_key_create(s, &k, &id, &err) != SB_OK)
        fail_msg("key create: %s", err.msg);
    return id;
}

/* true when needle occurs anywhere in the file at p. */
static bool file_contains(const char *p, const char *needle)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return false;
    size_t cap = 1 << 20, n = 0, nl = strlen(needle);
    char *buf = malloc(cap);
    bool found = false;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n == cap)
            break;
    }
    fclose(f);
    for (size_t i = 0; i + nl <= n && !found; i++)
        found = memcmp(buf + i, needle, nl) == 0;
    free(buf);
    return found;
}

static void test_keys(void **state)
{
    struct sb_error err = {0};
    struct sb_store_api_key k, *list = NULL;
    char k1[SB_VKEY_LEN + 1], k2[SB_VKEY_LEN + 1], k3[SB_VKEY_LEN + 1], hash[SB_HASH_TEXT_LEN + 1];
    size_t n = 0;
    int64_t total = 0;
    const char *models[] = {"gpt-4o", "route-a"};
    (void)state;
    add_user("ann", "developer");
    add_user("bob", "user");
    int64_t id1 = new_key("ann", models, 2, 0, k1);
    int64_t id2 = new_key("ann", NULL, 0, 1700000000000LL, k2);
    int64_t id3 = new_key("bob", NULL, 0, 0, k3);
    assert_true(id1 > 0 && id2 > id1 && id3 > id2);

    assert_int_equal(sb_store_key_get(s, id1, a, &k, &err), SB_OK);
    assert_string_equal(k.name, "ci");
    assert_string_equal(k.user_id, "ann");
    assert_int_equal(k.nmodels, 2);
    assert_string_equal(k.models[0], "gpt-4o");
    assert_string_equal(k.models[1], "route-a");
    assert_false(k.revoked);
    assert_int_equal(k.expires_at, 0);
    assert_int_equal(k.last_used_at, 0);
    assert_memory_equal(k.key_prefix, k1, 10);
    sb_vkey_hash_text(sb_slice_cstr(k1), hash);
    assert_string_equal(k.key_hash, hash);
    assert_int_equal(sb_store_key_get(s, id2, a, &k, &err), SB_OK);
    assert_int_equal(k.nmodels, 0); /* all visible */
    assert_int_equal(k.expires_at, 1700000000000LL);
    assert_int_equal(sb_store_key_get(s, 99999, a, &k, &err), SB_E_NOT_FOUND);

    /* duplicate hash, bad name, bad owner */
    struct sb_store_api_key dup = {.name = "x", .key_hash = hash, .key_prefix = "sk-sb-abcd"};
    assert_int_equal(sb_store_key_create(s, &dup, NULL, &err), SB_E_CONFLICT);
    dup.name = "";
    assert_int_equal(sb_store_key_create(s, &dup, NULL, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "name");
    dup.name = "x";
    dup.user_id = "Not A User";
    assert_int_equal(sb_store_key_create(s, &dup, NULL, &err), SB_E_BAD_REQUEST);

    struct sb_store_paging pg = {.limit = 1};
    assert_int_equal(sb_store_key_list(s, "ann", &pg, a, &list, &n, &total, &err), SB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 2);
    assert_int_equal(list[0].id, id1);
    assert_int_equal(sb_store_key_list(s, NULL, NULL, a, &list, &n, &total, &err), SB_OK);
    assert_int_equal(n, 3);
    assert_int_equal(total, 3);

    assert_int_equal(sb_store_key_revoke(s, id1, 5000, &err), SB_OK);
    assert_int_equal(sb_store_key_revoke(s, id1, 6000, &err), SB_OK); /* again: kept */
    assert_int_equal(sb_store_key_get(s, id1, a, &k, &err), SB_OK);
    assert_true(k.revoked);
    assert_int_equal(k.revoked_at, 5000);
    assert_int_equal(sb_store_key_revoke(s, 99999, 1, &err), SB_E_NOT_FOUND);

    /* last_used_at only rises, and unknown ids are ignored */
    struct sb_store_key_use uses[] = {{id2, 3000}, {id2, 2000}, {99999, 1}, {id3, 10}};
    struct sb_store_usage_tx tx = {.keys = uses, .nkeys = 4};
    assert_int_equal(sb_store_write_usage(s, &tx, &err), SB_OK);
    assert_int_equal(sb_store_key_get(s, id2, a, &k, &err), SB_OK);
    assert_int_equal(k.last_used_at, 3000);

    /* the snapshot sees every key, revoked ones flagged */
    assert_int_equal(sb_store_key_load_all(s, a, &list, &n, &err), SB_OK);
    assert_int_equal(n, 3);
    assert_true(list[0].revoked);
    assert_false(list[1].revoked);
    assert_int_equal(list[2].last_used_at, 10);
    assert_false(list[2].owner_disabled);
    /* a disabled owner's keys are flagged; a key without an owner never is */
    struct sb_store_user_update off = {.status = "disabled"};
    assert_int_equal(sb_store_user_update(s, "bob", &off, &err), SB_OK);
    char k4[SB_VKEY_LEN + 1];
    int64_t id4 = new_key(NULL, NULL, 0, 0, k4);
    assert_int_equal(sb_store_key_load_all(s, a, &list, &n, &err), SB_OK);
    assert_int_equal(n, 4);
    assert_false(list[1].owner_disabled);
    assert_true(list[2].owner_disabled);
    assert_int_equal(list[3].id, id4);
    assert_null(list[3].user_id);
    assert_false(list[3].owner_disabled);
    assert_int_equal(sb_store_key_delete(s, id4, &err), SB_OK);

    assert_int_equal(sb_store_key_delete(s, id3, &err), SB_OK);
    assert_int_equal(sb_store_key_delete(s, id3, &err), SB_E_NOT_FOUND);
    /* deleting ann deletes her keys */
    assert_int_equal(sb_store_user_delete(s, "ann", &err), SB_OK);
    assert_int_equal(sb_store_key_load_all(s, a, &list, &n, &err), SB_OK);
    assert_int_equal(n, 0);

    /* only hashes on disk: the plaintext keys appear nowhere, their hashes do */
    char wal[96];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_true(file_contains(wal, hash) || file_contains(path, hash));
    for (int i = 0; i < 3; i++) {
        const char *key = i == 0 ? k1 : i == 1 ? k2 : k3;
        assert_false(file_contains(path, key + 6));
        assert_false(file_contains(wal, key + 6));
    }
}

static void audit_row(const char *actor, const char *action, const char *tid, int64_t ts,
                      const char *outcome, struct sb_audit *r)
{
    *r = (struct sb_audit){.ts_ms = ts,
                           .actor = actor,
                           .actor_role = "admin",
                           .action = action,
                           .target_type = "user",
                           .target_id = tid,
                           .before = "{\"role\":\"user\"}",
                           .after = "{\"role\":\"admin\"}",
                           .ip = "192.0.2.7",
                           .request_id = "req-1",
                           .outcome = outcome};
}

static void test_audit(void **state)
{
    struct sb_error err = {0};
    struct sb_audit rows[5], *out = NULL;
    size_t n = 0;
    int64_t total = 0;
    (void)state;
    audit_row("ann", "user.update", "bob", 1000, "ok", &rows[0]);
    audit_row("ann", "user.delete", "bob", 2000, "ok", &rows[1]);
    audit_row("bob", "auth.login", NULL, 3000, "failed", &rows[2]);
    audit_row("cat", "key.create", "7", 4000, "denied", &rows[3]);
    audit_row("ann", "user.create", "cat", 5000, "ok", &rows[4]);
    rows[3].target_type = "key";
    assert_int_equal(sb_store_audit_insert(s, rows, 5, &err), SB_OK);

    assert_int_equal(sb_store_audit_query(s, NULL, NULL, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(n, 5);
    assert_int_equal(total, 5);
    assert_int_equal(out[0].ts_ms, 5000); /* newest first */
    assert_string_equal(out[4].action, "user.update");
    assert_string_equal(out[4].before, "{\"role\":\"user\"}");
    assert_string_equal(out[4].after, "{\"role\":\"admin\"}");
    assert_string_equal(out[4].ip, "192.0.2.7");
    assert_string_equal(out[4].request_id, "req-1");
    assert_null(out[2].target_id);

    struct sb_audit_filter f = {.actor = "ann"};
    struct sb_store_paging pg = {.limit = 2, .offset = 1};
    assert_int_equal(sb_store_audit_query(s, &f, &pg, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(total, 3);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].ts_ms, 2000);
    assert_int_equal(out[1].ts_ms, 1000);
    struct sb_audit_filter f2 = {.target_type = "user", .target_id = "bob"};
    assert_int_equal(sb_store_audit_query(s, &f2, NULL, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(n, 2);
    struct sb_audit_filter f3 = {.from_ms = 2000, .to_ms = 4000};
    assert_int_equal(sb_store_audit_query(s, &f3, NULL, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(n, 3);
    struct sb_audit_filter f4 = {.action = "key.create"};
    assert_int_equal(sb_store_audit_query(s, &f4, NULL, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].outcome, "denied");

    /* a bad record refuses the batch before anything is written */
    audit_row("dan", "x", NULL, 6000, "maybe", &rows[0]);
    assert_int_equal(sb_store_audit_insert(s, rows, 2, &err), SB_E_BAD_REQUEST);
    assert_int_equal(sb_store_audit_query(s, NULL, NULL, a, &out, &n, &total, &err), SB_OK);
    assert_int_equal(total, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
