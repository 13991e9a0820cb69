// Bulletin page (#/bulletins/<id>): the bulletin across sites, its breakdown per site, and its
// updates by language from the catalog.

import * as api from '../api.js';
import {h, num, pct, derived, badge, table, empty, errorBox, section, facts, siteHref, fmtNumber} from '../dom.js';
import {daysSince} from './bulletins.js';

// MAX_SITE_REQUESTS bounds the per-site requests one page makes.
const MAX_SITE_REQUESTS = 64;

function acrossSites(res) {
  const list = res.data.bulletins || [];
  if (!list.length) return section('Across sites', empty('No site reports this bulletin (it is not in their catalogs, or no summary has arrived).'));
  const r = list[0];
  const b = 'bulletins.0';
  const days = daysSince(r.released);
  return section('Across sites', facts([
    ['title', r.title || '—'],
    ['vendor', r.vendor || '—'],
    ['severity', [r.severity || '—', r.custom_severity ? h('span', null, ' ', badge('custom: ' + r.custom_severity, 'custom')) : null]],
    ['released', [r.released || '—', days === null ? '' : h('span', null, ' (', derived(fmtNumber(days), {of: b + '.released'}), ' days ago)')]],
    ['sites', num(res, b + '.sites', {href: '#/sites'})],
    ['applicable', num(res, b + '.applicable')],
    ['installed', num(res, b + '.installed')],
    ['required', num(res, b + '.required')],
    ['not required', num(res, b + '.not_required')],
    ['unknown', num(res, b + '.unknown')],
    ['compliance', pct(r.compliance, {of: b + '.compliance'})],
  ]));
}

async function perSite(id, comp) {
  const lines = (comp.data.sites || []).slice(0, MAX_SITE_REQUESTS);
  const answers = await Promise.all(lines.map((s) => api.tryGet('/v1/compliance/bulletins' + api.query({site: s.site, bulletin: id}))
    .catch((e) => ({error: e}))));
  const rows = lines.map((s, k) => {
    const res = answers[k];
    const site = h('th', {scope: 'row'}, h('a', {href: siteHref(s.path || s.site)}, s.path || s.site));
    if (res.error) return h('tr', null, site, h('td', {colspan: 7}, h('span', {class: 'error-text'}, res.error.message)));
    if (!(res.data.bulletins || []).length) return h('tr', null, site, h('td', {colspan: 7, class: 'na'}, 'not in this site\'s catalog'));
    const b = 'bulletins.0';
    return h('tr', {'data-site-path': s.path || s.site}, site,
      h('td', {class: 'n'}, num(res, b + '.applicable')),
      h('td', {class: 'n'}, num(res, b + '.installed')),
      h('td', {class: 'n'}, num(res, b + '.required')),
      h('td', {class: 'n'}, num(res, b + '.not_required')),
      h('td', {class: 'n'}, num(res, b + '.unknown')),
      h('td', {class: 'n'}, pct(res.data.bulletins[0].compliance, {of: b + '.compliance'})),
      h('td', null, s.stale ? badge('stale', 'bad') : badge('fresh', 'ok')));
  });
  const more = (comp.data.sites || []).length - lines.length;
  return section('Per site',
    rows.length ? table('Bulletin ' + id + ' per site', ['site', 'applicable', 'installed', 'required', 'not required', 'unknown', 'compliance', 'summary'], rows, {class: 'numeric'}) : empty('No site has sent a compliance summary.'),
    more > 0 ? h('p', {class: 'note'}, 'The first ', lines.length, ' sites are shown; filter the bulletins view by site for the others.') : null);
}

function catalogPart(cat) {
  const b = cat.data.bulletin || {};
  const updates = cat.data.updates || [];
  const byLang = new Map();
  updates.forEach((u, i) => {
    const lang = u.language || '(no language)';
    if (!byLang.has(lang)) byLang.set(lang, []);
    byLang.get(lang).push({u, i});
  });
  const langs = [...byLang.keys()].sort();
  const parts = [
    facts([
      ['catalog version', num(cat, 'version', {href: '#/catalog'})],
      ['revised', b.revised || '—'],
      ['feed', b.feed || '—'],
      b.disabled ? ['state', badge('disabled', 'warn')] : null,
      (b.cves || []).length ? ['CVEs', h('span', {class: 'cves'}, b.cves.join(', '))] : null,
    ]),
    b.description ? h('p', {class: 'description'}, b.description) : null,
  ];
  if (!updates.length) {
    parts.push(empty('This site\'s catalog lists no update of this bulletin in its languages.'));
  } else {
    parts.push(h('p', {class: 'meta'}, derived(fmtNumber(updates.length), {of: 'updates'}), ' updates in ', derived(fmtNumber(langs.length), {of: 'updates.language'}), ' languages.'));
    for (const lang of langs) {
      const list = byLang.get(lang);
      parts.push(h('h3', null, lang, ' ', h('span', {class: 'count'}, '(', derived(fmtNumber(list.length), {of: 'updates.language'}), ')')),
        table('Updates in ' + lang, ['update', 'title', 'file', 'restart', 'supersedes'], list.map(({u}) => [
          h('code', null, u.id), u.title || '', u.file_name || '', u.restart_required ? 'required' : 'no', (u.supersedes || []).join(', '),
        ]), {quietCaption: true}));
    }
  }
  return section('Updates by language', ...parts);
}

export default {
  title: (ctx) => 'Bulletin ' + ctx.arg,
  topics: ['compliance', 'catalog'],
  async load(ctx) {
    const id = ctx.arg;
    const site = ctx.params.get('site') || '';
    const subtree = site && ctx.params.get('subtree') === 'true' ? 'true' : '';
    const [across, cat, comp] = await Promise.all([
      api.tryGet('/v1/compliance/bulletins' + api.query({site, subtree, bulletin: id})),
      api.tryGet('/v1/catalog/bulletins/' + encodeURIComponent(id)),
      api.tryGet('/v1/compliance'),
    ]);
    const out = [h('p', null, h('a', {href: '#/bulletins'}, '← All bulletins'), site ? h('span', null, ' · selection: ', h('a', {href: siteHref(site)}, site), subtree ? ' and below' : '') : null)];
    out.push(across.data ? acrossSites(across) : section('Across sites', errorBox(across.error)));
    if (comp.data) out.push(await perSite(id, comp));
    else out.push(section('Per site', errorBox(comp.error)));
    out.push(cat.data ? catalogPart(cat) : section('Updates by language', errorBox(cat.error)));
    return h('div', null, out);
  },
};
