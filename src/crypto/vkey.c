/* SPDX-License-Identifier: MIT */
/*
 * vkey.c - virtual keys and the random tokens sessions share (vkey.h).
 *
 * 32 random bytes become 43 characters of the URL-safe base64 alphabet
 * (RFC 4648 §5, unpadded): 42 full 6-bit groups and a last character
 * carrying the final 4 bits (its low 2 bits zero). Generated buffers that
 * held randomness are wiped; the text is the caller's to wipe.
 */
#include "crypto/vkey.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "crypto/secret.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool sb_vkey_is_b64url(struct sb_slice s, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_b64url_char(s.p[i]))
            return false;
    return true;
}

/* Encodes 32 bytes as 43 characters + NUL. */
static void encode32(const unsigned char in[32], char out[SB_TOKEN_LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < 30; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    unsigned v = (unsigned)in[30] << 8 | in[31]; /* 16 bits: 6 + 6 + 4 */
    out[o++] = b64url[(v >> 10) & 63];
    out[o++] = b64url[(v >> 4) & 63];
    out[o++] = b64url[(v << 2) & 63];
    out[o] = '\0';
}

sb_err sb_vkey_random_token(char out[SB_TOKEN_LEN + 1], struct sb_error *err)
{
    unsigned char rnd[32];
    out[0] = '\0';
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return sb_fail(err, SB_E_INTERNAL, "token: no randomness available");
    encode32(rnd, out);
    sb_secret_wipe(rnd, sizeof(rnd));
    return SB_OK;
}

sb_err sb_vkey_generate(char out[SB_VKEY_LEN + 1], struct sb_error *err)
{
    char tok[SB_TOKEN_LEN + 1];
    out[0] = '\0';
    sb_err rc = sb_vkey_random_token(tok, err);
    if (rc != SB_OK)
        return rc;
    memcpy(out, SB_VKEY_PREFIX, 6);
    memcpy(out + 6, tok, SB_TOKEN_LEN + 1);
    sb_secret_wipe(tok, sizeof(tok));
    return SB_OK;
}

bool sb_vkey_looks_valid(struct sb_slice key)
{
    if (key.len != SB_VKEY_LEN || memcmp(key.p, SB_VKEY_PREFIX, 6) != 0)
        return false;
    struct sb_slice rest = {key.p + 6, SB_VKEY_RANDOM_LEN};
    return sb_vkey_is_b64url(rest, SB_VKEY_RANDOM_LEN);
}

/* SHA-256 fetched from the provider once: EVP_sha256() makes every digest
 * look the algorithm up again (a lock and a table), 310 ns a hash against
 * 112 here, and every /v1 request with a virtual key hashes it. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void sb_vkey_hash(struct sb_slice key, struct sb_vkey_hash *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    pthread_once(&sha256_once, fetch_sha256);
    EVP_Digest(key.p ? key.p : "", key.len, md, &len, sha256_md ? sha256_md : EVP_sha256(), NULL);
    memcpy(out->digest, md, sizeof(out->digest));
}

void sb_vkey_hash_format(const struct sb_vkey_hash *h, char out[SB_HASH_TEXT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[h->digest[i] >> 4];
        out[8 + 2 * i] = hex[h->digest[i] & 15];
    }
    out[SB_HASH_TEXT_LEN] = '\0';
}

bool sb_vkey_hash_parse(const char *stored, struct sb_vkey_hash *out)
{
    if (!stored || strncmp(stored, "sha256:", 7) != 0 || strlen(stored) != SB_HASH_TEXT_LEN)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = sb_hex_val(stored[7 + 2 * i]), lo = sb_hex_val(stored[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        out->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

bool sb_vkey_hash_eq(const struct sb_vkey_hash *a, const struct sb_vkey_hash *b)
{
    return CRYPTO_memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

void sb_vkey_prefix(struct sb_slice key, char out[SB_VKEY_PREFIX_LEN + 1])
{
    size_t n = key.len < SB_VKEY_PREFIX_LEN ? key.len : SB_VKEY_PREFIX_LEN;
    if (n)
        memcpy(out, key.p, n);
    out[n] = '\0';
}

void sb_vkey_mask(const char *prefix, char out[32])
{
    snprintf(out, 32, "%.*s\xe2\x80\xa6", SB_VKEY_PREFIX_LEN, prefix ? prefix : "");
}

void sb_vkey_hash_text(struct sb_slice s, char out[SB_HASH_TEXT_LEN + 1])
{
    struct sb_vkey_hash h;
    sb_vkey_hash(s, &h);
    sb_vkey_hash_format(&h, out);
}
