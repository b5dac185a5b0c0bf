// The spend chart of one limit: what the key spent over its current rolling window, as a step
// line, against the cap. Inline SVG built with DOM calls (the CSP allows no inline anything).

import { svg, el, amount, assetName, duration, fraction } from './util.js';

const W = 360, H = 150, L = 8, R = 8, T = 14, B = 22;

/**
 * `limit`: {asset, window, window_secs, cap, spent}; `series`: [{at, asset, amount}] (the
 * key's reservations, any asset); `now` and `issuedAt`: ms.
 */
export function spendChart(limit, series, now, issuedAt) {
  const window = (limit.window_secs || 86400) * 1000;
  // A key younger than the window has no history before it was issued: start there.
  const start = Math.max(now - window, Number.isFinite(issuedAt) ? issuedAt : -Infinity);
  const span = Math.max(1000, now - start);
  const points = series
    .filter((s) => s.asset === limit.asset)
    .map((s) => ({ t: Date.parse(s.at), v: BigInt(s.amount) }))
    .filter((p) => p.t > start && p.t <= now)
    .sort((a, b) => a.t - b.t);
  let cap = 0n;
  try { cap = BigInt(limit.cap); } catch { /* stays 0 */ }
  let total = 0n;
  const steps = points.map((p) => ({ t: p.t, v: (total += p.v) }));
  const top = total > cap ? total : cap > 0n ? cap : 1n;
  const x = (t) => L + ((t - start) / span) * (W - L - R);
  const y = (v) => T + (1 - fraction(v.toString(), top.toString())) * (H - T - B);

  let d = `M${x(start).toFixed(1)},${y(0n).toFixed(1)}`;
  let prev = 0n;
  for (const s of steps) {
    d += ` H${x(s.t).toFixed(1)} V${y(s.v).toFixed(1)}`;
    prev = s.v;
  }
  d += ` H${x(now).toFixed(1)}`;
  const area = `${d} V${y(0n).toFixed(1)} Z`;
  const capY = y(cap).toFixed(1);
  const pct = Math.round(fraction(prev.toString(), cap.toString()) * 100);

  const chart = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${assetName(limit.asset)} spent over the last ${limit.window}: ${pct}% of the cap` },
    svg('line', { class: 'axis', x1: L, x2: W - R, y1: y(0n), y2: y(0n) }),
    svg('path', { class: 'area', d: area }),
    svg('path', { class: 'spend', d }),
    svg('line', { class: 'cap', x1: L, x2: W - R, y1: capY, y2: capY }),
    svg('text', { x: W - R, y: Number(capY) - 3, 'text-anchor': 'end' }, `cap ${amount(limit.asset, limit.cap)}`),
    svg('text', { x: L, y: H - 6 }, start > now - window ? `issued, ${duration(span)} ago` : `−${limit.window}`),
    svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'),
    ...steps.map((s) => svg('circle', { cx: x(s.t), cy: y(s.v), r: 2.5, class: 'spend' },
      svg('title', {}, `${new Date(s.t).toLocaleString()}: ${amount(limit.asset, s.v.toString())} in the window`))));
  return el('figure', { class: 'chart', 'data-asset': limit.asset },
    el('figcaption', {}, `${assetName(limit.asset)} per ${limit.window}: ${amount(limit.asset, limit.spent)} spent of ${amount(limit.asset, limit.cap)} (${pct}%)`),
    chart);
}
