/* SPDX-License-Identifier: MIT */
/*
 * router_test.c - each strategy's order, fit filtering, stickiness, the
 * circuit breaker's closed -> open -> half-open -> closed cycle, and four
 * threads beginning and ending attempts while records are created (the
 * lock-free index, max_concurrency never exceeded; run under TSan in CI).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/buf.h"

#include "registry/registry_build.h"
#include "router/router.h"

static struct sb_store_provider providers[] = {
    {.id = "p", .type = "openai", .base_url = "http://127.0.0.1:1", .enabled = true},
    {.id = "q",
     .type = "openai",
     .base_url = "http://127.0.0.1:2",
     .enabled = true,
     .max_concurrency = 2},
};

static const char *a_fallbacks[] = {"c", "p/x", "b"};

static struct sb_store_model models[] = {
    {.id = "a",
     .fallbacks = a_fallbacks,
     .nfallbacks = 3,
     .provider = "p",
     .upstream_model = "a",
     .enabled = true,
     .fallback_priority = 3,
     .input_per_mtok = 5,
     .output_per_mtok = 15,
     .context_length = 8000,
     .caps = {.streaming = true, .tools = true}},
    {.id = "b",
     .provider = "p",
     .upstream_model = "b",
     .enabled = true,
     .fallback_priority = 1,
     .input_per_mtok = 0.5,
     .output_per_mtok = 1.5,
     .context_length = 4000,
     .caps = {.streaming = true}},
    {.id = "c",
     .provider = "p",
     .upstream_model = "c",
     .enabled = true,
     .fallback_priority = 2,
     .input_per_mtok = 1,
     .output_per_mtok = 2,
     .context_length = 128000,
     .caps = {.streaming = true, .tools = true}},
    {.id = "mine",
     .provider = "p",
     .upstream_model = "m",
     .enabled = true,
     .owner = "alice",
     .caps = {.streaming = true}},
    {.id = "q1", .provider = "q", .upstream_model = "q1", .enabled = true},
    {.id = "q2", .provider = "q", .upstream_model = "q2", .enabled = true},
};

static const char *targets[] = {"a", "b", "c", "nope", "mine"};
static const int64_t weights[] = {0, 3, 1, 1, 0};

static struct sb_store_route routes[] = {
    {.id = "r", .strategy = "priority", .targets = targets, .ntargets = 5},
};

static struct sb_registry *reg;

static int setup(void **state)
{
    struct sb_store_entities e = {.providers = providers,
                                  .nproviders = 2,
                                  .models = models,
                                  .nmodels = 6,
                                  .routes = routes,
                                  .nroutes = 1};
    struct sb_error err = {0};
    return sb_registry_build(&e, NULL, &reg, &err) == SB_OK ? 0 : -1;
}

static int teardown(void **state)
{
    sb_registry_release(reg);
    return 0;
}

static const char *plan_ids(struct sb_router *rt, const char *strategy, const int64_t *w,
                            const struct sb_plan_req *q, struct sb_plan *p)
{
    static char buf[128];
    struct sb_route_entry re = *sb_registry_find_route(reg, SB_SLICE("r"));
    re.strategy = strategy;
    re.weights = w;
    sb_router_plan(rt, reg, &re, q, p);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", p->t[i]->id,
                                i + 1 < p->n ? "," : "");
    return buf;
}

static void test_priority_and_fit(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    struct sb_plan p;
    struct sb_plan_req q = {.now_ms = 1000};
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "b,c,a");
    assert_int_equal(p.unfit, 2); /* "nope" unknown, "mine" is alice's */
    q.user = "alice";
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "mine,b,c,a");
    q.user = NULL;
    q.caps = SB_CAP_TOOLS; /* b has no tools */
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c,a");
    q.caps = 0;
    q.prompt_tokens = 5000; /* only c's window (and a's 8000 with max_tokens 0) fit */
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c,a");
    q.max_tokens = 4000;
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c");
    assert_string_equal(plan_ids(rt, "no-such", NULL, &q, &p), "c"); /* falls back to priority */
    sb_router_free(rt);
}

/* A model's fallbacks plan as listed (not by priority); a provider/upstream
 * fallback becomes an implicit model; a model without fallbacks has none. */
static void test_model_fallbacks(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    struct sb_plan p;
    struct sb_plan_req q = {.now_ms = 1000};
    const struct sb_model *a = sb_registry_find_model(reg, SB_SLICE("a"));
    assert_non_null(a->fallbacks);
    assert_null(sb_registry_find_model(reg, SB_SLICE("b"))->fallbacks);
    sb_router_plan(rt, reg, a->fallbacks, &q, &p);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.t[0]->id, "a");
    assert_string_equal(p.t[1]->id, "c");
    assert_string_equal(p.t[2]->id, "p/x");
    assert_string_equal(p.t[2]->upstream_model, "x");
    assert_string_equal(p.t[3]->id, "b");
    for (int i = 0; i < 5; i++) { /* an open breaker leaves the named model out too */
        sb_router_begin(rt, a, 1000);
        sb_router_end(rt, a, false, 10, -1, 0, 1000);
    }
    sb_router_plan(rt, reg, a->fallbacks, &q, &p);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.open, 1);
    assert_string_equal(p.t[0]->id, "c");
    sb_router_free(rt);
}

