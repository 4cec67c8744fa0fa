// One alert: its fields, group, details, the events it links, its deliveries, its own
// record in the log, and Acknowledge.

import * as api from '../api.js';
import { h, replace, status } from '../dom.js';
import { flatten, text, time } from '../format.js';
import { levelBadge, statusBadge } from './alerts.js';

const pretty = (v) => JSON.stringify(v, null, 2);
const TIMES = new Set(['created', 'updated', 'first_time', 'last_time', 'acked_at']);
const FIELDS = ['id', 'rule', 'level', 'severity', 'status', 'count', 'created', 'updated', 'first_time', 'last_time',
  'acked_by', 'acked_at', 'tags', 'routes', 'suppressed_by', 'dedup_key', 'origin', 'tenant'];

function section(id, title, ...body) {
  return h('section', { class: 'card', 'aria-labelledby': `${id}-h`, id },
    h('h2', { id: `${id}-h` }, title), ...body);
}

function table(columns, rows) {
  return h('div', { class: 'table-scroll' }, h('table', { class: 'fields' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

function fieldsTable(alert) {
  const shown = (k) => {
    const v = alert[k];
    if (k === 'tags' || k === 'routes') return (v ?? []).join(', ');
    return TIMES.has(k) && v ? time(v) : text(v);
  };
  return h('div', { class: 'table-scroll' }, h('table', { class: 'fields' },
    h('tbody', {}, FIELDS.filter((k) => ![null, undefined, ''].includes(alert[k]) && !(Array.isArray(alert[k]) && !alert[k].length))
      .map((k) => h('tr', { 'data-field': k }, h('th', { scope: 'row' }, h('code', {}, k)), h('td', {}, shown(k)))))));
}

function groupPanel(group) {
  const rows = flatten(group ?? {}).filter(([k]) => k);
  return section('group', 'Group', rows.length
    ? table(['Field', 'Value'], rows.map(([k, v]) => [h('code', {}, k), text(v)]))
    : h('p', { class: 'hint' }, 'Not grouped: one alert for the rule.'));
}

function eventsPanel(alert) {
  const events = alert.events ?? [];
  const more = alert.count > events.length
    ? h('p', { class: 'hint' }, `${events.length} of ${alert.count} matching events are linked.`) : null;
  return section('events', 'Matching events', events.length
    ? table(['Event', 'Log', 'Seq'], events.map((e) => [
      h('a', { href: `/events/${encodeURIComponent(e.id)}` }, e.id), e.log, String(e.seq)]))
    : h('p', { class: 'hint' }, 'This alert links no events (a rule about missing events links none).'), more);
}

function deliveriesPanel(deliveries) {
  return section('deliveries', 'Deliveries', deliveries?.length
    ? table(['Sink', 'Status', 'Attempts', 'Next attempt', 'Last error', 'Updated'], deliveries.map((d) => [
      d.sink, h('span', { class: `badge delivery-${d.status}` }, d.status), String(d.attempts),
      d.next_attempt ? time(d.next_attempt) : '', text(d.last_error), d.updated ? time(d.updated) : '']))
    : h('p', { class: 'hint' }, 'Not routed to any sink.'));
}

function recordPanel(alert) {
  return section('record', 'Record in the log', alert.logged_seq === null || alert.logged_seq === undefined
    ? h('p', { class: 'hint' }, 'Not yet appended to the log; the engine records each alert shortly after it fires.')
    : h('p', {}, h('a', { id: 'alert-record', href: `/events/${encodeURIComponent(alert.id)}` },
      `Alert record, seq ${alert.logged_seq} of log ${alert.tenant}`),
    h('span', { class: 'hint' }, ' — its proof can be verified there.')));
}

function ackPanel(alert, redraw) {
  if (alert.status === 'acked') {
    return h('p', { id: 'acked', class: 'hint' }, `Acknowledged by ${text(alert.acked_by)} at ${time(alert.acked_at)}`,
      alert.details?.ack_note ? `: ${text(alert.details.ack_note)}` : '');
  }
  const note = h('input', { id: 'ack-note', type: 'text', maxlength: '2000', 'aria-label': 'Note (optional)',
    placeholder: 'Note (optional)' });
  const feedback = h('div', { id: 'ack-feedback', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'primary', id: 'ack' }, 'Acknowledge');
  return h('form', { class: 'ack-form', onsubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    replace(feedback);
    try {
      const written = note.value.trim();
      const acked = await api.post(`/v1/alerts/${api.enc(alert.id)}/ack`, written ? { note: written } : undefined);
      redraw(acked);
    } catch (err) {
      replace(feedback, status(err.status === 403 ? `Acknowledging needs the audit scope: ${err.message}` : err.message, 'error'));
      button.disabled = false;
    }
  } }, note, button, feedback);
}

export function render(main, { params: [id] }) {
  replace(main, status('Loading the alert…'));
  let alive = true;
  const draw = (alert) => {
    if (!alive) return;
    document.title = `${alert.title || alert.rule} · auditkeep`;
    replace(main, h('article', { class: 'alert-page' },
      h('p', { class: 'crumbs' }, h('a', { href: '/alerts' }, '← Alerts')),
      h('header', { class: 'event-head' },
        h('h1', {}, alert.title || alert.rule),
        levelBadge(alert.level), statusBadge(alert.status),
        h('p', { class: 'meta' }, `rule ${alert.rule} · ${alert.count.toLocaleString()} event${alert.count === 1 ? '' : 's'} · ${time(alert.first_time)} – ${time(alert.last_time)} · id ${alert.id}`),
        h('div', { class: 'ack-area' }, ackPanel(alert, draw))),
      h('div', { class: 'event-grid' },
        h('div', { class: 'col' },
          section('fields', 'Fields', fieldsTable(alert)),
          groupPanel(alert.group),
          eventsPanel(alert)),
        h('div', { class: 'col' },
          recordPanel(alert),
          deliveriesPanel(alert.deliveries),
          section('details', 'Details', Object.keys(alert.details ?? {}).length
            ? h('pre', { class: 'json', tabindex: '0' }, pretty(alert.details))
            : h('p', { class: 'hint' }, 'None.'))))));
  };
  api.get(`/v1/alerts/${api.enc(id)}`).then(draw, (err) => {
    if (!alive) return;
    replace(main, h('h1', {}, 'Alert'), status(err.status === 404 ? `No alert with id ${id} in this tenant.` : err.message, 'error'));
  });
  return () => {
    alive = false;
  };
}
