"""What a writer trips over, in headless Chromium: one-turn overrides, errors as messages, typing while drawing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.app.conftest import ServeFn
from tests.app.test_browser import browser  # noqa: F401 - the fixture

Browser = Any

pytestmark = pytest.mark.browser

LONG = 120_000


def _open(chromium: Browser, serve: ServeFn) -> Any:
    page = chromium.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(serve())
    page.locator("#chat-input textarea").wait_for()
    return page


def _send(page, text: str) -> None:  # noqa: ANN001
    page.locator("#chat-input textarea").fill(text)
    page.locator("#send-button").click()


def _wait_for_pictures(page, count: int) -> None:  # noqa: ANN001
    page.wait_for_function(f"document.querySelectorAll('#chat img').length >= {count}", timeout=LONG)


def _wait_idle(page) -> None:  # noqa: ANN001
    page.wait_for_function("!document.querySelector('#send-button')?.disabled", timeout=LONG)


def _no_error_pills(page) -> None:  # noqa: ANN001
    assert page.get_by_text("Error", exact=True).count() == 0


def _toast(page, text: str) -> None:  # noqa: ANN001
    page.get_by_text(text).first.wait_for(timeout=30_000)


def _controls(page) -> None:  # noqa: ANN001
    page.get_by_text("Controls for the next turn").click()
    page.locator("#pin").wait_for()


def test_overrides_are_for_one_turn_unless_pinned(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    _wait_idle(page)

    _controls(page)
    page.get_by_role("radio", name="New picture").check()
    page.get_by_role("textbox", name="Use this prompt instead of the refined one").fill("a red fox in the snow")
    _send(page, "make her hair blue")
    _wait_for_pictures(page, 2)
    _wait_idle(page)
    _toast(page, "back to automatic")
    replies = page.locator("#chat").inner_text()
    assert "Here is a new picture, drawn with the action you chose under the controls and your own prompt." in replies
    assert "Prompt:** a red fox in the snow" in page.locator("#picture-details").inner_text() or (
        "a red fox in the snow" in page.locator("#picture-details").inner_text()
    )
    assert page.get_by_role("radio", name="Let the refiner decide").is_checked()
    assert page.get_by_role("textbox", name="Use this prompt instead of the refined one").input_value() == ""
    page.screenshot(path=str(tmp_path / "reset.png"), full_page=True)

    page.locator("#pin input").check()
    page.locator("#seed input").fill("1234")
    _send(page, "make the sky stormy")
    _wait_for_pictures(page, 3)
    _wait_idle(page)
    page.wait_for_function("document.querySelector('#picture-details')?.innerText.includes('seed 1234')")
    assert page.locator("#seed input").input_value() == "1234"  # pinned: kept for the next turn
    _no_error_pills(page)


def test_errors_are_messages_and_stop_leaves_the_workspace(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    page.locator("#send-button").click()  # an empty message
    _toast(page, "Please type a message first.")
    _no_error_pills(page)

    _send(page, "a lighthouse on a cliff at dusk")
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    before = page.locator("#picture-details").inner_text()
    assert "Picture #1" in before

    _controls(page)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (32, 32), "red").save(plain)
    with page.expect_file_chooser() as chooser:
        page.locator("#import-picture").click()
    chooser.value.set_files(str(plain))
    _toast(page, "carries no generation parameters")

    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("these are my notes, not a picture")
    page.locator("#start-picture input[type=file]").set_input_files(str(not_a_picture))
    _toast(page, "is not a picture that can be read")
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    _no_error_pills(page)
    assert page.locator("#start-picture img").count() == 0  # taken out again
    assert page.locator("#picture-details").inner_text() == before
    assert page.locator("#chat-input textarea").is_editable()

    # A long turn, stopped while drawing: "Stopped." and the picture from before.
    page.locator("#seed input").fill("5")
    page.get_by_role("spinbutton", name="Steps (0 = the model's default)").fill("50")
    _send(page, "now a cathedral, every stone of it")
    page.wait_for_function("document.querySelector('#current-picture')?.innerText.includes('step')", timeout=LONG)
    page.locator("#stop-button").click()  # while drawing (while refining: tests/app/test_browser_lineage.py)
    page.screenshot(path=str(tmp_path / "stopping.png"), full_page=True)
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('Stopped.')", timeout=LONG)
    _wait_idle(page)
    page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
    assert page.locator("#picture-details").inner_text() == before
    assert page.locator("#chat img").count() == 1
    _no_error_pills(page)


def test_a_message_typed_while_drawing_waits_and_is_sent_next(
    serve: ServeFn,
    browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = _open(browser, serve)
    _controls(page)
    page.get_by_role("spinbutton", name="Steps (0 = the model's default)").fill("6")
    _send(page, "a cathedral, every stone of it")
    page.wait_for_function("document.querySelector('#send-button')?.disabled", timeout=LONG)
    assert "Send comes back when this picture is done" in page.locator("#send-waiting").inner_text()
    box = page.locator("#chat-input textarea")
    box.fill("a small chapel")
    box.press("Enter")  # Send is off: the message stays in the box
    page.screenshot(path=str(tmp_path / "waiting.png"), full_page=True)
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    assert box.input_value() == "a small chapel"
    page.locator("#send-button").click()
    _wait_for_pictures(page, 2)
    _wait_idle(page)
    assert box.input_value() == ""
    assert "a small chapel" in page.locator("#chat").inner_text()


def test_each_session_has_its_own_address(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    page.wait_for_function("new URL(location.href).searchParams.get('session')", timeout=30_000)
    mermaid = page.url
    page.locator("#new-session").click()
    page.wait_for_function("!new URL(location.href).searchParams.get('session')", timeout=30_000)
    _send(page, "a lighthouse on a cliff at dusk")
    _wait_for_pictures(page, 1)
    page.wait_for_function(f"location.href !== {mermaid!r} && location.search.includes('session=')", timeout=30_000)

    page.reload()  # a reload reopens the session in the address
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('lighthouse')", timeout=30_000)
    bookmark = browser.new_page(viewport={"width": 1400, "height": 1000})
    bookmark.goto(mermaid)  # and so does a bookmark
    bookmark.wait_for_function("document.querySelectorAll('#chat img').length == 1", timeout=30_000)
    assert "mermaid" in bookmark.locator("#chat").inner_text()
    assert "mermaid" in bookmark.locator("#picture-details").inner_text()
    # The chat's icons that do nothing useful here are gone.
    assert bookmark.locator("#chat button[aria-label='Clear']").is_hidden()
    assert bookmark.locator("#chat button[aria-label='Share']").count() == 0 or (
        bookmark.locator("#chat button[aria-label='Share']").first.is_hidden()
    )
    bookmark.screenshot(path=str(tmp_path / "bookmark.png"), full_page=True)


def test_redraw_with_the_edited_prompt(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    seed = page.locator("#picture-details").inner_text().split("seed ")[1].split(" ")[0]
    prompt = page.locator("#picture-prompt textarea")
    assert "mermaid" in prompt.input_value()
    prompt.fill("a mermaid with silver scales near a waterfall")
    page.locator("#redraw").click()  # no new message typed
    _wait_for_pictures(page, 2)
    _wait_idle(page)
    details = page.locator("#picture-details").inner_text()
    assert "Picture #2" in details and "silver scales" in details and f"seed {seed} " in details
    assert "your own prompt." in page.locator("#chat").inner_text()  # the reply says what was drawn
    page.screenshot(path=str(tmp_path / "redrawn.png"), full_page=True)
