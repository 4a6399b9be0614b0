// SPDX-License-Identifier: MIT
//
// conntest.test.js - "test connection" (issue 5 part 5) against the real
// binary: POST /api/providers/{id}/test, POST /api/models/{id}/test and
// POST /api/providers/test (an unsaved configuration). Each diagnosis is
// produced by a real failure: a closed port (connection refused), a name
// under .invalid (DNS), the plain-HTTP fake spoken to as https:// (TLS), a
// wrong key (401), a scripted 404 for the model, a scripted delay past the
// provider's timeout. The stored result is read back through
// GET /api/providers/{id}; no key may appear in any answer or log line.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const WRONG_KEY = 'sk-wrongkey-0123456789abcdefXYZW';

function post(gw, path, body) {
    return h.request(gw, { method: 'POST', path, body, timeoutMs: 40000 });
}

function assertShape(r, what) {
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
    const j = r.json;
    assert.equal(typeof j.ok, 'boolean', r.text);
    assert.match(j.stage, /^(dns|connect|tls|auth|model|done)$/, r.text);
    assert.equal(typeof j.diagnosis, 'string', r.text);
    for (const k of ['dns', 'connect', 'tls', 'request', 'total']) {
        assert.ok(k in j.latency_ms, `latency_ms.${k} missing: ${r.text}`);
        const v = j.latency_ms[k];
        assert.ok(v === null || (Number.isInteger(v) && v >= 0), `latency_ms.${k}=${v}`);
    }
    assert.ok(Number.isInteger(j.latency_ms.total), r.text);
    return j;
}

function assertNoKey(text, what) {
    for (const k of [h.FAKE_KEY, WRONG_KEY, WRONG_KEY.slice(0, 10), WRONG_KEY.slice(-10)]) {
        assert.ok(!text.includes(k), `${what} contains a key fragment: ${text}`);
    }
}

