"""Storage fixtures: a real SQLite file per test (handlers run on threads; `:memory:` would hide that), and the same
tests again on a real PostgreSQL server (marker `postgres`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Database, create_db
from storage.repository import SessionRepository


@pytest.fixture
def db_url(database_url: str) -> str:
    """The URL of an empty database: a SQLite file in a folder that does not exist yet, or a PostgreSQL database."""
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite database file in a folder that does not exist yet (for what only SQLite has)."""
    return f"sqlite:///{tmp_path / 'data' / 'illustrator.db'}"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A freshly created database at the newest schema."""
    database = create_db(db_url)
    yield database
    database.dispose()


@pytest.fixture
def repo(db: Database) -> Iterator[SessionRepository]:
    """A repository over one ORM session; the test commits when it wants to."""
    with db.session() as db_session:
        yield SessionRepository(db_session)
