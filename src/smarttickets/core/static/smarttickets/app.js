// Small progressive enhancements shared by every page. Pages work without it.
(function () {
  "use strict";
  // Countdown: <span data-countdown="ISO-8601" data-expired-text="...">.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("data-countdown"));
      var left = Math.max(0, Math.floor((end - Date.now()) / 1000));
      if (left === 0) {
        el.textContent = el.getAttribute("data-expired-text") || "0:00";
        el.classList.add("countdown-expired");
        return;
      }
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    });
  }
  if (document.querySelector("[data-countdown]")) { tick(); setInterval(tick, 1000); }
  // Confirm buttons: <button data-confirm="Are you sure?">.
  document.addEventListener("click", function (e) {
    var el = e.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) { e.preventDefault(); }
  });
})();
