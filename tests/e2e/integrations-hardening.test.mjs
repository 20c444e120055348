// Hostile use of integrations and webhooks against the server binary: an ambient HTTP(S)_PROXY
// must not carry integration calls past the SSRF guard; replayed, stale or unsigned webhooks;
// webhook rate and size limits; concurrent creation of one integration id by two projects
// (embedded store, and MongoDB when SB_TEST_MONGODB_URI is set).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import {
  Scope, API_KEY, mintToken, http, assertHttpError, emitAck, within, assertAckError, assertAckOk,
  record, sleep, uniq,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
const SECRET = 'whsec-hardening';

const hex = (secret, data) => createHmac('sha256', secret).update(data).digest('hex');
const sign = (secret, raw) => `sha256=${hex(secret, raw)}`;

function spec(id, extra = {}) {
  return {
    id,
    name: `Hardening ${id}`,
    baseUrl: 'https://example.invalid',
    endpoints: { echo: { method: 'GET', path: '/echo' } },
    headers: { Authorization: 'Bearer integration-secret-token' },
    webhookSecret: SECRET,
    ...extra,
  };
}

async function create(server, body, project = 'demo') {
  const r = await http(server, `/api/projects/${project}/integrations`, { method: 'POST', apiKey: API_KEY, body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const post = (server, path, raw, headers = {}) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
    signal: AbortSignal.timeout(5000),
  });

/** A fake forward proxy that records every request (plain and CONNECT) and answers 200. */
function startProxy() {
  const seen = [];
  const srv = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"via":"proxy"}');
  });
  srv.on('connect', (req, sock) => {
    seen.push(`CONNECT ${req.url}`);
    sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
  });
  return new Promise((res) => srv.listen(0, '127.0.0.1', () => res({ srv, seen })));
}

describe('SSRF guard with an ambient proxy', () => {
  let proxy;
  let server;
  before(async () => {
    proxy = await startProxy();
    const url = `http://127.0.0.1:${proxy.srv.address().port}`;
    server = await scope.server({
      name: 'proxied',
      env: { HTTP_PROXY: url, HTTPS_PROXY: url, ALL_PROXY: url, http_proxy: url, https_proxy: url, all_proxy: url },
    });
  });
  after(async () => {
    proxy.srv.closeAllConnections?.();
    await new Promise((r) => proxy.srv.close(r));
  });

  test('integration calls never go through HTTP(S)_PROXY: localhost is refused and the proxy sees nothing', async () => {
    const alice = await scope.user(server, 'alice');
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'));
    const local = uniq('proxied');
    await create(server, spec(local, { baseUrl: 'http://localhost:9' }));
    const ack = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: local, endpoint: 'echo' }, within(8000));
    assertAckError(ack, 'FORBIDDEN');
    assertAckError(await emitAck(alice, 'integration:test', { projectId: 'demo', integrationId: local, endpoint: 'echo' }, within(8000)), 'FORBIDDEN');
    // A name only the proxy could resolve is not reached either (it fails to resolve here).
    const meta = uniq('meta');
    await create(server, spec(meta, { baseUrl: 'http://metadata.google.internal' }));
    const m = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: meta, endpoint: 'echo' }, within(8000));
    assert.ok(m.error, `metadata.google.internal must not answer: ${JSON.stringify(m)}`);
    assert.deepEqual(proxy.seen, [], 'the proxy received nothing');
  });
});

