"""Rating single answers 1–5 in a real browser: listen, score, get the next answer."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.browser.conftest import require_browser, screenshot, watch_errors

require_browser()

pytestmark = pytest.mark.browser


def test_listen_and_score_an_answer(seeded, live_server, page, db):
    errors = watch_errors(page)
    page.goto(f"{live_server}/rate")
    first = page.get_attribute("#rating-task", "data-task")
    for slot in ("prompt", "answer"):
        page.evaluate("s => document.querySelector(`audio[data-slot=\"${s}\"]`).play()", slot)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#rating audio')].every(a => a.ended && a.duration > 0.5)",
        timeout=30_000)
    screenshot(page, "rate")
    page.click("form.scores button.score-4")
    page.wait_for_function(
        f"() => document.querySelector('#rating-task')?.dataset.task !== '{first}'")
    assert "Your score: 4" in page.inner_text("#rating")
    stored = db.execute(text("SELECT score FROM human_ratings WHERE token = :t"),
                        {"t": first}).scalar()
    assert stored == 4
    assert errors == []
