/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the control plane's files share (src/api/ only).
 *
 * A handler gets a struct sb_api_call: the request as copied off the worker
 * loop, its path parameters, the parsed body, the authenticated actor, and
 * a JSON writer for the answer. It runs on a thread-pool thread holding the
 * api mutex, so it may use c->api->store freely (a route flagged
 * SB_API_UNLOCKED runs without it). It returns SB_OK (the
 * answer is in c->out, status c->status or 200) or an error in c->err,
 * which the dispatcher turns into the /api error shape. A handler that
 * changed the registry sets c->changed: the dispatcher then rebuilds and
 * publishes the snapshot before answering.
 */
#ifndef SB_API_INTERNAL_H
#define SB_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "api/api.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/slice.h"
#include "store/identity.h"
#include "store/store.h"

struct sb_keyring;
struct sb_sessions;
struct sb__api_limiter;

/* Roles as bits, so a route lists who may call it. */
enum sb_role {
    SB_ROLE_USER = 1u << 0,
    SB_ROLE_DEVELOPER = 1u << 1,
    SB_ROLE_ADMIN = 1u << 2,
};
#define SB_ROLES_ALL (SB_ROLE_USER | SB_ROLE_DEVELOPER | SB_ROLE_ADMIN)
#define SB_ROLES_STAFF (SB_ROLE_DEVELOPER | SB_ROLE_ADMIN)
#define SB_ROLE_PUBLIC 0u /* no credential needed (login) */

/* ---- ratelimit.c: per-actor fixed windows and a cap on concurrent runs (connection tests) ---- */

#define SB_API_RATE_SLOTS 64 /* actors remembered; the oldest window is evicted past that */

struct sb__api_rate {
    pthread_mutex_t lock;
    unsigned limit;       /* runs per window per actor */
    int64_t window_ms;    /* window length */
    unsigned running;     /* runs in progress, all actors */
    unsigned max_running; /* cap on running: tests block pool threads */
    struct {
        char name[72];    /* actor name, "" = free */
        int64_t start_ms; /* window start */
        unsigned n;       /* runs in this window */
    } slot[SB_API_RATE_SLOTS];
};

void sb__api_rate_init(struct sb__api_rate *r, unsigned limit, int64_t window_ms,
                       unsigned max_running);
void sb__api_rate_destroy(struct sb__api_rate *r);
/* SB_OK: a run is counted for name and started (end it with sb__api_rate_done). Else
 * SB_E_RATE_LIMITED with *retry_after_s (>= 1): name used its window, or too many run. */
sb_err sb__api_rate_take(struct sb__api_rate *r, const char *name, int64_t now_ms,
                         int64_t *retry_after_s);
void sb__api_rate_done(struct sb__api_rate *r);

struct sb_api {
    pthread_mutex_t lock;         /* one handler (or the poller) at a time */
    struct sb_store *store;       /* the control plane's own connection */
    struct sb_keyring *keyring;   /* borrowed: encrypts credentials, rotates (admin.c) */
    struct sb_sessions *sessions; /* borrowed, may be NULL: the data plane's session mirror */
    struct sb__api_limiter *login_limit; /* owned: failed logins per user and client */
    struct sb_admin_hash admin;
    bool has_admin;
    struct sb_usage_writer *writer;
    bool allow_private;          /* an admin allowed internal base URLs for everyone (config) */
    int64_t version;             /* registry_version the published snapshot was built at */
    int64_t loaded_at_ms;        /* when it was published */
    _Atomic int64_t store_ok_ms; /* when the poller last read the store, 0 = it failed */
    unsigned poll_ms;
    pthread_t poller;
    bool poller_started;
    pthread_mutex_t stop_lock; /* guards stop, with stop_cond */
    pthread_cond_t stop_cond;
    bool stop;
    struct sb__api_rate tests; /* connection tests: 10 a minute per actor, 2 at a time */
    struct sb_batch_runner *batches; /* appended (batch jobs): woken on create and cancel */
    struct sb_router *router;        /* appended (key pools): borrowed, may be NULL */
};

