// InsForge-compatible realtime with the real @insforge/sdk (1.5.x) and socket.io-client for the
// admin API-key path: the /insforge namespace's handshake and refusals, subscribe/publish/
// presence, channel definitions, the /api/realtime REST API, webhooks to a local receiver, the
// reach of other protocols on the same hub channel, and two nodes sharing Redis and MongoDB.
// docs/protocols/insforge.md.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { io } from 'socket.io-client';
import { createClient } from '@insforge/sdk';
import WebSocket from 'ws';
import PusherServerMod from 'pusher';
import PusherJsMod from 'pusher-js';
import { RealtimeClient } from '@supabase/realtime-js';
import { Scope, API_KEY, mintToken, sleep, uniq, http, requireServices, requireMongo } from './lib/harness.mjs';

const PusherServer = PusherServerMod.default ?? PusherServerMod;
const PusherJs = PusherJsMod.default ?? PusherJsMod;
const APP = { id: '9', key: 'insforge-x-key', secret: 'insforge-x-secret-0123456789abcdef', projectId: 'demo' };
const ANON = 'anon_e2e_0123456789abcdef0123456789';
const hex = () => Math.random().toString(16).slice(2, 10);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Registered before the scope's hooks, so clients close before the servers stop (they would
// otherwise keep reconnecting to a stopped server and hold the process).
const closers = [];
after(() => {
  for (const c of closers.splice(0)) c();
});
const scope = new Scope().hooks();

const env = (extra = {}) => ({
  INSFORGE_ANON_KEYS: `demo=${ANON}`,
  INTEGRATION_ALLOW_PRIVATE: 'true',
  // Tests open many sockets per user, some still closing when the next ones connect.
  MAX_SOCKETS_PER_USER: '200',
  ...extra,
});

const baseUrl = (s, project = 'demo') => `${s.url}/insforge${project ? `?project=${project}` : ''}`;

function sdk(s, { token, anonKey, project = 'demo' } = {}) {
  const c = createClient({ baseUrl: baseUrl(s, project), anonKey, accessToken: token });
  closers.push(() => c.realtime.disconnect());
  return c;
}

/** An SDK client of user `sub` (a Switchboard JWT). */
const userClient = (s, sub) => sdk(s, { token: mintToken(sub) });
const anonClient = (s) => sdk(s, { anonKey: ANON });

/** A raw socket.io-client socket on /insforge. */
function rawSocket(s, auth, project = 'demo') {
  const sock = io(baseUrl(s, project), { transports: ['websocket'], reconnection: false, forceNew: true, auth });
  closers.push(() => sock.close());
  return sock;
}

function connected(sock, ms = 5_000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('not connected in time')), ms);
    sock.once('connect', () => {
      clearTimeout(t);
      res(sock);
    });
    sock.once('connect_error', (e) => {
      clearTimeout(t);
      rej(e);
    });
  });
}

function refused(sock, ms = 5_000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('expected a connect_error')), ms);
    sock.once('connect', () => {
      clearTimeout(t);
      rej(new Error('connected, expected a refusal'));
    });
    sock.once('connect_error', (e) => {
      clearTimeout(t);
      sock.close();
      res(e);
    });
  });
}

const subscribeRaw = (sock, channel) => new Promise((res) => sock.emit('realtime:subscribe', { channel }, res));

