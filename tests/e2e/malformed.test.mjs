// Malformed payloads, oversize events and unknown events (contract: "Acks and errors",
// "Decisions that close gaps" → size limits, unknown events).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, NAMES, waitFor, waitCount, expectNone, record, emitAck, assertAckOk, assertAckError,
  assertErrorEvent, sleep,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server, alice, bob, bobCustom;

before(async () => {
  server = await scope.server({ name: 'malformed' });
  alice = await scope.user(server, 'alice');
  bob = await scope.user(server, 'bob');
  assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'), { projectId: 'demo' });
  // bob, a subscribed observer, records every custom:event for the whole file
  bobCustom = record(bob, 'custom:event');
});

const long = 'x'.repeat(129);
const NO_ARG = Symbol('no argument');

// payloads that are bad for every one of the three events
const common = [
  ['no argument at all', NO_ARG],
  ['number 42', 42],
  ['number 0', 0],
  ['negative float', -3.5],
  ['null', null],
  ['true', true],
  ['false', false],
  ['empty array', []],
  ['array holding the id', ['demo']],
  ['array holding an object', [{ projectId: 'demo' }]],
  ['{} (missing projectId)', {}],
  ['object without projectId', { project: 'demo', hello: 'world' }],
  ['projectId of 129 chars', { projectId: long }],
  ['projectId as a number', { projectId: 42 }],
  ['projectId null', { projectId: null }],
  ['projectId boolean', { projectId: true }],
  ['projectId as an array', { projectId: ['demo'] }],
  ['projectId as an object', { projectId: { id: 'demo' } }],
  ['nested junk', { projectId: { nested: { junk: [1, null, { a: [[[]]] }] } }, more: [{}] }],
  ['deeply nested junk', JSON.parse('['.repeat(40) + ']'.repeat(40))],
];

const table = {
  'subscribe:project': [...common, ['a string of 129 chars', long]],
  'unsubscribe:project': [...common, ['a string of 129 chars', long]],
  // custom:event takes { projectId, ...anything }: a bare string is ill-typed
  'custom:event': [...common, ['a bare string', 'demo'], ['a string of 129 chars', long]],
};

for (const [event, cases] of Object.entries(table)) {
  describe(`${event}: bad payloads → INVALID_PAYLOAD`, () => {
    for (const [name, payload] of cases) {
      test(name, async () => {
        const errEv = waitFor(alice, 'error');
        const ack = payload === NO_ARG ? await emitAck(alice, event) : await emitAck(alice, event, payload);
        assertAckError(ack, 'INVALID_PAYLOAD');
        assertErrorEvent(await errEv, event, 'INVALID_PAYLOAD');
        assert.equal(alice.connected, true, 'the socket must stay connected');
      });
    }
    test('the socket still works afterwards: a valid subscribe:project "demo" acks ok', async () => {
      assert.equal(alice.connected, true);
      assert.deepEqual(await emitAck(alice, 'subscribe:project', 'demo'), { ok: true, data: { projectId: 'demo' } });
      assertAckOk(await emitAck(alice, 'unsubscribe:project', 'demo'));
    });
  });
}

describe('after the bad payloads', () => {
  test('the subscribed observer received no custom:event from any of them', async () => {
    // a good event as a barrier: it must be the first and only one bob has
    const ack = await emitAck(alice, 'custom:event', { projectId: 'demo', marker: 'good' });
    assert.deepEqual(ack, { ok: true, data: {} });
    await waitCount(bobCustom, 1, 2_000);
    await sleep(200);
    assert.deepEqual(bobCustom, [{ projectId: 'demo', marker: 'good', from: { userId: 'alice', name: NAMES.alice } }]);
    bobCustom.length = 0;
  });
});

