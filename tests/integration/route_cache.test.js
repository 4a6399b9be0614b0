// SPDX-License-Identifier: MIT
//
// route_cache.test.js - the control-plane half of the response cache (issue 7
// part 9): a route's `cache: {ttl_s, shared, sampled}` block in the config
// file and in /api/routes bodies (one key table), shown back by the API,
// kept across a restart (routes.options, migration 7), and refused with a
// clear error when wrong. Serving from the cache (x-switchboard-cache) is
// wired into the proxy separately and tested there.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const { api, assertApiError, ok } = require('./lib/cp');

const ROUTES = [
    'routes:',
    '  - {id: "cached", targets: ["gpt-test"], cache: {ttl_s: 300, shared: true}}',
    '  - {id: "uncached", targets: ["gpt-test"]}',
    '',
].join('\n');

/** Runs `switchboard serve` on a config text that must be refused; resolves {code, stderr}. */
function serveRefused(configText) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-it-cache-'));
    const cfg = path.join(dir, 'switchboard.yaml');
    fs.writeFileSync(cfg, configText);
    return new Promise((resolve, reject) => {
        const p = spawn(h.BIN, ['serve', '--config', cfg, '--listen', '127.0.0.1:1', '--db',
            `sqlite:${path.join(dir, 'sb.db')}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('serve did not exit')); }, 15000);
        p.stdout.on('data', (d) => { stderr += d; });
        p.stderr.on('data', (d) => { stderr += d; });
        p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
    });
}

describe('route cache settings', () => {
    let fake;
    let gw;
    let first;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, { config: h.configYaml(fake.port) + ROUTES });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (first) await first.kill();
        if (fake) await fake.stop();
    });

    it('the config file\'s cache block is shown by /api/routes; a route without one says null', async () => {
        const c = ok(await api.get(gw, '/api/routes/cached'), 200);
        assert.deepEqual(c.cache, { ttl_s: 300, shared: true, sampled: false });
        const u = ok(await api.get(gw, '/api/routes/uncached'), 200);
        assert.equal(u.cache, null);
    });

    it('/api/routes takes the same block, replaces it on PUT, and refuses a bad one by field', async () => {
        const body = { id: 'api-cached', targets: ['gpt-test'], cache: { ttl_s: 60, sampled: true } };
        const c = ok(await api.post(gw, '/api/routes', body), 201);
        assert.deepEqual(c.cache, { ttl_s: 60, shared: false, sampled: true });
        assert.deepEqual(ok(await api.get(gw, '/api/routes/api-cached'), 200).cache, c.cache);
        const off = ok(await api.put(gw, '/api/routes/api-cached', { id: 'api-cached', targets: ['gpt-test'] }), 200);
        assert.equal(off.cache, null);

        const bad = [
            [{ ttl_s: 0 }, 'cache.ttl_s', /expected an integer in \[1, 2592000\]/],
            [{ ttl_s: -5 }, 'cache.ttl_s', /expected an integer in \[1, 2592000\]/],
            [{ ttl_s: '60' }, 'cache.ttl_s', /expected an integer/],
            [{ ttl_s: 2592001 }, 'cache.ttl_s', /expected an integer in \[1, 2592000\]/],
            [{ shared: true }, 'cache.ttl_s', /ttl_s is required/],
            [{ ttl_s: 60, shared: 'yes' }, 'cache.shared', /expected true or false/],
            [{ ttl_s: 60, max_bytes: 5 }, 'cache', /unknown key 'max_bytes'/],
        ];
        for (const [cache, field, msg] of bad) {
            const e = assertApiError(await api.post(gw, '/api/routes', { id: 'bad-cache', targets: ['gpt-test'], cache }),
                400, 'bad_request');
            assert.match(e.message, msg, JSON.stringify(cache));
            if (field !== 'cache') assert.equal(e.field, field, JSON.stringify(e));
        }
        assertApiError(await api.get(gw, '/api/routes/bad-cache'), 404, 'not_found');
    });

    it('the block survives a restart on the same database', async () => {
        ok(await api.post(gw, '/api/routes', { id: 'kept', targets: ['gpt-test'], cache: { ttl_s: 7 } }), 201);
        const stop = await gw.stop();
        assert.equal(stop.code, 0, gw.logTail());
        first = gw;
        gw = await h.startGateway(fake, {
            config: h.configYaml(fake.port) + ROUTES,
            dbPath: first.dbPath,
            env: { SWITCHBOARD_MASTER_KEY: first.masterKey },
        });
        assert.deepEqual(ok(await api.get(gw, '/api/routes/kept'), 200).cache, { ttl_s: 7, shared: false, sampled: false });
        assert.deepEqual(ok(await api.get(gw, '/api/routes/cached'), 200).cache, { ttl_s: 300, shared: true, sampled: false });
    });

    it('a config file with a bad ttl is refused at start, naming file, line and key', async () => {
        const text = h.configYaml(fake.port) + 'routes:\n  - {id: "r", targets: ["gpt-test"], cache: {ttl_s: 0}}\n';
        const r = await serveRefused(text);
        assert.notEqual(r.code, 0, r.stderr);
        assert.match(r.stderr, /switchboard\.yaml:\d+: routes\[0\]\.cache\.ttl_s: expected an integer in \[1, 2592000\]/);
    });
});
