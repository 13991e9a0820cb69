// Sites: the hierarchy as an indented tree, each site with its role, ranges, link, lag, runs
// per stream, and its compliance (the /v1/compliance line of the same path).

import * as api from '../api.js';
import {h, num, pct, when, badge, table, empty, errorBox, siteHref, section} from '../dom.js';

export function healthKind(state) {
  return state === 'active' ? 'ok' : state === 'degraded' ? 'warn' : state === 'failed' ? 'bad' : 'plain';
}

// STREAMS is the order the run streams are listed in.
export const STREAMS = ['catalog', 'policies', 'settings', 'compliance'];

export function streamsOf(obj) {
  const keys = Object.keys(obj || {});
  return [...STREAMS.filter((s) => keys.includes(s)), ...keys.filter((k) => !STREAMS.includes(k)).sort()];
}

// runsCell lists the last run per stream of a tree line: when, verified, records.
export function runsCell(tree, i) {
  const runs = tree.data.sites[i].last_runs || {};
  const names = streamsOf(runs);
  if (!names.length) return h('span', {class: 'na'}, '—');
  return h('ul', {class: 'runs'}, names.map((s) => {
    const r = runs[s];
    return h('li', null, h('span', {class: 'stream'}, s), ' ',
      r.error ? badge('error', 'bad') : r.verified ? badge('verified', 'ok') : badge('not verified', 'warn'), ' ',
      when(r.finished_at, true), ', ', num(tree, 'sites.' + i + '.last_runs.' + s + '.records'), ' rec.',
      r.error ? h('div', {class: 'error-text'}, r.error) : null);
  }));
}

// nextCell lists the next run per stream ("continuous" or a time).
export function nextCell(next) {
  const names = streamsOf(next);
  if (!names.length) return h('span', {class: 'na'}, '—');
  return h('ul', {class: 'runs'}, names.map((s) => h('li', null, h('span', {class: 'stream'}, s), ' ',
    next[s] === 'continuous' ? 'continuous' : when(next[s], true))));
}

// complianceIndex maps a site path (and its `site` key) to its line index in /v1/compliance.
export function complianceIndex(comp) {
  const m = new Map();
  if (!comp || !comp.data) return m;
  (comp.data.sites || []).forEach((s, i) => {
    if (s.path) m.set(s.path, i);
    if (s.site && !m.has(s.site)) m.set(s.site, i);
  });
  return m;
}

// lineOf finds the compliance line of a tree path. The tree names sites by their path from the
// root ("hq/emea/emea-de"), the compliance report by their path from the reporting site
// ("emea/emea-de" at the child emea): below the root the prefix up to this site differs.
export function lineOf(idx, comp, rootPath, path) {
  if (idx.has(path)) return idx.get(path);
  const self = comp && comp.data ? (comp.data.sites || []).find((s) => s.depth === 0) : null;
  if (!self || !rootPath) return undefined;
  if (path === rootPath) return idx.get(self.path);
  if (path.startsWith(rootPath + '/')) return idx.get(self.path + path.slice(rootPath.length));
  return undefined;
}

