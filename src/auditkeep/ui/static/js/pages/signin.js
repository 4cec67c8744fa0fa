// Sign in with an API token: checked against the server, then kept in sessionStorage.

import * as api from '../api.js';
import { h, replace, status } from '../dom.js';
import * as session from '../session.js';

const tenantOf = (origin) => origin.split('/').pop();

/** The tenants a token may act on: an admin sees every log in /v1/status; a bound
 *  token's /v1/keys lists only its own tenant's logs. */
async function tenantsFor(secret) {
  const opts = { tenant: false, secret };
  const [statusDoc, keysDoc] = await Promise.all([api.get('/v1/status', {}, opts), api.get('/v1/keys', {}, opts)]);
  const fromStatus = Object.keys(statusDoc.logs ?? {}).filter((n) => !n.endsWith('._access')).sort();
  const fromKeys = [...new Set((keysDoc.keys ?? []).map((k) => tenantOf(k.name)))]
    .filter((n) => !n.endsWith('._access')).sort();
  if (fromKeys.length > 1) {
    // Keys of more than one tenant: an admin token, which may name any tenant.
    const all = [...new Set([...fromStatus, ...fromKeys])].sort();
    return { tenants: all, tenant: all.includes('default') ? 'default' : all[0] };
  }
  return { tenants: [], tenant: fromKeys[0] ?? null };
}

export function render(main, { done }) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off',
    spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const feedback = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card signin', onsubmit: async (e) => {
    e.preventDefault();
    const secret = input.value.trim();
    replace(feedback, status('Checking the token…'));
    try {
      const scope = await tenantsFor(secret);
      session.signIn(secret, scope);
      done();
    } catch (err) {
      const why = err.status === 401 ? 'The server does not accept this token.' : `Sign-in failed: ${err.message}`;
      replace(feedback, status(why, 'error'));
      input.focus();
    }
  } },
  h('h1', {}, 'Sign in'),
  h('label', { for: 'token' }, 'API token'),
  input,
  h('p', { id: 'token-help', class: 'hint' },
    'A token with the read or audit scope (', h('code', {}, 'auditkeep tokens create'), '). ',
    'It is kept in this tab’s session storage only and sent as a bearer token; it never appears in a URL.'),
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  feedback);
  replace(main, form);
  input.focus();
}
