"""The public leaderboard in a real browser, at desktop and phone widths: the table, sorting,
a slice view, the plots; and the same without JavaScript."""
# ruff: noqa: F811  (the imported fixture `arena` is a parameter of the tests)

from __future__ import annotations

import pytest

from app.config import get_settings
from app.leaderboard.service import compute, standard_slices
from tests.browser.conftest import DESKTOP, PHONE, require_browser, screenshot, watch_errors
from tests.conftest import ADMIN
from tests.leaderboard.test_slices import arena, insert_votes, random_votes  # noqa: F401

require_browser()

pytestmark = pytest.mark.browser

DETAILS = {
    "m-a": {"organisation": "Speech Lab", "sector": "industry", "backbone": "Qwen-2.5 7B",
            "speech_encoder": "Whisper-large-v3", "speech_decoder": "FlowMatch + BigVGAN"},
    "m-b": {"organisation": "University of Somewhere", "sector": "academia",
            "backbone": "LLaMA-3.1 8B", "speech_encoder": "Whisper-large-v3 + Adaptor",
            "speech_decoder": "NAR + HiFi-GAN"},
    "m-c": {"organisation": "Voice Co", "sector": "industry"},
    "m-d": {"organisation": "Open Group", "sector": "academia", "backbone": "Qwen-2 0.5B"},
}


@pytest.fixture
def board(client, db, arena):
    """Four described models; m-d gets only a handful of votes (provisional); two refreshes,
    so that the ratings have a history."""
    for name, fields in DETAILS.items():
        assert client.patch(f"/api/v1/models/{arena[name]}", headers=ADMIN, json=fields).status_code == 200
    a, b, c, d = arena.values()
    strong = {k: v for k, v in arena.items() if k != "m-d"}
    insert_votes(db, random_votes(strong, 90, seed=5))
    compute(db, standard_slices(db), get_settings().leaderboard)
    db.commit()
    insert_votes(db, random_votes(strong, 90, seed=6) + [("e1", d, a, "b", "ann")] * 3)
    compute(db, standard_slices(db), get_settings().leaderboard)
    db.commit()
    return arena


def names(page) -> list[str]:
    return page.eval_on_selector_all("table.standings tbody tr", "rows => rows.map(r => r.dataset.model)")


def test_the_public_page_at_desktop_and_phone_widths(board, live_server, page):
    errors = watch_errors(page)
    page.goto(f"{live_server}/leaderboard")
    assert names(page)[-1] == "m-d"  # provisional: listed last
    provisional = page.locator('table.standings tr[data-model="m-d"]')
    assert "provisional" in provisional.get_attribute("class")
    grey = provisional.locator("td.rating").evaluate("td => getComputedStyle(td).color")
    ink = page.locator('table.standings tr[data-model="m-a"] td.rating').evaluate(
        "td => getComputedStyle(td).color")
    assert grey != ink
    headers = page.locator("table.standings thead th").all_inner_texts()
    for header in ("Rank", "Model", "Organisation", "Rating", "95% CI", "Elo", "Win rate",
                   "Matches", "Human votes", "Judge votes"):
        assert any(h.startswith(header) for h in headers), header

    # the plots are drawn, with a mark per model
    for figure in ("plot-ratings", "plot-win-rate", "plot-battles", "plot-history"):
        box = page.locator(f"#{figure} svg").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50, figure
    assert page.locator("#plot-ratings g.rating-row").count() == 4
    assert page.locator("#plot-win-rate g.cell").count() == 16
    assert page.locator("#plot-history polyline").count() == 4
    assert page.locator("table.architectures tbody[data-sector=industry] tr[data-name]").count() == 2
    screenshot(page, "leaderboard-public")

    # sorting: a click on a column, a second click reverses it
    page.click("table.standings th[data-sort=name] a")
    page.wait_for_url("**sort=name**")
    assert names(page) == ["m-a", "m-b", "m-c", "m-d"]
    page.click("table.standings th[data-sort=name] a")
    page.wait_for_url("**order=desc**")
    assert names(page) == ["m-d", "m-c", "m-b", "m-a"]
    page.click("table.standings th[data-sort=matches] a")
    page.wait_for_url("**sort=matches**")
    matches = [int(t) for t in page.locator("table.standings td.matches").all_inner_texts()]
    assert matches == sorted(matches, reverse=True) and matches[-1] == 3

    # a slice: the education domain, as judged by people
    page.click("nav.slices [data-filter=domain] a:text-is('education')")
    page.wait_for_url("**domain=education**")
    page.click("nav.slices [data-filter=rater] a:text-is('humans')")
    page.wait_for_url("**rater=human**")
    assert "education" in page.inner_text("h1") and "humans" in page.inner_text("h1")
    votes = int(page.inner_text("#methodology dd.votes"))
    judged = [int(t) for t in page.locator("table.standings td.judge-votes").all_inner_texts()]
    humans = [int(t) for t in page.locator("table.standings td.human-votes").all_inner_texts()]
    assert judged == [0, 0, 0, 0] and sum(humans) == 2 * votes > 0
    assert page.get_attribute("a[type='text/csv']", "href") == \
        "/api/v1/leaderboard?domain=education&rater=human&format=csv"
    screenshot(page, "leaderboard-slice")

    # on a phone the page itself never scrolls sideways; the table scrolls in its box
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("table.standings td.rating").first.is_visible()
    page.set_viewport_size(DESKTOP)
    assert errors == []


def test_the_page_works_without_javascript(board, live_server, browser):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/leaderboard?level=L3")
        assert page.locator("nav.slices [data-filter=level] a[aria-current=true]").inner_text() == "L3"
        page.click("table.standings th[data-sort=wins] a")
        page.wait_for_url("**sort=wins**")
        wins = [int(t) for t in page.locator("table.standings td.wins").all_inner_texts()]
        assert wins == sorted(wins, reverse=True)
        assert page.locator("#plot-win-rate svg g.cell").count() == 16
        reply = page.goto(f"{live_server}/leaderboard?level=L7")
        assert reply.status == 422 and "L7" in page.inner_text("main")
    finally:
        context.close()


def test_the_page_refreshes_itself_when_the_table_changes(board, live_server, page, db):
    errors = watch_errors(page)
    page.goto(f"{live_server}/leaderboard")
    page.evaluate("window.notReloaded = true")
    before = int(page.inner_text("#methodology dd.votes"))
    polls = []
    page.on("response", lambda reply: polls.append(reply.status) if "/leaderboard" in reply.url
            and reply.request.headers.get("hx-request") else None)
    page.wait_for_timeout(6_000)
    assert 204 in polls and 200 not in polls  # polled, and nothing changed
    a, b, *_ = board.values()
    insert_votes(db, [("e1", a, b, "a", "ann")] * 2)
    compute(db, standard_slices(db), get_settings().leaderboard)  # the worker's refresh
    db.commit()
    page.wait_for_function(f"() => document.querySelector('#methodology dd.votes').textContent == '{before + 2}'",
                           timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    assert errors == []