function nextOn(emitter, event, ms = 3_000, on = 'on', off = 'off') {
  return new Promise((res, rej) => {
    const t = setTimeout(() => {
      emitter[off](event, h);
      rej(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const h = (m) => {
      clearTimeout(t);
      emitter[off](event, h);
      res(m);
    };
    emitter[on](event, h);
  });
}
const next = (client, event, ms) => nextOn(client.realtime, event, ms);
const nextRaw = (sock, event, ms) => nextOn(sock, event, ms);

async function none(emitter, event, ms = 400) {
  let got;
  const h = (m) => {
    got = m;
  };
  emitter.on(event, h);
  await sleep(ms);
  emitter.off(event, h);
  assert.equal(got, undefined, `unexpected ${event}: ${JSON.stringify(got)}`);
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function subOk(client, channel) {
  const r = await client.realtime.subscribe(channel);
  assert.equal(r.ok, true, JSON.stringify(r));
  return r;
}

const rest = (s, path, opts = {}) => http(s, `/api/realtime${path}`, { apiKey: API_KEY, ...opts });

async function defineChannel(s, pattern, extra = {}) {
  const r = await rest(s, '/channels?project=demo', { method: 'POST', body: { pattern, ...extra } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

describe('one node', () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'insforge', env: env({ PUSHER_APPS: JSON.stringify([APP]) }) });
    await defineChannel(server, 'order:%', { description: 'Orders' });
    await defineChannel(server, 'off:%', { enabled: false });
  });

  test('handshake refusals carry upstream messages', async () => {
    assert.equal((await refused(rawSocket(server, {}))).message, 'No authentication provided');
    assert.equal((await refused(rawSocket(server, { apiKey: 'nope' }))).message, 'Invalid API key');
    assert.equal((await refused(rawSocket(server, { token: 'anon_wrong' }))).message, 'Invalid anon key');
    assert.match((await refused(rawSocket(server, { token: 'x.y.z' }))).message, /^Invalid token: /);
    // An API key needs the project named; a user must be a member of it.
    assert.match((await refused(rawSocket(server, { apiKey: API_KEY }, null))).message, /Missing project/);
    assert.match((await refused(rawSocket(server, { token: mintToken('dave') }))).message, /Project refused/);
    // The SDK: connect() rejects, subscribe() answers CONNECTION_FAILED.
    const bad = sdk(server, { anonKey: 'anon_bad' });
    await assert.rejects(bad.realtime.connect(), /Invalid anon key/);
    const r = await bad.realtime.subscribe('order:1');
    assert.equal(r.ok, false);
    assert.equal(r.error.code, 'CONNECTION_FAILED');
  });

  test('subscribe acks with presence including the subscriber; undefined, disabled and bad channels are refused', async () => {
    const a = userClient(server, 'alice');
    await a.realtime.connect();
    const ok = await a.realtime.subscribe('order:123');
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.channel, 'order:123');
    assert.deepEqual(
      ok.presence.members.map((m) => [m.type, m.presenceId]),
      [['user', 'alice']],
    );
    assert.match(ok.presence.members[0].joinedAt, ISO_MS);
    for (const ch of ['nope', 'off:1']) {
      const r = await a.realtime.subscribe(ch);
      assert.equal(r.ok, false);
      assert.equal(r.error.code, 'REALTIME_UNAUTHORIZED');
      assert.equal(r.error.message, 'Not authorized to subscribe to this channel');
    }
    // Raw: idempotent on the server too, and malformed requests get a clear refusal.
    const admin = await connected(rawSocket(server, { apiKey: API_KEY }));
    const first = await subscribeRaw(admin, 'order:123');
    const again = await subscribeRaw(admin, 'order:123');
    assert.equal(first.ok, true);
    assert.deepEqual(again.presence.members, first.presence.members);
    assert.equal(first.presence.members.length, 2);
    const bad = await new Promise((res) => admin.emit('realtime:subscribe', { nope: 1 }, res));
    assert.equal(bad.ok, false);
    assert.equal(bad.error.code, 'REALTIME_UNAUTHORIZED');
    const long = await subscribeRaw(admin, `order:${'x'.repeat(300)}`);
    assert.equal(long.ok, false);
    admin.close();
    a.realtime.disconnect();
  });

  test('a publish reaches every subscriber, the publisher included, with meta', async () => {
    const a = userClient(server, 'alice');
    const b = anonClient(server);
    const ch = `order:${uniq()}`;
    await subOk(a, ch);
    await subOk(b, ch);
    const gotA = next(a, 'status_changed');
    const gotB = next(b, 'status_changed');
    await a.realtime.publish(ch, 'status_changed', { status: 'shipped', id: '123', meta: 'overwritten' });
    for (const m of [await gotA, await gotB]) {
      assert.equal(m.status, 'shipped');
      assert.equal(m.id, '123');
      assert.equal(m.meta.channel, `realtime:${ch}`);
      assert.match(m.meta.messageId, UUID);
      assert.equal(m.meta.senderType, 'user');
      assert.equal(m.meta.senderId, 'alice');
      assert.match(m.meta.timestamp, ISO_MS);
    }
    // An anon publisher is a user without a senderId.
    const fromAnon = next(a, 'ping');
    await b.realtime.publish(ch, 'ping', { n: 1 });
    const m = await fromAnon;
    assert.equal(m.meta.senderType, 'user');
    assert.equal('senderId' in m.meta, false);
    a.realtime.disconnect();
    b.realtime.disconnect();
  });

  test('publish refusals arrive as realtime:error (the SDK error event)', async () => {
    const a = userClient(server, 'alice');
    await a.realtime.connect();
    const err = next(a, 'error');
    await a.realtime.publish('order:never', 'x', { a: 1 });
    const e = await err;
    assert.equal(e.code, 'REALTIME_NOT_SUBSCRIBED');
    assert.equal(e.channel, 'order:never');
    assert.equal(e.message, 'Must subscribe to channel before publishing messages');
    const sock = await connected(rawSocket(server, { token: mintToken('bob') }));
    assert.equal((await subscribeRaw(sock, 'order:r')).ok, true);
    for (const [req, code] of [
      [{ channel: 'order:r', event: 'presence:join', payload: {} }, 'REALTIME_INVALID_EVENT'],
      [{ channel: 'order:r', event: '', payload: {} }, 'REALTIME_INVALID_EVENT'],
      [{ channel: 'order:r', event: 'x', payload: [1] }, 'REALTIME_INVALID_EVENT'],
      [{ channel: 'order:r', event: 'x', payload: { big: 'x'.repeat(300_000) } }, 'REALTIME_INVALID_EVENT'],
      [{ channel: 'order:r' }, 'REALTIME_INVALID_EVENT'],
    ]) {
      const got = nextRaw(sock, 'realtime:error').catch((e) => ({ code: `${e.message} for ${JSON.stringify(req).slice(0, 80)}` }));
      sock.emit('realtime:publish', req);
      assert.equal((await got).code, code, JSON.stringify(req).slice(0, 80));
    }
    sock.close();
    a.realtime.disconnect();
  });

  test('an admin socket publishes as system without senderId', async () => {
    const a = userClient(server, 'alice');
    const ch = `order:${uniq()}`;
    await subOk(a, ch);
    const admin = await connected(rawSocket(server, { apiKey: API_KEY }));
    assert.equal((await subscribeRaw(admin, ch)).ok, true);
    const got = next(a, 'announce');
    admin.emit('realtime:publish', { channel: ch, event: 'announce', payload: { text: 'hi' } });
    const m = await got;
    assert.equal(m.text, 'hi');
    assert.equal(m.meta.senderType, 'system');
    assert.equal('senderId' in m.meta, false);
    admin.close();
    a.realtime.disconnect();
  });

  test('presence: one member per user, anonymous sockets apart, joins and leaves to the others', async () => {
    const ch = `order:${uniq()}`;
    const a = userClient(server, 'alice');
    await subOk(a, ch);
    const b1 = userClient(server, 'bob');
    const joined = next(a, 'presence:join');
    const b1ack = await b1.realtime.subscribe(ch);
    const j = await joined;
    assert.deepEqual([j.member.type, j.member.presenceId], ['user', 'bob']);
    assert.equal(j.meta.channel, ch);
    assert.equal(j.meta.senderType, 'system');
    assert.deepEqual(b1ack.presence.members.map((m) => m.presenceId).sort(), ['alice', 'bob']);
    // Bob's second socket joins quietly; the first one got no join of its own.
    const b2 = userClient(server, 'bob');
    const quiet = none(a.realtime, 'presence:join');
    await subOk(b2, ch);
    await quiet;
    // Two anon sockets are two members.
    const n1 = anonClient(server);
    const n2 = anonClient(server);
    await subOk(n1, ch);
    const n2ack = await n2.realtime.subscribe(ch);
    assert.equal(n2ack.presence.members.filter((m) => m.type === 'anonymous').length, 2);
    await until(() => a.realtime.getPresenceState(ch).length === 4, 3_000, 'four members in alice\'s state');
    // Bob leaves only with his last socket.
    const noLeave = none(a.realtime, 'presence:leave');
    b1.realtime.disconnect();
    await noLeave;
    const left = next(a, 'presence:leave');
    b2.realtime.unsubscribe(ch);
    assert.equal((await left).member.presenceId, 'bob');
    const anonLeft = next(a, 'presence:leave');
    n1.realtime.disconnect();
    assert.equal((await anonLeft).member.type, 'anonymous');
    await until(() => a.realtime.getPresenceState(ch).length === 2, 3_000, 'two members left');
    for (const c of [a, b2, n2]) c.realtime.disconnect();
  });

  test('unsubscribe stops delivery', async () => {
    const ch = `order:${uniq()}`;
    const a = userClient(server, 'alice');
    const b = userClient(server, 'bob');
    await a.realtime.subscribe(ch);
    await b.realtime.subscribe(ch);
    b.realtime.unsubscribe(ch);
    await sleep(200);
    const quiet = none(b.realtime, 'tick');
    const got = next(a, 'tick');
    await a.realtime.publish(ch, 'tick', { n: 1 });
    await got;
    await quiet;
    a.realtime.disconnect();
    b.realtime.disconnect();
  });

  test('disabling a definition stops delivery; re-enabling restores it', async () => {
    const def = await defineChannel(server, `toggle${hex()}:%`);
    const ch = `${def.pattern.slice(0, -1)}1`;
    const a = userClient(server, 'alice');
    await subOk(a, ch);
    const off = await rest(server, `/channels/${def.id}?project=demo`, { method: 'PUT', body: { enabled: false } });
    assert.equal(off.json.enabled, false);
    const err = next(a, 'error');
    await a.realtime.publish(ch, 'x', { a: 1 });
    assert.equal((await err).code, 'REALTIME_UNAUTHORIZED');
    await rest(server, `/channels/${def.id}?project=demo`, { method: 'PUT', body: { enabled: true } });
    const got = next(a, 'x');
    await a.realtime.publish(ch, 'x', { a: 2 });
    assert.equal((await got).a, 2);
    a.realtime.disconnect();
  });

  test('other protocols on the same channel reach InsForge subscribers as system messages', async () => {
    const ch = `order:${uniq()}`;
    const a = userClient(server, 'alice');
    await subOk(a, ch);
    const got = next(a, 'from_rest');
    const r = await http(server, '/api/projects/demo/emit', {
      method: 'POST',
      apiKey: API_KEY,
      body: { room: `channel:demo:${ch}`, event: 'from_rest', payload: { hello: 'world' } },
    });
    assert.equal(r.status, 202, r.text);
    const m = await got;
    assert.equal(m.hello, 'world');
    assert.equal(m.meta.senderType, 'system');
    assert.equal(m.meta.channel, `realtime:${ch}`);
    assert.match(m.meta.messageId, UUID);
    a.realtime.disconnect();
  });

  test('Pusher and Supabase Realtime clients share the channel both ways', async () => {
    await defineChannel(server, 'lobby-%');
    const name = `lobby-${hex()}`;
    const port = String(new URL(server.url).port);
    const pc = new PusherJs(APP.key, {
      cluster: 'local', wsHost: '127.0.0.1', wsPort: Number(port), forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
    });
    closers.push(() => pc.disconnect());
    const p = pc.subscribe(name);
    let pOk = false;
    p.bind('pusher:subscription_succeeded', () => { pOk = true; });
    const sc = new RealtimeClient(`${server.url.replace(/^http/, 'ws')}/realtime/v1`, {
      transport: WebSocket,
      params: { apikey: mintToken('bob'), project: 'demo' },
    });
    closers.push(() => sc.disconnect());
    const s = sc.channel(name, { config: { broadcast: { ack: true } } });
    let sOk = false;
    s.subscribe((st) => { if (st === 'SUBSCRIBED') sOk = true; });
    await until(() => pOk && sOk, 5_000, 'pusher and supabase subscriptions');
    const a = userClient(server, 'alice');
    await subOk(a, name);

    // A Pusher HTTP trigger and a realtime-js broadcast reach the InsForge subscriber.
    const trig = next(a, 'greet');
    const lib = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port, useTLS: false });
    await lib.trigger(name, 'greet', { hello: 'world' });
    const g = await trig;
    assert.equal(g.hello, 'world');
    assert.equal(g.meta.senderType, 'system');
    const bc = next(a, 'shout');
    assert.equal(await s.send({ type: 'broadcast', event: 'shout', payload: { msg: 'hi' } }), 'ok');
    assert.equal((await bc).msg, 'hi');

    // An InsForge publish reaches both, meta included.
    const atPusher = new Promise((res) => p.bind('status', res));
    const atSupabase = new Promise((res) => s.on('broadcast', { event: 'status' }, (m) => res(m.payload)));
    await a.realtime.publish(name, 'status', { state: 'open' });
    for (const m of [await atPusher, await atSupabase]) {
      assert.equal(m.state, 'open');
      assert.equal(m.meta.channel, `realtime:${name}`);
      assert.equal(m.meta.senderId, 'alice');
    }
    a.realtime.disconnect();
    pc.disconnect();
    sc.disconnect();
  });

  test('the main namespace does not see InsForge traffic', async () => {
    const ch = `order:${uniq()}`;
    const main = io(server.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: mintToken('alice') } });
    closers.push(() => main.close());
    await connected(main);
    const seen = [];
    main.onAny((e) => seen.push(e));
    const a = userClient(server, 'alice');
    await a.realtime.subscribe(ch);
    const got = next(a, 'evt');
    await a.realtime.publish(ch, 'evt', { x: 1 });
    await got;
    await sleep(200);
    assert.deepEqual(seen.filter((e) => e === 'evt' || e.startsWith('presence:join')), []);
    main.close();
    a.realtime.disconnect();
  });

  test('a main-namespace client in the custom room channel:<name> shares the channel both ways', async () => {
    await defineChannel(server, 'desk:%');
    const ch = `desk:${hex()}`;
    const main = io(server.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: mintToken('bob') } });
    closers.push(() => main.close());
    await connected(main);
    assert.equal((await main.timeout(3_000).emitWithAck('subscribe:project', 'demo')).ok, true);
    assert.equal((await main.timeout(3_000).emitWithAck('custom:join', { room: `channel:${ch}` })).ok, true);
    const a = userClient(server, 'alice');
    await subOk(a, ch);

    const atMain = new Promise((res) => main.on('custom:status', res));
    await a.realtime.publish(ch, 'status', { state: 'open' });
    const m = await atMain;
    assert.equal(m.room, `channel:${ch}`);
    assert.equal(m.payload.state, 'open');
    assert.equal(m.payload.meta.senderId, 'alice');

    const atInsforge = next(a, 'wave');
    const ack = await main.timeout(3_000).emitWithAck('custom:broadcast', { projectId: 'demo', event: 'wave', payload: { from: 'main' }, room: `channel:${ch}` });
    assert.deepEqual(ack, { ok: true, data: { event: 'wave' } });
    const w = await atInsforge;
    assert.equal(w.from, 'main');
    assert.equal(w.meta.senderType, 'system');
    main.close();
    a.realtime.disconnect();
  });

  test('REST: channels CRUD, refusals, history with counts, stats, permissions, config', async () => {
    // Auth and project.
    assert.equal((await http(server, '/api/realtime/channels?project=demo')).status, 401);
    const user = await http(server, '/api/realtime/channels?project=demo', { token: mintToken('alice') });
    assert.equal(user.status, 403);
    assert.equal(user.json.error, 'FORBIDDEN');
    const viaBearer = await http(server, '/api/realtime/channels?project=demo', { token: API_KEY });
    assert.equal(viaBearer.status, 200);
    const admin = await http(server, '/api/realtime/channels', {
      token: mintToken('root', { role: 'admin' }),
      headers: { 'x-project-id': 'demo' },
    });
    assert.equal(admin.status, 200);
    // Validation.
    for (const body of [{ pattern: 'a_%' }, {}, { pattern: '' }, { pattern: 'x', webhookUrls: ['ftp://x'] }, { pattern: 'x', extra: 1 }]) {
      const r = await rest(server, '/channels?project=demo', { method: 'POST', body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error, 'INVALID_INPUT');
      assert.equal(r.json.statusCode, 400);
      assert.equal(typeof r.json.message, 'string');
    }
    const dup = await rest(server, '/channels?project=demo', { method: 'POST', body: { pattern: 'order:%' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error, 'ALREADY_EXISTS');
    const badKey = await http(server, '/api/realtime/channels?project=demo', { apiKey: 'not-a-key' });
    assert.equal(badKey.status, 401);
    assert.equal(badKey.json.error, 'AUTH_INVALID_CREDENTIALS');
    const notJson = await rest(server, '/channels?project=demo', { method: 'POST', body: '{nope' });
    assert.equal(notJson.status, 400);
    const huge = await rest(server, '/channels?project=demo', { method: 'POST', body: { pattern: 'x', description: 'd'.repeat(70_000) } });
    assert.equal(huge.status, 400);
    const longDesc = await rest(server, '/channels?project=demo', { method: 'POST', body: { pattern: 'x', description: 'd'.repeat(2_000) } });
    assert.equal(longDesc.status, 400);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await rest(server, '/channels/00000000-0000-4000-8000-000000000000?project=demo', { method, body: method === 'PUT' ? {} : undefined });
      assert.equal(r.status, 404, method);
      assert.equal(r.json.error, 'NOT_FOUND');
    }
    assert.equal((await rest(server, '/channels?project=' + 'p'.repeat(300))).status, 400);
    // CRUD.
    const c = await defineChannel(server, `crud${hex()}:%`, { description: 'd', webhookUrls: ['https://example.com/h'] });
    assert.match(c.id, UUID);
    assert.equal(c.enabled, true);
    assert.match(c.createdAt, ISO_MS);
    assert.deepEqual(c.webhookUrls, ['https://example.com/h']);
    const got = await rest(server, `/channels/${c.id}?project=demo`);
    assert.deepEqual(got.json, c);
    const upd = await rest(server, `/channels/${c.id}?project=demo`, { method: 'PUT', body: { description: null, webhookUrls: [] } });
    assert.equal(upd.json.description, null);
    assert.deepEqual(upd.json.webhookUrls, []);
    const list = await rest(server, '/channels?project=demo');
    assert.ok(list.json.some((x) => x.id === c.id));
    // History: publish, then read it back with its counts.
    const ch = `${c.pattern.slice(0, -1)}h`;
    const a = userClient(server, 'alice');
    await a.realtime.subscribe(ch);
    const m1 = next(a, 'first');
    await a.realtime.publish(ch, 'first', { n: 1 });
    const delivered = await m1;
    await a.realtime.publish(ch, 'second', { n: 2 });
    await sleep(200);
    const hist = await rest(server, `/messages?project=demo&channelId=${c.id}`);
    assert.deepEqual(hist.json.map((m) => m.eventName), ['second', 'first']);
    const first = hist.json[1];
    assert.equal(first.id, delivered.meta.messageId);
    assert.equal(first.channelName, ch);
    assert.deepEqual(first.payload, { n: 1 });
    assert.equal(first.senderType, 'user');
    assert.equal(first.senderId, 'alice');
    assert.equal(first.wsAudienceCount, 1);
    assert.equal(first.whAudienceCount, 0);
    assert.equal(first.whDeliveredCount, 0);
    const byEvent = await rest(server, `/messages?project=demo&eventName=first&limit=1`);
    assert.equal(byEvent.json.length, 1);
    const paged = await rest(server, `/messages?project=demo&channelId=${c.id}&offset=1`);
    assert.deepEqual(paged.json.map((m) => m.eventName), ['first']);
    for (const q of ['limit=0', 'limit=1001', 'limit=x', 'offset=-1']) {
      assert.equal((await rest(server, `/messages?project=demo&${q}`)).status, 400, q);
    }
    const stats = await rest(server, `/messages/stats?project=demo&channelId=${c.id}`);
    assert.equal(stats.json.totalMessages, 2);
    assert.equal(stats.json.retentionDays, null);
    assert.equal(typeof stats.json.whDeliveryRate, 'number');
    assert.deepEqual(stats.json.topEvents.map((e) => e.count), [1, 1]);
    // Deleting keeps the history without a channel id.
    const del = await rest(server, `/channels/${c.id}?project=demo`, { method: 'DELETE' });
    assert.deepEqual(del.json, { message: 'Channel deleted' });
    assert.equal((await rest(server, `/channels/${c.id}?project=demo`)).status, 404);
    const orphan = await rest(server, '/messages?project=demo&eventName=second');
    assert.equal(orphan.json[0].channelId, null);
    // Permissions and config.
    const perms = await rest(server, '/permissions?project=demo');
    assert.ok(Array.isArray(perms.json.subscribe.policies));
    assert.ok(Array.isArray(perms.json.publish.policies));
    assert.deepEqual((await rest(server, '/config?project=demo')).json, { retentionDays: null });
    assert.deepEqual((await rest(server, '/config?project=demo', { method: 'PATCH', body: { retentionDays: 90 } })).json, { retentionDays: 90 });
    assert.equal((await rest(server, '/messages/stats?project=demo')).json.retentionDays, 90);
    for (const body of [{ retentionDays: 0 }, { retentionDays: -1 }, { retentionDays: 1.5 }, { retentionDays: 'x' }, {}]) {
      assert.equal((await rest(server, '/config?project=demo', { method: 'PATCH', body })).status, 400, JSON.stringify(body));
    }
    assert.deepEqual((await rest(server, '/config?project=demo', { method: 'PATCH', body: { retentionDays: null } })).json, { retentionDays: null });
    assert.equal((await rest(server, '/channels?project=nope')).status, 404);
    a.realtime.disconnect();
  });

  test('webhooks: payload and headers to each URL, deliveries counted', async () => {
    const hits = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(req.url === '/fail' ? 500 : 200).end('ok');
      });
    });
    await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
    closers.push(() => receiver.close());
    const port = receiver.address().port;
    const c = await defineChannel(server, `hook${hex()}:%`, {
      webhookUrls: [`http://127.0.0.1:${port}/ok`, `http://127.0.0.1:${port}/fail`],
    });
    const ch = `${c.pattern.slice(0, -1)}7`;
    const a = userClient(server, 'alice');
    await a.realtime.subscribe(ch);
    const m = next(a, 'order_paid');
    await a.realtime.publish(ch, 'order_paid', { amount: 5 });
    const id = (await m).meta.messageId;
    await until(() => hits.length >= 2, 5_000, 'two webhook calls');
    for (const h of hits) {
      assert.deepEqual(h.body, { amount: 5 });
      assert.equal(h.headers['x-insforge-event'], 'order_paid');
      assert.equal(h.headers['x-insforge-channel'], ch);
      assert.equal(h.headers['x-insforge-message-id'], id);
      assert.match(h.headers['content-type'], /application\/json/);
    }
    await until(
      async () => (await rest(server, `/messages?project=demo&channelId=${c.id}`)).json[0]?.whDeliveredCount === 1,
      5_000,
      'whDeliveredCount 1',
    );
    const [msg] = (await rest(server, `/messages?project=demo&channelId=${c.id}`)).json;
    assert.equal(msg.whAudienceCount, 2);
    const stats = await rest(server, `/messages/stats?project=demo&channelId=${c.id}`);
    assert.equal(stats.json.whDeliveryRate, 0.5);
    a.realtime.disconnect();
  });

  test('a token change reconnects as the new user; presence follows', async () => {
    const ch = `order:${uniq()}`;
    const watcher = userClient(server, 'carol');
    await subOk(watcher, ch);
    const c = userClient(server, 'alice');
    const joined = next(watcher, 'presence:join');
    await subOk(c, ch);
    assert.equal((await joined).member.presenceId, 'alice');
    const left = next(watcher, 'presence:leave');
    const bobJoined = next(watcher, 'presence:join');
    c.setAccessToken(mintToken('bob'));
    assert.equal((await left).member.presenceId, 'alice');
    assert.equal((await bobJoined).member.presenceId, 'bob');
    const got = next(watcher, 'who');
    await until(() => c.realtime.isConnected && c.realtime.getSubscribedChannels().includes(ch), 5_000, 'resubscribed');
    await c.realtime.publish(ch, 'who', {});
    assert.equal((await got).meta.senderId, 'bob');
    c.realtime.disconnect();
    watcher.realtime.disconnect();
  });

  test('the SDK resubscribes after a reconnect', async () => {
    const ch = `order:${uniq()}`;
    const a = userClient(server, 'alice');
    await subOk(a, ch);
    const reconnected = next(a, 'connect', 5_000);
    a.realtime.socket.io.engine.close();
    await reconnected;
    await until(() => a.realtime.getSubscribedChannels().includes(ch), 5_000, 'resubscribed');
    const got = next(a, 'again');
    await a.realtime.publish(ch, 'again', { ok: true });
    assert.equal((await got).ok, true);
    a.realtime.disconnect();
  });
});

