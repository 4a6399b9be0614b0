// SPDX-License-Identifier: MIT
//
// http2.test.js - an upstream that offers HTTP/2 over TLS gets HTTP/2: the
// gateway negotiates h2 by ALPN (trusting the test's own CA through
// SWITCHBOARD_CA_FILE), non-streamed and streamed answers are relayed, and
// several requests share one upstream connection.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http2 = require('node:http2');
const { execFileSync } = require('node:child_process');
const h = require('./lib/harness');

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI. */
function makeCert(dir) {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certPath: cert };
}

describe('HTTP/2 upstream', () => {
    let dir;
    let server;
    let gw;
    const seen = []; // {version, session} per request
    const sessions = new Set();

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-h2-'));
        const { key, cert, certPath } = makeCert(dir);
        server = http2.createSecureServer({ key, cert, allowHTTP1: true });
        server.on('session', (s) => sessions.add(s));
        server.on('request', (req, res) => {
            let body = '';
            req.on('data', (c) => { body += c; });
            req.on('end', () => {
                seen.push({ version: req.httpVersion, session: req.stream && req.stream.session });
                const json = JSON.parse(body);
                const base = { id: 'chatcmpl-h2', created: 1, model: json.model };
                if (json.stream) {
                    res.writeHead(200, { 'content-type': 'text/event-stream' });
                    for (const piece of ['over', ' h2']) {
                        res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk',
                            choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
                    }
                    res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk',
                        choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
                    res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [],
                        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`);
                    res.end('data: [DONE]\n\n');
                    return;
                }
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ ...base, object: 'chat.completion',
                    choices: [{ index: 0, message: { role: 'assistant', content: 'hello over h2' }, finish_reason: 'stop' }],
                    usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } }));
            });
        });
        await new Promise((r) => server.listen(0, '127.0.0.1', r));
        gw = await h.startGateway({ port: server.address().port, scheme: 'https' },
            { env: { SWITCHBOARD_CA_FILE: certPath } });
    });

    after(async () => {
        if (gw) await gw.kill();
        for (const s of sessions) s.destroy();
        if (server) await new Promise((r) => server.close(r));
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a chat completion goes upstream over HTTP/2', async () => {
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, 'hello over h2');
        assert.equal(seen.at(-1).version, '2.0');
    });

    it('a stream is relayed over HTTP/2, and requests share the connection', async () => {
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(s.status, 200);
        assert.ok((await s.done).ended);
        assert.equal(h.streamText(s.events), 'over h2');
        assert.equal(seen.at(-1).version, '2.0');
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: 'again' }] });
        assert.equal(r.status, 200, r.text);
        // --workers 2: at most one h2 session per worker loop.
        assert.ok(sessions.size <= 2, `${sessions.size} upstream connections for 3 requests`);
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
