/* SPDX-License-Identifier: MIT */
/*
 * cache_test.c - the response cache: normalisation and the rules of the
 * key, tenant isolation, TTL at a fake clock, LRU eviction under the byte
 * and entry caps, what is storable, the SSE rendering parsed back, the
 * accumulator against the non-streamed answer, and eight threads at once
 * (run under TSan: make BUILD=build-tsan CC=clang TSAN=1 ...).
 *
 * JSON is compared with jansson (the oracle, DESIGN.md §8) after dropping
 * null members and empty arrays, which streams leave out by design.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "registry/registry_build.h"
#include "router/cache.h"

static const char *targets[] = {"gpt-a", "gpt-b"};
static const struct sb_route_entry cached = {
    .id = "r", .strategy = "priority", .targets = targets, .ntargets = 2, .cache = {.ttl_s = 60}};
static const struct sb_route_entry shared = {.id = "r",
                                             .strategy = "priority",
                                             .targets = targets,
                                             .ntargets = 2,
                                             .cache = {.ttl_s = 60, .shared = true}};
static const struct sb_route_entry sampled = {.id = "r",
                                              .strategy = "priority",
                                              .targets = targets,
                                              .ntargets = 2,
                                              .cache = {.ttl_s = 60, .sampled = true}};
static const struct sb_route_entry plain = {
    .id = "r", .strategy = "priority", .targets = targets, .ntargets = 2};

static const char req[] =
    "{\"model\":\"r\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";

static struct sb_cache_key key_of(const struct sb_route_entry *r, const char *tenant,
                                  const char *body)
{
    struct sb_cache_key k;
    struct sb_error err = {0};
    assert_int_equal(sb_cache_key(r, tenant, sb_slice_cstr(body), &k, &err), SB_OK);
    return k;
}

static bool same_key(const struct sb_cache_key *a, const struct sb_cache_key *b)
{
    return a->cacheable && b->cacheable && memcmp(a->digest, b->digest, 32) == 0;
}

/* ---- normalisation and the key ---- */

static void test_normalize(void **state)
{
    (void)state;
    struct sb_buf a, b;
    struct sb_error err = {0};
    sb_buf_init(&a, 0);
    sb_buf_init(&b, 0);
    assert_int_equal(
        sb_cache_normalize(SB_SLICE("{\"b\": [1.0, \"\\u0041\"], \"a\":{\"y\":1,\"x\":2,\"y\":3},"
                                    " \"stream\":true, \"user\":\"u\"}"),
                           &a, &err),
        SB_OK);
    assert_string_equal(a.p, "{\"a\":{\"x\":2,\"y\":3},\"b\":[1,\"A\"]}");
    /* stream and user are dropped at the top only */
    assert_int_equal(sb_cache_normalize(SB_SLICE("{\"m\":{\"user\":1,\"stream\":2}}"), &b, &err),
                     SB_OK);
    assert_string_equal(b.p, "{\"m\":{\"stream\":2,\"user\":1}}");
    sb_buf_reset(&b);
    assert_int_equal(sb_cache_normalize(SB_SLICE("{\"a\":"), &b, &err), SB_E_BAD_JSON);
    sb_buf_free(&a);
    sb_buf_free(&b);
}

static void test_key_reorder_hits_temperature_misses(void **state)
{
    (void)state;
    struct sb_cache_key k1 = key_of(&cached, "key:1", req);
    struct sb_cache_key k2 = key_of(
        &cached, "key:1",
        "{ \"messages\" : [ { \"content\" : \"Hi\", \"role\" : \"user\" } ],\n"
        "  \"temperature\" : 0.0, \"model\" : \"r\", \"stream\": true, \"user\": \"end-user-7\","
        " \"stream_options\": {\"include_usage\": true} }");
    assert_true(k1.cacheable);
    assert_true(same_key(&k1, &k2));
    assert_false(k1.stream);
    assert_true(k2.stream);
    assert_true(k2.include_usage);
    assert_int_equal(k1.ttl_ms, 60000);
    struct sb_cache_key k3 = key_of(&sampled, "key:1",
                                    "{\"model\":\"r\",\"temperature\":0.5,\"messages\":[{\"role\":"
                                    "\"user\",\"content\":\"Hi\"}]}");
    struct sb_cache_key k4 = key_of(&sampled, "key:1",
                                    "{\"model\":\"r\",\"temperature\":0.7,\"messages\":[{\"role\":"
                                    "\"user\",\"content\":\"Hi\"}]}");
    assert_true(k3.cacheable && k4.cacheable);
    assert_false(same_key(&k3, &k4));
    struct sb_cache_key k5 = key_of(&cached, "key:1",
                                    "{\"model\":\"r\",\"temperature\":0,\"messages\":[{\"role\":"
                                    "\"user\",\"content\":\"Hi!\"}]}");
    assert_false(same_key(&k1, &k5));
}

