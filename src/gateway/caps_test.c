/* SPDX-License-Identifier: MIT */
/*
 * caps_test.c - the prompt-token estimate (exact numbers for known bodies in
 * both wire formats, images and signatures not counted as text) and the
 * capability checks (declared vs unknown capabilities, each rule, the
 * context length, the error's field and code).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/json.h"
#include "gateway/caps.h"

static struct sb_arena *A;

static const struct sb_json *parse(const char *s)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    assert_int_equal(sb_json_parse(A, s, strlen(s), NULL, &j, &err), SB_OK);
    return j;
}

static void test_estimate_openai(void **state)
{
    (void)state;
    /* 16 bytes of text ("You are helpful." is 16) + "Hi there" 8 + roles "system" 6, "user" 4 = 34
     * bytes -> 9 tokens, + 2 messages * 4. */
    const struct sb_json *b = parse("{\"model\":\"m\",\"messages\":["
                                    "{\"role\":\"system\",\"content\":\"You are helpful.\"},"
                                    "{\"role\":\"user\",\"content\":\"Hi there\"}]}");
    assert_int_equal(sb_token_estimate(b), 9 + 8);
    /* An image part costs a fixed amount, whatever the size of its URL. */
    const struct sb_json *img = parse(
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/"
        "png;base64,AAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]}]}");
    /* "user" 4 + "abcd" 4 = 8 bytes -> 2 tokens, + 4, + 85 */
    assert_int_equal(sb_token_estimate(img), 2 + 4 + SB_ESTIMATE_IMAGE_TOKENS);
    /* tools count as their JSON text */
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"messages\":[],\"tools\":%s}", tools);
    assert_int_equal(sb_token_estimate(parse(buf)), (int64_t)(strlen(tools) + 3) / 4);
    assert_int_equal(sb_token_estimate(parse("{}")), 0);
    assert_int_equal(sb_token_estimate(parse("[1,2]")), 0);
}

static void test_estimate_anthropic(void **state)
{
    (void)state;
    /* system "Be brief" 8, role "assistant" 9 and "user" 4, thinking "hmm" 3 (its signature is
     * not text), text "ok" 2, image not text, redacted data not text, "Go" 2 -> 28 bytes = 7
     * tokens, + 2 messages * 4 + one image. */
    const struct sb_json *b = parse(
        "{\"model\":\"m\",\"max_tokens\":9,\"system\":[{\"type\":\"text\",\"text\":\"Be brief\","
        "\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":["
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
        "\"signature\":\"c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU=\"},"
        "{\"type\":\"redacted_thinking\",\"data\":\"ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\"},"
        "{\"type\":\"text\",\"text\":\"ok\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/png\",\"data\":\"QUFBQUFBQUFBQUFBQUFBQUFB\"}},"
        "{\"type\":\"text\",\"text\":\"Go\"}]}]}");
    assert_int_equal(sb_token_estimate(b), 7 + 8 + SB_ESTIMATE_IMAGE_TOKENS);
}

static struct sb_model model(unsigned caps, long context)
{
    static const struct sb_provider p = {.id = "p"};
    return (struct sb_model){
        .id = "small-model", .provider = &p, .caps = caps, .context_length = context};
}

static void expect_refused(const struct sb_model *m, enum sb_op op, const char *body,
                           const char *field, const char *code, const char *needle)
{
    struct sb_error err = {0};
    assert_int_equal(sb_caps_check(m, op, parse(body), -1, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, field);
    assert_string_equal(err.api_code, code);
    assert_non_null(strstr(err.msg, "'small-model'"));
    assert_non_null(strstr(err.msg, needle));
}

static void expect_ok(const struct sb_model *m, enum sb_op op, const char *body)
{
    struct sb_error err = {0};
    assert_int_equal(sb_caps_check(m, op, parse(body), -1, &err), SB_OK);
}

#define TOOLS                                                                                      \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","     \
    "\"function\":{\"name\":\"f\"}}]}"
#define IMAGE                                                                                      \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"       \
    "\"url\":\"https://x/y.png\"}}]}]}"
#define JSONRF                                                                                     \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"         \
    "\"json_object\"}}"
#define PLAIN "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"

static void test_checks(void **state)
{
    (void)state;
    struct sb_model unknown = model(SB_CAP_STREAMING, 0);
    struct sb_model bare = model(SB_CAP_STREAMING | SB_CAP_DECLARED, 0);
    struct sb_model all = model(
        SB_CAP_DECLARED | SB_CAP_TOOLS | SB_CAP_VISION | SB_CAP_JSON_MODE | SB_CAP_EMBEDDINGS, 0);
    /* Unknown capabilities refuse nothing; declared ones are exact. */
    const char *bodies[] = {TOOLS, IMAGE, JSONRF, PLAIN};
    for (size_t i = 0; i < 4; i++) {
        expect_ok(&unknown, SB_OP_CHAT, bodies[i]);
        expect_ok(&all, SB_OP_CHAT, bodies[i]);
    }
    expect_ok(&unknown, SB_OP_EMBEDDINGS, "{\"input\":\"x\"}");
    expect_ok(&all, SB_OP_EMBEDDINGS, "{\"input\":\"x\"}");
    expect_ok(&bare, SB_OP_CHAT, PLAIN);
    expect_refused(&bare, SB_OP_CHAT, TOOLS, "tools", "unsupported_capability", "'tools'");
    expect_refused(&bare, SB_OP_CHAT, "{\"messages\":[],\"tool_choice\":\"auto\",\"tools\":[]}",
                   "tool_choice", "unsupported_capability", "tools");
    expect_ok(&bare, SB_OP_CHAT, "{\"messages\":[],\"tools\":[],\"tool_choice\":null}");
    expect_refused(&bare, SB_OP_CHAT, IMAGE, "messages", "unsupported_capability", "'vision'");
    expect_refused(&bare, SB_OP_CHAT, JSONRF, "response_format", "unsupported_capability",
                   "'json_mode'");
    expect_ok(&bare, SB_OP_CHAT,
              "{\"messages\":[],\"response_format\":{\"type\":\"text\"}}"); /* not JSON mode */
    expect_refused(&bare, SB_OP_EMBEDDINGS, "{\"input\":\"x\"}", "model", "unsupported_capability",
                   "'embeddings'");
}

static void test_context_length(void **state)
{
    (void)state;
    static const char head[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"";
    char big[600];
    /* 400 bytes of text + "user" -> 101 tokens + 4 */
    memset(big, 'a', sizeof(big));
    memcpy(big, head, strlen(head));
    memcpy(big + strlen(head) + 400, "\"}]}", 5);
    struct sb_model fits = model(SB_CAP_STREAMING, 105);
    struct sb_model small = model(SB_CAP_STREAMING, 104);
    struct sb_model unlimited = model(SB_CAP_STREAMING, 0);
    expect_ok(&fits, SB_OP_CHAT, big);
    expect_ok(&unlimited, SB_OP_CHAT, big);
    expect_refused(&small, SB_OP_CHAT, big, "messages", "context_length_exceeded",
                   "about 105 tokens");
    expect_ok(&small, SB_OP_EMBEDDINGS, "{\"input\":\"x\"}"); /* counted per input upstream */
}

static int setup(void **state)
{
    A = sb_arena_create(8192);
    return 0;
}

static int teardown(void **state)
{
    sb_arena_free(A);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_openai),
        cmocka_unit_test(test_estimate_anthropic),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_context_length),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
