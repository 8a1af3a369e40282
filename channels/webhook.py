"""The landlord's webhook receiver as an outbox sender: JSON signed with `standardwebhooks`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from bot.core.channel import Channel
from bot.core.errors import PermanentSendError, TransientSendError
from bot.core.types import Outbound, SendResult

log = logging.getLogger(__name__)


class WebhookSender(Channel):
    """POSTs an event; 2xx is delivered, 5xx, 408, 429 or no answer is retried by the outbox
    with backoff, another 4xx is final (the receiver refuses it)."""

    name = "webhook"

    def __init__(self, *, url: str, secret: str, timeout: float = 10.0) -> None:
        self.url = url
        self.signer = Webhook(secret)
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, outbound: Outbound) -> SendResult:
        msg_id = outbound.idempotency_key
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(msg_id, now, outbound.text),
        }
        try:
            resp = await self.client.post(
                self.url, content=outbound.text.encode("utf-8"), headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransientSendError(f"webhook: {type(exc).__name__}") from exc
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            after = resp.headers.get("retry-after")
            raise TransientSendError(
                f"webhook: HTTP {resp.status_code}",
                retry_after=float(after) if after and after.isdigit() else None,
            )
        if resp.status_code >= 300:
            raise PermanentSendError(f"webhook: HTTP {resp.status_code}")
        return SendResult(provider_id=msg_id, status="sent")

    async def aclose(self) -> None:
        await self.client.aclose()
