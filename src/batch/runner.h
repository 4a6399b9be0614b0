/* SPDX-License-Identifier: MIT */
/*
 * runner.h - the background runner of batch jobs (issue 7 part 10).
 *
 * One thread per process. It leases jobs in the store (store/batch.h), sends
 * their lines as ordinary HTTP requests to this process's own data plane on
 * a private loopback listener, and stores each answer as the line's result.
 * So every line goes through exactly what a client's request goes through:
 * the owner's authentication and scope, routes, failover, breakers, limits,
 * budgets, experiments, the cache, and one usage row attributed to the
 * owner. The runner authenticates with a random token it makes at start
 * (never stored, never logged); the private listener's gateway accepts that
 * token and nothing else, and maps it to the owner the runner names
 * (gateway/client_auth.c).
 *
 * Lifetime: create (makes the token) -> the caller starts the private
 * listener with the token's digest -> start(port: the thread opens its store
 * connection, off the start-up path, and retries a failed open every second)
 * -> ... -> stop (no new line; lines in flight may finish for shutdown_ms;
 * then leases are given back so a restart, or the process that took over,
 * resumes at once) -> free (joins the thread). A line in flight when the
 * process dies without stop is sent again by whoever resumes the job.
 */
#ifndef SB_BATCH_RUNNER_H
#define SB_BATCH_RUNNER_H

#include "core/err.h"

struct sb_batch_runner;

#define SB_BATCH_DEFAULT_CONCURRENCY 4 /* a job's lines in flight, unless it asks */
#define SB_BATCH_MAX_CONCURRENCY 64    /* the most a job may ask */
#define SB_BATCH_MAX_IN_FLIGHT 64      /* lines in flight in one process, all jobs together */
#define SB_BATCH_MAX_JOBS 16           /* jobs one process runs at once (others wait) */
#define SB_BATCH_LEASE_MS 20000        /* a dead process's jobs resume after this */

struct sb_batch_runner_opts {
    const char *db_url;   /* the runner's thread opens its own store connection (copied) */
    unsigned shutdown_ms; /* how long lines in flight may finish at stop */
};

/* Returns owned *out (free with sb_batch_runner_free); the thread is not running yet. */
sb_err sb_batch_runner_create(const struct sb_batch_runner_opts *o, struct sb_batch_runner **out,
                              struct sb_error *err);
/* SHA-256 of the runner's token: what the private listener's gateway accepts. */
void sb_batch_runner_token_digest(const struct sb_batch_runner *r, unsigned char out[32]);
/* Starts the thread; lines go to http://127.0.0.1:port. */
sb_err sb_batch_runner_start(struct sb_batch_runner *r, int port, struct sb_error *err);
/* A job was created or cancelled: look now, not at the next tick. Any thread; NULL is a no-op. */
void sb_batch_runner_wake(struct sb_batch_runner *r);
/* Asks the thread to stop (see above) and returns at once. NULL is a no-op. */
void sb_batch_runner_stop(struct sb_batch_runner *r);
/* Stops if needed, waits for the thread, frees. Accepts NULL. */
void sb_batch_runner_free(struct sb_batch_runner *r);

#endif
