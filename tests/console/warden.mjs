// Test helpers: the real warden binary on a free port with a fresh data directory, and the
// admin API as a plain HTTP client (bearer session tokens, no browser).
import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';

export const SOURCE_DIR = process.env.WARDEN_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
export const BINARY = process.env.WARDEN_BINARY || path.join(SOURCE_DIR, 'build/warden');

export async function startWarden({adminPassword}) {
  const data = mkdtempSync(path.join(tmpdir(), 'warden-console-'));
  const child = spawn(BINARY, ['serve', '--listen', '127.0.0.1:0', '--data', path.join(data, 'data'),
    '--policies', path.join(SOURCE_DIR, 'policies')], {
    env: {...process.env, WARDEN_ADMIN_PASSWORD: adminPassword, WARDEN_WATCH_POLICIES: 'false'},
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (b) => { log += b; if (log.length > 1e6) log = log.slice(-5e5); });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`warden did not start: ${out} ${log}`)), 60000);
    child.stdout.on('data', (b) => {
      out += b;
      const m = /warden serving http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`warden exited (${code}): ${out} ${log}`)); });
  });
  child.removeAllListeners('exit');
  const stopped = new Promise((resolve) => child.on('exit', resolve));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
      await stopped;
      clearTimeout(timer);
      rmSync(data, {recursive: true, force: true});
    },
  };
}

// The admin API over HTTP as `bearer` (a session or an API token).
export function client(baseUrl, bearer) {
  const call = async (method, p, body, headers = {}) => {
    const res = await fetch(baseUrl + p, {
      method,
      headers: {...(bearer ? {Authorization: `Bearer ${bearer}`} : {}), ...(body !== undefined ? {'Content-Type': 'application/json'} : {}), ...headers},
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return {status: res.status, json, text, headers: res.headers};
  };
  return {
    get: (p) => call('GET', p),
    post: (p, body) => call('POST', p, body),
    patch: (p, body) => call('PATCH', p, body),
    del: (p) => call('DELETE', p),
    call,
  };
}

export async function login(baseUrl, email, password) {
  const r = await client(baseUrl).post('/v1/auth/login', {email, password});
  if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${r.text}`);
  return client(baseUrl, r.json.token);
}

// Polls `fn` until it returns a truthy value (10 s at most).
export async function eventually(fn, what) {
  const end = Date.now() + 10000;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`never true: ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
