/* SPDX-License-Identifier: MIT */
/*
 * upstream_auth_test.c - unit tests for upstream auth: each method, extra headers and
 * their precedence, missing credentials, and wiping of credential copies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "crypto/secret.h"
#include "provider/upstream_auth.h"

static struct sb_slice header(const struct sb_upstream_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (sb_slice_caseeq(r->headers[i].name, sb_slice_cstr(name)))
            return r->headers[i].value;
    return SB_SLICE_NULL;
}

static bool header_is(const struct sb_upstream_req *r, const char *name, const char *value)
{
    return sb_slice_eq_cstr(header(r, name), value);
}

/* A request as an adapter builds it: arena headers, content-type and accept. */
static struct sb_upstream_req base_req(struct sb_arena *a, const char *url)
{
    struct sb_upstream_req r = {.method = "POST", .url = url, .body = SB_SLICE("{}")};
    sb_upstream_auth_set_header(a, &r, SB_SLICE("content-type"), SB_SLICE("application/json"));
    sb_upstream_auth_set_header(a, &r, SB_SLICE("accept"), SB_SLICE("application/json"));
    return r;
}

static void test_bearer_and_extras(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_kv extra[] = {
        {SB_SLICE("OpenAI-Organization"), SB_SLICE("org-1")},
        {SB_SLICE("Accept"), SB_SLICE("text/plain")},             /* overrides the adapter */
        {SB_SLICE("authorization"), SB_SLICE("Bearer not-this")}, /* auth wins */
    };
    struct sb_provider p = {
        .id = "openai", .auth = SB_AUTH_BEARER, .headers = extra, .nheaders = 3};
    p.api_key = sb_secret_new("sk-test-123", 11);
    struct sb_upstream_req r = base_req(a, "https://api.openai.com/v1/chat/completions");
    struct sb_error err;
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    assert_int_equal(r.nheaders, 4);
    assert_true(header_is(&r, "authorization", "Bearer sk-test-123"));
    assert_true(header_is(&r, "openai-organization", "org-1"));
    assert_true(header_is(&r, "accept", "text/plain"));
    assert_true(header_is(&r, "content-type", "application/json"));
    assert_string_equal(r.url, "https://api.openai.com/v1/chat/completions");
    sb_secret_free(p.api_key);
    sb_arena_free(a);
}

static void test_api_key_header(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_provider p = {.id = "azure", .auth = SB_AUTH_API_KEY};
    p.api_key = sb_secret_new("azkey", 5);
    struct sb_upstream_req r = base_req(a, "https://x.openai.azure.com/");
    struct sb_error err;
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    assert_true(header_is(&r, "api-key", "azkey"));
    struct sb_upstream_auth_opts o = {.key_name = "x-api-key"};
    r = base_req(a, "https://api.anthropic.com/v1/messages");
    assert_int_equal(sb_upstream_auth_apply(&p, &o, a, &r, &err), SB_OK);
    assert_true(header_is(&r, "x-api-key", "azkey"));
    assert_int_equal(header(&r, "api-key").len, 0);
    assert_int_equal(header(&r, "authorization").len, 0);
    sb_secret_free(p.api_key);
    sb_arena_free(a);
}

static void test_query_key(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_provider p = {.id = "gemini", .auth = SB_AUTH_QUERY};
    p.api_key = sb_secret_new("AIza+k/y", 8);
    struct sb_upstream_req r = base_req(a, "https://g/v1beta/models/m:generateContent");
    struct sb_error err;
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://g/v1beta/models/m:generateContent?key=AIza%2Bk%2Fy");
    r = base_req(a, "https://g/v1beta/models/m:streamGenerateContent?alt=sse");
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    assert_string_equal(r.url,
                        "https://g/v1beta/models/m:streamGenerateContent?alt=sse&key=AIza%2Bk%2Fy");
    assert_int_equal(r.nheaders, 2);
    sb_secret_free(p.api_key);
    sb_arena_free(a);
}

