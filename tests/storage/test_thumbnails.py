"""Thumbnails: small WebP copies made once, kept beside (not inside) the pictures folder, removed with them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from illustrator.errors import NotFound
from storage.files import PictureFiles
from storage.thumbnails import Thumbnails


@pytest.fixture
def files(tmp_path: Path) -> PictureFiles:
    return PictureFiles(tmp_path / "pictures")


@pytest.fixture
def thumbnails(tmp_path: Path, files: PictureFiles) -> Thumbnails:
    return Thumbnails(tmp_path / "thumbnails", files, size=64)


def _save(files: PictureFiles, size: tuple[int, int] = (300, 200)) -> str:
    return files.save(Image.new("RGB", size, "teal"), parameters_text="a teal sky", metadata={}).file_name


def test_a_thumbnail_is_a_small_webp_made_once(files: PictureFiles, thumbnails: Thumbnails) -> None:
    name = _save(files)
    path = thumbnails.path(name)
    assert path.is_relative_to(thumbnails.root) and path.suffix == ".webp"
    with Image.open(path) as image:
        assert image.format == "WEBP"
        assert image.size == (64, 43)  # the longer side shrunk to 64, proportions kept
    assert path.stat().st_size < files.path(name).stat().st_size

    made = path.stat().st_mtime_ns
    path.write_bytes(path.read_bytes())  # same bytes, a newer time: a second call must not write it again
    touched = path.stat().st_mtime_ns
    assert thumbnails.path(name) == path and path.stat().st_mtime_ns == touched >= made
    assert not [p for p in thumbnails.root.rglob("*") if p.name.endswith(".tmp")]


def test_a_missing_or_foreign_picture_has_no_thumbnail(files: PictureFiles, thumbnails: Thumbnails) -> None:
    with pytest.raises(NotFound):
        thumbnails.path("2025/01/" + "0" * 32 + ".png")
    with pytest.raises(NotFound):
        thumbnails.path("../../etc/passwd")
    assert not thumbnails.root.exists()


def test_delete_removes_the_thumbnail_only(files: PictureFiles, thumbnails: Thumbnails) -> None:
    keep, remove = _save(files), _save(files)
    kept, removed = thumbnails.path(keep), thumbnails.path(remove)
    thumbnails.delete(remove)
    thumbnails.delete(remove)  # already gone is fine
    thumbnails.delete("../outside.png")  # a name outside the folder is ignored, never resolved
    assert kept.is_file() and not removed.exists()
    assert files.path(remove).is_file()  # the picture itself is not the thumbnail store's to delete
