// Relais console service worker (served as /console/sw.js, scope /console).
// It keeps the console's shell — styles, scripts, icons and the offline page — and answers a
// page request with the offline page when the network is down. Pages, fragments, the event
// stream and photos hold tenants' data: they always come from the network and are never stored.
"use strict";

var VERSION = "relais-shell-1";
var OFFLINE = "/console/offline";
var SHELL = [
  OFFLINE,
  "/console/static/console.css",
  "/console/static/queue.css",
  "/console/static/offline.js",
  "/console/static/icons/relais-192.png",
  "/console/static/icons/relais.svg",
];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(VERSION)
      .then(function (cache) { return cache.addAll(SHELL); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys()
      .then(function (keys) {
        return Promise.all(keys.filter(function (k) { return k !== VERSION; })
          .map(function (k) { return caches.delete(k); }));
      })
      .then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    // Straight from the network, never stored; the offline page only when it cannot be reached.
    event.respondWith(fetch(request).catch(function () { return caches.match(OFFLINE); }));
    return;
  }
  if (SHELL.indexOf(url.pathname) >= 0) {
    // Network first (a new version is used at once), the stored copy when offline.
    event.respondWith(fetch(request).catch(function () { return caches.match(url.pathname); }));
  }
});
