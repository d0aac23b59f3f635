/* Sandbox hosted page: group card digits as typed, add the expiry slash, fill test cards. */
(function () {
  "use strict";
  var number = document.getElementById("id_number");
  var expiry = document.getElementById("id_expiry");
  if (number) {
    number.addEventListener("input", function () {
      var digits = number.value.replace(/\D/g, "").slice(0, 19);
      number.value = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
    });
  }
  if (expiry) {
    expiry.addEventListener("input", function (e) {
      var digits = expiry.value.replace(/\D/g, "").slice(0, 4);
      if (e.inputType && e.inputType.indexOf("delete") === 0) { return; }
      expiry.value = digits.length > 2 ? digits.slice(0, 2) + " / " + digits.slice(2) : digits;
    });
  }
  document.querySelectorAll("[data-card]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!number) { return; }
      number.value = button.getAttribute("data-card");
      if (expiry && !expiry.value) {
        var next = new Date(); next.setFullYear(next.getFullYear() + 2);
        expiry.value = String(next.getMonth() + 1).padStart(2, "0") + " / " + String(next.getFullYear()).slice(2);
      }
      var cvc = document.getElementById("id_cvc");
      if (cvc && !cvc.value) { cvc.value = "123"; }
      number.focus();
    });
  });
})();
