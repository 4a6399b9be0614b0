/* SPDX-License-Identifier: MIT */
/*
 * probe.c - a connection test: DNS, connect, TLS, then the provider's own
 * requests, each step timed and diagnosed in one sentence.
 *
 * It blocks (getaddrinfo, then libcurl's easy interface) and so runs only
 * on a control-plane thread that holds no lock. The DNS step is ours, not
 * curl's: the addresses it finds are what the SSRF guard checks for
 * non-admins and what curl is pinned to (CURLOPT_RESOLVE), so a name cannot
 * resolve to a public address for the check and a private one for the
 * connection. Requests come from the adapter (build_request), so the test
 * sends exactly what traffic sends; the listing reuses the chat request's
 * headers (auth included) and query, with ops->models_path as the path.
 * CA handling and proxies follow the upstream client (SWITCHBOARD_CA_FILE;
 * *_proxy variables apply only when set). Every copy of a credential this
 * file makes is wiped: arena strings by a hook, curl's header list before
 * it is freed.
 *
 * Chapters: diagnosis (pure) · listings and redaction (pure) · one transfer
 * · the steps · the result as JSON.
 */
#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/probe.h"
#include "core/buf.h"
#include "core/netaddr.h"
#include "crypto/secret.h"
#include "net/ssrf.h"

#define MAX_ADDRS 8

/* ======================================================================
 * Diagnosis (pure)
 * ==================================================================== */

const char *sb__probe_stage_name(enum sb_probe_stage s)
{
    static const char *const names[] = {"dns", "connect", "tls", "auth", "model", "done"};
    return s <= SB_PROBE_DONE ? names[s] : "done";
}

/* Failures by curl code; stage -1 means "the request stage" (AUTH or MODEL). */
static const struct {
    int code;
    int stage;
    const char *what;
} curl_failures[] = {
    {CURLE_COULDNT_RESOLVE_HOST, SB_PROBE_DNS, "DNS lookup failed"},
    {CURLE_SSL_CONNECT_ERROR, SB_PROBE_TLS, "TLS handshake failed"},
    {CURLE_PEER_FAILED_VERIFICATION, SB_PROBE_TLS, "TLS: certificate verify failed"},
    {CURLE_SSL_CACERT_BADFILE, SB_PROBE_TLS,
     "TLS: the CA file (SWITCHBOARD_CA_FILE) is unreadable"},
    {CURLE_SSL_CERTPROBLEM, SB_PROBE_TLS, "TLS: client certificate problem"},
    {CURLE_SSL_CIPHER, SB_PROBE_TLS, "TLS: no cipher in common"},
    {CURLE_SSL_ISSUER_ERROR, SB_PROBE_TLS, "TLS: certificate issuer check failed"},
    {CURLE_GOT_NOTHING, -1, "the server closed the connection without answering"},
    {CURLE_RECV_ERROR, -1, "the connection broke while reading the answer"},
    {CURLE_SEND_ERROR, -1, "the connection broke while sending the request"},
    {CURLE_WEIRD_SERVER_REPLY, -1, "the server's answer is not HTTP"},
    {CURLE_WRITE_ERROR, -1, "the answer is larger than 4 MiB"},
};

static void say(struct sb_probe_result *r, enum sb_probe_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct sb_probe_result *r, enum sb_probe_stage stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->diagnosis, sizeof(r->diagnosis), fmt, ap);
    va_end(ap);
    r->stage = stage;
    r->ok = stage == SB_PROBE_DONE;
}

static void connect_failure(long os_errno, const char *detail, const char *hostport,
                            struct sb_probe_result *r)
{
    if (os_errno == ECONNREFUSED)
        say(r, SB_PROBE_CONNECT, "connection refused by %s", hostport);
    else if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH)
        say(r, SB_PROBE_CONNECT, "%s is unreachable (%s)", hostport, strerror((int)os_errno));
    else
        say(r, SB_PROBE_CONNECT, "could not connect to %s (%s)", hostport,
            os_errno ? strerror((int)os_errno) : detail);
}

