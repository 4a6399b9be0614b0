/* SPDX-License-Identifier: MIT */
/*
 * anthropic_test.c - the anthropic adapter on strings only.
 *
 * Request translation is checked against the exact upstream body (system,
 * content parts and images, tools and tool_choice, tool round trips,
 * thinking with its adjustments and thinking_blocks sent back, stop,
 * response_format, refusals); whole responses against the exact OpenAI
 * body; streams fed whole, byte by byte and in random pieces must give the
 * same events, and their text must equal the whole response's; errors in
 * a stream and from map_error keep their meaning and never echo the key.
 * JSON in this file is written with ' for " to stay readable (see fx_q()).
 */
#include "provider/adapter_testlib.h"

#define KEY "sk-ant-test-secret-1234"

static int setup(void **state)
{
    struct fx *f = fx_open((struct sb_provider){.id = "claude",
                                                .type = "anthropic",
                                                .base_url = "https://api.anthropic.com",
                                                .auth = SB_AUTH_API_KEY},
                           KEY,
                           (struct sb_model){.id = "sonnet",
                                             .upstream_model = "claude-sonnet-4-20250514",
                                             .max_output_tokens = 8192});
    f->squote = true;
    *state = f;
    return 0;
}

/* Builds the request for body; it must fail with a 400 naming field and saying `says`. */
static void expect_refusal(struct fx *f, const char *body, const char *field, const char *says)
{
    struct sb_error err = fx_expect_refused(f, body, SB_OP_CHAT, SB_E_BAD_REQUEST, says);
    assert_int_equal(sb_err_status(&err), 400);
    if (field)
        assert_string_equal(err.field, field);
}

/* ==================================================================
 * Request
 * ================================================================== */

static void test_request_basic(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r =
        fx_expect_body(f,
                       "{'model':'sonnet','messages':[{'role':'system','content':'Be brief.'},"
                       "{'role':'user','content':'Hi'}]}",
                       SB_OP_CHAT,
                       "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'system':'Be brief.',"
                       "'messages':[{'role':'user','content':'Hi'}]}");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "https://api.anthropic.com/v1/messages");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "x-api-key"), KEY));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "anthropic-version"), "2023-06-01"));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "content-type"), "application/json"));
    assert_int_equal(fx_header(&r, "authorization").len, 0);
    assert_null(r.adjusted);
}

static void test_request_max_tokens(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f, "{'model':'m','max_tokens':100,'messages':[{'role':'user','content':'x'}]}",
                   SB_OP_CHAT,
                   "{'model':'claude-sonnet-4-20250514','max_tokens':100,"
                   "'messages':[{'role':'user','content':'x'}]}");
    /* max_completion_tokens wins over the deprecated max_tokens. */
    fx_expect_body(f,
                   "{'max_tokens':100,'max_completion_tokens':300,"
                   "'messages':[{'role':'user','content':'x'}]}",
                   SB_OP_CHAT,
                   "{'model':'claude-sonnet-4-20250514','max_tokens':300,"
                   "'messages':[{'role':'user','content':'x'}]}");
    /* No registry limit: the default. */
    f->m.max_output_tokens = 0;
    fx_expect_body(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT,
                   "{'model':'claude-sonnet-4-20250514','max_tokens':4096,"
                   "'messages':[{'role':'user','content':'x'}],'stream':true}");
    expect_refusal(f, "{'max_tokens':0,'messages':[{'role':'user','content':'x'}]}", "max_tokens",
                   "positive integer");
    expect_refusal(f, "{'max_tokens':'9','messages':[{'role':'user','content':'x'}]}", "max_tokens",
                   "positive integer");
}

static void test_request_system_parts(void **state)
{
    struct fx *f = *state;
    /* Several system/developer messages, in order, as text blocks; parts become blocks. */
    fx_expect_body(
        f,
        "{'messages':[{'role':'system','content':'A'},"
        "{'role':'user','content':[{'type':'text','text':'q1'},{'type':'text','text':'q2'}]},"
        "{'role':'developer','content':[{'type':'text','text':'B'}]}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,"
        "'system':[{'type':'text','text':'A'},{'type':'text','text':'B'}],"
        "'messages':[{'role':'user','content':[{'type':'text','text':'q1'},"
        "{'type':'text','text':'q2'}]}]}");
    expect_refusal(f,
                   "{'messages':[{'role':'system','content':[{'type':'image_url',"
                   "'image_url':{'url':'https://x/y.png'}}]},{'role':'user','content':'x'}]}",
                   "messages[0].content[0]", "must be a text part");
}

