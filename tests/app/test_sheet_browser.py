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


def _chosen(page, label: str) -> None:
    page.locator("#sheet-attribute input").click()
    page.get_by_role("option", name=label).click()


def test_the_sheet_is_edited_in_place_locked_in_chat_and_comes_back_with_the_address(
    serve: ServeFn,
    browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(serve())
    page.locator("#chat-input textarea").wait_for()
    _send(page, "a mermaid with long black hair sitting on a rock", 1)
    _sheet_says(page, "long black hair")

    # 1. a value changed in place: the panel says what the next picture will change; Redraw draws it
    _chosen(page, "mermaid · hair")
    value = page.locator("#sheet-value input, #sheet-value textarea").first
    page.wait_for_function(
        "[...document.querySelectorAll('#sheet-value input, #sheet-value textarea')].some(e => e.value)",
        timeout=30_000,
    )
    assert value.input_value() == "long black hair"
    value.fill("long silver hair")
    page.locator("#sheet-set").click()
    _sheet_says(page, "hair: long black → long silver")
    page.screenshot(path=str(tmp_path / "sheet-edited.png"), full_page=True)
    page.locator("#sheet-redraw").click()
    page.wait_for_function("document.querySelectorAll('#chat img').length >= 2", timeout=90_000)
    page.wait_for_function(
        "document.querySelector('#chat')?.innerText.includes('hair: long black → long silver')", timeout=60_000
    )
    _sheet_says(page, "long silver hair")
    page.wait_for_function(  # drawn now: nothing is pending any more
        "!document.querySelector('#story-sheet-view')?.innerText.includes('Changed since')", timeout=60_000
    )

    # 2. a lock said in chat: a one-line reply, no new picture, the panel shows the lock
    page.locator("#chat-input textarea").fill("keep her hair")
    page.locator("#send-button").click()
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('Nothing was redrawn')", timeout=60_000)
    _sheet_says(page, "🔒")
    assert page.locator("#chat img").count() == 2
    page.screenshot(path=str(tmp_path / "sheet-locked-in-chat.png"), full_page=True)

    # 3. the session reopened from its address: the sheet and the current picture come back
    page.wait_for_function("new URL(location.href).searchParams.get('session')", timeout=30_000)
    reopened = browser.new_page(viewport={"width": 1500, "height": 1300})
    reopened.goto(page.url)
    _sheet_says(reopened, "long silver hair")
    _sheet_says(reopened, "🔒")
    reopened.wait_for_function("document.querySelector('#current-picture img')?.naturalWidth > 0", timeout=30_000)
    reopened.screenshot(path=str(tmp_path / "sheet-reopened.png"), full_page=True)

    # 4. the share page shows each picture's sheet
    reopened.get_by_text("This session").first.click()
    reopened.locator("#share-session").click()
    reopened.wait_for_function(
        "document.querySelector('#share-link textarea, #share-link input')?.value.includes('/share/')",
        timeout=30_000,
    )
    link = reopened.locator("#share-link textarea, #share-link input").first.input_value()
    shared = browser.new_page(viewport={"width": 1000, "height": 1300})
    shared.goto(link)
    text = shared.locator("body").inner_text()
    assert "mermaid: long black hair; sitting on a rock" in text
    assert "mermaid: long silver hair; sitting on a rock" in text
    shared.screenshot(path=str(tmp_path / "share-page.png"), full_page=True)
