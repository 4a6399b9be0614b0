/* SPDX-License-Identifier: MIT */
/*
 * messages_front_test.c - the Anthropic front-door translations on strings:
 * requests (system, every content block, tools, tool_choice, thinking,
 * metadata, refusals by name), whole responses (thinking first, text,
 * tool_use, stop reasons, usage with cache reads), streams in the event
 * order of Anthropic's SDK (message_start, ping, content_block_start/
 * delta/stop, message_delta, message_stop) and error bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "provider/messages_front.h"

static int setup(void **state)
{
    *state = sb_arena_create(8192);
    return 0;
}

static int teardown(void **state)
{
    sb_arena_free(*state);
    return 0;
}

static const struct sb_json *parse(struct sb_arena *a, const char *s)
{
    struct sb_json *j = NULL;
    struct sb_error err;
    struct sb_json_limits lim = {.max_depth = 64, .max_bytes = 0};
    if (sb_json_parse(a, s, strlen(s), &lim, &j, &err) != SB_OK)
        fail_msg("test input is not JSON: %s", err.msg);
    return j;
}

static void same(struct sb_slice got, const char *want)
{
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("got\n%.*s\nwant\n%s", SB_FMT(got), want);
    json_error_t jerr;
    json_t *j = json_loadb(got.p, got.len, 0, &jerr);
    if (!j)
        fail_msg("not valid JSON: %s", jerr.text);
    json_decref(j);
}

static void req_ok(struct sb_arena *a, const char *in, const char *want)
{
    struct sb_slice out;
    struct sb_error err;
    if (sb_messages_front_request(a, parse(a, in), &out, &err) != SB_OK)
        fail_msg("translation failed: %s", err.msg);
    same(out, want);
}

static void req_bad(struct sb_arena *a, const char *in, const char *field, const char *msg_part)
{
    struct sb_slice out;
    struct sb_error err;
    assert_int_equal(sb_messages_front_request(a, parse(a, in), &out, &err), SB_E_BAD_REQUEST);
    assert_string_equal(err.field, field);
    if (!strstr(err.msg, msg_part))
        fail_msg("message [%s] lacks [%s]", err.msg, msg_part);
}

/* ---- (a) requests ---- */

static void test_request_basic(void **state)
{
    req_ok(*state,
           "{\"model\":\"claude-x\",\"max_tokens\":256,\"system\":\"Be brief.\",\"messages\":"
           "[{\"role\":\"user\",\"content\":\"Hi\"}],\"temperature\":0.5,\"top_p\":0.9,"
           "\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u-1\"},\"stream\":true}",
           "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":256,\"stop\":[\"END\"],"
           "\"temperature\":0.5,\"top_p\":0.9,\"stream\":true,\"stream_options\":"
           "{\"include_usage\":true},\"user\":\"u-1\"}");
    /* system as blocks (cache_control is a hint and goes), stream false, empty stops */
    req_ok(*state,
           "{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"text\",\"text\":\"A\","
           "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"B\"}],"
           "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":false,"
           "\"stop_sequences\":[],\"top_k\":5,\"thinking\":{\"type\":\"disabled\"}}",
           "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"A\\nB\"},"
           "{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,\"top_k\":5,"
           "\"stream\":false}");
}

