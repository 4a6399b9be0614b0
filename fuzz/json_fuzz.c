/* SPDX-License-Identifier: MIT */
/*
 * json_fuzz.c - differential libFuzzer target: our JSON reader against jansson.
 *
 * The input is a JSON document. Both readers must accept or reject it alike,
 * and when both accept, the trees must match: types, string bytes, member
 * names, order and values (jansson keeps one member per name, at its first
 * position, with the last value: we compare against sb_json_get's "last one
 * wins"), numbers exactly (integers via int64, others via the same strtod).
 * Our depth limit is set to jansson's 2048 (see the last divergence).
 *
 * Documented divergences (also asserted in src/core/json_test.c):
 *  - numbers beyond double range: jansson rejects ("real number overflow"),
 *    we accept (raw keeps the text);
 *  - member names containing \u0000: jansson rejects, we accept;
 *  - one NUL byte right after a number or literal: jansson drops it (its
 *    stream uses NUL as a sentinel), we reject;
 *  - depth: jansson counts every value, leaves included (at most 2048 deep),
 *    we count containers (max_depth 2048), so 2048 nested non-empty
 *    containers pass here and fail there.
 *
 * Then, whatever jansson says: a small max_depth changes the answer only to
 * SB_E_TOO_LARGE, exactly when the tree is deeper; our tree re-serialised
 * with sb_jw must parse back to the same tree; doubles written by
 * sb_jw_double must read back bit-exact; and the input escaped with
 * sb_json_escape must always be a valid JSON string that decodes back to the
 * input when it was valid UTF-8. A lazy parse (lazy_strings) must accept
 * and reject exactly the same inputs, build the same tree shape, and give,
 * through sb_json_text, the same bytes for every string as the full parse.
 * sb_json_find must accept and reject the same inputs with the same error
 * message, and find for each of a set of paths the span the tree's
 * sb_json_get/sb_json_at walk reaches (also under max_depth 3). A lazy tree
 * parsed from a copy and rebased (sb_json_rebase, keeping short names,
 * strings and numbers apart) must read the same values with the copy gone,
 * with every raw span at the same offset of the other bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const struct sb_json_limits lim = {.max_depth = 2048, .max_bytes = 0};

/* jansson, with integers exact unless they exceed long long (see json_test.c). */
static json_t *jload(const uint8_t *p, size_t n, json_error_t *e)
{
    json_t *v = json_loadb((const char *)p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, e);
    if (!v && strstr(e->text, "too big"))
        v = json_loadb((const char *)p, n,
                       JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, e);
    return v;
}

static bool slice_is(struct sb_slice s, const char *p, size_t len)
{
    return s.len == len && (len == 0 || memcmp(s.p, p, len) == 0);
}

/* ---- our tree against jansson's ---- */

static bool same(const struct sb_json *a, const json_t *b);

static bool same_number(const struct sb_json *a, const json_t *b)
{
    int64_t i;
    double d;
    if (json_is_integer(b))
        return sb_json_int64(a, &i) && i == json_integer_value(b);
    if (!json_is_real(b) || !sb_json_double(a, &d))
        return false;
    return memcmp(&d, &(double){json_real_value(b)}, sizeof(d)) == 0;
}

static bool seen_before(const struct sb_json *a, const struct sb_json *m)
{
    for (const struct sb_json *p = a->child; p != m; p = p->next)
        if (sb_slice_eq(p->key, m->key))
            return true;
    return false;
}

static bool same_object(const struct sb_json *a, const json_t *b)
{
    const char *k;
    size_t klen;
    json_t *v;
    const struct sb_json *m = a->child;
    json_object_keylen_foreach((json_t *)b, k, klen, v)
    {
        while (m && seen_before(a, m))
            m = m->next;
        if (!m || !slice_is(m->key, k, klen) || !same(sb_json_get_slice(a, m->key), v))
            return false;
        m = m->next;
    }
    while (m && seen_before(a, m))
        m = m->next;
    return m == NULL;
}

