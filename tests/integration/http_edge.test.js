// SPDX-License-Identifier: MIT
//
// http_edge.test.js - the HTTP/1.1 server under raw sockets: keep-alive,
// pipelining answered in order, chunked request bodies, Expect:
// 100-continue, the size limits (431, 413), garbage (400), slow clients
// (408 or close after header_timeout_ms), idle keep-alive connections closed
// after idle_timeout_ms, and max_connections (503 or close, then healthy).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

function headers(gw, extra = {}) {
    return { Host: `127.0.0.1:${gw.port}`, Authorization: `Bearer ${gw.token}`, ...extra };
}

function chatBody(m, model = 'gpt-test') {
    return JSON.stringify({ model, messages: [{ role: 'user', content: m }] });
}

function chatRequest(gw, m, extra = {}) {
    const body = chatBody(m);
    return h.httpRequestText('POST', '/v1/chat/completions',
        headers(gw, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...extra }), body);
}

function getRequest(gw, p, extra = {}) {
    return h.httpRequestText('GET', p, headers(gw, extra));
}

/** A response that is an error must carry the OpenAI error shape (when it has a body). */
function assertErrorBody(r) {
    if (r.body && r.body.length) h.assertOpenAIError(r.json, r.text, `${r.status} body`);
}

/** 408 with an OpenAI body, or the connection just closed: both are fine. */
function assert408OrClosed(r, what) {
    if (r.closed) return;
    assert.ok(!r.timeout, `${what}: neither a response nor a close: ${JSON.stringify(r.partial)}`);
    assert.equal(r.status, 408, `${what}: expected 408 or a close, got ${r.status}`);
    assertErrorBody(r);
}