static void test_key_rules(void **state)
{
    (void)state;
    struct sb_cache_key k = key_of(&plain, "key:1", req);
    assert_false(k.cacheable);
    k = key_of(NULL, "key:1", req);
    assert_false(k.cacheable);
    k = key_of(&cached, "key:1", "{\"model\":\"r\",\"n\":2,\"temperature\":0,\"messages\":[]}");
    assert_false(k.cacheable);
    assert_string_equal(k.why, "n is not 1");
    k = key_of(&cached, "key:1", "{\"model\":\"r\",\"n\":1,\"temperature\":0,\"messages\":[]}");
    assert_true(k.cacheable);
    k = key_of(&cached, "key:1", "{\"model\":\"r\",\"messages\":[]}"); /* samples by default */
    assert_false(k.cacheable);
    k = key_of(&cached, "key:1", "{\"model\":\"r\",\"temperature\":0.2,\"messages\":[]}");
    assert_false(k.cacheable);
    k = key_of(&sampled, "key:1", "{\"model\":\"r\",\"messages\":[]}");
    assert_true(k.cacheable);
    /* a route re-pointed at other targets does not serve the old answers */
    static const char *other[] = {"gpt-a", "gpt-c"};
    struct sb_route_entry moved = cached;
    moved.targets = other;
    struct sb_cache_key a = key_of(&cached, "key:1", req), b = key_of(&moved, "key:1", req);
    assert_false(same_key(&a, &b));
    struct sb_error err = {0};
    assert_int_equal(sb_cache_key(&cached, "key:1", SB_SLICE("[1]"), &k, &err), SB_E_BAD_JSON);
    assert_int_equal(sb_cache_key(&cached, "key:1", SB_SLICE("{\"a\":"), &k, &err), SB_E_BAD_JSON);
}

/* The snapshot carries a route's cache block from the store's row. */
static void test_registry_carries_cache(void **state)
{
    (void)state;
    static struct sb_store_provider p = {
        .id = "p", .type = "openai", .base_url = "http://127.0.0.1:1", .enabled = true};
    static struct sb_store_model m = {.id = "gpt-a", .provider = "p", .enabled = true};
    static const char *t[] = {"gpt-a"};
    struct sb_store_route r[] = {
        {.id = "c", .targets = t, .ntargets = 1, .cache_ttl_s = 30, .cache_sampled = true},
        {.id = "n", .targets = t, .ntargets = 1}};
    struct sb_store_entities e = {
        .providers = &p, .nproviders = 1, .models = &m, .nmodels = 1, .routes = r, .nroutes = 2};
    struct sb_registry *reg = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_registry_build(&e, NULL, &reg, &err), SB_OK);
    const struct sb_route_entry *c = sb_registry_find_route(reg, SB_SLICE("c"));
    const struct sb_route_entry *n = sb_registry_find_route(reg, SB_SLICE("n"));
    assert_int_equal(c->cache.ttl_s, 30);
    assert_true(c->cache.sampled);
    assert_false(c->cache.shared);
    assert_int_equal(n->cache.ttl_s, 0);
    struct sb_cache_key k = key_of(c, "admin", "{\"model\":\"c\",\"messages\":[]}");
    assert_true(k.cacheable);
    assert_int_equal(k.ttl_ms, 30000);
    sb_registry_release(reg);
}

/* ---- the store ---- */

