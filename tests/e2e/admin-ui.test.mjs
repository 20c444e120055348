// The Socket.IO Admin UI's server side on /admin (docs/console.md): the @socket.io/admin-ui 0.5
// protocol driven by socket.io-client (basic auth and sessions, config, all_sockets,
// server_stats with packet and byte counts, socket and room events, every event a socket
// receives and is sent, the join / emit / leave / _disconnect actions, production and
// read-only modes, two nodes), and the package's own built UI in chromium against the server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import bcrypt from 'bcryptjs';
import { io } from 'socket.io-client';
import {
  Scope, waitFor, joinChat, sendText, sleep,
} from './lib/harness.mjs';
import { launchBrowser, SHOTS } from './lib/browser.mjs';

const USER = 'admin';
const PASSWORD = 'e2e-admin-ui-password';
const HASH = bcrypt.hashSync(PASSWORD, 8);
const ADMIN_ENV = { ADMIN_UI_USERNAME: USER, ADMIN_UI_PASSWORD: HASH };
const withServices = Boolean(process.env.SB_TEST_REDIS_URL && process.env.SB_TEST_MONGODB_URI);

const admins = [];
let browser;
let staticServer;
after(async () => {
  for (const a of admins) a.close();
  await browser?.close();
  staticServer?.close();
});
const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'admin-ui', env: ADMIN_ENV });
});

/**
 * An Admin UI client: records every event it gets; resolves once connected with its `config`.
 */