static void test_request_blocks(void **state)
{
    req_ok(*state,
           "{\"model\":\"m\",\"max_tokens\":9,\"messages\":["
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
           "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
           "\"data\":\"iVBOR\"}},{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":"
           "\"https://x/y.jpg\"}}]},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me "
           "see\",\"signature\":\"sig-1\"},{\"type\":\"redacted_thinking\",\"data\":\"enc\"},"
           "{\"type\":\"text\",\"text\":\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
           "\"name\":\"look\",\"input\":{\"q\": \"cat\"}},{\"type\":\"tool_use\",\"id\":"
           "\"toolu_2\",\"name\":\"noop\",\"input\":{}}]},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
           "\"content\":\"a cat\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\","
           "\"content\":[{\"type\":\"text\",\"text\":\"o\"},{\"type\":\"text\",\"text\":\"k\"}],"
           "\"is_error\":false},{\"type\":\"text\",\"text\":\"Thanks\"}]}]}",
           "{\"model\":\"m\",\"messages\":["
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
           "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
           "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.jpg\"}}]},"
           "{\"role\":\"assistant\",\"content\":\"Checking.\",\"thinking_blocks\":[{\"type\":"
           "\"thinking\",\"thinking\":\"Let me see\",\"signature\":\"sig-1\"},{\"type\":"
           "\"redacted_thinking\",\"data\":\"enc\"}],\"tool_calls\":[{\"id\":\"toolu_1\","
           "\"type\":\"function\",\"function\":{\"name\":\"look\",\"arguments\":"
           "\"{\\\"q\\\": \\\"cat\\\"}\"}},{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":"
           "{\"name\":\"noop\",\"arguments\":\"{}\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"a cat\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":\"ok\"},"
           "{\"role\":\"user\",\"content\":\"Thanks\"}],\"max_tokens\":9}");
}

static void test_request_unsigned_reasoning(void **state)
{
    /* A thinking block with signature "" came from a non-Anthropic model: it goes back as
     * reasoning_content (DeepSeek needs it on tool-call turns), never as a block. */
    req_ok(*state,
           "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
           "\"signature\":\"\"},{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\","
           "\"input\":{\"a\":1}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
           "\"tool_use_id\":\"call_1\",\"content\":\"2\"}]}]}",
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
           "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"hmm\","
           "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
           "\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
           "\"call_1\",\"content\":\"2\"}],\"max_tokens\":9}");
}

/* Found by messages_front_fuzz: empty texts (no tool_result content, an empty system). */
static void test_request_empty_texts(void **state)
{
    req_ok(*state,
           "{\"model\":\"m\",\"max_tokens\":1,\"system\":\"\",\"messages\":[{\"role\":\"user\","
           "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]},{\"role\":"
           "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"\"}]}]}",
           "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"\"},{\"role\":"
           "\"tool\",\"tool_call_id\":\"t\",\"content\":\"\"},{\"role\":\"assistant\","
           "\"content\":\"\"}],\"max_tokens\":1}");
}

static void test_request_tools_and_thinking(void **state)
{
    struct sb_arena *a = *state;
    const char *head = "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"q\"}],";
    char in[1024];
    snprintf(in, sizeof(in),
             "%s\"tools\":[{\"name\":\"get\",\"description\":\"Get it\",\"input_schema\":"
             "{\"type\":\"object\",\"properties\":{}}},{\"type\":\"custom\",\"name\":\"put\","
             "\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"tool\","
             "\"name\":\"get\",\"disable_parallel_tool_use\":true}}",
             head);
    req_ok(a, in,
           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"max_tokens\":9,"
           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":"
           "\"Get it\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},{\"type\":"
           "\"function\",\"function\":{\"name\":\"put\",\"parameters\":{\"type\":\"object\"}}}],"
           "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get\"}},"
           "\"parallel_tool_calls\":false}");
    static const struct {
        const char *choice, *want;
    } choices[] = {{"{\"type\":\"auto\"}", "\"auto\""},
                   {"{\"type\":\"any\"}", "\"required\""},
                   {"{\"type\":\"none\"}", "\"none\""}};
    for (size_t i = 0; i < 3; i++) {
        char want[256];
        snprintf(in, sizeof(in), "%s\"tool_choice\":%s}", head, choices[i].choice);
        snprintf(want, sizeof(want),
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
                 "\"max_tokens\":9,\"tool_choice\":%s}",
                 choices[i].want);
        req_ok(a, in, want);
    }
    static const struct {
        int budget;
        const char *effort;
    } budgets[] = {{1024, "low"},     {2000, "low"},   {4096, "medium"},
                   {10000, "medium"}, {16384, "high"}, {64000, "high"}};
    for (size_t i = 0; i < 6; i++) {
        char want[256];
        snprintf(in, sizeof(in), "%s\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":%d}}",
                 head, budgets[i].budget);
        snprintf(want, sizeof(want),
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
                 "\"max_tokens\":9,\"reasoning_effort\":\"%s\"}",
                 budgets[i].effort);
        req_ok(a, in, want);
    }
}

