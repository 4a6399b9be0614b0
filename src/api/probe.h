/* SPDX-License-Identifier: MIT */
/*
 * probe.h - one connection test against an upstream (src/api/ only).
 *
 * A probe runs on a control-plane thread and blocks: it resolves the base
 * URL's host itself (the DNS stage), then lets a libcurl easy handle, pinned
 * to the addresses it found, connect, shake hands and send the provider's
 * own requests built by its adapter: the model listing where the adapter
 * names one (ops->models_path), then a one-message completion when there is
 * a model. The answer is a stage, a sentence and the latency of each step,
 * never a secret: upstream messages are shown only after any piece of the
 * key in them is redacted, and never for 401/403.
 */
#ifndef SB_API_PROBE_H
#define SB_API_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "provider/provider.h"

#define SB_PROBE_MAX_MODELS 10       /* ids shown from a listing */
#define SB_PROBE_CONNECT_MS 5000L    /* connect timeout, at most */
#define SB_PROBE_TOTAL_MS 15000L     /* one request's total time, at most */
#define SB_PROBE_ANSWER_BYTES 200    /* the completion's text, truncated */
#define SB_PROBE_MAX_BODY (4u << 20) /* an upstream answer (listings can be long) */

enum sb_probe_stage { /* the step that failed, or DONE */
                      SB_PROBE_DNS,
                      SB_PROBE_CONNECT,
                      SB_PROBE_TLS,
                      SB_PROBE_AUTH,
                      SB_PROBE_MODEL,
                      SB_PROBE_DONE,
};

struct sb_probe_target {
    const struct sb_provider *provider; /* borrowed: ops, base_url, credentials */
    const struct sb_model *model;       /* borrowed; NULL = no completion */
    bool list_models;                   /* GET ops->models_path when the adapter names one */
    bool refuse_private;                /* SSRF: every address must be public (non-admins) */
    int max_tokens;                     /* of the completion, 1..16 */
};

struct sb_probe_result {
    bool ok;
    enum sb_probe_stage stage;
    char diagnosis[384]; /* one human sentence, never a secret */
    /* milliseconds; -1 = the step was not reached (tls: -1 for http://) */
    int64_t dns_ms, connect_ms, tls_ms, request_ms, total_ms;
    int http_status;                          /* of the last upstream answer, 0 = none */
    bool listed;                              /* the listing answered 2xx */
    const char *models[SB_PROBE_MAX_MODELS];  /* first ids of the listing (arena) */
    size_t nmodels;                           /* of models[] */
    size_t models_count;                      /* ids on the listing's first page */
    struct sb_slice answer;                   /* the completion's text, truncated (arena) */
    bool answered;                            /* a completion came back */
    int64_t prompt_tokens, completion_tokens; /* -1 = unknown */
};

/*
 * Runs the test described by t; everything it allocates (the request with
 * its auth lines, the answers) comes from a, whose credential copies are
 * wiped when a is freed. Returns SB_OK with *out filled whatever the upstream
 * did; an error only when the target is refused before any traffic (SSRF:
 * SB_E_FORBIDDEN, field "base_url"; a malformed base_url: SB_E_BAD_REQUEST).
 */
sb_err sb__probe_run(struct sb_arena *a, const struct sb_probe_target *t,
                     struct sb_probe_result *out, struct sb_error *err);
/* Writes r as the result object ({"ok","stage","diagnosis","latency_ms",...}). */
void sb__probe_write(struct sb_jw *j, const struct sb_probe_result *r, bool with_answer);

/* ---- pure steps, exposed for the unit tests ---- */

const char *sb__probe_stage_name(enum sb_probe_stage s);
/* The timings of one finished curl transfer, in microseconds (0 = not reached). */
struct sb_probe_times {
    int64_t connect_us, appconnect_us, pretransfer_us, total_us;
};
/* Fills r's stage and diagnosis from a failed transfer: code is a CURLcode, os_errno
 * curl's CURLINFO_OS_ERRNO, detail curl's error buffer (may be ""), hostport "host:port",
 * at_request the stage a failure after the handshake belongs to (AUTH or MODEL). */
void sb__probe_curl_failure(int code, long os_errno, const char *detail, bool https,
                            const struct sb_probe_times *tm, long timeout_ms, const char *hostport,
                            enum sb_probe_stage at_request, struct sb_probe_result *r);
/* Fills r's stage and diagnosis from a non-2xx answer. listing: the model listing (else the
 * completion); model: the upstream model name; upstream_msg: the adapter's reading of the
 * body, already redacted (may be ""). */
void sb__probe_http_failure(int status, bool listing, const char *model, const char *upstream_msg,
                            struct sb_probe_result *r);
/* Replaces, in the NUL-terminated msg, every word that shares 6 or more consecutive bytes
 * with key (or holds the whole key when it is shorter) by "[redacted]". */
void sb__probe_redact(char *msg, size_t cap, struct sb_slice key);
/* Reads a listing ({"data":[{"id"}]} or {"models":[{"name"|"id"}]}): the first max ids into
 * ids (arena strings), the number on the page into *count. false when body is neither. */
bool sb__probe_parse_listing(struct sb_arena *a, struct sb_slice body, const char **ids, size_t max,
                             size_t *n, size_t *count);

#endif