static void test_cost_latency_busy(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    struct sb_plan p;
    struct sb_plan_req q = {.now_ms = 1000, .prompt_tokens = 100};
    assert_string_equal(plan_ids(rt, "cost", NULL, &q, &p), "b,c,a");
    /* least-latency: unmeasured first (to learn), then fastest */
    sb_router_begin(rt, p.t[0], 1000); /* b */
    sb_router_end(rt, p.t[0], true, 300, -1, 0, 1000);
    const struct sb_model *a = sb_registry_find_model(reg, SB_SLICE("a"));
    const struct sb_model *c = sb_registry_find_model(reg, SB_SLICE("c"));
    sb_router_begin(rt, a, 1000);
    sb_router_end(rt, a, true, 100, 50, 0, 1000);
    assert_string_equal(plan_ids(rt, "least-latency", NULL, &q, &p), "c,a,b");
    sb_router_begin(rt, c, 1000);
    sb_router_end(rt, c, true, 200, -1, 0, 1000);
    assert_string_equal(plan_ids(rt, "least-latency", NULL, &q, &p), "a,c,b");
    /* least-busy: in-flight counts */
    sb_router_begin(rt, a, 1000);
    sb_router_begin(rt, a, 1000);
    sb_router_begin(rt, c, 1000);
    assert_string_equal(plan_ids(rt, "least-busy", NULL, &q, &p), "b,c,a");
    struct sb_router_health h;
    assert_true(sb_router_health(rt, "a", 1000, &h));
    assert_int_equal(h.inflight, 2);
    assert_true(h.latency_ms == 100);
    assert_false(sb_router_health(rt, "zzz", 1000, &h));
    sb_router_free(rt);
}

static void test_weighted(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    struct sb_plan p;
    struct sb_plan_req q = {.now_ms = 1000};
    int firsts[3] = {0};
    for (uint64_t s = 1; s <= 4000; s++) {
        q.sticky = s;
        plan_ids(rt, "weighted", weights, &q, &p);
        assert_int_equal(p.n, 3);
        firsts[p.t[0]->id[0] - 'a']++;
    }
    assert_int_equal(firsts[0], 0);         /* weight 0: a fallback only, never first */
    assert_in_range(firsts[1], 2700, 3300); /* 3/4 */
    assert_in_range(firsts[2], 700, 1300);  /* 1/4 */
    q.sticky = 42; /* sticky: the same conversation gets the same first target */
    const char *once = plan_ids(rt, "weighted", weights, &q, &p);
    char first[64];
    strncpy(first, once, sizeof(first) - 1);
    first[sizeof(first) - 1] = '\0';
    for (int i = 0; i < 20; i++)
        assert_string_equal(plan_ids(rt, "weighted", weights, &q, &p), first);
    sb_router_free(rt);
}

static void test_breaker(void **state)
{
    struct sb_router_opts o = {.breaker_failures = 3, .breaker_cooldown_ms = 1000};
    struct sb_router *rt = sb_router_create(&o);
    struct sb_plan p;
    struct sb_plan_req q = {.now_ms = 10000};
    struct sb_router_health h;
    const struct sb_model *b = sb_registry_find_model(reg, SB_SLICE("b"));
    for (int i = 0; i < 2; i++) {
        sb_router_begin(rt, b, 10000);
        sb_router_end(rt, b, false, 5, -1, 0, 10000);
    }
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "b,c,a"); /* 2 < 3: closed */
    sb_router_begin(rt, b, 10000);
    sb_router_end(rt, b, false, 5, -1, 0, 10000);
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c,a"); /* open: no traffic */
    assert_int_equal(p.open, 1);
    assert_true(sb_router_health(rt, "b", 10500, &h) && h.breaker == SB_BREAKER_OPEN);
    q.now_ms = 11001; /* cooldown over: half-open, one probe */
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "b,c,a");
    sb_router_begin(rt, b, 11001);
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c,a"); /* probe out */
    sb_router_end(rt, b, false, 5, -1, 0, 11002); /* probe fails: open again */
    assert_true(sb_router_health(rt, "b", 11500, &h) && h.breaker == SB_BREAKER_OPEN);
    q.now_ms = 12003;
    sb_router_begin(rt, b, 12003);
    sb_router_end(rt, b, true, 5, -1, 0, 12004); /* probe succeeds: closed */
    assert_true(sb_router_health(rt, "b", 12005, &h) && h.breaker == SB_BREAKER_CLOSED);
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "b,c,a");
    /* Retry-After: held away for that long, even below the failure count */
    sb_router_begin(rt, b, 20000);
    sb_router_end(rt, b, false, 5, -1, 3000, 20000);
    q.now_ms = 22999;
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "c,a");
    q.now_ms = 23000;
    assert_string_equal(plan_ids(rt, "priority", NULL, &q, &p), "b,c,a");
    sb_router_free(rt);
}

