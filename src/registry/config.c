/* SPDX-License-Identifier: MIT */
/*
 * config.c - reads the YAML config file into struct sb_config.
 *
 * Two passes. First config_yaml.c turns libyaml's events into a small tree
 * of our own (each node with its line), refusing aliases, duplicate keys
 * and input beyond fixed bounds. Then a generic walker applies one
 * key table per section (STYLE.md practice 5): a row says which key, what
 * type, where it goes in the struct and its range; adding a key is adding a
 * row. Per-entry checks and cross-references (ids, providers, route
 * targets) run after the walk. Errors carry file:line and the key path.
 *
 * Credentials stay references here. Secret values are read only by
 * sb_config_resolve_secret, and no message ever echoes a credential value.
 *
 * Chapters: messages · field setters · key tables · entry
 * checks · cross checks · public API · secrets.
 */
#include "registry/config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "registry/config_yaml.h"
#include "registry/templates.h"

#define MAX_FILE (1024 * 1024) /* config file bytes */
#define MAX_SECRET_FILE (64 * 1024)

/* ---- messages ---- */

/* The walker's state: where we are, for messages. */
struct walk {
    struct sb_config *cfg;
    const char *name;             /* file name */
    const struct sb__ynode *root; /* the document's top mapping */
    char path[256];               /* "providers[0].api_key" */
    size_t plen;
    struct sb_error *err;
    bool api; /* an /api body: no file name or lines, no credential references */
};

