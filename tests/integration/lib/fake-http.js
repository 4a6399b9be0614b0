// SPDX-License-Identifier: MIT
//
// fake-http.js - the HTTP plumbing the provider fakes (fake-anthropic, -azure, -bedrock,
// -cohere, -gemini, -ollama, -tgi) share, so that each fake file holds only what its
// provider does: a server on 127.0.0.1 at a free port, every request's body read whole and
// recorded before the fake answers, and a writer that sends bytes in small pieces with a
// pause between them, so the gateway sees frames, lines and UTF-8 sequences split as TCP
// may split them.
//
// A fake extends FakeServer and implements handle(rec, res, body): rec is the record
// already pushed on this.requests ({method, url, path, query, headers, raw, json: null};
// the fake parses raw itself, because what a bad body means is the provider's business),
// body the raw Buffer (SigV4 signs bytes).
'use strict';

const http = require('node:http');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class FakeServer {
    constructor() {
        this.requests = [];
        this.scheme = 'http';
    }

    /** Listens on 127.0.0.1 at a free port; sets port, and url and baseUrl (the origin). */
    async start() {
        this.server = http.createServer((req, res) => this._receive(req, res));
        await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
        this.port = this.server.address().port;
        this.url = `http://127.0.0.1:${this.port}`;
        this.baseUrl = this.url;
        return this;
    }

    /** Drops every open connection (a stalled stream too) and closes the server. */
    async stop() {
        this.server.closeAllConnections();
        await new Promise((r) => this.server.close(r));
    }

    /** The recorded requests whose body contains marker. */
    requestsFor(marker) { return this.requests.filter((r) => r.raw.includes(marker)); }

    async _receive(req, res) {
        try {
            const parts = [];
            for await (const p of req) parts.push(p);
            const body = Buffer.concat(parts);
            const url = new URL(req.url, 'http://x');
            const rec = {
                method: req.method, url: req.url, path: url.pathname,
                query: Object.fromEntries(url.searchParams), headers: req.headers,
                raw: body.toString('utf8'), json: null,
            };
            this.requests.push(rec);
            await this.handle(rec, res, body);
        } catch (e) {
            res.destroy(e); // a fake's own bug: the test sees a reset, the runner goes on
        }
    }
}

/**
 * Writes buf[0..end) to res in pieces of size(at) bytes (at: the piece's offset), pausing
 * ms after each; end defaults to the whole buffer. The caller ends the response.
 */
async function writePieces(res, buf, size, ms, end = buf.length) {
    for (let at = 0; at < end;) {
        const n = Math.min(end - at, size(at));
        res.write(buf.subarray(at, at + n));
        at += n;
        await sleep(ms);
    }
}

module.exports = { FakeServer, writePieces, sleep };
