/* SPDX-License-Identifier: MIT */
/*
 * registry_test.c - snapshots: what a build keeps and skips, lookups by id
 * and provider/upstream_model, credentials (references and encrypted),
 * suggestions, publication, a worker's lease book, and a threaded stress
 * test (publish in a loop while 4 threads acquire, look up and release, two
 * of them through lease books) meant to run under ASan and TSan as well.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry/config.h"
#include "registry/registry_build.h"
#include "registry/registry_int.h"

static const char *route_targets[] = {"m1", "openai/not-listed", "nope/x", "anth/claude"};

static struct sb_store_kv hdrs[] = {{"X-Team", "platform"}};

static struct sb_store_provider providers[] = {
    {.id = "openai",
     .type = "openai",
     .base_url = "https://api.openai.com/v1",
     .api_key = "env:SB_REG_TEST_KEY",
     .headers = hdrs,
     .nheaders = 1,
     .timeout_ms = 5000,
     .enabled = true,
     .is_system = true},
    {.id = "anth",
     .type = "anthropic",
     .base_url = "https://api.anthropic.com",
     .api_key = "env:SB_REG_TEST_KEY",
     .enabled = true},
    {.id = "off", .type = "openai", .base_url = "https://off/v1", .enabled = false},
    {.id = "local", .type = "openai", .base_url = "http://127.0.0.1:1/v1", .enabled = true},
};

static struct sb_store_model models[] = {
    {.id = "m1",
     .provider = "openai",
     .upstream_model = "gpt-4o-mini",
     .caps = {.streaming = true, .tools = true},
     .input_per_mtok = 0.15,
     .enabled = true},
    {.id = "m-slash",
     .provider = "openai",
     .upstream_model = "accounts/x/models/y",
     .enabled = true},
    {.id = "claude", .provider = "anth", .upstream_model = "claude-3", .enabled = true},
    {.id = "m-disabled", .provider = "openai", .upstream_model = "d", .enabled = false},
    {.id = "m-off", .provider = "off", .upstream_model = "o", .enabled = true},
    {.id = "gpt-4o", .provider = "local", .upstream_model = "gpt-4o", .enabled = true},
    {.id = "m1-dup-upstream",
     .provider = "openai",
     .upstream_model = "gpt-4o-mini",
     .enabled = true},
};

static struct sb_store_route routes[] = {
    {.id = "default", .strategy = "priority", .targets = route_targets, .ntargets = 4},
};

static const struct sb_store_entities ents = {.providers = providers,
                                              .nproviders = 4,
                                              .models = models,
                                              .nmodels = 7,
                                              .routes = routes,
                                              .nroutes = 1};

static struct sb_registry *build(const struct sb_store_entities *e, const struct sb_master_key *mk)
{
    struct sb_registry *r = NULL;
    struct sb_error err = {0};
    if (sb_registry_build(e, mk, &r, &err) != SB_OK)
        fail_msg("%s", err.msg);
    return r;
}

static void test_build_and_find(void **state)
{
    (void)state;
    setenv("SB_REG_TEST_KEY", "sk-test-1234567890", 1);
    struct sb_registry *r = build(&ents, NULL);
    /* Kept: openai, anth and local; skipped: off (disabled). */
    assert_int_equal(sb_registry_provider_count(r), 3);
    assert_non_null(sb_registry_find_provider(r, SB_SLICE("anth")));
    assert_null(sb_registry_find_provider(r, SB_SLICE("off")));
    const struct sb_provider *p = sb_registry_find_provider(r, SB_SLICE("openai"));
    assert_non_null(p);
    assert_non_null(p->ops);
    assert_int_equal(p->auth, SB_AUTH_BEARER);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(p->api_key), "sk-test-1234567890"));
    assert_int_equal(p->nheaders, 1);
    assert_true(sb_slice_eq_cstr(p->headers[0].value, "platform"));
    assert_int_equal(p->timeout_ms, 5000);
    assert_true(p->is_system);
    const struct sb_provider *local = sb_registry_find_provider(r, SB_SLICE("local"));
    assert_null(local->api_key);
    assert_int_equal(local->auth, SB_AUTH_NONE);

    const struct sb_model *m = sb_registry_find_model(r, SB_SLICE("m1"));
    assert_non_null(m);
    assert_ptr_equal(m->provider, p);
    assert_int_equal(m->caps, SB_CAP_STREAMING | SB_CAP_TOOLS);
    assert_ptr_equal(sb_registry_find_model(r, SB_SLICE("openai/gpt-4o-mini")), m); /* first wins */
    assert_string_equal(sb_registry_find_model(r, SB_SLICE("openai/accounts/x/models/y"))->id,
                        "m-slash");
    assert_string_equal(sb_registry_find_model(r, SB_SLICE("local/gpt-4o"))->id, "gpt-4o");
    assert_null(sb_registry_find_model(r, SB_SLICE("m-disabled")));
    assert_null(sb_registry_find_model(r, SB_SLICE("m-off")));
    assert_string_equal(sb_registry_find_model(r, SB_SLICE("claude"))->provider->id, "anth");
    assert_null(sb_registry_find_model(r, SB_SLICE("openai/")));
    assert_null(sb_registry_find_model(r, SB_SLICE("")));
    assert_int_equal(sb_registry_model_count(r), 5);
    assert_null(sb_registry_model_at(r, 5));

    /* Routes keep their targets as written; provider/upstream targets resolve. */
    const struct sb_route_entry *re = sb_registry_find_route(r, SB_SLICE("default"));
    assert_non_null(re);
    assert_int_equal(re->ntargets, 4);
    assert_string_equal(re->strategy, "priority");
    const struct sb_model *imp = sb_registry_find_model(r, SB_SLICE("openai/not-listed"));
    assert_non_null(imp);
    assert_string_equal(imp->upstream_model, "not-listed");
    assert_ptr_equal(imp->provider, p);
    assert_null(sb_registry_find_model(r, SB_SLICE("nope/x")));
    assert_string_equal(sb_registry_find_model(r, SB_SLICE("anth/claude-3"))->id, "claude");
    assert_int_equal(sb_registry_route_count(r), 1);
    sb_registry_release(r);
    unsetenv("SB_REG_TEST_KEY");
}

