/* SPDX-License-Identifier: MIT */
/*
 * config_walk.c - the generic config walker: a key table applied to a tree.
 *
 * config_yaml.c (a file) or config_json.c (an /api body) gives us a tree of
 * nodes with lines; a table row says which key, what kind of value, where it
 * goes in the struct and its range (config_int.h). Here are the setters, one
 * per kind, and the messages: every error says file:line and the key path.
 * This file knows no section: providers, models and the rest live in their
 * own files. No message ever echoes a credential value.
 *
 * Chapters: messages · field setters · value checks.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/config_int.h"

/* ---- messages ---- */

size_t sb__config_path_push(struct walk *w, const char *fmt, ...)
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

void sb__config_path_pop(struct walk *w, size_t old)
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

/* "file:line: path: message". Never pass a credential value to this. */
sb_err sb__config_fail(struct walk *w, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_err rc = wfailv(w, line, fmt, ap);
    va_end(ap);
    return rc;
}

/* Names key (under the current path) as the field at fault of the error rc. */
sb_err sb__config_at_key(struct walk *w, const char *key, sb_err rc)
{
    if (w->err)
        snprintf(w->err->field, sizeof(w->err->field), "%.40s%s%.20s", w->path, w->plen ? "." : "",
                 key);
    return rc;
}

/* "<key> is required<more>", with the field at fault set to the missing key. */
sb_err sb__config_missing(struct walk *w, int line, const char *key, const char *more)
{
    return sb__config_at_key(w, key, sb__config_fail(w, line, "%s is required%s", key, more));
}

/* The value node of key in map, or NULL. */
const struct sb__ynode *sb__config_member(const struct sb__ynode *map, const char *key)
{
    if (!map || map->kind != SB_Y_MAP)
        return NULL;
    for (const struct sb__ynode *k = map->child; k; k = k->next->next)
        if (strlen(key) == k->len && memcmp(k->str, key, k->len) == 0)
            return k->next;
    return NULL;
}

/* Like sb__config_fail, for the entry at node: the path and line of its key `key`. */
sb_err sb__config_fail_at(struct walk *w, const struct sb__ynode *node, const char *key,
                          const char *fmt, ...)
{
    const struct sb__ynode *v = sb__config_member(node, key);
    size_t mark = sb__config_path_push(w, w->plen ? ".%s" : "%s", key);
    va_list ap;
    va_start(ap, fmt);
    sb_err rc = wfailv(w, v ? v->line : node->line, fmt, ap);
    va_end(ap);
    sb__config_path_pop(w, mark);
    return rc;
}

/* ---- field setters ---- */

typedef sb_err (*set_fn)(struct walk *w, const struct field *f, void *base,
                         const struct sb__ynode *v);

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

bool sb__config_is_null(const struct sb__ynode *v)
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
        return sb__config_fail(w, v->line, "expected a string");
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
        return sb__config_fail(w, v->line, "expected an integer in [%lld, %lld]", (long long)f->min,
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
        return sb__config_fail(w, v->line, "expected a number in [0, 1e9]");
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
    return sb__config_fail(w, v->line, "expected true or false");
}

