/* SPDX-License-Identifier: MIT */
/*
 * config_test.c - the config file: the shipped example, defaults, every
 * key, and one table of broken inputs with the message each must produce
 * (file:line and key path included). Also credential reference resolution.
 * Runs from the repository root (it reads examples/switchboard.yaml).
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

#include "registry/config.h"

static struct sb_config *parse_ok(const char *yaml)
{
    struct sb_config *c = NULL;
    struct sb_error err = {0};
    sb_err rc = sb_config_parse("t.yaml", yaml, strlen(yaml), &c, &err);
    if (rc != SB_OK)
        fail_msg("unexpected error: %s", err.msg);
    return c;
}

static void test_example_file(void **state)
{
    struct sb_config *c = NULL;
    struct sb_error err = {0};
    (void)state;
    sb_err rc = sb_config_load("examples/switchboard.yaml", &c, &err);
    if (rc != SB_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_string_equal(c->database, "sqlite:./switchboard.db");
    assert_null(c->redis);
    assert_int_equal(c->system.nproviders, 6);
    assert_int_equal(c->system.nmodels, 11);
    assert_int_equal(c->system.nroutes, 2);
    const struct sb_store_provider *groq = &c->system.providers[3];
    assert_string_equal(groq->id, "groq");
    assert_string_equal(groq->type, "openai");
    assert_string_equal(groq->base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(groq->api_key, "env:GROQ_API_KEY");
    assert_string_equal(groq->auth_method, "bearer");
    assert_true(groq->is_system);
    assert_string_equal(c->system.providers[5].auth_method, "none"); /* ollama, no key */
    assert_int_equal(c->system.providers[0].rpm, 500);
    assert_int_equal(c->server.max_body_bytes, 8 * 1024 * 1024);
    const struct sb_store_model *m = &c->system.models[0];
    assert_string_equal(m->id, "gpt-4o-mini");
    assert_true(m->caps.vision && m->caps.tools && !m->caps.embeddings && m->caps.declared);
    assert_true(m->input_per_mtok > 0.149 && m->input_per_mtok < 0.151);
    assert_string_equal(c->system.models[1].upstream_model, "gpt-4o"); /* defaults to id */
    assert_string_equal(c->system.routes[0].targets[3], "ollama/llama3.2");
    sb_config_free(c);
}

static void test_defaults(void **state)
{
    static const char *const empty[] = {"", "# only a comment\n", "---\n", "~\n"};
    (void)state;
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        struct sb_config *c = parse_ok(empty[i]);
        assert_string_equal(c->listen, "127.0.0.1:8080");
        assert_int_equal(c->server.max_header_bytes, 16384);
        assert_int_equal(c->server.header_timeout_ms, 10000);
        assert_int_equal(c->server.idle_timeout_ms, 60000);
        assert_int_equal(c->server.max_connections, 10000);
        assert_int_equal(c->server.shutdown_timeout_ms, 10000);
        assert_int_equal(c->server.body_buffer_bytes, 64 * 1024);
        assert_null(c->server.body_temp_dir); /* serve picks the database's directory */
        assert_int_equal(c->system.nproviders, 0);
        assert_int_equal(c->cache.max_bytes, 64 * 1024 * 1024);
        assert_int_equal(c->cache.max_entries, 65536);
        assert_int_equal(c->routing.retries, 0);
        assert_int_equal(c->routing.deadline_ms, 120000);
        assert_int_equal(c->routing.breaker_failures, 5);
        assert_int_equal(c->cache.max_entry_bytes, 0);
        sb_config_free(c);
    }
    struct sb_config *d = sb_config_default();
    assert_string_equal(d->database, "sqlite:./switchboard.db");
    assert_int_equal(d->workers, 0);
    sb_config_free(d);
}

