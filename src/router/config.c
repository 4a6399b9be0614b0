/* SPDX-License-Identifier: MIT */
/*
 * config.c - reads the YAML config file into struct sb_config.
 *
 * Two passes. First libyaml's event parser builds a small tree of our own
 * (scalars, mappings, sequences, each with its line), refusing aliases
 * (no billion-laughs expansion), duplicate keys, and input beyond fixed
 * bounds on size, depth and node count. Then a generic walker applies one
 * key table per section (STYLE.md practice 5): a row says which key, what
 * type, where it goes in the struct and its range; adding a key is adding a
 * row. Per-entry checks and cross-references (ids, providers, route
 * targets) run after the walk. Errors carry file:line and the key path.
 *
 * Credentials stay references here. Secret values are read only by
 * sb_config_resolve_secret, and no message ever echoes a credential value.
 *
 * Chapters: YAML tree · messages · field setters · key tables · entry
 * checks · cross checks · public API · secrets.
 */
#include "router/config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/log.h"

#define MAX_FILE (1024 * 1024)  /* config file bytes */
#define MAX_DEPTH 16            /* nesting of mappings and sequences */
#define MAX_NODES 200000        /* scalars + collections in the whole file */
#define MAX_PAIRS 512           /* keys in one mapping */
#define MAX_SECRET_FILE (64 * 1024)

/* ---- YAML tree ---- */

enum ykind { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
    enum ykind kind;
    int line;             /* 1-based line of the node's start */
    bool plain;           /* unquoted scalar: may be a number, bool or null */
    const char *str;      /* SCALAR: NUL-terminated copy (no NUL inside) */
    size_t len;           /* SCALAR: bytes in str */
    size_t count;         /* MAP: pairs; SEQ: items */
    struct ynode *child;  /* MAP: key, value, key, value, ...; SEQ: items */
    struct ynode *last;   /* last child, for appending */
    struct ynode *next;   /* next sibling */
};

struct yreader {
    yaml_parser_t parser;
    struct sb_arena *a;   /* the tree lives here */
    const char *name;     /* file name for messages */
    size_t nodes;         /* built so far */
    struct sb_error *err;
};

static int ev_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static sb_err yfail(struct yreader *y, int line, const char *what)
{
    return sb_fail(y->err, SB_E_CONFIG, "%s:%d: %s", y->name, line, what);
}

static sb_err next_event(struct yreader *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev))
        return SB_OK;
    return sb_fail(y->err, SB_E_CONFIG, "%s:%d: YAML syntax: %s", y->name,
                   (int)y->parser.problem_mark.line + 1,
                   y->parser.problem ? y->parser.problem : "error");
}

static struct ynode *new_node(struct yreader *y, enum ykind kind, const yaml_event_t *ev)
{
    struct ynode *n = sb_arena_calloc(y->a, sizeof(*n));
    n->kind = kind;
    n->line = ev_line(ev);
    y->nodes++;
    return n;
}

static void append(struct ynode *parent, struct ynode *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->child = child;
    parent->last = child;
}

static sb_err read_node(struct yreader *y, yaml_event_t *ev, int depth, struct ynode **out);

static sb_err read_scalar(struct yreader *y, yaml_event_t *ev, struct ynode **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(v, '\0', len))
        return yfail(y, ev_line(ev), "a value contains a NUL character");
    struct ynode *n = new_node(y, Y_SCALAR, ev);
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->str = sb_arena_strndup(y->a, v, len);
    n->len = len;
    *out = n;
    return SB_OK;
}

static bool same_key(const struct ynode *a, const struct ynode *b)
{
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

/* Adds key/value to map; keys are scalars, unique, at most MAX_PAIRS. */
static sb_err add_pair(struct yreader *y, struct ynode *map, struct ynode *key, struct ynode *val)
{
    if (key->kind != Y_SCALAR)
        return yfail(y, key->line, "mapping keys must be plain strings");
    if (map->count == MAX_PAIRS)
        return yfail(y, key->line, "too many keys in one mapping");
    for (const struct ynode *k = map->child; k; k = k->next->next)
        if (same_key(k, key))
            return sb_fail(y->err, SB_E_CONFIG, "%s:%d: duplicate key '%.40s'", y->name,
                           key->line, key->str);
    append(map, key);
    append(map, val);
    map->count++;
    return SB_OK;
}

/* Reads the children of a mapping or sequence until its end event. */
static sb_err read_children(struct yreader *y, struct ynode *n, yaml_event_type_t end, int depth)
{
    struct ynode *key = NULL;
    for (;;) {
        yaml_event_t ev;
        struct ynode *child = NULL;
        sb_err rc = next_event(y, &ev);
        if (rc != SB_OK)
            return rc;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return SB_OK;
        }
        rc = read_node(y, &ev, depth + 1, &child);
        if (rc != SB_OK)
            return rc;
        if (n->kind == Y_SEQ) {
            append(n, child);
            n->count++;
        } else if (!key) {
            key = child;
        } else {
            rc = add_pair(y, n, key, child);
            key = NULL;
        }
        if (rc != SB_OK)
            return rc;
    }
}

