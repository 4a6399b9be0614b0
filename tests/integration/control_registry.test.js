// SPDX-License-Identifier: MIT
//
// control_registry.test.js - the registry half of the control plane
// (DESIGN.md §4): CRUD and validation of providers, models, routes and
// templates over /api against a real SQLite file, the /api error shape (HTTP
// layer errors on /api paths included, while /v1 keeps the OpenAI shape),
// list filters and paging, system (config-file) entries (toggle survives a
// restart, edit/delete refused), reorder atomicity, champion/default
// exclusivity, and provider stats computed from real requests.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');
const { api, assertApiError, ok } = require('./lib/cp');

describe('control plane: registry CRUD', () => {
    let fake; // the config file's upstream (checks the system key)
    let open; // an upstream for API-created providers (any key)
    let gw;
    let first; // the gateway before the restart (its folder holds the database)
    const msg = (content) => [{ role: 'user', content }];
    const openUrl = () => `http://127.0.0.1:${open.port}/v1`;

    before(async () => {
        fake = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        open = await new FakeUpstream().start();
        gw = await h.startGateway(fake);
    });

    after(async () => {
        if (gw) await gw.kill();
        if (first) await first.kill();
        if (fake) await fake.stop();
        if (open) await open.stop();
    });

    // ---- providers ---------------------------------------------------------

    it('providers: create 201, get, list, update, delete 204, then 404', async () => {
        const body = { id: 'crud-p', type: 'openai', base_url: openUrl(), api_key: 'sk-crud-provider-key-9f8e', timeout_ms: 4000 };
        const c = ok(await api.post(gw, '/api/providers', body), 201);
        assert.equal(c.id, 'crud-p');
        assert.equal(c.type, 'openai');
        assert.equal(c.base_url, openUrl());
        assert.equal(c.timeout_ms, 4000);
        assert.equal(c.enabled, true);
        assert.equal(c.is_system, false);
        assert.equal(c.created_by, 'admin-token');
        assert.ok(!('api_key' in c), `the create answer must not echo api_key: ${JSON.stringify(c)}`);
        assert.equal(c.credential.source, 'stored');
        assert.equal(c.credential.masked, 'sk-…9f8e');

        const g = ok(await api.get(gw, '/api/providers/crud-p'), 200);
        assert.deepEqual({ ...g, updated_at: null }, { ...c, updated_at: null });

        const l = ok(await api.get(gw, '/api/providers?limit=500'), 200);
        assert.ok(l.data.some((p) => p.id === 'crud-p'), JSON.stringify(l));

        const u = ok(await api.put(gw, '/api/providers/crud-p', { id: 'crud-p', type: 'openai', base_url: openUrl(), timeout_ms: 5000 }), 200);
        assert.equal(u.timeout_ms, 5000);
        assert.equal(u.credential.masked, 'sk-…9f8e', 'an update without api_key keeps the stored key');

        const d = await api.del(gw, '/api/providers/crud-p');
        assert.equal(d.status, 204, d.text);
        assert.equal(d.text, '', '204 has no body');
        assertApiError(await api.get(gw, '/api/providers/crud-p'), 404, 'not_found');
        assertApiError(await api.del(gw, '/api/providers/crud-p'), 404, 'not_found');
        assertApiError(await api.put(gw, '/api/providers/crud-p', { id: 'crud-p', type: 'openai', base_url: openUrl() }), 404, 'not_found');
        assertApiError(await api.post(gw, '/api/providers/crud-p/toggle'), 404, 'not_found');
    });

    it('providers: duplicate id 409 (field id), identifiers never change (400 field id)', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'dup-p', type: 'openai', base_url: openUrl() }), 201);
        assertApiError(await api.post(gw, '/api/providers', { id: 'dup-p', type: 'openai', base_url: openUrl() }), 409, 'conflict', 'id');
        // The config file's provider id too.
        assertApiError(await api.post(gw, '/api/providers', { id: 'fake', type: 'openai', base_url: openUrl() }), 409, 'conflict', 'id');
        assertApiError(await api.put(gw, '/api/providers/dup-p', { id: 'other', type: 'openai', base_url: openUrl() }), 400, 'bad_request', 'id');
    });

    describe('providers: validation answers 400 naming the field', () => {
        const base = () => ({ id: 'val-p', type: 'openai', base_url: openUrl() });
        const cases = [
            ['an id outside [a-z0-9-]', (b) => ({ ...b, id: 'Bad Id' }), 'id'],
            // PRODUCT BUG (reported): a missing required key answers field null
            // ("id is required", field: null); the contract wants field "id".
            ['no id', (b) => { const { id, ...rest } = b; return rest; }, 'id'],
            ['no type', (b) => { const { type, ...rest } = b; return rest; }, 'type'],
            ['an unknown type', (b) => ({ ...b, type: 'nope' }), 'type'],
            ['a type that is not a string', (b) => ({ ...b, type: 5 }), 'type'],
            ['a base_url that is not http(s)', (b) => ({ ...b, base_url: 'ftp://x/v1' }), 'base_url'],
            ['timeout_ms out of range', (b) => ({ ...b, timeout_ms: -5 }), 'timeout_ms'],
            ['timeout_ms as a string', (b) => ({ ...b, timeout_ms: '5000' }), 'timeout_ms'],
            ['a credential-carrying extra header', (b) => ({ ...b, headers: { authorization: 'Bearer x' } }), 'headers'],
        ];
        for (const [name, mk, field] of cases) {
            it(name, async () => {
                const r = await api.post(gw, '/api/providers', mk(base()));
                const e = assertApiError(r, 400, 'bad_request');
                assert.ok(e.field === field || (e.field || '').startsWith(`${field}.`) || (e.field || '').startsWith(`${field}[`),
                    `field should name ${field}: ${r.text}`);
                assertApiError(await api.get(gw, '/api/providers/val-p'), 404, 'not_found');
            });
        }
        it('an unknown key', async () => {
            const r = await api.post(gw, '/api/providers', { ...base(), bogus_key: 1 });
            const e = assertApiError(r, 400, 'bad_request');
            assert.match(`${e.field} ${e.message}`, /bogus_key/, r.text);
        });
        it('a body that is not JSON, and a JSON array', async () => {
            assertApiError(await api.post(gw, '/api/providers', '{"id":'), 400);
            assertApiError(await api.post(gw, '/api/providers', '[1,2]'), 400, 'bad_request');
            assertApiError(await api.get(gw, '/api/providers/val-p'), 404, 'not_found');
        });
    });

    // ---- models ------------------------------------------------------------

    it('models: create 201 (both paths), get, update, delete 204; 409, 404, 400 with field', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'mp', type: 'openai', base_url: openUrl(), api_key: 'sk-mp-0000' }), 201);
        const m = ok(await api.post(gw, '/api/models', {
            id: 'crud-m', provider: 'mp', upstream_model: 'up-a', context_length: 8000,
            capabilities: { streaming: true, tools: true }, pricing: { input_per_mtok: 1.5, output_per_mtok: 2 },
        }), 201);
        assert.equal(m.id, 'crud-m');
        assert.equal(m.provider, 'mp');
        assert.equal(m.upstream_model, 'up-a');
        assert.equal(m.context_length, 8000);
        assert.equal(m.capabilities.tools, true);
        assert.equal(m.pricing.input_per_mtok, 1.5);
        assert.equal(m.is_global, true);
        const m2 = ok(await api.post(gw, '/api/providers/mp/models', { id: 'crud-m2', upstream_model: 'up-b' }), 201);
        assert.equal(m2.provider, 'mp');
        assertApiError(await api.post(gw, '/api/providers/mp/models', { id: 'crud-m3', provider: 'fake', upstream_model: 'x' }), 400, 'bad_request', 'provider');
        assertApiError(await api.post(gw, '/api/providers/nope/models', { id: 'crud-m3', upstream_model: 'x' }), 404, 'not_found');

        const pm = ok(await api.get(gw, '/api/providers/mp/models'), 200);
        assert.deepEqual(pm.data.map((x) => x.id).sort(), ['crud-m', 'crud-m2']);
        assert.equal(pm.total, 2);

        assertApiError(await api.post(gw, '/api/models', { id: 'crud-m', provider: 'mp', upstream_model: 'z' }), 409, 'conflict', 'id');
        assertApiError(await api.post(gw, '/api/models', { id: 'gpt-test', provider: 'mp', upstream_model: 'z' }), 409, 'conflict', 'id');
        const up = ok(await api.put(gw, '/api/models/crud-m', { id: 'crud-m', provider: 'mp', upstream_model: 'up-c' }), 200);
        assert.equal(up.upstream_model, 'up-c');
        assertApiError(await api.put(gw, '/api/models/crud-m', { id: 'renamed', provider: 'mp', upstream_model: 'up-c' }), 400, 'bad_request', 'id');
        assertApiError(await api.get(gw, '/api/models/none-such'), 404, 'not_found');
        assertApiError(await api.put(gw, '/api/models/none-such', { id: 'none-such', provider: 'mp', upstream_model: 'x' }), 404, 'not_found');

        // The change is served: the data plane sends the new upstream model name.
        const mk = open.marker('modelput');
        const r = await h.chat(gw, { model: 'crud-m', messages: msg(mk) });
        assert.equal(r.status, 200, r.text);
        assert.equal(open.requestsFor(mk)[0].json.model, 'up-c');

        const d = await api.del(gw, '/api/models/crud-m2');
        assert.equal(d.status, 204, d.text);
        assertApiError(await api.get(gw, '/api/models/crud-m2'), 404, 'not_found');
        assertApiError(await api.del(gw, '/api/models/crud-m2'), 404, 'not_found');
    });

    describe('models: validation answers 400 naming the field', () => {
        const cases = [
            // PRODUCT BUG (reported): "provider is required" comes with field null.
            ['no provider', { id: 'vm1', upstream_model: 'x' }, 'provider'],
            ['context_length negative', { id: 'vm2', provider: 'fake', upstream_model: 'x', context_length: -1 }, 'context_length'],
            ['capabilities.tools not a boolean', { id: 'vm3', provider: 'fake', upstream_model: 'x', capabilities: { tools: 'yes' } }, 'capabilities'],
            ['pricing negative', { id: 'vm4', provider: 'fake', upstream_model: 'x', pricing: { input_per_mtok: -1 } }, 'pricing'],
            ['an id outside [a-z0-9-./]', { id: 'v m', provider: 'fake', upstream_model: 'x' }, 'id'],
        ];
        for (const [name, body, field] of cases) {
            it(name, async () => {
                const r = await api.post(gw, '/api/models', body);
                const e = assertApiError(r, 400, 'bad_request');
                assert.ok(e.field === field || (e.field || '').startsWith(`${field}.`), `field should name ${field}: ${r.text}`);
                if (body.id !== 'v m') assertApiError(await api.get(gw, `/api/models/${body.id}`), 404, 'not_found');
            });
        }
        it('an unknown provider is refused (400 field provider, or 404), nothing stored', async () => {
            const r = await api.post(gw, '/api/models', { id: 'vm5', provider: 'no-such-provider', upstream_model: 'x' });
            assert.ok(r.status === 400 || r.status === 404, r.text);
            const e = assertApiError(r, r.status);
            if (r.status === 400) assert.equal(e.field, 'provider', r.text);
            assertApiError(await api.get(gw, '/api/models/vm5'), 404, 'not_found');
        });
    });

    // ---- routes ------------------------------------------------------------

    it('routes: create 201, get, list, update, delete 204; 409, 404, 400 field targets with suggestions', async () => {
        const r = ok(await api.post(gw, '/api/routes', { id: 'crud-r', strategy: 'priority', targets: ['gpt-test', 'fake/gpt-4o-mini'] }), 201);
        assert.deepEqual(r.targets, ['gpt-test', 'fake/gpt-4o-mini']);
        assert.equal(r.strategy, 'priority');
        assert.equal(ok(await api.get(gw, '/api/routes/crud-r'), 200).id, 'crud-r');
        assert.ok(ok(await api.get(gw, '/api/routes'), 200).data.some((x) => x.id === 'crud-r'));
        assertApiError(await api.post(gw, '/api/routes', { id: 'crud-r', strategy: 'priority', targets: ['gpt-test'] }), 409, 'conflict', 'id');
        const bad = assertApiError(await api.post(gw, '/api/routes', { id: 'crud-r2', strategy: 'priority', targets: ['gpt-tset'] }), 400, 'bad_request', 'targets');
        assert.ok(bad.suggestions.includes('gpt-test'), `suggestions should offer gpt-test: ${JSON.stringify(bad)}`);
        assertApiError(await api.post(gw, '/api/routes', { id: 'crud-r2', strategy: 'fastest', targets: ['gpt-test'] }), 400, 'bad_request', 'strategy');

        // Serving a route on /v1 belongs to the routing issue (no router yet):
        // only the registry side is checked here.
        const st = ok(await api.get(gw, '/api/registry/status'), 200);
        assert.ok(st.counts.routes >= 1, JSON.stringify(st));

        const u = ok(await api.put(gw, '/api/routes/crud-r', { id: 'crud-r', strategy: 'priority', targets: ['fake/gpt-4o-mini'] }), 200);
        assert.deepEqual(u.targets, ['fake/gpt-4o-mini']);
        assert.equal((await api.del(gw, '/api/routes/crud-r')).status, 204);
        assertApiError(await api.get(gw, '/api/routes/crud-r'), 404, 'not_found');
        assertApiError(await api.del(gw, '/api/routes/crud-r'), 404, 'not_found');
        assertApiError(await api.put(gw, '/api/routes/crud-r', { id: 'crud-r', strategy: 'priority', targets: ['gpt-test'] }), 404, 'not_found');
    });

    // ---- templates ---------------------------------------------------------

    // NOTE: at the time of writing, src/api/table.c has no /api/templates
    // rows (templates.c is "wip"), and POST /api/templates/{id}/apply has no
    // handler: these tests fail with 404 "no such endpoint" until it lands.
    it('templates: built-ins listed; create 201, 409 on a built-in id, update, delete 204', async () => {
        const l = ok(await api.get(gw, '/api/templates?limit=500'), 200);
        const groq = l.data.find((t) => t.id === 'groq');
        assert.ok(groq, `built-in template groq missing: ${l.text || JSON.stringify(l).slice(0, 500)}`);
        assert.equal(groq.type, 'openai');
        assert.match(groq.base_url, /api\.groq\.com/);
        assertApiError(await api.post(gw, '/api/templates', { id: 'groq', type: 'openai', base_url: openUrl() }), 409, 'conflict', 'id');
        assertApiError(await api.put(gw, '/api/templates/groq', { id: 'groq', type: 'openai', base_url: openUrl() }), 409, 'conflict');
        assertApiError(await api.del(gw, '/api/templates/groq'), 409, 'conflict');

        const t = ok(await api.post(gw, '/api/templates', {
            id: 'my-tpl', name: 'Mine', type: 'openai', base_url: openUrl(),
            options: { timeout_ms: 7000 }, models: [{ id: 'tpl-model', upstream_model: 'tpl-up' }],
        }), 201);
        assert.equal(t.id, 'my-tpl');
        assertApiError(await api.post(gw, '/api/templates', { id: 'my-tpl', type: 'openai', base_url: openUrl() }), 409, 'conflict', 'id');
        assertApiError(await api.post(gw, '/api/templates', { id: 'tpl2', type: 'openai', options: { timeout_ms: -1 } }), 400, 'bad_request');
        assertApiError(await api.post(gw, '/api/templates', { id: 'tpl2', type: 'openai', models: [{ id: 'x' }] }), 400, 'bad_request', 'models');
        const u = ok(await api.put(gw, '/api/templates/my-tpl', { id: 'my-tpl', name: 'Renamed', type: 'openai', base_url: openUrl() }), 200);
        assert.equal(u.name, 'Renamed');
        assertApiError(await api.put(gw, '/api/templates/none', { id: 'none', type: 'openai' }), 404, 'not_found');
        assert.equal((await api.del(gw, '/api/templates/my-tpl')).status, 204);
        assertApiError(await api.del(gw, '/api/templates/my-tpl'), 404, 'not_found');
    });

    it('templates: applying built-in "groq" with base_url overridden creates a working provider', async () => {
        const r = await api.post(gw, '/api/templates/groq/apply', { id: 'my-groq', base_url: openUrl(), api_key: 'gsk_applied_key_5555' });
        assert.equal(r.status, 201, `apply: ${r.status} ${r.text}`);
        const p = ok(await api.get(gw, '/api/providers/my-groq'), 200);
        assert.equal(p.base_url, openUrl());
        assert.equal(p.type, 'openai');
        assert.equal(p.credential.masked, 'gsk_…5555');
        const ms = ok(await api.get(gw, '/api/providers/my-groq/models'), 200);
        assert.ok(ms.data.length >= 1, `apply created no models: ${JSON.stringify(ms)}`);
        const model = ms.data[0];
        const m = open.marker('groq');
        const c = await h.chat(gw, { model: model.id, messages: msg(m) });
        assert.equal(c.status, 200, c.text);
        const up = open.requestsFor(m)[0];
        assert.equal(up.json.model, model.upstream_model);
        assert.equal(up.headers.authorization, 'Bearer gsk_applied_key_5555');
        assertApiError(await api.post(gw, '/api/templates/groq/apply', { id: 'my-groq', base_url: openUrl() }), 409, 'conflict', 'id');
        assertApiError(await api.post(gw, '/api/templates/nope/apply', { id: 'x-groq' }), 404, 'not_found');
    });

    // ---- list filters and paging --------------------------------------------

    it('lists filter (provider, enabled, capability) and page (limit, offset, total)', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'page-p', type: 'openai', base_url: openUrl() }), 201);
        for (let i = 0; i < 7; i++) {
            ok(await api.post(gw, '/api/models', {
                id: `page-m${i}`, provider: 'page-p', upstream_model: `u${i}`,
                capabilities: { embeddings: i === 3 },
            }), 201);
        }
        ok(await api.post(gw, '/api/models/page-m5/toggle', { enabled: false }), 200);
        const all = ok(await api.get(gw, '/api/models?provider=page-p&limit=500'), 200);
        assert.equal(all.total, 7);
        assert.equal(all.data.length, 7);
        const seen = [];
        for (let off = 0; off < 7; off += 3) {
            const pg = ok(await api.get(gw, `/api/models?provider=page-p&limit=3&offset=${off}`), 200);
            assert.equal(pg.total, 7, JSON.stringify(pg));
            assert.equal(pg.limit, 3);
            assert.equal(pg.offset, off);
            assert.equal(pg.data.length, Math.min(3, 7 - off));
            seen.push(...pg.data.map((m) => m.id));
        }
        assert.deepEqual([...seen].sort(), all.data.map((m) => m.id).sort(), 'pages overlap or miss rows');
        assert.equal(new Set(seen).size, 7);
        const beyond = ok(await api.get(gw, '/api/models?provider=page-p&offset=100'), 200);
        assert.equal(beyond.data.length, 0);
        assert.equal(beyond.total, 7);

        const off = ok(await api.get(gw, '/api/models?provider=page-p&enabled=false'), 200);
        assert.deepEqual(off.data.map((m) => m.id), ['page-m5']);
        assert.equal(off.total, 1);
        const on = ok(await api.get(gw, '/api/models?provider=page-p&enabled=true'), 200);
        assert.equal(on.total, 6);
        const emb = ok(await api.get(gw, '/api/models?provider=page-p&capability=embeddings'), 200);
        assert.deepEqual(emb.data.map((m) => m.id), ['page-m3']);

        const pl = ok(await api.get(gw, '/api/providers?limit=2&offset=1'), 200);
        assert.equal(pl.data.length, 2);
        assert.ok(pl.total >= 4, JSON.stringify(pl));

        assertApiError(await api.get(gw, '/api/models?limit=0'), 400, 'bad_request', 'limit');
        assertApiError(await api.get(gw, '/api/models?limit=501'), 400, 'bad_request', 'limit');
        assertApiError(await api.get(gw, '/api/models?limit=abc'), 400, 'bad_request', 'limit');
        assertApiError(await api.get(gw, '/api/models?offset=-1'), 400, 'bad_request', 'offset');
        assertApiError(await api.get(gw, '/api/models?enabled=maybe'), 400, 'bad_request', 'enabled');
        assertApiError(await api.get(gw, '/api/providers?enabled=1'), 400, 'bad_request', 'enabled');
    });

    // ---- system entries --------------------------------------------------------

    it('system (config-file) entries: PUT and DELETE answer 409, toggle works', async () => {
        assertApiError(await api.put(gw, '/api/providers/dead', { id: 'dead', type: 'openai', base_url: openUrl() }), 409, 'conflict');
        assertApiError(await api.del(gw, '/api/providers/dead'), 409, 'conflict');
        assertApiError(await api.put(gw, '/api/models/dead-model', { id: 'dead-model', provider: 'dead', upstream_model: 'y' }), 409, 'conflict');
        assertApiError(await api.del(gw, '/api/models/dead-model'), 409, 'conflict');
        const p = ok(await api.get(gw, '/api/providers/dead'), 200);
        assert.equal(p.is_system, true);
        assert.equal(p.base_url, 'http://127.0.0.1:9/v1', 'a refused PUT changed the entry');
        const m = ok(await api.get(gw, '/api/models/dead-model'), 200);
        assert.equal(m.upstream_model, 'x');
    });

    // ---- reorder, champion, default -----------------------------------------

    it('reorder is atomic: an unknown id changes nothing; a good list sets priorities in order', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'ord-p', type: 'openai', base_url: openUrl() }), 201);
        for (const [id, prio] of [['ord-a', 10], ['ord-b', 20], ['ord-c', 30]]) {
            ok(await api.post(gw, '/api/models', { id, provider: 'ord-p', upstream_model: id, fallback_priority: prio }), 201);
        }
        const prios = async () => Object.fromEntries((ok(await api.get(gw, '/api/models?provider=ord-p'), 200)).data
            .map((m) => [m.id, m.fallback_priority]));
        assert.deepEqual(await prios(), { 'ord-a': 10, 'ord-b': 20, 'ord-c': 30 });
        const bad = assertApiError(await api.post(gw, '/api/models/reorder', { ids: ['ord-c', 'ord-b', 'no-such-model', 'ord-a'] }), 404, 'not_found');
        assert.match(bad.message, /no-such-model/);
        assert.deepEqual(await prios(), { 'ord-a': 10, 'ord-b': 20, 'ord-c': 30 }, 'a failed reorder changed priorities');
        assertApiError(await api.post(gw, '/api/models/reorder', { ids: [] }), 400, 'bad_request', 'ids');
        assertApiError(await api.post(gw, '/api/models/reorder', { ids: 'ord-a' }), 400, 'bad_request', 'ids');
        assertApiError(await api.post(gw, '/api/models/reorder', { ids: ['ord-a', 7] }), 400, 'bad_request', 'ids');
        assert.deepEqual(await prios(), { 'ord-a': 10, 'ord-b': 20, 'ord-c': 30 });

        const r = ok(await api.post(gw, '/api/models/reorder', { ids: ['ord-c', 'ord-a', 'ord-b'] }), 200);
        assert.equal(r.reordered, 3);
        const after = await prios();
        assert.ok(after['ord-c'] < after['ord-a'] && after['ord-a'] < after['ord-b'], JSON.stringify(after));

        ok(await api.put(gw, '/api/models/ord-b/priority', { fallback_priority: -5 }), 200);
        assert.equal((await prios())['ord-b'], -5);
        assertApiError(await api.put(gw, '/api/models/ord-b/priority', { fallback_priority: 'high' }), 400, 'bad_request', 'fallback_priority');
        assertApiError(await api.put(gw, '/api/models/ord-b/priority', {}), 400, 'bad_request', 'fallback_priority');
        assertApiError(await api.put(gw, '/api/models/none/priority', { fallback_priority: 1 }), 404, 'not_found');
    });

    it('champion and default: one per provider, other providers untouched', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'cd-p', type: 'openai', base_url: openUrl() }), 201);
        ok(await api.post(gw, '/api/providers', { id: 'cd-q', type: 'openai', base_url: openUrl() }), 201);
        for (const id of ['cd-a', 'cd-b']) ok(await api.post(gw, '/api/models', { id, provider: 'cd-p', upstream_model: id }), 201);
        ok(await api.post(gw, '/api/models', { id: 'cd-x', provider: 'cd-q', upstream_model: 'cd-x' }), 201);
        const flags = async () => {
            const out = {};
            for (const id of ['cd-a', 'cd-b', 'cd-x']) {
                const m = ok(await api.get(gw, `/api/models/${id}`), 200);
                out[id] = [m.is_champion, m.is_default];
            }
            return out;
        };
        ok(await api.post(gw, '/api/models/cd-x/champion'), 200);
        ok(await api.post(gw, '/api/models/cd-x/default'), 200);
        ok(await api.post(gw, '/api/models/cd-a/champion'), 200);
        ok(await api.post(gw, '/api/models/cd-a/default'), 200);
        assert.deepEqual(await flags(), { 'cd-a': [true, true], 'cd-b': [false, false], 'cd-x': [true, true] });
        ok(await api.post(gw, '/api/models/cd-b/champion'), 200);
        assert.deepEqual(await flags(), { 'cd-a': [false, true], 'cd-b': [true, false], 'cd-x': [true, true] });
        ok(await api.post(gw, '/api/models/cd-b/default'), 200);
        assert.deepEqual(await flags(), { 'cd-a': [false, false], 'cd-b': [true, true], 'cd-x': [true, true] });
        assertApiError(await api.post(gw, '/api/models/none/champion'), 404, 'not_found');
        // System models may take the flags too (the store allows it).
        ok(await api.post(gw, '/api/models/dead-model/champion'), 200);
    });

    // ---- provider stats ------------------------------------------------------

    it('provider stats reflect real requests: requests, errors, p50/p95, tokens, cost', async () => {
        ok(await api.post(gw, '/api/providers', { id: 'st-p', type: 'openai', base_url: openUrl(), api_key: 'sk-stats-1234' }), 201);
        ok(await api.post(gw, '/api/models', {
            id: 'st-m', provider: 'st-p', upstream_model: 'st-up', pricing: { input_per_mtok: 2, output_per_mtok: 10 },
        }), 201);
        const usage = { prompt_tokens: 100, completion_tokens: 50 };
        for (let i = 0; i < 4; i++) {
            const m = open.marker('stats');
            open.script(m, { usage, delayMs: i * 40 });
            const r = await h.chat(gw, { model: 'st-m', messages: msg(m) });
            assert.equal(r.status, 200, r.text);
        }
        const e = open.marker('stats-err');
        open.script(e, { status: 500, error: { message: 'boom', type: 'server_error' } });
        const bad = await h.chat(gw, { model: 'st-m', messages: msg(e) });
        assert.ok(bad.status >= 500, bad.text);

        let row;
        await h.eventually(async () => {
            const s = ok(await api.get(gw, '/api/providers/stats?provider=st-p'), 200);
            row = s.data.find((x) => x.provider === 'st-p');
            return row && row.requests === 5;
        }, 5000, 100);
        assert.ok(row, 'no stats row for st-p');
        assert.equal(row.requests, 5, JSON.stringify(row));
        assert.equal(row.errors, 1, JSON.stringify(row));
        assert.ok(Math.abs(row.error_rate - 0.2) < 1e-9, JSON.stringify(row));
        assert.equal(row.prompt_tokens, 400, JSON.stringify(row));
        assert.equal(row.completion_tokens, 200, JSON.stringify(row));
        // 4 × (100 × 2 + 50 × 10) / 1e6
        assert.ok(Math.abs(row.cost_usd - 0.0028) < 1e-9, `cost_usd ${row.cost_usd}`);
        assert.ok(row.latency_p50_ms > 0 && row.latency_p95_ms >= row.latency_p50_ms, JSON.stringify(row));
        assert.ok(row.latency_p95_ms >= 100, `p95 should see the 120 ms request: ${JSON.stringify(row)}`);
        // Only the asked-for provider, and a window that excludes everything.
        const s2 = ok(await api.get(gw, '/api/providers/stats?provider=st-p'), 200);
        assert.deepEqual(s2.data.map((x) => x.provider), ['st-p']);
        const old = ok(await api.get(gw, '/api/providers/stats?provider=st-p&from=1000&to=2000'), 200);
        const z = old.data.find((x) => x.provider === 'st-p');
        assert.ok(!z || z.requests === 0, JSON.stringify(old));
        assertApiError(await api.get(gw, '/api/providers/stats?from=abc'), 400, 'bad_request', 'from');
        assertApiError(await api.get(gw, '/api/providers/stats?from=2000&to=1000'), 400, 'bad_request');
    });

    // ---- error shapes of the HTTP layer ----------------------------------------

    describe('HTTP-layer errors: /api shape on /api paths, OpenAI shape on /v1', () => {
        const big = 'x'.repeat(1048576 + 10);
        const send = async (raw) => {
            const c = await h.rawConnect(gw);
            await c.write(raw);
            const r = await c.readResponse(10000);
            c.destroy();
            assert.ok(r.status, `no response: ${JSON.stringify(r)}`);
            r.text = r.body.toString('utf8');
            try { r.json = JSON.parse(r.text); } catch (_) { r.json = undefined; }
            return r;
        };
        const bodyReq = (p) => h.httpRequestText('POST', p, {
            host: '127.0.0.1', authorization: `Bearer ${gw.token}`, 'content-type': 'application/json', 'content-length': big.length,
        }, big);
        const headerReq = (p) => h.httpRequestText('GET', p, {
            host: '127.0.0.1', authorization: `Bearer ${gw.token}`, 'x-big': 'y'.repeat(20000),
        });
        const malformed = (p) => `GET ${p} HTTP/1.1\r\nhost: 127.0.0.1\r\nbad header line without colon\r\n\r\n`;
        const unknownRoute = { status: 404 };
        for (const [name, mk, status] of [['413 body too large', bodyReq, 413], ['431 headers too large', headerReq, 431], ['400 malformed request', malformed, 400]]) {
            it(`${name} on /api/providers`, async () => {
                const r = await send(mk('/api/providers'));
                assertApiError(r, status);
            });
            it(`${name} on /v1/chat/completions`, async () => {
                const r = await send(mk('/v1/chat/completions'));
                assert.equal(r.status, status, r.text);
                h.assertOpenAIError(r.json, r.text);
                assert.ok(!('timestamp' in (r.json || {})), `/v1 must keep the OpenAI shape: ${r.text}`);
            });
        }
        it('unknown /api path 404 and wrong method 405, /api shape; /v1 unknown path OpenAI shape', async () => {
            assertApiError(await api.get(gw, '/api/nothing-here'), unknownRoute.status, 'not_found');
            assertApiError(await api.del(gw, '/api/providers'), 405);
            const r = await h.request(gw, { method: 'GET', path: '/v1/nothing-here' });
            assert.equal(r.status, 404, r.text);
            h.assertOpenAIError(r.json, r.text);
        });
    });

    // ---- toggle persistence across a restart (last: it restarts the gateway) -----

    it('a toggled system entry stays toggled across a restart on the same database', async () => {
        const pr = ok(await api.post(gw, '/api/providers/slow/toggle', { enabled: false }), 200);
        assert.equal(pr.enabled, false);
        const mr = ok(await api.post(gw, '/api/models/embed-test/toggle'), 200); // no body: flips
        assert.equal(mr.enabled, false);
        const r0 = await h.chat(gw, { model: 'slow-model', messages: msg(fake.marker('off')) });
        assert.ok(r0.status >= 400, `a model of a disabled provider must not be served: ${r0.status} ${r0.text}`);

        const stop = await gw.stop();
        assert.equal(stop.code, 0, gw.logTail());
        assert.equal(gw.sanitizerReport(), null, gw.sanitizerReport());
        first = gw;
        gw = await h.startGateway(fake, { dbPath: first.dbPath, env: { SWITCHBOARD_MASTER_KEY: first.masterKey } });
        {
            const p = ok(await api.get(gw, '/api/providers/slow'), 200);
            assert.equal(p.enabled, false, 'a disabled system provider came back enabled after a restart');
            assert.equal(p.is_system, true);
            const m = ok(await api.get(gw, '/api/models/embed-test'), 200);
            assert.equal(m.enabled, false, 'a disabled system model came back enabled after a restart');
            // API-created entries survive too, with their stored key.
            const st = ok(await api.get(gw, '/api/providers/st-p'), 200);
            assert.equal(st.credential.masked, 'sk-…1234');
            const mk = open.marker('after-restart');
            const c = await h.chat(gw, { model: 'st-m', messages: msg(mk) });
            assert.equal(c.status, 200, c.text);
            assert.equal(open.requestsFor(mk)[0].headers.authorization, 'Bearer sk-stats-1234');
            const r1 = await h.chat(gw, { model: 'slow-model', messages: msg(fake.marker('still-off')) });
            assert.ok(r1.status >= 400, r1.text);
            // And enabling again works and is served.
            ok(await api.post(gw, '/api/providers/slow/toggle', { enabled: true }), 200);
            const mk2 = fake.marker('on-again');
            const r2 = await h.chat(gw, { model: 'slow-model', messages: msg(mk2) });
            assert.equal(r2.status, 200, r2.text);
        }
    });

    it('stops cleanly (SIGTERM, exit 0, no sanitizer report)', async () => {
        await h.assertCleanStop(gw);
    });
});
