// Relais console: the installable app. Registers the service worker, which keeps the console's
// shell (styles, scripts, icons, the offline page) and shows the offline page when the network
// is down; pages and tenant data always come from the server.
"use strict";

(function () {
  if (!("serviceWorker" in navigator)) { return; }
  window.addEventListener("load", function () {
    navigator.serviceWorker.register("/console/sw.js", { scope: "/console" })
      .catch(function () { /* not installable here (plain HTTP on another host): pages still work */ });
  });
})();
