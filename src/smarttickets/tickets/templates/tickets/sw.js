// Wallet service worker: the wallet page, its scripts and the credentials stay usable offline.
// Network first for the page and credentials (fresh when online), cache first for static files.
"use strict";
var VERSION = "{{ version }}";
var PRECACHE = {{ precache|safe }};
var NETWORK_FIRST = [{{ wallet_url|safe }}, {{ credentials_url|safe }}, {{ time_url|safe }}];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(VERSION).then(function (cache) { return cache.addAll(PRECACHE); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== VERSION; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function fromCache(request) {
  return caches.match(request, {ignoreSearch: true}).then(function (hit) {
    if (!hit) { return Response.error(); }
    // Tell the page this is a stored copy, so it does not learn the clock from it.
    var headers = new Headers(hit.headers);
    headers.set("X-From-Cache", "1");
    return hit.blob().then(function (body) {
      return new Response(body, {status: hit.status, statusText: hit.statusText, headers: headers});
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (NETWORK_FIRST.indexOf(url.pathname) >= 0) {
    event.respondWith(fetch(request).then(function (response) {
      // Only a real answer is kept: not a redirect to the login page, not an error.
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(VERSION).then(function (cache) { cache.put(url.pathname, copy); });
      }
      return response;
    }).catch(function () { return fromCache(url.pathname); }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (hit) {
      return hit || fetch(request).then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(VERSION).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
  }
});