static bool same(const struct sb_json *a, const json_t *b)
{
    switch (a->type) {
    case SB_JSON_NULL:
        return json_is_null(b);
    case SB_JSON_TRUE:
        return json_is_true(b);
    case SB_JSON_FALSE:
        return json_is_false(b);
    case SB_JSON_NUMBER:
        return same_number(a, b);
    case SB_JSON_STRING:
        return json_is_string(b) && slice_is(a->str, json_string_value(b), json_string_length(b));
    case SB_JSON_ARRAY:
        if (!json_is_array(b) || json_array_size(b) != a->count)
            return false;
        for (size_t i = 0; i < a->count; i++)
            if (!same(sb_json_at(a, i), json_array_get(b, i)))
                return false;
        return true;
    case SB_JSON_OBJECT:
        return json_is_object(b) && same_object(a, b);
    }
    return false;
}

/* ---- our tree against our tree (after a writer round trip) ---- */

static bool same_tree(const struct sb_json *a, const struct sb_json *b)
{
    if (a->type != b->type || a->count != b->count || !sb_slice_eq(a->key, b->key))
        return false;
    if (a->type == SB_JSON_NUMBER)
        return sb_slice_eq(a->raw, b->raw);
    if (a->type == SB_JSON_STRING)
        return sb_slice_eq(a->str, b->str);
    const struct sb_json *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if (!same_tree(x, y))
            return false;
    return x == NULL && y == NULL;
}

/* Every raw span lies inside the input and starts with its type's first byte. */
static void check_spans(const struct sb_json *j, const uint8_t *p, size_t n)
{
    static const char first[] = {'n', 'f', 't', 0, '"', '[', '{'};
    CHECK((const uint8_t *)j->raw.p >= p && (const uint8_t *)j->raw.p + j->raw.len <= p + n);
    CHECK(j->raw.len > 0);
    if (j->type != SB_JSON_NUMBER)
        CHECK(j->raw.p[0] == first[j->type]);
    size_t count = 0;
    for (const struct sb_json *c = j->child; c; c = c->next, count++)
        check_spans(c, p, n);
    CHECK(count == j->count);
}

static void write_tree(struct sb_jw *w, const struct sb_json *j)
{
    bool obj = j->type == SB_JSON_OBJECT;
    switch (j->type) {
    case SB_JSON_OBJECT:
    case SB_JSON_ARRAY:
        obj ? sb_jw_obj_begin(w) : sb_jw_arr_begin(w);
        for (const struct sb_json *c = j->child; c; c = c->next) {
            if (obj)
                sb_jw_key_slice(w, c->key);
            write_tree(w, c);
        }
        obj ? sb_jw_obj_end(w) : sb_jw_arr_end(w);
        break;
    case SB_JSON_STRING:
        sb_jw_str(w, j->str);
        break;
    case SB_JSON_NUMBER:
        sb_jw_raw(w, j->raw);
        break;
    case SB_JSON_TRUE:
        sb_jw_bool(w, true);
        break;
    case SB_JSON_FALSE:
        sb_jw_bool(w, false);
        break;
    case SB_JSON_NULL:
        sb_jw_null(w);
        break;
    }
}

static size_t tree_depth(const struct sb_json *j)
{
    size_t d = 0;
    for (const struct sb_json *c = j->child; c; c = c->next) {
        size_t cd = tree_depth(c);
        d = cd > d ? cd : d;
    }
    return d + (j->type == SB_JSON_ARRAY || j->type == SB_JSON_OBJECT);
}

