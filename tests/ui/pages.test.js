// SPDX-License-Identifier: MIT
//
// pages.test.js - the admin pages beyond the first-start flow: a route typed
// with a wrong target shows the API's error and suggestions under that field,
// then is saved; an experiment made in the console gets traffic and its
// results show side by side; champion and default per provider; users and
// roles; a personal provider key that is shown only masked.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const c = require('./lib/console');

const { h } = c;

describe('console: routes, experiments, models, users, personal keys', () => {
    let env;
    let page;
    let admin;

    before(async () => {
        env = await c.startAll({ models: [{ id: 'gpt-b', provider: 'fake', upstream_model: 'gpt-4o' }] });
        admin = await c.addUser(env.gw, 'root', 'admin');
        page = await c.newPage(env);
        await c.login(page, env.gw, admin);
    });
    after(async () => { await c.stopAll(env); });

    it('a route with an unknown target shows the error and suggestions under Targets; fixed, it is saved', async () => {
        await c.nav(page, 'Routes');
        await page.getByLabel('Route id').fill('main');
        await page.getByLabel('Strategy').selectOption('weighted');
        await page.getByLabel('Targets, in order (model ids, comma separated)').fill('gpt-tset, gpt-b');
        await page.getByLabel('Weights (comma separated)').fill('3, 1');
        await page.getByRole('button', { name: 'Add route' }).click();
        const err = page.locator('[data-field="targets"] .field-error');
        await err.waitFor();
        assert.match(await err.textContent(), /gpt-tset/);
        assert.match(await err.textContent(), /did you mean: .*gpt-test/);
        await c.shot(page, 'routes-field-error');
        await page.getByLabel('Targets, in order (model ids, comma separated)').fill('gpt-test, gpt-b');
        await page.getByRole('button', { name: 'Add route' }).click();
        const row = page.locator('tr[data-route="main"]');
        await row.waitFor();
        assert.match(await row.textContent(), /weighted/);
        assert.match(await row.textContent(), /gpt-test \(3\).*gpt-b \(1\)/);
        assert.equal(await page.locator('.field-error').count(), 0, 'the error went away');
    });

    it('an experiment made here gets traffic; its results show one column per variant', async () => {
        await page.getByLabel('Experiment id').fill('ab');
        await page.getByLabel('Name', { exact: true }).fill('A/B');
        await page.getByLabel('Variants: name=target:weight, comma separated').fill('control=gpt-test:1, treat=gpt-b:1');
        await page.getByRole('button', { name: 'Add experiment' }).click();
        await page.locator('tr[data-experiment="ab"]').waitFor();
        for (let i = 0; i < 6; i++) {
            const r = await h.chat(env.gw, { model: 'ab', messages: [{ role: 'user', content: `q${i}` }] }, { headers: { 'x-switchboard-conversation': `c${i}` } });
            assert.equal(r.status, 200, r.text);
        }
        await h.eventually(async () => {
            const u = await h.request(env.gw, { method: 'GET', path: '/api/usage?route=ab' });
            return u.json.data[0].requests === 6;
        }, 10000);
        await page.locator('tr[data-experiment="ab"]').getByRole('button', { name: 'Results' }).click();
        const table = page.locator('table.side-by-side');
        await table.waitFor();
        const heads = await table.locator('thead th').allTextContents();
        assert.deepEqual(heads, ['Metric', 'control', 'treat']);
        const requests = await table.locator('tr', { hasText: 'Requests' }).first().locator('td').allTextContents();
        assert.equal(requests.map(Number).reduce((a, b) => a + b, 0), 6, requests.join(','));
        const targets = await table.locator('tr', { hasText: 'Target' }).first().locator('td').allTextContents();
        assert.deepEqual(targets, ['gpt-test', 'gpt-b']);
        await c.shot(page, 'routes-experiment-results');
        c.assertClean(page);
    });

    it('filters models by capability, provider and enabled', async () => {
        await c.nav(page, 'Models');
        await page.locator('tr[data-model="gpt-test"]').waitFor();
        const ids = () => page.locator('table.models tbody tr[data-model]').evaluateAll((rows) => rows.map((r) => r.dataset.model).sort());
        const only = (id) => page.waitForFunction((m) => {
            const rows = document.querySelectorAll('table.models tbody tr[data-model]');
            return rows.length === 1 && rows[0].dataset.model === m;
        }, id);
        await page.getByLabel('Capability').selectOption('embeddings');
        await only('embed-test');
        await page.getByLabel('Capability').selectOption('');
        await page.getByLabel('Provider', { exact: true }).first().selectOption('dead');
        await only('dead-model');
        await page.waitForTimeout(300); // no late answer replaces it
        assert.deepEqual(await ids(), ['dead-model']);
        await page.getByLabel('Provider', { exact: true }).first().selectOption('');
        await page.getByLabel('Enabled', { exact: true }).first().selectOption('false');
        await page.getByText('No models match.').waitFor();
        await page.getByLabel('Enabled', { exact: true }).first().selectOption('');
        await page.locator('tr[data-model="gpt-test"]').waitFor();
    });

    it('replaces a provider key in the edit form; only the masked form is ever shown', async () => {
        const oldKey = 'sk-old-key-0123456789abcdOLD1';
        const newKey = 'sk-new-key-0123456789abcdNEW2';
        const p = await h.request(env.gw, { path: '/api/providers', body: { id: 'repl', type: 'openai', base_url: `http://127.0.0.1:${env.fake.port}/v1`, api_key: oldKey } });
        assert.equal(p.status, 201, p.text);
        await c.nav(page, 'Providers');
        await page.locator('tr[data-provider="repl"]').getByRole('button', { name: 'Edit', exact: true }).click();
        assert.match(await page.locator('code.masked').textContent(), /OLD1$/);
        await page.getByLabel('Replace API key').fill(newKey);
        await page.getByRole('button', { name: 'Replace key' }).click();
        await page.getByText(/^Key replaced/).waitFor();
        await page.locator('code.masked', { hasText: 'NEW2' }).waitFor();
        const html = await page.content();
        assert.ok(!html.includes(oldKey) && !html.includes(newKey), 'no key in the page');
        assert.equal(await page.getByLabel('Replace API key').inputValue(), '', 'the field is emptied');
        // The rest of the entry is edited with one whole PUT; the key stays.
        await page.getByLabel('Name', { exact: true }).fill('Replacement Inc');
        await page.getByLabel('Timeout (ms)').fill('4500');
        await page.getByRole('button', { name: 'Save', exact: true }).click();
        await page.locator('tr[data-provider="repl"] .pname', { hasText: 'Replacement Inc' }).waitFor();
        const g = await h.request(env.gw, { method: 'GET', path: '/api/providers/repl' });
        assert.equal(g.json.name, 'Replacement Inc');
        assert.equal(g.json.timeout_ms, 4500);
        assert.match(g.json.credential.masked, /NEW2$/, 'the key survived the edit');
        await c.shot(page, 'providers-edit');
        c.assertClean(page);
    });

    it('champion and default per provider', async () => {
        await c.nav(page, 'Models');
        const row = page.locator('tr[data-model="gpt-b"]');
        await row.getByRole('button', { name: 'Champion' }).click();
        await page.getByText('gpt-b is now the champion of fake.').waitFor();
        await row.getByRole('button', { name: 'Default' }).click();
        await page.getByText('gpt-b is now the default of fake.').waitFor();
        assert.match(await row.textContent(), /champion/);
        assert.match(await row.textContent(), /default/);
        const m = await h.request(env.gw, { method: 'GET', path: '/api/models/gpt-b' });
        assert.equal(m.json.is_champion, true);
        assert.equal(m.json.is_default, true);
    });

    it('edits pricing, context length and capabilities of a model', async () => {
        const created = await h.request(env.gw, { path: '/api/models', body: { id: 'edit-me', provider: 'fake', upstream_model: 'gpt-4o-mini' } });
        assert.equal(created.status, 201, created.text);
        await page.reload();
        await page.locator('tr[data-model="edit-me"]').getByRole('button', { name: 'Edit', exact: true }).click();
        await page.getByLabel('Context length (tokens)').fill('64000');
        await page.getByLabel('Input price ($ per million tokens)').fill('0.5');
        await page.getByLabel('Output price ($ per million tokens)').fill('1.5');
        await page.getByLabel('tools', { exact: true }).check();
        await page.getByRole('button', { name: 'Save' }).click();
        await page.getByText('edit-me saved.').waitFor();
        const m = await h.request(env.gw, { method: 'GET', path: '/api/models/edit-me' });
        assert.equal(m.json.context_length, 64000);
        assert.deepEqual(m.json.pricing, { input_per_mtok: 0.5, output_per_mtok: 1.5 });
        assert.equal(m.json.capabilities.tools, true);
        assert.match(await page.locator('tr[data-model="edit-me"]').textContent(), /64,000.*0\.5 \/ 1\.5.*tools/);
        c.assertClean(page);
    });

    it('users: add one, change the role, disable', async () => {
        await c.nav(page, 'Users');
        await page.getByLabel('Username').fill('carol');
        await page.getByLabel('Password').fill('carol-password-1');
        await page.getByLabel('Role', { exact: true }).selectOption('developer');
        await page.getByRole('button', { name: 'Add user' }).click();
        const row = page.locator('tr[data-user="carol"]');
        await row.waitFor();
        await page.getByLabel('Role of carol').selectOption('user');
        await row.getByRole('button', { name: 'Disable' }).click();
        await row.getByRole('button', { name: 'Enable' }).waitFor();
        const u = await h.request(env.gw, { method: 'GET', path: '/api/users/carol' });
        assert.equal(u.json.role, 'user');
        assert.equal(u.json.status, 'disabled');
        c.assertClean(page);
    });

    it('revokes a key; the audit log, filtered by action, shows it', async () => {
        const k = await h.request(env.gw, { path: '/api/keys', body: { name: 'to-revoke' } });
        assert.equal(k.status, 201, k.text);
        await c.nav(page, 'Keys');
        const row = page.locator(`tr[data-key="${k.json.id}"]`);
        await row.getByRole('button', { name: 'Revoke' }).click();
        await row.locator('td.state', { hasText: 'revoked' }).waitFor();
        assert.equal(await row.getByRole('button', { name: 'Revoke' }).count(), 0);
        const r = await h.chat(env.gw, { model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }, { headers: { authorization: `Bearer ${k.json.key}` } });
        assert.equal(r.status, 401, 'a revoked key is refused');
        await c.nav(page, 'Audit');
        await page.getByLabel('Action').fill('key.revoke');
        await page.getByRole('button', { name: 'Filter' }).click();
        await page.waitForFunction(() => [...document.querySelectorAll('table.audit tbody code')].length === 1);
        const actions = await page.locator('table.audit tbody code').allTextContents();
        assert.deepEqual(actions, ['key.revoke']);
        assert.match(await page.locator('table.audit tbody tr').first().textContent(), /root.*key\.revoke.*key/);
        c.assertClean(page);
    });

    it('a batch job shows its progress while it runs, then its results', async () => {
        const m = env.fake.script(env.fake.marker('batch'), { delayMs: 400 });
        await page.getByRole('link', { name: 'Batch jobs' }).click();
        await page.getByRole('heading', { level: 1, name: 'Batch jobs' }).waitFor();
        await page.getByLabel('Model or route for every line').selectOption('gpt-test');
        await page.getByLabel('Concurrency').fill('1');
        const line = (i) => JSON.stringify({ messages: [{ role: 'user', content: `line ${i} ${m}` }] });
        await page.getByLabel('Requests (JSONL: one request body per line)').fill([1, 2, 3, 4].map(line).join('\n'));
        await page.evaluate(() => {
            window.__progress = [];
            setInterval(() => {
                const c = document.querySelector('tr[data-batch] .count');
                if (c && window.__progress.at(-1) !== c.textContent) window.__progress.push(c.textContent);
            }, 50);
        });
        await page.getByRole('button', { name: 'Start batch' }).click();
        await page.locator('tr[data-batch][data-status="completed"]').waitFor({ timeout: 20000 });
        const seen = await page.evaluate(() => window.__progress);
        assert.equal(seen.at(-1), '4 / 4');
        assert.ok(seen.filter((x) => x !== '0 / 4' && x !== '4 / 4').length >= 1, `progress in between: ${JSON.stringify(seen)}`);
        const href = await page.locator('tr[data-batch]').getByRole('link', { name: 'Results' }).getAttribute('href');
        const lines = await page.evaluate(async (u) => (await (await fetch(u)).text()).trim().split('\n'), href);
        assert.equal(lines.length, 4);
        assert.equal(JSON.parse(lines[0]).response.status_code, 200, lines[0]);
        await c.shot(page, 'batches');
        c.assertClean(page);
    });

    it('my provider keys: a personal key is stored and shown only masked', async () => {
        const personal = 'sk-personal-0123456789abcdefWXYZ';
        await page.getByRole('link', { name: 'My provider keys' }).click();
        await page.getByLabel('New key for fake').fill(personal);
        await page.locator('tr[data-provider="fake"]').getByRole('button', { name: 'Save' }).click();
        await page.locator('tr[data-provider="fake"] code', { hasText: 'WXYZ' }).waitFor();
        assert.ok(!(await page.content()).includes(personal), 'the key is never shown again');
        await c.shot(page, 'my-provider-keys-set');
        await page.locator('tr[data-provider="fake"]').getByRole('button', { name: 'Remove' }).click();
        await page.locator('tr[data-provider="fake"] code', { hasText: 'none' }).waitFor();
        c.assertClean(page);
    });
});