static const char answer[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello there\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
    "\"total_tokens\":11},\"system_fingerprint\":\"fp_1\"}";

static void test_tenant_isolation(void **state)
{
    (void)state;
    struct sb_cache *c = sb_cache_memory_create(NULL);
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_cache_hit hit;
    char ta[64], tb[64], tadmin[64], tuser[64];
    struct sb_client_key ka = {.id = "1"}, kb = {.id = "2"};
    sb_cache_tenant(&ka, "alice", ta, sizeof(ta));
    sb_cache_tenant(&kb, NULL, tb, sizeof(tb));
    sb_cache_tenant(NULL, NULL, tadmin, sizeof(tadmin));
    sb_cache_tenant(NULL, "alice", tuser, sizeof(tuser));
    assert_string_equal(ta, "key:1");
    assert_string_equal(tadmin, "admin");
    assert_string_equal(tuser, "user:alice"); /* a session is not the admin token's tenant */
    struct sb_cache_key k_a = key_of(&cached, ta, req), k_b = key_of(&cached, tb, req);
    struct sb_cache_key k_adm = key_of(&cached, tadmin, req);
    assert_false(sb_cache_lookup(c, &k_a, 1000, a, &hit));
    assert_true(sb_cache_store(c, &k_a, 200, sb_slice_cstr(answer), 1000));
    assert_true(sb_cache_lookup(c, &k_a, 2000, a, &hit));
    assert_true(sb_slice_eq_cstr(hit.body, answer));
    assert_int_equal(hit.usage.prompt_tokens, 9);
    assert_int_equal(hit.usage.completion_tokens, 2);
    assert_int_equal(hit.age_ms, 1000);
    assert_false(sb_cache_lookup(c, &k_b, 2000, a, &hit));
    assert_false(sb_cache_lookup(c, &k_adm, 2000, a, &hit));
    struct sb_cache_key k_usr = key_of(&cached, tuser, req);
    assert_true(sb_cache_store(c, &k_adm, 200, sb_slice_cstr(answer), 1000));
    assert_false(sb_cache_lookup(c, &k_usr, 2000, a, &hit)); /* the admin's answer is not hers */
    /* shared: an admin's choice, one entry for everyone */
    struct sb_cache_key s_a = key_of(&shared, ta, req), s_b = key_of(&shared, tb, req);
    assert_true(sb_cache_store(c, &s_a, 200, sb_slice_cstr(answer), 1000));
    assert_true(sb_cache_lookup(c, &s_b, 2000, a, &hit));
    struct sb_cache_stats st;
    c->ops->stats(c, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.entries, 3);
    sb_arena_free(a);
    sb_cache_free(c);
}

static void test_ttl(void **state)
{
    (void)state;
    struct sb_cache *c = sb_cache_memory_create(NULL);
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_cache_hit hit;
    struct sb_cache_key k = key_of(&cached, "key:1", req);
    assert_true(sb_cache_store(c, &k, 200, sb_slice_cstr(answer), 1000));
    assert_true(sb_cache_lookup(c, &k, 60999, a, &hit));
    assert_false(sb_cache_lookup(c, &k, 61000, a, &hit));
    assert_false(sb_cache_lookup(c, &k, 1000, a, &hit)); /* gone, not merely hidden */
    struct sb_cache_stats st;
    c->ops->stats(c, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    sb_arena_free(a);
    sb_cache_free(c);
}

/* Stores body under a key made from n; returns the key. */
static struct sb_cache_key put_n(struct sb_cache *c, int n, const char *body, int64_t now)
{
    char r[160];
    snprintf(r, sizeof(r), "{\"model\":\"r\",\"temperature\":0,\"messages\":[%d]}", n);
    struct sb_cache_key k = key_of(&cached, "key:1", r);
    if (body)
        assert_true(sb_cache_store(c, &k, 200, sb_slice_cstr(body), now));
    return k;
}

static void test_lru_bytes(void **state)
{
    (void)state;
    struct sb_cache *probe = sb_cache_memory_create(NULL);
    struct sb_cache_stats st;
    put_n(probe, 0, answer, 0);
    probe->ops->stats(probe, &st);
    size_t one = st.bytes; /* what one entry costs */
    sb_cache_free(probe);
    struct sb_cache_opts o = {.max_bytes = 3 * one, .max_entry_bytes = one};
    struct sb_cache *c = sb_cache_memory_create(&o);
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_cache_hit hit;
    struct sb_cache_key k0 = put_n(c, 0, answer, 0), k1 = put_n(c, 1, answer, 0);
    struct sb_cache_key k2 = put_n(c, 2, answer, 0);
    assert_true(sb_cache_lookup(c, &k0, 1, a, &hit)); /* k0 is now the most recent */
    struct sb_cache_key k3 = put_n(c, 3, answer, 2);  /* pushes out k1, the least recent */
    assert_false(sb_cache_lookup(c, &k1, 3, a, &hit));
    assert_true(sb_cache_lookup(c, &k0, 3, a, &hit));
    assert_true(sb_cache_lookup(c, &k2, 3, a, &hit));
    assert_true(sb_cache_lookup(c, &k3, 3, a, &hit));
    c->ops->stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= 3 * one);
    /* an answer larger than max_entry_bytes is not stored */
    char *big = malloc(strlen(answer) + 200);
    snprintf(big, strlen(answer) + 200, "%.*s,\"pad\":\"%0150d\"}", (int)strlen(answer) - 1, answer,
             0);
    struct sb_cache_key kb = put_n(c, 9, NULL, 0);
    assert_false(sb_cache_store(c, &kb, 200, sb_slice_cstr(big), 4));
    free(big);
    sb_arena_free(a);
    sb_cache_free(c);
}

static void test_lru_entries(void **state)
{
    (void)state;
    struct sb_cache_opts o = {.max_entries = 2};
    struct sb_cache *c = sb_cache_memory_create(&o);
    struct sb_arena *a = sb_arena_create(1024);
    struct sb_cache_hit hit;
    struct sb_cache_key k0 = put_n(c, 0, answer, 0);
    put_n(c, 1, answer, 0);
    put_n(c, 2, answer, 0);
    assert_false(sb_cache_lookup(c, &k0, 1, a, &hit));
    struct sb_cache_stats st;
    c->ops->stats(c, &st);
    assert_int_equal(st.entries, 2);
    /* many entries: the table grows, everything stays findable */
    struct sb_cache *big = sb_cache_memory_create(NULL);
    for (int i = 0; i < 2000; i++)
        put_n(big, i, answer, 0);
    for (int i = 0; i < 2000; i += 97) {
        struct sb_cache_key k = put_n(big, i, NULL, 0);
        assert_true(sb_cache_lookup(big, &k, 1, a, &hit));
    }
    sb_cache_free(big);
    sb_arena_free(a);
    sb_cache_free(c);
}

static void test_storable(void **state)
{
    (void)state;
    struct sb_cache_usage u;
    assert_true(sb_cache_storable(200, sb_slice_cstr(answer), &u));
    assert_false(sb_cache_storable(500, sb_slice_cstr(answer), &u));
    assert_false(sb_cache_storable(429, sb_slice_cstr(answer), &u));
    assert_false(sb_cache_storable(
        200,
        SB_SLICE("{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{},"
                 "\"finish_reason\":\"error\"}]}"),
        &u));
    assert_false(sb_cache_storable(
        200, SB_SLICE("{\"object\":\"chat.completion\",\"choices\":[{\"finish_reason\":null}]}"),
        &u));
    assert_false(
        sb_cache_storable(200, SB_SLICE("{\"object\":\"chat.completion\",\"choices\":[]}"), &u));
    assert_false(sb_cache_storable(200, SB_SLICE("{\"error\":{\"message\":\"x\"}}"), &u));
    assert_false(sb_cache_storable(200, SB_SLICE("not json"), &u));
    assert_true(sb_cache_storable(
        200,
        SB_SLICE("{\"object\":\"chat.completion\",\"choices\":[{\"finish_reason\":\"length\"}]}"),
        &u));
    assert_int_equal(u.prompt_tokens, -1);
    /* the store refuses what is not storable, and what is not cacheable */
    struct sb_cache *c = sb_cache_memory_create(NULL);
    struct sb_cache_key k = key_of(&cached, "key:1", req), no = key_of(&plain, "key:1", req);
    assert_false(sb_cache_store(c, &k, 502, sb_slice_cstr(answer), 0));
    assert_false(sb_cache_store(c, &no, 200, sb_slice_cstr(answer), 0));
    assert_false(sb_cache_store(NULL, &k, 200, sb_slice_cstr(answer), 0));
    sb_cache_free(c);
}

/* ---- streams ---- */

/* Drops null members and empty arrays, recursively (streams leave them out). */
static void strip(json_t *j)
{
    const char *k;
    json_t *v;
    void *tmp;
    if (json_is_object(j)) {
        json_object_foreach_safe(j, tmp, k, v)
        {
            if (json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
                json_object_del(j, k);
            else
                strip(v);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_array_foreach(j, i, v) strip(v);
    }
}

static void assert_same_answer(const char *want, struct sb_slice got)
{
    json_error_t e;
    json_t *a = json_loads(want, 0, &e), *b = json_loadb(got.p, got.len, 0, &e);
    assert_non_null(a);
    assert_non_null(b);
    strip(a);
    strip(b);
    if (!json_equal(a, b)) {
        char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
        fprintf(stderr, "want %s\ngot  %s\n", sa, sb);
        free(sa);
        free(sb);
        fail();
    }
    json_decref(a);
    json_decref(b);
}

static const char tool_answer[] =
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1700000001,"
    "\"model\":\"gpt-a\",\"service_tier\":\"default\",\"choices\":[{\"index\":0,\"message\":{"
    "\"role\":\"assistant\",\"content\":\"Caf\\u00e9 \\u2615 checking \\ud83c\\udf0d\","
    "\"reasoning_content\":\"think first\","
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_w\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":3}\"},"
    "\"extra_content\":{\"google\":{\"thought_signature\":\"c2ln\"}}},"
    "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_t\",\"arguments\":"
    "\"{}\"}}],"
    "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s1\"}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":7,"
    "\"total_tokens\":27}}";

/* The data payloads of an SSE text, as a jansson array (the last element is the string [DONE]). */
static json_t *events(struct sb_slice sse)
{
    json_t *out = json_array();
    const char *p = sse.p, *end = sse.p + sse.len;
    while (p < end) {
        const char *nl = strstr(p, "\n\n");
        assert_non_null(nl);
        assert_memory_equal(p, "data: ", 6);
        if (nl - p - 6 == 6 && memcmp(p + 6, "[DONE]", 6) == 0) {
            json_array_append_new(out, json_string("[DONE]"));
        } else {
            json_error_t e;
            json_t *j = json_loadb(p + 6, (size_t)(nl - p - 6), 0, &e);
            if (!j)
                fprintf(stderr, "bad event: %.*s (%s)\n", (int)(nl - p - 6), p + 6, e.text);
            assert_non_null(j);
            json_array_append_new(out, j);
        }
        p = nl + 2;
    }
    return out;
}

static void test_render_parsed_back(void **state)
{
    (void)state;
    struct sb_buf sse, content, args0, args1;
    struct sb_error err = {0};
    sb_buf_init(&sse, 0);
    sb_buf_init(&content, 0);
    sb_buf_init(&args0, 0);
    sb_buf_init(&args1, 0);
    assert_int_equal(sb_cache_render_sse(sb_slice_cstr(tool_answer), true, 5, &sse, &err), SB_OK);
    json_t *ev = events(sb_buf_slice(&sse));
    size_t n = json_array_size(ev), i;
    json_t *e;
    assert_true(n > 10);
    assert_string_equal(json_string_value(json_array_get(ev, n - 1)), "[DONE]");
    json_t *last = json_array_get(ev, n - 2); /* the usage chunk */
    assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(last, "usage"), "completion_tokens")),
        7);
    const char *names[2] = {NULL, NULL}, *ids[2] = {NULL, NULL}, *finish = NULL;
    json_array_foreach(ev, i, e)
    {
        if (i >= n - 2)
            break;
        assert_string_equal(json_string_value(json_object_get(e, "object")),
                            "chat.completion.chunk");
        assert_string_equal(json_string_value(json_object_get(e, "id")), "chatcmpl-2");
        assert_true(json_is_null(json_object_get(e, "usage")));
        json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
        json_t *d = json_object_get(ch, "delta");
        if (i == 0)
            assert_string_equal(json_string_value(json_object_get(d, "role")), "assistant");
        const char *piece = json_string_value(json_object_get(d, "content"));
        if (piece)
            sb_buf_append_cstr(&content, piece);
        if (json_string_value(json_object_get(ch, "finish_reason")))
            finish = json_string_value(json_object_get(ch, "finish_reason"));
        json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (!tc)
            continue;
        int k = (int)json_integer_value(json_object_get(tc, "index"));
        json_t *fn = json_object_get(tc, "function");
        if (json_object_get(tc, "id")) {
            ids[k] = json_string_value(json_object_get(tc, "id"));
            names[k] = json_string_value(json_object_get(fn, "name"));
        }
        sb_buf_append_cstr(k ? &args1 : &args0,
                           json_string_value(json_object_get(fn, "arguments")));
    }
    assert_string_equal(content.p, "Caf\xc3\xa9 \xe2\x98\x95 checking \xf0\x9f\x8c\x8d");
    assert_string_equal(ids[0], "call_1");
    assert_string_equal(names[0], "get_w");
    assert_string_equal(args0.p, "{\"city\":\"Paris\",\"days\":3}");
    assert_string_equal(ids[1], "call_2");
    assert_string_equal(names[1], "get_t");
    assert_string_equal(args1.p, "{}");
    assert_string_equal(finish, "tool_calls");
    json_decref(ev);
    /* without include_usage: no usage member, no usage chunk */
    sb_buf_reset(&sse);
    assert_int_equal(sb_cache_render_sse(sb_slice_cstr(answer), false, 0, &sse, &err), SB_OK);
    assert_null(strstr(sse.p, "\"usage\""));
    assert_int_equal(sb_cache_render_sse(SB_SLICE("{\"id\":1}"), false, 0, &sse, &err),
                     SB_E_BAD_JSON);
    /* A stored choice with no message object (found by cache_fuzz: it was a
     * NULL dereference): the role chunk and the finish, nothing else. */
    static const char *const odd_answers[] = {
        "{\"id\":\"c\",\"choices\":[{\"index\":0}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"message\":[1]}]}"};
    for (size_t k = 0; k < 2; k++) {
        sb_buf_reset(&sse);
        assert_int_equal(sb_cache_render_sse(sb_slice_cstr(odd_answers[k]), false, 0, &sse, &err),
                         SB_OK);
        assert_non_null(strstr(sse.p, "\"role\":\"assistant\""));
        assert_null(strstr(sse.p, "[1]"));
        assert_non_null(strstr(sse.p, "data: [DONE]"));
    }
    sb_buf_free(&sse);
    sb_buf_free(&content);
    sb_buf_free(&args0);
    sb_buf_free(&args1);
}