static size_t path_push(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(struct walk *w, const char *fmt, ...)
{
    size_t old = w->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->path + w->plen, sizeof(w->path) - w->plen, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->plen +=
            (size_t)n < sizeof(w->path) - w->plen ? (size_t)n : sizeof(w->path) - w->plen - 1;
    return old;
}

static void path_pop(struct walk *w, size_t old)
{
    w->plen = old;
    w->path[old] = '\0';
}

static sb_err wfailv(struct walk *w, int line, const char *fmt, va_list ap)
{
    char msg[200];
    sb_err rc;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (w->api && w->plen)
        rc = sb_fail_field(w->err, SB_E_BAD_REQUEST, w->path, "%s: %s", w->path, msg);
    else if (w->api)
        rc = sb_fail(w->err, SB_E_BAD_REQUEST, "%s", msg);
    else if (w->plen)
        rc = sb_fail_field(w->err, SB_E_CONFIG, w->path, "%s:%d: %s: %s", w->name, line, w->path,
                           msg);
    else
        rc = sb_fail(w->err, SB_E_CONFIG, "%s:%d: %s", w->name, line, msg);
    return rc;
}

static sb_err wfail(struct walk *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file:line: path: message". Never pass a credential value to this. */
static sb_err wfail(struct walk *w, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_err rc = wfailv(w, line, fmt, ap);
    va_end(ap);
    return rc;
}

/* Names key (under the current path) as the field at fault of the error rc. */
static sb_err at_key(struct walk *w, const char *key, sb_err rc)
{
    if (w->err)
        snprintf(w->err->field, sizeof(w->err->field), "%.40s%s%.20s", w->path, w->plen ? "." : "",
                 key);
    return rc;
}

/* "<key> is required<more>", with the field at fault set to the missing key. */
static sb_err missing(struct walk *w, int line, const char *key, const char *more)
{
    return at_key(w, key, wfail(w, line, "%s is required%s", key, more));
}

/* The value node of key in map, or NULL. */
static const struct sb__ynode *member(const struct sb__ynode *map, const char *key)
{
    if (!map || map->kind != SB_Y_MAP)
        return NULL;
    for (const struct sb__ynode *k = map->child; k; k = k->next->next)
        if (strlen(key) == k->len && memcmp(k->str, key, k->len) == 0)
            return k->next;
    return NULL;
}

static sb_err ffail(struct walk *w, const struct sb__ynode *node, const char *key, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Like wfail, for the entry at node: the path and line of its key `key`. */
static sb_err ffail(struct walk *w, const struct sb__ynode *node, const char *key, const char *fmt,
                    ...)
{
    const struct sb__ynode *v = member(node, key);
    size_t mark = path_push(w, w->plen ? ".%s" : "%s", key);
    va_list ap;
    va_start(ap, fmt);
    sb_err rc = wfailv(w, v ? v->line : node->line, fmt, ap);
    va_end(ap);
    path_pop(w, mark);
    return rc;
}

/* ---- field setters ---- */

enum fkind {
    F_STR,     /* a string */
    F_INT,     /* an integer in [min, max] */
    F_NUM,     /* a finite number in [0, 1e9] */
    F_BOOL,    /* true | false */
    F_CRED,    /* env:NAME | file:PATH */
    F_HEADERS, /* mapping of header name to value: struct sb_store_kv[] at off, count at off_n */
    F_STRS,    /* list of strings: const char *[] at off, count at off_n */
    F_INTS,    /* list of integers in [min, max]: const int64_t *[] at off, count at off_n */
    F_MAP,     /* nested mapping, fields of sub in the same struct */
    F_LIST,    /* list of mappings, sub->size bytes each: array at off, count at off_n */
};

struct table;

struct field {
    const char *key;
    enum fkind kind;
    size_t off, off_n;       /* where the value (and its count) go */
    int64_t min, max;        /* F_INT */
    const struct table *sub; /* F_MAP, F_LIST */
};

typedef sb_err (*check_fn)(struct walk *w, void *elem, const struct sb__ynode *node);

struct table {
    const struct field *fields;
    size_t nfields;
    size_t size;              /* element size, for F_LIST */
    void (*init)(void *elem); /* defaults, before the walk; may be NULL */
    check_fn check;           /* after the walk; may be NULL */
    const char *file_only;    /* F_LIST: refused in an /api body, with this message */
};

typedef sb_err (*set_fn)(struct walk *w, const struct field *f, void *base,
                         const struct sb__ynode *v);

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

static bool is_null(const struct sb__ynode *v)
{
    return v->kind == SB_Y_SCALAR && v->plain &&
           (v->len == 0 || strcmp(v->str, "~") == 0 || strcmp(v->str, "null") == 0 ||
            strcmp(v->str, "Null") == 0 || strcmp(v->str, "NULL") == 0);
}

static const char *copy(struct walk *w, const struct sb__ynode *v)
{
    return sb_arena_strndup(w->cfg->arena, v->str, v->len);
}

static sb_err set_str(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    if (v->kind != SB_Y_SCALAR)
        return wfail(w, v->line, "expected a string");
    *AT(base, f->off, const char *) = copy(w, v);
    return SB_OK;
}

static bool parse_int(const struct sb__ynode *v, int64_t *out)
{
    struct sb_slice s = {v->str, v->len};
    unsigned long long u = 0;
    bool neg = s.len && s.p[0] == '-';
    if (neg) {
        s.p++;
        s.len--;
    }
    if (!v->plain || !sb_slice_to_u64(s, &u) || u > (unsigned long long)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)u : (int64_t)u;
    return true;
}

static sb_err set_int(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    int64_t x = 0;
    if (v->kind != SB_Y_SCALAR || !parse_int(v, &x) || x < f->min || x > f->max)
        return wfail(w, v->line, "expected an integer in [%lld, %lld]", (long long)f->min,
                     (long long)f->max);
    *AT(base, f->off, int64_t) = x;
    return SB_OK;
}

static sb_err set_num(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    char *end = NULL;
    bool ok = v->kind == SB_Y_SCALAR && v->plain && v->len > 0 &&
              strspn(v->str, "0123456789.eE+-") == v->len;
    double x = ok ? strtod(v->str, &end) : 0;
    if (!ok || end != v->str + v->len || !isfinite(x) || x < 0 || x > 1e9)
        return wfail(w, v->line, "expected a number in [0, 1e9]");
    *AT(base, f->off, double) = x;
    return SB_OK;
}

static sb_err set_bool(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                              "FALSE"};
    for (size_t i = 0; v->kind == SB_Y_SCALAR && v->plain && i < 3; i++) {
        if (strcmp(v->str, yes[i]) == 0 || strcmp(v->str, no[i]) == 0) {
            *AT(base, f->off, bool) = strcmp(v->str, yes[i]) == 0;
            return SB_OK;
        }
    }
    return wfail(w, v->line, "expected true or false");
}

static bool env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
           strlen(s);
}

/* A credential reference. The value is never echoed: it may be a pasted key. */
static sb_err set_cred(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    if (w->api) /* a server's env or files are not for API callers to name */
        return wfail(w, v->line, "send the credential itself here, not a reference");
    if (v->kind != SB_Y_SCALAR)
        return wfail(w, v->line, "expected env:NAME or file:PATH");
    if (strncmp(v->str, "env:", 4) == 0 && !env_name_ok(v->str + 4))
        return wfail(w, v->line, "env: needs a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (strncmp(v->str, "file:", 5) == 0 && v->str[5] == '\0')
        return wfail(w, v->line, "file: needs a path");
    if (strncmp(v->str, "env:", 4) != 0 && strncmp(v->str, "file:", 5) != 0)
        return wfail(w, v->line, "literal keys are not allowed; use env:NAME or file:PATH");
    *AT(base, f->off, const char *) = copy(w, v);
    return SB_OK;
}

/* RFC 9110 token characters. */
static bool header_name_ok(const char *s, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return n > 0 && n <= 128 && strspn(s, tchar) == n;
}

/* Headers that carry credentials: a literal value would be a key in the file. */
static bool header_is_credential(const char *s, size_t n)
{
    static const char *const names[] = {"authorization", "proxy-authorization", "x-api-key",
                                        "api-key", "x-goog-api-key"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (sb_slice_caseeq((struct sb_slice){s, n}, sb_slice_cstr(names[i])))
            return true;
    return false;
}

static bool header_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return false;
    return n <= 8192;
}

static sb_err set_headers(struct walk *w, const struct field *f, void *base,
                          const struct sb__ynode *v)
{
    if (v->kind != SB_Y_MAP)
        return wfail(w, v->line, "expected a mapping of header names to values");
    struct sb_store_kv *kv = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*kv));
    size_t i = 0;
    for (const struct sb__ynode *k = v->child; k; k = k->next->next, i++) {
        const struct sb__ynode *val = k->next;
        if (!header_name_ok(k->str, k->len))
            return wfail(w, k->line, "'%.40s' is not a valid header name", k->str);
        if (header_is_credential(k->str, k->len))
            return wfail(w, k->line,
                         "header %s carries a credential; use api_key with env:NAME or file:PATH",
                         k->str);
        if (val->kind != SB_Y_SCALAR || !header_value_ok(val->str, val->len))
            return wfail(w, val->line, "header %s: expected a one-line string", k->str);
        kv[i].name = copy(w, k);
        kv[i].value = copy(w, val);
    }
    *AT(base, f->off, struct sb_store_kv *) = kv;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err set_strs(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    if (v->kind != SB_Y_SEQ)
        return wfail(w, v->line, "expected a list of strings");
    const char **list = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*list));
    size_t i = 0;
    for (const struct sb__ynode *it = v->child; it; it = it->next, i++) {
        if (it->kind != SB_Y_SCALAR || it->len == 0)
            return wfail(w, it->line, "expected a list of strings");
        list[i] = copy(w, it);
    }
    *AT(base, f->off, const char **) = list;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err set_ints(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    if (v->kind != SB_Y_SEQ)
        return wfail(w, v->line, "expected a list of integers");
    int64_t *list = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*list));
    size_t i = 0;
    for (const struct sb__ynode *it = v->child; it; it = it->next, i++)
        if (it->kind != SB_Y_SCALAR || !parse_int(it, &list[i]) || list[i] < f->min ||
            list[i] > f->max)
            return wfail(w, it->line, "expected a list of integers in [%lld, %lld]",
                         (long long)f->min, (long long)f->max);
    *AT(base, f->off, const int64_t *) = list;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err walk_map(struct walk *w, const struct table *t, void *base,
                       const struct sb__ynode *map);

static sb_err set_map(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    sb_err rc = walk_map(w, f->sub, base, v);
    if (rc == SB_OK && f->sub->check)
        rc = f->sub->check(w, base, v);
    return rc;
}

