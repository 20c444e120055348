// The console's only way to the server: the documented REST API (docs/protocol.md, "REST"),
// with the key or token the viewer signed in with. The credential lives in sessionStorage, so
// it goes with the tab and is never written anywhere else.

const KEY = 'switchboard.console.credential';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const credential = {
  get: () => sessionStorage.getItem(KEY),
  set: (v) => sessionStorage.setItem(KEY, v),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(token, extra = {}) {
  return { Authorization: `Bearer ${token}`, Accept: 'application/json', ...extra };
}

async function errorOf(res) {
  let code = 'HTTP_' + res.status;
  let message = res.statusText || 'request failed';
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message);
}

/** GET/POST… `path` (under the origin) as JSON; throws ApiError on a non-2xx answer. */
export async function api(path, { method = 'GET', body, token = credential.get(), signal } = {}) {
  if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'not signed in');
  const init = { method, headers: headers(token), signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204 || res.status === 202) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Builds `path?k=v…`, leaving out empty values. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Reads a Server-Sent Events stream with the Authorization header (EventSource cannot send
 * one): calls onEvent(name, data) per event until `signal` aborts or the stream ends. Resolves
 * when it ends; rejects with ApiError when the server refuses it.
 */
export async function stream(path, onEvent, signal) {
  const token = credential.get();
  if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'not signed in');
  const res = await fetch(path, { headers: headers(token, { Accept: 'text/event-stream' }), signal });
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length === 0) continue;
        try {
          onEvent(name, JSON.parse(data.join('\n')));
        } catch {
          // A frame we cannot read is skipped, not fatal.
        }
      }
    }
  } catch (e) {
    if (signal?.aborted) return;
    throw e;
  }
}
