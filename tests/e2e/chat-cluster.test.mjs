// Chat and calls across two nodes sharing Redis (adapter) and MongoDB: alice on node A
// (websocket), bob on node B with one websocket tab and one long-polling tab. Messages,
// reactions, edits, deletes, typing, read receipts, mentions and a call all cross nodes, each
// delivered once; call:missed fires exactly once across the cluster
// (contract: "Chat", "Calls", "Room names" → rooms work across nodes; docs/protocol.md: "Chat",
// "Calls" → missed calls, "Cluster").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, nextEvent, uniq, requireServices, record, waitCount, emitAck, within, assertAckOk, waitReady,
  sleep, assertMessage, chatHistory, createChat, joinChat, sendText,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
const RING_SECS = 2;
const SETTLE = 600; // quiet window for "exactly once" across the adapter
let nodeA, nodeB;
let alice, aliceB, bobWs, bobPoll;

before(async () => {
  requireServices('chat-cluster.test.mjs');
  const shared = {
    mongo: true, redis: true, db: uniq('e2e_chatcluster'), prefix: uniq('e2e_chatcluster'),
    env: { CALL_RING_TIMEOUT_SECS: String(RING_SECS) },
  };
  nodeA = await scope.server({ ...shared, name: 'chat-node-A' });
  await waitReady(nodeA); // the demo seed is loaded before node B starts on the same DB
  nodeB = await scope.server({ ...shared, name: 'chat-node-B' });
  await waitReady(nodeB);
  alice = await scope.user(nodeA, 'alice', {}, { transports: ['websocket'] });
  aliceB = await scope.user(nodeB, 'alice', {}, { transports: ['websocket'] }); // alice's second tab, on B
  bobWs = await scope.user(nodeB, 'bob', {}, { transports: ['websocket'] });
  bobPoll = await scope.user(nodeB, 'bob', {}, { transports: ['polling'] });
  assert.equal(bobPoll.io.engine.transport.name, 'polling', 'bob\'s second tab must stay on long-polling');
});

/** Counts `event` on each socket over a quiet window; returns the payload lists. */
async function collect(sockets, event, ms = SETTLE) {
  const recs = sockets.map((s) => record(s, event));
  return {
    recs,
    async settle(extra = ms) {
      await sleep(extra);
      for (const r of recs) r.stop();
      return recs;
    },
  };
}