static sb_err set_list(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    const struct table *t = f->sub;
    if (w->api && t->file_only)
        return wfail(w, v->line, "%s", t->file_only);
    if (v->kind != SB_Y_SEQ)
        return wfail(w, v->line, "expected a list");
    char *arr = sb_arena_calloc(w->cfg->arena, (v->count + 1) * t->size);
    size_t i = 0;
    sb_err rc = SB_OK;
    for (const struct sb__ynode *it = v->child; rc == SB_OK && it; it = it->next, i++) {
        size_t mark = path_push(w, "[%zu]", i);
        if (t->init)
            t->init(arr + i * t->size);
        rc = walk_map(w, t, arr + i * t->size, it);
        if (rc == SB_OK && t->check)
            rc = t->check(w, arr + i * t->size, it);
        path_pop(w, mark);
    }
    *AT(base, f->off, void *) = arr;
    *AT(base, f->off_n, size_t) = v->count;
    return rc;
}

static const set_fn setters[] = {
    [F_STR] = set_str,   [F_INT] = set_int,         [F_NUM] = set_num,   [F_BOOL] = set_bool,
    [F_CRED] = set_cred, [F_HEADERS] = set_headers, [F_STRS] = set_strs, [F_INTS] = set_ints,
    [F_MAP] = set_map,   [F_LIST] = set_list,
};

static const struct field *find_field(const struct table *t, const struct sb__ynode *key)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (strlen(t->fields[i].key) == key->len &&
            memcmp(t->fields[i].key, key->str, key->len) == 0)
            return &t->fields[i];
    return NULL;
}

static sb_err walk_map(struct walk *w, const struct table *t, void *base,
                       const struct sb__ynode *map)
{
    if (map->kind != SB_Y_MAP)
        return wfail(w, map->line, "expected a mapping");
    for (const struct sb__ynode *k = map->child; k; k = k->next->next) {
        const struct field *f = find_field(t, k);
        if (!f)
            return wfail(w, k->line, "unknown key '%.40s'", k->str);
        if (is_null(k->next))
            continue; /* "key:" with no value keeps the default */
        size_t mark = path_push(w, w->plen ? ".%s" : "%s", f->key);
        sb_err rc = setters[f->kind](w, f, base, k->next);
        path_pop(w, mark);
        if (rc != SB_OK)
            return rc;
    }
    return SB_OK;
}

/* ---- entry checks ---- */

#define PROVIDER_ID_CHARS "abcdefghijklmnopqrstuvwxyz0123456789-"
#define MODEL_ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
#define KEY_LABEL_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_-"

static const struct sb_config_type types[] = {
    {"openai", "bearer", SB_AUTH_BEARER},   {"anthropic", "api_key", SB_AUTH_API_KEY},
    {"gemini", "api_key", SB_AUTH_API_KEY}, {"cohere", "bearer", SB_AUTH_BEARER},
    {"ollama", "bearer", SB_AUTH_BEARER},   {"huggingface", "bearer", SB_AUTH_BEARER},
    {"azure", "api_key", SB_AUTH_API_KEY},  {"bedrock", "aws_sigv4", SB_AUTH_SIGV4},
};
#define TYPE_NAMES "openai, anthropic, gemini, cohere, ollama, huggingface, azure, bedrock"

static const char *const strategies[] = {"priority", "weighted", "least-latency", "least-busy",
                                         "cost"};

const struct sb_config_type *sb_config_type_find(struct sb_slice name)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (sb_slice_eq_cstr(name, types[i].name))
            return &types[i];
    return NULL;
}

static bool chars_ok(const char *s, const char *allowed, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strspn(s, allowed) == n;
}

/* Printable ASCII or UTF-8, no spaces or control characters. */
static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || s[n] == 0x7f)
            return false;
    return n > 0 && n <= max;
}

static size_t url_scheme_len(const char *u)
{
    if (strncmp(u, "https://", 8) == 0)
        return 8;
    if (strncmp(u, "http://", 7) == 0)
        return 7;
    return 0;
}

/* base_url: http(s)://host..., trailing slashes dropped; bedrock may derive it from region. */
static sb_err check_base_url(struct walk *w, struct sb_store_provider *p, const struct sb__ynode *n)
{
    if (!p->base_url && strcmp(p->type, "bedrock") == 0 && p->region)
        p->base_url =
            sb_arena_printf(w->cfg->arena, "https://bedrock-runtime.%s.amazonaws.com", p->region);
    if (!p->base_url)
        return missing(w, n->line, "base_url", "");
    size_t skip = url_scheme_len(p->base_url);
    if (!skip || p->base_url[skip] == '/' || !printable(p->base_url, 2048))
        return ffail(w, n, "base_url", "expected an http:// or https:// URL");
    size_t len = strlen(p->base_url);
    if (p->base_url[len - 1] == '/') {
        while (len > skip + 1 && p->base_url[len - 1] == '/')
            len--;
        p->base_url = sb_arena_strndup(w->cfg->arena, p->base_url, len);
    }
    return SB_OK;
}

static sb_err check_provider_aws(struct walk *w, struct sb_store_provider *p,
                                 const struct sb__ynode *n)
{
    bool bedrock = strcmp(p->type, "bedrock") == 0;
    if (!bedrock && (p->aws_access_key_id || p->aws_secret_access_key || p->aws_session_token))
        return wfail(w, n->line, "aws_* credentials are only for type bedrock");
    if (p->region && !chars_ok(p->region, PROVIDER_ID_CHARS, 64))
        return ffail(w, n, "region", "expected a region name such as us-east-1");
    if (bedrock && (!p->aws_access_key_id != !p->aws_secret_access_key))
        return wfail(w, n->line, "aws_access_key_id and aws_secret_access_key go together");
    return SB_OK;
}

/* `template: groq` fills what the entry leaves out: type, base_url, and the
 * template's options (api_version, region). Models stay explicit. */
