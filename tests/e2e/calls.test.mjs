// Calls (WebRTC signalling) over real sockets against a server on MongoDB, with a 2 s ring
// timeout so missed calls are quick: initiate → incoming on every tab, accept, reject, end
// (everyone involved but the ending socket), missed exactly once, CONFLICT for transitions that
// are no longer possible, and call:signal between the call's parties only
// (contract: "Calls (WebRTC signalling)", "Decisions that close gaps"; docs/protocol.md: "Calls").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, nextEvent, uniq, requireMongo, record, waitCount, emitAck, assertAckOk, assertAckError,
  assertErrorEvent, waitReady, sleep, OBJECT_ID, createChat,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
const RING_SECS = 2;
let server;
// alice: a1 (websocket), a2 (polling); bob: b1 (websocket), b2 (polling); carol: c
let a1, a2, b1, b2, c;

before(async () => {
  requireMongo('calls.test.mjs');
  server = await scope.server({ name: 'calls', mongo: true, env: { CALL_RING_TIMEOUT_SECS: String(RING_SECS) } });
  await waitReady(server);
  a1 = await scope.user(server, 'alice');
  a2 = await scope.user(server, 'alice', {}, { transports: ['polling'] });
  b1 = await scope.user(server, 'bob');
  b2 = await scope.user(server, 'bob', {}, { transports: ['polling'] });
  c = await scope.user(server, 'carol');
});

const NO_ARG = Symbol('no argument');
const QUIET = 350;

async function denied(socket, event, payload, code) {
  const err = nextEvent(socket, 'error', 3_000);
  const ack = payload === NO_ARG ? await emitAck(socket, event) : await emitAck(socket, event, payload);
  assertAckError(ack, code);
  assertErrorEvent(await err, event, code);
  assert.equal(socket.connected, true, 'the socket stays connected');
}

/** Records every call:* event on the given sockets; `of(callId)` filters one call's. */
function watch(sockets) {
  const recs = sockets.map((s) => record(s));
  return {
    recs,
    /** [[event, payload], ...] of socket i for one call (or every call:* event without an id). */
    of(i, callId) {
      return recs[i]
        .filter((e) => e.event.startsWith('call:') && (callId === undefined || e.args[0]?.callId === callId))
        .map((e) => [e.event, e.args[0]]);
    },
    /** call:incoming events of socket i (any call). */
    incoming(i) {
      return recs[i].filter((e) => e.event === 'call:incoming').map((e) => e.args[0]);
    },
    stop() {
      for (const r of recs) r.stop();
    },
  };
}

/** The next `event` whose payload has this callId (other calls' events are skipped). */
function waitForCall(socket, event, callId, ms = 3_000) {
  return new Promise((res, rej) => {
    const on = (p) => {
      if (p?.callId !== callId) return;
      clearTimeout(timer);
      socket.off(event, on);
      res(p);
    };
    const timer = setTimeout(() => {
      socket.off(event, on);
      rej(new Error(`timed out after ${ms} ms waiting for "${event}" of call ${callId}`));
    }, ms);
    socket.on(event, on);
  });
}

/** alice (a1) calls bob in `chatId`; waits for call:incoming on both of bob's tabs. */
async function ring(chatId = 'general', participants = ['bob'], type = 'audio', caller = a1) {
  const inc1 = nextEvent(b1, 'call:incoming', 3_000);
  const inc2 = nextEvent(b2, 'call:incoming', 3_000);
  const ack = await emitAck(caller, 'call:initiate', { chatId, type, participants });
  assertAckOk(ack);
  const callId = ack.data.callId;
  const [i1, i2] = await Promise.all([inc1, inc2]);
  assert.equal(i1.callId, callId);
  assert.equal(i2.callId, callId);
  return { callId, incoming: i1, startedAt: Date.now() };
}

/** Ends a call (cleanup for tests that leave one ringing or accepted) and lets its call:ended land. */
async function hangUp(socket, chatId, callId) {
  assertAckOk(await emitAck(socket, 'call:end', { chatId, participants: [], callId }));
  await sleep(QUIET);
}

// ---------------------------------------------------------------------------------------------

