/* SPDX-License-Identifier: MIT */
/*
 * registry_store_test.c - the control plane's store operations over a real
 * SQLite file: CRUD of providers, models, routes and templates, conflicts
 * and not-found, visibility and paging, reorder and rekey atomicity,
 * system entries whose API choices survive a restart, registry_version,
 * credentials (only ciphertext and masked forms ever written) and provider
 * stats from real usage rows. A second raw sqlite3 connection checks rows.
 */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "core/arena.h"
#include "store/store.h"
#include "store/usage.h"

static char path[64];
static char url[80];
static struct sb_store *S; /* the store under test, open and migrated */
static struct sb_arena *A; /* results of the test */
static struct sb_error E;  /* the last error */

static int setup(void **state)
{
    (void)state;
    sbt_db_new("reg", path, url);
    memset(&E, 0, sizeof(E));
    S = sbt_store_open(url, &E);
    A = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_store_close(S);
    sb_arena_free(A);
    sbt_db_remove(path);
    return 0;
}

/* First column of the first row, as an integer, on a separate connection. */
static long long scalar(const char *sql)
{
    return sbt_scalar(path, sql);
}

/* Runs sql on a separate connection; returns SQLite's result code. */
static int raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t version(void)
{
    int64_t v = -1;
    assert_int_equal(sb_store_registry_version(S, &v, &E), SB_OK);
    return v;
}


static struct sb_store_provider prov(const char *id)
{
    return (struct sb_store_provider){.id = id,
                                      .type = "openai",
                                      .base_url = "https://api.example/v1",
                                      .enabled = true,
                                      .description = "d",
                                      .created_by = "admin-1"};
}

static struct sb_store_model model(const char *id, const char *provider)
{
    return (struct sb_store_model){.id = id,
                                   .provider = provider,
                                   .upstream_model = "up",
                                   .caps = {.streaming = true},
                                   .enabled = true};
}

/* ---- providers ---- */

static void test_provider_crud(void **state)
{
    struct sb_store_provider p = prov("acme"), got;
    (void)state;
    int64_t v0 = version();
    p.personal_keys_required = true;
    p.rpm = 7;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    assert_int_equal(version(), v0 + 1);
    OK(sb_store_provider_get(S, "acme", A, &got, &E));
    assert_string_equal(got.id, "acme");
    assert_string_equal(got.name, "acme"); /* defaults to the id */
    assert_string_equal(got.description, "d");
    assert_string_equal(got.created_by, "admin-1");
    assert_true(got.personal_keys_required && got.enabled && !got.is_system);
    assert_int_equal(got.rpm, 7);
    assert_true(got.created_at > 0 && got.updated_at == got.created_at);
    assert_null(got.key_masked);
    /* Duplicates, bad ids, missing fields: nothing written, no bump. */
    FAILS(sb_store_provider_create(S, &p, NULL, 0, &E), SB_E_CONFLICT, "id");
    assert_non_null(strstr(E.msg, "already exists"));
    p.id = "Bad Id";
    FAILS(sb_store_provider_create(S, &p, NULL, 0, &E), SB_E_BAD_REQUEST, "id");
    p.id = "-lead";
    FAILS(sb_store_provider_create(S, &p, NULL, 0, &E), SB_E_BAD_REQUEST, "id");
    p.id = "ok.id_x-1";
    p.base_url = NULL;
    FAILS(sb_store_provider_create(S, &p, NULL, 0, &E), SB_E_BAD_REQUEST, "base_url");
    assert_int_equal(version(), v0 + 1);
    /* Update replaces editable fields; the id cannot change. */
    p = prov(NULL);
    p.name = "Acme Inc";
    p.enabled = false;
    OK(sb_store_provider_update(S, "acme", &p, &E));
    OK(sb_store_provider_get(S, "acme", A, &got, &E));
    assert_string_equal(got.name, "Acme Inc");
    assert_false(got.enabled || got.personal_keys_required);
    assert_string_equal(got.created_by, "admin-1"); /* kept */
    p.id = "other";
    FAILS(sb_store_provider_update(S, "acme", &p, &E), SB_E_BAD_REQUEST, "id");
    p.id = NULL;
    FAILS(sb_store_provider_update(S, "nope", &p, &E), SB_E_NOT_FOUND, NULL);
    FAILS(sb_store_provider_get(S, "nope", A, &got, &E), SB_E_NOT_FOUND, NULL);
    /* Toggle and test result. */
    OK(sb_store_provider_set_enabled(S, "acme", true, &E));
    OK(sb_store_provider_set_test(S, "acme", 1234, "{\"ok\":true}", &E));
    OK(sb_store_provider_get(S, "acme", A, &got, &E));
    assert_true(got.enabled);
    assert_int_equal(got.last_tested, 1234);
    assert_string_equal(got.test_result, "{\"ok\":true}");
    FAILS(sb_store_provider_set_enabled(S, "nope", true, &E), SB_E_NOT_FOUND, NULL);
    FAILS(sb_store_provider_set_test(S, "nope", 1, "{}", &E), SB_E_NOT_FOUND, NULL);
    OK(sb_store_provider_delete(S, "acme", false, &E));
    FAILS(sb_store_provider_delete(S, "acme", false, &E), SB_E_NOT_FOUND, NULL);
}

