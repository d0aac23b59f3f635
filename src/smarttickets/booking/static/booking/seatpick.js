// Seat picking on the SVG map: click, or Tab to a seat and press Space/Enter. Without this
// script the "best seats" forms still work.
(function () {
  "use strict";
  var form = document.getElementById("seat-pick-form");
  var map = document.querySelector(".booking-map svg");
  if (!form || !map) { return; }
  form.hidden = false;
  var input = document.getElementById("seat-ids");
  var submit = document.getElementById("seat-pick-submit");
  var summary = document.getElementById("seat-pick-summary");
  var max = parseInt(form.getAttribute("data-max"), 10) || 4;
  var chosen = [];

  function label(seat) {
    var t = seat.querySelector("title");
    return t ? t.textContent.split(" — ")[0] : seat.getAttribute("data-seat-id");
  }
  function render(note) {
    input.value = chosen.map(function (s) { return s.getAttribute("data-seat-id"); }).join(",");
    submit.disabled = chosen.length === 0;
    summary.textContent = note || (chosen.length
      ? summary.getAttribute("data-some").replace("{seats}", chosen.map(label).join("; "))
      : summary.getAttribute("data-none"));
  }
  function toggle(seat) {
    if (!seat.hasAttribute("tabindex")) { return; }
    var i = chosen.indexOf(seat);
    if (i >= 0) {
      chosen.splice(i, 1);
      seat.classList.remove("selected");
      seat.setAttribute("aria-checked", "false");
    } else {
      if (chosen.length >= max) { render(summary.getAttribute("data-max-text")); return; }
      chosen.push(seat);
      seat.classList.add("selected");
      seat.setAttribute("aria-checked", "true");
    }
    render();
  }
  map.addEventListener("click", function (e) {
    var seat = e.target.closest("[data-seat-id]");
    if (seat) { toggle(seat); }
  });
  map.addEventListener("keydown", function (e) {
    var seat = e.target.closest("[data-seat-id]");
    if (seat && (e.key === " " || e.key === "Enter")) { e.preventDefault(); toggle(seat); }
  });
  document.getElementById("seat-pick-clear").addEventListener("click", function () {
    chosen.slice().forEach(toggle);
  });
  render();
})();
