// The two limits that end a connection, end to end: a socket that keeps offering more than
// twice the sustained rate for 10 s is disconnected while a busy but fair socket is not; and a
// transport frame over MAX_FRAME_BYTES closes the transport, while an event over
// MAX_EVENT_BYTES (but under the frame limit) gets PAYLOAD_TOO_LARGE and keeps the socket
// (contract: "Decisions that close gaps" → size limits, rate-limit disconnect; issue 8).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Scope, emitAck, assertAckOk, assertAckError, sleep, within, record } from './lib/harness.mjs';

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

test('binary attachments count toward MAX_EVENT_BYTES: 48 KiB of binary under a 16 KiB limit is refused and not relayed', async () => {
  const sender = await scope.user(server, 'alice');
  const watcher = await scope.user(server, 'bob');
  assertAckOk(await emitAck(watcher, 'subscribe:project', 'demo'));
  const seen = record(watcher, 'custom:event');
  // Under the frame limit (64 KiB), over the event limit (16 KiB).
  const big = await emitAck(sender, 'custom:event', { projectId: 'demo', blob: Buffer.alloc(48 * 1024, 7) }, within(5_000));
  assertAckError(big, 'PAYLOAD_TOO_LARGE');
  assert.match(big.error.message, /49\d{3} bytes/, big.error.message);
  assert.equal(sender.connected, true);
  // A small attachment still passes.
  assertAckOk(await emitAck(sender, 'custom:event', { projectId: 'demo', blob: Buffer.alloc(1024, 7) }, within(5_000)));
  await sleep(300);
  assert.equal(seen.length, 1, `only the small event was relayed: ${seen.length}`);
});

test('refused packets count against the rate: 40 oversized events use up the burst of 20', async () => {
  const s = await scope.user(server, 'dave');
  const acks = Array.from({ length: 40 }, () =>
    emitAck(s, 'custom:event', { projectId: 'demo', blob: 'x'.repeat(20 * 1024) }, within(10_000)),
  );
  const next = emitAck(s, 'subscribe:project', 'demo', within(10_000));
  const all = await Promise.all(acks);
  const codes = all.map((a) => a?.error?.code);
  assert.ok(codes.every((c) => c === 'PAYLOAD_TOO_LARGE' || c === 'RATE_LIMITED'), JSON.stringify(codes));
  assert.ok(codes.filter((c) => c === 'RATE_LIMITED').length >= 15, `most beyond the burst are RATE_LIMITED: ${JSON.stringify(codes)}`);
  assertAckError(await next, 'RATE_LIMITED');
});

test('relayed bytes are rate limited: 60 events of 250 KiB reach a room member as at most the 4 MiB burst plus 1 MiB/s', async (t) => {
  const relay = await scope.server({ name: 'relay-bytes' });
  const sender = await scope.user(relay, 'alice');
  const member = await scope.user(relay, 'bob');
  assertAckOk(await emitAck(member, 'subscribe:project', 'demo'));
  let received = 0;
  let count = 0;
  member.on('custom:event', (e) => {
    count++;
    received += e.blob.length;
  });
  const started = Date.now();
  const blob = 'y'.repeat(250 * 1024 - 64);
  const acks = await Promise.all(
    Array.from({ length: 60 }, () => emitAck(sender, 'custom:event', { projectId: 'demo', blob }, within(30_000))),
  );
  const elapsed = (Date.now() - started) / 1000;
  await sleep(500);
  const ok = acks.filter((a) => a?.ok === true).length;
  const limited = acks.filter((a) => a?.error?.code === 'RATE_LIMITED').length;
  assert.equal(ok + limited, 60, JSON.stringify(acks.map((a) => a?.error?.code ?? 'ok')));
  const budget = 4 * 1024 * 1024 + 1024 * 1024 * (elapsed + 0.5);
  assert.ok(received <= budget, `member received ${received} bytes in ${elapsed.toFixed(2)} s (budget ${budget})`);
  assert.ok(limited >= 20, `most of the burst is refused: ${limited} RATE_LIMITED, ${ok} ok`);
  assert.equal(count, ok, 'every accepted event was relayed');
  t.diagnostic(`relay: ${ok} ok, ${limited} RATE_LIMITED, member received ${received} bytes in ${elapsed.toFixed(2)} s`);
  assert.equal(sender.connected, true);
});
