// SPDX-License-Identifier: MIT
//
// retries.test.js - a model named directly gets its configured fallbacks,
// and retry rounds (issue 7): when every target failed, the gateway waits
// (exponential backoff with jitter, never less than an upstream's
// Retry-After) and goes over the plan again, inside a total deadline. Two
// fake OpenAI upstreams, A and B; models through /api (a hot reload each).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { performance } = require('node:perf_hooks');
const { FakeUpstream, oaiError } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

/** A scenario that answers `status` to its first n requests, then serves normally. */
function failFirst(n, status, headers = {}) {
    let seen = 0;
    return (ctx) => {
        if (seen++ < n) {
            const err = status === 429 ? oaiError('slow down', 'requests', null, 'rate_limit_exceeded')
                : oaiError('overloaded', 'server_error');
            return ctx.fake._json(ctx.res, ctx.record, status, err, headers);
        }
        return ctx.json && ctx.json.stream === true ? ctx.fake._chatStream(ctx.res, ctx.record, {})
            : ctx.fake._chat(ctx.res, ctx.record, {});
    };
}

describe('model fallbacks and retry rounds', () => {
    let A, B, gw;

    before(async () => {
        A = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        B = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(A, {
            providers: [
                { id: 'pa', type: 'openai', base_url: `http://127.0.0.1:${A.port}/v1`, api_key: 'env:FAKE_OPENAI_KEY' },
                { id: 'pb', type: 'openai', base_url: `http://127.0.0.1:${B.port}/v1`, api_key: 'env:FAKE_OPENAI_KEY' },
            ],
            models: [
                { id: 'cfg-primary', provider: 'pa', upstream_model: 'gpt-4o-mini', fallbacks: ['cfg-backup'] },
                { id: 'cfg-backup', provider: 'pb', upstream_model: 'gpt-4o-mini' },
            ],
            routing: { retries: 2, retry_backoff_ms: 200, retry_max_wait_ms: 1500, deadline_ms: 20000 },
        });
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (A) await A.stop();
        if (B) await B.stop();
    });

    /** A fresh model on provider p (health state is per model id). */
    const model = (p, extra) => cp.newModel(gw, p, extra);

    const ask = (model, m) =>
        h.request(gw, { path: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: m }] } });

    async function timed(p) {
        const t0 = performance.now();
        const r = await p;
        return { r, ms: performance.now() - t0 };
    }

    const rowsFor = (model) => h.sql(gw,
        `select model, provider, route, fallbacks, http_status from usage_logs where model in (${model.map((m) => `'${m}'`).join(',')})`);

    it('a model from the config file falls back to its fallbacks, in order; the row keeps no route', async () => {
        const m = A.script(A.marker('cfg'), { status: 503, error: oaiError('overloaded', 'server_error') });
        const r = await ask('cfg-primary', m);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-provider'], 'pb');
        assert.equal(r.headers['x-switchboard-model'], 'cfg-backup');
        assert.equal(r.headers['x-switchboard-fallbacks'], '1');
        assert.equal(A.requestsFor(m).length, 1);
        await h.eventually(() => rowsFor(['cfg-backup']).length === 1);
        assert.deepEqual(rowsFor(['cfg-backup']), [{ model: 'cfg-backup', provider: 'pb', route: null, fallbacks: 1, http_status: 200 }]);
        // last_used_at (issue 7 part 6): the model that answered, not the one that failed.
        const used = await h.eventually(async () => (await cp.api.get(gw, '/api/models/cfg-backup')).json.last_used_at);
        assert.ok(used && Date.parse(used) > Date.now() - 60000, `last_used_at ${used}`);
        assert.equal((await cp.api.get(gw, '/api/models/cfg-primary')).json.last_used_at, null);
    });

    it('fallbacks set through /api are shown, validated and served; a client error is not failed over', async () => {
        const backup = await model('pb');
        const primary = await model('pa', { fallbacks: [backup] });
        const got = await cp.api.get(gw, `/api/models/${primary}`);
        assert.deepEqual(got.json.fallbacks, [backup]);
        let bad = await cp.api.post(gw, '/api/models', { id: cp.freshId('x'), provider: 'pa', fallbacks: ['no-such-model'] });
        assert.equal(bad.status, 400, bad.text);
        assert.equal(bad.json.error.field, 'fallbacks');
        const self = cp.freshId('s');
        bad = await cp.api.post(gw, '/api/models', { id: self, provider: 'pa', fallbacks: [self] });
        assert.equal(bad.status, 400, bad.text);
        assert.match(bad.json.error.message, /itself/);

        const refused = A.script(A.marker('down'), { destroy: true });
        const r = await ask(primary, refused);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-model'], backup);
        const m400 = A.script(A.marker('400'), { status: 400, error: oaiError('bad temperature', 'invalid_request_error', 'temperature') });
        const r4 = await ask(primary, m400);
        assert.equal(r4.status, 400, r4.text);
        assert.equal(B.requestsFor(m400).length, 0);
    });

    it('a retry round waits with backoff and tries the same target again', async () => {
        const solo = await model('pa');
        const m = A.script(A.marker('flaky'), failFirst(2, 503));
        const { r, ms } = await timed(ask(solo, m));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-fallbacks'], '2');
        assert.equal(A.requestsFor(m).length, 3);
        // Round 1 waits 100..200 ms, round 2 200..400 ms (backoff 200, doubled, jittered to [b/2, b]).
        assert.ok(ms >= 290, `two backoffs took only ${ms.toFixed(0)} ms`);
        const gaps = A.requestsFor(m).map((q) => q.receivedAt);
        assert.ok(gaps[2] - gaps[1] >= 190, `the second wait (${(gaps[2] - gaps[1]).toFixed(0)} ms) did not double`);
    });

    it('rounds are bounded: after retries rounds the client gets the last error', async () => {
        const solo = await model('pa');
        const m = A.script(A.marker('down3'), { status: 502, error: oaiError('bad gateway', 'server_error') });
        const r = await ask(solo, m);
        assert.equal(r.status, 502, r.text);
        assert.equal(A.requestsFor(m).length, 3, '1 attempt + 2 retry rounds');
        assert.equal(r.headers['x-switchboard-fallbacks'], '2');
    });

    it('a Retry-After is honoured: the next round waits at least that long', async () => {
        const solo = await model('pa');
        const m = A.script(A.marker('ra'), failFirst(1, 429, { 'retry-after': '1' }));
        const { r, ms } = await timed(ask(solo, m));
        assert.equal(r.status, 200, r.text);
        assert.ok(ms >= 990, `answered after ${ms.toFixed(0)} ms, before the upstream's Retry-After`);
        assert.equal(A.requestsFor(m).length, 2);
    });

    it('a Retry-After longer than retry_max_wait_ms goes back to the client at once', async () => {
        const solo = await model('pa');
        const m = A.script(A.marker('ra30'), failFirst(1, 429, { 'retry-after': '30' }));
        const { r, ms } = await timed(ask(solo, m));
        assert.equal(r.status, 429, r.text);
        assert.equal(r.headers['retry-after'], '30');
        assert.equal(A.requestsFor(m).length, 1);
        assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    });

    it('a route retries over all its targets; a stream retries before its first byte', async () => {
        const a1 = await model('pa');
        const b1 = await model('pb');
        const id = await cp.newRoute(gw, [a1, b1]);
        const m = A.marker('both');
        A.script(m, failFirst(1, 500));
        B.script(m, failFirst(1, 500));
        const s = await h.stream(gw, { model: id, stream: true, messages: [{ role: 'user', content: m }] });
        await s.done;
        assert.equal(s.status, 200);
        assert.equal(s.headers['x-switchboard-fallbacks'], '2');
        assert.ok(h.streamText(s.events).length > 0);
        assert.equal(A.requestsFor(m).length, 2, 'A failed, B failed, then A again after the backoff');
        assert.equal(B.requestsFor(m).length, 1);
    });

    it('a client that leaves during the backoff is accounted once, with nothing more sent upstream', async () => {
        const solo = await model('pa');
        const m = A.script(A.marker('gone'), { status: 503, error: oaiError('overloaded', 'server_error') });
        await h.request(gw, { path: '/v1/chat/completions', timeoutMs: 60,
            body: { model: solo, messages: [{ role: 'user', content: m }] } }).catch(() => null);
        await new Promise((res) => setTimeout(res, 700));
        assert.equal(A.requestsFor(m).length, 1, 'no round after the client left');
        await h.eventually(() => rowsFor([solo]).length === 1);
        assert.equal(rowsFor([solo])[0].http_status, 499);
    });

    it('stops cleanly', async () => {
        const r = await h.assertCleanStop(gw);
        gw = null;
        assert.equal(r.code, 0);
    });
});
