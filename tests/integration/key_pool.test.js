// SPDX-License-Identifier: MIT
//
// key_pool.test.js - provider key pools (issue 7): several weighted keys per
// provider, from the config file (api_keys) and through the admin API; one
// conversation sticks to one key; a 429 moves traffic to another key and
// holds the first; a 401 marks a key dead (stored, shown by the API) until an
// admin revives or replaces it; keys never appear whole in an answer.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream, oaiError } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const K1 = 'sk-pool-primary-1111111111111111';
const K2 = 'sk-pool-second-22222222222222222';
const KGOOD = 'sk-pool-added-333333333333333333';
const KBAD = 'sk-pool-revoked-44444444444444444';

describe('provider key pools', () => {
    let A, gw;

    before(async () => {
        A = await new FakeUpstream({}).start(); // any key is accepted unless a scenario says otherwise
        gw = await h.startGateway(A, {
            env: { POOL_K1: K1, POOL_K2: K2 },
            providers: [
                { id: 'pool', type: 'openai', base_url: `http://127.0.0.1:${A.port}/v1`, api_key: 'env:POOL_K1',
                    api_keys: [{ label: 'second', key: 'env:POOL_K2', weight: 1 }] },
                { id: 'pool2', type: 'openai', base_url: `http://127.0.0.1:${A.port}/v1`, api_key: 'env:POOL_K1' },
            ],
            models: [
                { id: 'pm', provider: 'pool', upstream_model: 'gpt-4o-mini' },
                { id: 'pm2', provider: 'pool2', upstream_model: 'gpt-4o-mini' },
            ],
        });
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (A) await A.stop();
    });

    const keyOf = (rec) => (rec.headers.authorization || '').replace(/^Bearer /, '');
    const ask = (model, m, conv) => h.request(gw, {
        path: '/v1/chat/completions',
        headers: conv ? { 'x-switchboard-conversation': conv } : {},
        body: { model, messages: [{ role: 'user', content: m }] },
    });

    it('spreads conversations over the pool by weight, one key per conversation', async () => {
        const m = A.marker('spread');
        const seen = new Map();
        for (let i = 0; i < 40; i++) {
            const r = await ask('pm', m, `conv-${i}`);
            assert.equal(r.status, 200, r.text);
        }
        for (const rec of A.requestsFor(m)) seen.set(keyOf(rec), (seen.get(keyOf(rec)) || 0) + 1);
        assert.deepEqual([...seen.keys()].sort(), [K1, K2].sort(), 'both keys carry traffic');
        assert.ok(seen.get(K1) >= 8 && seen.get(K2) >= 8, `uneven: ${JSON.stringify([...seen.values()])}`);
        const m2 = A.marker('sticky');
        for (let i = 0; i < 6; i++) assert.equal((await ask('pm', m2, 'one-conversation')).status, 200);
        assert.equal(new Set(A.requestsFor(m2).map(keyOf)).size, 1, 'one conversation, one key');
    });

    it('a 429 on one key moves the request to another key and holds the first', async () => {
        const m = A.script(A.marker('k429'), (ctx) => {
            if (keyOf(ctx.record) === K1) {
                return ctx.fake._json(ctx.res, ctx.record, 429, oaiError('Rate limit reached', 'requests', null, 'rate_limit_exceeded'), { 'retry-after': '30' });
            }
            return ctx.fake._chat(ctx.res, ctx.record, {});
        });
        let switched = 0;
        for (let i = 0; i < 12; i++) {
            const r = await ask('pm', m, `c429-${i}`);
            assert.equal(r.status, 200, r.text);
            switched += r.headers['x-switchboard-fallbacks'] === '1';
        }
        const k1 = A.requestsFor(m).filter((rec) => keyOf(rec) === K1).length;
        assert.equal(k1, 1, 'after its 429 the key is held: no second request on it');
        assert.equal(switched, 1);
        const metrics = await h.request(gw, { method: 'GET', path: '/metrics' });
        assert.match(metrics.text, /switchboard_provider_key_held\{provider="pool",label="primary"\} 1/);
    });

    it('the API adds, lists (masked), validates and removes pool keys', async () => {
        let r = await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'added', api_key: KGOOD, weight: 3 });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json.label, 'added');
        assert.equal(r.json.weight, 3);
        assert.equal(r.json.status, 'active');
        assert.ok(!r.text.includes(KGOOD), 'the key is never answered whole');
        r = await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'added', api_key: KGOOD });
        assert.equal(r.status, 409, r.text);
        r = await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'Bad Label', api_key: KGOOD });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.field, 'label');
        r = await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'primary', api_key: KGOOD });
        assert.equal(r.status, 400, r.text);
        r = await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'w', api_key: KGOOD, weight: 0 });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error.field, 'weight');
        r = await h.request(gw, { method: 'PATCH', path: '/api/providers/pool/credentials/second', body: { weight: 2 } });
        assert.equal(r.status, 409, 'a config file key is changed in the file');
        r = await h.request(gw, { method: 'PATCH', path: '/api/providers/pool2/credentials/added', body: { weight: 1 } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.weight, 1);
        const list = await cp.api.get(gw, '/api/providers/pool2/credentials');
        assert.equal(list.status, 200, list.text);
        assert.deepEqual(list.json.data.map((k) => [k.label, k.source]), [['primary', 'config'], ['added', 'stored']]);
        assert.equal(list.json.data[0].reference, 'env:POOL_K1');
        assert.ok(!list.text.includes(KGOOD) && !list.text.includes(K1));
        r = await cp.api.post(gw, '/api/providers', { id: 'viaapi', type: 'openai', base_url: 'http://127.0.0.1:9/v1',
            api_keys: [{ label: 'a', key: 'env:POOL_K1' }] });
        assert.equal(r.status, 400, r.text);
        assert.match(r.json.error.message, /POST \/api\/providers\/\{id\}\/credentials/);
        r = await h.request(gw, { method: 'DELETE', path: '/api/providers/pool2/credentials/added' });
        assert.equal(r.status, 204, r.text);
        r = await h.request(gw, { method: 'DELETE', path: '/api/providers/pool2/credentials/added' });
        assert.equal(r.status, 404, r.text);
    });

    it('a 401 marks a key dead: stored, shown, skipped; revive and replace bring it back', async () => {
        cp.ok(await cp.api.post(gw, '/api/providers/pool2/credentials', { label: 'rotten', api_key: KBAD }), 201);
        const m = A.script(A.marker('k401'), (ctx) => {
            if (keyOf(ctx.record) === KBAD) {
                return ctx.fake._json(ctx.res, ctx.record, 401, oaiError('Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key'));
            }
            return ctx.fake._chat(ctx.res, ctx.record, {});
        });
        for (let i = 0; i < 16; i++) {
            const r = await ask('pm2', m, `c401-${i}`);
            assert.equal(r.status, 200, r.text);
        }
        assert.equal(A.requestsFor(m).filter((rec) => keyOf(rec) === KBAD).length, 1, 'one refusal, then never again');
        const dead = await h.eventually(async () => {
            const l = await cp.api.get(gw, '/api/providers/pool2/credentials');
            const k = l.json.data.find((e) => e.label === 'rotten');
            return k && k.status === 'dead' && k.dead_reason === '401 invalid_api_key';
        }, 8000);
        assert.ok(dead, 'the refused key is shown dead within a few poll periods');
        const rows = h.sql(gw, "select provider, label, reason from dead_keys");
        assert.deepEqual(rows, [{ provider: 'pool2', label: 'rotten', reason: '401 invalid_api_key' }]);

        let r = await cp.api.post(gw, '/api/providers/pool2/credentials/rotten/revive', {});
        assert.equal(r.status, 200, r.text);
        let l = await cp.api.get(gw, '/api/providers/pool2/credentials');
        assert.equal(l.json.data.find((e) => e.label === 'rotten').status, 'active');
        assert.deepEqual(h.sql(gw, 'select label from dead_keys'), []);

        // Replacing the key: a new fingerprint, a live key that serves.
        r = await h.request(gw, { method: 'PATCH', path: '/api/providers/pool2/credentials/rotten', body: { api_key: KGOOD } });
        assert.equal(r.status, 200, r.text);
        const m2 = A.marker('after');
        for (let i = 0; i < 16; i++) assert.equal((await ask('pm2', m2, `after-${i}`)).status, 200);
        assert.ok(A.requestsFor(m2).some((rec) => keyOf(rec) === KGOOD), 'the replaced key serves');
    });

    it('a provider whose every key is dead or held is skipped like a refused target', async () => {
        const m = A.script(A.marker('all429'), { status: 429, headers: { 'retry-after': '20' }, error: oaiError('slow down', 'requests', null, 'rate_limit_exceeded') });
        const r1 = await ask('pm', m, 'everything-held');
        assert.equal(r1.status, 429, r1.text);
        const r2 = await ask('pm', A.marker('later'), 'everything-held-2');
        assert.equal(r2.status, 503, r2.text);
        assert.equal(r2.json.error.code, 'no_usable_key');
    });

    it('stops cleanly', async () => {
        const r = await h.assertCleanStop(gw);
        gw = null;
        assert.equal(r.code, 0);
    });
});
