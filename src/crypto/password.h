/* SPDX-License-Identifier: MIT */
/*
 * password.h - user login passwords: argon2id hashing and verification.
 *
 * Passwords are the one low-entropy secret we store, so they get a slow,
 * memory-hard hash (libargon2, argon2id) in the standard encoded form
 * "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>". The parameters follow
 * OWASP's first argon2id recommendation (19 MiB, 2 passes, 1 lane): on
 * this 2-core server one verification costs ~23 ms of one core (measured
 * by password_test.c, which logs it; the first hash of a process ~100 ms
 * while its 19 MiB are faulted in), so a login attempt limiter, not the
 * CPU, bounds guessing; p=1 because a lane per core would let one login
 * take both cores, and 19 MiB per concurrent login stays small. Verification re-reads the parameters from the stored string
 * (so old hashes keep working after a change) but refuses parameters far
 * beyond ours: a tampered row must not make one login allocate gigabytes.
 *
 * Logins for unknown usernames call sb_password_verify_dummy(), which
 * costs the same as a real verification, so response time does not tell
 * which usernames exist. Its first call builds the dummy hash (one extra
 * hash): call it once at start-up so the first unknown-user login is not
 * slower than the rest. Nothing here touches the store or logs a password.
 */
#ifndef SB_CRYPTO_PASSWORD_H
#define SB_CRYPTO_PASSWORD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

#define SB_PASSWORD_MIN 8        /* bytes */
#define SB_PASSWORD_MAX 256      /* bytes; longer input is refused, not truncated */
#define SB_PASSWORD_HASH_MAX 160 /* room for any encoded hash we write or accept, NUL included */

struct sb_password_params {
    uint32_t m_kib; /* memory in KiB */
    uint32_t t;     /* passes */
    uint32_t p;     /* lanes */
};

/* m=19456 KiB, t=2, p=1 (see above). */
extern const struct sb_password_params sb_password_default;

/*
 * Checks the minimum rules: SB_PASSWORD_MIN..SB_PASSWORD_MAX bytes, no NUL
 * byte, not all whitespace. SB_E_BAD_REQUEST with field "password" and a
 * message that says the rule (never the password). Borrows pw.
 */
sb_err sb_password_check_rules(struct sb_slice pw, struct sb_error *err);

/*
 * Hashes pw (after sb_password_check_rules) with a fresh 16-byte random
 * salt and the default parameters into out (NUL-terminated encoded form).
 * SB_E_BAD_REQUEST when the rules fail, SB_E_INTERNAL when argon2 fails.
 */
sb_err sb_password_hash(struct sb_slice pw, char out[SB_PASSWORD_HASH_MAX], struct sb_error *err);
/* The same with explicit parameters (tests use cheap ones). */
sb_err sb_password_hash_with(const struct sb_password_params *prm, struct sb_slice pw,
                             char out[SB_PASSWORD_HASH_MAX], struct sb_error *err);

/*
 * true when pw matches the stored encoded hash. Constant time in the
 * comparison (libargon2 compares the digests with a constant-time loop).
 * false for a mismatch, a malformed or non-argon2id string, or parameters
 * beyond the accepted bounds (m ≤ 1 GiB, t ≤ 16, p ≤ 8). Borrows both.
 */
bool sb_password_verify(const char *encoded, struct sb_slice pw);
/* Costs what sb_password_verify costs with the default parameters, and
 * always "fails". For logins naming an unknown or disabled user. */
void sb_password_verify_dummy(struct sb_slice pw);
/* true when encoded was made with other parameters than the defaults (the
 * caller may re-hash on the next successful login). */
bool sb_password_needs_rehash(const char *encoded);
/* Parses the parameters of an encoded argon2id hash; false when malformed. */
bool sb_password_params_of(const char *encoded, struct sb_password_params *out);

#endif
