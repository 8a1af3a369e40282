"""Search (handoff.search) through the managers' conversation search and the caretakers'
/console/search, on SQLite and PostgreSQL: words without regard to accents or case, a
tenant's phone number in any form, a tenant's or a request's reference (the tenant's
conversations, not those where the bot quoted one), and residence isolation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import literal, select

from bot.app.runtime import Runtime
from bot.storage.fold import Fold, fold
from bot.storage.models import AuditLog, Conversation, Message, Residence, Tenant
from bot.storage.models import Request as Ticket
from handoff import search
from tests.handoff.conftest import ClientFactory

# The bot's own prompt, which quotes Nadia's reference as an example (data/texts.yml).
BOT_ASKS = (
    "Pour traiter votre demande, j'ai besoin de savoir qui vous êtes : votre numéro de "
    "locataire (ex. L-10231) ou le téléphone de votre bail ?"
)
NADIA_PHONE_FORMS = (
    "06 12 34 56 00",
    "0612345600",
    "+33 6 12 34 56 00",
    "0033 6 12 34 56 00",
    "+33612345600",
    "06.12.34.56.00",
)


@pytest.fixture
async def convs(runtime: Runtime) -> dict[str, int]:
    """Four conversations written straight into the database:
    nadia (Les Fleurs, L-10231) on Telegram — so only her phone on file can find her by phone;
    jean (Le Canal) where the bot quoted "L-10231" and the tenant wrote "L'EVIER";
    aicha (Les Fleurs, "Aïcha") with request R-2026-000777;
    an unidentified web chat."""
    now = runtime.clock()
    async with runtime.db.transaction() as s:
        tenants = {t.reference: t for t in (await s.execute(select(Tenant))).scalars()}
        res = {r.code: r.id for r in (await s.execute(select(Residence))).scalars()}

        def conv(channel: str, address: str, tenant: str | None, residence: str | None) -> Any:
            c = Conversation(
                channel=channel,
                address=address,
                tenant_id=tenants[tenant].id if tenant else None,
                residence_id=res[residence] if residence else None,
                state="closed",
                closed_at=now,
                last_message_at=now,
            )
            s.add(c)
            return c

        nadia = conv("telegram", "777001", "L-10231", "FLEURS")
        jean = conv("sms", "+33612345601", "L-10232", "CANAL")
        aicha = conv("sms", "+33612345604", "L-10235", "FLEURS")
        web = conv("webchat", "web-1", None, None)
        await s.flush()

        def say(c: Conversation, author: str, text: str, minutes: int = 0) -> None:
            s.add(
                Message(
                    conversation_id=c.id,
                    channel=c.channel,
                    direction="in" if author == "tenant" else "out",
                    author=author,
                    text=text,
                    created_at=now - timedelta(minutes=minutes),
                    processed_at=now,  # not for the worker
                )
            )

        say(nadia, "tenant", "Mon évier fuit sous la cuisine", 5)
        say(nadia, "bot", "Je transmets au gardien.", 4)
        say(jean, "bot", BOT_ASKS, 10)
        say(jean, "tenant", "L'EVIER est bouché", 9)
        say(aicha, "tenant", "Le chauffage ne marche plus, cœur brisé", 3)
        say(web, "tenant", "bonjour, une question sur le loyer", 1)
        s.add(
            Ticket(
                kind="repair",
                reference="R-2026-000777",
                conversation_id=aicha.id,
                tenant_id=tenants["L-10235"].id,
                residence_id=res["FLEURS"],
                summary="chauffage en panne",
            )
        )
    return {"nadia": nadia.id, "jean": jean.id, "aicha": aicha.id, "web": web.id}


def manager_ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/console/manager/conversations/(\d+)', html)}


def console_ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/console/c/(\d+)"', html)}


async def manager_finds(client_for: ClientFactory, q: str) -> set[int]:
    c = await client_for("claire")
    r = await c.get("/console/manager/conversations", params={"q": q})
    assert r.status_code == 200
    return manager_ids(r.text)


async def test_words_are_found_without_regard_to_accents_or_case(
    client_for: ClientFactory, convs: dict[str, int]
) -> None:
    c = await client_for("claire")
    cases = {
        "evier": {"nadia", "jean"},
        "ÉVIER": {"nadia", "jean"},
        "évier": {"nadia", "jean"},
        "Evier fuit": {"nadia"},  # every word, anywhere in the conversation
        "evier chauffage": set(),
        "coeur": {"aicha"},  # the ligature "cœur"
        "aicha": {"aicha"},  # the tenant's name "Aïcha"
        "BENMOUSSA chauffage": {"aicha"},  # a name and a word of the messages
        "Haddad": {"nadia"},
        "loyer": {"web"},
        "introuvable": set(),
    }
    for q, expected in cases.items():
        r = await c.get("/console/manager/conversations", params={"q": q})
        assert manager_ids(r.text) == {convs[k] for k in expected}, q
    # The line shown under a result is the message holding the word, accents as written.
    r = await c.get("/console/manager/conversations", params={"q": "evier"})
    assert "Mon évier fuit sous la cuisine" in r.text and "L&#39;EVIER est bouché" in r.text


async def test_a_phone_number_in_any_form_finds_the_tenant(
    client_for: ClientFactory, convs: dict[str, int]
) -> None:
    # Nadia wrote on Telegram: only the phone number on file links her conversation to it.
    for q in NADIA_PHONE_FORMS:
        assert await manager_finds(client_for, q) == {convs["nadia"]}, q
    # Jean's conversation came by SMS from his number.
    assert await manager_finds(client_for, "06 12 34 56 01") == {convs["jean"]}
    assert await manager_finds(client_for, "06 99 99 99 99") == set()


async def test_a_reference_finds_its_tenant_not_the_bots_examples(
    client_for: ClientFactory, convs: dict[str, int]
) -> None:
    # Jean's conversation quotes "L-10231" (the bot's example) but is not Nadia's.
    for q in ("L-10231", "l-10231", "L10231", "l 10231"):
        assert await manager_finds(client_for, q) == {convs["nadia"]}, q
    assert await manager_finds(client_for, "L-10232") == {convs["jean"]}
    # A request's reference finds the conversation it came from.
    for q in ("R-2026-000777", "r-2026-000777", "R2026000777"):
        assert await manager_finds(client_for, q) == {convs["aicha"]}, q
    assert await manager_finds(client_for, "L-99999") == set()


async def test_caretakers_find_only_in_their_residences(
    runtime: Runtime, client_for: ClientFactory, convs: dict[str, int]
) -> None:
    karim = await client_for("karim")  # Les Fleurs: Nadia and Aïcha
    sophie = await client_for("sophie")  # Le Canal: Jean
    cases = [
        (karim, "evier", {"nadia"}),
        (sophie, "evier", {"jean"}),
        (karim, "Dupont", set()),  # Jean, of Le Canal
        (karim, "L-10232", set()),
        (karim, "06 12 34 56 01", set()),
        (karim, "0612345600", {"nadia"}),
        (karim, "R-2026-000777", {"aicha"}),
        (sophie, "R-2026-000777", set()),
        (sophie, "Haddad", set()),
        (sophie, "0033612345600", set()),
        (karim, "loyer", set()),  # nobody's residence: not a caretaker's
    ]
    for client, q, expected in cases:
        r = await client.get("/console/search", params={"q": q})
        assert r.status_code == 200
        assert console_ids(r.text) == {convs[k] for k in expected}, q
        assert "/console/manager/" not in r.text
    # What was searched is in the audit log, with who searched it.
    async with runtime.db.session() as s:
        searches = list(
            (await s.execute(select(AuditLog).where(AuditLog.action == "search"))).scalars()
        )
    assert len(searches) == len(cases)
    assert {a.actor for a in searches} == {"karim", "sophie"}
    # An empty box searches nothing and records nothing.
    r = await karim.get("/console/search")
    assert r.status_code == 200 and console_ids(r.text) == set()


async def test_the_search_page_is_for_signed_in_staff_and_escapes_the_query(
    client_for: ClientFactory, convs: dict[str, int]
) -> None:
    anonymous = await client_for()
    r = await anonymous.get("/console/search", params={"q": "evier"})
    assert r.status_code == 303 and "/console/login" in r.headers["location"]
    karim = await client_for("karim")
    r = await karim.get("/console/search", params={"q": '"><script>x</script>'})
    assert "<script>x</script>" not in r.text
    # The header links to the search from every console page.
    assert 'href="/console/search"' in (await karim.get("/console")).text


async def test_sql_folding_matches_python_folding(runtime: Runtime) -> None:
    samples = ["Évier", "L’ÉVIER à Noël", "cœur ŒUF Æ", "Ça coûte", "déjà vu", "plain ascii"]
    async with runtime.db.session() as s:
        for text in samples:
            folded = (await s.execute(select(Fold(literal(text))))).scalar_one()
            assert folded == fold(text), text
    assert fold("L’ÉVIER à Noël") == "l'evier a noel"


def test_how_a_query_is_read() -> None:
    for q in (*NADIA_PHONE_FORMS, "33612345600"):
        assert search.parse(q) == search.Query(phone="+33612345600"), q
    assert search.parse("L-10231") == search.Query(reference="l10231")
    assert search.parse("R-2026-000777").reference == "r2026000777"
    assert search.parse("  Évier   CUISINE ") == search.Query(words=("evier", "cuisine"))
    assert search.parse("06 12") == search.Query(words=("06", "12"))  # too short for a phone
    assert search.parse("bat 3") == search.Query(words=("bat", "3"))  # a building, not a ref
    assert search.parse("").is_empty()
