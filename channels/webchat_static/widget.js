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
      typing: "L'assistant écrit…", welcome: "Bonjour ! Décrivez votre demande : une panne, un souci avec un voisin, des encombrants, une question… Nous vous répondons ici.",
      sending: "envoi…", offline: "Connexion perdue, nouvelle tentative…", online: "Connecté",
      photoAlt: "Photo envoyée", tooBig: "Cette photo dépasse 5 Mo.", notImage: "Seules les photos sont acceptées.",
      uploadFailed: "La photo n'a pas pu être envoyée.",
      busy: "Trop de demandes en ce moment : votre message partira dans un instant. En cas de danger, appelez le 18 (pompiers) ou le 112."
    },
    en: {
      open: "Open the chat", close: "Close the chat", title: "A question? Write to us",
      log: "Conversation", label: "Your message", placeholder: "Write your message…",
      send: "Send", photo: "Attach a photo", you: "You", bot: "Assistant", staff: "Local team",
      typing: "The assistant is typing…", welcome: "Hello! Tell us what you need: a repair, a problem with a neighbour, bulky waste, a question… We answer here.",
      sending: "sending…", offline: "Connection lost, trying again…", online: "Connected",
      photoAlt: "Photo sent", tooBig: "This photo is over 5 MB.", notImage: "Only photos can be sent.",
      uploadFailed: "The photo could not be sent.",
      busy: "Too many requests right now: your message will go in a moment. If anyone is in danger, call 18 (fire brigade) or 112."
    }
  }[lang];

  var KEY = "relais.webchat.session", OPEN_KEY = "relais.webchat.open";
  function load(k, store) { try { return (store || localStorage).getItem(k); } catch (e) { return null; } }
  function save(k, v, store) { try { (store || localStorage).setItem(k, v); } catch (e) { /* private mode */ } }

  var session = load(KEY), lastId = 0, ws = null, retry = 1000, typingTimer = null;
  var pending = {};   // client id -> {text, media, el}
  var shown = {};     // message id -> true

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

  // -- the DOM, in a shadow root so the landlord's CSS and ours never meet ------------------
  var host = el("div", { id: "relais-webchat" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;",
    "background:#0b5cab;color:#fff;font-size:28px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.3);z-index:2147483000}",
    ".bubble:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:92px;width:360px;max-width:calc(100vw - 24px);height:520px;",
    "max-height:calc(100vh - 110px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;color:#1b1b1b}",
    ".panel[hidden]{display:none}",
    "header{background:#0b5cab;color:#fff;display:flex;align-items:center;justify-content:space-between;padding:10px 14px}",
    "h2{font-size:16px;margin:0;font-weight:600}",
    ".close{background:transparent;border:0;color:#fff;font-size:24px;cursor:pointer;line-height:1;padding:2px 8px}",
    ".status{font-size:12px;padding:2px 14px;color:#6b6b6b;min-height:4px}",
    "ol{list-style:none;margin:0;padding:10px 12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px}",
    "li{max-width:82%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;font-size:14px;line-height:1.4}",
    "li.tenant{align-self:flex-end;background:#0b5cab;color:#fff;border-bottom-right-radius:3px}",
    "li.bot,li.staff,li.system{align-self:flex-start;background:#eef1f5;border-bottom-left-radius:3px}",
    "li.staff{background:#e5f4ea}",
    "li .who{display:block;font-size:11px;opacity:.75;margin-bottom:2px}",
    "li.pending{opacity:.7}",
    "li img{display:block;max-width:100%;border-radius:8px;margin-top:4px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".typing{font-size:13px;color:#555;padding:0 14px 6px;font-style:italic}",
    "form{display:flex;gap:6px;border-top:1px solid #ddd;padding:8px}",
    "textarea{flex:1;resize:none;border:1px solid #bbb;border-radius:8px;padding:8px;font-size:14px;max-height:120px}",
    "form button{border:0;border-radius:8px;background:#0b5cab;color:#fff;padding:0 12px;cursor:pointer;font-size:14px}",
    "form button.attach{background:#eef1f5;color:#1b1b1b;font-size:18px}"
  ].join("");
  root.appendChild(style);

  var bubble = el("button", { "class": "bubble", type: "button", "aria-label": T.open,
    "aria-expanded": "false", "aria-controls": "relais-panel" }, "💬");
  var panel = el("section", { "class": "panel", id: "relais-panel", role: "dialog",
    "aria-labelledby": "relais-title", hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", { id: "relais-title" }, T.title));
  var closeBtn = el("button", { "class": "close", type: "button", "aria-label": T.close }, "×");
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
  var attach = el("button", { "class": "attach", type: "button", "aria-label": T.photo, title: T.photo }, "📷");
  var sendBtn = el("button", { type: "submit" }, T.send);
  form.appendChild(input); form.appendChild(file); form.appendChild(attach); form.appendChild(sendBtn);
  panel.appendChild(header); panel.appendChild(status); panel.appendChild(log);
  panel.appendChild(typing); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(bubble);

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // -- rendering -------------------------------------------------------------------------
  function who(author) { return author === "tenant" ? T.you : author === "staff" ? T.staff : T.bot; }

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

  function bubbleFor(author, text, media, localUrl) {
    var li = el("li", { "class": author });
    li.appendChild(el("span", { "class": "who" }, who(author)));
    if (text) li.appendChild(document.createTextNode(text));
    (media || []).forEach(function (m) { if (m.url) showImage(li, m.url, localUrl); });
    return li;
  }

  function append(li) {
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function render(m) {
    if (m.id && shown[m.id]) return;
    if (m.id) { shown[m.id] = true; if (m.id > lastId) lastId = m.id; }
    var mine = m.client_id && pending[m.client_id];
    if (mine) {  // our own message, now stored: keep its bubble
      mine.el.classList.remove("pending");
      delete pending[m.client_id];
      return;
    }
    if (m.author !== "tenant") hideTyping();
    append(bubbleFor(m.author, m.text, m.media));
  }

  function showTyping() {
    typing.textContent = T.typing;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 15000);
  }
  function hideTyping() { typing.textContent = ""; clearTimeout(typingTimer); }

  // -- the connection --------------------------------------------------------------------
  function connect() {
    if (ws && ws.readyState <= 1) return;
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      retry = 1000;
      session = load(KEY) || session;  // another tab may hold a newer token of the session
      ws.send(JSON.stringify({ type: "hello", session: session, since: lastId }));
    };
    ws.onmessage = function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "welcome") {
        session = data.session;
        save(KEY, session);
        status.textContent = "";
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
        if (!data.messages.length && !log.children.length) append(bubbleFor("bot", T.welcome));
        data.messages.forEach(render);
      } else if (data.type === "message") {
        render(data.message);
      } else if (data.type === "ack") {
        var p = pending[data.id];
        if (p) { p.el.classList.remove("pending"); delete pending[data.id]; }
        if (data.message_id) shown[data.message_id] = true;
      } else if (data.type === "typing") {
        showTyping();
      }
    };
    ws.onclose = function () {
      status.textContent = T.offline;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  function transmit(id) {
    var p = pending[id];
    if (p && ws && ws.readyState === 1 && session) {
      ws.send(JSON.stringify({ type: "message", id: id, text: p.text, media: p.media }));
    }
  }

  function post(text, media, localUrl) {
    var id = uid();
    var li = bubbleFor("tenant", text, localUrl ? [{ url: "local" }] : [], localUrl);
    li.classList.add("pending");
    append(li);
    pending[id] = { text: text, media: media || [], el: li };
    transmit(id);
  }

  // -- interaction -----------------------------------------------------------------------
  function open(focus) {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", T.close);
    save(OPEN_KEY, "1", sessionStorage);
    connect();
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", T.open);
    save(OPEN_KEY, "", sessionStorage);
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
