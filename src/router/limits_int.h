/* SPDX-License-Identifier: MIT */
/*
 * limits_int.h - the limiter's plug point (STYLE.md practice 3), shared by
 * limits.c (what a request asks of each scope) and limits_mem.c (the
 * in-process state). A Redis implementation fills the same table: `take`
 * is one Lua script over every scope of a request (limits_mem.c documents
 * it), so all-or-nothing holds across instances too.
 *
 * Units: time in Unix ms; tokens and requests as counts; money in integer
 * nano-dollars (1e-9 USD), so sums are exact.
 */
#ifndef SB_ROUTER_LIMITS_INT_H
#define SB_ROUTER_LIMITS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/limits.h"

enum sb__lim_kind { SB__LIM_RPM, SB__LIM_TPM, SB__LIM_BUDGET };

/* What a request asks of one scope. */
struct sb__lim_check {
    const char *id;               /* the scope, "k:12" */
    int64_t rpm, tpm;             /* limits; 0 = none */
    int64_t requests;             /* 1, or 0 (a retarget asks key and user for none) */
    int64_t tokens;               /* against tpm */
    int64_t budget_nusd;          /* 0 = none */
    enum sb_budget_period period; /* the budget's: day or month (UTC) */
    int64_t cost_nusd;            /* against the budget, >= 0 */
};

/* Why take refused: the first check and kind that would not fit. */
struct sb__lim_verdict {
    size_t index;
    enum sb__lim_kind kind;
    int64_t retry_ms; /* when it would pass if nothing else happened; 0 = never */
};

/* What comes back to one scope after a call. */
struct sb__lim_give {
    const char *id;
    int64_t requests;       /* returned (cancel) */
    int64_t tokens;         /* > 0 refunded, < 0 charged (overshoot) */
    int64_t release_nusd;   /* reserved cost released */
    int64_t spend_nusd;     /* settled cost, added to the day and the month ... */
    int64_t day_start_ms;   /* ... that start here (the request's; a period the */
    int64_t month_start_ms; /* scope has moved past since does not count it) */
};

struct sb_limits_ops {
    const char *name;
    /* Admits every check or none, atomically; false fills v. */
    bool (*take)(struct sb_limits *l, const struct sb__lim_check *c, size_t n, int64_t now_ms,
                 struct sb__lim_verdict *v);
    void (*give)(struct sb_limits *l, const struct sb__lim_give *g, size_t n, int64_t now_ms);
    /* Sets / reads the settled spend of id in the period p that starts at start_ms. */
    void (*seed)(struct sb_limits *l, const char *id, enum sb_budget_period p, int64_t start_ms,
                 int64_t spent_nusd);
    int64_t (*spent)(struct sb_limits *l, const char *id, enum sb_budget_period p,
                     int64_t start_ms);
    void (*destroy)(struct sb_limits *l);
};

/* The base every implementation embeds first. */
struct sb_limits {
    const struct sb_limits_ops *ops;
};

/* The in-process implementation (limits_mem.c). */
struct sb_limits *sb__limits_mem_create(void);

#endif