describe('oversize events', () => {
  test('custom:event with a 300 KB string → PAYLOAD_TOO_LARGE, socket stays connected, nothing relayed', async () => {
    const errEv = waitFor(alice, 'error', 5_000);
    const ack = await emitAck(alice, 'custom:event', { projectId: 'demo', blob: 'y'.repeat(300 * 1024) });
    assertAckError(ack, 'PAYLOAD_TOO_LARGE');
    assertErrorEvent(await errEv, 'custom:event', 'PAYLOAD_TOO_LARGE');
    await sleep(300);
    assert.equal(alice.connected, true);
    assert.deepEqual(bobCustom, []);
    assert.deepEqual(await emitAck(alice, 'subscribe:project', 'demo'), { ok: true, data: { projectId: 'demo' } });
    assertAckOk(await emitAck(alice, 'unsubscribe:project', 'demo'));
  });

  test('the same over long-polling → PAYLOAD_TOO_LARGE and the socket stays connected', async () => {
    const carol = await scope.user(server, 'carol', {}, { transports: ['polling'] });
    const ack = await emitAck(carol, 'custom:event', { projectId: 'demo', blob: 'z'.repeat(300 * 1024) });
    assertAckError(ack, 'PAYLOAD_TOO_LARGE');
    assert.equal(carol.connected, true);
    assert.deepEqual(await emitAck(carol, 'subscribe:project', 'demo'), { ok: true, data: { projectId: 'demo' } });
    await sleep(200);
    assert.deepEqual(bobCustom, []);
    carol.close();
  });

  test('an event just under 256 KiB is accepted and relayed', async () => {
    const blob = 'w'.repeat(200 * 1024);
    const got = waitFor(bob, 'custom:event', 5_000);
    assert.deepEqual(await emitAck(alice, 'custom:event', { projectId: 'demo', blob }), { ok: true, data: {} });
    assert.equal((await got).blob.length, blob.length);
    bobCustom.length = 0;
  });
});

describe('unknown events', () => {
  test('with an ack callback → ack INVALID_PAYLOAD and NO error event', async () => {
    const noErr = expectNone(alice, 'error', 400);
    const ack = await emitAck(alice, 'no:such:event', { projectId: 'demo' });
    assertAckError(ack, 'INVALID_PAYLOAD');
    await noErr;
  });

  test('without an ack → nothing at all', async () => {
    const all = record(alice);
    const noErr = expectNone(alice, 'error', 400);
    alice.emit('no:such:event', { projectId: 'demo' });
    alice.emit('another:unknown');
    await noErr;
    assert.deepEqual(all, []);
    all.stop();
    assert.equal(alice.connected, true);
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'));
    assertAckOk(await emitAck(alice, 'unsubscribe:project', 'demo'));
  });
});

describe('bad payloads without an ack callback', () => {
  for (const [event, payload] of [
    ['subscribe:project', 42],
    ['unsubscribe:project', { projectId: 42 }],
    ['custom:event', {}],
  ]) {
    test(`${event} ${JSON.stringify(payload)} still yields the error event`, async () => {
      const errEv = waitFor(alice, 'error');
      alice.emit(event, payload);
      assertErrorEvent(await errEv, event, 'INVALID_PAYLOAD');
      assert.equal(alice.connected, true);
    });
  }

  test('oversize custom:event without ack still yields the error event PAYLOAD_TOO_LARGE', async () => {
    const errEv = waitFor(alice, 'error', 5_000);
    alice.emit('custom:event', { projectId: 'demo', blob: 'q'.repeat(300 * 1024) });
    assertErrorEvent(await errEv, 'custom:event', 'PAYLOAD_TOO_LARGE');
    assert.equal(alice.connected, true);
  });

  test('the observer received nothing from them either', async () => {
    await sleep(200);
    assert.deepEqual(bobCustom, [], 'bob received custom events from bad payloads');
  });
});

describe('bad payloads change no state', () => {
  test('bad unsubscribe:project payloads from a subscriber leave it subscribed', async () => {
    for (const p of [42, null, {}, { projectId: 42 }, ['demo'], { projectId: ['demo'] }]) {
      assertAckError(await emitAck(bob, 'unsubscribe:project', p), 'INVALID_PAYLOAD');
    }
    const ack = await emitAck(alice, 'custom:event', { projectId: 'demo', still: 'subscribed' });
    assert.deepEqual(ack, { ok: true, data: {} });
    await waitCount(bobCustom, 1, 2_000);
    assert.equal(bobCustom[0].still, 'subscribed');
  });
});
