// Relais console: live updates over server-sent events, waiting times, canned replies and
// the SMS segment counter. Plain JS, no build step; the pages work without it (reload).
"use strict";

(function () {
  // -- SMS segments: channels/gsm7.py's rules, folding included ----------------------------
  // The SMS sender folds a reply to GSM-7 when only accents, quotes, dashes or emoji stand in
  // the way, then the carrier counts septets (160, or 153 per part) or UTF-16 units (70/67).
  // The tables come from channels/gsm7.py itself (served as /console/gsm7.js).
  var GSM7 = window.RELAIS_GSM7;
  var BASIC = GSM7.basic;
  var EXTENDED = GSM7.extended;
  var FOLD = GSM7.fold;
  var EMOJI = new RegExp("[" + GSM7.emoji.map(function (r) {
    return "\\u{" + r[0].toString(16) + "}-\\u{" + r[1].toString(16) + "}";
  }).join("") + "]", "gu");
  var GUILLEMETS = new RegExp(
    "«[" + GSM7.guillemet_spaces + "]*|[" + GSM7.guillemet_spaces + "]*»", "g");

  function isGsm7(text) {
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (BASIC.indexOf(c) < 0 && EXTENDED.indexOf(c) < 0) { return false; }
    }
    return true;
  }

  function fold(text) {
    if (isGsm7(text)) { return text; }
    var out = "";
    Array.from(text.replace(EMOJI, "").replace(GUILLEMETS, "\"")).forEach(function (c) {
      if (isGsm7(c)) { out += c; }
      else if (Object.prototype.hasOwnProperty.call(FOLD, c)) { out += FOLD[c]; }
      else {
        var base = c.normalize("NFD").replace(/\p{Mn}/gu, "");
        out += (base && isGsm7(base)) ? base : c;
      }
    });
    var folded = out.split("\n").map(function (line) {
      return line.replace(/ {2,}/g, " ").replace(/\s+$/, "");
    }).join("\n");
    return isGsm7(folded) ? folded.trim() : text;
  }

  function parts(sizes, capacity) {
    // An escape and its character, or a surrogate pair, never straddle two parts.
    var count = 1, used = 0;
    sizes.forEach(function (size) {
      if (used + size > capacity) { count += 1; used = 0; }
      used += size;
    });
    return count;
  }

  function smsSegments(raw) {
    var text = fold(raw);
    var gsm = isGsm7(text);
    var sizes = Array.from(text).map(function (c) {
      if (gsm) { return EXTENDED.indexOf(c) >= 0 ? 2 : 1; }
      return c.codePointAt(0) > 0xFFFF ? 2 : 1;
    });
    var units = sizes.reduce(function (a, b) { return a + b; }, 0);
    var single = gsm ? GSM7.gsm7[0] : GSM7.ucs2[0], part = gsm ? GSM7.gsm7[1] : GSM7.ucs2[1];
    var count = units === 0 ? 0 : (units <= single ? 1 : parts(sizes, part));
    return { encoding: gsm ? "gsm7" : "ucs2", units: units, segments: count, text: text };
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

  // -- conversation page (issue 19): canned replies at the cursor ------------------------
  // A canned reply goes where the caretaker's cursor is (or replaces the selected words),
  // never over what they already typed; a space keeps it apart from the words around it.
  var lastCaret = null;
  function insertAtCursor(area, text) {
    var value = area.value;
    var at = lastCaret || { start: value.length, end: value.length };
    var start = Math.min(at.start, value.length), end = Math.min(at.end, value.length);
    var before = value.slice(0, start), after = value.slice(end);
    if (before && !/\s$/.test(before)) { text = " " + text; }
    if (after && !/^\s/.test(after)) { text = text + " "; }
    area.value = before + text + after;
    var caret = before.length + text.length;
    area.focus();
    area.setSelectionRange(caret, caret);
    lastCaret = { start: caret, end: caret };
    area.dispatchEvent(new Event("input"));
  }

  function bindCanned(root) {
    var area = root.querySelector("#reply-text");
    if (!area) { return; }
    // Tapping a button takes the focus from the text box: remember where the cursor was.
    ["keyup", "click", "select", "input", "blur"].forEach(function (type) {
      area.addEventListener(type, function () {
        lastCaret = { start: area.selectionStart, end: area.selectionEnd };
      });
    });
    root.querySelectorAll("[data-canned]").forEach(function (button) {
      button.addEventListener("click", function () {
        insertAtCursor(area, button.getAttribute("data-canned"));
      });
    });
  }
  window.relaisInsertAtCursor = insertAtCursor;

  // -- conversation page (issue 19): land on the thread and the reply box ----------------
  function landOnReply() {
    // Ours, not the browser's restored position (a reply reloads the same address).
    if ("scrollRestoration" in window.history) { window.history.scrollRestoration = "manual"; }
    var form = document.getElementById("reply-form");
    var thread = document.getElementById("thread");
    var last = thread ? thread.lastElementChild : null;
    var refused = document.querySelector("main .error[role=alert]");
    if (refused) {
      // An action was refused: say why first (the reply box is one scroll away).
      refused.scrollIntoView({ block: "center" });
    } else if (form) {
      // The reply box at the bottom of the screen, the newest messages just above it.
      form.scrollIntoView({ block: "end" });
    } else if (last) {
      last.scrollIntoView({ block: "end" });
    }
  }
  function fillSlots(box) {
    // The live fragment carries the request card in a <template data-fill="id">.
    box.querySelectorAll("template[data-fill]").forEach(function (tpl) {
      var slot = document.getElementById(tpl.getAttribute("data-fill"));
      if (slot) {
        slot.replaceChildren(tpl.content.cloneNode(true));
        bindSubmitOnce(slot);
      }
      tpl.remove();
    });
  }
  // -- end of conversation page (issue 19) ------------------------------------------------

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
    // Was the newest message on screen? Then the new one is brought on screen too.
    var lastMsg = thread ? thread.lastElementChild : null;
    var atBottom = lastMsg ? lastMsg.getBoundingClientRect().top < window.innerHeight : false;
    fetch(target.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        fillSlots(box);
        box.querySelectorAll("[data-id]").forEach(function (el) {
          if (!before[el.getAttribute("data-id")]) { el.classList.add("fresh"); }
        });
        bindSubmitOnce(box);
        syncSkew();
        tickWaited();
        if (atBottom) { landOnReply(); }
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
    // -- issue 19: every live event, for notify.js (sound, unread count in the title) ------
    document.dispatchEvent(new CustomEvent("relais:event", { detail: { type: e.type, data: data } }));
    // -- end issue 19 ----------------------------------------------------------------------
    if (conversationId !== null && data.conversation_id !== conversationId) { return; }
    schedule();
  }

  function connect() {
    if (!target || !window.EventSource) { return; }
    var source = new EventSource("/console/events");
    var wasDown = false;
    source.onopen = function () { setLive(true); if (wasDown) { schedule(); } wasDown = false; };
    source.onerror = function () { setLive(false); wasDown = true; };
    ["handoff", "message", "delivery", "assignment", "alert_failed"].forEach(function (type) {
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
    if (document.getElementById("thread") && !window.location.hash) {
      // Again once the photos are in (they push the reply box down), unless the caretaker
      // has started scrolling in the meantime.
      var moved = false;
      ["wheel", "touchmove", "keydown"].forEach(function (type) {
        window.addEventListener(type, function () { moved = true; }, { once: true, passive: true });
      });
      landOnReply();
      var reland = function () { if (!moved) { landOnReply(); } };
      window.addEventListener("load", reland);
      document.querySelectorAll("#thread img").forEach(function (img) {
        if (!img.complete) { img.addEventListener("load", reland, { once: true }); }
      });
    }
    setInterval(tickWaited, 30000);
    connect();
  });
})();