static void test_request_refusals(void **state)
{
    struct sb_arena *a = *state;
    req_bad(a, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],\"x\":1}", "", "'x'");
    req_bad(a, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
            "max_tokens", "positive integer");
    req_bad(a, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}", "messages", "non-empty");
    req_bad(a, "{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "model",
            "string");
    req_bad(a,
            "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"system\","
            "\"content\":\"q\"}]}",
            "messages[0].role", "user");
    req_bad(a,
            "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"document\",\"source\":{}}]}]}",
            "messages[0].content[1]", "block type");
    req_bad(a,
            "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\"}]}]"
            "}]}",
            "messages[0].content[0]", "text blocks only");
    req_bad(a,
            "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
            "messages[0].content[0]", "base64");
    req_bad(
        a,
        "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
        "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
        "tools[0]", "server tool");
    req_bad(
        a,
        "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
        "\"tool_choice\":{\"type\":\"sometimes\"}}",
        "tool_choice", "auto");
    req_bad(
        a,
        "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
        "\"thinking\":{\"type\":\"enabled\"}}",
        "thinking", "budget_tokens");
    req_bad(
        a,
        "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
        "\"metadata\":{\"other\":1}}",
        "metadata", "user_id");
    req_bad(a,
            "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"assistant\",\"content\":"
            "[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}]}]}",
            "messages[0].content[0]", "assistant turn");
    struct sb_slice out;
    struct sb_error err;
    assert_int_equal(sb_messages_front_request(a, parse(a, "[1]"), &out, &err), SB_E_BAD_REQUEST);
}

/* ---- (b) whole responses ---- */

static void resp_ok(struct sb_arena *a, const char *in, const char *model, const char *want)
{
    struct sb_slice out;
    struct sb_error err;
    if (sb_messages_front_response(a, sb_slice_cstr(in), model, &out, &err) != SB_OK)
        fail_msg("translation failed: %s", err.msg);
    same(out, want);
}

static void test_response(void **state)
{
    struct sb_arena *a = *state;
    resp_ok(a,
            "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":1,\"model\":"
            "\"claude-up\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
            "\"content\":\"Sure.\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":"
            "\"plan\",\"signature\":\"S1\"},{\"type\":\"redacted_thinking\",\"data\":\"R\"}],"
            "\"reasoning_content\":\"plan\",\"tool_calls\":[{\"id\":\"call_9\",\"type\":"
            "\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"city\\\":"
            "\\\"Oslo\\\"}\"}},{\"id\":\"call_10\",\"type\":\"function\",\"function\":{\"name\":"
            "\"now\",\"arguments\":\"\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":"
            "{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120,"
            "\"prompt_tokens_details\":{\"cached_tokens\":60}}}",
            "my-claude",
            "{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
            "\"my-claude\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"plan\","
            "\"signature\":\"S1\"},{\"type\":\"redacted_thinking\",\"data\":\"R\"},{\"type\":"
            "\"text\",\"text\":\"Sure.\"},{\"type\":\"tool_use\",\"id\":\"call_9\",\"name\":"
            "\"get\",\"input\":{\"city\":\"Oslo\"}},{\"type\":\"tool_use\",\"id\":\"call_10\","
            "\"name\":\"now\",\"input\":{}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
            "\"usage\":{\"input_tokens\":40,\"output_tokens\":20,\"cache_creation_input_tokens\":"
            "null,\"cache_read_input_tokens\":60}}");
    /* DeepSeek-style reasoning becomes an unsigned thinking block; stop reasons map. */
    resp_ok(a,
            "{\"id\":\"x1\",\"model\":\"deepseek-reasoner\",\"choices\":[{\"message\":{\"role\":"
            "\"assistant\",\"content\":\"4\",\"reasoning_content\":\"2+2\"},\"finish_reason\":"
            "\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}",
            NULL,
            "{\"id\":\"msg_x1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
            "\"deepseek-reasoner\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"2+2\","
            "\"signature\":\"\"},{\"type\":\"text\",\"text\":\"4\"}],\"stop_reason\":"
            "\"max_tokens\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,"
            "\"output_tokens\":5,\"cache_creation_input_tokens\":null,"
            "\"cache_read_input_tokens\":null}}");
    resp_ok(a,
            "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
            "\"No.\"},\"finish_reason\":\"content_filter\"}]}",
            "m",
            "{\"id\":\"msg_switchboard\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
            "\"m\",\"content\":[{\"type\":\"text\",\"text\":\"No.\"}],\"stop_reason\":\"refusal\","
            "\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0,"
            "\"cache_creation_input_tokens\":null,\"cache_read_input_tokens\":null}}");
}

