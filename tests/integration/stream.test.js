// SPDX-License-Identifier: MIT
//
// stream.test.js - `stream: true`: SSE relayed chunk by chunk as the upstream
// sends it (never buffered), `data: [DONE]` at the end, usage always asked of
// the upstream but shown to the client only when it asked, a client that
// goes away cancels the upstream promptly, and an upstream that dies
// mid-stream ends the client's stream with an SSE error event, not a hang.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { FakeUpstream } = require('./lib/fake-upstream');
const h = require('./lib/harness');

const isUsageOnly = (e) => e.json && Array.isArray(e.json.choices) && e.json.choices.length === 0 && e.json.usage;

function assertSseHead(s) {
    assert.equal(s.status, 200, s.raw);
    assert.match(s.headers['content-type'] || '', /^text\/event-stream/);
    assert.ok(s.headers['x-request-id'], 'x-request-id missing on a stream');
    assert.equal(s.headers['x-switchboard-provider'], 'fake');
    assert.equal(s.headers['x-switchboard-model'], 'gpt-test');
}

function assertDoneLast(s) {
    assert.ok(s.events.length > 0, `no SSE events: ${JSON.stringify(s.raw)}`);
    assert.equal(s.events[s.events.length - 1].data, '[DONE]', `last event is not [DONE]: ${JSON.stringify(s.raw.slice(-500))}`);
    assert.equal(s.events.filter((e) => e.data === '[DONE]').length, 1, 'more than one [DONE]');
    assert.match(s.raw, /(^|\n)data: \[DONE\]\n\n$/, 'stream does not end with "data: [DONE]\\n\\n"');
}

