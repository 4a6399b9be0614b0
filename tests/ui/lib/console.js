// SPDX-License-Identifier: MIT
//
// console.js - what the console tests share: Debian's chromium driven by
// playwright-core (launched by path, never downloaded), the real gateway and
// fake upstream from tests/integration/lib, users made through the API, and
// screenshots under build/ui-screenshots/ (SB_UI_SHOTS overrides) for review.
//
// Every page the tests open is watched for what must never happen: a
// Content-Security-Policy violation, an uncaught exception, or a request to
// any origin other than the gateway's.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const h = require('../../integration/lib/harness');
const { FakeUpstream } = require('../../integration/lib/fake-upstream');

const CHROMIUM = process.env.SB_CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.resolve(h.REPO, process.env.SB_UI_SHOTS || 'build/ui-screenshots');

async function launch() {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/bootstrap.sh)`);
    return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A fake upstream, a gateway in front of it, and a browser. */
async function startAll(opts = {}) {
    const fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
    const gw = await h.startGateway(fake, opts);
    const browser = await launch();
    return { fake, gw, browser };
}

async function stopAll(env) {
    if (!env) return;
    if (env.browser) await env.browser.close().catch(() => {});
    if (env.gw) await env.gw.kill();
    if (env.fake) await env.fake.stop();
}

/** Creates a console user with the admin token. */
async function addUser(gw, username, role, password = `${username}-password-1`) {
    const r = await h.request(gw, { path: '/api/users', body: { username, password, role } });
    assert.equal(r.status, 201, r.text);
    return { username, password };
}

/** A new browser context + page at `viewport`, watched for CSP violations,
 *  page errors and requests leaving the gateway's origin. */
async function newPage(env, viewport = { width: 1280, height: 800 }) {
    const ctx = await env.browser.newContext({ viewport });
    const page = await ctx.newPage();
    page.setDefaultTimeout(10000);
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
        if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) page.problems.push(`console: ${m.text()}`);
    });
    page.on('request', (req) => {
        const u = req.url();
        if (!u.startsWith(env.gw.url) && !u.startsWith('data:') && !u.startsWith('blob:')) page.problems.push(`request to another origin: ${u}`);
    });
    await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
            window.__cspViolations = (window.__cspViolations || 0) + 1;
            console.error(`Refused to load (CSP): ${e.violatedDirective} ${e.blockedURI}`);
        });
    });
    return page;
}

function assertClean(page) {
    assert.deepEqual(page.problems, [], page.problems.join('\n'));
}

async function login(page, gw, user) {
    await page.goto(`${gw.url}/ui/`);
    await page.getByLabel('Username', { exact: true }).fill(user.username);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

async function nav(page, name) {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
}

async function shot(page, name) {
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

module.exports = { h, launch, startAll, stopAll, addUser, newPage, assertClean, login, nav, shot, SHOTS };