static void test_request_images(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':[{'type':'text','text':'What?'},"
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo='}},"
        "{'type':'image_url','image_url':{'url':'https://e.com/cat.jpg','detail':'low'}}"
        "]}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':[{'type':'text','text':'What?'},"
        "{'type':'image','source':{'type':'base64','media_type':'image/png',"
        "'data':'iVBORw0KGgo='}},"
        "{'type':'image','source':{'type':'url','url':'https://e.com/cat.jpg'}}]}]}");
    expect_refusal(f,
                   "{'messages':[{'role':'user','content':[{'type':'image_url',"
                   "'image_url':{'url':'data:image/bmp;base64,Qk0='}}]}]}",
                   "messages[0].content[0]", "jpeg, png, gif, webp");
    expect_refusal(f,
                   "{'messages':[{'role':'user','content':[{'type':'image_url',"
                   "'image_url':{'url':'ftp://x'}}]}]}",
                   "messages[0].content[0]", "data URL");
    expect_refusal(f,
                   "{'messages':[{'role':'user','content':[{'type':'input_audio',"
                   "'input_audio':{}}]}]}",
                   "messages[0].content[0]", "text or image_url");
}

static void test_request_tools(void **state)
{
    struct fx *f = *state;
    const char *tools = "'tools':[{'type':'function','function':{'name':'get_weather',"
                        "'description':'Weather now','parameters':{'type':'object',"
                        "'properties':{'city':{'type':'string'}},'required':['city']}}},"
                        "{'type':'function','function':{'name':'noargs'}}]";
    const char *want_tools = "'tools':[{'name':'get_weather','description':'Weather now',"
                             "'input_schema':{'type':'object','properties':{'city':{'type':"
                             "'string'}},'required':['city']}},{'name':'noargs',"
                             "'input_schema':{'type':'object','properties':{}}}]";
    static const struct {
        const char *choice, *want;
    } cases[] = {
        {"", ""},
        {",'tool_choice':'auto'", ",'tool_choice':{'type':'auto'}"},
        {",'tool_choice':'none'", ",'tool_choice':{'type':'none'}"},
        {",'tool_choice':'required'", ",'tool_choice':{'type':'any'}"},
        {",'tool_choice':{'type':'function','function':{'name':'noargs'}}",
         ",'tool_choice':{'type':'tool','name':'noargs'}"},
        {",'parallel_tool_calls':false",
         ",'tool_choice':{'type':'auto','disable_parallel_tool_use':true}"},
        {",'parallel_tool_calls':false,'tool_choice':'required'",
         ",'tool_choice':{'type':'any','disable_parallel_tool_use':true}"},
        {",'parallel_tool_calls':true", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024], want[1024];
        snprintf(body, sizeof(body), "{'messages':[{'role':'user','content':'x'}],%s%s}", tools,
                 cases[i].choice);
        snprintf(want, sizeof(want),
                 "{'model':'claude-sonnet-4-20250514','max_tokens':8192,"
                 "'messages':[{'role':'user','content':'x'}],%s%s}",
                 want_tools, cases[i].want);
        fx_expect_body(f, body, SB_OP_CHAT, want);
    }
    expect_refusal(f, "{'messages':[{'role':'user','content':'x'}],'tools':[{'type':'code'}]}",
                   "tools[0]", "type: function");
    expect_refusal(f, "{'messages':[{'role':'user','content':'x'}],'tool_choice':'sometimes'}",
                   "tool_choice", "auto, none, required");
}

