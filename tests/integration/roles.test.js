// SPDX-License-Identifier: MIT
//
// roles.test.js - who may call what (DESIGN.md §4, issue 5 part 1): a role ×
// endpoint matrix over EVERY row of src/api/table.c, read from the file
// itself, for anonymous callers, console sessions of a user, a developer and
// an admin, and the admin token: each gets 401 (anonymous), 403 (a role the
// row does not list) or an answer that is neither (allowed). Then
// ownership: a developer edits only their own models, and a user never sees
// another user's personal models, keys or credentials (404, not 403).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const TABLE = path.join(h.REPO, 'src', 'api', 'table.c');
const ROLE_SETS = {
    ALL: ['user', 'developer', 'admin'],
    STAFF: ['developer', 'admin'],
    ADMIN: ['admin'],
    PUBLIC: null, // no credential needed
    SB_ROLES_ALL: ['user', 'developer', 'admin'],
    SB_ROLES_STAFF: ['developer', 'admin'],
    SB_ROLE_ADMIN: ['admin'],
    SB_ROLE_PUBLIC: null,
};

/** The rows of sb__api_routes[] in table.c: {method, pattern, roles}. */
function tableRows() {
    const src = fs.readFileSync(TABLE, 'utf8');
    const start = src.indexOf('sb__api_routes[] = {');
    assert.ok(start >= 0, 'sb__api_routes[] not found in table.c');
    const body = src.slice(start, src.indexOf('\n};', start));
    const rows = [];
    const re = /\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*([A-Z_| ]+?)\s*,\s*(sb__api_\w+)\s*\}/g;
    for (let m; (m = re.exec(body));) {
        /* Flags beside the roles (UNLOCKED: runs without the api mutex; RAW: the handler
         * reads its own body) grant nothing. */
        const FLAGS = ['UNLOCKED', 'SB_API_UNLOCKED', 'RAW', 'SB_API_RAW_BODY'];
        const roleExpr = m[3].split('|').map((x) => x.trim()).filter((x) => !FLAGS.includes(x)).join(' | ');
        assert.ok(roleExpr in ROLE_SETS, `unknown roles expression "${roleExpr}" in table.c: extend ROLE_SETS`);
        rows.push({ method: m[1], pattern: m[2], roles: ROLE_SETS[roleExpr], fn: m[4] });
    }
    // Every "{" row was understood (none silently skipped).
    const opened = (body.match(/^\s*\{"/gm) || []).length;
    assert.equal(rows.length, opened, `parsed ${rows.length} of ${opened} rows of table.c`);
    return rows;
}

// Endpoints the contract (DESIGN.md §4) gives this issue: each must have a
// row. A missing one fails here by name rather than hiding in the matrix.
const CONTRACT = [
    'POST /api/auth/login', 'POST /api/auth/logout', 'GET /api/me',
    'GET /api/providers', 'POST /api/providers', 'GET /api/providers/{id}', 'PUT /api/providers/{id}',
    'DELETE /api/providers/{id}', 'POST /api/providers/{id}/toggle', 'PUT /api/providers/{id}/credentials',
    'POST /api/providers/{id}/test', 'GET /api/providers/{id}/models', 'POST /api/providers/{id}/models',
    'GET /api/providers/stats', 'GET /api/providers/{id}/capabilities',
    'GET /api/models', 'POST /api/models', 'GET /api/models/{id}', 'PUT /api/models/{id}', 'DELETE /api/models/{id}',
    'POST /api/models/{id}/toggle', 'PUT /api/models/{id}/priority', 'POST /api/models/reorder', 'POST /api/models/{id}/test',
    'GET /api/templates', 'POST /api/templates', 'PUT /api/templates/{id}', 'DELETE /api/templates/{id}',
    'POST /api/templates/{id}/apply',
    'POST /api/registry/refresh', 'GET /api/registry/status',
    'GET /api/users', 'POST /api/users', 'GET /api/users/{id}', 'PUT /api/users/{id}', 'DELETE /api/users/{id}',
    'GET /api/keys', 'POST /api/keys', 'GET /api/keys/{id}', 'DELETE /api/keys/{id}', 'POST /api/keys/{id}/revoke',
    'GET /api/me/credentials', 'PUT /api/me/credentials/{provider}', 'DELETE /api/me/credentials/{provider}',
    'GET /api/routes', 'POST /api/routes', 'GET /api/routes/{id}', 'PUT /api/routes/{id}', 'DELETE /api/routes/{id}',
    'GET /api/audit', 'POST /api/admin/rotate-key',
    'POST /api/batches', 'GET /api/batches/{id}', 'GET /api/batches/{id}/results',
];

/** A concrete path for a pattern: every parameter names nothing that exists. */
const concrete = (pattern) => pattern.replace(/\{[a-z_]+\}/g, 'zz-no-such-thing');

describe('roles', () => {
    let fake;
    let gw;
    const who = {}; // name -> identity for cp.call
    const pw = (u) => `pw-${u}-Correct-Horse-9`;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('table.c has a row for every control-plane endpoint of the contract', () => {
        const have = new Set(tableRows().map((r) => `${r.method} ${r.pattern}`));
        const missing = CONTRACT.filter((e) => !have.has(e));
        assert.deepEqual(missing, [], `endpoints of DESIGN.md §4 without a row in src/api/table.c`);
    });

    it('sessions for a user, a developer and an admin', async () => {
        who.anonymous = null;
        who['admin token'] = 'admin';
        for (const role of ['user', 'developer', 'admin']) {
            who[role] = await cp.userSession(gw, `roles-${role}`, role, pw(`roles-${role}`));
            assert.equal(who[role].role, role);
            const me = cp.ok(await cp.api.get(gw, '/api/me', who[role]), 200);
            assert.equal(me.role, role);
        }
    });

    describe('the matrix: every row × every identity', () => {
        // Run in a fixed order; logout (which ends a session) runs last.
        it('each identity gets exactly the allowed status class on every row', async () => {
            assert.ok(who.user, 'the sessions test must run first');
            const rows = tableRows();
            assert.ok(rows.length >= 30, `only ${rows.length} rows parsed`);
            const order = [...rows.filter((r) => !/logout/.test(r.pattern)), ...rows.filter((r) => /logout/.test(r.pattern))];
            const bad = [];
            let checked = 0;
            for (const row of order) {
                for (const name of ['anonymous', 'user', 'developer', 'admin', 'admin token']) {
                    const p = concrete(row.pattern);
                    const body = row.method === 'GET' || row.method === 'DELETE' ? undefined : {};
                    const r = await cp.call(gw, row.method, p, body, who[name]);
                    checked++;
                    const role = name === 'admin token' ? 'admin' : name;
                    let want;
                    if (row.roles === null) want = 'allowed';
                    else if (name === 'anonymous') want = 401;
                    else want = row.roles.includes(role) ? 'allowed' : 403;
                    const got = r.status;
                    const fine = want === 'allowed' ? got !== 401 && got !== 403 && got < 500 : got === want;
                    if (!fine) bad.push(`${name}: ${row.method} ${p} -> ${got} (want ${want}) ${r.text.slice(0, 160)}`);
                    if (got === 401 || got === 403) {
                        try { cp.assertApiError(r, got); } catch (e) { bad.push(`${name}: ${row.method} ${p}: not the /api shape: ${e.message.slice(0, 200)}`); }
                    }
                }
                if (/logout/.test(row.pattern)) break; // sessions are gone after this row
            }
            assert.ok(checked >= rows.length * 5 - 5, `checked ${checked}`);
            assert.deepEqual(bad, []);
        });
    });

    describe('ownership', () => {
        let dev2;
        let u1;
        let u2;
        before(async () => {
            // Fresh sessions (the matrix logged the first ones out).
            for (const role of ['user', 'developer', 'admin']) who[role] = await cp.login(gw, `roles-${role}`, pw(`roles-${role}`));
            dev2 = await cp.userSession(gw, 'roles-dev2', 'developer');
            u1 = await cp.userSession(gw, 'roles-u1', 'user');
            u2 = await cp.userSession(gw, 'roles-u2', 'user');
        });

        it('a developer edits own models only', async () => {
            const dev = who.developer;
            const m = cp.ok(await cp.api.post(gw, '/api/models', { id: 'dev-own', provider: 'fake', upstream_model: 'gpt-4o-mini' }, dev), 201);
            assert.equal(m.owner, 'roles-developer');
            assert.equal(m.is_global, false);
            cp.ok(await cp.api.put(gw, '/api/models/dev-own', { id: 'dev-own', provider: 'fake', upstream_model: 'gpt-4o' }, dev), 200);
            cp.ok(await cp.api.post(gw, '/api/models/dev-own/toggle', { enabled: true }, dev), 200);
            cp.ok(await cp.api.put(gw, '/api/models/dev-own/priority', { fallback_priority: 3 }, dev), 200);
            // A global model: visible, not editable.
            cp.ok(await cp.api.get(gw, '/api/models/gpt-test', dev), 200);
            cp.assertApiError(await cp.api.put(gw, '/api/models/gpt-test', { id: 'gpt-test', provider: 'fake', upstream_model: 'zz' }, dev), 403, 'forbidden');
            cp.assertApiError(await cp.api.del(gw, '/api/models/gpt-test', dev), 403, 'forbidden');
            cp.assertApiError(await cp.api.post(gw, '/api/models/gpt-test/toggle', { enabled: false }, dev), 403, 'forbidden');
            cp.assertApiError(await cp.api.post(gw, '/api/models/reorder', { ids: ['dev-own', 'gpt-test'] }, dev), 403, 'forbidden');
            assert.equal(cp.ok(await cp.api.get(gw, '/api/models/gpt-test'), 200).upstream_model, 'gpt-4o-mini');
            // Another developer's model: invisible.
            cp.assertApiError(await cp.api.get(gw, '/api/models/dev-own', dev2), 404, 'not_found');
            cp.assertApiError(await cp.api.put(gw, '/api/models/dev-own', { id: 'dev-own', provider: 'fake', upstream_model: 'x' }, dev2), 404, 'not_found');
            cp.assertApiError(await cp.api.del(gw, '/api/models/dev-own', dev2), 404, 'not_found');
            // The admin sees and may edit it.
            assert.equal(cp.ok(await cp.api.get(gw, '/api/models/dev-own'), 200).upstream_model, 'gpt-4o');
            assert.equal((await cp.api.del(gw, '/api/models/dev-own', dev)).status, 204);
        });

        it("a user never sees another user's personal models, keys or credentials (404)", async () => {
            cp.ok(await cp.api.post(gw, '/api/models', { id: 'u1-private', provider: 'fake', upstream_model: 'gpt-4o-mini' }, u1), 201);
            const k1 = cp.ok(await cp.api.post(gw, '/api/keys', { name: 'u1-key' }, u1), 201);
            const k2 = cp.ok(await cp.api.post(gw, '/api/keys', { name: 'u2-key' }, u2), 201);
            const put = await cp.api.put(gw, '/api/me/credentials/fake', { api_key: 'sk-u1-own-key-abcd' }, u1);
            assert.ok(put.status >= 200 && put.status < 300, put.text);

            // Models: listed for the owner and admins only; 404 to the other user.
            const ids = async (as) => cp.ok(await cp.api.get(gw, '/api/models?limit=500', as), 200).data.map((m) => m.id);
            assert.ok((await ids(u1)).includes('u1-private'));
            assert.ok(!(await ids(u2)).includes('u1-private'), 'u2 lists u1\'s personal model');
            assert.ok((await ids('admin')).includes('u1-private'));
            cp.assertApiError(await cp.api.get(gw, '/api/models/u1-private', u2), 404, 'not_found');
            cp.assertApiError(await cp.api.put(gw, '/api/models/u1-private', { id: 'u1-private', provider: 'fake', upstream_model: 'x' }, u2), 404, 'not_found');
            cp.assertApiError(await cp.api.post(gw, '/api/models/u1-private/toggle', {}, u2), 404, 'not_found');
            cp.assertApiError(await cp.api.del(gw, '/api/models/u1-private', u2), 404, 'not_found');
            const pm = cp.ok(await cp.api.get(gw, '/api/providers/fake/models?limit=500', u2), 200);
            assert.ok(!pm.data.some((m) => m.id === 'u1-private'));
            // Not on /v1 either, with u2's key: not listed, not callable.
            const v1 = await h.request(gw, { method: 'GET', path: '/v1/models', headers: { authorization: `Bearer ${k2.key}` } });
            assert.equal(v1.status, 200, v1.text);
            assert.ok(!v1.json.data.some((m) => m.id === 'u1-private'), v1.text);
            const c = await h.chat(gw, { model: 'u1-private', messages: [{ role: 'user', content: 'x' }] }, { headers: { authorization: `Bearer ${k2.key}` } });
            assert.equal(c.status, 404, c.text);
            assert.ok(!/u1-private'?\s*\?|Did you mean: .*u1-private/.test(c.text), `suggestions leak u1's model: ${c.text}`);

            // Keys: each sees only their own.
            const keyIds = async (as) => cp.ok(await cp.api.get(gw, '/api/keys', as), 200).data.map((k) => k.id);
            assert.ok((await keyIds(u1)).includes(k1.id));
            assert.ok(!(await keyIds(u2)).includes(k1.id), 'u2 lists u1\'s key');
            cp.assertApiError(await cp.api.get(gw, `/api/keys/${k1.id}`, u2), 404, 'not_found');
            cp.assertApiError(await cp.api.post(gw, `/api/keys/${k1.id}/revoke`, {}, u2), 404, 'not_found');
            cp.assertApiError(await cp.api.del(gw, `/api/keys/${k1.id}`, u2), 404, 'not_found');
            const k1now = cp.ok(await cp.api.get(gw, `/api/keys/${k1.id}`, u1), 200);
            assert.ok(!k1now.revoked && k1now.status !== 'revoked', JSON.stringify(k1now));

            // Credentials: u2 sees none of u1's, and deleting "its own" leaves u1's.
            const creds = async (as) => {
                const j = cp.ok(await cp.api.get(gw, '/api/me/credentials', as), 200);
                return j.data || j;
            };
            const own = (list) => list.some((x) => x.provider === 'fake' && x.personal_key);
            assert.ok(own(await creds(u1)), 'u1 does not see its own credential');
            assert.ok(!own(await creds(u2)), 'u2 sees u1\'s credential');
            const d = await cp.api.del(gw, '/api/me/credentials/fake', u2);
            cp.assertApiError(d, 404, 'not_found');
            assert.ok(own(await creds(u1)), 'u2 deleted u1\'s credential');
        });
    });

    it('login, session cookie and CSRF: HttpOnly SameSite=Strict, writes need x-csrf-token, logout ends it', async () => {
        await cp.createUser(gw, 'roles-csrf', pw('roles-csrf'), 'developer');
        const bad = await h.request(gw, { method: 'POST', path: '/api/auth/login', body: { username: 'roles-csrf', password: 'wrong-password-1' }, auth: false });
        cp.assertApiError(bad, 401);
        assert.ok(!bad.headers['set-cookie'], 'a failed login set a cookie');
        const nobody = await h.request(gw, { method: 'POST', path: '/api/auth/login', body: { username: 'no-such-user', password: 'x-password-1' }, auth: false });
        cp.assertApiError(nobody, 401);
        assert.equal(nobody.json.error.message, bad.json.error.message, 'the answer tells unknown users from wrong passwords');
        const s = await cp.login(gw, 'roles-csrf', pw('roles-csrf'));
        const c = s.setCookie.join('\n');
        assert.match(c, /HttpOnly/i, c);
        assert.match(c, /SameSite=Strict/i, c);
        const body = { id: 'csrf-m', provider: 'fake', upstream_model: 'gpt-4o-mini' };
        cp.assertApiError(await cp.call(gw, 'POST', '/api/models', body, { cookie: s.cookie }), 403, 'forbidden');
        cp.assertApiError(await cp.call(gw, 'POST', '/api/models', body, { cookie: s.cookie, csrf: `${s.csrf.slice(0, -2)}xx` }), 403, 'forbidden');
        cp.assertApiError(await cp.api.get(gw, '/api/models/csrf-m', s), 404, 'not_found');
        cp.ok(await cp.api.post(gw, '/api/models', body, s), 201);
        // /v1 with the cookie: a write (chat) needs the CSRF token too.
        const v1 = await h.request(gw, { path: '/v1/chat/completions', body: { model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] }, headers: { cookie: s.cookie }, auth: false });
        assert.equal(v1.status, 403, v1.text);
        const out = await cp.api.post(gw, '/api/auth/logout', {}, s);
        assert.ok(out.status === 200 || out.status === 204, out.text);
        cp.assertApiError(await cp.api.get(gw, '/api/me', s), 401, 'unauthorized');
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