/* With a small depth limit: the same answer, or SB_E_TOO_LARGE exactly when too deep. */
static void check_depth_limit(struct sb_arena *a, const uint8_t *p, size_t n, sb_err rc,
                              const struct sb_json *root)
{
    static const struct sb_json_limits small = {.max_depth = 8, .max_bytes = 0};
    struct sb_json *j = NULL;
    struct sb_error err;
    sb_err rc8 = sb_json_parse(a, (const char *)p, n, &small, &j, &err);
    if (rc == SB_OK)
        CHECK(rc8 == (tree_depth(root) > 8 ? SB_E_TOO_LARGE : SB_OK));
    else
        CHECK(rc8 != SB_OK);
}

/* Nesting as jansson counts it: every value, leaves included. */
static size_t value_depth(const struct sb_json *j)
{
    size_t d = 0;
    for (const struct sb_json *c = j->child; c; c = c->next) {
        size_t cd = value_depth(c);
        d = cd > d ? cd : d;
    }
    return d + 1;
}

/* Writer round trip (the writer nests at most 63 deep). */
static void check_rewrite(struct sb_arena *a, const struct sb_json *root)
{
    if (tree_depth(root) > 63)
        return;
    struct sb_buf out;
    struct sb_jw w;
    struct sb_json *back = NULL;
    struct sb_error err;
    sb_buf_init(&out, 0);
    sb_jw_init(&w, &out);
    write_tree(&w, root);
    CHECK(w.err == SB_OK && w.depth == 0);
    CHECK(sb_json_parse(a, out.p, out.len, &lim, &back, &err) == SB_OK);
    CHECK(same_tree(root, back));
    sb_buf_free(&out);
}

/* sb_jw_double of every finite number reads back bit-exact. */
static void check_doubles(struct sb_arena *a, const struct sb_json *j, int *budget)
{
    double d, back;
    if (j->type == SB_JSON_NUMBER && (*budget)-- > 0 && sb_json_double(j, &d) && isfinite(d)) {
        struct sb_buf out;
        struct sb_jw w;
        struct sb_json *n = NULL;
        struct sb_error err;
        sb_buf_init(&out, 0);
        sb_jw_init(&w, &out);
        sb_jw_double(&w, d);
        CHECK(sb_json_parse(a, out.p, out.len, &lim, &n, &err) == SB_OK);
        CHECK(sb_json_double(n, &back) && memcmp(&back, &d, sizeof(d)) == 0);
        sb_buf_free(&out);
    }
    for (const struct sb_json *c = j->child; c; c = c->next)
        check_doubles(a, c, budget);
}

/* Any bytes, escaped, are a valid JSON string; valid UTF-8 comes back unchanged. */
static void check_escape(struct sb_arena *a, const uint8_t *p, size_t n)
{
    struct sb_buf out;
    struct sb_json *j = NULL;
    struct sb_error err;
    sb_buf_init(&out, 0);
    sb_buf_append_char(&out, '"');
    CHECK(sb_json_escape(&out, (struct sb_slice){(const char *)p, n}) == SB_OK);
    sb_buf_append_char(&out, '"');
    CHECK(sb_json_parse(a, out.p, out.len, &lim, &j, &err) == SB_OK);
    CHECK(j->type == SB_JSON_STRING);
    json_t *js = json_stringn((const char *)p, n); /* NULL when not valid UTF-8 */
    CHECK((js != NULL) == slice_is(j->str, (const char *)p, n));
    json_decref(js);
    sb_buf_free(&out);
}

/* Our rejection is jansson's NUL-swallowing quirk: we stopped at a NUL that follows a token. */
static bool nul_quirk(const uint8_t *p, size_t n, const struct sb_error *err)
{
    const char *at = strstr(err->msg, "at byte ");
    if (!at)
        return false;
    size_t off = strtoul(at + 8, NULL, 10);
    if (off == 0 || off >= n || p[off] != 0)
        return false;
    uint8_t c = p[off - 1];
    return (c >= '0' && c <= '9') || c == 'e' || c == 'l';
}