describe('call:initiate', () => {
  test('ack { callId }; call:incoming { callId, chatId, type, callerId, participants } on every tab of the callee, nobody else', async () => {
    const w = watch([a1, a2, b1, b2, c]);
    const inc1 = nextEvent(b1, 'call:incoming', 3_000);
    const inc2 = nextEvent(b2, 'call:incoming', 3_000);
    const ack = await emitAck(a1, 'call:initiate', { chatId: 'general', type: 'video', participants: ['bob'] });
    assert.deepEqual(Object.keys(ack ?? {}).sort(), ['data', 'ok'], JSON.stringify(ack));
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.deepEqual(Object.keys(ack.data), ['callId']);
    const { callId } = ack.data;
    assert.match(callId, OBJECT_ID);
    const expected = { callId, chatId: 'general', type: 'video', callerId: 'alice', participants: ['bob'] };
    assert.deepEqual(await inc1, expected);
    assert.deepEqual(await inc2, expected);
    await sleep(QUIET);
    assert.deepEqual(w.of(0), [], 'the calling tab gets no call event');
    assert.deepEqual(w.of(1), [], "the caller's other tab gets no call:incoming");
    assert.deepEqual(w.of(2), [['call:incoming', expected]]);
    assert.deepEqual(w.of(3), [['call:incoming', expected]]);
    assert.deepEqual(w.of(4), [], 'carol is not called');
    w.stop();
    assertAckOk(await emitAck(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId }));
  });

  test('the caller named among the participants is dropped; audio works too', async () => {
    const { callId, incoming } = await ring('general', ['alice', 'bob', 'bob'], 'audio');
    assert.deepEqual(incoming, { callId, chatId: 'general', type: 'audio', callerId: 'alice', participants: ['bob'] });
    await hangUp(a1, 'general', callId);
  });

  test('participants must be chat participants: FORBIDDEN, and nobody is called', async () => {
    const w = watch([a1, a2, b1, b2, c]);
    await denied(a1, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['carol'] }, 'FORBIDDEN');
    await denied(a1, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['bob', 'carol'] }, 'FORBIDDEN');
    await denied(a1, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['dave'] }, 'FORBIDDEN');
    await denied(a1, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['nobody'] }, 'FORBIDDEN');
    // the caller must be a participant too
    await denied(c, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['alice'] }, 'FORBIDDEN');
    await denied(c, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['alice', 'bob'] }, 'FORBIDDEN');
    await sleep(QUIET);
    for (let i = 0; i < 5; i++) assert.deepEqual(w.incoming(i), [], `socket ${i} got ${JSON.stringify(w.incoming(i))}`);
    w.stop();
  });

  test('unknown chat → NOT_FOUND', async () => {
    await denied(a1, 'call:initiate', { chatId: 'no-such-chat', type: 'audio', participants: ['bob'] }, 'NOT_FOUND');
  });

  test('bad payloads → INVALID_PAYLOAD, nobody is called', async () => {
    const s = await scope.user(server, 'alice');
    const w = watch([b1, b2]);
    const base = { chatId: 'general', type: 'audio', participants: ['bob'] };
    const cases = [
      NO_ARG, null, 42, 'general', [base], {},
      { ...base, type: 'hologram' },
      { ...base, type: 'AUDIO' },
      { ...base, type: 1 },
      { chatId: 'general', participants: ['bob'] },
      { chatId: 'general', type: 'audio' },
      { type: 'audio', participants: ['bob'] },
      { ...base, participants: 'bob' },
      { ...base, participants: [] },
      { ...base, participants: ['alice'] },
      { ...base, participants: [5] },
      { ...base, participants: [''] },
      { ...base, participants: ['x'.repeat(129)] },
      { ...base, chatId: 5 },
      { ...base, chatId: '' },
    ];
    for (const p of cases) await denied(s, 'call:initiate', p, 'INVALID_PAYLOAD');
    await sleep(QUIET);
    assert.deepEqual(w.incoming(0), []);
    assert.deepEqual(w.incoming(1), []);
    w.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('accept, reject, end', () => {
  test('accept → call:accepted { callId, chatId, userId } to every tab of the caller; ack { callId, state: "accepted" }', async () => {
    const { callId } = await ring();
    const w = watch([a1, a2, b1, b2, c]);
    const acc1 = nextEvent(a1, 'call:accepted');
    const acc2 = nextEvent(a2, 'call:accepted');
    const ack = await emitAck(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId });
    assert.deepEqual(ack, { ok: true, data: { callId, state: 'accepted' } });
    const expected = { callId, chatId: 'general', userId: 'bob' };
    assert.deepEqual(await acc1, expected);
    assert.deepEqual(await acc2, expected);
    await sleep(QUIET);
    assert.deepEqual(w.of(0, callId), [['call:accepted', expected]]);
    assert.deepEqual(w.of(1, callId), [['call:accepted', expected]]);
    assert.deepEqual(w.of(2, callId), [], 'the accepting tab gets no call event');
    assert.deepEqual(w.of(4), [], 'carol gets nothing');
    w.stop();
    await hangUp(a1, 'general', callId);
  });

  test('end → call:ended { callId, chatId, endedBy, durationMs } to everyone involved except the ending socket (the ender\'s other tab gets it); ending twice → CONFLICT', async () => {
    const { callId } = await ring('general', ['bob'], 'video');
    assertAckOk(await emitAck(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId }));
    const acceptedAt = Date.now();
    await sleep(400);
    const w = watch([a1, a2, b1, b2, c]);
    const ended = [a1, a2, b2].map((s) => nextEvent(s, 'call:ended', 3_000));
    const ack = await emitAck(b1, 'call:end', { chatId: 'general', participants: ['alice'], callId });
    const elapsed = Date.now() - acceptedAt;
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data).sort(), ['callId', 'durationMs']);
    assert.equal(ack.data.callId, callId);
    const { durationMs } = ack.data;
    assert.ok(Number.isInteger(durationMs), `durationMs ${durationMs}`);
    assert.ok(durationMs >= 300 && durationMs <= elapsed + 200, `durationMs ${durationMs}, measured ~${elapsed}`);
    const expected = { callId, chatId: 'general', endedBy: 'bob', durationMs };
    for (const p of await Promise.all(ended)) assert.deepEqual(p, expected);
    await sleep(QUIET);
    assert.deepEqual(w.of(0, callId), [['call:ended', expected]]);
    assert.deepEqual(w.of(1, callId), [['call:ended', expected]]);
    assert.deepEqual(w.of(2, callId), [], 'the ending socket gets no call:ended');
    assert.deepEqual(w.of(3, callId), [['call:ended', expected]], "the ender's other tab gets it");
    assert.deepEqual(w.of(4), []);

    await denied(b1, 'call:end', { chatId: 'general', participants: ['alice'], callId }, 'CONFLICT');
    await denied(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId }, 'CONFLICT');
    await sleep(QUIET);
    assert.equal(w.of(0, callId).length, 1, 'no second call:ended');
    assert.equal(w.of(3, callId).length, 1, 'no second call:ended');
    // an ended call is not "missed" when the ring timeout passes
    await sleep(RING_SECS * 1000 + 500);
    for (let i = 0; i < 5; i++) assert.ok(!w.of(i, callId).some(([e]) => e === 'call:missed'), `socket ${i}: ${JSON.stringify(w.of(i, callId))}`);
    w.stop();
  });

  test('the caller cancels a ringing call: call:ended with durationMs 0 to the callee\'s tabs and the caller\'s other tab', async () => {
    const { callId } = await ring();
    const ended = [a2, b1, b2].map((s) => nextEvent(s, 'call:ended', 3_000));
    const none = nextEvent(a1, 'call:ended', QUIET).then(
      (p) => assert.fail(`the ending socket got call:ended ${JSON.stringify(p)}`),
      () => {},
    );
    const ack = await emitAck(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId });
    assert.deepEqual(ack, { ok: true, data: { callId, durationMs: 0 } });
    for (const p of await Promise.all(ended)) assert.deepEqual(p, { callId, chatId: 'general', endedBy: 'alice', durationMs: 0 });
    await none;
    // too late to accept now
    await denied(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId }, 'CONFLICT');
  });

  test('reject → call:rejected { callId, chatId, userId } to the caller\'s tabs; ack { callId, state: "rejected" }; no call:missed later', async () => {
    const { callId, startedAt } = await ring();
    const w = watch([a1, a2, b1, b2]);
    const rej1 = nextEvent(a1, 'call:rejected');
    const rej2 = nextEvent(a2, 'call:rejected');
    const ack = await emitAck(b2, 'call:reject', { chatId: 'general', callerId: 'alice', callId });
    assert.deepEqual(ack, { ok: true, data: { callId, state: 'rejected' } });
    const expected = { callId, chatId: 'general', userId: 'bob' };
    assert.deepEqual(await rej1, expected);
    assert.deepEqual(await rej2, expected);
    // a rejected call can be neither accepted nor ended
    await denied(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId }, 'CONFLICT');
    await denied(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId }, 'CONFLICT');
    const wait = RING_SECS * 1000 + 700 - (Date.now() - startedAt);
    if (wait > 0) await sleep(wait);
    for (let i = 0; i < 4; i++) assert.ok(!w.of(i, callId).some(([e]) => e === 'call:missed' || e === 'call:ended'), `socket ${i}: ${JSON.stringify(w.of(i, callId))}`);
    assert.deepEqual(w.of(0, callId), [['call:rejected', expected]]);
    assert.deepEqual(w.of(1, callId), [['call:rejected', expected]]);
    w.stop();
  });

  test('without callId: accept/reject use the caller\'s newest ringing call in the chat, end the ender\'s own newest', async () => {
    const chatId = (await createChat(server, 'alice', { name: uniq('calls'), participants: ['bob'] })).id;
    const { callId } = await ring(chatId);
    const acc = nextEvent(a1, 'call:accepted');
    assert.deepEqual(await emitAck(b1, 'call:accept', { chatId, callerId: 'alice' }), { ok: true, data: { callId, state: 'accepted' } });
    assert.deepEqual(await acc, { callId, chatId, userId: 'bob' });
    const ended = nextEvent(b1, 'call:ended');
    const ack = await emitAck(a1, 'call:end', { chatId, participants: ['bob'] });
    assertAckOk(ack);
    assert.equal(ack.data.callId, callId);
    assert.equal((await ended).callId, callId);

    const second = await ring(chatId);
    const rej = nextEvent(a1, 'call:rejected');
    assert.deepEqual(await emitAck(b2, 'call:reject', { chatId, callerId: 'alice' }), { ok: true, data: { callId: second.callId, state: 'rejected' } });
    assert.deepEqual(await rej, { callId: second.callId, chatId, userId: 'bob' });
    // nothing ringing any more
    await denied(b1, 'call:accept', { chatId, callerId: 'alice' }, 'NOT_FOUND');
  });

  test('only an invitee may accept or reject, only the caller or an invitee may end: FORBIDDEN', async () => {
    // team: alice, bob, carol; alice calls bob only
    const { callId } = await ring('team');
    const w = watch([a1, a2, b1, b2]);
    await denied(c, 'call:accept', { chatId: 'team', callerId: 'alice', callId }, 'FORBIDDEN');
    await denied(c, 'call:reject', { chatId: 'team', callerId: 'alice', callId }, 'FORBIDDEN');
    await denied(c, 'call:end', { chatId: 'team', participants: ['alice', 'bob'], callId }, 'FORBIDDEN');
    // the caller cannot accept their own call
    await denied(a1, 'call:accept', { chatId: 'team', callerId: 'alice', callId }, 'FORBIDDEN');
    // carol is not in general at all
    await denied(c, 'call:accept', { chatId: 'general', callerId: 'alice', callId }, 'FORBIDDEN');
    await sleep(QUIET);
    for (let i = 0; i < 4; i++) assert.deepEqual(w.of(i, callId), [], `socket ${i}: ${JSON.stringify(w.of(i, callId))}`);
    w.stop();
    // the call is still ringing: bob can accept it
    assert.deepEqual(await emitAck(b1, 'call:accept', { chatId: 'team', callerId: 'alice', callId }), { ok: true, data: { callId, state: 'accepted' } });
    await hangUp(a1, 'team', callId);
  });

  test('unknown calls → NOT_FOUND; bad payloads → INVALID_PAYLOAD', async () => {
    const s = await scope.user(server, 'bob');
    const missing = '000000000000000000000000';
    await denied(s, 'call:accept', { chatId: 'general', callerId: 'alice', callId: missing }, 'NOT_FOUND');
    await denied(s, 'call:reject', { chatId: 'general', callerId: 'alice', callId: missing }, 'NOT_FOUND');
    await denied(s, 'call:end', { chatId: 'general', participants: ['alice'], callId: missing }, 'NOT_FOUND');
    await denied(s, 'call:signal', { callId: missing, to: 'alice', signal: { type: 'offer', sdp: 'v=0' } }, 'NOT_FOUND');
    for (const [event, cases] of [
      ['call:accept', [NO_ARG, null, 42, {}, { chatId: 'general' }, { callerId: 'alice' }, { chatId: 'general', callerId: 5 }, { chatId: 'general', callerId: 'alice', callId: 5 }, { chatId: 5, callerId: 'alice' }]],
      ['call:reject', [NO_ARG, null, {}, { chatId: 'general' }, { chatId: 'general', callerId: ['alice'] }, { chatId: 'general', callerId: 'alice', callId: '' }]],
      ['call:end', [NO_ARG, null, {}, { chatId: 'general' }, { chatId: 'general', participants: 'alice' }, { chatId: 'general', participants: [5] }, { participants: ['alice'] }, { chatId: 'general', participants: [], callId: 5 }]],
      ['call:signal', [NO_ARG, null, {}, { callId: missing, to: 'alice' }, { callId: missing, to: 'alice', signal: null }, { callId: missing, signal: {} }, { to: 'alice', signal: {} }, { callId: missing, to: 5, signal: {} }, { callId: 5, to: 'alice', signal: {} }]],
    ]) {
      for (const p of cases) await denied(s, event, p, 'INVALID_PAYLOAD');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('missed calls', () => {
  test(`unanswered for ${RING_SECS} s → call:missed { callId, chatId } to the caller and the callee, exactly once per tab`, async () => {
    const w = watch([a1, a2, b1, b2, c]);
    const { callId, startedAt } = await ring();
    const first = await waitForCall(a1, 'call:missed', callId, RING_SECS * 1000 + 3_000);
    const after = Date.now() - startedAt;
    assert.deepEqual(first, { callId, chatId: 'general' });
    assert.ok(after >= RING_SECS * 1000 - 300, `missed after ${after} ms, ring timeout ${RING_SECS} s`);
    await sleep(1_500); // count over ~1.5 s after the first
    const expected = [['call:missed', { callId, chatId: 'general' }]];
    assert.deepEqual(w.of(0, callId), expected, 'caller tab 1');
    assert.deepEqual(w.of(1, callId), expected, 'caller tab 2');
    assert.deepEqual(w.of(2, callId), [['call:incoming', w.of(2, callId)[0][1]], ...expected], 'callee tab 1');
    assert.deepEqual(w.of(3, callId), [['call:incoming', w.of(3, callId)[0][1]], ...expected], 'callee tab 2');
    assert.deepEqual(w.of(4), [], 'carol gets nothing');

    // a missed call is over: late accept, reject, end and signal → CONFLICT
    await denied(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId }, 'CONFLICT');
    await denied(b2, 'call:reject', { chatId: 'general', callerId: 'alice', callId }, 'CONFLICT');
    await denied(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId }, 'CONFLICT');
    await denied(a1, 'call:signal', { callId, to: 'bob', signal: { type: 'offer', sdp: 'v=0' } }, 'CONFLICT');
    await sleep(QUIET);
    assert.deepEqual(w.of(0, callId), expected, 'the late answers told the caller nothing');
    w.stop();
  });

  test('an accepted call is not missed', async () => {
    const w = watch([a1, b1]);
    const { callId, startedAt } = await ring();
    assertAckOk(await emitAck(b1, 'call:accept', { chatId: 'general', callerId: 'alice', callId }));
    const wait = RING_SECS * 1000 + 1_000 - (Date.now() - startedAt);
    if (wait > 0) await sleep(wait);
    assert.ok(!w.of(0, callId).some(([e]) => e === 'call:missed'), JSON.stringify(w.of(0, callId)));
    assert.ok(!w.of(1, callId).some(([e]) => e === 'call:missed'), JSON.stringify(w.of(1, callId)));
    w.stop();
    assertAckOk(await emitAck(a1, 'call:end', { chatId: 'general', participants: ['bob'], callId }));
  });
});

// ---------------------------------------------------------------------------------------------

describe('call:signal', () => {
  test('relays { callId, from, signal } to every tab of the other party, both ways; ack {}', async () => {
    const { callId } = await ring('team');
    const w = watch([a1, a2, b1, b2, c]);
    const offer = { type: 'offer', sdp: 'v=0\r\no=- 46117317 2 IN IP4 127.0.0.1\r\n' };
    const s1 = nextEvent(b1, 'call:signal');
    const s2 = nextEvent(b2, 'call:signal');
    // signalling may start while the call is ringing
    assert.deepEqual(await emitAck(a1, 'call:signal', { callId, to: 'bob', signal: offer }), { ok: true, data: {} });
    assert.deepEqual(await s1, { callId, from: 'alice', signal: offer });
    assert.deepEqual(await s2, { callId, from: 'alice', signal: offer });

    assertAckOk(await emitAck(b1, 'call:accept', { chatId: 'team', callerId: 'alice', callId }));
    const answer = { type: 'answer', sdp: 'v=0\r\n' };
    const r1 = nextEvent(a1, 'call:signal');
    const r2 = nextEvent(a2, 'call:signal');
    assert.deepEqual(await emitAck(b1, 'call:signal', { callId, to: 'alice', signal: answer }), { ok: true, data: {} });
    assert.deepEqual(await r1, { callId, from: 'bob', signal: answer });
    assert.deepEqual(await r2, { callId, from: 'bob', signal: answer });
    const ice = { candidate: 'candidate:1 1 UDP 2122252543 192.168.1.2 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    const r3 = nextEvent(a2, 'call:signal');
    assertAckOk(await emitAck(b2, 'call:signal', { callId, to: 'alice', signal: ice }), {});
    assert.deepEqual(await r3, { callId, from: 'bob', signal: ice });
    await sleep(QUIET);
    const signals = (i) => w.of(i, callId).filter(([e]) => e === 'call:signal');
    assert.equal(signals(0).length, 2);
    assert.equal(signals(1).length, 2);
    assert.equal(signals(2).length, 1, "bob's tabs got alice's offer only (not their own signals)");
    assert.equal(signals(3).length, 1);
    assert.deepEqual(w.of(4), [], 'carol (in the chat, not in the call) gets nothing');
    w.stop();
    await hangUp(a1, 'team', callId);
  });

  test('a non-party sender or recipient → FORBIDDEN; nothing relayed; after the end → CONFLICT', async () => {
    const { callId } = await ring('team');
    assertAckOk(await emitAck(b1, 'call:accept', { chatId: 'team', callerId: 'alice', callId }));
    const w = watch([a1, a2, b1, b2, c]);
    const sig = { type: 'offer', sdp: 'v=0' };
    // carol is in the chat but not in the call
    await denied(c, 'call:signal', { callId, to: 'alice', signal: sig }, 'FORBIDDEN');
    await denied(c, 'call:signal', { callId, to: 'bob', signal: sig }, 'FORBIDDEN');
    await denied(a1, 'call:signal', { callId, to: 'carol', signal: sig }, 'FORBIDDEN');
    await denied(a1, 'call:signal', { callId, to: 'dave', signal: sig }, 'FORBIDDEN');
    await denied(b1, 'call:signal', { callId, to: 'carol', signal: sig }, 'FORBIDDEN');
    // nor to oneself
    await denied(a1, 'call:signal', { callId, to: 'alice', signal: sig }, 'FORBIDDEN');
    await sleep(QUIET);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(w.of(i).filter(([e]) => e === 'call:signal'), [], `socket ${i} got a signal`);
    }
    assertAckOk(await emitAck(a1, 'call:end', { chatId: 'team', participants: ['bob'], callId }));
    await denied(a1, 'call:signal', { callId, to: 'bob', signal: sig }, 'CONFLICT');
    await denied(b1, 'call:signal', { callId, to: 'alice', signal: sig }, 'CONFLICT');
    w.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('group calls', () => {
  test('alice calls bob and carol in team: one rejects (the call goes on), one accepts, the end reaches both', async () => {
    const cInc = nextEvent(c, 'call:incoming', 3_000);
    const { callId, incoming } = await ring('team', ['bob', 'carol'], 'video');
    assert.deepEqual([...incoming.participants].sort(), ['bob', 'carol']);
    assert.deepEqual(await cInc, incoming);

    const rej = nextEvent(a1, 'call:rejected');
    const rAck = await emitAck(b1, 'call:reject', { chatId: 'team', callerId: 'alice', callId });
    assert.deepEqual(rAck, { ok: true, data: { callId, state: 'ringing' } }, 'one invitee declining does not end a group call');
    assert.deepEqual(await rej, { callId, chatId: 'team', userId: 'bob' });

    const acc = nextEvent(a2, 'call:accepted');
    assert.deepEqual(await emitAck(c, 'call:accept', { chatId: 'team', callerId: 'alice', callId }), { ok: true, data: { callId, state: 'accepted' } });
    assert.deepEqual(await acc, { callId, chatId: 'team', userId: 'carol' });

    const ended = [a2, b1, b2, c].map((s) => nextEvent(s, 'call:ended', 3_000));
    const ack = await emitAck(a1, 'call:end', { chatId: 'team', participants: ['bob', 'carol'], callId });
    assertAckOk(ack);
    for (const p of await Promise.all(ended)) {
      assert.deepEqual(p, { callId, chatId: 'team', endedBy: 'alice', durationMs: ack.data.durationMs });
    }
  });
});