describe('limits', () => {
  let server;
  before(async () => {
    server = await scope.server({
      name: 'insforge-limits',
      env: env({ RATE_LIMIT_PER_SEC: '5', RATE_LIMIT_BURST: '5', MAX_ROOMS_PER_SOCKET: '5' }),
    });
    await defineChannel(server, 'lim:%');
  });

  test('channels per socket are bounded', async () => {
    // A user socket is in its own room; each channel takes two more (messages, presence).
    const sock = await connected(rawSocket(server, { token: mintToken('alice') }));
    assert.equal((await subscribeRaw(sock, 'lim:1')).ok, true);
    assert.equal((await subscribeRaw(sock, 'lim:2')).ok, true);
    const third = await subscribeRaw(sock, 'lim:3');
    assert.equal(third.ok, false);
    assert.equal(third.error.code, 'RATE_LIMITED');
    sock.emit('realtime:unsubscribe', { channel: 'lim:1' });
    await sleep(300);
    assert.equal((await subscribeRaw(sock, 'lim:3')).ok, true);
    sock.close();
  });

  test('the event rate is bounded', async () => {
    const sock = await connected(rawSocket(server, { token: mintToken('bob') }));
    assert.equal((await subscribeRaw(sock, 'lim:r')).ok, true);
    const errors = [];
    sock.on('realtime:error', (e) => errors.push(e));
    for (let i = 0; i < 20; i++) sock.emit('realtime:publish', { channel: 'lim:r', event: 'e', payload: { i } });
    await until(() => errors.length > 0, 3_000, 'a rate refusal');
    assert.equal(errors[0].code, 'RATE_LIMITED');
    sock.close();
  });
});

