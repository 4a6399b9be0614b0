/* SPDX-License-Identifier: MIT */
/*
 * ui_test.c - the console's serving rules (sb_ui_answer) on a small table of
 * its own: index.html for client routes, 404 for missing files, the /ui
 * redirect, gzip only when accepted, ETag revalidation, cache lifetimes and
 * the security headers on every answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "front/ui.h"

/* The binary's generated table is linked in too; these tests use their own. */
static const unsigned char html[] = "<!doctype html><title>t</title>";
static const unsigned char html_gz[] = "GZ-HTML";
static const unsigned char js[] = "console.log(1)";
static const unsigned char png[] = "\x89PNG";

static const struct sb_ui_asset table[] = {
    {"assets/app-1234abcd.js", js, sizeof(js) - 1, NULL, 0, "text/javascript; charset=utf-8",
     "\"aaaa\"", "\"aaaa-gz\""},
    {"favicon.png", png, sizeof(png) - 1, NULL, 0, "image/png", "\"bbbb\"", "\"bbbb-gz\""},
    {"index.html", html, sizeof(html) - 1, html_gz, sizeof(html_gz) - 1, "text/html; charset=utf-8",
     "\"cccc\"", "\"cccc-gz\""},
};

static struct sb_ui_reply ask(const char *method, const char *path, const char *ae, const char *inm)
{
    struct sb_ui_reply r;
    sb_ui_answer(table, 3, sb_slice_cstr(method), sb_slice_cstr(path),
                 ae ? sb_slice_cstr(ae) : SB_SLICE_NULL, inm ? sb_slice_cstr(inm) : SB_SLICE_NULL,
                 &r);
    return r;
}

/* The value of header name in r, or NULL. */
static const char *hdr(const struct sb_ui_reply *r, const char *name)
{
    static char v[512];
    for (size_t i = 0; i < r->nh; i++)
        if (sb_slice_eq_cstr(r->h[i].name, name)) {
            size_t n = r->h[i].value.len < sizeof(v) - 1 ? r->h[i].value.len : sizeof(v) - 1;
            memcpy(v, r->h[i].value.p, n);
            v[n] = 0;
            return v;
        }
    return NULL;
}

static void body_is(const struct sb_ui_reply *r, const unsigned char *want, size_t n)
{
    assert_int_equal(r->body.len, n);
    assert_memory_equal(r->body.p, want, n);
}

static void test_owns(void **state)
{
    (void)state;
    assert_true(sb_ui_owns(SB_SLICE("/ui")));
    assert_true(sb_ui_owns(SB_SLICE("/ui/")));
    assert_true(sb_ui_owns(SB_SLICE("/ui/models")));
    assert_false(sb_ui_owns(SB_SLICE("/uix")));
    assert_false(sb_ui_owns(SB_SLICE("/api/ui")));
    assert_false(sb_ui_owns(SB_SLICE("/")));
}

static void test_index_and_client_routes(void **state)
{
    (void)state;
    const char *paths[] = {"/ui/", "/ui/index.html", "/ui/models", "/ui/keys/new", "/ui/a/b/c"};
    for (size_t i = 0; i < 5; i++) {
        struct sb_ui_reply r = ask("GET", paths[i], NULL, NULL);
        assert_int_equal(r.status, 200);
        body_is(&r, html, sizeof(html) - 1);
        assert_string_equal(hdr(&r, "content-type"), "text/html; charset=utf-8");
        assert_string_equal(hdr(&r, "cache-control"), "no-cache");
        assert_string_equal(hdr(&r, "etag"), "\"cccc\"");
        assert_null(hdr(&r, "content-encoding"));
    }
}

static void test_assets_and_missing_files(void **state)
{
    (void)state;
    struct sb_ui_reply r = ask("GET", "/ui/assets/app-1234abcd.js", "gzip", NULL);
    assert_int_equal(r.status, 200);
    body_is(&r, js, sizeof(js) - 1);
    assert_string_equal(hdr(&r, "cache-control"), "public, max-age=31536000, immutable");
    assert_null(hdr(&r, "content-encoding")); /* no gzip copy: identity even when accepted */
    assert_string_equal(hdr(&r, "content-type"), "text/javascript; charset=utf-8");
    r = ask("GET", "/ui/favicon.png", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "cache-control"), "no-cache");
    /* Missing files are 404, never the page. */
    const char *missing[] = {"/ui/assets/gone.js", "/ui/assets/x", "/ui/robots.txt", "/ui/a/b.css"};
    for (size_t i = 0; i < 4; i++) {
        r = ask("GET", missing[i], NULL, NULL);
        assert_int_equal(r.status, 404);
        assert_string_equal(hdr(&r, "content-type"), "text/plain; charset=utf-8");
    }
}

