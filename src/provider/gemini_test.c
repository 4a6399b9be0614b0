/* SPDX-License-Identifier: MIT */
/*
 * gemini_test.c - the gemini adapter on strings only: the exact upstream
 * JSON for chat (roles, parts, media, tools, tool results, thought
 * signatures, generationConfig) and embeddings, URL and both auth styles,
 * refused fields, whole responses (text, reasoning, tool calls, finish
 * reasons, usage, embeddings float and base64), streams fed whole, one byte
 * at a time and in pseudo-random pieces (equal to the whole answer), stream
 * errors and early ends, and map_error for every google.rpc status.
 *
 * Expected JSON is written with ' for " to stay readable; fx_q() swaps them.
 */
#include "provider/adapter_testlib.h"

#define KEY "AIzaSyTest-secret-key-123"

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *f =
        fx_open((struct sb_provider){.id = "gemini",
                                     .type = "gemini",
                                     .base_url = "https://generativelanguage.googleapis.com/v1beta",
                                     .auth = SB_AUTH_API_KEY},
                KEY, (struct sb_model){.id = "flash", .upstream_model = "gemini-2.5-flash"});
    f->squote = true;
    *state = f;
    return 0;
}

static json_t *J(struct fx *f, const char *s)
{
    json_error_t e;
    json_t *j = json_loads(fx_q(f, s), 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, s);
    return j;
}

/* Compares; takes ownership of want (borrows got). */
static void expect_json(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("JSON differs\n got: %s\nwant: %s", g, w);
    }
    json_decref(want);
}

/* ==================================================================
 * Requests
 * ================================================================== */

static void test_request_basic(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r =
        fx_expect_body(f,
                       "{'model':'flash','messages':[{'role':'system','content':'Be brief.'},"
                       "{'role':'user','content':'Hi \\u00e9'}]}",
                       SB_OP_CHAT,
                       "{'contents':[{'role':'user','parts':[{'text':'Hi \xc3\xa9'}]}],"
                       "'systemInstruction':{'parts':[{'text':'Be brief.'}]}}");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                               "gemini-2.5-flash:generateContent");
    assert_true(sb_slice_eq_cstr(fx_header(&r, "x-goog-api-key"), KEY));
    assert_true(sb_slice_eq_cstr(fx_header(&r, "content-type"), "application/json"));
    assert_null(fx_header(&r, "authorization").p);
    assert_null(strstr(r.url, KEY));
}

static void test_request_stream_and_query_auth(void **state)
{
    struct fx *f = *state;
    f->p.auth = SB_AUTH_QUERY;
    f->m.upstream_model = "models/gemini-2.0-flash";
    struct sb_upstream_req r = fx_expect_body(
        f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT,
        "{'contents':[{'role':'user','parts':[{'text':'x'}]}]}");
    assert_string_equal(r.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                               "gemini-2.0-flash:streamGenerateContent?alt=sse&key=" KEY);
    assert_null(fx_header(&r, "x-goog-api-key").p);
}

