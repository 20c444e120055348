// One channel, three protocols: a Pusher channel `<name>` and a Supabase Realtime channel
// `realtime:<name>` of the same project are one hub topic (room `channel:<project>:<name>`),
// which the REST emit route also reaches. Each protocol's clients get the others' events in
// their own shapes (docs/protocols/pusher.md and supabase.md, "On the hub"). A channel's
// presence is one set for pusher-js (on `presence-` channels), realtime-js and @insforge/sdk,
// on one node and across two (docs/protocol.md, "Protocol channels").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import WebSocket from 'ws';
import PusherServerMod from 'pusher';
import PusherJsMod from 'pusher-js';
import { RealtimeClient } from '@supabase/realtime-js';
import { createClient } from '@insforge/sdk';
import { Scope, API_KEY, mintToken, sleep, uniq, emitAck, assertAckOk, assertAckError, http, requireServices, requireMongo } from './lib/harness.mjs';

const PusherServer = PusherServerMod.default ?? PusherServerMod;
const PusherJs = PusherJsMod.default ?? PusherJsMod;
const APP = { id: '7', key: 'x-proto-key', secret: 'x-proto-secret-0123456789abcdefgh', projectId: 'demo' };

// Registered before the scope's hooks, so the clients are closed before the server stops (both
// client libraries would otherwise keep reconnecting to a stopped server and hold the process).
const closers = [];
after(() => {
  for (const c of closers.splice(0)) c();
});
const scope = new Scope().hooks();
let server;

// Tests open several sockets per user (realtime-js and InsForge both count as the user's).
const ENV = { PUSHER_APPS: JSON.stringify([APP]), MAX_SOCKETS_PER_USER: '200' };

before(async () => {
  server = await scope.server({ name: 'cross', env: ENV });
  await defineInsforgeChannel(server, 'presence-%');
});

const port = () => Number(new URL(server.url).port);

