/* SPDX-License-Identifier: MIT */
/*
 * keys.h - the master key, credential encryption and the admin token.
 *
 * Master key (DESIGN.md §2): SWITCHBOARD_MASTER_KEY (base64 of exactly 32
 * bytes) or else a key file (default ./switchboard.key) holding the same,
 * created on first start with mode 0600. A key file that group or others
 * may read is refused. The key encrypts stored provider credentials with
 * AES-256-GCM: base64(nonce[12] || ciphertext || tag[16]), with the
 * provider's identity as associated data so a ciphertext cannot be moved
 * to another provider's row.
 *
 * Admin token: SWITCHBOARD_ADMIN_TOKEN, or generated on first start
 * ("sb-admin-" + 32 URL-safe characters, 192 random bits) and shown once.
 * Only its hash is stored, in the settings key SB_KEYS_ADMIN_SETTING as
 * "sha256:<64 hex>". We use plain SHA-256, not an HMAC under the master
 * key: a generated token has 192 bits of entropy, so a keyed hash adds
 * nothing against guessing, and an unkeyed one survives `rotate-key`
 * without locking the admin out. (A weak hand-picked token is the one case
 * a keyed hash would help; we warn about short ones.)
 *
 * This file never talks to the store: the caller reads and writes the
 * setting (crypto sits beside store in the layer order, not above it).
 */
#ifndef SB_CRYPTO_KEYS_H
#define SB_CRYPTO_KEYS_H

#include <stdbool.h>

#include "core/err.h"
#include "core/slice.h"
#include "crypto/secret.h"

#define SB_KEYS_MASTER_ENV "SWITCHBOARD_MASTER_KEY"
#define SB_KEYS_ADMIN_ENV "SWITCHBOARD_ADMIN_TOKEN"
#define SB_KEYS_DEFAULT_FILE "./switchboard.key"
#define SB_KEYS_ADMIN_SETTING "admin_token_hash"

struct sb_master_key;

/*
 * Loads the master key: from SWITCHBOARD_MASTER_KEY when set and non-empty,
 * else from the key file at path (NULL = ./switchboard.key), creating it
 * with a fresh random key (mode 0600, O_EXCL) when it does not exist.
 * Returns owned *out (free with sb_keys_master_free); SB_E_CONFIG with a
 * clear message on a malformed key or an unsafe key file.
 */
sb_err sb_keys_master_load(const char *path, struct sb_master_key **out, struct sb_error *err);
/* Decodes base64 of exactly 32 bytes (whitespace around it ignored). what names the source in
 * errors. Returns owned *out. */
sb_err sb_keys_master_from_base64(struct sb_slice b64, const char *what, struct sb_master_key **out,
                                  struct sb_error *err);
/* Wipes and frees; accepts NULL. */
void sb_keys_master_free(struct sb_master_key *k);
/* A short public id of the key (16 hex chars + NUL), stored beside each ciphertext. */
void sb_keys_master_id(const struct sb_master_key *k, char out[17]);

/*
 * Encrypts plaintext with AES-256-GCM under k, binding aad (e.g. the
 * provider id). Returns owned *out (free with free()): base64 of
 * nonce || ciphertext || tag. Plaintext up to 64 KiB.
 */
sb_err sb_keys_encrypt(const struct sb_master_key *k, struct sb_slice plaintext,
                       struct sb_slice aad, char **out, struct sb_error *err);
/* Reverses sb_keys_encrypt. Returns owned *out (free with sb_secret_free).
 * A wrong key, wrong aad or any tampering fails with SB_E_CONFIG. */
sb_err sb_keys_decrypt(const struct sb_master_key *k, struct sb_slice b64, struct sb_slice aad,
                       struct sb_secret **out, struct sb_error *err);

/*
 * The associated data of a stored provider credential: its row identity,
 * "<provider>" for the system credential and "<provider>/<user>" for a
 * user's own (provider ids hold no '/'), so a ciphertext copied into another
 * row fails to decrypt. Writes a NUL-terminated string into out.
 */
#define SB_KEYS_AAD_MAX 200
void sb_keys_credential_aad(const char *provider, const char *user, char out[SB_KEYS_AAD_MAX]);

/* ---- admin token ---- */

struct sb_admin_hash {
    unsigned char digest[32]; /* SHA-256 of the token */
};

struct sb_admin_setup {
    struct sb_admin_hash hash;   /* what requests are checked against */
    char stored[72];             /* "sha256:<hex>", the settings value */
    bool changed;                /* stored differs from what was passed in: write it */
    struct sb_secret *generated; /* a new token to print once, else NULL; owned (sb_secret_free) */
};

/*
 * Decides the admin token at start-up. stored is the current settings value
 * (NULL when absent; borrowed). With SWITCHBOARD_ADMIN_TOKEN set its hash
 * replaces stored; else a valid stored hash is kept; else a token is
 * generated. The caller writes out->stored to the settings when
 * out->changed, prints out->generated when non-NULL, then frees it.
 */
sb_err sb_keys_admin_setup(const char *stored, struct sb_admin_setup *out, struct sb_error *err);
/* Parses "sha256:<64 hex>"; false on anything else. */
bool sb_keys_admin_parse(const char *stored, struct sb_admin_hash *out);
/* a == b, in time that depends only on the lengths (for tokens and secrets). */
bool sb_keys_equal(struct sb_slice a, struct sb_slice b);
/* true when token is the admin token. Constant time in the token's bytes. Borrows both. */
bool sb_keys_check_admin(const struct sb_admin_hash *h, struct sb_slice token);

#endif