/* Builds the node that starts with *ev (which this call deletes). */
static sb_err read_node(struct yreader *y, yaml_event_t *ev, int depth, struct ynode **out)
{
    sb_err rc = SB_OK;
    if (depth > MAX_DEPTH)
        rc = yfail(y, ev_line(ev), "nested too deeply");
    else if (y->nodes >= MAX_NODES)
        rc = yfail(y, ev_line(ev), "too many values");
    else if (ev->type == YAML_SCALAR_EVENT)
        rc = read_scalar(y, ev, out);
    else if (ev->type == YAML_ALIAS_EVENT)
        rc = yfail(y, ev_line(ev), "YAML aliases (*name) are not supported");
    else if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        *out = new_node(y, seq ? Y_SEQ : Y_MAP, ev);
        yaml_event_delete(ev);
        return read_children(y, *out, seq ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT,
                             depth);
    } else
        rc = yfail(y, ev_line(ev), "unexpected YAML event");
    yaml_event_delete(ev);
    return rc;
}

/* Expects the event type t next (stream/document framing). */
static sb_err expect(struct yreader *y, yaml_event_type_t t, yaml_event_t *ev, const char *what)
{
    sb_err rc = next_event(y, ev);
    if (rc == SB_OK && ev->type != t) {
        rc = yfail(y, ev_line(ev), what);
        yaml_event_delete(ev);
    }
    return rc;
}

