"""Security headers of the console's answers: no framing, no caching, a strict CSP.

Applied to every path under /console (pages, fragments, the event stream, downloads) by a
plain ASGI wrapper, so that streamed answers pass through untouched. The web-chat widget
(/webchat/...) is not concerned: it is meant to be embedded in the landlord's site.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/console"
# The console's own CSS, JS and the GSM-7 table: the same for everyone, cacheable.
STATIC = ("/console/static/", "/console/gsm7.js")
# Provider media shown directly in a conversation (Twilio's, and its CDN after a redirect).
MEDIA_HOSTS = ("https://api.twilio.com", "https://*.twiliocdn.com")


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def content_security_policy(media_origins: Iterable[str] = ()) -> str:
    """No inline script or style, no plugin, nothing loaded from elsewhere but provider
    photos, forms posted only here, and no page may frame the console (clickjacking)."""
    images = " ".join(dict.fromkeys(["'self'", *MEDIA_HOSTS, *media_origins]))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "font-src 'self'",
            # The installable app (issue 19): its manifest and its service worker, from here.
            "manifest-src 'self'",
            "worker-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


class ConsoleHeaders:
    """ASGI middleware adding the console's security headers to its answers."""

    def __init__(self, app: ASGIApp, *, media_origins: Iterable[str] = ()) -> None:
        self.app = app
        csp = content_security_policy(media_origins).encode()
        self.common = [
            (b"content-security-policy", csp),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            # Conversation ids in the URL are not handed to the photo hosts.
            (b"referrer-policy", b"no-referrer"),
        ]
        self.names = {name for name, _ in self.common} | {b"cache-control"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(STATIC)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in self.names
                ]
                headers += self.common
                if static:
                    # The console's own CSS and JS: the same for everyone, cacheable.
                    headers.append((b"cache-control", b"public, max-age=3600"))
                else:
                    # Pages show tenants' messages: never kept by a browser or a proxy.
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
