/* SPDX-License-Identifier: MIT */
/*
 * session.c - console session tokens and derived CSRF tokens (session.h).
 *
 * The CSRF token is HMAC-SHA256 keyed by the session token over a fixed
 * label, encoded like every other token here (43 URL-safe characters); the
 * check recomputes it and compares in constant time.
 */
#include "crypto/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "crypto/secret.h"

#define CSRF_LABEL "switchboard csrf v1"

sb_err sb_session_token_new(char out[SB_TOKEN_LEN + 1], struct sb_error *err)
{
    return sb_vkey_random_token(out, err);
}

bool sb_session_token_looks_valid(struct sb_slice token)
{
    return sb_vkey_is_b64url(token, SB_TOKEN_LEN);
}

void sb_session_token_hash(struct sb_slice token, char out[SB_HASH_TEXT_LEN + 1])
{
    sb_vkey_hash_text(token, out);
}

void sb_session_csrf(struct sb_slice token, char out[SB_CSRF_LEN + 1])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), token.p ? token.p : "", (int)token.len, (const unsigned char *)CSRF_LABEL,
         sizeof(CSRF_LABEL) - 1, mac, &len);
    /* 43 characters of 6 bits from the 256-bit MAC (the last one takes 4). */
    for (int i = 0; i < SB_CSRF_LEN; i++) {
        int bit = i * 6, byte = bit / 8, off = bit % 8;
        unsigned v = (unsigned)mac[byte] << 8 | (byte + 1 < 32 ? mac[byte + 1] : 0);
        out[i] = b64url[(v >> (10 - off)) & 63];
    }
    out[SB_CSRF_LEN] = '\0';
    sb_secret_wipe(mac, sizeof(mac));
}

bool sb_session_csrf_check(struct sb_slice token, struct sb_slice presented)
{
    char want[SB_CSRF_LEN + 1];
    if (!sb_session_token_looks_valid(token) || presented.len != SB_CSRF_LEN)
        return false;
    sb_session_csrf(token, want);
    bool ok = CRYPTO_memcmp(want, presented.p, SB_CSRF_LEN) == 0;
    sb_secret_wipe(want, sizeof(want));
    return ok;
}
