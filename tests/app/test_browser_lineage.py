"""The lineage tree, comparing two pictures, candidates per turn and Stop while refining, in headless Chromium."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from illustrator.plan import ChatMessage, Plan, RefinerState
from illustrator.refiner import Refiner
from illustrator.settings import Settings
from tests.app.conftest import ServeFn, free_port
from tests.app.test_browser import browser  # noqa: F401 - the fixture
from tests.app.test_browser_workspace import LONG, _no_error_pills, _open, _send, _wait_for_pictures, _wait_idle

pytestmark = pytest.mark.browser


def _details(page: Any) -> str:
    return str(page.locator("#picture-details").inner_text())


def _tree(page: Any) -> Any:
    return page.locator("#lineage-tree")


def test_the_lineage_tree_branches_and_compares(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    _send(page, "a mermaid sitting near a waterfall under a starlit sky")
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    _send(page, "make her hair red")
    _wait_for_pictures(page, 2)
    _wait_idle(page)
    page.wait_for_function("document.querySelectorAll('#lineage-tree [data-picture]').length == 2", timeout=LONG)
    assert _tree(page).locator(".current").get_attribute("data-picture") == "2"

    _tree(page).locator("[data-picture='1']").click()  # go back to the first picture: the next message branches
    page.wait_for_function("document.querySelector('#picture-details')?.innerText.includes('continues from')")
    assert "Picture #1" in _details(page)
    page.wait_for_function("document.querySelector('#lineage-tree .current')?.dataset.picture === '1'")
    _send(page, "make her hair blue")
    _wait_for_pictures(page, 3)
    _wait_idle(page)
    assert "from picture #1" in _details(page)
    page.wait_for_function("document.querySelectorAll('#lineage-tree [data-picture]').length == 3", timeout=LONG)
    tree = _tree(page).inner_text()
    assert "▼ 2 branches" in tree and "next message goes on from here" in tree
    assert _tree(page).locator(".current").get_attribute("data-picture") == "3"
    _tree(page).screenshot(path=str(tmp_path / "tree.png"))

    page.get_by_text("Compare two pictures").click()
    for box, label in (("#compare-first", "#2 ·"), ("#compare-second", "#3 ·")):
        page.locator(f"{box} input").click()
        page.locator(f"{box} [role=option]").filter(has_text=label).click()  # this box's list, not the other's
    page.wait_for_function("document.querySelector('#compare-difference')?.innerText.includes('#2 prompt')")
    difference = page.locator("#compare-difference").inner_text()
    assert "#3 prompt" in difference and "Prompt, #2 → #3" in difference
    page.wait_for_function("document.querySelectorAll('#compare img').length >= 2", timeout=LONG)
    page.locator("#compare").screenshot(path=str(tmp_path / "compare.png"))
    page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)
    _no_error_pills(page)


def test_candidates_side_by_side_and_the_chosen_one_goes_on(serve: ServeFn, browser, tmp_path: Path) -> None:  # noqa: F811
    page = _open(browser, serve)
    count = page.locator("#candidates-count input[type=number]")
    count.fill("3")
    count.press("Enter")
    _send(page, "a lighthouse on a cliff at dusk")
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    page.wait_for_function("document.querySelectorAll('#candidates img').length == 3", timeout=LONG)
    assert "3 candidates" in page.locator("#chat").inner_text()
    assert "Picture #1" in _details(page)
    page.wait_for_function("document.querySelectorAll('#lineage-tree [data-picture]').length == 3", timeout=LONG)
    assert _tree(page).inner_text().count("(one of 3 candidates)") == 3
    page.screenshot(path=str(tmp_path / "candidates.png"), full_page=True)

    page.locator("#candidates img").nth(2).click()  # the third one
    page.wait_for_function("document.querySelector('#picture-details')?.innerText.includes('Picture #3')")
    assert page.locator("#chat img").count() == 1  # the reply now shows the chosen one
    page.wait_for_function("document.querySelector('#lineage-tree .current')?.dataset.picture === '3'")
    count.fill("1")
    count.press("Enter")
    _send(page, "make the sky stormy")
    _wait_for_pictures(page, 2)
    _wait_idle(page)
    assert "from picture #3" in _details(page)
    assert page.locator("#candidates").is_hidden()
    page.screenshot(path=str(tmp_path / "chosen.png"), full_page=True)
    _no_error_pills(page)


class ThinkingRefiner(Refiner):
    """A test-only slow refiner: it thinks until the test lets it answer (with the real refiner's plan)."""

    name = "thinking"

    def __init__(self, real: Refiner) -> None:
        self.real = real
        self.thinking, self.answer = threading.Event(), threading.Event()

    def refine(self, conversation: Sequence[ChatMessage], state: RefinerState) -> Plan:
        self.thinking.set()
        self.answer.wait(60)
        return self.real.refine(conversation, state)


@pytest.fixture
def slow_refiner_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ThinkingRefiner]]:
    """The app (offline preset) whose refiner thinks until the test says so."""
    from illustrator.wiring import wire
    from ui.server import launch

    settings = Settings(data_dir=data_dir, offline=True, port=free_port())
    app = wire(settings)
    app.models.wait(timeout=120)
    refiner = ThinkingRefiner(app.models.refiner())
    monkeypatch.setattr(app.models, "refiner", lambda: refiner)
    served = launch(app, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{settings.port}/", refiner
    finally:
        refiner.answer.set()
        served.close()


def test_stop_while_the_refiner_thinks(slow_refiner_app: tuple[str, ThinkingRefiner], browser, tmp_path: Path) -> None:  # noqa: F811
    url, refiner = slow_refiner_app
    page = _open(browser, lambda: url)
    refiner.answer.set()  # the first turn answers at once
    _send(page, "a lighthouse on a cliff at dusk")
    _wait_for_pictures(page, 1)
    _wait_idle(page)
    before = _details(page)

    refiner.thinking.clear()
    refiner.answer.clear()
    _send(page, "now a cathedral, every stone of it")
    assert refiner.thinking.wait(30)  # the refiner is thinking: nothing is drawn yet
    page.locator("#stop-button").click()
    page.wait_for_function(  # heard at once, while the refiner still thinks
        "document.querySelector('#send-waiting')?.innerText.includes('Stopping')", timeout=30_000
    )
    page.screenshot(path=str(tmp_path / "stopping.png"), full_page=True)
    refiner.answer.set()
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('Stopped.')", timeout=LONG)
    _wait_idle(page)
    page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
    chat = page.locator("#chat").inner_text()
    assert "now a cathedral, every stone of it" in chat  # the writer's message is kept
    assert page.locator("#chat img").count() == 1  # nothing was drawn
    assert _details(page) == before  # and the picture is as it was
    _no_error_pills(page)
