"""Point 7 of issue 14 (brief point 6): throttled logins, real passwords, a safe password file, hashes."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from illustrator import throttle
from illustrator.access import parse_login, read_password_file
from illustrator.errors import InvalidInput
from tests.hardening.conftest import Start

ANN = ("ann", "s3cret-pass")


def _login(url: str, name: str, password: str, address: str) -> tuple[int, float]:
    began = time.monotonic()
    # uvicorn takes the client address from X-Forwarded-For when the connection comes from 127.0.0.1 (a proxy)
    answer = httpx.post(
        f"{url}login", data={"username": name, "password": password}, headers={"X-Forwarded-For": address}, timeout=90
    )
    return answer.status_code, time.monotonic() - began


def test_wrong_passwords_wait_longer_and_longer_per_name_and_address(
    start_app: Start, caplog: pytest.LogCaptureFixture, probes: Callable[[int], None]
) -> None:
    probes(7)
    url, _ = start_app(logins=(ANN, ("bo", "hunter22-pass")))
    # 1. one guesser, one at a time: the first three are free, then 1 s, 2 s, … (the page stays served meanwhile)
    took = [_login(url, "ann", f"guess-{n}", "10.0.0.1") for n in range(3)]
    assert all(code == 400 and seconds < 1 for code, seconds in took), took
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(lambda: [_login(url, "ann", f"guess-{n}", "10.0.0.1") for n in (3, 4)])
        time.sleep(0.3)
        began = time.monotonic()
        assert httpx.get(f"{url}share/nothing", timeout=5).status_code == 404  # the event loop is free
        assert time.monotonic() - began < 1
        waits = slow.result()
    assert [code for code, _ in waits] == [400, 400]
    assert 0.8 < waits[0][1] and 1.8 < waits[1][1], waits  # growing

    # 2. per name and per address: another writer elsewhere is not slowed; this address is, even for the right login
    assert _login(url, "bo", "hunter22-pass", "10.0.0.2") == (200, pytest.approx(0, abs=1))
    code, seconds = _login(url, "bo", "hunter22-pass", "10.0.0.1")
    assert code == 200 and seconds > 2.5, seconds


def test_a_flood_of_guesses_is_cut_short_and_logged_in_a_few_lines(
    start_app: Start, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, probes: Callable[[int], None]
) -> None:
    probes(64)
    monkeypatch.setattr(throttle, "FIRST_DELAY", 0.25)
    monkeypatch.setattr(throttle, "MAX_WAIT", 3.0)
    url, _ = start_app(logins=(ANN,))
    caplog.set_level(logging.WARNING, logger="illustrator.throttle")
    began = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: _login(url, "ann", f"guess-{n}", "10.0.0.3"), range(64)))
    assert all(code == 400 for code, _ in answers)
    assert time.monotonic() - began < 15  # most were refused at once, without a password check
    failures = [r for r in caplog.records if "failed login" in r.getMessage()]
    assert 2 <= len(failures) <= 14, [r.getMessage() for r in failures]  # 1, 2, 4 … 64 for the name and the address
    assert "guess-" not in caplog.text  # passwords are never logged


def test_passwords_and_the_password_file(start_app: Start, tmp_path: Path, probes: Callable[[int], None]) -> None:
    probes(6)
    for text in ("ann:short", "ann:1234567"):
        with pytest.raises(InvalidInput, match="at least 8 characters"):
            parse_login(text)
    made = subprocess.run(
        [sys.executable, "-m", "ui.cli", "hash-password"],
        input="long-enough-pass\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    hashed = made.stdout.strip()
    assert hashed.startswith("$argon2id$") and "long-enough-pass" not in hashed
    logins = tmp_path / "logins.txt"
    logins.write_text(f"# hashed\nann:{hashed}\n")
    for mode in (0o666, 0o620, 0o602):
        logins.chmod(mode)
        with pytest.raises(InvalidInput, match="can be changed by other users"):
            read_password_file(logins)
    logins.chmod(0o600)
    url, _ = start_app(logins=read_password_file(logins))
    assert _login(url, "ann", "long-enough-pass", "10.0.0.4")[0] == 200
    assert _login(url, "ann", hashed, "10.0.0.4")[0] == 400  # the hash itself is not a password
