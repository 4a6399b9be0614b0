// SPDX-License-Identifier: MIT
//
// gemini.test.js - the `gemini` adapter end to end: the official openai SDK
// → the real gateway → a fake Gemini API (lib/fake-gemini.js). Chat, reasoning
// and usage; streaming (events split mid-JSON by the fake); a tool round trip
// with parallel calls and a thought signature that must come back on its
// part; a streamed tool call; embeddings (base64 decoded by the SDK); every
// error class with the key never echoed; a stream that breaks.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeGemini } = require('./lib/fake-gemini');
const h = require('./lib/harness');

const GEMINI_KEY = 'AIzaSy-fake-gemini-key-0123456789';

function config(port) {
    const base = `http://127.0.0.1:${port}/v1beta`;
    return [
        'server: {max_body_bytes: 1048576, header_timeout_ms: 1000, idle_timeout_ms: 2000, shutdown_timeout_ms: 3000}',
        'providers:',
        `  - {id: "gem", type: "gemini", base_url: "${base}", api_key: "env:FAKE_GEMINI_KEY", timeout_ms: 5000}`,
        `  - {id: "gem-badkey", type: "gemini", base_url: "${base}", api_key: "env:WRONG_GEMINI_KEY", timeout_ms: 5000}`,
        'models:',
        '  - {id: "flash", provider: "gem", upstream_model: "gemini-2.5-flash"}',
        '  - {id: "flash-badkey", provider: "gem-badkey", upstream_model: "gemini-2.5-flash"}',
        '  - {id: "gem-embed", provider: "gem", upstream_model: "gemini-embedding-001", capabilities: {embeddings: true}}',
        '',
    ].join('\n');
}

