// SPDX-License-Identifier: MIT
//
// ssrf.test.js - base URLs from non-admins must not reach inside the
// network (issue 5 part 6): a developer creating a template, or testing a
// provider configuration not yet saved, with a base_url on loopback,
// private, link-local (cloud metadata) or IPv6 loopback addresses gets 403
// with field base_url; an admin may. Odd IPv4 spellings (one decimal
// number) are refused for everyone (src/net/ssrf.h: malformed, 400) or as
// loopback (403) — either way with field base_url, and nothing is stored.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const INTERNAL = [
    ['loopback 127.0.0.1', 'http://127.0.0.1:9/v1'],
    ['private 10.x', 'http://10.1.2.3/v1'],
    ['cloud metadata 169.254.169.254', 'http://169.254.169.254/latest'],
    ['IPv6 loopback [::1]', 'http://[::1]:9/v1'],
    ['private 192.168.x', 'https://192.168.0.10/v1'],
    ['the name localhost', 'http://localhost:9/v1'],
];
const ODD = [['one decimal number 2130706433', 'http://2130706433/v1']];

describe('SSRF refusals', () => {
    let fake;
    let gw;
    let dev;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('a developer session', async () => {
        dev = await cp.userSession(gw, 'ssrf-dev', 'developer');
        assert.equal(dev.role, 'developer');
    });

    describe('templates: POST /api/templates', () => {
        let n = 0;
        for (const [name, url] of INTERNAL) {
            it(`${name}: 403 field base_url for a developer, 201 for an admin`, async () => {
                assert.ok(dev, 'no developer session');
                const id = `ssrf-t${n++}`;
                const r = await cp.api.post(gw, '/api/templates', { id, type: 'openai', base_url: url }, dev);
                cp.assertApiError(r, 403, 'forbidden', 'base_url');
                cp.assertApiError(await cp.api.get(gw, `/api/templates/${id}`), 404, 'not_found');
                const a = await cp.api.post(gw, '/api/templates', { id, type: 'openai', base_url: url });
                assert.equal(a.status, 201, `an admin may use ${url}: ${a.text}`);
            });
        }
        for (const [name, url] of ODD) {
            it(`${name}: refused with field base_url for a developer`, async () => {
                assert.ok(dev, 'no developer session');
                const r = await cp.api.post(gw, '/api/templates', { id: 'ssrf-odd', type: 'openai', base_url: url }, dev);
                assert.ok(r.status === 403 || r.status === 400, r.text);
                cp.assertApiError(r, r.status, undefined, 'base_url');
                cp.assertApiError(await cp.api.get(gw, '/api/templates/ssrf-odd'), 404, 'not_found');
            });
        }
        it('a public address is accepted from a developer', async () => {
            const r = await cp.api.post(gw, '/api/templates', { id: 'ssrf-public', type: 'openai', base_url: 'https://93.184.215.14/v1' }, dev);
            assert.equal(r.status, 201, r.text);
        });
    });

    describe('testing an unsaved configuration: POST /api/providers/test', () => {
        for (const [name, url] of [...INTERNAL, ...ODD]) {
            it(`${name}: refused for a developer with field base_url, not for an admin`, async () => {
                assert.ok(dev, 'no developer session');
                const body = { id: 'ssrf-probe', type: 'openai', base_url: url, api_key: 'sk-ssrf-probe-0000' };
                const r = await cp.api.post(gw, '/api/providers/test', body, dev);
                assert.ok(r.status !== 404 && r.status !== 405, `POST /api/providers/test is not routed in this build: ${r.text}`);
                assert.ok(r.status === 403 || (r.status === 400 && ODD.some(([, u]) => u === url)), r.text);
                cp.assertApiError(r, r.status, undefined, 'base_url');
                // The admin's probe really connects: only where nothing listens
                // (port 9 on loopback refuses at once), so no test waits on a
                // connect timeout to an unroutable address.
                if (!url.includes(':9/')) return;
                const a = await cp.api.post(gw, '/api/providers/test', body);
                {
                    assert.ok(!(a.status === 403 && a.json?.error?.field === 'base_url'), `an admin was refused ${url}: ${a.text}`);
                    assert.ok(a.status < 500 || a.status === 502 || a.status === 504, a.text);
                }
            });
        }
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});

describe('SSRF guard turned off by the config (allow_private_base_urls: true)', () => {
    let fake, gw;
    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, {
            configYaml: (server) => `${h.configYaml(fake.port, server)}allow_private_base_urls: true\n`,
        });
    });
    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (fake) await fake.stop();
    });
    it('a developer may name an internal host when an admin allowed it', async () => {
        const dev = await cp.userSession(gw, 'ssrf-dev2', 'developer');
        const r = await cp.api.post(gw, '/api/templates', { id: 'internal-ok', type: 'openai', base_url: 'http://127.0.0.1:9/v1' }, dev);
        assert.equal(r.status, 201, r.text);
    });
});
