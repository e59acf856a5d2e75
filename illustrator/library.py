"""The writer's library, the one front door for sessions: list, open, rename, delete, share, export, the gallery."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from illustrator.errors import IllustratorError, InvalidInput, NotFound, StorageError
from illustrator.export import export_session
from illustrator.labels import download_name
from illustrator.service import PictureView, SessionSummary, SessionView, message_view, picture_view
from illustrator.writers import LOCAL_WRITER, Writer
from storage.db import Database
from storage.files import PictureFiles
from storage.pngmeta import parse_parameters_text, read_png_metadata
from storage.repository import SessionRepository
from storage.thumbnails import Thumbnails

logger = logging.getLogger(__name__)

PER_PAGE = 60
MAX_PARAMETERS_CHARS = 20_000  # A1111 writes a few hundred; a prompt is at most 1,000 (the rest is settings)


@dataclass(frozen=True)
class PicturePage:
    """One page of the gallery, newest first, with a thumbnail for each picture (None if missing) and the title of
    each picture's session."""

    pictures: list[PictureView]
    thumbnails: list[Path | None]
    page: int  # 1-based
    pages: int
    total: int
    titles: list[str] = field(default_factory=list)  # each picture's session's title, in the same order


@dataclass(frozen=True)
class ImportedPicture:
    """The parameters read back from a picture file; None where the file does not say."""

    prompt: str
    negative_prompt: str
    seed: int | None
    steps: int | None
    width: int | None
    height: int | None
    strength: float | None
    guidance_scale: float | None
    model: str | None
    session_id: str | None  # set when the picture was made by Illustrator
    turn: int | None
    parent_id: int | None

    @property
    def made_here(self) -> bool:
        """Whether Illustrator made the picture (it carries our own JSON, not only the A1111 text)."""
        return self.session_id is not None


def read_imported_picture(file: str | Path | IO[bytes]) -> ImportedPicture:
    """The generation parameters embedded in a PNG (ours or any A1111-compatible tool's); InvalidInput if none."""
    metadata = read_png_metadata(file)
    text = metadata["parameters"]
    ours = metadata["illustrator"] or {}
    if not text:
        raise InvalidInput("That picture carries no generation parameters (it was not made by Illustrator).")
    if len(text) > MAX_PARAMETERS_CHARS:
        raise InvalidInput(
            f"That picture's generation parameters are too long to import: {len(text)} characters "
            f"(the limit is {MAX_PARAMETERS_CHARS})."
        )
    values = _in_range(parse_parameters_text(text))
    session_id = ours.get("session_id")
    turn = ours.get("turn")
    parent_id = ours.get("parent_id")
    return ImportedPicture(
        prompt=values["prompt"],
        negative_prompt=values["negative_prompt"],
        seed=values["seed"],
        steps=values["steps"],
        width=values["width"],
        height=values["height"],
        strength=values["strength"],
        guidance_scale=values["guidance_scale"],
        model=values["model"],
        session_id=session_id if isinstance(session_id, str) else None,
        turn=turn if isinstance(turn, int) else None,
        parent_id=parent_id if isinstance(parent_id, int) else None,
    )


def _in_range(values: dict[str, Any]) -> dict[str, Any]:
    """The parsed parameters with every value this app could not use (out of range, wrong kind) dropped to None."""
    from illustrator.generator import MAX_GUIDANCE_SCALE, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE

    def number(value: Any, low: float, high: float) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high

    checks: dict[str, Callable[[Any], bool]] = {
        "steps": lambda v: number(v, 1, MAX_STEPS),
        "seed": lambda v: number(v, 0, MAX_SEED),
        "width": lambda v: number(v, MIN_SIZE, MAX_SIZE) and v % 8 == 0,
        "height": lambda v: number(v, MIN_SIZE, MAX_SIZE) and v % 8 == 0,
        "strength": lambda v: number(v, 0.0, 1.0) and v > 0,
        "guidance_scale": lambda v: number(v, 0.0, MAX_GUIDANCE_SCALE),
    }
    checked = dict(values)
    for name, fits in checks.items():
        if checked.get(name) is not None and not fits(checked[name]):
            logger.info("An imported picture's %s (%r) is out of range; it was left out", name, checked[name])
            checked[name] = None
    if checked["width"] is None or checked["height"] is None:
        checked["width"] = checked["height"] = None
    return checked


