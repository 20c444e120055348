// The authorization matrix: every client → server event and every REST route, run as a
// non-member (mallory), a member of another project (dave), a project member who is not a
// participant of the chat (carol), an expired token and an API key. Each outcome is checked,
// and an observer in every demo room proves that nothing leaked; afterwards, events in every
// demo room prove the refused callers joined none of them (issue 8).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  Scope, API_KEY, mintToken, http, emitAck, assertAckOk, record, sleep, connectRefused,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

// kind: project (members only), chat (participants of `general` only), owner (alice's address),
// active (needs an active project: refused callers have none), target (custom:message to bob),
// harmless (leaving, unsubscribing: allowed, changes nothing), unknown (no such call).
const EVENTS = [
  ['subscribe:project', 'demo', 'project'],
  ['subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }, 'project'],
  ['subscribe:document', { projectId: 'demo', collectionId: 'tasks', documentId: 'task-1' }, 'project'],
  ['subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'mq', query: {} }, 'project'],
  ['custom:event', { projectId: 'demo', x: 1 }, 'project'],
  ['custom:broadcast', { projectId: 'demo', event: 'ping' }, 'project'],
  ['custom:presence', { projectId: 'demo', status: 'away' }, 'project'],
  ['custom:typing', { projectId: 'demo', isTyping: true }, 'project'],
  ['custom:file:share', { projectId: 'demo', fileId: 'f', fileName: 'f.txt' }, 'project'],
  ['auth:login', { projectId: 'demo' }, 'project'],
  ['auth:logout', { projectId: 'demo' }, 'project'],
  ['auth:session:update', { projectId: 'demo', sessionData: { x: 1 } }, 'project'],
  ['presence:online', { projectId: 'demo', status: 'online' }, 'project'],
  ['presence:get:online', { projectId: 'demo' }, 'project'],
  ['wallet:subscribe:project', { projectId: 'demo' }, 'project'],
  ['integration:join', { projectId: 'demo', integrationId: 'status-api' }, 'project'],
  ['integration:execute', { projectId: 'demo', integrationId: 'status-api', endpoint: 'health' }, 'project'],
  ['integration:test', { projectId: 'demo', integrationId: 'status-api', endpoint: 'health' }, 'project'],
  ['integration:status', { projectId: 'demo', integrationId: 'status-api' }, 'project'],
  ['integration:webhook:subscribe', { projectId: 'demo', integrationId: 'status-api' }, 'project'],
  ['chat:join', { chatId: 'general', projectId: 'demo' }, 'chat'],
  ['chat:typing:start', { chatId: 'general' }, 'chat'],
  ['chat:typing:stop', { chatId: 'general' }, 'chat'],
  ['message:send', { chatId: 'general', projectId: 'demo', type: 'text', content: 'intruder' }, 'chat'],
  ['message:react', { chatId: 'general', projectId: 'demo', messageId: '6955b6d0aaaaaaaaaaaa0001', emoji: '👍' }, 'chat'],
  ['message:edit', { chatId: 'general', projectId: 'demo', messageId: '6955b6d0aaaaaaaaaaaa0001', content: 'x' }, 'chat'],
  ['message:delete', { chatId: 'general', projectId: 'demo', messageId: '6955b6d0aaaaaaaaaaaa0001' }, 'chat'],
  ['messages:mark:read', { chatId: 'general', projectId: 'demo', messageIds: ['6955b6d0aaaaaaaaaaaa0001'] }, 'chat'],
  ['call:initiate', { chatId: 'general', type: 'audio', participants: ['bob'] }, 'chat'],
  ['call:accept', { chatId: 'general', callerId: 'bob' }, 'chat'],
  ['call:reject', { chatId: 'general', callerId: 'bob' }, 'chat'],
  ['call:end', { chatId: 'general', participants: ['bob'] }, 'chat'],
  ['wallet:subscribe:address', { addressId: 'addr-alice' }, 'owner'],
  ['custom:join', { room: 'r1' }, 'active'],
  ['wallet:subscribe:chain', { chain: 'ethereum' }, 'active'],
  ['wallet:subscribe:currency', { currency: 'ETH' }, 'active'],
  ['custom:message', { targetUserId: 'bob', message: 'psst' }, 'target'],
  ['call:signal', { callId: 'no-such-call', to: 'bob', signal: {} }, 'unknown'],
  ['unsubscribe:project', 'demo', 'harmless'],
  ['unsubscribe:collection', { collectionId: 'tasks' }, 'harmless'],
  ['unsubscribe:query', { queryId: 'mq' }, 'harmless'],
  ['custom:leave', { room: 'r1' }, 'harmless'],
  ['chat:leave', { chatId: 'general' }, 'harmless'],
  ['presence:offline', undefined, 'harmless'],
  ['presence:update', undefined, 'harmless'],
  ['wallet:unsubscribe:address', { addressId: 'addr-alice' }, 'harmless'],
  ['wallet:unsubscribe:project', { projectId: 'demo' }, 'harmless'],
  ['integration:leave', { integrationId: 'status-api' }, 'harmless'],
  ['integration:webhook:unsubscribe', { integrationId: 'status-api' }, 'harmless'],
];
const DENIED = ['FORBIDDEN', 'NOT_FOUND'];

async function ack(socket, event, payload) {
  return payload === undefined ? emitAck(socket, event) : emitAck(socket, event, payload);
}

before(async () => {
  server = await scope.server({ name: 'authz', env: { RATE_LIMIT_PER_SEC: '10000', RATE_LIMIT_BURST: '10000' } });
});

describe('authorization matrix', () => {
  test('every event as non-member, other-project member and non-participant: refused, nothing leaks, no room joined', async () => {
    // The observer sits in every demo room.
    const bob = await scope.user(server, 'bob');
    for (const [e, p] of [
      ['subscribe:project', 'demo'],
      ['subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }],
      ['subscribe:document', { projectId: 'demo', collectionId: 'tasks', documentId: 'task-1' }],
      ['chat:join', { chatId: 'general', projectId: 'demo' }],
      ['wallet:subscribe:project', { projectId: 'demo' }],
      ['wallet:subscribe:address', { addressId: 'addr-bob' }],
      ['custom:join', { room: 'r1' }],
      ['integration:join', { projectId: 'demo', integrationId: 'status-api' }],
      ['integration:webhook:subscribe', { projectId: 'demo', integrationId: 'status-api' }],
    ]) {
      assertAckOk(await emitAck(bob, e, p));
    }
    const before_ = (await http(server, '/api/chats/general/messages?limit=100', { apiKey: API_KEY })).json.messages;
    const seen = record(bob);

    const mallory = await scope.user(server, 'mallory');
    const dave = await scope.user(server, 'dave');
    assertAckOk(await emitAck(dave, 'subscribe:project', 'acme')); // his own project is his active one
    const carol = await scope.user(server, 'carol');
    assertAckOk(await emitAck(carol, 'subscribe:project', 'demo'));

    const wrong = [];
    let runs = 0;
    for (const [event, payload, kind] of EVENTS) {
      for (const [who, sock] of [['mallory', mallory], ['dave', dave], ['carol', carol]]) {
        if (who === 'carol' && !['chat', 'owner'].includes(kind)) continue; // carol is a demo member
        runs++;
        const a = await ack(sock, event, payload);
        const okOutcome =
          kind === 'harmless' ? typeof a?.ok === 'boolean'
          : kind === 'active' ? (who === 'dave' ? a?.ok === true : a?.error?.code === 'INVALID_PAYLOAD')
          : kind === 'unknown' ? a?.error?.code === 'NOT_FOUND'
          : a?.ok === false && DENIED.includes(a.error?.code);
        if (!okOutcome) wrong.push(`${who} ${event}: ${JSON.stringify(a)}`);
      }
    }
    assert.deepEqual(wrong, [], 'outcomes');
    await sleep(400);
    assert.deepEqual(seen.map((e) => e.event), [], 'the observer saw something from a refused caller');
    const after_ = (await http(server, '/api/chats/general/messages?limit=100', { apiKey: API_KEY })).json.messages;
    assert.deepEqual(after_, before_, 'chat general unchanged');

    // Now every demo room carries an event: none of the refused callers may receive one.
    const got = { mallory: record(mallory), dave: record(dave), carol: record(carol) };
    assertAckOk(await emitAck(bob, 'message:send', { chatId: 'general', projectId: 'demo', type: 'text', content: 'for participants' }));
    assert.equal((await http(server, '/api/projects/demo/emit', { method: 'POST', apiKey: API_KEY, body: { room: 'custom:demo:r1', event: 'inroom', payload: {} } })).status, 202);
    assert.equal((await http(server, '/api/projects/demo/emit', { method: 'POST', apiKey: API_KEY, body: { event: 'matrix:ping', payload: {} } })).status, 202);
    assert.equal((await http(server, '/api/projects/demo/collections/tasks/documents', { method: 'POST', apiKey: API_KEY, body: { title: 'matrix' } })).status, 201);
    assert.equal((await http(server, '/api/projects/demo/wallet/transactions', {
      method: 'POST', apiKey: API_KEY,
      // bob's own address: a member's wallet feeds carry only their own addresses' transactions.
      body: { addressId: 'addr-bob', amount: '1', direction: 'in', txHash: '0xmatrix', status: 'pending' },
    })).status, 201);
    // The demo integration is seeded without a webhook secret (the seeds are public): set one.
    const whSecret = 'matrix-webhook-secret-0123456789abcdef';
    assert.equal((await http(server, '/api/projects/demo/integrations/status-api', { method: 'PATCH', apiKey: API_KEY, body: { webhookSecret: whSecret } })).status, 200);
    const raw = JSON.stringify({ matrix: true });
    const wh = await fetch(`${server.url}/webhooks/demo/status-api`, {
      method: 'POST', body: raw,
      headers: { 'content-type': 'application/json', 'x-signature-256': `sha256=${createHmac('sha256', whSecret).update(raw).digest('hex')}` },
    });
    assert.equal(wh.status, 200);
    await sleep(600);
    const bobGot = new Set(seen.map((e) => e.event));
    for (const e of ['inroom', 'matrix:ping', 'document:created', 'wallet:transaction', 'integration:webhook']) {
      assert.ok(bobGot.has(e), `the observer should have received ${e} (got ${[...bobGot]})`);
    }
    // carol shares the project room (matrix:ping) but no other room the callers were refused.
    const allowed = { mallory: [], dave: [], carol: ['matrix:ping'] };
    for (const [who, items] of Object.entries(got)) {
      assert.deepEqual(items.map((e) => e.event).filter((e) => !allowed[who].includes(e)), [], `${who} received room events`);
    }
    console.log(`authz matrix: ${runs} refused-caller runs over ${EVENTS.length} events`);
  });

  test('an API key acts everywhere; an expired token cannot connect', async () => {
    const admin = await scope.connect(server, { apiKey: API_KEY });
    for (const [e, p] of [
      ['subscribe:project', 'demo'],
      ['subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }],
      ['subscribe:document', { projectId: 'demo', collectionId: 'tasks', documentId: 'task-1' }],
      ['chat:join', { chatId: 'general', projectId: 'demo' }],
      ['wallet:subscribe:address', { addressId: 'addr-alice' }],
      ['wallet:subscribe:project', { projectId: 'demo' }],
      ['integration:join', { projectId: 'demo', integrationId: 'status-api' }],
      ['integration:status', { projectId: 'demo', integrationId: 'status-api' }],
      ['presence:get:online', { projectId: 'demo' }],
    ]) {
      assertAckOk(await emitAck(admin, e, p));
    }
    // Sessions and presence belong to users.
    for (const [e, p] of [['auth:session:update', { projectId: 'demo', sessionData: {} }], ['presence:online', { projectId: 'demo' }]]) {
      const a = await emitAck(admin, e, p);
      assert.equal(a.error?.code, 'FORBIDDEN', `${e}: ${JSON.stringify(a)}`);
    }
    const expired = mintToken('alice', { exp: Math.floor(Date.now() / 1000) - 60 });
    const err = await connectRefused(server, { token: expired });
    assert.match(err.message, /^UNAUTHORIZED/);
  });

  test('every REST route as each caller', async () => {
    const T = {
      mallory: mintToken('mallory'),
      dave: mintToken('dave'),
      carol: mintToken('carol'),
      expired: mintToken('alice', { exp: Math.floor(Date.now() / 1000) - 60 }),
    };
    const D = '/api/projects/demo';
    const doc = `${D}/collections/tasks/documents`;
    // [method, path, body, { caller: expected status }]; the API key is expected to succeed.
    const routes = [
      ['GET', D, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['GET', `${D}/chats`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['POST', `${D}/chats`, { name: 'x', participants: ['alice'] }, { mallory: 403, dave: 403, api: 201 }],
      ['GET', '/api/chats/general', undefined, { mallory: 403, dave: 403, carol: 403, api: 200 }],
      ['GET', '/api/chats/general/messages', undefined, { mallory: 403, dave: 403, carol: 403, api: 200 }],
      ['GET', doc, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['POST', doc, { title: 't' }, { mallory: 403, dave: 403, api: 201 }],
      ['GET', `${doc}/task-1`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['PATCH', `${doc}/task-2`, { title: 'p' }, { mallory: 403, dave: 403, api: 200 }],
      ['PUT', `${doc}/task-2`, { title: 'r' }, { mallory: 403, dave: 403, api: 200 }],
      ['DELETE', `${doc}/task-3`, undefined, { mallory: 403, dave: 403, api: 204 }],
      ['GET', `${D}/wallet/addresses`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['POST', `${D}/wallet/transactions`, { addressId: 'addr-bob', amount: '2', direction: 'out', txHash: '0xr', status: 'confirmed' }, { mallory: 403, dave: 403, carol: 403, api: 201 }],
      ['POST', `${D}/emit`, { event: 'x', payload: {} }, { mallory: 403, dave: 403, carol: 403, api: 202 }],
      ['GET', `${D}/integrations`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['GET', `${D}/integrations/status-api`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
      ['POST', `${D}/integrations`, { name: 'n', baseUrl: 'https://example.com' }, { mallory: 403, dave: 403, carol: 403, api: 201 }],
      ['PATCH', `${D}/integrations/status-api`, { name: 'Status' }, { mallory: 403, dave: 403, carol: 403, api: 200 }],
      ['GET', `${D}/integrations/status-api/webhook-events`, undefined, { mallory: 403, dave: 403, carol: 200, api: 200 }],
    ];
    const wrong = [];
    for (const [method, path, body, expect] of routes) {
      for (const who of ['mallory', 'dave', 'carol', 'expired']) {
        const want = who === 'expired' ? 401 : expect[who];
        if (want === undefined) continue;
        const r = await http(server, path, { method, body, token: T[who] });
        if (r.status !== want) wrong.push(`${who} ${method} ${path}: ${r.status} (want ${want}) ${r.text.slice(0, 120)}`);
        if (r.status >= 400 && !r.json?.error?.code) wrong.push(`${who} ${method} ${path}: error body not JSON`);
      }
      const r = await http(server, path, { method, body, apiKey: API_KEY });
      if (r.status !== expect.api) wrong.push(`api ${method} ${path}: ${r.status} (want ${expect.api}) ${r.text.slice(0, 120)}`);
    }
    assert.deepEqual(wrong, []);
    // Lists never show another tenant's data.
    const projects = await http(server, '/api/projects', { token: T.dave });
    assert.deepEqual(projects.json.projects.map((p) => p.id), ['acme']);
    assert.deepEqual((await http(server, '/api/projects', { token: T.mallory })).json.projects, []);
    const chats = await http(server, `${D}/chats`, { token: T.carol });
    assert.ok(!chats.json.chats.some((c) => c.id === 'general'), 'carol does not see general');
    const addrs = await http(server, `${D}/wallet/addresses`, { token: T.carol });
    assert.deepEqual(addrs.json.addresses.map((a) => a.userId), ['carol']);
  });
});