static void differential(const uint8_t *p, size_t n, sb_err rc, const struct sb_json *root,
                         const struct sb_error *err)
{
    json_error_t jerr;
    json_t *jv = jload(p, n, &jerr);
    if (rc == SB_OK && jv)
        CHECK(same(root, jv));
    else if (rc == SB_OK && strstr(jerr.text, "maximum parsing depth reached"))
        CHECK(value_depth(root) > 2048);
    else if (rc == SB_OK)
        CHECK(strstr(jerr.text, "real number overflow") ||
              strstr(jerr.text, "NUL byte in object key not supported"));
    else if (jv)
        CHECK(rc == SB_E_BAD_JSON && nul_quirk(p, n, err));
    json_decref(jv);
}

/* The lazy tree l against the full tree f: same shape, same decoded strings. */
static void check_lazy_node(struct sb_arena *a, const struct sb_json *l, const struct sb_json *f)
{
    for (; l && f; l = l->next, f = f->next) {
        CHECK(l->type == f->type && l->count == f->count);
        CHECK(slice_is(l->key, f->key.p, f->key.len));
        CHECK(l->raw.p == f->raw.p && l->raw.len == f->raw.len);
        if (l->type == SB_JSON_STRING) {
            struct sb_slice t = sb_json_text(a, l);
            CHECK(slice_is(t, f->str.p, f->str.len));
            CHECK(l->escaped || l->str.p == f->str.p);
        }
        check_lazy_node(a, l->child, f->child);
    }
    CHECK(!l && !f);
}

static void check_lazy(struct sb_arena *a, const uint8_t *data, size_t size, sb_err rc,
                       const struct sb_json *root)
{
    struct sb_json_limits lazy = lim;
    struct sb_json *l = NULL;
    struct sb_error err = {0};
    lazy.lazy_strings = true;
    CHECK(sb_json_parse(a, (const char *)data, size, &lazy, &l, &err) == rc);
    if (rc == SB_OK)
        check_lazy_node(a, l, root);
}

/* ---- sb_json_find against the tree ---- */

static const char *const f_root[] = {NULL};
static const char *const f_a[] = {"a", NULL};
static const char *const f_ab[] = {"a", "b", NULL};
static const char *const f_a0[] = {"a", "0", NULL};
static const char *const f_0[] = {"0", NULL};
static const char *const f_1a[] = {"1", "a", NULL};
static const char *const f_empty[] = {"", NULL};
static const char *const f_esc[] = {"\n", NULL};
static const char *const f_content[] = {"choices", "0", "delta", "content", NULL};
static const char *const f_finish[] = {"choices", "0", "finish_reason", NULL};
static const char *const f_usage[] = {"usage", NULL};
static const char *const *const find_paths[] = {f_root,  f_a,   f_ab,      f_a0,     f_0,    f_1a,
                                                f_empty, f_esc, f_content, f_finish, f_usage};
#define NPATHS (sizeof(find_paths) / sizeof(find_paths[0]))

/* Where sb_json_get (for names) and sb_json_at (for positions) lead along path. */
static const struct sb_json *walk(const struct sb_json *j, const char *const *path)
{
    for (; j && *path; path++) {
        bool pos = **path >= '0' && **path <= '9';
        j = pos                         ? sb_json_at(j, (size_t)atoi(*path))
            : j->type == SB_JSON_OBJECT ? sb_json_get(j, *path)
                                        : NULL;
    }
    return j;
}

/* sb_json_find must accept and reject exactly what the parse does, with the
 * same error, and find the spans the tree's lookups reach; also under a
 * small depth limit. */