/* A provider created with its models (a template apply) is all or nothing. */
static void test_provider_with_models(void **state)
{
    struct sb_store_model ms[2] = {model("t-a", NULL), model("t-b", NULL)};
    struct sb_store_provider p = prov("tp"), got;
    struct sb_store_model m;
    (void)state;
    FAILS(sb_store_model_create(S, &(struct sb_store_model){.provider = "tp"}, &E),
          SB_E_BAD_REQUEST, "id");
    ms[1].id = "bad id";
    FAILS(sb_store_provider_create(S, &p, ms, 2, &E), SB_E_BAD_REQUEST, "id");
    FAILS(sb_store_provider_get(S, "tp", A, &got, &E), SB_E_NOT_FOUND, NULL);
    FAILS(sb_store_model_get(S, "t-a", NULL, A, &m, &E), SB_E_NOT_FOUND, NULL);
    ms[1].id = "t-b";
    OK(sb_store_provider_create(S, &p, ms, 2, &E));
    OK(sb_store_model_get(S, "t-b", NULL, A, &m, &E));
    assert_string_equal(m.provider, "tp");
    /* Delete: refused while models exist, unless cascading. */
    FAILS(sb_store_provider_delete(S, "tp", false, &E), SB_E_CONFLICT, NULL);
    assert_non_null(strstr(E.msg, "2 models"));
    OK(sb_store_provider_delete(S, "tp", true, &E));
    assert_int_equal(scalar("SELECT COUNT(*) FROM models"), 0);
}

/* ---- models ---- */

static void test_model_crud(void **state)
{
    struct sb_store_model m = model("m-1", "p"), got;
    struct sb_store_provider p = prov("p");
    (void)state;
    FAILS(sb_store_model_create(S, &m, &E), SB_E_BAD_REQUEST, "provider");
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    m.status = "retired";
    FAILS(sb_store_model_create(S, &m, &E), SB_E_BAD_REQUEST, "status");
    m.status = "deprecated";
    m.description = "old but serving";
    m.input_per_mtok = 1.5;
    OK(sb_store_model_create(S, &m, &E));
    FAILS(sb_store_model_create(S, &m, &E), SB_E_CONFLICT, "id");
    OK(sb_store_model_get(S, "m-1", NULL, A, &got, &E));
    assert_string_equal(got.status, "deprecated");
    assert_true(got.enabled); /* deprecated still serves */
    assert_string_equal(got.description, "old but serving");
    assert_true(got.input_per_mtok == 1.5);
    assert_null(got.owner);
    /* Toggling keeps deprecated on the way back; enabled decides when status is NULL. */
    OK(sb_store_model_set_enabled(S, "m-1", false, &E));
    OK(sb_store_model_get(S, "m-1", NULL, A, &got, &E));
    assert_string_equal(got.status, "inactive");
    assert_false(got.enabled);
    OK(sb_store_model_set_enabled(S, "m-1", true, &E));
    OK(sb_store_model_get(S, "m-1", NULL, A, &got, &E));
    assert_string_equal(got.status, "active");
    m = model("m-1", "p");
    m.enabled = false;
    m.upstream_model = "up-2";
    OK(sb_store_model_update(S, "m-1", &m, &E));
    OK(sb_store_model_get(S, "m-1", NULL, A, &got, &E));
    assert_string_equal(got.status, "inactive");
    assert_string_equal(got.upstream_model, "up-2");
    m.provider = "ghost";
    FAILS(sb_store_model_update(S, "m-1", &m, &E), SB_E_BAD_REQUEST, "provider");
    m.provider = "p";
    FAILS(sb_store_model_update(S, "m-x", &m, &E), SB_E_BAD_REQUEST, "id");
    m.id = NULL;
    FAILS(sb_store_model_update(S, "m-x", &m, &E), SB_E_NOT_FOUND, NULL);
    FAILS(sb_store_model_set_priority(S, "m-x", 3, &E), SB_E_NOT_FOUND, NULL);
    OK(sb_store_model_delete(S, "m-1", &E));
    FAILS(sb_store_model_delete(S, "m-1", &E), SB_E_NOT_FOUND, NULL);
}

