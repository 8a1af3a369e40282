"""Which media URLs Relais stores, shows and redirects to: the providers' media hosts only.

A media URL comes from a provider's payload and later lands in a staff member's browser (an
`<img src>`, a redirect). Only https URLs on the hosts each provider documents for its media are
kept; `file:`, `javascript:`, plain http, IP literals, credentials in the URL, other ports and
look-alike hosts (`api.twilio.com.evil.example`) are refused. Our own uploads are a path on this
server (`/channels/webchat/media/<owner>/<name>`), never a URL.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Twilio: MMS/WhatsApp media are `https://api.twilio.com/2010-04-01/Accounts/AC…/Messages/MM…/
# Media/ME…`; fetching one redirects to Twilio's media CDN.
TWILIO_MEDIA_HOSTS = frozenset({"api.twilio.com", "media.twiliocdn.com", "mms.twiliocdn.com"})
# Telegram: `https://api.telegram.org/file/bot<token>/<file_path>`. It holds the bot token, so
# such a URL is never shown nor redirected to (the console downloads by file_id).
TELEGRAM_FILE_HOSTS = frozenset({"api.telegram.org"})
PROVIDER_HOSTS = TWILIO_MEDIA_HOSTS | TELEGRAM_FILE_HOSTS
OWN_MEDIA_PREFIX = "/channels/webchat/media/"
_OWN_MEDIA = re.compile(r"/channels/webchat/media/[0-9a-f]{16}/[0-9a-f]{32}\.(?:jpg|png|gif|webp)")
_MAX_URL = 2048


def provider_url(url: object, hosts: frozenset[str] = PROVIDER_HOSTS) -> str | None:
    """`url` when it is an https URL on one of `hosts` (default port, no credentials), else None."""
    if not isinstance(url, str) or len(url) > _MAX_URL or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed netloc or port
        return None
    if parts.scheme != "https" or port not in (None, 443) or "@" in parts.netloc:
        return None
    host = (parts.hostname or "").rstrip(".")
    return url if host in hosts else None


def own_media(url: object) -> bool:
    """Whether `url` is one of our own uploads' paths (the web chat's)."""
    return isinstance(url, str) and _OWN_MEDIA.fullmatch(url) is not None


def redirectable(url: object, api_base: str = "") -> str | None:
    """The URL staff may be sent to for a photo: a Twilio media URL only, on Twilio's media
    hosts or at the Twilio API this gateway is configured with (`twilio_api_base`: an
    operator's setting, never a payload's; the console's CSP lets the same origin in)."""
    found = provider_url(url, TWILIO_MEDIA_HOSTS)
    if found is None and api_base and _same_origin(url, api_base):
        return str(url)
    return found


def _same_origin(url: object, base: str) -> bool:
    if not isinstance(url, str) or len(url) > _MAX_URL or not url.isprintable():
        return False
    try:
        got, want = urlsplit(url), urlsplit(base)
        ports = (got.port, want.port)
    except ValueError:  # a malformed netloc or port
        return False
    return (
        got.scheme in ("http", "https")
        and "@" not in got.netloc
        and (got.scheme, got.hostname, ports[0]) == (want.scheme, want.hostname, ports[1])
        and bool(got.hostname)
    )
