// The admin console (/console) in a real headless browser: Debian's chromium driven by
// playwright-core (no browser download). Sign-in, the seeded project's views, a socket.io-client
// message appearing in the chat view and the live tail without a reload, its edit and a deletion
// marked as they happen, stored and live read receipts (the first ten readers named, the rest
// counted), a 100,000-message chat paged 50 at a time, an emit from the console reaching a
// client, a refused key. Screenshots of the main views go to target/e2e-screenshots/.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import {
  Scope, API_KEY, uniq, waitFor, joinChat, sendText, http, chatHistory, emitAck, assertAckOk,
} from './lib/harness.mjs';
import { launchBrowser, SHOTS } from './lib/browser.mjs';

let browser;
after(async () => {
  await browser?.close();
});
const scope = new Scope().hooks();
let server;

before(async () => {
  browser = await launchBrowser();
  server = await scope.server({ name: 'console' });
});

async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, timezoneId: 'Europe/Paris', locale: 'en-GB' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // A refused request is logged by the browser itself; the page handles it.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.errors = errors;
  return page;
}

async function signIn(page, key = API_KEY, s = server) {
  await page.goto(`${s.url}/console/`);
  const input = page.getByLabel('API key or admin JWT');
  await input.waitFor();
  // Keyboard only: the field has focus on load, Enter submits.
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
}

const shot = (page, name) => page.screenshot({ path: resolve(SHOTS, `${name}.png`), fullPage: false });

