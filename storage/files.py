"""Picture files on disk: PNGs with their parameters embedded, written atomically under one root folder."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from illustrator.errors import NotFound, StorageError
from storage.pngmeta import make_pnginfo

logger = logging.getLogger(__name__)

_PICTURE_NAME = re.compile(r"[0-9a-f]{32}\.png")  # the names `save` gives; only these are ever reconciled away
_TEMP_NAME = re.compile(r"\.[0-9a-f]{32}\.png\.tmp")
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


@dataclass(frozen=True)
class SavedFile:
    """A picture file that was written: its name relative to the root, size, checksum and pixel size."""

    file_name: str
    size_bytes: int
    sha256: str
    width: int
    height: int


_PLAIN_REASONS = {
    errno.ENOSPC: "the disk is full; free some space and send your message again",
    errno.EDQUOT: "the disk quota is used up; free some space and send your message again",
    errno.EACCES: "the app may not write in the pictures folder; check its permissions",
    errno.EPERM: "the app may not write in the pictures folder; check its permissions",
    errno.EROFS: "the pictures folder is on a read-only disk",
    errno.EEXIST: "something that is not a folder is in the way inside the pictures folder",
    errno.ENOTDIR: "something that is not a folder is in the way inside the pictures folder",
}


def _reason(error: OSError) -> str:
    """A short, plain reason for a failure ("the disk is full; ..."), else the operating system's own words."""
    plain = _PLAIN_REASONS.get(error.errno) if error.errno is not None else None
    return plain or (error.strerror or str(error) or type(error).__name__).rstrip(".")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable; not every platform can open a folder, so this is best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class PictureFiles:
    """The pictures folder: saves PNGs under `root/YYYY/MM/` with unguessable names, and reads them back safely."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, image: Image.Image, *, parameters_text: str, metadata: dict[str, Any]) -> SavedFile:
        """Write `image` as a PNG with its metadata (temp file, fsync, rename) and describe the file written."""
        # 1. encode in memory, so the checksum and size describe exactly the bytes on disk
        if image.mode not in _PNG_MODES:
            image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=make_pnginfo(parameters_text, metadata))
        data = buffer.getvalue()

        # 2. write a temp file next to the final one, then rename: a crash leaves a whole file or none
        now = datetime.now(timezone.utc)
        name = f"{secrets.token_hex(16)}.png"
        folder = self.root / f"{now:%Y}" / f"{now:%m}"
        temp = folder / f".{name}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(temp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, folder / name)
        except OSError as e:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise StorageError(f"Could not save the picture: {_reason(e)}.") from e
        _fsync_folder(folder)
        return SavedFile(
            file_name=f"{now:%Y}/{now:%m}/{name}",
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            width=image.width,
            height=image.height,
        )

    def _resolve(self, file_name: str) -> Path:
        """The absolute path of `file_name`, or NotFound when it is not a plain relative name inside the root."""
        if not isinstance(file_name, str) or not file_name or "\x00" in file_name or "\\" in file_name:
            raise NotFound("That picture does not exist.")
        relative = PurePosixPath(file_name)
        if relative.is_absolute() or PureWindowsPath(file_name).drive or ".." in relative.parts:
            raise NotFound("That picture does not exist.")
        root = self.root.resolve()
        candidate = (root / relative).resolve()  # follows links: one that points outside the root is refused
        if candidate == root or not candidate.is_relative_to(root):
            raise NotFound("That picture does not exist.")
        return candidate

    def path(self, file_name: str) -> Path:
        """The path of an existing picture file strictly inside the root, or NotFound."""
        candidate = self._resolve(file_name)
        if not candidate.is_file():
            raise NotFound("That picture does not exist.")
        return candidate

    def delete(self, file_name: str) -> None:
        """Remove a picture file; one that is already gone is fine."""
        try:
            self._resolve(file_name).unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"Could not delete the picture: {_reason(e)}.") from e

    def open_image(self, file_name: str) -> Image.Image:
        """The picture, checked and fully read into memory."""
        path = self.path(file_name)
        try:
            with Image.open(path) as image:
                image.verify()  # verify() leaves the image unusable, so it is opened again below
            with Image.open(path) as image:
                image.load()
                return image.copy()
        except FileNotFoundError as e:
            raise NotFound("That picture does not exist.") from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise StorageError("The picture file is damaged and cannot be read.") from e

    @property
    def set_aside_root(self) -> Path:
        """Where picture files that no row knows are kept (never deleted) until they are brought back."""
        return self.root.parent / "set-aside"

    def reconcile(self, known_file_names: set[str]) -> Reconciled:
        """Set aside picture files that no database row knows, remove temp files left by a crash; say which.

        Run it at start-up, before any picture is being saved: a picture written but not yet committed looks stray.
        A stray picture is a whole picture (a crash before its row was committed, or an older database restored):
        it is moved under `set_aside_root`, keeping its relative name, never deleted. A temp file is a partial write.
        """
        set_aside: list[str] = []
        removed: list[str] = []
        if not self.root.is_dir():
            return Reconciled(set_aside, removed)
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                path = Path(dirpath) / name
                file_name = path.relative_to(self.root).as_posix()
                if _PICTURE_NAME.fullmatch(name) and file_name not in known_file_names:
                    if self._set_aside(path, file_name):
                        set_aside.append(file_name)
                elif _TEMP_NAME.fullmatch(name):
                    try:
                        path.unlink()
                    except OSError as e:
                        logger.warning("Could not remove the temp file %s: %s", path, _reason(e))
                        continue
                    removed.append(file_name)
        if set_aside:
            logger.warning(
                "Set aside %d picture file(s) that no session knows in %s (nothing was deleted; "
                "`illustrator recover-pictures` brings them back)",
                len(set_aside),
                self.set_aside_root,
            )
        if removed:
            logger.info("Removed %d unfinished temp file(s) left by an earlier crash", len(removed))
        return Reconciled(sorted(set_aside), sorted(removed))

    def _set_aside(self, path: Path, file_name: str) -> bool:
        target = self.set_aside_root / file_name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            counter = 0
            while target.exists():  # the same name set aside before: keep both
                counter += 1
                target = target.with_name(f"{Path(file_name).stem}-{counter}.png")
            os.replace(path, target)
        except OSError as e:
            logger.warning("Could not set aside the picture file %s: %s", path, _reason(e))
            return False
        return True


@dataclass(frozen=True)
class Reconciled:
    """What `PictureFiles.reconcile` did: picture files set aside, temp files removed (names relative to the root)."""

    set_aside: list[str]
    removed: list[str]