/* The single document of the stream; *root = NULL for an empty file. */
static sb_err read_document(struct yreader *y, struct ynode **root)
{
    yaml_event_t ev;
    *root = NULL;
    sb_err rc = expect(y, YAML_STREAM_START_EVENT, &ev, "not a YAML stream");
    if (rc != SB_OK)
        return rc;
    yaml_event_delete(&ev);
    rc = next_event(y, &ev);
    if (rc != SB_OK || ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return rc;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    rc = next_event(y, &ev);
    if (rc == SB_OK)
        rc = read_node(y, &ev, 0, root);
    if (rc == SB_OK)
        rc = expect(y, YAML_DOCUMENT_END_EVENT, &ev, "expected the end of the document");
    if (rc != SB_OK)
        return rc;
    yaml_event_delete(&ev);
    rc = expect(y, YAML_STREAM_END_EVENT, &ev, "only one YAML document is allowed");
    if (rc == SB_OK)
        yaml_event_delete(&ev);
    return rc;
}

/* ---- messages ---- */

/* The walker's state: where we are, for messages. */
struct walk {
    struct sb_config *cfg;
    const char *name;         /* file name */
    const struct ynode *root; /* the document's top mapping */
    char path[256];           /* "providers[0].api_key" */
    size_t plen;
    struct sb_error *err;
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
        w->plen += (size_t)n < sizeof(w->path) - w->plen ? (size_t)n : sizeof(w->path) - w->plen - 1;
    return old;
}

static void path_pop(struct walk *w, size_t old)
{
    w->plen = old;
    w->path[old] = '\0';
}

static sb_err wfail(struct walk *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file:line: path: message". Never pass a credential value to this. */
static sb_err wfail(struct walk *w, int line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->plen)
        return sb_fail(w->err, SB_E_CONFIG, "%s:%d: %s: %s", w->name, line, w->path, msg);
    return sb_fail(w->err, SB_E_CONFIG, "%s:%d: %s", w->name, line, msg);
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
    F_MAP,     /* nested mapping, fields of sub in the same struct */
    F_LIST,    /* list of mappings, sub->size bytes each: array at off, count at off_n */
};

struct table;

struct field {
    const char *key;
    enum fkind kind;
    size_t off, off_n;        /* where the value (and its count) go */
    int64_t min, max;         /* F_INT */
    const struct table *sub;  /* F_MAP, F_LIST */
};

typedef sb_err (*check_fn)(struct walk *w, void *elem, const struct ynode *node);

struct table {
    const struct field *fields;
    size_t nfields;
    size_t size;              /* element size, for F_LIST */
    void (*init)(void *elem); /* defaults, before the walk; may be NULL */
    check_fn check;           /* after the walk; may be NULL */
};

typedef sb_err (*set_fn)(struct walk *w, const struct field *f, void *base, const struct ynode *v);

#define AT(base, off, type) ((type *)((char *)(base) + (off)))

static bool is_null(const struct ynode *v)
{
    return v->kind == Y_SCALAR && v->plain &&
           (v->len == 0 || strcmp(v->str, "~") == 0 || strcmp(v->str, "null") == 0 ||
            strcmp(v->str, "Null") == 0 || strcmp(v->str, "NULL") == 0);
}

static const char *copy(struct walk *w, const struct ynode *v)
{
    return sb_arena_strndup(w->cfg->arena, v->str, v->len);
}

static sb_err set_str(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    if (v->kind != Y_SCALAR)
        return wfail(w, v->line, "expected a string");
    *AT(base, f->off, const char *) = copy(w, v);
    return SB_OK;
}

static bool parse_int(const struct ynode *v, int64_t *out)
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

static sb_err set_int(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    int64_t x = 0;
    if (v->kind != Y_SCALAR || !parse_int(v, &x) || x < f->min || x > f->max)
        return wfail(w, v->line, "expected an integer in [%lld, %lld]", (long long)f->min,
                     (long long)f->max);
    *AT(base, f->off, int64_t) = x;
    return SB_OK;
}

static sb_err set_num(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    char *end = NULL;
    bool ok = v->kind == Y_SCALAR && v->plain && v->len > 0 &&
              strspn(v->str, "0123456789.eE+-") == v->len;
    double x = ok ? strtod(v->str, &end) : 0;
    if (!ok || end != v->str + v->len || !isfinite(x) || x < 0 || x > 1e9)
        return wfail(w, v->line, "expected a number in [0, 1e9]");
    *AT(base, f->off, double) = x;
    return SB_OK;
}

static sb_err set_bool(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                               "FALSE"};
    for (size_t i = 0; v->kind == Y_SCALAR && v->plain && i < 3; i++) {
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
static sb_err set_cred(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    if (v->kind != Y_SCALAR)
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

static bool header_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return false;
    return n <= 8192;
}

static sb_err set_headers(struct walk *w, const struct field *f, void *base,
                          const struct ynode *v)
{
    if (v->kind != Y_MAP)
        return wfail(w, v->line, "expected a mapping of header names to values");
    struct sb_store_kv *kv = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*kv));
    size_t i = 0;
    for (const struct ynode *k = v->child; k; k = k->next->next, i++) {
        const struct ynode *val = k->next;
        if (!header_name_ok(k->str, k->len))
            return wfail(w, k->line, "'%.40s' is not a valid header name", k->str);
        if (val->kind != Y_SCALAR || !header_value_ok(val->str, val->len))
            return wfail(w, val->line, "header %s: expected a one-line string", k->str);
        kv[i].name = copy(w, k);
        kv[i].value = copy(w, val);
    }
    *AT(base, f->off, struct sb_store_kv *) = kv;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err set_strs(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    if (v->kind != Y_SEQ)
        return wfail(w, v->line, "expected a list of strings");
    const char **list = sb_arena_calloc(w->cfg->arena, (v->count + 1) * sizeof(*list));
    size_t i = 0;
    for (const struct ynode *it = v->child; it; it = it->next, i++) {
        if (it->kind != Y_SCALAR || it->len == 0)
            return wfail(w, it->line, "expected a list of strings");
        list[i] = copy(w, it);
    }
    *AT(base, f->off, const char **) = list;
    *AT(base, f->off_n, size_t) = i;
    return SB_OK;
}

static sb_err walk_map(struct walk *w, const struct table *t, void *base, const struct ynode *map);

static sb_err set_map(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    return walk_map(w, f->sub, base, v);
}

static sb_err set_list(struct walk *w, const struct field *f, void *base, const struct ynode *v)
{
    const struct table *t = f->sub;
    if (v->kind != Y_SEQ)
        return wfail(w, v->line, "expected a list");
    char *arr = sb_arena_calloc(w->cfg->arena, (v->count + 1) * t->size);
    size_t i = 0;
    sb_err rc = SB_OK;
    for (const struct ynode *it = v->child; rc == SB_OK && it; it = it->next, i++) {
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
    [F_STR] = set_str,         [F_INT] = set_int,   [F_NUM] = set_num,
    [F_BOOL] = set_bool,       [F_CRED] = set_cred, [F_HEADERS] = set_headers,
    [F_STRS] = set_strs,       [F_MAP] = set_map,   [F_LIST] = set_list,
};

static const struct field *find_field(const struct table *t, const struct ynode *key)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (strlen(t->fields[i].key) == key->len && memcmp(t->fields[i].key, key->str, key->len) == 0)
            return &t->fields[i];
    return NULL;
}

static sb_err walk_map(struct walk *w, const struct table *t, void *base, const struct ynode *map)
{
    if (map->kind != Y_MAP)
        return wfail(w, map->line, "expected a mapping");
    for (const struct ynode *k = map->child; k; k = k->next->next) {
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