static void test_unset_env_and_bad_file(void **state)
{
    struct sb_store_provider p = {.id = "x",
                                  .type = "openai",
                                  .base_url = "http://h",
                                  .api_key = "env:SB_REG_SURELY_UNSET",
                                  .enabled = true};
    struct sb_store_entities e = {.providers = &p, .nproviders = 1};
    struct sb_registry *r = NULL;
    struct sb_error err = {0};
    (void)state;
    unsetenv("SB_REG_SURELY_UNSET");
    r = build(&e, NULL);
    assert_null(sb_registry_find_provider(r, SB_SLICE("x"))->api_key);
    sb_registry_release(r);
    p.api_key = "file:/nonexistent/key";
    assert_int_equal(sb_registry_build(&e, NULL, &r, &err), SB_E_CONFIG);
    assert_null(r);
    assert_non_null(strstr(err.msg, "provider x: api_key"));
}

static void test_encrypted_credential(void **state)
{
    struct sb_master_key *mk = NULL, *other = NULL;
    struct sb_error err = {0};
    char *ct = NULL, kid[17];
    (void)state;
    assert_int_equal(sb_keys_master_from_base64(
                         SB_SLICE("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), "t", &mk, &err),
                     SB_OK);
    assert_int_equal(
        sb_keys_master_from_base64(SB_SLICE("HxwdGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAAA="), "t",
                                   &other, &err),
        SB_OK);
    assert_int_equal(sb_keys_encrypt(mk, SB_SLICE("sk-stored"), SB_SLICE("api"), &ct, &err), SB_OK);
    sb_keys_master_id(mk, kid);
    struct sb_store_provider p = {.id = "api",
                                  .type = "openai",
                                  .base_url = "http://h",
                                  .enabled = true,
                                  .key_ciphertext = ct,
                                  .key_id = kid};
    struct sb_store_entities e = {.providers = &p, .nproviders = 1};
    struct sb_registry *r = build(&e, mk);
    const struct sb_provider *bp = sb_registry_find_provider(r, SB_SLICE("api"));
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(bp->api_key), "sk-stored"));
    assert_int_equal(bp->auth, SB_AUTH_BEARER);
    sb_registry_release(r);
    /* No master key: the provider stays, without a key. */
    r = build(&e, NULL);
    assert_null(sb_registry_find_provider(r, SB_SLICE("api"))->api_key);
    sb_registry_release(r);
    /* Another master key: a clear error naming both key ids. */
    assert_int_equal(sb_registry_build(&e, other, &r, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, kid));
    /* Moved to another provider's row: authentication fails. */
    p.id = "moved";
    p.key_id = NULL;
    assert_int_equal(sb_registry_build(&e, mk, &r, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "failed authentication"));
    free(ct);
    sb_keys_master_free(mk);
    sb_keys_master_free(other);
}

