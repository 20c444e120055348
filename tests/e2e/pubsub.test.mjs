// HTTP pub/sub (seed 001, docs/protocols/pubsub.md): publish with fetch, subscribe with the
// `eventsource` package, a fetch-based SSE reader and the `ws` package; patterns, temporary
// client paths, a slow consumer, a cross-protocol check, and two nodes on Redis.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import PusherServerMod from 'pusher';
import PusherJsMod from 'pusher-js';
import { RealtimeClient } from '@supabase/realtime-js';
import { Scope, API_KEY, mintToken, requireServices, sleep, uniq } from './lib/harness.mjs';

// Registered before the scope's hooks, so clients are closed before the servers stop.
const closers = [];
after(() => {
  for (const c of closers.splice(0)) {
    try { c(); } catch { /* already closed */ }
  }
});
const scope = new Scope().hooks();

const PusherServer = PusherServerMod.default ?? PusherServerMod;
const PusherJs = PusherJsMod.default ?? PusherJsMod;
const APP = { id: '24', key: 'ps-key', secret: 'ps-secret-0123456789abcdefghijkl', projectId: 'demo' };

const chan = (p = 'ch') => uniq(p).replace(/_/g, '-');

async function until(cond, ms, what, step) {
  const end = Date.now() + ms;
  for (;;) {
    if (step) await step();
    if (cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(step ? 100 : 20);
  }
}

async function publish(server, plate, channel, body, { auth = API_KEY, legacy = false, raw } = {}) {
  const path = legacy
    ? `/${plate}/publish/${encodeURIComponent(channel)}`
    : `/${plate}/pubsub/${encodeURIComponent(channel)}/publish`;
  const headers = { 'content-type': 'application/json' };
  if (auth) headers.authorization = auth;
  const res = await fetch(server.url + path, {
    method: 'POST', headers, body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function assertError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.ok, false);
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
}

/** An `eventsource` subscriber; resolves once open (the subscription is in place by then). */
async function eventSource(server, path, auth = API_KEY) {
  const es = new EventSource(server.url + path, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: auth } }),
  });
  closers.push(() => es.close());
  const got = [];
  es.onmessage = (e) => got.push({ id: e.lastEventId, type: e.type, data: JSON.parse(e.data) });
  await new Promise((res, rej) => {
    es.onopen = res;
    es.onerror = (e) => rej(new Error(`eventsource failed: ${e.message ?? e.code}`));
  });
  es.onerror = null;
  return { es, got };
}

/** A fetch-based SSE reader keeping every raw event block (comments included). */
async function sseReader(server, path, headers = { authorization: API_KEY }) {
  const ac = new AbortController();
  const res = await fetch(server.url + path, { headers, signal: ac.signal });
  closers.push(() => ac.abort());
  const blocks = [];
  const state = { ended: false };
  if (res.status === 200) {
    (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            blocks.push(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch { /* aborted */ }
      state.ended = true;
    })();
  }
  const frames = () => blocks.filter((b) => !b.startsWith(':')).map(parseBlock);
  return { res, blocks, frames, state, abort: () => ac.abort() };
}

function parseBlock(b) {
  const f = {};
  for (const line of b.split('\n')) {
    const i = line.indexOf(':');
    f[line.slice(0, i)] = line.slice(i + 1).trimStart();
  }
  return f;
}

/** A `ws` subscriber collecting parsed frames, with its close code and reason. */
function wsClient(server, path, opts = {}) {
  const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path, opts);
  closers.push(() => ws.terminate());
  const got = [];
  const st = { ws, got, closed: null, response: null };
  ws.on('message', (m) => got.push(JSON.parse(m.toString())));
  ws.on('close', (code, reason) => { st.closed = { code, reason: reason.toString() }; });
  ws.on('error', () => {});
  ws.on('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      st.response = { status: res.statusCode, body: body ? JSON.parse(body) : null };
    });
  });
  st.opened = new Promise((res, rej) => {
    ws.once('open', res);
    ws.once('close', () => rej(new Error('closed before open')));
    ws.once('unexpected-response', () => rej(new Error('refused')));
  });
  st.opened.catch(() => {});
  return st;
}

