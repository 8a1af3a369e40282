"""What the composition root plugs into a runtime besides the channels: the console's jobs."""

from __future__ import annotations

from bot.app.runtime import Runtime
from handoff.escalation import run_escalation


def attach_handoff(rt: Runtime) -> None:
    """Untaken handoffs pushed to staff phones (`Roles.escalate`), from the console's package."""
    rt.add_background("escalate", lambda stop: run_escalation(rt, stop))
