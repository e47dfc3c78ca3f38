"""The arena in a real headless chromium: listen to a battle, vote, see the reveal, see the board.

Runs against a real uvicorn (`live_server`) and a real Celery worker (`worker`), so the vote
travels the whole way: htmx form -> web app -> Postgres -> Celery -> leaderboard snapshot.
Screenshots land in tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import (ARTIFACTS, PHONE, require_browser, screenshot,
                                   watch_errors)

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
    # The next battle is locked again until its answers are heard.
    assert page.locator("#round button[name=outcome][value=a]").is_disabled()
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


# --- the vote page: listening lock, keyboard, skip, report, play log, phone ---------------


def vote_buttons_disabled(page: Page) -> list[bool]:
    return page.eval_on_selector_all("#round form.vote button", "bs => bs.map(b => b.disabled)")


def play_to_end(page: Page, slot: str) -> None:
    page.evaluate("slot => document.querySelector(`#round audio[data-slot=\"${slot}\"]`).play()", slot)
    page.wait_for_function(
        "slot => document.querySelector(`#round audio[data-slot=\"${slot}\"]`).ended", arg=slot,
        timeout=30_000)


def play_row(db, token: str):
    from sqlalchemy import text

    db.expire_all()
    return db.execute(text(
        "SELECT p.* FROM battle_plays p JOIN battles b ON b.id = p.battle_id WHERE b.token = :t"),
        {"t": token}).mappings().one()


def test_the_vote_is_locked_until_both_answers_are_heard_then_cast_by_keyboard(
        seeded, live_server, worker, page, db):
    errors = watch_errors(page)
    page.goto(f"{live_server}/arena")
    token = battle_token(page)
    assert "Rhythm control" in page.locator("#round .guideline").inner_text()
    assert vote_buttons_disabled(page) == [True, True]
    page.keyboard.press("2")  # locked: the key does nothing
    page.keyboard.press("Space")  # plays the prompt
    page.wait_for_function("() => !document.querySelector('audio[data-slot=prompt]').paused")
    play_to_end(page, "a")
    assert vote_buttons_disabled(page) == [True, True], "one answer heard is not enough"
    # Jumping to the end of B does not count as hearing it.
    page.evaluate("""() => { const b = document.querySelector('#round audio[data-slot=b]');
                             b.currentTime = b.duration - 0.1; return b.play(); }""")
    page.wait_for_function("() => document.querySelector('#round audio[data-slot=b]').ended")
    assert vote_buttons_disabled(page) == [True, True], "seeking to the end unlocked the vote"
    play_to_end(page, "b")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#round form.vote button')].every(b => !b.disabled)")
    assert page.locator("#round .clip[data-clip=b] .heard").is_visible()

    page.keyboard.press("2")
    reveal = page.locator("#round .reveal")
    reveal.wait_for(state="visible")
    assert "B is better" in reveal.inner_text()
    assert {reveal.locator(".model-a").inner_text(), reveal.locator(".model-b").inner_text()} <= MODELS
    assert page.locator("#round .votes-today").inner_text() == "1"
    assert battle_token(page) != token and vote_buttons_disabled(page) == [True, True]

    row = play_row(db, token)
    assert row["ending"] == "voted" and row["a_ended"] and row["b_ended"]
    assert row["a_heard"] > 0.95 and row["b_heard"] > 0.95
    assert row["listened_s"] >= 2.5, row["listened_s"]  # A and B, each 1.5 s
    assert errors == []


def test_play_events_reach_the_log_without_a_vote(seeded, live_server, page, db):
    errors = watch_errors(page)
    page.goto(f"{live_server}/arena")
    token = battle_token(page)
    with page.expect_response(lambda reply: reply.url.endswith(f"/arena/battles/{token}/plays")):
        play_to_end(page, "a")
    row = play_row(db, token)
    assert row["a_ended"] and row["a_heard"] > 0.95 and row["ending"] is None
    assert row["b_heard"] == 0
    assert errors == []


def test_skip_by_keyboard_and_report_a_broken_clip(seeded, live_server, page, db):
    errors = watch_errors(page)
    page.goto(f"{live_server}/arena")
    first = battle_token(page)
    page.keyboard.press("s")
    page.locator("#round .notice").wait_for(state="visible")
    second = battle_token(page)
    assert second != first and play_row(db, first)["ending"] == "skipped"

    page.get_by_text("Report a broken clip").click()
    page.locator("#round .report input[value=a]").check()
    page.locator("#round .report input[name=note]").fill("only his")
    page.keyboard.press("s")  # typing in the form is typing, not a shortcut
    assert battle_token(page) == second
    page.locator("#round .report button[type=submit]").click()
    page.wait_for_function(f"() => document.querySelector('#round section.battle')"
                           f"?.dataset.battle !== {second!r}")
    assert "answer A was reported as broken" in page.locator("#round .notice").inner_text()
    row = play_row(db, second)
    assert (row["ending"], row["report_slot"], row["report_note"]) == ("reported", "a",
                                                                       "only hiss")
    assert errors == []


def test_the_vote_page_fits_a_phone(seeded, live_server, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{live_server}/arena")
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "arena-vote-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#round .guideline", "#round audio[data-slot=a]",
                     "#round form.vote button[value=b]", "#round button.skip"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector
    buttons = page.locator("#round form.vote button").all()
    assert all(b.bounding_box()["height"] >= 44 for b in buttons)  # a thumb's target
    assert not page.locator("#round .shortcuts").is_visible()  # no keyboard on a phone
    assert errors == []
    context.close()
