// The admin API. The token lives in sessionStorage (this tab only) and goes out as a bearer
// token on every call; no cookie is ever set or sent (credentials: 'omit').

const KEY = 'valet.adminToken';

export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** The server refused the token. */
export class Unauthorized extends Error {}

function headers(extra = {}) {
  return { Authorization: `Bearer ${session.get() ?? ''}`, ...extra };
}

/** One JSON call under /api/v1; throws Unauthorized on 401, an Error with .status otherwise. */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`/api/v1${path}`, init);
  if (r.status === 401) throw new Unauthorized('invalid token');
  let data = null;
  try { data = await r.json(); } catch { /* empty or not JSON */ }
  if (!r.ok) {
    const e = new Error(data?.error ?? `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return data;
}

/**
 * Reads the server-sent events of `path` with fetch (EventSource cannot send an
 * Authorization header) and calls `onEvent` with each `data:` payload parsed as JSON.
 * Resolves when the stream ends; rejects on a network error or when `signal` aborts.
 */
export async function stream(path, onEvent, signal, onOpen) {
  const r = await fetch(`/api/v1${path}`, {
    headers: headers({ Accept: 'text/event-stream' }),
    cache: 'no-store',
    credentials: 'omit',
    signal,
  });
  if (r.status === 401) throw new Unauthorized('invalid token');
  if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
  onOpen?.();
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue; // a keep-alive comment
      let v;
      try { v = JSON.parse(data); } catch { continue; }
      onEvent(v);
    }
  }
}
