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
 * "<provider>" for the system credential, "<provider>/<user>" for a user's
 * own and "<provider>#<label>" for a member of the provider's key pool
 * (provider ids hold neither '/' nor '#'), so a ciphertext copied into
 * another row fails to decrypt. Writes a NUL-terminated string into out.
 */
#define SB_KEYS_AAD_MAX 200
void sb_keys_credential_aad(const char *provider, const char *user, const char *label,
                            char out[SB_KEYS_AAD_MAX]);

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

/* ---- key files (used by the keyring) ---- */

/* A fresh random key. Returns owned *out (free with sb_keys_master_free). */
sb_err sb_keys_master_generate(struct sb_master_key **out, struct sb_error *err);
/* Reads an existing key file (same safety checks as load; never creates).
 * SB_E_NOT_FOUND when it does not exist. Returns owned *out. */
sb_err sb_keys_master_read_file(const char *path, struct sb_master_key **out, struct sb_error *err);
/* Writes k to a new file path: O_EXCL, mode 0600, fsync. SB_E_CONFLICT when
 * path exists. Borrows k. */
sb_err sb_keys_master_write_file(const struct sb_master_key *k, const char *path,
                                 struct sb_error *err);

/* ---- keyring and rotation (keyring.c) ----
 *
 * A keyring holds the current master key and, while a rotation is under
 * way, the next one. Every ciphertext is stored with the id of the key that
 * made it (provider_credentials.key_id), and decryption picks the key by
 * that id, so rows under either key decrypt at any moment of a rotation.
 *
 * Rotation, file mode (no SWITCHBOARD_MASTER_KEY), crash-safe at every step:
 *  1. begin: the next key is written to "<keyfile>.new.tmp" (O_EXCL, 0600,
 *     fsync), renamed to "<keyfile>.new", directory fsynced. A crash leaves
 *     either no .new (a stale .tmp is removed at load: nothing used it) or
 *     a complete one. From here new encryptions use the next key.
 *  2. the store re-encrypts every credential in ONE transaction, calling
 *     sb_keys_keyring_reencrypt per row (old key + AAD → next key + AAD).
 *     Before the commit every row is under the old key, after it every row
 *     is under the next; both keys are loaded either way.
 *  3. finish: "<keyfile>.new" is renamed over the key file, directory
 *     fsynced. Before the rename, load sees both files; after, only the new.
 * At load, a present .new means a rotation did not finish: both keys are
 * loaded (sb_keys_keyring_pending) and the caller completes it by running
 * steps 2 (idempotent: rows already under the next key are left alone)
 * and 3.
 *
 * Env mode (SWITCHBOARD_MASTER_KEY set): the current key comes from it and
 * the next from SWITCHBOARD_NEW_MASTER_KEY when set; nothing is written.
 * After the re-encryption commits, the operator moves the new value to
 * SWITCHBOARD_MASTER_KEY (finish says so in the log).
 *
 * One process rotates at a time; a second instance running on the old key
 * during a rotation would write rows under it (not handled here).
 */

#define SB_KEYS_NEW_MASTER_ENV "SWITCHBOARD_NEW_MASTER_KEY"

struct sb_keyring;

/*
 * Loads the keyring by the rules above. path: the key file (NULL =
 * ./switchboard.key), created on first start as sb_keys_master_load does.
 * Returns owned *out (free with sb_keys_keyring_free).
 */
sb_err sb_keys_keyring_load(const char *path, struct sb_keyring **out, struct sb_error *err);
/* Wipes and frees; accepts NULL. */
void sb_keys_keyring_free(struct sb_keyring *kr);
/* true while a next key is loaded: a rotation to run or finish. */
bool sb_keys_keyring_pending(const struct sb_keyring *kr);
/* true when the keys came from the environment (nothing is ever written). */
bool sb_keys_keyring_from_env(const struct sb_keyring *kr);
/* The key new encryptions use: the next key while pending, else the current. Borrowed. */
const struct sb_master_key *sb_keys_keyring_active(const struct sb_keyring *kr);
/* Its id (16 hex + NUL). */
void sb_keys_keyring_active_id(const struct sb_keyring *kr, char out[17]);
/* Encrypts under the active key; key_id gets that key's id. Returns owned *out (free()). */
sb_err sb_keys_keyring_encrypt(const struct sb_keyring *kr, struct sb_slice plaintext,
                               struct sb_slice aad, char **out, char key_id[17],
                               struct sb_error *err);
/* Decrypts with the key whose id is key_id. SB_E_CONFIG naming the id when
 * no loaded key has it. Returns owned *out (free with sb_secret_free). */
sb_err sb_keys_keyring_decrypt(const struct sb_keyring *kr, const char *key_id, struct sb_slice b64,
                               struct sb_slice aad, struct sb_secret **out, struct sb_error *err);
/*
 * Step 1. File mode: writes the next key (SWITCHBOARD_NEW_MASTER_KEY when
 * set, else a random one) as "<keyfile>.new" and loads it. Env mode: needs
 * SWITCHBOARD_NEW_MASTER_KEY loaded already (SB_E_CONFIG otherwise). When a
 * rotation is already pending, keeps its next key (SB_OK): that is how a
 * crashed rotation resumes. SB_E_CONFLICT when the next key equals the current.
 */
sb_err sb_keys_keyring_begin_rotation(struct sb_keyring *kr, struct sb_error *err);
/*
 * Step 2, one row: *out gets ciphertext re-encrypted from the key named by
 * key_id to the active key (owned, free()), and new_key_id its id; *out is
 * NULL when the row is already under the active key (nothing to write).
 * No plaintext leaves this function; it is wiped before return.
 */
sb_err sb_keys_keyring_reencrypt(const struct sb_keyring *kr, const char *key_id,
                                 struct sb_slice ciphertext, struct sb_slice aad, char **out,
                                 char new_key_id[17], struct sb_error *err);
/* Step 3 (call only after the store committed step 2). File mode: renames
 * "<keyfile>.new" over the key file and fsyncs the directory; the next key
 * becomes the current one. Env mode: writes nothing, logs what to do. */
sb_err sb_keys_keyring_finish_rotation(struct sb_keyring *kr, struct sb_error *err);
