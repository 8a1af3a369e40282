"""Who is calling: the client's address (behind a proxy, from the configured header only) and
the web chat's limits per address and for everyone.

Anyone can open the web chat, so its limits cannot be per session (a script makes as many
sessions as it likes): new sessions and messages are counted per client address and in all.
An IPv6 client counts by its /64, which one host usually holds whole.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bot.messaging.ratelimit import RateLimiter, build_rate_limiter

UNKNOWN = "unknown"


def client_address(peer: object, headers: Mapping[str, str], forwarded_header: str | None) -> str:
    """The address to count a client by. With `forwarded_header` set (the header our reverse
    proxy sets), the last address in it, the one the proxy saw; else the socket's peer."""
    raw = ""
    if forwarded_header:
        value = headers.get(forwarded_header.lower()) or headers.get(forwarded_header) or ""
        raw = value.split(",")[-1].strip()
        if forwarded_header.lower() == "forwarded":  # RFC 7239: for=192.0.2.1;proto=https
            pairs = dict(p.strip().partition("=")[::2] for p in raw.split(";"))
            raw = pairs.get("for", "").strip('"')
    if not raw and isinstance(peer, tuple) and peer:
        raw = str(peer[0])
    host = raw.strip()
    if host.startswith("["):  # [2001:db8::1]:443
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # 192.0.2.1:443
        host = host.partition(":")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0
    tripped: bool = False  # the first refusal of its window: worth a flood report


class WebChatLimits:
    """New sessions per address per hour and in all; messages (and uploads) per address per
    minute and in all. Counted in Redis when configured (every gateway shares them)."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        sessions_per_ip_hour: int = 20,
        sessions_per_hour: int = 600,
        messages_per_ip_minute: int = 30,
        messages_per_minute: int = 600,
    ) -> None:
        self._sessions_ip = build_rate_limiter(redis_url, limit=sessions_per_ip_hour, window=3600)
        self._sessions = build_rate_limiter(redis_url, limit=sessions_per_hour, window=3600)
        self._messages_ip = build_rate_limiter(redis_url, limit=messages_per_ip_minute, window=60)
        self._messages = build_rate_limiter(redis_url, limit=messages_per_minute, window=60)

    async def new_session(self, address: str) -> Decision:
        return await self._check(self._sessions_ip, self._sessions, "new", address)

    async def message(self, address: str) -> Decision:
        return await self._check(self._messages_ip, self._messages, "msg", address)

    async def _check(
        self, per_address: RateLimiter, overall: RateLimiter, what: str, address: str
    ) -> Decision:
        # Per address first: one client over its own limit does not use up everyone's.
        for limiter, key in ((per_address, f"{what}:{address}"), (overall, what)):
            verdict = await limiter.hit(f"wclimit:{key}")
            if not verdict.allowed:
                window = limiter.window
                return Decision(
                    allowed=False,
                    retry_after=int(window - time.time() % window) + 1,
                    tripped=verdict.notify,
                )
        return Decision(allowed=True)

    async def close(self) -> None:
        for limiter in (self._sessions_ip, self._sessions, self._messages_ip, self._messages):
            await limiter.close()