describe('webhook replays, timestamps and uniform refusals (embedded store)', () => {
  let server;
  let id;
  let bare;
  before(async () => {
    server = await scope.server({ name: 'webhooks' });
    id = uniq('wh');
    await create(server, spec(id));
    bare = uniq('bare');
    const s = spec(bare);
    delete s.webhookSecret;
    await create(server, s);
  });

  const events = async (integ) => {
    const r = await http(server, `/api/projects/demo/integrations/${integ}/webhook-events`, { token: mintToken('alice') });
    assert.equal(r.status, 200, r.text);
    return r.json.events;
  };

  test('the same signed body POSTed three times is stored and emitted once', async () => {
    const bob = await scope.user(server, 'bob');
    assertAckOk(await emitAck(bob, 'subscribe:project', 'demo'));
    assertAckOk(await emitAck(bob, 'integration:webhook:subscribe', { projectId: 'demo', integrationId: id }));
    const got = record(bob, 'integration:webhook');
    const raw = JSON.stringify({ event: 'deploy', n: 1 });
    const headers = { 'x-signature-256': sign(SECRET, raw) };
    const first = await post(server, `/webhooks/demo/${id}`, raw, headers);
    assert.equal(first.status, 200);
    const stored = await first.json();
    assert.ok(stored.id, JSON.stringify(stored));
    for (let n = 0; n < 2; n++) {
      const again = await post(server, `/webhooks/demo/${id}`, raw, headers);
      assert.equal(again.status, 200, 'a replay is acknowledged (senders stop retrying)');
      assert.deepEqual(await again.json(), { duplicate: true });
    }
    await sleep(300);
    assert.equal(got.length, 1, 'emitted once');
    const list = await events(id);
    assert.deepEqual(list.map((e) => e.id), [stored.id], 'stored once');
    assert.deepEqual(Object.keys(list[0]).sort(), ['body', 'id', 'integrationId', 'projectId', 'receivedAt']);
  });

  test('a delivery id seen before is a duplicate even with a new body; a new one is not', async () => {
    const one = JSON.stringify({ delivery: 1 });
    const two = JSON.stringify({ delivery: 2 });
    const r1 = await post(server, `/webhooks/demo/${id}`, one, { 'x-signature-256': sign(SECRET, one), 'x-github-delivery': 'd-1' });
    assert.equal(r1.status, 200);
    assert.ok((await r1.json()).id);
    const r2 = await post(server, `/webhooks/demo/${id}`, two, { 'x-signature-256': sign(SECRET, two), 'x-github-delivery': 'd-1' });
    assert.deepEqual(await r2.json(), { duplicate: true });
    const r3 = await post(server, `/webhooks/demo/${id}`, two, { 'x-signature-256': sign(SECRET, two), 'x-github-delivery': 'd-2' });
    assert.ok((await r3.json()).id, 'same body under a new delivery id but a signature already seen');
  });

  test('a signed timestamp must be fresh and covered by the signature', async () => {
    const raw = JSON.stringify({ stamped: true });
    const now = Math.floor(Date.now() / 1000);
    const stamped = (ts, body = raw) => `sha256=${hex(SECRET, `${ts}.${body}`)}`;
    const ok = await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-timestamp': String(now), 'x-signature-256': stamped(now) });
    assert.equal(ok.status, 200);
    assert.ok((await ok.json()).id);
    // The same body signed with a later timestamp is a new delivery.
    const later = await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-timestamp': String(now + 1), 'x-signature-256': stamped(now + 1) });
    assert.ok((await later.json()).id);
    const stale = now - 3600;
    const old = await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-timestamp': String(stale), 'x-signature-256': stamped(stale) });
    assert.equal(old.status, 401);
    assert.match((await old.json()).error.message, /tolerance/);
    // A timestamp the signature does not cover (plain body signature, or another timestamp).
    const plain = await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-timestamp': String(now), 'x-signature-256': sign(SECRET, raw) });
    assert.equal(plain.status, 401);
    const moved = await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-timestamp': String(now + 2), 'x-signature-256': stamped(now) });
    assert.equal(moved.status, 401);
  });

  test('unknown integration, other project, no secret and bad signature get one identical answer', async () => {
    const raw = JSON.stringify({ probe: true });
    const answers = [];
    for (const [path, headers] of [
      [`/webhooks/demo/${id}`, { 'x-signature-256': sign('wrong', raw) }],
      [`/webhooks/demo/${id}`, {}],
      [`/webhooks/demo/${id}`, { 'x-signature-256': 'sha256=zz' }],
      [`/webhooks/demo/${uniq('nope')}`, { 'x-signature-256': sign(SECRET, raw) }],
      [`/webhooks/demo/${uniq('nope')}`, {}],
      [`/webhooks/acme/${id}`, { 'x-signature-256': sign(SECRET, raw) }],
      [`/webhooks/demo/${bare}`, { 'x-signature-256': sign('', raw) }],
    ]) {
      const r = await post(server, path, raw, headers);
      answers.push({ path, status: r.status, body: await r.text() });
    }
    for (const a of answers) {
      assert.deepEqual({ status: a.status, body: a.body }, { status: answers[0].status, body: answers[0].body }, a.path);
    }
    assert.equal(answers[0].status, 401);
    assert.equal(JSON.parse(answers[0].body).error.code, 'UNAUTHORIZED');
  });
});

