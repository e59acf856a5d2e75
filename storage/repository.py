"""SessionRepository: sessions, messages and pictures in the database; it never commits (the caller does)."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from illustrator.errors import InvalidInput, NotFound
from storage.db import storage_error
from storage.tables import LOCAL_OWNER, ROLES, TITLE_MAX_CHARS, ChatSession, Message, Picture, utcnow

DEFAULT_TITLE = "New session"
TITLE_WORDS = 6
TITLE_CHARS = 60
MAX_PAGE = 1000
MAX_QUERY_CHARS = 200
# Invisible characters that reorder or hide text (bidi overrides and isolates): a title never needs them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_MAX_ROW_ID = 2**63 - 1
_FILE_BASE_NAME = re.compile(r"[0-9a-f]{32}\.png")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _database_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Re-raise database failures from a repository method as StorageError."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DatabaseError as e:
            raise storage_error(e) from e

    return wrapper


def title_from_message(text: str) -> str:
    """A short session title from the writer's first message: its first few words, at most 60 characters."""
    words = "".join(ch for ch in text if ch not in _BIDI_CONTROLS).split()[:TITLE_WORDS]
    title = " ".join(words).strip(" .,;:!?-\"'")
    if len(title) > TITLE_CHARS:
        cut = title[: TITLE_CHARS - 1]
        title = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" .,;:!?-") + "…"
    return title or DEFAULT_TITLE


def _clean_title(title: str) -> str:
    """The title without surrounding or repeated whitespace, or InvalidInput when it is empty or too long."""
    cleaned = " ".join(str(title).split())
    if not cleaned:
        raise InvalidInput("A session title cannot be empty.")
    if len(cleaned) > TITLE_MAX_CHARS:
        raise InvalidInput(f"A session title can have at most {TITLE_MAX_CHARS} characters.")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in _BIDI_CONTROLS for ch in cleaned):
        raise InvalidInput("A session title cannot hold invisible control characters; please type it again.")
    return cleaned


def _check_page(limit: int | None, offset: int) -> None:
    """Reject a page size or offset we cannot use (`limit=None` means no limit)."""
    if limit is not None and not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"`limit` must be between 1 and {MAX_PAGE}, not {limit}.")
    if offset < 0:
        raise InvalidInput(f"`offset` cannot be negative ({offset}).")


