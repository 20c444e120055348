// The REST routes the admin console reads (docs/protocol.md, "REST"): the live tail (SSE), the
// nodes' reports, a project's rooms, presence and integration status, wallet transactions, and
// the console's files;
// who may call them and what bad input gets.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Scope, API_KEY, http, assertHttpError, mintToken, joinChat, sendText, emitAck, assertAckOk, within,
} from './lib/harness.mjs';

const streams = [];
after(() => {
  for (const s of streams) s.abort();
});
const scope = new Scope().hooks();
let server;

before(async () => {
  server = await scope.server({ name: 'admin-api' });
});

/** Opens the tail of `room`; resolves with { next(pred) } once the stream is ready. */
async function tail(room, auth = { 'x-api-key': API_KEY }) {
  const ctl = new AbortController();
  streams.push(ctl);
  const q = room === undefined ? '' : `?room=${encodeURIComponent(room)}`;
  const res = await fetch(`${server.url}/api/projects/demo/tail${q}`, { headers: auth, signal: ctl.signal });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    ctl.abort();
    return { status: res.status, body };
  }
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const events = [];
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name && data) events.push({ name, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
  })();
  const next = async (pred, ms = 5_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const e = events.find(pred);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching tail event within ${ms} ms: ${JSON.stringify(events)}`);
  };
  await next((e) => e.name === 'ready');
  return { status: 200, events, next, close: () => ctl.abort(), pump };
}

describe('admin REST routes', () => {
  test('the tail streams a room\'s broadcasts; admins only; rooms as the emit route takes them', async () => {
    const t = await tail('chat:general');
    assert.deepEqual(t.events[0].data.room, 'chat:general');
    const alice = await scope.user(server, 'alice');
    await joinChat(alice, 'general');
    const m = await sendText(alice, 'general', 'seen by the tail');
    const e = await t.next((x) => x.name === 'message' && x.data.event === 'message:new');
    assert.equal(e.data.room, 'chat:general');
    assert.equal(e.data.payload.id, m.id);
    assert.match(e.data.at, /Z$/);
    t.close();

    const whole = await tail(undefined, { authorization: `Bearer ${mintToken('carol', { role: 'admin' })}` });
    assert.equal(whole.events[0].data.room, 'project:demo');
    whole.close();

    const user = await tail('chat:general', { authorization: `Bearer ${mintToken('alice')}` });
    assert.equal(user.status, 403);
    assert.equal(user.body.error.code, 'FORBIDDEN');
    const other = await tail('chat:acme-lobby');
    assert.equal(other.status, 403);
    const nobody = await tail('chat:general', {});
    assert.equal(nobody.status, 401);
  });

  test('an emit from the REST route shows in the tail of its room', async () => {
    const t = await tail('custom:demo:lobby');
    const res = await http(server, '/api/projects/demo/emit', { method: 'POST', apiKey: API_KEY, body: { room: 'custom:demo:lobby', event: 'hello', payload: { n: 1 } } });
    assert.equal(res.status, 202, res.text);
    const e = await t.next((x) => x.data.event === 'hello');
    assert.deepEqual(e.data.payload, { n: 1 });
    t.close();
  });

  test('nodes, rooms, presence and integration status', async () => {
    const bob = await scope.user(server, 'bob');
    await joinChat(bob, 'general');
    assertAckOk(await emitAck(bob, 'presence:online', { projectId: 'demo' }, within(5_000)));

    const nodes = await http(server, '/api/admin/nodes', { apiKey: API_KEY });
    assert.equal(nodes.status, 200, nodes.text);
    assert.equal(nodes.json.clustered, false);
    assert.equal(nodes.json.nodes.length, 1);
    assert.equal(nodes.json.nodes[0].node, nodes.json.node);
    assert.ok(nodes.json.cluster.connections['socket.io'] >= 1);
    assert.equal(nodes.json.nodes[0].roomMembers, undefined, 'room lists stay out of the summary');

    const rooms = await http(server, '/api/projects/demo/rooms?limit=1', { apiKey: API_KEY });
    assert.equal(rooms.status, 200, rooms.text);
    assert.equal(rooms.json.rooms.length, 1);
    const all = [];
    let after = null;
    for (let i = 0; i < 50; i++) {
      const page = await http(server, `/api/projects/demo/rooms?limit=1${after ? `&after=${encodeURIComponent(after)}` : ''}`, { apiKey: API_KEY });
      all.push(...page.json.rooms);
      after = page.json.nextCursor;
      if (!after) break;
    }
    const general = all.find((r) => r.room === 'chat:general');
    assert.ok(general && general.here >= 1 && general.cluster === general.here, JSON.stringify(all));
    assert.ok(all.some((r) => r.room === 'user:bob'));
    assert.ok(all.every((r) => !r.room.includes('acme')), 'only the project\'s rooms');
    assertHttpError(await http(server, '/api/projects/demo/rooms?limit=0', { apiKey: API_KEY }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await http(server, '/api/projects/demo/rooms?limit=501', { apiKey: API_KEY }), 400, 'INVALID_PAYLOAD');
    assertHttpError(await http(server, '/api/projects/demo/rooms', { token: mintToken('alice') }), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/admin/nodes', { token: mintToken('alice') }), 403, 'FORBIDDEN');
    assertHttpError(await http(server, '/api/admin/nodes'), 401, 'UNAUTHORIZED');

    const presence = await http(server, '/api/projects/demo/presence', { token: mintToken('alice') });
    assert.equal(presence.status, 200, presence.text);
    assert.ok(presence.json.users.some((u) => u.userId === 'bob' && u.connections >= 1));
    assertHttpError(await http(server, '/api/projects/acme/presence', { token: mintToken('alice') }), 403, 'FORBIDDEN');

    const status = await http(server, '/api/projects/demo/integrations/status-api/status', { apiKey: API_KEY });
    assert.equal(status.status, 200, status.text);
    assert.deepEqual(Object.keys(status.json), ['integrationId', 'status', 'lastExecutedAt', 'lastError', 'executions', 'failures']);
    assert.equal(status.json.status, 'active');
    assertHttpError(await http(server, '/api/projects/acme/integrations/status-api/status', { apiKey: API_KEY }), 404, 'NOT_FOUND');
  });

  test('wallet transactions: newest first, paged by `before`; members see their own addresses\' only', async () => {
    const D = '/api/projects/demo/wallet/transactions';
    const record = async (id, addressId) => {
      const r = await http(server, D, {
        apiKey: API_KEY, method: 'POST',
        body: { id, addressId, amount: '1.5', direction: 'in', txHash: `0x${id}`, status: 'confirmed' },
      });
      assert.equal(r.status, 201, r.text);
      // Distinct creation times, so the expected order does not hang on the id tie-break.
      await new Promise((res) => setTimeout(res, 5));
    };
    await record('wl-1', 'addr-alice');
    await record('wl-2', 'addr-bob');
    await record('wl-3', 'addr-alice');

    const ids = [];
    let before = null;
    for (let i = 0; i < 20; i++) {
      const page = await http(server, `${D}?limit=2${before ? `&before=${encodeURIComponent(before)}` : ''}`, { apiKey: API_KEY });
      assert.equal(page.status, 200, page.text);
      assert.ok(page.json.transactions.length <= 2);
      ids.push(...page.json.transactions.map((t) => t.id));
      before = page.json.nextCursor;
      if (!before) break;
    }
    const mine = ids.filter((id) => id.startsWith('wl-'));
    assert.deepEqual(mine, ['wl-3', 'wl-2', 'wl-1'], JSON.stringify(ids));
    assert.equal(new Set(ids).size, ids.length, 'no transaction on two pages');

    const alice = await http(server, `${D}?limit=100`, { token: mintToken('alice') });
    assert.equal(alice.status, 200, alice.text);
    assert.ok(alice.json.transactions.every((t) => t.addressId === 'addr-alice'), alice.text);
    assert.deepEqual(alice.json.transactions.filter((t) => t.id.startsWith('wl-')).map((t) => t.id), ['wl-3', 'wl-1']);
    const last = await http(server, `${D}?before=wl-1`, { token: mintToken('alice') });
    assert.deepEqual(last.json.transactions.filter((t) => t.id.startsWith('wl-')), []);

    for (const q of ['limit=0', 'limit=101', 'limit=x', `before=${'x'.repeat(129)}`]) {
      assertHttpError(await http(server, `${D}?${q}`, { apiKey: API_KEY }), 400, 'INVALID_PAYLOAD');
    }
    assertHttpError(await http(server, D), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/projects/acme/wallet/transactions', { token: mintToken('alice') }), 403, 'FORBIDDEN');
  });

  test('collections: the ones holding documents, by name, with their declared rule; paged by `after`', async () => {
    const C = '/api/projects/demo/collections';
    const name = `zz_${Date.now()}`;
    const made = await http(server, `/api/projects/demo/collections/${name}/documents`, { apiKey: API_KEY, method: 'POST', body: { id: 'one', v: 1 } });
    assert.equal(made.status, 201, made.text);
    const all = await http(server, C, { token: mintToken('alice') });
    assert.equal(all.status, 200, all.text);
    const names = all.json.collections.map((c) => c.name);
    assert.deepEqual(names, [...names].sort(), 'by name');
    assert.ok(names.includes('tasks') && names.includes(name), all.text);
    assert.equal(all.json.nextCursor, null);
    assert.equal(all.json.collections.find((c) => c.name === name).access, undefined, 'no rule declared');
    const project = await http(server, '/api/projects/demo', { apiKey: API_KEY });
    for (const [c, rule] of Object.entries(project.json.collections ?? {})) {
      const listed = all.json.collections.find((x) => x.name === c);
      if (listed) assert.equal(listed.access, rule.access);
    }

    const paged = [];
    let after = null;
    for (let i = 0; i < 50; i++) {
      const page = await http(server, `${C}?limit=1${after ? `&after=${encodeURIComponent(after)}` : ''}`, { apiKey: API_KEY });
      assert.equal(page.status, 200, page.text);
      paged.push(...page.json.collections.map((c) => c.name));
      after = page.json.nextCursor;
      if (!after) break;
    }
    assert.deepEqual(paged, names);

    for (const q of ['limit=0', 'limit=501', 'limit=x', `after=${'x'.repeat(129)}`]) {
      assertHttpError(await http(server, `${C}?${q}`, { apiKey: API_KEY }), 400, 'INVALID_PAYLOAD');
    }
    assertHttpError(await http(server, C), 401, 'UNAUTHORIZED');
    assertHttpError(await http(server, '/api/projects/acme/collections', { token: mintToken('alice') }), 403, 'FORBIDDEN');
  });

  test('the console\'s files: served with a strict policy; nothing else under /console', async () => {
    const page = await fetch(`${server.url}/console/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.match(page.headers.get('content-security-policy'), /default-src 'none'/);
    assert.match(await page.text(), /<script type="module" src="app.js">/);
    const js = await fetch(`${server.url}/console/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const redirect = await fetch(`${server.url}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/console/');
    assert.equal((await fetch(`${server.url}/console/..%2FCargo.toml`)).status, 404);
    assert.equal((await fetch(`${server.url}/console/nope.js`)).status, 404);
  });
});
