// Chat over real sockets against a server on MongoDB: join/leave, typing, send (acks, room
// fan-out, mentions), reactions, edit, delete, read receipts, denials, bad payloads, idempotent
// retries, `since` recovery, the chat REST routes and history across a restart
// (contract: "Chat", "Decisions that close gaps"; docs/protocol.md: "Chat", "REST").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, nextEvent, API_KEY, uniq, requireMongo, http, mintToken, expectNone, record, waitCount,
  emitAck, within, assertAckOk, assertAckError, assertErrorEvent, assertHttpError, waitReady, sleep,
  ISO_MS, OBJECT_ID, assertMessage, chatHistory, createChat, joinChat, sendText,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  requireMongo('chat.test.mjs');
  server = await scope.server({ name: 'chat', mongo: true });
  await waitReady(server);
});

// Seeded (seeds/demo.json)
const SEED = {
  general: {
    id: 'general', projectId: 'demo', name: 'General', participants: ['alice', 'bob'], ownerId: 'alice',
    createdAt: '2026-01-01T09:00:00.000Z',
  },
  team: {
    id: 'team', projectId: 'demo', name: 'Whole team', participants: ['alice', 'bob', 'carol'], ownerId: 'bob',
    createdAt: '2026-01-01T09:05:00.000Z',
  },
  generalMsg: '6955b6d0aaaaaaaaaaaa0001', // alice's, in general, bob reacted 👋
  teamMsg: '6955b6d0aaaaaaaaaaaa0004', // carol's, in team
};
const MISSING_ID = '000000000000000000000000';
const NO_ARG = Symbol('no argument');
const QUIET = 350;

/** A new chat of alice (owner) and bob in project demo. */
const freshChat = async (extra = ['bob'], owner = 'alice') =>
  (await createChat(server, owner, { name: uniq('chat'), participants: extra })).id;

/** Emits and expects a failure ack with `code` plus the `error` event { event, code, message }. */
async function denied(socket, event, payload, code) {
  const err = nextEvent(socket, 'error', 3_000);
  const ack = payload === NO_ARG ? await emitAck(socket, event) : await emitAck(socket, event, payload);
  assertAckError(ack, code);
  assertErrorEvent(await err, event, code);
  assert.equal(socket.connected, true, 'the socket stays connected');
}

const only = (items, name) => items.filter((e) => e.event === name).map((e) => e.args[0]);
const names = (items) => items.map((e) => e.event);
const byId = (list, id) => list.find((m) => m.id === id);
/** The contract fixes who is in a chat, not the order of `participants`: compare sorted. */
const sortedParts = (d) => ({ ...d, participants: [...d.participants].sort() });

// ---------------------------------------------------------------------------------------------

