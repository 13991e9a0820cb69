// Bulletins: per bulletin across sites, filtered as GET /v1/compliance/bulletins allows, sorted
// on the page, with the same selection as CSV.

import * as api from '../api.js';
import {h, num, pct, derived, badge, table, empty, bulletinHref, siteHref, fmtNumber} from '../dom.js';

// FILTERS are the API's filter parameters, in the order the request URL lists them.
export const FILTERS = ['site', 'subtree', 'severity', 'vendor', 'released_from', 'released_to', 'bulletin'];

// COLUMNS are the table's sortable columns: key (the sort parameter), label, and the value a
// row sorts by.
const COLUMNS = [
  {key: 'bulletin', label: 'bulletin', val: (r) => r.bulletin},
  {key: 'title', label: 'title', val: (r) => r.title || ''},
  {key: 'vendor', label: 'vendor', val: (r) => r.vendor || ''},
  {key: 'severity', label: 'severity', val: (r) => r.custom_severity || r.severity || ''},
  {key: 'released', label: 'released', val: (r) => r.released || ''},
  {key: 'days', label: 'days old', val: (r) => daysSince(r.released) ?? -1},
  {key: 'sites', label: 'sites', val: (r) => r.sites},
  {key: 'applicable', label: 'applicable', val: (r) => r.applicable},
  {key: 'installed', label: 'installed', val: (r) => r.installed},
  {key: 'required', label: 'required', val: (r) => r.required},
  {key: 'not_required', label: 'not req.', val: (r) => r.not_required},
  {key: 'unknown', label: 'unknown', val: (r) => r.unknown},
  {key: 'compliance', label: 'compliance', val: (r) => (r.compliance === null || r.compliance === undefined ? -1 : r.compliance)},
];

export function daysSince(day) {
  if (!day) return null;
  const t = Date.parse(day + 'T00:00:00Z');
  if (Number.isNaN(t)) return null;
  return Math.floor((Date.now() - t) / 86400000);
}

// apiURL is the request for the filters in the hash's parameters.
export function apiURL(params, extra) {
  const q = {};
  for (const k of FILTERS) q[k] = params.get(k) || '';
  if (q.subtree !== 'true') q.subtree = '';
  return '/v1/compliance/bulletins' + api.query({...q, ...(extra || {})});
}

function hashFor(params, changes) {
  const p = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === '' || v === null || v === undefined) p.delete(k);
    else p.set(k, v);
  }
  const s = p.toString();
  return '#/bulletins' + (s ? '?' + s : '');
}

function field(id, label, value, attrs = {}) {
  return h('div', {class: 'field'}, h('label', {for: id}, label), h('input', {id, name: id, value: value || '', ...attrs}));
}

function filterForm(ctx) {
  const p = ctx.params;
  const sitesList = h('datalist', {id: 'f-sites'});
  const sevList = h('datalist', {id: 'f-severities'});
  // Suggestions for the site and severity fields (what the compliance report names).
  api.get('/v1/compliance').then((c) => {
    const seen = new Set();
    for (const s of c.data.sites || []) {
      for (const v of [s.site, s.path]) {
        if (v && !seen.has(v)) { seen.add(v); sitesList.appendChild(h('option', {value: v})); }
      }
    }
    for (const n of Object.keys((c.data.totals && c.data.totals.severities) || {})) sevList.appendChild(h('option', {value: n}));
  }).catch(() => {});
  const form = h('form', {class: 'filters', 'aria-label': 'Filter bulletins'},
    field('f-site', 'Site (name or path)', p.get('site'), {list: 'f-sites', autocomplete: 'off'}),
    h('div', {class: 'field field-check'}, h('input', {id: 'f-subtree', type: 'checkbox', checked: p.get('subtree') === 'true'}), h('label', {for: 'f-subtree'}, 'and every site below it')),
    field('f-severity', 'Severity', p.get('severity'), {list: 'f-severities', autocomplete: 'off'}),
    field('f-vendor', 'Vendor', p.get('vendor')),
    field('f-from', 'Released from', p.get('released_from'), {type: 'date'}),
    field('f-to', 'Released to', p.get('released_to'), {type: 'date'}),
    field('f-bulletin', 'Bulletin id (exact)', p.get('bulletin'), {autocomplete: 'off'}),
    field('f-text', 'Text in id or title (this page)', p.get('text'), {type: 'search', autocomplete: 'off'}),
    h('div', {class: 'field field-actions'},
      h('button', {type: 'submit'}, 'Apply filters'),
      h('a', {href: '#/bulletins', class: 'button-link'}, 'Clear')),
    sitesList, sevList);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector('#' + id).value.trim();
    ctx.navigate(hashFor(new URLSearchParams(), {
      site: v('f-site'),
      subtree: form.querySelector('#f-subtree').checked && v('f-site') ? 'true' : '',
      severity: v('f-severity'),
      vendor: v('f-vendor'),
      released_from: v('f-from'),
      released_to: v('f-to'),
      bulletin: v('f-bulletin'),
      text: v('f-text'),
      sort: ctx.params.get('sort') || '',
    }));
  });
  // On a phone the form starts folded unless a filter is set.
  const active = FILTERS.some((k) => p.get(k)) || p.get('text');
  const open = active || window.matchMedia('(min-width: 700px)').matches;
  return h('section', {class: 'card'}, h('details', {class: 'filters-box', open}, h('summary', null, 'Filters'), form), h('p', null, h('a', {'data-csv': true, href: apiURL(p, {format: 'csv'}), download: 'bulletins.csv'}, 'Download CSV'),
    ' (the same selection, from ', h('code', null, apiURL(p, {format: 'csv'})), ')'));
}

