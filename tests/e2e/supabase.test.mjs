// Supabase Realtime front end with the real @supabase/realtime-js (ws transport on Node):
// connection and refusals, both serializers, broadcast (self, ack, binary pushes from vsn 2),
// presence (cluster-wide, no flap on reconnect, a dead node swept), the REST broadcast,
// postgres_changes over the change feed (SecantusDB), and cross-node runs.
// docs/protocols/supabase.md.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  Scope, mintToken, API_KEY, sleep, requireServices, requireMongo, uniq, http, waitReady, ISO_MS, record, emitAck, assertAckOk,
} from './lib/harness.mjs';

const PYTHON = process.env.SB_PYTHON ?? join(homedir(), '.cache', 'switchboard', 'venv', 'bin', 'python');
const clients = [];
// Registered before the scope's hooks, so the clients close before the servers stop.
after(() => {
  for (const c of clients) c.disconnect();
});
const scope = new Scope().hooks();
let server;

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

  test('project presence is one set: a realtime-js connection keeps its user online for Socket.IO clients', async () => {
    const watcher = await scope.user(server, 'bob');
    assertAckOk(await emitAck(watcher, 'subscribe:project', 'demo'));
    const online = record(watcher, 'presence:user:online');
    const offline = record(watcher, 'presence:user:offline');
    const sio = await scope.user(server, 'carol');
    assertAckOk(await emitAck(sio, 'presence:online', { projectId: 'demo' }));
    const rt = client(server, { sub: 'carol' });
    await subscribed(rt.channel(uniq('here')));
    await until(() => online.some((e) => e.userId === 'carol'), 5_000, 'carol online');
    sio.disconnect();
    await sleep(800);
    assert.equal(offline.filter((e) => e.userId === 'carol').length, 0, 'still connected through realtime-js');
    rt.disconnect();
    await until(() => offline.some((e) => e.userId === 'carol'), 8_000, 'carol offline once her last connection closed');
  });

  test('topic realtime: alone gives CHANNEL_ERROR', async () => {
    const c = client(server);
    const empty = await channelStatus(c.channel(''));
    assert.equal(empty.status, 'CHANNEL_ERROR');
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

  test('two nodes on one Redis: presence state spans nodes, and a quick reconnect does not flap', async () => {
    requireServices('the two-node presence test');
    const prefix = uniq('sbp');
    const a = await scope.server({ name: 'sbp-a', redis: true, mongo: true, prefix, db: prefix });
    const b = await scope.server({ name: 'sbp-b', redis: true, mongo: true, prefix, db: prefix, seed: false });
    const room = uniq('lobby');
    const join = async (s, sub, vsn = '2.0.0') => {
      const c = client(s, { sub, vsn });
      const ch = c.channel(room, { config: { presence: { key: sub } } });
      ch.on('presence', { event: 'sync' }, () => {});
      await subscribed(ch);
      return { c, ch };
    };
    const alice = await join(a, 'alice');
    assert.equal(await alice.ch.track({ user: 'alice', device: 1 }), 'ok');
    const carol = await join(a, 'carol', '1.0.0');
    await carol.ch.track({ user: 'carol' });
    // A late joiner on the other node gets both in presence_state.
    const bob = await join(b, 'bob');
    await until(() => ['alice', 'carol'].every((k) => k in bob.ch.presenceState()), 5_000, 'state from the other node');
    assert.equal(bob.ch.presenceState().alice[0].device, 1);

    // alice's socket drops and she comes back through the other node with the same key: bob
    // never sees her key disappear.
    let missing = 0;
    const watch = setInterval(() => {
      if (!('alice' in bob.ch.presenceState())) missing++;
    }, 10);
    try {
      alice.c.disconnect();
      const again = await join(b, 'alice');
      assert.equal(await again.ch.track({ user: 'alice', device: 2 }), 'ok');
      await until(() => bob.ch.presenceState().alice?.length === 1 && bob.ch.presenceState().alice[0].device === 2,
        10_000, "alice's old presence to go after the grace period");
    } finally {
      clearInterval(watch);
    }
    assert.equal(missing, 0, 'alice never left the presence state');
    // An explicit untrack is immediate, across nodes.
    assert.equal(await carol.ch.untrack(), 'ok');
    await until(() => !('carol' in bob.ch.presenceState()), 2_000, 'carol gone at once');
  });

  test('two nodes: the presences of a node that dies are swept as leaves', { timeout: 90_000 }, async () => {
    requireServices('the node-loss presence test');
    const prefix = uniq('sbd');
    const a = await scope.server({ name: 'sbd-a', redis: true, mongo: true, prefix, db: prefix });
    const b = await scope.server({ name: 'sbd-b', redis: true, mongo: true, prefix, db: prefix, seed: false });
    const room = uniq('lobby');
    const ca = client(a, { sub: 'alice' });
    const chA = ca.channel(room, { config: { presence: { key: 'alice' } } });
    await subscribed(chA);
    assert.equal(await chA.track({ user: 'alice' }), 'ok');
    const cb = client(b, { sub: 'bob' });
    const chB = cb.channel(room, { config: { presence: { key: 'bob' } } });
    const leaves = [];
    chB.on('presence', { event: 'sync' }, () => {});
    chB.on('presence', { event: 'leave' }, ({ key }) => leaves.push(key));
    await subscribed(chB);
    await until(() => 'alice' in chB.presenceState(), 5_000, 'alice seen from node b');
    ca.disconnect();
    a.kill();
    // Node a's liveness key expires (30 s), then node b's sweep (every 5 s) announces the leave.
    await until(() => leaves.includes('alice'), 60_000, "the swept node's presence leaving");
    assert.ok(!('alice' in chB.presenceState()));
  });

  describe('REST broadcast', { concurrency: false }, () => {
    const url = (q = 'project=demo') => `${server.url}/realtime/v1/api/broadcast?${q}`;
    const post = (body, { headers = {}, q } = {}) =>
      fetch(url(q), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const bearer = (sub = 'alice') => ({ authorization: `Bearer ${mintToken(sub)}` });

    test('send() before subscribing and httpSend() reach subscribers through the REST endpoints', async () => {
      const room = uniq('rest');
      const rx = client(server, { sub: 'bob' });
      const ch = rx.channel(room);
      const got = collect(ch, 'poke');
      await subscribed(ch);
      const tx = client(server, { sub: 'alice' });
      const out = tx.channel(room);
      const warn = console.warn;
      console.warn = () => {};
      try {
        assert.equal(await out.send({ type: 'broadcast', event: 'poke', payload: { via: 'batch' } }), 'ok');
      } finally {
        console.warn = warn;
      }
      assert.deepEqual(await out.httpSend('poke', { via: 'single' }), { success: true });
      await until(() => got.length === 2, 5_000, 'both REST broadcasts');
      assert.deepEqual(got.map((p) => p.via).sort(), ['batch', 'single']);
    });

    test('plain fetch: 202 and delivery; a bad message sends none; refusals', async () => {
      const room = uniq('rest');
      const rx = client(server, { sub: 'bob' });
      const ch = rx.channel(room);
      const got = collect(ch, 'e');
      await subscribed(ch);
      const msg = (payload, extra = {}) => ({ topic: room, event: 'e', payload, ...extra });
      let res = await post({ messages: [msg({ n: 1 }), msg({ n: 2 }, { private: true })] }, { headers: { apikey: API_KEY } });
      assert.equal(res.status, 202, await res.text());
      await until(() => got.length === 2, 5_000, 'two messages');
      assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);

      const refused = async (expected, body, opts) => {
        const r = await post(body, opts);
        const text = await r.text();
        assert.equal(r.status, expected, text);
        assert.equal(typeof JSON.parse(text).error, 'string', text);
      };
      const ok = { messages: [msg({ n: 3 })] };
      await refused(401, ok);
      await refused(401, ok, { headers: { apikey: 'nope' } });
      await refused(403, ok, { headers: bearer('mallory') });
      await refused(403, ok, { headers: bearer(), q: 'project=nowhere' });
      await refused(400, ok, { headers: bearer(), q: '' });
      await refused(400, { messages: [msg({ n: 4 }), msg('not an object')] }, { headers: bearer() });
      await refused(400, { messages: [] }, { headers: bearer() });
      await refused(400, { messages: Array.from({ length: 101 }, () => msg({})) }, { headers: bearer() });
      await refused(400, { messages: [{ topic: '', event: 'e', payload: {} }] }, { headers: bearer() });
      await refused(400, 'not json', { headers: bearer() });
      await refused(413, { messages: [msg({ x: 'y'.repeat(300_000) })] }, { headers: bearer() });
      await refused(413, { messages: [msg({ x: 'y'.repeat(1_100_000) })] }, { headers: bearer() });
      // Each message counts against the caller's rate (RATE_LIMIT_PER_SEC 100, burst 200).
      const hundred = { messages: Array.from({ length: 100 }, () => ({ topic: uniq('quiet'), event: 'e', payload: {} })) };
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(hundred, { headers: bearer('carol') })).status);
      assert.deepEqual(statuses, [202, 202, 429]);
      await sleep(300);
      assert.equal(got.length, 2, 'no refused message was delivered');
    });
  });

  describe('project keys and private channels', { concurrency: false }, () => {
    const ANON = 'anon-demo-0123456789abcdefghijklmnopqrstuv';
    const SERVICE = 'service-demo-0123456789abcdefghijklmnopqrs';
    let ks;
    before(async () => {
      ks = await scope.server({
        name: 'sb-keys',
        env: { SUPABASE_ANON_KEYS: `demo=${ANON}`, SUPABASE_SERVICE_KEYS: `demo=${SERVICE}` },
      });
    });
    const keyClient = (apikey, { project } = {}) => {
      const c = new RealtimeClient(endpoint(ks), {
        transport: WebSocket,
        params: project ? { apikey, project } : { apikey },
        heartbeatIntervalMs: 1000,
        reconnectAfterMs: () => 60_000,
      });
      clients.push(c);
      return c;
    };
    const note = async (owner) => {
      const res = await http(ks, '/api/projects/demo/collections/notes/documents', {
        method: 'POST', token: mintToken(owner), body: { text: 'private' },
      });
      assert.equal(res.status, 201, res.text);
      return res.json.id ?? res.json.data?.id;
    };
    const wsStatus = (q) => new Promise((resolve) => {
      const ws = new WebSocket(`${endpoint(ks)}/websocket?${q}`);
      ws.on('open', () => { ws.close(); resolve(101); });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('error', () => resolve(0));
    });

    test('an anon key connects without a project parameter and shares public channels', async () => {
      const room = uniq('pub');
      const anon = keyClient(ANON);
      const rx = anon.channel(room, { config: { presence: { key: 'visitor' } } });
      const got = collect(rx, 'hi');
      await subscribed(rx);
      const user = new RealtimeClient(endpoint(ks), {
        transport: WebSocket, params: { apikey: mintToken('alice'), project: 'demo' }, reconnectAfterMs: () => 60_000,
      });
      clients.push(user);
      const tx = user.channel(room);
      await subscribed(tx);
      assert.equal(await tx.send({ type: 'broadcast', event: 'hi', payload: { n: 1 } }), 'ok');
      await until(() => got.length === 1, 5_000, 'the broadcast at the anon client');
      assert.equal(await rx.track({ online: true }), 'ok');
      // The anon key names its project: another one is refused, the same one is fine.
      assert.equal(await wsStatus(`apikey=${ANON}&project=acme&vsn=1.0.0`), 403);
      assert.equal(await wsStatus(`apikey=${ANON}&project=demo&vsn=1.0.0`), 101);
      assert.equal(await wsStatus(`apikey=${ANON.slice(0, -1)}x&vsn=1.0.0`), 401);
    });

    test('an anon key is refused private channels and rows', async () => {
      const anon = keyClient(ANON);
      const priv = anon.channel(uniq('priv'), { config: { private: true } });
      const r = await channelStatus(priv);
      assert.equal(r.status, 'CHANNEL_ERROR');
      assert.match(String(r.err?.message), /Unauthorized: You do not have permissions to read from this Channel topic/);
      const pg = anon.channel(uniq('rows')).on('postgres_changes', { event: '*', schema: 'public', table: 'notes' }, () => {});
      const r2 = await channelStatus(pg);
      assert.equal(r2.status, 'CHANNEL_ERROR');
      assert.match(String(r2.err?.message), /Unauthorized/);
    });

    test('private channels follow membership and collection rules; a join access_token acts for the channel', async () => {
      const id = await note('alice');
      // A connection by the anon key whose join carries a user's token acts as that user.
      const alice = keyClient(ANON);
      alice.setAuth(mintToken('alice'));
      const own = alice.channel(`notes:${id}`, { config: { private: true } });
      await subscribed(own);
      const plain = alice.channel(uniq('team'), { config: { private: true } });
      await subscribed(plain);
      // bob is a member but not the note's owner; the bare collection name admits nobody.
      const bob = client(ks, { sub: 'bob' });
      for (const name of [`notes:${id}`, 'notes', `notes:${uniq('missing')}`]) {
        const r = await channelStatus(bob.channel(name, { config: { private: true } }));
        assert.equal(r.status, 'CHANNEL_ERROR', name);
        assert.match(String(r.err?.message), /Unauthorized/, name);
      }
      // The service key is the project's admin.
      const svc = keyClient(SERVICE);
      await subscribed(svc.channel(`notes:${id}`, { config: { private: true } }));
      // A token of a non-member in the join is refused.
      const c = keyClient(ANON);
      c.setAuth(mintToken('dave'));
      const r = await channelStatus(c.channel(uniq('x')));
      assert.equal(r.status, 'CHANNEL_ERROR');
      assert.match(String(r.err?.message), /Unauthorized: not a member/);
    });

    test('a refreshed token is re-checked against the private channel; a failing one closes it', async () => {
      const id = await note('alice');
      const c = client(ks, { sub: 'alice' });
      const system = [];
      const ch = c.channel(`notes:${id}`, { config: { private: true } }).on('system', {}, (m) => system.push(m));
      await subscribed(ch);
      const team = c.channel(uniq('public'));
      await subscribed(team);
      // Still alice: nothing happens.
      await c.setAuth(mintToken('alice'));
      await sleep(300);
      assert.equal(ch.state, 'joined');
      // bob is a member, so the public channel stays; he does not own the note, so it closes.
      await c.setAuth(mintToken('bob'));
      await until(() => system.some((m) => m.status === 'error'), 5_000, 'the system error');
      assert.match(system.find((m) => m.status === 'error').message, /Unauthorized/);
      await until(() => ch.state === 'closed', 5_000, 'the private channel closed');
      await sleep(300);
      assert.equal(team.state, 'joined');
    });

    test('REST broadcast: the service key and the anon key, private topics authorized per message', async () => {
      const room = uniq('restkeys');
      const rx = client(ks, { sub: 'alice' });
      const ch = rx.channel(room);
      const got = collect(ch, 'e');
      await subscribed(ch);
      const post = (key, body, extra = {}) =>
        fetch(`${ks.url}/realtime/v1/api/broadcast${extra.q ?? ''}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', apikey: key, ...(extra.headers ?? {}) },
          body: JSON.stringify(body),
        });
      const msg = (payload, extra = {}) => ({ topic: room, event: 'e', payload, ...extra });
      assert.equal((await post(SERVICE, { messages: [msg({ by: 'service' })] })).status, 202);
      assert.equal((await post(ANON, { messages: [msg({ by: 'anon' })] })).status, 202);
      await until(() => got.length === 2, 5_000, 'two REST broadcasts');
      // A private topic: the anon key is refused and nothing of the batch is sent.
      const res = await post(ANON, { messages: [msg({ by: 'anon-2' }), msg({ by: 'anon-private' }, { private: true })] });
      assert.equal(res.status, 403);
      assert.match((await res.json()).error, /Unauthorized/);
      // With a member's bearer token beside the anon key, the private topic passes.
      const ok = await post(ANON, { messages: [msg({ by: 'alice-private' }, { private: true })] }, {
        headers: { authorization: `Bearer ${mintToken('alice')}` },
      });
      assert.equal(ok.status, 202);
      assert.equal((await post(SERVICE, { messages: [msg({})] }, { q: '?project=acme' })).status, 403);
      await until(() => got.length === 3, 5_000, 'the private broadcast');
      assert.deepEqual(got.map((p) => p.by), ['service', 'anon', 'alice-private']);
    });
  });

  describe('postgres_changes', { concurrency: false }, () => {
    let pgServer;
    const pgDb = uniq('sbpg');
    before(async () => {
      requireMongo('the postgres_changes tests');
      pgServer = await scope.server({ name: 'sb-pg', mongo: true, db: pgDb });
      await waitReady(pgServer);
    });
    const docs = (c) => `/api/projects/demo/collections/${c}/documents`;
    const asAdmin = (s, path, opts = {}) => http(s, path, { apiKey: API_KEY, ...opts });
    const asUser = (s, sub, path, opts = {}) => http(s, path, { token: mintToken(sub), ...opts });

    test('INSERT, UPDATE and DELETE arrive in realtime-js shape; event and filter select', async () => {
      const table = uniq('tasks');
      const c = client(pgServer, { sub: 'alice' });
      const all = [];
      const bigInserts = [];
      const deletes = [];
      const system = [];
      const ch = c
        .channel(uniq('pg'))
        .on('postgres_changes', { event: '*', schema: 'public', table }, (p) => all.push(p))
        .on('postgres_changes', { event: 'INSERT', schema: 'demo', table, filter: 'n=gt.5' }, (p) => bigInserts.push(p))
        .on('postgres_changes', { event: 'DELETE', schema: 'public', table, filter: 'id=in.(d2,"x,y")' }, (p) => deletes.push(p))
        .on('system', {}, (m) => system.push(m));
      await subscribed(ch);
      await until(() => system.length === 1, 5_000, 'the system message');
      assert.equal(system[0].extension, 'postgres_changes');
      assert.equal(system[0].status, 'ok');

      let res = await asAdmin(pgServer, docs(table), { method: 'POST', body: { id: 'd1', n: 1, title: 'a', done: false, tags: ['x'] } });
      assert.equal(res.status, 201, res.text);
      res = await asAdmin(pgServer, docs(table), { method: 'POST', body: { id: 'd2', n: 9, title: 'b' } });
      assert.equal(res.status, 201, res.text);
      res = await asAdmin(pgServer, `${docs(table)}/d1`, { method: 'PATCH', body: { n: 2 } });
      assert.equal(res.status, 200, res.text);
      res = await asAdmin(pgServer, `${docs(table)}/d2`, { method: 'DELETE' });
      assert.ok(res.status === 200 || res.status === 204, res.text);
      res = await asAdmin(pgServer, `${docs(table)}/d1`, { method: 'DELETE' });
      assert.ok(res.status === 200 || res.status === 204, res.text);

      await until(() => all.length === 5, 8_000, 'five changes');
      assert.deepEqual(all.map((p) => `${p.eventType} ${p.new.id ?? p.old.id}`),
        ['INSERT d1', 'INSERT d2', 'UPDATE d1', 'DELETE d2', 'DELETE d1']);
      const [ins, , upd, del] = all;
      assert.equal(ins.schema, 'public');
      assert.equal(ins.table, table);
      assert.match(ins.commit_timestamp, ISO_MS);
      assert.equal(ins.errors, null);
      assert.deepEqual(ins.new, { id: 'd1', n: 1, title: 'a', done: false, tags: ['x'] });
      assert.deepEqual(ins.old, {});
      assert.equal(upd.new.n, 2);
      assert.equal(upd.new.title, 'a');
      assert.equal(upd.old.id, 'd1', 'old carries at least the id');
      assert.deepEqual(del.new, {});
      assert.equal(del.old.id, 'd2');
      await sleep(300);
      assert.deepEqual(bigInserts.map((p) => p.new.id), ['d2'], 'INSERT with n>5 only');
      assert.equal(bigInserts[0].schema, 'demo');
      assert.deepEqual(deletes.map((p) => p.old.id), ['d2'], 'the in filter excludes d1');
      await c.removeChannel(ch);
    });

    test('documents written directly into MongoDB by another program arrive (change streams)', async () => {
      const table = uniq('direct');
      const c = client(pgServer, { sub: 'alice' });
      const got = [];
      const ch = c.channel(uniq('pg')).on('postgres_changes', { event: '*', schema: 'public', table }, (p) => got.push(p));
      await subscribed(ch);
      // What any other MongoDB client does: the server's storage layout, no Switchboard API.
      const script = [
        'import os, time, pymongo',
        "db = pymongo.MongoClient(os.environ['URI'])[os.environ['DB']]",
        "c = db['data.demo.' + os.environ['TABLE']]",
        "c.insert_one({'_id': 'm1', 'n': 1, 'title': 'direct'})",
        // The feed reads an update's document after the fact; let it before the delete.
        'time.sleep(0.5)',
        "c.update_one({'_id': 'm1'}, {'$set': {'n': 2}})",
        'time.sleep(0.5)',
        "c.delete_one({'_id': 'm1'})",
      ].join('\n');
      execFileSync(PYTHON, ['-c', script], {
        env: { ...process.env, URI: requireMongo(), DB: pgDb, TABLE: table },
        timeout: 30_000,
      });
      await until(() => got.length === 3, 10_000, 'three changes from the direct writes');
      assert.deepEqual(got.map((p) => p.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      assert.deepEqual(got[0].new, { id: 'm1', n: 1, title: 'direct' });
      assert.equal(got[1].new.n, 2);
      assert.equal(got[2].old.id, 'm1');
      await c.removeChannel(ch);
    });

    test('one feed: a write reaches a Socket.IO collection subscriber and realtime-js alike', async () => {
      const table = uniq('both');
      const c = client(pgServer, { sub: 'alice' });
      const rows = [];
      const ch = c.channel(uniq('pg')).on('postgres_changes', { event: '*', schema: 'public', table }, (p) => rows.push(p));
      await subscribed(ch);
      const sio = await scope.user(pgServer, 'bob');
      assertAckOk(await emitAck(sio, 'subscribe:collection', { projectId: 'demo', collectionId: table }));
      const created = record(sio, 'document:created');
      const deleted = record(sio, 'document:deleted');
      let res = await asAdmin(pgServer, docs(table), { method: 'POST', body: { id: 'b1', n: 7 } });
      assert.equal(res.status, 201, res.text);
      res = await asAdmin(pgServer, `${docs(table)}/b1`, { method: 'DELETE' });
      assert.ok(res.status === 200 || res.status === 204, res.text);
      await until(() => rows.length === 2 && created.length === 1 && deleted.length === 1, 8_000, 'both clients');
      assert.deepEqual(created[0].document, { id: 'b1', n: 7 });
      assert.deepEqual(rows[0].new, created[0].document);
      assert.equal(rows[1].old.id, deleted[0].documentId);
      await c.removeChannel(ch);
    });

    test('an owner-scoped collection delivers only the subscriber\'s own rows; a refusal for one subscriber stops no other', async () => {
      const cb = client(pgServer, { sub: 'bob' });
      const got = [];
      const ch = cb.channel(uniq('notes')).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => got.push(p.new));
      await subscribed(ch);
      // alice subscribes on the same table: each of the two writes is refused to one of them
      // and delivered to the other.
      const ca = client(pgServer, { sub: 'alice' });
      const gotA = [];
      const chA = ca.channel(uniq('notes')).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'notes' }, (p) => gotA.push(p.new));
      await subscribed(chA);
      const mark = uniq('m');
      let res = await asUser(pgServer, 'alice', docs('notes'), { method: 'POST', body: { text: `alice ${mark}` } });
      assert.equal(res.status, 201, res.text);
      res = await asUser(pgServer, 'bob', docs('notes'), { method: 'POST', body: { text: `bob ${mark}` } });
      assert.equal(res.status, 201, res.text);
      await until(() => got.some((n) => n.text === `bob ${mark}`), 8_000, "bob's note");
      await sleep(300);
      assert.deepEqual(got.filter((n) => n.text.endsWith(mark)).map((n) => n.ownerId), ['bob']);
      await until(() => gotA.some((n) => n.text === `alice ${mark}`), 8_000, "alice's note");
      assert.deepEqual(gotA.filter((n) => n.text.endsWith(mark)).map((n) => n.ownerId), ['alice']);
      await cb.removeChannel(ch);
      await ca.removeChannel(chA);
    });

    test('bindings outside the project, without a table or with a bad filter are refused', async () => {
      const c = client(pgServer, { sub: 'alice' });
      for (const filter of [
        { event: '*', schema: 'acme', table: 'tasks' },
        { event: '*', schema: 'public' },
        { event: '*', schema: 'public', table: 'a$b' },
        { event: '*', schema: 'public', table: 'tasks', filter: 'n=like.x%' },
      ]) {
        const res = await channelStatus(c.channel(uniq('bad')).on('postgres_changes', filter, () => {}));
        assert.equal(res.status, 'CHANNEL_ERROR', JSON.stringify(filter));
      }
    });

    test('two nodes: a write through one node reaches a subscriber on the other', async () => {
      requireServices('the two-node postgres_changes test');
      const prefix = uniq('sbpg');
      const a = await scope.server({ name: 'sbpg-a', redis: true, mongo: true, prefix, db: prefix });
      const b = await scope.server({ name: 'sbpg-b', redis: true, mongo: true, prefix, db: prefix, seed: false });
      await waitReady(a);
      await waitReady(b);
      const table = uniq('t');
      const c = client(b, { sub: 'alice', vsn: '1.0.0' });
      const got = [];
      const ch = c.channel(uniq('pg')).on('postgres_changes', { event: 'INSERT', schema: 'public', table }, (p) => got.push(p.new.id));
      await subscribed(ch);
      for (const id of ['a1', 'a2']) {
        const res = await asAdmin(a, docs(table), { method: 'POST', body: { id } });
        assert.equal(res.status, 201, res.text);
      }
      await until(() => got.length === 2, 10_000, 'both inserts on the other node');
      assert.deepEqual(got, ['a1', 'a2']);
    });
  });

  test('cleanup', async () => {
    for (const c of clients) c.disconnect();
  });
});
