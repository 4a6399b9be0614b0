/* SPDX-License-Identifier: MIT */
/*
 * session.h - console session tokens and their CSRF tokens.
 *
 * A session token is 43 URL-safe characters (256 random bits), the value
 * of the HttpOnly SameSite=Strict cookie. The store keeps only its
 * "sha256:<hex>" (sessions.token_hash), so a copy of the database cannot be
 * replayed as a cookie.
 *
 * CSRF: the token is derived, not stored: base64url(HMAC-SHA256(key =
 * session token, "switchboard csrf v1")). Why derived: the console must
 * get its CSRF token back after a page reload (GET /api/me returns it),
 * which a stored hash cannot give; an HMAC keyed by a 256-bit secret is as
 * unguessable as a random token, and knowing the CSRF token (it sits in
 * page memory) reveals nothing about the cookie. Same session, same CSRF
 * token; a new login makes a new one. The check is constant time.
 */
#ifndef SB_CRYPTO_SESSION_H
#define SB_CRYPTO_SESSION_H

#include <stdbool.h>

#include "core/err.h"
#include "core/slice.h"
#include "crypto/vkey.h"

#define SB_SESSION_COOKIE "sb_session"
#define SB_CSRF_HEADER "x-csrf-token"
#define SB_CSRF_LEN 43

/* A fresh session token (SB_TOKEN_LEN chars + NUL). The caller wipes it after use. */
sb_err sb_session_token_new(char out[SB_TOKEN_LEN + 1], struct sb_error *err);
/* Cheap shape check of a cookie value before hashing it. Borrows token. */
bool sb_session_token_looks_valid(struct sb_slice token);
/* The stored form "sha256:<hex>" of a session token. Borrows token. */
void sb_session_token_hash(struct sb_slice token, char out[SB_HASH_TEXT_LEN + 1]);
/* The CSRF token of a session (SB_CSRF_LEN chars + NUL). Borrows token. */
void sb_session_csrf(struct sb_slice token, char out[SB_CSRF_LEN + 1]);
/* true when presented is the CSRF token of session token. Constant time. Borrows both. */
bool sb_session_csrf_check(struct sb_slice token, struct sb_slice presented);

#endif
