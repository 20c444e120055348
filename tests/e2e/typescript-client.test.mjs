// The TypeScript client package (clients/typescript, built to dist/ by scripts/test) against a
// real server: typed requests resolve with the ack's data or reject with the server's error
// code, the optional validator refuses a bad payload before it is sent, and after a dropped
// connection the client asks for a fresh token and joins what it `keep`s again
// (docs/contracts.md).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Scope, REPO_ROOT, mintToken, waitFor, sleep } from './lib/harness.mjs';

const dist = resolve(REPO_ROOT, 'clients/typescript/dist');
const clients = [];
after(() => {
  for (const c of clients.splice(0)) c.close();
});
const scope = new Scope().hooks();

async function load() {
  assert.ok(
    existsSync(resolve(dist, 'index.js')),
    'clients/typescript is not built: run `npm ci && npm run build` in clients/typescript (scripts/test does)',
  );
  const lib = await import(pathToFileURL(resolve(dist, 'index.js')).href);
  const validate = await import(pathToFileURL(resolve(dist, 'validate.js')).href);
  const { Ajv2020 } = await import(
    pathToFileURL(resolve(REPO_ROOT, 'clients/typescript/node_modules/ajv/dist/2020.js')).href
  );
  return { ...lib, ...validate, Ajv2020 };
}

test('requests resolve with ack data, refusals reject with the code, bad payloads never leave', async () => {
  const { connect, SwitchboardError, requestValidator, Ajv2020 } = await load();
  const server = await scope.server({ name: 'ts-client' });
  const alice = connect({
    url: server.url,
    token: mintToken('alice'),
    validate: requestValidator(new Ajv2020({ strict: false, validateFormats: false })),
  });
  clients.push(alice);
  const joined = await alice.request('chat:join', { chatId: 'general', projectId: 'demo' });
  assert.equal(joined.chatId, 'general');
  assert.ok(Array.isArray(joined.participants));
  const sent = await alice.request('message:send', {
    chatId: 'general', projectId: 'demo', type: 'text', content: 'typed hello', clientMessageId: 'ts-1',
  });
  assert.equal(sent.message.content, 'typed hello');
  assert.equal(sent.clientMessageId, 'ts-1');

  const carol = connect({ url: server.url, token: mintToken('carol') });
  clients.push(carol);
  await assert.rejects(
    carol.request('chat:join', { chatId: 'general', projectId: 'demo' }),
    (e) => e instanceof SwitchboardError && e.code === 'FORBIDDEN' && e.event === 'chat:join',
  );
  const refusedLocally = alice.request('message:send', {
    chatId: 'general', projectId: 'demo', type: 'gif', content: 'x',
  });
  await assert.rejects(refusedLocally, (e) => e.code === 'INVALID_REQUEST' && /type/.test(e.message));
  // Without the validator the server refuses the same payload itself.
  const plain = connect({ url: server.url, token: mintToken('alice') });
  clients.push(plain);
  await assert.rejects(
    plain.request('message:send', { chatId: 'general', projectId: 'demo', type: 'gif', content: 'x' }),
    (e) => e.code === 'INVALID_PAYLOAD',
  );
});

test('after a dropped connection the client re-authenticates and rejoins what it keeps', async () => {
  const { connect } = await load();
  const server = await scope.server({ name: 'ts-client-reconnect' });
  let tokens = 0;
  const alice = connect({
    url: server.url,
    token: () => {
      tokens += 1;
      return mintToken('alice');
    },
    socket: { reconnectionDelay: 50, reconnectionDelayMax: 200 },
  });
  clients.push(alice);
  await alice.keep('chat:join', { chatId: 'general', projectId: 'demo' });
  const bob = connect({ url: server.url, token: mintToken('bob') });
  clients.push(bob);
  await bob.request('chat:join', { chatId: 'general', projectId: 'demo' });
  assert.equal(tokens, 1);

  const rejoined = waitFor(alice.socket, 'chat:joined', 5_000);
  alice.socket.io.engine.close(); // the transport drops; the manager reconnects
  await rejoined;
  assert.equal(tokens, 2, 'a fresh token for the new connection');
  const seen = [];
  const stop = alice.on('message:new', (m) => seen.push(m.content));
  await bob.request('message:send', { chatId: 'general', projectId: 'demo', type: 'text', content: 'after the drop' });
  for (let i = 0; i < 40 && seen.length === 0; i += 1) await sleep(50);
  stop();
  assert.deepEqual(seen, ['after the drop']);
});
