// SPDX-License-Identifier: MIT
//
// fake-cohere.js - a fake Cohere API (Chat v2 and Embed v2) on 127.0.0.1, written from
// Cohere's API reference: POST /v2/chat (JSON, or an SSE stream of typed events when
// "stream": true) and POST /v2/embed. It checks what the real API checks (Bearer key,
// JSON body, model, messages and their roles, tool_call_id on tool results, tools in the
// function shape, input_type and texts for embed) and answers errors in Cohere's shape
// ({"id", "message"} with the HTTP status). Every request is recorded, raw bytes included.
//
// Tests pick a scenario by putting a marker (fake.marker()) in the prompt; a scenario is
// {text, chunks, thinking, toolPlan, tools: [{id, name, args: [pieces]}], finish, usage,
// status, message, endError, breakAfter}.
'use strict';

const crypto = require('node:crypto');
const { FakeServer, writePieces } = require('./fake-http');

const FINISH = new Set(['COMPLETE', 'STOP_SEQUENCE', 'MAX_TOKENS', 'TOOL_CALL', 'ERROR', 'TIMEOUT']);
const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

function sendError(res, status, message) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: crypto.randomUUID(), message }));
}

/** The first problem Cohere would report for a chat body, or null. */
function checkChat(j) {
    if (typeof j.model !== 'string' || !j.model) return 'invalid request: model is required';
    if (!Array.isArray(j.messages) || j.messages.length === 0) return 'invalid request: messages must not be empty';
    for (const [i, m] of j.messages.entries()) {
        if (!ROLES.has(m.role)) return `invalid request: messages[${i}].role '${m.role}' is not one of system, user, assistant, tool`;
        if (m.role === 'tool' && typeof m.tool_call_id !== 'string') return `invalid request: messages[${i}] needs tool_call_id`;
        if (m.role === 'assistant' && m.content === undefined && !m.tool_calls) return `invalid request: messages[${i}] needs content or tool_calls`;
        if (m.role === 'assistant' && m.tool_calls && m.tool_calls.some((t) => typeof t.function?.arguments !== 'string')) {
            return `invalid request: messages[${i}].tool_calls[].function.arguments must be a string`;
        }
    }
    for (const t of j.tools || []) {
        if (t.type !== 'function' || typeof t.function?.name !== 'string' || typeof t.function?.parameters !== 'object') {
            return 'invalid request: tools must be {type: "function", function: {name, parameters}}';
        }
    }
    if (j.tool_choice !== undefined && !['REQUIRED', 'NONE'].includes(j.tool_choice)) return "invalid request: tool_choice must be 'REQUIRED' or 'NONE'";
    if (j.stream !== undefined && typeof j.stream !== 'boolean') return 'invalid request: stream must be a boolean';
    for (const k of ['top_p', 'stop', 'max_completion_tokens', 'n']) {
        if (k in j) return `invalid request: unknown field: parameter ${k} is not a valid field`;
    }
    return null;
}

function usage(sc) {
    const u = sc.usage || { input: 7, output: 3 };
    return { billed_units: { input_tokens: u.input, output_tokens: u.output }, tokens: { input_tokens: u.input + 60, output_tokens: u.output } };
}

function wholeResponse(sc) {
    const message = { role: 'assistant' };
    const content = [];
    if (sc.thinking) content.push({ type: 'thinking', thinking: sc.thinking });
    const text = sc.text !== undefined ? sc.text : (sc.chunks || []).join('');
    if (text) content.push({ type: 'text', text });
    if (content.length) message.content = content;
    if (sc.toolPlan) message.tool_plan = sc.toolPlan;
    if (sc.tools) {
        message.tool_calls = sc.tools.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.args.join('') } }));
    }
    return { id: crypto.randomUUID(), finish_reason: sc.finish || (sc.tools ? 'TOOL_CALL' : 'COMPLETE'), message, usage: usage(sc) };
}

