/* SPDX-License-Identifier: MIT */
/*
 * password.c - argon2id hashing and verification of login passwords.
 *
 * libargon2 does the work; this file adds the rules, the parameter bounds
 * for stored strings and the dummy verification (password.h explains each).
 * Salts come from OpenSSL's RAND_bytes. A password never reaches a log or
 * an error message, and the copies argon2 needs are its own.
 */
#include "crypto/password.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include "crypto/secret.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define MAX_M_KIB (1024u * 1024u) /* 1 GiB: beyond this a stored hash is refused */
#define MAX_T 16
#define MAX_P 8

const struct sb_password_params sb_password_default = {.m_kib = 19456, .t = 2, .p = 1};

sb_err sb_password_check_rules(struct sb_slice pw, struct sb_error *err)
{
    bool blank = true;
    if (pw.len < SB_PASSWORD_MIN)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "password",
                             "password is too short: use at least %d characters", SB_PASSWORD_MIN);
    if (pw.len > SB_PASSWORD_MAX)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "password",
                             "password is too long: at most %d bytes", SB_PASSWORD_MAX);
    for (size_t i = 0; i < pw.len; i++) {
        if (pw.p[i] == '\0')
            return sb_fail_field(err, SB_E_BAD_REQUEST, "password",
                                 "password must not contain a NUL character");
        if (pw.p[i] != ' ' && pw.p[i] != '\t')
            blank = false;
    }
    if (blank)
        return sb_fail_field(err, SB_E_BAD_REQUEST, "password", "password must not be only spaces");
    return SB_OK;
}

sb_err sb_password_hash_with(const struct sb_password_params *prm, struct sb_slice pw,
                             char out[SB_PASSWORD_HASH_MAX], struct sb_error *err)
{
    unsigned char salt[SALT_LEN];
    out[0] = '\0';
    sb_err rc = sb_password_check_rules(pw, err);
    if (rc != SB_OK)
        return rc;
    if (argon2_encodedlen(prm->t, prm->m_kib, prm->p, SALT_LEN, HASH_LEN, Argon2_id) >
        SB_PASSWORD_HASH_MAX)
        return sb_fail(err, SB_E_INTERNAL, "password hash: parameters too large");
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return sb_fail(err, SB_E_INTERNAL, "password hash: no randomness available");
    int a = argon2id_hash_encoded(prm->t, prm->m_kib, prm->p, pw.p, pw.len, salt, SALT_LEN,
                                  HASH_LEN, out, SB_PASSWORD_HASH_MAX);
    if (a != ARGON2_OK) {
        out[0] = '\0';
        return sb_fail(err, SB_E_INTERNAL, "password hash: argon2id: %s", argon2_error_message(a));
    }
    return SB_OK;
}

sb_err sb_password_hash(struct sb_slice pw, char out[SB_PASSWORD_HASH_MAX], struct sb_error *err)
{
    return sb_password_hash_with(&sb_password_default, pw, out, err);
}

/* Reads "<key>=<decimal>" at *p, advancing past it. */
static bool read_param(const char **p, char key, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s[0] != key || s[1] != '=' || s[2] < '0' || s[2] > '9')
        return false;
    s += 2;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    *p = s;
    return true;
}

bool sb_password_params_of(const char *encoded, struct sb_password_params *out)
{
    static const char head[] = "$argon2id$v=19$";
    if (!encoded || strncmp(encoded, head, sizeof(head) - 1) != 0)
        return false;
    const char *p = encoded + sizeof(head) - 1;
    return read_param(&p, 'm', &out->m_kib) && *p++ == ',' && read_param(&p, 't', &out->t) &&
           *p++ == ',' && read_param(&p, 'p', &out->p) && *p == '$';
}

bool sb_password_verify(const char *encoded, struct sb_slice pw)
{
    struct sb_password_params prm;
    if (!sb_password_params_of(encoded, &prm) || prm.m_kib > MAX_M_KIB || prm.t > MAX_T ||
        prm.p > MAX_P || prm.t < 1 || prm.p < 1)
        return false;
    if (pw.len > SB_PASSWORD_MAX || strlen(encoded) >= SB_PASSWORD_HASH_MAX)
        return false;
    return argon2id_verify(encoded, pw.p ? pw.p : "", pw.len) == ARGON2_OK;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[SB_PASSWORD_HASH_MAX];

/* A hash of a random password nobody knows, made once with the defaults. */
static void make_dummy(void)
{
    unsigned char rnd[24];
    char pw[2 * sizeof(rnd) + 1];
    RAND_bytes(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++) {
        pw[2 * i] = (char)('a' + (rnd[i] & 15));
        pw[2 * i + 1] = (char)('a' + (rnd[i] >> 4));
    }
    pw[sizeof(pw) - 1] = '\0';
    if (sb_password_hash(sb_slice_cstr(pw), dummy_hash, NULL) != SB_OK)
        dummy_hash[0] = '\0';
    sb_secret_wipe(pw, sizeof(pw));
    sb_secret_wipe(rnd, sizeof(rnd));
}

void sb_password_verify_dummy(struct sb_slice pw)
{
    pthread_once(&dummy_once, make_dummy);
    /* An over-long password is refused before hashing by the real path too. */
    (void)sb_password_verify(dummy_hash, pw);
}

bool sb_password_needs_rehash(const char *encoded)
{
    struct sb_password_params prm;
    return !sb_password_params_of(encoded, &prm) || prm.m_kib != sb_password_default.m_kib ||
           prm.t != sb_password_default.t || prm.p != sb_password_default.p;
}
