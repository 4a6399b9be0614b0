// SPDX-License-Identifier: MIT
//
// fake-upstream.js - a faithful, scriptable fake of the OpenAI HTTP API.
//
// It speaks OpenAI's documented wire format: POST /v1/chat/completions
// (chat.completion, or an SSE stream of chat.completion.chunk objects framed
// as `data: {...}\n\n` and ended by `data: [DONE]\n\n`, with the usage-only
// chunk when stream_options.include_usage is true), POST /v1/embeddings (float
// or base64 encoding), GET /v1/models, and OpenAI's error shape
// {"error":{"message","type","param","code"}} for bad keys, bad JSON and
// unknown paths.
//
// Every request is recorded (method, path, headers, the exact raw body bytes,
// timings of what was sent back, when the connection closed) so tests can
// assert on what the gateway really sent. Tests script behaviour per request:
// they register a scenario under a marker (fake.marker()) and put the marker
// anywhere in the request body (a message, or the `user` field); the fake
// finds it in the raw bytes. A scenario is a plain object (see
// tests/integration/README.md) or a function (ctx) => {...} for anything unusual.
//
// It runs in the test's own process, so its clock (performance.now()) is the
// test's clock. `node fake-upstream.js [PORT]` serves it standalone.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MARKER_RE = /sbt-[a-z0-9]+-[0-9]+/;

// ---------------------------------------------------------------------------
// OpenAI wire objects
// ---------------------------------------------------------------------------

function oaiError(message, type, param = null, code = null) {
    return { error: { message, type, param, code } };
}

function countTokens(text) {
    // Deterministic stand-in for a tokenizer: one token per word, at least 1.
    const words = String(text || '').split(/\s+/).filter(Boolean).length;
    return Math.max(1, words);
}

function promptText(json) {
    if (!json || !Array.isArray(json.messages)) return '';
    return json.messages
        .map((m) => (typeof m.content === 'string' ? m.content
            : Array.isArray(m.content) ? m.content.map((p) => p.text || '').join(' ') : ''))
        .join(' ');
}

function usageObject(prompt, completion) {
    return {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: {
            reasoning_tokens: 0, audio_tokens: 0,
            accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
        },
    };
}

function chatCompletion({ id, created, model, content, finishReason, usage }) {
    return {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{
            index: 0,
            message: { role: 'assistant', content, refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: finishReason,
        }],
        usage,
        service_tier: 'default',
        system_fingerprint: 'fp_fake0001',
    };
}

// One chat.completion.chunk. `usage` undefined = key absent (include_usage off),
// null = "usage":null (include_usage on, not the last chunk).
function chatChunk({ id, created, model, delta, finishReason = null, usage, choices }) {
    const c = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: 'fp_fake0001',
        choices: choices !== undefined ? choices
            : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
    if (usage !== undefined) c.usage = usage;
    return c;
}

function embeddingVector(input, dims) {
    // Deterministic floats in [-1, 1) from a hash of the input, exactly
    // representable as float32 (so base64 and float encodings agree).
    const h = crypto.createHash('sha256').update(String(input)).digest();
    const v = [];
    for (let i = 0; i < dims; i++) v.push(Math.fround((h[i % h.length] - 128) / 128));
    return v;
}