function name(path) {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

function siteCell(path, depth) {
  const cell = h('div', {class: 'tree-site depth-' + Math.min(depth, 8)},
    depth ? h('span', {class: 'tree-branch', 'aria-hidden': 'true'}, '└ ') : null,
    h('a', {href: siteHref(path)}, name(path)),
    path !== name(path) ? h('div', {class: 'tree-path'}, path) : null);
  cell.style.paddingLeft = (depth * 1.25) + 'rem';
  return cell;
}

function complianceCells(comp, j) {
  if (j === undefined) return [h('span', {class: 'na'}, '—'), h('span', {class: 'na'}, '—'), h('span', {class: 'na'}, '—'), h('span', {class: 'na'}, 'no summary')];
  const line = comp.data.sites[j];
  const base = 'sites.' + j;
  return [
    num(comp, base + '.computers', {href: '#/bulletins?site=' + encodeURIComponent(line.site)}),
    num(comp, base + '.compliant', {href: '#/bulletins?site=' + encodeURIComponent(line.site)}),
    pct(line.compliance, {of: base + '.compliance'}),
    h('div', null, line.stale ? badge('stale', 'bad') : badge('fresh', 'ok'), ' ', when(line.as_of, true)),
  ];
}

function treeTable(tree, comp, health) {
  const idx = complianceIndex(comp);
  const top = tree.data.sites[0];
  const rows = tree.data.sites.map((s, i) => {
    const j = lineOf(idx, comp, top.path, s.path);
    // Depths count from the root; indent by the depth below this site (the first line).
    const depth = s.depth - top.depth;
    const hs = depth === 1 && s.via ? health.get(s.via) : undefined;
    return h('tr', {'data-site-path': s.path},
      h('th', {scope: 'row'}, siteCell(s.path, depth)),
      h('td', null, s.role || ''),
      h('td', null, (s.ranges || []).join(', ') || h('span', {class: 'na'}, 'none')),
      h('td', null, i === 0 ? 'this site' : h('div', null,
        s.connected ? badge('connected', 'ok') : badge('not connected', 'bad'),
        hs ? h('div', null, badge(hs, healthKind(hs))) : null)),
      h('td', {class: 'n'}, num(tree, 'sites.' + i + '.lag_index')),
      h('td', {class: 'n'}, num(tree, 'sites.' + i + '.lag_seconds')),
      h('td', null, runsCell(tree, i)),
      h('td', null, nextCell(s.next_runs)),
      h('td', null, (s.alerts || []).length ? h('a', {href: '#/alerts'}, badge((s.alerts || []).join(', '), 'warn')) : ''),
      ...complianceCells(comp, j).map((c, k) => h('td', {class: k < 3 ? 'n' : null}, c)));
  });
  return table('Sites: ' + (tree.data.sites[0] ? tree.data.sites[0].path : 'this site') + ' and every site below it',
    ['site', 'role', 'ranges', 'link', 'lag (index)', 'lag (s)', 'last run per stream', 'next run', 'alerts', 'computers', 'compliant', 'compliance', 'summary'],
    rows, {class: 'tree'});
}

// complianceOnly is the tree for a role that may not read /v1/tree (rollout): the compliance
// lines, which carry path and depth.
function complianceOnly(comp) {
  const rows = comp.data.sites.map((s, j) => h('tr', {'data-site-path': s.path || s.site},
    h('th', {scope: 'row'}, siteCell(s.path || s.site, s.depth || 0)),
    ...complianceCells(comp, j).map((c, k) => h('td', {class: k < 3 ? 'n' : null}, c))));
  return table('Sites and their compliance', ['site', 'computers', 'compliant', 'compliance', 'summary'], rows, {quietCaption: true, class: 'tree'});
}

export default {
  title: 'Sites',
  topics: ['sites', 'compliance'],
  async load() {
    const [tree, comp, children] = await Promise.all([
      api.tryGet('/v1/tree'),
      api.tryGet('/v1/compliance'),
      api.tryGet('/v1/children'),
    ]);
    const health = new Map();
    if (children.data) for (const c of children.data.children || []) health.set(c.name, c.health);
    const out = [];
    if (tree.data) {
      out.push(h('p', {class: 'meta'}, 'Root catalog version ', num(tree, 'root_version'), '; tree as of ', when(tree.data.as_of),
        comp.data ? h('span', null, '; compliance as of ', when(comp.data.as_of)) : null));
      out.push(h('section', {class: 'card'}, treeTable(tree, comp.data ? comp : null, health)));
    } else if (comp.data) {
      out.push(h('p', {class: 'note'}, 'Your role may not read the tree of links (', tree.error.message, '); the sites below come from the compliance report.'));
      out.push(h('section', {class: 'card'}, comp.data.sites && comp.data.sites.length ? complianceOnly(comp) : empty('No site has sent a compliance summary yet.')));
    } else {
      out.push(section('Sites', errorBox(tree.error), errorBox(comp.error)));
    }
    return h('div', null, out);
  },
};
