// The browser default: a socket opens on HTTP long-polling and upgrades to WebSocket
// (contract: "Connection"). The upgrade path is its own branch in the engine (and one the
// vendored engineioxide patch touches, vendor/README.md), so it gets its own test: events work
// before, across and after the upgrade, in both directions.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Scope, API_KEY, http, waitFor, emitAck, assertAckOk } from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'upgrade' });
});

test('a polling socket upgrades to websocket and keeps its rooms and events', async () => {
  const alice = await scope.user(server, 'alice', {}, { transports: ['polling', 'websocket'], upgrade: true });
  const bob = await scope.user(server, 'bob');
  assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
  assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });

  if (alice.io.engine.transport.name !== 'websocket') {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5_000);
      alice.io.engine.once('upgrade', () => { clearTimeout(t); resolve(); });
    });
  }
  assert.equal(alice.io.engine.transport.name, 'websocket');

  // Both directions after the upgrade: alice → bob, REST → alice (user room).
  const atBob = waitFor(bob, 'custom:event', 5_000);
  assertAckOk(await emitAck(alice, 'custom:event', { projectId: 'demo', after: 'upgrade' }));
  assert.equal((await atBob).after, 'upgrade');

  const atAlice = waitFor(alice, 'ping:upgrade', 5_000);
  const res = await http(server, '/api/projects/demo/emit', {
    method: 'POST', apiKey: API_KEY, body: { room: 'user:alice', event: 'ping:upgrade', payload: { n: 1 } },
  });
  assert.equal(res.status, 202, `emit answered ${res.status}: ${res.text}`);
  assert.deepEqual(await atAlice, { n: 1 });
});
