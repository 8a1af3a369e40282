"""What the composition root plugs into a runtime besides the channels: the console's jobs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.runtime import Runtime
from bot.storage.models import Conversation
from handoff.escalation import alert_now, run_escalation
from handoff.followup import run_followup


def attach_handoff(rt: Runtime) -> None:
    """Untaken handoffs pushed to staff phones (`Roles.escalate`), and the dialogue's alerts
    sent at once (an emergency, whatever the conversation's state), from the console's
    package."""
    rt.add_background("escalate", lambda stop: run_escalation(rt, stop))
    # Late requests reminded, unanswered "is it fixed?" closed: with the escalations.
    rt.add_background("escalate", lambda stop: run_followup(rt, stop))

    async def alert(s: AsyncSession, conv: Conversation, to: str, reason: str, key: str) -> int:
        sent = await alert_now(s, rt, conv, to=to, reason=reason, key=key)
        if sent:
            rt.outbox.wake()
        return sent

    rt.set_alerter(alert)
