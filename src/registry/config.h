/* SPDX-License-Identifier: MIT */
/*
 * config.h - the YAML config file (DESIGN.md §3).
 *
 * Parsed with libyaml, driven by one key table per section, validated
 * completely before anything uses it; every error names file:line and the
 * key path ("switchboard.yaml:12: providers[0].api_key: ..."). Unknown keys,
 * wrong types, out-of-range numbers and YAML aliases are errors. Credentials
 * are only references (env:NAME or file:PATH) and stay unresolved in the
 * struct; a literal key is refused without being echoed, and so is a
 * credential-carrying header (Authorization, x-api-key, ...) in `headers:`.
 *
 * Top-level keys and defaults:
 *   listen: 127.0.0.1:8080          HOST:PORT
 *   database: sqlite:./switchboard.db
 *   redis: (none)                   redis://...
 *   workers: 0                      0 = one per core, at most 1024
 *   metrics_token: (none)           env:NAME | file:PATH; /metrics then needs Bearer <token>
 *   allow_private_base_urls: false  true lets developers name internal hosts (SSRF guard off)
 *   server:                         connection limits of the listener
 *     max_body_bytes: 8388608       request body, 1 KiB .. 1 GiB      (8 MiB)
 *     max_header_bytes: 16384       request header block, 1 KiB .. 1 MiB (16 KiB)
 *     header_timeout_ms: 10000      time to receive the headers, 100 .. 600000
 *     idle_timeout_ms: 60000        keep-alive idle time, 100 .. 3600000
 *     max_connections: 10000        open client connections, 1 .. 1000000
 *     shutdown_timeout_ms: 10000    drain time on SIGTERM, 0 .. 600000
 *     body_buffer_bytes: 65536      longer request bodies go to an unlinked file, 0 .. 1 GiB
 *                                   (64 KiB; 0 = every body in memory)
 *     body_temp_dir: (none)         that file's directory; default the database's directory
 *   cache:                          the in-memory response cache (routes opt in with their
 *                                   own `cache: {ttl_s, shared, sampled}` block)
 *     max_bytes: 67108864           answers plus per-entry overhead, 1 MiB .. 64 GiB (64 MiB)
 *     max_entries: 65536            1 .. 100000000
 *     max_entry_bytes: 0            largest answer kept, 1 KiB .. max_bytes; 0 = max_bytes / 8
 *   providers: [...]  models: [...]  routes: [...]   (see examples/switchboard.yaml)
 */
#ifndef SB_REGISTRY_CONFIG_H
#define SB_REGISTRY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/json.h"
#include "core/slice.h"
#include "crypto/secret.h"
#include "provider/provider.h"
#include "store/store.h"

struct sb_server_limits {
    int64_t max_body_bytes;      /* request body */
    int64_t max_header_bytes;    /* request line + headers */
    int64_t header_timeout_ms;   /* until the headers are complete */
    int64_t idle_timeout_ms;     /* keep-alive connection with no request */
    int64_t max_connections;     /* open client connections */
    int64_t shutdown_timeout_ms; /* graceful drain on SIGTERM/SIGINT */
    int64_t body_buffer_bytes;   /* a longer body goes to a file in body_temp_dir; 0 = never */
    const char *body_temp_dir;   /* NULL: the database's directory (serve picks, main.c) */
};

/* The response cache's bounds (router/cache.h struct sb_cache_opts). */
struct sb_cache_limits {
    int64_t max_bytes;
    int64_t max_entries;
    int64_t max_entry_bytes; /* 0 = max_bytes / 8 */
};

/* How the proxy retries and when the router gives up on a deployment
 * (router/router.h, gateway.h struct sb_retry_opts). */