async function wsAuthed(server, path) {
  const c = wsClient(server, path, { headers: { authorization: API_KEY } });
  // With the header, the subscription is made before the upgrade: nothing to wait for.
  await c.opened;
  return c;
}

describe('pub/sub on one node', { concurrency: false }, () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'pubsub', env: { PUSHER_APPS: JSON.stringify([APP]) } });
  });

  test('publish answers {ok, data} on both routes and refuses bad requests with envelopes', async () => {
    const ch = chan('alerts');
    let r = await publish(server, 'demo', ch, { message: 'Server restarted' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, data: { receivers: 0, channel: ch } });
    r = await publish(server, 'demo', ch, { message: { a: 1 } }, { legacy: true });
    assert.deepEqual(r.body, { ok: true, data: { receivers: 0, channel: ch } });
    r = await publish(server, 'demo', ch, { message: 1 }, { auth: `Bearer ${API_KEY}` });
    assert.equal(r.status, 200);
    r = await publish(server, 'demo', ch, { message: 1 }, { auth: `bearer ${mintToken('alice')}` });
    assert.equal(r.status, 200, 'a member\'s JWT');

    assertError(await publish(server, 'demo', ch, { message: 1 }, { auth: null }), 401, 'missing_authorization');
    assertError(await publish(server, 'demo', ch, { message: 1 }, { auth: 'nope' }), 401, 'invalid_authorization');
    assertError(await publish(server, 'demo', ch, { message: 1 }, { auth: `Bearer ${mintToken('dave')}` }), 401, 'invalid_authorization');
    assertError(await publish(server, 'demo', ch, { message: 1, extra: true }), 400, 'invalid_json');
    assertError(await publish(server, 'demo', ch, {}), 400, 'invalid_json');
    assertError(await publish(server, 'demo', ch, null, { raw: '{"message":' }), 400, 'invalid_json');
    assertError(await publish(server, 'nosuchplate', ch, { message: 1 }), 404, 'plate_not_found');
    assertError(await publish(server, 'health', ch, { message: 1 }), 404, 'plate_not_found');
    assertError(await publish(server, 'demo', ch, { message: 'x'.repeat(300 * 1024) }), 413, 'payload_too_large');
    // Fixed routes win over plates.
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
  });

  test('SSE subscribers get event: message frames with {channel, message} and increasing ids', async () => {
    const ch = chan('feed');
    const { es, got } = await eventSource(server, `/demo/pubsub/${ch}/subscribe`);
    const reader = await sseReader(server, `/demo/subscribe/${ch}`);
    assert.equal(reader.res.status, 200);
    assert.match(reader.res.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(reader.res.headers.get('cache-control'), 'no-cache');
    const messages = ['Server restarted', 42, { type: 'login', userId: '123' }, [1, 'two', null], '{"not":"json"'];
    for (const m of messages) {
      const r = await publish(server, 'demo', ch, { message: m });
      assert.equal(r.body.data.receivers, 2);
    }
    await until(() => got.length === messages.length && reader.frames().length === messages.length, 5_000, 'SSE frames');
    assert.deepEqual(got.map((g) => g.data), messages.map((message) => ({ channel: ch, message })));
    assert.ok(got.every((g) => g.type === 'message'));
    const ids = got.map((g) => Number(g.id));
    assert.ok(ids.every((id, i) => Number.isSafeInteger(id) && (i === 0 || id > ids[i - 1])), `ids ${ids}`);
    const frames = reader.frames();
    assert.ok(frames.every((f) => f.event === 'message' && /^\d+$/.test(f.id)));
    assert.deepEqual(frames.map((f) => JSON.parse(f.data).message), messages);

    // Gone subscribers leave the channel.
    es.close();
    reader.abort();
    let receivers;
    await until(() => receivers === 0, 5_000, 'the subscribers to leave', async () => {
      receivers = (await publish(server, 'demo', ch, { message: 'anyone?' })).body.data.receivers;
    });
  });

  test('SSE refusals are JSON envelopes; ?auth= works for browsers', async () => {
    const ch = chan('x');
    let r = await sseReader(server, `/demo/pubsub/${ch}/subscribe`, {});
    assert.equal(r.res.status, 401);
    assert.equal((await r.res.json()).error.code, 'missing_authorization');
    r = await sseReader(server, `/acme/pubsub/${ch}/subscribe`, { authorization: mintToken('alice') });
    assert.equal(r.res.status, 401);
    assert.equal((await r.res.json()).error.code, 'invalid_authorization');
    r = await sseReader(server, `/demo/pubsub/${ch}/subscribe?auth=${encodeURIComponent(API_KEY)}`, {});
    assert.equal(r.res.status, 200);
    await publish(server, 'demo', ch, { message: 'hi' });
    await until(() => r.frames().length === 1, 5_000, 'a frame');
  });

  test('an SSE stream stays open past the keepalive and sees `: keepalive` comments', { timeout: 40_000 }, async () => {
    const ch = chan('long');
    const r = await sseReader(server, `/demo/pubsub/${ch}/subscribe`);
    await until(() => r.blocks.includes(': keepalive'), 20_000, 'a keepalive comment');
    assert.equal(r.state.ended, false);
    await publish(server, 'demo', ch, { message: 'still here' });
    await until(() => r.frames().length === 1, 5_000, 'a frame after the keepalive');
  });

  test('WebSocket subscribers: header auth, first-message auth, refusals and the 5 s window', { timeout: 20_000 }, async () => {
    const ch = chan('ws');
    const a = await wsAuthed(server, `/demo/pubsub/${ch}/ws`);
    const b = wsClient(server, `/demo/ws/subscribe/${ch}`);
    await b.opened;
    b.ws.send(JSON.stringify({ auth: `Bearer ${API_KEY}` }));
    await until(() => b.got.length === 1, 5_000, 'the confirmation');
    assert.deepEqual(b.got[0], { ok: true, data: { channel: ch, pattern: false } });
    await publish(server, 'demo', ch, { message: { n: 1 } });
    await until(() => a.got.length === 1 && b.got.length === 2, 5_000, 'WS frames');
    assert.deepEqual(a.got[0], { channel: ch, message: { n: 1 } });
    assert.deepEqual(b.got[1], { channel: ch, message: { n: 1 } });

    // A refused header is an HTTP answer before the upgrade.
    const refused = wsClient(server, `/demo/pubsub/${ch}/ws`, { headers: { authorization: 'wrong' } });
    await until(() => refused.response, 5_000, 'the refusal');
    assert.equal(refused.response.status, 401);
    assert.equal(refused.response.body.error.code, 'invalid_authorization');

    const bad = wsClient(server, `/demo/pubsub/${ch}/ws`);
    await bad.opened;
    bad.ws.send(JSON.stringify({ auth: 'wrong' }));
    await until(() => bad.closed, 5_000, 'close after a bad auth');
    assert.equal(bad.closed.code, 1008);
    assert.equal(bad.got[0].ok, false);
    assert.equal(bad.got[0].error.code, 'invalid_authorization');

    const silent = wsClient(server, `/demo/pubsub/${ch}/ws`);
    await silent.opened;
    const t0 = Date.now();
    await until(() => silent.closed, 8_000, 'close after 5 s without auth');
    const waited = Date.now() - t0;
    assert.ok(waited >= 4_500 && waited < 7_500, `closed after ${waited} ms`);
    assert.equal(silent.closed.code, 1008);
  });

  test('pattern subscriptions match the glob, carry the concrete channel, and deliver once', async () => {
    const base = chan('user');
    const sse = await sseReader(server, `/demo/pubsub/${base}:*/subscribe?pattern=true`);
    const ws = await wsAuthed(server, `/demo/pubsub/${base}:*/ws?pattern=true`);
    const literal = await sseReader(server, `/demo/pubsub/${base}:*/subscribe`);
    const exact = await sseReader(server, `/demo/pubsub/${base}:1/subscribe`);
    let r = await publish(server, 'demo', `${base}:1`, { message: 'one' });
    assert.equal(r.body.data.receivers, 3, 'two by pattern, one exact');
    await publish(server, 'demo', `${base}:1:events`, { message: 'two' });
    await publish(server, 'demo', `${base}s:1`, { message: 'not me' });
    await publish(server, 'demo', `${base}:*`, { message: 'literal' });
    await until(() => sse.frames().length >= 3 && ws.got.length >= 3 && literal.frames().length >= 1, 5_000, 'pattern frames');
    await sleep(200);
    const seen = sse.frames().map((f) => JSON.parse(f.data));
    assert.deepEqual(seen, [
      { channel: `${base}:1`, message: 'one' },
      { channel: `${base}:1:events`, message: 'two' },
      { channel: `${base}:*`, message: 'literal' },
    ]);
    assert.deepEqual(ws.got, seen);
    assert.deepEqual(literal.frames().map((f) => JSON.parse(f.data)), [{ channel: `${base}:*`, message: 'literal' }]);
    assert.deepEqual(exact.frames().map((f) => JSON.parse(f.data).message), ['one']);
  });

  test('temporary client paths: fields, no credentials, exhaustion, expiry, max_dur, errors', { timeout: 20_000 }, async () => {
    const ch = chan('tmp');
    const issue = async (q, auth = API_KEY) => {
      const res = await fetch(`${server.url}/demo/pubsub/${ch}/client?${q}`, { headers: auth ? { authorization: auth } : {} });
      return { status: res.status, body: await res.json() };
    };
    let r = await issue('max_dur=60000&expiry=300000&max_uses=1');
    assert.equal(r.status, 200);
    const d = r.body.data;
    assert.match(d.path, /^\/demo\/s\/[0-9a-f]{64}$/);
    assert.deepEqual({ ...d, path: undefined }, {
      path: undefined, plate_id: 'demo', channel: ch, pattern: false, max_dur_ms: 60000, expiry_ms: 300000, max_uses: 1,
    });
    const c = wsClient(server, d.path);
    await c.opened;
    await sleep(300);
    await publish(server, 'demo', ch, { message: 'via token' });
    await until(() => c.got.length === 1, 5_000, 'a frame on the client path');
    assert.deepEqual(c.got[0], { channel: ch, message: 'via token' });

    const again = wsClient(server, d.path);
    await until(() => again.response, 5_000, 'the second use');
    assert.equal(again.response.status, 410);
    assert.equal(again.response.body.error.code, 'exhausted_client_socket');

    r = await issue('ttl=300');
    await sleep(500);
    const late = wsClient(server, r.body.data.path);
    await until(() => late.response, 5_000, 'a late use');
    assert.equal(late.response.status, 410);
    assert.equal(late.response.body.error.code, 'expired_client_socket');

    const random = wsClient(server, `/demo/s/${'ab'.repeat(32)}`);
    await until(() => random.response, 5_000, 'a random token');
    assert.equal(random.response.status, 401);
    assert.equal(random.response.body.error.code, 'invalid_client_socket');

    const plain = await fetch(server.url + d.path);
    assert.equal(plain.status, 400);
    assert.equal((await plain.json()).error.code, 'websocket_required');

    r = await issue('max_dur=1000&max_uses=0');
    const many = [];
    for (let i = 0; i < 3; i++) {
      const m = wsClient(server, r.body.data.path);
      await m.opened;
      many.push(m);
    }
    const t0 = Date.now();
    await until(() => many.every((m) => m.closed), 5_000, 'max_dur closes');
    assert.ok(Date.now() - t0 < 2_500);
    assert.deepEqual(many[0].closed, { code: 1000, reason: 'max_dur' });

    // A connection life past the clock's range is no limit (and no crash).
    r = await issue(`max_dur=${'9'.repeat(19)}`);
    assert.equal(r.status, 200);
    const forever = wsClient(server, r.body.data.path);
    await forever.opened;
    forever.ws.close();

    r = await issue('expiry=600001');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_query');
    r = await issue('max_uses=-1');
    assert.equal(r.body.error.code, 'invalid_query');
    r = await issue('', null);
    assert.equal(r.body.error.code, 'missing_authorization');
  });

  test('a subscriber that stops reading is closed; another keeps receiving', { timeout: 90_000 }, async () => {
    const ch = chan('flood');
    const { got } = await eventSource(server, `/demo/pubsub/${ch}/subscribe`);
    // A raw client that sends its request and never reads.
    const port = Number(new URL(server.url).port);
    const slow = net.connect(port, '127.0.0.1');
    closers.push(() => slow.destroy());
    await new Promise((res) => slow.once('connect', res));
    slow.write(`GET /demo/pubsub/${ch}/subscribe HTTP/1.1\r\nHost: x\r\nAuthorization: ${API_KEY}\r\n\r\n`);
    slow.pause();
    await sleep(300);
    const big = 'x'.repeat(128 * 1024);
    const N = 300;
    for (let i = 0; i < N; i++) {
      await publish(server, 'demo', ch, { message: { i, big } });
    }
    await until(() => got.length === N, 60_000, 'every message at the reading subscriber');
    assert.deepEqual(got.map((g) => g.data.message.i), [...Array(N).keys()]);
    // The slow one was dropped: reading now drains what was buffered, then the stream ends.
    let bytes = 0;
    const ended = new Promise((res) => { slow.on('close', res); slow.on('end', res); });
    slow.on('data', (c) => { bytes += c.length; });
    slow.resume();
    await ended;
    assert.ok(bytes < N * big.length, `the slow subscriber got ${bytes} bytes, fewer than everything`);
  });

  test('a REST emit into the channel room reaches SSE subscribers as {channel, message}', async () => {
    const ch = chan('cross');
    const { got } = await eventSource(server, `/demo/pubsub/${ch}/subscribe`);
    const res = await fetch(`${server.url}/api/projects/demo/emit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ room: `channel:demo:${ch}`, event: 'greet', payload: { hello: 'world' } }),
    });
    assert.equal(res.status, 202);
    await until(() => got.length === 1, 5_000, 'the emitted event');
    assert.deepEqual(got[0].data, { channel: ch, message: { hello: 'world' } });
  });

  test('a Socket.IO client in the custom room channel:<name> and SSE subscribers see the same messages', async () => {
    const ch = chan('sio');
    const { got } = await eventSource(server, `/demo/pubsub/${ch}/subscribe`);
    const sio = await scope.user(server, 'alice');
    assert.equal((await sio.timeout(3_000).emitWithAck('subscribe:project', 'demo')).ok, true);
    assert.equal((await sio.timeout(3_000).emitWithAck('custom:join', { room: `channel:${ch}` })).ok, true);
    const atSio = new Promise((res) => sio.on('custom:message', res));
    assert.equal((await publish(server, 'demo', ch, { message: { n: 1 } })).status, 200);
    assert.deepEqual(await atSio, { from: null, payload: { n: 1 }, room: `channel:${ch}` });
    const ack = await sio.timeout(3_000).emitWithAck('custom:broadcast', { projectId: 'demo', event: 'note', payload: { n: 2 }, room: `channel:${ch}` });
    assert.deepEqual(ack, { ok: true, data: { event: 'note' } });
    await until(() => got.length === 2, 5_000, 'both messages at the SSE subscriber');
    assert.deepEqual(got.map((g) => g.data), [{ channel: ch, message: { n: 1 } }, { channel: ch, message: { n: 2 } }]);
  });

  test('Pusher and Supabase Realtime clients share the channel both ways', async () => {
    const ch = chan('shared');
    const { got } = await eventSource(server, `/demo/pubsub/${ch}/subscribe`);
    const port = Number(new URL(server.url).port);

    const pusher = new PusherJs(APP.key, {
      cluster: 'local', wsHost: '127.0.0.1', wsPort: port, forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
    });
    closers.push(() => pusher.disconnect());
    const pch = pusher.subscribe(ch);
    let subscribed = false;
    pch.bind('pusher:subscription_succeeded', () => { subscribed = true; });
    const atPusher = [];
    pch.bind('message', (data) => atPusher.push(data));

    const realtime = new RealtimeClient(`${server.url.replace(/^http/, 'ws')}/realtime/v1`, {
      transport: WebSocket, params: { apikey: mintToken('alice'), project: 'demo' },
    });
    closers.push(() => realtime.disconnect());
    const sch = realtime.channel(ch, { config: { broadcast: { ack: true } } });
    const atSupabase = [];
    sch.on('broadcast', { event: 'message' }, (m) => atSupabase.push(m.payload));
    let joined = false;
    sch.subscribe((st) => { if (st === 'SUBSCRIBED') joined = true; });
    await until(() => subscribed && joined, 5_000, 'Pusher and Supabase subscriptions');

    // From pub/sub: every JSON kind arrives as it was published.
    const messages = ['text', 7, { type: 'login' }, [1, 2]];
    for (const message of messages) await publish(server, 'demo', ch, { message });
    await until(() => atPusher.length === 4 && atSupabase.length === 4, 5_000, 'the other protocols');
    assert.deepEqual(atPusher, messages);
    assert.deepEqual(atSupabase, messages);

    // To pub/sub: a Pusher HTTP trigger and a Supabase broadcast.
    const lib = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port), useTLS: false });
    await lib.trigger(ch, 'greet', { hello: 'pusher' });
    await sch.send({ type: 'broadcast', event: 'shout', payload: { hello: 'supabase' } });
    await until(() => got.length === 6, 5_000, 'the other protocols\' events at the SSE subscriber');
    assert.deepEqual(got.slice(4).map((g) => g.data), [
      { channel: ch, message: { hello: 'pusher' } },
      { channel: ch, message: { hello: 'supabase' } },
    ]);
  });

  test('CORS preflight on the pub/sub paths is answered 204 with the allowed origin, methods and headers', async () => {
    const preflight = (path, method) => fetch(`${server.url}${path}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': method, 'access-control-request-headers': 'content-type, authorization' },
    });
    for (const [path, method] of [
      ['/demo/pubsub/x/publish', 'POST'], ['/demo/pubsub/x/subscribe', 'GET'], ['/demo/pubsub/x/ws', 'GET'],
      ['/demo/pubsub/x/client', 'GET'], ['/demo/publish/x', 'POST'], ['/demo/subscribe/x', 'GET'],
      ['/demo/ws/subscribe/x', 'GET'], ['/demo/s/abc', 'GET'],
    ]) {
      const res = await preflight(path, method);
      assert.equal(res.status, 204, `${path}: status ${res.status}`);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
      assert.ok(res.headers.get('access-control-allow-methods'), path);
      assert.ok(res.headers.get('access-control-allow-headers'), path);
    }
    // Every other route keeps the CORS layer's own answer.
    const api = await preflight('/api/projects', 'GET');
    assert.equal(api.status, 200);
    assert.equal(api.headers.get('access-control-allow-origin'), '*');
    // A reserved first segment is not a plate.
    assert.equal((await preflight('/api/publish/x', 'POST')).status, 200);
    // A plain OPTIONS (no preflight) on a pub/sub path is not turned into a 204 either.
    const plain = await fetch(`${server.url}/demo/pubsub/x/publish`, { method: 'OPTIONS' });
    assert.notEqual(plain.status, 204);
  });
});

