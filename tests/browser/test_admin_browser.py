"""The admin page in a real browser: log in with the token, start inference for a model, and
watch the job's progress bar fill while the workers call the model (no reload)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser, screenshot, watch_errors
from tests.conftest import ADMIN, ADMIN_TOKEN, dataset_zip
from tests.fakes.openai_server import running
from tests.fakes.server import Control

require_browser()

pytestmark = pytest.mark.browser


def test_start_inference_and_watch_the_progress_bar_fill(client, live_server, worker, page):
    control = Control(default="slow")  # each answer takes 3 s, so progress is visible
    with running(control) as url:
        client.post("/api/v1/datasets", headers=ADMIN, data={"name": "d"},
                    files={"file": ("d.zip", dataset_zip(["p1", "p2", "p3"]), "application/zip")})
        model = client.post("/api/v1/models", headers=ADMIN, json={
            "name": "omni-lab", "organisation": "Lab",
            "adapter": {"kind": "openai_chat_audio", "base_url": url, "model": "fake",
                        "max_concurrency": 1},
        }).json()
        page.goto(f"{live_server}/admin")
        page.fill("#token", "wrong")
        page.click("form.login button")
        assert "That is not the admin token" in page.inner_text("main")
        errors = watch_errors(page)  # from here on, nothing may fail
        page.fill("#token", ADMIN_TOKEN)
        page.click("form.login button")
        row = page.locator(f"#model-{model['id']}")
        assert "omni-lab" in row.inner_text() and "openai_chat_audio" in row.inner_text()
        page.evaluate("window.notReloaded = true")

        row.get_by_role("button", name="Run inference").click()
        bar = page.locator("li.job progress").first
        bar.wait_for()
        assert bar.get_attribute("max") == "3"
        page.wait_for_function(
            "() => { const v = +document.querySelector('li.job progress').value;"
            " return v >= 1 && v < 3 }", timeout=20_000)  # part way, shown live
        page.wait_for_function(
            "() => document.querySelector('li.job progress').value == 3", timeout=30_000)
        assert "done" in page.inner_text("li.job .status")
        assert page.evaluate("window.notReloaded") is True
        assert "3" == page.locator(f"#model-{model['id']} td").nth(2).inner_text()
        screenshot(page, "admin")
    assert errors == []
