// Handshake authentication (contract: "Connection").
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, JWT_SECRET, mintToken, signJwt, connectRefused, emitAck, assertAckOk,
} from './lib/harness.mjs';

const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'auth' });
});

/** The contract: err.message is "UNAUTHORIZED" or "UNAUTHORIZED: <why>". */
function assertUnauthorized(err) {
  assert.ok(err instanceof Error, `connect_error should carry an Error, got ${err}`);
  assert.match(err.message, /^UNAUTHORIZED(: .+)?$/, `connect_error message: ${JSON.stringify(err.message)}`);
  // err.data = { code, message } "where the Socket.IO library can send it": when present it must
  // have that shape.
  if (err.data !== undefined && err.data !== null) {
    assert.equal(err.data.code, 'UNAUTHORIZED', `err.data: ${JSON.stringify(err.data)}`);
    assert.equal(typeof err.data.message, 'string', `err.data: ${JSON.stringify(err.data)}`);
  }
}

const now = () => Math.floor(Date.now() / 1000);

describe('accepted credentials', () => {
  test('a valid user JWT connects and the socket can act in its own project', async () => {
    const s = await scope.user(server, 'alice');
    assert.equal(s.connected, true);
    assertAckOk(await emitAck(s, 'subscribe:project', 'demo'), { projectId: 'demo' });
  });

  test('a JWT without name or role claims connects (role defaults to user)', async () => {
    const s = await scope.user(server, 'bob', { name: null });
    assert.equal(s.connected, true);
    // role defaults to user: not an admin, so another tenant's project is refused
    const ack = await emitAck(s, 'subscribe:project', 'acme');
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, 'FORBIDDEN');
  });

  test('a valid apiKey connects and may act in every project', async () => {
    const s = await scope.connect(server, { apiKey: API_KEY });
    assert.equal(s.connected, true);
    assertAckOk(await emitAck(s, 'subscribe:project', 'acme'), { projectId: 'acme' });
    assertAckOk(await emitAck(s, 'subscribe:project', 'demo'), { projectId: 'demo' });
  });

  test('an admin-role token connects and may act in every project', async () => {
    const s = await scope.user(server, 'root', { role: 'admin', name: 'Root' });
    assert.equal(s.connected, true);
    assertAckOk(await emitAck(s, 'subscribe:project', 'acme'), { projectId: 'acme' });
    assertAckOk(await emitAck(s, 'subscribe:project', 'demo'), { projectId: 'demo' });
  });

  test('a valid JWT connects over long-polling too', async () => {
    const s = await scope.user(server, 'carol', {}, { transports: ['polling'] });
    assert.equal(s.connected, true);
    assert.equal(s.io.engine.transport.name, 'polling');
    assertAckOk(await emitAck(s, 'subscribe:project', { projectId: 'demo' }), { projectId: 'demo' });
  });
});

describe('refused credentials → connect_error UNAUTHORIZED', () => {
  const cases = [
    ['no auth object at all', undefined],
    ['an empty auth object', {}],
    ['bad signature (other secret)', () => ({ token: mintToken('alice', { secret: 'some-other-secret-0123456789' }) })],
    ['expired token', () => ({ token: mintToken('alice', { exp: now() - 3600 }) })],
    ['garbage token', { token: 'garbage' }],
    ['garbage three-part token', { token: 'not.a.jwt' }],
    ['empty token', { token: '' }],
    ['token of the wrong type', { token: 12345 }],
    ['token without exp', () => ({ token: signJwt({ sub: 'alice', name: 'A' }) })],
    ['token without sub', () => ({ token: signJwt({ exp: now() + 3600 }) })],
    ['alg "none" token', () => ({ token: signJwt({ sub: 'alice', exp: now() + 3600 }, JWT_SECRET, { alg: 'none', typ: 'JWT' }) })],
    ['tampered payload (signature of another sub)', () => ({ token: tamper(mintToken('alice'), { sub: 'admin', exp: now() + 3600, role: 'admin' }) })],
    ['wrong apiKey', { apiKey: 'definitely-not-the-key' }],
    ['empty apiKey', { apiKey: '' }],
    ['apiKey differing only by a suffix', { apiKey: `${API_KEY}x` }],
    ['apiKey prefix', { apiKey: API_KEY.slice(0, -1) }],
  ];

  for (const [name, auth] of cases) {
    test(name, async () => {
      const a = typeof auth === 'function' ? auth() : auth;
      assertUnauthorized(await connectRefused(server, a));
    });
  }

  test('a refused handshake over long-polling is refused the same way', async () => {
    assertUnauthorized(await connectRefused(server, { token: 'garbage' }, { transports: ['polling'] }));
  });

  test('the server still accepts valid connections after the refusals', async () => {
    const s = await scope.user(server, 'alice');
    assert.equal(s.connected, true);
  });
});

function tamper(token, claims) {
  const [h, , sig] = token.split('.');
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
}
