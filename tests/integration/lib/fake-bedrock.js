// SPDX-License-Identifier: MIT
//
// fake-bedrock.js - a fake of the AWS Bedrock Runtime Converse API, written
// from its documented wire format.
//
// It serves POST /model/{modelId}/converse (JSON), /converse-stream (the
// binary application/vnd.amazon.eventstream framing: prelude with lengths
// and CRC32, string headers :event-type, :content-type, :message-type, JSON
// payload, message CRC32) and /invoke (Titan text embeddings). Like the real
// service it checks what a gateway can get wrong: the SigV4 signature
// (recomputed here over the request as received: method, the path encoded
// once more segment by segment, signed headers, x-amz-content-sha256 of the
// exact body), the model id after percent-decoding, strict user/assistant
// alternation, blank text blocks, toolConfig whenever tool blocks appear,
// toolResult ids that answer the previous toolUse, reasoning blocks carrying
// the signature it issued. Failures answer as Bedrock does: the status, an
// x-amzn-ErrorType header and {"message": ...}.
//
// Behaviour is picked by words in the last user text (see reply()). Every
// request is recorded (path, headers, raw body, parsed JSON) for assertions.
'use strict';

const crypto = require('node:crypto');
const zlib = require('node:zlib');
const { FakeServer, writePieces } = require('./fake-http');

const SIGNATURE = 'EqQBCkYIARgCIkBsig/fake+bedrock==';

// ---------------------------------------------------------------------------
// Event-stream encoding
// ---------------------------------------------------------------------------

function frame(headers, payload) {
    const hs = [];
    for (const [name, value] of Object.entries(headers)) {
        const n = Buffer.from(name);
        const v = Buffer.from(value);
        const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
        h.writeUInt8(n.length, 0);
        n.copy(h, 1);
        h.writeUInt8(7, 1 + n.length); // string
        h.writeUInt16BE(v.length, 2 + n.length);
        v.copy(h, 4 + n.length);
        hs.push(h);
    }
    const hbuf = Buffer.concat(hs);
    const body = Buffer.from(payload);
    const total = 12 + hbuf.length + body.length + 4;
    const prelude = Buffer.alloc(12);
    prelude.writeUInt32BE(total, 0);
    prelude.writeUInt32BE(hbuf.length, 4);
    prelude.writeUInt32BE(zlib.crc32(prelude.subarray(0, 8)), 8);
    const msg = Buffer.concat([prelude, hbuf, body, Buffer.alloc(4)]);
    msg.writeUInt32BE(zlib.crc32(msg.subarray(0, total - 4)), total - 4);
    return msg;
}

function event(type, obj) {
    // Real ConverseStream payloads carry a "p" padding member.
    return frame({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
        JSON.stringify({ ...obj, p: 'abcdefghijklmnop'.slice(0, 1 + (type.length % 16)) }));
}

function exceptionFrame(type, message) {
    return frame({ ':exception-type': type, ':content-type': 'application/json', ':message-type': 'exception' },
        JSON.stringify({ message }));
}

// ---------------------------------------------------------------------------
// SigV4, as the service checks it
// ---------------------------------------------------------------------------

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const strictEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function checkSigV4(req, raw, creds) {
    const auth = req.headers.authorization || '';
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return 'Authorization header requires AWS4-HMAC-SHA256 Credential, SignedHeaders and Signature';
    const [, akid, date, region, service, signed, signature] = m;
    if (akid !== creds.accessKeyId) return 'The security token included in the request is invalid.';
    if (region !== creds.region || service !== 'bedrock') return `Credential should be scoped to a valid region and service bedrock, not ${region}/${service}`;
    const amzDate = req.headers['x-amz-date'] || '';
    if (!amzDate.startsWith(date)) return 'Date in Credential scope does not match x-amz-date';
    const bodyHash = sha256(raw);
    if (req.headers['x-amz-content-sha256'] && req.headers['x-amz-content-sha256'] !== bodyHash) return 'The provided x-amz-content-sha256 header does not match what was computed.';
    const names = signed.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) return 'host and x-amz-date must be signed';
    const [pathPart, query = ''] = req.url.split('?');
    const canonUri = pathPart.split('/').map(strictEncode).join('/');
    const canonQuery = query ? query.split('&').sort().join('&') : '';
    const canonHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
    const canonical = [req.method, canonUri, canonQuery, canonHeaders, signed, bodyHash].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    let k = hmac(`AWS4${creds.secretAccessKey}`, date);
    for (const part of [region, service, 'aws4_request']) k = hmac(k, part);
    const want = hmac(k, toSign).toString('hex');
    if (want !== signature) return 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.';
    return null;
}

// ---------------------------------------------------------------------------
// Request validation (the rules the real service enforces that we can break)
// ---------------------------------------------------------------------------

