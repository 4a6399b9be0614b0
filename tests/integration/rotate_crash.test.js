// SPDX-License-Identifier: MIT
//
// rotate_crash.test.js - master-key rotation survives a process killed
// between its steps (issue 5: "a rotate-key round trip, including a process
// killed between steps"). Key-file mode (no SWITCHBOARD_MASTER_KEY): the
// gateway stores a system and a personal credential, stops; `switchboard
// rotate-key` is killed right after writing the next key (begin) or right
// after the one-transaction re-encryption (rekey) by the binary's fault
// injection point; the next start finishes the rotation, and both keys still
// reach the upstream. A clean rotate-key run ends the round trip.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const KEYFILE_MODE = { SWITCHBOARD_MASTER_KEY: '' };

describe('rotate-key killed between steps', () => {
    let fake;
    before(async () => { fake = await new FakeUpstream({}).start(); }); /* any key: two are in play */
    after(async () => { if (fake) await fake.stop(); });

    function rotate(dir, dbPath, fault) {
        return spawnSync(h.BIN, ['rotate-key', '--db', `sqlite:${dbPath}`], {
            cwd: dir, encoding: 'utf8', timeout: 30000,
            env: { ...process.env, ...KEYFILE_MODE, ...(fault ? { SWITCHBOARD_FAULT: fault } : {}) },
        });
    }

    async function start(dir, dbPath) {
        return h.startGateway(fake, { dir, dbPath, env: KEYFILE_MODE, workers: 1 });
    }

    /** Both stored keys reach the upstream: the system one (admin token) and the user's own. */
    async function keysWork(gw, userKey) {
        const m = fake.marker('sys');
        const r = await h.chat(gw, { model: 'rk-m', messages: [{ role: 'user', content: m }] });
        assert.equal(r.status, 200, r.text);
        assert.equal(fake.requestsFor(m)[0].headers.authorization, `Bearer ${h.FAKE_KEY}`);
        const m2 = fake.marker('own');
        const r2 = await h.request(gw, { path: '/v1/chat/completions', auth: false, headers: { authorization: `Bearer ${userKey}` }, body: { model: 'rk-m', messages: [{ role: 'user', content: m2 }] } });
        assert.equal(r2.status, 200, r2.text);
        assert.equal(fake.requestsFor(m2)[0].headers.authorization, 'Bearer sk-personal-rk-000000000000001');
    }

    for (const fault of ['rotate-after-begin', 'rotate-after-rekey']) {
        it(`killed by ${fault}: the next start finishes it and every credential decrypts`, async () => {
            let gw = await start(undefined, undefined);
            const dir = gw.dir, dbPath = gw.dbPath;
            cp.ok(await cp.api.post(gw, '/api/providers', { id: 'rk', type: 'openai', base_url: `http://127.0.0.1:${fake.port}/v1`, api_key: h.FAKE_KEY }), 201);
            cp.ok(await cp.api.post(gw, '/api/models', { id: 'rk-m', provider: 'rk', upstream_model: 'gpt-4o-mini' }), 201);
            await cp.createUser(gw, 'rk-user', 'pw-rk-user-Correct-Horse-9', 'user');
            const s = await cp.login(gw, 'rk-user', 'pw-rk-user-Correct-Horse-9');
            cp.ok(await cp.api.put(gw, '/api/me/credentials/rk', { api_key: 'sk-personal-rk-000000000000001' }, s), 200);
            const k = await cp.createKey(gw, { name: 'rk-key', user: 'rk-user' });
            await keysWork(gw, k.key);
            const keyBefore = fs.readFileSync(path.join(dir, 'switchboard.key'), 'utf8');
            const idBefore = h.sql(gw, 'select distinct key_id from provider_credentials');
            await h.assertCleanStop(gw);

            const r = rotate(dir, dbPath, fault);
            assert.equal(r.status, 86, `the fault point did not end the process: ${r.status} ${r.stderr}`);
            assert.match(r.stderr, new RegExp(`fault injected: ${fault}`));
            assert.ok(fs.existsSync(path.join(dir, 'switchboard.key.new')), 'the next key is on disk');

            gw = await start(dir, dbPath);
            await keysWork(gw, k.key); /* the start finished the rotation */
            assert.ok(!fs.existsSync(path.join(dir, 'switchboard.key.new')), 'the rotation was finished at start');
            assert.notEqual(fs.readFileSync(path.join(dir, 'switchboard.key'), 'utf8'), keyBefore);
            const idAfter = h.sql(gw, 'select distinct key_id from provider_credentials');
            assert.equal(idAfter.length, 1, JSON.stringify(idAfter));
            assert.notDeepEqual(idAfter, idBefore);
            await h.assertCleanStop(gw);

            const clean = rotate(dir, dbPath, null); /* and a whole rotation after that */
            assert.equal(clean.status, 0, clean.stderr);
            gw = await start(dir, dbPath);
            await keysWork(gw, k.key);
            await h.assertCleanStop(gw);
        });
    }
});