static void test_request_tool_round_trip(void **state)
{
    struct fx *f = *state;
    /* Parallel calls, then two tool results merged into one user turn, then the user again. */
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'Weather in Paris and Rome?'},"
        "{'role':'assistant','content':null,'tool_calls':["
        "{'id':'toolu_1','type':'function','function':{'name':'w','arguments':'{\\'city\\': "
        "\\'Paris\\'}'}},"
        "{'id':'toolu_2','type':'function','function':{'name':'w','arguments':''}}]},"
        "{'role':'tool','tool_call_id':'toolu_1','content':'18C'},"
        "{'role':'tool','tool_call_id':'toolu_2','content':[{'type':'text','text':'21C'}]},"
        "{'role':'user','content':'Thanks'}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':["
        "{'role':'user','content':'Weather in Paris and Rome?'},"
        "{'role':'assistant','content':[{'type':'tool_use','id':'toolu_1','name':'w',"
        "'input':{'city': 'Paris'}},{'type':'tool_use','id':'toolu_2','name':'w',"
        "'input':{}}]},"
        "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':'18C'},"
        "{'type':'tool_result','tool_use_id':'toolu_2','content':[{'type':'text','text':'21C'}]}]},"
        "{'role':'user','content':'Thanks'}]}");
    /* Text and a call in one assistant turn. */
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'hi'},{'role':'assistant','content':"
        "'Let me check.','tool_calls':[{'id':'t','type':'function','function':{'name':"
        "'n','arguments':'{}'}}]}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':["
        "{'role':'user','content':'hi'},{'role':'assistant','content':[{'type':'text',"
        "'text':'Let me check.'},{'type':'tool_use','id':'t','name':'n','input':{}}]}]}");
    expect_refusal(f,
                   "{'messages':[{'role':'assistant','tool_calls':[{'id':'t','type':'function',"
                   "'function':{'name':'n','arguments':'{oops'}}]}]}",
                   "messages[0].tool_calls[0]", "not a JSON object");
    expect_refusal(f, "{'messages':[{'role':'tool','content':'x'}]}", "messages[0].tool_call_id",
                   "required");
    expect_refusal(f, "{'messages':[{'role':'function','content':'x'}]}", "messages[0].role",
                   "must be system");
}

static void test_request_thinking(void **state)
{
    struct fx *f = *state;
    /* Budget 16384 does not fit in max_tokens 1000: raised to budget + 1000; temperature,
     * top_p and a forced tool_choice changed as thinking requires, and all of it reported. */
    struct sb_upstream_req r = fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'high','max_tokens':1000,"
        "'temperature':0.2,'top_p':0.5,'tools':[{'type':'function','function':{'name':'n'}}],"
        "'tool_choice':'required'}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':17384,'messages':[{'role':'user',"
        "'content':'x'}],'tools':[{'name':'n','input_schema':{'type':'object','properties':{}}}],"
        "'tool_choice':{'type':'auto'},'temperature':1,'top_p':0.95,"
        "'thinking':{'type':'enabled','budget_tokens':16384}}");
    assert_string_equal(r.adjusted, "max_tokens=17384,tool_choice=auto,temperature=1,top_p=0.95");
    /* Fits already: nothing adjusted. */
    r = fx_expect_body(f,
                       "{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'low',"
                       "'temperature':1,'top_p':0.99}",
                       SB_OP_CHAT,
                       "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':"
                       "'user','content':'x'}],'temperature':1,'top_p':0.99,"
                       "'thinking':{'type':'enabled','budget_tokens':1024}}");
    assert_null(r.adjusted);
    r = fx_expect_body(
        f, "{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'medium'}", SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':"
        "'user','content':'x'}],'thinking':{'type':'enabled','budget_tokens':4096}}");
    /* Without thinking sampling passes through exactly. */
    fx_expect_body(f,
                   "{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'none',"
                   "'temperature':0.70,'top_p':1e-1}",
                   SB_OP_CHAT,
                   "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':"
                   "'user','content':'x'}],'temperature':0.70,'top_p':1e-1}");
    expect_refusal(f, "{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'max'}",
                   "reasoning_effort", "none, low, medium, high");
}

