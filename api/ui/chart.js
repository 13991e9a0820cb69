// Hand-written SVG charts. Each chart has a text alternative (role="img" with a label and a
// <title> per mark); the numbers themselves are also shown in a table beside the chart.

import {svg, h, fmtNumber} from './dom.js';

// PARTS are the four compliance states in the order bars stack them, with their CSS class.
export const PARTS = [
  {key: 'installed', label: 'installed', cls: 'c-installed'},
  {key: 'required', label: 'required', cls: 'c-required'},
  {key: 'not_required', label: 'not required', cls: 'c-notreq'},
  {key: 'unknown', label: 'unknown', cls: 'c-unknown'},
];

// legend is the HTML key of the stacked bars' colours.
export function legend(parts = PARTS) {
  return h('ul', {class: 'legend'}, parts.map((p) => h('li', null, h('span', {class: 'swatch ' + p.cls, 'aria-hidden': 'true'}), p.label)));
}

// stackedBars draws one horizontal bar per row, each the 100 % of its parts.
// rows: [{label, values: {installed, required, not_required, unknown}, href?}].
export function stackedBars(title, rows, parts = PARTS) {
  const labelW = 190;
  const barW = 330;
  const rowH = 30;
  const top = 6;
  const width = labelW + barW + 70;
  const height = top + rows.length * rowH + 6;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart chart-bars',
    role: 'img',
    'aria-label': title,
    preserveAspectRatio: 'xMinYMin meet',
  });
  root.appendChild(svg('title', null, title));
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const total = parts.reduce((s, p) => s + (row.values[p.key] || 0), 0);
    const label = row.label.length > 22 ? row.label.slice(0, 21) + '…' : row.label;
    const text = svg('text', {x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'chart-label'}, label);
    text.appendChild(svg('title', null, row.label));
    root.appendChild(text);
    let x = labelW;
    for (const p of parts) {
      const v = row.values[p.key] || 0;
      if (!v || !total) continue;
      const w = (v / total) * barW;
      const rect = svg('rect', {x: x.toFixed(2), y: y + 4, width: Math.max(w, 0.5).toFixed(2), height: rowH - 8, class: p.cls});
      rect.appendChild(svg('title', null, `${row.label}: ${fmtNumber(v)} ${p.label} (${((v / total) * 100).toFixed(1)} %)`));
      root.appendChild(rect);
      x += w;
    }
    if (!total) {
      root.appendChild(svg('rect', {x: labelW, y: y + 4, width: barW, height: rowH - 8, class: 'c-empty'}));
    }
    const installed = row.values.installed || 0;
    const applicable = installed + (row.values.required || 0);
    root.appendChild(svg('text', {x: labelW + barW + 8, y: y + rowH / 2 + 4, class: 'chart-value'},
      applicable ? (installed / applicable * 100).toFixed(1) + ' %' : '—'));
  });
  return root;
}

// timeSeries draws values over time as a line with dots. points: [{t: Date, v: number, label}].
export function timeSeries(title, unit, points) {
  const width = 460;
  const height = 220;
  const left = 64;
  const right = 16;
  const top = 14;
  const bottom = 40;
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart chart-line',
    role: 'img',
    'aria-label': `${title}, ${points.length} runs`,
    preserveAspectRatio: 'xMinYMin meet',
  });
  root.appendChild(svg('title', null, title));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  if (points.length === 0) {
    root.appendChild(svg('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-label'}, 'no runs'));
    return root;
  }
  const ts = points.map((p) => p.t.getTime());
  let t0 = Math.min(...ts);
  let t1 = Math.max(...ts);
  if (t1 === t0) {
    t0 -= 30000;
    t1 += 30000;
  }
  const vmax = Math.max(1, ...points.map((p) => p.v));
  // Ticks name the time of day when the runs span less than two hours, else the date too.
  const tick = (d) => (t1 - t0 < 2 * 3600 * 1000 ? d.toISOString().slice(11, 19) : shortTime(d));
  const xOf = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
  const yOf = (v) => top + plotH - (v / vmax) * plotH;
  // Axes and grid.
  root.appendChild(svg('line', {x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: 'axis'}));
  root.appendChild(svg('line', {x1: left, y1: top, x2: left, y2: top + plotH, class: 'axis'}));
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH;
    if (f > 0) root.appendChild(svg('line', {x1: left, y1: y, x2: left + plotW, y2: y, class: 'grid'}));
    root.appendChild(svg('text', {x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'chart-tick'}, fmtNumber(Math.round(vmax * f))));
  }
  root.appendChild(svg('text', {x: left, y: height - 14, class: 'chart-tick'}, tick(new Date(t0))));
  root.appendChild(svg('text', {x: left + plotW, y: height - 14, 'text-anchor': 'end', class: 'chart-tick'}, tick(new Date(t1))));
  root.appendChild(svg('text', {x: left + plotW / 2, y: height - 1, 'text-anchor': 'middle', class: 'chart-tick'}, unit));
  const sorted = [...points].sort((a, b) => a.t - b.t);
  const d = sorted.map((p, i) => `${i ? 'L' : 'M'}${xOf(p.t.getTime()).toFixed(1)},${yOf(p.v).toFixed(1)}`).join(' ');
  root.appendChild(svg('path', {d, class: 'line'}));
  for (const p of sorted) {
    const c = svg('circle', {cx: xOf(p.t.getTime()).toFixed(1), cy: yOf(p.v).toFixed(1), r: 4, class: 'dot' + (p.bad ? ' dot-bad' : '')});
    c.appendChild(svg('title', null, `${shortTime(p.t)}: ${fmtNumber(p.v)} ${unit}${p.label ? ' (' + p.label + ')' : ''}`));
    root.appendChild(c);
  }
  return root;
}

function shortTime(d) {
  return d.toISOString().slice(5, 16).replace('T', ' ');
}
