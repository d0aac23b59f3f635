/* Form timings for SmartTickets' bot detection (behaviour log v1, form_submit).
   Counts only: no keys, no text, no coordinates leave the browser. */
(function () {
  "use strict";
  function watch(form) {
    var field = form.querySelector('input[name="risk_timings"]');
    if (!field) { return; }
    var counts = { keystrokes: 0, pastes: 0, pointer_moves: 0, focus_changes: 0 };
    var started = null;
    function start() { if (started === null) { started = performance.now(); } }
    form.addEventListener("keydown", function () { start(); counts.keystrokes += 1; }, true);
    form.addEventListener("paste", function () { start(); counts.pastes += 1; }, true);
    form.addEventListener("focusin", function () { start(); counts.focus_changes += 1; }, true);
    form.addEventListener("pointerdown", start, true);
    // Pointer moves anywhere on the page count: people move the mouse towards a form.
    document.addEventListener("pointermove", function () { counts.pointer_moves += 1; },
                              { passive: true });
    form.addEventListener("submit", function () {
      var begun = started === null ? loaded : started;
      field.value = JSON.stringify({
        fill_ms: Math.max(0, Math.round(performance.now() - begun)),
        keystrokes: counts.keystrokes, pastes: counts.pastes,
        pointer_moves: counts.pointer_moves, focus_changes: counts.focus_changes
      });
    });
  }
  var loaded = performance.now();
  function init() {
    var forms = document.querySelectorAll("form");
    for (var i = 0; i < forms.length; i += 1) {
      if (forms[i].querySelector('input[name="risk_form"]')) { watch(forms[i]); }
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