static void test_request_thinking_blocks_back(void **state)
{
    struct fx *f = *state;
    /* Signed and redacted blocks go first, untouched; an unsigned block and reasoning_content
     * alone never become blocks. */
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'},{'role':'assistant','content':'Sure.',"
        "'reasoning_content':'I think','thinking_blocks':["
        "{'type':'thinking','thinking':'I think \\u00e9\\n','signature':'EqQBCkYIARgCKkB+/=='},"
        "{'type':'thinking','thinking':'unsigned','signature':''},"
        "{'type':'redacted_thinking','data':'EmwKAhgBEgy3va'}],"
        "'tool_calls':[{'id':'t1','type':'function','function':{'name':'n','arguments':'{}'}}]},"
        "{'role':'tool','tool_call_id':'t1','content':'ok'}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':'x'},{'role':'assistant','content':[{'type':'thinking','thinking':"
        "'I think \xc3\xa9\\n','signature':'EqQBCkYIARgCKkB+/=='},{'type':'redacted_thinking',"
        "'data':'EmwKAhgBEgy3va'},{'type':'text','text':'Sure.'},{'type':'tool_use','id':'t1',"
        "'name':'n','input':{}}]},{'role':'user','content':[{'type':'tool_result',"
        "'tool_use_id':'t1','content':'ok'}]}]}");
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'},{'role':'assistant','content':'y',"
        "'reasoning_content':'hmm'}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':'x'},{'role':'assistant','content':'y'}]}");
    expect_refusal(f,
                   "{'messages':[{'role':'assistant','content':'y','thinking_blocks':[{'type':"
                   "'summary'}]}]}",
                   "messages[0].thinking_blocks[0]", "redacted_thinking");
    /* A fallback from another provider: its signed blocks are left out, not forwarded. */
    f->foreign = true;
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'},{'role':'assistant','content':'Sure.',"
        "'thinking_blocks':[{'type':'thinking','thinking':'t','signature':'EqQB'}]}]}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':'x'},{'role':'assistant','content':'Sure.'}]}");
    f->foreign = false;
}

static void test_request_stop_format_user(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'}],'stop':'END','user':'u-42',"
        "'response_format':{'type':'text'}}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':'x'}],'stop_sequences':['END'],'metadata':{'user_id':'u-42'}}");
    fx_expect_body(
        f,
        "{'messages':[{'role':'user','content':'x'}],'stop':['a','b'],"
        "'response_format':{'type':'json_schema','json_schema':{'name':'r','schema':"
        "{'type':'object'}}}}",
        SB_OP_CHAT,
        "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':'user',"
        "'content':'x'}],'stop_sequences':['a','b'],'output_config':{'format':{'type':"
        "'json_schema','schema':{'type':'object'}}}}");
    expect_refusal(f,
                   "{'messages':[{'role':'user','content':'x'}],'response_format':{'type':"
                   "'json_object'}}",
                   "response_format", "schema-less");
    expect_refusal(f, "{'messages':[{'role':'user','content':'x'}],'stop':[1]}", "stop",
                   "array of strings");
}

