// The keys table (GET /keys + GET /usage: two requests whatever the number of keys) and the
// detail of one key (GET /keys/{id}/usage).

import { api, session } from './api.js';
import { el, amount, assetName, fraction, duration, ago, short, clock, units } from './util.js';
import { spendChart } from './chart.js';
import { describe } from './feed.js';

const STATUS_ORDER = { active: 0, suspended: 1, expired: 2, revoked: 3 };

/** The larger share used of any limit, in [0, 1]. */
function used(u) {
  const spend = (u?.limits ?? []).map((l) => fraction(l.spent, l.cap));
  const rate = u?.rate ? 1 - u.rate.remaining / Math.max(1, u.rate.max_requests) : 0;
  return Math.max(0, rate, ...spend);
}

/** A bar of what is left (`used` in [0, 1]): full when untouched, red when nearly gone. */
function bar(label, used, title) {
  const fill = el('span');
  fill.style.width = `${Math.round((1 - used) * 1000) / 10}%`; // CSSOM, which the CSP allows
  const cls = used >= 0.9 ? 'bar high' : used >= 0.6 ? 'bar mid' : 'bar';
  return el('div', { class: 'limit', title }, label, el('div', { class: cls }, fill));
}

/** What remains of each limit, as bars (full bar = all used). */
export function limitBars(u) {
  if (!u) return el('span', { class: 'muted' }, '…');
  const out = (u.limits ?? []).map((l) =>
    bar(`${amount(l.asset, l.remaining)} left / ${l.window}`, fraction(l.spent, l.cap),
      `${assetName(l.asset)}: ${amount(l.asset, l.spent)} spent of ${amount(l.asset, l.cap)} in the last ${l.window}`));
  if (u.rate) {
    out.push(bar(`${u.rate.remaining} req left / ${u.rate.window}`, 1 - u.rate.remaining / Math.max(1, u.rate.max_requests),
      `at most ${u.rate.max_requests} requests per ${u.rate.window}`));
  }
  return out.length ? out : el('span', { class: 'muted' }, 'no caps');
}

export class Keys {
  constructor({ table, filter, statusFilter, note, onOpen, onRevoke, onResume }) {
    this.tbody = table.tBodies[0];
    this.head = table.tHead;
    this.filter = filter;
    this.statusFilter = statusFilter;
    this.note = note;
    this.onOpen = onOpen;
    this.onRevoke = onRevoke;
    this.onResume = onResume;
    this.keys = [];
    this.usage = new Map();
    this.sort = { col: 'status', dir: 1 };
    filter.addEventListener('input', () => this.render());
    statusFilter.addEventListener('change', () => this.render());
    this.head.addEventListener('click', (e) => {
      const col = e.target.closest('th')?.dataset.sort;
      if (!col) return;
      this.sort = { col, dir: this.sort.col === col ? -this.sort.dir : 1 };
      this.render();
    });
  }

  name(id) {
    return this.keys.find((k) => k.id === id)?.name ?? id;
  }

  async load() {
    const [keys, usage] = await Promise.all([api('/keys'), api('/usage')]);
    if (!session.get()) return []; // logged out meanwhile: show nothing
    this.keys = keys;
    this.usage = new Map(usage.map((u) => [u.id, u]));
    this.render();
    return keys;
  }

  clear() {
    this.keys = [];
    this.usage = new Map();
    this.tbody.replaceChildren();
    this.note.textContent = '';
  }

  sortValue(k) {
    const u = this.usage.get(k.id);
    switch (this.sort.col) {
      case 'name': return k.name.toLowerCase();
      case 'status': return STATUS_ORDER[k.status] ?? 9;
      case 'expires': return Date.parse(k.expires_at);
      case 'usage': return used(u);
      case 'last': return u?.last_used_at ? -Date.parse(u.last_used_at) : Infinity;
      default: return String(k[this.sort.col] ?? '');
    }
  }

  render() {
    const q = this.filter.value.trim().toLowerCase();
    const status = this.statusFilter.value;
    const rows = this.keys
      .filter((k) => !status || k.status === status)
      .filter((k) => !q || [k.name, k.id, k.profile, k.mode, k.status].some((s) => String(s).toLowerCase().includes(q)))
      .sort((a, b) => {
        const x = this.sortValue(a), y = this.sortValue(b);
        return (x < y ? -1 : x > y ? 1 : 0) * this.sort.dir || a.name.localeCompare(b.name);
      });
    for (const th of this.head.querySelectorAll('th')) {
      th.classList.toggle('asc', th.dataset.sort === this.sort.col && this.sort.dir > 0);
      th.classList.toggle('desc', th.dataset.sort === this.sort.col && this.sort.dir < 0);
    }
    this.tbody.replaceChildren(...rows.map((k) => this.row(k)));
    this.note.textContent = `${rows.length} of ${this.keys.length}`;
  }

  row(k) {
    const u = this.usage.get(k.id);
    const live = k.status === 'active' || k.status === 'suspended';
    return el('tr', { 'data-key-id': k.id, 'data-status': k.status },
      el('td', {}, el('a', { class: 'key', href: `#key/${encodeURIComponent(k.id)}` }, k.name), el('br'), el('span', { class: 'muted mono' }, k.id)),
      el('td', {}, el('span', { class: `badge s-${k.status}` }, k.status)),
      el('td', {}, k.profile),
      el('td', {}, k.mode),
      el('td', { class: 'countdown', 'data-expires': k.status === 'active' ? k.expires_at : null }, k.status === 'active' ? duration(Date.parse(k.expires_at) - Date.now()) : '—'),
      el('td', {}, limitBars(u)),
      el('td', { title: u?.last_used_at ?? '' }, ago(u?.last_used_at)),
      el('td', { class: 'mono' }, (u?.ips ?? []).join(', ') || '—'),
      el('td', {},
        k.status === 'suspended' && el('button', { type: 'button', class: 'small resume', onclick: () => this.onResume(k) }, 'Resume'), ' ',
        live && el('button', { type: 'button', class: 'small danger revoke', onclick: () => this.onRevoke(k) }, 'Revoke')));
  }
}

