// Rooms: user:<id> for every socket of a user, project:<id> via subscribe:project, custom:event
// relayed to the project room excluding the sender (contract: "Room names", "Project and data").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, NAMES, http, waitFor, expectNone, record, emitAck, assertAckOk, sleep,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'rooms' });
});

const emitRest = (body, apiKey = API_KEY) => http(server, '/api/projects/demo/emit', { method: 'POST', apiKey, body });

describe('user room', () => {
  test('REST emit to user:alice reaches both of alice\'s sockets and nobody else', async () => {
    const alice1 = await scope.user(server, 'alice');
    const alice2 = await scope.user(server, 'alice', {}, { transports: ['polling'] });
    const bob = await scope.user(server, 'bob');
    const bobAll = record(bob);

    const got1 = waitFor(alice1, 'ping:test');
    const got2 = waitFor(alice2, 'ping:test');
    const res = await emitRest({ room: 'user:alice', event: 'ping:test', payload: { n: 1 } });
    assert.equal(res.status, 202, `emit answered ${res.status}: ${res.text}`);
    assert.deepEqual(await got1, { n: 1 });
    assert.deepEqual(await got2, { n: 1 });
    await expectNone(bob, 'ping:test', 300);
    assert.deepEqual(bobAll, [], `bob received ${JSON.stringify(bobAll)}`);
  });

  test('each REST emit reaches each of alice\'s sockets exactly once', async () => {
    const alice = await scope.user(server, 'alice');
    // alice also joins project:demo: a socket in two targeted rooms must still get one copy
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
    const got = record(alice, 'ping:once');
    for (let n = 0; n < 3; n++) {
      const res = await emitRest({ room: 'user:alice', event: 'ping:once', payload: { n } });
      assert.equal(res.status, 202, res.text);
    }
    const res = await emitRest({ event: 'ping:once', payload: { n: 'project' } }); // no room → project:demo
    assert.equal(res.status, 202, res.text);
    await sleep(400);
    assert.deepEqual(got, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 'project' }]);
  });
});

describe('subscribe:project', () => {
  test('ack is exactly { ok: true, data: { projectId } } for the string form', async () => {
    const s = await scope.user(server, 'alice');
    const ack = await emitAck(s, 'subscribe:project', 'demo');
    assert.deepEqual(ack, { ok: true, data: { projectId: 'demo' } });
  });

  test('ack is exactly { ok: true, data: { projectId } } for the object form', async () => {
    const s = await scope.user(server, 'alice');
    const ack = await emitAck(s, 'subscribe:project', { projectId: 'demo' });
    assert.deepEqual(ack, { ok: true, data: { projectId: 'demo' } });
  });

  test('subscribing emits nothing (ack only) and subscribing twice is harmless', async () => {
    const s = await scope.user(server, 'alice');
    const all = record(s);
    assertAckOk(await emitAck(s, 'subscribe:project', 'demo'), { projectId: 'demo' });
    assertAckOk(await emitAck(s, 'subscribe:project', { projectId: 'demo' }), { projectId: 'demo' });
    await sleep(200);
    assert.deepEqual(all, []);
  });
});

describe('custom:event', () => {
  let alice, bob, carol;
  before(async () => {
    alice = await scope.user(server, 'alice');
    bob = await scope.user(server, 'bob');
    carol = await scope.user(server, 'carol');
    assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });
  });

  test('reaches a subscriber with from = { userId, name }, not the sender nor a non-subscriber', async () => {
    const aliceAll = record(alice);
    const carolAll = record(carol);
    const got = waitFor(bob, 'custom:event');
    const ack = await emitAck(alice, 'custom:event', { projectId: 'demo', hello: 'world' });
    assert.deepEqual(ack, { ok: true, data: {} });
    assert.deepEqual(await got, {
      hello: 'world',
      projectId: 'demo',
      from: { userId: 'alice', name: NAMES.alice },
    });
    await sleep(300);
    assert.deepEqual(aliceAll, [], `the sender received ${JSON.stringify(aliceAll)}`);
    assert.deepEqual(carolAll, [], `carol (not subscribed) received ${JSON.stringify(carolAll)}`);
    aliceAll.stop();
    carolAll.stop();
  });

  test('the sender is excluded even when subscribed to the project', async () => {
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
    const aliceGot = record(alice, 'custom:event');
    const got = waitFor(bob, 'custom:event');
    assert.deepEqual(await emitAck(alice, 'custom:event', { projectId: 'demo', n: 2 }), { ok: true, data: {} });
    assert.deepEqual(await got, { projectId: 'demo', n: 2, from: { userId: 'alice', name: NAMES.alice } });
    await sleep(300);
    assert.deepEqual(aliceGot, []);
    aliceGot.stop();
    assertAckOk(await emitAck(alice, 'unsubscribe:project', 'demo'));
  });

  test('another socket of the sender that is subscribed does receive it (only the sending socket is excluded)', async () => {
    // Contract: "room:" = broadcast to the room EXCLUDING the sender (the sending socket).
    const alice2 = await scope.user(server, 'alice');
    assertAckOk(await emitAck(alice2, 'subscribe:project', 'demo'));
    const got2 = waitFor(alice2, 'custom:event');
    const gotBob = waitFor(bob, 'custom:event');
    assert.deepEqual(await emitAck(alice, 'custom:event', { projectId: 'demo', tab: 1 }), { ok: true, data: {} });
    assert.deepEqual(await got2, { projectId: 'demo', tab: 1, from: { userId: 'alice', name: NAMES.alice } });
    await gotBob;
    alice2.close();
  });

  test('a payload "from" field cannot spoof the sender', async () => {
    const got = waitFor(bob, 'custom:event');
    assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', from: { userId: 'bob', name: 'Evil' } }));
    const ev = await got;
    assert.deepEqual(ev.from, { userId: 'alice', name: NAMES.alice });
  });

  test('after unsubscribe:project (ack ok) the subscriber no longer receives custom events', async () => {
    const ack = await emitAck(bob, 'unsubscribe:project', 'demo');
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    const bobGot = record(bob, 'custom:event');
    assert.deepEqual(await emitAck(alice, 'custom:event', { projectId: 'demo', after: 'unsubscribe' }), { ok: true, data: {} });
    // barrier: a direct REST emit to bob, then a quiet window
    const barrier = waitFor(bob, 'barrier');
    assert.equal((await emitRest({ room: 'user:bob', event: 'barrier', payload: {} })).status, 202);
    await barrier;
    await sleep(300);
    assert.deepEqual(bobGot, [], `bob still received ${JSON.stringify(bobGot)}`);
    bobGot.stop();
  });

  test('unsubscribe:project accepts the object form too, and re-subscribing restores delivery', async () => {
    assertAckOk(await emitAck(bob, 'subscribe:project', { projectId: 'demo' }), { projectId: 'demo' });
    const got = waitFor(bob, 'custom:event');
    assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', again: true }));
    assert.equal((await got).again, true);
    assertAckOk(await emitAck(bob, 'unsubscribe:project', { projectId: 'demo' }));
    const none = expectNone(bob, 'custom:event', 400);
    assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', gone: true }));
    await none;
  });

  test('custom:event without ack still relays (ack is optional)', async () => {
    assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'));
    const got = waitFor(bob, 'custom:event');
    const err = expectNone(alice, 'error', 400);
    alice.emit('custom:event', { projectId: 'demo', noAck: true });
    assert.equal((await got).noAck, true);
    await err;
  });
});
