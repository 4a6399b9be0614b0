// SPDX-License-Identifier: MIT
//
// cold_burst.test.js - concurrent requests never wait on each other's
// responses when the upstream connection pool is empty (issue 9 item 4).
//
// N requests start at once against a plain-HTTP upstream that holds every
// answer of the burst until all N requests have reached it (a gate, opened
// by the Nth arrival, or by GATE_MS for a test that fails). With a
// connection per request the gate opens on arrivals. The old behaviour
// (CURLOPT_PIPEWAIT on a plain-HTTP transfer: curl parks every other
// transfer until the first response says whether the connection can
// multiplex, which HTTP/1.1 never can) keeps N - 1 requests from the
// upstream until an answer comes, so the gate would only open on its
// timeout. This replaced a wall-clock bound (N requests at 400 ms in under
// 700 ms), which a loaded 2-core machine broke (772 ms, the first answer
// alone at 674 ms); the gate makes the same claim without a clock.
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
const GATE_MS = 10000;

/** A gate for one burst: answers wait until N requests arrived or GATE_MS passed. */
function burstGate() {
    let open;
    const opened = new Promise((r) => { open = r; });
    const timer = setTimeout(() => open('the gate timed out'), GATE_MS);
    const g = { arrived: 0, how: null };
    g.wait = async () => {
        if (++g.arrived === N) open('all arrived');
        g.how = await opened;
        clearTimeout(timer);
    };
    return g;
}

async function burst(gw, fake, name, model) {
    const gate = burstGate();
    const marker = fake.script(fake.marker(name), { gate: gate.wait });
    const body = { model, messages: [{ role: 'user', content: marker }] };
    const t0 = now();
    const times = await Promise.all(Array.from({ length: N }, async () => {
        const r = await h.chat(gw, body);
        assert.equal(r.status, 200, r.text);
        return now() - t0;
    }));
    return { wall: now() - t0, times, gate: gate.how, requests: fake.requestsFor(marker).length };
}

function assertConcurrent(r) {
    assert.equal(r.requests, N);
    assert.equal(r.gate, 'all arrived', `the upstream saw the ${N} requests only as answers left ` +
        `(finish times ${r.times.map(Math.round).join(', ')} ms)`);
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

    it(`${N} parallel requests from a fresh gateway all reach the upstream before any answer`, async (t) => {
        const before0 = fake.connections;
        const r = await burst(gw, fake, 'fresh', model);
        t.diagnostic(`fresh: ${Math.round(r.wall)} ms for ${N} requests`);
        assertConcurrent(r);
        assert.equal(fake.connections - before0, N, 'one upstream connection per concurrent request');
    });

    it(`${N} parallel requests after the idle connections closed all reach the upstream before any answer`, async (t) => {
        for (const s of fake.sockets) s.destroy(); // the upstream's keep-alive expiry
        await h.eventually(() => fake.sockets.size === 0, 2000);
        const r = await burst(gw, fake, 'expired', model);
        t.diagnostic(`expired: ${Math.round(r.wall)} ms for ${N} requests`);
        assertConcurrent(r);
    });

    it('a warm pool is reused: the next burst opens no connection', async () => {
        const before0 = fake.connections;
        const r = await burst(gw, fake, 'warm', model);
        assertConcurrent(r);
        assert.equal(fake.connections - before0, 0, 'connections opened for a warm burst');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
}
