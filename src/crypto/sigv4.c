/* SPDX-License-Identifier: MIT */
/*
 * sigv4.c - AWS Signature Version 4.
 *
 * Four steps, one chapter each: split the URL, build the canonical request
 * (URI, query, headers, payload hash), build the string to sign, derive the
 * signing key and sign. Scratch text lives in heap sb_bufs that are wiped
 * before they are freed, because the canonical request may carry the
 * session token and the key derivation handles the secret key.
 */
#include "crypto/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "crypto/secret.h"

#define ALGO "AWS4-HMAC-SHA256"

static const char hexdig[] = "0123456789abcdef";

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static void wipe_free(struct sb_buf *b)
{
    if (b->p)
        sb_secret_wipe(b->p, b->cap);
    sb_buf_free(b);
}

/* ==== URL ==== */

struct url_parts {
    struct sb_slice host;  /* authority without a default port */
    struct sb_slice path;  /* "/..." as sent; "/" when the URL has none */
    struct sb_slice query; /* after '?', before '#'; may be empty */
};

static sb_err split_url(struct sb_slice url, struct url_parts *u, struct sb_error *err)
{
    struct sb_slice rest = url;
    size_t i = 0;
    bool https = sb_slice_starts_with(url, SB_SLICE("https://"));
    if (!https && !sb_slice_starts_with(url, SB_SLICE("http://")))
        return sb_fail(err, SB_E_BAD_REQUEST, "sigv4: URL must start with http:// or https://");
    rest.p += https ? 8 : 7;
    rest.len -= https ? 8 : 7;
    while (i < rest.len && rest.p[i] != '/' && rest.p[i] != '?' && rest.p[i] != '#')
        i++;
    u->host = (struct sb_slice){rest.p, i};
    if (u->host.len == 0 || memchr(u->host.p, '@', u->host.len))
        return sb_fail(err, SB_E_BAD_REQUEST, "sigv4: URL has no plain host");
    struct sb_slice port = https ? SB_SLICE(":443") : SB_SLICE(":80");
    if (u->host.len > port.len && memcmp(u->host.p + u->host.len - port.len, port.p, port.len) == 0)
        u->host.len -= port.len; /* curl sends Host without the default port */
    size_t p0 = i;
    while (i < rest.len && rest.p[i] != '?' && rest.p[i] != '#')
        i++;
    u->path = i > p0 ? (struct sb_slice){rest.p + p0, i - p0} : SB_SLICE("/");
    u->query = SB_SLICE_NULL;
    if (i < rest.len && rest.p[i] == '?') {
        size_t q0 = ++i;
        while (i < rest.len && rest.p[i] != '#')
            i++;
        u->query = (struct sb_slice){rest.p + q0, i - q0};
    }
    return SB_OK;
}

/* ==== URI encoding ==== */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void put_encoded(struct sb_buf *b, const char *p, size_t n)
{
    static const char up[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c)) {
            sb_buf_append_char(b, (char)c);
        } else {
            char e[3] = {'%', up[c >> 4], up[c & 15]};
            sb_buf_append(b, e, 3);
        }
    }
}

/* Percent-decodes s (a malformed escape stays literal), then encodes strictly. */
static void put_reencoded(struct sb_buf *b, struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == '%' && i + 2 < s.len && sb_hex_val(s.p[i + 1]) >= 0 &&
            sb_hex_val(s.p[i + 2]) >= 0) {
            c = (char)(sb_hex_val(s.p[i + 1]) * 16 + sb_hex_val(s.p[i + 2]));
            i += 2;
        }
        put_encoded(b, &c, 1);
    }
}

/* ==== canonical URI ==== */

/*
 * Normalises the wire path (RFC 3986 dot segments, no empty segments) and
 * encodes each segment once more. A trailing slash survives when at least
 * one segment does: "//example//" -> "/example/", "//" -> "/".
 */
