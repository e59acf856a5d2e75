"""The start-up check: after a crash (or a kill) the database is whole and every picture row has its file.

Pictures are saved file first (temp file, fsync, rename), row second, so a crash can leave a picture file or a temp
file that no row knows, but never a row without its file; a file deleted by hand can. The check runs before the app
serves anything, while no picture is being saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from illustrator.errors import NotFound, StorageError
from storage.db import Database
from storage.files import PictureFiles
from storage.tables import Picture

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecoveryReport:
    """What the start-up check found and did."""

    integrity: str
    removed_files: list[str] = field(default_factory=list)  # temp files (partial writes) left by a crash
    removed_pictures: list[int] = field(default_factory=list)  # rows whose file was gone
    set_aside_files: list[str] = field(default_factory=list)  # whole pictures no row knew: moved, never deleted

    @property
    def changed(self) -> bool:
        """Whether anything was repaired."""
        return bool(self.removed_files or self.removed_pictures or self.set_aside_files)


def recover(db: Database, files: PictureFiles) -> RecoveryReport:
    """Check the database, drop picture rows whose file is gone, set aside files no row knows; say what was done."""
    # 1. the database itself: refuse to go on with a damaged one rather than damage it further
    integrity = db.check_integrity()
    if integrity != "ok" and not integrity.startswith("not checked"):
        logger.error("The database failed its integrity check:\n%s", integrity)
        raise StorageError(
            "The database is damaged (it failed its integrity check); the app stopped so as not to make it worse. "
            "Keep a copy of the data folder and see the log for details."
        )

    # 2. rows whose picture file is gone: the conversation keeps its messages, the message loses the picture
    with db.transaction() as session:
        rows = session.execute(select(Picture.id, Picture.file_name)).all()
        missing = [picture_id for picture_id, file_name in rows if not _exists(files, file_name)]
        if missing:
            session.execute(delete(Picture).where(Picture.id.in_(missing)))
        known = {file_name for picture_id, file_name in rows if picture_id not in set(missing)}
    for picture_id in missing:
        logger.warning("Picture #%d had no file on disk; its row was removed (its message is kept)", picture_id)

    # 3. files that no row knows (a crash between saving the file and committing its row, an older database
    #    restored): set aside, never deleted; temp files (partial writes) removed
    reconciled = files.reconcile(known)
    report = RecoveryReport(
        integrity, removed_files=reconciled.removed, removed_pictures=missing, set_aside_files=reconciled.set_aside
    )
    if report.changed:
        logger.info(
            "Start-up check: set aside %d picture file(s); removed %d temp file(s), %d picture row(s) without a file",
            len(reconciled.set_aside),
            len(reconciled.removed),
            len(missing),
        )
    return report


def _exists(files: PictureFiles, file_name: str) -> bool:
    try:
        files.path(file_name)
    except NotFound:
        return False
    return True