struct sb_api_actor {
    char name[72];    /* username, or "admin-token" */
    unsigned role;    /* one SB_ROLE_* bit */
    bool via_session; /* cookie-authenticated: writes need the CSRF token */
};

#define SB_API_MAX_PARAMS 3
#define SB_API_MAX_EXTRA 3

struct sb_api_call {
    struct sb_api *api;
    struct sb_arena *arena;             /* the job's; lives until the answer is written */
    struct sb_slice method;             /* copied */
    struct sb_slice path;               /* copied */
    struct sb_slice query;              /* copied, undecoded */
    struct sb_slice body;               /* copied */
    struct sb_slice auth, cookie, csrf; /* the headers auth needs, copied */
    const char *request_id;
    const char *ip;          /* the client's address ("" when unknown), for limits and audit */
    struct sb_slice session; /* the session cookie's value when the caller came by session */
    struct sb_slice param[SB_API_MAX_PARAMS]; /* path parameters, in pattern order */
    size_t nparam;
    const struct sb_json *json; /* the parsed body; NULL when there is none */
    struct sb_api_actor actor;
    /* the answer */
    int status;             /* 0 = 200 */
    struct sb_buf out;      /* JSON body */
    struct sb_jw jw;        /* writes into out */
    struct sb_error err;    /* when the handler failed */
    const char *suggest[3]; /* the error's "suggestions" */
    size_t nsuggest;
    struct sb_http_header extra[SB_API_MAX_EXTRA]; /* set-cookie and such; arena */
    size_t nextra;
    bool changed;             /* the registry changed: rebuild and publish before answering */
    const char *content_type; /* of out when the handler succeeds; NULL = application/json
                                 (GET /api/usage?format=csv answers text/csv) */
    struct sb_slice body_type; /* appended (batch jobs): the request's content-type, copied */
};

typedef sb_err (*sb_api_fn)(struct sb_api_call *c);

struct sb_api_route {
    const char *method;  /* "GET" (also answers HEAD) */
    const char *pattern; /* "/api/models/{id}": {x} matches one non-empty segment */
    unsigned roles;      /* who may call it: SB_ROLE_* bits, or SB_ROLE_PUBLIC */
    sb_api_fn fn;
};

/* A flag in a route's roles column, not a role: the handler runs without the api mutex
 * (auth and the body are done under it), for handlers that wait on the network
 * (connection tests). Such a handler takes c->api->lock itself around every store use
 * and never sets c->changed. A bit rather than a fifth member, so that every other row
 * keeps its four initializers (-Wmissing-field-initializers). */
#define SB_API_UNLOCKED (1u << 8)
/* Another flag of the same kind: the dispatcher does not parse the body (c->json stays
 * NULL); the handler reads c->body itself, under its own bounds (a batch job's JSONL,
 * larger than the 1 MiB of a configuration body). */
#define SB_API_RAW_BODY (1u << 9)

/* ---- table.c ---- */

extern const struct sb_api_route sb__api_routes[];
extern const size_t sb__api_nroutes;
/* Matches path against pattern, filling params (decoded? no: raw segments). */
bool sb__api_match(const char *pattern, struct sb_slice path, struct sb_slice *param,
                   size_t *nparam);

/* Non-admins' base URLs must resolve to public addresses (SSRF), unless the
 * config allows internal ones (allow_private_base_urls). */
bool sb__api_refuse_private(const struct sb_api_call *c);

/* ---- reply.c: answers and inputs ---- */