static sb_err apply_template(struct walk *w, struct sb_store_provider *p, const struct sb__ynode *n)
{
    const struct sb_store_template *t = sb_templates_find(p->template_id);
    struct sb_json *opts = NULL;
    struct sb_json_limits lim = {0};
    struct sb_error ignore;
    if (!t)
        return ffail(w, n, "template", "unknown template '%.40s' (GET /api/templates lists them)",
                     p->template_id);
    if (!p->type)
        p->type = t->type;
    if (!p->base_url && t->base_url)
        p->base_url = t->base_url;
    if (t->options && sb_json_parse(w->cfg->arena, t->options, strlen(t->options), &lim, &opts,
                                    &ignore) == SB_OK) {
        const struct sb_json *v = sb_json_get(opts, "api_version");
        if (!p->api_version && sb_json_is_string(v))
            p->api_version = sb_arena_strndup(w->cfg->arena, v->str.p, v->str.len);
        v = sb_json_get(opts, "region");
        if (!p->region && sb_json_is_string(v))
            p->region = sb_arena_strndup(w->cfg->arena, v->str.p, v->str.len);
    }
    return SB_OK;
}

static sb_err check_provider(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_provider *p = elem;
    if (p->template_id && apply_template(w, p, n) != SB_OK)
        return w->err->code;
    if (!p->id)
        return missing(w, n->line, "id", "");
    if (!chars_ok(p->id, PROVIDER_ID_CHARS, 64))
        return ffail(w, n, "id", "must match [a-z0-9-]+ (at most 64 characters)");
    if (!p->type)
        return missing(w, n->line, "type", " (one of " TYPE_NAMES ")");
    const struct sb_config_type *t = sb_config_type_find(sb_slice_cstr(p->type));
    if (!t)
        return ffail(w, n, "type", "unknown type '%.40s' (one of " TYPE_NAMES ")", p->type);
    sb_err rc = check_base_url(w, p, n);
    if (rc == SB_OK)
        rc = check_provider_aws(w, p, n);
    if (rc == SB_OK && p->api_version && !printable(p->api_version, 64))
        rc = ffail(w, n, "api_version", "expected a version string such as 2024-10-21");
    if (rc == SB_OK && p->transport && strcmp(p->transport, "auto") != 0 &&
        strcmp(p->transport, "native") != 0 && strcmp(p->transport, "curl") != 0)
        rc = ffail(w, n, "transport", "expected auto, native or curl");
    if (p->name && !*p->name)
        p->name = NULL;
    if (!p->name)
        p->name = p->id;
    if (rc == SB_OK && p->napi_keys && t->auth == SB_AUTH_SIGV4)
        rc = ffail(w, n, "api_keys", "a bedrock provider signs with aws_* credentials, not keys");
    for (size_t i = 0; rc == SB_OK && i < p->napi_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->api_keys[i].label, p->api_keys[j].label) == 0)
                rc = ffail(w, n, "api_keys", "duplicate label '%s'", p->api_keys[i].label);
    bool keyed = p->api_key || p->napi_keys || t->auth == SB_AUTH_SIGV4;
    p->auth_method = keyed ? t->auth_method : "none";
    return rc;
}

static sb_err check_model(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_model *m = elem;
    if (!m->id)
        return missing(w, n->line, "id", "");
    if (!chars_ok(m->id, MODEL_ID_CHARS, 128))
        return ffail(w, n, "id", "must match [A-Za-z0-9._:-]+ (at most 128 characters)");
    if (!m->provider)
        return missing(w, n->line, "provider", "");
    if (!m->upstream_model)
        m->upstream_model = m->id;
    if (!printable(m->upstream_model, 256))
        return ffail(w, n, "upstream_model", "expected a model name without spaces");
    if (!m->name || !*m->name)
        m->name = m->id;
    if (m->status && strcmp(m->status, "active") && strcmp(m->status, "inactive") &&
        strcmp(m->status, "deprecated"))
        return ffail(w, n, "status", "expected active, inactive or deprecated");
    if (m->status)
        m->enabled = strcmp(m->status, "inactive") != 0;
    if (m->nfallbacks > SB_STORE_FALLBACKS_MAX)
        return ffail(w, n, "fallbacks", "at most %d fallbacks", SB_STORE_FALLBACKS_MAX);
    for (size_t t = 0; t < m->nfallbacks; t++) {
        if (!printable(m->fallbacks[t], 512))
            return ffail(w, n, "fallbacks", "a fallback contains spaces or control characters");
        if (strcmp(m->fallbacks[t], m->id) == 0)
            return ffail(w, n, "fallbacks", "'%s' cannot fall back to itself", m->id);
    }
    return SB_OK;
}

static sb_err check_route(struct walk *w, void *elem, const struct sb__ynode *n)
{
    struct sb_store_route *r = elem;
    if (!r->id)
        return missing(w, n->line, "id", "");
    if (!chars_ok(r->id, MODEL_ID_CHARS, 128))
        return ffail(w, n, "id", "must match [A-Za-z0-9._:-]+ (at most 128 characters)");
    if (!r->strategy)
        r->strategy = strategies[0];
    size_t i = 0;
    while (i < sizeof(strategies) / sizeof(strategies[0]) && strcmp(r->strategy, strategies[i]))
        i++;
    if (i == sizeof(strategies) / sizeof(strategies[0]))
        return ffail(w, n, "strategy",
                     "unknown strategy '%.40s' (one of priority, weighted, least-latency, "
                     "least-busy, cost)",
                     r->strategy);
    if (r->ntargets == 0)
        return at_key(w, "targets", wfail(w, n->line, "targets: at least one target is required"));
    if (r->weights && r->nweights != r->ntargets)
        return ffail(w, n, "weights", "one weight per target (%zu targets, %zu weights)",
                     r->ntargets, r->nweights);
    for (size_t t = 0; t < r->ntargets; t++)
        if (!printable(r->targets[t], 512))
            return ffail(w, n, "targets", "a target contains spaces or control characters");
    return SB_OK;
}

/* ---- key tables ---- */

/* clang-format off */
#define F_(k, kd, T, m) {.key = k, .kind = kd, .off = offsetof(T, m)}
#define STR(k, T, m) F_(k, F_STR, T, m)
#define NUM(k, T, m) F_(k, F_NUM, T, m)
#define BOOL(k, T, m) F_(k, F_BOOL, T, m)
#define CRED(k, T, m) F_(k, F_CRED, T, m)
#define INT(k, T, m, lo, hi) {.key = k, .kind = F_INT, .off = offsetof(T, m), .min = lo, .max = hi}
#define MAP(k, t) {.key = k, .kind = F_MAP, .sub = &t}
#define ARR(k, kd, T, m, n, t) \
    {.key = k, .kind = kd, .off = offsetof(T, m), .off_n = offsetof(T, n), .sub = t}
