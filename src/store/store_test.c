/* SPDX-License-Identifier: MIT */
/*
 * store_test.c - the store plug point over a real SQLite file: URL
 * dispatch, migrations, settings, syncing system entries (and leaving API
 * entries alone), loading them back field by field, batched usage inserts.
 * A second raw sqlite3 connection plays "the API" and checks the rows.
 */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_testlib.h"

#include "store/store.h"
#include "store/usage.h"

static char path[64];
static char url[80];

static int setup(void **state)
{
    (void)state;
    sbt_db_new("store", path, url);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbt_db_remove(path);
    return 0;
}

static struct sb_store *open_migrated(void)
{
    struct sb_error err = {0};
    return sbt_store_open(url, &err);
}

/* Runs sql on a separate connection and returns the first column of the first row as an integer. */
static long long scalar(const char *sql)
{
    return sbt_scalar(path, sql);
}

static void raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void test_open_errors(void **state)
{
    struct sb_store *s = NULL;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_store_open("postgres://u@h/db", &s, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "not built yet"));
    assert_int_equal(sb_store_open("mysql://x", &s, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "unknown URL scheme"));
    assert_int_equal(sb_store_open("sqlite:", &s, &err), SB_E_CONFIG);
    assert_int_equal(sb_store_open("sqlite:/nonexistent-dir/x/y.db", &s, &err), SB_E_STORE);
    assert_null(s);
    sb_store_close(NULL);
}

static void test_migrate(void **state)
{
    struct stat st;
    struct sb_error err = {0};
    (void)state;
    struct sb_store *s = open_migrated();
    assert_int_equal(sb_store_migrate(s, &err), SB_OK); /* idempotent */
    assert_int_equal(sb_store_ping(s, &err), SB_OK);
    sb_store_close(s);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(scalar("SELECT COUNT(*) FROM schema_migrations"), (long long)sb__nmigrations);
    assert_int_equal(scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                            "('providers', 'provider_credentials', 'models', 'routes', "
                            "'usage_logs', 'settings', 'api_keys')"),
                     7);
    /* The database is in WAL mode (persistent, so a fresh connection sees it). */
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
    /* A schema newer than this build is refused. */
    raw_exec("INSERT INTO schema_migrations VALUES (99, 'future', 0)");
    s = NULL;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    assert_int_equal(sb_store_migrate(s, &err), SB_E_STORE);
    assert_non_null(strstr(err.msg, "newer"));
    sb_store_close(s);
}

/* Migration 12 on a database of before: usage rows get their start as id,
 * in their old order within a millisecond, every other column kept, the
 * time index gone. Rebuilt here as it was: the old table, rows by rowid. */
