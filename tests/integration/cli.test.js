// SPDX-License-Identifier: MIT
//
// cli.test.js - the command line: `switchboard chat` streams an answer from a
// running gateway to stdout; version and --help; a literal key in the config
// file is refused at start with file:line and without echoing the key.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, spawn } = require('node:child_process');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

function run(args, env = {}, timeout = 20000) {
    return spawnSync(h.BIN, args, { encoding: 'utf8', timeout, env: { ...process.env, ...env } });
}

describe('cli', () => {
    let fake;
    let gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('chat streams the answer to stdout', async () => {
        const m = fake.script(fake.marker('cli'), { chunks: ['Hello', ' from', ' the', ' CLI'], chunkDelayMs: 20 });
        // spawnSync would block this process, and with it the fake upstream.
        const child = spawn(h.BIN, ['chat', '--url', `http://127.0.0.1:${gw.port}`, '-m', 'gpt-test', m],
            { env: { ...process.env, SWITCHBOARD_ADMIN_TOKEN: gw.token } });
        let out = '';
        let err = '';
        child.stdout.on('data', (c) => { out += c; });
        child.stderr.on('data', (c) => { err += c; });
        const code = await new Promise((r) => child.on('exit', r));
        assert.equal(code, 0, err);
        assert.equal(out, 'Hello from the CLI\n');
        const seen = await fake.waitForRequest(m);
        assert.equal(seen.json.stream, true);
    });

    it('chat reports an unknown model and exits non-zero', async () => {
        const child = spawn(h.BIN, ['chat', '--url', `http://127.0.0.1:${gw.port}`, '-m', 'no-such-model', 'hi'],
            { env: { ...process.env, SWITCHBOARD_ADMIN_TOKEN: gw.token } });
        let err = '';
        child.stderr.on('data', (c) => { err += c; });
        const code = await new Promise((r) => child.on('exit', r));
        assert.equal(code, 1);
        assert.match(err, /HTTP 404/);
        assert.match(err, /model_not_found/);
    });

    it('version and --help', () => {
        const v = run(['version']);
        assert.equal(v.status, 0);
        assert.match(v.stdout, /^switchboard \d+\.\d+\.\d+\n$/);
        const help = run(['--help']);
        assert.equal(help.status, 0);
        for (const cmd of ['serve', 'migrate', 'chat', 'version']) assert.match(help.stdout, new RegExp(`switchboard ${cmd}`));
        assert.equal(run(['bogus']).status, 2);
    });

    it('a literal api_key in the config is refused with file:line, the key not echoed', () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-cli-'));
        const cfg = path.join(dir, 'c.yaml');
        const secret = 'sk-literal-secret-value-1234567890';
        fs.writeFileSync(cfg, `providers:\n  - id: p\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key: ${secret}\n`);
        const r = run(['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--db', `sqlite:${dir}/x.db`],
            { SWITCHBOARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), SWITCHBOARD_ADMIN_TOKEN: 'sb-test-token-123456' });
        fs.rmSync(dir, { recursive: true, force: true });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /c\.yaml:5/);
        assert.match(r.stderr, /env:NAME or file:PATH/);
        assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'the literal key was echoed');
    });

    it('serve refuses sqlite::memory: with a clear message (its connections would not share it)', () => {
        const r = run(['serve', '--db', 'sqlite::memory:', '--listen', '127.0.0.1:0'], { SWITCHBOARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') });
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /sqlite::memory: cannot be shared/);
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
