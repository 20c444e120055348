// Small DOM helpers shared by the console's views: elements built with textContent only (no
// HTML strings, so nothing a client stored can inject markup), times in the viewer's time zone,
// tables, and the error and paging blocks.

/** h('tag.class#id', { attr, on: { click } }, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [, tag = 'div', rest = ''] = /^([a-z0-9-]*)(.*)$/i.exec(spec);
  const el = document.createElement(tag || 'div');
  for (const part of rest.match(/[.#][^.#]+/g) ?? []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k in el && typeof v !== 'string') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** A <time> in the viewer's zone, the ISO value in its title. */
/** A time as plain text in the viewer's time zone (for tooltips). */
export function localTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

export function time(iso) {
  if (!iso) return h('span.muted', { text: '—' });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', { text: String(iso) });
  return h('time', { datetime: d.toISOString(), title: d.toISOString(), text: dateTime.format(d) });
}

/** JSON shown compactly, in full on hover or in a <pre> when `pre`. */
export function json(value, pre = false) {
  const text = JSON.stringify(value, null, pre ? 2 : 0) ?? 'undefined';
  return pre ? h('pre.json', { text }) : h('code.json', { text, title: text.length > 120 ? text : undefined });
}

/** columns: [[header, row => cell]] */
export function table(caption, columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p.muted', { text: empty });
  return h(
    'div.table-wrap',
    {},
    h(
      'table',
      {},
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, columns.map(([head]) => h('th', { scope: 'col', text: head })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(r)))))),
    ),
  );
}

export function errorBox(e) {
  const code = e && e.code ? ` (${e.code})` : '';
  return h('p.error', { role: 'alert', text: `${e?.message ?? e}${code}` });
}

export function loading() {
  return h('p.muted', { role: 'status', text: 'Loading…' });
}

export function button(label, onClick, extra = {}) {
  return h('button', { type: 'button', on: { click: onClick }, ...extra, text: label });
}

/** A labelled input: returns [wrapper, input]. */
export function field(label, attrs = {}) {
  const id = attrs.id ?? `f-${Math.random().toString(36).slice(2, 9)}`;
  const input = attrs.multiline ? h('textarea', { ...attrs, id, multiline: undefined }) : h('input', { type: 'text', ...attrs, id });
  return [h('div.field', {}, h('label', { for: id, text: label }), input), input];
}

export function link(href, text) {
  return h('a', { href, text });
}