static void test_migrate_usage_ids(void **state)
{
    struct sb_error err = {0};
    (void)state;
    sb_store_close(open_migrated());
    raw_exec("DROP TABLE usage_logs;"
             "CREATE TABLE usage_logs (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL,"
             " ts BIGINT NOT NULL, user_id TEXT, key_id TEXT, route TEXT, provider TEXT,"
             " model TEXT, variant TEXT, status TEXT NOT NULL, http_status INTEGER NOT NULL,"
             " prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,"
             " cost_usd DOUBLE PRECISION NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,"
             " ttft_ms DOUBLE PRECISION NOT NULL, streamed SMALLINT NOT NULL,"
             " fallbacks INTEGER NOT NULL, error_code TEXT);"
             "CREATE INDEX usage_logs_ts ON usage_logs(ts);"
             "DELETE FROM schema_migrations WHERE version = 12;");
    /* Old ids in completion order; three rows share a millisecond (c before a). */
    static const struct {
        int id;
        long long ts;
    } rows[] = {{1, 1700000000005LL}, {2, 1700000000001LL},   {3, 1700000000005LL}, {4, -7},
                {5, 1700000000005LL}, {6, 9000000000000000LL}};
    char sql[512];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO usage_logs VALUES(%d, 'r%d', %lld, 'u', '3', 'rt', 'p', 'm', 'v',"
                 " 'ok', 200, %d, 7, 0.5, 12.5, -1, 1, 2, NULL)",
                 rows[i].id, rows[i].id, rows[i].ts, rows[i].id * 10);
        raw_exec(sql);
    }
    struct sb_store *s = NULL;
    assert_int_equal(sb_store_open(url, &s, &err), SB_OK);
    assert_int_equal(sb_store_migrate(s, &err), SB_OK);
    sb_store_close(s);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r2'"),
                     1700000000001LL << 20);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r1'"),
                     1700000000005LL << 20);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r3'"),
                     (1700000000005LL << 20) + 1);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r5'"),
                     (1700000000005LL << 20) + 2);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r4'"), 0);
    assert_int_equal(scalar("SELECT id FROM usage_logs WHERE request_id = 'r6'"),
                     8796093022206LL << 20);
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs WHERE ts = -7 AND prompt_tokens = 40"
                            " AND user_id = 'u' AND key_id = '3' AND route = 'rt' AND variant = 'v'"
                            " AND completion_tokens = 7 AND cost_usd = 0.5 AND latency_ms = 12.5"
                            " AND ttft_ms = -1 AND streamed = 1 AND fallbacks = 2"
                            " AND error_code IS NULL"),
                     1);
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), 6);
    assert_int_equal(scalar("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index'"
                            " AND tbl_name = 'usage_logs'"),
                     0);
}

static void test_settings(void **state)
{
    struct sb_error err = {0};
    char *v = (char *)"junk";
    (void)state;
    struct sb_store *s = open_migrated();
    assert_int_equal(sb_store_setting_get(s, "k", &v, &err), SB_OK);
    assert_null(v);
    assert_int_equal(sb_store_setting_set(s, "k", "one", &err), SB_OK);
    assert_int_equal(sb_store_setting_get(s, "k", &v, &err), SB_OK);
    assert_string_equal(v, "one");
    free(v);
    assert_int_equal(sb_store_setting_set(s, "k", "two", &err), SB_OK);
    assert_int_equal(sb_store_setting_get(s, "k", &v, &err), SB_OK);
    assert_string_equal(v, "two");
    free(v);
    sb_store_close(s);
}

/* ---- system entries ---- */

static struct sb_store_kv headers[] = {{"X-Team", "platform"}, {"x-q", "a \"b\""}};
static const char *targets[] = {"m1", "p1/up/with/slash"};

static struct sb_store_provider providers[] = {
    {.id = "p1",
     .type = "openai",
     .name = "P One",
     .base_url = "https://a/v1",
     .auth_method = "bearer",
     .api_key = "env:P1_KEY",
     .headers = headers,
     .nheaders = 2,
     .rpm = 5,
     .tpm = 6000,
     .timeout_ms = 1234,
     .connect_timeout_ms = 55,
     .api_version = "2024-10-21",
     .enabled = true,
     .is_system = true},
    {.id = "p2",
     .type = "bedrock",
     .name = "P Two",
     .base_url = "https://b",
     .auth_method = "aws_sigv4",
     .aws_access_key_id = "env:A",
     .aws_secret_access_key = "file:/s",
     .region = "us-east-1",
     .enabled = false,
     .is_system = true},
};

static struct sb_store_model models[] = {
    {.id = "m1",
     .provider = "p1",
     .upstream_model = "up-1",
     .name = "Model 1",
     .context_length = 1000,
     .max_output_tokens = 10,
     .caps = {true, true, false, true, false, true},
     .input_per_mtok = 0.15,
     .output_per_mtok = 0.6,
     .fallback_priority = 2,
     .enabled = true,
     .is_system = true},
    {.id = "m2",
     .provider = "p2",
     .upstream_model = "anthropic.claude",
     .name = "m2",
     .caps = {.embeddings = true},
     .fallback_priority = 1,
     .enabled = false,
     .is_system = true},
};

