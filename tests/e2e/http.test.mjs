// Operational HTTP endpoints (contract: "Operations", "Decisions that close gaps" → /health, /ready).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import {
  Scope, http, emitAck, assertAckOk, sleep, mintToken, waitReady,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'http' });
});

async function metrics(s = server) {
  const res = await http(s, '/metrics');
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/, 'Prometheus text format');
  return res.text;
}

/** The value of an un-labelled or exactly-labelled sample line, or undefined. */
function sample(text, name) {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc}\\s+([0-9.eE+-]+)\\s*$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('/health and /ready', () => {
  test('/health → 200 {"status":"ok"}', async () => {
    const res = await http(server, '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'ok' });
  });

  test('/ready → 200 (embedded store, no Redis)', async () => {
    const res = await http(server, '/ready');
    assert.equal(res.status, 200, res.text);
  });

  test('/ready → 200 with MongoDB and Redis configured', { skip: !(process.env.SB_TEST_MONGODB_URI && process.env.SB_TEST_REDIS_URL) && 'SB_TEST_MONGODB_URI / SB_TEST_REDIS_URL not set (run scripts/test --e2e)' }, async () => {
    const s = await scope.server({ name: 'http-services', mongo: true, redis: true });
    await waitReady(s, 15_000);
    const h = await http(s, '/health');
    assert.deepEqual([h.status, h.json], [200, { status: 'ok' }]);
    await s.stop();
  });

  test('/ready → 503 naming redis when Redis goes down; /health stays 200; SIGTERM still exits 0', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const redisExited = new Promise((r) => redis.once('exit', r));
    const spawnErr = new Promise((_, rej) => redis.once('error', (e) => rej(new Error(`cannot run redis-server: ${e.message} (scripts/test installs it)`))));
    try {
      await Promise.race([waitPort(port, 10_000), spawnErr]);
      const s = await scope.server({ name: 'http-redis-down', redis: `redis://127.0.0.1:${port}/?protocol=resp3` });
      await waitReady(s, 15_000);
      redis.kill('SIGKILL');
      await redisExited;
      let res;
      const deadline = Date.now() + 10_000;
      do {
        await sleep(100);
        res = await http(s, '/ready');
      } while (res.status === 200 && Date.now() < deadline);
      assert.equal(res.status, 503, `/ready with Redis down: ${res.status} ${res.text}`);
      assert.match(res.text, /redis/i, 'the 503 body names the service that is down');
      const h = await http(s, '/health');
      assert.deepEqual([h.status, h.json], [200, { status: 'ok' }]);
      await s.stop();
    } finally {
      redis.kill('SIGKILL');
    }
  });
});

describe('/metrics', () => {
  test('is Prometheus text with switchboard_connections and per-event counters', async () => {
    const alice = await scope.user(server, 'alice');
    assertAckOk(await emitAck(alice, 'subscribe:project', 'demo'));
    const text = await metrics();
    assert.ok(text.includes('switchboard_connections'), text);
    assert.ok(text.includes('switchboard_events_total{event="subscribe:project"}'), text);
    assert.ok(sample(text, 'switchboard_events_total{event="subscribe:project"}') >= 1, text);
    assert.ok(sample(text, 'switchboard_connections') >= 1, `connections gauge while a socket is open:\n${text}`);
    alice.close();
  });

  test('the connections gauge follows connects and disconnects', async () => {
    const before = sample(await metrics(), 'switchboard_connections');
    assert.equal(typeof before, 'number');
    const a = await scope.user(server, 'alice');
    const b = await scope.user(server, 'bob', {}, { transports: ['polling'] });
    assert.equal(sample(await metrics(), 'switchboard_connections'), before + 2);
    a.close();
    b.close();
    let now;
    const deadline = Date.now() + 5_000;
    do {
      await sleep(50);
      now = sample(await metrics(), 'switchboard_connections');
    } while (now !== before && Date.now() < deadline);
    assert.equal(now, before, 'gauge returns to its previous value after the sockets close');
  });

  test('event counters increase and errors are counted by code', async () => {
    const s = await scope.user(server, 'carol');
    const count = (t) => sample(t, 'switchboard_events_total{event="subscribe:project"}') ?? 0;
    const before = await metrics();
    assertAckOk(await emitAck(s, 'subscribe:project', 'demo'));
    assertAckOk(await emitAck(s, 'subscribe:project', { projectId: 'demo' }));
    const ack = await emitAck(s, 'subscribe:project', 'acme');
    assert.equal(ack.error?.code, 'FORBIDDEN');
    const after = await metrics();
    assert.ok(count(after) >= count(before) + 3, `${count(before)} → ${count(after)}`);
    const forbidden = after.split('\n').filter((l) => !l.startsWith('#') && l.includes('FORBIDDEN'));
    assert.ok(forbidden.length >= 1, `an errors-by-code sample for FORBIDDEN:\n${after}`);
    assert.ok(forbidden.some((l) => Number(l.trim().split(/\s+/).pop()) >= 1), forbidden.join('\n'));
    s.close();
  });
});

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function waitPort(port, ms) {
  const { connect } = await import('node:net');
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((r) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); r(true); });
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${ms} ms`);
    await sleep(50);
  }
}