async function defineInsforgeChannel(s, pattern) {
  const r = await http(s, '/api/realtime/channels?project=demo', { method: 'POST', apiKey: API_KEY, body: { pattern } });
  assert.equal(r.status, 201, r.text);
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function pusherChannel(name) {
  const c = new PusherJs(APP.key, {
    cluster: 'local', wsHost: '127.0.0.1', wsPort: port(), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
  });
  closers.push(() => c.disconnect());
  const ch = c.subscribe(name);
  let ok = false;
  ch.bind('pusher:subscription_succeeded', () => { ok = true; });
  await until(() => ok, 5_000, 'pusher subscription');
  return ch;
}

async function supabaseChannel(name) {
  const c = new RealtimeClient(`${server.url.replace(/^http/, 'ws')}/realtime/v1`, {
    transport: WebSocket,
    params: { apikey: mintToken('alice'), project: 'demo' },
  });
  closers.push(() => c.disconnect());
  const ch = c.channel(name, { config: { broadcast: { ack: true } } });
  let ok = false;
  ch.subscribe((s) => { if (s === 'SUBSCRIBED') ok = true; });
  await until(() => ok, 5_000, 'supabase subscription');
  return ch;
}

describe('a channel shared by Pusher, Supabase Realtime and the REST emit route', { concurrency: false }, () => {
  test('each protocol receives the others\' events', async () => {
    const name = uniq('lobby').replace(/_/g, '-');
    const p = await pusherChannel(name);
    const s = await supabaseChannel(name);
    const atPusher = [];
    const atSupabase = [];
    for (const ev of ['greet', 'shout', 'note']) {
      p.bind(ev, (data) => atPusher.push([ev, data]));
      s.on('broadcast', { event: ev }, (m) => atSupabase.push([ev, m.payload]));
    }

    // A Pusher HTTP trigger (the `pusher` server library) reaches the realtime-js client.
    const lib = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port()), useTLS: false });
    await lib.trigger(name, 'greet', { hello: 'world' });
    await until(() => atSupabase.length === 1 && atPusher.length === 1, 5_000, 'the trigger on both');
    assert.deepEqual(atSupabase[0], ['greet', { hello: 'world' }]);
    assert.deepEqual(atPusher[0], ['greet', { hello: 'world' }]);

    // A realtime-js broadcast reaches the pusher-js client.
    assert.equal(await s.send({ type: 'broadcast', event: 'shout', payload: { msg: 'hi' } }), 'ok');
    await until(() => atPusher.length === 2, 5_000, 'the broadcast at pusher');
    assert.deepEqual(atPusher[1], ['shout', { msg: 'hi' }]);

    // A server-side emit into channel:<project>:<name> reaches both.
    const res = await fetch(`${server.url}/api/projects/demo/emit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ room: `channel:demo:${name}`, event: 'note', payload: { n: 3 } }),
    });
    assert.equal(res.status, 202, await res.text());
    await until(() => atPusher.length === 3 && atSupabase.length === 2, 5_000, 'the emit on both');
    assert.deepEqual(atPusher[2], ['note', { n: 3 }]);
    assert.deepEqual(atSupabase[1], ['note', { n: 3 }]);
  });

  test('no protocol can publish another\'s control frames on a channel (a forged Pusher member_added, say)', async () => {
    const name = `presence-${uniq('guard').replace(/_/g, '-')}`;
    const s = await supabaseChannel(name);
    const forged = await s.send({ type: 'broadcast', event: 'pusher_internal:member_added', payload: { data: '{"user_id":"mallory"}' } });
    assert.notEqual(forged, 'ok', 'the broadcast is refused');
    const res = await fetch(`${server.url}/api/projects/demo/emit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ room: `channel:demo:${name}`, event: 'pusher:error', payload: {} }),
    });
    assert.equal(res.status, 400, await res.text());
    const lib = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port()), useTLS: false });
    await assert.rejects(lib.trigger(name, 'realtime:subscription_succeeded', {}), (e) => e.status === 400);
    const rest = await fetch(`${server.url}/realtime/v1/api/broadcast?project=demo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', apikey: mintToken('alice') },
      body: JSON.stringify({ messages: [{ topic: name, event: 'phx_reply', payload: {} }] }),
    });
    assert.equal(res.status, 400);
    assert.equal(rest.status, 400, await rest.text());
  });

  test('a Socket.IO client joins a protocol channel as the custom room channel:<name>, and publishes into it', async () => {
    const name = uniq('bridge').replace(/_/g, '-');
    const p = await pusherChannel(name);
    const s = await supabaseChannel(name);
    const sio = await scope.user(server, 'alice');
    assertAckOk(await emitAck(sio, 'subscribe:project', 'demo'));
    const joined = await emitAck(sio, 'custom:join', { room: `channel:${name}` });
    assertAckOk(joined, { room: `channel:${name}` });
    const atSio = [];
    sio.onAny((ev, body) => {
      if (ev.startsWith('custom:') && ev !== 'custom:joined' && ev !== 'custom:left') atSio.push([ev, body]);
    });
    const atPusher = [];
    p.bind('wave', (data, meta) => atPusher.push([data, meta?.user_id]));
    const atSupabase = [];
    s.on('broadcast', { event: 'wave' }, (m) => atSupabase.push(m.payload));

    const lib = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port()), useTLS: false });
    await lib.trigger(name, 'greet', { hello: 'sio' });
    assert.equal(await s.send({ type: 'broadcast', event: 'shout', payload: { n: 2 } }), 'ok');
    await until(() => atSio.length === 2, 5_000, 'the trigger and the broadcast at Socket.IO');
    assert.deepEqual(atSio[0], ['custom:greet', { from: null, payload: { hello: 'sio' }, room: `channel:${name}` }]);
    assert.deepEqual(atSio[1], ['custom:shout', { from: null, payload: { n: 2 }, room: `channel:${name}` }]);

    const sent = await emitAck(sio, 'custom:broadcast', { projectId: 'demo', event: 'wave', payload: { from: 'sio' }, room: `channel:${name}` });
    assertAckOk(sent, { event: 'wave' });
    await until(() => atPusher.length === 1 && atSupabase.length === 1, 5_000, 'the Socket.IO broadcast at Pusher and Supabase');
    assert.deepEqual(atPusher[0][0], { from: 'sio' });
    assert.deepEqual(atSupabase[0], { from: 'sio' });
    await sleep(200);
    assert.equal(atSio.length, 2, `the sender does not get its own broadcast: ${JSON.stringify(atSio)}`);

    assertAckError(await emitAck(sio, 'custom:join', { room: 'channel:private-x' }), 'FORBIDDEN');
    assertAckError(await emitAck(sio, 'custom:join', { room: 'channel:presence-x' }), 'FORBIDDEN');
    assertAckError(
      await emitAck(sio, 'custom:broadcast', { projectId: 'demo', event: 'pusher:error', payload: {}, room: `channel:${name}` }),
      'INVALID_PAYLOAD',
    );
    assertAckOk(await emitAck(sio, 'custom:leave', { room: `channel:${name}` }));
    await lib.trigger(name, 'greet', { again: true });
    await sleep(300);
    assert.equal(atSio.length, 2, `no delivery after custom:leave: ${JSON.stringify(atSio)}`);
  });
});

// --- presence: one set across protocols ---------------------------------------------------

const portOf = (s) => Number(new URL(s.url).port);

/** A pusher-js client on `s` whose presence channel auth the `pusher` lib signs as `member`. */
async function pusherMember(s, name, member) {
  const signer = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(portOf(s)), useTLS: false });
  const c = new PusherJs(APP.key, {
    cluster: 'local', wsHost: '127.0.0.1', wsPort: portOf(s), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => cb(null, signer.authorizeChannel(socketId, channelName, member)),
    },
  });
  closers.push(() => c.disconnect());
  const ch = c.subscribe(name);
  const added = [];
  const removed = [];
  ch.bind('pusher:member_added', (m) => added.push(m));
  ch.bind('pusher:member_removed', (m) => removed.push(m.id));
  await new Promise((res, rej) => {
    ch.bind('pusher:subscription_succeeded', res);
    ch.bind('pusher:subscription_error', (e) => rej(new Error(`subscription_error ${JSON.stringify(e)}`)));
  });
  return { c, ch, added, removed };
}

/** A realtime-js client of user `sub` on `s`, joined to `name` with presence key `key`. */
async function supabaseMember(s, name, sub, key = sub) {
  const c = new RealtimeClient(`${s.url.replace(/^http/, 'ws')}/realtime/v1`, {
    transport: WebSocket,
    params: { apikey: mintToken(sub), project: 'demo' },
  });
  closers.push(() => c.disconnect());
  const ch = c.channel(name, { config: { presence: { key } } });
  const joins = [];
  const leaves = [];
  ch.on('presence', { event: 'sync' }, () => {});
  ch.on('presence', { event: 'join' }, ({ key: k }) => joins.push(k));
  ch.on('presence', { event: 'leave' }, ({ key: k }) => leaves.push(k));
  let ok = false;
  ch.subscribe((st) => { if (st === 'SUBSCRIBED') ok = true; });
  await until(() => ok, 5_000, 'supabase subscription');
  return { c, ch, joins, leaves };
}

/** An @insforge/sdk client of user `sub` on `s`, subscribed to `name`. */
async function insforgeMember(s, name, sub) {
  const c = createClient({ baseUrl: `${s.url}/insforge?project=demo`, accessToken: mintToken(sub) });
  closers.push(() => c.realtime.disconnect());
  const joins = [];
  const leaves = [];
  c.realtime.on('presence:join', (m) => joins.push(m.member));
  c.realtime.on('presence:leave', (m) => leaves.push(m.member));
  let ack;
  // A definition made on another node reaches this one within its cache's lifetime.
  await untilAsync(async () => (ack = await c.realtime.subscribe(name)).ok, 8_000, 'insforge subscription');
  return { c, ack, joins, leaves };
}

const keysOf = (state) => Object.keys(state).sort();

async function untilAsync(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * pusher-js `ann` on `pa`, realtime-js `bob` on `sb` and InsForge `carol` on `ib` join one
 * channel: each sees the others in its join snapshot and as they come and go.
 */
async function threeProtocols(pa, sb, ib) {
  const name = `presence-${uniq('room').replace(/_/g, '-')}`;
  const ann = await pusherMember(pa, name, { user_id: 'ann', user_info: { name: 'Ann' } });
  assert.equal(ann.ch.members.count, 1);

  const bob = await supabaseMember(sb, name, 'bob');
  await until(() => 'ann' in bob.ch.presenceState(), 5_000, 'ann in bob\'s presence_state');
  assert.equal(bob.ch.presenceState().ann[0].name, 'Ann', 'a Pusher member\'s user_info is its meta');
  assert.equal(await bob.ch.track({ name: 'Bob' }), 'ok');
  await until(() => ann.added.length === 1, 5_000, 'member_added bob at pusher');
  assert.deepEqual(ann.added[0], { id: 'bob', info: { name: 'Bob' } }, 'a Supabase meta is Pusher user_info');

  const carol = await insforgeMember(ib, name, 'carol');
  assert.deepEqual(carol.ack.presence.members.map((m) => m.presenceId).sort(), ['ann', 'bob', 'carol']);
  await until(() => ann.added.length === 2, 5_000, 'member_added carol at pusher');
  assert.equal(ann.added[1].id, 'carol');
  assert.equal(ann.added[1].info.presenceId, 'carol');
  await until(() => 'carol' in bob.ch.presenceState(), 5_000, 'carol at supabase');
  assert.equal(bob.ch.presenceState().carol[0].type, 'user');

  // A late Pusher subscriber lists every protocol's members.
  const dan = await pusherMember(pa, name, { user_id: 'dan' });
  assert.equal(dan.ch.members.count, 4);
  assert.deepEqual(dan.ch.members.get('bob'), { id: 'bob', info: { name: 'Bob' } });
  await until(() => carol.joins.some((m) => m.presenceId === 'dan'), 5_000, 'dan at insforge');
  await until(() => bob.joins.includes('dan'), 5_000, 'dan at supabase');

  // Leaving: each protocol hears the others go.
  bob.ch.untrack();
  await until(() => ann.removed.includes('bob'), 5_000, 'member_removed bob at pusher');
  await until(() => carol.leaves.some((m) => m.presenceId === 'bob'), 5_000, 'bob gone at insforge');
  carol.c.realtime.unsubscribe(name);
  await until(() => ann.removed.includes('carol'), 5_000, 'member_removed carol at pusher');
  await until(() => bob.leaves.includes('carol'), 5_000, 'carol gone at supabase');
  ann.c.disconnect();
  await until(() => dan.removed.includes('ann'), 5_000, 'member_removed ann at pusher');
  await until(() => !('ann' in bob.ch.presenceState()), 5_000, 'ann gone at supabase');
  assert.deepEqual(keysOf(bob.ch.presenceState()), ['dan']);
  for (const c of [dan.c, bob.c]) c.disconnect();
}

describe('presence: one set across Pusher, Supabase Realtime and InsForge', { concurrency: false }, () => {
  test('one node: each protocol sees the others join (snapshot and live) and leave', async () => {
    await threeProtocols(server, server, server);
  });

  test('a user on Pusher and Supabase at once is one Pusher member: member_added and member_removed once', async () => {
    const name = `presence-${uniq('both').replace(/_/g, '-')}`;
    const watcher = await pusherMember(server, name, { user_id: 'watcher' });
    const alice = await pusherMember(server, name, { user_id: 'alice', user_info: { via: 'pusher' } });
    await until(() => watcher.added.length === 1, 5_000, 'member_added alice');
    const sb = await supabaseMember(server, name, 'alice');
    assert.equal(await sb.ch.track({ via: 'supabase' }), 'ok');
    // realtime-js shows alice's two connections as two metas of one key.
    await until(() => sb.ch.presenceState().alice?.length === 2, 5_000, 'two metas for alice');
    const more = await pusherMember(server, name, { user_id: 'late' });
    assert.equal(more.ch.members.count, 3);
    assert.deepEqual(more.ch.members.get('alice').info, { via: 'pusher' }, 'the first connection\'s info');
    sb.ch.untrack();
    await until(() => sb.ch.presenceState().alice?.length === 1, 5_000, 'one meta left');
    alice.c.disconnect();
    await until(() => watcher.removed.length === 1, 5_000, 'member_removed alice');
    await sleep(300);
    assert.deepEqual(watcher.added.map((m) => m.id), ['alice', 'late'], 'alice was added once');
    assert.deepEqual(watcher.removed, ['alice'], 'and removed once');
    for (const c of [watcher.c, more.c, sb.c]) c.disconnect();
  });
});

describe('presence across two nodes on one Redis', { concurrency: false }, () => {
  let a;
  let b;
  before(async () => {
    requireServices('cross-protocol presence on two nodes');
    requireMongo('cross-protocol presence on two nodes');
    const shared = { redis: true, mongo: true, prefix: uniq('xpp'), db: uniq('xpdb') };
    a = await scope.server({ name: 'cross-a', env: ENV, ...shared });
    b = await scope.server({ name: 'cross-b', env: ENV, ...shared, seed: false });
    await defineInsforgeChannel(a, 'presence-%');
  });

  test('a member on node A is seen by every protocol\'s clients on node B, and the other way', async () => {
    await threeProtocols(a, b, b);
  });

  test('pusher-js on node B sees realtime-js and InsForge members of node A', async () => {
    const name = `presence-${uniq('rev').replace(/_/g, '-')}`;
    const bob = await supabaseMember(a, name, 'bob');
    assert.equal(await bob.ch.track({ name: 'Bob' }), 'ok');
    const carol = await insforgeMember(a, name, 'carol');
    const ann = await pusherMember(b, name, { user_id: 'ann' });
    assert.deepEqual(Object.keys(ann.ch.members.members).sort(), ['ann', 'bob', 'carol']);
    await untilAsync(async () => carol.joins.some((m) => m.presenceId === 'ann'), 5_000, 'ann at insforge on A');
    bob.c.disconnect();
    // A dropped realtime-js connection is held for a few seconds (no flap on reconnect).
    await until(() => ann.removed.includes('bob'), 10_000, 'member_removed bob on B');
    for (const c of [ann.c]) c.disconnect();
    carol.c.realtime.disconnect();
  });
});

describe('presence when a node dies', () => {
  test('the members of a node that dies leave every protocol\'s clients on the other node', { timeout: 90_000 }, async () => {
    requireServices('cross-protocol node loss');
    requireMongo('cross-protocol node loss');
    const shared = { redis: true, mongo: true, prefix: uniq('xpd'), db: uniq('xpddb') };
    const a = await scope.server({ name: 'cross-dead-a', env: ENV, ...shared });
    const b = await scope.server({ name: 'cross-dead-b', env: ENV, ...shared, seed: false });
    await defineInsforgeChannel(a, 'presence-%');
    const name = `presence-${uniq('dead').replace(/_/g, '-')}`;
    const ann = await pusherMember(a, name, { user_id: 'ann' });
    const carol = await insforgeMember(a, name, 'carol');
    const bob = await supabaseMember(b, name, 'bob');
    assert.equal(await bob.ch.track({ name: 'Bob' }), 'ok');
    const dan = await pusherMember(b, name, { user_id: 'dan' });
    assert.equal(dan.ch.members.count, 4);
    // Killed first, so nothing leaves the set but the sweep; then the clients stop retrying.
    a.kill();
    ann.c.disconnect();
    carol.c.realtime.disconnect();
    // Node a's liveness key expires (30 s), then node b's sweep (every 5 s) announces the leaves.
    await until(() => ['ann', 'carol'].every((k) => dan.removed.includes(k)), 60_000, 'member_removed at pusher on b');
    await until(() => keysOf(bob.ch.presenceState()).join() === 'bob,dan', 5_000, 'ann and carol gone at supabase on b');
    for (const c of [dan.c, bob.c]) c.disconnect();
  });
});

describe('presence: Pusher member webhooks for every protocol\'s members', () => {
  test('a realtime-js or InsForge member of a presence- channel is a member_added / member_removed webhook of the project\'s apps', async () => {
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
      const HOOKED = {
        ...APP,
        webhooks: [{ url: `http://127.0.0.1:${hook.address().port}/hook`, event_types: ['member_added', 'member_removed'] }],
      };
      const s = await scope.server({
        name: 'cross-hooks',
        env: { ...ENV, PUSHER_APPS: JSON.stringify([HOOKED]), INTEGRATION_ALLOW_PRIVATE: 'true' },
      });
      await defineInsforgeChannel(s, 'presence-%');
      const verifier = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(portOf(s)), useTLS: false });
      const named = (n, user) => received
        .flatMap((r) => {
          const wh = verifier.webhook({ headers: r.headers, rawBody: r.rawBody });
          assert.ok(wh.isValid(), 'signed for the app');
          return wh.getEvents();
        })
        .filter((e) => e.name === n && e.user_id === user);

      const name = `presence-${uniq('hooks').replace(/_/g, '-')}`;
      const bob = await supabaseMember(s, name, 'bob');
      assert.equal(await bob.ch.track({ name: 'Bob' }), 'ok');
      await until(() => named('member_added', 'bob').length === 1, 5_000, 'member_added for bob');
      const carol = await insforgeMember(s, name, 'carol');
      await until(() => named('member_added', 'carol').length === 1, 5_000, 'member_added for carol');
      assert.equal(named('member_added', 'carol')[0].channel, name);
      bob.ch.untrack();
      carol.c.realtime.unsubscribe(name);
      // Departures wait 3 s, as Pusher's do.
      await until(() => named('member_removed', 'bob').length === 1 && named('member_removed', 'carol').length === 1, 8_000, 'member_removed for both');
      bob.c.disconnect();
      carol.c.realtime.disconnect();
    } finally {
      hook.close();
    }
  });
});
