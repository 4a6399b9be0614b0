// SPDX-License-Identifier: MIT
//
// cache_serve.test.js - the response cache on /v1 (issue 7 part 9): a route
// that opts in answers a repeated request from the cache (no upstream call,
// x-switchboard-cache: hit, cost 0 on its usage row), a streaming request
// from a stored answer as a stream, keeps tenants apart unless the route is
// shared, forgets after its TTL, and never caches a sampling request unless
// the route says so.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

describe('response cache on /v1', () => {
    let fake, gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });
    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (fake) await fake.stop();
    });

    const route = (cache) => cp.newRoute(gw, ['gpt-test'], 'priority', { cache });
    const ask = (model, content, extra = {}, auth) => h.request(gw, {
        path: '/v1/chat/completions', auth: !auth, headers: auth ? { authorization: `Bearer ${auth}` } : {},
        body: { model, temperature: 0, messages: [{ role: 'user', content }], ...extra },
    });

    it('a repeated request is a hit: no upstream call, the same answer, cost 0', async () => {
        const r1 = await route({ ttl_s: 60 });
        const m = fake.marker('same');
        const a = await ask(r1, m);
        assert.equal(a.status, 200, a.text);
        assert.equal(a.headers['x-switchboard-cache'], 'miss');
        const b = await ask(r1, m, { stream: false }); // members in another order and form: same key
        assert.equal(b.status, 200, b.text);
        assert.equal(b.headers['x-switchboard-cache'], 'hit');
        assert.equal(fake.requestsFor(m).length, 1, 'the hit went upstream');
        assert.deepEqual(b.json.choices, a.json.choices);
        await h.eventually(() => h.sql(gw, `select count(*) as n from usage_logs where route='${r1}'`)[0].n === 2);
        const rows = h.sql(gw, `select cost_usd from usage_logs where route='${r1}' order by ts`);
        assert.equal(rows[1].cost_usd, 0);
        const c = await ask(r1, fake.marker('other'));
        assert.equal(c.headers['x-switchboard-cache'], 'miss');
        const met = await h.request(gw, { method: 'GET', path: '/metrics' });
        assert.match(met.text, /switchboard_cache_hits_total [1-9]/);
        assert.match(met.text, /switchboard_cache_entries [1-9]/);
    });

    it('a streaming request is answered from a stored answer as a stream, and a stream fills the cache', async () => {
        const r1 = await route({ ttl_s: 60 });
        const m = fake.marker('stream');
        assert.equal((await ask(r1, m)).headers['x-switchboard-cache'], 'miss');
        const s = await h.stream(gw, { model: r1, temperature: 0, stream: true, messages: [{ role: 'user', content: m }] });
        await s.done;
        assert.equal(s.headers['x-switchboard-cache'], 'hit');
        assert.ok(h.streamText(s.events).length > 0);
        assert.equal(s.events[s.events.length - 1].data, '[DONE]');
        assert.equal(fake.requestsFor(m).length, 1);
        const m2 = fake.script(fake.marker('s2'), { chunks: ['Hel', 'lo'] });
        const s1 = await h.stream(gw, { model: r1, temperature: 0, stream: true, messages: [{ role: 'user', content: m2 }] });
        await s1.done;
        assert.equal(s1.headers['x-switchboard-cache'], 'miss');
        const w = await ask(r1, m2);
        assert.equal(w.headers['x-switchboard-cache'], 'hit', 'the streamed answer was stored');
        assert.equal(w.json.choices[0].message.content, 'Hello');
    });

    it('tenants are kept apart unless the route is shared', async () => {
        const k1 = (await cp.createKey(gw, { name: 'c-k1' })).key;
        const k2 = (await cp.createKey(gw, { name: 'c-k2' })).key;
        const own = await route({ ttl_s: 60 });
        const m = fake.marker('tenant');
        assert.equal((await ask(own, m, {}, k1)).headers['x-switchboard-cache'], 'miss');
        assert.equal((await ask(own, m, {}, k1)).headers['x-switchboard-cache'], 'hit');
        assert.equal((await ask(own, m, {}, k2)).headers['x-switchboard-cache'], 'miss', "k1's answer served to k2");
        const shared = await route({ ttl_s: 60, shared: true });
        const m2 = fake.marker('shared');
        assert.equal((await ask(shared, m2, {}, k1)).headers['x-switchboard-cache'], 'miss');
        assert.equal((await ask(shared, m2, {}, k2)).headers['x-switchboard-cache'], 'hit');
    });

    it('an entry is forgotten after its TTL; sampling requests are not cached unless the route says so', async () => {
        const r1 = await route({ ttl_s: 1 });
        const m = fake.marker('ttl');
        await ask(r1, m);
        assert.equal((await ask(r1, m)).headers['x-switchboard-cache'], 'hit');
        await new Promise((res) => setTimeout(res, 1100));
        assert.equal((await ask(r1, m)).headers['x-switchboard-cache'], 'miss');
        const m2 = fake.marker('sampled');
        await ask(r1, m2, { temperature: 0.7 });
        await ask(r1, m2, { temperature: 0.7 });
        assert.equal(fake.requestsFor(m2).length, 2, 'a sampling request was cached');
        const rs = await route({ ttl_s: 60, sampled: true });
        await ask(rs, m2, { temperature: 0.7 });
        assert.equal((await ask(rs, m2, { temperature: 0.7 })).headers['x-switchboard-cache'], 'hit');
    });
});
