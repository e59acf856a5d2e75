"""Share links, downloads and exports of the running app, over plain HTTP as a browser or a script sees them."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

from storage.pngmeta import read_png_metadata
from tests.app.client import send, value
from tests.app.conftest import ServeFn


def _picture_id(details: str) -> int:
    return int(re.search(r"Picture #(\d+)", details)[1])  # type: ignore[index]


def _files_on_disk(data_dir: Path) -> dict[str, Path]:
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in (data_dir / "pictures").rglob("*.png")}


def test_a_share_link_shows_one_session_and_nothing_once_revoked(serve: ServeFn, data_dir: Path) -> None:
    client = Client(serve(), verbose=False)
    _, _, details, shared_id, _ = send(client, "a mermaid sitting near a waterfall", size="256x256")
    send(client, "make her hair red")
    client.predict(api_name="/new_session")
    _, _, other_details, other_id, _ = send(client, "a lighthouse on a cliff at dusk")
    assert other_id != shared_id
    client.predict(shared_id, api_name="/open_session")

    link = value(client.predict(api_name="/share_session"))
    assert isinstance(link, str) and re.fullmatch(r"http://127\.0\.0\.1:\d+/share/[\w-]{32,}", link)
    page = httpx.get(link)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "a mermaid sitting near a waterfall" in page.text and "make her hair red" in page.text
    assert "lighthouse" not in page.text and other_id not in page.text and shared_id not in page.text

    # The pictures on the page are the session's own files, with their parameters but not our private JSON chunk
    # (the internal session id and the plan): every other byte is kept.
    on_disk = {read_png_metadata(p)["parameters"]: p.read_bytes() for p in _files_on_disk(data_dir).values()}
    sources = re.findall(r'<img src="([^"]+)"', page.text)
    assert len(sources) == 2
    for source in sources:
        picture = httpx.get(httpx.URL(link).join(source))
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        shared = read_png_metadata(io.BytesIO(picture.content))
        assert shared["illustrator"] is None and shared_id.encode() not in picture.content
        original = on_disk[shared["parameters"]]
        assert len(picture.content) < len(original) and b"illustrator" in original
    assert _picture_id(other_details) == 1  # numbers are per session: the lighthouse is #1 of its own
    assert httpx.get(f"{link}/pictures/3.png").status_code == 404  # three pictures exist, two in this session

    client.predict(api_name="/unshare_session")
    token = link.rsplit("/", 1)[1]
    base = link.rsplit("/share/", 1)[0]
    for url in (link, f"{link}/pictures/{_picture_id(details)}.png", f"{base}/share/{token[:-1]}", f"{base}/share/x"):
        gone = httpx.get(url)
        assert gone.status_code == 404, url
        assert "mermaid" not in gone.text and "lighthouse" not in gone.text and "Picture" not in gone.text


def test_download_and_export_give_the_original_pngs(serve: ServeFn, data_dir: Path) -> None:
    client = Client(serve(), verbose=False)
    _, _, details, session_id, _ = send(client, "a fox in the snow")
    _, _, details, _, _ = send(client, "make it red")
    picture_id = _picture_id(details)

    _, shown, download = client.predict(picture_id, api_name="/show_picture")
    assert f"Picture #{picture_id}" in shown and f"from picture #{picture_id - 1}" in shown
    downloaded = Path(value(download))
    on_disk = _files_on_disk(data_dir)
    original = on_disk[hashlib.sha256(downloaded.read_bytes()).hexdigest()]  # the very bytes on disk
    assert downloaded.read_bytes() == original.read_bytes()
    meta = read_png_metadata(downloaded)
    assert meta["illustrator"]["session_id"] == session_id and meta["illustrator"]["parent_id"] == picture_id - 1
    assert "Seed:" in meta["parameters"] and "red" in meta["parameters"]

    # Importing the downloaded picture restores its parameters into the controls and makes it the starting picture.
    prompt, negative, seed, steps, size, start = client.predict(
        handle_file(str(downloaded)), api_name="/import_picture"
    )
    assert "red" in prompt and negative and size == "256x256" and steps >= 1 and start
    assert f"Seed: {int(seed)}," in meta["parameters"]

    exported = Path(value(client.predict(api_name="/export_session")))
    with zipfile.ZipFile(exported) as archive:
        names = archive.namelist()
        assert sum(n.endswith(".png") for n in names) == 2
        assert any(n.endswith("storyboard.html") for n in names) and any(n.endswith("storyboard.md") for n in names)
        html = archive.read(next(n for n in names if n.endswith("storyboard.html"))).decode()
    assert html.index("a fox in the snow") < html.index("make it red")
