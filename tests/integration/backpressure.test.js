// SPDX-License-Identifier: MIT
//
// backpressure.test.js - a client that stops reading a stream makes the
// gateway pause its upstream transfer: the fake upstream's writes block
// (bounded by socket buffers and the gateway's 256 KiB high-water mark)
// instead of the gateway buffering the whole answer in memory. When the
// client reads again, every byte arrives, in order.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { FakeUpstream, sleep } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const TOTAL = 64 << 20;      // what the upstream would send, 64 MiB
const PIECE = 'x'.repeat(4000);

function rssBytes(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]) * 1024;
}

describe('backpressure', () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        // A provider without a total timeout: the test stalls the client on purpose, and
        // under a sanitizer the whole stream may take longer than the default provider's 3 s.
        gw = await h.startGateway(fake, {
            providers: [{ id: 'bp', type: 'openai', base_url: `http://127.0.0.1:${fake.port}/v1`, api_key: 'env:FAKE_OPENAI_KEY' }],
            models: [{ id: 'bp-model', provider: 'bp', upstream_model: 'gpt-4o-mini' }],
        });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('a client that stops reading pauses the upstream; nothing is lost', { timeout: 60000 }, async () => {
        const state = { sent: 0, chunks: 0 };
        const m = fake.script(fake.marker('bp'), async ({ res }) => {
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            const chunk = (content) => `data: ${JSON.stringify({
                id: 'chatcmpl-bp', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini',
                choices: [{ index: 0, delta: { content }, finish_reason: null }],
            })}\n\n`;
            while (state.sent < TOTAL && !res.destroyed) {
                const c = chunk(PIECE);
                state.sent += c.length;
                state.chunks++;
                if (!res.write(c)) await new Promise((r) => res.once('drain', r));
            }
            res.write(`data: ${JSON.stringify({
                id: 'chatcmpl-bp', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini',
                choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
            })}\n\ndata: [DONE]\n\n`);
            res.end();
        });
        const body = JSON.stringify({ model: 'bp-model', stream: true, messages: [{ role: 'user', content: m }] });
        const res = await new Promise((resolve, reject) => {
            const req = http.request({
                host: '127.0.0.1', port: gw.port, method: 'POST', path: '/v1/chat/completions', agent: false,
                headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json',
                    'content-length': Buffer.byteLength(body) },
            }, resolve);
            req.on('error', reject);
            req.end(body);
        });
        assert.equal(res.statusCode, 200);
        res.pause(); // the client stops reading
        await sleep(1500);
        const stalled = state.sent;
        await sleep(500);
        assert.ok(stalled < TOTAL / 2, `upstream sent ${stalled} of ${TOTAL} bytes to a client that reads nothing`);
        assert.ok(state.sent - stalled < 1 << 20, 'the upstream kept sending while the client read nothing');
        assert.ok(rssBytes(gw.proc.pid) < 200 << 20, `gateway RSS ${rssBytes(gw.proc.pid)} bytes`);

        let received = 0;
        let text = '';
        res.on('data', (c) => {
            received += c.length;
            text = (text + c.toString('latin1')).slice(-64);
        });
        res.resume();
        await new Promise((resolve, reject) => { res.on('end', resolve); res.on('error', reject); });
        assert.ok(text.endsWith('data: [DONE]\n\n'), `stream tail: ${JSON.stringify(text)}`);
        assert.ok(received >= TOTAL, `received ${received} of ${TOTAL} bytes`);
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
