// Audit log (admin, auditor): entries oldest first, filtered by an action prefix, a page at a
// time (the API's `next` key starts the following page).

import * as api from '../api.js';
import {h, derived, when, table, empty, fmtNumber} from '../dom.js';

// PAGE is how many entries one page asks for.
const PAGE = 100;

function hashFor(params) {
  return '#/audit' + api.query(params);
}

function filterForm(ctx) {
  const form = h('form', {class: 'filters', 'aria-label': 'Filter the audit log'},
    h('div', {class: 'field'}, h('label', {for: 'a-action'}, 'Action prefix'),
      h('input', {id: 'a-action', value: ctx.params.get('action') || '', list: 'a-actions', autocomplete: 'off', placeholder: 'policy.'})),
    h('datalist', {id: 'a-actions'}, ['policy.', 'settings.', 'catalog.', 'child.', 'token.', 'replicate-now', 'languages.', 'snapshot.'].map((v) => h('option', {value: v}))),
    h('div', {class: 'field field-actions'}, h('button', {type: 'submit'}, 'Apply filter'), h('a', {href: '#/audit', class: 'button-link'}, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.navigate(hashFor({action: form.querySelector('#a-action').value.trim()}));
  });
  return form;
}

function detail(d) {
  if (d === undefined || d === null) return '';
  const text = JSON.stringify(d, null, 1);
  if (text.length <= 160) return h('code', {class: 'wrap'}, JSON.stringify(d));
  return h('details', null, h('summary', null, 'detail'), h('pre', null, text));
}

export default {
  title: 'Audit log',
  topics: ['audit'],
  head(ctx) {
    return filterForm(ctx);
  },
  async load(ctx) {
    const action = ctx.params.get('action') || '';
    const since = ctx.params.get('since') || '';
    const res = await api.get('/v1/audit' + api.query({since, action, limit: PAGE}));
    const list = res.data.entries || [];
    const nav = h('nav', {class: 'pager', 'aria-label': 'Audit pages'},
      since ? h('a', {href: hashFor({action})}, '« First page') : null,
      res.data.next ? h('a', {href: hashFor({action, since: res.data.next}), rel: 'next'}, 'Next page »') : null);
    if (!list.length) return h('div', null, empty(action ? 'No entry with an action starting with "' + action + '".' : 'The audit log is empty.'), nav);
    const rows = list.map((e) => [
      when(e.at),
      h('div', null, (e.actor && e.actor.name) || '', e.actor && e.actor.role ? h('div', {class: 'small muted'}, e.actor.role, e.actor.token_id ? ' · ' + e.actor.token_id : '') : null),
      h('code', null, e.action || ''),
      e.target || '',
      detail(e.detail),
      h('code', {class: 'small'}, e.key || ''),
    ]);
    return h('section', {class: 'card'},
      h('p', {class: 'meta'}, derived(fmtNumber(list.length), {of: 'entries'}), ' entries, oldest first', since ? ', from key ' + since : '', '.'),
      table('Audit entries', ['at', 'actor', 'action', 'target', 'detail', 'key'], rows, {quietCaption: true}),
      nav);
  },
};
