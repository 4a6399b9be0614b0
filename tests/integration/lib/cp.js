// SPDX-License-Identifier: MIT
//
// cp.js - helpers for the control-plane (/api) tests: calls as a given
// identity (admin token, console session, none), the /api error shape,
// console login, users and virtual keys through the API (DESIGN.md §4),
// and models and routes made fresh for one test.
'use strict';

const assert = require('node:assert/strict');
const h = require('./harness');

/**
 * One /api (or /v1) call. `as`: 'admin' (the admin token, the default),
 * null (no credential), a session from login() (cookie, plus x-csrf-token on
 * writes), or {bearer: '...'} (any bearer token, e.g. a virtual key).
 */
function call(gw, method, path, body, as = 'admin', extraHeaders = {}) {
    const headers = { ...extraHeaders };
    if (as && as.cookie) {
        headers.cookie = as.cookie;
        if (method !== 'GET' && method !== 'HEAD' && as.csrf) headers['x-csrf-token'] = as.csrf;
    } else if (as && as.bearer) {
        headers.authorization = `Bearer ${as.bearer}`;
    }
    return h.request(gw, { method, path, body, headers, auth: as === 'admin' });
}

const api = {
    get: (gw, p, as) => call(gw, 'GET', p, undefined, as),
    post: (gw, p, body, as) => call(gw, 'POST', p, body, as),
    put: (gw, p, body, as) => call(gw, 'PUT', p, body, as),
    del: (gw, p, as) => call(gw, 'DELETE', p, undefined, as),
};

/** The /api error shape: {"error":{code,message,details,field,suggestions},timestamp,requestId}. */
function assertApiError(r, status, code, field) {
    const what = `${status} ${code}${field ? ` field=${field}` : ''}`;
    assert.equal(r.status, status, `expected ${what}, got ${r.status}: ${r.text}`);
    const j = r.json;
    assert.ok(j && typeof j === 'object', `not JSON: ${JSON.stringify(r.text)}`);
    const e = j.error;
    assert.ok(e && typeof e === 'object', `no "error" object: ${r.text}`);
    for (const k of ['code', 'message', 'details', 'field', 'suggestions']) {
        assert.ok(k in e, `error.${k} missing: ${r.text}`);
    }
    assert.equal(typeof e.code, 'string', r.text);
    assert.equal(typeof e.message, 'string', r.text);
    assert.ok(e.message.length > 0, `empty message: ${r.text}`);
    assert.ok(e.field === null || typeof e.field === 'string', r.text);
    assert.ok(Array.isArray(e.suggestions), `suggestions must be an array: ${r.text}`);
    assert.equal(typeof j.timestamp, 'string', `timestamp missing: ${r.text}`);
    assert.ok(!Number.isNaN(Date.parse(j.timestamp)), `timestamp not a date: ${r.text}`);
    assert.ok('requestId' in j, `requestId missing: ${r.text}`);
    assert.ok(!('type' in e) || 'code' in e, r.text);
    if (code) assert.equal(e.code, code, `error.code: ${r.text}`);
    if (field !== undefined) assert.equal(e.field, field, `error.field: ${r.text}`);
    return e;
}

/** Asserts a 2xx answer (exact status when given) and returns its JSON. */
function ok(r, status) {
    if (status) assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
    else assert.ok(r.status >= 200 && r.status < 300, `expected 2xx, got ${r.status}: ${r.text}`);
    return r.json;
}

// ---------------------------------------------------------------------------
// Identities (users, sessions, virtual keys): DESIGN.md §4
// ---------------------------------------------------------------------------

/** POST /api/users as the admin token; returns the user JSON. */
async function createUser(gw, username, password, role) {
    const r = await api.post(gw, '/api/users', { username, password, role });
    assert.equal(r.status, 201, `create user ${username}: ${r.status} ${r.text}`);
    return r.json;
}

/** POST /api/auth/login; returns {cookie, csrf, user, role, raw}. */
async function login(gw, username, password) {
    const r = await h.request(gw, { method: 'POST', path: '/api/auth/login', body: { username, password }, auth: false });
    assert.equal(r.status, 200, `login ${username}: ${r.status} ${r.text}`);
    const sc = [].concat(r.headers['set-cookie'] || []);
    assert.ok(sc.length > 0, `login set no cookie: ${JSON.stringify(r.headers)}`);
    const cookie = sc.map((c) => c.split(';')[0]).join('; ');
    assert.equal(typeof r.json.csrf_token, 'string', r.text);
    return { cookie, csrf: r.json.csrf_token, user: r.json.user, role: r.json.role, setCookie: sc, raw: r };
}

/** A user of the given role, logged in: returns the session. */
async function userSession(gw, username, role, password = `pw-${username}-Correct-Horse-9`) {
    await createUser(gw, username, password, role);
    const s = await login(gw, username, password);
    s.username = username;
    s.password = password;
    return s;
}

/** POST /api/keys; returns {id, key, json}. */
async function createKey(gw, body, as = 'admin') {
    const r = await api.post(gw, '/api/keys', body, as);
    assert.equal(r.status, 201, `create key: ${r.status} ${r.text}`);
    assert.match(r.json.key || '', /^sk-sb-/, `the create response must carry the key: ${r.text}`);
    return { id: r.json.id, key: r.json.key, json: r.json };
}

// ---------------------------------------------------------------------------
// Fresh registry entries: a model's health and breaker, and a route's cache,
// are kept per id, so a test that must start clean makes its own.
// ---------------------------------------------------------------------------

let fresh = 0;

/** `${prefix}N`, with an N this test process has not used before. */
function freshId(prefix) {
    return `${prefix}${++fresh}`;
}

/** POST /api/models as the admin token: model "<p>-mN" on provider p
 * (upstream gpt-4o-mini unless extra says otherwise); returns its id. */
async function newModel(gw, p, extra = {}) {
    const id = freshId(`${p}-m`);
    ok(await api.post(gw, '/api/models', { id, provider: p, upstream_model: 'gpt-4o-mini', ...extra }), 201);
    return id;
}

/** POST /api/routes as the admin token: route "rN" over targets, with extra
 * keys (weights, cache, ...); returns its id. */
async function newRoute(gw, targets, strategy = 'priority', extra = {}) {
    const id = freshId('r');
    ok(await api.post(gw, '/api/routes', { id, strategy, targets, ...extra }), 201);
    return id;
}

/** Polls fn until it is truthy; fails with msg after ms. Returns the elapsed ms. */
async function within(ms, fn, msg) {
    const t0 = h.now();
    const v = await h.eventually(fn, ms, 25);
    assert.ok(v, `${msg} (not within ${ms} ms)`);
    return h.now() - t0;
}

module.exports = {
    call, api, assertApiError, ok, createUser, login, userSession, createKey, within,
    freshId, newModel, newRoute,
};
