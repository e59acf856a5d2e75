"""Export: a session as a zip with a storyboard (HTML and Markdown) and its original PNGs, in order."""

from __future__ import annotations

import zipfile
from pathlib import Path

from illustrator.export import export_session, storyboard_html
from illustrator.labels import slug
from illustrator.plan import Action
from illustrator.refiner import FallbackRefiner
from illustrator.service import TurnOptions
from storage.pngmeta import read_png_metadata
from tests.illustrator.test_service import ScriptedRefiner, library_for, make_service, plan

SMALL = TurnOptions(width=64, height=64)


def test_export_holds_the_storyboard_and_the_original_pictures_in_order(data_dir: Path, offline_generator) -> None:
    refiner = ScriptedRefiner(
        plan("a mermaid, waterfall"), plan("a mermaid with red hair <b>bold</b>", Action.EDIT, 0.5)
    )
    service, _ = make_service(data_dir, offline_generator, refiner)
    first = service.send(None, "a mermaid by a waterfall", SMALL)
    second = service.send(first.session_id, "make her hair red <script>alert(1)</script>", SMALL)
    library_for(service, data_dir).rename_session(first.session_id, "Mermaid's cave / draft 1")
    view = library_for(service, data_dir).open_session(first.session_id)

    path = export_session(view, data_dir / "exports")
    assert path.name == "mermaid-s-cave-draft-1.zip"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        root = "mermaid-s-cave-draft-1/"
        pictures = [f"{root}pictures/mermaid-s-cave-draft-1-0{n}.png" for n in (1, 2)]  # named as downloads are
        assert names == {f"{root}storyboard.html", f"{root}storyboard.md", *pictures}
        for name, picture in zip(pictures, (first.picture, second.picture), strict=True):
            data = archive.read(name)
            assert data == picture.path.read_bytes()  # the file itself, with its metadata
        html = archive.read(f"{root}storyboard.html").decode()
        markdown = archive.read(f"{root}storyboard.md").decode()
        archive.extract(pictures[1], data_dir / "unzipped")

    meta = read_png_metadata(data_dir / "unzipped" / pictures[1])
    assert meta["illustrator"]["session_id"] == first.session_id and "red hair" in meta["parameters"]

    # In order: message, reply, picture, then the next turn; relative links; everything escaped.
    order = [
        html.index("a mermaid by a waterfall"),
        html.index('src="pictures/mermaid-s-cave-draft-1-01.png"'),
        html.index("make her hair red &lt;script&gt;"),
        html.index('src="pictures/mermaid-s-cave-draft-1-02.png"'),
    ]
    assert order == sorted(order)
    assert "<script>" not in html and "<b>bold" not in html and "&lt;b&gt;bold" in html
    assert "Picture #2 · edit, from picture #1" in html
    assert "Mermaid&#x27;s cave / draft 1" in html
    assert "![Picture #2](pictures/mermaid-s-cave-draft-1-02.png)" in markdown
    assert markdown.index("a mermaid by a waterfall") < markdown.index("make her hair red")
    assert "\\<script\\>" in markdown  # shown as text by Markdown viewers, never run


def test_a_picture_missing_from_disk_does_not_stop_the_export(data_dir: Path, offline_generator) -> None:
    service, _ = make_service(data_dir, offline_generator, FallbackRefiner())
    made = service.send(None, "a fox in the snow", SMALL)
    made.picture.path.unlink()
    path = export_session(library_for(service, data_dir).open_session(made.session_id), data_dir / "exports")
    with zipfile.ZipFile(path) as archive:
        assert [n.rsplit("/", 1)[-1] for n in archive.namelist()] == ["storyboard.html", "storyboard.md"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_slug_and_html_page_are_safe_for_any_title(data_dir: Path) -> None:
    from illustrator.service import SessionView

    assert slug("../../etc/passwd") == "etc-passwd" and slug("???") == "session"
    page = storyboard_html(SessionView("0" * 32, "<img src=x onerror=alert(1)>"), lambda p: "x")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
