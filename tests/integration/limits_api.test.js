// SPDX-License-Identifier: MIT
//
// limits_api.test.js - limits and budgets of virtual keys and users
// (issue 7 parts 4 and 5) through the control plane: an admin sets rpm, tpm,
// budget_usd and budget_period on POST/PUT /api/keys and PUT /api/users/{id};
// bad values are refused with the field; only admins set limits; GET
// /api/keys/{id}, GET /api/users/{id} and GET /api/me show the limits and
// the current period's spend, summed from real usage rows.
//
// The last describe block drives the data plane (429 rate_limit_exceeded
// with Retry-After, 429 insufficient_quota at the budget). It is marked
// enforced on /v1 by src/gateway/proxy.c (reserve_limits, settle_limits).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');


describe('limits api', () => {
    let fake;
    let gw;
    let ann; // a user session

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, {
            models: [{
                id: 'priced', provider: 'fake', upstream_model: 'gpt-4o-mini',
                pricing: { input_per_mtok: 10000, output_per_mtok: 20000 }, // $0.01 and $0.02 a token
            }, {
                // Output only: a request's estimate (max_tokens 5) is exactly its real cost, $0.10.
                id: 'outonly', provider: 'fake', upstream_model: 'gpt-4o-mini',
                pricing: { input_per_mtok: 0, output_per_mtok: 20000 },
            }],
        });
        ann = await cp.userSession(gw, 'lim-ann', 'user');
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const chat = (key, model = 'priced', usage = { prompt_tokens: 10, completion_tokens: 5 }) => {
        const m = fake.script(fake.marker('lim'), { usage });
        return h.chat(gw, { model, messages: [{ role: 'user', content: m }], max_tokens: 5 },
            { headers: { authorization: `Bearer ${key}` } });
    };

    it('an admin creates a key with limits; GET shows them and a zero spend', async () => {
        const k = await cp.createKey(gw, { name: 'lim-1', user: 'lim-ann', rpm: 60, tpm: 100000, budget_usd: 5, budget_period: 'day' });
        const g = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`), 200);
        assert.deepEqual(g.limits, { rpm: 60, tpm: 100000, budget_usd: 5, budget_period: 'day' });
        assert.equal(g.spend.period, 'day');
        assert.equal(g.spend.spent_usd, 0);
        assert.equal(g.spend.requests, 0);
        assert.equal(g.spend.remaining_usd, 5);
        const since = new Date(g.spend.since);
        assert.equal(since.getUTCHours() + since.getUTCMinutes() + since.getUTCSeconds(), 0, g.spend.since);
        assert.equal(Date.parse(g.spend.until) - Date.parse(g.spend.since), 86400000);
        // The owner sees the same through their session.
        const mine = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`, ann), 200);
        assert.deepEqual(mine.limits, g.limits);
    });

    it('PUT /api/keys/{id} changes only what it names; null removes a limit', async () => {
        const k = await cp.createKey(gw, { name: 'lim-2', rpm: 10, budget_usd: 3, budget_period: 'month' });
        const p = cp.ok(await cp.api.put(gw, `/api/keys/${k.id}`, { rpm: null, tpm: 500 }), 200);
        assert.deepEqual(p.limits, { rpm: null, tpm: 500, budget_usd: 3, budget_period: 'month' });
        const q = cp.ok(await cp.api.put(gw, `/api/keys/${k.id}`, { budget_usd: null }), 200);
        assert.deepEqual(q.limits, { rpm: null, tpm: 500, budget_usd: null, budget_period: null });
        assert.equal(q.spend.period, 'month', 'without a budget the month is shown');
        assert.equal(q.spend.remaining_usd, null);
        // Audit rows go through the usage writer: they land within a batch.
        await cp.within(5000, async () => {
            const a = cp.ok(await cp.api.get(gw, `/api/audit?action=key.limits&target_id=${k.id}`), 200);
            return a.data.length === 2;
        }, 'two key.limits audit rows');
    });

    it('bad limits are refused with the field at fault, and nothing changes', async () => {
        const k = await cp.createKey(gw, { name: 'lim-3', rpm: 7 });
        const bad = [
            [{ rpm: -1 }, 'rpm'], [{ rpm: 1.5 }, 'rpm'], [{ tpm: 'many' }, 'tpm'],
            [{ budget_usd: -2 }, 'budget_usd'], [{ budget_usd: 'x' }, 'budget_usd'],
            [{ budget_usd: 4 }, 'budget_period'], [{ budget_usd: 4, budget_period: 'week' }, 'budget_period'],
            [{ burst: 3 }, 'burst'],
        ];
        for (const [body, field] of bad) {
            cp.assertApiError(await cp.api.put(gw, `/api/keys/${k.id}`, body), 400, undefined, field);
        }
        cp.assertApiError(await cp.api.post(gw, '/api/keys', { name: 'lim-bad', budget_usd: 1 }), 400, undefined, 'budget_period');
        const g = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`), 200);
        assert.equal(g.limits.rpm, 7);
        const all = cp.ok(await cp.api.get(gw, '/api/keys?limit=500'), 200);
        assert.ok(!all.data.some((x) => x.name === 'lim-bad'), 'a refused create left a key behind');
    });

    it('only an admin sets limits (403), on keys and on users', async () => {
        cp.assertApiError(await cp.api.post(gw, '/api/keys', { name: 'mine', rpm: 1000 }, ann), 403);
        const k = await cp.createKey(gw, { name: 'lim-own' }, ann);
        const r = await cp.api.put(gw, `/api/keys/${k.id}`, { rpm: 1000 }, ann);
        assert.equal(r.status, 403, r.text);
        const u = await cp.api.put(gw, '/api/users/lim-ann', { rpm: 1000 }, ann);
        assert.equal(u.status, 403, u.text);
    });

    it('PUT /api/users/{id} sets a user\'s limits; GET /api/users/{id} and /api/me show them', async () => {
        const p = cp.ok(await cp.api.put(gw, '/api/users/lim-ann', { rpm: 5, budget_usd: 12.5, budget_period: 'month' }), 200);
        assert.deepEqual(p.limits, { rpm: 5, tpm: null, budget_usd: 12.5, budget_period: 'month' });
        assert.equal(p.role, 'user', 'the rest of the user is unchanged');
        const g = cp.ok(await cp.api.get(gw, '/api/users/lim-ann'), 200);
        assert.deepEqual(g.limits, p.limits);
        const me = cp.ok(await cp.api.get(gw, '/api/me', ann), 200);
        assert.deepEqual(me.limits, p.limits);
        assert.equal(me.spend.period, 'month');
        assert.equal(new Date(me.spend.since).getUTCDate(), 1);
        cp.assertApiError(await cp.api.put(gw, '/api/users/lim-ann', { tpm: -5 }), 400, undefined, 'tpm');
        cp.assertApiError(await cp.api.put(gw, '/api/users/nobody-here', { rpm: 5 }), 404);
    });

    it('spend is read back from real usage: the key and its owner see the cost', async () => {
        const k = await cp.createKey(gw, { name: 'lim-spend', user: 'lim-ann', budget_usd: 100, budget_period: 'day' });
        const before = cp.ok(await cp.api.get(gw, '/api/me', ann), 200).spend.spent_usd;
        for (let i = 0; i < 3; i++) {
            const r = await chat(k.key);
            assert.equal(r.status, 200, r.text);
        }
        const cost = 3 * (10 * 0.01 + 5 * 0.02); // $0.60
        await cp.within(5000, async () => {
            const g = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`), 200);
            return g.spend.requests === 3;
        }, 'usage rows of the key');
        const g = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`), 200);
        assert.ok(Math.abs(g.spend.spent_usd - cost) < 1e-9, JSON.stringify(g.spend));
        assert.ok(Math.abs(g.spend.remaining_usd - (100 - cost)) < 1e-9, JSON.stringify(g.spend));
        const me = cp.ok(await cp.api.get(gw, '/api/me', ann), 200);
        assert.ok(Math.abs(me.spend.spent_usd - before - cost) < 1e-9, JSON.stringify(me.spend));
    });

    describe('data plane', () => {
        it('a key at its rpm gets 429 rate_limit_exceeded with Retry-After', async () => {
            const k = await cp.createKey(gw, { name: 'lim-rpm', rpm: 2 });
            for (let i = 0; i < 2; i++) assert.equal((await chat(k.key)).status, 200);
            const r = await chat(k.key);
            assert.equal(r.status, 429, r.text);
            const e = h.assertOpenAIError(r.json, r.text);
            assert.equal(e.code, 'rate_limit_exceeded', r.text);
            assert.match(e.message, new RegExp(`virtual key ${k.id}: 2 requests per minute`));
            const ra = Number(r.headers['retry-after']);
            assert.ok(ra >= 1 && ra <= 30, `Retry-After ${r.headers['retry-after']}`);
            // OpenAI's rate-limit headers: the limit that said no, none left, when it passes.
            assert.equal(r.headers['x-ratelimit-limit-requests'], '2');
            assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
            assert.match(r.headers['x-ratelimit-reset-requests'] || '', /^([0-9]+\.[0-9]{3}s|[0-9]+ms)$/);
            const ms = Number(r.headers['retry-after-ms']);
            assert.ok(ms > 0 && ms <= ra * 1000, `retry-after-ms ${r.headers['retry-after-ms']} vs Retry-After ${ra}`);
            const met = await h.request(gw, { method: 'GET', path: '/metrics' });
            assert.match(met.text, /switchboard_limit_rejections_total\{scope="key",kind="rate"\} [1-9]/);
        });

        it('a key at its budget gets 429 insufficient_quota, and nothing reaches the upstream', async () => {
            // Each request reserves and costs exactly $0.10: two fit in $0.25, the third does not.
            const k = await cp.createKey(gw, { name: 'lim-budget', budget_usd: 0.25, budget_period: 'day' });
            for (let i = 0; i < 2; i++) assert.equal((await chat(k.key, 'outonly')).status, 200);
            const before = fake.requests ? fake.requests.length : 0;
            const r = await chat(k.key, 'outonly');
            assert.equal(r.status, 429, r.text);
            assert.equal(h.assertOpenAIError(r.json, r.text).code, 'insufficient_quota', r.text);
            assert.equal(r.headers['x-ratelimit-limit-requests'], undefined, 'a budget is no rate limit');
            if (fake.requests) assert.equal(fake.requests.length, before, 'a refused request went upstream');
        });

        it("a provider's own rpm is never exceeded: the request beyond it is refused before the upstream", async () => {
            cp.ok(await cp.api.post(gw, '/api/providers', {
                id: 'lim-prov', type: 'openai', base_url: `http://127.0.0.1:${fake.port}/v1`, api_key: h.FAKE_KEY, rate_limits: { rpm: 2 },
            }), 201);
            cp.ok(await cp.api.post(gw, '/api/models', { id: 'lim-prov-m', provider: 'lim-prov', upstream_model: 'gpt-4o-mini' }), 201);
            const ask = () => h.chat(gw, { model: 'lim-prov-m', messages: [{ role: 'user', content: 'hi' }] });
            for (let i = 0; i < 2; i++) assert.equal((await ask()).status, 200);
            const r = await ask();
            assert.equal(r.status, 429, r.text);
            assert.match(h.assertOpenAIError(r.json, r.text).message, /provider lim-prov: 2 requests per minute/);
        });
    });
});
