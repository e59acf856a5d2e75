"""SQLAlchemy tables: chat sessions, their messages and their pictures (the newest schema; see migrations.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TITLE_MAX_CHARS = 200
OWNER_MAX_CHARS = 200
LOCAL_OWNER = ""  # the owner of sessions made without a login (no login name is empty, so none can claim them)
ROLES = ("user", "assistant")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def new_session_id() -> str:
    """A new random session id: 32 lowercase hex digits."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and always read back timezone-aware (SQLite keeps no offsets)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to naive UTC; a naive value is taken to be UTC already."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach the UTC offset that the database does not keep."""
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of all Illustrator tables."""


class ChatSession(Base):
    """One conversation in which a writer illustrates a character or scene."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_updated_at", "updated_at"),
        Index("ix_sessions_owner_updated_at", "owner", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_session_id)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    share_token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, default=None)
    owner: Mapped[str] = mapped_column(String(OWNER_MAX_CHARS), default=LOCAL_OWNER, server_default=LOCAL_OWNER)
    # the number of the session's latest picture: it only goes up, so a number is never given twice (migration 5)
    last_picture_number: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    messages: Mapped[list[Message]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True, order_by="Message.id"
    )
    pictures: Mapped[list[Picture]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True, order_by="Picture.id"
    )


class Message(Base):
    """One chat message; an assistant message may show a picture and keep the refiner's plan."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session_turn", "session_id", "turn"),
        CheckConstraint("role IN ('user', 'assistant')", name="ck_messages_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    plan_json: Mapped[str | None] = mapped_column(Text, default=None)
    picture_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("pictures.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[ChatSession] = relationship(back_populates="messages")


class Picture(Base):
    """One drawn picture: its file on disk and everything needed to draw it again."""

    __tablename__ = "pictures"
    __table_args__ = (
        Index("ix_pictures_session_turn", "session_id", "turn"),
        Index("ix_pictures_session_number", "session_id", "number", unique=True),  # a number once per session
        {"sqlite_autoincrement": True},  # an id is never given again after a delete (migration 5)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # #1, #2, ... within its session: the only number a writer sees
    turn: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(255))  # relative to the pictures folder
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[int] = mapped_column(Integer)
    guidance_scale: Mapped[float] = mapped_column(Float)
    strength: Mapped[float | None] = mapped_column(Float, default=None)
    action: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(255))
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("pictures.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    artists: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # credited apart from the prompt; None: none
    sheet_json: Mapped[str | None] = mapped_column(Text, default=None)  # the story sheet it was drawn from
    starred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # a favourite
    own_start: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # from the writer's upload

    session: Mapped[ChatSession] = relationship(back_populates="pictures")
    parent: Mapped[Picture | None] = relationship(remote_side=[id], lazy="select")


class Story(Base):
    """A session's story in story mode: the passage and its beats (JSON: spans, prompts, chosen pictures)."""

    __tablename__ = "stories"
    __table_args__ = (Index("ix_stories_session_id", "session_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"))
    passage: Mapped[str] = mapped_column(Text)
    beats_json: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
