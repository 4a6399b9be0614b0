// SPDX-License-Identifier: MIT
//
// fake-anthropic.js - a fake Anthropic Messages API (POST /v1/messages and
// /v1/messages/count_tokens) on 127.0.0.1, written from Anthropic's
// documented wire format.
//
// It checks what the real API checks and answers like it when something is
// wrong: x-api-key (401 authentication_error), anthropic-version (400),
// model / max_tokens / messages (400 invalid_request_error), the thinking
// rules (budget_tokens >= 1024 and < max_tokens, no temperature other than
// 1, no forced tool_choice) and unsigned thinking blocks sent back (400).
// Errors have Anthropic's shape {"type":"error","error":{"type","message"}}.
//
// Streams are SSE with `event:` lines, message_start, a ping, content
// blocks (thinking with signature_delta, text, tool_use with
// input_json_delta fragments), message_delta with usage, message_stop,
// written in several TCP writes with small delays. Every request is recorded
// (headers, raw body, parsed JSON). Behaviour is scripted per request by a
// marker string that appears anywhere in the request body.
'use strict';

const { FakeServer, sleep } = require('./fake-http');

let seq = 0;

function errorBody(type, message) {
    return JSON.stringify({ type: 'error', error: { type, message }, request_id: `req_fake_${++seq}` });
}

class FakeAnthropic extends FakeServer {
    constructor({ apiKey }) {
        super();
        this.apiKey = apiKey;
        this.scripts = new Map();
    }

    /** A fresh marker for one test's request. */
    marker(name) { return `mk-${name}-${++seq}`; }

    /**
     * What to answer to a request whose body contains marker:
     *   blocks: [{type:'text',text}|{type:'thinking',thinking,signature}|
     *            {type:'redacted_thinking',data}|{type:'tool_use',id,name,input}]
     *   stopReason, usage {input_tokens, output_tokens, cache_read_input_tokens, ...}
     *   error {status, type, message, headers}     answer with an error
     *   streamError {afterBlocks, type, message}   an error event mid-stream
     *   truncateAfterBlocks                        close the stream early
     */
    script(marker, what) {
        this.scripts.set(marker, what);
        return marker;
    }

