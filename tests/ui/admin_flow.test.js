// SPDX-License-Identifier: MIT
//
// admin_flow.test.js - the "done means", in Chromium against the real
// binary: a new admin makes their account with the admin token, logs in, adds
// a provider from a template (key, test, save), adds two models, orders them
// by drag and drop (kept after a reload) and by keyboard, disables one, hands
// out a scoped key that the openai SDK then uses, watches a streamed answer
// arrive in several steps in the playground (and a side-by-side compare), and
// sees the traffic on the dashboard; then every other page once, a phone
// viewport, and logout. Screenshots of each page go to build/ui-screenshots/.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('../integration/node_modules/openai');
const c = require('./lib/console');

const { h } = c;

describe('console: an admin from first start to a streamed answer', () => {
    let env;
    let page;
    const admin = { username: 'alice', password: 'alice-password-1' };
    let createdKey = '';

    before(async () => {
        env = await c.startAll();
        page = await c.newPage(env);
    });
    after(async () => { await c.stopAll(env); });

    it('serves /ui/ with its content type, ETag, gzip and a strict CSP', async () => {
        const r = await h.request(env.gw, { method: 'GET', path: '/ui/', auth: false, headers: { 'accept-encoding': 'gzip' } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.match(r.headers.etag, /^"[0-9a-f]{16}-gz"$/);
        assert.equal(r.headers['cache-control'], 'no-cache');
        const csp = r.headers['content-security-policy'];
        assert.match(csp, /default-src 'self'/);
        assert.match(csp, /script-src 'self';/);
        assert.doesNotMatch(csp, /unsafe|https?:/);
        const again = await h.request(env.gw, { method: 'GET', path: '/ui/models', auth: false, headers: { 'accept-encoding': 'gzip', 'if-none-match': r.headers.etag } });
        assert.equal(again.status, 304);
        assert.equal(again.text, '');
        assert.equal(again.headers['content-length'], undefined, 'a 304 has no Content-Length');
        assert.equal(again.headers.etag, r.headers.etag);
        const plain = await h.request(env.gw, { method: 'GET', path: '/ui/', auth: false });
        assert.equal(plain.headers['content-encoding'], undefined);
        const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(plain.text);
        assert.ok(asset, plain.text);
        const js = await h.request(env.gw, { method: 'GET', path: asset[1], auth: false });
        assert.equal(js.status, 200);
        assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
        assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
        assert.doesNotMatch(plain.text, /<script>|<script type="module">[^<]/, 'no inline script');
        assert.equal((await h.request(env.gw, { method: 'GET', path: '/ui/assets/nope.js', auth: false })).status, 404);
        const redirect = await h.request(env.gw, { method: 'GET', path: '/ui', auth: false });
        assert.equal(redirect.status, 301);
        assert.equal(redirect.headers.location, '/ui/');
    });

    it('first start: the admin token makes the first admin, who is then logged in', async () => {
        await page.goto(`${env.gw.url}/ui/`);
        await c.shot(page, 'login');
        await page.getByText('First start? Create the first admin account').click();
        await page.getByLabel('Admin token').fill(env.gw.token);
        await page.getByLabel('New admin username').fill(admin.username);
        await page.getByLabel('New admin password').fill(admin.password);
        await page.getByRole('button', { name: 'Create and log in' }).click();
        await page.getByRole('navigation', { name: 'Main' }).waitFor();
        const links = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
        assert.deepEqual(links, ['Dashboard', 'Providers', 'Models', 'Routes', 'Keys', 'Users', 'Usage', 'Audit', 'Playground']);
        assert.equal(await page.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');
    });

    it('logout ends the session; login with the password starts a new one', async () => {
        await page.getByRole('button', { name: 'Log out' }).click();
        await page.getByRole('button', { name: 'Log in' }).waitFor();
        const me = await page.evaluate(async () => (await fetch('/api/me')).status);
        assert.equal(me, 401, 'no session after logout');
        await page.getByLabel('Username', { exact: true }).fill(admin.username);
        await page.getByLabel('Password', { exact: true }).fill('wrong-password-9');
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByText('Wrong username or password.').waitFor();
        await c.login(page, env.gw, admin);
        assert.equal(await page.evaluate(async () => (await fetch('/api/me')).status), 200);
    });

    it('adds a provider from a template: key, test connection, save; the key shows only masked', async () => {
        await c.nav(page, 'Providers');
        await page.getByRole('button', { name: 'Add from template' }).click();
        await page.getByLabel('Search templates').fill('openai');
        await c.shot(page, 'providers-wizard-gallery');
        await page.locator('button[data-template="openai"]').click();
        await page.getByLabel('Provider id').fill('acme');
        await page.getByLabel('Base URL').fill(`http://127.0.0.1:${env.fake.port}/v1`);
        await page.getByLabel('API key').fill(h.FAKE_KEY);
        await page.locator('.wizard').getByRole('button', { name: 'Test connection' }).click();
        const result = page.locator('.wizard .test-result');
        await result.waitFor();
        assert.match(await result.textContent(), /Connection OK/);
        assert.match(await result.textContent(), /latency: .*total \d+ ms/);
        await c.shot(page, 'providers-wizard-tested');
        await page.getByRole('button', { name: 'Save provider' }).click();
        const saved = page.locator('.wizard .success');
        await saved.waitFor();
        assert.equal((await saved.textContent()).replace(/\s+/g, ' ').trim(), 'Provider acme saved with its models: gpt-4o-mini, gpt-4o.');
        const row = page.locator('tr[data-provider="acme"]');
        await row.waitFor();
        // Test connection from the list: diagnosis and latency, then stored as the last test.
        await row.getByRole('button', { name: 'Test connection' }).click();
        const res = page.locator('[data-result="acme"] .test-result');
        await res.waitFor();
        assert.match(await res.textContent(), /reachable/);
        assert.match(await row.locator('.last-test').textContent(), /OK/);
        await row.getByRole('button', { name: 'Edit' }).click();
        const masked = await page.locator('code.masked').textContent();
        assert.ok(!masked.includes(h.FAKE_KEY) && masked.endsWith(h.FAKE_KEY.slice(-4)), masked);
        assert.ok(!(await page.content()).includes(h.FAKE_KEY), 'the key never reaches the page');
        await c.shot(page, 'providers');
        c.assertClean(page);
    });

    it('an API error shows next to the field it names', async () => {
        await c.nav(page, 'Models');
        await page.getByRole('button', { name: 'Add model' }).click();
        const form = page.locator('form', { has: page.getByRole('heading', { name: 'Add a model' }) });
        await form.getByLabel('Model id').fill('Bad Id!');
        await form.getByLabel('Provider').selectOption('acme');
        await form.getByLabel('Upstream model').fill('m-up');
        await form.getByRole('button', { name: 'Add' }).click();
        const err = form.locator('[data-field="id"] .field-error');
        await err.waitFor();
        assert.match(await err.textContent(), /id/);
        assert.equal(await form.locator('.field-error').count(), 1, 'only the named field shows the error');
        assert.equal(await form.getByLabel('Model id').getAttribute('aria-describedby'), 'add-id-err');
        await c.shot(page, 'models-field-error');
    });

    async function addModel(id, upstream) {
        const form = page.locator('form', { has: page.getByRole('heading', { name: 'Add a model' }) });
        if (!(await form.isVisible())) await page.getByRole('button', { name: 'Add model' }).click();
        await form.getByLabel('Model id').fill(id);
        await form.getByLabel('Provider').selectOption('acme');
        await form.getByLabel('Upstream model').fill(upstream);
        await form.getByRole('button', { name: 'Add' }).click();
        await page.locator(`tr[data-model="${id}"]`).waitFor();
    }
    const order = () => page.locator('table.models tbody tr[data-model]').evaluateAll((rows) => rows.map((r) => r.dataset.model));

    it('adds two models, reorders them by drag and drop, and the order survives a reload', async () => {
        await addModel('m-one', 'gpt-4o-mini');
        await addModel('m-two', 'gpt-4o-mini');
        await page.getByLabel('Provider', { exact: true }).first().selectOption('acme');
        await page.waitForFunction(() => document.querySelectorAll('table.models tbody tr[data-model]').length === 4);
        const before = await order();
        const iOne = before.indexOf('m-one');
        const iTwo = before.indexOf('m-two');
        assert.ok(iOne >= 0 && iTwo > iOne, `added in order: ${before}`);
        await page.locator('tr[data-model="m-two"]').dragTo(page.locator(`tr[data-model="${before[0]}"]`));
        await page.getByText(/Order saved: m-two moved to position 1/).waitFor();
        await page.reload();
        await page.getByLabel('Provider', { exact: true }).first().selectOption('acme');
        await page.waitForFunction(() => document.querySelectorAll('table.models tbody tr[data-model]').length === 4);
        const after = await order();
        assert.equal(after[0], 'm-two', `after reload: ${after}`);
        const api = await h.request(env.gw, { method: 'GET', path: '/api/models?provider=acme' });
        const prio = Object.fromEntries(api.json.data.map((m) => [m.id, m.fallback_priority]));
        assert.ok(prio['m-two'] < prio['m-one'], JSON.stringify(prio));
    });

    it('reorders by keyboard (Alt+Down on the handle) and disables a model', async () => {
        const handle = page.getByRole('button', { name: /^Reorder m-two/ });
        await handle.focus();
        await page.keyboard.press('Alt+ArrowDown');
        await page.getByText(/Order saved: m-two moved to position 2/).waitFor();
        assert.equal((await order())[1], 'm-two');
        assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Reorder m-two (Alt+Up / Alt+Down)', 'focus follows the row');
        await page.getByLabel('Enabled: m-one').uncheck();
        await page.getByText('m-one disabled.').waitFor();
        await page.reload();
        await page.locator('tr[data-model="m-one"]').waitFor();
        assert.equal(await page.getByLabel('Enabled: m-one').isChecked(), false);
        const m = await h.request(env.gw, { method: 'GET', path: '/api/models/m-one' });
        assert.equal(m.json.enabled, false);
        await page.locator('tr[data-model="m-two"]').getByRole('button', { name: 'Test' }).click();
        await page.locator('[data-result="m-two"] .test-result').waitFor();
        assert.match(await page.locator('[data-result="m-two"]').textContent(), /Connection OK/);
        await c.shot(page, 'models');
        c.assertClean(page);
    });

    it('creates a key scoped to one model, shown once with a copy button and snippets; the openai SDK uses it', async () => {
        await c.nav(page, 'Keys');
        await page.getByLabel('Name', { exact: true }).fill('sdk-app');
        await page.getByLabel('m-two', { exact: true }).check();
        await page.getByLabel('Expires (optional)').fill('2031-01-31');
        await page.getByRole('button', { name: 'Create key' }).click();
        const secret = page.getByLabel('The new key');
        await secret.waitFor();
        createdKey = await secret.inputValue();
        assert.match(createdKey, /^sk-sb-/);
        assert.match(await page.locator('.snippet').first().textContent(), new RegExp(`Bearer ${createdKey}`));
        assert.match(await page.locator('.snippet').nth(1).textContent(), /OpenAI\(base_url=/);
        await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.gw.url });
        await page.getByRole('button', { name: 'Copy' }).click();
        await page.getByText('Copied').waitFor();
        assert.equal(await page.evaluate(() => navigator.clipboard.readText()), createdKey);
        await c.shot(page, 'keys-created');
        await page.getByRole('button', { name: 'I have stored it' }).click();
        await page.reload();
        await page.locator('td.kname', { hasText: 'sdk-app' }).waitFor();
        assert.ok(!(await page.content()).includes(createdKey), 'the key is not shown again');

        const client = new OpenAI({ apiKey: createdKey, baseURL: `${env.gw.url}/v1`, maxRetries: 0 });
        const r = await client.chat.completions.create({ model: 'm-two', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.choices[0].message.content, 'Hello from the fake upstream.');
        await assert.rejects(client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }),
            (e) => e.status === 403, 'the key is scoped to m-two');
        // last_used_at is raised by the usage writer after its batch (within
        // FLUSH_MS, 100 ms, later on a loaded machine), not by the request:
        // once the API has it, the page must show it.
        const used = await h.eventually(async () => {
            const list = await h.request(env.gw, { method: 'GET', path: '/api/keys' });
            const k = (list.json.data || []).find((x) => x.name === 'sdk-app');
            return k && k.last_used_at;
        }, 15000);
        assert.ok(used, 'the key is recorded as used');
        await page.reload();
        await page.locator('td.kname', { hasText: 'sdk-app' }).waitFor();
        const cells = await page.locator('tr', { hasText: 'sdk-app' }).locator('td').allTextContents();
        assert.equal(cells[3], 'm-two', 'the scope');
        assert.equal(cells[4], 'active');
        assert.equal(cells[5], '2031-01-31 00:00:00', 'the expiry');
        assert.match(cells[6], /^20\d\d-\d\d-\d\d \d\d:\d\d:\d\d$/, 'last used is shown');
        await c.shot(page, 'keys');
        c.assertClean(page);
    });

    it('streams an answer in the playground: text arrives in more than one step, with TTFT, tokens and cost', async () => {
        const marker = env.fake.script(env.fake.marker('pg'), { chunks: ['Alpha ', 'beta ', 'gamma ', 'delta.'], chunkDelayMs: 250 });
        await c.nav(page, 'Playground');
        await page.getByLabel('Model or route').selectOption('m-two');
        await page.getByLabel('System prompt').fill('Be brief.');
        await page.getByLabel('Message').fill(`Say four words ${marker}`);
        await page.getByLabel('Temperature').fill('0.2');
        await page.getByLabel('Max tokens').fill('50');
        // Record every text the answer shows until it is done.
        await page.evaluate(() => {
            window.__seen = [];
            const obs = new MutationObserver(() => {
                const t = document.querySelector('[data-panel="a"] .answer-text');
                if (t && t.textContent && window.__seen.at(-1) !== t.textContent) window.__seen.push(t.textContent);
            });
            obs.observe(document.body, { subtree: true, childList: true, characterData: true });
        });
        await page.getByRole('button', { name: 'Send' }).click();
        await page.locator('[data-panel="a"][data-done="yes"]').waitFor({ timeout: 15000 });
        const seen = await page.evaluate(() => window.__seen);
        assert.equal(seen.at(-1), 'Alpha beta gamma delta.');
        assert.ok(seen.length >= 3, `the answer grew in steps: ${JSON.stringify(seen)}`);
        const rec = await env.fake.waitForRequest(marker);
        assert.equal(rec.json.stream, true);
        assert.equal(rec.json.temperature, 0.2);
        assert.equal(rec.json.max_tokens, 50);
        assert.equal(rec.json.messages[0].content, 'Be brief.');
        assert.match(await page.locator('[data-panel="a"] .m-ttft').textContent(), /^\d+ ms$/);
        assert.match(await page.locator('[data-panel="a"] .m-tokens').textContent(), /^\d+ \/ \d+$/);
        assert.match(await page.locator('[data-panel="a"] .m-cost').textContent(), /^\$/);
        await c.shot(page, 'playground');
    });

    it('compares two models side by side on the same prompt', async () => {
        await page.getByLabel('Compare with a second model').check();
        await page.getByLabel('Second model or route').selectOption('gpt-test');
        await page.getByLabel('Message').fill('hello both');
        await page.getByRole('button', { name: 'Send' }).click();
        await page.locator('[data-panel="a"][data-done="yes"]').waitFor();
        await page.locator('[data-panel="b"][data-done="yes"]').waitFor();
        for (const p of ['a', 'b']) {
            assert.equal(await page.locator(`[data-panel="${p}"] .answer-text`).textContent(), 'Hello from the fake upstream.');
        }
        assert.match(await page.locator('[data-panel="b"] header').textContent(), /gpt-test/);
        await c.shot(page, 'playground-compare');
        c.assertClean(page);
    });

    it('shows tool calls from a streamed answer', async () => {
        const marker = env.fake.marker('tools');
        env.fake.script(marker, (ctx) => {
            ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
            const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
            ctx.res.write(chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
            ctx.res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Oslo"}' } }] }));
            ctx.res.write(chunk({}, 'tool_calls'));
            ctx.res.end('data: [DONE]\n\n');
        });
        await page.getByLabel('Compare with a second model').uncheck();
        await page.getByText('Tools (optional)').click();
        await page.getByLabel('Tool definitions (JSON array, OpenAI format)').fill(JSON.stringify([{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]));
        await page.getByLabel('Message').fill(`weather? ${marker}`);
        await page.getByRole('button', { name: 'Send' }).click();
        await page.locator('[data-panel="a"][data-done="yes"]').waitFor();
        assert.equal(await page.locator('.tool-call .tool-name').textContent(), 'get_weather');
        assert.equal(await page.locator('.tool-call pre').textContent(), '{"city":"Oslo"}');
        await c.shot(page, 'playground-tools');
    });

    it('the dashboard shows the traffic, with charts', async () => {
        await h.eventually(async () => {
            const u = await h.request(env.gw, { method: 'GET', path: '/api/usage' });
            assert.ok(u.json.data[0].requests >= 5, u.text);
            return true;
        }, 10000);
        await c.nav(page, 'Dashboard');
        await page.waitForFunction(() => Number((document.querySelector('[data-stat="requests"]') || {}).textContent) >= 5);
        assert.ok(await page.locator('.chart canvas').count() >= 4, 'uPlot drew the charts');
        assert.match(await page.locator('table.group-table').first().textContent(), /acme/);
        await c.shot(page, 'dashboard');
        // The provider filter and the time-range picker drive every number on the page.
        const acme = await page.locator('table.group-table').first().locator('tr', { hasText: 'acme' }).locator('td').nth(1).textContent();
        const all = await page.locator('[data-stat="requests"]').textContent();
        assert.notEqual(acme, all, 'acme is not all the traffic');
        await page.getByLabel('Provider').selectOption('acme');
        await page.waitForFunction((n) => document.querySelector('[data-stat="requests"]').textContent === n, acme);
        const asked = page.waitForRequest((r) => r.url().includes('/api/usage?') && r.url().includes('group_by=day'));
        await page.getByLabel('Time range').selectOption({ label: 'Last 7 days' });
        const url = new URL((await asked).url());
        const span = Number(url.searchParams.get('to')) - Number(url.searchParams.get('from'));
        assert.ok(Math.abs(span - 7 * 24 * 3600e3) < 5000, `a 7-day window: ${url}`);
        assert.equal(url.searchParams.get('provider'), 'acme');
        await page.waitForFunction((n) => document.querySelector('[data-stat="requests"]').textContent === n, acme);
        c.assertClean(page);
    });

    it('usage, routes, users and audit pages render; CSV export works', async () => {
        await c.nav(page, 'Usage');
        await page.locator('table.group-table tbody tr').first().waitFor();
        assert.match(await page.locator('table.group-table').textContent(), /m-two/);
        const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
        const csv = await page.evaluate(async (u) => { const r = await fetch(u); return [r.headers.get('content-type'), await r.text()]; }, href);
        assert.match(csv[0], /^text\/csv/);
        assert.match(csv[1], /^model,requests,/);
        await c.shot(page, 'usage');
        await c.nav(page, 'Routes');
        await c.shot(page, 'routes');
        await c.nav(page, 'Users');
        await page.locator('tr[data-user="alice"]').waitFor();
        await c.shot(page, 'users');
        await c.nav(page, 'Audit');
        await page.locator('table.audit code', { hasText: 'key.create' }).first().waitFor();
        await c.shot(page, 'audit');
        await page.getByRole('link', { name: 'My provider keys' }).click();
        await page.locator('tr[data-provider="acme"]').waitFor();
        await c.shot(page, 'my-provider-keys');
        c.assertClean(page);
    });

    it('works on a phone-sized viewport', async () => {
        const phone = await c.newPage(env, { width: 390, height: 844 });
        await c.login(phone, env.gw, admin);
        const ready = {
            Dashboard: '[data-stat="requests"]:not(:text-is("—"))',
            Models: 'tr[data-model="m-two"]',
            Keys: 'td.kname',
            Playground: 'select#f-model option[value="m-two"]',
        };
        for (const name of Object.keys(ready)) {
            await c.nav(phone, name);
            await phone.locator(ready[name]).first().waitFor({ state: 'attached' });
            const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
            assert.ok(overflow <= 1, `${name}: the page is ${overflow}px wider than the phone`);
            await c.shot(phone, `phone-${name.toLowerCase()}`);
        }
        c.assertClean(phone);
    });
});