/* An error with the field at fault (may be NULL); returns code. */
sb_err sb__api_fail(struct sb_api_call *c, sb_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The value of query parameter name, percent-decoded into the arena; NULL when absent. */
const char *sb__api_query(struct sb_api_call *c, const char *name);
/* limit (1..500, default 50) and offset (>= 0) from the query; fails with a clear message. */
sb_err sb__api_paging(struct sb_api_call *c, int64_t *limit, int64_t *offset);
/* A true|false query parameter as a list filter (absent = any). */
sb_err sb__api_query_tri(struct sb_api_call *c, const char *name, enum sb_store_tri *out);
/* Path parameter i as an arena string (percent-decoded). */
const char *sb__api_param(struct sb_api_call *c, size_t i);
/* A required body member of a JSON type, or a field error. */
sb_err sb__api_body_str(struct sb_api_call *c, const char *key, bool required, const char **out);
/* obj (a JSON object) with members (JSON text "\"k\":v,...", trusted) put first, parsed
 * again into c's arena: how a path parameter joins a body checked by the config walker. */
sb_err sb__api_json_with(struct sb_api_call *c, const struct sb_json *obj, const char *members,
                         const struct sb_json **out);
/* Writes the list envelope's head: {"data":[ ... ; end with sb__api_list_end. */
void sb__api_list_begin(struct sb_api_call *c);
void sb__api_list_end(struct sb_api_call *c, int64_t total, int64_t limit, int64_t offset);
/* "admin" | "developer" | "user" */
const char *sb__api_role_name(unsigned role);
/* Unix ms now. */
int64_t sb__api_now_ms(void);
/* ISO-8601 UTC of ms into out (25 bytes). */
void sb__api_iso(int64_t ms, char out[32]);
/* Writes "key": ISO time, or null when ms <= 0. */
void sb__api_time(struct sb_jw *j, const char *key, int64_t ms);

/* Writes the /api error shape of c->err (and c->suggest) into c->out, replacing it. */
void sb__api_error_json(struct sb_api_call *c);

/* ---- session.c: console sessions ---- */

/* Fills c->actor (and c->session) from a valid session cookie; false when
 * there is none, or it expired (absolute or idle) or its user is disabled. */
bool sb__api_session_auth(struct sb_api_call *c);
/* The x-csrf-token header matches the session's derived token. */
bool sb__api_csrf_ok(const struct sb_api_call *c);
/* The role bit of "admin" | "developer" | "user"; 0 for anything else. */
unsigned sb__api_role_bit(const char *name);
/* Ends every session of username, in the store and the data plane's mirror. */
sb_err sb__api_kill_sessions(struct sb_api_call *c, const char *username);
/* Copies the live sessions of the store into a->sessions (at start). */
sb_err sb__api_sessions_load(struct sb_api *a, struct sb_error *err);
sb_err sb__api_login(struct sb_api_call *c);
sb_err sb__api_logout(struct sb_api_call *c);

/* ---- users.c ---- */

/* Refuses a body that is not an object or has a member not in keys (NULL-terminated). */
sb_err sb__api_body_only(struct sb_api_call *c, const char *const *keys);

/* ---- limiter.c: the login attempt limit (pure; tested in limiter_test.c) ---- */

#define SB_LOGIN_WINDOW_MS (15 * 60 * 1000)
#define SB_LOGIN_MAX_PER_USER 5    /* failures per user per window */
#define SB_LOGIN_MAX_PER_CLIENT 30 /* per client address: several people behind one NAT */
#define SB_LIMITER_SLOTS 4096      /* keys tracked at once; the oldest window is evicted */

/* Returns owned (free with sb__api_limiter_free). Not thread-safe: the api mutex guards it. */
struct sb__api_limiter *sb__api_limiter_create(void);
void sb__api_limiter_free(struct sb__api_limiter *l); /* accepts NULL */
/* true when key has max failures inside the window at now; *retry_s gets the
 * seconds until the window ends (at least 1). Borrows key. */
bool sb__api_limiter_blocked(struct sb__api_limiter *l, const char *key, int max, int64_t now,
                             int64_t *retry_s);
/* Counts one failure of key at now (a window starts at its first failure). */
void sb__api_limiter_fail(struct sb__api_limiter *l, const char *key, int64_t now);
/* Forgets key (a successful login). */
void sb__api_limiter_reset(struct sb__api_limiter *l, const char *key);

/* ---- when.c: times given by clients (pure; tested in when_test.c, fuzzed) ---- */

/* ISO-8601 ("2030-01-31", "2030-01-31T12:00:00Z", "...T12:00:00.250+02:00")
 * or Unix ms digits into *ms. SB_E_BAD_REQUEST with a message naming what
 * was expected otherwise. Borrows s. */
sb_err sb__api_parse_time(struct sb_slice s, int64_t *ms, struct sb_error *err);
/* A body member that is a time: a string (above), a number of Unix ms, or
 * null/absent (*ms = 0). Field errors name key. */
sb_err sb__api_body_time(struct sb_api_call *c, const char *key, int64_t *ms);

/* ---- api.c ---- */

/* Rebuilds the snapshot from the store and publishes it (holding a->lock). */
sb_err sb__api_reload(struct sb_api *a, struct sb_error *err);

/* ---- audit.c ---- */

/* Records one audit row (secrets removed by the caller) through the batched
 * writer: actor, role, client address and request id come from c; outcome
 * is ok | denied | failed. Borrows everything. */
void sb__api_audit(struct sb_api_call *c, const char *action, const char *target_type,
                   const char *target_id, struct sb_slice before, struct sb_slice after,
                   const char *outcome);
sb_err sb__api_audit_list(struct sb_api_call *c);

/* ---- entity_json.c: registry rows as /api JSON (never a secret) ---- */

void sb__api_write_provider(struct sb_jw *j, const struct sb_store_provider *p);
void sb__api_write_model(struct sb_jw *j, const struct sb_store_model *m);
void sb__api_write_route(struct sb_jw *j, const struct sb_store_route *r);
/* ---- routes.c: each of ts[0..n) is a model id or provider/model the store
 * knows, else 400 naming field (a route's targets, a model's fallbacks). */
sb_err sb__api_check_targets(struct sb_api_call *c, const char *field, const char *const *ts,
                             size_t n);
void sb__api_write_caps(struct sb_jw *j, const struct sb_store_caps *c);
/* The same as documents in c's arena, for audit before/after; NULL gives an empty slice. */
struct sb_slice sb__api_doc_provider(struct sb_api_call *c, const struct sb_store_provider *p);
struct sb_slice sb__api_doc_model(struct sb_api_call *c, const struct sb_store_model *m);
struct sb_slice sb__api_doc_route(struct sb_api_call *c, const struct sb_store_route *r);

/* ---- creds.c ---- */

/* A warning (arena) when key does not look like the provider's format, else NULL. */
const char *sb__api_key_format_warning(struct sb_api_call *c, const char *type,
                                       const char *base_url, const char *key);
/* Encrypts key for (provider, user NULL = system) and stores it; masked gets its display form. */
sb_err sb__api_put_credential(struct sb_api_call *c, const char *provider, const char *user,
                              const char *key, char masked[32]);
/* The same for a member of provider's key pool (label NULL = the primary key; weight 0 = 1). */
sb_err sb__api_put_pool_key(struct sb_api_call *c, const char *provider, const char *user,
                            const char *label, int64_t weight, const char *key, char masked[32]);

/* ---- endpoints (one file per subject) ---- */

/* {"enabled": bool} sets *on; no body flips current. */
sb_err sb__api_toggle_value(struct sb_api_call *c, bool current, bool *on);

sb_err sb__api_providers_list(struct sb_api_call *c);
sb_err sb__api_provider_get(struct sb_api_call *c);
sb_err sb__api_provider_create(struct sb_api_call *c);
sb_err sb__api_provider_update(struct sb_api_call *c);
sb_err sb__api_provider_delete(struct sb_api_call *c);
sb_err sb__api_provider_toggle(struct sb_api_call *c);
sb_err sb__api_provider_credentials(struct sb_api_call *c);
/* key_pool.c: a provider's key pool (issue 7) */
sb_err sb__api_key_pool_list(struct sb_api_call *c);
sb_err sb__api_key_pool_add(struct sb_api_call *c);
sb_err sb__api_key_pool_update(struct sb_api_call *c);
sb_err sb__api_key_pool_delete(struct sb_api_call *c);
sb_err sb__api_key_pool_revive(struct sb_api_call *c);
sb_err sb__api_provider_models(struct sb_api_call *c);
sb_err sb__api_provider_model_create(struct sb_api_call *c);
sb_err sb__api_provider_capabilities(struct sb_api_call *c);
sb_err sb__api_providers_stats(struct sb_api_call *c);
sb_err sb__api_models_list(struct sb_api_call *c);
sb_err sb__api_model_get(struct sb_api_call *c);
sb_err sb__api_model_create(struct sb_api_call *c);
sb_err sb__api_model_update(struct sb_api_call *c);
sb_err sb__api_model_delete(struct sb_api_call *c);
sb_err sb__api_model_toggle(struct sb_api_call *c);
sb_err sb__api_model_priority(struct sb_api_call *c);
sb_err sb__api_models_reorder(struct sb_api_call *c);
sb_err sb__api_model_champion(struct sb_api_call *c);
sb_err sb__api_model_default(struct sb_api_call *c);
sb_err sb__api_templates_list(struct sb_api_call *c);
sb_err sb__api_template_get(struct sb_api_call *c);
sb_err sb__api_template_create(struct sb_api_call *c);
sb_err sb__api_template_update(struct sb_api_call *c);
sb_err sb__api_template_delete(struct sb_api_call *c);
sb_err sb__api_template_apply(struct sb_api_call *c);
sb_err sb__api_routes_list(struct sb_api_call *c);
sb_err sb__api_route_get(struct sb_api_call *c);
sb_err sb__api_route_create(struct sb_api_call *c);
sb_err sb__api_route_update(struct sb_api_call *c);
sb_err sb__api_route_delete(struct sb_api_call *c);

/* conntest.c (routes with unlocked set) */
sb_err sb__api_provider_test(struct sb_api_call *c);
sb_err sb__api_model_test(struct sb_api_call *c);
sb_err sb__api_provider_test_unsaved(struct sb_api_call *c);

/* ---- usage_query.c, usage.c: GET /api/usage ---- */

/* The query string of c as a store query, with c's own-rows rule applied
 * (non-admins see their own usage only); *csv when format=csv. Strings in
 * *q live in c's arena. Fails with a 400 (403 for another user's rows). */
sb_err sb__api_usage_query(struct sb_api_call *c, struct sb_store_usage_query *q, bool *csv);
/* group_by's word for by ("none" ... "day"). */
const char *sb__api_usage_by_name(enum sb_store_usage_by by);
sb_err sb__api_usage(struct sb_api_call *c);

/* ---- experiments.c, experiment_results.c, feedback.c: A/B experiments (issue 7 part 3) ---- */

sb_err sb__api_experiments_list(struct sb_api_call *c);
sb_err sb__api_experiment_get(struct sb_api_call *c);
sb_err sb__api_experiment_create(struct sb_api_call *c);
sb_err sb__api_experiment_update(struct sb_api_call *c);
sb_err sb__api_experiment_delete(struct sb_api_call *c);
sb_err sb__api_experiment_results(struct sb_api_call *c);
sb_err sb__api_feedback(struct sb_api_call *c);
/* An experiment as /api JSON (the body's shape plus created_at, updated_at). */
void sb__api_write_experiment(struct sb_jw *j, const struct sb_store_experiment *x);

/* ---- experiment_stats.c: 95% intervals for results (pure; experiment_stats_test.c) ---- */

struct sb__ci {
    double value;  /* the estimate (NaN when there is none) */
    double lo, hi; /* the interval; NaN when ok is false */
    bool ok;       /* an interval exists (enough data) */
};
/* t(0.975) with df degrees of freedom (>= 1; NaN below). */
double sb__stats_t975(double df);
/* The error rate k/n with its Wilson score interval; !ok when n is 0. */
struct sb__ci sb__stats_wilson(int64_t k, int64_t n);
/* k2/n2 - k1/n1 with Newcombe's hybrid score interval; !ok when either n is 0. */
struct sb__ci sb__stats_prop_diff(int64_t k1, int64_t n1, int64_t k2, int64_t n2);
/* The mean of n values from their sum and sum of squares, with a Student t interval
 * (value set from n = 1, interval from n = 2). */
struct sb__ci sb__stats_mean(int64_t n, double sum, double sumsq);
/* mean2 - mean1 with Welch's interval (value when both n > 0, interval when both >= 2). */
struct sb__ci sb__stats_mean_diff(int64_t n1, double sum1, double sumsq1, int64_t n2, double sum2,
                                  double sumsq2);

sb_err sb__api_registry_status(struct sb_api_call *c);
sb_err sb__api_registry_refresh(struct sb_api_call *c);
sb_err sb__api_me(struct sb_api_call *c);
sb_err sb__api_users_list(struct sb_api_call *c);
sb_err sb__api_user_get(struct sb_api_call *c);
sb_err sb__api_user_create(struct sb_api_call *c);
sb_err sb__api_user_update(struct sb_api_call *c);
sb_err sb__api_user_delete(struct sb_api_call *c);
sb_err sb__api_keys_list(struct sb_api_call *c);
sb_err sb__api_key_get(struct sb_api_call *c);
sb_err sb__api_key_create(struct sb_api_call *c);
sb_err sb__api_key_delete(struct sb_api_call *c);
sb_err sb__api_key_revoke(struct sb_api_call *c);
/* Appended (issue 7): PUT /api/keys/{id} sets a key's limits (admin). */
sb_err sb__api_key_update(struct sb_api_call *c);

/* ---- quota.c: limits and spend of keys and users (issue 7 parts 4-5) ---- */

struct sb_store_limits;
enum sb_store_spend_by;
/* Reads body members rpm, tpm, budget_usd, budget_period over *l (absent:
 * keep, null: none); *any when one was given. 403 for a non-admin who gives
 * one, 400 with the field for a bad value. Strings in c->arena. */
sb_err sb__api_limits_parse(struct sb_api_call *c, struct sb_store_limits *l, bool *any);
/* Writes members "limits" and "spend" (id's spend in the budget's period, or
 * the month) into the object open in c->jw. */
sb_err sb__api_limits_members(struct sb_api_call *c, enum sb_store_spend_by by, const char *id,
                              const struct sb_store_limits *l);
/* The same after the object was closed: re-opens it (the last byte of c->out). */
sb_err sb__api_limits_append(struct sb_api_call *c, enum sb_store_spend_by by, const char *id,
                             const struct sb_store_limits *l);
/* l as JSON in c->arena, for audit documents. */
struct sb_slice sb__api_limits_doc(struct sb_api_call *c, const struct sb_store_limits *l);
sb_err sb__api_me_credentials_list(struct sb_api_call *c);
sb_err sb__api_me_credential_put(struct sb_api_call *c);
sb_err sb__api_me_credential_delete(struct sb_api_call *c);
sb_err sb__api_rotate_key(struct sb_api_call *c);

/* ---- batches.c: batch jobs (issue 7 part 10) ---- */

sb_err sb__api_batches_list(struct sb_api_call *c);
sb_err sb__api_batch_create(struct sb_api_call *c);
sb_err sb__api_batch_get(struct sb_api_call *c);
sb_err sb__api_batch_results(struct sb_api_call *c);
sb_err sb__api_batch_cancel(struct sb_api_call *c);
sb_err sb__api_batch_delete(struct sb_api_call *c);

#endif
