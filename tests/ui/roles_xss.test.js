// SPDX-License-Identifier: MIT
//
// roles_xss.test.js - what a console user may see, and that what users type
// stays text. A `user` gets no link to, and no page at, the admin and staff
// paths, and sees none of another user's keys, models or usage; a developer
// gets Providers and Routes but not Users or Audit. HTML in a provider name, a
// key name and a streamed answer renders as text and runs nothing.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const c = require('./lib/console');

const { h } = c;

/** Logs in over HTTP; returns headers for session requests (cookie + CSRF). */
async function sessionOf(gw, u) {
    const r = await h.request(gw, { path: '/api/auth/login', auth: false, body: { username: u.username, password: u.password } });
    assert.equal(r.status, 200, r.text);
    const cookie = /sb_session=[^;]+/.exec([].concat(r.headers['set-cookie']).join(';'))[0];
    return { cookie, 'x-csrf-token': r.json.csrf_token };
}

describe('console: roles and user text', () => {
    let env;
    let admin;
    let ursula;
    let bob;
    let dev;

    before(async () => {
        env = await c.startAll();
        admin = await c.addUser(env.gw, 'root', 'admin');
        ursula = await c.addUser(env.gw, 'ursula', 'user');
        bob = await c.addUser(env.gw, 'bob', 'user');
        dev = await c.addUser(env.gw, 'devon', 'developer');
        // Bob's key, personal model and traffic: none of it may reach Ursula.
        const k = await h.request(env.gw, { path: '/api/keys', body: { name: 'bob-secret-key', user: 'bob' } });
        assert.equal(k.status, 201, k.text);
        const bs = await sessionOf(env.gw, bob);
        const m = await h.request(env.gw, { path: '/api/models', auth: false, headers: bs, body: { id: 'bob-private', provider: 'fake', upstream_model: 'gpt-4o-mini' } });
        assert.equal(m.status, 201, m.text);
        const r = await h.chat(env.gw, { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }, { headers: { authorization: `Bearer ${k.json.key}` } });
        assert.equal(r.status, 200, r.text);
        await h.eventually(async () => {
            const u = await h.request(env.gw, { method: 'GET', path: '/api/usage?user=bob' });
            return u.json.data[0].requests === 1;
        }, 10000);
    });
    after(async () => { await c.stopAll(env); });

    it('a user sees only the pages of their role; admin and staff paths are not there', async () => {
        const page = await c.newPage(env);
        await c.login(page, env.gw, ursula);
        const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
        assert.deepEqual(links, ['Dashboard', 'Models', 'Keys', 'Usage', 'Playground']);
        for (const p of ['users', 'audit', 'providers', 'routes']) {
            await page.goto(`${env.gw.url}/ui/${p}`);
            await page.getByRole('heading', { name: 'Page not found' }).waitFor();
            assert.equal(await page.locator('table').count(), 0, `${p}: no data rendered`);
        }
        await c.shot(page, 'user-not-found');
        // The API refuses too, with the session's own credentials.
        const status = await page.evaluate(async () => Promise.all(['/api/users', '/api/audit', '/api/providers']
            .map(async (u) => (await fetch(u)).status)));
        assert.deepEqual(status, [403, 403, 403]);
        c.assertClean(page);
    });

    it("a user never sees another user's keys, models or usage", async () => {
        const page = await c.newPage(env);
        await c.login(page, env.gw, ursula);
        await c.nav(page, 'Keys');
        await page.getByLabel('Name', { exact: true }).fill('ursula-key');
        await page.getByRole('button', { name: 'Create key' }).click();
        const mine = await page.getByLabel('The new key').inputValue();
        await page.locator('td.kname', { hasText: 'ursula-key' }).waitFor();
        // One request of her own, so her reports are not empty.
        const r = await h.chat(env.gw, { model: 'gpt-test', messages: [{ role: 'user', content: 'mine' }] }, { headers: { authorization: `Bearer ${mine}` } });
        assert.equal(r.status, 200, r.text);
        await h.eventually(async () => {
            const u = await h.request(env.gw, { method: 'GET', path: '/api/usage?user=ursula' });
            return u.json.data[0].requests === 1;
        }, 10000);
        const keys = await page.locator('table.keys').textContent();
        assert.ok(!keys.includes('bob-secret-key'), keys);
        assert.equal(await page.locator('table.keys th', { hasText: 'Owner' }).count(), 0);
        await c.shot(page, 'user-keys');

        await c.nav(page, 'Models');
        await page.locator('tr[data-model="gpt-test"]').waitFor();
        assert.equal(await page.locator('tr[data-model="bob-private"]').count(), 0);

        await c.nav(page, 'Usage');
        await page.getByLabel('Group by').selectOption('user');
        await page.getByRole('button', { name: 'Show' }).click();
        await page.locator('table.group-table tbody td', { hasText: /^ursula$/ }).waitFor();
        const usage = await page.locator('table.group-table tbody').textContent();
        assert.ok(!usage.includes('bob'), usage);
        assert.equal(await page.locator('table.group-table tbody tr').count(), 1, usage);
        assert.equal(await page.getByLabel('User', { exact: true }).count(), 0, 'no user filter for a user');

        await c.nav(page, 'Dashboard');
        await page.waitForFunction(() => { const e = document.querySelector('[data-stat="requests"]'); return e && e.textContent !== '—'; });
        assert.equal(await page.locator('[data-stat="requests"]').textContent(), '1', "only her own request is counted, not bob's");
        assert.ok(!(await page.locator('main').textContent()).includes('bob'));
        await c.shot(page, 'user-dashboard');
        c.assertClean(page);
    });

    it('a developer gets Providers and Routes, not Users or Audit', async () => {
        const page = await c.newPage(env);
        await c.login(page, env.gw, dev);
        const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
        assert.deepEqual(links, ['Dashboard', 'Providers', 'Models', 'Routes', 'Keys', 'Usage', 'Playground']);
        await c.nav(page, 'Providers');
        await page.locator('tr[data-provider="fake"]').waitFor();
        assert.equal(await page.getByRole('button', { name: 'Add from template' }).count(), 0, 'admin-only action absent');
        await page.goto(`${env.gw.url}/ui/audit`);
        await page.getByRole('heading', { name: 'Page not found' }).waitFor();
        c.assertClean(page);
    });

    it('HTML in a provider name, a key name and a streamed answer renders as text', async () => {
        const evil = '<img src=x onerror="window.__xss=1">';
        const evil2 = '<script>window.__xss=2</script>';
        const p = await h.request(env.gw, { path: '/api/providers', body: { id: 'xss-p', type: 'openai', name: evil, base_url: `http://127.0.0.1:${env.fake.port}/v1`, api_key: h.FAKE_KEY } });
        assert.equal(p.status, 201, p.text);
        const k = await h.request(env.gw, { path: '/api/keys', body: { name: evil2 } });
        assert.equal(k.status, 201, k.text);

        const page = await c.newPage(env);
        await c.login(page, env.gw, admin);
        await c.nav(page, 'Providers');
        const name = page.locator('tr[data-provider="xss-p"] .pname');
        await name.waitFor();
        assert.equal(await name.textContent(), evil);
        assert.equal(await page.locator('tr[data-provider="xss-p"] img').count(), 0);
        await c.nav(page, 'Keys');
        const kname = page.locator('td.kname', { hasText: 'window.__xss=2' });
        await kname.waitFor();
        assert.equal(await kname.textContent(), evil2);
        assert.equal(await page.locator('table.keys script').count(), 0);

        const marker = env.fake.script(env.fake.marker('xss'), { chunks: ['<img src=x onerror="window.__xss=3">', ' <b>bold</b>'], chunkDelayMs: 50 });
        await c.nav(page, 'Playground');
        await page.getByLabel('Model or route').selectOption('gpt-test');
        await page.getByLabel('Message').fill(`html please ${marker}`);
        await page.getByRole('button', { name: 'Send' }).click();
        await page.locator('[data-panel="a"][data-done="yes"]').waitFor();
        assert.equal(await page.locator('[data-panel="a"] .answer-text').textContent(), '<img src=x onerror="window.__xss=3"> <b>bold</b>');
        assert.equal(await page.locator('[data-panel="a"] .answer-text *').count(), 0);
        await page.waitForTimeout(200);
        assert.equal(await page.evaluate(() => window.__xss), undefined, 'nothing ran');
        await c.shot(page, 'xss-inert');
        c.assertClean(page);
    });
});
