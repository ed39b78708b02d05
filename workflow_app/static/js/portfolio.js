/* 园区 charts: every element with data-chart="ID" is drawn from the JSON block
   <script type="application/json" id="ID"> with the vendored ECharts (Chinese locale unless the
   page is in English). The server writes the figures; this file only lays them out:
     {kind: "pie",  unit, items: [{name, value, percent}]}
     {kind: "bar",  unit, categories, series: [{name, type: bar|line, values}], horizontal?, max?,
                    integer?, colours? (one per category when there is one series)}
     {kind: "line", unit, categories, axes: [{name, max?}], series: [{name, type, values, axis?}]}
   Each chart's figures are also printed as text on the page, so nothing depends on this file. */
(function () {
  "use strict";

  var PALETTE = ["#1677ff", "#36cfc9", "#73d13d", "#ffa940", "#9254de", "#f759ab", "#bfbfbf", "#597ef7", "#ffc53d"];
  var TEXT = "#1f2329";
  var MUTED = "#646a73";

  function english() {
    return (document.documentElement.getAttribute("lang") || "").indexOf("en") === 0;
  }

  function escape(text) {
    return window.echarts.format.encodeHTML(String(text));
  }

  function number(value, integer) {
    if (value === null || value === undefined) { return "—"; }
    return Number(value).toLocaleString(english() ? "en-US" : "zh-CN",
      {maximumFractionDigits: integer ? 0 : 2});
  }

  function withUnit(unit, integer) {
    return function (value) {
      if (value === null || value === undefined) { return "—"; }
      return unit === "%" ? number(value) + "%" : number(value, integer) + (unit ? " " + unit : "");
    };
  }

  function pie(spec) {
    return {
      color: PALETTE,
      tooltip: {
        trigger: "item",
        formatter: function (p) {  // names come from the data: escaped, the tooltip is HTML
          return p.marker + escape(p.name) + "<br>" + number(p.value) + " " + escape(spec.unit) +
            "（" + p.data.percent + "%）";
        }
      },
      series: [{  // each slice is labelled with its name and share: no legend needed
        type: "pie", radius: ["36%", "60%"], center: ["50%", "50%"], minAngle: 3,
        itemStyle: {borderColor: "#fff", borderWidth: 2},
        label: {formatter: function (p) { return p.name + "\n" + p.data.percent + "%"; },
                color: TEXT, fontSize: 12, lineHeight: 16, width: 84, overflow: "break",
                alignTo: "edge", edgeDistance: 4, minMargin: 4},  // long builder names stay inside
        labelLine: {length: 10, length2: 0, maxSurfaceAngle: 80},
        data: spec.items.map(function (i) { return {name: i.name, value: i.value, percent: i.percent}; })
      }]
    };
  }

  function bar(spec) {
    var horizontal = !!spec.horizontal;
    var single = spec.series.length === 1;
    var format = withUnit(spec.unit, spec.integer);
    var category = {type: "category", data: spec.categories, inverse: horizontal,
                    axisLabel: {color: TEXT, interval: 0}, axisTick: {show: false}};
    var value = {type: "value", max: spec.max, minInterval: spec.integer ? 1 : 0,
                 axisLabel: {color: MUTED, formatter: spec.unit === "%" ? "{value}%" : "{value}"},
                 splitLine: {lineStyle: {color: "#f0f1f2"}}};
    return {
      color: PALETTE,
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, valueFormatter: format},
      legend: single ? {show: false} : {bottom: 0, textStyle: {color: MUTED}},
      grid: {left: 8, right: horizontal ? 48 : 16, top: 24, bottom: single ? 8 : 40, containLabel: true},
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: spec.series.map(function (s) {
        var data = s.values;
        if (single && spec.colours) {
          data = s.values.map(function (v, i) {
            return {value: v, itemStyle: {color: spec.colours[i % spec.colours.length]}};
          });
        }
        var out = {name: s.name, type: s.type, data: data, barMaxWidth: horizontal ? 22 : (single ? 48 : 28),
                   label: {show: single || s.type === "line", position: horizontal ? "right" : "top",
                           color: TEXT, fontSize: 11, formatter: function (p) { return format(p.value); }}};
        if (s.type === "line") {
          out.z = 5;
          out.symbolSize = 7;
          out.itemStyle = {color: "#f5222d"};
          out.lineStyle = {type: "dashed", width: 2};
          out.label.color = "#cf1322";
        }
        return out;
      })
    };
  }

  function line(spec) {
    return {
      color: ["#1677ff", "#fa8c16", "#73d13d"],
      tooltip: {trigger: "axis", valueFormatter: withUnit(spec.unit)},
      legend: {bottom: 0, textStyle: {color: MUTED}},
      grid: {left: 8, right: 16, top: 32, bottom: 36, containLabel: true},
      xAxis: {type: "category", data: spec.categories, axisLabel: {color: TEXT}},
      yAxis: spec.axes.map(function (a, i) {
        return {type: "value", name: a.name, max: a.max, nameTextStyle: {color: MUTED},
                axisLabel: {color: MUTED}, splitLine: {show: i === 0, lineStyle: {color: "#f0f1f2"}}};
      }),
      series: spec.series.map(function (s) {
        return {name: s.name, type: s.type, yAxisIndex: s.axis || 0, data: s.values,
                barMaxWidth: 28, symbolSize: 6, z: s.type === "line" ? 3 : 1};
      })
    };
  }

  var BUILD = {pie: pie, bar: bar, line: line};

  function draw() {
    if (!window.echarts) { return; }
    var charts = [];
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (el) {
      var block = document.getElementById(el.getAttribute("data-chart"));
      var spec;
      try { spec = JSON.parse(block.textContent); } catch (e) { return; }
      if (!spec || !BUILD[spec.kind]) { return; }
      if (spec.horizontal) {  // one row per category: as tall as the rows need
        el.style.height = Math.max(140, 64 + 44 * spec.categories.length) + "px";
      }
      var chart = window.echarts.init(el, null, {locale: english() ? "EN" : "ZH"});
      var option = BUILD[spec.kind](spec);
      option.animation = false;  // figures for reading, not a show
      option.textStyle = {fontFamily: getComputedStyle(document.body).fontFamily};
      chart.setOption(option);
      charts.push(chart);
    });
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 120);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
