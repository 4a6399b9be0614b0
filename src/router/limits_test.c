/* SPDX-License-Identifier: MIT */
/*
 * limits_test.c - the limiter is exact: threads hammering one key at a fake
 * clock get exactly L a window and the Retry-After to the ms; sustained
 * rates do not drift; token reservations refund and charge; budgets cut off
 * at the exact cent; a refusal in one scope reserves nothing in another;
 * failover moves the provider's reservation; spend reloads from usage rows;
 * four threads on overlapping and disjoint scopes leave every count exact
 * (per-record locks taken in one order; run under TSan in CI).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry/registry_build.h"
#include "router/limits.h"
#include "store/identity.h"
#include "store/quota.h"
#include "store/usage.h"

#define T0 1718452800000LL /* 2024-06-15T12:00:00Z */
#define DAY 86400000LL

static struct sb_provider prov = {.id = "openai"};
static struct sb_provider prov2 = {.id = "backup"};
static struct sb_model model = {.id = "m", .provider = &prov};
static struct sb_model model2 = {.id = "m2", .provider = &prov2};
static struct sb_client_key key = {.id = "12", .name = "k"};

static void reset(void)
{
    prov = (struct sb_provider){.id = "openai"};
    prov2 = (struct sb_provider){.id = "backup"};
    model = (struct sb_model){.id = "m", .provider = &prov};
    model2 = (struct sb_model){.id = "m2", .provider = &prov2};
    key = (struct sb_client_key){.id = "12", .name = "k"};
}

static struct sb_limits_req req(int64_t now, int64_t prompt, int64_t max_tokens)
{
    return (struct sb_limits_req){.model = &model,
                                  .key = &key,
                                  .prompt_tokens = prompt,
                                  .max_tokens = max_tokens,
                                  .now_ms = now};
}

/* Reserves and settles at once (real = reserved); true when admitted. */
static bool one(struct sb_limits *l, int64_t now)
{
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    struct sb_limits_req q = req(now, 10, 10);
    if (sb_limits_reserve(l, &q, &t, &e) != SB_OK)
        return false;
    sb_limits_settle(l, &t, 20, 0, now);
    return true;
}

/* ---- requests per minute ---- */

struct hammer {
    struct sb_limits *l;
    pthread_barrier_t *go;
    int tries, admitted;
    int64_t retry_ms; /* the last refusal's */
};

static void *hammer(void *ud)
{
    struct hammer *h = ud;
    pthread_barrier_wait(h->go);
    for (int i = 0; i < h->tries; i++) {
        struct sb_limits_ticket t;
        struct sb_error e = {0};
        struct sb_limits_req q = req(T0, 0, 1);
        if (sb_limits_reserve(h->l, &q, &t, &e) == SB_OK) {
            h->admitted++;
            continue; /* held, never settled: the request is still in flight */
        }
        h->retry_ms = t.retry_after_ms;
    }
    return NULL;
}

static void test_rpm_exact_under_threads(void **state)
{
    enum { N = 8, TRIES = 40 };
    reset();
    key.limits.rpm = 60;
    struct sb_limits *l = sb_limits_create();
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    struct hammer h[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        h[i] = (struct hammer){.l = l, .go = &go, .tries = TRIES};
        pthread_create(&th[i], NULL, hammer, &h[i]);
    }
    int admitted = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        admitted += h[i].admitted;
        if (h[i].admitted < TRIES)
            assert_int_equal(h[i].retry_ms, 1000); /* one request's interval */
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(admitted, 60); /* none lost, none extra */
    assert_false(one(l, T0 + 999));
    assert_true(one(l, T0 + 1000));
    assert_false(one(l, T0 + 1000));
    sb_limits_free(l);
}

/* L = 7: the interval (8571.43 ms) is not whole; still exactly L, no drift. */
static void test_rpm_fractional_interval_no_drift(void **state)
{
    reset();
    key.limits.rpm = 7;
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    int n = 0;
    while (one(l, T0))
        n++;
    assert_int_equal(n, 7);
    struct sb_limits_req q = req(T0, 10, 10);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    assert_int_equal(t.retry_after_ms, 8572); /* ceil(60000 / 7) */
    assert_int_equal(t.refused, SB_LIMITS_KEY);
    assert_int_equal(t.refused_kind, SB_LIMITS_REQUESTS); /* for x-ratelimit-*-requests */
    assert_int_equal(t.refused_limit, 7);
    assert_int_equal(sb_err_status(&e), 429);
    assert_string_equal(e.api_code, "rate_limit_exceeded");
    assert_non_null(strstr(e.msg, "virtual key 12: 7 requests per minute"));
    assert_false(one(l, T0 + 8571));
    /* One try per ms for three minutes: exactly 3 x 7 more. */
    for (int64_t ms = 1; ms <= 3 * 60000; ms++)
        n += one(l, T0 + ms);
    assert_int_equal(n, 7 + 21);
    sb_limits_free(l);
}

