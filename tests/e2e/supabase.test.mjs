// Supabase Realtime front end with the real @supabase/realtime-js (ws transport on Node):
// connection and refusals, both serializers, broadcast (self, ack, binary pushes from vsn 2),
// presence, leaving, and a Socket.IO-free cross-node run. docs/protocols/supabase.md.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { Scope, mintToken, API_KEY, sleep, requireServices, uniq } from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;
const clients = [];

before(async () => {
  server = await scope.server({ name: 'supabase' });
});

const endpoint = (s) => `${s.url.replace(/^http/, 'ws')}/realtime/v1`;

function client(s, { sub = 'alice', vsn = '2.0.0', project = 'demo', apikey } = {}) {
  const c = new RealtimeClient(endpoint(s), {
    transport: WebSocket,
    params: { apikey: apikey ?? mintToken(sub), project },
    vsn,
    heartbeatIntervalMs: 1000,
    reconnectAfterMs: () => 60_000,
  });
  clients.push(c);
  return c;
}

function subscribed(channel, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('not SUBSCRIBED in time')), ms);
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') {
        clearTimeout(t);
        resolve();
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        clearTimeout(t);
        reject(err ?? new Error(status));
      }
    });
  });
}

function channelStatus(channel, ms = 5_000) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ status: 'NONE' }), ms);
    channel.subscribe((status, err) => {
      clearTimeout(t);
      resolve({ status, err });
    });
  });
}

function collect(channel, event) {
  const got = [];
  channel.on('broadcast', { event }, (m) => got.push(m.payload));
  return got;
}