#define TABLE(f, T, init, check) {f, sizeof(f) / sizeof(f[0]), sizeof(T), init, check, NULL}
/* clang-format on */

/* Short names for the row macros (macros, not typedefs: STYLE.md practice 17). */
#define PROV struct sb_store_provider
#define MODEL struct sb_store_model
#define ROUTE struct sb_store_route
#define CFG struct sb_config

static const struct field rate_fields[] = {
    INT("rpm", PROV, rpm, 0, 1000000000),
    INT("tpm", PROV, tpm, 0, 1000000000000LL),
};
static const struct table rate_table = TABLE(rate_fields, PROV, NULL, NULL);

/* One key of a provider's pool (api_keys): its label names it in the
 * admin API, /metrics and dead_keys; "primary" is the api_key's name. */
static const struct field key_ref_fields[] = {
    STR("label", struct sb_store_key_ref, label),
    CRED("key", struct sb_store_key_ref, key),
    INT("weight", struct sb_store_key_ref, weight, 1, 1000000),
};

static void init_key_ref(void *elem)
{
    ((struct sb_store_key_ref *)elem)->weight = 1;
}

static sb_err check_key_ref(struct walk *w, void *elem, const struct sb__ynode *n)
{
    const struct sb_store_key_ref *r = elem;
    if (!r->label)
        return missing(w, n->line, "label", "");
    if (!chars_ok(r->label, KEY_LABEL_CHARS, 32) || strcmp(r->label, "primary") == 0)
        return ffail(w, n, "label", "must match [a-z0-9_-]+ (at most 32 characters), not 'primary'");
    if (!r->key)
        return missing(w, n->line, "key", " (env:NAME or file:PATH)");
    return SB_OK;
}

static const struct table key_ref_table = {key_ref_fields,
                                           sizeof(key_ref_fields) / sizeof(key_ref_fields[0]),
                                           sizeof(struct sb_store_key_ref),
                                           init_key_ref,
                                           check_key_ref,
                                           "api_keys: over the API, add pool keys with POST "
                                           "/api/providers/{id}/credentials"};

static const struct field provider_fields[] = {
    STR("id", PROV, id),
    STR("type", PROV, type),
    STR("name", PROV, name),
    STR("base_url", PROV, base_url),
    CRED("api_key", PROV, api_key),
    ARR("api_keys", F_LIST, PROV, api_keys, napi_keys, &key_ref_table),
    ARR("headers", F_HEADERS, PROV, headers, nheaders, NULL),
    MAP("rate_limits", rate_table),
    INT("timeout_ms", PROV, timeout_ms, 0, 3600000),
    INT("connect_timeout_ms", PROV, connect_timeout_ms, 0, 600000),
    INT("idle_timeout_ms", PROV, idle_timeout_ms, 0, 3600000),
    INT("max_concurrency", PROV, max_concurrency, 0, 1000000),
    STR("transport", PROV, transport),
    STR("api_version", PROV, api_version),
    STR("region", PROV, region),
    CRED("aws_access_key_id", PROV, aws_access_key_id),
    CRED("aws_secret_access_key", PROV, aws_secret_access_key),
    CRED("aws_session_token", PROV, aws_session_token),
    BOOL("enabled", PROV, enabled),
    STR("description", PROV, description),
    BOOL("personal_keys_required", PROV, personal_keys_required),
    STR("template", PROV, template_id),
};

static void init_provider(void *elem)
{
    struct sb_store_provider *p = elem;
    p->enabled = true;
    p->is_system = true;
}

static const struct table provider_table =
    TABLE(provider_fields, PROV, init_provider, check_provider);

static const struct field caps_fields[] = {
    BOOL("streaming", MODEL, caps.streaming),   BOOL("tools", MODEL, caps.tools),
    BOOL("vision", MODEL, caps.vision),         BOOL("json_mode", MODEL, caps.json_mode),
    BOOL("embeddings", MODEL, caps.embeddings),
};
/* A capabilities block, even an empty one, is a declaration: what it does not
 * say true is false (the proxy refuses it). Without one, nothing is known and
 * nothing is refused (gateway/caps.c). */
static sb_err caps_declared(struct walk *w, void *elem, const struct sb__ynode *n)
{
    ((struct sb_store_model *)elem)->caps.declared = true;
    return SB_OK;
}

static const struct table caps_table = TABLE(caps_fields, MODEL, NULL, caps_declared);

static const struct field pricing_fields[] = {
    NUM("input_per_mtok", MODEL, input_per_mtok),
    NUM("output_per_mtok", MODEL, output_per_mtok),
};
static const struct table pricing_table = TABLE(pricing_fields, MODEL, NULL, NULL);

static const struct field model_fields[] = {
    STR("id", MODEL, id),
    STR("provider", MODEL, provider),
    STR("upstream_model", MODEL, upstream_model),
    STR("name", MODEL, name),
    INT("context_length", MODEL, context_length, 0, 100000000),
    INT("max_output_tokens", MODEL, max_output_tokens, 0, 100000000),
    MAP("capabilities", caps_table),
    MAP("pricing", pricing_table),
    INT("fallback_priority", MODEL, fallback_priority, -1000000, 1000000),
    ARR("fallbacks", F_STRS, MODEL, fallbacks, nfallbacks, NULL),
    BOOL("enabled", MODEL, enabled),
    STR("description", MODEL, description),
    STR("status", MODEL, status),
};

/* A model that says nothing about capabilities can at least stream. */
static void init_model(void *elem)
{
    struct sb_store_model *m = elem;
    m->enabled = true;
    m->is_system = true;
    m->caps.streaming = true;
}

static const struct table model_table = TABLE(model_fields, MODEL, init_model, check_model);

#define ROUTE_TTL_MAX 2592000 /* 30 days, in seconds */

static const struct field route_cache_fields[] = {
    INT("ttl_s", ROUTE, cache_ttl_s, 1, ROUTE_TTL_MAX),
    BOOL("shared", ROUTE, cache_shared),
    BOOL("sampled", ROUTE, cache_sampled),
};