static void test_request_multipart(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{'model':'flash','messages':[{'role':'developer','content':[{'type':'text','text':'A'},"
        "{'type':'text','text':'B'}]},{'role':'user','content':[{'type':'text','text':'see'},"
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0K'}},"
        "{'type':'image_url','image_url':{'url':'https://x.test/cat.jpg','detail':'low'}},"
        "{'type':'input_audio','input_audio':{'data':'UklGR','format':'wav'}},"
        "{'type':'file','file':{'file_data':'data:application/pdf;base64,JVBER',"
        "'filename':'a.pdf'}}]}]}",
        SB_OP_CHAT,
        "{'contents':[{'role':'user','parts':[{'text':'see'},"
        "{'inlineData':{'mimeType':'image/png','data':'iVBORw0K'}},"
        "{'fileData':{'fileUri':'https://x.test/cat.jpg'}},"
        "{'inlineData':{'mimeType':'audio/wav','data':'UklGR'}},"
        "{'inlineData':{'mimeType':'application/pdf','data':'JVBER'}}]}],"
        "'systemInstruction':{'parts':[{'text':'AB'}]}}");
}

/*
 * The round trip: the assistant's parallel calls come back as functionCall
 * parts (the signature only where Gemini put it, args compacted from the
 * arguments string), and both tool results become one user content whose
 * functionResponse names come from the calls' ids.
 */
static void test_request_tool_round_trip(void **state)
{
    struct fx *f = *state;
    fx_expect_body(
        f,
        "{'model':'flash','messages':[{'role':'user','content':'Weather in Paris and Rome?'},"
        "{'role':'assistant','content':null,'tool_calls':["
        "{'id':'call_a','type':'function','function':{'name':'get_weather',"
        "'arguments':'{ \\'city\\': \\'Paris\\' }'},"
        "'extra_content':{'google':{'thought_signature':'c2lnLTE='}}},"
        "{'id':'call_b','type':'function','function':{'name':'get_time',"
        "'arguments':'{\\'city\\':\\'Rome\\',\\'n\\':[1,2.5]}'}}]},"
        "{'role':'tool','tool_call_id':'call_a','content':'{\\'temp\\':21}'},"
        "{'role':'tool','tool_call_id':'call_b','content':'noon'},"
        "{'role':'user','content':'thanks'}],"
        "'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather',"
        "'parameters':{'type':'object','properties':{'city':{'type':'string'}},"
        "'required':['city'],'additionalProperties':false}}},"
        "{'type':'function','function':{'name':'get_time'}}],"
        "'tool_choice':{'type':'function','function':{'name':'get_weather'}}}",
        SB_OP_CHAT,
        "{'contents':[{'role':'user','parts':[{'text':'Weather in Paris and Rome?'}]},"
        "{'role':'model','parts':[{'functionCall':{'name':'get_weather','args':{'city':'Paris'}},"
        "'thoughtSignature':'c2lnLTE='},"
        "{'functionCall':{'name':'get_time','args':{'city':'Rome','n':[1,2.5]}}}]},"
        "{'role':'user','parts':[{'functionResponse':{'name':'get_weather','response':{'temp':21}}}"
        ","
        "{'functionResponse':{'name':'get_time','response':{'output':'noon'}}}]},"
        "{'role':'user','parts':[{'text':'thanks'}]}],"
        "'tools':[{'functionDeclarations':[{'name':'get_weather','description':'Weather',"
        "'parametersJsonSchema':{'type':'object','properties':{'city':{'type':'string'}},"
        "'required':['city'],'additionalProperties':false}},{'name':'get_time'}]}],"
        "'toolConfig':{'functionCallingConfig':{'mode':'ANY',"
        "'allowedFunctionNames':['get_weather']}}}");
}

static void test_request_text_signature_and_reasoning(void **state)
{
    struct fx *f = *state;
    /* reasoning_content is not sent back; the text's signature rides on its part. */
    fx_expect_body(f,
                   "{'model':'flash','messages':[{'role':'user','content':'q'},"
                   "{'role':'assistant','content':'a','reasoning_content':'thinking...',"
                   "'extra_content':{'google':{'thought_signature':'U0lH'}}},"
                   "{'role':'assistant','content':''},{'role':'user','content':'q2'}],"
                   "'tool_choice':'none'}",
                   SB_OP_CHAT,
                   "{'contents':[{'role':'user','parts':[{'text':'q'}]},"
                   "{'role':'model','parts':[{'text':'a','thoughtSignature':'U0lH'}]},"
                   "{'role':'user','parts':[{'text':'q2'}]}],"
                   "'toolConfig':{'functionCallingConfig':{'mode':'NONE'}}}");
}

static void test_request_generation_config(void **state)
{
    struct fx *f = *state;
    fx_expect_body(f,
                   "{'model':'flash','messages':[{'role':'user','content':'x'}],'temperature':0.2,"
                   "'top_p':1,'max_tokens':50,'max_completion_tokens':100,'stop':['END','##'],"
                   "'seed':7,'presence_penalty':0.5,'frequency_penalty':-0.5,'n':1,"
                   "'response_format':{'type':'json_schema','json_schema':{'name':'r',"
                   "'schema':{'type':'object','properties':{'a':{'type':'integer'}}}}},"
                   "'reasoning_effort':'high','tool_choice':'required','user':'u1'}",
                   SB_OP_CHAT,
                   "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
                   "'toolConfig':{'functionCallingConfig':{'mode':'ANY'}},"
                   "'generationConfig':{'temperature':0.2,'topP':1,'presencePenalty':0.5,"
                   "'frequencyPenalty':-0.5,'seed':7,'maxOutputTokens':16484,"
                   "'stopSequences':['END','##'],'responseMimeType':'application/json',"
                   "'responseJsonSchema':{'type':'object','properties':{'a':{'type':'integer'}}},"
                   "'thinkingConfig':{'thinkingBudget':16384,'includeThoughts':true}}}");
    fx_expect_body(f,
                   "{'model':'flash','messages':[{'role':'user','content':'x'}],'max_tokens':9,"
                   "'stop':'Z','response_format':{'type':'json_object'},'reasoning_effort':'low',"
                   "'tool_choice':'auto'}",
                   SB_OP_CHAT,
                   "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
                   "'toolConfig':{'functionCallingConfig':{'mode':'AUTO'}},"
                   "'generationConfig':{'maxOutputTokens':1033,'stopSequences':['Z'],"
                   "'responseMimeType':'application/json',"
                   "'thinkingConfig':{'thinkingBudget':1024,'includeThoughts':true}}}");
    /* Budget plus output is capped at the model's max_output_tokens; no effort, no change. */
    f->m.max_output_tokens = 2000;
    fx_expect_body(f,
                   "{'model':'flash','messages':[{'role':'user','content':'x'}],'max_tokens':100,"
                   "'reasoning_effort':'high'}",
                   SB_OP_CHAT,
                   "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
                   "'generationConfig':{'maxOutputTokens':2000,"
                   "'thinkingConfig':{'thinkingBudget':16384,'includeThoughts':true}}}");
    fx_expect_body(f,
                   "{'model':'flash','messages':[{'role':'user','content':'x'}],'max_tokens':100}",
                   SB_OP_CHAT,
                   "{'contents':[{'role':'user','parts':[{'text':'x'}]}],"
                   "'generationConfig':{'maxOutputTokens':100}}");
}

static void test_request_refused(void **state)
{
    struct fx *f = *state;
    static const char *const cases[][2] = {
        {"{'messages':[{'role':'user','content':'x'}],'n':2}", "'n' must be 1"},
        {"{'messages':[{'role':'user','content':'x'}],'logprobs':true}", "logprobs"},
        {"{'messages':[{'role':'user','content':'x'}],'logit_bias':{'1':2}}", "logit_bias"},
        {"{'messages':[{'role':'user','content':'x'}],'modalities':['text','audio']}",
         "modalities"},
        {"{'messages':[]}", "'messages' must be a non-empty array"},
        {"{'messages':[{'role':'function','content':'x'}]}", "role 'function'"},
        {"{'messages':[{'role':'tool','tool_call_id':'zz','content':'x'}]}",
         "tool_call_id 'zz' matches no earlier"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','type':'function',"
         "'function':{'name':'f','arguments':'[1]'}}]}]}",
         "must be a JSON object (call 'f')"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':"
         "{'url':'ftp://x'}}]}]}",
         "http(s) URL"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':"
         "{'url':'data:image/png,abc'}}]}]}",
         "base64"},
        {"{'messages':[{'role':'user','content':[{'type':'refusal','refusal':'x'}]}]}",
         "'refusal'"},
        {"{'messages':[{'role':'user','content':'x'}],'reasoning_effort':'extreme'}",
         "reasoning_effort"},
        {"{'messages':[{'role':'user','content':'x'}],'tool_choice':'sometimes'}", "tool_choice"},
        {"{'messages':[{'role':'user','content':'x'}],'tools':[{'type':'code_interpreter'}]}",
         "type 'function'"},
        {"{'messages':[{'role':'user','content':'x'}],'max_tokens':0}", "positive integer"},
        {"{'messages':[{'role':'user','content':'x'}],'temperature':'hot'}", "'temperature'"},
        {"{'messages':[{'role':'user','content':'x'}],'response_format':{'type':'json_schema'}}",
         "schema"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        fx_expect_refused(f, cases[i][0], SB_OP_CHAT, SB_E_BAD_REQUEST, cases[i][1]);
}

static void test_request_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_upstream_req r;
    struct sb_error err = {0};
    f->m.upstream_model = "gemini-embedding-001";
    fx_call(f, "{'model':'e','input':['one','two'],'dimensions':8,'encoding_format':'base64'}",
            SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    assert_string_equal(r.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                               "gemini-embedding-001:batchEmbedContents");
    const char *want = fx_q(f, "{'requests':[{'model':'models/gemini-embedding-001','content':"
                               "{'parts':[{'text':'one'}]},'outputDimensionality':8},"
                               "{'model':'models/gemini-embedding-001','content':"
                               "{'parts':[{'text':'two'}]},'outputDimensionality':8}]}");
    assert_int_equal(r.body.len, strlen(want));
    assert_memory_equal(r.body.p, want, r.body.len);
    fx_call(f, "{'model':'e','input':'solo'}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_OK);
    want = fx_q(f, "{'requests':[{'model':'models/gemini-embedding-001','content':"
                   "{'parts':[{'text':'solo'}]}}]}");
    assert_memory_equal(r.body.p, want, r.body.len);
    fx_call(f, "{'model':'e','input':[[1,2,3]]}", SB_OP_EMBEDDINGS);
    assert_int_equal(f->ops->build_request(&f->c, &r, &err), SB_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "token arrays"));
}

/* ==================================================================
 * Whole responses
 * ================================================================== */

/* parse_response on body (single-quoted); returns the client body without "created". */
static json_t *parse(struct fx *f, const char *body, struct sb_result *res)
{
    json_t *j = fx_parse(f, body, res);
    if (f->c.op == SB_OP_CHAT)
        assert_true(json_is_integer(json_object_get(j, "created")));
    json_object_del(j, "created");
    return j;
}

static void test_response_text(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{'model':'flash','messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    json_t *got =
        parse(f,
              "{\n  'candidates': [{'content': {'role': 'model', 'parts': ["
              "{'text': 'Let me think.', 'thought': true},"
              "{'text': 'Hello'}, {'text': ' world', 'thoughtSignature': 'U0lHLTE='}]},"
              "'finishReason': 'STOP', 'index': 0, 'safetyRatings': []}],"
              "'usageMetadata': {'promptTokenCount': 10, 'candidatesTokenCount': 5,"
              "'thoughtsTokenCount': 7, 'cachedContentTokenCount': 4, 'totalTokenCount': 22},"
              "'modelVersion': 'gemini-2.5-flash', 'responseId': 'resp1'\n}",
              &res);
    expect_json(got, J(f, "{'id':'chatcmpl-resp1','object':'chat.completion',"
                          "'model':'gemini-2.5-flash','choices':[{'index':0,'message':"
                          "{'role':'assistant','content':'Hello world','reasoning_content':"
                          "'Let me think.','extra_content':{'google':{'thought_signature':"
                          "'U0lHLTE='}}},'finish_reason':'stop'}],'usage':{'prompt_tokens':10,"
                          "'completion_tokens':12,'total_tokens':22,'prompt_tokens_details':"
                          "{'cached_tokens':4},'completion_tokens_details':"
                          "{'reasoning_tokens':7}}}"));
    assert_int_equal(res.usage.prompt_tokens, 10);
    assert_int_equal(res.usage.completion_tokens, 12);
    assert_true(sb_slice_eq_cstr(res.finish_reason, "stop"));
    json_decref(got);
}

/* Pretty-printed args come out compact; only the first call carries a signature. */
static void test_response_tool_calls(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    fx_call(f, "{'model':'flash','messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    json_t *got = parse(f,
                        "{'candidates':[{'content':{'role':'model','parts':["
                        "{'functionCall':{'name':'get_weather','args':{\n  'city': 'Paris'\n}},"
                        "'thoughtSignature':'Zmlyc3Q='},"
                        "{'functionCall':{'name':'get_time','args':{'tz':'CET','d':[1, 2]}}}]},"
                        "'finishReason':'STOP'}],'responseId':'r2',"
                        "'usageMetadata':{'promptTokenCount':3,'candidatesTokenCount':4}}",
                        &res);
    json_t *calls = json_object_get(
        json_object_get(json_array_get(json_object_get(got, "choices"), 0), "message"),
        "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    const char *id0 = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
    const char *id1 = json_string_value(json_object_get(json_array_get(calls, 1), "id"));
    assert_non_null(id0);
    assert_non_null(id1);
    assert_string_not_equal(id0, id1);
    assert_int_equal(strncmp(id0, "call_", 5), 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "{'id':'chatcmpl-r2','object':'chat.completion','model':'gemini-2.5-flash',"
             "'choices':[{'index':0,'message':{'role':'assistant','content':null,'tool_calls':["
             "{'id':'%s','type':'function','function':{'name':'get_weather',"
             "'arguments':'{\\'city\\':\\'Paris\\'}'},'extra_content':{'google':"
             "{'thought_signature':'Zmlyc3Q='}}},{'id':'%s','type':'function','function':"
             "{'name':'get_time','arguments':'{\\'tz\\':\\'CET\\',\\'d\\':[1,2]}'}}]},"
             "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':3,'completion_tokens':4,"
             "'total_tokens':7}}",
             id0, id1);
    expect_json(got, J(f, want));
    /* The same response parsed again gives the same ids (stable). */
    json_t *again = parse(f,
                          "{'candidates':[{'content':{'role':'model','parts':["
                          "{'functionCall':{'name':'get_weather','args':{'city':'Paris'}}}]},"
                          "'finishReason':'STOP'}],'responseId':'r2'}",
                          &res);
    json_t *c0 = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(again, "choices"), 0), "message"),
            "tool_calls"),
        0);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), id0);
    json_decref(again);
    json_decref(got);
}

static void test_response_finish_reasons(void **state)
{
    struct fx *f = *state;
    static const char *const cases[][2] = {
        {"{'candidates':[{'content':{'parts':[{'text':'a'}]},'finishReason':'MAX_TOKENS'}]}",
         "length"},
        {"{'candidates':[{'content':{'parts':[]},'finishReason':'SAFETY'}]}", "content_filter"},
        {"{'candidates':[{'finishReason':'RECITATION'}]}", "content_filter"},
        {"{'candidates':[{'finishReason':'PROHIBITED_CONTENT'}]}", "content_filter"},
        {"{'candidates':[{'finishReason':'SPII'}]}", "content_filter"},
        {"{'candidates':[{'finishReason':'BLOCKLIST'}]}", "content_filter"},
        {"{'promptFeedback':{'blockReason':'SAFETY'}}", "content_filter"},
        {"{'candidates':[{'content':{'parts':[{'text':'a'}]},'finishReason':'OTHER'}]}", "stop"},
    };
    fx_call(f, "{'model':'flash','messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sb_result res;
        json_t *got = parse(f, cases[i][0], &res);
        json_t *ch = json_array_get(json_object_get(got, "choices"), 0);
        assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), cases[i][1]);
        assert_true(sb_slice_eq_cstr(res.finish_reason, cases[i][1]));
        assert_int_equal(res.usage.prompt_tokens, -1);
        json_decref(got);
    }
}

