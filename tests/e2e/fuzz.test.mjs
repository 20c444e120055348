// Hostile input over a real socket, for EVERY client → server event: from a valid template per
// event, generated payloads drop each required field, give it every wrong type, oversize it,
// nest it 200 deep, replace the whole payload with non-objects, add a 1 MiB string, and send
// all of that again without an ack. Each invalid payload must get INVALID_PAYLOAD (or
// PAYLOAD_TOO_LARGE) — validation runs before authorization, so the code is deterministic —
// the socket must stay connected, and nothing may change: no event reaches an observer, no
// message or document is stored (contract: "Acks and errors"; issue 8).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, http, emitAck, assertAckOk, record, sleep, within,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server, alice, bob, bobEvents;

// Required fields and their kinds; `any` fields are required but take any JSON (not type-mutated);
// `content` fields take a non-empty string or object (message content, a call signal);
// `optional` lists fields whose wrong types must still be refused.
const ID = 'id', STR = 'string', BOOL = 'bool', ARR = 'array', OBJ = 'object', ENUM = 'enum', ANY = 'any';
const CONTENT = 'content';
const SCHEMAS = {
  'subscribe:project': { valid: { projectId: 'demo' }, fields: { projectId: ID }, stringForm: true },
  'unsubscribe:project': { valid: { projectId: 'demo' }, fields: { projectId: ID }, stringForm: true },
  'subscribe:collection': { valid: { projectId: 'demo', collectionId: 'tasks' }, fields: { projectId: ID, collectionId: ID }, stringForm: true },
  'unsubscribe:collection': { valid: { collectionId: 'tasks' }, fields: { collectionId: ID } },
  'subscribe:document': { valid: { projectId: 'demo', collectionId: 'tasks', documentId: 'task-1' }, fields: { projectId: ID, collectionId: ID, documentId: ID } },
  'subscribe:query': { valid: { projectId: 'demo', collectionId: 'tasks', queryId: 'q1', query: {} }, fields: { projectId: ID, collectionId: ID, queryId: ID }, optional: { query: OBJ } },
  'unsubscribe:query': { valid: { queryId: 'q1' }, fields: { queryId: ID } },
  'custom:event': { valid: { projectId: 'demo', x: 1 }, fields: { projectId: ID } },
  'custom:broadcast': { valid: { projectId: 'demo', event: 'ping' }, fields: { projectId: ID, event: STR } },
  'custom:join': { valid: { room: 'r1' }, fields: { room: STR } },
  'custom:leave': { valid: { room: 'r1' }, fields: { room: STR } },
  'custom:message': { valid: { targetUserId: 'bob', message: 'hi' }, fields: { targetUserId: ID, message: ANY } },
  'custom:presence': { valid: { projectId: 'demo', status: 'away' }, fields: { projectId: ID, status: STR } },
  'custom:typing': { valid: { projectId: 'demo', isTyping: true }, fields: { projectId: ID, isTyping: BOOL } },
  'custom:file:share': { valid: { projectId: 'demo', fileId: 'f1', fileName: 'a.txt' }, fields: { projectId: ID, fileId: ID, fileName: STR }, optional: { recipients: ARR } },
  'auth:login': { valid: { projectId: 'demo' }, fields: { projectId: ID } },
  'auth:logout': { valid: { projectId: 'demo' }, fields: { projectId: ID } },
  'auth:session:update': { valid: { projectId: 'demo', sessionData: {} }, fields: { projectId: ID, sessionData: ANY } },
  'presence:online': { valid: { projectId: 'demo' }, fields: {}, optional: { projectId: ID, status: STR } },
  'presence:offline': { valid: {}, fields: {}, noPayload: true },
  'presence:update': { valid: {}, fields: {}, noPayload: true },
  'presence:get:online': { valid: { projectId: 'demo' }, fields: { projectId: ID } },
  'wallet:subscribe:address': { valid: { addressId: 'addr-alice' }, fields: { addressId: ID } },
  'wallet:subscribe:project': { valid: { projectId: 'demo' }, fields: { projectId: ID } },
  'wallet:subscribe:chain': { valid: { chain: 'ethereum' }, fields: { chain: STR } },
  'wallet:subscribe:currency': { valid: { currency: 'ETH' }, fields: { currency: STR } },
  'wallet:unsubscribe:address': { valid: { addressId: 'addr-alice' }, fields: { addressId: ID } },
  'wallet:unsubscribe:project': { valid: { projectId: 'demo' }, fields: { projectId: ID } },
  'chat:join': { valid: { chatId: 'general', projectId: 'demo' }, fields: { chatId: ID, projectId: ID } },
  'chat:leave': { valid: { chatId: 'general' }, fields: { chatId: ID } },
  'chat:typing:start': { valid: { chatId: 'general' }, fields: { chatId: ID } },
  'chat:typing:stop': { valid: { chatId: 'general' }, fields: { chatId: ID } },
  'message:send': { valid: { chatId: 'general', projectId: 'demo', type: 'text', content: 'hi' }, fields: { chatId: ID, projectId: ID, type: ENUM, content: CONTENT }, optional: { mentions: ARR } },
  'message:react': { valid: { chatId: 'general', projectId: 'demo', messageId: 'm1', emoji: '👍' }, fields: { chatId: ID, projectId: ID, messageId: ID, emoji: STR } },
  'message:edit': { valid: { chatId: 'general', projectId: 'demo', messageId: 'm1', content: 'x' }, fields: { chatId: ID, projectId: ID, messageId: ID, content: CONTENT } },
  'message:delete': { valid: { chatId: 'general', projectId: 'demo', messageId: 'm1' }, fields: { chatId: ID, projectId: ID, messageId: ID } },
  'messages:mark:read': { valid: { chatId: 'general', projectId: 'demo', messageIds: ['m1'] }, fields: { chatId: ID, projectId: ID, messageIds: ARR } },
  'call:initiate': { valid: { chatId: 'general', type: 'audio', participants: ['bob'] }, fields: { chatId: ID, type: ENUM, participants: ARR } },
  'call:accept': { valid: { chatId: 'general', callerId: 'bob' }, fields: { chatId: ID, callerId: ID } },
  'call:reject': { valid: { chatId: 'general', callerId: 'bob' }, fields: { chatId: ID, callerId: ID } },
  'call:end': { valid: { chatId: 'general', participants: ['bob'] }, fields: { chatId: ID, participants: ARR } },
  'call:signal': { valid: { callId: 'c1', to: 'bob', signal: {} }, fields: { callId: ID, to: ID, signal: CONTENT } },
  'integration:join': { valid: { projectId: 'demo', integrationId: 'status-api' }, fields: { projectId: ID, integrationId: ID } },
  'integration:leave': { valid: { integrationId: 'status-api' }, fields: { integrationId: ID } },
  'integration:execute': { valid: { projectId: 'demo', integrationId: 'status-api', endpoint: 'health' }, fields: { projectId: ID, integrationId: ID, endpoint: STR }, optional: { params: OBJ } },
  'integration:test': { valid: { projectId: 'demo', integrationId: 'status-api', endpoint: 'health' }, fields: { projectId: ID, integrationId: ID, endpoint: STR } },
  'integration:status': { valid: { projectId: 'demo', integrationId: 'status-api' }, fields: { projectId: ID, integrationId: ID } },
  'integration:webhook:subscribe': { valid: { projectId: 'demo', integrationId: 'status-api' }, fields: { projectId: ID, integrationId: ID } },
  'integration:webhook:unsubscribe': { valid: { integrationId: 'status-api' }, fields: { integrationId: ID } },
};

