// SPDX-License-Identifier: MIT
//
// azure.test.js - the `azure` adapter end to end: the official openai SDK
// talks to the gateway, the gateway to a fake Azure OpenAI resource
// (lib/fake-azure.js). Checks the deployment URL, api-version and api-key
// exactly, that Azure's annotation-only stream chunks never reach the SDK,
// a tool-call round trip (streamed arguments too), embeddings, and that
// Azure's error codes (content_filter, context_length_exceeded,
// DeploymentNotFound, a bad key) reach the SDK with their meaning.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeUpstream } = require('./lib/fake-upstream');
const { FakeAzure } = require('./lib/fake-azure');
const h = require('./lib/harness');

const AZURE_KEY = 'azure-fake-key-5f2c9a1b7e';

describe('azure adapter', () => {
    let fake;
    let azure;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        azure = await new FakeAzure({ apiKey: AZURE_KEY, deployments: { 'prod-4o': 'gpt-4o-2024-08-06', 'emb-small': 'text-embedding-3-small' } }).start();
        const base = { type: 'azure', base_url: azure.baseUrl, api_version: '2024-10-21', timeout_ms: 5000 };
        gw = await h.startGateway(fake, {
            env: { AZURE_TEST_KEY: AZURE_KEY, AZURE_BAD_KEY: 'wrong-key-000000' },
            providers: [
                { id: 'az', ...base, api_key: 'env:AZURE_TEST_KEY' },
                { id: 'az-badkey', ...base, api_key: 'env:AZURE_BAD_KEY' },
            ],
            models: [
                { id: 'az-4o', provider: 'az', upstream_model: 'prod-4o' },
                { id: 'az-missing', provider: 'az', upstream_model: 'no-such-deployment' },
                { id: 'az-emb', provider: 'az', upstream_model: 'emb-small', capabilities: { embeddings: true } },
                { id: 'az-bad', provider: 'az-badkey', upstream_model: 'prod-4o' },
            ],
        });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (azure) await azure.stop();
        if (fake) await fake.stop();
    });

    it('chat: deployment URL, api-version, api-key, body', async () => {
        const r = await client.chat.completions.create({ model: 'az-4o', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Bonjour' }], temperature: 0.3 });
        assert.equal(r.choices[0].message.content, 'Azure echo: Bonjour');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.usage.prompt_tokens, 19);
        const up = azure.requests.at(-1);
        assert.equal(up.path, '/openai/deployments/prod-4o/chat/completions');
        assert.deepEqual(up.query, { 'api-version': '2024-10-21' });
        assert.equal(up.headers['api-key'], AZURE_KEY);
        assert.equal(up.headers.authorization, undefined);
        assert.equal(up.raw, JSON.stringify({ model: 'prod-4o', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Bonjour' }], temperature: 0.3 }));
    });

    it('stream: annotation-only chunks never reach the client; usage on request', async () => {
        const stream = await client.chat.completions.create({ model: 'az-4o', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'streaming please' }] });
        let text = '';
        let finish = null;
        let usage = null;
        for await (const chunk of stream) {
            if (chunk.usage) { usage = chunk.usage; continue; }
            assert.ok(chunk.choices.length > 0, `empty choices reached the client: ${JSON.stringify(chunk)}`);
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        assert.equal(text, 'Azure echo: streaming please');
        assert.equal(finish, 'stop');
        assert.deepEqual(usage, { completion_tokens: 7, prompt_tokens: 19, total_tokens: 26 });
        assert.equal(azure.requests.at(-1).json.stream_options.include_usage, true);
    });

    it('tools: streamed arguments and the follow-up with the tool result', async () => {
        const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
        const messages = [{ role: 'user', content: 'Weather in Paris?' }];
        const stream = await client.chat.completions.create({ model: 'az-4o', stream: true, tools, messages });
        const calls = {};
        let finish = null;
        for await (const chunk of stream) {
            for (const d of chunk.choices[0]?.delta?.tool_calls || []) {
                calls[d.index] ??= { id: '', name: '', args: '' };
                if (d.id) calls[d.index].id = d.id;
                if (d.function?.name) calls[d.index].name = d.function.name;
                calls[d.index].args += d.function?.arguments || '';
            }
            finish = chunk.choices[0]?.finish_reason || finish;
        }
        assert.equal(finish, 'tool_calls');
        assert.deepEqual(calls[0], { id: 'call_az1', name: 'get_weather', args: '{"city":"Paris","unit":"c"}' });
        messages.push({ role: 'assistant', content: null, tool_calls: [{ id: 'call_az1', type: 'function', function: { name: 'get_weather', arguments: calls[0].args } }] });
        messages.push({ role: 'tool', tool_call_id: 'call_az1', content: '21C and sunny' });
        const r = await client.chat.completions.create({ model: 'az-4o', tools, messages });
        assert.equal(r.choices[0].message.content, 'The tool said: 21C and sunny');
        const up = azure.requests.at(-1).json;
        assert.deepEqual(up.messages.slice(1), messages.slice(1));
    });

    it('embeddings, float and base64', async () => {
        const r = await client.embeddings.create({ model: 'az-emb', input: ['a', 'bcd'], encoding_format: 'float' });
        assert.equal(r.data.length, 2);
        assert.deepEqual(r.data[1].embedding, [0.5, -0.25, 0.03]);
        assert.equal(azure.requests.at(-1).path, '/openai/deployments/emb-small/embeddings');
        const b = await client.embeddings.create({ model: 'az-emb', input: 'xy' }); // the SDK asks for base64
        assert.equal(b.data[0].embedding.length, 3);
        assert.equal(azure.requests.at(-1).json.encoding_format, 'base64');
    });

    it('errors keep their meaning', async () => {
        const expectErr = async (p, status, code) => {
            await assert.rejects(p, (e) => {
                assert.equal(e.status, status, e.message);
                assert.equal(e.code, code);
                assert.ok(!String(e.message).includes(AZURE_KEY));
                assert.ok(!String(e.message).includes('wrong-key-000000'));
                return true;
            });
        };
        await expectErr(client.chat.completions.create({ model: 'az-4o', messages: [{ role: 'user', content: 'trigger-filter' }] }), 400, 'content_filter');
        await expectErr(client.chat.completions.create({ model: 'az-4o', messages: [{ role: 'user', content: 'too-long' }] }), 400, 'context_length_exceeded');
        await expectErr(client.chat.completions.create({ model: 'az-missing', messages: [{ role: 'user', content: 'x' }] }), 404, 'model_not_found');
        await expectErr(client.chat.completions.create({ model: 'az-bad', messages: [{ role: 'user', content: 'x' }] }), 401, 'invalid_api_key');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
