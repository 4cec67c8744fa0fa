// Time ranges as the API takes them: relative (`-24h`) or ISO 8601, and their instants.

export const RELATIVE = [['-15m', 'Last 15 minutes'], ['-1h', 'Last hour'], ['-24h', 'Last 24 hours'],
  ['-7d', 'Last 7 days'], ['-30d', 'Last 30 days']];

const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/** Milliseconds of an interval such as `5m` or `1h`, or null. */
export function intervalMs(text) {
  const m = /^(\d+)([smhdw])$/.exec(text ?? '');
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/** The instant (ms) a `since`/`until` value names, `now` when empty; null if unreadable. */
export function instant(value, now = Date.now()) {
  if (!value) return now;
  const rel = /^-(\d+[smhdw])$/.exec(value);
  if (rel) return now - intervalMs(rel[1]);
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

export const iso = (ms) => new Date(ms).toISOString();

/** A `datetime-local` input's value for an instant, in local time. */
export function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
}

export const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

/** A short label for an instant on an axis: time of day, with the date when it differs from today. */
export function axisLabel(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}