static void test_response_bad(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    struct sb_error err = {0};
    fx_call(f, "{'model':'flash','messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("<html>"), &res, &err), SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c, SB_SLICE("{\"candidates\":7}"), &res, &err),
                     SB_E_UPSTREAM);
    assert_int_equal(f->ops->parse_response(&f->c,
                                            SB_SLICE("{\"candidates\":[{\"content\":"
                                                     "{\"parts\":{}}}]}"),
                                            &res, &err),
                     SB_E_UPSTREAM);
}

static void test_response_embeddings(void **state)
{
    struct fx *f = *state;
    struct sb_result res;
    f->m.upstream_model = "gemini-embedding-001";
    fx_call(f, "{'model':'e','input':['a','b']}", SB_OP_EMBEDDINGS);
    json_t *got = parse(f, "{'embeddings':[{'values':[0.5,-1]},{'values':[2e-3]}]}", &res);
    expect_json(got, J(f, "{'object':'list','data':[{'object':'embedding','index':0,"
                          "'embedding':[0.5,-1]},{'object':'embedding','index':1,"
                          "'embedding':[0.002]}],'model':'gemini-embedding-001',"
                          "'usage':{'prompt_tokens':0,'total_tokens':0}}"));
    json_decref(got);
    fx_call(f, "{'model':'e','input':'a','encoding_format':'base64'}", SB_OP_EMBEDDINGS);
    got = parse(f, "{'embeddings':[{'values':[1.0,-2]}]}", &res);
    /* float32 little-endian 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0 */
    json_t *e = json_object_get(json_array_get(json_object_get(got, "data"), 0), "embedding");
    assert_string_equal(json_string_value(e), "AACAPwAAAMA=");
    json_decref(got);
    struct sb_error err = {0};
    assert_int_equal(f->ops->parse_response(&f->c,
                                            SB_SLICE("{\"embeddings\":[{\"values\":"
                                                     "[\"x\"]}]}"),
                                            &res, &err),
                     SB_E_UPSTREAM);
}