describe('http edge cases', () => {
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

    it('keeps a connection alive across requests', async () => {
        const c = await h.rawConnect(gw);
        try {
            await c.write(getRequest(gw, '/v1/models'));
            const r1 = await c.readResponse();
            assert.equal(r1.status, 200, r1.text || JSON.stringify(r1));
            assert.equal(r1.json.object, 'list');
            assert.ok(!c.closed, 'closed after the first response');

            const m = fake.marker('ka');
            await c.write(chatRequest(gw, m));
            const r2 = await c.readResponse();
            assert.equal(r2.status, 200, r2.text || JSON.stringify(r2));
            assert.equal(r2.json.object, 'chat.completion');

            await c.write(getRequest(gw, '/health'));
            const r3 = await c.readResponse();
            assert.equal(r3.status, 200, JSON.stringify(r3));
            assert.ok(!c.closed, 'closed a keep-alive connection');
            assert.notEqual(r1.headers['x-request-id'], r2.headers['x-request-id']);
        } finally {
            c.destroy();
        }
    });

    it('answers pipelined requests in order', async () => {
        // The first takes longer upstream; its answer must still come first.
        const a = fake.script(fake.marker('pipea'), { delayMs: 300, reply: 'first' });
        const b = fake.script(fake.marker('pipeb'), { reply: 'second' });
        const c = await h.rawConnect(gw);
        try {
            await c.write(chatRequest(gw, a) + chatRequest(gw, b) + getRequest(gw, '/v1/models'));
            const r1 = await c.readResponse();
            const r2 = await c.readResponse();
            const r3 = await c.readResponse();
            for (const r of [r1, r2, r3]) assert.equal(r.status, 200, JSON.stringify(r));
            assert.equal(r1.json.choices[0].message.content, 'first');
            assert.equal(r2.json.choices[0].message.content, 'second');
            assert.equal(r3.json.object, 'list');
            assert.equal(fake.requestsFor(a).length, 1);
            assert.equal(fake.requestsFor(b).length, 1);
        } finally {
            c.destroy();
        }
    });

    it('accepts a chunked request body', async () => {
        const m = fake.marker('chunked');
        const body = `{"model": "gpt-test", "messages": [{"role": "user", "content": "chunked ${m} \u00e9"}], "seed": 9007199254740993}`;
        const buf = Buffer.from(body);
        const parts = [buf.subarray(0, 7), buf.subarray(7, 40), buf.subarray(40)];
        const c = await h.rawConnect(gw);
        try {
            await c.write(h.httpRequestText('POST', '/v1/chat/completions',
                headers(gw, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' })));
            for (const p of parts) {
                await c.write(Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]));
                await h.sleep(30);
            }
            await c.write('0\r\n\r\n');
            const r = await c.readResponse();
            assert.equal(r.status, 200, r.text || JSON.stringify(r));
            const up = fake.requestsFor(m);
            assert.equal(up.length, 1);
            assert.equal(up[0].text, body.replace('"gpt-test"', '"gpt-4o-mini"'));
        } finally {
            c.destroy();
        }
    });

    it('answers Expect: 100-continue with 100 Continue before the final response', async () => {
        const m = fake.marker('expect');
        const body = chatBody(m);
        const c = await h.rawConnect(gw);
        try {
            await c.write(h.httpRequestText('POST', '/v1/chat/completions', headers(gw, {
                'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Expect: '100-continue',
            })));
            const r100 = await c.readResponse(5000);
            assert.equal(r100.status, 100, `expected "HTTP/1.1 100 Continue" before sending the body, got ${JSON.stringify(r100)}`);
            assert.match(r100.head, /^HTTP\/1\.1 100 Continue$/m);
            await c.write(body);
            const r = await c.readResponse();
            assert.equal(r.status, 200, r.text || JSON.stringify(r));
            assert.equal(fake.requestsFor(m).length, 1);
        } finally {
            c.destroy();
        }
    });

    it('closes after the response when the client sends Connection: close', async () => {
        const c = await h.rawConnect(gw);
        try {
            await c.write(getRequest(gw, '/health', { Connection: 'close' }));
            const r = await c.readResponse();
            assert.equal(r.status, 200, JSON.stringify(r));
            assert.ok(await c.waitClosed(3000), 'connection left open after Connection: close');
        } finally {
            c.destroy();
        }
    });

    it('answers a header block over max_header_bytes with 431', async () => {
        const c = await h.rawConnect(gw);
        try {
            await c.write(getRequest(gw, '/v1/models', { 'X-Big': 'a'.repeat(20000) }));
            const r = await c.readResponse(5000);
            assert.ok(!r.closed && !r.timeout, `no response: ${JSON.stringify(r)}`);
            assert.equal(r.status, 431, JSON.stringify(r.head));
            assertErrorBody(r);
        } finally {
            c.destroy();
        }
        // Many small headers adding up over the limit, too.
        const c2 = await h.rawConnect(gw);
        try {
            const many = {};
            for (let i = 0; i < 400; i++) many[`X-H${i}`] = 'v'.repeat(60);
            await c2.write(getRequest(gw, '/v1/models', many));
            const r = await c2.readResponse(5000);
            assert.ok(!r.closed && !r.timeout, `no response: ${JSON.stringify(r)}`);
            assert.equal(r.status, 431, JSON.stringify(r.head));
        } finally {
            c2.destroy();
        }
    });

    it('answers a Content-Length over max_body_bytes with 413 without reading the body', async () => {
        const m = fake.marker('big');
        const c = await h.rawConnect(gw);
        try {
            await c.write(h.httpRequestText('POST', '/v1/chat/completions', headers(gw, {
                'Content-Type': 'application/json', 'Content-Length': String(2 * 1048576),
            }), `{"model":"gpt-test","messages":[{"role":"user","content":"${m}${'x'.repeat(1000)}`));
            const r = await c.readResponse(5000);
            assert.ok(!r.closed && !r.timeout, `no 413 before the body was sent: ${JSON.stringify(r)}`);
            assert.equal(r.status, 413, JSON.stringify(r.head));
            assertErrorBody(r);
        } finally {
            c.destroy();
        }
        assert.equal(fake.requestsFor(m).length, 0);
    });

    it('answers a chunked body growing over max_body_bytes with 413 (or a close)', async () => {
        const m = fake.marker('bigchunked');
        const c = await h.rawConnect(gw);
        try {
            await c.write(h.httpRequestText('POST', '/v1/chat/completions',
                headers(gw, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' })));
            const first = `{"model":"gpt-test","messages":[{"role":"user","content":"${m}`;
            await c.write(`${Buffer.byteLength(first).toString(16)}\r\n${first}\r\n`);
            const piece = 'x'.repeat(65536);
            for (let sent = 0; sent < 1.5 * 1048576 && !c.closed && c.buf.length === 0; sent += piece.length) {
                if (!(await c.write(`${piece.length.toString(16)}\r\n${piece}\r\n`))) break;
            }
            const r = await c.readResponse(5000);
            assert.ok(!r.timeout, `neither a response nor a close: ${JSON.stringify(r)}`);
            if (!r.closed) {
                assert.equal(r.status, 413, JSON.stringify(r.head));
                assertErrorBody(r);
            }
        } finally {
            c.destroy();
        }
        assert.equal(fake.requestsFor(m).length, 0);
    });

    describe('answers garbage with 400', () => {
        const cases = [
            ['a garbage request line', 'GARBAGE\r\n\r\n'],
            ['a request line with a bad version', 'GET /health FOO\r\nHost: x\r\n\r\n'],
            ['a header line without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n'],
            ['a bad Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
            ['a bad chunk size', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
        ];
        for (const [name, raw] of cases) {
            it(name, async () => {
                const c = await h.rawConnect(gw);
                try {
                    await c.write(raw);
                    const r = await c.readResponse(5000);
                    assert.ok(!r.closed && !r.timeout, `no 400 response: ${JSON.stringify(r)}`);
                    assert.equal(r.status, 400, JSON.stringify(r.head));
                    assertErrorBody(r);
                } finally {
                    c.destroy();
                }
            });
        }
        it('a TLS ClientHello (400 or a close)', async () => {
            const c = await h.rawConnect(gw);
            try {
                await c.write(Buffer.from('16030100a5010000a10303' + '00'.repeat(60), 'hex'));
                const r = await c.readResponse(5000);
                assert.ok(!r.timeout, 'the connection hung');
                if (!r.closed) assert.equal(r.status, 400);
            } finally {
                c.destroy();
            }
        });
    });

    it('gives up on clients that stall in the headers or the body (408 or close, after header_timeout_ms)', async () => {
        const t0 = h.now();
        const stallHead = async () => {
            const c = await h.rawConnect(gw);
            try {
                await c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${gw.token}\r\nContent-`);
                return [await c.readResponse(gw.server.header_timeout_ms + 5000), h.now() - t0];
            } finally { c.destroy(); }
        };
        const stallBody = async () => {
            const c = await h.rawConnect(gw);
            try {
                await c.write(h.httpRequestText('POST', '/v1/chat/completions',
                    headers(gw, { 'Content-Type': 'application/json', 'Content-Length': '100' }), '{"model":'));
                return [await c.readResponse(gw.server.header_timeout_ms + 5000), h.now() - t0];
            } finally { c.destroy(); }
        };
        const [[rh, th], [rb, tb]] = await Promise.all([stallHead(), stallBody()]);
        assert408OrClosed(rh, 'stalled headers');
        assert408OrClosed(rb, 'stalled body');
        const lo = gw.server.header_timeout_ms / 2;
        assert.ok(th >= lo, `stalled headers: gave up after ${th.toFixed(0)} ms, before header_timeout_ms`);
        assert.ok(tb >= lo, `stalled body: gave up after ${tb.toFixed(0)} ms, before header_timeout_ms`);
    });

    it('closes idle keep-alive connections after idle_timeout_ms', async () => {
        const idle = gw.server.idle_timeout_ms;
        const afterRequest = async () => {
            const c = await h.rawConnect(gw);
            try {
                await c.write(getRequest(gw, '/health'));
                const r = await c.readResponse();
                assert.equal(r.status, 200);
                const t = h.now();
                const closed = await c.waitClosed(idle + 5000);
                return [closed, c.closedAt - t];
            } finally { c.destroy(); }
        };
        const neverSpoke = async () => {
            const c = await h.rawConnect(gw);
            try {
                const t = h.now();
                const closed = await c.waitClosed(idle + 5000);
                return [closed, c.closedAt - t];
            } finally { c.destroy(); }
        };
        const [[c1, t1], [c2, t2]] = await Promise.all([afterRequest(), neverSpoke()]);
        assert.ok(c1, `an idle keep-alive connection was still open ${idle + 5000} ms after its response`);
        assert.ok(t1 >= idle / 2, `an idle keep-alive connection was closed after ${t1.toFixed(0)} ms (idle_timeout_ms ${idle})`);
        assert.ok(c2, `a connection that never sent a byte was still open after ${idle + 5000} ms`);
        assert.ok(t2 >= Math.min(idle, gw.server.header_timeout_ms) / 2, `a silent connection was closed after ${t2.toFixed(0)} ms`);
    });

    it('is still healthy after all that', async () => {
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: fake.marker('ok') }] });
        assert.equal(r.status, 200, r.text);
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});

describe('max_connections', () => {
    let fake;
    let gw;
    const MAX = 8;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, { server: { max_connections: MAX, idle_timeout_ms: 10000, header_timeout_ms: 10000 } });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it(`refuses connection ${MAX + 1} (503 or close) and recovers when they go`, async () => {
        const conns = [];
        try {
            for (let i = 0; i < MAX; i++) {
                const c = await h.rawConnect(gw);
                conns.push(c);
                // A full exchange proves the server accepted and counts it.
                await c.write(getRequest(gw, '/health'));
                const r = await c.readResponse(5000);
                assert.equal(r.status, 200, `connection ${i + 1} of ${MAX}: ${JSON.stringify(r)}`);
            }
            const extra = await h.rawConnect(gw).catch((e) => ({ refused: e }));
            if (!extra.refused) {
                conns.push(extra);
                await extra.write(getRequest(gw, '/health'));
                const r = await extra.readResponse(5000);
                assert.ok(!r.timeout, `connection ${MAX + 1} hung: neither 503 nor a close`);
                if (!r.closed) {
                    assert.equal(r.status, 503, `connection ${MAX + 1} got ${r.status}, expected 503 or a close`);
                    assertErrorBody(r);
                    assert.ok(await extra.waitClosed(3000), 'the 503 connection was left open');
                }
            }
        } finally {
            for (const c of conns) c.destroy();
        }
        // The slots come back.
        const ok = await h.eventually(async () => {
            const r = await h.request(gw, { method: 'GET', path: '/health', auth: false, timeoutMs: 2000 }).catch(() => null);
            return r && r.status === 200;
        }, 5000, 100);
        assert.ok(ok, 'not healthy after the connections closed');
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: fake.marker('ok') }] });
        assert.equal(r.status, 200, r.text);
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
