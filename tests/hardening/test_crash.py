"""A real server process killed with SIGKILL in the middle of a turn: on restart nothing saved is lost."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.client import Job

from tests.app.client import pictures, send, texts
from tests.app.conftest import free_port
from tests.hardening.conftest import picture_files, rows

REPO = Path(__file__).resolve().parents[2]


class Server:
    """`illustrator serve` in its own process (and process group), as a writer would start it."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        port = free_port()
        command = [sys.executable, "-m", "ui.cli", "serve", "--offline", "--refiner-model", "none"]
        command += ["--data-dir", str(self.data_dir), "--port", str(port)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}config", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not start:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL, to the whole process group: no clean-up code runs."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    running = Server(data_dir, tmp_path / "server.log")
    yield running
    running.stop()


def _pictures_on_disk(data_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(data_dir / "pictures").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in picture_files(data_dir)
    }


def _drawing(job: Job) -> bool:
    """Whether the turn reports drawing steps (the page's progress bar says "Drawing… step n of 50")."""
    progress = job.status().progress_data or []
    return any("step" in (unit.desc or "") for unit in progress)


def test_sigkill_in_the_middle_of_a_turn_loses_nothing_saved(server: Server, data_dir: Path) -> None:
    # 1. two turns, saved
    client = Client(server.start(), verbose=False)
    send(client, "a lighthouse on a cliff")
    chat, _, _, session_id, _ = send(client, "make the sky stormy")
    assert len(pictures(chat)) == 2
    saved_pictures = rows(data_dir, "SELECT id, file_name, sha256 FROM pictures ORDER BY id")
    saved_messages = rows(data_dir, "SELECT id, role, content, picture_id FROM messages ORDER BY id")

    # 2. a long turn: killed while it is being drawn (its message is stored, the picture is half done)
    job = client.submit(text="now a cathedral, every stone of it", steps=50, size="1024x1024", api_name="/send")
    deadline = time.monotonic() + 60
    while not _drawing(job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _drawing(job), "the turn never started drawing"
    assert server.process is not None and server.process.poll() is None
    server.kill()

    # What a kill between writing a picture and committing its row would leave: a temp file and a stray file.
    folder = data_dir / "pictures" / f"{datetime.now(timezone.utc):%Y/%m}"
    stray = folder / f"{secrets.token_hex(16)}.png"
    stray.write_bytes(b"\x89PNG\r\n\x1a\n a picture no row knows")
    temp = folder / f".{secrets.token_hex(16)}.png.tmp"
    temp.write_bytes(b"\x89PNG\r\n\x1a\n half written")

    # 3. restart: the start-up check runs before the app serves
    client = Client(server.start(), verbose=False)
    assert rows(data_dir, "PRAGMA integrity_check") == [("ok",)]
    assert rows(data_dir, "SELECT id, file_name, sha256 FROM pictures ORDER BY id") == saved_pictures
    messages = rows(data_dir, "SELECT id, role, content, picture_id FROM messages ORDER BY id")
    assert messages[: len(saved_messages)] == saved_messages
    assert [m[2] for m in messages[len(saved_messages) :]] == ["now a cathedral, every stone of it"]
    on_disk = _pictures_on_disk(data_dir)
    assert on_disk == {file_name: sha for _, file_name, sha in saved_pictures}  # every row's file, nothing else
    assert not stray.exists() and not temp.exists()
    assert (data_dir / "set-aside" / stray.relative_to(data_dir / "pictures")).is_file()  # set aside, not deleted
    log = server.log.read_text()
    assert "Set aside 1 picture file(s)" in log and "Removed 1 unfinished temp file(s)" in log

    # 4. the writer reopens the session and goes on from the picture it ended on
    chat, _, details = client.predict(session_id, api_name="/open_session")
    assert len(pictures(chat)) == 2 and "now a cathedral, every stone of it" in texts(chat)
    chat, *_ = send(client, "make the sky clear")  # State is per browser: this client opened the session
    assert len(pictures(chat)) == 3
    last_parent = rows(data_dir, "SELECT parent_id FROM pictures ORDER BY id DESC LIMIT 1")[0][0]
    assert last_parent == saved_pictures[-1][0]


def test_the_start_up_check_drops_rows_whose_file_is_gone_and_keeps_the_conversation(start_app, data_dir: Path) -> None:
    url, illustrator = start_app()
    client = Client(url, verbose=False)
    send(client, "a lighthouse on a cliff")
    send(client, "make the sky stormy")
    gone, kept = rows(data_dir, "SELECT id, file_name FROM pictures ORDER BY id")
    (data_dir / "pictures" / gone[1]).unlink()  # deleted by hand while the app was stopped

    from storage.db import create_db
    from storage.files import PictureFiles
    from storage.recovery import recover

    settings = illustrator.settings  # what a restart does first: the start-up check on the same data folder
    report = recover(create_db(settings.resolved_database_url), PictureFiles(settings.pictures_dir))
    assert report.integrity == "ok" and report.removed_pictures == [gone[0]] and report.removed_files == []
    assert rows(data_dir, "SELECT id FROM pictures") == [(kept[0],)]
    assert rows(data_dir, "SELECT count(*) FROM messages")[0][0] == 4  # both turns' messages are kept
    assert rows(data_dir, "SELECT picture_id FROM messages WHERE role = 'assistant' ORDER BY id") == [
        (None,),
        (kept[0],),
    ]
    assert rows(data_dir, "SELECT parent_id FROM pictures") == [(None,)]
