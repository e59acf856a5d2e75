"""Migration 3: each picture keeps the story sheet it was drawn from; a version-2 database upgrades intact."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from storage import migrations
from storage.db import create_db
from storage.repository import SessionRepository

SESSION_ID = "fedcba9876543210fedcba9876543210"


def _make_v2_database(url: str) -> None:
    """A database file as schema 2 left it: a shared session with one picture and its message."""
    engine = create_engine(url)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=2) == [1, 2]
        now = datetime(2025, 3, 1, 9, 30, 0)
        conn.execute(
            text(
                "INSERT INTO sessions (id, title, created_at, updated_at, share_token)"
                " VALUES (:id, 'Crow City', :now, :now, 'tok')"
            ),
            {"id": SESSION_ID, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO pictures (session_id, turn, file_name, width, height, size_bytes, sha256, seed, steps,"
                " guidance_scale, action, model, prompt, negative_prompt, created_at) VALUES (:sid, 1, '2025/03/k.png',"
                " 512, 512, 10, :sha, 7, 2, 0.0, 'new', 'sd-turbo', 'Kael, shaved head, crow tattoo', 'blurry', :now)"
            ),
            {"sid": SESSION_ID, "sha": "1" * 64, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO messages (session_id, turn, role, content, picture_id, created_at)"
                " VALUES (:sid, 1, 'assistant', 'Here is Kael.', 1, :now)"
            ),
            {"sid": SESSION_ID, "now": now},
        )
        assert "sheet_json" not in {c["name"] for c in inspect(conn).get_columns("pictures")}
    engine.dispose()


def test_a_v2_database_upgrades_to_picture_sheets_and_keeps_its_data(db_url: str) -> None:
    Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    _make_v2_database(db_url)

    db = create_db(db_url)
    try:
        assert db.schema_version() >= 3
        with db.transaction() as s:
            repo = SessionRepository(s)
            old = repo.last_picture(SESSION_ID)
            assert old is not None
            assert (old.prompt, old.negative_prompt, old.seed, old.sheet_json) == (
                "Kael, shaved head, crow tattoo",
                "blurry",
                7,
                None,
            )
            assert [m.content for m in repo.list_messages(SESSION_ID)] == ["Here is Kael."]
            assert repo.get_shared_session("tok").title == "Crow City"
            sheet = {"version": 1, "cast": [{"key": "kael", "name": "Kael"}], "visible": ["kael"]}
            new = repo.add_picture(
                SESSION_ID,
                file_name="2025/03/k2.png",
                width=512,
                height=512,
                size_bytes=10,
                sha256="2" * 64,
                seed=8,
                steps=2,
                guidance_scale=0.0,
                action="edit",
                model="sd-turbo",
                prompt="Kael, night market",
                parent_id=old.id,
                sheet_json=json.dumps(sheet),
            )
            new_id = new.id
    finally:
        db.dispose()
    again = create_db(db_url)  # the sheet survives a restart
    try:
        with again.session() as s:
            stored = SessionRepository(s).get_picture(new_id).sheet_json
            assert stored is not None and json.loads(stored)["cast"][0]["name"] == "Kael"
    finally:
        again.dispose()
