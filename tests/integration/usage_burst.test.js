// SPDX-License-Identifier: MIT
//
// usage_burst.test.js - a burst of 10,000 requests loses no usage row: every
// request is answered, and after SIGTERM (which flushes the usage queue) the
// SQLite file holds exactly one row per request, with the upstream's tokens.
//
// A second burst saturates the gateway on the full path (issue 9 item 7): a
// virtual key with RPM/TPM limits, a route of two targets, 64 connections on
// one worker. The usage writer must keep pace while it runs (every row is in
// the table before shutdown, none counted lost in /metrics), and each row
// carries the key and the route.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const N = 10000;
const CONCURRENCY = 32;

/** n requests over `conns` keep-alive connections; returns Map(status -> count). */
async function burst(gw, n, conns, body, bearer) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
    let next = 0;
    const statuses = new Map();
    const worker = async () => {
        while (next < n) {
            next++;
            const s = await h.chatStatus(agent, gw, body, bearer);
            statuses.set(s, (statuses.get(s) || 0) + 1);
        }
    };
    await Promise.all(Array.from({ length: conns }, worker));
    agent.destroy();
    return statuses;
}

async function metric(gw, name) {
    const r = await h.request(gw, { method: 'GET', path: '/metrics' });
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text);
    return m ? Number(m[1]) : undefined;
}

describe('usage at saturation, full path', () => {
    const M = 6000;
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, { workers: 1, server: { max_connections: 200 } });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it(`${M} requests at 64 connections: every row stored while running, with key and route`,
        { timeout: 240000 }, async () => {
            cp.ok(await cp.api.post(gw, '/api/routes',
                { id: 'burst-route', strategy: 'priority', targets: ['gpt-test', 'slow-model'] }), 201);
            const k = await cp.createKey(gw, { name: 'burst', rpm: 1000000000, tpm: 1000000000000 });
            const body = { model: 'burst-route', messages: [{ role: 'user', content: 'saturate' }] };
            const statuses = await burst(gw, M, 64, body, k.key);
            assert.deepEqual([...statuses], [[200, M]]);

            const count = () => h.sql(gw, "SELECT count(*) AS n FROM usage_logs WHERE route = 'burst-route'")[0].n;
            await h.eventually(() => count() === M, 15000, 100);
            assert.equal(count(), M, 'rows in the table while the gateway runs');
            assert.equal(await metric(gw, 'switchboard_usage_lost_total'), 0, 'rows counted lost');
            await h.assertCleanStop(gw);
            const [row] = h.sql(gw, "SELECT count(*) AS n, count(DISTINCT request_id) AS ids, " +
                `sum(key_id = '${k.id}') AS keyed, sum(prompt_tokens > 0) AS tokens ` +
                "FROM usage_logs WHERE route = 'burst-route'");
            assert.deepEqual(row, { n: M, ids: M, keyed: M, tokens: M });
        });
});

describe('usage burst', () => {
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

    it(`${N} requests, ${N} usage rows after shutdown`, { timeout: 240000 }, async () => {
        const body = { model: 'gpt-test', messages: [{ role: 'user', content: 'burst' }] };
        const statuses = await burst(gw, N, CONCURRENCY, body);
        assert.deepEqual([...statuses], [[200, N]]);

        await h.assertCleanStop(gw);
        const [row] = h.sql(gw, "SELECT count(*) AS n, sum(prompt_tokens > 0) AS tokens, " +
            "count(DISTINCT request_id) AS ids FROM usage_logs WHERE model = 'gpt-test'");
        assert.equal(row.n, N, 'usage rows');
        assert.equal(row.ids, N, 'distinct request ids');
        assert.equal(row.tokens, N, 'rows with the upstream prompt_tokens');
    });
});
