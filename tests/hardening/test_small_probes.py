"""Point 9 of issue 14 (brief point 7): the smaller things a probe found, each a plain sentence or a 4xx now."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
from gradio_client import Client, handle_file
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from storage.pngmeta import read_png_metadata
from tests.app.client import assert_plain, send, value
from tests.hardening.conftest import Start, rows
from tests.hardening.probes import endpoint, queue_call


def _error(answer: dict) -> str:
    assert answer.get("success") is False, answer
    return str((answer.get("output") or {}).get("error"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_the_smaller_probes(start_app: Start, data_dir: Path, tmp_path: Path, probes: Callable[[int], None]) -> None:
    probes(14)  # a shared copy, a search, two imports, five bad inputs, three titles, two events
    url, _ = start_app()
    client = Client(url, verbose=False)
    _, _, _, session_id, _ = send(client, "a lighthouse on a cliff")

    # Shared copies carry the parameters, never the internal session id or the plan.
    link = value(client.predict(api_name="/share_session"))
    (number,) = rows(data_dir, "SELECT number FROM pictures")[0]
    shared = httpx.get(f"{link}/pictures/{number}.png", timeout=10).content
    assert read_png_metadata(io.BytesIO(shared))["illustrator"] is None
    assert session_id.encode() not in shared and b'"plan"' not in shared
    assert "lighthouse" in (read_png_metadata(io.BytesIO(shared))["parameters"] or "")

    # A 50,000-character search: one plain sentence.
    try:
        client.predict("x" * 50_000, api_name="/search_sessions")
        raise AssertionError("the long search was not refused")
    except Exception as e:  # gradio_client's AppError
        assert "at most 200 characters" in str(e), e
        assert_plain(str(e))

    # A 30000 x 30000 picture to import (a few hundred bytes): one plain sentence, nothing decoded.
    huge = tmp_path / "huge.png"
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b""))
    try:
        client.predict(handle_file(str(huge)), api_name="/import_picture")
        raise AssertionError("the huge import was not refused")
    except Exception as e:
        assert "too large" in str(e), e
        assert_plain(str(e))

    # Imported parameters out of range are left out (the controls keep their defaults).
    wild = tmp_path / "wild.png"
    info = PngInfo()
    info.add_text("parameters", "a fox\nSteps: 5000, Sampler: Euler, CFG scale: 1e9, Seed: -5, Size: 99999x8")
    Image.new("RGB", (64, 64)).save(wild, pnginfo=info)
    prompt, _negative, seed, steps, size, _start = client.predict(handle_file(str(wild)), api_name="/import_picture")
    assert (prompt, seed, steps, size) == ("a fox", -1, 0, "auto")

    # NaN or text where a number belongs, a JSON object as a message: one sentence each, nothing stored.
    fn_index, defaults = endpoint(url, "send")
    before = rows(data_dir, "SELECT count(*) FROM messages")
    steps_at = 5  # message, session, action, strength, seed, steps, …
    for position, bad, expected in [
        (steps_at, "abc", "must be a number"),
        (steps_at, float("nan"), "must be a number"),
        (steps_at - 1, "seven", "must be a number"),
        (0, {"role": "system", "content": "hi"}, "Please send text here"),
        (0, ["a", "list"], "Please send text here"),
    ]:
        data = list(defaults)
        data[0] = "a red door"
        data[position] = bad
        message = _error(queue_call(url, fn_index, data))
        assert expected in message, (bad, message)
        assert_plain(message)
    assert rows(data_dir, "SELECT count(*) FROM messages") == before

    # Titles refuse NUL, terminal escapes and right-to-left overrides.
    for title in ("a\x00b", "red \x1b[31mtitle", "evil\u202etxt.exe"):
        try:
            client.predict(title, api_name="/rename_session")
            raise AssertionError(f"the title {title!r} was kept")
        except Exception as e:
            assert "control characters" in str(e), e
    assert rows(data_dir, "SELECT title FROM sessions") == [("a lighthouse on a cliff",)]

    # An event that does not exist: 4xx, not a server error.
    for body in ({"fn_index": 99999}, {"fn_index": -1}):
        answer = httpx.post(
            f"{url}gradio_api/queue/join", json={"data": [], "session_hash": "probe", **body}, timeout=10
        )
        assert 400 <= answer.status_code < 500, (body, answer.status_code, answer.text)