static const char full[] =
    "listen: 0.0.0.0:9000\n"
    "database: sqlite:/tmp/x.db\n"
    "redis: redis://127.0.0.1:6379\n"
    "workers: 4\n"
    "routing: {retries: 3, retry_backoff_ms: 50, retry_max_wait_ms: 900, deadline_ms: 30000,\n"
    "          breaker_failures: 2, breaker_cooldown_ms: 700}\n"
    "server: {max_body_bytes: 2048, max_header_bytes: 4096, header_timeout_ms: 500,\n"
    "         idle_timeout_ms: 700, max_connections: 5, shutdown_timeout_ms: 0,\n"
    "         body_buffer_bytes: 0, body_temp_dir: /var/lib/sb}\n"
    "providers:\n"
    "  - id: p1\n"
    "    type: azure\n"
    "    name: Azure East\n"
    "    base_url: https://r.openai.azure.com///\n"
    "    api_key: file:/run/secrets/azure\n"
    "    api_keys: [{label: east-2, key: env:AZ2, weight: 3}, {label: east_3, key: file:/k3}]\n"
    "    headers: {X-Team: platform, x-other: \"a b\"}\n"
    "    rate_limits: {rpm: 10, tpm: 2000}\n"
    "    timeout_ms: 1000\n"
    "    connect_timeout_ms: 200\n"
    "    api_version: \"2024-10-21\"\n"
    "    enabled: false\n"
    "  - id: br\n"
    "    type: bedrock\n"
    "    region: us-west-2\n"
    "    aws_access_key_id: env:AWS_ACCESS_KEY_ID\n"
    "    aws_secret_access_key: env:AWS_SECRET_ACCESS_KEY\n"
    "    aws_session_token: env:AWS_SESSION_TOKEN\n"
    "models:\n"
    "  - id: m.1:latest_x\n"
    "    provider: p1\n"
    "    upstream_model: accounts/x/models/y\n"
    "    name: Model One\n"
    "    context_length: 1000\n"
    "    max_output_tokens: 100\n"
    "    capabilities: {streaming: false, tools: true, vision: false, json_mode: true, "
    "embeddings: true}\n"
    "    pricing: {input_per_mtok: 1.5, output_per_mtok: 2}\n"
    "    fallback_priority: -3\n"
    "    fallbacks: [br/anthropic.claude-v2]\n"
    "    enabled: False\n"
    "routes:\n"
    "  - id: r\n"
    "    strategy: least-latency\n"
    "    targets: [m.1:latest_x, br/anthropic.claude-v2, p1/a/b]\n";

static void test_every_key(void **state)
{
    (void)state;
    struct sb_config *c = parse_ok(full);
    assert_string_equal(c->listen, "0.0.0.0:9000");
    assert_string_equal(c->redis, "redis://127.0.0.1:6379");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->server.max_body_bytes, 2048);
    assert_int_equal(c->server.shutdown_timeout_ms, 0);
    assert_int_equal(c->server.body_buffer_bytes, 0);
    assert_string_equal(c->server.body_temp_dir, "/var/lib/sb");
    const struct sb_store_provider *p = &c->system.providers[0];
    assert_string_equal(p->base_url, "https://r.openai.azure.com");
    assert_string_equal(p->name, "Azure East");
    assert_string_equal(p->auth_method, "api_key");
    assert_string_equal(p->api_key, "file:/run/secrets/azure");
    assert_int_equal(p->napi_keys, 2);
    assert_string_equal(p->api_keys[0].label, "east-2");
    assert_string_equal(p->api_keys[0].key, "env:AZ2");
    assert_int_equal(p->api_keys[0].weight, 3);
    assert_int_equal(p->api_keys[1].weight, 1);
    assert_int_equal(p->nheaders, 2);
    assert_string_equal(p->headers[1].name, "x-other");
    assert_string_equal(p->headers[1].value, "a b");
    assert_int_equal(p->tpm, 2000);
    assert_int_equal(p->connect_timeout_ms, 200);
    assert_string_equal(p->api_version, "2024-10-21");
    assert_false(p->enabled);
    const struct sb_store_provider *b = &c->system.providers[1];
    assert_string_equal(b->base_url, "https://bedrock-runtime.us-west-2.amazonaws.com");
    assert_string_equal(b->auth_method, "aws_sigv4");
    assert_string_equal(b->aws_session_token, "env:AWS_SESSION_TOKEN");
    assert_string_equal(b->name, "br");
    const struct sb_store_model *m = &c->system.models[0];
    assert_string_equal(m->upstream_model, "accounts/x/models/y");
    assert_false(m->caps.streaming);
    assert_true(m->caps.embeddings);
    assert_int_equal(m->fallback_priority, -3);
    assert_int_equal(m->nfallbacks, 1);
    assert_string_equal(m->fallbacks[0], "br/anthropic.claude-v2");
    assert_int_equal(c->routing.retries, 3);
    assert_int_equal(c->routing.retry_backoff_ms, 50);
    assert_int_equal(c->routing.retry_max_wait_ms, 900);
    assert_int_equal(c->routing.deadline_ms, 30000);
    assert_int_equal(c->routing.breaker_failures, 2);
    assert_int_equal(c->routing.breaker_cooldown_ms, 700);
    assert_false(m->enabled);
    assert_true(m->output_per_mtok == 2.0);
    assert_string_equal(c->system.routes[0].strategy, "least-latency");
    assert_int_equal(c->system.routes[0].ntargets, 3);
    sb_config_free(c);
}