static void test_limit_change_keeps_what_was_used(void **state)
{
    reset();
    key.limits.rpm = 10;
    struct sb_limits *l = sb_limits_create();
    int n = 0;
    for (int i = 0; i < 5; i++)
        n += one(l, T0);
    assert_int_equal(n, 5);
    key.limits.rpm = 20; /* an admin raised it: 5 of 20 are used */
    while (one(l, T0))
        n++;
    assert_int_equal(n, 20);
    sb_limits_free(l);
}

/* ---- tokens per minute by reservation ---- */

static void test_tpm_reserve_refund_overshoot(void **state)
{
    reset();
    key.limits.tpm = 1000;
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t[5];
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 100, 200); /* reserves 300 */
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_limits_reserve(l, &q, &t[i], &e), SB_OK);
    assert_int_equal(t[0].tokens, 300);
    assert_int_equal(sb_limits_reserve(l, &q, &t[3], &e), SB_E_RATE_LIMITED); /* 1200 > 1000 */
    /* 100 left; 300 more need 200 tokens to drain: 200 x 60 ms */
    assert_int_equal(t[3].retry_after_ms, 12000);
    sb_limits_settle(l, &t[0], 100, 0, T0); /* used 100 of 300: 200 back, 700 in use */
    assert_int_equal(sb_limits_reserve(l, &q, &t[3], &e), SB_OK); /* 1000 */
    assert_int_equal(sb_limits_reserve(l, &q, &t[4], &e), SB_E_RATE_LIMITED);
    sb_limits_settle(l, &t[1], 500, 0, T0); /* 200 over the reservation: charged, 1200 */
    q.prompt_tokens = 0;
    q.max_tokens = 1;
    assert_int_equal(sb_limits_reserve(l, &q, &t[4], &e), SB_E_RATE_LIMITED);
    /* 201 tokens over capacity drain at 1000/min: 12060 ms */
    assert_int_equal(t[4].retry_after_ms, 12060);
    q.now_ms = T0 + 12059;
    assert_int_equal(sb_limits_reserve(l, &q, &t[4], &e), SB_E_RATE_LIMITED);
    q.now_ms = T0 + 12060;
    assert_int_equal(sb_limits_reserve(l, &q, &t[4], &e), SB_OK);
    sb_limits_free(l);
}

static void test_tpm_default_output_and_too_large(void **state)
{
    reset();
    key.limits.tpm = 5000;
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 100, 0); /* no max_tokens */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    assert_int_equal(t.tokens, 100 + SB_LIMITS_DEFAULT_OUTPUT);
    sb_limits_cancel(l, &t, T0);
    model.max_output_tokens = 1000; /* smaller than the default: the model's */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    assert_int_equal(t.tokens, 1100);
    sb_limits_cancel(l, &t, T0);
    q.no_output = true; /* embeddings: the prompt only */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    assert_int_equal(t.tokens, 100);
    sb_limits_cancel(l, &t, T0);
    q.no_output = false;
    q.max_tokens = 6000; /* more than a minute's tokens: never passes */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    assert_int_equal(t.retry_after_ms, 0);
    assert_non_null(strstr(e.msg, "request too large"));
    assert_false(t.held);
    sb_limits_free(l);
}

/* ---- budgets ---- */

