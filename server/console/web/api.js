// The admin API as the console calls it: the session cookie (HttpOnly, set by the login
// answer) authenticates, and every state-changing request carries the X-CSRF-Token the login
// answered. The CSRF token is kept for this tab only (sessionStorage, so a reload keeps the
// session); the session token in the login answer's body is never kept.
const CSRF_KEY = 'warden.csrf';

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || '';
    this.field = error.field || '';
    this.errors = error.errors || [];
    this.missing = error.missing || [];
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

export function hasCsrf() { return Boolean(sessionStorage.getItem(CSRF_KEY)); }

export async function call(method, path, {json, yaml, accept, headers = {}} = {}) {
  const h = {...headers};
  let body;
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (yaml !== undefined) {
    h['Content-Type'] = 'application/yaml';
    body = yaml;
  }
  if (accept) h.Accept = accept;
  if (method !== 'GET') h['X-CSRF-Token'] = sessionStorage.getItem(CSRF_KEY) || '';
  const res = await fetch(path, {method, headers: h, body, credentials: 'same-origin', cache: 'no-store'});
  const text = await res.text();
  let parsed = null;
  if (text && (res.headers.get('Content-Type') || '').includes('json')) {
    try { parsed = JSON.parse(text); } catch { parsed = null; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, parsed);
    if (res.status === 401 && !path.startsWith('/v1/auth/login')) onUnauthenticated(err);
    throw err;
  }
  return parsed !== null ? parsed : text;
}

export const get = (path, options) => call('GET', path, options);
export const post = (path, json, options = {}) => call('POST', path, {...options, json});
export const patch = (path, json) => call('PATCH', path, {json});
export const put = (path, json, options = {}) => call('PUT', path, {...options, json});
export const del = (path) => call('DELETE', path);

// Every item of a paged listing ({items, next_cursor}).
export async function getAll(path) {
  const items = [];
  let cursor = '';
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
}

export async function login(email, password) {
  const answer = await call('POST', '/v1/auth/login', {json: {email, password}});
  sessionStorage.setItem(CSRF_KEY, answer.csrf_token);
  return answer.user;
}

export async function logout() {
  try {
    await call('POST', '/v1/auth/logout');
  } finally {
    sessionStorage.removeItem(CSRF_KEY);
  }
}

export function forgetSession() { sessionStorage.removeItem(CSRF_KEY); }

export const enc = encodeURIComponent;