describe('webhook cost limits', () => {
  let server;
  let id;
  before(async () => {
    server = await scope.server({ name: 'webhook-limits', env: { WEBHOOK_RATE_PER_SEC: '5', WEBHOOK_RATE_BURST: '10', WEBHOOK_MAX_BYTES: '65536' } });
    id = uniq('lim');
    await create(server, spec(id));
  });

  test('over the body limit is 413 before any signature work', async () => {
    const big = 'x'.repeat(65537);
    const r = await post(server, `/webhooks/demo/${id}`, big, { 'x-signature-256': sign(SECRET, big) });
    assert.equal(r.status, 413);
    const fits = JSON.stringify({ pad: 'x'.repeat(60000) });
    assert.equal((await post(server, `/webhooks/demo/${id}`, fits, { 'x-signature-256': sign(SECRET, fits) })).status, 200);
  });

  test('unsigned floods of one webhook URL get 429 with Retry-After; other URLs are unaffected', async () => {
    const flood = `/webhooks/demo/${uniq('flood')}`;
    const statuses = [];
    let retryAfter = null;
    for (let n = 0; n < 30; n++) {
      const r = await post(server, flood, '{}');
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        assert.equal((await r.json()).error.code, 'RATE_LIMITED');
      } else {
        await r.text();
      }
    }
    assert.ok(statuses.includes(429), JSON.stringify(statuses));
    assert.ok(statuses.filter((s) => s === 401).length <= 12, JSON.stringify(statuses));
    assert.match(String(retryAfter), /^\d+$/);
    const raw = '{"ok":1}';
    assert.equal((await post(server, `/webhooks/demo/${id}`, raw, { 'x-signature-256': sign(SECRET, raw) })).status, 200);
  });
});

/** 60 concurrent creations of one id, alternating between two projects. */
async function raceCreate(server) {
  const id = uniq('race');
  const tries = await Promise.all(
    Array.from({ length: 60 }, (_, n) => {
      const project = n % 2 === 0 ? 'demo' : 'acme';
      return http(server, `/api/projects/${project}/integrations`, {
        method: 'POST', apiKey: API_KEY, body: spec(id, { name: `try ${n}` }), ms: 15_000,
      }).then((r) => ({ project, name: `try ${n}`, r }));
    }),
  );
  const won = tries.filter((t) => t.r.status === 201);
  assert.equal(won.length, 1, `exactly one 201: ${JSON.stringify(tries.map((t) => t.r.status))}`);
  for (const t of tries) if (t.r.status !== 201) assertHttpError(t.r, 409, 'CONFLICT');
  const winner = won[0];
  const got = await http(server, `/api/projects/${winner.project}/integrations/${id}`, { apiKey: API_KEY });
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.name, winner.name, 'the winner\'s integration, not overwritten');
  const loser = winner.project === 'demo' ? 'acme' : 'demo';
  assertHttpError(await http(server, `/api/projects/${loser}/integrations/${id}`, { apiKey: API_KEY }), 404, 'NOT_FOUND');
  // The owner's updates keep working: PUT and PATCH replace, and do not recreate after DELETE.
  const put = await http(server, `/api/projects/${winner.project}/integrations/${id}`, { method: 'PUT', apiKey: API_KEY, body: spec(id, { name: 'replaced' }) });
  assert.equal(put.status, 200, put.text);
  const patch = await http(server, `/api/projects/${winner.project}/integrations/${id}`, { method: 'PATCH', apiKey: API_KEY, body: { name: 'patched' } });
  assert.equal(patch.json.name, 'patched');
  assertHttpError(await http(server, `/api/projects/${loser}/integrations/${id}`, { method: 'PUT', apiKey: API_KEY, body: spec(id) }), 404, 'NOT_FOUND');
  assert.equal((await http(server, `/api/projects/${winner.project}/integrations/${id}`, { method: 'DELETE', apiKey: API_KEY })).status, 204);
  assertHttpError(await http(server, `/api/projects/${winner.project}/integrations/${id}`, { method: 'PUT', apiKey: API_KEY, body: spec(id) }), 404, 'NOT_FOUND');
}

