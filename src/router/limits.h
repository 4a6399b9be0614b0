/* SPDX-License-Identifier: MIT */
/*
 * limits.h - exact rate limits and budgets, reserved before a call and
 * settled after it (issue 7 parts 4 and 5).
 *
 * Three scopes: the provider (rpm/tpm from the registry snapshot, so that
 * switchboard never causes a provider's 429), the virtual key and the user
 * (limits an admin set, struct sb_client_limits). A request passes only if
 * every scope admits it, and a refusal reserves nothing anywhere.
 *
 * Requests and tokens per minute use GCRA (one theoretical arrival time per
 * scope and kind, exact integer arithmetic): a scope holds at most one
 * minute's worth (L) at once and refills continuously at exactly L per
 * minute, the token bucket providers themselves describe. Over any span of
 * d ms at most L + floor(d * L / 60000) pass, to the request: no fixed
 * window, so no 2L within milliseconds across an edge (a sliding minute can
 * still see up to 2L - 1: a full bucket, then its refill). Tokens are RESERVED: the
 * estimated prompt tokens plus max_tokens (or SB_LIMITS_DEFAULT_OUTPUT when
 * the client gave none, lowered to the model's max_output_tokens when that
 * is smaller); the settle refunds what was not used or charges the overshoot.
 *
 * Budgets are USD per UTC day or month, kept in integer nano-dollars so that a
 * cut-off is exact to the cent: an estimate of the maximum cost (the same
 * token counts at the model's prices) is reserved, and the settle replaces it
 * with the real cost. Spend survives a restart: sb_limits_load_spend sums
 * usage_logs since each period's start.
 *
 * State lives outside the snapshot behind an ops table (limits_int.h): the
 * in-process table now, a Redis script later (the "Redis seam").
 */
#ifndef SB_ROUTER_LIMITS_H
#define SB_ROUTER_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "registry/registry.h"
#include "store/store.h"

#define SB_LIMITS_WINDOW_MS 60000     /* "per minute" */
#define SB_LIMITS_DEFAULT_OUTPUT 4096 /* tokens reserved for output when max_tokens is absent */
#define SB_LIMITS_MAX 1000000000000LL /* the largest rpm or tpm accepted (keeps math in int64) */
#define SB_LIMITS_ID_MAX 136          /* "k:" + key id, "u:" + username, "p:" + provider */

struct sb_limits;

/* Returns owned (free with sb_limits_free): the in-process implementation,
 * thread-safe (a lock per scope record, held for about 100 ns per call;
 * calls with no scope in common never wait on each other). */
struct sb_limits *sb_limits_create(void);
/* Accepts NULL. */
void sb_limits_free(struct sb_limits *l);

enum sb_limits_scope { SB_LIMITS_NONE, SB_LIMITS_PROVIDER, SB_LIMITS_KEY, SB_LIMITS_USER };

/* One attempt's demand; everything borrowed for the call only. */
struct sb_limits_req {
    const struct sb_model *model;               /* the target: provider rpm/tpm and prices */
    const struct sb_client_key *key;            /* NULL: no key scope (admin token) */
    const char *user;                           /* caller's username; NULL: no user scope */
    const struct sb_client_limits *user_limits; /* sb_registry_user_limits(); NULL: none */
    int64_t prompt_tokens;                      /* estimate; < 0 counts as 0 */
    int64_t max_tokens;                         /* the client's; <= 0: not given */
    bool no_output;                             /* embeddings: reserve the prompt only */
    int64_t now_ms;                             /* wall clock, Unix ms (UTC periods) */
};

/* What one scope holds for a request. */
struct sb_limits_hold {
    char id[SB_LIMITS_ID_MAX]; /* "p:openai", "k:12", "u:alice"; "" = nothing held */
    bool tpm;                  /* tokens were reserved here */
    bool budget;               /* cost was reserved here */
};

/* A request's reservations; a value the caller keeps (zero it before the
 * first reserve). Holds no pointers: it outlives any snapshot. */
