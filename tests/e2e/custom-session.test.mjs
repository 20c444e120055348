// custom:* and auth:* events with the official socket.io-client: relays within a project,
// custom rooms in the active project, direct messages between users sharing a project,
// file shares, session signals to a user's other sockets (also across nodes), and denials
// (contract "Custom", "Presence and sessions"; docs/protocol.md "Custom and session events").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, uniq, waitFor, expectNone, record, emitAck, assertAckOk, assertAckError, sleep, requireServices,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;
const QUIET = 400;

before(async () => {
  server = await scope.server({ name: 'custom' });
});

async function inProject(sub, s = server) {
  const sock = await scope.user(s, sub);
  assertAckOk(await emitAck(sock, 'subscribe:project', 'demo'));
  return sock;
}

describe('custom events', () => {
  test('custom:broadcast to the project and to a custom room; the sender is excluded', async () => {
    const alice = await inProject('alice');
    const bob = await inProject('bob');
    const carol = await inProject('carol');
    const got = waitFor(bob, 'custom:ping');
    const self = record(alice, 'custom:ping');
    assertAckOk(await emitAck(alice, 'custom:broadcast', { projectId: 'demo', event: 'ping', payload: { n: 1 } }));
    const ev = await got;
    assert.equal(ev.from.userId, 'alice');
    assert.deepEqual(ev.payload, { n: 1 });
    await sleep(QUIET);
    assert.deepEqual(self, []);

    const joined = waitFor(bob, 'custom:joined');
    assertAckOk(await emitAck(bob, 'custom:join', { room: 'war-room' }), { room: 'war-room' });
    assert.deepEqual(await joined, { room: 'war-room' });
    const inRoom = waitFor(bob, 'custom:alarm');
    const carolAll = record(carol, 'custom:alarm');
    assertAckOk(await emitAck(alice, 'custom:broadcast', { projectId: 'demo', event: 'alarm', room: 'war-room' }));
    assert.equal((await inRoom).from.userId, 'alice');
    await sleep(QUIET);
    assert.deepEqual(carolAll, [], 'carol is not in the custom room');

    const left = waitFor(bob, 'custom:left');
    assertAckOk(await emitAck(bob, 'custom:leave', { room: 'war-room' }));
    assert.deepEqual(await left, { room: 'war-room' });
    assertAckOk(await emitAck(alice, 'custom:broadcast', { projectId: 'demo', event: 'alarm', room: 'war-room' }));
    await expectNone(bob, 'custom:alarm', QUIET);
  });

  test('event and room names are validated; custom:join needs an active project', async () => {
    const alice = await scope.user(server, 'alice');
    for (const event of ['', 'a b', 'x'.repeat(65), 'é', 5]) {
      assertAckError(await emitAck(alice, 'custom:broadcast', { projectId: 'demo', event }), 'INVALID_PAYLOAD');
    }
    assertAckError(await emitAck(alice, 'custom:broadcast', { projectId: 'demo', event: 'ok', room: 'r'.repeat(65) }), 'INVALID_PAYLOAD');
    assertAckError(await emitAck(alice, 'custom:join', { room: 'r' }), 'INVALID_PAYLOAD');
    assertAckError(await emitAck(alice, 'custom:join', {}), 'INVALID_PAYLOAD');
    assert.ok(alice.connected);
  });

  test('custom:message needs a shared project; custom:presence, custom:typing relay to the project', async () => {
    const alice = await inProject('alice');
    const bob = await inProject('bob');
    const dave = await scope.user(server, 'dave');
    const dm = waitFor(bob, 'custom:message');
    assertAckOk(await emitAck(alice, 'custom:message', { targetUserId: 'bob', message: 'hi' }));
    const m = await dm;
    assert.equal(m.from.userId, 'alice');
    assert.deepEqual([m.message, m.type], ['hi', 'text']);
    assertAckError(await emitAck(alice, 'custom:message', { targetUserId: 'dave', message: 'hi' }), 'FORBIDDEN');
    await expectNone(dave, 'custom:message', QUIET);

    const pres = waitFor(bob, 'custom:presence');
    assertAckOk(await emitAck(alice, 'custom:presence', { projectId: 'demo', status: 'away', metadata: { m: 1 } }));
    assert.deepEqual(await pres, { userId: 'alice', status: 'away', metadata: { m: 1 } });
    const typing = waitFor(bob, 'custom:typing');
    assertAckOk(await emitAck(alice, 'custom:typing', { projectId: 'demo', isTyping: true, context: 'doc-1' }));
    assert.deepEqual(await typing, { userId: 'alice', isTyping: true, context: 'doc-1' });
    assertAckError(await emitAck(alice, 'custom:typing', { projectId: 'demo', isTyping: 'yes' }), 'INVALID_PAYLOAD');
  });

  test('custom:file:share to recipients or to the project', async () => {
    const alice = await inProject('alice');
    const bob = await inProject('bob');
    const carol = await inProject('carol');
    const toBob = waitFor(bob, 'custom:file:shared');
    const carolGot = record(carol, 'custom:file:shared');
    assertAckOk(await emitAck(alice, 'custom:file:share', { projectId: 'demo', fileId: 'f1', fileName: 'a.pdf', recipients: ['bob'] }));
    const f = await toBob;
    assert.equal(f.from.userId, 'alice');
    assert.deepEqual([f.projectId, f.fileId, f.fileName], ['demo', 'f1', 'a.pdf']);
    await sleep(QUIET);
    assert.deepEqual(carolGot, []);
    const toAll = waitFor(carol, 'custom:file:shared');
    assertAckOk(await emitAck(alice, 'custom:file:share', { projectId: 'demo', fileId: 'f2', fileName: 'b.pdf' }));
    assert.equal((await toAll).fileId, 'f2');
    assertAckError(await emitAck(alice, 'custom:file:share', { projectId: 'demo', fileId: 'f3', fileName: 'c', recipients: ['dave'] }), 'INVALID_PAYLOAD');
  });

  test('non-members get FORBIDDEN for every project-scoped event and nothing is emitted', async () => {
    const alice = await inProject('alice');
    const dave = await scope.user(server, 'dave');
    const seen = record(alice);
    for (const [event, payload] of [
      ['custom:broadcast', { projectId: 'demo', event: 'x' }],
      ['custom:presence', { projectId: 'demo', status: 'on' }],
      ['custom:typing', { projectId: 'demo', isTyping: true }],
      ['custom:file:share', { projectId: 'demo', fileId: 'f', fileName: 'n' }],
      ['auth:login', { projectId: 'demo' }],
      ['auth:logout', { projectId: 'demo' }],
      ['auth:session:update', { projectId: 'demo', sessionData: {} }],
    ]) {
      assertAckError(await emitAck(dave, event, payload), 'FORBIDDEN');
    }
    await sleep(QUIET);
    assert.deepEqual(seen, []);
    assert.ok(dave.connected);
  });
});

