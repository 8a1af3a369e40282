/* Relais web chat widget: one file, no framework. Embed with
   <script src="https://GATEWAY/webchat/widget.js" data-lang="fr" defer></script> */
(function () {
  "use strict";
  if (window.__relaisWebchat) return;
  window.__relaisWebchat = true;

  var script = document.currentScript || document.querySelector('script[src*="webchat/widget.js"]');
  var base = new URL(script ? script.src : "/webchat/widget.js", location.href).origin;
  var wsUrl = base.replace(/^http/, "ws") + "/channels/webchat/ws";
  var lang = ((script && script.getAttribute("data-lang")) || navigator.language || "fr")
    .slice(0, 2).toLowerCase() === "en" ? "en" : "fr";
  var T = {
    fr: {
      open: "Ouvrir la messagerie", close: "Fermer la messagerie", title: "Une question ? Écrivez-nous",
      log: "Conversation", label: "Votre message", placeholder: "Écrivez votre message…",
      send: "Envoyer", photo: "Joindre une photo", you: "Vous", bot: "Assistant", staff: "Équipe de proximité",
      typing: "L'assistant écrit…", welcome: "{hello} ! Décrivez votre demande : une panne, un souci avec un voisin, des encombrants, une question… Nous vous répondons ici.",
      sending: "envoi…", offline: "Reconnexion…", online: "Connecté",
      today: "Aujourd'hui", yesterday: "Hier", unread: ["{n} nouveau message", "{n} nouveaux messages"], urgent: "Urgence",
      forget: "Oublier cet appareil", forgetAsk: "Effacer cette conversation de cet appareil ? Pour nous écrire à nouveau, il suffira de rouvrir la messagerie.",
      forgotten: "Conversation effacée de cet appareil.", erase: "Effacer", cancel: "Annuler",
      photoAlt: "Photo envoyée", tooBig: "Cette photo dépasse 5 Mo.", notImage: "Seules les photos sont acceptées.",
      uploadFailed: "La photo n'a pas pu être envoyée.",
      busy: "Trop de demandes en ce moment : votre message partira dans un instant. En cas de danger, appelez le 18 (pompiers) ou le 112."
    },
    en: {
      open: "Open the chat", close: "Close the chat", title: "A question? Write to us",
      log: "Conversation", label: "Your message", placeholder: "Write your message…",
      send: "Send", photo: "Attach a photo", you: "You", bot: "Assistant", staff: "Local team",
      typing: "The assistant is typing…", welcome: "{hello}! Tell us what you need: a repair, a problem with a neighbour, bulky waste, a question… We answer here.",
      sending: "sending…", offline: "Reconnecting…", online: "Connected",
      today: "Today", yesterday: "Yesterday", unread: ["{n} new message", "{n} new messages"], urgent: "Emergency",
      forget: "Forget this device", forgetAsk: "Erase this conversation from this device? To write to us again, just open the chat again.",
      forgotten: "Conversation erased from this device.", erase: "Erase", cancel: "Cancel",
      photoAlt: "Photo sent", tooBig: "This photo is over 5 MB.", notImage: "Only photos can be sent.",
      uploadFailed: "The photo could not be sent.",
      busy: "Too many requests right now: your message will go in a moment. If anyone is in danger, call 18 (fire brigade) or 112."
    }
  }[lang];

  var KEY = "relais.webchat.session", OPEN_KEY = "relais.webchat.open", SEEN_KEY = "relais.webchat.seen";
  function load(k, store) { try { return (store || localStorage).getItem(k); } catch (e) { return null; } }
  function save(k, v, store) { try { (store || localStorage).setItem(k, v); } catch (e) { /* private mode */ } }
  function drop(k, store) { try { (store || localStorage).removeItem(k); } catch (e) { /* private mode */ } }

  var session = load(KEY), lastId = 0, ws = null, tries = 0, timer = null, typingTimer = null;
  var pending = {};   // client id -> {text, media, el}
  var shown = {};     // message id -> true
  var seen = +(load(SEEN_KEY) || 0);  // the newest message id the tenant had on screen
  var unread = 0, lastDay = "";
  var LOCALE = lang === "en" ? "en-GB" : "fr-FR";

  function uid() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  // Icons drawn inline (no font may lack them); decorative: the buttons carry the words.
  var ICONS = {
    bubble: ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z", 1],
    close: ["M6 6l12 12M18 6L6 18"],
    send: ["M3 20.5l18-8.5L3 3.5l2.5 7L14 12l-8.5 1.5z", 1],
    attach: ["M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1zM12 17a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z"],
    warn: ["M12 3l10 18H2zM12 10v5M12 18v.01"]
  };
  function icon(name, size) {
    var NS = "http://www.w3.org/2000/svg", d = ICONS[name];
    var svg = document.createElementNS(NS, "svg"), path = document.createElementNS(NS, "path");
    var a = { viewBox: "0 0 24 24", width: size || 22, height: size || 22, "aria-hidden": "true", focusable: "false" };
    for (var k in a) svg.setAttribute(k, a[k]);
    path.setAttribute("d", d[0]);
    path.setAttribute("fill", d[1] ? "currentColor" : "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", d[1] ? "1" : "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }
  function button(cls, label, name, text) {
    var b = el("button", { "class": cls, type: "button", "aria-label": label, title: label }, text);
    if (name) b.insertBefore(icon(name), b.firstChild);
    return b;
  }
  // "Bonjour" by day, "Bonsoir" from 18:00, by the landlord's clock (as the bot says it).
  function hello() {
    var h = new Date().getHours();
    try { h = +new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: "Europe/Paris" }).format(new Date()); } catch (e) { /* local hour */ }
    return lang === "en" ? "Hello" : (h >= 18 || h < 5 ? "Bonsoir" : "Bonjour");
  }

  // -- the DOM, in a shadow root so the landlord's CSS and ours never meet ------------------
  var host = el("div", { id: "relais-webchat" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    "svg{display:block;flex:none}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;display:flex;align-items:center;justify-content:center;",
    "background:#0b5cab;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.3);z-index:2147483000}",
    ".bubble svg{width:30px;height:30px}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:24px;height:24px;border-radius:12px;padding:0 6px;background:#c62828;",
    "color:#fff;border:2px solid #fff;font-size:13px;font-weight:700;line-height:20px;text-align:center}",
    ".badge[hidden]{display:none}",
    ".bubble:focus-visible,button:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:92px;width:360px;max-width:calc(100vw - 24px);height:520px;",
    "max-height:calc(100vh - 110px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;color:#1b1b1b}",
    ".panel[hidden]{display:none}",
    "header{background:#0b5cab;color:#fff;display:flex;align-items:center;justify-content:space-between;padding:8px 8px 8px 14px}",
    "h2{font-size:16px;margin:0;font-weight:600}",
    ".close{background:transparent;border:0;color:#fff;cursor:pointer;padding:8px;border-radius:6px}",
    ".status{font-size:12px;padding:2px 14px;color:#6b6b6b;min-height:4px}",
    ".panel.off .status{background:#fff4e0;color:#7a4300;padding:5px 14px;font-size:13px}",
    ".panel.off .status::before{content:'';display:inline-block;width:10px;height:10px;margin-right:6px;vertical-align:-1px;",
    "border:2px solid currentColor;border-right-color:transparent;border-radius:50%;animation:relais-spin 1s linear infinite}",
    "@keyframes relais-spin{to{transform:rotate(360deg)}}",
    "ol{list-style:none;margin:0;padding:10px 12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px}",
    "li{max-width:82%;padding:8px 11px;border-radius:12px;word-wrap:break-word;font-size:15px;line-height:1.4}",
    "li .text{white-space:pre-wrap;display:block}",
    "li.tenant{align-self:flex-end;background:#0b5cab;color:#fff;border-bottom-right-radius:3px}",
    "li.bot,li.staff,li.system{align-self:flex-start;background:#eef1f5;border-bottom-left-radius:3px}",
    "li.staff{background:#e5f4ea}",
    "li.day{align-self:center;background:none;color:#555;font-size:12px;padding:2px 8px;font-weight:600}",
    "li.emergency{background:#fdecea;color:#4a0a0a;border-left:5px solid #b3261e}",
    "li .head{display:flex;justify-content:space-between;align-items:center;gap:10px;margin-bottom:2px}",
    "li .who{font-size:11px;opacity:.75}",
    "li.emergency .who{display:flex;align-items:center;gap:5px;opacity:1;color:#b3261e;font-weight:700;font-size:13px;text-transform:uppercase}",
    "li a{color:inherit;font-weight:600;text-decoration:underline}",
    "li a[href^='tel:']{white-space:nowrap}",
    "li.emergency a[href^='tel:']{display:inline-block;background:#b3261e;color:#fff;border-radius:6px;padding:1px 7px;text-decoration:none}",
    "li .at{font-size:11px;opacity:.7;white-space:nowrap}",
    "li.pending{opacity:.7}",
    "li img{display:block;max-width:100%;border-radius:8px;margin-top:4px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".typing{font-size:13px;color:#555;padding:0 14px 6px;font-style:italic}",
    "form{display:flex;gap:6px;border-top:1px solid #ddd;padding:8px 8px 4px}",
    "textarea{flex:1;resize:none;border:1px solid #bbb;border-radius:8px;padding:8px;font-size:16px;max-height:120px;min-width:0}",
    "form button{border:0;border-radius:8px;background:#0b5cab;color:#fff;padding:0 10px;cursor:pointer;display:flex;align-items:center}",
    "form button.attach{background:#eef1f5;color:#1b1b1b}",
    ".foot{display:flex;justify-content:flex-end;padding:0 8px 6px}",
    ".forget{background:none;border:0;color:#555;font-size:12px;text-decoration:underline;cursor:pointer;padding:4px}",
    ".confirm{padding:8px 12px;font-size:13px;background:#f6f6f6;border-top:1px solid #ddd}",
    ".confirm[hidden]{display:none}",
    ".confirm button{margin:6px 6px 0 0;border:1px solid #888;border-radius:6px;background:#fff;padding:5px 10px;cursor:pointer;font-size:13px}",
    ".confirm .erase{background:#b3261e;border-color:#b3261e;color:#fff}"
  ].join("");
  root.appendChild(style);

  var bubble = button("bubble", T.open, "bubble");
  bubble.setAttribute("aria-expanded", "false");
  bubble.setAttribute("aria-controls", "relais-panel");
  var badge = el("span", { "class": "badge", "aria-hidden": "true", hidden: "" });
  bubble.appendChild(badge);
  var panel = el("section", { "class": "panel", id: "relais-panel", role: "dialog",
    "aria-labelledby": "relais-title", hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", { id: "relais-title" }, T.title));
  var closeBtn = button("close", T.close, "close");
  header.appendChild(closeBtn);
  var status = el("div", { "class": "status", role: "status", "aria-live": "polite" });
  var log = el("ol", { role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": T.log, tabindex: "0" });
  var typing = el("div", { "class": "typing", "aria-live": "polite" });
  var form = el("form");
  var input = el("textarea", { id: "relais-input", rows: "1", placeholder: T.placeholder,
    "aria-label": T.label, maxlength: "4000" });
  var file = el("input", { type: "file", accept: "image/*", "class": "sr", tabindex: "-1",
    "aria-hidden": "true" });
  var attach = button("attach", T.photo, "attach");
  var sendBtn = button("send", T.send, "send");
  sendBtn.type = "submit";
  form.appendChild(input); form.appendChild(file); form.appendChild(attach); form.appendChild(sendBtn);
  var foot = el("div", { "class": "foot" });
  var forgetBtn = el("button", { "class": "forget", type: "button" }, T.forget);
  foot.appendChild(forgetBtn);
  var confirmBox = el("div", { "class": "confirm", role: "alertdialog", hidden: "" });
  confirmBox.appendChild(el("div", {}, T.forgetAsk));
  var eraseBtn = el("button", { "class": "erase", type: "button" }, T.erase);
  var cancelBtn = el("button", { type: "button" }, T.cancel);
  confirmBox.appendChild(eraseBtn); confirmBox.appendChild(cancelBtn);
  panel.appendChild(header); panel.appendChild(status); panel.appendChild(log);
  panel.appendChild(typing); panel.appendChild(form); panel.appendChild(confirmBox); panel.appendChild(foot);
  root.appendChild(panel); root.appendChild(bubble);

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // -- rendering -------------------------------------------------------------------------
  function who(author) { return author === "tenant" ? T.you : author === "staff" ? T.staff : T.bot; }

  // Links and phone numbers become links; the text itself only ever goes in text nodes.
  var LINK = /(https?:\/\/[^\s<>"']+)|((?:\+33[\s.]?|0[\s.]?)[1-9](?:[\s.-]?\d){8})|\b(15|17|18|112|114|115|119|196|3919)\b/g;
  var NOT_A_CALL = /^\s*(h\b|h\d|heures?|min|€|%|ans?\b|jours?|mois|semaines?|[:\/.,]\d|janv|f[ée]v|mars|avr|mai|juin|juil|ao[uû]t|sept|oct|nov|d[ée]c|jan|feb|mar|apr|may|jun|jul|aug|sep)/i;
  function rich(text, calls) {
    var frag = document.createDocumentFragment(), at = 0, m;
    LINK.lastIndex = 0;
    while ((m = LINK.exec(text))) {
      var s = m[0], start = m.index, href = null, after = text.slice(start + s.length);
      if (m[1]) { s = s.replace(/[.,;:!?)\]]+$/, ""); href = s; }
      else if (/[\w+\-\/]/.test(text.charAt(start - 1)) || /^\d/.test(after)) href = null;
      else if (m[2]) href = "tel:" + s.replace(/[^\d+]/g, "");
      else if (calls && !NOT_A_CALL.test(after)) href = "tel:" + s;  // 15, 17, 18, 112…
      if (!href) continue;
      frag.appendChild(document.createTextNode(text.slice(at, start)));
      frag.appendChild(el("a", m[1] ? { href: href, target: "_blank", rel: "noopener noreferrer" } : { href: href }, s));
      at = start + s.length;
      LINK.lastIndex = at;
    }
    frag.appendChild(document.createTextNode(text.slice(at)));
    return frag;
  }

  function dateOf(iso) { var d = iso ? new Date(iso) : new Date(); return isNaN(d.getTime()) ? new Date() : d; }
  function dayLabel(d) {
    var midnight = function (x) { x = new Date(x); x.setHours(0, 0, 0, 0); return x; };
    var days = Math.round((midnight(new Date()) - midnight(d)) / 864e5);
    if (days === 0) return T.today;
    if (days === 1) return T.yesterday;
    return d.toLocaleDateString(LOCALE, { weekday: "long", day: "numeric", month: "long" });
  }
  function dated(d) {  // a separator when the day changes
    var key = d.toDateString();
    if (key === lastDay) return;
    lastDay = key;
    append(el("li", { "class": "day", role: "separator" }, dayLabel(d)));
  }

  function showImage(li, url, localUrl) {
    var img = el("img", { alt: T.photoAlt });
    li.appendChild(img);
    if (localUrl) { img.src = localUrl; return; }
    // Photos are served only to their own session: fetched with its token, shown as a blob.
    fetch(base + url, { headers: { "X-Webchat-Session": load(KEY) || session || "" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.blob(); })
      .then(function (b) { img.src = URL.createObjectURL(b); })
      .catch(function () { img.alt = T.photoAlt + " (—)"; });
  }

  function bubbleFor(author, text, media, localUrl, iso, kind) {
    var d = dateOf(iso), urgent = kind === "emergency";
    dated(d);
    var li = el("li", { "class": author + (urgent ? " emergency" : "") });
    var head = el("div", { "class": "head" });  // who, and when
    var name = el("span", { "class": "who" }, urgent ? T.urgent : who(author));
    if (urgent) name.insertBefore(icon("warn", 16), name.firstChild);
    head.appendChild(name);
    var hhmm = d.toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit" });
    head.appendChild(el("time", { "class": "at", datetime: d.toISOString() }, hhmm));
    li.appendChild(head);
    if (text) {
      var body = el("span", { "class": "text" });
      body.appendChild(rich(text, author !== "tenant"));
      li.appendChild(body);
    }
    (media || []).forEach(function (m) { if (m.url) showImage(li, m.url, localUrl); });
    return li;
  }

  function append(li) {
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function markSeen() {
    if (lastId > seen) { seen = lastId; save(SEEN_KEY, String(seen)); }
    unread = 0;
    badge.hidden = true;
    bubble.setAttribute("aria-label", panel.hidden ? T.open : T.close);
  }
  function bump() {  // a reply while the panel is closed
    unread += 1;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    badge.hidden = false;
    bubble.setAttribute("aria-label", T.open + " — " + T.unread[unread > 1 ? 1 : 0].replace("{n}", unread));
  }

  function render(m) {
    if (m.id && shown[m.id]) return;
    if (m.id) { shown[m.id] = true; if (m.id > lastId) lastId = m.id; }
    var mine = m.client_id && pending[m.client_id];
    if (mine) { stored(m.client_id); return; }  // our own message, now stored: keep its bubble
    if (m.author !== "tenant") {
      hideTyping();
      if (panel.hidden && m.id > seen) bump();
    }
    append(bubbleFor(m.author, m.text, m.media, null, m.created_at, m.kind));
    if (!panel.hidden) markSeen();
  }

  function showTyping() {
    typing.textContent = T.typing;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 15000);
  }
  function hideTyping() { typing.textContent = ""; clearTimeout(typingTimer); }

  // -- the connection --------------------------------------------------------------------
  function offline(on) {
    panel.classList.toggle("off", on);
    status.textContent = on ? T.offline : "";
  }
  function retry() {  // 0.5 s, 1 s, 2 s, 4 s, then every 5 s, each with jitter
    clearTimeout(timer);
    var cap = Math.min(5000, 500 * Math.pow(2, tries++));
    timer = setTimeout(connect, cap / 2 + Math.random() * cap / 2);
  }
  function connect() {
    if (ws && ws.readyState <= 1) return;
    clearTimeout(timer);
    var sock = ws = new WebSocket(wsUrl), quiet = 0;
    // A socket the network dropped without a word (a phone changing networks) is found
    // by its silence: a ping every 20 s, given up when two go unanswered.
    var beat = setInterval(function () {
      if (sock.readyState !== 1) return;
      if (++quiet > 2) { clearInterval(beat); lost(sock); return; }
      sock.send('{"type":"ping"}');
    }, 20000);
    sock.onopen = function () {
      session = load(KEY) || session;  // another tab may hold a newer token of the session
      sock.send(JSON.stringify({ type: "hello", session: session, since: lastId }));
    };
    sock.onmessage = function (ev) {
      quiet = 0;
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "welcome") {
        tries = 0;
        session = data.session;
        save(KEY, session);
        offline(false);
        Object.keys(pending).forEach(function (id) { transmit(id); });
      } else if (data.type === "session") {
        // The token changes at every use: the previous one soon stops working.
        session = data.session;
        save(KEY, session);
      } else if (data.type === "error") {
        if (data.reason === "busy") status.textContent = T.busy;
        if (data.retry && data.id && pending[data.id]) {
          setTimeout(function () { transmit(data.id); }, 1000 * (data.retry_after || 10));
        }
      } else if (data.type === "history") {
        if (!data.messages.length && !log.children.length) {
          append(bubbleFor("bot", T.welcome.replace("{hello}", hello())));
        }
        data.messages.forEach(render);
      } else if (data.type === "message") {
        render(data.message);
      } else if (data.type === "ack") {
        stored(data.id);
        if (data.message_id) shown[data.message_id] = true;
      } else if (data.type === "typing") {
        showTyping();
      } else if (data.type === "forgotten") {  // "forget this device", from another tab
        wipe();
      }
    };
    sock.onclose = function (ev) {
      clearInterval(beat);
      if (ev.code === 4001 && ws === sock) { ws = null; wipe(); return; }
      lost(sock);
    };
  }
  function lost(sock) {  // then try again: 0.5 s, 1 s, 2 s, 4 s, every 5 s
    if (ws !== sock) return;  // replaced or forgotten
    ws = null;
    try { sock.close(); } catch (e) { /* closed already */ }
    offline(true);
    retry();
  }
  function now() {  // back online or back on the page: no need to wait for the next try
    if (session && !ws && timer) connect();
  }
  window.addEventListener("online", now);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) now(); });

  function transmit(id) {
    var p = pending[id];
    if (p && ws && ws.readyState === 1 && session) {
      ws.send(JSON.stringify({ type: "message", id: id, text: p.text, media: p.media }));
    } else if (!ws) {
      connect();
    }
  }

  function stored(id) {  // the server has it: its time instead of "envoi…"
    var p = pending[id];
    if (!p) return;
    var at = p.el.querySelector(".at");
    at.textContent = new Date(at.getAttribute("datetime")).toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit" });
    p.el.classList.remove("pending");
    delete pending[id];
  }

  function post(text, media, localUrl) {
    var id = uid();
    var li = bubbleFor("tenant", text, localUrl ? [{ url: "local" }] : [], localUrl);
    li.classList.add("pending");
    li.querySelector(".at").textContent = T.sending;
    append(li);
    pending[id] = { text: text, media: media || [], el: li };
    transmit(id);
  }

  // "Oublier cet appareil": the server ends the session, this browser keeps nothing of it.
  function wipe() {
    var sock = ws;
    ws = null;
    if (sock) sock.close();
    clearTimeout(timer);
    [KEY, SEEN_KEY].forEach(function (k) { drop(k); });
    session = null; lastId = 0; seen = 0; shown = {}; pending = {}; lastDay = ""; tries = 0;
    while (log.firstChild) log.removeChild(log.firstChild);
    hideTyping();
    markSeen();
    offline(false);
    confirmBox.hidden = true;
    status.textContent = T.forgotten;
  }
  function forget() {
    var token = load(KEY) || session;
    wipe();
    if (token) {
      fetch(base + "/channels/webchat/forget", { method: "POST", keepalive: true,
        headers: { "X-Webchat-Session": token } }).catch(function () { /* ends when idle */ });
    }
    input.focus();
  }
  forgetBtn.addEventListener("click", function () { confirmBox.hidden = false; cancelBtn.focus(); });
  cancelBtn.addEventListener("click", function () { confirmBox.hidden = true; forgetBtn.focus(); });
  eraseBtn.addEventListener("click", forget);

  // -- interaction -----------------------------------------------------------------------
  function open(focus) {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    save(OPEN_KEY, "1", sessionStorage);
    markSeen();
    connect();
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    save(OPEN_KEY, "", sessionStorage);
    markSeen();
    bubble.focus();
  }
  bubble.addEventListener("click", function () { if (panel.hidden) open(true); else close(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    post(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : sendBtn.click(); }
  });

  attach.addEventListener("click", function () { file.click(); });
  file.addEventListener("change", function () {
    var f = file.files && file.files[0];
    file.value = "";
    if (!f) return;
    if (!/^image\//.test(f.type)) { status.textContent = T.notImage; return; }
    if (f.size > 5 * 1024 * 1024) { status.textContent = T.tooBig; return; }
    session = load(KEY) || session;
    if (!session) { status.textContent = T.offline; connect(); return; }
    fetch(base + "/channels/webchat/upload", {
      method: "POST", body: f,
      headers: { "Content-Type": f.type, "X-Webchat-Session": session }
    }).then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (up) { post("", [up.ref], URL.createObjectURL(f)); })
      .catch(function () { status.textContent = T.uploadFailed; });
  });

  // A returning tenant reconnects at once, to receive replies written while away.
  if (session) connect();
  if (load(OPEN_KEY, sessionStorage)) open(false);
})();