struct sb_limits_ticket {
    bool held;                     /* key/user scopes reserved: settle or cancel it */
    struct sb_limits_hold hold[3]; /* [0] provider, [1] key, [2] user */
    int64_t tokens;                /* reserved in each scope with a tpm */
    int64_t cost_nusd;             /* reserved in each scope with a budget (1e-9 USD) */
    int64_t day_start_ms;          /* the request's UTC day and month: its spend */
    int64_t month_start_ms;        /* belongs there, as its usage row does */
    enum sb_limits_scope refused;  /* after a refusal: whose limit */
    int64_t retry_after_ms;        /* after a refusal: when it would pass; 0 = never as sent */
    /* Appended: after a refusal, which limit (for the x-ratelimit-* headers). */
    enum sb_limits_kind { SB_LIMITS_REQUESTS, SB_LIMITS_TOKENS, SB_LIMITS_BUDGET } refused_kind;
    int64_t refused_limit; /* its value: requests or tokens per minute (budgets: 0) */
};

/*
 * Reserves one request in every scope of q, or nothing: on refusal returns
 * SB_E_RATE_LIMITED with err->http_status 429, err->api_code
 * "rate_limit_exceeded" (rpm, tpm) or "insufficient_quota" (budget), a message
 * naming the scope and its limit, and t->refused / t->retry_after_ms set.
 * t must not be held (use sb_limits_retarget for a later attempt).
 */
sb_err sb_limits_reserve(struct sb_limits *l, const struct sb_limits_req *q,
                         struct sb_limits_ticket *t, struct sb_error *err);
/*
 * Failover: the attempt on the ticket's provider ended and q->model is next.
 * The old provider keeps its request (it was sent one) and gets its tokens
 * back; the new provider's rpm/tpm are reserved and the budgets re-estimated
 * at the new model's prices, all or nothing. On refusal the ticket still holds
 * the key and user scopes (retarget again, or settle/cancel).
 */
sb_err sb_limits_retarget(struct sb_limits *l, const struct sb_limits_req *q,
                          struct sb_limits_ticket *t, struct sb_error *err);
/* The request finished: real_tokens (prompt + completion; < 0 = unknown: 0)
 * and real_cost_usd replace the reservation. Clears t. No-op when not held. */
void sb_limits_settle(struct sb_limits *l, struct sb_limits_ticket *t, int64_t real_tokens,
                      double real_cost_usd, int64_t now_ms);
/* Nothing was sent upstream: everything comes back, requests included. Clears t. */
void sb_limits_cancel(struct sb_limits *l, struct sb_limits_ticket *t, int64_t now_ms);

/* ---- budgets ---- */

/* The start of the UTC day or month holding now_ms (SB_BUDGET_NONE: the month). */
int64_t sb_limits_period_start(enum sb_budget_period p, int64_t now_ms);
/* The start of the next one. */
int64_t sb_limits_period_end(enum sb_budget_period p, int64_t now_ms);
/* "day" | "month" | "" (none), and back (false for anything else). */
const char *sb_limits_period_name(enum sb_budget_period p);
bool sb_limits_period_parse(const char *s, enum sb_budget_period *out);

/* Settled spend of a scope ("k:12", "u:alice") in the day or month holding
 * now_ms, in USD. Spend is tracked for every key and user, budget or not. */
double sb_limits_spent(struct sb_limits *l, const char *scope, enum sb_budget_period p,
                       int64_t now_ms);
/* Sets the settled spend of scope in the day or month holding now_ms (start-up reload). */
void sb_limits_seed_spend(struct sb_limits *l, const char *scope, enum sb_budget_period p,
                          int64_t now_ms, double spent_usd);
/*
 * Start-up: loads the current UTC day's and month's spend of every key and
 * user from store s (sums of usage_logs.cost_usd since each start) into l.
 * Call once at start, before the listener serves. *n (may be NULL) gets the
 * number of (scope, period) sums seeded.
 */
sb_err sb_limits_load_spend(struct sb_limits *l, struct sb_store *s, int64_t now_ms, size_t *n,
                            struct sb_error *err);

#endif
