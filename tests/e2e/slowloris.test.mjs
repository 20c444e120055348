// Connections that never finish a request (docs/security.md, "Limits"): connections that send
// nothing or trickle their headers are closed after HEADER_READ_TIMEOUT_MS, the open-connection
// caps (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP) close the excess at once, and a server out of
// file descriptors keeps running and answers /health again once the stalled connections are
// gone. Long-polling requests and WebSockets are not cut by the header timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Scope, emitAck, assertAckOk, sleep, requireBin, http, JWT_SECRET, SEEDS_DIR } from './lib/harness.mjs';

const scope = new Scope().hooks();

/** A raw TCP connection that records when the server closes it. */
function rawConnection(url, { localAddress } = {}) {
  const { hostname, port } = new URL(url);
  const sock = net.connect({ host: hostname, port: Number(port), localAddress });
  const state = { sock, closedAt: null, opened: Date.now() };
  sock.on('error', () => {});
  sock.on('close', () => {
    state.closedAt = Date.now();
  });
  state.ready = new Promise((res) => {
    sock.once('connect', res);
    sock.once('close', res);
  });
  return state;
}

/** Sends a request's headers one byte every `ms` until the server closes the connection. */
async function trickle(conn, ms) {
  const head = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(4096);
  for (const ch of head) {
    if (conn.closedAt !== null) return;
    conn.sock.write(ch);
    await sleep(ms);
  }
}

async function waitClosed(conns, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && conns.some((c) => c.closedAt === null)) await sleep(50);
  return conns.filter((c) => c.closedAt === null).length;
}

/** GET /health until it answers 200 or `ms` pass; returns the seconds it took or null. */
async function healthWithin(url, ms) {
  const started = Date.now();
  while (Date.now() - started < ms) {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3_000) });
      if (res.status === 200) return (Date.now() - started) / 1000;
    } catch {
      /* not yet */
    }
    await sleep(200);
  }
  return null;
}

/** The server under `prlimit --nofile=N:N`, so that 200 connections exhaust its descriptors. */
async function startWithFdLimit(nofile, env) {
  const child = spawn('prlimit', [`--nofile=${nofile}:${nofile}`, requireBin()], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      JWT_SECRET,
      SEEDS_DIR,
      RUST_LOG: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr = (stderr + c).slice(-64 * 1024);
  });
  const url = await new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`no listening line within 30 s:\n${stderr}`)), 30_000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /switchboard listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited ${code} before listening:\n${stderr}`));
    });
  });
  return { url, child, get stderr() { return stderr; } };
}

test('200 silent or trickling connections on a 200-descriptor server: all closed, /health answers again within 60 s', async (t) => {
  const server = await startWithFdLimit(200, { HEADER_READ_TIMEOUT_MS: '2000' });
  const conns = [];
  try {
    for (let i = 0; i < 200; i++) conns.push(rawConnection(server.url));
    await Promise.all(conns.map((c) => c.ready));
    // Half send nothing, half trickle headers (a byte every 300 ms, never finishing).
    for (const c of conns.slice(100)) trickle(c, 300);
    const took = await healthWithin(server.url, 60_000);
    assert.ok(took !== null, `/health did not answer within 60 s\n${server.stderr}`);
    const open = await waitClosed(conns, 60_000 - took * 1000);
    assert.equal(open, 0, `${open} of 200 stalled connections still open after 60 s`);
    const warns = server.stderr.split('\n').filter((l) => /accept failed/.test(l)).length;
    const last = Math.max(...conns.map((c) => c.closedAt - c.opened)) / 1000;
    t.diagnostic(`/health answered after ${took.toFixed(1)} s; the last stalled connection was closed after ${last.toFixed(1)} s; ${warns} 'accept failed' lines`);
    assert.ok(warns <= 7, `accept failures are logged at most once per 10 s: ${warns} lines`);
    assert.equal(server.child.exitCode, null, 'the server is still running');
  } finally {
    for (const c of conns) c.sock.destroy();
    server.child.kill('SIGKILL');
  }
});

test('connections over MAX_CONNECTIONS_PER_IP or MAX_CONNECTIONS are closed at once; freed slots are reused', async () => {
  const server = await scope.server({
    name: 'caps',
    env: { MAX_CONNECTIONS: '8', MAX_CONNECTIONS_PER_IP: '5', HEADER_READ_TIMEOUT_MS: '20000' },
  });
  const local = Array.from({ length: 5 }, () => rawConnection(server.url));
  await Promise.all(local.map((c) => c.ready));
  await sleep(200);
  const sixth = rawConnection(server.url);
  assert.equal(await waitClosed([sixth], 2_000), 0, 'the 6th connection from 127.0.0.1 is closed at once');

  // Another address (loopback 127.0.0.2) has its own per-address count, but the total is 8.
  const other = Array.from({ length: 3 }, () => rawConnection(server.url, { localAddress: '127.0.0.2' }));
  await Promise.all(other.map((c) => c.ready));
  await sleep(200);
  assert.equal(other.filter((c) => c.closedAt !== null).length, 0, 'within both caps');
  const ninth = rawConnection(server.url, { localAddress: '127.0.0.2' });
  assert.equal(await waitClosed([ninth], 2_000), 0, 'the 9th connection overall is closed at once');
  assert.equal(local.filter((c) => c.closedAt !== null).length, 0, 'the admitted ones stay open');

  for (const c of [...local, ...other]) c.sock.destroy();
  assert.ok((await healthWithin(server.url, 5_000)) !== null, 'slots are given back on close');
  const metrics = await http(server, '/metrics');
  assert.match(metrics.text, /^switchboard_tcp_refused_total 2$/m, 'both refusals are counted');
});

test('the header timeout does not cut long-polling requests or idle WebSockets', async () => {
  const server = await scope.server({ name: 'timeouts', env: { HEADER_READ_TIMEOUT_MS: '1000', PING_INTERVAL_MS: '4000' } });
  const polling = await scope.user(server, 'alice', {}, { transports: ['polling'] });
  const ws = await scope.user(server, 'bob');
  let drops = 0;
  polling.on('disconnect', () => drops++);
  ws.on('disconnect', () => drops++);
  await sleep(5_000);
  assert.equal(drops, 0, 'no socket was dropped');
  assertAckOk(await emitAck(polling, 'subscribe:project', 'demo'));
  assertAckOk(await emitAck(ws, 'subscribe:project', 'demo'));
});
