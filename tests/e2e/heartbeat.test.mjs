// Engine.IO heartbeat with the official client (contract: "Connection"; docs/protocol.md):
// with a 200 ms ping interval the client answers every ping and stays connected on both
// transports, and events still flow after many heartbeats. (A client that stops answering is
// closed: tests/heartbeat.rs, which needs a client that can stay silent.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Scope, waitFor, emitAck, assertAckOk, sleep } from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'heartbeat', env: { PING_INTERVAL_MS: '200', PING_TIMEOUT_MS: '300' } });
});

test('clients that answer pings stay connected through many heartbeats', async () => {
  const ws = await scope.user(server, 'alice', {}, { transports: ['websocket'] });
  const polling = await scope.user(server, 'bob', {}, { transports: ['polling'] });
  const dropped = [];
  for (const s of [ws, polling]) s.on('disconnect', (reason) => dropped.push(reason));
  // (The open packet's pingInterval / pingTimeout are asserted in tests/heartbeat.rs; the
  // client keeps them in private fields.)

  await sleep(1_500); // about seven heartbeats

  assert.deepEqual(dropped, []);
  assert.ok(ws.connected && polling.connected);
  assertAckOk(await emitAck(ws, 'subscribe:project', 'demo'), { projectId: 'demo' });
  assertAckOk(await emitAck(polling, 'subscribe:project', 'demo'), { projectId: 'demo' });
  const got = waitFor(polling, 'custom:event', 5_000);
  assertAckOk(await emitAck(ws, 'custom:event', { projectId: 'demo', after: 'heartbeats' }));
  assert.equal((await got).after, 'heartbeats');
});
