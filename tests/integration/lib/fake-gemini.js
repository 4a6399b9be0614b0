// SPDX-License-Identifier: MIT
//
// fake-gemini.js - a fake Google AI Studio Gemini API (v1beta) on 127.0.0.1,
// written from Google's documented wire format:
//   POST /v1beta/models/{model}:generateContent        → GenerateContentResponse
//   POST /v1beta/models/{model}:streamGenerateContent?alt=sse
//                                                      → one response per `data:` event
//   POST /v1beta/models/{model}:batchEmbedContents     → {embeddings:[{values}]}
// It checks what the real API checks: the key (x-goog-api-key header or
// ?key=; a wrong one is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID),
// unknown JSON field names (400 "Invalid JSON payload received. Unknown name"),
// roles user/model only, one data field per part, functionResponse with
// name and an object response, and (as Gemini 3 does) that a thoughtSignature
// it issued on a functionCall comes back on that same part. Errors are
// {"error":{code,message,status}}. Every request is recorded.
//
// Replies are scripted by a marker string found anywhere in the request body;
// a script holds one reply per turn, used in order.
'use strict';

const { FakeServer } = require('./fake-http');

const TOP = new Set(['contents', 'systemInstruction', 'tools', 'toolConfig', 'generationConfig',
    'safetySettings', 'cachedContent']);
const GEN = new Set(['temperature', 'topP', 'topK', 'maxOutputTokens', 'stopSequences', 'candidateCount',
    'presencePenalty', 'frequencyPenalty', 'seed', 'responseMimeType', 'responseSchema',
    'responseJsonSchema', 'thinkingConfig', 'responseLogprobs', 'logprobs']);
const PART_DATA = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse',
    'executableCode', 'codeExecutionResult'];
const PART = new Set([...PART_DATA, 'thought', 'thoughtSignature']);
const STATUS = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

function gError(code, message, extra = {}) {
    return { error: { code, message, status: STATUS[code] || 'UNKNOWN', ...extra } };
}

class Invalid extends Error {}

function unknownNames(obj, allowed, where) {
    for (const k of Object.keys(obj)) {
        if (!allowed.has(k)) throw new Invalid(`Invalid JSON payload received. Unknown name "${k}" at '${where}': Cannot find field.`);
    }
}

class FakeGemini extends FakeServer {
    constructor({ apiKey }) {
        super();
        this.apiKey = apiKey;
        this.scripts = new Map();
        this.signatures = new Map(); // thoughtSignature issued → function name
        this.n = 0;
    }

    marker(tag) { this.n += 1; return `${tag}-${this.n}-${Date.now().toString(36)}`; }

    /** Replies for requests whose body contains marker, one per turn. */
    script(marker, ...turns) { this.scripts.set(marker, turns); return marker; }

    send(res, code, obj) {
        const body = JSON.stringify(obj, null, 2); // Google pretty-prints whole responses
        res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    }

    handle(rec, res) {
        try { rec.json = JSON.parse(rec.raw); } catch (_) { rec.json = undefined; }
        try {
            this.route(rec, res);
        } catch (e) {
            if (!(e instanceof Invalid)) throw e;
            this.send(res, 400, gError(400, e.message));
        }
    }

