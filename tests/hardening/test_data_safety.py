"""Points 3 and 4 of issue 14: a backup made while the app writes is whole, and no picture is ever deleted."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gradio_client import Client

from tests.app.client import pictures, send
from tests.hardening.conftest import Start, rows


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_backup_made_while_writers_write_is_whole(
    start_app: Start, data_dir: Path, tmp_path: Path, probes: Callable[[int], None]
) -> None:
    probes(2)  # a backup while turns are written, one over an existing backup
    url, _ = start_app()
    client = Client(url, verbose=False)
    _, _, _, session_id, _ = send(client, "turn 0: a lighthouse")
    acknowledged: list[str] = ["turn 0: a lighthouse"]
    stop = threading.Event()

    def write() -> None:  # turns keep being committed while the backup runs
        number = 1
        while not stop.is_set():
            text = f"turn {number}: make the sky darker"
            send(client, text)
            acknowledged.append(text)
            number += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(acknowledged) < 3:
            time.sleep(0.05)
        committed_before = list(acknowledged)
        result = cli("backup", str(tmp_path / "backup"), "--data-dir", str(data_dir))
        time.sleep(0.5)
    finally:
        stop.set()
        writer.join(timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Backed up" in result.stdout

    backup = tmp_path / "backup" / "illustrator.db"
    assert not (tmp_path / "backup" / "illustrator.db-wal").exists()  # one self-contained file
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = [r[0] for r in conn.execute("SELECT content FROM messages WHERE role = 'user' ORDER BY id")]
        files = [r[0] for r in conn.execute("SELECT file_name FROM pictures")]
    assert stored[: len(committed_before)] == committed_before  # every turn acknowledged before it began
    assert all((tmp_path / "backup" / "pictures" / name).is_file() for name in files)  # every row has its file
    # the live database is untouched and goes on
    assert rows(data_dir, "PRAGMA integrity_check") == [("ok",)]
    chat, *_ = send(Client(url, verbose=False), "after the backup: a boat")
    assert pictures(chat)
    refused = cli("backup", str(tmp_path / "backup"), "--data-dir", str(data_dir))  # never over an older one
    assert refused.returncode == 1 and "must be new or empty" in refused.stderr


def test_restoring_an_older_database_sets_newer_pictures_aside_and_they_come_back(
    start_app: Start, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, probes: Callable[[int], None]
) -> None:
    probes(1)  # an older database restored over newer pictures
    url, _ = start_app()
    client = Client(url, verbose=False)
    _, _, _, session_id, _ = send(client, "a lighthouse on a cliff")
    older = tmp_path / "older.db"
    with sqlite3.connect(data_dir / "illustrator.db") as live, sqlite3.connect(older) as copy:
        live.backup(copy)  # the writer's backup after the first turn
    for text in ("make the sky stormy", "add a red boat"):
        send(client, text)

    # The writer restores the older database into a data folder that holds all three pictures.
    restored = tmp_path / "restored"
    shutil.copytree(data_dir / "pictures", restored / "pictures")
    shutil.copy(older, restored / "illustrator.db")
    (restored / "models").symlink_to((data_dir / "models").resolve(), target_is_directory=True)
    caplog.set_level(logging.INFO)
    url2, _ = start_app(data_dir=restored)  # start-up runs the check on the restored folder

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Set aside 2 picture file(s)" in w for w in warnings), warnings
    assert len(list((restored / "set-aside").rglob("*.png"))) == 2  # nothing deleted
    assert len(list((restored / "pictures").rglob("*.png"))) == 1
    chat, *_ = Client(url2, verbose=False).predict(session_id, api_name="/open_session")
    assert len(pictures(chat)) == 1

    result = cli("recover-pictures", "--data-dir", str(restored))
    assert result.returncode == 0, result.stderr
    assert "Brought back 2 picture(s)" in result.stdout
    assert list((restored / "set-aside").rglob("*.png")) == []
    chat, *_ = Client(url2, verbose=False).predict(session_id, api_name="/open_session")
    assert len(pictures(chat)) == 3
    prompts = [r[0] for r in rows(restored, "SELECT prompt FROM pictures ORDER BY turn")]
    assert prompts == [r[0] for r in rows(data_dir, "SELECT prompt FROM pictures ORDER BY turn")]
