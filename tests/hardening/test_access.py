"""Who may see what: a login when serving on the network, and nothing but pictures through the file routes."""

from __future__ import annotations

import asyncio
import http.client
import os
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from gradio_client import Client

from illustrator.access import NEEDS_LOGIN, blocked_paths, check_access, login_for, read_password_file
from illustrator.errors import InvalidInput
from illustrator.settings import Settings
from illustrator.writers import Writer
from tests.app.client import send
from tests.hardening.conftest import Start, rows
from ui import cli

REPO = Path(__file__).resolve().parents[2]


def test_serving_on_the_network_needs_a_login(data_dir: Path, tmp_path: Path, capsys) -> None:
    # `serve --listen` with no login: refused at once, in one sentence, before anything loads or is created.
    started = time.perf_counter()
    code = cli.main(["serve", "--listen", "--offline", "--data-dir", str(data_dir), "--port", "9"])
    assert code == 1 and time.perf_counter() - started < 5
    assert capsys.readouterr().err.strip() == f"illustrator: {NEEDS_LOGIN}"
    assert sorted(p.name for p in data_dir.iterdir()) == ["models"]  # no database was created

    network = Settings(data_dir=data_dir, host="0.0.0.0")
    with pytest.raises(InvalidInput, match="needs a login"):
        login_for(network)
    assert login_for(Settings(data_dir=data_dir, host="0.0.0.0", no_login=True)) is None  # asked for explicitly
    assert login_for(Settings(data_dir=data_dir)) is None  # this machine only: no login
    check_access(Settings(data_dir=data_dir, host="::1"))

    # A password file: comments and blank lines skipped; a bad line is named, its text is not repeated.
    logins = tmp_path / "logins.txt"
    logins.write_text("# the writing group\nann:s3cret:with:colons\n\n  bo:hunter22\n")
    assert read_password_file(logins) == (("ann", "s3cret:with:colons"), ("bo", "hunter22"))
    logins.write_text("ann:s3cret-pass\nno-password-here\n")
    with pytest.raises(InvalidInput, match="Line 2 of the password file") as refused:
        read_password_file(logins)
    assert "no-password-here" not in str(refused.value)
    logins.write_text("ann:s3cret-pass\n")
    check = login_for(Settings(data_dir=data_dir, host="0.0.0.0", logins=read_password_file(logins)))
    assert check is not None
    assert asyncio.run(check("ann", "s3cret-pass"))
    assert not asyncio.run(check("ann", "s3cret-pas")) and not asyncio.run(check("bo", "s3cret-pass"))
    assert "s3cret-pass" not in repr(Settings(logins=(("ann", "s3cret-pass"),)))  # never in a log line


