"""The report's inline CSS and JavaScript: hand-written, no library, so the page works offline and stays small.

The script reads the chart data from <script id="report-data" type="application/json"> and draws three <canvas>
charts (equity, drawdown, price with trades) that share one time window: hover shows a crosshair and a tooltip on
all of them, the wheel zooms, dragging pans, a double click resets.
"""

CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #fff;
  --pos: #15803d; --neg: #b91c1c; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 0 0 12px; }
h3 { font-size: 13px; margin: 14px 0 4px; color: var(--muted); font-weight: 600; }
section, header { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 20px; margin-top: 16px; }
.badges { display: flex; gap: 8px; flex-wrap: wrap; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 700;
  letter-spacing: .04em; border: 1px solid var(--line); background: #f3f4f6; }
.badge.synthetic { background: #fef3c7; color: #92400e; border-color: #f59e0b; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px 24px;
  margin: 14px 0 0; }
dl.facts dt { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .06em; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
  margin-bottom: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 20px; font-weight: 600; }
.pos { color: var(--pos); }
.neg { color: var(--neg); }
.split { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 0 32px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, .metrics td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; background: var(--card); position: sticky; top: 0; }
.metrics td:first-child { color: var(--muted); }
.trades { max-height: 520px; overflow: auto; }
.trades th:nth-child(2), .trades td:nth-child(2) { text-align: left; }
/* the P&L column */
tr.win td:nth-child(8) { color: var(--pos); }
tr.loss td:nth-child(8) { color: var(--neg); }
tr[data-trade] { cursor: pointer; }
tr[data-trade]:hover { background: #f1f5f9; }
canvas { display: block; width: 100%; cursor: crosshair; touch-action: none; }
#equity-chart { height: 280px; }
#drawdown-chart { height: 150px; }
#price-chart { height: 320px; }
.hint, .legend { color: var(--muted); font-size: 12px; }
.legend .win { color: var(--pos); }
.legend .loss { color: var(--neg); }
.notice { background: #fff7ed; border: 1px solid #fdba74; border-radius: 8px; padding: 8px 12px; margin: 8px 0; }
.error { background: #fef2f2; border-color: #fca5a5; }
#tooltip { position: absolute; pointer-events: none; background: rgba(17, 24, 39, .93); color: #fff;
  padding: 6px 9px; border-radius: 6px; font-size: 12px; white-space: nowrap; z-index: 10; }
#tooltip .head { font-weight: 600; }
"""

JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAD = {l: 84, r: 16, t: 10, b: 24};
  var INK = {grid: "#eceef1", text: "#6b7280", cross: "#94a3b8", win: "#16a34a", loss: "#dc2626"};
  var STEPS = [6e4, 3e5, 9e5, 36e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 12096e5, 2592e6, 7776e6, 31536e6];
  var tip = document.getElementById("tooltip");
  var charts = [], hoverT = null, active = null, drag = null, pending = false;
  var trades = data.trades.map(function (r, i) {
    return {n: i + 1, t0: r[0], t1: r[1], side: r[2], p0: r[3], p1: r[4], pnl: r[5], units: r[6], why: r[7]};
  });
  var full = fullRange(), view = {lo: full.lo, hi: full.hi};
  var minSpan = Math.max((full.hi - full.lo) / 5000, 6e4);

  function fullRange() {
    var lo = Infinity, hi = -Infinity;
    [data.equity, data.price].forEach(function (s) {
      if (s && s.t.length) { lo = Math.min(lo, s.t[0]); hi = Math.max(hi, s.t[s.t.length - 1]); }
    });
    if (!isFinite(lo)) { return {lo: 0, hi: 1}; }
    return {lo: lo, hi: hi > lo ? hi : lo + 1};
  }
  function bisect(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (a[m] < x) { lo = m + 1; } else { hi = m; } }
    return lo;
  }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function day(d) { return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()); }
  function clock(d) { return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()); }
  function when(ms) { var d = new Date(ms); return day(d) + " " + clock(d) + " UTC"; }
  function axisTime(ms, step) {
    var d = new Date(ms);
    return step >= 864e5 ? day(d) : day(d).slice(5) + " " + clock(d);
  }
  function num(v, dp) {
    return v.toLocaleString("en-US", {minimumFractionDigits: dp, maximumFractionDigits: dp});
  }
  function money(v) { return num(v, 2) + " " + data.currency; }
  function pct(v) { return num(v * 100, 2) + " %"; }
  function price(v) { return v.toFixed(data.digits); }
  function niceTicks(lo, hi, n) {
    var raw = (hi - lo) / n, step = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / step, out = [];
    step *= r >= 7.5 ? 10 : r >= 3.5 ? 5 : r >= 1.5 ? 2 : 1;
    // Integer multiples, not repeated additions: no drift, so the top tick is not lost; "+ 0" turns -0 into 0.
    for (var k = Math.ceil(lo / step - 1e-9); k <= hi / step + 1e-9; k++) { out.push(k * step + 0); }
    return out;
  }

  function Chart(id, series, o) {
    this.c = document.getElementById(id); this.s = series; this.o = o;
    charts.push(this); this.bind();
  }
  Chart.prototype.x = function (t) { return PAD.l + (t - view.lo) / (view.hi - view.lo) * this.pw; };
  Chart.prototype.t = function (x) { return view.lo + (x - PAD.l) / this.pw * (view.hi - view.lo); };
  Chart.prototype.y = function (v) { return PAD.t + (this.top - v) / (this.top - this.bottom) * this.ph; };
  Chart.prototype.context = function () {
    var c = this.c, r = window.devicePixelRatio || 1, g = c.getContext("2d");
    this.w = c.clientWidth; this.h = c.clientHeight;
    this.pw = this.w - PAD.l - PAD.r; this.ph = this.h - PAD.t - PAD.b;
    if (c.width !== Math.round(this.w * r)) { c.width = Math.round(this.w * r); }
    if (c.height !== Math.round(this.h * r)) { c.height = Math.round(this.h * r); }
    g.setTransform(r, 0, 0, r, 0, 0); g.font = "11px system-ui, sans-serif";
    return g;
  };
  // Indices in the window, plus one point each side so the line reaches the edges.
  Chart.prototype.span = function () {
    var t = this.s.t;
    return [Math.max(bisect(t, view.lo) - 1, 0), Math.min(bisect(t, view.hi) + 1, t.length)];
  };
  Chart.prototype.scale = function (a, b) {
    var lo = Infinity, hi = -Infinity, v = this.s.v, i;
    for (i = a; i < b; i++) { lo = Math.min(lo, v[i]); hi = Math.max(hi, v[i]); }
    if (this.o.trades) {
      visibleTrades().forEach(function (k) { lo = Math.min(lo, k.p0, k.p1); hi = Math.max(hi, k.p0, k.p1); });
    }
    if (this.o.fill) { hi = 0; }
    var margin = (hi - lo) * 0.06 || Math.abs(hi) * 0.01 || 0.01;
    this.bottom = lo - margin; this.top = this.o.fill ? 0 : hi + margin;
  };
  Chart.prototype.draw = function () {
    var g = this.context(), ab = this.span(), a = ab[0], b = ab[1], i;
    g.clearRect(0, 0, this.w, this.h);
    if (b - a < 1) { g.fillStyle = INK.text; g.fillText("no data in this range", PAD.l + 8, PAD.t + 16); return; }
    this.scale(a, b);
    this.axes(g);
    g.save(); g.beginPath(); g.rect(PAD.l, PAD.t, this.pw, this.ph); g.clip();
    g.beginPath();
    for (i = a; i < b; i++) { g.lineTo(this.x(this.s.t[i]), this.y(this.s.v[i])); }
    g.strokeStyle = this.o.color; g.lineWidth = 1.4; g.stroke();
    if (this.o.fill) {
      g.lineTo(this.x(this.s.t[b - 1]), this.y(0)); g.lineTo(this.x(this.s.t[a]), this.y(0));
      g.fillStyle = this.o.fill; g.fill();
    }
    if (this.o.trades) { this.drawTrades(g); }
    g.restore();
    this.drawCross(g);
  };
  Chart.prototype.axes = function (g) {
    var self = this, step = STEPS[STEPS.length - 1];
    g.strokeStyle = INK.grid; g.fillStyle = INK.text; g.lineWidth = 1;
    g.textAlign = "right"; g.textBaseline = "middle";
    niceTicks(this.bottom, this.top, Math.max(this.ph / 45, 2)).forEach(function (v) {
      var y = Math.round(self.y(v)) + 0.5;
      g.beginPath(); g.moveTo(PAD.l, y); g.lineTo(self.w - PAD.r, y); g.stroke();
      g.fillText(self.o.axis(v), PAD.l - 6, y);
    });
    for (var k = 0; k < STEPS.length; k++) {
      if ((view.hi - view.lo) / STEPS[k] <= this.pw / 110) { step = STEPS[k]; break; }
    }
    g.textAlign = "center"; g.textBaseline = "top";
    for (var t = Math.ceil(view.lo / step) * step; t <= view.hi; t += step) {
      var x = Math.round(this.x(t)) + 0.5;
      g.beginPath(); g.moveTo(x, PAD.t); g.lineTo(x, PAD.t + this.ph); g.stroke();
      g.fillText(axisTime(t, step), x, this.h - PAD.b + 6);
    }
  };
  Chart.prototype.drawTrades = function (g) {
    var self = this;
    visibleTrades().forEach(function (k) {
      var x0 = self.x(k.t0), y0 = self.y(k.p0), x1 = self.x(k.t1), y1 = self.y(k.p1), s = k.side > 0 ? 1 : -1;
      g.strokeStyle = g.fillStyle = k.pnl > 0 ? INK.win : INK.loss;
      g.setLineDash([3, 3]); g.lineWidth = 1;
      g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke(); g.setLineDash([]);
      // Long entries point up from below the price, short entries point down from above it.
      g.beginPath(); g.moveTo(x0, y0); g.lineTo(x0 - 6, y0 + 10 * s); g.lineTo(x0 + 6, y0 + 10 * s); g.closePath();
      g.fill();
      g.beginPath(); g.arc(x1, y1, 3.5, 0, 2 * Math.PI); g.fill();
      g.strokeStyle = "#fff"; g.stroke();
    });
  };
  Chart.prototype.nearest = function (t) {
    var ts = this.s.t, i = bisect(ts, t);
    if (i >= ts.length || (i > 0 && t - ts[i - 1] < ts[i] - t)) { i -= 1; }
    return i;
  };
  Chart.prototype.drawCross = function (g) {
    if (hoverT === null || hoverT < view.lo || hoverT > view.hi || !this.s.t.length) { return; }
    var x = this.x(hoverT), i = this.nearest(hoverT), y = this.y(this.s.v[i]);
    g.strokeStyle = INK.cross; g.lineWidth = 1; g.setLineDash([4, 3]);
    g.beginPath(); g.moveTo(x, PAD.t); g.lineTo(x, PAD.t + this.ph);
    if (active === this) { g.moveTo(PAD.l, y); g.lineTo(PAD.l + this.pw, y); }
    g.stroke(); g.setLineDash([]);
    g.fillStyle = this.o.color; g.beginPath(); g.arc(this.x(this.s.t[i]), y, 3, 0, 2 * Math.PI); g.fill();
  };
  Chart.prototype.tradeAt = function (x, y) {
    var self = this, best = null, bestD = 64;
    visibleTrades().forEach(function (k) {
      [[k.t0, k.p0], [k.t1, k.p1]].forEach(function (p) {
        var dx = self.x(p[0]) - x, dy = self.y(p[1]) - y, d = dx * dx + dy * dy;
        if (d < bestD) { best = k; bestD = d; }
      });
    });
    return best;
  };
  Chart.prototype.lines = function (x, y) {
    var k = this.o.trades ? this.tradeAt(x, y) : null;
    if (k) {
      return [(k.side > 0 ? "LONG" : "SHORT") + " trade #" + k.n + (k.pnl > 0 ? " (win)" : " (loss)"),
        "Entry " + when(k.t0) + " @ " + price(k.p0), "Exit " + when(k.t1) + " @ " + price(k.p1),
        "P&L " + money(k.pnl), "Units " + num(k.units, 0), "Exit reason: " + k.why];
    }
    var i = this.nearest(hoverT);
    return [when(this.s.t[i]), this.o.label + ": " + this.o.tip(this.s.v[i])];
  };
  Chart.prototype.bind = function () {
    var self = this, c = this.c;
    c.addEventListener("mousemove", function (e) {
      if (drag) { return; }
      hoverT = self.t(e.offsetX); active = self; redraw();
      if (self.s.t.length) { showTip(self.lines(e.offsetX, e.offsetY), e); }
    });
    c.addEventListener("mouseleave", function () { hoverT = null; active = null; tip.hidden = true; redraw(); });
    c.addEventListener("wheel", function (e) {
      e.preventDefault();
      var t = self.t(e.offsetX), f = e.deltaY > 0 ? 1.25 : 0.8;
      setView(t - (t - view.lo) * f, t + (view.hi - t) * f);
    }, {passive: false});
    c.addEventListener("mousedown", function (e) {
      drag = {x: e.clientX, lo: view.lo, hi: view.hi, pw: self.pw}; tip.hidden = true; e.preventDefault();
    });
    c.addEventListener("dblclick", function () { setView(full.lo, full.hi); });
  };

  function visibleTrades() {
    return trades.filter(function (k) { return k.t1 >= view.lo && k.t0 <= view.hi; });
  }
  function setView(lo, hi) {
    var span = Math.min(Math.max(hi - lo, minSpan), full.hi - full.lo);
    view.lo = Math.min(Math.max(lo, full.lo), full.hi - span); view.hi = view.lo + span;
    redraw();
  }
  function redraw() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; drawAll(); });
  }
  function drawAll() { charts.forEach(function (chart) { chart.draw(); }); }
  function showTip(lines, e) {
    tip.textContent = "";
    lines.forEach(function (line, k) {
      var div = document.createElement("div");
      div.textContent = line; div.className = k === 0 ? "head" : "";
      tip.appendChild(div);
    });
    tip.hidden = false;
    var x = e.pageX + 14, right = document.documentElement.clientWidth + window.scrollX;
    if (x + tip.offsetWidth > right) { x = e.pageX - tip.offsetWidth - 14; }
    tip.style.left = x + "px"; tip.style.top = (e.pageY + 14) + "px";
  }

  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    var shift = (e.clientX - drag.x) / drag.pw * (drag.hi - drag.lo);
    setView(drag.lo - shift, drag.hi - shift);
  });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("resize", redraw);
  document.querySelectorAll("tr[data-trade]").forEach(function (row) {
    row.addEventListener("click", function () {
      var k = trades[Number(row.getAttribute("data-trade"))], pad = Math.max((k.t1 - k.t0) * 0.5, minSpan * 20);
      setView(k.t0 - pad, k.t1 + pad);
      (document.getElementById("price-chart") || document.getElementById("equity-chart")).scrollIntoView();
    });
  });

  var axisMoney = function (v) { return num(v, 0); };
  new Chart("equity-chart", data.equity, {color: "#2563eb", label: "Equity", tip: money, axis: axisMoney});
  new Chart("drawdown-chart", data.drawdown, {color: "#dc2626", fill: "rgba(220, 38, 38, .15)",
    label: "Drawdown", tip: pct, axis: function (v) { return num(v * 100, 1) + " %"; }});
  if (data.price) {
    new Chart("price-chart", data.price, {color: "#334155", label: "Close", tip: price, axis: price, trades: true});
  }
  drawAll();
})();
"""
