// api.js - every call the console makes to /api and /v1.
//
// The browser holds the session in an HttpOnly cookie that script cannot
// read; what script holds is the CSRF token from the login answer (or from
// GET /api/me after a reload), sent as x-csrf-token on every write. An error
// answer in the /api shape becomes an ApiError carrying `field` and
// `suggestions`, so forms can show it next to the field it names.
import { reactive } from 'vue';

export const session = reactive({ user: null, role: null, csrf: null, ready: false });

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.field = e.field || null;
    this.suggestions = Array.isArray(e.suggestions) ? e.suggestions : [];
  }
}

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['x-csrf-token'] = session.csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (res.status === 401 && path !== '/api/auth/login' && session.user) {
    session.user = null; // the session ended elsewhere: back to the login page
  }
  if (!res.ok) throw new ApiError(res.status, json || { error: { message: text || res.statusText } });
  return json;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** Every page of a paged list (the API caps a page at 500). */
export async function getAll(path) {
  const out = [];
  for (let offset = 0; ; offset += 500) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=500&offset=${offset}`);
    out.push(...page.data);
    if (out.length >= page.total || page.data.length === 0) return out;
  }
}

export async function loadSession() {
  try {
    const me = await get('/api/me');
    Object.assign(session, { user: me.user, role: me.role, csrf: me.csrf_token || null });
  } catch {
    Object.assign(session, { user: null, role: null, csrf: null });
  }
  session.ready = true;
}

export async function login(username, password) {
  const r = await post('/api/auth/login', { username, password });
  Object.assign(session, { user: r.user, role: r.role, csrf: r.csrf_token });
}

export async function logout() {
  try { await post('/api/auth/logout'); } finally {
    Object.assign(session, { user: null, role: null, csrf: null });
  }
}

export const isAdmin = () => session.role === 'admin';
export const isStaff = () => session.role === 'admin' || session.role === 'developer';

/** A form's errors: general message plus one per field the API named. */
// A field the API names may be nested ("pricing.input_per_mtok", "targets[1]"):
// the form shows it under the first of those spellings it has a control for,
// and above the form when it has none, so no error is ever invisible.
export function formErrors() {
  return reactive({
    general: '', fields: {}, known: new Set(),
    clear() { this.general = ''; this.fields = {}; },
    set(e) {
      this.clear();
      const f = e instanceof ApiError ? e.field : null;
      const names = f ? [f, f.replace(/\[.*$/, ''), f.split('.').pop().replace(/\[.*$/, '')] : [];
      const hit = names.find((n) => this.known.has(n));
      if (hit) {
        this.fields = { [hit]: { message: e.message, suggestions: e.suggestions } };
      } else {
        this.general = e.message || String(e);
      }
    },
  });
}

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? String(s) : d.toISOString().replace('T', ' ').slice(0, 19);
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtUsd(n) {
  if (n === null || n === undefined) return '—';
  return `$${Number(n).toFixed(n && Math.abs(n) < 0.01 ? 6 : 4)}`;
}