describe('connection tests', () => {
    let fake;
    let gw;
    const seen = []; // every answer, scanned for keys at the end

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const base = () => `http://127.0.0.1:${fake.port}/v1`;

    it('a working provider: done, with listing, latencies, stored and visible', async () => {
        const r = await post(gw, '/api/providers/fake/test');
        seen.push(r.text);
        const j = assertShape(r, 'fake');
        assert.equal(j.ok, true, r.text);
        assert.equal(j.stage, 'done', r.text);
        assert.equal(j.http_status, 200, r.text);
        assert.deepEqual(j.models, ['gpt-4o-mini', 'text-embedding-3-small'], r.text);
        assert.equal(j.models_count, 2, r.text);
        assert.equal(j.latency_ms.tls, null, 'no TLS over http://');
        assert.ok(Number.isInteger(j.latency_ms.dns) && Number.isInteger(j.latency_ms.connect), r.text);
        assert.ok(Number.isInteger(j.latency_ms.request), r.text);
        assert.match(j.diagnosis, /reachable.*listed 2 models.*answered/, r.text);
        // The completion really went upstream, through the adapter, with max_tokens 1.
        const chats = fake.requests.filter((q) => q.path === '/v1/chat/completions');
        assert.ok(chats.length >= 1, 'no completion reached the fake');
        assert.equal(chats.at(-1).json.max_tokens, 1);
        assert.equal(chats.at(-1).headers.authorization, `Bearer ${h.FAKE_KEY}`);

        const g = await h.request(gw, { method: 'GET', path: '/api/providers/fake' });
        seen.push(g.text);
        assert.equal(g.status, 200, g.text);
        assert.ok(g.json.last_tested, `last_tested not set: ${g.text}`);
        assert.equal(g.json.test_result.ok, true, g.text);
        assert.equal(g.json.test_result.stage, 'done', g.text);
        assert.deepEqual(g.json.test_result.models, j.models);
    });

    it('a closed port: stage connect, connection refused', async () => {
        const r = await post(gw, '/api/providers/dead/test');
        seen.push(r.text);
        const j = assertShape(r, 'dead');
        assert.equal(j.ok, false);
        assert.equal(j.stage, 'connect', r.text);
        assert.match(j.diagnosis, /connection refused by 127\.0\.0\.1:9/, r.text);
        assert.equal(j.latency_ms.request, null, r.text);
        const g = await h.request(gw, { method: 'GET', path: '/api/providers/dead' });
        assert.equal(g.json.test_result.stage, 'connect', g.text);
    });

    it('a wrong key: stage auth, 401, the key never echoed (answer, store, logs)', async () => {
        const c = await post(gw, '/api/providers', {
            id: 'badkey', type: 'openai', base_url: base(), api_key: WRONG_KEY,
        });
        assert.equal(c.status, 201, c.text);
        const r = await post(gw, '/api/providers/badkey/test');
        seen.push(r.text);
        const j = assertShape(r, 'badkey');
        assert.equal(j.ok, false);
        assert.equal(j.stage, 'auth', r.text);
        assert.equal(j.http_status, 401, r.text);
        assert.match(j.diagnosis, /^401: the key was rejected/, r.text);
        const g = await h.request(gw, { method: 'GET', path: '/api/providers/badkey' });
        seen.push(g.text);
        assert.equal(g.json.test_result.stage, 'auth', g.text);
        // The fake's 401 message echoes part of the key; none of it may come through.
        const last = fake.requests.at(-1);
        assert.match(last.responseBody, /Incorrect API key provided: sk-\*+XYZW/);
    });

    it('an unresolvable name: stage dns', async () => {
        const r = await post(gw, '/api/providers/test', {
            id: 'dnstest', type: 'openai', base_url: 'http://nohost.invalid/v1', api_key: WRONG_KEY,
        });
        seen.push(r.text);
        const j = assertShape(r, 'dns');
        assert.equal(j.stage, 'dns', r.text);
        assert.match(j.diagnosis, /^DNS lookup failed for nohost\.invalid/, r.text);
        assert.equal(j.latency_ms.connect, null, r.text);
    });

    it('plain HTTP spoken to as https: stage tls', async () => {
        const r = await post(gw, '/api/providers/test', {
            id: 'tlstest', type: 'openai', base_url: `https://127.0.0.1:${fake.port}/v1`, api_key: h.FAKE_KEY,
        });
        seen.push(r.text);
        const j = assertShape(r, 'tls');
        assert.equal(j.ok, false);
        assert.equal(j.stage, 'tls', r.text);
        assert.match(j.diagnosis, /^TLS/, r.text);
        assert.equal(j.latency_ms.request, null, r.text);
    });

    it('an unknown model (unsaved configuration): stage model, 404 named', async () => {
        const m = fake.marker('nomodel');
        fake.script(m, {
            status: 404,
            error: { error: { message: `The model \`${m}\` does not exist`, type: 'invalid_request_error', param: null, code: 'model_not_found' } },
        });
        const r = await post(gw, '/api/providers/test', {
            id: 'unsaved', type: 'openai', base_url: base(), api_key: h.FAKE_KEY, model: m,
        });
        seen.push(r.text);
        const j = assertShape(r, 'model 404');
        assert.equal(j.ok, false);
        assert.equal(j.stage, 'model', r.text);
        assert.equal(j.http_status, 404, r.text);
        assert.match(j.diagnosis, new RegExp(`^404: model ${m} not found`), r.text);
        assert.deepEqual(j.models, ['gpt-4o-mini', 'text-embedding-3-small'], 'the listing ran first');
        // Nothing stored for an unsaved configuration.
        const g = await h.request(gw, { method: 'GET', path: '/api/providers/unsaved' });
        assert.equal(g.status, 404, g.text);
    });

    it('a slow upstream: timed out after the provider timeout', async () => {
        const m = fake.marker('slow');
        fake.script(m, { delayMs: 2500 });
        const r = await post(gw, '/api/providers/test', {
            id: 'slowtest', type: 'openai', base_url: base(), api_key: h.FAKE_KEY, timeout_ms: 1000, model: m,
        });
        seen.push(r.text);
        const j = assertShape(r, 'timeout');
        assert.equal(j.stage, 'model', r.text);
        assert.match(j.diagnosis, /^timed out after 1 s/, r.text);
        assert.ok(j.latency_ms.total >= 900 && j.latency_ms.total < 2400, r.text);
    });

    it('a model test: a tiny completion with answer and usage', async () => {
        const r = await post(gw, '/api/models/gpt-test/test', { max_tokens: 3 });
        seen.push(r.text);
        const j = assertShape(r, 'model');
        assert.equal(j.ok, true, r.text);
        assert.equal(typeof j.answer, 'string', r.text);
        assert.ok(j.answer.length > 0 && j.answer.length <= 200, r.text);
        assert.ok(Number.isInteger(j.usage.prompt_tokens) && Number.isInteger(j.usage.completion_tokens), r.text);
        assert.equal(j.models, null, 'a model test lists nothing');
        assert.equal(fake.requests.at(-1).json.max_tokens, 3);
    });

    it('bad input gets a clear error', async () => {
        const a = await post(gw, '/api/models/gpt-test/test', { max_tokens: 99 });
        assert.equal(a.status, 400, a.text);
        assert.equal(a.json.error.field, 'max_tokens', a.text);
        const b = await post(gw, '/api/models/nope/test');
        assert.equal(b.status, 404, b.text);
        const c = await post(gw, '/api/providers/nope/test');
        assert.equal(c.status, 404, c.text);
        const d = await post(gw, '/api/providers/test', { id: 'x', type: 'nosuchtype', base_url: base() });
        assert.equal(d.status, 400, d.text);
        const e = await post(gw, '/api/providers/test', { id: 'x', type: 'openai', base_url: base(), model: 7 });
        assert.equal(e.status, 400, e.text);
        assert.equal(e.json.error.field, 'model', e.text);
    });

    it('no key in any answer or log line', async () => {
        for (const t of seen) assertNoKey(t, 'an answer');
        assertNoKey(gw.err + gw.out, 'the gateway log');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});

describe('connection test rate limit', () => {
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

    it('the 11th test within a minute gets 429 with Retry-After', async () => {
        for (let i = 0; i < 10; i++) {
            const r = await post(gw, '/api/providers/dead/test');
            assert.equal(r.status, 200, `test ${i + 1}: ${r.text}`);
        }
        const r = await post(gw, '/api/providers/dead/test');
        assert.equal(r.status, 429, r.text);
        const after = Number(r.headers['retry-after']);
        assert.ok(after >= 1 && after <= 60, `retry-after ${r.headers['retry-after']}`);
        assert.equal(r.json.error.code, 'rate_limited', r.text);
        // Other /api calls are not limited.
        const g = await h.request(gw, { method: 'GET', path: '/api/providers/dead' });
        assert.equal(g.status, 200, g.text);
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