/** The SSE events of a scenario, in Cohere's order. */
function streamEvents(sc) {
    const ev = [];
    const push = (type, body) => ev.push({ type, data: { type, ...body } });
    push('message-start', { id: crypto.randomUUID(), delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } });
    let index = 0;
    if (sc.thinking) {
        push('content-start', { index, delta: { message: { content: { type: 'thinking', thinking: '' } } } });
        push('content-delta', { index, delta: { message: { content: { thinking: sc.thinking } } } });
        push('content-end', { index });
        index++;
    }
    for (const p of sc.toolPlan ? [sc.toolPlan.slice(0, 5), sc.toolPlan.slice(5)] : []) {
        push('tool-plan-delta', { delta: { message: { tool_plan: p } } });
    }
    (sc.tools || []).forEach((t, i) => {
        push('tool-call-start', { index: i, delta: { message: { tool_calls: { id: t.id, type: 'function', function: { name: t.name, arguments: '' } } } } });
        for (const a of t.args) push('tool-call-delta', { index: i, delta: { message: { tool_calls: { function: { arguments: a } } } } });
        push('tool-call-end', { index: i });
    });
    const chunks = sc.chunks || (sc.text ? [sc.text] : []);
    if (chunks.length) {
        push('content-start', { index, delta: { message: { content: { type: 'text', text: '' } } } });
        for (const c of chunks) push('content-delta', { index, delta: { message: { content: { text: c } } }, logprobs: null });
        push('content-end', { index });
    }
    const end = { finish_reason: sc.finish || (sc.tools ? 'TOOL_CALL' : 'COMPLETE'), usage: usage(sc) };
    if (sc.endError) Object.assign(end, { finish_reason: 'ERROR', error: sc.endError });
    push('message-end', { delta: end });
    return ev;
}

async function sendStream(res, sc) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const bytes = streamEvents(sc).map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`).join('');
    const buf = Buffer.from(bytes);
    const cut = sc.breakAfter !== undefined ? Math.min(buf.length, sc.breakAfter) : buf.length;
    // Several writes that split events, lines and UTF-8 sequences at arbitrary bytes.
    await writePieces(res, buf, (at) => 37 + (at % 23), 3, cut);
    if (sc.breakAfter !== undefined) res.socket.destroy();
    else res.end();
}

class FakeCohere extends FakeServer {
    constructor({ apiKey, models }) {
        super();
        this.apiKey = apiKey;
        this.models = new Set(models);
        this.scenarios = new Map();
        this.seq = 0;
    }

    marker(name) { return `co-${name}-${++this.seq}`; }

    script(marker, scenario) { this.scenarios.set(marker, scenario); return marker; }

    _scenario(raw) {
        for (const [m, sc] of this.scenarios) if (raw.includes(m)) return sc;
        return { text: 'Hello from Cohere.' };
    }

    handle(rec, res) {
        const req = rec;
        const raw = rec.raw;
        if (req.headers.authorization !== `Bearer ${this.apiKey}`) return sendError(res, 401, 'invalid api token');
        if (!/^application\/json/.test(req.headers['content-type'] || '')) return sendError(res, 400, 'invalid request: content-type must be application/json');
        try { rec.json = JSON.parse(raw); } catch { return sendError(res, 400, 'invalid request: body is not valid JSON'); }
        const j = rec.json;
        if (req.method === 'POST' && req.url === '/v2/chat') return this._chat(res, j, raw);
        if (req.method === 'POST' && req.url === '/v2/embed') return this._embed(res, j);
        return sendError(res, 404, `no route for ${req.method} ${req.url}`);
    }

    async _chat(res, j, raw) {
        const problem = checkChat(j);
        if (problem) return sendError(res, 400, problem);
        if (!this.models.has(j.model)) return sendError(res, 404, `model '${j.model}' not found, make sure the correct model ID was used and that you have access to the model.`);
        const sc = this._scenario(raw);
        if (sc.status) {
            if (sc.status === 429) res.setHeader('retry-after', '7');
            return sendError(res, sc.status, sc.message);
        }
        if (sc.finish && !FINISH.has(sc.finish)) throw new Error(`bad scenario finish ${sc.finish}`);
        if (j.stream) return sendStream(res, sc);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(wholeResponse(sc)));
    }

    _embed(res, j) {
        if (!this.models.has(j.model)) return sendError(res, 404, `model '${j.model}' not found`);
        if (!['search_document', 'search_query', 'classification', 'clustering', 'image'].includes(j.input_type)) {
            return sendError(res, 400, 'invalid request: input_type is required');
        }
        if (!Array.isArray(j.texts) || j.texts.some((t) => typeof t !== 'string')) return sendError(res, 400, 'invalid request: texts must be an array of strings');
        const float = j.texts.map((t) => [t.length / 4, -0.5, 0.25]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
            id: crypto.randomUUID(), embeddings: { float }, texts: j.texts, response_type: 'embeddings_by_type',
            meta: { api_version: { version: '2' }, billed_units: { input_tokens: j.texts.length * 2 } },
        }));
    }
}

module.exports = { FakeCohere };
