// The dashboard's charts (数据看板, 数据大屏), drawn by ECharts (served by the app, /static/vendor/echarts) from
// the JSON the page embeds in <script type="application/json" id="dashboard-data">. The tables beside the charts
// are the same data, for a browser without JavaScript and for screen readers. On the display screen the figures
// are fetched again every few seconds with the session and redrawn in place, without reloading the page.
"use strict";
(function () {
  var source = document.getElementById("dashboard-data");
  if (!source || !window.echarts) {
    return;
  }
  var screen = source.getAttribute("data-mode") === "screen";
  var data = JSON.parse(source.textContent);
  var charts = {};
  var axisOf = { count: 0, percent: 1, score: 2 };
  var axisNames = ["数量", "比率（%）", "得分"];

  function formatValue(unit, value) {
    if (value === null || value === undefined) {
      return "—";
    }
    if (unit === "percent") {
      return value.toFixed(1) + "%";
    }
    if (unit === "score") {
      return value.toFixed(2);
    }
    return value.toLocaleString("en-US");
  }

  function formatter(unit) {
    return function (value) {
      return formatValue(unit, value);
    };
  }

  function emptyTitle(chart) {
    var total = 0;
    chart.series[0].values.forEach(function (value) {
      total += value || 0;
    });
    return total ? { show: false } : { show: true, text: "暂无数据", left: "center", top: "middle" };
  }

  // Trend and bar charts: counts as bars on the left axis, rates and scores as lines on axes of their own.
  function axisOption(chart, horizontal) {
    var used = [];
    chart.series.forEach(function (s) {
      if (used.indexOf(axisOf[s.unit]) < 0) {
        used.push(axisOf[s.unit]);
      }
    });
    used.sort();
    var values = used.map(function (axis, i) {
      return {
        type: "value",
        name: horizontal ? "" : axisNames[axis],
        position: i === 0 ? (horizontal ? "bottom" : "left") : "right",
        offset: i > 1 ? 64 : 0,
        minInterval: axis === 0 ? 1 : 0,
        max: axis === 1 ? 100 : null,
        splitLine: { show: i === 0 },
        axisLabel: { formatter: axis === 1 ? "{value}%" : "{value}" }
      };
    });
    var series = chart.series.map(function (s) {
      return {
        name: s.name,
        type: s.unit === "count" || horizontal ? "bar" : "line",
        data: s.values,
        yAxisIndex: horizontal ? 0 : used.indexOf(axisOf[s.unit]),
        connectNulls: false,
        tooltip: { valueFormatter: formatter(s.unit) },
        label: horizontal ? { show: true, position: "right", formatter: function (p) { return formatValue(s.unit, p.value); } } : undefined
      };
    });
    var categories = { type: "category", data: chart.categories, inverse: horizontal };
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: used.length > 2 ? 120 : 56, top: 48, bottom: 8, containLabel: true },
      xAxis: horizontal ? values[0] : categories,
      yAxis: horizontal ? categories : values,
      series: series
    };
  }

  function pieOption(chart) {
    var first = chart.series[0];
    return {
      title: emptyTitle(chart),
      tooltip: { trigger: "item", valueFormatter: formatter(first.unit) },
      legend: { bottom: 0, type: "scroll" },
      series: [{
        name: first.name,
        type: "pie",
        radius: ["38%", "64%"],
        center: ["50%", "45%"],
        label: { formatter: "{b}\n{d}%" },
        data: chart.categories.map(function (name, i) {
          return { name: name, value: first.values[i] || 0 };
        })
      }]
    };
  }

  function optionOf(chart) {
    var option;
    if (chart.kind === "pie") {
      option = pieOption(chart);
    } else if (chart.kind === "ranking") {
      // A ranking bars its first series (the good rate); the table beside it has the rest.
      option = axisOption({ series: [chart.series[0]], categories: chart.categories }, true);
    } else {
      option = axisOption(chart, false);
    }
    option.backgroundColor = "transparent";
    option.textStyle = { fontFamily: "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif" };
    return option;
  }

  // A click on a bar, a point or a slice opens what it stands for: a count's rows, or a unit's own dashboard.
  function linkOf(chart, params) {
    if (screen) {
      return null;
    }
    if (chart.kind === "ranking") {
      return chart.category_links[params.dataIndex];
    }
    var series = chart.series[chart.kind === "pie" ? 0 : params.seriesIndex];
    return series && series.links ? series.links[params.dataIndex] : null;
  }

  function draw(chart) {
    var element = document.querySelector('[data-chart="' + chart.id + '"]');
    if (!element) {
      return;
    }
    element.hidden = false;
    if (chart.kind === "ranking") {
      element.style.height = Math.max(240, 44 * chart.categories.length + 72) + "px";
    }
    var instance = charts[chart.id];
    if (!instance) {
      instance = window.echarts.init(element, screen ? "dark" : null, { renderer: "canvas" });
      instance.on("click", function (params) {
        var link = linkOf(charts[chart.id].chart, params);
        if (link) {
          window.location.assign(link);
        }
      });
      charts[chart.id] = { instance: instance, chart: chart };
    } else {
      instance = instance.instance;
      charts[chart.id].chart = chart;
      if (chart.kind === "ranking") {
        instance.resize();
      }
    }
    instance.setOption(optionOf(chart), { notMerge: false, lazyUpdate: false });
  }

  // A chart's table, written again from fresh data (the display screen has no links in it).
  function fillTable(chart) {
    var table = document.querySelector('table[data-table="' + chart.id + '"]');
    if (!table) {
      return;
    }
    var body = document.createElement("tbody");
    chart.categories.forEach(function (category, i) {
      var row = document.createElement("tr");
      var head = document.createElement("th");
      head.scope = "row";
      head.textContent = category;
      row.appendChild(head);
      chart.series.forEach(function (s) {
        var cell = document.createElement("td");
        cell.textContent = s.texts[i];
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    table.replaceChild(body, table.tBodies[0]);
  }

  // Every place a figure is shown: a count such as 评价数 stands under several tiles.
  function each(selector, action) {
    var found = document.querySelectorAll(selector);
    for (var i = 0; i < found.length; i++) {
      action(found[i]);
    }
  }

  function fillTiles(tiles) {
    tiles.forEach(function (tile) {
      each('[data-figure="' + tile.name + '"]', function (value) { value.textContent = tile.text; });
      each('[data-note="' + tile.name + '"]', function (note) {
        note.textContent = tile.note;
        note.hidden = !tile.note;
      });
      tile.parts.forEach(function (part) {
        each('[data-part="' + part[0] + '"]', function (shown) { shown.textContent = part[1]; });
      });
    });
  }

  document.documentElement.classList.add("js-charts");
  data.charts.forEach(draw);
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      charts[id].instance.resize();
    });
  });

  if (!screen) {
    // The charts are drawn: their tables fold away (one click opens them), and a definition opens on hover too.
    var folds = document.querySelectorAll("details.chart-data");
    for (var i = 0; i < folds.length; i++) {
      folds[i].open = false;
    }
    var definitions = document.querySelectorAll("details.definition");
    for (var j = 0; j < definitions.length; j++) {
      definitions[j].addEventListener("mouseenter", function () { this.open = true; });
      definitions[j].addEventListener("mouseleave", function () { this.open = false; });
    }
    // Typing a date means a range of one's own.
    var period = document.getElementById("f-period");
    ["f-from", "f-to"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input && period) {
        var ranged = function () { period.value = "range"; };
        input.addEventListener("input", ranged);
        input.addEventListener("change", ranged);
      }
    });
    return;
  }

  var status = document.getElementById("screen-status");
  var asOf = document.getElementById("screen-as-of");
  var seconds = parseInt(source.getAttribute("data-refresh"), 10) || 60;
  var url = source.getAttribute("data-url");

  function failed(message) {
    status.textContent = message + "，显示的是上次更新的数据，" + seconds + " 秒后重试";
  }

  function refresh() {
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.redirected || !json) {
          failed("登录已过期或无权查看，请重新登录后刷新本页");
          return null;
        }
        return response.json().then(function (body) {
          if (!response.ok) {
            failed(body.message || "数据更新失败（" + response.status + "）");
            return null;
          }
          return body;
        });
      })
      .then(function (fresh) {
        if (!fresh) {
          return;
        }
        fillTiles(fresh.tiles);
        fresh.charts.forEach(function (chart) {
          draw(chart);
          fillTable(chart);
        });
        asOf.textContent = fresh.as_of;
        status.textContent = "";
      })
      .catch(function () {
        failed("无法连接服务器");
      });
  }

  window.setInterval(refresh, seconds * 1000);
  var full = document.getElementById("screen-fullscreen");
  if (full && document.fullscreenEnabled) {
    full.hidden = false;
    full.addEventListener("click", function () {
      document.documentElement.requestFullscreen();
    });
  }
})();