static struct sb_store_route routes[] = {
    {.id = "default", .strategy = "priority", .targets = targets, .ntargets = 2, .is_system = true},
};

static const struct sb_store_entities config = {.providers = providers,
                                                .nproviders = 2,
                                                .models = models,
                                                .nmodels = 2,
                                                .routes = routes,
                                                .nroutes = 1};

static const struct sb_store_provider *find_p(const struct sb_store_entities *e, const char *id)
{
    for (size_t i = 0; i < e->nproviders; i++)
        if (strcmp(e->providers[i].id, id) == 0)
            return &e->providers[i];
    return NULL;
}

static const struct sb_store_model *find_m(const struct sb_store_entities *e, const char *id)
{
    for (size_t i = 0; i < e->nmodels; i++)
        if (strcmp(e->models[i].id, id) == 0)
            return &e->models[i];
    return NULL;
}

static void check_p1(const struct sb_store_provider *p)
{
    assert_non_null(p);
    assert_string_equal(p->type, "openai");
    assert_string_equal(p->name, "P One");
    assert_string_equal(p->base_url, "https://a/v1");
    assert_string_equal(p->auth_method, "bearer");
    assert_string_equal(p->api_key, "env:P1_KEY");
    assert_null(p->aws_access_key_id);
    assert_int_equal(p->nheaders, 2);
    assert_string_equal(p->headers[0].name, "X-Team");
    assert_string_equal(p->headers[1].value, "a \"b\"");
    assert_int_equal(p->rpm, 5);
    assert_int_equal(p->tpm, 6000);
    assert_int_equal(p->timeout_ms, 1234);
    assert_int_equal(p->connect_timeout_ms, 55);
    assert_string_equal(p->api_version, "2024-10-21");
    assert_null(p->region);
    assert_true(p->enabled);
    assert_true(p->is_system);
    assert_null(p->key_ciphertext);
}

static void test_sync_and_load(void **state)
{
    struct sb_error err = {0};
    struct sb_store_entities *e = NULL;
    (void)state;
    struct sb_store *s = open_migrated();
    assert_int_equal(sb_store_sync_system(s, &config, &err), SB_OK);
    assert_int_equal(sb_store_sync_system(s, &config, &err), SB_OK); /* a restart */
    assert_int_equal(sb_store_load(s, &e, &err), SB_OK);
    assert_int_equal(e->nproviders, 2);
    assert_int_equal(e->nmodels, 2);
    assert_int_equal(e->nroutes, 1);
    check_p1(find_p(e, "p1"));
    const struct sb_store_provider *p2 = find_p(e, "p2");
    assert_false(p2->enabled);
    assert_string_equal(p2->aws_secret_access_key, "file:/s");
    assert_string_equal(p2->region, "us-east-1");
    const struct sb_store_model *m1 = find_m(e, "m1");
    assert_string_equal(m1->provider, "p1");
    assert_string_equal(m1->upstream_model, "up-1");
    assert_int_equal(m1->context_length, 1000);
    assert_true(m1->caps.streaming && m1->caps.tools && m1->caps.json_mode);
    assert_false(m1->caps.vision || m1->caps.embeddings);
    assert_true(m1->caps.declared); /* stored as the full object, read back as declared */
    assert_true(m1->input_per_mtok == 0.15 && m1->output_per_mtok == 0.6);
    assert_int_equal(m1->fallback_priority, 2);
    const struct sb_store_model *m2 = find_m(e, "m2");
    assert_false(m2->enabled);
    assert_true(m2->caps.embeddings && !m2->caps.streaming);
    /* Ordered by fallback priority. */
    assert_string_equal(e->models[0].id, "m2");
    assert_string_equal(e->routes[0].targets[1], "p1/up/with/slash");
    sb_store_entities_free(e);
    sb_store_close(s);
    /* Nothing in the database is a resolved secret. */
    assert_int_equal(scalar("SELECT COUNT(*) FROM providers WHERE auth_config LIKE '%env:P1_KEY%'"),
                     1);
}