describe('admin console', () => {
  test('a wrong key shows an error, nothing is fetched before sign-in, and nothing is kept', async () => {
    const page = await newPage();
    const api = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) api.push(r.url());
    });
    await page.goto(`${server.url}/console/`);
    await page.getByLabel('API key or admin JWT').waitFor();
    assert.deepEqual(api, [], 'no API request before sign-in');
    await signIn(page, 'not-a-valid-key-0000000000000000000000');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent(), /UNAUTHORIZED/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
    await shot(page, 'console-signin-refused');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('sign in, browse the seeded project, live chat and tail, emit, sign out', async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Demo workspace' }).waitFor();
    await shot(page, 'console-projects');

    // Overview: members with presence.
    await page.getByRole('link', { name: 'Demo workspace' }).click();
    await page.getByRole('heading', { name: 'Members and presence' }).waitFor();
    assert.ok(await page.getByRole('cell', { name: 'carol', exact: true }).isVisible());
    await shot(page, 'console-overview');

    // A receipt stored before the console opens the chat: bob read the welcome message.
    const bob = await scope.user(server, 'bob');
    await joinChat(bob, 'general');
    const markRead = async (id) => assertAckOk(await emitAck(bob, 'messages:mark:read', { chatId: 'general', projectId: 'demo', messageIds: [id] }));
    const welcome = (await chatHistory(server, 'general', { sub: 'bob' }))
      .find((m) => m.content.startsWith('Welcome to Switchboard!'));
    await markRead(welcome.id);

    // Chats: the seeded history, with its reaction and the stored receipt.
    await page.getByRole('link', { name: 'Chats' }).click();
    await page.getByRole('link', { name: 'General' }).click();
    await page.getByText('Welcome to Switchboard!').waitFor();
    await page.locator('.badge[data-state="live"]').waitFor();
    assert.match(await page.locator('.reactions').first().textContent(), /👋 1/);
    const readLine = (id) => page.locator(`li.message[data-id="${id}"] .receipts`);
    assert.equal(await readLine(welcome.id).textContent(), 'Read by bob');

    // A message from a socket.io-client shows up without a reload, and so does its receipt.
    const alice = await scope.user(server, 'alice');
    await joinChat(alice, 'general');
    const text = `hello from socket.io ${uniq()}`;
    const sent = await sendText(alice, 'general', text);
    await page.getByText(text).waitFor({ timeout: 5_000 });
    assert.equal(await readLine(sent.id).count(), 0, 'nobody has read it yet');
    await markRead(sent.id);
    await readLine(sent.id).getByText('bob').waitFor({ timeout: 5_000 });
    assert.equal(await readLine(sent.id).textContent(), 'Read by bob');

    // An edit and a deletion show up without a reload, each marked.
    const item = (id) => page.locator(`li.message[data-id="${id}"]`);
    const edited = `${text} (edited)`;
    assertAckOk(await emitAck(alice, 'message:edit', { chatId: 'general', projectId: 'demo', messageId: sent.id, content: edited }));
    await item(sent.id).getByText(edited).waitFor({ timeout: 5_000 });
    await item(sent.id).locator('.tag', { hasText: 'edited' }).waitFor();
    const gone = await sendText(alice, 'general', `to be deleted ${uniq()}`);
    await item(gone.id).waitFor({ timeout: 5_000 });
    assertAckOk(await emitAck(alice, 'message:delete', { chatId: 'general', projectId: 'demo', messageId: gone.id }));
    await item(gone.id).getByText('Message deleted').waitFor({ timeout: 5_000 });
    assert.equal(await item(gone.id).getAttribute('class'), 'message is-deleted');
    await shot(page, 'console-chat');

    // Collections with a filter in the live-query language.
    // The collections holding documents are offered as buttons; picking one fills the field.
    await page.getByRole('link', { name: 'Collections' }).click();
    const picker = page.getByRole('list', { name: 'Collections of the project' });
    await picker.getByRole('button', { name: /^tasks\b/ }).click();
    assert.equal(await page.getByLabel('Collection', { exact: true }).inputValue(), 'tasks');
    assert.equal(await picker.getByRole('button', { name: /^tasks\b/ }).getAttribute('aria-pressed'), 'true');
    await page.getByLabel('Filter (JSON, the live-query language)').fill('{ "status": { "$in": ["doing", "todo"] } }');
    await page.getByLabel('Sort (field,-other)').fill('-priority');
    await page.getByRole('button', { name: 'Query' }).click();
    await page.getByRole('cell', { name: 'task-3' }).waitFor();
    assert.equal(await page.getByRole('cell', { name: 'task-1' }).count(), 0, 'the filter leaves task-1 out');
    await shot(page, 'console-collections');

    // Integrations: secrets masked, counters, webhook events.
    await page.getByRole('link', { name: 'Integrations' }).click();
    await page.getByRole('heading', { name: 'Status API' }).waitFor();
    const card = await page.locator('.card').first().textContent();
    assert.match(card, /\*{8}/, 'secrets are masked');
    assert.doesNotMatch(card, /demo-integration-token/);
    await shot(page, 'console-integrations');

    // Wallet: addresses, stored transactions from the REST listing, then a live one on top.
    const recordTx = (id) => http(server, '/api/projects/demo/wallet/transactions', {
      apiKey: API_KEY, method: 'POST',
      body: { id, addressId: 'addr-alice', amount: '0.25', direction: 'in', txHash: `0x${id}`, status: 'confirmed' },
    });
    const stored = `tx-stored-${uniq()}`;
    assert.equal((await recordTx(stored)).status, 201);
    await page.getByRole('link', { name: 'Wallet' }).click();
    await page.getByRole('table', { name: 'Addresses' }).waitFor();
    const txRows = page.getByRole('table', { name: 'Transactions of the project, newest first' }).locator('tbody tr');
    await txRows.filter({ hasText: `0x${stored}` }).waitFor();
    await page.locator('.badge[data-state="live"]').waitFor();
    const live = `tx-live-${uniq()}`;
    assert.equal((await recordTx(live)).status, 201);
    await txRows.first().filter({ hasText: `0x${live}` }).waitFor({ timeout: 5_000 });
    await shot(page, 'console-wallet');

    // Live tail of the chat room, then an emit from the console that a client receives.
    await page.goto(`${server.url}/console/#/p/demo/live?room=chat:general`);
    await page.locator('.badge[data-state="live"]').waitFor();
    const text2 = `tail me ${uniq()}`;
    await sendText(alice, 'general', text2);
    await page.locator('ol.tail').getByText(text2).waitFor({ timeout: 5_000 });

    await page.getByRole('button', { name: 'Pause' }).click();
    const text3 = `held while paused ${uniq()}`;
    await sendText(alice, 'general', text3);
    await page.getByText('1 new event(s) waiting').waitFor();
    assert.equal(await page.locator('ol.tail').getByText(text3).count(), 0);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.locator('ol.tail').getByText(text3).waitFor();

    const form = page.locator('form.emit');
    await form.getByLabel('Room').fill('chat:general');
    await form.getByLabel('Event').fill('console:hello');
    await form.getByLabel('Payload (JSON)').fill('{ "text": "from the console" }');
    const got = waitFor(alice, 'console:hello', 5_000);
    await form.getByRole('button', { name: 'Emit' }).click();
    assert.deepEqual(await got, { text: 'from the console' });
    await form.getByText('Sent console:hello').waitFor();
    await page.locator('ol.tail').getByText('console:hello').waitFor();
    await shot(page, 'console-live');

    // Cluster figures: this node's Socket.IO connection is counted.
    await page.getByRole('link', { name: 'Cluster' }).click();
    await page.getByRole('table', { name: 'Connections by protocol' }).waitFor();
    await page.getByRole('link', { name: 'chat:general' }).waitFor();
    await shot(page, 'console-cluster');

    // Sign out forgets the key.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or admin JWT').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a message read by more than ten names the first ten and counts the rest, live too', async () => {
    // A project of 14 members, one chat of all of them, one message: seeded from a folder of
    // its own.
    const dir = await mkdtemp(join(tmpdir(), 'sb-console-crowd-'));
    const users = Array.from({ length: 14 }, (_, i) => `u${String(i + 1).padStart(2, '0')}`);
    const at = '2026-01-01T09:00:00.000Z';
    await writeFile(join(dir, 'crowd.json'), JSON.stringify({
      projects: [{ id: 'crowd', name: 'Crowd', members: users, createdAt: at }],
      users: users.map((id) => ({ id, name: id })),
      chats: [{ id: 'crowd', projectId: 'crowd', name: 'Everyone', participants: users, ownerId: 'u01', createdAt: at }],
      messages: [{
        id: '6955b6d0cccccccccccc0001', chatId: 'crowd', projectId: 'crowd', senderId: 'u01', type: 'text',
        content: 'Read me, everyone.', replyTo: null, mentions: [], reactions: [], createdAt: at, editedAt: null, deletedAt: null,
      }],
    }));
    const crowd = await scope.server({ name: 'console-crowd', env: { SEEDS_DIR: dir } });
    const id = '6955b6d0cccccccccccc0001';
    const read = async (user) => {
      const s = await scope.user(crowd, user);
      await joinChat(s, 'crowd', 'crowd');
      assertAckOk(await emitAck(s, 'messages:mark:read', { chatId: 'crowd', projectId: 'crowd', messageIds: [id] }));
    };
    // u02 … u13 read it in order before the console opens.
    for (const u of users.slice(1, 13)) await read(u);

    const page = await newPage();
    await signIn(page, API_KEY, crowd);
    await page.getByRole('link', { name: 'Crowd' }).waitFor();
    await page.goto(`${crowd.url}/console/#/p/crowd/chats/crowd`);
    await page.locator('.badge[data-state="live"]').waitFor();
    const line = page.locator(`li.message[data-id="${id}"] .receipts`);
    assert.equal(await line.textContent(), `Read by ${users.slice(1, 11).join(', ')} and 2 more`);
    assert.equal(await line.getAttribute('data-read-count'), '12');
    assert.match(await line.locator('.reader').first().getAttribute('title'), /^read /);

    // A 13th reader, live: counted, not named (the first ten are).
    await read('u14');
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.readCount === '13', `li.message[data-id="${id}"] .receipts`, { timeout: 5_000 });
    assert.match(await line.textContent(), /and 3 more$/);
    await shot(page, 'console-chat-receipts');
    assert.deepEqual(page.errors, []);
    await page.context().close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a chat of 100,000 messages opens at its newest 50 and pages back 50 at a time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-console-big-'));
    const users = ['ann', 'bob'];
    const start = Date.parse('2026-01-01T00:00:00.000Z');
    const N = 100_000;
    const id = (i) => `6955b6d0${i.toString(16).padStart(16, '0')}`;
    const messages = Array.from({ length: N }, (_, i) => ({
      id: id(i), chatId: 'big', projectId: 'big', senderId: users[i % 2], type: 'text',
      content: `message ${i}`, replyTo: null, mentions: [], reactions: [],
      createdAt: new Date(start + i * 1000).toISOString(), editedAt: null, deletedAt: null,
    }));
    await writeFile(join(dir, 'big.json'), JSON.stringify({
      projects: [{ id: 'big', name: 'Big', members: users, createdAt: '2026-01-01T00:00:00.000Z' }],
      users: users.map((u) => ({ id: u, name: u })),
      chats: [{ id: 'big', projectId: 'big', name: 'Long history', participants: users, ownerId: 'ann', createdAt: '2026-01-01T00:00:00.000Z' }],
      messages,
    }));
    const big = await scope.server({ name: 'console-big', env: { SEEDS_DIR: dir } });
    const page = await newPage();
    await signIn(page, API_KEY, big);
    await page.getByRole('link', { name: 'Big' }).waitFor();
    await page.goto(`${big.url}/console/#/p/big/chats/big`);
    await page.locator('.badge[data-state="live"]').waitFor();
    const items = page.locator('li.message');
    assert.equal(await items.count(), 50);
    assert.equal(await items.first().getAttribute('data-id'), id(N - 1));
    assert.equal(await items.last().getAttribute('data-id'), id(N - 50));
    // Older pages come 50 at a time, by keyboard.
    const older = page.getByRole('button', { name: 'Load older messages' });
    await older.focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('li.message').length === 100, null, { timeout: 10_000 });
    assert.equal(await items.last().getAttribute('data-id'), id(N - 100));
    // The page stays usable: another view opens.
    await page.goto(`${big.url}/console/#/p/big`);
    await page.getByRole('heading', { level: 1, name: 'Big', exact: true }).waitFor();
    assert.deepEqual(page.errors, []);
    await page.context().close();
    await rm(dir, { recursive: true, force: true });
  });

  test('readable on a narrow window', async () => {
    const page = await newPage({ width: 390, height: 844 });
    await signIn(page);
    await page.goto(`${server.url}/console/#/p/demo/chats/general`);
    await page.getByText('Welcome to Switchboard!').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px too wide)`);
    await shot(page, 'console-chat-narrow');
    await page.context().close();
  });

  test('two nodes: cluster figures and a live tail of the other node\'s messages', { skip: !(process.env.SB_TEST_REDIS_URL && process.env.SB_TEST_MONGODB_URI) && 'SB_TEST_REDIS_URL / SB_TEST_MONGODB_URI not set (run scripts/test --e2e)' }, async () => {
    const prefix = `e2e_console_${Date.now()}`;
    const opts = { mongo: true, redis: true, prefix, db: prefix };
    const n1 = await scope.server({ name: 'console-n1', ...opts });
    const n2 = await scope.server({ name: 'console-n2', ...opts, seed: false });
    const bob = await scope.user(n2, 'bob');
    await joinChat(bob, 'general');
    const page = await newPage();
    await signIn(page, API_KEY, n1);
    await page.getByRole('link', { name: 'Demo workspace' }).waitFor();
    await page.goto(`${n1.url}/console/#/cluster`);
    // Each node reports every 5 s; both reports and bob's connection on n2 show up.
    const nodes = page.locator('dl.facts dd').first();
    await page.waitForFunction(() => document.querySelector('dl.facts dd')?.textContent === '2', null, { timeout: 15_000 });
    assert.equal(await nodes.textContent(), '2');
    await page.getByRole('combobox', { name: 'Project' }).selectOption('demo');
    // bob's rooms are on n2: they appear with n2's next report (every 5 s).
    const row = page.getByRole('row', { name: /chat:general/ });
    await row.waitFor({ timeout: 15_000 });
    assert.deepEqual(await row.getByRole('cell').allTextContents(), ['chat:general', '0', '1']);
    await shot(page, 'console-cluster-two-nodes');

    await page.goto(`${n1.url}/console/#/p/demo/live?room=chat:general`);
    await page.locator('.badge[data-state="live"]').waitFor();
    const text = `from the other node ${uniq()}`;
    await sendText(bob, 'general', text);
    await page.locator('ol.tail').getByText(text).waitFor({ timeout: 5_000 });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});
