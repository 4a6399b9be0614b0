/* SPDX-License-Identifier: MIT */
/*
 * sigv4.h - AWS Signature Version 4, header form (HMAC-SHA256 via OpenSSL).
 *
 * Given the request exactly as it will go on the wire, the credentials, the
 * region, the service and a time, produces the headers to add:
 * Authorization, X-Amz-Date, optionally X-Amz-Content-Sha256, and
 * X-Amz-Security-Token when there is a session token. Signs host, x-amz-date,
 * the optional ones and whatever headers the caller lists.
 *
 * Canonical URI, for every service except S3 (we never sign for S3): the
 * path is normalised (empty and "." segments dropped, ".." applied) and each
 * segment of the *wire* path is URI-encoded once more. Because the wire path
 * is already percent-encoded, that is AWS's "double encoding": a Bedrock
 * model id "anthropic.claude-3-haiku-20240307-v1:0" is sent as
 * ".../v1%3A0/..." and signed as ".../v1%253A0/...", as the AWS SDKs do.
 * The query is percent-decoded, re-encoded strictly (RFC 3986 unreserved
 * characters kept) and sorted by name, then value.
 *
 * Credentials arrive as revealed slices and never leave this module except
 * inside the signature; scratch copies of key material are wiped.
 */
#ifndef SB_CRYPTO_SIGV4_H
#define SB_CRYPTO_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

struct sb_sigv4_header {
    struct sb_slice name;
    struct sb_slice value;
};

struct sb_sigv4_request {
    struct sb_slice method;                /* "POST" */
    struct sb_slice url;                   /* http(s)://host[:port]/path[?query], as sent */
    const struct sb_sigv4_header *headers; /* more headers to sign (content-type...), borrowed */
    size_t nheaders;
    struct sb_slice body; /* the exact bytes that will be sent */
};

struct sb_sigv4_params {
    struct sb_slice region;        /* "us-east-1" */
    struct sb_slice service;       /* "bedrock" */
    struct sb_slice access_key_id; /* revealed by the caller, borrowed */
    struct sb_slice secret_key;    /* revealed by the caller, borrowed */
    struct sb_slice session_token; /* empty when there is none; borrowed */
    int64_t time;                  /* signing time, seconds since the epoch (UTC) */
    bool content_sha256;           /* also add and sign X-Amz-Content-Sha256 */
};

#define SB_SIGV4_MAX_OUT 4

struct sb_sigv4_result {
    /* Authorization and X-Amz-Date (values from the arena), then
     * X-Amz-Content-Sha256 when asked for, then X-Amz-Security-Token
     * (value borrows params->session_token) when there is a token. */
    struct sb_sigv4_header headers[SB_SIGV4_MAX_OUT];
    size_t nheaders;
};

/*
 * Signs r. Output values come from a (valid until it is freed). Returns
 * SB_OK, SB_E_CONFIG (missing region, service or credentials) or
 * SB_E_BAD_REQUEST (a URL that is not http(s)://host/...) with err filled;
 * err never contains key material.
 */
sb_err sb_sigv4_sign(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                     struct sb_arena *a, struct sb_sigv4_result *out, struct sb_error *err);

/*
 * Writes the canonical request that sb_sigv4_sign hashes into out (reset
 * first), for tests and debugging. amz_date is "YYYYMMDDTHHMMSSZ". Note: it
 * contains the session token when there is one; wipe it if that matters.
 */
sb_err sb_sigv4_canonical_request(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                                  const char *amz_date, struct sb_buf *out, struct sb_error *err);

#endif
