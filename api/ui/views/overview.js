// Overview: rolled-up totals, compliance by severity, alerts and the health of the links.

import * as api from '../api.js';
import {h, num, pct, derived, when, badge, section, table, empty, errorBox, siteHref, fmtNumber} from '../dom.js';
import {stackedBars, legend, PARTS} from '../chart.js';
import {healthKind} from './sites.js';

// SEVERITY_ORDER puts the usual vendor levels first; others follow by name.
const SEVERITY_ORDER = ['critical', 'high', 'important', 'moderate', 'medium', 'low'];

// severityRank orders severity names: custom levels (most severe first) if the catalog has
// them, then the usual vendor levels, then the rest by name.
export function severityRank(custom) {
  const levels = (custom || []).map((s) => String(s).toLowerCase());
  return (name) => {
    const n = name.toLowerCase();
    const c = levels.indexOf(n);
    if (c >= 0) return c;
    const i = SEVERITY_ORDER.findIndex((s) => n === s || n.startsWith(s + ' '));
    return levels.length + (i >= 0 ? i : SEVERITY_ORDER.length);
  };
}

export function sortSeverities(names, custom) {
  const rank = severityRank(custom);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function healthCounts(children) {
  const c = {active: 0, degraded: 0, failed: 0};
  for (const ch of children) {
    const k = ch.health || 'active';
    c[k] = (c[k] || 0) + 1;
  }
  return c;
}

function totalsCard(comp) {
  const t = 'totals.';
  const cells = PARTS.map((p) => h('div', {class: 'stat'},
    h('div', {class: 'stat-label'}, p.label + ' cells'),
    h('div', {class: 'stat-value'}, num(comp, t + 'cells.' + p.key, {href: '#/bulletins?sort=-' + p.key, label: p.label + ' cells: bulletins with the most first'}))));
  const sitesLines = comp.data.sites || [];
  let oldest = null;
  sitesLines.forEach((s, i) => {
    const t = Date.parse(s.as_of);
    if (!Number.isNaN(t) && (!oldest || t < oldest.t)) oldest = {line: s, i, t};
  });
  return section('Compliance',
    h('div', {class: 'stats'},
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'sites'), h('div', {class: 'stat-value'}, num(comp, t + 'sites', {href: '#/sites', label: 'sites'}))),
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'stale sites'), h('div', {class: 'stat-value'}, num(comp, t + 'stale_sites', {href: '#/sites', label: 'stale sites'}))),
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'computers'), h('div', {class: 'stat-value'}, num(comp, t + 'computers', {href: '#/sites', label: 'computers'}))),
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'compliant computers'), h('div', {class: 'stat-value'}, num(comp, t + 'compliant', {href: '#/sites', label: 'compliant computers'}))),
      h('div', {class: 'stat stat-main'}, h('div', {class: 'stat-label'}, 'compliance'), h('div', {class: 'stat-value'}, pct(comp.data.totals && comp.data.totals.compliance, {of: 'totals.compliance', href: '#/sites'})))),
    h('div', {class: 'stats stats-cells'}, cells),
    h('p', {class: 'meta'}, 'As of ', when(comp.data.as_of),
      oldest ? h('span', null, '; oldest site summary: ', h('a', {href: siteHref(oldest.line.path || oldest.line.site)}, oldest.line.path || oldest.line.site), ' as of ', when(oldest.line.as_of)) : '; no site summary yet'));
}

function severityCard(comp, custom) {
  const sev = (comp.data.totals && comp.data.totals.severities) || {};
  const names = sortSeverities(Object.keys(sev), custom);
  if (!names.length) return section('Compliance by severity', empty('No compliance summary has arrived yet.'));
  const rows = names.map((n) => ({label: n, values: sev[n]}));
  const chart = stackedBars('Computer and bulletin pairs by state, per severity', rows);
  const f = (n, k) => num(comp, ['totals', 'severities', n, k], {href: '#/bulletins?severity=' + encodeURIComponent(n)});
  const tbl = table('Computer and bulletin pairs per severity',
    ['severity', 'installed', 'required', 'not required', 'unknown', 'compliance'],
    names.map((n) => {
      const v = sev[n];
      const applicable = (v.installed || 0) + (v.required || 0);
      return [h('a', {href: '#/bulletins?severity=' + encodeURIComponent(n)}, n), f(n, 'installed'), f(n, 'required'), f(n, 'not_required'), f(n, 'unknown'),
        applicable ? pct(v.installed / applicable, {of: 'totals.severities.' + n}) : pct(null)];
    }), {class: 'numeric'});
  return section('Compliance by severity', h('div', {class: 'chart-wrap'}, chart), legend(), tbl);
}

function alertsCard(al) {
  if (al.error) return section('Alerts', errorBox(al.error));
  const list = al.data.alerts || [];
  const kinds = {};
  for (const a of list) kinds[a.kind] = (kinds[a.kind] || 0) + 1;
  return section('Alerts',
    h('p', {class: 'big'}, derived(fmtNumber(list.length), {of: 'alerts', href: '#/alerts', class: list.length ? 'warn' : ''}), ' ', list.length === 1 ? 'alert' : 'alerts'),
    list.length ? h('ul', null, Object.entries(kinds).map(([k, n]) => h('li', null, h('a', {href: '#/alerts'}, derived(fmtNumber(n), {of: 'alerts'}), ' ', k)))) : null);
}

function linksCard(st) {
  if (st.error) return section('Link health', errorBox(st.error));
  const s = st.data;
  const parts = [];
  const children = s.children || [];
  if (children.length) {
    const c = healthCounts(children);
    parts.push(h('div', {class: 'stats'}, ['active', 'degraded', 'failed'].map((k) => h('div', {class: 'stat'},
      h('div', {class: 'stat-label'}, k + ' links'),
      h('div', {class: 'stat-value'}, derived(fmtNumber(c[k]), {of: 'children.health', href: '#/sites', class: k !== 'active' && c[k] ? 'bad' : ''}))))));
    parts.push(table('Links to the children of ' + s.name, ['child', 'health', 'connected', 'lag (index)', 'lag (s)', 'status'],
      children.map((ch, i) => [
        h('a', {href: siteHref(s.name + '/' + ch.name)}, ch.name),
        badge(ch.health || 'unknown', healthKind(ch.health)),
        ch.connected ? 'yes' : 'no',
        num(st, 'children.' + i + '.lag_index'),
        num(st, 'children.' + i + '.lag_seconds'),
        ch.status || '',
      ]), {class: 'numeric'}));
  }
  if (s.parent) {
    parts.push(h('p', null, 'Link to the parent ', h('code', null, s.parent.url || ''), ': ',
      badge(s.parent.health || s.parent.state || 'unknown', healthKind(s.parent.health)),
      ' last contact ', when(s.parent.last_contact)));
  }
  if (!parts.length) parts.push(empty('This site has no children and no parent.'));
  return section('Link health', ...parts);
}

export default {
  title: 'Overview',
  topics: ['compliance', 'sites', 'catalog'],
  async load() {
    const [comp, al, st, sev] = await Promise.all([
      api.tryGet('/v1/compliance'),
      api.tryGet('/v1/alerts'),
      api.tryGet('/v1/status'),
      api.tryGet('/v1/catalog/severities'),
    ]);
    const custom = sev.data ? sev.data.levels : [];
    const out = [];
    if (comp.error) out.push(section('Compliance', errorBox(comp.error)));
    else out.push(totalsCard(comp), severityCard(comp, custom));
    out.push(h('div', {class: 'grid-2'}, alertsCard(al), linksCard(st)));
    return h('div', null, out);
  },
};
