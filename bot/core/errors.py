"""The error hierarchy, and the one place it maps to HTTP statuses."""

from __future__ import annotations


class RelaisError(Exception):
    """Base of the errors Relais raises on purpose; `status` is the HTTP answer."""

    status: int = 500
    reason: str = "internal error"

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or self.reason)
        if reason:
            self.reason = reason


class BadSignature(RelaisError):
    status = 403
    reason = "bad signature"


class BadSecret(BadSignature):
    status = 401
    reason = "bad secret"


class Malformed(RelaisError):
    status = 400
    reason = "malformed payload"


class TooLarge(RelaisError):
    status = 413
    reason = "payload too large"


class Unsupported(RelaisError):
    """A known event Relais does not handle: answered 200 so the provider stops retrying."""

    status = 200
    reason = "event ignored"


class Unavailable(RelaisError):
    """The database or the bus is briefly unreachable: 503, the provider retries."""

    status = 503
    reason = "temporarily unavailable"


class SendError(Exception):
    """Delivery to a provider failed."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class TransientSendError(SendError):
    """Worth retrying: a 5xx, a 429, a timeout."""


class PermanentSendError(SendError):
    """Not worth retrying: a bad number, a blocked bot, an opted-out address."""
