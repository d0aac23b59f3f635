// Gate scanner: camera (jsQR) or pasted codes; online it asks the scan API, offline it
// verifies in the browser (WebCrypto Ed25519 + ECDSA P-256, docs/ticket-codes.md section 4)
// against the cached bundle, keeps an admission log in IndexedDB and uploads it later.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("scanner-config").textContent);
  var T = JSON.parse(document.getElementById("scanner-text").textContent);
  var STEP = 15;
  var bundleKey = "st-bundle-" + cfg.performance_id;
  var bundle = JSON.parse(localStorage.getItem(bundleKey) || "null");
  var offset = Number(localStorage.getItem("st-scanner-offset") || 0);
  var scannerId = localStorage.getItem("st-scanner-id");
  if (!scannerId) {
    scannerId = (cfg.scanner_prefix + "-" + hex(crypto.getRandomValues(new Uint8Array(3)))).slice(0, 64);
    localStorage.setItem("st-scanner-id", scannerId);
  }
  var resultEl = document.getElementById("scan-result");
  var netEl = document.getElementById("scanner-network");
  var pendingEl = document.getElementById("scanner-pending");
  var busy = false;

  function hex(bytes) { return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join(""); }
  function nonce() { return hex(crypto.getRandomValues(new Uint8Array(16))); }
  function csrf() { var el = document.querySelector("input[name=csrfmiddlewaretoken]"); return el ? el.value : ""; }
  function nowMs() { return Date.now() + offset; }

  // --- local admission log (IndexedDB) -------------------------------------------------------
  function db() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open("smarttickets-scanner", 1);
      req.onupgradeneeded = function () { req.result.createObjectStore("log", {keyPath: "nonce"}); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function store(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction("log", mode), req = fn(tx.objectStore("log"));
        tx.oncomplete = function () { resolve(req && req.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function allEntries() { return store("readonly", function (s) { return s.getAll(); }); }
  function refreshPending() {
    return allEntries().then(function (rows) {
      var n = rows.filter(function (r) { return r.event === cfg.event_id && !r.uploaded; }).length;
      pendingEl.textContent = T.pending.replace("%(n)s", n);
      return n;
    });
  }

  // --- bundle and upload ---------------------------------------------------------------------
  function setNetwork(online) {
    netEl.textContent = online ? T.online : T.offline;
    netEl.className = "badge " + (online ? "badge-success" : "badge-warning");
  }
  function loadBundle() {
    var t0 = Date.now();
    return fetch(cfg.bundle_url + "?performance=" + cfg.performance_id, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (b) {
        offset = b.server_time_ms - (t0 + Date.now()) / 2;
        localStorage.setItem("st-scanner-offset", String(offset));
        bundle = b;
        localStorage.setItem(bundleKey, JSON.stringify(b));
        document.getElementById("scanner-bundle-time").textContent = new Date().toLocaleTimeString();
        setNetwork(true);
      });
  }
  function upload() {
    return allEntries().then(function (rows) {
      var mine = rows.filter(function (r) { return r.event === cfg.event_id && !r.uploaded; });
      if (!mine.length) { return 0; }
      var doc = {format: "smarttickets.admissions/1", scanner_id: scannerId, event_id: cfg.event_id,
                 entries: mine.map(function (r) { return r.entry; })};
      return fetch(cfg.upload_url + "?gate=" + encodeURIComponent(cfg.gate), {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()}, body: JSON.stringify(doc)
      }).then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (answer) {
          return store("readwrite", function (s) {
            mine.forEach(function (r) { r.uploaded = true; s.put(r); });
          }).then(function () { return answer; });
        });
    }).then(function (answer) { refreshPending(); return answer; });
  }

  // --- offline verification ------------------------------------------------------------------
  var B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  function b45decode(s) {
    var out = [];
    for (var i = 0; i < s.length; i += 3) {
      var chunk = s.slice(i, i + 3), v = 0, mul = 1;
      if (chunk.length === 1) { throw new Error("malformed"); }
      for (var j = 0; j < chunk.length; j++) {
        var d = B45.indexOf(chunk[j]);
        if (d < 0) { throw new Error("malformed"); }
        v += d * mul; mul *= 45;
      }
      if (chunk.length === 3) { if (v > 65535) { throw new Error("malformed"); } out.push(v >> 8, v & 255); }
      else { if (v > 255) { throw new Error("malformed"); } out.push(v); }
    }
    return new Uint8Array(out);
  }
  function b64url(s) { s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) { s += "="; } var b = atob(s), o = new Uint8Array(b.length); for (var i = 0; i < b.length; i++) { o[i] = b.charCodeAt(i); } return o; }
  function u32(b, at) { return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3]; }
  function u16(b, at) { return (b[at] << 8) + b[at + 1]; }
  var utf8 = new TextDecoder("utf-8", {fatal: true});

  function parse(text) {
    text = text.replace(/[\r\n]+$/, "");
    if (text.indexOf("ST1:") !== 0) { throw new Error(/^ST\d+:/.test(text) ? "unsupported_version" : "malformed"); }
    var body = b45decode(text.slice(4));
    if (body.length && body[0] !== 1) { throw new Error("unsupported_version"); }
    if (body.length < 28) { throw new Error("truncated"); }
    var flags = body[1];
    if (flags & ~3) { throw new Error("malformed"); }
    var c = {kid: u16(body, 2), ticket: u32(body, 4), event: u32(body, 8), performance: u32(body, 12),
             serial: u16(body, 16), notBefore: u32(body, 18), notAfter: u32(body, 22),
             printed: !!(flags & 1), reentry: !!(flags & 2)};
    if (c.serial === 0 || c.notAfter <= c.notBefore) { throw new Error("malformed"); }
    var at = 26, g = body[at];
    if (g > 16) { throw new Error("malformed"); }
    if (body.length < at + 1 + g + 1) { throw new Error("truncated"); }
    c.gate = utf8.decode(body.slice(at + 1, at + 1 + g)); at += 1 + g;
    var h = body[at];
    if (h > 24) { throw new Error("malformed"); }
    if (body.length < at + 1 + h) { throw new Error("truncated"); }
    c.hint = utf8.decode(body.slice(at + 1, at + 1 + h)); at += 1 + h;
    if (!c.printed) {
      if (body.length < at + 33) { throw new Error("truncated"); }
      c.deviceKey = body.slice(at, at + 33); at += 33;
      if (c.deviceKey[0] !== 2 && c.deviceKey[0] !== 3) { throw new Error("malformed"); }
    }
    var need = 64 + (c.printed ? 0 : 68), rest = body.length - at;
    if (rest < need) { throw new Error("truncated"); }
    if (rest > need) { throw new Error("malformed"); }
    c.bytes = body.slice(0, at);
    c.issuerSig = body.slice(at, at + 64);
    if (!c.printed) { c.step = u32(body, at + 64); c.deviceSig = body.slice(at + 68, at + 132); }
    return c;
  }

  // P-256 point decompression (y² = x³ − 3x + b); WebCrypto imports only the uncompressed form.
  var P = BigInt("0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
  var B = BigInt("0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
  function modpow(b, e, m) { var r = BigInt(1); b %= m; while (e > 0) { if (e & BigInt(1)) { r = r * b % m; } b = b * b % m; e >>= BigInt(1); } return r; }
  function big(bytes) { return BigInt("0x" + hex(bytes)); }
  function decompress(key) {
    var x = big(key.slice(1)), y2 = (modpow(x, BigInt(3), P) - BigInt(3) * x + B) % P;
    if (y2 < 0) { y2 += P; }
    var y = modpow(y2, (P + BigInt(1)) / BigInt(4), P);
    if (y * y % P !== y2) { return null; }
    if (Number(y & BigInt(1)) !== (key[0] & 1)) { y = P - y; }
    var yHex = y.toString(16).padStart(64, "0"), out = new Uint8Array(65);
    out[0] = 4; out.set(key.slice(1), 1);
    for (var i = 0; i < 32; i++) { out[33 + i] = parseInt(yHex.substr(i * 2, 2), 16); }
    return out;
  }

  function refuse(reason, c) { return {ok: false, reason_code: reason, message: T.reasons[reason] || reason, cred: c}; }
  function presence(ticket) {
    return allEntries().then(function (rows) {
      var state = (bundle.presence || {})[String(ticket)] || "never";
      rows.filter(function (r) { return r.entry.ticket === ticket && r.event === cfg.event_id; })
        .sort(function (a, b) { return a.entry.at_ms - b.entry.at_ms; })
        .forEach(function (r) { state = r.entry.direction === "entry" ? "inside" : "outside"; });
      return state;
    });
  }

  function verifyOffline(text) {
    if (!bundle) { return Promise.resolve(refuse("no_bundle")); }
    var c;
    try { c = parse(text); } catch (e) { return Promise.resolve(refuse(e.message === "truncated" || e.message === "unsupported_version" ? e.message : "malformed")); }
    var jwk = (bundle.keys.keys || []).filter(function (k) { return k.kid === String(c.kid); })[0];
    if (!jwk) { return Promise.resolve(refuse("unknown_key")); }
    var clock = nowMs() / 1000;
    return crypto.subtle.importKey("raw", b64url(jwk.x), {name: "Ed25519"}, false, ["verify"])
      .then(function (key) { return crypto.subtle.verify({name: "Ed25519"}, key, c.issuerSig, c.bytes); })
      .then(function (good) {
        if (!good) { return refuse("bad_issuer_signature"); }
        if (c.event !== bundle.event_id) { return refuse("wrong_event", c); }
        if (c.performance !== bundle.performance_id) { return refuse("wrong_performance", c); }
        if (cfg.gate && c.gate && c.gate !== cfg.gate) { return refuse("wrong_gate", c); }
        if (clock < c.notBefore) { return refuse("not_yet_valid", c); }
        if (clock >= c.notAfter) { return refuse("expired", c); }
        var rev = bundle.revocations;
        if (rev.revoked.indexOf(c.ticket) >= 0) { return refuse("revoked", c); }
        var sup = rev.superseded.filter(function (p) { return p[0] === c.ticket; })[0];
        if (sup && c.serial < sup[1]) { return refuse("superseded", c); }
        if (c.printed) { return bundle.printed_allowed ? null : refuse("tier_disabled", c); }
        var point = decompress(c.deviceKey);
        if (!point) { return refuse("bad_device_signature", c); }
        var msgPromise = crypto.subtle.digest("SHA-256", c.bytes).then(function (h) {
          var m = new Uint8Array(36); m.set(new Uint8Array(h)); m.set([c.step >>> 24 & 255, c.step >>> 16 & 255, c.step >>> 8 & 255, c.step & 255], 32); return m;
        });
        return Promise.all([crypto.subtle.importKey("raw", point, {name: "ECDSA", namedCurve: "P-256"}, false, ["verify"]), msgPromise])
          .then(function (kv) { return crypto.subtle.verify({name: "ECDSA", hash: "SHA-256"}, kv[0], c.deviceSig, kv[1]); })
          .then(function (ok) {
            if (!ok) { return refuse("bad_device_signature", c); }
            var s = Math.floor(clock / STEP);
            if (c.step < s - 1) { return refuse("code_too_old", c); }
            if (c.step > s + 1) { return refuse("code_from_future", c); }
            return null;
          });
      }).then(function (refusal) {
        if (refusal) { return refusal; }
        return presence(c.ticket).then(function (state) {
          if (cfg.direction === "exit") { if (state !== "inside") { return refuse("not_inside", c); } }
          else if (c.reentry ? state === "inside" : state !== "never") {
            return refuse(c.reentry ? "already_inside" : "already_admitted", c);
          }
          var entry = {nonce: nonce(), scanner: scannerId, ticket: c.ticket, serial: c.serial,
                       direction: cfg.direction, at_ms: Math.round(nowMs()),
                       policy: c.reentry ? "reentry" : "single", tier: c.printed ? "printed" : "device"};
          return store("readwrite", function (st) { return st.put({nonce: entry.nonce, event: cfg.event_id, entry: entry, uploaded: false}); })
            .then(function () {
              refreshPending();
              var reason = cfg.direction === "exit" ? "ok_exit" : c.printed ? "ok_check_id" : "ok";
              return {ok: true, reason_code: reason, message: T.reasons[reason], id_check_required: c.printed, cred: c};
            });
        });
      }).catch(function () { return refuse("offline_unsupported"); });
  }

  // --- showing answers -----------------------------------------------------------------------
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; } return e; }
  function show(answer, offline) {
    var ticket = answer.ticket;
    var idCheck = answer.id_check_required || (ticket && ticket.personalised && answer.ok);
    resultEl.className = "scanner-result " + (!answer.ok ? "result-refused" : idCheck ? "result-check" : "result-ok");
    resultEl.innerHTML = "";
    resultEl.appendChild(el("h2", "", answer.ok ? (answer.direction === "exit" ? T.exit : T.admit) : T.refused));
    resultEl.appendChild(el("p", "", answer.message));
    if (idCheck) { resultEl.appendChild(el("p", "id-check", T.id_check)); }
    var dl = el("dl", "details");
    function row(k, v) { if (v) { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); } }
    if (ticket) {
      var holder = el("dd", "scanner-holder", ticket.holder_name);
      dl.appendChild(el("dt", "", T.holder)); dl.appendChild(holder);
      row(T.hint, ticket.holder_hint); row(T.seat, ticket.seat); row(T.zone, ticket.zone);
      row(T.gate, ticket.gate_group); row(T.ticket, ticket.serial);
    } else if (answer.cred) {
      row(T.hint, answer.cred.hint); row(T.gate, answer.cred.gate); row(T.ticket, "#" + answer.cred.ticket);
    }
    if (answer.first_admission) {
      row(T.first, new Date(answer.first_admission.at).toLocaleTimeString() + " · " + (answer.first_admission.gate || "—") + " · " + answer.first_admission.scanner);
    }
    resultEl.appendChild(dl);
    if (offline) { resultEl.appendChild(el("p", "badge badge-warning", T.checked_offline)); }
    resultEl.focus();
  }

  function scan(text) {
    if (busy || !text) { return Promise.resolve(); }
    busy = true;
    var body = {code: text, performance_id: cfg.performance_id, gate: cfg.gate || null,
                direction: cfg.direction, nonce: nonce(), scanner_id: scannerId};
    return fetch(cfg.scan_url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()}, body: JSON.stringify(body)})
      .then(function (r) {
        return r.json().then(function (answer) {
          setNetwork(true);
          if (!r.ok) { answer = {ok: false, reason_code: answer.code, message: answer.message}; }
          show(answer, false);
        });
      }, function () {
        setNetwork(false);
        return verifyOffline(text).then(function (answer) { show(answer, true); });
      }).finally(function () { busy = false; });
  }

  // --- camera --------------------------------------------------------------------------------
  var video = document.getElementById("scanner-video");
  var canvas = document.createElement("canvas");
  var last = {text: "", at: 0};
  function frame() {
    if (video.readyState === video.HAVE_ENOUGH_DATA && window.jsQR) {
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", {willReadFrequently: true});
      ctx.drawImage(video, 0, 0);
      var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(img.data, img.width, img.height, {inversionAttempts: "dontInvert"});
      if (found && found.data && (found.data !== last.text || Date.now() - last.at > 4000)) {
        last = {text: found.data, at: Date.now()};
        scan(found.data);
      }
    }
    setTimeout(function () { requestAnimationFrame(frame); }, 150);
  }
  document.getElementById("scanner-camera").addEventListener("click", function () {
    var btn = this;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { btn.textContent = T.no_camera; return; }
    navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false}).then(function (stream) {
      video.srcObject = stream; video.hidden = false; video.play(); btn.hidden = true; frame();
    }).catch(function () { btn.textContent = T.no_camera; });
  });

  document.getElementById("scanner-manual").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("manual-code");
    scan(input.value).then(function () { input.value = ""; });
  });
  document.getElementById("scanner-upload").addEventListener("click", function () {
    var out = document.getElementById("scanner-upload-result");
    upload().then(function (answer) {
      out.textContent = answer ? T.uploaded.replace("%(new)s", answer.new).replace("%(dups)s", answer.duplicates.length) : T.nothing;
      return loadBundle();
    }).catch(function () { out.textContent = T.upload_failed; });
  });

  window.addEventListener("online", function () { setNetwork(true); upload().then(loadBundle).catch(function () {}); });
  window.addEventListener("offline", function () { setNetwork(false); });
  setNetwork(navigator.onLine !== false);
  refreshPending();
  loadBundle().then(function () { return upload(); }).catch(function () { setNetwork(false); });
  setInterval(function () { if (navigator.onLine !== false) { upload().then(loadBundle).catch(function () {}); } }, 60000);
  window.SmartTicketsScanner = {scan: scan, verifyOffline: verifyOffline, upload: upload, scannerId: function () { return scannerId; }};
})();