static void test_budget_cut_off_at_the_exact_cent(void **state)
{
    reset();
    key.limits = (struct sb_client_limits){.budget_usd = 1.00, .period = SB_BUDGET_DAY};
    model.input_per_mtok = 10; /* 1000 prompt tokens = $0.01 */
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 1000, 1);
    int n = 0;
    while (sb_limits_reserve(l, &q, &t, &e) == SB_OK) {
        sb_limits_settle(l, &t, 1001, 0.01, T0);
        n++;
    }
    assert_int_equal(n, 100);
    assert_string_equal(e.api_code, "insufficient_quota");
    assert_int_equal(sb_err_status(&e), 429);
    assert_non_null(strstr(e.msg, "virtual key 12: budget of $1.00 per day"));
    assert_int_equal(t.refused_kind, SB_LIMITS_BUDGET);
    assert_int_equal(t.retry_after_ms, 12 * 3600 * 1000); /* noon to midnight UTC */
    assert_true(sb_limits_spent(l, "k:12", SB_BUDGET_DAY, T0) == 1.00);
    q.now_ms = T0 + 12 * 3600 * 1000; /* the next day */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    sb_limits_free(l);
}

static void test_budget_counts_requests_in_flight(void **state)
{
    reset();
    key.limits = (struct sb_client_limits){.budget_usd = 0.05, .period = SB_BUDGET_MONTH};
    model.input_per_mtok = 10;
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t[6];
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 1000, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sb_limits_reserve(l, &q, &t[i], &e), SB_OK);
    assert_int_equal(sb_limits_reserve(l, &q, &t[5], &e), SB_E_RATE_LIMITED);
    sb_limits_settle(l, &t[0], 500, 0.005, T0); /* cost half the estimate: $0.005 back */
    assert_int_equal(sb_limits_reserve(l, &q, &t[5], &e), SB_E_RATE_LIMITED);
    sb_limits_settle(l, &t[1], 500, 0.005, T0); /* now $0.01 free */
    assert_int_equal(sb_limits_reserve(l, &q, &t[5], &e), SB_OK);
    sb_limits_free(l);
}

/* ---- all or nothing, failover, cancel ---- */

static void test_refusal_reserves_nothing_anywhere(void **state)
{
    reset();
    key.limits.rpm = 10;
    key.user = "alice";
    struct sb_client_limits alice = {.rpm = 5};
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 1, 1);
    q.user = "alice";
    q.user_limits = &alice;
    int n = 0;
    for (int i = 0; i < 20; i++)
        n += sb_limits_reserve(l, &q, &t, &e) == SB_OK;
    assert_int_equal(n, 5);
    assert_int_equal(t.refused, SB_LIMITS_USER);
    assert_non_null(strstr(e.msg, "user alice: 5 requests per minute"));
    /* The 15 refusals took nothing from the key: 5 of its 10 remain. */
    q.user = NULL;
    while (sb_limits_reserve(l, &q, &t, &e) == SB_OK)
        n++;
    assert_int_equal(n, 10);
    assert_int_equal(t.refused, SB_LIMITS_KEY);
    /* A provider at its limit refuses before the key pays. */
    prov.rpm = 1;
    key.id = "13";
    key.limits.rpm = 2;
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    assert_int_equal(t.refused, SB_LIMITS_PROVIDER);
    assert_non_null(strstr(e.msg, "provider openai: 1 requests per minute"));
    q.model = &model2; /* another provider: key 13 still has its second request */
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    assert_int_equal(t.refused, SB_LIMITS_KEY);
    sb_limits_free(l);
}

static void test_retarget_moves_the_provider_reservation(void **state)
{
    reset();
    prov.tpm = 1000;
    prov2.tpm = 1000;
    prov2.rpm = 1;
    key.limits.rpm = 1; /* one client request, however many attempts */
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t, u;
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 400, 400);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    q.model = &model2; /* the first target failed: fail over */
    assert_int_equal(sb_limits_retarget(l, &q, &t, &e), SB_OK);
    assert_string_equal(t.hold[0].id, "p:backup");
    /* openai got its 800 tokens back; backup holds them */
    key.id = "14";
    key.limits.rpm = 0;
    q.model = &model;
    q.max_tokens = 600; /* 1000: fits openai only when it is empty */
    assert_int_equal(sb_limits_reserve(l, &q, &u, &e), SB_OK);
    sb_limits_cancel(l, &u, T0);
    q.model = &model2;
    q.max_tokens = 400;
    assert_int_equal(sb_limits_reserve(l, &q, &u, &e), SB_E_RATE_LIMITED); /* backup rpm 1 */
    sb_limits_settle(l, &t, 0, 0, T0);
    sb_limits_free(l);
}