static void test_literal_key_refused(void **state)
{
    static const char yaml[] = "providers:\n"
                               "  - id: openai\n"
                               "    type: openai\n"
                               "    base_url: https://api.openai.com/v1\n"
                               "    api_key: sk-live-SECRET123456\n";
    struct sb_config *c = NULL;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_config_parse("config.yaml", yaml, strlen(yaml), &c, &err), SB_E_CONFIG);
    assert_null(c);
    assert_string_equal(err.msg, "config.yaml:5: providers[0].api_key: literal keys are not "
                                 "allowed; use env:NAME or file:PATH");
    assert_null(strstr(err.msg, "SECRET"));
}

#define P "providers:\n  - {id: p, type: openai, base_url: \"http://h/v1\"}\n"
#define M "models:\n  - {id: m, provider: p}\n"

static const struct {
    const char *yaml;
    const char *msg; /* expected substring of the error */
} bad[] = {
    {"listen: 1.2.3.4:80\nlistn: x\n", "t.yaml:2: unknown key 'listn'"},
    {"workers: many\n", "t.yaml:1: workers: expected an integer in [0, 1024]"},
    {"workers: \"4\"\n", "workers: expected an integer"},
    {"workers: 2000\n", "workers: expected an integer in [0, 1024]"},
    {"server:\n  max_body_bytes: 10\n", "t.yaml:2: server.max_body_bytes: expected an integer"},
    {"server:\n  max_conns: 10\n", "t.yaml:2: server: unknown key 'max_conns'"},
    {"server:\n  body_buffer_bytes: -1\n",
     "t.yaml:2: server.body_buffer_bytes: expected an integer"},
    {"server: 5\n", "t.yaml:1: server: expected a mapping"},
    {"providers: {id: p}\n", "providers: expected a list"},
    {"providers:\n  - id: p\n    type: openai\n    base_url: ftp://x\n",
     "t.yaml:4: providers[0].base_url: expected an http:// or https:// URL"},
    {"providers:\n  - {id: p, type: openai}\n", "providers[0]: base_url is required"},
    {"providers:\n  - {id: P_1, type: openai, base_url: \"http://h\"}\n",
     "providers[0].id: must match [a-z0-9-]+"},
    {"providers:\n  - {id: p, type: openia, base_url: \"http://h\"}\n",
     "providers[0].type: unknown type 'openia' (one of openai, anthropic"},
    {"providers:\n  - {type: openai, base_url: \"http://h\"}\n", "providers[0]: id is required"},
    {P "  - {id: p, type: openai, base_url: \"http://h\"}\n",
     "t.yaml:3: providers[1].id: duplicate id 'p'"},
    {"providers:\n  - id: p\n    type: openai\n    base_url: http://h\n    enabled: yes\n",
     "t.yaml:5: providers[0].enabled: expected true or false"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_key: \"env:1X\"}\n",
     "providers[0].api_key: env: needs a variable name"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_key: \"file:\"}\n",
     "providers[0].api_key: file: needs a path"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", aws_access_key_id: env:A}\n",
     "aws_* credentials are only for type bedrock"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", headers: {\"a b\": x}}\n",
     "providers[0].headers: 'a b' is not a valid header name"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", headers: {a: \"x\\ny\"}}\n",
     "headers: header a: expected a one-line string"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", headers: {AUTHORIZATION: x}}\n",
     "headers: header AUTHORIZATION carries a credential; use api_key"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", rate_limits: {rpm: -1}}\n",
     "providers[0].rate_limits.rpm: expected an integer in [0, 1000000000]"},
    {P "models:\n  - {id: m, provider: nope}\n",
     "t.yaml:4: models[0].provider: unknown provider 'nope'"},
    {P "models:\n  - {id: \"m m\", provider: p}\n", "models[0].id: must match [A-Za-z0-9._:-]+"},
    {P "models:\n  - {id: m, provider: p, pricing: {input_per_mtok: -1}}\n",
     "models[0].pricing.input_per_mtok: expected a number in [0, 1e9]"},
    {P "models:\n  - {id: m, provider: p, capabilities: {telepathy: true}}\n",
     "models[0].capabilities: unknown key 'telepathy'"},
    {P M "  - {id: m, provider: p}\n", "models[1].id: duplicate id 'm'"},
    {P M "routes:\n  - {id: r, targets: [m, zz]}\n",
     "routes[0].targets: 'zz' is neither a model id nor provider/upstream_model"},
    {P M "routes:\n  - {id: r, targets: [q/x]}\n", "'q/x' is neither a model id"},
    {P M "routes:\n  - {id: r, targets: [p/]}\n", "'p/' is neither a model id"},
    {P M "routes:\n  - {id: r, targets: []}\n", "routes[0]: targets: at least one target"},
    {P M "  - {id: n, provider: p, fallbacks: [m, zz]}\n",
     "t.yaml:5: models[1].fallbacks: 'zz' is neither a model id nor provider/upstream_model"},
    {P "models:\n  - {id: m, provider: p, fallbacks: [m]}\n",
     "models[0].fallbacks: 'm' cannot fall back to itself"},
    {P "models:\n  - {id: m, provider: p, fallbacks: [p/a, p/b, p/c, p/d, p/e, p/f, p/g, p/h, p/i, "
       "p/j, p/k, p/l, p/m, p/n, p/o, p/p]}\n",
     "models[0].fallbacks: at most 15 fallbacks"},
    {P "models:\n  - {id: m, provider: p, fallbacks: p/a}\n",
     "models[0].fallbacks: expected a list of strings"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_keys: [{label: a, key: env:A},"
     " {label: a, key: env:B}]}\n",
     "providers[0].api_keys: duplicate label 'a'"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_keys: [{label: primary, key: "
     "env:A}]}\n",
     "providers[0].api_keys[0].label: must match [a-z0-9_-]+ (at most 32 characters), not 'primary'"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_keys: [{label: a}]}\n",
     "providers[0].api_keys[0]: key is required"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_keys: [{label: a, key: sk-1}]}\n",
     "api_keys[0].key: literal keys are not allowed"},
    {"providers:\n  - {id: p, type: openai, base_url: \"http://h\", api_keys: [{label: a, key: env:A, "
     "weight: 0}]}\n",
     "api_keys[0].weight: expected an integer in [1, 1000000]"},
    {"providers:\n  - {id: p, type: bedrock, region: us-east-1, api_keys: [{label: a, key: env:A}]}\n",
     "providers[0].api_keys: a bedrock provider signs with aws_* credentials"},
    {"routing: {retries: 11}\n", "t.yaml:1: routing.retries: expected an integer in [0, 10]"},
    {"routing: {backoff: 5}\n", "routing: unknown key 'backoff'"},
    {P M "routes:\n  - {id: m, targets: [m]}\n", "routes[0].id: 'm' is already a model id"},
    {P M "routes:\n  - {id: r, strategy: random, targets: [m]}\n",
     "routes[0].strategy: unknown strategy 'random'"},
    {P M "routes:\n  - {id: r, targets: m}\n", "routes[0].targets: expected a list of strings"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 0}}\n",
     "t.yaml:6: routes[0].cache.ttl_s: expected an integer in [1, 2592000]"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 2592001}}\n",
     "routes[0].cache.ttl_s: expected an integer in [1, 2592000]"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 5m}}\n",
     "routes[0].cache.ttl_s: expected an integer"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {shared: true}}\n",
     "routes[0].cache: ttl_s is required (seconds, 1 .. 2592000)"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 60, shared: yes}}\n",
     "routes[0].cache.shared: expected true or false"},
    {P M "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 60, size: 5}}\n",
     "routes[0].cache: unknown key 'size'"},
    {P M "routes:\n  - {id: r, targets: [m], cache: 60}\n", "routes[0].cache: expected a mapping"},
    {"cache: {max_bytes: 1000}\n", "t.yaml:1: cache.max_bytes: expected an integer in [1048576,"},
    {"cache: {max_bytes: 2097152, max_entry_bytes: 4194304}\n",
     "cache.max_entry_bytes: must not exceed max_bytes (2097152)"},
    {"cache: {ttl_s: 5}\n", "cache: unknown key 'ttl_s'"},
    {"listen: localhost\n", "t.yaml:1: listen: expected HOST:PORT"},
    {"listen: \"h:99999\"\n", "listen: expected HOST:PORT"},
    {"database: mysql://x\n", "database: expected sqlite:PATH or postgres://"},
    {"redis: http://x\n", "redis: expected redis://"},
    {"a: &x 1\nb: *x\n", "t.yaml:2: YAML aliases (*name) are not supported"},
    {"listen: a:1\nlisten: b:2\n", "t.yaml:2: duplicate key 'listen'"},
    {"listen: \"a\\0b:1\"\n", "t.yaml:1: a value contains a NUL character"},
    {"a: 1\n---\nb: 2\n", "only one YAML document is allowed"},
    {"? [a]\n: 1\n", "mapping keys must be plain strings"},
    {"listen: [unclosed\n", "YAML syntax"},
    {"- a\n- b\n", "t.yaml:1: expected a mapping"},
    {"a: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]\n", "nested too deeply"},
};

