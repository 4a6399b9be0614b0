// SPDX-License-Identifier: MIT
//
// api.test.js - the non-streaming data plane: auth, /v1/models, /metrics,
// chat completions passed through byte for byte with only "model" rewritten,
// model resolution (id, provider/upstream_model, unknown with suggestions),
// request validation, embeddings.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

describe('api', () => {
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

    const msg = (content) => [{ role: 'user', content }];

    // ---- auth --------------------------------------------------------------

    it('GET /health needs no auth', async () => {
        const r = await h.request(gw, { method: 'GET', path: '/health', auth: false });
        assert.equal(r.status, 200, r.text);
    });

    describe('rejects /v1 requests without a valid admin token (401, OpenAI error shape)', () => {
        const cases = [
            ['no Authorization header', () => ({})],
            ['a wrong bearer token', () => ({ authorization: 'Bearer sb-wrong-token' })],
            ['the token minus its last character', () => ({ authorization: `Bearer ${gw.token.slice(0, -1)}` })],
            ['the token plus one character', () => ({ authorization: `Bearer ${gw.token}x` })],
            ['the upstream key', () => ({ authorization: `Bearer ${h.FAKE_KEY}` })],
            ['the Basic scheme', () => ({ authorization: `Basic ${Buffer.from(`x:${gw.token}`).toString('base64')}` })],
            ['an empty bearer', () => ({ authorization: 'Bearer ' })],
        ];
        for (const [name, headers] of cases) {
            it(`POST /v1/chat/completions with ${name}`, async () => {
                const m = fake.marker('auth');
                const r = await h.chat(gw, { model: 'gpt-test', messages: msg(m) }, { headers: headers(), auth: false });
                assert.equal(r.status, 401, `expected 401, got ${r.status}: ${r.text}`);
                h.assertOpenAIError(r.json, r.text);
                assert.equal(fake.requestsFor(m).length, 0, 'an unauthenticated request reached the upstream');
            });
        }
        it('GET /v1/models without a token', async () => {
            const r = await h.request(gw, { method: 'GET', path: '/v1/models', auth: false });
            assert.equal(r.status, 401, `expected 401, got ${r.status}: ${r.text}`);
            h.assertOpenAIError(r.json, r.text);
        });
        it('POST /v1/embeddings without a token', async () => {
            const r = await h.request(gw, { path: '/v1/embeddings', body: { model: 'embed-test', input: 'x' }, auth: false });
            assert.equal(r.status, 401, `expected 401, got ${r.status}: ${r.text}`);
            h.assertOpenAIError(r.json, r.text);
        });
    });

    // ---- models and metrics ------------------------------------------------

    it('GET /v1/models lists the configured models in the OpenAI list shape', async () => {
        const r = await h.request(gw, { method: 'GET', path: '/v1/models' });
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers['content-type'] || '', /application\/json/);
        assert.equal(r.json.object, 'list', r.text);
        assert.ok(Array.isArray(r.json.data), r.text);
        const ids = r.json.data.map((m) => m.id);
        for (const id of ['gpt-test', 'embed-test', 'dead-model', 'slow-model']) {
            assert.ok(ids.includes(id), `model ${id} missing from ${JSON.stringify(ids)}`);
        }
        for (const m of r.json.data) {
            assert.equal(m.object, 'model', JSON.stringify(m));
            assert.equal(typeof m.created, 'number', `created must be a number: ${JSON.stringify(m)}`);
            assert.equal(typeof m.owned_by, 'string', `owned_by must be a string: ${JSON.stringify(m)}`);
        }
    });

    it('GET /metrics counts requests by provider, model and status', async () => {
        const series = /^switchboard_requests_total\{provider="fake",model="gpt-test",status="200"\} (\d+)$/m;
        const count = async () => {
            const r = await h.request(gw, { method: 'GET', path: '/metrics' });
            assert.equal(r.status, 200, r.text);
            assert.match(r.headers['content-type'] || '', /^text\/plain/);
            const hit = r.text.match(series);
            return hit ? Number(hit[1]) : 0;
        };
        const before = await count();
        const c = await h.chat(gw, { model: 'gpt-test', messages: msg(fake.marker('metrics')) });
        assert.equal(c.status, 200, c.text);
        assert.equal(await count(), before + 1);
    });

    // ---- chat completions --------------------------------------------------

    it('passes the body through byte for byte with only "model" rewritten, and relays the response', async () => {
        const m = fake.marker('passthrough');
        // Unusual whitespace and key order, escapes that must not be decoded,
        // raw UTF-8, numbers a double cannot hold, unknown extension fields.
        const raw = `{\n\t"messages" : [ {"role":"user","content":"h\\u00e9llo \\ud83d\\ude00 caf\u00e9 \u{1F680} \\/ \\"q\\" ${m}"} ] ,\r\n`
            + '  "model"  :  "gpt-test",   "temperature":0.50, "seed":9007199254740993,"n":1,\n'
            + '  "logit_bias":{"50256":-100}, "top_p" : 1.0e0, "x_vendor_ext": {"big":-123456789012345678901234567890, "f":1E-7, "z":[]},'
            + `  "user":"${m}"  }  \n`;
        const expected = raw.replace('"model"  :  "gpt-test"', '"model"  :  "gpt-4o-mini"');
        const r = await h.request(gw, { path: '/v1/chat/completions', body: raw });
        assert.equal(r.status, 200, r.text);

        const up = fake.requestsFor(m);
        assert.equal(up.length, 1, `the upstream got ${up.length} requests`);
        assert.equal(up[0].method, 'POST');
        assert.equal(up[0].path, '/v1/chat/completions');
        assert.equal(up[0].text, expected, 'upstream body differs from the client body with only "model" rewritten');
        assert.equal(up[0].body.length, Buffer.byteLength(expected));
        assert.match(up[0].headers['content-type'] || '', /^application\/json/);

        // The upstream's body reaches the client unchanged.
        assert.equal(r.text, up[0].responseBody, 'response body was not relayed unchanged');
        assert.equal(r.json.object, 'chat.completion');
        assert.equal(r.json.choices[0].message.content, 'Hello from the fake upstream.');
    });

    it('authenticates upstream with the provider key, never the client token', async () => {
        const m = fake.marker('upauth');
        const r = await h.chat(gw, { model: 'gpt-test', messages: msg(m) });
        assert.equal(r.status, 200, r.text);
        const up = fake.requestsFor(m)[0];
        assert.equal(up.headers.authorization, `Bearer ${h.FAKE_KEY}`);
        for (let i = 0; i < up.rawHeaders.length; i += 2) {
            assert.ok(!up.rawHeaders[i + 1].includes(gw.token), `admin token leaked upstream in header ${up.rawHeaders[i]}`);
        }
    });

    it('sets x-request-id (unique), x-switchboard-provider and x-switchboard-model', async () => {
        const ids = new Set();
        for (let i = 0; i < 3; i++) {
            const r = await h.chat(gw, { model: 'gpt-test', messages: msg(fake.marker('hdr')) });
            assert.equal(r.status, 200, r.text);
            const id = r.headers['x-request-id'];
            assert.ok(typeof id === 'string' && id.length > 0, 'x-request-id missing or empty');
            assert.ok(!ids.has(id), `x-request-id ${id} repeated`);
            ids.add(id);
            assert.equal(r.headers['x-switchboard-provider'], 'fake');
            assert.equal(r.headers['x-switchboard-model'], 'gpt-test');
            assert.match(r.headers['content-type'] || '', /application\/json/);
        }
    });

    it('accepts provider/upstream_model as the model', async () => {
        const m = fake.marker('provmodel');
        const raw = `{"model":"fake/gpt-4o-mini","messages":[{"role":"user","content":"${m}"}]}`;
        const r = await h.request(gw, { path: '/v1/chat/completions', body: raw });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-provider'], 'fake');
        const up = fake.requestsFor(m);
        assert.equal(up.length, 1);
        assert.equal(up[0].text, raw.replace('"fake/gpt-4o-mini"', '"gpt-4o-mini"'));
    });

    it('answers an unknown model with 404 and suggests close matches', async () => {
        const m = fake.marker('unknown');
        const r = await h.chat(gw, { model: 'gpt-tset', messages: msg(m) });
        assert.equal(r.status, 404, r.text);
        const e = h.assertOpenAIError(r.json, r.text);
        assert.match(e.message, /gpt-tset/, 'the message should name the model asked for');
        assert.match(e.message, /gpt-test/, 'the message should suggest gpt-test');
        assert.equal(fake.requestsFor(m).length, 0);

        const r2 = await h.chat(gw, { model: 'nope/gpt-4o-mini', messages: msg(m) });
        assert.equal(r2.status, 404, `unknown provider: ${r2.text}`);
        h.assertOpenAIError(r2.json, r2.text, 'unknown provider');
    });

    describe('rejects malformed chat requests with 400 (OpenAI error shape)', () => {
        const cases = [
            ['truncated JSON', (m) => `{"model": "gpt-test", "messages": [{"role":"user","content":"${m}"`],
            ['a form body', (m) => `model=gpt-test&q=${m}`],
            ['trailing garbage after the JSON', (m) => `{"model":"gpt-test","messages":[{"role":"user","content":"${m}"}]} x`],
            ['invalid UTF-8 in a string', (m) => Buffer.concat([Buffer.from(`{"model":"gpt-test","messages":[{"role":"user","content":"${m} `),
                Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')])],
            ['no model', (m) => `{"messages":[{"role":"user","content":"${m}"}]}`],
            ['a JSON array', (m) => `[{"model":"gpt-test","content":"${m}"}]`],
            ['an empty body', () => ''],
        ];
        for (const [name, body] of cases) {
            it(name, async () => {
                const m = fake.marker('bad');
                const r = await h.request(gw, { path: '/v1/chat/completions', body: body(m) });
                assert.equal(r.status, 400, `expected 400, got ${r.status}: ${r.text}`);
                h.assertOpenAIError(r.json, r.text);
                assert.equal(fake.requestsFor(m).length, 0, 'a malformed request reached the upstream');
            });
        }
    });

    it('answers an unknown /v1 path with 404 in the OpenAI shape', async () => {
        const r = await h.request(gw, { method: 'GET', path: '/v1/nope' });
        assert.equal(r.status, 404, r.text);
        h.assertOpenAIError(r.json, r.text);
    });

    // ---- embeddings --------------------------------------------------------

    it('passes POST /v1/embeddings through', async () => {
        const m = fake.marker('embed');
        const raw = `{"input": ["hello world", "${m}"], "model": "embed-test", "encoding_format": "float"}`;
        const r = await h.request(gw, { path: '/v1/embeddings', body: raw });
        assert.equal(r.status, 200, r.text);
        const up = fake.requestsFor(m);
        assert.equal(up.length, 1);
        assert.equal(up[0].path, '/v1/embeddings');
        assert.equal(up[0].text, raw.replace('"embed-test"', '"text-embedding-3-small"'));
        assert.equal(up[0].headers.authorization, `Bearer ${h.FAKE_KEY}`);
        assert.equal(r.text, up[0].responseBody);
        assert.equal(r.json.object, 'list');
        assert.equal(r.json.data.length, 2);
        assert.equal(r.json.data[1].object, 'embedding');
        assert.equal(r.json.data[1].index, 1);
        assert.ok(Array.isArray(r.json.data[0].embedding));
        assert.equal(r.headers['x-switchboard-model'], 'embed-test');
        assert.equal(r.headers['x-switchboard-provider'], 'fake');
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
