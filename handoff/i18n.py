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
    "login.expired": {
        "fr": "Le formulaire a expiré, recommencez.",
        "en": "The form expired, please try again.",
    },
    "login.signed_out": {"fr": "Vous êtes déconnecté.", "en": "You are signed out."},
    # Errors
    "error.forbidden": {
        "fr": "Cette conversation n'est pas dans vos résidences.",
        "en": "This conversation is not in your residences.",
    },
    "error.not_found": {"fr": "Introuvable.", "en": "Not found."},
    "error.csrf": {
        "fr": "Formulaire expiré : rechargez la page et recommencez.",
        "en": "Form expired: reload the page and try again.",
    },
    "error.back": {"fr": "Retour à la file", "en": "Back to the queue"},
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
