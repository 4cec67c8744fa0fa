// The context panel of an event: the events just before and after it by the same actor,
// resource, trace or request.

import * as api from '../api.js';
import { h, replace, status } from '../dom.js';
import { text, time } from '../format.js';

const BY = [
  ['actor', 'Actor', (r) => r.actor?.id],
  ['resource', 'Resource', (r) => r.resource?.id],
  ['trace', 'Trace', (r) => r.trace_id],
  ['request', 'Request', (r) => r.request_id],
];

function eventLink(r, current) {
  return h('li', { class: current ? 'current' : null, 'aria-current': current ? 'true' : null },
    h('time', { datetime: r.time }, time(r.time)), ' ',
    current ? h('strong', {}, r.action) : h('a', { href: `/events/${encodeURIComponent(r.id)}` }, r.action),
    ' ', h('span', { class: `badge outcome-${r.outcome}` }, r.outcome), ' ', h('span', { class: 'hint' }, text(r.actor?.id)));
}

export function contextPanel(record) {
  const out = h('div', { 'aria-live': 'polite' });
  const load = async (by) => {
    replace(out, status('Loading…'));
    try {
      const ctx = await api.get(`/v1/events/${api.enc(record.id)}/context`, { by, before: 10, after: 10 });
      const items = [...ctx.before.map((r) => eventLink(r, false)), eventLink(ctx.event ?? record, true),
        ...ctx.after.map((r) => eventLink(r, false))];
      replace(out, h('ol', { class: 'context-list' }, items),
        ctx.before.length + ctx.after.length ? null : h('p', { class: 'hint' }, 'No other events share it.'));
    } catch (err) {
      replace(out, err.status === 404 ? h('p', { class: 'hint' }, 'No context is available for this event.')
        : status(err.message, 'error'));
    }
  };
  const options = BY.filter(([, , value]) => value(record));
  const group = h('fieldset', { class: 'segmented' }, h('legend', {}, 'Events with the same'),
    options.map(([by, label], i) => h('label', {},
      h('input', { type: 'radio', name: 'context-by', value: by, checked: i === 0, onchange: () => load(by) }), label)));
  if (options.length) load(options[0][0]);
  else replace(out, h('p', { class: 'hint' }, 'The event names no actor, resource, trace or request.'));
  return h('div', {}, group, out);
}
