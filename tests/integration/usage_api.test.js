// SPDX-License-Identifier: MIT
//
// usage_api.test.js - GET /api/usage over real traffic: requests go through
// the gateway to the fake upstream (plain, streamed with a priced model, and
// to a dead upstream), the usage writer records them, and the report must
// agree with the rows in the SQLite file: counts, errors, tokens, cost,
// exact nearest-rank latency percentiles, TTFT for streamed requests only,
// every grouping, the filters, ISO-8601 windows, the CSV export, and clear
// 400/401 answers. Two users send traffic with their own virtual keys; logged
// in to the console, each sees only their own rows (403 for someone else's),
// while an admin sees everyone's.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const PLAIN = 6; // gpt-test, not streamed, paced by delayMs (admin token)
const STREAMED = 3; // priced, streamed (admin token)
const DEAD = 2; // dead-model: connection refused, 502 (admin token)
const ANN = 2; // gpt-test with ann's virtual key (role user)
const DEV = 1; // gpt-test with dev's virtual key (role developer)
const GPT = PLAIN + ANN + DEV;
const TOTAL = PLAIN + STREAMED + DEAD + ANN + DEV;

/** Logs in; returns the session cookie ("sb_session=..."). */
async function login(gw, username, password) {
    const r = await h.request(gw, { path: '/api/auth/login', auth: false, body: { username, password } });
    assert.equal(r.status, 200, r.text);
    return r.headers['set-cookie'][0].split(';')[0];
}

/** Nearest rank: the smallest value with at least pct% of the values at or below it. */
function rank(values, pct) {
    const v = [...values].sort((a, b) => a - b);
    return v[Math.max(1, Math.ceil((pct * v.length) / 100)) - 1];
}