/* ==================================================================
 * Streams
 * ================================================================== */

struct run {
    json_t *events; /* parsed chunks without "created", and "DONE" */
    struct fx *f;
};

static int on_event(void *ud, const struct sb_event *ev)
{
    struct run *r = ud;
    json_error_t je;
    if (ev->kind == SB_EV_DONE) {
        json_array_append_new(r->events, json_string("DONE"));
        return 0;
    }
    assert_int_equal(ev->kind, SB_EV_CHUNK);
    json_t *j = json_loadb(ev->chunk.p, ev->chunk.len, 0, &je);
    if (!j)
        fail_msg("chunk is not JSON: %.*s", (int)ev->chunk.len, ev->chunk.p);
    assert_true(json_is_integer(json_object_get(j, "created")));
    json_object_del(j, "created");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *content = json_object_get(json_object_get(ch, "delta"), "content");
    const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
    /* The parsed facts agree with the chunk. */
    assert_int_equal(ev->text.len, content ? json_string_length(content) : 0);
    if (ev->text.len)
        assert_memory_equal(ev->text.p, json_string_value(content), ev->text.len);
    assert_true(fr ? sb_slice_eq_cstr(ev->finish_reason, fr) : ev->finish_reason.len == 0);
    assert_int_equal(ev->usage_only, json_array_size(json_object_get(j, "choices")) == 0);
    if (ev->has_usage) {
        json_t *u = json_object_get(j, "usage");
        assert_int_equal(ev->usage.prompt_tokens,
                         json_integer_value(json_object_get(u, "prompt_tokens")));
        assert_int_equal(ev->usage.completion_tokens,
                         json_integer_value(json_object_get(u, "completion_tokens")));
    }
    json_array_append_new(r->events, j);
    return 0;
}

