// SPDX-License-Identifier: MIT
//
// batches.test.js - batch jobs (issue 7 part 10): POST /api/batches runs a
// JSONL of requests in the background through the real data plane. A job
// over a route whose first target refuses connections succeeds by failover;
// bad lines are those lines' errors; results come back in input order
// whatever order the answers arrived in; progress, cancel, roles (a user
// never sees another's job), a key's rpm slows a job instead of failing its
// lines, and a job interrupted by SIGTERM resumes after a restart with every
// line answered exactly once (one upstream call, one usage row each).
'use strict';

const { describe, it, before, after } = require('node:test');
const { spawn } = require('node:child_process');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const cp = require('./lib/cp');

const chatLine = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });
const jsonl = (lines) => `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;

/** POST /api/batches with a JSONL body (options in the query string). */
function postJsonl(gw, text, query = '', as = 'admin') {
    const headers = { 'content-type': 'application/jsonl' };
    if (as && as.cookie) { headers.cookie = as.cookie; headers['x-csrf-token'] = as.csrf; }
    return h.request(gw, { method: 'POST', path: `/api/batches${query}`, body: text, headers, auth: as === 'admin' });
}

async function waitStatus(gw, id, want, ms = 20000, as = 'admin') {
    let last;
    await cp.within(ms, async () => {
        last = cp.ok(await cp.api.get(gw, `/api/batches/${id}`, as), 200);
        return want.includes(last.status);
    }, `batch ${id} never reached ${want} (last: ${JSON.stringify(last)})`);
    return last;
}

async function results(gw, id, as = 'admin') {
    const r = await cp.api.get(gw, `/api/batches/${id}/results`, as);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /application\/jsonl/);
    return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** The most requests the upstream held at once, from recorded arrival and close times. */
function maxOverlap(records) {
    const ev = [];
    for (const r of records) { ev.push([r.receivedAt, 1]); ev.push([r.closedAt, -1]); }
    ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let cur = 0, max = 0;
    for (const [, d] of ev) { cur += d; max = Math.max(max, cur); }
    return max;
}

/** `switchboard serve --takeover` on gw's address, database and config. */
function takeover(gw) {
    const p = { err: '', exit: null };
    p.proc = spawn(h.BIN, ['serve', '--config', gw.configPath, '--listen', `127.0.0.1:${gw.port}`,
        '--db', `sqlite:${gw.dbPath}`, '--workers', '2', '--takeover'], {
        cwd: gw.dir, stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SWITCHBOARD_ADMIN_TOKEN: gw.token, SWITCHBOARD_MASTER_KEY: gw.masterKey, FAKE_OPENAI_KEY: h.FAKE_KEY },
    });
    p.proc.stdout.on('data', () => {});
    p.proc.stderr.on('data', (d) => { p.err += d; });
    p.exited = new Promise((resolve) => p.proc.on('exit', (code, signal) => { p.exit = { code, signal }; resolve(p.exit); }));
    return p;
}

describe('batch jobs', () => {
    let fake, gw;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, { server: { shutdown_timeout_ms: 5000 } });
        // A route whose first target refuses connections (nothing listens on port 9).
        cp.ok(await cp.api.post(gw, '/api/routes', { id: 'bt-route', strategy: 'priority', targets: ['dead-model', 'gpt-test'] }), 201);
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (fake) await fake.stop();
    });

    it('runs a job over a route by failover; results in order with per-line errors', async () => {
        const m = [fake.marker('a'), fake.marker('b'), fake.marker('c'), fake.marker('d')];
        const text = jsonl([
            { custom_id: 'req-1', method: 'POST', url: '/v1/chat/completions', body: chatLine('ignored', m[0]) },
            chatLine('ignored', m[1]),
            '{"custom_id": "req-3", "body": {"model": ',               // not JSON: line 3's error
            { custom_id: 'req-4', method: 'POST', url: '/v1/chat/completions', body: chatLine('x', m[2], { stream: true }) },
            { custom_id: 'req-5', body: chatLine('ignored', m[3]) },
        ]);
        const created = cp.ok(await postJsonl(gw, text, '?model=bt-route&concurrency=2'), 201);
        assert.match(created.id, /^batch_[0-9a-f]{24}$/);
        assert.equal(created.object, 'batch');
        assert.equal(created.model, 'bt-route');
        assert.equal(created.endpoint, '/v1/chat/completions');
        assert.equal(created.request_counts.total, 5);
        assert.equal(created.run_as, 'admin');
        const done = await waitStatus(gw, created.id, ['completed']);
        assert.deepEqual(done.request_counts, { total: 5, completed: 3, failed: 2, in_flight: 0, pending: 0 });
        assert.ok(done.started_at && done.finished_at, JSON.stringify(done));

        const out = await results(gw, created.id);
        assert.equal(out.length, 5);
        assert.deepEqual(out.map((o) => o.custom_id), ['req-1', null, null, 'req-4', 'req-5']);
        assert.deepEqual(out.map((o) => o.id), [1, 2, 3, 4, 5].map((n) => `${created.id}-${n}`));
        for (const i of [0, 1, 4]) {
            assert.equal(out[i].error, null, JSON.stringify(out[i]));
            assert.equal(out[i].response.status_code, 200);
            assert.equal(out[i].response.body.object, 'chat.completion');
            assert.equal(out[i].response.request_id, out[i].id);
        }
        assert.equal(out[2].response, null);
        assert.equal(out[2].error.code, 'invalid_json');
        assert.match(out[2].error.message, /^line 3: /);
        assert.equal(out[3].error.code, 'stream_not_supported');
        // Each good line reached the upstream once, under the route's healthy target.
        for (const k of [m[0], m[1], m[3]]) assert.equal(fake.requestsFor(k).length, 1, k);
        assert.equal(fake.requestsFor(m[2]).length, 0);
        // A usage row per line sent, on the route, after a failover.
        await cp.within(5000, () => h.sql(gw, `select 1 from usage_logs where request_id like '${created.id}-%'`).length === 3, 'usage rows');
        const rows = h.sql(gw, `select request_id, route, provider, fallbacks, http_status from usage_logs where request_id like '${created.id}-%' order by request_id`);
        for (const r of rows) assert.deepEqual({ route: r.route, provider: r.provider, fallbacks: r.fallbacks, http_status: r.http_status },
            { route: 'bt-route', provider: 'fake', fallbacks: 1, http_status: 200 }, JSON.stringify(rows));
    });

    it('answers in input order whatever order lines finish in; the data plane judges each body', async () => {
        const n = 12;
        const lines = [];
        for (let i = 0; i < n; i++) {
            const mk = fake.script(fake.marker(`o${i}`), { delayMs: (n - i) * 25 }); /* later lines finish first */
            lines.push({ custom_id: `o-${i}`, body: chatLine('gpt-test', mk) });
        }
        lines.push({ custom_id: 'o-missing', body: chatLine('no-such-model', 'x') });    // the data plane's 404
        lines.push({ custom_id: 'o-1', body: chatLine('gpt-test', 'dup') });              // a duplicate custom_id
        lines.push({ custom_id: 'o-emb', url: '/v1/embeddings', body: { model: 'embed-test', input: 'hello' } });
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { input: jsonl(lines), concurrency: 8, metadata: { run: 'order' } }), 201);
        assert.deepEqual(created.metadata, { run: 'order' });
        const done = await waitStatus(gw, created.id, ['completed']);
        assert.equal(done.request_counts.completed, n + 1);
        assert.equal(done.request_counts.failed, 2);
        const out = await results(gw, created.id);
        assert.deepEqual(out.map((o) => o.custom_id), [...lines.map((l) => l.custom_id)]);
        assert.equal(out[n].response.status_code, 404);
        assert.equal(out[n].response.body.error.code, 'model_not_found');
        assert.equal(out[n + 1].error.code, 'duplicate_custom_id');
        assert.equal(out[n + 2].response.status_code, 200);
        assert.equal(out[n + 2].response.body.object, 'list');
        // Pages: after= and limit=, with the next page's start in a header.
        const p = await cp.api.get(gw, `/api/batches/${created.id}/results?after=2&limit=3`);
        assert.equal(p.status, 200);
        assert.deepEqual(p.text.trim().split('\n').map((l) => JSON.parse(l).custom_id), ['o-2', 'o-3', 'o-4']);
        assert.equal(p.headers['x-switchboard-next-after'], '5');
        assert.equal(p.headers['x-switchboard-batch-status'], 'completed');
    });

    it('refuses bad jobs up front with the field at fault', async () => {
        cp.assertApiError(await postJsonl(gw, '\n\n'), 400, 'bad_request', 'input');
        cp.assertApiError(await postJsonl(gw, jsonl([chatLine('gpt-test', 'x')]), '?concurrency=0'), 400, 'bad_request', 'concurrency');
        cp.assertApiError(await postJsonl(gw, jsonl([chatLine('gpt-test', 'x')]), '?concurrency=65'), 400, 'bad_request', 'concurrency');
        const e = cp.assertApiError(await postJsonl(gw, jsonl([chatLine('gpt-test', 'x')]), '?model=gpt-tset'), 400, 'bad_request', 'model');
        assert.ok(e.suggestions.includes('gpt-test'), JSON.stringify(e));
        cp.assertApiError(await postJsonl(gw, jsonl([chatLine('gpt-test', 'x')]), '?bogus=1'), 400, 'bad_request');
        cp.assertApiError(await cp.api.post(gw, '/api/batches', { input: 'x', requests: [] }), 400, 'bad_request', 'input');
        cp.assertApiError(await cp.api.post(gw, '/api/batches', { requests: [chatLine('gpt-test', 'x')], endpoint: '/v1/models' }), 400, 'bad_request', 'endpoint');
        cp.assertApiError(await cp.api.post(gw, '/api/batches', { requests: [chatLine('gpt-test', 'x')], key_id: 99999 }), 400, 'bad_request', 'key_id');
        cp.assertApiError(await cp.api.get(gw, '/api/batches/batch_000000000000000000000000'), 404, 'not_found');
        cp.assertApiError(await h.request(gw, { method: 'GET', path: '/api/batches', auth: false }), 401);
    });

    it('cancel: lines in flight finish, the rest are cancelled; finished jobs can be deleted', async () => {
        const lines = [];
        for (let i = 0; i < 10; i++) lines.push({ custom_id: `c-${i}`, body: chatLine('gpt-test', fake.script(fake.marker(`c${i}`), { delayMs: 400 })) });
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { requests: lines, concurrency: 1 }), 201);
        await cp.within(5000, async () => (await cp.api.get(gw, `/api/batches/${created.id}`)).json.request_counts.in_flight === 1, 'a line in flight');
        cp.assertApiError(await cp.api.del(gw, `/api/batches/${created.id}`), 409, 'conflict');
        const c = cp.ok(await cp.api.post(gw, `/api/batches/${created.id}/cancel`, {}), 200);
        assert.ok(['cancelling', 'cancelled'].includes(c.status), c.status);
        const done = await waitStatus(gw, created.id, ['cancelled']);
        assert.ok(done.cancelled_at && done.finished_at);
        const out = await results(gw, created.id);
        assert.equal(out.length, 10);
        assert.deepEqual(out.map((o) => o.custom_id), lines.map((l) => l.custom_id));
        const sent = out.filter((o) => o.response);
        assert.ok(sent.length >= 1 && sent.length < 10, `${sent.length} lines answered`);
        for (const o of out.filter((x) => !x.response)) assert.equal(o.error.code, 'batch_cancelled');
        assert.equal(done.request_counts.completed, sent.length);
        // cancelling again is fine; a deleted job is gone
        cp.ok(await cp.api.post(gw, `/api/batches/${created.id}/cancel`, {}), 200);
        assert.equal((await cp.api.del(gw, `/api/batches/${created.id}`)).status, 204);
        cp.assertApiError(await cp.api.get(gw, `/api/batches/${created.id}`), 404, 'not_found');
    });

    it('roles: a user runs jobs as themselves and never sees another user\'s job', async () => {
        const ann = await cp.userSession(gw, 'bt-ann', 'user');
        const bob = await cp.userSession(gw, 'bt-bob', 'developer');
        const mk = fake.marker('ann');
        const created = cp.ok(await postJsonl(gw, jsonl([chatLine('gpt-test', mk)]), '', ann), 201);
        assert.equal(created.run_as, 'user');
        assert.equal(created.user, 'bt-ann');
        assert.equal(created.created_by, 'bt-ann');
        await waitStatus(gw, created.id, ['completed'], 20000, ann);
        cp.assertApiError(await cp.api.get(gw, `/api/batches/${created.id}`, bob), 404, 'not_found');
        cp.assertApiError(await cp.api.get(gw, `/api/batches/${created.id}/results`, bob), 404, 'not_found');
        cp.assertApiError(await cp.api.post(gw, `/api/batches/${created.id}/cancel`, {}, bob), 404, 'not_found');
        const bl = cp.ok(await cp.api.get(gw, '/api/batches', bob), 200);
        assert.ok(!bl.data.some((b) => b.id === created.id));
        const al = cp.ok(await cp.api.get(gw, '/api/batches?limit=500', 'admin'), 200);
        assert.ok(al.data.some((b) => b.id === created.id));
        // The line's usage row is the user's.
        await cp.within(5000, () => h.sql(gw, `select user_id from usage_logs where request_id = '${created.id}-1'`).length === 1, 'usage row');
        assert.deepEqual(h.sql(gw, `select user_id, key_id from usage_logs where request_id = '${created.id}-1'`), [{ user_id: 'bt-ann', key_id: null }]);
        // Another user's key is not theirs to run as; their own key is.
        const bobKey = await cp.createKey(gw, { name: 'bt-bob-key' }, bob);
        cp.assertApiError(await cp.api.post(gw, '/api/batches', { requests: [chatLine('gpt-test', 'x')], key_id: bobKey.id }, ann), 400, 'bad_request', 'key_id');
        // The private listener serves nothing to anyone without the runner's token (not reachable here at all).
    });

    it('a virtual key\'s scope applies to every line', async () => {
        const k = await cp.createKey(gw, { name: 'bt-scoped', models: ['gpt-test'] });
        cp.assertApiError(await cp.api.post(gw, '/api/batches', { requests: [chatLine('x', 'y')], model: 'bt-route', key_id: k.id }), 400, 'bad_request', 'model');
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { requests: [chatLine('gpt-test', fake.marker('s1')), chatLine('bt-route', 'out of scope')], key_id: k.id }), 201);
        assert.equal(created.run_as, 'key');
        assert.equal(String(created.key_id), String(k.id));
        await waitStatus(gw, created.id, ['completed']);
        const out = await results(gw, created.id);
        assert.equal(out[0].response.status_code, 200);
        assert.equal(out[1].response.status_code, 403);
        assert.equal(out[1].response.body.error.code, 'model_not_allowed');
    });

    it('a key\'s rpm slows the job down instead of failing lines', async () => {
        const k = await cp.createKey(gw, { name: 'bt-rpm', rpm: 60 });
        const n = 64; /* 60 pass at once, then one a second */
        const lines = [];
        for (let i = 0; i < n; i++) lines.push({ custom_id: `r-${i}`, body: chatLine('gpt-test', fake.marker(`r${i}`)) });
        const t0 = h.now();
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { requests: lines, key_id: k.id, concurrency: 8 }), 201);
        const done = await waitStatus(gw, created.id, ['completed'], 30000);
        const ms = h.now() - t0;
        assert.equal(done.request_counts.completed, n, JSON.stringify(done));
        assert.equal(done.request_counts.failed, 0);
        assert.ok(ms >= 2500, `the limit held the job back (${ms} ms)`);
        const out = await results(gw, created.id);
        assert.ok(out.every((o) => o.response.status_code === 200));
        await cp.within(5000, () => h.sql(gw, `select count(*) n from usage_logs where request_id like '${created.id}-%' and http_status = 200`)[0].n === n, 'usage rows');
        const refused = h.sql(gw, `select http_status, count(*) n from usage_logs where request_id like '${created.id}-%' and http_status <> 200 group by http_status`);
        /* the limiter's refusals are usage rows of their own, as any client's; nothing else failed */
        assert.ok(refused.every((r) => r.http_status === 429), JSON.stringify(refused));
        const keyRows = h.sql(gw, `select distinct key_id from usage_logs where request_id like '${created.id}-%'`);
        assert.deepEqual(keyRows, [{ key_id: String(k.id) }]);
    });

    it('a job whose owner loses access ends failed; the rest of its lines are not sent', async () => {
        const slow = (tag, i) => ({ custom_id: `${tag}-${i}`, body: chatLine('gpt-test', fake.script(fake.marker(`${tag}${i}`), { delayMs: 300 })) });
        // a user disabled mid-job
        const cat = await cp.userSession(gw, 'bt-cat', 'user');
        const lines = Array.from({ length: 8 }, (_, i) => slow('u', i));
        const j1 = cp.ok(await postJsonl(gw, jsonl(lines.map((l) => l.body)), '?concurrency=1', cat), 201);
        await cp.within(5000, async () => (await cp.api.get(gw, `/api/batches/${j1.id}`)).json.request_counts.in_flight === 1, 'a line in flight');
        const before = (await cp.api.get(gw, `/api/batches/${j1.id}`)).json.request_counts.completed;
        cp.ok(await cp.api.put(gw, '/api/users/bt-cat', { status: 'disabled' }), 200);
        const d1 = await waitStatus(gw, j1.id, ['failed']);
        assert.match(d1.error, /disabled or deleted/);
        const o1 = await results(gw, j1.id);
        assert.equal(o1.length, 8);
        /* the line in flight finishes (and maybe one sent in the same instant); no other is sent */
        assert.ok(d1.request_counts.completed <= before + 2, `${before} done before, ${d1.request_counts.completed} after`);
        assert.equal(d1.request_counts.failed, 8 - d1.request_counts.completed);
        assert.ok(o1.every((o) => o.response || o.error.code === 'batch_failed'), JSON.stringify(o1));
        // a key revoked mid-job
        const k = await cp.createKey(gw, { name: 'bt-revoked' });
        const lines2 = Array.from({ length: 8 }, (_, i) => slow('k', i));
        const j2 = cp.ok(await cp.api.post(gw, '/api/batches', { requests: lines2, key_id: k.id, concurrency: 1 }), 201);
        await cp.within(5000, async () => (await cp.api.get(gw, `/api/batches/${j2.id}`)).json.request_counts.in_flight === 1, 'a line in flight');
        cp.ok(await cp.api.post(gw, `/api/keys/${k.id}/revoke`, {}), 200);
        const d2 = await waitStatus(gw, j2.id, ['failed']);
        assert.match(d2.error, /revoked/);
        const o2 = await results(gw, j2.id);
        const sent = lines2.filter((l) => fake.requestsFor(JSON.stringify(l.body).match(/sbt-[a-z0-9]+-[0-9]+/)[0]).length > 0).length;
        assert.ok(sent <= 3, `${sent} lines reached the upstream after a revoke`);
        assert.ok(o2.every((o) => (o.response && o.response.status_code === 200) || (o.error && o.error.code === 'batch_failed')
            || (o.response && o.response.status_code === 401)), JSON.stringify(o2));
    });

    it('serve --takeover: the old process gives its jobs back, the new one finishes them; each line once', async () => {
        const n = 16;
        const marks = [];
        const lines = [];
        for (let i = 0; i < n; i++) {
            const mk = fake.script(fake.marker(`h${i}`), { delayMs: 150 });
            marks.push(mk);
            lines.push({ custom_id: `h-${i}`, body: chatLine('gpt-test', mk) });
        }
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { requests: lines, concurrency: 2 }), 201);
        await cp.within(10000, async () => (await cp.api.get(gw, `/api/batches/${created.id}`)).json.request_counts.completed >= 3, 'some lines done');
        const t = takeover(gw);
        try {
            const old = await gw.waitExit(15000);
            assert.ok(old, `the old gateway did not exit\n${gw.logTail()}\n--- new ---\n${t.err}`);
            assert.equal(gw.exit.code, 0, gw.logTail());
            const done = await waitStatus(gw, created.id, ['completed'], 30000);
            assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0, in_flight: 0, pending: 0 });
            for (const mk of marks) assert.equal(fake.requestsFor(mk).length, 1, `${mk} sent once`);
            assert.deepEqual((await results(gw, created.id)).map((o) => o.custom_id), lines.map((l) => l.custom_id));
            assert.ok(!/sb-batch-[0-9a-f]/.test(gw.err + gw.out + t.err), 'the runner\'s token was logged');
        } finally {
            t.proc.kill('SIGTERM');
            const e = await t.exited;
            assert.equal(e.code, 0, t.err);
            assert.ok(!/ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ThreadSanitizer/.test(t.err), t.err);
        }
        // the next test starts its own gateway on the same database
        gw = await h.startGateway(fake, { dbPath: gw.dbPath, dir: gw.dir, server: { shutdown_timeout_ms: 5000 }, env: { SWITCHBOARD_MASTER_KEY: gw.masterKey } });
    });

    it('a job interrupted by SIGTERM resumes after a restart; each line exactly once', async () => {
        const n = 24;
        const lines = [];
        const marks = [];
        for (let i = 0; i < n; i++) {
            const mk = fake.script(fake.marker(`t${i}`), { delayMs: 150 });
            marks.push(mk);
            lines.push({ custom_id: `t-${i}`, body: chatLine('gpt-test', mk) });
        }
        const created = cp.ok(await cp.api.post(gw, '/api/batches', { requests: lines, concurrency: 2 }), 201);
        await cp.within(10000, async () => (await cp.api.get(gw, `/api/batches/${created.id}`)).json.request_counts.completed >= 4, 'some lines done');
        const stopped = await gw.stop();
        assert.equal(stopped.code, 0, gw.logTail());
        assert.equal(gw.sanitizerReport(), null);
        const mid = h.sql(gw, `select status, completed, failed, in_flight, runner from batches where identifier = '${created.id}'`)[0];
        assert.equal(mid.status, 'in_progress');
        assert.ok(mid.completed >= 4 && mid.completed < n, JSON.stringify(mid));
        assert.equal(mid.in_flight, 0);
        assert.equal(mid.runner, null, 'the lease was given back');

        gw = await h.startGateway(fake, { dbPath: gw.dbPath, dir: gw.dir, server: { shutdown_timeout_ms: 5000 }, env: { SWITCHBOARD_MASTER_KEY: gw.masterKey } });
        const done = await waitStatus(gw, created.id, ['completed'], 30000);
        assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0, in_flight: 0, pending: 0 });
        const out = await results(gw, created.id);
        assert.deepEqual(out.map((o) => o.custom_id), lines.map((l) => l.custom_id));
        for (const mk of marks) assert.equal(fake.requestsFor(mk).length, 1, `${mk} sent once`);
        assert.ok(maxOverlap(marks.map((mk) => fake.requestsFor(mk)[0])) <= 2, 'the job\'s concurrency held');
        await cp.within(5000, () => h.sql(gw, `select count(*) n from usage_logs where request_id like '${created.id}-%'`)[0].n === n, 'usage rows');
        assert.equal(h.sql(gw, `select count(distinct request_id) n from usage_logs where request_id like '${created.id}-%' and status = 'ok'`)[0].n, n);
    });
});
