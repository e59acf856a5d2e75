"""Schema migrations: an ordered list of steps, each applied once and recorded in the `schema_version` table.

A step is frozen history: never edit one that has shipped; add a new step and update tables.py to match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
)

from illustrator.errors import StorageError
from storage.tables import utcnow

logger = logging.getLogger(__name__)

_version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One schema step: its version number, what it does, and the function that does it."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial_schema(conn: Connection) -> None:
    """Create sessions, messages and pictures as they were in the first release."""
    md = MetaData()
    Table(
        "sessions",
        md,
        Column("id", String(32), primary_key=True),
        Column("title", String(200), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Index("ix_sessions_updated_at", "updated_at"),
    )
    Table(
        "pictures",
        md,
        Column("id", Integer, primary_key=True),
        Column("session_id", String(32), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        Column("turn", Integer, nullable=False),
        Column("file_name", String(255), nullable=False),
        Column("width", Integer, nullable=False),
        Column("height", Integer, nullable=False),
        Column("size_bytes", BigInteger, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("seed", BigInteger, nullable=False),
        Column("steps", Integer, nullable=False),
        Column("guidance_scale", Float, nullable=False),
        Column("strength", Float, nullable=True),
        Column("action", String(16), nullable=False),
        Column("model", String(255), nullable=False),
        Column("prompt", Text, nullable=False),
        Column("negative_prompt", Text, nullable=False),
        Column("parent_id", Integer, ForeignKey("pictures.id", ondelete="SET NULL"), nullable=True),
        Column("created_at", DateTime, nullable=False),
        Index("ix_pictures_session_turn", "session_id", "turn"),
    )
    Table(
        "messages",
        md,
        Column("id", Integer, primary_key=True),
        Column("session_id", String(32), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        Column("turn", Integer, nullable=False),
        Column("role", String(16), nullable=False),
        Column("content", Text, nullable=False),
        Column("plan_json", Text, nullable=True),
        Column("picture_id", Integer, ForeignKey("pictures.id", ondelete="SET NULL"), nullable=True),
        Column("created_at", DateTime, nullable=False),
        Index("ix_messages_session_turn", "session_id", "turn"),
        CheckConstraint("role IN ('user', 'assistant')", name="ck_messages_role"),
    )
    md.create_all(conn)


def _v2_share_tokens(conn: Connection) -> None:
    """Add the unguessable token behind a session's read-only share link."""
    conn.exec_driver_sql("ALTER TABLE sessions ADD COLUMN share_token VARCHAR(64)")
    conn.exec_driver_sql("CREATE UNIQUE INDEX ix_sessions_share_token ON sessions (share_token)")


def _v6_story_mode(conn: Connection) -> None:
    """Add each picture's credited artists, and the story (passage and beats) of a session in story mode."""
    conn.exec_driver_sql("ALTER TABLE pictures ADD COLUMN artists JSON")
    md = MetaData()
    Table("sessions", md, Column("id", String(32), primary_key=True))
    Table(
        "stories",
        md,
        Column("id", Integer, primary_key=True),
        Column("session_id", String(32), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        Column("passage", Text, nullable=False),
        Column("beats_json", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Index("ix_stories_session_id", "session_id", unique=True),
    )
    md.tables["stories"].create(conn)


def _v3_picture_sheets(conn: Connection) -> None:
    """Add the story sheet each picture was drawn from (JSON text; NULL for pictures drawn before sheets)."""
    conn.exec_driver_sql("ALTER TABLE pictures ADD COLUMN sheet_json TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _v1_initial_schema),
    Migration(2, "share tokens for sessions", _v2_share_tokens),
    Migration(3, "story sheet of each picture", _v3_picture_sheets),
    Migration(6, "artists credited on pictures; stories and their beats", _v6_story_mode),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version of the database behind `conn` (0 when it is empty)."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one())


def upgrade(conn: Connection, target: int = LATEST_VERSION) -> list[int]:
    """Apply the pending steps up to `target` inside the caller's transaction and return the versions applied."""
    schema_version.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise StorageError(
            f"The database was written by a newer version of Illustrator (schema {version}); please upgrade the app."
        )
    applied = []
    for step in MIGRATIONS:
        if version < step.version <= target:
            logger.info("Upgrading the database to schema %d: %s", step.version, step.description)
            step.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=step.version, description=step.description, applied_at=utcnow().replace(tzinfo=None)
                )
            )
            applied.append(step.version)
    return applied
