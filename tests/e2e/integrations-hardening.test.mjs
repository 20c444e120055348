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
