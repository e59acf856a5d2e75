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


def _v4_session_owners(conn: Connection) -> None:
    """Give every session an owner (the login that made it); sessions made before logins get the local owner ''."""
    conn.exec_driver_sql("ALTER TABLE sessions ADD COLUMN owner VARCHAR(200) NOT NULL DEFAULT ''")
    conn.exec_driver_sql("CREATE INDEX ix_sessions_owner_updated_at ON sessions (owner, updated_at)")


def _v5_picture_numbers(conn: Connection) -> None:
    """Number each session's pictures #1, #2, ... in the order they were made, from a per-session counter that never
    goes back; add favourites (`starred`) and `own_start`; on SQLite, picture ids are never given again
    (AUTOINCREMENT: a plain INTEGER PRIMARY KEY gives the highest id again after the newest row is deleted)."""
    conn.exec_driver_sql("ALTER TABLE sessions ADD COLUMN last_picture_number INTEGER NOT NULL DEFAULT 0")
    if conn.dialect.name == "sqlite":
        _rebuild_sqlite_pictures(conn)
    else:  # PostgreSQL: SERIAL ids come from a sequence, which never goes back
        conn.exec_driver_sql("ALTER TABLE pictures ADD COLUMN number INTEGER")
        conn.exec_driver_sql("ALTER TABLE pictures ADD COLUMN starred BOOLEAN NOT NULL DEFAULT false")
        conn.exec_driver_sql("ALTER TABLE pictures ADD COLUMN own_start BOOLEAN NOT NULL DEFAULT false")
        conn.exec_driver_sql(
            f"UPDATE pictures SET number = n.number FROM ({_NUMBERED}) AS n WHERE pictures.id = n.id"  # noqa: S608
        )
        conn.exec_driver_sql("ALTER TABLE pictures ALTER COLUMN number SET NOT NULL")
    conn.exec_driver_sql("CREATE UNIQUE INDEX ix_pictures_session_number ON pictures (session_id, number)")
    conn.exec_driver_sql(
        "UPDATE sessions SET last_picture_number ="
        " COALESCE((SELECT MAX(number) FROM pictures WHERE pictures.session_id = sessions.id), 0)"
    )


# each picture's number: its place in its session, in the order the pictures were made
_NUMBERED = "SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY id) AS number FROM pictures"


def _rebuild_sqlite_pictures(conn: Connection) -> None:
    """SQLite's way to change a table (sqlite.org/lang_altertable.html): make the new one, copy, drop, rename.

    Built from the table as it is, so columns that other steps added (whichever ran first) are kept. create_db runs
    the steps with foreign keys off, so that dropping the old table deletes nothing that points at it.
    """
    broken_before = len(conn.exec_driver_sql("PRAGMA foreign_key_check").all())
    columns = conn.exec_driver_sql("PRAGMA table_info(pictures)").all()  # cid, name, type, notnull, default, pk
    keys = conn.exec_driver_sql("PRAGMA foreign_key_list(pictures)").all()  # id, seq, table, from, to, upd, del, ...
    indexes = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pictures' AND sql IS NOT NULL"
    ).scalars()
    index_sql = list(indexes)
    definitions = []
    for _, name, kind, not_null, default, primary in columns:
        if primary:
            definitions.append(f'"{name}" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT')
            continue
        definition = f'"{name}" {kind}' + (" NOT NULL" if not_null else "")
        definitions.append(definition + (f" DEFAULT {default}" if default is not None else ""))
    definitions += [
        "number INTEGER NOT NULL",
        "starred BOOLEAN NOT NULL DEFAULT 0",
        "own_start BOOLEAN NOT NULL DEFAULT 0",
    ]
    for key in keys:
        definitions.append(f'FOREIGN KEY("{key[3]}") REFERENCES "{key[2]}" ("{key[4]}") ON DELETE {key[6]}')
    names = ", ".join(f'"{column[1]}"' for column in columns)
    conn.exec_driver_sql("CREATE TABLE pictures_v5 (\n\t" + ",\n\t".join(definitions) + "\n)")
    conn.exec_driver_sql(
        f"INSERT INTO pictures_v5 ({names}, number) SELECT {names},"  # noqa: S608 - our own column names
        " row_number() OVER (PARTITION BY session_id ORDER BY id) FROM pictures"
    )
    conn.exec_driver_sql("DROP TABLE pictures")
    conn.exec_driver_sql("ALTER TABLE pictures_v5 RENAME TO pictures")
    for sql in index_sql:
        conn.exec_driver_sql(sql)
    broken = len(conn.exec_driver_sql("PRAGMA foreign_key_check").all())
    if broken > broken_before:  # only what the rebuild broke: an older dangling reference is no reason to stop
        raise StorageError(f"Upgrading the pictures table would break {broken - broken_before} reference(s).")


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
    Migration(4, "an owner for every session", _v4_session_owners),
    Migration(5, "per-session picture numbers, favourites, ids never given again", _v5_picture_numbers),
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
    # by the steps recorded, not the highest: steps numbered apart may ship in any order (6 before 4)
    done = set(conn.execute(select(schema_version.c.version)).scalars())
    applied = []
    for step in MIGRATIONS:
        if step.version not in done and step.version <= target:
            logger.info("Upgrading the database to schema %d: %s", step.version, step.description)
            step.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=step.version, description=step.description, applied_at=utcnow().replace(tzinfo=None)
                )
            )
            applied.append(step.version)
    return applied
