// Integrations with the official socket.io-client against real services: the REST registry
// (masked secrets, admin-only writes), integration:* events making real HTTP calls to a server
// this file starts on 127.0.0.1, run counters, timeouts and size caps, HMAC-signed webhooks
// reaching subscribers on both nodes, and the SSRF guard of a server without
// INTEGRATION_ALLOW_PRIVATE (contract "Integrations"; docs/protocol.md "Integrations").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import {
  Scope, API_KEY, mintToken, http, assertHttpError, waitFor, expectNone, record, emitAck, within,
  assertAckOk, assertAckError, sleep, uniq, requireServices,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
const TIMEOUT_MS = 1500;
let a; // node A (Redis + MongoDB, private targets allowed)
let b; // node B, same cluster
let guarded; // embedded store, INTEGRATION_ALLOW_PRIVATE unset
let upstream; // the local HTTP server integrations call
let upstreamUrl;
const hits = [];
const hanging = new Set();

function startUpstream() {
  return new Promise((res) => {
    const srv = createServer((req, resp) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const url = new URL(req.url, 'http://x');
        hits.push({ method: req.method, path: url.pathname });
        const query = {};
        for (const [k, v] of url.searchParams) query[k] = k in query ? [].concat(query[k], v) : v;
        const json = (status, v) => {
          resp.writeHead(status, { 'content-type': 'application/json' });
          resp.end(JSON.stringify(v));
        };
        switch (url.pathname) {
          case '/echo':
            return json(200, {
              method: req.method,
              query,
              authorization: req.headers.authorization ?? null,
              contentType: req.headers['content-type'] ?? null,
              body: body ? JSON.parse(body) : null,
            });
          case '/text':
            resp.writeHead(200, { 'content-type': 'text/plain' });
            return resp.end('hello');
          case '/fail':
            return json(500, { error: 'boom' });
          case '/big':
            resp.writeHead(200, { 'content-type': 'text/plain' });
            return resp.end('x'.repeat(2 * 1024 * 1024));
          case '/hang':
            hanging.add(resp);
            return undefined; // never answers
          default:
            return json(404, { error: 'no such path' });
        }
      });
    });
    srv.listen(0, '127.0.0.1', () => res(srv));
  });
}

const sign = (secret, raw) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

function spec(id, extra = {}) {
  return {
    id,
    name: `Upstream ${id}`,
    baseUrl: upstreamUrl,
    endpoints: {
      echo: { method: 'GET', path: '/echo' },
      post: { method: 'POST', path: '/echo' },
      text: { method: 'GET', path: '/text' },
      fail: { method: 'GET', path: '/fail' },
      big: { method: 'GET', path: '/big' },
      hang: { method: 'GET', path: '/hang' },
    },
    headers: { Authorization: 'Bearer upstream-secret-token' },
    webhookSecret: 'whsec-e2e',
    ...extra,
  };
}

