// The Apinator dialect of the Pusher front end (seed 002, COMPAT-PROTOCOLS A.13): the
// `apinator-server` Python SDK from PyPI (channel auth, header-signed HTTP API, webhook
// verification) and a WebSocket client that sends exactly what `@apinator/client` 2.x sends
// (that package hard-codes its host, so it cannot be pointed at a test server). One node, and
// two nodes on one Redis.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Scope, sleep, uniq, requireServices } from './lib/harness.mjs';

const APP = { id: '77', key: 'e2e-apinator-key', secret: 'e2e-apinator-secret-0123456789abcdef', projectId: 'demo', dialect: 'apinator' };
const ENV = { PUSHER_APPS: JSON.stringify([APP]) };
const PYTHON = process.env.SB_PYTHON ?? join(homedir(), '.cache', 'switchboard', 'venv', 'bin', 'python');
const DRIVER = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'apinator_sdk.py');

const clients = [];
after(() => {
  for (const c of clients.splice(0)) c.close();
});
const scope = new Scope().hooks();

/** One call of the apinator-server SDK against `server`. */
function sdk(server, op, args = {}, app = APP) {
  const req = JSON.stringify({ host: server.url, app, op, args });
  return new Promise((res, rej) => {
    execFile(PYTHON, [DRIVER, req], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) return rej(new Error(`apinator_sdk.py ${op} failed: ${err.message}\n${stderr}`));
      try {
        res(JSON.parse(stdout));
      } catch {
        rej(new Error(`apinator_sdk.py ${op} printed ${stdout}\n${stderr}`));
      }
    });
  });
}