bool sb__config_env_name_ok(const char *s)
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
        return sb__config_fail(w, v->line, "send the credential itself here, not a reference");
    if (v->kind != SB_Y_SCALAR)
        return sb__config_fail(w, v->line, "expected env:NAME or file:PATH");
    if (strncmp(v->str, "env:", 4) == 0 && !sb__config_env_name_ok(v->str + 4))
        return sb__config_fail(w, v->line, "env: needs a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (strncmp(v->str, "file:", 5) == 0 && v->str[5] == '\0')
        return sb__config_fail(w, v->line, "file: needs a path");
    if (strncmp(v->str, "env:", 4) != 0 && strncmp(v->str, "file:", 5) != 0)
        return sb__config_fail(w, v->line,
                               "literal keys are not allowed; use env:NAME or file:PATH");
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
        return sb__config_fail(w, v->line, "expected a mapping of header names to values");
    struct sb_store_kv *kv = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*kv));
    size_t i = 0;
    for (const struct sb__ynode *k = v->child; k; k = k->next->next, i++) {
        const struct sb__ynode *val = k->next;
        if (!header_name_ok(k->str, k->len))
            return sb__config_fail(w, k->line, "'%.40s' is not a valid header name", k->str);
        if (header_is_credential(k->str, k->len))
            return sb__config_fail(
                w, k->line,
                "header %s carries a credential; use api_key with env:NAME or file:PATH", k->str);
        if (val->kind != SB_Y_SCALAR || !header_value_ok(val->str, val->len))
            return sb__config_fail(w, val->line, "header %s: expected a one-line string", k->str);
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
        return sb__config_fail(w, v->line, "expected a list of strings");
    const char **list = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*list));
    size_t i = 0;
    for (const struct sb__ynode *it = v->child; it; it = it->next, i++) {
        if (it->kind != SB_Y_SCALAR || it->len == 0)
            return sb__config_fail(w, it->line, "expected a list of strings");
        list[i] = copy(w, it);
    }
    *AT(base, f->off, const char **) = list;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err set_ints(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    if (v->kind != SB_Y_SEQ)
        return sb__config_fail(w, v->line, "expected a list of integers");
    int64_t *list = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*list));
    size_t i = 0;
    for (const struct sb__ynode *it = v->child; it; it = it->next, i++)
        if (it->kind != SB_Y_SCALAR || !parse_int(it, &list[i]) || list[i] < f->min ||
            list[i] > f->max)
            return sb__config_fail(w, it->line, "expected a list of integers in [%lld, %lld]",
                                   (long long)f->min, (long long)f->max);
    *AT(base, f->off, const int64_t *) = list;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err set_map(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    sb_err rc = sb__config_walk_map(w, f->sub, base, v);
    if (rc == SB_OK && f->sub->check)
        rc = f->sub->check(w, base, v);
    return rc;
}

static sb_err set_list(struct walk *w, const struct field *f, void *base, const struct sb__ynode *v)
{
    const struct table *t = f->sub;
    if (w->api && t->file_only)
        return sb__config_fail(w, v->line, "%s", t->file_only);
    if (v->kind != SB_Y_SEQ)
        return sb__config_fail(w, v->line, "expected a list");
    char *arr = sb_arena_calloc(w->cfg->arena, (v->count + 1) * t->size);
    size_t i = 0;
    sb_err rc = SB_OK;
    for (const struct sb__ynode *it = v->child; rc == SB_OK && it; it = it->next, i++) {
        size_t mark = sb__config_path_push(w, "[%zu]", i);
        if (t->init)
            t->init(arr + i * t->size);
        rc = sb__config_walk_map(w, t, arr + i * t->size, it);
        if (rc == SB_OK && t->check)
            rc = t->check(w, arr + i * t->size, it);
        sb__config_path_pop(w, mark);
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

sb_err sb__config_walk_map(struct walk *w, const struct table *t, void *base,
                           const struct sb__ynode *map)
{
    if (map->kind != SB_Y_MAP)
        return sb__config_fail(w, map->line, "expected a mapping");
    for (const struct sb__ynode *k = map->child; k; k = k->next->next) {
        const struct field *f = find_field(t, k);
        if (!f)
            return sb__config_fail(w, k->line, "unknown key '%.40s'", k->str);
        if (sb__config_is_null(k->next))
            continue; /* "key:" with no value keeps the default */
        size_t mark = sb__config_path_push(w, w->plen ? ".%s" : "%s", f->key);
        sb_err rc = setters[f->kind](w, f, base, k->next);
        sb__config_path_pop(w, mark);
        if (rc != SB_OK)
            return rc;
    }
    return SB_OK;
}

/* ---- value checks ---- */

bool sb__config_chars_ok(const char *s, const char *allowed, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strspn(s, allowed) == n;
}

/* Printable ASCII or UTF-8, no spaces or control characters. */
bool sb__config_printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || s[n] == 0x7f)
            return false;
    return n > 0 && n <= max;
}
