// SPDX-License-Identifier: MIT
//
// capabilities.test.js - requests a model cannot serve are refused with a
// 400 before any upstream call, on both front doors: tools, images,
// response_format json and embeddings against models whose declared
// capabilities lack them, and prompts longer than context_length
// (context_length_exceeded). A model without a capabilities block is
// "unknown" and passes everything through; one that declares them passes
// exactly what it declares.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

describe('capability checks before any upstream call', () => {
    let fake;
    let gw;
    let oai;
    let ant;

    before(async () => {
        fake = await new FakeUpstream().start();
        gw = await h.startGateway(fake, {
            models: [
                { id: 'text-only', provider: 'fake', upstream_model: 'gpt-4o-mini', capabilities: { streaming: true } },
                { id: 'full', provider: 'fake', upstream_model: 'gpt-4o-mini',
                    capabilities: { streaming: true, tools: true, vision: true, json_mode: true } },
                { id: 'tiny-ctx', provider: 'fake', upstream_model: 'gpt-4o-mini', context_length: 40 },
            ],
        });
        oai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
        ant = new Anthropic({ baseURL: gw.url, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
    const image = (m) => [{ role: 'user', content: [{ type: 'text', text: m }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }];
    const asks = {
        tools: (m) => ({ messages: [{ role: 'user', content: m }], tools }),
        tool_choice: (m) => ({ messages: [{ role: 'user', content: m }], tools, tool_choice: 'auto' }),
        vision: (m) => ({ messages: image(m) }),
        json_mode: (m) => ({ messages: [{ role: 'user', content: m }], response_format: { type: 'json_object' } }),
    };
    const capOf = { tools: 'tools', tool_choice: 'tools', vision: 'vision', json_mode: 'json_mode' };

    async function refused(model, name, body, param) {
        const m = fake.marker(name);
        const e = await oai.chat.completions.create({ model, ...body(m) }).catch((x) => x);
        assert.ok(e instanceof OpenAI.BadRequestError, `${name}: ${e}`);
        assert.equal(e.status, 400);
        assert.equal(e.code, param);
        assert.match(e.message, new RegExp(`'${model}'`));
        assert.equal(fake.requestsFor(m).length, 0, 'no upstream call');
        return e;
    }

    it('a declared model without the capability: 400 naming the model and the capability', async () => {
        for (const [name, body] of Object.entries(asks)) {
            const e = await refused('text-only', name, body, 'unsupported_capability');
            assert.match(e.message, new RegExp(`'${capOf[name]}'`));
        }
    });

    it('embeddings on a model that does not declare them: 400; declared: served', async () => {
        const e = await oai.embeddings.create({ model: 'text-only', input: 'hello' }).catch((x) => x);
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.code, 'unsupported_capability');
        assert.match(e.message, /'embeddings'/);
        const ok = await oai.embeddings.create({ model: 'embed-test', input: 'hello' });
        assert.equal(ok.data.length, 1);
    });

    it('a model that declares the capability, and one with no capabilities block, are served', async () => {
        for (const model of ['full', 'gpt-test']) {
            for (const [name, body] of Object.entries(asks)) {
                const m = fake.marker(`${model}${name}`);
                const r = await oai.chat.completions.create({ model, ...body(m) });
                assert.equal(r.object, 'chat.completion', `${model} ${name}`);
                assert.equal(fake.requestsFor(m).length, 1, `${model} ${name} reached the upstream`);
            }
        }
        // No tools asked: a streaming-only model serves plain chat.
        const r = await oai.chat.completions.create({ model: 'text-only', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.object, 'chat.completion');
    });

    it('a prompt longer than context_length: 400 context_length_exceeded; a short one passes', async () => {
        const long = 'word '.repeat(60); // 300 bytes: about 76 tokens against 40
        const e = await refused('tiny-ctx', 'long', (m) => ({ messages: [{ role: 'user', content: `${m} ${long}` }] }), 'context_length_exceeded');
        assert.match(e.message, /context length/);
        assert.match(e.message, /40 tokens/);
        const r = await oai.chat.completions.create({ model: 'tiny-ctx', messages: [{ role: 'user', content: 'short' }] });
        assert.equal(r.object, 'chat.completion');
    });

    it('/v1/messages: the same checks, in Anthropic\'s error shape', async () => {
        const m = fake.marker('anttools');
        const e = await ant.messages.create({
            model: 'text-only', max_tokens: 10, messages: [{ role: 'user', content: m }],
            tools: [{ name: 'f', input_schema: { type: 'object' } }],
        }).catch((x) => x);
        assert.ok(e instanceof Anthropic.BadRequestError, String(e));
        assert.equal(e.error.type, 'error');
        assert.equal(e.error.error.type, 'invalid_request_error');
        assert.match(e.error.error.message, /'text-only'.*'tools'/);
        assert.equal(fake.requestsFor(m).length, 0);
        const v = fake.marker('antimage');
        const e2 = await ant.messages.create({
            model: 'text-only', max_tokens: 10,
            messages: [{ role: 'user', content: [{ type: 'text', text: v }, { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] }],
        }).catch((x) => x);
        assert.ok(e2 instanceof Anthropic.BadRequestError, String(e2));
        assert.match(e2.error.error.message, /'vision'/);
        const c = fake.marker('antctx');
        const e3 = await ant.messages.create({ model: 'tiny-ctx', max_tokens: 10, messages: [{ role: 'user', content: `${c} ${'word '.repeat(60)}` }] }).catch((x) => x);
        assert.ok(e3 instanceof Anthropic.BadRequestError, String(e3));
        assert.match(e3.error.error.message, /context length/);
        const ok = await ant.messages.create({ model: 'full', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] });
        assert.equal(ok.type, 'message');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