describe('restart', () => {
  test('after a server restart the SDK reconnects, resubscribes and presence recovers', async () => {
    requireMongo('insforge restart');
    const port = await new Promise((res) => {
      const t = createTcpServer().listen(0, '127.0.0.1', () => {
        const p = t.address().port;
        t.close(() => res(p));
      });
    });
    const opts = { mongo: true, db: uniq('ifrs'), env: env({ PORT: String(port) }) };
    const first = await scope.server({ name: 'if-restart-1', ...opts });
    await defineChannel(first, 'rs:%');
    const a = userClient(first, 'alice');
    const b = userClient(first, 'bob');
    await subOk(a, 'rs:1');
    await subOk(b, 'rs:1');
    const down = next(a, 'disconnect', 5_000);
    await first.stop();
    await down;
    const second = await scope.server({ name: 'if-restart-2', ...opts });
    assert.equal(second.url, first.url);
    await until(
      () => a.realtime.isConnected && b.realtime.isConnected && a.realtime.getSubscribedChannels().includes('rs:1') && b.realtime.getSubscribedChannels().includes('rs:1'),
      15_000,
      'both resubscribed',
    );
    await until(() => a.realtime.getPresenceState('rs:1').length === 2, 5_000, 'presence recovered');
    const got = next(b, 'back');
    await a.realtime.publish('rs:1', 'back', { ok: 1 });
    assert.equal((await got).ok, 1);
    a.realtime.disconnect();
    b.realtime.disconnect();
  });
});

