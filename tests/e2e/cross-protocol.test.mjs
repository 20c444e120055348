// One channel, three protocols: a Pusher channel `<name>` and a Supabase Realtime channel
// `realtime:<name>` of the same project are one hub topic (room `channel:<project>:<name>`),
// which the REST emit route also reaches. Each protocol's clients get the others' events in
// their own shapes (docs/protocols/pusher.md and supabase.md, "On the hub").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import PusherServerMod from 'pusher';
import PusherJsMod from 'pusher-js';
import { RealtimeClient } from '@supabase/realtime-js';
import { Scope, API_KEY, mintToken, sleep, uniq, emitAck, assertAckOk, assertAckError } from './lib/harness.mjs';

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

before(async () => {
  server = await scope.server({ name: 'cross', env: { PUSHER_APPS: JSON.stringify([APP]) } });
});

const port = () => Number(new URL(server.url).port);

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