/* max_concurrency counts the provider's requests in flight, across its models. */
static void test_provider_concurrency(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    const struct sb_model *q1 = sb_registry_find_model(reg, SB_SLICE("q1"));
    const struct sb_model *q2 = sb_registry_find_model(reg, SB_SLICE("q2"));
    const struct sb_model *a = sb_registry_find_model(reg, SB_SLICE("a"));
    assert_true(sb_router_begin(rt, q1, 1000));
    assert_true(sb_router_begin(rt, q2, 1000));
    assert_false(sb_router_begin(rt, q1, 1000)); /* two in flight: full */
    assert_false(sb_router_begin(rt, q2, 1000));
    for (int i = 0; i < 5; i++) /* another provider without a cap is not affected */
        assert_true(sb_router_begin(rt, a, 1000));
    sb_router_end(rt, q1, true, 5, -1, 0, 1001);
    assert_true(sb_router_begin(rt, q2, 1002));
    struct sb_router_health h;
    assert_true(sb_router_health(rt, "q2", 1002, &h));
    assert_int_equal(h.inflight, 2);
    sb_router_free(rt);
}

/* ---- many workers at once (run under TSan in CI) ---- */

#define RACERS 4

static atomic_int in_q; /* attempts admitted to provider q right now */
static atomic_int over; /* times more than its max_concurrency were in */

struct race {
    struct sb_router *rt;
    int id;
};

/* Begins and ends attempts on q (max_concurrency 2) and a (uncapped) while
 * other threads create records (index growth under lock-free readers);
 * racer 0 also renders the gauges now and then, as /metrics does, which
 * walks the records without a lock. */
static void *racer(void *arg)
{
    struct race *r = arg;
    const struct sb_model *q1 = sb_registry_find_model(reg, SB_SLICE("q1"));
    const struct sb_model *a = sb_registry_find_model(reg, SB_SLICE("a"));
    struct sb_route_entry re = *sb_registry_find_route(reg, SB_SLICE("r"));
    struct sb_plan_req q = {.now_ms = 1000};
    struct sb_plan p;
    re.strategy = "least-busy";
    for (int i = 0; i < 2000; i++) {
        if (sb_router_begin(r->rt, q1, 1000)) {
            if (atomic_fetch_add(&in_q, 1) + 1 > 2)
                atomic_fetch_add(&over, 1);
            atomic_fetch_sub(&in_q, 1);
            sb_router_end(r->rt, q1, true, 5, -1, 0, 1000);
        }
        assert_true(sb_router_begin(r->rt, a, 1000));
        sb_router_end(r->rt, a, true, 10, 2, 0, 1000);
        if (i % 20 == 0) {
            char label[32];
            snprintf(label, sizeof(label), "t%d-%d", r->id, i);
            sb_router_key_release(r->rt, "p", label); /* a new record */
        }
        sb_router_plan(r->rt, reg, &re, &q, &p); /* reads what the others write */
        if (r->id == 0 && i % 100 == 0) {
            struct sb_buf b;
            sb_buf_init(&b, 0);
            sb_router_render_metrics(r->rt, &b, 1000);
            sb_buf_free(&b);
        }
    }
    return NULL;
}

static void test_many_workers(void **state)
{
    struct sb_router *rt = sb_router_create(NULL);
    struct race r[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (struct race){.rt = rt, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&over), 0);
    struct sb_router_health h;
    assert_true(sb_router_health(rt, "q1", 1000, &h));
    assert_int_equal(h.inflight, 0);
    assert_true(sb_router_health(rt, "a", 1000, &h));
    assert_int_equal(h.inflight, 0);
    assert_true(h.latency_ms > 9.9 && h.latency_ms < 10.1);
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_router_render_metrics(rt, &b, 1000);
    sb_buf_append_char(&b, '\0');
    const char *text = sb_buf_slice(&b).p;
    assert_non_null(strstr(text, "switchboard_provider_inflight{provider=\"q\"} 0\n"));
    assert_non_null(
        strstr(text, "switchboard_provider_key_held{provider=\"p\",label=\"t3-1980\"} 0"));
    sb_buf_free(&b);
    sb_router_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_and_fit),  cmocka_unit_test(test_model_fallbacks),
        cmocka_unit_test(test_cost_latency_busy), cmocka_unit_test(test_weighted),
        cmocka_unit_test(test_breaker),           cmocka_unit_test(test_provider_concurrency),
        cmocka_unit_test(test_many_workers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