/* Personal models: a user sees global rows plus their own, never another's. */
static void test_visibility_and_paging(void **state)
{
    struct sb_store_provider p = prov("p"), q = prov("q");
    struct sb_store_model *list = NULL, got;
    struct sb_store_page pg;
    char id[16];
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_provider_create(S, &q, NULL, 0, &E));
    for (int i = 0; i < 10; i++) {
        struct sb_store_model m = model(id, i < 6 ? "p" : "q");
        snprintf(id, sizeof(id), "g%02d", i);
        m.id = id;
        m.fallback_priority = 10 - i; /* listed in reverse */
        m.caps.tools = i % 2 == 0;
        m.enabled = i != 3;
        OK(sb_store_model_create(S, &m, &E));
    }
    struct sb_store_model mine = model("alice-m", "p"), theirs = model("bob-m", "p");
    mine.owner = "alice";
    theirs.owner = "bob";
    OK(sb_store_model_create(S, &mine, &E));
    OK(sb_store_model_create(S, &theirs, &E));
    struct sb_store_filter f = {.visible_to = "alice"};
    OK(sb_store_model_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.total, 11);
    for (size_t i = 0; i < pg.n; i++)
        assert_string_not_equal(list[i].id, "bob-m");
    FAILS(sb_store_model_get(S, "bob-m", "alice", A, &got, &E), SB_E_NOT_FOUND, NULL);
    OK(sb_store_model_get(S, "bob-m", NULL, A, &got, &E)); /* admins see all */
    assert_string_equal(got.owner, "bob");
    OK(sb_store_model_list(S, NULL, A, &list, &pg, &E));
    assert_int_equal(pg.total, 12);
    /* Paging over priority order, with the total before paging. */
    f = (struct sb_store_filter){.provider = "p", .limit = 3, .offset = 2};
    OK(sb_store_model_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.total, 8); /* g00..g05 + both personal */
    assert_int_equal(pg.n, 3);
    /* alice-m, bob-m (priority 0), then g05 g04 g03 */
    assert_string_equal(list[0].id, "g05");
    assert_string_equal(list[2].id, "g03");
    f = (struct sb_store_filter){.capability = "tools", .enabled = SB_STORE_YES};
    OK(sb_store_model_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.total, 5);
    f = (struct sb_store_filter){.enabled = SB_STORE_NO};
    OK(sb_store_model_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.total, 1);
    assert_string_equal(list[0].id, "g03");
    f = (struct sb_store_filter){.offset = 100};
    OK(sb_store_model_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.n, 0);
    assert_int_equal(pg.total, 12);
    f = (struct sb_store_filter){.capability = "telepathy"};
    FAILS(sb_store_model_list(S, &f, A, &list, &pg, &E), SB_E_BAD_REQUEST, "capability");
    f = (struct sb_store_filter){.limit = -1};
    FAILS(sb_store_model_list(S, &f, A, &list, &pg, &E), SB_E_BAD_REQUEST, "limit");
    struct sb_store_provider *ps = NULL;
    f = (struct sb_store_filter){.provider = "p"}; /* providers are not filtered by provider */
    FAILS(sb_store_provider_list(S, &f, A, &ps, &pg, &E), SB_E_BAD_REQUEST, "provider");
    f = (struct sb_store_filter){.limit = 1};
    OK(sb_store_provider_list(S, &f, A, &ps, &pg, &E));
    assert_int_equal(pg.n, 1);
    assert_int_equal(pg.total, 2);
    assert_string_equal(ps[0].id, "p");
}

/* ---- ordering ---- */

static void three_models(void)
{
    struct sb_store_provider p = prov("p"), q = prov("q");
    struct sb_store_model ms[] = {model("a", "p"), model("b", "p"), model("c", "p"),
                                  model("z", "q")};
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_provider_create(S, &q, NULL, 0, &E));
    for (size_t i = 0; i < 4; i++) {
        ms[i].fallback_priority = 50;
        OK(sb_store_model_create(S, &ms[i], &E));
    }
}

static void test_reorder(void **state)
{
    const char *order[] = {"c", "a", "b"};
    const char *bad[] = {"b", "ghost", "a"};
    const char *twice[] = {"a", "a"};
    (void)state;
    three_models();
    OK(sb_store_model_reorder(S, order, 3, &E));
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'c'"), 1);
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'a'"), 2);
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'b'"), 3);
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'z'"), 50);
    int64_t v = version();
    /* An unknown id in the middle: the whole reorder is undone. */
    FAILS(sb_store_model_reorder(S, bad, 3, &E), SB_E_NOT_FOUND, "ids[1]");
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'b'"), 3);
    FAILS(sb_store_model_reorder(S, twice, 2, &E), SB_E_BAD_REQUEST, "ids[1]");
    FAILS(sb_store_model_reorder(S, twice, 0, &E), SB_E_BAD_REQUEST, "ids");
    assert_int_equal(version(), v);
    OK(sb_store_model_set_priority(S, "z", 9, &E));
    assert_int_equal(scalar("SELECT fallback_priority FROM models WHERE identifier = 'z'"), 9);
    assert_int_equal(version(), v + 1);
}