/* A cache block turns the cache on, so it must say for how long. */
static sb_err check_route_cache(struct walk *w, void *elem, const struct sb__ynode *n)
{
    if (((struct sb_store_route *)elem)->cache_ttl_s == 0)
        return missing(w, n->line, "ttl_s", " (seconds, 1 .. 2592000)");
    return SB_OK;
}

static const struct table route_cache_table =
    TABLE(route_cache_fields, ROUTE, NULL, check_route_cache);

static const struct field route_fields[] = {
    STR("id", ROUTE, id),
    STR("strategy", ROUTE, strategy),
    ARR("targets", F_STRS, ROUTE, targets, ntargets, NULL),
    {.key = "weights",
     .kind = F_INTS,
     .off = offsetof(ROUTE, weights),
     .off_n = offsetof(ROUTE, nweights),
     .min = 0,
     .max = 1000000},
    MAP("cache", route_cache_table), /* issue 7 part 9 */
};

static void init_route(void *elem)
{
    ((struct sb_store_route *)elem)->is_system = true;
}

static const struct table route_table = TABLE(route_fields, ROUTE, init_route, check_route);

static const struct field server_fields[] = {
    INT("max_body_bytes", CFG, server.max_body_bytes, 1024, 1073741824),
    INT("max_header_bytes", CFG, server.max_header_bytes, 1024, 1048576),
    INT("header_timeout_ms", CFG, server.header_timeout_ms, 100, 600000),
    INT("idle_timeout_ms", CFG, server.idle_timeout_ms, 100, 3600000),
    INT("max_connections", CFG, server.max_connections, 1, 1000000),
    INT("shutdown_timeout_ms", CFG, server.shutdown_timeout_ms, 0, 600000),
};
static const struct table server_table = TABLE(server_fields, CFG, NULL, NULL);

static const struct field cache_fields[] = {
    INT("max_bytes", CFG, cache.max_bytes, 1048576, 68719476736LL),
    INT("max_entries", CFG, cache.max_entries, 1, 100000000),
    INT("max_entry_bytes", CFG, cache.max_entry_bytes, 1024, 68719476736LL),
};

static sb_err check_cache(struct walk *w, void *elem, const struct sb__ynode *n)
{
    const struct sb_cache_limits *c = &((struct sb_config *)elem)->cache;
    if (c->max_entry_bytes > c->max_bytes)
        return ffail(w, n, "max_entry_bytes", "must not exceed max_bytes (%lld)",
                     (long long)c->max_bytes);
    return SB_OK;
}
static const struct table cache_table = TABLE(cache_fields, CFG, NULL, check_cache);

static const struct field routing_fields[] = {
    INT("retries", CFG, routing.retries, 0, 10),
    INT("retry_backoff_ms", CFG, routing.retry_backoff_ms, 1, 60000),
    INT("retry_max_wait_ms", CFG, routing.retry_max_wait_ms, 0, 600000),
    INT("deadline_ms", CFG, routing.deadline_ms, 1000, 3600000),
    INT("breaker_failures", CFG, routing.breaker_failures, 1, 1000),
    INT("breaker_cooldown_ms", CFG, routing.breaker_cooldown_ms, 100, 3600000),
};
static const struct table routing_table = TABLE(routing_fields, CFG, NULL, NULL);

static const struct field top_fields[] = {
    STR("listen", CFG, listen),
    STR("database", CFG, database),
    STR("redis", CFG, redis),
    INT("workers", CFG, workers, 0, 1024),
    CRED("metrics_token", CFG, metrics_token),
    BOOL("allow_private_base_urls", CFG, allow_private_base_urls),
    MAP("server", server_table),
    MAP("cache", cache_table),
    MAP("routing", routing_table),
    ARR("providers", F_LIST, CFG, system.providers, system.nproviders, &provider_table),
    ARR("models", F_LIST, CFG, system.models, system.nmodels, &model_table),
    ARR("routes", F_LIST, CFG, system.routes, system.nroutes, &route_table),
};
static const struct table top_table = TABLE(top_fields, CFG, NULL, NULL);

/* ---- cross checks ---- */

/* An id and the index of its entry, sorted by id for duplicate checks and lookups. */
struct idx {
    const char *id;
    size_t i;
};

static int idx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct idx *)a)->id, ((const struct idx *)b)->id);
}

/* Every entity struct starts with `const char *id`. */
static struct idx *sorted_ids(struct walk *w, const void *base, size_t n, size_t stride)
{
    struct idx *v = sb_arena_alloc(w->cfg->arena, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].id = *(const char *const *)((const char *)base + i * stride);
        v[i].i = i;
    }
    qsort(v, n, sizeof(*v), idx_cmp);
    return v;
}

static bool has_id(const struct idx *v, size_t n, const char *id)
{
    struct idx key = {id, 0};
    return bsearch(&key, v, n, sizeof(*v), idx_cmp) != NULL;
}

/* The i-th entry node of the top-level list `list`. */
static const struct sb__ynode *entry_node(const struct walk *w, const char *list, size_t i)
{
    const struct sb__ynode *it = member(w->root, list)->child;
    while (i-- && it)
        it = it->next;
    return it;
}

static sb_err check_unique(struct walk *w, const char *list, const struct idx *v, size_t n)
{
    for (size_t k = 1; k < n; k++) {
        if (strcmp(v[k - 1].id, v[k].id) != 0)
            continue;
        size_t later = v[k].i > v[k - 1].i ? v[k].i : v[k - 1].i;
        size_t mark = path_push(w, "%s[%zu]", list, later);
        sb_err rc = ffail(w, entry_node(w, list, later), "id", "duplicate id '%s'", v[k].id);
        path_pop(w, mark);
        return rc;
    }
    return SB_OK;
}

/* A route target: a model id, or provider/upstream_model of a known provider. */
static bool target_ok(struct walk *w, const char *t, const struct idx *pv, const struct idx *mv)
{
    const struct sb_store_entities *e = &w->cfg->system;
    const char *slash = strchr(t, '/');
    if (!slash)
        return has_id(mv, e->nmodels, t);
    char prov[65];
    size_t plen = (size_t)(slash - t);
    if (plen == 0 || plen >= sizeof(prov) || slash[1] == '\0')
        return false;
    memcpy(prov, t, plen);
    prov[plen] = '\0';
    return has_id(pv, e->nproviders, prov);
}

