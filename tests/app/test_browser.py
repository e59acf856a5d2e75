"""A writer's view: the page in headless Chromium, two messages, two pictures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.app.conftest import ServeFn

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (never a browser that Playwright downloads)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("ILLUSTRATOR_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed; `make browser` installs it")
        pytest.skip("Chromium is not installed; `make browser` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _send(page, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#send-button").click()


def test_two_messages_show_two_pictures(serve: ServeFn, browser, tmp_path: Path) -> None:
    url = serve()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.locator("#chat-input textarea").wait_for()

    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    chat_pictures = page.locator("#chat img")
    chat_pictures.first.wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#chat img').length >= 1")

    _send(page, "make her hair red")
    page.wait_for_function("document.querySelectorAll('#chat img').length >= 2", timeout=60_000)
    page.wait_for_function("document.querySelector('#picture-details')?.innerText.includes('edit')", timeout=60_000)

    assert chat_pictures.count() == 2
    assert page.locator("#current-picture img").count() == 1
    assert "red hair" in page.locator("#chat").inner_text().lower()
    assert "placeholder" in page.locator("#model-status").inner_text().lower()
    page.screenshot(path=str(tmp_path / "two-turns.png"), full_page=True)