async function until(cond, what, ms = 3_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** A client speaking as @apinator/client does: string data, `realtime:` control events. */
function apinator(server, { key = APP.key, headers = {} } = {}) {
  const url = `${server.url.replace('http://', 'ws://')}/app/${key}?protocol=7&client=js&version=1.0.0`;
  const ws = new WebSocket(url, { headers });
  const frames = [];
  ws.on('message', (m) => {
    const f = JSON.parse(m.toString());
    f.parsed = typeof f.data === 'string' ? JSON.parse(f.data) : undefined;
    frames.push(f);
  });
  ws.on('error', () => {});
  const closed = new Promise((res) => ws.on('close', (code) => res(code)));
  const c = {
    ws,
    frames,
    closed,
    send: (event, data, channel) =>
      ws.send(JSON.stringify(channel ? { event, channel, data: JSON.stringify(data) } : { event, data: JSON.stringify(data) })),
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
  clients.push(c);
  return c;
}

async function established(server, opts) {
  const c = apinator(server, opts);
  const f = await c.next('realtime:connection_established');
  c.socketId = f.parsed.socket_id;
  return c;
}

/** Subscribes as the client does, signing with the SDK's authenticate_channel when needed. */
async function subscribe(server, c, channel, channelData) {
  const data = { channel };
  if (channel.startsWith('private-') || channel.startsWith('presence-')) {
    const args = { socket_id: c.socketId, channel_name: channel };
    if (channelData) args.channel_data = JSON.stringify(channelData);
    const signed = await sdk(server, 'authenticate_channel', args);
    assert.ok(signed.ok, JSON.stringify(signed));
    Object.assign(data, signed.result);
  }
  c.send('realtime:subscribe', data);
  return c.next((f) => f.channel === channel && /^realtime:subscription_/.test(f.event));
}

describe('apinator dialect, one node', () => {
  let server;
  before(async () => {
    server = await scope.server({ name: 'apinator', env: ENV });
  });

  test('handshake, ping and frames use realtime: names with string data and a long activity timeout', async () => {
    const c = apinator(server);
    const f = await c.next('realtime:connection_established');
    assert.equal(typeof f.data, 'string');
    assert.match(f.parsed.socket_id, /^\d+\.\d+$/);
    assert.equal(f.parsed.activity_timeout, 3600);
    c.send('realtime:ping', {});
    const pong = await c.next('realtime:pong');
    assert.equal(pong.data, '{}');
    assert.ok(!c.frames.some((x) => x.event.startsWith('pusher')), JSON.stringify(c.frames));
  });

  test('public, private and presence subscriptions; a bad signature is a subscription_error carrying its channel', async () => {
    const c = await established(server);
    const pub = await subscribe(server, c, uniq('pub'));
    assert.equal(pub.event, 'realtime:subscription_succeeded');
    const priv = await subscribe(server, c, `private-${uniq('p')}`);
    assert.equal(priv.event, 'realtime:subscription_succeeded');

    const name = `private-${uniq('bad')}`;
    c.send('realtime:subscribe', { channel: name, auth: `${APP.key}:${'0'.repeat(64)}` });
    const err = await c.next('realtime:subscription_error');
    assert.equal(err.channel, name);
    assert.equal(typeof err.data, 'string');
    assert.deepEqual({ type: err.parsed.type, status: err.parsed.status }, { type: 'AuthError', status: 401 });

    const room = `presence-${uniq('room')}`;
    const ann = await established(server);
    const ok = await subscribe(server, ann, room, { user_id: 'ann', user_info: { name: 'Ann' } });
    assert.deepEqual(ok.parsed, { presence: { ids: ['ann'], hash: { ann: { name: 'Ann' } }, count: 1 } });
    const bob = await established(server);
    // No user_info: the client drops a member_added whose user_info is not an object, so it
    // gets {}.
    await subscribe(server, bob, room, { user_id: 'bob' });
    const added = await ann.next('realtime:member_added');
    assert.equal(added.channel, room);
    assert.deepEqual(added.parsed, { user_id: 'bob', user_info: {} });
    bob.close();
    const removed = await ann.next('realtime:member_removed');
    assert.deepEqual(removed.parsed, { user_id: 'bob' });

    c.send('realtime:unsubscribe', { channel: priv.channel });
    await c.none(() => true, 200);
  });

  test('client events carry string data to the others on private channels, never to the sender', async () => {
    const name = `private-${uniq('ce')}`;
    const a = await established(server);
    const b = await established(server);
    await subscribe(server, a, name);
    await subscribe(server, b, name);
    a.send('client-typing', { who: 'a' }, name);
    const got = await b.next('client-typing');
    assert.equal(got.channel, name);
    assert.deepEqual(got.parsed, { who: 'a' });
    await a.none('client-typing');

    const pub = uniq('pub');
    await subscribe(server, a, pub);
    a.send('client-typing', {}, pub);
    const refused = await a.next('realtime:error');
    assert.match(refused.parsed.message, /private and presence/);
    assert.ok(refused.parsed.code === null || refused.parsed.code < 4000 || refused.parsed.code > 4004);
  });

  test('the SDK triggers (with socket_id exclusion) and lists channels in its array shape', async () => {
    const name = uniq('chat');
    const a = await established(server);
    const b = await established(server);
    await subscribe(server, a, name);
    await subscribe(server, b, name);
    const sent = await sdk(server, 'trigger', { name: 'new-message', data: '{"hello":"world"}', channel: name, socket_id: b.socketId });
    assert.deepEqual(sent, { ok: true, result: null });
    const got = await a.next('new-message');
    assert.deepEqual({ channel: got.channel, data: got.data }, { channel: name, data: '{"hello":"world"}' });
    await b.none('new-message');

    const many = await sdk(server, 'trigger', { name: 'both', data: '"x"', channels: [name, uniq('other')] });
    assert.ok(many.ok, JSON.stringify(many));
    await a.next('both');

    const list = await sdk(server, 'get_channels', {});
    assert.ok(list.ok, JSON.stringify(list));
    assert.ok(Array.isArray(list.result));
    assert.deepEqual(list.result.find((c) => c.name === name), { name, subscription_count: 2 });
    const filtered = await sdk(server, 'get_channels', { prefix: 'private-' });
    assert.ok(filtered.result.every((c) => c.name.startsWith('private-')), JSON.stringify(filtered));
    const one = await sdk(server, 'get_channel', { channel_name: name });
    assert.deepEqual(one.result, { name, subscription_count: 2 });
  });

  test('HTTP refusals are problem documents the SDK maps to its exceptions', async () => {
    const unknown = await sdk(server, 'get_channel', { channel_name: uniq('nobody') });
    assert.deepEqual({ ok: unknown.ok, error: unknown.error, status: unknown.status }, { ok: false, error: 'ApiError', status: 404 });
    const wrong = await sdk(server, 'get_channels', {}, { ...APP, secret: 'not-the-secret-0123456789abcdef0' });
    assert.deepEqual({ ok: wrong.ok, error: wrong.error }, { ok: false, error: 'AuthenticationError' });
    assert.match(wrong.message, /signature/i);
    const bad = await sdk(server, 'trigger', { name: 'x', data: '{}', channel: 'bad channel!' });
    assert.deepEqual({ ok: bad.ok, error: bad.error }, { ok: false, error: 'ValidationError' });

    const res = await fetch(`${server.url}/apps/${APP.id}/channels`, {
      headers: { 'X-Realtime-Key': APP.key, 'X-Realtime-Timestamp': String(Math.floor(Date.now() / 1000) - 400), 'X-Realtime-Signature': 'x' },
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const problem = await res.json();
    assert.deepEqual(Object.keys(problem).sort(), ['code', 'detail', 'status', 'title', 'type']);
    assert.equal(problem.status, 401);
    const unsigned = await fetch(`${server.url}/apps/${APP.id}/channels`);
    assert.equal(unsigned.status, 401);
  });

  test('an unknown key is refused in the Apinator dialect on Apinator host names, fatally (4001)', async () => {
    const c = apinator(server, { key: 'nope', headers: { Host: 'ws-eu.apinator.io' } });
    const err = await c.next('realtime:error');
    assert.equal(err.parsed.code, 4001);
    assert.equal(await c.closed, 4001);
  });
});

describe('apinator webhooks', () => {
  test('occupied, member_added, member_removed and vacated, one event per POST, verified by the SDK', async () => {
    const received = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const whsec = 'whsec_e2e_0123456789abcdef';
      const HOOKED = { ...APP, id: '78', key: 'e2e-apinator-hooked', webhooks: [{ url: `http://127.0.0.1:${hook.address().port}/h`, secret: whsec }] };
      const server = await scope.server({ name: 'apinator-hooks', env: { PUSHER_APPS: JSON.stringify([HOOKED]), INTEGRATION_ALLOW_PRIVATE: 'true' } });
      const room = `presence-${uniq('hook')}`;
      const c = await established(server, { key: HOOKED.key });
      const signed = await sdk(server, 'authenticate_channel', { socket_id: c.socketId, channel_name: room, channel_data: '{"user_id":"ann"}' }, HOOKED);
      c.send('realtime:subscribe', { channel: room, ...signed.result });
      await c.next('realtime:subscription_succeeded');
      const events = () => received.map((r) => JSON.parse(r.body));
      await until(() => events().length === 2, 'occupied and member_added');
      c.close();
      await until(() => events().length === 4, 'member_removed and vacated', 8_000);
      const byName = Object.fromEntries(events().map((e) => [e.event, e]));
      assert.deepEqual(Object.keys(byName).sort(), ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
      assert.equal(byName.member_added.user_id, 'ann');
      assert.equal(byName.channel_occupied.user_id, undefined);
      for (const r of received) {
        const e = JSON.parse(r.body);
        assert.equal(e.app_id, HOOKED.id);
        assert.equal(e.channel, room);
        assert.match(e.id, /^[0-9a-f-]{36}$/);
        assert.equal(r.headers['x-realtime-event'], e.event);
        assert.equal(r.headers['x-realtime-delivery-id'], e.id);
        const ok = await sdk(server, 'verify_webhook', { webhook_secret: whsec, headers: r.headers, body: r.body, max_age: 300 }, HOOKED);
        assert.deepEqual(ok, { ok: true, result: true });
        const forged = await sdk(server, 'verify_webhook', { webhook_secret: 'whsec_other', headers: r.headers, body: r.body }, HOOKED);
        assert.deepEqual(forged, { ok: true, result: false });
      }
    } finally {
      hook.close();
    }
  });
});

describe('apinator, two nodes on one Redis', () => {
  test('a trigger on one node reaches the other; counts and the channel list are the cluster\'s', async () => {
    requireServices('apinator across nodes');
    const prefix = uniq('e2e_apinator');
    const a = await scope.server({ name: 'apinator-a', redis: true, prefix, env: ENV });
    const b = await scope.server({ name: 'apinator-b', redis: true, prefix, env: ENV });
    const name = uniq('x');
    const onA = await established(a);
    const onB = await established(b);
    await subscribe(a, onA, name);
    await subscribe(b, onB, name);
    await sdk(a, 'trigger', { name: 'hello', data: '{}', channel: name });
    await onA.next('hello');
    await onB.next('hello');
    assert.deepEqual((await sdk(a, 'get_channel', { channel_name: name })).result, { name, subscription_count: 2 });
    const only = uniq('onlyb');
    await subscribe(b, onB, only);
    const list = await sdk(a, 'get_channels', {});
    assert.deepEqual(list.result.find((c) => c.name === only), { name: only, subscription_count: 1 });
    onB.close();
    await sleep(300);
    assert.deepEqual((await sdk(a, 'get_channel', { channel_name: name })).result, { name, subscription_count: 1 });
  });
});
