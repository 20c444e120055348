// Data lives in MongoDB: a restarted server on the same database still has the seeded projects
// (contract: "Seeded demo data", "Operations" → MONGODB_URI / MONGODB_DB / SEED_DEMO).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, uniq, requireMongo, http, mintToken, emitAck, assertAckOk, waitReady,
} from './lib/harness.mjs';

const scope = new Scope().hooks();

before(() => {
  requireMongo('persistence.test.mjs');
});

const projectIds = async (server) => {
  const res = await http(server, '/api/projects', { apiKey: API_KEY });
  assert.equal(res.status, 200, res.text);
  assert.ok(Array.isArray(res.json?.projects), res.text);
  return res.json.projects.map((p) => p.id).sort();
};

test('seeded projects survive a restart on the same database (second start with SEED_DEMO=false)', async () => {
  const db = uniq('e2e_persist');

  const first = await scope.server({ name: 'persist-1', mongo: true, db, seed: true });
  await waitReady(first);
  assert.deepEqual(await projectIds(first), ['acme', 'demo']);
  await first.stop();

  const second = await scope.server({ name: 'persist-2', mongo: true, db, seed: false });
  await waitReady(second);
  assert.deepEqual(await projectIds(second), ['acme', 'demo']);
  // membership comes from the stored data too
  const alice = await scope.user(second, 'alice');
  assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'), { projectId: 'demo' });
  const ack = await emitAck(alice, 'subscribe:project', 'acme');
  assert.equal(ack?.error?.code, 'FORBIDDEN', JSON.stringify(ack));
  const mine = await http(second, '/api/projects', { token: mintToken('alice') });
  assert.deepEqual(mine.json.projects.map((p) => p.id), ['demo']);
  alice.close();
  await second.stop();
});

test('restarting with SEED_DEMO=true on a seeded database does not duplicate the projects', async () => {
  const db = uniq('e2e_persist');
  const first = await scope.server({ name: 'reseed-1', mongo: true, db, seed: true });
  await waitReady(first);
  await first.stop();
  const second = await scope.server({ name: 'reseed-2', mongo: true, db, seed: true });
  await waitReady(second);
  assert.deepEqual(await projectIds(second), ['acme', 'demo']);
  await second.stop();
});

test('control: a fresh database with SEED_DEMO=false has no projects', async () => {
  const s = await scope.server({ name: 'persist-empty', mongo: true, db: uniq('e2e_empty'), seed: false });
  await waitReady(s);
  assert.deepEqual(await projectIds(s), []);
  await s.stop();
});
