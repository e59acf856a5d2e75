"""Writers are isolated: with logins, each sees and changes only their own sessions and pictures (issue 14, point 6).

Real server with two logins, real HTTP: through the API and through Gradio's file route, bo gets a plain "not
found" for everything of ann's; ann gets it all; a share link still works for anyone, without a login.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.app.client import assert_plain, send, value
from tests.app.test_browser import browser  # noqa: F401 - the fixture
from tests.hardening.conftest import Start, rows

ANN = ("ann", "ann-secret")
BO = ("bo", "bo-secret")


def _logged_in(url: str, login: tuple[str, str]) -> httpx.Client:
    """A plain HTTP client holding the login cookie, as a browser would after the login form."""
    client = httpx.Client(base_url=url, timeout=10)
    answer = client.post("login", data={"username": login[0], "password": login[1]})
    assert answer.status_code == 200, answer.text
    return client


def _refused(client: Client, *args: object, api_name: str) -> str:
    try:
        result = client.predict(*args, api_name=api_name)
    except Exception as e:  # gradio_client raises AppError with the app's message
        return str(e)
    raise AssertionError(f"{api_name} was not refused: {result!r}")


def test_a_writer_sees_and_changes_only_their_own_sessions(start_app: Start, data_dir: Path) -> None:
    url, _ = start_app(logins=(ANN, BO))
    ann = Client(url, auth=ANN, verbose=False)
    _, _, _, ann_session, _ = send(ann, "a secret garden behind a wall")
    ((ann_picture,),) = rows(data_dir, "SELECT id FROM pictures")
    bo = Client(url, auth=BO, verbose=False)
    _, _, _, bo_session, _ = send(bo, "a fox in the snow")
    assert rows(data_dir, "SELECT owner FROM sessions WHERE id = ?", ann_session) == [("ann",)]

    # bo's list, search and gallery ("All sessions" is all of MY sessions) hold nothing of ann's
    for listed in (bo.predict("", api_name="/list_sessions"), bo.predict("garden", api_name="/search_sessions")):
        assert "garden" not in repr(listed) and ann_session not in repr(listed)
    assert "fox" in repr(bo.predict("", api_name="/list_sessions"))
    shown = bo.predict("all", 1, api_name="/gallery_page")
    assert len(value(shown[0])) == 1 and "· 1 picture" in repr(shown), shown  # his fox only
    assert "garden" in repr(ann.predict("garden", api_name="/search_sessions"))

    # by id, through every call that takes one: a plain "does not exist", never ann's data
    for args, api_name in (((ann_session,), "/open_session"), ((ann_picture,), "/show_picture")):
        message = _refused(bo, *args, api_name=api_name)
        assert "does not exist" in message and "garden" not in message
        assert_plain(message)
    # bo's open session is still his own: what he renames, shares, exports or deletes is his, never ann's
    bo.predict(bo_session, api_name="/open_session")
    _refused(bo, ann_session, api_name="/open_session")
    bo.predict("Mine now", api_name="/rename_session")
    link = value(bo.predict(api_name="/share_session"))
    assert "garden" not in httpx.get(link, timeout=10).text
    exported = Path(value(bo.predict(api_name="/export_session")))
    assert "fox" in exported.name.lower() or exported.stat().st_size > 0
    bo.predict(api_name="/delete_session")
    assert rows(data_dir, "SELECT title, owner FROM sessions") == [("a secret garden behind a wall", "ann")]
    message = _refused(bo, ann_picture, api_name="/continue_from_picture")
    assert_plain(message)

    # ann still has everything
    chat, *_ = ann.predict(ann_session, api_name="/open_session")
    assert "garden" in repr(chat)
    assert "garden" in repr(ann.predict(ann_picture, api_name="/show_picture"))


def test_a_writer_cannot_fetch_another_writers_picture_files(start_app: Start, data_dir: Path) -> None:
    url, _ = start_app(logins=(ANN, BO))
    ann = Client(url, auth=ANN, verbose=False)
    _, _, _, ann_session, _ = send(ann, "a secret garden behind a wall")
    ann.predict("all", 1, api_name="/gallery_page")  # makes the thumbnail, and Gradio's cached copies
    ann.predict(api_name="/export_session")
    ((file_name, picture_number),) = rows(data_dir, "SELECT file_name, number FROM pictures")
    stem = Path(file_name).stem
    picture = (data_dir / "pictures" / file_name).resolve()
    thumbnail = next((data_dir / "thumbnails").rglob(f"{stem}.webp")).resolve()
    export = next((data_dir / "exports" / ann_session).glob("*.zip")).resolve()
    cached = sorted(p.resolve() for p in Path(os.environ["GRADIO_TEMP_DIR"]).rglob(f"{stem}.*"))
    assert cached, "Gradio kept no copy of the picture"
    # the current picture is shown (and cached by Gradio) as a copy named for its download: a-secret-garden-…-01.png
    named = sorted(p.resolve() for p in Path(os.environ["GRADIO_TEMP_DIR"]).rglob("*-01.png"))
    assert named, "Gradio kept no copy of the picture named for its download"
    files = [picture, thumbnail, export, *cached, *named]

    bo, owner = _logged_in(url, BO), _logged_in(url, ANN)
    try:
        for path in files:
            theirs = bo.get(f"gradio_api/file={path}")
            assert theirs.status_code == 404 and b"PNG" not in theirs.content and b"PK" not in theirs.content, path
            assert theirs.text == "Not found."
            mine = owner.get(f"gradio_api/file={path}")
            assert mine.status_code == 200 and len(mine.content) > 100, path
    finally:
        bo.close()
        owner.close()

    # the share link is the one way in for someone else: no login, read-only, that session only
    link = value(ann.predict(api_name="/share_session"))
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and "a secret garden behind a wall" in page.text
    shared = httpx.get(f"{link}/pictures/{picture_number}.png", timeout=10)
    assert shared.status_code == 200 and shared.content.startswith(b"\x89PNG")  # (its private metadata stripped)


@pytest.mark.parametrize("login", [None, ANN])
def test_without_logins_everything_stays_the_local_writers(start_app: Start, data_dir: Path, login) -> None:
    url, _ = start_app(logins=(login,) if login else ())
    client = Client(url, auth=login, verbose=False)
    _, _, _, session_id, _ = send(client, "a lantern in the fog")
    assert rows(data_dir, "SELECT owner FROM sessions") == [("ann",) if login else ("",)]
    chat, *_ = client.predict(session_id, api_name="/open_session")
    assert "lantern" in repr(chat)


@pytest.mark.browser
def test_bo_logged_in_in_a_browser_sees_none_of_anns_sessions(
    start_app: Start,
    browser,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    url, _ = start_app(logins=(ANN, BO))
    send(Client(url, auth=ANN, verbose=False), "a secret garden behind a wall")
    send(Client(url, auth=BO, verbose=False), "a fox in the snow")

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.locator("input[type=password]").wait_for(timeout=30_000)  # Gradio's login form
    page.locator("input:not([type=password])").first.fill(BO[0])
    page.locator("input[type=password]").fill(BO[1])
    page.get_by_role("button", name="Login").click()
    page.locator("#chat-input textarea").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('#session-list')?.innerText.includes('fox')", timeout=30_000)
    page.locator("#session-list tbody tr", has_text="fox").click()
    page.wait_for_function(
        "[...document.querySelectorAll('#chat img')].some(i => i.complete && i.naturalWidth > 0)", timeout=30_000
    )  # his own pictures still load through the owner check
    page.screenshot(path=str(tmp_path / "bo.png"))
    assert "garden" not in page.locator("body").inner_text()
    assert page.locator("#session-list tbody tr").count() == 1
