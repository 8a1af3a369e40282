"""Console texts in French (the default) and English, the language chosen by a cookie.

Templates call `t("key")` (or `t("key", n=3)` for a placeholder). Other console modules add
their own texts with `register({...})` at import time rather than editing this catalogue.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
LANG_COOKIE = "relais_lang"

# key -> {"fr": ..., "en": ...}; placeholders use str.format names.
MESSAGES: dict[str, dict[str, str]] = {
    # Layout
    "app.name": {"fr": "Relais", "en": "Relais"},
    "nav.queue": {"fr": "File d'attente", "en": "Queue"},
    "nav.manager": {"fr": "Pilotage", "en": "Management"},
    "nav.signout": {"fr": "Se déconnecter", "en": "Sign out"},
    "nav.lang_switch": {"fr": "English", "en": "Français"},
    "nav.signed_in_as": {"fr": "Connecté : {name}", "en": "Signed in: {name}"},
    "role.caretaker": {"fr": "gardien", "en": "caretaker"},
    "role.oncall": {"fr": "astreinte", "en": "on call"},
    "role.manager": {"fr": "responsable", "en": "manager"},
    # Login
    "login.title": {"fr": "Connexion", "en": "Sign in"},
    "login.login": {"fr": "Identifiant", "en": "Login"},
    "login.password": {"fr": "Mot de passe", "en": "Password"},
    "login.submit": {"fr": "Se connecter", "en": "Sign in"},
    "login.failed": {
        "fr": "Identifiant ou mot de passe incorrect.",
        "en": "Wrong login or password.",
    },
    "login.locked": {
        "fr": "Trop d'essais manqués : compte bloqué. Réessayez dans {minutes} min "
        "ou appelez votre responsable.",
        "en": "Too many failed attempts: account locked. Try again in {minutes} min "
        "or call your manager.",
    },
    "login.throttled": {
        "fr": "Trop d'essais manqués depuis ce poste. Réessayez dans {minutes} min.",
        "en": "Too many failed attempts from this device. Try again in {minutes} min.",
    },
    "login.expired": {
        "fr": "Le formulaire a expiré, recommencez.",
        "en": "The form expired, please try again.",
    },
    "login.signed_out": {"fr": "Vous êtes déconnecté.", "en": "You are signed out."},
    # Queue
    "queue.title": {"fr": "File d'attente", "en": "Queue"},
    "queue.empty": {
        "fr": "Rien en attente sur vos résidences.",
        "en": "Nothing waiting on your residences.",
    },
    "queue.live": {"fr": "en direct", "en": "live"},
    "queue.offline": {"fr": "reconnexion…", "en": "reconnecting…"},
    "queue.count": {"fr": "{n} en attente", "en": "{n} waiting"},
    "queue.unknown_tenant": {"fr": "non identifié", "en": "not identified"},
    "queue.taken_by": {"fr": "prise par {name}", "en": "taken by {name}"},
    "queue.mine": {"fr": "à vous", "en": "yours"},
    "queue.previously_mine": {"fr": "déjà suivi par vous", "en": "you handled it before"},
    "queue.emergency": {"fr": "URGENCE", "en": "EMERGENCY"},
    "queue.vulnerable": {"fr": "fragile", "en": "vulnerable"},
    "queue.closed_lodge": {
        "fr": "Loge fermée : {residence}",
        "en": "Lodge closed: {residence}",
    },
    "queue.oncall": {"fr": "Astreinte :{who}", "en": "On call:{who}"},
    "queue.reopens": {"fr": "réouverture {when}", "en": "reopens {when}"},
    "queue.waited": {"fr": "attend depuis", "en": "waiting for"},
    # Intents, channels, states
    "intent.emergency": {"fr": "Urgence", "en": "Emergency"},
    "intent.repair": {"fr": "Réparation", "en": "Repair"},
    "intent.nuisance": {"fr": "Trouble de voisinage", "en": "Nuisance"},
    "intent.bulky_waste": {"fr": "Encombrants", "en": "Bulky waste"},
    "intent.question": {"fr": "Question", "en": "Question"},
    "intent.human_request": {"fr": "Demande un humain", "en": "Asks for a person"},
    "intent.out_of_scope": {"fr": "Non compris", "en": "Not understood"},
    "intent.status_request": {"fr": "Suivi de demande", "en": "Request status"},
    "intent.greet": {"fr": "Salutation", "en": "Greeting"},
    "intent.thanks": {"fr": "Remerciement", "en": "Thanks"},
    "intent.goodbye": {"fr": "Au revoir", "en": "Goodbye"},
    "intent.affirm": {"fr": "Oui", "en": "Yes"},
    "intent.deny": {"fr": "Non", "en": "No"},
    "channel.sms": {"fr": "SMS", "en": "SMS"},
    "channel.whatsapp": {"fr": "WhatsApp", "en": "WhatsApp"},
    "channel.telegram": {"fr": "Telegram", "en": "Telegram"},
    "channel.webchat": {"fr": "Chat web", "en": "Web chat"},
    "channel.terminal": {"fr": "Terminal", "en": "Terminal"},
    "state.bot": {"fr": "avec le robot", "en": "with the bot"},
    "state.queued": {"fr": "en attente", "en": "waiting"},
    "state.assigned": {"fr": "prise en charge", "en": "taken"},
    "state.closed": {"fr": "close", "en": "closed"},
    # Conversation
    "conv.back": {"fr": "← File", "en": "← Queue"},
    "conv.take": {"fr": "Je prends", "en": "Take it"},
    "conv.held_by": {"fr": "Prise en charge par {name}", "en": "Taken by {name}"},
    "conv.held_by_me": {"fr": "Vous avez cette conversation", "en": "You hold this conversation"},
    "conv.waiting_since": {"fr": "En attente depuis {waited}", "en": "Waiting for {waited}"},
    "conv.reply": {"fr": "Réponse au locataire", "en": "Reply to the tenant"},
    "conv.reply_via": {"fr": "envoyée par {channel}", "en": "sent by {channel}"},
    "conv.send": {"fr": "Envoyer", "en": "Send"},
    "conv.canned": {"fr": "Réponses types", "en": "Canned replies"},
    "conv.counter": {
        "fr": "{chars} caractères · {segments} SMS",
        "en": "{chars} characters · {segments} SMS",
    },
    "conv.note": {"fr": "Note interne", "en": "Internal note"},
    "conv.note_hint": {
        "fr": "Visible par l'équipe seulement, jamais envoyée au locataire.",
        "en": "Seen by the team only, never sent to the tenant.",
    },
    "conv.add_note": {"fr": "Ajouter la note", "en": "Add the note"},
    "conv.more": {"fr": "Transférer, clore, rendre au robot", "en": "Transfer, close, give back"},
    "conv.transfer": {"fr": "Transférer à", "en": "Transfer to"},
    "conv.transfer_submit": {"fr": "Transférer", "en": "Transfer"},
    "conv.no_colleague": {
        "fr": "Aucun collègue sur cette résidence.",
        "en": "No colleague on this residence.",
    },
    "conv.resolution": {"fr": "Comment est-ce réglé ?", "en": "How was it resolved?"},
    "conv.close": {"fr": "Clore", "en": "Close"},
    "conv.give_back": {"fr": "Rendre au robot", "en": "Give back to the bot"},
    "conv.give_back_hint": {
        "fr": "Le robot répondra de nouveau aux messages du locataire.",
        "en": "The bot will answer the tenant's messages again.",
    },
    "conv.read_only": {
        "fr": "Lecture seule.",
        "en": "Read-only.",
    },
    "conv.tenant": {"fr": "Locataire", "en": "Tenant"},
    "conv.residence": {"fr": "Résidence", "en": "Residence"},
    "conv.building": {"fr": "Bâtiment", "en": "Building"},
    "conv.apartment": {"fr": "Logement", "en": "Apartment"},
    "conv.floor": {"fr": "Étage", "en": "Floor"},
    "conv.phone": {"fr": "Téléphone", "en": "Phone"},
    "conv.channel": {"fr": "Canal", "en": "Channel"},
    "conv.vulnerable": {"fr": "Fragilité", "en": "Vulnerability"},
    "conv.open_requests": {"fr": "Demandes ouvertes", "en": "Open requests"},
    "conv.none": {"fr": "aucune", "en": "none"},
    "conv.request": {"fr": "Demande", "en": "Request"},
    "conv.incident": {"fr": "Problème partagé", "en": "Shared problem"},
    "conv.incident_reports": {
        "fr": "{count} signalement(s) dans le bâtiment",
        "en": "{count} report(s) in the building",
    },
    "conv.incident_is_closed": {"fr": "réglé", "en": "fixed"},
    "conv.incident_close": {
        "fr": "Problème réglé : prévenir les locataires",
        "en": "Fixed: tell the tenants",
    },
    "conv.incident_close_hint": {
        "fr": "Chaque locataire qui l'a signalé reçoit un message, et ses demandes sont closes.",
        "en": "Every tenant who reported it gets a message, and their requests are closed.",
    },
    "action.incident_closed": {
        "fr": "Ce problème est déjà réglé.",
        "en": "This problem is already fixed.",
    },
    "conv.nlu": {"fr": "Lecture du robot", "en": "The bot's reading"},
    "conv.intent": {"fr": "Intention", "en": "Intent"},
    "conv.confidence": {"fr": "Confiance", "en": "Confidence"},
    "conv.entities": {"fr": "Éléments repérés", "en": "Entities"},
    "conv.language": {"fr": "Langue", "en": "Language"},
    "conv.who.tenant": {"fr": "Locataire", "en": "Tenant"},
    "conv.who.bot": {"fr": "Robot", "en": "Bot"},
    "conv.who.system": {"fr": "Système", "en": "System"},
    "conv.who.note": {"fr": "Note de {name}", "en": "Note by {name}"},
    "conv.failed": {"fr": "non remis", "en": "not delivered"},
    "conv.photo": {"fr": "Photo", "en": "Photo"},
    "conv.photo_unavailable": {
        "fr": "Photo reçue (non affichable ici)",
        "en": "Photo received (cannot be shown here)",
    },
    "conv.location": {"fr": "Position partagée", "en": "Shared location"},
    "conv.unknown": {"fr": "Locataire non identifié", "en": "Tenant not identified"},
    "conv.state": {"fr": "État", "en": "State"},
    # Errors
    "error.forbidden": {
        "fr": "Cette conversation n'est pas dans vos résidences.",
        "en": "This conversation is not in your residences.",
    },
    "error.not_found": {"fr": "Introuvable.", "en": "Not found."},
    "error.unavailable": {
        "fr": "Service momentanément indisponible : réessayez dans une minute.",
        "en": "Temporarily unavailable: please try again in a minute.",
    },
    "error.csrf": {
        "fr": "Formulaire expiré : rechargez la page et recommencez.",
        "en": "Form expired: reload the page and try again.",
    },
    "error.back": {"fr": "Retour à la file", "en": "Back to the queue"},
    # Actions refused
    "action.read_only": {
        "fr": "Lecture seule : les responsables ne répondent pas aux locataires.",
        "en": "Read-only: managers do not reply to tenants.",
    },
    "action.held_by": {"fr": "Déjà prise par {name}.", "en": "Already taken by {name}."},
    "action.not_waiting": {
        "fr": "Cette conversation n'attend plus personne.",
        "en": "This conversation is no longer waiting.",
    },
    "action.empty": {"fr": "Le message est vide.", "en": "The message is empty."},
    "action.too_long": {
        "fr": "Message trop long ({limit} caractères au plus).",
        "en": "Message too long ({limit} characters at most).",
    },
    "action.bad_colleague": {
        "fr": "Ce collègue ne travaille pas sur cette résidence.",
        "en": "This colleague does not work on this residence.",
    },
    "action.resolution_needed": {
        "fr": "Indiquez comment la demande a été réglée.",
        "en": "Say how the request was resolved.",
    },
}


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add texts (for pages defined in other modules); a key defined twice is a mistake."""
    for key, texts in messages.items():
        if key in MESSAGES and MESSAGES[key] != texts:
            raise ValueError(f"console text '{key}' is already defined differently")
        MESSAGES[key] = texts


def translate(lang: str, key: str, **values: Any) -> str:
    texts = MESSAGES.get(key)
    if texts is None:
        return key  # visible in the page, so a missing text is noticed rather than hidden
    text = texts.get(lang) or texts.get(DEFAULT) or key
    return text.format(**values) if values else text


def request_language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT)
    return lang if lang in LANGUAGES else DEFAULT


def other_language(lang: str) -> str:
    return "en" if lang == "fr" else "fr"
