// Wallet: a non-extractable P-256 device key in IndexedDB signs a fresh ticket code every
// 15 seconds (docs/ticket-codes.md, sections 2 and 3). Works offline once loaded.
(function () {
  "use strict";
  var STEP_SECONDS = 15;
  var root = document.getElementById("wallet-app");
  var dataEl = document.getElementById("wallet-data");
  if (!root || !dataEl || !window.crypto || !crypto.subtle) {
    var warn = document.getElementById("wallet-unsupported");
    if (warn && root) { warn.hidden = false; }
    return;
  }
  var cfg = root.dataset;
  var text = JSON.parse(document.getElementById("wallet-text").textContent);
  var data = JSON.parse(dataEl.textContent);
  var userKey = cfg.userKey;
  var offsetKey = "st-clock-offset";
  var dataKey = "st-wallet-" + userKey;
  var device = null;  // {id, privateKey, publicKeyHex}
  var prepared = {};  // ticket id → {cred, sig, credHash}
  var lastStep = null;
  var clockOffset = Number(localStorage.getItem(offsetKey) || 0);

  // --- bytes ---------------------------------------------------------------------------------
  function b64ToBytes(s) {
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function bytesToB64(bytes) {
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin);
  }
  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
  }
  function concat(parts) {
    var n = parts.reduce(function (a, p) { return a + p.length; }, 0), out = new Uint8Array(n), at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function u32(n) { return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]); }

  // The rotating code: "ST1:" + base45(credential ‖ issuer sig ‖ step ‖ device sig).
  function encodeCode(cred, issuerSig, step, deviceSig) {
    return "ST1:" + window.base45js.encode(concat([cred, issuerSig, u32(step), deviceSig]));
  }

  // --- IndexedDB: the CryptoKey object is stored as is; its private half cannot be exported --
  function db() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open("smarttickets-wallet", 1);
      req.onupgradeneeded = function () { req.result.createObjectStore("keys", {keyPath: "id"}); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function idb(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction("keys", mode), req = fn(tx.objectStore("keys"));
        tx.oncomplete = function () { resolve(req && req.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function ensureDeviceKey() {
    return idb("readonly", function (s) { return s.get(userKey); }).then(function (rec) {
      if (rec) { return rec; }
      return crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false, ["sign"])
        .then(function (pair) {
          return crypto.subtle.exportKey("raw", pair.publicKey).then(function (rawBuf) {
            var raw = new Uint8Array(rawBuf);
            var compressed = concat([new Uint8Array([0x02 | (raw[64] & 1)]), raw.slice(1, 33)]);
            rec = {id: userKey, privateKey: pair.privateKey, publicKeyHex: hex(compressed),
                   publicKeyRaw: bytesToB64(raw), createdAt: Date.now()};
            return idb("readwrite", function (s) { return s.put(rec); }).then(function () { return rec; });
          });
        });
    });
  }

  // --- server --------------------------------------------------------------------------------
  function csrf() {
    var el = root.querySelector("input[name=csrfmiddlewaretoken]");
    return el ? el.value : "";
  }
  function fetchWallet() {
    var t0 = Date.now();
    return fetch(cfg.credentialsUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json().then(function (fresh) {
          // A response from the service worker's cache carries an old server time.
          if (r.headers.get("X-From-Cache") !== "1") {
            var t1 = Date.now();
            clockOffset = fresh.server_time_ms - (t0 + t1) / 2;
            localStorage.setItem(offsetKey, String(clockOffset));
          }
          data = fresh;
          try { localStorage.setItem(dataKey, JSON.stringify(fresh)); } catch (e) { /* full */ }
          return fresh;
        });
      });
  }
  function register(password) {
    var body = {public_key: device.publicKeyRaw, label: deviceLabel()};
    if (password) { body.password = password; }
    return fetch(cfg.registerUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (!r.ok) { var err = new Error(answer.message || "error"); err.code = answer.code; throw err; }
        return answer;
      });
    });
  }
  function deviceLabel() {
    var ua = navigator.userAgent;
    var m = /(iPhone|iPad|Android|Windows|Macintosh|Linux)/.exec(ua);
    return (m ? m[1] : "Browser") + " · " + new Date().toISOString().slice(0, 10);
  }

  // --- drawing -------------------------------------------------------------------------------
  function setStatus(msg, kind) {
    var el = document.getElementById("wallet-status");
    el.textContent = msg;
    el.className = "alert alert-" + (kind || "info");
    el.hidden = !msg;
  }
  function prepare() {
    prepared = {};
    var jobs = data.tickets.filter(function (t) { return t.credential; }).map(function (t) {
      var cred = b64ToBytes(t.credential.data);
      return crypto.subtle.digest("SHA-256", cred).then(function (h) {
        prepared[t.id] = {cred: cred, sig: b64ToBytes(t.credential.signature), credHash: new Uint8Array(h)};
      });
    });
    return Promise.all(jobs);
  }
  function nowMs() { return Date.now() + clockOffset; }
  function drawStep(step) {
    var cards = root.querySelectorAll("[data-ticket-id]");
    return Promise.all(Array.prototype.map.call(cards, function (card) {
      var p = prepared[card.dataset.ticketId];
      var box = card.querySelector(".wallet-qr");
      if (!box) { return null; }
      if (!p) {
        box.innerHTML = "";
        box.dataset.code = "";
        card.querySelector(".wallet-note").textContent = text.no_credential;
        return null;
      }
      var message = concat([p.credHash, u32(step)]);
      return crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, device.privateKey, message)
        .then(function (sigBuf) {
          if (step !== lastStep) { return; }  // a newer step started while signing
          var code = encodeCode(p.cred, p.sig, step, new Uint8Array(sigBuf));
          var qr = window.qrcode(0, "M");
          qr.addData(code, "Alphanumeric");
          qr.make();
          box.innerHTML = qr.createSvgTag({cellSize: 4, margin: 16, scalable: true, title: text.qr_title});
          box.dataset.code = code;
          box.dataset.step = String(step);
          var textEl = card.querySelector(".wallet-code-text");
          if (textEl) { textEl.value = code; }
          card.querySelector(".wallet-note").textContent = "";
        });
    }));
  }
  function tick() {
    var ms = nowMs();
    var step = Math.floor(ms / 1000 / STEP_SECONDS);
    var into = (ms / 1000) % STEP_SECONDS;
    var t = new Date(ms);
    var clock = t.toLocaleTimeString(document.documentElement.lang || undefined, {hour12: false});
    root.querySelectorAll(".wallet-live").forEach(function (el) {
      el.querySelector(".wallet-clock").textContent = clock;
      el.querySelector(".wallet-progress-bar").style.width = (100 * (1 - into / STEP_SECONDS)).toFixed(1) + "%";
      el.querySelector(".wallet-left").textContent = String(Math.ceil(STEP_SECONDS - into));
    });
    if (step !== lastStep && device) {
      lastStep = step;
      drawStep(step);
    }
  }

  // --- moving from another device ------------------------------------------------------------
  function showMove(show) {
    document.getElementById("wallet-move").hidden = !show;
  }
  document.getElementById("wallet-move-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var pw = document.getElementById("move-password");
    var err = document.getElementById("move-error");
    err.textContent = "";
    register(pw.value).then(function () {
      pw.value = "";
      showMove(false);
      setStatus(text.moved, "success");
      return fetchWallet().then(prepare).then(function () { lastStep = null; tick(); });
    }).catch(function (ex) {
      err.textContent = ex.message || text.failed;
      pw.focus();
    });
  });

  // --- start ---------------------------------------------------------------------------------
  function start() {
    return ensureDeviceKey().then(function (rec) {
      device = rec;
      return fetchWallet().catch(function () {
        var saved = localStorage.getItem(dataKey);
        if (saved) { data = JSON.parse(saved); }
        setStatus(text.offline, "warning");
      });
    }).then(function () {
      if (!data.device && navigator.onLine !== false) {
        return register().then(fetchWallet);
      }
      if (data.device && data.device.public_key !== device.publicKeyHex) {
        showMove(true);
      }
    }).then(prepare).then(function () {
      if (data.device && data.device.public_key === device.publicKeyHex) {
        root.classList.add("wallet-ready");
      }
      tick();
      setInterval(tick, 250);
    }).catch(function (ex) {
      setStatus(text.failed + " " + (ex && ex.message ? ex.message : ""), "error");
    });
  }

  window.addEventListener("online", function () { setStatus("", "info"); fetchWallet().then(prepare).catch(function () {}); });
  window.addEventListener("offline", function () { setStatus(text.offline, "warning"); });

  // Wallet-pass export (the weaker TOTP tier), when the event offers it.
  root.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-wallet-pass]");
    if (!btn) { return; }
    var out = btn.parentElement.querySelector(".wallet-pass-out");
    fetch(btn.dataset.walletPass, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf()}})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) { throw new Error(j.message); } return j; }); })
      .then(function (j) {
        out.hidden = false;
        out.querySelector(".pass-pattern").textContent = j.barcode_pattern;
        out.querySelector(".pass-secret").textContent = j.secret;
        out.querySelector(".pass-warning").textContent = j.warning;
      }).catch(function (ex) { out.hidden = false; out.querySelector(".pass-warning").textContent = ex.message; });
  });

  if ("serviceWorker" in navigator && cfg.swUrl) {
    navigator.serviceWorker.register(cfg.swUrl, {scope: cfg.scope}).catch(function () {});
  }

  // Used by the browser tests to compare with Python's make_code byte for byte.
  window.SmartTicketsWallet = {
    encodeCode: function (credB64, sigB64, step, devSigB64) {
      return encodeCode(b64ToBytes(credB64), b64ToBytes(sigB64), step, b64ToBytes(devSigB64));
    },
    publicKeyHex: function () { return device && device.publicKeyHex; },
    clockOffset: function () { return clockOffset; }
  };
  start();
})();
