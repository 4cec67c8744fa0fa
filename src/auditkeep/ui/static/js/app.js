// The single-page app: a path router over the pages, the header (navigation, tenant
// switcher, sign out) and the global keyboard shortcuts.

import { hooks } from './api.js';
import { h, replace } from './dom.js';
import * as session from './session.js';
import * as signin from './pages/signin.js';
import * as search from './pages/search.js';
import * as event from './pages/event.js';
import * as dashboards from './pages/dashboards.js';
import * as alerts from './pages/alerts.js';
import * as alertPage from './pages/alert.js';

const ROUTES = [
  [/^\/search$/, search.render],
  [/^\/events\/([^/]+)$/, event.render],
  [/^\/dashboards\/([a-z0-9-]+)$/, dashboards.render],
  [/^\/alerts$/, alerts.render],
  [/^\/alerts\/([^/]+)$/, alertPage.render],
];
const REDIRECTS = { '/': '/search', '/signin': '/search', '/dashboards': '/dashboards/executive' };

const header = document.getElementById('site-header');
const main = document.getElementById('main');
let cleanup = null;

/** Go to an app path (with its query string): a new history entry, then draw it. */
export function navigate(path, { replace: replaceEntry = false } = {}) {
  if (path !== window.location.pathname + window.location.search) {
    history[replaceEntry ? 'replaceState' : 'pushState'](null, '', path);
  }
  draw();
}

function drawHeader(signedIn) {
  const here = window.location.pathname;
  const link = (href, text, active) => h('a', { href, 'aria-current': active ? 'page' : null }, text);
  const parts = [h('a', { class: 'brand', href: '/search' }, 'auditkeep')];
  if (signedIn) {
    parts.push(h('nav', { 'aria-label': 'Main' },
      link('/search', 'Search', here === '/search' || here.startsWith('/events/')),
      link('/dashboards/executive', 'Dashboards', here.startsWith('/dashboards')),
      link('/alerts', 'Alerts', here === '/alerts' || here.startsWith('/alerts/'))));
    const tenants = session.tenants();
    const spacer = h('span', { class: 'spacer' });
    parts.push(spacer);
    if (tenants.length > 1) {
      const select = h('select', { id: 'tenant', onchange: (e) => {
        session.setTenant(e.target.value);
        draw();
      } }, tenants.map((t) => h('option', { value: t, selected: t === session.tenant() }, t)));
      parts.push(h('label', { class: 'tenant' }, h('span', {}, 'Tenant'), select));
    } else if (session.tenant()) {
      parts.push(h('span', { class: 'tenant', title: 'the tenant this token is bound to' }, session.tenant()));
    }
    parts.push(h('button', { type: 'button', class: 'quiet', id: 'sign-out', onclick: () => {
      session.signOut();
      navigate('/signin');
    } }, 'Sign out'));
  }
  replace(header, h('div', { class: 'bar' }, parts));
}

function draw() {
  if (cleanup) cleanup();
  cleanup = null;
  const path = window.location.pathname;
  const signedIn = Boolean(session.token());
  drawHeader(signedIn);
  if (!signedIn) {
    // Any page asks for the token first and then draws itself at the same address.
    signin.render(main, { done: () => navigate(path === '/signin' ? '/search' : path + window.location.search, { replace: true }) });
    return;
  }
  if (REDIRECTS[path]) {
    navigate(REDIRECTS[path], { replace: true });
    return;
  }
  for (const [pattern, render] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      cleanup = render(main, { params: m.slice(1).map(decodeURIComponent), navigate, query: new URLSearchParams(window.location.search) }) ?? null;
      return;
    }
  }
  replace(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/search' }, 'Go to search')));
}

// Same-origin links to app pages are handled here, without a page load.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const u = new URL(a.href);
  if (u.origin !== window.location.origin || a.target || a.hasAttribute('download')) return;
  if (u.pathname.startsWith('/v1/') || u.pathname.startsWith('/static/')) return;
  e.preventDefault();
  navigate(u.pathname + u.search);
});

document.addEventListener('keydown', (e) => {
  const typing = e.target.closest('input, textarea, select, [contenteditable]');
  if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
    const q = document.getElementById('query');
    if (q) {
      e.preventDefault();
      q.focus();
      q.select();
    }
  }
});

window.addEventListener('popstate', draw);
hooks.unauthorized = () => {
  session.signOut();
  draw();
};
draw();