/* Feeds text to a fresh accumulator in pieces of step bytes; returns finish's code. */
static sb_err accumulate(const char *text, size_t len, size_t step, size_t max, struct sb_buf *out)
{
    struct sb_cache_acc *acc = sb_cache_acc_create(max);
    struct sb_error err = {0};
    for (size_t i = 0; i < len; i += step)
        sb_cache_acc_feed(acc, text + i, len - i < step ? len - i : step);
    sb_err rc = sb_cache_acc_finish(acc, out, &err);
    sb_cache_acc_free(acc);
    return rc;
}

static void test_render_then_accumulate(void **state)
{
    (void)state;
    struct sb_buf sse, back;
    struct sb_error err = {0};
    sb_buf_init(&sse, 0);
    sb_buf_init(&back, 0);
    const char *answers[] = {answer, tool_answer};
    for (size_t i = 0; i < 2; i++) {
        for (size_t step = 1; step < 2000; step = step * 3 + 1) {
            sb_buf_reset(&sse);
            sb_buf_reset(&back);
            assert_int_equal(sb_cache_render_sse(sb_slice_cstr(answers[i]), true, 4, &sse, &err),
                             SB_OK);
            assert_int_equal(accumulate(sse.p, sse.len, step, 1 << 20, &back), SB_OK);
            assert_same_answer(answers[i], sb_buf_slice(&back));
        }
    }
    sb_buf_free(&sse);
    sb_buf_free(&back);
}

