// Turning record values into text for tables: dotted paths, flattening, times.

/** Every leaf of `value` as [dotted path, leaf], arrays by index (`targets.0.id`). */
export function flatten(value, prefix = '', out = []) {
  if (value !== null && typeof value === 'object' && Object.keys(value).length) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

/** The value at a dotted path, or undefined. */
export function pick(record, path) {
  let v = record;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[part];
  }
  return v;
}

/** Text for one value: strings as they are, anything else as JSON. */
export function text(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof value.$c === 'string') return `commitment ${value.$c.slice(0, 12)}…`;
  return JSON.stringify(value);
}

/** `2025-01-02T03:04:05.123456Z` shown as `2025-01-02 03:04:05.123 UTC`. */
export function time(iso) {
  if (typeof iso !== 'string') return text(iso);
  let m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?\d*Z$/.exec(iso);
  if (!m && !Number.isNaN(Date.parse(iso))) m = /^(.{10})T(.{8})(\.\d{3})/.exec(new Date(iso).toISOString());
  return m ? `${m[1]} ${m[2]}${m[3] ?? ''} UTC` : iso;
}

export const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;
