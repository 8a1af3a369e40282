"""The terminal channel used by `relais chat`: replies are printed, not sent anywhere."""

from __future__ import annotations

import asyncio
import sys
from typing import ClassVar, TextIO

from bot.core.channel import Channel
from bot.core.types import Outbound, SendResult


class TerminalChannel(Channel):
    name: ClassVar[str] = "terminal"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.delivered: asyncio.Queue[Outbound] = asyncio.Queue()

    async def send(self, outbound: Outbound) -> SendResult:
        self.delivered.put_nowait(outbound)
        return SendResult(provider_id=f"terminal-{outbound.outbox_id}")
