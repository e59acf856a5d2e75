"""The Story sheet panel in headless Chromium: it follows the turns, and a clicked lock holds against a wish."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import ServeFn
from tests.app.test_browser import browser  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def _send(page, text: str, pictures: int) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#send-button").click()
    page.wait_for_function(f"document.querySelectorAll('#chat img').length >= {pictures}", timeout=90_000)


def _sheet_says(page, text: str) -> None:
    page.wait_for_function(f"document.querySelector('#story-sheet-view')?.innerText.includes({text!r})", timeout=60_000)


def test_the_story_sheet_follows_the_turns_and_a_clicked_lock_holds(
    serve: ServeFn,
    browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(serve())
    page.locator("#chat-input textarea").wait_for()

    _send(page, "a mermaid with long black hair sitting on a rock", 1)
    _sheet_says(page, "long black hair")
    _send(page, "make her hair red", 2)
    _sheet_says(page, "long red hair")
    assert "hair: long black → long red" in page.locator("#chat").inner_text()

    page.locator("#sheet-attribute input").click()
    page.get_by_role("option", name="mermaid · hair").click()
    page.locator("#sheet-lock").click()
    _sheet_says(page, "🔒")

    _send(page, "make her hair blonde", 3)
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('locked')", timeout=60_000)
    _sheet_says(page, "long red hair")
    assert "blonde" not in page.locator("#story-sheet-view").inner_text()
    page.screenshot(path=str(tmp_path / "story-sheet.png"), full_page=True)
