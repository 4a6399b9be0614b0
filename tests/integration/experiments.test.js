// SPDX-License-Identifier: MIT
//
// experiments.test.js - A/B experiments (issue 7 part 3) through the real
// gateway: /api/experiments CRUD and its strict validation (variants, weights,
// targets that must exist, with suggestions; ids no model or route holds),
// roles (admin writes, staff reads), POST /api/feedback (own requests only,
// a second rating replaces the first), and GET /api/experiments/{id}/results
// computed from usage and feedback rows inserted into the gateway's SQLite
// file, checked against the same statistics computed here independently:
// nearest-rank percentiles, Wilson intervals for error rates, Newcombe's
// interval for their difference, Student t and Welch intervals for ratings.
//
// The last test sends requests through /v1 and expects a sticky variant; it
// needs the proxy to call the assignment (src/router/experiment.h), which
// the proxy wires (src/gateway/proxy.c, choose_variant).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const { api, assertApiError, ok, userSession } = require('./lib/cp');

// ---- the statistics, written independently of the C code ----

const Z = 1.959963984540054;
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
    2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060,
    2.056, 2.052, 2.048, 2.045, 2.042];

function wilson(k, n) {
    const p = k / n;
    const d = 1 + (Z * Z) / n;
    const c = (p + (Z * Z) / (2 * n)) / d;
    const half = (Z * Math.sqrt((p * (1 - p)) / n + (Z * Z) / (4 * n * n))) / d;
    return [Math.max(0, c - half), Math.min(1, c + half)];
}

function newcombe(k1, n1, k2, n2) {
    const [l1, u1] = wilson(k1, n1);
    const [l2, u2] = wilson(k2, n2);
    const p1 = k1 / n1;
    const p2 = k2 / n2;
    const d = p2 - p1;
    return [d - Math.hypot(p2 - l2, u1 - p1), d + Math.hypot(u2 - p2, p1 - l1)];
}

const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v) => v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1);

function tInterval(v) {
    const half = T975[v.length - 2] * Math.sqrt(variance(v) / v.length);
    return [mean(v) - half, mean(v) + half];
}

function welch(a, b) {
    const va = variance(a) / a.length;
    const vb = variance(b) / b.length;
    const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
    const d = mean(b) - mean(a);
    const half = T975[Math.floor(df + 1e-9) - 1] * Math.sqrt(va + vb);
    return [d - half, d + half];
}

function rank(values, pct) {
    const v = [...values].sort((x, y) => x - y);
    return v[Math.max(1, Math.ceil((pct * v.length) / 100)) - 1];
}

function near(actual, want, what) {
    assert.ok(typeof actual === 'number' && Math.abs(actual - want) < 1e-9,
        `${what}: got ${actual}, want ${want}`);
}

function nearPair(actual, want, what) {
    assert.ok(Array.isArray(actual) && actual.length === 2, `${what}: not an interval: ${JSON.stringify(actual)}`);
    near(actual[0], want[0], `${what}[0]`);
    near(actual[1], want[1], `${what}[1]`);
}

// ---- the usage rows the results are computed from ----

const BASE = Math.floor(Date.now() / 1000) * 1000 - 3600000; // rows at BASE + i seconds: the past hour

/** A usage row; variant null = served while paused (unassigned). */
function row(id, i, variant, o = {}) {
    return {
        request_id: id, ts: BASE + i * 1000, user_id: o.user || null, route: o.route || 'ab',
        variant, status: o.status || 'ok', latency: o.latency, ttft: o.ttft === undefined ? -1 : o.ttft,
        streamed: o.ttft === undefined ? 0 : 1, prompt: 10, completion: 5, cost: o.cost || 0.001,
    };
}

const q = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v}'`);

// The id is the start time and a sequence, as the usage writer writes it (DESIGN.md 1.7):
// (ts << 20) + seq, computed by SQLite (it is past JavaScript's 2^53).
function insertRows(gw, rows) {
    const values = rows.map((r, k) => `((${r.ts} << 20) + ${k}, ${[r.request_id, r.ts, r.user_id, null, r.route,
        'fake', 'gpt-test', r.variant, r.status, r.status === 'ok' ? 200 : 502, r.prompt, r.completion, r.cost,
        r.latency, r.ttft, r.streamed, 0, r.status === 'error' ? 'UPSTREAM' : null].map(q).join(', ')})`);
    h.sql(gw, 'INSERT INTO usage_logs(id, request_id, ts, user_id, key_id, route, provider, model, variant,'
        + ' status, http_status, prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms, streamed,'
        + ` fallbacks, error_code) VALUES ${values.join(', ')}`);
}