describe('chat across nodes', () => {
  let chatId, m;

  before(async () => {
    // created over REST on node A, joined on both nodes
    chatId = (await createChat(nodeA, 'alice', { name: uniq('cluster-chat'), participants: ['bob'] })).id;
  });

  test('joins: user:online from bob\'s tabs on node B reaches alice on node A once each', async () => {
    await joinChat(alice, chatId);
    const online = record(alice, 'user:online');
    const dWs = await joinChat(bobWs, chatId);
    const dPoll = await joinChat(bobPoll, chatId);
    assert.deepEqual([...dWs.participants].sort(), ['alice', 'bob'], 'node B knows the chat node A created');
    assert.equal(dPoll.chatId, chatId);
    await waitCount(online, 2, 5_000);
    await sleep(SETTLE);
    assert.deepEqual(online, [{ chatId, userId: 'bob' }, { chatId, userId: 'bob' }]);
    online.stop();
  });

  test('message:send on A → message:new on both of bob\'s tabs on B, once each; the sender gets message:sent only', async () => {
    const c = await collect([alice, bobWs, bobPoll], 'message:new');
    const sent = record(alice, 'message:sent');
    const ack = await emitAck(alice, 'message:send', { chatId, projectId: 'demo', type: 'text', content: 'hello from A' });
    assertAckOk(ack);
    m = assertMessage(ack.data.message, { chatId, senderId: 'alice', content: 'hello from A' });
    await waitCount(c.recs[1], 1, 5_000);
    await waitCount(c.recs[2], 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, [], 'the sending socket gets no message:new');
    assert.deepEqual(bw, [m]);
    assert.deepEqual(bp, [m]);
    assert.deepEqual(sent, [{ message: m }]);
    sent.stop();
    assert.equal(bobPoll.io.engine.transport.name, 'polling');
  });

  test('message:send on B (polling) → alice on A and bob\'s websocket tab, once each', async () => {
    const c = await collect([alice, bobWs, bobPoll], 'message:new');
    const reply = await sendText(bobPoll, chatId, 'hello from B', { replyTo: m.id, mentions: ['alice'] });
    assertMessage(reply, { replyTo: m.id, mentions: ['alice'], senderId: 'bob' });
    await waitCount(c.recs[0], 1, 5_000);
    await waitCount(c.recs[1], 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, [reply]);
    assert.deepEqual(bw, [reply]);
    assert.deepEqual(bp, []);
    // both nodes read the same history
    assert.deepEqual(await chatHistory(nodeA, chatId), await chatHistory(nodeB, chatId, { sub: 'bob' }));
  });

  test('message:react on B → message:reaction to alice on A, to bob\'s other tab, and to the sender, once each', async () => {
    const c = await collect([alice, bobWs, bobPoll], 'message:reaction');
    const ack = await emitAck(bobPoll, 'message:react', { chatId, projectId: 'demo', messageId: m.id, emoji: '🚀' });
    assertAckOk(ack);
    const expected = { chatId, messageId: m.id, emoji: '🚀', userId: 'bob', action: 'added', reactions: [{ emoji: '🚀', userIds: ['bob'], count: 1 }] };
    assert.deepEqual(ack.data, expected);
    for (const r of c.recs) await waitCount(r, 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, [expected]);
    assert.deepEqual(bw, [expected]);
    assert.deepEqual(bp, [expected]);
    // and alice (node A) adds hers: both nodes see the merged reactions
    const c2 = await collect([alice, bobWs, bobPoll], 'message:reaction');
    const off = await emitAck(alice, 'message:react', { chatId, projectId: 'demo', messageId: m.id, emoji: '🚀' });
    assertAckOk(off);
    assert.equal(off.data.action, 'added', 'alice adds her own 🚀');
    assert.deepEqual(off.data.reactions.map((r) => [r.emoji, [...r.userIds].sort(), r.count]), [['🚀', ['alice', 'bob'], 2]]);
    for (const r of c2.recs) await waitCount(r, 1, 5_000);
    const got = await c2.settle();
    assert.deepEqual(got.map((r) => r.length), [1, 1, 1]);
  });

  test('message:edit on A → message:edited on both tabs on B, once each', async () => {
    const c = await collect([alice, bobWs, bobPoll], 'message:edited');
    const ack = await emitAck(alice, 'message:edit', { chatId, projectId: 'demo', messageId: m.id, content: 'hello from A (edited)' });
    assertAckOk(ack);
    await waitCount(c.recs[1], 1, 5_000);
    await waitCount(c.recs[2], 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, []);
    assert.deepEqual(bw, [ack.data]);
    assert.deepEqual(bp, [ack.data]);
    assert.equal(ack.data.content, 'hello from A (edited)');
  });

  test('typing on B → user:typing:start / stop on A (and bob\'s other tab), once each; a disconnect while typing stops at once', async () => {
    const starts = await collect([alice, bobWs, bobPoll], 'user:typing:start');
    const stops = await collect([alice, bobWs, bobPoll], 'user:typing:stop');
    assertAckOk(await emitAck(bobWs, 'chat:typing:start', { chatId }), { chatId });
    await waitCount(starts.recs[0], 1, 5_000);
    assertAckOk(await emitAck(bobWs, 'chat:typing:stop', { chatId }), { chatId });
    await waitCount(stops.recs[0], 1, 5_000);
    const s = await starts.settle();
    const t = await stops.settle(0);
    const ev = { chatId, userId: 'bob' };
    assert.deepEqual(s, [[ev], [], [ev]]);
    assert.deepEqual(t, [[ev], [], [ev]]);

    const bob3 = await scope.user(nodeB, 'bob', {}, { transports: ['polling'] });
    const start = nextEvent(alice, 'user:typing:start', 5_000);
    assertAckOk(await emitAck(bob3, 'chat:typing:start', { chatId }));
    assert.deepEqual(await start, ev);
    const stop = nextEvent(alice, 'user:typing:stop', 3_000);
    bob3.close();
    assert.deepEqual(await stop, ev);
  });

  test('messages:mark:read on B → messages:read on A once; unreadCount agrees on both nodes', async () => {
    const x = await sendText(alice, chatId, 'read me');
    const y = await sendText(alice, chatId, 'and me');
    const probeA = await scope.user(nodeA, 'bob');
    const probeB = await scope.user(nodeB, 'bob', {}, { transports: ['polling'] });
    const before1 = (await joinChat(probeA, chatId)).unreadCount;
    assert.equal((await joinChat(probeB, chatId)).unreadCount, before1);
    assert.ok(before1 >= 2, `bob has ${before1} unread`);
    await sleep(300);

    const c = await collect([alice, bobWs, bobPoll], 'messages:read');
    const ack = await emitAck(bobPoll, 'messages:mark:read', { chatId, projectId: 'demo', messageIds: [x.id, y.id] });
    assertAckOk(ack);
    assert.equal(ack.data.userId, 'bob');
    await waitCount(c.recs[0], 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, [ack.data]);
    assert.deepEqual(bw, [ack.data], "bob's other tab in the room sees his receipt");
    assert.deepEqual(bp, []);
    assert.equal((await joinChat(probeA, chatId)).unreadCount, before1 - 2);
    assert.equal((await joinChat(probeB, chatId)).unreadCount, before1 - 2);
    probeA.close();
    probeB.close();
  });

  test('message:delete on A → message:deleted on both tabs on B, once each; soft delete visible on node B', async () => {
    const c = await collect([alice, bobWs, bobPoll], 'message:deleted');
    const ack = await emitAck(alice, 'message:delete', { chatId, projectId: 'demo', messageId: m.id });
    assertAckOk(ack);
    assert.equal(ack.data.deletedBy, 'alice');
    await waitCount(c.recs[1], 1, 5_000);
    await waitCount(c.recs[2], 1, 5_000);
    const [a, bw, bp] = await c.settle();
    assert.deepEqual(a, []);
    assert.deepEqual(bw, [ack.data]);
    assert.deepEqual(bp, [ack.data]);
    const stored = (await chatHistory(nodeB, chatId, { sub: 'bob' })).find((x) => x.id === m.id);
    assert.equal(stored.content, '');
    assert.equal(stored.deletedAt, ack.data.deletedAt);
  });

  test('a mention from A reaches bob\'s tabs on B that are not in the room (team), once each', async () => {
    await joinChat(alice, 'team');
    const c = await collect([bobWs, bobPoll], 'message:mention');
    const mm = await sendText(alice, 'team', 'standup, @bob?', { mentions: ['bob'] });
    await waitCount(c.recs[0], 1, 5_000);
    await waitCount(c.recs[1], 1, 5_000);
    const [bw, bp] = await c.settle();
    const expected = { chatId: 'team', projectId: 'demo', message: mm };
    assert.deepEqual(bw, [expected]);
    assert.deepEqual(bp, [expected]);
  });

  test('clientMessageId dedupe holds across nodes: the same id on A then on B → one message', async () => {
    const c = await collect([bobWs], 'message:new');
    const payload = { chatId, projectId: 'demo', type: 'text', content: 'retry across nodes', clientMessageId: uniq('cmid') };
    const first = await emitAck(alice, 'message:send', payload);
    const second = await emitAck(aliceB, 'message:send', payload);
    assertAckOk(first);
    assert.deepEqual(second, first);
    await waitCount(c.recs[0], 1, 5_000);
    const [bw] = await c.settle();
    assert.deepEqual(bw, [first.data.message]);
    const hist = await chatHistory(nodeB, chatId, { sub: 'bob' });
    assert.equal(hist.filter((x) => x.content === 'retry across nodes').length, 1);
  });

  test('since recovery across nodes: bob leaves node B, alice sends on A, bob rejoins on A with since', async () => {
    const last = await sendText(alice, chatId, 'bob saw this');
    const gone = await scope.user(nodeB, 'bob');
    await joinChat(gone, chatId);
    gone.close();
    const missed = [];
    for (let i = 0; i < 4; i++) missed.push(await sendText(alice, chatId, `missed ${i}`));
    const back = await scope.user(nodeA, 'bob');
    const d = await joinChat(back, chatId, 'demo', { since: last.id });
    assert.deepEqual(d.messages, missed);
    assert.equal(d.hasMore, false);
    back.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('calls across nodes', () => {
  test('alice on A calls bob on B: incoming on both tabs, accept from the polling tab, signals both ways, end reaches everyone else', async () => {
    const incWs = nextEvent(bobWs, 'call:incoming', 5_000);
    const incPoll = nextEvent(bobPoll, 'call:incoming', 5_000);
    const ack = await emitAck(alice, 'call:initiate', { chatId: 'general', type: 'video', participants: ['bob'] });
    assertAckOk(ack);
    const { callId } = ack.data;
    const incoming = { callId, chatId: 'general', type: 'video', callerId: 'alice', participants: ['bob'] };
    assert.deepEqual(await incWs, incoming);
    assert.deepEqual(await incPoll, incoming);

    const accA = nextEvent(alice, 'call:accepted', 5_000);
    const accB = nextEvent(aliceB, 'call:accepted', 5_000);
    assert.deepEqual(await emitAck(bobPoll, 'call:accept', { chatId: 'general', callerId: 'alice', callId }), { ok: true, data: { callId, state: 'accepted' } });
    assert.deepEqual(await accA, { callId, chatId: 'general', userId: 'bob' });
    assert.deepEqual(await accB, { callId, chatId: 'general', userId: 'bob' });

    const offer = { type: 'offer', sdp: 'v=0\r\n' };
    const sigB = nextEvent(bobPoll, 'call:signal', 5_000);
    assertAckOk(await emitAck(alice, 'call:signal', { callId, to: 'bob', signal: offer }), {});
    assert.deepEqual(await sigB, { callId, from: 'alice', signal: offer });
    const answer = { type: 'answer', sdp: 'v=0\r\n' };
    const sigA = nextEvent(alice, 'call:signal', 5_000);
    assertAckOk(await emitAck(bobPoll, 'call:signal', { callId, to: 'alice', signal: answer }), {});
    assert.deepEqual(await sigA, { callId, from: 'bob', signal: answer });

    await sleep(200);
    const c = await collect([alice, aliceB, bobWs, bobPoll], 'call:ended');
    const end = await emitAck(alice, 'call:end', { chatId: 'general', participants: ['bob'], callId });
    assertAckOk(end);
    assert.ok(end.data.durationMs >= 150, `durationMs ${end.data.durationMs}`);
    for (const r of c.recs.slice(1)) await waitCount(r, 1, 5_000);
    const [a, ab, bw, bp] = await c.settle();
    const expected = { callId, chatId: 'general', endedBy: 'alice', durationMs: end.data.durationMs };
    assert.deepEqual(a, [], 'the ending socket gets no call:ended');
    assert.deepEqual(ab, [expected], "alice's tab on node B gets it");
    assert.deepEqual(bw, [expected]);
    assert.deepEqual(bp, [expected]);
    // and not twice, from either node
    const again = await emitAck(bobWs, 'call:end', { chatId: 'general', participants: ['alice'], callId });
    assert.equal(again?.error?.code, 'CONFLICT', JSON.stringify(again));
  });

  for (const [label, callerOn, caller, callee] of [
    ['started on node A (alice → bob)', 'A', 'alice', 'bob'],
    ['started on node B (bob → alice)', 'B', 'bob', 'alice'],
  ]) {
    test(`call:missed fires exactly once across the cluster, ${label}`, async () => {
      const sockets = [alice, aliceB, bobWs, bobPoll];
      const callerSocket = callerOn === 'A' ? alice : bobWs;
      const missed = sockets.map((s) => record(s, 'call:missed'));
      const incoming = nextEvent(callee === 'bob' ? bobPoll : alice, 'call:incoming', 5_000);
      const ack = await emitAck(callerSocket, 'call:initiate', { chatId: 'general', type: 'audio', participants: [callee] }, within(5_000));
      assertAckOk(ack);
      const { callId } = ack.data;
      assert.equal((await incoming).callerId, caller);
      const mine = (r) => r.filter((p) => p.callId === callId);
      // the first call:missed anywhere, then count for ~1.5 s more
      const deadline = Date.now() + RING_SECS * 1000 + 5_000;
      while (!missed.some((r) => mine(r).length) && Date.now() < deadline) await sleep(20);
      assert.ok(missed.some((r) => mine(r).length), `no call:missed within ${RING_SECS + 5} s`);
      await sleep(1_500);
      for (const r of missed) r.stop();
      const expected = [{ callId, chatId: 'general' }];
      assert.deepEqual(mine(missed[0]), expected, 'alice on A');
      assert.deepEqual(mine(missed[1]), expected, 'alice on B');
      assert.deepEqual(mine(missed[2]), expected, 'bob on B (websocket)');
      assert.deepEqual(mine(missed[3]), expected, 'bob on B (polling)');
      // a late accept on either node → CONFLICT
      const calleeSockets = callee === 'bob' ? [bobWs, bobPoll] : [alice, aliceB];
      for (const s of calleeSockets) {
        const late = await emitAck(s, 'call:accept', { chatId: 'general', callerId: caller, callId });
        assert.equal(late?.error?.code, 'CONFLICT', JSON.stringify(late));
      }
    });
  }

  test('an accept on the other node wins against the ring timer: no call:missed', async () => {
    const missed = [alice, aliceB, bobWs, bobPoll].map((s) => record(s, 'call:missed'));
    const inc = nextEvent(bobWs, 'call:incoming', 5_000);
    const ack = await emitAck(alice, 'call:initiate', { chatId: 'general', type: 'audio', participants: ['bob'] });
    assertAckOk(ack);
    const { callId } = ack.data;
    await inc;
    const started = Date.now();
    assertAckOk(await emitAck(bobWs, 'call:accept', { chatId: 'general', callerId: 'alice', callId }));
    await sleep(Math.max(0, RING_SECS * 1000 + 1_000 - (Date.now() - started)));
    for (const r of missed) {
      r.stop();
      assert.deepEqual(r.filter((p) => p.callId === callId), []);
    }
    assertAckOk(await emitAck(bobWs, 'call:end', { chatId: 'general', participants: ['alice'], callId }));
  });
});
