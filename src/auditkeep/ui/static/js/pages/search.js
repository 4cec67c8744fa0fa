// Search: query bar, time range, histogram (drag to zoom), results with chosen columns,
// paging, live tail, saved searches. The address holds the search, never the token.

import * as api from '../api.js';
import { h, replace, status } from '../dom.js';
import { plural } from '../format.js';
import { column, columnPicker, shownColumns, setShownColumns } from '../components/columns.js';
import { histogramView } from '../components/histogram.js';
import { popover } from '../components/popover.js';
import { queryHelp } from '../components/queryhelp.js';
import { RELATIVE, fromLocalInput, instant, iso, toLocalInput } from '../time.js';

const PAGE = 50;
const TAIL_MS = 2000;
const DEFAULT_SINCE = '-24h';

/** The search a URL names. */
function fromUrl(q) {
  return { query: q.get('query') ?? '', since: q.get('since') ?? (q.has('until') ? '' : DEFAULT_SINCE),
    until: q.get('until') ?? '', saved: q.get('saved') ?? '' };
}

function toUrl(st) {
  const q = new URLSearchParams();
  if (st.saved) q.set('saved', st.saved);
  else {
    if (st.query) q.set('query', st.query);
    q.set('since', st.since);
    if (st.until) q.set('until', st.until);
  }
  return `/search?${q}`;
}

/** The query problem of a 400, shown under the query bar with a caret at its column. */
function queryError(err, query) {
  const p = err.problems.find((x) => x.pointer === '/query/query') ?? err.problems[0];
  const detail = p?.detail ?? err.message;
  const col = Number.isInteger(p?.column) ? p.column : null;
  return h('div', { id: 'query-error', class: 'query-error', role: 'alert', 'data-column': col ?? '' },
    h('p', {}, col ? `Column ${col}: ${detail}` : detail),
    p?.expected ? h('p', { class: 'hint' }, `Expected ${p.expected}${p.actual ? `, found ${p.actual}` : ''}`) : null,
    col ? h('pre', { 'aria-hidden': 'true' }, `${query}\n${' '.repeat(col - 1)}^`) : null);
}