function validate(body) {
    if (!Array.isArray(body.messages) || body.messages.length === 0) return 'A conversation must start with a user message.';
    if (body.system !== undefined && !Array.isArray(body.system)) return 'system must be a list of SystemContentBlock';
    let prev = null;
    let lastToolUse = new Set();
    let usesTools = false;
    for (const [i, msg] of body.messages.entries()) {
        if (i === 0 && msg.role !== 'user') return 'A conversation must start with a user message. Try again with a conversation that starts with a user message.';
        if (msg.role !== 'user' && msg.role !== 'assistant') return `messages.${i}.role must be user or assistant`;
        if (msg.role === prev) return 'A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.';
        prev = msg.role;
        if (!Array.isArray(msg.content) || msg.content.length === 0) return `messages.${i}.content must not be empty`;
        const used = new Set();
        for (const [j, block] of msg.content.entries()) {
            const keys = Object.keys(block);
            if (keys.length !== 1) return `messages.${i}.content.${j} must set exactly one member`;
            if ('text' in block && (typeof block.text !== 'string' || block.text.trim() === '')) return `The text field in the ContentBlock object at messages.${i}.content.${j} is blank. Add text to the text field, and try again.`;
            if ('toolUse' in block) { usesTools = true; used.add(block.toolUse.toolUseId); if (typeof block.toolUse.input !== 'object') return 'toolUse.input must be a JSON object'; }
            if ('toolResult' in block) {
                usesTools = true;
                if (!lastToolUse.has(block.toolResult.toolUseId)) return `The toolResult block at messages.${i}.content.${j} has no matching toolUse block in the previous assistant turn.`;
            }
            if ('reasoningContent' in block) {
                const r = block.reasoningContent;
                if (msg.role !== 'assistant') return 'reasoningContent is only allowed in assistant messages';
                if (r.reasoningText && r.reasoningText.signature !== SIGNATURE) return 'messages.1.content.0: Invalid `signature` in `thinking` block';
            }
            if ('image' in block) {
                const im = block.image;
                if (!['png', 'jpeg', 'gif', 'webp'].includes(im.format) || typeof im.source?.bytes !== 'string') return 'image block needs format and source.bytes';
            }
        }
        lastToolUse = used;
    }
    if (usesTools && !body.toolConfig) return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
    for (const k of Object.keys(body.inferenceConfig || {})) {
        if (!['maxTokens', 'temperature', 'topP', 'stopSequences'].includes(k)) return `inferenceConfig.${k} is not a valid member`;
    }
    return null;
}

// ---------------------------------------------------------------------------
// What the model says
// ---------------------------------------------------------------------------

function lastUserText(body) {
    const last = body.messages[body.messages.length - 1];
    return last.content.filter((b) => 'text' in b).map((b) => b.text).join(' ');
}

/** The answer as content blocks plus a stopReason, from the conversation. */
function reply(body) {
    const last = body.messages[body.messages.length - 1];
    const results = last.content.filter((b) => 'toolResult' in b);
    if (results.length) {
        const said = results.map((b) => b.toolResult.content.map((c) => c.text ?? JSON.stringify(c.json)).join('')).join(', ');
        return { content: [{ text: `Tool said: ${said}` }], stopReason: 'end_turn' };
    }
    const text = lastUserText(body);
    const content = [];
    if (/\bthink\b/.test(text)) {
        content.push({ reasoningContent: { reasoningText: { text: 'Let me reason about this carefully.', signature: SIGNATURE } } });
    }
    if (/weather/.test(text) && body.toolConfig) {
        content.push({ text: 'Checking.' });
        content.push({ toolUse: { toolUseId: 'tooluse_paris01', name: 'weather', input: { city: 'Paris' } } });
        content.push({ toolUse: { toolUseId: 'tooluse_rome002', name: 'weather', input: { city: 'Rome', unit: 'C' } } });
        return { content, stopReason: 'tool_use' };
    }
    content.push({ text: 'Hello from Bedrock \u00e9\u{1F30B}!' });
    return { content, stopReason: 'end_turn' };
}

function usage(body) {
    const inputTokens = JSON.stringify(body.messages).length % 97 + 10;
    return { inputTokens, outputTokens: 7, totalTokens: inputTokens + 7, cacheReadInputTokens: 2 };
}

