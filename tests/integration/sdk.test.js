// SPDX-License-Identifier: MIT
//
// sdk.test.js - the official `openai` npm SDK, unchanged, pointed at the
// gateway: chat (plain and streamed), embeddings (the SDK asks for base64 and
// decodes it), models.list, and the SDK's typed errors (404, 429, 401, an
// error event mid-stream).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeUpstream, oaiError, embeddingVector } = require('./lib/fake-upstream');
const h = require('./lib/harness');

describe('official openai SDK', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat.completions.create', async () => {
        const m = fake.script(fake.marker('sdkchat'), { reply: 'Bonjour \u{1F44B}', usage: { prompt_tokens: 21, completion_tokens: 2 } });
        const { data, response } = await client.chat.completions
            .create({ model: 'gpt-test', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: m }], temperature: 0.2 })
            .withResponse();
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0].message.role, 'assistant');
        assert.equal(data.choices[0].message.content, 'Bonjour \u{1F44B}');
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.equal(data.usage.prompt_tokens, 21);
        assert.equal(data.usage.completion_tokens, 2);
        assert.equal(response.headers.get('x-switchboard-model'), 'gpt-test');
        assert.equal(response.headers.get('x-switchboard-provider'), 'fake');
        const up = fake.requestsFor(m)[0];
        assert.equal(up.json.model, 'gpt-4o-mini');
        assert.equal(up.json.temperature, 0.2);
        assert.equal(up.headers.authorization, `Bearer ${h.FAKE_KEY}`);
    });

    it('chat.completions.create with stream: true', async () => {
        const pieces = ['The', ' quick', ' brown', ' fox', ' \u00e9\u{1F98A}'];
        const m = fake.script(fake.marker('sdkstream'), { chunks: pieces, chunkDelayMs: 20 });
        const stream = await client.chat.completions.create({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] });
        let text = '';
        let finish = null;
        let n = 0;
        for await (const chunk of stream) {
            n++;
            assert.equal(chunk.object, 'chat.completion.chunk');
            assert.ok(chunk.choices.length > 0, `a usage-only chunk reached a client that did not ask: ${JSON.stringify(chunk)}`);
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        assert.equal(text, pieces.join(''));
        assert.equal(finish, 'stop');
        assert.equal(n, pieces.length + 2, 'role chunk + content chunks + finish chunk');
    });

    it('chat.completions.create with stream_options.include_usage', async () => {
        const m = fake.script(fake.marker('sdkstreamu'), { chunks: ['a', 'b'], usage: { prompt_tokens: 4, completion_tokens: 2 } });
        const stream = await client.chat.completions.create({
            model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: m }],
        });
        let usage = null;
        let text = '';
        for await (const chunk of stream) {
            if (chunk.usage) usage = chunk.usage;
            if (chunk.choices[0]) text += chunk.choices[0].delta.content || '';
        }
        assert.equal(text, 'ab');
        assert.ok(usage, 'no usage chunk');
        assert.equal(usage.prompt_tokens, 4);
        assert.equal(usage.completion_tokens, 2);
    });

    it('embeddings.create (base64 on the wire, decoded by the SDK)', async () => {
        const m = fake.marker('sdkemb');
        const input = `embed me ${m}`;
        const res = await client.embeddings.create({ model: 'embed-test', input });
        assert.equal(res.object, 'list');
        assert.equal(res.data.length, 1);
        assert.deepEqual(res.data[0].embedding, embeddingVector(JSON.stringify(input), 8));
        const up = fake.requestsFor(m)[0];
        assert.equal(up.json.encoding_format, 'base64');
        assert.equal(up.json.model, 'text-embedding-3-small');
    });

    it('embeddings.create with several inputs and dimensions', async () => {
        const m = fake.marker('sdkemb2');
        const res = await client.embeddings.create({ model: 'embed-test', input: ['one', m], dimensions: 4, encoding_format: 'float' });
        assert.equal(res.data.length, 2);
        assert.deepEqual(res.data[1].embedding, embeddingVector(JSON.stringify(m), 4));
    });

    it('models.list', async () => {
        const ids = [];
        for await (const model of client.models.list()) ids.push(model.id);
        for (const id of ['gpt-test', 'embed-test']) assert.ok(ids.includes(id), `${id} not in ${JSON.stringify(ids)}`);
    });

    it('an unknown model raises NotFoundError (404)', async () => {
        await assert.rejects(
            client.chat.completions.create({ model: 'gpt-tset', messages: [{ role: 'user', content: 'hi' }] }),
            (e) => {
                assert.ok(e instanceof OpenAI.NotFoundError, `${e.constructor.name}: ${e.message}`);
                assert.equal(e.status, 404);
                assert.match(e.message, /gpt-test/);
                return true;
            });
    });

    it('an upstream 429 raises RateLimitError with the upstream message and Retry-After', async () => {
        const message = 'Rate limit reached for gpt-4o-mini (fake), please retry.';
        const m = fake.script(fake.marker('sdk429'), {
            status: 429, headers: { 'retry-after': '1' }, error: oaiError(message, 'requests', null, 'rate_limit_exceeded'),
        });
        await assert.rejects(
            client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: m }] }),
            (e) => {
                assert.ok(e instanceof OpenAI.RateLimitError, `${e.constructor.name}: ${e.message}`);
                assert.equal(e.status, 429);
                assert.ok(e.message.includes(message), e.message);
                assert.equal(e.headers.get('retry-after'), '1');
                return true;
            });
    });

    it('a wrong key raises AuthenticationError (401)', async () => {
        const bad = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sb-not-the-token', maxRetries: 0, timeout: 15000 });
        await assert.rejects(bad.models.list(), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, `${e.constructor.name}: ${e.message}`);
            assert.equal(e.status, 401);
            return true;
        });
    });

    it('an upstream dying mid-stream surfaces as an APIError from the stream, after the content', async () => {
        const m = fake.script(fake.marker('sdkbreak'), { chunks: ['one', 'two', 'three'], breakAfter: 2 });
        const stream = await client.chat.completions.create({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] });
        let text = '';
        await assert.rejects(async () => {
            for await (const chunk of stream) text += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
        }, (e) => {
            assert.ok(e instanceof OpenAI.APIError, `expected the SDK's APIError from an SSE error event, got ${e.constructor.name}: ${e.message}`);
            return true;
        });
        assert.equal(text, 'onetwo');
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