describe('creating an integration is insert-only', () => {
  test('embedded store: one 201, the rest 409, the owner never changes', async () => {
    await raceCreate(await scope.server({ name: 'race-mem' }));
  });
  test('MongoDB: one 201, the rest 409, the owner never changes', { skip: !process.env.SB_TEST_MONGODB_URI && 'SB_TEST_MONGODB_URI unset' }, async () => {
    await raceCreate(await scope.server({ name: 'race-mongo', mongo: true }));
  });
});

describe('per-integration execution limits', () => {
  let upstream;
  let inFlight = 0;
  let maxInFlight = 0;
  before(async () => {
    upstream = createServer((req, res) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight -= 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"slow":true}');
      }, 800);
    });
    await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    upstream.closeAllConnections?.();
    await new Promise((r) => upstream.close(r));
  });

  test('calls of one integration from many sockets are capped at INTEGRATION_MAX_CONCURRENT', async () => {
    const server = await scope.server({
      name: 'exec-limits',
      env: { INTEGRATION_ALLOW_PRIVATE: 'true', INTEGRATION_MAX_CONCURRENT: '2' },
    });
    const id = uniq('slow');
    await create(server, spec(id, { baseUrl: `http://127.0.0.1:${upstream.address().port}` }));
    const sockets = [];
    for (const sub of ['alice', 'bob', 'alice', 'bob', 'alice', 'bob']) {
      const s = await scope.user(server, sub);
      assertAckOk(await emitAck(s, 'subscribe:project', 'demo'));
      sockets.push(s);
    }
    const acks = await Promise.all(sockets.map((s) =>
      emitAck(s, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' }, within(5000))));
    const ok = acks.filter((a) => a.ok);
    const limited = acks.filter((a) => a.error?.code === 'RATE_LIMITED');
    assert.equal(ok.length, 2, JSON.stringify(acks));
    assert.equal(limited.length, 4, JSON.stringify(acks));
    assert.equal(maxInFlight, 2, 'the upstream never saw more than two at once');
    // Finished calls free their places.
    const again = await emitAck(sockets[0], 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' }, within(5000));
    assert.ok(again.ok, JSON.stringify(again));
  });
});

describe('webhook replays across nodes (MongoDB)', () => {
  test('copies of one delivery sent to two nodes at once are stored once', { skip: !process.env.SB_TEST_MONGODB_URI && 'SB_TEST_MONGODB_URI unset' }, async () => {
    const db = uniq('e2e_whx');
    const a = await scope.server({ name: 'whx-a', mongo: true, db });
    const b = await scope.server({ name: 'whx-b', mongo: true, db });
    const id = uniq('whx');
    await create(a, spec(id));
    const raw = JSON.stringify({ crossNode: true });
    const headers = { 'x-signature-256': sign(SECRET, raw) };
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, n) => post(n % 2 ? b : a, `/webhooks/demo/${id}`, raw, headers).then((r) => r.json())),
    );
    assert.equal(answers.filter((x) => x.id).length, 1, JSON.stringify(answers));
    assert.equal(answers.filter((x) => x.duplicate === true).length, 9, JSON.stringify(answers));
    const list = await http(b, `/api/projects/demo/integrations/${id}/webhook-events`, { token: mintToken('alice') });
    assert.equal(list.json.events.length, 1, list.text);
  });
});
