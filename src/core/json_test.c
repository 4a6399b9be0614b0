/* SPDX-License-Identifier: MIT */
/*
 * json_test.c - unit tests for the JSON reader and writer.
 *
 * Grammar accept/reject tables (numbers, literals, structure, escapes,
 * surrogates, every class of invalid UTF-8), raw spans and zero-copy
 * strings, decoding, limits, int64 edges, duplicate keys, the writer's
 * escaping and number formats, and round trips through our reader and
 * jansson. The tables double as a differential test: jansson (see jload)
 * must agree with us on every row, and on the whole tree where both accept,
 * except the rows marked with a documented divergence, where the test checks
 * that jansson still diverges exactly as written.
 *
 * Every input is parsed from an exact-size heap copy, so a read past the end
 * shows up under ASan.
 */
#include <math.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * jansson as the oracle. JSON_DECODE_INT_AS_REAL would turn every integer
 * into a double (losing 2^53 + 1), so integers are read exactly first and the
 * flag is used only when jansson refuses an integer beyond long long.
 */
static json_t *jload(const char *s, size_t len, json_error_t *jerr)
{
    json_error_t local;
    json_error_t *e = jerr ? jerr : &local;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, e);
    if (!v && strstr(e->text, "too big"))
        v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, e);
    return v;
}

/* Where jansson is known to differ from us (and why). */
enum jdiff {
    J_SAME,          /* jansson accepts/rejects exactly as we do */
    J_REAL_OVERFLOW, /* a number beyond double range: jansson rejects it
                        ("real number overflow"); RFC 8259 allows it and we
                        keep it exact in raw (sb_json_double gives +-HUGE_VAL) */
    J_NUL_KEY,       /* a member name with \u0000: jansson rejects it ("NUL
                        byte in object key not supported"); we decode it */
    J_NUL_SWALLOWED, /* one raw NUL byte right after a number or literal:
                        jansson ignores it (its input stream uses NUL as a
                        sentinel, so ungetting that byte loses it) and
                        accepts "1\0" or "[true\0]"; NUL is not JSON
                        whitespace, we reject */
};

struct doc {
    const char *s;
    size_t len;
    enum jdiff diff;
};

#define D(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1, J_SAME                                                               \
    }
#define DX(lit, d)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1, d                                                                    \
    }
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct sb_arena *arena;

static int setup(void **state)
{
    arena = sb_arena_create(4096);
    return 0;
}

static int teardown(void **state)
{
    sb_arena_free(arena);
    arena = NULL;
    return 0;
}

/* Parses an exact-size heap copy of s[0..len) (freed at teardown via the arena). */
static sb_err parse_lim(const char *s, size_t len, const struct sb_json_limits *lim,
                        struct sb_json **out, struct sb_error *err)
{
    char *copy = sb_xmalloc(len ? len : 1);
    if (len)
        memcpy(copy, s, len);
    sb_err rc = sb_json_parse(arena, copy, len, lim, out, err);
    /* Keep the copy alive as long as the tree: free it with the arena. */
    sb_arena_on_free(arena, free, copy);
    return rc;
}

static struct sb_json *must_parse(const char *s)
{
    struct sb_json *j = NULL;
    struct sb_error err = {0};
    sb_err rc = parse_lim(s, strlen(s), NULL, &j, &err);
    if (rc != SB_OK)
        print_error("parse failed: %s: %s\n", s, err.msg);
    assert_int_equal(rc, SB_OK);
    assert_non_null(j);
    return j;
}

static bool slice_is(struct sb_slice s, const char *p, size_t len)
{
    return s.len == len && (len == 0 || memcmp(s.p, p, len) == 0);
}

#define SLICE_IS(s, lit) slice_is((s), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------------ */
/* Structural comparison with jansson                                       */
/* ------------------------------------------------------------------------ */

static bool same(const struct sb_json *a, const json_t *b);

static bool same_number(const struct sb_json *a, const json_t *b)
{
    int64_t i;
    double d;
    if (json_is_integer(b))
        return sb_json_int64(a, &i) && i == json_integer_value(b);
    /* A real: from '.', 'e' or 'E', or an integer beyond long long; both
     * readers convert the same text with strtod, so the bits must match. */
    if (!json_is_real(b) || !sb_json_double(a, &d))
        return false;
    return memcmp(&d, &(double){json_real_value(b)}, sizeof(d)) == 0;
}

/* Whether an earlier member of a has the same name as m. */
static bool seen_before(const struct sb_json *a, const struct sb_json *m)
{
    for (const struct sb_json *p = a->child; p != m; p = p->next)
        if (sb_slice_eq(p->key, m->key))
            return true;
    return false;
}