static void timeout_failure(bool https, const struct sb_probe_times *tm, long timeout_ms,
                            const char *hostport, enum sb_probe_stage at_request,
                            struct sb_probe_result *r)
{
    if (tm->pretransfer_us > 0) /* sent (on a new or a reused connection) */
        say(r, at_request, "timed out after %ld s waiting for the answer",
            (timeout_ms + 999) / 1000);
    else if (tm->connect_us == 0)
        say(r, SB_PROBE_CONNECT, "connection to %s timed out", hostport);
    else if (https)
        say(r, SB_PROBE_TLS, "TLS handshake with %s timed out", hostport);
    else
        say(r, at_request, "timed out after %ld s before the request was sent",
            (timeout_ms + 999) / 1000);
}

void sb__probe_curl_failure(int code, long os_errno, const char *detail, bool https,
                            const struct sb_probe_times *tm, long timeout_ms, const char *hostport,
                            enum sb_probe_stage at_request, struct sb_probe_result *r)
{
    if (code == CURLE_COULDNT_CONNECT)
        return connect_failure(os_errno, detail, hostport, r);
    if (code == CURLE_OPERATION_TIMEDOUT)
        return timeout_failure(https, tm, timeout_ms, hostport, at_request, r);
    for (size_t i = 0; i < sizeof(curl_failures) / sizeof(curl_failures[0]); i++) {
        if (curl_failures[i].code != code)
            continue;
        enum sb_probe_stage st =
            curl_failures[i].stage < 0 ? at_request : (enum sb_probe_stage)curl_failures[i].stage;
        if (st == SB_PROBE_TLS && *detail)
            return say(r, st, "%s (%s)", curl_failures[i].what, detail);
        return say(r, st, "%s (%s)", curl_failures[i].what, hostport);
    }
    say(r, at_request, "request to %s failed: %s", hostport,
        *detail ? detail : curl_easy_strerror((CURLcode)code));
}

void sb__probe_http_failure(int status, bool listing, const char *model, const char *upstream_msg,
                            struct sb_probe_result *r)
{
    enum sb_probe_stage at = listing ? SB_PROBE_AUTH : SB_PROBE_MODEL;
    const char *sep = *upstream_msg ? ": " : "";
    r->http_status = status;
    if (status == 401)
        say(r, SB_PROBE_AUTH, "401: the key was rejected");
    else if (status == 403)
        say(r, SB_PROBE_AUTH, "403: the key is not allowed to use this endpoint");
    else if (status == 404 && !listing)
        say(r, at, "404: model %s not found%s%s", model, sep, upstream_msg);
    else if (status == 404)
        say(r, at, "404: no model listing at this base URL (check base_url)");
    else if (status == 429)
        say(r, at, "429: the upstream is rate limiting this key%s%s", sep, upstream_msg);
    else if (status >= 500)
        say(r, at, "%d: the upstream failed%s%s", status, sep, upstream_msg);
    else
        say(r, at, "%d: the upstream refused the test request%s%s", status, sep, upstream_msg);
}

/* ======================================================================
 * Listings and redaction (pure)
 * ==================================================================== */

static bool shares_window(struct sb_slice word, struct sb_slice key, size_t w)
{
    for (size_t i = 0; i + w <= key.len; i++)
        if (w <= word.len && memmem(word.p, word.len, key.p + i, w))
            return true;
    return false;
}

static bool is_sep(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '"' || ch == '\'' || ch == ',' ||
           ch == ';' || ch == '(' || ch == ')' || ch == '`';
}

void sb__probe_redact(char *msg, size_t cap, struct sb_slice key)
{
    size_t w = key.len < 6 ? key.len : 6;
    if (w < 4 || !cap)
        return; /* nothing a message could meaningfully echo */
    struct sb_buf out;
    sb_buf_init(&out, 0);
    for (size_t i = 0; msg[i];) {
        size_t j = i;
        while (msg[j] && !is_sep(msg[j]))
            j++;
        struct sb_slice word = {msg + i, j - i};
        if (word.len && shares_window(word, key, w))
            sb_buf_append_cstr(&out, "[redacted]");
        else
            sb_buf_append(&out, word.p, word.len);
        if (msg[j])
            sb_buf_append_char(&out, msg[j++]);
        i = j;
    }
    size_t n = out.len < cap - 1 ? out.len : cap - 1;
    memcpy(msg, out.p, n);
    msg[n] = '\0';
    sb_secret_wipe(out.p, out.len);
    sb_buf_free(&out);
}