static void test_redirect_and_methods(void **state)
{
    (void)state;
    struct sb_ui_reply r = ask("GET", "/ui", NULL, NULL);
    assert_int_equal(r.status, 301);
    assert_string_equal(hdr(&r, "location"), "/ui/");
    r = ask("HEAD", "/ui/", NULL, NULL);
    assert_int_equal(r.status, 200); /* the server leaves the body out for HEAD */
    const char *bad[] = {"POST", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < 4; i++) {
        r = ask(bad[i], "/ui/", NULL, NULL);
        assert_int_equal(r.status, 405);
        assert_string_equal(hdr(&r, "allow"), "GET, HEAD");
    }
}

static void test_gzip_negotiation(void **state)
{
    (void)state;
    const char *yes[] = {"gzip", "GZIP",       "br, gzip;q=0.5",   "deflate, gzip, br",
                         "*",    "gzip;q=1.0", " identity , gzip "};
    for (size_t i = 0; i < 7; i++) {
        struct sb_ui_reply r = ask("GET", "/ui/", yes[i], NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(hdr(&r, "content-encoding"), "gzip");
        assert_string_equal(hdr(&r, "etag"), "\"cccc-gz\"");
        assert_string_equal(hdr(&r, "vary"), "accept-encoding");
        body_is(&r, html_gz, sizeof(html_gz) - 1);
    }
    const char *no[] = {"", "br", "gzip;q=0", "gzip; q=0.000", "identity", "x-gzip2", "*;q=0"};
    for (size_t i = 0; i < 7; i++) {
        struct sb_ui_reply r = ask("GET", "/ui/", no[i], NULL);
        assert_null(hdr(&r, "content-encoding"));
        assert_string_equal(hdr(&r, "vary"), "accept-encoding");
        body_is(&r, html, sizeof(html) - 1);
    }
}

static void test_etag_revalidation(void **state)
{
    (void)state;
    const char *hit[] = {"\"cccc\"", "\"cccc-gz\"", "W/\"cccc\"", "\"zz\", \"cccc\"", "*"};
    for (size_t i = 0; i < 5; i++) {
        struct sb_ui_reply r = ask("GET", "/ui/models", "gzip", hit[i]);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body.len, 0);
        assert_string_equal(hdr(&r, "etag"), "\"cccc-gz\"");
        assert_string_equal(hdr(&r, "cache-control"), "no-cache");
    }
    const char *miss[] = {"\"ccc\"", "\"cccc-gzz\"", "cccc", "\"aaaa\""};
    for (size_t i = 0; i < 4; i++) {
        struct sb_ui_reply r = ask("GET", "/ui/", NULL, miss[i]);
        assert_int_equal(r.status, 200);
    }
}

static void test_security_headers_everywhere(void **state)
{
    (void)state;
    struct sb_ui_reply rs[] = {ask("GET", "/ui/", NULL, NULL), ask("GET", "/ui", NULL, NULL),
                               ask("GET", "/ui/assets/none.js", NULL, NULL),
                               ask("POST", "/ui/", NULL, NULL),
                               ask("GET", "/ui/", NULL, "\"cccc\"")};
    for (size_t i = 0; i < 5; i++) {
        const char *csp = hdr(&rs[i], "content-security-policy");
        assert_non_null(csp);
        assert_non_null(strstr(csp, "default-src 'self'"));
        assert_non_null(strstr(csp, "script-src 'self';"));
        assert_non_null(strstr(csp, "frame-ancestors 'none'"));
        assert_null(strstr(csp, "unsafe"));
        assert_null(strstr(csp, "http"));
        assert_string_equal(hdr(&rs[i], "x-content-type-options"), "nosniff");
        assert_string_equal(hdr(&rs[i], "referrer-policy"), "no-referrer");
    }
}

static void test_empty_table(void **state)
{
    (void)state;
    struct sb_ui_reply r;
    sb_ui_answer(table, 0, SB_SLICE("GET"), SB_SLICE("/ui/"), SB_SLICE_NULL, SB_SLICE_NULL, &r);
    assert_int_equal(r.status, 404);
}

/* The generated table: index.html is there, every entry is sane. */
static void test_generated_table(void **state)
{
    (void)state;
    bool index = false;
    for (size_t i = 0; i < sb_ui_nassets; i++) {
        const struct sb_ui_asset *a = &sb_ui_assets[i];
        index |= strcmp(a->path, "index.html") == 0;
        assert_true(a->len > 0);
        assert_true(!a->gz || (a->gz_len < a->len && a->gz[0] == 0x1f && a->gz[1] == 0x8b));
        assert_int_equal(strlen(a->etag), 18);
        assert_true(strncmp(a->etag_gz, a->etag, 17) == 0);
    }
    assert_true(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owns),
        cmocka_unit_test(test_index_and_client_routes),
        cmocka_unit_test(test_assets_and_missing_files),
        cmocka_unit_test(test_redirect_and_methods),
        cmocka_unit_test(test_gzip_negotiation),
        cmocka_unit_test(test_etag_revalidation),
        cmocka_unit_test(test_security_headers_everywhere),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_generated_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