/* The key pool: primary first, config references, stored rows (AAD
 * provider#label), the file's label winning, dead by fingerprint only. */
static void test_key_pool(void **state)
{
    struct sb_master_key *mk = NULL;
    struct sb_error err = {0};
    char *ct_c = NULL, *ct_b = NULL, *ct_wrong = NULL, kid[17];
    (void)state;
    setenv("SB_REG_POOL_A", "sk-pool-aaaaaaaaaaaa", 1);
    setenv("SB_REG_POOL_B", "sk-pool-bbbbbbbbbbbb", 1);
    assert_int_equal(sb_keys_master_from_base64(
                         SB_SLICE("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), "t", &mk, &err),
                     SB_OK);
    sb_keys_master_id(mk, kid);
    assert_int_equal(sb_keys_encrypt(mk, SB_SLICE("sk-stored-c"), SB_SLICE("p#c"), &ct_c, &err),
                     SB_OK);
    assert_int_equal(sb_keys_encrypt(mk, SB_SLICE("sk-stored-b"), SB_SLICE("p#b"), &ct_b, &err),
                     SB_OK);
    /* Encrypted for another row (label d's AAD): skipped with a warning, not fatal. */
    assert_int_equal(sb_keys_encrypt(mk, SB_SLICE("sk-stolen"), SB_SLICE("p#x"), &ct_wrong, &err),
                     SB_OK);
    struct sb_store_key_ref refs[] = {{"b", "env:SB_REG_POOL_B", 4}};
    struct sb_store_provider p = {.id = "p",
                                  .type = "openai",
                                  .base_url = "http://h",
                                  .enabled = true,
                                  .api_key = "env:SB_REG_POOL_A",
                                  .api_keys = refs,
                                  .napi_keys = 1};
    struct sb_store_credential pool[] = {
        {.provider = "p", .key_ciphertext = ct_c, .key_id = kid, .label = "c", .weight = 2},
        {.provider = "p", .key_ciphertext = ct_b, .key_id = kid, .label = "b", .weight = 9},
        {.provider = "p", .key_ciphertext = ct_wrong, .key_id = kid, .label = "d", .weight = 1},
    };
    struct sb_secret *bs = sb_secret_new("sk-pool-bbbbbbbbbbbb", 20);
    char fp[17];
    sb_secret_fingerprint(bs, fp);
    sb_secret_free(bs);
    struct sb_store_dead_key dead[] = {{"p", "b", fp, "401 invalid_api_key", 1},
                                       {"p", "c", "0000000000000000", "403 x", 1}};
    struct sb_store_entities e = {.providers = &p,
                                  .nproviders = 1,
                                  .pool = pool,
                                  .npool = 3,
                                  .dead_keys = dead,
                                  .ndead_keys = 2};
    struct sb_registry *r = build(&e, mk);
    const struct sb_provider *bp = sb_registry_find_provider(r, SB_SLICE("p"));
    assert_int_equal(bp->nkeys, 3); /* primary, b (the file's), c; d did not decrypt */
    assert_string_equal(bp->keys[0].label, "");
    assert_ptr_equal(bp->keys[0].secret, bp->api_key);
    assert_string_equal(bp->keys[1].label, "b");
    assert_int_equal(bp->keys[1].weight, 4);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(bp->keys[1].secret), "sk-pool-bbbbbbbbbbbb"));
    assert_string_equal(bp->keys[1].dead, "401 invalid_api_key");
    assert_string_equal(bp->keys[2].label, "c");
    assert_int_equal(bp->keys[2].weight, 2);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(bp->keys[2].secret), "sk-stored-c"));
    assert_null(bp->keys[2].dead); /* another fingerprint: a replaced key lives */
    assert_null(bp->keys[0].dead);
    sb_registry_release(r);
    unsetenv("SB_REG_POOL_A");
    unsetenv("SB_REG_POOL_B");
    free(ct_c);
    free(ct_b);
    free(ct_wrong);
    sb_keys_master_free(mk);
}

