// One event: its fields, JSON, raw source object, receipt, context, and Verify.

import * as api from '../api.js';
import { cryptoEngine } from '../crypto.js';
import { h, replace, status } from '../dom.js';
import { flatten, text, time } from '../format.js';
import { preference, setPreference } from '../session.js';
import { STEPS, verifyEvent } from '../verify.js';
import { contextPanel } from '../components/context.js';

const pretty = (v) => JSON.stringify(v, null, 2);

function section(id, title, ...body) {
  return h('section', { class: 'card', 'aria-labelledby': `${id}-h`, id },
    h('h2', { id: `${id}-h` }, title), ...body);
}

function fieldTable(record) {
  return h('div', { class: 'table-scroll' }, h('table', { class: 'fields' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Value'))),
    h('tbody', {}, flatten(record).map(([path, value]) => h('tr', {},
      h('th', { scope: 'row' }, h('code', {}, path)), h('td', {}, text(value)))))));
}

function rawPanel(id, record) {
  if (!record.raw) return section('raw', 'Raw source object', h('p', { class: 'hint' }, 'This event was sent as schema v1: there is no producer’s original object.'));
  const body = h('div', {}, status('Loading the raw object…'));
  api.get(`/v1/events/${api.enc(id)}/raw`, {}, { as: 'bytes' }).then((bytes) => {
    let shown;
    try {
      shown = pretty(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
    } catch {
      shown = record.raw.format === 'syslog' ? new TextDecoder().decode(bytes) : `${bytes.length} bytes (${record.raw.format}), not shown as text`;
    }
    replace(body, h('pre', { class: 'json', tabindex: '0' }, shown));
  }, (err) => replace(body, status(err.status === 404 ? 'The server holds no raw object for this event.' : err.message, err.status === 404 ? 'info' : 'error')));
  return section('raw', 'Raw source object',
    h('p', { class: 'hint' }, `Format ${record.raw.format}, ${record.raw.size} bytes, SHA-256 ${record.raw.sha256}`), body);
}

const MARK = { pass: '✓', fail: '✗', skip: '–', pending: '…' };
const LABEL = { pass: 'passed', fail: 'failed', skip: 'not run', pending: 'pending' };

function stepItem(step, result, details = []) {
  return h('li', { 'data-step': step.id, 'data-result': result, class: `step step-${result}` },
    h('span', { class: 'mark', 'aria-hidden': 'true' }, MARK[result]),
    h('span', { class: 'visually-hidden' }, `${LABEL[result]}: `),
    h('span', { class: 'title' }, step.title),
    details.length ? h('ul', { class: 'details' }, details.map((d) => h('li', {}, d))) : null);
}

function verifyPanel(event) {
  const { record } = event;
  const steps = STEPS.filter((s) => !s.optional || record.raw);
  const list = h('ol', { id: 'verify-steps', class: 'steps' });
  const verdict = h('p', { id: 'verdict', 'aria-live': 'polite' });
  const engineNote = h('p', { id: 'crypto-engine', class: 'hint' });
  const pinArea = h('div', { class: 'pin' });
  const button = h('button', { type: 'button', id: 'verify', class: 'primary' }, 'Verify in this browser');

  const drawPins = (origin) => {
    const pins = preference('pinnedKeys', {});
    const pinned = pins[origin];
    replace(pinArea, pinned
      ? [h('p', { class: 'hint' }, `Pinned key for ${origin}: ${pinned.split('+')[1]}`),
        h('button', { type: 'button', class: 'quiet', onclick: () => {
          delete pins[origin];
          setPreference('pinnedKeys', pins);
          drawPins(origin);
        } }, 'Unpin key')]
      : h('button', { type: 'button', class: 'quiet', id: 'pin-key', onclick: async () => {
        const keys = (await api.get('/v1/keys', {}, { tenant: false })).keys;
        const active = keys.find((k) => k.name === origin && k.active);
        if (active) {
          pins[origin] = active.verifier;
          setPreference('pinnedKeys', pins);
        }
        drawPins(origin);
      } }, 'Pin this log’s current key in this browser'));
  };

  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(list, steps.map((s) => stepItem(s, 'pending')));
    replace(verdict, 'Verifying…');
    verdict.dataset.result = 'pending';
    const prefer = new URLSearchParams(window.location.search).get('crypto');
    try {
      const engine = await cryptoEngine(prefer);
      replace(engineNote, `SHA-256 and Ed25519 computed with ${engine.name === 'noble' ? 'the bundled @noble library' : 'the browser’s WebCrypto'}.`);
      engineNote.dataset.engine = engine.name;
      const io = {
        entry: (log, seq) => api.get(`/v1/logs/${api.enc(log)}/entries/${seq}`, { format: 'canonical' }, { tenant: false, as: 'bytes' }),
        keys: async () => (await api.get('/v1/keys', {}, { tenant: false })).keys,
        raw: () => api.get(`/v1/events/${api.enc(record.id)}/raw`, {}, { as: 'bytes' }),
      };
      const ok = await verifyEvent(event, io, engine, preference('pinnedKeys', {}), ({ id, ok: passed, details }) => {
        const step = steps.find((s) => s.id === id);
        list.querySelector(`[data-step="${id}"]`).replaceWith(stepItem(step, passed === null ? 'skip' : passed ? 'pass' : 'fail', details));
      });
      verdict.dataset.result = ok ? 'pass' : 'fail';
      replace(verdict, ok
        ? '✓ Verified: this entry is in the log the signed checkpoint commits to.'
        : '✗ Not verified: see the failed step.');
      const cp = event.checkpoint.split('\n')[0];
      drawPins(cp);
    } catch (e) {
      verdict.dataset.result = 'fail';
      replace(verdict, `✗ Verification could not run: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });

  return section('verify-panel', 'Proof',
    h('p', { class: 'hint' }, 'Verify checks the inclusion proof and the signed checkpoint in this browser; it does not trust any verdict from the server.'),
    button, engineNote, list, verdict, pinArea,
    h('details', {}, h('summary', {}, 'Proof and checkpoint as received'),
      h('pre', { class: 'json', tabindex: '0' }, pretty(event.proof)),
      h('pre', { class: 'note', tabindex: '0' }, event.checkpoint)));
}

export function render(main, { params: [id] }) {
  replace(main, status('Loading the event…'));
  let alive = true;
  api.get(`/v1/events/${api.enc(id)}`).then((event) => {
    if (!alive) return;
    const { record } = event;
    document.title = `${record.action} · auditkeep`;
    replace(main, h('article', { class: 'event' },
      h('p', { class: 'crumbs' }, h('a', { href: '/search' }, '← Search')),
      h('header', { class: 'event-head' },
        h('h1', {}, record.action),
        h('span', { class: `badge outcome-${record.outcome}` }, record.outcome),
        h('p', { class: 'meta' }, `${time(record.time)} · ${text(record.actor?.id)} · log ${record.tenant} · seq ${record.seq} · id ${record.id}`)),
      h('div', { class: 'event-grid' },
        h('div', { class: 'col' },
          section('fields', 'Fields', fieldTable(record)),
          section('json', 'JSON', h('pre', { class: 'json', tabindex: '0' }, pretty(record))),
          rawPanel(id, record)),
        h('div', { class: 'col' },
          verifyPanel(event),
          section('receipt', 'Receipt', h('pre', { class: 'json', tabindex: '0' }, pretty(event.receipt))),
          section('context', 'Context', contextPanel(record))))));
  }, (err) => {
    if (!alive) return;
    replace(main, h('h1', {}, 'Event'), status(err.status === 404 ? `No event with id ${id} in this tenant.` : err.message, 'error'));
  });
  return () => {
    alive = false;
  };
}