/* Same members, values (last duplicate wins) and first-seen order. */
static bool same_object(const struct sb_json *a, const json_t *b)
{
    const char *k;
    size_t klen;
    json_t *v;
    const struct sb_json *m = a->child;
    size_t unique = 0;
    json_object_keylen_foreach((json_t *)b, k, klen, v)
    {
        while (m && seen_before(a, m))
            m = m->next;
        if (!m || !slice_is(m->key, k, klen) || !same(sb_json_get_slice(a, m->key), v))
            return false;
        unique++;
        m = m->next;
    }
    while (m && seen_before(a, m))
        m = m->next;
    return m == NULL && unique == json_object_size(b);
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

/* ------------------------------------------------------------------------ */
/* Grammar tables                                                           */
/* ------------------------------------------------------------------------ */

/* clang-format off */
static const struct doc accept_docs[] = {
    /* numbers */
    D("0"), D("-0"), D("1"), D("-1"), D("123"), D("1.5"), D("-1.5e10"), D("1e5"), D("1E5"),
    D("1e+5"), D("1e-5"), D("1E+05"), D("0.0"), D("0e0"), D("-0.0e-0"), D("10.01"),
    D("9007199254740993"), D("9223372036854775807"), D("-9223372036854775808"),
    D("123456789012345678901234567890"), D("1e-400"), D("0.000000000000000000000000001"),
    DX("1e400", J_REAL_OVERFLOW), DX("[-1e400]", J_REAL_OVERFLOW),
    DX("1"
       "00000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000000000000000000000000000000000000000000000000000000000000000000000",
       J_REAL_OVERFLOW),
    /* literals and whitespace */
    D("true"), D("false"), D("null"), D(" 1 "), D("\t\n\r 1\t\n\r "), D(" [ 1 , 2 ] "),
    /* structure */
    D("[]"), D("{}"), D("[ ]"), D("{ }"), D("[1,2,3]"), D("{\"a\":1}"), D("[[[[]]]]"),
    D("{\"a\":{\"b\":[null,true,false,{},[]]}}"), D("{\"\":0}"), D("{\"a\":1,\"a\":2}"),
    D("[{\"a\":[{\"b\":{}}]},{}]"), D("{ \"a\" : 1 , \"b\" : [ ] }"),
    /* strings and escapes */
    D("\"\""), D("\"a\""), D("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), D("\"\\u0041\""),
    D("\"\\u00e9\\u00E9\""), D("\"\\u20ac\""), D("\"\\ud83d\\ude00\""), D("\"\\uD83D\\uDE00\""),
    D("\"\\udbff\\udfff\""), D("\"\\u0000\""), D("[\"a\\u0000b\"]"), D("\"/\""), D("\"\x7f\""),
    D("\"\\ud7ff\\ue000\\uffff\""), D("\"'\""), D("\"\\\\u0041\""),
    DX("{\"a\\u0000\":1}", J_NUL_KEY),
    /* UTF-8 boundaries: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
    D("\"\xc2\x80\""), D("\"\xdf\xbf\""), D("\"\xe0\xa0\x80\""), D("\"\xed\x9f\xbf\""),
    D("\"\xee\x80\x80\""), D("\"\xef\xbf\xbf\""), D("\"\xf0\x90\x80\x80\""),
    D("\"\xf4\x8f\xbf\xbf\""), D("\"caf\xc3\xa9\""), D("\"\xe6\x97\xa5\xe6\x9c\xac\""),
    D("\"\xf0\x9f\x98\x80 ok\""), D("{\"\xc3\xa9\":\"\xe2\x82\xac\"}"),
};

static const struct doc reject_docs[] = {
    /* empty */
    D(""), D(" "), D("\n\t\r "),
    /* numbers */
    D("01"), D("-01"), D("00"), D("-"), D("--1"), D("+1"), D("1."), D(".5"), D("-.5"), D("1.e5"),
    D("1e"), D("1e+"), D("1E-"), D("0x10"), D("1ee5"), D("1e5.0"), D("Infinity"), D("-Infinity"),
    D("NaN"), D("- 1"), D("1 .5"), D("[01]"), D("[1.]"), D("{\"a\":-}"), D("0.0.0"), D("1_000"),
    /* literals */
    D("tru"), D("truex"), D("nul"), D("nulll"), D("True"), D("NULL"), D("fals"), D("t"),
    /* structure */
    D("[1,]"), D("{\"a\":1,}"), D("[,1]"), D("[1,,2]"), D("{,}"), D("{\"a\"}"), D("{\"a\":}"),
    D("{\"a\" 1}"), D("{a:1}"), D("{'a':1}"), D("['a']"), D("[1 2]"), D("[1]]"), D("[[1]"),
    D("{\"a\":1}}"), D("1 2"), D("[] x"), D("[}"), D("{]"), D("{\"a\":1 \"b\":2}"),
    D("[\"a\"\"b\"]"), D("["), D("{"), D("{\"a\""), D("{\"a\":"), D("[1,"), D("\""), D("]"), D("}"),
    D(":"), D(","), D("{1:2}"), D("{null:1}"), D("/* c */ 1"), D("[1] // x"), D("\xef\xbb\xbf{}"),
    D("[1]\0"), D("\0"), D("\"a\"\0"), D("[\x0c]"), D("1\0\0"), DX("1\0", J_NUL_SWALLOWED),
    DX("[true\0]", J_NUL_SWALLOWED), DX("{\"a\":-1.5\0}", J_NUL_SWALLOWED), D("[\xc2\xa0]"),
    D("\xe2\x80\xa8" "1"), /* U+2028 is not JSON whitespace */
    /* strings: raw control characters, bad escapes */
    D("\"abc"), D("\"\\\""), D("\"\t\""), D("\"\n\""), D("\"\r\""), D("\"\x01\""), D("\"\x1f\""),
    D("\"a\0b\""), D("\"\\x41\""), D("\"\\a\""), D("\"\\'\""), D("\"\\u12\""), D("\"\\u12G4\""),
    D("\"\\U0041\""), D("\"\\u\""), D("\"\\"), D("\"\\u0000"), D("\"\\u-123\""), D("\"\\ \""),
    /* lone and mispaired surrogates */
    D("\"\\ud800\""), D("\"\\udbff\""), D("\"\\udc00\""), D("\"\\udfff\""), D("\"\\ud800x\""),
    D("\"\\ud800\\u0041\""), D("\"\\ud800\\ud800\""), D("\"\\ude00\\ud83d\""), D("\"\\ud800\\n\""),
    D("\"\\ud800\\"), D("\"\\ud800\\u\""), D("\"\\ud800\\udc0\""), D("\"\\ud800\\ue000\""),
    D("\"\\ud800\\udbff\""), D("{\"\\ud800\":1}"),
    /* invalid UTF-8: stray continuation, overlong, surrogates, > U+10FFFF, truncated */
    D("\"\x80\""), D("\"\xbf\""), D("\"a\x80\""), D("\"\xc0\x80\""), D("\"\xc0\xaf\""),
    D("\"\xc1\xbf\""), D("\"\xe0\x80\x80\""), D("\"\xe0\x9f\xbf\""), D("\"\xf0\x80\x80\x80\""),
    D("\"\xf0\x8f\xbf\xbf\""), D("\"\xed\xa0\x80\""), D("\"\xed\xbf\xbf\""),
    D("\"\xed\xa0\xbd\xed\xb8\x80\""), D("\"\xf4\x90\x80\x80\""), D("\"\xf5\x80\x80\x80\""),
    D("\"\xf7\xbf\xbf\xbf\""), D("\"\xf8\x88\x80\x80\x80\""), D("\"\xfc\x84\x80\x80\x80\x80\""),
    D("\"\xfe\""), D("\"\xff\""), D("\"\xc3\""), D("\"\xc3"), D("\"\xe2\x82\""), D("\"\xe2\x82"),
    D("\"\xf0\x9f\x98\""), D("\"\xf0\x9f\x98"), D("\"\xc3\x41\""), D("\"\xe2\x41\x82\""),
    D("\"\xf0\x9f\x41\x80\""), D("\"\xc3\xa9\xa9\""), D("{\"\xff\":1}"),
    /* UTF-8 outside strings */
    D("\xc3\xa9"), D("[\xc3\xa9]"), D("1\xc3\xa9"),
};
/* clang-format on */

static void test_accept(void **state)
{
    for (size_t i = 0; i < N_OF(accept_docs); i++) {
        struct sb_json *j = NULL;
        struct sb_error err = {0};
        sb_err rc = parse_lim(accept_docs[i].s, accept_docs[i].len, NULL, &j, &err);
        if (rc != SB_OK)
            print_error("accept row %zu (%.*s): %s\n", i, (int)accept_docs[i].len, accept_docs[i].s,
                        err.msg);
        assert_int_equal(rc, SB_OK);
        assert_non_null(j);
        assert_true(j->raw.len <= accept_docs[i].len);
    }
}

static void test_reject(void **state)
{
    for (size_t i = 0; i < N_OF(reject_docs); i++) {
        struct sb_json *j = (struct sb_json *)1;
        struct sb_error err = {0};
        sb_err rc = parse_lim(reject_docs[i].s, reject_docs[i].len, NULL, &j, &err);
        if (rc != SB_E_BAD_JSON)
            print_error("reject row %zu (%.*s) gave %d\n", i, (int)reject_docs[i].len,
                        reject_docs[i].s, rc);
        assert_int_equal(rc, SB_E_BAD_JSON);
        assert_null(j);
        assert_non_null(strstr(err.msg, "invalid JSON at byte "));
    }
}

/* Checks one table row against jansson, honouring its documented divergence. */
static void differential_row(const struct doc *d, bool we_accept, size_t row)
{
    json_error_t jerr;
    json_t *jv = jload(d->s, d->len, &jerr);
    struct sb_json *j = NULL;
    struct sb_error err;
    assert_int_equal(parse_lim(d->s, d->len, NULL, &j, &err) == SB_OK, we_accept);
    if (d->diff == J_SAME) {
        if ((jv != NULL) != we_accept)
            print_error("row %zu (%.*s): jansson %s (%s)\n", row, (int)d->len, d->s,
                        jv ? "accepts" : "rejects", jv ? "" : jerr.text);
        assert_int_equal(jv != NULL, we_accept);
        if (jv)
            assert_true(same(j, jv));
    } else if (d->diff == J_NUL_SWALLOWED) {
        assert_non_null(jv); /* jansson still accepts what we reject */
    } else {
        const char *why = d->diff == J_REAL_OVERFLOW ? "real number overflow"
                                                     : "NUL byte in object key not supported";
        assert_null(jv); /* still diverges, and for the documented reason */
        assert_non_null(strstr(jerr.text, why));
    }
    json_decref(jv);
}

static void test_differential_tables(void **state)
{
    for (size_t i = 0; i < N_OF(accept_docs); i++)
        differential_row(&accept_docs[i], true, i);
    for (size_t i = 0; i < N_OF(reject_docs); i++)
        differential_row(&reject_docs[i], false, i);
}

/* Tricky documents whose trees must match jansson's exactly. */
static void test_differential_trees(void **state)
{
    static const char *const docs[] = {
        ("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\\n\\u00e9\"}],"
         "\"temperature\":0.7,\"max_tokens\":100,\"stream\":true,\"stop\":null}"),
        "{\"a\":1,\"b\":2,\"a\":3}",
        "{\"a\":1,\"b\":2,\"a\":{\"c\":[1,2]},\"b\":false,\"d\":null}",
        "[9007199254740993,-9223372036854775808,9223372036854775807,9223372036854775808]",
        "[0.1,1e-7,-0.0,1.7976931348623157e308,5e-324,2.2250738585072014e-308,1e-400]",
        "[\"\\ud834\\udd1e\",\"\\u0000\",\"\\\"\\\\\\/\",\"\xf0\x9d\x84\x9e\"]",
        "{\"\":{\"\":{\"\":[]}},\"\\u00e9\":\"\xc3\xa9\"}",
        "[[],{},[[]],[{}],{\"a\":[]}]",
    };
    for (size_t i = 0; i < N_OF(docs); i++) {
        json_error_t jerr;
        json_t *jv = jload(docs[i], strlen(docs[i]), &jerr);
        assert_non_null(jv);
        assert_true(same(must_parse(docs[i]), jv));
        json_decref(jv);
    }
}

/* ------------------------------------------------------------------------ */
/* Reader details                                                           */
/* ------------------------------------------------------------------------ */

static void test_raw_spans(void **state)
{
    const char *src = "{\"a\" : [1, 2.5e3 , \"x\\n\"] , \"b\":{ } ,\"c\":true, \"d\":\"plain\"}";
    struct sb_json *j = must_parse(src);
    assert_int_equal(j->type, SB_JSON_OBJECT);
    assert_int_equal(j->count, 4);
    assert_true(slice_is(j->raw, src, strlen(src)));
    struct sb_json *a = sb_json_get(j, "a");
    assert_true(SLICE_IS(a->raw, "[1, 2.5e3 , \"x\\n\"]"));
    assert_true(SLICE_IS(sb_json_at(a, 0)->raw, "1"));
    assert_true(SLICE_IS(sb_json_at(a, 1)->raw, "2.5e3"));
    assert_true(SLICE_IS(sb_json_at(a, 2)->raw, "\"x\\n\""));
    assert_true(SLICE_IS(sb_json_at(a, 2)->str, "x\n"));
    assert_true(SLICE_IS(sb_json_get(j, "b")->raw, "{ }"));
    assert_true(SLICE_IS(sb_json_get(j, "c")->raw, "true"));
    struct sb_json *d = sb_json_get(j, "d");
    assert_true(SLICE_IS(d->raw, "\"plain\""));
    assert_true(SLICE_IS(d->str, "plain"));
    /* No escapes: the value points into the source, right after the quote. */
    assert_ptr_equal(d->str.p, d->raw.p + 1);
    /* Escapes: decoded elsewhere (the arena). */
    struct sb_json *x = sb_json_at(a, 2);
    assert_true(x->str.p < x->raw.p || x->str.p >= x->raw.p + x->raw.len);
    /* Keys point into the source too. */
    assert_ptr_equal(d->key.p, strstr(j->raw.p, "\"d\"") + 1);
    assert_int_equal(j->key.len, 0);
    assert_int_equal(a->key.len, 1);
}

static void test_scalar_roots(void **state)
{
    struct sb_json *j = must_parse("  \"hi\"  ");
    assert_int_equal(j->type, SB_JSON_STRING);
    assert_true(SLICE_IS(j->raw, "\"hi\""));
    j = must_parse("\n-12.5e-3\t");
    assert_int_equal(j->type, SB_JSON_NUMBER);
    assert_true(SLICE_IS(j->raw, "-12.5e-3"));
    assert_int_equal(must_parse("null")->type, SB_JSON_NULL);
    assert_int_equal(must_parse("true")->type, SB_JSON_TRUE);
    assert_int_equal(must_parse("false")->type, SB_JSON_FALSE);
}

static void test_escapes_decode(void **state)
{
    struct sb_json *j = must_parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    assert_true(SLICE_IS(j->str, "\"\\/\b\f\n\r\t"));
    j = must_parse("\"a\\u0041\\u00e9\\u00C9\\u20AC\\uffff\"");
    assert_true(SLICE_IS(j->str, "aA\xc3\xa9\xc3\x89\xe2\x82\xac\xef\xbf\xbf"));
    j = must_parse("\"\\ud83d\\ude00|\\uDBFF\\uDFFF|\\ud800\\udc00\"");
    assert_true(SLICE_IS(j->str, "\xf0\x9f\x98\x80|\xf4\x8f\xbf\xbf|\xf0\x90\x80\x80"));
    j = must_parse("\"x\\u0000y\"");
    assert_int_equal(j->str.len, 3);
    assert_memory_equal(j->str.p, "x\0y", 3);
    j = must_parse("\"\\u0080\\u07ff\\u0800\"");
    assert_true(SLICE_IS(j->str, "\xc2\x80\xdf\xbf\xe0\xa0\x80"));
    j = must_parse("\"caf\xc3\xa9 \\n\"");
    assert_true(SLICE_IS(j->str, "caf\xc3\xa9 \n"));
    j = must_parse("\"\\\\u0041\"");
    assert_true(SLICE_IS(j->str, "\\u0041"));
}

/* Lazy strings: values keep their escapes (validated all the same), keys are
 * decoded, and sb_json_text gives the same bytes a full parse does. */
static void test_lazy_strings(void **state)
{
    static const char doc[] =
        "{\"k\\u00e9y\":\"a\\nb\\u00e9\",\"plain\":\"xyz\",\"arr\":[\"\\\"q\\\"\"]}";
    struct sb_json_limits lazy = {.lazy_strings = true};
    struct sb_json *j = NULL, *full = must_parse(doc);
    struct sb_error err = {0};
    assert_int_equal(parse_lim(doc, sizeof(doc) - 1, &lazy, &j, &err), SB_OK);
    struct sb_json *v = sb_json_get(j, "k\xc3\xa9y"); /* the key was decoded */
    assert_non_null(v);
    assert_true(v->escaped);
    assert_true(SLICE_IS(v->str, "a\\nb\\u00e9"));
    struct sb_slice t = sb_json_text(arena, v);
    assert_true(SLICE_IS(t, "a\nb\xc3\xa9"));
    assert_true(sb_slice_eq(t, sb_json_get(full, "k\xc3\xa9y")->str));
    struct sb_json *p = sb_json_get(j, "plain");
    assert_false(p->escaped);
    assert_ptr_equal(sb_json_text(arena, p).p, p->str.p); /* no copy without escapes */
    t = sb_json_text(arena, sb_json_at(sb_json_get(j, "arr"), 0));
    assert_true(SLICE_IS(t, "\"q\""));
    assert_null(sb_json_text(arena, sb_json_get(j, "arr")).p);
    /* Bad escapes are refused all the same. */
    assert_int_equal(parse_lim("\"\\x\"", 4, &lazy, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("\"\\ud800\"", 8, &lazy, &j, &err), SB_E_BAD_JSON);
}

static void test_keys_decoded(void **state)
{
    struct sb_json *j = must_parse("{\"a\\u0000b\":1,\"\\u00e9t\\u00e9\":2,\"tab\\t\":3}");
    assert_int_equal(j->count, 3);
    struct sb_json *m = sb_json_get_slice(j, (struct sb_slice){"a\0b", 3});
    assert_non_null(m);
    assert_true(SLICE_IS(m->raw, "1"));
    assert_null(sb_json_get(j, "a")); /* the C-string form stops at the NUL */
    assert_true(SLICE_IS(sb_json_get(j, "\xc3\xa9t\xc3\xa9")->raw, "2"));
    assert_true(SLICE_IS(sb_json_get(j, "tab\t")->raw, "3"));
}

static void test_get_and_at(void **state)
{
    struct sb_json *j = must_parse("{\"Model\":1,\"model\":2,\"m\":3,\"\":4,\"arr\":[10,20,30]}");
    assert_true(SLICE_IS(sb_json_get(j, "model")->raw, "2"));
    assert_true(SLICE_IS(sb_json_get(j, "Model")->raw, "1"));
    assert_null(sb_json_get(j, "MODEL"));
    assert_null(sb_json_get(j, "mode"));
    assert_null(sb_json_get(j, "models"));
    assert_true(SLICE_IS(sb_json_get(j, "")->raw, "4"));
    assert_null(sb_json_get(NULL, "model"));
    struct sb_json *arr = sb_json_get(j, "arr");
    assert_null(sb_json_get(arr, "0")); /* not an object */
    assert_true(SLICE_IS(sb_json_at(arr, 0)->raw, "10"));
    assert_true(SLICE_IS(sb_json_at(arr, 2)->raw, "30"));
    assert_null(sb_json_at(arr, 3));
    assert_null(sb_json_at(arr, (size_t)-1));
    assert_null(sb_json_at(j, 0)); /* not an array */
    assert_null(sb_json_at(NULL, 0));
    assert_true(sb_json_is_string(must_parse("\"\"")));
    assert_false(sb_json_is_string(must_parse("1")));
    assert_false(sb_json_is_string(NULL));
    assert_true(sb_json_bool(must_parse("true")));
    assert_false(sb_json_bool(must_parse("false")));
    assert_false(sb_json_bool(must_parse("\"true\"")));
    assert_false(sb_json_bool(must_parse("1")));
    assert_false(sb_json_bool(NULL));
}

static void test_duplicate_keys(void **state)
{
    struct sb_json *j = must_parse("{\"a\":1,\"b\":2,\"a\":3,\"a\":{\"x\":1}}");
    assert_int_equal(j->count, 4); /* the tree keeps every member, in order */
    assert_true(SLICE_IS(sb_json_get(j, "a")->raw, "{\"x\":1}"));
    assert_true(SLICE_IS(sb_json_get(j, "b")->raw, "2"));
    assert_true(SLICE_IS(j->child->raw, "1"));
    /* A key spelled with an escape is the same name. */
    j = must_parse("{\"model\":\"a\",\"mod\\u0065l\":\"b\"}");
    assert_true(SLICE_IS(sb_json_get(j, "model")->str, "b"));
}

static void test_int64(void **state)
{
    static const struct {
        const char *s;
        bool ok;
        int64_t v;
    } rows[] = {
        {"0", true, 0},
        {"-0", true, 0},
        {"1", true, 1},
        {"-1", true, -1},
        {"9223372036854775807", true, INT64_MAX},
        {"9223372036854775808", false, 0},
        {"-9223372036854775808", true, INT64_MIN},
        {"-9223372036854775809", false, 0},
        {"9223372036854775810", false, 0},
        {"18446744073709551616", false, 0},
        {"99999999999999999999999", false, 0},
        {"9007199254740993", true, 9007199254740993LL},
        {"-9007199254740993", true, -9007199254740993LL},
        {"1.0", false, 0},
        {"1e2", false, 0},
        {"1E2", false, 0},
        {"0.5", false, 0},
        {"-0.0", false, 0},
        {"922337203685477580", true, 922337203685477580LL},
    };
    for (size_t i = 0; i < N_OF(rows); i++) {
        int64_t v = 42;
        bool ok = sb_json_int64(must_parse(rows[i].s), &v);
        if (ok != rows[i].ok)
            print_error("int64 row %s\n", rows[i].s);
        assert_int_equal(ok, rows[i].ok);
        if (ok)
            assert_true(v == rows[i].v);
    }
    int64_t v;
    assert_false(sb_json_int64(must_parse("\"1\""), &v));
    assert_false(sb_json_int64(must_parse("true"), &v));
    assert_false(sb_json_int64(NULL, &v));
}

/* 2^53 + 1 is not a double: it must survive through raw and int64. */
static void test_2pow53_plus_1(void **state)
{
    struct sb_json *j = must_parse("{\"seed\":9007199254740993}");
    struct sb_json *s = sb_json_get(j, "seed");
    int64_t v = 0;
    assert_true(SLICE_IS(s->raw, "9007199254740993"));
    assert_true(sb_json_int64(s, &v));
    assert_true(v == 9007199254740993LL);
    double d = 0;
    assert_true(sb_json_double(s, &d));
    assert_true(d == 9007199254740992.0); /* the double is the nearest one, as expected */
    /* Written back with the writer: exact as int and as raw. */
    struct sb_buf b;
    struct sb_jw w;
    sb_buf_init(&b, 0);
    sb_jw_init(&w, &b);
    sb_jw_arr_begin(&w);
    sb_jw_int(&w, v);
    sb_jw_raw(&w, s->raw);
    sb_jw_arr_end(&w);
    assert_string_equal(b.p, "[9007199254740993,9007199254740993]");
    sb_buf_free(&b);
}

static void test_double(void **state)
{
    double d = 0;
    assert_true(sb_json_double(must_parse("2.5e3"), &d));
    assert_true(d == 2500.0);
    assert_true(sb_json_double(must_parse("-0.0"), &d));
    assert_true(d == 0.0 && signbit(d));
    assert_true(sb_json_double(must_parse("1e400"), &d));
    assert_true(isinf(d) && d > 0);
    assert_true(sb_json_double(must_parse("1e-400"), &d));
    assert_true(d == 0.0);
    assert_true(sb_json_double(must_parse("[0.1]")->child, &d));
    assert_true(d == 0.1);
    assert_false(sb_json_double(must_parse("\"1\""), &d));
    assert_false(sb_json_double(NULL, &d));
    /* A number longer than any stack buffer. */
    char big[1000];
    memset(big, '0', sizeof(big) - 1);
    big[0] = '3';
    big[1] = '.';
    big[sizeof(big) - 1] = '\0';
    big[sizeof(big) - 2] = '1';
    assert_true(sb_json_double(must_parse(big), &d));
    assert_true(d == 3.0);
}

/* Inputs parsed as a prefix of a longer buffer never look past len. */
static void test_prefix_only(void **state)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    assert_int_equal(parse_lim("123", 2, NULL, &j, &err), SB_OK);
    assert_true(SLICE_IS(j->raw, "12"));
    assert_int_equal(parse_lim("true", 3, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("\"abc\"", 4, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("\"\\u0041\"", 6, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("\"\\ud83d\\ude00\"", 12, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("\"\xf0\x9f\x98\x80\"", 4, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("[1]", 2, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim("1.5", 2, NULL, &j, &err), SB_E_BAD_JSON);
    assert_int_equal(parse_lim(NULL, 0, NULL, &j, &err), SB_E_BAD_JSON);
}

static void test_error_messages(void **state)
{
    static const struct {
        const char *s;
        const char *msg;
    } rows[] = {
        {"{\"a\" 1}", "invalid JSON at byte 5: expected ':'"},
        {"", "invalid JSON at byte 0: empty input"},
        {"[1,]", "invalid JSON at byte 3: expected a value"},
        {"{\"a\":1,}", "invalid JSON at byte 7: expected a string key"},
        {"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
        {"01", "invalid JSON at byte 0: leading zero in number"},
        {"[1] x", "invalid JSON at byte 4: unexpected data after the value"},
        {"\"ab\x01\"", "invalid JSON at byte 3: control character in string"},
        {"\"ab\xc0\x80\"", "invalid JSON at byte 3: invalid UTF-8"},
        {"\"\\ud800\"", "invalid JSON at byte 1: lone high surrogate"},
        {"[\"\\q\"]", "invalid JSON at byte 2: invalid escape"},
        {"  ", "invalid JSON at byte 2: unexpected end of input, expected a value"},
        {"[1", "invalid JSON at byte 2: unexpected end of input"},
        {"1.x", "invalid JSON at byte 2: expected a digit after '.'"},
    };
    for (size_t i = 0; i < N_OF(rows); i++) {
        struct sb_json *j;
        struct sb_error err = {0};
        assert_int_equal(parse_lim(rows[i].s, strlen(rows[i].s), NULL, &j, &err), SB_E_BAD_JSON);
        assert_int_equal(err.code, SB_E_BAD_JSON);
        assert_string_equal(err.msg, rows[i].msg);
    }
}

/* "[[[...1...]]]" n deep (alternating objects when obj), in a buffer from the arena. */
static struct sb_slice nested(size_t n, bool obj)
{
    char *p = sb_arena_alloc(arena, n * 8 + 2), *o = p;
    for (size_t i = 0; i < n; i++) {
        if (obj && i % 2) {
            memcpy(o, "{\"k\":", 5);
            o += 5;
        } else {
            *o++ = '[';
        }
    }
    *o++ = '1';
    for (size_t i = n; i-- > 0;)
        *o++ = (obj && i % 2) ? '}' : ']';
    return (struct sb_slice){p, (size_t)(o - p)};
}

static void test_depth_limit(void **state)
{
    struct sb_json *j;
    struct sb_error err;
    struct sb_slice s = nested(64, false);
    assert_int_equal(parse_lim(s.p, s.len, NULL, &j, &err), SB_OK);
    s = nested(65, false);
    assert_int_equal(parse_lim(s.p, s.len, NULL, &j, &err), SB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "deeper than 64"));
    s = nested(65, true);
    assert_int_equal(parse_lim(s.p, s.len, NULL, &j, &err), SB_E_TOO_LARGE);
    struct sb_json_limits lim = {.max_depth = 3};
    s = nested(3, true);
    assert_int_equal(parse_lim(s.p, s.len, &lim, &j, &err), SB_OK);
    s = nested(4, true);
    assert_int_equal(parse_lim(s.p, s.len, &lim, &j, &err), SB_E_TOO_LARGE);
    assert_int_equal(parse_lim("[[],[],{}]", 10, &lim, &j, &err), SB_OK);
    /* Deep nesting within a raised limit works (no recursion, the stack grows). */
    lim.max_depth = 100000;
    s = nested(50000, true);
    assert_int_equal(parse_lim(s.p, s.len, &lim, &j, &err), SB_OK);
    for (size_t i = 0; i < 49999; i++)
        j = j->child;
    assert_true(SLICE_IS(j->child->raw, "1"));
    /* Depth is checked on opening, before the rest is read. */
    s = nested(65, false);
    assert_int_equal(parse_lim(s.p, 70, NULL, &j, &err), SB_E_TOO_LARGE);
}

static void test_size_limit(void **state)
{
    struct sb_json *j;
    struct sb_error err;
    struct sb_json_limits lim = {.max_bytes = 7};
    assert_int_equal(parse_lim("[1,2,3]", 7, &lim, &j, &err), SB_OK);
    assert_int_equal(parse_lim("[1,2,3] ", 8, &lim, &j, &err), SB_E_TOO_LARGE);
    assert_int_equal(err.code, SB_E_TOO_LARGE);
    assert_non_null(strstr(err.msg, "8 bytes"));
    lim.max_bytes = 0; /* unbounded */
    assert_int_equal(parse_lim("[1,2,3] ", 8, &lim, &j, &err), SB_OK);
}

/* A body much larger than the arena block: mixed strings, numbers and nesting. */
static void test_large_document(void **state)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_cstr(&b, "{\"messages\":[");
    for (int i = 0; i < 2000; i++)
        sb_buf_printf(&b,
                      "%s{\"role\":\"user\",\"content\":\"line %d\\n caf\xc3\xa9 \\u00e9\","
                      "\"n\":%d,\"f\":%d.5e-1}",
                      i ? "," : "", i, i, i);
    sb_buf_append_cstr(&b, "]}");
    struct sb_json *j = must_parse(b.p);
    struct sb_json *m = sb_json_get(j, "messages");
    assert_int_equal(m->count, 2000);
    int64_t n = 0;
    assert_true(sb_json_int64(sb_json_get(sb_json_at(m, 1234), "n"), &n));
    assert_int_equal(n, 1234);
    assert_true(
        SLICE_IS(sb_json_get(sb_json_at(m, 7), "content")->str, "line 7\n caf\xc3\xa9 \xc3\xa9"));
    json_t *jv = jload(b.p, b.len, NULL);
    assert_true(same(j, jv));
    json_decref(jv);
    sb_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

static struct sb_buf out;
static struct sb_jw w;

static int wsetup(void **state)
{
    setup(state);
    sb_buf_init(&out, 0);
    sb_jw_init(&w, &out);
    return 0;
}

static int wteardown(void **state)
{
    sb_buf_free(&out);
    return teardown(state);
}

static void test_writer_structure(void **state)
{
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "a");
    sb_jw_int(&w, 1);
    sb_jw_key(&w, "b");
    sb_jw_arr_begin(&w);
    sb_jw_null(&w);
    sb_jw_bool(&w, true);
    sb_jw_bool(&w, false);
    sb_jw_obj_begin(&w);
    sb_jw_obj_end(&w);
    sb_jw_arr_begin(&w);
    sb_jw_arr_end(&w);
    sb_jw_cstr(&w, "x");
    sb_jw_cstr(&w, NULL);
    sb_jw_raw(&w, SB_SLICE("{\"r\":[1]}"));
    sb_jw_arr_end(&w);
    sb_jw_key(&w, "c");
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "d");
    sb_jw_str(&w, SB_SLICE("e"));
    sb_jw_obj_end(&w);
    sb_jw_obj_end(&w);
    assert_int_equal(w.err, SB_OK);
    assert_int_equal(w.depth, 0);
    assert_string_equal(out.p, "{\"a\":1,\"b\":[null,true,false,{},[],\"x\",null,{\"r\":[1]}],"
                               "\"c\":{\"d\":\"e\"}}");
}

static void test_writer_escapes(void **state)
{
    sb_jw_arr_begin(&w);
    sb_jw_str(&w, SB_SLICE("q\"b\\s/n\nr\rt\tb\bf\f"));
    sb_jw_str(&w, SB_SLICE("\x01\x1f\x7f"));
    sb_jw_str(&w, (struct sb_slice){"a\0b", 3});
    sb_jw_str(&w, SB_SLICE("caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8"));
    sb_jw_str(&w, SB_SLICE("bad \xc3 \xed\xa0\x80 \xff|\xc0\xaf"));
    sb_jw_str(&w, SB_SLICE(""));
    sb_jw_arr_end(&w);
    assert_string_equal(out.p, "[\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\","
                               "\"\\u0001\\u001f\x7f\","
                               "\"a\\u0000b\","
                               "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8\","
                               "\"bad \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                               "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\",\"\"]");
    struct sb_json *j = must_parse(out.p);
    assert_true(SLICE_IS(sb_json_at(j, 0)->str, "q\"b\\s/n\nr\rt\tb\bf\f"));
    assert_int_equal(sb_json_at(j, 2)->str.len, 3);
    /* Keys escape the same way. */
    sb_buf_reset(&out);
    sb_jw_init(&w, &out);
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "k\"\n");
    sb_jw_int(&w, 0);
    sb_jw_key_slice(&w, (struct sb_slice){"\0", 1});
    sb_jw_int(&w, 1);
    sb_jw_obj_end(&w);
    assert_string_equal(out.p, "{\"k\\\"\\n\":0,\"\\u0000\":1}");
}

static void test_writer_escape_fn(void **state)
{
    assert_int_equal(sb_json_escape(&out, SB_SLICE("a\"b")), SB_OK);
    assert_string_equal(out.p, "a\\\"b");
    struct sb_buf small;
    sb_buf_init(&small, 4);
    assert_int_equal(sb_json_escape(&small, SB_SLICE("\n\n\n")), SB_E_TOO_LARGE);
    sb_buf_free(&small);
}

static void test_writer_ints(void **state)
{
    sb_jw_arr_begin(&w);
    sb_jw_int(&w, 0);
    sb_jw_int(&w, -1);
    sb_jw_int(&w, 42);
    sb_jw_int(&w, INT64_MAX);
    sb_jw_int(&w, INT64_MIN);
    sb_jw_int(&w, 9007199254740993LL);
    sb_jw_arr_end(&w);
    assert_string_equal(out.p, "[0,-1,42,9223372036854775807,-9223372036854775808,"
                               "9007199254740993]");
    struct sb_json *j = must_parse(out.p);
    int64_t v;
    assert_true(sb_json_int64(sb_json_at(j, 4), &v));
    assert_true(v == INT64_MIN);
}

static void test_writer_doubles(void **state)
{
    static const struct {
        double v;
        const char *s;
    } rows[] = {
        {0.0, "0"},
        {-0.0, "-0"},
        {1.0, "1"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {0.7, "0.7"},
        {1e21, "1e+21"},
        {1e-7, "1e-07"},
        {123456789012345.0, "123456789012345"},
        {0.30000000000000004, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "4.94065645841247e-324"},
        {9007199254740992.0, "9007199254740992"},
        {NAN, "null"},
        {INFINITY, "null"},
        {-INFINITY, "null"},
    };
    for (size_t i = 0; i < N_OF(rows); i++) {
        sb_buf_reset(&out);
        sb_jw_init(&w, &out);
        sb_jw_double(&w, rows[i].v);
        assert_string_equal(out.p, rows[i].s);
        double back;
        struct sb_json *j = must_parse(out.p);
        if (isfinite(rows[i].v)) {
            assert_true(sb_json_double(j, &back));
            assert_memory_equal(&back, &rows[i].v, sizeof(back)); /* bit-exact, -0 too */
        }
    }
}

/* Many doubles, each must read back bit-exact in our reader and in jansson. */
static void test_writer_double_roundtrip(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    sb_jw_arr_begin(&w);
    double vals[2000];
    for (size_t i = 0; i < N_OF(vals); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        vals[i] = isfinite(d) ? d : (double)(int64_t)x / 3.0;
        sb_jw_double(&w, vals[i]);
    }
    sb_jw_arr_end(&w);
    struct sb_json *j = must_parse(out.p);
    json_t *jv = jload(out.p, out.len, NULL);
    assert_non_null(jv);
    size_t i = 0;
    for (struct sb_json *e = j->child; e; e = e->next, i++) {
        double back;
        assert_true(sb_json_double(e, &back));
        assert_memory_equal(&back, &vals[i], sizeof(back));
        double jb = json_number_value(json_array_get(jv, i));
        assert_memory_equal(&jb, &vals[i], sizeof(jb));
    }
    json_decref(jv);
}

static void test_writer_sticky_error(void **state)
{
    struct sb_buf small;
    struct sb_jw sw;
    sb_buf_init(&small, 16);
    sb_jw_init(&sw, &small);
    sb_jw_arr_begin(&sw);
    sb_jw_str(&sw, SB_SLICE("0123456789"));
    assert_int_equal(sw.err, SB_OK);
    sb_jw_str(&sw, SB_SLICE("0123456789"));
    assert_int_equal(sw.err, SB_E_TOO_LARGE);
    size_t len = small.len;
    sb_jw_int(&sw, 1); /* nothing more is written once failed */
    sb_jw_arr_end(&sw);
    assert_int_equal(sw.err, SB_E_TOO_LARGE);
    assert_int_equal(small.len, len);
    sb_buf_free(&small);
    /* Misuse: closing more than was opened, nesting beyond 63. */
    sb_jw_arr_end(&w);
    assert_int_equal(w.err, SB_E_INTERNAL);
    sb_buf_reset(&out);
    sb_jw_init(&w, &out);
    for (int i = 0; i < 63; i++)
        sb_jw_arr_begin(&w);
    assert_int_equal(w.err, SB_OK);
    sb_jw_arr_begin(&w);
    assert_int_equal(w.err, SB_E_INTERNAL);
}

/* Writes a tree back with the writer (numbers verbatim). */
static void write_tree(struct sb_jw *jw, const struct sb_json *j)
{
    bool obj = j->type == SB_JSON_OBJECT;
    switch (j->type) {
    case SB_JSON_OBJECT:
    case SB_JSON_ARRAY:
        obj ? sb_jw_obj_begin(jw) : sb_jw_arr_begin(jw);
        for (const struct sb_json *c = j->child; c; c = c->next) {
            if (obj)
                sb_jw_key_slice(jw, c->key);
            write_tree(jw, c);
        }
        obj ? sb_jw_obj_end(jw) : sb_jw_arr_end(jw);
        break;
    case SB_JSON_STRING:
        sb_jw_str(jw, j->str);
        break;
    case SB_JSON_NUMBER:
        sb_jw_raw(jw, j->raw);
        break;
    case SB_JSON_TRUE:
        sb_jw_bool(jw, true);
        break;
    case SB_JSON_FALSE:
        sb_jw_bool(jw, false);
        break;
    case SB_JSON_NULL:
        sb_jw_null(jw);
        break;
    }
}

/* Every accepted table row, re-written, parses to the same tree in both readers. */
static void test_writer_roundtrip(void **state)
{
    for (size_t i = 0; i < N_OF(accept_docs); i++) {
        const struct doc *d = &accept_docs[i];
        struct sb_json *a = NULL, *b = NULL;
        struct sb_error err;
        assert_int_equal(parse_lim(d->s, d->len, NULL, &a, &err), SB_OK);
        sb_buf_reset(&out);
        sb_jw_init(&w, &out);
        write_tree(&w, a);
        assert_int_equal(w.err, SB_OK);
        assert_int_equal(parse_lim(out.p, out.len, NULL, &b, &err), SB_OK);
        json_t *ja = jload(d->s, d->len, NULL);
        json_t *jb = jload(out.p, out.len, NULL);
        assert_int_equal(ja != NULL, jb != NULL);
        if (jb) {
            assert_true(same(b, jb));
            assert_true(same(a, jb));
            assert_true(json_equal(ja, jb));
        }
        json_decref(ja);
        json_decref(jb);
    }
}

/* Every slice of the tree lies in [p, p + n] or in no source at all (an
 * arena copy): checked after a rebase, with the old source wiped. */
static void all_in(const struct sb_json *j, const char *p, size_t n, const char *old, size_t oldn)
{
    const struct sb_slice s[] = {j->raw, j->key, j->str};
    for (size_t i = 0; i < 3; i++) {
        uintptr_t at = (uintptr_t)s[i].p;
        assert_false(s[i].p && at >= (uintptr_t)old && at <= (uintptr_t)old + oldn);
        if (s[i].p && at >= (uintptr_t)p && at <= (uintptr_t)p + n)
            assert_true(at + s[i].len <= (uintptr_t)p + n);
    }
    for (const struct sb_json *c = j->child; c; c = c->next)
        all_in(c, p, n, old, oldn);
}

/* A body parsed from a copy and pointed at its file's map (issue 9 item 6):
 * after sb_json_rebase the copy can go, and the tree reads the same values
 * from the other bytes; decoded strings (arena) are untouched. */
static void test_rebase(void **state)
{
    (void)state;
    static const char doc[] = "{\"model\":\"m\\u00e9\",\"k\\n\":[1,2,{\"a\":\"x\\\"y\"}],"
                              "\"messages\":[{\"content\":\"hello\"}],\"n\":null}";
    size_t n = sizeof(doc) - 1;
    for (int lazy = 0; lazy < 2; lazy++) {
        struct sb_arena *a = sb_arena_create(4096);
        char *copy = malloc(n + 1), *home = malloc(n + 1);
        memcpy(copy, doc, n + 1);
        memcpy(home, doc, n + 1);
        struct sb_json_limits lim = {.lazy_strings = lazy};
        struct sb_json *j;
        struct sb_error err;
        assert_int_equal(sb_json_parse(a, copy, n, &lim, &j, &err), SB_OK);
        sb_json_rebase(j, copy, n, home, NULL, 0);
        memset(copy, '#', n);
        all_in(j, home, n, copy, n);
        assert_ptr_equal(j->raw.p, home);
        assert_int_equal(j->raw.len, n);
        struct sb_slice model = sb_json_text(a, sb_json_get(j, "model"));
        assert_int_equal(model.len, 3);
        assert_memory_equal(model.p, "m\xc3\xa9", 3);
        const struct sb_json *msg = sb_json_at(sb_json_get(j, "messages"), 0);
        assert_memory_equal(sb_json_get(msg, "content")->str.p, "hello", 5);
        assert_non_null(sb_json_get(j, "k\n")); /* an escaped key: decoded, in the arena */
        free(copy);
        free(home);
        sb_arena_free(a);
    }
    /* With keep: names and short strings copied into the arena, long strings
     * and every raw span in home. */
    {
        static const char big[] = "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\","
                                  "\"content\":\"a long prompt, longer than sixteen\"}],\"n\":2}";
        size_t bn = sizeof(big) - 1;
        struct sb_arena *a = sb_arena_create(4096);
        char *copy = malloc(bn + 1), *home = malloc(bn + 1);
        memcpy(copy, big, bn + 1);
        memcpy(home, big, bn + 1);
        struct sb_json_limits lim = {.lazy_strings = true};
        struct sb_json *j;
        struct sb_error err;
        assert_int_equal(sb_json_parse(a, copy, bn, &lim, &j, &err), SB_OK);
        sb_json_rebase(j, copy, bn, home, a, 16);
        memset(copy, '#', bn);
        const struct sb_json *model = sb_json_get(j, "model");
        const struct sb_json *msg = sb_json_at(sb_json_get(j, "messages"), 0);
        const struct sb_json *content = sb_json_get(msg, "content");
        memset(home, '#', bn); /* nothing read below may come from home but the long string */
        memcpy(home + (content->str.p - home), "a long prompt, longer than sixteen", 34);
        assert_memory_equal(sb_json_text(a, model).p, "gpt", 3);
        assert_true(model->raw.p == home + 9);
        assert_true(model->str.p < home || model->str.p > home + bn);
        assert_memory_equal(sb_json_get(msg, "role")->str.p, "user", 4);
        assert_true(content->str.p > home && content->str.p < home + bn);
        assert_memory_equal(content->str.p, "a long prompt", 13);
        assert_true(sb_json_get(j, "n")->raw.p == home + bn - 2);
        int64_t nv = 0;
        assert_true(sb_json_int64(sb_json_get(j, "n"), &nv) && nv == 2); /* home is all '#' */
        assert_true(j->raw.p == home && j->raw.len == bn);
        free(copy);
        free(home);
        sb_arena_free(a);
    }
    /* An array of 1000 elements: the stack of nodes to visit grows. */
    struct sb_buf b;
    sb_buf_init(&b, 0);
    sb_buf_append_char(&b, '[');
    for (int i = 0; i < 1000; i++)
        sb_buf_printf(&b, "%s\"s%d\"", i ? "," : "", i);
    sb_buf_append_char(&b, ']');
    struct sb_arena *a = sb_arena_create(4096);
    char *home = malloc(b.len);
    memcpy(home, b.p, b.len);
    struct sb_json *j;
    struct sb_error err;
    assert_int_equal(sb_json_parse(a, b.p, b.len, NULL, &j, &err), SB_OK);
    sb_json_rebase(j, b.p, b.len, home, NULL, 0);
    memset(b.p, '#', b.len);
    all_in(j, home, b.len, b.p, b.len);
    assert_memory_equal(sb_json_at(j, 999)->str.p, "s999", 4);
    sb_buf_free(&b);
    free(home);
    sb_arena_free(a);
}

/* Thousands of short names, strings and numbers kept (sb_json_rebase with
 * keep): all of them share one arena block, and each reads right after both
 * the copy parsed and the bytes the tree now points at are overwritten. */
#define MANY_SHORT 3000
static void test_rebase_many_short(void **state)
{
    (void)state;
    static const char long_value[] = "longer than the sixteen bytes kept";
    struct sb_buf b;
    size_t at[MANY_SHORT][2], need = 0; /* each value's offset; the bytes kept */
    sb_buf_init(&b, 0);
    for (int i = 0; i < MANY_SHORT; i++) {
        char k[16], v[16], nk[16], nv[16];
        int kl = snprintf(k, sizeof(k), "k%d", i), vl = snprintf(v, sizeof(v), "v%d", i);
        int nkl = snprintf(nk, sizeof(nk), "n%d", i), nvl = snprintf(nv, sizeof(nv), "%d", -i);
        need += (size_t)(kl + vl + nkl + nvl + 4); /* a NUL after each */
        sb_buf_printf(&b, "%c\"%s\":", i ? ',' : '{', k);
        at[i][0] = b.len;
        sb_buf_printf(&b, "\"%s\",\"%s\":", v, nk);
        at[i][1] = b.len;
        sb_buf_append_cstr(&b, nv);
    }
    sb_buf_printf(&b, ",\"long\":\"%s\"}", long_value);
    size_t n = b.len;
    char *home = malloc(n);
    memcpy(home, b.p, n);
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_json_limits lim = {.lazy_strings = true};
    struct sb_json *j;
    struct sb_error err;
    assert_int_equal(sb_json_parse(a, b.p, n, &lim, &j, &err), SB_OK);
    size_t used = sb_arena_used(a);
    sb_json_rebase(j, b.p, n, home, a, 16);
    /* One block: at most its alignment over the bytes kept, where a copy
     * each padded every one of the 12,000 to 16 bytes. */
    assert_true(sb_arena_used(a) - used < need + alignof(max_align_t));
    memset(b.p, '#', n);
    all_in(j, home, n, b.p, n);
    const struct sb_json *m = j->child;
    for (int i = 0; i < MANY_SHORT; i++, m = m->next->next)
        assert_true(m->raw.p == home + at[i][0] && m->next->raw.p == home + at[i][1]);
    assert_true(sb_json_get(j, "long")->str.p > home);
    memset(home, '#', n); /* only the long string still reads from home */
    memcpy((char *)sb_json_get(j, "long")->str.p, long_value, sizeof(long_value) - 1);
    m = j->child;
    for (int i = 0; i < MANY_SHORT; i++, m = m->next->next) {
        char want[16];
        int64_t v = 1;
        snprintf(want, sizeof(want), "k%d", i);
        assert_true(sb_slice_eq_cstr(m->key, want));
        snprintf(want, sizeof(want), "v%d", i);
        assert_true(sb_slice_eq_cstr(sb_json_text(a, m), want));
        snprintf(want, sizeof(want), "n%d", i);
        assert_true(sb_slice_eq_cstr(m->next->key, want));
        assert_true(sb_json_int64(m->next, &v) && v == -i);
    }
    assert_true(sb_slice_eq_cstr(sb_json_get(j, "k2999")->str, "v2999"));
    assert_true(sb_slice_eq_cstr(sb_json_get(j, "long")->str, long_value));
    sb_buf_free(&b);
    free(home);
    sb_arena_free(a);
}

/* ---- sb_json_find ---- */

static void expect_span(struct sb_slice got, const char *want)
{
    if (!want) {
        assert_null(got.p);
        return;
    }
    assert_non_null(got.p);
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.p, want, got.len);
}

static sb_err find1(const char *doc, const char *const *path, struct sb_slice *found)
{
    const char *const *paths[] = {path};
    struct sb_error err;
    return sb_json_find(doc, strlen(doc), NULL, paths, 1, found, &err);
}

static void test_find_paths(void **state)
{
    (void)state;
    static const char chunk[] =
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},"
        "\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":3}}";
    static const char *const content[] = {"choices", "0", "delta", "content", NULL};
    static const char *const finish[] = {"choices", "0", "finish_reason", NULL};
    static const char *const usage[] = {"usage", NULL};
    static const char *const error[] = {"error", NULL};
    static const char *const root[] = {NULL};
    const char *const *paths[] = {content, finish, usage, error, root};
    struct sb_slice found[5];
    struct sb_error err;
    assert_int_equal(sb_json_find(chunk, strlen(chunk), NULL, paths, 5, found, &err), SB_OK);
    expect_span(found[0], "\"tok \"");
    expect_span(found[1], "null");
    expect_span(found[2], "{\"prompt_tokens\":3}");
    expect_span(found[3], NULL);
    expect_span(found[4], chunk);
    /* Positions index arrays only; a later duplicate member replaces an earlier one. */
    static const char *const a1[] = {"a", "1", NULL}, *const a2b[] = {"a", "2", "b", NULL};
    static const char *const a5[] = {"a", "5", NULL}, *const ab[] = {"a", "b", NULL};
    static const char *const a[] = {"a", NULL}, *const k0[] = {"0", NULL};
    assert_int_equal(find1("{\"a\":[10,[20,30],{\"b\":\"x\"}]}", a1, found), SB_OK);
    expect_span(found[0], "[20,30]");
    find1("{\"a\":[10,[20,30],{\"b\":\"x\"}]}", a2b, found);
    expect_span(found[0], "\"x\"");
    find1("{\"a\":[10]}", a5, found);
    expect_span(found[0], NULL);
    find1("{\"a\":1,\"a\":{\"b\":2}}", ab, found);
    expect_span(found[0], "2");
    find1("{\"a\":{\"b\":2},\"a\":3}", ab, found);
    expect_span(found[0], NULL);
    find1("{\"a\":{\"b\":2},\"a\":3}", a, found);
    expect_span(found[0], "3");
    find1("{\"0\":1}", k0, found); /* a position names no member */
    expect_span(found[0], NULL);
    find1("[\"x\", 2]", k0, found);
    expect_span(found[0], "\"x\"");
    find1("{\"\\u0061\" : true }", a, found); /* names are compared decoded */
    expect_span(found[0], "true");
}

/* The same verdicts and messages as sb_json_parse, and the limits. */
static void test_find_errors(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"a\":}",         "[1,]",    "{\"a\" 1}", "\"\\x\"", "[01]",
        "{\"a\":\"\xff\"}", "[[[1]]]", "{} x",      "tru",     ""};
    static const char *const a[] = {"a", NULL};
    const char *const *paths[] = {a};
    struct sb_json_limits lim = {.max_depth = 2};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct sb_arena *ar = sb_arena_create(0);
        struct sb_json *j;
        struct sb_error e1, e2;
        struct sb_slice found[1] = {{"junk", 4}};
        sb_err r1 = sb_json_parse(ar, docs[i], strlen(docs[i]), &lim, &j, &e1);
        sb_err r2 = sb_json_find(docs[i], strlen(docs[i]), &lim, paths, 1, found, &e2);
        assert_int_not_equal(r1, SB_OK);
        assert_int_equal(r2, r1);
        assert_string_equal(e2.msg, e1.msg);
        assert_null(found[0].p);
        sb_arena_free(ar);
    }
    /* 100 nested arrays: frames past the first 64 come from the heap. */
    char deep[202];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = '\0';
    static const char *const root[] = {NULL};
    const char *const *rp[] = {root};
    struct sb_json_limits big = {.max_depth = 200};
    struct sb_slice found[SB_JSON_FIND_MAX + 1];
    struct sb_error err;
    assert_int_equal(sb_json_find(deep, 200, &big, rp, 1, found, &err), SB_OK);
    expect_span(found[0], deep);
    const char *const *many[SB_JSON_FIND_MAX + 1];
    for (size_t i = 0; i <= SB_JSON_FIND_MAX; i++)
        many[i] = root;
    assert_int_equal(sb_json_find("1", 1, NULL, many, SB_JSON_FIND_MAX + 1, found, &err),
                     SB_E_INTERNAL);
}

static void test_unquote(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(0);
    struct sb_slice plain = sb_json_unquote(a, SB_SLICE("\"tok\""));
    assert_int_equal(plain.len, 3);
    assert_memory_equal(plain.p, "tok", 3);
    struct sb_slice esc = sb_json_unquote(a, SB_SLICE("\"a\\nb\\u00e9\""));
    assert_int_equal(esc.len, 5);
    assert_memory_equal(esc.p, "a\nb\xc3\xa9", 5);
    assert_null(sb_json_unquote(a, SB_SLICE("null")).p);
    assert_null(sb_json_unquote(a, SB_SLICE_NULL).p);
    sb_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_differential_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_differential_trees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scalar_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapes_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_and_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_2pow53_plus_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_structure, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_escapes, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_escape_fn, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_ints, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_doubles, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_double_roundtrip, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_sticky_error, wsetup, wteardown),
        cmocka_unit_test_setup_teardown(test_writer_roundtrip, wsetup, wteardown),
        cmocka_unit_test(test_rebase),
        cmocka_unit_test(test_rebase_many_short),
        cmocka_unit_test(test_find_paths),
        cmocka_unit_test(test_find_errors),
        cmocka_unit_test(test_unquote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
