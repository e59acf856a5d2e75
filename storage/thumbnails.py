"""Thumbnails: small WebP copies of the pictures, made once on first use and kept in their own folder."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

from illustrator.errors import NotFound, StorageError
from storage.files import PictureFiles

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256  # the longer side, in pixels: sharp in a grid of ~160 px cells on a high-density screen
_QUALITY = 80


class Thumbnails:
    """Small WebP copies of picture files, under `root` with the same relative names (`YYYY/MM/<name>.webp`)."""

    def __init__(self, root: Path, pictures: PictureFiles, size: int = THUMBNAIL_SIZE) -> None:
        if size < 16:
            raise ValueError(f"`size` must be at least 16 pixels, not {size}.")
        self.root = Path(root)
        self.pictures = pictures
        self.size = size

    def _thumbnail_path(self, file_name: str) -> Path:
        source = self.pictures.path(file_name)  # NotFound for names outside the pictures folder, or missing files
        relative = source.relative_to(self.pictures.root.resolve())
        return self.root / PurePosixPath(relative.as_posix()).with_suffix(".webp")

    def path(self, file_name: str) -> Path:
        """The thumbnail of a picture file, made now if it does not exist yet; NotFound if the picture is missing."""
        target = self._thumbnail_path(file_name)
        if target.is_file():
            return target
        # 1. read and shrink the picture (draft mode is a no-op for PNG, so this reads the whole file once)
        source = self.pictures.path(file_name)
        try:
            with Image.open(source) as image:
                image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
                small = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        except FileNotFoundError as e:
            raise NotFound("That picture does not exist.") from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise StorageError("The picture file is damaged and cannot be read.") from e
        # 2. write a temp file and rename it, so that two requests at once never see half a thumbnail
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            small.save(temp, format="WEBP", quality=_QUALITY, method=4)
            os.replace(temp, target)
        except OSError as e:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise StorageError(f"Could not save a thumbnail: {e.strerror or e}.") from e
        return target

    def delete(self, file_name: str) -> None:
        """Remove a picture's thumbnail, if it has one (call it before or after the picture itself is removed)."""
        relative = PurePosixPath(file_name)
        if relative.is_absolute() or ".." in relative.parts or "\\" in file_name or not file_name:
            return
        target = (self.root / relative).with_suffix(".webp")
        try:
            target.unlink(missing_ok=True)
        except OSError as e:
            logger.warning("Could not remove the thumbnail %s: %s", target, e.strerror or e)
