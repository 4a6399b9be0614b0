/* SPDX-License-Identifier: MIT */
/*
 * config_int.h - the config walker's shapes, shared by the config files
 * (src/registry/ only; the public face is config.h).
 *
 * A key table per section drives the walk (STYLE.md practice 5). The files:
 * config_walk.c is the generic walker (messages, one setter per value kind,
 * the value checks); config_providers.c, config_models.c (models and routes)
 * and config.c (top level, server, cache, routing) hold the tables and the
 * checks of their entries; config_cross.c checks what entries say about
 * each other. Nothing here reads a credential's value.
 */
#ifndef SB_REGISTRY_CONFIG_INT_H
#define SB_REGISTRY_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "registry/config.h"
#include "registry/config_yaml.h"

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

/* ---- key tables ---- */

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

/* The entry tables (config_providers.c, config_models.c), for the top
 * level's lists and for /api bodies. */
extern const struct table sb__config_provider_table;
extern const struct table sb__config_model_table;
extern const struct table sb__config_route_table;

/* ---- the walker (config_walk.c) ---- */

/* Applies table t to the mapping map, writing into base. Unknown keys are
 * errors; a key with a null value keeps the default. Per-entry checks of
 * nested lists and maps run here; t's own check is the caller's. */
sb_err sb__config_walk_map(struct walk *w, const struct table *t, void *base,
                           const struct sb__ynode *map);

/* Appends to the key path (printf-style); returns the mark to pop back to. */
size_t sb__config_path_push(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb__config_path_pop(struct walk *w, size_t old);

/* "file:line: path: message" (over the API: "path: message", 400). Never
 * pass a credential value to these. */
sb_err sb__config_fail(struct walk *w, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for the entry at node, at the path and line of its key `key`. */
sb_err sb__config_fail_at(struct walk *w, const struct sb__ynode *node, const char *key,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "<key> is required<more>", naming key as the field at fault. */
sb_err sb__config_missing(struct walk *w, int line, const char *key, const char *more);
/* Names key (under the current path) as the field at fault of the error rc. */
sb_err sb__config_at_key(struct walk *w, const char *key, sb_err rc);

/* The value node of key in map (borrowed), or NULL. */
const struct sb__ynode *sb__config_member(const struct sb__ynode *map, const char *key);
/* "key:" with no value, "~" or "null". */
bool sb__config_is_null(const struct sb__ynode *v);

/* ---- value checks (config_walk.c) ---- */

/* 1..max characters, all from allowed. */
bool sb__config_chars_ok(const char *s, const char *allowed, size_t max);
/* 1..max bytes of printable ASCII or UTF-8: no spaces or control characters. */
bool sb__config_printable(const char *s, size_t max);
/* [A-Za-z_][A-Za-z0-9_]*: what env:NAME may name. */
bool sb__config_env_name_ok(const char *s);

/* ---- cross checks (config_cross.c) ---- */

/* Ids unique per list, models' providers known, fallbacks and route targets
 * resolvable, no route named like a model: over w->cfg->system, after the walk. */
sb_err sb__config_check_cross(struct walk *w);

#endif