describe('pub/sub on two nodes (Redis)', { concurrency: false }, () => {
  let a;
  let b;
  before(async () => {
    const { redis } = requireServices('pubsub two-node tests');
    const prefix = uniq('ps');
    a = await scope.server({ name: 'ps-a', redis, prefix });
    b = await scope.server({ name: 'ps-b', redis, prefix });
  });

  test('a message published on B reaches SSE, WS and pattern subscribers on A exactly once', async () => {
    const ch = chan('pair');
    const sse = await sseReader(a, `/demo/pubsub/${ch}/subscribe`);
    const ws = await wsAuthed(a, `/demo/pubsub/${ch}/ws`);
    const pat = await sseReader(a, `/demo/pubsub/${ch.slice(0, 6)}*/subscribe?pattern=true`);
    await sleep(200);
    for (const m of ['one', 'two']) await publish(b, 'demo', ch, { message: m });
    await until(() => sse.frames().length >= 2 && ws.got.length >= 2 && pat.frames().length >= 2, 5_000, 'frames on A');
    await sleep(300);
    assert.deepEqual(sse.frames().map((f) => JSON.parse(f.data).message), ['one', 'two']);
    assert.deepEqual(ws.got.map((g) => g.message), ['one', 'two']);
    assert.deepEqual(pat.frames().map((f) => JSON.parse(f.data)), [{ channel: ch, message: 'one' }, { channel: ch, message: 'two' }]);
  });

  test('a client path issued on A is accepted on B, once', async () => {
    const ch = chan('tok');
    const res = await fetch(`${a.url}/demo/pubsub/${ch}/client?max_uses=1`, { headers: { authorization: API_KEY } });
    const { data } = await res.json();
    const c = wsClient(b, data.path);
    await c.opened;
    // A client path's subscription is made once the upgrade completes (a use is counted only
    // then), just after the client sees it open.
    await sleep(300);
    await publish(a, 'demo', ch, { message: 'across' });
    await until(() => c.got.length === 1, 5_000, 'a frame on B');
    assert.deepEqual(c.got[0], { channel: ch, message: 'across' });
    const again = wsClient(a, data.path);
    await until(() => again.response, 5_000, 'the second use on A');
    assert.equal(again.response.status, 410);
    assert.equal(again.response.body.error.code, 'exhausted_client_socket');
  });
});

