// SPDX-License-Identifier: MIT
//
// usage_journal.test.js - the database stops taking writes for ~10 s in
// the middle of a run (a sqlite3 CLI holds BEGIN EXCLUSIVE, so the usage
// writer's BEGIN IMMEDIATE waits out its busy timeout and fails). Clients
// see no error; usage rows spill to the journal beside the database
// (switchboard_usage_journal_rows > 0 while locked); after the lock goes
// the journal is replayed and removed, /metrics shows nothing lost, RSS
// stayed bounded, and after SIGTERM the database holds exactly one usage
// row per request.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { FakeUpstream, now } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const LOCK_MS = 10000;
const MIN_DURING = 2000;
const CONCURRENCY = 16;

/** Sends requests with CONCURRENCY workers until `until()` is true and at least `min` went. */
async function load(agent, gw, statuses, min, until) {
    const body = { model: 'gpt-test', messages: [{ role: 'user', content: 'journal' }] };
    let sent = 0;
    const worker = async () => {
        while (sent < min || !until()) {
            sent++;
            const s = await h.chatStatus(agent, gw, body);
            statuses.set(s, (statuses.get(s) || 0) + 1);
        }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return sent;
}

function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
}

async function metrics(gw) {
    const r = await h.request(gw, { method: 'GET', path: '/metrics', auth: false });
    assert.equal(r.status, 200);
    const get = (name) => {
        const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.text);
        assert.ok(m, `${name} in /metrics`);
        return Number(m[1]);
    };
    return {
        written: get('switchboard_usage_rows_written_total'),
        lost: get('switchboard_usage_lost_total'),
        queue: get('switchboard_usage_queue_rows'),
        journalRows: get('switchboard_usage_journal_rows'),
        journalBytes: get('switchboard_usage_journal_bytes'),
        spilled: get('switchboard_usage_spilled_total'),
    };
}

/** A sqlite3 CLI holding the database's write lock until release() is called. */
async function lockDatabase(dbPath) {
    const cli = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (d) => { out += d; });
    cli.stderr.on('data', (d) => { out += d; });
    cli.stdin.write(".timeout 10000\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n");
    const ok = await h.eventually(() => out.includes('locked'), 15000);
    assert.ok(ok, `sqlite3 did not take the lock: ${out}`);
    const exited = new Promise((resolve) => cli.once('exit', resolve));
    return {
        async release() {
            cli.stdin.end('ROLLBACK;\n.quit\n');
            await exited;
        },
        kill() { cli.kill('SIGKILL'); },
    };
}

describe('usage journal', () => {
    let fake;
    let gw;
    let lock;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (lock) lock.kill();
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('a database locked for 10 s mid-run loses no usage row', { timeout: 180000 }, async (t) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
        const statuses = new Map();
        const journal = `${gw.dbPath}.usage-journal`;
        let total = await load(agent, gw, statuses, 300, () => true);
        await h.eventually(async () => (await metrics(gw)).written === total, 10000);
        const rssBefore = rssKiB(gw.pid);

        lock = await lockDatabase(gw.dbPath);
        const lockedAt = now();
        let rssMax = rssBefore;
        let sawJournal = 0;
        const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssKiB(gw.pid)); }, 100);
        const during = await load(agent, gw, statuses, MIN_DURING, () => now() - lockedAt >= LOCK_MS);
        total += during;
        const m = await metrics(gw);
        sawJournal = m.journalRows;
        assert.ok(fs.existsSync(journal), 'the journal file exists while the database is locked');
        assert.equal(fs.statSync(journal).mode & 0o777, 0o600, 'journal mode 0600');
        await lock.release();
        lock = null;

        total += await load(agent, gw, statuses, 300, () => true);
        clearInterval(sampler);
        agent.destroy();
        assert.deepEqual([...statuses], [[200, total]], 'clients saw no error');
        assert.ok(during >= MIN_DURING, `${during} requests during the lock`);
        assert.ok(sawJournal > 0 || m.spilled > 0, `rows spilled while locked: ${JSON.stringify(m)}`);

        const done = await h.eventually(async () => {
            const x = await metrics(gw);
            return x.written === total && x.journalRows === 0 ? x : null;
        }, 60000, 200);
        assert.ok(done, `journal replayed: ${JSON.stringify(await metrics(gw))}\n${gw.logTail()}`);
        assert.equal(done.lost, 0, 'switchboard_usage_lost_total');
        assert.equal(done.journalBytes, 0);
        assert.equal(done.queue, 0);
        assert.ok(done.spilled > 0, 'some rows went through the journal');
        assert.ok(!fs.existsSync(journal), 'the journal is removed after its replay');
        // The queue is capped (16 MiB); the whole run's rows are ~1.5 MB, so
        // growth past 32 MiB would mean memory followed the outage.
        // A sanitizer's allocator keeps freed memory in quarantine (hundreds of MB under
        // ASan), so the bound is the release build's; sanitizer builds get a loose one.
        const sanitized = /(asan|tsan)/.test(h.BIN);
        assert.ok(rssMax - rssBefore < (sanitized ? 1024 : 32) * 1024,
            `RSS grew ${rssMax - rssBefore} KiB during the outage (before ${rssBefore} KiB)`);

        t.diagnostic(`requests ${total} (${during} during the lock); journal rows while locked ` +
            `${sawJournal}; spilled ${done.spilled}; RSS ${rssBefore} -> max ${rssMax} KiB`);
        await h.assertCleanStop(gw);
        const [row] = h.sql(gw, "SELECT count(*) AS n, count(DISTINCT request_id) AS ids " +
            "FROM usage_logs WHERE model = 'gpt-test'");
        assert.equal(row.n, total, 'usage rows');
        assert.equal(row.ids, total, 'distinct request ids');
    });
});