export function render(main, { query: params }) {
  const st = { ...fromUrl(params), events: [], cursor: null, seen: new Set(), tail: null, tailSession: null, run: 0 };
  const input = h('input', { id: 'query', type: 'search', name: 'query', value: st.query, autocomplete: 'off',
    spellcheck: 'false', placeholder: 'action:orders.* AND outcome:failure', 'aria-label': 'Query',
    'aria-describedby': 'query-feedback', 'aria-keyshortcuts': '/' });
  const help = popover('?', queryHelp, { id: 'query-help', className: 'help' });
  help.button.setAttribute('aria-label', 'Query syntax help');
  const range = h('select', { id: 'range', 'aria-label': 'Time range' },
    RELATIVE.map(([v, label]) => h('option', { value: v }, label)),
    h('option', { value: 'all' }, 'All time'), h('option', { value: 'custom' }, 'Custom range…'));
  const from = h('input', { id: 'from', type: 'datetime-local', step: '1' });
  const to = h('input', { id: 'to', type: 'datetime-local', step: '1' });
  const custom = h('div', { class: 'custom-range', hidden: true },
    h('label', {}, 'From ', from), h('label', {}, 'To ', to));
  const feedback = h('div', { id: 'query-feedback', 'aria-live': 'polite' });
  const tailButton = h('button', { type: 'button', id: 'tail', class: 'quiet', 'aria-pressed': 'false' }, 'Live tail');
  const histogram = h('div', { id: 'histogram-area' });
  const summary = h('p', { id: 'summary', class: 'hint', 'aria-live': 'polite' });
  const table = h('div', { class: 'table-scroll', id: 'results' });
  const more = h('button', { type: 'button', id: 'load-more', class: 'quiet', hidden: true }, 'Load more');
  const savedList = h('div', { id: 'saved-list' });
  const columns = popover('Columns', () => columnPicker(() => drawTable()), { id: 'column-picker' });
  const saveName = h('input', { id: 'save-name', type: 'text', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,99}', title: 'letters, digits, . _ - (starting with a letter or digit)',
    'aria-label': 'Name of the saved search' });
  const save = popover('Save', (close) => [h('form', { class: 'save-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api.put(`/v1/saved-searches/${api.enc(saveName.value)}`, { query: st.query, since: st.since || null,
        until: st.until || null, columns: shownColumns() });
      close();
      loadSaved();
    } catch (err) {
      replace(feedback, status(`Could not save: ${err.message}`, 'error'));
    }
  } }, h('label', { for: 'save-name' }, 'Save this search as'), saveName,
  h('button', { type: 'submit', class: 'primary' }, 'Save'))], { id: 'save-popover' });

  const syncRange = () => {
    const known = RELATIVE.some(([v]) => v === st.since) && !st.until;
    range.value = !st.since && !st.until ? 'all' : known ? st.since : 'custom';
    custom.hidden = range.value !== 'custom';
    if (range.value === 'custom') {
      from.value = st.since ? toLocalInput(instant(st.since)) : '';
      to.value = st.until ? toLocalInput(instant(st.until)) : '';
    }
  };

  function drawTable() {
    const cols = shownColumns();
    const rows = st.events.map((r) => h('tr', { 'data-id': r.id, class: r.fresh ? 'fresh' : null },
      cols.map((c, i) => {
        const value = column(c)[1](r) ?? '';
        return h('td', { class: `col-${c.replace(/\W/g, '-')}` },
          i === 0 ? h('a', { href: `/events/${encodeURIComponent(r.id)}` }, String(value) || r.id) : String(value));
      })));
    replace(table, h('table', { class: 'results' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, column(c)[0])))),
      h('tbody', {}, rows)));
    more.hidden = !st.cursor;
  }

  const searchParams = (extra) => ({ query: st.query, since: st.since, until: st.until, limit: PAGE, ...extra });

  async function run() {
    const ticket = ++st.run;
    stopTail();
    replace(feedback);
    input.removeAttribute('aria-invalid');
    replace(summary, 'Searching…');
    const agg = api.get('/v1/aggregate', { query: st.query, since: st.since, until: st.until, interval: 'auto' })
      .catch((err) => err);
    try {
      const page = await api.get('/v1/search', searchParams());
      if (ticket !== st.run) return;
      st.events = page.events;
      st.seen = new Set(page.events.map((e) => e.id));
      st.cursor = page.next_cursor;
      drawTable();
      replace(summary, st.events.length ? `${plural(st.events.length, 'event')} shown` : 'No events match.');
    } catch (err) {
      if (ticket !== st.run) return;
      st.events = [];
      st.cursor = null;
      drawTable();
      replace(summary);
      if (err.status === 400) {
        replace(feedback, queryError(err, st.query));
        input.setAttribute('aria-invalid', 'true');
        const col = err.problems.find((p) => p.pointer === '/query/query')?.column;
        if (Number.isInteger(col)) input.setSelectionRange(col - 1, col);
      } else {
        replace(feedback, status(err.status === 404 ? 'This server has no /v1/search endpoint.' : err.message, 'error'));
      }
    }
    const result = await agg;
    if (ticket !== st.run) return;
    if (result instanceof Error || !result.histogram) {
      replace(histogram);
      return;
    }
    const span = [st.since ? instant(st.since) : null, instant(st.until)];
    replace(histogram, histogramView(result.histogram, span, (a, b) => {
      st.since = iso(a);
      st.until = iso(b);
      st.saved = '';
      history.pushState(null, '', toUrl(st));
      syncRange();
      run();
    }));
    if (st.events.length) replace(summary, `${plural(st.events.length, 'event')} shown of ${result.total.toLocaleString()}`);
  }

  async function loadMore() {
    if (!st.cursor) return;
    more.disabled = true;
    try {
      const page = await api.get('/v1/search', searchParams({ cursor: st.cursor }));
      st.events.push(...page.events.filter((e) => !st.seen.has(e.id)));
      page.events.forEach((e) => st.seen.add(e.id));
      st.cursor = page.next_cursor;
      drawTable();
      replace(summary, `${plural(st.events.length, 'event')} shown`);
    } catch (err) {
      replace(feedback, status(err.message, 'error'));
    } finally {
      more.disabled = false;
    }
  }

  async function poll() {
    const newest = st.events[0]?.time ?? (st.since ? iso(instant(st.since)) : undefined);
    try {
      const page = await api.get('/v1/search', { query: st.query, since: newest, limit: 200, poll: st.tailSession });
      const fresh = page.events.filter((e) => !st.seen.has(e.id));
      if (!fresh.length || !st.tail) return;
      st.events.forEach((e) => delete e.fresh);
      fresh.forEach((e) => {
        e.fresh = true;
        st.seen.add(e.id);
      });
      st.events.unshift(...fresh);
      drawTable();
      replace(summary, `${plural(st.events.length, 'event')} shown · live`);
    } catch (err) {
      replace(feedback, status(`Live tail stopped: ${err.message}`, 'error'));
      stopTail();
    }
  }

  function stopTail() {
    if (st.tail) clearInterval(st.tail);
    st.tail = null;
    tailButton.setAttribute('aria-pressed', 'false');
  }

  tailButton.addEventListener('click', () => {
    if (st.tail) {
      stopTail();
      return;
    }
    tailButton.setAttribute('aria-pressed', 'true');
    st.tailSession = api.pollSession(); // each live tail is its own polling session
    st.tail = setInterval(poll, TAIL_MS);
    poll();
  });

  async function loadSaved() {
    try {
      const { saved } = await api.get('/v1/saved-searches');
      replace(savedList, saved.length ? h('ul', { class: 'saved' }, saved.map((s) => h('li', {},
        h('a', { href: `/search?saved=${encodeURIComponent(s.name)}`, title: s.query }, s.name),
        h('button', { type: 'button', class: 'icon', 'aria-label': `Delete saved search ${s.name}`, onclick: async () => {
          await api.del(`/v1/saved-searches/${api.enc(s.name)}`);
          loadSaved();
        } }, '×')))) : h('p', { class: 'hint' }, 'None yet: run a search and press Save.'));
    } catch (err) {
      replace(savedList, h('p', { class: 'hint' }, err.status === 404 ? 'Not available on this server.' : err.message));
    }
  }

  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    st.query = input.value.trim();
    if (range.value === 'custom') {
      st.since = fromLocalInput(from.value);
      st.until = fromLocalInput(to.value);
    } else {
      st.since = range.value === 'all' ? '' : range.value;
      st.until = '';
    }
    st.saved = '';
    const url = toUrl(st);
    if (url !== window.location.pathname + window.location.search) history.pushState(null, '', url);
    run();
  } },
  h('div', { class: 'query-row' }, input, help.wrap, h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Search')),
  h('div', { class: 'controls' }, range, custom, tailButton, columns.wrap, save.wrap));
  range.addEventListener('change', () => {
    custom.hidden = range.value !== 'custom';
    if (range.value === 'custom') {
      from.value ||= toLocalInput(instant(st.since || '-24h'));
      to.value ||= toLocalInput(Date.now());
    } else {
      form.requestSubmit();
    }
  });
  more.addEventListener('click', loadMore);

  replace(main, h('div', { class: 'search-page' },
    h('div', { class: 'search-main' }, h('h1', { class: 'visually-hidden' }, 'Search'), form, feedback,
      histogram, summary, table, more),
    h('aside', { class: 'card saved-panel', 'aria-labelledby': 'saved-h' },
      h('h2', { id: 'saved-h' }, 'Saved searches'), savedList)));
  document.title = 'Search · auditkeep';
  syncRange();
  loadSaved();

  if (st.saved) {
    api.get(`/v1/saved-searches/${api.enc(st.saved)}`).then((s) => {
      Object.assign(st, { query: s.query ?? '', since: s.since ?? '', until: s.until ?? '' });
      if (Array.isArray(s.columns) && s.columns.length) setShownColumns(s.columns);
      input.value = st.query;
      syncRange();
      run();
    }, (err) => replace(feedback, status(`Saved search ${st.saved}: ${err.message}`, 'error')));
  } else {
    run();
  }
  return stopTail;
}
