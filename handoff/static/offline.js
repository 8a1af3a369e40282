// The offline page: back to where the caretaker was as soon as the network returns.
"use strict";

(function () {
  window.addEventListener("online", function () { window.location.reload(); });
})();
