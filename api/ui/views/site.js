// Site page (#/sites/<path>): one site's place in the tree, its link, its compliance and, for
// a direct child, its run history as charts.

import * as api from '../api.js';
import {h, num, pct, when, badge, table, empty, errorBox, section, facts, siteHref, bytes} from '../dom.js';
import {timeSeries, stackedBars, legend} from '../chart.js';
import {healthKind, runsCell, nextCell, complianceIndex, lineOf} from './sites.js';
import {sortSeverities} from './overview.js';

// RUN_LIMIT is how many runs the history asks for (the API's default page).
const RUN_LIMIT = 100;

function treeFacts(tree, i) {
  const s = tree.data.sites[i];
  const b = 'sites.' + i;
  return section('Place in the tree', facts([
    ['path', h('code', null, s.path)],
    ['role', s.role || '—'],
    ['depth', num(tree, b + '.depth')],
    ['ranges', (s.ranges || []).join(', ') || 'none'],
    s.via ? ['reached through', h('a', {href: siteHref(tree.data.sites[0].path + '/' + s.via)}, s.via)] : null,
    s.depth ? ['connected', s.connected ? badge('connected', 'ok') : badge('not connected', 'bad')] : null,
    ['catalog cursor', num(tree, b + '.cursor')],
    ['root catalog version', num(tree, b + '.root_version')],
    ['lag', h('span', null, num(tree, b + '.lag_index'), ' indexes, ', num(tree, b + '.lag_seconds'), ' s')],
    (s.alerts || []).length ? ['alerts', h('a', {href: '#/alerts'}, badge(s.alerts.join(', '), 'warn'))] : null,
  ], true), facts([
    ['last run per stream', runsCell(tree, i)],
    ['next run per stream', nextCell(s.next_runs)],
  ]));
}

function linkFacts(ch) {
  const c = ch.data;
  return section('Link to ' + c.name, facts([
    ['health', badge(c.health || 'unknown', healthKind(c.health))],
    ['consecutive failures', num(ch, 'consecutive_failures')],
    ['status', c.status || '—'],
    ['joined', c.joined ? 'yes' : 'no'],
    ['last seen', when(c.last_seen)],
    ['catalog cursor', num(ch, 'cursor')],
    ['policy cursor', h('span', null, num(ch, 'policy_cursor'), ' (lag ', num(ch, 'policy_lag'), ')')],
    ['settings cursor', num(ch, 'settings_cursor')],
    ['next run', c.next_run ? when(c.next_run) : '—'],
    c.compliance ? ['summary sequence', num(ch, 'compliance.seq')] : null,
  ], true));
}

function complianceFacts(comp, j) {
  const s = comp.data.sites[j];
  const b = 'sites.' + j;
  const out = [facts([
    ['computers', num(comp, b + '.computers', {href: '#/bulletins?site=' + encodeURIComponent(s.site)})],
    ['compliant computers', num(comp, b + '.compliant', {href: '#/bulletins?site=' + encodeURIComponent(s.site)})],
    ['compliance', pct(s.compliance, {of: b + '.compliance'})],
    ['installed cells', num(comp, b + '.cells.installed')],
    ['required cells', num(comp, b + '.cells.required', {href: '#/bulletins?site=' + encodeURIComponent(s.site)})],
    ['not required cells', num(comp, b + '.cells.not_required')],
    ['unknown cells', num(comp, b + '.cells.unknown')],
    ['as of', when(s.as_of)],
    ['last contact', when(s.last_contact)],
    ['interval', s.interval || '—'],
    ['sequence', num(comp, b + '.seq')],
    ['staleness', s.stale ? badge('stale', 'bad') : badge('fresh', 'ok')],
  ], true)];
  if (s.subtree && s.subtree.sites > 1) {
    out.push(h('h3', null, 'With every site below it'), facts([
      ['sites', num(comp, b + '.subtree.sites')],
      ['stale sites', num(comp, b + '.subtree.stale_sites')],
      ['computers', num(comp, b + '.subtree.computers', {href: '#/bulletins?subtree=true&site=' + encodeURIComponent(s.site)})],
      ['compliant computers', num(comp, b + '.subtree.compliant')],
      ['compliance', pct(s.subtree.compliance, {of: b + '.subtree.compliance'})],
    ], true));
  }
  const sev = s.severities || {};
  const names = sortSeverities(Object.keys(sev), []);
  if (names.length) {
    out.push(h('div', {class: 'chart-wrap'}, stackedBars('Computer and bulletin pairs by state, per severity, at ' + s.path, names.map((n) => ({label: n, values: sev[n]})))), legend());
  }
  out.push(h('p', null, h('a', {href: '#/bulletins?site=' + encodeURIComponent(s.site)}, 'Bulletins at this site')));
  return section('Compliance', ...out);
}

