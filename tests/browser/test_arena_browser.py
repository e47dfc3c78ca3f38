"""The arena in a real headless chromium: listen to a battle, vote, see the reveal, see the board.

Runs against a real uvicorn (`live_server`) and a real Celery worker (`worker`), so the vote
travels the whole way: htmx form -> web app -> Postgres -> Celery -> leaderboard snapshot.
Screenshots land in tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import require_browser, screenshot, watch_errors

require_browser()

from playwright.sync_api import Page  # noqa: E402

MODELS = {"alpha", "beta", "gamma"}

pytestmark = pytest.mark.browser


def battle_token(page: Page) -> str:
    token = page.get_attribute("#round section.battle", "data-battle")
    assert token, "the battle section has no data-battle token"
    return token


def play_all_clips(page: Page) -> None:
    """Play the prompt and both answers to their end, as a listener would."""
    for slot in ("prompt", "a", "b"):
        page.evaluate("slot => document.querySelector(`audio[data-slot=\"${slot}\"]`).play()", slot)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#round audio')]
                .every(a => a.ended && a.error === null && a.duration > 0.5)""",
        timeout=30_000,
    )


def test_listen_vote_reveal_and_see_the_leaderboard_update(seeded, live_server, worker, page):
    # A leaderboard tab opened before the vote must update itself, without a reload.
    board = page.context.new_page()
    errors = watch_errors(page)
    board_errors = watch_errors(board)
    board.goto(f"{live_server}/leaderboard")
    board.evaluate("window.__marker = 1")

    page.goto(f"{live_server}/arena")
    audios = page.locator("#round audio")
    assert audios.count() == 3
    token = battle_token(page)
    srcs = {a.get_attribute("data-slot"): a.get_attribute("src") for a in audios.all()}
    assert srcs == {s: f"/arena/audio/{token}/{s}" for s in ("prompt", "a", "b")}
    started = time.monotonic()
    play_all_clips(page)
    assert time.monotonic() - started >= 1.0, "the clips ended faster than they can be heard"

    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="A is better").click()
    reveal = page.locator("#round .reveal")
    reveal.wait_for(state="visible")
    a, b = reveal.locator(".model-a").inner_text(), reveal.locator(".model-b").inner_text()
    assert a != b and {a, b} <= MODELS, (a, b)
    assert "A is better" in reveal.inner_text()
    assert page.evaluate("window.__marker") == 1, "voting reloaded the whole page"
    next_token = battle_token(page)
    assert next_token != token
    assert page.locator("#round audio").count() == 3
    assert page.locator("#round button[name=outcome][value=a]").is_enabled()
    screenshot(page, "arena-after-vote")

    # The open leaderboard tab catches up through its own 5-second htmx refresh.
    board.wait_for_function(
        """([winner, loser]) => {
            const cell = (m, c) => document.querySelector(`tr[data-model="${m}"] td.${c}`);
            const rows = [...document.querySelectorAll('tr[data-model]')];
            const matches = rows.reduce((n, r) => n + Number(r.querySelector('td.matches').textContent), 0);
            return cell(winner, 'wins')?.textContent.trim() === '1'
                && cell(loser, 'losses')?.textContent.trim() === '1' && matches === 2;
        }""",
        arg=[a, b],
        timeout=15_000,
    )
    assert board.evaluate("window.__marker") == 1, "the leaderboard reloaded the whole page"
    elo = {m: float(board.locator(f'tr[data-model="{m}"] td.elo').inner_text()) for m in (a, b)}
    assert elo[a] > 1000 > elo[b], elo
    third = (MODELS - {a, b}).pop()
    assert board.locator(f'tr[data-model="{third}"] td.matches').inner_text().strip() == "0"

    # A fresh load shows the same thing.
    page.goto(f"{live_server}/leaderboard")
    assert page.locator(f'tr[data-model="{a}"] td.wins').inner_text().strip() == "1"
    assert page.locator(f'tr[data-model="{b}"] td.losses').inner_text().strip() == "1"
    screenshot(page, "leaderboard")

    page.goto(f"{live_server}/arena")
    page.locator("#round section.battle").wait_for()
    screenshot(page, "arena")
    assert errors == [] and board_errors == []


def test_a_vote_for_b_is_stored_once_with_outcome_b(seeded, live_server, worker, page, db):
    from sqlalchemy import select

    from app.db.models import Battle, Vote

    errors = watch_errors(page)
    page.goto(f"{live_server}/arena")
    token = battle_token(page)
    play_all_clips(page)
    page.get_by_role("button", name="B is better").click()
    page.locator("#round .reveal").wait_for(state="visible")
    assert "B is better" in page.locator("#round .reveal").inner_text()

    votes = db.execute(
        select(Vote.outcome, Battle.token).join(Battle, Battle.id == Vote.battle_id)
    ).all()
    assert [(v.outcome, v.token) for v in votes] == [("b", token)]
    assert errors == []