async function create(server, body) {
  const r = await http(server, '/api/projects/demo/integrations', { method: 'POST', apiKey: API_KEY, body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function inDemo(server, sub) {
  const s = await scope.user(server, sub);
  assertAckOk(await emitAck(s, 'subscribe:project', 'demo'));
  return s;
}

before(async () => {
  requireServices('integrations.test.mjs');
  upstream = await startUpstream();
  upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  const prefix = uniq('integ');
  const db = uniq('e2e_integ');
  const env = { INTEGRATION_ALLOW_PRIVATE: 'true', INTEGRATION_TIMEOUT_MS: String(TIMEOUT_MS) };
  a = await scope.server({ name: 'integ-a', mongo: true, db, redis: true, prefix, env });
  b = await scope.server({ name: 'integ-b', mongo: true, db, redis: true, prefix, env });
  guarded = await scope.server({ name: 'guarded' });
});

after(async () => {
  for (const r of hanging) r.destroy();
  await new Promise((r) => {
    upstream.closeAllConnections?.();
    upstream.close(r);
  });
});

describe('integration registry (REST)', () => {
  test('create, read masked, patch, replace keeping masked secrets, delete; writers are admins', async () => {
    const id = uniq('reg');
    const created = await create(a, spec(id));
    assert.equal(created.id, id);
    assert.equal(created.projectId, 'demo');
    assert.deepEqual(created.headers, { Authorization: '********' });
    assert.equal(created.webhookSecret, '********');

    const alice = mintToken('alice');
    const list = await http(a, '/api/projects/demo/integrations', { token: alice });
    assert.equal(list.status, 200);
    assert.ok(list.json.integrations.some((i) => i.id === id));
    assert.ok(!list.text.includes('upstream-secret-token') && !list.text.includes('whsec-e2e'), 'secrets never leave');
    const one = await http(b, `/api/projects/demo/integrations/${id}`, { token: alice });
    assert.equal(one.status, 200);
    assert.equal(one.json.headers.Authorization, '********');

    assertHttpError(await http(a, '/api/projects/demo/integrations', { method: 'POST', token: alice, body: spec(uniq('x')) }), 403, 'FORBIDDEN');
    assertHttpError(await http(a, `/api/projects/demo/integrations/${id}`, { method: 'PATCH', token: alice, body: { name: 'x' } }), 403, 'FORBIDDEN');
    assertHttpError(await http(a, `/api/projects/demo/integrations/${id}`, { method: 'DELETE', token: alice }), 403, 'FORBIDDEN');
    assertHttpError(await http(a, `/api/projects/demo/integrations/${id}`, { token: mintToken('dave') }), 403, 'FORBIDDEN');
    assertHttpError(await http(a, '/api/projects/demo/integrations', { method: 'POST', apiKey: API_KEY, body: spec(id) }), 409, 'CONFLICT');
    for (const bad of [
      { ...spec(uniq('b')), baseUrl: 'ftp://example.com' },
      { ...spec(uniq('b')), endpoints: { e: { method: 'TRACE', path: '/' } } },
      { ...spec(uniq('b')), headers: { 'Bad Header': 'v' } },
      { ...spec(uniq('b')), headers: { X: '********' } },
      { ...spec(uniq('b')), unknownField: 1 },
      { name: 'no base url' },
    ]) {
      assertHttpError(await http(a, '/api/projects/demo/integrations', { method: 'POST', apiKey: API_KEY, body: bad }), 400, 'INVALID_PAYLOAD');
    }

    const patched = await http(a, `/api/projects/demo/integrations/${id}`, { method: 'PATCH', apiKey: API_KEY, body: { name: 'Renamed' } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.name, 'Renamed');
    assert.equal(patched.json.headers.Authorization, '********');
    // Sending back what was read (masked) keeps the stored secrets: the upstream still gets them.
    const replaced = await http(a, `/api/projects/demo/integrations/${id}`, { method: 'PUT', apiKey: API_KEY, body: { ...one.json, name: 'Replaced' } });
    assert.equal(replaced.status, 200, replaced.text);
    const sock = await inDemo(a, 'alice');
    const ack = await emitAck(sock, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' });
    assertAckOk(ack);
    assert.equal(ack.data.data.authorization, 'Bearer upstream-secret-token');

    assert.equal((await http(a, `/api/projects/demo/integrations/${id}`, { method: 'DELETE', apiKey: API_KEY })).status, 204);
    assertHttpError(await http(b, `/api/projects/demo/integrations/${id}`, { token: alice }), 404, 'NOT_FOUND');
    assertAckError(await emitAck(sock, 'integration:join', { projectId: 'demo', integrationId: id }), 'NOT_FOUND');
  });
});

describe('integration events', () => {
  let id;
  before(async () => {
    id = uniq('ev');
    await create(a, spec(id));
  });

  test('join, execute with params and body, text and error statuses, counters in status', async () => {
    const alice = await inDemo(a, 'alice');
    const joined = waitFor(alice, 'integration:joined');
    assertAckOk(await emitAck(alice, 'integration:join', { projectId: 'demo', integrationId: id }));
    assert.deepEqual(await joined, { integrationId: id, name: `Upstream ${id}`, status: 'active' });

    const result = waitFor(alice, 'integration:result');
    const ack = await emitAck(alice, 'integration:execute', {
      projectId: 'demo', integrationId: id, endpoint: 'echo', params: { q: 'x y', n: 2, tags: ['a', 'b'] },
    });
    assertAckOk(ack);
    const ev = await result;
    assert.deepEqual(ev, ack.data);
    assert.equal(ev.integrationId, id);
    assert.equal(ev.endpoint, 'echo');
    assert.equal(ev.status, 200);
    assert.equal(typeof ev.durationMs, 'number');
    assert.deepEqual(ev.data.query, { q: 'x y', n: '2', tags: ['a', 'b'] });
    assert.equal(ev.data.authorization, 'Bearer upstream-secret-token');

    const post = await emitAck(alice, 'integration:execute', {
      projectId: 'demo', integrationId: id, endpoint: 'post', requestData: { title: 'hi', n: [1, 2] },
    });
    assertAckOk(post);
    assert.equal(post.data.data.method, 'POST');
    assert.equal(post.data.data.contentType, 'application/json');
    assert.deepEqual(post.data.data.body, { title: 'hi', n: [1, 2] });

    const text = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'text' });
    assert.equal(text.data.data, 'hello');

    const fail = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'fail' });
    assertAckOk(fail);
    assert.equal(fail.data.status, 500);
    assert.deepEqual(fail.data.data, { error: 'boom' });

    // Counters are in MongoDB: node B reads the same figures.
    const bob = await inDemo(b, 'bob');
    const st = waitFor(bob, 'integration:status:response');
    const s1 = await emitAck(bob, 'integration:status', { projectId: 'demo', integrationId: id });
    assertAckOk(s1);
    assert.deepEqual(await st, s1.data);
    assert.equal(s1.data.executions, 4);
    assert.equal(s1.data.failures, 1);
    assert.equal(s1.data.lastError, 'HTTP 500');
    assert.equal(s1.data.status, 'error');
    assert.match(s1.data.lastExecutedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    assertAckOk(await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' }));
    const s2 = await emitAck(bob, 'integration:status', { projectId: 'demo', integrationId: id });
    assert.equal(s2.data.executions, 5);
    assert.equal(s2.data.lastError, null);
    assert.equal(s2.data.status, 'active');

    const left = waitFor(alice, 'integration:left');
    assertAckOk(await emitAck(alice, 'integration:leave', { integrationId: id }));
    assert.deepEqual(await left, { integrationId: id });
  });

  test('integration:test reports ok/status without counting', async () => {
    const alice = await inDemo(a, 'alice');
    const before_ = (await emitAck(alice, 'integration:status', { projectId: 'demo', integrationId: id })).data.executions;
    const got = waitFor(alice, 'integration:test:result');
    const ok = await emitAck(alice, 'integration:test', { projectId: 'demo', integrationId: id, endpoint: 'echo' });
    assertAckOk(ok);
    const ev = await got;
    assert.deepEqual(ev, ok.data);
    assert.equal(ev.ok, true);
    assert.equal(ev.status, 200);
    assert.equal(typeof ev.durationMs, 'number');
    const bad = await emitAck(alice, 'integration:test', { projectId: 'demo', integrationId: id, endpoint: 'fail' });
    assert.equal(bad.data.ok, false);
    assert.equal(bad.data.status, 500);
    const after_ = (await emitAck(alice, 'integration:status', { projectId: 'demo', integrationId: id })).data.executions;
    assert.equal(after_, before_);
  });

  test('a never-answering endpoint times out as UNAVAILABLE without holding up the socket', async () => {
    const alice = await inDemo(a, 'alice');
    const errs = record(alice, 'integration:error');
    const started = Date.now();
    const slow = emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'hang' }, within(TIMEOUT_MS + 5000));
    // The socket's other events are answered meanwhile.
    const quick = await emitAck(alice, 'integration:status', { projectId: 'demo', integrationId: id });
    assertAckOk(quick);
    assert.ok(Date.now() - started < TIMEOUT_MS, 'status answered while the call hangs');
    const ack = await slow;
    assertAckError(ack, 'UNAVAILABLE');
    assert.match(ack.error.message, /did not answer/);
    const waited = Date.now() - started;
    assert.ok(waited >= TIMEOUT_MS - 100 && waited < TIMEOUT_MS + 4000, `timed out after ${waited} ms`);
    await sleep(50);
    assert.equal(errs.length, 1);
    assert.deepEqual(errs[0], { integrationId: id, code: 'UNAVAILABLE', message: ack.error.message });

    const st = (await emitAck(alice, 'integration:status', { projectId: 'demo', integrationId: id })).data;
    assert.equal(st.status, 'error');
    assert.match(st.lastError, /did not answer/);

    const t = await emitAck(alice, 'integration:test', { projectId: 'demo', integrationId: id, endpoint: 'hang' }, within(TIMEOUT_MS + 5000));
    assertAckOk(t);
    assert.equal(t.data.ok, false);
    assert.equal(t.data.status, null);
  });

  test('a response over 1 MiB is refused', async () => {
    const alice = await inDemo(a, 'alice');
    const ack = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'big' }, within(8000));
    assertAckError(ack, 'UNAVAILABLE');
    assert.match(ack.error.message, /exceeds/);
  });

  test('denials and bad payloads answer integration:error and call nothing', async () => {
    const alice = await inDemo(a, 'alice');
    const dave = await scope.user(a, 'dave');
    const hitsBefore = hits.length;
    const errs = record(dave, 'integration:error');
    const generic = record(dave, 'error');
    assertAckError(await emitAck(dave, 'integration:join', { projectId: 'demo', integrationId: id }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'integration:webhook:subscribe', { projectId: 'demo', integrationId: id }), 'FORBIDDEN');
    assertAckError(await emitAck(dave, 'integration:status', { projectId: 'demo', integrationId: id }), 'FORBIDDEN');
    // Another project's id for the same integration is not found.
    assertAckError(await emitAck(dave, 'integration:join', { projectId: 'acme', integrationId: id }), 'NOT_FOUND');
    await sleep(100);
    assert.equal(errs.length, 5);
    assert.deepEqual(errs[0].integrationId, id);
    assert.equal(errs[0].code, 'FORBIDDEN');
    assert.deepEqual(generic, [], 'integration failures use integration:error, not error');

    assertAckError(await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'nope' }), 'NOT_FOUND');
    assertAckError(await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: 'missing' , endpoint: 'echo' }), 'NOT_FOUND');
    for (const bad of [
      { projectId: 'demo', integrationId: id },
      { projectId: 'demo', integrationId: id, endpoint: 5 },
      { projectId: 'demo', integrationId: id, endpoint: 'echo', params: { o: { nested: 1 } } },
      { projectId: 'demo', integrationId: id, endpoint: 'echo', params: 'q=1' },
      { integrationId: id, endpoint: 'echo' },
      'x',
      null,
    ]) {
      assertAckError(await emitAck(alice, 'integration:execute', bad), 'INVALID_PAYLOAD');
    }
    assertAckError(await emitAck(alice, 'integration:join', { projectId: 'demo' }), 'INVALID_PAYLOAD');
    assertAckError(await emitAck(alice, 'integration:leave', {}), 'INVALID_PAYLOAD');

    const off = uniq('off');
    await create(a, spec(off, { enabled: false }));
    const j = await emitAck(alice, 'integration:join', { projectId: 'demo', integrationId: off });
    assert.equal(j.data.status, 'disabled');
    assertAckError(await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: off, endpoint: 'echo' }), 'FORBIDDEN');
    assert.equal(hits.length, hitsBefore, 'no denied call reached the upstream');
  });
});

