// Relais console: live updates over server-sent events, waiting times, canned replies and
// the SMS segment counter. Plain JS, no build step; the pages work without it (reload).
"use strict";

(function () {
  // -- SMS segments: the same rules as handoff/sms.py ---------------------------------------
  var GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENDED = "^{}\\[~]|€\f";

  function smsSegments(text) {
    var gsm = true, units = 0, i, ch;
    for (i = 0; i < text.length; i++) {
      ch = text.charAt(i);
      if (GSM7_EXTENDED.indexOf(ch) >= 0) { units += 2; }
      else if (GSM7_BASIC.indexOf(ch) >= 0) { units += 1; }
      else { gsm = false; break; }
    }
    // UCS-2 counts UTF-16 code units, which is what String.length is (an emoji is two).
    if (!gsm) { units = text.length; }
    var single = gsm ? 160 : 70, part = gsm ? 153 : 67;
    var count = units === 0 ? 0 : (units <= single ? 1 : Math.ceil(units / part));
    return { encoding: gsm ? "gsm7" : "ucs2", units: units, segments: count };
  }
  window.relaisSmsSegments = smsSegments;

  function bindCounter(root) {
    var area = root.querySelector("textarea[data-sms]");
    var counter = root.querySelector("#sms-counter");
    if (!area || !counter) { return; }
    var template = counter.getAttribute("data-template");
    function update() {
      var r = smsSegments(area.value);
      counter.textContent = template.replace("{chars}", r.units).replace("{segments}", r.segments);
      counter.setAttribute("data-segments", r.segments);
      counter.setAttribute("data-encoding", r.encoding);
      counter.classList.toggle("over", r.segments > 3);
    }
    area.addEventListener("input", update);
    update();
  }

  function bindCanned(root) {
    var area = root.querySelector("#reply-text");
    root.querySelectorAll("[data-canned]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (!area) { return; }
        area.value = button.getAttribute("data-canned");
        area.dispatchEvent(new Event("input"));
        area.focus();
      });
    });
  }

  function bindSubmitOnce(root) {
    // A double tap on a slow connection must not post twice (the server also dedups).
    root.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var b = form.querySelector("button[type=submit]");
        if (b) { setTimeout(function () { b.disabled = true; }, 0); }
      });
    });
  }

  // -- waiting times ------------------------------------------------------------------------
  function formatWaited(seconds) {
    var minutes = Math.floor(seconds / 60);
    if (minutes < 1) { return "< 1 min"; }
    if (minutes < 60) { return minutes + " min"; }
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 48) { return hours + " h " + (minutes < 10 ? "0" : "") + minutes; }
    return Math.floor(hours / 24) + (document.documentElement.lang === "fr" ? " j" : " d");
  }
  var skew = 0; // server clock minus browser clock: waiting times are the server's
  function syncSkew() {
    var el = document.getElementById("server-now");
    if (el) { skew = Number(el.getAttribute("data-now")) - Date.now() / 1000; }
  }
  function tickWaited() {
    var now = Date.now() / 1000 + skew;
    document.querySelectorAll(".waited[data-since]").forEach(function (el) {
      el.textContent = formatWaited(now - Number(el.getAttribute("data-since")));
    });
  }

  // -- live updates -------------------------------------------------------------------------
  var target = document.querySelector("[data-live-src]");
  var conversation = document.querySelector("[data-conversation]");
  var conversationId = conversation ? Number(conversation.getAttribute("data-conversation")) : null;
  var live = document.getElementById("live");
  var pending = null, inflight = false, again = false;

  function setLive(on) {
    var badge = document.querySelector(".live");
    if (!badge) { return; }
    badge.classList.toggle("on", on);
    badge.textContent = badge.getAttribute(on ? "data-on" : "data-off");
  }

  function refresh() {
    if (!target) { return; }
    if (inflight) { again = true; return; }
    inflight = true;
    var box = conversationId ? live : document.getElementById("queue");
    var before = {};
    box.querySelectorAll("[data-id]").forEach(function (el) { before[el.getAttribute("data-id")] = 1; });
    var thread = document.getElementById("thread");
    var atBottom = thread ? (window.innerHeight + window.scrollY >= document.body.scrollHeight - 80) : false;
    fetch(target.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        box.querySelectorAll("[data-id]").forEach(function (el) {
          if (!before[el.getAttribute("data-id")]) { el.classList.add("fresh"); }
        });
        bindSubmitOnce(box);
        syncSkew();
        tickWaited();
        if (atBottom) { window.scrollTo(0, document.body.scrollHeight); }
      })
      .catch(function () { /* offline: the next event or reconnection refreshes */ })
      .then(function () {
        inflight = false;
        if (again) { again = false; refresh(); }
      });
  }

  function schedule() {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () { pending = null; refresh(); }, 100);
  }

  function onEvent(e) {
    var data = {};
    try { data = JSON.parse(e.data); } catch (err) { return; }
    if (conversationId !== null && data.conversation_id !== conversationId) { return; }
    schedule();
  }

  function connect() {
    if (!target || !window.EventSource) { return; }
    var source = new EventSource("/console/events");
    var wasDown = false;
    source.onopen = function () { setLive(true); if (wasDown) { schedule(); } wasDown = false; };
    source.onerror = function () { setLive(false); wasDown = true; };
    ["handoff", "message", "delivery", "assignment"].forEach(function (type) {
      source.addEventListener(type, onEvent);
    });
    source.onmessage = onEvent;
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncSkew();
    bindCounter(document);
    bindCanned(document);
    bindSubmitOnce(document);
    if (document.getElementById("thread")) { window.scrollTo(0, document.body.scrollHeight); }
    setInterval(tickWaited, 30000);
    connect();
  });
})();