/* Same request as sigv4_test's AWS SDK cross-check, built the way an adapter would. */
static void test_sigv4(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_provider p = {.id = "bedrock", .auth = SB_AUTH_SIGV4, .region = "us-east-1"};
    p.aws_access_key_id = sb_secret_new("AKIDEXAMPLE", 11);
    p.aws_secret_access_key = sb_secret_new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 40);
    p.aws_session_token = sb_secret_new("tok/en+1==", 10);
    struct sb_upstream_req r = {
        .method = "POST",
        .url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
               "anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        .body = SB_SLICE("{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hi\"}]}]}"),
    };
    sb_upstream_auth_set_header(a, &r, SB_SLICE("Content-Type"), SB_SLICE("application/json"));
    sb_upstream_auth_set_header(a, &r, SB_SLICE("Accept"),
                                SB_SLICE("application/vnd.amazon.eventstream"));
    struct sb_upstream_auth_opts o = {.now = 1440938160};
    struct sb_error err;
    assert_int_equal(sb_upstream_auth_apply(&p, &o, a, &r, &err), SB_OK);
    assert_int_equal(r.nheaders, 6);
    assert_true(header_is(
        &r, "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
        "Signature=33a7b7125216bbdb360774304ff884447c87c3443975ba14b2b48149bace88bb"));
    assert_true(header_is(&r, "x-amz-date", "20150830T123600Z"));
    assert_true(header_is(&r, "x-amz-security-token", "tok/en+1=="));
    assert_true(header_is(&r, "x-amz-content-sha256",
                          "45e583fed2564dc00e823303d7609f8587af7f685b993cb0f998afc0d480b01d"));
    sb_secret_free(p.aws_access_key_id);
    sb_secret_free(p.aws_secret_access_key);
    sb_secret_free(p.aws_session_token);
    sb_arena_free(a);
}

static void test_missing_credentials(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(4096);
    struct sb_error err;
    struct sb_provider p = {.id = "acme", .auth = SB_AUTH_BEARER};
    struct sb_upstream_req r = base_req(a, "https://h/");
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_E_CONFIG);
    assert_non_null(strstr(err.msg, "acme"));
    p.auth = SB_AUTH_SIGV4;
    p.aws_access_key_id = sb_secret_new("AKID", 4);
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_E_CONFIG);
    assert_null(strstr(err.msg, "AKID"));
    p.aws_secret_access_key = sb_secret_new("SECRET", 6);
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_E_CONFIG); /* no region */
    assert_non_null(strstr(err.msg, "region"));
    assert_null(strstr(err.msg, "SECRET"));
    p.auth = SB_AUTH_NONE;
    r = base_req(a, "https://h/");
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    assert_int_equal(r.nheaders, 2);
    sb_secret_free(p.aws_access_key_id);
    sb_secret_free(p.aws_secret_access_key);
    sb_arena_free(a);
}

static void test_copies_are_wiped(void **state)
{
    (void)state;
    struct sb_arena *a = sb_arena_create(64 * 1024); /* one block: survives sb_arena_reset */
    struct sb_provider p = {.id = "openai", .auth = SB_AUTH_BEARER};
    p.api_key = sb_secret_new("sk-wipe-me", 10);
    struct sb_upstream_req r = base_req(a, "https://h/");
    struct sb_error err;
    assert_int_equal(sb_upstream_auth_apply(&p, NULL, a, &r, &err), SB_OK);
    struct sb_slice v = header(&r, "authorization");
    assert_true(sb_slice_eq_cstr(v, "Bearer sk-wipe-me"));
    const char *bytes = v.p;
    sb_arena_reset(a); /* runs the hooks, keeps the first block */
    for (size_t i = 0; i < v.len; i++)
        assert_int_equal(bytes[i], 0);
    sb_secret_free(p.api_key);
    sb_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_and_extras),   cmocka_unit_test(test_api_key_header),
        cmocka_unit_test(test_query_key),           cmocka_unit_test(test_sigv4),
        cmocka_unit_test(test_missing_credentials), cmocka_unit_test(test_copies_are_wiped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
