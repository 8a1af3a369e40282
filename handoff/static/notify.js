// Relais console: knowing without looking. When the live stream (console.js, "relais:event")
// brings something new — a conversation handed to a person, a tenant writing in one that
// waits — a short sound plays (Web Audio, two notes; four for an emergency) and, while the
// page is not looked at, the title counts the conversations concerned: "(2) File d'attente".
// The count clears when the page is shown or focused again. The sound can be switched off
// (remembered on this device).
"use strict";

(function () {
  var KEY = "relais.sound";
  var EMERGENCY = 10; // handoff.auth.EMERGENCY
  var title = document.title;
  var unseen = {}; // conversation id -> true, what arrived while nobody looked
  var audio = null;
  var pending = null, urgent = false;

  function looking() {
    return document.visibilityState === "visible" && document.hasFocus();
  }

  function soundOn() {
    try { return window.localStorage.getItem(KEY) !== "off"; } catch (err) { return true; }
  }

  function context() {
    if (!audio) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return null; }
      audio = new Ctx();
    }
    if (audio.state === "suspended" && audio.resume) {
      audio.resume().catch(function () { /* no gesture yet: the next tap unlocks it */ });
    }
    return audio;
  }

  function chime(isUrgent) {
    if (!soundOn()) { return; }
    var ac = context();
    if (!ac) { return; }
    var notes = isUrgent ? [880, 660, 880, 660] : [660, 880];
    var start = ac.currentTime + 0.02;
    notes.forEach(function (freq, i) {
      var at = start + i * 0.18;
      var osc = ac.createOscillator();
      var gain = ac.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      osc.connect(gain);
      gain.connect(ac.destination);
      osc.start(at);
      osc.stop(at + 0.17);
    });
  }

  function showCount() {
    var n = Object.keys(unseen).length;
    document.title = (n ? "(" + n + ") " : "") + title;
    document.documentElement.setAttribute("data-unseen", String(n));
  }

  function seen() {
    if (!looking()) { return; }
    unseen = {};
    showCount();
  }

  function isArrival(type, data) {
    if (type === "handoff") { return true; }
    return type === "message" && data.direction === "in" &&
      (data.state === "queued" || data.state === "assigned");
  }

  document.addEventListener("relais:event", function (e) {
    var detail = e.detail || {};
    var data = detail.data || {};
    if (!isArrival(detail.type, data)) { return; }
    if (!looking()) {
      unseen[String(data.conversation_id)] = true;
      showCount();
    }
    urgent = urgent || Number(data.priority || 0) >= EMERGENCY;
    // A handoff comes with the message that caused it: one sound for both.
    if (!pending) {
      pending = setTimeout(function () {
        pending = null;
        chime(urgent);
        urgent = false;
      }, 150);
    }
  });

  document.addEventListener("visibilitychange", seen);
  window.addEventListener("focus", seen);
  // Browsers let a page play sound only after a gesture: the first tap or key unlocks it.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { if (soundOn()) { context(); } }, { once: true });
  });

  function blocked() {
    // The browser holds the sound until the page is touched (its autoplay rule).
    return soundOn() && audio !== null && audio.state === "suspended";
  }

  function bindToggle() {
    var button = document.getElementById("sound-toggle");
    if (!button) { return; }
    function show() {
      var on = soundOn();
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.classList.toggle("blocked", blocked());
      button.textContent = button.getAttribute(blocked() ? "data-blocked" : on ? "data-on" : "data-off");
    }
    button.hidden = false;
    // Held when pressed: this tap is the one that lets the sound out, not a switch-off (the
    // page-wide listener below resumes the audio on the same press, before the click).
    var heldAtPress = false;
    ["pointerdown", "keydown"].forEach(function (type) {
      button.addEventListener(type, function () { heldAtPress = blocked(); });
    });
    button.addEventListener("click", function () {
      if (heldAtPress || blocked()) {
        heldAtPress = false;
        audio.resume().then(function () { chime(false); show(); }).catch(show);
        return;
      }
      try { window.localStorage.setItem(KEY, soundOn() ? "off" : "on"); } catch (err) { /* private mode */ }
      show();
      if (soundOn()) { chime(false); }
    });
    if (soundOn()) {
      context();
      if (audio && audio.addEventListener) { audio.addEventListener("statechange", show); }
    }
    show();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bindToggle);
  } else {
    bindToggle();
  }
})();