static void canonical_uri(struct sb_buf *b, struct sb_slice path)
{
    struct sb_slice *seg = sb_xmalloc((path.len / 2 + 1) * sizeof(*seg));
    size_t n = 0, i = 0;
    while (i < path.len) {
        size_t j = i;
        while (j < path.len && path.p[j] != '/')
            j++;
        struct sb_slice s = {path.p + i, j - i};
        if (sb_slice_eq_cstr(s, "..")) {
            if (n)
                n--;
        } else if (s.len && !sb_slice_eq_cstr(s, ".")) {
            seg[n++] = s;
        }
        i = j + 1;
    }
    for (size_t k = 0; k < n; k++) {
        sb_buf_append_char(b, '/');
        put_encoded(b, seg[k].p, seg[k].len);
    }
    if (n == 0 || path.p[path.len - 1] == '/')
        sb_buf_append_char(b, '/');
    free(seg);
}

/* ==== canonical query ==== */

struct qparam {
    size_t off, klen, vlen; /* encoded "k" then "v" at scratch[off..] */
    struct sb_slice k, v;   /* resolved once scratch stops moving */
};

static int qcmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    size_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int c = memcmp(x->k.p, y->k.p, n);
    if (c || x->k.len != y->k.len)
        return c ? c : (x->k.len < y->k.len ? -1 : 1);
    n = x->v.len < y->v.len ? x->v.len : y->v.len;
    c = n ? memcmp(x->v.p, y->v.p, n) : 0;
    if (c || x->v.len == y->v.len)
        return c;
    return x->v.len < y->v.len ? -1 : 1;
}

/* Encodes every "k=v" of q into scratch and records where each landed. */
static size_t collect_query(struct sb_slice q, struct sb_buf *scratch, struct qparam *qp)
{
    size_t n = 0, i = 0;
    while (i < q.len) {
        size_t j = i, eq;
        while (j < q.len && q.p[j] != '&')
            j++;
        eq = i;
        while (eq < j && q.p[eq] != '=')
            eq++;
        if (j > i) {
            qp[n].off = scratch->len;
            put_reencoded(scratch, (struct sb_slice){q.p + i, eq - i});
            qp[n].klen = scratch->len - qp[n].off;
            put_reencoded(scratch,
                          eq < j ? (struct sb_slice){q.p + eq + 1, j - eq - 1} : SB_SLICE_NULL);
            qp[n].vlen = scratch->len - qp[n].off - qp[n].klen;
            n++;
        }
        i = j + 1;
    }
    return n;
}

static void canonical_query(struct sb_buf *b, struct sb_slice q)
{
    struct sb_buf scratch;
    struct qparam *qp = sb_xmalloc((q.len / 2 + 1) * sizeof(*qp));
    sb_buf_init(&scratch, 0);
    size_t n = collect_query(q, &scratch, qp);
    for (size_t i = 0; i < n; i++) {
        qp[i].k = (struct sb_slice){scratch.p + qp[i].off, qp[i].klen};
        qp[i].v = (struct sb_slice){scratch.p + qp[i].off + qp[i].klen, qp[i].vlen};
    }
    qsort(qp, n, sizeof(*qp), qcmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_buf_append_char(b, '&');
        sb_buf_append_slice(b, qp[i].k);
        sb_buf_append_char(b, '=');
        sb_buf_append_slice(b, qp[i].v);
    }
    sb_buf_free(&scratch);
    free(qp);
}

/* ==== canonical headers ==== */

static int name_cmp(struct sb_slice a, struct sb_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        int x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        x = (x >= 'A' && x <= 'Z') ? x + 32 : x;
        y = (y >= 'A' && y <= 'Z') ? y + 32 : y;
        if (x != y)
            return x - y;
    }
    return a.len == b.len ? 0 : (a.len < b.len ? -1 : 1);
}

/* Stable insertion sort by lower-cased name: values of a repeated header keep their order. */
static void sort_headers(struct sb_sigv4_header *h, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct sb_sigv4_header x = h[i];
        size_t j = i;
        while (j > 0 && name_cmp(h[j - 1].name, x.name) > 0) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = x;
    }
}

static void put_lower(struct sb_buf *b, struct sb_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        sb_buf_append_char(b, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
    }
}

