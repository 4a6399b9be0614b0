// SPDX-License-Identifier: MIT
//
// secrets_at_rest.test.js - "a copy of the database alone must reveal
// none" (issue 5): provider keys stored through the API (system keys by
// POST and PUT .../credentials, a user's own key by /api/me/credentials),
// used for real requests, then the raw SQLite file, its -wal and -shm, the
// gateway's stdout/stderr and every /api response body are scanned for
// every plaintext secret the test handled (provider keys, the admin token,
// virtual keys, a user's password): none may appear. Credentials come back
// only masked (sk-…abcd).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const msg = (content) => [{ role: 'user', content }];
const rnd = () => crypto.randomBytes(12).toString('hex');

describe('secrets at rest', () => {
    let open;
    let gw;
    const bodies = []; // every /api response (head and body) the test saw
    const secrets = new Map(); // label -> plaintext
    const openUrl = () => `http://127.0.0.1:${open.port}/v1`;

    // Every /api call goes through here, so its answer is scanned too.
    const call = async (method, p, body, as) => {
        const r = await cp.call(gw, method, p, body, as);
        bodies.push(`${method} ${p} -> ${r.status} ${JSON.stringify(r.headers)}\n${r.text}`);
        return r;
    };

    before(async () => {
        open = await new FakeUpstream().start();
        gw = await h.startGateway(open);
        secrets.set('admin token', gw.token);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (open) await open.stop();
    });

    /** One request to model; returns the Authorization header the upstream saw. */
    const upstreamAuth = async (model, as) => {
        const m = open.marker('sec');
        const headers = as && as.bearer ? { authorization: `Bearer ${as.bearer}` } : {};
        const r = await h.chat(gw, { model, messages: msg(m) }, { headers });
        assert.equal(r.status, 200, r.text);
        bodies.push(r.text);
        return open.requestsFor(m)[0].headers.authorization;
    };

    it('system keys stored by create and by PUT credentials are used upstream, and shown only masked', async () => {
        const k1 = `sk-sec-create-${rnd()}`;
        const k2 = `sk-sec-put-${rnd()}`;
        const k3 = `sk-sec-replaced-${rnd()}`;
        const k4 = `gsk_sec_other_${rnd()}`;
        secrets.set('create key', k1).set('put key', k2).set('replaced key', k3).set('second provider key', k4);
        cp.ok(await call('POST', '/api/providers', { id: 'sec-a', type: 'openai', base_url: openUrl(), api_key: k1 }), 201);
        cp.ok(await call('POST', '/api/models', { id: 'sec-a-m', provider: 'sec-a', upstream_model: 'x' }), 201);
        assert.equal(await upstreamAuth('sec-a-m'), `Bearer ${k1}`);

        cp.ok(await call('POST', '/api/providers', { id: 'sec-b', type: 'openai', base_url: openUrl() }), 201);
        cp.ok(await call('POST', '/api/models', { id: 'sec-b-m', provider: 'sec-b', upstream_model: 'y' }), 201);
        cp.ok(await call('PUT', '/api/providers/sec-b/credentials', { api_key: k3 }), 200);
        assert.equal(await upstreamAuth('sec-b-m'), `Bearer ${k3}`);
        const p = cp.ok(await call('PUT', '/api/providers/sec-b/credentials', { api_key: k2 }), 200);
        assert.equal(p.credential.masked, `sk-…${k2.slice(-4)}`);
        assert.equal(await upstreamAuth('sec-b-m'), `Bearer ${k2}`);

        cp.ok(await call('POST', '/api/providers', { id: 'sec-c', type: 'openai', base_url: openUrl(), api_key: k4 }), 201);
        cp.ok(await call('POST', '/api/models', { id: 'sec-c-m', provider: 'sec-c', upstream_model: 'z' }), 201);
        assert.equal(await upstreamAuth('sec-c-m'), `Bearer ${k4}`);

        // Every way a provider comes back shows the credential masked, never more.
        for (const path of ['/api/providers/sec-a', '/api/providers/sec-b', '/api/providers/sec-c', '/api/providers?limit=500']) {
            const r = await call('GET', path);
            assert.equal(r.status, 200, r.text);
            const list = r.json.data || [r.json];
            for (const prov of list.filter((x) => x.id.startsWith('sec-'))) {
                assert.match(prov.credential.masked, /^([a-z]{2,4}[-_])?…[A-Za-z0-9]{4}$/, JSON.stringify(prov));
                assert.equal(prov.credential.source, 'stored');
            }
        }
        // Errors about keys do not echo them either.
        const bad = await call('PUT', '/api/providers/sec-b/credentials', { api_key: 42 });
        cp.assertApiError(bad, 400, 'bad_request', 'api_key');
    });

    it("a user's personal key (/api/me/credentials), the user's password and virtual keys", async () => {
        const pk = `sk-sec-personal-${rnd()}`;
        secrets.set('personal key', pk);
        const user = `sec-user-${rnd().slice(0, 6)}`;
        const s = await cp.userSession(gw, user, 'user');
        secrets.set('user password', s.password);
        bodies.push(s.raw.text, JSON.stringify(s.raw.headers));
        const put = await call('PUT', '/api/me/credentials/sec-a', { api_key: pk }, s);
        assert.ok(put.status === 200 || put.status === 201 || put.status === 204, put.text);
        const list = cp.ok(await call('GET', '/api/me/credentials', undefined, s), 200);
        const mine = (list.data || list).find((c) => c.provider === 'sec-a');
        assert.ok(mine && mine.personal_key, `GET /api/me/credentials misses sec-a: ${JSON.stringify(list)}`);
        assert.equal(mine.personal_key.masked, `sk-…${pk.slice(-4)}`);

        const vk = await cp.createKey(gw, { name: 'sec-key', user });
        secrets.set('virtual key', vk.key);
        bodies.push(JSON.stringify(vk.json).replace(vk.key, '<the key, shown once>'));
        assert.equal(await upstreamAuth('sec-a-m', { bearer: vk.key }), `Bearer ${pk}`);
        const admKey = await cp.createKey(gw, { name: 'sec-admin-key' });
        secrets.set('admin virtual key', admKey.key);
        bodies.push(JSON.stringify(admKey.json).replace(admKey.key, '<the key, shown once>'));
        assert.equal(await upstreamAuth('sec-a-m', { bearer: admKey.key }), `Bearer ${secrets.get('create key')}`);
        // A key is returned by its create answer only.
        const got = await call('GET', `/api/keys/${vk.id}`);
        assert.equal(got.status, 200, got.text);
        const keys = await call('GET', '/api/keys');
        assert.equal(keys.status, 200, keys.text);
    });

    const scan = (label, buf) => {
        const hits = [];
        for (const [name, secret] of secrets) {
            if (buf.includes(Buffer.from(secret, 'utf8'))) hits.push(`${name} (${secret.slice(0, 10)}…) in ${label}`);
            // UTF-16 (SQLite may store text so) and base64 of the plaintext are plaintext too.
            if (buf.includes(Buffer.from(secret, 'utf16le'))) hits.push(`${name} as UTF-16 in ${label}`);
            if (buf.includes(Buffer.from(Buffer.from(secret).toString('base64').slice(0, -4)))) hits.push(`${name} as base64 in ${label}`);
        }
        return hits;
    };

    const scanFiles = () => {
        const hits = [];
        for (const suffix of ['', '-wal', '-shm']) {
            const f = gw.dbPath + suffix;
            if (fs.existsSync(f)) hits.push(...scan(`sb.db${suffix}`, fs.readFileSync(f)));
        }
        return hits;
    };

    it('no plaintext secret in the database file, its -wal and -shm while running', async () => {
        assert.ok(secrets.size >= 5, `too few secrets handled: ${[...secrets.keys()]}`);
        assert.ok(fs.existsSync(`${gw.dbPath}-wal`), 'the database should be in WAL mode with a -wal file');
        // The credentials really are in the file (as ciphertext), so the scan looks at the right place.
        const rows = h.sql(gw, "SELECT count(*) AS n FROM provider_credentials WHERE provider_id IN (SELECT id FROM providers WHERE identifier LIKE 'sec-%')");
        assert.ok(rows[0].n >= 3, JSON.stringify(rows));
        assert.deepEqual(scanFiles(), []);
    });

    it('no plaintext secret in any /api response body', () => {
        assert.ok(bodies.length >= 15, `only ${bodies.length} responses recorded`);
        const hits = [];
        for (const b of bodies) hits.push(...scan('an /api response', Buffer.from(b)).map((x) => `${x}: ${b.slice(0, 200)}`));
        assert.deepEqual(hits, []);
    });

    it('after a clean stop: none in the checkpointed files, stdout or stderr', async () => {
        await h.assertCleanStop(gw);
        assert.deepEqual(scanFiles(), []);
        assert.deepEqual(scan('gateway stdout', Buffer.from(gw.out)), []);
        assert.deepEqual(scan('gateway stderr', Buffer.from(gw.err)), []);
        assert.ok(gw.err.length + gw.out.length > 200, 'the gateway logged nothing: the log scan would prove nothing');
    });
});
