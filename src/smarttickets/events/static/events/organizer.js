// Organizer pages: show only the date fields of the chosen sales mode, and preview a price
// zone's colour on the seat map as sections are ticked. The forms work without this script.
(function () {
  "use strict";
  var modeForm = document.querySelector("[data-sale-mode-form]");
  if (modeForm) {
    var sync = function () {
      var checked = modeForm.querySelector("input[name=sale_mode]:checked");
      var mode = checked ? checked.value : "first_come";
      modeForm.querySelectorAll(".mode-fields").forEach(function (fs) {
        fs.hidden = fs.getAttribute("data-mode") !== mode;
      });
    };
    modeForm.addEventListener("change", function (e) {
      if (e.target.name === "sale_mode") { sync(); }
    });
    sync();
  }

  var zoneForm = document.querySelector("[data-zone-form]");
  var preview = document.querySelector("[data-zone-preview]");
  if (zoneForm && preview) {
    var colour = zoneForm.querySelector("input[name=color]");
    var original = {};
    preview.querySelectorAll("g.section").forEach(function (g) {
      original[g.getAttribute("data-section-id")] = g.getAttribute("fill");
    });
    preview.querySelectorAll("rect[data-ga-id]").forEach(function (r) {
      original["ga" + r.getAttribute("data-ga-id")] = r.getAttribute("fill");
    });
    // Sections of the zone being edited start ticked; unticking them must show them as free.
    zoneForm.querySelectorAll("input[name=sections]:checked").forEach(function (box) {
      original[box.value] = "#b8bcc8";
    });
    zoneForm.querySelectorAll("input[name=ga_areas]:checked").forEach(function (box) {
      original["ga" + box.value] = "#b8bcc8";
    });
    var paint = function () {
      zoneForm.querySelectorAll("input[name=sections]").forEach(function (box) {
        var g = preview.querySelector('g.section[data-section-id="' + box.value + '"]');
        if (!g) { return; }
        g.setAttribute("fill", box.checked ? colour.value : original[box.value]);
        g.querySelectorAll(".seat").forEach(function (c) { c.classList.toggle("nozone", !box.checked && original[box.value] === "#b8bcc8"); });
      });
      zoneForm.querySelectorAll("input[name=ga_areas]").forEach(function (box) {
        var r = preview.querySelector('rect[data-ga-id="' + box.value + '"]');
        if (r) { r.setAttribute("fill", box.checked ? colour.value : original["ga" + box.value]); }
      });
    };
    zoneForm.addEventListener("change", paint);
    colour.addEventListener("input", paint);
    zoneForm.querySelectorAll(".choice-tools").forEach(function (el) { el.hidden = false; });
    zoneForm.querySelectorAll("[data-select-all]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        zoneForm.querySelectorAll("input[name=" + btn.getAttribute("data-select-all") + "]:not(:disabled)")
          .forEach(function (box) { box.checked = true; });
        paint();
      });
    });
    zoneForm.querySelectorAll("[data-select-none]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        zoneForm.querySelectorAll("input[name=" + btn.getAttribute("data-select-none") + "]")
          .forEach(function (box) { if (!box.disabled) { box.checked = false; } });
        paint();
      });
    });
    paint();
  }
})();
