// Alerts: what the detection rules raised, newest first, filtered by status, level and
// rule, a page at a time. The address holds the filters.

import * as api from '../api.js';
import { h, replace, status } from '../dom.js';
import { plural, text, time } from '../format.js';

const PAGE = 50;
export const LEVELS = ['informational', 'low', 'medium', 'high', 'critical'];
const STATUSES = [['open', 'Open'], ['acked', 'Acknowledged']];
const FILTERS = ['status', 'level', 'rule'];

/** `user=alice, ip=10.0.0.1`: an alert's group as one line. */
export const groupText = (group) => Object.entries(group ?? {}).map(([k, v]) => `${k}=${text(v)}`).join(', ');

export const levelBadge = (level) => h('span', { class: `badge level-${level}` }, level);
export const statusBadge = (s) => h('span', { class: `badge alert-${s}` }, s === 'acked' ? 'acked' : s);

function toUrl(st) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (st[k]) q.set(k, st[k]);
  const qs = q.toString();
  return qs ? `/alerts?${qs}` : '/alerts';
}

function choice(id, label, options, value) {
  return h('label', { class: 'filter' }, h('span', {}, label),
    h('select', { id, name: id }, h('option', { value: '' }, 'Any'),
      options.map(([v, shown]) => h('option', { value: v, selected: v === value }, shown))));
}

export function render(main, { query: params }) {
  const st = { status: params.get('status') ?? '', level: params.get('level') ?? '', rule: params.get('rule') ?? '',
    alerts: [], cursor: null, run: 0 };
  const statusSel = choice('filter-status', 'Status', STATUSES, st.status);
  const levelSel = choice('filter-level', 'Level', LEVELS.map((l) => [l, l]), st.level);
  const ruleSel = choice('filter-rule', 'Rule', st.rule ? [[st.rule, st.rule]] : [], st.rule);
  const feedback = h('div', { id: 'alerts-feedback', 'aria-live': 'polite' });
  const summary = h('p', { id: 'summary', class: 'hint', 'aria-live': 'polite' });
  const table = h('div', { class: 'table-scroll', id: 'alerts' });
  const more = h('button', { type: 'button', id: 'load-more', class: 'quiet', hidden: true }, 'Load more');

  function drawTable() {
    replace(table, st.alerts.length ? h('table', { class: 'results alerts' },
      h('thead', {}, h('tr', {}, ['Created', 'Level', 'Status', 'Title', 'Rule', 'Count', 'Group']
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, st.alerts.map((a) => h('tr', { 'data-id': a.id },
        h('td', {}, h('time', { datetime: a.created }, time(a.created))),
        h('td', {}, levelBadge(a.level)),
        h('td', {}, statusBadge(a.status), a.suppressed_by ? h('span', { class: 'hint', title: `delivery held by ${a.suppressed_by}` }, ' suppressed') : null),
        h('td', { class: 'col-title' }, h('a', { href: `/alerts/${encodeURIComponent(a.id)}` }, a.title || a.rule)),
        h('td', {}, h('code', {}, a.rule)),
        h('td', { class: 'num' }, Number(a.count).toLocaleString()),
        h('td', {}, groupText(a.group)))))) : null);
    more.hidden = !st.cursor;
  }

  const query = (extra) => ({ status: st.status, level: st.level, rule: st.rule, limit: PAGE, ...extra });

  async function run() {
    const ticket = ++st.run;
    replace(feedback);
    replace(summary, 'Loading alerts…');
    try {
      const page = await api.get('/v1/alerts', query());
      if (ticket !== st.run) return;
      st.alerts = page.alerts;
      st.cursor = page.next_cursor;
      replace(summary, st.alerts.length ? `${plural(st.alerts.length, 'alert')} shown` : 'No alerts match.');
    } catch (err) {
      if (ticket !== st.run) return;
      st.alerts = [];
      st.cursor = null;
      replace(summary);
      replace(feedback, status(err.status === 404 ? 'This server has no /v1/alerts endpoint.' : err.message, 'error'));
    }
    drawTable();
  }

  async function loadMore() {
    if (!st.cursor) return;
    more.disabled = true;
    try {
      const page = await api.get('/v1/alerts', query({ cursor: st.cursor }));
      const seen = new Set(st.alerts.map((a) => a.id));
      st.alerts.push(...page.alerts.filter((a) => !seen.has(a.id)));
      st.cursor = page.next_cursor;
      drawTable();
      replace(summary, `${plural(st.alerts.length, 'alert')} shown`);
    } catch (err) {
      replace(feedback, status(err.message, 'error'));
    } finally {
      more.disabled = false;
    }
  }

  // The rules in force name the choices of the rule filter; without them it offers only
  // the rule the address names.
  api.get('/v1/rules', {}, { tenant: false }).then(({ rules }) => {
    const select = ruleSel.querySelector('select');
    const ids = new Set(rules.map((r) => r.id));
    replace(select, h('option', { value: '' }, 'Any'),
      st.rule && !ids.has(st.rule) ? h('option', { value: st.rule }, st.rule) : null,
      [...rules].sort((a, b) => a.id.localeCompare(b.id)).map((r) => h('option', { value: r.id, title: r.title }, r.id)));
    select.value = st.rule;
  }, () => {});

  const form = h('form', { class: 'controls alert-filters', role: 'search', 'aria-label': 'Filter alerts', onsubmit: (e) => {
    e.preventDefault();
    st.status = statusSel.querySelector('select').value;
    st.level = levelSel.querySelector('select').value;
    st.rule = ruleSel.querySelector('select').value;
    const url = toUrl(st);
    if (url !== window.location.pathname + window.location.search) history.pushState(null, '', url);
    run();
  } }, statusSel, levelSel, ruleSel, h('button', { type: 'submit', class: 'primary', id: 'apply' }, 'Apply'));
  // A changed choice applies at once, as the search page's time range does.
  form.addEventListener('change', () => form.requestSubmit());
  more.addEventListener('click', loadMore);

  replace(main, h('div', { class: 'alerts-page' }, h('h1', {}, 'Alerts'), form, feedback, summary, table, more));
  document.title = 'Alerts · auditkeep';
  run();
  return () => {
    st.run += 1; // answers still on their way are dropped
  };
}