describe('two nodes (Redis, MongoDB)', () => {
  let n1;
  let n2;
  before(async () => {
    requireServices('insforge two nodes');
    requireMongo('insforge two nodes');
    const shared = { redis: true, mongo: true, prefix: uniq('ifp'), db: uniq('ifdb') };
    n1 = await scope.server({ name: 'if-n1', env: env(), ...shared });
    n2 = await scope.server({ name: 'if-n2', env: env(), ...shared });
    await defineChannel(n1, 'room:%');
  });

  test('messages, presence and history across nodes', async () => {
    const ch = `room:${uniq()}`;
    const a = userClient(n1, 'alice');
    // The definition made on node 1 reaches node 2 within its cache's lifetime.
    const b = userClient(n2, 'bob');
    await until(async () => (await b.realtime.subscribe(ch)).ok, 5_000, 'node 2 admits the channel');
    const joined = next(b, 'presence:join');
    const ack = await a.realtime.subscribe(ch);
    assert.deepEqual(ack.presence.members.map((m) => m.presenceId).sort(), ['alice', 'bob']);
    assert.equal((await joined).member.presenceId, 'alice');
    // Alice's second socket, on node 2, is the same member.
    const a2 = userClient(n2, 'alice');
    const quiet = none(b.realtime, 'presence:join');
    await a2.realtime.subscribe(ch);
    await quiet;
    const toA = next(a, 'hello');
    const toB = next(b, 'hello');
    await b.realtime.publish(ch, 'hello', { from: 'bob' });
    assert.equal((await toA).from, 'bob');
    assert.equal((await toB).meta.senderId, 'bob');
    const hist = await rest(n1, '/messages?project=demo&eventName=hello');
    assert.equal(hist.json[0].senderId, 'bob');
    assert.equal(hist.json[0].wsAudienceCount, 2);
    // Another protocol's event made on node 1 reaches node 2's InsForge subscribers.
    const fromRest = next(b, 'from_rest');
    const r = await http(n1, '/api/projects/demo/emit', {
      method: 'POST',
      apiKey: API_KEY,
      body: { room: `channel:demo:${ch}`, event: 'from_rest', payload: { x: 1 } },
    });
    assert.equal(r.status, 202, r.text);
    assert.equal((await fromRest).meta.senderType, 'system');
    // Leaves only with alice's last socket, wherever it is.
    const noLeave = none(b.realtime, 'presence:leave');
    a.realtime.disconnect();
    await noLeave;
    const left = next(b, 'presence:leave');
    a2.realtime.disconnect();
    assert.equal((await left).member.presenceId, 'alice');
    b.realtime.disconnect();
  });

  test('one socket\'s messages arrive in the order it sent them, on every node', async () => {
    const ch = `room:${uniq()}`;
    const b = userClient(n2, 'bob');
    await until(async () => (await b.realtime.subscribe(ch)).ok, 5_000, 'node 2 admits the channel');
    const sock = await connected(rawSocket(n1, { apiKey: API_KEY }));
    assert.equal((await subscribeRaw(sock, ch)).ok, true);
    const got = [];
    b.realtime.on('seq', (m) => got.push(m.i));
    const N = 100;
    for (let i = 0; i < N; i++) sock.emit('realtime:publish', { channel: ch, event: 'seq', payload: { i } });
    await until(() => got.length === N, 10_000, `${N} messages`);
    assert.deepEqual(got, [...Array(N).keys()]);
    const hist = await rest(n2, `/messages?project=demo&eventName=seq&limit=${N}`);
    assert.deepEqual(hist.json.map((m) => m.payload.i), [...Array(N).keys()].reverse());
    sock.close();
    b.realtime.disconnect();
  });

  test('members of a node that dies are swept and announced', { timeout: 90_000 }, async () => {
    const ch = `room:${uniq()}`;
    const a = userClient(n1, 'alice');
    await subOk(a, ch);
    const doomed = await scope.server({
      name: 'if-n3',
      env: env(),
      redis: true,
      mongo: true,
      prefix: n1.env.REDIS_PREFIX,
      db: n1.env.MONGODB_DB,
    });
    const c = userClient(doomed, 'carol');
    const joined = next(a, 'presence:join', 5_000);
    await until(async () => (await c.realtime.subscribe(ch)).ok, 5_000, 'node 3 admits the channel');
    assert.equal((await joined).member.presenceId, 'carol');
    doomed.kill();
    c.realtime.disconnect();
    // The dead node's liveness key lives 30 s; a survivor sweeps every 5 s.
    const left = await next(a, 'presence:leave', 60_000);
    assert.equal(left.member.presenceId, 'carol');
    assert.equal(left.meta.channel, ch);
    assert.deepEqual(a.realtime.getPresenceState(ch).map((m) => m.presenceId), ['alice']);
    a.realtime.disconnect();
  });
});