class Library:
    """The writer's sessions and pictures (everything but running a turn); one database session per call.

    Every call acts for one `writer` and sees only that writer's sessions and pictures: another writer's id reads
    as NotFound. The default is the local writer, so a call that forgets its writer under logins finds nothing.
    """

    def __init__(self, db: Database, files: PictureFiles, thumbnails: Thumbnails, exports: Path | None = None) -> None:
        self._db = db
        self._files = files
        self._thumbnails = thumbnails
        self._exports = exports  # where export zips wait to be downloaded, one folder per session

    # Sessions ------------------------------------------------------------------------------------

    def create_session(self, title: str = "New session", *, writer: Writer = LOCAL_WRITER) -> SessionSummary:
        """Create an empty session of the writer's."""
        with self._db.transaction() as db:
            chat = SessionRepository(db).create_session(title, owner=writer.owner)
            return SessionSummary(chat.id, chat.title, chat.updated_at)

    def list_sessions(
        self, query: str | None = None, limit: int = 100, *, writer: Writer = LOCAL_WRITER
    ) -> list[SessionSummary]:
        """The writer's sessions, most recently used first, each with the thumbnail of the picture it ended on."""
        with self._db.session() as db:
            repo = SessionRepository(db)
            rows = []
            for chat in repo.list_sessions(limit=limit, query=query or None, owner=writer.owner):
                last = repo.last_picture(chat.id)
                rows.append((SessionSummary(chat.id, chat.title, chat.updated_at), last.file_name if last else None))
        return [replace(summary, thumbnail=self._thumbnail_of(name) if name else None) for summary, name in rows]

    def open_session(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> SessionView:
        """The whole conversation of a session of the writer's, with its pictures."""
        return self._view(session_id, writer.owner)

    def _view(self, session_id: str, owner: str | None) -> SessionView:
        with self._db.session() as db:
            repo = SessionRepository(db)
            chat = repo.get_session(session_id, owner)
            pictures = {p.id: picture_view(p, self._files.root) for p in repo.list_pictures(session_id, limit=None)}
            messages = [message_view(m, pictures) for m in repo.list_messages(session_id)]
            last = repo.last_picture(session_id)
            return SessionView(chat.id, chat.title, messages, pictures.get(last.id) if last else None)

    def rename_session(self, session_id: str, title: str, *, writer: Writer = LOCAL_WRITER) -> None:
        """Give a session a new title."""
        title = " ".join(title.split())
        if not title:
            raise InvalidInput("A session title cannot be empty.")
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            repo.get_session(session_id, writer.owner)
            repo.rename_session(session_id, title[:120])

    def get_picture(self, picture_id: int, *, writer: Writer = LOCAL_WRITER) -> PictureView:
        """One of the writer's pictures' details."""
        with self._db.session() as db:
            return picture_view(SessionRepository(db).get_picture(picture_id, writer.owner), self._files.root)

    def session_pictures(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> list[PictureView]:
        """Every picture of a session of the writer's, in the order drawn (its lineage tree is made of them)."""
        with self._db.session() as db:
            rows = SessionRepository(db).list_pictures(session_id, limit=None, owner=writer.owner)
            return [picture_view(row, self._files.root) for row in rows]

    def delete_session(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> None:
        """Delete a session of the writer's, its messages, its picture files and their thumbnails."""
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            repo.get_session(session_id, writer.owner)
            file_names = repo.delete_session(session_id)
        for name in file_names:
            self._files.delete(name)
            self._thumbnails.delete(name)
        if self._exports is not None:
            shutil.rmtree(self._exports / session_id, ignore_errors=True)

    def export(self, session_id: str, *, starred: bool = False, writer: Writer = LOCAL_WRITER) -> Path:
        """A session of the writer's as a zip (storyboard and original pictures), replacing its earlier export;
        `starred`: only the starred pictures."""
        if self._exports is None:
            raise InvalidInput("Exports are not set up in this app.")
        view = self.open_session(session_id, writer=writer)
        folder = self._exports / view.id  # an id checked by open_session: 32 hex digits, never a path
        folder = folder / "starred" if starred else folder
        for earlier in folder.glob("*.zip"):  # the earlier export (another title, perhaps); downloads stay
            earlier.unlink(missing_ok=True)
        return export_session(view, folder, starred=starred)

    def download(self, picture_id: int, *, writer: Writer = LOCAL_WRITER) -> Path:
        """A picture of the writer's as a file named for the writer ("crow-city-03.png"), in its session's export
        folder (a link to the stored file where the disk allows, else a copy)."""
        with self._db.session() as db:
            picture = SessionRepository(db).get_picture(picture_id, writer.owner)
            view, title = picture_view(picture, self._files.root), picture.session.title
        return self._named_copy(view, title)

    def _named_copy(self, view: PictureView, title: str) -> Path:
        if self._exports is None:
            raise InvalidInput("Downloads are not set up in this app.")
        folder = self._exports / view.session_id / "downloads"
        target = folder / download_name(title, view.number)
        try:
            if target.exists() and os.path.samefile(target, view.path):
                return target
            folder.mkdir(parents=True, exist_ok=True)
            temp = folder / f".{secrets.token_hex(8)}.tmp"
            try:
                os.link(view.path, temp)
            except OSError:
                shutil.copyfile(view.path, temp)
            os.replace(temp, target)  # whole or not at all, even with two requests at once
        except OSError as e:
            raise StorageError(f"Could not prepare the download: {e.strerror or e}.") from e
        return target

    def star(self, picture_id: int, starred: bool = True, *, writer: Writer = LOCAL_WRITER) -> PictureView:
        """Star a picture of the writer's (a favourite), or take its star away; returns the picture."""
        with self._db.transaction() as db:
            return picture_view(SessionRepository(db).set_starred(picture_id, starred, writer.owner), self._files.root)

    # The gallery ---------------------------------------------------------------------------------

    def pictures(
        self,
        session_id: str | None = None,
        page: int = 1,
        per_page: int = PER_PAGE,
        *,
        starred: bool = False,
        writer: Writer = LOCAL_WRITER,
    ) -> PicturePage:
        """One page of a session's pictures, or of all the writer's, newest first (`starred`: only starred ones)."""
        if not 1 <= per_page <= 200:
            raise InvalidInput(f"`per_page` must be between 1 and 200, not {per_page}.")
        with self._db.session() as db:
            repo = SessionRepository(db)
            total = repo.count_pictures(session_id, owner=writer.owner, starred=starred)
            pages = max(1, math.ceil(total / per_page))
            page = min(max(1, int(page)), pages)
            rows = repo.list_pictures(
                session_id,
                limit=per_page,
                offset=(page - 1) * per_page,
                owner=writer.owner,
                newest_first=True,
                starred=starred,
            )
            views = [picture_view(row, self._files.root) for row in rows]
            titles = [row.session.title for row in rows]
        thumbnails = [self._thumbnail_of(v.file_name) for v in views]
        return PicturePage(views, thumbnails, page, pages, total, titles)

    def session_title(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> str:
        """The title of a session of the writer's."""
        with self._db.session() as db:
            return SessionRepository(db).get_session(session_id, writer.owner).title

    def thumbnail(self, picture: PictureView) -> Path | None:
        """The picture's small WebP copy (made on first use), or None when the picture file is missing."""
        return self._thumbnail_of(picture.file_name)

    def _thumbnail_of(self, file_name: str) -> Path | None:
        try:
            return self._thumbnails.path(file_name)
        except IllustratorError as e:
            logger.warning("No thumbnail for picture file %s: %s", file_name, e)
            return None

    # Share links ---------------------------------------------------------------------------------

    def share(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> str:
        """The unguessable token of the session's read-only link (the same token until it is revoked)."""
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            repo.get_session(session_id, writer.owner)
            return repo.share_session(session_id)

    def unshare(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> None:
        """Revoke the session's link: the old token stops working at once."""
        with self._db.transaction() as db:
            repo = SessionRepository(db)
            repo.get_session(session_id, writer.owner)
            repo.unshare_session(session_id)

    def share_token(self, session_id: str, *, writer: Writer = LOCAL_WRITER) -> str | None:
        """The session's current share token, or None when it is not shared."""
        with self._db.session() as db:
            return SessionRepository(db).get_session(session_id, writer.owner).share_token

    def shared_session(self, token: str) -> SessionView:
        """The session behind a share link; NotFound for a wrong or revoked token."""
        with self._db.session() as db:
            session_id = SessionRepository(db).get_shared_session(token).id
        return self._view(session_id, None)  # the link is the permission: shown to anyone who has it

    def shared_picture(self, token: str, number: int) -> Path:
        """The file of the shared session's picture #`number`; NotFound for any other, or for a wrong token."""
        with self._db.session() as db:
            repo = SessionRepository(db)
            session_id = repo.get_shared_session(token).id
            file_name = repo.get_picture_by_number(session_id, number).file_name
        return self._files.path(file_name)

    def owns_picture_file(self, base_name: str, writer: Writer) -> bool:
        """Whether the picture file named `base_name` (`<32 hex>.png`) belongs to one of the writer's sessions."""
        with self._db.session() as db:
            return SessionRepository(db).owner_of_file(base_name) == writer.owner

    def owns_picture_copy(self, path: Path, writer: Writer) -> bool | None:
        """Whether a file that holds a picture under another name (a named download, or Gradio's copy of one) is a
        picture of the writer's; None when its content is no picture of anyone's."""
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None
        with self._db.session() as db:
            owners = SessionRepository(db).owners_of_content(digest)
        return writer.owner in owners if owners else None

    def owns_session(self, session_id: str, writer: Writer) -> bool:
        """Whether the session exists and is the writer's."""
        try:
            with self._db.session() as db:
                SessionRepository(db).get_session(session_id, writer.owner)
        except NotFound:
            return False
        return True