/* The route's cache block (issue 7 part 9): off unless given, with a TTL. */
static void test_route_cache(void **state)
{
    static const char yaml[] =
        "providers:\n  - {id: p, type: openai, base_url: \"http://h\"}\n"
        "models:\n  - {id: m, provider: p}\n"
        "routes:\n  - {id: r, targets: [m], cache: {ttl_s: 300, shared: true}}\n"
        "  - {id: s, targets: [m]}\n";
    struct sb_config *c = NULL;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(sb_config_parse("t.yaml", yaml, strlen(yaml), &c, &err), SB_OK);
    assert_int_equal(c->system.routes[0].cache_ttl_s, 300);
    assert_true(c->system.routes[0].cache_shared);
    assert_false(c->system.routes[0].cache_sampled);
    assert_int_equal(c->system.routes[1].cache_ttl_s, 0);
    sb_config_free(c);
    static const char top[] =
        "cache: {max_bytes: 2097152, max_entries: 10, max_entry_bytes: 4096}\n";
    assert_int_equal(sb_config_parse("t.yaml", top, strlen(top), &c, &err), SB_OK);
    assert_int_equal(c->cache.max_bytes, 2097152);
    assert_int_equal(c->cache.max_entries, 10);
    assert_int_equal(c->cache.max_entry_bytes, 4096);
    sb_config_free(c);
    /* /api bodies: the same table, the field named */
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_route r;
    struct sb_json *j = NULL;
    const char *neg = "{\"id\":\"r\",\"targets\":[\"m\"],\"cache\":{\"ttl_s\":-5}}";
    assert_int_equal(sb_json_parse(a, neg, strlen(neg), NULL, &j, &err), SB_OK);
    assert_int_equal(sb_config_entry_from_json(a, SB_CONFIG_ROUTE, j, &r, NULL, &err),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "cache.ttl_s");
    assert_string_equal(err.msg, "cache.ttl_s: expected an integer in [1, 2592000]");
    const char *none = "{\"id\":\"r\",\"targets\":[\"m\"],\"cache\":{}}";
    assert_int_equal(sb_json_parse(a, none, strlen(none), NULL, &j, &err), SB_OK);
    assert_int_equal(sb_config_entry_from_json(a, SB_CONFIG_ROUTE, j, &r, NULL, &err),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "cache.ttl_s");
    const char *ok = "{\"id\":\"r\",\"targets\":[\"m\"],\"cache\":{\"ttl_s\":60,"
                     "\"sampled\":true}}";
    assert_int_equal(sb_json_parse(a, ok, strlen(ok), NULL, &j, &err), SB_OK);
    assert_int_equal(sb_config_entry_from_json(a, SB_CONFIG_ROUTE, j, &r, NULL, &err), SB_OK);
    assert_int_equal(r.cache_ttl_s, 60);
    assert_true(r.cache_sampled);
    assert_false(r.cache_shared);
    sb_arena_free(a);
}

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sb_config *c = NULL;
        struct sb_error err = {0};
        sb_err rc = sb_config_parse("t.yaml", bad[i].yaml, strlen(bad[i].yaml), &c, &err);
        if (rc != SB_E_CONFIG || !strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: rc=%d msg=\"%s\"; want \"%s\"", i, rc, err.msg, bad[i].msg);
        assert_null(c);
    }
}

