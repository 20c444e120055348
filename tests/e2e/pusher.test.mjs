// The Pusher Channels front end (docs/protocols/pusher.md) with the official clients: pusher-js
// 8.x (Node build) and the `pusher` server library (HTTP API, channel authorisation), plus a
// plain `ws` client where a test needs the exact frames and close codes
// (COMPAT-PROTOCOLS A.15). One node, and two nodes on one Redis.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import PusherServerMod from 'pusher';
import PusherJsMod from 'pusher-js';
import { Scope, sleep, uniq, requireServices, requireMongo, http, assertHttpError, API_KEY, mintToken } from './lib/harness.mjs';

const PusherServer = PusherServerMod.default ?? PusherServerMod;
const PusherJs = PusherJsMod.default ?? PusherJsMod;

const APP = { id: '42', key: 'e2e-pusher-key', secret: 'e2e-pusher-secret-0123456789abcdef', projectId: 'demo' };
const LIMITED = {
  id: '43',
  key: 'e2e-limited-key',
  secret: 'e2e-limited-secret-0123456789abcdef',
  projectId: 'demo',
  maxConnections: 1,
  enableClientMessages: false,
};
const PUSHER_ENV = { PUSHER_APPS: JSON.stringify([APP, LIMITED]) };
const SOCKET_ID = /^\d+\.\d+$/;

// Registered before the scope's hooks, so clients are closed before the servers stop (pusher-js
// would otherwise keep reconnecting to a stopped server).
const clients = [];
after(() => {
  for (const c of clients.splice(0)) {
    try {
      c.close();
    } catch {
      /* already closed */
    }
  }
});
const scope = new Scope().hooks();

const portOf = (server) => Number(new URL(server.url).port);

function lib(server, app = APP, extra = {}) {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: '127.0.0.1',
    port: String(portOf(server)),
    useTLS: false,
    ...extra,
  });
}

/** A pusher-js client whose channel auth is signed by the `pusher` lib (or `auth` when given). */
function client(server, { app = APP, presence, auth } = {}) {
  const signer = lib(server, app);
  const c = new PusherJs(app.key, {
    cluster: 'local',
    wsHost: '127.0.0.1',
    wsPort: portOf(server),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        try {
          cb(null, auth ? auth(socketId, channelName) : signer.authorizeChannel(socketId, channelName, presence));
        } catch (e) {
          cb(e, null);
        }
      },
    },
  });
  clients.push({ close: () => c.disconnect() });
  return c;
}

function within(ms, what, fn) {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    fn((v) => {
      clearTimeout(timer);
      res(v);
    }, (e) => {
      clearTimeout(timer);
      rej(e);
    });
  });
}

async function connected(server, opts) {
  const c = client(server, opts);
  await within(5_000, 'connected', (res) => c.connection.bind('connected', res));
  return c;
}

function subscribed(c, name) {
  const ch = c.subscribe(name);
  return within(5_000, `subscription to ${name}`, (res, rej) => {
    ch.bind('pusher:subscription_succeeded', () => res(ch));
    ch.bind('pusher:subscription_error', (e) => rej(new Error(`subscription_error ${JSON.stringify(e)}`)));
  });
}

function nextEvent(ch, event, ms = 3_000) {
  return within(ms, event, (res) => {
    const on = (data, meta) => {
      ch.unbind(event, on);
      res({ data, meta });
    };
    ch.bind(event, on);
  });
}

/** Records every `event` on the channel. */
function recordEvents(ch, event) {
  const items = [];
  ch.bind(event, (data, meta) => items.push({ data, meta }));
  return items;
}