static void test_suggest(void **state)
{
    const char *out[4];
    (void)state;
    struct sb_registry *r = build(&ents, NULL);
    size_t n = sb_registry_suggest(r, SB_SLICE("gpt-4o-mni"), NULL, out, 4);
    assert_true(n >= 1);
    assert_string_equal(out[0], "gpt-4o");
    n = sb_registry_suggest(r, SB_SLICE("M1"), NULL, out, 4);
    assert_true(n >= 1);
    assert_string_equal(out[0], "m1");
    n = sb_registry_suggest(r, SB_SLICE("defualt"), NULL, out, 1);
    assert_int_equal(n, 1);
    assert_string_equal(out[0], "default");
    assert_int_equal(sb_registry_suggest(r, SB_SLICE("zzzzzzzzzzzz"), NULL, out, 4), 0);
    assert_int_equal(sb_registry_suggest(r, SB_SLICE("m1"), NULL, out, 0), 0);
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    sb_registry_suggest(r, (struct sb_slice){longname, sizeof(longname)}, NULL, out, 4);
    sb_registry_release(r);
}

static void test_publish(void **state)
{
    (void)state;
    assert_null(sb_registry_acquire());
    struct sb_registry *a = build(&ents, NULL), *b = build(&ents, NULL);
    sb_registry_publish(a);
    struct sb_registry *got = sb_registry_acquire();
    assert_ptr_equal(got, a);
    unsigned long g = sb_registry_generation(got);
    sb_registry_publish(b); /* a stays alive: we still hold it */
    assert_non_null(sb_registry_find_model(got, SB_SLICE("m1")));
    sb_registry_release(got);
    got = sb_registry_acquire();
    assert_ptr_equal(got, b);
    assert_true(sb_registry_generation(got) > g);
    sb_registry_release(got);
    sb_registry_shutdown();
    assert_null(sb_registry_acquire());
    sb_registry_shutdown(); /* twice is fine */
}

static long refs(struct sb_registry *r)
{
    return atomic_load(&r->refs);
}

