// SPDX-License-Identifier: MIT
//
// messages_matrix.test.js - issue 6's "Done means" for the Anthropic front
// door: the official `@anthropic-ai/sdk` on POST /v1/messages through the
// real gateway to EVERY provider type, each behind its fake written from the
// provider's documentation (lib/fake-*.js), all in one gateway: openai,
// azure, anthropic, gemini, cohere, ollama, huggingface (the native TGI
// /generate API and TGI's OpenAI-compatible /v1 Messages API) and bedrock.
//
// Per provider: a text answer whole and through the SDK's stream helper,
// usage (input and output tokens), a tool round trip where the provider has
// tools (the tool_result follow-up asserted on what the fake received, in
// the provider's own format), reasoning where the provider has it (a thinking
// block out, and back to the provider as DESIGN.md §6 says: signatures
// untouched for anthropic and bedrock, unsigned blocks never sent to them),
// one upstream error class in Anthropic's shape, and a broken stream that
// makes the SDK raise. Last, `make run`'s example config starts with no
// provider skipped.

'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk');
const { FakeUpstream } = require('./lib/fake-upstream');
const { FakeAnthropic } = require('./lib/fake-anthropic');
const { FakeAzure } = require('./lib/fake-azure');
const { FakeGemini } = require('./lib/fake-gemini');
const { FakeCohere } = require('./lib/fake-cohere');
const { FakeOllama } = require('./lib/fake-ollama');
const { FakeTGI } = require('./lib/fake-tgi');
const { FakeBedrock, SIGNATURE: BEDROCK_SIG } = require('./lib/fake-bedrock');
const h = require('./lib/harness');

const KEYS = {
    MX_ANT_KEY: 'sk-ant-matrix-key-0123456789abcdef',
    MX_AZURE_KEY: 'azure-matrix-key-5f2c9a1b7e',
    MX_GEMINI_KEY: 'AIzaSy-matrix-gemini-key-0123456789',
    MX_COHERE_KEY: 'co-matrix-key-0123456789',
    MX_HF_KEY: 'hf_matrixTokenForTests0123456789',
    MX_AWS_AKID: 'AKIDMATRIXBEDROCK123',
    MX_AWS_SECRET: 'matrixSecretKey/For+Bedrock0123456789abc',
};
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// OpenAI-format answers for the OpenAI-shaped fake (openai and huggingface /v1).
const completion = (message, finish, usage) => ({
    id: 'chatcmpl-mx1', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }],
    usage: { prompt_tokens: usage[0], completion_tokens: usage[1], total_tokens: usage[0] + usage[1] },
});
const jsonReply = (body) => (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'application/json' });
    ctx.res.end(JSON.stringify(body));
};
const chunk = (delta, finish = null) => ({
    id: 'chatcmpl-mx2', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }],
});
const sseReply = (chunks) => async (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const c of chunks) {
        ctx.res.write(`data: ${JSON.stringify(c)}\n\n`);
        await sleep(3);
    }
    ctx.res.end('data: [DONE]\n\n');
};

