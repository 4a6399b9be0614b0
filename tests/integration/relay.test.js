// SPDX-License-Identifier: MIT
//
// relay.test.js - a large non-streamed answer is relayed as it arrives
// (issue 9 item 6, DESIGN.md §1.3 step 7): past its first 64 KiB an
// OpenAI-format answer goes to the client while the upstream is still
// sending it, byte for byte, with the upstream's Content-Length (or chunked
// when it had none), and its usage is read from its end. A short answer is
// still held whole: it fails over when the upstream breaks, and a 2xx that
// is not JSON is a 502. A relayed answer that breaks closes the client's
// connection before the body's end, never passing a cut body off as whole.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { FakeUpstream, chatCompletion, usageObject, now, sleep } = require('./lib/fake-upstream');
const h = require('./lib/harness');

/** A chat.completion of about `size` bytes, as the upstream serializes it. */
function bigAnswer(size, model) {
    const obj = chatCompletion({
        id: 'chatcmpl-relay', created: 1733400000, model,
        content: 'x'.repeat(size), finishReason: 'length', usage: usageObject(1234, 5678),
    });
    return Buffer.from(JSON.stringify(obj));
}

/** A scenario that sends body in two halves with a pause between them,
 *  with a Content-Length unless chunked; `cut` stops after the first half. */
function halves(body, { chunked = false, cut = false, pauseMs = 400 } = {}) {
    return async ({ res, record }) => {
        record.status = 200;
        const head = { 'content-type': 'application/json' };
        if (!chunked) head['content-length'] = body.length;
        res.writeHead(200, head);
        const mid = Math.floor(body.length / 2);
        await new Promise((r) => res.write(body.subarray(0, mid), r));
        record.sent.push({ t: now(), what: 'first half' });
        await sleep(pauseMs);
        if (cut) {
            record.sent.push({ t: now(), what: 'break' });
            res.socket.destroy();
            return;
        }
        record.sent.push({ t: now(), what: 'second half' });
        res.end(body.subarray(mid));
    };
}

/** POST on a fresh connection, noting when the first body byte arrived and
 *  whether the response ended whole or was cut. */
function timedChat(gw, payload) {
    return new Promise((resolve, reject) => {
        const text = JSON.stringify(payload);
        const req = http.request({
            host: '127.0.0.1', port: gw.port, method: 'POST', path: '/v1/chat/completions', agent: false,
            headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        }, (res) => {
            const chunks = [];
            let firstAt = null;
            const out = (ended, error) => resolve({
                status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), firstAt, ended, error,
            });
            res.on('data', (c) => { if (firstAt === null) firstAt = now(); chunks.push(c); });
            res.on('end', () => out(!res.aborted, null));
            res.on('aborted', () => out(false, 'aborted'));
            res.on('error', (e) => out(false, e.message));
        });
        req.setTimeout(15000, () => req.destroy(new Error('no answer in 15 s')));
        req.on('error', reject);
        req.end(text);
    });
}

