"""Story mode as a writer uses it: paste a 3-stanza poem, review the beats, draw them all, export an EPUB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import ServeFn
from tests.app.test_browser import browser  # noqa: F401 - Debian's Chromium through Playwright
from tests.illustrator.test_stories import POEM

pytestmark = pytest.mark.browser


def _status_says(page, text: str, timeout: int = 120_000) -> None:
    page.wait_for_function(f"document.querySelector('#story-status')?.innerText.includes({text!r})", timeout=timeout)


def test_a_poem_becomes_beats_pictures_and_an_epub(
    serve: ServeFn,
    browser,  # noqa: F811
    data_dir: Path,
    tmp_path: Path,
) -> None:
    from ebooklib import ITEM_DOCUMENT, ITEM_IMAGE, epub

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(serve())
    page.get_by_role("tab", name="Story").click()
    page.locator("#story-passage textarea").fill(POEM)
    page.locator("#story-propose").click()
    _status_says(page, "3 beats")
    rows = page.locator("#story-beats tbody tr")
    assert rows.count() == 3 and "lighthouse keeper" in rows.nth(0).inner_text()

    # review: beat 2 in a named artist's style, beat 3 continues from beat 2's picture
    page.locator("#story-beat-number input").fill("2")
    page.locator("#story-beat-number input").press("Enter")
    prompt = page.locator("#story-beat-prompt textarea")
    page.wait_for_function("document.querySelector('#story-beat-prompt textarea')?.value.startsWith('At dawn')")
    prompt.fill("a red sail at dawn on a grey sea, in the style of Claude Monet")
    page.locator("#story-save-prompt").click()
    page.wait_for_function(
        "document.querySelector('#story-beats')?.innerText.includes('in the style of Claude Monet')", timeout=30_000
    )
    page.locator("#story-beat-number input").fill("3")
    page.locator("#story-beat-number input").press("Enter")
    page.locator("#story-continue").click()
    page.wait_for_function("document.querySelector('#story-beats')?.innerText.includes('yes')", timeout=30_000)

    page.locator("#story-draw").click()
    _status_says(page, "Drew 3 beats")
    page.wait_for_function("document.querySelectorAll('#story-pictures img').length == 3", timeout=30_000)
    assert "#3" in page.locator("#story-beats tbody tr").nth(2).inner_text()
    page.screenshot(path=str(tmp_path / "story.png"), full_page=True)

    page.locator("#story-export").click()  # EPUB is the default format
    page.locator("#story-export-file a").first.wait_for(timeout=60_000)
    exported = list((data_dir / "exports" / "manuscripts").rglob("*.epub"))
    assert len(exported) == 1
    book = epub.read_epub(str(exported[0]))
    assert len(list(book.get_items_of_type(ITEM_IMAGE))) == 3
    documents = {item.get_name(): item.get_content().decode() for item in book.get_items_of_type(ITEM_DOCUMENT)}
    assert "and gulls wheel through the swinging light." in documents["chapter-1.xhtml"]
    assert "Style after Claude Monet" in documents["credits.xhtml"]

    page.get_by_role("tab", name="Chat").click()  # each beat is an ordinary turn of the session
    page.wait_for_function("document.querySelectorAll('#chat img').length == 3", timeout=30_000)
    assert "Beat 2: a red sail at dawn" in page.locator("#chat").inner_text()
    assert "Style after Claude Monet" in page.locator("#chat").inner_text()