static void test_cancel_gives_everything_back(void **state)
{
    reset();
    key.limits = (struct sb_client_limits){.rpm = 1, .tpm = 100};
    struct sb_limits *l = sb_limits_create();
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    struct sb_limits_req q = req(T0, 50, 50);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
        sb_limits_cancel(l, &t, T0);
        assert_false(t.held);
    }
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    sb_limits_settle(l, &t, 100, 0, T0);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    sb_limits_free(l);
}

/* ---- periods and spend from the store ---- */

static void test_periods(void **state)
{
    int64_t leap = 1709211600000LL; /* 2024-02-29T13:00:00Z */
    assert_int_equal(sb_limits_period_start(SB_BUDGET_DAY, leap), 1709164800000LL);
    assert_int_equal(sb_limits_period_start(SB_BUDGET_MONTH, leap), 1706745600000LL);
    assert_int_equal(sb_limits_period_end(SB_BUDGET_MONTH, leap), 1709251200000LL);
    int64_t dec = 1735689599999LL; /* 2024-12-31T23:59:59.999Z */
    assert_int_equal(sb_limits_period_end(SB_BUDGET_MONTH, dec), 1735689600000LL);
    assert_int_equal(sb_limits_period_end(SB_BUDGET_DAY, dec), 1735689600000LL);
    assert_int_equal(sb_limits_period_start(SB_BUDGET_MONTH, dec + 1), dec + 1);
    enum sb_budget_period p;
    assert_true(sb_limits_period_parse("month", &p) && p == SB_BUDGET_MONTH);
    assert_false(sb_limits_period_parse("week", &p));
}

static void usage_row(struct sb_usage *u, const char *id, int64_t ts, const char *key_id,
                      const char *user, double cost)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", id);
    u->ts_ms = ts;
    snprintf(u->key_id, sizeof(u->key_id), "%s", key_id);
    snprintf(u->user_id, sizeof(u->user_id), "%s", user);
    snprintf(u->status, sizeof(u->status), "ok");
    u->http_status = 200;
    u->cost_usd = cost;
}

static void test_spend_reloads_from_usage_rows(void **state)
{
    struct sb_store *s = NULL;
    struct sb_error e = {0};
    assert_int_equal(sb_store_open("sqlite::memory:", &s, &e), SB_OK);
    assert_int_equal(sb_store_migrate(s, &e), SB_OK);
    struct sb_usage u[5];
    usage_row(&u[0], "a", T0 - 1000, "12", "bob", 0.50);       /* today */
    usage_row(&u[1], "b", T0 - 2000, "12", "bob", 0.49);       /* today */
    usage_row(&u[2], "c", T0 - DAY, "12", "bob", 2.00);        /* yesterday, same month */
    usage_row(&u[3], "d", T0 - 15 * DAY, "12", "bob", 100.00); /* May: another month */
    usage_row(&u[4], "e", T0 - 500, "", "carol", 1.25);        /* admin token, user only */
    assert_int_equal(sb_store_insert_usage(s, u, 5, &e), SB_OK);
    struct sb_limits *l = sb_limits_create();
    size_t n = 0;
    assert_int_equal(sb_limits_load_spend(l, s, T0, &n, &e), SB_OK);
    assert_int_equal(n, 6); /* k:12, u:bob and u:carol, each for the day and the month */
    assert_true(sb_limits_spent(l, "k:12", SB_BUDGET_DAY, T0) == 0.99);
    assert_true(sb_limits_spent(l, "k:12", SB_BUDGET_MONTH, T0) == 2.99);
    assert_true(sb_limits_spent(l, "u:bob", SB_BUDGET_MONTH, T0) == 2.99);
    assert_true(sb_limits_spent(l, "u:carol", SB_BUDGET_DAY, T0) == 1.25);
    /* $0.99 of a $1.00 daily budget is gone: $0.02 is refused, $0.01 passes. */
    reset();
    key.limits = (struct sb_client_limits){.budget_usd = 1.00, .period = SB_BUDGET_DAY};
    model.input_per_mtok = 10;
    struct sb_limits_ticket t;
    struct sb_limits_req q = req(T0, 2000, 1);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    q.prompt_tokens = 1000;
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    sb_limits_free(l);
    sb_store_close(s);
}

