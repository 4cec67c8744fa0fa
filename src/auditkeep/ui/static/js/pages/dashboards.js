// Dashboards: whatever panels GET /v1/dashboards/{name} describes, refreshed every 10 s.

import * as api from '../api.js';
import { h, replace, s, status } from '../dom.js';
import { text, time } from '../format.js';

// operations: node-wide (SLOs, SLIs, readiness, clock skew), so admin tokens only.
const BOARDS = [['executive', 'Executive'], ['oncall', 'On-call'], ['debug', 'Debug'], ['operations', 'Operations']];
const REFRESH_MS = 10_000;

function statPanel(p) {
  const value = typeof p.value === 'number' ? p.value.toLocaleString() : text(p.value);
  return h('p', { class: 'stat' }, h('span', { class: 'stat-value' }, value), p.unit ? h('span', { class: 'stat-unit' }, ` ${p.unit}`) : null);
}

function tablePanel(p) {
  return h('div', { class: 'table-scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, (p.columns ?? []).map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, (p.rows ?? []).map((row) => h('tr', {}, row.map((v) => h('td', {}, v === null ? '—' : text(v))))))));
}

function seriesPanel(p) {
  const pts = (p.points ?? []).map(([t, v]) => [Date.parse(t), Number(v)]).filter(([t, v]) => !Number.isNaN(t) && Number.isFinite(v));
  if (!pts.length) return h('p', { class: 'hint' }, 'No data.');
  const [W, H] = [400, 100];
  const t0 = pts[0][0];
  const t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  const max = Math.max(1, ...pts.map(([, v]) => v));
  const xy = pts.map(([t, v]) => `${(((t - t0) / (t1 - t0)) * W).toFixed(1)},${(H - (v / max) * (H - 4)).toFixed(1)}`);
  const last = pts[pts.length - 1][1];
  return h('figure', { class: 'series' },
    s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': `${pts.length} points from ${time(p.points[0][0])}; latest ${last}${p.unit ? ` ${p.unit}` : ''}; peak ${max}` },
    s('polygon', { class: 'area', points: `0,${H} ${xy.join(' ')} ${W},${H}` }),
    s('polyline', { class: 'line', points: xy.join(' ') })),
    h('figcaption', { class: 'axis' }, h('span', {}, time(p.points[0][0])), h('span', {}, `latest ${last.toLocaleString()}${p.unit ? ` ${p.unit}` : ''} · peak ${max.toLocaleString()}`)));
}

function barsPanel(p) {
  const rows = (p.rows ?? p.points ?? []).map(([label, v]) => [text(label), Number(v)]);
  const max = Math.max(1, ...rows.map(([, v]) => v));
  return h('ul', { class: 'hbars' }, rows.map(([label, v]) => {
    const bar = h('span', { class: 'hbar' });
    bar.style.width = `${(v / max) * 100}%`; // CSSOM, which the CSP allows (no style attribute)
    return h('li', {}, h('span', { class: 'hbar-label' }, label), h('span', { class: 'hbar-track' }, bar),
      h('span', { class: 'hbar-value' }, v.toLocaleString()));
  }));
}

const KINDS = { stat: statPanel, table: tablePanel, series: seriesPanel, bars: barsPanel };

function panel(p) {
  const body = KINDS[p.kind] ?? (() => h('pre', {}, JSON.stringify(p, null, 2)));
  // state (ok | warning | critical), where a panel judges its figures, is a badge beside the title.
  const badge = p.state && p.state !== 'ok' ? h('span', { class: 'badge', 'data-state': p.state }, p.state) : null;
  return h('section', { class: `card panel panel-${p.kind}`, 'data-panel': p.id, 'data-state': p.state ?? null, 'aria-labelledby': `panel-${p.id}` },
    h('h2', { id: `panel-${p.id}` }, p.title, badge ? ' ' : null, badge), body(p), p.note ? h('p', { class: 'hint' }, p.note) : null);
}

export function render(main, { params: [name] }) {
  const grid = h('div', { class: 'panels', 'aria-live': 'polite' }, status('Loading…'));
  const updated = h('p', { class: 'hint', id: 'dashboard-updated' });
  replace(main, h('div', { class: 'dashboards' },
    h('nav', { class: 'tabs', 'aria-label': 'Dashboards' }, BOARDS.map(([id, label]) =>
      h('a', { href: `/dashboards/${id}`, 'aria-current': id === name ? 'page' : null }, label))),
    h('h1', {}, `${(BOARDS.find(([id]) => id === name) ?? [name, name])[1]} dashboard`), updated, grid));
  document.title = `${name} dashboard · auditkeep`;
  let alive = true;
  const session = api.pollSession(); // the refreshes of this page are one polling session
  const load = async (refresh) => {
    try {
      const board = await api.get(`/v1/dashboards/${api.enc(name)}`, refresh ? { poll: session } : {});
      if (!alive) return;
      replace(grid, board.panels.map(panel));
      replace(updated, `Generated ${time(board.generated)} · refreshes every 10 s`);
    } catch (err) {
      if (!alive) return;
      const why = { 404: `No dashboard named ${name} on this server.`, 403: `The ${name} dashboard shows node-wide figures: it needs an admin token.` };
      replace(grid, status(why[err.status] ?? err.message, 'error'));
    }
  };
  load(false);
  const timer = setInterval(() => {
    if (!document.hidden) load(true);
  }, REFRESH_MS);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
