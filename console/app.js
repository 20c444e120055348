// The Switchboard admin console: a hash-routed page over the documented REST API. Nothing is
// fetched before sign-in; each view stops its streams and timers when the viewer leaves it.

import { api, stream, withQuery, credential, ApiError } from './api.js';
import { h, clear, time, localTime, json, table, errorBox, loading, button, field, link, timeZone } from './views.js';

const main = document.getElementById('main');
const topNav = document.getElementById('top-nav');
const sideNav = document.getElementById('side-nav');
const session = document.getElementById('session');

const enc = encodeURIComponent;
const MAX_TAIL_ROWS = 500;

let current = null; // AbortController of the view on screen
let lastProject = null; // the project last browsed, preselected where a project is chosen

// ---------------------------------------------------------------------------------------------
// Sign-in

function signIn(message) {
  clear(topNav);
  clear(sideNav);
  clear(session);
  document.body.classList.add('signed-out');
  const [keyField, input] = field('API key or admin JWT', {
    type: 'password',
    name: 'credential',
    autocomplete: 'off',
    required: true,
    spellcheck: 'false',
  });
  const status = h('div.status', { 'aria-live': 'polite' });
  if (message) status.append(errorBox(message));
  const submit = h('button', { type: 'submit', text: 'Sign in' });
  const form = h(
    'form.signin',
    {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const token = input.value.trim();
          if (!token) return;
          submit.disabled = true;
          clear(status, loading());
          try {
            // The cheapest documented read that every admin may make proves the credential.
            await api('/api/projects', { token });
            credential.set(token);
            input.value = '';
            route();
          } catch (e) {
            credential.clear();
            clear(status, errorBox(e instanceof ApiError && e.status === 401
              ? new ApiError(401, e.code, `Sign-in refused: ${e.message}`)
              : e));
            input.focus();
          } finally {
            submit.disabled = false;
          }
        },
      },
    },
    h('h1', { text: 'Sign in' }),
    h('p', { text: 'Use an API key (API_KEYS) or an admin JWT. It is kept in this tab only and forgotten when you sign out or close the tab.' }),
    keyField,
    submit,
    status,
  );
  clear(main, form);
  input.focus();
}

function signOut() {
  current?.abort();
  credential.clear();
  location.hash = '#/';
  signIn();
}