static void test_sync_keeps_api_entries(void **state)
{
    struct sb_error err = {0};
    struct sb_store_entities *e = NULL;
    (void)state;
    struct sb_store *s = open_migrated();
    /* "The API" created p2 before the config file mentioned it, and its own provider u. */
    raw_exec("INSERT INTO providers(identifier, name, type, base_url, is_system, created_at,"
             " updated_at) VALUES ('p2', 'API p2', 'openai', 'https://api', 0, 0, 0),"
             " ('u', 'User', 'openai', 'https://u', 0, 0, 0);"
             "INSERT INTO models(provider_id, identifier, upstream_model, name, created_at,"
             " updated_at) SELECT id, 'um', 'x', 'um', 0, 0 FROM providers WHERE identifier = 'u';"
             "INSERT INTO provider_credentials(provider_id, key_ciphertext, key_id, masked,"
             " created_at, updated_at) SELECT id, 'CIPHER', 'kid', 'sk-...abcd', 0, 0"
             " FROM providers WHERE identifier = 'u'");
    assert_int_equal(sb_store_sync_system(s, &config, &err), SB_OK);
    assert_int_equal(scalar("SELECT is_system FROM providers WHERE identifier = 'p2'"), 0);
    assert_int_equal(scalar("SELECT COUNT(*) FROM providers WHERE name = 'API p2'"), 1);
    /* Remove p1 (and so m1) from the config: system rows go, API rows stay. */
    struct sb_store_entities smaller = {
        .providers = &providers[1], .nproviders = 1, .models = &models[1], .nmodels = 1};
    assert_int_equal(sb_store_sync_system(s, &smaller, &err), SB_OK);
    assert_int_equal(sb_store_load(s, &e, &err), SB_OK);
    assert_null(find_p(e, "p1"));
    assert_null(find_m(e, "m1"));
    assert_non_null(find_p(e, "p2"));
    assert_non_null(find_p(e, "u"));
    assert_non_null(find_m(e, "um"));
    assert_non_null(find_m(e, "m2")); /* attached to the API's p2 */
    assert_int_equal(e->nroutes, 0);
    assert_string_equal(find_p(e, "u")->key_ciphertext, "CIPHER");
    assert_string_equal(find_p(e, "u")->key_id, "kid");
    assert_false(find_p(e, "u")->is_system);
    sb_store_entities_free(e);
    sb_store_close(s);
}

static void test_usage_insert(void **state)
{
    struct sb_error err = {0};
    enum { N = 2500 };
    struct sb_usage *rows = calloc(N, sizeof(*rows));
    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(rows[i].request_id, sizeof(rows[i].request_id), "req-%d", i);
        rows[i].ts_ms = 1700000000000LL + i;
        snprintf(rows[i].status, sizeof(rows[i].status), "ok");
        snprintf(rows[i].model, sizeof(rows[i].model), "gpt-4o-mini");
        rows[i].http_status = 200;
        rows[i].prompt_tokens = i;
        rows[i].completion_tokens = -1;
        rows[i].ttft_ms = -1;
    }
    memset(rows[0].model, 'x', sizeof(rows[0].model)); /* not NUL-terminated: bounded read */
    struct sb_store *s = open_migrated();
    assert_int_equal(sb_store_insert_usage(s, rows, N, &err), SB_OK);
    assert_int_equal(sb_store_insert_usage(s, rows, 0, &err), SB_OK);
    sb_store_close(s);
    free(rows);
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs"), N);
    assert_int_equal(scalar("SELECT SUM(prompt_tokens) FROM usage_logs"),
                     (long long)N * (N - 1) / 2);
    assert_int_equal(scalar("SELECT LENGTH(model) FROM usage_logs WHERE request_id = 'req-0'"),
                     128);
    assert_int_equal(scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id IS NULL"), N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_usage_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_keeps_api_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_insert, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
