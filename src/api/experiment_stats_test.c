/* SPDX-License-Identifier: MIT */
/*
 * experiment_stats_test.c - the intervals of experiment results against
 * published values: Wilson (0/10, 5/10), Newcombe's own worked example for
 * the difference of proportions, Student t and Welch intervals computed by
 * hand, and the t quantiles past the table.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "api/internal.h"

#define NEAR(x, want, tol) assert_true(fabs((x) - (want)) < (tol))

static void test_t975(void **state)
{
    NEAR(sb__stats_t975(1), 12.706, 1e-9);
    NEAR(sb__stats_t975(4), 2.776, 1e-9);
    NEAR(sb__stats_t975(4.7), 2.776, 1e-9); /* fractional df rounds down */
    NEAR(sb__stats_t975(30), 2.042, 1e-9);
    NEAR(sb__stats_t975(40), 2.021, 1e-3); /* tables: 2.021, 2.000, 1.980 */
    NEAR(sb__stats_t975(60), 2.000, 1e-3);
    NEAR(sb__stats_t975(120), 1.980, 1e-3);
    NEAR(sb__stats_t975(1e9), 1.95996, 1e-4);
    assert_true(isnan(sb__stats_t975(0.5)));
}

static void test_wilson(void **state)
{
    struct sb__ci c = sb__stats_wilson(0, 10);
    assert_true(c.ok);
    NEAR(c.value, 0, 1e-12);
    NEAR(c.lo, 0, 1e-12);
    NEAR(c.hi, 0.2775, 1e-4); /* not [0, 0] as the normal approximation gives */
    c = sb__stats_wilson(5, 10);
    NEAR(c.lo, 0.2366, 1e-4);
    NEAR(c.hi, 0.7634, 1e-4);
    c = sb__stats_wilson(10, 10);
    NEAR(c.hi, 1, 1e-12);
    NEAR(c.lo, 0.7225, 1e-4);
    assert_false(sb__stats_wilson(0, 0).ok);
    assert_false(sb__stats_wilson(3, 2).ok);
}

/* Newcombe (1998), "Interval estimation for the difference between
 * independent proportions", example (a): 56/70 - 48/80 = 0.2, method 10
 * gives 0.0524 to 0.3339. */
static void test_prop_diff(void **state)
{
    struct sb__ci d = sb__stats_prop_diff(48, 80, 56, 70);
    assert_true(d.ok);
    NEAR(d.value, 0.2, 1e-12);
    NEAR(d.lo, 0.0524, 1e-4);
    NEAR(d.hi, 0.3339, 1e-4);
    d = sb__stats_prop_diff(56, 70, 48, 80); /* the other way round: mirrored */
    NEAR(d.lo, -0.3339, 1e-4);
    NEAR(d.hi, -0.0524, 1e-4);
    assert_false(sb__stats_prop_diff(1, 0, 1, 5).ok);
}

static void test_mean(void **state)
{
    /* ratings 1, 1, 1, -1, 0: mean 0.4, s^2 0.8, se 0.4, t(4) 2.776 */
    struct sb__ci m = sb__stats_mean(5, 2, 4);
    assert_true(m.ok);
    NEAR(m.value, 0.4, 1e-12);
    NEAR(m.lo, 0.4 - 2.776 * 0.4, 1e-9);
    NEAR(m.hi, 0.4 + 2.776 * 0.4, 1e-9);
    m = sb__stats_mean(1, 1, 1); /* one rating: a mean, no interval */
    assert_false(m.ok);
    NEAR(m.value, 1, 1e-12);
    m = sb__stats_mean(3, 3, 3); /* all equal: a zero-width interval */
    assert_true(m.ok);
    NEAR(m.lo, 1, 1e-12);
    NEAR(m.hi, 1, 1e-12);
    assert_true(isnan(sb__stats_mean(0, 0, 0).value));
}

static void test_mean_diff(void **state)
{
    /* {1,1,0,0} vs {1,1,1,0,1,1}: d = 1/3, se = 1/3, Welch df exactly 5, t(5) 2.571 */
    struct sb__ci d = sb__stats_mean_diff(4, 2, 2, 6, 5, 5);
    assert_true(d.ok);
    NEAR(d.value, 1.0 / 3, 1e-12);
    NEAR(d.lo, 1.0 / 3 - 2.571 / 3, 1e-9);
    NEAR(d.hi, 1.0 / 3 + 2.571 / 3, 1e-9);
    d = sb__stats_mean_diff(1, 1, 1, 4, 0, 2); /* too few on one side: no interval */
    assert_false(d.ok);
    NEAR(d.value, -1, 1e-12);
    d = sb__stats_mean_diff(3, 3, 3, 2, -2, 2); /* no spread: the difference is exact */
    assert_true(d.ok);
    NEAR(d.lo, -2, 1e-12);
    NEAR(d.hi, -2, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_t975),      cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_prop_diff), cmocka_unit_test(test_mean),
        cmocka_unit_test(test_mean_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