#define UNKNOWN_TARGET "'%.100s' is neither a model id nor provider/upstream_model of a known provider"

static sb_err check_references(struct walk *w, const struct idx *pv, const struct idx *mv)
{
    const struct sb_store_entities *e = &w->cfg->system;
    sb_err rc = SB_OK;
    for (size_t i = 0; rc == SB_OK && i < e->nmodels; i++) {
        const struct sb_store_model *m = &e->models[i];
        size_t mark = path_push(w, "models[%zu]", i);
        if (!has_id(pv, e->nproviders, m->provider))
            rc = ffail(w, entry_node(w, "models", i), "provider", "unknown provider '%.64s'",
                       m->provider);
        for (size_t t = 0; rc == SB_OK && t < m->nfallbacks; t++)
            if (!target_ok(w, m->fallbacks[t], pv, mv))
                rc = ffail(w, entry_node(w, "models", i), "fallbacks", UNKNOWN_TARGET,
                           m->fallbacks[t]);
        path_pop(w, mark);
    }
    for (size_t i = 0; rc == SB_OK && i < e->nroutes; i++) {
        const struct sb_store_route *r = &e->routes[i];
        size_t mark = path_push(w, "routes[%zu]", i);
        if (has_id(mv, e->nmodels, r->id))
            rc = ffail(w, entry_node(w, "routes", i), "id", "'%s' is already a model id", r->id);
        for (size_t t = 0; rc == SB_OK && t < r->ntargets; t++)
            if (!target_ok(w, r->targets[t], pv, mv))
                rc = ffail(w, entry_node(w, "routes", i), "targets", UNKNOWN_TARGET,
                           r->targets[t]);
        path_pop(w, mark);
    }
    return rc;
}

static sb_err check_cross(struct walk *w)
{
    const struct sb_store_entities *e = &w->cfg->system;
    struct idx *pv = sorted_ids(w, e->providers, e->nproviders, sizeof(*e->providers));
    struct idx *mv = sorted_ids(w, e->models, e->nmodels, sizeof(*e->models));
    struct idx *rv = sorted_ids(w, e->routes, e->nroutes, sizeof(*e->routes));
    sb_err rc = check_unique(w, "providers", pv, e->nproviders);
    if (rc == SB_OK)
        rc = check_unique(w, "models", mv, e->nmodels);
    if (rc == SB_OK)
        rc = check_unique(w, "routes", rv, e->nroutes);
    if (rc == SB_OK)
        rc = check_references(w, pv, mv);
    return rc;
}

/* listen is HOST:PORT with a port in 1..65535; database and redis have known schemes. */
static sb_err check_top(struct walk *w)
{
    const struct sb_config *c = w->cfg;
    const char *colon = strrchr(c->listen, ':');
    struct sb_slice port = colon ? sb_slice_cstr(colon + 1) : SB_SLICE_NULL;
    unsigned long long p = 0;
    if (!colon || !sb_slice_to_u64(port, &p) || p == 0 || p > 65535)
        return ffail(w, w->root, "listen", "expected HOST:PORT, e.g. 127.0.0.1:8080");
    struct sb_slice db = sb_slice_cstr(c->database);
    if (!sb_slice_starts_with(db, SB_SLICE("sqlite:")) &&
        !sb_slice_starts_with(db, SB_SLICE("postgres://")) &&
        !sb_slice_starts_with(db, SB_SLICE("postgresql://")))
        return ffail(w, w->root, "database", "expected sqlite:PATH or postgres://...");
    if (c->redis && strncmp(c->redis, "redis://", 8) != 0 && strncmp(c->redis, "rediss://", 9))
        return ffail(w, w->root, "redis", "expected redis://HOST:PORT");
    return SB_OK;
}

/* ---- public API ---- */

struct sb_config *sb_config_default(void)
{
    struct sb_arena *a = sb_arena_create(8192);
    struct sb_config *c = sb_arena_calloc(a, sizeof(*c));
    c->arena = a;
    c->path = "(defaults)";
    c->listen = "127.0.0.1:8080";
    c->database = "sqlite:./switchboard.db";
    c->server = (struct sb_server_limits){
        .max_body_bytes = 8 * 1024 * 1024,
        .max_header_bytes = 16 * 1024,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .max_connections = 10000,
        .shutdown_timeout_ms = 10000,
    };
    c->cache = (struct sb_cache_limits){.max_bytes = 64 * 1024 * 1024, .max_entries = 65536};
    c->routing = (struct sb_routing_limits){
        .retries = 0, /* opt-in: SDKs retry too, and retries multiply */
        .retry_backoff_ms = 250,
        .retry_max_wait_ms = 5000,
        .deadline_ms = 120000,
        .breaker_failures = 5,
        .breaker_cooldown_ms = 30000,
    };
    return c;
}

void sb_config_free(struct sb_config *c)
{
    if (c)
        sb_arena_free(c->arena);
}

static sb_err walk_root(struct walk *w)
{
    if (!w->root || is_null(w->root))
        return SB_OK; /* an empty file: the defaults */
    sb_err rc = walk_map(w, &top_table, w->cfg, w->root);
    if (rc == SB_OK)
        rc = check_top(w);
    if (rc == SB_OK)
        rc = check_cross(w);
    return rc;
}

/* ---- one entry from an /api body ---- */

/* Takes the credential keys out of a provider body: over the API they carry
 * the secret itself (DESIGN.md §4), which the walker must never see. */
static sb_err take_creds(struct sb__ynode *map, struct sb_config_creds *c, struct sb_error *err)
{
    struct {
        const char *key;
        const char **dst;
    } keys[] = {{"api_key", &c->api_key},
                {"aws_access_key_id", &c->aws_access_key_id},
                {"aws_secret_access_key", &c->aws_secret_access_key},
                {"aws_session_token", &c->aws_session_token}};
    struct sb__ynode **link = &map->child, *last = NULL;
    while (*link) {
        struct sb__ynode *k = *link, *v = k->next;
        size_t i = 0;
        while (i < 4 && strcmp(k->str, keys[i].key) != 0)
            i++;
        if (i == 4) {
            last = v;
            link = &v->next;
            continue;
        }
        if (v->kind != SB_Y_SCALAR || v->plain || v->len == 0 || v->len > 4096 ||
            !printable(v->str, 4096))
            return sb_fail_field(err, SB_E_BAD_REQUEST, keys[i].key,
                                 "%s: expected the credential as a non-empty string", keys[i].key);
        if (strncmp(v->str, "env:", 4) == 0 || strncmp(v->str, "file:", 5) == 0)
            return sb_fail_field(err, SB_E_BAD_REQUEST, keys[i].key,
                                 "%s: send the credential itself; env: and file: references "
                                 "are for the config file only",
                                 keys[i].key);
        *keys[i].dst = v->str;
        *link = v->next;
        map->count--;
    }
    map->last = last;
    return SB_OK;
}