function floatsToBase64(v) {
    const b = Buffer.alloc(v.length * 4);
    v.forEach((x, i) => b.writeFloatLE(x, i * 4));
    return b.toString('base64');
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

class FakeUpstream {
    /**
     * opts.apiKey: the key the fake expects in `Authorization: Bearer ...`
     *              (undefined = accept anything, like a local vLLM).
     */
    constructor(opts = {}) {
        this.apiKey = opts.apiKey;
        this.requests = [];          // every request, in arrival order
        this.scenarios = new Map();  // marker -> scenario (object or function)
        this.sockets = new Set();
        this.connections = 0;        // TCP connections accepted so far
        this.server = null;
        this.port = 0;
        this.seq = 0;
        this.waiters = [];
    }

    async start(port = 0) {
        this.server = http.createServer((req, res) => this._onRequest(req, res));
        this.server.keepAliveTimeout = 5000;
        this.server.on('connection', (s) => {
            this.connections++;
            this.sockets.add(s);
            s.on('close', () => this.sockets.delete(s));
        });
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(port, '127.0.0.1', resolve);
        });
        this.port = this.server.address().port;
        this.baseUrl = `http://127.0.0.1:${this.port}/v1`;
        return this;
    }

    async stop() {
        if (!this.server) return;
        for (const s of this.sockets) s.destroy();
        await new Promise((r) => this.server.close(r));
        this.server = null;
    }

    /** A fresh marker; register a scenario for it with script(). */
    marker(name = 't') {
        return `sbt-${String(name).toLowerCase().replace(/[^a-z0-9]/g, '')}-${++this.seq}`;
    }

    /** Registers how to answer requests whose body contains `marker`; returns the marker. */
    script(marker, scenario) {
        this.scenarios.set(marker, scenario);
        return marker;
    }

    /** Recorded requests whose body contains `marker`. */
    requestsFor(marker) {
        return this.requests.filter((r) => r.marker === marker);
    }

    /** Resolves with the first recorded request for `marker` (waits up to timeoutMs). */
    waitForRequest(marker, timeoutMs = 10000) {
        const found = this.requests.find((r) => r.marker === marker);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
            const w = { marker, resolve };
            const t = setTimeout(() => {
                this.waiters = this.waiters.filter((x) => x !== w);
                reject(new Error(`fake upstream: no request with marker ${marker} within ${timeoutMs} ms`));
            }, timeoutMs);
            w.resolve = (r) => { clearTimeout(t); resolve(r); };
            this.waiters.push(w);
        });
    }

    /** Resolves when the recorded request's connection/response has closed (or rejects after timeoutMs). */
    waitClosed(record, timeoutMs = 10000) {
        if (record.closedAt !== null) return Promise.resolve(record);
        return new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(
                `fake upstream: response to ${record.marker || record.path} not closed within ${timeoutMs} ms`)), timeoutMs);
            record._onClose.push(() => { clearTimeout(t); resolve(record); });
        });
    }

    // ---- request handling -------------------------------------------------

    _onRequest(req, res) {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks);
            const text = raw.toString('utf8');
            let json;
            let jsonError = null;
            if (raw.length) {
                try { json = JSON.parse(text); } catch (e) { jsonError = e; }
            }
            const m = MARKER_RE.exec(text);
            const record = {
                seq: this.requests.length,
                method: req.method,
                url: req.url,
                path: req.url.split('?')[0],
                httpVersion: req.httpVersion,
                headers: req.headers,       // lower-cased names
                rawHeaders: req.rawHeaders, // as sent
                body: raw,                  // exact bytes
                text,
                json,
                marker: m ? m[0] : null,
                receivedAt: now(),
                sent: [],                   // [{t, what}] for each write of a stream
                closedAt: null,             // when the response closed (finished or aborted)
                aborted: false,             // closed before we ended the response
                status: null,
                _onClose: [],
            };
            this.requests.push(record);
            res.on('close', () => {
                record.closedAt = now();
                record.aborted = !res.writableFinished;
                for (const f of record._onClose) f();
            });
            for (const w of this.waiters.filter((x) => x.marker === record.marker)) {
                this.waiters = this.waiters.filter((x) => x !== w);
                w.resolve(record);
            }
            this._dispatch(req, res, record, jsonError).catch((e) => {
                if (!res.headersSent) {
                    this._json(res, record, 500, oaiError(`fake upstream bug: ${e.message}`, 'server_error'));
                } else {
                    res.destroy();
                }
            });
        });
    }

    async _dispatch(req, res, record, jsonError) {
        const sc = record.marker ? this.scenarios.get(record.marker) : undefined;
        const ctx = { req, res, record, fake: this, json: record.json, scenario: sc || {} };

        if (typeof sc === 'function') return sc(ctx);
        const s = sc || {};

        if (s.gate) await s.gate(record);
        if (s.delayMs) await sleep(s.delayMs);
        if (res.destroyed) return;
        if (s.destroy) { res.socket.destroy(); return; }

        if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) {
            const given = (req.headers.authorization || '').replace(/^Bearer /, '');
            const shown = given.length > 8 ? `${given.slice(0, 3)}*****${given.slice(-4)}` : given;
            return this._json(res, record, 401, oaiError(
                `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
                'invalid_request_error', null, 'invalid_api_key'));
        }
        if (s.status) {
            return this._json(res, record, s.status,
                s.error || oaiError('The server had an error while processing your request. Sorry about that!', 'server_error'),
                s.headers);
        }
        if (jsonError) {
            return this._json(res, record, 400, oaiError(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
                'invalid_request_error'));
        }

        const key = `${req.method} ${record.path}`;
        if (key === 'POST /v1/chat/completions') {
            const json = record.json || {};
            if (!json.model) return this._json(res, record, 400, oaiError('you must provide a model parameter', 'invalid_request_error'));
            if (!Array.isArray(json.messages)) {
                return this._json(res, record, 400, oaiError("Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter'));
            }
            return json.stream === true ? this._chatStream(res, record, s) : this._chat(res, record, s);
        }
        if (key === 'POST /v1/embeddings') return this._embeddings(res, record, s);
        if (key === 'GET /v1/models') {
            return this._json(res, record, 200, {
                object: 'list',
                data: ['gpt-4o-mini', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created: 1715367049, owned_by: 'system' })),
            });
        }
        return this._json(res, record, 404, oaiError(`Invalid URL (${req.method} ${record.path})`, 'invalid_request_error'));
    }

    _headers(extra) {
        return {
            'x-request-id': `req_${crypto.randomBytes(16).toString('hex')}`,
            'openai-version': '2020-10-01',
            'openai-organization': 'fake-org',
            'openai-processing-ms': '12',
            ...(extra || {}),
        };
    }

    _json(res, record, status, obj, extraHeaders) {
        const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
        record.status = status;
        record.responseBody = body;
        res.writeHead(status, {
            ...this._headers(extraHeaders),
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
        });
        res.end(body);
    }

    _chat(res, record, s) {
        const json = record.json;
        const content = s.reply !== undefined ? s.reply : 'Hello from the fake upstream.';
        const u = s.usage || {};
        const pt = u.prompt_tokens !== undefined ? u.prompt_tokens : countTokens(promptText(json));
        const ct = u.completion_tokens !== undefined ? u.completion_tokens : countTokens(content);
        const body = s.body !== undefined ? s.body : chatCompletion({
            id: `chatcmpl-${crypto.randomBytes(12).toString('hex')}`,
            created: Math.floor(Date.now() / 1000),
            model: json.model,
            content,
            finishReason: s.finishReason || 'stop',
            usage: usageObject(pt, ct),
        });
        return this._json(res, record, 200, body, s.headers);
    }

    async _chatStream(res, record, s) {
        const json = record.json;
        const pieces = s.chunks || ['Hello', ' from', ' the', ' fake', ' upstream.'];
        const delay = s.chunkDelayMs || 0;
        const wantUsage = !!(json.stream_options && json.stream_options.include_usage === true);
        const u = s.usage || {};
        const pt = u.prompt_tokens !== undefined ? u.prompt_tokens : countTokens(promptText(json));
        const ct = u.completion_tokens !== undefined ? u.completion_tokens : countTokens(pieces.join(''));
        const base = {
            id: `chatcmpl-${crypto.randomBytes(12).toString('hex')}`,
            created: Math.floor(Date.now() / 1000),
            model: json.model,
            usage: wantUsage ? null : undefined,
        };
        record.status = 200;
        res.writeHead(200, {
            ...this._headers(s.headers),
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache',
        });
        const send = (what, obj) => {
            if (res.destroyed || res.writableEnded) return false;
            const data = typeof obj === 'string' ? obj : JSON.stringify(obj);
            res.write(`data: ${data}\n\n`);
            record.sent.push({ t: now(), what, data });
            return true;
        };
        // OpenAI's first chunk carries the role and an empty content.
        if (!send('role', chatChunk({ ...base, delta: { role: 'assistant', content: '', refusal: null } }))) return;
        for (let i = 0; i < pieces.length; i++) {
            if (s.breakAfter !== undefined && i === s.breakAfter) {
                // Mid-stream failure: once what was sent is on the wire (and
                // had time to be relayed), the connection just dies.
                await new Promise((r) => res.write('', () => r()));
                await sleep(s.breakDelayMs !== undefined ? s.breakDelayMs : 50);
                record.sent.push({ t: now(), what: 'break' });
                res.socket.destroy();
                return;
            }
            if (delay && i > 0) await sleep(delay);
            if (!send(`content:${i}`, chatChunk({ ...base, delta: { content: pieces[i] } }))) return;
        }
        if (s.hangAfterContent) return; // never finish (the test ends it)
        if (delay) await sleep(delay);
        if (!send('finish', chatChunk({ ...base, delta: {}, finishReason: s.finishReason || 'stop' }))) return;
        if (wantUsage && !send('usage', chatChunk({ ...base, choices: [], usage: usageObject(pt, ct) }))) return;
        if (!send('done', '[DONE]')) return;
        res.end();
    }

    _embeddings(res, record, s) {
        const json = record.json || {};
        if (!json.model) return this._json(res, record, 400, oaiError('you must provide a model parameter', 'invalid_request_error'));
        if (json.input === undefined) {
            return this._json(res, record, 400, oaiError("'input' is a required property", 'invalid_request_error', null, null));
        }
        const inputs = Array.isArray(json.input) && typeof json.input[0] !== 'number' ? json.input : [json.input];
        const dims = json.dimensions || s.dims || 8;
        const b64 = json.encoding_format === 'base64';
        let tokens = 0;
        const data = inputs.map((inp, index) => {
            tokens += Array.isArray(inp) ? inp.length : countTokens(inp);
            const v = embeddingVector(JSON.stringify(inp), dims);
            return { object: 'embedding', index, embedding: b64 ? floatsToBase64(v) : v };
        });
        if (s.usage && s.usage.prompt_tokens !== undefined) tokens = s.usage.prompt_tokens;
        return this._json(res, record, 200, {
            object: 'list',
            data,
            model: json.model,
            usage: { prompt_tokens: tokens, total_tokens: tokens },
        }, s.headers);
    }
}

module.exports = {
    FakeUpstream, embeddingVector, floatsToBase64, usageObject, chatCompletion, chatChunk, oaiError, now, sleep,
};

if (require.main === module) {
    const port = Number(process.argv[2] || 0);
    new FakeUpstream({ apiKey: process.env.FAKE_OPENAI_KEY }).start(port).then((f) => {
        process.stdout.write(`fake OpenAI upstream on ${f.baseUrl}\n`);
    });
}
