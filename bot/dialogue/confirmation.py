"""The answer to "Votre demande R-… est marquée réparée. Est-ce bien le cas ?": pure.

State keys: `asked: repair_confirmation` and `confirming` (the request's reference), set by
`bot.lifecycle` when a request is marked done. Yes closes the request and asks the
satisfaction question; no reopens it to the caretaker with the tenant's words; anything else is
read as a message of its own (the question is dropped, the request stays done until the
follow-up job closes it).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from bot.dialogue.texts import Texts
from bot.dialogue.types import (
    PRIORITY_NORMAL,
    PRIORITY_VULNERABLE,
    Decision,
    HandoffSpec,
    RequestMove,
    Turn,
)

ASKED = "repair_confirmation"

# Read on the text without accents, in lower case. "Not fixed" wins over "yes": "oui mais ça
# fuit encore" is a no.
_NO = re.compile(
    r"\b(non|no|nope|pas (du tout|encore|vraiment|repare|regle|fini)|toujours pas|"
    r"(ne|n) ?(marche|fonctionne|chauffe) (toujours |plus |pas)|ca (fuit|coule|goutte) "
    r"(encore|toujours)|encore (en panne|casse|une fuite)|rien (n a|na) change|not (fixed|yet)|"
    r"still (broken|not))\b"
)
_YES = re.compile(
    r"^\W*(oui|ouai[s]?|yes|yep|ok|okay|d'?accord|c'? ?(est )?(bon|bien|ok|repare|regle)|"
    r"parfait|nickel|impeccable|tout (est )?(bon|ok)|repare|regle|ca (marche|fonctionne)|"
    r"it (is|s) fixed|fixed|all good|merci)\b"
)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower().replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def read_answer(text: str, intent: str) -> bool | None:
    """True (fixed), False (not fixed) or None (not an answer)."""
    plain = _plain(text).strip()
    if _NO.search(plain):
        return False
    if _YES.search(plain):
        return True
    if intent == "affirm":
        return True
    if intent == "deny":
        return False
    return None


def awaiting(turn: Turn) -> bool:
    return turn.state.get("asked") == ASKED and bool(turn.state.get("confirming"))


def decide_confirmation(turn: Turn, texts: Texts) -> Decision | None:
    """The decision when the tenant answers the question, else None (the policy goes on,
    with the question dropped from the state). Emergencies are never read as an answer."""
    if not awaiting(turn) or turn.parse.intent == "emergency":
        return None
    answer = read_answer(turn.text, turn.parse.intent)
    if answer is None:
        return None
    lang = turn.language if turn.language in ("fr", "en") else "fr"
    reference = str(turn.state["confirming"])
    state = {k: v for k, v in turn.state.items() if k not in ("asked", "confirming")}
    if answer:
        state["asked"] = "satisfaction"
        return Decision(
            replies=[
                texts.get("repair_confirmed", lang, reference=reference),
                texts.get("satisfaction_question", lang),
            ],
            state=state,
            intent="affirm",
            request_update=RequestMove(reference, "closed"),
        )
    residence = turn.tenant.residence if turn.tenant else None
    caretaker = (residence.caretaker_name if residence else "") or texts.get("team_name", lang)
    vulnerable = bool(turn.tenant and turn.tenant.vulnerable)
    return Decision(
        replies=[texts.get("repair_not_fixed", lang, reference=reference, caretaker=caretaker)],
        state=state,
        intent="deny",
        request_update=RequestMove(reference, "reopened", turn.text.strip()[:1000]),
        handoff=HandoffSpec(
            "repair", "not_fixed", PRIORITY_VULNERABLE if vulnerable else PRIORITY_NORMAL
        ),
    )


def without_question(turn: Turn) -> Turn:
    """The turn with the confirmation question dropped: its answer was something else."""
    if turn.state.get("asked") != ASKED:
        return turn
    state = {k: v for k, v in turn.state.items() if k not in ("asked", "confirming")}
    return dataclasses.replace(turn, state=state)