static void test_champion_default(void **state)
{
    (void)state;
    three_models();
    OK(sb_store_model_set_champion(S, "a", &E));
    OK(sb_store_model_set_champion(S, "z", &E)); /* another provider: independent */
    OK(sb_store_model_set_champion(S, "b", &E));
    OK(sb_store_model_set_default(S, "c", &E));
    assert_int_equal(scalar("SELECT COUNT(*) FROM models WHERE is_champion = 1"), 2);
    assert_int_equal(scalar("SELECT is_champion FROM models WHERE identifier = 'b'"), 1);
    assert_int_equal(scalar("SELECT is_champion FROM models WHERE identifier = 'z'"), 1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM models WHERE is_default = 1"), 1);
    struct sb_store_model m;
    OK(sb_store_model_get(S, "c", NULL, A, &m, &E));
    assert_true(m.is_default && !m.is_champion);
    FAILS(sb_store_model_set_default(S, "ghost", &E), SB_E_NOT_FOUND, NULL);
    assert_int_equal(scalar("SELECT is_default FROM models WHERE identifier = 'c'"), 1);
}

/* ---- system entries ---- */

static struct sb_store_provider sys_p[] = {
    {.id = "sp", .type = "openai", .base_url = "https://s/v1", .enabled = true, .is_system = true},
};
static struct sb_store_model sys_m[] = {
    {.id = "s1", .provider = "sp", .fallback_priority = 1, .enabled = true, .is_system = true},
    {.id = "s2", .provider = "sp", .fallback_priority = 2, .enabled = true, .is_system = true},
};
static const char *sys_targets[] = {"s1"};
static struct sb_store_route sys_r[] = {
    {.id = "sr", .targets = sys_targets, .ntargets = 1, .is_system = true},
};

static void sync_config(void)
{
    struct sb_store_entities e = {.providers = sys_p,
                                  .nproviders = 1,
                                  .models = sys_m,
                                  .nmodels = 2,
                                  .routes = sys_r,
                                  .nroutes = 1};
    OK(sb_store_sync_system(S, &e, &E));
}

static void test_system_entries_refuse_edits(void **state)
{
    struct sb_store_provider p = prov(NULL);
    struct sb_store_model m = model(NULL, "sp");
    struct sb_store_route r = {.targets = sys_targets, .ntargets = 1};
    (void)state;
    int64_t v = version();
    sync_config();
    assert_int_equal(version(), v + 1); /* a start bumps too */
    FAILS(sb_store_provider_update(S, "sp", &p, &E), SB_E_CONFLICT, NULL);
    assert_non_null(strstr(E.msg, "config file"));
    FAILS(sb_store_provider_delete(S, "sp", true, &E), SB_E_CONFLICT, NULL);
    FAILS(sb_store_model_update(S, "s1", &m, &E), SB_E_CONFLICT, NULL);
    FAILS(sb_store_model_delete(S, "s1", &E), SB_E_CONFLICT, NULL);
    FAILS(sb_store_route_update(S, "sr", &r, &E), SB_E_CONFLICT, NULL);
    FAILS(sb_store_route_delete(S, "sr", &E), SB_E_CONFLICT, NULL);
    assert_int_equal(version(), v + 1);
    /* An API provider holding a system model cannot be deleted, even by cascade. */
    raw_exec("INSERT INTO providers(identifier, name, type, base_url, is_system, created_at,"
             " updated_at) VALUES('api', 'api', 'openai', 'https://a', 0, 0, 0);"
             "UPDATE models SET provider_id = (SELECT id FROM providers WHERE identifier = 'api')"
             " WHERE identifier = 's2'");
    FAILS(sb_store_provider_delete(S, "api", true, &E), SB_E_CONFLICT, NULL);
    assert_non_null(strstr(E.msg, "config file"));
}

/* Toggle, priority, champion and default on system rows survive a restart;
 * fields the API never touched still follow the file. */
static void test_sync_keeps_api_choices(void **state)
{
    const char *order[] = {"s2", "s1"};
    struct sb_store_entities *e = NULL;
    (void)state;
    sync_config();
    OK(sb_store_model_set_enabled(S, "s1", false, &E));
    OK(sb_store_provider_set_enabled(S, "sp", false, &E));
    OK(sb_store_model_reorder(S, order, 2, &E));
    OK(sb_store_model_set_champion(S, "s2", &E));
    OK(sb_store_model_set_default(S, "s1", &E));
    /* The restart: a new handle, the same config, except s2's file status changes. */
    sb_store_close(S);
    OK(sb_store_open(url, &S, &E));
    OK(sb_store_migrate(S, &E));
    sys_m[1].enabled = false;
    sync_config();
    sys_m[1].enabled = true;
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->nmodels, 2);
    assert_string_equal(e->models[0].id, "s2"); /* priority 1 now */
    assert_int_equal(e->models[0].fallback_priority, 1);
    assert_true(e->models[0].is_champion);
    /* s2's status was never set by the API: the file's new value applies. */
    assert_false(e->models[0].enabled);
    assert_string_equal(e->models[1].id, "s1");
    assert_false(e->models[1].enabled);
    assert_true(e->models[1].is_default);
    assert_int_equal(e->models[1].fallback_priority, 2);
    assert_false(e->providers[0].enabled);
    assert_true(e->providers[0].is_system);
    sb_store_entities_free(e);
    /* Turning it back on is also an API choice that sticks. */
    OK(sb_store_model_set_enabled(S, "s1", true, &E));
    sys_m[0].enabled = false;
    sync_config();
    sys_m[0].enabled = true;
    assert_int_equal(scalar("SELECT COUNT(*) FROM models WHERE identifier = 's1'"
                            " AND status = 'active'"),
                     1);
}

/* ---- routes and templates ---- */

