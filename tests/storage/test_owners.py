"""Sessions belong to a writer: migration 4 gives existing sessions the local owner; queries keep to one owner."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from illustrator.errors import NotFound
from storage import migrations
from storage.db import Database, create_db
from storage.repository import SessionRepository
from storage.tables import LOCAL_OWNER
from tests.storage.factories import picture_fields

SESSION_ID = "c" * 32
ANN_FILE = "2025/01/" + "a" * 32 + ".png"
BO_FILE = "2025/01/" + "b" * 32 + ".png"


def test_a_version_2_database_is_upgraded_and_its_sessions_get_the_local_owner(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=2) == [1, 2]
        now = datetime(2025, 3, 1, 9, 0, 0)
        conn.execute(
            text(
                "INSERT INTO sessions (id, title, created_at, updated_at, share_token)"
                " VALUES (:id, 'Before logins', :now, :now, 'tok')"
            ),
            {"id": SESSION_ID, "now": now},
        )
        assert "owner" not in {c["name"] for c in inspect(conn).get_columns("sessions")}
    engine.dispose()

    db = create_db(db_url)
    try:
        assert db.schema_version() == migrations.LATEST_VERSION
        with db.session() as s:
            repo = SessionRepository(s)
            old = repo.get_session(SESSION_ID, owner=LOCAL_OWNER)
            assert (old.title, old.owner, old.share_token) == ("Before logins", LOCAL_OWNER, "tok")
            assert [c.id for c in repo.list_sessions(owner=LOCAL_OWNER)] == [SESSION_ID]
            assert repo.list_sessions(owner="ann") == []
            with pytest.raises(NotFound):
                repo.get_session(SESSION_ID, owner="ann")
        with db.engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version").scalars().all()
            assert 4 in versions and versions == sorted(versions)
    finally:
        db.dispose()


def test_each_owner_sees_only_their_sessions_and_pictures(db: Database) -> None:
    with db.transaction() as s:
        repo = SessionRepository(s)
        ann = repo.create_session("Ann's mermaid", owner="ann")
        bo = repo.create_session("Bo's fox", owner="bo")
        ann_picture = repo.add_picture(ann.id, **picture_fields(file_name=ANN_FILE, prompt="a mermaid"))
        repo.add_picture(bo.id, **picture_fields(file_name=BO_FILE, prompt="a mermaid fox"))
        ann_id, bo_id, ann_picture_id = ann.id, bo.id, ann_picture.id
    with db.session() as s:
        repo = SessionRepository(s)
        assert [c.id for c in repo.list_sessions(owner="ann")] == [ann_id]
        assert [c.id for c in repo.list_sessions(owner="bo", query="mermaid")] == [bo_id]
        assert {c.id for c in repo.list_sessions()} == {ann_id, bo_id}  # no owner: internal use (recovery)
        assert [p.file_name for p in repo.list_pictures(owner="bo")] == [BO_FILE]
        assert repo.count_pictures(owner="ann") == 1 and repo.count_pictures() == 2
        assert repo.get_picture(ann_picture_id, owner="ann").file_name == ANN_FILE
        for attempt in (
            lambda: repo.get_picture(ann_picture_id, owner="bo"),
            lambda: repo.get_session(ann_id, owner="bo"),
            lambda: repo.list_pictures(ann_id, owner="bo"),
            lambda: repo.count_pictures(ann_id, owner="bo"),
        ):
            with pytest.raises(NotFound):
                attempt()
        assert repo.owner_of_file("a" * 32 + ".png") == "ann"
        assert repo.owner_of_file("b" * 32 + ".png") == "bo"
        assert repo.owner_of_file("d" * 32 + ".png") is None
        assert repo.owner_of_file("%.png") is None


def test_a_database_that_got_a_later_step_first_still_gets_step_4(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        migrations.upgrade(conn, target=2)
        later = [step for step in migrations.MIGRATIONS if step.version > 4]
        for step in later:  # as a build that had those steps, but not step 4 yet, left it
            step.apply(conn)
            conn.execute(
                migrations.schema_version.insert().values(
                    version=step.version, description=step.description, applied_at=datetime(2026, 1, 1)
                )
            )
    engine.dispose()
    db = create_db(db_url)
    try:
        assert "owner" in {c["name"] for c in inspect(db.engine).get_columns("sessions")}
    finally:
        db.dispose()