static void test_response_errors(void **state)
{
    struct sb_arena *a = *state;
    struct sb_slice out;
    struct sb_error err;
    assert_int_equal(sb_messages_front_response(a, SB_SLICE("nope"), NULL, &out, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(sb_messages_front_response(a, SB_SLICE("{\"choices\":[]}"), NULL, &out, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(
        sb_messages_front_response(a,
                                   SB_SLICE("{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":"
                                            "\"c\",\"function\":{\"name\":\"f\",\"arguments\":"
                                            "\"{broken\"}}]}}]}"),
                                   NULL, &out, &err),
        SB_E_UPSTREAM);
    assert_non_null(strstr(err.msg, "'f'"));
}

/* ---- (c) streams ---- */

#define CH(delta, fr)                                                                              \
    "{\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"        \
    "\"up\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fr "}]}"

/* Feeds chunks, then finish; returns the events with each data line checked as JSON. */
static sb_err run(struct sb_arena *a, const char *const *chunks, size_t n, struct sb_buf *out)
{
    struct sb_messages_front_stream *st = sb_messages_front_stream_open(a, "my-model");
    struct sb_error err;
    sb_buf_init(out, 0);
    sb_buf_append_char(out, 'x');
    sb_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        sb_err rc = sb_messages_front_stream_feed(st, sb_slice_cstr(chunks[i]), out, &err);
        if (rc != SB_OK)
            return rc;
    }
    sb_err rc = sb_messages_front_stream_finish(st, out, &err);
    for (char *d = strstr(out->p, "data: "); d; d = strstr(d + 1, "data: ")) {
        json_error_t jerr;
        char *end = strstr(d, "\n\n");
        assert_non_null(end);
        json_t *j = json_loadb(d + 6, (size_t)(end - d - 6), 0, &jerr);
        if (!j)
            fail_msg("event data is not JSON: %.*s", (int)(end - d - 6), d + 6);
        json_decref(j);
    }
    return rc;
}

#define START                                                                                      \
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_s1\","      \
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"my-model\",\"content\":[],"           \
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"                   \
    "\"output_tokens\":0}}}\n\n"                                                                   \
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"

static void test_stream_text(void **state)
{
    static const char *const chunks[] = {
        CH("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
        CH("{\"content\":\"Hel\"}", "null"),
        CH("{\"content\":\"lo\"}", "null"),
        CH("{}", "\"stop\""),
        "{\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"up\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,"
        "\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":8}}}",
    };
    struct sb_buf out;
    assert_int_equal(run(*state, chunks, 5, &out), SB_OK);
    assert_string_equal(
        out.p, START
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2,\"input_tokens\":3,"
        "\"cache_read_input_tokens\":8}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    sb_buf_free(&out);
}

static void test_stream_thinking_and_parallel_tools(void **state)
{
    static const char *const chunks[] = {
        CH("{\"role\":\"assistant\",\"reasoning_content\":\"Think\"}", "null"),
        CH("{\"reasoning_content\":\"ing\"}", "null"),
        CH("{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"Thinking\","
           "\"signature\":\"SIG\"}]}",
           "null"),
        CH("{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":"
           "{\"name\":\"f\",\"arguments\":\"\"}}]}",
           "null"),
        CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"x\\\":\"}}]}", "null"),
        CH("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":"
           "{\"name\":\"g\",\"arguments\":\"{}\"}}]}",
           "null"),
        CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}", "null"),
        CH("{}", "\"tool_calls\""),
    };
    struct sb_buf out;
    assert_int_equal(run(*state, chunks, 8, &out), SB_OK);
    assert_string_equal(
        out.p,
        START "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
              "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Think\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"ing\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"SIG\"}}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
              "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_a\",\"name\":\"f\","
              "\"input\":{}}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
              "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":\"}}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
              "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_b\",\"name\":\"g\","
              "\"input\":{}}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
              "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
              "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
              "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    sb_buf_free(&out);
}