static void test_routes(void **state)
{
    const char *targets[] = {"a", "p/b"};
    const int64_t weights[] = {3, 1}, negative[] = {1, -1};
    struct sb_store_route r = {.id = "mix",
                               .strategy = "weighted",
                               .targets = targets,
                               .ntargets = 2,
                               .weights = weights},
                          got, *list = NULL;
    struct sb_store_page pg;
    struct sb_store_entities *e = NULL;
    (void)state;
    OK(sb_store_route_create(S, &r, &E));
    FAILS(sb_store_route_create(S, &r, &E), SB_E_CONFLICT, "id");
    OK(sb_store_route_get(S, "mix", A, &got, &E));
    assert_string_equal(got.strategy, "weighted");
    assert_int_equal(got.ntargets, 2);
    assert_string_equal(got.targets[1], "p/b");
    assert_non_null(got.weights);
    assert_int_equal(got.weights[0], 3);
    assert_int_equal(got.cache_ttl_s, 0);
    assert_int_equal(scalar("SELECT COUNT(*) FROM routes WHERE options = '{}'"), 1);
    /* Targets stay a list of strings (the config file's shape). */
    assert_int_equal(scalar("SELECT COUNT(*) FROM routes WHERE targets = '[\"a\",\"p/b\"]'"), 1);
    r.id = NULL;
    r.weights = NULL;
    r.strategy = NULL;
    OK(sb_store_route_update(S, "mix", &r, &E));
    OK(sb_store_route_get(S, "mix", A, &got, &E));
    assert_null(got.weights);
    assert_string_equal(got.strategy, "priority");
    /* The cache block round-trips through routes.options (migration 7). */
    r.cache_ttl_s = 90;
    r.cache_shared = true;
    OK(sb_store_route_update(S, "mix", &r, &E));
    OK(sb_store_route_get(S, "mix", A, &got, &E));
    assert_int_equal(got.cache_ttl_s, 90);
    assert_true(got.cache_shared);
    assert_false(got.cache_sampled);
    assert_int_equal(scalar("SELECT COUNT(*) FROM routes WHERE options ="
                            " '{\"cache\":{\"ttl_s\":90,\"shared\":true,\"sampled\":false}}'"),
                     1);
    r.cache_ttl_s = 0;
    r.cache_shared = false;
    r.weights = negative;
    FAILS(sb_store_route_update(S, "mix", &r, &E), SB_E_BAD_REQUEST, "weights");
    r.ntargets = 0;
    FAILS(sb_store_route_update(S, "mix", &r, &E), SB_E_BAD_REQUEST, "targets");
    struct sb_store_filter f = {.visible_to = "u"};
    FAILS(sb_store_route_list(S, &f, A, &list, &pg, &E), SB_E_BAD_REQUEST, "visible_to");
    OK(sb_store_route_list(S, NULL, A, &list, &pg, &E));
    assert_int_equal(pg.n, 1);
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->nroutes, 1);
    sb_store_entities_free(e);
    OK(sb_store_route_delete(S, "mix", &E));
    FAILS(sb_store_route_get(S, "mix", A, &got, &E), SB_E_NOT_FOUND, NULL);
}

static void test_templates(void **state)
{
    struct sb_store_template t = {.id = "openai-std",
                                  .type = "openai",
                                  .base_url = "https://api.openai.com/v1",
                                  .options = "{\"timeout_ms\":60000}",
                                  .models = "[{\"id\":\"gpt-4o-mini\"}]"},
                             got, *list = NULL;
    struct sb_store_page pg;
    struct sb_store_entities *e = NULL;
    (void)state;
    OK(sb_store_template_create(S, &t, &E));
    FAILS(sb_store_template_create(S, &t, &E), SB_E_CONFLICT, "id");
    t.id = "mine";
    t.owner = "alice";
    t.options = "[1]";
    FAILS(sb_store_template_create(S, &t, &E), SB_E_BAD_REQUEST, "options");
    t.options = NULL;
    t.models = "{not json";
    FAILS(sb_store_template_create(S, &t, &E), SB_E_BAD_REQUEST, "models");
    t.models = NULL;
    OK(sb_store_template_create(S, &t, &E));
    OK(sb_store_template_get(S, "openai-std", "bob", A, &got, &E));
    assert_string_equal(got.models, "[{\"id\":\"gpt-4o-mini\"}]");
    assert_string_equal(got.name, "openai-std");
    FAILS(sb_store_template_get(S, "mine", "bob", A, &got, &E), SB_E_NOT_FOUND, NULL);
    OK(sb_store_template_get(S, "mine", "alice", A, &got, &E));
    assert_string_equal(got.options, "{}");
    struct sb_store_filter f = {.visible_to = "bob"};
    OK(sb_store_template_list(S, &f, A, &list, &pg, &E));
    assert_int_equal(pg.total, 1);
    t.id = NULL;
    t.description = "changed";
    OK(sb_store_template_update(S, "mine", &t, &E));
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->ntemplates, 2);
    assert_string_equal(e->templates[0].id, "mine");
    assert_string_equal(e->templates[0].description, "changed");
    assert_string_equal(e->templates[0].owner, "alice");
    sb_store_entities_free(e);
    raw_exec("UPDATE templates SET is_system = 1 WHERE identifier = 'openai-std'");
    FAILS(sb_store_template_delete(S, "openai-std", &E), SB_E_CONFLICT, NULL);
    OK(sb_store_template_delete(S, "mine", &E));
    FAILS(sb_store_template_delete(S, "mine", &E), SB_E_NOT_FOUND, NULL);
}

/* ---- credentials ---- */

static struct sb_store_credential cred(const char *provider, const char *user, const char *ct)
{
    return (struct sb_store_credential){.provider = provider,
                                        .user = user,
                                        .key_ciphertext = ct,
                                        .key_id = "kid-1",
                                        .masked = "sk-...wxyz"};
}

static void put(const char *provider, const char *user, const char *ct)
{
    struct sb_store_credential c = cred(provider, user, ct);
    OK(sb_store_credential_put(S, &c, &E));
}

