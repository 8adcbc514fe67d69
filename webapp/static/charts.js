/* Draws the pages' charts with the vendored Chart.js from JSON embedded in the page.
 * A <canvas data-chart="KIND" data-source="ID"> reads <script type="application/json" id="ID">;
 * clicking a point opens the build it stands for (the data's "links"). */
(function () {
  "use strict";

  var COLOURS = { SUCCESS: "#1a7f37", FAILED: "#f0a202", ERROR: "#cf222e", SKIPPED: "#6e7781", null: "#adb5bd" };

  // the tooltip's first line names the build, its branch and date; the value lines follow
  function tooltipTitle(data) {
    return function (items) {
      if (!items.length) { return ""; }
      var index = items[0].dataIndex;
      var parts = ["Build " + data.labels[index]];
      if (data.branches) { parts.push(data.branches[index]); }
      if (data.dates) { parts.push(data.dates[index]); }
      return parts.join(" · ");
    };
  }

  function baseOptions(data, yTitle, unit) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: {
          title: tooltipTitle(data),
          label: function (item) {
            var value = item.parsed.y;
            var shown = unit === "%" ? value.toFixed(1) + " %" : unit === "s" ? formatSeconds(value) : value;
            return " " + item.dataset.label + ": " + shown;
          }
        } }
      },
      scales: {
        x: { ticks: { autoSkip: true, maxRotation: 0 }, title: { display: true, text: "build" } },
        y: { beginAtZero: true, title: { display: Boolean(yTitle), text: yTitle } }
      },
      onClick: function (event, elements) {
        if (elements.length && data.links && data.links[elements[0].index]) {
          window.location.href = data.links[elements[0].index];
        }
      },
      onHover: function (event, elements) {
        event.native.target.style.cursor = elements.length ? "pointer" : "default";
      }
    };
  }

  function formatSeconds(value) {
    if (value === null || value === undefined) { return "—"; }
    if (value < 1) { return Math.round(value * 1000) + " ms"; }
    if (value < 60) { return value.toFixed(1) + " s"; }
    return Math.floor(value / 60) + " m " + String(Math.round(value % 60)).padStart(2, "0") + " s";
  }

  // the pass-rate axis starts at a round floor: 80 % unless the data go lower, then 10 points below
  // the lowest value (down to 0), so 97 % against 99 % neither fills the chart nor vanishes
  function passRateFloor(values) {
    var known = values.filter(function (v) { return v !== null; });
    var lowest = known.length ? Math.min.apply(null, known) : 100;
    return lowest >= 85 ? 80 : Math.max(0, Math.floor((lowest - 10) / 10) * 10);
  }

  var KINDS = {
    "pass-rate": function (data) {
      var options = baseOptions(data, "pass rate (%)", "%");
      options.scales.y.beginAtZero = false;
      options.scales.y.min = passRateFloor(data.pass_rate);
      options.scales.y.max = 100;
      return {
        type: "line",
        data: { labels: data.labels, datasets: [{
          label: "pass rate", data: data.pass_rate, borderColor: COLOURS.SUCCESS,
          backgroundColor: "rgba(26,127,55,0.12)", fill: true, tension: 0.2, pointRadius: 2.5, spanGaps: true
        }] },
        options: options
      };
    },
    "duration": function (data) {
      return {
        type: "line",
        data: { labels: data.labels, datasets: [{
          label: "duration", data: data.duration, borderColor: "#0a58ca",
          backgroundColor: "rgba(10,88,202,0.10)", fill: true, tension: 0.2, pointRadius: 2.5, spanGaps: true
        }] },
        options: baseOptions(data, "duration (s)", "s")
      };
    },
    "status-counts": function (data) {
      var options = baseOptions(data, "cases", "");
      options.scales.x.stacked = true;
      options.scales.y.stacked = true;
      options.plugins.legend = { display: true, position: "bottom", labels: { boxWidth: 10 } };
      function series(label, values, colour) {
        return { label: label, data: values, backgroundColor: colour, borderWidth: 0 };
      }
      return {
        type: "bar",
        data: { labels: data.labels, datasets: [
          series("passed", data.passed, COLOURS.SUCCESS),
          series("failed", data.failed, COLOURS.FAILED),
          series("errors", data.errored, COLOURS.ERROR),
          series("skipped", data.skipped, COLOURS.SKIPPED)
        ] },
        options: options
      };
    },
    "case-duration": function (data) {
      return {
        type: "bar",
        data: { labels: data.labels, datasets: [{
          label: "duration", data: data.duration,
          backgroundColor: data.status.map(function (status) { return COLOURS[status] || COLOURS.null; })
        }] },
        options: baseOptions(data, "duration (s)", "s")
      };
    }
  };

  function draw() {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.source);
      var make = KINDS[canvas.dataset.chart];
      if (!source || !make) { return; }
      new Chart(canvas, make(JSON.parse(source.textContent)));
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