async function until(cond, ms = 5_000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('supabase realtime', { concurrency: false }, () => {
  test('a bad or missing apikey, an unknown vsn or a foreign project refuse the upgrade', async () => {
    const url = `${endpoint(server)}/websocket`;
    const status = (q) =>
      new Promise((resolve) => {
        const ws = new WebSocket(`${url}?${q}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => resolve(-1));
      });
    assert.equal(await status('vsn=2.0.0&project=demo'), 401);
    assert.equal(await status('apikey=nope&vsn=2.0.0&project=demo'), 401);
    assert.equal(await status(`apikey=${mintToken('alice')}&vsn=9.9.9&project=demo`), 403);
    assert.equal(await status(`apikey=${mintToken('alice')}&vsn=2.0.0`), 400);
    assert.equal(await status(`apikey=${mintToken('mallory')}&vsn=2.0.0&project=demo`), 403);
    assert.equal(await status(`apikey=${API_KEY}&vsn=2.0.0&project=demo`), 101);
    assert.equal(await status(`apikey=${mintToken('alice')}&vsn=2.0.0&project=demo`), 101);
  });

  for (const [a, b] of [['2.0.0', '2.0.0'], ['1.0.0', '1.0.0'], ['2.0.0', '1.0.0']]) {
    test(`broadcast between vsn ${a} and vsn ${b}, self and ack honoured`, async () => {
      const room = uniq('room');
      const ca = client(server, { sub: 'alice', vsn: a });
      const cb = client(server, { sub: 'bob', vsn: b });
      const chA = ca.channel(room, { config: { broadcast: { self: false, ack: true } } });
      const chB = cb.channel(room, { config: { broadcast: { self: true } } });
      const gotA = collect(chA, 'shout');
      const gotB = collect(chB, 'shout');
      await subscribed(chA);
      await subscribed(chB);
      assert.equal(await chA.send({ type: 'broadcast', event: 'shout', payload: { from: 'a' } }), 'ok');
      await chB.send({ type: 'broadcast', event: 'shout', payload: { from: 'b' } });
      await until(() => gotB.length === 2 && gotA.length === 1, 5_000, 'deliveries');
      assert.deepEqual(gotB.map((p) => p.from).sort(), ['a', 'b'], 'self:true gets its own');
      assert.deepEqual(gotA, [{ from: 'b' }], 'self:false does not');
      await ca.removeChannel(chA);
      await cb.removeChannel(chB);
    });
  }

  test('an oversized broadcast with ack is refused, and the socket stays usable', async () => {
    const room = uniq('room');
    const c = client(server);
    const ch = c.channel(room, { config: { broadcast: { self: true, ack: true } } });
    const got = collect(ch, 'big');
    await subscribed(ch);
    const res = await ch.send({ type: 'broadcast', event: 'big', payload: { x: 'y'.repeat(300_000) } });
    assert.notEqual(res, 'ok');
    assert.equal(await ch.send({ type: 'broadcast', event: 'big', payload: { x: 1 } }), 'ok');
    await until(() => got.length === 1, 5_000, 'the small one');
    assert.deepEqual(got, [{ x: 1 }]);
  });

  test('a flood of pushes is rate limited per connection, and the connection stays open', async () => {
    const room = uniq('flood');
    const c = client(server);
    const ch = c.channel(room, { config: { broadcast: { self: true, ack: true } } });
    const got = collect(ch, 'f');
    await subscribed(ch);
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) => ch.send({ type: 'broadcast', event: 'f', payload: { i } })),
    );
    const ok = results.filter((r) => r === 'ok').length;
    assert.ok(ok >= 100 && ok < 400, `${ok} of 400 accepted`);
    await until(() => got.length === ok, 5_000, 'the accepted ones');
    await sleep(1_100);
    assert.equal(await ch.send({ type: 'broadcast', event: 'f', payload: { after: true } }), 'ok');
  });

  test('topic realtime: alone and postgres_changes bindings give CHANNEL_ERROR', async () => {
    const c = client(server);
    const empty = await channelStatus(c.channel(''));
    assert.equal(empty.status, 'CHANNEL_ERROR');
    const pg = c.channel(uniq('pg')).on('postgres_changes', { event: '*', schema: 'demo', table: 'tasks' }, () => {});
    const res = await channelStatus(pg);
    assert.equal(res.status, 'CHANNEL_ERROR');
  });

  test('presence: state after join, track and untrack seen by both, keys as configured', async () => {
    const room = uniq('lobby');
    const ca = client(server, { sub: 'alice' });
    const cb = client(server, { sub: 'bob', vsn: '1.0.0' });
    const chA = ca.channel(room, { config: { presence: { key: 'alice' } } });
    const chB = cb.channel(room, { config: { presence: { key: 'bob' } } });
    const joinsB = [];
    const leavesB = [];
    chB.on('presence', { event: 'join' }, ({ key }) => joinsB.push(key));
    chB.on('presence', { event: 'leave' }, ({ key }) => leavesB.push(key));
    let syncedA = false;
    chA.on('presence', { event: 'sync' }, () => {
      syncedA = true;
    });
    await subscribed(chA);
    await subscribed(chB);
    await until(() => syncedA, 5_000, 'a first sync');
    assert.equal(await chA.track({ user: 'alice', online_at: 1 }), 'ok');
    await until(() => joinsB.includes('alice'), 5_000, 'bob seeing alice');
    assert.deepEqual(Object.keys(chB.presenceState()), ['alice']);
    assert.equal(chB.presenceState().alice[0].user, 'alice');
    // A late joiner gets the state.
    const cc = client(server, { sub: 'carol' });
    const chC = cc.channel(room, { config: { presence: { key: 'carol' } } });
    chC.on('presence', { event: 'sync' }, () => {});
    await subscribed(chC);
    await until(() => Object.keys(chC.presenceState()).includes('alice'), 5_000, 'state for carol');
    assert.equal(await chA.untrack(), 'ok');
    await until(() => leavesB.includes('alice'), 5_000, 'bob seeing alice leave');
    // Closing the socket untracks too.
    await chB.track({ user: 'bob' });
    await until(() => Object.keys(chC.presenceState()).includes('bob'), 5_000, 'carol seeing bob');
    cb.disconnect();
    await until(() => !Object.keys(chC.presenceState()).includes('bob'), 5_000, 'bob gone');
  });

  test('a server-side REST emit into channel:<project>:<name> reaches realtime-js', async () => {
    const room = uniq('room');
    const c = client(server);
    const ch = c.channel(room);
    const got = collect(ch, 'note');
    await subscribed(ch);
    const res = await fetch(`${server.url}/api/projects/demo/emit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ room: `channel:demo:${room}`, event: 'note', payload: { n: 1 } }),
    });
    assert.equal(res.status, 202, await res.text());
    await until(() => got.length === 1, 5_000, 'the emitted note');
    assert.deepEqual(got, [{ n: 1 }]);
  });

  test('two nodes on one Redis: broadcast crosses nodes', async () => {
    requireServices('the two-node supabase test');
    const prefix = uniq('sbx');
    const a = await scope.server({ name: 'sb-a', redis: true, mongo: true, prefix, db: prefix });
    const b = await scope.server({ name: 'sb-b', redis: true, mongo: true, prefix, db: prefix, seed: false });
    const room = uniq('x');
    const ca = client(a, { sub: 'alice' });
    const cb = client(b, { sub: 'bob', vsn: '1.0.0' });
    const chA = ca.channel(room);
    const chB = cb.channel(room);
    const got = collect(chB, 'hop');
    await subscribed(chA);
    await subscribed(chB);
    for (let i = 0; i < 10; i++) {
      await chA.send({ type: 'broadcast', event: 'hop', payload: { i } });
    }
    await until(() => got.length === 10, 10_000, 'ten across nodes');
    assert.deepEqual(got.map((p) => p.i), [...Array(10).keys()], 'in order');
  });

  test('cleanup', async () => {
    for (const c of clients) c.disconnect();
  });
});