async function until(cond, what, ms = 3_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

// ---- raw protocol client ----

const WS_PATH = (key = APP.key, query = 'protocol=7&client=js&version=8.6.0&flash=false') => `/app/${key}?${query}`;

function raw(server, path = WS_PATH()) {
  const ws = new WebSocket(server.url.replace('http://', 'ws://') + path);
  const frames = [];
  ws.on('message', (m) => {
    try {
      const f = JSON.parse(m.toString());
      if (typeof f.data === 'string') {
        try {
          f.parsed = JSON.parse(f.data);
        } catch {
          f.parsed = f.data;
        }
      }
      frames.push(f);
    } catch {
      frames.push({ unparsable: m.toString() });
    }
  });
  ws.on('error', () => {});
  const closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  const r = {
    ws,
    frames,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    /** The first frame matching `pred` (removed from `frames`). */
    async next(pred, ms = 3_000) {
      const p = typeof pred === 'string' ? (f) => f.event === pred : pred;
      await until(() => frames.some(p), `a frame matching ${pred}`, ms);
      return frames.splice(frames.findIndex(p), 1)[0];
    },
    async none(pred, ms = 300) {
      const p = typeof pred === 'string' ? (f) => f.event === pred : pred;
      await sleep(ms);
      assert.ok(!frames.some(p), `unexpected frame: ${JSON.stringify(frames.find(p))}`);
    },
    close: () => ws.close(),
  };
  clients.push(r);
  return r;
}

async function rawConnected(server, path) {
  const r = raw(server, path);
  const f = await r.next('pusher:connection_established');
  r.socketId = f.parsed.socket_id;
  return r;
}

async function rawSubscribe(r, channel, { signer, presence } = {}) {
  const data = { channel };
  if (signer) Object.assign(data, signer.authorizeChannel(r.socketId, channel, presence));
  r.send({ event: 'pusher:subscribe', data });
  return r.next((f) => f.channel === channel && /subscription_(succeeded|error)$/.test(f.event));
}

async function expectRefused(server, path, code) {
  const r = raw(server, path);
  const err = await r.next('pusher:error');
  assert.equal(err.parsed.code, code, JSON.stringify(err));
  assert.equal(typeof err.parsed.message, 'string');
  const c = await within(3_000, 'close', (res) => r.closed.then(res));
  assert.equal(c.code, code);
  assert.ok(!r.frames.some((f) => f.event === 'pusher:connection_established'));
}

describe('pusher, one node', () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'pusher', env: PUSHER_ENV });
  });

  test('pusher-js connects; the socket id has Pusher\'s shape and the pusher lib signs for it', async () => {
    const c = await connected(server);
    assert.equal(c.connection.state, 'connected');
    assert.match(c.connection.socket_id, SOCKET_ID);
    const auth = lib(server).authorizeChannel(c.connection.socket_id, 'private-x');
    assert.match(auth.auth, /^e2e-pusher-key:[0-9a-f]{64}$/);
    const r = await rawConnected(server);
    assert.match(r.socketId, SOCKET_ID);
    assert.notEqual(r.socketId, c.connection.socket_id);
    assert.equal(r.frames.length, 0, 'connection_established is the first frame');
  });

  test('refusals: pusher:error then close with the same code', async () => {
    await expectRefused(server, WS_PATH('no-such-key'), 4001);
    await expectRefused(server, WS_PATH(APP.key, 'protocol=8&client=js'), 4007);
    await expectRefused(server, WS_PATH(APP.key, 'protocol=x'), 4007);
    await expectRefused(server, WS_PATH(APP.key, 'client=js&version=8.6.0'), 4008);
    await expectRefused(server, `/app/${APP.key}/extra?protocol=7`, 4005);
    await expectRefused(server, '/app/?protocol=7', 4005);
    for (const p of [5, 6]) {
      const r = await rawConnected(server, WS_PATH(APP.key, `protocol=${p}`));
      assert.match(r.socketId, SOCKET_ID);
    }
  });

  test('over the app\'s connection quota: 4004; the slot frees when the connection goes', async () => {
    const first = await rawConnected(server, WS_PATH(LIMITED.key));
    await expectRefused(server, WS_PATH(LIMITED.key), 4004);
    first.close();
    await first.closed;
    let again;
    for (let i = 0; i < 20 && !again; i++) {
      const r = raw(server, WS_PATH(LIMITED.key));
      const f = await r.next((x) => x.event === 'pusher:connection_established' || x.event === 'pusher:error');
      if (f.event === 'pusher:connection_established') again = r;
      else await sleep(50);
    }
    assert.ok(again, 'a connection is admitted again once the first closed');
    again.close();
    await again.closed;
  });

  test('pusher-js with an unknown key is refused with 4001 and does not retry', async () => {
    const c = client(server, { app: { ...APP, key: 'unknown-key' } });
    const errors = [];
    c.connection.bind('error', (e) => errors.push(e));
    await until(() => JSON.stringify(errors).includes('4001'), 'an error carrying 4001', 5_000);
    await until(() => ['disconnected', 'failed'].includes(c.connection.state), `not connected (${c.connection.state})`);
    await sleep(1_500);
    assert.ok(['disconnected', 'failed'].includes(c.connection.state), c.connection.state);
  });

  test('pusher:ping gets pusher:pong; bad frames get an error and the connection stays', async () => {
    const r = await rawConnected(server);
    r.send({ event: 'pusher:ping', data: {} });
    const pong = await r.next('pusher:pong');
    assert.equal(pong.data, '{}');
    r.send('not json');
    assert.equal((await r.next('pusher:error')).parsed.code, null);
    r.send({ event: 'pusher:subscribe', data: { nope: 1 } });
    await r.next('pusher:error');
    r.send({ event: 'pusher:unknown', data: {} });
    r.send({ event: 'pusher:ping', data: '{}' });
    await r.next('pusher:pong');
    assert.equal(r.ws.readyState, WebSocket.OPEN);
  });

  test('public channel: trigger delivers parsed data; socket_id exclusion; several channels; batch', async () => {
    const a = await connected(server);
    const b = await connected(server);
    const name = uniq('pub');
    const chA = await subscribed(a, name);
    const chB = await subscribed(b, name);
    const http = lib(server);
    let got = nextEvent(chA, 'greet');
    await http.trigger(name, 'greet', { text: 'hé "x"', n: 1 });
    assert.deepEqual((await got).data, { text: 'hé "x"', n: 1 });

    const seenA = recordEvents(chA, 'skip');
    got = nextEvent(chB, 'skip');
    await http.trigger(name, 'skip', { n: 2 }, { socket_id: a.connection.socket_id });
    assert.deepEqual((await got).data, { n: 2 });
    await sleep(300);
    assert.equal(seenA.length, 0, 'the excluded socket does not get it');

    const other = uniq('pub');
    const chA2 = await subscribed(a, other);
    const onFirst = recordEvents(chA, 'multi');
    const onSecond = recordEvents(chA2, 'multi');
    const onB = recordEvents(chB, 'multi');
    await http.trigger([name, other], 'multi', { n: 3 });
    await until(() => onFirst.length === 1 && onSecond.length === 1 && onB.length === 1, 'one delivery per channel');
    await sleep(200);
    assert.deepEqual([onFirst.length, onSecond.length, onB.length], [1, 1, 1]);

    const batch = recordEvents(chB, 'batched');
    await http.triggerBatch([
      { channel: name, name: 'batched', data: { i: 1 } },
      { channel: name, name: 'batched', data: { i: 2 } },
    ]);
    await until(() => batch.length === 2, 'both batch events');
    assert.deepEqual(batch.map((e) => e.data.i), [1, 2]);

    const res = await http.trigger(name, 'counted', 'x', { info: 'subscription_count' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { channels: { [name]: { subscription_count: 2 } } });
  });

  test('string data is delivered verbatim', async () => {
    const r = await rawConnected(server);
    const name = uniq('pub');
    assert.equal((await rawSubscribe(r, name)).event, 'pusher_internal:subscription_succeeded');
    await lib(server).trigger(name, 'text', 'just a string');
    const f = await r.next('text');
    assert.deepEqual({ event: f.event, channel: f.channel, data: f.data }, { event: 'text', channel: name, data: 'just a string' });
  });

  test('private channel: signed subscription succeeds; a wrong signature is an AuthError and gets nothing', async () => {
    const name = `private-${uniq('p')}`;
    const good = await connected(server);
    const ch = await subscribed(good, name);
    const bad = await connected(server, { auth: () => ({ auth: `${APP.key}:${'0'.repeat(64)}` }) });
    const badCh = bad.subscribe(name);
    const err = await within(3_000, 'subscription_error', (res) => badCh.bind('pusher:subscription_error', res));
    assert.equal(err.type, 'AuthError');
    assert.equal(err.status, 401);
    const leaked = recordEvents(badCh, 'secret');
    const got = nextEvent(ch, 'secret');
    await lib(server).trigger(name, 'secret', { s: 1 });
    await got;
    await sleep(200);
    assert.equal(leaked.length, 0);

    const r = await rawConnected(server);
    const other = lib(server, LIMITED);
    const wrongKey = await rawSubscribe(r, name, { signer: other });
    assert.equal(wrongKey.event, 'pusher:subscription_error');
    assert.equal(wrongKey.parsed.type, 'AuthError');
    r.send({ event: 'pusher:subscribe', data: { channel: name } });
    assert.equal((await r.next((f) => f.channel === name)).event, 'pusher:subscription_error');
    for (const bad of ['bad channel', '#server-to-user-1', 'x'.repeat(201)]) {
      r.send({ event: 'pusher:subscribe', data: { channel: bad, auth: '' } });
      const f = await r.next((x) => x.event === 'pusher:subscription_error' && x.channel === bad);
      assert.equal(typeof f.parsed.error, 'string');
    }
  });

  test('presence: members, count, me; one member per user; member_removed once, after the last socket', async () => {
    const name = `presence-${uniq('room')}`;
    const ann = await connected(server, { presence: { user_id: 'ann', user_info: { name: 'Ann' } } });
    const annCh = await subscribed(ann, name);
    assert.equal(annCh.members.count, 1);
    assert.deepEqual(annCh.members.me, { id: 'ann', info: { name: 'Ann' } });

    const added = nextEvent(annCh, 'pusher:member_added');
    const bob = await connected(server, { presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
    const bobCh = await subscribed(bob, name);
    assert.equal(bobCh.members.count, 2);
    assert.deepEqual(bobCh.members.get('ann'), { id: 'ann', info: { name: 'Ann' } });
    assert.deepEqual((await added).data, { id: 'bob', info: { name: 'Bob' } });

    const annAdds = recordEvents(annCh, 'pusher:member_added');
    const annRemoves = recordEvents(annCh, 'pusher:member_removed');
    const bob2 = await connected(server, { presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
    const bob2Ch = await subscribed(bob2, name);
    assert.equal(bob2Ch.members.count, 2, 'two sockets of one user are one member');
    await sleep(300);
    assert.equal(annAdds.length, 0, 'no second member_added for the same user');

    bob2.disconnect();
    await sleep(400);
    assert.equal(annRemoves.length, 0, 'closing one of two sockets removes nobody');
    bob.disconnect();
    await until(() => annRemoves.length === 1, 'member_removed');
    assert.deepEqual(annRemoves[0].data, { id: 'bob', info: { name: 'Bob' } });
    await sleep(300);
    assert.equal(annRemoves.length, 1, 'member_removed once');
    assert.equal(annCh.members.count, 1);

    const res = await lib(server).get({ path: `/channels/${name}/users` });
    assert.deepEqual(await res.json(), { users: [{ id: 'ann' }] });
    const info = await lib(server).get({ path: `/channels/${name}`, params: { info: 'user_count,subscription_count' } });
    assert.deepEqual(await info.json(), { occupied: true, user_count: 1, subscription_count: 1 });
    const list = await lib(server).get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } });
    assert.deepEqual((await list.json()).channels[name], { user_count: 1 });
  });

  test('presence limits and re-subscription are answered, and change nothing', async () => {
    const name = `presence-${uniq('lim')}`;
    const signer = lib(server);
    const r = await rawConnected(server);
    const ok = await rawSubscribe(r, name, { signer, presence: { user_id: 7 } });
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
    assert.deepEqual(ok.parsed.presence, { ids: ['7'], hash: { 7: null }, count: 1 });
    const again = await rawSubscribe(r, name, { signer, presence: { user_id: 7 } });
    assert.equal(again.event, 'pusher_internal:subscription_succeeded');
    assert.equal(again.parsed.presence.count, 1);
    const long = await rawSubscribe(r, `presence-${uniq('l')}`, { signer, presence: { user_id: 'u'.repeat(129) } });
    assert.equal(long.parsed.type, 'LimitReached');
    const big = await rawSubscribe(r, `presence-${uniq('l')}`, { signer, presence: { user_id: 'u', user_info: { b: 'x'.repeat(1100) } } });
    assert.equal(big.parsed.type, 'LimitReached');
  });

  test('client events: to the others on private and presence channels, never the sender; refused elsewhere', async () => {
    const name = `private-${uniq('c')}`;
    const a = await connected(server);
    const b = await connected(server);
    const chA = await subscribed(a, name);
    const chB = await subscribed(b, name);
    const own = recordEvents(chA, 'client-hi');
    const got = nextEvent(chB, 'client-hi');
    assert.ok(chA.trigger('client-hi', { from: 'a' }));
    assert.deepEqual((await got).data, { from: 'a' });
    await sleep(200);
    assert.equal(own.length, 0, 'not echoed to the sender');

    const room = `presence-${uniq('c')}`;
    const p1 = await connected(server, { presence: { user_id: 'p1' } });
    const p2 = await connected(server, { presence: { user_id: 'p2' } });
    const ch1 = await subscribed(p1, room);
    const ch2 = await subscribed(p2, room);
    const fromP1 = nextEvent(ch2, 'client-move');
    ch1.trigger('client-move', { x: 1 });
    const ev = await fromP1;
    assert.deepEqual(ev.data, { x: 1 });
    assert.equal(ev.meta?.user_id, 'p1');

    const r = await rawConnected(server);
    const pub = uniq('pub');
    await rawSubscribe(r, pub);
    r.send({ event: 'client-x', channel: pub, data: {} });
    assert.match((await r.next('pusher:error')).parsed.message, /private and presence/);
    r.send({ event: 'client-x', channel: name, data: {} });
    assert.match((await r.next('pusher:error')).parsed.message, /not subscribed/);
    await rawSubscribe(r, name, { signer: lib(server) });
    r.send({ event: 'client-x', channel: name, data: 'x'.repeat(11 * 1024) });
    assert.match((await r.next('pusher:error')).parsed.message, /10 KB/);
    const enc = `private-encrypted-${uniq('e')}`;
    const encSigner = lib(server, APP, { encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
    assert.equal((await rawSubscribe(r, enc, { signer: encSigner })).event, 'pusher_internal:subscription_succeeded');
    r.send({ event: 'client-x', channel: enc, data: {} });
    assert.match((await r.next('pusher:error')).parsed.message, /private and presence/);
  });

  test('encrypted channels relay the app\'s ciphertext untouched', async () => {
    const enc = `private-encrypted-${uniq('e')}`;
    const signer = lib(server, APP, { encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
    const r = await rawConnected(server);
    assert.equal((await rawSubscribe(r, enc, { signer })).event, 'pusher_internal:subscription_succeeded');
    await signer.trigger(enc, 'sealed', { secret: 'plain text' });
    const f = await r.next('sealed');
    assert.ok(!f.data.includes('plain text'), 'the server never sees the plaintext');
    assert.ok(f.parsed.ciphertext && f.parsed.nonce, f.data);
  });

  test('the 11th client event within a second is refused with 4301, and the socket stays open', async () => {
    const name = `private-${uniq('rate')}`;
    const r = await rawConnected(server);
    const peer = await rawConnected(server);
    const signer = lib(server);
    await rawSubscribe(r, name, { signer });
    await rawSubscribe(peer, name, { signer });
    for (let i = 0; i < 11; i++) r.send({ event: 'client-burst', channel: name, data: { i } });
    const err = await r.next('pusher:error');
    assert.equal(err.parsed.code, 4301);
    await until(() => peer.frames.filter((f) => f.event === 'client-burst').length === 10, '10 delivered');
    await sleep(200);
    assert.equal(peer.frames.filter((f) => f.event === 'client-burst').length, 10);
    assert.equal(r.ws.readyState, WebSocket.OPEN);
    await sleep(1_000);
    r.send({ event: 'client-burst', channel: name, data: { i: 'later' } });
    await peer.next((f) => f.event === 'client-burst' && f.parsed.i === 'later');
  });

  test('an app without client messages refuses client events', async () => {
    const r = await rawConnected(server, WS_PATH(LIMITED.key));
    const name = `private-${uniq('off')}`;
    await rawSubscribe(r, name, { signer: lib(server, LIMITED) });
    r.send({ event: 'client-x', channel: name, data: {} });
    assert.match((await r.next('pusher:error')).parsed.message, /disabled/);
    r.close();
    await r.closed;
  });

  test('unsubscribe stops delivery', async () => {
    const c = await connected(server);
    const name = uniq('pub');
    const ch = await subscribed(c, name);
    const seen = recordEvents(ch, 'after');
    c.unsubscribe(name);
    await sleep(200);
    await lib(server).trigger(name, 'after', {});
    await sleep(300);
    assert.equal(seen.length, 0);
    const r = await rawConnected(server);
    await rawSubscribe(r, name);
    r.send({ event: 'pusher:unsubscribe', data: { channel: name } });
    await sleep(200);
    await lib(server).trigger(name, 'after', {});
    await r.none('after');
  });

  test('HTTP API: signatures, timestamps and body_md5 are checked; shapes are Pusher\'s', async () => {
    const http = lib(server);
    const wrong = lib(server, { ...APP, secret: 'another-secret-0123456789abcdef01' });
    await assert.rejects(wrong.trigger('x', 'e', {}), (e) => e.status === 401);
    const unknown = lib(server, { ...APP, id: '999' });
    await assert.rejects(unknown.trigger('x', 'e', {}), (e) => e.status === 404);

    const send = async (path, { ts = Math.floor(Date.now() / 1000), body, md5, method = 'POST' } = {}) => {
      const { createHash, createHmac } = await import('node:crypto');
      const params = { auth_key: APP.key, auth_timestamp: String(ts), auth_version: '1.0' };
      if (body !== undefined) params.body_md5 = md5 ?? createHash('md5').update(body).digest('hex');
      const sorted = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
      const sig = createHmac('sha256', APP.secret).update(`${method}\n${path}\n${sorted}`).digest('hex');
      const q = new URLSearchParams({ ...params, auth_signature: sig });
      const res = await fetch(`${server.url}${path}?${q}`, {
        method,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        body,
      });
      return { status: res.status, text: await res.text() };
    };
    const body = JSON.stringify({ name: 'e', data: '{}', channels: ['chat'] });
    assert.equal((await send('/apps/42/events', { body })).status, 200);
    assert.equal((await send('/apps/42/events', { body, ts: Math.floor(Date.now() / 1000) - 700 })).status, 401);
    assert.equal((await send('/apps/42/events', { body, md5: '0'.repeat(32) })).status, 401);
    assert.equal((await send('/apps/42/events', { body: '{not json' })).status, 400);
    const tooMany = JSON.stringify({ name: 'e', data: '{}', channels: Array.from({ length: 101 }, (_, i) => `c${i}`) });
    assert.equal((await send('/apps/42/events', { body: tooMany })).status, 400);
    const big = JSON.stringify({ name: 'e', data: 'x'.repeat(11 * 1024), channel: 'chat' });
    assert.equal((await send('/apps/42/events', { body: big })).status, 413);
    const both = JSON.stringify({ name: 'e', data: '{}', channel: 'a', channels: ['b'] });
    assert.equal((await send('/apps/42/events', { body: both })).status, 400);
    const badSocket = JSON.stringify({ name: 'e', data: '{}', channel: 'a', socket_id: 'abc' });
    assert.equal((await send('/apps/42/events', { body: badSocket })).status, 400);
    assert.equal((await send('/apps/42/channels', { method: 'GET' })).status, 200);
    const unsigned = await fetch(`${server.url}/apps/42/channels`);
    assert.equal(unsigned.status, 401);

    const name = uniq('pub');
    const r = await rawConnected(server);
    await rawSubscribe(r, name);
    const info = await http.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } });
    assert.deepEqual(await info.json(), { occupied: true, subscription_count: 1 });
    const empty = await http.get({ path: `/channels/${uniq('none')}` });
    assert.deepEqual(await empty.json(), { occupied: false });
    const list = await http.get({ path: '/channels', params: { filter_by_prefix: name } });
    assert.deepEqual(await list.json(), { channels: { [name]: {} } });
    await assert.rejects(http.get({ path: `/channels/${name}/users` }), (e) => e.status === 400);
    await assert.rejects(http.get({ path: '/channels', params: { info: 'user_count' } }), (e) => e.status === 400);
    const term = await http.post({ path: '/users/u1/terminate_connections', body: {} });
    assert.equal(term.status, 200);
  });
});

describe('pusher, frame budget', () => {
  test('frames beyond RATE_LIMIT_PER_SEC / RATE_LIMIT_BURST get 4301 errors, are dropped, and the socket stays', async () => {
    const server = await scope.server({ name: 'pusher-budget', env: { ...PUSHER_ENV, RATE_LIMIT_PER_SEC: '2', RATE_LIMIT_BURST: '5' } });
    const r = await rawConnected(server);
    for (let i = 0; i < 8; i++) r.send({ event: 'pusher:ping', data: {} });
    await until(() => r.frames.length >= 8, '8 answers');
    const pongs = r.frames.filter((f) => f.event === 'pusher:pong').length;
    const refused = r.frames.filter((f) => f.event === 'pusher:error' && f.parsed.code === 4301).length;
    assert.equal(pongs, 5, JSON.stringify(r.frames));
    assert.equal(refused, 3);
    r.frames.length = 0;
    await sleep(1_100);
    r.send({ event: 'pusher:ping', data: {} });
    await r.next('pusher:pong');
    assert.equal(r.ws.readyState, WebSocket.OPEN);
  });
});

describe('pusher, slow consumers', () => {
  test('a subscriber that stops reading is closed; the others get every event without waiting for it', async () => {
    const server = await scope.server({ name: 'pusher-slow', env: PUSHER_ENV });
    const name = uniq('flood');
    const slow = await rawConnected(server);
    await rawSubscribe(slow, name);
    const fast = await rawConnected(server);
    await rawSubscribe(fast, name);
    let fastCount = 0;
    fast.ws.on('message', (m) => {
      if (m.toString().includes('"flood"')) fastCount += 1;
    });
    // The slow client stops reading: the kernel buffers fill, then its queue of 256 frames.
    slow.ws._socket.pause();
    const data = 'x'.repeat(9_000);
    const batches = 200;
    const started = Date.now();
    for (let i = 0; i < batches; i += 1) {
      const batch = Array.from({ length: 10 }, () => ({ channel: name, name: 'flood', data }));
      await lib(server).triggerBatch(batch);
    }
    await until(() => fastCount === batches * 10, `all ${batches * 10} events to the fast client`, 20_000);
    assert.ok(Date.now() - started < 20_000);
    slow.ws._socket.resume();
    const closed = await within(20_000, 'the slow client closed', (res) => slow.closed.then(res));
    assert.ok([4100, 1006].includes(closed.code), `closed with ${closed.code}`);
    const got = slow.frames.filter((f) => f.event === 'flood').length;
    assert.ok(got < batches * 10, `the slow client got ${got} of ${batches * 10}`);
  });
});

describe('pusher liveness', () => {
  test('a peer that answers no ping is closed with 4201; one that answers stays', async () => {
    const server = await scope.server({ name: 'pusher-liveness', env: { ...PUSHER_ENV, PUSHER_PING_SECS: '1' } });
    // `ws` answers pings by itself unless told not to: the silent peer is told not to.
    const silent = new WebSocket(server.url.replace('http://', 'ws://') + WS_PATH(), { autoPong: false });
    const frames = [];
    let pings = 0;
    silent.on('message', (m) => frames.push(JSON.parse(m.toString())));
    silent.on('ping', () => (pings += 1));
    silent.on('error', () => {});
    const closed = new Promise((res) => silent.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    clients.push({ close: () => silent.close() });
    const alive = await rawConnected(server);
    const shut = await within(6_000, 'the silent peer closed', (res) => closed.then(res));
    assert.equal(shut.code, 4201);
    assert.ok(pings >= 1, 'it was pinged before it was closed');
    const error = frames.find((f) => f.event === 'pusher:error');
    assert.equal(JSON.parse(error.data).code, 4201);
    // The answering peer outlived two periods and still talks.
    alive.send({ event: 'pusher:ping', data: {} });
    await alive.next('pusher:pong');
    assert.equal(alive.ws.readyState, WebSocket.OPEN);
  });
});

describe('pusher user sign-in', () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'pusher-signin', env: PUSHER_ENV });
  });

  /** A pusher-js client signed in as `id` through the `pusher` lib's authenticateUser. */
  async function signedIn(id) {
    const signer = lib(server);
    const c = new PusherJs(APP.key, {
      cluster: 'local',
      wsHost: '127.0.0.1',
      wsPort: portOf(server),
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      userAuthentication: {
        customHandler: ({ socketId }, cb) => cb(null, signer.authenticateUser(socketId, { id, name: id.toUpperCase() })),
      },
    });
    clients.push({ close: () => c.disconnect() });
    c.signin();
    await within(5_000, 'signin', (res) => c.user.signinDonePromise.then(res));
    await within(5_000, 'server-to-user subscription', (res) => {
      const poll = () => (c.user.serverToUserChannel?.subscribed ? res() : setTimeout(poll, 20));
      poll();
    });
    return c;
  }

  test('sendToUser reaches every connection signed in as the user, and nobody else', async () => {
    const ann = await signedIn('ann');
    const ann2 = await signedIn('ann');
    const bob = await signedIn('bob');
    assert.deepEqual(ann.user.user_data, { id: 'ann', name: 'ANN' });
    const got = (c) => within(3_000, 'user event', (res) => c.user.bind('notice', res));
    const both = Promise.all([got(ann), got(ann2)]);
    const bobGot = [];
    bob.user.bind('notice', (d) => bobGot.push(d));
    await lib(server).sendToUser('ann', 'notice', { n: 1 });
    assert.deepEqual(await both, [{ n: 1 }, { n: 1 }]);
    await sleep(200);
    assert.equal(bobGot.length, 0);
  });

  test('terminate_connections closes the user\'s connections with 4009 and no one else\'s', async () => {
    const r = await rawConnected(server);
    const userData = JSON.stringify({ id: 'carl' });
    r.send({ event: 'pusher:signin', data: { auth: lib(server).authenticateUser(r.socketId, { id: 'carl' }).auth, user_data: userData } });
    const ok = await r.next('pusher:signin_success');
    assert.equal(ok.parsed.user_data, userData);
    const other = await rawConnected(server);
    const res = await lib(server).terminateUserConnections('carl');
    assert.equal(res.status, 200);
    const err = await r.next('pusher:error');
    assert.equal(err.parsed.code, 4009);
    assert.equal((await within(3_000, 'close', (res) => r.closed.then(res))).code, 4009);
    other.send({ event: 'pusher:ping', data: {} });
    await other.next('pusher:pong');
  });

  test('a bad sign-in closes with 4009; another user\'s server-to-user channel is refused', async () => {
    const r = await rawConnected(server);
    r.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${'0'.repeat(64)}`, user_data: '{"id":"x"}' } });
    const err = await r.next('pusher:error');
    assert.equal(err.parsed.code, 4009);
    assert.equal((await within(3_000, 'close', (res) => r.closed.then(res))).code, 4009);

    const noId = await rawConnected(server);
    const data = '{"name":"no id"}';
    const sig = createHmac('sha256', APP.secret).update(`${noId.socketId}::user::${data}`).digest('hex');
    noId.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${sig}`, user_data: data } });
    assert.equal((await within(3_000, 'close', (res) => noId.closed.then(res))).code, 4009);

    const anon = await rawConnected(server);
    const refused = await rawSubscribe(anon, '#server-to-user-ann');
    assert.equal(refused.event, 'pusher:subscription_error');
    assert.equal(refused.parsed.status, 401);
  });
});

