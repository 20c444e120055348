// Shared helpers for the switchboard end-to-end suite: start/stop server processes, mint HS256
// JWTs, connect socket.io-client sockets, bounded waits, and per-file cleanup hooks.
//
// Every wait in here is bounded; every socket and server a test creates through a Scope is closed
// or stopped in the file's `after` hook, and the servers' stderr is printed when a test fails.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root: tests/e2e/lib → three levels up. */
export const REPO_ROOT = resolve(here, '..', '..', '..');
export const SEEDS_DIR = resolve(REPO_ROOT, 'seeds');

export const JWT_SECRET = 'e2e-test-secret-0123456789abcdef';
export const API_KEY = 'e2e-test-api-key-4f1c9a0b7d2e6c8135';

/** Display names put in the tokens' `name` claim (deliberately not the seeded profile names). */
export const NAMES = {
  alice: 'Alice (e2e)',
  bob: 'Bob (e2e)',
  carol: 'Carol (e2e)',
  dave: 'Dave (e2e)',
};

export const uniq = (prefix = 'e2e') => `${prefix}_${randomBytes(6).toString('hex')}`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TIMEOUT = Symbol('timeout');
/** Resolves with `promise`'s value, or TIMEOUT after `ms` (the timer is cleared either way). */
async function raceTimeout(promise, ms) {
  let timer;
  const t = new Promise((r) => {
    timer = setTimeout(() => r(TIMEOUT), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Environment

export function requireBin() {
  const bin = process.env.SB_BIN;
  if (!bin) {
    throw new Error(
      'SB_BIN is not set: run the suite with `scripts/test --e2e` from the repository root ' +
        '(it builds the server and starts Redis/SecantusDB), or export SB_BIN=<path to ' +
        'target/debug/switchboard> yourself.',
    );
  }
  return bin;
}

export function requireServices(what = 'this test file') {
  const redis = process.env.SB_TEST_REDIS_URL;
  const mongo = process.env.SB_TEST_MONGODB_URI;
  const missing = [];
  if (!redis) missing.push('SB_TEST_REDIS_URL');
  if (!mongo) missing.push('SB_TEST_MONGODB_URI');
  if (missing.length) {
    throw new Error(
      `${what} needs Redis and MongoDB: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} ` +
        'not set. Run `scripts/test --e2e` from the repository root (it starts both services ' +
        'and exports these variables).',
    );
  }
  return { redis, mongo };
}

export function requireMongo(what = 'this test file') {
  const mongo = process.env.SB_TEST_MONGODB_URI;
  if (!mongo) {
    throw new Error(
      `${what} needs MongoDB: SB_TEST_MONGODB_URI is not set. Run \`scripts/test --e2e\` from ` +
        'the repository root (it starts SecantusDB and exports the variable).',
    );
  }
  return mongo;
}

// ---------------------------------------------------------------------------------------------
// Tokens

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs an arbitrary claims object with HS256 (or the given header). */
export function signJwt(claims, secret = JWT_SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64url(header)}.${b64url(claims)}`;
  if (header.alg === 'none') return `${head}.`;
  const sig = createHmac('sha256', secret).update(head).digest('base64url');
  return `${head}.${sig}`;
}

/**
 * A user token: `sub`, `exp` (default now + 1 h), `name` (default NAMES[sub]) and `role` when
 * given. Pass `name: null` to omit the claim.
 */
export function mintToken(sub, { name, role, ttl = 3600, exp, secret = JWT_SECRET } = {}) {
  const claims = { sub, exp: exp ?? Math.floor(Date.now() / 1000) + ttl };
  const n = name === undefined ? NAMES[sub] : name;
  if (n != null) claims.name = n;
  if (role) claims.role = role;
  return signJwt(claims, secret);
}

// ---------------------------------------------------------------------------------------------
// Server processes

const LISTEN_RE = /switchboard listening on (http:\/\/[^\s]+)/;
const MAX_LOG = 256 * 1024;

/**
 * Starts one server. Options:
 *   mongo: true | uri      — MONGODB_URI (true: SB_TEST_MONGODB_URI)
 *   db:    name            — MONGODB_DB (default: a unique e2e_<random>)
 *   redis: true | url      — REDIS_URL (true: SB_TEST_REDIS_URL)
 *   prefix: string         — REDIS_PREFIX (default: a unique one)
 *   seed:  boolean         — SEED_DEMO (default true)
 *   env:   object          — extra variables
 *   name:  string          — label in logs
 */
export async function startServer(opts = {}) {
  const bin = requireBin();
  const env = {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_SECRET,
    API_KEYS: API_KEY,
    SEED_DEMO: opts.seed === false ? 'false' : 'true',
    SEEDS_DIR,
    RUST_LOG: 'warn',
  };
  if (opts.mongo) {
    env.MONGODB_URI = opts.mongo === true ? requireMongo() : opts.mongo;
    env.MONGODB_DB = opts.db ?? uniq('e2e');
  }
  if (opts.redis) {
    env.REDIS_URL = opts.redis === true ? requireServices().redis : opts.redis;
    env.REDIS_PREFIX = opts.prefix ?? uniq('e2e');
  }
  Object.assign(env, opts.env ?? {});
  // Without MongoDB the server would open ./data, which parallel tests must not share.
  if (!env.MONGODB_URI && !env.STORE) env.STORE = 'memory';
  const name = opts.name ?? 'server';

  const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const append = (buf, chunk) => {
    const s = buf + chunk.toString();
    return s.length > MAX_LOG ? s.slice(s.length - MAX_LOG) : s;
  };
  child.stderr.on('data', (c) => {
    stderr = append(stderr, c);
  });

  let exitInfo = null;
  const exited = new Promise((res) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      res(exitInfo);
    });
  });

  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`${name} did not print its listening line within 30 s.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, 30_000);
    child.stdout.on('data', (c) => {
      stdout = append(stdout, c);
      const m = LISTEN_RE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`${name} could not be spawned (${bin}): ${e.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited (code ${code}, signal ${signal}) before listening.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });

  const server = {
    name,
    url,
    env,
    proc: child,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    get exited() {
      return exitInfo;
    },
    stopped: false,
    /** SIGTERM; asserts exit code 0 within 10 s (SIGKILLs and throws otherwise). */
    async stop() {
      if (server.stopped) return;
      server.stopped = true;
      if (exitInfo) {
        assert.fail(`${name} had already exited before stop(): ${JSON.stringify(exitInfo)}\nstderr:\n${stderr}`);
      }
      child.kill('SIGTERM');
      const r = await raceTimeout(exited, 10_000);
      if (r === TIMEOUT) {
        child.kill('SIGKILL');
        await raceTimeout(exited, 2_000);
        assert.fail(`${name} did not exit within 10 s of SIGTERM.\nstderr:\n${stderr}`);
      }
      assert.deepEqual(r, { code: 0, signal: null }, `${name} should exit 0 on SIGTERM.\nstderr:\n${stderr}`);
    },
    /** Hard kill without assertions (cleanup after a failure). */
    kill() {
      server.stopped = true;
      if (!exitInfo) child.kill('SIGKILL');
    },
  };
  return server;
}

/** Polls GET /ready until 200 (bounded). Returns the last response. */
export async function waitReady(server, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fetch(`${server.url}/ready`, { signal: AbortSignal.timeout(2_000) });
      if (last.status === 200) return last;
    } catch {
      /* retry */
    }
    await sleep(100);
  }
  throw new Error(`${server.name} was not ready within ${ms} ms (last status ${last?.status}).\nstderr:\n${server.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** fetch with a bounded timeout; returns { status, headers, text, json }. */
export async function http(server, path, { method = 'GET', headers = {}, body, apiKey, token, ms = 5_000 } = {}) {
  const h = { ...headers };
  if (apiKey) h['x-api-key'] = apiKey;
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(`${server.url}${path}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(ms) });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Asserts a REST error response `{ error: { code, message } }` with the given status and code. */
export function assertHttpError(res, status, code) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `error body should be JSON, got ${JSON.stringify(res.text)}`);
  assert.equal(res.json.error?.code, code, `error code: ${res.text}`);
  assert.equal(typeof res.json.error?.message, 'string', `error message should be a string: ${res.text}`);
}

// ---------------------------------------------------------------------------------------------
// Sockets

const DEFAULT_TRANSPORTS = ['websocket'];

function makeSocket(server, auth, { transports = DEFAULT_TRANSPORTS, ...rest } = {}) {
  const url = typeof server === 'string' ? server : server.url;
  const opts = { transports, reconnection: false, forceNew: true, timeout: 5_000, ...rest };
  if (auth !== undefined) opts.auth = auth;
  return io(url, opts);
}

/** Connects and resolves with the socket once `connect` fires; rejects on connect_error/timeout. */
export function connect(server, auth, opts = {}, ms = 5_000) {
  const socket = makeSocket(server, auth, opts);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.close();
      rej(new Error(`socket did not connect within ${ms} ms`));
    }, ms);
    const onConnect = () => {
      cleanup();
      res(socket);
    };
    const onError = (err) => {
      cleanup();
      socket.close();
      rej(new Error(`connect_error: ${err?.message} ${JSON.stringify(err?.data ?? null)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** Expects the connection to be refused; resolves with the connect_error's Error. */
export function connectRefused(server, auth, opts = {}, ms = 5_000) {
  const socket = makeSocket(server, auth, opts);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      socket.close();
      rej(new Error(`expected connect_error within ${ms} ms, got nothing`));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.close();
      rej(new Error('expected the connection to be refused, but it connected'));
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      res(err);
    });
  });
}

/** Resolves with the first argument of the next `event` on `socket`; rejects after `ms`. */
export function waitFor(socket, event, ms = 2_000) {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      rej(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    const on = (arg) => {
      clearTimeout(timer);
      socket.off(event, on);
      res(arg);
    };
    socket.on(event, on);
  });
}

/** Rejects if `event` arrives on `socket` within `ms`. */
export function expectNone(socket, event, ms = 300) {
  return new Promise((res, rej) => {
    const on = (arg) => {
      clearTimeout(timer);
      socket.off(event, on);
      rej(new Error(`expected no "${event}" within ${ms} ms, got ${JSON.stringify(arg)?.slice(0, 300)}`));
    };
    const timer = setTimeout(() => {
      socket.off(event, on);
      res();
    }, ms);
    socket.on(event, on);
  });
}

/** Records every `event` (or every event at all with '*') received by `socket` from now on. */
export function record(socket, event = '*') {
  const items = [];
  const on = event === '*' ? (name, ...args) => items.push({ event: name, args }) : (arg) => items.push(arg);
  if (event === '*') socket.onAny(on);
  else socket.on(event, on);
  // non-enumerable, so assert.deepEqual(items, [...]) compares the events only
  Object.defineProperty(items, 'stop', {
    value: () => (event === '*' ? socket.offAny(on) : socket.off(event, on)),
    enumerable: false,
  });
  return items;
}

/** Waits (bounded) until `items.length >= n`. */
export async function waitCount(items, n, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (items.length < n) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: got ${items.length} of ${n} items`);
    await sleep(10);
  }
  return items;
}

/** Emits with an ack callback and resolves with the ack; rejects if none arrives within `ms`. */
export function emitAck(socket, event, ...args) {
  let ms = 3_000;
  if (args.length && args[args.length - 1] && typeof args[args.length - 1] === 'object' && args[args.length - 1].__ms) {
    ms = args.pop().__ms;
  }
  return socket.timeout(ms).emitWithAck(event, ...args);
}
/** Use as the last argument of emitAck to change its timeout: emitAck(s, 'e', p, within(5000)). */
export const within = (ms) => ({ __ms: ms });

export function assertAckOk(ack, data) {
  assert.equal(ack?.ok, true, `expected an ok ack, got ${JSON.stringify(ack)}`);
  if (data !== undefined) assert.deepEqual(ack, { ok: true, data });
}

export function assertAckError(ack, code) {
  assert.ok(ack && typeof ack === 'object', `ack should be an object, got ${JSON.stringify(ack)}`);
  assert.equal(ack.ok, false, `expected a failure ack, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error?.code, code, `expected error code ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error?.message, 'string', `error.message should be a string: ${JSON.stringify(ack)}`);
  assert.deepEqual(Object.keys(ack).sort(), ['error', 'ok'], `failure ack keys: ${JSON.stringify(ack)}`);
  assert.deepEqual(Object.keys(ack.error).sort(), ['code', 'message'], `failure error keys: ${JSON.stringify(ack)}`);
}

/** Asserts an `error` event body `{ event, code, message }`. */
export function assertErrorEvent(body, event, code) {
  assert.ok(body && typeof body === 'object', `error event should be an object, got ${JSON.stringify(body)}`);
  assert.equal(body.event, event, `error event's "event": ${JSON.stringify(body)}`);
  assert.equal(body.code, code, `error event's code: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string', `error event's message: ${JSON.stringify(body)}`);
}

// ---------------------------------------------------------------------------------------------
// Scope: owns the sockets and servers of one test file

export class Scope {
  constructor() {
    this.servers = [];
    this.sockets = [];
  }

  /** Registers afterEach (print server stderr on failure) and after (cleanup) hooks. */
  hooks() {
    afterEach((t) => {
      if (t.passed === false) this.dump(t.name);
    });
    after(async () => {
      await this.close();
    });
    return this;
  }

  dump(label = '') {
    for (const s of this.servers) {
      const err = s.stderr.trim();
      process.stderr.write(
        `\n----- ${s.name} stderr (after failure of "${label}") -----\n${err || '(empty)'}\n----- end ${s.name} -----\n`,
      );
    }
  }

  async server(opts = {}) {
    const s = await startServer(opts);
    this.servers.push(s);
    return s;
  }

  track(socket) {
    this.sockets.push(socket);
    return socket;
  }

  async connect(server, auth, opts, ms) {
    return this.track(await connect(server, auth, opts, ms));
  }

  /** A user socket for `sub` with a freshly minted token. */
  async user(server, sub, tokenOpts = {}, opts = {}) {
    return this.connect(server, { token: mintToken(sub, tokenOpts) }, opts);
  }

  closeSockets() {
    for (const s of this.sockets.splice(0)) s.close();
  }

  async close() {
    this.closeSockets();
    const errors = [];
    for (const s of this.servers.splice(0)) {
      try {
        await s.stop();
      } catch (e) {
        errors.push(e);
        s.kill();
      }
    }
    if (errors.length) throw errors[0];
  }
}

// ---------------------------------------------------------------------------------------------
// Chat helpers (chat.test.mjs, calls.test.mjs, chat-cluster.test.mjs)

/** ISO-8601 UTC with milliseconds, as the contract requires for timestamps. */
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A generated id: MongoDB ObjectId hex. */
export const OBJECT_ID = /^[0-9a-f]{24}$/;
/** The keys of a `message` object (contract: "Chat"). */
export const MESSAGE_KEYS = [
  'chatId', 'content', 'createdAt', 'deletedAt', 'editedAt', 'id', 'mentions', 'projectId',
  'reactions', 'replyTo', 'senderId', 'type',
];

/**
 * waitFor, but a rejection that nobody awaits (because an earlier assertion already failed the
 * test) is not reported as an unhandledRejection after the test ended. Awaiting it still throws.
 */
export function nextEvent(socket, event, ms = 2_000) {
  const p = waitFor(socket, event, ms);
  p.catch(() => {});
  return p;
}

/** Asserts the shape of a fresh `message` object and returns it. */
export function assertMessage(m, expected = {}) {
  assert.ok(m && typeof m === 'object', `message should be an object, got ${JSON.stringify(m)}`);
  assert.deepEqual(Object.keys(m).sort(), MESSAGE_KEYS, `message keys: ${JSON.stringify(m)}`);
  assert.match(m.id, OBJECT_ID, `message id: ${JSON.stringify(m)}`);
  assert.match(m.createdAt, ISO_MS, `createdAt: ${JSON.stringify(m)}`);
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(m[k], v, `message.${k}: ${JSON.stringify(m)}`);
  return m;
}

/**
 * Every message of a chat over REST (GET /api/chats/<id>/messages), walking all pages with
 * `nextCursor`; newest first. Bounded to 200 pages. `receipts: true` keeps each message's
 * `readCount` and `readBy`.
 */
export async function chatHistory(server, chatId, { sub = 'alice', apiKey, limit = 100, receipts = false } = {}) {
  const all = [];
  let before = null;
  for (let page = 0; page < 200; page++) {
    const q = `limit=${limit}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
    const res = await http(server, `/api/chats/${encodeURIComponent(chatId)}/messages?${q}`, apiKey ? { apiKey } : { token: mintToken(sub) });
    assert.equal(res.status, 200, `history of ${chatId}: ${res.status} ${res.text}`);
    // Without `receipts`, each message as the socket events carry it: the read summary the
    // history adds (`readCount`, `readBy`) is left out, so the two compare equal.
    all.push(...res.json.messages.map((m) => {
      if (receipts) return m;
      const { readCount, readBy, ...message } = m;
      assert.equal(typeof readCount, 'number', `readCount of ${m.id}`);
      assert.ok(Array.isArray(readBy), `readBy of ${m.id}`);
      return message;
    }));
    before = res.json.nextCursor;
    if (before == null) return all;
  }
  throw new Error(`history of ${chatId} did not end within 200 pages`);
}

/** POST /api/projects/<p>/chats as `sub`; asserts 201 and returns the chat. */
export async function createChat(server, sub, body, projectId = 'demo') {
  const res = await http(server, `/api/projects/${projectId}/chats`, { method: 'POST', token: mintToken(sub), body });
  assert.equal(res.status, 201, `create chat: ${res.status} ${res.text}`);
  return res.json;
}

/**
 * chat:join with an ack; asserts ok and that `chat:joined` arrived with the same body as the
 * ack data. Returns the ack data.
 */
export async function joinChat(socket, chatId, projectId = 'demo', extra = {}) {
  const joined = nextEvent(socket, 'chat:joined', 5_000);
  const ack = await emitAck(socket, 'chat:join', { chatId, projectId, ...extra }, within(5_000));
  assertAckOk(ack);
  assert.deepEqual(await joined, ack.data, 'chat:joined equals the ack data');
  return ack.data;
}

/** message:send of a text with an ack; asserts ok and returns the stored message. */
export async function sendText(socket, chatId, content, extra = {}, projectId = 'demo') {
  const ack = await emitAck(socket, 'message:send', { chatId, projectId, type: 'text', content, ...extra }, within(5_000));
  assertAckOk(ack);
  return ack.data.message;
}
