/* SPDX-License-Identifier: MIT */
/*
 * experiment_test.c - variant assignment (stickiness, the split over many
 * conversations, weight 0, paused and ended experiments, the key order) and
 * experiments in a registry snapshot built from store rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry/registry_build.h"
#include "router/experiment.h"

static struct sb_store_provider providers[] = {
    {.id = "p", .type = "openai", .base_url = "http://127.0.0.1:1", .enabled = true},
};

static struct sb_store_model models[] = {
    {.id = "a", .provider = "p", .upstream_model = "a", .enabled = true},
    {.id = "b", .provider = "p", .upstream_model = "b", .enabled = true},
};

static const char *route_targets[] = {"a", "b"};
static struct sb_store_route routes[] = {
    {.id = "r", .strategy = "priority", .targets = route_targets, .ntargets = 2},
};

static struct sb_store_variant v_ab[] = {{"control", "a", 70}, {"treat", "r", 30}};
static struct sb_store_variant v_zero[] = {{"off", "a", 0}, {"on", "b", 5}, {"off2", "b", 0}};
static struct sb_store_variant v_dead[] = {{"x", "a", 0}};

static struct sb_store_experiment experiments[] = {
    {.id = "exp-ab", .status = "active", .variants = v_ab, .nvariants = 2},
    {.id = "exp-zero", .status = "active", .variants = v_zero, .nvariants = 3},
    {.id = "exp-paused", .status = "paused", .variants = v_ab, .nvariants = 2},
    {.id = "exp-ended", .status = "ended", .variants = v_ab, .nvariants = 2},
    {.id = "a", .status = "active", .variants = v_ab, .nvariants = 2},          /* a model's id */
    {.id = "r", .status = "active", .variants = v_ab, .nvariants = 2},          /* a route's id */
    {.id = "exp-dead", .status = "active", .variants = v_dead, .nvariants = 1}, /* sum 0 */
};

static struct sb_registry *reg;

static int setup(void **state)
{
    struct sb_store_entities e = {
        .providers = providers,
        .nproviders = 1,
        .models = models,
        .nmodels = 2,
        .routes = routes,
        .nroutes = 1,
        .experiments = experiments,
        .nexperiments = sizeof(experiments) / sizeof(experiments[0]),
    };
    struct sb_error err = {0};
    return sb_registry_build(&e, NULL, &reg, &err) == SB_OK ? 0 : -1;
}

static int teardown(void **state)
{
    sb_registry_release(reg);
    return 0;
}

static const struct sb_experiment_entry *find(const char *id)
{
    return sb_registry_find_experiment(reg, sb_slice_cstr(id));
}

static const char *assign(const char *id, const char *conv, const char *user, uint64_t rnd,
                          bool *counted)
{
    struct sb_experiment_choice c;
    sb_experiment_assign(find(id), sb_slice_cstr(conv), sb_slice_cstr(user), rnd, &c);
    if (counted)
        *counted = c.counted;
    return c.variant->name;
}

static void test_snapshot(void **state)
{
    const struct sb_experiment_entry *x = find("exp-ab");
    assert_non_null(x);
    assert_int_equal(x->status, SB_EXPERIMENT_ACTIVE);
    assert_int_equal(x->nvariants, 2);
    assert_int_equal(x->total_weight, 100);
    assert_string_equal(x->variants[1].target, "r");
    assert_int_equal(find("exp-paused")->status, SB_EXPERIMENT_PAUSED);
    assert_int_equal(find("exp-ended")->status, SB_EXPERIMENT_ENDED);
    /* an id a model or route holds is left out: the model or route wins */
    assert_null(find("a"));
    assert_null(find("r"));
    assert_non_null(sb_registry_find_model(reg, sb_slice_cstr("a")));
    assert_null(find("exp-dead")); /* no positive weight: cannot serve */
    assert_null(find("nope"));
    assert_int_equal(sb_registry_experiment_count(reg), 4);
}