/* What an admin stores reaches the snapshot the data plane reads. */
static void test_limits_reach_the_snapshot(void **state)
{
    static const char hash[] =
        "sha256:00000000000000000000000000000000000000000000000000000000000000aa";
    struct sb_store *s = NULL;
    struct sb_error e = {0};
    int64_t id = 0;
    assert_int_equal(sb_store_open("sqlite::memory:", &s, &e), SB_OK);
    assert_int_equal(sb_store_migrate(s, &e), SB_OK);
    struct sb_store_user u = {.username = "bob", .password_hash = "$argon2id$x", .role = "user"};
    struct sb_store_api_key k = {
        .name = "k", .key_hash = hash, .key_prefix = "sk-sb-AbCd", .user_id = "bob"};
    assert_int_equal(sb_store_user_create(s, &u, NULL, &e), SB_OK);
    assert_int_equal(sb_store_key_create(s, &k, &id, &e), SB_OK);
    struct sb_store_limits kl = {.rpm = 60, .budget_usd = 2.5, .budget_period = "day"};
    struct sb_store_limits ul = {.tpm = 9000, .budget_usd = 40, .budget_period = "month"};
    assert_int_equal(sb_store_key_limits_set(s, id, &kl, &e), SB_OK);
    assert_int_equal(sb_store_user_limits_set(s, "bob", &ul, &e), SB_OK);
    struct sb_registry *reg = NULL;
    assert_int_equal(sb_registry_load(s, NULL, &reg, &e), SB_OK);
    const struct sb_client_key *ck = sb_registry_find_key(reg, sb_slice_cstr(hash));
    assert_non_null(ck);
    assert_int_equal(ck->limits.rpm, 60);
    assert_int_equal(ck->limits.tpm, 0);
    assert_true(ck->limits.budget_usd == 2.5);
    assert_int_equal(ck->limits.period, SB_BUDGET_DAY);
    const struct sb_client_limits *bl = sb_registry_user_limits(reg, "bob");
    assert_non_null(bl);
    assert_int_equal(bl->tpm, 9000);
    assert_int_equal(bl->period, SB_BUDGET_MONTH);
    assert_null(sb_registry_user_limits(reg, "carol"));
    assert_null(sb_registry_user_limits(reg, NULL));
    sb_registry_release(reg);
    sb_store_close(s);
}

/* ---- many workers on overlapping scopes (run under TSan in CI) ---- */

enum { RACERS = 4, RACE_TRIES = 6000, P_RPM = 2500, P_TPM = 20000, K_RPM = 2000, U_RPM = 3000 };

/* rp0 runs out of requests, rp1 of tokens (20 reserved, 5 kept a request). */
static struct sb_provider race_p[2] = {{.id = "rp0", .rpm = P_RPM}, {.id = "rp1", .tpm = P_TPM}};
static struct sb_model race_m[2] = {{.id = "rm0", .provider = &race_p[0], .input_per_mtok = 1},
                                    {.id = "rm1", .provider = &race_p[1], .input_per_mtok = 1}};
static struct sb_provider free_p = {.id = "free"}; /* no limits: key or user alone */
static struct sb_model free_m = {.id = "fm", .provider = &free_p};
static struct sb_client_key race_k[RACERS];
static struct sb_client_limits race_u = {.rpm = U_RPM, .budget_usd = 1000, .period = SB_BUDGET_DAY};
static const char *const race_user[2] = {"a", "b"};

/* What one racer kept: admitted and settled (a cancel gives it all back). */
struct racer {
    struct sb_limits *l;
    pthread_barrier_t *go;
    int id;
    int kept[2]; /* per provider */
};

/* Racer i: its own key, a user shared with one other racer, and both
 * providers in turn (shared by all), so record sets overlap in every way;
 * a third of what it gets it cancels; now and then it creates a scope
 * (the index grows under the others' lock-free probes) and reads a shared
 * user's spend as the admin API does. The clock stands still: no refill,
 * so every count is exact. */
static void *racer(void *ud)
{
    struct racer *r = ud;
    pthread_barrier_wait(r->go);
    for (int i = 0; i < RACE_TRIES; i++) {
        struct sb_limits_req q = {.model = &race_m[i % 2],
                                  .key = &race_k[r->id],
                                  .user = race_user[r->id / 2],
                                  .user_limits = &race_u,
                                  .prompt_tokens = 10,
                                  .max_tokens = 10,
                                  .now_ms = T0};
        struct sb_limits_ticket t;
        struct sb_error e = {0};
        if (sb_limits_reserve(r->l, &q, &t, &e) == SB_OK) {
            if (i % 3 == 0) {
                sb_limits_cancel(r->l, &t, T0);
            } else {
                sb_limits_settle(r->l, &t, 5, 0.001, T0);
                r->kept[i % 2]++;
            }
        }
        if (i % 16 == 0) {
            char id[32];
            snprintf(id, sizeof(id), "u:new-%d-%d", r->id, i);
            sb_limits_seed_spend(r->l, id, SB_BUDGET_DAY, T0, 0.5);
            sb_limits_spent(r->l, "u:a", SB_BUDGET_DAY, T0);
        }
    }
    return NULL;
}

