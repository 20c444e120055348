// The per-user socket cap (MAX_SOCKETS_PER_USER) across nodes: counting and admitting is one
// atomic step in Redis, so concurrent connections on two nodes cannot pass it together; and when
// Redis cannot answer, the cap still holds per node (docs/security.md, "Limits").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { io } from 'socket.io-client';
import { Scope, mintToken, requireServices, startServer, sleep, uniq } from './lib/harness.mjs';

const scope = new Scope().hooks();

/** Connects and resolves with 'connected' or the connect_error message. */
function attempt(server, sub, ms = 15_000) {
  const socket = io(server.url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: ms,
    auth: { token: mintToken(sub) },
  });
  scope.track(socket);
  return new Promise((res) => {
    const timer = setTimeout(() => res('timeout'), ms + 1_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      res('connected');
    });
    socket.once('connect_error', (e) => {
      clearTimeout(timer);
      res(e.message);
    });
  });
}

test('16 concurrent connections of one user on two nodes with MAX_SOCKETS_PER_USER=3: exactly 3 admitted', async () => {
  requireServices('socket-cap.test.mjs');
  const prefix = uniq('cap');
  const env = { MAX_SOCKETS_PER_USER: '3' };
  const a = await scope.server({ name: 'cap-a', redis: true, prefix, env });
  const b = await scope.server({ name: 'cap-b', redis: true, prefix, env });
  for (let round = 0; round < 3; round++) {
    const sub = uniq('u');
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => attempt(i % 2 ? a : b, sub)));
    const admitted = results.filter((r) => r === 'connected').length;
    const refused = results.filter((r) => /^RATE_LIMITED: at most 3 connections per user/.test(r)).length;
    assert.equal(admitted, 3, `round ${round}: ${JSON.stringify(results)}`);
    assert.equal(refused, 13, `round ${round}: ${JSON.stringify(results)}`);
  }
  scope.closeSockets();
});

function freePort() {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

test('with Redis down the cap is kept per node: MAX_SOCKETS_PER_USER=2 admits 2 and refuses the rest', async () => {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  let server;
  try {
    await sleep(500);
    server = await startServer({
      name: 'cap-blip',
      redis: `redis://127.0.0.1:${port}/?protocol=resp3`,
      env: { MAX_SOCKETS_PER_USER: '2' },
    });
    redis.kill('SIGKILL');
    await sleep(500);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await attempt(server, 'bob'));
    assert.deepEqual(results.slice(0, 2), ['connected', 'connected'], JSON.stringify(results));
    for (const r of results.slice(2)) assert.match(r, /^RATE_LIMITED: at most 2 connections per user/, JSON.stringify(results));
  } catch (e) {
    if (server) process.stderr.write(`----- cap-blip stderr -----\n${server.stderr}\n`);
    throw e;
  } finally {
    scope.closeSockets();
    server?.kill();
    redis.kill('SIGKILL');
  }
});