describe('gemini adapter through the openai SDK', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeGemini({ apiKey: GEMINI_KEY }).start();
        gw = await h.startGateway(fake, {
            config: config(fake.port),
            server: { shutdown_timeout_ms: 3000 },
            env: { FAKE_GEMINI_KEY: GEMINI_KEY, WRONG_GEMINI_KEY: 'AIzaSy-wrong-key-777777777' },
        });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat: text, reasoning, usage; the upstream request is Gemini-shaped', async () => {
        const m = fake.script(fake.marker('chat'), {
            parts: [{ text: 'Thinking about it.', thought: true }, { text: 'Bonjour \u{1F44B}' }],
            usage: { promptTokenCount: 20, candidatesTokenCount: 3, thoughtsTokenCount: 5, cachedContentTokenCount: 8, totalTokenCount: 28 },
            responseId: 'resp-chat',
        });
        const res = await client.chat.completions.create({
            model: 'flash',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }],
            temperature: 0.3, max_tokens: 64, stop: ['END'], reasoning_effort: 'medium',
        });
        assert.equal(res.object, 'chat.completion');
        assert.equal(res.id, 'chatcmpl-resp-chat');
        assert.equal(res.model, 'gemini-2.5-flash');
        assert.equal(res.choices[0].message.content, 'Bonjour \u{1F44B}');
        assert.equal(res.choices[0].message.reasoning_content, 'Thinking about it.');
        assert.equal(res.choices[0].finish_reason, 'stop');
        assert.deepEqual(res.usage, {
            prompt_tokens: 20, completion_tokens: 8, total_tokens: 28,
            prompt_tokens_details: { cached_tokens: 8 }, completion_tokens_details: { reasoning_tokens: 5 },
        });
        const up = fake.requestsFor(m)[0];
        assert.equal(up.path, '/v1beta/models/gemini-2.5-flash:generateContent');
        assert.equal(up.headers['x-goog-api-key'], GEMINI_KEY);
        assert.equal(up.query.key, undefined);
        assert.equal(up.headers.authorization, undefined);
        assert.equal(up.raw, JSON.stringify({
            contents: [{ role: 'user', parts: [{ text: m }] }],
            systemInstruction: { parts: [{ text: 'Be brief.' }] },
            generationConfig: {
                temperature: 0.3, maxOutputTokens: 64 + 4096, stopSequences: ['END'],
                thinkingConfig: { thinkingBudget: 4096, includeThoughts: true },
            },
        }));
    });

    it('streaming: content arrives in order, equals the whole answer, usage on request', async () => {
        const pieces = ['The', ' quick', ' brown \u00e9', '\u{1F98A} fox'];
        const m = fake.script(fake.marker('stream'), { chunks: pieces.map((t) => [{ text: t }]), responseId: 'resp-stream' });
        const stream = await client.chat.completions.create({
            model: 'flash', stream: true, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: m }],
        });
        let text = '';
        let finish = null;
        let usage = null;
        let first = true;
        for await (const chunk of stream) {
            assert.equal(chunk.object, 'chat.completion.chunk');
            assert.equal(chunk.id, 'chatcmpl-resp-stream');
            if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
            first = false;
            if (chunk.usage) usage = chunk.usage;
            if (!chunk.choices.length) continue;
            text += chunk.choices[0].delta.content || '';
            if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
        }
        assert.equal(text, pieces.join(''));
        assert.equal(finish, 'stop');
        assert.deepEqual(usage, { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
        const up = fake.requestsFor(m)[0];
        assert.equal(up.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
        assert.equal(up.query.alt, 'sse');
        assert.equal(up.headers['x-goog-api-key'], GEMINI_KEY);
    });

    it('tool round trip: parallel calls, the thought signature returns on its part', async () => {
        const tools = [
            { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } },
            { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
        ];
        const m = fake.script(fake.marker('tools'),
            {
                parts: [
                    { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'c2lnbmF0dXJlLTE=' },
                    { functionCall: { name: 'get_time', args: { tz: 'CET' } } },
                ],
                responseId: 'resp-tools',
            },
            { text: 'Sunny, 21C, at noon.' });
        const messages = [{ role: 'user', content: `Weather and time in Paris? ${m}` }];
        const r1 = await client.chat.completions.create({ model: 'flash', messages, tools, tool_choice: 'auto' });
        const msg = r1.choices[0].message;
        assert.equal(r1.choices[0].finish_reason, 'tool_calls');
        assert.equal(msg.content, null);
        assert.equal(msg.tool_calls.length, 2);
        assert.equal(msg.tool_calls[0].function.name, 'get_weather');
        assert.equal(msg.tool_calls[0].function.arguments, '{"city":"Paris"}');
        assert.deepEqual(msg.tool_calls[0].extra_content, { google: { thought_signature: 'c2lnbmF0dXJlLTE=' } });
        assert.equal(msg.tool_calls[1].extra_content, undefined);
        assert.notEqual(msg.tool_calls[0].id, msg.tool_calls[1].id);
        const up1 = fake.requestsFor(m)[0];
        assert.deepEqual(up1.json.tools, [{ functionDeclarations: [
            { name: 'get_weather', description: 'Weather for a city', parametersJsonSchema: tools[0].function.parameters },
            { name: 'get_time', parametersJsonSchema: tools[1].function.parameters },
        ] }]);
        assert.deepEqual(up1.json.toolConfig, { functionCallingConfig: { mode: 'AUTO' } });

        messages.push(msg);
        messages.push({ role: 'tool', tool_call_id: msg.tool_calls[1].id, content: 'noon' });
        messages.push({ role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '{"temp":21,"sky":"sunny"}' });
        const r2 = await client.chat.completions.create({ model: 'flash', messages, tools });
        assert.equal(r2.choices[0].message.content, 'Sunny, 21C, at noon.');
        const up2 = fake.requestsFor(m)[1];
        assert.deepEqual(up2.json.contents, [
            { role: 'user', parts: [{ text: `Weather and time in Paris? ${m}` }] },
            { role: 'model', parts: [
                { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'c2lnbmF0dXJlLTE=' },
                { functionCall: { name: 'get_time', args: { tz: 'CET' } } },
            ] },
            { role: 'user', parts: [
                { functionResponse: { name: 'get_time', response: { output: 'noon' } } },
                { functionResponse: { name: 'get_weather', response: { temp: 21, sky: 'sunny' } } },
            ] },
        ]);
    });

    it('a follow-up without the signature is refused by Gemini (400 passes through)', async () => {
        const m = fake.script(fake.marker('nosig'), {
            parts: [{ functionCall: { name: 'lookup', args: {} }, thoughtSignature: 'bG9va3Vw' }],
        }, { text: 'never' });
        const messages = [{ role: 'user', content: m }];
        const r1 = await client.chat.completions.create({ model: 'flash', messages, tools: [{ type: 'function', function: { name: 'lookup' } }] });
        const call = { ...r1.choices[0].message.tool_calls[0] };
        delete call.extra_content;
        messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        messages.push({ role: 'tool', tool_call_id: call.id, content: 'x' });
        await assert.rejects(client.chat.completions.create({ model: 'flash', messages }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, `${e.constructor.name}: ${e.message}`);
            assert.match(e.message, /thought_signature/);
            return true;
        });
    });

    it('streaming a tool call: id, name and whole arguments in one delta', async () => {
        const m = fake.script(fake.marker('streamtool'), {
            chunks: [
                [{ text: 'Let me check.', thought: true }],
                [{ functionCall: { name: 'get_weather', args: { city: 'Rome' } }, thoughtSignature: 'cm9tZQ==' }],
            ],
            responseId: 'resp-st',
        });
        const stream = await client.chat.completions.create({
            model: 'flash', stream: true, messages: [{ role: 'user', content: m }],
            tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
        });
        const calls = [];
        let reasoning = '';
        let finish = null;
        for await (const chunk of stream) {
            const d = chunk.choices[0] && chunk.choices[0].delta;
            if (!d) continue;
            reasoning += d.reasoning_content || '';
            if (d.tool_calls) calls.push(...d.tool_calls);
            if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
        }
        assert.equal(reasoning, 'Let me check.');
        assert.equal(finish, 'tool_calls');
        assert.equal(calls.length, 1);
        assert.equal(calls[0].index, 0);
        assert.match(calls[0].id, /^call_/);
        assert.equal(calls[0].type, 'function');
        assert.deepEqual(calls[0].function, { name: 'get_weather', arguments: '{"city":"Rome"}' });
        assert.deepEqual(calls[0].extra_content, { google: { thought_signature: 'cm9tZQ==' } });
    });

    it('embeddings: batchEmbedContents, base64 decoded by the SDK, in order', async () => {
        const m = fake.marker('emb');
        const res = await client.embeddings.create({ model: 'gem-embed', input: [`a ${m}`, `bb ${m}`], dimensions: 3 });
        assert.equal(res.data.length, 2);
        const f32 = (x) => Math.fround(x);
        assert.deepEqual(res.data[0].embedding, [0, 1, 2].map((k) => f32((`a ${m}`.length + k) / 8)));
        assert.deepEqual(res.data[1].embedding, [0, 1, 2].map((k) => f32((`bb ${m}`.length + k) / 8)));
        const up = fake.requestsFor(m)[0];
        assert.equal(up.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
        assert.deepEqual(up.json.requests[1], { model: 'models/gemini-embedding-001', content: { parts: [{ text: `bb ${m}` }] }, outputDimensionality: 3 });
    });

    it('errors keep their class: 429, 404, 503, 500, 504', async () => {
        const cases = [
            [429, 'Resource has been exhausted (e.g. check quota).', OpenAI.RateLimitError],
            [404, 'models/x is not found for API version v1beta', OpenAI.NotFoundError],
            [503, 'The model is overloaded. Please try again later.', OpenAI.InternalServerError],
            [500, 'An internal error has occurred.', OpenAI.InternalServerError],
            [504, 'Deadline exceeded', OpenAI.InternalServerError],
        ];
        for (const [code, message, cls] of cases) {
            const m = fake.script(fake.marker(`err${code}`), { error: { code, message } });
            await assert.rejects(client.chat.completions.create({ model: 'flash', messages: [{ role: 'user', content: m }] }), (e) => {
                assert.ok(e instanceof cls, `${code}: ${e.constructor.name}: ${e.message}`);
                assert.equal(e.status, code);
                assert.ok(e.message.includes(message), e.message);
                return true;
            });
        }
    });

    it('a wrong key is a 401 that never echoes the key', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'flash-badkey', messages: [{ role: 'user', content: 'hi' }] }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, `${e.constructor.name}: ${e.message}`);
            assert.equal(e.status, 401);
            assert.ok(!e.message.includes('AIzaSy'), e.message);
            return true;
        });
    });

    it('a field Gemini cannot honour is a 400 naming it', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'flash', n: 2, messages: [{ role: 'user', content: 'hi' }] }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, `${e.constructor.name}: ${e.message}`);
            assert.match(e.message, /'n' must be 1/);
            return true;
        });
    });

    it('a stream that breaks surfaces as an APIError after the content', async () => {
        const m = fake.script(fake.marker('break'), { chunks: [[{ text: 'one' }], [{ text: 'two' }], [{ text: 'three' }]], breakAfter: 2 });
        const stream = await client.chat.completions.create({ model: 'flash', stream: true, messages: [{ role: 'user', content: m }] });
        let text = '';
        await assert.rejects(async () => {
            for await (const chunk of stream) text += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
        }, (e) => {
            assert.ok(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
            return true;
        });
        assert.equal(text, 'onetwo');
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
