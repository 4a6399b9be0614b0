// SPDX-License-Identifier: MIT
//
// hot_reload.test.js - registry changes through /api while /v1 traffic
// flows (DESIGN.md §1, issue 5 part 4): concurrent streaming and plain
// requests never fail while providers and models are added, edited,
// disabled and re-enabled; each change is served to new requests within a
// second; a change that fails validation leaves the old snapshot serving;
// streams in flight finish on the snapshot they started with; and a second
// gateway process on the same SQLite file notices changes made through the
// first (its version poller) within a few seconds.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const { api, assertApiError, ok, within } = require('./lib/cp');

const msg = (content) => [{ role: 'user', content }];

/** Background /v1 traffic on models that stay valid throughout; every failure is kept. */
class Load {
    constructor(gw, fakes, models, workers = 4) {
        Object.assign(this, { gw, fakes, models, workers });
        this.sent = 0;
        this.failures = [];
        this.running = false;
    }

    fakeFor(model) { return this.fakes[model]; }

    async one(i) {
        const model = this.models[i % this.models.length];
        const fake = this.fakeFor(model);
        const m = fake.marker('load');
        const streaming = i % 2 === 0;
        this.sent++;
        try {
            if (streaming) {
                fake.script(m, { chunks: ['a', 'b', 'c'], chunkDelayMs: 5 });
                const s = await h.stream(this.gw, { model, stream: true, messages: msg(m) });
                const d = await s.done;
                const text = h.streamText(s.events);
                const last = s.events[s.events.length - 1];
                if (s.status !== 200 || !d.ended || text !== 'abc' || !last || last.data !== '[DONE]') {
                    this.failures.push(`stream ${model}: status ${s.status} ended=${d.ended} text=${JSON.stringify(text)} raw=${s.raw.slice(0, 300)}`);
                }
            } else {
                const r = await h.chat(this.gw, { model, messages: msg(m) });
                if (r.status !== 200) this.failures.push(`chat ${model}: ${r.status} ${r.text.slice(0, 300)}`);
            }
        } catch (e) {
            this.failures.push(`${streaming ? 'stream' : 'chat'} ${model}: ${e.message}`);
        }
    }

    start() {
        this.running = true;
        let i = 0;
        this.loops = Array.from({ length: this.workers }, async () => {
            while (this.running) await this.one(i++);
        });
    }

    async stop() {
        this.running = false;
        await Promise.all(this.loops);
    }
}

