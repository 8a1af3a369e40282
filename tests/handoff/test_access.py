"""Who sees which conversation: the rules of handoff.auth, table-tested without I/O."""

from __future__ import annotations

import pytest

from bot.storage.models import Conversation, Residence, StaffUser
from handoff.auth import can_act, can_see, visible_residence_ids

FLEURS, CANAL = Residence(id=1, code="FLEURS", name="F"), Residence(id=2, code="CANAL", name="C")


def staff(role: str, *residences: Residence) -> StaffUser:
    return StaffUser(id=9, login=role, role=role, residences=list(residences))


def conv(residence_id: int | None, priority: int = 0) -> Conversation:
    return Conversation(
        id=1, channel="sms", address="+33", residence_id=residence_id, priority=priority
    )


@pytest.mark.parametrize(
    ("who", "conversation", "sees", "acts"),
    [
        (staff("caretaker", FLEURS), conv(1), True, True),
        (staff("caretaker", FLEURS), conv(2), False, False),
        (staff("caretaker", FLEURS), conv(2, priority=10), False, False),
        (staff("caretaker", FLEURS), conv(None), False, False),
        (staff("oncall", FLEURS), conv(2), False, False),
        (staff("oncall", FLEURS), conv(2, priority=10), True, True),  # emergencies everywhere
        (staff("oncall"), conv(None), True, True),  # nobody else can see an unknown tenant
        (staff("manager"), conv(2), True, False),  # reads everything, acts on nothing
    ],
)
def test_visibility(who: StaffUser, conversation: Conversation, sees: bool, acts: bool) -> None:
    assert can_see(who, conversation) is sees
    assert can_act(who, conversation) is acts


def test_visible_residences() -> None:
    assert visible_residence_ids(staff("caretaker", FLEURS, CANAL)) == {1, 2}
    assert visible_residence_ids(staff("manager")) is None
