/* SPDX-License-Identifier: MIT */
/*
 * api.h - the control plane: the /api REST endpoints (DESIGN.md §4).
 *
 * Handlers never run on a data-plane loop: a worker hands each /api request
 * to libuv's thread pool (uv_queue_work) with a copy of everything the
 * handler reads, and answers on its own loop when the work is done. The
 * control plane has its own store connection, used under one mutex (admin
 * traffic is light; one writer keeps SQLite simple), so data-plane workers
 * never wait on the database. A change builds a new registry snapshot from
 * the store and publishes it before the answer leaves, so the next request
 * sees it; a poller notices other processes' changes through the store's
 * registry_version.
 */
#ifndef SB_API_API_H
#define SB_API_API_H

#include <stdbool.h>
#include <uv.h>

#include "core/err.h"
#include "crypto/keys.h"
#include <stddef.h>
#include <stdint.h>
#include "net/http.h"

struct sb_api;
struct sb_usage_writer;
struct sb_sessions;
struct sb_store;

struct sb_batch_runner;
struct sb_router;

struct sb_api_opts {
    const char *db_url;                /* the control plane opens its own connection */
    struct sb_keyring *keyring;        /* borrowed, outlives the api; a pending rotation is
                                          finished by sb_api_create */
    struct sb_sessions *sessions;      /* borrowed, may be NULL: the data plane's session mirror,
                                          filled from the store at create, kept in sync after */
    const struct sb_admin_hash *admin; /* the admin token's hash; NULL = none */
    struct sb_usage_writer *writer;    /* audit rows; borrowed, may be NULL in tests */
    unsigned poll_ms;                  /* registry_version poll period; 0 = 1000 */
    bool allow_private_base_urls;      /* the config's choice: non-admins may name internal hosts */
    struct sb_batch_runner *batches;   /* appended: woken when a batch job is created or
                                          cancelled; borrowed, may be NULL */
    struct sb_router *router;          /* appended (key pools): dead keys to store, holds to
                                          release; borrowed, may be NULL */
    struct sb_store *store;            /* appended: an open connection to db_url to use instead
                                          of opening one (serve's start-up connection, already
                                          migrated); ownership taken even on failure; may be NULL */
};

/* Opens the store, loads and publishes the first snapshot, starts the
 * poller. Returns owned *out (free with sb_api_free). */
sb_err sb_api_create(const struct sb_api_opts *o, struct sb_api **out, struct sb_error *err);
/* Stops the poller and closes the store; accepts NULL. No request may be in flight. */
void sb_api_free(struct sb_api *a);

/* Answers one /api request (now or later on loop, which must be req's loop). */
void sb_api_handle(struct sb_api *a, struct sb_http_req *req, uv_loop_t *loop);

/* The poller's last look at the store succeeded recently (for /ready; never blocks). */
bool sb_api_store_ok(struct sb_api *a);

/* The /api error shape for an error the HTTP layer raised (sb_http_error_fn). */
void sb_api_error_body(struct sb_buf *out, const char *code, const char *msg,
                       const char *request_id);

/* ---- operations the command line shares with the endpoints ---- */

/*
 * Rotates the master key (DESIGN.md §2, keys.h "keyring and rotation"):
 * begin (or resume) the rotation, re-encrypt every stored credential in one
 * store transaction, finish. A failure between steps leaves every
 * credential decryptable with the keys the keyring then loads; running it
 * again resumes. *n gets the rows re-encrypted, key_id the new key's id.
 * Borrows s and kr (one thread at a time).
 */
sb_err sb_api_rotate(struct sb_store *s, struct sb_keyring *kr, size_t *n, char key_id[17],
                     struct sb_error *err);

/* A new user: username and role checked by the store's rules, the password
 * by password.h's and hashed with argon2id. Borrows everything. */
sb_err sb_api_user_add(struct sb_store *s, const char *username, const char *password,
                       const char *role, struct sb_error *err);

/* A new virtual key's inputs. */
struct sb_api_key_new {
    const char *name;          /* 1..128 bytes */
    const char *owner;         /* username, NULL = nobody (made with the admin token) */
    const char *const *models; /* model or route ids the key may use; none = all visible */
    size_t nmodels;
    int64_t expires_at; /* Unix ms, 0 = never; must be in the future */
};

/*
 * Creates a virtual key: checks the owner exists and is active, every
 * model/route exists and is visible to the owner (SB_E_BAD_REQUEST field
 * "models" otherwise), stores only its hash. key gets the key text, shown
 * once (the caller wipes it); *id its row id. Borrows everything.
 */
sb_err sb_api_key_new(struct sb_store *s, const struct sb_api_key_new *k, char key[50], int64_t *id,
                      struct sb_error *err);

/* A time from the command line: ISO-8601 with a zone, a date, or Unix ms (see when.c). */
sb_err sb_api_parse_time(const char *s, int64_t *ms, struct sb_error *err);

#endif
