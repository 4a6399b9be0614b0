/* SPDX-License-Identifier: MIT */
/*
 * vkey.h - virtual keys (sk-sb-...): generation, hashing, display forms.
 *
 * A virtual key is "sk-sb-" followed by 43 URL-safe base64 characters: 256
 * random bits from RAND_bytes, no padding. It is shown once, at creation;
 * the store keeps only "sha256:<64 hex>" of the whole key text. Plain
 * SHA-256 and not a slow or keyed hash (DESIGN.md §8): with 256 random
 * bits nobody can guess a preimage, and an unkeyed hash survives master-key
 * rotation. A display prefix (the first SB_VKEY_PREFIX_LEN characters,
 * "sk-sb-AbCd") is stored beside the hash so people can tell keys apart;
 * it reveals 24 of the 256 bits.
 *
 * The data plane checks a presented key in this order: sb_vkey_looks_valid
 * (length, prefix, alphabet: no hashing of junk), sb_vkey_hash, then a table
 * lookup by digest and sb_vkey_hash_eq (constant time) on the candidate.
 *
 * Also here, because session.c shares them: the random URL-safe token and
 * the "sha256:<hex>" text form used for every stored token hash.
 */
#ifndef SB_CRYPTO_VKEY_H
#define SB_CRYPTO_VKEY_H

#include <stdbool.h>

#include "core/err.h"
#include "core/slice.h"

#define SB_VKEY_PREFIX "sk-sb-"
#define SB_VKEY_RANDOM_LEN 43                /* base64url of 32 bytes, unpadded */
#define SB_VKEY_LEN (6 + SB_VKEY_RANDOM_LEN) /* 49 */
#define SB_VKEY_PREFIX_LEN 10                /* "sk-sb-AbCd" */
#define SB_TOKEN_LEN SB_VKEY_RANDOM_LEN      /* a bare random token (sessions) */
#define SB_HASH_TEXT_LEN (7 + 64)            /* "sha256:" + 64 hex */

struct sb_vkey_hash {
    unsigned char digest[32]; /* SHA-256 of the whole key text */
};

/*
 * Writes a fresh key (SB_VKEY_LEN chars + NUL) into out. The caller shows
 * it once and wipes it (sb_secret_wipe). SB_E_INTERNAL without randomness.
 */
sb_err sb_vkey_generate(char out[SB_VKEY_LEN + 1], struct sb_error *err);
/* Cheap shape check of a presented key: prefix, exact length, alphabet. Borrows key. */
bool sb_vkey_looks_valid(struct sb_slice key);
/* SHA-256 of the key text. Borrows key. */
void sb_vkey_hash(struct sb_slice key, struct sb_vkey_hash *out);
/* "sha256:<64 lowercase hex>" + NUL: the stored form (api_keys.key_hash). */
void sb_vkey_hash_format(const struct sb_vkey_hash *h, char out[SB_HASH_TEXT_LEN + 1]);
/* Parses the stored form; false on anything else. */
bool sb_vkey_hash_parse(const char *stored, struct sb_vkey_hash *out);
/* Constant-time equality of two digests. */
bool sb_vkey_hash_eq(const struct sb_vkey_hash *a, const struct sb_vkey_hash *b);
/* The display prefix (first SB_VKEY_PREFIX_LEN chars + NUL) of a valid key. */
void sb_vkey_prefix(struct sb_slice key, char out[SB_VKEY_PREFIX_LEN + 1]);
/* The masked form shown in lists: prefix + "…" (UTF-8), e.g. "sk-sb-AbCd…". Borrows prefix. */
void sb_vkey_mask(const char *prefix, char out[32]);

/* ---- shared with session.c ---- */

/* SB_TOKEN_LEN URL-safe characters (256 random bits) + NUL. */
sb_err sb_vkey_random_token(char out[SB_TOKEN_LEN + 1], struct sb_error *err);
/* "sha256:<hex>" of s, the stored form of any token. Borrows s. */
void sb_vkey_hash_text(struct sb_slice s, char out[SB_HASH_TEXT_LEN + 1]);
/* true for exactly n characters of the URL-safe base64 alphabet. */
bool sb_vkey_is_b64url(struct sb_slice s, size_t n);

#endif
