"""The live event stream: each staff member receives only what they may see."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.storage.models import Conversation
from handoff.auth import sign_in, sign_out
from handoff.events import stream
from tests.worker.test_pipeline import send, settled

HUMAN = "je veux parler à une personne"
NADIA, JEAN, PIERRE = "+33612345600", "+33612345601", "+33612345605"  # FLEURS, CANAL, CANAL


class FakeRequest:
    """What the stream reads of a request: the app's runtime, the cookie, the connection."""

    def __init__(self, rt: Runtime, session_id: str) -> None:
        self.app = SimpleNamespace(state=SimpleNamespace(runtime=rt))
        self.cookies = {"relais_session": session_id}

    async def is_disconnected(self) -> bool:
        return False


class Events(list[dict[str, Any]]):
    """What a listener received; `until` waits (bounded) for what a test expects."""

    def __init__(self) -> None:
        super().__init__()
        self.connected = asyncio.Event()  # subscribed: what is published from now on arrives
        self.changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.append(event)
        self.changed.set()

    def conversations(self) -> set[int]:
        return {e["conversation_id"] for e in self}

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()


async def listen(rt: Runtime, login: str, heartbeat: float = 0.2) -> tuple[Events, Any, str]:
    result = await sign_in(rt, login, "relais-demo")
    assert result.staff is not None and result.session_id is not None
    events = Events()

    async def run() -> None:
        gen = stream(FakeRequest(rt, result.session_id), rt, result.staff, heartbeat=heartbeat)  # type: ignore[arg-type]
        async for chunk in gen:
            if ": connected" in chunk:
                events.connected.set()
            for line in chunk.splitlines():
                if line.startswith("data: "):
                    events.add(json.loads(line[6:]))

    task = asyncio.create_task(run())
    await asyncio.wait_for(events.connected.wait(), timeout=5)
    return events, task, result.session_id


async def conv_id(rt: Runtime, address: str) -> int:
    async with rt.db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.address == address)))
            .unique()
            .scalar_one()
        )
    return conv.id


async def test_each_person_receives_only_their_residences(runtime: Runtime) -> None:
    karim, k_task, _ = await listen(runtime, "karim")
    sophie, s_task, _ = await listen(runtime, "sophie")
    oncall, o_task, _ = await listen(runtime, "astreinte")
    await send(runtime, HUMAN, address=NADIA, pid="1")
    await send(runtime, HUMAN, address=JEAN, pid="2")
    await send(runtime, "au feu, il y a de la fumée", address=PIERRE, pid="3")
    await settled(runtime)
    nadia, jean, pierre = [await conv_id(runtime, a) for a in (NADIA, JEAN, PIERRE)]
    await karim.until(lambda e: {"handoff", "message", "delivery"} <= {x["type"] for x in e})
    await sophie.until(lambda e: {jean, pierre} <= e.conversations())
    await oncall.until(lambda e: {nadia, jean, pierre} <= e.conversations())
    await asyncio.sleep(0.1)  # nothing else arrives: a short bounded wait for a negative
    for task in (k_task, s_task, o_task):
        task.cancel()
    assert {e["conversation_id"] for e in karim} == {nadia}
    assert {e["conversation_id"] for e in sophie} == {jean, pierre}
    assert {e["conversation_id"] for e in oncall} == {nadia, jean, pierre}
    # Handoffs, messages and delivery receipts alike, and ids only: no tenant text.
    assert {e["type"] for e in karim} >= {"handoff", "message", "delivery"}
    assert all("text" not in e for e in karim + sophie + oncall)


async def test_the_stream_ends_with_the_session(runtime: Runtime) -> None:
    _events, task, session_id = await listen(runtime, "karim", heartbeat=0.05)
    await asyncio.sleep(0.1)  # two heartbeats: the stream stays while the session lives
    assert not task.done()
    result = await sign_in(runtime, "karim", "relais-demo")
    assert result.staff is not None
    await sign_out(runtime, session_id, result.staff)
    await asyncio.wait_for(task, timeout=2)
