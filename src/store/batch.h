/* SPDX-License-Identifier: MIT */
/*
 * batch.h - batch jobs in the store (issue 7 part 10): the job rows, one row
 * per input line with its result, and the lease a runner holds on a job.
 *
 * A job is written whole at creation (sb_store_batch_create: the job and
 * every line in one transaction), so a job either exists with all its lines
 * or not at all. A line is pending while its result is NULL; a runner
 * records results (sb_store_batch_record) and the job's counters in one
 * transaction, so a restart resumes at the first line without a result and
 * never repeats one that has one. A runner works only on jobs it leased
 * (runner id + lease_until, renewed while it runs, released when it stops),
 * so two processes on one database never run the same job.
 *
 * Same plug point as the rest of the store: store.h's ops->batch, with the
 * sb_store_batch_* wrappers below forwarding to it (batch.c). Results in the
 * caller's arena. Errors: SB_E_NOT_FOUND for an unknown job, SB_E_CONFLICT
 * for a state change the job's status does not allow, SB_E_STORE otherwise.
 */
#ifndef SB_STORE_BATCH_H
#define SB_STORE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

struct sb_store;

#define SB_STORE_BATCH_ID_MAX 40 /* "batch_" + 24 hex, with room */

/* One job. Strings are NUL-terminated; counters are lines. */
struct sb_store_batch {
    const char *id;         /* "batch_<24 hex>" */
    const char *created_by; /* the /api actor: a username, or "admin-token" */
    const char *run_as;     /* whose requests the lines are: "admin" | "user" | "key" */
    const char *user_id;    /* run_as user: the username; else NULL */
    int64_t key_id;         /* run_as key: the virtual key's row id; else 0 */
    const char *endpoint;   /* the job's default: "/v1/chat/completions" | "/v1/embeddings" */
    const char *model;      /* replaces every line's model; NULL = each line's own */
    int64_t concurrency;    /* lines in flight at most */
    const char *status;     /* queued | in_progress | completed | failed | cancelling | cancelled */
    int64_t total;          /* lines */
    int64_t completed;      /* lines answered 2xx */
    int64_t failed;         /* lines with an error or a non-2xx answer */
    int64_t in_flight;      /* lines sent and not yet answered (as the runner last wrote) */
    const char *error;      /* why a job failed; NULL */
    const char *metadata;   /* JSON object text given at creation, or NULL */
    int64_t created_at;     /* Unix ms */
    int64_t started_at;     /* first claimed by a runner; 0 = not yet */
    int64_t finished_at;    /* completed, failed or cancelled; 0 = not yet */
    int64_t cancelled_at;   /* cancel asked; 0 = never */
};

/* One input line. At creation: result set = already done (a line refused by
 * validation, with failed = true). */
struct sb_store_batch_line {
    int64_t line;          /* 1-based index among the job's requests */
    const char *custom_id; /* the client's id, or NULL */
    const char *endpoint;  /* where it goes: "/v1/chat/completions" | "/v1/embeddings" */
    const char *body;      /* the request body to send; NULL when refused */
    const char *result;    /* the output line (JSON, no newline); NULL = pending */
    bool failed;           /* the result is an error */
};

struct sb_store_batch_ops {
    sb_err (*create)(struct sb_store *s, const struct sb_store_batch *b,
                     const struct sb_store_batch_line *lines, size_t n, struct sb_error *err);
    sb_err (*get)(struct sb_store *s, const char *id, struct sb_arena *a,
                  struct sb_store_batch *out, struct sb_error *err);
    sb_err (*list)(struct sb_store *s, const char *created_by, int64_t limit, int64_t offset,
                   struct sb_arena *a, struct sb_store_batch **out, size_t *n, int64_t *total,
                   struct sb_error *err);
    sb_err (*cancel)(struct sb_store *s, const char *id, int64_t now, struct sb_error *err);
    sb_err (*remove)(struct sb_store *s, const char *id, struct sb_error *err);
    sb_err (*results)(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                      struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                      struct sb_error *err);
    sb_err (*claim)(struct sb_store *s, const char *runner, int64_t now, int64_t lease_ms,
                    size_t max, struct sb_arena *a, struct sb_store_batch **out, size_t *n,
                    struct sb_error *err);
    sb_err (*pending)(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                      struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                      struct sb_error *err);
    sb_err (*record)(struct sb_store *s, const char *id, const char *runner,
                     const struct sb_store_batch_line *lines, size_t n, int64_t in_flight,
                     struct sb_error *err);
    sb_err (*finish)(struct sb_store *s, const char *id, const char *runner, const char *status,
                     const char *error, int64_t now, struct sb_error *err);
    sb_err (*release)(struct sb_store *s, const char *runner, struct sb_error *err);
};

