"""No English or data-model word in the French console and manager pages: statuses,
channels and roles go through handoff/messages.yml, never as the value stored.

Each page is rendered in French over demo data (conversations through the real pipeline:
a handoff with a photo, taken, transferred, answered and closed; a request; a message the
bot did not understand), its visible text read (text nodes, and the titles, placeholders,
labels and alternative texts a reader sees), and searched for the words below."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.core.types import Media
from bot.storage.models import Conversation, StaffUser
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # Les Fleurs
JEAN = "+33612345601"  # Le Canal
PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"

# Stored values and English words that have no place in a French page (whole words, any case).
RAW_WORDS = (
    # conversation states, outbox and delivery statuses, request statuses
    "bot",
    "queued",
    "assigned",
    "closed",
    "open",
    "pending",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "received",
    "scheduled",
    "reopened",
    "waiting_contractor",
    "in_progress",
    # channels and roles as stored
    "terminal",
    "webchat",
    "oncall",
    "caretaker",
    "manager",
    # data-model names and Python values
    "tenant",
    "intent",
    "channel",
    "status",
    "priority",
    "handoff",
    "human_request",
    "out_of_scope",
    "none",
    "true",
    "false",
    "null",
    "what",
    "dwelling",
)
RAW = re.compile(r"\b(" + "|".join(re.escape(w) for w in RAW_WORDS) + r")\b", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class VisibleText(HTMLParser):
    """Text a reader sees: no script or style, and not the parts marked as another language
    (the switch to English is written in English on purpose)."""

    VOID: ClassVar[set[str]] = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden)

    def hidden(self) -> bool:
        return any(h for _, h in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        # <code>: an identifier shown as one (a text's key on the facts page), not prose.
        hide = tag in ("script", "style", "title", "code") or a.get("lang") not in (None, "fr")
        if not (hide or self.hidden()):
            self.parts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
        if tag not in self.VOID:
            self.stack.append((tag, hide))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if not self.hidden() and data.strip():
            self.parts.append(data.strip())


def raw_words(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    found = []
    for part in parser.parts:
        part = PLACEHOLDER.sub("", part)  # "{caretaker}" in a text being edited
        found.extend(f"{m.group(0)!r} in {part[:80]!r}" for m in RAW.finditer(part))
    return found


def test_the_checker_finds_raw_words_and_skips_what_is_not_shown() -> None:
    page = (
        '<p>Statut : <b>sent</b></p><a lang="en">English</a><script>var open = 1;</script>'
        '<input placeholder="Terminal"><p title="fine">avec le robot</p>'
    )
    assert raw_words(page) == ["'sent' in 'sent'", "'Terminal' in 'Terminal'"]
    assert raw_words("<p>Prise en charge · envoyée · Chat web</p>") == []
    assert raw_words("<p><code>handoff</code> {caretaker} vous rappelle</p>") == []


@pytest.fixture
async def story(runtime: Runtime, client_for: ClientFactory) -> dict[str, int]:
    """Nadia asks for a person with a photo; Karim takes it, transfers it to on call, who
    answers and closes it; Jean writes twice what the bot does not understand."""
    await send(
        runtime,
        "je veux parler à un conseiller, mon évier fuit",
        address=NADIA,
        media=(Media(url=PHOTO, content_type="image/jpeg"),),
    )
    await send(runtime, "=1+1 salut", address=JEAN)
    await send(runtime, "blablabla", address=JEAN)
    await settled(runtime)
    async with runtime.db.session() as s:
        convs = dict(
            (await s.execute(select(Conversation.address, Conversation.id))).tuples().all()
        )
        oncall = (
            await s.execute(select(StaffUser.id).where(StaffUser.login == "astreinte"))
        ).scalar_one()
    nadia = convs[NADIA]
    karim = await client_for("karim")
    csrf = csrf_of((await karim.get(f"/console/c/{nadia}")).text)
    await karim.post(f"/console/c/{nadia}/take", data={"csrf": csrf})
    await karim.post(f"/console/c/{nadia}/transfer", data={"csrf": csrf, "to": str(oncall)})
    astreinte = await client_for("astreinte")
    csrf = csrf_of((await astreinte.get(f"/console/c/{nadia}")).text)
    await astreinte.post(
        f"/console/c/{nadia}/reply", data={"csrf": csrf, "text": "J'arrive.", "nonce": "n1"}
    )
    await settled(runtime)
    await astreinte.post(f"/console/c/{nadia}/close", data={"csrf": csrf, "resolution": "Réparé"})
    return {"nadia": nadia, "jean": convs[JEAN]}


PAGES = {
    # (who, path) — "{nadia}" and "{jean}" are the story's conversations
    "queue": ("sophie", "/console"),
    "conversation": ("sophie", "/console/c/{jean}"),
    "closed conversation": ("karim", "/console/c/{nadia}"),
    "search": ("karim", "/console/search?q=evier"),
    "history": ("karim", "/console/history"),
    "manager list": ("claire", "/console/manager/conversations?q=&state=closed"),
    "manager list, all": ("claire", "/console/manager/conversations"),
    "transcript": ("claire", "/console/manager/conversations/{nadia}"),
    "dashboard": ("claire", "/console/manager"),
    "nlu": ("claire", "/console/manager/nlu?kind=all"),
    "audit": ("claire", "/console/manager/audit"),
    "facts": ("claire", "/console/manager/facts"),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("page", list(PAGES))
async def test_french_pages_show_no_raw_english_words(
    page: str, story: dict[str, int], client_for: ClientFactory
) -> None:
    who, path = PAGES[page]
    client: httpx.AsyncClient = await client_for(who)
    r = await client.get(path.format(**story))
    assert r.status_code == 200, (page, r.status_code)
    found = raw_words(r.text)
    assert not found, f"{page} ({path}): " + "; ".join(found)