describe('webhooks', () => {
  let id;
  before(async () => {
    id = uniq('wh');
    await create(a, spec(id));
  });

  const post = (server, path, raw, headers = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw, signal: AbortSignal.timeout(5000) });

  test('a signed webhook is stored and reaches subscribers on both nodes once; bad ones change nothing', async () => {
    const bobA = await inDemo(a, 'bob');
    const bobB = await inDemo(b, 'bob');
    const carol = await inDemo(b, 'carol');
    for (const s of [bobA, bobB]) {
      const subscribed = waitFor(s, 'integration:webhook:subscribed');
      assertAckOk(await emitAck(s, 'integration:webhook:subscribe', { projectId: 'demo', integrationId: id }), { integrationId: id });
      assert.deepEqual(await subscribed, { integrationId: id });
    }
    const gotA = record(bobA, 'integration:webhook');
    const gotB = record(bobB, 'integration:webhook');
    const carolGot = record(carol, 'integration:webhook');

    const raw = JSON.stringify({ event: 'deploy', n: 1 });
    const res = await post(a, `/webhooks/demo/${id}`, raw, { 'x-signature-256': sign('whsec-e2e', raw) });
    assert.equal(res.status, 200);
    const stored = await res.json();
    const deadline = Date.now() + 3000;
    while ((gotA.length < 1 || gotB.length < 1) && Date.now() < deadline) await sleep(20);
    await sleep(300);
    assert.equal(gotA.length, 1);
    assert.equal(gotB.length, 1, 'crossed to node B once');
    assert.deepEqual(gotA[0], { integrationId: id, id: stored.id, body: { event: 'deploy', n: 1 }, receivedAt: stored.receivedAt });
    assert.deepEqual(gotB[0], gotA[0]);
    assert.deepEqual(carolGot, [], 'not subscribed');

    // Bad, missing and malformed signatures: 401, nothing emitted or stored.
    for (const headers of [
      { 'x-signature-256': sign('wrong-secret', raw) },
      {},
      { 'x-signature-256': 'sha256=nothex' },
      { 'x-signature-256': sign('whsec-e2e', raw).replace('sha256=', '') },
    ]) {
      const r = await post(b, `/webhooks/demo/${id}`, raw, headers);
      assert.equal(r.status, 401);
      assert.equal((await r.json()).error.code, 'UNAUTHORIZED');
    }
    const tampered = JSON.stringify({ event: 'deploy', n: 2 });
    assert.equal((await post(a, `/webhooks/demo/${id}`, tampered, { 'x-signature-256': sign('whsec-e2e', raw) })).status, 401);
    // Unknown or another project's integration: the same 401 (existence is not revealed).
    assert.equal((await post(a, `/webhooks/acme/${id}`, raw, { 'x-signature-256': sign('whsec-e2e', raw) })).status, 401);
    assert.equal((await post(a, `/webhooks/demo/nope`, raw, { 'x-signature-256': sign('whsec-e2e', raw) })).status, 401);
    const huge = 'x'.repeat(1024 * 1024 + 10);
    assert.equal((await post(a, `/webhooks/demo/${id}`, huge, { 'x-signature-256': sign('whsec-e2e', huge) })).status, 413);
    await sleep(300);
    assert.equal(gotA.length, 1);
    assert.equal(gotB.length, 1);

    // A text body is stored as a string.
    const text = 'plain text payload';
    assert.equal((await post(b, `/webhooks/demo/${id}`, text, { 'content-type': 'text/plain', 'x-signature-256': sign('whsec-e2e', text) })).status, 200);
    const until = Date.now() + 3000;
    while (gotA.length < 2 && Date.now() < until) await sleep(20);
    assert.equal(gotA[1]?.body, text);

    const list = await http(a, `/api/projects/demo/integrations/${id}/webhook-events`, { token: mintToken('alice') });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.events.map((e) => e.body), [text, { event: 'deploy', n: 1 }]);
    assertHttpError(await http(a, `/api/projects/demo/integrations/${id}/webhook-events`, { token: mintToken('dave') }), 403, 'FORBIDDEN');

    const unsub = waitFor(bobB, 'integration:webhook:unsubscribed');
    assertAckOk(await emitAck(bobB, 'integration:webhook:unsubscribe', { integrationId: id }));
    assert.deepEqual(await unsub, { integrationId: id });
    const before_ = gotB.length;
    const raw3 = '{"n":3}';
    assert.equal((await post(a, `/webhooks/demo/${id}`, raw3, { 'x-signature-256': sign('whsec-e2e', raw3) })).status, 200);
    await expectNone(bobB, 'integration:webhook', 400);
    assert.equal(gotB.length, before_);
  });

  test('an integration without webhookSecret refuses webhooks', async () => {
    const bare = uniq('bare');
    const s = spec(bare);
    delete s.webhookSecret;
    await create(a, s);
    const raw = '{}';
    const r = await post(a, `/webhooks/demo/${bare}`, raw, { 'x-signature-256': sign('', raw) });
    assert.equal(r.status, 401);
  });
});

describe('SSRF guard (INTEGRATION_ALLOW_PRIVATE unset)', () => {
  test('loopback, private, link-local and metadata targets are refused before any connection', async () => {
    const port = upstream.address().port;
    const alice = await inDemo(guarded, 'alice');
    const hitsBefore = hits.length;
    for (const baseUrl of [
      `http://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `http://[::1]:${port}`,
      `http://2130706433:${port}`,
      'http://169.254.169.254',
      'http://10.0.0.1',
      'http://192.168.0.1',
      'http://[::ffff:127.0.0.1]',
    ]) {
      const id = uniq('ssrf');
      await create(guarded, spec(id, { baseUrl }));
      const ack = await emitAck(alice, 'integration:execute', { projectId: 'demo', integrationId: id, endpoint: 'echo' }, within(8000));
      assertAckError(ack, 'FORBIDDEN');
      assert.match(ack.error.message, /INTEGRATION_ALLOW_PRIVATE/, baseUrl);
      assertAckError(await emitAck(alice, 'integration:test', { projectId: 'demo', integrationId: id, endpoint: 'echo' }, within(8000)), 'FORBIDDEN');
    }
    assert.equal(hits.length, hitsBefore, 'nothing reached the local server');
  });
});
