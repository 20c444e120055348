// Events from one socket are handled — and relayed — in the order they were sent
// (contract: "Decisions that close gaps").
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, NAMES, record, waitCount, emitAck, assertAckOk, within, sleep,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'ordering' });
});

const N = 200;
const range = (n) => Array.from({ length: n }, (_, i) => i);

for (const [label, transports] of [['websocket', ['websocket']], ['long-polling', ['polling']]]) {
  test(`${N} custom:events emitted back to back (sender on ${label}) arrive complete and in order`, async () => {
    const alice = await scope.user(server, 'alice', {}, { transports });
    const bob = await scope.user(server, 'bob', {}, { transports: label === 'websocket' ? ['polling'] : ['websocket'] });
    assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });
    await sleep(50);
    const got = record(bob, 'custom:event');

    const acks = range(N).map((seq) => emitAck(alice, 'custom:event', { projectId: 'demo', seq }, within(10_000)));
    const results = await Promise.all(acks);
    const failed = results.filter((a) => a?.ok !== true);
    assert.deepEqual(failed, [], `all ${N} acks ok`);

    await waitCount(got, N, 10_000);
    await sleep(200);
    assert.equal(got.length, N, 'no duplicates');
    assert.deepEqual(got.map((e) => e.seq), range(N));
    assert.ok(got.every((e) => e.projectId === 'demo' && e.from?.userId === 'alice' && e.from?.name === NAMES.alice));
    got.stop();
    alice.close();
    bob.close();
  });
}

test('acks come back in the order the events were sent', async () => {
  const alice = await scope.user(server, 'alice');
  const order = [];
  const acks = range(50).map((i) =>
    emitAck(alice, i % 2 ? 'custom:event' : 'subscribe:project', i % 2 ? { projectId: 'demo', i } : 'demo').then((a) => {
      assertAckOk(a);
      order.push(i);
    }),
  );
  await Promise.all(acks);
  assert.deepEqual(order, range(50));
  alice.close();
});