static const struct table *const entry_tables[] = {
    [SB_CONFIG_PROVIDER] = &provider_table,
    [SB_CONFIG_MODEL] = &model_table,
    [SB_CONFIG_ROUTE] = &route_table,
};

sb_err sb_config_entry_from_json(struct sb_arena *a, enum sb_config_entry kind,
                                 const struct sb_json *obj, void *out,
                                 struct sb_config_creds *creds, struct sb_error *err)
{
    struct sb_config tmp = {.arena = a};
    struct walk w = {.cfg = &tmp, .name = "body", .err = err, .api = true};
    const struct table *t = entry_tables[kind];
    struct sb__ynode *root = NULL;
    struct sb_config_creds none;
    if (!creds)
        creds = &none;
    memset(creds, 0, sizeof(*creds));
    if (!obj || obj->type != SB_JSON_OBJECT)
        return sb_fail(err, SB_E_BAD_REQUEST, "the body must be a JSON object");
    sb_err rc = sb__json_to_ynode(a, obj, &root, err);
    if (rc == SB_OK && kind == SB_CONFIG_PROVIDER)
        rc = take_creds(root, creds, err);
    memset(out, 0, t->size);
    if (rc == SB_OK && t->init)
        t->init(out);
    if (rc == SB_OK)
        rc = walk_map(&w, t, out, root);
    if (rc == SB_OK && t->check)
        rc = t->check(&w, out, root);
    /* is_system is the config file's; an API entry never is one. */
    if (kind == SB_CONFIG_PROVIDER)
        ((struct sb_store_provider *)out)->is_system = false;
    else if (kind == SB_CONFIG_MODEL)
        ((struct sb_store_model *)out)->is_system = false;
    else
        ((struct sb_store_route *)out)->is_system = false;
    return rc;
}

sb_err sb_config_parse(const char *name, const char *p, size_t len, struct sb_config **out,
                       struct sb_error *err)
{
    struct sb_arena *tree = sb_arena_create(16384);
    struct sb_config *cfg = sb_config_default();
    struct walk w = {.cfg = cfg, .name = name, .err = err};
    sb_err rc = SB_OK;
    *out = NULL;
    cfg->path = sb_arena_strndup(cfg->arena, name, strlen(name));
    if (len > MAX_FILE) {
        rc = sb_fail(err, SB_E_CONFIG, "%s: larger than %d bytes", name, MAX_FILE);
        goto out;
    }
    struct sb__ynode *root = NULL;
    rc = sb__yaml_read(tree, name, p, len, &root, err);
    w.root = root;
    if (rc == SB_OK)
        rc = walk_root(&w);
out:
    sb_arena_free(tree);
    if (rc == SB_OK)
        *out = cfg;
    else
        sb_config_free(cfg);
    return rc;
}

/* Reads at most max bytes of a regular file into owned memory (free with free()). */
static sb_err read_file(const char *path, size_t max, char **out, size_t *len, struct sb_error *err)
{
    struct stat st;
    sb_err rc = SB_OK;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sb_fail(err, SB_E_CONFIG, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = sb_fail(err, SB_E_CONFIG, "%s: not a regular file", path);
    else if ((size_t)st.st_size > max)
        rc = sb_fail(err, SB_E_CONFIG, "%s: larger than %zu bytes", path, max);
    char *buf = rc == SB_OK ? sb_xmalloc((size_t)st.st_size + 1) : NULL;
    size_t n = 0;
    while (rc == SB_OK && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = sb_fail(err, SB_E_CONFIG, "%s: read failed", path);
        else
            n += (size_t)r;
    }
    close(fd);
    if (rc != SB_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return SB_OK;
}

sb_err sb_config_load(const char *path, struct sb_config **out, struct sb_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    sb_err rc = read_file(path, MAX_FILE, &text, &len, err);
    if (rc == SB_OK)
        rc = sb_config_parse(path, text, len, out, err);
    free(text);
    return rc;
}

/* ---- secrets ---- */

static sb_err resolve_file(const char *path, struct sb_secret **out, struct sb_error *err)
{
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    struct sb_error why = {0};
    sb_err rc = read_file(path, MAX_SECRET_FILE, &buf, &n, &why);
    if (rc != SB_OK)
        return sb_fail(err, SB_E_CONFIG, "credential file:%s", why.msg); /* "PATH: reason" */
    size_t len = n;
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    if (len == 0)
        rc = sb_fail(err, SB_E_CONFIG, "credential file:%s: is empty", path);
    else
        *out = sb_secret_new(buf, len);
    sb_secret_wipe(buf, n);
    free(buf);
    if (rc == SB_OK && stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        sb_warn("msg=\"credential file is readable by group or others; chmod 600 it\" path=%s",
                path);
    return rc;
}

sb_err sb_config_resolve_secret(const char *ref, struct sb_secret **out, struct sb_error *err)
{
    *out = NULL;
    if (!ref)
        return SB_OK;
    if (strncmp(ref, "env:", 4) == 0 && env_name_ok(ref + 4)) {
        const char *v = getenv(ref + 4);
        if (!v || !*v) {
            sb_warn("msg=\"credential variable is not set; requests will carry no key\" var=%s",
                    ref + 4);
            return SB_OK;
        }
        *out = sb_secret_new(v, strlen(v));
        return SB_OK;
    }
    if (strncmp(ref, "file:", 5) == 0 && ref[5])
        return resolve_file(ref + 5, out, err);
    return sb_fail(err, SB_E_CONFIG, "credential reference must be env:NAME or file:PATH");
}