/* Feeds up in pieces (mode 0 whole, 1 bytes, 2 pseudo-random); returns feed/finish result. */
static sb_err feed(struct fx *f, const char *up, int mode, struct run *r, struct sb_error *err)
{
    return fx_feed(f, up, strlen(up), mode == 1, mode == 2 ? 777 : 0, on_event, r, err);
}

/* Runs up (single-quoted) in all three modes; each must give result and events want. */
static void expect_stream(struct fx *f, const char *up, sb_err result, const char *want,
                          const char *err_contains)
{
    up = fx_q(f, up);
    json_t *w = J(f, want);
    for (int mode = 0; mode < 3; mode++) {
        struct run r = {json_array(), f};
        struct sb_error err = {0};
        sb_err rc = feed(f, up, mode, &r, &err);
        if (rc != result)
            fail_msg("mode %d: result %d, want %d (%s)", mode, rc, result, err.msg);
        if (err_contains && !strstr(err.msg, err_contains))
            fail_msg("mode %d: error '%s' lacks '%s'", mode, err.msg, err_contains);
        expect_json(r.events, json_incref(w));
        json_decref(r.events);
    }
    json_decref(w);
}

#define CHUNK(id, delta, fr)                                                                       \
    "{'id':'chatcmpl-" id "','object':'chat.completion.chunk','model':'gemini-2.5-flash',"         \
    "'choices':[{'index':0,'delta':" delta ",'finish_reason':" fr "}]}"
