/* SPDX-License-Identifier: MIT */
/*
 * experiment_stats.c - the statistics of experiment results (pure; tested
 * in experiment_stats_test.c). Every interval is two-sided at 95%.
 *
 *   error rate         Wilson score interval. The normal approximation
 *                      (p +- 1.96 sqrt(p(1-p)/n)) collapses to [0, 0] when no
 *                      request failed and leaves [0, 1] at small n; Wilson
 *                      stays inside [0, 1] and is honest at 0 errors.
 *   difference of      Newcombe's hybrid score interval (his method 10),
 *   error rates        built from the two Wilson intervals, for the same
 *                      reason.
 *   mean rating        Student's t with n - 1 degrees of freedom (ratings
 *                      are -1, 0 or 1 and samples are often small, where the
 *                      normal quantile 1.96 is too narrow); none below n = 2.
 *   difference of      Welch's t interval (unequal variances), with the
 *   mean ratings       Welch-Satterthwaite degrees of freedom.
 * The t quantiles come from a table for 1..30 degrees of freedom and a
 * Cornish-Fisher expansion beyond (within 0.001 of the exact value there).
 */
#include <math.h>

#include "api/internal.h"

#define Z95 1.959963984540054

/* t(0.975, df) for df = 1..30. */
static const double t975[30] = {
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
};

double sb__stats_t975(double df)
{
    if (df < 1)
        return NAN;
    if (df < 31) /* a fractional df (Welch) rounds down, the wider interval; the 1e-9
                    forgives rounding in the Welch-Satterthwaite sum (5 - 1e-15 is 5) */
        return t975[(int)(df + 1e-9) - 1];
    double z = Z95, z3 = z * z * z, z5 = z3 * z * z;
    return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df);
}

struct sb__ci sb__stats_wilson(int64_t k, int64_t n)
{
    if (n <= 0 || k < 0 || k > n)
        return (struct sb__ci){NAN, NAN, NAN, false};
    double p = (double)k / (double)n, z2 = Z95 * Z95, nn = (double)n;
    double denom = 1 + z2 / nn;
    double center = (p + z2 / (2 * nn)) / denom;
    double half = Z95 * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
    double lo = center - half, hi = center + half;
    return (struct sb__ci){p, lo < 0 ? 0 : lo, hi > 1 ? 1 : hi, true};
}

struct sb__ci sb__stats_prop_diff(int64_t k1, int64_t n1, int64_t k2, int64_t n2)
{
    struct sb__ci a = sb__stats_wilson(k1, n1), b = sb__stats_wilson(k2, n2);
    if (!a.ok || !b.ok)
        return (struct sb__ci){NAN, NAN, NAN, false};
    double d = b.value - a.value;
    double lo = d - sqrt((b.value - b.lo) * (b.value - b.lo) + (a.hi - a.value) * (a.hi - a.value));
    double hi = d + sqrt((b.hi - b.value) * (b.hi - b.value) + (a.value - a.lo) * (a.value - a.lo));
    return (struct sb__ci){d, lo, hi, true};
}

/* The sample variance from sums; rounding may leave a tiny negative: 0. */
static double variance(int64_t n, double sum, double sumsq)
{
    double v = (sumsq - sum * sum / (double)n) / (double)(n - 1);
    return v > 0 ? v : 0;
}

struct sb__ci sb__stats_mean(int64_t n, double sum, double sumsq)
{
    if (n <= 0)
        return (struct sb__ci){NAN, NAN, NAN, false};
    double mean = sum / (double)n;
    if (n < 2)
        return (struct sb__ci){mean, NAN, NAN, false};
    double half = sb__stats_t975((double)(n - 1)) * sqrt(variance(n, sum, sumsq) / (double)n);
    return (struct sb__ci){mean, mean - half, mean + half, true};
}

struct sb__ci sb__stats_mean_diff(int64_t n1, double sum1, double sumsq1, int64_t n2, double sum2,
                                  double sumsq2)
{
    if (n1 < 2 || n2 < 2) {
        bool both = n1 > 0 && n2 > 0;
        double d = both ? sum2 / (double)n2 - sum1 / (double)n1 : NAN;
        return (struct sb__ci){d, NAN, NAN, false};
    }
    double a = variance(n1, sum1, sumsq1) / (double)n1, b = variance(n2, sum2, sumsq2) / (double)n2;
    double d = sum2 / (double)n2 - sum1 / (double)n1, se = sqrt(a + b);
    if (se == 0) /* no spread in either sample: the difference is exact */
        return (struct sb__ci){d, d, d, true};
    double df = (a + b) * (a + b) / (a * a / (double)(n1 - 1) + b * b / (double)(n2 - 1));
    double half = sb__stats_t975(df) * se;
    return (struct sb__ci){d, d - half, d + half, true};
}