/* Trims the value and squeezes runs of blanks into one space. */
static void put_trimmed(struct sb_buf *b, struct sb_slice v)
{
    bool blank = false, any = false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (c == ' ' || c == '\t') {
            blank = true;
            continue;
        }
        if (blank && any)
            sb_buf_append_char(b, ' ');
        sb_buf_append_char(b, c);
        blank = false;
        any = true;
    }
}

/* Writes "name:v1,v2\n" lines into b and "a;b;c" into signed_hdrs. */
static void put_headers(struct sb_buf *b, struct sb_buf *signed_hdrs, struct sb_sigv4_header *h,
                        size_t n)
{
    sort_headers(h, n);
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && name_cmp(h[i - 1].name, h[i].name) == 0;
        if (same) {
            sb_buf_append_char(b, ',');
        } else {
            if (i > 0) {
                sb_buf_append_char(b, '\n');
                sb_buf_append_char(signed_hdrs, ';');
            }
            put_lower(b, h[i].name);
            put_lower(signed_hdrs, h[i].name);
            sb_buf_append_char(b, ':');
        }
        put_trimmed(b, h[i].value);
    }
    if (n)
        sb_buf_append_char(b, '\n');
}

/* ==== canonical request ==== */

static bool has_header(const struct sb_sigv4_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (sb_slice_caseeq(r->headers[i].name, sb_slice_cstr(name)))
            return true;
    return false;
}

/* The headers we sign: the caller's plus host and the x-amz ones. h has room for nheaders + 4. */
static size_t signed_set(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                         const struct url_parts *u, const char *amz_date, const char *payload,
                         struct sb_sigv4_header *h)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        h[n++] = r->headers[i];
    if (!has_header(r, "host"))
        h[n++] = (struct sb_sigv4_header){SB_SLICE("host"), u->host};
    h[n++] = (struct sb_sigv4_header){SB_SLICE("x-amz-date"), sb_slice_cstr(amz_date)};
    if (p->content_sha256)
        h[n++] = (struct sb_sigv4_header){SB_SLICE("x-amz-content-sha256"), {payload, 64}};
    if (p->session_token.len)
        h[n++] = (struct sb_sigv4_header){SB_SLICE("x-amz-security-token"), p->session_token};
    return n;
}

static sb_err build_canonical(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                              const char *amz_date, const char *payload, struct sb_buf *out,
                              struct sb_buf *signed_hdrs, struct sb_error *err)
{
    struct url_parts u;
    memset(&u, 0, sizeof(u));
    if (r->method.len == 0)
        return sb_fail(err, SB_E_BAD_REQUEST, "sigv4: no HTTP method");
    sb_err rc = split_url(r->url, &u, err);
    if (rc != SB_OK)
        return rc;
    struct sb_sigv4_header *h = sb_xmalloc((r->nheaders + 4) * sizeof(*h));
    size_t n = signed_set(r, p, &u, amz_date, payload, h);
    sb_buf_reset(out);
    sb_buf_append_slice(out, r->method);
    sb_buf_append_char(out, '\n');
    canonical_uri(out, u.path);
    sb_buf_append_char(out, '\n');
    canonical_query(out, u.query);
    sb_buf_append_char(out, '\n');
    put_headers(out, signed_hdrs, h, n);
    sb_buf_append_char(out, '\n');
    sb_buf_append_slice(out, sb_buf_slice(signed_hdrs));
    sb_buf_append_char(out, '\n');
    sb_buf_append(out, payload, 64);
    free(h);
    return SB_OK;
}

sb_err sb_sigv4_canonical_request(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                                  const char *amz_date, struct sb_buf *out, struct sb_error *err)
{
    char payload[65];
    struct sb_buf signed_hdrs;
    sha256_hex(r->body.p ? r->body.p : "", r->body.len, payload);
    sb_buf_init(&signed_hdrs, 0);
    sb_err rc = build_canonical(r, p, amz_date, payload, out, &signed_hdrs, err);
    sb_buf_free(&signed_hdrs);
    return rc;
}

/* ==== signing ==== */

static void hmac(const void *key, size_t klen, struct sb_slice msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg.p, msg.len, out, &len);
}

