"""The database: connection settings, migrations, integrity, errors and use from several threads."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from illustrator.errors import StorageError
from storage import migrations
from storage.db import Database, create_db
from storage.repository import SessionRepository
from storage.tables import Base
from tests.storage.factories import picture_fields

SESSION_ID = "0123456789abcdef0123456789abcdef"


def test_every_connection_gets_the_sqlite_settings(sqlite_url: str) -> None:
    db = create_db(sqlite_url)
    assert Path(sqlite_url.removeprefix("sqlite:///")).is_file()  # the missing folder was created
    connections = [db.engine.connect() for _ in range(3)]  # several pooled connections, not just the first
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        for conn in connections:
            conn.close()
        db.dispose()


def test_new_database_is_at_the_latest_schema_and_healthy(db: Database) -> None:
    assert db.schema_version() == migrations.LATEST_VERSION == migrations.MIGRATIONS[-1].version
    assert db.check_integrity() == ("ok" if db.is_sqlite else "not checked (postgresql checks its own integrity)")


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys()), table.name
        declared = {ix.name for ix in table.indexes}
        assert {ix["name"] for ix in inspector.get_indexes(table.name)} == declared, table.name


def _make_v1_database(url: str) -> None:
    """A database file as the first release left it, with one session, picture and message in it."""
    engine = create_engine(url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=1) == [1]
        now = datetime(2024, 5, 1, 12, 0, 0)
        conn.execute(
            text("INSERT INTO sessions (id, title, created_at, updated_at) VALUES (:id, 'Old story', :now, :now)"),
            {"id": SESSION_ID, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO pictures (session_id, turn, file_name, width, height, size_bytes, sha256, seed, steps,"
                " guidance_scale, action, model, prompt, negative_prompt, created_at) VALUES (:sid, 1, '2024/05/a.png',"
                " 512, 512, 10, :sha, 42, 2, 0.0, 'new', 'sd-turbo', 'an old lighthouse', '', :now)"
            ),
            {"sid": SESSION_ID, "sha": "0" * 64, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO messages (session_id, turn, role, content, picture_id, created_at)"
                " VALUES (:sid, 1, 'assistant', 'Here it is.', 1, :now)"
            ),
            {"sid": SESSION_ID, "now": now},
        )
        assert "share_token" not in {c["name"] for c in inspect(conn).get_columns("sessions")}
    engine.dispose()


def test_a_v1_database_is_upgraded_and_keeps_its_data(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    _make_v1_database(db_url)

    db = create_db(db_url)
    try:
        assert db.schema_version() == migrations.LATEST_VERSION
        with db.transaction() as s:
            repo = SessionRepository(s)
            old = repo.get_session(SESSION_ID)
            assert old.title == "Old story" and old.created_at.year == 2024 and old.created_at.tzinfo is not None
            assert [m.content for m in repo.list_messages(SESSION_ID)] == ["Here it is."]
            assert repo.last_picture(SESSION_ID).prompt == "an old lighthouse"  # type: ignore[union-attr]
            token = repo.share_session(SESSION_ID)  # the column step 2 added works
        with db.session() as s:
            assert SessionRepository(s).get_shared_session(token).id == SESSION_ID
    finally:
        db.dispose()
    again = create_db(db_url)  # opening an up-to-date database applies nothing and changes nothing
    try:
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version").scalars().all() == [
                m.version for m in migrations.MIGRATIONS
            ]
    finally:
        again.dispose()


def test_a_database_from_a_newer_app_is_refused(db: Database, db_url: str) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (99, 'from the future', '2030-01-01 00:00:00')")
    db.dispose()
    with pytest.raises(StorageError, match="newer version"):
        create_db(db_url)


def test_a_broken_database_file_gives_a_plain_storage_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database, just some text that ended up here" * 100)
    with pytest.raises(StorageError, match="Could not read or write the database"):
        create_db(f"sqlite:///{broken}")
    with pytest.raises(StorageError, match="not valid"):
        create_db("not a url")


def test_threads_each_with_their_own_session_can_write_at_once(db: Database) -> None:
    with db.transaction() as s:
        session_id = SessionRepository(s).create_session("busy").id
    errors: list[BaseException] = []
    per_thread = 15

    def writer(n: int) -> None:
        try:
            for i in range(per_thread):
                with db.transaction() as s:
                    repo = SessionRepository(s)
                    repo.add_message(session_id, "user", f"thread {n} message {i}")
                    picture = repo.add_picture(session_id, **picture_fields(seed=n * 1000 + i))
                    repo.add_message(session_id, "assistant", "drawn", picture_id=picture.id)
                with db.session() as s:  # a reader in between
                    SessionRepository(s).list_sessions(query="thread")
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with db.session() as s:
        messages = SessionRepository(s).list_messages(session_id)
        assert SessionRepository(s).count_pictures(session_id) == 4 * per_thread
    user_turns = [m.turn for m in messages if m.role == "user"]
    assert sorted(user_turns) == list(range(1, 4 * per_thread + 1))  # no two turns got the same number
    assert all(m.turn == u.turn for u, m in zip(messages[::2], messages[1::2], strict=True))


def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        SessionRepository(s).create_session("half done")
        raise RuntimeError("boom")
    with db.session() as s:
        assert SessionRepository(s).list_sessions() == []