/* Creates job b (id, created_by, run_as, user_id, key_id, endpoint, model,
 * concurrency, metadata, created_at; status queued) with lines[0..n), in one
 * transaction; the counters come from the lines given with a result.
 * SB_E_CONFLICT on a duplicate id. Borrows everything. */
sb_err sb_store_batch_create(struct sb_store *s, const struct sb_store_batch *b,
                             const struct sb_store_batch_line *lines, size_t n,
                             struct sb_error *err);
sb_err sb_store_batch_get(struct sb_store *s, const char *id, struct sb_arena *a,
                          struct sb_store_batch *out, struct sb_error *err);
/* Newest first; created_by NULL lists everyone's. *total counts all matches. */
sb_err sb_store_batch_list(struct sb_store *s, const char *created_by, int64_t limit,
                           int64_t offset, struct sb_arena *a, struct sb_store_batch **out,
                           size_t *n, int64_t *total, struct sb_error *err);
/* queued | in_progress -> cancelling (cancelled_at = now); a job already
 * cancelling or cancelled is SB_OK; a finished one SB_E_CONFLICT. */
sb_err sb_store_batch_cancel(struct sb_store *s, const char *id, int64_t now,
                             struct sb_error *err);
/* Deletes a finished job (completed, failed, cancelled) and its lines;
 * SB_E_CONFLICT while it may still run. */
sb_err sb_store_batch_delete(struct sb_store *s, const char *id, struct sb_error *err);
/* Up to limit lines with a result and line > after, in line order (body not read). */
sb_err sb_store_batch_results(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                              struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                              struct sb_error *err);

/* ---- the runner's side ---- */

/* Leases for runner, until now + lease_ms, every job that may run
 * (queued, in_progress, cancelling) and is free (no runner, or a lease that
 * ran out) or already runner's, up to max jobs; queued ones become
 * in_progress (started_at set once). *out gets every job runner now holds. */
sb_err sb_store_batch_claim(struct sb_store *s, const char *runner, int64_t now, int64_t lease_ms,
                            size_t max, struct sb_arena *a, struct sb_store_batch **out, size_t *n,
                            struct sb_error *err);
/* Up to limit pending lines (no result) with line > after, in line order, bodies included. */
sb_err sb_store_batch_pending(struct sb_store *s, const char *id, int64_t after, int64_t limit,
                              struct sb_arena *a, struct sb_store_batch_line **out, size_t *n,
                              struct sb_error *err);
/* Stores the results of lines[0..n) (line, result, failed) and adds them to
 * the job's counters, with in_flight, in one transaction; a line that
 * already has a result keeps it and is not counted again. SB_E_CONFLICT when
 * runner no longer holds the job. */
sb_err sb_store_batch_record(struct sb_store *s, const char *id, const char *runner,
                             const struct sb_store_batch_line *lines, size_t n, int64_t in_flight,
                             struct sb_error *err);
/* Ends a job runner holds: status completed | failed | cancelled, error
 * (may be NULL), finished_at = now, lease released. */
sb_err sb_store_batch_finish(struct sb_store *s, const char *id, const char *runner,
                             const char *status, const char *error, int64_t now,
                             struct sb_error *err);
/* Gives back every lease runner holds (in_flight 0): a stopping process. */
sb_err sb_store_batch_release(struct sb_store *s, const char *runner, struct sb_error *err);

/* ---- inside the store layer ---- */

extern const struct sb_store_batch_ops sb__sqlite_batch_ops;

#endif