#define ROLE(id) CHUNK(id, "{'role':'assistant','content':''}", "null")

static void test_stream_text(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}",
            SB_OP_CHAT);
    expect_stream(
        f,
        "data: {'candidates':[{'content':{'parts':[{'text':'Hel'}],'role':'model'},'index':0}],"
        "'usageMetadata':{'promptTokenCount':4,'totalTokenCount':4},'responseId':'s1'}\r\n\r\n"
        "data: {'candidates':[{'content':{'parts':[{'text':'lo \xc3\xa9\xe2\x82\xac'}],"
        "'role':'model'},'index':0}],'responseId':'s1'}\r\n\r\n"
        "data: {'candidates':[{'content':{'parts':[{'text':'!','thoughtSignature':'U0k='}],"
        "'role':'model'},'finishReason':'STOP','index':0}],'usageMetadata':"
        "{'promptTokenCount':4,'candidatesTokenCount':3,'totalTokenCount':7},"
        "'responseId':'s1'}\r\n\r\n",
        SB_OK,
        "[" ROLE("s1") "," CHUNK("s1", "{'content':'Hel'}", "null") "," CHUNK(
            "s1", "{'content':'lo \xc3\xa9\xe2\x82\xac'}",
            "null") "," CHUNK("s1",
                              "{'content':'!','extra_content':{'google':{'thought_signature':"
                              "'U0k='}}}",
                              "null") "," CHUNK("s1", "{}", "'stop'") ","
                                                                      "{'id':'chatcmpl-s1','object'"
                                                                      ":'chat.completion.chunk',"
                                                                      "'model':'gemini-2.5-flash','"
                                                                      "choices':[],'usage':"
                                                                      "{'prompt_tokens':4,'"
                                                                      "completion_tokens':3,"
                                                                      "'total_tokens':7}},'DONE']",
        NULL);
}

static void test_stream_thoughts_and_tools(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}",
            SB_OP_CHAT);
    const char *up =
        "data: {'candidates':[{'content':{'parts':[{'text':'Plan','thought':true}],"
        "'role':'model'}}],'responseId':'t1'}\n\n"
        "data: {'candidates':[{'content':{'parts':[{'functionCall':{'name':'a','args':"
        "{'x':1}},'thoughtSignature':'QQ=='},{'functionCall':{'name':'b','args':{}}}],"
        "'role':'model'},'finishReason':'STOP'}],'usageMetadata':{'promptTokenCount':2,"
        "'candidatesTokenCount':5,'thoughtsTokenCount':3},'responseId':'t1'}\n\n";
    /* The ids must be the ones the whole response gives for the same answer. */
    struct sb_result res;
    json_t *whole = parse(f,
                          "{'candidates':[{'content':{'parts':[{'functionCall':{'name':'a',"
                          "'args':{'x':1}}},{'functionCall':{'name':'b','args':{}}}]},"
                          "'finishReason':'STOP'}],'responseId':'t1'}",
                          &res);
    json_t *calls = json_object_get(
        json_object_get(json_array_get(json_object_get(whole, "choices"), 0), "message"),
        "tool_calls");
    const char *id0 = json_string_value(json_object_get(json_array_get(calls, 0), "id"));
    const char *id1 = json_string_value(json_object_get(json_array_get(calls, 1), "id"));
    char want[4096];
    snprintf(
        want, sizeof(want),
        "[" ROLE("t1") "," CHUNK("t1", "{'reasoning_content':'Plan'}", "null") "," CHUNK(
            "t1",
            "{'tool_calls':[{'index':0,'id':'%s','type':'function','function':{'name':'a',"
            "'arguments':'{\\'x\\':1}'},'extra_content':{'google':{'thought_signature':"
            "'QQ=='}}}]}",
            "null") "," CHUNK("t1",
                              "{'tool_calls':[{'index':1,'id':'%s','type':'function',"
                              "'function':{'name':'b','arguments':'{}'}}]}",
                              "null") "," CHUNK("t1", "{}",
                                                "'tool_calls'") ","
                                                                "{'id':'chatcmpl-t1','object':'"
                                                                "chat.completion.chunk',"
                                                                "'model':'gemini-2.5-flash','"
                                                                "choices':[],'usage':"
                                                                "{'prompt_tokens':2,'completion_"
                                                                "tokens':8,"
                                                                "'total_tokens':10,'completion_"
                                                                "tokens_details':"
                                                                "{'reasoning_tokens':3}}},'DONE']",
        id0, id1);
    expect_stream(f, up, SB_OK, want, NULL);
    json_decref(whole);
}

