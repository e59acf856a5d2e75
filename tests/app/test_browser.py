"""A writer's view: the page in headless Chromium, two messages, two pictures."""

from __future__ import annotations

import os
import re
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


def _wait_for_pictures(page, count: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#chat img').length >= {count}", timeout=60_000)


def _details_say(page, text: str) -> None:
    page.wait_for_function(f"document.querySelector('#picture-details')?.innerText.includes({text!r})", timeout=60_000)


def test_branch_from_an_earlier_picture_in_the_gallery(serve: ServeFn, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(serve())
    page.locator("#chat-input textarea").wait_for()
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    _send(page, "make her hair red")
    _wait_for_pictures(page, 2)
    _details_say(page, "Picture #2")

    page.get_by_role("tab", name="Gallery").click()
    page.wait_for_function("document.querySelectorAll('#gallery img').length == 2", timeout=30_000)
    page.locator("#gallery img").last.click()  # newest first: #1 is the last
    page.wait_for_function(
        "document.querySelector('#gallery-details')?.innerText.includes('Picture #1')", timeout=30_000
    )
    page.screenshot(path=str(tmp_path / "gallery.png"))
    page.locator("#continue-from").click()

    page.locator("#chat-input textarea").wait_for(state="visible")
    _details_say(page, "continues from picture #1")
    _send(page, "make her hair blue")
    _wait_for_pictures(page, 3)
    _details_say(page, "Picture #3")
    details = page.locator("#picture-details").inner_text()
    assert "edit" in details and "from picture #1" in details and "from picture #2" not in details
    assert re.search(r"Picture #3 · edit[^\n]*, from picture #1\b", page.locator("#chat").inner_text())
    page.screenshot(path=str(tmp_path / "branched.png"))


def test_a_share_link_opens_that_session_only_in_a_fresh_browser(serve: ServeFn, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(serve())
    page.locator("#chat-input textarea").wait_for()
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    page.locator("#new-session").click()
    page.wait_for_function("document.querySelectorAll('#chat img').length == 0")
    _send(page, "a lighthouse on a cliff at dusk")
    _wait_for_pictures(page, 1)
    page.wait_for_function("document.querySelectorAll('#session-list tbody tr').length == 2", timeout=30_000)

    page.locator("#session-list tbody tr", has_text="mermaid").click()  # newest first: the mermaid is second
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('mermaid')", timeout=30_000)
    page.locator("#session-panel").get_by_text("This session").click()
    page.locator("#share-session").click()
    link_box = page.locator("#share-link input, #share-link textarea").first
    page.wait_for_function(
        "(document.querySelector('#share-link input') || document.querySelector('#share-link textarea'))"
        "?.value.includes('/share/')",
        timeout=30_000,
    )
    link = link_box.input_value()
    page.screenshot(path=str(tmp_path / "shared.png"))

    friend = browser.new_context(viewport={"width": 900, "height": 900})  # no cookies, no state of the writer's
    shared = friend.new_page()
    response = shared.goto(link)
    assert response is not None and response.status == 200
    # The share page's CSP forbids eval, so wait with the load event rather than a polled JS expression.
    shared.wait_for_load_state("load")
    assert all(width > 0 for width in shared.locator("img").evaluate_all("images => images.map(i => i.naturalWidth)"))
    text = shared.locator("body").inner_text()
    assert "a mermaid sitting near a waterfall under a starlit sky" in text and "Picture #1" in text
    assert "lighthouse" not in text.lower()
    assert shared.locator("img").count() == 1 and shared.locator("a, form, input, textarea").count() == 0
    shared.screenshot(path=str(tmp_path / "friend.png"), full_page=True)
    friend.close()