const deep = (n) => {
  let v = 'x';
  for (let i = 0; i < n; i++) v = [v];
  return v;
};
const WRONG = {
  [ID]: [42, -0, 1e308, 2 ** 64, true, {}, [], ['demo'], null, 'x'.repeat(129), '', 'NaN\u0000'],
  [STR]: [42, true, {}, [], null, 'x'.repeat(70_000)],
  [BOOL]: ['yes', 1, 0, null, {}, []],
  [ARR]: ['x', 5, {}, true, null],
  [OBJ]: ['x', 5, [], true],
  [ENUM]: ['nope', 5, null, {}, 'TEXT'],
  [CONTENT]: [42, -1.5, true, false, [], ['x'], null, ''],
};
const NON_OBJECTS = [42, 0, -3.5, true, false, [], [{}], 'Infinity'];

/** [label, payload] pairs that must all be refused with INVALID_PAYLOAD. */
function invalidPayloads(event, s) {
  const out = [];
  if (!s.noPayload) {
    for (const v of NON_OBJECTS) {
      if (s.stringForm && typeof v === 'string') continue;
      out.push([`payload ${JSON.stringify(v)}`, v]);
    }
    // serde would read a struct from its fields in order: ["general", "demo"] as { chatId, projectId }.
    out.push(['the valid fields as a positional array', Object.values(s.valid)]);
    if (Object.keys(s.fields).length) out.push(['null payload', null], ['{}', {}]);
  }
  for (const [f, kind] of Object.entries(s.fields)) {
    const { [f]: _drop, ...without } = s.valid;
    out.push([`without ${f}`, without]);
    if (kind === ANY) continue;
    for (const w of WRONG[kind]) out.push([`${f}=${JSON.stringify(w).slice(0, 40)}`, { ...s.valid, [f]: w }]);
    out.push([`${f} nested 200 deep`, { ...s.valid, [f]: deep(200) }]);
  }
  for (const [f, kind] of Object.entries(s.optional ?? {})) {
    for (const w of WRONG[kind].filter((x) => x !== null)) out.push([`optional ${f}=${JSON.stringify(w).slice(0, 40)}`, { ...s.valid, [f]: w }]);
  }
  return out;
}