function history(runs, child) {
  const list = runs.data.runs || [];
  if (!list.length) return section('Run history', empty('No runs to ' + child + ' yet.'));
  const pts = (key) => list.filter((r) => r.finished_at || r.started_at).map((r) => ({
    t: new Date(r.finished_at || r.started_at), v: r[key] || 0, label: r.scope, bad: !!r.error || r.verified === false,
  }));
  const charts = h('div', {class: 'charts'},
    h('figure', null, timeSeries('Records per run to ' + child, 'records', pts('records')), h('figcaption', null, 'Records per run')),
    h('figure', null, timeSeries('Bytes on the wire per run to ' + child, 'bytes', pts('bytes_wire')), h('figcaption', null, 'Bytes on the wire per run')),
    h('figure', null, timeSeries('Duration per run to ' + child, 'ms', pts('duration_ms')), h('figcaption', null, 'Duration per run (ms)')));
  const rows = list.map((r, i) => {
    const b = 'runs.' + i;
    return [
      when(r.finished_at || r.started_at, true), r.scope || '', r.mode || '', r.trigger || '',
      num(runs, b + '.records'), num(runs, b + '.deletes'),
      h('span', {title: bytes(r.bytes_wire)}, num(runs, b + '.bytes_wire')),
      h('span', {title: bytes(r.bytes_raw)}, num(runs, b + '.bytes_raw')),
      num(runs, b + '.duration_ms'),
      r.error ? h('span', {class: 'error-text'}, r.error) : r.verified ? badge('verified', 'ok') : badge('not verified', 'warn'),
    ];
  });
  return section('Run history',
    h('p', {class: 'meta'}, 'The newest ', list.length, ' runs to ', child, ' (', h('code', null, runs.url), ').'),
    charts,
    table('Runs to ' + child + ', newest first', ['finished', 'scope', 'mode', 'trigger', 'records', 'deletes', 'bytes on the wire', 'bytes raw', 'duration (ms)', 'result'], rows, {class: 'numeric'}));
}

export default {
  title: (ctx) => 'Site ' + ctx.arg,
  topics: ['sites', 'compliance'],
  async load(ctx) {
    const [tree, comp] = await Promise.all([api.tryGet('/v1/tree'), api.tryGet('/v1/compliance')]);
    // The argument is a path ("hq/emea") or a compliance line's site key ("emea").
    const rootPath = tree.data && tree.data.sites.length ? tree.data.sites[0].path : '';
    const j = comp.data ? lineOf(complianceIndex(comp), comp, rootPath, ctx.arg) : undefined;
    // The tree's path of the site: the argument, unless it named a compliance line by its key.
    let path = ctx.arg;
    if (tree.data && !tree.data.sites.some((s) => s.path === path) && j !== undefined) {
      const line = comp.data.sites[j];
      const self = comp.data.sites.find((s) => s.depth === 0);
      if (self && rootPath && line.path && (line.path === self.path || line.path.startsWith(self.path + '/'))) path = rootPath + line.path.slice(self.path.length);
      else if (line.path) path = line.path;
    }
    const back = h('p', null, h('a', {href: '#/sites'}, '← All sites'));
    let depth = null;
    let child = null;
    let treePart = null;
    let compPart = null;
    if (tree.data) {
      const i = tree.data.sites.findIndex((s) => s.path === path);
      if (i >= 0) {
        // Depths in the tree count from the root; this site is its first line.
        const s = tree.data.sites[i];
        depth = s.depth - tree.data.sites[0].depth;
        if (depth === 1) child = s.via || path.slice(path.lastIndexOf('/') + 1);
        treePart = treeFacts(tree, i);
      }
    }
    if (j !== undefined) {
      const line = comp.data.sites[j];
      if (depth === null) {
        depth = line.depth;
        if (line.depth === 1) child = line.name || line.site;
      }
      compPart = complianceFacts(comp, j);
    } else if (comp.error) {
      compPart = section('Compliance', errorBox(comp.error));
    } else if (comp.data) {
      compPart = section('Compliance', empty('No compliance summary of this site has arrived.'));
    }
    if (depth === null) {
      if (tree.error && comp.error) return h('div', null, back, errorBox(tree.error));
      return h('div', null, back, errorBox({message: 'no site with the path "' + path + '" in this site\'s tree'}));
    }
    let linkPart = null;
    let historyPart;
    if (child) {
      const [ch, runs] = await Promise.all([
        api.tryGet('/v1/children/' + encodeURIComponent(child)),
        api.tryGet('/v1/replication/runs' + api.query({child, limit: RUN_LIMIT})),
      ]);
      if (ch.data) linkPart = linkFacts(ch);
      historyPart = runs.data ? history(runs, child) : section('Run history', errorBox(runs.error));
    } else if (depth === 0) {
      historyPart = section('Run history', h('p', null, 'This is the site you are signed in to; its children\'s pages show the runs to each.'));
    } else {
      const parent = path.slice(0, path.lastIndexOf('/'));
      historyPart = section('Run history', h('p', null, 'Runs to this site are recorded at its own parent, ',
        h('a', {href: siteHref(parent)}, parent), '; that site\'s console shows them.'));
    }
    return h('div', null, back, treePart, historyPart, compPart, linkPart);
  },
};
