"""The manager dashboard over the demo history, in headless Chromium, at 360 px and desktop:
the demo banner, weekly trends, the bot's resolution rate, the backlog by kind and age, the
figures per residence and per caretaker, and the residence filter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.ops.demo_history import load_history
from tests.browser import DESKTOP, PHONE, SHOTS, Server, launch, need_chromium, serve_in_thread
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_manager_browser import fits_the_width, kpi, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_csp_violations")]


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("dashboard-browser") / "relais.sqlite3"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", public_url="http://127.0.0.1")
    recording = RecordingChannel("sms")
    runtime = Runtime(settings, engine=KeywordEngine(), channels={"sms": recording})
    app = create_app(settings, runtime=runtime, prepare=True)
    with serve_in_thread(app, runtime) as srv:
        srv.run(load_history(runtime.db, weeks=6, seed=19, timezone=settings.timezone), timeout=60)
        yield srv


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the fixed bar at the top, not across a chart
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text) or 0)


def cell(page: Any, row: str, col: str) -> str:
    return str(page.inner_text(f'{row} td[data-col="{col}"]')).strip()


def check_dashboard(page: Any) -> None:
    assert page.locator("#demo-banner").is_visible()
    assert "Données de démonstration" in page.inner_text("#demo-banner")
    # The bot resolved some of the questions it answered, and says how that is counted.
    rate = kpi(page, "bot-resolved")
    assert rate.endswith("%") and 0 < number(rate) < 100
    if not page.locator("#bot-resolution details[open]").count():
        page.click("#bot-resolution details summary")
    assert "robot a répondu" in page.inner_text("#bot-resolution details")
    # Four weekly charts, eight weeks each, every point labelled.
    for chart in ("#trend-volume", "#trend-wait", "#trend-resolution", "#trend-satisfaction"):
        svg = page.locator(f"{chart} svg.chart:visible")
        assert svg.count() == 1, chart
        assert svg.locator("text.tick").count() >= 8
    assert page.locator("#trend-wait svg.chart:visible circle").count() >= 6
    # The backlog: a row per kind, an age column each, the late ones.
    rows = page.locator("#backlog tbody tr")
    assert rows.count() == 4
    assert number(page.inner_text("#backlog tfoot td.num >> nth=3")) > 0


def test_dashboard_on_demo_history_phone(server: Server, browser: Any) -> None:
    page = sign_in(browser, server, PHONE)
    check_dashboard(page)
    assert page.locator("#by-residence tbody tr").count() == 4
    assert page.locator("#by-caretaker tbody tr").count() >= 4
    assert fits_the_width(page)
    # The charts are drawn for the phone: no text smaller than 9 px on screen.
    smallest = page.evaluate(
        """() => Math.min(...[...document.querySelectorAll('svg.chart text')]
            .filter(t => t.getBoundingClientRect().height > 0)
            .map(t => t.getBoundingClientRect().height))"""
    )
    assert smallest >= 9, smallest
    shot(page, "manager-dashboard-phone")
    # The screen a manager reads each part on, for the review.
    for part, name in (
        ("body", "top"),
        ("h2.section", "trends"),
        ("#bot-resolution", "bot"),
        ("#backlog", "backlog"),
        ("#by-residence", "tables"),
    ):
        page.eval_on_selector(part, "e => window.scrollTo(0, e.offsetTop - 100)")
        page.screenshot(path=str(SHOTS / f"manager-dashboard-{name}-phone.png"))
    assert page.dialogs == []


def test_dashboard_residence_filter_desktop(server: Server, browser: Any) -> None:
    page = sign_in(browser, server, DESKTOP)
    check_dashboard(page)
    all_conversations = number(kpi(page, "conversations"))
    fleurs_row = number(cell(page, 'tr[data-residence="FLEURS"]', "conversations"))
    shot(page, "manager-dashboard-desktop")

    page.select_option("select[name=residence]", "FLEURS")
    page.click("form.period button[type=submit]")
    page.wait_for_url(re.compile(r"residence=FLEURS"))
    assert "Résidence Les Fleurs" in page.inner_text("h1")
    check_dashboard(page)
    # Every figure is the residence's: the same count as its row on the full dashboard.
    assert number(kpi(page, "conversations")) == fleurs_row < all_conversations
    assert page.locator("#by-residence tbody tr").count() == 1
    # Only Fleurs' caretaker and on call worked there.
    people = page.locator("#by-caretaker tbody th").all_inner_texts()
    assert any("Karim Benali" in p for p in people)
    assert not any("Sophie Lefebvre" in p for p in people)
    assert page.locator("select[name=residence]").input_value() == "FLEURS"
    shot(page, "manager-dashboard-residence-desktop")
    assert page.dialogs == []
