"""Story mode as a writer uses it: paste a 3-stanza poem, review the beats, draw them all, export an EPUB."""

from __future__ import annotations

import zipfile
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


CHAPTER = (Path(__file__).parent / "texts" / "chapter.txt").read_text(encoding="utf-8")  # ~2 pages, 526 words


def _rows(page) -> list[str]:
    return page.locator("#story-beats tbody tr").all_inner_texts()


def _beat(page, number: int) -> None:
    box = page.locator("#story-beat-number input")
    box.fill(str(number))
    box.press("Enter")
    # the beat is chosen once its prompt shows in the box (a click before that would act on the beat chosen before)
    page.wait_for_function(
        """n => {
            const cell = document.querySelector(`#story-beats tbody tr[data-beat="${n}"] td:nth-child(3)`);
            const box = document.querySelector('#story-beat-prompt textarea');
            return cell && box && box.value.trim() === cell.innerText.trim();
        }""",
        arg=number,
        timeout=30_000,
    )


def _click_and_wait_for_rows(page, button: str, changed) -> list[str]:
    before = _rows(page)
    page.locator(button).click()
    page.wait_for_function(
        "before => JSON.stringify([...document.querySelectorAll('#story-beats tbody tr')].map(r => r.innerText))"
        " !== JSON.stringify(before)",
        arg=before,
        timeout=30_000,
    )
    after = _rows(page)
    assert changed(before, after), (before, after)
    return after


def test_a_chapter_is_reviewed_drawn_stopped_redrawn_chosen_and_exported(
    serve: ServeFn,
    browser,  # noqa: F811
    data_dir: Path,
    tmp_path: Path,
) -> None:
    from pypdf import PdfReader

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(serve())
    page.get_by_role("tab", name="Story").click()
    page.locator("#story-passage textarea").fill(CHAPTER)
    page.locator("#story-propose").click()
    _status_says(page, "beats (the")
    proposed = _rows(page)
    assert len(proposed) >= 6 and "Chapter Two" in proposed[0]

    # review: drop the last beat, merge 1 with 2, split 1 again at a sentence, move beat 2 down
    _beat(page, len(proposed))
    rows = _click_and_wait_for_rows(page, "#story-drop", lambda b, a: len(a) == len(b) - 1)
    _beat(page, 1)
    rows = _click_and_wait_for_rows(
        page, "#story-merge", lambda b, a: len(a) == len(b) - 1 and a[1] == b[2].replace("3", "2", 1)
    )
    words = page.locator("#story-split-at textarea, #story-split-at input").first
    words.fill("A cart rattled past")
    words.press("Tab")  # the value is the box's once it loses focus
    _beat(page, 1)
    rows = _click_and_wait_for_rows(page, "#story-split", lambda b, a: len(a) == len(b) + 1 and "A cart" in a[1])
    _beat(page, 2)
    rows = _click_and_wait_for_rows(page, "#story-down", lambda b, a: a[2].split("\t", 1)[1] == b[1].split("\t", 1)[1])
    total = len(rows)

    # Draw all, with progress; Stop in the middle
    page.locator("#story-draw").click()
    _status_says(page, f"Drawing beat 2 of {total}")
    page.locator("#story-stop").click()
    _status_says(page, "Draw all goes on")  # the summary, once the table shows what was drawn
    rows = _rows(page)
    drawn = [i for i, row in enumerate(rows) if "#" in row.split("\t")[-1]]
    assert 1 <= len(drawn) < total, rows  # what was drawn is kept; the rest waits
    left = next(i for i in range(total) if i not in drawn)

    # a stopped (or not yet drawn) beat is redrawn alone
    _beat(page, left + 1)
    page.locator("#story-redraw").click()
    # (the summary after Stop may already say "Drew 1 beat.": wait for the beat's own row)
    page.wait_for_function(
        'n => document.querySelector(`#story-beats tbody tr[data-beat="${n}"] td:last-child`)'
        "?.innerText.includes('#')",
        arg=left + 1,
        timeout=120_000,
    )
    _status_says(page, "Drew 1 beat.")
    rows = _rows(page)
    assert "#" in rows[left].split("\t")[-1] and len([r for r in rows if "#" in r.split("\t")[-1]]) == len(drawn) + 1

    # beat 1 drawn twice: the writer picks the first picture for the manuscript
    _beat(page, 1)
    page.locator("#story-redraw").click()
    page.wait_for_function(
        "document.querySelector('#story-beats tbody tr')?.innerText.includes('2 drawn')", timeout=120_000
    )
    page.wait_for_function("document.querySelectorAll('#story-beat-pictures img').length == 2", timeout=30_000)
    page.locator("#story-beat-picture input").click()
    options = page.get_by_role("option")
    earlier = options.filter(has_text="drawn earlier for this beat")
    label = earlier.inner_text()
    earlier.click()
    chosen = int(label.split(",")[0].strip().lstrip("#"))
    _status_says(page, f"Beat 1 shows picture #{chosen}")
    assert f"#{chosen} (2 drawn)" in _rows(page)[0]
    page.screenshot(path=str(tmp_path / "story-chapter.png"), full_page=True)

    # export the PDF: the chapter's text, the chosen picture of each drawn beat, the credits
    page.locator("#story-format").get_by_text("PDF", exact=True).click()
    page.locator("#story-export").click()
    page.locator("#story-export-file a").first.wait_for(timeout=60_000)
    pdf = next((data_dir / "exports" / "manuscripts").rglob("*.pdf"))
    reader = PdfReader(pdf)
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "Then we go today" in text and "The name was her mother's." in text and "Credits" in text
    assert sum(len(p.images) for p in reader.pages) == len(drawn) + 1

    # and the zip's HTML, looked at in Chromium
    page.locator("#story-format").get_by_text("Zip (HTML, EPUB and PDF)").click()
    page.locator("#story-export").click()
    page.wait_for_function("document.querySelector('#story-export-file')?.innerText.includes('.zip')", timeout=60_000)
    archive = next((data_dir / "exports" / "manuscripts").rglob("*.zip"))
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(tmp_path / "zip")
    index = next((tmp_path / "zip").rglob("index.html"))
    assert f"images/picture-{chosen}.png" in index.read_text(encoding="utf-8")
    html = browser.new_page(viewport={"width": 900, "height": 1200})
    html.goto(index.as_uri())
    widths = html.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == len(drawn) + 1 and all(w > 0 for w in widths)
    html.screenshot(path=str(tmp_path / "chapter-html.png"), full_page=True)
    print("screenshots:", tmp_path / "story-chapter.png", tmp_path / "chapter-html.png")
