// Presence with the official socket.io-client on three nodes sharing one Redis (heartbeat 1 s,
// TTL 2 s): announcements, the cluster-wide online list with connection counts, offline once
// when the last tab anywhere closes, offline once when a node is killed, and denials
// (contract "Presence and sessions"; docs/protocol.md "Presence").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, uniq, waitFor, expectNone, record, emitAck, assertAckOk, assertAckError, sleep,
  requireServices, ISO_MS,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let a;
let b;
const PRESENCE_ENV = { PRESENCE_HEARTBEAT_SECS: '1', PRESENCE_TTL_SECS: '2' };

before(async () => {
  requireServices('presence across nodes');
  const prefix = uniq('e2e_presence');
  a = await scope.server({ name: 'presence-a', redis: true, prefix, env: PRESENCE_ENV });
  b = await scope.server({ name: 'presence-b', redis: true, prefix, env: PRESENCE_ENV });
});

async function watcher(server, sub) {
  const s = await scope.user(server, sub);
  assertAckOk(await emitAck(s, 'subscribe:project', 'demo'));
  return s;
}

const online = (s, body) => emitAck(s, 'presence:online', body);

async function list(s) {
  const ev = waitFor(s, 'presence:online:list');
  const ack = await emitAck(s, 'presence:get:online', { projectId: 'demo' });
  assertAckOk(ack);
  assert.deepEqual(await ev, ack.data);
  return ack.data.users;
}

describe('presence', () => {
  test('online, update, list across nodes, offline once after the last tab', async () => {
    const bob = await watcher(a, 'bob');
    const bobOnB = await watcher(b, 'bob');
    const tab1 = await scope.user(a, 'alice');
    const seenOnline = waitFor(bobOnB, 'presence:user:online', 5_000);
    const self = record(tab1, 'presence:user:online');
    assertAckOk(await online(tab1, { projectId: 'demo', status: 'busy', metadata: { device: 'web' } }));
    const ev = await seenOnline;
    assert.deepEqual({ ...ev, lastSeen: undefined }, { userId: 'alice', projectId: 'demo', status: 'busy', lastSeen: undefined, metadata: { device: 'web' } });
    assert.match(ev.lastSeen, ISO_MS);
    await sleep(200);
    assert.deepEqual(self, [], 'the sender does not hear its own announcement');

    const tab2 = await scope.user(b, 'alice');
    let users = await list(bob);
    const alice = users.find((u) => u.userId === 'alice');
    assert.equal(alice?.connections, 2, JSON.stringify(users));
    assert.equal(alice.status, 'busy');
    assert.ok(!users.some((u) => u.userId === 'carol'), 'carol never announced');

    await sleep(20);
    const upd = await emitAck(tab2, 'presence:update');
    assertAckOk(upd);
    await expectNone(bob, 'presence:user:online', 300);
    users = await list(bobOnB);
    assert.ok(users.find((u) => u.userId === 'alice').lastSeen >= alice.lastSeen);

    const offA = record(bob, 'presence:user:offline');
    const offB = record(bobOnB, 'presence:user:offline');
    tab1.close();
    await sleep(1_000);
    assert.deepEqual([offA.length, offB.length], [0, 0], 'one tab closed: still online');
    tab2.close();
    await waitFor(bob, 'presence:user:offline', 5_000);
    await sleep(1_500);
    assert.equal(offA.length, 1, JSON.stringify(offA));
    assert.equal(offB.length, 1, JSON.stringify(offB));
    assert.equal(offA[0].userId, 'alice');
    assert.ok(!(await list(bob)).some((u) => u.userId === 'alice'));
  });

  test('presence:offline retracts; the room hears it, the sender does not', async () => {
    const bob = await watcher(a, 'bob');
    const carol = await scope.user(b, 'carol');
    assertAckOk(await online(carol, {}));
    const users = await list(bob);
    assert.equal(users.find((u) => u.userId === 'carol')?.status, 'online');
    assert.deepEqual(users.find((u) => u.userId === 'carol')?.metadata, {});
    const off = waitFor(bob, 'presence:user:offline', 5_000);
    const self = record(carol, 'presence:user:offline');
    assertAckOk(await emitAck(carol, 'presence:offline'));
    assert.equal((await off).userId, 'carol');
    await sleep(200);
    assert.deepEqual(self, []);
    assert.ok(!(await list(bob)).some((u) => u.userId === 'carol'));
  });

  test('a killed node\'s users go offline once, from the survivors', async () => {
    const prefix = uniq('e2e_presence_kill');
    const x = await scope.server({ name: 'kill-x', redis: true, prefix, env: PRESENCE_ENV });
    const y = await scope.server({ name: 'kill-y', redis: true, prefix, env: PRESENCE_ENV });
    const z = await scope.server({ name: 'kill-z', redis: true, prefix, env: PRESENCE_ENV });
    const bobX = await watcher(x, 'bob');
    const bobY = await watcher(y, 'bob');
    const carol = await scope.user(z, 'carol');
    // Listen first: the broadcast through Redis can reach bob before carol's ack reaches her.
    const seenOnline = waitFor(bobX, 'presence:user:online', 8_000);
    assertAckOk(await online(carol, { projectId: 'demo' }));
    await seenOnline;
    const offX = record(bobX, 'presence:user:offline');
    const offY = record(bobY, 'presence:user:offline');
    z.kill();
    const started = Date.now();
    await waitFor(bobX, 'presence:user:offline', 8_000);
    const took = Date.now() - started;
    await sleep(2_500);
    assert.equal(offX.length, 1, JSON.stringify(offX));
    assert.equal(offY.length, 1, JSON.stringify(offY));
    assert.equal(offX[0].userId, 'carol');
    assert.ok(took < 6_000, `offline after ${took} ms`);
    assert.ok(!(await list(bobX)).some((u) => u.userId === 'carol'));
  });

  test('denials and bad payloads change nothing', async () => {
    const dave = await scope.user(a, 'dave');
    const bob = await watcher(a, 'bob');
    const seen = record(bob, 'presence:user:online');
    assertAckError(await online(dave, { projectId: 'demo' }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'presence:get:online', { projectId: 'demo' }), 'FORBIDDEN');
    const alice = await scope.user(a, 'alice');
    for (const body of [{ status: 5 }, { status: 'x'.repeat(65) }, { status: '' }, { metadata: [1] }, { projectId: 7 }]) {
      assertAckError(await online(alice, body), 'INVALID_PAYLOAD');
    }
    assertAckError(await emitAck(alice, 'presence:get:online', {}), 'INVALID_PAYLOAD');
    const key = await scope.connect(a, { apiKey: API_KEY });
    assertAckError(await online(key, { projectId: 'demo' }), 'FORBIDDEN');
    await sleep(300);
    assert.deepEqual(seen, []);
    assert.ok(alice.connected && dave.connected);
  });
});