const WEATHER = { name: 'get_weather', description: 'Weather for a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

let client;

/** The SDK's stream helper: the final message, the text it emitted, the event types. */
async function streamed(params) {
    const s = client.messages.stream(params);
    const events = [];
    let text = '';
    s.on('streamEvent', (e) => events.push(e.type));
    s.on('text', (t) => { text += t; });
    const msg = await s.finalMessage();
    assert.equal(events[0], 'message_start');
    assert.equal(events.at(-1), 'message_stop');
    return { msg, text, events };
}

/**
 * A stream the upstream breaks: the SDK raises after the partial text, with
 * the gateway's error event ({"type":"error","error":{type, message}}) and no message_stop.
 */
async function broken(params, partial, type = 'api_error', re = /upstream stream broke/) {
    const s = client.messages.stream(params);
    const events = [];
    let text = '';
    s.on('streamEvent', (e) => events.push(e.type));
    s.on('text', (t) => { text += t; });
    const err = await s.finalMessage().then(() => null, (e) => e);
    assert.ok(err instanceof Anthropic.APIError, `the SDK raised ${err && err.constructor.name}: ${err}`);
    assert.equal(events[0], 'message_start');
    assert.ok(!events.includes('message_stop'), `message_stop after a broken stream: ${events}`);
    assert.equal(text, partial);
    assert.equal(err.error && err.error.type, 'error', String(err));
    assert.equal(err.error.error.type, type, String(err));
    assert.match(err.error.error.message, re);
    return err;
}

/** An upstream error on /v1/messages: the SDK's class, Anthropic's shape and type. */
async function rejects(params, Cls, status, type, re) {
    const e = await client.messages.create(params).catch((x) => x);
    assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e && e.constructor.name}: ${e}`);
    assert.equal(e.status, status);
    assert.equal(e.error.type, 'error', JSON.stringify(e.error));
    assert.equal(e.error.error.type, type, JSON.stringify(e.error));
    if (re) assert.match(e.error.error.message, re);
    for (const k of Object.values(KEYS)) assert.ok(!JSON.stringify(e.error).includes(k), 'a key in the error');
    return e;
}

const user = (content) => ({ role: 'user', content });
const toolResult = (id, content) => ({ type: 'tool_result', tool_use_id: id, content });

describe('/v1/messages × every provider type, through @anthropic-ai/sdk', () => {
    let gw;
    const f = {};

    before(async () => {
        f.oai = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        f.ant = await new FakeAnthropic({ apiKey: KEYS.MX_ANT_KEY }).start();
        f.az = await new FakeAzure({ apiKey: KEYS.MX_AZURE_KEY, deployments: { 'prod-4o': 'gpt-4o-2024-08-06' } }).start();
        f.gem = await new FakeGemini({ apiKey: KEYS.MX_GEMINI_KEY }).start();
        f.co = await new FakeCohere({ apiKey: KEYS.MX_COHERE_KEY, models: ['command-a-03-2025'] }).start();
        f.ol = await new FakeOllama({ models: ['llama3.2:3b'] }).start();
        f.tgi = await new FakeTGI({ token: KEYS.MX_HF_KEY }).start();
        f.br = await new FakeBedrock({ accessKeyId: KEYS.MX_AWS_AKID, secretAccessKey: KEYS.MX_AWS_SECRET, region: 'us-east-1', models: [HAIKU] }).start();
        const local = (port) => `http://127.0.0.1:${port}`;
        gw = await h.startGateway(f.oai, {
            env: KEYS,
            providers: [
                { id: 'az', type: 'azure', base_url: f.az.baseUrl, api_version: '2024-10-21', api_key: 'env:MX_AZURE_KEY', timeout_ms: 5000 },
                { id: 'ant', type: 'anthropic', base_url: f.ant.url, api_key: 'env:MX_ANT_KEY', timeout_ms: 5000 },
                { id: 'gem', type: 'gemini', base_url: `${local(f.gem.port)}/v1beta`, api_key: 'env:MX_GEMINI_KEY', timeout_ms: 5000 },
                { id: 'co', type: 'cohere', base_url: local(f.co.port), api_key: 'env:MX_COHERE_KEY', timeout_ms: 5000 },
                { id: 'ol', type: 'ollama', base_url: local(f.ol.port), timeout_ms: 5000 },
                { id: 'tgi', type: 'huggingface', base_url: f.tgi.baseUrl, api_key: 'env:MX_HF_KEY', timeout_ms: 5000 },
                { id: 'hfv1', type: 'huggingface', base_url: f.oai.baseUrl, api_key: 'env:FAKE_OPENAI_KEY', timeout_ms: 5000 },
                { id: 'aws', type: 'bedrock', base_url: local(f.br.port), region: 'us-east-1', timeout_ms: 5000,
                    aws_access_key_id: 'env:MX_AWS_AKID', aws_secret_access_key: 'env:MX_AWS_SECRET' },
            ],
            models: [
                { id: 'az-4o', provider: 'az', upstream_model: 'prod-4o' },
                { id: 'claude-test', provider: 'ant', upstream_model: 'claude-sonnet-4-20250514', max_output_tokens: 4000 },
                { id: 'flash', provider: 'gem', upstream_model: 'gemini-2.5-flash' },
                { id: 'command', provider: 'co', upstream_model: 'command-a-03-2025' },
                { id: 'llama', provider: 'ol', upstream_model: 'llama3.2:3b' },
                { id: 'hf-qwen', provider: 'tgi', upstream_model: 'Qwen/Qwen2.5-7B-Instruct' },
                { id: 'hf-v1', provider: 'hfv1', upstream_model: 'Qwen/Qwen2.5-7B-Instruct' },
                { id: 'br-claude', provider: 'aws', upstream_model: HAIKU },
            ],
        });
        client = new Anthropic({ baseURL: gw.url, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        for (const fake of Object.values(f)) await fake.stop();
    });

    // ------------------------------------------------------------------
    describe('openai', () => {
        it('text whole and streamed, usage; the upstream gets Chat Completions', async () => {
            const m = f.oai.script(f.oai.marker('otext'), { reply: 'Hello from OpenAI', usage: { prompt_tokens: 21, completion_tokens: 3 } });
            const r = await client.messages.create({ model: 'gpt-test', max_tokens: 100, system: 'Be brief.', messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Hello from OpenAI' }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 21);
            assert.equal(r.usage.output_tokens, 3);
            const up = f.oai.requestsFor(m)[0];
            assert.equal(up.path, '/v1/chat/completions');
            assert.deepEqual(up.json.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }]);
            const s = f.oai.script(f.oai.marker('ostream'), { chunks: ['Once ', 'upon \u00e9', '\u{1F98A}'], usage: { prompt_tokens: 9, completion_tokens: 4 } });
            const { msg, text } = await streamed({ model: 'gpt-test', max_tokens: 50, messages: [user(s)] });
            assert.equal(text, 'Once upon \u00e9\u{1F98A}');
            assert.deepEqual(msg.content, [{ type: 'text', text }]);
            assert.equal(msg.usage.input_tokens, 9);
            assert.equal(msg.usage.output_tokens, 4);
            assert.equal(f.oai.requestsFor(s)[0].json.stream, true);
        });

        it('tool round trip: the tool_result reaches OpenAI as a tool message', async () => {
            const call = { id: 'call_mx1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
            const m = f.oai.script(f.oai.marker('otool'), jsonReply(completion({ content: null, tool_calls: [call] }, 'tool_calls', [30, 8])));
            const first = await client.messages.create({ model: 'gpt-test', max_tokens: 100, tools: [WEATHER], messages: [user(m)] });
            assert.equal(first.stop_reason, 'tool_use');
            assert.deepEqual(first.content, [{ type: 'tool_use', id: 'call_mx1', name: 'get_weather', input: { city: 'Paris' } }]);
            f.oai.script(m, jsonReply(completion({ content: 'Sunny.' }, 'stop', [40, 2])));
            const second = await client.messages.create({ model: 'gpt-test', max_tokens: 100, tools: [WEATHER],
                messages: [user(m), { role: 'assistant', content: first.content }, user([toolResult('call_mx1', '22C sunny')])] });
            assert.deepEqual(second.content, [{ type: 'text', text: 'Sunny.' }]);
            assert.deepEqual(f.oai.requestsFor(m)[1].json.messages.slice(1), [
                { role: 'assistant', content: null, tool_calls: [call] },
                { role: 'tool', tool_call_id: 'call_mx1', content: '22C sunny' },
            ]);
        });

        it('reasoning: reasoning_content arrives as an unsigned thinking block and goes back as reasoning_content', async () => {
            const m = f.oai.script(f.oai.marker('oreason'), jsonReply(completion({ content: '7', reasoning_content: 'three plus four' }, 'stop', [5, 2])));
            const r = await client.messages.create({ model: 'gpt-test', max_tokens: 100, messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'thinking', thinking: 'three plus four', signature: '' }, { type: 'text', text: '7' }]);
            f.oai.script(m, { reply: 'fine' });
            await client.messages.create({ model: 'gpt-test', max_tokens: 100, messages: [user(m), { role: 'assistant', content: r.content }, user('go on')] });
            assert.deepEqual(f.oai.requestsFor(m)[1].json.messages[1], { role: 'assistant', content: '7', reasoning_content: 'three plus four' });
        });

        it('error: a 429 with retry-after is a RateLimitError of type rate_limit_error', async () => {
            const m = f.oai.script(f.oai.marker('o429'), { status: 429, headers: { 'retry-after': '7' },
                error: { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } } });
            const e = await rejects({ model: 'gpt-test', max_tokens: 5, messages: [user(m)] }, Anthropic.RateLimitError, 429, 'rate_limit_error', /Rate limit reached/);
            assert.equal(e.headers.get('retry-after'), '7');
        });

        it('a broken stream makes the SDK raise', async () => {
            const m = f.oai.script(f.oai.marker('obreak'), { chunks: ['a', 'b', 'c', 'd'], breakAfter: 2 });
            await broken({ model: 'gpt-test', max_tokens: 20, messages: [user(m)] }, 'ab');
        });
    });

    // ------------------------------------------------------------------
    describe('azure', () => {
        const last = () => f.az.requests.at(-1);

        it('text whole and streamed, usage; deployment URL, api-version, api-key', async () => {
            const r = await client.messages.create({ model: 'az-4o', max_tokens: 64, system: 'Be brief.', messages: [user('Bonjour')] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Azure echo: Bonjour' }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 19);
            assert.equal(r.usage.output_tokens, 7);
            assert.equal(last().path, '/openai/deployments/prod-4o/chat/completions');
            assert.deepEqual(last().query, { 'api-version': '2024-10-21' });
            assert.equal(last().headers['api-key'], KEYS.MX_AZURE_KEY);
            assert.equal(last().headers.authorization, undefined);
            assert.deepEqual(last().json.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Bonjour' }]);
            const { msg, text } = await streamed({ model: 'az-4o', max_tokens: 64, messages: [user('streaming please')] });
            assert.equal(text, 'Azure echo: streaming please');
            assert.equal(msg.stop_reason, 'end_turn');
            assert.equal(msg.usage.input_tokens, 19);
            assert.equal(msg.usage.output_tokens, 7);
            assert.equal(last().json.stream, true);
        });

        it('tool round trip (streamed call): the tool_result reaches Azure as a tool message', async () => {
            const { msg } = await streamed({ model: 'az-4o', max_tokens: 100, tools: [WEATHER], messages: [user('Weather in Paris?')] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'call_az1', name: 'get_weather', input: { city: 'Paris', unit: 'c' } }]);
            assert.deepEqual(last().json.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER.input_schema } }]);
            const r = await client.messages.create({ model: 'az-4o', max_tokens: 100, tools: [WEATHER],
                messages: [user('Weather in Paris?'), { role: 'assistant', content: msg.content }, user([toolResult('call_az1', '21C and sunny')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'The tool said: 21C and sunny' }]);
            const sent = last().json.messages;
            assert.equal(sent.length, 3);
            assert.equal(sent[1].role, 'assistant');
            assert.deepEqual(sent[1].tool_calls.map((c) => [c.id, c.type, c.function.name, JSON.parse(c.function.arguments)]),
                [['call_az1', 'function', 'get_weather', { city: 'Paris', unit: 'c' }]]);
            assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'call_az1', content: '21C and sunny' });
        });

        it('error: Azure\'s content_filter 400 is a BadRequestError of type invalid_request_error', async () => {
            await rejects({ model: 'az-4o', max_tokens: 5, messages: [user('trigger-filter')] }, Anthropic.BadRequestError, 400,
                'invalid_request_error', /content management policy/);
        });

        it('a broken stream makes the SDK raise', async () => {
            await broken({ model: 'az-4o', max_tokens: 20, messages: [user('break-stream now')] }, 'Azure ');
        });
    });

    // ------------------------------------------------------------------
    describe('anthropic', () => {
        const THINK = { type: 'enabled', budget_tokens: 1024 };

        it('text whole and streamed, usage; the upstream gets the Messages API', async () => {
            const m = f.ant.script(f.ant.marker('atext'), { blocks: [{ type: 'text', text: 'Bonjour \u{1F44B}' }], usage: { input_tokens: 12, output_tokens: 4 } });
            const r = await client.messages.create({ model: 'claude-test', max_tokens: 100, system: 'Be brief.', messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Bonjour \u{1F44B}' }]);
            assert.equal(r.model, 'claude-test');
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 12);
            assert.equal(r.usage.output_tokens, 4);
            const up = f.ant.requestsFor(m)[0];
            assert.equal(up.url, '/v1/messages');
            assert.equal(up.headers['x-api-key'], KEYS.MX_ANT_KEY);
            assert.equal(up.headers['anthropic-version'], '2023-06-01');
            assert.deepEqual({ ...up.json, messages: undefined }, { model: 'claude-sonnet-4-20250514', max_tokens: 100, system: 'Be brief.', messages: undefined });
            const text = 'The quick brown fox \u00e9\u{1F98A} jumps';
            const s = f.ant.script(f.ant.marker('astream'), { blocks: [{ type: 'text', text }], usage: { input_tokens: 9, output_tokens: 7 } });
            const got = await streamed({ model: 'claude-test', max_tokens: 100, messages: [user(s)] });
            assert.equal(got.text, text);
            assert.equal(got.msg.usage.input_tokens, 9);
            assert.equal(got.msg.usage.output_tokens, 7);
            assert.equal(f.ant.requestsFor(s)[0].json.stream, true);
        });

        // Cache writes are billed apart: they travel as prompt_tokens_details
        // .cache_creation_tokens and come back as cache_creation_input_tokens.
        it('usage: cache reads and writes keep their own fields', async () => {
            const m = f.ant.script(f.ant.marker('acache'), { blocks: [{ type: 'text', text: 'ok' }],
                usage: { input_tokens: 12, output_tokens: 4, cache_read_input_tokens: 100, cache_creation_input_tokens: 3 } });
            const r = await client.messages.create({ model: 'claude-test', max_tokens: 100, messages: [user(m)] });
            assert.equal(r.usage.cache_read_input_tokens, 100);
            assert.equal(r.usage.output_tokens, 4);
            // Anthropic bills cache writes apart: input_tokens excludes them.
            assert.deepEqual([r.usage.input_tokens, r.usage.cache_creation_input_tokens], [12, 3]);
        });

        it('tool round trip (streamed call): the tool_result reaches Anthropic as a tool_result block', async () => {
            const call = { type: 'tool_use', id: 'toolu_mx1', name: 'get_weather', input: { city: 'Oslo', days: [1, 2] } };
            const m = f.ant.script(f.ant.marker('atool'), { blocks: [{ type: 'text', text: 'Checking.' }, call] });
            const { msg } = await streamed({ model: 'claude-test', max_tokens: 200, tools: [WEATHER], messages: [user(m)] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content, [{ type: 'text', text: 'Checking.' }, call]);
            assert.deepEqual(f.ant.requestsFor(m)[0].json.tools, [WEATHER]);
            f.ant.script(m, { blocks: [{ type: 'text', text: 'Oslo: 3C.' }] });
            const r = await client.messages.create({ model: 'claude-test', max_tokens: 200, tools: [WEATHER],
                messages: [user(m), { role: 'assistant', content: msg.content }, user([toolResult('toolu_mx1', '3C')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Oslo: 3C.' }]);
            const sent = f.ant.requestsFor(m)[1].json.messages;
            assert.deepEqual(sent[1], { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, call] });
            assert.deepEqual(sent[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_mx1', content: '3C' }] });
        });

        it('reasoning: signed thinking (whole and streamed) goes back untouched; unsigned blocks never reach Anthropic', async () => {
            const sig = 'EqQBCkYIBxgCKkB+matrix/signature==';
            const blocks = [{ type: 'thinking', thinking: 'Let me think.', signature: sig }, { type: 'text', text: 'Forty-two.' }];
            const m = f.ant.script(f.ant.marker('athink'), { blocks, usage: { input_tokens: 30, output_tokens: 12 } });
            const r = await client.messages.create({ model: 'claude-test', max_tokens: 3000, thinking: THINK, messages: [user(m)] });
            assert.deepEqual(r.content, blocks);
            assert.deepEqual(f.ant.requestsFor(m)[0].json.thinking, THINK);
            const s = await streamed({ model: 'claude-test', max_tokens: 3000, thinking: THINK, messages: [user(m)] });
            assert.deepEqual(s.msg.content, blocks);
            f.ant.script(m, { blocks: [{ type: 'text', text: 'Because.' }] });
            await client.messages.create({ model: 'claude-test', max_tokens: 3000, thinking: THINK,
                messages: [user(m), { role: 'assistant', content: s.msg.content }, user('Why?')] });
            assert.deepEqual(f.ant.requestsFor(m)[2].json.messages[1], { role: 'assistant', content: blocks });
            // A thinking block another provider produced (signature "") is left out (the fake would 400).
            const u = f.ant.script(f.ant.marker('aunsigned'), { blocks: [{ type: 'text', text: 'ok' }] });
            const ok = await client.messages.create({ model: 'claude-test', max_tokens: 100,
                messages: [user(u), { role: 'assistant', content: [{ type: 'thinking', thinking: 'from elsewhere', signature: '' }, { type: 'text', text: '7' }] }, user('and?')] });
            assert.deepEqual(ok.content, [{ type: 'text', text: 'ok' }]);
            const back = f.ant.requestsFor(u)[0].json.messages[1];
            assert.ok(!JSON.stringify(back).includes('"thinking"'), `unsigned thinking sent to Anthropic: ${JSON.stringify(back)}`);
            assert.ok(JSON.stringify(back).includes('7'));
        });

        it('error: a 429 with retry-after is a RateLimitError of type rate_limit_error', async () => {
            const m = f.ant.script(f.ant.marker('a429'), { error: { status: 429, type: 'rate_limit_error', message: 'Number of request tokens has exceeded your rate limit', headers: { 'retry-after': '5' } } });
            const e = await rejects({ model: 'claude-test', max_tokens: 5, messages: [user(m)] }, Anthropic.RateLimitError, 429, 'rate_limit_error', /exceeded your rate limit/);
            assert.equal(e.headers.get('retry-after'), '5');
        });

        it('a broken stream and an error event mid-stream make the SDK raise', async () => {
            const blocks = [{ type: 'text', text: 'partial' }, { type: 'text', text: 'never' }];
            const m = f.ant.script(f.ant.marker('abreak'), { blocks, truncateAfterBlocks: 1 });
            await broken({ model: 'claude-test', max_tokens: 20, messages: [user(m)] }, 'partial');
            const o = f.ant.script(f.ant.marker('aover'), { blocks, streamError: { afterBlocks: 1, type: 'overloaded_error', message: 'Overloaded' } });
            await broken({ model: 'claude-test', max_tokens: 20, messages: [user(o)] }, 'partial', 'overloaded_error', /Overloaded/);
        });
    });

    // ------------------------------------------------------------------
    describe('gemini', () => {
        it('text whole and streamed, usage; the upstream gets generateContent', async () => {
            const m = f.gem.script(f.gem.marker('gtext'), { parts: [{ text: 'Bonjour \u{1F44B}' }], usage: { promptTokenCount: 20, candidatesTokenCount: 3, totalTokenCount: 23 } });
            const r = await client.messages.create({ model: 'flash', max_tokens: 64, system: 'Be brief.', messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Bonjour \u{1F44B}' }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 20);
            assert.equal(r.usage.output_tokens, 3);
            const up = f.gem.requestsFor(m)[0];
            assert.equal(up.path, '/v1beta/models/gemini-2.5-flash:generateContent');
            assert.equal(up.headers['x-goog-api-key'], KEYS.MX_GEMINI_KEY);
            assert.deepEqual(up.json.contents, [{ role: 'user', parts: [{ text: m }] }]);
            assert.deepEqual(up.json.systemInstruction, { parts: [{ text: 'Be brief.' }] });
            const pieces = ['The', ' quick', ' brown \u00e9', '\u{1F98A} fox'];
            const s = f.gem.script(f.gem.marker('gstream'), { chunks: pieces.map((t) => [{ text: t }]) });
            const got = await streamed({ model: 'flash', max_tokens: 64, messages: [user(s)] });
            assert.equal(got.text, pieces.join(''));
            assert.equal(got.msg.usage.input_tokens, 11);
            assert.equal(got.msg.usage.output_tokens, 7);
            const sup = f.gem.requestsFor(s)[0];
            assert.equal(sup.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
            assert.equal(sup.query.alt, 'sse');
        });

        it('tool round trip: the tool_result reaches Gemini as a functionResponse; a streamed call', async () => {
            const tool = { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } } } };
            const m = f.gem.script(f.gem.marker('gtool'), { parts: [{ functionCall: { name: 'get_time', args: { tz: 'CET' } } }] }, { text: 'It is noon.' });
            const first = await client.messages.create({ model: 'flash', max_tokens: 64, tools: [tool], messages: [user(m)] });
            assert.equal(first.stop_reason, 'tool_use');
            assert.equal(first.content.length, 1);
            const call = first.content[0];
            assert.equal(call.type, 'tool_use');
            assert.deepEqual([call.name, call.input], ['get_time', { tz: 'CET' }]);
            assert.deepEqual(f.gem.requestsFor(m)[0].json.tools, [{ functionDeclarations: [{ name: 'get_time', parametersJsonSchema: tool.input_schema }] }]);
            const r = await client.messages.create({ model: 'flash', max_tokens: 64, tools: [tool],
                messages: [user(m), { role: 'assistant', content: first.content }, user([toolResult(call.id, 'noon')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'It is noon.' }]);
            assert.deepEqual(f.gem.requestsFor(m)[1].json.contents.slice(1), [
                { role: 'model', parts: [{ functionCall: { name: 'get_time', args: { tz: 'CET' } } }] },
                { role: 'user', parts: [{ functionResponse: { name: 'get_time', response: { output: 'noon' } } }] },
            ]);
            // Streamed: the call arrives whole in one part, after the thought.
            const st = f.gem.script(f.gem.marker('gtoolstream'), { chunks: [[{ text: 'Let me check.', thought: true }], [{ functionCall: { name: 'get_time', args: { tz: 'UTC' } } }]] });
            const { msg } = await streamed({ model: 'flash', max_tokens: 64, tools: [tool], messages: [user(st)] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content.map((b) => [b.type, b.thinking ?? b.name, b.signature ?? b.input]),
                [['thinking', 'Let me check.', ''], ['tool_use', 'get_time', { tz: 'UTC' }]]);
            assert.match(msg.content[1].id, /^call_/);
        });

        // A Gemini thought signature rides on the tool_use block as extra_content
        // and goes back on its functionCall part (Gemini 3 refuses a call without it).
        it('tool round trip with a thought signature: it returns to Gemini on its functionCall part', async () => {
            const tool = { name: 'lookup_signed', input_schema: { type: 'object', properties: { q: { type: 'string' } } } };
            const m = f.gem.script(f.gem.marker('gsig'), { parts: [{ functionCall: { name: 'lookup_signed', args: { q: 'x' } }, thoughtSignature: 'c2lnLW14LTE=' }] }, { text: 'found' });
            const first = await client.messages.create({ model: 'flash', max_tokens: 64, tools: [tool], messages: [user(m)] });
            assert.equal(first.content[0].type, 'tool_use');
            const r = await client.messages.create({ model: 'flash', max_tokens: 64, tools: [tool],
                messages: [user(m), { role: 'assistant', content: first.content }, user([toolResult(first.content[0].id, 'x found')])] })
                .catch((e) => e);
            assert.ok(!(r instanceof Error), `the follow-up failed: ${r}`);
            assert.deepEqual(f.gem.requestsFor(m)[1].json.contents[1].parts[0],
                { functionCall: { name: 'lookup_signed', args: { q: 'x' } }, thoughtSignature: 'c2lnLW14LTE=' });
        });

        it('reasoning: thought parts arrive as an unsigned thinking block; not sent back to Gemini', async () => {
            const m = f.gem.script(f.gem.marker('gthink'), { parts: [{ text: 'Thinking about it.', thought: true }, { text: '42' }],
                usage: { promptTokenCount: 20, candidatesTokenCount: 3, thoughtsTokenCount: 5, totalTokenCount: 28 } }, { text: 'ok' });
            const r = await client.messages.create({ model: 'flash', max_tokens: 64, thinking: { type: 'enabled', budget_tokens: 4096 }, messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'thinking', thinking: 'Thinking about it.', signature: '' }, { type: 'text', text: '42' }]);
            assert.equal(r.usage.output_tokens, 8);
            assert.deepEqual(f.gem.requestsFor(m)[0].json.generationConfig.thinkingConfig, { thinkingBudget: 4096, includeThoughts: true });
            await client.messages.create({ model: 'flash', max_tokens: 64, messages: [user(m), { role: 'assistant', content: r.content }, user('more')] });
            assert.deepEqual(f.gem.requestsFor(m)[1].json.contents[1], { role: 'model', parts: [{ text: '42' }] });
        });

        it('error: a 429 RESOURCE_EXHAUSTED is a RateLimitError of type rate_limit_error', async () => {
            const m = f.gem.script(f.gem.marker('g429'), { error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).' } });
            await rejects({ model: 'flash', max_tokens: 5, messages: [user(m)] }, Anthropic.RateLimitError, 429, 'rate_limit_error', /Resource has been exhausted/);
        });

        it('a broken stream makes the SDK raise', async () => {
            const m = f.gem.script(f.gem.marker('gbreak'), { chunks: [[{ text: 'one' }], [{ text: 'two' }], [{ text: 'three' }]], breakAfter: 2 });
            await broken({ model: 'flash', max_tokens: 20, messages: [user(m)] }, 'onetwo');
        });
    });

    // ------------------------------------------------------------------
    describe('cohere', () => {
        it('text whole and streamed, usage; the upstream gets Chat v2', async () => {
            const m = f.co.script(f.co.marker('ctext'), { text: 'Bonjour \u{1F44B}', usage: { input: 11, output: 2 } });
            const r = await client.messages.create({ model: 'command', max_tokens: 50, system: 'Be brief.', messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Bonjour \u{1F44B}' }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 11);
            assert.equal(r.usage.output_tokens, 2);
            const up = f.co.requestsFor(m)[0];
            assert.equal(up.url, '/v2/chat');
            assert.equal(up.headers.authorization, `Bearer ${KEYS.MX_COHERE_KEY}`);
            assert.deepEqual(up.json.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }]);
            const pieces = ['The', ' quick', ' brown \u00e9', ' fox \u{1F98A}'];
            const s = f.co.script(f.co.marker('cstream'), { chunks: pieces, usage: { input: 9, output: 4 } });
            const got = await streamed({ model: 'command', max_tokens: 50, messages: [user(s)] });
            assert.equal(got.text, pieces.join(''));
            assert.equal(got.msg.usage.input_tokens, 9);
            assert.equal(got.msg.usage.output_tokens, 4);
            assert.equal(f.co.requestsFor(s)[0].json.stream, true);
        });

        it('tool round trip (streamed calls): tool plan and tool results reach Cohere in its form', async () => {
            const m = f.co.script(f.co.marker('ctool'), {
                toolPlan: 'I will look up both cities.',
                tools: [{ id: 'get_weather_p1', name: 'get_weather', args: ['{"city":', '"Paris"}'] },
                    { id: 'get_weather_o2', name: 'get_weather', args: ['{"city":"Oslo"}'] }],
            });
            const { msg } = await streamed({ model: 'command', max_tokens: 100, tools: [WEATHER], messages: [user(m)] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content, [
                { type: 'thinking', thinking: 'I will look up both cities.', signature: '' },
                { type: 'tool_use', id: 'get_weather_p1', name: 'get_weather', input: { city: 'Paris' } },
                { type: 'tool_use', id: 'get_weather_o2', name: 'get_weather', input: { city: 'Oslo' } },
            ]);
            assert.deepEqual(f.co.requestsFor(m)[0].json.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER.input_schema } }]);
            const m2 = f.co.script(f.co.marker('ctool2'), { text: 'Paris 18C, Oslo 9C.' });
            const r = await client.messages.create({ model: 'command', max_tokens: 100, tools: [WEATHER],
                messages: [user(m2), { role: 'assistant', content: msg.content },
                    user([toolResult('get_weather_p1', '18C'), toolResult('get_weather_o2', '9C')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Paris 18C, Oslo 9C.' }]);
            const sent = f.co.requestsFor(m2)[0].json.messages;
            assert.equal(sent[1].role, 'assistant');
            assert.equal(sent[1].tool_plan, 'I will look up both cities.');
            assert.deepEqual(sent[1].tool_calls.map((c) => [c.id, c.type, c.function.name, JSON.parse(c.function.arguments)]),
                [['get_weather_p1', 'function', 'get_weather', { city: 'Paris' }], ['get_weather_o2', 'function', 'get_weather', { city: 'Oslo' }]]);
            assert.deepEqual(sent.slice(2), [{ role: 'tool', tool_call_id: 'get_weather_p1', content: '18C' }, { role: 'tool', tool_call_id: 'get_weather_o2', content: '9C' }]);
        });

        it('reasoning: thinking arrives as a thinking block and goes back as Cohere thinking content', async () => {
            const m = f.co.script(f.co.marker('cthink'), { thinking: 'Two plus two.', text: '4' });
            const r = await client.messages.create({ model: 'command', max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'thinking', thinking: 'Two plus two.', signature: '' }, { type: 'text', text: '4' }]);
            assert.deepEqual(f.co.requestsFor(m)[0].json.thinking, { type: 'enabled', token_budget: 1024 });
            const m2 = f.co.script(f.co.marker('cthink2'), { text: 'ok' });
            await client.messages.create({ model: 'command', max_tokens: 50, messages: [user(m), { role: 'assistant', content: r.content }, user(m2)] });
            assert.deepEqual(f.co.requestsFor(m2)[0].json.messages[1], { role: 'assistant', content: [{ type: 'thinking', thinking: 'Two plus two.' }, { type: 'text', text: '4' }] });
        });

        it('error: a 429 with retry-after is a RateLimitError of type rate_limit_error', async () => {
            const m = f.co.script(f.co.marker('c429'), { status: 429, message: 'trial key rate limit reached' });
            const e = await rejects({ model: 'command', max_tokens: 5, messages: [user(m)] }, Anthropic.RateLimitError, 429, 'rate_limit_error', /trial key/);
            assert.equal(e.headers.get('retry-after'), '7');
        });

        it('a broken stream makes the SDK raise', async () => {
            const m = f.co.script(f.co.marker('cbreak'), { chunks: ['par', 'tial', 'never'], breakAfter: 560 });
            await broken({ model: 'command', max_tokens: 20, messages: [user(m)] }, 'par');
        });
    });

    // ------------------------------------------------------------------
    describe('ollama', () => {
        it('text whole and streamed, usage; the upstream gets /api/chat', async () => {
            const m = f.ol.script(f.ol.marker('ltext'), { text: 'Salut \u{1F44B}', usage: { prompt: 14, eval: 3 } });
            const r = await client.messages.create({ model: 'llama', max_tokens: 40, system: 'Be brief.', messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Salut \u{1F44B}' }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.input_tokens, 14);
            assert.equal(r.usage.output_tokens, 3);
            const up = f.ol.requestsFor(m)[0];
            assert.equal(up.url, '/api/chat');
            assert.equal(up.json.stream, false);
            assert.deepEqual(up.json.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }]);
            assert.equal(up.json.options.num_predict, 40);
            const pieces = ['Un', ' deux \u00e9', ' trois \u{1F98A}'];
            const s = f.ol.script(f.ol.marker('lstream'), { chunks: pieces, usage: { prompt: 8, eval: 3 } });
            const got = await streamed({ model: 'llama', max_tokens: 40, messages: [user(s)] });
            assert.equal(got.text, pieces.join(''));
            assert.equal(got.msg.usage.input_tokens, 8);
            assert.equal(got.msg.usage.output_tokens, 3);
            assert.equal(f.ol.requestsFor(s)[0].json.stream, true);
        });

        it('tool round trip (streamed call): object arguments and tool_name reach Ollama', async () => {
            const m = f.ol.script(f.ol.marker('ltool'), { tools: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
            const { msg } = await streamed({ model: 'llama', max_tokens: 100, tools: [WEATHER], messages: [user(m)] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.equal(msg.content.length, 1);
            const call = msg.content[0];
            assert.equal(call.type, 'tool_use');
            assert.match(call.id, /^call_[0-9a-f]{24}$/);
            assert.deepEqual([call.name, call.input], ['get_weather', { city: 'Paris' }]);
            const m2 = f.ol.script(f.ol.marker('ltool2'), { text: 'Paris 18C.' });
            const r = await client.messages.create({ model: 'llama', max_tokens: 100, tools: [WEATHER],
                messages: [user(m2), { role: 'assistant', content: msg.content }, user([toolResult(call.id, '18C')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Paris 18C.' }]);
            const sent = f.ol.requestsFor(m2)[0].json.messages;
            assert.deepEqual(sent[1].tool_calls, [{ id: call.id, function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
            assert.deepEqual(sent[2], { role: 'tool', content: '18C', tool_call_id: call.id, tool_name: 'get_weather' });
        });

        it('reasoning: thinking arrives as a thinking block (streamed) and goes back as Ollama thinking', async () => {
            const m = f.ol.script(f.ol.marker('lthink'), { thinking: 'Add them.', chunks: ['4'] });
            const { msg } = await streamed({ model: 'llama', max_tokens: 20000, thinking: { type: 'enabled', budget_tokens: 16384 }, messages: [user(m)] });
            assert.deepEqual(msg.content, [{ type: 'thinking', thinking: 'Add them.', signature: '' }, { type: 'text', text: '4' }]);
            assert.equal(f.ol.requestsFor(m)[0].json.think, 'high');
            const m2 = f.ol.script(f.ol.marker('lthink2'), { text: 'ok' });
            await client.messages.create({ model: 'llama', max_tokens: 50, messages: [user(m), { role: 'assistant', content: msg.content }, user(m2)] });
            assert.deepEqual(f.ol.requestsFor(m2)[0].json.messages[1], { role: 'assistant', content: '4', thinking: 'Add them.' });
        });

        it('error: Ollama\'s 500 is an InternalServerError of type api_error', async () => {
            const m = f.ol.script(f.ol.marker('l500'), { status: 500, message: 'llama runner process has terminated' });
            await rejects({ model: 'llama', max_tokens: 5, messages: [user(m)] }, Anthropic.InternalServerError, 500, 'api_error', /terminated/);
        });

        it('a broken stream makes the SDK raise', async () => {
            const m = f.ol.script(f.ol.marker('lbreak'), { chunks: ['a', 'b', 'c'], breakAfter: 200 });
            await broken({ model: 'llama', max_tokens: 20, messages: [user(m)] }, 'a');
        });
    });

    // ------------------------------------------------------------------
    describe('huggingface, native TGI /generate', () => {
        const prompt = 'Hello there, how are you?';

        it('text whole and streamed, usage; the upstream gets a ChatML /generate body', async () => {
            const r = await client.messages.create({ model: 'hf-qwen', max_tokens: 50, system: 'Be brief.', messages: [user(prompt)] });
            assert.deepEqual(r.content, [{ type: 'text', text: `You said: ${prompt}` }]);
            assert.equal(r.stop_reason, 'end_turn');
            assert.equal(r.usage.output_tokens, 7);
            const up = f.tgi.requests.at(-1);
            assert.equal(up.path, '/generate');
            assert.equal(up.headers.authorization, `Bearer ${KEYS.MX_HF_KEY}`);
            assert.equal(up.json.inputs, `<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n`);
            assert.equal(up.json.parameters.max_new_tokens, 50);
            const got = await streamed({ model: 'hf-qwen', max_tokens: 50, messages: [user(prompt)] });
            assert.equal(got.text, `You said: ${prompt}`);
            const inputLength = f.tgi.requests.at(-1).json.inputs.split(/\s+/).length;
            assert.equal(got.msg.usage.input_tokens, inputLength);
            assert.equal(got.msg.usage.output_tokens, 8);
            assert.equal(f.tgi.requests.at(-1).path, '/generate_stream');
        });

        it('tools are a 400 invalid_request_error naming them, before any upstream call', async () => {
            const n = f.tgi.requests.length;
            await rejects({ model: 'hf-qwen', max_tokens: 50, tools: [WEATHER], messages: [user(prompt)] }, Anthropic.BadRequestError, 400,
                'invalid_request_error', /'tools' is not supported/);
            assert.equal(f.tgi.requests.length, n);
        });

        it('error: TGI\'s overload 429 is a 503 overloaded_error', async () => {
            const e = await client.messages.create({ model: 'hf-qwen', max_tokens: 5, messages: [user('overload')] }).catch((x) => x);
            assert.ok(e instanceof Anthropic.InternalServerError, String(e));
            assert.equal(e.status, 503);
            assert.equal(e.error.error.type, 'overloaded_error');
            assert.match(e.error.error.message, /overloaded/);
        });

        it('a broken stream makes the SDK raise', async () => {
            await broken({ model: 'hf-qwen', max_tokens: 20, messages: [user('break-stream please')] }, 'You said: ');
        });
    });

    // ------------------------------------------------------------------
    describe('huggingface, TGI Messages API (/v1)', () => {
        it('text whole and streamed, usage; the upstream gets /v1/chat/completions', async () => {
            const m = f.oai.script(f.oai.marker('htext'), { reply: 'Hi from TGI', usage: { prompt_tokens: 13, completion_tokens: 4 } });
            const r = await client.messages.create({ model: 'hf-v1', max_tokens: 60, messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Hi from TGI' }]);
            assert.equal(r.usage.input_tokens, 13);
            assert.equal(r.usage.output_tokens, 4);
            const up = f.oai.requestsFor(m)[0];
            assert.equal(up.path, '/v1/chat/completions');
            assert.equal(up.headers.authorization, `Bearer ${h.FAKE_KEY}`);
            assert.equal(up.json.model, 'Qwen/Qwen2.5-7B-Instruct');
            assert.equal(up.json.max_tokens, 60);
            const s = f.oai.script(f.oai.marker('hstream'), { chunks: ['Un', ' deux'], usage: { prompt_tokens: 6, completion_tokens: 2 } });
            const got = await streamed({ model: 'hf-v1', max_tokens: 60, messages: [user(s)] });
            assert.equal(got.text, 'Un deux');
            assert.equal(got.msg.usage.input_tokens, 6);
            assert.equal(got.msg.usage.output_tokens, 2);
        });

        it('tool round trip (streamed call): the tool_result reaches TGI as a tool message', async () => {
            const m = f.oai.script(f.oai.marker('htool'), sseReply([
                chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_h1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
                chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
                chunk({ tool_calls: [{ index: 0, function: { arguments: '"Lyon"}' } }] }),
                chunk({}, 'tool_calls'),
            ]));
            const { msg } = await streamed({ model: 'hf-v1', max_tokens: 100, tools: [WEATHER], messages: [user(m)] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'call_h1', name: 'get_weather', input: { city: 'Lyon' } }]);
            f.oai.script(m, { reply: 'Lyon: 20C.' });
            const r = await client.messages.create({ model: 'hf-v1', max_tokens: 100, tools: [WEATHER],
                messages: [user(m), { role: 'assistant', content: msg.content }, user([toolResult('call_h1', '20C')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Lyon: 20C.' }]);
            assert.deepEqual(f.oai.requestsFor(m)[1].json.messages.slice(1), [
                { role: 'assistant', content: null, tool_calls: [{ id: 'call_h1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lyon"}' } }] },
                { role: 'tool', tool_call_id: 'call_h1', content: '20C' },
            ]);
        });

        it('reasoning: reasoning_content arrives as an unsigned thinking block and goes back as reasoning_content', async () => {
            const m = f.oai.script(f.oai.marker('hreason'), jsonReply(completion({ content: 'yes', reasoning_content: 'hmm' }, 'stop', [4, 2])));
            const r = await client.messages.create({ model: 'hf-v1', max_tokens: 100, messages: [user(m)] });
            assert.deepEqual(r.content, [{ type: 'thinking', thinking: 'hmm', signature: '' }, { type: 'text', text: 'yes' }]);
            f.oai.script(m, { reply: 'fine' });
            await client.messages.create({ model: 'hf-v1', max_tokens: 100, messages: [user(m), { role: 'assistant', content: r.content }, user('go on')] });
            assert.deepEqual(f.oai.requestsFor(m)[1].json.messages[1], { role: 'assistant', content: 'yes', reasoning_content: 'hmm' });
        });

        it('error: a context-length 400 is a BadRequestError of type invalid_request_error', async () => {
            const m = f.oai.script(f.oai.marker('h400'), { status: 400, error: { error: { message: 'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096', type: 'validation', param: null, code: null } } });
            await rejects({ model: 'hf-v1', max_tokens: 5, messages: [user(m)] }, Anthropic.BadRequestError, 400, 'invalid_request_error', /must be <= 4096/);
        });

        it('a broken stream makes the SDK raise', async () => {
            const m = f.oai.script(f.oai.marker('hbreak'), { chunks: ['x', 'y', 'z'], breakAfter: 1 });
            await broken({ model: 'hf-v1', max_tokens: 20, messages: [user(m)] }, 'x');
        });
    });

    // ------------------------------------------------------------------
    describe('bedrock', () => {
        const last = () => f.br.requests.at(-1);
        const THINK = { type: 'enabled', budget_tokens: 1024 };

        it('text whole and streamed, usage; the upstream gets a signed Converse call', async () => {
            const r = await client.messages.create({ model: 'br-claude', max_tokens: 64, system: 'Be brief.', messages: [user('Hi there')] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Hello from Bedrock \u00e9\u{1F30B}!' }]);
            assert.equal(r.stop_reason, 'end_turn');
            const inputTokens = JSON.stringify(last().json.messages).length % 97 + 10;
            assert.equal(r.usage.input_tokens, inputTokens);
            assert.equal(r.usage.cache_read_input_tokens, 2);
            assert.equal(r.usage.output_tokens, 7);
            assert.equal(last().path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse');
            assert.match(last().headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDMATRIXBEDROCK123\//);
            assert.deepEqual(last().json.system, [{ text: 'Be brief.' }]);
            assert.deepEqual(last().json.messages, [{ role: 'user', content: [{ text: 'Hi there' }] }]);
            const got = await streamed({ model: 'br-claude', max_tokens: 64, messages: [user('Hi there')] });
            assert.equal(got.text, 'Hello from Bedrock \u00e9\u{1F30B}!');
            assert.equal(got.msg.usage.input_tokens, inputTokens);
            assert.equal(got.msg.usage.output_tokens, 7);
            assert.equal(last().path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream');
        });

        it('tool round trip (streamed parallel calls): the tool_results reach Bedrock as toolResult blocks', async () => {
            const tool = { ...WEATHER, name: 'weather' };
            const ask = user('What is the weather in Paris and Rome?');
            const { msg } = await streamed({ model: 'br-claude', max_tokens: 200, tools: [tool], messages: [ask] });
            assert.equal(msg.stop_reason, 'tool_use');
            assert.deepEqual(msg.content, [{ type: 'text', text: 'Checking.' },
                { type: 'tool_use', id: 'tooluse_paris01', name: 'weather', input: { city: 'Paris' } },
                { type: 'tool_use', id: 'tooluse_rome002', name: 'weather', input: { city: 'Rome', unit: 'C' } }]);
            assert.deepEqual(last().json.toolConfig.tools, [{ toolSpec: { name: 'weather', description: 'Weather for a city', inputSchema: { json: tool.input_schema } } }]);
            const r = await client.messages.create({ model: 'br-claude', max_tokens: 200, tools: [tool],
                messages: [ask, { role: 'assistant', content: msg.content }, user([toolResult('tooluse_paris01', '18C'), toolResult('tooluse_rome002', '21C')])] });
            assert.deepEqual(r.content, [{ type: 'text', text: 'Tool said: 18C, 21C' }]);
            assert.deepEqual(last().json.messages.slice(1), [
                { role: 'assistant', content: [{ text: 'Checking.' },
                    { toolUse: { toolUseId: 'tooluse_paris01', name: 'weather', input: { city: 'Paris' } } },
                    { toolUse: { toolUseId: 'tooluse_rome002', name: 'weather', input: { city: 'Rome', unit: 'C' } } }] },
                { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_paris01', content: [{ text: '18C' }] } },
                    { toolResult: { toolUseId: 'tooluse_rome002', content: [{ text: '21C' }] } }] },
            ]);
        });

        it('reasoning: signed reasoning (whole and streamed) goes back untouched; unsigned blocks never reach Bedrock', async () => {
            const ask = user('Please think: what is 2+2?');
            const r = await client.messages.create({ model: 'br-claude', max_tokens: 2000, thinking: THINK, messages: [ask] });
            const thinking = { type: 'thinking', thinking: 'Let me reason about this carefully.', signature: BEDROCK_SIG };
            assert.deepEqual(r.content, [thinking, { type: 'text', text: 'Hello from Bedrock \u00e9\u{1F30B}!' }]);
            assert.deepEqual(last().json.additionalModelRequestFields, { thinking: THINK });
            const s = await streamed({ model: 'br-claude', max_tokens: 2000, thinking: THINK, messages: [ask] });
            assert.deepEqual(s.msg.content, r.content);
            await client.messages.create({ model: 'br-claude', max_tokens: 2000, thinking: THINK, messages: [ask, { role: 'assistant', content: s.msg.content }, user('And now?')] });
            assert.deepEqual(last().json.messages[1].content[0], { reasoningContent: { reasoningText: { text: thinking.thinking, signature: BEDROCK_SIG } } });
            await client.messages.create({ model: 'br-claude', max_tokens: 200,
                messages: [ask, { role: 'assistant', content: [{ type: 'thinking', thinking: 'from elsewhere', signature: '' }, { type: 'text', text: '4' }] }, user('And now?')] });
            assert.deepEqual(last().json.messages[1], { role: 'assistant', content: [{ text: '4' }] });
        });

        it('error: a ThrottlingException is a RateLimitError of type rate_limit_error', async () => {
            await rejects({ model: 'br-claude', max_tokens: 5, messages: [user('[[throttle]]')] }, Anthropic.RateLimitError, 429, 'rate_limit_error', /Too many requests/);
        });

        it('a broken stream makes the SDK raise: connection reset, body ended inside a frame, exception frame', async () => {
            await broken({ model: 'br-claude', max_tokens: 20, messages: [user('[[reset]]')] }, 'Hello f');
            await broken({ model: 'br-claude', max_tokens: 20, messages: [user('[[truncate]]')] }, 'Hello f', 'api_error', /stream ended inside a frame/);
            await broken({ model: 'br-claude', max_tokens: 20, messages: [user('[[stream-exception]]')] }, 'Hello f', 'api_error',
                /modelStreamErrorException: The model stream failed midway/);
        });
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});

describe('make run\'s example config', () => {
    let gw;

    after(async () => { if (gw) await gw.kill(); });

    it('loads every provider and model: no "skipped" warning in the log', async () => {
        const config = fs.readFileSync(path.join(h.REPO, 'examples', 'switchboard.yaml'), 'utf8');
        // startGateway sets SWITCHBOARD_MASTER_KEY, a temp --db and a free --listen.
        gw = await h.startGateway({ port: 9, scheme: 'http' }, { config });
        const r = await h.request(gw, { method: 'GET', path: '/v1/models' });
        assert.equal(r.status, 200, r.text);
        const ids = r.json.data.map((m) => m.id);
        for (const id of ['gpt-4o-mini', 'claude-3-5-haiku', 'claude-sonnet-4', 'gemini-2.0-flash', 'llama-3.3-70b', 'deepseek-chat', 'llama3.2']) {
            assert.ok(ids.includes(id), `model ${id} missing from /v1/models: ${ids}`);
        }
        await h.assertCleanStop(gw);
        assert.doesNotMatch(gw.err + gw.out, /skipped/i, gw.logTail());
    });
});
