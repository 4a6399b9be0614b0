// SPDX-License-Identifier: MIT
//
// fake-ollama.js - a fake Ollama server on 127.0.0.1, written from Ollama's API docs and
// its api/types.go: POST /api/chat (one JSON object, or NDJSON lines ending in a
// "done": true line with done_reason, prompt_eval_count and eval_count; Ollama streams
// unless the body says "stream": false) and POST /api/embed. It checks what Ollama checks
// (model present and pulled, messages well formed, images as base64 strings, tool call
// arguments as objects) and answers errors as {"error": "..."} with the HTTP status; a
// streamed failure is an {"error"} line. No auth unless apiKey is given.
//
// Scenarios (by marker in the prompt): {text, chunks, thinking, tools: [{name, arguments,
// id?}], doneReason, usage, status, message, errorAfter, breakAfter}.
'use strict';

const { FakeServer, writePieces } = require('./fake-http');

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function sendError(res, status, error) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error }));
}

/** The first problem Ollama would report for a chat body, or null. */
function checkChat(j) {
    if (typeof j.model !== 'string' || !j.model) return 'model is required';
    if (!Array.isArray(j.messages)) return 'messages is required';
    for (const m of j.messages) {
        if (typeof m.role !== 'string') return 'json: cannot unmarshal role';
        if (m.content !== undefined && typeof m.content !== 'string') return 'json: cannot unmarshal array into Go struct field Message.messages.content of type string';
        for (const img of m.images || []) {
            if (typeof img !== 'string' || !B64.test(img) || img.length % 4) return 'illegal base64 data at input byte 0';
        }
        for (const tc of m.tool_calls || []) {
            if (typeof tc.function?.arguments !== 'object' || Array.isArray(tc.function.arguments)) {
                return 'json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments';
            }
        }
    }
    if (j.options !== undefined && typeof j.options !== 'object') return 'options must be an object';
    if (j.think !== undefined && ![true, false, 'low', 'medium', 'high'].includes(j.think)) return 'invalid think value';
    return null;
}

class FakeOllama extends FakeServer {
    constructor({ models, apiKey }) {
        super();
        this.models = new Set(models);
        this.apiKey = apiKey;
        this.scenarios = new Map();
        this.seq = 0;
    }

    marker(name) { return `ol-${name}-${++this.seq}`; }

    script(marker, scenario) { this.scenarios.set(marker, scenario); return marker; }

    _scenario(raw) {
        for (const [m, sc] of this.scenarios) if (raw.includes(m)) return sc;
        return { text: 'Hello from Ollama.' };
    }

    handle(rec, res) {
        const req = rec;
        const raw = rec.raw;
        if (this.apiKey && req.headers.authorization !== `Bearer ${this.apiKey}`) return sendError(res, 401, 'unauthorized');
        try { rec.json = JSON.parse(raw); } catch (e) { return sendError(res, 400, e.message); }
        if (req.method === 'POST' && req.url === '/api/chat') return this._chat(res, rec.json, raw);
        if (req.method === 'POST' && req.url === '/api/embed') return this._embed(res, rec.json);
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('404 page not found');
    }

    _line(j, message, extra = {}) {
        return { model: j.model, created_at: new Date().toISOString(), message: { role: 'assistant', content: '', ...message }, done: false, ...extra };
    }

    _final(j, sc) {
        const u = sc.usage || { prompt: 12, eval: 5 };
        const fin = { done: true, done_reason: sc.doneReason || 'stop', total_duration: 1234567, load_duration: 1000, eval_count: u.eval };
        if (u.prompt) fin.prompt_eval_count = u.prompt; // omitempty, as Ollama does
        return fin;
    }

    async _chat(res, j, raw) {
        const problem = checkChat(j);
        if (problem) return sendError(res, 400, problem);
        if (!this.models.has(j.model)) return sendError(res, 404, `model '${j.model}' not found`);
        const sc = this._scenario(raw);
        if (sc.status) return sendError(res, sc.status, sc.message);
        const tools = sc.tools && sc.tools.map((t, i) => ({ ...(t.id ? { id: t.id } : {}), function: { index: i, name: t.name, arguments: t.arguments } }));
        if (j.stream === false) {
            const msg = { content: sc.text ?? (sc.chunks || []).join('') };
            if (sc.thinking) msg.thinking = sc.thinking;
            if (tools) msg.tool_calls = tools;
            res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
            return res.end(JSON.stringify({ ...this._line(j, msg), ...this._final(j, sc) }));
        }
        const lines = [];
        if (sc.thinking) lines.push(this._line(j, { thinking: sc.thinking }));
        for (const c of sc.chunks || (sc.text ? [sc.text] : [])) lines.push(this._line(j, { content: c }));
        if (tools) lines.push(this._line(j, { tool_calls: tools }));
        if (sc.errorAfter !== undefined) lines.splice(sc.errorAfter, lines.length, { error: sc.message });
        else lines.push({ ...this._line(j, {}), ...this._final(j, sc) });
        const buf = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const cut = sc.breakAfter !== undefined ? Math.min(sc.breakAfter, buf.length) : buf.length;
        await writePieces(res, buf, (at) => 29 + (at % 17), 3, cut); // splits lines and UTF-8
        if (sc.breakAfter !== undefined) res.socket.destroy();
        else res.end();
    }

    _embed(res, j) {
        if (!this.models.has(j.model)) return sendError(res, 404, `model '${j.model}' not found`);
        const input = typeof j.input === 'string' ? [j.input] : j.input;
        if (!Array.isArray(input) || input.some((s) => typeof s !== 'string')) return sendError(res, 400, 'invalid input type');
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({
            model: j.model, embeddings: input.map((s) => [s.length / 8, 0.125, -1]), total_duration: 14143917, load_duration: 1019500, prompt_eval_count: input.length * 3,
        }));
    }
}

module.exports = { FakeOllama };
