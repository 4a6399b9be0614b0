// SPDX-License-Identifier: MIT
//
// anthropic.test.js - the official `openai` SDK through the real gateway to
// a fake Anthropic Messages API (lib/fake-anthropic.js): chat and streams,
// usage with cache reads, the tool-call round trip in Anthropic's own form,
// the thinking round trip (signatures back untouched, adjustments reported
// in x-switchboard-adjusted), Anthropic errors as OpenAI errors, a mid-stream
// error event and a truncated stream, and no embeddings.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeAnthropic } = require('./lib/fake-anthropic');
const h = require('./lib/harness');

const KEY = 'sk-ant-fake-key-0123456789abcdef';

describe('anthropic adapter through the openai SDK', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeAnthropic({ apiKey: KEY }).start();
        gw = await h.startGateway(fake, {
            env: { FAKE_ANTHROPIC_KEY: KEY, FAKE_ANTHROPIC_WRONG: 'sk-ant-wrong-key-999999' },
            providers: [
                { id: 'claude', type: 'anthropic', base_url: fake.url, api_key: 'env:FAKE_ANTHROPIC_KEY', timeout_ms: 5000 },
                { id: 'claude-bad', type: 'anthropic', base_url: fake.url, api_key: 'env:FAKE_ANTHROPIC_WRONG' },
            ],
            models: [
                { id: 'claude-test', provider: 'claude', upstream_model: 'claude-sonnet-4-20250514', max_output_tokens: 2000,
                    capabilities: { streaming: true, tools: true, vision: true } },
                { id: 'claude-badkey', provider: 'claude-bad', upstream_model: 'claude-sonnet-4-20250514' },
            ],
        });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat: the Messages request as documented, the answer as chat.completion', async () => {
        const m = fake.script(fake.marker('chat'), {
            blocks: [{ type: 'text', text: 'Bonjour ' }, { type: 'text', text: '\u{1F44B}' }],
            usage: { input_tokens: 12, cache_read_input_tokens: 100, cache_creation_input_tokens: 3, output_tokens: 4 },
        });
        const { data, response } = await client.chat.completions.create({
            model: 'claude-test', temperature: 0.3, stop: ['END'],
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
        }).withResponse();
        assert.equal(data.object, 'chat.completion');
        assert.match(data.id, /^chatcmpl-msg_fake_/);
        assert.equal(data.model, 'claude-sonnet-4-20250514');
        assert.equal(data.choices[0].message.content, 'Bonjour \u{1F44B}');
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.deepEqual(data.usage, { prompt_tokens: 115, completion_tokens: 4, total_tokens: 119, prompt_tokens_details: { cached_tokens: 100, cache_creation_tokens: 3 } });
        assert.equal(response.headers.get('x-switchboard-provider'), 'claude');
        assert.equal(response.headers.get('x-switchboard-adjusted'), null);
        const up = fake.requestsFor(m)[0];
        assert.equal(up.url, '/v1/messages');
        assert.equal(up.headers['x-api-key'], KEY);
        assert.equal(up.headers['anthropic-version'], '2023-06-01');
        assert.equal(up.headers.authorization, undefined);
        assert.equal(up.raw, JSON.stringify({
            model: 'claude-sonnet-4-20250514', max_tokens: 2000, system: 'Be brief.',
            messages: [{ role: 'user', content: m }], stop_sequences: ['END'], temperature: 0.3,
        }));
    });

    it('stream: role first, text deltas equal to the whole answer, usage chunk when asked', async () => {
        const text = 'The quick brown fox \u00e9\u{1F98A} jumps';
        const m = fake.script(fake.marker('stream'), { blocks: [{ type: 'text', text }], usage: { input_tokens: 9, output_tokens: 7 } });
        const stream = await client.chat.completions.create({
            model: 'claude-test', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: m }],
        });
        let got = '';
        let first = null;
        let finish = null;
        let usage = null;
        for await (const chunk of stream) {
            assert.equal(chunk.object, 'chat.completion.chunk');
            if (!first) first = chunk;
            if (chunk.usage) usage = chunk.usage;
            const c = chunk.choices[0];
            if (!c) continue;
            got += c.delta.content || '';
            if (c.finish_reason) finish = c.finish_reason;
        }
        assert.equal(first.choices[0].delta.role, 'assistant');
        assert.equal(got, text);
        assert.equal(finish, 'stop');
        assert.equal(usage.prompt_tokens, 9);
        assert.equal(usage.completion_tokens, 7);
        assert.equal(fake.requestsFor(m)[0].json.stream, true);
    });

    it('tools: parallel tool_use answers, then the results reach Anthropic as one user turn', async () => {
        const m = fake.script(fake.marker('tools'), {
            blocks: [{ type: 'text', text: 'Checking.' },
                { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
                { type: 'tool_use', id: 'toolu_02', name: 'get_weather', input: { city: 'Rome', units: ['c'] } }],
        });
        const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
        const messages = [{ role: 'user', content: `${m} weather?` }];
        // Streamed: arguments arrive in fragments and must reassemble.
        const stream = await client.chat.completions.create({ model: 'claude-test', stream: true, tools, tool_choice: 'required', messages });
        const calls = [];
        let finish = null;
        for await (const chunk of stream) {
            const c = chunk.choices[0];
            if (!c) continue;
            if (c.finish_reason) finish = c.finish_reason;
            for (const t of c.delta.tool_calls || []) {
                if (!calls[t.index]) calls[t.index] = { id: t.id, name: t.function.name, arguments: '' };
                calls[t.index].arguments += t.function.arguments || '';
            }
        }
        assert.equal(finish, 'tool_calls');
        assert.deepEqual(calls.map((c) => [c.id, c.name, JSON.parse(c.arguments)]),
            [['toolu_01', 'get_weather', { city: 'Paris' }], ['toolu_02', 'get_weather', { city: 'Rome', units: ['c'] }]]);
        const first = fake.requestsFor(m)[0].json;
        assert.deepEqual(first.tools, [{ name: 'get_weather', description: 'Weather', input_schema: tools[0].function.parameters }]);
        assert.deepEqual(first.tool_choice, { type: 'any' });
        // Whole: the same answer as tool_calls, then the follow-up.
        const whole = await client.chat.completions.create({ model: 'claude-test', tools, messages });
        const msg = whole.choices[0].message;
        assert.equal(msg.content, 'Checking.');
        assert.equal(whole.choices[0].finish_reason, 'tool_calls');
        assert.deepEqual(msg.tool_calls.map((t) => JSON.parse(t.function.arguments)), [{ city: 'Paris' }, { city: 'Rome', units: ['c'] }]);
        const m2 = fake.script(fake.marker('tools2'), { blocks: [{ type: 'text', text: 'Paris 18C, Rome 21C.' }] });
        const follow = await client.chat.completions.create({
            model: 'claude-test', tools,
            messages: [...messages, msg,
                { role: 'tool', tool_call_id: 'toolu_01', content: '18C' },
                { role: 'tool', tool_call_id: 'toolu_02', content: `21C ${m2}` }],
        });
        assert.equal(follow.choices[0].message.content, 'Paris 18C, Rome 21C.');
        const sent = fake.requestsFor(m2)[0].json.messages;
        assert.deepEqual(sent.slice(1), [
            { role: 'assistant', content: [{ type: 'text', text: 'Checking.' },
                { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
                { type: 'tool_use', id: 'toolu_02', name: 'get_weather', input: { city: 'Rome', units: ['c'] } }] },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '18C' },
                { type: 'tool_result', tool_use_id: 'toolu_02', content: `21C ${m2}` }] },
        ]);
    });

    it('thinking: reasoning streamed, signed blocks returned, sent back untouched; adjustments reported', async () => {
        const sig = 'EqQBCkYIARgCKkB+sig/with==';
        const m = fake.script(fake.marker('think'), {
            blocks: [{ type: 'thinking', thinking: 'User wants weather. Call the tool.', signature: sig },
                { type: 'tool_use', id: 'toolu_T', name: 'get_weather', input: { city: 'Oslo' } }],
            usage: { input_tokens: 30, output_tokens: 80 },
        });
        const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
        const messages = [{ role: 'user', content: m }];
        const { data: stream, response } = await client.chat.completions.create({
            model: 'claude-test', stream: true, reasoning_effort: 'high', max_tokens: 500, temperature: 0.2, tools, messages,
        }).withResponse();
        assert.equal(response.headers.get('x-switchboard-adjusted'), 'max_tokens=16884,temperature=1');
        let reasoning = '';
        let blocks = [];
        const calls = [];
        for await (const chunk of stream) {
            const d = chunk.choices[0] && chunk.choices[0].delta;
            if (!d) continue;
            reasoning += d.reasoning_content || '';
            if (d.thinking_blocks) blocks = blocks.concat(d.thinking_blocks);
            for (const t of d.tool_calls || []) {
                if (!calls[t.index]) calls[t.index] = { id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } };
                calls[t.index].function.arguments += t.function.arguments || '';
            }
        }
        assert.equal(reasoning, 'User wants weather. Call the tool.');
        assert.deepEqual(blocks, [{ type: 'thinking', thinking: reasoning, signature: sig }]);
        const up = fake.requestsFor(m)[0].json;
        assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 16384 });
        assert.equal(up.max_tokens, 16884);
        assert.equal(up.temperature, 1);
        // The follow-up carries the blocks back; the fake rejects unsigned or altered order.
        const m2 = fake.script(fake.marker('think2'), { blocks: [{ type: 'text', text: 'Oslo: 3C.' }] });
        const follow = await client.chat.completions.create({
            model: 'claude-test', reasoning_effort: 'high', tools,
            messages: [...messages,
                { role: 'assistant', content: null, reasoning_content: reasoning, thinking_blocks: blocks, tool_calls: calls },
                { role: 'tool', tool_call_id: 'toolu_T', content: `3C ${m2}` }],
        });
        assert.equal(follow.choices[0].message.content, 'Oslo: 3C.');
        const back = fake.requestsFor(m2)[0].json.messages[1];
        assert.deepEqual(back.content[0], { type: 'thinking', thinking: 'User wants weather. Call the tool.', signature: sig });
        assert.equal(back.content[1].type, 'tool_use');
        // Whole response: reasoning_content and thinking_blocks on the message.
        const whole = await client.chat.completions.create({ model: 'claude-test', reasoning_effort: 'low', tools, messages });
        assert.equal(whole.choices[0].message.reasoning_content, 'User wants weather. Call the tool.');
        assert.deepEqual(whole.choices[0].message.thinking_blocks, [{ type: 'thinking', thinking: reasoning, signature: sig }]);
    });

    it('errors keep their meaning as OpenAI errors', async () => {
        const cases = [
            { error: { status: 400, type: 'invalid_request_error', message: 'prompt is too long: 250000 tokens > 200000 maximum' },
                cls: OpenAI.BadRequestError, status: 400, code: 'context_length_exceeded' },
            { error: { status: 429, type: 'rate_limit_error', message: 'Number of request tokens has exceeded your rate limit', headers: { 'retry-after': '7' } },
                cls: OpenAI.RateLimitError, status: 429, retryAfter: '7' },
            { error: { status: 529, type: 'overloaded_error', message: 'Overloaded' },
                cls: OpenAI.InternalServerError, status: 503, type: 'service_unavailable' },
            { error: { status: 404, type: 'not_found_error', message: 'model: claude-nope' },
                cls: OpenAI.NotFoundError, status: 404, code: 'model_not_found' },
            { error: { status: 403, type: 'permission_error', message: 'Your API key does not have permission' },
                cls: OpenAI.PermissionDeniedError, status: 403 },
        ];
        for (const c of cases) {
            const m = fake.script(fake.marker('err'), { error: c.error });
            await assert.rejects(client.chat.completions.create({ model: 'claude-test', messages: [{ role: 'user', content: m }] }), (e) => {
                assert.ok(e instanceof c.cls, `${c.error.type}: got ${e.constructor.name} ${e.status}`);
                assert.equal(e.status, c.status);
                if (c.code) assert.equal(e.code, c.code);
                if (c.type) assert.equal(e.type, c.type);
                if (c.retryAfter) assert.equal(e.headers.get('retry-after'), c.retryAfter);
                assert.ok(e.message.includes(c.error.message.slice(0, 20)), e.message);
                return true;
            });
        }
        // A wrong key at Anthropic: 401 invalid_api_key, and the key is never echoed.
        await assert.rejects(client.chat.completions.create({ model: 'claude-badkey', messages: [{ role: 'user', content: 'x' }] }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError);
            assert.equal(e.code, 'invalid_api_key');
            assert.ok(!JSON.stringify(e.error).includes('sk-ant-wrong'));
            return true;
        });
        // What Anthropic cannot do is refused before any upstream call.
        const before = fake.requests.length;
        await assert.rejects(client.chat.completions.create({ model: 'claude-test', n: 2, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.BadRequestError && /'n'/.test(e.message));
        await assert.rejects(client.embeddings.create({ model: 'claude-test', input: 'x' }),
            // claude-test declares its capabilities without embeddings: the proxy's capability
            // check refuses first; an undeclared model gets the adapter's "no embeddings endpoint".
            (e) => e instanceof OpenAI.BadRequestError && /no embeddings|'embeddings'/.test(e.message));
        assert.equal(fake.requests.length, before);
    });

    it('an error event mid-stream and a truncated stream end the stream with an APIError', async () => {
        for (const script of [
            { blocks: [{ type: 'text', text: 'partial' }, { type: 'text', text: 'never' }], streamError: { afterBlocks: 1, type: 'overloaded_error', message: 'Overloaded' } },
            { blocks: [{ type: 'text', text: 'partial' }, { type: 'text', text: 'never' }], truncateAfterBlocks: 1 },
        ]) {
            const m = fake.script(fake.marker('broken'), script);
            const stream = await client.chat.completions.create({ model: 'claude-test', stream: true, messages: [{ role: 'user', content: m }] });
            let text = '';
            await assert.rejects(async () => {
                for await (const chunk of stream) text += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
            }, (e) => e instanceof OpenAI.APIError);
            assert.equal(text, 'partial');
        }
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
