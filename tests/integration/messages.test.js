// SPDX-License-Identifier: MIT
//
// messages.test.js - the Anthropic front door (POST /v1/messages and
// /v1/messages/count_tokens) driven by the official `@anthropic-ai/sdk`
// through the real gateway, to an OpenAI-format fake upstream
// (lib/fake-upstream.js) and to the Anthropic fake (lib/fake-anthropic.js):
// messages, streams assembled by the SDK's stream helper, the tool-use round
// trip, reasoning both ways (signed thinking blocks untouched through the
// double translation; an OpenAI upstream's reasoning_content as an unsigned
// thinking block), errors in Anthropic's shape (401, 404, 429 with
// retry-after, 529), usage rows, and count_tokens forwarded or estimated.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk');
const { FakeUpstream } = require('./lib/fake-upstream');
const { FakeAnthropic } = require('./lib/fake-anthropic');
const h = require('./lib/harness');

const ANT_KEY = 'sk-ant-fake-key-0123456789abcdef';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// OpenAI-format answers for scenarios the fake upstream has no keys for.
const completion = (message, finish, usage) => ({
    id: 'chatcmpl-fd1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }],
    usage: { prompt_tokens: usage[0], completion_tokens: usage[1], total_tokens: usage[0] + usage[1] },
});
const chunk = (delta, finish = null) => ({
    id: 'chatcmpl-fd2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, finish_reason: finish }],
});
const usageChunk = (p, c) => ({
    id: 'chatcmpl-fd2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini',
    choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
});
const jsonReply = (body) => (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'application/json' });
    ctx.res.end(JSON.stringify(body));
};
const sseReply = (chunks) => async (ctx) => {
    ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const c of chunks) {
        ctx.res.write(`data: ${JSON.stringify(c)}\n\n`);
        await sleep(3);
    }
    ctx.res.end('data: [DONE]\n\n');
};

