// Alerts: language alerts (a range below that the root does not cover) and the security alerts
// of a child's credential, each with the path of the site that raised it.

import * as api from '../api.js';
import {h, num, derived, when, badge, table, empty, siteHref, fmtNumber} from '../dom.js';

export default {
  title: 'Alerts',
  topics: ['sites'],
  async load() {
    const res = await api.get('/v1/alerts');
    const list = res.data.alerts || [];
    if (!list.length) return empty('No alerts.');
    const rows = list.map((a, i) => [
      badge(a.kind || 'alert', a.kind === 'language' ? 'warn' : 'bad'),
      a.path ? h('a', {href: siteHref(a.path)}, a.path) : (a.child ? h('a', {href: siteHref(a.child)}, a.child) : '—'),
      a.child || '',
      a.range ? h('code', null, a.range) : '',
      h('div', null, a.parent_ranges ? h('div', {class: 'small'}, 'parent: ', a.parent_ranges.join(', ')) : null,
        a.root_ranges ? h('div', {class: 'small'}, 'root: ', a.root_ranges.join(', ')) : null),
      typeof a.count === 'number' ? h('div', null, num(res, 'alerts.' + i + '.count'), a.first ? h('div', {class: 'small'}, 'first ', when(a.first)) : null, a.last ? h('div', {class: 'small'}, 'last ', when(a.last)) : null) : '',
      a.message || '',
    ]);
    return h('section', {class: 'card'},
      h('p', {class: 'meta'}, derived(fmtNumber(list.length), {of: 'alerts'}), list.length === 1 ? ' alert.' : ' alerts.'),
      table('Alerts', ['kind', 'site', 'through child', 'range', 'ranges above', 'count', 'message'], rows, {quietCaption: true}));
  },
};