describe('large non-streamed answers are relayed as they arrive', () => {
    let fake, gw;
    const usageRow = (id) => h.eventually(() => h.sql(gw, `SELECT * FROM usage_logs WHERE request_id = '${id}'`)[0]);

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, {
            models: [
                { id: 'relay-a', provider: 'fake', upstream_model: 'up-a', fallbacks: ['relay-b'] },
                { id: 'relay-b', provider: 'fake', upstream_model: 'up-b' },
            ],
        });
    });
    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (fake) await fake.stop();
    });

    it('a 600 KB answer reaches the client before the upstream finished, byte for byte, usage from its end', async () => {
        const body = bigAnswer(600 * 1024, 'gpt-4o-mini');
        const m = fake.script(fake.marker('relay-cl'), halves(body));
        const r = await timedChat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 200);
        assert.ok(r.ended, 'the response ended whole');
        assert.ok(r.body.equals(body), `the body passed untouched (${r.body.length} of ${body.length} bytes)`);
        assert.equal(r.headers['content-length'], String(body.length), 'the upstream length is kept');
        const [rec] = fake.requestsFor(m);
        const second = rec.sent.find((s) => s.what === 'second half');
        assert.ok(r.firstAt < second.t, `the first bytes came ${(second.t - r.firstAt).toFixed(0)} ms before the upstream sent the rest`);
        const row = await usageRow(r.headers['x-request-id']);
        assert.equal(row.status, 'ok');
        assert.equal(row.prompt_tokens, 1234);
        assert.equal(row.completion_tokens, 5678);
    });

    it('an answer without Content-Length is relayed chunked', async () => {
        const body = bigAnswer(300 * 1024, 'gpt-4o-mini');
        const m = fake.script(fake.marker('relay-chunked'), halves(body, { chunked: true, pauseMs: 100 }));
        const r = await timedChat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 200);
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.ok(r.ended && r.body.equals(body), 'the body passed whole and untouched');
        const row = await usageRow(r.headers['x-request-id']);
        assert.equal(row.completion_tokens, 5678);
    });

    it('a relayed answer that breaks cuts the client connection short and is accounted as an error', async () => {
        const body = bigAnswer(400 * 1024, 'gpt-4o-mini');
        const m = fake.script(fake.marker('relay-cut'), halves(body, { cut: true, pauseMs: 100 }));
        const r = await timedChat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 200, 'the head went out before the break');
        assert.equal(r.ended, false, 'the client sees the body cut, not a whole one');
        assert.ok(r.body.length < body.length && r.body.length >= 64 * 1024, `${r.body.length} bytes arrived`);
        assert.equal(fake.requestsFor(m).length, 1, 'no second attempt once the client has bytes');
        const rows = await h.eventually(() => {
            const found = h.sql(gw, `SELECT * FROM usage_logs WHERE status = 'error' AND model = 'gpt-test'`);
            return found.length ? found : null;
        }) || [];
        assert.equal(rows.length, 1, JSON.stringify(rows));
        assert.equal(rows[0].error_code, 'UPSTREAM');
    });

    it('an answer that breaks within its first 64 KiB still fails over', async () => {
        const big = bigAnswer(200 * 1024, 'up-a');
        const m = fake.marker('relay-early');
        fake.script(m, async (ctx) => {
            if (ctx.json.model === 'up-a') {
                ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': big.length });
                await new Promise((r) => ctx.res.write(big.subarray(0, 20000), r));
                await sleep(50);
                ctx.res.socket.destroy();
                return;
            }
            ctx.fake._chat(ctx.res, ctx.record, { reply: 'from b' });
        });
        const r = await timedChat(gw, { model: 'relay-a', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-switchboard-fallbacks'], '1');
        assert.equal(JSON.parse(r.body).choices[0].message.content, 'from b');
    });

    it('a large 2xx that is not JSON is a 502, not relayed', async () => {
        const html = Buffer.from(`<html>${'<p>maintenance</p>'.repeat(10000)}</html>`);
        const m = fake.script(fake.marker('relay-html'), ({ res }) => {
            res.writeHead(200, { 'content-type': 'text/html', 'content-length': html.length });
            res.end(html);
        });
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 502, r.text.slice(0, 200));
        h.assertOpenAIError(r.json, r.text);
    });

    it('large embeddings answers are relayed with their usage', async () => {
        const inputs = Array.from({ length: 1500 }, (_, i) => `text ${i}`);
        const m = fake.script(fake.marker('relay-emb'), { dims: 64, usage: { prompt_tokens: 4321 } });
        const r = await h.request(gw, { path: '/v1/embeddings', body: { model: 'embed-test', input: inputs, user: m } });
        assert.equal(r.status, 200);
        assert.ok(r.text.length > 256 * 1024, `${r.text.length} bytes`);
        assert.equal(r.json.data.length, 1500);
        const row = await usageRow(r.headers['x-request-id']);
        assert.equal(row.prompt_tokens, 4321);
    });
});
