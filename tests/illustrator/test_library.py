"""The library over a real SQLite file and the tiny offline image model: gallery pages, share links, import."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from illustrator.errors import InvalidInput, NotFound
from illustrator.library import Library, read_imported_picture
from illustrator.plan import Action
from illustrator.refiner import FallbackRefiner, Refiner
from illustrator.service import TurnOptions, TurnService
from illustrator.writers import Writer
from storage.files import PictureFiles
from storage.pngmeta import build_parameters_text, make_pnginfo, read_png_metadata
from storage.thumbnails import Thumbnails
from tests.illustrator.test_service import ScriptedRefiner, make_service, plan

SMALL = TurnOptions(width=64, height=64)


def make_library(data_dir: Path, generator, refiner: Refiner) -> tuple[Library, TurnService, PictureFiles]:
    service, files = make_service(data_dir, generator, refiner)
    thumbnails = Thumbnails(data_dir / "thumbnails", files, size=32)
    library = Library(service._db, files, thumbnails, exports=data_dir / "exports")
    return library, service, files


def test_gallery_pages_a_session_and_all_sessions_newest_first(data_dir: Path, offline_generator) -> None:
    library, service, _ = make_library(data_dir, offline_generator, FallbackRefiner())
    mermaid = service.send(None, "a mermaid by a waterfall", SMALL)
    red = service.send(mermaid.session_id, "make her hair red", SMALL)
    blue = service.send(mermaid.session_id, "make her hair blue", SMALL)
    fox = service.send(None, "a fox in the snow", SMALL)

    first = library.pictures(mermaid.session_id, page=1, per_page=2)  # one order in both views: newest first
    assert [p.id for p in first.pictures] == [blue.picture.id, red.picture.id]
    assert (first.page, first.pages, first.total) == (1, 2, 3)
    last = library.pictures(mermaid.session_id, page=9, per_page=2)  # past the end: the last page
    assert last.page == 2 and [p.id for p in last.pictures] == [mermaid.picture.id]

    everything = library.pictures(None, per_page=60)
    assert [p.id for p in everything.pictures] == [fox.picture.id, blue.picture.id, red.picture.id, mermaid.picture.id]
    assert [p.number for p in everything.pictures] == [1, 3, 2, 1]  # numbered within each session
    assert everything.titles == ["a fox in the snow"] + ["a mermaid by a waterfall"] * 3
    for thumbnail in everything.thumbnails:
        assert thumbnail is not None and thumbnail.suffix == ".webp"
        with Image.open(thumbnail) as image:
            assert max(image.size) == 32
    with pytest.raises(InvalidInput, match="per_page"):
        library.pictures(None, per_page=0)


def test_session_list_shows_thumbnails_and_search_finds_prompts(data_dir: Path, offline_generator) -> None:
    refiner = ScriptedRefiner(plan("an ondine in a moonlit grotto"), plan("a fox in the snow"))
    library, service, _ = make_library(data_dir, offline_generator, refiner)
    mermaid = service.send(None, "a mermaid by a waterfall", SMALL)
    fox = service.send(None, "a fox in the snow", SMALL)

    listed = library.list_sessions()
    assert [s.id for s in listed] == [fox.session_id, mermaid.session_id]
    assert listed[1].title == "a mermaid by a waterfall"  # the title comes from the first message
    assert all(s.thumbnail is not None and s.thumbnail.suffix == ".webp" for s in listed)
    assert [s.id for s in library.list_sessions("GROTTO")] == [mermaid.session_id]  # only in the refined prompt
    assert [s.id for s in library.list_sessions("waterfall")] == [mermaid.session_id]  # only in the message
    assert library.list_sessions("dragon") == []


def test_delete_removes_the_session_its_pictures_and_thumbnails(data_dir: Path, offline_generator) -> None:
    library, service, files = make_library(data_dir, offline_generator, FallbackRefiner())
    keep = service.send(None, "a fox in the snow", SMALL)
    gone = service.send(None, "a mermaid by a waterfall", SMALL)
    service.send(gone.session_id, "make her hair red", SMALL)
    library.pictures(None)  # makes the thumbnails
    assert len(list((data_dir / "thumbnails").rglob("*.webp"))) == 3
    exported = library.export(gone.session_id)
    assert library.export(gone.session_id) == exported and len(list(exported.parent.iterdir())) == 1

    library.rename_session(gone.session_id, "  The   mermaid's  cave ")
    assert library.open_session(gone.session_id).title == "The mermaid's cave"
    library.delete_session(gone.session_id)

    assert [s.id for s in library.list_sessions()] == [keep.session_id]
    assert [p.name for p in files.root.rglob("*.png")] == [keep.picture.path.name]
    assert [p.stem for p in (data_dir / "thumbnails").rglob("*.webp")] == [keep.picture.path.stem]
    assert not exported.exists() and not (data_dir / "exports" / gone.session_id).exists()
    with pytest.raises(NotFound):
        library.open_session(gone.session_id)


def test_a_share_link_shows_one_session_until_it_is_revoked(data_dir: Path, offline_generator) -> None:
    library, service, _ = make_library(data_dir, offline_generator, FallbackRefiner())
    shared = service.send(None, "a mermaid by a waterfall", SMALL)
    other = service.send(None, "a fox in the snow", SMALL)

    token = library.share(shared.session_id)
    assert len(token) >= 32 and library.share(shared.session_id) == token  # the same link until revoked
    assert library.share_token(shared.session_id) == token and library.share_token(other.session_id) is None
    view = library.shared_session(token)
    assert view.id == shared.session_id and [m.content for m in view.messages][0] == "a mermaid by a waterfall"
    assert library.shared_picture(token, shared.picture.number) == shared.picture.path.resolve()
    assert other.picture.number == 1 and other.picture.id == 2
    with pytest.raises(NotFound):
        library.shared_picture(token, other.picture.id)  # the other session's picture's id: no number of this one
    for wrong in ("", "x" * 65, token[:-1], token + "x"):
        with pytest.raises(NotFound):
            library.shared_session(wrong)

    library.unshare(shared.session_id)
    with pytest.raises(NotFound):
        library.shared_session(token)
    with pytest.raises(NotFound):
        library.shared_picture(token, shared.picture.id)
    assert library.share(shared.session_id) != token  # sharing again makes a new link; the old one stays dead


def test_a_branch_continues_from_an_earlier_picture_and_the_session_ends_on_it(
    data_dir: Path, offline_generator
) -> None:
    library, service, _ = make_library(data_dir, offline_generator, FallbackRefiner())
    first = service.send(None, "a mermaid by a waterfall", SMALL)
    service.send(first.session_id, "make her hair red", SMALL)
    branch = service.send(first.session_id, "make her hair blue", replace_base(SMALL, first.picture.id))
    assert branch.picture.action == Action.EDIT.value and branch.picture.parent_id == first.picture.id

    reopened = library.open_session(first.session_id)
    assert reopened.current_picture is not None and reopened.current_picture.id == branch.picture.id
    after = service.send(first.session_id, "now she is smiling", SMALL)
    assert after.picture.parent_id == branch.picture.id
    other = service.send(None, "a fox", SMALL)
    with pytest.raises(NotFound, match="belong"):  # a branch stays inside its session
        service.send(other.session_id, "make it red", replace_base(SMALL, first.picture.id))


def replace_base(options: TurnOptions, picture_id: int) -> TurnOptions:
    return replace(options, base_picture_id=picture_id)


def test_importing_a_picture_restores_its_parameters(data_dir: Path, offline_generator, tmp_path: Path) -> None:
    refiner = ScriptedRefiner(plan("a lighthouse, on a cliff: at dusk"))
    _, service, _ = make_library(data_dir, offline_generator, refiner)
    made = service.send(None, "a lighthouse on a cliff at dusk", TurnOptions(width=64, height=128, seed=77, steps=2))

    found = read_imported_picture(made.picture.path)
    assert found.made_here and found.session_id == made.session_id and found.turn == 1
    assert (found.prompt, found.negative_prompt) == ("a lighthouse, on a cliff: at dusk", "blurry")
    assert (found.seed, found.steps, found.width, found.height) == (77, 2, 64, 128)

    # A picture from another A1111-compatible tool: its parameters, but not ours.
    other = tmp_path / "other.png"
    text = build_parameters_text("a castle", "", 20, "Euler a", 7.0, 5, 512, 512, "sd15")
    Image.new("RGB", (8, 8)).save(other, pnginfo=make_pnginfo(text, {}))
    imported = read_imported_picture(other)
    assert not imported.made_here and imported.prompt == "a castle" and imported.steps == 20

    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(InvalidInput, match="no generation parameters"):
        read_imported_picture(plain)
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(InvalidInput):
        read_imported_picture(tmp_path / "text.png")


def test_own_starting_picture_stars_downloads_and_a_starred_export(data_dir: Path, offline_generator) -> None:
    library, service, _ = make_library(data_dir, offline_generator, FallbackRefiner())
    crow = service.send(None, "a crow over the city", SMALL)
    night = service.send(crow.session_id, "make it night", SMALL)
    assert (night.picture.number, night.picture.parent_number, night.picture.own_start) == (2, 1, False)
    sketch = data_dir / "my-sketch.png"
    Image.new("RGB", (64, 64), (20, 80, 200)).save(sketch)
    mine = replace(SMALL, action=Action.EDIT, start_image=str(sketch))
    own = service.send(crow.session_id, "a crow on my sketch", mine)
    assert (own.picture.number, own.picture.parent_id, own.picture.own_start) == (3, None, True)
    ours = read_png_metadata(night.picture.path)["illustrator"]  # the file names the numbers too
    assert (ours["number"], ours["parent_number"], ours["own_start"]) == (2, 1, False)
    assert read_png_metadata(own.picture.path)["illustrator"]["own_start"] is True

    starred = library.star(night.picture.id)
    assert starred.starred and library.get_picture(night.picture.id).starred
    assert [p.id for p in library.pictures(crow.session_id, starred=True).pictures] == [night.picture.id]
    with pytest.raises(NotFound):
        library.star(night.picture.id, writer=Writer("someone-else"))

    download = library.download(night.picture.id)
    assert download.name == "a-crow-over-the-city-02.png"
    assert download.read_bytes() == night.picture.path.read_bytes()

    exported = library.export(crow.session_id, starred=True)
    assert exported.name == "a-crow-over-the-city-starred.zip"
    with zipfile.ZipFile(exported) as archive:
        names = archive.namelist()
        html = archive.read("a-crow-over-the-city-starred/storyboard.html").decode()
    pictures = [n for n in names if n.endswith(".png")]
    assert pictures == ["a-crow-over-the-city-starred/pictures/a-crow-over-the-city-02.png"]
    assert "make it night" in html and "a crow on my sketch" not in html and "Picture #2 ★" in html
    everything = library.export(crow.session_id)
    with zipfile.ZipFile(everything) as archive:
        html = archive.read("a-crow-over-the-city/storyboard.html").decode()
    assert "Picture #3 · edit, from your picture" in html and "Picture #2 ★ · edit, from picture #1" in html
    assert not library.star(night.picture.id, False).starred
    with pytest.raises(InvalidInput, match="starred"):
        library.export(crow.session_id, starred=True)


def test_export_command_takes_only_the_starred_pictures(data_dir: Path, offline_generator, tmp_path: Path) -> None:
    from tests.illustrator.test_cli import run_cli

    library, service, _ = make_library(data_dir, offline_generator, FallbackRefiner())
    crow = service.send(None, "a crow over the city", SMALL)
    night = service.send(crow.session_id, "make it night", SMALL)
    library.star(night.picture.id)
    service._db.dispose()
    out = tmp_path / "out"
    session = crow.session_id[:8]
    done = run_cli("export", session, "--format", "storyboard", "--starred", "-o", str(out), data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out / "a-crow-over-the-city-starred.zip") as archive:
        assert [n for n in archive.namelist() if n.endswith(".png")] == [
            "a-crow-over-the-city-starred/pictures/a-crow-over-the-city-02.png"
        ]
    book = run_cli("export", session, "--format", "html", "--starred", "-o", str(out), data_dir=data_dir)
    assert book.returncode == 0, book.stderr
    page = next(out.rglob("index.html")).read_text(encoding="utf-8")
    assert "make it night" in page and "a crow over the city" in page  # the title, and the starred turn's wish
    assert page.count("<img") == 1
