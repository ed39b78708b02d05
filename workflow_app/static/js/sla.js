/* 时限监督 charts (/sla): drawn with the vendored ECharts from the JSON block #sla-data, which the
   server writes (CSP script-src 'self': no inline script). Chinese locale unless the page is in
   English. Every figure is also in the tables below the charts, so nothing depends on this file.
     departments: {labels, series: {on_time, late, overdue, due_soon, running}}  stacked bars
     steps:       {labels, average, max}                                         horizontal bars */
(function () {
  "use strict";

  function english() {
    return (document.documentElement.getAttribute("lang") || "").indexOf("en") === 0;
  }

  function t(zh, en) { return english() ? en : zh; }

  var SERIES = [
    ["on_time", "按期办结", "On time", "#52c41a"],
    ["late", "逾期办结", "Finished late", "#fa8c16"],
    ["overdue", "已逾期", "Overdue", "#f5222d"],
    ["due_soon", "即将到期", "Due soon", "#fadb14"],
    ["running", "办理中", "In progress", "#1677ff"]
  ];

  function departments(data) {
    return {
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}},
      legend: {top: 0},
      grid: {left: 8, right: 16, bottom: 8, top: 36, containLabel: true},
      xAxis: {type: "category", data: data.labels, axisLabel: {interval: 0, rotate: data.labels.length > 5 ? 30 : 0}},
      yAxis: {type: "value", minInterval: 1, name: t("任务数", "Tasks")},
      series: SERIES.map(function (s) {
        return {name: t(s[1], s[2]), type: "bar", stack: "tasks", data: data.series[s[0]] || [],
                itemStyle: {color: s[3]}, emphasis: {focus: "series"}};
      })
    };
  }

  function steps(data) {
    return {
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}},
      legend: {top: 0},
      grid: {left: 8, right: 24, bottom: 8, top: 36, containLabel: true},
      xAxis: {type: "value", name: t("工作日", "Working days")},
      yAxis: {type: "category", data: data.labels, inverse: true},
      series: [
        {name: t("平均用时", "Average"), type: "bar", data: data.average, itemStyle: {color: "#1677ff"}},
        {name: t("最长用时", "Longest"), type: "bar", data: data.max, itemStyle: {color: "#bfbfbf"}}
      ]
    };
  }

  function draw() {
    var block = document.getElementById("sla-data");
    if (!block || !window.echarts) { return; }
    var data = JSON.parse(block.textContent);
    var builders = {departments: departments, steps: steps};
    var charts = [];
    document.querySelectorAll("[data-sla-chart]").forEach(function (el) {
      var name = el.getAttribute("data-sla-chart");
      var part = data[name];
      if (!part || !part.labels.length) {
        el.hidden = true;
        return;
      }
      if (name === "steps") { el.style.height = Math.max(240, 36 * part.labels.length + 60) + "px"; }
      var chart = window.echarts.init(el, null, {locale: english() ? "EN" : "ZH"});
      chart.setOption(builders[name](part));
      charts.push(chart);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