/* What an OpenAI-compatible upstream streams for `answer` (with include_usage). */
static const char upstream_stream[] =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    ": keep-alive\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\" there\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-a\",\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":{"
    "\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

static void test_accumulator(void **state)
{
    (void)state;
    struct sb_buf back;
    sb_buf_init(&back, 0);
    for (size_t step = 1; step < sizeof(upstream_stream); step *= 2) {
        sb_buf_reset(&back);
        assert_int_equal(accumulate(upstream_stream, strlen(upstream_stream), step, 1 << 20, &back),
                         SB_OK);
        assert_same_answer(answer, sb_buf_slice(&back));
        struct sb_cache_usage u;
        assert_true(sb_cache_storable(200, sb_buf_slice(&back), &u));
        assert_int_equal(u.completion_tokens, 2);
    }
    /* the same answer fed event by event (the proxy's sb_event.chunk), usage-only chunk included */
    {
        struct sb_cache_acc *acc = sb_cache_acc_create(1 << 20);
        struct sb_error err = {0};
        for (const char *p = strstr(upstream_stream, "data: "); p; p = strstr(p, "data: ")) {
            const char *end = strstr(p, "\n\n");
            const char *cr = strstr(p, "\r\n\r\n");
            if (cr && cr < end)
                end = cr;
            sb_cache_acc_event(acc, (struct sb_slice){p + 6, (size_t)(end - p - 6)});
            p = end;
        }
        sb_buf_reset(&back);
        assert_int_equal(sb_cache_acc_finish(acc, &back, &err), SB_OK);
        assert_same_answer(answer, sb_buf_slice(&back));
        sb_cache_acc_free(acc);
    }
    /* what it refuses to rebuild */
    const char *no_done = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
                          "\"finish_reason\":\"stop\"}]}\n\n";
    const char *no_finish = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
                            "data: [DONE]\n\n";
    const char *two = "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"a\"},"
                      "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    const char *error = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
                        "data: {\"error\":{\"message\":\"upstream broke\"}}\n\ndata: [DONE]\n\n";
    const char *named = "event: error\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n";
    const char *bad[] = {no_done, no_finish, two, error, named};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb_buf_reset(&back);
        assert_int_equal(accumulate(bad[i], strlen(bad[i]), 7, 1 << 20, &back), SB_E_UNPROCESSABLE);
    }
    /* bounded: an answer beyond max_bytes is given up */
    sb_buf_reset(&back);
    assert_int_equal(accumulate(upstream_stream, strlen(upstream_stream), 64, 200, &back),
                     SB_E_UNPROCESSABLE);
    sb_buf_free(&back);
}

