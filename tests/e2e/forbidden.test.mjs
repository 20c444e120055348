// Authorization: project membership over Socket.IO and REST (contract: "Connection",
// "Acks and errors", "Decisions that close gaps" → emit rooms).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, mintToken, http, assertHttpError, waitFor, record, emitAck,
  assertAckOk, assertAckError, assertErrorEvent, sleep,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'forbidden' });
});

/** Emits with an ack and also captures the `error` event that must accompany a failure. */
async function failing(socket, event, payload, code) {
  const errEv = waitFor(socket, 'error', 2_000);
  const ack = await emitAck(socket, event, payload);
  assertAckError(ack, code);
  const body = await errEv;
  assertErrorEvent(body, event, code);
  assert.deepEqual(Object.keys(body).sort(), ['code', 'event', 'message']);
  return { ack, body };
}

describe('Socket.IO', () => {
  let alice, dave;
  before(async () => {
    alice = await scope.user(server, 'alice');
    dave = await scope.user(server, 'dave');
    assertAckOk(await emitAck(dave, 'subscribe:project', 'acme'), { projectId: 'acme' });
  });

  test('subscribe:project to a project the user is not a member of → FORBIDDEN ack and error event', async () => {
    await failing(alice, 'subscribe:project', 'acme', 'FORBIDDEN');
    await failing(alice, 'subscribe:project', { projectId: 'acme' }, 'FORBIDDEN');
  });

  test('a refused subscribe does not join the room', async () => {
    const aliceGot = record(alice, 'custom:event');
    const daveGot = waitFor(dave, 'probe');
    // an admin (API key socket) posts into acme; alice must not see it
    const admin = await scope.connect(server, { apiKey: API_KEY });
    assertAckOk(await emitAck(admin, 'custom:event', { projectId: 'acme', probe: 1 }));
    const res = await http(server, '/api/projects/acme/emit', { method: 'POST', apiKey: API_KEY, body: { event: 'probe', payload: {} } });
    assert.equal(res.status, 202, res.text);
    await daveGot;
    await sleep(300);
    assert.deepEqual(aliceGot, []);
    aliceGot.stop();
    admin.close();
  });

  test('custom:event to a foreign project → FORBIDDEN, and its subscribers receive nothing', async () => {
    const daveAll = record(dave);
    await failing(alice, 'custom:event', { projectId: 'acme', hello: 'intruder' }, 'FORBIDDEN');
    await sleep(400);
    assert.deepEqual(daveAll, [], `dave received ${JSON.stringify(daveAll)}`);
    daveAll.stop();
  });

  test('a project that does not exist → FORBIDDEN for a user', async () => {
    await failing(alice, 'subscribe:project', 'no-such-project', 'FORBIDDEN');
    await failing(alice, 'subscribe:project', { projectId: 'no-such-project' }, 'FORBIDDEN');
    await failing(alice, 'custom:event', { projectId: 'no-such-project', x: 1 }, 'FORBIDDEN');
  });

  test('the socket stays usable after refusals', async () => {
    assert.equal(alice.connected, true);
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
  });

  test('a member of one project only (dave) is refused demo', async () => {
    await failing(dave, 'subscribe:project', 'demo', 'FORBIDDEN');
    await failing(dave, 'custom:event', { projectId: 'demo' }, 'FORBIDDEN');
  });
});

describe('REST', () => {
  const aliceToken = () => mintToken('alice');

  test('GET /api/projects/acme as alice (Bearer JWT) → 403 FORBIDDEN', async () => {
    assertHttpError(await http(server, '/api/projects/acme', { token: aliceToken() }), 403, 'FORBIDDEN');
  });

  test('GET /api/projects/demo as alice → 200 with the project', async () => {
    const res = await http(server, '/api/projects/demo', { token: aliceToken() });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.id, 'demo');
    assert.ok(Array.isArray(res.json.members) && res.json.members.includes('alice'), res.text);
  });

  test('no credentials → 401 UNAUTHORIZED', async () => {
    assertHttpError(await http(server, '/api/projects/acme'), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/projects'), 401, 'UNAUTHORIZED');
    assertHttpError(
      await http(server, '/api/projects/demo/emit', { method: 'POST', body: { event: 'x', payload: {} } }),
      401,
      'UNAUTHORIZED',
    );
  });

  test('bad credentials → 401 UNAUTHORIZED', async () => {
    assertHttpError(await http(server, '/api/projects', { token: 'garbage' }), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/projects', { token: mintToken('alice', { exp: Math.floor(Date.now() / 1000) - 3600 }) }), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/projects', { apiKey: 'wrong-key' }), 401, 'UNAUTHORIZED');
  });

  test('emit with a user token → 403 FORBIDDEN, nothing delivered', async () => {
    const bob = await scope.user(server, 'bob');
    const bobAll = record(bob);
    const res = await http(server, '/api/projects/demo/emit', {
      method: 'POST',
      token: aliceToken(),
      body: { room: 'user:bob', event: 'ping:test', payload: { n: 1 } },
    });
    assertHttpError(res, 403, 'FORBIDDEN');
    await sleep(300);
    assert.deepEqual(bobAll, []);
    bob.close();
  });

  test('emit via /api/projects/demo/emit into rooms of another project → 403, nothing delivered', async () => {
    const dave = await scope.user(server, 'dave');
    assertAckOk(await emitAck(dave, 'subscribe:project', 'acme'));
    const daveAll = record(dave);
    for (const room of ['project:acme', 'user:dave', 'chat:acme-lobby', 'custom:acme:lobby', 'collection:acme:tasks']) {
      const res = await http(server, '/api/projects/demo/emit', {
        method: 'POST',
        apiKey: API_KEY,
        body: { room, event: 'ping:test', payload: { room } },
      });
      assertHttpError(res, 403, 'FORBIDDEN');
    }
    await sleep(300);
    assert.deepEqual(daveAll, [], `dave received ${JSON.stringify(daveAll)}`);
    // control: the same key may emit into acme's own room
    const got = waitFor(dave, 'ping:test');
    const ok = await http(server, '/api/projects/acme/emit', {
      method: 'POST',
      apiKey: API_KEY,
      body: { room: 'project:acme', event: 'ping:test', payload: { ok: true } },
    });
    assert.equal(ok.status, 202, ok.text);
    assert.deepEqual(await got, { ok: true });
    dave.close();
  });

  test('emit with an admin-role JWT is allowed (202)', async () => {
    const alice = await scope.user(server, 'alice');
    const got = waitFor(alice, 'ping:admin');
    const res = await http(server, '/api/projects/demo/emit', {
      method: 'POST',
      token: mintToken('root', { role: 'admin' }),
      body: { room: 'user:alice', event: 'ping:admin', payload: { a: 1 } },
    });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(await got, { a: 1 });
    alice.close();
  });

  test('GET /api/projects as alice lists only demo; with the API key lists both', async () => {
    const mine = await http(server, '/api/projects', { token: aliceToken() });
    assert.equal(mine.status, 200, mine.text);
    assert.ok(Array.isArray(mine.json?.projects), mine.text);
    assert.deepEqual(mine.json.projects.map((p) => p.id).sort(), ['demo']);

    const all = await http(server, '/api/projects', { apiKey: API_KEY });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json.projects.map((p) => p.id).sort(), ['acme', 'demo']);

    const dave = await http(server, '/api/projects', { token: mintToken('dave') });
    assert.deepEqual(dave.json.projects.map((p) => p.id).sort(), ['acme']);
  });
});
