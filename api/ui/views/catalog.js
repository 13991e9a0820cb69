// Catalog: version, sources, updates by language, and the imports with their progress; an
// administrator can start an import and cancel a running one.

import * as api from '../api.js';
import {h, num, derived, when, badge, table, empty, errorBox, section, bytes} from '../dom.js';

function stateKind(s) {
  return s === 'succeeded' || s === 'unchanged' ? 'ok' : s === 'running' ? 'plain' : s === 'cancelled' ? 'warn' : 'bad';
}

function importForm(ctx) {
  const out = h('div', {id: 'import-message', role: 'status', 'aria-live': 'polite'});
  const form = h('form', {class: 'filters', 'data-write': true, 'aria-label': 'Start an import'},
    h('div', {class: 'field field-wide'}, h('label', {for: 'imp-source'}, 'Source (path or URL allowed by --import-allow)'),
      h('input', {id: 'imp-source', name: 'source', autocomplete: 'off', placeholder: 'empty: the configured catalog source'})),
    h('div', {class: 'field'}, h('label', {for: 'imp-kind'}, 'Kind'),
      h('select', {id: 'imp-kind'}, h('option', {value: ''}, 'detect'), h('option', {value: 'native'}, 'native'), h('option', {value: 'csaf'}, 'csaf'))),
    h('div', {class: 'field'}, h('label', {for: 'imp-mode'}, 'Mode'),
      h('select', {id: 'imp-mode'}, h('option', {value: ''}, 'incremental (default)'), h('option', {value: 'complete'}, 'complete'))),
    h('div', {class: 'field field-actions'}, h('button', {type: 'submit', 'data-write': true, 'data-action': 'import'}, 'Start import')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    const source = form.querySelector('#imp-source').value.trim();
    const kind = form.querySelector('#imp-kind').value;
    const mode = form.querySelector('#imp-mode').value;
    if (source) body.source = source;
    if (kind) body.kind = kind;
    if (mode) body.mode = mode;
    const button = form.querySelector('button');
    button.disabled = true;
    out.replaceChildren(h('p', null, 'Starting the import…'));
    try {
      const run = await api.write('POST', '/v1/catalog/import', body);
      out.replaceChildren(h('p', {class: 'ok-text'}, 'Import ', h('code', null, run.id || ''), ' started (', run.state || 'running', ').'));
      ctx.refresh();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    } finally {
      button.disabled = false;
    }
  });
  return section('Start an import', form, out);
}

async function cancelImport(ctx, id, button) {
  button.disabled = true;
  try {
    await api.write('DELETE', '/v1/catalog/imports/' + encodeURIComponent(id));
    ctx.refresh();
  } catch (e) {
    button.disabled = false;
    button.after(errorBox(e));
  }
}

function progress(imp, i) {
  const b = 'imports.' + i;
  const r = imp.data.imports[i];
  const total = r.bytes_total || 0;
  const bar = total > 0
    ? h('progress', {max: String(total), value: String(Math.min(r.bytes_read || 0, total)), 'aria-label': 'bytes read of ' + r.id}, bytes(r.bytes_read))
    : null;
  return h('div', {class: 'progress'},
    bar,
    h('div', {class: 'small'}, num(imp, b + '.records_read'), ' records, ', num(imp, b + '.bytes_read'), ' of ',
      total ? num(imp, b + '.bytes_total') : 'unknown', ' bytes',
      total ? h('span', null, ' (', derived(((r.bytes_read || 0) / total * 100).toFixed(0) + ' %', {of: b + '.bytes_read'}), ')') : null),
    r.phase ? h('div', {class: 'small muted'}, 'phase ', r.phase) : null);
}

