// The offline page: back to where the caretaker was as soon as the server answers again
// (the browser's "online" event, and a look every few seconds: a phone may say it is online
// while the server is still out of reach).
"use strict";

(function () {
  var EVERY_MS = 3000;
  function back() { window.location.reload(); }
  function look() {
    fetch("/healthz", { cache: "no-store" })
      .then(function (r) { if (r.ok) { back(); } })
      .catch(function () { /* still offline */ });
  }
  window.addEventListener("online", look);
  setInterval(look, EVERY_MS);
})();
