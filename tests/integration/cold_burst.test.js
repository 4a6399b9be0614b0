// SPDX-License-Identifier: MIT
//
// cold_burst.test.js - concurrent requests never wait on each other's
// responses when the upstream connection pool is empty (issue 9 item 4).
//
// N requests start at once against a plain-HTTP upstream that answers each
// after UPSTREAM_MS. With a connection per request they all finish after about
// one upstream time. The old behaviour (CURLOPT_PIPEWAIT on a plain-HTTP
// transfer: curl parks every other transfer until the first response says
// whether the connection can multiplex, which HTTP/1.1 never can) took two
// upstream times or more: 448 ms against 203 ms direct for N = 6 at 200 ms.
// The bound, LIMIT x UPSTREAM_MS, sits between the two with room for a loaded
// 2-core machine and a sanitizer build (~300 ms of slack for 8 requests).
//
// Two cold starts: a freshly started gateway, and the same gateway after the
// upstream closed every idle connection (what keep-alive expiry does). Both
// upstream transports: the native HTTP/1.1 path (auto, for http://) and
// libcurl (transport: curl), where the PIPEWAIT fix lives.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream, now } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const N = 8;
const UPSTREAM_MS = 400;
const LIMIT = 1.75; // pass below 700 ms; the serialised behaviour takes >= 800 ms

async function burst(gw, fake, name, model) {
    const marker = fake.script(fake.marker(name), { delayMs: UPSTREAM_MS });
    const body = { model, messages: [{ role: 'user', content: marker }] };
    const t0 = now();
    const times = await Promise.all(Array.from({ length: N }, async () => {
        const r = await h.chat(gw, body);
        assert.equal(r.status, 200, r.text);
        return now() - t0;
    }));
    return { wall: now() - t0, times, requests: fake.requestsFor(marker).length };
}

for (const [transport, model] of [['native', 'gpt-test'], ['curl', 'gpt-curl']]) {
describe(`cold burst, ${transport} upstream transport`, () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        // One worker: every request shares one upstream client.
        gw = await h.startGateway(fake, {
            workers: 1,
            providers: [{ id: 'fake-curl', type: 'openai', base_url: fake.baseUrl,
                api_key: 'env:FAKE_OPENAI_KEY', transport: 'curl' }],
            models: [{ id: 'gpt-curl', provider: 'fake-curl', upstream_model: 'gpt-4o-mini' }],
        });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it(`${N} parallel requests from a fresh gateway take about one upstream time`, async (t) => {
        const before0 = fake.connections;
        const r = await burst(gw, fake, 'fresh', model);
        t.diagnostic(`fresh: ${Math.round(r.wall)} ms for ${N} requests at ${UPSTREAM_MS} ms`);
        assert.equal(r.requests, N);
        assert.ok(r.wall < LIMIT * UPSTREAM_MS,
            `${N} requests at ${UPSTREAM_MS} ms took ${Math.round(r.wall)} ms (finish times ` +
            `${r.times.map(Math.round).join(', ')}); limit ${LIMIT * UPSTREAM_MS} ms`);
        assert.equal(fake.connections - before0, N, 'one upstream connection per concurrent request');
    });

    it(`${N} parallel requests after the idle connections closed take about one upstream time`, async (t) => {
        for (const s of fake.sockets) s.destroy(); // the upstream's keep-alive expiry
        await h.eventually(() => fake.sockets.size === 0, 2000);
        const r = await burst(gw, fake, 'expired', model);
        t.diagnostic(`expired: ${Math.round(r.wall)} ms for ${N} requests at ${UPSTREAM_MS} ms`);
        assert.equal(r.requests, N);
        assert.ok(r.wall < LIMIT * UPSTREAM_MS,
            `${N} requests at ${UPSTREAM_MS} ms took ${Math.round(r.wall)} ms (finish times ` +
            `${r.times.map(Math.round).join(', ')}); limit ${LIMIT * UPSTREAM_MS} ms`);
    });

    it('a warm pool is reused: the next burst opens no connection', async () => {
        const before0 = fake.connections;
        const r = await burst(gw, fake, 'warm', model);
        assert.ok(r.wall < LIMIT * UPSTREAM_MS, `warm burst took ${Math.round(r.wall)} ms`);
        assert.equal(fake.connections - before0, 0, 'connections opened for a warm burst');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
}
