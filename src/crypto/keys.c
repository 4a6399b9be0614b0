/* SPDX-License-Identifier: MIT */
/*
 * keys.c - master key loading, AES-256-GCM for credentials, admin token.
 *
 * Everything here handles secrets, so: every buffer that held key material
 * or a plaintext is wiped before it is released, error messages name the
 * source of a bad key but never echo it, and comparisons of secret-derived
 * bytes are constant time. OpenSSL 3 provides the primitives (EVP only, no
 * deprecated low-level calls). Base64 is our own strict codec: OpenSSL's
 * EVP_DecodeBlock accepts junk and miscounts padding.
 *
 * Chapters: base64 · master key · encryption · admin token. The keyring
 * and rotation protocol built on these live in keyring.c.
 */
#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_PLAINTEXT (64 * 1024)
#define KEY_FILE_MAX 1024 /* a key file is ~45 bytes; anything big is not one */
#define ADMIN_PREFIX "sb-admin-"
#define ADMIN_RANDOM 32  /* URL-safe characters after the prefix */
#define ADMIN_MIN_LEN 16 /* shorter SWITCHBOARD_ADMIN_TOKEN values get a warning */

struct sb_master_key {
    unsigned char k[KEY_LEN]; /* the AES-256 key; wiped on free */
};

/* ---- base64 ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard alphabet with padding. Returns owned NUL-terminated text. */
static char *b64_encode(const unsigned char *p, size_t n)
{
    char *out = sb_xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* Strict decode: standard alphabet, padding optional but exact when present,
 * unused trailing bits zero (one text per byte string). Writes at most cap
 * bytes; false on anything malformed or too long. */
static bool b64_decode(struct sb_slice s, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t n = s.len;
    while (n > 0 && s.p[n - 1] == '=' && s.len - n < 2)
        n--;
    size_t pad = s.len - n;
    if (n % 4 == 1 || (pad && (s.len % 4 != 0)))
        return false;
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (len > cap)
        return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s.p[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return false;
    *outlen = o;
    return true;
}

static struct sb_slice trim(struct sb_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\n' || s.p[0] == '\r')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' || s.p[s.len - 1] == '\n' ||
                     s.p[s.len - 1] == '\r'))
        s.len--;
    return s;
}

/* ---- master key ---- */

sb_err sb_keys_master_from_base64(struct sb_slice b64, const char *what, struct sb_master_key **out,
                                  struct sb_error *err)
{
    unsigned char raw[KEY_LEN + 3]; /* room past 32 tells "wrong length" apart from junk */
    size_t n = 0;
    sb_err rc = SB_OK;
    *out = NULL;
    b64 = trim(b64);
    if (!b64_decode(b64, raw, sizeof(raw), &n))
        rc = sb_fail(
            err, SB_E_CONFIG,
            "%s: %s; need base64 of exactly 32 bytes (make one with: openssl rand -base64 32)",
            what, b64.len > 48 ? "longer than a master key" : "not valid base64");
    else if (n != KEY_LEN)
        rc = sb_fail(err, SB_E_CONFIG,
                     "%s: decodes to %zu bytes; a master key is exactly 32 bytes "
                     "(make one with: openssl rand -base64 32)",
                     what, n);
    if (rc == SB_OK) {
        *out = sb_xmalloc(sizeof(**out));
        memcpy((*out)->k, raw, KEY_LEN);
    }
    sb_secret_wipe(raw, sizeof(raw));
    return rc;
}

void sb_keys_master_free(struct sb_master_key *k)
{
    if (!k)
        return;
    sb_secret_wipe(k->k, sizeof(k->k));
    free(k);
}

void sb_keys_master_id(const struct sb_master_key *k, char out[17])
{
    static const char label[] = "switchboard master key id";
    unsigned char in[sizeof(label) + KEY_LEN], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    memcpy(in, label, sizeof(label));
    memcpy(in + sizeof(label), k->k, KEY_LEN);
    EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha256(), NULL);
    sb_secret_wipe(in, sizeof(in));
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

