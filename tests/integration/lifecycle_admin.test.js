// SPDX-License-Identifier: MIT
//
// lifecycle_admin.test.js - issue 5's "Done means", in ONE test with
// traffic flowing throughout: an admin adds a provider from a template,
// stores its key, tests it, adds models, reorders fallbacks, disables one,
// creates a user and a virtual key scoped to two models, rotates the master
// key; the application works with the virtual key (never the admin token)
// before, during and after every step.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const msg = (content) => [{ role: 'user', content }];

describe('admin life cycle', () => {
    let fake; // the config file's upstream (system key)
    let acme; // the upstream of the provider added through the API
    let gw;
    const ACME_KEY = 'gsk_acme_lifecycle_key_7777';

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        acme = await new FakeUpstream({ apiKey: ACME_KEY }).start();
        // Key-file mode (no SWITCHBOARD_MASTER_KEY): rotate-key writes the next key itself.
        gw = await h.startGateway(fake, { env: { SWITCHBOARD_MASTER_KEY: '' } });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
        if (acme) await acme.stop();
    });

    it('template → key → test → models → reorder → disable → user + scoped key → rotate-key, under traffic', async (t) => {
        const failures = [];
        let sent = 0;
        let appSent = 0;
        let running = true;
        let appKey = null; // the application's virtual key, once created
        const appModels = ['acme-fast', 'acme-big'];

        // Existing traffic (the system provider) from the first step to the last...
        const background = (async () => {
            while (running) {
                const m = fake.marker('bg');
                const streaming = sent % 2 === 0;
                sent++;
                try {
                    if (streaming) {
                        fake.script(m, { chunks: ['x', 'y'], chunkDelayMs: 5 });
                        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: msg(m) });
                        const d = await s.done;
                        if (s.status !== 200 || !d.ended || h.streamText(s.events) !== 'xy') failures.push(`bg stream ${s.status} ${s.raw.slice(0, 200)}`);
                    } else {
                        const r = await h.chat(gw, { model: 'gpt-test', messages: msg(m) });
                        if (r.status !== 200) failures.push(`bg chat ${r.status} ${r.text.slice(0, 200)}`);
                    }
                } catch (e) { failures.push(`bg: ${e.message}`); }
            }
        })();
        // ...and the application, with its virtual key only, once it has one.
        const app = (async () => {
            while (running) {
                if (!appKey) { await h.sleep(20); continue; }
                const model = appModels[appSent % 2];
                const m = acme.marker('app');
                appSent++;
                try {
                    const r = await h.chat(gw, { model, messages: msg(m) }, { headers: { authorization: `Bearer ${appKey}` } });
                    if (r.status !== 200) failures.push(`app ${model} ${r.status} ${r.text.slice(0, 200)}`);
                    const up = acme.requestsFor(m)[0];
                    if (up && up.headers.authorization !== `Bearer ${ACME_KEY}`) failures.push(`app ${model}: upstream got ${up.headers.authorization}`);
                } catch (e) { failures.push(`app: ${e.message}`); }
            }
        })();

        try {
            // 1. A provider from a built-in template, base_url pointed at the fake.
            const tpl = cp.ok(await cp.api.get(gw, '/api/templates?limit=500'), 200);
            assert.ok(tpl.data.some((x) => x.id === 'groq'), 'built-in template groq missing');
            const applied = await cp.api.post(gw, '/api/templates/groq/apply', { id: 'acme', base_url: `http://127.0.0.1:${acme.port}/v1` });
            assert.equal(applied.status, 201, applied.text);

            // 2. Its key, stored encrypted, shown masked.
            const cred = cp.ok(await cp.api.put(gw, '/api/providers/acme/credentials', { api_key: ACME_KEY }), 200);
            assert.equal(cred.credential.masked, 'gsk_…7777');

            // 3. Test the connection (another branch adds the endpoint: a 404
            //    "no such endpoint" skips this step, and says so).
            const test = await cp.api.post(gw, '/api/providers/acme/test', {});
            if (test.status === 404 && /no such endpoint/.test(test.text)) {
                t.diagnostic('POST /api/providers/{id}/test is not routed in this build: step 3 skipped');
            } else {
                assert.equal(test.status, 200, test.text);
                assert.equal(typeof test.json.latency_ms.total, 'number', test.text);
                assert.ok(test.json.ok === true || test.json.status === 'ok', `the test should pass against the fake: ${test.text}`);
                const p = cp.ok(await cp.api.get(gw, '/api/providers/acme'), 200);
                assert.ok(p.last_tested, `last_tested not stored: ${JSON.stringify(p)}`);
            }

            // 4. Models.
            for (const [id, up] of [['acme-fast', 'fast-up'], ['acme-big', 'big-up'], ['acme-spare', 'spare-up']]) {
                cp.ok(await cp.api.post(gw, '/api/providers/acme/models', { id, upstream_model: up }), 201);
            }
            const m0 = acme.marker('first');
            const first = await h.chat(gw, { model: 'acme-fast', messages: msg(m0) });
            assert.equal(first.status, 200, first.text);
            assert.equal(acme.requestsFor(m0)[0].json.model, 'fast-up');

            // 5. Fallback order.
            cp.ok(await cp.api.post(gw, '/api/models/reorder', { ids: ['acme-big', 'acme-fast', 'acme-spare'] }), 200);
            const order = cp.ok(await cp.api.get(gw, '/api/providers/acme/models?limit=500'), 200).data
                .filter((m) => m.id.startsWith('acme-')).sort((a, b) => a.fallback_priority - b.fallback_priority).map((m) => m.id);
            assert.deepEqual(order, ['acme-big', 'acme-fast', 'acme-spare']);

            // 6. Disable one: no longer served.
            cp.ok(await cp.api.post(gw, '/api/models/acme-spare/toggle', { enabled: false }), 200);
            await cp.within(1000, async () => (await h.chat(gw, { model: 'acme-spare', messages: msg('x') })).status === 404,
                'a disabled model is still served');

            // 7. A user and a virtual key scoped to two models, for the application.
            await cp.createUser(gw, 'acme-app', 'pw-acme-app-Correct-Horse-9', 'user');
            const key = await cp.createKey(gw, { name: 'acme-app-prod', user: 'acme-app', models: appModels });
            assert.deepEqual([...key.json.models].sort(), [...appModels].sort());
            const spare = await h.chat(gw, { model: 'gpt-test', messages: msg('x') }, { headers: { authorization: `Bearer ${key.key}` } });
            assert.equal(spare.status, 403, `the scoped key reached a model outside its scope: ${spare.text}`);
            appKey = key.key;
            await cp.within(3000, async () => appSent >= 6, 'the application sent nothing');

            // 8. Rotate the master key: stored credentials re-encrypted, the application unaffected.
            const before = h.sql(gw, "SELECT key_ciphertext, key_id FROM provider_credentials WHERE user_id IS NULL AND provider_id = (SELECT id FROM providers WHERE identifier = 'acme')");
            assert.equal(before.length, 1, JSON.stringify(before));
            const atRotation = appSent;
            const rot = await cp.api.post(gw, '/api/admin/rotate-key', {});
            assert.equal(rot.status, 200, rot.text);
            const afterRows = h.sql(gw, "SELECT key_ciphertext, key_id FROM provider_credentials WHERE user_id IS NULL AND provider_id = (SELECT id FROM providers WHERE identifier = 'acme')");
            assert.notEqual(afterRows[0].key_id, before[0].key_id, 'the credential is not under a new key id');
            assert.notEqual(afterRows[0].key_ciphertext, before[0].key_ciphertext);
            await cp.within(3000, async () => appSent >= atRotation + 6, 'the application stalled after the rotation');
            const mr = acme.marker('after-rotate');
            const ar = await h.chat(gw, { model: 'acme-big', messages: msg(mr) }, { headers: { authorization: `Bearer ${appKey}` } });
            assert.equal(ar.status, 200, ar.text);
            assert.equal(acme.requestsFor(mr)[0].headers.authorization, `Bearer ${ACME_KEY}`, 'the key decrypted after rotation differs');
            // A key stored after the rotation works too.
            cp.ok(await cp.api.put(gw, '/api/providers/acme/credentials', { api_key: ACME_KEY }), 200);
            await h.sleep(200);
        } finally {
            running = false;
            await Promise.all([background, app]);
        }
        assert.ok(sent >= 20, `too little background traffic: ${sent}`);
        assert.ok(appSent >= 12, `too little application traffic: ${appSent}`);
        assert.deepEqual(failures, [], `${failures.length} failed of ${sent} background + ${appSent} application requests`);
        // The application never used the admin token: every acme request came from the virtual key's loop or this test.
        // The usage writer commits in batches (every ~100 ms): wait for the last one.
        const count = () => h.sql(gw, "SELECT count(*) AS n FROM usage_logs WHERE provider = 'acme' AND key_id IS NOT NULL")[0].n;
        await h.eventually(() => count() >= appSent, 5000);
        assert.ok(count() >= appSent - 2, `usage rows with the key id: ${count()} of ${appSent}`);
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
