// Live data with the official socket.io-client against SecantusDB (change-stream mode):
// subscriptions in both forms, REST writes reaching collection and document rooms once,
// live queries entering/changing/leaving, owner-scoped notes that never reach other users,
// and denials (docs/protocol.md "Live data", contract "Project and data").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, mintToken, http, waitFor, expectNone, record, emitAck, assertAckOk, assertAckError,
  assertHttpError, waitReady, sleep, ISO_MS,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;
const QUIET = 600;
const DELIVERY = 8_000;

before(async () => {
  server = await scope.server({ name: 'live-data', mongo: true });
  await waitReady(server);
});

const docs = (c) => `/api/projects/demo/collections/${c}/documents`;
const asAdmin = (path, opts = {}) => http(server, path, { apiKey: API_KEY, ...opts });
const asUser = (sub, path, opts = {}) => http(server, path, { token: mintToken(sub), ...opts });

describe('subscriptions', () => {
  test('bare form needs an active project; object form announces subscribed; each change arrives once', async () => {
    const alice = await scope.user(server, 'alice');
    assertAckError(await emitAck(alice, 'subscribe:collection', 'tasks'), 'INVALID_PAYLOAD');
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'));
    const quiet = record(alice, 'subscribed');
    assertAckOk(await emitAck(alice, 'subscribe:collection', 'tasks'), { type: 'collection', projectId: 'demo', collectionId: 'tasks' });
    await sleep(100);
    assert.deepEqual(quiet, [], 'the bare form sends no subscribed event');
    quiet.stop();

    const bob = await scope.user(server, 'bob');
    const sub = waitFor(bob, 'subscribed');
    assertAckOk(await emitAck(bob, 'subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }));
    assert.deepEqual(await sub, { type: 'collection', projectId: 'demo', collectionId: 'tasks' });
    const id = `t-${Date.now()}`;
    const docSub = waitFor(bob, 'subscribed');
    assertAckOk(await emitAck(bob, 'subscribe:document', { projectId: 'demo', collectionId: 'tasks', documentId: id }));
    assert.equal((await docSub).document, null, 'not created yet');

    const gotA = record(alice, 'document:created');
    const gotB = record(bob, 'document:created');
    const res = await asAdmin(docs('tasks'), { method: 'POST', body: { id, title: 'live', done: false } });
    assert.equal(res.status, 201, res.text);
    await waitForCount(gotA, 1);
    await waitForCount(gotB, 1);
    await sleep(QUIET);
    assert.equal(gotB.length, 1, 'bob is in the collection and the document room: one copy');
    const ev = gotA[0];
    assert.equal(ev.projectId, 'demo');
    assert.equal(ev.collectionId, 'tasks');
    assert.equal(ev.documentId, id);
    assert.deepEqual(ev.document, { id, title: 'live', done: false });
    assert.match(ev.changedAt, ISO_MS);

    const upd = waitFor(bob, 'document:updated', DELIVERY);
    assert.equal((await asAdmin(`${docs('tasks')}/${id}`, { method: 'PATCH', body: { done: true } })).status, 200);
    assert.equal((await upd).document.done, true);

    const uns = waitFor(alice, 'unsubscribed');
    assertAckOk(await emitAck(alice, 'unsubscribe:collection', { collectionId: 'tasks' }));
    assert.deepEqual(await uns, { type: 'collection', projectId: 'demo', collectionId: 'tasks' });
    const del = waitFor(bob, 'document:deleted', DELIVERY);
    assert.equal((await asAdmin(`${docs('tasks')}/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await del).document, null);
    await expectNone(alice, 'document:deleted', QUIET);
  });

  test('live query: initial set, then added, changed and removed', async () => {
    const carol = await scope.user(server, 'carol');
    const tag = `lq${Date.now()}`;
    await asAdmin(docs('tasks'), { method: 'POST', body: { id: `${tag}-1`, tag, points: 10 } });
    const sub = waitFor(carol, 'subscribed');
    const ack = await emitAck(carol, 'subscribe:query', {
      projectId: 'demo', collectionId: 'tasks', queryId: 'big', query: { tag, points: { $gte: 5 } },
    });
    assertAckOk(ack);
    const initial = await sub;
    assert.equal(initial.type, 'query');
    assert.deepEqual(initial.documents.map((d) => d.id), [`${tag}-1`]);

    const added = waitFor(carol, 'query:added', DELIVERY);
    await asAdmin(docs('tasks'), { method: 'POST', body: { id: `${tag}-2`, tag, points: 1 } });
    await asAdmin(`${docs('tasks')}/${tag}-2`, { method: 'PATCH', body: { points: 7 } });
    assert.deepEqual(await added, { queryId: 'big', documentId: `${tag}-2`, document: { id: `${tag}-2`, tag, points: 7 } });
    const changed = waitFor(carol, 'query:changed', DELIVERY);
    await asAdmin(`${docs('tasks')}/${tag}-2`, { method: 'PATCH', body: { points: 8 } });
    assert.equal((await changed).document.points, 8);
    const removed = waitFor(carol, 'query:removed', DELIVERY);
    await asAdmin(`${docs('tasks')}/${tag}-1`, { method: 'PATCH', body: { points: 0 } });
    assert.equal((await removed).documentId, `${tag}-1`);
    const gone = waitFor(carol, 'query:removed', DELIVERY);
    await asAdmin(`${docs('tasks')}/${tag}-2`, { method: 'DELETE' });
    assert.deepEqual(await gone, { queryId: 'big', documentId: `${tag}-2`, document: null });

    assertAckOk(await emitAck(carol, 'unsubscribe:query', { queryId: 'big' }));
    await asAdmin(docs('tasks'), { method: 'POST', body: { id: `${tag}-3`, tag, points: 9 } });
    await expectNone(carol, 'query:added', QUIET);
  });

  test('bad filters and non-members register nothing', async () => {
    const alice = await scope.user(server, 'alice');
    for (const query of [{ $where: 'true' }, { a: { $expr: 1 } }, { a: { $function: {} } }, [1], 'x', { a: { $nope: 1 } }]) {
      assertAckError(await emitAck(alice, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'q', query }), 'INVALID_PAYLOAD');
    }
    let deep = 1;
    for (let i = 0; i < 33; i++) deep = { a: deep };
    assertAckError(await emitAck(alice, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'q', query: deep }), 'INVALID_PAYLOAD');
    const dave = await scope.user(server, 'dave');
    assertAckError(await emitAck(dave, 'subscribe:collection', { projectId: 'demo', collectionId: 'tasks' }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'subscribe:document', { projectId: 'demo', collectionId: 'tasks', documentId: 'x' }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'q' }), 'FORBIDDEN');
    assertHttpError(await asUser('dave', docs('tasks')), 403, 'FORBIDDEN');
    assert.ok(alice.connected && dave.connected);
  });

  test('at most 100 live queries per socket', async () => {
    const bob = await scope.user(server, 'bob');
    for (let i = 0; i < 100; i++) {
      assertAckOk(await emitAck(bob, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: `q${i}`, query: { nothing: i } }));
    }
    assertAckError(await emitAck(bob, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'q100' }), 'INVALID_PAYLOAD');
    assertAckOk(await emitAck(bob, 'subscribe:query', { projectId: 'demo', collectionId: 'tasks', queryId: 'q5', query: { again: 1 } }), undefined);
  });
});

describe('REST data API', () => {
  test('list: filter, sort, limit bounds, skip, cursor; bad filters are 400', async () => {
    const c = `list${Date.now()}`;
    for (const [i, n] of [[1, 30], [2, 10], [3, 20], [4, 40]]) {
      const r = await asAdmin(docs(c), { method: 'POST', body: { id: `d${i}`, n, even: n % 20 === 0 } });
      assert.equal(r.status, 201, r.text);
    }
    assertHttpError(await asAdmin(docs(c), { method: 'POST', body: { id: 'd1' } }), 409, 'CONFLICT');
    const gen = await asAdmin(docs(c), { method: 'POST', body: { n: 0 } });
    assert.match(gen.json.id, /^[0-9a-f]{24}$/);
    await asAdmin(`${docs(c)}/${gen.json.id}`, { method: 'DELETE' });

    const q = (s) => asAdmin(`${docs(c)}?${s}`);
    const ids = (r) => r.json.documents.map((d) => d.id);
    assert.deepEqual(ids(await q(`filter=${encodeURIComponent(JSON.stringify({ n: { $gte: 20 } }))}`)), ['d1', 'd3', 'd4']);
    assert.deepEqual(ids(await q('sort=-n')), ['d4', 'd1', 'd3', 'd2']);
    assert.deepEqual(ids(await q('sort=n&skip=1&limit=2')), ['d3', 'd1']);
    const page = await q('limit=2');
    assert.deepEqual(ids(page), ['d1', 'd2']);
    assert.equal(page.json.nextCursor, 'd2');
    assert.deepEqual(ids(await q('limit=2&after=d2')), ['d3', 'd4']);
    assertHttpError(await q('limit=0'), 400, 'INVALID_PAYLOAD');
    assertHttpError(await q('limit=1001'), 400, 'INVALID_PAYLOAD');
    assertHttpError(await q(`filter=${encodeURIComponent('{"$where":"1"}')}`), 400, 'INVALID_PAYLOAD');
    assertHttpError(await q('filter=not-json'), 400, 'INVALID_PAYLOAD');
    assertHttpError(await asAdmin(docs(c), { method: 'POST', body: { $bad: 1 } }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await asAdmin(docs(c), { method: 'POST', body: [1] }), 400, 'INVALID_PAYLOAD');

    const put = await asAdmin(`${docs(c)}/d2`, { method: 'PUT', body: { only: true } });
    assert.deepEqual(put.json, { id: 'd2', only: true });
    assertHttpError(await asAdmin(`${docs(c)}/nope`, { method: 'PUT', body: {} }), 404, 'NOT_FOUND');
    assertHttpError(await asAdmin(`${docs(c)}/nope`, { method: 'PATCH', body: {} }), 404, 'NOT_FOUND');
    assertHttpError(await asAdmin(`${docs(c)}/nope`, { method: 'DELETE' }), 404, 'NOT_FOUND');
  });
});

describe('owner-scoped notes (owner:ownerId)', () => {
  test('a user sees and receives only their own notes; admins see all', async () => {
    const alice = await scope.user(server, 'alice');
    const bob = await scope.user(server, 'bob');
    const admin = await scope.user(server, 'root', { role: 'admin' });
    for (const s of [alice, bob, admin]) {
      assertAckOk(await emitAck(s, 'subscribe:collection', { projectId: 'demo', collectionId: 'notes' }));
    }
    const q = waitFor(alice, 'subscribed');
    assertAckOk(await emitAck(alice, 'subscribe:query', { projectId: 'demo', collectionId: 'notes', queryId: 'mine' }));
    assert.deepEqual((await q).documents.map((d) => d.ownerId), ['alice']);

    const list = await asUser('alice', docs('notes'));
    assert.equal(list.status, 200);
    assert.ok(list.json.documents.every((d) => d.ownerId === 'alice'), list.text);
    assertHttpError(await asUser('alice', `${docs('notes')}/note-bob-1`), 404, 'NOT_FOUND');
    assert.equal((await asAdmin(docs('notes'))).json.documents.length >= 2, true);

    const aliceEvents = record(alice);
    const bobGot = waitFor(bob, 'document:created', DELIVERY);
    const adminGot = waitFor(admin, 'document:created', DELIVERY);
    const created = await asUser('bob', docs('notes'), { method: 'POST', body: { text: 'bob only' } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.ownerId, 'bob', 'the owner field is set to the creator');
    assert.equal((await bobGot).document.text, 'bob only');
    assert.equal((await adminGot).document.ownerId, 'bob');
    await sleep(QUIET);
    assert.deepEqual(aliceEvents.filter((e) => e.args[0]?.document?.ownerId === 'bob' || e.args[0]?.documentId === created.json.id), [],
      `alice received ${JSON.stringify(aliceEvents)}`);

    assertHttpError(await asUser('alice', docs('notes'), { method: 'POST', body: { text: 'x', ownerId: 'bob' } }), 403, 'FORBIDDEN');
    assertHttpError(await asUser('alice', `${docs('notes')}/${created.json.id}`, { method: 'PATCH', body: { text: 'mine now' } }), 404, 'NOT_FOUND');
    assertHttpError(await asUser('alice', `${docs('notes')}/${created.json.id}`, { method: 'DELETE' }), 404, 'NOT_FOUND');
  });
});

async function waitForCount(items, n, ms = DELIVERY) {
  const deadline = Date.now() + ms;
  while (items.length < n) {
    if (Date.now() > deadline) throw new Error(`got ${items.length} of ${n}`);
    await sleep(20);
  }
}