describe('/v1/messages through the @anthropic-ai/sdk', () => {
    let fake;
    let ant;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeUpstream().start();
        ant = await new FakeAnthropic({ apiKey: ANT_KEY }).start();
        gw = await h.startGateway(fake, {
            env: { FAKE_ANTHROPIC_KEY: ANT_KEY },
            providers: [{ id: 'claude', type: 'anthropic', base_url: ant.url, api_key: 'env:FAKE_ANTHROPIC_KEY', timeout_ms: 5000 }],
            models: [{ id: 'claude-test', provider: 'claude', upstream_model: 'claude-sonnet-4-20250514', max_output_tokens: 4000,
                capabilities: { streaming: true, tools: true, vision: true } }],
        });
        client = new Anthropic({ baseURL: gw.url, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
        if (ant) await ant.stop();
    });

    const usageRow = (id) => h.eventually(() => h.sql(gw, `SELECT * FROM usage_logs WHERE request_id = '${id}'`)[0]);

    it('create: an OpenAI upstream answers an Anthropic client; headers and a usage row', async () => {
        const m = fake.script(fake.marker('create'), { reply: 'Hello from OpenAI', usage: { prompt_tokens: 21, completion_tokens: 3 } });
        const { data, response } = await client.messages.create({
            model: 'gpt-test', max_tokens: 100, system: 'Be brief.', temperature: 0.5,
            messages: [{ role: 'user', content: m }],
        }).withResponse();
        assert.equal(data.type, 'message');
        assert.equal(data.role, 'assistant');
        assert.equal(data.model, 'gpt-test');
        assert.match(data.id, /^msg_/);
        assert.deepEqual(data.content, [{ type: 'text', text: 'Hello from OpenAI' }]);
        assert.equal(data.stop_reason, 'end_turn');
        assert.equal(data.usage.input_tokens, 21);
        assert.equal(data.usage.output_tokens, 3);
        assert.equal(response.headers.get('x-switchboard-provider'), 'fake');
        assert.equal(response.headers.get('x-switchboard-model'), 'gpt-test');
        assert.equal(response.headers.get('x-switchboard-fallbacks'), '0');
        const rid = response.headers.get('x-request-id');
        assert.ok(rid);
        const up = fake.requestsFor(m)[0].json;
        assert.deepEqual(up.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }]);
        assert.equal(up.model, 'gpt-4o-mini');
        assert.equal(up.max_tokens, 100);
        assert.equal(up.temperature, 0.5);
        const row = await usageRow(rid);
        assert.ok(row, 'one usage row');
        assert.equal(row.prompt_tokens, 21);
        assert.equal(row.completion_tokens, 3);
        assert.equal(row.model, 'gpt-test');
        assert.equal(row.status, 'ok');
        assert.equal(row.streamed, 0);
    });

    it('stream: the SDK stream helper assembles the message from an OpenAI stream', async () => {
        const m = fake.script(fake.marker('stream'), { chunks: ['Once ', 'upon ', 'a ', 'time \u00e9\u{1F98A}'], usage: { prompt_tokens: 9, completion_tokens: 4 } });
        const stream = client.messages.stream({ model: 'gpt-test', max_tokens: 50, messages: [{ role: 'user', content: m }] });
        const events = [];
        stream.on('streamEvent', (e) => events.push(e.type));
        let text = '';
        stream.on('text', (t) => { text += t; });
        const msg = await stream.finalMessage();
        assert.equal(text, 'Once upon a time \u00e9\u{1F98A}');
        assert.equal(msg.content.length, 1);
        assert.equal(msg.content[0].type, 'text');
        assert.equal(msg.content[0].text, text);
        assert.equal(msg.stop_reason, 'end_turn');
        assert.equal(msg.usage.output_tokens, 4);
        assert.equal(msg.usage.input_tokens, 9);
        assert.equal(events[0], 'message_start');
        assert.equal(events.at(-1), 'message_stop');
        assert.ok(events.includes('content_block_delta'));
        const up = fake.requestsFor(m)[0].json;
        assert.equal(up.stream, true);
        assert.deepEqual(up.stream_options, { include_usage: true });
        const sr = await h.eventually(() => h.sql(gw, `SELECT * FROM usage_logs WHERE model = 'gpt-test' AND streamed = 1 AND prompt_tokens = 9`)[0]);
        assert.ok(sr, 'a usage row for the streamed request');
        assert.equal(sr.completion_tokens, 4);
    });

    it('tool use round trip with an OpenAI upstream (whole and streamed)', async () => {
        const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
        const call = { id: 'call_w1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
        const m = fake.script(fake.marker('tools'), jsonReply(completion({ content: null, tool_calls: [call] }, 'tool_calls', [30, 8])));
        const first = await client.messages.create({ model: 'gpt-test', max_tokens: 100, tools, messages: [{ role: 'user', content: m }] });
        assert.equal(first.stop_reason, 'tool_use');
        assert.deepEqual(first.content, [{ type: 'tool_use', id: 'call_w1', name: 'get_weather', input: { city: 'Paris' } }]);
        const up = fake.requestsFor(m)[0].json;
        assert.deepEqual(up.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: tools[0].input_schema } }]);

        // The follow-up carries the tool result: it must reach OpenAI as a tool message.
        fake.script(m, jsonReply(completion({ content: 'It is sunny.' }, 'stop', [40, 4])));
        const second = await client.messages.create({
            model: 'gpt-test', max_tokens: 100, tools,
            messages: [
                { role: 'user', content: m },
                { role: 'assistant', content: first.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_w1', content: '22C sunny' }] },
            ],
        });
        assert.deepEqual(second.content, [{ type: 'text', text: 'It is sunny.' }]);
        const up2 = fake.requestsFor(m)[1].json;
        assert.deepEqual(up2.messages.slice(1), [
            { role: 'assistant', content: null, tool_calls: [call] },
            { role: 'tool', tool_call_id: 'call_w1', content: '22C sunny' },
        ]);

        // Streamed: arguments in pieces become input_json_delta; the SDK assembles the input.
        const s = fake.script(fake.marker('toolstream'), sseReply([
            chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_s1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Os' } }] }),
            chunk({ tool_calls: [{ index: 0, function: { arguments: 'lo"}' } }] }),
            chunk({}, 'tool_calls'),
            usageChunk(12, 6),
        ]));
        const msg = await client.messages.stream({ model: 'gpt-test', max_tokens: 100, tools, messages: [{ role: 'user', content: s }] }).finalMessage();
        assert.equal(msg.stop_reason, 'tool_use');
        assert.deepEqual(msg.content, [{ type: 'tool_use', id: 'call_s1', name: 'get_weather', input: { city: 'Oslo' } }]);
        assert.equal(msg.usage.output_tokens, 6);
    });

    it('an OpenAI upstream\'s reasoning arrives as an unsigned thinking block and goes back as reasoning_content', async () => {
        const m = fake.script(fake.marker('reason'), jsonReply(completion({ content: '7', reasoning_content: 'three plus four' }, 'stop', [5, 2])));
        const r = await client.messages.create({ model: 'gpt-test', max_tokens: 100, messages: [{ role: 'user', content: m }] });
        assert.deepEqual(r.content, [{ type: 'thinking', thinking: 'three plus four', signature: '' }, { type: 'text', text: '7' }]);
        const s = fake.script(fake.marker('reasonstream'), sseReply([
            chunk({ role: 'assistant', reasoning_content: 'thr' }), chunk({ reasoning_content: 'ee' }),
            chunk({ content: 'ok' }), chunk({}, 'stop'), usageChunk(3, 2),
        ]));
        const sm = await client.messages.stream({ model: 'gpt-test', max_tokens: 100, messages: [{ role: 'user', content: s }] }).finalMessage();
        assert.deepEqual(sm.content.map((b) => [b.type, b.thinking ?? b.text, b.signature]), [['thinking', 'three', ''], ['text', 'ok', undefined]]);
        fake.script(m, { reply: 'fine' });
        await client.messages.create({
            model: 'gpt-test', max_tokens: 100,
            messages: [{ role: 'user', content: m }, { role: 'assistant', content: r.content }, { role: 'user', content: 'go on' }],
        });
        const up = fake.requestsFor(m)[1].json;
        assert.deepEqual(up.messages[1], { role: 'assistant', content: '7', reasoning_content: 'three plus four' });
    });

    it('Anthropic upstream: thinking blocks round trip with the signature untouched (whole and streamed)', async () => {
        const sig = 'EqQBCkYIBxgCKkB+signature/with=padding==';
        const blocks = [{ type: 'thinking', thinking: 'Let me think about it.', signature: sig }, { type: 'text', text: 'Forty-two.' }];
        const m = ant.script(ant.marker('think'), { blocks, usage: { input_tokens: 30, output_tokens: 12 } });
        const r = await client.messages.create({
            model: 'claude-test', max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 1024 },
            messages: [{ role: 'user', content: m }],
        });
        assert.deepEqual(r.content, blocks);
        assert.equal(r.model, 'claude-test');
        assert.equal(r.usage.input_tokens, 30);
        const up = ant.requestsFor(m)[0];
        assert.equal(up.url, '/v1/messages');
        assert.deepEqual(up.json.thinking, { type: 'enabled', budget_tokens: 1024 });

        // Sent back on the next turn: the same block, first, exactly.
        ant.script(m, { blocks: [{ type: 'text', text: 'Sure.' }] });
        await client.messages.create({
            model: 'claude-test', max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 1024 },
            messages: [{ role: 'user', content: m }, { role: 'assistant', content: r.content }, { role: 'user', content: 'Why?' }],
        });
        const back = ant.requestsFor(m)[1].json.messages[1];
        assert.equal(back.role, 'assistant');
        assert.deepEqual(back.content[0], blocks[0]);
        assert.deepEqual(back.content[1], { type: 'text', text: 'Forty-two.' });

        // Streamed through both translations: thinking_delta and signature_delta rebuild it.
        const s = ant.script(ant.marker('thinkstream'), { blocks, usage: { input_tokens: 30, output_tokens: 12 } });
        const sm = await client.messages.stream({
            model: 'claude-test', max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 1024 },
            messages: [{ role: 'user', content: s }],
        }).finalMessage();
        assert.deepEqual(sm.content.map((b) => [b.type, b.thinking ?? b.text, b.signature]),
            [['thinking', blocks[0].thinking, sig], ['text', 'Forty-two.', undefined]]);
        assert.equal(sm.stop_reason, 'end_turn');
        assert.equal(sm.usage.output_tokens, 12);
    });

    it('Anthropic upstream: tool use round trip (tool_result reaches Anthropic as tool_result)', async () => {
        const tools = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
        const m = ant.script(ant.marker('anttool'), { blocks: [{ type: 'tool_use', id: 'toolu_01', name: 'lookup', input: { q: 'x y' } }] });
        const first = await client.messages.stream({ model: 'claude-test', max_tokens: 200, tools, messages: [{ role: 'user', content: m }] }).finalMessage();
        assert.equal(first.stop_reason, 'tool_use');
        assert.deepEqual(first.content, [{ type: 'tool_use', id: 'toolu_01', name: 'lookup', input: { q: 'x y' } }]);
        ant.script(m, { blocks: [{ type: 'text', text: 'found' }] });
        const second = await client.messages.create({
            model: 'claude-test', max_tokens: 200, tools,
            messages: [{ role: 'user', content: m }, { role: 'assistant', content: first.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'result text' }] }],
        });
        assert.deepEqual(second.content, [{ type: 'text', text: 'found' }]);
        const msgs = ant.requestsFor(m)[1].json.messages;
        assert.deepEqual(msgs[1].content, [{ type: 'tool_use', id: 'toolu_01', name: 'lookup', input: { q: 'x y' } }]);
        assert.equal(msgs[2].role, 'user');
        assert.equal(msgs[2].content[0].type, 'tool_result');
        assert.equal(msgs[2].content[0].tool_use_id, 'toolu_01');
    });

    it('errors come in Anthropic\'s shape: 401, 404, 400, upstream 429 with retry-after, 529', async () => {
        const bad = new Anthropic({ baseURL: gw.url, apiKey: 'sk-sb-not-a-real-key-000000000000', maxRetries: 0 });
        const e401 = await bad.messages.create({ model: 'gpt-test', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.ok(e401 instanceof Anthropic.AuthenticationError, String(e401));
        assert.equal(e401.status, 401);
        assert.equal(e401.error.type, 'error');
        assert.equal(e401.error.error.type, 'authentication_error');
        assert.ok(!JSON.stringify(e401.error).includes('sk-sb-not-a-real-key'));

        const e404 = await client.messages.create({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.ok(e404 instanceof Anthropic.NotFoundError, String(e404));
        assert.equal(e404.error.error.type, 'not_found_error');
        assert.match(e404.error.error.message, /no-such-model/);

        const e400 = await client.messages.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.ok(e400 instanceof Anthropic.BadRequestError, String(e400));
        assert.equal(e400.error.error.type, 'invalid_request_error');
        assert.match(e400.error.error.message, /max_tokens/);

        const m = fake.script(fake.marker('limited'), { status: 429, headers: { 'retry-after': '7' },
            error: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } } });
        const e429 = await client.messages.create({ model: 'gpt-test', max_tokens: 5, messages: [{ role: 'user', content: m }] }).catch((e) => e);
        assert.ok(e429 instanceof Anthropic.RateLimitError, String(e429));
        assert.equal(e429.status, 429);
        assert.equal(e429.headers.get('retry-after'), '7');
        assert.equal(e429.error.error.type, 'rate_limit_error');
        assert.match(e429.error.error.message, /Rate limit reached/);

        const o = ant.script(ant.marker('overloaded'), { error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } });
        const e529 = await client.messages.create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: o }] }).catch((e) => e);
        assert.ok(e529 instanceof Anthropic.APIError, String(e529));
        assert.ok([503, 529].includes(e529.status), `status ${e529.status}`);
        assert.equal(e529.error.error.type, 'overloaded_error');

        // The same errors in a stream's head come back before any event.
        const es = await client.messages.stream({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
            .finalMessage().catch((e) => e);
        assert.ok(es instanceof Anthropic.NotFoundError, String(es));
    });

    it('a broken upstream stream ends the client stream with an error event', async () => {
        const m = fake.script(fake.marker('broken'), { chunks: ['a', 'b', 'c', 'd'], breakAfter: 2 });
        const r = await h.request(gw, {
            path: '/v1/messages', headers: { 'content-type': 'application/json' },
            body: { model: 'gpt-test', max_tokens: 20, stream: true, messages: [{ role: 'user', content: m }] },
        });
        assert.equal(r.status, 200);
        assert.match(r.text, /^event: message_start\n/);
        assert.match(r.text, /event: error\ndata: \{"type":"error","error":\{"type":"[a-z_]+","message":"[^"]+"\}\}\n\n$/);
        assert.ok(!r.text.includes('message_stop'));
    });

    it('count_tokens: forwarded to Anthropic, estimated for an OpenAI upstream', async () => {
        const m = ant.script(ant.marker('count'), { inputTokens: 1234 });
        const { data, response } = await client.messages.countTokens({
            model: 'claude-test', system: 'Be brief.', messages: [{ role: 'user', content: m }],
        }).withResponse();
        assert.deepEqual(data, { input_tokens: 1234 });
        assert.equal(response.headers.get('x-switchboard-estimated'), null);
        assert.equal(response.headers.get('x-switchboard-provider'), 'claude');
        const up = ant.requestsFor(m)[0];
        assert.equal(up.url, '/v1/messages/count_tokens');
        assert.equal(up.headers['x-api-key'], ANT_KEY);
        assert.equal(up.headers['anthropic-version'], '2023-06-01');
        assert.deepEqual(up.json, { model: 'claude-sonnet-4-20250514', system: 'Be brief.', messages: [{ role: 'user', content: m }] });

        // Estimated: ceil(bytes/4) of "Be brief." (9) + "user" (4) + the text, + 4 per message.
        const text = 'Hello there, how are you?';
        const est = await client.messages.countTokens({ model: 'gpt-test', system: 'Be brief.', messages: [{ role: 'user', content: text }] }).withResponse();
        assert.deepEqual(est.data, { input_tokens: Math.ceil((9 + 4 + text.length) / 4) + 4 });
        assert.equal(est.response.headers.get('x-switchboard-estimated'), 'true');
        assert.equal(est.response.headers.get('x-switchboard-provider'), 'fake');

        // Upstream errors keep Anthropic's shape; bad requests are refused before any call.
        const u = ant.script(ant.marker('countfail'), { error: { status: 429, type: 'rate_limit_error', message: 'slow down', headers: { 'retry-after': '3' } } });
        const e = await client.messages.countTokens({ model: 'claude-test', messages: [{ role: 'user', content: u }] }).catch((x) => x);
        assert.ok(e instanceof Anthropic.RateLimitError, String(e));
        assert.equal(e.headers.get('retry-after'), '3');
        const e2 = await client.messages.countTokens({ model: 'gpt-test', messages: [] }).catch((x) => x);
        assert.ok(e2 instanceof Anthropic.BadRequestError, String(e2));
        assert.equal(e2.error.error.type, 'invalid_request_error');
        const e3 = await client.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).catch((x) => x);
        assert.ok(e3 instanceof Anthropic.NotFoundError, String(e3));
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
