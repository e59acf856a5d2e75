"""The database: engine, per-connection SQLite settings, sessions and transactions, migrations on start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from illustrator.errors import StorageError
from storage import migrations

logger = logging.getLogger(__name__)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer, nor the writer the readers
    "PRAGMA foreign_keys=ON",  # SQLite ignores ON DELETE CASCADE without it
    "PRAGMA busy_timeout=5000",  # wait for a lock instead of failing at once
    "PRAGMA synchronous=NORMAL",  # safe with WAL, and much faster than FULL
)
_BEGIN_IMMEDIATE = "illustrator_begin_immediate"  # execution option: take SQLite's write lock at BEGIN


def storage_error(error: SQLAlchemyError) -> StorageError:
    """Turn a database failure into a StorageError with a plain sentence for the writer."""
    orig = getattr(error, "orig", None) or error
    reason = str(orig).strip().rstrip(".") or type(orig).__name__
    if "locked" in reason or "busy" in reason:
        return StorageError("The database is busy; please try again in a moment.")
    return StorageError(f"Could not read or write the database: {reason}.")


class Database:
    """One database: its engine, and sessions bound to it (one session per user event, never shared by threads)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            bind=engine.execution_options(**{_BEGIN_IMMEDIATE: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite."""
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        """A new ORM session; the caller commits, rolls back and closes it."""
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: a session that commits on success, rolls back on error and raises StorageError.

        On SQLite it takes the write lock at the start, so read-then-write units (the next turn number) never
        collide; keep it short and never hold it while a picture is drawn.
        """
        db_session = self._write_sessions()
        try:
            yield db_session
            db_session.commit()
        except DatabaseError as e:
            db_session.rollback()
            raise storage_error(e) from e
        except BaseException:
            db_session.rollback()
            raise
        finally:
            db_session.close()

    def schema_version(self) -> int:
        """The schema version of the database."""
        try:
            with self.engine.connect() as conn:
                return migrations.current_version(conn)
        except DatabaseError as e:
            raise storage_error(e) from e

    def check_integrity(self) -> str:
        """The result of SQLite's `PRAGMA integrity_check` ("ok" when healthy); other databases check themselves."""
        if not self.is_sqlite:
            return f"not checked ({self.engine.dialect.name} checks its own integrity)"
        try:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        except DatabaseError as e:
            raise storage_error(e) from e
        return "\n".join(str(row) for row in rows)

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    """Set the pragmas on every new connection, and let SQLAlchemy (not pysqlite) emit BEGIN so DDL is transactional."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite would otherwise commit silently before DDL
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _foreign_keys(conn: Connection, *, on: bool) -> None:
    """Turn SQLite's foreign keys on or off for this connection (outside a transaction: inside, SQLite ignores it)."""
    if conn.dialect.name != "sqlite":
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def create_db(url: str, *, echo: bool = False) -> Database:
    """Open the database at `url` (creating the SQLite file's folder) and upgrade its schema to the newest."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError("The database address is not valid.") from e
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"Could not create the folder for the database: {e.strerror or e}.") from e
    try:
        engine = create_engine(parsed, echo=echo)
    except (ArgumentError, ImportError) as e:
        raise StorageError(f"Cannot open a {parsed.get_backend_name()} database here: {e}.") from e
    if is_sqlite:
        _configure_sqlite(engine)
    try:
        with engine.connect().execution_options(**{_BEGIN_IMMEDIATE: True}) as conn:
            _foreign_keys(conn, on=False)  # a step may rebuild a table (SQLite's way to change one): see migrations
            try:
                with conn.begin():
                    applied = migrations.upgrade(conn)
            finally:
                _foreign_keys(conn, on=True)
    except DatabaseError as e:
        engine.dispose()
        raise storage_error(e) from e
    except StorageError:
        engine.dispose()
        raise
    if applied:
        logger.info("Database schema upgraded to version %d", applied[-1])
    return Database(engine)
