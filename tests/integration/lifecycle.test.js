// SPDX-License-Identifier: MIT
//
// lifecycle.test.js - usage accounting and graceful shutdown.
//
// A sequence of requests (plain, streamed, streamed with usage, upstream
// error, embeddings, a stream the client cancels), then SIGTERM while a
// stream is in flight: the stream must finish, new connections must not be
// served, and the process must exit 0 within shutdown_timeout_ms. Last, the
// SQLite db must hold exactly one usage_logs row per request, with the token
// counts the fake upstream reported.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream, oaiError } = require('./lib/fake-upstream');
const h = require('./lib/harness');

describe('usage logging and graceful shutdown', () => {
    let fake;
    let gw;
    const ids = {}; // what -> x-request-id

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const rowsFor = (id) => h.sql(gw, `SELECT * FROM usage_logs WHERE request_id = '${id.replace(/'/g, "''")}'`);
    const describeRows = () => JSON.stringify(h.sql(gw, 'SELECT * FROM usage_logs'), null, 1);
    const userMsg = (m) => [{ role: 'user', content: m }];

    it('a non-streamed chat is logged while the gateway runs', async () => {
        const m = fake.script(fake.marker('plain'), { usage: { prompt_tokens: 11, completion_tokens: 7 } });
        const r = await h.chat(gw, { model: 'gpt-test', messages: userMsg(m) });
        assert.equal(r.status, 200, r.text);
        ids.plain = r.headers['x-request-id'];
        assert.ok(ids.plain);
        const rows = await h.eventually(() => {
            const x = rowsFor(ids.plain);
            return x.length ? x : null;
        }, 5000, 100);
        assert.ok(rows, `no usage_logs row for ${ids.plain} within 5 s; rows: ${describeRows()}`);
    });

    it('a streamed chat (client did not ask for usage)', async () => {
        const m = fake.script(fake.marker('stream'), { chunks: ['a', 'b', 'c'], usage: { prompt_tokens: 13, completion_tokens: 5 } });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: userMsg(m) });
        assert.equal(s.status, 200);
        assert.ok((await s.done).ended);
        ids.stream = s.headers['x-request-id'];
    });

    it('a streamed chat with include_usage', async () => {
        const m = fake.script(fake.marker('streamu'), { chunks: ['a', 'b'], usage: { prompt_tokens: 17, completion_tokens: 3 } });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: userMsg(m) });
        assert.equal(s.status, 200);
        assert.ok((await s.done).ended);
        ids.streamUsage = s.headers['x-request-id'];
    });

    it('an upstream 429', async () => {
        const m = fake.script(fake.marker('err'), {
            status: 429, headers: { 'retry-after': '1' }, error: oaiError('Rate limit reached (fake).', 'requests', null, 'rate_limit_exceeded'),
        });
        const r = await h.chat(gw, { model: 'gpt-test', messages: userMsg(m) });
        assert.equal(r.status, 429, r.text);
        ids.err = r.headers['x-request-id'];
        assert.ok(ids.err, 'no x-request-id on an error response');
    });

    it('an embeddings request', async () => {
        const m = fake.script(fake.marker('emb'), { usage: { prompt_tokens: 5 } });
        const r = await h.request(gw, { path: '/v1/embeddings', body: { model: 'embed-test', input: `hello ${m}` } });
        assert.equal(r.status, 200, r.text);
        ids.embed = r.headers['x-request-id'];
    });

    it('a stream the client cancels', async () => {
        const m = fake.script(fake.marker('cancel'), { chunks: Array(100).fill('x '), chunkDelayMs: 100 });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: userMsg(m) });
        assert.equal(s.status, 200);
        ids.cancel = s.headers['x-request-id'];
        await h.eventually(() => h.streamText(s.events).length > 0, 5000, 10);
        s.abort();
        const up = await fake.waitForRequest(m);
        await fake.waitClosed(up, 5000);
    });

    it('SIGTERM while a stream is in flight: the stream completes, new connections are refused, exit 0 in time', async () => {
        const pieces = ['w0 ', 'w1 ', 'w2 ', 'w3 ', 'w4 ', 'w5 ', 'w6 ', 'w7'];
        const m = fake.script(fake.marker('term'), { chunks: pieces, chunkDelayMs: 100, usage: { prompt_tokens: 19, completion_tokens: 8 } });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: userMsg(m) }, { timeoutMs: 15000 });
        assert.equal(s.status, 200);
        ids.term = s.headers['x-request-id'];
        await h.eventually(() => h.streamText(s.events).length > 0, 5000, 10);

        const t0 = h.now();
        gw.proc.kill('SIGTERM');
        await h.sleep(300);
        const late = await h.request(gw, { method: 'GET', path: '/health', auth: false, timeoutMs: 3000 })
            .then((r) => r.status, (e) => e.code || e.message);

        const end = await s.done;
        const exited = await gw.waitExit(gw.server.shutdown_timeout_ms + 5000);
        const took = h.now() - t0;
        const report = gw.sanitizerReport();
        assert.equal(report, null, `sanitizer report:\n${report}`);

        assert.ok(end.ended, `the in-flight stream was cut by shutdown: ${end.error}; got ${JSON.stringify(s.raw.slice(-300))}`);
        assert.equal(h.streamText(s.events), pieces.join(''), 'the in-flight stream lost content');
        assert.equal(s.events[s.events.length - 1].data, '[DONE]', 'the in-flight stream did not end with [DONE]');

        assert.ok(exited, `still running ${(gw.server.shutdown_timeout_ms + 5000)} ms after SIGTERM\n${gw.logTail()}`);
        assert.equal(gw.exit.signal, null, `died by ${gw.exit.signal}\n${gw.logTail()}`);
        assert.equal(gw.exit.code, 0, `exit code ${gw.exit.code}\n${gw.logTail()}`);
        assert.ok(took < gw.server.shutdown_timeout_ms + 3000, `exit took ${took.toFixed(0)} ms after SIGTERM`);

        assert.notEqual(late, 200, 'a new connection was still served 300 ms after SIGTERM');
    });

    describe('usage_logs after shutdown: one row per request', () => {
        const expect = [
            ['plain', { streamed: 0, prompt_tokens: 11, completion_tokens: 7, status: 'ok', http_status: 200 }],
            ['stream', { streamed: 1, prompt_tokens: 13, completion_tokens: 5, status: 'ok', http_status: 200 }],
            ['streamUsage', { streamed: 1, prompt_tokens: 17, completion_tokens: 3, status: 'ok', http_status: 200 }],
            ['err', { streamed: 0, status: 'error', http_status: 429 }],
            ['embed', { streamed: 0, prompt_tokens: 5, status: 'ok', http_status: 200 }],
            ['cancel', { streamed: 1, status: 'cancelled' }],
            ['term', { streamed: 1, prompt_tokens: 19, completion_tokens: 8, status: 'ok', http_status: 200 }],
        ];
        for (const [what, want] of expect) {
            it(what, () => {
                assert.ok(ids[what], `no request id recorded for "${what}" (an earlier test failed)`);
                const rows = rowsFor(ids[what]);
                assert.equal(rows.length, 1, `expected 1 row for ${what} (${ids[what]}), got ${rows.length}; all rows: ${describeRows()}`);
                const row = rows[0];
                for (const [k, v] of Object.entries(want)) {
                    const got = typeof v === 'number' && row[k] !== null ? Number(row[k]) : row[k];
                    assert.equal(got, v, `${what}: usage_logs.${k} = ${JSON.stringify(row[k])}, expected ${v}; row: ${JSON.stringify(row)}`);
                }
                assert.equal(row.provider, 'fake', `${what}: usage_logs.provider; row: ${JSON.stringify(row)}`);
            });
        }
        it('no other rows', () => {
            const all = h.sql(gw, 'SELECT request_id FROM usage_logs').map((r) => r.request_id);
            const known = new Set(Object.values(ids));
            const extra = all.filter((id) => !known.has(id));
            assert.deepEqual(extra, [], `rows for requests not made here: ${describeRows()}`);
        });
    });
});
