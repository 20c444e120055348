// Two nodes sharing Redis (adapter) and MongoDB: rooms work across nodes, long-polling works
// (contract: "Connection", "Room names": "Rooms work across every node that shares the Redis
// adapter"; "Operations" → SIGTERM).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, NAMES, uniq, requireServices, http, waitFor, record, emitAck, assertAckOk,
  waitReady, sleep,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let nodeA, nodeB;

before(async () => {
  requireServices('cluster.test.mjs');
  const shared = { mongo: true, redis: true, db: uniq('e2e_cluster'), prefix: uniq('e2e_cluster') };
  nodeA = await scope.server({ ...shared, name: 'node-A' });
  await waitReady(nodeA); // the demo seed is loaded before node B starts on the same DB
  nodeB = await scope.server({ ...shared, name: 'node-B' });
  await waitReady(nodeB);
});

describe('cross-node delivery', () => {
  let alice, bob, dave;

  before(async () => {
    alice = await scope.user(nodeA, 'alice', {}, { transports: ['websocket'] });
    bob = await scope.user(nodeB, 'bob', {}, { transports: ['polling'] });
    dave = await scope.user(nodeB, 'dave', {}, { transports: ['websocket'] });
    assert.equal(bob.io.engine.transport.name, 'polling', 'bob must stay on long-polling');
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
    assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });
    assertAckOk(await emitAck(dave, 'subscribe:project', 'acme'), { projectId: 'acme' });
  });

  test('custom:event from alice on node A reaches bob (polling) on node B, not alice, not dave', async () => {
    const aliceGot = record(alice, 'custom:event');
    const daveAll = record(dave);
    const got = waitFor(bob, 'custom:event', 5_000);
    const ack = await emitAck(alice, 'custom:event', { projectId: 'demo', hello: 'cluster' });
    assert.deepEqual(ack, { ok: true, data: {} });
    assert.deepEqual(await got, { hello: 'cluster', projectId: 'demo', from: { userId: 'alice', name: NAMES.alice } });
    await sleep(500);
    assert.deepEqual(aliceGot, [], 'the sender does not receive its own event');
    assert.deepEqual(daveAll, [], `dave (acme) received ${JSON.stringify(daveAll)}`);
    assert.equal(bob.io.engine.transport.name, 'polling');
    aliceGot.stop();
    daveAll.stop();
  });

  test('bob received it exactly once (no duplicate from the adapter)', async () => {
    const bobGot = record(bob, 'custom:event');
    assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', once: 1 }));
    await sleep(600);
    assert.deepEqual(bobGot.map((e) => e.once), [1]);
    bobGot.stop();
  });

  test('a REST emit made on node B to user:alice reaches alice on node A', async () => {
    const got = waitFor(alice, 'ping:cluster', 5_000);
    const bobAll = record(bob);
    const res = await http(nodeB, '/api/projects/demo/emit', {
      method: 'POST',
      apiKey: API_KEY,
      body: { room: 'user:alice', event: 'ping:cluster', payload: { via: 'node-B' } },
    });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(await got, { via: 'node-B' });
    await sleep(300);
    assert.deepEqual(bobAll, []);
    bobAll.stop();
  });

  test('messages in the other direction: bob (polling, node B) → alice (node A)', async () => {
    const got = waitFor(alice, 'custom:event', 5_000);
    assertAckOk(await emitAck(bob, 'custom:event', { projectId: 'demo', back: true }));
    assert.deepEqual(await got, { projectId: 'demo', back: true, from: { userId: 'bob', name: NAMES.bob } });
  });

  test('dave on node B subscribed to acme received nothing from demo traffic', async () => {
    const daveAll = record(dave);
    assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', notFor: 'dave' }));
    await http(nodeA, '/api/projects/demo/emit', { method: 'POST', apiKey: API_KEY, body: { event: 'demo:only', payload: {} } });
    await sleep(500);
    assert.deepEqual(daveAll, []);
    // control: acme traffic from node A reaches dave on node B
    const got = waitFor(dave, 'acme:ping', 5_000);
    const res = await http(nodeA, '/api/projects/acme/emit', { method: 'POST', apiKey: API_KEY, body: { event: 'acme:ping', payload: { x: 1 } } });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(await got, { x: 1 });
    daveAll.stop();
  });

  test('both nodes see the shared MongoDB data', async () => {
    for (const node of [nodeA, nodeB]) {
      const res = await http(node, '/api/projects', { apiKey: API_KEY });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json.projects.map((p) => p.id).sort(), ['acme', 'demo']);
    }
  });
});

test('SIGTERM with clients connected: node B exits 0, its clients are told to reconnect, node A keeps serving', async () => {
  // bob (polling) and dave (websocket) are still connected to node B
  const reasons = [];
  const gone = [];
  for (const s of scope.sockets.filter((s) => s.io.uri.startsWith(nodeB.url) && s.connected)) {
    gone.push(
      new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error('client was not disconnected within 10 s of SIGTERM')), 10_000);
        s.once('disconnect', (reason) => {
          clearTimeout(t);
          reasons.push({ transport: s.io.opts.transports.join(','), reason, active: s.active });
          res();
        });
      }),
    );
  }
  assert.ok(gone.length >= 2, 'bob and dave are connected to node B');
  await nodeB.stop();
  await Promise.all(gone);
  for (const r of reasons) {
    // "io server disconnect" is the one reason socket.io-client does NOT reconnect after
    assert.notEqual(r.reason, 'io server disconnect', `clients must be told to reconnect: ${JSON.stringify(reasons)}`);
    assert.equal(r.active, true, `the client would reconnect: ${JSON.stringify(reasons)}`);
  }
  // they land on another node
  const bob = await scope.user(nodeA, 'bob', {}, { transports: ['polling'] });
  assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });
});

test('node A stops on SIGTERM with exit code 0', async () => {
  scope.closeSockets();
  await nodeA.stop();
});
