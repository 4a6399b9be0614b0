/* SPDX-License-Identifier: MIT */
/*
 * keyring.c - the current and next master keys, and crash-safe rotation.
 *
 * keys.h states the protocol and why each step is safe. What this file
 * owns: the two key files' names ("<keyfile>.new", "<keyfile>.new.tmp"),
 * the renames and directory fsyncs between them, and picking a key by id.
 * It never talks to the store: the store's transaction calls
 * sb_keys_keyring_reencrypt per row, and the caller orders the steps.
 * Plaintext exists only inside reencrypt and decrypt, and is wiped there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "crypto/keys.h"

struct sb_keyring {
    struct sb_master_key *cur;  /* the key the key file (or SWITCHBOARD_MASTER_KEY) holds */
    struct sb_master_key *next; /* the rotation's target, NULL when none is under way */
    char cur_id[17], next_id[17];
    bool env;       /* keys from the environment: nothing is written */
    char *path;     /* key file (file mode) */
    char *new_path; /* "<path>.new" */
    char *tmp_path; /* "<path>.new.tmp" */
};

static char *with_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *s = sb_xmalloc(n);
    snprintf(s, n, "%s%s", path, suffix);
    return s;
}

/* fsync of the directory holding path, so a rename in it is durable. */
static sb_err sync_dir(const char *path, struct sb_error *err)
{
    char *dir = sb_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    sb_err rc = SB_OK;
    if (fd < 0 || fsync(fd) != 0)
        rc = sb_fail(err, SB_E_IO, "key file directory %s: fsync: %s", slash ? dir : ".",
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

static void set_next(struct sb_keyring *kr, struct sb_master_key *k)
{
    kr->next = k;
    sb_keys_master_id(k, kr->next_id);
}

static sb_err load_env(struct sb_keyring *kr, const char *cur, struct sb_error *err)
{
    const char *next = getenv(SB_KEYS_NEW_MASTER_ENV);
    struct sb_master_key *k = NULL;
    kr->env = true;
    sb_err rc = sb_keys_master_from_base64(sb_slice_cstr(cur), SB_KEYS_MASTER_ENV, &kr->cur, err);
    if (rc == SB_OK && next && *next) {
        rc = sb_keys_master_from_base64(sb_slice_cstr(next), SB_KEYS_NEW_MASTER_ENV, &k, err);
        if (rc == SB_OK)
            set_next(kr, k);
    }
    return rc;
}

static sb_err load_files(struct sb_keyring *kr, const char *path, struct sb_error *err)
{
    struct sb_master_key *k = NULL;
    kr->path = sb_xstrdup(path ? path : SB_KEYS_DEFAULT_FILE);
    kr->new_path = with_suffix(kr->path, ".new");
    kr->tmp_path = with_suffix(kr->path, ".new.tmp");
    /* A .tmp is a rotation that crashed before its key was ever used. */
    if (unlink(kr->tmp_path) == 0)
        sb_warn("msg=\"removed an unfinished master key file from an interrupted rotation\" "
                "path=%s",
                kr->tmp_path);
    sb_err rc = sb_keys_master_load(kr->path, &kr->cur, err);
    if (rc == SB_OK)
        rc = sb_keys_master_read_file(kr->new_path, &k, err);
    if (rc == SB_OK) {
        set_next(kr, k);
        sb_warn("msg=\"a master key rotation did not finish; both keys are loaded until it "
                "does\" new_key_file=%s",
                kr->new_path);
    } else if (rc == SB_E_NOT_FOUND) {
        rc = SB_OK;
    }
    return rc;
}

sb_err sb_keys_keyring_load(const char *path, struct sb_keyring **out, struct sb_error *err)
{
    struct sb_keyring *kr = sb_xcalloc(1, sizeof(*kr));
    const char *env = getenv(SB_KEYS_MASTER_ENV);
    sb_err rc = env && *env ? load_env(kr, env, err) : load_files(kr, path, err);
    *out = NULL;
    if (rc != SB_OK) {
        sb_keys_keyring_free(kr);
        return rc;
    }
    sb_keys_master_id(kr->cur, kr->cur_id);
    *out = kr;
    return SB_OK;
}

void sb_keys_keyring_free(struct sb_keyring *kr)
{
    if (!kr)
        return;
    sb_keys_master_free(kr->cur);
    sb_keys_master_free(kr->next);
    free(kr->path);
    free(kr->new_path);
    free(kr->tmp_path);
    free(kr);
}

bool sb_keys_keyring_pending(const struct sb_keyring *kr)
{
    return kr->next != NULL;
}

bool sb_keys_keyring_from_env(const struct sb_keyring *kr)
{
    return kr->env;
}

const struct sb_master_key *sb_keys_keyring_active(const struct sb_keyring *kr)
{
    return kr->next ? kr->next : kr->cur;
}

void sb_keys_keyring_active_id(const struct sb_keyring *kr, char out[17])
{
    memcpy(out, kr->next ? kr->next_id : kr->cur_id, 17);
}

sb_err sb_keys_keyring_encrypt(const struct sb_keyring *kr, struct sb_slice plaintext,
                               struct sb_slice aad, char **out, char key_id[17],
                               struct sb_error *err)
{
    sb_keys_keyring_active_id(kr, key_id);
    return sb_keys_encrypt(sb_keys_keyring_active(kr), plaintext, aad, out, err);
}

sb_err sb_keys_keyring_decrypt(const struct sb_keyring *kr, const char *key_id, struct sb_slice b64,
                               struct sb_slice aad, struct sb_secret **out, struct sb_error *err)
{
    *out = NULL;
    if (key_id && strcmp(key_id, kr->cur_id) == 0)
        return sb_keys_decrypt(kr->cur, b64, aad, out, err);
    if (key_id && kr->next && strcmp(key_id, kr->next_id) == 0)
        return sb_keys_decrypt(kr->next, b64, aad, out, err);
    return sb_fail(err, SB_E_CONFIG,
                   "stored credential was encrypted under master key %.16s, which is not loaded "
                   "(loaded: %s%s%s)",
                   key_id ? key_id : "(none)", kr->cur_id, kr->next ? ", " : "",
                   kr->next ? kr->next_id : "");
}

/* ---- rotation ---- */

/* The next key: SWITCHBOARD_NEW_MASTER_KEY when set, else a random one. */
static sb_err pick_next(struct sb_master_key **k, struct sb_error *err)
{
    const char *env = getenv(SB_KEYS_NEW_MASTER_ENV);
    if (env && *env)
        return sb_keys_master_from_base64(sb_slice_cstr(env), SB_KEYS_NEW_MASTER_ENV, k, err);
    return sb_keys_master_generate(k, err);
}

/* Step 1, file mode: .tmp written and synced, renamed to .new, directory synced. */
static sb_err write_next(struct sb_keyring *kr, const struct sb_master_key *k, struct sb_error *err)
{
    sb_err rc = sb_keys_master_write_file(k, kr->tmp_path, err);
    if (rc != SB_OK)
        return rc;
    if (rename(kr->tmp_path, kr->new_path) != 0) {
        rc = sb_fail(err, SB_E_IO, "key file %s: rename: %s", kr->new_path, strerror(errno));
        unlink(kr->tmp_path);
        return rc;
    }
    return sync_dir(kr->new_path, err);
}

sb_err sb_keys_keyring_begin_rotation(struct sb_keyring *kr, struct sb_error *err)
{
    struct sb_master_key *k = NULL;
    char id[17];
    if (kr->next)
        return SB_OK; /* resuming an unfinished rotation: keep its key */
    if (kr->env)
        return sb_fail(err, SB_E_CONFIG,
                       "%s is set, so nothing is written to disk: set %s to the new key "
                       "(make one with: openssl rand -base64 32) and run again",
                       SB_KEYS_MASTER_ENV, SB_KEYS_NEW_MASTER_ENV);
    sb_err rc = pick_next(&k, err);
    if (rc != SB_OK)
        return rc;
    sb_keys_master_id(k, id);
    if (strcmp(id, kr->cur_id) == 0)
        rc = sb_fail(err, SB_E_CONFLICT, "%s is the current master key; give a new one",
                     SB_KEYS_NEW_MASTER_ENV);
    if (rc == SB_OK)
        rc = write_next(kr, k, err);
    if (rc != SB_OK) {
        sb_keys_master_free(k);
        return rc;
    }
    set_next(kr, k);
    return SB_OK;
}

sb_err sb_keys_keyring_reencrypt(const struct sb_keyring *kr, const char *key_id,
                                 struct sb_slice ciphertext, struct sb_slice aad, char **out,
                                 char new_key_id[17], struct sb_error *err)
{
    struct sb_secret *pt = NULL;
    *out = NULL;
    sb_keys_keyring_active_id(kr, new_key_id);
    if (key_id && strcmp(key_id, new_key_id) == 0)
        return SB_OK; /* already under the active key */
    sb_err rc = sb_keys_keyring_decrypt(kr, key_id, ciphertext, aad, &pt, err);
    if (rc == SB_OK)
        rc = sb_keys_encrypt(sb_keys_keyring_active(kr), sb_secret_reveal(pt), aad, out, err);
    sb_secret_free(pt);
    return rc;
}

/* The next key becomes the current one, in memory. */
static void promote(struct sb_keyring *kr)
{
    sb_keys_master_free(kr->cur);
    kr->cur = kr->next;
    memcpy(kr->cur_id, kr->next_id, sizeof(kr->cur_id));
    kr->next = NULL;
    kr->next_id[0] = '\0';
}

sb_err sb_keys_keyring_finish_rotation(struct sb_keyring *kr, struct sb_error *err)
{
    if (!kr->next)
        return sb_fail(err, SB_E_INTERNAL, "master key rotation: none in progress");
    if (kr->env) {
        sb_warn("msg=\"credentials re-encrypted under the new master key: set %s to the value "
                "of %s and unset %s before the next start\" key_id=%s",
                SB_KEYS_MASTER_ENV, SB_KEYS_NEW_MASTER_ENV, SB_KEYS_NEW_MASTER_ENV, kr->next_id);
        promote(kr);
        return SB_OK;
    }
    if (rename(kr->new_path, kr->path) != 0)
        return sb_fail(err, SB_E_IO, "key file %s: rename over %s: %s", kr->new_path, kr->path,
                       strerror(errno));
    sb_err rc = sync_dir(kr->path, err);
    promote(kr);
    if (rc == SB_OK)
        sb_info("msg=\"master key rotated\" key_id=%s path=%s", kr->cur_id, kr->path);
    return rc;
}
