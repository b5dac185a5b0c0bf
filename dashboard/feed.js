// The live activity feed: audit entries as they are written, from GET /api/v1/events.
// Entries are queued and drawn once per animation frame; the list keeps the latest MAX_ROWS,
// so a thousand requests a second cost one DOM update per frame, not a thousand.

import { stream, Unauthorized } from './api.js';
import { el, clock, short, amount } from './util.js';

export const MAX_ROWS = 200;

// Well-known function selectors, for a readable summary (the audit entry carries the selector).
const SELECTORS = {
  '0xa9059cbb': 'transfer', '0x23b872dd': 'transferFrom', '0x095ea7b3': 'approve',
  '0x39509351': 'increaseAllowance', '0xa22cb465': 'setApprovalForAll', '0xd505accf': 'permit',
  '0x38ed1739': 'swapExactTokensForTokens', '0x8803dbee': 'swapTokensForExactTokens',
  '0x7ff36ab5': 'swapExactETHForTokens', '0x18cbafe5': 'swapExactTokensForETH',
  '0x4a25d94a': 'swapTokensForExactETH', '0xfb3bdb41': 'swapETHForExactTokens',
  '0x414bf389': 'exactInputSingle', '0x04e45aaf': 'exactInputSingle', '0xc04b8d59': 'exactInput',
  '0xb858183f': 'exactInput', '0x3593564c': 'execute', '0x24856bc3': 'execute',
  '0xac9650d8': 'multicall', '0x5ae401dc': 'multicall', '0x82ad56cb': 'aggregate3',
  '0x174dea71': 'aggregate3Value', '0x252dba42': 'aggregate', '0xe9ae5c53': 'execute',
  '0xd0e30db0': 'deposit', '0x2e1a7d4d': 'withdraw',
};

/** A one-line, human summary of an audit entry's decoded detail. */
export function describe(e) {
  const d = e.detail ?? {};
  if (e.event) return e.event === 'key.revoke_all' ? `kill switch: ${e.revoked} keys revoked` : `${e.event} ${e.id ?? e.key?.id ?? ''}`;
  if (d.unauthorized) return `refused: ${d.unauthorized}`;
  if (d.error) return `error: ${d.error}`;
  if (d.to !== undefined || d.selector) {
    const fn = d.selector ? (SELECTORS[d.selector] ?? d.selector) : 'plain send';
    const parts = [`${fn} → ${d.to ? short(d.to) : 'create'}`];
    if (d.value && d.value !== '0') parts.push(amount('native', d.value));
    return parts.join(' · ');
  }
  if (d.primary_type) return `sign ${d.primary_type}${d.domain ? ` (${d.domain})` : ''}${d.spender ? ` for ${short(d.spender)}` : ''}`;
  if (d.bytes !== undefined) return `message of ${d.bytes} bytes`;
  if (e.actor === 'admin') {
    if (e.action === 'key.issue') return `issued: ${d.profile ?? ''}${d.expires_at ? `, expires ${new Date(d.expires_at).toLocaleString()}` : ''}`;
    if (e.action === 'key.revoke') return 'revoked by the owner';
    if (e.action === 'key.revoke_all') return 'kill switch: every key revoked';
    return Object.keys(d).length ? JSON.stringify(d) : '';
  }
  return (d.messages ?? []).join('; ');
}

export class Feed {
  constructor(list, state, { keyName, onEntry }) {
    this.list = list;
    this.state = state;
    this.keyName = keyName;
    this.onEntry = onEntry;
    this.queue = [];
    this.scheduled = false;
    this.received = 0;
    this.paused = false;
    this.abort = null;
  }

  /** Connects and keeps reconnecting (with back-off) until stop(). */
  start(onUnauthorized) {
    this.stop();
    const ctrl = new AbortController();
    this.abort = ctrl;
    let delay = 500;
    const loop = async () => {
      while (!ctrl.signal.aborted) {
        try {
          await stream('/events', (v) => this.push(v), ctrl.signal, () => {
            delay = 500;
            this.setState('live');
          });
          this.setState('reconnecting…');
        } catch (err) {
          if (ctrl.signal.aborted) return;
          if (err instanceof Unauthorized) { onUnauthorized(); return; }
          this.setState('disconnected, retrying…');
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10000);
      }
    };
    loop();
  }

  stop() {
    this.abort?.abort();
    this.abort = null;
    this.queue = [];
    this.list.replaceChildren();
    this.received = 0;
    this.setState('');
  }

  setState(text) {
    this.state.textContent = text;
    this.state.dataset.state = text;
  }

  push(entry) {
    this.received++;
    this.onEntry?.(entry);
    if (this.paused) return;
    this.queue.push(entry);
    // Frames do not run in a hidden tab: never hold more than what could be shown.
    if (this.queue.length > 2 * MAX_ROWS) this.queue.splice(0, this.queue.length - MAX_ROWS);
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.scheduled = false;
    const items = this.queue.slice(-MAX_ROWS);
    this.queue = [];
    const frag = document.createDocumentFragment();
    for (let i = items.length - 1; i >= 0; i--) frag.append(this.row(items[i]));
    this.list.prepend(frag);
    while (this.list.childElementCount > MAX_ROWS) this.list.lastElementChild.remove();
    this.list.dataset.received = String(this.received);
  }

  row(e) {
    const decision = e.decision ?? (e.event ? 'admin' : e.actor ?? '');
    const codes = (e.violations ?? []).join(', ');
    const messages = (e.detail?.messages ?? []).join('; ');
    const who = e.key_id ? this.keyName(e.key_id) : e.actor === 'admin' || e.event ? 'owner' : 'unknown key';
    return el('li', { 'data-decision': decision, 'data-key-id': e.key_id ?? e.id ?? null, title: messages || null },
      el('span', { class: 'muted mono' }, clock(e.at ?? new Date().toISOString())),
      el('span', {}, el('span', { class: `badge d-${decision}` }, decision), ' ', el('span', { class: 'mono' }, e.action ?? e.event ?? '')),
      el('span', { class: 'what' },
        el('b', {}, who), ' ', describe(e),
        codes && el('span', { class: 'codes' }, ` ✗ ${codes}`),
        e.client_ip && el('span', { class: 'muted' }, ` from ${e.client_ip}`),
        e.tx_hash && el('span', { class: 'muted mono' }, ` tx ${short(e.tx_hash)}`)));
  }
}
