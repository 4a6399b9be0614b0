// SPDX-License-Identifier: MIT
//
// cohere.test.js - the official `openai` SDK through the real gateway to a fake Cohere
// (lib/fake-cohere.js): chat, streaming with usage, a tool-call round trip (the tool result
// and the tool plan reach Cohere in its own form), reasoning, embeddings (float and the SDK's
// base64), every error class in OpenAI's shape, an ERROR finish mid-stream and a broken stream.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeCohere } = require('./lib/fake-cohere');
const h = require('./lib/harness');

const KEY = 'co-integration-key-0123456789';

describe('cohere adapter', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeCohere({ apiKey: KEY, models: ['command-a-03-2025', 'embed-v4.0'] }).start();
        const base = `http://127.0.0.1:${fake.port}`;
        const providers = [
            { id: 'co', type: 'cohere', base_url: base, api_key: 'env:COHERE_TEST_KEY' },
            { id: 'co-badkey', type: 'cohere', base_url: base, api_key: 'env:COHERE_BAD_KEY' },
        ];
        const models = [
            { id: 'command', provider: 'co', upstream_model: 'command-a-03-2025' },
            { id: 'command-gone', provider: 'co', upstream_model: 'command-r-1999' },
            { id: 'command-badkey', provider: 'co-badkey', upstream_model: 'command-a-03-2025' },
            { id: 'embed', provider: 'co', upstream_model: 'embed-v4.0', capabilities: { embeddings: true } },
        ];
        const yaml = (server) => [
            `server: ${h.flow(server)}`, 'providers:', ...providers.map((p) => `  - ${h.flow(p)}`),
            'models:', ...models.map((m) => `  - ${h.flow(m)}`), ''].join('\n');
        gw = await h.startGateway(fake, { configYaml: yaml, env: { COHERE_TEST_KEY: KEY, COHERE_BAD_KEY: 'co-wrong-key-9999' } });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat: translated both ways', async () => {
        const m = fake.script(fake.marker('chat'), { text: 'Bonjour \u{1F44B}', usage: { input: 11, output: 2 } });
        const data = await client.chat.completions.create({
            model: 'command', temperature: 0.3, top_p: 0.8, max_tokens: 50, stop: ['\n\n'],
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
        });
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.model, 'command-a-03-2025');
        assert.equal(data.choices[0].message.content, 'Bonjour \u{1F44B}');
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.deepEqual(data.usage, { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
        const up = fake.requestsFor(m)[0];
        assert.equal(up.url, '/v2/chat');
        assert.equal(up.headers.authorization, `Bearer ${KEY}`);
        assert.equal(up.raw, JSON.stringify({
            model: 'command-a-03-2025',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
            max_tokens: 50, stop_sequences: ['\n\n'], temperature: 0.3, p: 0.8, stream: false,
        }));
    });

    it('streaming: content, usage chunk, same answer as whole', async () => {
        const pieces = ['The', ' quick', ' brown \u00e9', ' fox \u{1F98A}'];
        const m = fake.script(fake.marker('stream'), { chunks: pieces, usage: { input: 9, output: 4 } });
        const stream = await client.chat.completions.create({
            model: 'command', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: m }],
        });
        let text = '';
        let finish = null;
        let usage = null;
        let first = true;
        for await (const chunk of stream) {
            assert.equal(chunk.object, 'chat.completion.chunk');
            if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
            first = false;
            if (chunk.usage) usage = chunk.usage;
            if (!chunk.choices.length) continue;
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        assert.equal(text, pieces.join(''));
        assert.equal(finish, 'stop');
        assert.deepEqual(usage, { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
        assert.equal(fake.requestsFor(m)[0].json.stream, true);
        const whole = await client.chat.completions.create({ model: 'command', messages: [{ role: 'user', content: m }] });
        assert.equal(whole.choices[0].message.content, text);
    });

    it('tool-call round trip, streamed, with the tool plan sent back', async () => {
        const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
        const m = fake.script(fake.marker('tools'), {
            toolPlan: 'I will look up both cities.',
            tools: [{ id: 'get_weather_p1', name: 'get_weather', args: ['{"city":', '"Paris"}'] },
                { id: 'get_weather_o2', name: 'get_weather', args: ['{"city":"Oslo"}'] }],
        });
        const stream = await client.chat.completions.create({ model: 'command', stream: true, tools, messages: [{ role: 'user', content: m }] });
        const calls = [];
        let reasoning = '';
        let finish = null;
        for await (const chunk of stream) {
            const d = chunk.choices[0]?.delta || {};
            reasoning += d.reasoning_content || '';
            for (const tc of d.tool_calls || []) {
                if (tc.id) calls[tc.index] = { id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } };
                calls[tc.index].function.arguments += tc.function.arguments || '';
            }
            finish = chunk.choices[0]?.finish_reason || finish;
        }
        assert.equal(finish, 'tool_calls');
        assert.equal(reasoning, 'I will look up both cities.');
        assert.deepEqual(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments).city]),
            [['get_weather_p1', 'get_weather', 'Paris'], ['get_weather_o2', 'get_weather', 'Oslo']]);
        assert.deepEqual(fake.requestsFor(m)[0].json.tools, tools);

        const m2 = fake.script(fake.marker('toolresult'), { text: 'Paris 18C, Oslo 9C.' });
        const data = await client.chat.completions.create({
            model: 'command', tools,
            messages: [{ role: 'user', content: m2 },
                { role: 'assistant', content: null, reasoning_content: reasoning, tool_calls: calls },
                { role: 'tool', tool_call_id: 'get_weather_p1', content: '18C' },
                { role: 'tool', tool_call_id: 'get_weather_o2', content: '9C' }],
        });
        assert.equal(data.choices[0].message.content, 'Paris 18C, Oslo 9C.');
        const sent = fake.requestsFor(m2)[0].json.messages;
        assert.deepEqual(sent[1], {
            role: 'assistant', tool_plan: 'I will look up both cities.',
            tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } })),
        });
        assert.deepEqual(sent[2], { role: 'tool', tool_call_id: 'get_weather_p1', content: '18C' });
        assert.deepEqual(sent[3], { role: 'tool', tool_call_id: 'get_weather_o2', content: '9C' });
    });

    it('reasoning: thinking becomes reasoning_content and goes back as thinking', async () => {
        const m = fake.script(fake.marker('think'), { thinking: 'Two plus two.', text: '4' });
        const data = await client.chat.completions.create({ model: 'command', reasoning_effort: 'low', messages: [{ role: 'user', content: m }] });
        assert.equal(data.choices[0].message.content, '4');
        assert.equal(data.choices[0].message.reasoning_content, 'Two plus two.');
        assert.deepEqual(fake.requestsFor(m)[0].json.thinking, { type: 'enabled', token_budget: 1024 });
        const m2 = fake.script(fake.marker('think2'), { text: 'ok' });
        await client.chat.completions.create({
            model: 'command',
            messages: [{ role: 'user', content: m }, { role: 'assistant', content: '4', reasoning_content: 'Two plus two.' }, { role: 'user', content: m2 }],
        });
        assert.deepEqual(fake.requestsFor(m2)[0].json.messages[1], {
            role: 'assistant', content: [{ type: 'thinking', thinking: 'Two plus two.' }, { type: 'text', text: '4' }],
        });
    });

    it('embeddings: float and base64', async () => {
        const r = await client.embeddings.create({ model: 'embed', input: ['abcd', 'abcdefgh'], encoding_format: 'float' });
        assert.deepEqual(r.data.map((d) => d.embedding), [[1, -0.5, 0.25], [2, -0.5, 0.25]]);
        assert.equal(r.usage.prompt_tokens, 4);
        const sent = fake.requests.at(-1).json;
        assert.deepEqual(sent, { model: 'embed-v4.0', texts: ['abcd', 'abcdefgh'], input_type: 'search_document', embedding_types: ['float'] });
        const b = await client.embeddings.create({ model: 'embed', input: 'abcd' }); // the SDK asks base64
        assert.deepEqual(b.data[0].embedding, [1, -0.5, 0.25]);
    });

    it('errors keep their meaning', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'command-gone', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && /command-r-1999/.test(e.message));
        await assert.rejects(client.chat.completions.create({ model: 'command-badkey', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key' && !e.message.includes('co-wrong-key'));
        const m429 = fake.script(fake.marker('rl'), { status: 429, message: 'trial key rate limit reached' });
        await assert.rejects(client.chat.completions.create({ model: 'command', messages: [{ role: 'user', content: m429 }] }),
            (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '7' && /trial key/.test(e.message));
        const mctx = fake.script(fake.marker('ctx'), { status: 400, message: 'too many tokens: total number of tokens in the prompt cannot exceed 256000' });
        await assert.rejects(client.chat.completions.create({ model: 'command', messages: [{ role: 'user', content: mctx }] }),
            (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
        const m500 = fake.script(fake.marker('ise'), { status: 500, message: 'internal server error' });
        await assert.rejects(client.chat.completions.create({ model: 'command', messages: [{ role: 'user', content: m500 }] }),
            (e) => e instanceof OpenAI.InternalServerError);
        const before = fake.requests.length;
        await assert.rejects(client.chat.completions.create({ model: 'command', n: 2, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.BadRequestError && /'n' must be 1/.test(e.message));
        assert.equal(fake.requests.length, before, 'a refused request never reaches Cohere');
    });

    it('an ERROR finish mid-stream and a broken stream end the client stream with an error', async () => {
        const m = fake.script(fake.marker('enderr'), { chunks: ['par', 'tial'], endError: 'model overloaded' });
        const s1 = await client.chat.completions.create({ model: 'command', stream: true, messages: [{ role: 'user', content: m }] });
        let got = '';
        await assert.rejects((async () => { for await (const c of s1) got += c.choices[0]?.delta?.content || ''; })(),
            (e) => /model overloaded/.test(e.message));
        assert.equal(got, 'partial');
        const m2 = fake.script(fake.marker('broken'), { chunks: ['a', 'b', 'c'], breakAfter: 400 });
        const s2 = await client.chat.completions.create({ model: 'command', stream: true, messages: [{ role: 'user', content: m2 }] });
        await assert.rejects((async () => { for await (const c of s2) void c; })());
    });

    it('the gateway stops cleanly (no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