static void test_credentials(void **state)
{
    struct sb_store_provider p = prov("p"), q = prov("q"), got;
    struct sb_store_credential c = cred("p", NULL, "CT-SYS-1"), one, *list = NULL;
    struct sb_store_entities *e = NULL;
    size_t n = 0;
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_provider_create(S, &q, NULL, 0, &E));
    OK(sb_store_credential_put(S, &c, &E));
    c.key_ciphertext = "CT-SYS-2"; /* replaces, never duplicates */
    OK(sb_store_credential_put(S, &c, &E));
    put("p", "alice", "CT-A");
    put("q", "alice", "CT-AQ");
    put("p", "bob", "CT-B");
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials"), 4);
    /* The unique index holds for the system row too (NULL user is one value). */
    assert_int_not_equal(raw_exec("INSERT INTO provider_credentials(provider_id, user_id,"
                                  " key_ciphertext, key_id, masked, created_at, updated_at)"
                                  " SELECT provider_id, NULL, 'x', 'k', 'm', 0, 0"
                                  " FROM provider_credentials WHERE user_id IS NULL"),
                         SQLITE_OK);
    OK(sb_store_credential_list(S, "alice", A, &list, &n, &E));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].provider, "p");
    assert_string_equal(list[1].key_ciphertext, "CT-AQ");
    OK(sb_store_credential_list(S, NULL, A, &list, &n, &E));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].key_ciphertext, "CT-SYS-2");
    assert_null(list[0].user);
    OK(sb_store_credential_get(S, "p", "bob", NULL, A, &one, &E));
    assert_string_equal(one.key_ciphertext, "CT-B");
    assert_string_equal(one.masked, "sk-...wxyz");
    assert_string_equal(one.key_id, "kid-1");
    FAILS(sb_store_credential_get(S, "q", "bob", NULL, A, &one, &E), SB_E_NOT_FOUND, NULL);
    /* The provider shows the system credential masked; load carries everything. */
    OK(sb_store_provider_get(S, "p", A, &got, &E));
    assert_string_equal(got.key_masked, "sk-...wxyz");
    assert_string_equal(got.key_ciphertext, "CT-SYS-2");
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->ncredentials, 3); /* personal ones only */
    assert_string_equal(e->credentials[0].user, "alice");
    assert_string_equal(e->credentials[1].user, "bob");
    assert_string_equal(e->providers[0].key_ciphertext, "CT-SYS-2");
    sb_store_entities_free(e);
    /* Errors. */
    c.provider = "ghost";
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_NOT_FOUND, "provider");
    c = cred("p", "", "x");
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_BAD_REQUEST, "user");
    c = cred("p", NULL, NULL);
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_BAD_REQUEST, "key_ciphertext");
    OK(sb_store_credential_delete(S, "p", "bob", NULL, &E));
    FAILS(sb_store_credential_delete(S, "p", "bob", NULL, &E), SB_E_NOT_FOUND, NULL);
    /* Deleting the provider (no models) takes its credentials along. */
    OK(sb_store_provider_delete(S, "p", false, &E));
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials"), 1);
}

/* Key pools: labelled system keys beside the primary, weights, dead keys. */
static void test_key_pool(void **state)
{
    struct sb_store_provider p = prov("p");
    struct sb_store_credential c = cred("p", NULL, "CT-PRIMARY"), one, *list = NULL;
    struct sb_store_entities *e = NULL;
    size_t n = 0;
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_credential_put(S, &c, &E));
    c = cred("p", NULL, "CT-B");
    c.label = "b";
    c.weight = 3;
    OK(sb_store_credential_put(S, &c, &E));
    c.key_ciphertext = "CT-B2"; /* the same label replaces */
    OK(sb_store_credential_put(S, &c, &E));
    c = cred("p", NULL, "CT-A");
    c.label = "a";
    OK(sb_store_credential_put(S, &c, &E));
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials"), 3);
    OK(sb_store_credential_list(S, NULL, A, &list, &n, &E));
    assert_int_equal(n, 3); /* by label: "" (primary), a, b */
    assert_string_equal(list[0].label, "");
    assert_string_equal(list[1].label, "a");
    assert_int_equal(list[1].weight, 1);
    assert_int_equal(list[2].weight, 3);
    OK(sb_store_credential_get(S, "p", NULL, "b", A, &one, &E));
    assert_string_equal(one.key_ciphertext, "CT-B2");
    /* The provider's own credential is still the primary one. */
    struct sb_store_provider got;
    OK(sb_store_provider_get(S, "p", A, &got, &E));
    assert_string_equal(got.key_ciphertext, "CT-PRIMARY");
    /* Labels are names, and a user's own key has none. */
    c.label = "Not Ok";
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_BAD_REQUEST, "label");
    c = cred("p", "alice", "CT-U");
    c.label = "x";
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_BAD_REQUEST, "label");
    c = cred("p", NULL, "CT-W");
    c.label = "w";
    c.weight = 1000001;
    FAILS(sb_store_credential_put(S, &c, &E), SB_E_BAD_REQUEST, "weight");
    /* Dead keys: upsert by provider + label, loaded with the registry. */
    struct sb_store_dead_key d = {"p", "a", "0123456789abcdef", "401 invalid_api_key", 5};
    OK(sb_store_dead_key_put(S, &d, &E));
    d.fingerprint = "fedcba9876543210";
    OK(sb_store_dead_key_put(S, &d, &E));
    OK(sb_store_load(S, &e, &E));
    assert_int_equal(e->npool, 2); /* a, b: the primary rides on the provider */
    assert_string_equal(e->pool[0].label, "a");
    assert_int_equal(e->ndead_keys, 1);
    assert_string_equal(e->dead_keys[0].fingerprint, "fedcba9876543210");
    assert_string_equal(e->dead_keys[0].reason, "401 invalid_api_key");
    sb_store_entities_free(e);
    OK(sb_store_dead_key_delete(S, "p", "a", &E));
    OK(sb_store_dead_key_delete(S, "p", "a", &E)); /* none left: not an error */
    assert_int_equal(scalar("SELECT COUNT(*) FROM dead_keys"), 0);
    OK(sb_store_credential_delete(S, "p", NULL, "b", &E));
    FAILS(sb_store_credential_delete(S, "p", NULL, "b", &E), SB_E_NOT_FOUND, NULL);
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials"), 2);
}

