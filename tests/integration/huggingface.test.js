// SPDX-License-Identifier: MIT
//
// huggingface.test.js - the `huggingface` adapter end to end: the official
// openai SDK talks to the gateway, the gateway to a fake TGI server
// (lib/fake-tgi.js). Checks the exact /generate body (ChatML prompt,
// parameters), whole and streamed answers agreeing (special tokens
// dropped), usage, finish reasons, tools refused with a clear 400, TGI's
// validation and overload errors mapped, an in-stream error and a broken
// stream ending the client's stream with an error.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeUpstream } = require('./lib/fake-upstream');
const { FakeTGI } = require('./lib/fake-tgi');
const h = require('./lib/harness');

const HF_TOKEN = 'hf_fakeTokenForTests0123456789';

describe('huggingface adapter (TGI)', () => {
    let fake;
    let tgi;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        tgi = await new FakeTGI({ token: HF_TOKEN }).start();
        gw = await h.startGateway(fake, {
            env: { HF_TEST_TOKEN: HF_TOKEN },
            providers: [{ id: 'tgi', type: 'huggingface', base_url: tgi.baseUrl, api_key: 'env:HF_TEST_TOKEN', timeout_ms: 5000 }],
            models: [{ id: 'hf-qwen', provider: 'tgi', upstream_model: 'Qwen/Qwen2.5-7B-Instruct' }],
        });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (tgi) await tgi.stop();
        if (fake) await fake.stop();
    });

    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there, how are you?' }];

    it('chat: the exact /generate body and the answer', async () => {
        const r = await client.chat.completions.create({ model: 'hf-qwen', messages, max_tokens: 50, temperature: 0, top_p: 0.95, stop: ['###'], seed: 3 });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'Qwen/Qwen2.5-7B-Instruct');
        assert.equal(r.choices[0].message.content, 'You said: Hello there, how are you?');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.usage.completion_tokens, 7);
        const up = tgi.requests.at(-1);
        assert.equal(up.path, '/generate');
        assert.equal(up.headers.authorization, `Bearer ${HF_TOKEN}`);
        assert.equal(up.raw, JSON.stringify({
            inputs: '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there, how are you?<|im_end|>\n<|im_start|>assistant\n',
            parameters: { max_new_tokens: 50, do_sample: false, top_p: 0.95, stop: ['###'], seed: 3, details: true, return_full_text: false },
        }));
    });

    it('stream: same text as the whole answer, finish and usage', async () => {
        const stream = await client.chat.completions.create({ model: 'hf-qwen', messages, stream: true, stream_options: { include_usage: true }, temperature: 0.8 });
        let text = '';
        let finish = null;
        let usage = null;
        let first = null;
        for await (const chunk of stream) {
            if (chunk.usage) { usage = chunk.usage; continue; }
            first ??= chunk.choices[0].delta;
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        assert.equal(first.role, 'assistant');
        assert.equal(text, 'You said: Hello there, how are you?');
        assert.ok(!text.includes('</s>'));
        assert.equal(finish, 'stop');
        const inputLength = tgi.requests.at(-1).json.inputs.split(/\s+/).length;
        assert.deepEqual(usage, { prompt_tokens: inputLength, completion_tokens: 8, total_tokens: inputLength + 8 });
        assert.equal(tgi.requests.at(-1).path, '/generate_stream');
        assert.equal(tgi.requests.at(-1).json.parameters.temperature, 0.8);
        assert.equal(tgi.requests.at(-1).json.parameters.do_sample, true);
    });

    it('max_tokens reached: finish_reason length', async () => {
        const r = await client.chat.completions.create({ model: 'hf-qwen', messages, max_tokens: 3 });
        assert.equal(r.choices[0].message.content, 'You said: Hello ');
        assert.equal(r.choices[0].finish_reason, 'length');
    });

    it('tools and images are a clear 400 on the native API', async () => {
        const n = tgi.requests.length;
        await assert.rejects(client.chat.completions.create({ model: 'hf-qwen', messages, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }),
            (e) => { assert.equal(e.status, 400); assert.match(e.message, /'tools' is not supported/); return true; });
        await assert.rejects(client.chat.completions.create({ model: 'hf-qwen', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }),
            (e) => { assert.equal(e.status, 400); assert.match(e.message, /text parts only/); return true; });
        assert.equal(tgi.requests.length, n, 'a refused request reached the upstream');
    });

    it('TGI errors keep their meaning', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'hf-qwen', messages, max_tokens: 5000 }),
            (e) => { assert.equal(e.status, 400); assert.equal(e.code, 'context_length_exceeded'); assert.match(e.message, /must be <= 4096/); return true; });
        await assert.rejects(client.chat.completions.create({ model: 'hf-qwen', messages: [{ role: 'user', content: 'overload' }] }),
            (e) => { assert.equal(e.status, 503); assert.match(e.message, /overloaded/); return true; });
    });

    it('an error event or a broken stream ends the client stream with an error', async () => {
        for (const marker of ['fail-midway please', 'break-stream please']) {
            const stream = await client.chat.completions.create({ model: 'hf-qwen', stream: true, messages: [{ role: 'user', content: marker }] });
            let text = '';
            await assert.rejects(async () => {
                for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
            }, (e) => { assert.ok(!String(e.message).includes(HF_TOKEN)); return true; }, marker);
            assert.ok(text.startsWith('You said:'), `partial text before the error: ${text}`);
        }
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
