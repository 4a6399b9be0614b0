// SPDX-License-Identifier: MIT
//
// upstream_errors.test.js - what the client sees when the upstream fails:
// its status mapped faithfully with its message (429 keeps Retry-After),
// 502 when it cannot be reached or hangs up, 504 when it is too slow; always
// the OpenAI error shape.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream, oaiError } = require('./lib/fake-upstream');
const h = require('./lib/harness');

describe('upstream errors', () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const ask = (m, model = 'gpt-test') => h.chat(gw, { model, messages: [{ role: 'user', content: m }] });

    it('429 with Retry-After: status, header and upstream message reach the client', async () => {
        const message = 'Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1.';
        const m = fake.script(fake.marker('429'), {
            status: 429, headers: { 'retry-after': '1' },
            error: oaiError(message, 'requests', null, 'rate_limit_exceeded'),
        });
        const r = await ask(m);
        assert.equal(r.status, 429, r.text);
        assert.equal(r.headers['retry-after'], '1', `Retry-After not preserved: ${JSON.stringify(r.headers)}`);
        const e = h.assertOpenAIError(r.json, r.text);
        assert.ok(e.message.includes(message), `upstream message lost: ${e.message}`);
        assert.ok(fake.requestsFor(m).length >= 1);
    });

    it('500 from the upstream: 500 or 502 with the upstream message', async () => {
        const message = 'The server had an error while processing your request. Sorry about that!';
        const m = fake.script(fake.marker('500'), { status: 500, error: oaiError(message, 'server_error') });
        const r = await ask(m);
        assert.ok(r.status === 500 || r.status === 502, `expected 500 or 502, got ${r.status}: ${r.text}`);
        const e = h.assertOpenAIError(r.json, r.text);
        assert.ok(e.message.includes(message), `upstream message lost: ${e.message}`);
    });

    it('400 from the upstream: 400 with the upstream message and param', async () => {
        const message = "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.";
        const m = fake.script(fake.marker('400'), {
            status: 400, error: oaiError(message, 'invalid_request_error', 'messages', 'context_length_exceeded'),
        });
        const r = await ask(m);
        assert.equal(r.status, 400, r.text);
        const e = h.assertOpenAIError(r.json, r.text);
        assert.ok(e.message.includes(message), `upstream message lost: ${e.message}`);
        // SDK clients branch on these: the upstream's own type, code and param are kept.
        assert.equal(e.type, 'invalid_request_error', r.text);
        assert.equal(e.code, 'context_length_exceeded', r.text);
        assert.equal(e.param, 'messages', r.text);
    });

    it("a 429 keeps the upstream's own error type (insufficient_quota)", async () => {
        const m = fake.script(fake.marker('quota'), {
            status: 429, error: oaiError('You exceeded your current quota.', 'insufficient_quota', null, 'insufficient_quota'),
        });
        const r = await ask(m);
        assert.equal(r.status, 429, r.text);
        const e = h.assertOpenAIError(r.json, r.text);
        assert.equal(e.type, 'insufficient_quota', r.text);
        assert.equal(e.code, 'insufficient_quota', r.text);
        assert.equal(e.param, null, r.text);
    });

    it('upstream refuses the connection (dead-model): 502', async () => {
        const t0 = h.now();
        const r = await ask(fake.marker('dead'), 'dead-model');
        assert.equal(r.status, 502, r.text);
        h.assertOpenAIError(r.json, r.text);
        assert.ok(h.now() - t0 < 10000, 'took too long to report a refused connection');
    });

    it('upstream too slow (longer than the provider timeout_ms=500): 504, without waiting for it', async () => {
        const m = fake.script(fake.marker('slow'), { delayMs: 3000 });
        const t0 = h.now();
        const r = await ask(m, 'slow-model');
        const took = h.now() - t0;
        assert.equal(r.status, 504, r.text);
        h.assertOpenAIError(r.json, r.text);
        assert.ok(took < 2900, `the gateway waited ${took.toFixed(0)} ms, as long as the upstream`);
        assert.ok(took >= 400, `the 504 came after ${took.toFixed(0)} ms, before the 500 ms timeout`);
    });

    it('upstream hangs up without answering: 502', async () => {
        const m = fake.script(fake.marker('hangup'), { destroy: true });
        const r = await ask(m);
        assert.equal(r.status, 502, r.text);
        h.assertOpenAIError(r.json, r.text);
    });

    it('upstream rejects the provider key (401): an error in the OpenAI shape, not a 2xx', async () => {
        const m = fake.script(fake.marker('badkey'), {
            status: 401, error: oaiError('Incorrect API key provided: sk-fa*****cdef.', 'invalid_request_error', null, 'invalid_api_key'),
        });
        const r = await ask(m);
        assert.ok(r.status >= 400, `got ${r.status}: ${r.text}`);
        h.assertOpenAIError(r.json, r.text);
    });

    it('the gateway is still healthy after all that', async () => {
        const r = await ask(fake.marker('ok'));
        assert.equal(r.status, 200, r.text);
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
