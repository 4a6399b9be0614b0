// SPDX-License-Identifier: MIT
//
// key_pool.test.js - a provider's key pool on the Providers page (DESIGN
// §1.15, §4.8): a key added (shown only masked), its weight changed, made
// dead by the real data plane (the upstream answers 401 to that key), shown
// dead with its reason after a reload, revived, replaced, removed; a bad
// label's error under the label field; config-file keys read-only; no pool
// section for bedrock; a phone-sized page.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const c = require('./lib/console');
const { FakeUpstream, oaiError } = require('../integration/lib/fake-upstream');

const { h } = c;

const KPRIMARY = 'sk-uipool-primary-0123456789PRIM';
const KSPARE = 'sk-uipool-spare-0123456789abSPR7';
const KNEW = 'sk-uipool-newer-0123456789abNEW8';

describe('console: provider key pool', () => {
    let env;
    let up; // an upstream that takes any key unless a scenario says otherwise
    let page;
    let admin;

    before(async () => {
        env = await c.startAll();
        up = await new FakeUpstream({}).start();
        let r = await h.request(env.gw, { path: '/api/providers', body: { id: 'kpool', type: 'openai', base_url: `http://127.0.0.1:${up.port}/v1`, api_key: KPRIMARY } });
        assert.equal(r.status, 201, r.text);
        r = await h.request(env.gw, { path: '/api/models', body: { id: 'kp-model', provider: 'kpool', upstream_model: 'gpt-4o-mini' } });
        assert.equal(r.status, 201, r.text);
        admin = await c.addUser(env.gw, 'root', 'admin');
        page = await c.newPage(env);
        await c.login(page, env.gw, admin);
    });
    after(async () => {
        await c.stopAll(env);
        if (up) await up.stop();
    });

    const pool = () => page.locator('section.key-pool');
    const keyRow = (label) => pool().locator(`tr[data-label="${label}"]`);
    const noKeyInPage = async () => {
        const html = await page.content();
        for (const k of [KSPARE, KPRIMARY, KNEW]) assert.ok(!html.includes(k), 'no key itself in the page');
    };
    const openEdit = async (p, id) => {
        await c.nav(p, 'Providers');
        await p.locator(`tr[data-provider="${id}"]`).getByRole('button', { name: 'Edit', exact: true }).click();
    };
    const apiPool = async () => (await h.request(env.gw, { method: 'GET', path: '/api/providers/kpool/credentials' })).json.data;

    it('adds a key (masked), refuses a bad label under its field, changes the weight', async () => {
        await openEdit(page, 'kpool');
        await pool().getByRole('heading', { name: 'Key pool' }).waitFor();
        await keyRow('primary').waitFor();
        assert.match(await keyRow('primary').textContent(), /stored.*PRIM.*1.*active/s);

        const add = pool().locator('form.pool-add');
        await add.getByLabel('Label', { exact: true }).fill('Bad Label');
        await add.getByLabel('API key', { exact: true }).fill(KSPARE);
        await add.getByRole('button', { name: 'Add key' }).click();
        const err = add.locator('[data-field="label"] .field-error');
        await err.waitFor();
        assert.match(await err.textContent(), /label: expected \[a-z0-9_-\]/);
        assert.equal(await add.getByLabel('Label', { exact: true }).getAttribute('aria-invalid'), 'true');
        assert.equal(await add.getByLabel('Label', { exact: true }).getAttribute('aria-describedby'), 'kpa-label-err');
        assert.equal(await add.locator('[data-field="api_key"] .field-error').count(), 0, 'only the field it names');

        await add.getByLabel('Label', { exact: true }).fill('spare');
        await add.getByLabel('Weight', { exact: true }).fill('2');
        await add.getByRole('button', { name: 'Add key' }).click();
        await keyRow('spare').waitFor();
        await pool().getByText('Key spare added.').waitFor();
        const masked = await keyRow('spare').locator('code.pool-key').textContent();
        assert.ok(masked.endsWith(KSPARE.slice(-4)) && !masked.includes(KSPARE), masked);
        assert.match(await keyRow('spare').textContent(), /spare.*stored.*2.*active/s);
        assert.equal(await add.locator('.field-error').count(), 0, 'the error went away');
        assert.equal(await add.getByLabel('API key', { exact: true }).inputValue(), '', 'the typed key is cleared');
        await noKeyInPage();

        await keyRow('spare').getByRole('button', { name: 'Change' }).click();
        const edit = pool().locator('form.pool-edit');
        await edit.getByRole('heading', { name: 'Change key spare' }).waitFor();
        await edit.getByLabel('Weight', { exact: true }).fill('0');
        await edit.getByRole('button', { name: 'Save key' }).click();
        await edit.locator('[data-field="weight"] .field-error').waitFor();
        await edit.getByLabel('Weight', { exact: true }).fill('5');
        await edit.getByRole('button', { name: 'Save key' }).click();
        await pool().getByText('Key spare changed.').waitFor();
        await keyRow('spare').locator('td.weight', { hasText: /^5$/ }).waitFor();
        assert.equal(await pool().locator('form.pool-edit').count(), 0, 'the form closes');
        const spare = (await apiPool()).find((k) => k.label === 'spare');
        assert.equal(spare.weight, 5);
        await noKeyInPage();
        c.assertClean(page);
    });

    it('a key refused by the upstream shows dead with its reason after a reload; revived, replaced, removed', async () => {
        const keyOf = (rec) => (rec.headers.authorization || '').replace(/^Bearer /, '');
        const m = up.script(up.marker('dead'), (ctx) => {
            if (keyOf(ctx.record) === KSPARE) {
                return ctx.fake._json(ctx.res, ctx.record, 401, oaiError('Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key'));
            }
            return ctx.fake._chat(ctx.res, ctx.record, {});
        });
        for (let i = 0; i < 40 && !up.requestsFor(m).some((rec) => keyOf(rec) === KSPARE); i++) {
            const r = await h.chat(env.gw, { model: 'kp-model', messages: [{ role: 'user', content: `hi ${m}` }] },
                { headers: { 'x-switchboard-conversation': `kp-${i}` } });
            assert.equal(r.status, 200, r.text); // moved to the primary key at once
        }
        assert.ok(up.requestsFor(m).some((rec) => keyOf(rec) === KSPARE), 'the spare key was tried');
        const stored = await h.eventually(async () => (await apiPool()).find((k) => k.label === 'spare' && k.status === 'dead'), 8000);
        assert.ok(stored, 'the control plane stored the dead key');

        await page.reload();
        await page.getByRole('heading', { level: 1, name: 'Providers' }).waitFor();
        await page.locator('tr[data-provider="kpool"]').getByRole('button', { name: 'Edit', exact: true }).click();
        const status = keyRow('spare').locator('td.status');
        await status.waitFor();
        assert.equal((await status.textContent()).replace(/\s+/g, ' ').trim(), 'dead: 401 invalid_api_key');
        assert.match(await keyRow('primary').locator('td.status').textContent(), /active/);
        await noKeyInPage();
        await c.shot(page, 'providers-key-pool');

        await keyRow('spare').getByRole('button', { name: 'Revive' }).click();
        await pool().getByText('Key spare revived.').waitFor();
        await keyRow('spare').locator('td.status', { hasText: /^\s*active\s*$/ }).waitFor();
        assert.equal(await keyRow('spare').getByRole('button', { name: 'Revive' }).count(), 0);
        assert.equal((await apiPool()).find((k) => k.label === 'spare').status, 'active');

        // Replaced: a new key, shown masked, the weight kept.
        await keyRow('spare').getByRole('button', { name: 'Change' }).click();
        const edit = pool().locator('form.pool-edit');
        await edit.getByLabel('New API key (empty: keep the current one)').fill(KNEW);
        await edit.getByRole('button', { name: 'Save key' }).click();
        await pool().getByText('Key spare replaced.').waitFor();
        await keyRow('spare').locator('code.pool-key', { hasText: KNEW.slice(-4) }).waitFor();
        assert.match(await keyRow('spare').textContent(), /spare.*stored.*5.*active/s);
        await noKeyInPage();

        page.once('dialog', (d) => d.accept());
        await keyRow('spare').getByRole('button', { name: 'Remove' }).click();
        await pool().getByText('Key spare removed.').waitFor();
        assert.equal(await keyRow('spare').count(), 0);
        assert.deepEqual((await apiPool()).map((k) => k.label), ['primary']);
        await noKeyInPage();
        c.assertClean(page);
    });

    it('config-file keys are read-only; bedrock has no pool; fits a phone', async () => {
        assert.match(await pool().textContent(), /Keys from the config file are read-only/);
        // The harness's provider "fake" has its key from the config file (env:).
        await page.locator('tr[data-provider="fake"]').getByRole('button', { name: 'Edit', exact: true }).click();
        await pool().locator('tr[data-label="primary"]').waitFor();
        const row = pool().locator('tr[data-label="primary"]');
        assert.match(await row.textContent(), /config file \(read-only\)/);
        assert.equal(await row.getByRole('button', { name: 'Change' }).count(), 0);
        assert.equal(await row.getByRole('button', { name: 'Remove' }).count(), 0);

        const b = await h.request(env.gw, { path: '/api/providers', body: { id: 'kbed', type: 'bedrock', region: 'us-east-1' } });
        assert.equal(b.status, 201, b.text);
        await page.reload(); // the list was read before kbed existed
        await page.locator('tr[data-provider="kbed"]').getByRole('button', { name: 'Edit', exact: true }).click();
        await page.getByRole('heading', { name: 'Provider kbed' }).waitFor();
        assert.equal(await pool().count(), 0, 'no key pool for bedrock');

        const phone = await c.newPage(env, { width: 390, height: 844 });
        await c.login(phone, env.gw, admin);
        await openEdit(phone, 'kpool');
        await phone.locator('section.key-pool tr[data-label="primary"]').waitFor();
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
        await c.shot(phone, 'phone-providers-key-pool');
        c.assertClean(phone);
        c.assertClean(page);
    });
});
