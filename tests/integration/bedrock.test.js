// SPDX-License-Identifier: MIT
//
// bedrock.test.js - the official `openai` SDK through the real gateway to a
// fake AWS Bedrock (lib/fake-bedrock.js), which checks the SigV4 signature,
// the model id in the path and the Converse rules: chat, ConverseStream's
// binary frames as chat.completion.chunk, a parallel tool-call round trip,
// a reasoning round trip with its signature, embeddings, every error class,
// and streams that break.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const OpenAI = require('openai');
const { FakeBedrock, SIGNATURE } = require('./lib/fake-bedrock');
const h = require('./lib/harness');

const AKID = 'AKIDFAKEBEDROCK12345';
const SECRET = 'fakeSecretKey/For+Bedrock0123456789abcdEF';
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const ARN = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0';
const TITAN = 'amazon.titan-embed-text-v2:0';

const WEATHER = {
    type: 'function',
    function: {
        name: 'weather',
        description: 'Current weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
    },
};

describe('bedrock adapter (Converse / ConverseStream)', () => {
    let fake;
    let gw;
    let client;

    before(async () => {
        fake = await new FakeBedrock({ accessKeyId: AKID, secretAccessKey: SECRET, region: 'us-east-1', models: [HAIKU, ARN, TITAN] }).start();
        const base = `http://127.0.0.1:${fake.port}`;
        const creds = { region: 'us-east-1', aws_access_key_id: 'env:SB_AWS_AKID', timeout_ms: 5000 };
        gw = await h.startGateway(fake, {
            env: { SB_AWS_AKID: AKID, SB_AWS_SECRET: SECRET, SB_AWS_WRONG: 'not-the-secret-key-0123456789' },
            providers: [
                { id: 'aws', type: 'bedrock', base_url: base, ...creds, aws_secret_access_key: 'env:SB_AWS_SECRET' },
                { id: 'aws-wrong', type: 'bedrock', base_url: base, ...creds, aws_secret_access_key: 'env:SB_AWS_WRONG' },
            ],
            models: [
                { id: 'claude', provider: 'aws', upstream_model: HAIKU },
                { id: 'claude-arn', provider: 'aws', upstream_model: ARN },
                { id: 'ghost', provider: 'aws', upstream_model: 'anthropic.claude-ghost-v9:0' },
                { id: 'titan', provider: 'aws', upstream_model: TITAN, capabilities: { embeddings: true } },
                { id: 'claude-wrong-key', provider: 'aws-wrong', upstream_model: HAIKU },
            ],
        });
        client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.token, maxRetries: 0, timeout: 15000 });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (fake) await fake.stop();
    });

    const lastRequest = () => fake.requests[fake.requests.length - 1];

    it('chat: translated request, signed, and the answer back', async () => {
        const data = await client.chat.completions.create({
            model: 'claude',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }],
            max_tokens: 64,
            temperature: 0.2,
            stop: ['END'],
        });
        assert.equal(data.object, 'chat.completion');
        assert.match(data.id, /^chatcmpl-[0-9a-f]{24}$/);
        assert.equal(data.model, HAIKU);
        assert.equal(data.choices[0].message.role, 'assistant');
        assert.equal(data.choices[0].message.content, 'Hello from Bedrock \u00e9\u{1F30B}!');
        assert.equal(data.choices[0].finish_reason, 'stop');
        const up = lastRequest();
        assert.equal(up.path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse');
        assert.equal(up.modelId, HAIKU);
        assert.equal(up.raw, '{"messages":[{"role":"user","content":[{"text":"Hi there"}]}],"system":[{"text":"Be brief."}],'
            + '"inferenceConfig":{"maxTokens":64,"temperature":0.2,"stopSequences":["END"]}}');
        assert.equal(up.headers['content-type'], 'application/json');
        assert.match(up.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDFAKEBEDROCK12345\/\d{8}\/us-east-1\/bedrock\/aws4_request, /);
        const inputTokens = JSON.stringify(up.json.messages).length % 97 + 10;
        assert.equal(data.usage.prompt_tokens, inputTokens + 2); // cache reads are part of the prompt
        assert.equal(data.usage.completion_tokens, 7);
        assert.equal(data.usage.total_tokens, inputTokens + 9);
        assert.equal(data.usage.prompt_tokens_details.cached_tokens, 2);
    });

    it('an inference-profile ARN is percent-encoded once in the path and signed', async () => {
        const data = await client.chat.completions.create({ model: 'claude-arn', messages: [{ role: 'user', content: 'Hi' }] });
        assert.equal(data.choices[0].message.content, 'Hello from Bedrock \u00e9\u{1F30B}!');
        assert.equal(lastRequest().path, `/model/${encodeURIComponent(ARN)}/converse`);
        assert.equal(lastRequest().modelId, ARN);
    });

    it('streaming: binary event-stream frames become chat.completion.chunk events', async () => {
        const stream = await client.chat.completions.create({
            model: 'claude', stream: true, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: 'Hi there' }],
        });
        let text = '';
        let first = null;
        let finish = null;
        let usage = null;
        for await (const chunk of stream) {
            assert.equal(chunk.object, 'chat.completion.chunk');
            if (!first) first = chunk;
            if (chunk.choices.length === 0) { usage = chunk.usage; continue; }
            text += chunk.choices[0].delta.content || '';
            if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
        }
        assert.equal(first.choices[0].delta.role, 'assistant');
        assert.equal(text, 'Hello from Bedrock \u00e9\u{1F30B}!');
        assert.equal(finish, 'stop');
        assert.equal(usage.completion_tokens, 7);
        assert.equal(usage.prompt_tokens_details.cached_tokens, 2);
        assert.equal(lastRequest().path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream');
        assert.equal(lastRequest().headers.accept, 'application/vnd.amazon.eventstream');
    });

    it('streaming without include_usage: no usage-only chunk reaches the client', async () => {
        const stream = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
        for await (const chunk of stream) assert.ok(chunk.choices.length > 0, JSON.stringify(chunk));
    });

    async function toolTurn(streamed) {
        const messages = [{ role: 'user', content: 'What is the weather in Paris and Rome?' }];
        const req = { model: 'claude', messages, tools: [WEATHER], tool_choice: 'auto' };
        let calls;
        let finish;
        if (!streamed) {
            const data = await client.chat.completions.create(req);
            calls = data.choices[0].message.tool_calls;
            finish = data.choices[0].finish_reason;
            assert.equal(data.choices[0].message.content, 'Checking.');
        } else {
            const stream = await client.chat.completions.create({ ...req, stream: true });
            const acc = [];
            let content = '';
            for await (const chunk of stream) {
                const d = chunk.choices[0]?.delta || {};
                content += d.content || '';
                for (const tc of d.tool_calls || []) {
                    if (!acc[tc.index]) {
                        assert.ok(tc.id && tc.function.name, 'id and name on the first delta of a call');
                        acc[tc.index] = { id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } };
                    }
                    acc[tc.index].function.arguments += tc.function.arguments || '';
                }
                if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
            }
            assert.equal(content, 'Checking.');
            calls = acc;
        }
        assert.equal(finish, 'tool_calls');
        assert.deepEqual(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]), [
            ['tooluse_paris01', 'weather', { city: 'Paris' }],
            ['tooluse_rome002', 'weather', { city: 'Rome', unit: 'C' }],
        ]);
        const up = lastRequest().json;
        assert.deepEqual(up.toolConfig, {
            tools: [{ toolSpec: { name: 'weather', description: 'Current weather in a city', inputSchema: { json: WEATHER.function.parameters } } }],
            toolChoice: { auto: {} },
        });
        // The follow-up: the tool results must reach Bedrock as toolResult blocks in one user message.
        messages.push({ role: 'assistant', content: 'Checking.', tool_calls: calls });
        messages.push({ role: 'tool', tool_call_id: 'tooluse_paris01', content: '18C' });
        messages.push({ role: 'tool', tool_call_id: 'tooluse_rome002', content: '21C' });
        const data = await client.chat.completions.create({ model: 'claude', messages, tools: [WEATHER] });
        assert.equal(data.choices[0].message.content, 'Tool said: 18C, 21C');
        const follow = lastRequest().json;
        assert.deepEqual(follow.messages.slice(1), [
            { role: 'assistant', content: [
                { text: 'Checking.' },
                { toolUse: { toolUseId: 'tooluse_paris01', name: 'weather', input: { city: 'Paris' } } },
                { toolUse: { toolUseId: 'tooluse_rome002', name: 'weather', input: { city: 'Rome', unit: 'C' } } },
            ] },
            { role: 'user', content: [
                { toolResult: { toolUseId: 'tooluse_paris01', content: [{ text: '18C' }] } },
                { toolResult: { toolUseId: 'tooluse_rome002', content: [{ text: '21C' }] } },
            ] },
        ]);
    }

    it('tools: parallel calls and the toolResult round trip (whole answers)', async () => { await toolTurn(false); });
    it('tools: parallel calls streamed in fragments, then the round trip', async () => { await toolTurn(true); });

    it('reasoning: thinking with its signature comes back and survives the next turn', async () => {
        const first = await client.chat.completions.create({
            model: 'claude', reasoning_effort: 'low', max_tokens: 300,
            messages: [{ role: 'user', content: 'Please think: what is 2+2?' }],
        });
        assert.deepEqual(lastRequest().json.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 1024 } });
        assert.equal(lastRequest().json.inferenceConfig.maxTokens, 1324);
        const msg = first.choices[0].message;
        assert.equal(msg.reasoning_content, 'Let me reason about this carefully.');
        assert.deepEqual(msg.thinking_blocks, [{ type: 'thinking', thinking: 'Let me reason about this carefully.', signature: SIGNATURE }]);
        // Streamed, the block arrives whole (with its signature) where it ends.
        const stream = await client.chat.completions.create({
            model: 'claude', reasoning_effort: 'low', stream: true,
            messages: [{ role: 'user', content: 'Please think: what is 2+2?' }],
        });
        let reasoning = '';
        let blocks = [];
        for await (const chunk of stream) {
            const d = chunk.choices[0]?.delta || {};
            reasoning += d.reasoning_content || '';
            if (d.thinking_blocks) blocks = blocks.concat(d.thinking_blocks);
        }
        assert.equal(reasoning, msg.reasoning_content);
        assert.deepEqual(blocks, msg.thinking_blocks);
        // Next turn: the fake rejects a reasoning block without the signature it issued.
        const next = await client.chat.completions.create({
            model: 'claude', reasoning_effort: 'low',
            messages: [
                { role: 'user', content: 'Please think: what is 2+2?' },
                { role: 'assistant', content: msg.content, reasoning_content: msg.reasoning_content, thinking_blocks: msg.thinking_blocks },
                { role: 'user', content: 'And now?' },
            ],
        });
        assert.equal(next.choices[0].finish_reason, 'stop');
        assert.deepEqual(lastRequest().json.messages[1].content[0], { reasoningContent: { reasoningText: { text: 'Let me reason about this carefully.', signature: SIGNATURE } } });
        await assert.rejects(client.chat.completions.create({
            model: 'claude',
            messages: [
                { role: 'user', content: 'x' },
                { role: 'assistant', content: 'y', thinking_blocks: [{ type: 'thinking', thinking: 'forged', signature: 'bad' }] },
                { role: 'user', content: 'z' },
            ],
        }), (e) => e.status === 400 && /signature/.test(e.message));
    });

    it('embeddings through InvokeModel (Titan), base64 as the SDK asks by default', async () => {
        const data = await client.embeddings.create({ model: 'titan', input: 'hello bedrock world', dimensions: 4 });
        assert.equal(data.data.length, 1);
        const want = Array.from({ length: 4 }, (_, i) => (('hello bedrock world'.length + i) % 7) / 8 - 0.25);
        assert.deepEqual(Array.from(data.data[0].embedding), want);
        assert.equal(data.usage.prompt_tokens, 3);
        assert.equal(lastRequest().path, '/model/amazon.titan-embed-text-v2%3A0/invoke');
        assert.equal(lastRequest().raw, '{"inputText":"hello bedrock world","dimensions":4}');
        const floats = await client.embeddings.create({ model: 'titan', input: ['one'], encoding_format: 'float' });
        assert.equal(floats.data[0].embedding.length, 4);
        await assert.rejects(client.embeddings.create({ model: 'titan', input: ['a', 'b'] }),
            (e) => e.status === 400 && /one string per request/.test(e.message));
    });

    it('errors keep their meaning', async () => {
        const cases = [
            ['[[throttle]]', 'claude', 429, OpenAI.RateLimitError, /Too many requests/],
            ['[[toolong]]', 'claude', 400, OpenAI.BadRequestError, /Input is too long/],
            ['[[denied]]', 'claude', 403, OpenAI.PermissionDeniedError, /access to the model/],
            ['[[unavailable]]', 'claude', 503, OpenAI.InternalServerError, /unable to process/],
            ['hi', 'ghost', 404, OpenAI.NotFoundError, /Could not resolve the foundation model/],
        ];
        for (const [text, model, status, Cls, re] of cases) {
            await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: text }] }), (e) => {
                assert.ok(e instanceof Cls, `${text}: ${e.constructor.name} ${e.status} ${e.message}`);
                assert.equal(e.status, status);
                assert.match(e.message, re);
                return true;
            });
        }
        const tooLong = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: '[[toolong]]' }] }).catch((e) => e);
        assert.equal(tooLong.code, 'context_length_exceeded');
        const ghost = await client.chat.completions.create({ model: 'ghost', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.equal(ghost.code, 'model_not_found');
        const wrong = await client.chat.completions.create({ model: 'claude-wrong-key', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
        assert.equal(wrong.status, 403);
        assert.match(wrong.message, /signature we calculated does not match/);
        assert.ok(!wrong.message.includes('not-the-secret') && !wrong.message.includes(SECRET));
    });

    it('requests Bedrock cannot honour are refused by name', async () => {
        const cases = [
            [{ n: 2 }, /'n'/],
            [{ response_format: { type: 'json_object' } }, /'response_format'/],
            [{ logprobs: true }, /'logprobs'/],
        ];
        for (const [extra, re] of cases) {
            await assert.rejects(client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }], ...extra }),
                (e) => e.status === 400 && re.test(e.message));
        }
        await assert.rejects(client.chat.completions.create({
            model: 'claude',
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
        }), (e) => e.status === 400 && /data URLs/.test(e.message));
        const n = fake.requests.length;
        const ok = await client.chat.completions.create({
            model: 'claude',
            messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }],
        });
        assert.equal(ok.choices[0].finish_reason, 'stop');
        assert.equal(fake.requests.length, n + 1);
        assert.deepEqual(lastRequest().json.messages[0].content[1], { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } });
    });

    async function drain(stream) {
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
        return text;
    }

    it('an exception frame mid-stream ends the client stream with an error', async () => {
        const stream = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: '[[stream-exception]]' }] });
        await assert.rejects(drain(stream), (e) => /modelStreamErrorException: The model stream failed midway/.test(e.message));
    });

    it('a stream cut inside a frame ends with an error, never a hang', async () => {
        const stream = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: '[[truncate]]' }] });
        await assert.rejects(drain(stream), (e) => /stream ended inside a frame/.test(e.message));
        const reset = await client.chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: '[[reset]]' }] });
        await assert.rejects(drain(reset), (e) => /upstream stream broke/.test(e.message));
        // The gateway is still healthy afterwards.
        const data = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Hi' }] });
        assert.equal(data.choices[0].finish_reason, 'stop');
    });

    it('stops on SIGTERM with exit code 0 and no sanitizer report', async () => {
        await h.assertCleanStop(gw);
    });
});
