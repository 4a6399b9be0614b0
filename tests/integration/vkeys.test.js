// SPDX-License-Identifier: MIT
//
// vkeys.test.js - virtual keys on /v1 (DESIGN.md §4, issue 5 part 1):
// model scope (403 model_not_allowed, /v1/models lists only what the key
// may use), revocation and deletion seen within a second, expiry, a
// disabled owner, usage rows carrying the key id and user; and personal
// provider keys: a user's own key goes upstream for that user, the system
// key for everyone else, and personal_keys_required refuses a user without
// one.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const msg = (content) => [{ role: 'user', content }];
const bearer = (key) => ({ authorization: `Bearer ${key}` });

describe('virtual keys', () => {
    let open; // accepts any key, records which one it got
    let gw;
    const openUrl = () => `http://127.0.0.1:${open.port}/v1`;
    const SYSTEM_KEY = 'sk-vk-system-key-0000aaaa';

    before(async () => {
        open = await new FakeUpstream().start();
        gw = await h.startGateway(open);
        cp.ok(await cp.api.post(gw, '/api/providers', { id: 'vk-p', type: 'openai', base_url: openUrl(), api_key: SYSTEM_KEY }), 201);
        for (const id of ['vk-a', 'vk-b', 'vk-c']) cp.ok(await cp.api.post(gw, '/api/models', { id, provider: 'vk-p', upstream_model: `${id}-up` }), 201);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (open) await open.stop();
    });

    /** A chat with key; returns {status, json, text, headers, up}. */
    const chatAs = async (key, model) => {
        const m = open.marker('vk');
        const r = await h.chat(gw, { model, messages: msg(m) }, { headers: bearer(key) });
        return { ...r, up: open.requestsFor(m)[0] };
    };

    it('a key limited to model A: 200 on A, 403 model_not_allowed on B, /v1/models lists only A', async () => {
        const k = await cp.createKey(gw, { name: 'only-a', models: ['vk-a'] });
        assert.deepEqual(k.json.models, ['vk-a']);
        const a = await chatAs(k.key, 'vk-a');
        assert.equal(a.status, 200, a.text);
        assert.equal(a.up.headers.authorization, `Bearer ${SYSTEM_KEY}`, 'the virtual key must not go upstream');
        const b = await chatAs(k.key, 'vk-b');
        assert.equal(b.status, 403, b.text);
        const e = h.assertOpenAIError(b.json, b.text);
        assert.equal(e.code, 'model_not_allowed', b.text);
        assert.equal(b.up, undefined, 'a refused request reached the upstream');
        // provider/upstream_model of a model outside the scope is refused too.
        const b2 = await chatAs(k.key, 'vk-p/vk-b-up');
        assert.equal(b2.status, 403, `provider/model form bypasses the scope: ${b2.text}`);
        const l = await h.request(gw, { method: 'GET', path: '/v1/models', headers: bearer(k.key) });
        assert.equal(l.status, 200, l.text);
        assert.deepEqual(l.json.data.map((m) => m.id), ['vk-a']);
        // An unscoped key sees every model.
        const all = await cp.createKey(gw, { name: 'all' });
        const la = await h.request(gw, { method: 'GET', path: '/v1/models', headers: bearer(all.key) });
        const ids = la.json.data.map((m) => m.id);
        for (const id of ['vk-a', 'vk-b', 'vk-c', 'gpt-test']) assert.ok(ids.includes(id), `${id} missing: ${ids}`);
        assert.equal((await chatAs(all.key, 'vk-b')).status, 200);
        // A scope naming an unknown model is refused at creation.
        cp.assertApiError(await cp.api.post(gw, '/api/keys', { name: 'bad', models: ['no-such-model'] }), 400, 'bad_request', 'models');
    });

    it('a revoked key gets 401 within 1 s, a deleted one too', async () => {
        const k = await cp.createKey(gw, { name: 'to-revoke' });
        assert.equal((await chatAs(k.key, 'vk-a')).status, 200);
        cp.ok(await cp.api.post(gw, `/api/keys/${k.id}/revoke`, {}), 200);
        await cp.within(1000, async () => (await chatAs(k.key, 'vk-a')).status === 401, 'a revoked key still works');
        const r = await chatAs(k.key, 'vk-a');
        h.assertOpenAIError(r.json, r.text);
        assert.equal(r.up, undefined);
        const g = cp.ok(await cp.api.get(gw, `/api/keys/${k.id}`), 200);
        assert.equal(g.revoked, true, JSON.stringify(g));
        assert.ok(!('key' in g), `a key is shown once, at creation: ${JSON.stringify(g)}`);

        const d = await cp.createKey(gw, { name: 'to-delete' });
        assert.equal((await chatAs(d.key, 'vk-a')).status, 200);
        assert.equal((await cp.api.del(gw, `/api/keys/${d.id}`)).status, 204);
        await cp.within(1000, async () => (await chatAs(d.key, 'vk-a')).status === 401, 'a deleted key still works');
        cp.assertApiError(await cp.api.get(gw, `/api/keys/${d.id}`), 404, 'not_found');
    });

    it('an expired key gets 401; a time in the past is refused at creation', async () => {
        const soon = new Date(Date.now() + 1500).toISOString();
        const k = await cp.createKey(gw, { name: 'short-lived', expires_at: soon });
        assert.equal((await chatAs(k.key, 'vk-a')).status, 200);
        await cp.within(5000, async () => (await chatAs(k.key, 'vk-a')).status === 401, 'an expired key still works');
        const r = await chatAs(k.key, 'vk-a');
        assert.match(r.json.error.message, /expired/i, r.text);
        cp.assertApiError(await cp.api.post(gw, '/api/keys', { name: 'past', expires_at: '2001-01-01T00:00:00Z' }), 400, 'bad_request', 'expires_at');
    });

    it("a disabled user's keys stop working; enabled again, they work", async () => {
        await cp.createUser(gw, 'vk-carol', 'pw-vk-carol-Correct-Horse-9', 'user');
        const k = await cp.createKey(gw, { name: 'carol-key', user: 'vk-carol' });
        assert.equal(k.json.user, 'vk-carol');
        assert.equal((await chatAs(k.key, 'vk-a')).status, 200);
        cp.ok(await cp.api.put(gw, '/api/users/vk-carol', { status: 'disabled' }), 200);
        await cp.within(1000, async () => (await chatAs(k.key, 'vk-a')).status === 401, "a disabled user's key still works");
        cp.ok(await cp.api.put(gw, '/api/users/vk-carol', { status: 'active' }), 200);
        await cp.within(1000, async () => (await chatAs(k.key, 'vk-a')).status === 200, "an enabled user's key does not work");
    });

    it('usage rows carry the key id and the user', async () => {
        await cp.createUser(gw, 'vk-dave', 'pw-vk-dave-Correct-Horse-9', 'user');
        const k = await cp.createKey(gw, { name: 'dave-key', user: 'vk-dave' });
        const r = await chatAs(k.key, 'vk-c');
        assert.equal(r.status, 200, r.text);
        const rid = r.headers['x-request-id'];
        const row = await h.eventually(() => h.sql(gw, `SELECT user_id, key_id, model, provider FROM usage_logs WHERE request_id = '${rid}'`)[0], 5000, 100);
        assert.ok(row, `no usage row for ${rid}`);
        assert.equal(row.user_id, 'vk-dave', JSON.stringify(row));
        assert.equal(String(row.key_id), String(k.id), JSON.stringify(row));
        assert.equal(row.model, 'vk-c');
        // The admin token's requests carry no key id.
        const a = await h.chat(gw, { model: 'vk-c', messages: msg(open.marker('adm')) });
        const arow = await h.eventually(() => h.sql(gw, `SELECT user_id, key_id FROM usage_logs WHERE request_id = '${a.headers['x-request-id']}'`)[0], 5000, 100);
        assert.ok(arow && arow.key_id === null, JSON.stringify(arow));
    });

    describe('personal provider keys', () => {
        let alice;
        let bob;
        let ka;
        let kb;
        const ALICE_KEY = 'sk-alice-own-key-1111bbbb';
        before(async () => {
            alice = await cp.userSession(gw, 'vk-alice', 'user');
            bob = await cp.userSession(gw, 'vk-bob', 'user');
            ka = await cp.createKey(gw, { name: 'alice-app' }, alice);
            kb = await cp.createKey(gw, { name: 'bob-app' }, bob);
        });

        it("user A's request carries A's key upstream, user B's the system key", async () => {
            const put = await cp.api.put(gw, '/api/me/credentials/vk-p', { api_key: ALICE_KEY }, alice);
            assert.ok(put.status >= 200 && put.status < 300, put.text);
            await cp.within(1000, async () => (await chatAs(ka.key, 'vk-a')).up?.headers.authorization === `Bearer ${ALICE_KEY}`,
                "alice's own key was not used");
            const b = await chatAs(kb.key, 'vk-a');
            assert.equal(b.status, 200, b.text);
            assert.equal(b.up.headers.authorization, `Bearer ${SYSTEM_KEY}`);
            // A console session is the same user.
            const m = open.marker('vk-session');
            const s = await h.request(gw, { path: '/v1/chat/completions', body: { model: 'vk-a', messages: msg(m) },
                headers: { cookie: alice.cookie, 'x-csrf-token': alice.csrf }, auth: false });
            assert.equal(s.status, 200, s.text);
            assert.equal(open.requestsFor(m)[0].headers.authorization, `Bearer ${ALICE_KEY}`);
            // The admin token uses the system key.
            const adm = await chatAs(gw.token, 'vk-a');
            assert.equal(adm.up.headers.authorization, `Bearer ${SYSTEM_KEY}`);
        });

        it('personal_keys_required: 403 for a user without a key, A still served with hers', async () => {
            const p = cp.ok(await cp.api.get(gw, '/api/providers/vk-p'), 200);
            cp.ok(await cp.api.put(gw, '/api/providers/vk-p', { id: 'vk-p', type: 'openai', base_url: p.base_url, personal_keys_required: true }), 200);
            await cp.within(1000, async () => (await chatAs(kb.key, 'vk-a')).status === 403, 'bob was served without a personal key');
            const b = await chatAs(kb.key, 'vk-a');
            const e = h.assertOpenAIError(b.json, b.text);
            assert.equal(e.code, 'personal_key_required', b.text);
            assert.equal(b.up, undefined, 'the refused request reached the upstream');
            const a = await chatAs(ka.key, 'vk-a');
            assert.equal(a.status, 200, a.text);
            assert.equal(a.up.headers.authorization, `Bearer ${ALICE_KEY}`);
            // Alice removes her key: refused too.
            const d = await cp.api.del(gw, '/api/me/credentials/vk-p', alice);
            assert.ok(d.status >= 200 && d.status < 300, d.text);
            await cp.within(1000, async () => (await chatAs(ka.key, 'vk-a')).status === 403, 'alice was served after deleting her key');
        });
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