static void test_request_refusals(void **state)
{
    struct fx *f = *state;
    const char *msgs = "'messages':[{'role':'user','content':'x'}]";
    static const struct {
        const char *member, *field;
    } cases[] = {
        {"'n':2", "n"},
        {"'logprobs':true", "logprobs"},
        {"'top_logprobs':3", "top_logprobs"},
        {"'presence_penalty':0.5", "presence_penalty"},
        {"'frequency_penalty':-1", "frequency_penalty"},
        {"'logit_bias':{'50256':-100}", "logit_bias"},
        {"'seed':7", "seed"},
        {"'functions':[]", "functions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{%s,%s}", msgs, cases[i].member);
        expect_refusal(f, body, cases[i].field, "no Anthropic equivalent");
    }
    /* Defaults are fine, and null is absence. */
    fx_expect_body(f,
                   "{'messages':[{'role':'user','content':'x'}],'n':1,'logprobs':false,"
                   "'presence_penalty':0,'frequency_penalty':0.0,'logit_bias':{},'seed':null,"
                   "'stream_options':{'include_usage':true},'store':false}",
                   SB_OP_CHAT,
                   "{'model':'claude-sonnet-4-20250514','max_tokens':8192,'messages':[{'role':"
                   "'user','content':'x'}]}");
    expect_refusal(f, "{'messages':[{'role':'user','content':'x'}],'frobnicate':1}", "",
                   "'frobnicate' is not supported");
    expect_refusal(f, "{'messages':[]}", "messages", "non-empty array");
    /* No embeddings at Anthropic. */
    struct sb_upstream_req r;
    struct sb_error err;
    fx_call(f, "{'input':'x'}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "no embeddings"));
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

/* parse_response of up; the OpenAI body must equal want apart from "created". */
static struct sb_result expect_response(struct fx *f, const char *up, const char *want)
{
    struct sb_result res;
    json_error_t jerr;
    fx_call(f, "{'messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    json_t *got = fx_parse(f, up, &res);
    json_t *exp = json_loads(fx_q(f, want), 0, &jerr);
    assert_non_null(got);
    assert_non_null(exp);
    assert_true(json_is_integer(json_object_get(got, "created")));
    json_object_del(got, "created");
    if (!json_equal(got, exp))
        fail_msg("response\n got: %.*s\nwant: %s", (int)res.body.len, res.body.p, fx_q(f, want));
    json_decref(got);
    json_decref(exp);
    return res;
}

static void test_response_text(void **state)
{
    struct fx *f = *state;
    struct sb_result r = expect_response(
        f,
        "{'id':'msg_01','type':'message','role':'assistant','model':'claude-sonnet-4-20250514',"
        "'content':[{'type':'text','text':'Hello'},{'type':'text','text':' world'}],"
        "'stop_reason':'end_turn','stop_sequence':null,'usage':{'input_tokens':10,"
        "'cache_creation_input_tokens':5,'cache_read_input_tokens':100,'output_tokens':7}}",
        "{'id':'chatcmpl-msg_01','object':'chat.completion','model':'claude-sonnet-4-20250514',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Hello world'},"
        "'finish_reason':'stop'}],'usage':{'prompt_tokens':115,'completion_tokens':7,"
        "'total_tokens':122,'prompt_tokens_details':{'cached_tokens':100,'cache_creation_tokens':5}"
        "}}");
    assert_int_equal(r.usage.prompt_tokens, 115);
    assert_int_equal(r.usage.completion_tokens, 7);
    assert_true(sb_slice_eq_cstr(r.finish_reason, "stop"));
    static const struct {
        const char *stop, *finish;
    } reasons[] = {{"max_tokens", "length"},
                   {"stop_sequence", "stop"},
                   {"refusal", "content_filter"},
                   {"tool_use", "tool_calls"}};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char up[256], want[512];
        snprintf(up, sizeof(up),
                 "{'id':'m','type':'message','model':'c','content':[{'type':'text','text':'a'}],"
                 "'stop_reason':'%s','usage':{'input_tokens':1,'output_tokens':2}}",
                 reasons[i].stop);
        snprintf(want, sizeof(want),
                 "{'id':'chatcmpl-m','object':'chat.completion','model':'c','choices':[{'index':"
                 "0,'message':{'role':'assistant','content':'a'},'finish_reason':'%s'}],'usage':"
                 "{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3,"
                 "'prompt_tokens_details':{'cached_tokens':0}}}",
                 reasons[i].finish);
        expect_response(f, up, want);
    }
}

static void test_response_thinking_tools(void **state)
{
    struct fx *f = *state;
    expect_response(
        f,
        "{'id':'msg_02','type':'message','role':'assistant','model':'claude-sonnet-4-20250514',"
        "'content':[{'type':'thinking','thinking':'Need weather.','signature':'sig/A+='},"
        "{'type':'redacted_thinking','data':'REDACTED=='},"
        "{'type':'tool_use','id':'toolu_9','name':'w','input':{'city': 'Paris', 'n':[1,2]}},"
        "{'type':'tool_use','id':'toolu_10','name':'x','input':{}}],"
        "'stop_reason':'tool_use','usage':{'input_tokens':20,'output_tokens':50,"
        "'output_tokens_details':{'thinking_tokens':30}}}",
        "{'id':'chatcmpl-msg_02','object':'chat.completion','model':'claude-sonnet-4-20250514',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
        "'reasoning_content':'Need weather.','thinking_blocks':[{'type':'thinking','thinking':"
        "'Need weather.','signature':'sig/A+='},{'type':'redacted_thinking','data':"
        "'REDACTED=='}],'tool_calls':[{'id':'toolu_9','type':'function','function':{'name':"
        "'w','arguments':'{\\'city\\': \\'Paris\\', \\'n\\':[1,2]}'}},{'id':'toolu_10','type':"
        "'function','function':{'name':'x','arguments':'{}'}}]},'finish_reason':'tool_calls'}],"
        "'usage':{'prompt_tokens':20,'completion_tokens':50,'total_tokens':70,"
        "'prompt_tokens_details':{'cached_tokens':0},'completion_tokens_details':"
        "{'reasoning_tokens':30}}}");
}

static void test_response_bad(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err;
    fx_call(f, "{'messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("not json"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"type\":\"message\"}"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(
        f->ops->parse_response(
            &f->c,
            SB_SLICE("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                     "\"Overloaded\"}}"),
            &res, &err),
        SB_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "Overloaded"));
}

/* ==================================================================
 * Streams
 * ================================================================== */

/* What a feed produced: every event as one line, "created" normalised. */
struct rec {
    struct sb_buf log;
    struct sb_buf text; /* content deltas joined */
    int errors, dones;
    int stop_after; /* return 1 from this event on (0 = never) */
    int n;
};

static int on_event(void *ud, const struct sb_event *ev)
{
    struct rec *r = ud;
    r->n++;
    if (ev->kind == SB_EV_DONE) {
        r->dones++;
        sb_buf_append_cstr(&r->log, "DONE\n");
    } else if (ev->kind == SB_EV_ERROR) {
        r->errors++;
        sb_buf_printf(&r->log, "ERROR %s\n", ev->error.msg);
    } else {
        json_error_t jerr;
        json_t *j = json_loadb(ev->chunk.p, ev->chunk.len, 0, &jerr);
        if (!j)
            fail_msg("chunk is not JSON: %.*s", (int)ev->chunk.len, ev->chunk.p);
        json_object_set_new(j, "created", json_integer(0));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        sb_buf_printf(&r->log, "%s text=%.*s finish=%.*s usage_only=%d", s, (int)ev->text.len,
                      ev->text.p ? ev->text.p : "", (int)ev->finish_reason.len,
                      ev->finish_reason.p ? ev->finish_reason.p : "", ev->usage_only);
        if (ev->has_usage)
            sb_buf_printf(&r->log, " usage=%lld/%lld", (long long)ev->usage.prompt_tokens,
                          (long long)ev->usage.completion_tokens);
        sb_buf_append_char(&r->log, '\n');
        sb_buf_append_slice(&r->text, ev->text);
        free(s);
        json_decref(j);
    }
    return r->stop_after && r->n >= r->stop_after ? 1 : 0;
}

/* Feeds up (mode 0 whole, 1 bytewise, 2 random pieces); returns the first non-OK code. */
static sb_err feed(struct fx *f, const char *up, int mode, struct rec *r, struct sb_error *err)
{
    sb_buf_init(&r->log, 0);
    sb_buf_init(&r->text, 0);
    return fx_feed(f, up, strlen(up), mode == 1, mode == 2 ? 777 : 0, on_event, r, err);
}
static void rec_free(struct rec *r)
{
    sb_buf_free(&r->log);
    sb_buf_free(&r->text);
}

/* A realistic stream: ping, thinking with signature, text in pieces (a UTF-8 character split
 * across deltas' bytes is the feeder's job), and two tool calls with arguments in fragments. */
static const char full_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_S1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],"
    "\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":3,"
    "\"output_tokens\":1}}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\r\n\r\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me \"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"think.\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB+sig==\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"H\xc3\xa9llo \"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"w\\u00f6rld\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"w\",\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,"
    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_B\",\"name\":\"x\",\"input\":{}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,"
    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char full_stream_log[] =
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'role':'assistant','content':''},'finish_reason':"
    "null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'reasoning_content':'Let me '},'finish_reason':"
    "null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'reasoning_content':'think.'},'finish_reason':"
    "null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'thinking_blocks':[{'type':'thinking','thinking':"
    "'Let me think.','signature':'EqQB+sig=='}]},'finish_reason':null}]} text= finish= "
    "usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'content':'H\xc3\xa9llo '},'finish_reason':null}]}"
    " text=H\xc3\xa9llo  finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'content':'w\xc3\xb6rld'},'finish_reason':null}]}"
    " text=w\xc3\xb6rld finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'id':'toolu_A','type':"
    "'function','function':{'name':'w','arguments':''}}]},'finish_reason':null}]} text= finish= "
    "usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':"
    "'{\\'city\\': \\'Pa'}}]},'finish_reason':null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'tool_calls':[{'index':0,'function':{'arguments':"
    "'ris\\'}'}}]},'finish_reason':null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'tool_calls':[{'index':1,'id':'toolu_B','type':"
    "'function','function':{'name':'x','arguments':''}}]},'finish_reason':null}]} text= finish= "
    "usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{'tool_calls':[{'index':1,'function':{'arguments':"
    "'{}'}}]},'finish_reason':null}]} text= finish= usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[{'index':0,'delta':{},'finish_reason':'tool_calls'}]} text= "
    "finish=tool_calls usage_only=0\n"
    "{'id':'chatcmpl-msg_S1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-"
    "4-20250514','choices':[],'usage':{'prompt_tokens':28,'completion_tokens':42,'total_tokens':"
    "70,'prompt_tokens_details':{'cached_tokens':3}}} text= finish= usage_only=1 usage=28/42\n"
    "DONE\n";