/* last_used_at of models: raised by usage, never lowered, no registry change. */
static void test_model_touch(void **state)
{
    struct sb_store_provider p = prov("p");
    struct sb_store_model m = {.id = "m1", .provider = "p", .enabled = true}, got;
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_model_create(S, &m, &E));
    OK(sb_store_model_get(S, "m1", NULL, A, &got, &E));
    assert_int_equal(got.last_used_at, 0);
    int64_t v = version();
    struct sb_store_model_use uses[] = {{"m1", 5000}, {"ghost", 7000}};
    struct sb_store_usage_tx tx = {.models = uses, .nmodels = 2};
    OK(sb_store_write_usage(S, &tx, &E));
    uses[0].ts_ms = 3000; /* older: kept at 5000 */
    tx.nmodels = 1;
    OK(sb_store_write_usage(S, &tx, &E));
    OK(sb_store_model_get(S, "m1", NULL, A, &got, &E));
    assert_int_equal(got.last_used_at, 5000);
    assert_int_equal(version(), v);
}

/* Counts the cells of every table that contain needle. */
static long long cells_containing(const char *needle)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *tables = NULL;
    long long hits = 0;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &tables,
                       NULL);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[128];
        sqlite3_stmt *st = NULL;
        snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", sqlite3_column_text(tables, 0));
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW)
            for (int i = 0; i < sqlite3_column_count(st); i++) {
                const char *v = (const char *)sqlite3_column_text(st, i);
                hits += v && strstr(v, needle);
            }
        sqlite3_finalize(st);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    return hits;
}

/* A put writes the ciphertext, key id and masked form, each in its own
 * column of one row, and nothing else that came from the caller's key. */
static void test_credential_columns_only(void **state)
{
    struct sb_store_provider p = prov("p");
    struct sb_store_credential c = {.provider = "p",
                                    .user = "alice",
                                    .key_ciphertext = "Q0lQSEVSVEVYVC1PTkxZ",
                                    .key_id = "K7",
                                    .masked = "sk-...MASK"};
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_credential_put(S, &c, &E));
    assert_int_equal(cells_containing("Q0lQSEVSVEVYVC1PTkxZ"), 1);
    assert_int_equal(cells_containing("sk-...MASK"), 1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials WHERE"
                            " key_ciphertext = 'Q0lQSEVSVEVYVC1PTkxZ' AND masked = 'sk-...MASK'"
                            " AND key_id = 'K7' AND user_id = 'alice'"),
                     1);
    /* The provider row did not change (no key material in auth_config). */
    assert_int_equal(scalar("SELECT COUNT(*) FROM providers WHERE auth_config = '{}'"), 1);
}

/* ---- rekey ---- */

struct rekey_state {
    int calls;
    int fail_at; /* 1-based call that fails, 0 = none */
    bool no_key_id;
};

static sb_err rekey_cb(void *ud, const struct sb_store_credential *c, char **ct, char *kid,
                       struct sb_error *err)
{
    struct rekey_state *st = ud;
    char buf[128];
    if (++st->calls == st->fail_at)
        return sb_fail(err, SB_E_INTERNAL, "decrypt failed for %s", c->provider);
    snprintf(buf, sizeof(buf), "NEW(%s)", c->key_ciphertext);
    *ct = strdup(buf);
    if (!st->no_key_id)
        snprintf(kid, SB_STORE_KEY_ID_MAX, "kid-2");
    return SB_OK;
}

static void test_rekey(void **state)
{
    struct sb_store_provider p = prov("p");
    struct rekey_state rs = {.fail_at = 2};
    size_t n = 99;
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    put("p", NULL, "C1");
    put("p", "u1", "C2");
    put("p", "u2", "C3");
    int64_t v = version();
    /* Fails on the second row: the first row's new ciphertext is rolled back. */
    FAILS(sb_store_rekey(S, rekey_cb, &rs, &n, &E), SB_E_INTERNAL, NULL);
    assert_int_equal(rs.calls, 2);
    assert_int_equal(n, 0);
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials WHERE key_id = 'kid-1'"
                            " AND key_ciphertext IN ('C1', 'C2', 'C3')"),
                     3);
    assert_int_equal(version(), v);
    rs = (struct rekey_state){.no_key_id = true};
    FAILS(sb_store_rekey(S, rekey_cb, &rs, &n, &E), SB_E_INTERNAL, NULL);
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials WHERE key_id = 'kid-1'"), 3);
    rs = (struct rekey_state){0};
    OK(sb_store_rekey(S, rekey_cb, &rs, &n, &E));
    assert_int_equal(n, 3);
    assert_int_equal(scalar("SELECT COUNT(*) FROM provider_credentials WHERE key_id = 'kid-2'"
                            " AND key_ciphertext LIKE 'NEW(C_)'"),
                     3);
    assert_int_equal(version(), v + 1);
}

/* ---- version and stats ---- */

