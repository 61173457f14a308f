/**
 * The page of `dbg report`: one HTML file holding everything (uPlot's script and stylesheet, the
 * page's own script, the data as JSON in a <script type="application/json">), so it opens
 * offline, from a mail attachment or a CI artifact.
 *
 * uPlot draws the timeline: it is small (~50 KB), fast on large data (canvas, no DOM per point),
 * and its x-axis drag-to-zoom and cursor are what a timeline over seq needs; the lanes are drawn
 * in its draw hook from the summaries (report-data.ts) at the resolution the zoom asks for.
 * The heatmap is a canvas and the flame graph plain DOM, drawn by the page script below.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReportData } from './report-data.js';

function asset(rel: string): string {
  return readFileSync(createRequire(import.meta.url).resolve(rel), 'utf8');
}

/** Text safe inside <script> and <style>: no "</" can close the element early. */
function inlineSafe(text: string): string {
  return text.replace(/<\/(script|style)/gi, '<\\/$1');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function reportPage(data: ReportData): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>dbg report: ${esc(data.trace)}</title>
<style>${inlineSafe(asset('uplot/dist/uPlot.min.css'))}</style>
<style>${STYLE}</style>
</head><body>
<h1>dbg report: <span id="trace-name">${esc(data.trace)}</span></h1>
<div id="summary"></div>
<ul id="lacks"></ul>
<section><h2>Timeline</h2>
<p class="hint">Drag across the timeline to zoom in, double-click to zoom out; click a lane to see that instruction. <span id="range"></span></p>
<div id="timeline-wrap"><div id="lane-labels"></div><div id="timeline"></div></div>
<div id="legend"></div>
<div id="info" class="info">Click the timeline, a mark, a console line, a call or a heatmap cell.</div>
</section>
<section><h2>Console</h2><div id="console"></div></section>
<section><h2>Marks</h2><div id="marks"></div></section>
<section><h2>Memory writes</h2><p class="hint" id="heat-hint"></p><div id="heat-wrap"><div id="heat-labels"></div><canvas id="heat"></canvas></div></section>
<section><h2>Call tree</h2><p class="hint">Width: inclusive instructions; hover for inclusive and exclusive counts.</p><div id="flame"></div>
<h3>Functions</h3><table id="functions"><thead><tr><th>function</th><th>inclusive</th><th>exclusive</th></tr></thead><tbody></tbody></table>
<h3>Calls</h3><p id="calls-note" class="hint"></p><div class="scroll"><table id="calls"><thead><tr><th>call seq</th><th>return seq</th><th>vCPU</th><th>caller</th><th>callee</th><th>depth</th></tr></thead><tbody></tbody></table></div>
</section>
<script type="application/json" id="report-data">${json}</script>
<script>${inlineSafe(asset('uplot/dist/uPlot.iife.min.js'))}</script>
<script>${inlineSafe(SCRIPT)}</script>
</body></html>
`;
}

const STYLE = `
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 24px; } h3 { font-size: 13px; }
.hint { color: #666; }
#lacks li { color: #8a4b00; }
#timeline-wrap { display: flex; }
#lane-labels { width: 90px; position: relative; }
.lane-label { position: absolute; right: 6px; font-weight: bold; }
#legend { margin: 6px 0; }
.legend-item { display: inline-block; margin-right: 10px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 3px; vertical-align: middle; }
.info { background: #f4f4f4; padding: 8px; margin-top: 8px; font-family: monospace; white-space: pre-wrap; }
#console { font-family: monospace; max-height: 260px; overflow: auto; background: #111; color: #ddd; padding: 6px; }
.console-line, .mark, #calls tbody tr, #functions tbody tr { cursor: pointer; }
.console-line .seq, .mark .seq { color: #8ab; margin-right: 8px; }
#marks, .scroll { max-height: 300px; overflow: auto; font-family: monospace; }
#heat-wrap { display: flex; }
#heat-labels { font-family: monospace; font-size: 11px; }
.heat-label { height: 12px; line-height: 12px; white-space: nowrap; padding-right: 6px; }
#flame { position: relative; font-size: 11px; overflow: hidden; }
.flame-node { position: absolute; height: 17px; line-height: 17px; overflow: hidden; white-space: nowrap; border: 1px solid #fff; box-sizing: border-box; padding-left: 2px; cursor: pointer; }
table { border-collapse: collapse; } td, th { padding: 1px 8px; text-align: left; font-family: monospace; }
tbody tr:nth-child(odd) { background: #f7f7f7; }
`;

/** The page's script (plain ES2017, no template literals: it lives inside one). */
const SCRIPT = String.raw`
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  var PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf', '#bcbd22', '#7f7f7f', '#1f3a93', '#8c564b', '#2ca02c', '#d62728'];
  function color(f) { if (f < 0) return '#eee'; if (f < PALETTE.length) return PALETTE[f]; return 'hsl(' + ((f * 137.508) % 360).toFixed(1) + ',62%,' + (48 + (f % 3) * 8) + '%)'; }
  function fname(f) { return f < 0 ? '(nothing)' : D.funcs[f]; }
  function cmd(seq) { return "dbg replay " + D.tracePath + " -e '::seek 0t" + seq + "'"; }
  function show(lines, seq) {
    var info = $('info');
    info.textContent = '';
    lines.forEach(function (l) { info.appendChild(el('div', l[0], l[1])); });
    if (seq !== undefined) info.appendChild(el('div', 'info-cmd', cmd(seq)));
  }
  window.dbgReport = { data: D, show: show };

  $('summary').textContent = D.instructions + ' instructions (seq ' + D.first + ' to ' + (D.end - 1) + ') on ' + D.vcpus + ' vCPU' + (D.vcpus === 1 ? '' : 's') +
    '; outcome: ' + D.outcome + '; symbols: ' + (D.symbols || 'none');
  D.lacks.forEach(function (l) { $('lacks').appendChild(el('li', 'lack', l)); });

  // What ran at seq on lane v: the exact run when the report has runs, else the fine bucket.
  function at(v, seq) {
    var lane = D.lanes[v];
    if (!lane) return null;
    if (D.runsComplete) {
      var r = lane.runs, lo = 0, hi = r.s.length - 1, k = -1;
      while (lo <= hi) { var mid = (lo + hi) >> 1; if (r.s[mid] <= seq) { k = mid; lo = mid + 1; } else hi = mid - 1; }
      if (k >= 0 && seq < r.s[k] + r.n[k]) return { f: r.f[k], pc: r.pc[k], start: r.s[k], len: r.n[k] };
      return null;
    }
    var b = Math.floor((seq - D.first) / lane.fine.width);
    if (b < 0 || b >= lane.fine.f.length || lane.fine.f[b] < 0) return null;
    return { f: lane.fine.f[b], pc: null, start: D.first + b * lane.fine.width, len: lane.fine.width, bucket: true };
  }

  var nLanes = D.vcpus + 1; // the vCPUs, then the console lane
  var LANE_H = 40;
  var marksByLane = [];
  for (var i = 0; i < nLanes; i++) marksByLane.push([]);
  D.marks.forEach(function (m) { marksByLane[m.kind === 'console' ? D.vcpus : (m.vcpu === null ? 0 : m.vcpu)].push(m); });
  var MARK_COLOR = { interrupt: '#e67e00', halt: '#555', end: '#d00', console: '#2a6fdb', breakpoint: '#c0f', watchpoint: '#0a8', stop: '#06c' };
  // The recording session's stops: a line across the lane and, while few are in view, their label.
  var STOP_KINDS = { breakpoint: 1, watchpoint: 1, stop: 1 };

  function drawLanes(u) {
    var ctx = u.ctx, bb = u.bbox, xmin = u.scales.x.min, xmax = u.scales.x.max;
    if (xmin === undefined || xmax <= xmin) return;
    var perPx = (xmax - xmin) / bb.width;
    var laneH = bb.height / nLanes;
    ctx.save();
    ctx.beginPath(); ctx.rect(bb.left, bb.top, bb.width, bb.height); ctx.clip();
    function xpos(s) { return u.valToPos(s, 'x', true); }
    D.lanes.forEach(function (lane, v) {
      var y = bb.top + v * laneH + laneH * 0.15, h = laneH * 0.7;
      function rect(s, n, f) {
        if (f < 0 || s + n < xmin || s > xmax) return;
        var x0 = xpos(s), x1 = xpos(s + n);
        ctx.fillStyle = color(f);
        ctx.fillRect(x0, y, Math.max(x1 - x0, 1), h);
      }
      if (D.runsComplete && perPx < lane.fine.width) {
        var r = lane.runs;
        for (var k = 0; k < r.s.length; k++) if (r.s[k] + r.n[k] >= xmin && r.s[k] <= xmax) rect(r.s[k], r.n[k], r.f[k]);
      } else {
        var lvl = perPx < lane.coarse.width ? lane.fine : lane.coarse;
        var b0 = Math.max(0, Math.floor((xmin - D.first) / lvl.width)), b1 = Math.min(lvl.f.length - 1, Math.ceil((xmax - D.first) / lvl.width));
        for (var b = b0; b <= b1; b++) rect(D.first + b * lvl.width, lvl.width, lvl.f[b]);
      }
    });
    marksByLane.forEach(function (ms, v) {
      var y0 = bb.top + v * laneH;
      var stopsInView = ms.filter(function (m) { return STOP_KINDS[m.kind] && m.seq >= xmin && m.seq <= xmax; }).length;
      ms.forEach(function (m) {
        if (m.seq < xmin || m.seq > xmax) return;
        var x = xpos(m.seq);
        ctx.fillStyle = MARK_COLOR[m.kind];
        if (STOP_KINDS[m.kind]) {
          ctx.fillRect(x - 1, y0, 2, laneH);
          if (stopsInView <= 20) { ctx.font = '10px sans-serif'; ctx.fillText(m.label, x + 3, y0 + laneH - 3); }
        } else if (v === D.vcpus) ctx.fillRect(x, y0 + laneH * 0.2, 2, laneH * 0.6);
        else { ctx.beginPath(); ctx.moveTo(x - 4, y0); ctx.lineTo(x + 4, y0); ctx.lineTo(x, y0 + 7); ctx.fill(); }
      });
    });
    ctx.restore();
  }

  var labels = $('lane-labels');
  labels.style.height = (nLanes * LANE_H) + 'px';
  for (var l = 0; l < nLanes; l++) {
    var lab = el('div', 'lane-label', l < D.vcpus ? 'vCPU ' + l : 'console');
    lab.style.top = (l * LANE_H + LANE_H / 2 - 8) + 'px';
    lab.setAttribute('data-lane', String(l));
    labels.appendChild(lab);
  }

  var INCRS = [];
  for (var e10 = 1; e10 <= 1e15; e10 *= 10) INCRS.push(e10, 2 * e10, 5 * e10);
  var plot = null;
  if (D.instructions > 0) {
    var width = Math.max(400, document.body.clientWidth - 130);
    plot = new uPlot({
      width: width,
      height: nLanes * LANE_H + 50,
      padding: [0, 10, 0, 0],
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { show: false }, y: false },
      scales: {
        x: { time: false, range: function (u, min, max) { return max - min < 8 ? [Math.floor((min + max) / 2) - 4, Math.floor((min + max) / 2) + 4] : [min, max]; } },
        y: { auto: false, range: [0, nLanes] }
      },
      axes: [{ label: 'seq', size: 40, space: 90, incrs: INCRS, values: function (u, splits) { return splits.map(function (v) { return Number.isInteger(v) ? String(v) : ''; }); } }, { show: false }],
      series: [{}, { show: false, scale: 'y' }],
      hooks: {
        draw: [drawLanes],
        setScale: [function (u, key) { if (key === 'x') $('range').textContent = 'Showing seq ' + Math.max(D.first, Math.floor(u.scales.x.min)) + ' to ' + Math.min(D.end - 1, Math.ceil(u.scales.x.max)) + '.'; }]
      }
    }, [[D.first, D.end], [0, 0]], $('timeline'));
    // Offset into the plotting area -> the lane and the seq (a drag that zooms is not a click).
    var down = null;
    plot.over.addEventListener('mousedown', function (e) { down = [e.offsetX, e.offsetY]; });
    plot.over.addEventListener('click', function (e) {
      if (down && Math.abs(e.offsetX - down[0]) > 3) return;
      var seq = Math.max(D.first, Math.min(D.end - 1, Math.floor(plot.posToVal(e.offsetX, 'x'))));
      var lane = Math.floor(e.offsetY / (plot.over.clientHeight / nLanes));
      if (lane >= D.vcpus) {
        var near = null;
        marksByLane[D.vcpus].forEach(function (m) { if (!near || Math.abs(m.seq - seq) < Math.abs(near.seq - seq)) near = m; });
        if (near) show([['info-seq', 'seq ' + near.seq], ['info-vcpu', 'vCPU ' + near.vcpu], ['info-sym', 'console: ' + near.label]], near.seq);
        return;
      }
      var w = at(lane, seq);
      var pcText = !w ? 'pc: (vCPU ' + lane + ' ran nothing here)' : w.bucket ? 'pc: (bucket of ' + w.len + ' instructions; zoom in for single instructions)'
        : w.len === 1 || seq === w.start ? 'pc ' + w.pc : 'pc (at seq ' + w.start + ', start of this run of ' + w.len + ' in ' + fname(w.f) + ') ' + w.pc;
      show([['info-seq', 'seq ' + seq], ['info-vcpu', 'vCPU ' + lane], ['info-pc', pcText], ['info-sym', 'symbol ' + (w ? fname(w.f) : '(none)')]], seq);
    });
    // Lane labels beside the lanes, wherever uPlot put its plotting area.
    var px = uPlot.pxRatio, bb = plot.bbox;
    Array.prototype.forEach.call(labels.children, function (lab, l) { lab.style.top = (bb.top / px + (l + 0.5) * bb.height / px / nLanes - 8) + 'px'; });
    window.dbgReport.plot = plot;
    window.dbgReport.nLanes = nLanes;
  } else {
    $('timeline').appendChild(el('p', 'empty', 'No timeline: the trace holds no instruction.'));
  }

  // Legend: the functions that ran most.
  var totals = {};
  D.lanes.forEach(function (lane) { lane.coarse.f.forEach(function (f, b) { if (f >= 0) totals[f] = (totals[f] || 0) + lane.coarse.n[b]; }); });
  Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; }).slice(0, 16).forEach(function (f) {
    var item = el('span', 'legend-item'); var sw = el('span', 'swatch'); sw.style.background = color(+f);
    item.appendChild(sw); item.appendChild(document.createTextNode(fname(+f))); $('legend').appendChild(item);
  });

  // Console lines and marks: click to see where they are.
  if (D.console.length === 0) $('console').appendChild(el('div', 'empty', 'No console output in this history.'));
  D.console.forEach(function (c) {
    var line = el('div', 'console-line'); line.appendChild(el('span', 'seq', String(c.seq))); line.appendChild(document.createTextNode(c.text));
    line.addEventListener('click', function () { show([['info-seq', 'seq ' + c.seq], ['info-vcpu', 'vCPU ' + c.vcpu], ['info-sym', 'console: ' + c.text]], c.seq); });
    $('console').appendChild(line);
  });
  // Stops first: a long history's interrupts alone would fill the list.
  var shown = D.marks.filter(function (m) { return STOP_KINDS[m.kind]; }).concat(D.marks.filter(function (m) { return m.kind !== 'console' && !STOP_KINDS[m.kind]; }));
  if (shown.length === 0) $('marks').appendChild(el('div', 'empty', 'No interrupts, halts or stops in this history.'));
  shown.slice(0, 2000).forEach(function (m) {
    var row = el('div', 'mark mark-' + m.kind); row.appendChild(el('span', 'seq', String(m.seq))); row.appendChild(document.createTextNode((m.vcpu === null ? '' : 'vCPU ' + m.vcpu + ' ') + m.label));
    row.addEventListener('click', function () { show([['info-seq', 'seq ' + m.seq], ['info-vcpu', 'vCPU ' + m.vcpu], ['info-sym', m.label]], m.seq); });
    $('marks').appendChild(row);
  });

  // Heatmap: rows pages, columns time buckets, colour log(bytes).
  var H = D.heat, canvas = $('heat'), CW = 4, CH = 12;
  $('heat-hint').textContent = H.hint;
  if (H.pages.length === 0) $('heat-labels').appendChild(el('div', 'empty', 'No memory writes in this history.'));
  else {
    canvas.width = H.buckets * CW; canvas.height = H.pages.length * CH;
    var hctx = canvas.getContext('2d'), max = 1;
    H.cells.forEach(function (row) { row.forEach(function (c) { if (c > max) max = c; }); });
    H.cells.forEach(function (row, p) {
      row.forEach(function (c, b) {
        if (!c) return;
        var t = Math.log(1 + c) / Math.log(1 + max);
        hctx.fillStyle = 'rgb(' + Math.round(255 * t) + ',' + Math.round(80 * (1 - t)) + ',' + Math.round(200 * (1 - t)) + ')';
        hctx.fillRect(b * CW, p * CH, CW, CH - 1);
      });
      $('heat-labels').appendChild(el('div', 'heat-label', H.pages[p].addr + (H.pages[p].label ? ' ' + H.pages[p].label : '')));
    });
    canvas.addEventListener('click', function (e) {
      var b = Math.floor(e.offsetX / CW), p = Math.floor(e.offsetY / CH);
      if (!H.pages[p] || b >= H.buckets) return;
      var s0 = D.first + b * H.width;
      show([['info-seq', 'seq ' + s0 + ' to ' + Math.min(D.end - 1, s0 + H.width - 1)], ['info-sym', 'page ' + H.pages[p].addr + ' ' + H.pages[p].label + ': ' + H.cells[p][b] + ' bytes written']], s0);
    });
  }

  // Call tree as an icicle: children under their parent, width = inclusive count.
  var T = D.tree, kids = T.map(function () { return []; });
  T.forEach(function (n, i) { if (n.parent >= 0) kids[n.parent].push(i); });
  var flame = $('flame'), total = T[0].incl, maxDepth = 0;
  function place(i, x, depth) {
    var n = T[i];
    if (i > 0) {
      var d = el('div', 'flame-node', fname(n.f));
      d.style.left = (100 * x / total) + '%'; d.style.width = (100 * n.incl / total) + '%'; d.style.top = ((depth - 1) * 18) + 'px';
      d.style.background = color(n.f);
      d.title = fname(n.f) + ': ' + n.incl + ' inclusive, ' + n.self + ' exclusive';
      d.setAttribute('data-incl', String(n.incl)); d.setAttribute('data-self', String(n.self));
      d.addEventListener('click', function () { show([['info-sym', fname(n.f)], ['info-count', n.incl + ' instructions inclusive, ' + n.self + ' exclusive']]); });
      flame.appendChild(d);
      if (depth > maxDepth) maxDepth = depth;
    }
    if (depth >= 48) return;
    kids[i].sort(function (a, b) { return T[b].incl - T[a].incl; }).forEach(function (c) {
      if (T[c].incl * 1000 >= total) place(c, x, depth + 1);
      x += T[c].incl;
    });
  }
  if (total > 0) place(0, 0, 0); else flame.appendChild(el('div', 'empty', 'No call tree: no instruction ran.'));
  flame.style.height = (maxDepth * 18 + 4) + 'px';

  // Per function: exclusive = own instructions; inclusive counts recursion once.
  var incl = {}, self = {};
  T.forEach(function (n, i) {
    if (i === 0) return;
    self[n.f] = (self[n.f] || 0) + n.self;
    for (var a = n.parent; a > 0; a = T[a].parent) if (T[a].f === n.f) return;
    incl[n.f] = (incl[n.f] || 0) + n.incl;
  });
  Object.keys(incl).filter(function (f) { return !/^vCPU /.test(fname(+f)); }).sort(function (a, b) { return incl[b] - incl[a]; }).slice(0, 40).forEach(function (f) {
    var tr = el('tr'); [fname(+f), incl[f], self[f] || 0].forEach(function (c) { tr.appendChild(el('td', null, String(c))); }); $('functions').tBodies[0].appendChild(tr);
  });

  $('calls-note').textContent = D.calls.total + ' calls and interrupts' + (D.calls.rows.length < D.calls.total ? '; the first ' + D.calls.rows.length + ' are in the report' : '') + (D.calls.rows.length > 500 ? ', the first 500 listed here' : '') + '.';
  D.calls.rows.slice(0, 500).forEach(function (c) {
    var tr = el('tr', 'call');
    [c[0], c[1] === null ? '(no return)' : c[1], c[2], c[3] < 0 ? '?' : fname(c[3]), fname(c[4]), c[5]].forEach(function (x) { tr.appendChild(el('td', null, String(x))); });
    tr.addEventListener('click', function () { show([['info-seq', 'seq ' + c[0]], ['info-vcpu', 'vCPU ' + c[2]], ['info-sym', fname(c[3]) + ' calls ' + fname(c[4]) + (c[1] === null ? '' : ', returns at seq ' + c[1])]], c[0]); });
    $('calls').tBodies[0].appendChild(tr);
  });
})();
`;
