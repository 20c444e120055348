// Per-socket rate limit (contract: "Decisions that close gaps" → rate limit; "Operations" →
// RATE_LIMIT_PER_SEC / RATE_LIMIT_BURST).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, record, emitAck, assertAckOk, assertAckError, assertErrorEvent, within, sleep, waitCount,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'ratelimit', env: { RATE_LIMIT_PER_SEC: '5', RATE_LIMIT_BURST: '5' } });
});

test('30 emits at once with 5/s, burst 5: some RATE_LIMITED, at least 5 ok, every one answered, socket stays', async () => {
  const alice = await scope.user(server, 'alice');
  const errors = record(alice, 'error');
  const acks = await Promise.all(
    Array.from({ length: 30 }, () => emitAck(alice, 'subscribe:project', 'demo', within(5_000))),
  );
  const ok = acks.filter((a) => a?.ok === true);
  const limited = acks.filter((a) => a?.ok === false && a.error?.code === 'RATE_LIMITED');
  assert.ok(limited.length >= 1, `at least one RATE_LIMITED ack: ${JSON.stringify(acks)}`);
  assert.ok(ok.length >= 5, `at least 5 ok acks (the burst): ${JSON.stringify(acks)}`);
  assert.equal(ok.length + limited.length, 30, `every event answered ok or RATE_LIMITED: ${JSON.stringify(acks)}`);
  for (const a of ok) assert.deepEqual(a, { ok: true, data: { projectId: 'demo' } });
  for (const a of limited) assertAckError(a, 'RATE_LIMITED');

  // never dropped silently: each limited event also yields an `error` event to the sender
  await waitCount(errors, limited.length, 3_000);
  for (const e of errors) assertErrorEvent(e, 'subscribe:project', 'RATE_LIMITED');

  assert.equal(alice.connected, true, 'an ordinary burst never disconnects');
  await sleep(1_200); // the bucket refills
  assert.equal(alice.connected, true);
  assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
  alice.close();
});

test('the limit is per socket: another socket of the same user is not limited by the first', async () => {
  const a1 = await scope.user(server, 'bob');
  const a2 = await scope.user(server, 'bob');
  const burst = await Promise.all(Array.from({ length: 20 }, () => emitAck(a1, 'subscribe:project', 'demo', within(5_000))));
  assert.ok(burst.some((a) => a?.error?.code === 'RATE_LIMITED'), JSON.stringify(burst));
  assertAckOk(await emitAck(a2, 'subscribe:project', 'demo'), { projectId: 'demo' });
  a1.close();
  a2.close();
});

test('a burst of 2,000 rate-limited events leaves fewer than 50 WARN/ERROR lines in the log', async (t) => {
  const before = server.stderr.length;
  const s = await scope.user(server, 'carol');
  for (let i = 0; i < 2_000; i++) s.emit('subscribe:project', 'demo');
  // The events are answered in order; this ack comes after all of them (RATE_LIMITED too).
  await emitAck(s, 'subscribe:project', 'demo', within(20_000)).catch(() => {});
  await sleep(500);
  const lines = server.stderr.slice(before).split('\n').filter((l) => /\b(WARN|ERROR)\b/.test(l));
  t.diagnostic(`${lines.length} WARN/ERROR lines after 2,000 events`);
  assert.ok(lines.length < 50, `${lines.length} WARN/ERROR lines, e.g.:\n${lines.slice(0, 5).join('\n')}`);
  s.close();
});
