"""Migration 5: pictures are numbered #1, #2, ... within their session, a number and an id are never given twice
(not after a delete, not to two writers at once), and favourites are stored."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, delete, insert, inspect, text

from storage import migrations
from storage.db import Database, create_db
from storage.repository import SessionRepository
from storage.tables import Picture
from tests.storage.factories import picture_fields

CROW = "a" * 32
LAKE = "b" * 32


def _add(db: Database, session_id: str, **fields: object) -> tuple[int, int]:
    with db.transaction() as s:
        picture = SessionRepository(s).add_picture(session_id, **picture_fields(**fields))
        return picture.id, picture.number


def _session(db: Database, title: str) -> str:
    with db.transaction() as s:
        return SessionRepository(s).create_session(title).id


def test_each_session_numbers_its_pictures_from_one(db: Database) -> None:
    crow, lake = _session(db, "Crow City"), _session(db, "The lake")
    assert [_add(db, crow)[1], _add(db, crow)[1], _add(db, lake)[1], _add(db, crow)[1]] == [1, 2, 1, 3]
    with db.session() as s:
        repo = SessionRepository(s)
        assert [p.number for p in repo.list_pictures(crow)] == [1, 2, 3]
        assert repo.get_picture_by_number(lake, 1).session_id == lake


def test_numbers_and_ids_are_never_given_again_after_a_delete(db: Database) -> None:
    crow, lake = _session(db, "Crow City"), _session(db, "The lake")
    _add(db, crow)
    newest_id, newest_number = _add(db, crow)
    lake_id, _ = _add(db, lake)
    with db.transaction() as s:  # as recovery does for a row whose file is gone: the newest rows of all
        s.execute(delete(Picture).where(Picture.id.in_([newest_id, lake_id])))
    with db.transaction() as s:
        SessionRepository(s).delete_session(lake)
    again_id, again_number = _add(db, crow)
    assert again_number == newest_number + 1  # #2 stays taken
    assert again_id > lake_id  # the highest id ever given is not given again


def test_two_writers_at_once_never_get_the_same_number(db: Database) -> None:
    crow = _session(db, "Crow City")
    numbers: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def draw() -> None:
        try:
            start.wait()
            for _ in range(4):
                numbers.append(_add(db, crow)[1])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=draw) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(numbers) == list(range(1, 25))


def test_a_picture_is_starred_and_the_starred_ones_listed(db: Database) -> None:
    crow = _session(db, "Crow City")
    first, _ = _add(db, crow)
    second, _ = _add(db, crow)
    _add(db, crow)
    with db.transaction() as s:
        repo = SessionRepository(s)
        assert repo.get_picture(first).starred is False
        repo.set_starred(first, True)
        repo.set_starred(second, True)
        repo.set_starred(second, False)
    with db.session() as s:
        repo = SessionRepository(s)
        assert [p.id for p in repo.list_pictures(crow, starred=True)] == [first]
        assert repo.count_pictures(crow, starred=True) == 1
        assert [p.number for p in repo.list_pictures(crow, newest_first=True)] == [3, 2, 1]


def _make_database_before_numbers(url: str) -> None:
    """A database as the release before step 5 left it (steps 1-4 and 6): two sessions, interleaved pictures."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=4) == [1, 2, 3, 4]
        step_6 = next(m for m in migrations.MIGRATIONS if m.version == 6)
        step_6.apply(conn)
        conn.execute(
            insert(migrations.schema_version).values(
                version=6, description=step_6.description, applied_at=datetime.now()
            )
        )
        now = datetime(2025, 3, 1, 9, 30, 0)
        for sid, title in ((CROW, "Crow City"), (LAKE, "The lake")):
            conn.execute(
                text("INSERT INTO sessions (id, title, created_at, updated_at) VALUES (:id, :title, :now, :now)"),
                {"id": sid, "title": title, "now": now},
            )
        rows = [(1, CROW, None), (2, LAKE, None), (3, CROW, 1), (4, CROW, 3), (5, LAKE, 2)]
        for picture_id, sid, parent in rows:
            conn.execute(
                text(
                    "INSERT INTO pictures (id, session_id, turn, file_name, width, height, size_bytes, sha256, seed,"
                    " steps, guidance_scale, action, model, prompt, negative_prompt, parent_id, created_at, artists)"
                    " VALUES (:id, :sid, :id, :file, 64, 64, 10, :sha, 7, 2, 0.0, 'edit', 'tiny', :prompt, '',"
                    " :parent, :now, :artists)"
                ),
                {
                    "id": picture_id,
                    "sid": sid,
                    "file": f"2025/03/{picture_id:032x}.png",
                    "sha": "1" * 64,
                    "prompt": f"picture {picture_id}",
                    "parent": parent,
                    "now": now,
                    "artists": '["Claude Monet"]' if picture_id == 4 else None,
                },
            )
            conn.execute(
                text(
                    "INSERT INTO messages (session_id, turn, role, content, picture_id, created_at)"
                    " VALUES (:sid, :id, 'assistant', :content, :id, :now)"
                ),
                {"sid": sid, "id": picture_id, "content": f"reply {picture_id}", "now": now},
            )
        if conn.dialect.name == "postgresql":  # ids given by hand: the sequence learns of them as inserts would
            conn.execute(text("SELECT setval('pictures_id_seq', 5)"))
        conn.execute(
            text(
                "INSERT INTO stories (session_id, passage, beats_json, created_at, updated_at)"
                " VALUES (:sid, 'Once.', '[]', :now, :now)"
            ),
            {"sid": CROW, "now": now},
        )
        assert "number" not in {c["name"] for c in inspect(conn).get_columns("pictures")}
    engine.dispose()


def test_a_database_from_before_numbers_upgrades_with_nothing_lost(db_url: str) -> None:
    _make_database_before_numbers(db_url)
    db = create_db(db_url)
    try:
        with db.session() as s:
            repo = SessionRepository(s)
            crow = repo.list_pictures(CROW)
            assert [(p.id, p.number, p.parent_id) for p in crow] == [(1, 1, None), (3, 2, 1), (4, 3, 3)]
            assert [(p.id, p.number) for p in repo.list_pictures(LAKE)] == [(2, 1), (5, 2)]
            assert crow[2].artists == ["Claude Monet"] and crow[2].prompt == "picture 4"
            assert all(p.starred is False and p.own_start is False for p in crow)
            assert [(m.content, m.picture_id) for m in repo.list_messages(CROW)] == [
                ("reply 1", 1),
                ("reply 3", 3),
                ("reply 4", 4),
            ]
            assert s.execute(text("SELECT count(*) FROM stories")).scalar_one() == 1
        with db.engine.connect() as conn:
            indexes = {i["name"] for i in inspect(conn).get_indexes("pictures")}
            assert "ix_pictures_session_turn" in indexes
            versions = conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version").scalars().all()
            assert 5 in versions
        with db.transaction() as s:  # the newest picture of all (the lake's #2) goes: its id is not given again
            s.execute(delete(Picture).where(Picture.id == 5))
        assert _add(db, CROW) == (6, 4)
        assert _add(db, LAKE)[1] == 3  # #2 of the lake stays taken
    finally:
        db.dispose()
