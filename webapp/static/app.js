/* Greenbar page helpers: local times, and charts drawn from JSON data in the page. */
(function () {
  "use strict";

  // show each <time datetime="…Z"> in the viewer's zone; the UTC value stays in the title
  function localiseTimes(root) {
    var parts = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    var thisYear = new Intl.DateTimeFormat(undefined, parts);
    var otherYear = new Intl.DateTimeFormat(undefined, Object.assign({ year: "numeric" }, parts));
    var currentYear = new Date().getFullYear();
    root.querySelectorAll("time[datetime]").forEach(function (element) {
      var value = new Date(element.getAttribute("datetime"));
      if (isNaN(value.getTime())) { return; }
      element.title = element.getAttribute("datetime").replace("T", " ").replace("Z", " UTC");
      element.textContent = (value.getFullYear() === currentYear ? thisYear : otherYear).format(value);
    });
  }

  // panels that need heavier queries arrive after the page: <section data-fragment="URL">
  function loadFragments(root) {
    root.querySelectorAll("[data-fragment]").forEach(function (section) {
      fetch(section.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok || response.redirected) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          section.innerHTML = html;
          section.dataset.loaded = "true";
          localiseTimes(section);
        })
        .catch(function () {
          var status = section.querySelector(".gb-fragment-status");
          var spinner = section.querySelector(".spinner-border");
          if (spinner) { spinner.remove(); }
          if (status) { status.insertAdjacentText("afterbegin", "Could not load this panel. "); }
          section.dataset.loaded = "failed";
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    loadFragments(document);
  });
  window.Greenbar = { localiseTimes: localiseTimes };
})();

/* The comparison picker: choosing a branch narrows the builds offered (the server filters too, without script). */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var filter = event.target;
    if (!filter.dataset || !filter.dataset.filters) { return; }
    var target = document.getElementById(filter.dataset.filters);
    if (!target) { return; }
    var firstShown = null;
    Array.prototype.forEach.call(target.options, function (option) {
      var shown = !filter.value || option.dataset.branch === filter.value;
      option.hidden = !shown;
      option.disabled = !shown;
      if (shown && firstShown === null) { firstShown = option; }
    });
    if (target.selectedOptions.length && target.selectedOptions[0].disabled && firstShown) {
      firstShown.selected = true;
    }
  });
})();