static void test_version_bumps(void **state)
{
    const char *t[] = {"x"};
    struct sb_store_provider p = prov("p");
    struct sb_store_model m = model("m", "p");
    struct sb_store_route r = {.id = "r", .targets = t, .ntargets = 1};
    struct sb_store_template tp = {.id = "t", .type = "openai"};
    struct sb_store_credential c = cred("p", NULL, "C");
    (void)state;
    assert_int_equal(version(), 0);
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_model_create(S, &m, &E));
    OK(sb_store_route_create(S, &r, &E));
    OK(sb_store_template_create(S, &tp, &E));
    OK(sb_store_credential_put(S, &c, &E));
    OK(sb_store_model_set_champion(S, "m", &E));
    OK(sb_store_model_set_default(S, "m", &E));
    OK(sb_store_model_set_enabled(S, "m", false, &E));
    OK(sb_store_provider_set_enabled(S, "p", false, &E));
    assert_int_equal(version(), 9);
    OK(sb_store_provider_set_test(S, "p", 5, "{}", &E)); /* not a registry change */
    assert_int_equal(version(), 9);
    OK(sb_store_credential_delete(S, "p", NULL, NULL, &E));
    OK(sb_store_template_delete(S, "t", &E));
    OK(sb_store_route_delete(S, "r", &E));
    OK(sb_store_model_delete(S, "m", &E));
    OK(sb_store_provider_delete(S, "p", false, &E));
    assert_int_equal(version(), 14);
    /* Another connection sees the same counter. */
    assert_int_equal(scalar("SELECT CAST(value AS INTEGER) FROM settings"
                            " WHERE key = 'registry_version'"),
                     14);
}

static void usage_row(struct sb_usage *u, const char *provider, int64_t ts, double latency,
                      const char *status, int64_t tokens)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "r-%lld", (long long)ts);
    snprintf(u->provider, sizeof(u->provider), "%s", provider);
    snprintf(u->status, sizeof(u->status), "%s", status);
    u->ts_ms = ts;
    u->latency_ms = latency;
    u->prompt_tokens = tokens;
    u->completion_tokens = tokens < 0 ? -1 : 2 * tokens;
    u->cost_usd = 0.25;
    u->http_status = 200;
}

static void test_stats(void **state)
{
    struct sb_store_provider p = prov("p"), q = prov("q"), r = prov("r");
    struct sb_usage rows[24];
    struct sb_store_provider_stats *st = NULL;
    size_t n = 0;
    (void)state;
    OK(sb_store_provider_create(S, &p, NULL, 0, &E));
    OK(sb_store_provider_create(S, &q, NULL, 0, &E));
    OK(sb_store_provider_create(S, &r, NULL, 0, &E));
    /* p: 20 rows in the window, latencies 20..1 ms, 2 errors, one unknown count. */
    for (int i = 0; i < 20; i++)
        usage_row(&rows[i], "p", 1000 + i, 20 - i, i < 2 ? "error" : "ok", i == 5 ? -1 : 10);
    usage_row(&rows[20], "p", 5000, 999, "ok", 10); /* outside the window */
    usage_row(&rows[21], "q", 1500, 7, "cancelled", 1);
    usage_row(&rows[22], "gone", 1500, 7, "ok", 1); /* a deleted provider */
    usage_row(&rows[23], "q", 999, 7, "ok", 1);     /* before the window */
    OK(sb_store_insert_usage(S, rows, 24, &E));
    OK(sb_store_provider_stats(S, NULL, 1000, 5000, A, &st, &n, &E));
    assert_int_equal(n, 3);
    assert_string_equal(st[0].provider, "p");
    assert_int_equal(st[0].requests, 20);
    assert_int_equal(st[0].errors, 2);
    assert_true(st[0].latency_p50_ms == 10); /* nearest rank: 10th of 20 */
    assert_true(st[0].latency_p95_ms == 19); /* 19th of 20 */
    assert_int_equal(st[0].prompt_tokens, 190);
    assert_int_equal(st[0].completion_tokens, 380);
    assert_true(st[0].cost_usd > 4.99 && st[0].cost_usd < 5.01);
    assert_int_equal(st[1].requests, 1);
    assert_int_equal(st[1].errors, 1); /* cancelled is not ok */
    assert_true(st[1].latency_p50_ms == 7 && st[1].latency_p95_ms == 7);
    assert_string_equal(st[2].provider, "r");
    assert_int_equal(st[2].requests, 0);
    assert_true(st[2].latency_p95_ms == 0);
    OK(sb_store_provider_stats(S, "q", 0, 10000, A, &st, &n, &E));
    assert_int_equal(n, 1);
    assert_int_equal(st[0].requests, 2);
    FAILS(sb_store_provider_stats(S, "gone", 0, 10000, A, &st, &n, &E), SB_E_NOT_FOUND, NULL);
    FAILS(sb_store_provider_stats(S, NULL, 10, 5, A, &st, &n, &E), SB_E_BAD_REQUEST, "from");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_provider_crud),
        T(test_provider_with_models),
        T(test_model_crud),
        T(test_visibility_and_paging),
        T(test_reorder),
        T(test_champion_default),
        T(test_system_entries_refuse_edits),
        T(test_sync_keeps_api_choices),
        T(test_routes),
        T(test_templates),
        T(test_credentials),
        T(test_key_pool),
        T(test_model_touch),
        T(test_credential_columns_only),
        T(test_rekey),
        T(test_version_bumps),
        T(test_stats),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