describe('pusher webhooks', () => {
  test('member_added, member_removed (after its delay, not on a quick reconnect) and client_event, signed for the pusher lib', async () => {
    const received = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, rawBody: body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${hook.address().port}/hook`;
      const HOOKED = {
        id: '44',
        key: 'e2e-hooked-key',
        secret: 'e2e-hooked-secret-0123456789abcdef',
        projectId: 'demo',
        webhooks: [{ url, event_types: ['member_added', 'member_removed', 'client_event'] }],
      };
      const server = await scope.server({
        name: 'pusher-hooks',
        env: { PUSHER_APPS: JSON.stringify([HOOKED]), INTEGRATION_ALLOW_PRIVATE: 'true' },
      });
      const verifier = lib(server, HOOKED);
      const events = () =>
        received.flatMap((r) => {
          const wh = verifier.webhook({ headers: r.headers, rawBody: r.rawBody });
          assert.ok(wh.isValid(), `invalid webhook: ${JSON.stringify(r)}`);
          return wh.getEvents();
        });
      const named = (n, user) => events().filter((e) => e.name === n && (user === undefined || e.user_id === user));

      const name = `presence-${uniq('hook')}`;
      const ann = await connected(server, { app: HOOKED, presence: { user_id: 'ann' } });
      const annCh = await subscribed(ann, name);
      await until(() => named('member_added', 'ann').length === 1, 'member_added for ann');
      const bob = await connected(server, { app: HOOKED, presence: { user_id: 'bob' } });
      const bobCh = await subscribed(bob, name);
      const got = nextEvent(annCh, 'client-hi');
      bobCh.trigger('client-hi', { x: 1 });
      await got;
      await until(() => named('client_event').length === 1, 'client_event webhook');
      const ce = named('client_event')[0];
      assert.deepEqual(
        { channel: ce.channel, event: ce.event, data: ce.data, socket_id: ce.socket_id, user_id: ce.user_id },
        { channel: name, event: 'client-hi', data: '{"x":1}', socket_id: bob.connection.socket_id, user_id: 'bob' },
      );

      bob.disconnect();
      await sleep(1_000);
      assert.equal(named('member_removed', 'bob').length, 0, 'held back for a few seconds');
      await until(() => named('member_removed', 'bob').length === 1, 'member_removed for bob', 8_000);

      ann.disconnect();
      await sleep(300);
      const ann2 = await connected(server, { app: HOOKED, presence: { user_id: 'ann' } });
      await subscribed(ann2, name);
      await sleep(4_000);
      assert.equal(named('member_removed', 'ann').length, 0, 'a quick reconnect removes nobody');
      assert.equal(named('member_added', 'ann').length, 1, 'and adds nobody again');
      assert.equal(received[0].headers['content-type'], 'application/json');
    } finally {
      hook.close();
    }
  });
});

describe('pusher occupancy webhooks', () => {
  test('channel_occupied on the first subscriber, channel_vacated after the last leaves (held against flaps), signed for the pusher lib', async () => {
    const received = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, rawBody: body });
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${hook.address().port}/hook`;
      const HOOKED = {
        id: '45',
        key: 'e2e-occupancy-key',
        secret: 'e2e-occupancy-secret-0123456789abcdef',
        projectId: 'demo',
        webhooks: [{ url, event_types: ['channel_occupied', 'channel_vacated'] }],
      };
      const server = await scope.server({
        name: 'pusher-occupancy',
        env: { PUSHER_APPS: JSON.stringify([HOOKED]), INTEGRATION_ALLOW_PRIVATE: 'true' },
      });
      const verifier = lib(server, HOOKED);
      const named = (n) =>
        received
          .flatMap((r) => {
            const wh = verifier.webhook({ headers: r.headers, rawBody: r.rawBody });
            assert.ok(wh.isValid(), `invalid webhook: ${JSON.stringify(r)}`);
            return wh.getEvents();
          })
          .filter((e) => e.name === n);
      const name = uniq('occ');
      const one = await connected(server, { app: HOOKED });
      await subscribed(one, name);
      await until(() => named('channel_occupied').length === 1, 'channel_occupied');
      assert.deepEqual(named('channel_occupied')[0], { name: 'channel_occupied', channel: name });
      const two = await connected(server, { app: HOOKED });
      await subscribed(two, name);
      one.disconnect();
      await sleep(300);
      two.unsubscribe(name);
      await sleep(1_000);
      assert.equal(named('channel_vacated').length, 0, 'held back for a few seconds');
      await until(() => named('channel_vacated').length === 1, 'channel_vacated', 8_000);

      const again = uniq('flap');
      const three = await connected(server, { app: HOOKED });
      await subscribed(three, again);
      await until(() => named('channel_occupied').length === 2, 'channel_occupied again');
      three.unsubscribe(again);
      await sleep(200);
      await subscribed(three, again);
      await sleep(4_000);
      assert.equal(named('channel_vacated').length, 1, 'a quick re-subscribe vacates nothing');
      assert.equal(named('channel_occupied').length, 2, 'and occupies nothing again');
    } finally {
      hook.close();
    }
  });
});

