/* pnc-book: continuous explorers (pnc/book/live.py). Each .pnc-live block carries its configuration as JSON and the
 * formulas it evaluates as JavaScript generated from the book's sympy expressions (window.pncLaws, written at build
 * time by pnc.book.laws; nothing here knows a formula). This script wires the range sliders and number fields,
 * evaluates the formulas on every input event and draws them with uPlot (vendored; plots) or fills a table
 * (panels). Each block gets an API on its element, el.pncLive = {values, set(name, value), data(), plot}, used by
 * the browser tests and benchmarks/page_weight.py. Blocks of class pnc-live-data (pnc.book.widgets.DataExplorer) hold
 * the data of a trained network's views instead, one per point of the explorer's grid (setupData below). */
(function () {
  'use strict';

  function fmt(v) {
    if (v === null || v === undefined || !isFinite(v)) { return '–'; }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) { return v.toExponential(3).replace('e+', 'e'); }
    return String(+v.toPrecision(4));
  }

  function tick(v) {
    if (v === null || v === undefined) { return ''; }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-2 || a >= 1e4)) { return v.toExponential(0).replace('e+', 'e'); }
    return String(+v.toPrecision(3));
  }

  // A plot narrower than this is "compact" (a phone): its log axis follows the data and has fewer labels.
  var COMPACT = 560;

  // the grid lines and labels of a log axis: powers of ten in the range, every second one, or fewer so that at most
  // `most` are labelled
  function decades(most) {
    return function (u, axisIdx, min, max) {
      var e0 = Math.ceil(Math.log10(min) - 1e-9), e1 = Math.floor(Math.log10(max) + 1e-9);
      var step = 1;
      while ((e1 - e0) / step + 1 > most) { step += 1; }
      if (most > 4) { step = Math.max(step, 2); }
      var out = [];
      for (var e = e0; e <= e1; e++) {
        if (((e % step) + step) % step === 0) { out.push(Math.pow(10, e)); }
      }
      return out;
    };
  }

  // The y range of a compact log plot: the configured range narrowed to the decades the data occupy (at least
  // three), so that a phone's short axis is not mostly empty. It is recomputed only once the reader lets go of a
  // control (setup), so the axes stay put while a slider moves.
  function fitRange(cfg, data) {
    var yr = cfg.y.range, lo = Infinity, hi = -Infinity;
    data.slice(1).forEach(function (ys) {
      ys.forEach(function (v) {
        if (v !== null && isFinite(v) && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
    });
    if (!(lo <= hi)) { return yr.slice(); }
    var e1 = Math.min(Math.log10(yr[1]), Math.ceil(Math.log10(hi) + 0.1));
    var e0 = Math.max(Math.log10(yr[0]), Math.floor(Math.log10(lo) - 0.1));
    if (e1 - e0 < 3) { e0 = Math.max(Math.log10(yr[0]), e1 - 3); }
    if (e1 - e0 < 3) { e1 = Math.min(Math.log10(yr[1]), e0 + 3); }
    return [Math.pow(10, e0), Math.pow(10, e1)];
  }

  function call(laws, name, argNames, env) {
    var fn = laws[name];
    if (typeof fn !== 'function') { throw new Error('pnc-live: no generated formula ' + name); }
    return fn.apply(null, argNames.map(function (a) { return env[a]; }));
  }

  function matches(when, env) {
    return Object.keys(when).every(function (k) {
      return Math.abs(env[k] - when[k]) <= 1e-9 * Math.max(1, Math.abs(when[k]));
    });
  }

  // Everything the block shows for the current values (the same as LiveExplorer.evaluate in Python).
  function compute(cfg, env) {
    var laws = window.pncLaws || {};
    var xs = cfg.x.values;
    var curves = cfg.curves.map(function (c) {
      var limit = c.upto ? env[c.upto] + c.offset : Infinity;
      return xs.map(function (x) {
        if (x > limit + 1e-9) { return null; }
        var local = Object.assign({}, env); local[cfg.x.name] = x;
        return call(laws, c.formula, c.args, local);
      });
    });
    var scalars = cfg.scalars.map(function (s) { return call(laws, s.formula, s.args, env); });
    var measured = cfg.measured.map(function (m) { return matches(m.when, env) ? m.y.slice() : null; });
    return { x: xs, curves: curves, scalars: scalars, measured: measured };
  }

  // the labels of the measured series, in order (measurements with the same label share one series)
  function measuredLabels(cfg) {
    var labels = [];
    cfg.measured.forEach(function (m) { if (labels.indexOf(m.label) < 0) { labels.push(m.label); } });
    return labels;
  }

  // uPlot's columns: x, one per curve, and one per measured label with the points of the measurements that match
  // the current settings (none: an empty column).
  function plotData(cfg, shown) {
    var data = [shown.x].concat(shown.curves);
    measuredLabels(cfg).forEach(function (label) {
      data.push(shown.x.map(function (x) {
        for (var i = 0; i < cfg.measured.length; i++) {
          var m = cfg.measured[i], ys = shown.measured[i], j = m.x.indexOf(x);
          if (m.label === label && ys && j >= 0) { return ys[j]; }
        }
        return null;
      }));
    });
    return data;
  }

  // The plot's colours, from the CSS variables of pnc-live.css (which follow <html data-theme>): curve i takes
  // --pnc-live-c<i>, falling back to the colour in the configuration.
  function palette(el, cfg) {
    var style = getComputedStyle(el);
    function v(name, fallback) { return (style.getPropertyValue(name) || '').trim() || fallback; }
    return {
      fg: v('--pnc-live-fg', '#222222'), grid: v('--pnc-live-grid', '#e3e3e3'), tick: v('--pnc-live-tick', '#bbbbbb'),
      point: v('--pnc-live-point', '#222222'),
      curves: cfg.curves.map(function (c, i) { return v('--pnc-live-c' + i, c.color); }),
    };
  }

  function makePlot(el, cfg, shown, api) {
    var holder = el.querySelector('.pnc-live-plot');
    var colors = palette(el, cfg);
    var xs = cfg.x.values;
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var compact = (holder.clientWidth || el.clientWidth || 320) < COMPACT;
    api.yRange = compact && cfg.y.log ? fitRange(cfg, plotData(cfg, shown)) : cfg.y.range.slice();
    var pad = 0.03 * (x1 - x0);
    var integers = xs.every(function (x) { return Math.round(x) === x; });
    var dots = xs.length <= 30;  // markers on the curves only where the x values are few (layers)
    var series = [{ label: cfg.x.label, value: function (u, v) { return v === null ? '–' : String(v); } }];
    cfg.curves.forEach(function (c, i) {
      series.push({ label: c.label, stroke: colors.curves[i], width: 2, dash: c.dash ? [6, 4] : undefined,
                    points: { show: dots, size: 5 }, value: function (u, v) { return fmt(v); } });
    });
    measuredLabels(cfg).forEach(function (label, k) {
      var color = cfg.measured.length && cfg.curves.length > 1 ? colors.curves[k % cfg.curves.length] : colors.point;
      series.push({ label: label, stroke: color, fill: undefined, width: 0,
                    paths: function () { return null; },
                    points: { show: true, size: 8, stroke: color, fill: color },
                    value: function (u, v) { return fmt(v); } });
    });
    function size() {
      var w = Math.max(200, Math.floor(holder.clientWidth || el.clientWidth || 320));
      return { width: w, height: Math.round(Math.min(340, Math.max(240, w * (w < COMPACT ? 0.72 : 0.55)))) };
    }
    var opts = Object.assign(size(), {
      scales: {
        x: { time: false, range: function () { return [x0 - pad, x1 + pad]; } },
        y: cfg.y.log ? { distr: 3, log: 10, range: function () { return api.yRange; } }
                     : { range: function () { return api.yRange; } },
      },
      axes: [
        { label: cfg.x.label, values: function (u, splits) { return splits.map(tick); }, incrs: integers && x1 - x0 <= 30 ? [1, 2, 5, 10] : undefined,
          stroke: colors.fg, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.tick } },
        { label: cfg.y.label, size: compact ? 46 : 56, stroke: colors.fg, grid: { stroke: colors.grid, width: 1 },
          ticks: { stroke: colors.tick }, splits: cfg.y.log ? decades(compact ? 4 : 8) : undefined,
          values: function (u, splits) { return splits.map(function (v) { return v === null ? null : tick(v); }); } },
      ],
      series: series,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [function () { el.dispatchEvent(new CustomEvent('pnc-live-drawn')); }] },
    });
    var plot = new window.uPlot(opts, plotData(cfg, shown), holder);
    if (typeof ResizeObserver === 'function') {
      var last = holder.clientWidth;
      new ResizeObserver(function () {
        if (Math.abs(holder.clientWidth - last) >= 1) { last = holder.clientWidth; plot.setSize(size()); }
      }).observe(holder);
    }
    // a compact log plot re-fits its y range to the data once the reader lets go of a control
    api.refit = function () {
      if (!(compact && cfg.y.log)) { return; }
      var r = fitRange(cfg, plot.data);
      if (r[0] !== api.yRange[0] || r[1] !== api.yRange[1]) { api.yRange = r; plot.setData(plot.data, true); }
    };
    return plot;
  }

  function fillTable(el, cfg, shown) {
    var holder = el.querySelector('.pnc-live-table');
    // one column per curve, then one per measured label (the measurements that match the current settings)
    var labels = measuredLabels(cfg);
    var columns = shown.curves.concat(plotData(cfg, shown).slice(1 + shown.curves.length));
    var head = '<tr><th scope="col">' + cfg.x.label + '</th>' +
      cfg.curves.map(function (c) { return c.label; }).concat(labels)
        .map(function (label) { return '<th scope="col">' + label + '</th>'; }).join('') + '</tr>';
    var body = shown.x.map(function (x, i) {
      if (shown.curves.every(function (ys) { return ys[i] === null; })) { return ''; }
      return '<tr><th scope="row">' + x + '</th>' +
        columns.map(function (ys) { return '<td>' + fmt(ys[i]) + '</td>'; }).join('') + '</tr>';
    }).join('');
    holder.innerHTML = '<table class="pnc-live-numbers"><thead>' + head + '</thead><tbody>' + body + '</tbody></table>';
    el.dispatchEvent(new CustomEvent('pnc-live-drawn'));
  }

  function setup(el) {
    var cfg = JSON.parse(el.querySelector('script.pnc-live-config').textContent);
    var values = {};
    cfg.controls.forEach(function (c) { values[c.name] = c.value; });
    var status = el.querySelector('.pnc-live-status');
    var scalars = el.querySelector('.pnc-live-scalars');
    var api = { config: cfg, values: values, plot: null, shown: null };
    var announceTimer = null;

    function env() { return Object.assign({}, cfg.fixed, values); }

    function summary(shown) {
      var parts = cfg.controls.map(function (c) { return c.label + ' = ' + fmt(values[c.name]); });
      var out = shown.scalars.map(function (v, i) { return cfg.scalars[i].label + ' = ' + fmt(v); });
      cfg.curves.forEach(function (c, i) {
        var ys = shown.curves[i].filter(function (v) { return v !== null; });
        if (ys.length) { out.push(c.label + ' at the last layer = ' + fmt(ys[ys.length - 1])); }
      });
      return parts.join(', ') + (out.length ? ': ' + out.join('; ') : '');
    }

    function redraw() {
      var shown = compute(cfg, env());
      api.shown = shown;
      if (scalars) {
        var line = shown.scalars.map(function (v, i) { return cfg.scalars[i].label + ' = ' + fmt(v); });
        if (cfg.measured.length) {
          var hit = shown.measured.some(function (ys) { return ys !== null; });
          line.push(hit ? 'measured points shown' : 'no measured points at these settings');
        }
        scalars.textContent = line.join(' · ');
      }
      if (cfg.kind === 'plot') {
        if (api.plot) { api.plot.setData(plotData(cfg, shown), true); } else { api.plot = makePlot(el, cfg, shown, api); }
      } else {
        fillTable(el, cfg, shown);
      }
      clearTimeout(announceTimer);
      announceTimer = setTimeout(function () { status.textContent = summary(shown); }, 250);
    }

    function clamp(c, v) {
      if (!isFinite(v)) { return null; }
      v = Math.min(c.max, Math.max(c.min, v));
      return c.digits === 0 ? Math.round(v) : v;
    }

    // the axes stay put while a control moves; a compact plot re-fits them 0.6 s after the last change
    var refitTimer = null;
    function settled() {
      clearTimeout(refitTimer);
      refitTimer = setTimeout(function () { if (api.refit) { api.refit(); } }, 600);
    }

    cfg.controls.forEach(function (c) {
      var range = el.querySelector('input[type=range][data-name="' + c.name + '"]');
      range.addEventListener('change', settled);
      var number = el.querySelector('input[type=number][data-name="' + c.name + '"]');
      range.setAttribute('aria-valuetext', fmt(c.value));
      range.addEventListener('input', function () {
        values[c.name] = clamp(c, parseFloat(range.value));
        number.value = String(values[c.name]);
        range.setAttribute('aria-valuetext', fmt(values[c.name]));
        redraw();
      });
      number.addEventListener('input', function () {
        var v = clamp(c, parseFloat(number.value));
        if (v === null) { return; }
        values[c.name] = v;
        range.value = String(v);
        range.setAttribute('aria-valuetext', fmt(v));
        redraw();
      });
      number.addEventListener('change', function () { number.value = String(values[c.name]); settled(); });
    });

    api.set = function (name, v) {
      var number = el.querySelector('input[type=number][data-name="' + name + '"]');
      number.value = String(v);
      number.dispatchEvent(new Event('input', { bubbles: true }));
    };
    api.data = function () { return api.plot ? api.plot.data : null; };
    api.rebuild = function () {  // the plot again, in the colours of the current theme (same data and y range)
      if (!api.plot) { return; }
      var range = api.yRange;
      api.plot.destroy();
      api.plot = makePlot(el, cfg, api.shown, api);
      api.yRange = range;
      api.plot.setData(api.plot.data, true);
    };
    el.pncLive = api;
    redraw();
    el.classList.add('pnc-live-ready');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Explorers of trained networks (pnc.book.widgets.DataExplorer): the page holds, per point of the explorer's grid, the
  // data read back from the render function's figure (panels of lines, reference lines and shaded spans, with their
  // light and dark colours) and draws the current one with uPlot, one plot per panel. API on the element:
  // el.pncLive = {config, index, set(param, i), view(), series(), colors(), plots, rebuild()}.

  function isDark() { return document.documentElement.getAttribute('data-theme') === 'dark'; }

  function esc(text) {
    return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }

  // uPlot's columns for a panel: the union of the lines' x values (ascending), one column per line (undefined where
  // the line has no point: uPlot joins across it; null where the value is not a number: a gap) and one per labelled
  // horizontal reference line (its level at every x)
  function alignPanel(panel) {
    var lines = panel.series.filter(function (s) { return s.kind === 'line'; });
    var seen = {}, xs = [];
    lines.forEach(function (s) {
      s.x.forEach(function (x) { if (x !== null && !seen.hasOwnProperty(x)) { seen[x] = true; xs.push(x); } });
    });
    xs.sort(function (a, b) { return a - b; });
    var at = {};
    xs.forEach(function (x, i) { at[x] = i; });
    var logY = panel.y.scale === 'log';
    var data = [xs], shown = [];
    panel.series.forEach(function (s) {
      if (s.kind === 'line') {
        var col = xs.map(function () { return undefined; });
        s.x.forEach(function (x, j) {
          if (x === null) { return; }
          var y = s.y[j];
          col[at[x]] = (y === null || (logY && y <= 0)) ? null : y;
        });
        data.push(col); shown.push(s);
      } else if (s.kind === 'hline' && s.legend) {
        data.push(xs.map(function () { return s.y; })); shown.push(s);
      }
    });
    return { data: data, series: shown };
  }

  function tickSplits(ticks, most) {
    if (!ticks || !ticks.length) { return undefined; }
    var step = Math.max(1, Math.ceil(ticks.length / Math.max(2, most)));
    var kept = ticks.filter(function (t, i) { return i % step === 0; });
    return function () { return kept.map(function (t) { return t[0]; }); };
  }

  // the longest tick label (characters), so that as many ticks are kept as fit side by side
  function longestTick(ticks) {
    return (ticks || []).reduce(function (m, t) { return Math.max(m, String(t[1]).length); }, 2);
  }

  function tickValues(ticks) {
    if (!ticks || !ticks.length) { return function (u, splits) { return splits.map(tick); }; }
    return function (u, splits) {
      return splits.map(function (v) {
        for (var i = 0; i < ticks.length; i++) { if (ticks[i][0] === v) { return ticks[i][1]; } }
        return tick(v);
      });
    };
  }

  function scaleOpts(axis, isX) {
    var r = axis.range.slice();
    var o = { range: function () { return r.slice(); } };
    if (isX) { o.time = false; }
    if (axis.scale === 'log') { o.distr = 3; o.log = 10; }
    if (axis.scale === 'symlog') { o.distr = 4; o.asinh = axis.linthresh; }
    return o;
  }

  // the text size (CSS px) of the plots' axes: at least 11 px, at most 12 (the body text of a phone's figure)
  function axisFontPx(width) { return width < COMPACT ? 11 : 12; }

  function makePanelPlot(box, panel, colors, api, drawn) {
    var holder = box.querySelector('.pnc-data-plot');
    var dark = isDark();
    var aligned = alignPanel(panel);
    var width0 = Math.max(200, Math.floor(holder.clientWidth || box.clientWidth || 320));
    var px = axisFontPx(width0);
    var font = px + 'px ' + (getComputedStyle(box).fontFamily || 'sans-serif');
    var xNames = tickValues(panel.x.ticks);  // a categorical x (layer names) hovers as its tick label
    var series = [{ label: panel.x.label || 'x',
                    value: function (u, v) { return v === null || v === undefined ? '–' : xNames(u, [v])[0]; } }];
    var unnamed = 0;
    aligned.series.forEach(function (s) {
      var color = dark ? s.dark : s.color;
      var label = s.legend ? s.label : 'series ' + (++unnamed);
      var own = s.kind === 'line' && s.y.indexOf(null) < 0;
      series.push({
        label: label, stroke: color, width: Math.max(1, s.width), dash: s.dash || undefined, spanGaps: own,
        paths: s.line ? undefined : function () { return null; },
        points: s.marker ? { show: true, size: Math.max(4, Math.round(s.size * 1.1)), stroke: color, fill: color, width: 1 }
                         : { show: false },
        value: function (u, v) { return fmt(v); },
      });
    });
    function size() {
      var w = Math.max(200, Math.floor(holder.clientWidth || box.clientWidth || 320));
      return { width: w, height: Math.round(Math.min(320, Math.max(220, w * (w < COMPACT ? 0.7 : 0.55)))) };
    }
    var sz = size();
    function ySize(u, values) {
      var longest = (values || []).reduce(function (m, v) { return Math.max(m, String(v || '').length); }, 0);
      return Math.ceil(longest * px * 0.62) + 22;
    }
    var vlines = panel.series.filter(function (s) { return s.kind === 'vline'; });
    var hlines = panel.series.filter(function (s) { return s.kind === 'hline'; });
    function bands(u) {
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      ctx.save();
      ctx.beginPath(); ctx.rect(u.bbox.left, top, u.bbox.width, h); ctx.clip();
      panel.bands.forEach(function (b) {
        var x0 = u.valToPos(b.x[0], 'x', true), x1 = u.valToPos(b.x[1], 'x', true);
        ctx.fillStyle = dark ? b.dark : b.color;
        ctx.fillRect(Math.min(x0, x1), top, Math.abs(x1 - x0), h);
      });
      ctx.restore();
    }
    function rules(u) {  // reference lines across the whole plot, as matplotlib draws axhline and axvline
      var ctx = u.ctx, box_ = u.bbox, ratio = box_.width / u.width;
      ctx.save();
      ctx.beginPath(); ctx.rect(box_.left, box_.top, box_.width, box_.height); ctx.clip();
      hlines.concat(vlines).forEach(function (s) {
        ctx.strokeStyle = dark ? s.dark : s.color;
        ctx.lineWidth = Math.max(1, s.width) * ratio;
        ctx.setLineDash((s.dash || []).map(function (d) { return d * ratio; }));
        ctx.beginPath();
        if (s.kind === 'hline') {
          var y = u.valToPos(s.y, 'y', true);
          ctx.moveTo(box_.left, y); ctx.lineTo(box_.left + box_.width, y);
        } else {
          var x = u.valToPos(s.x, 'x', true);
          ctx.moveTo(x, box_.top); ctx.lineTo(x, box_.top + box_.height);
        }
        ctx.stroke();
      });
      ctx.restore();
    }
    var opts = Object.assign(sz, {
      scales: { x: scaleOpts(panel.x, true), y: scaleOpts(panel.y, false) },
      axes: [
        { label: panel.x.label, font: font, labelFont: font, labelSize: px + 10, stroke: colors.fg,
          grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.tick },
          splits: tickSplits(panel.x.ticks, Math.floor((sz.width - 60) / (longestTick(panel.x.ticks) * px * 0.62 + 14))),
          values: tickValues(panel.x.ticks) },
        { label: panel.y.label, font: font, labelFont: font, labelSize: px + 10, stroke: colors.fg, size: ySize,
          grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.tick },
          splits: tickSplits(panel.y.ticks, Math.floor(sz.height / (px * 2.4))), values: tickValues(panel.y.ticks) },
      ],
      series: series,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      hooks: { drawClear: [bands], draw: [rules, function () { if (drawn) { drawn(); drawn = null; } }] },
    });
    var plot = new window.uPlot(opts, aligned.data, holder);
    // the legend lists the named series (matplotlib's legend); the others' values are in the data table
    var rows = plot.root.querySelectorAll('.u-legend .u-series');
    aligned.series.forEach(function (s, i) { if (!s.legend && rows[i + 1]) { rows[i + 1].style.display = 'none'; } });
    plot.pncFontPx = px;
    plot.pncSeries = aligned.series;
    if (typeof ResizeObserver === 'function') {
      var last = holder.clientWidth;
      new ResizeObserver(function () {
        if (Math.abs(holder.clientWidth - last) >= 1 && api.plots.indexOf(plot) >= 0) {
          last = holder.clientWidth; plot.setSize(size());
        }
      }).observe(holder);
    }
    return plot;
  }

  function dataTables(cfg, view, settings) {
    var out = [], csv = [];
    view.panels.forEach(function (panel, p) {
      var where = (view.panels.length > 1 ? 'Panel ' + (panel.letter ? '(' + panel.letter + ')' : p + 1) + ': ' : '') +
        (panel.title.join(' ') || ((panel.y.label || 'y') + ' against ' + (panel.x.label || 'x')));
      var aligned = alignPanel(panel);
      var lines = aligned.series.filter(function (s) { return s.kind === 'line'; });
      var unnamed = 0;
      var head = [panel.x.label || 'x'].concat(lines.map(function (s) { return s.legend ? s.label : 'series ' + (++unnamed); }));
      var rows = aligned.data[0].map(function (x, i) {
        return [x].concat(lines.map(function (s, k) { return aligned.data[1 + aligned.series.indexOf(s)][i]; }));
      });
      var html = '<div class="pnc-figure-table" tabindex="0" role="region" aria-label="' + esc(where) + '"><table><caption>' +
        esc(where) + '</caption><thead><tr>' + head.map(function (h) { return '<th scope="col">' + esc(h) + '</th>'; }).join('') +
        '</tr></thead><tbody>' + rows.map(function (r) {
          return '<tr>' + r.map(function (v) { return '<td>' + (v === null || v === undefined ? '–' : esc(String(v))) + '</td>'; }).join('') + '</tr>';
        }).join('') + '</tbody></table>';
      csv.push(['table'].concat(head).map(csvCell).join(','));
      rows.forEach(function (r) {
        csv.push([where].concat(r.map(function (v) { return v === null || v === undefined ? '' : v; })).map(csvCell).join(','));
      });
      var refs = panel.series.filter(function (s) { return s.kind !== 'line'; });
      if (refs.length || panel.bands.length) {
        html += '<table><caption>' + esc(where) + ': reference lines and shading</caption><thead><tr><th scope="col">what</th>' +
          '<th scope="col">at</th></tr></thead><tbody>' + refs.map(function (s) {
            return '<tr><td>' + esc((s.legend ? s.label + ', ' : '') + (s.kind === 'hline' ? 'horizontal line' : 'vertical line')) +
              '</td><td>' + esc(String(s.kind === 'hline' ? s.y : s.x)) + '</td></tr>';
          }).join('') + panel.bands.map(function (b) {
            return '<tr><td>shaded</td><td>' + esc(b.x[0] + ' to ' + b.x[1]) + '</td></tr>';
          }).join('') + '</tbody></table>';
      }
      out.push(html + '</div>');
    });
    var href = 'data:text/csv;charset=utf-8,' + encodeURIComponent(csv.join('\n') + '\n');
    return '<p class="pnc-data-setting">' + esc(settings) + '</p>' + out.join('') +
      '<p><a class="pnc-figure-csv" download="explorer-data.csv" href="' + href + '">Download the data (CSV)</a></p>';
  }

  function csvCell(v) {
    var t = String(v);
    return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }

  function setupData(el) {
    var cfg = JSON.parse(el.querySelector('script.pnc-live-config').textContent);
    var index = cfg.params.map(function (p) { return p.default; });
    var status = el.querySelector('.pnc-live-status');
    var holder = el.querySelector('.pnc-data-panels');
    var texts = el.querySelector('.pnc-data-texts');
    var tables = el.querySelector('.pnc-data-tables');
    var details = el.querySelector('details.pnc-figure-data');
    var api = { config: cfg, index: index, plots: [] };
    function writeTables() {
      tables.innerHTML = dataTables(cfg, api.view(), 'View at ' + settings());
      api.stale = false;
    }
    details.addEventListener('toggle', function () { if (details.open && api.stale) { writeTables(); } });
    var announceTimer = null;

    function flat() {
      var k = 0;
      cfg.params.forEach(function (p, i) { k = k * p.values.length + index[i]; });
      return k;
    }
    function settings() {
      return cfg.params.map(function (p, i) { return p.label + ' = ' + p.values[index[i]]; }).join(', ');
    }
    api.view = function () { return cfg.views[flat()]; };

    function draw() {
      var view = api.view();
      api.plots.forEach(function (p) { p.destroy(); });
      api.plots = [];
      texts.innerHTML = view.texts.map(function (t) { return '<p>' + esc(t) + '</p>'; }).join('');
      var cols = view.panels.reduce(function (m, p) { return Math.max(m, p.cols); }, 1);
      holder.style.setProperty('--pnc-data-cols', String(cols));
      holder.innerHTML = view.panels.map(function (p) {
        return '<div class="pnc-data-panel"><div class="pnc-data-head">' +
          (p.letter ? '<p class="pnc-data-letter">(' + esc(p.letter) + ')</p>' : '') +
          p.title.map(function (t) { return '<p class="pnc-data-title">' + esc(t) + '</p>'; }).join('') +
          p.notes.map(function (t) { return '<p class="pnc-data-note">' + esc(t) + '</p>'; }).join('') +
          '</div><div class="pnc-data-plot"></div></div>';
      }).join('');
      // panels side by side start their plots at the same height whatever text sits above each
      var heads = holder.querySelectorAll('.pnc-data-head');
      if (getComputedStyle(holder).gridTemplateColumns.trim().split(/\s+/).length > 1) {
        var tallest = 0;
        Array.prototype.forEach.call(heads, function (h) { tallest = Math.max(tallest, h.offsetHeight); });
        Array.prototype.forEach.call(heads, function (h) { h.style.minHeight = tallest + 'px'; });
      }
      var colors = palette(el, { curves: [] });
      var boxes = holder.querySelectorAll('.pnc-data-panel');
      var pending = view.panels.length;
      // 'pnc-live-drawn' once every panel's canvas is drawn (uPlot's draw hook; benchmarks/page_weight.py times it)
      function drawn() { if (--pending === 0) { el.dispatchEvent(new CustomEvent('pnc-live-drawn')); } }
      view.panels.forEach(function (p, i) { api.plots.push(makePanelPlot(boxes[i], p, colors, api, drawn)); });
      // the data table of the view, written when it is open (or opened): a closed one costs a redraw nothing
      api.stale = true;
      if (details.open) { writeTables(); }
      clearTimeout(announceTimer);
      announceTimer = setTimeout(function () {
        var head = view.panels.length && view.panels[0].title.length ? ': ' + view.panels[0].title.join(' ') : '';
        status.textContent = settings() + head;
      }, 250);
    }

    api.set = function (k, i) {
      var p = cfg.params[k];
      i = Math.max(0, Math.min(p.values.length - 1, Math.round(i)));
      if (p.choice) {
        var radio = el.querySelector('input[type=radio][data-param="' + k + '"][value="' + i + '"]');
        radio.checked = true;
        radio.dispatchEvent(new Event('change', { bubbles: true }));
      } else {
        var range = el.querySelector('input[type=range][data-param="' + k + '"]');
        range.value = String(i);
        range.dispatchEvent(new Event('input', { bubbles: true }));
      }
    };
    // what each plot draws: per panel, per series, its label and [x, y] points (read back from uPlot's columns)
    api.series = function () {
      return api.plots.map(function (plot) {
        return plot.pncSeries.map(function (s, k) {
          var ys = plot.data[k + 1], pts = [];
          plot.data[0].forEach(function (x, i) { if (ys[i] !== undefined) { pts.push([x, ys[i]]); } });
          return { label: s.label, kind: s.kind, points: pts };
        });
      });
    };
    api.colors = function () {
      return api.plots.map(function (plot) {
        return plot.series.slice(1).map(function (s) { return s._stroke || s.stroke; });
      });
    };
    api.rebuild = draw;

    cfg.params.forEach(function (p, k) {
      if (p.choice) {
        Array.prototype.forEach.call(el.querySelectorAll('input[type=radio][data-param="' + k + '"]'), function (radio) {
          radio.addEventListener('change', function () {
            if (!radio.checked) { return; }
            index[k] = parseInt(radio.value, 10);
            draw();
          });
        });
      } else {
        var range = el.querySelector('input[type=range][data-param="' + k + '"]');
        var output = range.parentNode.querySelector('output');
        range.addEventListener('input', function () {
          index[k] = parseInt(range.value, 10);
          output.textContent = p.values[index[k]];
          range.setAttribute('aria-valuetext', p.values[index[k]]);
          draw();
        });
      }
    });
    el.pncLive = api;
    draw();
    el.classList.add('pnc-live-ready');
  }

  // a change of theme (<html data-theme>) redraws every plot in the new colours
  function watchTheme() {
    if (typeof MutationObserver !== 'function') { return; }
    new MutationObserver(function () {
      Array.prototype.forEach.call(document.querySelectorAll('.pnc-live'), function (el) {
        if (el.pncLive && el.pncLive.rebuild) { el.pncLive.rebuild(); }
      });
    }).observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll('.pnc-live'), function (el) {
      if (el.pncLive) { return; }
      try {
        if (el.classList.contains('pnc-live-data')) { setupData(el); } else { setup(el); }
      } catch (err) { console.error(err); }
    });
  }

  watchTheme();
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
