// SPDX-License-Identifier: MIT
//
// control_identity.test.js - the control plane's identities against the real
// binary: console login (cookie flags, CSRF, logout, the attempt limit),
// users CRUD and its rules (409/404/400 in the /api error shape, the last
// admin, sessions ended on disable), a role x endpoint matrix, virtual keys
// (shown once, only the hash in the database file, scoping between users,
// revoke), personal provider credentials (masked, encrypted), the audit log
// (a row per action, denied requests and failed logins, no secret in it),
// the CLI (users add, keys create, rotate-key) and master key rotation over
// the API with credentials still working afterwards.
//
// Virtual keys are tested over /api only: /v1 does not accept them yet.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const ROOT_PW = 'root-password-1';

function cli(gw, args, env = {}) {
    return spawnSync(h.BIN, [...args, '--db', `sqlite:${gw.dbPath}`], {
        encoding: 'utf8', timeout: 20000, cwd: gw.dir,
        env: { ...process.env, SWITCHBOARD_PASSWORD: '', ...env },
    });
}

/** Logs in; returns {cookie, csrf, res} (cookie is "sb_session=..."). */
async function login(gw, username, password) {
    const res = await h.request(gw, { path: '/api/auth/login', auth: false, body: { username, password } });
    const set = res.headers['set-cookie'];
    const cookie = set ? set[0].split(';')[0] : null;
    return { cookie, csrf: res.json && res.json.csrf_token, res };
}

/** A request as a session (with its CSRF token unless csrf === false). */
function as(gw, s, method, p, body, { csrf = true } = {}) {
    const headers = { cookie: s.cookie };
    if (csrf) headers['x-csrf-token'] = s.csrf;
    return h.request(gw, { method, path: p, body, auth: false, headers });
}

function assertApiError(r, status, code, field) {
    assert.equal(r.status, status, r.text);
    assert.ok(r.json && r.json.error, `not the /api error shape: ${r.text}`);
    assert.equal(typeof r.json.requestId, 'string');
    assert.equal(typeof r.json.timestamp, 'string');
    assert.ok(Array.isArray(r.json.error.suggestions));
    if (code) assert.equal(r.json.error.code, code, r.text);
    if (field !== undefined) assert.equal(r.json.error.field, field, r.text);
}

/** Audit rows with this action (the writer batches: poll). */
async function auditRows(gw, where, min = 1) {
    return h.eventually(() => {
        const rows = h.sql(gw, `SELECT * FROM audit_log WHERE ${where} ORDER BY id`);
        return rows.length >= min ? rows : null;
    }, 5000);
}

function dbBytes(gw) {
    return ['', '-wal'].map((s) => gw.dbPath + s).filter((f) => fs.existsSync(f))
        .map((f) => fs.readFileSync(f)).reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0));
}

