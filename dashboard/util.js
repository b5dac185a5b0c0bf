// Small helpers: DOM building (text only: nothing from the server is ever parsed as HTML),
// amounts, times.

/** Builds an element; children are nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
/** Builds an SVG element (attributes only: no inline style, the CSP forbids it). */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

export const UNLIMITED = (1n << 256n) - 1n;

/** A base-unit integer as a decimal with `decimals` places, at most 6 shown. */
export function units(v, decimals) {
  if (v >= UNLIMITED) return '∞';
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(decimals + 1, '0');
  const int = BigInt(s.slice(0, s.length - decimals)).toLocaleString('en');
  const frac = s.slice(s.length - decimals).slice(0, 6).replace(/0+$/, '');
  return (neg ? '-' : '') + (frac ? `${int}.${frac}` : int);
}

/** An amount of `asset` ("native" or a token address) given in base units. */
export function amount(asset, baseUnits) {
  let v;
  try { v = BigInt(baseUnits ?? 0); } catch { return String(baseUnits); }
  if (asset === 'native') return `${units(v, 18)} ETH`;
  return v >= UNLIMITED ? '∞' : v.toLocaleString('en');
}

/** The asset's short name: ETH, or the token address shortened. */
export const assetName = (a) => (a === 'native' ? 'ETH' : short(a));

/** 0x1234…abcd */
export const short = (s) => (s && s.length > 14 ? `${s.slice(0, 6)}…${s.slice(-4)}` : s ?? '');

/** `part / whole` in [0, 1] from base-unit strings (a zero cap counts as full). */
export function fraction(part, whole) {
  try {
    const p = BigInt(part), w = BigInt(whole);
    if (w <= 0n) return 1;
    return Math.min(1, Number((p * 10000n) / w) / 10000);
  } catch { return 0; }
}

/** A duration in ms as "2d 3h", "4h 05m", "3m 07s", "12s". */
export function duration(ms) {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${pad(m)}m`;
  if (m) return `${m}m ${pad(s % 60)}s`;
  return `${s}s`;
}

/** "12s ago" from an RFC 3339 time. */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '—' : `${duration(now - t)} ago`;
}

/** The time of day of an RFC 3339 time, local. */
export function clock(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString('en-GB', { hour12: false });
}

/** Shows a short message at the bottom of the page. */
let toastTimer;
export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

/**
 * An in-page confirmation (a <dialog>, so it can be driven like the rest of the page).
 * With `word`, the owner must type it first. Resolves true when confirmed.
 */
export function confirmDialog({ title, body, ok, word }) {
  const d = document.getElementById('confirm');
  const okBtn = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  const typed = document.getElementById('confirm-typed');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-body').textContent = body;
  document.getElementById('confirm-typed-row').hidden = !word;
  document.getElementById('confirm-word').textContent = word ?? '';
  typed.value = '';
  okBtn.textContent = ok;
  okBtn.disabled = Boolean(word);
  typed.oninput = () => { okBtn.disabled = typed.value.trim() !== word; };
  return new Promise((resolve) => {
    const done = (v) => {
      okBtn.onclick = cancel.onclick = d.oncancel = null;
      if (d.open) d.close();
      resolve(v);
    };
    okBtn.onclick = () => done(true);
    cancel.onclick = () => done(false);
    d.oncancel = (e) => { e.preventDefault(); done(false); };
    d.showModal();
    (word ? typed : cancel).focus();
  });
}
