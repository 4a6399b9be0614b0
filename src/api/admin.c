/* SPDX-License-Identifier: MIT */
/*
 * admin.c - master key rotation: POST /api/admin/rotate-key and the steps
 * `switchboard rotate-key` shares (sb_api_rotate).
 *
 * The steps and why each crash point is safe are in crypto/keys.h
 * ("keyring and rotation"): begin writes the next key beside the current
 * one, the store re-encrypts every credential in ONE transaction through a
 * callback (the store never sees a plaintext key, and this file never sees
 * one either: sb_keys_keyring_reencrypt wipes it inside), finish makes the
 * next key the current one. Resuming is the same call: begin keeps a
 * pending next key, and rows already under it are copied unchanged.
 *
 * The endpoint runs under the api mutex, so no other handler encrypts with
 * the old key meanwhile, and the snapshot is rebuilt (c->changed) once the
 * rows are under the new key. A second process on the same database during
 * a rotation is not coordinated (keys.h says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/internal.h"
#include "core/alloc.h"
#include "crypto/keys.h"

/* The store's callback: one row from the key it names to the active key. */
static sb_err rekey_row(void *ud, const struct sb_store_credential *c, char **new_ct,
                        char *new_key_id, struct sb_error *err)
{
    const struct sb_keyring *kr = ud;
    char aad[SB_KEYS_AAD_MAX], kid[17];
    char *out = NULL;
    sb_keys_credential_aad(c->provider, c->user, c->label, aad);
    if (sb_keys_keyring_reencrypt(kr, c->key_id, sb_slice_cstr(c->key_ciphertext),
                                  sb_slice_cstr(aad), &out, kid, err) != SB_OK)
        return err->code;
    if (!out) { /* already under the active key (a resumed rotation): keep it */
        out = sb_xstrdup(c->key_ciphertext);
        sb_keys_keyring_active_id(kr, kid);
    }
    *new_ct = out;
    snprintf(new_key_id, SB_STORE_KEY_ID_MAX, "%s", kid);
    return SB_OK;
}

/* Fault injection (SQLite's way): SWITCHBOARD_FAULT=rotate-after-<step> ends
 * the process right after that step, as a kill would, so the tests can prove
 * every crash point recoverable with the real binary. */
static void fault_point(const char *step)
{
    const char *f = getenv("SWITCHBOARD_FAULT");
    char want[64];
    snprintf(want, sizeof(want), "rotate-after-%s", step);
    if (f && strcmp(f, want) == 0) {
        fprintf(stderr, "switchboard: fault injected: %s\n", want);
        _exit(86);
    }
}

sb_err sb_api_rotate(struct sb_store *s, struct sb_keyring *kr, size_t *n, char key_id[17],
                     struct sb_error *err)
{
    *n = 0;
    if (sb_keys_keyring_begin_rotation(kr, err) != SB_OK)
        return err->code;
    fault_point("begin");
    if (sb_store_rekey(s, rekey_row, kr, n, err) != SB_OK)
        return err->code;
    fault_point("rekey");
    if (sb_keys_keyring_finish_rotation(kr, err) != SB_OK)
        return err->code;
    sb_keys_keyring_active_id(kr, key_id);
    return SB_OK;
}

sb_err sb__api_rotate_key(struct sb_api_call *c)
{
    size_t n = 0;
    char kid[17], before[17];
    if (c->json && !(c->json->type == SB_JSON_OBJECT && c->json->count == 0))
        return sb__api_fail(c, SB_E_BAD_REQUEST, NULL,
                            "rotate-key takes no body: the new key comes from "
                            "SWITCHBOARD_NEW_MASTER_KEY or is generated");
    sb_keys_keyring_active_id(c->api->keyring, before);
    if (sb_api_rotate(c->api->store, c->api->keyring, &n, kid, &c->err) != SB_OK) {
        sb__api_audit(c, "admin.rotate_key", "master_key", before, SB_SLICE_NULL, SB_SLICE_NULL,
                      "failed");
        if (c->err.code == SB_E_CONFIG) /* not set up for it (env mode without a new key) */
            c->err.code = SB_E_CONFLICT;
        return c->err.code;
    }
    c->changed = true;
    sb_jw_obj_begin(&c->jw);
    sb_jw_key(&c->jw, "rotated");
    sb_jw_int(&c->jw, (int64_t)n);
    sb_jw_key(&c->jw, "key_id");
    sb_jw_cstr(&c->jw, kid);
    sb_jw_key(&c->jw, "previous_key_id");
    sb_jw_cstr(&c->jw, before);
    sb_jw_obj_end(&c->jw);
    char *after = sb_arena_printf(c->arena, "{\"key_id\":\"%s\",\"rotated\":%zu}", kid, n);
    char *was = sb_arena_printf(c->arena, "{\"key_id\":\"%s\"}", before);
    sb__api_audit(c, "admin.rotate_key", "master_key", kid, sb_slice_cstr(was),
                  sb_slice_cstr(after), "ok");
    return SB_OK;
}
