// SPDX-License-Identifier: MIT
//
// transport.test.js - a provider's `transport` (auto | native | curl) picks
// which upstream client sends its plain-http:// requests (DESIGN.md §1.6):
// the key is accepted from the config file and over /api, shown back, and
// refused when it is not one of the three words; traffic flows either way.
// (Which client ran a request is checked in src/upstream/h1_test.c; the
// whole suite runs once per client in scripts/test.sh.)
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

describe('transport', () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        const base = `http://127.0.0.1:${fake.port}/v1`;
        gw = await h.startGateway(fake, {
            providers: [
                { id: 'nat', type: 'openai', base_url: base, api_key: 'env:FAKE_OPENAI_KEY', transport: 'native' },
                { id: 'crl', type: 'openai', base_url: base, api_key: 'env:FAKE_OPENAI_KEY', transport: 'curl' },
            ],
            models: [
                { id: 'nat-model', provider: 'nat', upstream_model: 'gpt-4o-mini' },
                { id: 'crl-model', provider: 'crl', upstream_model: 'gpt-4o-mini' },
            ],
        });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('config file: both clients answer, streamed and not', async () => {
        for (const model of ['nat-model', 'crl-model']) {
            for (let i = 0; i < 3; i++) {
                const r = await h.chat(gw, { model, messages: [{ role: 'user', content: `hi ${i}` }] });
                assert.equal(r.status, 200, r.text);
            }
            const s = await h.stream(gw, { model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
            assert.equal(s.status, 200);
        }
        const got = cp.ok(await cp.api.get(gw, '/api/providers/crl'), 200);
        assert.equal(got.transport, 'curl');
    });

    it('over /api: set, shown, changed, and refused when unknown', async () => {
        const base = `http://127.0.0.1:${fake.port}/v1`;
        const p = cp.ok(await cp.api.post(gw, '/api/providers', {
            id: 'tp', type: 'openai', base_url: base, api_key: h.FAKE_KEY, transport: 'curl',
        }), 201);
        assert.equal(p.transport, 'curl');
        const d = cp.ok(await cp.api.post(gw, '/api/providers', {
            id: 'tp2', type: 'openai', base_url: base, api_key: h.FAKE_KEY,
        }), 201);
        assert.equal(d.transport, 'auto');
        const bad = await cp.api.post(gw, '/api/providers', {
            id: 'tp3', type: 'openai', base_url: base, api_key: h.FAKE_KEY, transport: 'h3',
        });
        cp.assertApiError(bad, 400, 'bad_request', 'transport');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