static void test_stream_full(void **state)
{
    struct fx *f = *state;
    const char *want = fx_q(f, full_stream_log);
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    for (int mode = 0; mode < 3; mode++) {
        struct rec r = {.n = 0};
        struct sb_error err;
        sb_err rc = feed(f, full_stream, mode, &r, &err);
        if (rc != SB_OK)
            fail_msg("mode %d: %s", mode, err.msg);
        if (strcmp(r.log.p, want) != 0)
            fail_msg("mode %d:\n got: %s\nwant: %s", mode, r.log.p, want);
        rec_free(&r);
    }
}

/* The streamed content equals the whole response's content for the same answer. */
static void test_stream_equals_whole(void **state)
{
    struct fx *f = *state;
    struct rec r = {.n = 0};
    struct sb_error err;
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    assert_int_equal(feed(f, full_stream, 1, &r, &err), SB_OK);
    struct sb_result res;
    const char *whole =
        "{\"id\":\"msg_S1\",\"type\":\"message\",\"model\":\"claude-sonnet-4-20250514\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me think.\",\"signature\":"
        "\"EqQB+sig==\"},{\"type\":\"text\",\"text\":\"H\xc3\xa9llo w\\u00f6rld\"}],"
        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":25,\"output_tokens\":42}}";
    assert_int_equal(f->ops->parse_response(&f->c, sb_slice_cstr(whole), &res, &err), SB_OK);
    json_error_t jerr;
    json_t *j = json_loadb(res.body.p, res.body.len, 0, &jerr);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), r.text.p);
    json_decref(j);
    rec_free(&r);
}

