/* latentcot viewer: draws the summary (curves, evaluation, configs) and the question browser from
   the data files written by `latentcot view` (see latentcot/eval/viewer.py). No network: data
   files are scripts calling latentcot.loaded(key, value), so the page works from file://. */
var latentcot = (function () {
  "use strict";
  var store = {}, waiting = {};
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
  var GROUPS = [["optimal", "#2ca02c"], ["frontier", "#1f77b4"], ["reachable", "#ff7f0e"], ["unreachable", "#7f7f7f"], ["mirror", "#d62728"]];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "onclick") node.addEventListener("click", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs || {}) { if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]); }
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function fmt(v, key) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return String(v);
    if (key === "accuracy" || key === "solved") return (100 * v).toFixed(1) + "%";
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  }

  function loaded(key, value) {
    store[key] = value;
    (waiting[key] || []).forEach(function (f) { f(value); });
    delete waiting[key];
  }
  function load(key) {
    if (key in store) return Promise.resolve(store[key]);
    return new Promise(function (resolve, reject) {
      var first = !(key in waiting);
      (waiting[key] = waiting[key] || []).push(resolve);
      if (first) {
        var s = el("script", {src: "data/" + key + ".js"});
        s.onerror = function () { reject(new Error("could not load data/" + key + ".js")); };
        document.head.appendChild(s);
      }
    });
  }

  // ---- training curves: one chart per logged metric, the runs of one task overlaid ----------
  function curves(summary, body) {
    var tasks = {};
    summary.runs.forEach(function (run, i) { run.color = COLORS[i % COLORS.length]; (tasks[run.task] = tasks[run.task] || []).push(run); });
    Object.keys(tasks).forEach(function (task) {
      var runs = tasks[task], metrics = [];
      runs.forEach(function (run) { Object.keys(run.metrics).forEach(function (m) { if (m !== "step" && metrics.indexOf(m) < 0) metrics.push(m); }); });
      var grid = el("div", {"class": "charts"});
      body.appendChild(el("h3", {text: "task " + (task || "?") + ": " + runs.map(function (r) { return r.name; }).join(", ")}));
      body.appendChild(el("div", {"class": "legend"}, runs.map(function (r) {
        return el("span", {}, [el("span", {"class": "swatch", style: "background:" + r.color}), r.name]);
      })));
      body.appendChild(grid);
      if (!metrics.length) grid.appendChild(el("p", {text: "no metrics logged yet"}));
      metrics.forEach(function (metric) {
        var having = runs.filter(function (r) { return metric in r.metrics && r.metrics[metric].some(function (v) { return v !== null; }); });
        if (!having.length) return;
        var data = uPlot.join(having.map(function (r) { return [r.metrics.step, r.metrics[metric]]; }));
        var box = el("div", {"class": "chart", "data-metric": metric});
        grid.appendChild(box);
        var width = Math.max(240, Math.floor((body.clientWidth - 24) / 3) - 8);
        new uPlot({
          title: metric, width: width, height: 190,
          scales: {x: {time: false}},
          axes: [{label: "step", size: 36}, {size: 52}],
          legend: {show: false},  // one legend per task above the charts
          series: [{label: "step"}].concat(having.map(function (r) { return {label: r.name, stroke: r.color, width: 1.5, spanGaps: true, points: {show: r.metrics.step.length < 3}}; })),
        }, data, box);
      });
    });
  }

  // ---- evaluation table: short headers (the meaning in a tooltip), sortable -------------------
  function evalTable(summary, body) {
    var rows = summary.runs.filter(function (r) { return r.eval; }).map(function (r) { return r.eval; });
    if (!rows.length) { body.appendChild(el("p", {text: "no run has an eval.json yet"})); return; }
    var columns = summary.columns.filter(function (c) { return rows.some(function (r) { return c[0] in r; }); });
    var table = el("table", {"class": "eval"}), tbody = el("tbody"), order = {key: null, up: true};
    function fill() {
      tbody.textContent = "";
      rows.forEach(function (r) {
        tbody.appendChild(el("tr", {}, columns.map(function (c) { return el("td", {"class": typeof r[c[0]] === "number" ? "num" : "", text: fmt(r[c[0]], c[0])}); })));
      });
    }
    table.appendChild(el("thead", {}, [el("tr", {}, columns.map(function (c) {
      return el("th", {title: c[2] + " (click to sort)", "data-key": c[0], onclick: function () {
        order.up = order.key === c[0] ? !order.up : true; order.key = c[0];
        rows.sort(function (a, b) { var x = a[c[0]], y = b[c[0]]; var s = x < y ? -1 : x > y ? 1 : 0; return order.up ? s : -s; });
        table.querySelectorAll("th").forEach(function (th) { th.classList.toggle("sorted", th.getAttribute("data-key") === c[0]); });
        fill();
      }, text: c[1]});
    }))]));
    table.appendChild(tbody);
    fill();
    body.appendChild(table);
    var plotted = summary.runs.filter(function (r) { return r.thought_points && r.thought_points.length; });
    if (plotted.length) {
      body.appendChild(el("h3", {text: "accuracy against continuous thoughts per question (each run's eval*.json; no-CoT and CoT at 0)"}));
      body.appendChild(thoughtChart(plotted));
    }
  }

  // ---- accuracy against the number of thoughts: one line per run over its eval*.json files ----
  function thoughtChart(runs) {
    var most = 1;
    runs.forEach(function (r) { r.thought_points.forEach(function (p) { most = Math.max(most, p.latents); }); });
    var w = 560, h = 220, left = 46, bottom = 34, top = 10, right = 180;
    var box = svg("svg", {width: left + w + right, height: top + h + bottom, "class": "thought-chart"});
    function x(v) { return left + v / most * w; }
    function y(v) { return top + (1 - v) * h; }
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      box.appendChild(svg("line", {x1: left, x2: left + w, y1: y(v), y2: y(v), stroke: "#e4e4e4"}));
      box.appendChild(svg("text", {x: left - 6, y: y(v) + 4, "text-anchor": "end", text: (100 * v) + "%"}));
    });
    var ticks = [];
    runs.forEach(function (r) { r.thought_points.forEach(function (p) { if (ticks.indexOf(p.latents) < 0) ticks.push(p.latents); }); });
    ticks.forEach(function (v) { box.appendChild(svg("text", {x: x(v), y: top + h + 16, "text-anchor": "middle", text: fmt(v)})); });
    box.appendChild(svg("line", {x1: left, x2: left + w, y1: y(0), y2: y(0), stroke: "#000"}));
    box.appendChild(svg("text", {x: left + w / 2, y: top + h + 31, "text-anchor": "middle", text: "thoughts per question"}));
    runs.forEach(function (r, i) {
      var pts = r.thought_points, color = r.color || COLORS[i % COLORS.length];
      if (pts.length > 1) box.appendChild(svg("polyline", {points: pts.map(function (p) { return x(p.latents) + "," + y(p.accuracy); }).join(" "), fill: "none", stroke: color, "stroke-width": 1.5}));
      pts.forEach(function (p) {
        var dot = svg("circle", {cx: x(p.latents), cy: y(p.accuracy), r: 4, fill: color, "class": "point"});
        dot.appendChild(svg("title", {text: r.name + " (" + p.file + "): " + fmt(p.accuracy, "accuracy") + " at " + fmt(p.latents) + " thoughts" + (p.passes === null || p.passes === undefined ? "" : ", " + fmt(p.passes) + " passes")}));
        box.appendChild(dot);
      });
      box.appendChild(svg("rect", {x: left + w + 14, y: top + i * 18, width: 10, height: 10, fill: color}));
      box.appendChild(svg("text", {x: left + w + 28, y: top + i * 18 + 9, text: r.name}));
    });
    return box;
  }

  // ---- configs: the differing keys side by side, each whole config folded away -----------------
  function configs(summary, body) {
    var runs = summary.runs.filter(function (r) { return r.config; });
    if (summary.diff.length) {
      body.appendChild(el("p", {text: "Keys whose values differ between the runs:"}));
      var table = el("table", {"class": "diff"});
      table.appendChild(el("tr", {}, [el("th", {text: "key"})].concat(runs.map(function (r) { return el("th", {text: r.name}); }))));
      summary.diff.forEach(function (d) {
        table.appendChild(el("tr", {}, [el("td", {"class": "key", text: d.key})].concat(runs.map(function (r) { var v = d.values[r.name]; return el("td", {text: v === null || v === undefined ? "—" : v}); }))));
      });
      body.appendChild(table);
    } else if (runs.length > 1) body.appendChild(el("p", {text: "The runs' configs are identical."}));
    runs.forEach(function (r) {
      body.appendChild(el("details", {}, [el("summary", {text: r.name + ": config.yaml"}), el("pre", {text: r.config})]));
    });
  }

  // ---- question browser -------------------------------------------------------------------------
  function heatmap(thoughts) {
    var k = thoughts.length, cell = Math.max(18, Math.min(34, Math.floor(240 / k))), pad = 26;
    var box = svg("svg", {width: pad + k * cell, height: pad + k * cell, "class": "heatmap"});
    for (var i = 0; i < k; i++) {
      box.appendChild(svg("text", {x: pad + i * cell + cell / 2, y: 16, "text-anchor": "middle", text: String(i + 1)}));
      box.appendChild(svg("text", {x: 12, y: pad + i * cell + cell / 2 + 4, "text-anchor": "middle", text: String(i + 1)}));
      for (var j = 0; j < k; j++) {
        var s = thoughts[i].sim[j], a = Math.min(1, Math.abs(s));
        var color = s >= 0 ? "rgba(214,39,40," + a + ")" : "rgba(31,119,180," + a + ")";
        var rect = svg("rect", {x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1, fill: color, "class": "cell"});
        rect.appendChild(svg("title", {text: "cos(thought " + (i + 1) + ", thought " + (j + 1) + ") = " + s.toFixed(3)}));
        box.appendChild(rect);
        if (cell >= 26) box.appendChild(svg("text", {x: pad + j * cell + cell / 2, y: pad + i * cell + cell / 2 + 4, "text-anchor": "middle", "class": a > 0.6 ? "light" : "", text: s.toFixed(1)}));
      }
    }
    return box;
  }

  function bars(rows) {
    var values = [];
    rows.forEach(function (r) { GROUPS.forEach(function (g) { if (r[g[0]] !== null) values.push(r[g[0]]); }); });
    var lo = Math.min(0, Math.min.apply(null, values)), hi = Math.max(0, Math.max.apply(null, values)), span = (hi - lo) || 1;
    var bw = 14, gw = GROUPS.length * bw + 18, h = 150, top = 10, left = 40;
    var box = svg("svg", {width: left + rows.length * gw + 110, height: h + 40, "class": "bars"});
    function y(v) { return top + (hi - v) / span * h; }
    box.appendChild(svg("line", {x1: left, x2: left + rows.length * gw, y1: y(0), y2: y(0), stroke: "#000"}));
    box.appendChild(svg("text", {x: left - 4, y: y(hi) + 4, "text-anchor": "end", text: hi.toFixed(1)}));
    box.appendChild(svg("text", {x: left - 4, y: y(lo) + 4, "text-anchor": "end", text: lo.toFixed(1)}));
    rows.forEach(function (r, t) {
      GROUPS.forEach(function (g, j) {
        var v = r[g[0]];
        if (v === null) return;
        var rect = svg("rect", {x: left + t * gw + 9 + j * bw, y: Math.min(y(v), y(0)), width: bw - 2, height: Math.max(1, Math.abs(y(v) - y(0))), fill: g[1], "class": "bar"});
        rect.appendChild(svg("title", {text: "thought " + (t + 1) + ", " + g[0] + ": " + v.toFixed(3)}));
        box.appendChild(rect);
      });
      box.appendChild(svg("text", {x: left + t * gw + gw / 2, y: h + 30, "text-anchor": "middle", text: "thought " + (t + 1)}));
    });
    GROUPS.forEach(function (g, j) {
      var x = left + rows.length * gw + 12;
      box.appendChild(svg("rect", {x: x, y: top + j * 18, width: 10, height: 10, fill: g[1]}));
      box.appendChild(svg("text", {x: x + 14, y: top + j * 18 + 9, text: g[0]}));
    });
    return box;
  }

  // an EndoCoT puzzle: the puzzle, the drawn and the true solution, then each thought as a map over the grid
  function gridMap(values, lo, hi, label) {
    var side = values.length, cell = Math.max(8, Math.min(22, Math.floor(132 / side))), span = (hi - lo) || 1;
    var box = svg("svg", {width: side * cell, height: side * cell, "class": "grid-map"});
    values.forEach(function (row, r) {
      row.forEach(function (v, c) {
        var a = (v - lo) / span;
        var rect = svg("rect", {x: c * cell, y: r * cell, width: cell - 1, height: cell - 1, "class": "mcell",
                                fill: "rgba(214,39,40," + (0.05 + 0.95 * a).toFixed(3) + ")"});
        rect.appendChild(svg("title", {text: label + ", cell (" + r + ", " + c + "): " + v.toFixed(3)}));
        box.appendChild(rect);
      });
    });
    return box;
  }
  function puzzleView(p) {
    var view = el("div", {"class": "puzzle-view"});
    view.appendChild(el("div", {"class": "images"}, [["puzzle", "puzzle"], ["drawn", "drawn by the model"], ["truth", "true solution"]].map(function (x) {
      return el("figure", {}, [el("img", {"class": "puzzle-img", src: p.images[x[0]], alt: x[1]}), el("figcaption", {text: x[1]})]);
    })));
    if (!p.maps) { view.appendChild(el("p", {"class": "note", text: "this model has no reasoner: it draws without thoughts"})); return view; }
    var lo = Infinity, hi = -Infinity;  // one colour scale over all thoughts of the puzzle
    p.maps.forEach(function (m) { m.forEach(function (row) { row.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); }); }); });
    view.appendChild(el("h4", {text: "the thoughts as maps over the grid (" + p.map_kind + "; darker = higher, from " + lo.toFixed(2) + " to " + hi.toFixed(2) + ")"}));
    view.appendChild(el("ol", {"class": "maps"}, p.maps.map(function (m, i) {
      var label = i === 0 ? "thought 0 (first pass)" : "thought " + i + (i === p.maps.length - 1 ? " (final, drawn from)" : "");
      return el("li", {"class": "thought map"}, [el("div", {"class": "head", text: label}), gridMap(m, lo, hi, label),
        p.readouts ? el("img", {"class": "puzzle-img readout", src: p.readouts[i], alt: "what " + label + " reads out", title: "what this thought reads out"}) : null]);
    })));
    return view;
  }

  function showQuestion(run, index, meta, detail, body) {
    var q = meta.questions[index];
    body.textContent = "";
    body.appendChild(el("div", {"class": "question"}, [
      el("div", {"class": "qtext", text: q.q}),
      el("div", {}, [el("span", {"class": q.ok ? "ok" : "bad", text: q.ok ? "correct" : "wrong"}),
        " gold ", el("b", {text: q.gold}), ", predicted ", el("b", {text: q.pred}), q.text ? " — wrote: " : "", q.text ? el("code", {text: q.text}) : null]),
    ]));
    if (detail.puzzle) { body.appendChild(puzzleView(detail.puzzle)); return; }
    if (!detail.thoughts.length) { body.appendChild(el("p", {"class": "note", text: "this method thinks in no latent thoughts (its written text is above)"})); return; }
    var list = el("ol", {"class": "thoughts"});
    detail.thoughts.forEach(function (t, i) {
      var chips = t.near.map(function (p) { return el("span", {"class": "chip", title: "p = " + p[1]}, [el("span", {"class": "tok", text: p[0]}), el("span", {"class": "p", text: p[1].toFixed(2)})]); });
      list.appendChild(el("li", {"class": "thought"}, [
        el("div", {"class": "head", text: "thought " + (i + 1) + " · norm " + t.norm.toFixed(2) + " (" + t.rel.toFixed(2) + "× token embeddings)"}),
        t.step !== null ? el("div", {"class": "step"}, ["decoder writes: ", el("code", {text: t.step || "(nothing)"})]) : null,
        el("div", {"class": "near"}, ["nearest: "].concat(chips)),
      ]));
    });
    var side = el("div", {"class": "side"}, [el("h4", {text: "cosine similarity between thoughts"}), heatmap(detail.thoughts)]);
    if (detail.superposition && detail.superposition.length) {
      side.appendChild(el("h4", {text: "superposition: inner product with node embeddings"}));
      side.appendChild(bars(detail.superposition));
    }
    body.appendChild(el("div", {"class": "detail"}, [list, side]));
  }

  function browser(summary, body) {
    var runs = summary.runs.filter(function (r) { return r.questions; });
    summary.runs.filter(function (r) { return !r.questions; }).forEach(function (r) {
      body.appendChild(el("p", {"class": "note", text: r.name + ": no questions to browse (" + (r.browser_note || "") + ")"}));
    });
    if (!runs.length) return Promise.resolve();
    var picker = el("select", {id: "run-picker"}, runs.map(function (r) { return el("option", {value: r.slug, text: r.name + " (" + r.questions + " questions)"}); }));
    var thinking = runs.filter(function (r) { return r.thoughts; })[0];
    if (thinking) picker.value = thinking.slug;  // open on a run that has thoughts to show
    var filter = el("input", {id: "question-filter", type: "search", placeholder: "type to filter: words of a question, or #12"});
    var list = el("div", {id: "question-list", "class": "qlist"}), detail = el("div", {id: "question-detail", "class": "qdetail", text: "Click a question to see its thoughts."});
    body.appendChild(el("div", {"class": "controls"}, [picker, filter]));
    body.appendChild(el("div", {"class": "browse"}, [list, detail]));
    var current = null;
    function render() {
      var words = filter.value.trim().toLowerCase(), number = /^#\d+$/.test(words) ? parseInt(words.slice(1), 10) : null;
      list.textContent = "";
      var shown = 0;
      current.meta.questions.forEach(function (q, i) {
        if (number !== null ? i !== number : words && q.q.toLowerCase().indexOf(words) < 0) return;
        shown++;
        list.appendChild(el("div", {"class": "q-item", "data-index": String(i), title: q.q, onclick: function () {
          list.querySelectorAll(".selected").forEach(function (n) { n.classList.remove("selected"); });
          this.classList.add("selected");
          var key = current.run.slug + "/chunk-" + String(Math.floor(i / current.meta.chunk)).padStart(4, "0"), run = current;
          detail.textContent = "loading…";
          var clicked = performance.now();
          load(key).then(function (chunk) {
            if (current !== run) return;
            showQuestion(run.run, i, run.meta, chunk[i % run.meta.chunk], detail);
            document.body.setAttribute("data-question-ms", String(Math.round(performance.now() - clicked)));  // click to thoughts shown
          });
        }}, [el("span", {"class": q.ok ? "ok" : "bad", text: q.ok ? "✓" : "✗"}), el("span", {"class": "n", text: "#" + i}), el("span", {"class": "t", text: q.q})]));
      });
      if (!shown) list.appendChild(el("p", {"class": "note", text: "no question matches"}));
    }
    function pick() {
      var run = runs.filter(function (r) { return r.slug === picker.value; })[0];
      return load(run.slug + "/questions").then(function (meta) { current = {run: run, meta: meta}; detail.textContent = "Click a question to see its thoughts."; render(); });
    }
    picker.addEventListener("change", pick);
    filter.addEventListener("input", function () { if (current) render(); });
    // a link to one question: index.html#run=<run>&q=<number>
    var link = /^#run=([^&]+)&q=(\d+)$/.exec(location.hash), wanted = link && runs.filter(function (r) { return r.slug === decodeURIComponent(link[1]); })[0];
    if (wanted) picker.value = wanted.slug;
    return pick().then(function () {
      var item = link && list.querySelector('.q-item[data-index="' + link[2] + '"]');
      if (item) { item.click(); list.scrollTop = item.offsetTop - list.offsetTop; }
    });
  }

  // ---- self-test: `index.html#selftest` checks what rendered and writes it into #selftest ------
  function painted(canvas) {
    var data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (var i = 3; i < data.length; i += 4) if (data[i]) return true;
    return false;
  }
  function waitFor(test, ms) {
    return new Promise(function (resolve) {
      var began = Date.now();
      (function poll() { var v = test(); if (v || Date.now() - began > ms) resolve(v); else setTimeout(poll, 20); })();
    });
  }
  function selftest(rendered) {
    var charts = document.querySelectorAll("#curves .chart"), r = {
      rendered_ms: rendered, charts: charts.length,
      painted: Array.prototype.filter.call(charts, function (c) { var cv = c.querySelector("canvas"); return cv && painted(cv); }).length,
      eval_rows: document.querySelectorAll("#evaluation tbody tr").length,
      thought_points: document.querySelectorAll("#evaluation .thought-chart .point").length,
      scroll_width: document.documentElement.scrollWidth, window_width: window.innerWidth,
      questions: document.querySelectorAll("#question-list .q-item").length,
    };
    function clickFirst() {  // one click on the first question, then what its detail lists
      var first = document.querySelector("#question-list .q-item");
      if (!first) return Promise.resolve({});
      var began = performance.now();
      first.click();
      return waitFor(function () { return document.querySelectorAll("#question-detail .thought").length || document.querySelector("#question-detail .note"); }, 5000).then(function () {
        var q = function (s) { return document.querySelectorAll("#question-detail " + s).length; };
        return {click_ms: Math.round(performance.now() - began), thoughts: q(".thought"), nearest: q(".chip"), heatmap_cells: q(".heatmap .cell"), superposition_bars: q(".bars .bar"), steps: q(".step"),
                map_cells: q(".grid-map .mcell"), images: Array.prototype.filter.call(document.querySelectorAll("#question-detail img.puzzle-img"), function (i) { return i.complete && i.naturalWidth > 0; }).length};
      });
    }
    var picker = document.getElementById("run-picker"), runs = {};
    var done = clickFirst().then(function (seen) {
      Object.assign(r, seen);
      // then every run of the picker in turn
      return (picker ? Array.prototype.map.call(picker.options, function (o) { return o.value; }) : []).reduce(function (p, slug) {
        return p.then(function () {
          picker.value = slug;
          picker.dispatchEvent(new Event("change"));
          return waitFor(function () { var i = document.querySelector("#question-list .q-item"); return i && !i.classList.contains("selected") && document.querySelector("#question-detail").textContent.indexOf("Click") === 0; }, 5000)
            .then(clickFirst).then(function (seen) { runs[slug] = seen; });
        });
      }, Promise.resolve());
    });
    return done.then(function () {
      r.runs = runs;
      r.clicked_ms = Math.round(performance.now());
      r.scroll_width_after = document.documentElement.scrollWidth;
      r.errors = window.latentcotErrors;
      document.body.appendChild(el("pre", {id: "selftest", text: JSON.stringify(r)}));
    });
  }

  function start(options) {
    var summary = store.summary, nav = document.getElementById("nav");
    [["curves", "Training curves"], ["evaluation", "Evaluation"], options.browser ? ["browser", "Questions"] : null, ["configs", "Configs"]].forEach(function (s) {
      if (s) nav.appendChild(el("a", {href: "#" + s[0], text: s[1]}));
    });
    curves(summary, document.getElementById("curves-body"));
    evalTable(summary, document.getElementById("eval-body"));
    configs(summary, document.getElementById("configs-body"));
    var ready = options.browser ? browser(summary, document.getElementById("browser-body")) : Promise.resolve();
    ready.then(function () {
      var rendered = Math.round(performance.now());
      document.body.setAttribute("data-rendered-ms", String(rendered));
      if (location.hash === "#selftest") selftest(rendered);
    }).catch(function (err) { window.latentcotErrors.push(String(err)); });
  }

  return {loaded: loaded, load: load, start: start};
})();
