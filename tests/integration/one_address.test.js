// SPDX-License-Identifier: MIT
//
// one_address.test.js - one address, one gateway (issue 7 part 7).
//
// A second `switchboard serve` on an address a running gateway holds must exit
// 1 with "address in use" before it opens its store, and the first must go on
// answering every request (one response and one usage row each). Another port
// is fine. After the first is SIGKILLed, the address can be claimed again at
// once (no stale lock). Last, `serve --takeover` replaces a running gateway
// while clients send requests without pause: no request fails, the old process
// drains and exits 0, and every answered request has its usage row; a takeover
// that fails to start (bad database) leaves the old one serving.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

/** `switchboard serve` with our own arguments and environment; resolves nothing, records all. */
function serve(args, env) {
    const p = { out: '', err: '', exit: null };
    p.proc = spawn(h.BIN, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    p.pid = p.proc.pid;
    p.proc.stdout.on('data', (d) => { p.out += d; });
    p.proc.stderr.on('data', (d) => { p.err += d; });
    p.exited = new Promise((resolve) => p.proc.on('exit', (code, signal) => {
        p.exit = { code, signal, at: h.now() };
        resolve(p.exit);
    }));
    p.waitExit = (ms) => new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), ms);
        p.exited.then((e) => { clearTimeout(t); resolve(e); });
    });
    p.kill = async () => { if (!p.exit) { p.proc.kill('SIGKILL'); await p.exited; } };
    return p;
}

async function healthy(gw, ms = 15000) {
    return h.eventually(async () => {
        const r = await h.request(gw, { method: 'GET', path: '/health', auth: false, timeoutMs: 2000 });
        return r.status === 200;
    }, ms, 50);
}

const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer/;
const body = (n) => ({ model: 'gpt-test', messages: [{ role: 'user', content: `one address ${n}` }] });

/** `conc` loops of chat requests on fresh connections until stop(); records every outcome. */
function keepAsking(gw, conc) {
    const run = { ok: [], failed: [], stopped: false };
    let n = 0;
    const loop = async () => {
        while (!run.stopped) {
            try {
                const r = await h.chat(gw, body(n++), { timeoutMs: 10000 });
                if (r.status === 200) run.ok.push(r.headers['x-request-id']);
                else run.failed.push(`${r.status} ${r.text.slice(0, 200)}`);
            } catch (e) {
                run.failed.push(String(e.message || e));
            }
        }
    };
    const loops = Array.from({ length: conc }, loop);
    run.stop = async () => { run.stopped = true; await Promise.all(loops); };
    return run;
}

function usageRows(gw, ids) {
    if (ids.length === 0) return 0;
    const list = ids.map((id) => `'${id.replace(/'/g, "''")}'`).join(',');
    return h.sql(gw, `SELECT COUNT(*) AS n FROM usage_logs WHERE request_id IN (${list})`)[0].n;
}

