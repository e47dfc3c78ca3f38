"""Annotator accounts in a real browser: an admin makes an account on the admin page and copies
its invite link; the annotator opens it, chooses a password, votes, logs out and logs in again."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.browser.conftest import (ARTIFACTS, DESKTOP, require_browser, screenshot,
                                    watch_errors)
from tests.conftest import ADMIN_TOKEN

require_browser()

pytestmark = pytest.mark.browser


def test_invite_link_password_and_login(seeded, live_server, browser, page, db):
    page.goto(f"{live_server}/admin")
    page.fill("#token", ADMIN_TOKEN)
    page.click("form.login button")
    page.click("text=Annotators and quality control")
    page.fill("#username", "lee")
    page.click("#new-annotator button")
    link = page.input_value("#invite-url")
    assert link.startswith(live_server + "/invite/")
    assert "invite only" in page.inner_text("#accounts")

    context = browser.new_context(viewport=DESKTOP)  # the annotator's own browser
    lee = context.new_page()
    lee.set_default_timeout(15_000)
    errors = watch_errors(lee)
    lee.goto(link)
    assert "Welcome, lee" in lee.inner_text("h1")
    lee.fill("#password", "lee's long password")
    lee.click("form.login button")
    lee.wait_for_url(f"{live_server}/arena")
    assert lee.locator("[data-battle]").count() == 1  # a battle to vote on
    assert lee.get_by_role("button", name="Log out").is_visible()

    lee.get_by_role("button", name="Log out").click()
    lee.wait_for_url(f"{live_server}/login")
    assert errors == []
    lee.fill("#username", "lee")
    lee.fill("#password", "not my password")
    lee.click("form.login button")
    assert "username or the password is wrong" in lee.inner_text("main")
    lee.fill("#password", "lee's long password")
    lee.click("form.login button")
    lee.wait_for_url(f"{live_server}/arena")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lee.screenshot(path=str(ARTIFACTS / "login-arena-desktop.png"), full_page=True)

    lee.goto(link)  # the invite link was used up
    assert "already been used" in lee.inner_text("main")
    context.close()

    page.goto(f"{live_server}/admin/annotators")
    assert "set" in page.inner_text("#accounts") and "never" not in page.inner_text("#accounts")
    assert "lee" in page.inner_text("#quality")
    screenshot(page, "admin-annotators")
    logged_in = db.execute(text(
        "SELECT last_login_at IS NOT NULL FROM annotators WHERE username = 'lee'")).scalar()
    assert logged_in is True
