/* Draws the pages' charts with the vendored Chart.js from JSON embedded in the page.
 * A <canvas data-chart="KIND" data-source="ID"> reads <script type="application/json" id="ID">;
 * clicking a point opens the build it stands for (the data's "links"). */
(function () {
  "use strict";

  var COLOURS = { SUCCESS: "#1a7f37", FAILED: "#f0a202", ERROR: "#cf222e", SKIPPED: "#6e7781", null: "#adb5bd" };

  function baseOptions(data, yTitle) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } },
      scales: {
        x: { ticks: { autoSkip: true, maxRotation: 0 } },
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

  var KINDS = {
    "pass-rate": function (data) {
      var options = baseOptions(data, "");
      // zoomed to the data (but never above 100) so a drop from 99 % to 97 % shows
      options.scales.y.beginAtZero = false;
      options.scales.y.max = 100;
      return {
        type: "line",
        data: { labels: data.labels, datasets: [{
          label: "pass rate %", data: data.pass_rate, borderColor: COLOURS.SUCCESS,
          backgroundColor: "rgba(26,127,55,0.12)", fill: true, tension: 0.2, pointRadius: 2.5, spanGaps: true
        }] },
        options: options
      };
    },
    "duration": function (data) {
      return {
        type: "line",
        data: { labels: data.labels, datasets: [{
          label: "seconds", data: data.duration, borderColor: "#0a58ca",
          backgroundColor: "rgba(10,88,202,0.10)", fill: true, tension: 0.2, pointRadius: 2.5, spanGaps: true
        }] },
        options: baseOptions(data, "")
      };
    },
    "status-counts": function (data) {
      var options = baseOptions(data, "");
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
          label: "seconds", data: data.duration,
          backgroundColor: data.status.map(function (status) { return COLOURS[status] || COLOURS.null; })
        }] },
        options: baseOptions(data, "")
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
