"""Attention checks in a real browser: an annotator who picks the known-bad answer of the gold
battles is flagged, the admin sees why on the annotators page, and clears the flag."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from tests.browser.conftest import require_browser, screenshot, watch_errors
from tests.browser.test_arena_browser import battle_token, play_all_clips
from tests.conftest import ADMIN, ADMIN_TOKEN, ROOT, _stop, _wait_http, free_port

require_browser()

pytestmark = pytest.mark.browser


@pytest.fixture
def gold_server(arena_env) -> Iterator[str]:
    """The web app, in its own uvicorn, serving nothing but attention checks and flagging after
    two of them."""
    port = free_port()
    env = os.environ | arena_env | {"ARENA_ARENA__REQUIRE_LISTENING": "true",
                                    "ARENA_ARENA__GOLD_SHARE": "1",
                                    "ARENA_ARENA__GOLD_MIN_VOTES": "2",
                                    "ARENA_ARENA__GOLD_MIN_ACCURACY": "0.5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz", process)
    yield url
    _stop(process)


def test_an_annotator_failing_attention_checks_is_flagged(seeded, gold_server, browser, page, db):
    made = httpx.post(f"{gold_server}/api/v1/annotators", headers=ADMIN,
                      json={"username": "kit", "password": "kit's password"})
    assert made.status_code == 201, made.text
    kit = browser.new_context().new_page()
    kit.set_default_timeout(15_000)
    errors = watch_errors(kit)
    kit.goto(f"{gold_server}/login")
    kit.fill("#username", "kit")
    kit.fill("#password", "kit's password")
    kit.click("form.login button")
    kit.wait_for_url(f"{gold_server}/arena")

    for _ in range(2):
        token = battle_token(kit)
        bad = db.execute(text("SELECT gold_bad_slot FROM battles WHERE token = :t"),
                         {"t": token}).scalar()
        db.commit()
        assert bad in ("a", "b")
        play_all_clips(kit)
        kit.keyboard.press("1" if bad == "a" else "2")  # prefers the known-bad answer
        kit.wait_for_function(f"() => document.querySelector('#round section.battle')"
                              f"?.dataset.battle !== {token!r}")
        assert "an attention check" in kit.locator(f"#round .reveal .model-{bad}").inner_text()
    assert errors == []
    kit.context.close()

    page.goto(f"{gold_server}/admin")
    page.fill("#token", ADMIN_TOKEN)
    page.click("form.login button")
    page.goto(f"{gold_server}/admin/annotators")
    row = page.locator("#quality tr", has_text="kit")
    assert "flagged" in row.inner_text()
    assert "answered 0 of 2 attention checks right" in row.inner_text()
    screenshot(page, "admin-annotators-flagged")

    row.get_by_role("button", name="Clear flag").click()  # reversible: the votes count again
    page.wait_for_load_state()
    row = page.locator("#quality tr", has_text="kit")
    assert row.get_by_role("button", name="Flag").is_visible()
    flagged = db.execute(text("SELECT r.flagged_at FROM raters r JOIN annotators a "
                              "ON a.rater_id = r.id WHERE a.username = 'kit'")).scalar()
    assert flagged is None