bool sb__probe_parse_listing(struct sb_arena *a, struct sb_slice body, const char **ids, size_t max,
                             size_t *n, size_t *count)
{
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = SB_PROBE_MAX_BODY};
    struct sb_json *root = NULL;
    struct sb_error ignore = {0};
    *n = *count = 0;
    if (sb_json_parse(a, body.p, body.len, &lim, &root, &ignore) != SB_OK ||
        root->type != SB_JSON_OBJECT)
        return false;
    const struct sb_json *list = sb_json_get(root, "data");
    const char *name = "id";
    if (!list || list->type != SB_JSON_ARRAY) {
        list = sb_json_get(root, "models");
        name = "name";
    }
    if (!list || list->type != SB_JSON_ARRAY)
        return false;
    for (const struct sb_json *m = list->child; m; m = m->next) {
        const struct sb_json *id = m->type == SB_JSON_OBJECT ? sb_json_get(m, name) : NULL;
        if (!id && m->type == SB_JSON_OBJECT)
            id = sb_json_get(m, "id");
        if (!id || id->type != SB_JSON_STRING)
            continue;
        if (*n < max)
            ids[(*n)++] = sb_arena_strndup(a, id->str.p, id->str.len);
        (*count)++;
    }
    return true;
}

/* ======================================================================
 * One transfer
 * ==================================================================== */

struct probe {
    struct sb_arena *a;
    const struct sb_probe_target *t;
    struct sb_probe_result *r;
    CURL *e;
    struct curl_slist *resolve;
    char errbuf[CURL_ERROR_SIZE];
    char hostport[300];
    bool https;
    bool connected;  /* a transfer reached the server: connect and tls are measured */
    long timeout_ms; /* one transfer's total */
    struct sb_model placeholder;
    struct sb_call call;         /* the chat call (placeholder model when there is none) */
    struct sb_upstream_req chat; /* built by the adapter */
    struct sb_buf body;          /* the last answer */
    int status;                  /* of the last answer */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return sb_buf_append(ud, p, size * n) == SB_OK ? size * n : 0;
}

/* The header list curl reads; its strings (auth lines) are wiped by free_headers. */
static struct curl_slist *headers_of(const struct sb_upstream_req *req)
{
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; i < req->nheaders; i++) {
        char line[8192];
        int n = snprintf(line, sizeof(line), "%.*s: %.*s", SB_FMT(req->headers[i].name),
                         SB_FMT(req->headers[i].value));
        if (n > 0 && (size_t)n < sizeof(line))
            l = curl_slist_append(l, line);
        sb_secret_wipe(line, sizeof(line));
    }
    return l;
}

static void free_headers(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        sb_secret_wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static void record_times(struct probe *p, const struct sb_probe_times *tm)
{
    struct sb_probe_result *r = p->r;
    if (!p->connected && tm->connect_us > 0) {
        p->connected = true;
        r->connect_ms = tm->connect_us / 1000;
        if (p->https && tm->appconnect_us > 0)
            r->tls_ms = (tm->appconnect_us - tm->connect_us) / 1000;
    }
    if (tm->pretransfer_us > 0)
        r->request_ms =
            (r->request_ms < 0 ? 0 : r->request_ms) + (tm->total_us - tm->pretransfer_us) / 1000;
}

static void read_times(CURL *e, struct sb_probe_times *tm)
{
    curl_off_t v = 0;
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &v), tm->connect_us = v;
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &v), tm->appconnect_us = v;
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &v), tm->pretransfer_us = v;
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &v), tm->total_us = v;
}