describe('control plane identities', () => {
    let fake;
    let gw;
    let root; // the admin user's session

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
        const r = await h.request(gw, { path: '/api/users', body: { username: 'root', password: ROOT_PW, role: 'admin' } });
        assert.equal(r.status, 201, r.text);
        root = await login(gw, 'root', ROOT_PW);
        assert.equal(root.res.status, 200, root.res.text);
        for (const [u, role] of [['dev', 'developer'], ['ann', 'user'], ['ben', 'user']]) {
            const c = await h.request(gw, { path: '/api/users', body: { username: u, password: `${u}-password-1`, role } });
            assert.equal(c.status, 201, c.text);
        }
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    // ---- login, session, CSRF ---------------------------------------------

    describe('login and sessions', () => {
        it('login sets an HttpOnly SameSite=Strict cookie and returns user, role, csrf_token', async () => {
            const s = await login(gw, 'ann', 'ann-password-1');
            assert.equal(s.res.status, 200, s.res.text);
            const set = s.res.headers['set-cookie'][0];
            assert.match(set, /^sb_session=[A-Za-z0-9_-]{43}; /);
            assert.match(set, /; HttpOnly/);
            assert.match(set, /; SameSite=Strict/);
            assert.match(set, /; Path=\//);
            assert.match(set, /; Max-Age=\d+/);
            assert.deepEqual(Object.keys(s.res.json).sort(), ['csrf_token', 'role', 'user']);
            assert.equal(s.res.json.user, 'ann');
            assert.equal(s.res.json.role, 'user');
            // only the token's hash is stored
            const token = s.cookie.split('=')[1];
            assert.ok(!dbBytes(gw).includes(token), 'the session token is in the database file');
            const me = await as(gw, s, 'GET', '/api/me');
            assert.equal(me.status, 200, me.text);
            assert.equal(me.json.user, 'ann');
            assert.equal(me.json.via, 'session');
            assert.equal(me.json.csrf_token, s.csrf, 'GET /api/me gives the same CSRF token back');
        });

        it('a wrong password or unknown user is 401 in the /api shape, without saying which', async () => {
            const a = await login(gw, 'ann', 'not-the-password');
            const b = await login(gw, 'nobody-here', 'whatever-password');
            assertApiError(a.res, 401, 'unauthorized');
            assertApiError(b.res, 401, 'unauthorized');
            assert.equal(a.res.json.error.message, b.res.json.error.message);
            assert.equal(a.cookie, null);
        });

        it('a session write without or with a wrong x-csrf-token is 403; with it, it works', async () => {
            const s = await login(gw, 'ann', 'ann-password-1');
            const none = await as(gw, s, 'POST', '/api/keys', { name: 'x' }, { csrf: false });
            assertApiError(none, 403, 'forbidden');
            const wrong = await as(gw, { ...s, csrf: root.csrf }, 'POST', '/api/keys', { name: 'x' });
            assertApiError(wrong, 403, 'forbidden');
            const ok = await as(gw, s, 'POST', '/api/keys', { name: 'csrf-ok' });
            assert.equal(ok.status, 201, ok.text);
            // reads need no CSRF token
            const list = await as(gw, s, 'GET', '/api/keys', undefined, { csrf: false });
            assert.equal(list.status, 200, list.text);
        });

        it('logout ends the session and clears the cookie', async () => {
            const s = await login(gw, 'ben', 'ben-password-1');
            const out = await as(gw, s, 'POST', '/api/auth/logout');
            assert.equal(out.status, 204, out.text);
            assert.match(out.headers['set-cookie'][0], /^sb_session=; .*Max-Age=0/);
            const me = await as(gw, s, 'GET', '/api/me');
            assertApiError(me, 401, 'unauthorized');
        });

        it('a forged or malformed cookie is 401', async () => {
            for (const cookie of ['sb_session=' + 'A'.repeat(43), 'sb_session=short', 'other=1']) {
                const r = await h.request(gw, { method: 'GET', path: '/api/me', auth: false, headers: { cookie } });
                assertApiError(r, 401, 'unauthorized');
            }
        });

        it('5 failed logins for a user give 429 with Retry-After, even with the right password', async () => {
            const c = await h.request(gw, { path: '/api/users', body: { username: 'victim', password: 'victim-password-1', role: 'user' } });
            assert.equal(c.status, 201, c.text);
            for (let i = 0; i < 5; i++) {
                const r = await login(gw, 'victim', `wrong-${i}-password`);
                assert.equal(r.res.status, 401, r.res.text);
            }
            const blocked = await login(gw, 'victim', 'victim-password-1');
            assertApiError(blocked.res, 429, 'rate_limited');
            const retry = Number(blocked.res.headers['retry-after']);
            assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry}`);
            // another user is not affected
            const ok = await login(gw, 'ann', 'ann-password-1');
            assert.equal(ok.res.status, 200, ok.res.text);
        });
    });

    // ---- users ---------------------------------------------------------------

    describe('users', () => {
        it('create answers 201 without any password hash; list and get too', async () => {
            const r = await as(gw, root, 'POST', '/api/users', { username: 'carl', password: 'carl-password-1', role: 'developer' });
            assert.equal(r.status, 201, r.text);
            assert.equal(r.json.username, 'carl');
            assert.equal(r.json.role, 'developer');
            assert.equal(r.json.status, 'active');
            const list = await as(gw, root, 'GET', '/api/users?limit=100');
            assert.equal(list.status, 200, list.text);
            assert.ok(list.json.data.some((u) => u.username === 'carl'));
            const get = await as(gw, root, 'GET', '/api/users/carl');
            assert.equal(get.status, 200, get.text);
            for (const t of [r.text, list.text, get.text]) {
                assert.ok(!/argon2|password/i.test(t), `a password or hash in ${t}`);
            }
            const row = h.sql(gw, "SELECT password_hash FROM users WHERE username = 'carl'")[0];
            assert.match(row.password_hash, /^\$argon2id\$/);
        });

        it('a duplicate is 409, an unknown user 404, bad input 400 naming the field', async () => {
            assertApiError(await as(gw, root, 'POST', '/api/users', { username: 'carl', password: 'carl-password-1', role: 'user' }), 409, 'conflict', 'username');
            assertApiError(await as(gw, root, 'GET', '/api/users/nobody'), 404, 'not_found');
            assertApiError(await as(gw, root, 'PUT', '/api/users/nobody', { role: 'user' }), 404, 'not_found');
            assertApiError(await as(gw, root, 'DELETE', '/api/users/nobody'), 404, 'not_found');
            assertApiError(await as(gw, root, 'POST', '/api/users', { username: 'dora', password: 'short', role: 'user' }), 400, 'bad_request', 'password');
            assertApiError(await as(gw, root, 'POST', '/api/users', { username: 'dora', password: 'dora-password-1', role: 'boss' }), 400, 'bad_request', 'role');
            assertApiError(await as(gw, root, 'POST', '/api/users', { username: 'Bad Name', password: 'dora-password-1', role: 'user' }), 400, 'bad_request', 'username');
            assertApiError(await as(gw, root, 'POST', '/api/users', { password: 'dora-password-1' }), 400, 'bad_request', 'username');
            assertApiError(await as(gw, root, 'POST', '/api/users', { username: 'dora', password: 'dora-password-1', admin: true }), 400, 'bad_request', 'admin');
            assertApiError(await as(gw, root, 'PUT', '/api/users/carl', { status: 'gone' }), 400, 'bad_request', 'status');
        });

        it('the last admin cannot be deleted, demoted or disabled (409)', async () => {
            assertApiError(await as(gw, root, 'DELETE', '/api/users/root'), 409, 'conflict');
            assertApiError(await as(gw, root, 'PUT', '/api/users/root', { role: 'user' }), 409, 'conflict');
            assertApiError(await as(gw, root, 'PUT', '/api/users/root', { status: 'disabled' }), 409, 'conflict');
            const still = await as(gw, root, 'GET', '/api/me');
            assert.equal(still.json.role, 'admin');
        });

        it('disabling a user ends their sessions and refuses their logins', async () => {
            const s = await login(gw, 'carl', 'carl-password-1');
            assert.equal((await as(gw, s, 'GET', '/api/me')).status, 200);
            const r = await as(gw, root, 'PUT', '/api/users/carl', { status: 'disabled' });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.status, 'disabled');
            assertApiError(await as(gw, s, 'GET', '/api/me'), 401);
            assert.equal((await login(gw, 'carl', 'carl-password-1')).res.status, 401);
            assert.equal(h.sql(gw, "SELECT COUNT(*) AS n FROM sessions WHERE username = 'carl'")[0].n, 0);
        });

        it('a password change ends sessions; the new password works; delete removes the user', async () => {
            const c = await as(gw, root, 'POST', '/api/users', { username: 'dora', password: 'dora-password-1', role: 'user' });
            assert.equal(c.status, 201, c.text);
            const s = await login(gw, 'dora', 'dora-password-1');
            const up = await as(gw, root, 'PUT', '/api/users/dora', { password: 'dora-password-2' });
            assert.equal(up.status, 200, up.text);
            assertApiError(await as(gw, s, 'GET', '/api/me'), 401);
            assert.equal((await login(gw, 'dora', 'dora-password-1')).res.status, 401);
            const s2 = await login(gw, 'dora', 'dora-password-2');
            assert.equal(s2.res.status, 200, s2.res.text);
            const del = await as(gw, root, 'DELETE', '/api/users/dora');
            assert.equal(del.status, 204, del.text);
            assertApiError(await as(gw, s2, 'GET', '/api/me'), 401);
            assertApiError(await as(gw, root, 'GET', '/api/users/dora'), 404);
        });
    });

    // ---- roles ---------------------------------------------------------------

    describe('role x endpoint', () => {
        const sessions = {};
        before(async () => {
            sessions.admin = root;
            sessions.developer = await login(gw, 'dev', 'dev-password-1');
            sessions.user = await login(gw, 'ann', 'ann-password-1');
        });
        // [method, path, body, who may: admin, developer, user]
        const table = [
            ['GET', '/api/users', undefined, [true, false, false]],
            ['POST', '/api/users', { username: 'mx', password: 'short' }, [true, false, false]],
            ['GET', '/api/users/ann', undefined, [true, false, false]],
            ['PUT', '/api/users/ann', { role: 'user' }, [true, false, false]],
            ['DELETE', '/api/users/nobody', undefined, [true, false, false]],
            ['GET', '/api/audit', undefined, [true, false, false]],
            ['POST', '/api/admin/rotate-key', undefined, [null, false, false]],
            ['GET', '/api/keys', undefined, [true, true, true]],
            ['POST', '/api/keys', { name: 'matrix' }, [true, true, true]],
            ['GET', '/api/me', undefined, [true, true, true]],
            ['GET', '/api/me/credentials', undefined, [true, true, true]],
        ];
        for (const [method, p, body, may] of table) {
            ['admin', 'developer', 'user'].forEach((role, i) => {
                if (may[i] === null) return; // allowed, but not run here (rotation has its own test)
                it(`${role} ${may[i] ? 'may' : 'may not'} ${method} ${p}`, async () => {
                    const r = await as(gw, sessions[role], method, p, body);
                    if (may[i]) assert.ok(r.status !== 401 && r.status !== 403, `${r.status} ${r.text}`);
                    else assertApiError(r, 403, 'forbidden');
                });
            });
            it(`anonymous may not ${method} ${p}`, async () => {
                const r = await h.request(gw, { method, path: p, body, auth: false });
                assertApiError(r, 401, 'unauthorized');
            });
        }

        it('a refused request is audited as denied', async () => {
            const rows = await auditRows(gw, "outcome = 'denied' AND actor = 'ann' AND action = 'GET /api/users'");
            assert.equal(rows[0].actor_role, 'user');
            assert.equal(rows[0].ip, '127.0.0.1');
        });
    });

    // ---- virtual keys ----------------------------------------------------------

    describe('virtual keys', () => {
        let ann;
        let ben;
        let created;
        before(async () => {
            ann = await login(gw, 'ann', 'ann-password-1');
            ben = await login(gw, 'ben', 'ben-password-1');
        });

        it('create shows the key once; only its hash reaches the database file', async () => {
            const r = await as(gw, ann, 'POST', '/api/keys', { name: 'ann-app', models: ['gpt-test'], expires_at: '2099-01-01T00:00:00Z' });
            assert.equal(r.status, 201, r.text);
            created = r.json;
            assert.match(created.key, /^sk-sb-[A-Za-z0-9_-]{43}$/);
            assert.equal(created.user, 'ann');
            assert.deepEqual(created.models, ['gpt-test']);
            assert.equal(created.expires_at, '2099-01-01T00:00:00.000Z');
            assert.equal(created.prefix, created.key.slice(0, 10));
            assert.equal(created.revoked, false);
            const get = await as(gw, ann, 'GET', `/api/keys/${created.id}`);
            assert.equal(get.status, 200, get.text);
            assert.equal(get.json.key, undefined, 'the key is shown again');
            assert.ok(!get.text.includes(created.key));
            const list = await as(gw, ann, 'GET', '/api/keys');
            assert.ok(!list.text.includes(created.key));
            assert.ok(list.json.data.some((k) => k.id === created.id && k.masked.startsWith(created.prefix)));
            const hash = 'sha256:' + require('node:crypto').createHash('sha256').update(created.key).digest('hex');
            assert.equal(h.sql(gw, `SELECT key_hash FROM api_keys WHERE id = ${Number(created.id)}`)[0].key_hash, hash);
            await h.sleep(300); // let the audit row land too
            assert.ok(!dbBytes(gw).includes(created.key), 'the key text is in the database file');
            assert.ok(!gw.err.includes(created.key) && !gw.out.includes(created.key), 'the key text is in the logs');
        });

        it('a model that does not exist is 400 naming models, with suggestions', async () => {
            const r = await as(gw, ann, 'POST', '/api/keys', { name: 'bad', models: ['gpt-tset'] });
            assertApiError(r, 400, 'bad_request', 'models');
            assert.ok(r.json.error.suggestions.includes('gpt-test'), r.text);
            assertApiError(await as(gw, ann, 'POST', '/api/keys', { name: 'bad', models: 'gpt-test' }), 400, 'bad_request', 'models');
            assertApiError(await as(gw, ann, 'POST', '/api/keys', { name: 'bad', expires_at: 'soon' }), 400, 'bad_request', 'expires_at');
            assertApiError(await as(gw, ann, 'POST', '/api/keys', { name: 'bad', expires_at: '2001-01-01' }), 400, 'bad_request', 'expires_at');
            assertApiError(await as(gw, ann, 'POST', '/api/keys', { models: [] }), 400, 'bad_request', 'name');
            assertApiError(await as(gw, ann, 'POST', '/api/keys', { name: 'x', user: 'ben' }), 403, 'forbidden', 'user');
        });

        it("a user sees only their own keys: another's reads as 404", async () => {
            const list = await as(gw, ben, 'GET', '/api/keys');
            assert.equal(list.status, 200, list.text);
            assert.ok(!list.json.data.some((k) => k.id === created.id));
            assert.ok(list.json.data.every((k) => k.user === 'ben'));
            assertApiError(await as(gw, ben, 'GET', `/api/keys/${created.id}`), 404, 'not_found');
            assertApiError(await as(gw, ben, 'POST', `/api/keys/${created.id}/revoke`), 404, 'not_found');
            assertApiError(await as(gw, ben, 'DELETE', `/api/keys/${created.id}`), 404, 'not_found');
            // the admin sees everyone's, and may filter by user
            const all = await as(gw, root, 'GET', '/api/keys?user=ann');
            assert.ok(all.json.data.some((k) => k.id === created.id));
        });

        it('the admin token creates keys owned by nobody, or by the user named', async () => {
            const a = await h.request(gw, { path: '/api/keys', body: { name: 'service' } });
            assert.equal(a.status, 201, a.text);
            assert.equal(a.json.user, null);
            const b = await h.request(gw, { path: '/api/keys', body: { name: 'for-ben', user: 'ben' } });
            assert.equal(b.status, 201, b.text);
            assert.equal(b.json.user, 'ben');
            assertApiError(await h.request(gw, { path: '/api/keys', body: { name: 'x', user: 'nobody' } }), 400, 'bad_request', 'user');
        });

        it('revoke marks the key revoked; it stays listed; delete removes it', async () => {
            const r = await as(gw, ann, 'POST', `/api/keys/${created.id}/revoke`);
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.revoked, true);
            assert.ok(r.json.revoked_at);
            const list = await as(gw, ann, 'GET', '/api/keys');
            assert.ok(list.json.data.some((k) => k.id === created.id && k.revoked));
            const del = await as(gw, ann, 'DELETE', `/api/keys/${created.id}`);
            assert.equal(del.status, 204, del.text);
            assertApiError(await as(gw, ann, 'GET', `/api/keys/${created.id}`), 404);
        });

        it('keys are audited without the key text', async () => {
            await auditRows(gw, `action = 'key.delete' AND target_id = '${created.id}'`);
            const rows = await auditRows(gw, `target_type = 'key' AND target_id = '${created.id}'`, 3);
            assert.deepEqual(rows.map((r) => r.action), ['key.create', 'key.revoke', 'key.delete']);
            assert.ok(rows.every((r) => r.actor === 'ann' && r.outcome === 'ok'));
            assert.equal(JSON.parse(rows[1].after_json).revoked, true);
            assert.ok(!JSON.stringify(rows).includes(created.key));
        });
    });

    // ---- personal credentials ----------------------------------------------

    describe('personal provider credentials', () => {
        const PERSONAL = 'sk-personal-key-of-ann-0123456789abcd';
        it('list, put (masked, encrypted), delete', async () => {
            const ann = await login(gw, 'ann', 'ann-password-1');
            const before = await as(gw, ann, 'GET', '/api/me/credentials');
            assert.equal(before.status, 200, before.text);
            const fakeRow = before.json.data.find((p) => p.provider === 'fake');
            assert.ok(fakeRow, before.text);
            assert.equal(fakeRow.personal_key, null);
            assert.equal(fakeRow.system_key, true);
            assert.equal(fakeRow.personal_keys_required, false);
            const put = await as(gw, ann, 'PUT', '/api/me/credentials/fake', { api_key: PERSONAL });
            assert.equal(put.status, 200, put.text);
            assert.ok(!put.text.includes(PERSONAL));
            assert.match(put.json.masked, /abcd$/);
            const after = await as(gw, ann, 'GET', '/api/me/credentials');
            const row = after.json.data.find((p) => p.provider === 'fake');
            assert.equal(row.personal_key.masked, put.json.masked);
            assert.ok(!after.text.includes(PERSONAL));
            // ben does not see ann's
            const ben = await login(gw, 'ben', 'ben-password-1');
            const bl = await as(gw, ben, 'GET', '/api/me/credentials');
            assert.equal(bl.json.data.find((p) => p.provider === 'fake').personal_key, null);
            const stored = h.sql(gw, "SELECT key_ciphertext, key_id FROM provider_credentials WHERE user_id = 'ann'");
            assert.equal(stored.length, 1);
            assert.ok(!stored[0].key_ciphertext.includes(PERSONAL));
            assertApiError(await as(gw, ann, 'PUT', '/api/me/credentials/nope', { api_key: 'x' }), 404);
            assertApiError(await as(gw, ann, 'PUT', '/api/me/credentials/fake', { api_key: '' }), 400, 'bad_request', 'api_key');
            await h.sleep(300);
            assert.ok(!dbBytes(gw).includes(PERSONAL), 'the personal key is in the database file');
            assert.ok(!gw.err.includes(PERSONAL) && !gw.out.includes(PERSONAL), 'the personal key is in the logs');
            const del = await as(gw, ann, 'DELETE', '/api/me/credentials/fake');
            assert.equal(del.status, 204, del.text);
            assertApiError(await as(gw, ann, 'DELETE', '/api/me/credentials/fake'), 404);
            const rows = await auditRows(gw, "action IN ('credential.put','credential.delete') AND actor = 'ann'", 2);
            assert.ok(!JSON.stringify(rows).includes(PERSONAL));
        });

        it('the admin token has no personal keys: 400 saying so', async () => {
            const r = await h.request(gw, { method: 'GET', path: '/api/me/credentials' });
            assertApiError(r, 400, 'bad_request');
            assert.match(r.json.error.message, /belong to users/);
        });
    });

    // ---- audit -------------------------------------------------------------

    describe('audit log', () => {
        it('records logins, failed logins and user changes, never a password', async () => {
            const ok = await auditRows(gw, "action = 'auth.login' AND outcome = 'ok' AND actor = 'root'");
            assert.equal(ok[0].actor_role, 'admin');
            const failed = await auditRows(gw, "action = 'auth.login' AND outcome = 'failed' AND target_id = 'victim'", 5);
            assert.equal(failed.length >= 5, true);
            const limited = await auditRows(gw, "action = 'auth.login' AND outcome = 'denied' AND target_id = 'victim'");
            assert.ok(limited.length >= 1);
            const upd = await auditRows(gw, "action = 'user.update' AND target_id = 'carl'");
            assert.equal(JSON.parse(upd[0].before_json).status, 'active');
            assert.equal(JSON.parse(upd[0].after_json).status, 'disabled');
            const pw = await auditRows(gw, "action = 'user.update' AND target_id = 'dora'");
            assert.equal(JSON.parse(pw[0].after_json).password_changed, true);
            await auditRows(gw, "action = 'user.delete' AND target_id = 'dora'");
            const all = JSON.stringify(h.sql(gw, 'SELECT * FROM audit_log'));
            for (const secret of [ROOT_PW, 'dora-password-2', 'victim-password-1', 'argon2']) {
                assert.ok(!all.includes(secret), `audit log holds ${secret}`);
            }
        });

        it('GET /api/audit filters by actor, action, target and time, and pages', async () => {
            const r = await as(gw, root, 'GET', '/api/audit?action=auth.login&actor=root&limit=1');
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.data.length, 1);
            assert.ok(r.json.total >= 1);
            assert.equal(r.json.data[0].action, 'auth.login');
            assert.equal(r.json.data[0].actor, 'root');
            const t = await as(gw, root, 'GET', '/api/audit?target_type=user&target_id=carl');
            assert.ok(t.json.data.length >= 1 && t.json.data.every((x) => x.target_id === 'carl'));
            const future = await as(gw, root, 'GET', '/api/audit?from=2099-01-01');
            assert.equal(future.json.total, 0);
            const past = await as(gw, root, 'GET', `/api/audit?to=${Date.now() - 3600e3}`);
            assert.equal(past.json.total, 0);
            assertApiError(await as(gw, root, 'GET', '/api/audit?from=yesterday'), 400, 'bad_request', 'from');
            assertApiError(await as(gw, root, 'GET', '/api/audit?limit=0'), 400, 'bad_request', 'limit');
        });
    });

    // ---- CLI -----------------------------------------------------------------

    describe('command line', () => {
        it('users add takes the password from SWITCHBOARD_PASSWORD, never argv', async () => {
            const r = cli(gw, ['users', 'add', '--username', 'cliuser', '--role', 'developer'], { SWITCHBOARD_PASSWORD: 'cli-password-1' });
            assert.equal(r.status, 0, r.stderr);
            const s = await login(gw, 'cliuser', 'cli-password-1');
            assert.equal(s.res.status, 200, s.res.text);
            assert.equal(s.res.json.role, 'developer');
            const none = cli(gw, ['users', 'add', '--username', 'cliuser2', '--role', 'user']);
            assert.notEqual(none.status, 0);
            assert.match(none.stderr, /SWITCHBOARD_PASSWORD/);
            const dup = cli(gw, ['users', 'add', '--username', 'cliuser', '--role', 'user'], { SWITCHBOARD_PASSWORD: 'cli-password-1' });
            assert.notEqual(dup.status, 0);
            const list = cli(gw, ['users', 'list']);
            assert.equal(list.status, 0, list.stderr);
            assert.match(list.stdout, /cliuser\s+developer\s+active/);
            assert.ok(!list.stdout.includes('argon2'));
        });

        it('keys create prints the key once; the owner sees it over the API; keys revoke', async () => {
            const r = cli(gw, ['keys', 'create', '--name', 'from-cli', '--user', 'cliuser', '--models', 'gpt-test,embed-test', '--expires', '2099-06-01']);
            assert.equal(r.status, 0, r.stderr);
            const key = (r.stdout.match(/sk-sb-[A-Za-z0-9_-]{43}/) || [])[0];
            assert.ok(key, r.stdout);
            const id = r.stdout.match(/key id (\d+)/)[1];
            const s = await login(gw, 'cliuser', 'cli-password-1');
            const get = await as(gw, s, 'GET', `/api/keys/${id}`);
            assert.equal(get.status, 200, get.text);
            assert.deepEqual(get.json.models, ['gpt-test', 'embed-test']);
            assert.equal(get.json.expires_at, '2099-06-01T00:00:00.000Z');
            const list = cli(gw, ['keys', 'list']);
            assert.ok(!list.stdout.includes(key));
            assert.match(list.stdout, new RegExp(`${key.slice(0, 10)}`));
            const bad = cli(gw, ['keys', 'create', '--name', 'x', '--models', 'no-such-model']);
            assert.notEqual(bad.status, 0);
            assert.match(bad.stderr, /no-such-model/);
            const rev = cli(gw, ['keys', 'revoke', id]);
            assert.equal(rev.status, 0, rev.stderr);
            assert.equal((await as(gw, s, 'GET', `/api/keys/${id}`)).json.revoked, true);
        });

        it('--help on each subcommand', () => {
            for (const args of [['users', '--help'], ['keys', 'create', '--help'], ['rotate-key', '--help']]) {
                const r = spawnSync(h.BIN, args, { encoding: 'utf8' });
                assert.equal(r.status, 0, r.stderr);
                assert.match(r.stdout, /switchboard users add/);
                assert.match(r.stdout, /switchboard rotate-key/);
            }
        });
    });

    // ---- last: the per-client limit blocks this address for the window ------

    it('30 failed logins from one client block that client, whatever the username', async () => {
        let blocked = null;
        for (let i = 0; i < 40 && !blocked; i++) {
            const r = await login(gw, `ghost${i}`, 'no-such-password');
            if (r.res.status === 429) blocked = r.res;
            else assert.equal(r.res.status, 401, r.res.text);
        }
        assert.ok(blocked, 'never blocked');
        assert.ok(Number(blocked.headers['retry-after']) > 0);
        const ann = await login(gw, 'ann', 'ann-password-1');
        assertApiError(ann.res, 429, 'rate_limited');
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
        for (const secret of [ROOT_PW, 'ann-password-1', 'cli-password-1']) {
            assert.ok(!gw.err.includes(secret) && !gw.out.includes(secret), `a password in the logs: ${secret}`);
        }
    });
});

// ---- master key rotation (key file mode) ------------------------------------

describe('rotate-key', () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        // An empty SWITCHBOARD_MASTER_KEY selects the key file (./switchboard.key in gw.dir).
        gw = await h.startGateway(fake, { env: { SWITCHBOARD_MASTER_KEY: '' } });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const keyFile = () => path.join(gw.dir, 'switchboard.key');

    it('re-encrypts stored credentials; they still work; the database names the new key', async () => {
        const p = await h.request(gw, { path: '/api/providers', body: { id: 'apiprov', type: 'openai', base_url: `http://127.0.0.1:${fake.port}/v1`, api_key: h.FAKE_KEY } });
        assert.equal(p.status, 201, p.text);
        const m = await h.request(gw, { path: '/api/models', body: { id: 'api-model', provider: 'apiprov', upstream_model: 'gpt-4o-mini' } });
        assert.equal(m.status, 201, m.text);
        const chat = () => h.chat(gw, { model: 'api-model', messages: [{ role: 'user', content: fake.marker('rot') }] });
        assert.equal((await chat()).status, 200);
        const before = h.sql(gw, "SELECT key_id, key_ciphertext FROM provider_credentials WHERE provider_id IN (SELECT id FROM providers WHERE identifier = 'apiprov')");
        assert.equal(before.length, 1, JSON.stringify(before));
        const oldFile = fs.readFileSync(keyFile(), 'utf8');
        const r = await h.request(gw, { path: '/api/admin/rotate-key' });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.rotated >= 1, r.text);
        assert.match(r.json.key_id, /^[0-9a-f]{16}$/);
        assert.notEqual(r.json.key_id, before[0].key_id);
        const after = h.sql(gw, 'SELECT key_id, key_ciphertext FROM provider_credentials');
        assert.ok(after.every((c) => c.key_id === r.json.key_id), JSON.stringify(after));
        assert.notEqual(after[0].key_ciphertext, before[0].key_ciphertext);
        assert.notEqual(fs.readFileSync(keyFile(), 'utf8'), oldFile, 'the key file did not change');
        assert.ok(!fs.existsSync(keyFile() + '.new'), 'a .new key file is left');
        assert.equal((await chat()).status, 200, 'the credential stopped working');
        assert.ok(!r.text.includes(oldFile.trim()));
        await auditRows(gw, "action = 'admin.rotate_key' AND outcome = 'ok'");
    });

    it('switchboard rotate-key does the same offline, and again (every row decrypts)', async () => {
        await h.assertCleanStop(gw);
        for (let i = 0; i < 2; i++) {
            const r = cli(gw, ['rotate-key'], { SWITCHBOARD_MASTER_KEY: '' });
            assert.equal(r.status, 0, r.stderr);
            const kid = (r.stdout.match(/key id is now ([0-9a-f]{16})/) || [])[1];
            assert.ok(kid, r.stdout);
            const rows = h.sql(gw, 'SELECT key_id FROM provider_credentials');
            assert.ok(rows.length >= 1 && rows.every((c) => c.key_id === kid), JSON.stringify(rows));
            assert.ok(!r.stdout.includes(fs.readFileSync(keyFile(), 'utf8').trim()), 'the key was printed');
        }
    });
});
