/* pnc-book: continuous explorers (pnc/book/live.py). Each .pnc-live block carries its configuration as JSON and the
 * formulas it evaluates as JavaScript generated from the book's sympy expressions (window.pncLaws, written at build
 * time by pnc.book.laws; nothing here knows a formula). This script wires the range sliders and number fields,
 * evaluates the formulas on every input event and draws them with uPlot (vendored; plots) or fills a table
 * (panels). Each block gets an API on its element, el.pncLive = {values, set(name, value), data(), plot}, used by
 * the browser tests and benchmarks/page_weight.py. */
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
      try { setup(el); } catch (err) { console.error(err); }
    });
  }

  watchTheme();
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