describe('usage api', () => {
    let fake;
    let gw;
    let from; // a Unix ms just before the first request
    const keyId = {}; // username -> the id of their virtual key
    const cookie = {}; // username -> console session cookie

    const usage = (query, opts = {}) => h.request(gw, { method: 'GET', path: `/api/usage?${query}`, ...opts });
    const win = () => `from=${from}`;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake, {
            models: [{
                id: 'priced', provider: 'fake', upstream_model: 'gpt-4o-mini',
                pricing: { input_per_mtok: 1000000, output_per_mtok: 2000000 }, // $1 and $2 a token
            }],
        });
        from = Date.now() - 1000;
        for (const [user, role] of [['ann', 'user'], ['dev', 'developer'], ['root', 'admin']]) {
            const u = await h.request(gw, { path: '/api/users', body: { username: user, password: `${user}-password-1`, role } });
            assert.equal(u.status, 201, u.text);
            cookie[user] = await login(gw, user, `${user}-password-1`);
        }
        for (const [user, n] of [['ann', ANN], ['dev', DEV]]) {
            const k = await h.request(gw, { path: '/api/keys', body: { name: `${user}-key`, user } });
            assert.equal(k.status, 201, k.text);
            keyId[user] = k.json.id;
            for (let i = 0; i < n; i++) {
                const m = fake.script(fake.marker(user), { usage: { prompt_tokens: 10, completion_tokens: 5 } });
                const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] },
                    { headers: { authorization: `Bearer ${k.json.key}` } });
                assert.equal(r.status, 200, r.text);
            }
        }
        for (let i = 0; i < PLAIN; i++) {
            const m = fake.script(fake.marker('plain'), { delayMs: 15 * i, usage: { prompt_tokens: 10, completion_tokens: 5 } });
            const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: m }] });
            assert.equal(r.status, 200, r.text);
        }
        for (let i = 0; i < STREAMED; i++) {
            const m = fake.script(fake.marker('stream'), {
                chunks: ['a', 'b', 'c'], chunkDelayMs: 5, usage: { prompt_tokens: 3, completion_tokens: 4 },
            });
            const s = await h.stream(gw, { model: 'priced', stream: true, messages: [{ role: 'user', content: m }] });
            assert.equal(s.status, 200);
            const d = await s.done;
            assert.ok(d.ended, 'stream did not end');
        }
        for (let i = 0; i < DEAD; i++) {
            const r = await h.chat(gw, { model: 'dead-model', messages: [{ role: 'user', content: 'x' }] });
            assert.equal(r.status, 502, r.text);
        }
        // The writer commits within ~100 ms; wait for every row.
        const n = await h.eventually(() => {
            const c = h.sql(gw, `SELECT COUNT(*) AS n FROM usage_logs WHERE ts >= ${from}`)[0].n;
            return c === TOTAL ? c : 0;
        }, 10000);
        assert.equal(n, TOTAL, 'usage rows never reached the database');
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    it('groups by model: counts, errors, tokens, cost, TTFT only for streams', async () => {
        const r = await usage(`${win()}&group_by=model`);
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers['content-type'], /application\/json/);
        assert.equal(r.json.group_by, 'model');
        assert.equal(r.json.rows, TOTAL);
        assert.equal(r.json.truncated, false);
        assert.deepEqual(r.json.data.map((g) => g.group), ['dead-model', 'gpt-test', 'priced']);
        const [dead, plain, priced] = r.json.data;
        assert.equal(dead.requests, DEAD);
        assert.equal(dead.errors, DEAD);
        assert.equal(dead.error_rate, 1);
        assert.equal(plain.requests, GPT);
        assert.equal(plain.errors, 0);
        assert.equal(plain.error_rate, 0);
        assert.equal(plain.prompt_tokens, 10 * GPT);
        assert.equal(plain.completion_tokens, 5 * GPT);
        assert.equal(plain.streamed, 0);
        assert.equal(plain.ttft_p50_ms, null, 'TTFT of a group with no stream must be null');
        assert.equal(priced.streamed, STREAMED);
        assert.ok(priced.ttft_p50_ms > 0 && priced.ttft_p95_ms >= priced.ttft_p50_ms, r.text);
        assert.ok(Math.abs(priced.cost_usd - STREAMED * (3 * 1 + 4 * 2)) < 1e-6, `cost ${priced.cost_usd}`);
        assert.ok(Date.parse(plain.first_ts) >= from && Date.parse(plain.last_ts) >= Date.parse(plain.first_ts));
    });

    it('latency percentiles are the exact nearest-rank values of the rows', async () => {
        const rows = h.sql(gw, `SELECT latency_ms FROM usage_logs WHERE ts >= ${from} AND model = 'gpt-test'`);
        const lat = rows.map((x) => x.latency_ms);
        assert.equal(lat.length, GPT);
        const r = await usage(`${win()}&model=gpt-test`);
        assert.equal(r.status, 200, r.text);
        const g = r.json.data[0];
        assert.equal(g.latency_p50_ms, rank(lat, 50));
        assert.equal(g.latency_p95_ms, rank(lat, 95));
        assert.equal(g.latency_p99_ms, rank(lat, 99));
        // The fake paced these 0..75 ms apart: the spread shows in the percentiles.
        assert.ok(g.latency_p95_ms - g.latency_p50_ms >= 20, r.text);
    });

    it('the total, and every grouping sums to it', async () => {
        const t = await usage(win());
        assert.equal(t.status, 200, t.text);
        assert.equal(t.json.group_by, null);
        assert.equal(t.json.data.length, 1);
        assert.equal(t.json.data[0].requests, TOTAL);
        assert.equal(t.json.data[0].errors, DEAD);
        for (const by of ['provider', 'model', 'user', 'key', 'route', 'variant', 'hour', 'day']) {
            const r = await usage(`${win()}&group_by=${by}`);
            assert.equal(r.status, 200, `${by}: ${r.text}`);
            const sum = r.json.data.reduce((a, g) => a + g.requests, 0);
            assert.equal(sum, TOTAL, `group_by=${by}: ${r.text}`);
            // Ordered by key, the rows without one (null) first.
            const keys = r.json.data.map((g) => (g.group === null ? '' : g.group));
            assert.deepEqual(keys, [...keys].sort(), `group_by=${by} is not ordered by key: ${keys}`);
        }
        // The admin token has no user and no virtual key: its rows are the null group.
        const admin = PLAIN + STREAMED + DEAD;
        const u = await usage(`${win()}&group_by=user`);
        assert.deepEqual(u.json.data.map((g) => [g.group, g.requests]), [[null, admin], ['ann', ANN], ['dev', DEV]]);
        const k = await usage(`${win()}&group_by=key`);
        assert.deepEqual(k.json.data.map((g) => [g.group, g.requests]),
            [[null, admin], ...[['ann', ANN], ['dev', DEV]].map(([n, c]) => [keyId[n], c])
                .sort((a, b) => (a[0] < b[0] ? -1 : 1))]);
        const p = await usage(`${win()}&group_by=provider`);
        assert.deepEqual(p.json.data.map((g) => [g.group, g.requests]), [['dead', DEAD], ['fake', GPT + STREAMED]]);
        const hour = await usage(`${win()}&group_by=hour`);
        for (const g of hour.json.data) assert.match(g.group, /^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
    });

    it('filters: provider, model, status, and an ISO-8601 window', async () => {
        const cases = [
            ['provider=dead', DEAD], ['model=priced', STREAMED], ['status=error', DEAD],
            ['status=ok', GPT + STREAMED], ['status=cancelled', 0], ['provider=fake&model=priced', STREAMED],
            ['user=nobody', 0], ['user=ann', ANN], ['route=none', 0], ['variant=b', 0], ['key=999', 0],
        ];
        for (const [q, n] of cases) {
            const r = await usage(`${win()}&${q}`);
            assert.equal(r.status, 200, `${q}: ${r.text}`);
            assert.equal(r.json.data[0].requests, n, `${q}: ${r.text}`);
        }
        const iso = encodeURIComponent(new Date(from).toISOString());
        const r = await usage(`from=${iso}&to=${encodeURIComponent(new Date(Date.now() + 60000).toISOString())}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.data[0].requests, TOTAL);
        // A window that ends before the traffic holds nothing.
        const before = await usage(`from=2020-01-01&to=${from - 1000}`);
        assert.equal(before.status, 200, before.text);
        assert.equal(before.json.data[0].requests, 0);
        assert.equal(before.json.data[0].latency_p50_ms, null);
    });

    it('limit bounds the groups and says so', async () => {
        const r = await usage(`${win()}&group_by=model&limit=2`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.truncated, true);
        assert.match(r.json.note, /more than 2 groups/);
        assert.deepEqual(r.json.data.map((g) => g.group), ['dead-model', 'gpt-test']);
    });

    it('format=csv: text/csv with a header line, one line per group', async () => {
        const r = await usage(`${win()}&group_by=model&format=csv`);
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers['content-type'], /^text\/csv/);
        assert.match(r.headers['content-disposition'], /attachment/);
        const lines = r.text.split('\r\n');
        assert.equal(lines.pop(), '', 'the CSV must end with a line break');
        assert.equal(lines[0], 'model,requests,errors,cancelled,error_rate,latency_p50_ms,latency_p95_ms,'
            + 'latency_p99_ms,streamed,ttft_p50_ms,ttft_p95_ms,prompt_tokens,completion_tokens,cost_usd,first_ts,last_ts');
        assert.equal(lines.length, 4, r.text);
        const plain = lines[2].split(',');
        assert.equal(plain[0], 'gpt-test');
        assert.equal(Number(plain[1]), GPT);
        assert.equal(plain[9], '', 'no TTFT for unstreamed requests');
        const json = await usage(`${win()}&group_by=model`);
        assert.equal(Number(plain[5]), json.json.data[1].latency_p50_ms);
    });

    it('bad queries get a clear 400 in the /api error shape; no token gets 401', async () => {
        const cases = [
            ['group_by=week', 'group_by'], ['status=failed', 'status'], ['from=yesterday', 'from'],
            ['format=xml', 'format'], ['limit=0', 'limit'], ['model=a&model=b', 'model'],
        ];
        for (const [q, field] of cases) {
            const r = await usage(q);
            assert.equal(r.status, 400, `${q}: ${r.text}`);
            assert.equal(r.json.error.field, field, `${q}: ${r.text}`);
            assert.ok(r.json.error.message.length > 0);
        }
        const unknown = await usage('frm=1');
        assert.equal(unknown.status, 400, unknown.text);
        assert.match(unknown.json.error.message, /unknown parameter 'frm'/);
        const anon = await usage(win(), { auth: false });
        assert.equal(anon.status, 401, anon.text);
    });

    it('a user or developer sees only their own usage; an admin session sees all', async () => {
        const as = (user, query) => usage(query, { auth: false, headers: { cookie: cookie[user] } });
        for (const [user, n] of [['ann', ANN], ['dev', DEV]]) {
            const r = await as(user, `${win()}&group_by=user`);
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(r.json.data.map((g) => [g.group, g.requests]), [[user, n]], r.text);
            assert.equal(r.json.rows, n);
            assert.equal(r.json.filters.user, user);
            const m = await as(user, `${win()}&group_by=model`);
            assert.deepEqual(m.json.data.map((g) => g.group), ['gpt-test'], m.text);
            const k = await as(user, `${win()}&group_by=key`);
            assert.deepEqual(k.json.data.map((g) => g.group), [keyId[user]], k.text);
            const own = await as(user, `${win()}&user=${user}`);
            assert.equal(own.json.data[0].requests, n, own.text);
        }
        for (const [user, other] of [['ann', 'dev'], ['dev', 'ann']]) {
            const r = await as(user, `${win()}&user=${other}`);
            assert.equal(r.status, 403, r.text);
            assert.equal(r.json.error.field, 'user', r.text);
        }
        const csv = await as('ann', `${win()}&format=csv`);
        assert.equal(csv.status, 200, csv.text);
        assert.equal(csv.text.split('\r\n')[1].split(',')[1], String(ANN), csv.text);
        const root = await as('root', `${win()}&group_by=user`);
        assert.equal(root.status, 200, root.text);
        assert.equal(root.json.data.reduce((a, g) => a + g.requests, 0), TOTAL);
        const rootAnn = await as('root', `${win()}&user=ann`);
        assert.equal(rootAnn.json.data[0].requests, ANN);
    });

    it('stops cleanly', async () => {
        await h.assertCleanStop(gw);
    });
});
