"""Migration 6 (artists on pictures, stories) and the story repository, on real SQLite files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from illustrator.errors import NotFound
from storage import migrations
from storage.db import Database, create_db
from storage.repository import SessionRepository
from storage.stories import StoryRepository
from tests.storage.factories import picture_fields

SESSION_ID = "fedcba9876543210fedcba9876543210"


def _make_v2_database(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=2) == [1, 2]
        now = datetime(2025, 3, 1, 9, 0, 0)
        conn.execute(
            text("INSERT INTO sessions (id, title, created_at, updated_at) VALUES (:id, 'Harbour', :now, :now)"),
            {"id": SESSION_ID, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO pictures (session_id, turn, file_name, width, height, size_bytes, sha256, seed, steps,"
                " guidance_scale, action, model, prompt, negative_prompt, created_at) VALUES (:sid, 1, '2025/03/a.png',"
                " 512, 512, 10, :sha, 42, 2, 0.0, 'new', 'sd-turbo', 'a harbour after Claude Monet', '', :now)"
            ),
            {"sid": SESSION_ID, "sha": "0" * 64, "now": now},
        )
        assert not inspect(conn).has_table("stories")
    engine.dispose()


def test_a_v2_database_upgrades_to_6_and_keeps_its_pictures(db_url: str) -> None:
    Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    _make_v2_database(db_url)
    db = create_db(db_url)
    try:
        assert db.schema_version() == 6
        with db.transaction() as s:
            repo = SessionRepository(s)
            old = repo.last_picture(SESSION_ID)
            assert old is not None and old.prompt.startswith("a harbour") and old.artists is None  # nothing invented
            old.artists = ["Claude Monet"]
            StoryRepository(s).save_story(SESSION_ID, "The harbour at dusk.", "[]")
        with db.session() as s:
            assert SessionRepository(s).last_picture(SESSION_ID).artists == ["Claude Monet"]  # type: ignore[union-attr]
            assert StoryRepository(s).get_story(SESSION_ID).passage == "The harbour at dusk."  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_a_story_is_saved_replaced_and_deleted_with_its_session(db: Database) -> None:
    with db.transaction() as s:
        chat = SessionRepository(s).create_session("Poem")
        SessionRepository(s).add_picture(chat.id, **picture_fields())
        session_id = chat.id
        assert StoryRepository(s).get_story(session_id) is None
        StoryRepository(s).save_story(session_id, "first", json.dumps([{"text": "first"}]))
    with db.transaction() as s:
        StoryRepository(s).save_story(session_id, "second", "[]")
    with db.session() as s:
        story = StoryRepository(s).get_story(session_id)
        assert story is not None and story.passage == "second" and story.beats_json == "[]"
    with db.transaction() as s:
        SessionRepository(s).delete_session(session_id)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM stories").scalar() == 0
    with db.session() as s, pytest.raises(NotFound):
        StoryRepository(s).get_story(session_id)