/* signature = HMAC(kSigning, sts) with kSigning derived from the secret key. */
static void signature(const struct sb_sigv4_params *p, struct sb_slice date, struct sb_slice sts,
                      char out[65])
{
    struct sb_buf k0;
    unsigned char k1[32], k2[32], sig[32];
    sb_buf_init(&k0, 0);
    sb_buf_append_cstr(&k0, "AWS4");
    sb_buf_append_slice(&k0, p->secret_key);
    hmac(k0.p, k0.len, date, k1);
    hmac(k1, 32, p->region, k2);
    hmac(k2, 32, p->service, k1);
    hmac(k1, 32, SB_SLICE("aws4_request"), k2);
    hmac(k2, 32, sts, sig);
    hex(sig, 32, out);
    sb_secret_wipe(k1, sizeof(k1));
    sb_secret_wipe(k2, sizeof(k2));
    wipe_free(&k0);
}

static sb_err check_params(const struct sb_sigv4_params *p, struct sb_error *err)
{
    if (!p->region.len || !p->service.len)
        return sb_fail(err, SB_E_CONFIG, "sigv4: region and service are required");
    if (!p->access_key_id.len || !p->secret_key.len)
        return sb_fail(err, SB_E_CONFIG, "sigv4: AWS access key id and secret key are required");
    return SB_OK;
}

static void amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Fills out->headers from the pieces; values are copied into a. */
static void emit(struct sb_arena *a, const struct sb_sigv4_params *p, const char *date,
                 const char *payload, struct sb_slice signed_hdrs, const char *sig,
                 struct sb_sigv4_result *out)
{
    size_t n = 0;
    char *auth = sb_arena_printf(a,
                                 ALGO " Credential=%.*s/%.8s/%.*s/%.*s/aws4_request, "
                                      "SignedHeaders=%.*s, Signature=%s",
                                 SB_FMT(p->access_key_id), date, SB_FMT(p->region),
                                 SB_FMT(p->service), SB_FMT(signed_hdrs), sig);
    out->headers[n++] = (struct sb_sigv4_header){SB_SLICE("Authorization"), sb_slice_cstr(auth)};
    out->headers[n++] =
        (struct sb_sigv4_header){SB_SLICE("X-Amz-Date"), sb_arena_slice(a, sb_slice_cstr(date))};
    if (p->content_sha256)
        out->headers[n++] = (struct sb_sigv4_header){
            SB_SLICE("X-Amz-Content-Sha256"), sb_arena_slice(a, (struct sb_slice){payload, 64})};
    if (p->session_token.len)
        out->headers[n++] =
            (struct sb_sigv4_header){SB_SLICE("X-Amz-Security-Token"), p->session_token};
    out->nheaders = n;
}

sb_err sb_sigv4_sign(const struct sb_sigv4_request *r, const struct sb_sigv4_params *p,
                     struct sb_arena *a, struct sb_sigv4_result *out, struct sb_error *err)
{
    char date[17], payload[65], creq_hash[65], sig[65];
    struct sb_buf creq, signed_hdrs, sts;
    sb_err rc = check_params(p, err);
    if (rc != SB_OK)
        return rc;
    amz_date(p->time, date);
    sha256_hex(r->body.p ? r->body.p : "", r->body.len, payload);
    sb_buf_init(&creq, 0);
    sb_buf_init(&signed_hdrs, 0);
    sb_buf_init(&sts, 0);
    rc = build_canonical(r, p, date, payload, &creq, &signed_hdrs, err);
    if (rc == SB_OK) {
        sha256_hex(creq.p, creq.len, creq_hash);
        sb_buf_printf(&sts, ALGO "\n%s\n%.8s/%.*s/%.*s/aws4_request\n%s", date, date,
                      SB_FMT(p->region), SB_FMT(p->service), creq_hash);
        signature(p, (struct sb_slice){date, 8}, sb_buf_slice(&sts), sig);
        emit(a, p, date, payload, sb_buf_slice(&signed_hdrs), sig, out);
    }
    wipe_free(&creq);
    sb_buf_free(&signed_hdrs);
    sb_buf_free(&sts);
    return rc;
}