describe('experiments', () => {
    let fake;
    let gw;
    let ann; // role user
    let dev; // role developer
    const rows = [];
    const ratings = new Map(); // request_id -> rating, as results must see them

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        gw = await h.startGateway(fake);
        ann = await userSession(gw, 'ann', 'user');
        dev = await userSession(gw, 'dev', 'developer');
        ok(await api.post(gw, '/api/routes', { id: 'pair', strategy: 'priority', targets: ['gpt-test'] }), 201);
        // control: 12 requests, 3 errors, 1 cancelled, 6 streamed; ann made the first 4
        for (let i = 0; i < 12; i++) {
            const status = i === 2 || i === 5 || i === 9 ? 'error' : i === 11 ? 'cancelled' : 'ok';
            rows.push(row(`ab-c-${i}`, i, 'control', {
                status, latency: 100 * (i + 1), ttft: i < 6 ? 10 * (i + 1) : undefined, user: i < 4 ? 'ann' : null,
            }));
        }
        // treat: 8 requests, 4 errors, none streamed; dev made the first 2
        for (let i = 0; i < 8; i++) {
            rows.push(row(`ab-t-${i}`, 20 + i, 'treat', {
                status: i % 2 ? 'error' : 'ok', latency: 50 * (i + 1), cost: 0.002, user: i < 2 ? 'dev' : null,
            }));
        }
        rows.push(row('ab-u-0', 30, null, { latency: 5 }), row('ab-u-1', 31, null, { latency: 5 }));
        rows.push(row('ab-g-0', 32, 'gone', { latency: 7 })); // a variant since removed
        rows.push(row('other-0', 33, 'control', { route: 'other', latency: 1 })); // not this experiment
        insertRows(gw, rows);
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (fake) await fake.stop();
    });

    const body = (o = {}) => ({
        id: 'ab', name: 'Control vs route', description: 'does the route help',
        variants: [{ name: 'control', target: 'gpt-test', weight: 50 }, { name: 'treat', target: 'pair', weight: 50 }],
        ...o,
    });

    it('creates, reads, lists, updates and deletes an experiment', async () => {
        const c = ok(await api.post(gw, '/api/experiments', body()), 201);
        assert.equal(c.id, 'ab');
        assert.equal(c.status, 'active');
        assert.deepEqual(c.variants, body().variants);
        assert.ok(!Number.isNaN(Date.parse(c.created_at)), c.created_at);
        assert.deepEqual(ok(await api.get(gw, '/api/experiments/ab'), 200), c);
        const list = ok(await api.get(gw, '/api/experiments'), 200);
        assert.equal(list.total, 1);
        assert.deepEqual(list.data.map((x) => x.id), ['ab']);
        // a throwaway one: weight defaults to 1, a provider/model target resolves, PUT, DELETE
        const t = ok(await api.post(gw, '/api/experiments', {
            id: 'tmp', variants: [{ name: 'only', target: 'fake/gpt-4o-mini' }],
        }), 201);
        assert.equal(t.variants[0].weight, 1);
        assert.equal(t.name, 'tmp');
        const u = ok(await api.put(gw, '/api/experiments/tmp', {
            status: 'paused', variants: [{ name: 'only', target: 'gpt-test', weight: 3 }, { name: 'two', target: 'pair', weight: 0 }],
        }), 200);
        assert.equal(u.status, 'paused');
        assert.deepEqual(u.variants.map((v) => v.weight), [3, 0]);
        assertApiError(await api.put(gw, '/api/experiments/tmp', { id: 'renamed', variants: [{ name: 'x', target: 'gpt-test' }] }),
            400, 'bad_request', 'id');
        assert.equal((await api.del(gw, '/api/experiments/tmp')).status, 204);
        assertApiError(await api.get(gw, '/api/experiments/tmp'), 404, 'not_found');
        assertApiError(await api.del(gw, '/api/experiments/tmp'), 404, 'not_found');
        assertApiError(await api.put(gw, '/api/experiments/nope', body({ id: undefined })), 404, 'not_found');
        const want = 'experiment.create,experiment.create,experiment.update,experiment.delete';
        const audited = () => h.sql(gw, "SELECT action FROM audit_log WHERE target_type = 'experiment' ORDER BY id")
            .map((x) => x.action).join(',');
        await h.eventually(() => audited() === want, 5000); // the writer batches
        assert.equal(audited(), want);
    });

    it('refuses bad bodies with the field at fault', async () => {
        const bad = async (b, status, code, field) => assertApiError(await api.post(gw, '/api/experiments', b), status, code, field);
        const v = (...xs) => xs.map(([name, target, weight]) => ({ name, target, weight }));
        await bad({ id: 'x' }, 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: [] }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a', 'gpt-test', 1], ['a', 'pair', 1]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a', 'gpt-test', -1], ['b', 'pair', 2]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a', 'gpt-test', 0], ['b', 'pair', 0]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a', 'gpt-test', 1.5]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a b', 'gpt-test', 1]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: v(['a'.repeat(32), 'gpt-test', 1]) }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: [{ name: 'a', target: 'gpt-test', share: 1 }] }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', variants: ['gpt-test'] }), 400, 'bad_request', 'variants');
        await bad(body({ id: 'x', extra: true }), 400, 'bad_request', 'extra');
        await bad(body({ id: 'x', status: 'running' }), 400, 'bad_request', 'status');
        await bad(body({ id: 'bad id' }), 400, 'bad_request', 'id');
        await bad(body({ id: 'x'.repeat(64) }), 400, 'bad_request', 'id');
        await bad(body({ id: undefined }), 400, 'bad_request', 'id');
        await bad(body({ id: 'x', variants: Array.from({ length: 17 }, (_, i) => ({ name: `v${i}`, target: 'gpt-test' })) }),
            400, 'bad_request', 'variants');
        // targets must exist now, with suggestions
        const e = await bad(body({ id: 'x', variants: v(['a', 'gpt-tset', 1]) }), 400, 'bad_request', 'variants');
        assert.match(e.message, /gpt-tset/);
        assert.ok(e.suggestions.includes('gpt-test'), JSON.stringify(e.suggestions));
        // clients send the id as `model`: it must not be a model's, a route's, or taken
        await bad(body({ id: 'gpt-test' }), 409, 'conflict', 'id');
        await bad(body({ id: 'pair' }), 409, 'conflict', 'id');
        await bad(body(), 409, 'conflict', 'id');
        await bad('not json', 400);
        assert.equal(ok(await api.get(gw, '/api/experiments'), 200).total, 1, 'nothing bad was stored');
    });

    it('admins write, staff read, users neither', async () => {
        assert.equal((await api.get(gw, '/api/experiments/ab', dev)).status, 200);
        assert.equal((await api.get(gw, '/api/experiments/ab/results', dev)).status, 200);
        assertApiError(await api.post(gw, '/api/experiments', body({ id: 'dev-x' }), dev), 403, 'forbidden');
        assertApiError(await api.del(gw, '/api/experiments/ab', dev), 403, 'forbidden');
        assertApiError(await api.get(gw, '/api/experiments', ann), 403, 'forbidden');
        assertApiError(await api.get(gw, '/api/experiments/ab/results', ann), 403, 'forbidden');
        assertApiError(await api.get(gw, '/api/experiments', null), 401, 'unauthorized');
    });

    it('feedback: own requests only, -1..1, a second rating replaces the first', async () => {
        const fb = (b, as = 'admin') => api.post(gw, '/api/feedback', b, as);
        let r = ok(await fb({ request_id: 'ab-c-0', rating: -1, comment: 'meh' }, ann), 201);
        assert.deepEqual(r, { request_id: 'ab-c-0', rating: -1, comment: 'meh', route: 'ab', variant: 'control', created: true });
        r = ok(await fb({ request_id: 'ab-c-0', rating: 1 }, ann), 200); // changed her mind
        assert.equal(r.created, false);
        ratings.set('ab-c-0', 1);
        const stored = h.sql(gw, "SELECT rating, comment, user_id FROM feedback WHERE request_id = 'ab-c-0'");
        assert.deepEqual(stored, [{ rating: 1, comment: null, user_id: 'ann' }]);
        assertApiError(await fb({ request_id: 'ab-t-0', rating: 1 }, ann), 403, 'forbidden', 'request_id');
        assertApiError(await fb({ request_id: 'ab-c-9', rating: 1 }, dev), 403, 'forbidden', 'request_id');
        ok(await fb({ request_id: 'ab-t-0', rating: -1 }, dev), 201); // dev's own
        ratings.set('ab-t-0', -1);
        ok(await fb({ request_id: 'ab-c-5', rating: 0 }), 201); // an admin rates any request
        ratings.set('ab-c-5', 0);
        assertApiError(await fb({ request_id: 'no-such-request', rating: 1 }), 404, 'not_found', 'request_id');
        for (const rating of [2, -2, 0.5, '1', null]) {
            assertApiError(await fb({ request_id: 'ab-c-1', rating }, ann), 400, 'bad_request', 'rating');
        }
        assertApiError(await fb({ rating: 1 }, ann), 400, 'bad_request', 'request_id');
        assertApiError(await fb({ request_id: 'ab-c-1', rating: 1, stars: 5 }, ann), 400, 'bad_request', 'stars');
        assertApiError(await fb({ request_id: 'ab-c-1', rating: 1, comment: 'x'.repeat(2001) }, ann), 400, 'bad_request', 'comment');
        assertApiError(await fb({ request_id: 'ab-c-1', rating: 1 }, null), 401, 'unauthorized');
    });

    it('results: per variant and against the control, with 95% intervals', async () => {
        // more ratings, straight into the table
        const more = [['ab-c-1', 1], ['ab-c-2', 1], ['ab-c-3', 0], ['ab-c-4', 1], ['ab-c-6', -1],
            ['ab-t-1', 1], ['ab-t-2', -1], ['ab-t-3', 0], ['ab-g-0', 1], ['other-0', -1]];
        h.sql(gw, `INSERT INTO feedback(request_id, rating, user_id, ts) VALUES ${more.map(([id, v]) => `('${id}', ${v}, 'admin-token', 1)`).join(', ')}`);
        for (const [id, v] of more) ratings.set(id, v);

        const r = ok(await api.get(gw, '/api/experiments/ab/results'), 200);
        assert.equal(r.experiment.id, 'ab');
        assert.equal(r.confidence, 0.95);
        assert.equal(r.unassigned_requests, 2);
        assert.deepEqual(r.variants.map((v) => [v.name, v.removed]), [['control', false], ['treat', false], ['gone', true]]);

        const mine = (variant) => rows.filter((x) => x.route === 'ab' && x.variant === variant);
        const rated = (variant) => mine(variant).filter((x) => ratings.has(x.request_id)).map((x) => ratings.get(x.request_id));
        for (const v of r.variants.slice(0, 2)) {
            const rs = mine(v.name);
            const errors = rs.filter((x) => x.status === 'error').length;
            const streamed = rs.filter((x) => x.streamed);
            assert.equal(v.requests, rs.length, v.name);
            assert.equal(v.errors, errors, v.name);
            assert.equal(v.cancelled, rs.filter((x) => x.status === 'cancelled').length);
            near(v.error_rate, errors / rs.length, `${v.name} error_rate`);
            nearPair(v.error_rate_ci, wilson(errors, rs.length), `${v.name} error_rate_ci`);
            assert.equal(v.latency_p50_ms, rank(rs.map((x) => x.latency), 50));
            assert.equal(v.latency_p95_ms, rank(rs.map((x) => x.latency), 95));
            assert.equal(v.ttft_p50_ms, streamed.length ? rank(streamed.map((x) => x.ttft), 50) : null);
            assert.equal(v.prompt_tokens, 10 * rs.length);
            assert.equal(v.completion_tokens, 5 * rs.length);
            near(v.cost_usd, rs.reduce((a, x) => a + x.cost, 0), `${v.name} cost`);
            const rt = rated(v.name);
            assert.equal(v.ratings, rt.length, `${v.name} ratings`);
            near(v.rating_mean, mean(rt), `${v.name} rating_mean`);
            nearPair(v.rating_ci, tInterval(rt), `${v.name} rating_ci`);
        }
        const gone = r.variants[2];
        assert.equal(gone.requests, 1);
        assert.equal(gone.ratings, 1);
        assert.equal(gone.rating_ci, null, 'one rating has no interval');
        assert.equal(gone.target, null);

        assert.deepEqual(r.differences.map((d) => [d.variant, d.baseline]), [['treat', 'control'], ['gone', 'control']]);
        const d = r.differences[0];
        const c = mine('control');
        const t = mine('treat');
        const ce = c.filter((x) => x.status === 'error').length;
        const te = t.filter((x) => x.status === 'error').length;
        near(d.error_rate, te / t.length - ce / c.length, 'error_rate difference');
        nearPair(d.error_rate_ci, newcombe(ce, c.length, te, t.length), 'error_rate difference ci');
        near(d.rating_mean, mean(rated('treat')) - mean(rated('control')), 'rating difference');
        nearPair(d.rating_ci, welch(rated('control'), rated('treat')), 'rating difference ci');
        near(d.latency_p50_ms, rank(t.map((x) => x.latency), 50) - rank(c.map((x) => x.latency), 50), 'p50 difference');
        assert.equal(d.ttft_p50_ms, null, 'treat has no streamed request');
        near(d.cost_per_request_usd, 0.002 - 0.001, 'cost per request difference');
    });

    it('results: a window, strict parameters, unknown experiments', async () => {
        // from the 21st second on: treat's last 7 requests and the others, no control
        const r = ok(await api.get(gw, `/api/experiments/ab/results?from=${BASE + 21000}&to=${new Date(BASE + 60000).toISOString()}`), 200);
        const byName = Object.fromEntries(r.variants.map((v) => [v.name, v]));
        assert.equal(byName.control.requests, 0);
        assert.equal(byName.control.error_rate, null);
        assert.equal(byName.control.error_rate_ci, null);
        assert.equal(byName.control.latency_p50_ms, null);
        assert.equal(byName.treat.requests, 7);
        assert.equal(r.differences[0].error_rate, null, 'nothing to compare against');
        assertApiError(await api.get(gw, '/api/experiments/ab/results?group_by=model'), 400, 'bad_request');
        assertApiError(await api.get(gw, '/api/experiments/ab/results?from=yesterday'), 400, 'bad_request', 'from');
        assertApiError(await api.get(gw, `/api/experiments/ab/results?from=${BASE}&to=${BASE}`), 400, 'bad_request', 'from');
        assertApiError(await api.get(gw, '/api/experiments/nope/results'), 404, 'not_found');
    });

    it('requests through /v1 get a sticky variant, recorded on their usage rows',
        async () => {
            ok(await api.post(gw, '/api/experiments', {
                id: 'sticky', variants: [{ name: 'left', target: 'gpt-test', weight: 1 }, { name: 'right', target: 'pair', weight: 1 }],
            }), 201);
            const seen = new Map(); // conversation -> variant
            for (let round = 0; round < 2; round++) {
                for (let i = 0; i < 8; i++) {
                    const conv = `conv-${i}`;
                    const r = await h.chat(gw, { model: 'sticky', messages: [{ role: 'user', content: 'hi' }] },
                        { headers: { 'x-switchboard-conversation': conv } });
                    assert.equal(r.status, 200, r.text);
                    const v = r.headers['x-switchboard-variant'];
                    assert.ok(v === 'left' || v === 'right', `x-switchboard-variant: ${v}`);
                    if (round === 0) seen.set(conv, v);
                    else assert.equal(v, seen.get(conv), `${conv} changed variant`);
                }
            }
            // the OpenAI `user` field is the key when there is no header
            const u1 = await h.chat(gw, { model: 'sticky', user: 'conv-3', messages: [{ role: 'user', content: 'hi' }] });
            assert.equal(u1.headers['x-switchboard-variant'], seen.get('conv-3'));
            const n = await h.eventually(() => h.sql(gw, "SELECT COUNT(*) AS n FROM usage_logs WHERE route = 'sticky'")[0].n === 17, 10000);
            assert.ok(n, 'usage rows of the experiment');
            const bad = h.sql(gw, "SELECT COUNT(*) AS n FROM usage_logs WHERE route = 'sticky' AND variant NOT IN ('left', 'right')");
            assert.equal(bad[0].n, 0);
        });
});
