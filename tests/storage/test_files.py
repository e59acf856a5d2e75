"""PictureFiles: atomic saves, safe paths, crash clean-up."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from illustrator.errors import NotFound, StorageError
from storage.files import PictureFiles, Reconciled
from storage.pngmeta import parse_parameters_text, read_png_metadata


@pytest.fixture
def files(tmp_path: Path) -> PictureFiles:
    return PictureFiles(tmp_path / "pictures")


def _picture(color: str = "teal") -> Image.Image:
    return Image.new("RGB", (64, 48), color)


def _save(files: PictureFiles, color: str = "teal") -> str:
    saved = files.save(_picture(color), parameters_text=f"a {color} sky\nSteps: 1, Seed: 3, Size: 64x48", metadata={})
    return saved.file_name


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_save_writes_a_whole_png_with_metadata_and_no_temp_file(files: PictureFiles) -> None:
    saved = files.save(
        _picture(), parameters_text="a teal sky\nSteps: 1, Seed: 3, Size: 64x48", metadata={"turn": 4, "plan": "é"}
    )
    path = files.path(saved.file_name)
    assert _all_files(files.root) == [path]  # the temp file was renamed, not left behind
    assert not Path(saved.file_name).is_absolute() and path.suffix == ".png"
    assert len(path.stem) == 32  # an unguessable name
    assert (saved.width, saved.height) == (64, 48)
    assert saved.size_bytes == path.stat().st_size
    assert saved.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    meta = read_png_metadata(path)
    assert parse_parameters_text(meta["parameters"])["seed"] == 3
    assert meta["illustrator"] == {"turn": 4, "plan": "é"}
    assert files.open_image(saved.file_name).getpixel((0, 0)) == (0, 128, 128)


def test_two_saves_never_share_a_name(files: PictureFiles) -> None:
    assert _save(files) != _save(files)


def test_a_full_disk_gives_a_plain_storage_error_and_leaves_nothing(
    files: PictureFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StorageError, match=r"^Could not save the picture: the disk is full; free some space and send"):
        _save(files)
    assert _all_files(files.root) == []


def test_an_unwritable_pictures_folder_gives_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "pictures"
    blocker.write_text("a file where the folder should be")  # blocks even root, unlike chmod
    with pytest.raises(StorageError, match="Could not save the picture"):
        _save(PictureFiles(blocker))


@pytest.mark.parametrize(
    "name",
    ["../x", "../pictures/x.png", "/etc/passwd", "2025/../../x", "..%2fx", "..\\x", "C:/x.png", "", "a\x00b", "."],
)
def test_names_outside_the_root_or_missing_are_not_found(files: PictureFiles, tmp_path: Path, name: str) -> None:
    (tmp_path / "x").write_text("secret")  # what a traversal would reach
    _save(files)
    with pytest.raises(NotFound):
        files.path(name)
    with pytest.raises(NotFound):
        files.open_image(name)


def test_an_encoded_name_is_taken_literally_inside_the_root(files: PictureFiles) -> None:
    files.root.mkdir(parents=True)
    literal = files.root / "..%2fx"
    literal.write_bytes(b"not a picture")
    assert files.path("..%2fx") == literal.resolve()  # a real file of that name, inside the root


def test_a_link_pointing_outside_the_root_is_refused(files: PictureFiles, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    _picture().save(outside)
    files.root.mkdir(parents=True)
    (files.root / "link.png").symlink_to(outside)
    with pytest.raises(NotFound):
        files.path("link.png")


def test_delete_removes_the_file_and_ignores_a_missing_one(files: PictureFiles) -> None:
    name = _save(files)
    files.delete(name)
    files.delete(name)
    with pytest.raises(NotFound):
        files.path(name)
    with pytest.raises(NotFound):
        files.delete("../outside.png")


def test_a_damaged_file_gives_a_storage_error(files: PictureFiles) -> None:
    name = _save(files)
    path = files.path(name)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(StorageError, match="damaged"):
        files.open_image(name)


def test_reconcile_sets_strays_aside_and_removes_temp_files_only(files: PictureFiles) -> None:
    kept = _save(files, "red")
    stray = _save(files, "blue")
    folder = files.path(kept).parent
    temp = folder / f".{'c' * 32}.png.tmp"
    temp.write_bytes(b"half a picture")
    users_own = folder / "notes.txt"
    users_own.write_text("not ours: never touched")

    stray_bytes = files.path(stray).read_bytes()

    done = files.reconcile({kept})

    assert done.set_aside == [stray] and done.removed == [temp.relative_to(files.root).as_posix()]
    assert (files.set_aside_root / stray).read_bytes() == stray_bytes  # moved whole, never deleted
    assert files.path(kept).is_file() and users_own.is_file()
    assert not temp.exists() and not (files.root / stray).exists()
    assert files.reconcile({kept}) == Reconciled([], [])
    assert PictureFiles(files.root / "never-created").reconcile(set()) == Reconciled([], [])
