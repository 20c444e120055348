// The two limits that end a connection, end to end: a socket that keeps offering more than
// twice the sustained rate for 10 s is disconnected while a busy but fair socket is not; and a
// transport frame over MAX_FRAME_BYTES closes the transport, while an event over
// MAX_EVENT_BYTES (but under the frame limit) gets PAYLOAD_TOO_LARGE and keeps the socket
// (contract: "Decisions that close gaps" → size limits, rate-limit disconnect; issue 8).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Scope, emitAck, assertAckOk, assertAckError, sleep, within } from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({
    name: 'limits',
    env: { RATE_LIMIT_PER_SEC: '10', RATE_LIMIT_BURST: '20', MAX_EVENT_BYTES: '16384', MAX_FRAME_BYTES: '65536' },
  });
});

test('sustained abuse (5x the rate) is disconnected after about 10 s; a fair socket is not', async () => {
  const abuser = await scope.user(server, 'alice');
  const fair = await scope.user(server, 'bob');
  let closedAt = null;
  const started = Date.now();
  abuser.on('disconnect', () => {
    closedAt = Date.now();
  });
  // 50 events/s against 10/s sustained; the fair socket sends 8/s, under the rate.
  const deadline = started + 16_000;
  let tick = 0;
  while (Date.now() < deadline && closedAt === null) {
    for (let i = 0; i < 5; i++) abuser.emit('subscribe:project', 'demo');
    if (tick % 12 === 0) fair.emit('subscribe:project', 'demo');
    tick++;
    await sleep(100);
  }
  assert.ok(closedAt !== null, 'the abusing socket was disconnected');
  const after = (closedAt - started) / 1000;
  assert.ok(after >= 9 && after <= 14, `disconnected after ${after.toFixed(1)} s`);
  assert.equal(fair.connected, true, 'the fair socket stays');
  assertAckOk(await emitAck(fair, 'subscribe:project', 'demo'));
});

test('an event over MAX_EVENT_BYTES is refused and the socket kept; a frame over MAX_FRAME_BYTES closes the transport', async () => {
  const s = await scope.user(server, 'carol');
  const ack = await emitAck(s, 'custom:event', { projectId: 'demo', blob: 'x'.repeat(32 * 1024) }, within(5_000));
  assertAckError(ack, 'PAYLOAD_TOO_LARGE');
  assert.equal(s.connected, true);
  assertAckOk(await emitAck(s, 'subscribe:project', 'demo'));

  const reason = new Promise((res) => s.once('disconnect', res));
  s.emit('custom:event', { projectId: 'demo', blob: 'x'.repeat(128 * 1024) });
  const why = await Promise.race([reason, sleep(5_000).then(() => 'still connected')]);
  assert.match(String(why), /transport (close|error)/, `the transport closed: ${why}`);
  // The server is fine: a new connection works.
  const again = await scope.user(server, 'carol');
  assertAckOk(await emitAck(again, 'subscribe:project', 'demo'));
});