/* The streamed text, reasoning and calls add up to the whole answer's message. */
static void test_stream_equals_whole(void **state)
{
    struct fx *f = *state;
    static const char *const parts[] = {"{'text':'mull','thought':true}", "{'text':'Ans'}",
                                        "{'text':'wer \xf0\x9f\x98\x80'}",
                                        "{'functionCall':{'name':'f','args':{'k':[true,null]}}}"};
    char up[2048] = "", whole[2048];
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(up);
        snprintf(up + n, sizeof(up) - n,
                 "data: {'candidates':[{'content':{'parts':[%s]}%s}],'responseId':'w'}\n\n",
                 parts[i], i == 3 ? ",'finishReason':'STOP'" : "");
    }
    snprintf(whole, sizeof(whole),
             "{'candidates':[{'content':{'parts':[%s,%s,%s,%s]},'finishReason':'STOP'}],"
             "'responseId':'w'}",
             parts[0], parts[1], parts[2], parts[3]);
    fx_call(f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}",
            SB_OP_CHAT);
    struct sb_result res;
    json_t *w = parse(f, whole, &res);
    json_t *msg = json_object_get(json_array_get(json_object_get(w, "choices"), 0), "message");
    struct run r = {json_array(), f};
    struct sb_error err = {0};
    assert_int_equal(feed(f, fx_q(f, up), 1, &r, &err), SB_OK);
    char text[256] = "", reasoning[256] = "";
    json_t *call0 = NULL, *ev;
    size_t i;
    json_array_foreach(r.events, i, ev)
    {
        json_t *d = json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta");
        const char *c = json_string_value(json_object_get(d, "content"));
        const char *rc = json_string_value(json_object_get(d, "reasoning_content"));
        if (c)
            snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s", c);
        if (rc)
            snprintf(reasoning + strlen(reasoning), sizeof(reasoning) - strlen(reasoning), "%s",
                     rc);
        if (json_object_get(d, "tool_calls"))
            call0 = json_array_get(json_object_get(d, "tool_calls"), 0);
    }
    assert_string_equal(text, json_string_value(json_object_get(msg, "content")));
    assert_string_equal(reasoning, json_string_value(json_object_get(msg, "reasoning_content")));
    json_t *wc = json_deep_copy(call0);
    json_object_del(wc, "index");
    expect_json(wc, json_incref(json_array_get(json_object_get(msg, "tool_calls"), 0)));
    json_decref(wc);
    json_decref(r.events);
    json_decref(w);
}

static void test_stream_errors(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}",
            SB_OP_CHAT);
    /* An error object mid-stream. */
    expect_stream(f,
                  "data: {'candidates':[{'content':{'parts':[{'text':'a'}]}}],'responseId':'e'}"
                  "\n\ndata: {'error':{'code':503,'message':'The model is overloaded.',"
                  "'status':'UNAVAILABLE'}}\n\n",
                  SB_E_UPSTREAM, "[" ROLE("e") "," CHUNK("e", "{'content':'a'}", "null") "]",
                  "upstream gemini: The model is overloaded.");
    /* The body ends with no finishReason. */
    expect_stream(f,
                  "data: {'candidates':[{'content':{'parts':[{'text':'a'}]}}],'responseId':'e'}"
                  "\n\n",
                  SB_E_UPSTREAM, "[" ROLE("e") "," CHUNK("e", "{'content':'a'}", "null") "]",
                  "before a finishReason");
    /* The body ends inside an event. */
    expect_stream(f, "data: {'candidates':[{'content':{'parts':[{'text':'a'}]}}]", SB_E_UPSTREAM,
                  "[]", "inside an event");
    /* Not JSON. */
    expect_stream(f, "data: {oops\n\n", SB_E_UPSTREAM, "[]", "not a JSON object");
    /* An empty body. */
    expect_stream(f, "", SB_E_UPSTREAM, "[]", "before a finishReason");
}