def _like_pattern(query: str) -> str:
    """A LIKE pattern that finds `query` anywhere, with its own % and _ taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _owned(stmt: Select[T], owner: str | None) -> Select[T]:
    """`stmt` over pictures, kept to those in sessions of `owner` (all when `owner` is None)."""
    if owner is None:
        return stmt
    return stmt.where(Picture.session_id.in_(select(ChatSession.id).where(ChatSession.owner == owner)))


def next_picture_number(db: Session, session_id: str) -> int:
    """Take the session's next picture number (#1, #2, ...): one atomic UPDATE, so two writers never get the same one,
    and a number stays taken after its picture is deleted."""
    stmt = (
        update(ChatSession)
        .where(ChatSession.id == session_id)
        .values(last_picture_number=ChatSession.last_picture_number + 1)
        .returning(ChatSession.last_picture_number)
        .execution_options(synchronize_session=False)
    )
    number = db.execute(stmt).scalar_one_or_none()
    if number is None:
        raise NotFound("That session does not exist.")
    chat_session = db.get(ChatSession, session_id)
    if chat_session is not None:
        db.expire(chat_session, ["last_picture_number"])
    return int(number)


class SessionRepository:
    """Sessions, their messages and their pictures, read and written through one ORM session."""

    def __init__(self, db_session: Session) -> None:
        self.db = db_session

    # --- sessions ---------------------------------------------------------------------------------------------

    @_database_errors
    def create_session(self, title: str = DEFAULT_TITLE, owner: str = LOCAL_OWNER) -> ChatSession:
        """Create an empty session belonging to `owner`."""
        now = utcnow()
        chat_session = ChatSession(title=_clean_title(title), created_at=now, updated_at=now, owner=owner)
        self.db.add(chat_session)
        self.db.flush()
        return chat_session

    @_database_errors
    def get_session(self, session_id: str, owner: str | None = None, *, for_update: bool = False) -> ChatSession:
        """The session with this id (of this owner, unless `owner` is None: another's reads the same), or NotFound;
        `for_update` locks its row until the transaction ends.

        Locking the session's row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
        write lock) makes read-then-write units on one session, such as numbering its next turn, take turns.
        """
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            raise NotFound("That session does not exist.")
        chat_session = self.db.get(
            ChatSession, session_id, with_for_update=for_update or None, populate_existing=for_update
        )
        if chat_session is None or (owner is not None and chat_session.owner != owner):
            raise NotFound("That session does not exist.")
        return chat_session

    @_database_errors
    def list_sessions(
        self, limit: int | None = 100, offset: int = 0, query: str | None = None, owner: str | None = None
    ) -> list[ChatSession]:
        """Sessions (of `owner`, or all), most recently used first; `query` keeps those whose text contains it."""
        _check_page(limit, offset)
        stmt = select(ChatSession)
        if query is not None and len(query.strip()) > MAX_QUERY_CHARS:
            raise InvalidInput(f"A search can be at most {MAX_QUERY_CHARS} characters long.")
        if owner is not None:
            stmt = stmt.where(ChatSession.owner == owner)
        if query is not None and query.strip():
            pattern = _like_pattern(query.strip())
            in_messages = select(Message.id).where(
                Message.session_id == ChatSession.id, Message.content.ilike(pattern, escape="\\")
            )
            in_prompts = select(Picture.id).where(
                Picture.session_id == ChatSession.id, Picture.prompt.ilike(pattern, escape="\\")
            )
            stmt = stmt.where(
                or_(ChatSession.title.ilike(pattern, escape="\\"), in_messages.exists(), in_prompts.exists())
            )
        stmt = stmt.order_by(ChatSession.updated_at.desc(), ChatSession.created_at.desc(), ChatSession.id)
        return list(self.db.scalars(stmt.limit(limit).offset(offset)))

    @_database_errors
    def rename_session(self, session_id: str, title: str) -> ChatSession:
        """Give a session a new title."""
        chat_session = self.get_session(session_id)
        chat_session.title = _clean_title(title)
        self.touch(chat_session)
        self.db.flush()
        return chat_session

    @_database_errors
    def delete_session(self, session_id: str) -> list[str]:
        """Delete a session with its messages and pictures, and return the picture file names to remove from disk."""
        chat_session = self.get_session(session_id)
        file_names = list(
            self.db.scalars(select(Picture.file_name).where(Picture.session_id == session_id).order_by(Picture.id))
        )
        self.db.delete(chat_session)
        self.db.flush()
        return file_names

    def touch(self, chat_session: ChatSession) -> None:
        """Mark a session as used just now (it moves to the top of the list)."""
        chat_session.updated_at = utcnow()

    @_database_errors
    def share_session(self, session_id: str) -> str:
        """The unguessable token of a session's read-only share link, made on first use."""
        chat_session = self.get_session(session_id, for_update=True)
        if chat_session.share_token is None:
            chat_session.share_token = secrets.token_urlsafe(24)
            self.db.flush()
        return chat_session.share_token

    @_database_errors
    def unshare_session(self, session_id: str) -> None:
        """Stop sharing a session: its old link stops working."""
        self.get_session(session_id).share_token = None
        self.db.flush()

    @_database_errors
    def get_shared_session(self, share_token: str) -> ChatSession:
        """The session behind a share link, or NotFound."""
        if not isinstance(share_token, str) or not share_token or len(share_token) > 64:
            raise NotFound("That shared session does not exist.")
        chat_session = self.db.scalars(select(ChatSession).where(ChatSession.share_token == share_token)).first()
        if chat_session is None:
            raise NotFound("That shared session does not exist.")
        return chat_session

    # --- messages ---------------------------------------------------------------------------------------------

    @_database_errors
    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        plan_json: str | None = None,
        picture_id: int | None = None,
    ) -> Message:
        """Add a message: a user message opens the next turn, an assistant message answers in the current one."""
        if role not in ROLES:
            raise InvalidInput(f"`role` must be one of {', '.join(ROLES)}, not {role!r}.")
        chat_session = self.get_session(session_id, for_update=True)  # the next turn's number is read, then written
        if picture_id is not None and self.get_picture(picture_id).session_id != session_id:
            raise InvalidInput("A message can only show a picture of its own session.")
        turn = self._current_turn(session_id)
        if role == "user" or turn == 0:
            turn += 1
        message = Message(
            session_id=session_id, turn=turn, role=role, content=content, plan_json=plan_json, picture_id=picture_id
        )
        self.db.add(message)
        self.touch(chat_session)
        self.db.flush()
        return message

    @_database_errors
    def list_messages(self, session_id: str) -> list[Message]:
        """A session's messages in conversation order."""
        self.get_session(session_id)
        stmt = select(Message).where(Message.session_id == session_id).order_by(Message.turn, Message.id)
        return list(self.db.scalars(stmt))

    def _current_turn(self, session_id: str) -> int:
        """The turn of the session's latest message (0 when it has none)."""
        stmt = select(func.coalesce(func.max(Message.turn), 0)).where(Message.session_id == session_id)
        return int(self.db.execute(stmt).scalar_one())

    # --- pictures ---------------------------------------------------------------------------------------------

    @_database_errors
    def add_picture(
        self,
        session_id: str,
        *,
        file_name: str,
        width: int,
        height: int,
        size_bytes: int,
        sha256: str,
        seed: int,
        steps: int,
        guidance_scale: float,
        action: str,
        model: str,
        prompt: str,
        negative_prompt: str = "",
        strength: float | None = None,
        parent_id: int | None = None,
        turn: int | None = None,
        sheet_json: str | None = None,
        own_start: bool = False,
        number: int | None = None,
    ) -> Picture:
        """Record a picture saved on disk with the session's next number (or `number`, taken earlier with
        next_picture_number); `turn` defaults to the session's current turn; `own_start`: drawn from the writer's own
        uploaded picture (then it has no parent)."""
        chat_session = self.get_session(session_id, for_update=True)
        if parent_id is not None:
            self.get_picture(parent_id)
        picture = Picture(
            session_id=session_id,
            number=next_picture_number(self.db, session_id) if number is None else number,
            own_start=own_start,
            turn=max(self._current_turn(session_id), 1) if turn is None else turn,
            file_name=file_name,
            width=width,
            height=height,
            size_bytes=size_bytes,
            sha256=sha256,
            seed=seed,
            steps=steps,
            guidance_scale=guidance_scale,
            strength=strength,
            action=action,
            model=model,
            prompt=prompt,
            negative_prompt=negative_prompt,
            parent_id=parent_id,
            sheet_json=sheet_json,
        )
        self.db.add(picture)
        self.touch(chat_session)
        self.db.flush()
        return picture

    @_database_errors
    def get_picture(self, picture_id: int, owner: str | None = None) -> Picture:
        """The picture with this id (in a session of this owner, unless `owner` is None), or NotFound."""
        if isinstance(picture_id, bool) or not isinstance(picture_id, int) or not 0 < picture_id <= _MAX_ROW_ID:
            raise NotFound("That picture does not exist.")
        picture = self.db.get(Picture, picture_id)
        if picture is None or (owner is not None and picture.session.owner != owner):
            raise NotFound("That picture does not exist.")
        return picture

    @_database_errors
    def get_picture_by_number(self, session_id: str, number: int, owner: str | None = None) -> Picture:
        """The picture numbered `number` in the session (of this owner, unless `owner` is None), or NotFound."""
        self.get_session(session_id, owner)
        stmt = select(Picture).where(Picture.session_id == session_id, Picture.number == number)
        picture = self.db.scalars(stmt).first() if isinstance(number, int) else None
        if picture is None:
            raise NotFound("That picture does not exist.")
        return picture

    @_database_errors
    def set_starred(self, picture_id: int, starred: bool, owner: str | None = None) -> Picture:
        """Star a picture (a favourite) or take its star away."""
        picture = self.get_picture(picture_id, owner)
        picture.starred = bool(starred)
        self.db.flush()
        return picture

    @_database_errors
    def list_pictures(
        self,
        session_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        owner: str | None = None,
        *,
        newest_first: bool | None = None,
        starred: bool = False,
    ) -> list[Picture]:
        """A session's pictures in the order they were drawn, or with no session all pictures (of `owner`), newest
        first (`newest_first` chooses either way); `starred` keeps only the starred ones."""
        _check_page(limit, offset)
        if session_id is None:
            stmt = _owned(select(Picture), owner)
        else:
            self.get_session(session_id, owner)
            stmt = select(Picture).where(Picture.session_id == session_id)
        if starred:
            stmt = stmt.where(Picture.starred.is_(True))
        newest = session_id is None if newest_first is None else newest_first
        stmt = stmt.order_by(Picture.id.desc() if newest else Picture.id)
        return list(self.db.scalars(stmt.limit(limit).offset(offset)))

    @_database_errors
    def last_picture(self, session_id: str) -> Picture | None:
        """The picture the session ended on (the one its latest picture message shows), or None if it has none."""
        self.get_session(session_id)
        shown = (
            select(Message.picture_id)
            .where(Message.session_id == session_id, Message.picture_id.is_not(None))
            .order_by(Message.turn.desc(), Message.id.desc())
            .limit(1)
        )
        picture_id = self.db.execute(shown).scalar()
        if picture_id is None:  # pictures recorded without a message: the newest one
            newest = select(Picture.id).where(Picture.session_id == session_id).order_by(Picture.id.desc()).limit(1)
            picture_id = self.db.execute(newest).scalar()
        return None if picture_id is None else self.db.get(Picture, picture_id)

    @_database_errors
    def count_pictures(self, session_id: str | None = None, owner: str | None = None, *, starred: bool = False) -> int:
        """How many pictures a session has, or all sessions (of `owner`) together (`starred`: only starred ones)."""
        stmt = _owned(select(func.count(Picture.id)), owner)
        if starred:
            stmt = stmt.where(Picture.starred.is_(True))
        if session_id is not None:
            self.get_session(session_id, owner)
            stmt = stmt.where(Picture.session_id == session_id)
        return int(self.db.execute(stmt).scalar_one())

    @_database_errors
    def owner_of_file(self, base_name: str) -> str | None:
        """The owner of the picture whose file is named `base_name` (`<32 hex>.png`, in any month), or None."""
        if not _FILE_BASE_NAME.fullmatch(base_name):
            return None
        stmt = (
            select(ChatSession.owner)
            .join(Picture, Picture.session_id == ChatSession.id)
            .where(Picture.file_name.endswith("/" + base_name))
            .limit(1)
        )
        return self.db.execute(stmt).scalar()

    @_database_errors
    def owners_of_content(self, sha256: str) -> set[str]:
        """The owners of the pictures whose file has exactly this content (a copy named for a download)."""
        stmt = select(ChatSession.owner).join(Picture, Picture.session_id == ChatSession.id)
        return set(self.db.scalars(stmt.where(Picture.sha256 == sha256).distinct()))

    @_database_errors
    def all_file_names(self) -> set[str]:
        """The file names of every picture (for PictureFiles.reconcile at start-up)."""
        return set(self.db.scalars(select(Picture.file_name)))