static void test_stream_error_event(void **state)
{
    struct fx *f = *state;
    const char *up = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                     "\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
                     "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                     "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                     "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
                     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                     "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    for (int mode = 0; mode < 3; mode++) {
        struct rec r = {.n = 0};
        struct sb_error err;
        assert_int_equal(feed(f, up, mode, &r, &err), SB_E_UPSTREAM);
        assert_string_equal(err.msg, "upstream claude: Overloaded");
        assert_int_equal(r.errors, 1);
        assert_int_equal(r.dones, 0);
        assert_string_equal(r.text.p, "Hi");
        rec_free(&r);
    }
}

static void test_stream_broken(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *up, *says;
    } cases[] = {
        /* Truncated after a delta: never a hang, an error. */
        {"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
         "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
         "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
         "before the message was complete"},
        /* Cut inside an event. */
        {"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
         "event: content_block_delta\ndata: {\"type\":\"con",
         "inside an event"},
        {"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{}}\n\n",
         "before message_start"},
        {"data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":"
         "\"content_block_delta\",\"index\":5,\"delta\":{}}\n\n",
         "never started"},
        {"data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":"
         "\"content_block_start\",\"index\":1,\"content_block\":{}}\n\n",
         "out of order"},
        {"data: not json\n\n", "not a JSON object"},
        {"", "before the message was complete"},
    };
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rec r = {.n = 0};
        struct sb_error err;
        assert_int_equal(feed(f, cases[i].up, 1, &r, &err), SB_E_UPSTREAM);
        if (!strstr(err.msg, cases[i].says))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].says);
        rec_free(&r);
    }
    /* message_delta came but message_stop did not: complete for the client. */
    struct rec r = {.n = 0};
    struct sb_error err;
    assert_int_equal(feed(f,
                          "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n"
                          "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                          "\"max_tokens\"},\"usage\":{\"output_tokens\":3}}\n\n",
                          0, &r, &err),
                     SB_OK);
    assert_int_equal(r.dones, 1);
    assert_non_null(strstr(r.log.p, "finish=length"));
    rec_free(&r);
}

