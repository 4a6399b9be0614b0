/* SPDX-License-Identifier: MIT */
/*
 * secret.h - a credential held in memory.
 *
 * A distinct opaque type with no format function, so a logger or an error
 * message cannot print it by accident (STYLE.md practice 24). The bytes are
 * wiped when the secret is freed. sb_secret_reveal() exists only for the
 * code that builds upstream auth headers or signatures.
 */
#ifndef SB_CRYPTO_SECRET_H
#define SB_CRYPTO_SECRET_H

#include <stddef.h>

#include "core/slice.h"

struct sb_secret;

/* Returns owned (free with sb_secret_free); copies p[0..n). */
struct sb_secret *sb_secret_new(const char *p, size_t n);
/* Wipes and frees; accepts NULL. */
void sb_secret_free(struct sb_secret *s);
/* The plaintext, valid while s lives. Only for building upstream requests. */
struct sb_slice sb_secret_reveal(const struct sb_secret *s);
/* Writes a display form such as "sk-…abcd" (never more than 4 trailing chars) into out. */
void sb_secret_mask(const struct sb_secret *s, char out[32]);
/* Writes 16 hex digits of SHA-256(plaintext) and a NUL into out: tells two
 * keys apart (a replaced key is a new key) without keeping either. */
void sb_secret_fingerprint(const struct sb_secret *s, char out[17]);
/* Overwrites n bytes so the compiler cannot elide it. */
void sb_secret_wipe(void *p, size_t n);

#endif
