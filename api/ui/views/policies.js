// Policies: software update policies by folder, their state and how far each child has them;
// admin and rollout enable or disable a policy and replicate a policy or a folder now, watching
// each site report back.

import * as api from '../api.js';
import {h, num, derived, when, badge, table, empty, errorBox, section, siteHref, bulletinHref, fmtNumber} from '../dom.js';

// REPLICATE_TIMEOUT is how long a replicate-now waits for every site to apply the run.
const REPLICATE_TIMEOUT = '60s';

// MAX_CHILD_COLUMNS is how many children get a column each; with more, one column counts them.
const MAX_CHILD_COLUMNS = 6;

// byFolder groups policies (with their index in the answer) by folder, folders sorted.
function byFolder(list) {
  const m = new Map();
  list.forEach((p, i) => {
    const f = p.folder || 'Default';
    if (!m.has(f)) m.set(f, []);
    m.get(f).push({p, i});
  });
  return [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

// reached says whether a child holds a policy's current revision: its policy cursor has passed
// the policy's modify index.
function reached(child, p) {
  return typeof child.policy_cursor === 'number' && child.policy_cursor >= p.modify_index;
}

function childCell(status, k, p) {
  const c = status.data.children[k];
  const run = (c.last_runs || {}).policies;
  return h('td', null,
    reached(c, p) ? badge('has it', 'ok') : badge('pending', 'warn'),
    h('div', {class: 'small'}, 'cursor ', num(status, 'children.' + k + '.policy_cursor'),
      run ? h('span', null, ', last run ', when(run.finished_at, true), run.verified ? '' : ' (not verified)') : null));
}

// childrenSummary counts the children that have a policy's current revision and names the
// others.
function childrenSummary(st, kids, p) {
  const missing = kids.filter((c) => !reached(c, p));
  return h('td', null,
    derived(fmtNumber(kids.length - missing.length), {of: 'children.policy_cursor'}), ' of ', derived(fmtNumber(kids.length), {of: 'children'}),
    missing.length ? h('div', {class: 'small'}, 'pending: ', missing.map((c, i) => [i ? ', ' : '', h('a', {href: siteHref(st.siteName + '/' + c.name)}, c.name)])) : null);
}

export default {
  title: 'Policies',
  topics: ['policies', 'sites'],
  head(ctx) {
    // The messages and the replicate-now results stay while the list below refreshes.
    const message = h('div', {id: 'policy-message', role: 'status', 'aria-live': 'polite'});
    const result = h('section', {id: 'replicate-result', class: 'card', 'aria-live': 'polite', hidden: true});
    ctx.state = {message, result, pending: null, siteName: '', children: null};
    return h('div', null, message, result);
  },
  async load(ctx) {
    // GET /v1/status lists the children with their cursors for every role (GET /v1/children is
    // admin and auditor only).
    const [pol, status] = await Promise.all([api.get('/v1/policies'), api.tryGet('/v1/status')]);
    const st = ctx.state;
    st.siteName = status.data ? status.data.name : '';
    st.children = status.data ? status.data.children || [] : null;
    if (st.pending && st.children) markArrived(st);
    const list = pol.data.policies || [];
    if (!list.length) return empty('No policies yet. Create one with `patchtree policy create` or POST /v1/policies.');
    const kids = st.children || [];
    const folders = byFolder(list);
    const out = [];
    if (status.error) out.push(h('p', {class: 'note'}, 'Replication status per child is not shown: ', status.error.message));
    out.push(h('p', {class: 'meta'}, derived(fmtNumber(list.length), {of: 'policies'}), ' policies in ', derived(fmtNumber(folders.length), {of: 'policies.folder'}), ' folders.'));
    for (const [folder, rows] of folders) {
      const head = ['policy', 'bulletins', 'updates enabled', 'run', 'state', 'revision', 'origin', 'updated',
        ...(kids.length > MAX_CHILD_COLUMNS ? ['children with it'] : kids.map((c) => h('th', {scope: 'col'}, h('a', {href: siteHref(st.siteName + '/' + c.name)}, c.name)))),
        ctx.can('policy.toggle') ? 'actions' : null].filter((x) => x !== null);
      const trs = rows.map(({p, i}) => {
        const b = 'policies.' + i;
        const enabledUpdates = (p.updates || []).filter((u) => u.enabled).length;
        return h('tr', {'data-policy': p.id},
          h('th', {scope: 'row'}, h('div', null, p.name), h('div', {class: 'small'}, h('code', null, p.id)), p.description && p.description !== p.name ? h('div', {class: 'small muted'}, p.description) : null),
          h('td', null, (p.bulletins || []).map((id, k) => [k ? ', ' : '', h('a', {href: bulletinHref(id), class: 'nowrap'}, id)])),
          h('td', {class: 'n'}, derived(fmtNumber(enabledUpdates), {of: b + '.updates'}), ' of ', derived(fmtNumber((p.updates || []).length), {of: b + '.updates'})),
          h('td', null, p.run || ''),
          h('td', null, p.enabled ? badge('enabled', 'ok') : badge('disabled', 'warn')),
          h('td', {class: 'n'}, num(pol, b + '.revision')),
          h('td', null, p.origin || ''),
          h('td', null, when(p.updated_at, true), h('div', {class: 'small muted'}, p.updated_by || '')),
          ...(kids.length > MAX_CHILD_COLUMNS ? [childrenSummary(st, kids, p)] : kids.map((c, k) => childCell(status, k, p))),
          ctx.can('policy.toggle') ? h('td', {class: 'actions'}, actions(ctx, p, kids.length > 0)) : null);
      });
      out.push(h('section', {class: 'card folder', 'data-folder': folder},
        h('div', {class: 'folder-head'}, h('h2', null, 'Folder ', h('span', {class: 'folder-name'}, folder)),
          ctx.can('policy.replicate') && kids.length ? h('button', {type: 'button', 'data-write': true, 'data-action': 'replicate-now', 'data-folder': folder,
            onclick: (ev) => replicate(ctx, {folder}, 'folder ' + folder, ev.currentTarget)}, 'Replicate folder now') : null),
        table('Policies in ' + folder, head, trs, {quietCaption: true})));
    }
    return h('div', null, out);
  },
};

// actions are a policy's write buttons: enable/disable for a policy written here, replicate
// now when this site has children to send it to.
function actions(ctx, p, hasChildren) {
  const out = [];
  if (p.origin !== 'parent') {
    out.push(h('button', {type: 'button', 'data-write': true, 'data-action': 'toggle', 'aria-pressed': p.enabled ? 'true' : 'false',
      onclick: (ev) => toggle(ctx, p, ev.currentTarget)}, p.enabled ? 'Disable' : 'Enable'));
  }
  if (ctx.can('policy.replicate') && hasChildren) {
    out.push(h('button', {type: 'button', 'data-write': true, 'data-action': 'replicate-now',
      onclick: (ev) => replicate(ctx, {policy: p.id}, 'policy ' + p.name, ev.currentTarget)}, 'Replicate now'));
  }
  return out;
}

function say(ctx, node) {
  ctx.state.message.replaceChildren(node || '');
}

async function toggle(ctx, p, button) {
  button.disabled = true;
  say(ctx, h('p', null, (p.enabled ? 'Disabling ' : 'Enabling ') + p.name + '…'));
  try {
    const np = await api.write('PATCH', '/v1/policies/' + encodeURIComponent(p.id), {enabled: !p.enabled});
    say(ctx, h('p', {class: 'ok-text'}, 'Policy ', p.name, np.enabled ? ' enabled' : ' disabled', ' (revision ', String(np.revision), ').'));
    ctx.refresh();
  } catch (e) {
    button.disabled = false;
    say(ctx, errorBox(e));
  }
}

// siteLine is one site's line in the replicate-now result.
function siteLine(path, done, text, kind) {
  return h('li', {'data-site-path': path, 'data-done': done ? 'true' : 'false'},
    h('a', {href: siteHref(path)}, path), ' ', badge(text, kind));
}

// markArrived marks the pending sites whose child shows a new replicate-now policies run for
// the selection since the click (the run id changed), before the whole answer comes back.
function markArrived(st) {
  const pend = st.pending;
  for (const c of st.children) {
    const path = st.siteName + '/' + c.name;
    const li = pend.items.get(path);
    const run = (c.last_runs || {}).policies;
    if (!li || li.dataset.done === 'true' || !run || run.id === pend.before.get(c.name)) continue;
    if (run.trigger !== 'replicate-now') continue;
    const sec = run.policies || {};
    const ours = pend.target.policy ? (sec.ids || []).includes(pend.target.policy) : (sec.folders || []).includes(pend.target.folder);
    if (!ours) continue;
    li.replaceWith(siteLine(path, true, run.verified ? 'applied, verified' : 'applied, not verified', run.verified ? 'ok' : 'warn'));
    pend.items.set(path, null);
  }
}

async function replicate(ctx, target, what, button) {
  const st = ctx.state;
  const box = st.result;
  box.hidden = false;
  const list = h('ul', {class: 'site-results'});
  const items = new Map();
  const before = new Map();
  for (const c of st.children || []) {
    const path = st.siteName + '/' + c.name;
    const li = siteLine(path, false, 'waiting', 'plain');
    items.set(path, li);
    list.appendChild(li);
    before.set(c.name, ((c.last_runs || {}).policies || {}).id);
  }
  const head = h('h2', null, 'Replicate now: ' + what);
  const stateLine = h('p', {role: 'status'}, 'Sending to every child and waiting up to ' + REPLICATE_TIMEOUT + ' for each site to apply and verify it…');
  box.replaceChildren(head, stateLine, list);
  box.removeAttribute('data-finished');
  st.pending = {target, items, before};
  if (button) button.disabled = true;
  try {
    const ans = await api.write('POST', '/v1/replication/now', {...target, wait: true, timeout: REPLICATE_TIMEOUT});
    const sites = ans.sites || (ans.results || []).map((r) => ({path: st.siteName + '/' + r.child, ...r}));
    const done = sites.filter((s) => s.done).length;
    list.replaceChildren(...sites.map((s) => {
      const kind = s.error ? 'bad' : !s.done ? 'warn' : s.verified ? 'ok' : 'warn';
      const text = s.error ? 'error: ' + s.error : !s.done ? 'not done before the timeout' : s.verified ? 'applied, verified' : 'applied, not verified';
      const li = siteLine(s.path, s.done, text, kind);
      if (s.run && s.run.finished_at) li.append(' ', when(s.run.finished_at));
      return li;
    }));
    stateLine.textContent = `${done} of ${sites.length} sites have ${what}` + (ans.cascade ? ` (request ${ans.cascade}).` : '.');
    if (!sites.length) stateLine.textContent = 'This site has no children to replicate to.';
  } catch (e) {
    stateLine.replaceWith(errorBox(e));
  } finally {
    st.pending = null;
    box.setAttribute('data-finished', 'true');
    if (button && button.isConnected) button.disabled = false;
  }
}