static void check_find(struct sb_arena *a, const uint8_t *data, size_t size, sb_err rc,
                       const struct sb_json *root, const struct sb_error *perr)
{
    struct sb_slice out[NPATHS];
    struct sb_error err = {0};
    CHECK(sb_json_find((const char *)data, size, &lim, find_paths, NPATHS, out, &err) == rc);
    if (rc != SB_OK) {
        CHECK(strcmp(err.msg, perr->msg) == 0);
        for (size_t i = 0; i < NPATHS; i++)
            CHECK(out[i].p == NULL);
    } else {
        for (size_t i = 0; i < NPATHS; i++) {
            const struct sb_json *w = walk(root, find_paths[i]);
            CHECK(w ? out[i].p == w->raw.p && out[i].len == w->raw.len : out[i].p == NULL);
        }
    }
    struct sb_json_limits shallow = {.max_depth = 3};
    struct sb_json *t = NULL;
    struct sb_error e1 = {0}, e2 = {0};
    sb_err r1 = sb_json_parse(a, (const char *)data, size, &shallow, &t, &e1);
    CHECK(sb_json_find((const char *)data, size, &shallow, find_paths, NPATHS, out, &e2) == r1);
    CHECK(r1 == SB_OK || strcmp(e1.msg, e2.msg) == 0);
}

/* ---- sb_json_rebase with keep: a tree parsed from a copy reads the same
 * through the other bytes, and its short names, strings and numbers no
 * longer read either ---- */

static void check_rebased(struct sb_arena *a, const struct sb_json *l, const struct sb_json *f,
                          const char *home, const uint8_t *data, size_t keep_max)
{
    for (; l && f; l = l->next, f = f->next) {
        CHECK(l->type == f->type && l->count == f->count);
        CHECK(l->raw.p - home == (const char *)f->raw.p - (const char *)data);
        CHECK(l->raw.len == f->raw.len);
        CHECK(slice_is(l->key, f->key.p, f->key.len));
        if (l->type == SB_JSON_STRING) {
            struct sb_slice t = sb_json_text(a, l);
            CHECK(slice_is(t, f->str.p, f->str.len));
        }
        if (l->type == SB_JSON_NUMBER) {
            int64_t x, y;
            double dx, dy;
            bool ix = sb_json_int64(l, &x), iy = sb_json_int64(f, &y);
            CHECK(ix == iy && (!ix || x == y));
            CHECK(sb_json_double(l, &dx) && sb_json_double(f, &dy));
            CHECK(memcmp(&dx, &dy, sizeof(dx)) == 0);
            CHECK(l->raw.len > keep_max || l->str.p != NULL);
        }
        check_rebased(a, l->child, f->child, home, data, keep_max);
    }
    CHECK(!l && !f);
}

static void check_rebase(struct sb_arena *a, const uint8_t *data, size_t size,
                         const struct sb_json *root)
{
    const size_t keep_max = 8;
    char *copy = malloc(size + 1), *home = malloc(size + 1);
    memcpy(copy, data, size);
    memcpy(home, data, size);
    copy[size] = home[size] = '\0';
    struct sb_json_limits lazy = lim;
    lazy.lazy_strings = true;
    struct sb_json *l = NULL;
    struct sb_error err = {0};
    CHECK(sb_json_parse(a, copy, size, &lazy, &l, &err) == SB_OK);
    sb_json_rebase(l, copy, size, home, a, keep_max);
    memset(copy, '#', size); /* nothing may read the copy now */
    check_rebased(a, l, root, home, data, keep_max);
    free(copy);
    free(home);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json *root = NULL;
    struct sb_error err = {0};
    sb_err rc = sb_json_parse(a, (const char *)data, size, &lim, &root, &err);
    CHECK(rc == SB_OK || rc == SB_E_BAD_JSON || rc == SB_E_TOO_LARGE);
    CHECK((rc == SB_OK) == (root != NULL));
    differential(data, size, rc, root, &err);
    check_depth_limit(a, data, size, rc, root);
    check_lazy(a, data, size, rc, root);
    check_find(a, data, size, rc, root, &err);
    if (rc == SB_OK) {
        int budget = 64;
        check_spans(root, data, size);
        check_rebase(a, data, size, root);
        check_rewrite(a, root);
        check_doubles(a, root, &budget);
    }
    check_escape(a, data, size);
    sb_arena_free(a);
    return 0;
}
