// SPDX-License-Identifier: MIT
//
// routing.test.js - routes served on /v1 (issue 7): each strategy's choice,
// failover for each trigger (500, connection refused, timeout, 429 with
// Retry-After, context length), no failover for a client error or after a
// stream's first byte, the circuit breaker, sticky weighted choice, and the
// accounting (x-switchboard-fallbacks, one usage row with route and
// fallbacks). Two fake OpenAI upstreams, A and B; routes and models are made
// through /api, so every change is also a hot reload.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream, oaiError } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

describe('routing and failover', () => {
    let A, B, gw;

    before(async () => {
        A = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        B = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(A, {
            providers: [
                { id: 'pa', type: 'openai', base_url: `http://127.0.0.1:${A.port}/v1`, api_key: 'env:FAKE_OPENAI_KEY', timeout_ms: 800 },
                { id: 'pb', type: 'openai', base_url: `http://127.0.0.1:${B.port}/v1`, api_key: 'env:FAKE_OPENAI_KEY' },
            ],
        });
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (A) await A.stop();
        if (B) await B.stop();
    });

    /** A fresh model on provider p (health state is per model id), and a fresh route. */
    const model = (p, extra) => cp.newModel(gw, p, extra);
    const route = (targets, strategy, weights) => cp.newRoute(gw, targets, strategy, weights ? { weights } : {});

    const ask = (model, m, headers = {}) =>
        h.request(gw, { path: '/v1/chat/completions', headers, body: { model, messages: [{ role: 'user', content: m }] } });

    const rows = (route) => h.sql(gw, `select fallbacks, provider, http_status from usage_logs where route='${route}'`);

    function served(r, provider, fallbacks) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-provider'], provider, JSON.stringify(r.headers));
        assert.equal(r.headers['x-switchboard-fallbacks'], String(fallbacks));
    }

    it('priority: the first target serves while healthy; usage row carries the route', async () => {
        const r1 = await route([await model('pa'), await model('pb')]);
        const r = await ask(r1, A.marker('ok'));
        served(r, 'pa', 0);
        await h.eventually(() => rows(r1).length === 1);
        assert.deepEqual(rows(r1), [{ fallbacks: 0, provider: 'pa', http_status: 200 }]);
    });

    it('fails over on a 500 before anything reaches the client; one usage row', async () => {
        const r1 = await route([await model('pa'), await model('pb')]);
        const m = A.script(A.marker('500'), { status: 500, error: oaiError('boom', 'server_error') });
        const r = await ask(r1, m);
        served(r, 'pb', 1);
        assert.equal(A.requestsFor(m).length, 1);
        assert.equal(B.requestsFor(m).length, 1);
        await h.eventually(() => rows(r1).length === 1);
        assert.deepEqual(rows(r1), [{ fallbacks: 1, provider: 'pb', http_status: 200 }]);
    });

    it('fails over on connection refused and on a timeout', async () => {
        const rDead = await route(['dead-model', await model('pb')]);
        served(await ask(rDead, B.marker('refused')), 'pb', 1);
        const rSlow = await route([await model('pa'), await model('pb')]);
        const m = A.script(A.marker('slow'), { delayMs: 2000 });
        const r = await ask(rSlow, m);
        served(r, 'pb', 1);
    });

    it('429 with Retry-After fails over and keeps traffic away from that deployment until then', async () => {
        const ma = await model('pa');
        const r1 = await route([ma, await model('pb')]);
        const m = A.script(A.marker('429'), { status: 429, headers: { 'retry-after': '2' }, error: oaiError('slow down', 'requests', null, 'rate_limit_exceeded') });
        served(await ask(r1, m), 'pb', 1);
        const m2 = A.marker('held');
        served(await ask(r1, m2), 'pb', 0); /* held: A is not even tried */
        assert.equal(A.requestsFor(m2).length, 0);
        await new Promise((res) => setTimeout(res, 2100));
        served(await ask(r1, A.marker('back')), 'pa', 0);
    });

    it('a context-length error moves to a target with a larger window', async () => {
        const small = await model('pa', { context_length: 8000 });
        const same = await model('pa', { context_length: 8000 });
        const big = await model('pb', { context_length: 200000 });
        const r1 = await route([small, same, big]);
        const m = A.script(A.marker('ctx'), { status: 400, error: oaiError('too long', 'invalid_request_error', 'messages', 'context_length_exceeded') });
        const r = await ask(r1, m);
        served(r, 'pb', 1);
        assert.equal(A.requestsFor(m).length, 1, 'the target with the same window was skipped');
    });

    it('a client error (400) is not failed over', async () => {
        const r1 = await route([await model('pa'), await model('pb')]);
        const m = A.script(A.marker('400'), { status: 400, error: oaiError('bad temperature', 'invalid_request_error', 'temperature') });
        const r = await ask(r1, m);
        assert.equal(r.status, 400, r.text);
        assert.equal(B.requestsFor(m).length, 0);
        assert.equal(r.headers['x-switchboard-fallbacks'], '0');
    });

    it('streams fail over before the first byte, never after it', async () => {
        const r1 = await route([await model('pa'), await model('pb')]);
        const m = A.script(A.marker('s500'), { status: 503, error: oaiError('overloaded', 'server_error') });
        const s = await h.stream(gw, { model: r1, stream: true, messages: [{ role: 'user', content: m }] });
        await s.done;
        assert.equal(s.status, 200);
        assert.equal(s.headers['x-switchboard-provider'], 'pb');
        assert.ok(h.streamText(s.events).length > 0);
        const m2 = A.script(A.marker('sbreak'), { chunks: ['a', 'b', 'c', 'd'], chunkDelayMs: 20, breakAfter: 2 });
        const s2 = await h.stream(gw, { model: r1, stream: true, messages: [{ role: 'user', content: m2 }] });
        await s2.done;
        assert.equal(s2.headers['x-switchboard-provider'], 'pa');
        assert.equal(B.requestsFor(m2).length, 0, 'a stream that already sent bytes must not fail over');
        assert.ok(s2.events.some((e) => e.json && e.json.error), 'the broken stream ends with an error event');
    });

    it('the circuit breaker opens after repeated failures: no traffic to that deployment', async () => {
        const ma = await model('pa');
        const r1 = await route([ma, await model('pb')]);
        for (let i = 0; i < 5; i++) {
            const m = A.script(A.marker(`brk${i}`), { status: 502, error: oaiError('bad gateway', 'server_error') });
            served(await ask(r1, m), 'pb', 1);
        }
        const m = A.marker('after-open');
        served(await ask(r1, m), 'pb', 0);
        assert.equal(A.requestsFor(m).length, 0, 'an open breaker sends no traffic');
        const metrics = await h.request(gw, { method: 'GET', path: '/metrics' });
        assert.match(metrics.text, new RegExp(`switchboard_deployment_breaker_state\\{model="${ma}"\\} 1`), 'the open breaker shows in /metrics');
        // Every target open: a clear 503.
        const only = await route([ma]);
        const r = await ask(only, A.marker('none-left'));
        assert.equal(r.status, 503, r.text);
        assert.equal(r.json.error.code, 'no_healthy_target');
    });

    it('every target failing: the client gets the last error, counted once', async () => {
        const r1 = await route([await model('pa'), await model('pb')]);
        const m = A.marker('both');
        A.script(m, { status: 500, error: oaiError('a down', 'server_error') });
        B.script(m, { status: 503, error: oaiError('b down', 'server_error') });
        const r = await ask(r1, m);
        assert.equal(r.status, 503, r.text);
        assert.match(r.json.error.message, /b down/);
        assert.equal(r.headers['x-switchboard-fallbacks'], '1');
        await h.eventually(() => rows(r1).length === 1);
        await new Promise((res) => setTimeout(res, 300)); /* and no second row arrives */
        assert.deepEqual(rows(r1), [{ fallbacks: 1, provider: 'pb', http_status: 503 }]);
    });

    it('cost picks the cheapest target that fits; weighted is sticky per conversation', async () => {
        const dear = await model('pa', { pricing: { input_per_mtok: 10, output_per_mtok: 30 } });
        const cheap = await model('pb', { pricing: { input_per_mtok: 0.1, output_per_mtok: 0.3 } });
        served(await ask(await route([dear, cheap], 'cost'), A.marker('cost')), 'pb', 0);
        const w = await route([await model('pa'), await model('pb')], 'weighted', [1, 1]);
        const seen = new Set();
        for (let i = 0; i < 6; i++) {
            const r = await ask(w, A.marker(`w${i}`), { 'x-switchboard-conversation': 'conv-42' });
            assert.equal(r.status, 200, r.text);
            seen.add(r.headers['x-switchboard-provider']);
        }
        assert.equal(seen.size, 1, 'one conversation sticks to one target');
        const spread = new Set();
        for (let i = 0; i < 40 && spread.size < 2; i++)
            spread.add((await ask(w, A.marker(`x${i}`), { 'x-switchboard-conversation': `c${i}` })).headers['x-switchboard-provider']);
        assert.equal(spread.size, 2, 'different conversations spread over the weights');
    });

    it("a provider's max_concurrency caps its requests in flight; a route moves on to its next target", async () => {
        cp.ok(await cp.api.post(gw, '/api/providers', {
            id: 'pc', type: 'openai', base_url: `http://127.0.0.1:${A.port}/v1`, api_key: h.FAKE_KEY, max_concurrency: 1,
        }), 201);
        const mc = await model('pc');
        const m = A.script(A.marker('busy'), { delayMs: 600 });
        const [r1, r2] = await Promise.all([ask(mc, m), (async () => { await h.sleep(150); return ask(mc, m); })()]);
        assert.equal(r1.status, 200, r1.text);
        assert.equal(r2.status, 429, r2.text);
        assert.match(r2.json.error.message, /max_concurrency \(1\)/);
        const rt = await route([mc, await model('pb')]);
        const [s1, s2] = await Promise.all([ask(rt, m), (async () => { await h.sleep(150); return ask(rt, m); })()]);
        served(s1, 'pc', 0);
        served(s2, 'pb', 0);
        const met = await h.request(gw, { method: 'GET', path: '/metrics' });
        assert.match(met.text, /switchboard_provider_inflight\{provider="pc"\} 0/);
    });

    it('a virtual key scoped to a route may use the route; a route of unfit targets is a clear 400', async () => {
        const r1 = await route([await model('pa')]);
        const k = cp.ok(await cp.api.post(gw, '/api/keys', { name: 'route-key', models: [r1] }), 201);
        const r = await h.request(gw, { path: '/v1/chat/completions', auth: false, headers: { authorization: `Bearer ${k.key}` }, body: { model: r1, messages: [{ role: 'user', content: 'hi' }] } });
        assert.equal(r.status, 200, r.text);
        const tiny = await route([await model('pa', { context_length: 10 })]);
        const big = 'x'.repeat(2000);
        const r2 = await ask(tiny, big);
        assert.equal(r2.status, 400, r2.text);
        assert.equal(r2.json.error.code, 'no_target_fits');
    });
});