/* A blocked prompt streams one event with promptFeedback and no candidates. */
static void test_stream_blocked(void **state)
{
    struct fx *f = *state;
    fx_call(f, "{'model':'flash','stream':true,'messages':[{'role':'user','content':'x'}]}",
            SB_OP_CHAT);
    expect_stream(f,
                  "data: {'promptFeedback':{'blockReason':'PROHIBITED_CONTENT'},"
                  "'responseId':'b'}\n\n",
                  SB_OK, "[" ROLE("b") "," CHUNK("b", "{}", "'content_filter'") ",'DONE']", NULL);
}

/* ==================================================================
 * Errors
 * ================================================================== */

static void test_map_error(void **state)
{
    struct fx *f = *state;
    static const struct {
        int status;
        const char *body;
        sb_err code;
        int http;
        const char *msg;
        const char *api_code; /* the OpenAI code clients and failover branch on */
    } cases[] = {
        {400,
         "{'error':{'code':400,'message':'Invalid JSON payload received.','status':"
         "'INVALID_ARGUMENT'}}",
         SB_E_BAD_REQUEST, 400, "upstream gemini: Invalid JSON payload received.", NULL},
        {400,
         "{'error':{'code':400,'message':'API key not valid. Please pass a valid API key. "
         "key=" KEY "','status':'INVALID_ARGUMENT','details':[{'@type':"
         "'type.googleapis.com/google.rpc.ErrorInfo','reason':'API_KEY_INVALID'}]}}",
         SB_E_UNAUTHORIZED, 401, "upstream gemini: the API key was not accepted", NULL},
        {403, "{'error':{'code':403,'message':'denied " KEY "','status':'PERMISSION_DENIED'}}",
         SB_E_FORBIDDEN, 403, "upstream gemini: denied *************************", NULL},
        {404,
         "{'error':{'code':404,'message':'models/nope is not found for API version v1beta',"
         "'status':'NOT_FOUND'}}",
         SB_E_NOT_FOUND, 404, "upstream gemini: models/nope is not found for API version v1beta",
         "model_not_found"},
        {429, "{'error':{'code':429,'message':'Quota exceeded','status':'RESOURCE_EXHAUSTED'}}",
         SB_E_RATE_LIMITED, 429, "upstream gemini: Quota exceeded", NULL},
        {500, "{'error':{'code':500,'message':'Internal error','status':'INTERNAL'}}",
         SB_E_UPSTREAM, 500, "upstream gemini: Internal error", NULL},
        {503, "{'error':{'code':503,'message':'Overloaded','status':'UNAVAILABLE'}}",
         SB_E_UNAVAILABLE, 503, "upstream gemini: Overloaded", NULL},
        {504, "{'error':{'code':504,'message':'Deadline','status':'DEADLINE_EXCEEDED'}}",
         SB_E_UPSTREAM_TIMEOUT, 504, "upstream gemini: Deadline", NULL},
        {400,
         "[{'error':{'code':400,'message':'The input token count (2000000) exceeds the maximum "
         "number of tokens allowed (1048576).','status':'INVALID_ARGUMENT'}}]",
         SB_E_BAD_REQUEST, 400, "upstream gemini: The input token count (2000000) exceeds",
         "context_length_exceeded"},
        {502, "<html>bad gateway</html>", SB_E_UPSTREAM, 502,
         "upstream gemini: <html>bad gateway</html>", NULL},
        {413, "", SB_E_TOO_LARGE, 413, "upstream gemini: request failed", NULL},
    };
    fx_call(f, "{'model':'flash','messages':[{'role':'user','content':'x'}]}", SB_OP_CHAT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sb_error err = {0};
        f->ops->map_error(&f->c, cases[i].status, sb_slice_cstr(fx_q(f, cases[i].body)), &err);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(err.http_status, cases[i].http);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: message '%s', want '%s'", i, err.msg, cases[i].msg);
        assert_null(strstr(err.msg, KEY));
        assert_string_equal(err.api_code, cases[i].api_code ? cases[i].api_code : "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_basic, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_stream_and_query_auth, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_multipart, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_tool_round_trip, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_text_signature_and_reasoning, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_generation_config, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_refused, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_text, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_tool_calls, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_finish_reasons, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_bad, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_response_embeddings, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_text, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_thoughts_and_tools, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_equals_whole, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_errors, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stream_blocked, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_error, setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