    handle(req, res) { // req: the record (method, url, headers, raw)
        const raw = req.raw;
        let json = null;
        try { json = JSON.parse(raw); } catch (_) { /* checked below */ }
        req.json = json;
        const fail = (status, type, message, headers = {}) => {
            res.writeHead(status, { 'content-type': 'application/json', ...headers });
            res.end(errorBody(type, message));
        };
        if (req.method === 'POST' && req.url === '/v1/messages/count_tokens') return this.countTokens(req, json, raw, fail, res);
        if (req.method !== 'POST' || req.url !== '/v1/messages') return fail(404, 'not_found_error', 'Not found');
        if (req.headers['x-api-key'] !== this.apiKey) return fail(401, 'authentication_error', 'invalid x-api-key');
        if (!req.headers['anthropic-version']) return fail(400, 'invalid_request_error', 'anthropic-version: header is required');
        if (!json || typeof json !== 'object') return fail(400, 'invalid_request_error', 'body: invalid JSON');
        const why = this.validate(json);
        if (why) return fail(400, 'invalid_request_error', why);
        let script = null;
        for (const [k, v] of this.scripts) if (raw.includes(k)) script = v;
        script = script || { blocks: [{ type: 'text', text: 'ok' }] };
        if (script.error) {
            const e = script.error;
            return fail(e.status, e.type, e.message, e.headers);
        }
        const msg = this.message(json, script);
        if (json.stream) return this.stream(res, msg, script);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(msg));
    }

    /**
     * POST /v1/messages/count_tokens: same auth and version checks; model and
     * messages required, max_tokens and stream are not parameters here. The
     * count is script.inputTokens, else a stand-in: one token per 3 bytes of
     * the body (the real count comes from Anthropic's tokenizer).
     */
    countTokens(req, json, raw, fail, res) {
        if (req.headers['x-api-key'] !== this.apiKey) return fail(401, 'authentication_error', 'invalid x-api-key');
        if (!req.headers['anthropic-version']) return fail(400, 'invalid_request_error', 'anthropic-version: header is required');
        if (!json || typeof json.model !== 'string' || !json.model) return fail(400, 'invalid_request_error', 'model: Field required');
        if (!Array.isArray(json.messages) || json.messages.length === 0) return fail(400, 'invalid_request_error', 'messages: Field required');
        for (const k of ['max_tokens', 'stream']) if (k in json) return fail(400, 'invalid_request_error', `${k}: Extra inputs are not permitted`);
        let script = null;
        for (const [k, v] of this.scripts) if (raw.includes(k)) script = v;
        if (script && script.error) return fail(script.error.status, script.error.type, script.error.message, script.error.headers);
        const n = script && Number.isInteger(script.inputTokens) ? script.inputTokens : Math.ceil(raw.length / 3);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ input_tokens: n }));
    }

    /** The checks the real API makes that matter to a translator; a reason, or null. */
    validate(b) {
        if (typeof b.model !== 'string' || !b.model) return 'model: Field required';
        if (!Number.isInteger(b.max_tokens) || b.max_tokens < 1) return 'max_tokens: Field required';
        if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: Field required';
        for (const [i, m] of b.messages.entries()) {
            if (m.role !== 'user' && m.role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
            if (!Array.isArray(m.content)) continue;
            for (const blk of m.content) {
                if (blk.type === 'thinking' && !blk.signature) return `messages.${i}.content: thinking block needs a signature`;
                if (blk.type === 'tool_result' && m.role !== 'user') return `messages.${i}: tool_result blocks belong in user turns`;
            }
        }
        if (b.thinking && b.thinking.type === 'enabled') {
            const t = b.thinking.budget_tokens;
            if (!Number.isInteger(t) || t < 1024) return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
            if (t >= b.max_tokens) return '`max_tokens` must be greater than `thinking.budget_tokens`';
            if (b.temperature !== undefined && b.temperature !== 1) return '`temperature` may only be set to 1 when thinking is enabled';
            if (b.tool_choice && (b.tool_choice.type === 'any' || b.tool_choice.type === 'tool')) return 'Thinking may not be enabled when tool_choice forces tool use';
        }
        return null;
    }

    message(req, script) {
        const usage = { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...(script.usage || {}) };
        const content = script.blocks || [];
        const stop = script.stopReason || (content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
        return { id: `msg_fake_${++seq}`, type: 'message', role: 'assistant', model: req.model, content, stop_reason: stop, stop_sequence: null, usage };
    }

    async stream(res, msg, script) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const send = async (type, data) => {
            // Split each event in two writes to make the gateway reassemble it.
            const text = `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
            const cut = Math.floor(text.length / 2);
            res.write(text.slice(0, cut));
            await sleep(2);
            res.write(text.slice(cut));
            await sleep(3);
        };
        const startUsage = { ...msg.usage, output_tokens: 1 };
        await send('message_start', { message: { ...msg, content: [], stop_reason: null, usage: startUsage } });
        await send('ping', {});
        for (const [index, b] of msg.content.entries()) {
            if (script.streamError && script.streamError.afterBlocks === index) {
                await send('error', { error: { type: script.streamError.type, message: script.streamError.message } });
                return res.end();
            }
            if (script.truncateAfterBlocks === index) return res.destroy();
            await this.block(send, index, b);
        }
        await send('message_delta', { delta: { stop_reason: msg.stop_reason, stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } });
        await send('message_stop', {});
        res.end();
    }

    async block(send, index, b) {
        const pieces = (s, n) => { const out = []; for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n)); return out; };
        if (b.type === 'text') {
            await send('content_block_start', { index, content_block: { type: 'text', text: '' } });
            for (const p of pieces(b.text, 4)) await send('content_block_delta', { index, delta: { type: 'text_delta', text: p } });
        } else if (b.type === 'thinking') {
            await send('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
            for (const p of pieces(b.thinking, 5)) await send('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p } });
            await send('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } });
        } else if (b.type === 'redacted_thinking') {
            await send('content_block_start', { index, content_block: b });
        } else if (b.type === 'tool_use') {
            await send('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
            await send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
            for (const p of pieces(JSON.stringify(b.input), 7)) await send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } });
        }
        await send('content_block_stop', { index });
    }
}

module.exports = { FakeAnthropic, errorBody };