function resultCell(imp, i) {
  const r = imp.data.imports[i].result;
  const b = 'imports.' + i + '.result';
  if (!r) return h('span', {class: 'na'}, '—');
  const line = (what) => r[what] ? h('div', null, what, ': +', num(imp, b + '.' + what + '.added'), ' ~', num(imp, b + '.' + what + '.changed'), ' −', num(imp, b + '.' + what + '.removed')) : null;
  return h('div', {class: 'small'}, line('bulletins'), line('updates'),
    typeof r.skipped_updates === 'number' ? h('div', null, 'skipped updates ', num(imp, b + '.skipped_updates')) : null);
}

export default {
  title: 'Catalog',
  topics: ['catalog'],
  head(ctx) {
    // The import form is built by the first load, once GET /v1/status says this site is the
    // parent that imports (a child's catalog is replicated from its parent: 409).
    ctx.state = {importBox: h('div')};
    return ctx.state.importBox;
  },
  async load(ctx) {
    const [cat, imp, status] = await Promise.all([api.get('/v1/catalog'), api.tryGet('/v1/catalog/imports'), api.tryGet('/v1/status')]);
    const {importBox} = ctx.state;
    const parent = !!(status.data && status.data.role === 'parent');
    if (parent && ctx.can('catalog.import') && !importBox.hasChildNodes()) importBox.replaceChildren(importForm(ctx));
    const c = cat.data;
    const out = [];
    out.push(section('Catalog', h('div', {class: 'stats'},
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'version'), h('div', {class: 'stat-value'}, num(cat, 'version'))),
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'bulletins'), h('div', {class: 'stat-value'}, num(cat, 'bulletins', {href: '#/bulletins'}))),
      h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, 'updates'), h('div', {class: 'stat-value'}, num(cat, 'updates')))),
    h('p', {class: 'meta'}, 'Updated ', when(c.updated_at)),
    (c.severity_levels || []).length ? h('p', null, 'Custom severity levels (most severe first): ', c.severity_levels.join(', ')) : null));
    const langs = c.languages || [];
    out.push(section('Updates by language', langs.length
      ? table('Updates by language', ['language', 'updates'], langs.map((l, i) => [l.language || '(language-neutral)', num(cat, 'languages.' + i + '.updates')]), {quietCaption: true, class: 'numeric narrow'})
      : empty('No updates.')));
    const sources = c.sources || [];
    out.push(section('Sources', sources.length
      ? table('Catalog sources', ['source', 'kind', 'feed', 'last import', 'last run'], sources.map((s) => [
        h('code', {class: 'wrap'}, s.id || ''), s.kind || '', s.feed || '', when(s.last_import), h('code', null, s.last_run_id || '')]), {quietCaption: true})
      : empty('No source has been imported.')));
    if (imp.error) {
      out.push(section('Imports', errorBox(imp.error)));
    } else {
      const list = imp.data.imports || [];
      const rows = list.map((r, i) => [
        h('code', null, r.id), badge(r.state || '', stateKind(r.state)),
        h('div', null, h('code', {class: 'wrap'}, r.source || ''), h('div', {class: 'small muted'}, [r.kind, r.mode, r.feed].filter(Boolean).join(' · '))),
        when(r.started_at, true), r.finished_at ? when(r.finished_at, true) : '—',
        progress(imp, i), resultCell(imp, i),
        r.catalog_version ? num(imp, 'imports.' + i + '.catalog_version') : '—',
        h('div', null, r.error ? h('div', {class: 'error-text'}, r.error) : null,
          (r.warnings || []).length ? h('div', {class: 'small'}, (r.warnings || []).length + ' warnings') : null,
          r.state === 'running' && ctx.can('catalog.import') && parent
            ? h('button', {type: 'button', 'data-write': true, 'data-action': 'cancel-import', onclick: (ev) => cancelImport(ctx, r.id, ev.currentTarget)}, 'Cancel')
            : null),
      ]);
      out.push(section('Imports', rows.length
        ? table('Imports, newest first', ['import', 'state', 'source', 'started', 'finished', 'progress', 'result', 'catalog version', ''], rows, {quietCaption: true})
        : empty('No imports yet.')));
    }
    return h('div', null, out);
  },
};