describe('session events', () => {
  test('auth:login / auth:logout reach the project room, not the sender', async () => {
    const alice = await inProject('alice');
    const bob = await inProject('bob');
    const on = waitFor(bob, 'user:online');
    const self = record(alice, 'user:online');
    assertAckOk(await emitAck(alice, 'auth:login', { projectId: 'demo' }));
    assert.deepEqual(await on, { userId: 'alice', projectId: 'demo' });
    const off = waitFor(bob, 'user:offline');
    assertAckOk(await emitAck(alice, 'auth:logout', { projectId: 'demo' }));
    assert.deepEqual(await off, { userId: 'alice', projectId: 'demo' });
    await sleep(QUIET);
    assert.deepEqual(self, []);
  });

  test('auth:session:update reaches the user\'s other sockets on every node, never the sender', async () => {
    requireServices('session updates across nodes');
    const prefix = uniq('e2e_session');
    const a = await scope.server({ name: 'session-a', redis: true, prefix });
    const b = await scope.server({ name: 'session-b', redis: true, prefix });
    const sender = await scope.user(a, 'alice');
    const other = await scope.user(b, 'alice');
    const sameNode = await scope.user(a, 'alice');
    const bob = await scope.user(b, 'bob');
    const gotSame = waitFor(sameNode, 'session:updated', 5_000);
    const got = waitFor(other, 'session:updated', 5_000);
    const self = record(sender, 'session:updated');
    const bobGot = record(bob, 'session:updated');
    assertAckOk(await emitAck(sender, 'auth:session:update', { projectId: 'demo', sessionData: { theme: 'dark' } }));
    assert.deepEqual(await got, { projectId: 'demo', sessionData: { theme: 'dark' } });
    assert.deepEqual(await gotSame, { projectId: 'demo', sessionData: { theme: 'dark' } });
    await sleep(QUIET);
    assert.deepEqual(self, []);
    assert.deepEqual(bobGot, []);
  });
});