    route(rec, res) {
        const key = rec.headers['x-goog-api-key'] || rec.query.key;
        if (key !== this.apiKey) {
            return this.send(res, 400, gError(400, 'API key not valid. Please pass a valid API key.', {
                details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' }],
            }));
        }
        const m = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)$/.exec(rec.path);
        if (rec.method !== 'POST' || !m) return this.send(res, 404, gError(404, `Method not found: ${rec.path}`));
        if (rec.headers['content-type'] !== 'application/json') throw new Invalid('Content-Type must be application/json');
        if (rec.json === undefined) throw new Invalid('Invalid JSON payload received.');
        rec.model = m[1];
        rec.method_name = m[2];
        if (m[2] === 'batchEmbedContents') return this.embed(rec, res);
        this.validate(rec.json);
        const turn = this.turnFor(rec);
        if (turn.error) return this.send(res, turn.error.code, gError(turn.error.code, turn.error.message));
        if (m[2] === 'streamGenerateContent') {
            if (rec.query.alt !== 'sse') throw new Invalid('this fake streams only with alt=sse');
            return this.stream(rec, res, turn);
        }
        return this.send(res, 200, this.response(rec, turn.parts || [{ text: turn.text || 'ok' }], turn, true));
    }

    turnFor(rec) {
        for (const [marker, turns] of this.scripts) {
            if (!rec.raw.includes(marker)) continue;
            const done = this.requests.filter((r) => r.raw.includes(marker) && r.method_name !== undefined).length - 1;
            return turns[Math.min(done, turns.length - 1)];
        }
        return { text: 'default reply' };
    }

    validate(body) {
        unknownNames(body, TOP, 'GenerateContentRequest');
        if (!Array.isArray(body.contents) || body.contents.length === 0) throw new Invalid('* GenerateContentRequest.contents: contents is not specified');
        if (body.generationConfig) unknownNames(body.generationConfig, GEN, 'generation_config');
        if (body.generationConfig && body.generationConfig.candidateCount > 1) throw new Invalid('candidateCount > 1 is not supported');
        body.contents.forEach((c, i) => this.validateContent(c, i));
        this.checkSignatures(body.contents);
    }

    validateContent(c, i) {
        if (c.role !== 'user' && c.role !== 'model') throw new Invalid(`Please use a valid role: user, model. (contents[${i}])`);
        if (!Array.isArray(c.parts) || c.parts.length === 0) throw new Invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
        for (const p of c.parts) {
            unknownNames(p, PART, `contents[${i}].parts[0]`);
            const data = PART_DATA.filter((k) => k in p);
            if (data.length !== 1) throw new Invalid(`contents[${i}]: a part must hold exactly one data field (got ${data.join(',') || 'none'})`);
            if (p.functionResponse) {
                const fr = p.functionResponse;
                if (typeof fr.name !== 'string' || !fr.name) throw new Invalid('* functionResponse.name: Name is empty.');
                if (!fr.response || typeof fr.response !== 'object' || Array.isArray(fr.response)) throw new Invalid('functionResponse.response must be an object');
                if (c.role !== 'user') throw new Invalid('functionResponse parts belong to a user turn');
            }
            if (p.functionCall && c.role !== 'model') throw new Invalid('functionCall parts belong to a model turn');
        }
    }

    /** Gemini 3's rule, applied to the calls this fake signed: the signature returns on its part. */
    checkSignatures(contents) {
        for (const c of contents) {
            for (const p of c.parts) {
                if (!p.functionCall) continue;
                for (const [sig, name] of this.signatures) {
                    if (name === p.functionCall.name && p.thoughtSignature !== sig && contents.indexOf(c) === this.lastModel(contents)) {
                        throw new Invalid(`Function call is missing a thought_signature in functionCall parts. (${name})`);
                    }
                }
            }
        }
    }

    lastModel(contents) {
        for (let i = contents.length - 1; i >= 0; i--) if (contents[i].role === 'model') return i;
        return -1;
    }

    response(rec, parts, turn, last) {
        for (const p of parts) if (p.functionCall && p.thoughtSignature) this.signatures.set(p.thoughtSignature, p.functionCall.name);
        const out = {
            candidates: [{ content: { parts, role: 'model' }, index: 0 }],
            modelVersion: rec.model,
            responseId: turn.responseId || 'fake-resp-1',
        };
        if (last) {
            out.candidates[0].finishReason = turn.finishReason || 'STOP';
            out.usageMetadata = { promptTokenCount: 11, candidatesTokenCount: 7, totalTokenCount: 18, ...(turn.usage || {}) };
        } else {
            out.usageMetadata = { promptTokenCount: 11, totalTokenCount: 11 };
        }
        return out;
    }

    /** One data: event per chunk of parts; each event's bytes go out in two writes, split mid-JSON. */
    async stream(rec, res, turn) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const chunks = turn.chunks || [[{ text: turn.text || 'ok' }]];
        for (let i = 0; i < chunks.length; i++) {
            if (turn.breakAfter !== undefined && i === turn.breakAfter) {
                res.socket.destroy();
                return;
            }
            const ev = `data: ${JSON.stringify(this.response(rec, chunks[i], turn, i === chunks.length - 1))}\r\n\r\n`;
            const buf = Buffer.from(ev);
            const cut = Math.floor(buf.length / 2);
            res.write(buf.subarray(0, cut));
            await new Promise((r) => setTimeout(r, 5));
            res.write(buf.subarray(cut));
            await new Promise((r) => setTimeout(r, 5));
        }
        res.end();
    }

    embed(rec, res) {
        const reqs = rec.json.requests;
        if (!Array.isArray(reqs) || !reqs.length) throw new Invalid('* BatchEmbedContentsRequest.requests: requests is empty');
        const embeddings = reqs.map((r) => {
            if (r.model !== `models/${rec.model}`) throw new Invalid(`Model name mismatch: ${r.model}`);
            const text = r.content.parts.map((p) => p.text).join('');
            const n = r.outputDimensionality || 4;
            return { values: Array.from({ length: n }, (_, k) => (text.length + k) / 8) };
        });
        this.send(res, 200, { embeddings });
    }
}

module.exports = { FakeGemini, gError };
