"""`illustrator backup`: a consistent copy of the data folder made while the app runs, through SQLite's backup API.

The live database is only ever opened through SQLite: copying its file (or its `-wal`) byte by byte while the app
writes gives a torn copy, and a program that opens and closes the file outside SQLite drops SQLite's locks on it.
The backup API copies the pages under a read transaction, so the copy is one committed state; WAL mode lets the app
keep writing meanwhile. Picture files are copied after the database: every row in the copy has its file (pictures
are saved file first), and a newer file the copy does not know is set aside by the start-up check, never lost.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from illustrator.errors import InvalidInput, StorageError

logger = logging.getLogger(__name__)

DATABASE_NAME = "illustrator.db"
_PICTURE_NAME = re.compile(r"[0-9a-f]{32}\.png")  # finished pictures only; temp files are never copied


@dataclass(frozen=True)
class BackupReport:
    """What a backup holds."""

    database: Path
    messages: int
    pictures: int  # picture files copied
    integrity: str


def backup_data(database: Path, pictures: Path, destination: Path) -> BackupReport:
    """Copy the database (SQLite's backup API) and then the picture files into `destination`, a new or empty folder."""
    # 1. check the inputs: the source must exist (SQLite would create an empty one), the destination must be fresh
    if not database.is_file():
        raise InvalidInput(f"There is no database at {database} to back up.")
    destination = destination.expanduser()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InvalidInput(f"The backup folder {destination} must be new or empty.")
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"Could not create the backup folder: {e.strerror or e}.") from e

    # 2. the database, page by page under one read transaction, into a temp file renamed once it checks out
    target = destination / DATABASE_NAME
    partial = destination / f"{DATABASE_NAME}.part"
    try:
        integrity, messages = _copy_database(database, partial)
    except sqlite3.Error as e:
        partial.unlink(missing_ok=True)
        raise StorageError(f"Could not back up the database: {e}.") from e
    if integrity != "ok":
        raise StorageError("The backup of the database failed its integrity check; the original was not changed.")
    os.replace(partial, target)

    # 3. the picture files the copy may refer to (and perhaps a few newer ones)
    copied = _copy_pictures(pictures, destination / "pictures")
    logger.info("Backed up %d message(s) and %d picture file(s) to %s", messages, copied, destination)
    return BackupReport(target, messages, copied, integrity)


def _copy_database(database: Path, partial: Path) -> tuple[str, int]:
    source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True, timeout=5)  # never creates one
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one committed state
            copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file, no -wal beside it
            integrity = "\n".join(str(row[0]) for row in copy.execute("PRAGMA integrity_check"))
            messages = int(copy.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            copy.close()
    finally:
        source.close()
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    return integrity, messages


def _copy_pictures(root: Path, destination: Path) -> int:
    copied = 0
    if not root.is_dir():
        return copied
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if not _PICTURE_NAME.fullmatch(name):
                continue
            source = Path(dirpath) / name
            target = destination / source.relative_to(root)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            except FileNotFoundError:  # deleted with its session meanwhile
                continue
            except OSError as e:
                raise StorageError(f"Could not copy the picture {source.name}: {e.strerror or e}.") from e
            copied += 1
    return copied
