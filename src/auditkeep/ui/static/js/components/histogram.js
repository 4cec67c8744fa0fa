// The time histogram: one SVG bar per bucket; drag across it (or click a bar) to zoom
// the search to that span.

import { h, s } from '../dom.js';
import { axisLabel, intervalMs } from '../time.js';

const W = 1000;
const H = 120;

/**
 * `histogram` is the aggregate's `{interval, width_us?, buckets: [{start, count}]}`; `[from, to]` the
 * searched span in ms (the buckets' own span when unknown). `onZoom(fromMs, toMs)`.
 */
export function histogramView(histogram, [from, to], onZoom) {
  const step = histogram.width_us ? histogram.width_us / 1000 : intervalMs(histogram.interval) ?? 0;
  const buckets = histogram.buckets.map((b) => ({ start: Date.parse(b.start), count: b.count }));
  const lo = Math.min(from ?? Infinity, ...buckets.map((b) => b.start));
  const hi = Math.max(to ?? -Infinity, ...buckets.map((b) => b.start + step));
  const span = Math.max(hi - lo, 1);
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const x = (t) => ((t - lo) / span) * W;
  const total = buckets.reduce((n, b) => n + b.count, 0);

  const bars = buckets.filter((b) => b.count > 0).map((b) => {
    const bh = (b.count / max) * (H - 4);
    return s('rect', { class: 'bar', x: x(b.start), y: H - bh, width: Math.max(x(b.start + step) - x(b.start) - 1, 1),
      height: bh, 'data-start': b.start, 'data-count': b.count },
    s('title', {}, `${new Date(b.start).toISOString()}: ${b.count}`));
  });
  const selection = s('rect', { class: 'selection', x: 0, y: 0, width: 0, height: H, visibility: 'hidden' });
  const svg = s('svg', { id: 'histogram', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${total} events in ${buckets.length} buckets of ${histogram.interval}; drag across to zoom` },
  bars, selection);

  const at = (e) => {
    const r = svg.getBoundingClientRect();
    return Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  };
  let start = null;
  svg.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    start = at(e);
    svg.setPointerCapture?.(e.pointerId);
    selection.setAttribute('visibility', 'visible');
    selection.setAttribute('x', start * W);
    selection.setAttribute('width', 0);
  });
  svg.addEventListener('pointermove', (e) => {
    if (start === null) return;
    const now = at(e);
    selection.setAttribute('x', Math.min(start, now) * W);
    selection.setAttribute('width', Math.abs(now - start) * W);
  });
  svg.addEventListener('pointerup', (e) => {
    if (start === null) return;
    const end = at(e);
    const [a, b] = [Math.min(start, end), Math.max(start, end)];
    start = null;
    selection.setAttribute('visibility', 'hidden');
    if (b - a > 0.005) {
      onZoom(Math.floor(lo + a * span), Math.ceil(lo + b * span));
    } else if (e.target.classList?.contains('bar')) {
      const t = Number(e.target.dataset.start);
      onZoom(t, t + step);
    }
  });
  svg.addEventListener('pointercancel', () => {
    start = null;
    selection.setAttribute('visibility', 'hidden');
  });

  return h('figure', { class: 'histogram' }, svg,
    h('figcaption', { class: 'axis' }, h('span', {}, axisLabel(lo)),
      h('span', { class: 'hint' }, `${total.toLocaleString()} events · ${histogram.interval} buckets · drag to zoom`),
      h('span', {}, axisLabel(hi))));
}
