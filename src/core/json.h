/* SPDX-License-Identifier: MIT */
/*
 * json.h - a strict JSON reader (into an arena tree) and a streaming writer.
 *
 * Reader: RFC 8259 strict. Rejects invalid UTF-8 (overlongs, surrogates
 * encoded in UTF-8, > U+10FFFF), bad escapes, lone surrogate \u escapes,
 * leading zeros, trailing garbage, control characters in strings. Bounded by
 * depth and size. Nodes keep `raw`, the exact source span of each value,
 * so a caller can splice a new value into the original bytes (that is how
 * the proxy rewrites only `model` and passes the rest through untouched).
 * The source is never modified; decoded strings point into the source when
 * they contain no escapes and into the arena otherwise.
 *
 * Numbers are kept exact: `raw` holds the text; sb_json_int64() succeeds
 * only for integers that fit, sb_json_double() converts with strtod.
 *
 * Writer: appends to an sb_buf, inserts commas itself, escapes strings.
 */
#ifndef SB_CORE_JSON_H
#define SB_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/slice.h"

enum sb_json_type {
    SB_JSON_NULL,
    SB_JSON_FALSE,
    SB_JSON_TRUE,
    SB_JSON_NUMBER,
    SB_JSON_STRING,
    SB_JSON_ARRAY,
    SB_JSON_OBJECT,
};

struct sb_json {
    enum sb_json_type type;
    struct sb_slice raw;   /* exact source bytes of this value (strings include quotes) */
    struct sb_slice key;   /* decoded member name when the parent is an object */
    struct sb_slice str;   /* decoded value of a STRING (valid UTF-8, may contain NUL); of a
                              NUMBER, NULL, or its text kept apart (sb_json_rebase) */
    struct sb_json *child; /* first element/member of ARRAY/OBJECT */
    struct sb_json *next;  /* next sibling */
    size_t count;          /* number of children */
    bool escaped;          /* appended: a lazy STRING whose str still holds its escapes (see
                              sb_json_limits.lazy_strings); sb_json_text decodes it */
};

struct sb_json_limits {
    size_t max_depth; /* nesting of arrays/objects; 0 = 64 */
    size_t max_bytes; /* input size; 0 = unbounded */
    /* Appended: STRING values are validated but not decoded: a value with
     * escapes keeps them in str (its bytes between the quotes) and says so in
     * escaped. For a pass-through, whose strings go upstream as they came:
     * a long prompt is not copied once more just to be unescaped. Member
     * names are always decoded (lookups need them). */
    bool lazy_strings;
};

/* A STRING's value, decoded into a when the tree was parsed with lazy
 * strings and it has escapes; else its str. NULL slice for a non-string. */
struct sb_slice sb_json_text(struct sb_arena *a, const struct sb_json *j);

/*
 * Parses p[0..len) into a tree allocated from a.
 * Borrows p: the tree's slices point into it, valid while p and a live.
 * Returns SB_OK and *out, or SB_E_BAD_JSON (SB_E_TOO_LARGE for limits) with
 * err->msg naming the byte offset and the problem.
 */
sb_err sb_json_parse(struct sb_arena *a, const char *p, size_t len,
                     const struct sb_json_limits *lim, struct sb_json **out, struct sb_error *err);

/* Appended (issue 9 item 6): points every slice of the tree that lies in
 * from[0..len] at the same offset of to, which must hold the same bytes;
 * slices elsewhere (strings decoded into the arena) stay. For a body parsed
 * from a copy read out of its file (cheap) and then used through the file's
 * map (whose pages are costly to fault in but can be dropped): the copy can
 * be freed at once. With keep set, member names and string values of at
 * most keep_max bytes are copied into keep instead (one block for them all,
 * each followed by a NUL), so that reading them (every lookup compares
 * names) never touches to, nor does reading a number of at most keep_max
 * bytes (its text is kept in str); raw spans always move to to, since
 * callers take offsets from them. */
void sb_json_rebase(struct sb_json *root, const char *from, size_t len, const char *to,
                    struct sb_arena *keep, size_t keep_max);