/* Sends req; true when an HTTP answer came back (p->status, p->body), else r is diagnosed. */
static bool transfer(struct probe *p, const struct sb_upstream_req *req, bool connect_only,
                     enum sb_probe_stage at_request)
{
    struct curl_slist *h = connect_only ? NULL : headers_of(req);
    struct sb_probe_times tm = {0};
    long os_errno = 0, status = 0;
    sb_buf_reset(&p->body);
    p->errbuf[0] = '\0';
    curl_easy_setopt(p->e, CURLOPT_URL, req->url);
    curl_easy_setopt(p->e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(p->e, CURLOPT_CONNECT_ONLY, connect_only ? 1L : 0L);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(p->e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(p->e, CURLOPT_POSTFIELDS, req->body.p);
        curl_easy_setopt(p->e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
    }
    CURLcode rc = curl_easy_perform(p->e);
    curl_easy_setopt(p->e, CURLOPT_HTTPHEADER, NULL);
    free_headers(h);
    read_times(p->e, &tm);
    record_times(p, &tm);
    curl_easy_getinfo(p->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(p->e, CURLINFO_OS_ERRNO, &os_errno);
    p->status = (int)status;
    if (rc == CURLE_OK)
        return true;
    struct sb_slice key =
        p->t->provider->api_key ? sb_secret_reveal(p->t->provider->api_key) : SB_SLICE_NULL;
    sb__probe_redact(p->errbuf, sizeof(p->errbuf), key);
    sb__probe_curl_failure(rc, os_errno, p->errbuf, p->https, &tm, p->timeout_ms, p->hostport,
                           at_request, p->r);
    return false;
}

/* ======================================================================
 * The steps
 * ==================================================================== */

static void wipe_hook(void *ud)
{
    sb_secret_wipe(ud, strlen(ud));
}

/* DNS: the addresses of the base URL's host, as CURLOPT_RESOLVE pins and SSRF checks them. */
static bool resolve(struct probe *p, const struct sb_netaddr_url *u, struct sb_netaddr *addrs,
                    size_t *n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8], pin[600];
    snprintf(port, sizeof(port), "%u", u->port);
    int64_t t0 = now_us();
    int rc = getaddrinfo(u->host, port, &hints, &res);
    p->r->dns_ms = (now_us() - t0) / 1000;
    if (rc != 0) {
        say(p->r, SB_PROBE_DNS, "DNS lookup failed for %s (%s)", u->host, gai_strerror(rc));
        return false;
    }
    int len = snprintf(pin, sizeof(pin), "%s:%u:", u->host, u->port);
    *n = 0;
    for (struct addrinfo *ai = res; ai && *n < MAX_ADDRS; ai = ai->ai_next) {
        struct sb_netaddr *a = &addrs[*n];
        char text[48];
        if (ai->ai_family == AF_INET) {
            a->family = 4;
            memcpy(a->b, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6) {
            a->family = 6;
            memcpy(a->b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        sb_netaddr_format(a, text);
        len += snprintf(pin + len, sizeof(pin) - (size_t)len, a->family == 6 ? "%s[%s]" : "%s%s",
                        (*n ? "," : ""), text);
        (*n)++;
        if ((size_t)len >= sizeof(pin) - 60)
            break;
    }
    freeaddrinfo(res);
    p->resolve = curl_slist_append(NULL, pin);
    if (*n == 0)
        say(p->r, SB_PROBE_DNS, "DNS lookup for %s gave no usable address", u->host);
    return *n > 0;
}

static long cap_ms(long configured, long most)
{
    return configured > 0 && configured < most ? configured : most;
}

static void open_easy(struct probe *p)
{
    const struct sb_provider *pv = p->t->provider;
    const char *ca = getenv("SWITCHBOARD_CA_FILE");
    static const char *const proxy_env[] = {"https_proxy", "HTTPS_PROXY", "http_proxy",
                                            "HTTP_PROXY",  "all_proxy",   "ALL_PROXY"};
    bool env_proxy = false;
    for (size_t i = 0; i < sizeof(proxy_env) / sizeof(proxy_env[0]); i++)
        env_proxy |= getenv(proxy_env[i]) && *getenv(proxy_env[i]);
    p->e = curl_easy_init();
    if (!p->e) {
        fputs("fatal: out of memory (curl_easy_init)\n", stderr);
        abort();
    }
    p->timeout_ms = cap_ms(pv->timeout_ms, SB_PROBE_TOTAL_MS);
    curl_easy_setopt(p->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->e, CURLOPT_CONNECTTIMEOUT_MS,
                     cap_ms(pv->connect_timeout_ms, SB_PROBE_CONNECT_MS));
    curl_easy_setopt(p->e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(p->e, CURLOPT_RESOLVE, p->resolve);
    curl_easy_setopt(p->e, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(p->e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(p->e, CURLOPT_WRITEDATA, &p->body);
    curl_easy_setopt(p->e, CURLOPT_ACCEPT_ENCODING, "");
    if (!env_proxy)
        curl_easy_setopt(p->e, CURLOPT_PROXY, "");
    if (ca && *ca)
        curl_easy_setopt(p->e, CURLOPT_CAINFO, ca);
}

/* The adapter's chat request: a one-message completion of at most max_tokens. */
static sb_err build_chat(struct probe *p, struct sb_error *err)
{
    const struct sb_probe_target *t = p->t;
    struct sb_buf b;
    struct sb_jw j;
    struct sb_json *json = NULL;
    p->placeholder = (struct sb_model){.id = "connection-test",
                                       .provider = t->provider,
                                       .upstream_model = "connection-test",
                                       .enabled = true};
    const struct sb_model *m = t->model ? t->model : &p->placeholder;
    sb_buf_init(&b, 0);
    sb_jw_init(&j, &b);
    sb_jw_obj_begin(&j);
    sb_jw_key(&j, "model"), sb_jw_cstr(&j, m->id);
    sb_jw_key(&j, "messages"),
        sb_jw_raw(&j, SB_SLICE("[{\"role\":\"user\",\"content\":\"Say OK.\"}]"));
    sb_jw_key(&j, "max_tokens"), sb_jw_int(&j, t->max_tokens > 0 ? t->max_tokens : 1);
    sb_jw_key(&j, "stream"), sb_jw_bool(&j, false);
    sb_jw_obj_end(&j);
    struct sb_slice body = sb_arena_slice(p->a, sb_buf_slice(&b));
    sb_buf_free(&b);
    if (sb_json_parse(p->a, body.p, body.len, NULL, &json, err) != SB_OK)
        return err->code;
    p->call = (struct sb_call){.arena = p->a,
                               .op = SB_OP_CHAT,
                               .provider = t->provider,
                               .model = m,
                               .body = body,
                               .json = json};
    return t->provider->ops->build_request(&p->call, &p->chat, err);
}

/* GET base_url + models_path with the chat request's headers (no content-type) and query. */
static void list_request(struct probe *p, struct sb_upstream_req *out)
{
    const char *q = strchr(p->chat.url, '?');
    char *url = sb_arena_printf(p->a, "%s%s%s", p->t->provider->base_url,
                                p->t->provider->ops->models_path, q ? q : "");
    sb_arena_on_free(p->a, wipe_hook, url); /* a ?key= query holds the credential */
    *out = (struct sb_upstream_req){.method = "GET", .url = url};
    out->headers = sb_arena_alloc(p->a, (p->chat.nheaders + 1) * sizeof(*out->headers));
    for (size_t i = 0; i < p->chat.nheaders; i++) {
        struct sb_slice k = p->chat.headers[i].name;
        if (sb_slice_caseeq(k, SB_SLICE("content-type")) ||
            sb_slice_caseeq(k, SB_SLICE("content-length")))
            continue;
        out->headers[out->nheaders++] = p->chat.headers[i];
    }
}

/* The adapter's reading of an error answer, redacted. */
static void upstream_message(struct probe *p, char *msg, size_t cap)
{
    struct sb_error e = {0};
    const struct sb_provider *pv = p->t->provider;
    p->t->provider->ops->map_error(&p->call, p->status, sb_buf_slice(&p->body), &e);
    snprintf(msg, cap, "%s", e.msg);
    sb__probe_redact(msg, cap, pv->api_key ? sb_secret_reveal(pv->api_key) : SB_SLICE_NULL);
}

/* false when the test ends here (r diagnosed). */
static bool step_list(struct probe *p)
{
    struct sb_upstream_req req;
    char msg[256];
    list_request(p, &req);
    if (!transfer(p, &req, false, SB_PROBE_AUTH))
        return false;
    if (p->status / 100 == 2) {
        p->r->http_status = p->status;
        p->r->listed =
            sb__probe_parse_listing(p->a, sb_buf_slice(&p->body), p->r->models, SB_PROBE_MAX_MODELS,
                                    &p->r->nmodels, &p->r->models_count);
        return true;
    }
    upstream_message(p, msg, sizeof(msg));
    sb__probe_http_failure(p->status, true, "", msg, p->r);
    /* A listing the upstream lacks says nothing about the key: the completion will. */
    return p->t->model && p->status != 401 && p->status != 403;
}

/* The text of choice 0 of an OpenAI-format completion, truncated. */
static void read_answer(struct probe *p, struct sb_slice body)
{
    struct sb_json *root = NULL;
    struct sb_error ignore = {0};
    if (sb_json_parse(p->a, body.p, body.len, NULL, &root, &ignore) != SB_OK)
        return;
    const struct sb_json *ch = sb_json_at(sb_json_get(root, "choices"), 0);
    const struct sb_json *msg = ch ? sb_json_get(ch, "message") : NULL;
    const struct sb_json *text = msg ? sb_json_get(msg, "content") : NULL;
    if (text && text->type == SB_JSON_STRING) {
        struct sb_slice s = text->str;
        s.len = s.len > SB_PROBE_ANSWER_BYTES ? SB_PROBE_ANSWER_BYTES : s.len;
        p->r->answer = sb_arena_slice(p->a, s); /* res.body may borrow p->body, freed soon */
    }
}

static bool step_chat(struct probe *p)
{
    struct sb_result res;
    struct sb_error e = {0};
    char msg[256];
    if (!transfer(p, &p->chat, false, SB_PROBE_MODEL))
        return false;
    p->r->http_status = p->status;
    if (p->status / 100 != 2) {
        upstream_message(p, msg, sizeof(msg));
        sb__probe_http_failure(p->status, false, p->call.model->upstream_model, msg, p->r);
        return false;
    }
    if (p->t->provider->ops->parse_response(&p->call, sb_buf_slice(&p->body), &res, &e) != SB_OK) {
        snprintf(msg, sizeof(msg), "%s", e.msg);
        sb__probe_redact(msg, sizeof(msg),
                         p->t->provider->api_key ? sb_secret_reveal(p->t->provider->api_key)
                                                 : SB_SLICE_NULL);
        say(p->r, SB_PROBE_MODEL, "the answer could not be read: %s", msg);
        return false;
    }
    p->r->answered = true;
    p->r->prompt_tokens = res.usage.prompt_tokens;
    p->r->completion_tokens = res.usage.completion_tokens;
    read_answer(p, res.body);
    return true;
}

static void summarize(struct probe *p)
{
    struct sb_probe_result *r = p->r;
    char listed[64] = "", answered[200] = "";
    if (r->listed)
        snprintf(listed, sizeof(listed), "; the key listed %zu models", r->models_count);
    if (r->answered)
        snprintf(answered, sizeof(answered), "; model %s answered", p->call.model->upstream_model);
    say(r, SB_PROBE_DONE, "%s reachable%s%s%s%s", p->hostport, p->https ? " over TLS" : "", listed,
        answered, r->listed || r->answered ? "" : "; the key was not checked (no model to try)");
}

static void run_steps(struct probe *p)
{
    const struct sb_probe_target *t = p->t;
    bool list = t->list_models && t->provider->ops->models_path;
    open_easy(p);
    if (list && !step_list(p))
        return;
    if (t->model && !step_chat(p))
        return;
    if (!list && !t->model && !transfer(p, &p->chat, true, SB_PROBE_AUTH))
        return;
    summarize(p);
}

static void result_init(struct sb_probe_result *r)
{
    *r = (struct sb_probe_result){.stage = SB_PROBE_DNS,
                                  .dns_ms = -1,
                                  .connect_ms = -1,
                                  .tls_ms = -1,
                                  .request_ms = -1,
                                  .total_ms = -1,
                                  .prompt_tokens = -1,
                                  .completion_tokens = -1};
}

sb_err sb__probe_run(struct sb_arena *a, const struct sb_probe_target *t,
                     struct sb_probe_result *out, struct sb_error *err)
{
    struct probe p = {.a = a, .t = t, .r = out};
    struct sb_netaddr_url u;
    struct sb_netaddr addrs[MAX_ADDRS];
    size_t n = 0;
    sb_err rc = SB_OK;
    int64_t t0 = now_us();
    result_init(out);
    if (sb_netaddr_parse_url(sb_slice_cstr(t->provider->base_url), &u, err) != SB_OK)
        return err->code;
    p.https = u.https;
    snprintf(p.hostport, sizeof(p.hostport), "%s:%u", u.host, u.port);
    sb_buf_init(&p.body, SB_PROBE_MAX_BODY);
    if (!resolve(&p, &u, addrs, &n))
        goto out;
    if (t->refuse_private && (rc = sb_ssrf_check_addrs(u.host, addrs, n, err)) != SB_OK)
        goto out;
    struct sb_error why = {0};
    if (build_chat(&p, &why) != SB_OK) {
        say(out, SB_PROBE_AUTH, "the request could not be built: %s", why.msg);
        goto out;
    }
    run_steps(&p);
out:
    out->total_ms = (now_us() - t0) / 1000;
    if (p.e)
        curl_easy_cleanup(p.e);
    curl_slist_free_all(p.resolve);
    sb_secret_wipe(p.body.p, p.body.len);
    sb_buf_free(&p.body);
    return rc;
}

/* ======================================================================
 * The result as JSON
 * ==================================================================== */

static void write_ms(struct sb_jw *j, const char *key, int64_t ms)
{
    sb_jw_key(j, key);
    if (ms < 0)
        sb_jw_null(j);
    else
        sb_jw_int(j, ms);
}

static void write_models(struct sb_jw *j, const struct sb_probe_result *r)
{
    sb_jw_key(j, "models");
    if (!r->listed) {
        sb_jw_null(j);
        return;
    }
    sb_jw_arr_begin(j);
    for (size_t i = 0; i < r->nmodels; i++)
        sb_jw_cstr(j, r->models[i]);
    sb_jw_arr_end(j);
    sb_jw_key(j, "models_count");
    sb_jw_int(j, (int64_t)r->models_count);
}

void sb__probe_write(struct sb_jw *j, const struct sb_probe_result *r, bool with_answer)
{
    sb_jw_obj_begin(j);
    sb_jw_key(j, "ok"), sb_jw_bool(j, r->ok);
    sb_jw_key(j, "stage"), sb_jw_cstr(j, sb__probe_stage_name(r->stage));
    sb_jw_key(j, "diagnosis"), sb_jw_cstr(j, r->diagnosis);
    sb_jw_key(j, "latency_ms");
    sb_jw_obj_begin(j);
    write_ms(j, "dns", r->dns_ms);
    write_ms(j, "connect", r->connect_ms);
    write_ms(j, "tls", r->tls_ms);
    write_ms(j, "request", r->request_ms);
    write_ms(j, "total", r->total_ms);
    sb_jw_obj_end(j);
    write_ms(j, "http_status", r->http_status ? r->http_status : -1);
    write_models(j, r);
    if (with_answer) {
        sb_jw_key(j, "answer");
        if (r->answered)
            sb_jw_str(j, r->answer);
        else
            sb_jw_null(j);
        sb_jw_key(j, "usage");
        sb_jw_obj_begin(j);
        write_ms(j, "prompt_tokens", r->prompt_tokens);
        write_ms(j, "completion_tokens", r->completion_tokens);
        sb_jw_obj_end(j);
    }
    sb_jw_obj_end(j);
}