static void test_resolve_env(void **state)
{
    struct sb_secret *s = NULL;
    struct sb_error err = {0};
    (void)state;
    setenv("SB_TEST_KEY", "sk-env-value", 1);
    assert_int_equal(sb_config_resolve_secret("env:SB_TEST_KEY", &s, &err), SB_OK);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(s), "sk-env-value"));
    sb_secret_free(s);
    unsetenv("SB_TEST_KEY");
    s = (struct sb_secret *)&err; /* must be reset */
    assert_int_equal(sb_config_resolve_secret("env:SB_TEST_KEY", &s, &err), SB_OK);
    assert_null(s);
    assert_int_equal(sb_config_resolve_secret(NULL, &s, &err), SB_OK);
    assert_null(s);
    assert_int_equal(sb_config_resolve_secret("sk-literal", &s, &err), SB_E_CONFIG);
    assert_null(strstr(err.msg, "sk-literal"));
}

static void test_resolve_file(void **state)
{
    char path[] = "/tmp/sb-cred-XXXXXX";
    char ref[64];
    struct sb_secret *s = NULL;
    struct sb_error err = {0};
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "sk-file-value\n", 14), 14);
    close(fd);
    snprintf(ref, sizeof(ref), "file:%s", path);
    assert_int_equal(sb_config_resolve_secret(ref, &s, &err), SB_OK);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(s), "sk-file-value"));
    sb_secret_free(s);
    /* Only one newline is dropped. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "a\n\n", 3), 3);
    close(fd);
    assert_int_equal(sb_config_resolve_secret(ref, &s, &err), SB_OK);
    assert_true(sb_slice_eq_cstr(sb_secret_reveal(s), "a\n"));
    sb_secret_free(s);
    /* Empty, then missing. */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(sb_config_resolve_secret(ref, &s, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "is empty"));
    unlink(path);
    assert_int_equal(sb_config_resolve_secret(ref, &s, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, path));
    assert_null(s);
}