sb_err sb_keys_master_generate(struct sb_master_key **out, struct sb_error *err)
{
    *out = sb_xmalloc(sizeof(**out));
    if (RAND_bytes((*out)->k, KEY_LEN) == 1)
        return SB_OK;
    free(*out);
    *out = NULL;
    return sb_fail(err, SB_E_INTERNAL, "master key: no randomness available");
}

sb_err sb_keys_master_write_file(const struct sb_master_key *k, const char *path,
                                 struct sb_error *err)
{
    char *text = b64_encode(k->k, KEY_LEN);
    size_t len = strlen(text);
    sb_err rc = SB_OK;
    text[len] = '\n'; /* overwrites the NUL: written as len + 1 bytes, never read as a string */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = errno == EEXIST
                 ? sb_fail(err, SB_E_CONFLICT, "key file %s: already exists", path)
                 : sb_fail(err, SB_E_IO, "key file %s: create: %s", path, strerror(errno));
        goto out;
    }
    bool ok = write(fd, text, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
    if (close(fd) != 0 || !ok) {
        rc = sb_fail(err, SB_E_IO, "key file %s: write: %s", path, strerror(errno));
        unlink(path);
    }
out:
    sb_secret_wipe(text, len + 1);
    free(text);
    return rc;
}

/* Writes a fresh random key to path, failing if the file exists (O_EXCL).
 * SB_AGAIN when someone else created it first. */
static sb_err create_key_file(const char *path, struct sb_error *err)
{
    struct sb_master_key *k = NULL;
    sb_err rc = sb_keys_master_generate(&k, err);
    if (rc == SB_OK)
        rc = sb_keys_master_write_file(k, path, err);
    sb_keys_master_free(k);
    if (rc == SB_E_CONFLICT)
        return SB_AGAIN;
    if (rc == SB_OK)
        sb_warn("msg=\"created a new master key file; back it up: without it stored credentials "
                "cannot be decrypted\" path=%s mode=0600",
                path);
    return rc;
}

