/* Lottery pages: companion fields follow the ticket count; receipts are checked in the browser
   (RFC 9162 inclusion proof against the published entries root) and by the server. */
(function () {
  "use strict";

  function companions() {
    var form = document.getElementById("entry-form");
    if (!form) return;
    var qty = form.querySelector("[name=quantity]");
    var box = document.getElementById("companions");
    if (!qty || !box) return;
    function update() {
      var n = parseInt(qty.value, 10) || 1;
      var any = false;
      box.querySelectorAll("[data-companion]").forEach(function (input) {
        var show = parseInt(input.getAttribute("data-companion"), 10) < n;
        var field = input.closest(".field");
        if (field) field.hidden = !show;
        input.required = show;
        any = any || show;
      });
      box.hidden = !any;
    }
    qty.addEventListener("change", update);
    update();
  }

  function hex(bytes) {
    return Array.from(new Uint8Array(bytes)).map(function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function fromHex(text) {
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }

  function concat(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(size);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  async function verifyInclusion(receipt, rootHex) {
    var leaf = new TextEncoder().encode(receipt.leaf);
    var r = await sha256(concat([new Uint8Array([0]), leaf]));
    var fn = receipt.leaf_index, sn = receipt.tree_size - 1;
    if (fn < 0 || fn > sn) return false;
    for (var i = 0; i < receipt.proof.length; i++) {
      var p = fromHex(receipt.proof[i]);
      if (sn === 0) return false;
      if ((fn & 1) || fn === sn) {
        r = await sha256(concat([new Uint8Array([1]), p, r]));
        while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; }
      } else {
        r = await sha256(concat([new Uint8Array([1]), r, p]));
      }
      fn >>= 1; sn >>= 1;
    }
    return sn === 0 && hex(r) === rootHex;
  }

  function receipts() {
    var button = document.getElementById("check-receipt");
    var out = document.getElementById("receipt-result");
    var pre = document.getElementById("receipt-json");
    if (!button || !out || !pre) return;
    button.addEventListener("click", async function () {
      button.disabled = true;
      var receipt = JSON.parse(pre.textContent);
      try {
        if (!window.crypto || !crypto.subtle) throw new Error("no WebCrypto");
        var commitment = await (await fetch(button.dataset.commitmentUrl)).json();
        var ok = await verifyInclusion(receipt, commitment.entries_root);
        out.textContent = out.dataset[ok ? "ok" : "bad"];
        out.className = "lottery-check alert " + (ok ? "alert-success" : "alert-error");
      } catch (err) {
        var server = await (await fetch(button.dataset.checkUrl)).json();
        out.textContent = out.dataset.error + " " + out.dataset[server.included ? "serverOk" : "serverBad"];
        out.className = "lottery-check alert " + (server.included ? "alert-success" : "alert-error");
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    companions();
    receipts();
  });
})();