function headerCell(ctx, col, sort) {
  const desc = sort === '-' + col.key;
  const asc = sort === col.key;
  const next = asc ? '-' + col.key : col.key;
  return h('th', {scope: 'col', 'aria-sort': asc ? 'ascending' : desc ? 'descending' : 'none'},
    h('a', {href: hashFor(ctx.params, {sort: next}), class: 'sort', title: 'Sort by ' + col.label}, col.label, asc ? ' ▲' : desc ? ' ▼' : ''));
}

// rowsOf answers the API's rows with their index in the answer, filtered by the page's text
// filter and sorted by the hash's sort parameter (the API's order when none).
export function rowsOf(data, params) {
  const text = (params.get('text') || '').toLowerCase();
  let rows = (data.bulletins || []).map((r, i) => ({r, i}));
  if (text) rows = rows.filter(({r}) => r.bulletin.toLowerCase().includes(text) || (r.title || '').toLowerCase().includes(text));
  const sort = params.get('sort') || '';
  const col = COLUMNS.find((c) => c.key === sort.replace(/^-/, ''));
  if (col) {
    const dir = sort.startsWith('-') ? -1 : 1;
    rows.sort((a, b) => {
      const x = col.val(a.r);
      const y = col.val(b.r);
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir || a.i - b.i;
    });
  }
  return rows;
}

export default {
  title: 'Bulletins',
  topics: ['compliance', 'catalog'],
  head(ctx) {
    return filterForm(ctx);
  },
  async load(ctx) {
    const res = await api.get(apiURL(ctx.params));
    const rows = rowsOf(res.data, ctx.params);
    const sort = ctx.params.get('sort') || '';
    const site = ctx.params.get('site');
    // A bulletin's page keeps the site selection.
    const selection = site ? '?site=' + encodeURIComponent(site) + (ctx.params.get('subtree') === 'true' ? '&subtree=true' : '') : '';
    const summary = h('p', {class: 'meta'},
      derived(fmtNumber(rows.length), {of: 'bulletins'}), ' of ', derived(fmtNumber((res.data.bulletins || []).length), {of: 'bulletins'}), ' bulletins',
      site ? h('span', null, ' at ', h('a', {href: siteHref(site)}, site), ctx.params.get('subtree') === 'true' ? ' and below' : '') : ' across every site',
      '.');
    if (!rows.length) return h('div', null, summary, empty('No bulletin matches these filters.'));
    const body = rows.map(({r, i}) => {
      const b = 'bulletins.' + i;
      const days = daysSince(r.released);
      return h('tr', {'data-bulletin': r.bulletin},
        h('th', {scope: 'row'}, h('a', {href: bulletinHref(r.bulletin) + selection}, r.bulletin)),
        h('td', {class: 'title'}, r.title || ''),
        h('td', null, r.vendor || ''),
        h('td', null, r.severity || '', r.custom_severity ? h('div', null, badge(r.custom_severity, 'custom')) : null),
        h('td', {class: 'nowrap'}, r.released || ''),
        h('td', {class: 'n'}, days === null ? '—' : derived(fmtNumber(days), {of: b + '.released'})),
        h('td', {class: 'n'}, num(res, b + '.sites', {href: bulletinHref(r.bulletin)})),
        h('td', {class: 'n'}, num(res, b + '.applicable')),
        h('td', {class: 'n'}, num(res, b + '.installed')),
        h('td', {class: 'n'}, num(res, b + '.required', {href: bulletinHref(r.bulletin)})),
        h('td', {class: 'n'}, num(res, b + '.not_required')),
        h('td', {class: 'n'}, num(res, b + '.unknown')),
        h('td', {class: 'n'}, pct(r.compliance, {of: b + '.compliance'})));
    });
    return h('section', {class: 'card'}, summary, table('Bulletins across sites', COLUMNS.map((c) => headerCell(ctx, c, sort)), body, {quietCaption: true, class: 'numeric bulletins'}));
  },
};