struct sb_routing_limits {
    int64_t retries;             /* extra rounds over the plan once every target failed */
    int64_t retry_backoff_ms;    /* the first round's wait; doubles each round, jittered */
    int64_t retry_max_wait_ms;   /* longest wait (backoff or an upstream's Retry-After) */
    int64_t deadline_ms;         /* no new attempt this long after the request arrived */
    int64_t breaker_failures;    /* consecutive failures that open a deployment's breaker */
    int64_t breaker_cooldown_ms; /* how long it stays open before one probe */
};

struct sb_config {
    const char *path;          /* file it came from, "(defaults)" when none */
    const char *listen;        /* HOST:PORT */
    const char *database;      /* sqlite:PATH | postgres://... */
    const char *redis;         /* redis://..., NULL = none */
    int64_t workers;           /* 0 = number of cores */
    const char *metrics_token; /* reference (env:NAME | file:PATH) to the /metrics token, or NULL */
    bool allow_private_base_urls; /* non-admins may give internal base URLs (default: refused) */
    struct sb_server_limits server;
    struct sb_store_entities system; /* providers, models, routes; is_system = true */
    struct sb_arena *arena;          /* owns every string and array above */
    struct sb_cache_limits cache;    /* appended for the response cache (issue 7 part 9) */
    struct sb_routing_limits routing; /* appended (issue 7): retries, deadline, breakers */
};

/* The wire formats (DESIGN.md §6) and how each authenticates by default. */
struct sb_config_type {
    const char *name;         /* "openai" */
    const char *auth_method;  /* the providers.auth_method column: bearer | api_key | aws_sigv4 */
    enum sb_auth_method auth; /* what the registry puts in struct sb_provider */
};
/* The entry for a type name, or NULL when it is not one of the 8. */
const struct sb_config_type *sb_config_type_find(struct sb_slice name);

/* Returns owned *out (free with sb_config_free) holding only the defaults. */
struct sb_config *sb_config_default(void);
/* Reads and validates the file at path (at most 1 MiB). Returns owned *out. */
sb_err sb_config_load(const char *path, struct sb_config **out, struct sb_error *err);
/* The same from a buffer; name is used in messages. Borrows p. (The fuzz entry point.) */
sb_err sb_config_parse(const char *name, const char *p, size_t len, struct sb_config **out,
                       struct sb_error *err);
/* Accepts NULL. */
void sb_config_free(struct sb_config *c);

/* One entry of the file's lists, as the control plane receives it. */
enum sb_config_entry { SB_CONFIG_PROVIDER, SB_CONFIG_MODEL, SB_CONFIG_ROUTE };

/* Credentials sent literally in an /api provider body (arena strings; NULL = absent). */
struct sb_config_creds {
    const char *api_key;
    const char *aws_access_key_id;
    const char *aws_secret_access_key;
    const char *aws_session_token;
};

/*
 * Checks one /api body (a JSON object borrowed for the call) with the same
 * key table, ranges, checks and messages as a `providers`/`models`/`routes`
 * entry of the file (one schema for both inputs), filling out (a struct
 * sb_store_provider / _model / _route; strings from a; is_system false).
 * Messages read "key: what" with err->field = the key path; the code is
 * SB_E_BAD_REQUEST. A provider body's credential keys (api_key, aws_*) hold
 * the secrets themselves: they are taken out into creds (may be NULL, then
 * they are dropped) and never walked; references (env:, file:) are refused.
 */
sb_err sb_config_entry_from_json(struct sb_arena *a, enum sb_config_entry kind,
                                 const struct sb_json *obj, void *out,
                                 struct sb_config_creds *creds, struct sb_error *err);

/*
 * Resolves a credential reference. "env:NAME" reads the variable; unset or
 * empty gives *out = NULL and a warning, not an error (so `make run` works
 * without keys). "file:PATH" reads the file (it must exist; at most 64 KiB),
 * dropping one trailing newline. ref == NULL gives *out = NULL. Anything
 * else is SB_E_CONFIG. Returns owned *out (free with sb_secret_free).
 */
sb_err sb_config_resolve_secret(const char *ref, struct sb_secret **out, struct sb_error *err);

#endif
