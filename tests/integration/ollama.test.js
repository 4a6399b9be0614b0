// SPDX-License-Identifier: MIT
//
// ollama.test.js - the official `openai` SDK through the real gateway to a fake Ollama
// (lib/fake-ollama.js): chat with the explicit stream flag and options, NDJSON streaming
// with usage, images as base64 (web URLs refused before any upstream call), a tool-call
// round trip (object arguments, generated ids, tool_name on the result), reasoning both
// ways, embeddings, keyless and keyed auth, errors, an error line mid-stream, a broken stream.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeOllama } = require('./lib/fake-ollama');
const h = require('./lib/harness');

describe('ollama adapter', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeOllama({ models: ['llama3.2:3b', 'all-minilm'] }).start();
        const base = `http://127.0.0.1:${fake.port}`;
        const providers = [
            { id: 'ol', type: 'ollama', base_url: base },
            { id: 'ol-keyed', type: 'ollama', base_url: base, api_key: 'env:OLLAMA_TEST_KEY' },
        ];
        const models = [
            { id: 'llama', provider: 'ol', upstream_model: 'llama3.2:3b' },
            { id: 'llama-keyed', provider: 'ol-keyed', upstream_model: 'llama3.2:3b' },
            { id: 'llama-missing', provider: 'ol', upstream_model: 'llama9:70b' },
            { id: 'minilm', provider: 'ol', upstream_model: 'all-minilm', capabilities: { embeddings: true } },
        ];
        const yaml = (server) => [
            `server: ${h.flow(server)}`, 'providers:', ...providers.map((p) => `  - ${h.flow(p)}`),
            'models:', ...models.map((m) => `  - ${h.flow(m)}`), ''].join('\n');
        gw = await h.startGateway(fake, { configYaml: yaml, env: { OLLAMA_TEST_KEY: 'ol-key-abcdef123456' } });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat: stream false written explicitly, options, no auth header', async () => {
        const m = fake.script(fake.marker('chat'), { text: 'Salut \u{1F44B}', usage: { prompt: 14, eval: 3 } });
        const data = await client.chat.completions.create({
            model: 'llama', temperature: 0.3, max_tokens: 40, stop: 'END',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
        });
        assert.equal(data.choices[0].message.content, 'Salut \u{1F44B}');
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.equal(data.model, 'llama3.2:3b');
        assert.deepEqual(data.usage, { prompt_tokens: 14, completion_tokens: 3, total_tokens: 17 });
        const up = fake.requestsFor(m)[0];
        assert.equal(up.url, '/api/chat');
        assert.equal(up.headers.authorization, undefined);
        assert.equal(up.raw, JSON.stringify({
            model: 'llama3.2:3b',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
            options: { temperature: 0.3, num_predict: 40, stop: ['END'] }, stream: false,
        }));
    });

    it('keyed provider sends its key as Bearer', async () => {
        const m = fake.script(fake.marker('keyed'), { text: 'ok' });
        await client.chat.completions.create({ model: 'llama-keyed', messages: [{ role: 'user', content: m }] });
        assert.equal(fake.requestsFor(m)[0].headers.authorization, 'Bearer ol-key-abcdef123456');
    });

    it('streaming NDJSON: content, usage, same answer as whole', async () => {
        const pieces = ['Un', ' deux \u00e9', ' trois \u{1F98A}'];
        const m = fake.script(fake.marker('stream'), { chunks: pieces, usage: { prompt: 8, eval: 3 } });
        const stream = await client.chat.completions.create({
            model: 'llama', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: m }],
        });
        let text = '';
        let finish = null;
        let usage = null;
        for await (const chunk of stream) {
            if (chunk.usage) usage = chunk.usage;
            if (!chunk.choices.length) continue;
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        assert.equal(text, pieces.join(''));
        assert.equal(finish, 'stop');
        assert.deepEqual(usage, { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 });
        assert.equal(fake.requestsFor(m)[0].json.stream, true);
        const whole = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: m }] });
        assert.equal(whole.choices[0].message.content, text);
    });

    it('images: data URLs as bare base64; a web URL is a 400 that never reaches Ollama', async () => {
        const m = fake.script(fake.marker('img'), { text: 'A cat.' });
        const data = await client.chat.completions.create({
            model: 'llama',
            messages: [{ role: 'user', content: [{ type: 'text', text: m }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
        });
        assert.equal(data.choices[0].message.content, 'A cat.');
        assert.deepEqual(fake.requestsFor(m)[0].json.messages[0], { role: 'user', content: m, images: ['iVBORw0KGgo='] });
        const before = fake.requests.length;
        await assert.rejects(client.chat.completions.create({
            model: 'llama', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
        }), (e) => e instanceof OpenAI.BadRequestError && /base64/.test(e.message));
        assert.equal(fake.requests.length, before);
    });

    it('tool-call round trip: object arguments, ids, tool_name on the result', async () => {
        const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
        const m = fake.script(fake.marker('tools'), {
            tools: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { id: 'call_ol2', name: 'get_weather', arguments: { city: 'Oslo', days: 2 } }],
        });
        const stream = await client.chat.completions.create({ model: 'llama', stream: true, tools, messages: [{ role: 'user', content: m }] });
        const calls = [];
        let finish = null;
        for await (const chunk of stream) {
            for (const tc of chunk.choices[0]?.delta?.tool_calls || []) {
                if (tc.id) calls[tc.index] = { id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } };
                calls[tc.index].function.arguments += tc.function.arguments || '';
            }
            finish = chunk.choices[0]?.finish_reason || finish;
        }
        assert.equal(finish, 'tool_calls');
        assert.match(calls[0].id, /^call_[0-9a-f]{24}$/);
        assert.equal(calls[1].id, 'call_ol2');
        assert.deepEqual(JSON.parse(calls[1].function.arguments), { city: 'Oslo', days: 2 });
        assert.deepEqual(fake.requestsFor(m)[0].json.tools, tools);

        const m2 = fake.script(fake.marker('toolresult'), { text: 'Paris 18C.' });
        const data = await client.chat.completions.create({
            model: 'llama', tools,
            messages: [{ role: 'user', content: m2 }, { role: 'assistant', content: null, tool_calls: calls },
                { role: 'tool', tool_call_id: calls[0].id, content: '18C' }],
        });
        assert.equal(data.choices[0].message.content, 'Paris 18C.');
        const sent = fake.requestsFor(m2)[0].json.messages;
        assert.deepEqual(sent[1].tool_calls[0], { id: calls[0].id, function: { name: 'get_weather', arguments: { city: 'Paris' } } });
        assert.deepEqual(sent[2], { role: 'tool', content: '18C', tool_call_id: calls[0].id, tool_name: 'get_weather' });
    });

    it('reasoning: thinking both ways, think from reasoning_effort', async () => {
        const m = fake.script(fake.marker('think'), { thinking: 'Add them.', chunks: ['4'] });
        const stream = await client.chat.completions.create({ model: 'llama', stream: true, reasoning_effort: 'high', messages: [{ role: 'user', content: m }] });
        let reasoning = '';
        let text = '';
        for await (const chunk of stream) {
            reasoning += chunk.choices[0]?.delta?.reasoning_content || '';
            text += chunk.choices[0]?.delta?.content || '';
        }
        assert.equal(reasoning, 'Add them.');
        assert.equal(text, '4');
        assert.equal(fake.requestsFor(m)[0].json.think, 'high');
        const m2 = fake.script(fake.marker('think2'), { text: 'ok' });
        await client.chat.completions.create({
            model: 'llama', messages: [{ role: 'assistant', content: '4', reasoning_content: 'Add them.' }, { role: 'user', content: m2 }],
        });
        assert.deepEqual(fake.requestsFor(m2)[0].json.messages[0], { role: 'assistant', content: '4', thinking: 'Add them.' });
    });

    it('embeddings: float and base64', async () => {
        const r = await client.embeddings.create({ model: 'minilm', input: ['abcdefgh', 'abcd'], encoding_format: 'float' });
        assert.deepEqual(r.data.map((d) => d.embedding), [[1, 0.125, -1], [0.5, 0.125, -1]]);
        assert.equal(r.usage.prompt_tokens, 6);
        assert.deepEqual(fake.requests.at(-1).json, { model: 'all-minilm', input: ['abcdefgh', 'abcd'] });
        const b = await client.embeddings.create({ model: 'minilm', input: 'abcdefgh' });
        assert.deepEqual(b.data[0].embedding, [1, 0.125, -1]);
    });

    it('errors keep their meaning', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'llama-missing', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && /llama9:70b/.test(e.message));
        const mctx = fake.script(fake.marker('ctx'), { status: 500, message: 'the input length exceeds the context length' });
        await assert.rejects(client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: mctx }] }),
            (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
        const m500 = fake.script(fake.marker('crash'), { status: 500, message: 'llama runner process has terminated' });
        await assert.rejects(client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: m500 }] }),
            (e) => e instanceof OpenAI.InternalServerError && /terminated/.test(e.message));
        await assert.rejects(client.chat.completions.create({ model: 'llama', tool_choice: 'required', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof OpenAI.BadRequestError && /tool_choice/.test(e.message));
    });

    it('an error line mid-stream and a broken stream end the client stream with an error', async () => {
        const m = fake.script(fake.marker('errline'), { chunks: ['par', 'tial', 'never'], errorAfter: 2, message: 'model runner has unexpectedly stopped' });
        const s1 = await client.chat.completions.create({ model: 'llama', stream: true, messages: [{ role: 'user', content: m }] });
        let got = '';
        await assert.rejects((async () => { for await (const c of s1) got += c.choices[0]?.delta?.content || ''; })(),
            (e) => /unexpectedly stopped/.test(e.message));
        assert.equal(got, 'partial');
        const m2 = fake.script(fake.marker('broken'), { chunks: ['a', 'b', 'c'], breakAfter: 200 });
        const s2 = await client.chat.completions.create({ model: 'llama', stream: true, messages: [{ role: 'user', content: m2 }] });
        await assert.rejects((async () => { for await (const c of s2) void c; })());
    });

    it('the gateway stops cleanly (no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