describe('hot reload under load', () => {
    let fake; // the config file's upstream (expects the system key)
    let open; // any key: for API-created providers
    let gw;
    let gw2;
    let load;
    const openUrl = () => `http://127.0.0.1:${open.port}/v1`;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        open = await new FakeUpstream().start();
        gw = await h.startGateway(fake, { workers: 2 });
        ok(await api.post(gw, '/api/providers', { id: 'hr-p', type: 'openai', base_url: openUrl(), api_key: 'sk-hot-reload-0001' }), 201);
        ok(await api.post(gw, '/api/models', { id: 'hr-m', provider: 'hr-p', upstream_model: 'v1' }), 201);
        load = new Load(gw, { 'gpt-test': fake, 'hr-m': open }, ['gpt-test', 'hr-m']);
        load.start();
    });

    after(async () => {
        if (load && load.running) await load.stop();
        if (gw2) await gw2.kill();
        if (gw) await gw.kill();
        if (fake) await fake.stop();
        if (open) await open.stop();
    });

    /** One plain request to model; {status, up} where up is what the upstream saw. */
    const probe = async (model, upstream = open) => {
        const m = upstream.marker('probe');
        const r = await h.chat(gw, { model, messages: msg(m) });
        return { status: r.status, text: r.text, up: upstream.requestsFor(m)[0] };
    };

    it('a provider and a model added through the API are served within 1 s', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'hr-p2', type: 'openai', base_url: openUrl(), api_key: 'sk-hot-reload-0002' }), 201);
        ok(await api.post(gw, '/api/models', { id: 'hr-new', provider: 'hr-p2', upstream_model: 'new-up' }), 201);
        await within(1000, async () => {
            const p = await probe('hr-new');
            return p.status === 200 && p.up && p.up.json.model === 'new-up' && p.up.headers.authorization === 'Bearer sk-hot-reload-0002';
        }, 'a new model was not served');
    });

    it('an edited model is served as edited within 1 s (every worker)', async () => {
        ok(await api.put(gw, '/api/models/hr-m', { id: 'hr-m', provider: 'hr-p', upstream_model: 'v2' }), 200);
        await within(1000, async () => (await probe('hr-m')).up?.json.model === 'v2', 'the edit was not served');
        // Several requests on fresh connections (spread over the workers): all see it.
        const seen = await Promise.all(Array.from({ length: 8 }, () => probe('hr-m')));
        assert.deepEqual(seen.map((p) => p.up && p.up.json.model), Array(8).fill('v2'));
    });

    it('disable and re-enable a model, then its provider: each seen within 1 s', async () => {
        const off = (p) => p.status === 404 || p.status === 503 || p.status === 403;
        ok(await api.post(gw, '/api/models/hr-new/toggle', { enabled: false }), 200);
        await within(1000, async () => off(await probe('hr-new')), 'a disabled model was still served');
        ok(await api.post(gw, '/api/models/hr-new/toggle', { enabled: true }), 200);
        await within(1000, async () => (await probe('hr-new')).status === 200, 'a re-enabled model was not served');
        ok(await api.post(gw, '/api/providers/hr-p2/toggle', { enabled: false }), 200);
        await within(1000, async () => off(await probe('hr-new')), 'a model of a disabled provider was still served');
        ok(await api.post(gw, '/api/providers/hr-p2/toggle', { enabled: true }), 200);
        await within(1000, async () => (await probe('hr-new')).status === 200, 'a re-enabled provider was not served');
        // A provider's key changed through the API: the next requests carry the new one.
        ok(await api.put(gw, '/api/providers/hr-p2/credentials', { api_key: 'sk-hot-reload-0003' }), 200);
        await within(1000, async () => (await probe('hr-new')).up?.headers.authorization === 'Bearer sk-hot-reload-0003',
            'a new credential was not used');
    });

    it('a failing change leaves the old snapshot serving', async () => {
        const before = ok(await api.get(gw, '/api/registry/status'), 200);
        assertApiError(await api.put(gw, '/api/models/hr-m', { id: 'hr-m', provider: 'hr-p', upstream_model: 'v9', context_length: -3 }), 400, 'bad_request');
        assertApiError(await api.put(gw, '/api/models/hr-m', '{"id":"hr-m",'), 400);
        assertApiError(await api.post(gw, '/api/models', { id: 'hr-m', provider: 'hr-p', upstream_model: 'v9' }), 409, 'conflict');
        assertApiError(await api.post(gw, '/api/models/reorder', { ids: ['hr-m', 'nope'] }), 404, 'not_found');
        const after = ok(await api.get(gw, '/api/registry/status'), 200);
        assert.equal(after.snapshot_version, before.snapshot_version, 'a failed change published a snapshot');
        assert.equal(after.registry_version, before.registry_version, 'a failed change bumped the registry version');
        const seen = await Promise.all(Array.from({ length: 4 }, () => probe('hr-m')));
        assert.deepEqual(seen.map((p) => [p.status, p.up && p.up.json.model]), Array(4).fill([200, 'v2']));
        assert.equal(ok(await api.get(gw, '/api/models/hr-m'), 200).upstream_model, 'v2');
    });

    it('streams in flight finish on the snapshot they started with', async () => {
        const m = open.marker('inflight');
        open.script(m, { chunks: ['one ', 'two ', 'three ', 'four'], chunkDelayMs: 150 });
        const s = await h.stream(gw, { model: 'hr-new', stream: true, messages: msg(m) });
        assert.equal(s.status, 200);
        await h.eventually(() => s.events.length >= 2, 3000, 10);
        // Mid-stream: edit the model and disable its provider.
        ok(await api.put(gw, '/api/models/hr-new', { id: 'hr-new', provider: 'hr-p2', upstream_model: 'newer-up' }), 200);
        ok(await api.post(gw, '/api/providers/hr-p2/toggle', { enabled: false }), 200);
        const d = await s.done;
        assert.ok(d.ended, `the stream was cut: ${JSON.stringify(d)} ${s.raw}`);
        assert.equal(h.streamText(s.events), 'one two three four');
        assert.equal(s.events[s.events.length - 1].data, '[DONE]');
        assert.equal(open.requestsFor(m)[0].json.model, 'new-up', 'the stream started on the old snapshot');
        ok(await api.post(gw, '/api/providers/hr-p2/toggle', { enabled: true }), 200);
        await within(1000, async () => (await probe('hr-new')).up?.json.model === 'newer-up', 'the edit was not served after the stream');
    });

    it('a second gateway on the same database notices changes within a few seconds', async () => {
        gw2 = await h.startGateway(fake, { dbPath: gw.dbPath, env: { SWITCHBOARD_MASTER_KEY: gw.masterKey }, workers: 1 });
        const probe2 = async (model) => {
            const m = open.marker('gw2');
            const r = await h.chat(gw2, { model, messages: msg(m) });
            return { status: r.status, up: open.requestsFor(m)[0] };
        };
        // It starts from the database: API-created entries and their stored key.
        const p0 = await probe2('hr-m');
        assert.equal(p0.status, 200);
        assert.equal(p0.up.headers.authorization, 'Bearer sk-hot-reload-0001');

        // A change through the first gateway...
        ok(await api.post(gw, '/api/models', { id: 'hr-late', provider: 'hr-p', upstream_model: 'late-up' }), 201);
        const ms = await within(5000, async () => (await probe2('hr-late')).status === 200, 'the second gateway never served a model added through the first');
        // ...and one through the second, seen by the first.
        ok(await api.put(gw2, '/api/models/hr-late', { id: 'hr-late', provider: 'hr-p', upstream_model: 'late-up-2' }), 200);
        await within(5000, async () => (await probe('hr-late')).up?.json.model === 'late-up-2', 'the first gateway never saw an edit made through the second');
        ok(await api.post(gw, '/api/models/hr-late/toggle', { enabled: false }), 200);
        await within(5000, async () => (await probe2('hr-late')).status === 404, 'the second gateway kept serving a model disabled through the first');
        const st1 = ok(await api.get(gw, '/api/registry/status'), 200);
        await within(5000, async () => ok(await api.get(gw2, '/api/registry/status'), 200).registry_version === st1.registry_version,
            'the registry versions of the two gateways never met');
        assert.ok(ms <= 5000, `the second gateway took ${ms} ms`);
        const r = await h.assertCleanStop(gw2);
        assert.equal(r.code, 0);
    });

    it('no request that should have succeeded failed during the changes', async () => {
        await load.stop();
        assert.ok(load.sent >= 40, `too little traffic to prove anything: ${load.sent} requests`);
        assert.deepEqual(load.failures, [], `${load.failures.length} of ${load.sent} requests failed`);
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
