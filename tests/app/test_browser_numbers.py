"""The workspace's names, in headless Chromium: per-session picture numbers, "from your picture", the gallery's
sessions and order, local times, download names, favourites and the login page."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from illustrator.settings import Settings
from tests.app.conftest import free_port
from tests.app.test_browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

LONG = 120_000
ZONE = "Asia/Tokyo"  # UTC+9 all year: the page's times must move nine hours from the server's UTC


@pytest.fixture
def start(data_dir: Path) -> Iterator[Any]:
    """Start the app with these settings (the built-in rules refine); stopped after the test."""
    from illustrator.wiring import wire
    from ui.server import launch

    running: list[Any] = []

    def run(**overrides: Any) -> str:
        settings = Settings(data_dir=data_dir, offline=True, refiner_model="none", port=free_port(), **overrides)
        app = wire(settings)
        app.models.wait(timeout=120)
        running.append(launch(app, prevent_thread_lock=True, quiet=True))
        return f"http://127.0.0.1:{settings.port}/"

    yield run
    for served in running:
        served.close()


def _send(page: Any, text: str, pictures: int) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#send-button").click()
    page.wait_for_function(f"document.querySelectorAll('#chat img').length >= {pictures}", timeout=LONG)
    page.wait_for_function("!document.querySelector('#send-button')?.disabled", timeout=LONG)


def _captions(page: Any) -> list[str]:
    return [c.strip() for c in page.locator("#gallery .caption-label").all_inner_texts()]


def _wait_captions(page: Any, count: int) -> list[str]:
    page.wait_for_function(f"document.querySelectorAll('#gallery .caption-label').length == {count}", timeout=LONG)
    return _captions(page)


def test_numbers_sessions_times_downloads_and_favourites(start: Any, browser, tmp_path: Path, data_dir: Path) -> None:  # noqa: F811, PLR0915
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, timezone_id=ZONE, accept_downloads=True)
    page = context.new_page()
    page.goto(start())
    page.locator("#chat-input textarea").wait_for()

    # 1. numbers are per session: the second session starts again at #1
    _send(page, "a crow over the city", 1)
    _send(page, "make the moon red", 2)
    assert re.search(r"Picture #2 · edit[^\n]*, from picture #1\b", page.locator("#chat").inner_text())
    page.locator("#new-session").click()
    page.wait_for_function("document.querySelectorAll('#chat img').length == 0")
    _send(page, "a lake at dawn", 1)
    assert "Picture #1" in page.locator("#picture-details").inner_text()

    # 2. an own uploaded starting picture is the writer's picture, not "picture #1"
    own = tmp_path / "my-sketch.png"
    Image.new("RGB", (64, 64), (30, 90, 200)).save(own)
    page.get_by_text("Controls for the next turn").click()
    page.locator("#start-picture input[type=file]").set_input_files(str(own))
    page.locator("#start-picture img").wait_for(timeout=30_000)
    page.get_by_role("radio", name="Edit this picture").check()
    _send(page, "make it a misty forest lake", 2)
    details = page.locator("#picture-details").inner_text()
    assert "Picture #2" in details and "from your picture" in details and "from picture #" not in details
    assert re.search(r"Picture #2 · edit[^\n]*, from your picture", page.locator("#chat").inner_text())
    page.screenshot(path=str(tmp_path / "own-picture.png"), full_page=True)
    # the current picture's own download icon saves it under the same kind of name
    with page.expect_download() as icon:
        page.locator("#current-picture").get_by_label("Download").first.click()
    assert icon.value.suggested_filename == "a-lake-at-dawn-02.png"

    # 3. one order (newest first, said so) in both views; "All sessions" names each picture's session
    page.get_by_role("tab", name="Gallery").click()
    assert _wait_captions(page, 2) == ["#2", "#1"]
    assert "newest first" in page.locator("#gallery-page").inner_text().lower()
    page.get_by_text("All sessions").click()
    page.wait_for_function("document.querySelector('#gallery .caption-label')?.innerText.includes('·')")
    assert _wait_captions(page, 4) == [
        "#2 · a lake at dawn",
        "#1 · a lake at dawn",
        "#2 · a crow over the city",
        "#1 · a crow over the city",
    ]
    page.screenshot(path=str(tmp_path / "all-sessions.png"), full_page=True)

    # 4. times are the browser's local time
    page.locator("#gallery img").nth(2).click()
    page.wait_for_function("document.querySelector('#gallery-details time[data-local]')", timeout=30_000)
    drawn = page.locator("#gallery-details time")
    utc = datetime.fromisoformat(drawn.get_attribute("datetime").replace("Z", "+00:00"))
    local = utc.astimezone(ZoneInfo(ZONE))
    shown = drawn.inner_text()
    assert f"{local:%H:%M}" in shown and "UTC" not in shown, shown
    assert "a crow over the city" in page.locator("#gallery-details").inner_text()

    # 5. a download is named after the session and the picture's number
    page.locator("#download-picture").wait_for()
    with page.expect_download() as download:
        page.locator("#download-picture").click()
    assert download.value.suggested_filename == "a-crow-over-the-city-02.png"

    # 6. a star: kept, shown in the grid, and a filter that shows only the starred
    page.locator("#star-picture").click()
    page.wait_for_function("document.querySelector('#star-picture')?.innerText.includes('Starred')")
    assert "★ starred" in page.locator("#gallery-details").inner_text()
    page.locator("#gallery-starred input").check()
    assert _wait_captions(page, 1) == ["★ #2 · a crow over the city"]
    page.screenshot(path=str(tmp_path / "starred.png"), full_page=True)

    # 7. the zip export can take only the starred pictures
    page.get_by_role("tab", name="Chat").click()
    page.locator("#session-list tbody tr", has_text="crow").click()
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('crow')", timeout=30_000)
    page.locator("#session-panel").get_by_text("This session").click()
    page.locator("#export-starred input").check()
    page.locator("#export").click()
    page.locator("#export-file a").first.wait_for(timeout=30_000)
    with page.expect_download() as exported:
        page.locator("#export-file a").first.click()
    assert exported.value.suggested_filename == "a-crow-over-the-city-starred.zip"
    saved = tmp_path / "starred.zip"
    exported.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        pictures = [n for n in archive.namelist() if n.endswith(".png")]
        storyboard = archive.read("a-crow-over-the-city-starred/storyboard.html").decode()
    assert pictures == ["a-crow-over-the-city-starred/pictures/a-crow-over-the-city-02.png"]
    assert "Picture #2 ★" in storyboard and "make the moon red" in storyboard and "#1 ·" not in storyboard
    # the session list's times are local too
    row = page.locator("#session-list tbody tr", has_text="crow").inner_text()
    assert re.search(r"\d\d:\d\d", row) and not re.search(r"\d{4}-\d\d-\d\dT", row), row
    page.screenshot(path=str(tmp_path / "exported.png"), full_page=True)
    context.close()


def test_the_login_page_names_the_app(start: Any, browser, tmp_path: Path) -> None:  # noqa: F811
    url = start(logins=(("ann", "a long enough password"),))
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(url)
    page.get_by_text("Log in to see your sessions").wait_for(timeout=30_000)
    assert "Illustrator" in page.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / "login.png"), full_page=True)