static void test_stream_whole_blocks_and_text_after(void **state)
{
    static const char *const chunks[] = {
        CH("{\"role\":\"assistant\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":"
           "\"T\",\"signature\":\"S\"},{\"type\":\"redacted_thinking\",\"data\":\"D\"}]}",
           "null"),
        CH("{\"content\":\"ok\"}", "\"length\""),
    };
    struct sb_buf out;
    assert_int_equal(run(*state, chunks, 2, &out), SB_OK);
    assert_string_equal(
        out.p,
        START "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
              "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"T\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
              "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"S\"}}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
              "\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"D\"}}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
              "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
              "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
              "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
              "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n"
              "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
              "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
              "\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}\n\n"
              "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    sb_buf_free(&out);
}

static void test_stream_failures(void **state)
{
    struct sb_arena *a = *state;
    struct sb_buf out;
    static const char *const truncated[] = {CH("{\"content\":\"par\"}", "null")};
    assert_int_equal(run(a, truncated, 1, &out), SB_E_UPSTREAM);
    assert_null(strstr(out.p, "message_stop"));
    sb_buf_free(&out);
    static const char *const errored[] = {CH("{\"content\":\"a\"}", "null"),
                                          "{\"error\":{\"message\":\"overloaded\"}}"};
    assert_int_equal(run(a, errored, 2, &out), SB_E_UPSTREAM);
    sb_buf_free(&out);
    static const char *const garbage[] = {"{not json"};
    assert_int_equal(run(a, garbage, 1, &out), SB_E_UPSTREAM);
    assert_string_equal(out.p, "");
    sb_buf_free(&out);
    /* A fragment for a tool block already closed by text cannot be expressed. */
    static const char *const late[] = {
        CH("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}", "null"),
        CH("{\"content\":\"t\"}", "null"),
        CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}", "null")};
    assert_int_equal(run(a, late, 3, &out), SB_E_UPSTREAM);
    sb_buf_free(&out);
}

/* ---- (d) errors ---- */

static void test_errors(void **state)
{
    (void)state;
    struct sb_buf b;
    static const struct {
        int status;
        const char *type;
    } map[] = {{400, "invalid_request_error"},
               {401, "authentication_error"},
               {403, "permission_error"},
               {404, "not_found_error"},
               {413, "request_too_large"},
               {422, "invalid_request_error"},
               {429, "rate_limit_error"},
               {500, "api_error"},
               {502, "api_error"},
               {503, "overloaded_error"},
               {529, "overloaded_error"},
               {504, "timeout_error"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        assert_string_equal(sb_messages_front_error_type(map[i].status), map[i].type);
    sb_buf_init(&b, 0);
    sb_messages_front_error_from_openai(
        &b, 400,
        SB_SLICE("{\"error\":{\"message\":\"too \\\"long\\\"\",\"type\":"
                 "\"invalid_request_error\",\"code\":\"context_length_exceeded\"}}"),
        "req_1");
    assert_string_equal(b.p, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                             "\"message\":\"too \\\"long\\\"\"},\"request_id\":\"req_1\"}");
    sb_buf_reset(&b);
    sb_messages_front_error_from_openai(&b, 502, SB_SLICE("<html>bad gateway</html>"), NULL);
    assert_string_equal(b.p, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                             "\"message\":\"<html>bad gateway</html>\"},\"request_id\":null}");
    sb_buf_reset(&b);
    sb_messages_front_error_event(&b, 529, SB_SLICE("Overloaded"));
    assert_string_equal(b.p, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                             "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    sb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_unsigned_reasoning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_empty_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_tools_and_thinking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_thinking_and_parallel_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_whole_blocks_and_text_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