describe('streaming', () => {
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

    const PIECES = ['Hel', 'lo', ', wor', 'ld', '!'];

    it('relays a paced stream chunk by chunk and ends with data: [DONE]', async () => {
        const m = fake.script(fake.marker('paced'), {
            chunks: PIECES, chunkDelayMs: 100, usage: { prompt_tokens: 9, completion_tokens: 5 },
        });
        const body = { model: 'gpt-test', stream: true, temperature: 0, messages: [{ role: 'user', content: m }] };
        const s = await h.stream(gw, body);
        assertSseHead(s);
        const end = await s.done;
        assert.ok(end.ended, `stream did not end cleanly: ${end.error} ${end.timedOut ? '(timed out)' : ''}`);
        assertDoneLast(s);
        assert.equal(h.streamText(s.events), PIECES.join(''));

        const up = fake.requestsFor(m)[0];
        const sentFirst = up.sent.find((x) => x.what === 'content:0');
        const sentLast = up.sent.find((x) => x.what === `content:${PIECES.length - 1}`);
        const gotFirst = s.events.find((e) => e.json && h.streamText([e]) === PIECES[0]);
        assert.ok(gotFirst, 'first content chunk not received');
        assert.ok(gotFirst.t < sentLast.t,
            `the first chunk reached the client ${(gotFirst.t - sentFirst.t).toFixed(0)} ms after the fake sent it, `
            + `after the fake sent the last one (${(sentLast.t - sentFirst.t).toFixed(0)} ms): the stream is buffered`);
        // Each content chunk arrives before the fake sends the one after next.
        for (let i = 0; i + 2 < PIECES.length; i++) {
            const got = s.events.find((e) => e.json && h.streamText([e]) === PIECES[i]);
            const next2 = up.sent.find((x) => x.what === `content:${i + 2}`);
            assert.ok(got && got.t < next2.t, `chunk ${i} was held back until after chunk ${i + 2} was sent`);
        }

        // The chunks are the upstream's chat.completion.chunk objects.
        const upChunks = up.sent.filter((x) => x.what !== 'done' && x.what !== 'usage').map((x) => JSON.parse(x.data));
        const got = s.events.filter((e) => e.json).map((e) => e.json);
        assert.equal(got.length, upChunks.length, `client got ${got.length} chunks, upstream sent ${upChunks.length}`);
        got.forEach((c, i) => {
            assert.equal(c.object, 'chat.completion.chunk');
            assert.equal(c.id, upChunks[i].id);
            assert.equal(c.created, upChunks[i].created);
            assert.deepEqual(c.choices, upChunks[i].choices);
        });
        assert.equal(got[got.length - 1].choices[0].finish_reason, 'stop');
    });

    it('asks the upstream for usage but hides the usage-only chunk from a client that did not ask', async () => {
        const m = fake.script(fake.marker('nousage'), { chunks: PIECES, usage: { prompt_tokens: 9, completion_tokens: 5 } });
        const body = { model: 'gpt-test', messages: [{ role: 'user', content: m }], stream: true, max_tokens: 50 };
        const s = await h.stream(gw, body);
        assertSseHead(s);
        const end = await s.done;
        assert.ok(end.ended, `stream did not end cleanly: ${end.error}`);
        assertDoneLast(s);
        assert.equal(h.streamText(s.events), PIECES.join(''));
        assert.equal(s.events.filter(isUsageOnly).length, 0, `client saw a usage chunk it did not ask for: ${s.raw}`);

        const up = fake.requestsFor(m)[0];
        assert.ok(up.json.stream_options && up.json.stream_options.include_usage === true,
            `upstream body lacks stream_options.include_usage=true: ${up.text}`);
        assert.equal(up.json.model, 'gpt-4o-mini');
        const { stream_options: _so, model: _m, ...rest } = up.json;
        assert.deepEqual(rest, { messages: body.messages, stream: true, max_tokens: 50 }, 'other fields changed');
    });

    it('asks for usage even when the client said include_usage: false, and hides it', async () => {
        const m = fake.script(fake.marker('usagefalse'), { chunks: PIECES });
        const body = { model: 'gpt-test', stream: true, stream_options: { include_usage: false }, messages: [{ role: 'user', content: m }] };
        const s = await h.stream(gw, body);
        const end = await s.done;
        assert.ok(end.ended, `stream did not end cleanly: ${end.error}`);
        assertDoneLast(s);
        assert.equal(s.events.filter(isUsageOnly).length, 0, `client saw a usage chunk it did not ask for: ${s.raw}`);
        const up = fake.requestsFor(m)[0];
        assert.equal(up.json.stream_options && up.json.stream_options.include_usage, true, up.text);
    });

    it('shows the usage-only chunk to a client that asked for it', async () => {
        const m = fake.script(fake.marker('usage'), { chunks: PIECES, usage: { prompt_tokens: 9, completion_tokens: 5 } });
        const body = { model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: m }] };
        const raw = JSON.stringify(body);
        const s = await h.stream(gw, raw);
        assertSseHead(s);
        const end = await s.done;
        assert.ok(end.ended, `stream did not end cleanly: ${end.error}`);
        assertDoneLast(s);
        const usage = s.events.filter(isUsageOnly);
        assert.equal(usage.length, 1, `expected one usage chunk: ${s.raw}`);
        assert.equal(usage[0].json.usage.prompt_tokens, 9);
        assert.equal(usage[0].json.usage.completion_tokens, 5);
        assert.equal(usage[0].json.usage.total_tokens, 14);
        assert.equal(s.events[s.events.length - 2], usage[0], 'the usage chunk should come right before [DONE]');
        // Nothing needed changing but the model: the body is passed through.
        const up = fake.requestsFor(m)[0];
        assert.equal(up.text, raw.replace('"gpt-test"', '"gpt-4o-mini"'));
    });

    it('closes the upstream connection promptly when the client disconnects mid-stream', async () => {
        const m = fake.script(fake.marker('cancel'), { chunks: Array(100).fill('tok '), chunkDelayMs: 100 });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] });
        assert.equal(s.status, 200);
        await h.eventually(() => h.streamText(s.events).length > 0, 5000, 10);
        assert.ok(h.streamText(s.events).length > 0, 'no content chunk arrived');
        s.abort();
        const up = await fake.waitForRequest(m);
        await fake.waitClosed(up, 5000).catch(() => {});
        assert.ok(up.closedAt !== null, 'the upstream connection was still open 5 s after the client left');
        assert.ok(up.aborted, 'the upstream response was not cut short');
        const lag = up.closedAt - s.abortedAt;
        assert.ok(lag < 1000, `the upstream connection closed ${lag.toFixed(0)} ms after the client left (limit 1000 ms)`);
        const sent = up.sent.filter((x) => x.what.startsWith('content')).length;
        assert.ok(sent < 50, `the upstream kept streaming (${sent} chunks sent)`);
        // The gateway still serves.
        const r = await h.chat(gw, { model: 'gpt-test', messages: [{ role: 'user', content: fake.marker('after') }] });
        assert.equal(r.status, 200, r.text);
    });

    it('ends the stream with an SSE error event when the upstream dies mid-stream', async () => {
        const m = fake.script(fake.marker('break'), { chunks: ['one', 'two', 'three', 'four'], breakAfter: 2 });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] }, { timeoutMs: 10000 });
        assert.equal(s.status, 200, s.raw);
        const end = await s.done;
        assert.ok(!end.timedOut, `the stream hung (no end within 10 s); got so far: ${JSON.stringify(s.raw)}`);
        assert.ok(end.ended, `the stream was cut (no clean end of the chunked body): ${end.error}; got: ${JSON.stringify(s.raw)}`);
        assert.equal(h.streamText(s.events), 'onetwo');
        const errIdx = s.events.findIndex((e) => e.json && e.json.error);
        assert.ok(errIdx >= 0, `no SSE error event: ${JSON.stringify(s.raw)}`);
        const e = s.events[errIdx].json;
        assert.ok(typeof e.error.message === 'string' && e.error.message.length > 0, JSON.stringify(e));
        assert.ok('type' in e.error && 'code' in e.error, `error event not in the OpenAI shape: ${JSON.stringify(e)}`);
        const lastContent = s.events.findLastIndex((x) => h.streamText([x]).length > 0);
        assert.ok(errIdx > lastContent, 'the error event came before the content');
        assert.ok(s.events.slice(errIdx + 1).every((x) => x.data === '[DONE]'), 'events after the error event');
    });

    it('answers an upstream error before the stream started with that status as JSON', async () => {
        const m = fake.script(fake.marker('streamerr'), {
            status: 429, headers: { 'retry-after': '1' },
            error: { error: { message: 'Rate limit reached for gpt-4o-mini (fake).', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
        });
        const s = await h.stream(gw, { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] });
        await s.done;
        assert.equal(s.status, 429, s.raw);
        assert.match(s.headers['content-type'] || '', /application\/json/);
        const e = h.assertOpenAIError(JSON.parse(s.raw), s.raw);
        assert.match(e.message, /Rate limit reached for gpt-4o-mini \(fake\)\./);
    });

    it('serves many concurrent streams', async () => {
        const n = 20;
        const marks = Array.from({ length: n }, (_, i) => fake.script(fake.marker('conc'), { chunks: [`s${i}-a`, `-b`, `-c`], chunkDelayMs: 20 }));
        const streams = await Promise.all(marks.map((m) => h.stream(gw, { model: 'gpt-test', stream: true, messages: [{ role: 'user', content: m }] })));
        const ends = await Promise.all(streams.map((s) => s.done));
        streams.forEach((s, i) => {
            assert.equal(s.status, 200);
            assert.ok(ends[i].ended, `stream ${i} did not end: ${ends[i].error}`);
            assert.equal(h.streamText(s.events), `s${i}-a-b-c`);
            assertDoneLast(s);
        });
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