def test_the_editing_ui_asks_for_the_login(start_app: Start, data_dir: Path) -> None:
    url, _ = start_app(logins=(("ann", "s3cret-pass"),))
    with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error for a refused login
        Client(url, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(url, auth=("ann", "wrong"), verbose=False)
    client = Client(url, auth=("ann", "s3cret-pass"), verbose=False)
    chat, picture, *_ = send(client, "a lantern in the fog")
    (file_name,) = rows(data_dir, "SELECT file_name FROM pictures")[0]
    picture_path = (data_dir / "pictures" / file_name).resolve()

    # Without the login cookie: no page config, no queue, no picture.
    assert httpx.get(f"{url}config", timeout=10).status_code in (401, 403)
    join = httpx.post(f"{url}gradio_api/queue/join", json={"data": ["x"], "fn_index": 0, "session_hash": "abc"})
    assert join.status_code in (401, 403)
    assert httpx.get(f"{url}gradio_api/file={picture_path}", timeout=10).status_code in (401, 403)
    with httpx.Client(base_url=url, timeout=10) as browser:
        assert browser.post("login", data={"username": "ann", "password": "s3cret-pass"}).status_code == 200
        answer = browser.get(f"gradio_api/file={picture_path}")
        assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as written (no client normalizes its dots or percent signs)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_nothing_but_pictures_can_be_fetched_through_the_file_routes(
    start_app: Start, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.chdir(data_dir)  # relative paths would resolve next to the database
    url, illustrator = start_app()
    send(Client(url, verbose=False), "a lantern in the fog")
    (file_name,) = rows(data_dir, "SELECT file_name FROM pictures")[0]
    pictures = (data_dir / "pictures").resolve()
    database = (data_dir / "illustrator.db").resolve()
    model_file = next((data_dir / "models" / "offline-image").glob("*.json")).resolve()
    secrets = {
        "database": database.read_bytes()[:16],  # b"SQLite format 3\0"
        "source": (REPO / "app.py").read_bytes()[:60],
        "passwd": b"root:",
    }
    (pictures / "sneaky.png").symlink_to(database)  # a link in the pictures folder that points at the database

    # The route works: a picture is served (so the refusals below mean something).
    status, body = _raw_get(url, f"/gradio_api/file={pictures / file_name}")
    assert status == 200 and body.startswith(b"\x89PNG")

    year = pictures / file_name.split("/")[0]
    attempts = [
        f"/gradio_api/file={database}",
        f"/gradio_api/file={database}-wal",
        f"/gradio_api/file={quote(str(database))}",
        f"/gradio_api/file={pictures}/../illustrator.db",
        f"/gradio_api/file={year}/../../illustrator.db",
        f"/gradio_api/file={pictures}/%2e%2e/illustrator.db",
        f"/gradio_api/file={pictures}/%2e%2e%2fillustrator.db",
        f"/gradio_api/file={pictures}/..%2fillustrator.db",
        f"/gradio_api/file={pictures}/%252e%252e%252fillustrator.db",
        f"/gradio_api/file={pictures}/sneaky.png",
        "/gradio_api/file=illustrator.db",
        "/gradio_api/file=./illustrator.db",
        "/gradio_api/file=pictures/../illustrator.db",
        f"/gradio_api/file={model_file}",
        f"/gradio_api/file={REPO / 'app.py'}",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"/gradio_api/file={pictures}/" + "../" * 12 + "etc/passwd",
        f"/file={database}",
        f"/gradio_api/file=http://127.0.0.1:{urlsplit(url).port}/config",
        f"/gradio_api/file=file://{database}",
    ]
    for attempt in attempts:
        status, body = _raw_get(url, attempt)
        assert status != 200 or not body, (attempt, status, body[:80])
        for name, secret in secrets.items():
            assert secret not in body, (attempt, name)
    assert str(database) in blocked_paths(illustrator.settings)
    assert os.path.getsize(database) > 0


def test_share_links_are_read_only_and_show_one_session_without_the_login(start_app: Start, data_dir: Path) -> None:
    url, illustrator = start_app(logins=(("ann", "s3cret-pass"),))
    client = Client(url, auth=("ann", "s3cret-pass"), verbose=False)
    mine = send(client, "a lantern in the fog")[3]
    theirs = send(Client(url, auth=("ann", "s3cret-pass"), verbose=False), "a secret garden")[3]
    token = illustrator.library.share(mine, writer=Writer("ann"))  # the session is the login's
    (my_picture,) = rows(data_dir, "SELECT number FROM pictures WHERE session_id = ?", mine)[0]
    (their_picture,) = rows(data_dir, "SELECT id FROM pictures WHERE session_id = ?", theirs)[0]
    assert their_picture != my_picture  # the other session's picture's id: no number of this session

    page = httpx.get(f"{url}share/{token}", timeout=10)  # no login needed for the link
    assert page.status_code == 200 and "lantern" in page.text and "secret garden" not in page.text
    assert httpx.get(f"{url}share/{token}/pictures/{my_picture}.png", timeout=10).content.startswith(b"\x89PNG")
    for path in (
        f"/share/{token}/pictures/{their_picture}.png",  # another session's picture through this link
        f"/share/{token}/pictures/..%2f..%2fillustrator.db",
        f"/share/{token}/pictures/%2e%2e/%2e%2e/illustrator.db",
        f"/share/{token[:-1]}/pictures/{my_picture}.png",
    ):
        status, body = _raw_get(url, path)
        assert status == 404 and b"SQLite" not in body, (path, status)
    before = rows(data_dir, "SELECT id, content FROM messages ORDER BY id")
    for method in ("POST", "PUT", "DELETE", "PATCH"):  # read-only: nothing but GET is answered
        answer = httpx.request(method, f"{url}share/{token}", json={"content": "changed"}, timeout=10)
        assert answer.status_code in (404, 405), (method, answer.status_code)
    assert rows(data_dir, "SELECT id, content FROM messages ORDER BY id") == before
    assert httpx.get(f"{url}config", timeout=10).status_code in (401, 403)  # the editing UI still asks
