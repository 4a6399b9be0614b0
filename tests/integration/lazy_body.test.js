// SPDX-License-Identifier: MIT
//
// lazy_body.test.js - OpenAI-format request bodies are parsed lazily (issue 9
// item 2): string values keep their JSON escapes while the body goes upstream
// as it came, and are decoded only when a target translates it. So an
// OpenAI-type upstream receives the client's exact bytes for every string
// (escapes included, only "model" rewritten), an Anthropic-type upstream
// receives the decoded text re-encoded, and a model name sent with escapes
// still resolves.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const { FakeAnthropic } = require('./lib/fake-anthropic');
const h = require('./lib/harness');

const ANT_KEY = 'sk-ant-lazy-0123456789abcdef';
// Escapes of every kind: a newline, a quote, a backslash, a non-ASCII letter, an emoji pair.
const ESCAPED = 'line one\\nline \\"two\\" \\\\ caf\\u00e9 \\ud83d\\ude00';
const DECODED = 'line one\nline "two" \\ caf\u00e9 \u{1F600}';

describe('lazy request bodies', () => {
    let A, ant, gw;

    before(async () => {
        A = await new FakeUpstream({ apiKey: h.FAKE_KEY }).start();
        ant = await new FakeAnthropic({ apiKey: ANT_KEY }).start();
        gw = await h.startGateway(A, {
            env: { LAZY_ANT_KEY: ANT_KEY },
            providers: [{ id: 'ant', type: 'anthropic', base_url: ant.url, api_key: 'env:LAZY_ANT_KEY' }],
            models: [{ id: 'claude-lazy', provider: 'ant', upstream_model: 'claude-sonnet-4-20250514' }],
        });
    });

    after(async () => {
        if (gw) await h.assertCleanStop(gw);
        if (A) await A.stop();
        if (ant) await ant.stop();
    });

    /** A raw body (exact bytes) with the escaped prompt and a marker. */
    const body = (model, marker) =>
        `{"model":"${model}","messages":[{"role":"user","content":"${ESCAPED} ${marker}"}],"user":"u\\u00e9"}`;

    it('an OpenAI-type upstream gets every string byte for byte, escapes kept', async () => {
        const m = A.marker('lazy');
        const r = await h.request(gw, { path: '/v1/chat/completions', body: body('gpt-test', m) });
        assert.equal(r.status, 200, r.text);
        const [rec] = A.requestsFor(m);
        const sent = rec.body.toString('utf8');
        assert.ok(sent.includes(`"content":"${ESCAPED} ${m}"`), sent);
        assert.ok(sent.includes('"user":"u\\u00e9"'), sent);
        assert.equal(rec.json.messages[0].content, `${DECODED} ${m}`);
        assert.equal(rec.json.model, 'gpt-4o-mini'); /* the upstream model, rewritten */
    });

    it('a model name sent with escapes resolves like the plain one', async () => {
        const m = A.marker('escmodel');
        const r = await h.request(gw, { path: '/v1/chat/completions', body: body('gpt\\u002dtest', m) });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-switchboard-model'], 'gpt-test');
        assert.equal(A.requestsFor(m).length, 1);
    });

    it('a translating target gets the decoded text', async () => {
        const m = 'sbt-lazy-ant-1';
        const r = await h.request(gw, { path: '/v1/chat/completions', body: body('claude-lazy', m) });
        assert.equal(r.status, 200, r.text);
        const [rec] = ant.requestsFor(m);
        assert.ok(rec, 'the anthropic upstream got the request');
        const content = rec.json.messages[0].content;
        const text = typeof content === 'string' ? content : content.map((p) => p.text).join('');
        assert.equal(text, `${DECODED} ${m}`);
    });

    it('stops cleanly', async () => {
        const r = await h.assertCleanStop(gw);
        gw = null;
        assert.equal(r.code, 0);
    });
});