/* Opens an existing key file, refusing unsafe ones. -1 with errno ENOENT when absent. */
static int open_key_file(const char *path, struct sb_error *err, sb_err *rc)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *rc = errno == ENOENT ? SB_OK
                              : sb_fail(err, SB_E_IO, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    *rc = SB_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        *rc = sb_fail(err, SB_E_CONFIG, "key file %s: not a regular file", path);
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        *rc = sb_fail(err, SB_E_CONFIG,
                      "key file %s: mode %03o lets group or others access it; "
                      "run: chmod 600 %s",
                      path, (unsigned)(st.st_mode & 0777), path);
    else if (st.st_size > KEY_FILE_MAX)
        *rc = sb_fail(err, SB_E_CONFIG, "key file %s: too large to be a key file", path);
    if (*rc != SB_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

static sb_err read_key_file(int fd, const char *path, struct sb_master_key **out,
                            struct sb_error *err)
{
    char buf[KEY_FILE_MAX + 1];
    char what[300];
    ssize_t n = read(fd, buf, sizeof(buf));
    sb_err rc;
    snprintf(what, sizeof(what), "key file %s", path);
    if (n < 0)
        rc = sb_fail(err, SB_E_IO, "%s: read: %s", what, strerror(errno));
    else
        rc = sb_keys_master_from_base64((struct sb_slice){buf, (size_t)n}, what, out, err);
    sb_secret_wipe(buf, sizeof(buf));
    return rc;
}

sb_err sb_keys_master_read_file(const char *path, struct sb_master_key **out, struct sb_error *err)
{
    sb_err rc = SB_OK;
    *out = NULL;
    int fd = open_key_file(path, err, &rc);
    if (fd < 0)
        return rc != SB_OK ? rc : sb_fail(err, SB_E_NOT_FOUND, "key file %s: not found", path);
    rc = read_key_file(fd, path, out, err);
    close(fd);
    return rc;
}

sb_err sb_keys_master_load(const char *path, struct sb_master_key **out, struct sb_error *err)
{
    const char *env = getenv(SB_KEYS_MASTER_ENV);
    *out = NULL;
    if (env && *env)
        return sb_keys_master_from_base64(sb_slice_cstr(env), SB_KEYS_MASTER_ENV, out, err);
    if (!path)
        path = SB_KEYS_DEFAULT_FILE;
    /* Two tries: a concurrent first start may create the file between our
     * open and our O_EXCL create (SB_AGAIN), then we read theirs. */
    for (int attempt = 0; attempt < 2; attempt++) {
        sb_err rc = SB_OK;
        int fd = open_key_file(path, err, &rc);
        if (fd >= 0) {
            rc = read_key_file(fd, path, out, err);
            close(fd);
            return rc;
        }
        if (rc != SB_OK)
            return rc;
        rc = create_key_file(path, err);
        if (rc != SB_OK && rc != SB_AGAIN)
            return rc;
    }
    return sb_fail(err, SB_E_IO, "key file %s: could not be read or created", path);
}

/* ---- encryption ---- */

static sb_err gcm_seal(const struct sb_master_key *k, const unsigned char *nonce,
                       struct sb_slice pt, struct sb_slice aad, unsigned char *ct,
                       unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_EncryptInit_ex(c, NULL, NULL, k->k, nonce) == 1 &&
              (aad.len == 0 ||
               EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)aad.p, (int)aad.len) == 1) &&
              EVP_EncryptUpdate(c, ct, &len, (const unsigned char *)pt.p, (int)pt.len) == 1 &&
              EVP_EncryptFinal_ex(c, ct + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? SB_OK : SB_E_INTERNAL;
}

sb_err sb_keys_encrypt(const struct sb_master_key *k, struct sb_slice plaintext,
                       struct sb_slice aad, char **out, struct sb_error *err)
{
    *out = NULL;
    if (plaintext.len > MAX_PLAINTEXT || aad.len > MAX_PLAINTEXT)
        return sb_fail(err, SB_E_TOO_LARGE, "credential longer than %d bytes", MAX_PLAINTEXT);
    size_t n = NONCE_LEN + plaintext.len + TAG_LEN;
    unsigned char *blob = sb_xmalloc(n);
    sb_err rc = SB_OK;
    if (RAND_bytes(blob, NONCE_LEN) != 1)
        rc = sb_fail(err, SB_E_INTERNAL, "encrypt: no randomness available");
    else if (gcm_seal(k, blob, plaintext, aad, blob + NONCE_LEN,
                      blob + NONCE_LEN + plaintext.len) != SB_OK)
        rc = sb_fail(err, SB_E_INTERNAL, "encrypt: AES-256-GCM failed");
    else
        *out = b64_encode(blob, n);
    free(blob);
    return rc;
}

static bool gcm_open(const struct sb_master_key *k, const unsigned char *blob, size_t ctlen,
                     struct sb_slice aad, unsigned char *pt)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    const unsigned char *ct = blob + NONCE_LEN;
    /* The tag is set before Final, which is where GCM verifies it. */
    bool ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
              EVP_DecryptInit_ex(c, NULL, NULL, k->k, blob) == 1 &&
              (aad.len == 0 ||
               EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)aad.p, (int)aad.len) == 1) &&
              EVP_DecryptUpdate(c, pt, &len, ct, (int)ctlen) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(ct + ctlen)) == 1 &&
              EVP_DecryptFinal_ex(c, pt + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

sb_err sb_keys_decrypt(const struct sb_master_key *k, struct sb_slice b64, struct sb_slice aad,
                       struct sb_secret **out, struct sb_error *err)
{
    size_t cap = NONCE_LEN + MAX_PLAINTEXT + TAG_LEN, n = 0;
    unsigned char *blob = sb_xmalloc(cap), *pt = NULL;
    sb_err rc = SB_OK;
    *out = NULL;
    if (aad.len > MAX_PLAINTEXT || !b64_decode(trim(b64), blob, cap, &n) ||
        n < NONCE_LEN + TAG_LEN) {
        rc = sb_fail(err, SB_E_CONFIG, "stored credential is not a valid ciphertext");
        goto out;
    }
    size_t ctlen = n - NONCE_LEN - TAG_LEN;
    pt = sb_xmalloc(ctlen + 1);
    if (!gcm_open(k, blob, ctlen, aad, pt)) {
        rc = sb_fail(err, SB_E_CONFIG,
                     "stored credential failed authentication: wrong master key, or the data "
                     "was altered");
        goto out;
    }
    *out = sb_secret_new((const char *)pt, ctlen);
out:
    if (pt) {
        sb_secret_wipe(pt, n - NONCE_LEN - TAG_LEN);
        free(pt);
    }
    free(blob);
    return rc;
}

/* ---- admin token ---- */

static void sha256(struct sb_slice s, unsigned char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(s.p ? s.p : "", s.len, md, &len, EVP_sha256(), NULL);
    memcpy(out, md, 32);
}

static void format_stored(const struct sb_admin_hash *h, char out[72])
{
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", h->digest[i]);
}

bool sb_keys_admin_parse(const char *stored, struct sb_admin_hash *out)
{
    if (!stored || strncmp(stored, "sha256:", 7) != 0 || strlen(stored) != 7 + 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = sb_hex_val(stored[7 + 2 * i]), lo = sb_hex_val(stored[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        out->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

bool sb_keys_check_admin(const struct sb_admin_hash *h, struct sb_slice token)
{
    unsigned char d[32];
    sha256(token, d);
    return CRYPTO_memcmp(d, h->digest, sizeof(d)) == 0;
}

/* "sb-admin-" + 32 characters of the URL-safe alphabet; 64 divides 256, so
 * taking 6 bits of each random byte is uniform. */
static sb_err generate_token(char out[sizeof(ADMIN_PREFIX) + ADMIN_RANDOM], struct sb_error *err)
{
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[ADMIN_RANDOM];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return sb_fail(err, SB_E_INTERNAL, "admin token: no randomness available");
    memcpy(out, ADMIN_PREFIX, sizeof(ADMIN_PREFIX) - 1);
    for (int i = 0; i < ADMIN_RANDOM; i++)
        out[sizeof(ADMIN_PREFIX) - 1 + i] = url[rnd[i] & 63];
    out[sizeof(ADMIN_PREFIX) - 1 + ADMIN_RANDOM] = '\0';
    sb_secret_wipe(rnd, sizeof(rnd));
    return SB_OK;
}

sb_err sb_keys_admin_setup(const char *stored, struct sb_admin_setup *out, struct sb_error *err)
{
    const char *env = getenv(SB_KEYS_ADMIN_ENV);
    memset(out, 0, sizeof(*out));
    if (env && *env) {
        if (strlen(env) < ADMIN_MIN_LEN)
            sb_warn("msg=\"%s is short; use at least %d random characters\"", SB_KEYS_ADMIN_ENV,
                    ADMIN_MIN_LEN);
        sha256(sb_slice_cstr(env), out->hash.digest);
        format_stored(&out->hash, out->stored);
        out->changed = !stored || strcmp(stored, out->stored) != 0;
        return SB_OK;
    }
    if (stored) {
        if (!sb_keys_admin_parse(stored, &out->hash))
            return sb_fail(err, SB_E_CONFIG,
                           "settings %s is malformed; set %s to replace the admin token",
                           SB_KEYS_ADMIN_SETTING, SB_KEYS_ADMIN_ENV);
        format_stored(&out->hash, out->stored);
        return SB_OK;
    }
    char tok[sizeof(ADMIN_PREFIX) + ADMIN_RANDOM];
    sb_err rc = generate_token(tok, err);
    if (rc != SB_OK)
        return rc;
    sha256(sb_slice_cstr(tok), out->hash.digest);
    format_stored(&out->hash, out->stored);
    out->changed = true;
    out->generated = sb_secret_new(tok, strlen(tok));
    sb_secret_wipe(tok, sizeof(tok));
    return SB_OK;
}

bool sb_keys_equal(struct sb_slice a, struct sb_slice b)
{
    return a.len == b.len && (a.len == 0 || CRYPTO_memcmp(a.p, b.p, a.len) == 0);
}

void sb_keys_credential_aad(const char *provider, const char *user, const char *label,
                            char out[SB_KEYS_AAD_MAX])
{
    if (label && *label) /* a pool member: '#' appears in no provider id or user name */
        snprintf(out, SB_KEYS_AAD_MAX, "%s#%s", provider, label);
    else if (user)
        snprintf(out, SB_KEYS_AAD_MAX, "%s/%s", provider, user);
    else
        snprintf(out, SB_KEYS_AAD_MAX, "%s", provider);
}