/** ConverseStream frames for an answer: text and tool input split in pieces. */
function streamFrames(answer, u) {
    const out = [event('messageStart', { role: 'assistant' })];
    answer.content.forEach((block, i) => {
        if (block.text !== undefined) {
            const t = block.text;
            const cut = [0, 3, 7, t.length];
            for (let k = 0; k + 1 < cut.length; k++) {
                // Cut by code points so a frame never holds half a character (frames are JSON).
                const piece = Array.from(t).slice(cut[k], cut[k + 1]).join('');
                if (piece) out.push(event('contentBlockDelta', { contentBlockIndex: i, delta: { text: piece } }));
            }
        } else if (block.toolUse) {
            const { toolUseId, name, input } = block.toolUse;
            out.push(event('contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId, name } } }));
            const s = JSON.stringify(input);
            for (let k = 0; k < s.length; k += 6) out.push(event('contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input: s.slice(k, k + 6) } } }));
        } else if (block.reasoningContent) {
            const { text, signature } = block.reasoningContent.reasoningText;
            out.push(event('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: text.slice(0, 10) } } }));
            out.push(event('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: text.slice(10) } } }));
            out.push(event('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { signature } } }));
        }
        out.push(event('contentBlockStop', { contentBlockIndex: i }));
    });
    out.push(event('messageStop', { stopReason: answer.stopReason }));
    out.push(event('metadata', { usage: u, metrics: { latencyMs: 42 } }));
    return out;
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

const ERRORS = {
    ValidationException: 400,
    AccessDeniedException: 403,
    InvalidSignatureException: 403,
    UnrecognizedClientException: 403,
    ResourceNotFoundException: 404,
    ThrottlingException: 429,
    InternalServerException: 500,
    ServiceUnavailableException: 503,
};

class FakeBedrock extends FakeServer {
    constructor({ accessKeyId, secretAccessKey, region, models }) {
        super();
        this.creds = { accessKeyId, secretAccessKey, region };
        this.models = new Set(models);
    }

    fail(res, type, message) {
        const body = JSON.stringify({ message });
        res.writeHead(ERRORS[type], {
            'content-type': 'application/json',
            'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
            'x-amzn-requestid': crypto.randomUUID(),
            ...(type === 'ThrottlingException' ? { 'retry-after': '3' } : {}),
        });
        res.end(body);
    }

    handle(rec, res, raw) {
        const req = rec; // the record has the method, url and headers SigV4 reads
        rec.path = rec.url;
        const m = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/.exec(req.url);
        if (req.method !== 'POST' || !m) return this.fail(res, 'ResourceNotFoundException', 'Unknown operation');
        const sigError = checkSigV4(req, raw, this.creds);
        if (sigError) return this.fail(res, sigError.startsWith('The security token') ? 'UnrecognizedClientException' : 'InvalidSignatureException', sigError);
        rec.modelId = decodeURIComponent(m[1]);
        rec.op = m[2];
        try { rec.json = JSON.parse(raw); } catch { return this.fail(res, 'ValidationException', 'Malformed input request, please reformat your input and try again.'); }
        if (!this.models.has(rec.modelId)) return this.fail(res, 'ResourceNotFoundException', 'Could not resolve the foundation model from the provided model identifier.');
        if (rec.op === 'invoke') return this.invoke(rec, res);
        const bad = validate(rec.json);
        if (bad) return this.fail(res, 'ValidationException', bad);
        const text = lastUserText(rec.json);
        if (text.includes('[[throttle]]')) return this.fail(res, 'ThrottlingException', 'Too many requests, please wait before trying again.');
        if (text.includes('[[toolong]]')) return this.fail(res, 'ValidationException', 'Input is too long for requested model.');
        if (text.includes('[[denied]]')) return this.fail(res, 'AccessDeniedException', "You don't have access to the model with the specified model ID.");
        if (text.includes('[[unavailable]]')) return this.fail(res, 'ServiceUnavailableException', 'Bedrock is unable to process your request.');
        const answer = reply(rec.json);
        const u = usage(rec.json);
        if (rec.op === 'converse') {
            res.writeHead(200, { 'content-type': 'application/json' });
            return res.end(JSON.stringify({ output: { message: { role: 'assistant', content: answer.content } }, stopReason: answer.stopReason, usage: u, metrics: { latencyMs: 42 } }));
        }
        return this.stream(res, text, streamFrames(answer, u));
    }

    async stream(res, text, frames) {
        res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
        if (text.includes('[[stream-exception]]')) {
            frames = [...frames.slice(0, 3), exceptionFrame('modelStreamErrorException', 'The model stream failed midway.')];
        }
        let bytes = Buffer.concat(frames);
        if (text.includes('[[truncate]]') || text.includes('[[reset]]')) bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
        // Several writes, cut anywhere (inside frames too), as TCP may deliver them.
        await writePieces(res, bytes, (at) => 1 + ((at * 7919) % 173), 1);
        // [[truncate]] ends the HTTP body cleanly in the middle of a frame; [[reset]] drops the
        // connection there: the first only the event-stream framing can notice.
        if (text.includes('[[reset]]')) return res.socket.destroy();
        return res.end();
    }

    invoke(rec, res) {
        const { inputText } = rec.json;
        if (typeof inputText !== 'string' || !inputText) return this.fail(res, 'ValidationException', 'Malformed input request: #: required key [inputText] not found');
        const dims = rec.json.dimensions || 4;
        const embedding = Array.from({ length: dims }, (_, i) => ((inputText.length + i) % 7) / 8 - 0.25);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ embedding, inputTextTokenCount: inputText.split(/\s+/).length, embeddingsByType: { float: embedding } }));
    }
}

module.exports = { FakeBedrock, SIGNATURE, frame };