/*
 * Appended (issue 9, time to first byte): checks p[0..len) exactly as
 * sb_json_parse would (grammar, UTF-8, limits, the same errors) without
 * building a tree, and picks out values on the way. paths[i] is a
 * NULL-terminated list of steps from the root: a member name, or in an
 * array a position in decimal ({"choices", "0", "delta", NULL}; a step that
 * starts with a digit is a position and names no member). out[i] is
 * the source span (as sb_json.raw) of the value that sb_json_get and
 * sb_json_at would reach along it (the last of duplicate members), or a
 * NULL slice. At most SB_JSON_FIND_MAX paths. On failure every out[i] is NULL.
 * For a relay that reads a few fields of each of many small documents (a
 * stream's chunks): a tree costs ~3x more than the walk.
 */
#define SB_JSON_FIND_MAX 32
sb_err sb_json_find(const char *p, size_t len, const struct sb_json_limits *lim,
                    const char *const *const *paths, size_t n, struct sb_slice *out,
                    struct sb_error *err);
/* The decoded value of a string's source span (raw, quotes included, as
 * sb_json_find returns it): into raw when it has no escapes, else into a.
 * NULL slice when raw is not a string. raw must be valid JSON; a may be NULL
 * when raw holds no backslash. */
struct sb_slice sb_json_unquote(struct sb_arena *a, struct sb_slice raw);

/* Member of an object by exact (case-sensitive) name; the last one if duplicated. NULL if absent or
 * obj is not an object. */
struct sb_json *sb_json_get(const struct sb_json *obj, const char *key);
struct sb_json *sb_json_get_slice(const struct sb_json *obj, struct sb_slice key);
/* Element i of an array, or NULL. */
struct sb_json *sb_json_at(const struct sb_json *arr, size_t i);

bool sb_json_is_string(const struct sb_json *j);
/* true and *out when j is an integer NUMBER that fits in int64 (no fraction, no exponent). */
bool sb_json_int64(const struct sb_json *j, int64_t *out);
/* true and *out when j is any NUMBER (beyond double range: +-HUGE_VAL or 0, as strtod). */
bool sb_json_double(const struct sb_json *j, double *out);
/* true when j is TRUE; false for FALSE, NULL pointer or anything else. */
bool sb_json_bool(const struct sb_json *j);

/* ---- writer ---- */

struct sb_jw {
    struct sb_buf *out; /* borrowed destination */
    uint64_t comma;     /* bit d set: the container at depth d needs a comma before the next item */
    unsigned depth;     /* current nesting, at most 63 */
    sb_err err;         /* first error (SB_E_TOO_LARGE from the buffer), sticky */
};

void sb_jw_init(struct sb_jw *w, struct sb_buf *out);
void sb_jw_obj_begin(struct sb_jw *w);
void sb_jw_obj_end(struct sb_jw *w);
void sb_jw_arr_begin(struct sb_jw *w);
void sb_jw_arr_end(struct sb_jw *w);
/* Member name inside an object; the next value call writes its value. */
void sb_jw_key(struct sb_jw *w, const char *key);
/* The same for a name held as a slice (may contain NUL, e.g. a parsed key). */
void sb_jw_key_slice(struct sb_jw *w, struct sb_slice key);
void sb_jw_str(struct sb_jw *w, struct sb_slice s); /* escapes; invalid UTF-8 becomes U+FFFD */
void sb_jw_cstr(struct sb_jw *w, const char *s);    /* NULL writes null */
void sb_jw_int(struct sb_jw *w, int64_t v);
void sb_jw_double(struct sb_jw *w, double v); /* shortest round-trip form; NaN/Inf as null */
void sb_jw_bool(struct sb_jw *w, bool v);
void sb_jw_null(struct sb_jw *w);
/* Already-valid JSON text, copied verbatim as one value. */
void sb_jw_raw(struct sb_jw *w, struct sb_slice json);

/*
 * Appends s to out as a JSON string body (no quotes), escaping as needed:
 * '"', '\\' and control characters (\n \t ... or \u00XX); '/' and UTF-8 pass
 * through; each byte of invalid UTF-8 becomes U+FFFD, so the result is always
 * valid JSON. On SB_E_TOO_LARGE out may hold part of the escaped text.
 */
sb_err sb_json_escape(struct sb_buf *out, struct sb_slice s);

#endif