/* How many more single requests q admits (each kept). */
static int room(struct sb_limits *l, struct sb_limits_req q)
{
    int n = 0;
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    while (n < 100000 && sb_limits_reserve(l, &q, &t, &e) == SB_OK) {
        sb_limits_settle(l, &t, 0, 0, T0);
        n++;
    }
    return n;
}

static void test_many_workers_exact(void **state)
{
    static char key_ids[RACERS][8];
    struct sb_limits *l = sb_limits_create();
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    struct racer r[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        snprintf(key_ids[i], sizeof(key_ids[i]), "r%d", i);
        race_k[i] = (struct sb_client_key){.id = key_ids[i], .limits = {.rpm = K_RPM}};
        r[i] = (struct racer){.l = l, .go = &go, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    int kept_p[2] = {0, 0}, kept_u[2] = {0, 0};
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        kept_p[0] += r[i].kept[0];
        kept_p[1] += r[i].kept[1];
        kept_u[i / 2] += r[i].kept[0] + r[i].kept[1];
    }
    pthread_barrier_destroy(&go);
    /* What is left in each scope is its limit less what was kept, exactly:
     * no update lost, nothing left behind by a refusal elsewhere. */
    assert_true(kept_p[0] <= P_RPM);
    assert_int_equal(room(l, (struct sb_limits_req){.model = &race_m[0], .now_ms = T0}),
                     P_RPM - kept_p[0]);
    int64_t left = P_TPM - 5 * kept_p[1]; /* a cancel gave all 20 back */
    struct sb_limits_req q = {.model = &race_m[1], .max_tokens = left + 1, .now_ms = T0};
    struct sb_limits_ticket t;
    struct sb_error e = {0};
    assert_true(left >= 0);
    assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_E_RATE_LIMITED);
    q.max_tokens = left;
    if (left)
        assert_int_equal(sb_limits_reserve(l, &q, &t, &e), SB_OK);
    for (int i = 0; i < RACERS; i++) {
        int kept = r[i].kept[0] + r[i].kept[1];
        assert_true(kept <= K_RPM);
        assert_int_equal(
            room(l, (struct sb_limits_req){.model = &free_m, .key = &race_k[i], .now_ms = T0}),
            K_RPM - kept);
    }
    for (int u = 0; u < 2; u++) {
        double spent = sb_limits_spent(l, u ? "u:b" : "u:a", SB_BUDGET_DAY, T0);
        assert_int_equal(llround(spent * 1e6), kept_u[u] * 1000); /* $0.001 each, exactly */
        assert_true(kept_u[u] <= U_RPM);
        assert_int_equal(room(l, (struct sb_limits_req){.model = &free_m,
                                                        .user = race_user[u],
                                                        .user_limits = &race_u,
                                                        .now_ms = T0}),
                         U_RPM - kept_u[u]);
    }
    assert_true(sb_limits_spent(l, "u:new-3-5984", SB_BUDGET_DAY, T0) == 0.5);
    sb_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm_exact_under_threads),
        cmocka_unit_test(test_rpm_fractional_interval_no_drift),
        cmocka_unit_test(test_limit_change_keeps_what_was_used),
        cmocka_unit_test(test_tpm_reserve_refund_overshoot),
        cmocka_unit_test(test_tpm_default_output_and_too_large),
        cmocka_unit_test(test_budget_cut_off_at_the_exact_cent),
        cmocka_unit_test(test_budget_counts_requests_in_flight),
        cmocka_unit_test(test_refusal_reserves_nothing_anywhere),
        cmocka_unit_test(test_retarget_moves_the_provider_reservation),
        cmocka_unit_test(test_cancel_gives_everything_back),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_spend_reloads_from_usage_rows),
        cmocka_unit_test(test_limits_reach_the_snapshot),
        cmocka_unit_test(test_many_workers_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