static void test_sticky(void **state)
{
    char conv[32];
    for (int i = 0; i < 200; i++) {
        snprintf(conv, sizeof(conv), "conversation-%d", i);
        const char *first = assign("exp-ab", conv, "", 1, NULL);
        /* the random value does not matter once there is a key */
        for (uint64_t r = 2; r < 6; r++)
            assert_string_equal(assign("exp-ab", conv, "", r * 7919, NULL), first);
        /* the user field is the key when there is no header... */
        assert_string_equal(assign("exp-ab", "", conv, 99, NULL), first);
        /* ...and the header wins over it */
        assert_string_equal(assign("exp-ab", conv, "someone-else", 5, NULL), first);
    }
}

/* Over many conversations the split follows the weights: 70/30 within 2.5
 * points for 10,000 keys (the binomial's standard deviation is 0.46 points). */
static void test_distribution(void **state)
{
    char conv[32];
    int control = 0, n = 10000;
    for (int i = 0; i < n; i++) {
        snprintf(conv, sizeof(conv), "c%d", i);
        control += strcmp(assign("exp-ab", conv, "", 0, NULL), "control") == 0;
    }
    assert_in_range(control, n * 675 / 1000, n * 725 / 1000);
    /* without a key, the random values split the same way */
    control = 0;
    for (int i = 0; i < n; i++)
        control += strcmp(assign("exp-ab", "", "", sb_experiment_random(), NULL), "control") == 0;
    assert_in_range(control, n * 675 / 1000, n * 725 / 1000);
}

static void test_weight_zero(void **state)
{
    char conv[32];
    bool counted = false;
    for (int i = 0; i < 5000; i++) {
        snprintf(conv, sizeof(conv), "z%d", i);
        assert_string_equal(assign("exp-zero", conv, "", 0, &counted), "on");
        assert_true(counted);
        assert_string_equal(assign("exp-zero", "", "", (uint64_t)i * 0x9e3779b97f4a7c15ull, NULL),
                            "on");
    }
}

static void test_paused_and_ended(void **state)
{
    bool counted = true;
    char conv[32];
    for (int i = 0; i < 500; i++) {
        snprintf(conv, sizeof(conv), "p%d", i);
        assert_string_equal(assign("exp-paused", conv, "", (uint64_t)i, &counted), "control");
        assert_false(counted);
        counted = true;
        assert_string_equal(assign("exp-ended", "", conv, (uint64_t)i, &counted), "control");
        assert_false(counted);
    }
}

/* Two experiments split the same conversations independently: not every
 * conversation lands on the same side of both. */
static void test_independent(void **state)
{
    struct sb_store_variant half[] = {{"l", "a", 1}, {"r", "b", 1}};
    struct sb_store_experiment xs[] = {
        {.id = "one", .status = "active", .variants = half, .nvariants = 2},
        {.id = "two", .status = "active", .variants = half, .nvariants = 2},
    };
    struct sb_store_entities e = {.providers = providers,
                                  .nproviders = 1,
                                  .models = models,
                                  .nmodels = 2,
                                  .experiments = xs,
                                  .nexperiments = 2};
    struct sb_registry *r2 = NULL;
    struct sb_error err = {0};
    assert_int_equal(sb_registry_build(&e, NULL, &r2, &err), SB_OK);
    const struct sb_experiment_entry *one = sb_registry_find_experiment(r2, sb_slice_cstr("one"));
    const struct sb_experiment_entry *two = sb_registry_find_experiment(r2, sb_slice_cstr("two"));
    int same = 0;
    char conv[32];
    for (int i = 0; i < 1000; i++) {
        struct sb_experiment_choice a, b;
        snprintf(conv, sizeof(conv), "k%d", i);
        sb_experiment_assign(one, sb_slice_cstr(conv), SB_SLICE_NULL, 0, &a);
        sb_experiment_assign(two, sb_slice_cstr(conv), SB_SLICE_NULL, 0, &b);
        same += strcmp(a.variant->name, b.variant->name) == 0;
    }
    assert_in_range(same, 400, 600); /* independent halves agree about half the time */
    sb_registry_release(r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot),         cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_distribution),     cmocka_unit_test(test_weight_zero),
        cmocka_unit_test(test_paused_and_ended), cmocka_unit_test(test_independent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
