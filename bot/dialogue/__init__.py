"""The dialogue: what the bot answers, collects, opens and hands off, as a pure policy.

`from bot.dialogue import decide, Decision, Turn, ...` is the interface the pipeline uses.
"""

from bot.dialogue.policy import (
    FAQ_CONFIDENT,
    FAQ_SUGGEST,
    MAX_FAILURES,
    decide,
    due_at,
    on_silence,
    preview_answer,
    preview_bulky,
)
from bot.dialogue.reading import emergency_kind, find_identity, find_rating, format_date
from bot.dialogue.types import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    PRIORITY_VULNERABLE,
    PRIORITY_VULNERABLE_ESSENTIAL,
    AlertSpec,
    Decision,
    HandoffSpec,
    IncidentView,
    RequestMove,
    RequestSpec,
    RequestUpdate,
    RequestView,
    ResidenceView,
    TenantView,
    Turn,
)

__all__ = [
    "FAQ_CONFIDENT",
    "FAQ_SUGGEST",
    "MAX_FAILURES",
    "PRIORITY_EMERGENCY",
    "PRIORITY_NORMAL",
    "PRIORITY_VULNERABLE",
    "PRIORITY_VULNERABLE_ESSENTIAL",
    "AlertSpec",
    "Decision",
    "HandoffSpec",
    "IncidentView",
    "RequestMove",
    "RequestSpec",
    "RequestUpdate",
    "RequestView",
    "ResidenceView",
    "TenantView",
    "Turn",
    "decide",
    "due_at",
    "emergency_kind",
    "find_identity",
    "find_rating",
    "format_date",
    "on_silence",
    "preview_answer",
    "preview_bulky",
]