function chrome(project) {
  document.body.classList.remove('signed-out');
  const here = (location.hash || '#/').split('?')[0];
  const navLink = (href, text, exact = false) => {
    const a = link(href, text);
    if (here === href || (!exact && href !== '#/' && here.startsWith(href + '/'))) a.setAttribute('aria-current', 'page');
    return a;
  };
  clear(topNav, h('ul', {}, h('li', {}, navLink('#/', 'Projects')), h('li', {}, navLink('#/cluster', 'Cluster'))));
  const kind = (credential.get() ?? '').split('.').length === 3 ? 'a JWT' : 'an API key';
  clear(
    session,
    h('span.muted', { text: `Signed in with ${kind} · times in ${timeZone}` }),
    button('Sign out', signOut, { class: 'secondary' }),
  );
  if (!project) {
    clear(sideNav);
    return;
  }
  const base = `#/p/${enc(project)}`;
  clear(
    sideNav,
    h('h2', { text: project }),
    h(
      'ul',
      {},
      [
        [base, 'Overview', true],
        [`${base}/chats`, 'Chats'],
        [`${base}/data`, 'Collections'],
        [`${base}/integrations`, 'Integrations'],
        [`${base}/wallet`, 'Wallet'],
        [`${base}/live`, 'Live tail & emit'],
      ].map(([href, text, exact]) => h('li', {}, navLink(href, text, exact))),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Routing

const routes = [
  [/^#?\/?$/, projectsView],
  [/^#\/cluster$/, clusterView],
  [/^#\/p\/([^/]+)$/, overviewView],
  [/^#\/p\/([^/]+)\/chats$/, chatsView],
  [/^#\/p\/([^/]+)\/chats\/([^/]+)$/, chatView],
  [/^#\/p\/([^/]+)\/data$/, dataView],
  [/^#\/p\/([^/]+)\/integrations$/, integrationsView],
  [/^#\/p\/([^/]+)\/wallet$/, walletView],
  [/^#\/p\/([^/]+)\/live$/, liveView],
];

async function route() {
  current?.abort();
  if (!credential.get()) return signIn();
  const ctl = new AbortController();
  current = ctl;
  const hash = (location.hash || '#/').split('?')[0];
  for (const [re, view] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    const params = m.slice(1).map(decodeURIComponent);
    if (params[0]) lastProject = params[0];
    chrome(params[0]);
    clear(main, loading());
    try {
      await view(params, ctl.signal);
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e instanceof ApiError && e.status === 401) {
        credential.clear();
        return signIn(e);
      }
      clear(main, h('h1', { text: 'Something went wrong' }), errorBox(e));
    }
    return;
  }
  chrome();
  clear(main, h('h1', { text: 'Not found' }), h('p', {}, link('#/', 'Back to the projects')));
}

window.addEventListener('hashchange', () => {
  route().then(() => main.focus({ preventScroll: true }));
});
route();

/** The `?…` part of the hash route (`#/p/demo/live?room=…`). */
function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
}

/** Runs `fn` every `ms` until the view goes away. */
function every(ms, signal, fn) {
  const t = setInterval(fn, ms);
  signal.addEventListener('abort', () => clearInterval(t));
}

/** Keeps a live-tail stream open (reconnecting after a drop) until the view goes away. */
function follow(project, room, signal, onEvent, onState = () => {}) {
  const path = withQuery(`/api/projects/${enc(project)}/tail`, { room });
  (async () => {
    while (!signal.aborted) {
      try {
        onState('connecting');
        await stream(path, (name, data) => {
          if (name === 'ready') onState('live');
          else onEvent(data);
        }, signal);
      } catch (e) {
        if (signal.aborted) return;
        onState('error', e);
        if (e instanceof ApiError && e.status < 500 && e.status !== 429) return;
      }
      if (signal.aborted) return;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
}

function liveBadge() {
  const badge = h('span.badge', { role: 'status', text: 'connecting…' });
  const set = (state, e) => {
    badge.dataset.state = state;
    badge.textContent = state === 'live' ? '● live' : state === 'error' ? `live updates off: ${e?.message ?? e}` : `${state}…`;
  };
  return [badge, set];
}

// ---------------------------------------------------------------------------------------------
// Projects

async function projectsView(_, signal) {
  const { projects } = await api('/api/projects', { signal });
  clear(
    main,
    h('h1', { text: 'Projects' }),
    table('Projects you can read', [
      ['Project', (p) => link(`#/p/${enc(p.id)}`, p.name || p.id)],
      ['Id', (p) => h('code', { text: p.id })],
      ['Members', (p) => String(p.members.length)],
      ['Created', (p) => time(p.createdAt)],
    ], projects, 'No projects.'),
  );
}

async function overviewView([p], signal) {
  const project = await api(`/api/projects/${enc(p)}`, { signal });
  const presence = await api(`/api/projects/${enc(p)}/presence`, { signal }).catch((e) => ({ error: e }));
  const online = new Map((presence.users ?? []).map((u) => [u.userId, u]));
  const rules = Object.entries(project.collections ?? {});
  clear(
    main,
    h('h1', { text: project.name || project.id }),
    h('dl.facts', {},
      h('dt', { text: 'Id' }), h('dd', {}, h('code', { text: project.id })),
      h('dt', { text: 'Created' }), h('dd', {}, time(project.createdAt)),
      h('dt', { text: 'Members' }), h('dd', { text: String(project.members.length) }),
      h('dt', { text: 'Present now' }), h('dd', { text: presence.error ? '—' : String(online.size) })),
    h('h2', { text: 'Members and presence' }),
    presence.error ? errorBox(presence.error) : null,
    table('Members', [
      ['User', (u) => h('code', { text: u })],
      ['Presence', (u) => (online.has(u) ? h('span.ok', { text: online.get(u).status }) : h('span.muted', { text: 'offline' }))],
      ['Connections', (u) => String(online.get(u)?.connections ?? 0)],
      ['Last seen', (u) => (online.has(u) ? time(online.get(u).lastSeen) : '—')],
    ], project.members, 'No members.'),
    h('h2', { text: 'Collection rules' }),
    table('Collection access rules', [
      ['Collection', ([c]) => h('code', { text: c })],
      ['Access', ([, r]) => r.access],
    ], rules, 'Every collection is readable by all members (no rules).'),
  );
}

// ---------------------------------------------------------------------------------------------
// Chats

async function chatsView([p], signal) {
  const { chats } = await api(`/api/projects/${enc(p)}/chats`, { signal });
  clear(
    main,
    h('h1', { text: 'Chats' }),
    table('Chats of the project', [
      ['Chat', (c) => link(`#/p/${enc(p)}/chats/${enc(c.id)}`, c.name || c.id)],
      ['Id', (c) => h('code', { text: c.id })],
      ['Participants', (c) => c.participants.join(', ')],
      ['Owner', (c) => c.ownerId],
      ['Created', (c) => time(c.createdAt)],
    ], chats, 'No chats.'),
  );
}

function messageItem(m, receipts) {
  const deleted = Boolean(m.deletedAt);
  const content = deleted
    ? h('p.deleted', { text: 'Message deleted' })
    : typeof m.content === 'string' ? h('p.content', { text: m.content }) : json(m.content, true);
  const read = receipts.get(m.id);
  return h(
    'li.message',
    { 'data-id': m.id, class: deleted ? 'message is-deleted' : 'message' },
    h('div.meta', {},
      h('strong', { text: m.senderId }), ' ', time(m.createdAt),
      m.type !== 'text' ? h('span.tag', { text: m.type }) : null,
      m.editedAt ? h('span.tag', { title: m.editedAt, text: 'edited' }) : null,
      deleted ? h('span.tag.warn', {}, 'deleted ', time(m.deletedAt)) : null,
      m.replyTo ? h('span.tag', { text: `reply to ${m.replyTo}` }) : null),
    content,
    m.reactions?.length
      ? h('ul.reactions', { 'aria-label': 'Reactions' }, m.reactions.map((r) => h('li', { title: r.userIds.join(', '), text: `${r.emoji} ${r.count}` })))
      : null,
    readLine(read),
  );
}

/** "Read by ann, bob and 37 more": the named readers (the page's first ten, then those seen
 *  live while they are all the message has) and a count of the rest. */
function readLine(read) {
  if (!read?.count) return null;
  const names = [...read.readers];
  const rest = read.count - names.length;
  const line = h('p.receipts', { 'data-read-count': String(read.count) }, 'Read by ');
  names.forEach(([user, at], i) => {
    if (i) line.append(i === names.length - 1 && rest <= 0 ? ' and ' : ', ');
    line.append(h('span.reader', { title: `read ${localTime(at)}`, text: user }));
  });
  if (rest > 0) line.append(` and ${rest} more`);
  return line;
}

/** A message's receipts as the history page gave them: `readCount` and the first `readBy`. */
function pageReceipts(m) {
  return { count: m.readCount ?? 0, readers: new Map((m.readBy ?? []).map((r) => [r.userId, r.readAt])) };
}

/** A live `messages:read` for one message. While every reader is named, a new one is added by
 *  name; once some are only counted, a reader not named may be one of them reading again, so
 *  the count grows (it can be one too high until the page is reloaded). */
function addReceipt(read, user, at) {
  if (read.readers.has(user)) return;
  if (read.readers.size >= read.count && read.readers.size < 10) read.readers.set(user, at);
  read.count += 1;
}

async function chatView([p, c], signal) {
  const chat = await api(`/api/chats/${enc(c)}`, { signal });
  const byId = new Map();
  const order = []; // newest first
  const receipts = new Map(); // message id → { count, readers: Map(user → readAt) }
  const list = h('ol.messages', { 'aria-label': 'Messages, newest first' });
  const more = h('div.paging');
  const [badge, setState] = liveBadge();
  let cursor = null;

  const render = () => clear(list, order.map((id) => messageItem(byId.get(id), receipts)));
  const load = async (before) => {
    const page = await api(withQuery(`/api/chats/${enc(c)}/messages`, { limit: 50, before }), { signal });
    for (const m of page.messages) {
      if (!byId.has(m.id)) order.push(m.id);
      byId.set(m.id, m);
      receipts.set(m.id, pageReceipts(m));
    }
    cursor = page.nextCursor;
    render();
    clear(more, cursor
      ? button('Load older messages', async (ev) => {
        ev.target.disabled = true;
        try { await load(cursor); } catch (e) { more.append(errorBox(e)); }
      })
      : h('p.muted', { text: order.length ? 'Beginning of the chat.' : 'No messages yet.' }));
  };

  clear(
    main,
    h('h1', { text: chat.name || chat.id }),
    h('p.muted', {}, `Participants: ${chat.participants.join(', ')} · owner ${chat.ownerId} · created `, time(chat.createdAt), ' ', badge),
    list,
    more,
  );
  await load();

  follow(p, `chat:${c}`, signal, (ev) => {
    const d = ev.payload ?? {};
    const m = byId.get(d.messageId);
    switch (ev.event) {
      case 'message:new':
        if (d.id && !byId.has(d.id)) order.unshift(d.id);
        if (d.id) byId.set(d.id, d);
        if (d.id && !receipts.has(d.id)) receipts.set(d.id, pageReceipts(d));
        break;
      case 'message:edited':
        if (m) Object.assign(m, { content: d.content, editedAt: d.editedAt });
        break;
      case 'message:deleted':
        if (m) Object.assign(m, { content: '', deletedAt: d.deletedAt });
        break;
      case 'message:reaction':
        if (m) m.reactions = d.reactions;
        break;
      case 'messages:read':
        for (const id of d.messageIds ?? []) {
          const read = receipts.get(id);
          if (read) addReceipt(read, d.userId, d.readAt);
        }
        break;
      default:
        return;
    }
    render();
  }, setState);
}

// ---------------------------------------------------------------------------------------------
// Collections and documents

async function dataView([p], signal) {
  const project = await api(`/api/projects/${enc(p)}`, { signal });
  // The collections that hold documents (one page of up to 500: a project holds at most
  // MAX_COLLECTIONS_PER_PROJECT, 100 by default), offered as buttons; the field still takes any
  // name, e.g. a declared collection that holds nothing yet.
  const { collections: stored } = await api(withQuery(`/api/projects/${enc(p)}/collections`, { limit: 500 }), { signal });
  const params = hashQuery();
  const known = [...new Set([...stored.map((c) => c.name), ...Object.keys(project.collections ?? {})])];
  const [collField, coll] = field('Collection', { list: 'known-collections', value: params.get('c') ?? known[0] ?? '', required: true, autocomplete: 'off' });
  const picks = stored.map((c) => {
    const b = button('', () => { coll.value = c.name; run(); }, { class: 'secondary', 'data-collection': c.name });
    b.append(h('span', { text: c.name }), ' ', h('span.tag', { text: c.access ?? 'members' }));
    return h('li', {}, b);
  });
  const pressed = () => {
    for (const b of main.querySelectorAll('button[data-collection]')) b.setAttribute('aria-pressed', String(b.dataset.collection === coll.value.trim()));
  };
  const [filterField, filter] = field('Filter (JSON, the live-query language)', { multiline: true, rows: 3, placeholder: '{ "status": { "$in": ["todo", "doing"] } }' });
  const [sortField, sort] = field('Sort (field,-other)', { placeholder: '-priority' });
  const [limitField, limit] = field('Page size', { type: 'number', min: 1, max: 1000, value: '25' });
  const out = h('div.results', { 'aria-live': 'polite' });
  const [badge, setState] = liveBadge();
  let live = null; // AbortController of the collection's live updates
  let refresh = () => {};

  const run = async (page = { skip: 0 }) => {
    const c = coll.value.trim();
    if (!c) return;
    pressed();
    let parsed;
    if (filter.value.trim()) {
      try {
        parsed = JSON.stringify(JSON.parse(filter.value));
      } catch (e) {
        clear(out, errorBox(new ApiError(400, 'INVALID_FILTER', `the filter is not JSON: ${e.message}`)));
        return;
      }
    }
    const n = Number(limit.value) || 25;
    const path = withQuery(`/api/projects/${enc(p)}/collections/${enc(c)}/documents`, {
      filter: parsed, sort: sort.value.trim(), limit: n, after: page.after, skip: page.skip || undefined,
    });
    clear(out, loading());
    try {
      const res = await api(path, { signal });
      const docs = res.documents;
      const keys = [...new Set(docs.flatMap((d) => Object.keys(d)))].filter((k) => k !== 'id').slice(0, 6);
      const rest = (d) => Object.fromEntries(Object.entries(d).filter(([k]) => k !== 'id' && !keys.includes(k)));
      const next = res.nextCursor
        ? { after: res.nextCursor }
        : sort.value.trim() && docs.length === n ? { skip: (page.skip || 0) + n } : null;
      clear(
        out,
        table(`Documents of ${c}`, [
          ['Id', (d) => h('code', { text: d.id })],
          ...keys.map((k) => [k, (d) => (d[k] === undefined ? '' : typeof d[k] === 'object' ? json(d[k]) : String(d[k]))]),
          ['Other fields', (d) => (Object.keys(rest(d)).length ? json(rest(d)) : '')],
        ], docs, 'No documents match.'),
        h('div.paging', {},
          page.after || page.skip ? button('First page', () => run()) : null,
          next ? button('Next page', () => run(next)) : h('span.muted', { text: 'Last page.' })),
      );
      refresh = () => run(page);
    } catch (e) {
      if (!signal.aborted) clear(out, errorBox(e));
    }
    if (live?.collection !== c) {
      live?.abort();
      live = new AbortController();
      live.collection = c;
      signal.addEventListener('abort', () => live.abort());
      let pending = null;
      follow(p, `collection:${p}:${c}`, live.signal, () => {
        // Changes come in bursts; one re-read of the page shows them all.
        clearTimeout(pending);
        pending = setTimeout(() => refresh(), 300);
      }, setState);
    }
  };

  clear(
    main,
    h('h1', { text: 'Collections' }, ' ', badge),
    stored.length
      ? h('ul.collections', { 'aria-label': 'Collections of the project' }, picks)
      : h('p.muted', { text: 'No collection holds documents yet.' }),
    h('datalist#known-collections', {}, known.map((k) => h('option', { value: k }))),
    h('form.query', { on: { submit: (ev) => { ev.preventDefault(); run(); } } },
      collField, filterField, h('div.row', {}, sortField, limitField),
      h('button', { type: 'submit', text: 'Query' })),
    out,
  );
  if (coll.value) await run();
}

// ---------------------------------------------------------------------------------------------
// Integrations

async function integrationsView([p], signal) {
  const { integrations } = await api(`/api/projects/${enc(p)}/integrations`, { signal });
  const cards = await Promise.all(integrations.map(async (i) => {
    const base = `/api/projects/${enc(p)}/integrations/${enc(i.id)}`;
    const [status, events] = await Promise.all([
      api(`${base}/status`, { signal }).catch((e) => ({ error: e })),
      api(withQuery(`${base}/webhook-events`, { limit: 20 }), { signal }).catch((e) => ({ error: e })),
    ]);
    return h(
      'section.card',
      { 'aria-labelledby': `int-${i.id}` },
      h('h2', { id: `int-${i.id}`, text: i.name || i.id }),
      h('dl.facts', {},
        h('dt', { text: 'Id' }), h('dd', {}, h('code', { text: i.id })),
        h('dt', { text: 'Base URL' }), h('dd', {}, h('code', { text: i.baseUrl })),
        h('dt', { text: 'Enabled' }), h('dd', { text: i.enabled ? 'yes' : 'no' }),
        h('dt', { text: 'Headers' }), h('dd', {}, json(i.headers ?? {})),
        h('dt', { text: 'Webhook secret' }), h('dd', { text: i.webhookSecret ?? 'none' }),
        h('dt', { text: 'Status' }), h('dd', {}, status.error ? errorBox(status.error) : h('span', { class: status.status === 'active' ? 'ok' : 'warn', text: status.status })),
        h('dt', { text: 'Executions' }), h('dd', { text: status.error ? '—' : `${status.executions} (${status.failures} failed)` }),
        h('dt', { text: 'Last run' }), h('dd', {}, status.lastExecutedAt ? time(status.lastExecutedAt) : '—', status.lastError ? ` · ${status.lastError}` : '')),
      h('h3', { text: 'Endpoints' }),
      table('Endpoints', [
        ['Name', ([n]) => h('code', { text: n })],
        ['Method', ([, e]) => e.method],
        ['Path', ([, e]) => h('code', { text: e.path })],
      ], Object.entries(i.endpoints ?? {}), 'No endpoints.'),
      h('h3', { text: 'Latest webhook events' }),
      events.error ? errorBox(events.error) : table('Webhook events, newest first', [
        ['Received', (e) => time(e.receivedAt)],
        ['Id', (e) => h('code', { text: e.id })],
        ['Body', (e) => json(e.body)],
      ], events.events, 'No webhook events received.'),
    );
  }));
  clear(main, h('h1', { text: 'Integrations' }), h('p.muted', { text: 'Secrets are shown masked, as the API returns them.' }), cards.length ? cards : h('p.muted', { text: 'No integrations.' }));
}

// ---------------------------------------------------------------------------------------------
// Wallet

async function walletView([p], signal) {
  const { addresses } = await api(`/api/projects/${enc(p)}/wallet/addresses`, { signal });
  const txs = h('tbody');
  const more = h('div.paging');
  const [badge, setState] = liveBadge();
  // Stored pages (50 at a time, cursor `before`) and live transactions share one list keyed by
  // id: a status update recorded again under the same id replaces its row instead of adding one.
  const byId = new Map();
  const order = []; // newest first
  let cursor = null;
  const row = (t) => h('tr', { 'data-id': t.id },
    h('td', {}, time(t.createdAt)), h('td', {}, h('code', { text: t.addressId })), h('td', { text: t.direction }),
    h('td', { text: `${t.amount} ${t.currency}` }), h('td', { text: t.status }), h('td', { text: String(t.confirmations ?? '') }),
    h('td', {}, h('code', { text: t.txHash })));
  const render = () => clear(txs, order.map((id) => row(byId.get(id))));
  const load = async (before) => {
    const page = await api(withQuery(`/api/projects/${enc(p)}/wallet/transactions`, { limit: 50, before }), { signal });
    for (const t of page.transactions) {
      if (!byId.has(t.id)) order.push(t.id);
      byId.set(t.id, t);
    }
    cursor = page.nextCursor;
    render();
    clear(more, cursor
      ? button('Load older transactions', async (ev) => {
        ev.target.disabled = true;
        try { await load(cursor); } catch (e) { more.append(errorBox(e)); }
      })
      : h('p.muted', { text: order.length ? 'No older transactions.' : 'No transactions yet.' }));
  };
  clear(
    main,
    h('h1', { text: 'Wallet' }),
    table('Addresses', [
      ['Id', (a) => h('code', { text: a.id })],
      ['Owner', (a) => a.userId],
      ['Chain', (a) => a.chain],
      ['Currency', (a) => a.currency],
      ['Address', (a) => h('code', { text: a.address })],
    ], addresses, 'No addresses.'),
    h('h2', {}, 'Transactions ', badge),
    h('div.table-wrap', {}, h('table', {},
      h('caption', { text: 'Transactions of the project, newest first' }),
      h('thead', {}, h('tr', {}, ['Time', 'Address', 'Direction', 'Amount', 'Status', 'Confirmations', 'Tx'].map((t) => h('th', { scope: 'col', text: t })))),
      txs)),
    more,
  );
  await load();
  follow(p, `wallet:project:${p}`, signal, (ev) => {
    if (ev.event !== 'wallet:transaction') return;
    const t = ev.payload ?? {};
    if (!t.id) return;
    if (!byId.has(t.id)) order.unshift(t.id);
    byId.set(t.id, t);
    render();
  }, setState);
}

// ---------------------------------------------------------------------------------------------
// Live tail and emit

async function liveView([p], signal) {
  const params = hashQuery();
  const [roomField, room] = field('Room', { value: params.get('room') ?? `project:${p}`, list: 'project-rooms', autocomplete: 'off' });
  const rooms = h('datalist#project-rooms');
  api(`/api/projects/${enc(p)}/rooms?limit=500`, { signal })
    .then((r) => clear(rooms, r.rooms.map((x) => h('option', { value: x.room }))))
    .catch(() => {});
  const rows = h('ol.tail', { 'aria-label': 'Events, newest first' });
  const [badge, setState] = liveBadge();
  const waiting = h('span.muted', { 'aria-live': 'polite' });
  let paused = false;
  let held = [];
  let tail = null;

  const show = (ev) => {
    rows.prepend(h('li', {},
      h('div.meta', {}, time(ev.at), ' ', h('code', { text: ev.room }), ' ', h('strong', { text: ev.event })),
      json(ev.payload, true)));
    while (rows.children.length > MAX_TAIL_ROWS) rows.lastElementChild.remove();
  };
  const pause = button('Pause', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      held.forEach(show);
      held = [];
    }
    waiting.textContent = paused ? 'Paused: new events wait here.' : '';
  }, { 'aria-pressed': 'false' });
  const start = () => {
    tail?.abort();
    tail = new AbortController();
    signal.addEventListener('abort', () => tail.abort());
    clear(rows);
    held = [];
    follow(p, room.value.trim(), tail.signal, (ev) => {
      if (paused) {
        held.push(ev);
        if (held.length > MAX_TAIL_ROWS) held.shift();
        waiting.textContent = `Paused: ${held.length} new event(s) waiting.`;
      } else {
        show(ev);
      }
    }, setState);
  };

  const [eRoomField, eRoom] = field('Room', { value: `project:${p}`, list: 'project-rooms', autocomplete: 'off' });
  const [eventField, event] = field('Event', { required: true, placeholder: 'announcement', autocomplete: 'off' });
  const [payloadField, payload] = field('Payload (JSON)', { multiline: true, rows: 4, value: '{ "text": "Hello from the console" }' });
  const emitStatus = h('div.status', { 'aria-live': 'polite' });
  const emitForm = h('form.emit', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        let body;
        try {
          body = { room: eRoom.value.trim() || undefined, event: event.value.trim(), payload: payload.value.trim() ? JSON.parse(payload.value) : null };
        } catch (e) {
          clear(emitStatus, errorBox(new ApiError(400, 'INVALID_PAYLOAD', `the payload is not JSON: ${e.message}`)));
          return;
        }
        try {
          await api(`/api/projects/${enc(p)}/emit`, { method: 'POST', body });
          clear(emitStatus, h('p.ok', { role: 'status', text: `Sent ${body.event} to ${body.room ?? `project:${p}`}.` }));
        } catch (e) {
          clear(emitStatus, errorBox(e));
        }
      },
    },
  }, h('h2', { text: 'Emit into a room' }), eRoomField, eventField, payloadField, h('button', { type: 'submit', text: 'Emit' }), emitStatus);

  clear(
    main,
    h('h1', { text: 'Live tail' }),
    rooms,
    h('div.split', {},
      h('section', { 'aria-labelledby': 'tail-h' },
        h('h2#tail-h', {}, 'Events in a room ', badge),
        h('form.tail-form', { on: { submit: (ev) => { ev.preventDefault(); start(); } } },
          roomField, h('div.row', {}, h('button', { type: 'submit', text: 'Watch' }), pause, button('Clear', () => clear(rows), { class: 'secondary' }))),
        waiting,
        rows),
      emitForm),
  );
  start();
}

// ---------------------------------------------------------------------------------------------
// Cluster

async function clusterView(_, signal) {
  const summary = h('div');
  const roomsOut = h('div');
  const { projects } = await api('/api/projects', { signal });
  const select = h('select#rooms-project', { on: { change: () => loadRooms() } }, projects.map((p) => h('option', { value: p.id, text: p.name || p.id, selected: p.id === lastProject })));

  const loadNodes = async () => {
    const s = await api('/api/admin/nodes', { signal });
    const protocols = Object.keys(s.cluster.connections);
    clear(
      summary,
      h('dl.facts', {},
        h('dt', { text: 'Nodes' }), h('dd', { text: String(s.cluster.nodes) }),
        h('dt', { text: 'Connections' }), h('dd', { text: String(s.cluster.total) }),
        h('dt', { text: 'This node' }), h('dd', {}, h('code', { text: s.node })),
        h('dt', { text: 'Cluster view' }), h('dd', { text: s.clustered ? 'every node (Redis)' : 'this node only' })),
      table('Connections by protocol', [
        ['Node', (n) => h('span', {}, h('code', { text: n.node }), n.node === s.node ? ' (this one)' : '')],
        ...protocols.map((pr) => [pr, (n) => String(n.connections[pr] ?? 0)]),
        ['Rooms', (n) => String(n.rooms)],
        ['Reported', (n) => time(n.at)],
        ['Up since', (n) => time(n.startedAt)],
      ], [...s.nodes, { node: 'cluster', connections: s.cluster.connections, rooms: s.nodes.reduce((a, n) => a + n.rooms, 0) }]),
    );
  };
  let roomsAfter; // the rooms page on screen, kept by the periodic refresh
  const loadRooms = async (after) => {
    roomsAfter = after;
    const p = select.value;
    if (!p) return;
    try {
      const r = await api(withQuery(`/api/projects/${enc(p)}/rooms`, { limit: 50, after }), { signal });
      clear(roomsOut,
        table(`Rooms of ${p} with members`, [
          ['Room', (x) => link(`#/p/${enc(p)}/live?room=${enc(x.room)}`, x.room)],
          ['Members here', (x) => String(x.here)],
          ['Members in the cluster', (x) => String(x.cluster)],
        ], r.rooms, 'No rooms with members.'),
        h('div.paging', {}, after ? button('First page', () => loadRooms()) : null, r.nextCursor ? button('Next page', () => loadRooms(r.nextCursor)) : null));
    } catch (e) {
      clear(roomsOut, errorBox(e));
    }
  };
  clear(
    main,
    h('h1', { text: 'Cluster' }),
    h('div.row', {}, button('Refresh', () => { loadNodes().catch((e) => summary.append(errorBox(e))); loadRooms(); })),
    summary,
    h('h2', { text: 'Rooms and members' }),
    h('div.field', {}, h('label', { for: 'rooms-project', text: 'Project' }), select),
    roomsOut,
  );
  await loadNodes();
  await loadRooms();
  every(5000, signal, () => {
    loadNodes().catch(() => {});
    loadRooms(roomsAfter);
  });
}