/* A book holds one reference per snapshot while leases are out, none after. */
static void test_lease_book(void **state)
{
    (void)state;
    struct sb_registry_book *book = sb_registry_book_create();
    assert_null(sb_registry_book_lease(book)); /* nothing published */
    struct sb_registry *a = build(&ents, NULL), *b = build(&ents, NULL);
    sb_registry_publish(a);
    assert_ptr_equal(sb_registry_book_lease(book), a);
    assert_ptr_equal(sb_registry_book_lease(book), a);
    assert_int_equal(refs(a), 2);  /* the published one and the book's, not one per lease */
    atomic_fetch_add(&a->refs, 1); /* the test's own, to look at a after the swap */
    sb_registry_publish(b);
    assert_ptr_equal(sb_registry_book_lease(book), b); /* new leases get the new snapshot */
    assert_int_equal(refs(a), 2);                      /* the book's and the test's */
    sb_registry_book_return(book, a);
    assert_int_equal(refs(a), 2); /* one lease of a still out */
    sb_registry_book_return(book, a);
    assert_int_equal(refs(a), 1); /* the book let go: an idle worker pins no old snapshot */
    sb_registry_release(a);
    assert_int_equal(refs(b), 2);
    sb_registry_book_return(book, b);
    assert_int_equal(refs(b), 1);
    sb_registry_book_free(book);
    sb_registry_shutdown();
}

static void test_build_from_store(void **state)
{
    char path[] = "/tmp/sb-reg-XXXXXX", url[64], wal[64];
    struct sb_store *s = NULL;
    struct sb_registry *r = NULL;
    struct sb_error err = {0};
    (void)state;
    close(mkstemp(path));
    snprintf(url, sizeof(url), "sqlite:%s", path);
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    assert_int_equal(sb_store_migrate(s, &err), SB_OK);
    assert_int_equal(sb_store_sync_system(s, &ents, &err), SB_OK);
    if (sb_registry_build_from_store(s, &r, &err) != SB_OK)
        fail_msg("%s", err.msg);
    assert_non_null(sb_registry_find_model(r, SB_SLICE("openai/accounts/x/models/y")));
    assert_non_null(sb_registry_find_model(r, SB_SLICE("openai/not-listed")));
    sb_registry_release(r);
    sb_store_close(s);
    unlink(path);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
}

/* ---- stress ---- */

static atomic_bool stop;
static atomic_long lookups;

/* Odd readers lease through a book of their own, keeping each lease across
 * the next one (so across publishes), as a busy worker does. */
static void *reader(void *arg)
{
    unsigned long last = 0;
    struct sb_registry_book *book = (uintptr_t)arg % 2 ? sb_registry_book_create() : NULL;
    struct sb_registry *held = NULL;
    while (!atomic_load(&stop)) {
        struct sb_registry *r = sb_registry_book_lease(book);
        if (!r)
            continue;
        unsigned long g = sb_registry_generation(r);
        assert_true(g >= last); /* never goes back in time */
        last = g;
        const struct sb_model *m = sb_registry_find_model(r, SB_SLICE("openai/gpt-4o-mini"));
        assert_non_null(m);
        assert_string_equal(m->provider->id, "openai");
        assert_true(sb_slice_eq_cstr(sb_secret_reveal(m->provider->api_key), "sk-stress"));
        const char *out[2];
        sb_registry_suggest(r, SB_SLICE("m2"), NULL, out, 2);
        sb_registry_book_return(book, held);
        held = r;
        atomic_fetch_add(&lookups, 1);
    }
    sb_registry_book_return(book, held);
    sb_registry_book_free(book);
    return NULL;
}

static void test_stress(void **state)
{
    enum { READERS = 4, PUBLISHES = 3000 };
    pthread_t t[READERS];
    (void)state;
    setenv("SB_REG_TEST_KEY", "sk-stress", 1);
    atomic_store(&stop, false);
    sb_registry_publish(build(&ents, NULL));
    for (int i = 0; i < READERS; i++)
        pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)i);
    for (int i = 0; i < PUBLISHES; i++)
        sb_registry_publish(build(&ents, NULL));
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    sb_registry_shutdown();
    assert_true(atomic_load(&lookups) > 0);
    unsetenv("SB_REG_TEST_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_find),
        cmocka_unit_test(test_unset_env_and_bad_file),
        cmocka_unit_test(test_encrypted_credential),
        cmocka_unit_test(test_key_pool),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_lease_book),
        cmocka_unit_test(test_build_from_store),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
