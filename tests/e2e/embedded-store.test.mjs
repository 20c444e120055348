// Without MongoDB the data lives in DATA_DIR (the embedded store): messages acknowledged to
// socket.io-client survive `kill -9`, and a second server on the same DATA_DIR is refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  Scope, startServer, requireBin, JWT_SECRET, chatHistory, joinChat, sendText, waitReady,
} from './lib/harness.mjs';

const dirs = [];
const killed = [];
after(() => {
  for (const s of killed) s.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const scope = new Scope().hooks();

const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'sb-e2e-data-'));
  dirs.push(d);
  return d;
};
const embedded = (dir) => ({ STORE: 'embedded', DATA_DIR: dir });

test('acknowledged messages survive kill -9 and a restart on the same DATA_DIR', async () => {
  const dir = dataDir();
  const first = await startServer({ name: 'embedded-1', env: embedded(dir) });
  killed.push(first);
  await waitReady(first);
  const alice = await scope.user(first, 'alice');
  await joinChat(alice, 'general');
  const acked = [];
  for (let i = 0; i < 25; i++) acked.push((await sendText(alice, 'general', `kept ${i}`)).id);
  alice.close();
  first.kill();

  const second = await scope.server({ name: 'embedded-2', env: embedded(dir), seed: false });
  await waitReady(second);
  const ids = new Set((await chatHistory(second, 'general')).map((m) => m.id));
  for (const id of acked) assert.ok(ids.has(id), `acked message ${id} is gone`);
});

test('a second server on the same DATA_DIR is refused with the reason', async () => {
  const dir = dataDir();
  const first = await scope.server({ name: 'embedded-owner', env: embedded(dir) });
  await waitReady(first);
  const second = spawnSync(requireBin(), [], {
    env: { PATH: process.env.PATH, PORT: '0', JWT_SECRET, ...embedded(dir) },
    timeout: 10_000,
    encoding: 'utf8',
  });
  assert.notEqual(second.status, 0);
  assert.match(second.stderr, /in use by another Switchboard process/);
});