describe('pusher apps in the database', () => {
  test('an admin creates an app over REST; it serves at once on that node and within a re-read on another; deleted, it is refused', async () => {
    requireServices('pusher apps across nodes');
    requireMongo('pusher apps in MongoDB');
    const prefix = uniq('e2e_pusher_apps');
    const db = uniq('e2e_apps');
    const a = await scope.server({ name: 'apps-a', redis: true, mongo: true, db, prefix, env: PUSHER_ENV });
    const b = await scope.server({ name: 'apps-b', redis: true, mongo: true, db, prefix, env: PUSHER_ENV });

    const created = await http(a, '/api/pusher/apps', { method: 'POST', apiKey: API_KEY, body: { projectId: 'demo', dialect: 'pusher' } });
    assert.equal(created.status, 201, created.text);
    const app = { id: created.json.id, key: created.json.key, secret: created.json.secret };
    assert.match(app.secret, /^[0-9a-f]{64}$/);
    assert.equal(created.json.source, 'database');
    const listed = await http(a, '/api/pusher/apps', { apiKey: API_KEY });
    const row = listed.json.apps.find((x) => x.id === app.id);
    assert.equal(row.key, app.key);
    assert.equal(row.secret, undefined, 'secrets are shown once, at creation');
    assert.ok(listed.json.apps.some((x) => x.id === APP.id && x.source === 'config'));

    const name = uniq('db');
    const onA = await connected(a, { app });
    const chA = await subscribed(onA, name);
    const got = nextEvent(chA, 'hi');
    await lib(a, app).trigger(name, 'hi', { ok: 1 });
    assert.deepEqual((await got).data, { ok: 1 });

    // Node B re-reads stored apps every 10 s.
    const deadline = Date.now() + 15_000;
    let onB;
    while (!onB) {
      const r = await rawConnected(b, WS_PATH(app.key)).catch(() => null);
      if (r) onB = r;
      else if (Date.now() > deadline) throw new Error('node B never served the new app');
      else await sleep(500);
    }
    const sub = await rawSubscribe(onB, name);
    assert.equal(sub.event, 'pusher_internal:subscription_succeeded');

    assert.equal((await http(a, `/api/pusher/apps/${app.id}`, { method: 'DELETE', apiKey: API_KEY })).status, 204);
    await expectRefused(a, WS_PATH(app.key), 4001);
    assertHttpError(await http(a, `/api/pusher/apps/${app.id}`, { method: 'DELETE', apiKey: API_KEY }), 404, 'NOT_FOUND');
  });

  test('refusals: not an admin, bad settings, unknown project, taken key, configured apps', async () => {
    const server = await scope.server({ name: 'apps-refusals', env: PUSHER_ENV });
    assertHttpError(await http(server, '/api/pusher/apps'), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/pusher/apps', { token: mintToken('alice') }), 403, 'FORBIDDEN');
    const post = (body) => http(server, '/api/pusher/apps', { method: 'POST', apiKey: API_KEY, body });
    assertHttpError(await post({ projectId: 'demo', dialect: 'xmpp' }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post({ projectId: 'demo', key: 'a:b' }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post({ projectId: 'demo', colour: 'red' }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post({ projectId: 'nope' }), 404, 'NOT_FOUND');
    assertHttpError(await post({ projectId: 'demo', key: APP.key }), 409, 'CONFLICT');
    const ok = await post({ projectId: 'demo', key: 'e2e-db-key' });
    assert.equal(ok.status, 201, ok.text);
    assertHttpError(await post({ projectId: 'demo', key: 'e2e-db-key' }), 409, 'CONFLICT');
    assertHttpError(await http(server, `/api/pusher/apps/${APP.id}`, { method: 'DELETE', apiKey: API_KEY }), 409, 'CONFLICT');
    const shown = await http(server, `/api/pusher/apps/${ok.json.id}`, { apiKey: API_KEY });
    assert.equal(shown.json.key, 'e2e-db-key');
  });
});

describe('pusher, moving from Soketi', () => {
  const SOKETI = { id: 'app-id', key: 'app-key', secret: 'app-secret' };

  test('Soketi\'s default-app variables define the app; its public secret only on loopback', async () => {
    const server = await scope.server({
      name: 'soketi-default',
      env: { SOKETI_DEFAULT_APP_ID: SOKETI.id, SOKETI_DEFAULT_APP_KEY: SOKETI.key, SOKETI_DEFAULT_APP_SECRET: SOKETI.secret },
    });
    const c = await connected(server, { app: SOKETI });
    const name = `private-${uniq('s')}`;
    const ch = await subscribed(c, name);
    const got = nextEvent(ch, 'moved');
    await lib(server, SOKETI).trigger(name, 'moved', { ok: true });
    assert.deepEqual((await got).data, { ok: true });
    const channels = await (await lib(server, SOKETI).get({ path: '/channels' })).json();
    assert.deepEqual(channels.channels[name], {});

    await assert.rejects(
      scope.server({
        name: 'soketi-public',
        env: { HOST: '0.0.0.0', SOKETI_DEFAULT_APP_KEY: SOKETI.key },
      }),
      /too weak/,
    );
    await assert.rejects(
      scope.server({ name: 'bad-apps', env: { PUSHER_APPS: '[{"id":"1"}]' } }),
      /PUSHER_APPS/,
    );
  });
});

describe('pusher, two nodes on one Redis', () => {
  let a;
  let b;
  before(async () => {
    requireServices('pusher across nodes');
    const prefix = uniq('e2e_pusher');
    a = await scope.server({ name: 'pusher-a', redis: true, prefix, env: PUSHER_ENV });
    b = await scope.server({ name: 'pusher-b', redis: true, prefix, env: PUSHER_ENV });
  });

  test('a trigger on one node reaches subscribers on both; socket_id excludes a socket of the other node', async () => {
    const name = uniq('pub');
    const onA = await connected(a);
    const onB = await connected(b);
    const chA = await subscribed(onA, name);
    const chB = await subscribed(onB, name);
    assert.notEqual(onA.connection.socket_id, onB.connection.socket_id);
    const gotA = nextEvent(chA, 'hello');
    const gotB = nextEvent(chB, 'hello');
    await lib(a).trigger(name, 'hello', { n: 1 });
    assert.deepEqual([(await gotA).data, (await gotB).data], [{ n: 1 }, { n: 1 }]);

    const seenB = recordEvents(chB, 'quiet');
    const stillA = nextEvent(chA, 'quiet');
    await lib(a).trigger(name, 'quiet', { n: 2 }, { socket_id: onB.connection.socket_id });
    await stillA;
    await sleep(300);
    assert.equal(seenB.length, 0, 'the excluded socket on the other node gets nothing');
  });

  test('client events cross nodes, not back to the sender', async () => {
    const name = `private-${uniq('x')}`;
    const onA = await connected(a);
    const onB = await connected(b);
    const chA = await subscribed(onA, name);
    const chB = await subscribed(onB, name);
    const own = recordEvents(chA, 'client-ping');
    const got = nextEvent(chB, 'client-ping');
    chA.trigger('client-ping', { from: 'a' });
    assert.deepEqual((await got).data, { from: 'a' });
    await sleep(200);
    assert.equal(own.length, 0);
  });

  test('presence across nodes: one member per user, member events once for the cluster', async () => {
    const name = `presence-${uniq('room')}`;
    const ann = await connected(a, { presence: { user_id: 'ann', user_info: { n: 1 } } });
    const annCh = await subscribed(ann, name);
    const added = nextEvent(annCh, 'pusher:member_added');
    const bob = await connected(b, { presence: { user_id: 'bob', user_info: { n: 2 } } });
    const bobCh = await subscribed(bob, name);
    assert.equal(bobCh.members.count, 2, 'the member on the other node is listed');
    assert.deepEqual(bobCh.members.get('ann'), { id: 'ann', info: { n: 1 } });
    assert.deepEqual((await added).data, { id: 'bob', info: { n: 2 } });

    const adds = recordEvents(annCh, 'pusher:member_added');
    const removes = recordEvents(annCh, 'pusher:member_removed');
    const bobOnA = await connected(a, { presence: { user_id: 'bob', user_info: { n: 2 } } });
    assert.equal((await subscribed(bobOnA, name)).members.count, 2);
    await sleep(300);
    assert.equal(adds.length, 0, 'bob\'s second socket (another node) adds nobody');
    bob.disconnect();
    await sleep(500);
    assert.equal(removes.length, 0, 'bob still has a socket');
    const users = await (await lib(b).get({ path: `/channels/${name}/users` })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['ann', 'bob']);
    bobOnA.disconnect();
    await until(() => removes.length === 1, 'member_removed');
    await sleep(300);
    assert.equal(removes.length, 1, 'member_removed once');
    const info = await (await lib(b).get({ path: `/channels/${name}`, params: { info: 'user_count' } })).json();
    assert.equal(info.user_count, 1);
  });

  test('subscription counts, occupancy and the channel list are the cluster\'s', async () => {
    const name = uniq('count');
    const onA = await connected(a);
    const onB = await connected(b);
    await subscribed(onA, name);
    await subscribed(onB, name);
    const info = await (await lib(a).get({ path: `/channels/${name}`, params: { info: 'subscription_count' } })).json();
    assert.deepEqual(info, { occupied: true, subscription_count: 2 });
    const only = uniq('only_b');
    await subscribed(onB, only);
    const list = await (await lib(a).get({ path: '/channels' })).json();
    assert.deepEqual(list.channels[only], {}, 'a channel subscribed on the other node only is listed');
    const sent = await (await lib(a).trigger(name, 'x', {}, { info: 'subscription_count' })).json();
    assert.deepEqual(sent.channels[name], { subscription_count: 2 });
    onB.disconnect();
    await sleep(300);
    const after = await (await lib(a).get({ path: `/channels/${only}` })).json();
    assert.deepEqual(after, { occupied: false });
  });

  test('a draining node closes its Pusher connections with 4200', async () => {
    const prefix = uniq('e2e_pusher_drain');
    const c = await scope.server({ name: 'pusher-drain', redis: true, prefix, env: PUSHER_ENV });
    const r = await rawConnected(c);
    await rawSubscribe(r, uniq('pub'));
    const stopping = c.stop();
    const closed = await within(8_000, 'close', (res) => r.closed.then(res));
    assert.equal(closed.code, 4200);
    await stopping;
  });
});
