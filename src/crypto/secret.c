/* SPDX-License-Identifier: MIT */
/*
 * secret.c - wiped-on-free credential storage.
 */
#include "crypto/secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct sb_secret {
    size_t len;   /* bytes of plaintext */
    char bytes[]; /* plaintext, NUL-terminated for C APIs */
};

struct sb_secret *sb_secret_new(const char *p, size_t n)
{
    struct sb_secret *s = sb_xmalloc(sizeof(*s) + n + 1);
    s->len = n;
    if (n)
        memcpy(s->bytes, p, n);
    s->bytes[n] = '\0';
    return s;
}

void sb_secret_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

void sb_secret_free(struct sb_secret *s)
{
    if (!s)
        return;
    sb_secret_wipe(s->bytes, s->len);
    free(s);
}

struct sb_slice sb_secret_reveal(const struct sb_secret *s)
{
    return (struct sb_slice){s->bytes, s->len};
}

void sb_secret_mask(const struct sb_secret *s, char out[32])
{
    if (!s || s->len < 12) { /* shorter: four characters would be too much of it */
        snprintf(out, 32, "****");
        return;
    }
    /* Keep the vendor's prefix ("sk-", "gsk_", "hf_", "nvapi-": letters then
     * '-' or '_', at most 6 characters, public by design) and the last 4. */
    size_t pre = 0;
    while (pre < 6 && pre < s->len - 4 &&
           ((s->bytes[pre] >= 'a' && s->bytes[pre] <= 'z') ||
            (s->bytes[pre] >= 'A' && s->bytes[pre] <= 'Z')))
        pre++;
    if (pre > 0 && pre + 10 <= s->len && (s->bytes[pre] == '-' || s->bytes[pre] == '_'))
        pre++;
    else
        pre = 0;
    snprintf(out, 32, "%.*s\xe2\x80\xa6%.4s", (int)pre, s->bytes, s->bytes + s->len - 4);
}

void sb_secret_fingerprint(const struct sb_secret *s, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s ? s->bytes : "", s ? s->len : 0, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    sb_secret_wipe(md, sizeof(md));
}
