// SPDX-License-Identifier: MIT
//
// usage_burst.test.js - a burst of 10,000 requests loses no usage row: every
// request is answered, and after SIGTERM (which flushes the usage queue) the
// SQLite file holds exactly one row per request, with the upstream's tokens.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const N = 10000;
const CONCURRENCY = 32;

function post(agent, gw, body) {
    return new Promise((resolve, reject) => {
        const payload = JSON.stringify(body);
        const req = http.request({
            host: '127.0.0.1', port: gw.port, method: 'POST', path: '/v1/chat/completions', agent,
            headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json',
                'content-length': Buffer.byteLength(payload) },
        }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
            res.on('error', reject);
        });
        req.setTimeout(30000, () => req.destroy(new Error('no response within 30 s')));
        req.on('error', reject);
        req.end(payload);
    });
}

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
        const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
        const body = { model: 'gpt-test', messages: [{ role: 'user', content: 'burst' }] };
        let next = 0;
        const statuses = new Map();
        const worker = async () => {
            while (next < N) {
                next++;
                const s = await post(agent, gw, body);
                statuses.set(s, (statuses.get(s) || 0) + 1);
            }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        agent.destroy();
        assert.deepEqual([...statuses], [[200, N]]);

        await h.assertCleanStop(gw);
        const [row] = h.sql(gw, "SELECT count(*) AS n, sum(prompt_tokens > 0) AS tokens, " +
            "count(DISTINCT request_id) AS ids FROM usage_logs WHERE model = 'gpt-test'");
        assert.equal(row.n, N, 'usage rows');
        assert.equal(row.ids, N, 'distinct request ids');
        assert.equal(row.tokens, N, 'rows with the upstream prompt_tokens');
    });
});
