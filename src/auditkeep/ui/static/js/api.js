// The HTTP API: bearer token from the session, `tenant=` for admin tokens, RFC 9457
// problems turned into ApiError.

import * as session from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }

  /** Every field problem, whichever name the server used for the list. */
  get problems() {
    return this.problem.problems ?? this.problem.errors ?? [];
  }
}

/** Called when the server refuses the token (set by app.js: back to sign-in). */
export const hooks = { unauthorized: () => {} };

function url(path, params, withTenant) {
  const u = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  const t = session.tenant();
  if (withTenant && t && !u.searchParams.has('tenant')) u.searchParams.set('tenant', t);
  return u;
}

async function request(method, path, { params, body, tenant = true, as = 'json', secret } = {}) {
  const headers = { Accept: as === 'json' ? 'application/json' : '*/*' };
  const auth = secret ?? session.token();
  if (auth) headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url(path, params, tenant), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit', cache: 'no-store', redirect: 'error',
  });
  if (!resp.ok) {
    let problem = null;
    try {
      problem = await resp.json();
    } catch {
      problem = null;
    }
    if (resp.status === 401 && secret === undefined) hooks.unauthorized();
    throw new ApiError(resp.status, problem);
  }
  if (as === 'bytes') return new Uint8Array(await resp.arrayBuffer());
  if (as === 'text') return resp.text();
  return resp.status === 204 ? null : resp.json();
}

/** A random id for one polling session (a live tail, a dashboard page): sent as `poll=`
 * on its polls so the server records them once a minute with counts, not once each.
 * getRandomValues, not randomUUID, which only secure contexts have. Not a secret. */
export function pollSession() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const get = (path, params, opts = {}) => request('GET', path, { params, ...opts });
export const post = (path, body, opts = {}) => request('POST', path, { body, ...opts });
export const put = (path, body, opts = {}) => request('PUT', path, { body, ...opts });
export const del = (path, opts = {}) => request('DELETE', path, opts);
export const enc = encodeURIComponent;
