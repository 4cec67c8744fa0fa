// The signed-in state: the API token and the tenant, in sessionStorage only (gone when the
// tab closes; never in a URL or in localStorage), and preferences in localStorage.

const TOKEN = 'auditkeep.token';
const TENANT = 'auditkeep.tenant';
const TENANTS = 'auditkeep.tenants';

export const token = () => sessionStorage.getItem(TOKEN);
export const tenant = () => sessionStorage.getItem(TENANT);
/** The tenants the token may switch between (empty when it is bound to one). */
export const tenants = () => JSON.parse(sessionStorage.getItem(TENANTS) ?? '[]');

export function signIn(secret, { tenant: t, tenants: ts }) {
  sessionStorage.setItem(TOKEN, secret);
  sessionStorage.setItem(TENANTS, JSON.stringify(ts));
  if (t) sessionStorage.setItem(TENANT, t);
  else sessionStorage.removeItem(TENANT);
}

export function setTenant(t) {
  sessionStorage.setItem(TENANT, t);
}

export function signOut() {
  for (const k of [TOKEN, TENANT, TENANTS]) sessionStorage.removeItem(k);
}

export function preference(name, fallback) {
  try {
    const v = localStorage.getItem(`auditkeep.${name}`);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export function setPreference(name, value) {
  localStorage.setItem(`auditkeep.${name}`, JSON.stringify(value));
}
