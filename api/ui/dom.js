// DOM helpers for the console: every element is built with createElement and textContent, so
// no string from the API is ever parsed as HTML.

// h builds an element: h('a', {href: '#/sites', class: 'x'}, 'text', childNode, [more]).
// Attributes whose value is null, undefined or false are left out; true sets an empty attribute.
// Keys starting with "on" add event listeners.
export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// svg builds an SVG element (h with the SVG namespace).
export function svg(tag, attrs, ...children) {
  return h('svg:' + tag, attrs, ...children);
}

// fmtNumber writes a number with `,` thousands separators and every fraction digit it has,
// so that removing the commas gives back the API's value.
export function fmtNumber(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v);
  const s = String(v);
  if (s.includes('e')) return s;
  const neg = s.startsWith('-');
  const [int, frac] = (neg ? s.slice(1) : s).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + grouped + (frac !== undefined ? '.' + frac : '');
}

// num renders a number from an API answer: an element carrying data-source (the URL the page
// fetched), data-field (the dot path into the answer) and data-value (the raw JSON value).
// field is a dot path, or an array of keys when a key may hold a dot (a severity named
// "Critical (Firefox 2.0 ...)"): a dot path cannot name such a key, so that number carries
// data-derived and data-path (the keys as a JSON array) instead of data-field.
// With href it is a link to what the number sums. A missing value shows a dash.
export function num(res, field, opts = {}) {
  const keys = Array.isArray(field) ? field.map(String) : field.split('.');
  let v = res.data;
  for (const k of keys) v = v === null || v === undefined ? undefined : v[k];
  if (typeof v !== 'number') {
    return h('span', {class: 'na', title: 'no value'}, '—');
  }
  const attrs = {'data-value': JSON.stringify(v), class: 'num' + (opts.class ? ' ' + opts.class : '')};
  if (keys.some((k) => k.includes('.'))) {
    attrs['data-derived'] = res.url;
    attrs['data-path'] = JSON.stringify(keys);
  } else {
    attrs['data-source'] = res.url;
    attrs['data-field'] = keys.join('.');
  }
  if (opts.href) {
    attrs.href = opts.href;
    if (opts.label) attrs.title = opts.label;
    return h('a', attrs, fmtNumber(v));
  }
  return h('span', attrs, fmtNumber(v));
}

// derived renders a number the console computed (a percentage, a count of rows): it carries
// data-derived instead of data-source.
export function derived(text, opts = {}) {
  const attrs = {'data-derived': opts.of || '', class: 'num' + (opts.class ? ' ' + opts.class : '')};
  if (opts.href) {
    attrs.href = opts.href;
    return h('a', attrs, text);
  }
  return h('span', attrs, text);
}

// pct shows a 0..1 ratio as a percentage (derived), or a dash for null.
export function pct(ratio, opts = {}) {
  if (typeof ratio !== 'number') return h('span', {class: 'na', title: 'nothing applicable'}, '—');
  return derived((ratio * 100).toFixed(1) + ' %', opts);
}

// when formats an RFC 3339 time as "2026-12-02 22:56:50 UTC (3 min ago)"; with short, only
// the relative part, the full time in its title.
export function when(iso, short) {
  if (!iso) return h('span', {class: 'na'}, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1970) return h('span', {class: 'na'}, '—');
  const abs = d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  if (short) return h('time', {datetime: iso, title: abs}, ago(d));
  return h('time', {datetime: iso, title: abs}, abs, ' ', h('span', {class: 'ago'}, '(' + ago(d) + ')'));
}

// ago says how long before now a time is ("3 min ago", "in 2 h").
export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const a = Math.abs(s);
  let t;
  if (a < 60) t = a + ' s';
  else if (a < 3600) t = Math.round(a / 60) + ' min';
  else if (a < 86400 * 2) t = Math.round(a / 3600) + ' h';
  else t = Math.round(a / 86400) + ' d';
  return s >= 0 ? t + ' ago' : 'in ' + t;
}

// bytes formats a byte count for reading (derived text).
export function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

// badge is a small labelled state ("active", "stale").
export function badge(text, kind) {
  return h('span', {class: 'badge badge-' + (kind || 'plain')}, text);
}

// table builds a table with a caption (visually hidden when quiet), header cells and rows.
// head: array of strings or nodes; rows: arrays of cells (nodes or strings), or <tr> nodes.
export function table(caption, head, rows, opts = {}) {
  const thead = h('thead', null, h('tr', null, head.map((c) => (c instanceof Node && c.tagName === 'TH') ? c : h('th', {scope: 'col'}, c))));
  const tbody = h('tbody', null, rows.map((r) => (r instanceof Node ? r : h('tr', null, r.map((c) => h('td', null, c))))));
  const t = h('table', {class: opts.class || null}, h('caption', {class: opts.quietCaption ? 'sr-only' : null}, caption), thead, tbody);
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption}, t);
}

// errorBox shows a failed request: what was asked and the API's error text.
export function errorBox(err) {
  return h('div', {class: 'error-box', role: 'alert'},
    h('strong', null, err.status ? 'Request failed (' + err.status + ')' : 'Request failed'),
    err.url ? h('div', null, h('code', null, err.method && err.method !== 'GET' ? err.method + ' ' + err.url : err.url)) : null,
    h('div', {class: 'error-text'}, err.message || String(err)));
}

// facts is a list of [term, value] pairs (null pairs left out) as a dl; two lays it out in two
// columns of pairs on a wide screen.
export function facts(pairs, two) {
  return h('dl', {class: two ? 'facts two' : 'facts'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// section is a titled block of a view.
export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), ...children);
}

// empty is the text shown when a list has no rows.
export function empty(text) {
  return h('p', {class: 'empty'}, text);
}

// siteHref is the hash URL of a site page.
export function siteHref(path) {
  return '#/sites/' + encodeURIComponent(path);
}

// bulletinHref is the hash URL of a bulletin page.
export function bulletinHref(id) {
  return '#/bulletins/' + encodeURIComponent(id);
}