async function counts() {
  const msgs = await http(server, '/api/chats/general/messages?limit=100', { apiKey: API_KEY });
  const docs = await http(server, '/api/projects/demo/collections/tasks/documents?limit=1000', { apiKey: API_KEY });
  assert.equal(msgs.status, 200);
  assert.equal(docs.status, 200);
  return { messages: msgs.json.messages.length, documents: docs.json.documents.length };
}

before(async () => {
  server = await scope.server({ name: 'fuzz', env: { RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' } });
  alice = await scope.user(server, 'alice');
  bob = await scope.user(server, 'bob');
  assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'));
  assertAckOk(await emitAck(bob, 'chat:join', { chatId: 'general', projectId: 'demo' }));
  assertAckOk(await emitAck(bob, 'subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }));
  assertAckOk(await emitAck(bob, 'wallet:subscribe:project', { projectId: 'demo' }));
});

describe('hostile payloads for every event', () => {
  test('the fuzz table covers every event the server handles', async () => {
    // Unknown events answer INVALID_PAYLOAD "unknown event"; every table entry must be known.
    for (const event of Object.keys(SCHEMAS)) {
      const ack = await emitAck(alice, event, { __probe: true });
      assert.ok(!/unknown event/.test(ack.error?.message ?? ''), `${event} is not handled by the server`);
    }
    const unknown = await emitAck(alice, 'no:such:event', {});
    assert.match(unknown.error.message, /unknown event/);
  });

  test('every invalid payload is refused with the contract error, the socket stays, nothing changes', async () => {
    await sleep(200); // let the probes' effects (a presence announcement) pass
    bobEvents = record(bob);
    const before_ = await counts();
    let tried = 0;
    const failures = [];
    for (const [event, s] of Object.entries(SCHEMAS)) {
      for (const [label, payload] of invalidPayloads(event, s)) {
        tried++;
        const ack = await emitAck(alice, event, payload, within(5000));
        const ok = ack && ack.ok === false && ['INVALID_PAYLOAD', 'PAYLOAD_TOO_LARGE'].includes(ack.error?.code);
        if (!ok) failures.push(`${event} ${label}: ${JSON.stringify(ack).slice(0, 200)}`);
        // The same without an ack: must not crash or disconnect.
        alice.emit(event, payload);
      }
      // A 1 MiB string in the first field: over MAX_EVENT_BYTES, socket kept.
      const big = { ...s.valid, [Object.keys(s.fields)[0] ?? 'x']: 'x'.repeat(1024 * 1024) };
      tried++;
      const ack = await emitAck(alice, event, big, within(10_000));
      if (ack?.error?.code !== 'PAYLOAD_TOO_LARGE') failures.push(`${event} 1 MiB: ${JSON.stringify(ack).slice(0, 200)}`);
      assert.ok(alice.connected, `socket disconnected after ${event}`);
    }
    // Extra fields and unusual-but-valid shapes: anything but a crash or a disconnect is fine.
    for (const [event, s] of Object.entries(SCHEMAS)) {
      // (events that would broadcast or call out when valid are left to their own suites)
      if (/^(message|messages|call|custom|auth|presence|chat):|^integration:(execute|test)$/.test(event)) continue;
      tried++;
      const ack = await emitAck(alice, event, { ...s.valid, extra: { nested: [1, 2, { deep: true }] }, another: 'x'.repeat(1000) }, within(5000));
      assert.equal(typeof ack?.ok, 'boolean', `${event} with extra fields: ${JSON.stringify(ack)}`);
    }
    console.log(`fuzz: ${tried} hostile payloads over ${Object.keys(SCHEMAS).length} events (each also sent without an ack)`);
    assert.deepEqual(failures, [], `${failures.length} payloads were not refused as the contract says`);

    // Still connected and serving.
    assert.ok(alice.connected);
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'));
    await sleep(300);
    const after_ = await counts();
    assert.deepEqual(after_, before_, 'no message or document was stored');
    assert.deepEqual(bobEvents.map((e) => e.event), [], 'nothing reached the observer');
  });
});
