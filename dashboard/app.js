// Valet's dashboard: log in with the admin token, then keys, key detail, the live feed,
// anomalies, audit verification, revocation and the kill switch.

import { api, session, Unauthorized } from './api.js';
import { Keys, showDetail, tick } from './keys.js';
import { Feed } from './feed.js';
import { el, toast, confirmDialog, ago } from './util.js';

const $ = (id) => document.getElementById(id);
const timers = [];
let refreshTimer = null;

const keys = new Keys({
  table: $('keys'),
  filter: $('filter'),
  statusFilter: $('status-filter'),
  note: $('keys-note'),
  onOpen: (k) => { location.hash = `key/${k.id}`; },
  onRevoke: revoke,
  onResume: resume,
});

const feed = new Feed($('feed'), $('feed-state'), {
  keyName: (id) => keys.name(id),
  onEntry: (e) => {
    if (e.action === 'anomaly' || e.event === 'anomaly' || e.kind) anomaliesSoon();
    refreshSoon(e.event || e.actor === 'admin' ? 200 : 2000);
  },
});
$('feed-pause').addEventListener('change', (e) => { feed.paused = e.target.checked; });

/** Any 401: the token is wrong (or was rotated). Nothing stays on the page. */
function fail(err) {
  if (err instanceof Unauthorized) {
    logout('invalid token: the server refused it');
    return;
  }
  toast(err.message);
}

function logout(message = '') {
  session.clear();
  feed.stop();
  keys.clear();
  while (timers.length) clearInterval(timers.pop());
  clearTimeout(refreshTimer);
  clearTimeout(anomaliesTimer);
  anomaliesTimer = null;
  refreshTimer = null;
  for (const id of ['confirm-title', 'confirm-body', 'confirm-word']) $(id).textContent = '';
  if ($('confirm').open) $('confirm').close();
  $('toast').hidden = true;
  $('detail').replaceChildren();
  delete $('detail').dataset.keyId;
  if (location.hash) history.replaceState(null, '', location.pathname);
  $('detail').hidden = true;
  $('anomalies').replaceChildren();
  $('verify-result').textContent = '';
  $('wallet').textContent = '';
  $('app').hidden = true;
  $('nav').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

async function refresh() {
  const list = await keys.load();
  $('wallet').textContent = list[0]?.wallet ? `wallet ${list[0].wallet}` : '';
  const id = detailId();
  if (id && !$('detail').hidden) await showDetail($('detail'), id, detailActions).catch(() => {});
}

/** Refreshes the keys (and the open detail) at most once per `ms`. */
function refreshSoon(ms) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    try { await refresh(); } catch (err) { fail(err); }
  }, ms);
}

let anomaliesTimer = null;
function anomaliesSoon() {
  if (anomaliesTimer) return;
  anomaliesTimer = setTimeout(() => {
    anomaliesTimer = null;
    loadAnomalies().catch(fail);
  }, 300);
}

async function loadAnomalies() {
  const list = $('anomalies');
  let items;
  try {
    items = await api('/anomalies');
  } catch (err) {
    if (err.status === 404) items = []; // a gateway without anomaly detection
    else throw err;
  }
  if (!Array.isArray(items) || items.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, 'no anomalies'));
    return;
  }
  list.replaceChildren(...items.slice().reverse().slice(0, 100).map((a) =>
    el('li', { 'data-kind': a.kind },
      el('b', {}, a.kind), ' ', el('span', { class: 'muted' }, ago(a.at)), el('br'),
      a.key_id && el('span', {}, `${keys.name(a.key_id)}: `), a.message,
      a.action_taken && el('span', { class: 'muted' }, ` → ${a.action_taken}`))));
}

function detailId() {
  const m = /^#key\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

const detailActions = {
  onRevoke: revoke,
  onResume: resume,
  onClose: () => { history.pushState('', '', location.pathname); route(); },
};

async function route() {
  const id = detailId();
  const section = $('detail');
  if (!id || $('app').hidden) {
    section.hidden = true;
    section.replaceChildren();
    return;
  }
  try {
    await showDetail(section, id, detailActions);
    section.scrollIntoView({ block: 'nearest' });
  } catch (err) { fail(err); }
}
window.addEventListener('hashchange', route);

async function revoke(k) {
  const ok = await confirmDialog({
    title: `Revoke ${k.name}?`,
    body: `Key ${k.id} stops working at once: its very next request is refused (4100 revoked). This cannot be undone.`,
    ok: 'Revoke',
  });
  if (!ok) return;
  try {
    await api(`/keys/${encodeURIComponent(k.id)}/revoke`, { method: 'POST' });
    toast(`${k.name} revoked`);
    await refresh();
  } catch (err) { fail(err); }
}

async function resume(k) {
  const ok = await confirmDialog({
    title: `Resume ${k.name}?`,
    body: `Key ${k.id} was suspended by anomaly detection. Resuming lets it sign again within its policy.`,
    ok: 'Resume',
  });
  if (!ok) return;
  try {
    await api(`/keys/${encodeURIComponent(k.id)}/resume`, { method: 'POST' });
    toast(`${k.name} resumed`);
    await refresh();
  } catch (err) { fail(err); }
}

$('kill').addEventListener('click', async () => {
  const ok = await confirmDialog({
    title: 'Revoke every key?',
    body: 'The kill switch revokes all agent keys at once; every agent is cut off on its next request. Keys cannot be un-revoked.',
    ok: 'Revoke all keys',
    word: 'revoke all',
  });
  if (!ok) return;
  try {
    const r = await api('/keys/revoke-all', { method: 'POST' });
    toast(`kill switch: ${r.revoked} keys revoked`);
    await refresh();
  } catch (err) { fail(err); }
});

$('verify').addEventListener('click', async () => {
  const out = $('verify-result');
  out.textContent = 'verifying…';
  out.className = 'muted';
  try {
    const r = await api('/audit/verify');
    out.textContent = r.ok ? `✓ audit log intact (${r.entries} entries)` : `✗ audit log broken at entry ${r.first_bad_seq}: ${r.reason}`;
    out.className = r.ok ? 'd-allow' : 'error';
    out.dataset.ok = String(r.ok);
  } catch (err) { out.textContent = ''; fail(err); }
});

$('logout').addEventListener('click', () => logout());

async function start() {
  await refresh(); // throws Unauthorized before anything is shown
  $('login').hidden = true;
  $('login-error').textContent = '';
  $('app').hidden = false;
  $('nav').hidden = false;
  feed.start(() => logout('invalid token: the server refused it'));
  loadAnomalies().catch(fail);
  timers.push(setInterval(tick, 1000));
  timers.push(setInterval(() => refreshSoon(0), 10000));
  timers.push(setInterval(() => loadAnomalies().catch(fail), 15000));
  route();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  session.set(t);
  $('login-error').textContent = '';
  try {
    await start();
  } catch (err) {
    if (err instanceof Unauthorized) logout('invalid token: the server refused it');
    else { session.clear(); $('login-error').textContent = `cannot reach the gateway: ${err.message}`; }
  }
});

if (session.get()) start().catch((err) => (err instanceof Unauthorized ? logout('invalid token: the server refused it') : fail(err)));
else logout();
