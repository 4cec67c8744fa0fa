// The results table's columns: which exist, which are shown (kept in localStorage), and the picker.

import { h } from '../dom.js';
import { pick, text, time } from '../format.js';
import { preference, setPreference } from '../session.js';

export const COLUMNS = {
  time: ['Time', (r) => time(r.time)],
  action: ['Action', (r) => r.action],
  'actor.id': ['Actor', (r) => text(r.actor?.id)],
  outcome: ['Outcome', (r) => r.outcome],
  resource: ['Resource', (r) => (r.resource ? `${r.resource.type}:${r.resource.id}` : '')],
  category: ['Category', (r) => r.category],
  severity: ['Severity', (r) => r.severity],
  'source.service': ['Service', (r) => r.source?.service],
  'actor.ip': ['IP', (r) => text(r.actor?.ip)],
  reason: ['Reason', (r) => r.reason],
  request_id: ['Request', (r) => r.request_id],
  trace_id: ['Trace', (r) => r.trace_id],
  tenant: ['Tenant', (r) => r.tenant],
  seq: ['Seq', (r) => r.seq],
  id: ['Id', (r) => r.id],
};
export const DEFAULT_COLUMNS = ['time', 'action', 'actor.id', 'outcome', 'resource'];

export const shownColumns = () => preference('columns', DEFAULT_COLUMNS).filter((c) => c in COLUMNS || c.includes('.'));
export const setShownColumns = (cols) => setPreference('columns', cols);

/** Header text and cell text of a column; an unknown dotted path shows that field. */
export function column(name) {
  return COLUMNS[name] ?? [name, (r) => text(pick(r, name))];
}

/** Checkboxes for every column; `onChange(columns)` after each toggle. */
export function columnPicker(onChange) {
  const current = shownColumns();
  const boxes = Object.entries(COLUMNS).map(([name, [label]]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: name, checked: current.includes(name), onchange: () => {
      const chosen = [...document.querySelectorAll('#column-picker input:checked')].map((i) => i.value);
      const ordered = [...current.filter((c) => chosen.includes(c)), ...chosen.filter((c) => !current.includes(c))];
      setShownColumns(ordered.length ? ordered : DEFAULT_COLUMNS);
      current.splice(0, current.length, ...shownColumns());
      onChange(shownColumns());
    } }), label));
  return [h('p', { class: 'popover-title' }, 'Columns'), h('div', { class: 'checks' }, boxes)];
}
