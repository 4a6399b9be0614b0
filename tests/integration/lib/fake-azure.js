// SPDX-License-Identifier: MIT
//
// fake-azure.js - a fake Azure OpenAI resource, written from Azure's
// documented REST surface (data-plane inference, api-version 2024-10-21):
//   POST /openai/deployments/{deployment}/chat/completions?api-version=V
//   POST /openai/deployments/{deployment}/embeddings?api-version=V
// with the `api-key` header. It checks what Azure checks (key, api-version,
// deployment), answers with Azure's extras (prompt_filter_results,
// content_filter_results, the annotation-only first stream chunk), refuses
// a prompt with the marker "trigger-filter" with Azure's content_filter
// 400, drops the connection after three stream events for the marker
// "break-stream", and records every request for the tests to inspect.
'use strict';

const { FakeServer } = require('./fake-http');

function azureError(res, status, code, message, extra = {}) {
    const body = JSON.stringify({ error: { code, message, param: null, type: null, status, ...extra } });
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
}

const FILTER_OK = { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' },
    sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } };

class FakeAzure extends FakeServer {
    constructor({ apiKey, deployments, apiVersion = '2024-10-21' }) {
        super();
        this.apiKey = apiKey;
        this.deployments = deployments; // name -> underlying model name
        this.apiVersion = apiVersion;
    }

    handle(rec, res) {
        try { rec.json = JSON.parse(rec.raw); } catch (_) { /* recorded as raw */ }
        this.route(rec, res);
    }

    route(rec, res) {
        const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(rec.path);
        if (rec.headers['api-key'] !== this.apiKey) {
            return azureError(res, 401, '401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.');
        }
        if (!m || rec.method !== 'POST') return azureError(res, 404, '404', 'Resource not found');
        if (!rec.query['api-version']) {
            return azureError(res, 404, '404', 'Resource not found');
        }
        const model = this.deployments[decodeURIComponent(m[1])];
        if (!model) {
            return azureError(res, 404, 'DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.');
        }
        if (!rec.json) return azureError(res, 400, 'BadRequest', 'Invalid JSON body');
        if (m[2] === 'embeddings') return this.embeddings(rec, res, model);
        return this.chat(rec, res, model);
    }

    embeddings(rec, res, model) {
        const inputs = Array.isArray(rec.json.input) ? rec.json.input : [rec.json.input];
        const data = inputs.map((text, index) => {
            const v = [0.5, -0.25, String(text).length / 100];
            const embedding = rec.json.encoding_format === 'base64'
                ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
            return { object: 'embedding', index, embedding };
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: inputs.length * 2, total_tokens: inputs.length * 2 } }));
    }

    /** What the model says: a tool call while tools are offered and no tool result came, else text. */
    answer(body) {
        const msgs = body.messages || [];
        const last = msgs[msgs.length - 1] || {};
        const text = typeof last.content === 'string' ? last.content : JSON.stringify(last.content);
        if (body.tools && last.role !== 'tool') {
            return { toolCalls: [{ id: 'call_az1', name: body.tools[0].function.name, arguments: '{"city":"Paris","unit":"c"}' }] };
        }
        if (last.role === 'tool') return { text: `The tool said: ${last.content}` };
        return { text: `Azure echo: ${text}` };
    }

    chat(rec, res, model) {
        const body = rec.json;
        const all = JSON.stringify(body.messages || []);
        if (all.includes('trigger-filter')) {
            return azureError(res, 400, 'content_filter', "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
                { param: 'prompt', innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { violence: { filtered: true, severity: 'high' } } } });
        }
        if (all.includes('too-long')) {
            return azureError(res, 400, 'context_length_exceeded', "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.", { type: 'invalid_request_error', param: 'messages' });
        }
        const a = this.answer(body);
        if (body.stream) return this.stream(res, model, a, body);
        const message = { role: 'assistant', content: a.text ?? null };
        if (a.toolCalls) {
            message.tool_calls = a.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
            choices: [{ content_filter_results: FILTER_OK, finish_reason: a.toolCalls ? 'tool_calls' : 'stop', index: 0, logprobs: null, message }],
            created: 1730000000, id: 'chatcmpl-AZ1', model, object: 'chat.completion',
            prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }],
            system_fingerprint: 'fp_az', usage: { completion_tokens: 7, prompt_tokens: 19, total_tokens: 26 },
        }));
    }

    stream(res, model, a, body) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const head = { id: 'chatcmpl-AZS', object: 'chat.completion.chunk', created: 1730000000, model, system_fingerprint: 'fp_az' };
        const events = [];
        // Azure's first event: prompt annotations, empty choices, blank id and model.
        events.push({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: FILTER_OK }] });
        const choice = (delta, finish = null) => ({ ...head, choices: [{ content_filter_results: {}, delta, finish_reason: finish, index: 0, logprobs: null }] });
        events.push(choice({ role: 'assistant', content: '' }));
        if (a.toolCalls) {
            const t = a.toolCalls[0];
            events.push(choice({ tool_calls: [{ index: 0, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }] }));
            for (const piece of [t.arguments.slice(0, 9), t.arguments.slice(9)]) {
                events.push(choice({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
            }
            events.push(choice({}, 'tool_calls'));
        } else {
            for (const piece of a.text.match(/.{1,6}/gsu)) events.push(choice({ content: piece }));
            // A mid-stream annotation chunk, as Azure sends with content filtering on.
            events.push({ ...head, choices: [], content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 10 } });
            events.push(choice({}, 'stop'));
        }
        if (body.stream_options && body.stream_options.include_usage) {
            events.push({ ...head, choices: [], usage: { completion_tokens: 7, prompt_tokens: 19, total_tokens: 26 } });
        }
        const breakAt = JSON.stringify(body.messages || []).includes('break-stream') ? 3 : -1;
        let i = 0;
        const next = () => {
            if (i === breakAt) {
                res.socket.destroy();
                return;
            }
            if (i < events.length) {
                res.write(`data: ${JSON.stringify(events[i++])}\n\n`);
                setTimeout(next, 2);
            } else {
                res.end('data: [DONE]\n\n');
            }
        };
        next();
    }
}

module.exports = { FakeAzure };