describe('pub/sub limits and shutdown', { concurrency: false }, () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'ps-limits', env: { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '3' } });
  });

  test('a user token\'s publishes are rate limited; an API key\'s are not', async () => {
    const ch = chan('rate');
    const alice = `Bearer ${mintToken('alice')}`;
    for (let i = 0; i < 3; i++) {
      assert.equal((await publish(server, 'demo', ch, { message: i }, { auth: alice })).status, 200);
    }
    assertError(await publish(server, 'demo', ch, { message: 4 }, { auth: alice }), 429, 'rate_limited');
    for (let i = 0; i < 10; i++) {
      assert.equal((await publish(server, 'demo', ch, { message: i })).status, 200);
    }
  });

  test('shutdown ends SSE streams with event: close and closes WebSockets with 1001', async () => {
    const ch = chan('bye');
    const sse = await sseReader(server, `/demo/pubsub/${ch}/subscribe`);
    const ws = await wsAuthed(server, `/demo/pubsub/${ch}/ws`);
    await server.stop();
    await until(() => sse.state.ended && ws.closed, 5_000, 'streams to end');
    assert.deepEqual(sse.frames().at(-1), { event: 'close', data: '{"reason":"shutting_down"}' });
    assert.equal(ws.closed.code, 1001);
  });
});