describe('one address, one gateway', () => {
    let fake;
    let gw;
    const procs = [];
    const dirs = [];
    const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-oneaddr-')); dirs.push(d); return d; };

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, { workers: 2 });
    });

    after(async () => {
        for (const p of procs) await p.kill();
        if (gw) await gw.kill();
        if (fake) await fake.stop();
        if (!process.env.SB_KEEP_TMP) for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });

    it('a second serve on the same address exits 1 with "address in use" before opening its store', async () => {
        const dir = tmp();
        const db = path.join(dir, 'second.db');
        const p = serve(['--config', gw.configPath, '--listen', `127.0.0.1:${gw.port}`, '--db', `sqlite:${db}`, '--workers', '2'],
            { SWITCHBOARD_ADMIN_TOKEN: gw.token, FAKE_OPENAI_KEY: h.FAKE_KEY, SWITCHBOARD_MASTER_KEY: crypto.randomBytes(32).toString('base64') });
        procs.push(p);
        const exit = await p.waitExit(5000);
        assert.ok(exit, `the second gateway still runs after 5 s\n${p.err}`);
        assert.equal(exit.signal, null, p.err);
        assert.equal(exit.code, 1, p.err);
        assert.ok(p.err.includes(`switchboard: listen 127.0.0.1:${gw.port}: address in use (another switchboard or another program holds it)`),
            `stderr: ${p.err}`);
        assert.equal(fs.existsSync(db), false, 'the refused gateway created its database');
        assert.equal(p.out, '', 'the refused gateway printed to stdout (an admin token?)');
        assert.equal(SANITIZER_RE.exec(p.err), null, p.err);
    });

    it('the first gateway still answers every request, with one usage row each', async () => {
        const ids = [];
        for (let batch = 0; batch < 10; batch++) {
            const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => h.chat(gw, body(`${batch}.${i}`))));
            for (const r of rs) {
                assert.equal(r.status, 200, r.text);
                ids.push(r.headers['x-request-id']);
            }
        }
        assert.equal(new Set(ids).size, 60);
        const n = await h.eventually(() => usageRows(gw, ids) === 60 && 60, 5000, 100);
        assert.equal(n, 60, `usage rows for the 60 requests: ${usageRows(gw, ids)} (another process took some?)`);
        assert.ok(gw.alive(), gw.logTail());
    });

    it('a gateway on another port starts', async () => {
        const other = await h.startGateway(fake, { workers: 1 });
        try {
            assert.notEqual(other.port, gw.port);
            assert.equal((await h.chat(other, body('other'))).status, 200);
            await h.assertCleanStop(other);
        } finally {
            await other.kill();
        }
    });

    // Shared by the last two tests: the gateway that replaces the SIGKILLed one.
    const env = { FAKE_OPENAI_KEY: h.FAKE_KEY, SWITCHBOARD_MASTER_KEY: crypto.randomBytes(32).toString('base64') };
    let next;

    it('after SIGKILL, a new gateway claims the same address at once (nothing stale)', async () => {
        const port = gw.port;
        gw.proc.kill('SIGKILL');
        assert.ok(await gw.waitExit(5000));
        const dir = tmp();
        next = { port, token: gw.token, dir, configPath: gw.configPath, dbPath: path.join(dir, 'next.db') };
        env.SWITCHBOARD_ADMIN_TOKEN = gw.token;
        next.proc = serve(['--config', next.configPath, '--listen', `127.0.0.1:${port}`, '--db', `sqlite:${next.dbPath}`, '--workers', '2'], env);
        procs.push(next.proc);
        assert.ok(await healthy(next), `no /health 200 on port ${port}\n${next.proc.err}`);
        assert.equal(next.proc.exit, null, next.proc.err);
        assert.equal((await h.chat(next, body('after kill'))).status, 200);
    });

    it('a --takeover that fails to start leaves the old gateway serving', async () => {
        assert.ok(next && next.proc.exit === null, 'the previous test did not leave a gateway running');
        const bad = serve(['--config', next.configPath, '--listen', `127.0.0.1:${next.port}`, '--db', 'postgres://nowhere/x',
            '--workers', '2', '--takeover'], env);
        procs.push(bad);
        const exit = await bad.waitExit(10000);
        assert.ok(exit, `the failing takeover still runs\n${bad.err}`);
        assert.equal(exit.code, 1, bad.err);
        assert.match(bad.err, /msg="taking over"/); // it did get the sockets
        assert.ok(await h.eventually(() => /takeover abandoned by the new process; still serving/.test(next.proc.err), 5000),
            next.proc.err);
        assert.equal(next.proc.exit, null, next.proc.err);
        for (let i = 0; i < 10; i++) assert.equal((await h.chat(next, body(`after failed takeover ${i}`))).status, 200);
        assert.equal(SANITIZER_RE.exec(bad.err), null, bad.err);
    });

    it('serve --takeover replaces it while requests flow: none fails, the old one drains and exits 0', async () => {
        assert.ok(next && next.proc.exit === null, 'the previous test did not leave a gateway running');
        const old = next.proc;
        const run = keepAsking(next, 6);
        await h.sleep(300);
        const t = serve(['--config', next.configPath, '--listen', `127.0.0.1:${next.port}`, '--db', `sqlite:${next.dbPath}`,
            '--workers', '2', '--takeover'], env);
        procs.push(t);
        const oldExit = await old.waitExit(15000);
        await h.sleep(500); // requests now reach the new process only
        await run.stop();
        assert.ok(oldExit, `the old gateway did not exit after the takeover\n${old.err}\n--- new ---\n${t.err}`);
        assert.deepEqual(run.failed, [], `failed requests during the handover\n--- old ---\n${old.err}\n--- new ---\n${t.err}`);
        assert.equal(oldExit.signal, null, old.err);
        assert.equal(oldExit.code, 0, old.err);
        assert.match(t.err, new RegExp(`msg="taking over" addr=127\\.0\\.0\\.1:${next.port} from_pid=${old.pid} `));
        assert.match(old.err, new RegExp(`msg="handed over, draining" to_pid=${t.pid}`));
        assert.ok(run.ok.length >= 30, `only ${run.ok.length} requests in the run`);
        if (process.env.SB_VERBOSE) console.log(`takeover run: ${run.ok.length} requests answered`);
        assert.equal(t.exit, null, t.err);
        assert.equal((await h.chat(next, body('after takeover'))).status, 200);
        // Both processes wrote to the one database; the old one flushed before it exited.
        const n = await h.eventually(() => usageRows(next, run.ok) === run.ok.length && run.ok.length, 5000, 100);
        assert.equal(n, run.ok.length, `usage rows ${usageRows(next, run.ok)} for ${run.ok.length} answered requests`);
        t.proc.kill('SIGTERM');
        const tExit = await t.waitExit(10000);
        assert.ok(tExit, 'the new gateway did not exit after SIGTERM');
        assert.equal(tExit.code, 0, t.err);
        for (const p of [old, t]) assert.equal(SANITIZER_RE.exec(p.err), null, p.err);
    });
});