function admin(s, auth = { username: USER, password: PASSWORD }) {
  const socket = io(`${s.url}/admin`, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
  admins.push(socket);
  const events = [];
  socket.onAny((name, ...args) => events.push({ name, args }));
  socket.events = events;
  socket.next = (name, pred = () => true, ms = 5_000) => new Promise((res, rej) => {
    const found = events.find((e) => e.name === name && pred(...e.args));
    if (found) return res(found.args);
    const t = setTimeout(() => {
      socket.offAny(on);
      rej(new Error(`no ${name} within ${ms} ms; got ${events.map((e) => e.name).join(', ')}`));
    }, ms);
    const on = (n, ...args) => {
      if (n === name && pred(...args)) {
        clearTimeout(t);
        socket.offAny(on);
        res(args);
      }
    };
    socket.onAny(on);
  });
  return new Promise((res, rej) => {
    socket.once('connect', () => res(socket));
    socket.once('connect_error', (e) => rej(e));
  });
}

describe('Socket.IO Admin UI protocol on /admin', () => {
  test('a wrong password is refused with "invalid credentials"', async () => {
    await assert.rejects(admin(server, { username: USER, password: 'wrong' }), /invalid credentials/);
    await assert.rejects(admin(server, { username: 'someone', password: PASSWORD }), /invalid credentials/);
    await assert.rejects(admin(server, {}), /invalid credentials/);
    await assert.rejects(admin(server, { sessionId: '0123456789abcdef' }), /invalid credentials/);
  });

  test('sign-in: session, config, all_sockets and server_stats; the session id signs in again', async () => {
    const alice = await scope.user(server, 'alice');
    const a = await admin(server);
    const [sessionId] = await a.next('session');
    assert.match(sessionId, /^[0-9a-f]{16}$/);
    const [config] = await a.next('config');
    assert.deepEqual(config.supportedFeatures, ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT', 'AGGREGATED_EVENTS', 'ALL_EVENTS']);
    const [sockets] = await a.next('all_sockets');
    const mine = sockets.find((s) => s.id === alice.id);
    assert.ok(mine, `alice's socket is listed: ${JSON.stringify(sockets)}`);
    assert.equal(mine.nsp, '/');
    assert.ok(mine.rooms.includes('user:alice'), JSON.stringify(mine.rooms));
    assert.equal(mine.transport, 'websocket');
    assert.equal(typeof mine.handshake.time, 'string');
    assert.equal(mine.handshake.headers.authorization, undefined);
    const [stats] = await a.next('server_stats');
    assert.match(stats.serverId, /#\d+$/);
    assert.ok(stats.clientsCount >= 1);
    assert.ok(stats.namespaces.some((n) => n.name === '/' && n.socketsCount >= 1), JSON.stringify(stats.namespaces));
    a.close();

    const again = await admin(server, { sessionId });
    await again.next('config');
    assert.equal(again.events.filter((e) => e.name === 'session').length, 0, 'no new session for a session sign-in');
    again.close();
  });

  test('socket and room events as they happen', async () => {
    const a = await admin(server);
    await a.next('all_sockets');
    const bob = await scope.user(server, 'bob');
    const [connected] = await a.next('socket_connected', (s) => s.id === bob.id);
    assert.equal(connected.nsp, '/');
    await a.next('room_joined', (nsp, room, id) => nsp === '/' && room === 'user:bob' && id === bob.id);
    await joinChat(bob, 'general');
    await a.next('room_joined', (nsp, room, id) => room === 'chat:general' && id === bob.id);
    const bobId = bob.id;
    bob.close();
    await a.next('room_left', (nsp, room, id) => room === 'chat:general' && id === bobId);
    await a.next('socket_disconnected', (nsp, id) => nsp === '/' && id === bobId);
    a.close();
  });

  test('join, emit, leave and _disconnect reach the sockets', async () => {
    const carol = await scope.user(server, 'carol');
    const a = await admin(server);
    await a.next('config');
    a.emit('join', '/', 'admin-picked', carol.id);
    await a.next('room_joined', (nsp, room, id) => room === 'admin-picked' && id === carol.id);
    const got = waitFor(carol, 'hello', 5_000);
    a.emit('emit', '/', 'admin-picked', 'hello', { from: 'admin' }, 2);
    assert.deepEqual(await got, { from: 'admin' });
    a.emit('leave', '/', 'admin-picked', carol.id);
    await a.next('room_left', (nsp, room, id) => room === 'admin-picked' && id === carol.id);
    const gone = waitFor(carol, 'disconnect', 5_000);
    a.emit('_disconnect', '/', false, carol.id);
    assert.equal(await gone, 'io server disconnect');
    a.close();
  });

  test('development mode: every event a socket receives and is sent, and packet and byte counts', async () => {
    const a = await admin(server);
    await a.next('all_sockets');
    const alice = await scope.user(server, 'alice');
    const bob = await scope.user(server, 'bob');
    await joinChat(alice, 'general');
    await joinChat(bob, 'general');
    const text = `watched ${Date.now()}`;
    const sent = await sendText(alice, 'general', text);
    const [nsp, id, args, at] = await a.next('event_received', (n, i, ar) => i === alice.id && ar[0] === 'message:send');
    assert.equal(nsp, '/');
    assert.equal(id, alice.id);
    assert.equal(args[1].content, text);
    assert.ok(!Number.isNaN(Date.parse(at)), `a date: ${at}`);
    // The sender has its ack; the other participant gets message:new.
    const [, , out] = await a.next('event_sent', (n, i, ar) => i === bob.id && ar[0] === 'message:new' && ar[1]?.id === sent.id);
    assert.equal(out[1].content, text);
    // The stats of the next period count the traffic, as the package does (per second).
    const kinds = new Map();
    await a.next('server_stats', (stats) => {
      for (const e of stats.aggregatedEvents) kinds.set(e.type, (kinds.get(e.type) ?? 0) + e.count);
      return ['packetsIn', 'bytesIn', 'packetsOut', 'bytesOut'].every((k) => kinds.has(k));
    }, 6_000);
    assert.ok(kinds.get('bytesIn') >= text.length, JSON.stringify([...kinds]));
    assert.ok(kinds.get('bytesOut') >= text.length, JSON.stringify([...kinds]));
    a.close();
  });

  test('production mode: server stats with the counts, no sockets and no per-socket events', async () => {
    const prod = await scope.server({ name: 'admin-ui-production', env: { ...ADMIN_ENV, ADMIN_UI_MODE: 'production' } });
    const a = await admin(prod);
    const [config] = await a.next('config');
    assert.deepEqual(config.supportedFeatures, ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT', 'AGGREGATED_EVENTS']);
    const alice = await scope.user(prod, 'alice');
    const bob = await scope.user(prod, 'bob');
    await joinChat(alice, 'general');
    await joinChat(bob, 'general');
    await sendText(bob, 'general', 'unseen');
    const kinds = new Set();
    await a.next('server_stats', (stats) => {
      for (const e of stats.aggregatedEvents) kinds.add(e.type);
      return kinds.has('rawConnection') && kinds.has('packetsIn') && kinds.has('packetsOut');
    }, 6_000);
    const names = new Set(a.events.map((e) => e.name));
    for (const never of ['all_sockets', 'socket_connected', 'room_joined', 'event_received', 'event_sent']) {
      assert.ok(!names.has(never), `${never} in production mode: ${[...names]}`);
    }
    a.close();
  });

  test('read-only: no actions are offered or done', async () => {
    const ro = await scope.server({ name: 'admin-ui-readonly', env: { ...ADMIN_ENV, ADMIN_UI_READONLY: 'true' } });
    const dave = await scope.user(ro, 'dave');
    const a = await admin(ro);
    const [config] = await a.next('config');
    assert.deepEqual(config.supportedFeatures, ['AGGREGATED_EVENTS', 'ALL_EVENTS']);
    let disconnected = false;
    dave.on('disconnect', () => { disconnected = true; });
    a.emit('_disconnect', '/', false, dave.id);
    await sleep(500);
    assert.equal(disconnected, false);
    a.close();
  });

  test('two nodes: sockets and events of the other node', { skip: !withServices && 'SB_TEST_REDIS_URL / SB_TEST_MONGODB_URI not set (run scripts/test --e2e)' }, async () => {
    const prefix = `e2e_admin_${Date.now()}`;
    const opts = { mongo: true, redis: true, prefix, db: prefix, env: ADMIN_ENV };
    const n1 = await scope.server({ name: 'admin-ui-n1', ...opts });
    const n2 = await scope.server({ name: 'admin-ui-n2', ...opts, seed: false });
    const early = await scope.user(n2, 'alice');
    const a = await admin(n1);
    const [sockets] = await a.next('all_sockets');
    const listed = sockets.find((s) => s.id === early.id);
    assert.ok(listed, 'a socket of the other node is listed');
    assert.ok(listed.rooms.includes('user:alice'), JSON.stringify(listed.rooms));
    const later = await scope.user(n2, 'bob');
    await a.next('socket_connected', (s) => s.id === later.id);
    const stats = await a.next('server_stats', (s) => s.namespaces.some((n) => n.name === '/' && n.socketsCount === 2));
    assert.ok(stats);
    a.emit('join', '/', 'both-nodes', later.id);
    await a.next('room_joined', (nsp, room, id) => room === 'both-nodes' && id === later.id);
    const got = waitFor(later, 'ping-all', 5_000);
    a.emit('emit', '/', 'both-nodes', 'ping-all', 'x');
    assert.equal(await got, 'x');
    a.close();
  });
});

// ---------------------------------------------------------------------------------------------
// The package's built UI in a real browser

const require = createRequire(import.meta.url);
const UI_DIR = resolve(dirname(require.resolve('@socket.io/admin-ui/package.json')), 'ui', 'dist');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml', '.map': 'application/json', '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf' };

/** Serves the admin UI's built files on a port of its own (another origin than the server). */
function serveUi() {
  return new Promise((res) => {
    const srv = createServer(async (req, reply) => {
      const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      const file = join(UI_DIR, path === '/' ? 'index.html' : path);
      try {
        const body = await readFile(file.startsWith(UI_DIR) ? file : join(UI_DIR, 'index.html'));
        reply.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
        reply.end(body);
      } catch {
        reply.writeHead(404);
        reply.end();
      }
    });
    srv.listen(0, '127.0.0.1', () => res(srv));
  });
}

describe('the official Admin UI in chromium', () => {
  test('signs in against the server and lists the connected sockets', async () => {
    staticServer = await serveUi();
    browser = await launchBrowser();
    const alice = await scope.user(server, 'alice');
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`http://127.0.0.1:${staticServer.address().port}/`);
    // The connection dialog opens by itself on a first visit.
    const dialog = page.locator('.v-dialog--active');
    await dialog.waitFor();
    await dialog.getByLabel('Server URL').fill(server.url);
    await dialog.getByLabel('Username').fill(USER);
    await dialog.getByLabel('Password').fill(PASSWORD);
    // From another origin, HTTP long-polling would need credentialed CORS, which the server
    // does not grant (docs/console.md): the UI connects over WebSocket only.
    await dialog.getByText('Advanced options').click();
    await dialog.getByText('WebSocket only?').click();
    await dialog.getByRole('button', { name: 'Connect' }).click();
    try {
      await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
    } catch (e) {
      await page.screenshot({ path: resolve(SHOTS, 'admin-ui-connect-failed.png') });
      throw e;
    }
    await page.getByRole('link', { name: 'Sockets' }).click();
    await page.getByText(alice.id).first().waitFor({ timeout: 10_000 });
    await sleep(500); // the dialog's closing transition
    await page.screenshot({ path: resolve(SHOTS, 'admin-ui-sockets.png') });
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('cell', { name: '/insforge' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: resolve(SHOTS, 'admin-ui-dashboard.png') });
    await page.context().close();
  });
});