/** Updates every countdown on the page. */
export function tick() {
  const now = Date.now();
  for (const td of document.querySelectorAll('[data-expires]')) {
    const left = Date.parse(td.dataset.expires) - now;
    td.textContent = left > 0 ? duration(left) : 'expired';
  }
}

function policyList(p, k, u) {
  const rows = [
    ['profile', p.profile], ['mode', p.mode ?? k.mode], ['wallet', p.wallet], ['chains', (p.chains ?? []).join(', ')],
    ['issued', new Date(k.created_at).toLocaleString()], ['expires', new Date(k.expires_at).toLocaleString()],
  ];
  if (p.not_before) rows.push(['not before', new Date(p.not_before).toLocaleString()]);
  if (p.schedule) rows.push(['schedule', `${(p.schedule.days ?? []).join(', ') || 'every day'} ${p.schedule.hours ?? 'all day'} (${p.schedule.timezone ?? 'UTC'})`]);
  const l = p.limits ?? {};
  if (l.max_value_per_tx) rows.push(['max value per transaction', amount('native', l.max_value_per_tx)]);
  if (l.max_fee_per_gas) rows.push(['max fee per gas', `${units(BigInt(l.max_fee_per_gas), 9)} gwei`]);
  if (l.max_pending != null) rows.push(['pending transactions', `${l.pending} of at most ${l.max_pending}`]);
  for (const s of u.limits ?? []) rows.push([`spend cap, ${assetName(s.asset)}`, `${amount(s.asset, s.cap)} per ${s.window} (${amount(s.asset, s.remaining)} left)`]);
  if (l.rate) rows.push(['rate', `${l.rate.max_requests} requests per ${l.rate.window} (${l.rate.remaining} left)`]);
  return el('dl', { class: 'policy' }, rows.map(([a, b]) => [el('dt', {}, a), el('dd', {}, b)]));
}

/** Fills the detail section for key `id`. */
export async function showDetail(section, id, { onRevoke, onResume, onClose }) {
  const u = await api(`/keys/${encodeURIComponent(id)}/usage`);
  if (!session.get()) return; // logged out meanwhile
  const k = u.key;
  const p = u.permissions ?? {};
  const now = Date.parse(u.now) || Date.now();
  const live = k.status === 'active' || k.status === 'suspended';
  const tomlOpen = section.dataset.keyId === k.id && section.querySelector('details')?.open;
  section.dataset.keyId = k.id;
  section.replaceChildren(
    el('div', { class: 'row' },
      el('h2', {}, `${k.name} `, el('span', { class: 'muted mono' }, k.id)),
      el('span', { class: `badge s-${k.status}` }, k.status),
      k.status === 'active' && el('span', { class: 'muted' }, 'expires in ', el('span', { 'data-expires': k.expires_at }, duration(Date.parse(k.expires_at) - Date.now()))),
      k.suspended_at && el('span', { class: 'muted' }, `suspended ${ago(k.suspended_at)}`),
      el('span', { class: 'muted' }, `last use ${ago(u.last_used_at)}${u.ips?.length ? ` from ${u.ips.join(', ')}` : ''}`),
      el('span', { class: 'row end' },
        k.status === 'suspended' && el('button', { type: 'button', class: 'resume', onclick: () => onResume(k) }, 'Resume'),
        live && el('button', { type: 'button', class: 'danger revoke', onclick: () => onRevoke(k) }, 'Revoke'),
        el('button', { type: 'button', class: 'quiet', onclick: onClose }, 'Close'))),
    el('h3', {}, 'Policy'),
    policyList(p, k, u),
    el('details', { open: tomlOpen }, el('summary', {}, 'policy file (TOML)'), el('pre', {}, u.policy_toml ?? '')),
    el('h3', {}, 'Spend against the caps'),
    (u.limits ?? []).length
      ? el('div', { class: 'charts' }, u.limits.map((l) => spendChart(l, u.spend_series ?? [], now, Date.parse(k.created_at))))
      : el('p', { class: 'muted' }, 'This key has no spend caps.'),
    el('h3', {}, 'Recent activity'),
    (u.recent ?? []).length
      ? el('table', { class: 'recent' },
        el('thead', {}, el('tr', {}, ['time', 'request', 'decision', 'summary', 'violations', 'from'].map((h) => el('th', {}, h)))),
        el('tbody', {}, u.recent.map((e) => el('tr', { title: (e.detail?.messages ?? []).join('; ') || null },
          el('td', { class: 'mono', title: e.at }, clock(e.at)),
          el('td', { class: 'mono' }, e.action),
          el('td', {}, el('span', { class: `badge d-${e.decision ?? 'admin'}` }, e.decision ?? e.actor)),
          el('td', {}, describe(e), e.tx_hash && el('span', { class: 'muted mono' }, ` tx ${short(e.tx_hash)}`)),
          el('td', { class: 'codes' }, (e.violations ?? []).join(', ')),
          el('td', { class: 'mono' }, e.client_ip ?? '')))))
      : el('p', { class: 'muted' }, 'No requests yet.'));
  section.hidden = false;
}
