// SPDX-License-Identifier: MIT
//
// fake-tgi.js - a fake Hugging Face Text Generation Inference server,
// written from TGI's OpenAPI document (docs/openapi.json) and router:
//   POST /generate         {"inputs", "parameters"} -> {"generated_text", "details"}
//   POST /generate_stream  SSE, one `data:{"index","token","generated_text","details"}`
//                          per token, details (with input_length) on the last
// with Bearer auth (as Inference Endpoints require). It validates as TGI's
// router does (422 `{"error","error_type":"validation"}` for temperature
// <= 0, top_p outside (0, 1), max_new_tokens 0, a prompt plus
// max_new_tokens over the context), answers 429 overloaded for the marker
// "overload", breaks a stream for "break-stream", sends an error event for
// "fail-midway", and records every request.
'use strict';

const { FakeServer } = require('./fake-http');

const CONTEXT = 4096;

function tgiError(res, status, error, errorType) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(errorType ? { error, error_type: errorType } : { error }));
}

/** TGI's own checks on parameters, in its words (router/src/validation.rs). */
function validate(body) {
    const p = body.parameters || {};
    if (typeof body.inputs !== 'string' || body.inputs.length === 0) return '`inputs` cannot be empty';
    if (p.temperature !== undefined && !(p.temperature > 0)) return '`temperature` must be strictly positive';
    if (p.top_p !== undefined && !(p.top_p > 0 && p.top_p < 1)) return '`top_p` must be > 0.0 and < 1.0';
    if (p.max_new_tokens !== undefined && !(p.max_new_tokens > 0)) return '`max_new_tokens` must be strictly positive';
    const inputTokens = body.inputs.split(/\s+/).length;
    const maxNew = p.max_new_tokens ?? 100;
    if (inputTokens + maxNew > CONTEXT) {
        return `\`inputs\` tokens + \`max_new_tokens\` must be <= ${CONTEXT}. Given: ${inputTokens} \`inputs\` tokens and ${maxNew} \`max_new_tokens\``;
    }
    return null;
}

class FakeTGI extends FakeServer {
    constructor({ token }) {
        super();
        this.token = token;
    }

    handle(rec, res) {
        rec.path = rec.url; // TGI routes on the whole target, query included
        try { rec.json = JSON.parse(rec.raw); } catch (_) { /* recorded raw */ }
        this.route(rec, res);
    }

    route(rec, res) {
        if (rec.headers.authorization !== `Bearer ${this.token}`) {
            return tgiError(res, 401, 'Invalid credentials in Authorization header');
        }
        if (rec.method !== 'POST' || !['/generate', '/generate_stream'].includes(rec.path)) {
            return tgiError(res, 404, 'Not Found');
        }
        if (!rec.json) return tgiError(res, 422, 'Failed to deserialize the JSON body', 'validation');
        const bad = validate(rec.json);
        if (bad) return tgiError(res, 422, `Input validation error: ${bad}`, 'validation');
        if (rec.json.inputs.includes('overload')) return tgiError(res, 429, 'Model is overloaded', 'overloaded');
        const tokens = this.tokens(rec.json);
        if (rec.path === '/generate') return this.whole(res, rec.json, tokens);
        return this.stream(res, rec.json, tokens);
    }

    /** The "model": echoes the last user turn of the ChatML prompt, word by word. */
    tokens(body) {
        const turns = body.inputs.split('<|im_start|>user\n');
        const last = turns[turns.length - 1].split('<|im_end|>')[0];
        let words = `You said: ${last}`.match(/\S+\s*/gu);
        let finish = 'eos_token';
        const max = body.parameters?.max_new_tokens;
        if (max !== undefined && words.length > max) { words = words.slice(0, max); finish = 'length'; }
        return { words, finish, inputLength: body.inputs.split(/\s+/).length };
    }

    whole(res, body, t) {
        const out = { generated_text: t.words.join('') };
        if (body.parameters?.details) {
            out.details = { finish_reason: t.finish, generated_tokens: t.words.length, seed: null, prefill: [],
                tokens: t.words.map((w, i) => ({ id: i, text: w, logprob: -0.5, special: false })) };
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
    }

    stream(res, body, t) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const events = t.words.map((w, i) => ({ index: i + 1, token: { id: 100 + i, text: w, logprob: -0.5, special: false }, generated_text: null, details: null, top_tokens: null }));
        if (t.finish === 'eos_token') {
            events.push({ index: events.length + 1, token: { id: 2, text: '</s>', logprob: -0.01, special: true }, generated_text: null, details: null, top_tokens: null });
        }
        const last = events[events.length - 1];
        last.generated_text = t.words.join('');
        last.details = { finish_reason: t.finish, generated_tokens: events.length, seed: null, input_length: t.inputLength };
        const breakAt = body.inputs.includes('break-stream') ? 2 : body.inputs.includes('fail-midway') ? -2 : null;
        let i = 0;
        const next = () => {
            if (breakAt === 2 && i === 2) return res.destroy();
            if (breakAt === -2 && i === 2) {
                res.write(`data:${JSON.stringify({ error: 'Request failed during generation: Server error: CUDA out of memory', error_type: 'generation' })}\n\n`);
                return res.end();
            }
            if (i === events.length) return res.end();
            const line = `data:${JSON.stringify(events[i++])}\n\n`;
            // Split each event in two writes, the cut inside the JSON, as a slow network would.
            res.write(line.slice(0, 7));
            setTimeout(() => { res.write(line.slice(7)); setTimeout(next, 2); }, 2);
        };
        next();
    }
}

module.exports = { FakeTGI };