describe('chat:join and chat:leave', () => {
  test('chat:join: ack data = chat:joined = { chatId, projectId, participants, unreadCount }; the room gets user:online, not the joiner', async () => {
    const chatId = await freshChat();
    const a1 = await scope.user(server, 'alice');
    const a2 = await scope.user(server, 'alice'); // connected, not in the room
    const b1 = await scope.user(server, 'bob');
    const aJoined = await joinChat(a1, chatId);
    assert.deepEqual(sortedParts(aJoined), { chatId, projectId: 'demo', participants: ['alice', 'bob'], unreadCount: 0 });

    const a1All = record(a1);
    const a2All = record(a2);
    const b1All = record(b1);
    const online = nextEvent(a1, 'user:online');
    const joined = nextEvent(b1, 'chat:joined');
    const ack = await emitAck(b1, 'chat:join', { chatId, projectId: 'demo' });
    assert.deepEqual(Object.keys(ack).sort(), ['data', 'ok']);
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.deepEqual(Object.keys(ack.data).sort(), ['chatId', 'participants', 'projectId', 'unreadCount']);
    assert.deepEqual(sortedParts(ack.data), { chatId, projectId: 'demo', participants: ['alice', 'bob'], unreadCount: 0 });
    assert.deepEqual(await joined, ack.data);
    assert.deepEqual(await online, { chatId, userId: 'bob' });
    await sleep(QUIET);
    assert.deepEqual(names(a1All), ['user:online']);
    assert.deepEqual(names(b1All), ['chat:joined'], 'the joiner gets no user:online of its own');
    assert.deepEqual(a2All, [], 'a socket outside the room gets nothing');
  });

  test('the seeded chats: participants and owner as seeded', async () => {
    const carol = await scope.user(server, 'carol');
    const d = await joinChat(carol, 'team');
    assert.deepEqual(Object.keys(d).sort(), ['chatId', 'participants', 'projectId', 'unreadCount']);
    assert.equal(d.chatId, 'team');
    assert.equal(d.projectId, 'demo');
    assert.deepEqual(d.participants, ['alice', 'bob', 'carol']);
    assert.ok(Number.isInteger(d.unreadCount) && d.unreadCount >= 0, JSON.stringify(d));
    assertAckOk(await emitAck(carol, 'chat:leave', { chatId: 'team' }), { chatId: 'team' });
  });

  test('chat:leave: ack { chatId }, sender chat:left { chatId }, room user:offline; then no room traffic reaches the leaver', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    const m0 = await sendText(a, chatId, 'before leaving');
    await sleep(200);

    const bAll = record(b);
    const offline = nextEvent(a, 'user:offline');
    const left = nextEvent(b, 'chat:left');
    assert.deepEqual(await emitAck(b, 'chat:leave', { chatId }), { ok: true, data: { chatId } });
    assert.deepEqual(await left, { chatId });
    assert.deepEqual(await offline, { chatId, userId: 'bob' });
    await sleep(200);
    assert.deepEqual(names(bAll), ['chat:left']);
    bAll.length = 0;

    // everything the room can carry, none of it for bob any more
    const m1 = await sendText(a, chatId, 'after bob left');
    assertAckOk(await emitAck(a, 'chat:typing:start', { chatId }));
    assertAckOk(await emitAck(a, 'chat:typing:stop', { chatId }));
    assertAckOk(await emitAck(a, 'message:react', { chatId, projectId: 'demo', messageId: m0.id, emoji: '👍' }));
    assertAckOk(await emitAck(a, 'message:edit', { chatId, projectId: 'demo', messageId: m1.id, content: 'edited' }));
    assertAckOk(await emitAck(a, 'message:delete', { chatId, projectId: 'demo', messageId: m1.id }));
    const a2 = await scope.user(server, 'alice');
    await joinChat(a2, chatId); // user:online to the room
    await sleep(QUIET);
    assert.deepEqual(bAll, [], `the leaver received ${JSON.stringify(bAll)}`);
    bAll.stop();
    // bob is still a participant: rejoining works and the traffic resumes
    await joinChat(b, chatId);
    const got = nextEvent(b, 'message:new');
    const m2 = await sendText(a, chatId, 'welcome back');
    assert.deepEqual(await got, m2);
  });

  test('chat:leave of a chat the socket never joined: chat:left, but no user:offline', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    const aAll = record(a);
    const left = nextEvent(b, 'chat:left');
    assert.deepEqual(await emitAck(b, 'chat:leave', { chatId }), { ok: true, data: { chatId } });
    assert.deepEqual(await left, { chatId });
    await sleep(QUIET);
    assert.deepEqual(aAll, []);
    aAll.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('typing indicators', () => {
  let chatId, a, b, outsider;
  before(async () => {
    chatId = await freshChat();
    a = await scope.user(server, 'alice');
    b = await scope.user(server, 'bob');
    outsider = await scope.user(server, 'bob'); // bob's other tab, not in the room
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    await sleep(200);
  });

  test('chat:typing:start / stop reach the room as user:typing:start / stop { chatId, userId }, not the sender', async () => {
    const bAll = record(b);
    const oAll = record(outsider);
    const aAll = record(a);
    const start = nextEvent(a, 'user:typing:start');
    assert.deepEqual(await emitAck(b, 'chat:typing:start', { chatId }), { ok: true, data: { chatId } });
    assert.deepEqual(await start, { chatId, userId: 'bob' });
    const stop = nextEvent(a, 'user:typing:stop');
    assert.deepEqual(await emitAck(b, 'chat:typing:stop', { chatId }), { ok: true, data: { chatId } });
    assert.deepEqual(await stop, { chatId, userId: 'bob' });
    await sleep(QUIET);
    assert.deepEqual(names(aAll), ['user:typing:start', 'user:typing:stop']);
    assert.deepEqual(bAll, [], 'the sender gets no typing events of its own');
    assert.deepEqual(oAll, [], 'a socket outside the room gets nothing');
    for (const r of [aAll, bAll, oAll]) r.stop();
  });

  test('a start without a stop expires after 8 s with user:typing:stop (waits ~9 s)', async () => {
    const aAll = record(a);
    const start = nextEvent(a, 'user:typing:start');
    const t0 = Date.now();
    assertAckOk(await emitAck(b, 'chat:typing:start', { chatId }), { chatId });
    assert.deepEqual(await start, { chatId, userId: 'bob' });
    const stop = await nextEvent(a, 'user:typing:stop', 9_500);
    const elapsed = Date.now() - t0;
    assert.deepEqual(stop, { chatId, userId: 'bob' });
    assert.ok(elapsed >= 7_500 && elapsed <= 9_500, `expired after ${elapsed} ms, expected ~8000`);
    assert.deepEqual(names(aAll), ['user:typing:start', 'user:typing:stop'], 'exactly one start and one stop');
    aAll.stop();
  });

  test('a socket that disconnects while typing: user:typing:stop at once', async () => {
    const b2 = await scope.user(server, 'bob');
    const start = nextEvent(a, 'user:typing:start');
    assertAckOk(await emitAck(b2, 'chat:typing:start', { chatId }), { chatId });
    assert.deepEqual(await start, { chatId, userId: 'bob' });
    const stop = nextEvent(a, 'user:typing:stop', 2_000);
    const t0 = Date.now();
    b2.close();
    assert.deepEqual(await stop, { chatId, userId: 'bob' });
    assert.ok(Date.now() - t0 < 2_000);
  });

  test('chat:leave while typing stops the indicator (user:typing:stop and user:offline)', async () => {
    const b3 = await scope.user(server, 'bob');
    await joinChat(b3, chatId);
    await sleep(200);
    const aAll = record(a);
    assertAckOk(await emitAck(b3, 'chat:typing:start', { chatId }));
    assertAckOk(await emitAck(b3, 'chat:leave', { chatId }), { chatId });
    await waitCount(aAll, 3, 2_000);
    await sleep(QUIET);
    assert.deepEqual(
      aAll.map((e) => [e.event, e.args[0]]).sort(),
      [
        ['user:offline', { chatId, userId: 'bob' }],
        ['user:typing:start', { chatId, userId: 'bob' }],
        ['user:typing:stop', { chatId, userId: 'bob' }],
      ],
    );
    aAll.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('message:send', () => {
  test('ack and message:sent only to the sender, message:new to the room except the sending socket, stored', async () => {
    const chatId = await freshChat();
    const a1 = await scope.user(server, 'alice');
    const a2 = await scope.user(server, 'alice', {}, { transports: ['polling'] }); // alice's other tab, in the room
    const b = await scope.user(server, 'bob');
    const carol = await scope.user(server, 'carol');
    for (const s of [a1, a2, b]) await joinChat(s, chatId);
    await sleep(200);
    const rec = [a1, a2, b, carol].map((s) => record(s));

    const sent = nextEvent(a1, 'message:sent');
    const newB = nextEvent(b, 'message:new');
    const newA2 = nextEvent(a2, 'message:new');
    const ack = await emitAck(a1, 'message:send', { chatId, projectId: 'demo', type: 'text', content: 'hello bob' });
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data), ['message'], 'no clientMessageId key when none was sent');
    const m = assertMessage(ack.data.message, {
      chatId, projectId: 'demo', senderId: 'alice', type: 'text', content: 'hello bob', replyTo: null,
      mentions: [], reactions: [], editedAt: null, deletedAt: null,
    });
    assert.deepEqual(await sent, { message: m });
    assert.deepEqual(await newB, m);
    assert.deepEqual(await newA2, m, "the sender's other tab in the room gets message:new");
    await sleep(QUIET);
    assert.deepEqual(names(rec[0]), ['message:sent'], 'the sending socket: message:sent only, no message:new');
    assert.deepEqual(names(rec[1]), ['message:new']);
    assert.deepEqual(names(rec[2]), ['message:new'], 'bob: message:new only (no message:sent)');
    assert.deepEqual(rec[3], [], 'carol (not a participant) gets nothing');

    const hist = await chatHistory(server, chatId, { sub: 'bob' });
    assert.deepEqual(hist, [m]);
  });

  test('clientMessageId is echoed in the ack and message:sent', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const sent = nextEvent(a, 'message:sent');
    const ack = await emitAck(a, 'message:send', { chatId, projectId: 'demo', type: 'text', content: 'x', clientMessageId: 'cmid-1' });
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data).sort(), ['clientMessageId', 'message']);
    assert.equal(ack.data.clientMessageId, 'cmid-1');
    assertMessage(ack.data.message, { content: 'x' });
    assert.deepEqual(await sent, ack.data);
  });

  test('replyTo and mentions are stored; other types take a string or an object; text of exactly 16 KiB is accepted', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(b, chatId);
    const first = await sendText(a, chatId, 'first');
    const reply = await sendText(b, chatId, 'a reply, @alice', { replyTo: first.id, mentions: ['alice'] });
    assertMessage(reply, { replyTo: first.id, mentions: ['alice'], senderId: 'bob' });
    const kinds = [
      ['image', { url: 'https://example.com/a.png', name: 'a.png', size: 1234 }],
      ['file', 'https://example.com/report.pdf'],
      ['audio', { url: 'https://example.com/a.ogg', durationMs: 1500 }],
      ['video', 'https://example.com/v.mp4'],
      ['location', { lat: 52.52, lng: 13.405 }],
      ['system', 'alice renamed the chat'],
      ['text', 'x'.repeat(16 * 1024)],
    ];
    const stored = [];
    for (const [type, content] of kinds) {
      const ack = await emitAck(a, 'message:send', { chatId, projectId: 'demo', type, content });
      assertAckOk(ack);
      stored.push(assertMessage(ack.data.message, { type, content }));
    }
    const hist = await chatHistory(server, chatId);
    assert.deepEqual(hist, [...stored].reverse().concat([reply, first]));
  });

  test('message:mention goes to the mentioned user\'s sockets that have NOT joined the room, not to those that did', async () => {
    const chatId = await freshChat(['bob', 'carol']);
    const a = await scope.user(server, 'alice');
    const bIn = await scope.user(server, 'bob');
    const bOut = await scope.user(server, 'bob', {}, { transports: ['polling'] });
    const carolOut = await scope.user(server, 'carol');
    await joinChat(a, chatId);
    await joinChat(bIn, chatId);
    await sleep(200);
    const rIn = record(bIn);
    const rOut = record(bOut);
    const rCarol = record(carolOut);
    const rA = record(a);

    const mention = nextEvent(bOut, 'message:mention');
    const m = await sendText(a, chatId, 'ping @bob', { mentions: ['bob'] });
    assertMessage(m, { mentions: ['bob'] });
    assert.deepEqual(await mention, { chatId, projectId: 'demo', message: m });
    await waitCount(rIn, 1, 2_000);
    await sleep(QUIET);
    assert.deepEqual(rIn.map((e) => [e.event, e.args[0]]), [['message:new', m]], 'the tab in the room: message:new, no mention');
    assert.deepEqual(names(rOut), ['message:mention'], 'the tab outside the room: the mention only');
    assert.deepEqual(rCarol, [], 'carol is not mentioned and not in the room');
    assert.deepEqual(names(rA), ['message:sent']);
    for (const r of [rIn, rOut, rCarol, rA]) r.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('clientMessageId dedupe', () => {
  test('the same clientMessageId twice: the same ack, one message:new, one stored message', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(b, chatId);
    await sleep(200);
    const bNew = record(b, 'message:new');
    const aSent = record(a, 'message:sent');
    const payload = { chatId, projectId: 'demo', type: 'text', content: 'only once', clientMessageId: 'retry-1' };
    const ack1 = await emitAck(a, 'message:send', payload);
    const ack2 = await emitAck(a, 'message:send', payload);
    assertAckOk(ack1);
    assert.deepEqual(ack2, ack1, 'the retry answers the original message');
    assert.equal(ack1.data.clientMessageId, 'retry-1');
    // a retry with different content still answers the original
    const ack3 = await emitAck(a, 'message:send', { ...payload, content: 'changed my mind' });
    assert.deepEqual(ack3, ack1);
    await sleep(QUIET);
    assert.deepEqual(bNew, [ack1.data.message], 'exactly one message:new');
    assert.deepEqual(aSent, [ack1.data, ack1.data, ack1.data], 'message:sent answers every attempt');
    assert.deepEqual(await chatHistory(server, chatId), [ack1.data.message], 'one stored message');

    // the same clientMessageId from another sender, or in another chat, is a new message
    const bobAck = await emitAck(b, 'message:send', { ...payload, content: 'bob too' });
    assertAckOk(bobAck);
    assert.notEqual(bobAck.data.message.id, ack1.data.message.id);
    const other = await freshChat();
    const otherAck = await emitAck(a, 'message:send', { ...payload, chatId: other });
    assertAckOk(otherAck);
    assert.notEqual(otherAck.data.message.id, ack1.data.message.id);
    assert.equal((await chatHistory(server, chatId)).length, 2);
    bNew.stop();
    aSent.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('message:react', () => {
  test('toggles: added / removed to the room AND the sender, with reactions [{ emoji, userIds, count }]', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    const m = await sendText(a, chatId, 'react to me');
    await sleep(200);
    const rA = record(a, 'message:reaction');
    const rB = record(b, 'message:reaction');
    const norm = (p) => ({ ...p, reactions: p.reactions.map((r) => ({ ...r, userIds: [...r.userIds].sort() })) });
    const react = async (s, emoji, expected) => {
      const nA = rA.length;
      const nB = rB.length;
      const ack = await emitAck(s, 'message:react', { chatId, projectId: 'demo', messageId: m.id, emoji });
      assertAckOk(ack);
      assert.deepEqual(Object.keys(ack.data).sort(), ['action', 'chatId', 'emoji', 'messageId', 'reactions', 'userId']);
      assert.deepEqual(norm(ack.data), expected);
      await waitCount(rA, nA + 1, 2_000);
      await waitCount(rB, nB + 1, 2_000);
      assert.deepEqual(rA[nA], ack.data, 'alice got the same payload');
      assert.deepEqual(rB[nB], ack.data, 'bob got the same payload');
    };
    const base = { chatId, messageId: m.id };
    await react(b, '👍', { ...base, emoji: '👍', userId: 'bob', action: 'added', reactions: [{ emoji: '👍', userIds: ['bob'], count: 1 }] });
    await react(a, '👍', { ...base, emoji: '👍', userId: 'alice', action: 'added', reactions: [{ emoji: '👍', userIds: ['alice', 'bob'], count: 2 }] });
    await react(a, ':tada:', {
      ...base, emoji: ':tada:', userId: 'alice', action: 'added',
      reactions: [{ emoji: '👍', userIds: ['alice', 'bob'], count: 2 }, { emoji: ':tada:', userIds: ['alice'], count: 1 }],
    });
    await react(b, '👍', {
      ...base, emoji: '👍', userId: 'bob', action: 'removed',
      reactions: [{ emoji: '👍', userIds: ['alice'], count: 1 }, { emoji: ':tada:', userIds: ['alice'], count: 1 }],
    });
    await react(b, '👩‍👩‍👧', {
      ...base, emoji: '👩‍👩‍👧', userId: 'bob', action: 'added',
      reactions: [
        { emoji: '👍', userIds: ['alice'], count: 1 }, { emoji: ':tada:', userIds: ['alice'], count: 1 },
        { emoji: '👩‍👩‍👧', userIds: ['bob'], count: 1 },
      ],
    });
    await react(a, '👍', {
      ...base, emoji: '👍', userId: 'alice', action: 'removed',
      reactions: [{ emoji: ':tada:', userIds: ['alice'], count: 1 }, { emoji: '👩‍👩‍👧', userIds: ['bob'], count: 1 }],
    });
    await sleep(QUIET);
    assert.equal(rA.length, 6, 'one event per toggle');
    assert.equal(rB.length, 6, 'one event per toggle');
    const stored = byId(await chatHistory(server, chatId), m.id);
    assert.deepEqual(stored.reactions, rA[5].reactions, 'REST history has the same reactions');
    rA.stop();
    rB.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('message:edit', () => {
  test('author only: room gets message:edited { chatId, messageId, content, editedAt }; bob editing alice\'s → FORBIDDEN', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    const m = await sendText(a, chatId, 'typo teh');
    await sleep(200);
    const rA = record(a);
    const rB = record(b);

    // wrong author
    await denied(b, 'message:edit', { chatId, projectId: 'demo', messageId: m.id, content: 'bob was here' }, 'FORBIDDEN');
    await sleep(QUIET);
    assert.deepEqual(rA, [], 'a refused edit broadcasts nothing');
    assert.deepEqual(byId(await chatHistory(server, chatId), m.id), m, 'and changes nothing');
    rB.length = 0;

    const edited = nextEvent(b, 'message:edited');
    const ack = await emitAck(a, 'message:edit', { chatId, projectId: 'demo', messageId: m.id, content: 'typo the' });
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data).sort(), ['chatId', 'content', 'editedAt', 'messageId']);
    assert.equal(ack.data.chatId, chatId);
    assert.equal(ack.data.messageId, m.id);
    assert.equal(ack.data.content, 'typo the');
    assert.match(ack.data.editedAt, ISO_MS);
    assert.deepEqual(await edited, ack.data);
    await sleep(QUIET);
    assert.deepEqual(rA, [], 'the editing socket gets no message:edited (room excludes the sender)');
    assert.deepEqual(names(rB), ['message:edited']);
    assert.deepEqual(byId(await chatHistory(server, chatId), m.id), { ...m, content: 'typo the', editedAt: ack.data.editedAt });
    rA.stop();
    rB.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('message:delete', () => {
  test('author: room gets message:deleted { chatId, messageId, deletedBy, deletedAt }; soft delete in REST; again: same answer, no broadcast', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    const m = await sendText(a, chatId, 'to be deleted');
    const keep = await sendText(a, chatId, 'to be kept');
    await sleep(200);
    const rA = record(a);
    const rB = record(b);
    const deleted = nextEvent(b, 'message:deleted');
    const ack = await emitAck(a, 'message:delete', { chatId, projectId: 'demo', messageId: m.id });
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data).sort(), ['chatId', 'deletedAt', 'deletedBy', 'messageId']);
    assert.deepEqual({ ...ack.data, deletedAt: 'x' }, { chatId, messageId: m.id, deletedBy: 'alice', deletedAt: 'x' });
    assert.match(ack.data.deletedAt, ISO_MS);
    assert.deepEqual(await deleted, ack.data);
    await sleep(QUIET);
    assert.deepEqual(rA, [], 'the deleting socket gets no message:deleted');
    assert.deepEqual(names(rB), ['message:deleted']);

    const hist = await chatHistory(server, chatId);
    assert.equal(hist.length, 2, 'soft delete: the message stays in history');
    assert.deepEqual(byId(hist, m.id), { ...m, content: '', deletedAt: ack.data.deletedAt });
    assert.deepEqual(byId(hist, keep.id), keep);

    rB.length = 0;
    const again = await emitAck(a, 'message:delete', { chatId, projectId: 'demo', messageId: m.id });
    assert.deepEqual(again, ack, 'deleting again answers the same');
    await sleep(QUIET);
    assert.deepEqual(rB, [], 'and broadcasts nothing');

    // a deleted message can be neither edited nor reacted to
    await denied(a, 'message:edit', { chatId, projectId: 'demo', messageId: m.id, content: 'revive' }, 'CONFLICT');
    await denied(b, 'message:react', { chatId, projectId: 'demo', messageId: m.id, emoji: '👍' }, 'CONFLICT');
    await sleep(QUIET);
    assert.deepEqual(names(rA), ['error'], 'alice: her own error event only');
    assert.deepEqual(names(rB), ['error'], 'bob: his own error event only');
    assert.deepEqual(byId(await chatHistory(server, chatId), m.id), { ...m, content: '', deletedAt: ack.data.deletedAt });
    rA.stop();
    rB.stop();
  });

  test('chat owner: bob (owner of team) deletes alice\'s message in team; carol (neither) and bob in general (not owner) → FORBIDDEN', async () => {
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    const c = await scope.user(server, 'carol');
    await joinChat(a, 'team');
    await joinChat(c, 'team');
    await sleep(200);
    const m = await sendText(a, 'team', 'alice in team');
    await sleep(200);
    const rA = record(a);
    const rC = record(c);

    await denied(c, 'message:delete', { chatId: 'team', projectId: 'demo', messageId: m.id }, 'FORBIDDEN');
    await sleep(QUIET);
    assert.deepEqual(rA, []);
    assert.deepEqual(only(rC, 'message:deleted'), []);
    assert.equal(byId(await chatHistory(server, 'team'), m.id).deletedAt, null);

    const gotA = nextEvent(a, 'message:deleted');
    const gotC = nextEvent(c, 'message:deleted');
    const ack = await emitAck(b, 'message:delete', { chatId: 'team', projectId: 'demo', messageId: m.id });
    assertAckOk(ack);
    assert.equal(ack.data.deletedBy, 'bob');
    assert.equal(ack.data.messageId, m.id);
    assert.equal(ack.data.chatId, 'team');
    assert.deepEqual(await gotA, ack.data);
    assert.deepEqual(await gotC, ack.data);
    const stored = byId(await chatHistory(server, 'team'), m.id);
    assert.equal(stored.content, '');
    assert.equal(stored.deletedAt, ack.data.deletedAt);

    // general is alice's: bob may not delete her messages there
    const g = await sendText(a, 'general', 'alice in general');
    await denied(b, 'message:delete', { chatId: 'general', projectId: 'demo', messageId: g.id }, 'FORBIDDEN');
    assert.deepEqual(byId(await chatHistory(server, 'general'), g.id), g);
    rA.stop();
    rC.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('read receipts', () => {
  test('messages:mark:read → room messages:read { chatId, userId, messageIds, readAt }; unreadCount in chat:joined follows', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    await joinChat(a, chatId);
    const m1 = await sendText(a, chatId, 'one');
    const m2 = await sendText(a, chatId, 'two');
    const m3 = await sendText(a, chatId, 'three');

    const b = await scope.user(server, 'bob');
    assert.equal((await joinChat(b, chatId)).unreadCount, 3, "three of alice's messages are unread for bob");
    assert.equal((await joinChat(a, chatId)).unreadCount, 0, 'own messages are never unread');
    await sleep(200);
    const rA = record(a);
    const rB = record(b);

    const read = nextEvent(a, 'messages:read');
    const ack = await emitAck(b, 'messages:mark:read', { chatId, projectId: 'demo', messageIds: [m1.id, m2.id] });
    assertAckOk(ack);
    assert.deepEqual(Object.keys(ack.data).sort(), ['chatId', 'messageIds', 'readAt', 'userId']);
    assert.equal(ack.data.chatId, chatId);
    assert.equal(ack.data.userId, 'bob');
    assert.deepEqual([...ack.data.messageIds].sort(), [m1.id, m2.id].sort());
    assert.match(ack.data.readAt, ISO_MS);
    assert.deepEqual(await read, ack.data);
    await sleep(QUIET);
    assert.deepEqual(rB, [], 'the marking socket gets no messages:read');
    assert.deepEqual(names(rA), ['messages:read']);

    const b2 = await scope.user(server, 'bob');
    assert.equal((await joinChat(b2, chatId)).unreadCount, 1, 'after marking two read');
    // bob's own messages do not count for bob, but do for alice
    await sendText(b, chatId, 'from bob');
    assert.equal((await joinChat(b2, chatId)).unreadCount, 1);
    const a2 = await scope.user(server, 'alice');
    assert.equal((await joinChat(a2, chatId)).unreadCount, 1);
    // ids of other chats are ignored
    const ack2 = await emitAck(b, 'messages:mark:read', { chatId, projectId: 'demo', messageIds: [m3.id, SEED.teamMsg] });
    assertAckOk(ack2);
    assert.deepEqual(ack2.data.messageIds, [m3.id], 'the other chat\'s id is ignored');
    assert.equal((await joinChat(b2, chatId)).unreadCount, 0);
    rA.stop();
    rB.stop();
  });

  test('a deleted message no longer counts as unread', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const m1 = await sendText(a, chatId, 'one');
    await sendText(a, chatId, 'two');
    const b = await scope.user(server, 'bob');
    assert.equal((await joinChat(b, chatId)).unreadCount, 2);
    assertAckOk(await emitAck(a, 'message:delete', { chatId, projectId: 'demo', messageId: m1.id }));
    assert.equal((await joinChat(b, chatId)).unreadCount, 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('denials', () => {
  test('carol (not a participant of general) is FORBIDDEN for every chat event; nothing reaches the room, nothing changes', async () => {
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    const c = await scope.user(server, 'carol');
    await joinChat(a, 'general');
    await joinChat(b, 'general');
    await sleep(200);
    const before = await chatHistory(server, 'general');
    const unreadBefore = (await joinChat(await scope.user(server, 'alice'), 'general')).unreadCount;
    await sleep(200);
    const rA = record(a);
    const rB = record(b);
    const g = { chatId: 'general', projectId: 'demo' };
    const cases = [
      ['chat:join', g],
      // chat:leave: see the two tests below
      ['chat:typing:start', { chatId: 'general' }],
      ['chat:typing:stop', { chatId: 'general' }],
      ['message:send', { ...g, type: 'text', content: 'let me in' }],
      ['message:send', { ...g, type: 'text', content: 'let me in', clientMessageId: 'c-1' }],
      ['message:react', { ...g, messageId: SEED.generalMsg, emoji: '👍' }],
      ['message:edit', { ...g, messageId: SEED.generalMsg, content: 'carol edits' }],
      ['message:delete', { ...g, messageId: SEED.generalMsg }],
      ['messages:mark:read', { ...g, messageIds: [SEED.generalMsg] }],
    ];
    const failures = [];
    for (const [event, payload] of cases) {
      try {
        await denied(c, event, payload, 'FORBIDDEN');
      } catch (e) {
        failures.push(`${event}: ${e.message.split('\n')[0]}`);
      }
    }
    await sleep(QUIET);
    assert.deepEqual(rA, [], `alice received ${JSON.stringify(rA)}`);
    assert.deepEqual(rB, [], `bob received ${JSON.stringify(rB)}`);
    assert.deepEqual(await chatHistory(server, 'general'), before, 'history unchanged');
    assert.equal((await joinChat(await scope.user(server, 'alice'), 'general')).unreadCount, unreadBefore);
    // carol did not end up in the room either
    const rC = record(c);
    await sendText(a, 'general', 'is carol listening?');
    await sleep(QUIET);
    assert.deepEqual(only(rC, 'message:new'), []);
    assert.deepEqual(failures, [], 'every event is FORBIDDEN for a non-participant');
    for (const r of [rA, rB, rC]) r.stop();
  });

  test('unknown chat → NOT_FOUND for every chat event', async () => {
    const a = await scope.user(server, 'alice');
    const x = { chatId: 'no-such-chat', projectId: 'demo' };
    const failures = [];
    for (const [event, payload] of [
      ['chat:join', x],
      // chat:leave: see the two tests below
      ['chat:typing:start', { chatId: x.chatId }],
      ['chat:typing:stop', { chatId: x.chatId }],
      ['message:send', { ...x, type: 'text', content: 'hello?' }],
      ['message:react', { ...x, messageId: SEED.generalMsg, emoji: '👍' }],
      ['message:edit', { ...x, messageId: SEED.generalMsg, content: 'x' }],
      ['message:delete', { ...x, messageId: SEED.generalMsg }],
      ['messages:mark:read', { ...x, messageIds: [SEED.generalMsg] }],
    ]) {
      try {
        await denied(a, event, payload, 'NOT_FOUND');
      } catch (e) {
        failures.push(`${event}: ${e.message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('validation runs before authorization: a non-participant\'s malformed payload → INVALID_PAYLOAD', async () => {
    const c = await scope.user(server, 'carol');
    await denied(c, 'message:send', { chatId: 'general', projectId: 'demo', type: 'sticker', content: 'x' }, 'INVALID_PAYLOAD');
    await denied(c, 'chat:join', { chatId: 'general' }, 'INVALID_PAYLOAD');
    await denied(c, 'message:react', { chatId: 'general', projectId: 'demo', messageId: SEED.generalMsg, emoji: 'ab' }, 'INVALID_PAYLOAD');
    await denied(c, 'messages:mark:read', { chatId: 'general', projectId: 'demo', messageIds: [] }, 'INVALID_PAYLOAD');
  });

  // docs/protocol.md "Chat": "All chat events require the caller to be a participant of the chat
  // [...] An unknown chat [...] is NOT_FOUND; a known chat the caller is not in is FORBIDDEN."
  test('chat:leave by a non-participant (carol on general) → FORBIDDEN, no chat:left', async () => {
    const c = await scope.user(server, 'carol');
    const rC = record(c);
    await denied(c, 'chat:leave', { chatId: 'general' }, 'FORBIDDEN');
    await sleep(QUIET);
    rC.stop();
    assert.deepEqual(only(rC, 'chat:left'), []);
  });

  test('chat:leave of an unknown chat → NOT_FOUND, no chat:left', async () => {
    const a = await scope.user(server, 'alice');
    const rA = record(a);
    await denied(a, 'chat:leave', { chatId: 'no-such-chat' }, 'NOT_FOUND');
    await sleep(QUIET);
    rA.stop();
    assert.deepEqual(only(rA, 'chat:left'), []);
  });

  test('unknown message, or a message of another chat → NOT_FOUND (react, edit, delete); nothing changes', async () => {
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(b, 'general');
    await sleep(200);
    const teamBefore = byId(await chatHistory(server, 'team'), SEED.teamMsg);
    const rB = record(b);
    const g = { chatId: 'general', projectId: 'demo' };
    for (const messageId of [MISSING_ID, 'not-a-message', SEED.teamMsg]) {
      await denied(a, 'message:react', { ...g, messageId, emoji: '👍' }, 'NOT_FOUND');
      await denied(a, 'message:edit', { ...g, messageId, content: 'x' }, 'NOT_FOUND');
      await denied(a, 'message:delete', { ...g, messageId }, 'NOT_FOUND');
    }
    await sleep(QUIET);
    assert.deepEqual(rB, []);
    assert.deepEqual(byId(await chatHistory(server, 'team'), SEED.teamMsg), teamBefore, "team's message is untouched");
    rB.stop();
  });

  test('a projectId other than the chat\'s → NOT_FOUND for every event that takes one', async () => {
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    await joinChat(b, 'general');
    await sleep(200);
    const before = await chatHistory(server, 'general');
    const rB = record(b);
    const failures = [];
    for (const projectId of ['acme', 'no-such-project']) {
      const g = { chatId: 'general', projectId };
      for (const [event, payload] of [
        ['chat:join', g],
        ['message:send', { ...g, type: 'text', content: 'wrong project' }],
        ['message:react', { ...g, messageId: SEED.generalMsg, emoji: '👍' }],
        ['message:edit', { ...g, messageId: SEED.generalMsg, content: 'x' }],
        ['message:delete', { ...g, messageId: SEED.generalMsg }],
        ['messages:mark:read', { ...g, messageIds: [SEED.generalMsg] }],
      ]) {
        try {
          await denied(a, event, payload, 'NOT_FOUND');
        } catch (e) {
          failures.push(`${event} (${projectId}): ${e.message.split('\n')[0]}`);
        }
      }
    }
    await sleep(QUIET);
    assert.deepEqual(rB, []);
    assert.deepEqual(await chatHistory(server, 'general'), before);
    assert.deepEqual(failures, []);
    rB.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad payloads → INVALID_PAYLOAD, nothing stored, nothing broadcast', () => {
  const long = 'x'.repeat(129);
  let chatId, m, mb, b, rB, histBefore, unreadBefore;
  const p = () => ({ chatId, projectId: 'demo' });

  before(async () => {
    chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    b = await scope.user(server, 'bob');
    await joinChat(b, chatId);
    m = await sendText(a, chatId, 'the target');
    mb = await sendText(b, chatId, 'from bob');
    histBefore = await chatHistory(server, chatId);
    unreadBefore = (await joinChat(await scope.user(server, 'alice'), chatId)).unreadCount;
    assert.equal(unreadBefore, 1);
    await sleep(200);
    rB = record(b);
  });

  const common = [
    ['no argument', NO_ARG],
    ['null', null],
    ['a number', 42],
    ['an array', () => [p()]],
    ['{}', {}],
  ];
  const chatRef = [
    ...common,
    ['a bare chat id string', () => chatId],
    ['chatId a number', { chatId: 42 }],
    ['chatId null', { chatId: null }],
    ['chatId empty', { chatId: '' }],
    ['chatId of 129 chars', { chatId: long }],
    ['chatId an array', () => ({ chatId: [chatId] })],
    ['chatId with a control character', { chatId: 'gen\u0000eral' }],
  ];
  const withProject = (extra) => () => ({ ...p(), ...extra });
  const without = (key, extra = {}) => () => {
    const o = { ...p(), ...extra };
    delete o[key];
    return o;
  };
  const text = (extra) => withProject({ type: 'text', content: 'hi', ...extra });
  const react = (extra) => () => ({ ...p(), messageId: m.id, emoji: '👍', ...extra });
  const edit = (extra) => () => ({ ...p(), messageId: m.id, content: 'edited', ...extra });
  const del = (extra) => () => ({ ...p(), messageId: m.id, ...extra });
  const mark = (extra) => () => ({ ...p(), messageIds: [mb.id], ...extra });

  const table = {
    'chat:join': [
      ...chatRef.filter(([n]) => n !== '{}'),
      ['{} (no chatId, no projectId)', {}],
      ['missing projectId', () => ({ chatId })],
      ['missing chatId', { projectId: 'demo' }],
      ['projectId a number', () => ({ chatId, projectId: 42 })],
      ['projectId of 129 chars', () => ({ chatId, projectId: long })],
      ['since a number', withProject({ since: 42 })],
      ['since empty', withProject({ since: '' })],
      ['since an object', withProject({ since: { id: 'x' } })],
    ],
    'chat:leave': chatRef,
    'chat:typing:start': chatRef,
    'chat:typing:stop': chatRef,
    'message:send': [
      ...common,
      ['a bare string', 'hi'],
      ['missing chatId', without('chatId', { type: 'text', content: 'hi' })],
      ['missing projectId', without('projectId', { type: 'text', content: 'hi' })],
      ['missing type', text({ type: undefined })],
      ['missing content', text({ content: undefined })],
      ['chatId a number', text({ chatId: 7 })],
      ['projectId a number', text({ projectId: 7 })],
      ['chatId of 129 chars', text({ chatId: long })],
      ['unknown type "sticker"', text({ type: 'sticker' })],
      ['type "TEXT" (case matters)', text({ type: 'TEXT' })],
      ['type a number', text({ type: 1 })],
      ['type null', text({ type: null })],
      ['text content empty', text({ content: '' })],
      ['text content a number', text({ content: 5 })],
      ['text content an object', text({ content: { text: 'hi' } })],
      ['text content an array', text({ content: ['hi'] })],
      ['text content null', text({ content: null })],
      ['text content of 16 KiB + 1', text({ content: 'x'.repeat(16 * 1024 + 1) })],
      ['image content null', text({ type: 'image', content: null })],
      ['image content empty string', text({ type: 'image', content: '' })],
      ['image content {}', text({ type: 'image', content: {} })],
      ['image content a number', text({ type: 'image', content: 12 })],
      ['file content over 16 KiB', text({ type: 'file', content: { url: `https://e.x/${'f'.repeat(16 * 1024)}` } })],
      ['mentions a string', text({ mentions: 'bob' })],
      ['mentions of a non-participant (carol)', text({ mentions: ['carol'] })],
      ['mentions of a participant and a non-participant', text({ mentions: ['bob', 'carol'] })],
      ['mentions of another tenant (dave)', text({ mentions: ['dave'] })],
      ['mentions a number inside', text({ mentions: [5] })],
      ['mentions of 51 users', text({ mentions: Array.from({ length: 51 }, () => 'bob') })],
      ['replyTo a message of another chat', text({ replyTo: SEED.teamMsg })],
      ['replyTo an unknown message', text({ replyTo: MISSING_ID })],
      ['replyTo a number', text({ replyTo: 5 })],
      ['replyTo empty', text({ replyTo: '' })],
      ['clientMessageId empty', text({ clientMessageId: '' })],
      ['clientMessageId of 129 bytes', text({ clientMessageId: 'c'.repeat(129) })],
      ['clientMessageId a number', text({ clientMessageId: 5 })],
    ],
    'message:react': [
      ...common,
      ['missing emoji', react({ emoji: undefined })],
      ['missing messageId', react({ messageId: undefined })],
      ['missing projectId', react({ projectId: undefined })],
      ['messageId a number', react({ messageId: 5 })],
      ['messageId empty', react({ messageId: '' })],
      ['emoji empty', react({ emoji: '' })],
      ['emoji a letter', react({ emoji: 'a' })],
      ['emoji a word', react({ emoji: 'ab' })],
      ['emoji a space', react({ emoji: ' ' })],
      ['two emoji', react({ emoji: '👍👍' })],
      ['emoji plus text', react({ emoji: 'x👍' })],
      ['":name:" with a space', react({ emoji: ':no spaces:' })],
      ['":name:" of 33 characters', react({ emoji: `:${'a'.repeat(33)}:` })],
      ['"::"', react({ emoji: '::' })],
      ['emoji a number', react({ emoji: 5 })],
      ['emoji null', react({ emoji: null })],
    ],
    'message:edit': [
      ...common,
      ['missing content', edit({ content: undefined })],
      ['missing messageId', edit({ messageId: undefined })],
      ['missing projectId', edit({ projectId: undefined })],
      ['messageId a number', edit({ messageId: 5 })],
      ['content empty (text message)', edit({ content: '' })],
      ['content a number (text message)', edit({ content: 5 })],
      ['content an object (text message)', edit({ content: { text: 'x' } })],
      ['content null', edit({ content: null })],
      ['content of 16 KiB + 1', edit({ content: 'y'.repeat(16 * 1024 + 1) })],
    ],
    'message:delete': [
      ...common,
      ['missing messageId', del({ messageId: undefined })],
      ['missing chatId', del({ chatId: undefined })],
      ['missing projectId', del({ projectId: undefined })],
      ['messageId a number', del({ messageId: 5 })],
      ['messageId empty', del({ messageId: '' })],
      ['messageId of 129 chars', del({ messageId: long })],
    ],
    'messages:mark:read': [
      ...common,
      ['empty messageIds', mark({ messageIds: [] })],
      ['missing messageIds', mark({ messageIds: undefined })],
      ['missing projectId', mark({ projectId: undefined })],
      ['messageIds a string', () => ({ ...p(), messageIds: mb.id })],
      ['messageIds holding a number', mark({ messageIds: [5] })],
      ['messageIds holding an empty id', mark({ messageIds: [''] })],
      ['messageIds null', mark({ messageIds: null })],
      ['501 messageIds', mark({ messageIds: Array.from({ length: 501 }, (_, i) => i.toString(16).padStart(24, '0')) })],
    ],
  };

  for (const [event, cases] of Object.entries(table)) {
    describe(event, () => {
      let s;
      before(async () => {
        // a fresh socket per event (keeps each table well inside the rate limit); it joins the
        // chat first, except for chat:join whose table must leave it outside the room
        s = await scope.user(server, 'alice');
        if (event !== 'chat:join') await joinChat(s, chatId);
        await sleep(150);
        rB.length = 0;
      });
      for (const [name, payload] of cases) {
        test(name, async () => {
          let body = typeof payload === 'function' ? payload() : payload;
          if (body && typeof body === 'object' && !Array.isArray(body)) {
            body = JSON.parse(JSON.stringify(body)); // drops keys set to undefined
          }
          await denied(s, event, body, 'INVALID_PAYLOAD');
        });
      }
      test('afterwards: nothing was stored or broadcast, the socket still works', async () => {
        await sleep(QUIET);
        assert.deepEqual(rB, [], `the observer received ${JSON.stringify(rB).slice(0, 500)}`);
        assert.deepEqual(await chatHistory(server, chatId), histBefore, 'nothing was stored or changed');
        const got = nextEvent(b, 'message:new');
        const ok = await sendText(s, chatId, `after ${event}`);
        assert.deepEqual(await got, ok);
        histBefore = [ok, ...histBefore];
        if (event === 'chat:join') {
          // none of the bad joins put the socket in the room
          const none = expectNone(s, 'message:new', QUIET);
          const probe = await sendText(b, chatId, 'is the prober in the room?');
          await none;
          histBefore = [probe, ...histBefore];
        }
        assert.deepEqual(await chatHistory(server, chatId), histBefore);
        rB.length = 0;
      });
    });
  }

  test('no receipts were stored by the bad messages:mark:read payloads', async () => {
    const s = await scope.user(server, 'alice');
    assert.equal((await joinChat(s, chatId)).unreadCount, unreadBefore + 1, "bob's two messages are unread for alice");
    rB.stop();
  });
});

// ---------------------------------------------------------------------------------------------

describe('since recovery', () => {
  const sendMany = async (socket, chatId, n, prefix) => {
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        emitAck(socket, 'message:send', { chatId, projectId: 'demo', type: 'text', content: `${prefix} ${i}` }, within(60_000)),
      ),
    );
    acks.forEach((a) => assertAckOk(a));
    return acks.map((a) => a.data.message);
  };

  test('bob reconnects and chat:join with since = last id he saw: exactly the missed messages, oldest first, hasMore=false', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    let b = await scope.user(server, 'bob');
    await joinChat(a, chatId);
    await joinChat(b, chatId);
    const seen = record(b, 'message:new');
    await sendText(a, chatId, 'seen 1');
    const seen2 = await sendText(a, chatId, 'seen 2');
    await waitCount(seen, 2, 3_000);
    seen.stop();
    const last = seen[1];
    assert.deepEqual(last, seen2, 'the last message bob saw');
    b.close();
    await sleep(200);

    const missed = await sendMany(a, chatId, 5, 'missed');
    b = await scope.user(server, 'bob');
    const d = await joinChat(b, chatId, 'demo', { since: last.id });
    assert.deepEqual(Object.keys(d).sort(), ['chatId', 'hasMore', 'messages', 'participants', 'projectId', 'unreadCount']);
    assert.equal(d.hasMore, false);
    assert.deepEqual(d.messages, missed, 'exactly the 5 missed messages, oldest first');
    assert.equal(d.chatId, chatId);
    assert.deepEqual([...d.participants].sort(), ['alice', 'bob']);
    assert.equal(d.unreadCount, 7);

    // since = the newest: nothing missed
    const d2 = await joinChat(b, chatId, 'demo', { since: missed[4].id });
    assert.deepEqual(d2.messages, []);
    assert.equal(d2.hasMore, false);
  });

  test('more than 100 missed: the oldest 100 and hasMore=true; continuing from the 100th gets the rest', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const anchor = await sendText(a, chatId, 'last seen');
    const missed = await sendMany(a, chatId, 105, 'bulk');
    const b = await scope.user(server, 'bob');
    const d = await joinChat(b, chatId, 'demo', { since: anchor.id });
    assert.equal(d.hasMore, true);
    assert.equal(d.messages.length, 100);
    assert.deepEqual(d.messages.map((x) => x.id), missed.slice(0, 100).map((x) => x.id), 'the oldest 100, oldest first');
    assert.deepEqual(d.messages, missed.slice(0, 100));
    const d2 = await joinChat(b, chatId, 'demo', { since: missed[99].id });
    assert.equal(d2.hasMore, false);
    assert.deepEqual(d2.messages, missed.slice(100));
  });
});

// ---------------------------------------------------------------------------------------------

describe('REST', () => {
  const tok = (sub) => ({ token: mintToken(sub) });

  test('GET /api/projects/demo/chats: the caller\'s chats only; all of the project\'s for an API key; 403 for a non-member', async () => {
    const alice = await http(server, '/api/projects/demo/chats', tok('alice'));
    assert.equal(alice.status, 200, alice.text);
    assert.deepEqual(Object.keys(alice.json), ['chats']);
    const ids = alice.json.chats.map((c) => c.id);
    assert.ok(ids.includes('general') && ids.includes('team'), JSON.stringify(ids));
    assert.ok(alice.json.chats.every((c) => c.participants.includes('alice') && c.projectId === 'demo'));
    assert.deepEqual(alice.json.chats.find((c) => c.id === 'general'), SEED.general);
    assert.deepEqual(alice.json.chats.find((c) => c.id === 'team'), SEED.team);

    const carol = await http(server, '/api/projects/demo/chats', tok('carol'));
    assert.equal(carol.status, 200, carol.text);
    const cIds = carol.json.chats.map((c) => c.id);
    assert.ok(cIds.includes('team'), JSON.stringify(cIds));
    assert.ok(!cIds.includes('general'), 'carol is not in general');
    assert.ok(carol.json.chats.every((c) => c.participants.includes('carol')));

    const admin = await http(server, '/api/projects/demo/chats', { apiKey: API_KEY });
    assert.equal(admin.status, 200, admin.text);
    const aIds = admin.json.chats.map((c) => c.id);
    assert.ok(aIds.includes('general') && aIds.includes('team'));
    assert.ok(!aIds.includes('acme-lobby'), 'only the project\'s chats');

    assertHttpError(await http(server, '/api/projects/demo/chats', tok('dave')), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/projects/demo/chats'), 401, 'UNAUTHORIZED');
  });

  test('POST /api/projects/demo/chats: 201 with the chat; the creator is added and owns it; it shows up for its participants only', async () => {
    const res = await http(server, '/api/projects/demo/chats', { method: 'POST', ...tok('alice'), body: { name: 'Side room', participants: ['bob'] } });
    assert.equal(res.status, 201, res.text);
    const chat = res.json;
    assert.deepEqual(Object.keys(chat).sort(), ['createdAt', 'id', 'name', 'ownerId', 'participants', 'projectId']);
    assert.match(chat.id, OBJECT_ID);
    assert.match(chat.createdAt, ISO_MS);
    assert.deepEqual(sortedParts({ ...chat, id: 'x', createdAt: 'x' }), {
      id: 'x', projectId: 'demo', name: 'Side room', participants: ['alice', 'bob'], ownerId: 'alice', createdAt: 'x',
    });
    const bobGet = await http(server, `/api/chats/${chat.id}`, tok('bob'));
    assert.equal(bobGet.status, 200, bobGet.text);
    assert.deepEqual(bobGet.json, chat);
    assert.ok((await http(server, '/api/projects/demo/chats', tok('bob'))).json.chats.some((c) => c.id === chat.id));
    assert.ok(!(await http(server, '/api/projects/demo/chats', tok('carol'))).json.chats.some((c) => c.id === chat.id));
    // and it is a working chat over sockets
    const b = await scope.user(server, 'bob');
    assert.deepEqual(await joinChat(b, chat.id), { chatId: chat.id, projectId: 'demo', participants: chat.participants, unreadCount: 0 });
    await denied(await scope.user(server, 'carol'), 'chat:join', { chatId: chat.id, projectId: 'demo' }, 'FORBIDDEN');
  });

  test('POST with an explicit id: 201; the same id again → 409 CONFLICT (also for a seeded id)', async () => {
    const id = uniq('room');
    const res = await http(server, '/api/projects/demo/chats', { method: 'POST', ...tok('bob'), body: { id, name: 'Named', participants: ['alice', 'carol'] } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.id, id);
    assert.equal(res.json.ownerId, 'bob');
    assert.deepEqual([...res.json.participants].sort(), ['alice', 'bob', 'carol'], 'the creator is added');
    const again = await http(server, '/api/projects/demo/chats', { method: 'POST', ...tok('alice'), body: { id, name: 'Dup', participants: ['bob'] } });
    assertHttpError(again, 409, 'CONFLICT');
    const seeded = await http(server, '/api/projects/demo/chats', { method: 'POST', ...tok('alice'), body: { id: 'general', name: 'Dup', participants: ['bob'] } });
    assertHttpError(seeded, 409, 'CONFLICT');
    // the original is untouched
    assert.deepEqual((await http(server, `/api/chats/${id}`, tok('bob'))).json, res.json);
    assert.deepEqual((await http(server, '/api/chats/general', tok('alice'))).json, SEED.general);
  });

  test('POST: participants must be project members (dave → 400); a non-member may not create (403); bad bodies → 400', async () => {
    const post = (sub, body) => http(server, '/api/projects/demo/chats', { method: 'POST', ...tok(sub), body });
    assertHttpError(await post('alice', { name: 'With dave', participants: ['dave'] }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('alice', { name: 'With dave', participants: ['bob', 'dave'] }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('alice', { name: 'Ghost', participants: ['nobody-here'] }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('dave', { name: 'Intruder', participants: ['alice'] }), 403, 'FORBIDDEN');
    assertHttpError(await post('alice', { participants: ['bob'] }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('alice', { name: 'No participants' }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('alice', { name: 42, participants: ['bob'] }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await post('alice', { name: 'x', participants: 'bob' }), 400, 'INVALID_PAYLOAD');
    const names = (await http(server, '/api/projects/demo/chats', { apiKey: API_KEY })).json.chats.map((c) => c.name);
    assert.ok(!names.includes('With dave') && !names.includes('Intruder') && !names.includes('Ghost'), 'nothing was created');
  });

  test('GET /api/chats/<id>: the chat for a participant; 403 for a non-participant; 404 for an unknown chat', async () => {
    const ok = await http(server, '/api/chats/general', tok('bob'));
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, SEED.general);
    assert.deepEqual((await http(server, '/api/chats/general', { apiKey: API_KEY })).json, SEED.general);
    assertHttpError(await http(server, '/api/chats/general', tok('carol')), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/chats/general', tok('dave')), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/chats/no-such-chat', tok('alice')), 404, 'NOT_FOUND');
    assertHttpError(await http(server, '/api/chats/general/messages', tok('carol')), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/chats/no-such-chat/messages', tok('alice')), 404, 'NOT_FOUND');
  });

  test('GET /api/chats/<id>/messages: newest first, pages of `limit` walked with nextCursor until null', async () => {
    const chatId = await freshChat();
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob');
    const sent = [];
    // As stored, with the read summary the history adds (nobody has read them).
    for (let i = 0; i < 7; i++) sent.push({ ...await sendText(i % 2 ? b : a, chatId, `msg ${i}`), readCount: 0, readBy: [] });
    const newestFirst = [...sent].reverse();

    const pages = [];
    let before = null;
    for (let i = 0; i < 10; i++) {
      const q = `limit=3${before ? `&before=${before}` : ''}`;
      const res = await http(server, `/api/chats/${chatId}/messages?${q}`, tok('bob'));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.json).sort(), ['messages', 'nextCursor']);
      pages.push(res.json);
      before = res.json.nextCursor;
      if (before === null) break;
    }
    assert.deepEqual(pages.map((p) => p.messages.length), [3, 3, 1]);
    assert.deepEqual(pages.map((p) => p.nextCursor), [newestFirst[2].id, newestFirst[5].id, null]);
    assert.deepEqual(pages.flatMap((p) => p.messages), newestFirst);

    const all = await http(server, `/api/chats/${chatId}/messages`, tok('alice'));
    assert.deepEqual(all.json, { messages: newestFirst, nextCursor: null }, 'default limit (50) holds all 7');
    const exact = await http(server, `/api/chats/${chatId}/messages?limit=7`, tok('alice'));
    assert.deepEqual(exact.json, { messages: newestFirst, nextCursor: null }, 'an exact fit has no next page');
    const max = await http(server, `/api/chats/${chatId}/messages?limit=100`, tok('alice'));
    assert.equal(max.status, 200, max.text);
    const one = await http(server, `/api/chats/${chatId}/messages?limit=1&before=${sent[3].id}`, tok('alice'));
    assert.deepEqual(one.json, { messages: [sent[2]], nextCursor: sent[2].id });
  });

  test('limit validation: 0, 101, -1, abc → 400 INVALID_PAYLOAD', async () => {
    for (const limit of ['0', '101', '-1', 'abc', '1.5']) {
      assertHttpError(await http(server, `/api/chats/general/messages?limit=${limit}`, tok('alice')), 400, 'INVALID_PAYLOAD');
    }
    for (const limit of ['1', '100']) {
      const res = await http(server, `/api/chats/general/messages?limit=${limit}`, tok('alice'));
      assert.equal(res.status, 200, `limit=${limit}: ${res.text}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

test('history survives a restart: SIGTERM, a new process on the same database with SEED_DEMO=false', async () => {
  const db = uniq('e2e_chat_restart');
  const first = await scope.server({ name: 'chat-restart-1', mongo: true, db });
  await waitReady(first);
  const a = await scope.user(first, 'alice');
  const b = await scope.user(first, 'bob');
  await joinChat(b, 'general');
  const m1 = await sendText(a, 'general', 'before the restart 1', { clientMessageId: 'restart-1' });
  const m2 = await sendText(b, 'general', 'before the restart 2', { replyTo: m1.id, mentions: ['alice'] });
  const m3 = await sendText(a, 'general', 'before the restart 3');
  assertAckOk(await emitAck(b, 'message:react', { chatId: 'general', projectId: 'demo', messageId: m1.id, emoji: '🎉' }));
  assertAckOk(await emitAck(a, 'message:edit', { chatId: 'general', projectId: 'demo', messageId: m1.id, content: 'edited before' }));
  assertAckOk(await emitAck(a, 'message:delete', { chatId: 'general', projectId: 'demo', messageId: m3.id }));
  assertAckOk(await emitAck(b, 'messages:mark:read', { chatId: 'general', projectId: 'demo', messageIds: [m1.id] }));
  const side = await createChat(first, 'alice', { name: 'survives', participants: ['bob'] });
  const hist1 = await chatHistory(first, 'general');
  assert.equal(hist1.length, 6, '3 seeded + 3 new');
  const b1 = await scope.user(first, 'bob');
  const unread1 = (await joinChat(b1, 'general')).unreadCount;
  a.close();
  b.close();
  b1.close();
  await first.stop();

  const second = await scope.server({ name: 'chat-restart-2', mongo: true, db, seed: false });
  await waitReady(second);
  assert.deepEqual(await chatHistory(second, 'general'), hist1, 'history intact');
  assert.deepEqual(await chatHistory(second, 'general', { sub: 'bob', limit: 2 }), hist1, 'paginated too');
  const got = await http(second, `/api/chats/${side.id}`, { token: mintToken('bob') });
  assert.deepEqual(got.json, side);
  const b2 = await scope.user(second, 'bob');
  assert.equal((await joinChat(b2, 'general')).unreadCount, unread1, 'receipts intact');
  // retrying the pre-restart clientMessageId still answers the original message
  const a2 = await scope.user(second, 'alice');
  const retry = await emitAck(a2, 'message:send', { chatId: 'general', projectId: 'demo', type: 'text', content: 'before the restart 1', clientMessageId: 'restart-1' });
  assertAckOk(retry);
  assert.equal(retry.data.message.id, m1.id);
  const m4 = await sendText(a2, 'general', 'after the restart');
  const hist2 = await chatHistory(second, 'general');
  assert.deepEqual(hist2, [m4, ...hist1]);
  assert.ok(m2.id !== m4.id);
  a2.close();
  b2.close();
  await second.stop();
});

// Contract, "Decisions that close gaps": "Events from one socket are handled in the order they
// were sent (a chat's messages keep the sender's order)". Both stores order history by
// (createdAt in ms, id); ids carry a per-process counter, so messages stored within the same
// millisecond still come back in send order. The embedded store puts many in one millisecond.
test(
  'back-to-back messages keep the sender\'s order in REST history and in the since replay (embedded store)',
  async () => {
    const s = await scope.server({ name: 'chat-order-memory' });
    await waitReady(s);
    const a = await scope.user(s, 'alice');
    const chatId = (await createChat(s, 'alice', { name: 'order', participants: ['bob'] })).id;
    const anchor = await sendText(a, chatId, 'anchor');
    const acks = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        emitAck(a, 'message:send', { chatId, projectId: 'demo', type: 'text', content: `n${i}` }, within(30_000)),
      ),
    );
    acks.forEach((x) => assertAckOk(x));
    const sent = acks.map((x) => x.data.message.content);
    const hist = (await chatHistory(s, chatId)).reverse().map((m) => m.content);
    const b = await scope.user(s, 'bob');
    const replay = (await joinChat(b, chatId, 'demo', { since: anchor.id })).messages.map((m) => m.content);
    a.close();
    b.close();
    await s.stop();
    assert.deepEqual(hist, ['anchor', ...sent], 'REST history, oldest first');
    assert.deepEqual(replay, sent, 'since replay');
  },
);