static void test_stream_callback_stops(void **state)
{
    struct fx *f = *state;
    struct rec r = {.stop_after = 2};
    struct sb_error err;
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    assert_int_equal(feed(f, full_stream, 0, &r, &err), 1);
    assert_int_equal(r.n, 2);
    rec_free(&r);
}

static void test_stream_redacted(void **state)
{
    struct fx *f = *state;
    struct rec r = {.n = 0};
    struct sb_error err;
    fx_call(f, "{'messages':[{'role':'user','content':'x'}],'stream':true}", SB_OP_CHAT);
    assert_int_equal(
        feed(f,
             "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n"
             "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
             "\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}\n\n"
             "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
             "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n"
             "data: {\"type\":\"message_stop\"}\n\n",
             2, &r, &err),
        SB_OK);
    assert_non_null(strstr(r.log.p, "{\"thinking_blocks\":[{\"type\":\"redacted_thinking\","
                                    "\"data\":\"EmwKAhgB\"}]}"));
    assert_non_null(strstr(r.log.p, "finish=stop"));
    rec_free(&r);
}

/* ==================================================================
 * Errors
 * ================================================================== */

static void test_map_error(void **state)
{
    struct fx *f = *state;
    static const struct {
        int status;
        const char *type, *message;
        sb_err code;
        int http;
        const char *api_code;
    } cases[] = {
        {400, "invalid_request_error", "max_tokens: must be positive", SB_E_BAD_REQUEST, 400, ""},
        {400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum",
         SB_E_BAD_REQUEST, 400, "context_length_exceeded"},
        {401, "authentication_error", "invalid x-api-key " KEY, SB_E_UNAUTHORIZED, 401,
         "invalid_api_key"},
        {402, "billing_error", "credit balance too low", SB_E_RATE_LIMITED, 429,
         "insufficient_quota"},
        {403, "permission_error", "no access", SB_E_FORBIDDEN, 403, ""},
        {404, "not_found_error", "model: claude-nope", SB_E_NOT_FOUND, 404, "model_not_found"},
        {413, "request_too_large", "Request exceeds the maximum size", SB_E_TOO_LARGE, 413, ""},
        {429, "rate_limit_error", "slow down", SB_E_RATE_LIMITED, 429, ""},
        {500, "api_error", "Internal server error", SB_E_UPSTREAM, 500, ""},
        {529, "overloaded_error", "Overloaded", SB_E_UNAVAILABLE, 503, ""},
        {504, "timeout_error", "timed out", SB_E_UPSTREAM_TIMEOUT, 504, ""},
    };
    fx_call(f, "{'messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        struct sb_error err;
        snprintf(body, sizeof(body),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"},"
                 "\"request_id\":\"req_1\"}",
                 cases[i].type, cases[i].message);
        f->ops->map_error(&f->c, cases[i].status, sb_slice_cstr(body), &err);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(sb_err_status(&err), cases[i].http);
        assert_string_equal(err.api_code, cases[i].api_code);
        assert_null(strstr(err.msg, KEY));
        assert_non_null(strstr(err.msg, "upstream claude: "));
    }
    /* Not JSON: the status decides, the text is quoted printable. */
    struct sb_error err;
    f->ops->map_error(&f->c, 529, SB_SLICE("<html>\nbusy</html>"), &err);
    assert_int_equal(sb_err_status(&err), 503);
    assert_string_equal(err.msg, "upstream claude: <html> busy</html>");
    f->ops->map_error(&f->c, 418, SB_SLICE(""), &err);
    assert_int_equal(err.code, SB_E_BAD_REQUEST);
    assert_string_equal(err.msg, "upstream claude: HTTP 418");
    f->ops->map_error(&f->c, 502, SB_SLICE("{}"), &err);
    assert_int_equal(err.code, SB_E_UPSTREAM);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_request_basic),
        T(test_request_max_tokens),
        T(test_request_system_parts),
        T(test_request_images),
        T(test_request_tools),
        T(test_request_tool_round_trip),
        T(test_request_thinking),
        T(test_request_thinking_blocks_back),
        T(test_request_stop_format_user),
        T(test_request_refusals),
        T(test_response_text),
        T(test_response_thinking_tools),
        T(test_response_bad),
        T(test_stream_full),
        T(test_stream_equals_whole),
        T(test_stream_error_event),
        T(test_stream_broken),
        T(test_stream_callback_stops),
        T(test_stream_redacted),
        T(test_map_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