static void test_type_table(void **state)
{
    static const char *const names[] = {"openai", "anthropic",   "gemini", "cohere",
                                        "ollama", "huggingface", "azure",  "bedrock"};
    (void)state;
    for (size_t i = 0; i < 8; i++)
        assert_non_null(sb_config_type_find(sb_slice_cstr(names[i])));
    assert_null(sb_config_type_find(SB_SLICE("OpenAI")));
    assert_int_equal(sb_config_type_find(SB_SLICE("bedrock"))->auth, SB_AUTH_SIGV4);
}

/* ---- /api bodies: the same tables, typed strictly, credentials taken out ---- */

static sb_err entry(enum sb_config_entry kind, const char *json, void *out,
                    struct sb_config_creds *creds, struct sb_error *err, struct sb_arena *a)
{
    struct sb_json *j = NULL;
    struct sb_json_limits lim = {0};
    if (sb_json_parse(a, json, strlen(json), &lim, &j, err) != SB_OK)
        return err->code;
    return sb_config_entry_from_json(a, kind, j, out, creds, err);
}

static void test_entry_json(void **state)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_store_provider p;
    struct sb_store_model m;
    struct sb_config_creds c;
    struct sb_error err = {0};
    (void)state;
    assert_int_equal(entry(SB_CONFIG_PROVIDER,
                           "{\"id\":\"groq\",\"type\":\"openai\",\"base_url\":"
                           "\"https://api.groq.com/openai/v1/\",\"api_key\":\"gsk_secret123\","
                           "\"timeout_ms\":5000,\"rate_limits\":{\"rpm\":10}}",
                           &p, &c, &err, a),
                     SB_OK);
    assert_string_equal(p.id, "groq");
    assert_string_equal(p.base_url, "https://api.groq.com/openai/v1");
    assert_int_equal(p.timeout_ms, 5000);
    assert_int_equal(p.rpm, 10);
    assert_false(p.is_system);
    assert_null(p.api_key); /* never a reference from the API */
    assert_string_equal(c.api_key, "gsk_secret123");

    /* Same ranges and messages as the file, with the field named. */
    assert_int_equal(entry(SB_CONFIG_PROVIDER,
                           "{\"id\":\"x\",\"type\":\"openai\",\"base_url\":\"http://h\","
                           "\"timeout_ms\":-1}",
                           &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "timeout_ms");
    assert_non_null(strstr(err.msg, "expected an integer in [0, 3600000]"));
    assert_int_equal(entry(SB_CONFIG_PROVIDER, "{\"id\":\"x\",\"type\":\"nope\"}", &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "type");
    assert_int_equal(entry(SB_CONFIG_PROVIDER, "{\"id\":\"x\",\"colour\":1}", &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "unknown key 'colour'"));
    /* Strict types: a quoted number is not an integer. */
    assert_int_equal(entry(SB_CONFIG_MODEL,
                           "{\"id\":\"m\",\"provider\":\"p\",\"context_length\":\"5\"}", &m, NULL,
                           &err, a),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "context_length");
    /* References are the file's business; a secret is never echoed. */
    assert_int_equal(entry(SB_CONFIG_PROVIDER,
                           "{\"id\":\"x\",\"type\":\"openai\",\"base_url\":\"http://h\","
                           "\"api_key\":\"env:HOME\"}",
                           &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "api_key");
    assert_int_equal(entry(SB_CONFIG_PROVIDER, "{\"id\":\"x\",\"api_key\":7}", &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_int_equal(entry(SB_CONFIG_PROVIDER, "{\"id\":\"x\",\"id\":\"y\"}", &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "duplicate key 'id'"));
    assert_int_equal(entry(SB_CONFIG_MODEL, "[1]", &m, NULL, &err, a), SB_E_BAD_REQUEST);
    /* A missing required key is named as the field too. */
    assert_int_equal(entry(SB_CONFIG_PROVIDER, "{\"type\":\"openai\",\"base_url\":\"http://h\"}",
                           &p, &c, &err, a),
                     SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "id");
    assert_int_equal(entry(SB_CONFIG_MODEL, "{\"id\":\"m\"}", &m, NULL, &err, a), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, "provider");
    assert_int_equal(entry(SB_CONFIG_MODEL, "{\"id\":\"m\",\"provider\":\"p\"}", &m, NULL, &err, a),
                     SB_OK);
    assert_string_equal(m.upstream_model, "m");
    assert_true(m.caps.streaming);
    assert_false(m.caps.declared); /* no block: capabilities unknown, nothing refused */
    assert_int_equal(entry(SB_CONFIG_MODEL, "{\"id\":\"m\",\"provider\":\"p\",\"capabilities\":{}}",
                           &m, NULL, &err, a),
                     SB_OK);
    assert_true(m.caps.declared && m.caps.streaming && !m.caps.tools); /* an empty block declares */
    sb_arena_free(a);
}

/* `template:` fills type, base_url and options; the entry's own keys win. */
static void test_template_key(void **state)
{
    (void)state;
    struct sb_config *c =
        parse_ok("providers:\n"
                 "  - {id: g, template: groq, api_key: env:GROQ_API_KEY}\n"
                 "  - {id: b, template: bedrock, region: eu-west-1}\n"
                 "  - {id: l, template: vllm, base_url: \"http://10.0.0.5:8000/v1\"}\n");
    const struct sb_store_provider *p = c->system.providers;
    assert_string_equal(p[0].type, "openai");
    assert_string_equal(p[0].base_url, "https://api.groq.com/openai/v1");
    assert_string_equal(p[1].type, "bedrock");
    assert_string_equal(p[1].region, "eu-west-1");
    assert_string_equal(p[2].base_url, "http://10.0.0.5:8000/v1");
    sb_config_free(c);
    struct sb_config *broken = NULL;
    struct sb_error err = {0};
    const char *y = "providers:\n  - {id: x, template: nope}\n";
    assert_int_equal(sb_config_parse("t.yaml", y, strlen(y), &broken, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "providers[0].template: unknown template 'nope'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),    cmocka_unit_test(test_literal_key_refused),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_resolve_env),
        cmocka_unit_test(test_resolve_file), cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_entry_json),   cmocka_unit_test(test_template_key),
        cmocka_unit_test(test_route_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