/* ---- threads ---- */

struct worker {
    struct sb_cache *c;
    int id;
    int lookups;
};

static void *work(void *ud)
{
    struct worker *w = ud;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_cache_hit hit;
    for (int i = 0; i < 400; i++) {
        struct sb_cache_key k = put_n(w->c, (i * 7 + w->id) % 50, NULL, 0);
        if (!sb_cache_lookup(w->c, &k, i, a, &hit))
            assert_true(sb_cache_store(w->c, &k, 200, sb_slice_cstr(answer), i));
        else
            assert_true(sb_slice_eq_cstr(hit.body, answer));
        w->lookups++;
        sb_arena_reset(a);
    }
    sb_arena_free(a);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct sb_cache_opts o = {.max_entries = 20}; /* evictions race with lookups */
    struct sb_cache *c = sb_cache_memory_create(&o);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){c, i, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    struct sb_cache_stats st;
    c->ops->stats(c, &st);
    assert_int_equal(st.hits + st.misses, 8 * 400);
    assert_int_equal(st.stores, st.misses);
    assert_true(st.entries <= 20);
    assert_true(st.hits > 0 && st.evictions > 0);
    sb_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_key_reorder_hits_temperature_misses),
        cmocka_unit_test(test_key_rules),
        cmocka_unit_test(test_registry_carries_cache),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_lru_bytes),
        cmocka_unit_test(test_lru_entries),
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_render_parsed_back),
        cmocka_unit_test(test_render_then_accumulate),
        cmocka_unit_test(test_accumulator),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
