"""Browser tests: Debian's chromium driven by Playwright against a real uvicorn and worker.
Screenshots land in tests/artifacts/ (gitignored)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_browser() -> None:
    """Skip the calling test module when chromium or playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}",
                    allow_module_level=True)
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("browser tests need playwright (pip install -e '.[test]')",
                    allow_module_level=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--autoplay-policy=no-user-gesture-required"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (so a fresh visitor cookie) with a desktop viewport."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def watch_errors(page) -> list[str]:
    """Script errors and failed requests the page runs into from now on.

    The browser's own favicon probe is left out: the app serves no /favicon.ico.
    """
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"failed: {req.method} {req.url}"))
    page.on("response", lambda reply: errors.append(f"{reply.status}: {reply.request.method} {reply.url}")
            if reply.status >= 400 and not reply.url.endswith("/favicon.ico") else None)
    return errors


def screenshot(page, name: str) -> None:
    """Full-page shots at desktop and phone widths, once the audio players know their clips."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
